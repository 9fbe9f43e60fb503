"""Algorithm 2 of LPIP-Diff: a patch-fused noise estimate and the DDIM loop that uses it.

Like k-diffusion, the sampler is a plain function over a wrapped model and a list of timesteps:
`sample_ddim` knows nothing of patches, `FusedEps` turns a patch UNet into a whole-canvas
eps(x_t, t), and the callback gets one dict per step.
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable, Sequence

import torch

from .patches import PatchGrid
from .runtime import as_unet_input

EpsModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict[str, Any]], None]  # callback(info) after every step: see sample_ddim


def step_callback(callback: Callable | None) -> Callback | None:
    """``callback`` as a one-dict callback. The old form ``callback(step, total, x0)`` (told apart by
    its signature: it takes three arguments and not one) still works, called with
    (info["i"] + 1, info["total"], info["denoised"]), with a DeprecationWarning."""
    if callback is None or not _takes_three_not_one(callback):
        return callback
    warnings.warn("callback(step, total, x0) is deprecated: take one dict, callback(info), with info['i'] + 1, "
                  "info['total'] and info['denoised']", DeprecationWarning, stacklevel=4)
    return lambda info: callback(info["i"] + 1, info["total"], info["denoised"])


def _takes_three_not_one(function: Callable) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: taken for the dict form
        return False

    def binds(*args) -> bool:
        try:
            signature.bind(*args)
        except TypeError:
            return False
        return True

    return binds(1, 1, None) and not binds({})


class SamplingCancelled(RuntimeError):
    """Raised between UNet calls when the cancel check returns True."""


def model_dtype(model) -> torch.dtype | None:
    """The floating dtype of a module's weights, or None for a plain callable."""
    params = getattr(model, "parameters", None)
    if params is None:
        return None
    for p in params():
        if p.is_floating_point():
            return p.dtype
    return None


class FusedEps:
    """eps(x_t, t) on a whole canvas: the model on every grid patch, fused where patches overlap.

    The LQ condition is cut into patches once. Patches of all images go through the model together,
    in chunks of at most `max_batch` (a chunk may hold patches of several images); `cancel()` is
    asked before each chunk. Patches enter the model in its weights' dtype, channels-last; its
    estimates are fused in float64 and returned as float32. A float16 model whose estimate
    overflows stops with a ValueError rather than sampling on infinities.
    """

    def __init__(self, model: EpsModel, lq_up: torch.Tensor, grid: PatchGrid, *, fusion: str = "mean",
                 max_batch: int = 64, cancel: Callable[[], bool] | None = None):
        self.model, self.grid, self.fusion = model, grid, fusion
        self.max_batch, self.cancel = max_batch, cancel
        self.dtype = model_dtype(model) or lq_up.dtype
        self.lq_patches = as_unet_input(grid.extract(lq_up), self.dtype)

    def __call__(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        patches = as_unet_input(self.grid.extract(x_t), self.dtype)
        timestep = torch.full((self.max_batch,), float(t), device=x_t.device)
        out = []
        for start in range(0, patches.shape[0], self.max_batch):
            if self.cancel is not None and self.cancel():
                raise SamplingCancelled("sampling was cancelled")
            chunk = slice(start, start + self.max_batch)
            x, lq = patches[chunk], self.lq_patches[chunk]
            out.append(self.model(x, lq, timestep[: x.shape[0]]).float())
        fused = self.grid.fuse(torch.cat(out), self.fusion)
        if self.dtype == torch.float16 and not torch.isfinite(fused).all():
            raise ValueError("the float16 model's noise estimate overflowed (inf/NaN); use bf16 or fp32 weights")
        return fused


def sample_ddim(eps_model: Callable[[torch.Tensor, int], torch.Tensor], x: torch.Tensor,
                coefficients: Sequence[tuple[float, float]], timesteps: Sequence[int], *, eta: float = 0.0,
                noise: Callable[[], torch.Tensor] | None = None, clip_x0: bool = True,
                callback: Callback | None = None) -> torch.Tensor:
    """DDIM from x = x_T (in [-1, 1] space) down to x_0.

    At eta = 0 each step is the paper's eq. 8,
    x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps; at eta > 0 a share sigma_t of the
    direction term is fresh noise from `noise()` (Song et al. 2021, eq. 12).
    With clip_x0 the x0 estimate is clamped to [-1, 1] and eps re-derived from it (guided-diffusion).
    ``callback(info)`` runs after every step, as in k-diffusion, with info = {"x": the x_t the step
    started from, "i": the step's index 0..S-1, "t": its timestep, "denoised": its x0 estimate
    (both in [-1, 1]), "total": S}.
    """
    total = len(timesteps)
    for i, (t, (abar, abar_prev)) in enumerate(zip(timesteps, coefficients)):
        x_t = x
        eps = eps_model(x_t, t)
        x0 = (x_t - (1 - abar) ** 0.5 * eps) / abar ** 0.5
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = (x_t - abar ** 0.5 * x0) / (1 - abar) ** 0.5
        sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) ** 0.5
        x = abar_prev ** 0.5 * x0 + max(0.0, 1 - abar_prev - sigma ** 2) ** 0.5 * eps
        if sigma > 0:
            if noise is None:
                raise ValueError("eta > 0 needs a noise source")
            x = x + sigma * noise()
        if callback is not None:
            callback({"x": x_t, "i": i, "t": t, "denoised": x0, "total": total})
    return x
