"""logsumexp, softmax, log_softmax, softmin on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sc

import xact
from xact import _fastpaths

INF = math.inf
NAN = math.nan
FLOATS = ["float32", "float64"]


# --------------------------------------------------------------------------
# The classic examples


@pytest.mark.parametrize("dtype", FLOATS)
def test_classic_examples(backend, dtype):
    x = backend.asarray([2.0, 1.0, 0.1], dtype=dtype)
    backend.check(
        xact.softmax(x), [0.65900114, 0.24243297, 0.09856589], dtype=dtype, shape=(3,), rtol=1e-7
    )
    backend.check(
        xact.log_softmax(x),
        [-0.41703002, -1.41703002, -2.31703002],
        dtype=dtype,
        shape=(3,),
        rtol=1e-7,
    )
    backend.check(xact.logsumexp(x), 2.41703002, dtype=dtype, shape=(), rtol=1e-7)
    backend.check(xact.softmin(-x), [0.65900114, 0.24243297, 0.09856589], dtype=dtype, rtol=1e-7)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [0, 1, -1, (0, 1), None, (1, 2), (0, 2)])
def test_matches_scipy_random(backend, dtype, axis):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 5)) * 5).astype(dtype)
    x = backend.asarray(a)
    want_lse = sc.logsumexp(a.astype(np.float64), axis=axis)
    for keepdims in (False, True):
        want = sc.logsumexp(a.astype(np.float64), axis=axis, keepdims=keepdims)
        backend.check(
            xact.logsumexp(x, axis=axis, keepdims=keepdims),
            want,
            dtype=dtype,
            shape=np.shape(want),
            rtol=1e-6 if dtype == "float32" else 1e-13,
            # results near 0 come from cancellation, inherent to the dtype
            atol=float(np.finfo(dtype).eps) * float(np.max(np.abs(a))),
        )
    if axis is None:
        axis_sm = None
    else:
        axis_sm = axis
    want_sm = sc.softmax(a.astype(np.float64), axis=axis_sm)
    tol = 2e-6 if dtype == "float32" else 1e-13
    backend.check(xact.softmax(x, axis=axis_sm), want_sm, dtype=dtype, shape=a.shape, rtol=tol)
    backend.check(
        xact.log_softmax(x, axis=axis_sm),
        sc.log_softmax(a.astype(np.float64), axis=axis_sm),
        dtype=dtype,
        shape=a.shape,
        rtol=tol,
        atol=1e-6 if dtype == "float32" else 1e-14,
    )
    assert np.shape(want_lse) is not None


# --------------------------------------------------------------------------
# Special values: the rules of the core issue, row by row

SPECIAL = [
    # input, softmax, log_softmax, logsumexp
    ([INF, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -INF, -INF], INF),
    ([INF, INF, 0.0], [0.5, 0.5, 0.0], [-math.log(2), -math.log(2), -INF], INF),
    ([INF, INF, INF, -INF], [1 / 3, 1 / 3, 1 / 3, 0.0], [-math.log(3)] * 3 + [-INF], INF),
    ([-INF, -INF], [0.0, 0.0], [-INF, -INF], -INF),
    ([-INF, 0.0], [0.0, 1.0], [-INF, 0.0], 0.0),
    ([-INF, 3.0, 3.0], [0.0, 0.5, 0.5], [-INF, -math.log(2), -math.log(2)], 3 + math.log(2)),
    ([NAN, 0.0], [NAN, NAN], [NAN, NAN], NAN),
    ([NAN, INF], [NAN, NAN], [NAN, NAN], NAN),
    ([NAN, -INF], [NAN, NAN], [NAN, NAN], NAN),
    ([NAN, 1000.0], [NAN, NAN], [NAN, NAN], NAN),
    ([1000.0, 1000.0], [0.5, 0.5], [-math.log(2)] * 2, 1000 + math.log(2)),
    ([-1000.0, -1000.0], [0.5, 0.5], [-math.log(2)] * 2, -1000 + math.log(2)),
    ([1e308, -1e308], [1.0, 0.0], [0.0, -INF], 1e308),
    (
        [0.0, -40.0],
        [1.0, 4.248354255291589e-18],
        [-4.248354255291589e-18, -40.0],
        4.248354255291589e-18,
    ),
    ([7.0], [1.0], [0.0], 7.0),
    # Far below the maximum: the exponential underflows, the log does not.
    ([0.0, -1500.0], [1.0, 0.0], [0.0, -1500.0], 0.0),
    ([1e308, -1e308, -1e307], [1.0, 0.0, 0.0], [0.0, -INF, -1.1e308], 1e308),
]


@pytest.mark.parametrize(("x", "sm", "lsm", "lse"), SPECIAL)
def test_special_values(backend, x, sm, lsm, lse):
    dtype = "float64"
    a = backend.asarray(x, dtype=dtype)
    backend.check(xact.softmax(a), sm, dtype=dtype, shape=(len(x),), rtol=1e-14)
    backend.check(xact.log_softmax(a), lsm, dtype=dtype, shape=(len(x),), rtol=1e-14)
    backend.check(xact.logsumexp(a), lse, dtype=dtype, shape=(), rtol=1e-14)


@pytest.mark.parametrize("dtype", FLOATS)
def test_special_values_batched(backend, dtype):
    """All special rows in one 2-d array: one row cannot spoil another."""
    rows = [r for r in SPECIAL if len(r[0]) == 2 and abs(r[0][1]) < 1e30]
    a = backend.asarray([r[0] for r in rows], dtype=dtype)
    want_sm = np.array([r[1] for r in rows])
    backend.check(xact.softmax(a, axis=1), want_sm, dtype=dtype, shape=want_sm.shape, rtol=1e-6)
    want_lse = np.array([r[3] for r in rows])
    backend.check(xact.logsumexp(a, axis=1), want_lse, dtype=dtype, rtol=1e-6)
    # Along axis 0 the same rows are columns.
    at = backend.asarray(np.array([r[0] for r in rows]).T, dtype=dtype)
    backend.check(xact.softmax(at, axis=0), want_sm.T, dtype=dtype, rtol=1e-6)


# --------------------------------------------------------------------------
# where=


def test_where_masks_like_neg_inf(backend):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.0, 1.0, 2.0]])
    mask = np.array([[True, False, True], [False, False, False], [True, True, True]])
    x = backend.asarray(a)
    w = backend.asarray(mask)
    masked = np.where(mask, a, -np.inf)
    xm = backend.asarray(masked)
    for f in (xact.softmax, xact.log_softmax):
        got = backend.check(f(x, where=w), dtype="float64", shape=(3, 3))
        with _fastpaths.disabled():  # (where= takes the generic code: compare like with like)
            same = backend.to_numpy(f(xm))
        np.testing.assert_array_equal(got, same)
    got = backend.check(xact.softmax(x, where=w), dtype="float64")
    np.testing.assert_array_equal(got[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(got[0], [sc.expit(-2), 0.0, sc.expit(2)], rtol=1e-15)
    lsm = backend.to_numpy(xact.log_softmax(x, where=w))
    np.testing.assert_array_equal(lsm[1], [-INF, -INF, -INF])
    lse = backend.check(xact.logsumexp(x, axis=1, where=w), dtype="float64", shape=(3,))
    np.testing.assert_allclose(lse, [np.logaddexp(1, 3), -INF, sc.logsumexp([0, 1, 2])], rtol=1e-15)


def test_where_broadcasts(backend):
    a = np.arange(12.0).reshape(3, 4)
    x = backend.asarray(a)
    w = backend.asarray(np.array([True, True, False, True]))
    got = backend.check(xact.softmax(x, where=w), dtype="float64", shape=(3, 4))
    want = sc.softmax(np.where([True, True, False, True], a, -np.inf), axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_where_masks_nan_and_inf(backend):
    x = backend.asarray([NAN, INF, 1.0, 2.0])
    w = backend.asarray([False, False, True, True])
    backend.check(
        xact.softmax(x, where=w), [0, 0, sc.expit(-1), sc.expit(1)], dtype="float64", rtol=1e-15
    )
    backend.check(xact.logsumexp(x, where=w), np.logaddexp(1, 2), dtype="float64", rtol=1e-15)


# --------------------------------------------------------------------------
# Empty axes, 0-d input, shapes


def test_empty_axis(backend):
    x = backend.asarray(np.zeros((2, 0)))
    backend.check(xact.logsumexp(x, axis=1), [-INF, -INF], dtype="float64", shape=(2,))
    backend.check(xact.logsumexp(x, axis=1, keepdims=True), [[-INF], [-INF]], dtype="float64")
    backend.check(xact.logsumexp(x), -INF, dtype="float64", shape=())
    backend.check(xact.logsumexp(x, axis=0), np.zeros(0), dtype="float64", shape=(0,))
    backend.check(xact.softmax(x), np.zeros((2, 0)), dtype="float64", shape=(2, 0))
    backend.check(xact.log_softmax(x), np.zeros((2, 0)), dtype="float64", shape=(2, 0))
    lse, sign = xact.logsumexp(x, axis=1, return_sign=True)
    backend.check(lse, [-INF, -INF], dtype="float64", shape=(2,))
    backend.check(sign, [0.0, 0.0], dtype="float64")
    backend.check(xact.softmax(x, axis=0), np.zeros((2, 0)), dtype="float64", shape=(2, 0))


def test_zero_d_input(backend):
    x = backend.asarray(3.0)
    backend.check(xact.logsumexp(x), 3.0, dtype="float64", shape=())
    backend.check(xact.softmax(x, axis=None), 1.0, dtype="float64", shape=())
    backend.check(xact.log_softmax(x, axis=None), 0.0, dtype="float64", shape=())


# --------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool"])
def test_integer_and_bool_promote_to_default_float(backend, dtype):
    if dtype == "bool":
        a = np.array([True, False, True])
    else:
        a = np.array([1, 2, 100]).astype(dtype)
    x = backend.asarray(a, dtype=dtype)
    info = backend.xp.__array_namespace_info__()
    default = info.default_dtypes(device=backend.device)["real floating"]
    exp = a.astype(np.float64)
    backend.check(xact.softmax(x), sc.softmax(exp), dtype=default, rtol=1e-6, atol=1e-40)
    # SciPy rounds the dominant entry's log-probability to 0
    backend.check(xact.log_softmax(x), sc.log_softmax(exp), dtype=default, rtol=1e-6, atol=1e-30)
    backend.check(xact.logsumexp(x), sc.logsumexp(exp), dtype=default, rtol=1e-6)
    backend.check(xact.softmin(x), sc.softmax(-exp), dtype=default, rtol=1e-6, atol=1e-40)


def test_uint8_does_not_wrap(backend):
    x = backend.asarray(np.array([1, 2], dtype=np.uint8), dtype="uint8")
    backend.check(xact.softmax(x), sc.softmax([1.0, 2.0]), rtol=1e-6)
    # softmin negates: -uint8 would wrap to 255 and 254.
    backend.check(xact.softmin(x), sc.softmax([-1.0, -2.0]), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_returns_own_dtype(backend, dtype):
    a = np.array([[2.0, 1.0, 0.1], [30.0, -30.0, 0.0]])
    x = backend.asarray(a, dtype=dtype)
    want_dt = x.dtype
    rtol = 1e-2 if dtype == "bfloat16" else 2e-3
    a32 = backend.to_numpy(x).astype(np.float64)
    backend.check(xact.softmax(x), sc.softmax(a32, axis=-1), dtype=want_dt, rtol=rtol, atol=1e-3)
    backend.check(
        xact.log_softmax(x), sc.log_softmax(a32, axis=-1), dtype=want_dt, rtol=rtol, atol=1e-6
    )
    backend.check(xact.logsumexp(x, axis=-1), sc.logsumexp(a32, axis=-1), dtype=want_dt, rtol=rtol)


# --------------------------------------------------------------------------
# Options


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_temperature(backend, temperature):
    a = np.array([[2.0, 1.0, 0.1], [-3.0, 4.0, 5.0]])
    x = backend.asarray(a)
    backend.check(xact.softmax(x, temperature=temperature), sc.softmax(a / temperature, axis=-1))
    backend.check(
        xact.log_softmax(x, temperature=temperature), sc.log_softmax(a / temperature, axis=-1)
    )
    backend.check(xact.softmin(x, temperature=temperature), sc.softmax(-a / temperature, axis=-1))


def test_softmin_infinities(backend):
    x = backend.asarray([-INF, -INF, 0.0, INF])
    backend.check(xact.softmin(x), [0.5, 0.5, 0.0, 0.0], dtype="float64")


# --------------------------------------------------------------------------
# Weighted logsumexp (b=), return_sign, against SciPy

WEIGHTED = [
    ([1.0, 2.0], [1.0, -1.0]),
    ([1.0, 1.0], [1.0, -1.0]),
    ([INF, 1.0], [-1.0, 1.0]),
    ([INF, INF], [1.0, -1.0]),
    ([NAN, 1.0], [0.0, 1.0]),
    ([INF, 1.0], [0.0, 1.0]),
    ([-INF, 1.0], [3.0, 1.0]),
    ([1.0, 2.0], [0.0, 0.0]),
    ([1.0, 2.0], [-1.0, 0.5]),
    ([2.0, 1.0], [1.0, -3.0]),
    ([1.0, 1.0, 1.0], [1.0, 1.0, -3.0]),
    ([1.0, 1.0, 1.0], [1.0, 1.0, -2.0]),
    ([710.0, 0.0], [1.0, -1.0]),
    ([0.0, -40.0, -30.0], [2.0, 0.5, -0.25]),
    ([3.0, 3.0 - 1e-12], [1.0, -1.0]),
]


@pytest.mark.parametrize(("a", "b"), WEIGHTED)
def test_weighted_matches_scipy(backend, a, b):
    x, w = backend.asarray(a), backend.asarray(b)
    want, want_sign = sc.logsumexp(a, b=b, return_sign=True)
    lse, sign = xact.logsumexp(x, b=w, return_sign=True)
    backend.check(lse, want, dtype="float64", shape=(), rtol=1e-12)
    backend.check(sign, want_sign, dtype="float64", shape=(), equal=True)
    backend.check(xact.logsumexp(x, b=w), sc.logsumexp(a, b=b), dtype="float64", rtol=1e-12)


def test_weighted_broadcast_and_axis(backend):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 5))
    bw = rng.standard_normal((5,))
    x, w = backend.asarray(a), backend.asarray(bw)
    for axis in (0, 1, None):
        want, s = sc.logsumexp(a, b=bw, axis=axis, return_sign=True)
        lse, sign = xact.logsumexp(x, b=w, axis=axis, return_sign=True)
        backend.check(lse, want, dtype="float64", shape=np.shape(want), rtol=1e-12)
        backend.check(sign, s, dtype="float64", equal=True)
    # x broadcast against a larger b
    bb = rng.uniform(0.5, 2.0, (3, 4, 5))
    want = sc.logsumexp(a, b=bb, axis=-1)
    backend.check(xact.logsumexp(x, b=backend.asarray(bb), axis=-1), want, shape=(3, 4))


def test_weighted_dtypes(backend):
    x32 = backend.asarray([1.0, 2.0], dtype="float32")
    b64 = backend.asarray([1.0, 2.0], dtype="float64")
    backend.check(xact.logsumexp(x32, b=b64), sc.logsumexp([1.0, 2.0], b=[1, 2]), dtype="float64")
    backend.check(xact.logsumexp(x32, b=2.0), sc.logsumexp([1.0, 2.0], b=2.0), dtype="float32")
    bi = backend.asarray([1, 2], dtype="int32")
    backend.check(xact.logsumexp(x32, b=bi), sc.logsumexp([1.0, 2.0], b=[1, 2]), dtype="float32")


def test_weighted_with_where(backend):
    x = backend.asarray([1.0, 2.0, 3.0])
    b = backend.asarray([1.0, 2.0, 3.0])
    w = backend.asarray([True, False, True])
    backend.check(xact.logsumexp(x, b=b, where=w), sc.logsumexp([1.0, 3.0], b=[1.0, 3.0]))


def test_return_sign_unweighted(backend):
    x = backend.asarray([[1.0, 2.0], [-INF, -INF], [NAN, 1.0]])
    lse, sign = xact.logsumexp(x, axis=1, return_sign=True)
    backend.check(lse, [np.logaddexp(1, 2), -INF, NAN], dtype="float64", shape=(3,))
    backend.check(sign, [1.0, 0.0, NAN], dtype="float64", shape=(3,), equal=True)


# --------------------------------------------------------------------------
# Complex input (SciPy's conventions)

COMPLEX = [
    [1 + 1j, 2 - 1j],
    [7j, 0],
    [3j],
    [4j],
    [1j * math.pi],
    [-1j * math.pi],
    [1 + 3j, 1 - 3j],
    [1000 + 1j, 1000 - 1j],
    [complex(INF, 0), 0],
    [complex(INF, 1)],
    [complex(-INF, 3)],
    [complex(-INF, 0), complex(-INF, 1)],
]


@pytest.mark.parametrize("a", COMPLEX)
def test_complex_matches_scipy(backend, a):
    if backend.name == "array_api_strict":
        pass
    x = backend.asarray(np.array(a, dtype=np.complex128))
    want = sc.logsumexp(np.array(a, dtype=np.complex128))
    got = backend.check(xact.logsumexp(x), dtype="complex128", shape=())
    np.testing.assert_allclose(got.real, want.real, rtol=1e-13, atol=1e-15)
    if np.isfinite(want.imag):
        np.testing.assert_allclose(got.imag, want.imag, rtol=1e-13, atol=1e-15)


def test_complex_weighted_and_sign(backend):
    a = np.array([1 + 1j, 2 - 1j])
    x = backend.asarray(a)
    b = backend.asarray(np.array([1.0, -2.0]))
    backend.check(
        xact.logsumexp(x, b=b), sc.logsumexp(a, b=[1, -2]), dtype="complex128", rtol=1e-13
    )
    lse, sign = xact.logsumexp(x, return_sign=True)
    want_lse, want_sign = sc.logsumexp(a, return_sign=True)
    backend.check(lse, want_lse, dtype="float64", rtol=1e-13)
    backend.check(sign, want_sign, dtype="complex128", rtol=1e-13)
    z = backend.asarray(np.array([0j, 0j]))
    lse0, sign0 = xact.logsumexp(z, b=backend.asarray(np.array([1.0, -1.0])), return_sign=True)
    backend.check(lse0, -INF, equal=True)
    backend.check(sign0, 0j, equal=True)


def test_complex64(backend):
    x = backend.asarray(np.array([1 + 1j, 2], dtype=np.complex64))
    backend.check(
        xact.logsumexp(x), sc.logsumexp(np.array([1 + 1j, 2])), dtype="complex64", rtol=1e-6
    )


# --------------------------------------------------------------------------
# Inputs are never modified; Python input


def test_inputs_not_modified(backend):
    a = np.array([[INF, 1.0, NAN], [-INF, -INF, 2.0]])
    x = backend.asarray(a)
    b = backend.asarray(np.array([1.0, 0.0, 2.0]))
    w = backend.asarray(np.array([True, False, True]))
    for f in (xact.softmax, xact.log_softmax, xact.softmin, xact.logsumexp):
        f(x, where=w)
    xact.logsumexp(x, b=b, axis=1)
    np.testing.assert_array_equal(backend.to_numpy(x), a)
    np.testing.assert_array_equal(backend.to_numpy(b), [1.0, 0.0, 2.0])


def test_python_input_converted_with_numpy():
    got = xact.softmax([2.0, 1.0, 0.1])
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, sc.softmax([2.0, 1.0, 0.1]), rtol=1e-15)
    assert xact.logsumexp([[1, 2], [3, 4]]).dtype == np.float64
    assert float(xact.logsumexp(3.0)) == 3.0
    assert xact.log_softmax((1.0, 2.0)).shape == (2,)


# --------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("bad", ["abc", {"a": 1}, None, object(), [1, "a"], [[1, 2], [3]]])
def test_non_array_objects_are_type_errors(bad):
    for f in (xact.softmax, xact.log_softmax, xact.logsumexp, xact.softmin):
        with pytest.raises(TypeError, match="`x`"):
            f(bad)


def test_mixed_array_types():
    torch = pytest.importorskip("torch")
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match=r"`b` is a torch\.Tensor but `x` is a numpy\.ndarray"):
        xact.logsumexp(x, b=torch.tensor([1.0, 2.0], dtype=torch.float64))
    with pytest.raises(TypeError, match="`where`"):
        xact.softmax(x, where=torch.tensor([True, False]))


@pytest.mark.parametrize("axis", [2, -3, (0, 0), (0, -2), 1.5, "a", True])
def test_bad_axis(backend, axis):
    x = backend.asarray(np.zeros((2, 3)))
    for f in (xact.softmax, xact.log_softmax, xact.logsumexp):
        with pytest.raises((ValueError, TypeError), match="`axis`"):
            f(x, axis=axis)


def test_bad_where_and_b_shapes(backend):
    x = backend.asarray(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="`where`"):
        xact.softmax(x, where=backend.asarray(np.ones((2, 2), dtype=bool)))
    with pytest.raises(ValueError, match="`where`"):
        xact.softmax(x, where=backend.asarray(np.ones((4, 2, 3), dtype=bool)))
    with pytest.raises(TypeError, match="`where`"):
        xact.softmax(x, where=backend.asarray(np.ones((2, 3))))
    with pytest.raises(ValueError, match="`b`"):
        xact.logsumexp(x, b=backend.asarray(np.ones((4,))))


def test_complex_where_unsupported(backend):
    x = backend.asarray(np.array([1 + 1j, 2]))
    for f in (xact.softmax, xact.log_softmax, xact.softmin):
        with pytest.raises(TypeError, match="complex"):
            f(x)


@pytest.mark.parametrize("t", [0.0, -1.0, INF, NAN])
def test_bad_temperature(t):
    with pytest.raises(ValueError, match="`temperature`"):
        xact.softmax([1.0, 2.0], temperature=t)
    with pytest.raises(TypeError, match="`temperature`"):
        xact.softmax([1.0, 2.0], temperature="hot")


# --------------------------------------------------------------------------
# The xp= override: the namespace of the inputs, never a silent conversion


def _raw_module(backend):
    """The library module a user would pass (``torch``, ``jax.numpy``, ...)."""
    import importlib

    name = {"torch": "torch", "torch_cuda": "torch", "jax": "jax.numpy", "dask": "dask.array"}
    return importlib.import_module(name.get(backend.name, backend.xp.__name__))


@pytest.mark.parametrize("which", ["wrapper", "raw"])
def test_xp_override_uses_the_given_namespace(backend, which):
    xp = backend.xp if which == "wrapper" else _raw_module(backend)
    x = backend.asarray([2.0, 1.0, 0.1])
    want = [0.65900114, 0.24243297, 0.09856589]
    backend.check(xact.softmax(x, xp=xp), want, dtype="float64", shape=(3,), rtol=1e-7)
    backend.check(
        xact.logsumexp(x, xp=xp, b=2.0), 2.41703002 + math.log(2), dtype="float64", rtol=1e-7
    )
    backend.check(xact.sigmoid(x, xp=xp), sc.expit([2.0, 1.0, 0.1]), dtype="float64")


def test_xp_converts_python_input(backend):
    if backend.name == "torch_cuda":
        pytest.skip("Python input lands on torch's default device (the CPU), not CUDA")
    xp = _raw_module(backend)
    got = xact.softmax([2.0, 1.0, 0.1], xp=xp)
    backend.check(got, [0.65900114, 0.24243297, 0.09856589], shape=(3,), rtol=1e-6)


def test_xp_of_another_library_is_a_type_error():
    torch = pytest.importorskip("torch")
    import array_api_strict

    with pytest.raises(TypeError, match=r"`x` is a torch\.Tensor but `xp` is numpy"):
        xact.softmax(torch.asarray([1.0, 2.0]), xp=np)
    with pytest.raises(TypeError, match=r"`x` is a numpy\.ndarray but `xp` is array_api_strict"):
        xact.logsumexp(np.asarray([1.0, 2.0]), xp=array_api_strict)
    with pytest.raises(TypeError, match="`xp` must be an array namespace module"):
        xact.softmax(np.asarray([1.0]), xp="numpy")


@pytest.mark.parametrize("dtype", FLOATS)
def test_log_softmax_far_below_the_maximum(backend, dtype):
    """Entries beyond the exponential's cut-off keep a finite log-probability
    (x - m - lse), also where m - 1000 rounds to m (float32 near 1e30)."""
    a = np.array([[0.0, -1500.0, -3000.0, 2.0], [1e30, 0.0, -1e30, 1e30]]).astype(dtype)
    x = backend.asarray(a)
    ref = a.astype(np.float64)
    d = ref - ref.max(axis=1, keepdims=True)  # exact here; then x - lse without rounding m away
    want = d - np.log(np.sum(np.exp(d), axis=1, keepdims=True))
    backend.check(
        xact.log_softmax(x, axis=1),
        want,
        dtype=dtype,
        shape=a.shape,
        rtol=1e-6 if dtype == "float32" else 1e-15,
    )


def test_log_softmax_float32_spread_beyond_the_range(backend):
    """A spread wider than float32's range: -inf, correctly rounded, no warning."""
    x = backend.asarray(np.array([[1e38, -3.4e38]], dtype=np.float32))
    backend.check(xact.log_softmax(x, axis=1), [[0.0, -INF]], dtype="float32", equal=True)
