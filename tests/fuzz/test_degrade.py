"""degrade (the Degrade Face node and `lpip-diff degrade` call it) under arbitrary parameters, seeds
and image shapes: the LQ and its upsampled copy of the right sizes, or a ValueError."""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from lpip_core import DegradeParams, degrade

numbers = st.one_of(st.floats(-5, 300), st.sampled_from([0, 1, 64, 100, float("nan"), float("inf"), True, "2"]))


@given(b=st.integers(0, 2), h=st.integers(1, 40), w=st.integers(1, 40), random=st.booleans(),
       blur=numbers, downscale=numbers, noise=numbers, jpeg=st.one_of(st.none(), st.integers(-5, 120)),
       seed=st.one_of(st.integers(0, 2 ** 64 + 5), st.sampled_from([-1, 2 ** 64 - 1, 2 ** 64, 2 ** 70])),
       lq=st.one_of(st.none(), st.tuples(st.integers(1, 20), st.integers(1, 20))))
def test_degrade_gives_the_right_sizes_or_a_value_error(b, h, w, random, blur, downscale, noise, jpeg, seed, lq):
    image = torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(h * 41 + w))
    try:
        params = None if random else DegradeParams(blur_sigma=blur, downscale=downscale, noise_sigma=noise,
                                                   jpeg_quality=jpeg)
        low, up = degrade(image, params, seed=seed, lq_size=lq)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert 0 <= seed < 2 ** 64  # seeds outside KSampler's range are refused; seed + b wraps
    assert low.shape[:2] == (b, 3) and up.shape == (b, 3, h, w)
    if lq is not None:
        assert tuple(low.shape[-2:]) == lq
    for x in (low, up):
        assert torch.isfinite(x).all() and ((x >= 0) & (x <= 1)).all()
