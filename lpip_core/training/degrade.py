"""The GFPGAN degradation (Wang et al. 2021) that makes LQ training and test faces:
blur -> downsample -> Gaussian noise -> JPEG, then resize to the LQ size.

GFPGAN works on 512 px faces: blur sigma 0.1..10 (kernel 41, isotropic or anisotropic), shrink
by r = 0.8..8 to 512 / r px, add noise 0..20 (of 255) and JPEG (quality 60..100) at that size;
LPIP-Diff then takes the result down to its 16 px LQ. `random_params` runs the same pipeline on a
face of side H by expressing it in that face's pixels: the blur sigma is a length (x H / 512), and
the intermediate image keeps the side it has in the 512 px pipeline, 512 / r px, i.e. a downscale
of r * H / 512 relative to H. Below 1 that enlarges the face, so noise and JPEG act at GFPGAN's
finer resolution and mostly average out in the small LQ, as they do in the paper's setting.
Noise level and JPEG quality are per-pixel and stay as they are. The blur kernel spans 3 sigma
on each side (GFPGAN's fixed 41 px kernel is about 2 sigma at sigma 10).
"""
from __future__ import annotations

import io
import math
import random
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from ..resize import resize

REFERENCE_SIZE = 512
BLUR_SIGMA_RANGE = (0.1, 10.0)  # px at 512
DOWNSCALE_RANGE = (0.8, 8.0)
NOISE_RANGE = (0.0, 20.0)  # of 255
JPEG_RANGE = (60, 100)


@dataclass(frozen=True)
class DegradeParams:
    """One degradation. Lengths are in pixels of the HQ image; noise_sigma is in 0..255 units."""

    blur_sigma: float = 0.0  # 0 = no blur
    downscale: float = 4.0  # the image shrinks to 1 / downscale (1 = no resampling, < 1 enlarges)
    noise_sigma: float = 0.0  # 0 = no noise
    jpeg_quality: int | None = None  # None = no JPEG; else 1..100
    blur_sigma_y: float | None = None  # anisotropic blur: the second axis (None = isotropic)
    blur_angle: float = 0.0  # radians, rotation of an anisotropic kernel

    def __post_init__(self):
        def check(name, value, low, high):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{name} must be in {low}..{high}, got {value!r}")

        check("blur_sigma", self.blur_sigma, 0.0, 50.0)
        if self.blur_sigma_y is not None:
            check("blur_sigma_y", self.blur_sigma_y, 0.0, 50.0)
        check("downscale", self.downscale, 0.01, 64.0)
        check("noise_sigma", self.noise_sigma, 0.0, 255.0)
        if self.jpeg_quality is not None:
            check("jpeg_quality", self.jpeg_quality, 1, 100)

    def to_dict(self) -> dict:
        return asdict(self)


def random_params(rng: random.Random, hq_size: int = REFERENCE_SIZE) -> DegradeParams:
    """A GFPGAN-range degradation for faces of side `hq_size`."""
    size_factor = hq_size / REFERENCE_SIZE
    sigma = rng.uniform(*BLUR_SIGMA_RANGE) * size_factor
    anisotropic = rng.random() < 0.5
    return DegradeParams(
        blur_sigma=sigma,
        blur_sigma_y=rng.uniform(*BLUR_SIGMA_RANGE) * size_factor if anisotropic else None,
        blur_angle=rng.uniform(-math.pi, math.pi) if anisotropic else 0.0,
        downscale=rng.uniform(*DOWNSCALE_RANGE) * size_factor,
        noise_sigma=rng.uniform(*NOISE_RANGE),
        jpeg_quality=rng.randint(*JPEG_RANGE),
    )


def blur_kernel(sigma_x: float, sigma_y: float | None = None, angle: float = 0.0) -> torch.Tensor:
    """A normalised 2-D Gaussian kernel (rotated when anisotropic) spanning 3 sigma each side."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    radius = max(1, math.ceil(3 * max(sigma_x, sigma_y)))
    ax = torch.arange(-radius, radius + 1, dtype=torch.float64)
    y, x = torch.meshgrid(ax, ax, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = cos * x + sin * y, -sin * x + cos * y
    kernel = torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (kernel / kernel.sum()).float()


def _blur(image: torch.Tensor, params: DegradeParams) -> torch.Tensor:
    if params.blur_sigma <= 0 and not params.blur_sigma_y:
        return image
    sx = max(params.blur_sigma, 1e-3)
    sy = None if params.blur_sigma_y is None else max(params.blur_sigma_y, 1e-3)
    kernel = blur_kernel(sx, sy, params.blur_angle).to(image)
    r = kernel.shape[-1] // 2
    h, w = image.shape[-2:]
    mode = "reflect" if r < h and r < w else "replicate"
    padded = F.pad(image[None], (r, r, r, r), mode=mode)
    return F.conv2d(padded, kernel.expand(3, 1, -1, -1), groups=3)[0]


def _jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(decoded).permute(2, 0, 1).to(image.device)


def _shrunk(size: tuple[int, int], downscale: float) -> tuple[int, int]:
    return max(1, round(size[0] / downscale)), max(1, round(size[1] / downscale))


def degrade_one(hq: torch.Tensor, params: DegradeParams, *, lq_size: tuple[int, int] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """[3, H, W] in [0, 1] -> the LQ image [3, h, w]; h, w = lq_size or H / downscale."""
    size = tuple(hq.shape[-2:])
    x = _blur(hq.float(), params)
    small = _shrunk(size, params.downscale)
    if small != size:
        x = F.interpolate(x[None], size=small, mode="bilinear", align_corners=False)[0]
    if params.noise_sigma > 0:
        noise = torch.randn(x.shape, generator=generator).to(x.device)
        x = x + noise * (params.noise_sigma / 255.0)
    x = x.clamp(0, 1)
    if params.jpeg_quality is not None:
        x = _jpeg(x, params.jpeg_quality)
    if lq_size is not None:
        x = resize(x[None], tuple(lq_size))[0]
    return x


def degrade(hq: torch.Tensor, params: DegradeParams | Sequence[DegradeParams] | None = None, *, seed: int = 0,
            lq_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrade a batch [B, 3, H, W] in [0, 1]; returns (lq [B, 3, h, w], lq upsampled to [B, 3, H, W]).

    params: one DegradeParams for every image, one per image, or None for random GFPGAN-range
    parameters (then lq_size is required, since each image draws its own downscale).
    Image b draws its random parameters and its noise from seed + b: deterministic.
    """
    from ..method.restoration import check_image  # shared input validation

    hq = check_image(hq, "image")
    batch, size = hq.shape[0], tuple(hq.shape[-2:])
    if isinstance(params, DegradeParams):
        params = [params] * batch if batch else [params]
    elif params is None:
        if lq_size is None:
            raise ValueError("lq_size is required with random parameters (each image draws its own downscale)")
        params = [random_params(random.Random(seed + b), size[-1]) for b in range(batch)]
    elif len(params) != batch:
        raise ValueError(f"params must be one DegradeParams or {batch} (one per image), got {len(params)}")
    if lq_size is None:
        sizes = {_shrunk(size, p.downscale) for p in params}
        if len(sizes) > 1:
            raise ValueError("lq_size is required when the images' downscale factors differ")
        lq_size = sizes.pop()
    generators = [torch.Generator().manual_seed(seed + b) for b in range(batch)]
    lqs = [degrade_one(img, p, lq_size=lq_size, generator=g) for img, p, g in zip(hq, params, generators)]
    lq = torch.stack(lqs) if lqs else hq.new_zeros(0, 3, *lq_size)
    return lq, resize(lq, size)
