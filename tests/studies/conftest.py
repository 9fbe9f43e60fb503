"""studies/: the studies rebuilt on evaluate's steps run for real on two fixture faces with an untrained tiny
model and two steps (their numbers mean nothing; their shape and their agreement with restore do)."""

import pytest

import lpip_core
from tests.helpers import aligned_faces, tiny_model

FACES = ("astronaut", "hopper")


@pytest.fixture(scope="package")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    data = aligned_faces(root / "faces", *FACES)
    model = tiny_model(scale=4, patch=16)  # 16 -> 64 px
    return root, data, lpip_core.save_model(model, root / "tiny.safetensors"), model
