"""The one shifted-exponential kernel that the log-sum-exp family shares.

For a slice ``x`` along the reduced axes, with ``m = max(x)``, we write

.. math::

    \\sum_j e^{x_j} = e^{m} \\Big(k + \\sum_{x_j < m} e^{x_j - m}\\Big)
                   = e^{m} \\, (1 + s), \\qquad s = (k - 1) + r,

where ``k`` is the number of entries equal to the maximum and ``r`` the sum
of the others' shifted exponentials. ``log(1 + s)`` is then taken with
``log1p``, so that one dominant entry does not lose the small rest
(Blanchard, Higham & Higham 2021, doi:10.1093/imanum/draa038). The maximum
terms are never added in and subtracted again: they are counted.

Two refinements make the result accurate to a few ULP:

* Each difference ``x_j - m`` is computed error-free (TwoSum): ``d_j + e_j``
  with ``d_j = fl(x_j - m)``, and the rounding error ``e_j`` is folded into the
  exponential, ``exp(x_j - m) ~ exp(d_j) * (1 + e_j)``. Without it each term
  carries a relative error of about ``|x_j - m| / 2`` ULP (13 ULP for
  ``log_softmax([1e-3, -40, -40])[0]`` in float64).
* Non-finite values never enter the arithmetic. The shift is chosen per slice
  so that masked and ``-inf`` entries give ``exp(-inf) = 0``, that in a slice
  with ``+inf`` entries only those count (``k`` of them), that a slice with a
  NaN propagates it through ``m``, and that every other operand is finite.
  No ``inf - inf`` is ever formed, so NumPy raises no warning and autograd
  sees no NaN.

The callers then fix the special slices from ``m`` alone, on reduced arrays.
Everything here uses the array API standard only, without a data-dependent
Python branch, so it runs under ``jax.jit`` and builds lazy Dask graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ._namespace import Array, get_device


CUTOFF = 1000.0
"""exp(-CUTOFF) underflows to 0 in float64 and every narrower dtype."""


@dataclass(frozen=True)
class Shifted:
    """Per-element and per-slice pieces of the shifted exponentials.

    All per-slice arrays keep the reduced axes (``keepdims=True``).
    """

    m: Array
    """The slice maximum: NaN if the slice has a NaN, -inf if it has no mass."""
    m_fin: Array
    """``m`` where finite, else 0: the shift that is added back."""
    is_max: Array
    """Entries equal to the maximum (all entries of a massless slice)."""
    d: Array
    """``fl(x - m)`` for entries below the maximum, -inf elsewhere."""
    e: Array
    """The rounding error of ``d`` (0 where ``d`` is not finite)."""
    t: Array
    """``exp(d) * (1 + e)``: the shifted exponential, 0 at the maximum."""


def const(xp: ModuleType, value: float, like: Array) -> Array:
    """A 0-d array of ``like``'s dtype and device."""
    return xp.asarray(value, dtype=like.dtype, device=get_device(like))


def shifted(xp: ModuleType, x: Array, axes: tuple[int, ...]) -> Shifted:
    """Compute the shared kernel for ``x`` (already masked with -inf)."""
    zero = const(xp, 0.0, x)
    inf = const(xp, float("inf"), x)
    m = xp.max(x, axis=axes, keepdims=True)
    m_fin = xp.where(xp.isfinite(m), m, zero)
    # The shift subtracted from the non-maximum entries: m itself where finite
    # or +inf (then every other entry becomes -inf), NaN for a NaN slice
    # (quiet NaN arithmetic raises nothing) and 0 for a massless slice (its
    # entries are all -inf already).
    m_shift = xp.where(m == -inf, zero, m)
    is_max = x == m
    # Entries more than CUTOFF below the maximum have exp(x - m) == 0 in any
    # dtype; making them -inf keeps x - m from overflowing (1e308 - -1e308).
    # The test is exact enough: if m - CUTOFF rounds, it rounds within one
    # ulp of m, and entries that close to m are below it by > CUTOFF anyway
    # only when ulp(m) > CUTOFF.
    dead = is_max | (x < m_shift - CUTOFF)
    d = xp.where(dead, -inf, x) - m_shift
    # TwoSum(a, -m_fin) on finite operands only: a = x where d is finite.
    a = xp.where(d > -inf, x, m_fin)
    s = a - m_fin
    bb = s - a
    e = (a - (s - bb)) - (m_fin + bb)
    t = xp.exp(d) * (1 + e)
    return Shifted(m=m, m_fin=m_fin, is_max=is_max, d=d, e=e, t=t)


def count(xp: ModuleType, mask: Array, axes: tuple[int, ...], dtype: object) -> Array:
    """Number of True entries of ``mask`` along ``axes`` as floats (keepdims)."""
    return xp.sum(xp.astype(mask, dtype), axis=axes, keepdims=True)
