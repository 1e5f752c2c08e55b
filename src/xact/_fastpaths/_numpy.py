"""NumPy fast paths: cache-sized blocks, buffers owned by xact, float64 inside.

The generic code builds a dozen full-size temporaries (each a pass over
main memory) and pays ~40 µs of namespace and dtype bookkeeping per call.
Here, for the common case (a float32 or float64 ``numpy.ndarray``, the
reduction over the last axis or over all of a contiguous array, no mask,
no weights):

* The rows are processed in blocks of about :data:`BLOCK` elements, so the
  temporaries stay in the CPU cache; they are a handful of buffers
  allocated once per call and filled with ``out=``. Peak memory is the
  output plus a few blocks (the generic path: about 7x the input).
* float64 follows the kernel of :mod:`xact._kernel` step by step: the
  shift by the row maximum, the TwoSum error ``e`` of ``x - m`` folded into
  ``exp``, the maximum entries counted rather than summed, and ``log1p``
  of the rest. Entries more than ``CUTOFF`` below the maximum are clipped
  (their exponential is 0 either way), which keeps every operand finite.
* float32 computes each block in float64: the difference of two float32
  numbers within ``CUTOFF`` of each other is exact in float64, so the TwoSum
  correction is not needed, and ``exp``/``log1p`` are float64-accurate; the
  result is rounded once to float32.
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
from typing import Any

import numpy as np

from .._kernel import CUTOFF

__all__ = [
    "BLOCK",
    "MAX_ROW",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softplus",
]

BLOCK = 16384
"""Elements per block: five float64 buffers of this size fit in a 1 MB L2."""
MAX_ROW = 1 << 22
"""Longer reduced axes decline (one row is one block)."""

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_NEG_INF = -np.inf


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
    ``t = exp(s) * (1 + e)`` with 0 at the maximum entries, ``msk`` the
    maximum entries (``s == 0``).
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
        np.equal(s, 0.0, out=msk)  # the maximum entries
        np.exp(s, out=t)
        np.add(e, 1.0, out=a)
        np.multiply(t, a, out=t)
    else:
        # float32 - float32 within CUTOFF is exact in float64.
        np.subtract(blk, m_fin, out=s, dtype=_F64)
        np.equal(s, 0.0, out=msk)
        np.exp(s, out=t)
    np.putmask(t, msk, 0.0)


def _logsumexp_all(flat: np.ndarray) -> np.ndarray:
    """logsumexp over all of a contiguous array: one max, then blocks."""
    m = np.maximum.reduce(flat)
    if not np.isfinite(m):
        return np.asarray(m)  # +inf, -inf (no mass) or NaN, as the generic
    f64 = flat.dtype == _F64
    nb = min(flat.size, BLOCK)
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
        k += int(np.count_nonzero(m_buf[:h]))
        parts.append(np.add.reduce(t_buf[:h]))
    rest = np.add.reduce(np.asarray(parts))
    return np.asarray(m_fin + np.log1p((k - 1) + rest), dtype=flat.dtype)


def _reduce_rows(x2: np.ndarray, mode: str, out: np.ndarray) -> None:
    """Fill ``out`` (rows, 1) for ``logsumexp`` or (rows, n) for the others."""
    rows, n = x2.shape
    rb = max(1, min(rows, BLOCK // max(n, 1)))
    f64 = x2.dtype == _F64
    s_buf = np.empty((rb, n), _F64)
    t_buf = np.empty((rb, n), _F64)
    m_buf = np.empty((rb, n), np.bool_)
    a_buf = np.empty((rb, n), _F64) if f64 else s_buf
    e_buf = np.empty((rb, n), _F64) if f64 else s_buf
    bad_rows = []
    for r0 in range(0, rows, rb):
        r1 = min(rows, r0 + rb)
        h = r1 - r0
        blk = x2[r0:r1]
        s, t, msk = s_buf[:h], t_buf[:h], m_buf[:h]
        m = np.maximum.reduce(blk, axis=1, keepdims=True)
        fin = np.isfinite(m)
        m_fin = np.where(fin, m, 0.0).astype(_F64, copy=False)  # (rows, 1)
        all_fin = bool(fin.all())
        quiet = contextlib.nullcontext() if all_fin else np.errstate(all="ignore")
        if not all_fin:
            # Those rows are recomputed below; their arithmetic here may
            # overflow (exp of +inf entries) and must not warn.
            bad_rows.append(r0 + np.flatnonzero(~fin[:, 0]))
        with quiet:
            _shifted(blk, m_fin, s, t, msk, a_buf[:h] if f64 else None, e_buf[:h] if f64 else None)
            lo = m_fin - CUTOFF
            e = e_buf[:h] if f64 else None
            k = np.add.reduce(msk, axis=1, dtype=_F64, keepdims=True)
            rest = np.add.reduce(t, axis=1, keepdims=True)
            lg = np.log1p(np.where(fin, (k - 1.0) + rest, 0.0))
            if mode == "logsumexp":
                np.copyto(out[r0:r1], np.where(fin, m_fin + lg, m), casting="same_kind")
            elif mode == "softmax":
                np.putmask(t, msk, 1.0)
                np.divide(t, np.where(fin, k + rest, 1.0), out=out[r0:r1], casting="same_kind")
            else:  # log_softmax: (d - lg) + e; (x - m) - lg below the cut-off
                o = out[r0:r1]
                # A spread beyond the dtype's range rounds to -inf, correctly
                # and quietly (float32 casts and float64 differences alike).
                with np.errstate(over="ignore"):
                    if e is not None:  # float64: the TwoSum correction
                        np.subtract(s, lg, out=o)
                        np.add(o, e, out=o)
                        np.less(blk, lo, out=msk)
                    else:
                        np.subtract(s, lg, out=o, casting="same_kind")
                        m32 = np.where(fin, m, np.float32(0))
                        np.less(blk, m32 - np.float32(CUTOFF), out=msk)
                    if msk.any():  # exp underflows there, the log does not
                        fr, fc = np.nonzero(msk)
                        far = blk[fr, fc].astype(_F64, copy=False) - m_fin[fr, 0]
                        o[fr, fc] = far - lg[fr, 0]
    if bad_rows:
        idx = np.concatenate(bad_rows)
        if mode != "logsumexp":
            # Rows without a finite maximum follow the generic rules.
            out[idx] = _generic(mode, x2[idx], axis=-1)


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


# --------------------------------------------------------------------------
# The sigmoid family, elementwise in float64 blocks.


def _elementwise(mode: str, x: Any) -> Any:
    if x.dtype not in (_F32, _F64) or not x.flags.c_contiguous or x.ndim == 0 or x.size == 0:
        return NotImplemented  # (an empty array has no block to cut)
    flat = x.reshape(-1)
    size = flat.size
    out = np.empty(x.shape, x.dtype)
    oflat = out.reshape(-1)
    nb = min(size, BLOCK * 4)
    w_buf = np.empty(nb, _F64)
    d_buf = np.empty(nb, _F64)
    m_buf = np.empty(nb, np.bool_) if mode == "sigmoid" else None
    if mode == "sigmoid" and x.dtype == _F32:
        return _sigmoid_f32(flat, oflat, w_buf, nb).reshape(x.shape)
    for i0 in range(0, size, nb):
        i1 = min(size, i0 + nb)
        blk, o = flat[i0:i1], oflat[i0:i1]
        w, d = w_buf[: i1 - i0], d_buf[: i1 - i0]
        np.abs(blk, out=w)
        np.negative(w, out=w)
        np.exp(w, out=w)  # e = exp(-|x|) <= 1
        if m_buf is not None:  # sigmoid
            msk = m_buf[: i1 - i0]
            np.add(w, 1.0, out=d)
            np.greater_equal(blk, 0.0, out=msk)
            np.putmask(w, msk, 1.0)
            np.divide(w, d, out=o, casting="same_kind")
        elif mode == "log_sigmoid":
            np.log1p(w, out=w)
            np.minimum(blk, 0.0, out=d)
            np.subtract(d, w, out=o, casting="same_kind")
        else:
            np.log1p(w, out=w)
            np.maximum(blk, 0.0, out=d)
            np.add(d, w, out=o, casting="same_kind")
    return out


def _sigmoid_f32(flat: np.ndarray, oflat: np.ndarray, w_buf: np.ndarray, nb: int) -> np.ndarray:
    """float32: ``1 / (1 + exp(-x))`` in float64, rounded once.

    In float64 this is within 1.5 ULP (of float64) for every float32 input
    with a non-zero result (x > -104, exp(-x) < 1e46), so the float32 result
    is the rounded true value; below, exp(-x) overflows to inf (quietly)
    and the result is 0, as it is in float32.
    """
    with np.errstate(over="ignore"):
        for i0 in range(0, flat.size, nb):
            i1 = min(flat.size, i0 + nb)
            w = w_buf[: i1 - i0]
            np.negative(flat[i0:i1], out=w)
            np.exp(w, out=w)
            np.add(w, 1.0, out=w)
            np.divide(1.0, w, out=oflat[i0:i1], casting="same_kind")
    return oflat


def sigmoid(x: Any) -> Any:
    return _elementwise("sigmoid", x)


def log_sigmoid(x: Any) -> Any:
    return _elementwise("log_sigmoid", x)


def softplus(x: Any, *, beta: Any) -> Any:
    if type(beta) not in (int, float) or beta != 1:
        return NotImplemented
    return _elementwise("softplus", x)
