"""How much memory `restore` needs and what the device has free: the estimates behind the memory
guard (fit_memory), which lowers the patches per UNet call or the images per pass until a run fits."""
from __future__ import annotations

import os

import torch

from .patches import count_starts, grid_bytes

MEMORY_SHARE = 0.9  # restore plans to use at most this share of the device's free memory


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device``, or None when it cannot be told.

    CUDA: the driver's free memory plus what torch's allocator holds unused, within the share of
    the device this process may use (torch.cuda.set_per_process_memory_fraction); CPU: the
    kernel's MemAvailable (Linux), else the free physical pages.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        allocated = torch.cuda.memory_allocated(device)
        room = free + torch.cuda.memory_reserved(device) - allocated
        fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
        if fraction is not None:
            room = min(room, int(fraction(device) * total) - allocated)
        return max(0, room)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def unet_activations(config, patch_hw: tuple[int, int]) -> int:
    """Activation values one patch keeps alive in a UNet call: every skip connection, plus the
    temporaries of the widest block (concatenation, norms, convolutions: 8 copies) and the q, k,
    v and output of attention (torch's fused attention never holds the token x token matrix)."""
    unet = config.unet
    levels = len(unet.channel_mults)
    widths = [unet.base_channels * m for m in unet.channel_mults]
    pixels = [-(-patch_hw[0] // 2 ** lv) * -(-patch_hw[1] // 2 ** lv) for lv in range(levels)]
    skips = unet.base_channels * pixels[0] + sum(
        (unet.num_res_blocks + (lv < levels - 1)) * widths[lv] * pixels[lv] for lv in range(levels))
    widest = max((widths[lv] + widths[min(lv + 1, levels - 1)]) * pixels[lv] for lv in range(levels))
    attention = max([4 * widths[lv] * pixels[lv] for lv in unet.attention_levels] + [0])
    return skips + 8 * widest + attention


def memory_estimate(config, batch: int, size: tuple[int, int], patch_hw: tuple[int, int],
                    stride_hw: tuple[int, int], fusion: str, dtype: torch.dtype) -> tuple[int, int]:
    """(bytes restore needs whatever the patch chunk, bytes per patch of a chunk) on the sampling device.

    The fixed part: the patch grid's index tables (and their build), the LQ condition cut into
    patches, a dozen canvases of the DDIM loop, and one step's patch estimates fused in float64
    (the median also sorts every pixel's stack of estimates). The per-patch part: the UNet's
    activations (0 for a model without a config) and its input and output patch.
    """
    height, width = max(size[0], patch_hw[0]), max(size[1], patch_hw[1])
    area = height * width
    patches = count_starts(height, patch_hw[0], stride_hw[0]) * count_starts(width, patch_hw[1], stride_hw[1])
    pixels = patches * patch_hw[0] * patch_hw[1]  # patch pixels per image
    element = torch.finfo(dtype).bits // 8
    fixed = grid_bytes(area, pixels) * 2  # the tables and the temporaries of their build
    fixed += batch * 3 * (pixels * (element + 8) + area * 4 * 12)  # LQ patches and their cut; canvases
    fixed += batch * 3 * (pixels * 40 + area * 24)  # one step: cut x_t, estimates, float64 fusion
    if fusion == "median":
        overlap = (-(-patch_hw[0] // stride_hw[0]) + 1) * (-(-patch_hw[1] // stride_hw[1]) + 1)
        fixed += batch * 3 * area * 8 * 3 * overlap  # the stacks, sorted values and their order
    per_patch = 3 * patch_hw[0] * patch_hw[1] * (element + 4) * 2
    if config is not None:
        per_patch += unet_activations(config, patch_hw) * element
    return fixed, per_patch


def held_memory(batch: int, lq_hw: tuple[int, int], size: tuple[int, int], samples: int) -> int:
    """Bytes `restore` holds for the whole batch, however many passes it takes, on the images' device:
    the input's float32 copy, the float32 result and, for several samples, their float64 sum."""
    return batch * 3 * (lq_hw[0] * lq_hw[1] * 4 + size[0] * size[1] * (12 if samples > 1 else 4))


def fit_memory(config, batch: int, size: tuple[int, int], patch_hw: tuple[int, int], stride_hw: tuple[int, int],
               fusion: str, max_patch_batch: int, device: torch.device, dtype: torch.dtype,
               held: int = 0) -> tuple[int, int]:
    """The memory guard: (patches per UNet call, images per pass) that fit the device's free memory
    next to ``held`` bytes the run keeps there throughout (held_memory, when the images are there).

    All ``batch`` images in one pass with ``max_patch_batch`` patches per call when that fits; else fewer
    images per pass (down to one), then fewer patches per call. Neither changes the result beyond
    float rounding. A ValueError with the estimate, the limit and what to change when even one
    image with one patch per call would not fit.
    """
    free = available_memory(device)
    if free is None:
        return max_patch_batch, batch
    limit = int(free * MEMORY_SHARE)
    shared, per_patch = memory_estimate(config, 0, size, patch_hw, stride_hw, fusion, dtype)
    per_image = memory_estimate(config, 1, size, patch_hw, stride_hw, fusion, dtype)[0] - shared
    shared += held
    if shared + per_image * batch + per_patch * max_patch_batch <= limit:
        return max_patch_batch, batch
    images = (limit - shared - per_patch * max_patch_batch) // per_image
    if images >= 1:
        return max_patch_batch, int(images)
    fixed = shared + per_image
    if fixed + per_patch <= limit:
        return int((limit - fixed) // per_patch), 1
    advice = ["a smaller image (crop the faces first: the models restore 16 px faces)"]
    if batch > 1:
        advice.append("fewer images at a time")
    if fusion == "median":
        advice.append("fusion mean")
    if patch_hw[0] * patch_hw[1] >= size[0] * size[1] and (size[0] > 256 or size[1] > 256):
        advice.append("patches instead of the whole image")
    elif stride_hw[0] * 2 < patch_hw[0] or stride_hw[1] * 2 < patch_hw[1]:
        advice.append("a larger stride")
    use = ", ".join(advice[:-1]) + (" or " if len(advice) > 1 else "") + advice[-1]
    raise ValueError(f"not enough memory: restoring {batch} image(s) to {size[1]}x{size[0]} px needs about "
                     f"{format_bytes(fixed + per_patch)} on {device}, but {format_bytes(limit)} can be used there "
                     f"({MEMORY_SHARE:.0%} of the {format_bytes(free)} free); use {use}")


def check_held(held: int, batch: int, size: tuple[int, int], device: torch.device) -> None:
    """The guard on the images' device when sampling runs elsewhere: the whole batch's result (and
    sum) must fit there; a ValueError like fit_memory's when it does not."""
    free = available_memory(device)
    if free is not None and held > free * MEMORY_SHARE:
        raise ValueError(f"not enough memory: the {batch} restored image(s) of {size[1]}x{size[0]} px need about "
                         f"{format_bytes(held)} on {device}, but {format_bytes(int(free * MEMORY_SHARE))} can be "
                         f"used there ({MEMORY_SHARE:.0%} of the {format_bytes(free)} free); restore fewer images at "
                         "a time")


def format_bytes(n: int) -> str:
    """A byte count as the guard's messages show it: GB from a quarter GB up, else MB."""
    return f"{n / 2 ** 30:.2f} GB" if n >= 2 ** 28 else f"{n / 2 ** 20:.0f} MB"
