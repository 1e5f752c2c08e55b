"""The JAX fast paths: the C kernel as an XLA custom call on the CPU.

``test_fastpaths.test_fast_equals_generic[jax-*]`` compares every reduction
with the generic code on the random and special inputs (eagerly, which
runs the fast path's own jit). Here: that the custom call is what runs
(and only on the CPU), under ``jit``, ``vmap`` and ``grad``; the special
rows under ``jit``; ``cross_entropy``; the thread split; and the fallback
where the custom calls are not available.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

import xact
from test_fastpaths import (
    SPECIAL_ROWS,
    ULPS,
    _assert_at_least_as_close,
    _assert_same,
    _both,
    _inputs,
    _random,
    _same_specials,
)
from xact import _fastpaths
from xact._fastpaths import _numpy as fnp

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

if fnp._ck is None:  # pragma: no cover - CI builds the kernel
    pytest.skip("the C kernel is not built", allow_module_level=True)
from xact._fastpaths import _jax as fj  # noqa: E402  (after the kernel check)

INF, NAN = math.inf, math.nan
NAMES = ["logsumexp", "softmax", "log_softmax", "softmin"]


def _fn(name, axis=-1):
    f = getattr(xact, name)
    return lambda a: f(a, axis=axis)


def _compare(fast, generic, dtype, truth=None):
    """Within a few ULP of the generic code, or, given the truth (NumPy's
    float64 generic code), at least as close to it: XLA's float32 and
    float64 ``log1p`` are a few ULP off, which a cancelling logsumexp
    amplifies (float64 -0.0146743: more than 8 ULP under jit)."""
    fast, generic = np.asarray(fast), np.asarray(generic)
    if truth is not None:
        _assert_at_least_as_close(fast, generic, np.asarray(truth), 1 if dtype == "float32" else 4)
    else:
        _assert_same(fast, generic, ULPS[dtype])


def _generic(f, *args):
    with _fastpaths.disabled():
        return f(*args)


def test_custom_call_is_taken_on_the_cpu_only():
    assert fj._ready()
    x = jnp.asarray(_random((8, 5), "float32"))
    t = jnp.asarray([0, 1, 2, 3, 4, 0, 1, 2])
    for f, args in [
        (xact.softmax, (x,)),
        (xact.log_softmax, (x,)),
        (lambda a: xact.logsumexp(a, axis=0), (x,)),
        (lambda a: xact.softmin(a, axis=0), (x,)),
        (lambda a, b: xact.cross_entropy(a, b), (x, t)),
    ]:
        traced = jax.jit(f).trace(*args)
        assert "xact_" in traced.lower().as_text()
        # Lowered for a GPU, the same function is the generic code.
        gpu = traced.lower(lowering_platforms=("cuda",)).as_text()
        assert "xact_" not in gpu and "stablehlo.exponential" in gpu


def _truth(name, h, axis):
    """The plain formulas in NumPy's long double (x87 extended on x86-64:
    11 more bits than float64); NaN or inf where they break down, which
    the comparison leaves to the special-value check."""
    x = h.astype(np.longdouble)
    if name == "softmin":
        name, x = "softmax", -x
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axis, keepdims=True)
        lse = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
        out = {"logsumexp": lse, "softmax": np.exp(x - lse), "log_softmax": x - lse}[name]
    return np.squeeze(out, axis) if name == "logsumexp" else out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_under_jit_with_special_rows(name, dtype):
    """Special rows (the custom call computes them by the generic code's
    rules: special_row in _ckernel.c) and ordinary ones, in one jitted
    call, along either axis."""
    host = _inputs(dtype)["many_rows"]
    for axis, h in ((-1, host), (0, np.ascontiguousarray(host.T))):
        f = _fn(name, axis)
        x = jnp.asarray(h)
        fast = jax.jit(f)(x)
        # (a fresh function: jax.jit(f) would reuse the trace of the fast path)
        generic = _generic(jax.jit(_fn(name, axis)), x)
        _compare(fast, generic, dtype, _truth(name, h, axis))


@pytest.mark.parametrize("name", NAMES)
def test_vmap_is_more_rows(name):
    x = jnp.asarray(_random((3, 4, 9), "float64").astype(np.float64))
    x = x.at[1, 2].set(-INF).at[2, 0, 3].set(INF)
    f = _fn(name)
    fast = jax.vmap(f)(x)
    generic = _generic(jax.vmap(f), x)
    _assert_same(fast, generic, ULPS["float64"])
    assert "xact_rows" in jax.jit(jax.vmap(f)).trace(x).lower().as_text()


def _assert_close_to_scale(fast, generic, ulps=8):
    """Equal NaN and infinities, finite values within ``ulps`` ULP of the
    largest magnitude among them."""
    fast, generic = np.asarray(fast), np.asarray(generic)
    fin = _same_specials(fast, generic)
    scale = np.max(np.abs(generic[fin]), initial=0.0)
    eps = np.finfo(fast.dtype).eps
    np.testing.assert_allclose(fast[fin], generic[fin], rtol=0, atol=ulps * eps * scale)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_derivatives_are_the_generic_ones(name, dtype):
    """The custom_jvp rule is the generic JVP: grad, jacfwd and a second
    derivative give the generic code's values, -inf entries and special
    rows included (to rounding: XLA compiles the generic code inside another
    program, fuses and vectorises it otherwise, and a gradient such as
    ``w - softmax * sum(w)`` cancels)."""
    h = _random((4, 6), dtype)
    h[1, 2], h[3, :] = -INF, -INF
    x = jnp.asarray(h)
    w = jnp.asarray(_random((4, 6), dtype, 1) if name != "logsumexp" else _random(4, dtype, 1))
    f = _fn(name)

    def loss(a):
        return jnp.sum(jnp.where(jnp.isfinite(f(a)), f(a), 0) * w)

    for transform in (jax.grad, jax.jacfwd, lambda g: jax.grad(lambda a: jnp.sum(jax.grad(g)(a)))):
        fast = np.asarray(transform(loss)(x))
        generic = np.asarray(_generic(transform(loss), x))
        _assert_close_to_scale(fast, generic)


@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_over_everything(keepdims):
    x = jnp.asarray(_random((3, 4, 5), "float64"))
    fast, generic = _both(xact.logsumexp, x, axis=None, keepdims=keepdims)
    assert fast.shape == generic.shape == ((1, 1, 1) if keepdims else ())
    _assert_same(fast, generic, ULPS["float64"])


def test_threads_give_the_same_bits(monkeypatch):
    """The rows split over XLA's thread pool give the bits of one thread,
    special rows (flagged, not computed) included."""
    calls = []

    def plan(rows, n):
        calls.append((rows, n))
        return (3, 7) if calls[0] == "team" else (1, rows)

    monkeypatch.setattr(fj._parallel, "plan", plan)
    for dtype in ("float64", "float32"):
        h = _inputs(dtype)["many_rows"][:300]
        x, t = jnp.asarray(h), jnp.asarray(np.arange(300) % 6)
        bits = []
        for team in (False, True):
            calls[:] = ["team"] if team else []
            scheduled = fnp._ck.xla_pool_tasks()
            # (fresh functions each time: a cached trace would not ask plan())
            rows = [jax.jit(lambda v, m=m: fj._ffi_rows(v, m))(x) for m in (0, 1, 2)]
            ce = jax.jit(lambda a, b: fj._ffi_cross_entropy(a, b, 2))(x, t)
            assert len(calls) == 4 + team
            # two tasks a call on XLA's pool (jaxlib 0.10 has one), none alone
            assert fnp._ck.xla_pool_tasks() - scheduled == (8 if team else 0)
            bits.append([np.asarray(a) for pair in (*rows, ce) for a in pair])
        for a, b in zip(*bits, strict=True):
            np.testing.assert_array_equal(a, b)


def test_declines_to_the_generic_code(monkeypatch):
    x = jnp.asarray(_random((4, 6), "float64"))
    w = x > 0
    assert fj.softmax(x, axis=-1, where=w, temperature=1) is NotImplemented
    assert fj.softmax(x, axis=-1, where=None, temperature=2.0) is NotImplemented
    assert fj.softmax(x, axis=(0, 1), where=None, temperature=1) is NotImplemented
    assert fj.softmax(x.astype(jnp.float16), axis=-1, where=None, temperature=1) is NotImplemented
    assert fj.softmax(jnp.zeros((0, 3)), axis=-1, where=None, temperature=1) is NotImplemented
    kw = {"axis": -1, "keepdims": False, "where": None}
    assert fj.logsumexp(x, b=x, return_sign=False, **kw) is NotImplemented
    assert fj.logsumexp(x, b=None, return_sign=True, **kw) is NotImplemented
    # Without the custom calls (no kernel, or XLA refuses them) every call
    # declines, and the public functions give the generic answers.
    monkeypatch.setattr(fj, "_READY", None)
    monkeypatch.setattr(fnp, "_ck", None)
    assert not fj._ready()
    assert fj.softmax(x, axis=-1, where=None, temperature=1) is NotImplemented
    np.testing.assert_array_equal(xact.softmax(x), _generic(xact.softmax, x))


# --------------------------------------------------------------------------
# sigmoid


ELEMENTWISE = ["sigmoid", "log_sigmoid", "softplus"]


def _family_input(name, dtype, n):
    """``n`` values over the whole range of ``name`` in ``dtype``: where its
    results are subnormal, 0, near 0, 1 or the input, and the specials."""
    big = 745.0 if dtype == "float64" else 104.0
    special = [INF, -INF, NAN, -0.0, 0.0, 1e-310, -30.0, 30.0, 700.5, -700.5]
    # near multiples of ln 2 / 128 below exp(-650), where the portable exp's
    # correction is tiny and was flushed under XLA (found in review)
    edge = -np.log(2.0) * np.arange(940, 1022)
    ramp = np.linspace(-big, 40.0 if name == "sigmoid" else big, n - len(special) - 2 * edge.size)
    return np.concatenate([ramp, edge, -edge, special]).astype(dtype)


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_sigmoid_family_is_one_custom_call(name, dtype, size):
    """The sigmoid family is the C kernel in one custom call
    (``xact_elementwise``), small or large: NumPy's bits where the result is
    normal (a large float32 sigmoid: the float32 lanes of torch's large
    tensors, within an ULP), and 0 where it is subnormal, as the generic code
    gives under XLA (which flushes them), so a program's zeros do not depend
    on its size, and of the generic code's sign (a float32 log_sigmoid
    beyond 87.3: +0.0, where the kernel's float64 result converts to -0.0
    and NumPy's has -0.0). Within the generic code's ULPs elsewhere; the
    generic derivatives; vmap; a 0-d input; GPUs: the generic code."""
    n = 3000 if size == "small" else fnp.SMALL + 3000
    h = _family_input(name, dtype, n)
    x = jnp.asarray(h)
    func = getattr(xact, name)
    kw = {"beta": 1} if name == "softplus" else {}
    f = jax.jit(lambda a: func(a))
    assert "xact_elementwise" in f.trace(x).lower().as_text()
    gpu = f.trace(x).lower(lowering_platforms=("cuda",)).as_text()
    assert "xact_elementwise" not in gpu
    fast = np.asarray(f(x))
    generic = np.asarray(_generic(jax.jit(lambda a: func(a)), x))
    numpy_bits = func(h)
    normal = ~(np.abs(numpy_bits) < np.finfo(dtype).tiny)
    if name == "sigmoid" and dtype == "float32" and size == "large":
        _assert_same(fast[normal], numpy_bits[normal], 1)
    else:
        np.testing.assert_array_equal(fast[normal], numpy_bits[normal])
    np.testing.assert_array_equal(fast[~normal], 0.0)
    np.testing.assert_array_equal(fast == 0, generic == 0)
    _assert_same(fast, generic, ULPS[dtype])  # (zeros of the same sign)
    # derivatives and vmap
    g = jax.grad(lambda a: jnp.sum(func(a)))(x[:100])
    _assert_same(g, _generic(jax.grad(lambda a: jnp.sum(func(a))), x[:100]), ULPS[dtype])
    # vmap: the call of the whole batch (large float32 sigmoid: the lanes of
    # the whole array, not of one row's size; found in review)
    rows = jnp.reshape(x[: n - n % 100], (-1, 100))
    batched = jax.vmap(lambda a: func(a))(rows)
    np.testing.assert_array_equal(np.asarray(batched).ravel(), np.asarray(f(rows.ravel())))
    scalar = jnp.asarray(h[-1])
    assert "xact_elementwise" in jax.jit(lambda a: func(a)).trace(scalar).lower().as_text()
    scalar = jax.jit(lambda a: func(a))(scalar)
    assert scalar.shape == () and float(scalar) == float(numpy_bits[-1])
    for other in (jnp.float16, jnp.bfloat16, jnp.int32):  # declined: generic
        assert getattr(fj, name)(*(x[:5].astype(other),), **kw) is NotImplemented


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_sigmoid_family_threads_and_the_portable_kernel(name, dtype, monkeypatch):
    """A large call's elements split over XLA's pool (tasks scheduled, in
    chunks that do not divide the lanes) give the bits of one thread, their
    subnormal results flushed there as on the caller's thread. Without the
    AVX-512 kernel (set at run time: a compiled program keeps its custom
    call), log_sigmoid and softplus run libm's functions and the float32
    lanes the float64 formula: the generic answers all the same. softplus
    with another beta declines."""
    assert fj._ready()
    h = _family_input(name, dtype, fnp.SMALL + 3000)
    x = jnp.asarray(h)
    func = getattr(xact, name)
    bits = []
    for threads, chunk in ((1, h.size), (3, 1001)):
        monkeypatch.setattr(fj._parallel, "budget", lambda threads=threads: threads)
        monkeypatch.setattr(fj._parallel, "CHUNK_ELEMENTS", chunk)
        scheduled = fnp._ck.xla_pool_tasks()
        # (a fresh function each time: a cached trace would not ask again)
        mode = fj.EW_MODES[name]
        bits.append(np.asarray(jax.jit(lambda a, m=mode: fj._ffi_elementwise(a, m))(x)))
        assert fnp._ck.xla_pool_tasks() - scheduled == (2 if threads == 3 else 0)
    np.testing.assert_array_equal(bits[0], bits[1])
    monkeypatch.undo()
    ck = fnp._ck
    f = jax.jit(lambda a: func(a))
    f(x)  # (compiled with the CPU's kernel)
    generic = np.asarray(_generic(jax.jit(lambda a: func(a)), x))
    prev = ck.set_isa("portable")
    try:
        portable = np.asarray(f(x))
    finally:
        ck.set_isa(prev)
    _assert_same(portable, generic, ULPS[dtype])
    np.testing.assert_array_equal(portable == 0, generic == 0)
    assert fj.softplus(x, beta=2.0) is NotImplemented
    assert fj.softplus(x, beta=True) is NotImplemented
    assert (
        "xact_elementwise"
        not in jax.jit(lambda a: xact.softplus(a, beta=2)).trace(x).lower().as_text()
    )


# --------------------------------------------------------------------------
# cross_entropy


def _ce_case(dtype):
    h = _random((40, 7), dtype)
    h[3, 2] = -INF  # a -inf target logit: +inf loss
    t = np.random.default_rng(3).integers(0, 7, 40)
    t[3], t[5], t[8] = 2, -100, 2  # -100: ignored where ignore_index is -100
    return h, t


@pytest.mark.parametrize(
    ("dtype", "reduction", "ignore_index", "tdtype"),
    [
        *(
            (dtype, reduction, ignore_index, "int64")
            for dtype in ("float64", "float32")
            for reduction in ("none", "mean", "sum")
            for ignore_index in (None, -100, 2, 2**40)
        ),
        *(
            (dtype, "mean", ignore_index, tdtype)
            for dtype in ("float64", "float32")
            for ignore_index in (-100, 2**40)
            for tdtype in ("int32", "int8")
        ),
    ],
)
def test_cross_entropy_fast_equals_generic(dtype, reduction, ignore_index, tdtype):
    h, t = _ce_case(dtype)
    if ignore_index != -100:  # (NumPy, for the truth, raises on -100)
        t = np.where(t < 0, 1, t)
    x, tj = jnp.asarray(h), jnp.asarray(t.astype(tdtype))

    def f(a, b):
        return xact.cross_entropy(a, b, ignore_index=ignore_index, reduction=reduction)

    def f2(a, b):  # (for the generic side: a fresh function, a fresh trace)
        return xact.cross_entropy(a, b, ignore_index=ignore_index, reduction=reduction)

    hlo = jax.jit(f).trace(x, tj).lower().as_text()
    assert "xact_cross_entropy" in hlo
    # A small batch is reduced in the same call, as NumPy's small path does
    # it (the very bits: NumPy's pairwise sum of the same losses).
    assert ("xact_cross_entropy_reduce" in hlo) == (reduction != "none")
    if reduction != "none" and tdtype == "int64":
        numpy_bits = xact.cross_entropy(h, t, ignore_index=ignore_index, reduction=reduction)
        np.testing.assert_array_equal(np.asarray(jax.jit(f)(x, tj)), numpy_bits)
    for g, g2 in ((f, f2), (jax.jit(f), jax.jit(f2))):
        fast, generic = g(x, tj), _generic(g2, x, tj)
        truth = _generic(f, h.astype(np.float64), t.astype(np.int64))
        _compare(fast, generic, dtype, truth if reduction == "none" else None)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_large_batches_reduce_in_the_program(dtype, reduction):
    """Above the small size the kernel writes each loss and the program
    reduces them (the masks and NaN rules of the generic code): the same
    values as the generic code, with a row without a finite maximum and a
    target out of range."""
    h = _random((2400, 7), dtype)  # 16800 elements: above SMALL
    t = np.random.default_rng(4).integers(0, 7, 2400)
    t[11] = -1  # ignored
    x, tj = jnp.asarray(h), jnp.asarray(t)

    def f(a, b):
        return xact.cross_entropy(a, b, ignore_index=-1, reduction=reduction)

    hlo = jax.jit(f).trace(x, tj).lower().as_text()
    assert "xact_cross_entropy" in hlo and "xact_cross_entropy_reduce" not in hlo
    fast, generic = _both(lambda a: f(a, tj), x)
    _assert_same(fast, generic, ULPS[dtype])
    h[5, 3] = INF  # a row without a finite maximum: the generic code's rules
    fast, generic = _both(lambda a: f(a, tj), jnp.asarray(h))
    _assert_same(fast, generic, ULPS[dtype])
    bad_t = tj.at[7].set(9)  # out of range: NaN
    assert np.isnan(np.asarray(jax.jit(f)(x, bad_t)))


def test_cross_entropy_special_cases():
    """Targets out of range give NaN (and a NaN mean), a row without a
    finite maximum takes the generic rules, an all-ignored batch has mean
    0 with gradient 0."""
    h = _random((6, 5), "float64")
    h[2], h[4] = -INF, NAN
    x = jnp.asarray(h)
    for t in ([0, 1, 7, 3, -3, 2], [0, 1, 2, 3, 4, 2], [-1, -1, -1, -1, -1, -1]):
        tj = jnp.asarray(t)
        for reduction in ("none", "sum", "mean"):
            fast, generic = _both(
                lambda z, tj=tj, **kw: xact.cross_entropy(z, tj, ignore_index=-1, **kw),
                x,
                reduction=reduction,
            )
            _assert_same(fast, generic, ULPS["float64"])
    none = xact.cross_entropy(x, jnp.asarray([0, 1, 7, 3, -3, 2]), reduction="none")
    assert np.isnan(np.asarray(none)[[2, 4]]).all()
    ignored = jnp.asarray([-1] * 6)
    finite = jnp.asarray(_random((6, 5), "float64"))
    assert float(xact.cross_entropy(finite, ignored, ignore_index=-1)) == 0.0
    grad = jax.grad(lambda a: xact.cross_entropy(a, ignored, ignore_index=-1))(finite)
    np.testing.assert_array_equal(np.asarray(grad), 0.0)


def test_cross_entropy_gradients_are_the_generic_ones():
    h, t = _ce_case("float64")
    x, tj = jnp.asarray(h), jnp.asarray(t)

    def f(a):
        return xact.cross_entropy(a, tj, ignore_index=-100)

    _assert_close_to_scale(jax.grad(f)(x), _generic(jax.grad(f), x))
    bx = jnp.stack([x, 2 * x])
    bt = jnp.stack([tj, tj[::-1]])
    batched = jax.vmap(lambda a, b: xact.cross_entropy(a, b, ignore_index=-100))(bx, bt)
    generic = _generic(jax.vmap(lambda a, b: xact.cross_entropy(a, b, ignore_index=-100)), bx, bt)
    _assert_same(batched, generic, ULPS["float64"])


def test_cross_entropy_declines():
    x = jnp.asarray(_random((4, 3), "float64"))
    t = jnp.asarray([0, 1, 2, 0])
    kw = {"axis": -1, "weight": None, "ignore_index": None, "label_smoothing": 0.0}
    kw.update(reduction="mean", where=None)
    assert fj.cross_entropy(x, target=t, **{**kw, "label_smoothing": 0.1}) is NotImplemented
    assert fj.cross_entropy(x, target=t, **{**kw, "weight": jnp.ones(3)}) is NotImplemented
    assert fj.cross_entropy(x, target=t.astype(jnp.uint8), **kw) is NotImplemented
    assert fj.cross_entropy(x, target=np.asarray(t), **kw) is NotImplemented
    assert fj.cross_entropy(x, target=jax.nn.softmax(x), **kw) is NotImplemented
    assert fj.cross_entropy(x[None], target=t[None], **kw) is NotImplemented
    # and the generic code raises what it raises
    with pytest.raises(ValueError, match="target"):
        xact.cross_entropy(x, jnp.asarray([0, 1, 2]))


def test_without_x64():
    """JAX's default: float32 only, int32 targets. A fresh interpreter
    (the tests enable x64, which cannot be undone)."""
    import subprocess
    import sys

    code = """
import numpy as np, jax, jax.numpy as jnp
import xact
from xact import _fastpaths
assert not jax.config.read("jax_enable_x64")
x = jnp.asarray(10 * np.random.default_rng(0).standard_normal((50, 30)), jnp.float32)
t = jnp.asarray(np.random.default_rng(1).integers(0, 30, 50))
assert t.dtype == jnp.int32
cases = [xact.softmax, xact.log_softmax, lambda a: xact.logsumexp(a, axis=0),
         lambda a: xact.cross_entropy(a, t),
         lambda a: xact.cross_entropy(a, t.astype(jnp.int8), ignore_index=2**40)]
for f in cases:
    assert "xact_" in jax.jit(f).trace(x).lower().as_text()
    fast = np.asarray(f(x))
    with _fastpaths.disabled():
        generic = np.asarray(f(x))
    assert fast.dtype == generic.dtype == np.float32
    np.testing.assert_allclose(fast, generic, rtol=1e-5, atol=1e-6)
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "JAX_ENABLE_X64"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_nan_rows_under_jit(name, fast):
    """XLA's CPU backend drops NaN in a compiled row maximum of more than a
    few rows (openxla/xla#21461); the generic code puts it back, so a row
    with a NaN is NaN under jit, fast path or not (here 3000 rows, one
    with +inf besides)."""
    h = np.tile(
        np.array([[NAN, 0, 1, 2, 3, 4], [NAN, INF, -INF, 0, 1, 2], [0, 1, 2, 3, 4, 5]]), (1000, 1)
    )
    f = _fn(name)
    with contextlib.nullcontext() if fast else _fastpaths.disabled():
        out = np.asarray(jax.jit(lambda a: f(a))(jnp.asarray(h, jnp.float32)))
    rows = out.reshape(1000, 3, -1)
    assert np.isnan(rows[:, :2]).all() and np.isfinite(rows[:, 2]).all()


def test_jax_export_needs_the_generic_code():
    """The custom calls live in this process: jax.export refuses them (they
    have no compatibility guarantee), and a function traced with the fast
    paths off exports and runs (docs/performance.md says so)."""
    from jax import export

    x = jnp.asarray(_random((4, 5), "float64"))
    with pytest.raises(ValueError, match="custom calls"):
        export.export(jax.jit(lambda v: xact.softmax(v)))(x)
    with _fastpaths.disabled():
        exported = export.export(jax.jit(lambda v: xact.softmax(v)))(x)
    _assert_same(exported.call(x), _generic(xact.softmax, x), ULPS["float64"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_subnormal_results_under_jit(dtype):
    """XLA runs its CPU threads with subnormals flushed to zero; the custom
    calls run in the default floating-point environment (and give it back),
    so their subnormal results are NumPy's, on the caller's thread and on
    XLA's pool alike."""
    h = np.array([[0.0, -90.0, -100.0, -103.0], [0.0, -700.0, -740.0, -745.0]] * 150, dtype)
    for name in ("softmax", "logsumexp"):
        f = _fn(name)
        want = f(h)
        for team in ((1, 300), (2, 7)):  # one thread; the pool, chunks of 7 rows
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(fj._parallel, "plan", lambda rows, n, team=team: team)
                got = np.asarray(jax.jit(lambda a, f=f: f(a))(jnp.asarray(h)))
            np.testing.assert_array_equal(got, want)
    at = (0, 3) if dtype == "float32" else (1, 3)
    tiny = np.asarray(jax.jit(_fn("softmax"))(jnp.asarray(h)))[at]
    assert 0 < tiny < np.finfo(dtype).tiny
    # and XLA's own operations after the call still flush, as before
    out = jax.jit(lambda a, c: xact.softmax(a) * c)(jnp.asarray(h), jnp.asarray(1.0, dtype))
    assert np.asarray(out)[at] == 0.0


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_special_rows_in_the_custom_calls(dtype, reduction):
    """Every special row with every target class, in the small call (the
    reduction in the custom call) and in a large one (above SMALL): the
    kernel's special_row gives the generic code's values (a row without a
    finite maximum, and |max| >= 1.7e308), zeros' signs included."""
    with np.errstate(over="ignore"):
        special = SPECIAL_ROWS.astype(dtype)
    rows, n = special.shape
    h = np.repeat(special, n, axis=0)  # each row once with each target
    t = np.tile(np.arange(n), rows)
    big = np.concatenate([h, _random((fnp.SMALL // n + 1, n), dtype)])
    tb = np.concatenate([t, np.zeros(big.shape[0] - t.shape[0], np.int64)])
    for x, tx in ((h, t), (big, tb)):
        tj = jnp.asarray(tx)
        fast, generic = _both(
            lambda z, tj=tj: xact.cross_entropy(z, tj, reduction=reduction), jnp.asarray(x)
        )
        _assert_same(fast, generic, ULPS[dtype])
    if reduction == "none":  # (the sums are NaN: a NaN row)
        return
    finite = ~np.isnan(special).any(axis=1)  # without the NaN rows
    h, t = h[np.repeat(finite, n)], t[np.repeat(finite, n)]
    fast, generic = _both(
        lambda z: xact.cross_entropy(z, jnp.asarray(t), reduction=reduction), jnp.asarray(h)
    )
    _assert_same(fast, generic, ULPS[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_one_class_keeps_the_sign_of_zero(dtype):
    """One class: a +inf logit's loss is -0.0 (-(lp + 0), lp = -log1p(0)),
    in the custom call and in the generic code alike (over one class XLA's
    sum is a reshape, which had kept lp's -0.0: +0.0 under JAX, -0.0 on
    NumPy)."""
    h = np.array([[INF], [0.0], [-3.0], [-INF], [NAN]], dtype)
    t = np.zeros(5, np.int64)
    numpy_fast, numpy_generic = _both(lambda z: xact.cross_entropy(z, t, reduction="none"), h)
    fast, generic = _both(
        lambda z: xact.cross_entropy(z, jnp.asarray(t), reduction="none"), jnp.asarray(h)
    )
    for res in (numpy_fast, numpy_generic, fast, generic):
        res = np.asarray(res)
        np.testing.assert_array_equal(res[:3], [0.0, 0.0, 0.0])
        assert np.signbit(res[:3]).all() and res[3] == INF and np.isnan(res[4])
