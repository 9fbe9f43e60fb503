"""Out-of-memory handling for the sampler node: empty the cache, halve the patch batch, retry.

Pure Python (no comfy import): the node passes ComfyUI's exception classes and cache function in,
so that the retry logic can be tested with an injected OOM (a CPU never raises a real one).
"""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

T = TypeVar("T")
log = logging.getLogger("LPIP-Diff")


def is_out_of_memory(error: BaseException, oom_type: type[BaseException]) -> bool:
    """Whether ``error`` is an out-of-memory error.

    ``oom_type`` is comfy.model_management.OOM_EXCEPTION: torch.cuda.OutOfMemoryError, or plain
    Exception on a torch without it; then only errors that say "out of memory" count.
    """
    if not isinstance(error, oom_type):
        return False
    return oom_type is not Exception or "out of memory" in str(error).lower()


def run_halving_batch(run: Callable[[int], T], batch: int, *, oom_type: type[BaseException],
                      empty_cache: Callable[[], None],
                      never_catch: tuple[type[BaseException], ...] = (),
                      name: str = "max_patch_batch") -> tuple[T, int]:
    """``run(batch)``; on out-of-memory empty the cache, halve ``batch`` and run again.

    Returns ``(result, batch that worked)``, so that the caller can keep the smaller batch for the
    next image. ``never_catch`` (ComfyUI's InterruptProcessingException, which is an ordinary
    Exception in 0.3.75) is re-raised at once, before anything else is looked at. Errors other
    than out-of-memory propagate unchanged. Out of memory with a batch of 1 is raised again, as
    the same exception type (ComfyUI then adds its memory tips and unloads models), with a message
    that says what was tried.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {batch!r}")
    start = batch
    while True:
        try:
            return run(batch), batch
        except never_catch:
            raise
        except Exception as error:  # noqa: BLE001 - filtered right below
            if not is_out_of_memory(error, oom_type):
                raise
            if batch == 1:
                raise _oom_error(error, f"out of memory even with {name}=1 (started at {start}); "
                                        f"use a smaller image or patch_size, or free memory: {error}") from None
        # Outside the except block, so that the failed attempt's tensors can be freed first.
        empty_cache()
        batch = max(1, batch // 2)
        log.warning("LPIP-Diff: out of memory, retrying with %s=%d", name, batch)


def _oom_error(error: BaseException, message: str) -> BaseException:
    try:
        return type(error)(message)
    except Exception:  # an exception type with another constructor
        return RuntimeError(message)
