"""Weighted logsumexp, ``log|sum_j b_j exp(x_j)|`` with signed weights.

With ``m = max x_j`` over the entries that take part (``b_j != 0`` and
unmasked) and ``B`` the sum of the weights at the maximum,

.. math::

    \\sum_j b_j e^{x_j} = e^m \\big(B + R\\big), \\qquad
    R = \\sum_{x_j < m} b_j e^{x_j - m},

so ``log|B + R| = log|B| + log|1 + R/B|``, with ``log1p`` where
``R/B > -1`` and ``log(-1 - R/B)`` below it (the sum changed sign). If the
weights at the maximum cancel (``B = 0``) the sum is ``R`` alone. The
shifted exponentials come from the shared kernel, TwoSum correction
included. Infinite weights are outside this scheme and give what IEEE
arithmetic gives.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ._complex import logsumexp_complex
from ._kernel import const, shifted
from ._namespace import (
    Array,
    AxisLike,
    broadcast_to_x,
    compute_dtype,
    get_device,
    has_zero_size,
    normalize_axis,
    reduced_shape,
    to_compute,
    validate_bool_mask,
)

__all__ = ["logsumexp_weighted"]

_FUNC = "logsumexp"


def _result_dtypes(xp: ModuleType, x: Array, b: Array) -> tuple[Any, Any]:
    """Compute and result dtypes: those of ``x`` promoted with ``b``."""
    if xp.isdtype(b.dtype, ("bool", "integral")):
        return compute_dtype(xp, x, _FUNC, allow_complex=True)
    if not xp.isdtype(b.dtype, ("real floating", "complex floating")):
        msg = f"{_FUNC}: `b` must have a numeric dtype, not {b.dtype}"
        raise TypeError(msg)
    if xp.isdtype(x.dtype, ("bool", "integral")):
        rt = b.dtype
    else:
        compute_dtype(xp, x, _FUNC, allow_complex=True)  # validates x
        rt = xp.result_type(x.dtype, b.dtype)
    if xp.isdtype(rt, "real floating") and xp.finfo(rt).bits < 32:
        return xp.float32, rt
    return rt, rt


def _log_abs(xp: ModuleType, v: Array) -> Array:
    """``log|v|`` with -inf (no warning) at 0."""
    a = xp.abs(v)
    zero = a == 0
    return xp.where(zero, const(xp, float("-inf"), a), xp.log(xp.where(zero, const(xp, 1.0, a), a)))


def _sign(xp: ModuleType, v: Array) -> Array:
    one, zero = const(xp, 1.0, v), const(xp, 0.0, v)
    return xp.where(v > 0, one, xp.where(v < 0, -one, xp.where(v == 0, zero, v)))


def logsumexp_weighted(
    xp: ModuleType,
    x: Array,
    b: Array,
    *,
    axis: AxisLike,
    keepdims: bool,
    return_sign: bool,
    where: Array | None,
) -> Array | tuple[Array, Array]:
    ct, rt = _result_dtypes(xp, x, b)
    x, b = broadcast_to_x(xp, x, b, "b", _FUNC, mutual=True)
    if where is not None:
        validate_bool_mask(xp, where, _FUNC)
        _, where = broadcast_to_x(xp, x, where, "where", _FUNC)
    if xp.isdtype(ct, "complex floating"):
        return logsumexp_complex(
            xp,
            to_compute(xp, x, ct),
            to_compute(xp, b, ct),
            axis=axis,
            keepdims=keepdims,
            return_sign=return_sign,
            where=where,
        )
    axes = normalize_axis(axis, x.ndim, _FUNC)
    xc, bc = to_compute(xp, x, ct), to_compute(xp, b, ct)
    if has_zero_size(xc):
        shape = reduced_shape(tuple(xc.shape), axes, keepdims)
        lse = xp.full(shape, float("-inf"), dtype=rt, device=get_device(xc))
        if return_sign:
            return lse, xp.zeros(shape, dtype=rt, device=get_device(xc))
        return lse
    neg_inf = const(xp, float("-inf"), xc)
    zero = const(xp, 0.0, xc)
    live = bc != 0
    if where is not None:
        live = live & where
    xm = xp.where(live, xc, neg_inf)
    k = shifted(xp, xm, axes)
    # Weights of entries that take part (-inf entries are excluded too, so
    # that an infinite weight there is not multiplied by 0).
    bl = xp.where(xm > neg_inf, bc, zero)
    big_b = xp.sum(xp.where(k.is_max, bl, zero), axis=axes, keepdims=True)
    rest = xp.sum(xp.where(k.is_max, zero, bl * k.t), axis=axes, keepdims=True)
    b_zero = big_b == 0
    u = rest / xp.where(b_zero, const(xp, 1.0, big_b), big_b)
    above = u > -1
    log_rel = xp.where(
        above,
        xp.log1p(xp.where(above, u, zero)),
        _log_abs(xp, xp.where(above, zero, -1 - u)),
    )
    log_sum = xp.where(b_zero, _log_abs(xp, rest), _log_abs(xp, big_b) + log_rel)
    sign = xp.where(b_zero, _sign(xp, rest), _sign(xp, big_b) * _sign(xp, 1 + u))
    lse = k.m_fin + log_sum
    inf = const(xp, float("inf"), xc)
    nan = const(xp, float("nan"), xc)
    # A +inf maximum: the sign of the weights there decides; they cancel: NaN.
    lse = xp.where(k.m == inf, xp.where(b_zero, nan, inf), lse)
    sign = xp.where(k.m == inf, xp.where(b_zero, nan, _sign(xp, big_b)), sign)
    lse = xp.where(k.m == neg_inf, neg_inf, lse)
    sign = xp.where(k.m == neg_inf, zero, sign)
    sign = xp.where(xp.isnan(lse), nan, sign)
    if not axes or keepdims:
        pass
    else:
        lse = xp.squeeze(lse, axis=axes)
        sign = xp.squeeze(sign, axis=axes)
    lse, sign = to_compute(xp, lse, rt), to_compute(xp, sign, rt)
    if return_sign:
        return lse, sign
    return xp.where(sign < 0, const(xp, float("nan"), lse), lse)
