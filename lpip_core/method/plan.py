"""Where and how often the UNet runs when `restore` samples: the patch layout of the output image,
then the sampling plan (the patch grid, patches per UNet call, images per pass) that fits the
device's memory (memory.fit_memory)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checks import MAX_SIDE, check_choice, check_int
from .memory import check_held, fit_memory, held_memory, memory_estimate
from .patches import PatchGrid, count_starts, patch_grid
from .sampler import model_dtype

# What the input image is (the sampler node's input_is): a low-resolution face that the model
# enlarges by its scale, or a face already at the output size that is restored in place.
LOW_RESOLUTION, ALREADY_UPSCALED = "low_resolution", "already_upscaled"
INPUT_KINDS = (LOW_RESOLUTION, ALREADY_UPSCALED)
CPU_PIXELS_PER_CALL = 2 ** 14  # CPU convolutions run fastest on chunks of about 16k patch pixels
# Elsewhere (GPUs): enough patches per call to fill the device (512 x 32 x 32 px = 0.5 M pixels per
# convolution) instead of launching many small kernels; memory lowers it (fit_memory).
DEVICE_PATCHES_PER_CALL = 512


def model_config(model):
    """The LPIPModel config of ``model``, or None for a plain eps callable."""
    config = getattr(model, "config", None)
    return config if hasattr(config, "unet") else None


def input_face_size(config, input_is: str) -> int:
    """The face size (px) a model restores from: its LQ size for LOW_RESOLUTION, its output size for
    ALREADY_UPSCALED (where faces are cut for it)."""
    return config.hq_size if check_choice("input_is", input_is, INPUT_KINDS) == ALREADY_UPSCALED else config.lq_size


def auto_patch_batch(device: torch.device, patch_hw: tuple[int, int], bound: int | None = None) -> int:
    """Patches per UNet call, at most ``bound``: on the CPU a chunk of about 16k pixels (16 patches
    of 32 px; larger chunks fall out of the caches and run slower, measured), elsewhere the bound or
    DEVICE_PATCHES_PER_CALL."""
    if device.type == "cpu":
        fastest = max(1, CPU_PIXELS_PER_CALL // (patch_hw[0] * patch_hw[1]))
        return fastest if bound is None else min(bound, fastest)
    return bound or DEVICE_PATCHES_PER_CALL


@dataclass(frozen=True)
class PatchLayout:
    """The output image's size and its patches' size and stride, before any memory is looked at."""

    height: int
    width: int
    patch: tuple[int, int]
    stride: tuple[int, int]

    @property
    def canvas(self) -> tuple[int, int]:
        """The sampled canvas: the image, padded at the bottom/right when it is smaller than a patch."""
        return max(self.height, self.patch[0]), max(self.width, self.patch[1])

    @property
    def patches(self) -> int:
        """Patches per image and step (without building the grid)."""
        (h, w), (ph, pw), (sh, sw) = self.canvas, self.patch, self.stride
        return count_starts(h, ph, sh) * count_starts(w, pw, sw)

    def grid(self) -> PatchGrid:
        return patch_grid(*self.canvas, self.patch, self.stride)

    def working_memory(self, config, images: int, fusion: str, max_patch_batch: int, dtype: torch.dtype) -> int:
        """Bytes that restoring ``images`` images in one pass needs next to the weights (what a host
        such as ComfyUI frees before loading the model; restore's own guard then checks again)."""
        fixed, per_patch = memory_estimate(config, images, (self.height, self.width), self.patch, self.stride,
                                           fusion, dtype)
        return fixed + per_patch * min(max_patch_batch, images * self.patches)  # never more than there are


def patch_layout(config, lq_hw: tuple[int, int], *, scale: int | None = None, patch_size: int | None = None,
                 stride: int | None = None, whole_image: bool = False,
                 input_is: str = LOW_RESOLUTION) -> PatchLayout:
    """The layout `restore` samples LQ images of size ``lq_hw`` with (see `restore` for the
    arguments; ``config`` is the model's, or None for a plain eps callable). Checks the arguments
    it reads, naming them and their accepted range."""
    scale = scale if scale is not None else (config.scale if config else None)
    if scale is None:
        raise ValueError("scale is required for a model without .config")
    check_int("scale", scale, 1, 16)
    check_choice("input_is", input_is, INPUT_KINDS)
    h, w = (int(v) for v in lq_hw)
    height, width = (h, w) if input_is == ALREADY_UPSCALED else (h * scale, w * scale)
    factor = config.unet.downsample_factor if config else 1
    if whole_image:
        patch_hw = (-(-height // factor) * factor, -(-width // factor) * factor)
        return PatchLayout(height, width, patch_hw, patch_hw)
    if patch_size is None:
        if config is None:
            raise ValueError("patch_size is required for a model without .config (or use whole_image=True)")
        patch_size, stride = config.patch, config.stride if stride is None else stride
    check_int("patch_size", patch_size, factor, MAX_SIDE)
    if patch_size % factor:
        raise ValueError(f"patch_size must be a multiple of {factor} (the UNet's down-sampling), got {patch_size}")
    stride = max(1, patch_size // 2) if stride is None else stride
    check_int("stride", stride, 1, patch_size)
    return PatchLayout(height, width, (patch_size, patch_size), (stride, stride))


@dataclass(frozen=True)
class SamplingPlan:
    """Where and how often the UNet runs when `restore` samples: the overlapping patch grid (on
    the output canvas, padded at the bottom/right when the image is smaller than a patch), the
    patches per UNet call and the images sampled together in one pass (after the memory guard)."""

    height: int  # output image size
    width: int
    grid: PatchGrid
    max_patch_batch: int  # patches per UNet call
    device: torch.device
    images_per_pass: int = 1  # images whose patches share the UNet calls of a step

    @property
    def patches_per_step(self) -> int:
        return self.grid.num_patches

    def passes(self, images: int) -> list[range]:
        """The images of each pass: all of them at once unless memory is short."""
        n = max(1, self.images_per_pass)
        return [range(start, min(start + n, images)) for start in range(0, images, n)]

    def unet_calls(self, steps: int, images: int = 1) -> int:
        """UNet calls of a whole run: every step runs every patch of every image of a pass, in chunks."""
        return steps * sum(-(-len(p) * self.patches_per_step // self.max_patch_batch) for p in self.passes(images))

    def describe(self, steps: int, images: int = 1) -> dict:
        """The plan as plain numbers (for a front end that draws the grid)."""
        return {"width": self.width, "height": self.height, "patch": list(self.grid.patch),
                "stride": list(self.grid.stride), "ys": list(self.grid.ys), "xs": list(self.grid.xs),
                "patches_per_step": self.patches_per_step * images, "max_patch_batch": self.max_patch_batch,
                "steps": steps, "unet_calls": self.unet_calls(steps, images)}


def plan_sampling(model, lq_hw: tuple[int, int], *, scale: int | None = None, patch_size: int | None = None,
                  stride: int | None = None, max_patch_batch: int | None = None, whole_image: bool = False,
                  input_is: str = LOW_RESOLUTION, images: int = 1, fusion: str = "mean", samples: int = 1,
                  device: torch.device | str = "cpu") -> SamplingPlan:
    """The sampling plan `restore` uses for ``images`` LQ images of size ``lq_hw`` (see `restore` for
    the arguments); ``device`` is where the images are (and the result will be), also the sampling
    device of a model without parameters. Raises the memory guard's ValueError when the batch's
    result with one image and one patch per call cannot fit."""
    config = model_config(model)
    layout = patch_layout(config, lq_hw, scale=scale, patch_size=patch_size, stride=stride,
                          whole_image=whole_image, input_is=input_is)
    if max_patch_batch is not None:
        check_int("max_patch_batch", max_patch_batch, 1)
    home = torch.device(device)
    weight = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    device = weight.device if weight is not None else home
    size = (layout.height, layout.width)
    held = held_memory(images, tuple(int(v) for v in lq_hw), size, samples)
    # an empty batch too: its patch grid is built, and a declared size may be huge
    chunk, per_pass = fit_memory(config, images, size, layout.patch, layout.stride, fusion,
                                 auto_patch_batch(device, layout.patch, max_patch_batch), device,
                                 model_dtype(model) or torch.float32, held if device == home else 0)
    if device != home:  # each pass's result comes back to the images' device
        check_held(held + per_pass * 3 * layout.height * layout.width * 4, images, size, home)
    return SamplingPlan(layout.height, layout.width, layout.grid(), chunk, device, max(1, per_pass))
