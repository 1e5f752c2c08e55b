"""Reductions and checks shared by the losses.

* ``reduction`` is validated against the names a loss accepts.
* ``"mean"`` never divides by zero: an empty batch, or one whose samples
  are all ignored, has mean 0 with gradient 0 (``safe_mean`` keeps the
  division's operands finite inside ``where``).
* Out-of-range class indices can be checked for free only where values live
  on the host and are computed eagerly (NumPy, array-api-strict); elsewhere
  the losses mark them NaN instead of forcing a sync or a Dask compute.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from ._kernel import const
from ._namespace import Array, is_numpy_namespace

__all__ = [
    "REDUCTIONS",
    "count_mean",
    "is_eager_host",
    "safe_mean",
    "static_size",
    "validate_reduction",
]

REDUCTIONS = ("none", "sum", "mean")


def validate_reduction(reduction: object, func: str, allowed: tuple[str, ...] = REDUCTIONS) -> str:
    if not isinstance(reduction, str) or reduction not in allowed:
        choices = ", ".join(repr(r) for r in allowed)
        msg = f"{func}: `reduction` must be one of {choices}, not {reduction!r}"
        raise ValueError(msg)
    return reduction


def static_size(shape: tuple[Any, ...]) -> int | None:
    """The number of elements, or None if a dimension is unknown (Dask)."""
    size = 1
    for n in shape:
        if n is None or (isinstance(n, float) and math.isnan(n)):
            return None
        size *= int(n)
    return size


def safe_mean(xp: ModuleType, total: Array, den: Array) -> Array:
    """``total / den``, and 0 (with gradient 0) where ``den == 0``."""
    zero = const(xp, 0.0, total)
    empty = den == zero
    return xp.where(empty, zero, total / xp.where(empty, const(xp, 1.0, total), den))


def count_mean(xp: ModuleType, loss: Array) -> Array:
    """Mean over all elements of ``loss``; 0 for an empty array."""
    size = static_size(tuple(loss.shape))
    total = xp.sum(loss)
    if size is None:  # unknown Dask chunks: count lazily
        return safe_mean(xp, total, xp.sum(xp.ones_like(loss)))
    return total / const(xp, float(max(size, 1)), total)


def is_eager_host(xp: ModuleType) -> bool:
    """Namespaces whose values can be inspected without a sync or a compute."""
    return bool(is_numpy_namespace(xp) or xp.__name__ == "array_api_strict")
