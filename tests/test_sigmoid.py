"""sigmoid, log_sigmoid, softplus on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sc

import xact

INF = math.inf
NAN = math.nan


def _softplus_ref(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


REFS = {
    "sigmoid": sc.expit,
    "log_sigmoid": sc.log_expit,
    "softplus": _softplus_ref,
}


@pytest.mark.parametrize("func", sorted(REFS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_and_metadata(backend, func, dtype):
    a = np.array([[-800.0, -50.0, -1.0, -1e-10, 0.0], [1e-10, 1.0, 20.0, 50.0, 800.0]]).astype(
        dtype
    )
    got = getattr(xact, func)(backend.asarray(a))
    want = REFS[func](a.astype(np.float64))
    backend.check(got, want, dtype=dtype, shape=(2, 5), rtol=2e-7 if dtype == "float32" else 1e-15)


@pytest.mark.parametrize("func", sorted(REFS))
def test_special_values(backend, func):
    a = np.array([INF, -INF, NAN, 0.0, -0.0])
    want = {
        "sigmoid": [1.0, 0.0, NAN, 0.5, 0.5],
        "log_sigmoid": [0.0, -INF, NAN, -math.log(2), -math.log(2)],
        "softplus": [INF, 0.0, NAN, math.log(2), math.log(2)],
    }[func]
    backend.check(getattr(xact, func)(backend.asarray(a)), want, dtype="float64", rtol=1e-15)


def test_classic_value(backend):
    backend.check(xact.sigmoid(backend.asarray(2.0)), 0.8807970779778823, dtype="float64", shape=())


def test_subnormal_results(backend):
    """sigmoid(-720) is 2.03e-313 in float64, not 0 (also log_sigmoid(720)).

    XLA on the CPU flushes subnormals to zero, so JAX gives exactly 0 there
    (documented in the Notes of sigmoid).
    """
    x = backend.asarray([-720.0, -740.0])
    if backend.name == "jax":
        backend.check(xact.sigmoid(x), [0.0, 0.0], dtype="float64", equal=True)
        backend.check(xact.softplus(x), [0.0, 0.0], dtype="float64", equal=True)
        return
    got = backend.check(xact.sigmoid(x), dtype="float64")
    assert got[0] > 0
    np.testing.assert_allclose(got[0], 2.0322308017245996e-313, rtol=1e-9)
    ls = backend.check(xact.log_sigmoid(-x), dtype="float64")
    assert ls[0] < 0
    sp = backend.check(xact.softplus(x), dtype="float64")
    np.testing.assert_allclose(sp[0], 2.0322308017245996e-313, rtol=1e-9)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int64", "bool"])
def test_integers_promote(backend, dtype):
    a = np.array([0, 1, 3]).astype(dtype)
    x = backend.asarray(a, dtype=dtype)
    default = backend.xp.__array_namespace_info__().default_dtypes(device=backend.device)[
        "real floating"
    ]
    for func, ref in REFS.items():
        backend.check(getattr(xact, func)(x), ref(a.astype(np.float64)), dtype=default, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(backend, dtype):
    x = backend.asarray([-20.0, -1.0, 0.0, 2.0, 30.0], dtype=dtype)
    a = backend.to_numpy(x).astype(np.float64)
    for func, ref in REFS.items():
        backend.check(getattr(xact, func)(x), ref(a), dtype=x.dtype, rtol=1e-2, atol=1e-7)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 10.0])
def test_softplus_beta(backend, beta):
    a = np.array([-800.0, -3.0, 0.0, 3.0, 800.0])
    want = np.logaddexp(0.0, beta * a) / beta
    backend.check(xact.softplus(backend.asarray(a), beta=beta), want, dtype="float64", rtol=1e-15)


@pytest.mark.parametrize("beta", [0.0, -1.0, INF, NAN])
def test_softplus_bad_beta(beta):
    with pytest.raises(ValueError, match="`beta`"):
        xact.softplus([1.0], beta=beta)


def test_complex_rejected(backend):
    x = backend.asarray(np.array([1 + 1j]))
    for func in REFS:
        with pytest.raises(TypeError, match="complex"):
            getattr(xact, func)(x)


def test_non_arrays_rejected():
    for func in REFS:
        with pytest.raises(TypeError, match="`x`"):
            getattr(xact, func)("1.0")
    assert float(xact.sigmoid(0)) == 0.5
    np.testing.assert_allclose(xact.softplus([[0.0, 1.0]]), [[math.log(2), math.log1p(math.e)]])


def test_not_modified(backend):
    a = np.array([-1.0, 0.0, INF, NAN])
    x = backend.asarray(a)
    for func in REFS:
        getattr(xact, func)(x)
    np.testing.assert_array_equal(backend.to_numpy(x), a)


@pytest.mark.parametrize("func", sorted(REFS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)])
def test_empty_input(backend, func, dtype, shape):
    x = backend.asarray(np.zeros(shape), dtype=dtype)
    backend.check(getattr(xact, func)(x), np.zeros(shape), dtype=dtype, shape=shape)


def test_softplus_large_beta_does_not_overflow(backend):
    """beta * x is never formed: softplus(1e300, beta=1e10) is 1e300, not inf."""
    x = backend.asarray([1e300, -1e300, 3.0, -3.0])
    want = [1e300, 0.0, 3.0 + math.log1p(math.exp(-3e10)) / 1e10, 0.0]
    backend.check(xact.softplus(x, beta=1e10), want, dtype="float64", rtol=1e-15)
