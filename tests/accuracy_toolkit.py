"""Accuracy of the log-space toolkit against mpmath, in ULPs.

The adversarial input sets of issue 4, their 50-digit mpmath references and
a table of the largest error per function, dtype and library. The ULP
measure and mpmath setup are those of ``accuracy.py``.

Run ``python tests/accuracy_toolkit.py`` to print the table (xact on NumPy,
torch and JAX next to the native ``torch.logcumsumexp``,
``jax.lax.cumlogsumexp``, ``jax.nn.logmeanexp``, ``jax.nn.log1mexp`` and the
naive formulas). xact on JAX is shown for information only: XLA's CPU
``log1p``/``atanh`` are off by up to ~130 ULP in float64 and XLA flushes
subnormals to zero, which no formula on top of them can undo.
``tests/test_toolkit_accuracy.py`` asserts the 4 ULP bound on the same sets.

The sets avoid only results that are ill-conditioned in themselves: a
result produced by cancellation (``|y|`` far below the inputs it comes
from, such as ``logmeanexp`` of values symmetric around 0) moves by many of
its own ULPs when an input moves by one, so no floating-point method can
promise a few ULPs there and the reference would measure the input's
rounding, not the method.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable

import mpmath
import numpy as np

from accuracy import _mpf, mp

# --------------------------------------------------------------------------
# Sets for the scan and the mean (1-d float64 arrays, rounded to the dtype)


def logcumsumexp_sets() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(20261122)
    inf = math.inf
    wide = rng.uniform(-5000, 5000, 1000)
    return {
        # A global-max shift underflows everything but the end.
        "span_thousands": [
            np.array([-1000.0, 0.0]),
            np.array([-3000.0, -2000.0, -1000.0, 0.0, 1000.0, 2000.0, 3000.0]),
            np.array([3000.0, -3000.0, 2999.0, -2999.0, 3000.0]),
            wide,
            np.sort(wide),
            rng.permutation(np.linspace(-3000, 3000, 257)),
        ],
        "monotone_increasing": [
            np.linspace(-50, 50, 1000),
            np.arange(10_000) * 0.01,
            np.arange(300.0),  # each new entry dominates its prefix
            np.linspace(-1e4, -9e3, 4097),
        ],
        "monotone_decreasing": [
            np.linspace(50, -50, 1000),
            -np.arange(10_000) * 0.01,
            -np.arange(300.0),
            np.linspace(1e4, 9e3, 4097),
        ],
        # Ties: y_i = c + log(i + 1); the whole mass is in the count k.
        "ties_and_runs": [
            np.zeros(10_000),
            np.full(1000, 3.0),
            np.full(2049, -7.25),
            np.repeat([1.0, -2.0, 5.0, 5.0, -30.0, 8.0], 500),
            np.tile([2.0, 2.0, -1.0], 1000),
        ],
        "normal": [rng.standard_normal(n) for n in (2, 10, 100, 1000, 10_000)],
        "normal_scale_100": [100 * rng.standard_normal(n) for n in (10, 1000, 10_000)],
        "shift_1e4": [1e4 + 10 * rng.standard_normal(n) for n in (10, 1000, 10_000)],
        # A dominant first entry: the rest shows only through log1p.
        "dominant_first": [
            np.array([0.0] + [-40.0] * 1000),
            np.array([1e-3] + [-37.0] * 5000),
            np.concatenate([[5.0], 5.0 - 30.0 - rng.uniform(0, 10, 999)]),
        ],
        "minus_inf_placements": [
            np.array([-inf, -inf, 1.0, -inf, 2.0, -inf]),
            np.array([-inf] * 5 + [0.0] * 5),
            np.where(rng.uniform(size=1000) < 0.5, -inf, rng.standard_normal(1000)),
            np.array([0.0] + [-inf] * 999),
        ],
    }


def logmeanexp_sets() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(4)
    inf = math.inf
    return {
        # The mean of equal values is the value; logsumexp - log(n) rounds.
        "equal_values": [
            np.full(n, c) for c in (0.0, 1e-3, -2.5, 7.0, 1e4) for n in (1, 3, 1000, 10_000)
        ],
        # Values just above c: the result is c plus a little, nothing cancels.
        "narrow_above": [
            1e-3 + rng.uniform(0, 1e-4, 1000),
            0.5 + rng.uniform(0, 1e-6, 10_000),
            -3.0 + rng.uniform(0, 0.1, 100),
            1e-8 + rng.uniform(0, 1e-9, 10_000),
        ],
        "one_of_many": [
            np.array([0.0] + [-inf] * 999),
            np.array([0.0] + [-50.0] * 999),
            np.array([2.0, -inf, -inf]),
            np.array([-1e-3] + [-40.0] * 9),
        ],
        "ties": [
            np.array([3.0, 3.0, 3.0, 1.0]),
            np.array([-2.5, -2.5, -40.0]),
            np.array([7.0] * 5 + [-30.0] * 3),
        ],
        "normal": [rng.standard_normal(n) for n in (3, 10, 100, 1000, 10_000)],
        "normal_scale_100": [100 * rng.standard_normal(n) for n in (3, 100, 1000)],
        "shift_1e4": [1e4 + 10 * rng.standard_normal(n) for n in (3, 100, 1000)],
        "span_thousands": [rng.uniform(-5000, 5000, 1000), np.array([-3000.0, 3000.0])],
    }


# --------------------------------------------------------------------------
# Elementwise grids


def _around(center: float, dtype: str, k: int) -> np.ndarray:
    c = np.asarray(center, dtype=dtype)
    up, down = [c], [c]
    for _ in range(k):
        up.append(np.nextafter(up[-1], np.asarray(np.inf, dtype=dtype)))
        down.append(np.nextafter(down[-1], np.asarray(-np.inf, dtype=dtype)))
    return np.concatenate([np.asarray(up), np.asarray(down)]).astype(np.float64)


def log1mexp_grid(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    tiny, top = (1e-300, 740.0) if dtype == "float64" else (1e-38, 100.0)
    x = np.concatenate(
        [
            np.geomspace(tiny, top, 1500),
            _around(math.log(2), dtype, 40),
            rng.uniform(0, 3, 500),
            rng.uniform(0, 50, 500),
            rng.uniform(0, top, 300),
        ]
    )
    return np.unique(x.astype(dtype))


def softplus_inverse_grid(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(12)
    tiny, top = (1e-300, 700.0) if dtype == "float64" else (1e-38, 88.0)
    x = np.concatenate(
        [
            np.geomspace(tiny, top, 1500),
            _around(math.log(2), dtype, 60),
            _around(0.35, dtype, 5),
            _around(2 * math.log(2), dtype, 5),
            rng.uniform(0.3, 1.5, 1000),
            rng.uniform(0, 40, 500),
        ]
    )
    return np.unique(x.astype(dtype))


def logit_grid(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(13)
    tiny = 1e-300 if dtype == "float64" else 1e-38
    eps = float(np.finfo(dtype).eps)
    x = np.concatenate(
        [
            np.geomspace(tiny, 0.5, 1000),
            1 - np.geomspace(eps / 2, 0.5, 500),
            _around(0.5, dtype, 60),
            _around(0.25, dtype, 10),
            rng.uniform(0, 1, 1500),
            rng.uniform(0.4, 0.6, 500),
        ]
    )
    x = x.astype(dtype)
    return np.unique(x[(x > 0) & (x < 1)])


# --------------------------------------------------------------------------
# References


def ref_logcumsumexp(x: np.ndarray) -> list[mpmath.mpf]:
    out, total = [], mp.mpf(0)
    for v in x:
        total += mp.exp(_mpf(v)) if np.isfinite(v) else mp.mpf(0)
        out.append(mp.log(total) if total > 0 else mp.mpf("-inf"))
    return out


def ref_logmeanexp(x: np.ndarray) -> mpmath.mpf:
    total = mp.fsum(mp.exp(_mpf(v)) for v in x if np.isfinite(v))
    return mp.log(total / len(x)) if total > 0 else mp.mpf("-inf")


def ref_log1mexp(v: float) -> mpmath.mpf:
    x = _mpf(v)
    if x < 1:  # expm1 keeps the tiny x that 1 - e^{-x} would round away
        return mp.log(-mp.expm1(-x))
    # and log1p the tiny -e^{-x} that 1 - e^{-x} would round away
    return mp.log1p(-mp.exp(-x))


def ref_softplus_inverse(v: float) -> mpmath.mpf:
    return mp.log(mp.expm1(_mpf(v)))


def ref_logit(v: float) -> mpmath.mpf:
    p = _mpf(v)
    return mp.log(p / (1 - p))


ELEMENTWISE: dict[str, tuple[Callable[[str], np.ndarray], Callable[[float], mpmath.mpf]]] = {
    "log1mexp": (log1mexp_grid, ref_log1mexp),
    "softplus_inverse": (softplus_inverse_grid, ref_softplus_inverse),
    "logit": (logit_grid, ref_logit),
}
REDUCTIONS = ("logcumsumexp", "logmeanexp")


def _split(ref: list[mpmath.mpf]) -> tuple[np.ndarray, np.ndarray]:
    """References as double-double ``hi + lo`` (exact to about 1e-32)."""
    hi = np.array([float(r) for r in ref])
    lo = np.array(
        [float(r - mp.mpf(h)) if np.isfinite(h) else 0.0 for r, h in zip(ref, hi, strict=True)]
    )
    return hi, lo


def ulp_errors(
    got: np.ndarray, hi: np.ndarray, lo: np.ndarray, dtype: str, scale: np.ndarray | None = None
) -> float:
    """Largest ``|got - ref|`` in ULPs of ``ref`` rounded to ``dtype``
    (as ``accuracy.ulp_error``, vectorised), or, with ``scale``, in ULPs of
    ``max(|ref|, scale)``.

    Non-finite results must match the reference exactly, else the error is
    infinite. The scaled measure equals the plain one wherever the result
    is at least as large as the input it comes from (``y >= M >= 0``, and
    every result not produced by cancellation); it forgives only the digits
    that the cancellation of ``M`` against ``log(k + r)`` leaves to the
    input's last bit, which no method working in the input's precision
    recovers.
    """
    g = np.asarray(got, dtype=np.float64).ravel()
    rd = hi.astype(dtype)
    special = ~np.isfinite(rd) | ~np.isfinite(g)
    same = (g == rd) | (np.isnan(g) & np.isnan(rd))
    if np.any(special & ~same):
        return math.inf
    ok = ~special
    big = np.abs(rd[ok])
    if scale is not None:
        sc = (
            np.where(np.isfinite(scale), scale, 0.0)[ok]
            if np.ndim(scale)
            else np.full(big.shape, scale)
        )
        big = np.maximum(big, sc.astype(dtype))
    spacing = np.spacing(big.astype(dtype)).astype(np.float64)
    err = np.abs((g[ok] - hi[ok]) - lo[ok]) / spacing
    return float(np.max(err, initial=0.0))


def _scales(func: str, a: np.ndarray) -> np.ndarray:
    """The largest input each result comes from: the running maximum for the
    scan, the maximum for the mean (-inf entries ignored)."""
    finite = np.where(np.isfinite(a), a, -np.inf)
    if func == "logcumsumexp":
        return np.abs(np.maximum.accumulate(finite))
    return np.abs(np.max(finite, keepdims=True))


@functools.cache
def _reduction_refs(
    func: str, dtype: str
) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]:
    sets = logcumsumexp_sets() if func == "logcumsumexp" else logmeanexp_sets()
    out = {}
    for name, arrays in sets.items():
        rows = []
        for a in arrays:
            a = a.astype(dtype)
            ref = ref_logcumsumexp(a) if func == "logcumsumexp" else [ref_logmeanexp(a)]
            rows.append((a, *_split(ref), _scales(func, a)))
        out[name] = rows
    return out


@functools.cache
def _elementwise_refs(func: str, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid, ref = ELEMENTWISE[func]
    x = grid(dtype)
    return (x, *_split([ref(v) for v in x]))


def measure_reduction(
    func: str, impl: Callable[[np.ndarray], np.ndarray], dtype: str
) -> dict[str, tuple[float, float]]:
    """``(plain, scaled)`` max ULP per input set of ``impl`` (NumPy in,
    NumPy out, 1-d input); see ``ulp_errors``."""
    result = {}
    for name, rows in _reduction_refs(func, dtype).items():
        plain = scaled = 0.0
        for a, hi, lo, scale in rows:
            got = np.ravel(impl(a))
            plain = max(plain, ulp_errors(got, hi, lo, dtype))
            scaled = max(scaled, ulp_errors(got, hi, lo, dtype, scale))
        result[name] = (plain, scaled)
    return result


def measure_elementwise(func: str, impl: Callable[[np.ndarray], np.ndarray], dtype: str) -> float:
    x, hi, lo = _elementwise_refs(func, dtype)
    return ulp_errors(impl(x), hi, lo, dtype)


# --------------------------------------------------------------------------
# Implementations to compare (NumPy in, NumPy out)


def implementations() -> dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]]:
    import xact

    names = REDUCTIONS + tuple(ELEMENTWISE)
    impls: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {}
    impls["xact[numpy]"] = {k: (lambda a, k=k: np.asarray(getattr(xact, k)(a))) for k in names}

    def naive_lme(a: np.ndarray) -> np.ndarray:
        import scipy.special as sc

        return np.asarray(sc.logsumexp(a) - np.log(a.size)).astype(a.dtype)

    impls["naive"] = {
        "logcumsumexp": lambda a: np.logaddexp.accumulate(a),
        "logmeanexp": naive_lme,
        "log1mexp": lambda a: np.log1p(-np.exp(-a)),
        "softplus_inverse": lambda a: np.log(np.expm1(a)),
        "logit": lambda a: np.log(a / (1 - a)),
    }
    try:
        import torch
    except ImportError:  # pragma: no cover
        pass
    else:
        t = torch.from_numpy
        impls["xact[torch]"] = {
            k: (lambda a, k=k: getattr(xact, k)(t(np.ascontiguousarray(a))).numpy()) for k in names
        }
        impls["torch"] = {
            "logcumsumexp": lambda a: torch.logcumsumexp(t(a), 0).numpy(),
            "logit": lambda a: torch.logit(t(a)).numpy(),
        }
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
    except ImportError:  # pragma: no cover
        pass
    else:
        impls["xact[jax]"] = {
            k: (lambda a, k=k: np.asarray(getattr(xact, k)(jnp.asarray(a)))) for k in names
        }
        impls["jax"] = {
            "logcumsumexp": lambda a: np.asarray(jax.lax.cumlogsumexp(jnp.asarray(a), axis=0)),
            "logmeanexp": lambda a: np.asarray(jax.nn.logmeanexp(jnp.asarray(a))),
            "logit": lambda a: np.asarray(jax.scipy.special.logit(jnp.asarray(a))),
        }
        if hasattr(jax.nn, "log1mexp"):
            impls["jax"]["log1mexp"] = lambda a: np.asarray(jax.nn.log1mexp(jnp.asarray(a)))
    return impls


def table(dtypes: tuple[str, ...] = ("float64", "float32")) -> list[tuple[str, str, str, str]]:
    """Rows ``(function, dtype, library, max ULP over all sets)``; for the
    reductions ``plain / scaled`` (see ``ulp_errors``)."""
    rows = []
    impls = implementations()
    for dtype in dtypes:
        for func in REDUCTIONS + tuple(ELEMENTWISE):
            for lib, fs in impls.items():
                if func not in fs:
                    continue
                if func in REDUCTIONS:
                    errs = measure_reduction(func, fs[func], dtype).values()
                    cell = f"{_fmt(max(e[0] for e in errs))} / {_fmt(max(e[1] for e in errs))}"
                else:
                    cell = _fmt(measure_elementwise(func, fs[func], dtype))
                rows.append((func, dtype, lib, cell))
    return rows


def _fmt(v: float) -> str:
    return "inf" if v == math.inf else f"{v:.3g}"


def main() -> int:
    import warnings

    warnings.simplefilter("ignore")
    rows = table()
    libs = list(dict.fromkeys(r[2] for r in rows))
    print("| function | dtype | " + " | ".join(libs) + " |")
    print("|---|---|" + "---|" * len(libs))
    for func, dtype in dict.fromkeys((r[0], r[1]) for r in rows):
        vals = {r[2]: r[3] for r in rows if r[0] == func and r[1] == dtype}
        cells = [vals.get(lib, "-") for lib in libs]
        print(f"| {func} | {dtype} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
