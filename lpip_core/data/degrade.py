"""The degradations that make LQ faces: y = [(x * k) down_r + n]_JPEG (GFPGAN, Wang et al. 2021).

`DegradeParams` is one degradation: blur on the HQ face, resampling to a smaller size with one of
`RESAMPLE_KERNELS`, Gaussian noise (colour or grey) and JPEG at that size, then a final resize to
the LQ size if it differs. `random_params` draws from the training mixture, `VARIANTS`:

- ``lq-scale`` (the paper's order at the LQ size): blur, resample straight to the LQ size with a
  random kernel, noise and JPEG at the LQ size, as on a real tiny face cut from a compressed photo.
  Ranges are set for a 16 px face (docs/training.md, "Degradation").
- ``clean``: resampling to the LQ size only (a thumbnail, or a face shrunk by Face Crop & Align).
- ``gfpgan512``: GFPGAN's ranges for 512 px faces run in the face's own pixels: the intermediate
  image keeps the side it has in the 512 px pipeline (512 / r px), where noise and JPEG act, and
  the result is resized to the LQ size, so most noise and blocking average away (the soft LQs the
  first models were trained on).

Any draw can be posed as a photo holds the face (`random_params(photo_share=...)`, `--photo-share`),
the way Face Crop & Align makes the LQ face from a real photo: the face, rolled, rescaled and shifted,
is degraded at its size in the photo (about the LQ size), then aligned again at that size, half the
time from a x4 upscale of the photo as the photo workflow does. Unposed, the full-size face is aligned
and shrunk last, which a real tiny face never is (docs/demo.md, "Why the default model trails
Lanczos on this photo").
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import torch
from torch.nn import functional as F

from ..checks import MAX_SIDE, check_choice, check_float, check_int, check_int_list, check_seed, seed_for, shown
from ..faces.warp import compose, invert, scaling, warp_affine
from ..files import compressed
from ..resize import resize

RESAMPLE_KERNELS = ("area", "bilinear", "bilinear-aa", "bicubic", "bicubic-aa")  # -aa: antialiased

# gfpgan512: GFPGAN's ranges, stated for 512 px faces.
REFERENCE_SIZE = 512
BLUR_SIGMA_RANGE = (0.1, 10.0)  # px at 512
DOWNSCALE_RANGE = (0.8, 8.0)
NOISE_RANGE = (0.0, 20.0)  # of 255
JPEG_RANGE = (60, 100)

# lq-scale: ranges for a 16 px LQ face; each part is present with its probability.
LQ_BLUR_RANGE, LQ_BLUR_PROB = (0.1, 0.9), 0.6  # sigma in LQ pixels (x r on the HQ face)
LQ_NOISE_RANGE, LQ_NOISE_PROB = (1.0, 15.0), 0.8  # of 255, at the LQ size
LQ_GREY_NOISE_PROB = 0.3  # luminance-only noise, as a camera's after its own processing
LQ_JPEG_RANGE, LQ_JPEG_PROB = (35, 95), 0.8  # quality, at the LQ size

VARIANTS = {"lq-scale": 0.5, "clean": 0.25, "gfpgan512": 0.25}  # the training mixture

# Posed as a photo: how a photo holds the face before Face Crop & Align cuts it.
PHOTO_ROLL = math.radians(8)  # the face's roll, either way
PHOTO_SPAN_RANGE = (0.85, 1.15)  # photo pixels the crop spans, in LQ sides (14 to 18 px for 16)
PHOTO_SHIFT = 0.5  # LQ px, either way
PHOTO_UPSCALE, PHOTO_UPSCALE_PROB = 4, 0.5  # cut from a x4 upscale of the photo

# DegradeParams' ranges, the one statement of them: the CLI's `degrade` and the Degrade Face node show these.
BLUR_LIMITS = (0, 50)  # sigma, px of the HQ image
MIN_DOWNSCALE, MAX_DOWNSCALE = 0.01, 64  # below 1 enlarges, at most 100x (and to at most MAX_SIDE px a side)
DOWNSCALE_LIMITS = (MIN_DOWNSCALE, MAX_DOWNSCALE)
NOISE_LIMITS = (0, 255)  # sigma, of 255
JPEG_LIMITS = (1, 100)  # quality


@dataclass(frozen=True)
class DegradeParams:
    """One degradation. Lengths are in pixels of the HQ image; noise_sigma is in 0..255 units."""

    blur_sigma: float = 0.0  # 0 = no blur
    downscale: float = 4.0  # the image shrinks to 1 / downscale (1 = no resampling, < 1 enlarges)
    noise_sigma: float = 0.0  # 0 = no noise
    jpeg_quality: int | None = None  # None = no JPEG; else 1..100
    blur_sigma_y: float | None = None  # anisotropic blur: the second axis (None = isotropic)
    blur_angle: float = 0.0  # radians, rotation of an anisotropic kernel
    resample: str = "bicubic-aa"  # one of RESAMPLE_KERNELS
    grey_noise: bool = False  # the same noise on every channel
    # posed as a photo: (roll in radians, span in LQ sides, shift x, shift y in LQ px) of the face in the
    # photo, which is aligned at the LQ size after the degradation; None: the face is already aligned
    photo_pose: tuple[float, float, float, float] | None = None
    photo_upscaled: bool = False  # aligned from a x4 upscale of the shrunk photo

    def __post_init__(self):
        check_float("blur_sigma", self.blur_sigma, *BLUR_LIMITS)
        if self.blur_sigma_y is not None:
            check_float("blur_sigma_y", self.blur_sigma_y, *BLUR_LIMITS)
        check_float("downscale", self.downscale, *DOWNSCALE_LIMITS)
        check_float("noise_sigma", self.noise_sigma, *NOISE_LIMITS)
        if self.jpeg_quality is not None:
            check_int("jpeg_quality", self.jpeg_quality, *JPEG_LIMITS)
        check_float("blur_angle", self.blur_angle, -math.inf, math.inf)
        check_choice("resample", self.resample, RESAMPLE_KERNELS)
        if self.photo_pose is not None:
            if len(self.photo_pose) != 4:
                raise ValueError(f"photo_pose must be (roll, span, shift x, shift y), got {self.photo_pose!r}")
            roll, span, dx, dy = self.photo_pose
            check_float("photo_pose roll", roll, -math.pi, math.pi)
            check_float("photo_pose span", span, 0.25, 4.0)
            check_float("photo_pose shift x", dx, -4.0, 4.0)
            check_float("photo_pose shift y", dy, -4.0, 4.0)

    def to_dict(self) -> dict:
        return asdict(self)


def random_params(rng: random.Random, hq_size: int = REFERENCE_SIZE, lq_size: int = 16, *,
                  variant: str | None = None, photo_share: float = 0.0) -> DegradeParams:
    """One draw from the training mixture (or from one `variant`) for a face of side `hq_size`
    whose LQ is `lq_size` px, posed as a photo holds the face with probability `photo_share`."""
    params = _variant_params(rng, hq_size, lq_size, variant)
    if photo_share and rng.random() < photo_share:
        params = replace(params, photo_pose=photo_pose(rng), photo_upscaled=rng.random() < PHOTO_UPSCALE_PROB)
    return params


def _variant_params(rng: random.Random, hq_size: int, lq_size: int, variant: str | None) -> DegradeParams:
    if variant is None:
        u, variant = rng.random(), None
        for variant, weight in VARIANTS.items():
            u -= weight
            if u < 0:
                break
    r = hq_size / lq_size
    if variant == "gfpgan512":
        return _gfpgan512_params(rng, hq_size)
    if variant == "clean":
        return DegradeParams(downscale=r, resample=rng.choice(RESAMPLE_KERNELS))
    if variant != "lq-scale":
        check_choice("variant", variant, VARIANTS)
    blur = rng.random() < LQ_BLUR_PROB
    anisotropic = blur and rng.random() < 0.5
    noise = rng.random() < LQ_NOISE_PROB
    jpeg = rng.random() < LQ_JPEG_PROB
    return DegradeParams(
        blur_sigma=rng.uniform(*LQ_BLUR_RANGE) * r if blur else 0.0,
        blur_sigma_y=rng.uniform(*LQ_BLUR_RANGE) * r if anisotropic else None,
        blur_angle=rng.uniform(-math.pi, math.pi) if anisotropic else 0.0,
        downscale=r,
        resample=rng.choice(RESAMPLE_KERNELS),
        noise_sigma=rng.uniform(*LQ_NOISE_RANGE) if noise else 0.0,
        grey_noise=noise and rng.random() < LQ_GREY_NOISE_PROB,
        jpeg_quality=rng.randint(*LQ_JPEG_RANGE) if jpeg else None,
    )


def photo_pose(rng: random.Random) -> tuple[float, float, float, float]:
    """A draw of how a photo holds the face: (roll, span, shift x, shift y), as `DegradeParams.photo_pose`."""
    return (rng.uniform(-PHOTO_ROLL, PHOTO_ROLL), rng.uniform(*PHOTO_SPAN_RANGE),
            rng.uniform(-PHOTO_SHIFT, PHOTO_SHIFT), rng.uniform(-PHOTO_SHIFT, PHOTO_SHIFT))


def _gfpgan512_params(rng: random.Random, hq_size: int) -> DegradeParams:
    """GFPGAN's ranges in the pixels of a face of side hq_size (the intermediate image keeps its
    512 px-pipeline size) with its bilinear resampling."""
    size_factor = hq_size / REFERENCE_SIZE
    sigma = rng.uniform(*BLUR_SIGMA_RANGE) * size_factor
    anisotropic = rng.random() < 0.5
    return DegradeParams(
        blur_sigma=sigma,
        blur_sigma_y=rng.uniform(*BLUR_SIGMA_RANGE) * size_factor if anisotropic else None,
        blur_angle=rng.uniform(-math.pi, math.pi) if anisotropic else 0.0,
        downscale=max(MIN_DOWNSCALE, rng.uniform(*DOWNSCALE_RANGE) * size_factor),  # below: faces under 7 px
        noise_sigma=rng.uniform(*NOISE_RANGE),
        jpeg_quality=rng.randint(*JPEG_RANGE),
        resample="bilinear",
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


def resample(x: torch.Tensor, size: tuple[int, int], kernel: str) -> torch.Tensor:
    """[B, C, H, W] resized with one of RESAMPLE_KERNELS (antialiasing only matters when shrinking)."""
    if kernel == "area":
        return F.interpolate(x, size=size, mode="area")
    mode, _, aa = kernel.partition("-")
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=bool(aa))


def _shrunk(size: tuple[int, int], downscale: float) -> tuple[int, int]:
    return max(1, round(size[0] / downscale)), max(1, round(size[1] / downscale))


def degrade_one(hq: torch.Tensor, params: DegradeParams, *, lq_size: tuple[int, int] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """[3, H, W] in [0, 1] -> the LQ image [3, h, w]; h, w = lq_size or H / downscale."""
    size = tuple(hq.shape[-2:])
    x = _blur(hq.float(), params)
    downscale = params.downscale
    if params.photo_pose is not None:  # the face as the photo holds it, span LQ sides across
        lq_size = lq_size or _shrunk(size, downscale)
        pose = _pose(params.photo_pose, size, lq_size)
        x = warp_affine(x[None], pose, size)[0]
        downscale /= params.photo_pose[1]
    small = _shrunk(size, downscale)
    if small != size:
        x = resample(x[None], small, params.resample)[0]
    x = _noise_and_jpeg(x, params, generator)
    if params.photo_pose is not None:
        return _aligned_at_lq_size(x, pose, params, size, lq_size)
    if lq_size is not None:
        x = resize(x[None], tuple(lq_size))[0]
    return x


def _noise_and_jpeg(x: torch.Tensor, params: DegradeParams, generator: torch.Generator | None) -> torch.Tensor:
    if params.noise_sigma > 0:
        shape = (1, *x.shape[1:]) if params.grey_noise else x.shape
        noise = torch.randn(shape, generator=generator).to(x.device)
        x = x + noise * (params.noise_sigma / 255.0)
    x = x.clamp(0, 1)
    if params.jpeg_quality is not None:
        x = compressed(x, "JPEG", params.jpeg_quality)
    return x


def _pose(photo_pose, size: tuple[int, int], lq_size: tuple[int, int]) -> list[list[float]]:
    """Aligned HQ px -> photo px at HQ scale: rolled about the centre, shifted by (dx, dy) LQ px."""
    roll, _, dx, dy = photo_pose
    (h, w), (lh, lw) = size, lq_size
    cx, cy = (w - 1) / 2, (h - 1) / 2
    cos, sin = math.cos(roll), math.sin(roll)
    return [[cos, -sin, cx - cos * cx + sin * cy + dx * w / lw], [sin, cos, cy - sin * cx - cos * cy + dy * h / lh]]


def _aligned_at_lq_size(photo: torch.Tensor, pose, params: DegradeParams, size: tuple[int, int],
                        lq_size: tuple[int, int]) -> torch.Tensor:
    """Face Crop & Align's cut of the degraded posed face [3, h, w]: at its size in the photo (span LQ
    sides; gfpgan512's larger intermediate is resized to it first), then aligned to ``lq_size``."""
    (h, w), (lh, lw) = size, lq_size
    span = params.photo_pose[1]
    in_photo = (max(1, round(lh * span)), max(1, round(lw * span)))
    if tuple(photo.shape[-2:]) != in_photo:
        photo = resize(photo[None], in_photo)[0]
    # photo px -> HQ-scale px (pixel centres kept) -> aligned HQ px -> LQ px
    cut = compose(scaling(lw / w, lh / h), compose(invert(pose), scaling(w / in_photo[1], h / in_photo[0])))
    if params.photo_upscaled:  # the photo workflow: an upscale first, then the cut from it
        k = PHOTO_UPSCALE
        photo = resample(photo[None], (in_photo[0] * k, in_photo[1] * k), "bicubic")[0].clamp(0, 1)
        cut = compose(cut, scaling(1 / k))
    return warp_affine(photo[None], cut, tuple(lq_size))[0]


def degrade(hq: torch.Tensor, params: DegradeParams | Sequence[DegradeParams] | None = None, *, seed: int = 0,
            lq_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrade a batch [B, 3, H, W] in [0, 1]; returns (lq [B, 3, h, w], lq upsampled to [B, 3, H, W]).

    params: one DegradeParams for every image, one per image, or None for a random draw from the
    training mixture (then lq_size is required, since each image draws its own downscale).
    Image b draws its random parameters and its noise from seed + b: deterministic.
    """
    from ..method.restoration import check_image  # shared input validation

    hq = check_image(hq, "image")
    batch, size = hq.shape[0], tuple(hq.shape[-2:])
    seed = check_seed(seed, batch)
    if lq_size is not None:
        check_int_list("lq_size", lq_size, 1, MAX_SIDE, min_len=2, max_len=2)
    if isinstance(params, DegradeParams):
        params = [params] * batch if batch else [params]
    elif params is None:
        if lq_size is None:
            raise ValueError("lq_size is required with random parameters (each image draws its own downscale)")
        params = [random_params(random.Random(seed_for(seed, b)), size[-1], lq_size[-1]) for b in range(batch)]
    elif len(params) != batch:
        raise ValueError(f"params must be one DegradeParams or {batch} (one per image), got {len(params)}")
    enlarged = [p.downscale for p in params if max(_shrunk(size, p.downscale)) > MAX_SIDE]
    if enlarged:
        raise ValueError(f"downscale {shown(enlarged[0])} would make the {size[1]}x{size[0]} px image larger than "
                         f"{MAX_SIDE} px a side")
    if lq_size is None:
        sizes = {_shrunk(size, p.downscale) for p in params}
        if len(sizes) > 1:
            raise ValueError("lq_size is required when the images' downscale factors differ")
        lq_size = sizes.pop()
    generators = [torch.Generator().manual_seed(seed_for(seed, b)) for b in range(batch)]
    lqs = [degrade_one(img, p, lq_size=lq_size, generator=g) for img, p, g in zip(hq, params, generators)]
    lq = torch.stack(lqs) if lqs else hq.new_zeros(0, 3, *lq_size)
    return lq, resize(lq, size)
