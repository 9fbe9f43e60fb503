from dataclasses import replace

import pytest
import torch
from torch import nn

import lpip_core
from lpip_core import LPIPModel, SamplingCancelled, restore
from lpip_core.method import memory
from lpip_core.method.memory import memory_estimate
from lpip_core.method.patches import patch_grid
from lpip_core.method.plan import plan_sampling
from lpip_core.method.sampler import FusedEps, sample_ddim
from lpip_core.method.schedule import NoiseSchedule, denoised_timesteps, sampling_timesteps
from lpip_core.resize import resize
from tests.helpers import tiny_model


class Pointwise(nn.Module):
    """An eps model made of 1x1 convolutions only: each pixel's estimate ignores its neighbours,
    so any patch grid must give the whole-image result."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Conv2d(7, 16, 1), nn.SiLU(), nn.Conv2d(16, 3, 1))

    def forward(self, x_t, lq_up, t):
        t_map = (t / 1000).reshape(-1, 1, 1, 1).expand(-1, 1, *x_t.shape[-2:])
        return self.net(torch.cat([x_t, lq_up, t_map], dim=1))


@pytest.mark.parametrize("fusion", ["mean", "median", "gaussian"])
@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_fused_sampler_equals_whole_image_sampler_for_a_pointwise_model(fusion, eta):
    lq = torch.rand(2, 3, 9, 11)  # odd sizes: the border-aligned last patch matters
    kwargs = dict(scale=4, steps=8, eta=eta, seed=3)
    whole = restore(Pointwise(), lq, whole_image=True, **kwargs)
    fused = restore(Pointwise(), lq, patch_size=16, stride=8, fusion=fusion, **kwargs)
    torch.testing.assert_close(fused, whole, rtol=0, atol=1e-5)


def test_patch_batch_chunking_does_not_change_the_fused_estimate(model):
    grid = patch_grid(40, 40, (16, 16), (8, 8))
    lq_up, x_t = torch.rand(2, 3, 40, 40) * 2 - 1, torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        one = FusedEps(model, lq_up, grid, max_batch=1)(x_t, 500)
        everything = FusedEps(model, lq_up, grid, max_batch=10_000)(x_t, 500)
    torch.testing.assert_close(one, everything, rtol=0, atol=1e-5)


def test_patch_batch_chunking_does_not_change_the_restored_image():
    # float64 weights: float32 convolutions round differently per batch size, and an untrained
    # network amplifies that over the steps; in float64 the chunked result must match exactly.
    model = tiny_model().double()
    lq = torch.rand(2, 3, 16, 16)
    one = restore(model, lq, steps=6, max_patch_batch=1)
    torch.testing.assert_close(one, restore(model, lq, steps=6, max_patch_batch=7), rtol=0, atol=1e-5)
    torch.testing.assert_close(one, restore(model, lq, steps=6, max_patch_batch=10_000), rtol=0, atol=1e-5)


def test_same_seed_same_output_and_other_seed_other_output(model):
    lq = torch.rand(1, 3, 16, 16)
    a, b = restore(model, lq, steps=4, seed=7), restore(model, lq, steps=4, seed=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, restore(model, lq, steps=4, seed=8))
    assert torch.equal(restore(model, lq, steps=4, eta=1.0, seed=7), restore(model, lq, steps=4, eta=1.0, seed=7))


class PerPatch(nn.Module):
    """The tiny UNet run on one patch at a time: its estimate for a patch cannot depend on which
    other patches share the call, so only the sampler around it can make a batch differ."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, x, lq, t):
        return torch.cat([self.model(x[i:i + 1], lq[i:i + 1], t[i:i + 1]) for i in range(x.shape[0])])


@pytest.mark.parametrize("chunk", [1, 10, 49, 200])
def test_one_pass_is_bit_identical_to_one_by_one_around_a_batch_invariant_unet(model, chunk):
    """Noise (a generator per image), patch cutting, chunks that mix images, fusion and the DDIM
    update are exact: with a UNet whose per-patch result does not depend on its call, a batch is
    bit for bit its images restored one by one with seed + i, whatever the chunking."""
    lq, net = torch.rand(3, 3, 16, 16), PerPatch(model)
    batch = restore(net, lq, steps=3, seed=10, max_patch_batch=chunk, eta=0.5)
    for i in range(3):
        assert torch.equal(batch[i:i + 1], restore(net, lq[i:i + 1], steps=3, seed=10 + i, eta=0.5))


def test_a_batch_equals_its_images_restored_one_by_one_to_float_rounding(model):
    """With the batched UNet a patch's estimate may round differently with its call's size (on this
    CPU a call of one patch differs from a call of 16 by ~1e-6): agreement to float rounding."""
    lq = torch.rand(3, 3, 16, 16)
    for chunk in (None, 10):  # chunks of 64 or 10 patches, most of them holding two images
        batch = restore(model, lq, steps=3, seed=10, max_patch_batch=chunk)
        for i in range(3):
            one = restore(model, lq[i:i + 1], steps=3, seed=10 + i, max_patch_batch=chunk)
            torch.testing.assert_close(batch[i:i + 1], one, rtol=0, atol=1e-5)


def test_one_pass_shares_the_unet_calls_of_all_images(model):
    """Three images of 49 patches at 64 patches per call: 3 calls a step, not 3 x 1."""
    calls = []

    def counting(x, lq, t):
        calls.append(x.shape[0])
        return model(x, lq, t)

    restore(counting, torch.rand(3, 3, 16, 16), scale=4, patch_size=16, steps=2, max_patch_batch=64)
    assert calls == [64, 64, 19] * 2


def test_short_memory_splits_the_batch_into_passes_with_the_same_result(model, monkeypatch):
    """When the images' canvases do not all fit, the guard keeps the patch chunk and restores the
    batch in passes of fewer images; progress then counts steps x passes."""
    lq, net = torch.rand(5, 3, 16, 16), PerPatch(model)
    reference = restore(net, lq, steps=2, seed=4, max_patch_batch=16)
    shared, per_patch = memory_estimate(model.config, 0, (64, 64), (16, 16), (8, 8), "mean", torch.float32)
    per_image = memory_estimate(model.config, 1, (64, 64), (16, 16), (8, 8), "mean", torch.float32)[0] - shared
    room = (shared + 2.5 * per_image + 16 * per_patch) / memory.MEMORY_SHARE  # two images and one chunk
    monkeypatch.setattr(memory, "available_memory", lambda device: int(room))
    plan = plan_sampling(net, (16, 16), max_patch_batch=16, images=5)
    assert (plan.max_patch_batch, plan.images_per_pass) == (16, 2)
    assert [list(p) for p in plan.passes(5)] == [[0, 1], [2, 3], [4]]
    seen = []
    out = restore(net, lq, steps=2, seed=4, max_patch_batch=16, callback=lambda info: seen.append((info["i"] + 1, info["total"], len(info["denoised"]))))
    assert torch.equal(out, reference)
    assert seen == [(1, 6, 2), (2, 6, 2), (3, 6, 2), (4, 6, 2), (5, 6, 1), (6, 6, 1)]


def test_the_largest_seed_serves_a_batch_and_wraps_to_zero(model):
    lq = torch.rand(2, 3, 16, 16)
    batch = restore(model, lq, steps=2, seed=2 ** 64 - 1)
    torch.testing.assert_close(batch[1:], restore(model, lq[1:], steps=2, seed=0), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="seed must be an integer in 0..2\\*\\*64 - 1"):
        restore(model, lq, steps=2, seed=2 ** 64)


def test_output_shape_range_and_defaults_from_the_model_config(model):
    out = restore(model, torch.rand(2, 3, 12, 20), steps=2)
    assert out.shape == (2, 3, 48, 80)
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1


def test_upsampled_input_keeps_its_size(model):
    assert restore(model, torch.rand(1, 3, 40, 48), steps=2, input_is="already_upscaled").shape == (1, 3, 40, 48)


def test_fusions_differ_on_a_real_unet(model):
    lq = torch.rand(1, 3, 16, 16)
    outs = {f: restore(model, lq, steps=3, fusion=f) for f in ("mean", "median", "gaussian")}
    assert not torch.allclose(outs["mean"], outs["median"])
    assert not torch.allclose(outs["mean"], outs["gaussian"])


def test_callback_reports_every_step_with_an_x0_estimate(model):
    seen = []
    restore(model, torch.rand(1, 3, 8, 8), steps=5,
            callback=lambda info: seen.append((info["i"] + 1, info["total"], info["denoised"].shape,
                                               float(info["denoised"].min()))))
    assert [(i, n) for i, n, _, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert all(shape == (1, 3, 32, 32) and lo >= 0 for _, _, shape, lo in seen)


def test_cancel_stops_between_unet_calls(model):
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(SamplingCancelled):
        restore(model, torch.rand(1, 3, 16, 16), steps=10, max_patch_batch=10, cancel=cancel)
    assert len(calls) == 4  # asked before each UNet call; the 4th said stop


def test_half_precision_models_run_and_stay_close_to_float32(model):
    lq = torch.rand(1, 3, 16, 16)
    ref = restore(model, lq, steps=3)
    low = restore(tiny_model().to(torch.bfloat16), lq, steps=3)
    assert low.dtype == torch.float32
    assert (low - ref).abs().mean() < 0.05


def test_deterministic_ddim_inverts_a_known_eps_exactly():
    # With eps = the true noise, DDIM (eta = 0, no clipping) returns x0 from x_T in any number of steps.
    s = NoiseSchedule()
    x0, noise = torch.rand(1, 3, 4, 4) * 2 - 1, torch.randn(1, 3, 4, 4)
    kept = s.ddim_timesteps(7)
    x_T = s.q_sample(x0.double(), torch.tensor([kept[0]]), noise.double())

    def true_eps(x, t):
        a = s.alphas_cumprod[t]
        return (x - a.sqrt() * x0.double()) / (1 - a).sqrt()

    out = sample_ddim(true_eps, x_T, s.ddim_coefficients(kept), kept, clip_x0=False)
    torch.testing.assert_close(out, x0.double(), rtol=0, atol=1e-9)


def test_model_without_config_needs_scale_and_patch():
    with pytest.raises(ValueError, match="scale is required"):
        restore(Pointwise(), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="patch_size is required"):
        restore(Pointwise(), torch.rand(1, 3, 8, 8), scale=2)


def test_restore_is_exported_with_its_documented_defaults():
    assert lpip_core.DEFAULT_STEPS == 25
    assert lpip_core.restore is restore


# --- denoise (KSampler's meaning) ---

class RecordingEps:
    """A pointwise toy model: eps = 0.1 * x_t + lq (no mixing between pixels, so a patch grid
    changes nothing); records every x_t it sees."""

    def __init__(self):
        self.seen = []

    def __call__(self, x, lq, t):
        self.seen.append((x.clone(), t.clone()))
        return 0.1 * x + lq


def _restore_toy(lq, **kw):
    model = RecordingEps()
    out = restore(model, lq, scale=2, patch_size=8, steps=5, seed=3, **kw)
    return out, model


def test_denoise_one_is_the_unchanged_sampler_bit_for_bit():
    lq = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    default, _ = _restore_toy(lq)
    explicit, _ = _restore_toy(lq, denoise=1.0)
    assert torch.equal(default, explicit)


def test_denoise_below_one_starts_from_the_noised_lq_and_runs_steps_steps():
    schedule = NoiseSchedule()
    lq = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    out, model = _restore_toy(lq, denoise=0.4)
    kept = denoised_timesteps(schedule, 5, 0.4, "trailing")
    assert kept == schedule.ddim_timesteps(12, "trailing")[-5:]  # KSampler: last 5 of int(5 / 0.4) = 12
    first_t = {int(t[0]) for x, t in model.seen[:1]}
    assert first_t == {kept[0]} and len({float(t[0]) for _, t in model.seen}) == 5  # 5 steps, same UNet calls
    abar = schedule.alphas_cumprod[kept[0]].item()
    noise = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(3))
    expected = abar ** 0.5 * (resize(lq, (16, 16)) * 2 - 1) + (1 - abar) ** 0.5 * noise
    first_x = model.seen[0][0]  # the patches of the first call tile the 16 px canvas (patch 8, stride 4)
    torch.testing.assert_close(first_x[0], expected[0, :, :8, :8], rtol=0, atol=1e-6)
    assert out.shape == (1, 3, 16, 16)


def test_denoise_zero_returns_the_upsampled_lq_and_bad_values_are_refused():
    lq = torch.rand(1, 3, 8, 8)
    out, model = _restore_toy(lq, denoise=0.0)
    assert torch.equal(out, resize(lq, (16, 16))) and not model.seen
    for bad in (-0.1, 1.5, float("nan"), True, "1"):
        with pytest.raises(ValueError, match=r"denoise must be a number in \[0, 1\]"):
            restore(RecordingEps(), lq, scale=2, patch_size=8, denoise=bad)


def test_lower_denoise_stays_closer_to_the_lq():
    """With a real (tiny, untrained) UNet the result drifts from the upsampled LQ less the lower
    the denoise: the fidelity control works in the direction its name says."""
    from lpip_core import PRESETS, LPIPModel, ModelConfig

    torch.manual_seed(0)
    model = LPIPModel(ModelConfig(unet=PRESETS["tiny"], scale=2, hq_size=16, patch=8, stride=4)).eval()
    lq = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    up = resize(lq, (16, 16))
    drift = [(restore(model, lq, steps=4, denoise=d) - up).abs().mean().item() for d in (0.1, 0.4, 1.0)]
    assert drift[0] < drift[1] < drift[2], drift


# --- end_percent (stop early, return the estimate of the clean image) ---

def test_end_percent_1_and_shares_that_round_to_every_step_are_the_unchanged_sampler_bit_for_bit():
    lq = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    default, _ = _restore_toy(lq)
    for end in (1.0, 1, 0.95):  # 0.95 of 5 steps rounds to 5
        assert torch.equal(_restore_toy(lq, end_percent=end)[0], default)


@pytest.mark.parametrize("denoise", [1.0, 0.6])
def test_end_percent_returns_that_steps_clean_estimate_after_that_many_unet_steps(model, denoise):
    """Ending at 0.6 of 5 steps runs the first 3 steps of the full run unchanged, and returns the x0
    estimate that the full run reports at step 3 (KSamplerAdvanced without leftover noise)."""
    lq = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    estimates, ended_at = {}, []
    full = restore(model, lq, steps=5, seed=2, denoise=denoise, callback=lambda info: estimates.setdefault(info["i"] + 1, info["denoised"]))
    ended = restore(model, lq, steps=5, seed=2, denoise=denoise, end_percent=0.6,
                    callback=lambda info: ended_at.append((info["i"] + 1, info["total"])))
    assert ended_at == [(1, 3), (2, 3), (3, 3)]  # three steps run, progress out of three
    assert torch.equal(ended, estimates[3].clamp(0, 1))
    assert not torch.allclose(ended, full, atol=1e-3)


def test_end_percent_bad_values_are_refused():
    for bad in (0, -0.5, 1.01, float("nan"), True, "0.6"):
        with pytest.raises(ValueError, match=r"end_percent must be a number in \(0, 1\]"):
            restore(RecordingEps(), torch.rand(1, 3, 8, 8), scale=2, patch_size=8, end_percent=bad)


# --- samples (the mean of several samples) ---

def test_samples_is_the_mean_of_the_documented_seeds(model):
    """Image b's sample k uses seed + b + 1000 k; the result is their mean, one image at a time."""
    lq = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    averaged = restore(model, lq, steps=3, seed=7, samples=3)
    for b in range(2):
        draws = [restore(model, lq[b:b + 1], steps=3, seed=7 + b + 1000 * k) for k in range(3)]
        torch.testing.assert_close(averaged[b:b + 1], torch.stack(draws).mean(0), rtol=0, atol=1e-5)
    assert not torch.allclose(averaged, restore(model, lq, steps=3, seed=7), atol=1e-3)
    assert torch.equal(restore(model, lq, steps=3, seed=7, samples=1), restore(model, lq, steps=3, seed=7))


def test_samples_default_to_the_models_config(model):
    """samples=None (the default) takes the model's config.samples; a bare eps callable gets 1."""
    lq = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    two = LPIPModel(replace(model.config, samples=2)).eval()
    two.load_state_dict(model.state_dict())
    assert torch.equal(restore(two, lq, steps=3), restore(model, lq, steps=3, samples=2))
    assert torch.equal(restore(two, lq, steps=3, samples=1), restore(model, lq, steps=3))
    eps = RecordingEps()
    restore(eps, lq, scale=2, patch_size=8, steps=2)
    assert len(eps.seen) == 2  # one sample: a UNet call per step


def test_samples_progress_counts_every_sample_and_bad_values_are_refused(model):
    seen = []
    restore(model, torch.rand(1, 3, 8, 8), steps=2, samples=3, callback=lambda info: seen.append((info["i"] + 1, info["total"])))
    assert seen == [(i, 6) for i in range(1, 7)]
    for bad in (0, 1001, 2.0, True):
        with pytest.raises(ValueError, match="samples must be an integer in 1..1000"):
            restore(model, torch.rand(1, 3, 8, 8), steps=2, samples=bad)


# --- the timesteps restore builds, the callback's dict, the old names ---


def test_restore_runs_the_timesteps_it_built_and_reports_them_in_the_callbacks_dict():
    lq = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    infos = []
    out, model = _restore_toy(lq, denoise=0.5, end_percent=0.6, samples=2, callback=infos.append)
    kept = sampling_timesteps(NoiseSchedule(), 5, denoise=0.5, end_percent=0.6)
    assert [int(t[0]) for _, t in model.seen] == kept * 2  # the UNet sees exactly those, once per sample
    assert [info["t"] for info in infos] == kept * 2
    assert [(info["i"], info["total"], info["sample"]) for info in infos] == [(i, 6, i // 3) for i in range(6)]
    assert all(info["images"] == range(0, 2) for info in infos)
    assert all(info["x"].shape == info["denoised"].shape == (2, 3, 16, 16) for info in infos)
    assert all(0 <= info["denoised"].min() and info["denoised"].max() <= 1 for info in infos)
    assert min(float(info["x"].min()) for info in infos) < 0  # x_t in the model's [-1, 1]: noisy, not an image


def test_an_old_three_argument_callback_still_works_with_a_deprecation_warning(model):
    lq = torch.rand(1, 3, 8, 8)
    new, old = [], []
    restore(model, lq, steps=3, callback=lambda info: new.append((info["i"] + 1, info["total"], info["denoised"])))
    with pytest.warns(DeprecationWarning, match=r"callback\(step, total, x0\) is deprecated"):
        restore(model, lq, steps=3, callback=lambda step, total, x0: old.append((step, total, x0)))
    assert [(s, n) for s, n, _ in old] == [(s, n) for s, n, _ in new] == [(1, 3), (2, 3), (3, 3)]
    assert all(torch.equal(a[2], b[2]) for a, b in zip(old, new))


def test_the_old_keywords_still_work_with_a_deprecation_warning(model):
    lq = torch.rand(1, 3, 8, 8)
    new = restore(model, lq, steps=2, patch_size=12, stride=6, max_patch_batch=5)
    with pytest.warns(DeprecationWarning, match=r"restore\(patch=\.\.\.\) is deprecated: use patch_size"):
        with pytest.warns(DeprecationWarning, match=r"restore\(max_batch=\.\.\.\) is deprecated: use max_patch_batch"):
            old = restore(model, lq, steps=2, patch=12, stride=6, max_batch=5)
    assert torch.equal(old, new)
    up = torch.rand(1, 3, 24, 24)
    with pytest.warns(DeprecationWarning, match="restore\\(upsampled=...\\) is deprecated: use input_is='already_upscal"):
        old = restore(model, up, steps=2, upsampled=True)
    assert torch.equal(old, restore(model, up, steps=2, input_is="already_upscaled"))
    with pytest.raises(TypeError, match="both 'patch' and 'patch_size'"):
        restore(model, lq, steps=2, patch=12, patch_size=12)
    with pytest.raises(ValueError, match="input_is must be one of low_resolution, already_upscaled, got 'big'"):
        restore(model, lq, steps=2, input_is="big")


