"""An LPIP-Diff model: the UNet plus everything needed to sample with it (scale, patch, schedule)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from .schedule import ScheduleConfig
from .unet import ConditionalUNet, UNetConfig

ARCHITECTURE = "lpip-diff-sr3-unet"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelConfig:
    """How a checkpoint was trained and how it expects to be sampled; stored as checkpoint metadata."""

    unet: UNetConfig = UNetConfig()
    scale: int = 4  # LQ -> HQ upscaling factor
    hq_size: int = 64  # side of the training faces
    patch: int = 16  # training patch m
    stride: int = 8  # default sampling stride c (the paper: m / 2)
    schedule: ScheduleConfig = ScheduleConfig()
    training: dict = field(default_factory=dict)  # summary: data, steps, minutes, device, ...

    def __post_init__(self):
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, got {self.scale}")
        factor = self.unet.downsample_factor
        if self.patch < factor or self.patch % factor:
            raise ValueError(f"patch must be a positive multiple of {factor} for this UNet, got {self.patch}")
        if not 1 <= self.stride <= self.patch:
            raise ValueError(f"stride must be in 1..{self.patch}, got {self.stride}")

    @property
    def lq_size(self) -> int:
        return self.hq_size // self.scale

    def to_dict(self) -> dict:
        return {"architecture": ARCHITECTURE, "version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Rebuild and validate a config read from a checkpoint; names the first unknown key."""
        data = dict(data)
        arch, version = data.pop("architecture", None), data.pop("version", None)
        if arch != ARCHITECTURE:
            raise ValueError(f"architecture {arch!r} is not {ARCHITECTURE!r}")
        if version != FORMAT_VERSION:
            raise ValueError(f"config version {version!r} is not supported (expected {FORMAT_VERSION})")
        _check_keys(cls, data, "config")
        _check_keys(UNetConfig, data.get("unet", {}), "config.unet")
        _check_keys(ScheduleConfig, data.get("schedule", {}), "config.schedule")
        return cls(**{**data, "unet": UNetConfig(**data.get("unet", {})),
                      "schedule": ScheduleConfig(**data.get("schedule", {}))})


def _check_keys(kind, data: dict, where: str) -> None:
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown key {where}.{unknown[0]!r} (known: {', '.join(sorted(known))})")


class LPIPModel(nn.Module):
    """eps(x_t, lq_up, t) with its ModelConfig attached as `.config`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.unet = ConditionalUNet(config.unet)

    def forward(self, x_t: torch.Tensor, lq_up: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x_t, lq_up, t)
