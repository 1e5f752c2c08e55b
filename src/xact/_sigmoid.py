"""The sigmoid family: sigmoid, log_sigmoid, softplus.

All three are written with ``e = exp(-|x|)``, which never overflows, and the
sign of ``x`` chosen by ``where`` rather than ``abs``/``maximum`` so that the
gradient at ``x = 0`` is the true derivative (``abs`` and ``maximum`` have a
kink there that autograd would split):

.. math::

    \\sigma(x) = \\frac{1}{1 + e} \\ (x \\ge 0), \\qquad
    \\sigma(x) = \\frac{e}{1 + e} \\ (x < 0),

    \\log \\sigma(x) = \\min(x, 0) - \\operatorname{log1p}(e), \\qquad
    \\operatorname{softplus}(x) = \\max(x, 0) + \\operatorname{log1p}(e).

Each is one division or one addition of two terms of the same sign away from
correctly rounded ``exp`` and ``log1p``, so the error stays within 2 ULP, and
``sigmoid`` keeps results in the subnormal range (``sigmoid(-720)`` is
``1.8e-313`` in float64, not 0).
"""

from __future__ import annotations

from types import ModuleType

from ._fastpaths import fastpath
from ._kernel import const
from ._namespace import (
    Array,
    as_arrays,
    compute_dtype,
    elementwise_dtype,
    to_compute,
    validate_positive,
)

__all__ = ["log_sigmoid", "sigmoid", "softplus"]


def _prepare(func: str, x: Array, xp: ModuleType | None) -> tuple[ModuleType, Array, object]:
    xp, (x,) = as_arrays(func, [("x", x)], xp)
    ct, rt = compute_dtype(xp, x, func)
    return xp, to_compute(xp, x, elementwise_dtype(xp, ct)), rt


def _neg_abs(xp: ModuleType, x: Array, pos: Array) -> Array:
    """``-|x|`` with derivative -1 at 0 (the ``x >= 0`` branch)."""
    return xp.where(pos, -x, x)


def sigmoid(x: Array, /, *, xp: ModuleType | None = None) -> Array:
    r"""Logistic sigmoid, :math:`\sigma(x) = 1 / (1 + e^{-x})`.

    Computed as :math:`1/(1+e^{-|x|})` for :math:`x \ge 0` and
    :math:`e^{-|x|}/(1+e^{-|x|})` below, with one rounding after the
    exponential, so no overflow occurs and tiny results keep their digits.

    Parameters
    ----------
    x : array
        Input (real). Python numbers and lists are converted with NumPy;
        integer and bool input computes in the default floating dtype;
        float16 and bfloat16 compute in float32.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``x``.

    Notes
    -----
    ``sigmoid(inf) = 1``, ``sigmoid(-inf) = 0``, NaN stays NaN. The gradient
    is :math:`\sigma(x)(1 - \sigma(x))` everywhere, 0.25 at 0. Results in the
    subnormal range are kept where the backend keeps subnormals (NumPy,
    PyTorch); XLA on the CPU flushes them to 0 under JAX.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.sigmoid(np.asarray([2.0, 0.0, -720.0]))
    array([8.80797078e-001, 5.00000000e-001, 2.03223080e-313])
    """
    if (fast := fastpath("sigmoid", x, xp)) and (r := fast(x)) is not NotImplemented:
        return r
    xp, x, rt = _prepare("sigmoid", x, xp)
    pos = x >= 0
    e = xp.exp(_neg_abs(xp, x, pos))
    return to_compute(xp, xp.where(pos, const(xp, 1.0, x), e) / (1 + e), rt)


def log_sigmoid(x: Array, /, *, xp: ModuleType | None = None) -> Array:
    r"""Logarithm of the sigmoid, :math:`\log \sigma(x) = -\operatorname{softplus}(-x)`.

    .. math::

        \log \sigma(x) = \min(x, 0) - \operatorname{log1p}(e^{-|x|})

    Parameters
    ----------
    x : array
        Input (real); conversions as for :func:`sigmoid`.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``x``.

    Notes
    -----
    ``log_sigmoid(inf) = 0``, ``log_sigmoid(-inf) = -inf``; for large
    positive ``x`` the result is ``-exp(-x)``, not 0, as long as that is
    representable.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.log_sigmoid(np.asarray([-1000.0, 0.0, 40.0]))
    array([-1.00000000e+03, -6.93147181e-01, -4.24835426e-18])
    """
    if (fast := fastpath("log_sigmoid", x, xp)) and (r := fast(x)) is not NotImplemented:
        return r
    xp, x, rt = _prepare("log_sigmoid", x, xp)
    pos = x >= 0
    e = xp.exp(_neg_abs(xp, x, pos))
    head = xp.where(pos, const(xp, 0.0, x), x)
    return to_compute(xp, head - xp.log1p(e), rt)


def softplus(x: Array, /, *, beta: float = 1.0, xp: ModuleType | None = None) -> Array:
    r"""Softplus, :math:`\frac{1}{\beta}\log(1 + e^{\beta x})`, without overflow.

    .. math::

        \operatorname{softplus}(x) = \max(x, 0) + \operatorname{log1p}(e^{-|x|})

    applied to :math:`\beta x` and divided by :math:`\beta`.

    Parameters
    ----------
    x : array
        Input (real); conversions as for :func:`sigmoid`.
    beta : float, optional
        Positive sharpness :math:`\beta` (default 1). Unlike
        :func:`torch.nn.functional.softplus` there is no threshold: the
        formula is exact for every ``x``.
    xp : module, optional
        Array namespace to use instead of the one of ``x``.

    Returns
    -------
    array
        Same shape, device and (floating) dtype as ``x``.

    Notes
    -----
    ``softplus(inf) = inf``, ``softplus(-inf) = 0``; for very negative ``x``
    the result is ``exp(x)``, down to the subnormal range.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> xact.softplus(np.asarray([-40.0, 0.0, 1000.0]))
    array([4.24835426e-18, 6.93147181e-01, 1.00000000e+03])
    """
    if (fast := fastpath("softplus", x, xp)) and (r := fast(x, beta=beta)) is not NotImplemented:
        return r
    func = "softplus"
    beta = validate_positive(beta, "beta", func)
    xp, x, rt = _prepare(func, x, xp)
    pos = x >= 0
    neg_abs = _neg_abs(xp, x, pos)
    if beta != 1.0:
        # max(x, 0) + log1p(exp(-beta |x|)) / beta: beta * x is never formed.
        # Clamping -|x| at -max/beta keeps beta * (-|x|) from overflowing (and
        # warning); exp of the clamped product, about -max, is 0 all the same.
        fmax = xp.finfo(x.dtype).max  # a dtype constant, not an array value
        clamped = xp.maximum(neg_abs, const(xp, -float(fmax) / max(beta, 1.0), x))
        e = xp.exp(clamped * beta)
        return to_compute(xp, xp.where(pos, x, const(xp, 0.0, x)) + xp.log1p(e) / beta, rt)
    e = xp.exp(neg_abs)
    out = xp.where(pos, x, const(xp, 0.0, x)) + xp.log1p(e)
    return to_compute(xp, out, rt)
