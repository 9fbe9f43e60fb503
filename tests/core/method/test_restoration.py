"""What restore does with awkward input: a correct result, or a ValueError naming the argument
and the accepted range. Each case says which."""
import pytest
import torch

from lpip_core import restore


def test_image_smaller_than_a_patch_is_padded_and_cropped_back(model):  # correct result
    out = restore(model, torch.rand(1, 3, 2, 3), steps=2)  # 8 x 12 output < 16 px patch
    assert out.shape == (1, 3, 8, 12)


def test_odd_sizes_work(model):  # correct result
    assert restore(model, torch.rand(1, 3, 7, 13), steps=2).shape == (1, 3, 28, 52)


def test_empty_batch_gives_an_empty_result(model):  # correct result
    out = restore(model, torch.rand(0, 3, 16, 16), steps=2)
    assert out.shape == (0, 3, 64, 64)


def test_greyscale_is_restored_as_rgb(model):  # correct result
    grey = torch.rand(1, 1, 8, 8)
    out = restore(model, grey, steps=2)
    assert out.shape == (1, 3, 32, 32)
    torch.testing.assert_close(out, restore(model, grey.expand(-1, 3, -1, -1), steps=2))


def test_single_image_without_batch_axis(model):  # correct result
    assert restore(model, torch.rand(3, 8, 8), steps=2).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("lq,match", [
    (torch.rand(1, 4, 8, 8), "3 \\(RGB\\) or 1 \\(grey\\) channels, got 4 \\(RGBA"),
    (torch.rand(1, 2, 8, 8), "channels, got 2"),
    (torch.full((1, 3, 8, 8), float("nan")), "NaN or infinite"),
    (torch.tensor([[[[float("inf")]]] * 3]).reshape(1, 3, 1, 1), "NaN or infinite"),
    (torch.rand(1, 3, 8, 8) * 255, "in \\[0, 1\\].*divide by 255"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "float tensor"),
    (torch.rand(8, 8), "shape \\[B, 3, H, W\\]"),
    ("image.png", "torch.Tensor"),
])
def test_bad_images_are_refused_with_the_reason(model, lq, match):
    with pytest.raises(ValueError, match=match):
        restore(model, lq, steps=2)


@pytest.mark.parametrize("kwargs,match", [
    (dict(patch_size=15), "patch_size must be a multiple of 2"),
    (dict(patch_size=0), "patch_size must be an integer in 2..8192"),
    (dict(stride=0), "stride must be an integer in 1..16"),
    (dict(stride=17), "stride must be an integer in 1..16"),
    (dict(steps=0), "steps must be an integer in 1..1000"),
    (dict(steps=1001), "steps must be an integer in 1..1000"),
    (dict(fusion="max"), "fusion must be one of mean, median, gaussian, got 'max'"),
    (dict(eta=-0.1), "eta must be a number in \\[0, 1\\]"),
    (dict(max_patch_batch=0), "max_patch_batch must be an integer in >= 1"),
    (dict(input_is="upscaled"), "input_is must be one of low_resolution, already_upscaled"),
    (dict(scale=0), "scale must be an integer in 1..16"),
    (dict(seed=-1), "seed must be an integer in 0..2\\*\\*64 - 1"),
    (dict(seed=2 ** 64), "seed must be an integer in 0..2\\*\\*64 - 1"),
    (dict(spacing="middle"), "spacing must be one of trailing, leading"),
])
def test_bad_options_name_the_argument_and_range(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        restore(model, torch.rand(1, 3, 4, 4), **{"steps": 2, **kwargs})


def test_any_patch_the_unet_takes_works(model):  # correct result: the tiny UNet downsamples by 2
    assert restore(model, torch.rand(1, 3, 4, 4), steps=1, patch_size=12, stride=5).shape == (1, 3, 16, 16)


@pytest.mark.parametrize("kwargs,match", [
    (dict(steps=10 ** 400), "steps must be an integer in 1..1000"),
    (dict(samples=10 ** 400), "samples must be an integer in 1..1000"),
    (dict(patch_size=10 ** 400), "patch_size must be an integer in 2..8192"),
    (dict(end_percent=10 ** 400), "end_percent must be a number in \\(0, 1\\]"),
    (dict(threads=10 ** 400), "threads must be an integer in 1..1024"),
])
def test_numbers_too_large_for_a_float_are_refused_naming_the_argument_and_range(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        restore(model, torch.rand(1, 3, 4, 4), **{"steps": 2, **kwargs})


def test_a_denoise_just_above_zero_starts_at_the_schedules_end(model):  # correct result
    """steps / 5e-324 is inf: the last `steps` of the whole schedule, as any denoise <= steps / 1000."""
    lq = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(restore(model, lq, steps=2, denoise=5e-324), restore(model, lq, steps=2, denoise=1e-3),
                               rtol=0, atol=0)


def test_an_empty_batch_of_a_huge_declared_size_is_refused_before_building_its_grid(model):
    with pytest.raises(ValueError, match="not enough memory: restoring 0 image\\(s\\) to 4194304x4194304 px"):
        restore(model, torch.zeros(0, 3, 2 ** 20, 2 ** 20), steps=1)
