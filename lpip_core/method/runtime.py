"""How the UNet runs on a device: weight precision, torch.compile, memory layout, CPU threads.

Half-precision weights (fp16, bf16) change only the UNet's own arithmetic. Everything that sampling
accumulates stays wide whatever the weights: the noise, the x_t canvas, the x0 estimate and the DDIM
update are float32, the fusion of overlapping estimates is float64 (patches.PatchGrid.fuse), the
timestep embedding is computed in float32 (unet.timestep_embedding), and inside the UNet torch
accumulates in float32 where it matters (GroupNorm statistics, the attention softmax, convolution
and matmul accumulators on GPUs). Only the UNet's inputs and weights are rounded to 16 bits.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager

import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)


def compile_problem(device: torch.device | str) -> str | None:
    """Why torch.compile cannot run on ``device`` here (one line), or None when it can.

    Inductor writes and builds C++ on the CPU and Triton kernels on CUDA: without a C++ compiler
    or triton the first UNet call would fail deep inside torch, so the loader asks first.
    """
    device = torch.device(device)
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile (it needs torch 2.0 or newer)"
    if device.type == "cpu":
        compilers = [c for c in (os.environ.get("CXX"), "g++", "c++", "clang++") if c]
        if not any(shutil.which(c) for c in compilers):
            return "torch.compile on the CPU needs a C++ compiler (g++ or clang++) and none was found"
    elif device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:
            return "torch.compile on CUDA needs triton, which this torch cannot find"
        if not has_triton():
            return "torch.compile on CUDA needs triton (pip install triton), which is not installed"
    return None


def compile_unet(model: torch.nn.Module, device: torch.device | str, mode: str | None = None) -> torch.nn.Module:
    """Compile ``model.unet`` in place (nn.Module.compile), so that the state dict, the parameters
    and `.to()` stay those of the plain module; returns the model. The first calls compile (tens of
    seconds), later ones reuse the kernels; a new number of patches per call compiles once more,
    then the batch dimension is dynamic. Raises ValueError when compile_problem says it cannot work."""
    problem = compile_problem(device)
    if problem:
        raise ValueError(problem)
    model.unet.compile(mode=mode, dynamic=None)
    return model


def is_compile_error(error: BaseException) -> bool:
    """Whether ``error`` comes from torch.compile's compiler (a missing header, a failed build...)."""
    kinds = []
    for module, name in (("torch._dynamo.exc", "BackendCompilerFailed"), ("torch._inductor.exc", "InductorError")):
        kind = getattr(sys.modules.get(module), name, None)  # only once compile has imported them
        if isinstance(kind, type):
            kinds.append(kind)
    return isinstance(error, tuple(kinds))


def as_unet_input(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A batch of patches in the UNet's dtype and in channels-last layout (the layout the weights
    are stored in: no conversion inside the convolutions)."""
    return x.to(dtype=dtype, memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------- CPU threads
# Two torch threads on a 2-core machine that something else keeps busy wait for each other at every
# parallel region (OpenMP barriers): measured 5-20x slower than one thread. So on the CPU `restore`
# uses at most the CPUs that other processes leave idle (bench/README.md, "CPU: the demo photo's faces").

BUSY_SAMPLE_S = 0.1  # how long the CPU load is sampled
BUSY_CACHE_S = 30.0  # how long a measurement is reused (restore called face after face)
_busy_cache: tuple[float, float | None] = (-BUSY_CACHE_S, None)


def _cpu_ticks() -> tuple[int, int, int]:
    """(all CPUs' ticks, idle ticks, this process's ticks) from /proc (Linux)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    with open("/proc/self/stat") as f:
        own = f.read().rsplit(")", 1)[1].split()
    return sum(fields), fields[3] + fields[4], int(own[11]) + int(own[12])  # idle + iowait; utime + stime


def busy_cpus(interval: float = BUSY_SAMPLE_S) -> float | None:
    """How many CPUs other processes keep busy, measured over ``interval`` seconds and reused for
    BUSY_CACHE_S; None where /proc cannot tell (not Linux)."""
    global _busy_cache
    now = time.monotonic()
    if now - _busy_cache[0] < BUSY_CACHE_S:
        return _busy_cache[1]
    try:
        total0, idle0, own0 = _cpu_ticks()
        time.sleep(interval)
        total1, idle1, own1 = _cpu_ticks()
    except (OSError, ValueError, IndexError):
        busy = None
    else:
        ticks = total1 - total0
        cpus = os.cpu_count() or 1
        others = ticks - (idle1 - idle0) - (own1 - own0)
        busy = None if ticks <= 0 else min(float(cpus), max(0.0, others / ticks * cpus))
    _busy_cache = (time.monotonic(), busy)
    return busy


def pick_threads(current: int, usable: int, busy: float | None) -> int:
    """Threads for a CPU run: torch's ``current`` setting, lowered to the ``usable`` CPUs minus the
    ``busy`` ones (rounded), at least 1; ``current`` when the load is unknown."""
    if busy is None:
        return current
    return max(1, min(current, round(usable - busy)))


@contextmanager
def cpu_threads(device: torch.device, threads: int | None = None):
    """Run a block with ``threads`` torch threads on the CPU (None: pick_threads from the measured
    load), then restore torch's setting. Other devices are left alone."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    if threads is None and before > 1:  # one thread cannot be lowered: no need to measure
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = pick_threads(before, usable, busy_cpus())
    if threads is not None and threads != before:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
