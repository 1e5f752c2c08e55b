"""Log-space reductions and scans: logcumsumexp, logmeanexp.

``logmeanexp`` uses the kernel of :mod:`xact._kernel` directly: with the
slice maximum ``m`` attained ``k`` times, the rest ``r`` and ``n`` entries,

.. math::

    \\log \\frac{1}{n} \\sum_j e^{x_j} = m + \\log w, \\qquad w = \\frac{k + r}{n},

and ``log w`` is ``log1p(q)`` with ``q = sum_j expm1(x_j - m) / n`` for
``w >= 1/2`` (the terms of ``q`` all have one sign, so a mean of nearly
equal values does not cancel as ``logsumexp - log(n)`` or ``(k + r) - n``
would) and ``log(w)`` below.

``logcumsumexp`` is an inclusive scan over states ``(M, k, r)`` that stand
for the mass :math:`e^{M}(k + r)`: ``M`` the running maximum, ``k`` the
(exact) count of entries equal to it, ``r`` the others' mass relative to
:math:`e^{M}`, as in the kernel. Two states combine as

.. math::

    (M_a, k_a, r_a) \\oplus (M_b, k_b, r_b) = \\big(M, \\textstyle\\sum_{M_i = M} k_i,\\
    \\sum_{M_i = M} r_i + \\sum_{M_i < M} (k_i + r_i) e^{M_i - M}\\big),
    \\quad M = \\max(M_a, M_b),

with each :math:`M_i - M` computed error-free (TwoSum) and its rounding
error folded into the exponential. The scan is Hillis--Steele doubling:
``ceil(log2 n)`` steps of slicing, ``concat`` and ``where``, which runs
under ``jax.jit`` and builds a lazy Dask graph, also chunked along the axis.
The result is ``M + log1p((k - 1) + r)``. Only the relative mass ``r``
accumulates rounding (a few units per step, mostly cancelling); ``M`` is an
input value and ``k`` an integer, so nothing is lost when the values span
thousands, and a scan in the log domain (``logaddexp`` at every step),
which rounds the running result itself ``log2 n`` times, is avoided.

Non-finite entries are kept out of the scan (replaced by -inf, "no mass")
and applied afterwards from running counts: from the first +inf on the
result is +inf, from the first NaN on it is NaN (NaN wins).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from types import ModuleType

from ._kernel import CUTOFF, const, shifted
from ._logsumexp import _masked, _squeeze
from ._namespace import (
    Array,
    AxisLike,
    as_arrays,
    compute_dtype,
    get_device,
    has_zero_size,
    is_dask_namespace,
    is_jax_namespace,
    normalize_axis,
    reduced_shape,
    to_compute,
)

__all__ = ["logcumsumexp", "logmeanexp"]


# --------------------------------------------------------------------------
# logcumsumexp


def _combine(
    xp: ModuleType, a: tuple[Array, Array, Array], b: tuple[Array, Array, Array]
) -> tuple[Array, Array, Array]:
    """``a (+) b`` for states with ``M`` finite or -inf (no mass)."""
    ma, ka, ra = a
    mb, kb, rb = b
    m = xp.maximum(ma, mb)
    fin = xp.isfinite(m)
    zero = const(xp, 0.0, m)
    m_s = xp.where(fin, m, zero)
    k = zero
    r = zero
    for mi, ki, ri in ((ma, ka, ra), (mb, kb, rb)):
        # Alive: a finite state within CUTOFF of the maximum (itself included).
        live = (mi >= m_s - CUTOFF) & fin
        ai = xp.where(live, mi, m_s)
        # TwoSum: ai - m_s == s + e exactly; s == 0 (with the derivative of
        # mi - m) for the state holding the maximum, so the mass formula
        # e^m (k + r) is differentiated as the true sum of exponentials.
        s = ai - m_s
        bb = s - ai
        e = (ai - (s - bb)) - (m_s + bb)
        f = xp.exp(s) * (1 + e)
        top = live & (mi == m)
        k = k + xp.where(top, ki * f, zero)
        r = r + xp.where(top, ri * f, xp.where(live, (ki + ri) * f, zero))
    return m, k, r


def _shift(xp: ModuleType, a: Array, d: int, axis: int, fill: float) -> Array:
    """``a`` moved by ``d`` places along ``axis``, the first ``d`` set to ``fill``."""
    n = a.shape[axis]
    pad_shape = tuple(d if i == axis else s for i, s in enumerate(a.shape))
    pad = xp.full(pad_shape, fill, dtype=a.dtype, device=get_device(a))
    index = tuple(slice(0, n - d) if i == axis else slice(None) for i in range(a.ndim))
    out = xp.concat((pad, a[index]), axis=axis)
    if is_dask_namespace(xp):
        # Dask keeps the chunk boundaries of both pieces, and the next step
        # would split them again (1000 chunks for n = 1000 after 10 steps):
        # keep the input's chunks instead.
        out = out.rechunk(a.chunks)
    return out


def _seen(xp: ModuleType, flag: Array, axis: int) -> Array:
    """Inclusive running "any" of a boolean array (doubling with ``|``)."""
    n = flag.shape[axis]
    d = 1
    while d < n:
        flag = flag | _shift(xp, flag, d, axis, False)
        d *= 2
    return flag


def _scan(xp: ModuleType, x: Array, axis: int) -> Array:
    n = x.shape[axis]
    finite = xp.isfinite(x)
    neg_inf = const(xp, -math.inf, x)
    zero, one = const(xp, 0.0, x), const(xp, 1.0, x)
    state = (xp.where(finite, x, neg_inf), xp.where(finite, one, zero), xp.zeros_like(x))
    d = 1
    while d < n:
        prev = (
            _shift(xp, state[0], d, axis, -math.inf),
            _shift(xp, state[1], d, axis, 0.0),
            _shift(xp, state[2], d, axis, 0.0),
        )
        state = _combine(xp, prev, state)
        d *= 2
    m, k, r = state
    has_mass = xp.isfinite(m)
    total = xp.where(has_mass, (k - 1) + r, zero)
    out = xp.where(has_mass, xp.where(has_mass, m, zero) + xp.log1p(total), neg_inf)
    pos_inf = _seen(xp, x == const(xp, math.inf, x), axis)
    nan = _seen(xp, xp.isnan(x), axis)
    out = xp.where(pos_inf, const(xp, math.inf, x), out)
    return xp.where(nan, const(xp, math.nan, x), out)


@functools.cache
def _jax_scan(xp: ModuleType) -> Callable[[Array, int], Array]:
    """The scan compiled once per shape under JAX: eagerly it would
    dispatch its few hundred small operations one by one. Inside an outer
    ``jax.jit`` or ``jax.grad`` the inner ``jit`` is simply inlined."""
    import jax  # the JAX branch only

    # (typed here: without JAX installed mypy sees jax.jit as Any)
    compiled: Callable[[Array, int], Array] = jax.jit(
        functools.partial(_scan, xp), static_argnums=1
    )
    return compiled


def _validate_axis(axis: object, ndim: int, func: str) -> int:
    if isinstance(axis, bool) or axis is None:
        msg = f"{func}: `axis` must be an int, not {axis!r}"
        raise TypeError(msg)
    try:
        operator.index(axis)  # type: ignore[arg-type]
    except TypeError:
        msg = f"{func}: `axis` must be an int, not {axis!r}"
        raise TypeError(msg) from None
    if ndim == 0:
        msg = f"{func}: `x` must have at least one dimension to scan along"
        raise ValueError(msg)
    return normalize_axis(axis, ndim, func)[0]


def logcumsumexp(
    x: Array, /, *, axis: int = -1, reverse: bool = False, xp: ModuleType | None = None
) -> Array:
    r"""Cumulative log-sum-exp along an axis, accurate over any range of values.

    .. math::

        y_i = \log \sum_{j \le i} e^{x_j}
            = M_i + \operatorname{log1p}\Big((k_i - 1) + \sum_{j \le i,\ x_j < M_i} e^{x_j - M_i}\Big)

    with :math:`M_i = \max_{j \le i} x_j` attained :math:`k_i` times, so each
    prefix is shifted by its own maximum: ``logcumsumexp([-1000, 0])`` is
    ``[-1000, 0]``, where one global shift would underflow the first entry.

    Parameters
    ----------
    x : array
        Input with at least one dimension (real). Python numbers and lists
        are converted with NumPy; integer and bool input computes in the
        default floating dtype; float16 and bfloat16 compute in float32 and
        are returned in their own dtype.
    axis : int, optional
        Axis to scan along (default the last).
    reverse : bool, optional
        Scan from the end: :math:`y_i = \log \sum_{j \ge i} e^{x_j}`.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``x``.

    Notes
    -----
    The rules of :func:`logsumexp`, prefix by prefix:

    * -inf entries carry no mass; a prefix of -inf entries only is -inf,
      with gradient 0 (never NaN).
    * From the first +inf on the result is +inf.
    * From the first NaN on the result is NaN.

    No warning is raised for any of these. The scan takes
    :math:`\lceil \log_2 n \rceil` vectorised steps (Hillis--Steele), about
    :math:`O(n \log n)` work; it works under ``jax.jit`` and lazily on Dask.
    The native ``torch.logcumsumexp`` and ``jax.lax.cumlogsumexp`` are not
    used: both give NaN gradients on a prefix of -inf entries, and in
    float64 they miss the 4 ULP bound by far on long inputs (620 and 86 ULP
    on the sets of ``tests/accuracy_toolkit.py``; torch's float32 CPU
    kernel is within 0.5 ULP).

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.logcumsumexp(np.asarray([-1000.0, 0.0, 0.0]))
    array([-1.00000000e+03,  0.00000000e+00,  6.93147181e-01])
    >>> xact.logcumsumexp(np.asarray([0.0, -np.inf, np.inf, 1.0]), reverse=True)
    array([inf, inf, inf,  1.])
    """
    func = "logcumsumexp"
    if not isinstance(reverse, bool):
        msg = f"{func}: `reverse` must be a bool, not {type(reverse).__name__}"
        raise TypeError(msg)
    xp, (x,) = as_arrays(func, [("x", x)], xp)
    ct, rt = compute_dtype(xp, x, func)
    ax = _validate_axis(axis, x.ndim, func)
    n = x.shape[ax]
    if n is None or (isinstance(n, float) and math.isnan(n)):
        msg = (
            f"{func}: the length of `x` along `axis` must be known to plan the "
            "scan (for Dask, call `x.compute_chunk_sizes()` first)"
        )
        raise ValueError(msg)
    xc = to_compute(xp, x, ct)
    if has_zero_size(xc):
        return to_compute(xp, xc, rt)
    if reverse:
        xc = xp.flip(xc, axis=ax)
    out = _jax_scan(xp)(xc, ax) if is_jax_namespace(xp) else _scan(xp, xc, ax)
    if reverse:
        out = xp.flip(out, axis=ax)
    return to_compute(xp, out, rt)


# --------------------------------------------------------------------------
# logmeanexp


def logmeanexp(
    x: Array,
    /,
    *,
    axis: AxisLike = None,
    keepdims: bool = False,
    where: Array | None = None,
    xp: ModuleType | None = None,
) -> Array:
    r"""Logarithm of the mean of exponentials, without cancellation.

    .. math::

        \operatorname{logmeanexp}(x) = \log \frac{1}{n} \sum_j e^{x_j}
        = m + \log \frac{k + r}{n}

    with :math:`m = \max_j x_j` attained :math:`k` times,
    :math:`r = \sum_{x_j < m} e^{x_j - m}` and :math:`n` the number of
    (unmasked) entries. :math:`\log((k + r)/n)` is taken as
    :math:`\operatorname{log1p}\big(\sum_j \operatorname{expm1}(x_j - m) / n\big)`
    when the ratio is at least 1/2,
    so that the mean of nearly equal values is exact to the last bit
    (``logsumexp(x) - log(n)`` would round twice through a larger number).

    Parameters
    ----------
    x : array
        Input array (real); conversions as for :func:`logsumexp`.
    axis : int, tuple of ints or None, optional
        Axes to reduce over; ``None`` (the default) reduces over all axes.
    keepdims : bool, optional
        Keep the reduced axes with length one.
    where : bool array, optional
        Mask broadcastable to ``x``; only True entries are averaged, and
        :math:`n` counts them.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        ``log(mean(exp(x)))`` along ``axis``, in the (floating) dtype and on
        the device of ``x``.

    Notes
    -----
    * -inf entries count in :math:`n` with zero mass: a slice of -inf
      entries only gives -inf.
    * A slice with no (unmasked) entry at all, the mean of nothing, gives
      NaN, as :func:`jax.nn.logmeanexp` and ``mean`` of an empty array do
      (without a warning); its gradient is 0.
    * A +inf entry gives +inf and a NaN entry NaN, as in :func:`logsumexp`.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.logmeanexp(np.asarray([1.0, 2.0, 3.0]))
    array(2.30899368)
    >>> xact.logmeanexp(np.asarray([[0.0, -np.inf], [5.0, 7.0]]), axis=1,
    ...                 where=np.asarray([[False, False], [True, False]]))
    array([nan,  5.])
    """
    func = "logmeanexp"
    xp, (x, where) = as_arrays(func, [("x", x), ("where", where)], xp)
    ct, rt = compute_dtype(xp, x, func)
    axes = normalize_axis(axis, x.ndim, func)
    xc = to_compute(xp, x, ct)
    xc, mask = _masked(xp, xc, where, func)
    if has_zero_size(xc):
        shape = reduced_shape(tuple(xc.shape), axes, keepdims)
        return xp.full(shape, math.nan, dtype=rt, device=get_device(x))
    if mask is None:
        n = const(xp, float(math.prod(xc.shape[i] for i in axes)), xc)
    else:
        n = xp.sum(xp.astype(mask, xc.dtype), axis=axes, keepdims=True)
    k = shifted(xp, xc, axes)
    zero, one = const(xp, 0.0, xc), const(xp, 1.0, xc)
    finite = xp.isfinite(k.m) & (n > 0)
    n_s = xp.where(finite, n, one)
    # w - 1 = sum_j (e^{x_j - m} - 1) / n: terms of one sign, each computed
    # as expm1 of the TwoSum pair d + e, so nothing cancels when w ~ 1.
    em1 = xp.where(k.alive, xp.expm1(k.d) + k.e * k.t, -one)
    if mask is not None:
        em1 = xp.where(mask, em1, zero)
    q = xp.sum(em1, axis=axes, keepdims=True) / n_s
    near = q >= -0.5
    w = xp.where(finite & ~near, (k.n_max + k.rest) / n_s, one)
    log_w = xp.where(near, xp.log1p(xp.where(near, q, zero)), xp.log(w))
    out = k.m_fin + log_w
    special = xp.where(n > 0, k.m, const(xp, math.nan, xc))  # +-inf, NaN or no entry
    out = xp.where(finite, out, special)
    return to_compute(xp, _squeeze(xp, out, axes, keepdims), rt)
