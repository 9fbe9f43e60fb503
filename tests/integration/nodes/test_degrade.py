"""Degrade Face (nodes/degrade.py) in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from tests.integration.helpers import read_images, save
from tools.comfyui import REPO_ROOT


def test_degrade_face_sizes_and_modes(comfy_server, face_photos):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": face_photos["aligned"]}},
              "2": {"class_type": "LPIPDegradeFace", "inputs": {
                  "image": ["1", 0], "mode": "manual", "seed": 3, "blur_sigma": 1.5, "downscale": 4.0,
                  "noise_sigma": 5.0, "jpeg_quality": 70}},
              "3": save(["2", 0], "degrade/lq"), "4": save(["2", 1], "degrade/lq_up"),
              "5": {"class_type": "LPIPDegradeFace", "inputs": {
                  "image": ["1", 0], "mode": "random", "seed": 3, "blur_sigma": 0.0, "downscale": 8.0,
                  "noise_sigma": 0.0, "jpeg_quality": 0}},
              "6": save(["5", 0], "degrade/random")}
    entry = comfy_server.run(prompt, timeout=60)
    lq, up, rnd = (read_images(comfy_server, entry, n)[0] for n in ("3", "4", "6"))
    assert lq.shape == (32, 32, 3) and up.shape == (128, 128, 3) and rnd.shape == (16, 16, 3)
    clean = np.asarray(Image.open(REPO_ROOT / "tests/fixtures/hopper_aligned_128.png").convert("RGB")).astype(int)
    err = np.abs(up.astype(int) - clean).mean()
    assert 2 < err < 40  # degraded, but still the same face
