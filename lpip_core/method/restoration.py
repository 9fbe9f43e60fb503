"""`restore`: the public entry point that turns LQ faces into restored HQ faces (Algorithm 2)."""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import Callable

import torch

from ..checks import MAX_SIDE, check_float, check_int, check_seed, seed_for, shown
from ..resize import resize
from .patches import FUSIONS, PatchGrid, count_starts, grid_bytes, pad_to, patch_grid
from .runtime import cpu_threads
from .sampler import Callback, EpsModel, FusedEps, model_dtype, sample_ddim
from .schedule import MAX_TIMESTEPS, SPACINGS, NoiseSchedule, ScheduleConfig

DEFAULT_STEPS = 25
# What the node and the CLI start with (restore's own default stays the paper's 1.0): chosen from
# the denoise sweep of the shipped models (docs/experiments.md, "Denoise: 0.3 to 1 under every
# protocol").
RECOMMENDED_DENOISE = 1.0
# Where the node and the CLI stop sampling (restore's own default stays the paper's 1.0): the shipped
# models' estimates are most faithful about 60% of the way through the steps; the steps after add
# invented detail that scores below bicubic under noisy and JPEG degradations (docs/experiments.md,
# "Ending early: the estimate at every step").
RECOMMENDED_END_PERCENT = 0.6
SAMPLE_SEED_STRIDE = 1000  # restore(samples=K): sample k of image b uses seed + b + 1000 k
CPU_PIXELS_PER_CALL = 2 ** 14  # CPU convolutions run fastest on chunks of about 16k patch pixels
# Elsewhere (GPUs): enough patches per call to fill the device (512 x 32 x 32 px = 0.5 M pixels per
# convolution) instead of launching many small kernels; memory lowers it (fit_memory).
DEVICE_PATCHES_PER_CALL = 512
MEMORY_SHARE = 0.9  # restore plans to use at most this share of the device's free memory


def auto_max_batch(device: torch.device, patch_hw: tuple[int, int], bound: int | None = None) -> int:
    """Patches per UNet call, at most ``bound``: on the CPU a chunk of about 16k pixels (16 patches
    of 32 px; larger chunks fall out of the caches and run slower, measured), elsewhere the bound or
    DEVICE_PATCHES_PER_CALL."""
    if device.type == "cpu":
        fastest = max(1, CPU_PIXELS_PER_CALL // (patch_hw[0] * patch_hw[1]))
        return fastest if bound is None else min(bound, fastest)
    return bound or DEVICE_PATCHES_PER_CALL


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
               fusion: str, max_batch: int, device: torch.device, dtype: torch.dtype,
               held: int = 0) -> tuple[int, int]:
    """The memory guard: (patches per UNet call, images per pass) that fit the device's free memory
    next to ``held`` bytes the run keeps there throughout (held_memory, when the images are there).

    All ``batch`` images in one pass with ``max_batch`` patches per call when that fits; else fewer
    images per pass (down to one), then fewer patches per call. Neither changes the result beyond
    float rounding. A ValueError with the estimate, the limit and what to change when even one
    image with one patch per call would not fit.
    """
    free = available_memory(device)
    if free is None:
        return max_batch, batch
    limit = int(free * MEMORY_SHARE)
    shared, per_patch = memory_estimate(config, 0, size, patch_hw, stride_hw, fusion, dtype)
    per_image = memory_estimate(config, 1, size, patch_hw, stride_hw, fusion, dtype)[0] - shared
    shared += held
    if shared + per_image * batch + per_patch * max_batch <= limit:
        return max_batch, batch
    images = (limit - shared - per_patch * max_batch) // per_image
    if images >= 1:
        return max_batch, int(images)
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
    raise ValueError(f"not enough memory: restoring {batch} image(s) to {size[1]}x{size[0]} px needs about "
                     f"{_gb(fixed + per_patch)} on {device}, but {_gb(limit)} can be used there ({MEMORY_SHARE:.0%} "
                     f"of the {_gb(free)} free); use {', '.join(advice[:-1])}{' or ' if len(advice) > 1 else ''}"
                     f"{advice[-1]}")


def check_held(held: int, batch: int, size: tuple[int, int], device: torch.device) -> None:
    """The guard on the images' device when sampling runs elsewhere: the whole batch's result (and
    sum) must fit there; a ValueError like fit_memory's when it does not."""
    free = available_memory(device)
    if free is not None and held > free * MEMORY_SHARE:
        raise ValueError(f"not enough memory: the {batch} restored image(s) of {size[1]}x{size[0]} px need about "
                         f"{_gb(held)} on {device}, but {_gb(int(free * MEMORY_SHARE))} can be used there "
                         f"({MEMORY_SHARE:.0%} of the {_gb(free)} free); restore fewer images at a time")


def _gb(n: int) -> str:
    return f"{n / 2 ** 30:.2f} GB" if n >= 2 ** 28 else f"{n / 2 ** 20:.0f} MB"


def check_image(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """Validate a float [B, C, H, W] batch in [0, 1] and return it as RGB.

    Greyscale (C = 1) is repeated to RGB; RGBA is refused (composite or drop alpha first).
    Values a hair outside [0, 1] (resampling overshoot) are clamped; values far outside are refused.
    """
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(f"{name} must have shape [B, 3, H, W], got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a float tensor with values in [0, 1], got {image.dtype}")
    channels = image.shape[1]
    if channels == 1:
        image = image.expand(-1, 3, -1, -1)
    elif channels != 3:
        raise ValueError(f"{name} must have 3 (RGB) or 1 (grey) channels, got {channels}"
                         + (" (RGBA? drop the alpha channel first)" if channels == 4 else ""))
    if image.shape[-2] < 1 or image.shape[-1] < 1:
        raise ValueError(f"{name} must be at least 1x1 pixels, got {tuple(image.shape[-2:])}")
    if image.numel() and not torch.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if image.numel() and (image.min() < -0.5 or image.max() > 1.5):
        raise ValueError(f"{name} values must lie in [0, 1], got {image.min().item():.3g}..{image.max().item():.3g}"
                         " (0..255 data? divide by 255)")
    return image.float().clamp(0, 1)


def denoised_timesteps(schedule: NoiseSchedule, steps: int, denoise: float, spacing: str) -> list[int]:
    """The DDIM timesteps of `steps` steps at a denoise strength (KSampler's rule: the last `steps`
    of a schedule of int(steps / denoise) steps, capped at the schedule's length)."""
    if denoise >= 1:
        return schedule.ddim_timesteps(steps, spacing)
    ratio = steps / denoise  # inf for a denoise near 0 (5e-324)
    total = schedule.timesteps if ratio >= schedule.timesteps else max(steps, int(ratio))
    return schedule.ddim_timesteps(total, spacing)[-steps:]


def steps_run(steps: int, end_percent: float) -> int:
    """How many of `steps` steps run when sampling ends at `end_percent` of them (rounded half up, at
    least one); checks both, so every caller refuses a bad value the same way (and before a huge
    `steps` overflows the product)."""
    check_int("steps", steps, 1, MAX_TIMESTEPS)
    check_float("end_percent", end_percent, 0, 1, open_low=True)
    return max(1, int(end_percent * steps + 0.5))


@dataclass(frozen=True)
class SamplingPlan:
    """Where and how often the UNet runs when `restore` samples: the overlapping patch grid (on
    the output canvas, padded at the bottom/right when the image is smaller than a patch), the
    patches per UNet call and the images sampled together in one pass (after the memory guard)."""

    height: int  # output image size
    width: int
    grid: PatchGrid
    max_batch: int  # patches per UNet call
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
        return steps * sum(-(-len(p) * self.patches_per_step // self.max_batch) for p in self.passes(images))

    def describe(self, steps: int, images: int = 1) -> dict:
        """The plan as plain numbers (for a front end that draws the grid)."""
        return {"width": self.width, "height": self.height, "patch": list(self.grid.patch),
                "stride": list(self.grid.stride), "ys": list(self.grid.ys), "xs": list(self.grid.xs),
                "patches_per_step": self.patches_per_step * images, "max_batch": self.max_batch,
                "steps": steps, "unet_calls": self.unet_calls(steps, images)}


def plan_sampling(model: EpsModel, lq_hw: tuple[int, int], *, scale: int | None = None, patch: int | None = None,
                  stride: int | None = None, max_batch: int | None = None, whole_image: bool = False,
                  upsampled: bool = False, images: int = 1, fusion: str = "mean", samples: int = 1,
                  device: torch.device | str = "cpu") -> SamplingPlan:
    """The sampling grid and chunking `restore` uses for `images` LQ images of size ``lq_hw`` (see
    `restore` for the arguments); ``device`` is where the images are (and the result will be),
    also the sampling device of a model without parameters. Raises the memory guard's ValueError
    when the batch's result with one image and one patch per call cannot fit."""
    config = getattr(model, "config", None)
    config = config if hasattr(config, "unet") else None
    scale = scale if scale is not None else (config.scale if config else None)
    if scale is None:
        raise ValueError("scale is required for a model without .config")
    check_int("scale", scale, 1, 16)
    if max_batch is not None:
        check_int("max_batch", max_batch, 1)
    h, w = (int(v) for v in lq_hw)
    height, width = (h, w) if upsampled else (h * scale, w * scale)
    factor = config.unet.downsample_factor if config else 1
    if whole_image:
        round_up = lambda n: -(-n // factor) * factor  # noqa: E731
        patch_hw = (round_up(height), round_up(width))
        stride_hw = patch_hw
    else:
        if patch is None:
            if config is None:
                raise ValueError("patch is required for a model without .config (or use whole_image=True)")
            patch, stride = config.patch, config.stride if stride is None else stride
        check_int("patch", patch, factor, MAX_SIDE)
        if patch % factor:
            raise ValueError(f"patch must be a multiple of {factor} (the UNet's down-sampling), got {patch}")
        stride = max(1, patch // 2) if stride is None else stride
        check_int("stride", stride, 1, patch)
        patch_hw, stride_hw = (patch, patch), (stride, stride)
    home = torch.device(device)
    weight = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    device = weight.device if weight is not None else home
    held = held_memory(images, (h, w), (height, width), samples)
    # an empty batch too: its patch grid is built, and a declared size may be huge
    chunk, per_pass = fit_memory(config, images, (height, width), patch_hw, stride_hw, fusion,
                                 auto_max_batch(device, patch_hw, max_batch), device,
                                 model_dtype(model) or torch.float32, held if device == home else 0)
    if device != home:  # each pass's result comes back to the images' device
        check_held(held + per_pass * 3 * height * width * 4, images, (height, width), home)
    grid = patch_grid(max(height, patch_hw[0]), max(width, patch_hw[1]), patch_hw, stride_hw)
    return SamplingPlan(height, width, grid, chunk, device, max(1, per_pass))


def restore(model: EpsModel, lq: torch.Tensor, *, scale: int | None = None, steps: int = DEFAULT_STEPS,
            eta: float = 0.0, patch: int | None = None, stride: int | None = None, fusion: str = "mean",
            max_batch: int | None = None, seed: int = 0, callback: Callback | None = None,
            cancel: Callable[[], bool] | None = None, whole_image: bool = False, upsampled: bool = False,
            schedule: ScheduleConfig | None = None, spacing: str = "trailing", clip_x0: bool = True,
            denoise: float = 1.0, samples: int | None = None, end_percent: float = 1.0,
            threads: int | None = None) -> torch.Tensor:
    """Restore LQ faces [B, 3, h, w] in [0, 1] to [B, 3, h*scale, w*scale] in [0, 1].

    model: an LPIPModel (scale, patch and schedule default to its config) or any callable
        eps(x_t, lq_up, t) on [-1, 1] tensors, with `scale` and `patch` given explicitly.
    patch, stride: the sampling grid (defaults: the training patch, half of it); the whole-image
        SR3 baseline is `whole_image=True` (one patch = the image).
    fusion: how overlapping eps estimates combine: "mean" (the paper), "median", "gaussian".
    upsampled: `lq` is already at the output size (skip the bicubic upsampling).
    max_batch: most patches per UNet call, across the images of the batch: a memory bound that
        changes the result only by float rounding; on the CPU chunks of about 16k patch pixels run
        fastest and are used when smaller (None: that, or 512 patches elsewhere).
    seed: image b of the batch uses seed + b (wrapped at 2**64). The patches of all images share the
        UNet calls of a step (one pass), so a batch equals its images restored one by one to float
        rounding (docs/nodes.md, "Batches"); when memory is short the guard splits the batch into passes.
    denoise: KSampler's meaning. 1.0 starts from pure noise (the paper); below 1 sampling starts
        from the upsampled LQ noised to the level of the schedule's last `steps` of
        int(steps / denoise) steps and runs those `steps` steps (the number of UNet calls stays
        `steps`); 0 returns the upsampled LQ unchanged.
    samples: return the mean of this many samples (sample k of image b uses seed + b + 1000 k): an
        estimate of the posterior mean, higher in PSNR/SSIM and a little softer to the eye, at
        `samples` times the cost (docs/experiments.md, "Why lpip_x8_128 defaults to two samples").
        1: the paper. None: the model's config.samples (1 for a model without a config).
    end_percent: stop after this fraction of the steps (rounded, at least one) and return that step's
        estimate of the clean face (KSamplerAdvanced's end_at_step with no leftover noise, as a share
        of the steps like ControlNet's end_percent, so it follows a change of `steps`). The late steps
        add the finest detail, the most invented part: ending early is more faithful, softer and
        faster; RECOMMENDED_END_PERCENT is the measured best (docs/experiments.md, "Ending early").
        1.0: every step (the paper).
    threads: torch CPU threads for this call (torch's setting is restored afterwards); None: torch's
        setting, lowered to the CPUs other processes leave idle (measured over 0.1 s, reused for
        30 s): two threads that must share a busy 2-core CPU are many times slower than one.
        Ignored on other devices.
    callback(step, total, x0_estimate in [0, 1]) runs after each step of each pass (total = steps x
    passes x samples, x0 of the pass's images); cancel() is asked before every UNet call and stops sampling
    with SamplingCancelled when it returns True.
    """
    config = getattr(model, "config", None)
    config = config if hasattr(config, "unet") else None
    lq = check_image(lq, "lq")
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if isinstance(eta, bool) or not (isinstance(eta, numbers.Real) and 0 <= eta <= 1):
        raise ValueError(f"eta must be in 0..1, got {shown(eta)}")
    seed = check_seed(seed, lq.shape[0])
    schedule = NoiseSchedule(schedule or (config.schedule if config else ScheduleConfig()))
    check_int("steps", steps, 1, schedule.timesteps)
    if isinstance(denoise, bool) or not isinstance(denoise, numbers.Real) or not 0 <= denoise <= 1:
        raise ValueError(f"denoise must be a number in 0..1 (1 = from pure noise), got {shown(denoise)}")
    samples = (config.samples if config else 1) if samples is None else samples
    check_int("samples", samples, 1, SAMPLE_SEED_STRIDE)
    run = steps_run(steps, end_percent)
    if threads is not None:
        check_int("threads", threads, 1, 1024)

    plan = plan_sampling(model, lq.shape[-2:], scale=scale, patch=patch, stride=stride, max_batch=max_batch,
                         whole_image=whole_image, upsampled=upsampled, images=lq.shape[0], fusion=fusion,
                         samples=samples, device=lq.device)
    if lq.shape[0] == 0:
        return lq.new_zeros(0, 3, plan.height, plan.width)
    timesteps = denoised_timesteps(schedule, steps, denoise, spacing)[:run] if denoise > 0 else []
    passes = [(k, images) for k in range(samples) for images in plan.passes(lq.shape[0])]
    # the result itself, or the float64 sum of several samples (held_memory)
    total = torch.zeros(lq.shape[0], 3, plan.height, plan.width, dtype=torch.float64 if samples > 1 else torch.float32,
                        device=lq.device)
    with cpu_threads(plan.device, threads):
        for j, (k, images) in enumerate(passes):
            report = None if callback is None else (
                lambda i, n, x0, j=j: callback(j * n + i, n * len(passes), (x0 + 1) / 2))
            part = slice(images.start, images.stop)
            out = _sample_pass(model, lq[part], plan, schedule, timesteps,
                               seed=seed_for(seed, images.start + SAMPLE_SEED_STRIDE * k), eta=eta, fusion=fusion,
                               denoise=denoise, clip_x0=clip_x0, callback=report, cancel=cancel)
            if not torch.isfinite(out).all():  # clamp keeps NaN: a broken result must never pass as an image
                dtype = _model_dtype(model)
                raise ValueError(f"the restored image holds NaN or infinite values: {_model_name(model)} overflows "
                                 f"in {dtype} ({'' if dtype == 'float32' else 'load it as float32, or '}check the "
                                 "checkpoint)")
            total[part] += out.to(lq.device)
    return total if samples == 1 else total.div_(samples).float()


def _model_name(model) -> str:
    """The checkpoint a model was loaded from (checkpoint.load_model records it), else "the model"."""
    name = getattr(model, "checkpoint_name", None)
    return f"the model {name}" if name else "the model"


def _model_dtype(model) -> str:
    dtype = model_dtype(model)
    return str(dtype).replace("torch.", "") if dtype is not None else "its dtype"


def _sample_pass(model: EpsModel, lq: torch.Tensor, plan: SamplingPlan, schedule: NoiseSchedule,
                 timesteps: list[int], *, seed: int, eta: float, fusion: str, denoise: float, clip_x0: bool,
                 callback: Callback | None, cancel: Callable[[], bool] | None) -> torch.Tensor:
    """One pass of `restore`: the images of ``lq`` (image b with seed + b) sampled together."""
    height, width, grid, device = plan.height, plan.width, plan.grid, plan.device
    upsampled_lq = resize(lq.to(device), (height, width))
    if denoise == 0:
        return upsampled_lq
    lq_up = upsampled_lq * 2 - 1
    eps = FusedEps(model, pad_to(lq_up, grid.height, grid.width), grid, fusion=fusion, max_batch=plan.max_batch,
                   cancel=cancel)

    def eps_on_canvas(x, t):
        return eps(pad_to(x, grid.height, grid.width), t)[..., :height, :width]

    generators = [torch.Generator().manual_seed(seed_for(seed, b)) for b in range(lq.shape[0])]

    def noise():
        return torch.stack([torch.randn(3, height, width, generator=g) for g in generators]).to(device)

    with torch.inference_mode():
        x = noise()
        if denoise < 1:
            x = schedule.q_sample(lq_up, torch.tensor([timesteps[0]], device=device), x)
        x = sample_ddim(eps_on_canvas, x, schedule.ddim_coefficients(timesteps), timesteps, eta=eta,
                        noise=noise, clip_x0=clip_x0, callback=callback)
    return ((x + 1) / 2).clamp(0, 1)
