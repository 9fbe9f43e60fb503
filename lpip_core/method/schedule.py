"""The diffusion noise schedule: betas, alpha-bar, forward noising and DDIM respacing.

Tables are kept in float64 (as guided-diffusion does) and cast when applied, so that
1 - alpha_bar near t = 0 keeps its precision.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ..checks import check_choice, check_float, check_int, shown

SPACINGS = ("trailing", "leading")
MAX_TIMESTEPS = 10_000


@dataclass(frozen=True)
class ScheduleConfig:
    """The training noise schedule; stored in every checkpoint.

    Accepted: kind "linear" or "cosine"; timesteps 1..10000 (the tables hold one float64 each);
    0 < beta_start <= beta_end < 1.
    """

    kind: str = "linear"  # "linear" (the paper: 1e-4..0.02) or "cosine" (Nichol & Dhariwal)
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in ("linear", "cosine"):
            raise ValueError(f"kind must be 'linear' or 'cosine', got {shown(self.kind)}")
        check_int("timesteps", self.timesteps, 1, MAX_TIMESTEPS)
        check_float("beta_start", self.beta_start, 0.0, 1.0, open_low=True, open_high=True)
        check_float("beta_end", self.beta_end, 0.0, 1.0, open_low=True, open_high=True)
        if self.beta_start > self.beta_end:
            raise ValueError(f"beta_start must be <= beta_end, got {self.beta_start}, {self.beta_end}")

    def to_dict(self) -> dict:
        return asdict(self)


class NoiseSchedule:
    """alpha_bar_t = prod_{s<=t} (1 - beta_s) for t = 0..T-1, and the maps that use it."""

    def __init__(self, config: ScheduleConfig = ScheduleConfig()):
        self.config = config
        T = config.timesteps
        if config.kind == "linear":
            betas = torch.linspace(config.beta_start, config.beta_end, T, dtype=torch.float64)
        else:
            s = 0.008
            steps = torch.arange(T + 1, dtype=torch.float64) / T
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)

    @property
    def timesteps(self) -> int:
        return self.config.timesteps

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        abar = self.alphas_cumprod.to(t.device)[t.long()]
        return abar.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        abar = self._abar(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Inverts q_sample for x0 given the noise estimate."""
        abar = self._abar(t, x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def ddim_timesteps(self, steps: int, spacing: str = "trailing") -> list[int]:
        """The S kept timesteps, decreasing.

        trailing (default) starts at T-1, so the first step sees pure noise, as the sampler
        assumes (Lin et al. 2024); leading is the older DDIM choice t = k*T/S, ending at 0.
        """
        T = self.timesteps
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be in 1..{T}, got {steps}")
        if spacing == "trailing":
            kept = [round(T - i * T / steps) - 1 for i in range(steps)]
        elif spacing == "leading":
            kept = [i * (T // steps) for i in reversed(range(steps))]
        else:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
        return kept

    def ddim_coefficients(self, timesteps: list[int]) -> list[tuple[float, float]]:
        """(abar_t, abar_prev) per kept step; the step after the last one lands on abar = 1 (clean)."""
        abar = self.alphas_cumprod
        prev = timesteps[1:] + [None]
        return [(abar[t].item(), 1.0 if p is None else abar[p].item()) for t, p in zip(timesteps, prev)]


def steps_until_end(steps: int, end_percent: float) -> int:
    """How many of ``steps`` steps run when sampling ends at ``end_percent`` of them (rounded half up,
    at least one). Checks both, so that every caller refuses a bad value the same way (and before a
    huge ``steps`` overflows the product)."""
    check_int("steps", steps, 1, MAX_TIMESTEPS)
    check_float("end_percent", end_percent, 0, 1, open_low=True)
    return max(1, int(end_percent * steps + 0.5))


def denoised_timesteps(schedule: NoiseSchedule, steps: int, denoise: float, spacing: str) -> list[int]:
    """The DDIM timesteps of ``steps`` steps at a denoise strength (KSampler's rule: the last ``steps``
    of a schedule of int(steps / denoise) steps, capped at the schedule's length)."""
    if denoise >= 1:
        return schedule.ddim_timesteps(steps, spacing)
    ratio = steps / denoise  # inf for a denoise near 0 (5e-324)
    total = schedule.timesteps if ratio >= schedule.timesteps else max(steps, int(ratio))
    return schedule.ddim_timesteps(total, spacing)[-steps:]


def sampling_timesteps(schedule: NoiseSchedule, steps: int, *, denoise: float = 1.0, end_percent: float = 1.0,
                       spacing: str = "trailing") -> list[int]:
    """The timesteps a run visits, decreasing, built once before sampling (ComfyUI's BasicScheduler
    with its denoise, then SplitSigmas at ``end_percent``). Empty when ``denoise`` is 0 (nothing to
    sample: the upsampled input is the result). Checks every argument, naming it and its range."""
    check_choice("spacing", spacing, SPACINGS)
    check_int("steps", steps, 1, schedule.timesteps)
    check_float("denoise", denoise, 0, 1)
    run = steps_until_end(steps, end_percent)
    return denoised_timesteps(schedule, steps, denoise, spacing)[:run] if denoise > 0 else []
