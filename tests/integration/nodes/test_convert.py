"""The IMAGE conversion (nodes/convert.py), loaded on its own: no ComfyUI needed."""
from __future__ import annotations

import pytest
import torch

from tests.integration.helpers import load_pure

convert = load_pure("convert")


def test_image_round_trip_and_channels():
    image = torch.rand(2, 5, 7, 3)
    core = convert.image_to_core(image)
    assert core.shape == (2, 3, 5, 7) and torch.equal(core[1, 2], image[1, ..., 2])
    assert torch.equal(convert.core_to_image(core), image)
    grey = convert.image_to_core(torch.rand(1, 4, 4, 1))
    assert grey.shape == (1, 3, 4, 4) and torch.equal(grey[:, 0], grey[:, 2])
    rgba = torch.rand(1, 4, 4, 4)
    assert torch.equal(convert.image_to_core(rgba), rgba[..., :3].movedim(-1, 1))
    assert convert.image_to_core(torch.rand(4, 4, 3)).shape == (1, 3, 4, 4)
    out = convert.core_to_image(torch.full((1, 3, 2, 2), 1.5), dtype=torch.float16)
    assert out.dtype == torch.float16 and out.max() == 1


@pytest.mark.parametrize("bad, needle", [
    (torch.rand(1, 4, 4, 2), "1, 3 or 4 channels"),
    (torch.rand(4, 4), "IMAGE [batch, height, width, channels]"),
    (torch.zeros(0, 4, 4, 3), "empty"),
    (torch.zeros(1, 4, 4, 3, dtype=torch.uint8), "float"),
    ([1, 2, 3], "IMAGE tensor"),
])
def test_bad_images_name_the_input(bad, needle):
    with pytest.raises(ValueError, match="faces") as ei:
        convert.image_to_core(bad, "faces")
    assert needle in str(ei.value)
