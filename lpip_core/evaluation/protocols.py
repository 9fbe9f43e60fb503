"""Evaluation protocols: fixed, seeded ways of making the LQ faces a model is judged on.

A model must be judged on degradations it was not trained on. `clean` and the three
`lq-noise-jpeg` strengths are fixed points (no random draw) that a real tiny face can show;
`gfpgan512` is the soft degradation the first models were trained on; `unseen` uses a resampler
(Lanczos) and a codec (WebP) that no training degradation uses. Face b of a batch uses seed + b.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from PIL import Image

from ..data.degrade import DegradeParams, degrade, photo_pose, random_params
from ..files import compressed, from_pil, quantize_8bit, to_pil

LQ_BLUR = 0.5  # the lq-noise-jpeg protocols' fixed blur, sigma in LQ pixels


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    noise_sigma: float = 0.0  # lq-noise-jpeg: at the LQ size, of 255
    jpeg_quality: int | None = None
    blur: float = 0.0  # sigma in LQ pixels


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("clean", "antialiased bicubic downsample to the LQ size, nothing else"),
    Protocol("lq-noise-jpeg-light", "blur 0.5 LQ px, antialiased bicubic downsample, noise 5 and JPEG 85 at the "
             "LQ size", noise_sigma=5, jpeg_quality=85, blur=LQ_BLUR),
    Protocol("lq-noise-jpeg-medium", "blur 0.5 LQ px, antialiased bicubic downsample, noise 10 and JPEG 70 at the "
             "LQ size", noise_sigma=10, jpeg_quality=70, blur=LQ_BLUR),
    Protocol("lq-noise-jpeg-strong", "blur 0.5 LQ px, antialiased bicubic downsample, noise 15 and JPEG 50 at the "
             "LQ size", noise_sigma=15, jpeg_quality=50, blur=LQ_BLUR),
    Protocol("gfpgan512", "GFPGAN's random blur, shrink, noise and JPEG on the 512 px-pipeline intermediate "
             "image, then resized to the LQ size (the first models' training degradation), face b with seed + b"),
    Protocol("unseen", "PIL Lanczos downsample and WebP quality 50 at the LQ size: a resampler and a codec "
             "that no training degradation uses"),
)}


# Asked for by name, not in "all" (the floor is judged under the six): how a real photo makes the LQ face.
EXTRA_PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("photo", "the face rolled, rescaled and shifted as a photo holds it (face b: seed + b), shrunk "
             "with antialiased bicubic, then aligned at the LQ size from a x4 upscale, as Face Crop & Align "
             "cuts a real tiny face from an upscaled photo"),
)}
KNOWN_PROTOCOLS = {**PROTOCOLS, **EXTRA_PROTOCOLS}


def check_protocols(names) -> tuple[str, ...]:
    """Protocol names (or "all": the six of PROTOCOLS) -> a tuple of known names, in the order given."""
    names = tuple(PROTOCOLS) if names in ("all", ("all",), ["all"]) else tuple(names)
    unknown = [n for n in names if n not in KNOWN_PROTOCOLS]
    if not names or unknown:
        raise ValueError(f"protocol must be 'all' or one of {', '.join(KNOWN_PROTOCOLS)}; "
                         f"got {', '.join(unknown) or 'none'}")
    return names


def make_lq(name: str, hq: torch.Tensor, lq_size: int, seed: int = 0) -> torch.Tensor:
    """The LQ faces [B, 3, lq_size, lq_size] of protocol `name` for HQ faces [B, 3, H, H] in [0, 1],
    rounded to 8 bits as a saved file would be."""
    protocol = KNOWN_PROTOCOLS[check_protocols((name,))[0]]
    size = hq.shape[-1]
    r = size / lq_size
    if name == "unseen":
        lq = torch.cat([_lanczos_webp(face, lq_size, quality=50) for face in hq]) if len(hq) else hq[:, :, :0, :0]
    elif name == "photo":
        params = [DegradeParams(downscale=r, resample="bicubic-aa", photo_pose=photo_pose(random.Random(seed + b)),
                                photo_upscaled=True) for b in range(len(hq))]
        lq, _ = degrade(hq, params, seed=seed, lq_size=(lq_size, lq_size))
    elif name == "gfpgan512":
        params = [random_params(random.Random(seed + b), size, lq_size, variant="gfpgan512") for b in range(len(hq))]
        lq, _ = degrade(hq, params, seed=seed, lq_size=(lq_size, lq_size))
    else:
        params = DegradeParams(blur_sigma=protocol.blur * r, downscale=r, resample="bicubic-aa",
                               noise_sigma=protocol.noise_sigma, jpeg_quality=protocol.jpeg_quality)
        lq, _ = degrade(hq, params, seed=seed, lq_size=(lq_size, lq_size))
    return quantize_8bit(lq)


def _lanczos_webp(face: torch.Tensor, lq_size: int, quality: int) -> torch.Tensor:
    small = from_pil(to_pil(face).resize((lq_size, lq_size), Image.Resampling.LANCZOS))[0]
    return compressed(small, "WEBP", quality)[None].to(face.device)
