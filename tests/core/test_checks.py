"""The range checks every entry point shares: the value back on success, an error naming the field and its range."""
import math

import numpy as np
import pytest

from lpip_core.checks import (check_bool, check_choice, check_float, check_int, check_int_list, check_seed, renamed,
                               shown)


def test_check_int_accepts_numpy_and_refuses_bool_and_floats():
    assert check_int("steps", np.int64(5), 1, 10) == 5
    for bad in (True, 5.0, 0, 11, "5"):
        with pytest.raises(ValueError, match=r"^steps must be an integer in 1\.\.10"):
            check_int("steps", bad, 1, 10)


def test_check_float_ends_and_infinity():
    assert check_float("eta", 1, 0, 1) == 1.0
    with pytest.raises(ValueError, match=r"^lr must be a number in \(0, 1\]"):
        check_float("lr", 0, 0, 1, open_low=True)
    for bad in (math.nan, math.inf, 10 ** 400, False):
        with pytest.raises(ValueError, match="^x must be a number"):
            check_float("x", bad, 0, math.inf)


def test_check_choice_lists_the_choices():
    assert check_choice("fusion", "median", ("mean", "median")) == "median"
    for bad in ("Mean", None, ["mean"]):
        with pytest.raises(ValueError, match=r"^fusion must be one of mean, median, got"):
            check_choice("fusion", bad, ("mean", "median"))


def test_check_int_list_and_seed():
    assert check_int_list("channels", [1, 2], 1, 4, min_len=1, max_len=3) == (1, 2)
    with pytest.raises(ValueError, match="channels item"):
        check_int_list("channels", [1, 9], 1, 4, min_len=1, max_len=3)
    assert check_seed(2 ** 64 - 1) == 2 ** 64 - 1
    with pytest.raises(ValueError, match=r"seed \+ b"):
        check_seed(-1, batch=2)


def test_shown_cuts_long_values():
    assert len(shown(list(range(10 ** 4)))) == 60
    assert shown(np.float32(0.5)) == "0.5"


def test_hints_say_what_the_values_mean_and_infinite_ends_are_open():
    with pytest.raises(ValueError, match=r"^index must be an integer in >= 0 \(0 = the largest face\), got -1$"):
        check_int("index", -1, 0, hint="0 = the largest face")
    with pytest.raises(ValueError, match=r"^min_score must be a number in \(-inf, inf\), got nan$"):
        check_float("min_score", math.nan, -math.inf, math.inf)
    assert check_float("min_score", -3, -math.inf, math.inf) == -3.0


def test_check_bool_takes_only_true_and_false():
    assert check_bool("compile", False) is False
    for bad in (0, 1, "false", None):
        with pytest.raises(ValueError, match="^compile must be true or false, got"):
            check_bool("compile", bad)


def test_check_int_list_of_a_fixed_length_without_an_upper_bound():
    assert check_int_list("image_size", (480, 640), 1, None, min_len=2, max_len=2) == (480, 640)
    with pytest.raises(ValueError, match=r"^image_size must be a list of 2 integers, got \[1, 2, 3\]$"):
        check_int_list("image_size", [1, 2, 3], 1, None, min_len=2, max_len=2)
    with pytest.raises(ValueError, match=r"^image_size item must be an integer in >= 1, got 0$"):
        check_int_list("image_size", [0, 2], 1, None, min_len=2, max_len=2)


def test_renamed_gives_the_callers_name_to_the_cores_errors():
    with pytest.raises(ValueError, match=r"^--upscale must be a number in \[0.1, 64\], got 0$"):
        with renamed({"upscaled_by": "--upscale", "upsample": "--upsample"}):
            check_float("upscaled_by", 0, 0.1, 64)
    # only a message that starts with the core's name: "upsample" is not renamed inside "upsampled ..."
    with pytest.raises(ValueError, match=r"^upsampled must be true or false"):
        with renamed({"upsample": "--upsample"}):
            check_bool("upsampled", 1)
    with pytest.raises(TypeError, match="^upsample"):  # other errors pass untouched
        with renamed({"upsample": "--upsample"}):
            raise TypeError("upsample")
