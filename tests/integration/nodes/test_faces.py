"""Face Crop & Align and Face Paste Back (nodes/faces.py) in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py):
the crop -> restore -> paste chain, strength, several faces, seams, masks, and photos without a face.
"""
from __future__ import annotations

import time

import numpy as np

from tests.integration.helpers import (
    crop_align,
    expect_error,
    face_boxes,
    load_model,
    paste_back,
    read_images,
    sampler,
    save,
)


def test_crop_restore_paste_changes_only_the_faces(comfy_server, tiny_checkpoint, face_photos):
    """The chain of example workflow (a) on a two-person photo, select = all: two faces, each face
    region changed by the paste, pixels far from the faces unchanged (to 8-bit rounding)."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "2": load_model(tiny_checkpoint),
              "3": crop_align(["1", 0], face_size=["2", 1], select="all", upsample=1),
              "4": sampler(["2", 0], ["3", 0], steps=2),
              "5": paste_back(["1", 0], ["4", 0], ["3", 1]),
              "6": save(["5", 0], "faces/pasted"), "7": save(["3", 0], "faces/crops"),
              "8": save(["4", 0], "faces/restored"), "9": save(["1", 0], "faces/original")}
    entry = comfy_server.run(prompt, timeout=120)
    pasted, = read_images(comfy_server, entry, "6")
    crops = read_images(comfy_server, entry, "7")
    restored = read_images(comfy_server, entry, "8")
    original, = read_images(comfy_server, entry, "9")
    assert len(crops) == 2 and {c.shape for c in crops} == {(16, 16, 3)}
    assert {r.shape for r in restored} == {(64, 64, 3)}
    assert pasted.shape == original.shape
    diff = np.abs(pasted.astype(int) - original.astype(int)).max(axis=-1)
    boxes = face_boxes(original)
    assert len(boxes) == 2
    far = np.ones(diff.shape, bool)
    h, w = diff.shape
    yy, xx = np.mgrid[:h, :w]
    for x0, y0, x1, y1 in boxes:
        inner = diff[int(y0 + 0.3 * (y1 - y0)):int(y1 - 0.2 * (y1 - y0)), int(x0 + 0.2 * (x1 - x0)):int(x1 - 0.2 * (x1 - x0))]
        assert inner.mean() > 10, "the pasted (restored) face must change the face region"
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
        far &= (np.abs(xx - cx) > 1.3 * side) | (np.abs(yy - cy) > 1.3 * side)
    assert far.mean() > 0.3 and diff[far].max() <= 1


def test_paste_back_strength_blends(comfy_server, tiny_checkpoint, face_photos):
    """strength 0 leaves the photo as it was; 0.5 lands halfway between it and the full paste."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "2": load_model(tiny_checkpoint),
              "3": crop_align(["1", 0], face_size=["2", 1], select="all", upsample=1),
              "4": sampler(["2", 0], ["3", 0], steps=2)}
    for n, s in ((5, 1.0), (6, 0.5), (7, 0.0)):
        prompt[str(n)] = paste_back(["1", 0], ["4", 0], ["3", 1], strength=s)
        prompt[str(n + 10)] = save([str(n), 0], f"strength/{s}")
    prompt["20"] = save(["1", 0], "strength/original")
    entry = comfy_server.run(prompt, timeout=120)
    full, half, none, original = (read_images(comfy_server, entry, n)[0].astype(int) for n in ("15", "16", "17", "20"))
    assert np.abs(none - original).max() <= 1 and np.abs(full - original).max() > 20
    assert np.abs(half - (full + original) / 2).max() <= 1.5


def test_several_faces_per_image_and_per_batch(comfy_server, tiny_checkpoint, face_photos):
    """A batch of two photos with two faces each: four crops, each pasted back into its own frame."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "2": {"class_type": "ImageFlip", "inputs": {"image": ["1", 0], "flip_method": "y-axis: horizontally"}},
              "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
              "4": load_model(tiny_checkpoint),
              "5": crop_align(["3", 0], select="all", upsample=1),
              "6": sampler(["4", 0], ["5", 0], steps=1),
              "7": paste_back(["3", 0], ["6", 0], ["5", 1], "mean_std"),
              "8": save(["7", 0], "faces/batch"), "9": save(["3", 0], "faces/batch-original"),
              "10": save(["5", 0], "faces/batch-crops")}
    entry = comfy_server.run(prompt, timeout=120)
    pasted, originals, crops = (read_images(comfy_server, entry, n) for n in ("8", "9", "10"))
    assert len(crops) == 4 and len(pasted) == len(originals) == 2
    for out, orig in zip(pasted, originals):
        diff = np.abs(out.astype(int) - orig.astype(int)).max(axis=-1)
        for x0, y0, x1, y1 in face_boxes(orig):  # both faces of each frame were replaced
            cx, cy, r = int((x0 + x1) / 2), int((y0 + y1) / 2), int(0.15 * (x1 - x0))
            assert diff[cy - r:cy + r, cx - r:cx + r].mean() > 5


def test_paste_back_has_no_seam_on_a_flat_region(comfy_server, face_photos):
    """Paste a flat 64 px 'face' into a flat canvas with the alignment of a real face: the
    feathered edge must ramp smoothly (no step bigger than a few 8-bit levels)."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["portrait"]}},
              "2": crop_align(["1", 0], upsample=1),
              "3": {"class_type": "EmptyImage", "inputs": {"width": 320, "height": 320, "batch_size": 1,
                                                          "color": 0x808080}},
              "4": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1,
                                                          "color": 0x909090}},
              "5": paste_back(["3", 0], ["4", 0], ["2", 1]),
              "6": save(["5", 0], "faces/seam")}
    out, = read_images(comfy_server, comfy_server.run(prompt, timeout=60))
    g = out[..., 0].astype(int)
    assert g.max() == 0x90 and g.min() == 0x80  # the face went in at full strength, the rest as it was
    step = max(np.abs(np.diff(g, axis=0)).max(), np.abs(np.diff(g, axis=1)).max())
    assert step <= 2, f"a visible seam: a step of {step} levels"


def test_masks_of_crop_and_paste_and_the_mask_input(comfy_server, tiny_checkpoint, face_photos):
    """Face Crop & Align's MASK covers each crop; Face Paste Back's MASK is 0 where the photo is
    unchanged; a MASK input over the left half keeps only the left face."""
    left = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 320, "height": 320}}
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "3": crop_align(["2", 0], select="all"),
              "4": sampler(["1", 0], ["3", 0]),
              "5": paste_back(["2", 0], ["4", 0], ["3", 1]),
              "6": {"class_type": "MaskToImage", "inputs": {"mask": ["3", 3]}}, "7": save(["6", 0], "masks/crop"),
              "8": {"class_type": "MaskToImage", "inputs": {"mask": ["5", 1]}}, "9": save(["8", 0], "masks/paste"),
              "10": save(["5", 0], "masks/pasted"), "11": save(["2", 0], "masks/original"),
              "12": left, "13": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 640, "height": 320}},
              "14": {"class_type": "MaskComposite", "inputs": {"destination": ["13", 0], "source": ["12", 0],
                                                               "x": 0, "y": 0, "operation": "add"}},
              "15": crop_align(["2", 0], select="all", mask=["14", 0]),
              "16": {"class_type": "MaskToImage", "inputs": {"mask": ["15", 3]}}, "17": save(["16", 0], "masks/left")}
    entry = comfy_server.run(prompt, timeout=240)
    crop_mask, = read_images(comfy_server, entry, "7")
    paste_mask, = read_images(comfy_server, entry, "9")
    pasted, = read_images(comfy_server, entry, "10")
    original, = read_images(comfy_server, entry, "11")
    left_mask, = read_images(comfy_server, entry, "17")
    crop, paste = crop_mask[..., 0] > 127, paste_mask[..., 0] > 0
    assert set(np.unique(crop_mask[..., 0])) == {0, 255} and crop[:, :320].any() and crop[:, 320:].any()
    assert not (paste & ~(crop_mask[..., 0] > 0)).any()  # the feathered paste lies inside the crops
    changed = np.abs(pasted.astype(int) - original.astype(int)).max(axis=-1) > 1  # see above: rounding
    assert not (changed & ~paste).any() and changed[paste_mask[..., 0] == 255].mean() > 0.5
    assert left_mask[:, :320, 0].max() == 255 and left_mask[:, 320:, 0].max() == 0  # only the left face


def test_no_face_pass_through_skips_sampling(comfy_server, tiny_checkpoint):
    """No face: the sampler (here 1000 steps, minutes if it ran on anything) and the nodes fed by faces
    are skipped, and the photo comes back unchanged."""
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 120, "height": 90, "batch_size": 1,
                                                          "color": 0x336699}},
              "2": load_model(tiny_checkpoint),
              "3": crop_align(["1", 0], if_no_face="pass_through"),
              "4": sampler(["2", 0], ["3", 0], steps=1000),
              "5": paste_back(["1", 0], ["4", 0], ["3", 1]),
              "6": save(["5", 0], "faces/pass-through"), "7": save(["4", 0], "faces/none")}
    t0 = time.monotonic()
    entry = comfy_server.run(prompt, timeout=60)
    assert time.monotonic() - t0 < 20
    out, = read_images(comfy_server, entry, "6")
    assert out.shape == (90, 120, 3) and (out == (0x33, 0x66, 0x99)).all()
    assert read_images(comfy_server, entry, "7") == []  # no face, nothing restored or saved
    assert "4" not in entry.get("outputs", {}) and "7" not in entry.get("outputs", {})


def test_photo_without_a_face_is_a_clear_error(comfy_server):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 200, "height": 150, "batch_size": 1,
                                                          "color": 0x777777}},
              "2": crop_align(["1", 0]),
              "3": save(["2", 0], "errors/never")}
    expect_error(comfy_server, prompt, "no face found", "200x150", "pass_through", node="2")
