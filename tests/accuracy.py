"""Accuracy of xact (and the anchors) against mpmath, in ULPs.

The hard input sets of the core issue, the 50-digit mpmath references, and a
table of the largest error per function, dtype and library.

Run ``python tests/accuracy.py`` to print the table (xact on NumPy and torch
next to SciPy, PyTorch and JAX). ``tests/test_accuracy.py`` asserts the
bounds on the same sets.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable

import mpmath
import numpy as np

mp = mpmath.mp
mp.dps = 50

# --------------------------------------------------------------------------
# Input sets for the reductions (1-d slices; the reduction is over the last
# axis). Each set is a list of 1-d float64 arrays; float32 variants are the
# same values rounded to float32, with references recomputed from them.


def lse_sets() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(20261122)
    return {
        "dominant": [
            np.array([0.0, -30.0, -40.0]),
            np.array([0.0] + [-20.0] * 10),
            np.array([0.0] + [-20.0] * 1000),
            np.array([5.0, -35.0]),
            np.array([-3.0, -60.0, -70.0, -65.0]),
        ],
        "ties": [
            np.array([3.0, 3.0, 3.0, 1.0]),
            np.array([0.0, 0.0]),
            np.array([-2.5, -2.5, -40.0]),
            np.array([7.0] * 5 + [-30.0] * 3),
        ],
        "nearly_equal_1e4": [
            1.0 + rng.uniform(-1e-6, 1e-6, 10_000),
            rng.uniform(-1e-3, 1e-3, 10_000),
        ],
        "normal_scale_1": [rng.standard_normal(n) for n in (3, 10, 100, 1000)],
        "normal_scale_10": [10 * rng.standard_normal(n) for n in (3, 10, 100, 1000)],
        "normal_scale_100": [100 * rng.standard_normal(n) for n in (3, 10, 100, 1000)],
        "scale_10_shift_1e4": [1e4 + 10 * rng.standard_normal(n) for n in (3, 10, 100, 1000)],
        "max_near_0": [
            np.array([1e-3, -40.0, -40.0]),
            np.array([-1e-3, -40.0, -45.0]),
            np.array([1e-8, -30.0]),
            np.array([0.25, -38.5, -41.0, -39.75]),
        ],
    }


def elementwise_grid(dtype: str) -> np.ndarray:
    """Dense sweep over [-800, 800] (float64) or the float32 range."""
    rng = np.random.default_rng(7)
    if dtype == "float64":
        lim = 800.0
    else:
        lim = 110.0  # beyond +-104 every float32 result is 0, 1 or x
    base = np.linspace(-lim, lim, 2001)
    near0 = np.concatenate([np.geomspace(1e-300 if dtype == "float64" else 1e-38, 1, 60)])
    near0 = np.concatenate([near0, -near0, [0.0]])
    rand = rng.uniform(-lim, lim, 500)
    small = rng.uniform(-40, 40, 500)
    x = np.concatenate([base, near0, rand, small])
    return np.unique(x.astype(dtype))


# --------------------------------------------------------------------------
# References


def _mpf(v: float) -> mpmath.mpf:
    return mp.mpf(float(v))


def ref_logsumexp(x: np.ndarray) -> mpmath.mpf:
    return mp.log(mp.fsum(mp.exp(_mpf(v)) for v in x))


def ref_log_softmax(x: np.ndarray) -> list[mpmath.mpf]:
    """``-log(sum_j exp(x_j - x_i))``, with the ``j = i`` term kept out of the
    sum so that a dominant entry (result ~ -1e-87) is not lost to the
    working precision, as ``x_i - lse`` would be."""
    xs = [_mpf(v) for v in x]
    lse = ref_logsumexp(x)
    out = []
    for i, xi in enumerate(xs):
        if xi - lse > -0.5:  # at most one entry can hold over half the mass
            rest = mp.fsum(mp.exp(xj - xi) for j, xj in enumerate(xs) if j != i)
            out.append(-mp.log1p(rest))
        else:  # |result| > 0.5: 50 digits of x_i - lse are plenty
            out.append(xi - lse)
    return out


def ref_softmax(x: np.ndarray) -> list[mpmath.mpf]:
    return [mp.exp(v) for v in ref_log_softmax(x)]


def ref_sigmoid(v: float) -> mpmath.mpf:
    return 1 / (1 + mp.exp(-_mpf(v)))


def ref_log_sigmoid(v: float) -> mpmath.mpf:
    return -mp.log1p(mp.exp(-_mpf(v)))


def ref_softplus(v: float) -> mpmath.mpf:
    return mp.log1p(mp.exp(_mpf(v)))


ELEMENTWISE_REFS: dict[str, Callable[[float], mpmath.mpf]] = {
    "sigmoid": ref_sigmoid,
    "log_sigmoid": ref_log_sigmoid,
    "softplus": ref_softplus,
}


# --------------------------------------------------------------------------
# ULP error


def ulp_error(got: Iterable[float], ref: Iterable[mpmath.mpf], dtype: str) -> float:
    """Largest ``|got - ref| / ulp(ref)``, with the ULP of ``ref`` rounded to ``dtype``.

    Infinities must match exactly (else the error is infinite).
    """
    worst = 0.0
    np_dtype = np.dtype(dtype)
    for g, r in zip(np.asarray(got, dtype=np.float64).ravel(), ref, strict=True):
        rf = np.asarray(float(r), dtype=np.float64)
        rd = rf.astype(np_dtype)
        if not np.isfinite(rd) or not np.isfinite(g):
            if not (g == rd or (np.isnan(g) and np.isnan(rd))):
                return float("inf")
            continue
        spacing = float(np.spacing(np.abs(rd)))
        err = float(abs(_mpf(g) - r) / spacing)
        worst = max(worst, err)
    return worst


@functools.cache
def _lse_refs(dtype: str) -> dict[str, list[tuple[np.ndarray, mpmath.mpf, list[mpmath.mpf]]]]:
    out = {}
    for name, arrays in lse_sets().items():
        rows = []
        for a in arrays:
            a = a.astype(dtype)
            rows.append((a, ref_logsumexp(a), ref_log_softmax(a)))
        out[name] = rows
    return out


@functools.cache
def _elementwise_refs(dtype: str) -> tuple[np.ndarray, dict[str, list[mpmath.mpf]]]:
    x = elementwise_grid(dtype)
    return x, {name: [f(v) for v in x] for name, f in ELEMENTWISE_REFS.items()}


def measure_reduction(
    func: str, impl: Callable[[np.ndarray], np.ndarray], dtype: str
) -> dict[str, float]:
    """Max ULP per input set of ``impl`` (a NumPy-in, NumPy-out callable)."""
    result = {}
    for name, rows in _lse_refs(dtype).items():
        worst = 0.0
        for a, lse, logp in rows:
            got = impl(a)
            if func == "logsumexp":
                err = ulp_error([got], [lse], dtype)
            elif func == "log_softmax":
                err = ulp_error(got, logp, dtype)
            else:
                err = ulp_error(got, [mp.exp(v) for v in logp], dtype)
            worst = max(worst, err)
        result[name] = worst
    return result


def measure_elementwise(func: str, impl: Callable[[np.ndarray], np.ndarray], dtype: str) -> float:
    x, refs = _elementwise_refs(dtype)
    return ulp_error(impl(x), refs[func], dtype)


# --------------------------------------------------------------------------
# Implementations to compare (NumPy in, NumPy out)


def implementations() -> dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]]:
    import scipy.special as sc

    import xact

    impls: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {}
    impls["xact[numpy]"] = {
        "logsumexp": lambda a: np.asarray(xact.logsumexp(a, axis=-1)),
        "log_softmax": lambda a: np.asarray(xact.log_softmax(a)),
        "softmax": lambda a: np.asarray(xact.softmax(a)),
        "sigmoid": lambda a: np.asarray(xact.sigmoid(a)),
        "log_sigmoid": lambda a: np.asarray(xact.log_sigmoid(a)),
        "softplus": lambda a: np.asarray(xact.softplus(a)),
    }
    impls["scipy"] = {
        "logsumexp": lambda a: np.asarray(sc.logsumexp(a, axis=-1)),
        "log_softmax": lambda a: sc.log_softmax(a, axis=-1),
        "softmax": lambda a: sc.softmax(a, axis=-1),
        "sigmoid": sc.expit,
        "log_sigmoid": sc.log_expit,
        "softplus": getattr(sc, "softplus", lambda a: np.logaddexp(0, a)),
    }
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:  # pragma: no cover
        pass
    else:
        t = torch.from_numpy
        impls["xact[torch]"] = {
            k: (lambda a, k=k: getattr(xact, k)(t(a)).numpy())
            for k in ("log_softmax", "softmax", "sigmoid", "log_sigmoid", "softplus")
        }
        impls["xact[torch]"]["logsumexp"] = lambda a: xact.logsumexp(t(a), axis=-1).numpy()
        impls["torch"] = {
            "logsumexp": lambda a: torch.logsumexp(t(a), -1).numpy(),
            "log_softmax": lambda a: F.log_softmax(t(a), -1).numpy(),
            "softmax": lambda a: F.softmax(t(a), -1).numpy(),
            "sigmoid": lambda a: torch.sigmoid(t(a)).numpy(),
            "log_sigmoid": lambda a: F.logsigmoid(t(a)).numpy(),
            "softplus": lambda a: F.softplus(t(a)).numpy(),
        }
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.nn as jnn
        import jax.scipy.special as jsp
    except ImportError:  # pragma: no cover
        pass
    else:
        # xact on JAX arrays, under jax.jit (on the CPU: the C kernel's
        # custom calls for the reductions, XLA for the sigmoid family).
        jitted = {
            k: jax.jit(getattr(xact, k))
            for k in ("log_softmax", "softmax", "sigmoid", "log_sigmoid", "softplus")
        }
        jitted["logsumexp"] = jax.jit(lambda v: xact.logsumexp(v, axis=-1))
        impls["xact[jax]"] = {
            k: (lambda a, f=f: np.asarray(f(jax.numpy.asarray(a)))) for k, f in jitted.items()
        }
        impls["jax"] = {
            "logsumexp": lambda a: np.asarray(jsp.logsumexp(a, axis=-1)),
            "log_softmax": lambda a: np.asarray(jnn.log_softmax(a)),
            "softmax": lambda a: np.asarray(jnn.softmax(a)),
            "sigmoid": lambda a: np.asarray(jnn.sigmoid(a)),
            "log_sigmoid": lambda a: np.asarray(jnn.log_sigmoid(a)),
            "softplus": lambda a: np.asarray(jnn.softplus(a)),
        }
    return impls


REDUCTIONS = ("logsumexp", "log_softmax", "softmax")
ELEMENTWISE = ("sigmoid", "log_sigmoid", "softplus")


def table(dtypes: tuple[str, ...] = ("float64", "float32")) -> list[tuple[str, str, str, float]]:
    """Rows ``(function, dtype, library, max ULP over all sets)``."""
    rows = []
    impls = implementations()
    for dtype in dtypes:
        for func in REDUCTIONS + ELEMENTWISE:
            for lib, fs in impls.items():
                if func in REDUCTIONS:
                    worst = max(measure_reduction(func, fs[func], dtype).values())
                else:
                    worst = measure_elementwise(func, fs[func], dtype)
                rows.append((func, dtype, lib, worst))
    return rows


def _fmt(v: float) -> str:
    if v == float("inf"):
        return "inf"
    return f"{v:.3g}"


def main() -> int:
    import warnings

    warnings.simplefilter("ignore")
    rows = table()
    libs = list(dict.fromkeys(r[2] for r in rows))
    print("| function | dtype | " + " | ".join(libs) + " |")
    print("|---|---|" + "---|" * len(libs))
    keys = list(dict.fromkeys((r[0], r[1]) for r in rows))
    for func, dtype in keys:
        vals = {r[2]: r[3] for r in rows if r[0] == func and r[1] == dtype}
        print(f"| {func} | {dtype} | " + " | ".join(_fmt(vals[lib]) for lib in libs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
