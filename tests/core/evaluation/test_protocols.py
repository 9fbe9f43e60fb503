"""lpip_core.evaluation.protocols: fixed, seeded LQ faces for judging a model."""
import pytest
import torch

from lpip_core.evaluation.metrics import psnr
from lpip_core.evaluation.protocols import KNOWN_PROTOCOLS, PROTOCOLS, check_protocols, make_lq
from lpip_core.files import read_image
from lpip_core.resize import resize


@pytest.fixture(scope="module")
def faces(fixtures):
    return torch.cat([resize(read_image(fixtures / f"{n}_aligned_128.png"), (64, 64)) for n in ("hopper", "astronaut")])


@pytest.mark.parametrize("name", list(KNOWN_PROTOCOLS))
def test_every_protocol_is_deterministic_8_bit_and_lq_sized(faces, name):
    a, b = make_lq(name, faces, 16, seed=3), make_lq(name, faces, 16, seed=3)
    assert torch.equal(a, b) and a.shape == (2, 3, 16, 16)
    assert torch.equal((a * 255).round() / 255, a) and 0 <= a.min() and a.max() <= 1


def test_protocols_differ_and_grow_harsher(faces):
    clean = make_lq("clean", faces, 16)
    assert torch.equal(clean, (resize(faces, (16, 16)) * 255).round() / 255)  # nothing but the downsample
    errors = [(make_lq(f"lq-noise-jpeg-{s}", faces, 16) - clean).pow(2).mean().item()
              for s in ("light", "medium", "strong")]
    assert 0 < errors[0] < errors[1] < errors[2]
    assert not torch.equal(make_lq("unseen", faces, 16), clean)
    # seeds matter only where a protocol draws something
    assert not torch.equal(make_lq("gfpgan512", faces, 16, seed=0), make_lq("gfpgan512", faces, 16, seed=1))
    assert torch.equal(make_lq("unseen", faces, 16, seed=0), make_lq("unseen", faces, 16, seed=1))


def test_unknown_names_are_refused_and_all_expands():
    assert check_protocols("all") == tuple(PROTOCOLS)
    with pytest.raises(ValueError, match="protocol must be 'all' or one of"):
        check_protocols(["clean", "sharp"])


def test_photo_is_asked_for_by_name_seeded_and_lands_on_the_face(faces):
    assert "photo" not in check_protocols("all") and check_protocols(["photo"]) == ("photo",)
    photo, clean = make_lq("photo", faces, 16, seed=0), make_lq("clean", faces, 16)
    assert not torch.equal(photo, make_lq("photo", faces, 16, seed=1))
    centre = (..., slice(3, 13), slice(3, 13))
    assert (psnr(photo[centre], clean[centre]) > 24).all()  # the same face, aligned again at 16 px
