"""NumPy fast paths: cache-sized blocks, buffers owned by xact, float64 inside.

Where the optional C kernel is built (``_ckernel.c``, see ``setup.py``), the
reductions and ``cross_entropy`` run it instead (:func:`_c_rows`,
:func:`c_cross_entropy_loss`): the same kernel fused into one loop per pass
over a row. What follows describes the path without it, which stays as the
fallback and is tested as such.

The generic code builds a dozen full-size temporaries (each a pass over
main memory) and pays ~40 µs of namespace and dtype bookkeeping per call.
Here, for the common case (a float32 or float64 ``numpy.ndarray``, the
reduction over the last axis or over all of a contiguous array, no mask,
no weights):

* The rows are processed in blocks of up to :data:`BLOCK` elements, so the
  temporaries stay in the CPU caches; they are a handful of buffers
  allocated once per call and filled with ``out=``. Peak memory is the
  output plus a few blocks (the generic path: about 7x the input).
* Large inputs are split into ranges of rows, one per core, each with its
  own buffers (:mod:`._parallel`); the bits do not depend on the split.
* The row maximum comes from ``argmax`` and a gather (faster than a max
  reduction, and NaN-aware: the first NaN is the "maximum").
* float64 follows the kernel of :mod:`xact._kernel` step by step: the
  shift by the row maximum, the TwoSum error ``e`` of ``x - m`` folded into
  ``exp``, the maximum entries counted rather than summed, and ``log1p``
  of the rest. Entries more than ``CUTOFF`` below the maximum are clipped
  (their exponential is 0 either way), which keeps every operand finite.
  When every row of a block has a single maximum entry (one flat count
  tells), it is taken out of the sum at its ``argmax`` position instead of
  with a mask.
* float32 computes each block in float64: the difference of two float32
  numbers within ``CUTOFF`` of each other is exact in float64, so the TwoSum
  correction is not needed, and ``exp``/``log`` are float64-accurate; the
  result is rounded once to float32. The maximum entries are summed with
  the rest (float64 rounding cannot reach a float32 result), except in rows
  whose sum is within 2^-16 of 1, where ``log1p`` of the rest is taken.
* Rows whose maximum is not finite (+inf, all -inf or all masked, NaN) are
  rare; they are recomputed with the generic code, which defines their
  values, so the edge-case rules hold by construction.

The sigmoid family works the same way elementwise, in float64 blocks.
Everything else (``where=``, ``b=``, ``return_sign``, complex, integer,
float16 input, other axes, non-contiguous layouts, a ``temperature``)
declines with ``NotImplemented`` and takes the generic path.
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any

import numpy as np

from .._kernel import CUTOFF
from . import LARGEST_MAX, _parallel, plain_cross_entropy

_ck: ModuleType | None
try:  # the optional C kernel (setup.py builds it where a C compiler is)
    from . import _ckernel

    _ck = _ckernel
except ImportError:  # pragma: no cover - a build without a compiler
    _ck = None


def _follow_numpy_hugepages() -> None:
    """The C kernel advises the large outputs it writes into torch tensors
    MADV_HUGEPAGE (``_ckernel.hugepages``) where NumPy advises its own
    arrays, per NumPy's switch (off on Linux kernels older than 4.6, or
    with ``NUMPY_MADVISE_HUGEPAGE=0``). Read once, here, at import: not on
    the first torch call, which ``torch.compile`` may be tracing (it cannot
    trace NumPy's C function)."""
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    get = getattr(getattr(core, "multiarray", None), "_get_madvise_hugepage", None)
    switch = getattr(_ck, "hugepages", None)  # (None in a build older than the source)
    if switch is not None and get is not None:
        switch(bool(get()))


_follow_numpy_hugepages()


def c_kernel_built() -> bool:
    """Whether the C kernel (``_ckernel.c``) is there to run (the tests
    switch it off by setting ``_ck`` to None)."""
    return _ck is not None


__all__ = [
    "BLOCK",
    "C_MODES",
    "C_REDUCTIONS",
    "MAX_ROW",
    "MIN_BLOCK",
    "SMALL",
    "c_cross_entropy_loss",
    "c_kernel_built",
    "cross_entropy",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softmin",
    "softplus",
]

BLOCK = 1 << 17
"""Elements per block (at most): large enough that the Python overhead of a
dozen ufunc calls per block is small next to their work, small enough that
the buffers stay in the CPU's caches. Measured on the benchmark shapes,
2^17 beat 2^14 to 2^16 and 2^18 to 2^19."""
MIN_BLOCK = 1 << 14
"""Blocks shrink towards this for smaller inputs (see :func:`_block`)."""
MAX_ROW = 1 << 22
"""Longer reduced axes decline (one row is one block)."""
SMALL = 1 << 14
"""Inputs up to this many elements are one block; they take
:func:`_one_block`, which skips the buffers, the thread split and the
per-row bookkeeping (half the time of a 32x10 call)."""

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_NEG_INF = -np.inf
_LARGEST = np.float64(LARGEST_MAX)  # (a float would be cast to float32 arrays' dtype)


_TINY_TOTAL = 2.0**-16
"""float32: ``log(total)`` is within 2^-33 (relative) of ``log(k + r)``
when ``total >= 1 + 2^-16``; below, ``log1p(r)`` is taken."""


def _rows(x: Any, axis: Any) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]] | None:
    """``x`` as a 2-D (rows, reduced) array, the kept shape and the reduced-
    with-keepdims shape; None where the fast path does not apply."""
    if x.dtype not in (_F32, _F64) or x.ndim == 0 or x.size == 0:
        return None
    ndim = x.ndim
    shape = x.shape
    if axis is None:
        if not x.flags.c_contiguous:
            return None
        return x.reshape(1, x.size), (), (1,) * ndim
    if type(axis) is tuple:
        if len(axis) != 1:
            return None
        (axis,) = axis
    if type(axis) is not int or not -ndim <= axis < ndim or axis % ndim != ndim - 1:
        return None
    n = shape[-1]
    if n > MAX_ROW:
        return None
    if ndim == 2:
        x2 = x
    elif x.flags.c_contiguous:
        x2 = x.reshape(-1, n)
    else:
        return None
    return x2, shape[:-1], (*shape[:-1], 1)


def _block(size: int) -> int:
    """Elements per block for an input of ``size`` elements: :data:`BLOCK`,
    but with the buffers of one thread per core together below an eighth of
    the input (the peak memory stays near the output's size). It depends on
    the machine, not on ``XACT_NUM_THREADS``: ``logsumexp(x, axis=None)``
    groups its partial sums by block."""
    if size <= 8 * MIN_BLOCK:
        return MIN_BLOCK
    return max(MIN_BLOCK, min(BLOCK, size // (8 * _parallel.cores())))


def _generic(func: str, x: np.ndarray, **kw: Any) -> np.ndarray:
    import xact

    from . import disabled

    with disabled():
        return np.asarray(getattr(xact, func)(x, **kw))


def _shifted(
    blk: np.ndarray,
    m_fin: np.ndarray,
    s: np.ndarray,
    t: np.ndarray,
    msk: np.ndarray,
    a: np.ndarray | None,
    e: np.ndarray | None,
) -> None:
    """The kernel of :mod:`xact._kernel` on one block, into owned buffers.

    ``s = fl(x - m)`` (clipped at the cut-off), ``e`` its rounding error
    (float64 input only; ``a`` and ``e`` are None for float32),
    ``t = exp(s) * (1 + e)`` (exactly 1 at the maximum entries), ``msk``
    the maximum entries (``s == 0``).
    """
    if a is not None and e is not None:
        # TwoSum of a - m_fin on finite operands, a = x raised to at least
        # m - CUTOFF - |m| 2^-50: the margin keeps that bound below m where
        # m - CUTOFF rounds to m, so that s == 0 exactly at the maximum
        # entries and exp(s) == 0 below the cut-off. (Rows without a finite
        # maximum compute garbage here, quietly, and are recomputed.)
        np.maximum(blk, (m_fin - CUTOFF) - np.abs(m_fin) * 2.0**-50, out=a)
        np.subtract(a, m_fin, out=s)
        np.subtract(s, a, out=e)  # bb
        np.subtract(s, e, out=t)  # s - bb
        np.subtract(a, t, out=t)  # a - (s - bb)
        np.add(e, m_fin, out=e)  # m + bb
        np.subtract(t, e, out=e)  # e
        np.exp(s, out=t)
        np.add(e, 1.0, out=a)
        np.multiply(t, a, out=t)
    else:
        # float32 - float32 within CUTOFF is exact in float64.
        np.subtract(blk, m_fin, out=s, dtype=_F64)
        np.exp(s, out=t)
    np.equal(s, 0.0, out=msk)  # the maximum entries


def _logsumexp_all(flat: np.ndarray) -> np.ndarray:
    """logsumexp over all of a contiguous array: one max, then blocks."""
    m = np.maximum.reduce(flat)
    if not np.isfinite(m):
        return np.asarray(m)  # +inf, -inf (no mass) or NaN, as the generic
    if not abs(m) < _LARGEST:
        return _generic("logsumexp", flat)
    f64 = flat.dtype == _F64
    nb = min(flat.size, _block(flat.size))
    s_buf, t_buf = np.empty(nb, _F64), np.empty(nb, _F64)
    m_buf = np.empty(nb, np.bool_)
    a_buf = np.empty(nb, _F64) if f64 else None
    e_buf = np.empty(nb, _F64) if f64 else None
    m_fin = np.float64(m)
    k = 0
    parts = []
    for i0 in range(0, flat.size, nb):
        h = min(flat.size, i0 + nb) - i0
        a = a_buf[:h] if a_buf is not None else None
        e = e_buf[:h] if e_buf is not None else None
        _shifted(flat[i0 : i0 + h], m_fin, s_buf[:h], t_buf[:h], m_buf[:h], a, e)
        np.putmask(t_buf[:h], m_buf[:h], 0.0)
        k += int(np.count_nonzero(m_buf[:h]))
        parts.append(np.add.reduce(t_buf[:h]))
    rest = np.add.reduce(np.asarray(parts))
    return np.asarray(m_fin + np.log1p((k - 1) + rest), dtype=flat.dtype)


class _NotFinite(Exception):
    """A row without a finite maximum in "parts" mode (the caller declines)."""


def _reduce_rows(x2: np.ndarray, mode: str, out: np.ndarray) -> None:
    """Fill ``out`` (rows, 1) for ``logsumexp``, (rows, 2) float64 for
    "parts" (the row maximum and ``log(k + r)``) or (rows, n) for the others,
    in row ranges split over threads (see :mod:`._parallel`)."""
    rows, n = x2.shape
    if _ck is not None and x2.strides[1] == x2.itemsize:
        _c_rows(x2, mode, out)
        return
    if x2.size <= SMALL and _one_block(x2, mode, out):
        return
    bad = _parallel.split(rows, n, lambda r0, r1: _reduce_range(x2, mode, out, r0, r1))
    idx = [i for part in bad for i in part]
    if idx and mode == "parts":
        raise _NotFinite
    if idx and mode != "logsumexp":
        # Rows without a finite maximum follow the generic rules.
        rows_bad = np.concatenate(idx)
        out[rows_bad] = _generic(mode, x2[rows_bad], axis=-1)


C_MODES = {"logsumexp": 0, "softmax": 1, "log_softmax": 2, "parts": 3}
"""The C kernel's row modes (``_ckernel.rows`` and friends; the JAX and
torch paths use them too)."""
C_REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}
"""The C kernel's cross_entropy reductions (``cross_entropy_reduce``,
``cross_entropy_at``)."""


def _c_rows(x2: np.ndarray, mode: str, out: np.ndarray) -> None:
    """:func:`_reduce_rows` with the C kernel (``_ckernel.c``): each row is
    read twice (three times for log_softmax) and written once, in one fused
    loop per pass, with the GIL released so that the row ranges of
    :func:`._parallel.split` run on all cores. The rows it leaves (a NaN, or
    no maximum below 1.7e308) follow the generic rules."""
    rows, n = x2.shape
    if not x2.flags.aligned:  # (a view at an odd offset: the kernel reads whole doubles)
        x2 = x2.copy()
    bad = np.zeros(rows, np.uint8)
    code = C_MODES[mode]
    rows_c = _ck.rows  # type: ignore[union-attr]  # (where c_kernel_built())
    nt, chunk = _parallel.plan(rows, n)
    if nt > 1 and _ck.openmp():  # type: ignore[union-attr]
        n_bad = rows_c(x2, out, bad, code, 0, rows, nt, chunk)
    else:
        n_bad = sum(_parallel.share(rows, n, lambda r0, r1: rows_c(x2, out, bad, code, r0, r1)))
    if n_bad:
        if mode == "parts":
            raise _NotFinite
        rows_bad = bad.nonzero()[0]
        kw = {"keepdims": True} if mode == "logsumexp" else {}
        out[rows_bad] = _generic(mode, x2[rows_bad], axis=-1, **kw)


def _reduce_range(
    x2: np.ndarray, mode: str, out: np.ndarray, r_start: int, r_stop: int
) -> list[np.ndarray]:
    """Rows ``r_start:r_stop`` of :func:`_reduce_rows`, in blocks, with buffers
    of their own; returns the indices of the rows whose maximum is not finite
    (their ``out`` rows are still to be filled, except for logsumexp)."""
    n = x2.shape[1]
    rb = max(1, min(r_stop - r_start, _block(x2.size) // max(n, 1)))
    f64 = x2.dtype == _F64
    s_buf = np.empty((rb, n), _F64)
    t_buf = np.empty((rb, n), _F64)
    # float32 needs neither the mask nor the TwoSum buffers.
    m_buf = np.empty((rb, n) if f64 else (0, 0), np.bool_)
    a_buf = np.empty((rb, n) if f64 else (0, 0), _F64)
    e_buf = np.empty((rb, n) if f64 else (0, 0), _F64)
    rows = np.arange(rb)
    bad_rows = []
    for r0 in range(r_start, r_stop, rb):
        r1 = min(r_stop, r0 + rb)
        h = r1 - r0
        blk = x2[r0:r1]
        s, t, msk, a, e = s_buf[:h], t_buf[:h], m_buf[:h], a_buf[:h], e_buf[:h]
        # argmax (the first NaN, if any) and a gather: faster than max.
        am = blk.argmax(axis=1)  # (the method: no Python wrapper)
        m = blk[rows[:h], am][:, None]
        fin = np.abs(m) < _LARGEST  # finite, and so is the clip bound
        m_fin = np.where(fin, m, 0.0).astype(_F64, copy=False)  # (rows, 1)
        all_fin = bool(fin.all())
        quiet = contextlib.nullcontext() if all_fin else np.errstate(all="ignore")
        if not all_fin:
            # Those rows are recomputed by the caller; their arithmetic here
            # may overflow (exp of +inf entries) and must not warn.
            bad_rows.append(r0 + (~fin[:, 0]).nonzero()[0])
        with quiet:
            if not f64:
                _block_f32(blk, mode, out[r0:r1], m, m_fin, fin, am, s, t)
                continue
            _shifted(blk, m_fin, s, t, msk, a, e)
            # The maximum entries are counted, not summed: added in, their
            # ones would swamp the rest's rounding (6 ULP on 53 entries).
            single = all_fin and np.count_nonzero(msk) == h
            if single:  # one maximum entry in every row: the usual case
                k: Any = 1.0
                t[rows[:h], am] = 0.0
            else:
                k = np.add.reduce(msk, axis=1, dtype=_F64, keepdims=True)
                np.putmask(t, msk, 0.0)
            rest = np.add.reduce(t, axis=1, keepdims=True)
            if mode == "softmax":
                if single:
                    t[rows[:h], am] = 1.0
                else:
                    np.putmask(t, msk, 1.0)
                np.divide(t, np.where(fin, k + rest, 1.0), out=out[r0:r1], casting="same_kind")
                continue
            lg = np.log1p(np.where(fin, (k - 1.0) + rest, 0.0))
            if mode == "parts":
                out[r0:r1, :1], out[r0:r1, 1:] = m_fin, lg
            elif mode == "logsumexp":
                # Rows left out: m itself (+-inf, NaN; or |m| >= 1.7e308,
                # where m + log(k + r) rounds to m, as log(k + r) < 50).
                np.copyto(out[r0:r1], np.where(fin, m_fin + lg, m), casting="same_kind")
            else:
                _log_softmax_block(blk, m_fin, s, e, lg, msk, out[r0:r1])
    return bad_rows


def _one_block(x2: np.ndarray, mode: str, out: np.ndarray) -> bool:
    """All of a small input as one block, where every row's maximum is
    finite: the arithmetic of :func:`_reduce_range`, op for op (the same
    bits), on fresh temporaries. A 32x10 call is two dozen ufunc calls of
    about half a microsecond each, so the blocked path's bookkeeping (buffers,
    a row index, the split, the checks for special rows) was half its time.
    Returns False, having written nothing, where a row's maximum is not
    finite: those rows take the blocked path.

    A second copy of the block arithmetic, on purpose: one block function
    shared with :func:`_reduce_range` (buffers passed in, argmax positions,
    the special-row masks made optional) was tried and cost 1.5 to 2.5 µs
    more per 32x10 call, an eighth of it. The test
    ``test_numpy_small_inputs_give_the_blocked_bits`` keeps the two copies
    bit for bit equal, transposed inputs included."""
    m = np.maximum.reduce(x2, axis=1, keepdims=True)  # NaN if any
    f32 = x2.dtype == _F32  # (a finite float32 maximum is far below the limit)
    ok = np.isfinite(m) if f32 else np.abs(m) < _LARGEST
    if np.count_nonzero(ok) != m.shape[0]:
        return False
    if f32:  # as _block_f32
        # (C order, whatever x2's layout: the sums run as the blocked path's)
        s = np.subtract(x2, m, dtype=_F64, order="C")
        t = np.exp(s)
        total = np.add.reduce(t, axis=1, keepdims=True)
        if mode == "softmax":
            np.divide(t, total, out=out, casting="same_kind")
            return True
        lg = np.log(total)
        near_one = total[:, 0] < 1.0 + _TINY_TOTAL
        if np.count_nonzero(near_one):  # one dominant entry: log1p of the rest
            small = near_one.nonzero()[0]
            t[small, x2[small].argmax(axis=1)] = 0.0
            lg[small] = np.log1p(np.add.reduce(t[small], axis=1, keepdims=True))
    else:  # as _shifted, then the count of the maximum entries
        a = np.maximum(x2, (m - CUTOFF) - np.abs(m) * 2.0**-50, order="C")
        s = a - m
        e = s - a
        t = s - e
        np.subtract(a, t, out=t)
        np.add(e, m, out=e)
        np.subtract(t, e, out=e)
        np.exp(s, out=t)
        np.add(e, 1.0, out=a)
        np.multiply(t, a, out=t)
        msk = s == 0.0
        k: Any = 1.0
        if np.count_nonzero(msk) != m.shape[0]:  # ties for the maximum
            k = np.add.reduce(msk, axis=1, dtype=_F64, keepdims=True)
        np.putmask(t, msk, 0.0)
        rest = np.add.reduce(t, axis=1, keepdims=True)
        if mode == "softmax":
            np.putmask(t, msk, 1.0)
            np.divide(t, k + rest, out=out)
            return True
        lg = np.log1p((k - 1.0) + rest)
    if mode == "parts":
        out[:, :1], out[:, 1:] = m, lg
    elif mode == "logsumexp":
        np.add(m, lg, out=out, casting="same_kind")
    elif x2.dtype == _F32:
        with np.errstate(over="ignore"):
            np.subtract(s, lg, out=out, casting="same_kind")
    else:
        _log_softmax_block(x2, m, s, e, lg, msk, out)
    return True


def _block_f32(
    blk: np.ndarray,
    mode: str,
    o: np.ndarray,
    m: np.ndarray,
    m_fin: np.ndarray,
    fin: np.ndarray,
    am: np.ndarray,
    s: np.ndarray,
    t: np.ndarray,
) -> None:
    """float32 rows in float64: ``s = x - m`` is exact within the cut-off
    (and its rounding below it is far below float32's), so the maxima need
    no counting: their ones may be summed with the rest, whose rounding
    (float64) cannot reach a float32 result, except in ``log(total)`` for a
    total within 2^-16 of 1 (one dominant entry): there ``log1p`` of the
    rest is taken, with the rest summed again without the maximum."""
    np.subtract(blk, m_fin, out=s, dtype=_F64)
    np.exp(s, out=t)
    total = np.add.reduce(t, axis=1, keepdims=True)
    if mode == "softmax":
        np.divide(t, np.where(fin, total, 1.0), out=o, casting="same_kind")
        return
    lg = np.log(np.where(fin, total, 1.0))
    small = (fin[:, 0] & (total[:, 0] < 1.0 + _TINY_TOTAL)).nonzero()[0]
    if small.size:  # one maximum entry (two would make total >= 2)
        t[small, am[small]] = 0.0
        lg[small] = np.log1p(np.add.reduce(t[small], axis=1, keepdims=True))
    if mode == "parts":
        o[:, :1], o[:, 1:] = m_fin, lg
    elif mode == "logsumexp":
        np.copyto(o, np.where(fin, m_fin + lg, m), casting="same_kind")
    else:  # float32 - float64 beyond the dtype's range rounds to -inf, quietly
        with np.errstate(over="ignore"):
            np.subtract(s, lg, out=o, casting="same_kind")


def _log_softmax_block(
    blk: np.ndarray,
    m_fin: np.ndarray,
    s: np.ndarray,
    e: np.ndarray,
    lg: np.ndarray,
    msk: np.ndarray,
    o: np.ndarray,
) -> None:
    """float64: ``(s - lg) + e``, and ``(x - m) - lg`` below the cut-off,
    into ``o``."""
    # A spread beyond the dtype's range rounds to -inf, correctly and quietly.
    with np.errstate(over="ignore"):
        np.subtract(s, lg, out=o)
        np.add(o, e, out=o)
        np.less(blk, m_fin - CUTOFF, out=msk)
        if msk.any():  # exp underflows there, the log does not
            fr, fc = msk.nonzero()
            far = blk[fr, fc].astype(_F64, copy=False) - m_fin[fr, 0]
            o[fr, fc] = far - lg[fr, 0]


def logsumexp(x: Any, *, axis: Any, keepdims: bool, b: Any, return_sign: bool, where: Any) -> Any:
    if b is not None or where is not None or return_sign:
        return NotImplemented
    got = _rows(x, axis)
    if got is None:
        return NotImplemented
    x2, kept, kept_dims = got
    if axis is None:
        return _logsumexp_all(x2.reshape(-1)).reshape(kept_dims if keepdims else kept)
    out = np.empty((x2.shape[0], 1), x.dtype)
    _reduce_rows(x2, "logsumexp", out)
    return out.reshape(kept_dims if keepdims else kept)


def _normalise(mode: str, x: Any, axis: Any, where: Any, temperature: Any) -> Any:
    if (
        where is not None
        or type(temperature) not in (int, float)
        or temperature != 1
        or axis is None
    ):
        return NotImplemented
    got = _rows(x, axis)
    if got is None:
        return NotImplemented
    x2 = got[0]
    out = np.empty(x2.shape, x.dtype)
    _reduce_rows(x2, mode, out)
    return out.reshape(x.shape)


def softmax(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    return _normalise("softmax", x, axis, where, temperature)


def log_softmax(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    return _normalise("log_softmax", x, axis, where, temperature)


def softmin(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    # softmax(-x): negation is exact, and swaps the infinities as softmin's
    # rules do. (Checked first: -x of an unsupported input is not made.)
    if (
        where is not None
        or type(temperature) not in (int, float)
        or temperature != 1
        or axis is None
        or _rows(x, axis) is None
    ):
        return NotImplemented
    return _normalise("softmax", np.negative(x), axis, where, temperature)


# --------------------------------------------------------------------------
# The sigmoid family, elementwise in float64 blocks.


def _elementwise(mode: str, x: Any) -> Any:
    if x.dtype not in (_F32, _F64) or not x.flags.c_contiguous or x.ndim == 0 or x.size == 0:
        return NotImplemented  # (an empty array has no block to cut)
    flat = x.reshape(-1)
    out = np.empty(x.shape, x.dtype)
    oflat = out.reshape(-1)
    # (the C kernel takes aligned buffers: NumPy exports others as "=d")
    if _ck is not None and x.flags.aligned:
        if mode == "sigmoid":
            _c_elementwise(_ck.sigmoid, flat, oflat)
            return out
        if _c_log1p_exp(flat, oflat, _SIGN[mode]):
            return out
    if mode == "sigmoid" and x.dtype == _F32:
        work = _sigmoid_f32
    else:
        work = _ELEMENTWISE[mode]
    nb = _block(flat.size)
    # Ranges of whole blocks, one per thread.
    n_blocks = -(-flat.size // nb)

    def run(b0: int, b1: int) -> None:
        i0, i1 = b0 * nb, min(flat.size, b1 * nb)
        work(flat[i0:i1], oflat[i0:i1], nb)

    _parallel.split(n_blocks, nb, run)
    return out


_SIGN = {"log_sigmoid": -1, "softplus": 1}


def _c_elementwise(func: Any, flat: np.ndarray, oflat: np.ndarray, *args: Any) -> None:
    """``func(flat, oflat, *args, threads, chunk)`` of the C kernel, the
    elements split over an OpenMP team (or Python threads without one)."""
    nt, chunk = _parallel.plan(flat.size, 1)
    if nt > 1 and _ck.openmp():  # type: ignore[union-attr]  # (where c_kernel_built())
        func(flat, oflat, *args, nt, chunk)
    else:
        _parallel.share(flat.size, 1, lambda i0, i1: func(flat[i0:i1], oflat[i0:i1], *args))


def _c_log1p_exp(flat: np.ndarray, oflat: np.ndarray, sign: int) -> bool:
    """log_sigmoid (sign -1) or softplus (+1) with the C kernel
    (``_ckernel.log1p_exp``): what :func:`_log1p_exp` computes, in one pass
    of float64 lanes, with an ``exp`` and a ``log1p`` of its own (AVX-512
    only: False, nothing written, where that kernel is not in use)."""
    probe = _ck.log1p_exp  # type: ignore[union-attr]  # (where c_kernel_built())
    if not probe(flat[:0], oflat[:0], sign):
        return False
    _c_elementwise(probe, flat, oflat, sign)
    return True


def _blocks(size: int, nb: int) -> Any:
    return ((i0, min(size, i0 + nb)) for i0 in range(0, size, nb))


def _sigmoid_f64(flat: np.ndarray, oflat: np.ndarray, nb: int) -> None:
    """``1 / (1 + e)`` for x >= 0, ``e / (1 + e)`` below, ``e = exp(-|x|)``."""
    w_buf, d_buf = np.empty(min(nb, flat.size), _F64), np.empty(min(nb, flat.size), _F64)
    m_buf = np.empty(min(nb, flat.size), np.bool_)
    for i0, i1 in _blocks(flat.size, nb):
        blk, o = flat[i0:i1], oflat[i0:i1]
        w, d, msk = w_buf[: i1 - i0], d_buf[: i1 - i0], m_buf[: i1 - i0]
        np.abs(blk, out=w)
        np.negative(w, out=w)
        np.exp(w, out=w)  # e = exp(-|x|) <= 1
        np.add(w, 1.0, out=d)
        np.greater_equal(blk, 0.0, out=msk)
        # The numerator: 1 for x >= 0 (w <= 1), w below (w >= 0), NaN for
        # NaN. (A maximum with the mask is five times faster than putmask.)
        np.maximum(w, msk, out=w)
        np.divide(w, d, out=o, casting="same_kind")


def _log1p_exp(flat: np.ndarray, oflat: np.ndarray, nb: int, sign: float) -> None:
    """``min(x, 0) - log1p(e)`` (sign -1: log_sigmoid) or ``max(x, 0) +
    log1p(e)`` (sign +1: softplus), ``e = exp(-|x|)``, in float64 blocks."""
    w_buf, d_buf = np.empty(min(nb, flat.size), _F64), np.empty(min(nb, flat.size), _F64)
    for i0, i1 in _blocks(flat.size, nb):
        blk, o = flat[i0:i1], oflat[i0:i1]
        w, d = w_buf[: i1 - i0], d_buf[: i1 - i0]
        np.abs(blk, out=w)
        np.negative(w, out=w)
        np.exp(w, out=w)
        np.log1p(w, out=w)
        if sign < 0:
            np.minimum(blk, 0.0, out=d)
            np.subtract(d, w, out=o, casting="same_kind")
        else:
            np.maximum(blk, 0.0, out=d)
            np.add(d, w, out=o, casting="same_kind")


def _sigmoid_f32(flat: np.ndarray, oflat: np.ndarray, nb: int) -> None:
    """float32: ``1 / (1 + exp(-x))`` in float64, rounded once.

    In float64 this is within 1.5 ULP (of float64) for every float32 input
    with a non-zero result (x > -104, exp(-x) < 1e46), so the float32 result
    is the rounded true value; below, exp(-x) overflows to inf (quietly)
    and the result is 0, as it is in float32.
    """
    w_buf = np.empty(min(nb, flat.size), _F64)
    with np.errstate(over="ignore"):
        for i0, i1 in _blocks(flat.size, nb):
            w = w_buf[: i1 - i0]
            np.negative(flat[i0:i1], out=w)
            np.exp(w, out=w)
            np.add(w, 1.0, out=w)
            np.divide(1.0, w, out=oflat[i0:i1], casting="same_kind")


_ELEMENTWISE = {
    "sigmoid": _sigmoid_f64,
    "log_sigmoid": lambda f, o, nb: _log1p_exp(f, o, nb, -1.0),
    "softplus": lambda f, o, nb: _log1p_exp(f, o, nb, 1.0),
}


def sigmoid(x: Any) -> Any:
    return _elementwise("sigmoid", x)


def log_sigmoid(x: Any) -> Any:
    return _elementwise("log_sigmoid", x)


def softplus(x: Any, *, beta: Any) -> Any:
    if type(beta) not in (int, float) or beta != 1:
        return NotImplemented
    return _elementwise("softplus", x)


# --------------------------------------------------------------------------
# cross_entropy with class indices


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
    """``(N, C)`` logits, ``(N,)`` integer targets, no weight, mask or
    smoothing: the loss of sample ``i`` is ``log(k + r) - (x_{i,y} - m)``
    from the row maximum ``m`` and ``log(k + r)`` of the blocked kernel,
    without the log-probabilities of the other classes ever being written
    (peak memory: a few blocks). The target's difference ``x_{i,y} - m`` is
    exact (float64 for float32 input, TwoSum for float64), so a confident,
    correct prediction (loss near 0) keeps its relative accuracy. Declines
    where the generic code raises (a class index out of range) or has
    special rules (rows without a finite maximum)."""
    if (
        not plain_cross_entropy(weight, ignore_index, label_smoothing, reduction, where)
        or type(logits) is not np.ndarray
        or logits.dtype not in (_F32, _F64)
        or logits.ndim != 2
        or logits.size == 0
        or not logits.flags.c_contiguous
        or logits.shape[1] > MAX_ROW
        or type(axis) is not int
        or axis not in (-1, 1)
        or type(target) is not np.ndarray
        or target.dtype.kind not in "iu"
        or target.shape != (logits.shape[0],)
    ):
        return NotImplemented
    n, n_classes = logits.shape
    if _ck is not None and target.dtype != np.uint64:
        if logits.size <= SMALL and (r := _small_ce(logits, target, ignore_index, reduction)):
            return r[0]
        return _c_cross_entropy(logits, target, ignore_index, reduction)
    t = target
    active = None  # every sample counts
    if ignore_index is None:
        if not (t.min() >= 0 and t.max() < n_classes):
            return NotImplemented  # the generic code raises
        cols = t
    else:
        in_range = (t >= 0) & (t < n_classes)
        if np.count_nonzero(in_range | (t == ignore_index)) != n:
            return NotImplemented
        active = in_range & (t != ignore_index)
        cols = np.where(in_range, t, 0)
    parts = np.empty((n, 2), _F64)
    try:
        _reduce_rows(logits, "parts", parts)
    except _NotFinite:
        return NotImplemented
    m, lg = parts[:, 0], parts[:, 1]
    xt = logits[np.arange(n), cols]
    # A float32 loss beyond float32's range is inf, correctly and quietly.
    with np.errstate(invalid="ignore", over="ignore"):
        d = xt - m  # float64: exact for float32 input; -inf for a -inf target logit
        lp = d - lg  # the target's log-probability, as log_softmax has it
        if logits.dtype == _F64:  # TwoSum: xt - m == d + e
            b = d - xt
            e = (xt - (d - b)) - (m + b)
            lp = np.where(np.isfinite(d), lp + e, lp)
        # -log p, with the generic path's signed zeros (-0.0 where ignored).
        loss = -lp if active is None else -np.where(active, lp, 0.0)
        if reduction == "none":
            return loss.astype(logits.dtype)
        total = np.add.reduce(loss)
        if reduction == "sum":
            return logits.dtype.type(total)
        count = n if active is None else np.count_nonzero(active)
        return np.asarray(total / count if count else 0.0, dtype=logits.dtype)


def _small_ce(
    logits: np.ndarray, target: np.ndarray, ignore_index: Any, reduction: str
) -> tuple[Any] | None:
    """Small logits with int64 targets: the losses and their reduction in
    one call of the C kernel on this thread (``_ckernel.cross_entropy_reduce``:
    what :func:`_c_cross_entropy` computes, NumPy's pairwise sum included,
    without its thread plan and NumPy calls). ``(result,)``, or None where
    it does not apply or a row or target is left to the other paths."""
    if (
        target.dtype != np.int64
        or not target.flags.c_contiguous
        or not (target.flags.aligned and logits.flags.aligned)
    ):
        return None
    red = C_REDUCTIONS[reduction]
    out = np.empty(target.shape if red == 0 else (), logits.dtype)
    if not _ck.cross_entropy_reduce(logits, target, ignore_index, red, out):  # type: ignore[union-attr]
        return None
    # (the types _c_cross_entropy returns: a scalar for "sum")
    return (out[()] if red == 1 else out,)


def _c_cross_entropy(
    logits: np.ndarray, target: np.ndarray, ignore_index: Any, reduction: Any
) -> Any:
    """:func:`cross_entropy` with the C kernel: each sample's loss in one
    call (``_ckernel.c``), the rows split over threads; only the reduction
    is left to NumPy. Declines where the generic code raises (a class index
    out of range) or has special rules (a row without a finite maximum)."""
    loss = np.empty(logits.shape[0], _F64)
    t = target.astype(np.int64, copy=False)  # (uint64 declined: it would wrap)
    n_bad, n_invalid, count = c_cross_entropy_loss(logits, t, ignore_index, loss)
    if n_bad or n_invalid:
        return NotImplemented
    # A float32 loss beyond float32's range is inf, correctly and quietly.
    with np.errstate(over="ignore") if logits.dtype == _F32 else contextlib.nullcontext():
        if reduction == "none":
            return loss.astype(logits.dtype)
        total = np.add.reduce(loss)
        if reduction == "sum":
            return logits.dtype.type(total)
        return np.asarray(total / count if count else 0.0, dtype=logits.dtype)


def c_cross_entropy_loss(
    logits: np.ndarray, target: np.ndarray, ignore_index: int | None, loss: np.ndarray
) -> tuple[int, int, int]:
    """Each sample's loss (float64) into ``loss`` with the C kernel, the rows
    split over threads; ``target`` is int64. Returns the number of rows
    without a finite maximum (their losses are not written) and of targets
    out of range, not ignored (their losses are NaN). The third number
    counts the samples that are not ignored."""
    n, n_classes = logits.shape
    if not logits.flags.aligned:  # (a view at an odd offset: the kernel reads whole doubles)
        logits = logits.copy()
    if not (target.flags.c_contiguous and target.flags.aligned):
        target = target.copy()
    ignore = ignore_index  # (beyond int64 the kernel ignores nothing)
    ce = _ck.cross_entropy  # type: ignore[union-attr]  # (where c_kernel_built())
    nt, chunk = _parallel.plan(n, n_classes)
    if nt > 1 and _ck.openmp():  # type: ignore[union-attr]
        counts = [ce(logits, target, loss, ignore, 0, n, nt, chunk)]
    else:
        counts = _parallel.share(
            n, n_classes, lambda r0, r1: ce(logits, target, loss, ignore, r0, r1)
        )
    n_bad = n_invalid = count = 0
    for b, i, c in counts:
        n_bad, n_invalid, count = n_bad + b, n_invalid + i, count + c
    return n_bad, n_invalid, count
