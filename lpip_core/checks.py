"""Range checks for configs and arguments: a ValueError that starts with the field's name and says
the accepted range, so that callers can prefix where the field lives (``config.unet.``) or give the
field their own name (:func:`renamed`: a CLI option, a node input)."""
from __future__ import annotations

import contextlib
import math
import numbers
import sys

SEED_LIMIT = 2 ** 64  # torch generators take seeds below this
MAX_SIDE = 8192  # px: the largest image side an option may ask for (805 MB as float32 RGB; resizing needs a few)


def shown(value) -> str:
    """repr of a value, cut short: a hostile file may hold a megabyte-long list. A numpy scalar shows
    as the number it holds (0.5, not np.float32(0.5))."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def finite(value) -> bool:
    """math.isfinite for any real number, without its OverflowError: an int beyond the float range
    (a user's 10**400) is not finite."""
    if isinstance(value, numbers.Integral):
        return abs(int(value)) <= sys.float_info.max
    return math.isfinite(value)


def _said(hint: str) -> str:
    return f" ({hint})" if hint else ""


def check_int(name: str, value, low: int, high: int | None = None, *, hint: str = "") -> int:
    """An int (not a bool; a numpy integer counts) in low..high (no upper bound when high is None).
    ``hint``: what the values mean, said after the range ("0 = the largest face")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or \
            (high is not None and value > high):
        accepted = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer in {accepted}{_said(hint)}, got {shown(value)}")
    return int(value)


def check_float(name: str, value, low: float, high: float, *, open_low: bool = False,
                open_high: bool = False, hint: str = "") -> float:
    """A finite int or float (not a bool; numpy numbers count) in the interval; open ends exclude the
    bound (an infinite bound is never reached: -inf..inf takes any finite number)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and finite(value)
    ok = ok and (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        accepted = f"{'(' if open_low or low == -math.inf else '['}{low}, {high}" \
                   f"{')' if open_high or high == math.inf else ']'}"
        raise ValueError(f"{name} must be a number in {accepted}{_said(hint)}, got {shown(value)}")
    return float(value)


def check_bool(name: str, value) -> bool:
    """True or False (not 0 or 1, not a string: a workflow's "false" must not switch something on)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {shown(value)}")
    return value


def check_choice(name: str, value, choices) -> str:
    """One of a fixed set of strings (a combo input, a CLI choice)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {shown(value)}")
    return value


def check_int_list(name: str, value, low: int, high: int | None, *, min_len: int, max_len: int) -> tuple[int, ...]:
    """A list or tuple of min_len..max_len ints, each in low..high (no upper bound when high is None)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or \
            not min_len <= len(value) <= max_len:
        count = min_len if min_len == max_len else f"{min_len} to {max_len}"
        raise ValueError(f"{name} must be a list of {count} integers, got {shown(value)}")
    for item in value:
        check_int(f"{name} item", item, low, high)
    return tuple(value)


@contextlib.contextmanager
def renamed(names: dict[str, str]):
    """Inside the block, a ValueError whose message starts with one of ``names``' keys (an argument
    of lpip_core) starts with its value instead (what the caller calls it: ``--upscale``, a node's
    input): the one translation from the core's names to the command line's and the nodes'."""
    try:
        yield
    except ValueError as e:
        text = str(e)
        for core, outer in names.items():
            if text.startswith(core + " "):
                e.args = (outer + text[len(core):],)
                break
        raise


def check_output_scale(scale, model_scale: int) -> int:
    """A run's output scale: the model's (None) or a multiple of it, the rest by bicubic
    (models/lpip_x4_64.md, "x8 through x4": the x4 model then bicubic x2 is the pack's most faithful x8 restorer)."""
    if scale is None:
        return model_scale
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1 or scale % model_scale:
        raise ValueError(f"scale must be the model's scale {model_scale} or a multiple of it (the rest by bicubic), "
                         f"got {shown(scale)}")
    return scale


def check_seed(seed, batch: int = 1) -> int:
    """A seed in 0..2**64 - 1 (KSampler's range); image b of a batch uses seed_for(seed, b)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
        per_image = " (image b of a batch uses seed + b, wrapped)" if batch > 1 else ""
        raise ValueError(f"seed must be an integer in 0..2**64 - 1{per_image}, got {shown(seed)}")
    return int(seed)


def seed_for(seed: int, b: int) -> int:
    """Image b's seed: seed + b, wrapped at 2**64 so every seed of the range serves any batch."""
    return (seed + b) % SEED_LIMIT
