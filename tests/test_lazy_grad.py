"""Traced, lazy and differentiated execution of the core functions.

* Under ``jax.jit`` every public function gives the eager answer.
* On Dask nothing is computed until asked (a scheduler that refuses to run
  is installed while the graph is built), also with chunks along the
  reduced axis.
* Under torch autograd and ``jax.grad`` the gradients are the analytic
  ones, and 0 (never NaN) for slices without mass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.special as sc

import xact

INF = math.inf

ROWS = np.array(
    [
        [2.0, 1.0, 0.1, -3.0],
        [-INF, -INF, -INF, -INF],
        [INF, 0.0, INF, 1.0],
        [0.0, -40.0, -30.0, 5.0],
        [3.0, 3.0, -1.0, -INF],
        [0.0, -1500.0, 1.0, -3000.0],
    ]
)
MASK = np.array(
    [
        [True, True, False, True],
        [True, True, True, True],
        [True, True, True, True],
        [False, False, False, False],
        [True, True, True, True],
        [True, True, True, True],
    ]
)

CALLS: dict[str, Callable[..., Any]] = {
    "softmax": lambda x, w: xact.softmax(x, where=w),
    "log_softmax": lambda x, w: xact.log_softmax(x, where=w),
    "softmin": lambda x, w: xact.softmin(x, where=w, temperature=2.0),
    "softmax_axis0": lambda x, w: xact.softmax(x, axis=0, where=w),
    "logsumexp": lambda x, w: xact.logsumexp(x, axis=1, where=w),
    "logsumexp_all": lambda x, w: xact.logsumexp(x, where=w, keepdims=True),
    "logsumexp_b": lambda x, w: xact.logsumexp(x, axis=1, b=x[:1, :] * 0 + 2.0, where=w),
    "logsumexp_sign": lambda x, w: xact.logsumexp(
        x, axis=0, b=-x[:1, :] * 0 - 1.0, return_sign=True
    )[1],
    "sigmoid": lambda x, w: xact.sigmoid(x),
    "log_sigmoid": lambda x, w: xact.log_sigmoid(x),
    "softplus": lambda x, w: xact.softplus(x, beta=2.0),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_jax_jit_matches_eager(name):
    from conftest import get_backend

    bk = get_backend("jax")
    import jax

    f = CALLS[name]
    x, w = bk.asarray(ROWS), bk.asarray(MASK)
    eager = bk.to_numpy(f(x, w))
    jitted = jax.jit(f)(x, w)
    bk.check(jitted, eager, dtype="float64", shape=eager.shape, equal=True)


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("chunks", [(5, 4), (2, 2), (1, 3)])
def test_dask_is_lazy_and_correct(name, chunks, no_compute):
    from conftest import get_backend

    bk = get_backend("dask")
    import dask.array as da

    f = CALLS[name]
    x = da.from_array(ROWS, chunks=chunks)
    w = da.from_array(MASK, chunks=chunks)
    with no_compute():
        lazy = f(x, w)
    assert isinstance(lazy, da.Array)
    want = np.asarray(f(ROWS, MASK))
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
        finite = torch.isfinite(out)
        loss = torch.sum(torch.where(finite, out, torch.zeros_like(out)) * vt)
        loss.backward()
        assert x.grad is not None
        return x.grad.cpu().numpy()
    import jax
    import jax.numpy as jnp

    def loss(x):
        out = f(x)
        return jnp.sum(jnp.where(jnp.isfinite(out), out, 0.0) * v)

    return np.asarray(jax.grad(loss)(jnp.asarray(a)))


def _softmax_np(a: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(sc.softmax(a, axis=axis), nan=0.0)


FINITE_ROWS = np.array([[2.0, 1.0, 0.1, -3.0], [0.0, -40.0, -30.0, 5.0], [3.0, 3.0, -1.0, 3.0]])


def test_grad_logsumexp_is_softmax(ad_backend):
    v = np.array([1.0, -2.0, 0.5])
    g = _grad(ad_backend, lambda x: xact.logsumexp(x, axis=1), FINITE_ROWS, v)
    np.testing.assert_allclose(
        g, v[:, None] * sc.softmax(FINITE_ROWS, axis=1), rtol=1e-13, atol=1e-300
    )


def test_grad_softmax_and_log_softmax(ad_backend):
    rng = np.random.default_rng(3)
    v = rng.standard_normal(FINITE_ROWS.shape)
    p = sc.softmax(FINITE_ROWS, axis=1)
    g = _grad(ad_backend, xact.log_softmax, FINITE_ROWS, v)
    np.testing.assert_allclose(g, v - p * v.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-15)
    g = _grad(ad_backend, xact.softmax, FINITE_ROWS, v)
    want = p * (v - (p * v).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "func",
    [
        lambda x: xact.softmax(x),
        lambda x: xact.log_softmax(x),
        lambda x: xact.logsumexp(x, axis=1),
        lambda x: xact.softmin(x),
    ],
    ids=["softmax", "log_softmax", "logsumexp", "softmin"],
)
def test_grad_special_rows_finite(ad_backend, func):
    """No mass (all -inf, all masked) and +inf rows: gradients 0, never NaN."""
    rng = np.random.default_rng(4)
    out_shape = np.shape(np.asarray(func(ROWS)))
    v = rng.standard_normal(out_shape)
    g = _grad(ad_backend, func, ROWS, v)
    assert np.all(np.isfinite(g)), g
    np.testing.assert_array_equal(g[1], 0.0)  # all -inf row


def test_grad_masked_row_is_zero(ad_backend):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 4))
    mask = np.array([[True] * 4, [False] * 4, [True, False, True, False]])
    if ad_backend.name.startswith("torch"):
        import torch

        w = torch.tensor(mask, device=ad_backend.device)
    else:
        import jax.numpy as jnp

        w = jnp.asarray(mask)
    v = rng.standard_normal((3, 4))
    for f in (
        lambda x: xact.softmax(x, where=w),
        lambda x: xact.log_softmax(x, where=w),
        lambda x: xact.logsumexp(x, axis=1, keepdims=True, where=w) + 0 * x,
    ):
        g = _grad(ad_backend, f, a, v)
        assert np.all(np.isfinite(g))
        np.testing.assert_array_equal(g[1], 0.0)
        np.testing.assert_array_equal(g[2, [1, 3]], 0.0)
    g = _grad(ad_backend, lambda x: xact.logsumexp(x, axis=1, where=w), a, np.ones(3))
    want = np.zeros_like(a)
    for i in (0, 2):
        want[i, mask[i]] = sc.softmax(a[i, mask[i]])
    np.testing.assert_allclose(g, want, rtol=1e-13)


def test_grad_ties_split_evenly(ad_backend):
    a = np.array([[1.0, 1.0, 1.0, -2.0]])
    g = _grad(ad_backend, lambda x: xact.logsumexp(x, axis=1), a, np.ones(1))
    np.testing.assert_allclose(g, sc.softmax(a, axis=1), rtol=1e-14)


def test_grad_sigmoid_family(ad_backend):
    a = np.array([-800.0, -30.0, -1.0, 0.0, 1.0, 30.0, 800.0, INF, -INF])
    s = sc.expit(a)
    v = np.ones_like(a)
    g = _grad(ad_backend, xact.sigmoid, a, v)
    np.testing.assert_allclose(g, s * sc.expit(-a), rtol=1e-13, atol=1e-300)
    g = _grad(ad_backend, xact.log_sigmoid, a, v)
    np.testing.assert_allclose(g[:-1], sc.expit(-a[:-1]), rtol=1e-13)
    g = _grad(ad_backend, xact.softplus, a, v)
    np.testing.assert_allclose(g[:-2], s[:-2], rtol=1e-13, atol=1e-300)
    assert g[3] == 0.5  # the true derivative at the kink-free point 0


def test_grad_log_softmax_far_below_the_maximum(ad_backend):
    """Beyond the exponential's cut-off the gradient is still v - p * sum(v)."""
    a = np.array([[0.0, -1500.0, 1.0, -3000.0]])
    v = np.array([[0.5, -2.0, 1.0, 3.0]])
    p = sc.softmax(a, axis=1)
    g = _grad(ad_backend, xact.log_softmax, a, v)
    np.testing.assert_allclose(g, v - p * v.sum(axis=1, keepdims=True), rtol=1e-13, atol=1e-15)
