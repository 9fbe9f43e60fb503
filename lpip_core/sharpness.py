"""How much fine detail an image holds: the one measure the studies and the tests compare sharpness by."""
from __future__ import annotations

import torch


def high_frequency_energy(x: torch.Tensor) -> float:
    """The mean absolute difference of neighbouring pixels of [..., H, W] images in [0, 1], down and
    across averaged, in 0..255 units: rises with detail and noise, falls with blur. Any batch shape
    (one CHW crop or a BCHW batch: the mean over all of it)."""
    down = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    across = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return float((down + across) / 2 * 255)
