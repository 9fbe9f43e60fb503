"""How the UNet runs: half precision against fp32, torch.compile, channels-last input, one-pass previews."""
import os
import shutil

import pytest
import torch
from torch import nn

import lpip_core
from lpip_core import restore
from lpip_core.evaluation.metrics import psnr
from lpip_core.files import read_image, tile
from lpip_core.method import runtime
from lpip_core.method.patches import patch_grid
from lpip_core.method.sampler import FusedEps
from tests.helpers import REPO, tiny_model

LQ = REPO / "examples" / "lq" / "hopper_16.png"  # a real 16 px face


def _psnr(a, b) -> float:
    return float(psnr(a, b).min())


@pytest.mark.parametrize("dtype, floor", [(torch.bfloat16, 40.0), (torch.float16, 40.0)])
def test_half_precision_weights_agree_with_fp32_on_the_tiny_model(dtype, floor):
    """The UNet in bf16/fp16, the sampler's arithmetic in fp32: the restored face stays within float
    rounding of fp32 (measured: bf16 43 dB, fp16 61 dB over 25 steps on this face)."""
    lq = read_image(LQ)
    reference = restore(tiny_model(), lq, steps=25, seed=1)
    low = restore(tiny_model().to(dtype), lq, steps=25, seed=1)
    assert low.dtype == torch.float32
    assert _psnr(low, reference) > floor


@pytest.mark.slow
def test_bf16_agrees_with_fp32_on_the_shipped_x4_model():
    """The shipped x4 model, a real face, 25 steps: bf16 weights within float rounding of fp32
    (slow here: this CPU has no native bf16, so torch emulates it)."""
    lq = read_image(LQ)
    path = REPO / "models" / "lpip_x4_64.safetensors"
    reference = restore(lpip_core.load_model(path), lq, steps=25, seed=1)
    low = restore(lpip_core.load_model(path, dtype=torch.bfloat16), lq, steps=25, seed=1)
    assert _psnr(low, reference) > 40.0


def test_the_unet_gets_channels_last_patches_in_its_dtype_and_the_sampler_stays_fp32():
    seen = []

    class Recording(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones((), dtype=torch.bfloat16))

        def forward(self, x, lq, t):
            seen.append((x.dtype, lq.dtype, x.is_contiguous(memory_format=torch.channels_last),
                         lq.is_contiguous(memory_format=torch.channels_last)))
            return x * self.weight

    grid = patch_grid(32, 32, (16, 16), (8, 8))
    out = FusedEps(Recording(), torch.zeros(1, 3, 32, 32), grid)(torch.randn(1, 3, 32, 32), 10)
    assert out.dtype == torch.float32
    assert seen == [(torch.bfloat16, torch.bfloat16, True, True)]


def test_a_float16_overflow_is_a_clear_error_not_a_black_face():
    class Overflowing(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.full((), 1e4, dtype=torch.float16))

        def forward(self, x, lq, t):
            return x * self.weight * self.weight  # beyond float16's 65504

    with pytest.raises(ValueError, match="float16 model's noise estimate overflowed"):
        restore(Overflowing(), torch.rand(1, 3, 8, 8), scale=2, patch_size=8, steps=2)


def test_compile_without_a_compiler_is_a_one_line_error(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    problem = runtime.compile_problem("cpu")
    assert problem == "torch.compile on the CPU needs a C++ compiler (g++ or clang++) and none was found"
    model = tiny_model()
    with pytest.raises(ValueError, match="needs a C\\+\\+ compiler"):
        runtime.compile_unet(model, "cpu")
    assert "_compiled_call_impl" not in vars(model.unet) or model.unet._compiled_call_impl is None


def test_compile_errors_are_recognised():
    assert not runtime.is_compile_error(RuntimeError("shape mismatch"))
    from torch._inductor.exc import InductorError

    assert runtime.is_compile_error(InductorError(RuntimeError("g++ failed"), "traceback"))


@pytest.mark.skipif(runtime.compile_problem("cpu") is not None, reason=str(runtime.compile_problem("cpu")))
def test_compiled_unet_agrees_with_eager():
    """torch.compile (inductor, C++ on the CPU) gives the eager result to float rounding, with the
    same state dict (ComfyUI's model management moves the same tensors)."""
    lq = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    eager = restore(tiny_model(), lq, steps=3, seed=2)
    model = runtime.compile_unet(tiny_model(), "cpu")
    assert list(model.state_dict()) == list(tiny_model().state_dict())
    compiled = restore(model, lq, steps=3, seed=2)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-4)


def test_tile_lays_a_batch_out_row_by_row():
    images = torch.arange(5.0)[:, None, None, None].expand(5, 3, 2, 4)
    grid = tile(images)
    assert grid.shape == (3, 2 * 2, 3 * 4)  # 3 columns, 2 rows of 2 x 4 px images
    assert grid[0, ::2, ::4].tolist() == [[0, 1, 2], [3, 4, 0]]  # the empty cell is black
    assert tile(images[:1]).shape == (3, 2, 4)


@pytest.mark.parametrize("current, usable, busy, expected", [
    (2, 2, 0.0, 2), (2, 2, 0.3, 2), (2, 2, 0.7, 1), (2, 2, 2.0, 1), (2, 2, 5.0, 1),
    (8, 16, 4.0, 8), (8, 16, 12.2, 4), (1, 2, 0.0, 1), (2, 2, None, 2)])
def test_threads_are_lowered_to_the_cpus_other_processes_leave_idle(current, usable, busy, expected):
    assert runtime.pick_threads(current, usable, busy) == expected


def test_busy_cpus_is_a_share_of_the_machine():
    busy = runtime.busy_cpus(0.05)
    assert busy is None or 0.0 <= busy <= (os.cpu_count() or 1)


def test_restore_runs_with_the_threads_asked_and_restores_torchs_setting(model):
    seen = []

    def recording(x, lq, t):
        seen.append(torch.get_num_threads())
        return model(x, lq, t)

    recording.config = model.config
    before = torch.get_num_threads()
    restore(recording, torch.rand(1, 3, 8, 8), steps=1, threads=3)
    assert set(seen) == {3} and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        restore(model, torch.rand(1, 3, 8, 8), steps=1, threads=0)
