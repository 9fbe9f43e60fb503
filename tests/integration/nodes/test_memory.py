"""The out-of-memory retry (nodes/memory.py): loaded on its own with an injected OOM (a CPU never
raises a real one), and interruption inside the retry in ComfyUI's own python."""
from __future__ import annotations

import pytest

from tests.integration.helpers import load_pure

memory = load_pure("memory")


class FakeOOM(RuntimeError):
    pass


class FakeInterrupt(Exception):  # like ComfyUI 0.3.75's InterruptProcessingException
    pass


def _runner(fails_above: int, calls: list):
    def run(batch):
        calls.append(batch)
        if batch > fails_above:
            raise FakeOOM("CUDA out of memory. Tried to allocate 1.00 GiB")
        return f"done with {batch}"
    return run


def test_oom_halves_the_batch_until_it_fits():
    calls, emptied = [], []
    result, batch = memory.run_halving_batch(_runner(10, calls), 64, oom_type=FakeOOM,
                                             empty_cache=lambda: emptied.append(1), never_catch=(FakeInterrupt,))
    assert (result, batch) == ("done with 8", 8)
    assert calls == [64, 32, 16, 8] and len(emptied) == 3


def test_oom_at_batch_one_is_a_clear_error_of_the_same_type():
    calls = []
    with pytest.raises(FakeOOM, match=r"even with max_patch_batch=1 \(started at 4\)"):
        memory.run_halving_batch(_runner(0, calls), 4, oom_type=FakeOOM, empty_cache=lambda: None)
    assert calls == [4, 2, 1]


def test_interrupt_and_other_errors_are_never_retried():
    calls = []

    def interrupted(batch):
        calls.append(batch)
        raise FakeInterrupt()

    # FakeInterrupt is an Exception, and with oom_type=Exception (a torch without
    # torch.cuda.OutOfMemoryError) a broad except would have swallowed it
    with pytest.raises(FakeInterrupt):
        memory.run_halving_batch(interrupted, 64, oom_type=Exception, empty_cache=pytest.fail,
                                 never_catch=(FakeInterrupt,))
    assert calls == [64]

    def bad_value(batch):
        raise ValueError("patch_size 99 ...")

    with pytest.raises(ValueError, match="patch_size 99"):
        memory.run_halving_batch(bad_value, 64, oom_type=Exception, empty_cache=pytest.fail)
    with pytest.raises(ValueError, match="max_patch_batch"):
        memory.run_halving_batch(bad_value, 0, oom_type=FakeOOM, empty_cache=pytest.fail)


def test_is_out_of_memory():
    assert memory.is_out_of_memory(FakeOOM("x"), FakeOOM)
    assert not memory.is_out_of_memory(ValueError("out of memory"), FakeOOM)
    assert memory.is_out_of_memory(RuntimeError("CUDA out of memory"), Exception)
    assert not memory.is_out_of_memory(RuntimeError("shape mismatch"), Exception)


def test_interrupt_inside_the_retry_loop_is_not_swallowed(in_comfy):
    assert in_comfy["interrupt"] == [1, 0]  # one UNet call, no retry, no cache emptying
    assert in_comfy["cancel"] == ["interrupted", False]  # stopped by the cancel check; flag cleared
