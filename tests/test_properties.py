"""Property tests (hypothesis) over shapes, axes, dtypes and extreme values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import REQUIRED, get_backend
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xact

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def logits(draw, *, specials: bool = True, min_side: int = 0):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=5))
    # Half the largest float: the spread along an axis stays representable.
    big = float(np.finfo(dtype).max) / 2
    elements = st.floats(
        min_value=-big,
        max_value=big,
        allow_nan=False,
        allow_infinity=False,
        width=32 if dtype == np.float32 else 64,
    )
    scale = draw(st.sampled_from([1.0, 30.0, 1e4, None]))
    if scale is not None:
        elements = st.floats(-scale, scale, width=32 if dtype == np.float32 else 64)
    if specials:
        elements = st.one_of(elements, st.sampled_from([-math.inf, math.inf]))
    a = draw(hnp.arrays(dtype, shape, elements=elements))
    axis = draw(st.sampled_from([None, *range(-a.ndim, a.ndim)]))
    return a, axis


def _row_max(a, axis):
    return np.max(a, axis=axis, keepdims=True) if a.size else None


@SETTINGS
@given(logits())
def test_softmax_is_a_distribution(data):
    a, axis = data
    p = np.asarray(xact.softmax(a, axis=axis))
    assert p.dtype == a.dtype and p.shape == a.shape
    assert np.all((p >= 0) & (p <= 1))
    if a.size == 0:
        return
    total = np.sum(p.astype(np.float64), axis=axis)
    has_mass = np.any(a > -np.inf, axis=axis)
    eps = np.finfo(a.dtype).eps
    n = a.size if axis is None else a.shape[axis]
    np.testing.assert_allclose(np.where(has_mass, total, 1.0), 1.0, rtol=0, atol=4 * n * eps)
    np.testing.assert_array_equal(np.where(has_mass, 0.0, total), 0.0)


@SETTINGS
@given(logits())
def test_log_softmax_nonpositive_and_consistent(data):
    a, axis = data
    lp = np.asarray(xact.log_softmax(a, axis=axis))
    assert lp.dtype == a.dtype and lp.shape == a.shape
    assert not np.any(np.isnan(lp))
    assert np.all(lp <= 0)
    p = np.asarray(xact.softmax(a, axis=axis))
    np.testing.assert_allclose(
        np.exp(lp.astype(np.float64)), p, rtol=1e-4 if a.dtype == np.float32 else 1e-10, atol=1e-30
    )


@SETTINGS
@given(logits())
def test_logsumexp_bounds(data):
    a, axis = data
    lse = np.asarray(xact.logsumexp(a, axis=axis))
    assert lse.dtype == a.dtype
    if a.size == 0:
        assert np.all(lse == -np.inf)
        return
    m = np.max(a, axis=axis)
    n = a.size if axis is None else a.shape[axis]
    assert np.all(lse >= m)
    fin = np.isfinite(m)
    upper = m[fin].astype(np.float64) + math.log(n)
    assert np.all(lse[fin] <= upper + 4 * np.finfo(a.dtype).eps * np.abs(upper) + 1e-300)
    np.testing.assert_array_equal(lse[~fin], m[~fin])


@SETTINGS
@given(logits(specials=False, min_side=1), st.sampled_from([-3.0, -0.5, 0.25, 2.0, 64.0]))
def test_shift_invariance(data, c):
    a, axis = data
    assume(np.all(np.abs(a) <= 1e4))
    shifted = (a + c).astype(a.dtype)
    # The shift itself rounds: compare with the exactly shifted input.
    delta = shifted.astype(np.float64) - a.astype(np.float64)
    p1 = np.asarray(xact.softmax(a, axis=axis)).astype(np.float64)
    p2 = np.asarray(xact.softmax(shifted, axis=axis)).astype(np.float64)
    eps = float(np.finfo(a.dtype).eps)
    spread = float(np.max(np.abs(delta - c))) if a.size else 0.0
    np.testing.assert_allclose(p1, p2, rtol=64 * eps + 4 * spread, atol=1e-30)
    l1 = np.asarray(xact.logsumexp(a, axis=axis)).astype(np.float64)
    l2 = np.asarray(xact.logsumexp(shifted, axis=axis)).astype(np.float64)
    np.testing.assert_allclose(
        l2 - c, l1, rtol=0, atol=(8 * eps + spread) * (np.max(np.abs(a)) + abs(c) + 1)
    )


@SETTINGS
@given(logits())
def test_backends_agree(data):
    a, axis = data
    want_sm = np.asarray(xact.softmax(a, axis=axis))
    want_lsm = np.asarray(xact.log_softmax(a, axis=axis))
    want_lse = np.asarray(xact.logsumexp(a, axis=axis))
    rtol = 1e-5 if a.dtype == np.float32 else 1e-12
    for name in REQUIRED[1:]:
        bk = get_backend(name)
        x = bk.asarray(a)
        bk.check(xact.softmax(x, axis=axis), want_sm, dtype=str(a.dtype), rtol=rtol, atol=1e-37)
        bk.check(
            xact.log_softmax(x, axis=axis), want_lsm, dtype=str(a.dtype), rtol=rtol, atol=1e-30
        )
        bk.check(xact.logsumexp(x, axis=axis), want_lse, dtype=str(a.dtype), rtol=rtol, atol=1e-30)


@SETTINGS
@given(
    hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=6), elements=st.floats(-1e4, 1e4)),
    st.data(),
)
def test_weighted_matches_scipy(a, data):
    import scipy.special as sc

    b = data.draw(hnp.arrays(np.float64, a.shape, elements=st.floats(-3, 3)))
    lse, sign = xact.logsumexp(a, b=b, return_sign=True)
    want, wsign = sc.logsumexp(a, b=b, return_sign=True)
    if np.isfinite(want):
        # Cancellation between weights is ill-conditioned: compare the sums.
        got_sum = float(sign) * math.exp(float(lse) - float(np.max(a)))
        want_sum = float(wsign) * math.exp(float(want) - float(np.max(a)))
        scale = float(np.sum(np.abs(b) * np.exp(a - np.max(a))))
        assert abs(got_sum - want_sum) <= 1e-12 * scale + 1e-300


@pytest.mark.parametrize("func", ["sigmoid", "log_sigmoid", "softplus"])
@SETTINGS
@given(
    x=hnp.arrays(
        np.float64, hnp.array_shapes(max_dims=2, max_side=8), elements=st.floats(allow_nan=False)
    )
)
def test_sigmoid_family_monotone_and_bounded(func, x):
    y = np.asarray(getattr(xact, func)(x))
    assert y.shape == x.shape and y.dtype == x.dtype
    order = np.argsort(x.ravel(), kind="stable")
    ys = y.ravel()[order]
    assert np.all(ys[1:] >= ys[:-1])
    if func == "sigmoid":
        assert np.all((y >= 0) & (y <= 1))
    elif func == "log_sigmoid":
        assert np.all(y <= 0)
    else:
        assert np.all(y >= 0) and np.all(y >= x)
