"""`restore`: the public entry point that turns LQ faces into restored HQ faces (Algorithm 2):
checks its input, builds the timesteps once, plans the patch grid (plan.plan_sampling) and runs the
fused DDIM loop (sampler.sample_ddim) over each pass of images and each sample."""
from __future__ import annotations

import functools
import warnings
from typing import Callable

import torch

from ..checks import check_choice, check_float, check_int, check_seed, seed_for
from ..resize import resize
from .patches import FUSIONS, pad_to
from .plan import ALREADY_UPSCALED, LOW_RESOLUTION, SamplingPlan, model_config, plan_sampling
from .runtime import cpu_threads
from .sampler import Callback, EpsModel, FusedEps, model_dtype, sample_ddim, step_callback
from .schedule import NoiseSchedule, ScheduleConfig, sampling_timesteps

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
# restore's keywords before the API, the CLI and the nodes shared one vocabulary: old -> new
RENAMED_KEYWORDS = {"patch": "patch_size", "max_batch": "max_patch_batch", "upsampled": "input_is"}


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


def _renamed_keywords(function):
    """Accept restore's old keywords (RENAMED_KEYWORDS) with a DeprecationWarning, so that a script
    written against an earlier release keeps running; upsampled=True is input_is=ALREADY_UPSCALED."""
    @functools.wraps(function)
    def accepting_old_names(*args, **kwargs):
        for old, new in RENAMED_KEYWORDS.items():
            if old not in kwargs:
                continue
            if new in kwargs:
                raise TypeError(f"{function.__name__}() got both {old!r} and {new!r}; pass {new!r} alone")
            value = kwargs.pop(old)
            if old == "upsampled":
                value, hint = (ALREADY_UPSCALED if value else LOW_RESOLUTION), f"input_is={ALREADY_UPSCALED!r}"
            else:
                hint = f"{new}=..."
            warnings.warn(f"{function.__name__}({old}=...) is deprecated: use {hint}", DeprecationWarning,
                          stacklevel=2)
            kwargs[new] = value
        return function(*args, **kwargs)
    return accepting_old_names


@_renamed_keywords
def restore(model: EpsModel, lq: torch.Tensor, *, scale: int | None = None, steps: int = DEFAULT_STEPS,
            eta: float = 0.0, patch_size: int | None = None, stride: int | None = None, fusion: str = "mean",
            max_patch_batch: int | None = None, seed: int = 0, callback: Callback | None = None,
            cancel: Callable[[], bool] | None = None, whole_image: bool = False, input_is: str = LOW_RESOLUTION,
            schedule: ScheduleConfig | None = None, spacing: str = "trailing", clip_x0: bool = True,
            denoise: float = 1.0, samples: int | None = None, end_percent: float = 1.0,
            threads: int | None = None,
            return_plan: bool = False) -> torch.Tensor | tuple[torch.Tensor, SamplingPlan]:
    """Restore LQ faces [B, 3, h, w] in [0, 1] to [B, 3, h*scale, w*scale] in [0, 1].

    model: an LPIPModel (scale, patch_size and schedule default to its config) or any callable
        eps(x_t, lq_up, t) on [-1, 1] tensors, with `scale` and `patch_size` given explicitly.
    patch_size, stride: the sampling grid (defaults: the training patch, half of it); the whole-image
        SR3 baseline is `whole_image=True` (one patch = the image).
    fusion: how overlapping eps estimates combine: "mean" (the paper), "median", "gaussian".
    input_is: LOW_RESOLUTION ("low_resolution", the default): `lq` is enlarged by `scale`;
        ALREADY_UPSCALED ("already_upscaled"): `lq` is already at the output size and is restored in
        place (no bicubic upsampling).
    max_patch_batch: most patches per UNet call, across the images of the batch: a memory bound that
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
    callback(info) runs after each step of each pass with a dict, as in k-diffusion: "i" the step's
    index 0..total-1 over the whole run, "total" = steps run x passes x samples, "t" the step's
    timestep, "x" the noisy x_t it started from (in the model's [-1, 1]), "denoised" its estimate of
    the clean images of the pass (in [0, 1]), "images" the batch indices of the pass (a range),
    "sample" the sample k. An old callback(step, total, x0) still works (step = i + 1, x0 =
    denoised), with a DeprecationWarning. cancel() is asked before every UNet call and stops
    sampling with SamplingCancelled when it returns True.
    return_plan: return (images, the SamplingPlan it ran) instead of the images alone.
    The old keywords patch, max_batch and upsampled (True: input_is=ALREADY_UPSCALED) still work,
    with a DeprecationWarning.
    """
    config = model_config(model)
    lq = check_image(lq, "lq")
    check_choice("fusion", fusion, FUSIONS)
    check_float("eta", eta, 0, 1)
    seed = check_seed(seed, lq.shape[0])
    schedule = NoiseSchedule(schedule or (config.schedule if config else ScheduleConfig()))
    timesteps = sampling_timesteps(schedule, steps, denoise=denoise, end_percent=end_percent, spacing=spacing)
    samples = (config.samples if config else 1) if samples is None else samples
    check_int("samples", samples, 1, SAMPLE_SEED_STRIDE)
    if threads is not None:
        check_int("threads", threads, 1, 1024)
    plan = plan_sampling(model, lq.shape[-2:], scale=scale, patch_size=patch_size, stride=stride,
                         max_patch_batch=max_patch_batch, whole_image=whole_image, input_is=input_is,
                         images=lq.shape[0], fusion=fusion, samples=samples, device=lq.device)
    if lq.shape[0] == 0:
        restored = lq.new_zeros(0, 3, plan.height, plan.width)
    else:
        with cpu_threads(plan.device, threads):
            restored = _sample_passes(model, lq, plan, schedule, timesteps, seed=seed, samples=samples,
                                      callback=step_callback(callback), eta=eta, fusion=fusion, denoise=denoise,
                                      clip_x0=clip_x0, cancel=cancel)
    return (restored, plan) if return_plan else restored


def _sample_passes(model: EpsModel, lq: torch.Tensor, plan: SamplingPlan, schedule: NoiseSchedule,
                   timesteps: list[int], *, seed: int, samples: int, callback: Callback | None,
                   **sampling) -> torch.Tensor:
    """Every pass of the plan for every sample (sample k of image b with seed + b + 1000 k): the
    result, or the mean of the samples (summed in float64, as held_memory counts)."""
    passes = [(k, images) for k in range(samples) for images in plan.passes(lq.shape[0])]
    total = torch.zeros(lq.shape[0], 3, plan.height, plan.width, dtype=torch.float64 if samples > 1 else torch.float32,
                        device=lq.device)
    for j, (k, images) in enumerate(passes):
        report = None if callback is None else functools.partial(_report, callback, j, len(passes), k, images)
        part = slice(images.start, images.stop)
        out = _sample_pass(model, lq[part], plan, schedule, timesteps,
                           seed=seed_for(seed, images.start + SAMPLE_SEED_STRIDE * k), callback=report, **sampling)
        if not torch.isfinite(out).all():  # clamp keeps NaN: a broken result must never pass as an image
            dtype = _model_dtype(model)
            raise ValueError(f"the restored image holds NaN or infinite values: {_model_name(model)} overflows "
                             f"in {dtype} ({'' if dtype == 'float32' else 'load it as float32, or '}check the "
                             "checkpoint)")
        total[part] += out.to(lq.device)
    return total if samples == 1 else total.div_(samples).float()


def _report(callback: Callback, j: int, passes: int, k: int, images: range, info: dict) -> None:
    """Step info["i"] of pass j as restore's callback sees it: counted over the whole run, its
    estimate in [0, 1], with the pass's images and sample."""
    n = info["total"]
    callback(info | {"i": j * n + info["i"], "total": n * passes, "denoised": (info["denoised"] + 1) / 2,
                     "images": images, "sample": k})


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
    eps = FusedEps(model, pad_to(lq_up, grid.height, grid.width), grid, fusion=fusion, max_batch=plan.max_patch_batch,
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
