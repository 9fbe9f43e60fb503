"""Compare (nodes/compare.py) in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py): previews only, nothing saved.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def test_compare_shows_both_inputs_and_saves_nothing(comfy_server, lq_faces):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": lq_faces["a"]}},
              "2": {"class_type": "LoadImage", "inputs": {"image": lq_faces["b"]}},
              "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
              "4": {"class_type": "LPIPCompare", "inputs": {"before": ["3", 0], "after": ["2", 0]}}}
    outputs_before = sorted(comfy_server.output_dir.rglob("*"))
    out = comfy_server.run(prompt, timeout=60)["outputs"]["4"]
    assert len(out["lpip_before"]) == 2 and len(out["lpip_after"]) == 1
    for entry in out["lpip_before"] + out["lpip_after"]:
        path = comfy_server.temp_dir / entry["subfolder"] / entry["filename"]
        assert entry["type"] == "temp" and path.is_file()
    with Image.open(comfy_server.temp_dir / out["lpip_after"][0]["subfolder"] / out["lpip_after"][0]["filename"]) as im:
        with Image.open(comfy_server.input_dir / lq_faces["b"]) as src:
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(src.convert("RGB")))
    assert sorted(comfy_server.output_dir.rglob("*")) == outputs_before
