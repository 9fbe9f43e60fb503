"""DegradeFace: the paper's training degradation (GFPGAN: blur, downsample, noise, JPEG) as a node."""
from __future__ import annotations

from comfy_api.latest import io

from ..lpip_core import DegradeParams, degrade
from .convert import core_to_image, image_to_core
from .device import output_device, output_dtype

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
                "Makes a low-quality face from a clean one with the degradation LPIP-Diff was trained on "
                "(GFPGAN: Gaussian blur -> downsample -> Gaussian noise -> JPEG). Use it to make test "
                "inputs and to check a model on your own faces: degrade a clean aligned face of the "
                "model's size (64 px for x4), restore the LQ output and compare. random draws the "
                "training ranges from the seed; manual uses the values below."),
            inputs=[
                io.Image.Input("image", tooltip="Clean (high-quality) faces, e.g. 64x64 aligned crops for an "
                                                "x4 model."),
                io.Combo.Input("mode", options=[RANDOM, MANUAL], default=RANDOM,
                               tooltip="random: blur, internal downsampling (x0.8..x8), noise and JPEG drawn "
                                       "from the training ranges (blur scaled to the image size), image i "
                                       "with seed + i. manual: the values below."),
                io.Int.Input("seed", default=0, min=0, max=2**63 - 1, control_after_generate=True,
                             tooltip="Seed of the random parameters (random mode) and of the noise."),
                io.Float.Input("blur_sigma", default=1.0, min=0.0, max=50.0, step=0.1,
                               tooltip="manual: Gaussian blur sigma in pixels of the input image (0 = none)."),
                io.Float.Input("downscale", default=4.0, min=1.0, max=16.0, step=0.5,
                               tooltip="The LQ output is the input size divided by this (4: 64 -> 16 px, "
                                       "what an x4 model expects). In random mode the degradation's own "
                                       "downsampling is drawn at random and the result resized to this size."),
                io.Float.Input("noise_sigma", default=5.0, min=0.0, max=255.0, step=0.5,
                               tooltip="manual: Gaussian noise sigma in 0..255 units (0 = none; training: 0..20)."),
                io.Int.Input("jpeg_quality", default=80, min=0, max=100,
                             tooltip="manual: JPEG quality 1..100 (0 = no JPEG; training: 60..100)."),
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
    def execute(cls, image, mode, seed, blur_sigma, downscale, noise_sigma, jpeg_quality) -> io.NodeOutput:
        x = image_to_core(image)
        h, w = x.shape[-2:]
        for name, value, low, high in (("downscale", downscale, 1.0, 16.0), ("blur_sigma", blur_sigma, 0.0, 50.0),
                                       ("noise_sigma", noise_sigma, 0.0, 255.0), ("jpeg_quality", jpeg_quality, 0, 100)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{name} must be a number in {low}..{high}, got {value!r}")
        size = lq_size(h, w, downscale)
        if mode == RANDOM:
            lq, lq_up = degrade(x, None, seed=seed, lq_size=size)
        elif mode == MANUAL:
            params = DegradeParams(blur_sigma=float(blur_sigma), downscale=float(downscale),
                                   noise_sigma=float(noise_sigma), jpeg_quality=int(jpeg_quality) or None)
            lq, lq_up = degrade(x, params, seed=seed, lq_size=size)
        else:
            raise ValueError(f"mode must be {RANDOM} or {MANUAL}; got {mode!r}")
        device, dtype = output_device(), output_dtype()
        return io.NodeOutput(core_to_image(lq, device, dtype), core_to_image(lq_up, device, dtype))
