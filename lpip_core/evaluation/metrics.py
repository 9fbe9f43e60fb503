"""PSNR and SSIM with BasicSR's conventions, batched in torch.

BasicSR (and the face-restoration papers that report with it) computes on 0..255 RGB values in
float64, crop_border 0, SSIM with an 11x11 Gaussian window (sigma 1.5), 'valid' filtering,
K1 = 0.01, K2 = 0.03, averaged over channels; optionally on the BT.601 Y channel.
scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255)` is the same SSIM; the tests hold these functions to it.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def _prepare(a: torch.Tensor, b: torch.Tensor, crop_border: int, y_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.ndim != 4 or a.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W] RGB in [0, 1], got {tuple(a.shape)}")
    a, b = a.double() * 255, b.double() * 255
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    return a, b


def rgb_to_y(rgb255: torch.Tensor) -> torch.Tensor:
    """BT.601 luma (16..235) from 0..255 RGB, as BasicSR's rgb2ycbcr(y_only=True)."""
    weights = rgb255.new_tensor([65.481, 128.553, 24.966]).reshape(1, 3, 1, 1)
    return (rgb255 / 255 * weights).sum(dim=1, keepdim=True) + 16.0


def psnr(a: torch.Tensor, b: torch.Tensor, *, crop_border: int = 0, y_channel: bool = False,
         mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR in dB of [B, 3, H, W] images in [0, 1] (inf where identical).

    mask: [B, 1, H, W] of 0 and 1, the pixels to score (e.g. those inside the source photo of a tight
    crop, not its mirrored edges); every pixel without one, NaN for an image whose mask is all 0."""
    if mask is not None and mask.shape != (a.shape[0] if a.ndim == 4 else 1, 1, *a.shape[-2:]):
        raise ValueError(f"mask must be [B, 1, H, W] for images {tuple(a.shape)}, got {tuple(mask.shape)}")
    a, b = _prepare(a, b, crop_border, y_channel)
    squared = (a - b) ** 2
    if mask is None:
        mse = squared.mean(dim=(1, 2, 3))
    else:
        weight = mask.double()
        if crop_border:
            weight = weight[..., crop_border:-crop_border, crop_border:-crop_border]
        mse = (squared * weight).sum(dim=(1, 2, 3)) / (weight.sum(dim=(1, 2, 3)) * squared.shape[1])
    return 10 * torch.log10(255.0 ** 2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(a: torch.Tensor, b: torch.Tensor, *, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Per-image SSIM of [B, 3, H, W] images in [0, 1] (images must be at least 11x11)."""
    a, b = _prepare(a, b, crop_border, y_channel)
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {tuple(a.shape[-2:])}")
    c = a.shape[1]
    window = _gaussian_window().to(a.device).expand(c, 1, 11, 11)

    def filt(x):
        return F.conv2d(x, window, groups=c)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a ** 2
    var_b = filt(b * b) - mu_b ** 2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(dim=(1, 2, 3))


__all__ = ["psnr", "ssim", "rgb_to_y"]
