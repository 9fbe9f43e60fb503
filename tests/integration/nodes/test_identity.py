"""Face Identity Score (nodes/identity.py) in a real ComfyUI server, 0.3.75 and 0.28.2
(the fixtures: tests/integration/conftest.py).
"""
from __future__ import annotations

import pytest


def test_identity_score_tells_same_from_different_people(comfy_server, fixtures_uploaded):
    """hopper against a 64 px copy of itself: the same person by dlib's threshold; against Obama:
    a different person. One reference for a batch is broadcast."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": fixtures_uploaded["hopper"]}},
              "2": {"class_type": "LoadImage", "inputs": {"image": fixtures_uploaded["hopper_64"]}},
              "3": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "bicubic",
                    "width": 128, "height": 128, "crop": "disabled"}},
              "4": {"class_type": "LoadImage", "inputs": {"image": fixtures_uploaded["obama"]}},
              "5": {"class_type": "ImageBatch", "inputs": {"image1": ["3", 0], "image2": ["4", 0]}},
              "6": {"class_type": "LPIPFaceIdentityScore", "inputs": {"reference": ["1", 0], "restored": ["5", 0],
                                                                     "landmarks": "from_reference"}}}
    result, = comfy_server.run(prompt, timeout=120)["outputs"]["6"]["lpip_identity"]
    same, other = result["faces"]
    assert same["verdict"] == "same person" and same["distance"] < 0.6 and same["id_sim"] > 0.95
    assert other["verdict"] == "different person" and other["distance"] >= 0.6 and other["id_sim"] < same["id_sim"]
    assert result["threshold"] == 0.6
    assert result["mean_id_sim"] == pytest.approx((same["id_sim"] + other["id_sim"]) / 2, abs=2e-4)
