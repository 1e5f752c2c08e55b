"""The log-sum-exp family: logsumexp, softmax, log_softmax, softmin.

All four are built on the kernel of :mod:`xact._kernel`; see its docstring
for the algorithm. The edge-case rules, the same on every backend:

* An entry equal to -inf behaves exactly like a masked (``where=False``)
  entry. A slice with no unmasked entry above -inf (or an empty axis) has no
  mass: logsumexp -inf, softmax 0, log_softmax -inf, gradients 0.
* +inf entries take all the mass, split evenly between them.
* A NaN anywhere in a (unmasked) slice makes that whole slice NaN.
"""

from __future__ import annotations

from types import ModuleType
from typing import Literal, overload

from ._complex import logsumexp_complex
from ._fastpaths import fastpath
from ._kernel import const, shifted
from ._namespace import (
    Array,
    AxisLike,
    as_arrays,
    broadcast_to_x,
    compute_dtype,
    get_device,
    has_zero_size,
    normalize_axis,
    reduced_shape,
    to_compute,
    validate_bool_mask,
    validate_positive,
)
from ._weighted import logsumexp_weighted

__all__ = ["log_softmax", "logsumexp", "softmax", "softmin"]


def _squeeze(xp: ModuleType, a: Array, axes: tuple[int, ...], keepdims: bool) -> Array:
    if keepdims or not axes:
        return a
    return xp.squeeze(a, axis=axes)


def _masked(xp: ModuleType, x: Array, where: Array | None, func: str) -> tuple[Array, Array | None]:
    """Apply a ``where`` mask (broadcast to ``x``) by setting entries to -inf."""
    if where is None:
        return x, None
    validate_bool_mask(xp, where, func)
    _, where = broadcast_to_x(xp, x, where, "where", func)
    return xp.where(where, x, const(xp, float("-inf"), x)), where


@overload
def logsumexp(
    x: Array,
    /,
    *,
    axis: AxisLike = None,
    keepdims: bool = False,
    b: Array | float | None = None,
    return_sign: Literal[False] = False,
    where: Array | None = None,
    xp: ModuleType | None = None,
) -> Array: ...


@overload
def logsumexp(
    x: Array,
    /,
    *,
    axis: AxisLike = None,
    keepdims: bool = False,
    b: Array | float | None = None,
    return_sign: Literal[True],
    where: Array | None = None,
    xp: ModuleType | None = None,
) -> tuple[Array, Array]: ...


def logsumexp(
    x: Array,
    /,
    *,
    axis: AxisLike = None,
    keepdims: bool = False,
    b: Array | float | None = None,
    return_sign: bool = False,
    where: Array | None = None,
    xp: ModuleType | None = None,
) -> Array | tuple[Array, Array]:
    r"""Logarithm of the sum of exponentials, computed stably.

    .. math::

        \operatorname{logsumexp}(x) = \log \sum_j b_j \, e^{x_j}
        = m + \operatorname{log1p}\Big((k - 1) + \sum_{x_j < m} e^{x_j - m}\Big)

    with :math:`m = \max_j x_j` attained :math:`k` times (shown for
    :math:`b = 1`). The maximum term is kept out of the sum, so a dominant
    entry does not swamp the others, and each :math:`x_j - m` is computed
    without rounding error.

    Parameters
    ----------
    x : array
        Input array, real or complex. Python numbers and lists are
        converted with NumPy. Integer and bool input computes in the
        default floating dtype; float16 and bfloat16 compute in float32.
    axis : int, tuple of ints or None, optional
        Axes to reduce over; ``None`` (the default) reduces over all axes.
    keepdims : bool, optional
        Keep the reduced axes with length one.
    b : array or float, optional
        Weights :math:`b_j`, broadcast together with ``x``; they may be
        negative. An entry with ``b_j == 0`` takes no part even if
        :math:`x_j` is infinite or NaN.
    return_sign : bool, optional
        If True, return ``(log|s|, sign(s))`` of the weighted sum ``s``
        instead of NaN where it is negative.
    where : bool array, optional
        Mask broadcastable to ``x``; False entries take no part.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    lse : array
        ``log(sum(b * exp(x)))`` along ``axis``, in the dtype of ``x``
        promoted with ``b``, on the device of ``x``.
    sign : array
        Only with ``return_sign=True``: the sign of the sum (+1, -1, or 0
        for an exactly zero or empty sum); for complex input, the sum's
        phase as a unit complex number.

    Notes
    -----
    * A slice that has no entry above -inf after masking (all -inf, all
      masked, all weights zero, or an empty axis) gives -inf (sign 0).
    * A +inf entry makes the result +inf (with weights of opposite signs at
      +inf entries: NaN, as :math:`\infty - \infty`).
    * A NaN entry with a non-zero weight makes the slice NaN.
    * A negative weighted sum gives NaN unless ``return_sign=True``.
    * Complex input follows :func:`scipy.special.logsumexp`: the imaginary
      part is the phase of the sum in :math:`(-\pi, \pi]`.

    No warning is raised for any of these cases.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.logsumexp(np.asarray([0.0, -30.0, -40.0]))
    array(9.3580478e-14)
    >>> xact.logsumexp(np.asarray([[1.0, 2.0], [3.0, -np.inf]]), axis=1)
    array([2.31326169, 3.        ])
    >>> xact.logsumexp(np.asarray([1.0, 2.0]), b=np.asarray([1.0, -1.0]), return_sign=True)
    (array(1.54132485), array(-1.))
    """
    fast = fastpath("logsumexp", x, xp)
    if (
        fast
        and (r := fast(x, axis=axis, keepdims=keepdims, b=b, return_sign=return_sign, where=where))
        is not NotImplemented
    ):
        return r
    func = "logsumexp"
    xp, (x, b, where) = as_arrays(func, [("x", x), ("b", b), ("where", where)], xp)
    if b is not None:
        return logsumexp_weighted(
            xp, x, b, axis=axis, keepdims=keepdims, return_sign=return_sign, where=where
        )
    ct, rt = compute_dtype(xp, x, func, allow_complex=True)
    if xp.isdtype(ct, "complex floating"):
        return logsumexp_complex(
            xp, x, None, axis=axis, keepdims=keepdims, return_sign=return_sign, where=where
        )
    axes = normalize_axis(axis, x.ndim, func)
    xc = to_compute(xp, x, ct)
    xc, _ = _masked(xp, xc, where, func)
    if has_zero_size(xc):
        shape = reduced_shape(tuple(xc.shape), axes, keepdims)
        lse = xp.full(shape, float("-inf"), dtype=rt, device=get_device(x))
        if return_sign:
            return lse, xp.zeros(shape, dtype=rt, device=get_device(x))
        return lse
    k = shifted(xp, xc, axes)
    inf = const(xp, float("inf"), xc)
    lse = xp.where(k.m == inf, inf, xp.where(k.m == -inf, -inf, k.m_fin + k.log_total(xp)))
    lse = to_compute(xp, _squeeze(xp, lse, axes, keepdims), rt)
    if return_sign:
        one, zero = const(xp, 1.0, lse), const(xp, 0.0, lse)
        sign = xp.where(lse == -inf, zero, xp.where(xp.isnan(lse), lse, one))
        return lse, sign
    return lse


def _prepare(
    func: str,
    x: Array,
    axis: AxisLike,
    where: Array | None,
    temperature: float,
    xp: ModuleType | None,
    *,
    negate: bool = False,
) -> tuple[ModuleType, Array, tuple[int, ...], object]:
    xp, (x, where) = as_arrays(func, [("x", x), ("where", where)], xp)
    ct, rt = compute_dtype(xp, x, func)
    temperature = validate_positive(temperature, "temperature", func)
    axes = normalize_axis(axis, x.ndim, func)
    xc = to_compute(xp, x, ct)
    if negate:
        xc = -xc
    if temperature != 1.0:
        xc = xc / temperature
    xc, _ = _masked(xp, xc, where, func)
    return xp, xc, axes, rt


def _softmax(xp: ModuleType, xc: Array, axes: tuple[int, ...]) -> Array:
    if has_zero_size(xc):
        return xp.zeros(xc.shape, dtype=xc.dtype, device=get_device(xc))
    k = shifted(xp, xc, axes)
    zero = const(xp, 0.0, xc)
    # Outside finite slices: +inf entries share the mass, a massless slice
    # has none (NaN slices get NaN from the total).
    top = xp.where(k.m == const(xp, float("inf"), xc), const(xp, 1.0, xc), zero)
    num = xp.where(k.alive, k.t, xp.where(k.is_max, top, zero))
    return num / (k.n_max + k.rest)


def softmax(
    x: Array,
    /,
    *,
    axis: AxisLike = -1,
    where: Array | None = None,
    temperature: float = 1.0,
    xp: ModuleType | None = None,
) -> Array:
    r"""Softmax: exponentials normalised to sum to one along ``axis``.

    .. math::

        \operatorname{softmax}(x)_i = \frac{e^{x_i / T}}{\sum_j e^{x_j / T}}
        = \frac{e^{x_i/T - m}}{k + \sum_{x_j/T < m} e^{x_j/T - m}}

    with :math:`m = \max_j x_j / T` attained :math:`k` times.

    Parameters
    ----------
    x : array
        Input logits (real). Python numbers and lists are converted with
        NumPy; integer and bool input computes in the default floating
        dtype; float16 and bfloat16 compute in float32 and are returned in
        their own dtype.
    axis : int, tuple of ints or None, optional
        Axes to normalise over (default the last); ``None`` means all.
    where : bool array, optional
        Mask broadcastable to ``x``; False entries get probability 0 and
        take no part in the normalisation.
    temperature : float, optional
        Positive temperature :math:`T` that divides the logits.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``x``.

    Notes
    -----
    * -inf entries and masked entries get 0. A slice without any other
      entry (all -inf, fully masked) is all 0, with gradient 0, not NaN.
    * If a slice has +inf entries they share the mass equally:
      ``softmax([inf, inf, 0]) = [0.5, 0.5, 0]``.
    * A NaN in a slice makes the whole slice NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.softmax(np.asarray([2.0, 1.0, 0.1]))
    array([0.65900114, 0.24243297, 0.09856589])
    >>> xact.softmax(np.asarray([np.inf, np.inf, 0.0]))
    array([0.5, 0.5, 0. ])
    """
    fast = fastpath("softmax", x, xp)
    if (
        fast
        and (r := fast(x, axis=axis, where=where, temperature=temperature)) is not NotImplemented
    ):
        return r
    xp, xc, axes, rt = _prepare("softmax", x, axis, where, temperature, xp)
    return to_compute(xp, _softmax(xp, xc, axes), rt)


def softmin(
    x: Array,
    /,
    *,
    axis: AxisLike = -1,
    where: Array | None = None,
    temperature: float = 1.0,
    xp: ModuleType | None = None,
) -> Array:
    r"""Softmin: the softmax of the negated input.

    .. math::

        \operatorname{softmin}(x)_i = \frac{e^{-x_i / T}}{\sum_j e^{-x_j / T}}

    Parameters
    ----------
    x : array
        Input array (real); conversions as for :func:`softmax`.
    axis : int, tuple of ints or None, optional
        Axes to normalise over (default the last); ``None`` means all.
    where : bool array, optional
        Mask broadcastable to ``x``; False entries get 0.
    temperature : float, optional
        Positive temperature :math:`T`.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``x``.

    Notes
    -----
    The rules of :func:`softmax` with the signs of the infinities swapped:
    -inf entries share all the mass, +inf entries get 0.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.softmin(np.asarray([-2.0, -1.0, -0.1]))
    array([0.65900114, 0.24243297, 0.09856589])
    """
    fast = fastpath("softmin", x, xp)
    if (
        fast
        and (r := fast(x, axis=axis, where=where, temperature=temperature)) is not NotImplemented
    ):
        return r
    xp, xc, axes, rt = _prepare("softmin", x, axis, where, temperature, xp, negate=True)
    return to_compute(xp, _softmax(xp, xc, axes), rt)


def log_softmax(
    x: Array,
    /,
    *,
    axis: AxisLike = -1,
    where: Array | None = None,
    temperature: float = 1.0,
    xp: ModuleType | None = None,
) -> Array:
    r"""Logarithm of the softmax, accurate also for the dominant entry.

    .. math::

        \operatorname{log\_softmax}(x)_i = \frac{x_i}{T} - \operatorname{logsumexp}(x / T)
        = (x_i / T - m) - \operatorname{log1p}\Big((k - 1) + \sum_{x_j/T < m} e^{x_j/T - m}\Big)

    The dominant entry gets ``-log1p(rest)`` rather than the difference of
    two nearly equal numbers, so it is not rounded to 0
    (``log_softmax([0, -40])[0]`` is ``-4.25e-18``, not ``0``).

    Parameters
    ----------
    x : array
        Input logits (real); conversions as for :func:`softmax`.
    axis : int, tuple of ints or None, optional
        Axes to normalise over (default the last); ``None`` means all.
    where : bool array, optional
        Mask broadcastable to ``x``; False entries get -inf.
    temperature : float, optional
        Positive temperature :math:`T` that divides the logits.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``x``.

    Notes
    -----
    * -inf and masked entries give -inf; a slice with no other entry is all
      -inf, with gradient 0.
    * The ``k`` entries equal to +inf in a slice give ``-log(k)``, the
      others -inf.
    * A NaN in a slice makes the whole slice NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.log_softmax(np.asarray([2.0, 1.0, 0.1]))
    array([-0.41703002, -1.41703002, -2.31703002])
    >>> xact.log_softmax(np.asarray([0.0, -40.0]))
    array([-4.24835426e-18, -4.00000000e+01])
    """
    fast = fastpath("log_softmax", x, xp)
    if (
        fast
        and (r := fast(x, axis=axis, where=where, temperature=temperature)) is not NotImplemented
    ):
        return r
    func = "log_softmax"
    xp, xc, axes, rt = _prepare(func, x, axis, where, temperature, xp)
    if has_zero_size(xc):
        return to_compute(xp, xc, rt)
    k = shifted(xp, xc, axes)
    lg = k.log_total(xp)
    neg_inf = const(xp, float("-inf"), xc)
    # Outside finite slices: the k +inf entries get -log(k), a massless
    # slice -inf, and a NaN slice NaN (m_fin is NaN there, else finite).
    top = xp.where(k.m == neg_inf, neg_inf, -lg)
    fill = neg_inf + 0 * k.m_fin
    # Finite entries of finite slices below the cut-off: their exponential
    # underflows, but their log-probability is (x - m) - lg, as finite as x.
    # x - m overflows (to -inf, the correctly rounded answer) only where the
    # halves differ by more than max/2; such entries never enter a
    # subtraction, so nothing warns.
    far = ~k.alive & xp.isfinite(xc) & xp.isfinite(k.m)
    half_max = const(xp, xp.finfo(xc.dtype).max / 2, xc)
    over = (0.5 * xc - 0.5 * k.m_fin) < -half_max
    xs = xp.where(far & ~over, xc, k.m_fin)
    far_val = xp.where(over, neg_inf, (xs - k.m_fin) - lg)
    out = xp.where(k.alive, (k.d - lg) + k.e, xp.where(k.is_max, top, xp.where(far, far_val, fill)))
    return to_compute(xp, out, rt)
