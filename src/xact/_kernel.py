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

from ._namespace import Array, get_device, max_with_nan

__all__ = ["CUTOFF", "Shifted", "const", "shifted"]


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
    """``m`` where finite or NaN, 0 where infinite: the shift added back."""
    is_max: Array
    """Entries equal to ``m`` (all entries of a massless slice)."""
    alive: Array
    """Entries of a finite slice within CUTOFF of its maximum: the only ones
    whose exponential is computed (the maximum entries included)."""
    d: Array
    """``fl(x - m)`` for the alive entries (exactly 0 at the maximum, but
    with the derivative of ``x - m``), -inf elsewhere."""
    e: Array
    """The rounding error of ``d``: ``x - m == d + e`` exactly."""
    t: Array
    """``exp(d) * (1 + e)``: the shifted exponential (1 at the maximum)."""
    n_max: Array
    """``k``: the number of maximum entries, as floats."""
    rest: Array
    """``r``: the sum of ``t`` over the entries below the maximum."""

    def log_total(self, xp: ModuleType) -> Array:
        """``log(k + r) = log1p((k - 1) + r)``, without adding the 1 in."""
        return xp.log1p((self.n_max - 1) + self.rest)


def const(xp: ModuleType, value: float, like: Array) -> Array:
    """A 0-d array of ``like``'s dtype and device."""
    return xp.asarray(value, dtype=like.dtype, device=get_device(like))


def shifted(xp: ModuleType, x: Array, axes: tuple[int, ...]) -> Shifted:
    """Compute the shared kernel for ``x`` (already masked with -inf)."""
    zero = const(xp, 0.0, x)
    m = max_with_nan(xp, x, axes)
    # NaN stays NaN here and spreads quietly through the slice's arithmetic;
    # +inf and -inf slices are shifted by 0 and fixed by the callers.
    m_fin = xp.where(xp.isinf(m), zero, m)
    is_max = x == m
    # Entries more than CUTOFF below the maximum have exp(x - m) == 0 in any
    # dtype; leaving them out keeps x - m from overflowing (1e308 - -1e308)
    # and excludes -inf. If m - CUTOFF rounds, the entries it misjudges are
    # below m by about CUTOFF anyway. Slices with an infinite or NaN maximum
    # have no alive entry.
    alive = (x >= m_fin - CUTOFF) & xp.isfinite(m)
    # TwoSum(a, -m_fin) on finite operands: x - m_fin == s + e exactly.
    a = xp.where(alive, x, m_fin)
    s = a - m_fin
    bb = s - a
    e = (a - (s - bb)) - (m_fin + bb)
    d = xp.where(alive, s, const(xp, float("-inf"), x))
    t = xp.exp(d) * (1 + e)
    n_max = xp.sum(xp.astype(is_max, x.dtype), axis=axes, keepdims=True)
    rest = xp.sum(xp.where(is_max, zero, t), axis=axes, keepdims=True)
    return Shifted(
        m=m, m_fin=m_fin, is_max=is_max, alive=alive, d=d, e=e, t=t, n_max=n_max, rest=rest
    )
