"""Tests for lpip_core.faces.detect: detection, FFHQ-style alignment, paste-back (real photos, real dlib)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lpip_core.faces.detect import (
    FaceAlignment,
    align_faces,
    alignment_matrix,
    detect_faces,
    warp_face,
)
from lpip_core.faces.paste import face_masks, paste_faces
from tests.helpers import FIXTURES, REPO

FACES = FIXTURES / "faces"
PORTRAITS = ["obama.jpg", "obama2.jpg", "biden.jpg", "hopper.jpg", "astronaut.jpg"]
# Eye centres of the FFHQ-style crop, as fractions of the side (the 5-point template that
# facexlib/GFPGAN use for FFHQ: (193, 240) and (319, 240) in a 512 crop).
FFHQ_EYES = ((0.377, 0.469), (0.623, 0.469))


def load(name: str) -> torch.Tensor:
    a = np.asarray(Image.open(FACES / name).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def side_by_side(*names: str) -> torch.Tensor:
    ims = [load(n) for n in names]
    h = max(im.shape[1] for im in ims)
    ims = [F.pad(im, (0, 0, 0, h - im.shape[1]), mode="replicate") for im in ims]
    return torch.cat(ims, dim=2)


def crop_coords(al: FaceAlignment, h: int, w: int):
    """Crop-pixel coordinates (u, v) of every source pixel."""
    m = torch.tensor(al.matrix, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return m[0, 0] * xx + m[0, 1] * yy + m[0, 2], m[1, 0] * xx + m[1, 1] * yy + m[1, 2]


def outside_footprint(al: FaceAlignment, h: int, w: int) -> torch.Tensor:
    u, v = crop_coords(al, h, w)
    k = al.face_size
    return (u < -1) | (u > k) | (v < -1) | (v > k)


def inner_face(al: FaceAlignment, h: int, w: int) -> torch.Tensor:
    """The central part of the crop (eyes to mouth), where a paste must be at full strength."""
    u, v = crop_coords(al, h, w)
    k = al.face_size
    return (u > 0.3 * k) & (u < 0.7 * k) & (v > 0.35 * k) & (v < 0.75 * k)


@pytest.fixture(scope="module")
def obama():
    img = load("obama.jpg")[None]
    crops, als = align_faces(img, face_size=512)
    return img, crops, als


def test_import_does_not_load_dlib():
    code = "import sys, lpip_core.faces.detect, lpip_core.faces.identity; assert 'dlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize("name", PORTRAITS)
def test_one_face_per_portrait_with_landmarks_in_box(name):
    faces = detect_faces(load(name))
    assert len(faces) == 1
    f = faces[0]
    x0, y0, x1, y1 = f.box
    assert f.score > 0 and len(f.landmarks) == 5
    for x, y in f.landmarks:
        assert x0 <= x <= x1 and y0 <= y <= y1
    # documented order: image-right eye (outer, inner), image-left eye (outer, inner), nose base
    xs = [f.landmarks[i][0] for i in (2, 3, 4, 1, 0)]
    assert xs == sorted(xs)
    assert f.landmarks[4][1] > max(y for _, y in f.landmarks[:4])


def test_two_faces_select_modes_and_batch():
    pair = side_by_side("obama.jpg", "biden.jpg")  # obama left (smaller face), biden right
    crops, als = align_faces(pair[None], face_size=64, select="all")
    assert crops.shape == (2, 3, 64, 64) and [a.image_index for a in als] == [0, 0]
    assert als[0].box[0] > 400 and als[1].box[2] < 400  # largest first: biden, then obama
    big, al_big = align_faces(pair[None], face_size=64, select="largest")
    assert len(al_big) == 1 and al_big[0] == als[0] and torch.equal(big[0], crops[0])
    second, al_second = align_faces(pair[None], face_size=64, select="index", index=1)
    assert al_second == [als[1]] and torch.equal(second[0], crops[1])
    none, al_none = align_faces(pair[None], face_size=64, select="index", index=2)
    assert none.shape == (0, 3, 64, 64) and al_none == []

    hopper = F.pad(load("hopper.jpg"), (0, pair.shape[2] - 320, 0, pair.shape[1] - 320), mode="replicate")
    crops, als = align_faces(torch.stack([pair, hopper]), face_size=64, select="all")
    assert [a.image_index for a in als] == [0, 0, 1]


@pytest.mark.parametrize("name", ["obama.jpg", "hopper.jpg", "astronaut.jpg"])
def test_aligned_crop_has_eyes_at_ffhq_positions(name):
    crops, als = align_faces(load(name)[None], face_size=256)
    assert als[0].face_size == 256 and als[0].image_size == tuple(load(name).shape[-2:])
    again = detect_faces(crops[0], upsample=0)
    assert len(again) == 1
    p = np.array(again[0].landmarks) / 256
    eye_img_left, eye_img_right = p[2:4].mean(0), p[0:2].mean(0)
    assert np.allclose(eye_img_left, FFHQ_EYES[0], atol=0.03)
    assert np.allclose(eye_img_right, FFHQ_EYES[1], atol=0.03)
    assert abs(eye_img_left[1] - eye_img_right[1]) < 0.015  # eye line level


def test_big_face_into_small_crop_does_not_alias():
    # 1-px stripes: any sampling at ~6 px stride without a low-pass gives strong moire
    img = torch.zeros(3, 700, 700)
    img[:, :, ::2] = 1.0
    lm = [(470, 300), (400, 300), (200, 300), (270, 300), (335, 390)]  # a 400 px "face"
    al = FaceAlignment.from_landmarks(lm, image_size=(700, 700), face_size=64)
    crop = warp_face(img, al)
    assert crop.shape == (3, 64, 64)
    assert abs(crop.mean().item() - 0.5) < 0.02 and crop.std().item() < 0.03
    # and the border is reflected, not black
    assert crop[:, :2].min() > 0.3 and crop[:, :, :2].min() > 0.3


def test_round_trip_align_paste(obama):
    img, crops, als = obama
    out = paste_faces(img, crops, als)
    h, w = img.shape[-2:]
    inside, far = inner_face(als[0], h, w), outside_footprint(als[0], h, w)
    assert far.sum() > 10000
    assert torch.equal(out[0][:, far], img[0][:, far])
    err = (out[0] - img[0]).abs()[:, inside].flatten()
    # two bicubic resamplings (crop at ~2.5x, then back): a pure resize round trip gives 0.004
    assert err.mean() < 0.01 and torch.quantile(err, 0.99) < 0.06


def test_face_at_the_image_border():
    img = load("obama.jpg")[None, :, 30:, 150:]  # face touches the top-left corner area
    crops, als = align_faces(img, face_size=256)
    assert len(als) == 1
    u, v = crop_coords(als[0], *img.shape[-2:])
    assert u.min() > 0 and v.min() > 0  # the crop does reach outside the image ...
    corner = crops[0, :, :24, :24]
    assert corner.mean() > 0.2  # ... and is filled by reflection, not black
    out = paste_faces(img, crops, als)
    inside = inner_face(als[0], *img.shape[-2:])
    assert (out - img)[0][:, inside].abs().mean() < 0.01


def test_paste_brightened_face_changes_only_the_face(obama):
    img, crops, als = obama
    out = paste_faces(img, (crops + 0.2).clamp(0, 1), als)
    h, w = img.shape[-2:]
    inside, far = inner_face(als[0], h, w), outside_footprint(als[0], h, w)
    assert (out[0] - img[0])[:, inside].mean() > 0.15
    assert torch.equal(out[0][:, far], img[0][:, far])


def test_restored_crop_at_4x_pastes_like_1x():
    img = load("obama2.jpg")[None]
    small, als = align_faces(img, face_size=64)
    big = F.interpolate(small, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    out1 = paste_faces(img, small, als)
    out4 = paste_faces(img, big, als)
    inside = inner_face(als[0], *img.shape[-2:])
    assert (out1 - out4)[0][:, inside].abs().mean() < 0.01


def test_resized_alignment_matches_direct_alignment(obama):
    img, crops, als = obama
    at_128 = als[0].resized(128)
    assert at_128.face_size == 128
    direct = torch.tensor(alignment_matrix(als[0].landmarks, face_size=128))
    assert torch.allclose(torch.tensor(at_128.matrix), direct, atol=1e-9)
    assert torch.equal(warp_face(img, at_128), warp_face(img[0], als[0], face_size=128))


def test_no_seam_on_flat_region():
    img = torch.full((1, 3, 300, 300), 0.50)
    lm = [(190, 130), (165, 130), (110, 130), (135, 130), (150, 165)]
    al = FaceAlignment.from_landmarks(lm, image_size=(300, 300), face_size=64)
    face = torch.full((1, 3, 64, 64), 0.56)
    hard = paste_faces(img, face, [al], feather=0.0)
    soft = paste_faces(img, face, [al], feather=0.1)
    def max_step(x):
        return max((x[..., 1:, :] - x[..., :-1, :]).abs().max().item(), (x[..., 1:] - x[..., :-1]).abs().max().item())
    assert max_step(hard) > 0.05  # a hard edge is a visible seam ...
    assert max_step(soft) < 0.006  # ... the feathered mask ramps over ~22 px
    assert abs(soft[0, :, 150, 150].mean().item() - 0.56) < 1e-5  # full strength in the middle


def test_color_match_moves_the_mean(obama):
    img, crops, als = obama
    tinted = crops * torch.tensor([0.6, 0.8, 1.0]).view(1, 3, 1, 1)
    inside = inner_face(als[0], *img.shape[-2:])
    plain = paste_faces(img, tinted, als)[0][:, inside].mean(1)
    matched = paste_faces(img, tinted, als, color_match="mean_std")[0][:, inside].mean(1)
    truth = img[0][:, inside].mean(1)
    assert (plain - truth).abs().max() > 0.1
    assert (matched - truth).abs().max() < 0.03


def test_image_without_faces():
    img = torch.full((1, 3, 120, 160), 0.3)
    crops, als = align_faces(img, face_size=128)
    assert crops.shape == (0, 3, 128, 128) and als == []
    out = paste_faces(img, crops, als)
    assert torch.equal(out, img) and out is not img


def test_alignment_json_round_trip(obama):
    al = obama[2][0]
    back = FaceAlignment.from_dict(json.loads(json.dumps(al.to_dict())))
    assert back == al
    with pytest.raises(ValueError, match="missing"):
        FaceAlignment.from_dict({"box": [0, 0, 1, 1]})


def test_padding_widens_the_crop_around_the_same_centre(obama):
    img, _, als = obama
    wide, wals = align_faces(img, face_size=512, padding=1.0)
    a, b = np.array(als[0].matrix), np.array(wals[0].matrix)
    assert np.allclose(a[:, :2], 2 * b[:, :2])
    centre = np.linalg.solve(a[:, :2], np.array([255.5, 255.5]) - a[:, 2])
    assert np.allclose(b[:, :2] @ centre + b[:, 2], [255.5, 255.5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors(obama):
    img, _, _ = obama
    crops, als = align_faces(img.cuda(), face_size=128)
    assert crops.is_cuda
    out = paste_faces(img.cuda(), crops, als)
    far = outside_footprint(als[0], *img.shape[-2:])
    assert out.is_cuda and torch.equal(out.cpu()[0][:, far], img[0][:, far])


def _bad_calls(img, crops, als):
    return {
        "channels": (lambda: align_faces(img[:, :1]), "images"),
        "nan": (lambda: align_faces(img.clone().fill_(float("nan"))), "images"),
        "empty": (lambda: align_faces(img[:0]), "images"),
        "range_255": (lambda: align_faces(img * 255), "images"),
        "int_dtype": (lambda: align_faces((img * 255).to(torch.uint8)), "images"),
        "not_tensor": (lambda: align_faces(img.numpy()), "images"),
        "face_size_small": (lambda: align_faces(img, face_size=8), "face_size"),
        "face_size_big": (lambda: align_faces(img, face_size=4096), "face_size"),
        "select": (lambda: align_faces(img, select="biggest"), "select"),
        "index": (lambda: align_faces(img, select="index", index=-1), "index"),
        "padding": (lambda: align_faces(img, padding=-0.5), "padding"),
        "upsample": (lambda: detect_faces(img[0], upsample=9), "upsample"),
        "detect_batch": (lambda: detect_faces(img), "image"),
        "feather": (lambda: paste_faces(img, crops, als, feather=0.9), "feather"),
        "color_match": (lambda: paste_faces(img, crops, als, color_match="hist"), "color_match"),
        "count": (lambda: paste_faces(img, torch.cat([crops, crops]), als), "alignments"),
        "square": (lambda: paste_faces(img, crops[..., :100], als), "faces"),
        "image_size": (lambda: paste_faces(img[..., :-4], crops, als), "alignments"),
        "image_index": (lambda: paste_faces(img, crops, [FaceAlignment.from_dict({**als[0].to_dict(), "image_index": 3})]), "image_index"),
        "landmarks": (lambda: alignment_matrix([(0, 0)] * 4), "landmarks"),
    }


@pytest.mark.parametrize("case", list(_bad_calls(torch.zeros(1, 3, 4, 4), None, None)))
def test_bad_inputs_raise_value_error_naming_the_argument(obama, case):
    img, crops, als = obama
    call, name = _bad_calls(img, crops, als)[case]
    with pytest.raises(ValueError, match=name):
        call()


def test_paste_strength_blends_between_the_original_and_the_restored_face(hopper):
    """strength scales the paste mask: 0 changes nothing, 1 is a full paste, 0.5 is the midpoint."""
    from lpip_core.faces.detect import align_faces
    from lpip_core.faces.paste import paste_faces

    crops, found = align_faces(hopper, face_size=32)
    restored = 1 - crops  # anything visibly different
    full = paste_faces(hopper, restored, found, strength=1.0)
    none = paste_faces(hopper, restored, found, strength=0.0)
    half = paste_faces(hopper, restored, found, strength=0.5)
    assert torch.equal(none, hopper) and not torch.equal(full, hopper)
    torch.testing.assert_close(half, (full + hopper) / 2, rtol=0, atol=1e-5)
    for bad in (-0.1, 1.1, float("nan"), True):
        with pytest.raises(ValueError, match="strength must be a number in"):
            paste_faces(hopper, restored, found, strength=bad)


def test_face_masks_cover_the_crops_and_match_the_paste(obama):
    img, crops, als = obama
    h, w = img.shape[-2:]
    hard = face_masks(als, 1, (h, w))
    assert hard.shape == (1, h, w) and set(hard.unique().tolist()) == {0.0, 1.0}
    assert hard[0][outside_footprint(als[0], h, w)].max() == 0 and hard[0][inner_face(als[0], h, w)].min() == 1
    soft = face_masks(als, 1, (h, w), feather=0.1)
    assert ((soft > 0) <= (hard > 0)).all() and 0 < soft.mean() < hard.mean()
    # the paste changes a pixel exactly where its mask is above 0
    brighter = (crops + 0.3).clamp(0, 1)
    changed = (paste_faces(img, brighter, als, feather=0.1) != img).any(dim=1)[0]
    assert not (changed & (soft[0] == 0)).any() and changed[soft[0] == 1].all()
    assert face_masks([], 2, (h, w)).shape == (2, h, w)


def test_mask_limits_which_faces_are_taken():
    pair = side_by_side("obama.jpg", "biden.jpg")  # obama left, biden right
    h, w = pair.shape[-2:]
    left = torch.zeros(1, h // 4, w // 4)
    left[..., : w // 8] = 1  # a quarter-size mask: stretched to the image
    _, als = align_faces(pair[None], face_size=32, select="all", mask=left)
    assert len(als) == 1 and als[0].box[2] < 400
    _, right = align_faces(pair[None], face_size=32, select="largest", mask=1 - left)
    assert len(right) == 1 and right[0].box[0] > 400
    _, none = align_faces(pair[None], face_size=32, select="all", mask=torch.zeros(1, h, w))
    assert none == []
    with pytest.raises(ValueError, match="mask must have shape"):
        align_faces(pair[None], face_size=32, mask=torch.ones(3, h, w))
    with pytest.raises(ValueError, match="mask values"):
        align_faces(pair[None], face_size=32, mask=torch.full((1, h, w), 2.0))
