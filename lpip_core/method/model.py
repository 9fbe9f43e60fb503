"""An LPIP-Diff model: the UNet plus everything needed to sample with it (scale, patch, schedule)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from ..checks import check_int, shown
from .schedule import ScheduleConfig
from .unet import ConditionalUNet, UNetConfig

ARCHITECTURE = "lpip-diff-sr3-unet"
FORMAT_VERSION = 1
MAX_SCALE = 16
MAX_SIZE = 4096
MAX_SAMPLES = 16  # as the nodes' samples input


@dataclass(frozen=True)
class ModelConfig:
    """How a checkpoint was trained and how it expects to be sampled; stored as checkpoint metadata.

    Accepted: scale 1..16; hq_size 1..4096, a multiple of scale; patch a multiple of the UNet's
    downsample factor, at most hq_size; stride 1..patch; samples 1..16; training a JSON object. The
    UNet and the schedule check their own fields (UNetConfig, ScheduleConfig).
    """

    unet: UNetConfig = UNetConfig()
    scale: int = 4  # LQ -> HQ upscaling factor
    hq_size: int = 64  # side of the training faces
    patch: int = 16  # training patch m
    stride: int = 8  # default sampling stride c (the paper: m / 2)
    samples: int = 1  # default number of samples restore averages (the paper: 1)
    schedule: ScheduleConfig = ScheduleConfig()
    training: dict = field(default_factory=dict)  # summary: data, steps, minutes, device, ...

    def __post_init__(self):
        if not isinstance(self.unet, UNetConfig) or not isinstance(self.schedule, ScheduleConfig):
            raise ValueError("unet and schedule must be a UNetConfig and a ScheduleConfig")
        check_int("scale", self.scale, 1, MAX_SCALE)
        check_int("hq_size", self.hq_size, 1, MAX_SIZE)
        if self.hq_size % self.scale:
            raise ValueError(f"hq_size must be a multiple of scale {self.scale}, got {self.hq_size}")
        factor = self.unet.downsample_factor
        check_int("patch", self.patch, 1, self.hq_size)
        if self.patch % factor:
            raise ValueError(f"patch must be a positive multiple of {factor} for this UNet, got {self.patch}")
        check_int("stride", self.stride, 1, self.patch)
        check_int("samples", self.samples, 1, MAX_SAMPLES)
        if not isinstance(self.training, dict):
            raise ValueError(f"training must be a JSON object, got {shown(self.training)}")

    @property
    def lq_size(self) -> int:
        return self.hq_size // self.scale

    def to_dict(self) -> dict:
        return {"architecture": ARCHITECTURE, "version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Rebuild and validate a config read from a checkpoint. Errors name the field's path
        (config.unet.base_channels ...) and its accepted range."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be a JSON object, got {shown(data)}")
        data = dict(data)
        arch, version = data.pop("architecture", None), data.pop("version", None)
        if arch != ARCHITECTURE:
            raise ValueError(f"architecture {shown(arch)} is not {ARCHITECTURE!r}")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise ValueError(f"config version {shown(version)} is not supported (expected {FORMAT_VERSION})")
        _check_keys(cls, data, "config")
        parts = {}
        for name, kind in (("unet", UNetConfig), ("schedule", ScheduleConfig)):
            part = data.get(name, {})
            if not isinstance(part, dict):
                raise ValueError(f"config.{name} must be a JSON object, got {shown(part)}")
            _check_keys(kind, part, f"config.{name}")
            try:
                parts[name] = kind(**part)
            except ValueError as e:
                raise ValueError(f"config.{name}.{e}") from None
        try:
            return cls(**{**data, **parts})
        except ValueError as e:
            raise ValueError(f"config.{e}") from None


def _check_keys(kind, data: dict, where: str) -> None:
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown key {where}.{shown(unknown[0])} (known: {', '.join(sorted(known))})")


class LPIPModel(nn.Module):
    """eps(x_t, lq_up, t) with its ModelConfig attached as `.config`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.unet = ConditionalUNet(config.unet)

    def forward(self, x_t: torch.Tensor, lq_up: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x_t, lq_up, t)
