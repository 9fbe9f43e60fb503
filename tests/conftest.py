"""Shared fixtures: one CPU thread (the CI machine has 2 cores), tiny models, committed face images."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

import lpip_core
from lpip_core.files import read_image
from tests.helpers import FIXTURES, tiny_model

torch.set_num_threads(1)

# Property-based tests (tests/fuzz/): reproducible in CI (a fixed seed, no example database) and
# bounded in time; HYPOTHESIS_PROFILE=explore searches wider with fresh random examples.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("explore", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def hopper() -> torch.Tensor:
    """A real aligned face, [1, 3, 128, 128] in [0, 1]."""
    return read_image(FIXTURES / "hopper_aligned_128.png")


@pytest.fixture
def model() -> lpip_core.LPIPModel:
    return tiny_model()
