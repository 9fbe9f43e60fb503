"""Augmentation that suits aligned faces: small geometric jitter and colour changes that a real
photo could show, never anything that breaks the FFHQ alignment the model relies on.

`augment_face` warps the stored source face (kept larger than the training size, so the warp
loses nothing) and resizes it to the training size with antialiasing. Every draw comes from the
caller's `random.Random`, so a training sample stays a pure function of its index.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

import torch
from torch.nn import functional as F

from ..resize import resize

_LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes; each field 0 switches its change off."""

    flip: float = 0.5  # probability of a horizontal mirror
    shift: float = 0.02  # of the face side, each axis
    scale: float = 0.03  # relative zoom, +-
    rotation: float = 3.0  # degrees, +-
    brightness: float = 0.05  # relative, +-
    contrast: float = 0.05  # relative, +-
    saturation: float = 0.1  # relative, +-
    hue: float = 0.0  # of a full turn, +-
    grey: float = 0.05  # probability of a greyscale face

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENTATION = Augmentation(0, 0, 0, 0, 0, 0, 0, 0, 0)


def augment_face(face: torch.Tensor, rng: random.Random, size: int, aug: Augmentation = Augmentation()) -> torch.Tensor:
    """[C, S, S] in [0, 1] (S >= size) -> a randomly changed face [C, size, size] in [0, 1]. Channels
    past the first three (an inside mask) move with the face but keep their values."""
    x = _jitter_geometry(face, rng, aug)
    x = resize(x[None], (size, size))[0].clamp(0, 1)
    return torch.cat([_jitter_colour(x[:3], rng, aug).clamp(0, 1), x[3:]])


def _jitter_geometry(face: torch.Tensor, rng: random.Random, aug: Augmentation) -> torch.Tensor:
    flip = rng.random() < aug.flip
    angle = math.radians(rng.uniform(-aug.rotation, aug.rotation))
    zoom = 1 + rng.uniform(-aug.scale, aug.scale)
    dx, dy = (2 * rng.uniform(-aug.shift, aug.shift) for _ in range(2))  # in [-1, 1] grid units
    if flip:
        face = face.flip(-1)
    if angle == 0 and zoom == 1 and dx == 0 and dy == 0:
        return face
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    theta = torch.tensor([[cos, -sin, dx], [sin, cos, dy]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, [1, *face.shape], align_corners=False)
    rgb = F.grid_sample(face[None, :3].float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    mask = F.grid_sample(face[None, 3:].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.cat([rgb, mask], 1)[0]


def _jitter_colour(x: torch.Tensor, rng: random.Random, aug: Augmentation) -> torch.Tensor:
    brightness = 1 + rng.uniform(-aug.brightness, aug.brightness)
    contrast = 1 + rng.uniform(-aug.contrast, aug.contrast)
    saturation = 1 + rng.uniform(-aug.saturation, aug.saturation)
    hue = rng.uniform(-aug.hue, aug.hue) * 2 * math.pi
    grey = rng.random() < aug.grey
    x = x * brightness
    x = (x - x.mean()) * contrast + x.mean()
    luma = (x * _LUMA.to(x)[:, None, None]).sum(0, keepdim=True)
    x = luma + (x - luma) * (0.0 if grey else saturation)
    if hue and not grey:
        x = _rotate_hue(x, hue)
    return x


def _rotate_hue(x: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate the chroma of an RGB image by `angle` radians in YIQ space (luma unchanged)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    cos, sin = math.cos(angle), math.sin(angle)
    rotate = torch.tensor([[1.0, 0, 0], [0, cos, -sin], [0, sin, cos]])
    matrix = (torch.linalg.inv(to_yiq) @ rotate @ to_yiq).to(x)
    return torch.einsum("ij,jhw->ihw", matrix, x)
