"""The overlapping patch grid of LPIP-Diff: cut a canvas into patches, and fuse per-patch
estimates back onto the canvas by mean (the paper), median (its ablation) or a Gaussian-weighted mean.

All index tables of a grid are built once per (H, W, patch, stride) and reused every step.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch.nn import functional as F

FUSIONS = ("mean", "median", "gaussian")


def count_starts(length: int, patch: int, stride: int) -> int:
    """len(patch_starts(...)) without building the list."""
    span = max(0, length - patch)
    return span // stride + 1 + (span % stride > 0)


def grid_bytes(area: int, patch_pixels: int) -> int:
    """Bytes of a grid's tables: three per patch pixel (index, Gaussian weight, median slot) and
    two per canvas pixel (coverage count, Gaussian weight sum), all 8 bytes wide."""
    return 24 * patch_pixels + 16 * area


def patch_starts(length: int, patch: int, stride: int) -> tuple[int, ...]:
    """Starts 0, c, 2c, ... plus a final border-aligned start L - m, so every pixel is covered."""
    if not 1 <= patch <= length:
        raise ValueError(f"patch must be in 1..{length} (the canvas side), got {patch}")
    if not 1 <= stride <= patch:
        raise ValueError(f"stride must be in 1..{patch} (the patch size), got {stride}")
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] != length - patch:
        starts.append(length - patch)
    return tuple(starts)


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """1-D Gaussian weights centred on the middle of a patch side (symmetric), float32."""
    centre = (size - 1) / 2
    x = torch.arange(size, dtype=torch.float32) - centre
    return torch.exp(-0.5 * (x / sigma) ** 2)


class PatchGrid:
    """Patches of size (ph, pw) at strides (sh, sw) over an H x W canvas."""

    def __init__(self, height: int, width: int, patch: tuple[int, int], stride: tuple[int, int],
                 gaussian_sigma: float = 0.25):
        self.height, self.width = height, width
        self.patch, self.stride = patch, stride
        self.ys = patch_starts(height, patch[0], stride[0])
        self.xs = patch_starts(width, patch[1], stride[1])
        self.gaussian_sigma = gaussian_sigma
        self._tables: dict[torch.device, dict[str, torch.Tensor]] = {}
        self._cpu = self._build()

    @property
    def nbytes(self) -> int:
        """Memory held by the index tables, on every device they were copied to."""
        return sum(t.nbytes for tables in (self._cpu, *self._tables.values()) for t in tables.values())

    @property
    def num_patches(self) -> int:
        return len(self.ys) * len(self.xs)

    def _build(self) -> dict[str, torch.Tensor]:
        ph, pw = self.patch
        rows = torch.tensor(self.ys)[:, None] + torch.arange(ph)  # [ny, ph]
        cols = torch.tensor(self.xs)[:, None] + torch.arange(pw)  # [nx, pw]
        pixel = rows[:, None, :, None] * self.width + cols[None, :, None, :]  # [ny, nx, ph, pw]
        index = pixel.reshape(-1)  # canvas position of every patch pixel, patch-major
        area = self.height * self.width
        counts = torch.bincount(index, minlength=area).float()

        sigma_h, sigma_w = self.gaussian_sigma * ph, self.gaussian_sigma * pw
        window = torch.outer(gaussian_window(ph, sigma_h), gaussian_window(pw, sigma_w)).reshape(-1)
        weights = window.repeat(self.num_patches)
        weight_sum = torch.zeros(area).index_add_(0, index, weights)

        # Median: the k-th patch that covers a pixel writes slot k of that pixel.
        order = torch.argsort(index, stable=True)
        first = torch.cumsum(counts.long(), 0) - counts.long()
        slot = torch.empty_like(index)
        slot[order] = torch.arange(index.numel()) - first[index[order]]
        tables = {"index": index, "counts": counts, "weights": weights, "weight_sum": weight_sum, "slot": slot}
        return {k: v.double() if v.is_floating_point() else v for k, v in tables.items()}

    def tables(self, device: torch.device) -> dict[str, torch.Tensor]:
        device = torch.device(device)
        if device not in self._tables:
            self._tables[device] = {k: v.to(device) for k, v in self._cpu.items()}
        return self._tables[device]

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B * N, C, ph, pw], patches of image b at rows b*N .. b*N + N - 1."""
        b, c = x.shape[:2]
        index = self.tables(x.device)["index"]
        patches = x.reshape(b, c, -1)[:, :, index]  # one gather for all patches
        return patches.reshape(b, c, self.num_patches, *self.patch).transpose(1, 2).reshape(-1, c, *self.patch)

    def fuse(self, patches: torch.Tensor, method: str = "mean") -> torch.Tensor:
        """[B * N, C, ph, pw] -> [B, C, H, W] (float32): each pixel combines the patches covering it.

        Sums run in float64, so fusing identical estimates gives back exactly that estimate.
        """
        if method not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {method!r}")
        t = self.tables(patches.device)
        n, c = self.num_patches, patches.shape[1]
        b = patches.shape[0] // n
        values = patches.double().reshape(b, n, c, -1).transpose(1, 2).reshape(b, c, -1)
        area = self.height * self.width
        if method == "median":
            fused = self._median(values, t)
        else:
            if method == "gaussian":
                values = values * t["weights"]
            total = values.new_zeros(b, c, area).index_add_(2, t["index"], values)
            fused = total / (t["weight_sum"] if method == "gaussian" else t["counts"])
        return fused.reshape(b, c, self.height, self.width).float()

    @staticmethod
    def _median(values: torch.Tensor, t: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-pixel median; with an even number of patches, the mean of the two middle values."""
        b, c = values.shape[:2]
        counts = t["counts"].long()
        slots = int(counts.max())
        stack = values.new_full((b, c, slots, counts.numel()), float("inf"))
        stack[:, :, t["slot"], t["index"]] = values
        ordered = stack.sort(dim=2).values  # the unused inf slots sort last
        low = ((counts - 1) // 2).expand(b, c, 1, -1)
        high = (counts // 2).expand(b, c, 1, -1)
        return (ordered.gather(2, low) + ordered.gather(2, high)).squeeze(2) / 2


GRID_CACHE_BYTES = 256 * 2 ** 20
_grids: OrderedDict[tuple, PatchGrid] = OrderedDict()


def patch_grid(height: int, width: int, patch: tuple[int, int], stride: tuple[int, int]) -> PatchGrid:
    """The grid for these sizes, built once and cached. The cache keeps the most recently used
    grids whose tables (on every device) add up to GRID_CACHE_BYTES, and always the latest one."""
    key = (height, width, tuple(patch), tuple(stride))
    grid = _grids.pop(key, None) or PatchGrid(height, width, patch, stride)
    _grids[key] = grid
    total = sum(g.nbytes for g in _grids.values())
    while total > GRID_CACHE_BYTES and len(_grids) > 1:
        total -= _grids.popitem(last=False)[1].nbytes
    return grid


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad at the bottom/right to at least (height, width): reflect where the image is large enough."""
    ph, pw = max(0, height - x.shape[-2]), max(0, width - x.shape[-1])
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
