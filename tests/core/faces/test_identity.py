"""Tests for lpip_core.faces.identity: dlib 128-d embeddings and ID Sim on real aligned faces."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lpip_core.faces.detect import align_faces
from lpip_core.faces.identity import (
    SAME_PERSON_DISTANCE,
    face_descriptor,
    face_embedding,
    face_landmarks,
    id_similarity,
    identity_scores,
)
from tests.helpers import FIXTURES

FACES = FIXTURES / "faces"
PEOPLE = ["obama", "obama2", "biden", "hopper"]


def load(name: str) -> torch.Tensor:
    a = np.asarray(Image.open(FACES / f"{name}.jpg").convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


@pytest.fixture(scope="module")
def crops():
    """One 256 px FFHQ-style crop per fixture portrait."""
    return {n: align_faces(load(n)[None], face_size=256)[0] for n in PEOPLE}


@pytest.fixture(scope="module")
def embeddings(crops):
    return {n: face_embedding(c) for n, c in crops.items()}


def test_embedding_is_128d_unit_norm_and_deterministic(crops, embeddings):
    e = embeddings["obama"]
    assert e.shape == (1, 128) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=1), torch.ones(1), atol=1e-5)
    assert torch.equal(face_embedding(crops["obama"]), e)


def test_same_person_scores_above_different_people(embeddings):
    def cos(a, b):
        return float((embeddings[a] * embeddings[b]).sum())

    same = cos("obama", "obama2")
    assert same > cos("obama", "biden") + 0.05
    assert same > cos("obama", "hopper") + 0.05
    assert same > cos("obama2", "biden") + 0.05


def test_id_similarity_pairs(crops):
    a = torch.cat([crops["obama"], crops["obama"]])
    b = torch.cat([crops["obama2"], crops["biden"]])
    sim = id_similarity(a, b)
    assert sim.shape == (2,) and sim[0] > sim[1] + 0.05
    assert torch.allclose(id_similarity(b, b), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("size", [64, 128])
def test_small_restored_crops_work(crops, size):
    small = F.interpolate(crops["obama"], size=(size, size), mode="bicubic", antialias=True).clamp(0, 1)
    assert face_embedding(small).shape == (1, 128)
    # a 64 px face still matches its 256 px self better than anyone else (sizes may differ)
    same = id_similarity(small, crops["obama"])
    assert same > 0.95
    assert same > id_similarity(small, crops["biden"]) + 0.05


def test_reference_landmarks_are_shared(crops):
    truth = crops["hopper"]
    # a "restoration" the detector cannot work with: heavy blur to 16 px and back
    blurred = F.interpolate(F.interpolate(truth, size=(16, 16), mode="area"), size=(256, 256), mode="bicubic").clamp(0, 1)
    shared = face_embedding(blurred, face_landmarks(truth))
    assert torch.allclose(id_similarity(blurred, truth), (shared * face_embedding(truth)).sum(1), atol=1e-6)
    # landmarks are fractions of the crop: the same face at another size gets the same ones
    lm = face_landmarks(truth)
    lm_big = face_landmarks(F.interpolate(truth, size=(512, 512), mode="bicubic").clamp(0, 1))
    assert lm.shape == (1, 5, 2) and (lm - lm_big).abs().max() < 0.01


def test_faceless_crop_falls_back_to_canonical_box():
    flat = torch.full((1, 3, 128, 128), 0.5)
    lm = face_landmarks(flat)
    assert lm.shape == (1, 5, 2) and ((lm > 0) & (lm < 1)).all()
    assert torch.isfinite(face_embedding(flat)).all()


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda c: face_embedding(c[:, :1]), "faces"),
        (lambda c: face_embedding(c[0]), "faces"),
        (lambda c: face_embedding(c * float("nan")), "faces"),
        (lambda c: face_embedding(c[..., :8, :8]), "faces"),
        (lambda c: face_embedding(c, torch.zeros(1, 4, 2)), "landmarks"),
        (lambda c: id_similarity(c, torch.cat([c, c])), "a and b"),
        (lambda c: id_similarity(c * 2, c), "a"),
        (lambda c: id_similarity(c, c[:, :2]), "b"),
    ],
)
def test_bad_inputs_raise_value_error(crops, call, name):
    with pytest.raises(ValueError, match=name):
        call(crops["obama"])


def test_identity_scores_give_dlib_distances_with_its_threshold(crops):
    a = torch.cat([crops["obama"], crops["obama"]])
    b = torch.cat([crops["obama2"], crops["biden"]])
    sim, dist = identity_scores(a, b)
    assert torch.allclose(sim, id_similarity(a, b), atol=1e-6)
    assert dist[0] < SAME_PERSON_DISTANCE <= dist[1]  # dlib: the same person, a different one
    d = face_descriptor(b)
    assert d.shape == (2, 128) and (d.norm(dim=1) > 1.1).all()  # dlib's scale, not unit vectors
    assert torch.allclose(face_embedding(b), torch.nn.functional.normalize(d, dim=1), atol=1e-6)
