"""The one image resize the project uses: bicubic, antialiased when shrinking, clamped to [0, 1].

Training, degradation and restoration must upsample the LQ condition the same way, so they all
call `resize` here.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, C, h, w] in [0, 1] -> [B, C, *size] in [0, 1]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    out = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False, antialias=shrinking)
    return out.clamp(0, 1).to(x.dtype)
