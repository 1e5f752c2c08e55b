"""JAX fast paths: the C kernel as an XLA custom call on the CPU.

Under ``jax.jit`` the generic code compiles to a dozen fused loops; XLA
cannot fuse the TwoSum shift, the counted maxima and the compensated sum
into the two passes of ``jax.nn.logsumexp``, so the generic reductions take
2-8 times its time on the CPU. Here the reductions (``logsumexp``,
``softmax``, ``log_softmax``, ``softmin``) and ``cross_entropy`` with class
indices call the rows of ``_ckernel.c`` instead, registered with
``jax.ffi`` as the custom calls ``xact_rows`` and ``xact_cross_entropy``
(and, for a small batch with its sum or mean, ``xact_cross_entropy_reduce``):
the same kernel, the same bits as the NumPy fast path. The sigmoid family
is one call too (``xact_elementwise``).

* **Where.** ``jax.lax.platform_dependent`` picks the custom call when the
  program is lowered for the CPU, the generic code for any other platform
  (a GPU, a TPU), so one traced function serves both.
* **Special rows.** The rows that the kernel leaves to its NumPy and torch
  callers (without a finite maximum, or with ``|max| >= 1.7e308``) take
  the generic code's rules inside the custom call (``special_row`` in
  ``_ckernel.c``), checked against the generic code by the tests. A
  ``jax.lax.cond`` that ran the generic code for them instead cost 3.5 to
  4 µs a call at 32x10, about twice the kernel's time, even where no row
  needed it.
* **Derivatives.** Each function is a ``jax.custom_jvp`` whose rule is the
  JVP of the generic code, so ``grad``, ``jvp``, ``vjp`` and ``hessian`` see
  exactly the generic derivatives (and values).
* **vmap.** The custom calls count every leading axis as rows, so a batch
  is more rows (``vmap_method="broadcast_all"``).
* **Threads.** A large call splits its rows over XLA's own thread pool
  (not an OpenMP team, whose spinning threads slowed the XLA operations
  around it threefold), sized at trace time from the static shapes as for
  NumPy (``XACT_NUM_THREADS``).

Declined (the generic code runs): other dtypes, empty arrays, rows longer
than ``MAX_ROW``, ``where=``/``b=``/``return_sign``/temperature, tuples
of several axes, weights, smoothing, probability targets, ``softplus``
with a ``beta`` other than 1; and everything
when the C kernel is not built or the custom calls do not register and
run (checked once, on a one-row call).
"""

from __future__ import annotations

import functools
import math
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _numpy, _parallel, disabled, plain_cross_entropy

__all__ = [
    "EW_MODES",
    "cross_entropy",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softmin",
    "softplus",
]

_READY: bool | None = None
_LOCK = threading.Lock()
_INT64 = (-(2**63), 2**63)


def _register() -> bool:
    """Register the custom calls and run each once on the CPU; False where
    either fails (no C kernel, a jax without ``jax.ffi``, an XLA that
    refuses the handlers)."""
    ck = _numpy._ck
    if ck is None or not hasattr(ck, "xla_handlers"):
        return False
    jax = _jax()

    ffi = getattr(jax, "ffi", None)
    if ffi is None:  # pragma: no cover - jax < 0.4.38
        return False
    try:
        for name, capsule in ck.xla_handlers().items():
            ffi.register_ffi_target(name, capsule, platform="cpu")
        cpu = jax.devices("cpu")[0]
        # (run now, also where the first call is being traced under jit)
        with jax.ensure_compile_time_eval():
            x = jax.device_put(np.asarray([[0.0, 1.0]], np.float32), cpu)
            t = jax.device_put(np.asarray([1], np.int32), cpu)
            lse = np.asarray(jax.jit(_ffi_rows, static_argnums=1)(x, 0))
            loss = np.asarray(jax.jit(_ffi_cross_entropy, static_argnums=2)(x, t, None))
            mean = jax.jit(_ffi_ce_reduce, static_argnums=(2, 3))(x, t, None, "mean")
            mean = np.asarray(mean)
            sig = np.asarray(jax.jit(_ffi_elementwise, static_argnums=1)(x, 0))
        want = math.log1p(math.exp(-1.0))
        ok = abs(lse[0] - (1 + want)) < 1e-6 and abs(loss[0] - want) < 1e-6
        ok = ok and abs(mean - want) < 1e-6 and sig[0, 0] == 0.5
        return bool(ok and abs(sig[0, 1] - 1 / (1 + math.exp(-1.0))) < 1e-6)
    except Exception:  # noqa: BLE001  (any failure: the generic code runs)
        return False


def _ready() -> bool:
    """Whether the custom calls are registered and work (checked once)."""
    global _READY
    if _READY is None:
        with _LOCK:
            if _READY is None:
                _READY = _register()
    return _READY


def _jax() -> Any:
    """jax, as an untyped module (its annotations are not checked here)."""
    import jax

    return jax


def _jnp() -> Any:
    return _jax().numpy


def _float(x: Any) -> bool:
    jnp = _jnp()
    return x.dtype in (jnp.float32, jnp.float64)


def _plan(rows: int, n: int) -> tuple[Any, Any]:
    nt, chunk = _parallel.plan(rows, n)
    return np.int32(nt), np.int64(chunk)


def _ffi_rows(xt: Any, mode: int) -> Any:
    """The kernel on the rows of ``xt`` (along its last axis)."""
    jax = _jax()
    lead = xt.shape[:-1]
    out_shape = lead if mode == 0 else xt.shape
    nt, chunk = _plan(math.prod(lead), xt.shape[-1])
    call = jax.ffi.ffi_call(
        "xact_rows", jax.ShapeDtypeStruct(out_shape, xt.dtype), vmap_method="broadcast_all"
    )
    return call(xt, mode=np.int32(mode), threads=nt, chunk=chunk)


def _ignore_attrs(ignore_index: int | None) -> tuple[Any, Any]:
    """The custom calls' ``has_ignore`` and ``ignore`` (beyond int64, no
    target can equal ``ignore_index``: nothing is ignored)."""
    if ignore_index is not None and _INT64[0] <= ignore_index < _INT64[1]:
        return np.int32(1), np.int64(ignore_index)
    return np.int32(0), np.int64(0)


def _ffi_cross_entropy(logits: Any, t: Any, ignore_index: int | None) -> Any:
    """Each sample's loss, in the logits' dtype (-0.0 where ignored, NaN
    where the target is out of range); ``t`` is int32 or int64."""
    jax = _jax()
    lead = logits.shape[:-1]
    has_ignore, ignore = _ignore_attrs(ignore_index)
    nt, chunk = _plan(math.prod(lead), logits.shape[-1])
    call = jax.ffi.ffi_call(
        "xact_cross_entropy",
        jax.ShapeDtypeStruct(lead, logits.dtype),
        vmap_method="broadcast_all",
    )
    return call(logits, t, has_ignore=has_ignore, ignore=ignore, threads=nt, chunk=chunk)


def _ffi_ce_reduce(logits: Any, t: Any, ignore_index: int | None, reduction: str) -> Any:
    """The sum or mean of the losses of small (N, C) logits, in one call (as
    the NumPy and torch paths reduce small batches: NumPy's pairwise sum;
    NaN where a target is out of range and not ignored)."""
    jax = _jax()
    has_ignore, ignore = _ignore_attrs(ignore_index)
    call = jax.ffi.ffi_call(
        "xact_cross_entropy_reduce",
        jax.ShapeDtypeStruct((), logits.dtype),
        vmap_method="sequential",  # (the handler takes one 2-D batch)
    )
    reduction_code = np.int32(_numpy.C_REDUCTIONS[reduction])
    return call(logits, t, has_ignore=has_ignore, ignore=ignore, reduction=reduction_code)


EW_MODES = {"sigmoid": 0, "log_sigmoid": 1, "softplus": 2}
"""The modes of the custom call ``xact_elementwise`` (``_ckernel.c``)."""


def _ffi_elementwise(x: Any, mode: int) -> Any:
    """The sigmoid family (:data:`EW_MODES`) of every element of ``x`` in
    one call of the C kernel. The call splits a large array's elements over
    XLA's pool as :func:`._parallel.plan` would, from the number it gets
    (under ``vmap``, the whole batch's), given the thread budget of the
    tracing thread and the chunk size; likewise it chooses the float32
    lanes for a large float32 sigmoid."""
    jax = _jax()
    call = jax.ffi.ffi_call(
        "xact_elementwise", jax.ShapeDtypeStruct(x.shape, x.dtype), vmap_method="broadcast_all"
    )
    threads, chunk = np.int32(_parallel.budget()), np.int64(_parallel.CHUNK_ELEMENTS)
    return call(x, mode=np.int32(mode), threads=threads, chunk=chunk)


# --------------------------------------------------------------------------
# The log-sum-exp family


def _generic(func: str, x: Any, axis: int | None) -> Any:
    """The generic code on ``x`` itself (not on a transposed copy: XLA may
    fuse a transpose into the reduction and compute it otherwise)."""
    import xact

    with disabled():
        return getattr(xact, func)(x, axis=axis)


def _cpu(func: str, axis: int | None, x: Any) -> Any:
    """The custom call on the rows along ``axis`` (None: one row of all)."""
    jnp = _jnp()
    xt = jnp.reshape(x, (1, -1)) if axis is None else jnp.moveaxis(x, axis, -1)
    out = _ffi_rows(xt, _numpy.C_MODES[func])
    if axis is None:
        return out[0]
    if func != "logsumexp":
        return jnp.moveaxis(out, -1, axis)
    return out


@functools.cache
def _rows_fn(func: str, axis: int | None) -> Callable[[Any], Any]:
    """``func`` along ``axis``: the custom call on the CPU, the generic code
    elsewhere and for every derivative."""
    jax = _jax()
    generic = functools.partial(_generic, func, axis=axis)
    cpu = functools.partial(_cpu, func, axis)
    rows = jax.custom_jvp(lambda x: jax.lax.platform_dependent(x, cpu=cpu, default=generic))
    rows.defjvp(lambda primals, tangents: jax.jvp(generic, primals, tangents))
    return rows  # type: ignore[no-any-return]


def _along(func: str, x: Any, axis: int | None, keepdims: bool) -> Any:
    jnp = _jnp()
    if func == "softmin":
        # softmax(-x): negation is exact and swaps the infinities, as
        # softmin's rules do; derivatives flow through it.
        func, x = "softmax", -x
    out = _rows_fn(func, axis)(x)
    if keepdims:  # (logsumexp only)
        return jnp.reshape(out, (1,) * x.ndim) if axis is None else jnp.expand_dims(out, axis)
    return out


@functools.cache
def _jitted(func: str, axis: int | None, keepdims: bool) -> Callable[[Any], Any]:
    jax = _jax()
    return jax.jit(functools.partial(_along, func, axis=axis, keepdims=keepdims))  # type: ignore[no-any-return]


def _axis(x: Any, axis: Any) -> int | None:
    """The one reduced axis (normalised), or None where the path declines."""
    if type(axis) is tuple:
        if len(axis) != 1:
            return None
        (axis,) = axis
    if type(axis) is not int or not -x.ndim <= axis < x.ndim:
        return None
    return axis % int(x.ndim)


def _usable(x: Any, n: int) -> bool:
    return _float(x) and x.ndim >= 1 and x.size > 0 and n <= _numpy.MAX_ROW and _ready()


def logsumexp(x: Any, *, axis: Any, keepdims: bool, b: Any, return_sign: bool, where: Any) -> Any:
    if b is not None or where is not None or return_sign or type(keepdims) is not bool:
        return NotImplemented
    if axis is None:
        if not _usable(x, x.size):
            return NotImplemented
        return _jitted("logsumexp", None, keepdims)(x)
    ax = _axis(x, axis)
    if ax is None or not _usable(x, x.shape[ax]):
        return NotImplemented
    return _jitted("logsumexp", ax, keepdims)(x)


def _normalise(func: str, x: Any, axis: Any, where: Any, temperature: Any) -> Any:
    if where is not None or type(temperature) not in (int, float) or temperature != 1:
        return NotImplemented
    ax = _axis(x, axis)
    if ax is None or not _usable(x, x.shape[ax]):
        return NotImplemented
    return _jitted(func, ax, False)(x)


def softmax(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    return _normalise("softmax", x, axis, where, temperature)


def log_softmax(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    return _normalise("log_softmax", x, axis, where, temperature)


def softmin(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    return _normalise("softmin", x, axis, where, temperature)


# --------------------------------------------------------------------------
# sigmoid


@functools.cache
def _elementwise_fn(func: str) -> Callable[[Any], Any]:
    """``func`` of the sigmoid family: the C kernel as one custom call on the
    CPU, the generic code elsewhere and for every derivative."""
    jax = _jax()

    def generic(x: Any) -> Any:
        import xact

        with disabled():
            return getattr(xact, func)(x)

    def cpu(x: Any) -> Any:
        return _ffi_elementwise(x, EW_MODES[func])

    f = jax.custom_jvp(lambda x: jax.lax.platform_dependent(x, cpu=cpu, default=generic))
    f.defjvp(lambda primals, tangents: jax.jvp(generic, primals, tangents))
    return jax.jit(f)  # type: ignore[no-any-return]


def _elementwise(func: str, x: Any) -> Any:
    if not _float(x) or x.size == 0 or not _ready():
        return NotImplemented
    return _elementwise_fn(func)(x)


def sigmoid(x: Any) -> Any:
    """The custom call at every size: at 32x10, XLA's loop for the generic
    formula ran three times slower than ``jax.nn.sigmoid``'s in spells; on
    large arrays XLA's float64 ``exp`` is slow (4096x1000: 2.6 ms for the
    kernel over two threads, 5 to 16 ms for ``jax.nn.sigmoid``). The
    kernel runs in XLA's floating-point environment, so subnormal results
    are 0 as the generic code's are under XLA."""
    return _elementwise("sigmoid", x)


def log_sigmoid(x: Any) -> Any:
    """The custom call, as :func:`sigmoid` (float64 4096x1000: 4.7 ms
    against 28 to 36 ms for ``jax.nn.log_sigmoid``; float32 4.6 against 5
    to 8 ms)."""
    return _elementwise("log_sigmoid", x)


def softplus(x: Any, *, beta: Any) -> Any:
    if type(beta) not in (int, float) or beta != 1:
        return NotImplemented
    return _elementwise("softplus", x)


# --------------------------------------------------------------------------
# cross_entropy with class indices


def _generic_ce(logits: Any, t: Any, ignore_index: int | None, reduction: str) -> Any:
    import xact

    with disabled():
        return xact.cross_entropy(logits, t, ignore_index=ignore_index, reduction=reduction)


def _cpu_ce(logits: Any, t: Any, ignore_index: int | None, reduction: str) -> Any:
    """The kernel's losses (-0.0 for the ignored samples, NaN for targets out
    of range), reduced as the generic code does (:func:`.._losses._finish`:
    NaN in the mean's denominator too, and 0 for a batch with nothing to
    count)."""
    from .._losses import _class_masks, _finish

    jnp = _jnp()
    if reduction != "none" and logits.size <= _numpy.SMALL:
        # Small: the reduction in the same call (each operation of the
        # program costs about a microsecond at 32x10).
        return _ffi_ce_reduce(logits, t, ignore_index, reduction)
    loss = _ffi_cross_entropy(logits, t, ignore_index)
    if reduction == "none":
        return loss
    _, active, out_of_range = _class_masks(jnp, t, logits.shape[-1], ignore_index, None)
    return _finish(jnp, loss, out_of_range, reduction, active.astype(loss.dtype), loss.dtype)


@functools.cache
def _ce_fn(ignore_index: int | None, reduction: str) -> Callable[[Any, Any], Any]:
    jax = _jax()

    def generic(logits: Any, t: Any) -> Any:
        return _generic_ce(logits, t, ignore_index, reduction)

    def fast(logits: Any, t: Any) -> Any:
        return _cpu_ce(logits, t, ignore_index, reduction)

    def jvp(primals: Any, tangents: Any) -> Any:
        logits, t = primals
        return jax.jvp(lambda lg: generic(lg, t), (logits,), (tangents[0],))

    ce = jax.custom_jvp(
        lambda logits, t: jax.lax.platform_dependent(logits, t, cpu=fast, default=generic)
    )
    ce.defjvp(jvp)
    return jax.jit(ce)  # type: ignore[no-any-return]


def cross_entropy(
    logits: Any,
    *,
    target: Any,
    axis: Any,
    weight: Any,
    ignore_index: Any,
    label_smoothing: Any,
    reduction: Any,
    where: Any,
) -> Any:
    """``(N, C)`` logits, ``(N,)`` signed integer class indices, no weight,
    mask or smoothing: each sample's loss from the kernel's row maximum
    and ``log(k + r)``, without the log-probabilities of the other classes
    ever being written (see :func:`._numpy.cross_entropy`)."""
    jax = sys.modules.get("jax")
    jnp = _jnp()
    if (
        jax is None
        or not plain_cross_entropy(weight, ignore_index, label_smoothing, reduction, where)
        or not _float(logits)
        or logits.ndim != 2
        or type(axis) is not int
        or axis not in (-1, 1)
        or not isinstance(target, jax.Array)
        or not jnp.issubdtype(target.dtype, jnp.signedinteger)
        or tuple(target.shape) != (logits.shape[0],)
        or not _usable(logits, logits.shape[1])
    ):
        return NotImplemented
    from .._losses import _default_int

    # (the kernel takes int32 or int64: the namespace's default integer, as
    # the generic code compares in)
    it = _default_int(jnp, None)
    if jnp.iinfo(target.dtype).bits > jnp.iinfo(it).bits:  # pragma: no cover - int64 is x64
        return NotImplemented
    t = target if target.dtype == it else target.astype(it)
    return _ce_fn(ignore_index, reduction)(logits, t)
