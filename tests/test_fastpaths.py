"""Fast paths against the generic path, on every backend.

The generic code is the definition; a fast path must give the same
answers: every special value (inf, -inf, NaN, 0) at the same place, and
finite values within a few ULP (float32 fast paths compute in float64, so
they are if anything closer to the truth). Each function runs twice on the
same input, once with fast paths enabled and once inside
``xact._fastpaths.disabled()``, on random and special inputs.
"""

from __future__ import annotations

import math
import os
import tracemalloc

import numpy as np
import pytest

import xact
from xact import _fastpaths
from xact._fastpaths import _numpy as fnp

INF, NAN = math.inf, math.nan

SPECIAL_ROWS = np.array(
    [
        [2.0, 1.0, 0.1, -3.0, 0.5, -1.0],
        [-INF, -INF, -INF, -INF, -INF, -INF],  # no mass
        [INF, 0.0, INF, 1.0, -INF, 2.0],  # +inf entries share the mass
        [INF, -INF, 0.0, 0.0, 0.0, 0.0],
        [NAN, 0.0, 1.0, 2.0, 3.0, 4.0],
        [NAN, INF, -INF, 0.0, 1.0, 2.0],
        [0.0, -40.0, -30.0, -45.0, -50.0, -60.0],  # dominant entry
        [1e-3, -40.0, -40.0, -41.0, -42.0, -39.5],  # max near 0
        [3.0, 3.0, 3.0, -1.0, -INF, 3.0],  # ties
        [0.0, -2000.0, -999.0, -1001.0, -1e300, -INF],  # below the cut-off
        [1e308, -1e308, 1e308, 0.0, -1e308, 1.0],  # huge spread
        [-1e308, -1e308, -1e308, -1e308, -1e308, -1e308],
        [5e-324, -5e-324, 0.0, -0.0, 1e-310, -1e-310],  # subnormals
        [1e4, 1e4 + 1e-9, 1e4 - 1e-9, 9990.0, 1e4, -1e4],
        [-745.0, -746.0, -700.0, -709.0, -710.0, -800.0],
        [3e38, -3e38, 1e38, 0.0, 3.4e38, -3.4e38],  # float32 extremes
        # The clip bound m - CUTOFF - |m| 2^-50 overflows: the generic rules
        [-1.7976931348623157e308, -INF, -1.7976931348623157e308, -INF, -INF, -INF],
        [-1.0, INF, 0.0, 3.0, -INF, 1.0],  # one +inf entry
        # |max| >= 1.7e308 (the kernel's bound): ties, and entries far below
        [1.75e308, 1.0, 1.75e308, -1e308, -INF, 0.0],
        [1.7976931348623157e308, 1.7976931348623155e308, 0.0, -1.7976931348623157e308, 5.0, 1e308],
    ]
)


def _random(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (10.0 * rng.standard_normal(shape)).astype(dtype)


def _inputs(dtype):
    with np.errstate(over="ignore"):
        special = SPECIAL_ROWS.astype(dtype)
    return {
        "special": special,
        "random_2d": _random((37, 53), dtype),
        "random_1d": _random((301,), dtype, 1),
        "random_3d": _random((3, 5, 7), dtype, 2),
        "wide": _random((2, 40_000), dtype, 3),  # one row per block
        "many_rows": np.concatenate(  # special rows in several blocks
            [_random((3000, 6), dtype, 4), special, _random((3000, 6), dtype, 5), special]
        ),
        "ties_only": np.full((4, 8), 1.5, dtype),
    }


def _same_specials(fast, generic):
    """The same dtype and shape, NaN and infinities at the same places, the
    same sign where both are 0; the finite mask."""
    fast, generic = np.asarray(fast), np.asarray(generic)
    assert fast.dtype == generic.dtype and fast.shape == generic.shape
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(generic))
    fin_f, fin_g = np.isfinite(fast), np.isfinite(generic)
    np.testing.assert_array_equal(fin_f, fin_g)
    np.testing.assert_array_equal(
        fast[~fin_f & ~np.isnan(fast)], generic[~fin_g & ~np.isnan(generic)]
    )
    zero = (fast == 0) & (generic == 0)
    np.testing.assert_array_equal(np.signbit(fast[zero]), np.signbit(generic[zero]))
    return fin_f


def _assert_same(fast, generic, ulps):
    fast, generic = np.asarray(fast), np.asarray(generic)
    fin_f = _same_specials(fast, generic)
    f, g = fast[fin_f].astype(np.float64), generic[fin_f].astype(np.float64)
    scale = np.maximum(np.abs(f), np.abs(g))
    tiny = np.finfo(fast.dtype).smallest_subnormal
    s = scale.astype(fast.dtype)
    with np.errstate(over="ignore"):  # the spacing at the largest finite value
        spacing = np.where(
            s == np.finfo(s.dtype).max, np.spacing(np.nextafter(s, 0)), np.spacing(s)
        )
    tol = ulps * spacing.astype(np.float64) + tiny
    bad = np.abs(f - g) > tol
    assert not bad.any(), f"fast {f[bad][:5]} vs generic {g[bad][:5]}"


def _assert_at_least_as_close(fast, generic, truth, ulps=1):
    """Where the generic code itself is less accurate than the fast path:
    the same special values, and the fast path as close to the (float64)
    truth as the generic code, to ``ulps``. (XLA's float32 ``log1p`` is a
    few ULP off, which a cancelling logsumexp amplifies: the generic
    -0.014674246 for -0.0146743079 is 66 ULP out, where the C kernel,
    computing in float64, is within 0.5.)"""
    fast, generic = np.asarray(fast), np.asarray(generic)
    fin = _same_specials(fast, generic) & np.isfinite(truth)
    f, g, t = (a[fin].astype(np.float64) for a in (fast, generic, np.asarray(truth)))
    tiny = np.finfo(fast.dtype).smallest_subnormal
    with np.errstate(over="ignore"):
        tol = ulps * np.spacing(np.abs(t).astype(fast.dtype)).astype(np.float64) + tiny
    bad = np.abs(f - t) > np.abs(g - t) + tol
    assert not bad.any(), f"fast {f[bad][:5]} vs generic {g[bad][:5]}, truth {t[bad][:5]}"


def _both(func, x, **kw):
    fast = func(x, **kw)
    with _fastpaths.disabled():
        generic = func(x, **kw)
    return fast, generic


REDUCTIONS = ["logsumexp", "softmax", "log_softmax", "softmin"]
ELEMENTWISE = ["sigmoid", "log_sigmoid", "softplus"]
ULPS = {"float64": 8, "float32": 8}
"""float64: the C kernel and torch's small-tensor route (NumPy) run another
``exp`` and another summation than the generic code. Each is within 4 ULP of
the truth (``tests/test_accuracy.py``), so they may be 8 apart: measured, a
logsumexp of -0.0886 (= -0.713 + log1p(..), a cancellation) 4 ULP below
the truth on one path and 4 above on the other, and a softmin entry of
1e-16 off by 2 and 4 ULP."""
TORCH_F64_ULPS = ULPS["float64"]


KERNELS = ["c", "c-portable", "ops"]
"""The NumPy reductions (and torch's, through them) run the C kernel where
it is built, NumPy operations where it is not: both are tested. The C
kernel runs two ways besides, both tested too: its float32 rows take its
AVX-512 variant where the CPU has it (``_ckernel_avx512.c``), its portable
one elsewhere; and a large call splits its rows over OpenMP threads where
the extension is built with OpenMP (and not in a fork()ed child), over
Python threads elsewhere."""


class _CkCalls:
    """The C kernel, recording the threads each call asks for; with
    ``openmp=False`` it says it has no OpenMP (the rows then split over
    Python threads, as in a fork()ed child)."""

    def __init__(self, ck, openmp):
        self._ck = ck
        self._openmp = openmp
        self.threads = []

    def openmp(self):
        return self._openmp and self._ck.openmp()

    def rows(self, *args):
        self.threads.append(args[6] if len(args) > 6 else 1)
        return self._ck.rows(*args)

    def cross_entropy(self, *args):
        self.threads.append(args[6] if len(args) > 6 else 1)
        return self._ck.cross_entropy(*args)

    def sigmoid(self, *args):
        self.threads.append(args[2] if len(args) > 2 else 1)
        return self._ck.sigmoid(*args)

    def log1p_exp(self, *args):
        if len(args[0]):  # (not the empty probe)
            self.threads.append(args[3] if len(args) > 3 else 1)
        return self._ck.log1p_exp(*args)

    def __getattr__(self, name):
        return getattr(self._ck, name)


@pytest.fixture(params=KERNELS)
def kernel(request, monkeypatch):
    """ "c": the C kernel (required in CI), as the CPU and the build select
    it; "c-portable": its portable float32 rows, and its rows over Python
    threads; "ops": switched off."""
    if request.param == "ops":
        monkeypatch.setattr(fnp, "_ck", None)
        yield request.param
        return
    ck = _ck_or_skip()
    portable = request.param == "c-portable"
    monkeypatch.setattr(fnp, "_ck", _CkCalls(ck, openmp=not portable))
    prev = ck.set_isa("portable") if portable else None
    try:
        yield request.param
    finally:
        if prev is not None:
            ck.set_isa(prev)


def _isa_or_skip(name):
    """Select the C kernel's float32 variant ``name`` (restored by the caller
    with the returned previous one); skips where the CPU lacks it."""
    ck = _ck_or_skip()
    if name not in ck.isas():
        pytest.skip(f"this CPU cannot run the {name} kernel")
    return ck.set_isa(name)


def test_c_kernel_is_built_in_ci():
    if os.environ.get("CI"):
        assert fnp._ck is not None, "setup.py did not build xact._fastpaths._ckernel"
        assert fnp._ck.openmp(), "setup.py built xact._fastpaths._ckernel without OpenMP"


def _check_fast_equals_generic(backend, name, dtype):
    func = getattr(xact, name)
    kw = {"axis": -1} if name in REDUCTIONS else {}
    for label, host in _inputs(dtype).items():
        if backend.lazy and label in ("wide", "many_rows"):
            continue
        x = backend.asarray(host, dtype)
        fast, generic = _both(func, x, **kw)
        g = backend.check(generic, dtype=dtype)
        f = backend.check(fast, dtype=dtype, shape=g.shape)
        ulps = TORCH_F64_ULPS if backend.name == "torch" and dtype == "float64" else ULPS[dtype]
        try:
            if backend.name == "jax" and dtype == "float32":
                with _fastpaths.disabled():
                    truth = func(host.astype(np.float64), **kw)
                _assert_at_least_as_close(f, g, truth)
            else:
                _assert_same(f, g, ulps)
        except AssertionError as exc:
            raise AssertionError(f"{name} {dtype} on {label}: {exc}") from None


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", REDUCTIONS + ELEMENTWISE)
def test_fast_equals_generic(backend, name, dtype):
    """With the C kernel where it is built (CI: always)."""
    _check_fast_equals_generic(backend, name, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("backend_name", ["numpy", "torch", "dask"])
def test_fast_equals_generic_without_the_c_kernel(backend_name, name, dtype, monkeypatch):
    """The reductions of the backends whose fast paths run the C kernel, as
    they run where it is not built (NumPy operations, torch operations)."""
    from conftest import get_backend

    monkeypatch.setattr(fnp, "_ck", None)
    _check_fast_equals_generic(get_backend(backend_name), name, dtype)


@pytest.mark.parametrize(
    "kw",
    [
        {"axis": None},
        {"axis": None, "keepdims": True},
        {"axis": -1, "keepdims": True},
        {"axis": 2},
        {"axis": (2,)},
    ],
)
def test_logsumexp_axes_and_keepdims(backend, kw):
    host = _random((4, 3, 50), "float64", 5)
    host[1, 2, :] = -INF
    host[2, 0, 7] = INF
    x = backend.asarray(host)
    fast, generic = _both(xact.logsumexp, x, **kw)
    g = backend.check(generic, dtype="float64")
    _assert_same(backend.check(fast, dtype="float64", shape=g.shape), g, 4)


def test_numpy_fast_path_is_taken_for_the_common_case():
    x = _random((16, 10), "float64")
    assert fnp.softmax(x, axis=-1, where=None, temperature=1.0) is not NotImplemented
    assert (
        fnp.logsumexp(x, axis=None, keepdims=False, b=None, return_sign=False, where=None)
        is not NotImplemented
    )
    assert fnp.sigmoid(x.astype(np.float32)) is not NotImplemented
    assert fnp.softplus(x, beta=1.0) is not NotImplemented


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["logsumexp", "softmax", "log_softmax", "parts"])
def test_numpy_small_inputs_give_the_blocked_bits(dtype, mode, monkeypatch):
    """A small input is one block without buffers (``_one_block``); it must
    give the blocked path's bits, signed zeros included (and the float32
    rows with one dominant entry, whose total is near 1), and leave rows
    without a finite maximum to it."""
    with np.errstate(over="ignore"):
        special = SPECIAL_ROWS.astype(dtype)
    finite = special[np.abs(special.max(axis=1)) < np.float64(_fastpaths.LARGEST_MAX)]
    x = np.concatenate([finite, _random((40, 6), dtype), np.full((2, 6), -0.0, dtype)])
    x[-1, 3] = 0.0
    # Any layout: a transposed array's temporaries are still summed in C order.
    x = np.asfortranarray(x)
    width = {"logsumexp": 1, "parts": 2}.get(mode, x.shape[1])
    out_dtype = np.float64 if mode == "parts" else x.dtype

    def both(x):
        small = np.full((x.shape[0], width), 7.0, out_dtype)
        blocked = np.full((x.shape[0], width), 7.0, out_dtype)
        taken = fnp._one_block(x, mode, small)
        fnp._reduce_range(x, mode, blocked, 0, x.shape[0])
        return taken, small, blocked

    taken, small, blocked = both(x)
    assert taken
    np.testing.assert_array_equal(small, blocked)
    # (The sign of a zero maximum, "parts" column 0, may differ: the blocked
    # path takes the first maximum entry. It reaches no loss: lg > 0 there.)
    c = 1 if mode == "parts" else 0
    np.testing.assert_array_equal(np.signbit(small[:, c:]), np.signbit(blocked[:, c:]))
    # Rows longer than 8 are summed pairwise: in C order, as the blocked path.
    wide = _random((30, 20), dtype, 12).T
    w_small, w_blocked = np.empty((20, 30), dtype), np.empty((20, 30), dtype)
    assert fnp._one_block(wide, "softmax", w_small)
    fnp._reduce_range(wide, "softmax", w_blocked, 0, 20)
    np.testing.assert_array_equal(w_small, w_blocked)
    # no mass; +inf entries; NaN; the clip bound not finite (float64)
    for rows in (special[1:2], special[2:3], special[3:4], special[4:5], special[-1:]):
        taken, small, _ = both(np.concatenate([x[:3], rows]))
        assert not taken and (small == 7.0).all()


def test_numpy_logsumexp_over_everything_near_the_float64_limit():
    """The clip bound of a maximum at -1.797e308 is -inf: the generic code."""
    for x in ([-1.7976931348623157e308, -INF], [1.75e308, 1.75e308, -INF]):
        fast, generic = _both(xact.logsumexp, np.asarray(x))
        np.testing.assert_array_equal(fast, generic)


def test_numpy_small_inputs_skip_the_blocked_path(monkeypatch):
    def blocked(*args):
        raise AssertionError("a 32x10 call took the blocked path")

    monkeypatch.delenv("XACT_DISABLE_FASTPATHS", raising=False)
    monkeypatch.setattr(fnp, "_ck", None)  # (the C kernel has no blocks)
    monkeypatch.setattr(fnp._parallel, "split", blocked)
    for dtype in ("float64", "float32"):
        x = _random((32, 10), dtype)
        for name in REDUCTIONS:
            fast, generic = _both(getattr(xact, name), x, axis=-1)
            _assert_same(fast, generic, ULPS[dtype])


@pytest.mark.parametrize(
    ("name", "x", "kw"),
    [
        ("softmax", _random((4, 6), "float64"), {"where": np.ones((4, 6), bool)}),
        ("softmax", _random((4, 6), "float64"), {"temperature": 2.0}),
        ("softmax", _random((4, 6), "float64"), {"axis": 0}),
        ("softmax", _random((4, 6), "float64"), {"axis": None}),
        ("softmax", _random((6, 4), "float64").T, {"axis": -1}),  # 2-d, strided: taken
        ("softmax", np.asfortranarray(_random((3, 4, 6), "float64")), {"axis": -1}),
        ("softmax", _random((4, 6), "float16"), {}),
        ("softmax", np.arange(24).reshape(4, 6), {}),
        ("softmax", np.zeros((4, 0)), {}),
        ("logsumexp", _random((4, 6), "float64"), {"b": 2.0}),
        ("logsumexp", _random((4, 6), "float64"), {"return_sign": True}),
        ("logsumexp", _random((4, 6), "float64") + 1j, {}),
        ("logsumexp", _random((4, 6), "float64"), {"axis": (0, 1)}),
        ("softplus", _random((4, 6), "float64"), {"beta": 2.0}),
        ("sigmoid", _random((4, 6), "float64")[:, ::2], {}),
        ("sigmoid", np.float64(0.5), {}),
        ("sigmoid", [0.0, 1.0], {}),
    ],
)
def test_declined_cases_give_the_generic_answer(name, x, kw):
    fast, generic = _both(getattr(xact, name), x, **kw)
    if isinstance(fast, tuple):
        for f, g in zip(fast, generic, strict=True):
            np.testing.assert_array_equal(f, g)
    else:
        assert type(fast) is type(generic) and np.asarray(fast).dtype == np.asarray(generic).dtype
        np.testing.assert_allclose(fast, generic, rtol=1e-13)


def test_bad_arguments_raise_the_generic_errors():
    x = _random((4, 6), "float64")
    with pytest.raises(ValueError, match="temperature"):
        xact.softmax(x, temperature=-1.0)
    with pytest.raises(ValueError, match="out of range"):
        xact.log_softmax(x, axis=5)
    with pytest.raises(TypeError, match="beta"):
        xact.softplus(x, beta="1")
    with pytest.raises(TypeError, match="axis"):
        xact.logsumexp(x, axis=1.0)


def test_switches(monkeypatch):
    monkeypatch.delenv("XACT_DISABLE_FASTPATHS", raising=False)
    x = _random((4, 6), "float64")
    monkeypatch.setattr(fnp, "softmax", lambda *a, **k: "fast")
    assert xact.softmax(x) == "fast"
    with _fastpaths.disabled():
        assert isinstance(xact.softmax(x), np.ndarray)
        assert not _fastpaths.enabled()
    assert _fastpaths.enabled()
    monkeypatch.setenv("XACT_DISABLE_FASTPATHS", "1")
    assert not _fastpaths.enabled()
    assert isinstance(xact.softmax(x), np.ndarray)
    monkeypatch.setenv("XACT_DISABLE_FASTPATHS", "0")
    assert xact.softmax(x) == "fast"


def test_inputs_are_not_modified():
    for name in REDUCTIONS + ELEMENTWISE:
        x = SPECIAL_ROWS.copy()
        getattr(xact, name)(x)
        np.testing.assert_array_equal(x, SPECIAL_ROWS)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax", "sigmoid", "softplus"])
def test_numpy_peak_memory_at_most_twice_the_input(name, monkeypatch, kernel):
    """The goal of the issue at 1/32 of the benchmark size (1024x32768)."""
    monkeypatch.delenv("XACT_DISABLE_FASTPATHS", raising=False)
    x = _random((256, 4096), "float64")
    f = getattr(xact, name)
    f(x)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = f(x)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del out
    assert peak <= 2 * x.nbytes, f"{name}: {peak / x.nbytes:.2f}x the input"


def test_jit_keeps_the_twosum_correction():
    """XLA must not simplify (a - (s - bb)) - (m + bb) away under jax.jit."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    x = jnp.asarray([[1e-3, -40.0, -40.0], [0.25, -38.5, -41.0], [-1e-3, -40.0, -45.0]])
    with _fastpaths.disabled():  # (the generic code, as XLA compiles it)
        eager = np.asarray(xact.log_softmax(x))
        jitted = np.asarray(jax.jit(lambda a: xact.log_softmax(a))(x))  # (a fresh trace)
        np.testing.assert_array_equal(jitted, eager)
        lse_e = np.asarray(xact.logsumexp(x, axis=-1))
        lse_j = np.asarray(jax.jit(lambda a: xact.logsumexp(a, axis=-1))(x))
        np.testing.assert_array_equal(lse_j, lse_e)
    # and the correction is there: without it the first entry is 13 ULP off
    import mpmath

    mpmath.mp.dps = 50
    exact = mpmath.mpf(1e-3) - mpmath.log(
        sum(mpmath.exp(mpmath.mpf(v)) for v in (1e-3, -40.0, -40.0))
    )
    assert abs(jitted[0, 0] - float(exact)) <= 2 * np.spacing(abs(jitted[0, 0]))


def test_float32_differences_are_exact_in_float64():
    """Why the float32 fast path needs no TwoSum: x - m of two float32
    numbers within the cut-off (2^10 apart, 24-bit significands) needs at
    most 24 + 10 + 1 bits and more only when m is tiny, where the part lost
    is below 2^-53 of the difference, far under float32's resolution."""
    from fractions import Fraction

    rng = np.random.default_rng(11)
    m = (rng.standard_normal(3000) * 10.0 ** rng.integers(-3, 4, 3000)).astype(np.float32)
    x = (m.astype(np.float64) - rng.uniform(0, 1000, 3000)).astype(np.float32)
    d = x.astype(np.float64) - m.astype(np.float64)
    for xi, mi, di in zip(x, m, d, strict=True):
        exact = Fraction(float(xi)) - Fraction(float(mi))
        err = abs(Fraction(float(di)) - exact)
        assert err <= abs(exact) * Fraction(1, 2**53), (xi, mi)
    exact_count = sum(
        Fraction(float(di)) == Fraction(float(xi)) - Fraction(float(mi))
        for xi, mi, di in zip(x, m, d, strict=True)
    )
    assert exact_count >= 0.9 * len(d)


# --------------------------------------------------------------------------
# PyTorch (CPU) fast paths


def _torch():
    return pytest.importorskip("torch")


def _special_3d(dtype):
    """Special rows along the last axis, in a 3-d array with random rows."""
    with np.errstate(over="ignore"):
        special = SPECIAL_ROWS.astype(dtype)
    rest = -(7 + special.shape[0]) % 8  # (whole planes of 8 rows)
    host = np.concatenate([_random((7, 6), dtype, 9), special, _random((rest, 6), dtype, 10)])
    return host.reshape(-1, 8, 6)


TORCH_ROUTES = ["small", "large", "at", "numpy", "c", "torch", "torch-blocks"]


def _torch_route(route, monkeypatch):
    """Small tensors take the C kernel on their own memory ("small", where
    it applies), else the NumPy fast path on a view of it ("numpy": the
    first switched off); "large" makes them take the C kernel on their own
    memory as large ones do (:func:`_small`'s checks, threads planned, the
    GIL released), "at" the same through the general route's :func:`_at`
    (where the axis is not an int, or ``_small`` declines), "c" the C
    kernel through NumPy views as large strided ones do, "torch" torch's
    own operations (where the C kernel is not built), "torch-blocks" those
    in blocks of a few rows, so that rows to recompute fall into several."""
    from xact._fastpaths import _torch as ft

    if route not in ("small", "large", "at"):
        monkeypatch.setattr(ft, "_at", lambda *a, **k: NotImplemented)
        monkeypatch.setattr(ft, "_small_ce", lambda *a, **k: NotImplemented)
    if route not in ("small", "large"):
        monkeypatch.setattr(ft, "_small", lambda *a, **k: NotImplemented)
    if route not in ("small", "numpy"):
        monkeypatch.setattr(ft, "SMALL", 0)
    if route in ("large", "at", "c") and fnp._ck is None:
        if os.environ.get("CI"):
            pytest.fail("the C kernel is not built (CI has a compiler: it must be)")
        pytest.skip("the C kernel is not built (no C compiler at install time)")
    if route in ("torch", "torch-blocks"):
        monkeypatch.setattr(fnp, "_ck", None)
    if route == "torch-blocks":
        monkeypatch.setattr(ft, "_BLOCK", 24)


def test_torch_fast_paths_are_taken_and_decline():
    torch = _torch()
    from xact._fastpaths import _torch as ft

    x = torch.tensor(_random((16, 10), "float64"))
    kw = {"axis": -1, "where": None, "temperature": 1.0}
    for dt in (torch.float32, torch.float64):
        xd = x.to(dt)
        assert isinstance(ft.softmax(xd, **kw), torch.Tensor)
        assert isinstance(ft.log_softmax(xd, **kw), torch.Tensor)
        lse = ft.logsumexp(xd, axis=None, keepdims=False, b=None, return_sign=False, where=None)
        assert isinstance(lse, torch.Tensor) and lse.shape == ()
        assert isinstance(ft.sigmoid(xd), torch.Tensor)
    declined = [
        ft.softmax(x, axis=-1, where=torch.ones(16, 10, dtype=torch.bool), temperature=1.0),
        ft.softmax(x, axis=-1, where=None, temperature=2.0),
        ft.softmax(x, axis=(0, 1), where=None, temperature=1.0),
        ft.softmax(x, axis=None, where=None, temperature=1.0),
        ft.softmax(x.half(), **kw),
        ft.softmax(x.to(torch.complex128), **kw),
        ft.softmax(torch.zeros((4, 0)), **kw),
        ft.softmax(x.clone().requires_grad_(), **kw),  # float64 with autograd
        ft.sigmoid(x.clone().requires_grad_()),
        ft.logsumexp(x, axis=-1, keepdims=False, b=2.0, return_sign=False, where=None),
    ]
    assert all(r is NotImplemented for r in declined)
    # float32 with autograd keeps the fast path (torch's kernels in float64)
    assert isinstance(ft.softmax(x.float().requires_grad_(), **kw), torch.Tensor)


def test_torch_small_tensors_take_the_numpy_route(monkeypatch):
    """Small CPU tensors without autograd: the NumPy kernel on a view of
    their memory (no torch operation of the kernel runs), a CPU tensor of
    their dtype back, the input untouched; with autograd, large, or where
    the NumPy path declines: torch's own route."""
    torch = _torch()
    from xact._fastpaths import _torch as ft

    calls = []
    real, real_c, real_ce = ft._row_blocks, ft._c_rows, ft._ce_loss
    monkeypatch.setattr(ft, "_row_blocks", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(ft, "_c_rows", lambda *a: calls.append(1) or real_c(*a))
    monkeypatch.setattr(ft, "_ce_loss", lambda *a: calls.append(1) or real_ce(*a))
    host = _random((32, 10), "float64")
    host[3, 4] = INF  # a special row (the NumPy path recomputes it)
    t = torch.tensor(_random((32,), "float64") % 10).long()
    for dt in (torch.float32, torch.float64):
        x = torch.tensor(host, dtype=dt)
        before = x.clone()
        for name in REDUCTIONS:
            fast, generic = _both(getattr(xact, name), x, axis=-1)
            assert type(fast) is torch.Tensor and fast.dtype == dt and fast.device == x.device
            _assert_same(fast.numpy(), generic.numpy(), ULPS[str(dt)[6:]])
        ce = xact.cross_entropy(x[torch.arange(32) != 3], t[:31], reduction="sum")
        assert type(ce) is torch.Tensor and ce.dtype == dt and ce.shape == ()
        assert calls == [], "torch's route ran"
        assert torch.equal(x, before)
        xact.softmax(x, axis=0)  # the NumPy path declines this axis
        assert calls == [1]
        calls.clear()
        xact.cross_entropy(x, t)  # a row without a finite maximum: declined
        assert calls == [1]
        calls.clear()
    big = torch.zeros((2 * ft.SMALL + 2,), dtype=torch.float64)
    by_address = fnp._ck is not None and fnp._ck.openmp()
    xact.log_softmax(big, axis=-1)  # large and contiguous: by address, if built
    assert calls == ([] if by_address else [1])
    calls.clear()
    xact.log_softmax(big[::2], axis=-1)  # large and strided: torch's route
    assert calls == [1]
    calls.clear()
    x = torch.tensor(_random((8, 5), "float64"), requires_grad=True)
    with torch.no_grad():  # a parameter under no_grad: the NumPy route
        out = xact.softmax(x, axis=-1)
    assert calls == [] and not out.requires_grad
    out.resize_(100)  # memory torch owns, as any torch result
    neg = torch._neg_view(x.detach())  # a view that negates: torch's route
    ulps = TORCH_F64_ULPS  # (NumPy's exp and torch's)
    _assert_same(xact.log_softmax(neg).numpy(), xact.log_softmax(-x.detach()).numpy(), ulps)
    assert calls == [1]
    calls.clear()
    t_neg = torch._neg_view(torch.tensor([-1, -4, 0, -2, -3, -1, 0, -4]))
    ce = xact.cross_entropy(x.detach(), t_neg, reduction="none")
    plain_target = torch.tensor([1, 4, 0, 2, 3, 1, 0, 4])
    _assert_same(ce.numpy(), xact.cross_entropy(x.detach(), plain_target, reduction="none"), ulps)
    assert calls == [1]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_small_cross_entropy_in_one_call(dtype, monkeypatch):
    """Small NumPy logits with int64 targets: the losses and their reduction
    in one C call (``cross_entropy_reduce``), the bits and the types of the
    threaded path (a scalar for "sum", a 0-d array for "mean"); where it
    declines (int32 targets, a strided target, a target out of range, a
    special row) the other paths run, and bad buffers are refused."""
    if fnp._ck is None:
        pytest.skip("the C kernel is not built")
    ck = fnp._ck
    calls = []
    real = ck.cross_entropy_reduce
    monkeypatch.setattr(fnp, "_ck", _CkCalls(ck, openmp=True))
    monkeypatch.setattr(
        fnp._ck, "cross_entropy_reduce", lambda *a: calls.append(1) or real(*a), raising=False
    )
    x = _random((32, 10), dtype)
    t = np.arange(32) % 10
    for reduction in ("none", "sum", "mean"):
        for ignore in (None, 3, -(2**70)):
            kw = {"reduction": reduction, "ignore_index": ignore}
            one = xact.cross_entropy(x, t, **kw)
            with monkeypatch.context() as m:
                m.setattr(fnp, "_small_ce", lambda *a: None)
                threaded = xact.cross_entropy(x, t, **kw)
            assert type(one) is type(threaded)
            assert np.asarray(one).dtype == np.asarray(threaded).dtype
            np.testing.assert_array_equal(one, threaded)
    assert len(calls) == 9
    calls.clear()
    bad_t = t.copy()
    bad_t[4] = 10
    special = x.copy()
    special[2, 3] = INF
    for logits, target in (
        (x, t.astype(np.int32)),
        (x, np.repeat(t, 2)[::2]),
        (special, t),
    ):
        fast, generic = _both(lambda a, tt=target: xact.cross_entropy(a, tt), logits)
        _assert_same(fast, generic, ULPS[dtype])
    with pytest.raises(ValueError, match="class index"):
        xact.cross_entropy(x, bad_t)
    assert len(calls) == 2  # the special row and the target out of range
    out = np.empty((), dtype)
    with pytest.raises(ValueError, match="int64"):
        real(x, t.astype(np.int32), None, 2, out)
    with pytest.raises(ValueError, match="wrong dtype or size"):
        real(x, t, None, 0, out)
    with pytest.raises(ValueError, match="reduction must be"):
        real(x, t, None, 3, out)


def test_small_cross_entropy_sums_of_negative_zeros_are_positive():
    """Every loss -0.0 (all ignored, or one class): "sum" and "mean" are
    +0.0, as np.add.reduce (which starts from its identity) and the generic
    path give, also at 8 rows and more, where the pairwise sum's blocks
    start (found in review: the one-call paths gave -0.0 there)."""
    torch = _torch()
    for rows in (3, 8, 40):
        for logits, target, ignore in (
            (np.zeros((rows, 1)), np.zeros(rows, np.int64), None),
            (_random((rows, 5), "float64"), np.full(rows, 2, np.int64), 2),
        ):
            for reduction in ("sum", "mean"):
                kw = {"reduction": reduction, "ignore_index": ignore}
                for got in (
                    xact.cross_entropy(logits, target, **kw),
                    xact.cross_entropy(torch.tensor(logits), torch.tensor(target), **kw).numpy(),
                ):
                    assert got == 0.0 and not np.signbit(got), (rows, reduction, got)


@pytest.mark.parametrize("route", TORCH_ROUTES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_fast_paths_ignore_the_default_device(dtype, route, monkeypatch):
    """Every route allocates its results, buffers and constants on the
    input's device (the CPU), whatever ``torch.set_default_device`` or a
    ``torch.device`` context says (found in review for the small paths, and
    after it for the large strided ones: ``torch.empty`` without a device
    made a meta tensor there, which the C kernel and NumPy refused). Rows
    without a finite maximum and a target out of range take the special
    cases' code too."""
    torch = _torch()
    _torch_route(route, monkeypatch)
    host = _random((6, 5), dtype)
    host[2, 1] = INF
    x = torch.tensor(host)
    t = torch.tensor([0, 1, 2, 0, 4, 3])
    bad_t = torch.tensor([0, 1, 7, 0, 4, 3])
    calls = {
        "logsumexp": lambda a: xact.logsumexp(a, axis=-1),
        "softmax": lambda a: xact.softmax(a, axis=-1),
        "log_softmax": lambda a: xact.log_softmax(a, axis=-1),
        "softmax_t": lambda a: xact.softmax(a.t(), axis=-1),
        "cross_entropy": lambda a: xact.cross_entropy(a, t),
        "cross_entropy_none": lambda a: xact.cross_entropy(a, bad_t, reduction="none"),
        "sigmoid": xact.sigmoid,
        "log_sigmoid": xact.log_sigmoid,
        "softplus": xact.softplus,
    }
    want = {name: f(x) for name, f in calls.items()}
    with torch.device("meta"):
        got = {name: f(x) for name, f in calls.items()}
    for name, g in got.items():
        assert g.device.type == "cpu", name
        assert torch.equal(g.isnan(), want[name].isnan()), name
        assert torch.equal(g.nan_to_num(), want[name].nan_to_num()), name


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_unaligned_inputs_take_the_other_paths(dtype):
    """A C-contiguous NumPy array at an odd address (NumPy exports it as
    "=d", not "d") and a torch tensor over such memory: the C kernel is not
    given them (it reads whole floats); the results are the generic ones
    (found in review: the NumPy sigmoid family raised there)."""
    torch = _torch()
    size = np.dtype(dtype).itemsize
    host = _random((6, 7), dtype)
    buf = np.zeros(host.size * size + 1, np.uint8)
    x = buf[1:].view(dtype).reshape(host.shape)
    x[...] = host
    assert not x.flags.aligned
    t = torch.frombuffer(bytearray(buf.tobytes()), dtype=getattr(torch, dtype), offset=1)
    t = t.reshape(host.shape)
    assert t.data_ptr() % size
    for name in REDUCTIONS + ELEMENTWISE:
        func = getattr(xact, name)
        kw = {"axis": -1} if name in REDUCTIONS else {}
        with _fastpaths.disabled():
            generic = func(host, **kw)
        _assert_same(func(x, **kw), generic, ULPS[dtype])
        _assert_same(func(t, **kw).numpy(), generic, ULPS[dtype])
    target = np.arange(6) % 7
    with _fastpaths.disabled():
        generic = xact.cross_entropy(host, target, reduction="none")
    _assert_same(xact.cross_entropy(x, target, reduction="none"), generic, ULPS[dtype])
    got = xact.cross_entropy(t, torch.tensor(target), reduction="none")
    _assert_same(got.numpy(), generic, ULPS[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_small_tensors_on_their_own_memory(dtype, monkeypatch):
    """Small contiguous tensors reduced along their last axis (or all of it)
    run the C kernel on their own memory (``_ckernel.rows_at`` and
    ``cross_entropy_at``): the NumPy path's kernel and its pairwise sum, so
    the very bits of xact on ``x.numpy()``. Anything else (another axis, a
    strided view, autograd, int32 targets, a row without a finite maximum, a
    target out of range) goes on to the other routes, which give the generic
    answers."""
    torch = _torch()
    from xact._fastpaths import _torch as ft

    if fnp._ck is None:
        pytest.skip("the C kernel is not built")
    ck = fnp._ck
    calls = []

    class Counting:
        def __getattr__(self, name):
            attr = getattr(ck, name)
            if name in ("rows_at", "cross_entropy_at"):
                return lambda *a: calls.append(name) or attr(*a)
            return attr

    monkeypatch.setattr(fnp, "_ck", Counting())
    host = _random((32, 10), dtype)
    x = torch.tensor(host)
    before = x.clone()
    for name in ("softmax", "log_softmax"):
        out = getattr(xact, name)(x, axis=-1)
        np.testing.assert_array_equal(out.numpy(), getattr(xact, name)(host, axis=-1))
    for kw in ({"axis": -1}, {"axis": 1, "keepdims": True}, {"axis": None}):
        out = xact.logsumexp(x, **kw)
        ref = xact.logsumexp(host, **kw)
        assert out.shape == ref.shape
        np.testing.assert_array_equal(out.numpy(), ref)
    out = xact.logsumexp(x, axis=None, keepdims=True)
    assert out.shape == (1, 1)
    np.testing.assert_array_equal(out.numpy()[0, 0], xact.logsumexp(host, axis=None))
    t = torch.tensor(np.arange(32) % 10)
    for reduction in ("none", "sum", "mean"):
        for ignore in (None, 3, -100, 2**70):
            kw = {"reduction": reduction, "ignore_index": ignore}
            out = xact.cross_entropy(x, t, **kw)
            ref = xact.cross_entropy(host, t.numpy(), **kw)
            assert out.dtype == x.dtype and out.shape == ref.shape
            np.testing.assert_array_equal(out.numpy(), ref)
            if reduction == "none":
                np.testing.assert_array_equal(np.signbit(out.numpy()), np.signbit(ref))
    # every sample ignored: a mean of 0, as the generic rule has it
    all_ignored = xact.cross_entropy(x, torch.full((32,), 3), ignore_index=3)
    assert float(all_ignored) == 0.0
    assert calls.count("rows_at") == 6 and calls.count("cross_entropy_at") == 13
    assert torch.equal(x, before)
    calls.clear()
    # declined here, the generic answers from the other routes
    special = torch.tensor(_special_3d(dtype).reshape(-1, 6))  # (every special row)
    bad_t = t.clone()
    bad_t[5] = 10
    others = [
        (xact.softmax, (x,), {"axis": 0}),
        (xact.log_softmax, (x.t(),), {"axis": -1}),
        (xact.logsumexp, (x[:, ::2],), {"axis": -1}),
        (xact.softmax, (special,), {"axis": -1}),
        (xact.log_softmax, (special,), {"axis": -1}),
        (xact.logsumexp, (special,), {"axis": -1}),
        (xact.cross_entropy, (x, t.to(torch.int32)), {}),
        (xact.cross_entropy, (x, bad_t), {"reduction": "none"}),
        (xact.cross_entropy, (special, torch.zeros(special.shape[0], dtype=torch.int64)), {}),
    ]
    for func, args, kw in others:
        fast, generic = _both(lambda a, f=func, r=args[1:], k=kw: f(a, *r, **k), args[0])
        _assert_same(fast.numpy(), generic.numpy(), ULPS[dtype])
    # (special rows: the small route's call declines, the general route
    # does not call the kernel on the same rows again (_at), and the NumPy
    # route computes the generic rules for them; for cross_entropy the
    # generic code's log_softmax does the same)
    assert calls.count("rows_at") == 4 and calls.count("cross_entropy_at") == 2
    calls.clear()
    grad = x.clone().requires_grad_()
    out = xact.log_softmax(grad, axis=-1)
    assert out.requires_grad and calls == []
    assert ft._at("softmax", grad, 1) is NotImplemented


@pytest.mark.parametrize("route", TORCH_ROUTES[:4])
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax", "cross_entropy"])
def test_torch_transforms_see_the_generic_code(name, route, monkeypatch):
    """Tracing (``torch.jit.trace``, ``make_fx``) and forward-mode AD must not
    see the fast paths' data-dependent branches or the NumPy route: a trace
    recorded on one input gives the right answer on another, and dual
    tensors keep their tangent."""
    import warnings

    import torch.autograd.forward_ad as fwad
    from torch.fx.experimental.proxy_tensor import make_fx

    torch = _torch()
    _torch_route(route, monkeypatch)
    target = torch.tensor([1, 0, 3])
    if name == "cross_entropy":

        def f(x):
            return xact.cross_entropy(x, target, reduction="none")
    else:

        def f(x):
            return getattr(xact, name)(x, axis=-1)

    rng = np.random.default_rng(11)
    for dtype in (torch.float32, torch.float64):
        a, b, tangent = (torch.tensor(rng.standard_normal((3, 4)), dtype=dtype) for _ in range(3))
        b[1, 2] = math.inf  # a special row only in the second input
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarning, the deprecation of trace
            traced = torch.jit.trace(f, a, check_trace=False)
        with _fastpaths.disabled():
            expected = f(b)
        for got in (traced(b), make_fx(f)(a)(b)):
            _assert_same(got.numpy(), expected.numpy(), 0)
        with warnings.catch_warnings():
            # torch scripts its forward-AD decompositions on first use
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated")
            with fwad.dual_level():
                dual = fwad.unpack_dual(f(fwad.make_dual(a, tangent))).tangent
            with fwad.dual_level(), _fastpaths.disabled():
                ref = fwad.unpack_dual(f(fwad.make_dual(a, tangent))).tangent
        assert dual is not None
        _assert_same(dual.numpy(), ref.numpy(), 0)


@pytest.mark.parametrize("route", TORCH_ROUTES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax", "softmin"])
def test_torch_every_axis_and_route(name, dtype, route, monkeypatch):
    """Special rows along every axis, through each route."""
    torch = _torch()
    _torch_route(route, monkeypatch)
    host = _special_3d(dtype)
    func = getattr(xact, name)
    for axis in (0, 1, 2, -1):
        x = torch.tensor(np.moveaxis(host, -1, axis).copy())
        for kw in (
            ({"axis": axis}, {"axis": axis, "keepdims": True})
            if name == "logsumexp"
            else ({"axis": axis},)
        ):
            fast, generic = _both(func, x, **kw)
            assert fast.dtype == generic.dtype and fast.shape == generic.shape
            _assert_same(fast.numpy(), generic.numpy(), ULPS[dtype])
    x = torch.tensor(host)
    if name == "logsumexp":
        fast, generic = _both(func, x, axis=None)
        _assert_same(fast.numpy(), generic.numpy(), ULPS[dtype])


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_torch_float32_autograd_matches_the_generic_gradients(name):
    """The float32 fast path keeps autograd, and rows it hands to the
    generic code (a +inf row, an all -inf row, a NaN row, a dominated row)
    get the generic gradients, with no NaN leaking from the fast part."""
    torch = _torch()
    host = _special_3d("float32")
    v = torch.tensor(_random(host.shape, "float32", 3))
    func = getattr(xact, name)
    kw = {"axis": -1, "keepdims": True} if name == "logsumexp" else {"axis": -1}
    w = v[..., :1] if name == "logsumexp" else v
    grads = []
    for fast, dt in ((True, torch.float32), (False, torch.float32), (False, torch.float64)):
        x = torch.tensor(host, dtype=dt, requires_grad=True)
        if fast:
            y = func(x, **kw)
        else:
            with _fastpaths.disabled():
                y = func(x, **kw)
        # where=0 keeps the NaN rows out of the sum (not out of the graph)
        torch.where(torch.isfinite(y), y * w.to(dt), torch.zeros((), dtype=dt)).sum().backward()
        grads.append(x.grad.numpy().astype(np.float64))
    g_fast, g_gen, g_ref = grads
    np.testing.assert_array_equal(np.isnan(g_fast), np.isnan(g_gen))
    fin = np.isfinite(g_gen)
    # The generic float32 gradient of log_softmax, v - p sum(v), cancels in
    # float32; the fast path's is computed in float64. Both are compared
    # with the float64 gradient, the fast one at least as closely.
    scale = np.abs(w.numpy()).max() * np.finfo(np.float32).eps
    err_fast = np.abs(g_fast - g_ref)[fin].max()
    err_gen = np.abs(g_gen - g_ref)[fin].max()
    assert err_fast <= max(err_gen, 4 * scale), (err_fast, err_gen)


def _ce_case(dtype, seed):
    rng = np.random.default_rng(seed)
    logits = _random((40, 7), dtype, seed)
    logits[3] = [30.0, -20.0, -25.0, -30.0, -21.0, -40.0, -22.0]  # confident, correct
    logits[5, 2] = -np.inf  # a masked class (not the target)
    target = rng.integers(0, 7, 40)
    target[3] = 0
    target[5] = 4
    target[7] = -100  # ignored (with ignore_index=-100), else out of range
    return logits, target


@pytest.mark.parametrize("route", TORCH_ROUTES[:4])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("ignore_index", [None, -100, 2])
def test_torch_cross_entropy_fast_equals_generic(
    dtype, reduction, ignore_index, route, monkeypatch
):
    torch = _torch()
    _torch_route(route, monkeypatch)
    logits, target = _ce_case(dtype, 1)
    if route in ("small", "numpy") and ignore_index != -100:
        target[7] = 6  # in range: the small paths decline a class out of range
    x, t = torch.tensor(logits), torch.tensor(target)
    kw = {"reduction": reduction, "ignore_index": ignore_index}
    fast, generic = _both(lambda a, **k: xact.cross_entropy(a, t, **k), x, **kw)
    assert fast.dtype == generic.dtype and fast.shape == generic.shape
    _assert_same(fast.numpy(), generic.numpy(), ULPS[dtype])
    if reduction == "none":
        # -0.0 where ignored, as the generic path has it
        np.testing.assert_array_equal(np.signbit(fast.numpy()), np.signbit(generic.numpy()))
        # out of range without ignore_index: NaN there, and only there
        assert np.isnan(fast.numpy()[7]) == (target[7] == -100 and ignore_index != -100)
        # the confident sample keeps its relative accuracy: exp(-50) ~ 2e-22
        import mpmath

        mpmath.mp.dps = 40
        row = [mpmath.mpf(float(v)) for v in logits[3]]
        ref = mpmath.log(sum(mpmath.exp(v) for v in row)) - row[0]
        rel = abs(float(fast[3]) - float(ref)) / float(ref)
        assert rel <= 2 * float(np.finfo(dtype).eps), rel


def test_torch_cross_entropy_declines_what_it_does_not_cover():
    torch = _torch()
    from xact._fastpaths import _torch as ft

    logits, target = _ce_case("float64", 2)
    x, t = torch.tensor(logits), torch.tensor(target)
    base = {
        "target": t,
        "axis": -1,
        "weight": None,
        "ignore_index": None,
        "label_smoothing": 0.0,
        "reduction": "mean",
        "where": None,
    }
    assert isinstance(ft.cross_entropy(x, **base), torch.Tensor)
    for change in (
        {"weight": torch.ones(7, dtype=torch.float64)},
        {"label_smoothing": 0.1},
        {"reduction": "bogus"},
        {"target": t.double()},
        {"target": t[:5]},
        {"where": torch.ones(40, 7, dtype=torch.bool)},
        {"axis": 0},
    ):
        assert ft.cross_entropy(x, **{**base, **change}) is NotImplemented, change
    assert ft.cross_entropy(x.reshape(40, 7, 1), **base) is NotImplemented
    x_inf = x.clone()
    x_inf[0] = -math.inf  # a row without mass: the generic rules
    assert ft.cross_entropy(x_inf, **base) is NotImplemented
    # errors stay the generic ones
    with pytest.raises(ValueError, match="reduction"):
        xact.cross_entropy(x, t, reduction="bogus")


def test_torch_cross_entropy_float32_autograd():
    torch = _torch()
    logits, target = _ce_case("float32", 3)
    t = torch.tensor(target)
    grads, vals = [], []
    for fast in (True, False):
        x = torch.tensor(logits, requires_grad=True)
        if fast:
            y = xact.cross_entropy(x, t, ignore_index=-100)
        else:
            with _fastpaths.disabled():
                y = xact.cross_entropy(x, t, ignore_index=-100)
        y.backward()
        vals.append(y.detach().item())
        grads.append(x.grad.numpy())
    assert vals[0] == pytest.approx(vals[1], rel=1e-6)
    # p - onehot cancels in the generic float32 gradient: absolute agreement
    # to a few float32 ULP of the largest entry (1/N), not relative.
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=4e-7 / len(target))


# --------------------------------------------------------------------------
# NumPy: the work split over threads


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_threads_give_the_same_bits(dtype, monkeypatch, kernel):
    """Every range of rows (or elements) is computed the same way whatever
    thread runs it: 1 and 3 threads agree bit for bit, special rows land in
    different ranges, and both agree with the generic path."""
    from xact._fastpaths import _parallel

    monkeypatch.delenv("XACT_DISABLE_FASTPATHS", raising=False)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(fnp, "MIN_BLOCK", 64)  # several blocks per range
    monkeypatch.setattr(fnp, "SMALL", 0)
    host = _inputs(dtype)
    x = np.concatenate([host["special"], host["many_rows"][:500], host["special"]])
    used = []
    real_pool = _parallel._get_pool
    monkeypatch.setattr(_parallel, "_get_pool", lambda n: used.append(n) or real_pool(n))
    c_calls = fnp._ck.threads if isinstance(fnp._ck, _CkCalls) else []
    for name in REDUCTIONS + ELEMENTWISE:
        func = getattr(xact, name)
        kw = {"axis": -1} if name in REDUCTIONS else {}
        monkeypatch.setenv("XACT_NUM_THREADS", "1")
        one = func(x, **kw)
        assert not used and set(c_calls) <= {1}, name
        c_calls.clear()
        monkeypatch.setenv("XACT_NUM_THREADS", "3")
        three = func(x, **kw)
        c_kernel = name in REDUCTIONS or name == "sigmoid"
        if name in ("log_sigmoid", "softplus") and fnp._ck is not None:  # (AVX-512 only)
            c_kernel = fnp._ck.log1p_exp(x[:0], np.empty(0, x.dtype), 1)
        if kernel == "c" and c_kernel and fnp._ck.openmp():
            assert not used and c_calls == [3], name  # one call, an OpenMP team of 3
        else:
            assert used == [2], name  # the caller and 2 threads of the pool
        used.clear()
        c_calls.clear()
        np.testing.assert_array_equal(three, one, err_msg=name)
        with _fastpaths.disabled():
            _assert_same(three, func(x, **kw), ULPS[dtype])
    # logsumexp over everything is not split, but sums block by block: the
    # blocks must not depend on the number of threads either.
    monkeypatch.setattr(fnp, "MIN_BLOCK", 1 << 14)
    flat = np.random.default_rng(5).standard_normal(656621).astype(dtype)  # (1 ULP apart)
    lse = []
    for n in ("1", "3"):
        monkeypatch.setenv("XACT_NUM_THREADS", n)
        lse.append(xact.logsumexp(flat))
    np.testing.assert_array_equal(lse[0], lse[1])


@pytest.mark.parametrize("isa", ["avx512", "portable"])
@pytest.mark.parametrize("mode", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(17, 65599), (1040, 1013), (209716, 5)])
def test_c_kernel_large_outputs_give_the_same_bits(shape, mode, isa):
    """A call whose float32 output is 4 MiB or more, in rows of 65536
    floats or more (softmax: 32768), writes it with non-temporal stores
    (AVX-512), from each row's first 32-byte boundary on: the same rows
    computed in calls too small for that give the same bits, at every
    offset of the output (rows of 65599 floats start at each offset mod 32
    bytes), over 1 and 3 threads, and by address (``rows_at``, as large
    torch tensors take it). Shorter rows (1013, 5) write large outputs with
    normal stores, the same bits again. An output that is not 4-byte
    aligned (only the private API can pass one) is written with normal
    stores (found in review: the non-temporal stores faulted there)."""
    ck = _ck_or_skip()
    prev = _isa_or_skip(isa)
    try:
        rows, n = shape
        assert rows * n >= 1 << 20  # 4 MiB of float32
        x = (np.random.default_rng(11).standard_normal(shape) * 4).astype(np.float32)
        x[7, 0] = np.inf  # a row left to the caller, unwritten
        code = fnp.C_MODES[mode]
        bad = np.zeros(rows, np.uint8)
        ref = np.zeros_like(x)
        step = (1 << 19) // n  # rows of half the size that streams
        for r0 in range(0, rows, step):
            ck.rows(x, ref, bad, code, r0, min(rows, r0 + step))
        assert bad.nonzero()[0].tolist() == [7]
        buf = np.zeros(rows * n + 8, np.float32)
        for shift in (0, 1, 3):  # the output's offset, in floats
            out = buf[shift : shift + rows * n].reshape(shape)
            for threads, chunk in ((1, 1), (3, 64)):
                out[...] = 0
                bad[:] = 0
                assert ck.rows(x, out, bad, code, 0, rows, threads, chunk) == 1
                np.testing.assert_array_equal(out, ref)
                out[...] = 0
                addr = ck.rows_at(
                    x.ctypes.data, n * 4, rows, n, out.ctypes.data, code, 0, threads, chunk
                )
                assert addr == 1
                np.testing.assert_array_equal(out, ref)
        raw = bytearray(rows * n * 4 + 2)
        odd = memoryview(raw)[2:].cast("B").cast("f", shape)  # 2 bytes past alignment
        assert ck.rows(x, odd, bad, code, 0, rows) == 1
        np.testing.assert_array_equal(np.frombuffer(raw, np.float32, offset=2).reshape(shape), ref)
    finally:
        ck.set_isa(prev)


def test_numpy_threads_follow_the_callers_errstate(monkeypatch):
    """np.errstate is a context variable: every thread must see the caller's
    (here only the first half of the rows underflows in exp)."""
    from xact._fastpaths import _parallel

    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(fnp, "_ck", None)  # (the C kernel runs no ufunc)
    x = np.zeros((2000, 200))
    x[:1000, 0] = 800.0
    for n in ("1", "2", "3"):
        monkeypatch.setenv("XACT_NUM_THREADS", n)
        with np.errstate(under="raise"), pytest.raises(FloatingPointError, match="underflow"):
            xact.softmax(x)
        with np.errstate(under="ignore"):
            xact.softmax(x)


def test_numpy_threads_only_from_the_main_thread(monkeypatch):
    """A call from another thread (a Dask worker, a pool) runs where it is."""
    import threading

    from xact._fastpaths import _parallel

    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(fnp, "SMALL", 0)
    monkeypatch.setenv("XACT_NUM_THREADS", "4")

    def no_pool(n):
        raise AssertionError("split from a worker thread")

    monkeypatch.setattr(_parallel, "_get_pool", no_pool)
    x = _random((64, 50), "float64")
    got = {}
    worker = threading.Thread(target=lambda: got.update(out=xact.log_softmax(x)))
    worker.start()
    worker.join()
    with _fastpaths.disabled():
        _assert_same(got["out"], xact.log_softmax(x), 4)


def test_numpy_thread_errors_propagate_after_every_range_ends(monkeypatch):
    import threading
    import time

    from xact._fastpaths import _parallel

    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1)
    monkeypatch.setenv("XACT_NUM_THREADS", "3")
    done = []

    def work(i0, i1):
        if threading.current_thread() is threading.main_thread():
            raise RuntimeError("boom")
        time.sleep(0.05)
        done.append((i0, i1))
        return i1 - i0

    with pytest.raises(RuntimeError, match="boom"):
        _parallel.split(9, 1, work)
    assert sorted(done) == [(0, 3), (3, 6)]
    assert _parallel.split(9, 1, lambda i0, i1: (i0, i1)) == [(0, 3), (3, 6), (6, 9)]


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_numpy_threads_setting_is_checked(value, monkeypatch):
    monkeypatch.setenv("XACT_NUM_THREADS", value)
    with pytest.raises(ValueError, match="XACT_NUM_THREADS must be a positive integer"):
        xact.softmax(_random((512, 512), "float64"))


_FORK_SCRIPT = """
import os, sys
import numpy as np
import xact
from xact._fastpaths import _numpy, _parallel

_parallel.MIN_ELEMENTS = 1
_numpy.SMALL = 0  # (64x50 would be one block in the calling thread)
os.environ["XACT_NUM_THREADS"] = "2"
x = np.random.default_rng(0).standard_normal((64, 50))
expected = xact.softmax(x)
# the parent's threads exist: an OpenMP team (built with OpenMP), else the pool
assert (_numpy._ck is not None and _numpy._ck.openmp()) or _parallel._pool is not None
r, w = os.pipe()
pid = os.fork()
if pid == 0:  # the child: a pool of its own, no OpenMP team, the same bits
    ok = _parallel._pool is None
    ok = ok and (_numpy._ck is None or not _numpy._ck.openmp())
    ok = ok and np.array_equal(xact.softmax(x), expected)
    ok = ok and _parallel._pool is not None
    os.write(w, b"1" if ok else b"0")
    os._exit(0)
os.waitpid(pid, 0)
sys.exit(0 if os.read(r, 1) == b"1" else 1)
"""


_SHUTDOWN_SCRIPT = """
import atexit
import numpy as np
import xact
from xact._fastpaths import _parallel

_parallel.MIN_ELEMENTS = 1
x = np.random.default_rng(0).standard_normal((2000, 200))
expected = xact.softmax(x)  # (with 2 threads where there are 2 cores)
atexit.register(lambda: print(bool(np.array_equal(xact.softmax(x), expected))))
"""


def test_numpy_threads_at_interpreter_shutdown():
    """No thread can start at exit: the ranges run in the calling thread."""
    import subprocess
    import sys

    env = {**__import__("os").environ, "XACT_NUM_THREADS": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", _SHUTDOWN_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_numpy_threads_after_fork():
    """The pool is per process: a forked child builds its own (in a fresh
    interpreter, without the test session's other frameworks and threads)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# NumPy cross_entropy


def _np_ce_case(dtype):
    rng = np.random.default_rng(7)
    x = (5.0 * rng.standard_normal((3000, 9))).astype(dtype)
    t = rng.integers(0, 9, 3000)
    x[3, t[3]] = -INF  # the target class does not exist: +inf
    x[4] = -30.0
    x[4, t[4]] = 20.0  # confident and correct: a loss of 1e-21
    x[5] = 2.0  # ties
    x[6, :4] = -INF
    x[7, t[7]] = -3e38 if dtype == "float32" else -1e308  # x_y - m overflows
    x[7, (t[7] + 1) % 9] = 3e38 if dtype == "float32" else 1e308
    return x, t


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("ignore_index", [None, 2, -100])
def test_numpy_cross_entropy_fast_equals_generic(
    dtype, reduction, ignore_index, monkeypatch, kernel
):
    from xact._fastpaths import _parallel

    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1000)  # 3000x9: split in 3
    monkeypatch.setenv("XACT_NUM_THREADS", "3")
    x, t = _np_ce_case(dtype)
    assert (
        fnp.cross_entropy(
            x,
            target=t,
            axis=-1,
            weight=None,
            ignore_index=ignore_index,
            label_smoothing=0.0,
            reduction=reduction,
            where=None,
        )
        is not NotImplemented
    )
    for rows in (3000, 40):  # threads, and one block
        fast, generic = _both(
            lambda z, **kw: xact.cross_entropy(z, t[:rows], **kw),
            x[:rows],
            reduction=reduction,
            ignore_index=ignore_index,
        )
        assert type(fast) is type(generic)
        _assert_same(fast, generic, ULPS[dtype])
        np.testing.assert_array_equal(np.signbit(fast), np.signbit(generic))  # -0.0


def test_numpy_cross_entropy_keeps_the_relative_accuracy_of_a_tiny_loss(kernel):
    import mpmath

    x = np.array([[20.0, -30.0, -31.0, -29.5]])
    loss = xact.cross_entropy(x, np.array([0]), reduction="none")[0]
    with mpmath.workdps(50):
        ref = -mpmath.log(mpmath.exp(20) / sum(mpmath.exp(mpmath.mpf(float(v))) for v in x[0]))
    assert abs(loss - float(ref)) <= 2 * np.spacing(float(ref))


@pytest.mark.parametrize(
    ("logits", "target", "kw"),
    [
        (_random((6, 5), "float64"), np.array([0, 1, 2, 3, 4, 5]), {}),  # out of range
        (_random((6, 5), "float64"), np.array([0, 1, 2, 3, 4, -1]), {}),
        (SPECIAL_ROWS[:6, :5].copy(), np.array([0, 1, 2, 3, 4, 0]), {}),  # NaN/inf rows
        (_random((6, 5), "float64"), np.array([0, 1, 2, 3, 4, 0]), {"label_smoothing": 0.1}),
        (_random((6, 5), "float64"), np.array([0, 1, 2, 3, 4, 0]), {"weight": np.ones(5)}),
        (_random((5, 6), "float64").T, np.array([0, 1, 2, 3, 4, 0]), {}),  # not contiguous
        (_random((6, 5), "float64"), _random((6, 5), "float64"), {}),  # probabilities
        (_random((2, 5, 3), "float64"), np.zeros((2, 3), int), {"axis": 1}),
        (_random((6, 5), "float16"), np.array([0, 1, 2, 3, 4, 0]), {}),
    ],
)
def test_numpy_cross_entropy_declines_to_the_generic_answer(logits, target, kw, kernel):
    ce = fnp.cross_entropy
    full = {"axis": -1, "weight": None, "ignore_index": None, "label_smoothing": 0.0}
    full.update(kw)
    assert ce(logits, target=target, reduction="mean", where=None, **full) is NotImplemented
    try:
        fast = xact.cross_entropy(logits, target, **kw)
    except ValueError as exc:
        with _fastpaths.disabled(), pytest.raises(ValueError, match=str(exc)[:30]):
            xact.cross_entropy(logits, target, **kw)
        return
    with _fastpaths.disabled():
        generic = xact.cross_entropy(logits, target, **kw)
    np.testing.assert_array_equal(fast, generic)


def test_numpy_cross_entropy_peak_memory(monkeypatch, kernel):
    monkeypatch.delenv("XACT_DISABLE_FASTPATHS", raising=False)
    x = _random((256, 4096), "float64")
    t = np.random.default_rng(0).integers(0, 4096, 256)
    xact.cross_entropy(x, t)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        xact.cross_entropy(x, t, reduction="none")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= 1.0 * x.nbytes, f"{peak / x.nbytes:.2f}x the input"


@pytest.mark.parametrize("ignore_index", [None, -1, 2**63, -(2**70)])
def test_numpy_cross_entropy_target_dtypes(ignore_index, kernel):
    """Any integer target dtype (uint64, whose large values would wrap in
    int64, takes the NumPy operations) and an ignore_index beyond int64."""
    x = _random((7, 5), "float64")
    for dt in (np.int8, np.uint8, np.int32, np.int64, np.uint64):
        t = np.array([0, 1, 2, 3, 4, 0, 1], dt)
        fast, generic = _both(
            lambda z, **kw: xact.cross_entropy(z, t, **kw), x, ignore_index=ignore_index
        )
        _assert_same(fast, generic, ULPS["float64"])
    big = np.array([0, 1, 2, 3, 4, 0, 2**64 - 1], np.uint64)  # -1 if wrapped
    fast, generic = _both(
        lambda z, **kw: xact.cross_entropy(z, big, **kw), x, ignore_index=-1, reduction="none"
    )
    _assert_same(fast, generic, ULPS["float64"])


# --------------------------------------------------------------------------
# The C kernel (_ckernel.c)


def _ck_or_skip():
    if fnp._ck is None:
        if os.environ.get("CI"):
            pytest.fail("the C kernel is not built (CI has a compiler: it must be)")
        pytest.skip("the C kernel is not built (no C compiler at install time)")
    return fnp._ck


def _worst_ulp(x, out, ref, dtype="float64"):
    """The largest error of ``out`` against ``ref(mpf(x))`` (mpmath, 120
    bits), in ULPs of ``dtype`` at the true value (the smallest subnormal
    where it rounds to 0)."""
    import mpmath

    tiny = float(np.finfo(dtype).smallest_subnormal)
    worst = 0.0
    with mpmath.workprec(120):
        for xi, yi in zip(x.tolist(), out.tolist(), strict=True):
            want = ref(mpmath.mpf(xi))
            spacing = float(np.spacing(np.asarray(abs(float(want)), dtype))) or tiny
            worst = max(worst, float(abs(mpmath.mpf(yi) - want) / spacing))
    return worst


def _worst_exp_ulp(x, out):
    """The largest error of ``out = exp(x)`` (float64) in ULPs, against mpmath."""
    import mpmath

    return _worst_ulp(x, out, mpmath.exp)


@pytest.mark.parametrize("careful", [False, True])
def test_c_kernel_exp_against_mpmath(careful):
    """The kernel's own exp: at most 0.64 ULP over [-700, 0] (measured; NumPy's
    float64 exp: 0.66), and the careful variant correctly rounded to the
    subnormal spacing below exp(-700); 0 below exp(-745.13)."""

    ck = _ck_or_skip()
    rng = np.random.default_rng(21)
    lo = -746.0 if careful else -700.0
    x = np.concatenate(
        [
            rng.uniform(lo, 0.0, 1500),
            rng.uniform(-1.0, 0.0, 300),
            -rng.exponential(1e-3, 200),
            [0.0, -0.0, -5e-324, -700.0, -1e-17],
        ]
    )
    if careful:
        x = np.concatenate([x, rng.uniform(-745.2, -700.0, 800), [-708.3, -745.13, -745.14]])
    out = np.empty_like(x)
    ck.exp(x, out, careful)
    worst = _worst_exp_ulp(x, out)
    assert worst <= 0.65, worst
    if careful:
        deep = np.array([-745.2, -746.0, -800.0, -1000.0, -1100.0])
        out = np.empty_like(deep)
        ck.exp(deep, out, True)
        np.testing.assert_array_equal(out, 0.0)
        tiny = np.array([-744.44007192138126])  # exp = 5e-324, the smallest subnormal
        ck.exp(tiny, out[:1], True)
        assert out[0] == 5e-324


def test_c_kernel_exp16_against_mpmath():
    """The exp of the float32 AVX-512 kernel (a table of 16, no tail words):
    within 1.2 ULP of float64 over [-700, 0] (measured: 1.14), exactly 1 at
    0; far more than float32 results need (2^-24 is 2^29 ULP of float64)."""

    ck = _ck_or_skip()
    if "avx512" not in ck.isas():
        pytest.skip("this CPU has no AVX-512")
    rng = np.random.default_rng(24)
    x = np.concatenate(
        [
            rng.uniform(-700.0, 0.0, 1500),
            rng.uniform(-1.0, 0.0, 400),
            -rng.exponential(1e-3, 200),
            np.arange(-40, 1) * (np.log(2) / 16),  # table points
            [0.0, -0.0, -5e-324, -700.0, -1e-17],
        ]
    )
    out = np.empty_like(x)
    ck.exp16(x, out)
    worst = _worst_exp_ulp(x, out)
    assert worst <= 1.2, worst
    assert out[-5] == out[-4] == 1.0
    # clamped to [-700, 0] (the rows never pass anything else)
    e700 = out[-2]
    edge = np.array([-800.0, 5.0, -INF])
    ck.exp16(edge, out[:3])
    np.testing.assert_array_equal(out[:3], [e700, 1.0, e700])
    with pytest.raises(ValueError, match="float64 of one size"):
        ck.exp16(x, np.empty(3))


def test_c_kernel_float64_avx512_exp_against_mpmath():
    """The exp of the float64 AVX-512 rows (a table of 16 with tails, a
    degree-7 polynomial, FMAs): within 0.55 ULP over [-700, 0] (measured:
    0.523), as accurate as the portable kernel's (0.64 allowed there);
    exactly 1 at 0."""
    ck = _ck_or_skip()
    if "avx512" not in ck.isas():
        pytest.skip("this CPU has no AVX-512")
    rng = np.random.default_rng(26)
    x = np.concatenate(
        [
            rng.uniform(-700.0, 0.0, 3000),
            rng.uniform(-1.0, 0.0, 800),
            -rng.exponential(1e-3, 400),
            np.arange(-40, 1) * (np.log(2) / 16),  # table points
            np.arange(-40, 0) * (np.log(2) / 16) + np.log(2) / 32,  # |r| at its largest
            [0.0, -0.0, -5e-324, -700.0, -1e-17],
        ]
    )
    out = np.empty_like(x)
    ck.exp16(x, out, True)
    worst = _worst_exp_ulp(x, out)
    assert worst <= 0.55, worst
    assert out[-5] == out[-4] == out[-3] == 1.0


@pytest.mark.parametrize("isa", ["avx512", "portable"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_c_kernel_sigmoid_against_mpmath(dtype, isa):
    """The C kernel's sigmoid (NumPy arrays, and torch's float64 and small
    float32 tensors): float32 correctly rounded (measured 0.49994 ULP on
    both kernels), subnormal results included, where torch.sigmoid gives 0
    below -88; float64 within 2 ULP (measured 1.96: the exp's 0.52 ULP, the
    rounding of 1 + t and the division's, each up to twice as many ULP of a
    result in a lower binade), with subnormal results below -708 and
    exactly 0 below -745.
    NaN stays NaN, the infinities give 0 and 1, and every length around the
    lanes (8, 16) is written and nothing past it."""
    import mpmath

    ck = _ck_or_skip()
    prev = _isa_or_skip(isa)
    try:
        rng = np.random.default_rng(27)
        x = np.concatenate(
            [
                20.0 * rng.standard_normal(1500),
                rng.uniform(-110.0, -80.0, 300),  # float32: subnormal results
                rng.uniform(-760.0, 760.0, 300),
                [0.0, -0.0, -700.5, 700.5, -708.5, -744.0, -745.2, -1e-300, 36.9, -36.9],
            ]
        ).astype(dtype)
        out = np.empty_like(x)
        ck.sigmoid(x, out)
        worst = _worst_ulp(x, out, lambda v: 1 / (1 + mpmath.exp(-v)), dtype)
        assert worst <= (0.5 if dtype == "float32" else 2.0), worst
        if dtype == "float32":
            sub = (x > -103.0) & (x < -88.0)
            assert sub.any() and (out[sub] > 0).all()  # subnormal, not 0
        special = np.array([NAN, INF, -INF, -800.0, 800.0], dtype)
        res = np.empty_like(special)
        ck.sigmoid(special, res)
        np.testing.assert_array_equal(res, [NAN, 1.0, 0.0, 0.0, 1.0])
        for n in (1, 7, 8, 9, 15, 16, 17, 33):
            buf = np.full(n + 3, 7.0, dtype)
            ck.sigmoid(x[:n], buf[:n])
            np.testing.assert_array_equal(buf[:n], out[:n])
            assert (buf[n:] == 7.0).all()
        with pytest.raises(ValueError, match="one format and size"):
            ck.sigmoid(x, np.empty(3, dtype))
        with pytest.raises(ValueError, match="float32 or float64"):
            ck.sigmoid(x.astype(np.float16), np.empty(x.size, np.float16))
    finally:
        ck.set_isa(prev)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sign", [-1, 1])
def test_c_kernel_log_sigmoid_and_softplus_against_mpmath(sign, dtype):
    """The AVX-512 kernel of log_sigmoid (sign -1) and softplus (+1), with
    its own exp and log1p: float32 correctly rounded (measured 0.5 ULP),
    float64 within 2 ULP (measured up to 1.86 near |x| = ln 16: the exp's
    0.52 ULP carried through log1p, and the roundings; the NumPy operations
    1.47 there), as the accuracy tests hold every backend to. Where
    ``1 + exp(-|x|)`` rounds to 2, where the log1p switches from its series
    to its table (``exp(-|x|) = 1/32``), tiny results (relative accuracy),
    lanes left to libm (|x| >= 700), NaN and the infinities. Without the
    AVX-512 kernel it declines (False) and writes nothing."""
    import mpmath

    ck = _ck_or_skip()
    prev = ck.set_isa("portable")
    try:
        out = np.full(3, 7.0)
        assert ck.log1p_exp(np.zeros(3), out, sign) is False and (out == 7.0).all()
    finally:
        ck.set_isa(prev)
    if "avx512" not in ck.isas():
        pytest.skip("this CPU has no AVX-512")
    prev = ck.set_isa("avx512")
    try:
        rng = np.random.default_rng(29)
        edge = np.log(32.0)
        x = np.concatenate(
            [
                20.0 * rng.standard_normal(1500),
                0.1 * rng.standard_normal(300),
                rng.uniform(-760.0, 760.0, 300),
                edge + 1e-6 * rng.standard_normal(100),
                np.log(16.0) + rng.uniform(-0.3, 0.3, 300),
                -edge + 1e-6 * rng.standard_normal(100),
                [0.0, -0.0, 1e-17, -1e-17, 2**-54, 40.0, -40.0, 700.5, -700.5, 744.0, 800.0],
            ]
        ).astype(dtype)
        out = np.empty_like(x)
        assert ck.log1p_exp(x, out, sign) is True

        def ref(v):
            y = mpmath.log1p(mpmath.exp(-abs(v)))
            return min(v, 0) - y if sign < 0 else max(v, 0) + y

        worst = _worst_ulp(x, out, ref, dtype)
        assert worst <= (0.5 if dtype == "float32" else 2.0), worst
        special = np.array([NAN, INF, -INF], dtype)
        res = np.empty_like(special)
        ck.log1p_exp(special, res, sign)
        expect = [NAN, 0.0, -INF] if sign < 0 else [NAN, INF, 0.0]
        np.testing.assert_array_equal(res, expect)
        for n in (1, 7, 8, 9, 15, 16, 17, 33):
            buf = np.full(n + 3, 7.0, dtype)
            ck.log1p_exp(x[:n], buf[:n], sign)
            np.testing.assert_array_equal(buf[:n], out[:n])
            assert (buf[n:] == 7.0).all()
        with pytest.raises(ValueError, match="sign must be"):
            ck.log1p_exp(x, out, 2)
        with pytest.raises(ValueError, match="one format and size"):
            ck.log1p_exp(x, np.empty(3, dtype), sign)
        # By address (large torch float64 tensors): the same bits, on this
        # thread and over threads, and nothing written past n.
        f64 = int(dtype == "float64")
        buf = np.full(x.size + 3, 7.0, dtype)
        assert ck.log1p_exp_at(x.ctypes.data, buf.ctypes.data, x.size, f64, sign) is True
        np.testing.assert_array_equal(buf[: x.size], out)
        assert (buf[x.size :] == 7.0).all()
        big = np.tile(x, 4)  # (more than 4096 values: the GIL released, threads)
        one, two = np.empty_like(big), np.empty_like(big)
        ck.log1p_exp(big, one, sign)
        assert ck.log1p_exp_at(big.ctypes.data, two.ctypes.data, big.size, f64, sign, 3, 1000)
        np.testing.assert_array_equal(one, two)
        with pytest.raises(ValueError, match="bad arguments"):
            ck.log1p_exp_at(x.ctypes.data, buf.ctypes.data, x.size, f64, 0)
        with pytest.raises(ValueError, match="bad arguments"):
            ck.log1p_exp_at(x.ctypes.data, buf.ctypes.data, -1, f64, sign)
    finally:
        ck.set_isa(prev)
    prev = ck.set_isa("portable")
    try:
        out = np.full(3, 7.0)
        assert ck.log1p_exp_at(np.zeros(3).ctypes.data, out.ctypes.data, 3, 1, sign) is False
        assert (out == 7.0).all()
    finally:
        ck.set_isa(prev)


def test_c_kernel_float32_lane_sigmoid_against_mpmath():
    """The float32-lane sigmoid of large torch float32 tensors
    (``sigmoid_at(..., lanes=True)``): within 0.78 ULP (checked over all
    2^32 float32 inputs against a float64 reference, once; here a sample
    with the worst known ones), subnormal results kept (where
    torch.sigmoid gives 0), NaN and the infinities right, every length
    around the lanes written and nothing past it; without the AVX-512
    kernel it declines (False) and writes nothing."""
    import mpmath

    ck = _ck_or_skip()
    rng = np.random.default_rng(30)
    x = np.concatenate(
        [
            20.0 * rng.standard_normal(2000),
            rng.uniform(-5.0, 5.0, 3000),
            rng.uniform(-110.0, -80.0, 500),
            [0.0, -0.0, 17.0, -17.0, 88.0, -88.8, -103.9, -104.5, 1e-30, -1e-30],
            [-6.237699031829834, -7.000237941741943, -86.40454864501953, -2.055216073989868],
        ]
    ).astype(np.float32)
    out = np.full(x.size + 3, 7.0, np.float32)
    prev = ck.set_isa("portable")
    try:
        assert ck.sigmoid_at(x.ctypes.data, out.ctypes.data, x.size, 0, 1, 1, True) is False
        assert (out == 7.0).all()
    finally:
        ck.set_isa(prev)
    if "avx512" not in ck.isas():
        pytest.skip("this CPU has no AVX-512")
    prev = ck.set_isa("avx512")
    try:
        assert ck.sigmoid_at(x.ctypes.data, out.ctypes.data, x.size, 0, 1, 1, True) is True
        assert (out[x.size :] == 7.0).all()
        worst = _worst_ulp(x, out[: x.size], lambda v: 1 / (1 + mpmath.exp(-v)), "float32")
        assert worst <= 0.78, worst
        sub = (x > -103.0) & (x < -88.0)
        assert (out[: x.size][sub] > 0).all()
        special = np.array([NAN, INF, -INF], np.float32)
        res = np.empty_like(special)
        ck.sigmoid_at(special.ctypes.data, res.ctypes.data, 3, 0, 1, 1, True)
        np.testing.assert_array_equal(res, [NAN, 1.0, 0.0])
        for n in (1, 15, 16, 17, 33):
            buf = np.full(n + 3, 7.0, np.float32)
            ck.sigmoid_at(x.ctypes.data, buf.ctypes.data, n, 0, 1, 1, True)
            np.testing.assert_array_equal(buf[:n], out[:n])
            assert (buf[n:] == 7.0).all()
        big = 30.0 * rng.standard_normal(70_000).astype(np.float32)
        one, two = np.empty_like(big), np.empty_like(big)
        ck.sigmoid_at(big.ctypes.data, one.ctypes.data, big.size, 0, 1, 1, True)
        ck.sigmoid_at(big.ctypes.data, two.ctypes.data, big.size, 0, 2, 4096, True)
        np.testing.assert_array_equal(one, two)  # threads: the same bits
    finally:
        ck.set_isa(prev)


def test_torch_sigmoid_routes():
    """torch: float64 tensors and small float32 ones run the C kernel on
    their memory (the NumPy path's bits); large float32 ones its float32
    lanes (AVX-512; else torch.sigmoid with the correction below -88, as a
    view that is not contiguous); all within the generic answers, subnormal
    results kept."""
    torch = _torch()
    from xact._fastpaths import _torch as ft

    if fnp._ck is None:
        pytest.skip("the C kernel is not built")
    rng = np.random.default_rng(28)
    for dt, n in (("float64", 300), ("float64", ft.SMALL + 5), ("float32", 300)):
        host = (30.0 * rng.standard_normal(n)).astype(dt)
        host[:4] = [-100.0, -95.0, NAN, -INF]
        out = xact.sigmoid(torch.tensor(host))
        np.testing.assert_array_equal(out.numpy(), xact.sigmoid(host))
    big = (30.0 * rng.standard_normal(ft.SMALL + 5)).astype(np.float32)
    big[:3] = [-100.0, -95.0, NAN]
    ck = fnp._ck
    for isa in ck.isas():  # (portable: torch.sigmoid and the correction)
        prev = ck.set_isa(isa)
        try:
            for x in (torch.tensor(big), torch.tensor(np.stack([big, big]).T.copy()).T):
                fast, generic = _both(xact.sigmoid, x)
                _assert_same(fast.numpy(), generic.numpy(), ULPS["float32"])
                assert fast.numpy().reshape(-1)[0] > 0  # exp(-100): subnormal, not 0
        finally:
            ck.set_isa(prev)


@pytest.mark.parametrize("name", ["log_sigmoid", "softplus"])
def test_torch_log_sigmoid_and_softplus_routes(name, monkeypatch):
    """torch: large contiguous float64 tensors without autograd (softplus:
    ``beta`` 1) run the C kernel on their memory (``log1p_exp_at``, over
    its threads): the NumPy path's bits, special values included. Small
    ones, float32 ones, strided views, autograd, another ``beta``, and the
    kernel's decline without AVX-512 take torch's kernels: the generic
    answers, and autograd's gradient."""
    torch = _torch()
    from xact._fastpaths import _torch as ft

    ck = _ck_or_skip()
    calls = []

    class Counting:
        def __getattr__(self, attr):
            if attr == "log1p_exp_at":
                return lambda *a: calls.append(a[2]) or ck.log1p_exp_at(*a)
            return getattr(ck, attr)

    monkeypatch.setattr(fnp, "_ck", Counting())
    func = getattr(xact, name)
    rng = np.random.default_rng(31)
    host = (30.0 * rng.standard_normal(ft.SMALL + 5)).astype(np.float64)
    host[:7] = [NAN, INF, -INF, -800.0, 800.0, 0.0, -0.0]
    x = torch.tensor(host)
    before = x.clone()
    avx512 = "avx512" in ck.isas()
    out = func(x)
    assert out.dtype == x.dtype and out.shape == x.shape
    if avx512:
        assert calls == [0, host.size]
        np.testing.assert_array_equal(out.numpy(), func(host))
        np.testing.assert_array_equal(np.signbit(out.numpy()), np.signbit(func(host)))
    np.testing.assert_array_equal(x.numpy(), before.numpy())  # (NaN equal to NaN)
    calls.clear()
    # declined: the generic answers all the same
    declined = [
        (x[:300], {}),  # small
        (x.float(), {}),
        (torch.tensor(np.stack([host, host]).T.copy()).T, {}),  # strided
        (torch._neg_view(-x), {}),  # a negative view
    ]
    if name == "softplus":
        declined.append((x, {"beta": 2.0}))
    for arg, kw in declined:
        fast, generic = _both(lambda a, k=kw: func(a, **k), arg)
        ulps = ULPS["float32"] if arg.dtype == torch.float32 else TORCH_F64_ULPS
        _assert_same(fast.numpy(), generic.numpy(), ulps)
    assert calls == []
    grad = x[8:].clone().requires_grad_()
    (g_fast,) = torch.autograd.grad(func(grad).sum(), grad)
    with _fastpaths.disabled():
        (g_gen,) = torch.autograd.grad(func(grad).sum(), grad)
    _assert_same(g_fast.numpy(), g_gen.numpy(), TORCH_F64_ULPS)
    assert calls == []
    prev = ck.set_isa("portable")  # (the kernel declines: torch's kernels)
    try:
        fast, generic = _both(func, x)
        _assert_same(fast.numpy(), generic.numpy(), TORCH_F64_ULPS)
        assert calls == [0]  # (asked with no values, before any allocation)
    finally:
        ck.set_isa(prev)


def test_c_kernel_isa_switch():
    ck = _ck_or_skip()
    assert "portable" in ck.isas()
    prev = ck.set_isa("portable")
    try:
        assert prev in ck.isas()
        assert ck.set_isa("portable") == "portable"
        with pytest.raises(ValueError, match=r"avx512.*portable"):
            ck.set_isa("sse9")
        if "avx512" not in ck.isas():
            with pytest.raises(ValueError, match="no AVX-512"):
                ck.set_isa("avx512")
    finally:
        ck.set_isa(prev)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax", "cross_entropy"])
def test_c_kernel_variants_agree(name, dtype):
    """The AVX-512 and the portable rows. float32: both compute in float64
    and round once, so they differ by at most an ULP of float32 (where a
    result lies within a few ULP of float64 of a rounding boundary).
    float64: the same arithmetic but for the exp (two of 0.52 and 0.64 ULP):
    measured up to 2 ULP apart, 4 for softmax (its terms up to two apart,
    then a division each rounds, and a small result's ULP is smaller than
    its terms'); each is as accurate as the other against mpmath. On random rows of every length around the
    lanes (8, 16) and the unrolled loop (32), the special rows, and rows
    with subnormal terms (float64: the portable kernel's careful rows)."""
    _ck_or_skip()
    rng = np.random.default_rng(25)
    rows = [
        (3.0 * rng.standard_normal((5, n))).astype(dtype)
        for n in (1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000)
    ]
    rows.append(300.0 * rng.standard_normal((5, 40)).astype(dtype))  # tiny terms
    with np.errstate(over="ignore"):
        rows.append(SPECIAL_ROWS.astype(dtype))
    rows.append(np.array([[0.0, -30.0, -40.0, -110.0, -150.0, -INF]], dtype))
    rows.append(np.array([[0.0, -1.0, -720.0, -745.0, -2.0]], dtype))
    results = {}
    for isa in ("avx512", "avx512-rows", "portable"):
        prev = _isa_or_skip(isa)
        try:
            if name == "cross_entropy":
                res = [
                    xact.cross_entropy(r, np.arange(len(r)) % r.shape[1], reduction="none")
                    for r in rows
                ]
            else:
                res = [getattr(xact, name)(r, axis=-1) for r in rows]
        finally:
            _ck_or_skip().set_isa(prev)
        results[isa] = res
    ulps = 1 if dtype == "float32" else 4 if name == "softmax" else 2
    for a, b in zip(results["avx512"], results["portable"], strict=True):
        _assert_same(a, b, ulps)
    for a, b in zip(results["avx512"], results["avx512-rows"], strict=True):
        np.testing.assert_array_equal(a, b)


def _short_float64_rows(rng):
    """float64 blocks for the kernel of short rows (eight a time, a row a
    lane): every length it takes (1 to 32) and the first it does not, row
    counts around the eight lanes, the special rows and careful ones (an
    entry more than 700 below the maximum) among ordinary ones, ties, signed
    zeros, and rows with a stride (a slice of a wider array)."""
    for n in (*range(1, 18), 23, 31, 32, 33):
        for rows in (1, 5, 8, 9, 16, 21):
            x = (rng.choice([0.5, 3.0, 40.0]) * rng.standard_normal((rows, n + 3)))[:, 1 : n + 1]
            if rows > 4:
                with np.errstate(over="ignore"):
                    special = SPECIAL_ROWS[rng.integers(0, len(SPECIAL_ROWS), 3)]
                x[1:4] = (
                    np.resize(special, (3, n)) if n < 6 else np.pad(special, ((0, 0), (0, n - 6)))
                )
                x[4, rng.integers(0, n)] = x[4].max()  # a tie
                x[rows - 2, n - 1] = NAN  # (SPECIAL_ROWS has its NaNs first)
                if n > 1:
                    x[rows - 1, 0] = x[rows - 1].max() - 720.0  # careful
                    x[0, : n // 2] = np.where(np.arange(n // 2) % 2 == 0, 0.0, -0.0)
            yield x


def test_c_kernel_short_float64_rows_give_the_row_kernels_bits():
    """float64 rows of at most 32 run eight at a time under AVX-512, each row
    in a lane of its own, with the row kernel's arithmetic in its order: the
    same bits as the rows one at a time (set_isa("avx512-rows")) in every
    mode and for cross_entropy, the same rows left to the caller, and
    nothing written for those."""
    ck = _ck_or_skip()
    if "avx512" not in ck.isas():
        pytest.skip("this CPU has no AVX-512")
    rng = np.random.default_rng(31)
    for x in _short_float64_rows(rng):
        rows, n = x.shape
        target = rng.integers(-1, n + 1, rows)  # some out of range
        got = {}
        for isa in ("avx512", "avx512-rows"):
            prev = ck.set_isa(isa)
            try:
                res = []
                for mode, width in ((0, 1), (1, n), (2, n), (3, 2)):
                    out = np.full((rows, width), 7.0)
                    bad = np.zeros(rows, np.uint8)
                    res.append((ck.rows(x, out, bad, mode, 0, rows), bad, out))
                    # a range that does not start at a block of eight
                    out2 = np.full((rows, width), 7.0)
                    bad2 = np.zeros(rows, np.uint8)
                    res.append((ck.rows(x, out2, bad2, mode, rows // 3, rows), bad2, out2))
                for ignore in (None, 0):
                    loss = np.full(rows, 7.0)
                    res.append((ck.cross_entropy(x, target, loss, ignore, 0, rows), loss))
            finally:
                ck.set_isa(prev)
            got[isa] = res
        for a, b in zip(got["avx512"], got["avx512-rows"], strict=True):
            assert a[0] == b[0], (n, rows)
            for u, v in zip(a[1:], b[1:], strict=True):
                if u.dtype == np.float64:  # (the bits: NaNs and signed zeros)
                    u, v = u.view(np.uint64), v.view(np.uint64)
                np.testing.assert_array_equal(u, v, f"n={n} rows={rows}")


@pytest.mark.parametrize(
    ("dtype", "isa"),
    [
        ("float64", "avx512"),
        ("float64", "avx512-rows"),
        ("float64", "portable"),
        ("float32", "avx512"),
        ("float32", "portable"),
    ],
)
def test_c_kernel_row_lengths_and_layouts(dtype, isa):
    """Row lengths around the kernel's lanes (8; 16 and 32 in the float32
    AVX-512 rows) and chunks (256), rows that need the careful exp (results
    in the subnormal range), masked (-inf) entries, and rows with a stride (a
    slice of a wider array): the generic answers."""
    ck = _ck_or_skip()
    prev = _isa_or_skip(isa)
    try:
        _row_lengths_and_layouts(dtype)
    finally:
        ck.set_isa(prev)


def _row_lengths_and_layouts(dtype):
    rng = np.random.default_rng(22)
    for n in (1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 255, 256, 257, 513, 1000):
        x = (5.0 * rng.standard_normal((6, n))).astype(dtype)
        if n > 3:
            x[1, 1] = -720.0  # float64: exp(-720) is subnormal (careful)
            x[2, :: max(1, n // 3)] = -INF  # masked entries
            x[3, n // 2] = x[3].max()  # a tie
        wide = np.zeros((6, n + 5), dtype)
        wide[:, 2 : n + 2] = x
        for arr in (x, wide[:, 2 : n + 2], x[::-1]):
            for name in REDUCTIONS:
                fast, generic = _both(getattr(xact, name), arr, axis=-1)
                try:
                    _assert_same(fast, generic, ULPS[dtype])
                except AssertionError as exc:
                    raise AssertionError(f"{name} n={n}: {exc}") from None
    # float64 softmax down to the subnormal range, exactly where it is exact
    x = np.array([[0.0, -720.0, -740.0, -745.0, -746.0, -INF]])
    fast, generic = _both(xact.softmax, x.astype(dtype), axis=-1)
    _assert_same(fast, generic, ULPS[dtype])
    if dtype == "float64":
        assert fast[0, 1] > 0 and fast[0, 3] > 0 and fast[0, 4] == 0


def test_c_kernel_rejects_bad_buffers():
    """The private entry point checks what it is given (it writes raw memory)."""
    ck = _ck_or_skip()
    x = np.zeros((4, 5))
    bad = np.zeros(4, np.uint8)
    with pytest.raises(ValueError, match="out has the wrong dtype or size"):
        ck.rows(x, np.empty((3, 1)), bad, 0, 0, 4)
    with pytest.raises(ValueError, match="out has the wrong dtype or size"):
        ck.rows(x, np.empty((4, 5), np.float32), bad, 1, 0, 4)
    with pytest.raises(ValueError, match="unit stride"):
        ck.rows(np.zeros((5, 4)).T, np.empty((4, 1)), bad, 0, 0, 4)
    with pytest.raises(ValueError, match="unit stride"):
        ck.rows(np.zeros((4, 5), np.int64), np.empty((4, 1)), bad, 0, 0, 4)
    with pytest.raises(ValueError, match="mode"):
        ck.rows(x, np.empty((4, 5)), bad, 7, 0, 4)
    with pytest.raises(ValueError, match="range"):
        ck.rows(x, np.empty((4, 1)), bad, 0, 2, 5)
    with pytest.raises(ValueError, match="a byte a row"):
        ck.rows(x, np.empty((4, 1)), np.zeros(3, np.uint8), 0, 0, 4)
    with pytest.raises(BufferError):
        ck.rows(x, b"read-only", bad, 0, 0, 4)
    assert ck.rows(x, np.empty((4, 1)), bad, 0, 0, 4) == 0


def test_c_kernel_unaligned_and_strided_inputs():
    """Found in review: an array at an odd byte offset (NumPy's buffer
    format "=d") and a strided int64 target made the kernel's entry points
    raise; they must give the generic answers."""
    rng = np.random.default_rng(23)
    for dt in (np.float64, np.float32):
        raw = bytearray(4 * 3 * np.dtype(dt).itemsize + 1)
        x = np.frombuffer(raw, dt, offset=1, count=12).reshape(4, 3)
        x[...] = rng.standard_normal((4, 3))  # (a writable, unaligned view)
        assert not x.flags.aligned
        for name in REDUCTIONS:
            fast, generic = _both(getattr(xact, name), x, axis=-1)
            _assert_same(fast, generic, ULPS[np.dtype(dt).name])
        t = np.arange(8, dtype=np.int64)[::2] % 3
        for target in (t, t[::-1], np.frombuffer(bytearray(33), np.int64, offset=1, count=4) % 3):
            fast, generic = _both(lambda z, **kw: xact.cross_entropy(z, target, **kw), x)
            _assert_same(fast, generic, ULPS[np.dtype(dt).name])


def test_c_kernel_careful_exp_for_a_huge_maximum():
    """Found in review: with |max| >= 2^55, m - 700 rounds, and a row whose
    spread is just over 700 took the fast exp, which drops terms below
    exp(-700): softmax gave 0 for 1.8e-306."""
    m = 2.0**55 + 8000.0
    x = np.array([[m, m - 700.0]])
    fast, generic = _both(xact.softmax, x, axis=-1)
    assert generic[0, 1] > 0
    _assert_same(fast, generic, ULPS["float64"])


def test_torch_unaligned_tensors():
    """A tensor at an odd byte offset (torch.frombuffer), above the NumPy
    route's size, through the C kernel: the generic answers."""
    torch = _torch()
    from xact._fastpaths import _torch as ft

    n = 6 * (ft.SMALL // 6 + 1)  # above SMALL, whole rows of 6
    raw = bytearray(8 * n + 1)
    x = torch.frombuffer(raw, dtype=torch.float64, offset=1, count=n).reshape(-1, 6)
    x.copy_(torch.tensor(_random((n // 6, 6), "float64")))
    for name in REDUCTIONS:
        fast, generic = _both(getattr(xact, name), x, axis=-1)
        _assert_same(fast.numpy(), generic.numpy(), ULPS["float64"])
    t = torch.zeros(n // 6, dtype=torch.int64)
    fast, generic = _both(lambda z, **kw: xact.cross_entropy(z, t, **kw), x)
    _assert_same(fast.numpy(), generic.numpy(), ULPS["float64"])


@pytest.mark.parametrize("route", ["c", "torch"])
def test_torch_cross_entropy_out_of_range_targets_on_special_rows(route, monkeypatch):
    """A target out of range gives NaN whatever its row holds (all -inf,
    NaN): the C kernel does not read that row, and agrees with the generic
    rules."""
    torch = _torch()
    _torch_route(route, monkeypatch)
    x = torch.tensor(_random((6, 5), "float64"))
    x[2], x[4] = -INF, NAN
    t = torch.tensor([0, 1, 7, 3, -3, 2])
    for reduction in ("none", "sum", "mean"):
        fast, generic = _both(
            lambda z, **kw: xact.cross_entropy(z, t, **kw), x, reduction=reduction
        )
        _assert_same(fast.numpy(), generic.numpy(), ULPS["float64"])
    assert torch.isnan(xact.cross_entropy(x, t, reduction="none")[[2, 4]]).all()


@pytest.mark.parametrize("isa", ["avx512", "portable"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_zero_losses_keep_the_generic_sign(dtype, isa):
    """Each special row with each target class, on NumPy and torch: the
    generic code's values, and its -0.0 where a float32 loss rounds to 0
    (its float32 terms far below the maximum underflow to 0, where the
    kernel's float64 ones leave a loss of 1e-300 or so). Once with the
    rows the kernel leaves to the caller, once without them (a batch with
    one of them goes to the generic code whole)."""
    _ck_or_skip()
    torch = pytest.importorskip("torch")
    with np.errstate(over="ignore"):
        special = SPECIAL_ROWS.astype(dtype)
    rows, n = special.shape
    h = np.repeat(special, n, axis=0)  # each row once with each target
    h = np.concatenate([h, np.array([[0.0, -200.0, -999.0, -INF, -150.0, -120.0]], dtype)])
    t = np.append(np.tile(np.arange(n), rows), 0)
    m = h.max(axis=1).astype(np.float64)
    kernel = ~np.isnan(h).any(axis=1) & (np.abs(m) < _fastpaths.LARGEST_MAX)
    prev = _isa_or_skip(isa)
    try:
        for x, tx in ((h, t), (h[kernel], t[kernel])):
            fast, generic = _both(lambda z, tx=tx: xact.cross_entropy(z, tx, reduction="none"), x)
            _assert_same(fast, generic, ULPS[dtype])
            tt = torch.tensor(tx)
            fast, generic = _both(
                lambda z, tt=tt: xact.cross_entropy(z, tt, reduction="none"), torch.tensor(x)
            )
            _assert_same(fast.numpy(), generic.numpy(), ULPS[dtype])
        if dtype == "float32":  # (float64: e^-120)
            assert fast[-1] == 0 and torch.signbit(fast[-1])
    finally:
        _ck_or_skip().set_isa(prev)


def _vm_flags(addr):
    """The VmFlags of the mapping holding ``addr`` (Linux: /proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {addr:#x}")


def test_torch_large_outputs_are_advised_huge_pages():
    """The C kernel's outputs of 4 MiB or more in torch tensors are advised
    MADV_HUGEPAGE (as NumPy advises its arrays: on a fresh 128 MiB output
    their page faults cost more than the arithmetic), with the values of
    the generic code; the switch ``_ckernel.hugepages`` (which the fast
    paths set from NumPy's when they load) turns that off, and smaller outputs are never
    advised. (The switch is checked on fresh mappings of our own: a torch
    output may sit where a NumPy array, advised by NumPy, was before.)"""
    import mmap

    torch = _torch()
    ck = _ck_or_skip()
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read()
    except OSError:
        pytest.skip("no transparent huge pages here (not Linux, or not built in)")
    if "[never]" in thp:
        pytest.skip("transparent huge pages are switched off on this machine")
    # The switch follows NumPy's, read when the fast paths load.
    core = getattr(np, "_core", None) or np.core
    numpy_on = core.multiarray._get_madvise_hugepage()
    assert ck.hugepages() == bool(numpy_on)
    prev = ck.hugepages()
    try:
        for on in (False, True):
            core.multiarray._set_madvise_hugepage(on)
            fnp._follow_numpy_hugepages()
            assert ck.hugepages() is on
    finally:
        core.multiarray._set_madvise_hugepage(numpy_on)
        ck.hugepages(prev)
    xn = _random((1152, 8192), "float32")  # 36 MiB
    x = torch.tensor(xn)
    y = x.double()
    calls = {
        "softmax": lambda: xact.softmax(x, axis=-1),
        "log_softmax": lambda: xact.log_softmax(x, axis=-1),
        "sigmoid": lambda: xact.sigmoid(x),
        "log_sigmoid float64": lambda: xact.log_sigmoid(y),
    }
    if "avx512" not in ck.isas():  # (torch's own kernels run these there)
        del calls["sigmoid"], calls["log_sigmoid float64"]
    prev = ck.hugepages(True)
    try:
        for name, call in calls.items():
            out = call()
            mid = out.data_ptr() + out.numel() * out.element_size() // 2
            assert "hg" in _vm_flags(mid), name
            with _fastpaths.disabled():
                ref = call()
            _assert_same(out.numpy(), ref.numpy(), ULPS[str(out.dtype).split(".")[1]])
        for on in (True, False):
            ck.hugepages(on)
            for rows in (1152, 64):  # 36 MiB, and 2 MiB: never advised
                size = rows * 8192 * 4
                with mmap.mmap(-1, size) as m:
                    out = np.frombuffer(m, np.float32).reshape(rows, 8192)
                    assert (
                        ck.rows_at(xn.ctypes.data, 8192 * 4, rows, 8192, out.ctypes.data, 1, 0) == 0
                    )
                    assert ("hg" in _vm_flags(out.ctypes.data)) == (on and rows > 64), (on, rows)
                    np.testing.assert_array_equal(out, xact.softmax(xn[:rows], axis=-1))
                    del out
                with mmap.mmap(-1, size) as m:
                    out = np.frombuffer(m, np.float32)
                    assert ck.sigmoid_at(xn.ctypes.data, out.ctypes.data, rows * 8192, 0)
                    assert ("hg" in _vm_flags(out.ctypes.data)) == (on and rows > 64), (on, rows)
                    del out
        # Only the whole pages of an output are advised: not the page it
        # starts in 100 bytes after its start, nor the one it ends in.
        ck.hugepages(True)
        page = mmap.PAGESIZE
        size = 1152 * 8192 * 4
        with mmap.mmap(-1, size + 2 * page) as m:
            base = np.frombuffer(m, np.uint8).ctypes.data
            out = np.frombuffer(m, np.float32, count=size // 4, offset=100)
            assert ck.rows_at(xn.ctypes.data, 8192 * 4, 1152, 8192, out.ctypes.data, 2, 0) == 0
            np.testing.assert_array_equal(out.reshape(1152, 8192), xact.log_softmax(xn, axis=-1))
            end = 100 + size  # (inside the last page of the output)
            assert "hg" not in _vm_flags(base), "first page"
            assert "hg" in _vm_flags(base + page), "second page"
            assert "hg" in _vm_flags(base + end - end % page - 1), "last whole page"
            assert "hg" not in _vm_flags(base + end - end % page), "last page"
            del out
    finally:
        ck.hugepages(prev)


def test_plan_chunks_and_thread_count(monkeypatch):
    """_parallel.plan: chunks of about 2^16 elements, but of at least four
    rows while each thread gets two chunks (the row loops prefetch the next
    row of their chunk); XACT_NUM_THREADS is read at every call, from
    whatever os.environ is then; the core count is asked once, and again in
    a forked child."""
    from xact._fastpaths import _parallel

    monkeypatch.setenv("XACT_NUM_THREADS", "2")
    assert _parallel.plan(4096, 1000) == (2, 65)  # 2^16 // 1000
    assert _parallel.plan(64, 50257) == (2, 4)
    assert _parallel.plan(1024, 32768) == (2, 4)
    assert _parallel.plan(8, 10**6) == (2, 2)  # two chunks a thread
    assert _parallel.plan(3, 10**6) == (2, 1)
    assert _parallel.plan(10**7, 1) == (2, 1 << 16)
    monkeypatch.setenv("XACT_NUM_THREADS", " 3 ")
    assert _parallel.num_threads() == 3
    replaced = dict(os.environ, XACT_NUM_THREADS="5")
    monkeypatch.setattr(os, "environ", replaced)
    assert _parallel.num_threads() == 5
    replaced["XACT_NUM_THREADS"] = "0"
    with pytest.raises(ValueError, match="XACT_NUM_THREADS must be a positive integer"):
        _parallel.num_threads()
    del replaced["XACT_NUM_THREADS"]
    assert _parallel.num_threads() == _parallel.cores() >= 1
    if not hasattr(os, "fork"):
        return
    # (in a fresh interpreter: this one may run JAX's threads, and fork
    # warns there)
    import subprocess
    import sys

    script = """
import os
from xact._fastpaths import _parallel
n = _parallel.cores()
assert n >= 1 and _parallel._CORES == n  # asked once, kept
pid = os.fork()
if pid == 0:  # the child: forgotten, asked again
    os._exit(0 if _parallel._CORES == 0 and _parallel.cores() == n else 1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_torch_large_special_rows_run_the_kernel_once(name, monkeypatch):
    """A large tensor with a row the kernel leaves to the caller (all -inf,
    as a fully masked attention row) gets the generic answers, and the
    kernel's first pass over it (``_small``) is not repeated by the general
    route's ``_at`` before the route that computes those rows runs (found
    in review: three passes where one finds the row)."""
    torch = _torch()
    ck = _ck_or_skip()
    from xact._fastpaths import _torch as ft

    calls = []

    class Counting:
        def __getattr__(self, attr):
            return getattr(ck, attr)

        def rows_at(self, *args):
            calls.append(args)
            return ck.rows_at(*args)

    monkeypatch.setattr(fnp, "_ck", Counting())
    host = _random((4 * ft.SMALL // 512 + 8, 512), "float32")
    host[3] = -np.inf
    x = torch.tensor(host)
    fast, generic = _both(getattr(xact, name), x, axis=-1)
    _assert_same(fast.numpy(), generic.numpy(), ULPS["float32"])
    assert len(calls) == 1
