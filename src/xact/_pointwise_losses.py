"""Losses defined entry by entry: binary_cross_entropy_with_logits, kl_div.

BCE with logits is written as two non-negative terms,

.. math::

    \\ell = (1 - y)\\,\\operatorname{softplus}(x) + p\\,y\\,\\operatorname{softplus}(-x),

which is torch's :math:`(1 - y)x + (1 + (p - 1)y)\\operatorname{softplus}(-x)`
rearranged with :math:`\\operatorname{softplus}(x) = x + \\operatorname{softplus}(-x)`.
Torch's form cancels (:math:`x - x`) for large :math:`|x|` and gives
``0 * inf = NaN`` at :math:`x = +\\infty, y = 1`; this one adds two terms of
one sign (for :math:`y \\in [0, 1]`), each a product of a factor computed
exactly or with one rounding and a softplus accurate to 2 ULP, and a term
whose factor is exactly 0 is 0 even where its softplus is infinite.
"""

from __future__ import annotations

from types import ModuleType

from ._kernel import const
from ._namespace import (
    Array,
    as_arrays,
    broadcast_to_x,
    compute_dtype,
    elementwise_dtype,
    normalize_axis,
    to_compute,
)
from ._reduction import count_mean, validate_reduction

__all__ = ["binary_cross_entropy_with_logits", "kl_div"]


def _real(xp: ModuleType, a: Array, name: str, func: str) -> None:
    if not xp.isdtype(a.dtype, ("bool", "integral", "real floating")):
        msg = f"{func}: `{name}` must be a real array, not of dtype {a.dtype}"
        raise TypeError(msg)


def _reduce(xp: ModuleType, loss: Array, reduction: str) -> Array:
    if reduction == "sum":
        return xp.sum(loss)
    if reduction == "mean":
        return count_mean(xp, loss)
    return loss


def binary_cross_entropy_with_logits(
    logits: Array,
    target: Array,
    /,
    *,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    reduction: str = "mean",
    xp: ModuleType | None = None,
) -> Array:
    r"""Binary cross-entropy between :math:`\sigma(x)` and targets :math:`y`.

    .. math::

        \ell = w \big[ (1 - y)\, \operatorname{softplus}(x)
                      + p\, y\, \operatorname{softplus}(-x) \big]
             = -w \big[ p\, y \log \sigma(x) + (1 - y) \log(1 - \sigma(x)) \big]

    with :math:`\operatorname{softplus}(x) = \max(x, 0) + \operatorname{log1p}(e^{-|x|})`,
    element weights :math:`w` and positive-class weights :math:`p`, as
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`.

    Parameters
    ----------
    logits : array
        Scores :math:`x` (real); integer and bool input computes in the
        default float, float16/bfloat16 in float32.
    target : array
        Targets :math:`y`, usually in ``[0, 1]``, with the shape of ``logits``.
    weight : array, optional
        Weights :math:`w` that broadcast to the shape of ``logits``.
    pos_weight : array, optional
        Weights :math:`p` of the positive term that broadcast to the shape of
        ``logits`` (typically one per class along the last axis).
    reduction : {"mean", "sum", "none"}, optional
        ``"mean"`` is the plain mean over all entries (the weights are not
        normalised, as in torch); ``"none"`` returns the entry losses.
    xp : module, optional
        Array namespace to use instead of the one of ``logits``.

    Returns
    -------
    array
        The loss in the floating dtype of ``logits``, on its device.

    Notes
    -----
    * Exact at :math:`\pm\infty`: ``x = inf, y = 1`` and ``x = -inf, y = 0``
      give 0 with gradient 0 (torch: NaN); ``x = inf, y = 0`` gives +inf.
    * No cancellation for large :math:`|x|`: ``x = 1e4, y = 0.25`` gives
      7500 to the last digit, and ``x = -1e4, y = 0`` gives 0 exactly, not a
      clipped value (Keras clips the probability, which caps the loss near
      16.1 in float32).
    * ``"mean"`` of an empty array is 0.
    * NaN in ``logits`` or ``target`` gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> x = np.asarray([2.0, -1.0, np.inf, 1e4])
    >>> y = np.asarray([1.0, 0.0, 1.0, 0.25])
    >>> xact.binary_cross_entropy_with_logits(x, y, reduction="none")
    array([1.26928011e-01, 3.13261688e-01, 0.00000000e+00, 7.50000000e+03])
    """
    func = "binary_cross_entropy_with_logits"
    xp, (logits, target, weight, pos_weight) = as_arrays(
        func,
        [("logits", logits), ("target", target), ("weight", weight), ("pos_weight", pos_weight)],
        xp,
    )
    x, y, w, p = logits, target, weight, pos_weight
    reduction = validate_reduction(reduction, func)
    if y is None:
        msg = f"{func}: `target` must be an array, not None"
        raise TypeError(msg)
    ct, rt = compute_dtype(xp, x, func, "logits")
    ct = elementwise_dtype(xp, ct)
    _real(xp, y, "target", func)
    if tuple(y.shape) != tuple(x.shape):
        msg = f"{func}: `target` must have the shape of `logits`, {tuple(x.shape)}, not {tuple(y.shape)}"
        raise ValueError(msg)
    xc, y = to_compute(xp, x, ct), to_compute(xp, y, ct)
    zero = const(xp, 0.0, xc)
    pos = xc >= zero
    e = xp.exp(xp.where(pos, -xc, xc))  # exp(-|x|), derivative -sign(x) also at 0
    l1p = xp.log1p(e)
    sp_pos = xp.where(pos, xc, zero) + l1p  # softplus(x)
    sp_neg = xp.where(pos, zero, -xc) + l1p  # softplus(-x)
    a = 1 - y  # exact for y in [1/2, 1]
    b = y
    if p is not None:
        _real(xp, p, "pos_weight", func)
        _, p = broadcast_to_x(xp, xc, to_compute(xp, p, ct), "pos_weight", func, x_name="logits")
        b = p * y
    # A factor that is exactly 0 makes its term 0 also where softplus = inf
    # (0 * inf); elsewhere the product stays, so that the gradient with
    # respect to a target of exactly 0 or 1 is the true one.
    sp_pos = xp.where((a == zero) & xp.isinf(sp_pos), zero, sp_pos)
    sp_neg = xp.where((b == zero) & xp.isinf(sp_neg), zero, sp_neg)
    loss = a * sp_pos + b * sp_neg
    if w is not None:
        _real(xp, w, "weight", func)
        _, w = broadcast_to_x(xp, xc, to_compute(xp, w, ct), "weight", func, x_name="logits")
        loss = w * loss
    return to_compute(xp, _reduce(xp, loss, reduction), rt)


def kl_div(
    log_p: Array,
    q: Array,
    /,
    *,
    axis: int = -1,
    log_target: bool = False,
    reduction: str = "mean",
    xp: ModuleType | None = None,
) -> Array:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(q \,\|\, p)` from log-probabilities.

    .. math::

        \mathrm{KL}(q \,\|\, p) = \sum_c q_c \, (\log q_c - \log p_c),
        \qquad 0 \log 0 = 0,

    summed along ``axis`` (the distribution axis), as
    :func:`torch.nn.functional.kl_div` with ``log_p`` as ``input``.

    Parameters
    ----------
    log_p : array
        Log-probabilities :math:`\log p` (the model), classes along ``axis``.
    q : array
        Target probabilities :math:`q`, or :math:`\log q` with
        ``log_target=True``; broadcast to the shape of ``log_p``.
    axis : int, optional
        The distribution axis (default the last; 1 for ``(N, C, d1, ...)``).
    log_target : bool, optional
        Whether ``q`` holds log-probabilities.
    reduction : {"mean", "batchmean", "sum", "none"}, optional
        ``"none"``: the divergence of each distribution (shape of ``log_p``
        without ``axis``); ``"sum"``: their sum; ``"mean"``: their mean;
        ``"batchmean"``: the sum divided by the length of the first axis
        (torch's definition).
    xp : module, optional
        Array namespace to use instead of the one of ``log_p``.

    Returns
    -------
    array
        The divergence in the floating dtype of ``log_p``, on its device.

    Notes
    -----
    * Unlike torch, ``"none"`` and ``"mean"`` work per distribution:
      torch's ``"none"`` returns the entry terms (sum them along ``axis``
      for ours) and its ``"mean"`` divides by the number of *entries*,
      which torch's documentation itself says is not the KL divergence. Our
      ``"mean"`` is the mean divergence, which equals torch's
      ``"batchmean"`` for 2-d input; ``"sum"`` and ``"batchmean"`` agree
      with torch.
    * :math:`q_c = 0` contributes 0 also where :math:`\log p_c = -\infty`
      (torch: NaN), with gradient 0; :math:`q_c > 0` there gives +inf.
    * A NaN or negative :math:`q_c` gives NaN (no warning). Entries of
      ``log_p`` where :math:`q_c = 0` are not read. An empty reduction is 0.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> log_p = np.asarray([[np.log(0.5), np.log(0.5), -np.inf], np.log([0.25, 0.25, 0.5])])
    >>> q = np.asarray([[1.0, 0.0, 0.0], [0.5, 0.25, 0.25]])
    >>> xact.kl_div(log_p, q, reduction="none")
    array([0.69314718, 0.1732868 ])
    """
    func = "kl_div"
    xp, (log_p, q) = as_arrays(func, [("log_p", log_p), ("q", q)], xp)
    lp = log_p
    if q is None:
        msg = f"{func}: `q` must be an array, not None"
        raise TypeError(msg)
    if not isinstance(log_target, bool):
        msg = f"{func}: `log_target` must be a bool, not {type(log_target).__name__}"
        raise TypeError(msg)
    reduction = validate_reduction(reduction, func, ("none", "sum", "mean", "batchmean"))
    ct, rt = compute_dtype(xp, lp, func, "log_p")
    if lp.ndim == 0:
        msg = f"{func}: `log_p` must have at least one dimension (the distribution)"
        raise ValueError(msg)
    if isinstance(axis, tuple):
        msg = f"{func}: `axis` must be a single int, not {axis!r}"
        raise TypeError(msg)
    ax = normalize_axis(axis, lp.ndim, func)[0]
    _real(xp, q, "q", func)
    lp = to_compute(xp, lp, ct)
    _, q = broadcast_to_x(xp, lp, to_compute(xp, q, ct), "q", func, x_name="log_p")
    zero, one = const(xp, 0.0, lp), const(xp, 1.0, lp)
    if log_target:
        nz = q > const(xp, float("-inf"), q)
        log_q = xp.where(nz, q, zero)
        prob = xp.exp(log_q)
    else:
        nz = q > zero
        prob = q
        log_q = xp.log(xp.where(nz, q, one))
    terms = xp.where(nz, prob * (log_q - xp.where(nz, lp, zero)), zero)
    # NaN targets (and negative probabilities) give NaN, not a silent 0.
    invalid = xp.isnan(q) if log_target else ~(q >= zero)
    terms = xp.where(invalid, const(xp, float("nan"), q), terms)
    kl = xp.sum(terms, axis=ax)
    if reduction == "batchmean":
        n = lp.shape[0]
        return to_compute(xp, xp.sum(kl) / const(xp, float(max(int(n), 1)), kl), rt)
    return to_compute(xp, _reduce(xp, kl, reduction), rt)
