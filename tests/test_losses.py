"""cross_entropy, nll_loss, binary_cross_entropy_with_logits, kl_div on every backend.

* Parity: ``torch.nn.functional`` (CPU) is the reference for random inputs
  over every option and their combinations; xact runs on each backend in
  float32 and float64 and must agree to rtol 1e-6 and 1e-12. The reference
  takes the very values given to xact (rounded to the dtype) and evaluates
  torch's formula in float64, so that the float32 tolerance measures xact's
  rounding, not torch's: torch's own float32 results are up to 3e-6 off for
  cross_entropy and 3e-3 off for BCE with logits (cancellation in
  ``(1 - y) x + softplus(-x)``), while xact's float32 stays within 4e-7 of
  the exact answer. ``tests/losses_parity_report.py`` prints the number of
  cases and the largest relative differences per backend, against both.
* The cases where torch is NaN or infinite and xact is right, each checked
  against an independent formula.
* Dtype policy, bad input, out-of-range class indices.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.special as sc

import xact
from xact import _fastpaths

INF = math.inf
NAN = math.nan
FLOATS = ["float32", "float64"]
RTOL = {"float32": 1e-6, "float64": 1e-12}

# --------------------------------------------------------------------------
# Parity cases: (family, numpy inputs, options), torch as the reference


@dataclass
class Case:
    family: str
    arrays: dict[str, np.ndarray]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        shape = "x".join(str(n) for n in self.arrays["input"].shape)
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        extra = ",".join(k for k in self.arrays if k not in ("input", "target"))
        return f"{self.family}[{shape};{opts};{extra}]"


SHAPES = [(7,), (9, 5), (4, 5, 3), (3, 4, 2, 3)]  # classes along 0, -1, 1, 1


def _axis(shape: tuple[int, ...]) -> int:
    return 1 if len(shape) >= 3 else -1


def _n_classes(shape: tuple[int, ...]) -> int:
    return shape[_axis(shape)]


def _index_target(
    rng: np.random.Generator, shape: tuple[int, ...], ignore: int | None
) -> np.ndarray:
    ax = _axis(shape)
    c = shape[ax]
    red = tuple(n for i, n in enumerate(shape) if i != ax % len(shape))
    t = rng.integers(0, c, size=red).astype(np.int64)
    if ignore is not None and t.ndim > 0:
        flat = t.reshape(-1)
        pick = rng.random(flat.shape) < 0.3
        pick[0] = False  # never every sample
        flat[pick] = ignore
    return t


def _probabilities(rng: np.random.Generator, shape: tuple[int, ...], zeros: bool) -> np.ndarray:
    ax = _axis(shape)
    p = rng.random(shape) + 0.05
    if zeros:
        p[rng.random(shape) < 0.25] = 0.0
    s = p.sum(axis=ax, keepdims=True)
    return p / np.where(s == 0, 1.0, s)


def parity_cases() -> list[Case]:
    rng = np.random.default_rng(20261122)
    cases: list[Case] = []
    reductions = ["none", "sum", "mean"]
    for shape in SHAPES:
        c = _n_classes(shape)
        weight = rng.random(c) * 2 + 0.1
        for ignore, eps, use_w, red in itertools.product(
            [None, -100, 1], [0.0, 0.1, 0.73], [False, True], reductions
        ):
            arrays = {
                "input": rng.standard_normal(shape) * 2,
                "target": _index_target(rng, shape, ignore),
            }
            if use_w:
                arrays["weight"] = weight
            opts = {"ignore_index": ignore, "label_smoothing": eps, "reduction": red}
            cases.append(Case("cross_entropy", arrays, opts))
        for eps, use_w, red, zeros in itertools.product(
            [0.0, 0.1, 0.73], [False, True], reductions, [False, True]
        ):
            arrays = {
                "input": rng.standard_normal(shape) * 2,
                "target": _probabilities(rng, shape, zeros),
            }
            if use_w:
                arrays["weight"] = weight
            cases.append(Case("cross_entropy", arrays, {"label_smoothing": eps, "reduction": red}))
        for ignore, use_w, red in itertools.product([None, -100, 1], [False, True], reductions):
            lp = sc.log_softmax(rng.standard_normal(shape) * 2, axis=_axis(shape))
            arrays = {"input": lp, "target": _index_target(rng, shape, ignore)}
            if use_w:
                arrays["weight"] = weight
            cases.append(Case("nll_loss", arrays, {"ignore_index": ignore, "reduction": red}))
        for log_target, red in itertools.product(
            [False, True], ["none", "sum", "mean", "batchmean"]
        ):
            lp = sc.log_softmax(rng.standard_normal(shape), axis=_axis(shape))
            q = _probabilities(rng, shape, zeros=not log_target)
            arrays = {"input": lp, "target": np.log(q) if log_target else q}
            cases.append(Case("kl_div", arrays, {"log_target": log_target, "reduction": red}))
    for shape in [(11,), (6, 4), (3, 4, 5)]:
        for wkind, use_pw, red in itertools.product(
            [None, "full", "last"], [False, True], reductions
        ):
            y = rng.random(shape)
            y[rng.random(shape) < 0.2] = 1.0
            y[rng.random(shape) < 0.2] = 0.0
            arrays = {"input": rng.standard_normal(shape) * 4, "target": y}
            if wkind == "full":
                arrays["weight"] = rng.random(shape) * 2
            elif wkind == "last":
                arrays["weight"] = rng.random(shape[-1:]) * 2
            if use_pw:
                arrays["pos_weight"] = rng.random(shape[-1:]) * 3 + 0.1
            cases.append(Case("binary_cross_entropy_with_logits", arrays, {"reduction": red}))
    return cases


CASES = parity_cases()


def _cast(case: Case, dtype: str) -> dict[str, np.ndarray]:
    return {k: v if v.dtype == np.int64 else v.astype(dtype) for k, v in case.arrays.items()}


def torch_reference(case: Case, dtype: str, compute: str = "float64") -> np.ndarray:
    """torch.nn.functional on the CPU from the values rounded to ``dtype``,
    computed in ``compute`` (float64 by default: torch's answer for exactly
    these inputs, without torch's own float32 rounding errors)."""
    import torch
    import torch.nn.functional as F

    t = {
        k: torch.from_numpy(np.array(v if v.dtype == np.int64 else v.astype(compute)))
        for k, v in _cast(case, dtype).items()
    }
    o = case.options
    if case.family in ("cross_entropy", "nll_loss"):
        ii = o.get("ignore_index")
        kw = {
            "weight": t.get("weight"),
            "ignore_index": -100 if ii is None else ii,
            "reduction": o["reduction"],
        }
        if case.family == "cross_entropy":
            out = F.cross_entropy(
                t["input"], t["target"], label_smoothing=o["label_smoothing"], **kw
            )
        else:
            out = F.nll_loss(t["input"], t["target"], **kw)
    elif case.family == "binary_cross_entropy_with_logits":
        out = F.binary_cross_entropy_with_logits(
            t["input"],
            t["target"],
            weight=t.get("weight"),
            pos_weight=t.get("pos_weight"),
            reduction=o["reduction"],
        )
    else:
        red, ax = o["reduction"], _axis(case.arrays["input"].shape)
        if red in ("sum", "batchmean"):
            out = F.kl_div(t["input"], t["target"], reduction=red, log_target=o["log_target"])
        else:  # ours works per distribution: torch's entry terms summed along axis
            out = F.kl_div(
                t["input"], t["target"], reduction="none", log_target=o["log_target"]
            ).sum(dim=ax)
            if red == "mean":
                out = out.mean()
    return out.numpy()


def run_xact(case: Case, backend: Any, dtype: str) -> Any:
    a = {k: backend.asarray(v) for k, v in _cast(case, dtype).items()}
    o = dict(case.options)
    func = getattr(xact, case.family)
    extra = {k: v for k, v in a.items() if k not in ("input", "target")}
    if case.family != "binary_cross_entropy_with_logits":
        o["axis"] = _axis(case.arrays["input"].shape)
    return func(a["input"], a["target"], **extra, **o)


def reference_error_bound(case: Case, dtype: str) -> np.ndarray | float:
    """Rounding error of torch's float64 BCE formula, ``(1 - y) x + l softplus(-x)``.

    Its two terms cancel where the loss is small next to ``|x|``; each is
    rounded with a relative error of a few float64 epsilons, so the result
    is only good to ``4 eps (|(1 - y) x| + l softplus(-x))`` absolutely,
    which can exceed 1e-12 relatively (8.7e-12 in the cases here). xact's
    form has no cancellation (see ``test_bce_accuracy_against_mpmath``).
    Zero for the other losses, whose float64 references are accurate.
    """
    if case.family != "binary_cross_entropy_with_logits":
        return 0.0
    a = {k: v.astype(dtype).astype(np.float64) for k, v in case.arrays.items()}
    x, y = a["input"], a["target"]
    lw = 1 + (a["pos_weight"] - 1) * y if "pos_weight" in a else 1.0
    bound = 4 * np.finfo(np.float64).eps * (np.abs((1 - y) * x) + lw * np.logaddexp(0.0, -x))
    bound = bound * a.get("weight", 1.0)
    red = case.options["reduction"]
    return bound if red == "none" else (bound.sum() if red == "sum" else bound.mean())


def relative_difference(got: np.ndarray, want: np.ndarray) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    nz = want != 0
    assert np.all(got[~nz] == 0), "xact is not 0 where torch is"
    return float(np.max(np.abs(got[nz] - want[nz]) / np.abs(want[nz]), initial=0.0))


_REFERENCE: dict[tuple[int, str], np.ndarray] = {}


def reference(case: Case, dtype: str) -> np.ndarray:
    key = (id(case), dtype)
    if key not in _REFERENCE:
        _REFERENCE[key] = torch_reference(case, dtype)
    return _REFERENCE[key]


def check_parity(case: Case, backend: Any, dtype: str) -> float:
    """Run one case; assert namespace, dtype, shape, device, then values
    within ``RTOL[dtype]`` (plus the reference's own error bound for BCE).
    Return the largest relative difference."""
    want = reference(case, dtype)
    assert np.all(np.isfinite(want)), f"{case.name}: torch is not finite, not a parity case"
    got = backend.check(run_xact(case, backend, dtype), dtype=dtype, shape=want.shape)
    err = np.abs(got.astype(np.float64) - want)
    allowed = RTOL[dtype] * np.abs(want) + reference_error_bound(case, dtype)
    assert np.all(err <= allowed), f"difference {err} above {allowed}"
    return relative_difference(got, want)


FAMILIES = ["cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "kl_div"]


def backend_cases(family: str, backend_name: str, dtype: str) -> list[Case]:
    """All cases of ``family``; on JAX and Dask, whose eager calls cost
    10-50 times more (JAX compiles each new operation), every eighth one,
    every sixteenth of the 360 cross_entropy cases (each dtype a different
    part; the options cycle through all their values along the list);
    ``losses_parity_report.py`` runs all of them on every backend."""
    cases = [c for c in CASES if c.family == family]
    if backend_name in ("jax", "dask"):
        stride = 16 if family == "cross_entropy" else 8
        return cases[FLOATS.index(dtype) * (stride // 2) :: stride]
    return cases


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("family", FAMILIES)
def test_torch_parity(backend, family, dtype):
    cases = backend_cases(family, backend.name, dtype)
    assert len(cases) >= 4
    worst = 0.0
    for case in cases:
        try:
            worst = max(worst, check_parity(case, backend, dtype))
        except AssertionError as exc:
            raise AssertionError(f"{case.name} ({dtype}): {exc}") from None
    assert np.isfinite(worst)


# --------------------------------------------------------------------------
# Where torch is not finite: xact against independent formulas


def test_torch_fails_where_we_do_not():
    """The cases of the issue: document that torch is wrong there (so that
    the tests below test something torch does not already do)."""
    import torch
    import torch.nn.functional as F

    x = torch.tensor([[0.0, 1.0, -INF]], dtype=torch.float64)
    assert math.isinf(F.cross_entropy(x, torch.tensor([1]), label_smoothing=0.1).item())
    q = torch.tensor([[0.3, 0.7, 0.0]], dtype=torch.float64)
    assert math.isnan(F.cross_entropy(x, q).item())
    assert math.isnan(F.cross_entropy(x, torch.tensor([-100])).item())
    b = F.binary_cross_entropy_with_logits(
        torch.tensor([INF], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    )
    assert math.isnan(b.item())


def _ce_smoothing_reference(
    logits: np.ndarray, y: int, eps: float, w: np.ndarray | None = None
) -> float:
    """One sample, smoothing over the K classes above -inf (float64)."""
    ex = logits > -INF
    lp = sc.log_softmax(logits[ex])
    wc = np.ones(len(logits)) if w is None else w
    k = ex.sum()
    nll = -sc.log_softmax(logits)[y] if ex[y] else INF
    return float((1 - eps) * wc[y] * nll + eps / k * np.sum(wc[ex] * -lp))


@pytest.mark.parametrize("dtype", FLOATS)
def test_smoothing_skips_neg_inf_classes(backend, dtype):
    a = np.array([[0.0, 1.0, -INF, 2.0], [3.0, -INF, -INF, -1.0], [0.5, 0.25, 0.0, -0.5]])
    y = np.array([1, 3, 2])
    w = np.array([0.5, 2.0, 1.0, 1.5])
    for eps, weight in itertools.product([0.1, 1.0], [None, w]):
        want = [_ce_smoothing_reference(a[i], y[i], eps, weight) for i in range(3)]
        kw = {} if weight is None else {"weight": backend.asarray(weight, dtype=dtype)}
        got = xact.cross_entropy(
            backend.asarray(a, dtype=dtype),
            backend.asarray(y),
            label_smoothing=eps,
            reduction="none",
            **kw,
        )
        backend.check(got, want, dtype=dtype, shape=(3,), rtol=RTOL[dtype] * 4)
    # where=False is exactly a -inf logit
    mask = np.isfinite(a)
    filled = np.where(mask, a, 7.0)
    y_b = backend.asarray(y)
    got = xact.cross_entropy(
        backend.asarray(filled, dtype=dtype),
        y_b,
        label_smoothing=0.2,
        where=backend.asarray(mask),
        reduction="none",
    )
    want = xact.cross_entropy(
        backend.asarray(a, dtype=dtype), y_b, label_smoothing=0.2, reduction="none"
    )
    backend.check(got, backend.to_numpy(want), dtype=dtype, shape=(3,), equal=True)


@pytest.mark.parametrize("dtype", FLOATS)
def test_target_at_neg_inf_class_is_inf(backend, dtype):
    a = backend.asarray([[0.0, -INF, 1.0]], dtype=dtype)
    got = xact.cross_entropy(a, backend.asarray([1]), label_smoothing=0.1, reduction="none")
    backend.check(got, [INF], dtype=dtype, shape=(1,), equal=True)
    got = xact.cross_entropy(a, backend.asarray([[0.5, 0.5, 0.0]], dtype=dtype), reduction="sum")
    backend.check(got, INF, dtype=dtype, shape=(), equal=True)


@pytest.mark.parametrize("dtype", FLOATS)
def test_probability_target_zero_log_zero(backend, dtype):
    a = np.array([[0.0, 1.0, -INF], [2.0, -INF, -INF]])
    q = np.array([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0]])
    lp0 = sc.log_softmax(a[0, :2])
    want = np.array([-(0.3 * lp0[0] + 0.7 * lp0[1]), 0.0])
    x, t = backend.asarray(a, dtype=dtype), backend.asarray(q, dtype=dtype)
    backend.check(
        xact.cross_entropy(x, t, reduction="none"),
        want,
        dtype=dtype,
        shape=(2,),
        rtol=RTOL[dtype] * 4,
    )
    backend.check(
        xact.cross_entropy(x, t), want.mean(), dtype=dtype, shape=(), rtol=RTOL[dtype] * 4
    )
    # with smoothing: eps spread over the existing classes only
    eps = 0.2
    qs = np.array([[0.3 * 0.8 + 0.1, 0.7 * 0.8 + 0.1, 0.0], [1.0, 0.0, 0.0]])
    want_s = np.array([-(qs[0, 0] * lp0[0] + qs[0, 1] * lp0[1]), 0.0])
    got = xact.cross_entropy(x, t, label_smoothing=eps, reduction="none")
    backend.check(got, want_s, dtype=dtype, shape=(2,), rtol=RTOL[dtype] * 4)
    # kl_div: q = 0 where log p = -inf contributes 0
    lp = backend.asarray(np.array([[np.log(0.25), np.log(0.75), -INF]]), dtype=dtype)
    kq = backend.asarray(np.array([[0.5, 0.5, 0.0]]), dtype=dtype)
    want_kl = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    backend.check(
        xact.kl_div(lp, kq, reduction="none"),
        [want_kl],
        dtype=dtype,
        shape=(1,),
        rtol=RTOL[dtype] * 4,
    )
    lq = backend.asarray(np.array([[np.log(0.5), np.log(0.5), -INF]]), dtype=dtype)
    got = xact.kl_div(lp, lq, log_target=True, reduction="batchmean")
    backend.check(got, want_kl, dtype=dtype, shape=(), rtol=RTOL[dtype] * 4)


@pytest.mark.parametrize("ignore_index", [2**40, 2**70, -(2**70)])
@pytest.mark.parametrize("func", ["cross_entropy", "nll_loss"])
def test_ignore_index_outside_the_target_range_ignores_nothing(backend, func, ignore_index):
    """No target equals it (JAX without x64 compares in int32: 2**40 must
    not overflow), fast path or generic."""
    a = np.array([[0.0, 1.0, 2.0], [1.0, -1.0, 0.0]])
    t = np.array([2, 0])
    f = getattr(xact, func)
    want = f(a, t, reduction="none") if func == "cross_entropy" else -a[[0, 1], t]
    for disable in (False, True):
        with _fastpaths.disabled() if disable else contextlib.nullcontext():
            got = f(backend.asarray(a), backend.asarray(t), ignore_index=ignore_index)
            backend.check(got, np.mean(want), dtype="float64", shape=())


@pytest.mark.parametrize("func", ["cross_entropy", "nll_loss"])
def test_all_ignored_mean_is_zero(backend, func):
    a = backend.asarray(np.array([[0.0, 1.0, 2.0], [1.0, -1.0, 0.0]]))
    t = backend.asarray(np.array([-100, -100]))
    f = getattr(xact, func)
    kw = {"label_smoothing": 0.3} if func == "cross_entropy" else {}
    backend.check(f(a, t, ignore_index=-100, **kw), 0.0, dtype="float64", shape=(), equal=True)
    w = backend.asarray(np.array([1.0, 2.0, 3.0]))
    backend.check(f(a, t, ignore_index=-100, weight=w), 0.0, dtype="float64", shape=(), equal=True)
    backend.check(
        f(a, t, ignore_index=-100, reduction="sum"), 0.0, dtype="float64", shape=(), equal=True
    )
    backend.check(
        f(a, t, ignore_index=-100, reduction="none"),
        [0.0, 0.0],
        dtype="float64",
        shape=(2,),
        equal=True,
    )
    # an empty batch too
    e = backend.asarray(np.zeros((0, 3)))
    et = backend.asarray(np.zeros((0,), dtype=np.int64))
    backend.check(f(e, et), 0.0, dtype="float64", shape=(), equal=True)


@pytest.mark.parametrize("dtype", FLOATS)
def test_bce_exact_at_infinity_and_large(backend, dtype):
    x = np.array([INF, -INF, INF, -INF, 1e4, -1e4, 1e4, -1e4, 1e4, 30.0, -30.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.25, 0.75, 0.0, 1.0, 1.0])
    # exact values: softplus(1e4) = 1e4, softplus(-1e4) underflows to 0
    want = np.array(
        [
            0.0,
            0.0,
            INF,
            INF,
            0.0,
            0.0,
            7500.0,
            7500.0,
            1e4,
            np.log1p(np.exp(-30.0)),
            30.0 + np.log1p(np.exp(-30.0)),
        ]
    )
    got = xact.binary_cross_entropy_with_logits(
        backend.asarray(x, dtype=dtype), backend.asarray(y, dtype=dtype), reduction="none"
    )
    backend.check(got, want, dtype=dtype, shape=(11,), rtol=RTOL[dtype])
    # with pos_weight: p*y*softplus(-x) + (1-y)*softplus(x)
    pw = backend.asarray(np.full(11, 2.5), dtype=dtype)
    got = xact.binary_cross_entropy_with_logits(
        backend.asarray(x, dtype=dtype),
        backend.asarray(y, dtype=dtype),
        pos_weight=pw,
        reduction="none",
    )
    sp = lambda v: np.logaddexp(0.0, v)  # noqa: E731
    with np.errstate(invalid="ignore"):
        want_pw = np.where(y == 1, 0.0, (1 - y) * sp(x)) + np.where(y == 0, 0.0, 2.5 * y * sp(-x))
    backend.check(got, want_pw, dtype=dtype, shape=(11,), rtol=RTOL[dtype])


@functools.cache
def _bce_accuracy_data(dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs over |x| up to 1e4 and their exact losses (mpmath, 40 digits)."""
    import mpmath

    rng = np.random.default_rng(7)
    x = np.concatenate(
        [rng.uniform(-1e4, 1e4, 200), rng.uniform(-40, 40, 200), [0.0, 1e-300, -1e-20]]
    ).astype(dtype)
    y = rng.random(x.shape)
    y[::7] = 1.0
    y[::11] = 0.0
    y = y.astype(dtype)
    exact = []
    with mpmath.workdps(40):
        for xi, yi in zip(x, y, strict=True):
            xm, ym = mpmath.mpf(float(xi)), mpmath.mpf(float(yi))
            e = (1 - ym) * mpmath.log1p(mpmath.exp(xm)) + ym * mpmath.log1p(mpmath.exp(-xm))
            exact.append(float(e))
    return x, y, np.array(exact)


@pytest.mark.parametrize("dtype", FLOATS)
def test_bce_accuracy_against_mpmath(backend, dtype):
    """Entry losses within 4 ULP (relative) of the exact value for |x| up
    to 1e4 on every backend; results below the normal range within the
    smallest normal (XLA flushes subnormals to 0)."""
    x, y, exact = _bce_accuracy_data(dtype)
    got = backend.check(
        xact.binary_cross_entropy_with_logits(
            backend.asarray(x), backend.asarray(y), reduction="none"
        ),
        dtype=dtype,
        shape=x.shape,
    ).astype(np.float64)
    fi = np.finfo(dtype)
    normal = exact >= fi.tiny
    rel = np.abs(got[normal] - exact[normal]) / exact[normal]
    assert np.max(rel) <= 4 * fi.eps, np.max(rel) / fi.eps
    assert np.all(np.abs(got[~normal] - exact[~normal]) <= fi.tiny)


def test_dominant_class_accurate():
    """The loss of a confidently right prediction is not rounded to 0."""
    a = np.array([[0.0, -40.0, -45.0]])
    got = xact.cross_entropy(a, np.array([0]), reduction="none")
    want = np.log1p(np.exp(-40.0) + np.exp(-45.0))
    np.testing.assert_allclose(got, [want], rtol=1e-15)


# --------------------------------------------------------------------------
# Out-of-range class indices


@pytest.mark.parametrize("func", ["cross_entropy", "nll_loss"])
def test_out_of_range_index(backend, func):
    a = backend.asarray(np.array([[0.0, 1.0, 2.0], [1.0, -1.0, 0.0], [0.5, 0.5, 0.5]]))
    f = getattr(xact, func)
    for bad in (3, -1):
        t = backend.asarray(np.array([0, bad, 2]))
        if backend.name in ("numpy", "array_api_strict"):
            with pytest.raises(
                ValueError, match=rf"`target` holds class index {bad}, outside \[0, 3\)"
            ):
                f(a, t)
            continue
        got = backend.check(f(a, t, reduction="none"), dtype="float64", shape=(3,))
        assert np.isnan(got[1]) and np.all(np.isfinite(got[[0, 2]]))
        for red in ("mean", "sum"):
            assert np.isnan(backend.check(f(a, t, reduction=red), dtype="float64", shape=()))
        # Nothing but out-of-range samples: NaN, not the 0 of an all-ignored batch
        # (weighted or not), whatever else is ignored.
        t_all = backend.asarray(np.array([bad, bad, -100]))
        w = backend.asarray(np.array([1.0, 2.0, 0.5]))
        for kw in ({}, {"weight": w}, {"ignore_index": -100}):
            for red in ("mean", "sum"):
                got = backend.check(f(a, t_all, reduction=red, **kw), dtype="float64", shape=())
                assert np.isnan(got), (kw, red)
    # -100 is fine once it is the ignore_index
    t = backend.asarray(np.array([0, -100, 2]))
    backend.check(f(a, t, ignore_index=-100, reduction="none"), dtype="float64", shape=(3,))


# --------------------------------------------------------------------------
# Dtype policy


@pytest.mark.parametrize("func", FAMILIES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int32"])
def test_dtype_policy(backend, func, dtype):
    a = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]])
    base = {
        "cross_entropy": (a, np.array([0, 2])),
        "nll_loss": (-a, np.array([0, 2])),
        "binary_cross_entropy_with_logits": (a, np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])),
        "kl_div": (
            sc.log_softmax(a, axis=1).round(0) if dtype == "int32" else sc.log_softmax(a, axis=1),
            sc.softmax(a, axis=1),
        ),
    }[func]
    x = backend.asarray(base[0], dtype=dtype)
    f = getattr(xact, func)
    got = f(x, backend.asarray(base[1]), reduction="none")
    want_dtype = backend.xp.asarray(0.0).dtype if dtype == "int32" else backend.dtype(dtype)
    if backend.name == "torch" and dtype == "int32":
        want_dtype = backend.xp.float32
    if backend.name == "jax" and dtype == "int32":
        want_dtype = backend.xp.float64
    xf = base[0] if dtype == "int32" else backend.to_numpy(x).astype(np.float64)
    want = f(xf, base[1], reduction="none")
    tol = 1e-2 if dtype in ("float16", "bfloat16") else 1e-6
    backend.check(got, want, dtype=want_dtype, shape=want.shape, rtol=tol)


# --------------------------------------------------------------------------
# Bad input


def _bad_calls(b: Any) -> list[tuple[Any, type[Exception], str]]:
    x = b.asarray(np.zeros((4, 3)))
    t = b.asarray(np.array([0, 1, 2, 0]))
    q = b.asarray(np.full((4, 3), 1 / 3))
    return [
        (
            lambda: xact.cross_entropy(x, b.asarray(np.array([0, 1, 2]))),
            ValueError,
            "`target` of class indices must have the shape",
        ),
        (
            lambda: xact.cross_entropy(x, b.asarray(np.zeros((4, 2)))),
            ValueError,
            "`target` of class probabilities must have the shape",
        ),
        (
            lambda: xact.cross_entropy(x, b.asarray(np.zeros(4, dtype=bool))),
            TypeError,
            "`target` must hold integer class indices or floating",
        ),
        (
            lambda: xact.cross_entropy(x, t, reduction="avg"),
            ValueError,
            "`reduction` must be one of",
        ),
        (
            lambda: xact.cross_entropy(x, t, label_smoothing=-0.1),
            ValueError,
            r"`label_smoothing` must be in \[0, 1\]",
        ),
        (
            lambda: xact.cross_entropy(x, t, label_smoothing=1.5),
            ValueError,
            r"`label_smoothing` must be in \[0, 1\]",
        ),
        (lambda: xact.cross_entropy(x, t, label_smoothing=NAN), ValueError, "`label_smoothing`"),
        (
            lambda: xact.cross_entropy(x, t, weight=b.asarray(np.ones(4))),
            ValueError,
            r"`weight` must have shape \(3,\)",
        ),
        (
            lambda: xact.cross_entropy(x, t, ignore_index=1.5),
            TypeError,
            "`ignore_index` must be an int",
        ),
        (
            lambda: xact.cross_entropy(x, q, ignore_index=-100),
            ValueError,
            "`ignore_index` applies only",
        ),
        (lambda: xact.cross_entropy(x, t, axis=(0, 1)), TypeError, "`axis` must be a single int"),
        (lambda: xact.cross_entropy(x, t, axis=2), ValueError, "`axis` 2 is out of range"),
        (
            lambda: xact.cross_entropy(b.asarray(np.float64(1.0)), t),
            ValueError,
            "`logits` must have at least one dimension",
        ),
        (
            lambda: (
                xact.cross_entropy(x, np.array([0, 1, 2, 0]))
                if b.name != "numpy"
                else xact.cross_entropy(np.zeros((4, 3)), _Other())
            ),
            TypeError,
            "`target`",
        ),
        (
            lambda: xact.cross_entropy(x, t, where=b.asarray(np.ones((4, 3)))),
            TypeError,
            "`where` must be a boolean",
        ),
        (lambda: xact.nll_loss(x, q), TypeError, "`target` must hold integer class indices"),
        (
            lambda: xact.nll_loss(x, t, reduction="batchmean"),
            ValueError,
            "`reduction` must be one of",
        ),
        (
            lambda: xact.binary_cross_entropy_with_logits(x, t[:3]),
            ValueError,
            "`target` must have the shape of `logits`",
        ),
        (
            lambda: xact.binary_cross_entropy_with_logits(x, q, pos_weight=b.asarray(np.ones(4))),
            ValueError,
            "`pos_weight`",
        ),
        (
            lambda: xact.binary_cross_entropy_with_logits(x, q, weight=b.asarray(np.ones(2))),
            ValueError,
            "`weight`",
        ),
        (
            lambda: xact.binary_cross_entropy_with_logits(x, q, reduction=None),
            ValueError,
            "`reduction` must be one of",
        ),
        (lambda: xact.kl_div(x, b.asarray(np.ones((4, 2)))), ValueError, "`q`"),
        (lambda: xact.kl_div(x, q, reduction="avg"), ValueError, "'batchmean'"),
        (lambda: xact.kl_div(x, q, log_target=1), TypeError, "`log_target` must be a bool"),
    ]


class _Other:
    """Not an array of the standard."""


def test_bad_input_errors(backend):
    for call, exc, match in _bad_calls(backend):
        with pytest.raises(exc, match=match):
            call()


def test_mixed_array_types_error():
    import torch

    with pytest.raises(
        TypeError, match=r"`target` is a torch\.Tensor but `logits` is a numpy\.ndarray"
    ):
        xact.cross_entropy(np.zeros((2, 3)), torch.tensor([0, 1]))
    with pytest.raises(
        TypeError, match=r"`weight` is a numpy\.ndarray but `logits` is a torch\.Tensor"
    ):
        xact.cross_entropy(torch.zeros((2, 3)), torch.tensor([0, 1]), weight=np.ones(3))
    with pytest.raises(TypeError, match=r"`pos_weight` is a torch\.Tensor"):
        xact.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(3), pos_weight=torch.ones(3))


def test_inputs_not_mutated(backend):
    a = np.array([[2.0, 1.0, -INF], [0.0, 1.0, 3.0]])
    t = np.array([0, 1])
    x, tt = backend.asarray(a), backend.asarray(t)
    xact.cross_entropy(x, tt, label_smoothing=0.1, weight=backend.asarray(np.ones(3)))
    xact.binary_cross_entropy_with_logits(x, backend.asarray(np.ones_like(a)))
    np.testing.assert_array_equal(backend.to_numpy(x), a)
    np.testing.assert_array_equal(backend.to_numpy(tt), t)


def test_python_lists_accepted():
    got = xact.cross_entropy([[2.0, 1.0, 0.1]], [0], reduction="none")
    np.testing.assert_allclose(got, [0.41703002], rtol=1e-7)


def test_public_names():
    import xact._losses as losses
    import xact._pointwise_losses as pointwise

    for mod in (losses, pointwise):
        for name in mod.__all__:
            assert getattr(xact, name) is getattr(mod, name)
            assert name in xact.__all__
    assert xact.__all__ == ["__version__", *sorted(n for n in xact.__all__ if n != "__version__")]


# --------------------------------------------------------------------------
# Accuracy against mpmath


def _ce_exact(row: np.ndarray, y: int, eps: float) -> float:
    import mpmath

    with mpmath.workdps(50):
        v = [mpmath.mpf(float(a)) for a in row]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(a) for a in v))
        nll = lse - v[y]
        smooth = mpmath.fsum(lse - a for a in v) / len(v)
        return float((1 - mpmath.mpf(eps)) * nll + mpmath.mpf(eps) * smooth)


@pytest.mark.parametrize("dtype", FLOATS)
def test_cross_entropy_accuracy_mpmath(backend, dtype):
    """Per-sample losses within a few ULP of the exact value, also for a
    dominant target class (loss down to 1e-13), on every backend."""
    rng = np.random.default_rng(12)
    a = (rng.standard_normal((40, 5)) * 12).astype(dtype)
    y = np.argmax(a, axis=1)
    y[::3] = rng.integers(0, 5, size=y[::3].shape)
    x = backend.asarray(a)
    eps_f = float(np.finfo(dtype).eps)
    for smoothing in (0.0, 0.1):
        got = backend.check(
            xact.cross_entropy(x, backend.asarray(y), label_smoothing=smoothing, reduction="none"),
            dtype=dtype,
            shape=(40,),
        )
        exact = np.array([_ce_exact(a[i], int(y[i]), smoothing) for i in range(40)])
        rel = np.abs(got.astype(np.float64) - exact) / exact
        assert np.max(rel) <= 4 * eps_f, (smoothing, np.max(rel) / eps_f)  # measured: 1.33 eps
        if smoothing == 0.0:
            assert np.min(exact) < 1e-12  # dominant-class samples are in


def test_xp_argument(backend):
    """``xp=`` names the inputs' namespace; another library is refused."""
    a = np.array([[2.0, 1.0, 0.1], [0.0, 1.0, 3.0]])
    x, t = backend.asarray(a), backend.asarray(np.array([0, 2]))
    want = xact.cross_entropy(a, np.array([0, 2]), reduction="none")
    got = xact.cross_entropy(x, t, reduction="none", xp=backend.xp)
    backend.check(got, want, dtype="float64", shape=(2,))
    q = backend.asarray(sc.softmax(a, axis=1))
    backend.check(xact.kl_div(x, q, xp=backend.xp), dtype="float64", shape=())
    backend.check(
        xact.binary_cross_entropy_with_logits(x, q, xp=backend.xp), dtype="float64", shape=()
    )
    backend.check(xact.nll_loss(x, t, xp=backend.xp), dtype="float64", shape=())
    if backend.name != "numpy":
        with pytest.raises(TypeError, match="`xp`"):
            xact.cross_entropy(x, t, xp=np)


def test_broadcast_errors_name_both_arguments():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"`weight` with shape \(4,\) .* against `logits`"):
        xact.binary_cross_entropy_with_logits(x, x, weight=np.ones(4))
    with pytest.raises(ValueError, match=r"`pos_weight` with shape \(2,\) .* against `logits`"):
        xact.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones(2))
    with pytest.raises(ValueError, match=r"`q` with shape \(4, 3\) .* against `log_p`"):
        xact.kl_div(x, np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"`where` with shape \(3, 3\) .* against `logits`"):
        xact.cross_entropy(x, np.array([0, 1]), where=np.ones((3, 3), bool))
