import random

import pytest
import torch

from lpip_core import DegradeParams, degrade, psnr, random_params
from lpip_core.training.degrade import BLUR_SIGMA_RANGE, blur_kernel


def high_frequency_energy(x):
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def test_random_degradation_is_deterministic_per_seed(hopper):
    a, a_up = degrade(hopper, seed=5, lq_size=(32, 32))
    b, _ = degrade(hopper, seed=5, lq_size=(32, 32))
    c, _ = degrade(hopper, seed=6, lq_size=(32, 32))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (1, 3, 32, 32) and a_up.shape == hopper.shape


def test_batch_image_b_uses_seed_plus_b(hopper, fixtures):
    from lpip_core.files import read_image

    batch = torch.cat([hopper, read_image(fixtures / "astronaut_aligned_128.png")])
    lq, _ = degrade(batch, seed=3, lq_size=(16, 16))
    alone, _ = degrade(batch[1:], seed=4, lq_size=(16, 16))
    assert torch.equal(lq[1:], alone)


def test_manual_parameters_give_the_lq_size_from_downscale(hopper):
    lq, up = degrade(hopper, DegradeParams(blur_sigma=1.0, downscale=4, noise_sigma=5, jpeg_quality=80))
    assert lq.shape == (1, 3, 32, 32) and up.shape == (1, 3, 128, 128)
    assert 0 <= lq.min() and lq.max() <= 1


def test_the_intermediate_image_has_the_size_it_has_in_the_512_px_pipeline(hopper):
    # r = 4 at 512 px means a 128 px intermediate face, whatever the HQ size: for a 128 px face,
    # downscale 1 (noise and JPEG at 128 px); for a 64 px face, 0.5 (enlarged to 128 px first).
    p128 = random_params(random.Random(1), 128)
    p64 = random_params(random.Random(1), 64)
    assert p64.downscale == pytest.approx(p128.downscale / 2)
    big, _ = degrade(hopper, DegradeParams(downscale=0.5))
    assert big.shape == (1, 3, 256, 256)


def test_identity_parameters_change_nothing(hopper):
    lq, up = degrade(hopper, DegradeParams(downscale=1))
    assert torch.equal(lq, hopper) and torch.equal(up, hopper)


@pytest.mark.parametrize("field,values", [
    ("blur_sigma", [0.0, 1.0, 2.0, 4.0]),
    ("downscale", [1.0, 2.0, 4.0, 8.0]),
    ("noise_sigma", [0.0, 5.0, 15.0, 40.0]),
    ("jpeg_quality", [95, 70, 40, 10]),
])
def test_each_parameter_degrades_monotonically(hopper, field, values):
    scores = []
    for v in values:
        base = dict(blur_sigma=0.0, downscale=1.0, noise_sigma=0.0, jpeg_quality=None)
        _, up = degrade(hopper, DegradeParams(**{**base, field: v}), seed=0)
        scores.append(psnr(up, hopper).item())
    assert scores == sorted(scores, reverse=True), (field, scores)
    assert scores[0] - scores[-1] > 3  # a clear effect, in dB


def test_blur_removes_high_frequencies_and_noise_adds_them(hopper):
    base = dict(downscale=1.0)
    sharp = high_frequency_energy(hopper)
    blurred = high_frequency_energy(degrade(hopper, DegradeParams(blur_sigma=2, **base))[0])
    noisy = high_frequency_energy(degrade(hopper, DegradeParams(noise_sigma=20, **base))[0])
    assert blurred < 0.6 * sharp < noisy


def test_blur_kernel_is_normalised_and_anisotropic_when_asked():
    k = blur_kernel(2.0)
    assert abs(k.sum().item() - 1) < 1e-6 and torch.allclose(k, k.T)
    aniso = blur_kernel(3.0, 0.5, angle=0.0)
    r = aniso.shape[0] // 2
    pos = torch.arange(-r, r + 1, dtype=torch.float32) ** 2
    var_x, var_y = (aniso.sum(dim=0) * pos).sum(), (aniso.sum(dim=1) * pos).sum()
    assert 8.5 < var_x < 9.0 and var_y < 0.3  # sigma 3 along x (cut at 3 sigma), 0.5 along y
    rotated = blur_kernel(3.0, 0.5, angle=torch.pi / 2)
    torch.testing.assert_close(rotated, aniso.T, rtol=0, atol=1e-6)


def test_random_params_follow_gfpgan_ranges_scaled_to_the_face_size():
    rng = random.Random(0)
    draws = [random_params(rng, 128) for _ in range(300)]
    low, high = (s * 128 / 512 for s in BLUR_SIGMA_RANGE)
    assert all(low <= p.blur_sigma <= high for p in draws)
    assert all(0.8 * 0.25 <= p.downscale <= 8 * 0.25 for p in draws)  # to GFPGAN's 512 / r px
    assert all(0 <= p.noise_sigma <= 20 and 60 <= p.jpeg_quality <= 100 for p in draws)
    assert 0.3 < sum(p.blur_sigma_y is not None for p in draws) / len(draws) < 0.7  # iso and aniso


@pytest.mark.parametrize("kwargs,match", [
    (dict(blur_sigma=-1), "blur_sigma must be in 0.0..50.0"),
    (dict(downscale=0.001), "downscale must be in 0.01..64.0"),
    (dict(noise_sigma=300), "noise_sigma must be in 0.0..255.0"),
    (dict(jpeg_quality=0), "jpeg_quality must be in 1..100"),
    (dict(blur_sigma=float("nan")), "blur_sigma"),
])
def test_out_of_range_parameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DegradeParams(**kwargs)


def test_random_mode_needs_an_lq_size_and_bad_images_are_refused(hopper):
    with pytest.raises(ValueError, match="lq_size is required"):
        degrade(hopper)
    with pytest.raises(ValueError, match="channels"):
        degrade(torch.rand(1, 4, 16, 16), DegradeParams())
    with pytest.raises(ValueError, match="one DegradeParams or 1"):
        degrade(hopper, [DegradeParams(), DegradeParams()])


def test_tiny_images_and_empty_batches(hopper):
    lq, up = degrade(torch.rand(1, 3, 5, 5), DegradeParams(blur_sigma=3, downscale=2, jpeg_quality=50))
    assert lq.shape == (1, 3, 2, 2) and up.shape == (1, 3, 5, 5)
    lq, up = degrade(torch.rand(0, 3, 64, 64), DegradeParams(downscale=4))
    assert lq.shape == (0, 3, 16, 16) and up.shape == (0, 3, 64, 64)
