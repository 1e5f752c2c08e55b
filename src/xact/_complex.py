"""logsumexp of complex input, with the conventions of SciPy.

The sum is shifted by the largest real part ``m`` (finite slices only), so
``log(sum_j b_j exp(x_j)) = m + log(sum_j b_j exp(x_j - m))`` with the
principal complex logarithm: the imaginary part of the result is the phase of
the sum, in ``(-pi, pi]``. Slices whose largest real part is +inf are summed
unshifted (only their entries with real part +inf) and follow the C99 rules of
the backend's complex ``exp`` and ``log``, as :func:`scipy.special.logsumexp`
does. With ``return_sign=True`` the result is the real ``log|sum|`` and the
sign is the unit complex number ``sum / |sum|`` (0 for a zero sum).
"""

from __future__ import annotations

import math
from types import ModuleType

from ._namespace import (
    Array,
    AxisLike,
    get_device,
    has_zero_size,
    max_with_nan,
    normalize_axis,
    reduced_shape,
)

__all__ = ["logsumexp_complex"]

_FUNC = "logsumexp"


def _c(xp: ModuleType, value: complex | float, like: Array, dtype: object = None) -> Array:
    return xp.asarray(value, dtype=like.dtype if dtype is None else dtype, device=get_device(like))


def logsumexp_complex(
    xp: ModuleType,
    x: Array,
    b: Array | None,
    *,
    axis: AxisLike,
    keepdims: bool,
    return_sign: bool,
    where: Array | None,
) -> Array | tuple[Array, Array]:
    axes = normalize_axis(axis, x.ndim, _FUNC)
    real_dtype = xp.float64 if x.dtype == xp.complex128 else xp.float32
    if has_zero_size(x):
        shape = reduced_shape(tuple(x.shape), axes, keepdims)
        dev = get_device(x)
        if return_sign:
            return (
                xp.full(shape, float("-inf"), dtype=real_dtype, device=dev),
                xp.zeros(shape, dtype=x.dtype, device=dev),
            )
        return xp.full(shape, complex(float("-inf"), 0.0), dtype=x.dtype, device=dev)
    neg_inf = _c(xp, complex(float("-inf"), 0.0), x)
    live = None if b is None else b != 0
    if where is not None:
        live = where if live is None else live & where
    if live is not None:
        x = xp.where(live, x, neg_inf)
    re = xp.real(x)
    rinf = _c(xp, float("inf"), re)
    m = max_with_nan(xp, re, axes)
    m_fin = xp.where(xp.isfinite(m), m, _c(xp, 0.0, re))
    # In a slice with a +inf real part only those entries count; the others
    # would overflow exp for nothing.
    keep = (m != rinf) | (re == rinf)
    x = xp.where(keep, x, neg_inf)
    z = xp.exp(x - xp.astype(m_fin, x.dtype))
    if b is not None:
        # An excluded entry has exp(...) == 0; keep an infinite weight there
        # from producing inf * 0.
        z = xp.where(xp.real(x) == -rinf, _c(xp, 0.0, z), b * z)
    s = xp.sum(z, axis=axes, keepdims=True)
    if not keepdims and axes:
        s = xp.squeeze(s, axis=axes)
        m_fin = xp.squeeze(m_fin, axis=axes)
    mag = xp.abs(s)
    is_zero = mag == 0
    safe = xp.where(is_zero, _c(xp, 1.0, s), s)
    log_mag = xp.where(
        is_zero, _c(xp, float("-inf"), mag), xp.log(xp.where(is_zero, _c(xp, 1.0, mag), mag))
    )
    if return_sign:
        lse = m_fin + log_mag
        sign = xp.where(is_zero, _c(xp, 0.0, s), safe / xp.astype(xp.abs(safe), s.dtype))
        return lse, sign
    phase = xp.atan2(xp.imag(safe), xp.real(safe))
    # atan2 gives -pi for a negative real sum with a -0 imaginary part.
    pi = _c(xp, math.pi, phase)
    phase = xp.where(phase == -pi, pi, phase)
    phase = xp.where(is_zero, _c(xp, 0.0, phase), phase)
    # Non-finite magnitudes follow the backend's complex log (C99 rules).
    finite = xp.isfinite(mag)
    phase = xp.where(finite | is_zero, phase, xp.imag(xp.log(xp.where(finite, _c(xp, 1.0, s), s))))
    real = m_fin + log_mag
    return real + _c(xp, 1j, real, x.dtype) * phase
