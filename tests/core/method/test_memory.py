"""lpip_core.method.memory: the guard that refuses what cannot fit before anything is allocated."""
import pytest
import torch

from lpip_core import restore
from lpip_core.method import memory, restoration
from lpip_core.method.memory import memory_estimate


def test_the_guard_counts_the_whole_batchs_result_before_any_pass(model, monkeypatch):
    """Passes of one face fit, but not the result of 2000 (and their float64 sum for samples > 1):
    refused before any work, naming the batch and what to change."""
    shared, per_patch = memory_estimate(model.config, 1, (64, 64), (16, 16), (8, 8), "mean", torch.float32)
    held = memory.held_memory(2000, (16, 16), (64, 64), 1)
    assert held == 2000 * 3 * (16 * 16 + 64 * 64) * 4
    assert memory.held_memory(2000, (16, 16), (64, 64), 2) == held + 2000 * 3 * 64 * 64 * 8
    room = (shared + 16 * per_patch + held // 2) / memory.MEMORY_SHARE
    monkeypatch.setattr(memory, "available_memory", lambda device: int(room))
    monkeypatch.setattr(restoration, "resize", lambda *a: pytest.fail("sampled before the guard"))
    with pytest.raises(ValueError, match="restoring 2000 image.*fewer images at a time"):
        restore(model, torch.zeros(2000, 3, 16, 16), steps=1, max_patch_batch=16)


def test_the_guard_reads_the_per_process_memory_fraction_on_cuda(monkeypatch):
    """torch.cuda.set_per_process_memory_fraction caps what the allocator may hold: the guard plans
    within that cap, not within the driver's free memory."""
    gb = 2 ** 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (60 * gb, 80 * gb))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 6 * gb)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 4 * gb)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device: 1.0)
    assert memory.available_memory(torch.device("cuda")) == 62 * gb  # free + reserved - allocated
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device: 0.125)
    assert memory.available_memory(torch.device("cuda")) == 6 * gb  # 10 GB allowed, 4 GB in use
