"""Dask fast paths: one NumPy call per block where the axis is one chunk.

The generic code builds a graph of a dozen elementwise and reduction
layers over a Dask array; each layer's chunks are full-size temporaries.
Where every slice along the reduced axis lies in one chunk (always for the
sigmoid family), the function is instead mapped over the blocks with
:meth:`dask.array.Array.map_blocks`: one task per chunk, which runs the
NumPy fast path, so a worker holds a chunk and its result and little else.
That is what lets ``log_softmax`` stream through arrays far larger than a
worker's memory (``python -m xact.bench --dask-ooc MB``).

Only float32 and float64 arrays with NumPy chunks take it; everything the
NumPy fast path declines (masks, weights, temperature...) declines here too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["log_sigmoid", "log_softmax", "logsumexp", "sigmoid", "softmax", "softplus"]


def _numpy_chunks(x: Any) -> bool:
    import numpy as np

    return type(getattr(x, "_meta", None)) is np.ndarray and x.dtype in (np.float32, np.float64)


def _last_axis(x: Any, axis: Any) -> bool:
    if type(axis) is tuple and len(axis) == 1:
        (axis,) = axis
    return (
        type(axis) is int
        and x.ndim > 0
        and -x.ndim <= axis < x.ndim
        and axis % x.ndim == x.ndim - 1
        and len(x.chunks[-1]) == 1
    )


def _map(x: Any, f: Any) -> Any:
    import numpy as np

    return x.map_blocks(f, dtype=x.dtype, meta=np.empty((0,) * x.ndim, x.dtype))


def _elementwise(name: str, x: Any, **kw: Any) -> Any:
    if not _numpy_chunks(x) or any(n == 0 for n in x.shape):
        return NotImplemented
    import xact

    f = getattr(xact, name)
    return _map(x, lambda b: f(b, **kw))


def sigmoid(x: Any) -> Any:
    return _elementwise("sigmoid", x)


def log_sigmoid(x: Any) -> Any:
    return _elementwise("log_sigmoid", x)


def softplus(x: Any, *, beta: Any) -> Any:
    if type(beta) not in (int, float) or beta != 1:
        return NotImplemented
    return _elementwise("softplus", x)


def _normalise(name: str, x: Any, axis: Any, where: Any, temperature: Any) -> Any:
    if where is not None or type(temperature) not in (int, float) or temperature != 1:
        return NotImplemented
    if not _numpy_chunks(x) or not _last_axis(x, axis) or any(n == 0 for n in x.shape):
        return NotImplemented
    import xact

    f = getattr(xact, name)
    return _map(x, lambda b: f(b, axis=-1))


def softmax(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    return _normalise("softmax", x, axis, where, temperature)


def log_softmax(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    return _normalise("log_softmax", x, axis, where, temperature)


def logsumexp(x: Any, *, axis: Any, keepdims: bool, b: Any, return_sign: bool, where: Any) -> Any:
    if b is not None or where is not None or return_sign:
        return NotImplemented
    if not _numpy_chunks(x) or not _last_axis(x, axis) or any(n == 0 for n in x.shape):
        return NotImplemented
    import numpy as np

    import xact

    meta = np.empty((0,) * (x.ndim if keepdims else x.ndim - 1), x.dtype)
    if keepdims:
        chunks = (*x.chunks[:-1], (1,))
        return x.map_blocks(
            lambda blk: xact.logsumexp(blk, axis=-1, keepdims=True),
            dtype=x.dtype,
            chunks=chunks,
            meta=meta,
        )
    return x.map_blocks(
        lambda blk: xact.logsumexp(blk, axis=-1), dtype=x.dtype, drop_axis=x.ndim - 1, meta=meta
    )
