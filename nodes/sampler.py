"""PatchFusedSampler: lpip_core.restore under ComfyUI's control, every face of a batch in one pass."""
from __future__ import annotations

import inspect
import logging

import comfy.model_management as mm
import comfy.utils
import torch
from comfy.cli_args import args as comfy_args
from comfy_api.latest import io

from ..lpip_core import SamplingCancelled, restore
from ..lpip_core.files import tile, to_pil
from ..lpip_core.method.model import MAX_SAMPLES
from ..lpip_core.method.patches import FUSIONS
from ..lpip_core.method.plan import (DEVICE_PATCHES_PER_CALL, INPUT_KINDS, LOW_RESOLUTION, PatchLayout, SamplingPlan,
                                     patch_layout)
from ..lpip_core.method.restoration import RECOMMENDED_DENOISE, RECOMMENDED_END_PERCENT, SAMPLE_SEED_STRIDE
from ..lpip_core.method.runtime import is_compile_error
from ..lpip_core.method.schedule import steps_until_end
from .convert import core_to_image, image_to_core
from .device import output_device, output_dtype
from .memory import run_halving_batch
from .models import LPIPModelHandle
from .preview import temp_images
from .types import MAX_SEED, LPIPModel

log = logging.getLogger("LPIP-Diff")

# Inputs folded away until the user asks for them: ComfyUI 0.28.2's V3 inputs take advanced=True,
# 0.3.75's do not (there they stay in view, as before).
ADVANCED = {"advanced": True} if "advanced" in inspect.signature(io.Input.__init__).parameters else {}


def check_patch_fits(patch_size: int | None, layout: PatchLayout, config) -> None:
    """The node's one rule that restore does not make (restore pads the image to a larger patch):
    an explicit patch_size must fit in the output image. restore checks the ranges themselves, in
    the same input names."""
    side = min(layout.height, layout.width)
    if patch_size is None or patch_size <= side:
        return
    factor = config.unet.downsample_factor
    largest = side // factor * factor
    accepted = (f"0 (the model's default, {config.patch} px) or a multiple of {factor} from {factor} to {largest}"
                if largest >= factor else
                f"only 0 (the model's default, {config.patch} px; the image is padded to fit)")
    raise ValueError(f"patch_size {patch_size} is larger than the output image ({layout.width}x{layout.height} px); "
                     f"accepted: {accepted}")


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
                                       "noise at every step (more varied texture).", **ADVANCED),
                io.Int.Input("patch_size", default=0, min=0, max=4096, step=1,
                             tooltip="Side of the sampling patches in output pixels; 0 = the model's "
                                     "training patch (16 for every shipped model). Must be a multiple of the "
                                     "UNet's down-sampling and fit in the output image.", **ADVANCED),
                io.Int.Input("stride", default=0, min=0, max=4096, step=1,
                             tooltip="Step between patches in output pixels; 0 = half the patch (the "
                                     "paper). Smaller strides overlap more: smoother, slower.", **ADVANCED),
                io.Combo.Input("fusion", options=list(FUSIONS), default="mean",
                               tooltip="How overlapping noise estimates are combined: mean (the paper), "
                                       "median (its ablation) or gaussian (centre-weighted mean).", **ADVANCED),
                io.Int.Input("max_patch_batch", default=DEVICE_PATCHES_PER_CALL, min=1, max=4096,
                             tooltip="Most patches per UNet call, across all images of the batch (memory). It "
                                     "changes the result only by float rounding; on out-of-memory it is "
                                     "halved automatically. On the CPU the sampler may use fewer, which "
                                     "runs faster.", **ADVANCED),
                io.Combo.Input("input_is", options=list(INPUT_KINDS), default=LOW_RESOLUTION,
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
                input_is=LOW_RESOLUTION, denoise=RECOMMENDED_DENOISE, samples=0,
                end_percent=RECOMMENDED_END_PERCENT) -> io.NodeOutput:
        x = image_to_core(image)
        h, w = x.shape[-2:]
        config = check_model(model).config
        samples = samples or config.samples
        if input_is == LOW_RESOLUTION and min(h, w) > 4 * config.lq_size:
            log.warning("LPIP-Diff: the sampler got %dx%d px images, but %s restores %d px faces (x%d): did you "
                        "mean to connect Face Crop & Align's faces?", w, h, model.name, config.lq_size, config.scale)
        restored, plan = sample_faces(model, x, seed=seed, steps=steps, eta=eta, patch_size=patch_size,
                                      stride=stride, fusion=fusion, max_patch_batch=max_patch_batch,
                                      input_is=input_is, denoise=denoise, samples=samples, end_percent=end_percent)
        out = core_to_image(restored, output_device(), output_dtype())
        steps_taken = steps_until_end(steps, end_percent) if denoise > 0 else 0
        return io.NodeOutput(out, ui=grid_ui(out, plan, steps_taken, cls, samples))


def check_model(model) -> LPIPModelHandle:
    if not isinstance(model, LPIPModelHandle):
        raise ValueError(f"model must come from a Load LPIP-Diff Model node, got {type(model).__name__}")
    return model


def sample_faces(model: LPIPModelHandle, x: torch.Tensor, *, seed: int, steps: int, eta: float, patch_size: int,
                 stride: int, fusion: str, max_patch_batch: int, input_is: str,
                 denoise: float = RECOMMENDED_DENOISE, samples: int = 0,
                 end_percent: float = RECOMMENDED_END_PERCENT) -> tuple[torch.Tensor, SamplingPlan]:
    """Restore core images [B, 3, h, w] in one `restore` call (image i with seed + i, the patches of
    all images in shared UNet calls) under ComfyUI's control: progress with a preview of the batch
    per step, cancel between UNet calls, the patch batch halved on out-of-memory. Returns the
    restored images (on ComfyUI's output device) and the sampling plan restore ran. patch_size and
    stride 0: automatic (restore's None); samples 0: the model's. restore checks the values."""
    config = check_model(model).config
    samples = samples or config.samples
    patch_size, stride = patch_size or None, stride or None
    layout = patch_layout(config, x.shape[-2:], patch_size=patch_size, stride=stride, input_is=input_is)
    check_patch_fits(patch_size, layout, config)
    net = model.load(layout.working_memory(config, x.shape[0], fusion, max_patch_batch, model.dtype))
    pbar = comfy.utils.ProgressBar(steps_until_end(steps, end_percent) * samples)
    preview_px = getattr(comfy_args, "preview_size", 512)

    def on_step(info):  # progress + preview; also a cancel point
        preview = tile(info["denoised"])
        size = min(preview_px, max(preview.shape[-2:]))  # ComfyUI would enlarge small previews
        pbar.update_absolute(info["i"] + 1, info["total"], ("JPEG", to_pil(preview), size))

    def run(chunk):
        try:
            return restore(net, x, steps=steps, eta=eta, patch_size=patch_size, stride=stride, fusion=fusion,
                           max_patch_batch=chunk, seed=seed, callback=on_step, cancel=mm.processing_interrupted,
                           input_is=input_is, denoise=denoise, samples=samples, end_percent=end_percent,
                           return_plan=True)
        except SamplingCancelled:  # asked between UNet calls: report it as ComfyUI does
            mm.throw_exception_if_processing_interrupted()
            raise mm.InterruptProcessingException() from None
        except Exception as error:
            if model.compiled and is_compile_error(error):
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise RuntimeError(f"torch.compile failed on this machine ({first[:300]}); load the model "
                                   "with compile set to false") from None
            raise

    (restored, plan), _ = run_halving_batch(run, max_patch_batch, oom_type=mm.OOM_EXCEPTION,
                                            empty_cache=mm.soft_empty_cache,
                                            never_catch=(mm.InterruptProcessingException,))
    return restored.to(output_device()), plan


def grid_ui(image: torch.Tensor, plan: SamplingPlan, steps: int, cls, samples: int = 1) -> dict:
    """What the front end draws on the sampler node: the restored images (temporary previews) and
    the patch grid of one image with its counts, for the whole batch (and every sample)."""
    frames = image.shape[0]
    info = plan.describe(steps) | {"images": frames, "samples": samples,
                                   "unet_calls": plan.unet_calls(steps, frames) * samples}
    return {"lpip_preview": temp_images(image, "lpip-diff.sampler", cls), "lpip_grid": [info]}
