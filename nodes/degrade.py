"""DegradeFace: the training degradation (blur, downsample, noise, JPEG at the LQ size) as a node."""
from __future__ import annotations

from comfy_api.latest import io

from ..lpip_core import DegradeParams, degrade
from ..lpip_core.checks import check_choice
from ..lpip_core.data.degrade import BLUR_LIMITS, LQ_JPEG_RANGE, LQ_NOISE_RANGE, NOISE_LIMITS, RESAMPLE_KERNELS
from ..lpip_core.method.model import MAX_SCALE
from .convert import core_to_image, image_to_core
from .device import output_device, output_dtype
from .types import MAX_SEED

RANDOM, MANUAL = "random", "manual"


def lq_size(height: int, width: int, downscale: float) -> tuple[int, int]:
    return max(1, round(height / downscale)), max(1, round(width / downscale))


class DegradeFace(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LPIPDegradeFace",
            display_name="Degrade Face (LPIP-Diff)",
            category="LPIP-Diff",
            description=(
                "Makes a low-quality face from a clean one with the degradations LPIP-Diff is trained on "
                "(Gaussian blur -> downsample -> Gaussian noise -> JPEG, the paper's formula). Use it to "
                "make test inputs and to check a model on your own faces: degrade a clean aligned face of "
                "the model's size (64 px for x4), restore the LQ output and compare. random draws from the "
                "training mixture with the seed; manual uses the values below, with noise and JPEG at "
                "the LQ size."),
            inputs=[
                io.Image.Input("image", tooltip="Clean (high-quality) faces, e.g. 64x64 aligned crops for an "
                                                "x4 model."),
                io.Combo.Input("mode", options=[RANDOM, MANUAL], default=RANDOM,
                               tooltip="random: a draw from the training mixture (half: blur, a random "
                                       "downsampling kernel, noise and JPEG at the LQ size; a quarter: a "
                                       "clean downsample; a quarter: GFPGAN's 512 px pipeline), image i with "
                                       "seed + i. manual: the values below."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Seed of the random parameters (random mode) and of the noise."),
                io.Float.Input("blur_sigma", default=1.0, min=float(BLUR_LIMITS[0]), max=float(BLUR_LIMITS[1]), step=0.1,
                               tooltip="manual: Gaussian blur sigma in pixels of the input image (0 = none)."),
                # Narrower than DegradeParams' range on purpose: the node makes the LQ face of a model of
                # scale 1..MAX_SCALE (DegradeParams also serves the command line, which may enlarge).
                io.Float.Input("downscale", default=4.0, min=1.0, max=float(MAX_SCALE), step=0.5,
                               tooltip="The LQ output is the input size divided by this (4: 64 -> 16 px, "
                                       "what an x4 model expects). In random mode the degradation's own "
                                       "downsampling is drawn at random and the result resized to this size."),
                io.Float.Input("noise_sigma", default=5.0, min=float(NOISE_LIMITS[0]), max=float(NOISE_LIMITS[1]), step=0.5,
                               tooltip="manual: Gaussian noise sigma in 0..255 units at the LQ size (0 = none; "
                                       f"training: {LQ_NOISE_RANGE[0]:g}..{LQ_NOISE_RANGE[1]:g})."),
                io.Int.Input("jpeg_quality", default=80, min=0, max=100,
                             tooltip=f"manual: JPEG quality at the LQ size, 1..100 (0 = no JPEG; training: "
                                     f"{LQ_JPEG_RANGE[0]}..{LQ_JPEG_RANGE[1]})."),
                io.Combo.Input("resample", options=list(RESAMPLE_KERNELS), default="bicubic-aa",
                               tooltip="manual: the downsampling kernel (-aa: antialiased, as a photo editor "
                                       "resizes; without: sharper, aliased, as a cheap thumbnail).",
                               optional=True),
            ],
            outputs=[
                io.Image.Output(display_name="lq", tooltip="The low-quality faces, input size / downscale: "
                                                           "the input of a Patch-Fused Sampler."),
                io.Image.Output(display_name="lq_upscaled",
                                tooltip="The low-quality faces resized (bicubic) back to the input size, to "
                                        "compare side by side with the clean and the restored face."),
            ],
        )

    @classmethod
    def execute(cls, image, mode, seed, blur_sigma, downscale, noise_sigma, jpeg_quality,
                resample="bicubic-aa") -> io.NodeOutput:
        check_choice("mode", mode, (RANDOM, MANUAL))  # the node's own: no core function sees it
        x = image_to_core(image)
        h, w = x.shape[-2:]
        # DegradeParams checks the knobs, in random mode too (which uses only downscale, for the LQ size), so
        # that a value out of range is an error in either mode. Input names and DegradeParams' fields agree.
        params = DegradeParams(blur_sigma=blur_sigma, downscale=downscale, noise_sigma=noise_sigma,
                               jpeg_quality=jpeg_quality or None, resample=resample)
        lq, lq_up = degrade(x, params if mode == MANUAL else None, seed=seed, lq_size=lq_size(h, w, downscale))
        device, dtype = output_device(), output_dtype()
        return io.NodeOutput(core_to_image(lq, device, dtype), core_to_image(lq_up, device, dtype))
