import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lpip_core import degrade, psnr, ssim
from lpip_core.data.degrade import DegradeParams
from lpip_core.evaluation.metrics import rgb_to_y


def to_255(x):
    return (x[0].permute(1, 2, 0).double() * 255).numpy()


def skimage_ssim(a, b):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=2)


def pairs(hopper):
    torch.manual_seed(0)
    yield torch.rand(1, 3, 48, 40), torch.rand(1, 3, 48, 40)  # random
    noisy = (hopper + 0.05 * torch.randn_like(hopper)).clamp(0, 1)
    yield hopper, noisy  # real face, noisy
    yield hopper, degrade(hopper, DegradeParams(blur_sigma=1.5, downscale=4, jpeg_quality=60))[1]  # real, degraded


def test_psnr_and_ssim_match_scikit_image_on_random_and_real_images(hopper):
    for a, b in pairs(hopper):
        assert psnr(a, b).item() == pytest.approx(peak_signal_noise_ratio(to_255(a), to_255(b), data_range=255),
                                                  abs=1e-6)
        assert ssim(a, b).item() == pytest.approx(skimage_ssim(to_255(a), to_255(b)), abs=1e-6)


def test_y_channel_matches_scikit_image_on_bt601_luma(hopper):
    for a, b in pairs(hopper):
        ya, yb = rgb_to_y(a.double() * 255)[0, 0].numpy(), rgb_to_y(b.double() * 255)[0, 0].numpy()
        assert ssim(a, b, y_channel=True).item() == pytest.approx(
            structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=255), abs=1e-6)
        assert psnr(a, b, y_channel=True).item() == pytest.approx(
            peak_signal_noise_ratio(ya, yb, data_range=255), abs=1e-6)


def test_bt601_luma_of_white_and_black():
    assert rgb_to_y(torch.full((1, 3, 1, 1), 255.0, dtype=torch.float64)).item() == pytest.approx(235.0, abs=1e-3)
    assert rgb_to_y(torch.zeros(1, 3, 1, 1, dtype=torch.float64)).item() == 16.0


def test_identical_images_and_batches(hopper):
    assert torch.isinf(psnr(hopper, hopper)).all()
    assert ssim(hopper, hopper).item() == pytest.approx(1.0)
    batch_a, batch_b = torch.rand(3, 3, 20, 20), torch.rand(3, 3, 20, 20)
    per_image = torch.stack([ssim(batch_a[i:i + 1], batch_b[i:i + 1])[0] for i in range(3)])
    torch.testing.assert_close(ssim(batch_a, batch_b), per_image)
    assert psnr(batch_a, batch_b).shape == (3,)


def test_crop_border_ignores_the_edge():
    a = torch.rand(1, 3, 30, 30)
    b = a.clone()
    b[..., :4, :] = 0
    assert torch.isinf(psnr(a, b, crop_border=4)).all()
    assert np.isfinite(psnr(a, b).item())


def test_mismatched_or_too_small_images_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_psnr_inside_a_mask_scores_only_its_pixels(hopper):
    noisy = (hopper + 0.05 * torch.randn_like(hopper)).clamp(0, 1)
    h, w = hopper.shape[-2:]
    right = torch.zeros(1, 1, h, w)
    right[..., w // 2:] = 1
    assert psnr(hopper, noisy, mask=right).item() == pytest.approx(
        psnr(hopper[..., w // 2:], noisy[..., w // 2:]).item(), abs=1e-9)
    assert psnr(hopper, noisy, mask=torch.ones(1, 1, h, w)).item() == pytest.approx(psnr(hopper, noisy).item(), abs=1e-9)
    spoiled = noisy.clone()
    spoiled[..., :w // 2] = 0  # damage outside the mask does not count
    assert psnr(hopper, spoiled, mask=right).item() == pytest.approx(psnr(hopper, noisy, mask=right).item(), abs=1e-9)
    assert torch.isnan(psnr(hopper, noisy, mask=torch.zeros(1, 1, h, w))).all()
    with pytest.raises(ValueError, match=r"mask must be \[B, 1, H, W\]"):
        psnr(hopper, noisy, mask=torch.ones(1, 3, h, w))
