"""The nodes' one adapter of lpip_core's errors (nodes/inputs.py): a bad value names the node's
input and its range (run in ComfyUI's own python, see conftest.py)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("call, needles", [
    ("crop_image", ["image values must be in [0, 1]"]),
    ("crop_face_size", ["face_size must be an integer in 16..2048, got 8"]),
    ("crop_select", ["select must be one of largest, all, index, got 'biggest'"]),
    ("crop_index", ["index must be an integer in >= 0", "got -1"]),
    ("crop_padding", ["padding must be a number in [0.0, 4.0]", "got 9.0"]),
    ("crop_upsample", ["upsample must be an integer in 0..3", "got 9"]),
    ("crop_if_no_face", ["if_no_face must be one of error, pass_through, got 'skip'"]),
    ("crop_min_score", ["min_score must be a number in (-inf, inf)", "got nan"]),
    ("crop_max_face_px", ["max_face_px must be a number in [0, inf)", "-1 = no limit", "got -3"]),
    ("crop_upscaled_by", ["upscaled_by must be a number in [0.1, 64.0]", "got 0.0"]),
    ("paste_feather", ["feather must be a number in [0.0, 0.5]", "got 0.9"]),
    ("paste_color_match", ["color_match must be one of none, mean_std, got 'hist'"]),
    ("paste_strength", ["strength must be a number in [0, 1]", "got 2.0"]),
    ("identity_reference", ["reference crops must be at least 16 px"]),
    ("identity_restored", ["restored crops must be at least 16 px"]),
    ("identity_landmarks", ["landmarks must be one of from_reference, each_image, got 'nose'"]),
    ("degrade_mode", ["mode must be one of random, manual, got 'both'"]),
    ("degrade_downscale", ["downscale must be", "0.01", "64", "got 0.001"]),  # DegradeParams' range
    ("degrade_random_noise", ["noise_sigma must be", "255", "got 300.0"]),  # checked in random mode too
    ("degrade_resample", ["resample must be one of", "bicubic-aa", "'nearest'"]),
    ("degrade_seed", ["seed must be an integer in 0..2**64 - 1"]),
    ("load_dtype", ["dtype must be one of auto, fp32, fp16, bf16, got 'fp8'"]),
    ("load_device", ["device must be one of auto, cpu, got 'gpu'"]),
    ("load_compile", ["compile must be true or false, got 'yes'"]),
])
def test_bad_inputs_name_the_node_input_and_its_range(in_comfy, call, needles):
    """The core checks every value; a node names its own input, also where the core's argument has
    another name (image for images, reference and restored for b and a, face_size for crop_size)."""
    message = in_comfy["bad_node_inputs"][call]
    assert message.startswith(needles[0].split()[0] + " "), message
    for needle in needles:
        assert needle in message, message
