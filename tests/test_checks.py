"""The range checks every entry point shares: the value back on success, an error naming the field and its range."""
import math

import numpy as np
import pytest

from lpip_core.checks import check_choice, check_float, check_int, check_int_list, check_seed, shown


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
