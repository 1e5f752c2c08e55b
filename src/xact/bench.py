"""Benchmark xact against the native anchors of each backend, in one run.

``python -m xact.bench`` times every function of :data:`CASES` on the same
arrays with xact and with the backend's own function (the *anchor*):

* NumPy: :mod:`scipy.special` (``logsumexp``, ``softmax``, ``expit``, ...);
* PyTorch on the CPU (``--device cuda``: on the GPU): ``torch.logsumexp``
  and :mod:`torch.nn.functional`;
* JAX: :mod:`jax.nn`, both sides under ``jax.jit`` with ``block_until_ready``;
* CuPy (``--device cuda``): :mod:`cupyx.scipy.special` where it has the
  function.

Next to them two yardsticks of memory bandwidth on the same array: a copy
(``-x`` under JAX, which XLA cannot elide) and one ``exp``. Every time is
the median of repeated calls after a warm-up (many calls per sample for
small shapes, so that ``perf_counter`` resolution does not matter); xact,
its anchor and the ``exp`` are sampled in turn, one sample of each per
round, so that a busy spell of a shared machine slows them alike and their
ratios hold. On
NumPy the peak memory allocated by one call (``tracemalloc`` sees NumPy's
buffers) is reported as a multiple of the input size, output included.

The table is driven by :data:`CASES`: adding a function to the benchmark is
one :class:`Case` entry naming the xact function, its keyword arguments and
the anchor per backend. Options: ``--quick`` (tiny shapes, few repeats: the
CI smoke mode), ``--backends``, ``--functions``, ``--shapes``, ``--dtypes``,
``--device cuda``, ``--generic`` (also time xact with its fast paths
disabled), ``--out DIR`` (writes ``bench.md`` and, where matplotlib is
installed, ``bench.png``) and ``--dask-ooc MB`` (the out-of-core Dask demo,
see :func:`dask_out_of_core`).

This is a measuring tool, not a test: only the quick mode runs in CI, and
what it asserts is that the output is well formed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

import xact

__all__ = [
    "BACKENDS",
    "CASES",
    "DTYPES",
    "FULL_SHAPES",
    "GOALS",
    "HEADER",
    "MEMORY_GOAL",
    "NUMPY_GOAL_SHAPES",
    "OVERHEAD_GOAL_US",
    "QUICK_SHAPES",
    "RULE",
    "SOFTMAX_EXP_GOAL",
    "Backend",
    "Case",
    "Result",
    "dask_out_of_core",
    "format_row",
    "machine",
    "main",
    "markdown",
    "peak_memory",
    "plot",
    "run",
    "summary",
    "time_call",
    "time_calls",
    "warnings_ignored",
]

FULL_SHAPES = ((32, 10), (4096, 1000), (1024, 32768), (64, 50257))
QUICK_SHAPES = ((32, 10), (64, 257))
DTYPES = ("float32", "float64")
BACKENDS = ("numpy", "torch", "jax")


# --------------------------------------------------------------------------
# The table of cases: one entry per function.


def _sc(name: str, **kw: Any) -> Callable[[], Callable[[Any], Any] | None]:
    def make() -> Callable[[Any], Any] | None:
        import scipy.special as sc

        f = getattr(sc, name, None)
        return None if f is None else (lambda a: f(a, **kw))

    return make


def _torch(path: str, **kw: Any) -> Callable[[], Callable[[Any], Any] | None]:
    def make() -> Callable[[Any], Any]:
        import torch
        import torch.nn.functional as F

        owner = F if path.startswith("F.") else torch
        f = getattr(owner, path.split(".")[-1])
        return lambda a, *rest: f(a, *rest, **kw)

    return make


def _jax(name: str, **kw: Any) -> Callable[[], Callable[[Any], Any] | None]:
    def make() -> Callable[[Any], Any]:
        import jax

        f = getattr(jax.nn, name)
        return lambda a: f(a, **kw)

    return make


def _class_targets(logits: np.ndarray) -> tuple[np.ndarray, ...]:
    """Deterministic integer class targets, one per row, spread over the classes."""
    rows, classes = logits.shape[0], logits.shape[-1]
    return ((np.arange(rows, dtype=np.int64) * 7919) % classes,)


def _jax_cross_entropy() -> Callable[[Any, Any], Any]:
    """The usual JAX formulation (optax's, without optax): mean of -log_softmax at the target."""
    import jax
    import jax.numpy as jnp

    def ce(x: Any, t: Any) -> Any:
        logp = jax.nn.log_softmax(x, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=-1))

    return ce


def _cupy(name: str, **kw: Any) -> Callable[[], Callable[[Any], Any] | None]:
    def make() -> Callable[[Any], Any] | None:
        try:
            import cupyx.scipy.special as cs
        except ImportError:  # pragma: no cover - GPU machines only
            return None
        f = getattr(cs, name, None)
        return None if f is None else (lambda a: f(a, **kw))

    return make


@dataclass(frozen=True)
class Case:
    """One benchmarked function: the xact call and its anchor per backend."""

    name: str
    """The xact function (``getattr(xact, name)``)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the xact call."""
    anchors: dict[str, Callable[[], Callable[..., Any] | None]] = field(default_factory=dict)
    """Backend name -> factory of the native function (None: no anchor)."""
    inputs: Callable[[np.ndarray], tuple[Any, ...]] | None = None
    """Extra positional arrays made from the logits (targets of a loss)."""


CASES: tuple[Case, ...] = (
    Case(
        "logsumexp",
        {"axis": -1},
        {
            "numpy": _sc("logsumexp", axis=-1),
            "torch": _torch("logsumexp", dim=-1),
            "jax": _jax("logsumexp", axis=-1),
            "cupy": _cupy("logsumexp", axis=-1),
        },
    ),
    Case(
        "softmax",
        {"axis": -1},
        {
            "numpy": _sc("softmax", axis=-1),
            "torch": _torch("F.softmax", dim=-1),
            "jax": _jax("softmax", axis=-1),
            "cupy": _cupy("softmax", axis=-1),
        },
    ),
    Case(
        "log_softmax",
        {"axis": -1},
        {
            "numpy": _sc("log_softmax", axis=-1),
            "torch": _torch("F.log_softmax", dim=-1),
            "jax": _jax("log_softmax", axis=-1),
            "cupy": _cupy("log_softmax", axis=-1),
        },
    ),
    Case(
        "sigmoid",
        {},
        {
            "numpy": _sc("expit"),
            "torch": _torch("sigmoid"),
            "jax": _jax("sigmoid"),
            "cupy": _cupy("expit"),
        },
    ),
    Case(
        "log_sigmoid",
        {},
        {
            "numpy": _sc("log_expit"),
            "torch": _torch("F.logsigmoid"),
            "jax": _jax("log_sigmoid"),
            "cupy": _cupy("log_expit"),
        },
    ),
    Case(
        "softplus",
        {},
        {
            "numpy": _sc("softplus"),
            "torch": _torch("F.softplus"),
            "jax": _jax("softplus"),
        },
    ),
    Case(
        "cross_entropy",
        {},
        {
            "torch": _torch("F.cross_entropy"),
            "jax": _jax_cross_entropy,
        },
        inputs=_class_targets,
    ),
)
"""Every benchmarked function. To add one (``cross_entropy``, say), append a
:class:`Case` with its xact name, keyword arguments and anchors (and
``inputs`` to derive its extra arguments, e.g. integer targets, from the
logits): nothing else changes."""

GOALS: dict[tuple[str, str], float] = {
    # (backend, function) -> the largest acceptable time ratio xact / anchor
    ("numpy", "logsumexp"): 0.5,
    ("numpy", "softmax"): 1.0,
    ("numpy", "log_softmax"): 1.0,
    ("numpy", "sigmoid"): 0.5,
    ("numpy", "log_sigmoid"): 0.2,
    ("numpy", "softplus"): 0.2,
    ("torch", "logsumexp"): 1.3,
    ("torch", "softmax"): 1.3,
    ("torch", "log_softmax"): 2.0,
    ("torch", "sigmoid"): 1.3,
    ("torch", "log_sigmoid"): 1.3,
    ("torch", "softplus"): 1.3,
    ("torch", "cross_entropy"): 1.3,
    **{("jax", c.name): 1.3 for c in CASES},
    ("jax", "cross_entropy"): 1.3,
}
"""The goals of the issue; on NumPy they apply to the 4096x1000 and
1024x32768 shapes (32x10 has an absolute goal, :data:`OVERHEAD_GOAL_US`)."""
NUMPY_GOAL_SHAPES = ((4096, 1000), (1024, 32768))
OVERHEAD_GOAL_US = 15.0
MEMORY_GOAL = 2.0
SOFTMAX_EXP_GOAL = 3.0


# --------------------------------------------------------------------------
# Backends: array conversion, synchronisation, compilation.


@dataclass
class Backend:
    name: str
    convert: Callable[[np.ndarray], Any]
    sync: Callable[[Any], Any]
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = lambda f: f
    copy: Callable[[Any], Any] | None = None
    exp: Callable[[Any], Any] | None = None


def _load_backend(name: str, device: str) -> Backend:
    if name == "numpy":
        return Backend("numpy", lambda a: a, lambda r: r, copy=np.copy, exp=np.exp)
    if name == "torch":
        import torch

        dev = torch.device("cuda" if device == "cuda" else "cpu")
        if dev.type == "cuda":

            def sync(r: Any) -> Any:
                torch.cuda.synchronize()
                return r
        else:

            def sync(r: Any) -> Any:
                return r

        return Backend(
            "torch" if dev.type == "cpu" else "torch_cuda",
            lambda a: torch.from_numpy(a).to(dev),
            sync,
            copy=torch.clone,
            exp=torch.exp,
        )
    if name == "jax":
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
        return Backend(
            "jax",
            lambda a: jax.device_put(jnp.asarray(a), dev),
            lambda r: jax.block_until_ready(r),
            wrap=jax.jit,
            copy=jnp.negative,
            exp=jnp.exp,
        )
    if name == "cupy":
        import cupy as cp

        def sync_cp(r: Any) -> Any:
            cp.cuda.Device().synchronize()
            return r

        return Backend("cupy", cp.asarray, sync_cp, copy=cp.copy, exp=cp.exp)
    msg = f"unknown backend {name!r}; choose from numpy, torch, jax, cupy"
    raise ValueError(msg)


# --------------------------------------------------------------------------
# Timing and memory.


@contextlib.contextmanager
def _fastpaths(enabled: bool) -> Iterator[None]:
    old = os.environ.get("XACT_DISABLE_FASTPATHS")
    if enabled:
        os.environ.pop("XACT_DISABLE_FASTPATHS", None)
    else:
        os.environ["XACT_DISABLE_FASTPATHS"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("XACT_DISABLE_FASTPATHS", None)
        else:
            os.environ["XACT_DISABLE_FASTPATHS"] = old


def time_call(
    fn: Callable[[], Any], sync: Callable[[Any], Any], *, budget: float, min_repeats: int
) -> float:
    """Median seconds per call of ``fn`` after a warm-up (see :func:`time_calls`)."""
    return time_calls([fn], sync, budget=budget, min_repeats=min_repeats)[0]


def time_calls(
    fns: Sequence[Callable[[], Any]],
    sync: Callable[[Any], Any],
    *,
    budget: float,
    min_repeats: int,
) -> list[float]:
    """Median seconds per call of each of ``fns``, after a warm-up.

    Calls are grouped so that a sample of the median function lasts about
    2 ms (one call per sample where it is slower), with the same number of
    calls per sample for every function (the functions compared are of
    similar speed): with asynchronous dispatch (JAX) the wait for the last
    call weighs less the more calls a sample has, and counts sized per
    function biased the ratios. The samples are taken in rounds, one of each
    function per round, until ``budget`` seconds per function have passed
    and there are at least ``min_repeats`` rounds: a slow spell of a shared
    machine then weighs on every function alike, and their ratios (what the
    benchmark reports) stay steady where their absolute times do not.
    """
    onces = []
    for fn in fns:
        sync(fn())  # warm-up: compilation, caches, allocator
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            sync(fn())
            best = min(best, time.perf_counter() - t0)
        onces.append(max(best, 1e-7))
    number = max(1, int(2e-3 / statistics.median(onces)))
    numbers = [number] * len(fns)
    samples: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    rounds = 0
    while rounds < min_repeats or (
        time.perf_counter() - start < budget * len(fns) and rounds < 10_000
    ):
        for fn, number, s in zip(fns, numbers, samples, strict=True):
            t0 = time.perf_counter()
            for _ in range(number):
                r = fn()
            sync(r)
            s.append((time.perf_counter() - t0) / number)
        rounds += 1
    return [statistics.median(s) for s in samples]


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (and traced by tracemalloc) during one call."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        r = fn()
        _, peak = tracemalloc.get_traced_memory()
        del r
    finally:
        tracemalloc.stop()
    return peak - base


@dataclass
class Result:
    backend: str
    function: str
    shape: tuple[int, ...]
    dtype: str
    xact_s: float
    anchor_s: float | None
    copy_s: float
    exp_s: float
    generic_s: float | None = None
    xact_mem: float | None = None
    anchor_mem: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.anchor_s is None else self.xact_s / self.anchor_s

    @property
    def goal(self) -> float | None:
        if self.backend == "numpy" and self.shape not in NUMPY_GOAL_SHAPES:
            return None
        return GOALS.get((self.backend.replace("_cuda", ""), self.function))

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.ratio is None:
            return None
        return self.ratio <= self.goal


def run(
    *,
    backends: Sequence[str] = BACKENDS,
    shapes: Sequence[tuple[int, ...]] = FULL_SHAPES,
    dtypes: Sequence[str] = DTYPES,
    functions: Sequence[str] | None = None,
    device: str = "cpu",
    budget: float = 0.6,
    min_repeats: int = 5,
    memory: bool = True,
    generic: bool = False,
    log: Callable[[str], Any] = print,
) -> list[Result]:
    """Time every case on every backend, shape and dtype; return the results."""
    cases = [c for c in CASES if functions is None or c.name in functions]
    unknown = set(functions or ()) - {c.name for c in CASES}
    if unknown:
        msg = f"unknown functions {sorted(unknown)}; known: {[c.name for c in CASES]}"
        raise ValueError(msg)
    rng = np.random.default_rng(6)
    results: list[Result] = []
    for bname in backends:
        try:
            be = _load_backend(bname, device)
        except ImportError as exc:
            log(f"# {bname}: skipped ({exc})")
            continue
        for shape in shapes:
            base = 3.0 * rng.standard_normal(shape)
            for dtype in dtypes:
                host = base.astype(dtype)
                x = be.convert(host)
                assert be.copy is not None and be.exp is not None
                copy_f, exp_f = be.wrap(be.copy), be.wrap(be.exp)
                copy_s = time_call(
                    partial(copy_f, x), be.sync, budget=budget, min_repeats=min_repeats
                )
                for case in cases:
                    extra = case.inputs(host) if case.inputs else ()
                    extra = tuple(be.convert(e) for e in extra)
                    f = getattr(xact, case.name)
                    kw = case.kwargs
                    ours = be.wrap(lambda a, *r, f=f, kw=kw: f(a, *r, **kw))
                    make = case.anchors.get(bname.replace("_cuda", ""))
                    native = make() if make else None
                    anchor = be.wrap(native) if native is not None else None
                    # xact, its anchor and one exp, sampled in turn.
                    timed = [partial(ours, x, *extra), partial(exp_f, x)]
                    if anchor is not None:
                        timed.append(partial(anchor, x, *extra))
                    with _fastpaths(True):
                        xs, exp_s, *a_times = time_calls(
                            timed, be.sync, budget=budget, min_repeats=min_repeats
                        )
                    gs = None
                    if generic:
                        gen = be.wrap(lambda a, *r, f=f, kw=kw: f(a, *r, **kw))
                        with _fastpaths(False):
                            gs = time_call(
                                partial(gen, x, *extra),
                                be.sync,
                                budget=budget,
                                min_repeats=min_repeats,
                            )
                    a_s = a_times[0] if a_times else None
                    res = Result(
                        bname if be.name != "torch_cuda" else "torch_cuda",
                        case.name,
                        tuple(shape),
                        dtype,
                        xs,
                        a_s,
                        copy_s,
                        exp_s,
                        gs,
                    )
                    if memory and bname == "numpy":
                        nbytes = host.nbytes
                        with _fastpaths(True):
                            res.xact_mem = peak_memory(partial(ours, x, *extra)) / nbytes
                        if anchor is not None:
                            with warnings_ignored():
                                res.anchor_mem = peak_memory(partial(anchor, x, *extra)) / nbytes
                    results.append(res)
                    log(format_row(res))
    return results


@contextlib.contextmanager
def warnings_ignored() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------
# Output.

HEADER = (
    "| backend | function | shape | dtype | xact | anchor | xact/anchor | goal | "
    "xact/copy | xact/exp | generic | mem xact | mem anchor |"
)
RULE = "|" + "---|" * (HEADER.count("|") - 1)


def _t(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _r(v: float | None, suffix: str = "") -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.3g}{suffix}"


def format_row(r: Result) -> str:
    goal = "-"
    if r.goal is not None:
        goal = (
            f"≤{r.goal:g} {'met' if r.met else 'MISSED'}" if r.ratio is not None else f"≤{r.goal:g}"
        )
    elif r.backend == "numpy" and r.shape == (32, 10):
        goal = (
            f"≤{OVERHEAD_GOAL_US:g} µs {'met' if r.xact_s * 1e6 <= OVERHEAD_GOAL_US else 'MISSED'}"
        )
    shape = "x".join(map(str, r.shape))
    return (
        f"| {r.backend} | {r.function} | {shape} | {r.dtype} | {_t(r.xact_s)} | {_t(r.anchor_s)} | "
        f"{_r(r.ratio)} | {goal} | {_r(r.xact_s / r.copy_s)} | {_r(r.xact_s / r.exp_s)} | "
        f"{_t(r.generic_s)} | {_r(r.xact_mem, 'x')} | {_r(r.anchor_mem, 'x')} |"
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = [f"numpy {np.__version__}"]
    for mod in ("scipy", "torch", "jax"):
        if mod in sys.modules:
            versions.append(f"{mod} {sys.modules[mod].__version__}")
    from ._fastpaths._parallel import num_threads

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        + ", ".join(versions)
        + f"; xact's NumPy fast paths use {num_threads()} thread(s) (XACT_NUM_THREADS), "
        "SciPy one"
    )


def markdown(results: Sequence[Result], command: str) -> str:
    lines = [
        "<!-- generated by the benchmark; do not edit -->",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}",
        "",
        "Times are medians of repeated calls after a warm-up; xact, the anchor and *exp* "
        "are sampled in turn, so their ratios come from the same moments. "
        "*anchor*: scipy.special "
        "(NumPy), torch / torch.nn.functional (PyTorch), jax.nn under jax.jit (JAX). "
        "*copy* and *exp*: one copy and one exp of the same array. *generic*: xact "
        "with its fast paths disabled. *mem*: peak bytes allocated in one call "
        "(tracemalloc, NumPy only), as a multiple of the input size, output included.",
        "",
        HEADER,
        RULE,
    ]
    lines += [format_row(r) for r in results]
    lines += ["", *summary(results)]
    return "\n".join(lines) + "\n"


def summary(results: Sequence[Result]) -> list[str]:
    """One line per goal of the issue, met or missed, with the ratio."""
    out = ["Goals:", ""]
    for r in results:
        if r.met is not None:
            out.append(
                f"- {r.backend} {r.function} {'x'.join(map(str, r.shape))} {r.dtype}: "
                f"{r.ratio:.2f}x the anchor (goal ≤{r.goal:g}): {'met' if r.met else 'MISSED'}"
            )
        if r.backend == "numpy" and r.shape == (32, 10):
            us = r.xact_s * 1e6
            out.append(
                f"- numpy {r.function} 32x10 {r.dtype}: {us:.1f} µs per call (goal ≤15): "
                f"{'met' if us <= OVERHEAD_GOAL_US else 'MISSED'}"
            )
        if (
            r.backend == "numpy"
            and r.shape == (1024, 32768)
            and r.dtype == "float64"
            and r.xact_mem is not None
        ):
            out.append(
                f"- numpy {r.function} 1024x32768 float64 peak memory: {r.xact_mem:.2f}x the input "
                f"(goal ≤{MEMORY_GOAL:g}): {'met' if r.xact_mem <= MEMORY_GOAL else 'MISSED'}"
            )
        if r.backend == "numpy" and r.function == "softmax" and r.shape in NUMPY_GOAL_SHAPES:
            q = r.xact_s / r.exp_s
            out.append(
                f"- numpy softmax {'x'.join(map(str, r.shape))} {r.dtype}: {q:.2f}x one np.exp "
                f"(goal ≤{SOFTMAX_EXP_GOAL:g}): {'met' if q <= SOFTMAX_EXP_GOAL else 'MISSED'}"
            )
    return out


def plot(results: Sequence[Result], path: str) -> bool:
    """Bar chart of xact/anchor per backend and function; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    backends = list(dict.fromkeys(r.backend for r in results))
    fig, axes = plt.subplots(1, len(backends), figsize=(5.5 * len(backends), 4.2), squeeze=False)
    for ax, bname in zip(axes[0], backends, strict=True):
        rs = [r for r in results if r.backend == bname and r.ratio is not None]
        funcs = list(dict.fromkeys(r.function for r in rs))
        keys = list(dict.fromkeys((r.shape, r.dtype) for r in rs))
        width = 0.8 / max(len(keys), 1)
        for i, key in enumerate(keys):
            vals = [
                next(
                    (r.ratio for r in rs if r.function == f and (r.shape, r.dtype) == key), math.nan
                )
                for f in funcs
            ]
            xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(funcs))]
            ax.bar(xs, vals, width, label=f"{'x'.join(map(str, key[0]))} {key[1]}")
        for j, f in enumerate(funcs):
            g = GOALS.get((bname.replace("_cuda", ""), f))
            if g is not None:
                ax.hlines(g, j - 0.45, j + 0.45, colors="k", linestyles="dashed", linewidth=1)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(funcs)))
        ax.set_xticklabels(funcs, rotation=30, ha="right")
        ax.set_title(f"{bname}: xact time / anchor time (dashed: goal)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------
# Dask out of core.


def dask_out_of_core(
    total_mb: float = 2048.0,
    memory_limit_mb: float = 512.0,
    chunk_rows: int = 32,
    cols: int = 32768,
    log: Callable[[str], Any] = print,
) -> dict[str, float]:
    """log_softmax of a Dask array larger than the workers' memory.

    A :class:`dask.distributed.LocalCluster` (one worker process with two
    threads and ``memory_limit_mb``) reduces ``sum(log_softmax(x))`` over
    a random float64 array of ``total_mb`` that is never materialised: the
    chunks are generated, transformed and reduced on the worker. Returns the
    array size, the limit and the worker's peak resident memory (sampled
    every 50 ms), all in MB, and the wall time.
    """
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    rows = max(chunk_rows, int(total_mb * 2**20 / (8 * cols)) // chunk_rows * chunk_rows)
    x = da.random.default_rng(0).standard_normal((rows, cols), chunks=(chunk_rows, cols))
    nbytes = rows * cols * 8
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            memory_limit=f"{int(memory_limit_mb)}MB",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):

        def rss() -> int:
            import psutil

            return int(psutil.Process().memory_info().rss)

        import threading

        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    peak[0] = max(peak[0], max(client.run(rss).values()))
                stop.wait(0.05)

        th = threading.Thread(target=sample, daemon=True)
        base = max(client.run(rss).values())
        th.start()
        t0 = time.perf_counter()
        total = float(xact.log_softmax(x, axis=-1).sum().compute())
        wall = time.perf_counter() - t0
        stop.set()
        th.join()
    out = {
        "array_mb": nbytes / 2**20,
        "memory_limit_mb": memory_limit_mb,
        "worker_rss_before_mb": base / 2**20,
        "worker_peak_rss_mb": peak[0] / 2**20,
        "wall_s": wall,
        "sum": total,
    }
    log(
        f"dask out of core: log_softmax over {out['array_mb']:.0f} MB float64 "
        f"({rows}x{cols}, chunks {chunk_rows}x{cols}) on one worker limited to "
        f"{memory_limit_mb:.0f} MB: peak worker RSS {out['worker_peak_rss_mb']:.0f} MB "
        f"(before: {out['worker_rss_before_mb']:.0f} MB), {wall:.1f} s"
    )
    return out


# --------------------------------------------------------------------------
# Command line.


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.lower().split("x"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xact.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny shapes, few repeats (CI smoke mode)"
    )
    parser.add_argument("--backends", default=None, help="comma-separated: numpy,torch,jax,cupy")
    parser.add_argument("--functions", default=None, help="comma-separated xact functions")
    parser.add_argument("--shapes", default=None, help="comma-separated, e.g. 32x10,4096x1000")
    parser.add_argument("--dtypes", default=None, help="comma-separated: float32,float64")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--budget", type=float, default=None, help="seconds of samples per timing")
    parser.add_argument(
        "--repeats", type=int, default=None, help="least number of samples per timing"
    )
    parser.add_argument("--generic", action="store_true", help="also time xact without fast paths")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--out", default=None, help="directory for bench.md and bench.png")
    parser.add_argument(
        "--dask-ooc",
        type=float,
        default=None,
        metavar="MB",
        help="only run the out-of-core Dask demo over an array of MB megabytes",
    )
    parser.add_argument("--dask-memory-limit", type=float, default=512.0, metavar="MB")
    args = parser.parse_args(argv)
    command = "python -m xact.bench " + " ".join(argv if argv is not None else sys.argv[1:])

    if args.dask_ooc is not None:
        dask_out_of_core(args.dask_ooc, args.dask_memory_limit)
        return 0

    default_backends = ("cupy", "torch", "jax") if args.device == "cuda" else BACKENDS
    backends = args.backends.split(",") if args.backends else default_backends
    shapes = (
        [_shape(s) for s in args.shapes.split(",")]
        if args.shapes
        else (QUICK_SHAPES if args.quick else FULL_SHAPES)
    )
    dtypes = args.dtypes.split(",") if args.dtypes else DTYPES
    functions = args.functions.split(",") if args.functions else None
    budget = args.budget if args.budget is not None else (0.02 if args.quick else 0.6)
    min_repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)

    print(f"# {machine()}")
    print(HEADER)
    print(RULE)
    results = run(
        backends=backends,
        shapes=shapes,
        dtypes=dtypes,
        functions=functions,
        device=args.device,
        budget=budget,
        min_repeats=min_repeats,
        memory=not args.no_memory,
        generic=args.generic,
    )
    print()
    print("\n".join(summary(results)))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench.md"), "w", encoding="utf-8") as fh:
            fh.write(markdown(results, command))
        if plot(results, os.path.join(args.out, "bench.png")):
            print(f"wrote {args.out}/bench.md and {args.out}/bench.png")
        else:
            print(f"wrote {args.out}/bench.md (no matplotlib: no plot)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
