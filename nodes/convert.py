"""IMAGE (ComfyUI: float [B, H, W, C] in [0, 1]) <-> lpip_core tensors (float32 [B, 3, H, W]).

The only place where the pack changes layouts. Imports neither comfy nor anything of the pack, so
that it can be tested on its own.
"""
from __future__ import annotations

import torch


def image_to_core(image, name: str = "image") -> torch.Tensor:
    """A ComfyUI IMAGE as float32 RGB [B, 3, H, W] in [0, 1], on the image's device.

    Greyscale (C = 1) is repeated to RGB and an alpha channel (C = 4) is dropped: ComfyUI keeps
    transparency in a separate MASK. Anything else gets a ValueError that names ``name``.
    """
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name} must be an IMAGE tensor, got {type(image).__name__}")
    if image.dim() == 3:  # one image without its batch axis
        image = image.unsqueeze(0)
    if image.dim() != 4:
        raise ValueError(f"{name} must be an IMAGE [batch, height, width, channels], got shape {list(image.shape)}")
    b, h, w, c = image.shape
    if b < 1 or h < 1 or w < 1:
        raise ValueError(f"{name} is empty (shape {list(image.shape)})")
    if c not in (1, 3, 4):
        raise ValueError(f"{name} must have 1, 3 or 4 channels (grey, RGB, RGBA), got {c} "
                         f"(shape {list(image.shape)}; is it a MASK or a LATENT?)")
    if not image.is_floating_point():
        raise ValueError(f"{name} must hold float values in [0, 1], got dtype {image.dtype}")
    x = image[..., :3] if c == 4 else image
    x = x.movedim(-1, 1).float()
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


def core_to_image(x: torch.Tensor, device=None, dtype=None) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] -> IMAGE [B, H, W, 3], clamped, on ``device`` with ``dtype``."""
    out = x.detach().clamp(0, 1).movedim(1, -1)
    return out.to(device=device if device is not None else out.device,
                  dtype=dtype if dtype is not None else torch.float32).contiguous()

