"""Shared fixtures: one CPU thread (the CI machine has 2 cores), tiny models, committed face images."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lpip_core
from lpip_core.files import read_image

FIXTURES = Path(__file__).parent / "fixtures"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def hopper() -> torch.Tensor:
    """A real aligned face, [1, 3, 128, 128] in [0, 1]."""
    return read_image(FIXTURES / "hopper_aligned_128.png")


def tiny_model(scale: int = 4, patch: int = 16, seed: int = 0) -> lpip_core.LPIPModel:
    """An untrained tiny model whose output is not identically zero (its zero-initialised layers are
    re-drawn), so that fusion and sampling differences show."""
    torch.manual_seed(seed)
    config = lpip_core.ModelConfig(unet=lpip_core.PRESETS["tiny"], scale=scale, hq_size=16 * scale, patch=patch,
                                   stride=patch // 2)
    model = lpip_core.LPIPModel(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.05)
    return model.eval()


@pytest.fixture
def model() -> lpip_core.LPIPModel:
    return tiny_model()
