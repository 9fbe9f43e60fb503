import random

import pytest
import torch

from lpip_core import DegradeParams, degrade, psnr, random_params
from lpip_core.data.degrade import BLUR_SIGMA_RANGE, RESAMPLE_KERNELS, blur_kernel, degrade_one
from lpip_core.resize import resize
from lpip_core.sharpness import high_frequency_energy


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
    p128 = random_params(random.Random(1), 128, variant="gfpgan512")
    p64 = random_params(random.Random(1), 64, variant="gfpgan512")
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
    draws = [random_params(rng, 128, variant="gfpgan512") for _ in range(300)]
    low, high = (s * 128 / 512 for s in BLUR_SIGMA_RANGE)
    assert all(low <= p.blur_sigma <= high for p in draws)
    assert all(0.8 * 0.25 <= p.downscale <= 8 * 0.25 for p in draws)  # to GFPGAN's 512 / r px
    assert all(0 <= p.noise_sigma <= 20 and 60 <= p.jpeg_quality <= 100 for p in draws)
    assert 0.3 < sum(p.blur_sigma_y is not None for p in draws) / len(draws) < 0.7  # iso and aniso


@pytest.mark.parametrize("kwargs,match", [
    (dict(blur_sigma=-1), r"blur_sigma must be a number in \[0, 50\], got -1"),
    (dict(downscale=0.001), r"downscale must be a number in \[0.01, 64\]"),
    (dict(noise_sigma=300), r"noise_sigma must be a number in \[0, 255\]"),
    (dict(jpeg_quality=0), "jpeg_quality must be an integer in 1..100"),
    (dict(jpeg_quality=80.5), "jpeg_quality must be an integer in 1..100"),
    (dict(blur_sigma=float("nan")), "blur_sigma"),
    (dict(blur_sigma=True), "blur_sigma"),
    (dict(blur_angle=float("inf")), "blur_angle"),
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
    for lq_size in ((0, 16), (16,), (16, 9000), (16.0, 16)):
        with pytest.raises(ValueError, match="lq_size must be a list of 2 integers|lq_size item must be"):
            degrade(hopper, None, lq_size=lq_size)


def test_an_enlargement_past_max_side_is_refused_before_any_work(hopper):
    """DegradeParams allows enlarging (downscale below 1); degrade refuses an image larger than MAX_SIDE."""
    assert degrade(torch.rand(1, 3, 8, 8), DegradeParams(downscale=0.01))[0].shape == (1, 3, 800, 800)
    with pytest.raises(ValueError, match=r"downscale 0.01 would make the 128x128 px image larger than 8192 px"):
        degrade(hopper, DegradeParams(downscale=0.01))


def test_tiny_images_and_empty_batches(hopper):
    lq, up = degrade(torch.rand(1, 3, 5, 5), DegradeParams(blur_sigma=3, downscale=2, jpeg_quality=50))
    assert lq.shape == (1, 3, 2, 2) and up.shape == (1, 3, 5, 5)
    lq, up = degrade(torch.rand(0, 3, 64, 64), DegradeParams(downscale=4))
    assert lq.shape == (0, 3, 16, 16) and up.shape == (0, 3, 64, 64)


# --- the training mixture: the paper's order at the LQ size ---

def test_noise_acts_at_the_lq_size(hopper):
    """y = [(x * k) down_r + n]_JPEG: the noise is added after the downsample, so its full strength
    is in the LQ pixels (measured against the same degradation without noise)."""
    hq = resize(hopper, (64, 64))
    params = dict(blur_sigma=2.0, downscale=4, resample="bilinear-aa")
    noisy, _ = degrade(hq, DegradeParams(noise_sigma=12, **params), seed=1)
    clean, _ = degrade(hq, DegradeParams(noise_sigma=0, **params), seed=1)
    assert noisy.shape == (1, 3, 16, 16)
    residual = (noisy - clean) * 255
    assert 10.5 < residual.std().item() < 13.5  # sigma 12 (a little lost to clipping), not averaged away
    grey, _ = degrade(hq, DegradeParams(noise_sigma=12, grey_noise=True, **params), seed=1)
    g = grey - clean
    assert torch.allclose(g[:, 0], g[:, 1], atol=2 / 255) and torch.allclose(g[:, 1], g[:, 2], atol=2 / 255)


def test_gfpgan512_noise_mostly_averages_away_at_the_lq_size(hopper):
    """The first models' degradation: noise on the larger intermediate image, shrunk afterwards."""
    hq = resize(hopper, (64, 64))
    params = dict(downscale=0.5, resample="bilinear")  # a 128 px intermediate, as r = 4 at 512 px
    noisy, _ = degrade(hq, DegradeParams(noise_sigma=12, **params), seed=1, lq_size=(16, 16))
    clean, _ = degrade(hq, DegradeParams(noise_sigma=0, **params), seed=1, lq_size=(16, 16))
    assert ((noisy - clean) * 255).std().item() < 3


@pytest.mark.parametrize("kernel", RESAMPLE_KERNELS)
def test_each_resampling_kernel_lands_at_the_lq_size(hopper, kernel):
    lq, _ = degrade(resize(hopper, (64, 64)), DegradeParams(downscale=4, resample=kernel))
    assert lq.shape == (1, 3, 16, 16) and 0 <= lq.min() and lq.max() <= 1


def test_kernels_differ_and_antialiasing_smooths(hopper):
    hq = resize(hopper, (64, 64))
    out = {k: degrade(hq, DegradeParams(downscale=4, resample=k))[0] for k in RESAMPLE_KERNELS}
    assert len({tuple(v.flatten().tolist()) for v in out.values()}) == len(RESAMPLE_KERNELS)
    assert high_frequency_energy(out["bicubic-aa"]) < high_frequency_energy(out["bicubic"])
    assert high_frequency_energy(out["bilinear-aa"]) < high_frequency_energy(out["bilinear"])


def test_the_mixture_draws_each_variant_in_its_share():
    rng = random.Random(0)
    draws = [random_params(rng, 64, 16) for _ in range(2000)]
    gfpgan = [p for p in draws if p.resample == "bilinear" and p.downscale != 4]
    at_lq = [p for p in draws if p.downscale == 4]
    clean = [p for p in at_lq if p.noise_sigma == 0 and p.jpeg_quality is None and p.blur_sigma == 0]
    assert 0.22 < len(gfpgan) / 2000 < 0.28 and len(at_lq) + len(gfpgan) == 2000
    assert 0.25 < len(clean) / 2000 < 0.31  # the clean variant, plus lq-scale draws with nothing added
    lq_scale = [p for p in at_lq if p not in clean]
    assert {p.resample for p in lq_scale} == set(RESAMPLE_KERNELS)
    assert all(1 <= p.noise_sigma <= 15 for p in lq_scale if p.noise_sigma)
    assert all(35 <= p.jpeg_quality <= 95 for p in lq_scale if p.jpeg_quality)
    assert all(p.blur_sigma <= 0.9 * 4 for p in lq_scale)  # sigma <= 0.9 LQ px, on the 64 px face


def test_variants_can_be_drawn_alone_and_unknown_ones_are_refused():
    p = random_params(random.Random(3), 128, 16, variant="clean")
    assert p.downscale == 8 and p.noise_sigma == 0 and p.jpeg_quality is None
    with pytest.raises(ValueError, match="variant must be one of"):
        random_params(random.Random(3), 128, 16, variant="blurry")
    with pytest.raises(ValueError, match="resample must be one of area, bilinear"):
        DegradeParams(resample="lanczos")


def test_photo_lq_is_aligned_to_the_hq_face_whatever_the_pose(hopper):
    # A posed draw poses the face (roll, span, shift), degrades it at its size in the photo, then
    # aligns it again at the LQ size: the LQ must sit on the HQ face (scored on its centre: the corners
    # of a rolled face are filled by reflection), 8 dB closer than the posed face left unaligned.
    import math

    from lpip_core.faces.warp import warp_affine

    def centre_psnr(a, b):
        return float(psnr(a[..., 3:13, 3:13], b[..., 3:13, 3:13])[0])

    target = resize(hopper, (16, 16))
    unposed = DegradeParams(downscale=8, resample="bicubic-aa", photo_pose=(0.0, 1.0, 0.0, 0.0))
    assert torch.allclose(degrade_one(hopper[0], unposed, lq_size=(16, 16)), target[0], atol=1e-5)  # a clean shrink
    cases = [((0.14, 1.15, 0.5, -0.5), False, 8), ((-0.14, 0.85, -0.5, 0.5), True, 8),
             ((0.1, 1.1, 0.3, 0.3), True, 2)]  # 2: gfpgan512's larger intermediate, resized to the face's size
    for (roll, span, dx, dy), upscaled, downscale in cases:
        params = DegradeParams(downscale=downscale, resample="bicubic-aa", photo_pose=(roll, span, dx, dy),
                               photo_upscaled=upscaled)
        lq = degrade_one(hopper[0], params, lq_size=(16, 16))
        c, s, m = math.cos(roll), math.sin(roll), 63.5
        posed = warp_affine(hopper, [[c, -s, m - c * m + s * m + dx * 8], [s, c, m - s * m - c * m + dy * 8]], (128, 128))
        assert lq.shape == (3, 16, 16)
        assert centre_psnr(lq[None], target) > 25
        assert centre_psnr(resize(posed, (16, 16)), target) < centre_psnr(lq[None], target) - 8


def test_photo_share_poses_that_share_of_any_variant():
    draws = [random_params(random.Random(k), 64, 16, variant="gfpgan512", photo_share=0.5) for k in range(400)]
    posed = [p for p in draws if p.photo_pose is not None]
    assert 0.4 < len(posed) / 400 < 0.6 and all(p.blur_sigma > 0 for p in posed)  # the variant's draw, posed
    rolls, spans = [p.photo_pose[0] for p in posed], [p.photo_pose[1] for p in posed]
    assert -0.15 < min(rolls) < -0.1 and 0.1 < max(rolls) < 0.15 and 0.85 <= min(spans) and max(spans) <= 1.15
    assert 0.3 < sum(p.photo_upscaled for p in posed) / len(posed) < 0.7
    unposed = [p for p in draws if p.photo_pose is None]
    assert unposed[0] == random_params(random.Random(draws.index(unposed[0])), 64, 16, variant="gfpgan512")
    # photo_share=0 (the default) draws nothing more: the training streams of earlier models are unchanged
    assert all(random_params(random.Random(k), 64, 16, photo_share=0.0) == random_params(random.Random(k), 64, 16)
               and random_params(random.Random(k), 64, 16).photo_pose is None for k in range(50))
    lq = degrade_one(torch.rand(3, 64, 64), posed[0], lq_size=(16, 16), generator=torch.Generator().manual_seed(0))
    assert lq.shape == (3, 16, 16) and 0 <= lq.min() and lq.max() <= 1
    with pytest.raises(ValueError, match="photo_pose span"):
        DegradeParams(photo_pose=(0.0, 9.0, 0.0, 0.0))
