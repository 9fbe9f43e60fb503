"""Affine resampling of image regions: the crop of an aligned face and its inverse warp.

Matrices are 2x3, mapping source pixels to destination pixels, with pixel centres on integers.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _homogeneous(m) -> np.ndarray:
    return np.vstack([np.asarray(m, np.float64)[:2], [0.0, 0.0, 1.0]])


def compose(a, b) -> np.ndarray:
    """The 2x3 matrix of ``b`` followed by ``a``."""
    return (_homogeneous(a) @ _homogeneous(b))[:2]


def invert(m) -> np.ndarray:
    return np.linalg.inv(_homogeneous(m))[:2]


def shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def footprint(m, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the four outer corners of a height x width pixel grid mapped through ``m``."""
    u = np.array([-0.5, width - 0.5, width - 0.5, -0.5])
    v = np.array([-0.5, -0.5, height - 0.5, height - 0.5])
    m = np.asarray(m, np.float64)
    return m[0, 0] * u + m[0, 1] * v + m[0, 2], m[1, 0] * u + m[1, 1] * v + m[1, 2]


def scaling(fx: float, fy: float | None = None) -> np.ndarray:
    """Pixel coordinates scaled by (fx, fy) with pixel centres kept aligned: an image resized by them."""
    fy = fx if fy is None else fy
    return np.array([[fx, 0.0, (fx - 1) / 2], [0.0, fy, (fy - 1) / 2]])


def rescale_crop_matrix(m: np.ndarray, old: int, new: int) -> np.ndarray:
    """Matrix for a crop of side ``new`` from one for side ``old`` (pixel centres kept aligned)."""
    return compose(scaling(new / old), m)


def warp_affine(src: torch.Tensor, matrix, out_hw: tuple[int, int], padding_mode: str = "reflection") -> torch.Tensor:
    """Resample ``src`` (BCHW) through an affine ``matrix`` (src px -> dst px) into ``out_hw``.

    Bicubic, with an antialiasing pre-shrink when the destination is coarser than the source
    (a 400 px face into a 64 px crop must not alias). Only the source region the destination
    needs is touched; ``padding_mode`` ('reflection' or 'border') fills what lies outside src.
    """
    h_out, w_out = out_hw
    _, _, h, w = src.shape
    inv = invert(matrix)  # dst px -> src px

    # source region needed: the destination's corners, plus room for the filters
    sx, sy = footprint(inv, h_out, w_out)
    shrink = math.sqrt(abs(np.linalg.det(inv[:, :2])))  # src px per dst px
    pad = 4.0 * max(shrink, 1.0) + 4.0  # antialias + bicubic support, with room to spare
    x0, x1 = _region(sx.min() - pad, sx.max() + pad, w)
    y0, y1 = _region(sy.min() - pad, sy.max() + pad, h)
    region = src[:, :, y0:y1, x0:x1]
    inv = compose(shift(-x0, -y0), inv)  # dst px -> region px

    if shrink > 1.0:  # antialias: shrink the region to about the destination's resolution
        rh, rw = region.shape[-2:]
        nh, nw = max(1, round(rh / shrink)), max(1, round(rw / shrink))
        if (nh, nw) != (rh, rw):
            region = F.interpolate(region, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
            inv = compose(scaling(nw / rw, nh / rh), inv)

    rh, rw = region.shape[-2:]
    # normalised grid_sample coordinates (align_corners=False): g = (2 p + 1) / size - 1
    theta = compose([[2.0 / rw, 0.0, 1.0 / rw - 1.0], [0.0, 2.0 / rh, 1.0 / rh - 1.0]], inv)
    dev = src.device
    u = torch.arange(w_out, device=dev, dtype=torch.float64)
    v = torch.arange(h_out, device=dev, dtype=torch.float64)
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    th = torch.as_tensor(theta, dtype=torch.float64, device=dev)
    gx = th[0, 0] * uu + th[0, 1] * vv + th[0, 2]
    gy = th[1, 0] * uu + th[1, 1] * vv + th[1, 2]
    grid = torch.stack([gx, gy], dim=-1).float().unsqueeze(0).expand(src.shape[0], -1, -1, -1)
    out = F.grid_sample(region, grid, mode="bicubic", padding_mode=padding_mode, align_corners=False)
    return out.clamp(0.0, 1.0)


def _region(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Integer source range covering [lo, hi], widened so reflection at an edge stays exact."""
    if lo < -0.5:  # samples reflected about the left/top edge land at up to -lo
        hi = max(hi, -lo)
    if hi > size - 0.5:
        lo = min(lo, 2 * size - hi)
    a = max(0, math.floor(lo))
    b = min(size, math.ceil(hi) + 1)
    if b <= a:  # entirely outside (cannot happen for a sane alignment): use all
        return 0, size
    return a, b
