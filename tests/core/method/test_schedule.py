import pytest
import torch

from lpip_core.method.schedule import (
    NoiseSchedule,
    ScheduleConfig,
    denoised_timesteps,
    sampling_timesteps,
    steps_until_end,
)


def test_linear_schedule_matches_the_paper():
    s = NoiseSchedule(ScheduleConfig())
    assert s.betas.shape == (1000,)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    assert torch.all(s.alphas_cumprod[1:] < s.alphas_cumprod[:-1])
    assert s.alphas_cumprod[-1].item() == pytest.approx(4.04e-5, rel=0.02)  # nearly pure noise at T


def test_cosine_schedule_is_monotone_and_bounded():
    s = NoiseSchedule(ScheduleConfig(kind="cosine"))
    assert torch.all(s.betas <= 0.999) and torch.all(s.betas > 0)
    assert torch.all(s.alphas_cumprod[1:] < s.alphas_cumprod[:-1])


@pytest.mark.parametrize("steps", [1, 10, 25, 50, 1000])
def test_trailing_respacing_starts_at_pure_noise(steps):
    kept = NoiseSchedule().ddim_timesteps(steps)
    assert len(kept) == steps == len(set(kept))
    assert kept[0] == 999
    assert kept == sorted(kept, reverse=True)
    assert kept[-1] == 1000 // steps - 1


@pytest.mark.parametrize("steps", [1, 10, 25, 1000])
def test_leading_respacing_ends_at_zero(steps):
    kept = NoiseSchedule().ddim_timesteps(steps, "leading")
    assert kept[-1] == 0 and len(kept) == steps
    assert kept[0] == (steps - 1) * (1000 // steps)


def test_ddim_coefficients_end_on_the_clean_image():
    s = NoiseSchedule()
    kept = s.ddim_timesteps(5)
    coef = s.ddim_coefficients(kept)
    assert coef[-1][1] == 1.0
    assert all(prev > cur for cur, prev in coef)
    assert coef[0][1] == pytest.approx(s.alphas_cumprod[kept[1]].item())


def test_q_sample_then_predict_x0_round_trips():
    s = NoiseSchedule()
    x0, noise = torch.rand(4, 3, 8, 8) * 2 - 1, torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    x_t = s.q_sample(x0, t, noise)
    torch.testing.assert_close(s.predict_x0(x_t, t, noise), x0, rtol=0, atol=5e-4)
    at_zero = s.q_sample(x0[:1], torch.tensor([0]), noise[:1]) - x0[:1]
    assert at_zero.abs().max() <= 0.0101 * noise[:1].abs().max()  # sqrt(1 - abar_0) = sqrt(1e-4)


@pytest.mark.parametrize("bad", [dict(kind="quadratic"), dict(timesteps=0), dict(beta_start=0.0), dict(beta_end=1.0)])
def test_bad_schedules_are_refused(bad):
    with pytest.raises(ValueError):
        ScheduleConfig(**bad)


@pytest.mark.parametrize("steps", [0, 1001])
def test_steps_outside_range_are_refused(steps):
    with pytest.raises(ValueError, match="steps must be in 1..1000"):
        NoiseSchedule().ddim_timesteps(steps)


def test_steps_until_end_rounds_the_share_half_up_and_runs_at_least_one_step():
    assert [steps_until_end(25, 0.6), steps_until_end(50, 0.6), steps_until_end(10, 0.6), steps_until_end(3, 0.5), steps_until_end(5, 0.01)] == \
        [15, 30, 6, 2, 1]


def test_sampling_timesteps_are_the_denoised_schedule_cut_at_end_percent():
    schedule = NoiseSchedule()
    kept = sampling_timesteps(schedule, 10, denoise=0.5, end_percent=0.6, spacing="leading")
    assert kept == denoised_timesteps(schedule, 10, 0.5, "leading")[:6] and len(kept) == steps_until_end(10, 0.6)
    assert sampling_timesteps(schedule, 25) == schedule.ddim_timesteps(25, "trailing")
    assert sampling_timesteps(schedule, 25, denoise=0.0) == []  # nothing to sample: the upsampled input
    with pytest.raises(ValueError, match="spacing must be one of trailing, leading, got 'middle'"):
        sampling_timesteps(schedule, 25, spacing="middle")
    with pytest.raises(ValueError, match="steps must be an integer in 1..1000, got 1001"):
        sampling_timesteps(schedule, 1001)
