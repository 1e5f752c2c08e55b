"""Gradients, jax.jit and Dask laziness of the losses.

* Under torch autograd and ``jax.grad`` the gradients are the analytic ones
  (softmax minus the smoothed, weighted one-hot, and so on), and finite, 0
  where nothing depends on the input, in the cases where torch's are NaN.
* Under ``jax.jit`` every loss gives the eager answer.
* On Dask nothing is computed until asked, also with chunks along the
  class axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.special as sc

import xact
from xact import _fastpaths

INF = math.inf


def _as(bk: Any, a: np.ndarray) -> Any:
    if bk.name.startswith("torch"):
        import torch

        return torch.tensor(a, device=bk.device)
    import jax.numpy as jnp

    return jnp.asarray(a)


def grad(bk: Any, f: Callable[[Any], Any], a: np.ndarray) -> tuple[float, np.ndarray]:
    """Value and gradient of the scalar ``f(x)`` at ``a`` (float64), as NumPy."""
    if bk.name.startswith("torch"):
        import torch

        x = torch.tensor(a, dtype=torch.float64, device=bk.device, requires_grad=True)
        out = f(x)
        out.backward()
        assert x.grad is not None
        return float(out.detach().cpu()), x.grad.cpu().numpy()
    import jax
    import jax.numpy as jnp

    value, g = jax.value_and_grad(f)(jnp.asarray(a, dtype=jnp.float64))
    return float(value), np.asarray(g)


RNG = np.random.default_rng(11)
X = RNG.standard_normal((6, 4)) * 2
Y = np.array([0, 3, 1, 2, 2, 1])
W = np.array([0.5, 2.0, 1.0, 1.5])


def _onehot(y: np.ndarray, c: int) -> np.ndarray:
    return np.eye(c)[y]


def ce_grad_reference(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, eps: float, active: np.ndarray
) -> np.ndarray:
    """d mean / dx for index targets: per sample
    ``(1-eps) w_y (p - e_y) + eps/C (sum(w) p - w)``, over sum of w_y."""
    p = sc.softmax(x, axis=1)
    c = x.shape[1]
    e = _onehot(np.where(active, y, 0), c)
    wy = w[np.where(active, y, 0)] * active
    g = (1 - eps) * wy[:, None] * (p - e) + eps / c * (w.sum() * p - w[None, :])
    g = g * active[:, None]
    return g / wy.sum()


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_gradient_analytic(ad_backend, eps, weighted):
    y = Y.copy()
    y[2] = -100
    active = y != -100
    w = W if weighted else np.ones(4)
    kw: dict[str, Any] = {"ignore_index": -100, "label_smoothing": eps}
    if weighted:
        kw["weight"] = _as(ad_backend, W)
    yt = _as(ad_backend, y)
    _, g = grad(ad_backend, lambda x: xact.cross_entropy(x, yt, **kw), X)
    np.testing.assert_allclose(g, ce_grad_reference(X, y, w, eps, active), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(g[2], 0.0)


def test_cross_entropy_gradient_probability_targets(ad_backend):
    q = sc.softmax(RNG.standard_normal(X.shape), axis=1)
    q[0] = [0.0, 1.0, 0.0, 0.0]
    qt, wt = _as(ad_backend, q), _as(ad_backend, W)
    _, g = grad(ad_backend, lambda x: xact.cross_entropy(x, qt, weight=wt, reduction="sum"), X)
    p = sc.softmax(X, axis=1)
    wq = W * q
    np.testing.assert_allclose(g, wq.sum(axis=1, keepdims=True) * p - wq, rtol=1e-12, atol=1e-15)


def test_nll_and_kl_gradient(ad_backend):
    lp = sc.log_softmax(X, axis=1)
    yt, wt = _as(ad_backend, Y), _as(ad_backend, W)
    _, g = grad(ad_backend, lambda x: xact.nll_loss(x, yt, weight=wt), lp)
    want = -W[Y][:, None] * _onehot(Y, 4) / W[Y].sum()
    np.testing.assert_allclose(g, want, rtol=1e-14)
    q = sc.softmax(RNG.standard_normal(X.shape), axis=1)
    q[1, 2] = 0.0
    qt = _as(ad_backend, q)
    _, g = grad(ad_backend, lambda x: xact.kl_div(x, qt, reduction="batchmean"), lp)
    np.testing.assert_allclose(g, -q / X.shape[0], rtol=1e-14)


def test_bce_gradient_analytic(ad_backend):
    x = np.array([-30.0, -3.0, -0.5, 0.0, 0.5, 3.0, 30.0, 700.0, -700.0])
    y = np.array([0.0, 1.0, 0.3, 0.5, 1.0, 0.0, 0.9, 1.0, 0.0])
    pw = np.full_like(x, 2.0)
    w = np.linspace(0.5, 1.5, x.size)
    yt, pwt, wt = _as(ad_backend, y), _as(ad_backend, pw), _as(ad_backend, w)
    _, g = grad(
        ad_backend,
        lambda v: xact.binary_cross_entropy_with_logits(
            v, yt, weight=wt, pos_weight=pwt, reduction="sum"
        ),
        x,
    )
    want = w * ((1 - y) * sc.expit(x) - pw * y * sc.expit(-x))
    np.testing.assert_allclose(g, want, rtol=1e-13, atol=1e-300)


# --------------------------------------------------------------------------
# Where torch's gradient is NaN: ours is finite and right


def test_gradient_smoothing_with_neg_inf_logits(ad_backend):
    x = np.array([[0.0, 1.0, -INF, 2.0], [3.0, -INF, -INF, -1.0]])
    yt = _as(ad_backend, np.array([1, 3]))
    eps = 0.3
    value, g = grad(
        ad_backend, lambda v: xact.cross_entropy(v, yt, label_smoothing=eps, reduction="sum"), x
    )
    assert np.isfinite(value) and np.all(np.isfinite(g))
    for i, yi in enumerate([1, 3]):
        ex = np.isfinite(x[i])
        p = sc.softmax(x[i][ex])
        k = ex.sum()
        e = (np.flatnonzero(ex) == yi).astype(float)
        want = (1 - eps) * (p - e) + eps * (p - 1 / k)
        np.testing.assert_allclose(g[i][ex], want, rtol=1e-13, atol=1e-16)
        np.testing.assert_array_equal(g[i][~ex], 0.0)


def test_gradient_probability_target_zero_at_neg_inf(ad_backend):
    x = np.array([[0.0, 1.0, -INF], [2.0, -INF, -INF]])
    qt = _as(ad_backend, np.array([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0]]))
    value, g = grad(ad_backend, lambda v: xact.cross_entropy(v, qt, reduction="sum"), x)
    p = sc.softmax(x[0, :2])
    np.testing.assert_allclose(g[0, :2], p - [0.3, 0.7], rtol=1e-13)
    np.testing.assert_array_equal(g[0, 2], 0.0)
    np.testing.assert_array_equal(g[1], 0.0)
    assert np.isfinite(value)
    value, g = grad(
        ad_backend,
        lambda v: xact.kl_div(v, _as(ad_backend, np.array([[0.5, 0.5, 0.0]])), reduction="sum"),
        np.array([[np.log(0.25), np.log(0.75), -INF]]),
    )
    np.testing.assert_array_equal(g, [[-0.5, -0.5, 0.0]])


@pytest.mark.parametrize("func", ["cross_entropy", "nll_loss"])
def test_gradient_all_ignored_is_zero(ad_backend, func):
    yt = _as(ad_backend, np.array([-100, -100, -100, -100, -100, -100]))
    f = getattr(xact, func)
    kw: dict[str, Any] = {"ignore_index": -100, "weight": _as(ad_backend, W)}
    if func == "cross_entropy":
        kw["label_smoothing"] = 0.1
    value, g = grad(ad_backend, lambda v: f(v, yt, **kw), X)
    assert value == 0.0
    np.testing.assert_array_equal(g, 0.0)


def test_gradient_bce_at_infinity(ad_backend):
    x = np.array([INF, -INF, INF, -INF])
    yt = _as(ad_backend, np.array([1.0, 0.0, 1.0, 0.0]))
    pwt = _as(ad_backend, np.array([3.0, 3.0, 3.0, 3.0]))
    value, g = grad(
        ad_backend, lambda v: xact.binary_cross_entropy_with_logits(v, yt, pos_weight=pwt), x
    )
    assert value == 0.0
    np.testing.assert_array_equal(g, 0.0)


def test_gradient_wrt_targets_and_weights_finite(ad_backend):
    """Weights, probability targets and pos_weight can require grad too."""
    x = _as(ad_backend, np.array([[0.0, 1.0, -INF], [2.0, -INF, -INF]]))
    q = np.array([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0]])
    _, gq = grad(
        ad_backend, lambda t: xact.cross_entropy(x, t, label_smoothing=0.1, reduction="sum"), q
    )
    assert np.all(np.isfinite(gq))
    yt = _as(ad_backend, np.array([1, 0]))
    _, gw = grad(
        ad_backend,
        lambda w: xact.cross_entropy(x, yt, weight=w, label_smoothing=0.1),
        np.array([1.0, 2.0, 3.0]),
    )
    assert np.all(np.isfinite(gw))
    xb = _as(ad_backend, np.array([INF, -INF, 1.0]))
    _, gy = grad(
        ad_backend,
        lambda y: xact.binary_cross_entropy_with_logits(xb, y, reduction="sum"),
        np.array([1.0, 0.0, 0.5]),
    )
    assert np.all(np.isfinite(gy))
    np.testing.assert_allclose(gy[2], -1.0, rtol=1e-15)  # d/dy = -x


def test_gradient_wrt_targets_of_exactly_zero_or_one(ad_backend):
    """Saturated teachers give targets of exactly 0 and 1: the gradient with
    respect to them is the analytic one (BCE: -x; CE: -log p), not 0."""
    xb = _as(ad_backend, np.array([2.0, -3.0, 0.5, -1.0]))
    _, gy = grad(
        ad_backend,
        lambda y: xact.binary_cross_entropy_with_logits(xb, y, reduction="sum"),
        np.array([1.0, 1.0, 0.0, 0.0]),
    )
    np.testing.assert_allclose(gy, [-2.0, 3.0, -0.5, 1.0], rtol=1e-14)
    logits = np.array([[1.0, 2.0, 3.0], [0.0, -INF, 1.0]])
    xl = _as(ad_backend, logits)
    q = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    _, gq = grad(ad_backend, lambda t: xact.cross_entropy(xl, t, reduction="sum"), q)
    want = -sc.log_softmax(logits[0])
    np.testing.assert_allclose(gq[0], want, rtol=1e-14)
    # A class with no mass (logit -inf) and probability 0 has no term: its
    # gradient is 0, not -log 0 = inf; the others are -log p.
    np.testing.assert_allclose(gq[1, [0, 2]], -sc.log_softmax([0.0, 1.0]), rtol=1e-14)
    assert gq[1, 1] == 0.0


# --------------------------------------------------------------------------
# jax.jit and Dask

XL = np.array(
    [[2.0, 1.0, 0.1, -3.0], [0.0, -INF, -30.0, 5.0], [3.0, 3.0, -1.0, -INF], [0.5, 0.0, 0.0, 1.0]]
)
YL = np.array([0, 3, -100, 1])
QL = sc.softmax(np.nan_to_num(XL, neginf=-5.0) * 0.7, axis=1)
QL[2, 3] = 0.0
BL = np.array(
    [[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 1.0, 0.0], [0.25, 0.75, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
)
WL = np.array([1.0, 2.0, 0.5, 1.5])

CALLS: dict[str, Callable[..., Any]] = {
    "ce": lambda x, y, q, b, w: xact.cross_entropy(x, y, ignore_index=-100),
    "ce_all": lambda x, y, q, b, w: xact.cross_entropy(
        x, y, weight=w, ignore_index=-100, label_smoothing=0.2, reduction="none"
    ),
    "ce_prob": lambda x, y, q, b, w: xact.cross_entropy(
        x, q, weight=w, label_smoothing=0.1, reduction="sum"
    ),
    "ce_where": lambda x, y, q, b, w: xact.cross_entropy(x, y, ignore_index=-100, where=q > 0.05),
    "ce_axis0": lambda x, y, q, b, w: xact.cross_entropy(x, y * 0 + 1, axis=0),
    "nll": lambda x, y, q, b, w: xact.nll_loss(x, y, weight=w, ignore_index=-100),
    "bce": lambda x, y, q, b, w: xact.binary_cross_entropy_with_logits(
        x, b, weight=w, pos_weight=w
    ),
    "bce_none": lambda x, y, q, b, w: xact.binary_cross_entropy_with_logits(x, b, reduction="none"),
    "kl": lambda x, y, q, b, w: xact.kl_div(xact.log_softmax(x), q, reduction="batchmean"),
    "kl_none": lambda x, y, q, b, w: xact.kl_div(
        xact.log_softmax(x), xact.log_softmax(x * 0.5), log_target=True, reduction="none"
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_jax_jit_matches_eager(name):
    from conftest import get_backend

    bk = get_backend("jax")
    import jax

    f = CALLS[name]
    args = [bk.asarray(a) for a in (XL, YL, QL, BL, WL)]
    eager = bk.to_numpy(f(*args))
    jitted = jax.jit(f)(*args)
    # XLA may fuse a multiply-add differently from the eager ops: 1 ULP
    bk.check(jitted, eager, dtype="float64", shape=eager.shape, rtol=1e-15)
    assert not np.any(np.isnan(eager))


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("chunks", [(2, 2), (1, 3)])
def test_dask_is_lazy_and_correct(name, chunks, no_compute):
    from conftest import get_backend

    bk = get_backend("dask")
    import dask.array as da

    f = CALLS[name]
    args = [
        da.from_array(a, chunks=chunks if a.ndim == 2 else chunks[:1]) for a in (XL, YL, QL, BL, WL)
    ]
    with no_compute():
        lazy = f(*args)
    assert isinstance(lazy, da.Array)
    # These chunks split the class axis, so Dask runs the generic code: the
    # same as NumPy's generic code to the last bit or two (NumPy's fast path
    # rounds differently: kl_none's cancellation shows 7e-15 there).
    with _fastpaths.disabled():
        want = np.asarray(f(XL, YL, QL, BL, WL))
    bk.check(lazy, want, dtype="float64", shape=want.shape, rtol=1e-15)


def test_dask_out_of_range_is_nan_not_computed(no_compute):
    import dask.array as da

    x = da.from_array(XL, chunks=(2, 2))
    y = da.from_array(np.array([0, 9, 1, 2]), chunks=2)
    with no_compute():
        lazy = xact.cross_entropy(x, y, reduction="none")
    got = lazy.compute()
    assert np.isnan(got[1]) and np.isfinite(got[0])


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
@pytest.mark.parametrize("name", sorted(CALLS))
def test_torch_compile_fullgraph(name):
    """No graph break (no Python branch on a value, no sync), forward and backward."""
    torch = pytest.importorskip("torch")
    torch._dynamo.reset()
    f = CALLS[name]
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    args = [torch.tensor(a) for a in (XL, YL, QL, BL, WL)]
    x = args[0].clone().requires_grad_(True)
    want = f(x, *args[1:])
    got = compiled(x, *args[1:])
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    (g,) = torch.autograd.grad(torch.sum(torch.where(torch.isfinite(got), got, 0.0)), x)
    (gw,) = torch.autograd.grad(torch.sum(torch.where(torch.isfinite(want), want, 0.0)), x)
    np.testing.assert_array_equal(g.numpy(), gw.numpy())
    assert torch.all(torch.isfinite(g))
