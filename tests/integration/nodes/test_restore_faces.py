"""Restore Faces, the one-node photo pipeline (nodes/restore_faces.py) in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py).
"""
from __future__ import annotations

import numpy as np

from tests.integration.helpers import crop_align, load_model, read_images, save


def test_restore_faces_in_one_node(comfy_server, tiny_checkpoint, face_photos):
    """Crop -> restore -> paste back: same size out, one restored crop per face, and a mask that is
    0 where the photo is unchanged."""
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": face_photos["two"]}},
              "3": {"class_type": "LPIPRestoreFaces", "inputs": {
                  "model": ["1", 0], "image": ["2", 0], "seed": 0, "steps": 2, "denoise": 1.0,
                  "input_is": "low_resolution", "select": "all", "upsample": 0, "feather": 0.1, "color_match": "none",
                  "strength": 1.0, "max_face_px": -1}},
              "4": save(["3", 0], "restore_faces/photo"), "5": save(["3", 1], "restore_faces/faces"),
              "6": {"class_type": "MaskToImage", "inputs": {"mask": ["3", 2]}},
              "7": save(["6", 0], "restore_faces/mask"),
              "8": save(["2", 0], "restore_faces/original")}
    entry = comfy_server.run(prompt, timeout=240)
    photo, = read_images(comfy_server, entry, "4")
    faces = read_images(comfy_server, entry, "5")
    mask, = read_images(comfy_server, entry, "7")
    original, = read_images(comfy_server, entry, "8")
    assert photo.shape == original.shape == (320, 640, 3)
    assert len(faces) == 2 and {f.shape for f in faces} == {(64, 64, 3)}
    # a mask weight below 0.5/255 saves as 0 and moves a pixel by at most 1 (rounding)
    changed = np.abs(photo.astype(int) - original.astype(int)).max(axis=-1) > 1
    covered = mask[..., 0] > 0
    assert not (changed & ~covered).any()  # outside the mask: unchanged
    assert changed[covered].mean() > 0.5 and 0.05 < covered.mean() < 0.9
    assert covered[:, :320].any() and covered[:, 320:].any()  # both faces


def test_restore_faces_leaves_big_faces_alone(comfy_server, tiny_checkpoint, tmp_path):
    """The size limit at its default, as the demo runs: a photo with a big face (left) and a tiny one
    (right), Lanczos x4, Restore Faces with upscaled_by 4: only the tiny face is restored, the big
    one keeps every pixel and is 0 in the mask, and the node's text names it. Face Crop & Align
    with the same inputs cuts only the tiny face."""
    from tests.helpers import mixed_photo  # the same photo as the core's test (tests/core/test_photo.py)

    mixed_photo().save(tmp_path / "mixed_sizes.png")
    name = comfy_server.upload_image(tmp_path / "mixed_sizes.png")
    prompt = {"1": load_model(tiny_checkpoint),
              "2": {"class_type": "LoadImage", "inputs": {"image": name}},
              "3": {"class_type": "ImageScaleBy", "inputs": {"image": ["2", 0], "upscale_method": "lanczos",
                                                             "scale_by": 4.0}},
              "4": {"class_type": "LPIPRestoreFaces", "inputs": {
                  "model": ["1", 0], "image": ["3", 0], "seed": 0, "steps": 2, "denoise": 1.0,
                  "input_is": "low_resolution", "select": "all", "upsample": 1, "feather": 0.1, "color_match": "none",
                  "strength": 1.0, "upscaled_by": 4.0}},
              "5": save(["4", 0], "limit/photo"), "6": save(["3", 0], "limit/original"),
              "7": {"class_type": "MaskToImage", "inputs": {"mask": ["4", 2]}}, "8": save(["7", 0], "limit/mask"),
              "9": crop_align(["3", 0], face_size=["1", 1], select="all", upsample=1, max_face_px=0, upscaled_by=4.0),
              "10": save(["9", 0], "limit/crops")}
    entry = comfy_server.run(prompt, timeout=240)
    photo, = read_images(comfy_server, entry, "5")
    original, = read_images(comfy_server, entry, "6")
    mask, = read_images(comfy_server, entry, "8")
    assert len(read_images(comfy_server, entry, "10")) == 1
    changed = np.abs(photo.astype(int) - original.astype(int)).max(axis=-1) > 1
    assert not changed[:, :400].any() and changed[:, 400:].any()
    assert mask[:, :400].max() == 0 and mask[:, 400:].max() == 255
    text = " ".join(entry["outputs"]["4"]["text"])
    assert "restored 1" in text and "left alone 1 bigger than 18 px" in text
