"""studies/: the studies rebuilt on evaluate's steps run for real on two fixture faces with an untrained tiny
model and two steps (their numbers mean nothing; their shape and their agreement with restore do)."""
import shutil

import pytest

import lpip_core
from tests.helpers import tiny_model

FACES = ("astronaut", "hopper")


@pytest.fixture(scope="package")
def setup(tmp_path_factory, fixtures):
    root = tmp_path_factory.mktemp("studies")
    data = root / "faces"
    data.mkdir()
    for name in FACES:
        shutil.copy(fixtures / f"{name}_aligned_128.png", data)
    model = tiny_model(scale=4, patch=16)  # 16 -> 64 px
    return root, data, lpip_core.save_model(model, root / "tiny.safetensors"), model
