"""high_frequency_energy: the sharpness measure of the studies and the degradation tests."""
import torch

from lpip_core.sharpness import high_frequency_energy


def test_flat_is_zero_a_checkerboard_is_full_scale_and_a_batch_is_its_mean():
    flat = torch.full((3, 8, 8), 0.3)
    board = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).float().expand(3, 8, 8)
    stripes = (torch.arange(8)[None, :] % 2).float().expand(3, 8, 8)  # changes across, never down
    assert high_frequency_energy(flat) == 0
    assert high_frequency_energy(board) == 255
    assert high_frequency_energy(stripes) == 127.5
    assert high_frequency_energy(torch.stack([board, flat])) == 127.5


def test_blur_lowers_it(hopper):
    blurred = torch.nn.functional.avg_pool2d(hopper, 3, stride=1, padding=1, count_include_pad=False)
    assert high_frequency_energy(blurred) < 0.8 * high_frequency_energy(hopper)
