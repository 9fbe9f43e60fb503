"""lpip_core.training.augment and the patch stream that uses it."""
import random

import pytest
import torch

from lpip_core.resize import resize
from lpip_core.training.augment import NO_AUGMENTATION, Augmentation, augment_face
from lpip_core.training.pairs import PatchPairs


def test_no_augmentation_is_the_antialiased_resize(hopper):
    out = augment_face(hopper[0], random.Random(0), 64, NO_AUGMENTATION)
    torch.testing.assert_close(out, resize(hopper, (64, 64))[0], rtol=0, atol=1e-6)


def test_augmentation_is_a_pure_function_of_the_rng_and_stays_a_face(hopper):
    a = augment_face(hopper[0], random.Random(7), 64)
    b = augment_face(hopper[0], random.Random(7), 64)
    c = augment_face(hopper[0], random.Random(8), 64)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (3, 64, 64)
    assert 0 <= a.min() and a.max() <= 1


def test_geometric_jitter_keeps_the_alignment():
    """A blob at an eye's FFHQ position (10 px from the centre of a 64 px face) moves by a few
    pixels at most under the default ranges: shift 2 % per axis (1.8 px), zoom 3 % (0.3 px) and
    rotation 3 degrees (0.5 px)."""
    ys, xs = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    eye = (48.0, 52.0)  # (y, x) at 128 px
    blob = torch.exp(-((ys - eye[0]) ** 2 + (xs - eye[1]) ** 2) / 18).expand(3, -1, -1)
    defaults = Augmentation()
    geometry = Augmentation(**{**NO_AUGMENTATION.to_dict(), "shift": defaults.shift, "scale": defaults.scale,
                               "rotation": defaults.rotation})
    moves = []
    for s in range(40):
        out = augment_face(blob, random.Random(s), 64, geometry)[0]
        w = out / out.sum()
        cy, cx = (w * torch.arange(64.0)[:, None]).sum(), (w * torch.arange(64.0)[None]).sum()
        moves.append(float(torch.hypot(cy - (eye[0] / 2 - 0.25), cx - (eye[1] / 2 - 0.25))))
    assert max(moves) < 2.7 and sum(moves) / len(moves) > 0.3  # it does move, a little


def test_flip_mirrors_and_grey_removes_colour(fixtures):
    from lpip_core.files import read_image

    face = read_image(fixtures / "astronaut_aligned_128.png")[0]
    flipped = augment_face(face, random.Random(0), 64, Augmentation(**{**NO_AUGMENTATION.to_dict(), "flip": 1.0}))
    torch.testing.assert_close(flipped, resize(face.flip(-1)[None], (64, 64))[0], rtol=0, atol=1e-6)
    grey = augment_face(face, random.Random(0), 64, Augmentation(**{**NO_AUGMENTATION.to_dict(), "grey": 1.0}))
    assert torch.allclose(grey[0], grey[1], atol=1e-5) and torch.allclose(grey[1], grey[2], atol=1e-5)
    hue = augment_face(face, random.Random(0), 64, Augmentation(**{**NO_AUGMENTATION.to_dict(), "hue": 0.3}))
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    plain = resize(face[None], (64, 64))[0]
    assert not torch.allclose(hue, plain, atol=0.02)  # the colours turned ...
    torch.testing.assert_close((hue * luma).sum(0), (plain * luma).sum(0), rtol=0, atol=0.02)  # ... not the luma


def test_patch_stream_is_seeded_and_uses_the_chosen_degradation(hopper):
    faces = (resize(hopper, (128, 128)) * 255).round().to(torch.uint8)
    pairs = PatchPairs(faces, scale=4, patch=16, hq_size=64, augmentation=Augmentation())
    hq, lq = pairs[5]
    assert hq.shape == lq.shape == (4, 3, 16, 16) and -1 <= hq.min() and hq.max() <= 1
    again = PatchPairs(faces, scale=4, patch=16, hq_size=64, augmentation=Augmentation())[5]
    assert torch.equal(hq, again[0]) and torch.equal(lq, again[1])
    clean = PatchPairs(faces, scale=4, patch=16, hq_size=64, degradation="clean")
    assert not torch.equal(clean[5][1], lq)
    photo = PatchPairs(faces, scale=4, patch=16, hq_size=64, degradation="clean", photo_share=1.0)
    assert torch.equal(photo[5][1], photo[5][1]) and not torch.equal(photo[5][1], clean[5][1])
    with pytest.raises(ValueError, match="degradation must be one of"):
        PatchPairs(faces, scale=4, patch=16, hq_size=64, degradation="blurry")
    with pytest.raises(ValueError, match="photo_share"):
        PatchPairs(faces, scale=4, patch=16, hq_size=64, photo_share=1.5)
    with pytest.raises(ValueError, match="stored at 128 px, smaller than hq_size 256"):
        PatchPairs(faces, scale=4, patch=16, hq_size=256)


def test_an_inside_mask_moves_with_the_face_and_keeps_its_values(hopper):
    """The fourth channel (inside the photo or not) follows the geometry, not the colour jitter, and
    what the warp brings in from beyond the crop counts as outside."""
    face = torch.cat([resize(hopper, (128, 128))[0], torch.ones(1, 128, 128)])
    strong = Augmentation(flip=0, shift=0.1, scale=0, rotation=0, brightness=0.5, contrast=0.5, saturation=0.5)
    for seed in range(5):
        rng, again = random.Random(seed), random.Random(seed)
        out = augment_face(face, rng, 64, strong)
        rgb = augment_face(face[:3], again, 64, strong)
        torch.testing.assert_close(out[:3], rgb, rtol=0, atol=1e-6)  # the same draws for the face
        mask = out[3]
        assert mask.max() == 1 and mask.min() >= 0
        border = torch.cat([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert border.min() < 0.5 and mask[24:40, 24:40].min() == 1  # shifted in at an edge; the centre stays in
