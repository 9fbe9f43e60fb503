"""PatchFusedSampler: lpip_core.restore under ComfyUI's control, every face of a batch in one pass."""
from __future__ import annotations

import logging

import comfy.model_management as mm
import comfy.utils
import torch
from comfy.cli_args import args as comfy_args
from comfy_api.latest import io

from ..lpip_core import SamplingCancelled, restore
from ..lpip_core.files import tile, to_pil
from ..lpip_core.method.model import MAX_SAMPLES
from ..lpip_core.method.patches import FUSIONS, count_starts
from ..lpip_core.method.restoration import (DEVICE_PATCHES_PER_CALL, RECOMMENDED_DENOISE, RECOMMENDED_END_PERCENT,
                                            SAMPLE_SEED_STRIDE, SamplingPlan, memory_estimate, plan_sampling,
                                            steps_run)
from ..lpip_core.method.runtime import is_compile_error
from .convert import core_to_image, image_to_core
from .device import output_device, output_dtype
from .memory import run_halving_batch
from .models import LPIPModelHandle
from .preview import temp_images
from .types import MAX_SEED, LPIPModel

log = logging.getLogger("LPIP-Diff")

LOW_RES, UPSCALED = "low_resolution", "already_upscaled"


def check_patch(patch_size: int, stride: int, config, out_h: int, out_w: int) -> tuple[int | None, int | None]:
    """Node-level checks of patch_size and stride against the model and the output image, so that
    errors name the node's inputs. Returns (patch, stride) for restore (None = its default)."""
    factor = config.unet.downsample_factor
    for name, value in (("patch_size", patch_size), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0 (0 = automatic), got {value!r}")
    if patch_size == 0:
        patch, effective = None, config.patch
    else:
        side = min(out_h, out_w)
        largest = side // factor * factor
        accepted = (f"0 (the model's default, {config.patch} px) or a multiple of {factor} from {factor} to "
                    f"{largest}" if largest >= factor else
                    f"only 0 (the model's default, {config.patch} px; the image is padded to fit)")
        if patch_size > side:
            raise ValueError(f"patch_size {patch_size} is larger than the output image ({out_w}x{out_h} px); "
                             f"accepted: {accepted}")
        if patch_size % factor:
            raise ValueError(f"patch_size {patch_size} is not a multiple of {factor} (this model's UNet "
                             f"down-sampling); accepted: {accepted}")
        patch, effective = patch_size, patch_size
    if stride > effective:
        raise ValueError(f"stride {stride} is larger than the patch ({effective} px); accepted: 0 (half the "
                         f"patch, {max(1, effective // 2)} px) or 1 to {effective}")
    return patch, (stride or None)


def working_memory(config, images: int, out_h: int, out_w: int, patch: int | None, stride: int | None, fusion: str,
                   max_patch_batch: int, dtype: torch.dtype) -> int:
    """lpip_core's estimate of what restoring ``images`` images in one pass needs next to the weights
    (ComfyUI frees other models until it fits; restore's own guard then checks the free memory and
    splits the batch into passes if it must)."""
    patch = patch or config.patch
    stride = stride or max(1, patch // 2)
    fixed, per_patch = memory_estimate(config, images, (out_h, out_w), (patch, patch), (stride, stride), fusion,
                                       dtype)
    patches = images * count_starts(max(out_h, patch), patch, stride) * count_starts(max(out_w, patch), patch, stride)
    return fixed + per_patch * min(max_patch_batch, patches)  # a call never holds more patches than there are


class PatchFusedSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LPIPPatchFusedSampler",
            display_name="LPIP-Diff Patch-Fused Sampler",
            category="LPIP-Diff",
            description=(
                "Restores low-quality faces with LPIP-Diff's patch-fused DDIM sampler (Algorithm 2 of the "
                "paper): at every step the noisy image and the upsampled input are cut into overlapping "
                "patches, the model predicts each patch's noise, and the estimates are fused where "
                "patches overlap. Output: the input times the model's scale (e.g. 16 -> 64 px for an x4 "
                "model), or the same size for an already upscaled input. A batch (video frames, or every "
                "face of a Face Crop & Align) is restored in one pass, the patches of all images sharing "
                "the model's calls; image i uses seed + i, so the same seed gives the same result. "
                "Cancellable between UNet calls."),
            inputs=[
                LPIPModel.Input("model", tooltip="From Load LPIP-Diff Model."),
                io.Image.Input("image", tooltip="Low-quality faces, ideally aligned crops of the model's face "
                                                "size (Face Crop & Align with the model's face_size)."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Seed of the starting noise; image i of a batch uses seed + i."),
                io.Int.Input("steps", default=25, min=1, max=1000,
                             tooltip="DDIM steps (of the model's 1000-step schedule). 25 is a good default; "
                                     "more steps are slower and rarely better."),
                io.Float.Input("eta", default=0.0, min=0.0, max=1.0, step=0.05,
                               tooltip="DDIM eta: 0 is the paper's deterministic update; up to 1 adds fresh "
                                       "noise at every step (more varied texture)."),
                io.Int.Input("patch_size", default=0, min=0, max=4096, step=1,
                             tooltip="Side of the sampling patches in output pixels; 0 = the model's "
                                     "training patch (16 for every shipped model). Must be a multiple of the "
                                     "UNet's down-sampling and fit in the output image."),
                io.Int.Input("stride", default=0, min=0, max=4096, step=1,
                             tooltip="Step between patches in output pixels; 0 = half the patch (the "
                                     "paper). Smaller strides overlap more: smoother, slower."),
                io.Combo.Input("fusion", options=list(FUSIONS), default="mean",
                               tooltip="How overlapping noise estimates are combined: mean (the paper), "
                                       "median (its ablation) or gaussian (centre-weighted mean)."),
                io.Int.Input("max_patch_batch", default=DEVICE_PATCHES_PER_CALL, min=1, max=4096,
                             tooltip="Most patches per UNet call, across all images of the batch (memory). It "
                                     "changes the result only by float rounding; on out-of-memory it is "
                                     "halved automatically. On the CPU the sampler may use fewer, which "
                                     "runs faster."),
                io.Combo.Input("input_is", options=[LOW_RES, UPSCALED], default=LOW_RES,
                               tooltip="low_resolution: the image is upscaled by the model's scale (16 px in, "
                                       "64 px out for x4). already_upscaled: the image is already at the "
                                       "output size (e.g. from another upscaler); it is restored in place."),
                io.Float.Input("denoise", default=RECOMMENDED_DENOISE, min=0.0, max=1.0, step=0.05,
                               tooltip="As in KSampler: 1.0 starts from pure noise (the paper); lower values "
                                       "start from the upscaled input noised to that level and keep more "
                                       "of it (more faithful, less invented detail); 0 returns the upscaled "
                                       "input. The number of steps run stays `steps`.",
                               optional=True),
                io.Int.Input("samples", default=0, min=0, max=MAX_SAMPLES,
                             tooltip=f"Restore each image this many times (seeds seed + i + {SAMPLE_SEED_STRIDE} k) and return "
                                     "the mean, more faithful and a little softer at `samples` times the time; "
                                     "0 = the model's default (2 for lpip_x8_128, else 1, the paper).", optional=True),
                io.Float.Input("end_percent", default=RECOMMENDED_END_PERCENT, min=0.01, max=1.0, step=0.01,
                               tooltip="Stop after this share of the steps and return that step's estimate of "
                                       "the clean face (KSamplerAdvanced's end_at_step with no leftover noise, "
                                       "as a share so that it follows `steps`), since the late steps add the "
                                       f"finest, most invented detail: {RECOMMENDED_END_PERCENT:g} is more faithful, "
                                       "softer and faster, 1.0 = every step (the paper).", optional=True),
            ],
            outputs=[io.Image.Output(display_name="image",
                                     tooltip="The restored faces, one per input image.")],
        )

    @classmethod
    def execute(cls, model, image, seed, steps, eta, patch_size, stride, fusion, max_patch_batch,
                input_is=LOW_RES, denoise=RECOMMENDED_DENOISE, samples=0,
                end_percent=RECOMMENDED_END_PERCENT) -> io.NodeOutput:
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}; got {fusion!r}")
        if input_is not in (LOW_RES, UPSCALED):
            raise ValueError(f"input_is must be {LOW_RES} or {UPSCALED}; got {input_is!r}")
        x = image_to_core(image)
        h, w = x.shape[-2:]
        config = check_model(model).config
        samples = samples or config.samples
        if input_is == LOW_RES and min(h, w) > 4 * config.lq_size:
            log.warning("LPIP-Diff: the sampler got %dx%d px images, but %s restores %d px faces (x%d): did you "
                        "mean to connect Face Crop & Align's faces?", w, h, model.name, config.lq_size, config.scale)
        restored, plan = sample_faces(model, x, seed=seed, steps=steps, eta=eta, patch_size=patch_size,
                                      stride=stride, fusion=fusion, max_patch_batch=max_patch_batch,
                                      upsampled=input_is == UPSCALED, denoise=denoise, samples=samples,
                                      end_percent=end_percent)
        out = core_to_image(restored, output_device(), output_dtype())
        return io.NodeOutput(out, ui=grid_ui(out, plan, steps_run(steps, end_percent) if denoise > 0 else 0, cls,
                                             samples))


def check_model(model) -> LPIPModelHandle:
    if not isinstance(model, LPIPModelHandle):
        raise ValueError(f"model must come from a Load LPIP-Diff Model node, got {type(model).__name__}")
    return model


def sample_faces(model: LPIPModelHandle, x: torch.Tensor, *, seed: int, steps: int, eta: float, patch_size: int,
                 stride: int, fusion: str, max_patch_batch: int, upsampled: bool,
                 denoise: float = RECOMMENDED_DENOISE, samples: int = 0,
                 end_percent: float = RECOMMENDED_END_PERCENT) -> tuple[torch.Tensor, SamplingPlan]:
    """Restore core images [B, 3, h, w] in one `restore` call (image i with seed + i, the patches of
    all images in shared UNet calls) under ComfyUI's control: progress with a preview of the batch
    per step, cancel between UNet calls, the patch batch halved on out-of-memory. Returns the
    restored images (on ComfyUI's output device) and the sampling plan. samples 0: the model's."""
    config = check_model(model).config
    samples = samples or config.samples
    frames, _, h, w = x.shape
    out_h, out_w = (h, w) if upsampled else (h * config.scale, w * config.scale)
    patch, stride = check_patch(patch_size, stride, config, out_h, out_w)
    net = model.load(working_memory(config, frames, out_h, out_w, patch, stride, fusion, max_patch_batch,
                                    model.dtype))
    pbar = comfy.utils.ProgressBar(steps_run(steps, end_percent) * samples)
    preview_px = getattr(comfy_args, "preview_size", 512)

    def on_step(step, total, x0):  # progress + preview; also a cancel point
        preview = tile(x0)
        size = min(preview_px, max(preview.shape[-2:]))  # ComfyUI would enlarge small previews
        pbar.update_absolute(step, total, ("JPEG", to_pil(preview), size))

    def run(chunk):
        try:
            return restore(net, x, steps=steps, eta=eta, patch=patch, stride=stride, fusion=fusion, max_batch=chunk,
                           seed=seed, callback=on_step, cancel=mm.processing_interrupted, upsampled=upsampled,
                           denoise=denoise, samples=samples, end_percent=end_percent)
        except SamplingCancelled:  # asked between UNet calls: report it as ComfyUI does
            mm.throw_exception_if_processing_interrupted()
            raise mm.InterruptProcessingException() from None
        except Exception as error:
            if model.compiled and is_compile_error(error):
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise RuntimeError(f"torch.compile failed on this machine ({first[:300]}); load the model "
                                   "with compile set to false") from None
            raise

    restored, batch = run_halving_batch(run, max_patch_batch, oom_type=mm.OOM_EXCEPTION,
                                        empty_cache=mm.soft_empty_cache,
                                        never_catch=(mm.InterruptProcessingException,))
    plan = plan_sampling(net, (h, w), patch=patch, stride=stride, max_batch=batch, upsampled=upsampled,
                         images=frames, fusion=fusion, samples=samples, device=x.device)
    return restored.to(output_device()), plan


def grid_ui(image: torch.Tensor, plan: SamplingPlan, steps: int, cls, samples: int = 1) -> dict:
    """What the front end draws on the sampler node: the restored images (temporary previews) and
    the patch grid of one image with its counts, for the whole batch (and every sample)."""
    frames = image.shape[0]
    info = plan.describe(steps) | {"images": frames, "samples": samples,
                                   "unet_calls": plan.unet_calls(steps, frames) * samples}
    return {"lpip_preview": temp_images(image, "lpip-diff.sampler", cls), "lpip_grid": [info]}
