"""The conditional noise-prediction UNet eps(x_t, lq_up, t) of SR3 / LPIP-Diff.

The noisy image and the upsampled low-quality image are concatenated on the channel axis.
The network is fully convolutional (attention runs over whatever spatial tokens a level has),
so one set of weights serves any patch whose sides are multiples of `downsample_factor`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_float, check_int, check_int_list, shown


@dataclass(frozen=True)
class UNetConfig:
    """Shape of a ConditionalUNet; stored in every checkpoint.

    Accepted ranges (checked before anything is built, so that a checkpoint's metadata cannot ask
    for an absurd network): image_channels 3; base_channels 1..1024; channel_mults 1 to 8 levels,
    each 1..16; num_res_blocks 1..8; attention_levels distinct level indices; head_channels
    1..4096, and every attention width a multiple of its head count; norm_groups 1..1024, dividing
    base_channels and every level's width; dropout in [0, 1).
    """

    image_channels: int = 3
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = ()  # level indices (0 = full resolution)
    middle_attention: bool = True
    head_channels: int = 32
    norm_groups: int = 32
    dropout: float = 0.0

    def __post_init__(self):
        # JSON round trips give lists; keep the dataclass hashable and comparable.
        mults = check_int_list("channel_mults", self.channel_mults, 1, 16, min_len=1, max_len=8)
        levels = len(mults)
        attention = check_int_list("attention_levels", self.attention_levels, 0, levels - 1, min_len=0,
                                   max_len=levels)
        if len(set(attention)) != len(attention):
            raise ValueError(f"attention_levels must be distinct, got {list(attention)}")
        object.__setattr__(self, "channel_mults", mults)
        object.__setattr__(self, "attention_levels", attention)
        check_int("image_channels", self.image_channels, 3, 3)
        check_int("base_channels", self.base_channels, 1, 1024)
        check_int("num_res_blocks", self.num_res_blocks, 1, 8)
        if not isinstance(self.middle_attention, bool):
            raise ValueError(f"middle_attention must be true or false, got {shown(self.middle_attention)}")
        check_int("head_channels", self.head_channels, 1, 4096)
        check_int("norm_groups", self.norm_groups, 1, 1024)
        check_float("dropout", self.dropout, 0.0, 1.0, open_high=True)
        for width in (self.base_channels, *(self.base_channels * m for m in mults)):
            if width % self.norm_groups:
                raise ValueError(f"norm_groups={self.norm_groups} must divide every width; {width} is not divisible")
        widths = [self.base_channels * mults[lv] for lv in attention]
        for width in widths + ([self.base_channels * mults[-1]] if self.middle_attention else []):
            heads = max(1, width // self.head_channels)
            if width % heads:
                raise ValueError(f"head_channels={self.head_channels} splits width {width} into {heads} heads "
                                 "unevenly; the width must be a multiple of the head count")

    @property
    def downsample_factor(self) -> int:
        """Patch sides must be multiples of this."""
        return 2 ** (len(self.channel_mults) - 1)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, UNetConfig] = {
    # Unit tests: well under 0.2 M parameters.
    "tiny": UNetConfig(base_channels=16, channel_mults=(1, 2), num_res_blocks=1, middle_attention=False,
                       head_channels=16, norm_groups=8),
    # x4 (16 -> 64 px), 16 px patches: levels 16, 8, 4; about 2 M parameters.
    "small": UNetConfig(base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=2, attention_levels=(2,),
                        head_channels=32, norm_groups=8),
    # x8 (16 -> 128 px), 32 px patches: levels 32, 16, 8, 4; about 1.6 M parameters, sized so that
    # 25 fused steps on a 128 px face (49 patches a step) stay well under 10 s on a 2-core CPU.
    "base": UNetConfig(base_channels=32, channel_mults=(1, 2, 2, 2), num_res_blocks=1, attention_levels=(3,),
                       head_channels=32, norm_groups=8),
    # x4 as "small", twice as wide (about 7 M parameters, four times the compute): for a GPU's hours.
    "large": UNetConfig(base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2, attention_levels=(2,),
                        head_channels=32, norm_groups=8),
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, shape [N, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    return F.pad(emb, (0, dim % 2))


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the timestep injected as a scale and shift of the second norm."""

    def __init__(self, ch_in: int, ch_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, ch_in)
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * ch_out)
        self.norm2 = nn.GroupNorm(groups, ch_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(ch_out, ch_out, 3, padding=1))
        self.skip = nn.Identity() if ch_in == ch_out else nn.Conv2d(ch_in, ch_out, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the spatial positions of a feature map."""

    def __init__(self, ch: int, head_channels: int, groups: int):
        super().__init__()
        self.heads = max(1, ch // head_channels)
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = _zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # [b, heads, hw, c/heads]
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x, emb=None):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, emb=None):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.Sequential):
    """A sequence of blocks that all receive the timestep embedding."""

    def forward(self, x, emb):
        for block in self:
            x = block(x, emb)
        return x


class ConditionalUNet(nn.Module):
    """eps_theta(x_t, lq_up, t): predicts the noise in x_t given the upsampled LQ image."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        c = config
        ch = c.base_channels
        emb_dim = 4 * ch
        self.time_embed = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input = nn.Conv2d(2 * c.image_channels, ch, 3, padding=1)

        def res(ch_in, ch_out):
            return ResBlock(ch_in, ch_out, emb_dim, c.norm_groups, c.dropout)

        def attn(width):
            return Attention(width, c.head_channels, c.norm_groups)

        self.down = nn.ModuleList()
        skips = [ch]
        width = ch
        last = len(c.channel_mults) - 1
        for level, mult in enumerate(c.channel_mults):
            for _ in range(c.num_res_blocks):
                blocks = [res(width, ch * mult)]
                width = ch * mult
                if level in c.attention_levels:
                    blocks.append(attn(width))
                self.down.append(Stage(*blocks))
                skips.append(width)
            if level != last:
                self.down.append(Stage(Downsample(width)))
                skips.append(width)

        middle = [res(width, width)] + ([attn(width)] if c.middle_attention else []) + [res(width, width)]
        self.middle = Stage(*middle)

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mults))):
            for i in range(c.num_res_blocks + 1):
                blocks = [res(width + skips.pop(), ch * mult)]
                width = ch * mult
                if level in c.attention_levels:
                    blocks.append(attn(width))
                if level != 0 and i == c.num_res_blocks:
                    blocks.append(Upsample(width))
                self.up.append(Stage(*blocks))

        self.out = nn.Sequential(nn.GroupNorm(c.norm_groups, width), nn.SiLU(),
                                 _zero(nn.Conv2d(width, c.image_channels, 3, padding=1)))

    def forward(self, x_t: torch.Tensor, lq_up: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        factor = self.config.downsample_factor
        if x_t.shape[-2] % factor or x_t.shape[-1] % factor:
            raise ValueError(f"patch size {tuple(x_t.shape[-2:])} must be a multiple of {factor} for this UNet")
        t = t.expand(x_t.shape[0]) if t.ndim == 0 else t
        emb = self.time_embed(timestep_embedding(t, self.config.base_channels).to(x_t.dtype))
        h = self.input(torch.cat([x_t, lq_up], dim=1))
        hs = [h]
        for stage in self.down:
            h = stage(h, emb)
            hs.append(h)
        h = self.middle(h, emb)
        for stage in self.up:
            h = stage(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["UNetConfig", "PRESETS", "ConditionalUNet", "timestep_embedding", "count_parameters"]
