"""Elementwise log-space helpers: log1mexp, softplus_inverse, logit.

Each function is a short formula whose naive form loses all its digits
somewhere in the domain; the fix in each case is to split the domain where
a different, exactly computable intermediate is available:

* ``log1mexp(x) = log(1 - e^{-x})`` switches at ``x = log 2`` between
  ``log(-expm1(-x))`` and ``log1p(-exp(-x))`` (Mächler 2012, "Accurately
  computing log(1 - exp(-|a|))", CRAN Rmpfr vignette).
* ``softplus_inverse(y) = log(expm1(y))`` vanishes at ``y = log 2``, where
  ``log`` of a rounded ``expm1`` would only be accurate in absolute terms.
  Around that zero we use ``log1p(2 expm1(t))`` with ``t = y - log 2``
  formed from a two-word ``log 2`` (the first subtraction is exact by
  Sterbenz's lemma), and ``y + log1mexp(y)`` above, so ``expm1`` never
  overflows.
* ``logit(p) = log(p / (1 - p))`` vanishes at ``p = 1/2``. For
  ``p >= 1/4`` it is ``2 atanh(2p - 1)``, where ``2p - 1`` is exact; below,
  ``log(p) - log1p(-p)`` has no cancellation.

Invalid arguments give NaN without a warning: every transcendental function
is evaluated on a sanitised copy of the input and the special values are put
in place with ``where`` afterwards, which also keeps the gradients of the
unused branches finite.
"""

from __future__ import annotations

import math
import operator
import struct
from types import ModuleType

from ._kernel import const
from ._namespace import (
    Array,
    as_arrays,
    compute_dtype,
    elementwise_dtype,
    to_compute,
)

__all__ = ["log1mexp", "logit", "softplus_inverse"]

_LN2 = math.log(2.0)
_LN2_LO = 2.3190468138462996e-17
"""``log 2 - _LN2``, the rounding error of the float64 ``log 2``."""


def _prepare(
    func: str, x: Array, name: str, xp: ModuleType | None
) -> tuple[ModuleType, Array, object]:
    xp, (x,) = as_arrays(func, [(name, x)], xp)
    ct, rt = compute_dtype(xp, x, func, name)
    return xp, to_compute(xp, x, elementwise_dtype(xp, ct)), rt


def _log1mexp(xp: ModuleType, x: Array) -> Array:
    """``log(1 - exp(-x))`` for ``x > 0`` (finite or +inf); other entries
    must already be replaced by a positive value."""
    small = x <= const(xp, _LN2, x)
    # Each branch sees only arguments where it is finite, so that neither the
    # value nor the gradient of the unused branch is NaN or infinite.
    xs = xp.where(small, x, const(xp, _LN2, x))
    xl = xp.where(small, const(xp, 1.0, x), x)
    return xp.where(small, xp.log(-xp.expm1(-xs)), xp.log1p(-xp.exp(-xl)))


def log1mexp(x: Array, /, *, xp: ModuleType | None = None) -> Array:
    r"""Logarithm of one minus the exponential of :math:`-x`, accurately.

    .. math::

        \operatorname{log1mexp}(x) = \log(1 - e^{-x}) =
        \begin{cases}
            \log(-\operatorname{expm1}(-x)) & 0 < x \le \log 2, \\
            \operatorname{log1p}(-e^{-x}) & x > \log 2,
        \end{cases}

    the switch of Mächler (2012), which keeps every digit for small and
    large ``x`` alike.

    Parameters
    ----------
    x : array
        Input, :math:`x \ge 0` (real). Python numbers and lists are
        converted with NumPy; integer and bool input computes in the
        default floating dtype; float16 and bfloat16 compute in float32 and
        are returned in their own dtype.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``x``; values
        :math:`\le 0`.

    Notes
    -----
    ``log1mexp(0) = -inf`` and ``log1mexp(inf) = 0``. Negative ``x`` (where
    :math:`1 - e^{-x} < 0`) and NaN give NaN, without a warning. The
    derivative is :math:`1 / \operatorname{expm1}(x)`: infinite at 0,
    finite for every :math:`x > 0`, and 0 at negative entries.

    The convention (a positive argument) is that of :func:`jax.nn.log1mexp`;
    for :math:`a < 0`, :math:`\log(1 - e^{a})` is ``log1mexp(-a)``.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.log1mexp(np.asarray([1e-20, np.log(2.0), 50.0, 0.0]))
    array([-4.60517019e+01, -6.93147181e-01, -1.92874985e-22,            -inf])
    """
    xp, x, rt = _prepare("log1mexp", x, "x", xp)
    pos = x > 0
    val = _log1mexp(xp, xp.where(pos, x, const(xp, 1.0, x)))
    nan = const(xp, math.nan, x)
    out = xp.where(pos, val, xp.where(x == 0, const(xp, -math.inf, x), nan))
    return to_compute(xp, out, rt)


def _ln2_two_word(xp: ModuleType, like: Array) -> tuple[Array, Array]:
    """``log 2`` as ``hi + lo`` in the (float32 or float64) dtype of ``like``."""
    hi = _LN2
    if xp.finfo(like.dtype).bits == 32:
        hi = struct.unpack("f", struct.pack("f", _LN2))[0]
    # _LN2 - hi is exact in Python floats; _LN2_LO is log 2 - _LN2.
    return const(xp, hi, like), const(xp, (_LN2 - hi) + _LN2_LO, like)


def softplus_inverse(y: Array, /, *, xp: ModuleType | None = None) -> Array:
    r"""Inverse of softplus, :math:`\log(e^{y} - 1)`, accurate for every :math:`y > 0`.

    .. math::

        \operatorname{softplus}^{-1}(y) = \log(\operatorname{expm1}(y)) =
        \begin{cases}
            \log(\operatorname{expm1}(y)) & y < 0.35, \\
            \operatorname{log1p}\big(2 \operatorname{expm1}(y - \log 2)\big)
                & 0.35 \le y \le 2 \log 2, \\
            y + \operatorname{log1mexp}(y) & y > 2 \log 2.
        \end{cases}

    The middle form resolves the zero at :math:`y = \log 2` to full relative
    accuracy (``y - log 2`` is formed with a two-word ``log 2``); the last
    never overflows.

    Parameters
    ----------
    y : array
        Input, :math:`y \ge 0` (real); conversions as for :func:`log1mexp`.
    xp : module, optional
        Array namespace to use instead of the one of ``y``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``y``.

    Notes
    -----
    ``softplus_inverse(0) = -inf``, ``softplus_inverse(inf) = inf``;
    negative ``y`` and NaN give NaN, without a warning. The derivative
    :math:`1 / (1 - e^{-y})` is finite for every :math:`y > 0` and 0 at
    invalid entries. ``softplus_inverse(xact.softplus(x))`` recovers ``x``
    up to the rounding of ``softplus(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.softplus_inverse(np.asarray([1e-10, np.log(2.0), 1.0, 100.0]))
    array([-2.30258509e+01, -4.63809363e-17,  5.41324855e-01,  1.00000000e+02])
    """
    xp, y, rt = _prepare("softplus_inverse", y, "y", xp)
    one = const(xp, 1.0, y)
    lo_edge, hi_edge = const(xp, 0.35, y), const(xp, 2 * _LN2, y)
    pos = y > 0
    small = pos & (y < lo_edge)
    large = y > hi_edge
    mid = pos & ~small & ~large
    ys = xp.where(small, y, const(xp, 0.1, y))
    r_small = xp.log(xp.expm1(ys))
    ln2_hi, ln2_lo = _ln2_two_word(xp, y)
    ym = xp.where(mid, y, one)
    t = (ym - ln2_hi) - ln2_lo  # the first subtraction is exact (Sterbenz)
    r_mid = xp.log1p(2 * xp.expm1(t))
    yl = xp.where(large, y, hi_edge + 1)
    r_large = yl + _log1mexp(xp, yl)
    out = xp.where(small, r_small, xp.where(mid, r_mid, r_large))
    bad = xp.where(y == 0, const(xp, -math.inf, y), const(xp, math.nan, y))
    return to_compute(xp, xp.where(pos, out, bad), rt)


def _validate_eps(eps: object) -> float | None:
    func = "logit"
    if eps is None:
        return None
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        try:
            eps = operator.index(eps)  # type: ignore[arg-type]
        except TypeError:
            msg = f"{func}: `eps` must be None or a Python number in [0, 0.5], not {type(eps).__name__}"
            raise TypeError(msg) from None
    value = float(eps)
    if not 0.0 <= value <= 0.5:
        msg = f"{func}: `eps` must lie in [0, 0.5], got {value!r}"
        raise ValueError(msg)
    return value


def logit(p: Array, /, *, eps: float | None = None, xp: ModuleType | None = None) -> Array:
    r"""Log-odds, :math:`\log(p / (1 - p))`, the inverse of the sigmoid.

    .. math::

        \operatorname{logit}(p) =
        \begin{cases}
            \log p - \operatorname{log1p}(-p) & p < 1/4, \\
            2 \operatorname{atanh}(2p - 1) & p \ge 1/4,
        \end{cases}

    with :math:`2p - 1` exact in the second form, so that results near
    :math:`p = 1/2` and :math:`p = 1` keep their relative accuracy.

    Parameters
    ----------
    p : array
        Probabilities in :math:`[0, 1]` (real); conversions as for
        :func:`log1mexp`.
    eps : float, optional
        If given, ``p`` is first clamped to :math:`[\epsilon, 1 - \epsilon]`
        (with ``1 - eps`` rounded to the dtype of ``p``), as in
        :func:`torch.logit`; it must lie in ``[0, 0.5]``. The gradient is 0
        where the clamp is active.
    xp : module, optional
        Array namespace to use instead of the one of ``p``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``p``.

    Notes
    -----
    ``logit(0) = -inf``, ``logit(1) = inf``; ``p`` outside :math:`[0, 1]`
    and NaN give NaN (NaN stays NaN through the clamp), without a warning.
    The derivative :math:`1 / (p (1 - p))` is finite on :math:`(0, 1)`.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.logit(np.asarray([0.25, 0.5, 1e-30, 1.0]))
    array([ -1.09861229,   0.        , -69.07755279,          inf])
    >>> xact.logit(np.asarray([0.0, 1.0]), eps=1e-6)
    array([-13.81550956,  13.81550956])
    """
    func = "logit"
    eps = _validate_eps(eps)
    xp, p, rt = _prepare(func, p, "p", xp)
    if eps is not None:
        lo = const(xp, eps, p)
        hi = 1 - lo
        p = xp.where(p < lo, lo, xp.where(p > hi, hi, p))
    inside = (p > 0) & (p < 1)
    quarter, half = const(xp, 0.25, p), const(xp, 0.5, p)
    low = inside & (p < quarter)
    high = inside & ~low
    pl = xp.where(low, p, quarter / 2)
    r_low = xp.log(pl) - xp.log1p(-pl)
    ph = xp.where(high, p, half)
    r_high = 2 * xp.atanh(2 * ph - 1)
    inf = const(xp, math.inf, p)
    edge = xp.where(p == 0, -inf, xp.where(p == 1, inf, const(xp, math.nan, p)))
    out = xp.where(low, r_low, xp.where(high, r_high, edge))
    return to_compute(xp, out, rt)
