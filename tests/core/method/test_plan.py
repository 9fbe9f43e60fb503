"""lpip_core.method.plan: the patch layout, the automatic patch batch and the sampling plan restore runs."""
import pytest
import torch

from lpip_core import restore
from lpip_core.method.memory import memory_estimate
from lpip_core.method.plan import DEVICE_PATCHES_PER_CALL, auto_patch_batch, patch_layout, plan_sampling


def test_automatic_patch_chunks_hold_about_16k_pixels_on_the_cpu():
    cpu = torch.device("cpu")
    assert [auto_patch_batch(cpu, (m, m)) for m in (16, 32, 64, 256)] == [64, 16, 4, 1]
    assert auto_patch_batch(torch.device("meta"), (32, 32)) == DEVICE_PATCHES_PER_CALL == 512
    assert auto_patch_batch(cpu, (32, 32), 8) == 8 and auto_patch_batch(cpu, (32, 32), 64) == 16  # a bound
    assert auto_patch_batch(torch.device("meta"), (32, 32), 256) == 256


@pytest.mark.parametrize("chunk, images", [(None, 1), (5, 1), (7, 3)])
def test_sampling_plan_counts_the_unet_calls_restore_makes(model, chunk, images):
    """plan_sampling is what restore runs: the grid, and steps x ceil(images x patches / chunk) calls."""
    calls = []

    def counting(x, lq, t):
        calls.append(x.shape[0])
        return model(x, lq, t)

    counting.config = model.config
    lq = torch.rand(images, 3, 16, 16)
    restore(counting, lq, steps=3, max_patch_batch=chunk, scale=4, patch_size=16)
    plan = plan_sampling(counting, (16, 16), scale=4, patch_size=16, max_patch_batch=chunk)
    assert plan.patches_per_step == 49 and plan.grid.ys == (0, 8, 16, 24, 32, 40, 48)
    assert len(calls) == plan.unet_calls(3, images) and sum(calls) == 3 * images * 49
    info = plan.describe(3, images)
    assert info["patches_per_step"] == images * 49 and info["unet_calls"] == len(calls) and info["steps"] == 3


def test_sampling_plan_of_a_small_upscaled_image_pads_the_canvas(model):
    plan = plan_sampling(model, (10, 40), patch_size=16, stride=16, input_is="already_upscaled")
    assert (plan.height, plan.width) == (10, 40) and (plan.grid.height, plan.grid.width) == (16, 40)
    assert plan.grid.ys == (0,) and plan.grid.xs == (0, 16, 24)


def test_restore_hands_back_the_plan_it_ran(model):
    lq = torch.rand(3, 3, 16, 16)
    out, plan = restore(model, lq, steps=2, seed=1, max_patch_batch=20, return_plan=True)
    assert torch.equal(out, restore(model, lq, steps=2, seed=1, max_patch_batch=20))
    again = plan_sampling(model, (16, 16), max_patch_batch=20, images=3)
    assert plan.describe(2, 3) == again.describe(2, 3) and plan.images_per_pass == again.images_per_pass
    assert plan.describe(2, 3)["max_patch_batch"] == 20


def test_the_layout_counts_the_grids_patches_without_building_it_and_estimates_one_pass(model):
    layout = patch_layout(model.config, (10, 13), stride=5)
    assert (layout.height, layout.width, layout.patch, layout.stride) == (40, 52, (16, 16), (5, 5))
    assert layout.patches == layout.grid().num_patches == 6 * 9
    fixed, per_patch = memory_estimate(model.config, 2, (40, 52), (16, 16), (5, 5), "mean", torch.float32)
    assert layout.working_memory(model.config, 2, "mean", 512, torch.float32) == fixed + per_patch * 2 * 54
    assert layout.working_memory(model.config, 2, "mean", 8, torch.float32) == fixed + per_patch * 8
    small = patch_layout(model.config, (10, 40), patch_size=16, stride=16, input_is="already_upscaled")
    assert small.canvas == (16, 40) and small.patches == 3
