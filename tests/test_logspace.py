"""The log-space toolkit on every backend: logcumsumexp, logmeanexp,
log1mexp, softplus_inverse, logit.

Values against float64 references (SciPy / NumPy on float64 copies of the
input), the special-value rules row by row with exact expected outputs, the
dtype/device/shape rules through ``backend.check``, argument errors, and
traced (``jax.jit``), lazy (Dask, also chunked along the scanned axis) and
differentiated (torch autograd, ``jax.grad``) execution. The ULP bounds are
in ``test_toolkit_accuracy.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.special as sc
from hypothesis import given, settings
from hypothesis import strategies as st

import accuracy_toolkit as acc
import xact

INF = math.inf
NAN = math.nan
FLOATS = ["float32", "float64"]
ELEMENTWISE = ["log1mexp", "softplus_inverse", "logit"]


def ref_logcumsumexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sequential float64 reference (exact enough away from cancellation)."""
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    out = np.empty_like(a)
    for idx in np.ndindex(a.shape[:-1]):
        row = a[idx]
        out[idx] = [sc.logsumexp(row[: i + 1]) for i in range(row.size)]
    return np.moveaxis(out, -1, axis)


def ref_logmeanexp(a, axis=None, keepdims=False, where=None):
    a = np.asarray(a, dtype=np.float64)
    if where is None:
        where = np.ones(a.shape, dtype=bool)
    where = np.broadcast_to(where, a.shape)
    lse = sc.logsumexp(np.where(where, a, -INF), axis=axis, keepdims=keepdims)
    n = np.sum(where, axis=axis, keepdims=keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lse - np.log(n)


def _mp(f: Callable[[float], Any]) -> Callable[[np.ndarray], np.ndarray]:
    def ref(a: np.ndarray) -> np.ndarray:
        return np.array([float(f(v)) for v in np.ravel(a)]).reshape(np.shape(a))

    return ref


REFS: dict[str, Callable[[np.ndarray], np.ndarray]] = {  # 50-digit mpmath
    "log1mexp": _mp(acc.ref_log1mexp),
    "softplus_inverse": _mp(acc.ref_softplus_inverse),
    "logit": _mp(acc.ref_logit),
}
DOMAIN = {
    "log1mexp": np.array([1e-30, 1e-5, 0.3, math.log(2), 0.7, 2.0, 30.0, 300.0]),
    "softplus_inverse": np.array([1e-30, 1e-5, 0.3, 0.35, 0.69, 0.7, 1.4, 2.0, 30.0, 300.0]),
    "logit": np.array([1e-30, 1e-5, 0.2, 0.25, 0.4999, 0.5, 0.6, 0.75, 0.9, 1 - 2**-20]),
}


# --------------------------------------------------------------------------
# logcumsumexp


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("reverse", [False, True])
def test_logcumsumexp_matches_reference(backend, dtype, axis, reverse):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((3, 5, 6)) * 20 + 3).astype(dtype)
    x = backend.asarray(a)
    src = np.flip(a, axis) if reverse else a
    want = ref_logcumsumexp(src, axis)
    if reverse:
        want = np.flip(want, axis)
    tol = 2e-6 if dtype == "float32" else 1e-13
    got = xact.logcumsumexp(x, axis=axis, reverse=reverse)
    backend.check(got, want, dtype=dtype, shape=a.shape, rtol=tol, atol=tol)


def test_logcumsumexp_global_shift_is_not_enough(backend):
    x = backend.asarray([-1000.0, 0.0])
    backend.check(xact.logcumsumexp(x), [-1000.0, 0.0], dtype="float64", equal=True)
    x = backend.asarray([0.0, -1000.0, 1000.0, -2000.0])
    backend.check(xact.logcumsumexp(x), [0.0, 0.0, 1000.0, 1000.0], dtype="float64", equal=True)
    backend.check(
        xact.logcumsumexp(x, reverse=True),
        [1000.0, 1000.0, 1000.0, -2000.0],
        dtype="float64",
        equal=True,
    )


def test_logcumsumexp_long_run_of_ties(backend):
    n = 1000
    x = backend.asarray(np.full(n, 2.5))
    want = 2.5 + np.log(np.arange(1, n + 1))
    backend.check(xact.logcumsumexp(x), want, dtype="float64", rtol=4e-16)
    backend.check(xact.logcumsumexp(x, reverse=True), want[::-1], dtype="float64", rtol=4e-16)


# input, forward result, reverse result
SCAN_SPECIAL = [
    ([-INF, -INF, -INF], [-INF, -INF, -INF], [-INF, -INF, -INF]),
    ([-INF, 0.0, -INF, 0.0], [-INF, 0.0, 0.0, math.log(2)], [math.log(2), math.log(2), 0.0, 0.0]),
    ([1.0, INF, 2.0, -INF], [1.0, INF, INF, INF], [INF, INF, 2.0, -INF]),
    ([1.0, NAN, INF, 2.0], [1.0, NAN, NAN, NAN], [NAN, NAN, INF, 2.0]),
    ([INF, NAN, -INF], [INF, NAN, NAN], [NAN, NAN, -INF]),
    ([INF, INF], [INF, INF], [INF, INF]),
    ([-INF, NAN], [-INF, NAN], [NAN, NAN]),
    ([1e308, 1e308, -1e308], [1e308, 1e308, 1e308], [1e308, 1e308, -1e308]),
]


@pytest.mark.parametrize("row", range(len(SCAN_SPECIAL)))
def test_logcumsumexp_special_values(backend, row):
    a, fwd, rev = SCAN_SPECIAL[row]
    x = backend.asarray(np.array(a))
    backend.check(xact.logcumsumexp(x), fwd, dtype="float64", shape=(len(a),), rtol=1e-15)
    backend.check(xact.logcumsumexp(x, reverse=True), rev, dtype="float64", rtol=1e-15)


def test_logcumsumexp_shapes_and_errors(backend):
    x = backend.asarray(np.zeros((2, 0, 3)))
    backend.check(xact.logcumsumexp(x, axis=1), dtype="float64", shape=(2, 0, 3))
    backend.check(xact.logcumsumexp(x, axis=2), dtype="float64", shape=(2, 0, 3))
    with pytest.raises(ValueError, match="`x` must have at least one dimension"):
        xact.logcumsumexp(backend.asarray(np.float64(1.0)))
    x = backend.asarray(np.zeros((2, 3)))
    for axis in (2, -3):
        with pytest.raises(ValueError, match="`axis`"):
            xact.logcumsumexp(x, axis=axis)
    for axis in (None, (0,), 1.0, True):
        with pytest.raises(TypeError, match="`axis`"):
            xact.logcumsumexp(x, axis=axis)
    with pytest.raises(TypeError, match="`reverse`"):
        xact.logcumsumexp(x, reverse=1)


def test_logcumsumexp_needs_a_known_length():
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.arange(6.0), chunks=3)
    x = x[x > 1]  # unknown chunk sizes
    with pytest.raises(ValueError, match="length of `x` along `axis`"):
        xact.logcumsumexp(x)
    got = xact.logcumsumexp(x.compute_chunk_sizes())
    np.testing.assert_allclose(got.compute(), ref_logcumsumexp(np.arange(2.0, 6.0)), rtol=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e4, 1e4), st.sampled_from([-INF, 0.0, 5.0])), min_size=1, max_size=70
    )
)
def test_logcumsumexp_prefixes_are_logsumexps(values):
    a = np.array(values)
    got = xact.logcumsumexp(a)
    want = np.array([xact.logsumexp(a[: i + 1]) for i in range(a.size)])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-13)
    np.testing.assert_array_equal(
        xact.logcumsumexp(a, reverse=True), xact.logcumsumexp(a[::-1])[::-1]
    )


# --------------------------------------------------------------------------
# logmeanexp


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [None, 1, (0, 2)])
def test_logmeanexp_matches_reference(backend, dtype, axis):
    rng = np.random.default_rng(2)
    a = (rng.standard_normal((3, 4, 5)) * 10 + 20).astype(dtype)
    tol = 2e-6 if dtype == "float32" else 1e-13
    for keepdims in (False, True):
        want = ref_logmeanexp(a, axis=axis, keepdims=keepdims)
        got = xact.logmeanexp(backend.asarray(a), axis=axis, keepdims=keepdims)
        backend.check(got, want, dtype=dtype, shape=np.shape(want), rtol=tol)


def test_logmeanexp_where(backend):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 5))
    mask = rng.uniform(size=(4, 5)) < 0.6
    mask[1] = False  # nothing to average: NaN
    mask[2] = True
    want = ref_logmeanexp(a, axis=1, where=mask)
    assert np.isnan(want[1])
    got = xact.logmeanexp(backend.asarray(a), axis=1, where=backend.asarray(mask))
    backend.check(got, want, dtype="float64", shape=(4,), rtol=1e-14)
    # a mask that broadcasts: a column mask
    col = np.array([True, False, True, True, False])
    got = xact.logmeanexp(backend.asarray(a), axis=1, where=backend.asarray(col))
    backend.check(got, ref_logmeanexp(a, axis=1, where=col), dtype="float64", rtol=1e-14)


def test_logmeanexp_of_equal_values_is_exact(backend):
    for c in (0.0, 1e-3, -2.5, 0.1):
        x = backend.asarray(np.full((3, 1000), c))
        backend.check(xact.logmeanexp(x, axis=1), np.full(3, c), dtype="float64", equal=True)
    x = backend.asarray(np.full(1000, 0.1, dtype=np.float32))
    backend.check(xact.logmeanexp(x), np.float32(0.1), dtype="float32", equal=True)


LME_SPECIAL = [
    ([-INF, -INF], -INF),
    ([0.0, -INF], -math.log(2)),
    ([INF, 1.0], INF),
    ([INF, INF, -INF], INF),
    ([NAN, INF], NAN),
    ([1.0, NAN], NAN),
]


@pytest.mark.parametrize("row", range(len(LME_SPECIAL)))
def test_logmeanexp_special_values(backend, row):
    a, want = LME_SPECIAL[row]
    got = xact.logmeanexp(backend.asarray(np.array(a)))
    backend.check(got, want, dtype="float64", shape=(), rtol=1e-15)


def test_logmeanexp_empty(backend):
    x = backend.asarray(np.zeros((3, 0)))
    backend.check(xact.logmeanexp(x, axis=1), np.full(3, NAN), dtype="float64", shape=(3,))
    backend.check(xact.logmeanexp(x, axis=0), np.zeros(0), dtype="float64", shape=(0,))
    backend.check(xact.logmeanexp(x), NAN, dtype="float64", shape=())


def test_logmeanexp_errors(backend):
    x = backend.asarray(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="`axis`"):
        xact.logmeanexp(x, axis=2)
    with pytest.raises(TypeError, match="`where`"):
        xact.logmeanexp(x, where=backend.asarray(np.ones((2, 3))))
    with pytest.raises(ValueError, match="`where`"):
        xact.logmeanexp(x, where=backend.asarray(np.ones((3, 2), dtype=bool)))
    with pytest.raises(TypeError, match="complex"):
        xact.logmeanexp(backend.asarray(np.array([1 + 1j])))


# --------------------------------------------------------------------------
# Elementwise: log1mexp, softplus_inverse, logit


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("func", ELEMENTWISE)
def test_elementwise_matches_reference(backend, dtype, func):
    a = DOMAIN[func].astype(dtype)
    want = REFS[func](a.astype(np.float64)).astype(dtype)  # 50-digit mpmath, rounded
    got = getattr(xact, func)(backend.asarray(a))
    backend.check(got, want, dtype=dtype, shape=a.shape, rtol=2e-6 if dtype == "float32" else 1e-14)


ELEM_SPECIAL = {
    "log1mexp": ([0.0, INF, -1e-300, -1.0, -INF, NAN], [-INF, 0.0, NAN, NAN, NAN, NAN]),
    "softplus_inverse": ([0.0, INF, -1e-300, -1.0, -INF, NAN], [-INF, INF, NAN, NAN, NAN, NAN]),
    "logit": ([0.0, 1.0, -1e-300, 1.5, INF, -INF, NAN], [-INF, INF, NAN, NAN, NAN, NAN, NAN]),
}


@pytest.mark.parametrize("func", ELEMENTWISE)
def test_elementwise_special_values(backend, func):
    a, want = ELEM_SPECIAL[func]
    got = getattr(xact, func)(backend.asarray(np.array(a)))
    backend.check(got, want, dtype="float64", shape=(len(a),), equal=True)


def test_logit_eps_clamps_like_torch(backend):
    a = np.array([0.0, 1e-9, 0.3, 1 - 1e-9, 1.0, NAN])
    got = xact.logit(backend.asarray(a), eps=1e-6)
    want = sc.logit(np.clip(a, 1e-6, 1 - 1e-6))
    backend.check(got, want, dtype="float64", rtol=1e-13)
    backend.check(
        xact.logit(backend.asarray(a), eps=0.5), [0, 0, 0, 0, 0, NAN], dtype="float64", equal=True
    )
    backend.check(xact.logit(backend.asarray(a), eps=0), sc.logit(a), dtype="float64", rtol=1e-13)
    torch = pytest.importorskip("torch")
    for dt in (torch.float32, torch.float64):
        t = torch.tensor(a, dtype=dt)
        np.testing.assert_allclose(
            xact.logit(t, eps=1e-6).numpy(), torch.logit(t, eps=1e-6).numpy(), rtol=1e-6
        )


@pytest.mark.parametrize("eps", [-0.1, 0.6, INF, NAN])
def test_logit_bad_eps(eps):
    with pytest.raises(ValueError, match="`eps`"):
        xact.logit([0.5], eps=eps)
    with pytest.raises(TypeError, match="`eps`"):
        xact.logit([0.5], eps="small")


def test_round_trips(backend):
    a = np.array([-30.0, -2.0, -1e-3, 0.0, 1e-3, 0.5, 3.0, 30.0])
    x = backend.asarray(a)
    backend.check(
        xact.softplus_inverse(xact.softplus(x)), a, dtype="float64", rtol=1e-13, atol=1e-15
    )
    # sigmoid(x) near 1 keeps only |x| * eps of 1 - p: logit recovers x <= 3
    backend.check(xact.logit(xact.sigmoid(x[:7])), a[:7], dtype="float64", rtol=1e-13, atol=1e-15)
    # 1 - e^{-y} = e^{-y} expm1(y): log1mexp(y) = softplus_inverse(y) - y
    # (checked where the difference does not cancel)
    y = np.array([1e-3, 0.1, 0.5, 2.0])
    yb = backend.asarray(y)
    backend.check(
        xact.log1mexp(yb), backend.to_numpy(xact.softplus_inverse(yb)) - y, rtol=1e-14, atol=1e-16
    )


def test_elementwise_errors():
    for f, name in ((xact.log1mexp, "`x`"), (xact.softplus_inverse, "`y`"), (xact.logit, "`p`")):
        with pytest.raises(TypeError, match=name):
            f("abc")
        with pytest.raises(TypeError, match="complex"):
            f(np.array([1 + 1j]))


# --------------------------------------------------------------------------
# dtypes, devices, inputs


CALLS: dict[str, Callable[..., Any]] = {
    "logcumsumexp": lambda x: xact.logcumsumexp(x, axis=0),
    "logcumsumexp_reverse": lambda x: xact.logcumsumexp(x, axis=1, reverse=True),
    "logmeanexp": lambda x: xact.logmeanexp(x, axis=1),
    "logmeanexp_all": lambda x: xact.logmeanexp(x, keepdims=True),
    "log1mexp": xact.log1mexp,
    "softplus_inverse": xact.softplus_inverse,
    "logit": lambda x: xact.logit(x, eps=1e-3),
}


@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_integer_and_bool_promote_to_default_float(backend, dtype, name):
    a = np.array([[1, 0, 1], [0, 1, 1]]).astype(dtype)
    x = backend.asarray(a, dtype=dtype)
    default = backend.xp.__array_namespace_info__().default_dtypes(device=backend.device)[
        "real floating"
    ]
    got, want = CALLS[name](x), np.asarray(CALLS[name](a.astype(np.float64)))
    # in float32, logit's clamp 1 - eps rounds (as in torch.logit)
    backend.check(got, want, dtype=default, shape=want.shape, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_low_precision_returns_own_dtype(backend, dtype, name):
    a = np.array([[0.5, 1.0, 2.0], [3.0, 0.25, 1.5]])
    x = backend.asarray(a, dtype=dtype)
    a32 = backend.to_numpy(x).astype(np.float64)
    want = np.asarray(CALLS[name](a32))
    rtol = 1e-2 if dtype == "bfloat16" else 2e-3
    backend.check(CALLS[name](x), want, dtype=x.dtype, shape=want.shape, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_input_is_not_modified_and_lists_work(name):
    a = np.array([[0.5, 1.0, 2.0], [3.0, 0.25, 1.5]])
    keep = a.copy()
    got = CALLS[name](a)
    np.testing.assert_array_equal(a, keep)
    np.testing.assert_array_equal(CALLS[name](a.tolist()), got)


def test_mixed_libraries_are_rejected():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"`where` is a torch\.Tensor but `x` is a numpy\.ndarray"):
        xact.logmeanexp(np.zeros(2), where=torch.tensor([True, False]))


def test_public_names():
    import xact._logexp as le
    import xact._logspace as ls

    for mod in (le, ls):
        assert all(getattr(xact, n) is getattr(mod, n) for n in mod.__all__)
    assert list(xact.__all__) == sorted(xact.__all__, key=lambda s: (s != "__version__", s))


# --------------------------------------------------------------------------
# jax.jit, Dask


ROWS = np.array(
    [
        [2.0, 1.0, 0.1, -3.0, 0.5, 0.9],
        [-INF, -INF, 0.2, -INF, 0.3, 0.7],
        [0.4, INF, 0.3, 1.0, NAN, 0.1],
        [0.0, -40.0, -30.0, 5.0, 1e-9, 0.0],
        [3.0, 3.0, 0.6, -INF, 0.6, 0.6],
    ]
)
LAZY_CALLS = dict(CALLS, logmeanexp_where=lambda x: xact.logmeanexp(x, axis=0, where=x > 0.2))


@pytest.mark.parametrize("name", sorted(LAZY_CALLS))
def test_jax_jit_matches_eager(name):
    from conftest import get_backend

    bk = get_backend("jax")
    import jax

    f = LAZY_CALLS[name]
    x = bk.asarray(ROWS)
    eager = bk.to_numpy(f(x))
    # XLA's CPU log and log1p are not correctly rounded, and its fused (jit)
    # and single-op (eager) kernels differ by up to ~20 ULP: not equal=True.
    bk.check(jax.jit(f)(x), eager, dtype="float64", shape=eager.shape, rtol=1e-13)
    bk.check(bk.asarray(eager), np.asarray(f(ROWS)), rtol=1e-13)


@pytest.mark.parametrize("name", sorted(LAZY_CALLS))
@pytest.mark.parametrize("chunks", [(5, 6), (2, 2), (1, 5)])
def test_dask_is_lazy_and_correct(name, chunks, no_compute):
    from conftest import get_backend

    bk = get_backend("dask")
    import dask.array as da

    f = LAZY_CALLS[name]
    x = da.from_array(ROWS, chunks=chunks)
    with no_compute():
        lazy = f(x)
    want = np.asarray(f(ROWS))
    bk.check(lazy, want, dtype="float64", shape=want.shape, equal=True)


# --------------------------------------------------------------------------
# Gradients


def _grad(bk, f: Callable[[Any], Any], a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Gradient of ``sum(v * f(x))`` over the finite outputs, as NumPy."""
    if bk.name.startswith("torch"):
        import torch

        x = torch.tensor(a, dtype=torch.float64, device=bk.device, requires_grad=True)
        out = f(x)
        vt = torch.tensor(v, dtype=torch.float64, device=bk.device)
        loss = torch.sum(torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * vt)
        loss.backward()
        assert x.grad is not None
        return x.grad.cpu().numpy()
    import jax
    import jax.numpy as jnp

    def loss(x):
        out = f(x)
        return jnp.sum(jnp.where(jnp.isfinite(out), out, 0.0) * v)

    # jit: eager JAX would compile each of the many small operations of
    # the backward pass separately, seconds per new shape
    return np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(a)))


def test_grad_logcumsumexp(ad_backend):
    rng = np.random.default_rng(6)
    a = np.array([[2.0, 1.0, 0.1, -3.0, 2.0, 40.0], [0.0, -1000.0, 1000.0, -2000.0, 1000.0, 999.0]])
    v = rng.standard_normal(a.shape)
    y = ref_logcumsumexp(a)
    # d y_i / d x_j = exp(x_j - y_i) for j <= i
    want = np.array(
        [
            [
                sum(v[r, i] * np.exp(a[r, j] - y[r, i]) for i in range(j, a.shape[1]))
                for j in range(a.shape[1])
            ]
            for r in range(2)
        ]
    )
    g = _grad(ad_backend, xact.logcumsumexp, a, v)
    np.testing.assert_allclose(g, want, rtol=1e-13, atol=1e-300)
    g = _grad(ad_backend, lambda x: xact.logcumsumexp(x, reverse=True), a, v)
    flipped = _grad(ad_backend, xact.logcumsumexp, a[:, ::-1].copy(), v[:, ::-1].copy())
    np.testing.assert_allclose(g, flipped[:, ::-1], rtol=1e-13, atol=1e-300)


def test_grad_logcumsumexp_special_rows(ad_backend):
    """-inf prefixes and ties: gradients finite, 0 for no mass, ties split evenly."""
    g = _grad(
        ad_backend,
        xact.logcumsumexp,
        np.array([[-INF, -INF, 1.0, 1.0, 1.0]]),
        np.array([[1.0, 1.0, 0.0, 0.0, 1.0]]),
    )
    np.testing.assert_array_equal(g[0, :2], 0.0)
    np.testing.assert_allclose(g[0, 2:], [1 / 3] * 3, rtol=1e-15)
    g = _grad(ad_backend, xact.logcumsumexp, ROWS, np.ones(ROWS.shape))
    assert np.all(np.isfinite(g)), g


def test_grad_logmeanexp(ad_backend):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 4))
    a[1] = 0.25  # equal values: the log1p branch
    a[2, 0] = 40.0  # a dominant entry: the log branch
    g = _grad(ad_backend, lambda x: xact.logmeanexp(x, axis=1), a, np.ones(3))
    np.testing.assert_allclose(g, sc.softmax(a, axis=1), rtol=1e-13, atol=1e-300)
    g = _grad(
        ad_backend,
        lambda x: xact.logmeanexp(x, axis=1),
        np.array([[-INF, -INF], [0.0, -INF]]),
        np.ones(2),
    )
    np.testing.assert_array_equal(g, [[0.0, 0.0], [1.0, 0.0]])


def test_grad_elementwise(ad_backend):
    x = np.array([1e-8, 0.3, math.log(2), 0.7, 1.0, 1.5, 30.0, 300.0, -1.0, NAN])
    v = np.ones_like(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = 1 / np.expm1(x)
        want[x < 0] = 0.0
    g = _grad(ad_backend, xact.log1mexp, x, v)
    np.testing.assert_allclose(g[:-1], want[:-1], rtol=1e-13)
    g = _grad(ad_backend, xact.softplus_inverse, x, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = -1 / np.expm1(-x)
        want[x < 0] = 0.0
    np.testing.assert_allclose(g[:-1], want[:-1], rtol=1e-13)
    p = np.array([1e-30, 1e-5, 0.2, 0.25, 0.5, 0.75, 1 - 1e-9, 1.5, 0.0])
    g = _grad(ad_backend, xact.logit, p, np.ones_like(p))
    with np.errstate(divide="ignore"):
        want = 1 / (p * (1 - p))
    np.testing.assert_allclose(g[:-2], want[:-2], rtol=1e-9)
    assert g[-2] == 0.0 and np.isfinite(g[-1])
    g = _grad(ad_backend, lambda t: xact.logit(t, eps=1e-3), p, np.ones_like(p))
    np.testing.assert_array_equal(g[[0, 1, -2, -1]], 0.0)
    np.testing.assert_allclose(g[2:5], want[2:5], rtol=1e-13)
