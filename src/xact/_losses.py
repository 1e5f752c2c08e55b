"""Classification losses on the log-softmax kernel: cross_entropy, nll_loss.

Both follow :func:`torch.nn.functional.cross_entropy` and ``nll_loss``
(class weights, ``ignore_index``, label smoothing, probability targets, the
``(N, C, d1, ...)`` layout with ``axis=1``, and torch's weighted ``"mean"``),
and are written with array API calls only, so they run on every backend,
under ``jax.jit`` and lazily on Dask. The log-probabilities come from
:func:`xact.log_softmax`, so the dominant class keeps its digits.

Gathering the target class is a masked sum along the class axis with the
one-hot mask ``arange(C) == target``: exact (one non-zero term) and portable
(``take_along_axis`` is missing from older standard versions and Dask).

Where torch's answer is NaN or infinite although the mathematics is not, we
give the mathematical value (the functions' Notes list the cases); every
``0 * inf`` that the definitions contain is taken to be 0 *before* it is
formed (with safe operands inside ``where``), so that neither the value nor
the gradient sees a NaN.
"""

from __future__ import annotations

import operator
from types import ModuleType
from typing import Any

from ._fastpaths import fastpath
from ._kernel import const
from ._logsumexp import log_softmax
from ._namespace import (
    Array,
    as_arrays,
    broadcast_to_x,
    compute_dtype,
    get_device,
    normalize_axis,
    to_compute,
    validate_bool_mask,
)
from ._reduction import count_mean, is_eager_host, safe_mean, validate_reduction

__all__ = ["cross_entropy", "nll_loss"]


def _class_axis(axis: object, ndim: int, func: str, name: str) -> int:
    if ndim == 0:
        msg = f"{func}: `{name}` must have at least one dimension (the classes)"
        raise ValueError(msg)
    if isinstance(axis, tuple):
        msg = f"{func}: `axis` must be a single int (the class axis), not {axis!r}"
        raise TypeError(msg)
    return normalize_axis(axis, ndim, func)[0]


def _ignore_index(value: object, func: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        msg = f"{func}: `ignore_index` must be an int or None, not {value!r}"
        raise TypeError(msg)
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        msg = f"{func}: `ignore_index` must be an int or None, not {type(value).__name__}"
        raise TypeError(msg) from None


def _label_smoothing(value: object, func: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{func}: `label_smoothing` must be a Python float, not {type(value).__name__}"
        raise TypeError(msg)
    value = float(value)
    if not 0.0 <= value <= 1.0:
        msg = f"{func}: `label_smoothing` must be in [0, 1], got {value!r}"
        raise ValueError(msg)
    return value


def _class_weight(
    xp: ModuleType, weight: Array | None, n_classes: int, axis: int, ndim: int, ct: Any, func: str
) -> Array | None:
    """Validate ``weight`` (shape ``(C,)``) and shape it to broadcast along ``axis``."""
    if weight is None:
        return None
    if not xp.isdtype(weight.dtype, ("integral", "real floating")):
        msg = f"{func}: `weight` must be a real array, not of dtype {weight.dtype}"
        raise TypeError(msg)
    if tuple(weight.shape) != (n_classes,):
        msg = (
            f"{func}: `weight` must have shape ({n_classes},), one weight per class, "
            f"not {tuple(weight.shape)}"
        )
        raise ValueError(msg)
    shape = [1] * ndim
    shape[axis] = n_classes
    return xp.reshape(to_compute(xp, weight, ct), tuple(shape))


def _default_int(xp: ModuleType, device: Any) -> Any:
    """The namespace's default integer dtype (written here: ``_namespace``
    has only the floating one)."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["integral"]
    except (AttributeError, TypeError):  # pragma: no cover - old libraries
        return xp.asarray(0).dtype


def _class_masks(
    xp: ModuleType, target: Array, n_classes: int, ignore_index: int | None, device: Any
) -> tuple[Array, Array, Array]:
    """``(t, active, bad)`` for integer class indices: ``target`` in the
    namespace's default integer, the samples that count (neither ignored
    nor out of range), and those out of range and not ignored."""
    # Compare in the namespace's default integer (int64; int32 under JAX
    # without x64, where asking for int64 would warn): an arange in a narrow
    # or unsigned target dtype could wrap around.
    it = _default_int(xp, device)
    t = target if target.dtype == it else xp.astype(target, it)
    info = xp.iinfo(it)
    if ignore_index is not None and info.min <= ignore_index <= info.max:
        ignored = t == ignore_index
    else:  # (no target equals an ignore_index outside the dtype's range)
        ignored = xp.zeros_like(t, dtype=xp.bool)
    in_range = (t >= 0) & (t < n_classes)
    return t, in_range & ~ignored, ~in_range & ~ignored


def _index_target(
    xp: ModuleType,
    target: Array,
    x: Array,
    axis: int,
    ignore_index: int | None,
    func: str,
    input_name: str,
) -> tuple[Array, Array, Array]:
    """Return ``(onehot, active, bad)`` for integer class indices.

    ``onehot`` has the shape of ``x`` and is True at the target class of each
    active sample; ``active`` (the reduced shape) marks samples that are
    neither ignored nor out of range; ``bad`` marks out-of-range indices.
    """
    want = tuple(n for i, n in enumerate(x.shape) if i != axis)
    if tuple(target.shape) != want:
        msg = (
            f"{func}: `target` of class indices must have the shape of `{input_name}` "
            f"without axis {axis}, {want}, not {tuple(target.shape)}"
        )
        raise ValueError(msg)
    n_classes = x.shape[axis]
    t, active, bad = _class_masks(xp, target, n_classes, ignore_index, get_device(x))
    if is_eager_host(xp) and bool(xp.any(bad)):
        first = int(t[bad][0])
        msg = (
            f"{func}: `target` holds class index {first}, outside [0, {n_classes}) "
            f"(`{input_name}` has {n_classes} classes along axis {axis})"
            + ("" if ignore_index is None else f" and not `ignore_index` ({ignore_index})")
        )
        raise ValueError(msg)
    shape = [1] * x.ndim
    shape[axis] = n_classes
    classes = xp.reshape(xp.arange(n_classes, dtype=t.dtype, device=get_device(x)), tuple(shape))
    onehot = (classes == xp.expand_dims(t, axis=axis)) & xp.expand_dims(active, axis=axis)
    return onehot, active, bad


def _finish(
    xp: ModuleType, loss: Array, bad: Array | None, reduction: str, den: Array | None, rt: Any
) -> Array:
    """NaN for out-of-range samples, then reduce and cast to the result dtype.

    An out-of-range sample makes the weighted mean's denominator NaN too, so
    a batch of nothing but such samples is NaN rather than the 0 of a batch
    whose samples are all ignored.
    """
    if bad is not None:
        nan = const(xp, float("nan"), loss)
        loss = xp.where(bad, nan, loss)
        if den is not None:
            den = xp.where(bad, nan, den)
    if reduction == "sum":
        loss = xp.sum(loss)
    elif reduction == "mean":
        loss = count_mean(xp, loss) if den is None else safe_mean(xp, xp.sum(loss), xp.sum(den))
    return to_compute(xp, loss, rt)


def _gather(xp: ModuleType, values: Array, onehot: Array, axis: int) -> Array:
    """``values`` at the target class (0 for inactive samples): exact.

    A -0.0 there gives +0.0 on every backend: the sum adds it to the other
    classes' zeros, but over one class XLA's sum is a reshape, which kept
    the -0.0 (a one-class ``+inf`` row's loss was +0.0 under JAX and -0.0
    on NumPy); ``+ 0`` makes it +0.0 there too."""
    zero = const(xp, 0.0, values)
    return xp.sum(xp.where(onehot, values, zero), axis=axis) + zero


# --------------------------------------------------------------------------
# cross_entropy


def cross_entropy(
    logits: Array,
    target: Array,
    /,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    where: Array | None = None,
    xp: ModuleType | None = None,
) -> Array:
    r"""Cross-entropy between the softmax of ``logits`` and ``target``.

    With :math:`\log p = \operatorname{log\_softmax}(x)` along ``axis``, class
    weights :math:`w` and label smoothing :math:`\varepsilon`, the loss of a
    sample with class index :math:`y` is

    .. math::

        \ell = (1 - \varepsilon)\, w_y\, (-\log p_y)
             + \frac{\varepsilon}{K} \sum_{c:\, x_c > -\infty} w_c\, (-\log p_c),

    where :math:`K` is the number of classes whose logit is above -inf
    (:math:`K = C` for finite logits: torch's formula). For class
    probabilities :math:`q` (same shape as ``logits``) it is
    :math:`\ell = -\sum_c w_c\, q'_c \log p_c` with
    :math:`q' = (1 - \varepsilon) q + \varepsilon / K` on the existing classes.

    Parameters
    ----------
    logits : array
        Unnormalised scores with the classes along ``axis``. Integer and bool
        input computes in the default float; float16/bfloat16 in float32.
    target : array
        Either integer class indices, with the shape of ``logits`` without
        ``axis``, or class probabilities (floating), with the shape of
        ``logits``.
    axis : int, optional
        The class axis: -1 (default) for ``(N, C)``, 1 for torch's
        ``(N, C, d1, ...)`` layout.
    weight : array, optional
        Per-class weights, shape ``(C,)``.
    ignore_index : int, optional
        A class index whose samples contribute nothing (neither to the loss
        nor to the weight total of ``"mean"``); only for index targets.
        Default None: nothing is ignored (pass ``-100`` for torch's default).
    label_smoothing : float, optional
        :math:`\varepsilon \in [0, 1]`.
    reduction : {"mean", "sum", "none"}, optional
        ``"none"`` returns the per-sample losses (shape of ``logits`` without
        ``axis``). ``"mean"`` with index targets is the weighted mean
        :math:`\sum_i \ell_i / \sum_i w_{y_i}` over the samples not ignored;
        with probability targets it is the plain mean over samples.
    where : bool array, optional
        Mask broadcastable to ``logits``; False entries are classes that do
        not exist for that sample, exactly as a -inf logit.
    xp : module, optional
        Array namespace to use instead of the one of ``logits``.

    Returns
    -------
    array
        The loss in the floating dtype of ``logits``, on its device.

    Notes
    -----
    Where torch is not finite or not right, this function is:

    * :math:`0 \log 0 = 0`: a probability target of 0 at a class with a
      -inf logit adds nothing (torch: NaN).
    * A -inf (or masked) logit is a class that does not exist for that
      sample: it receives no label-smoothing mass, which is spread over the
      :math:`K` existing classes (torch: +inf for any smoothing).
    * ``"mean"`` over a batch whose samples are all ignored (or whose total
      weight is 0, or which is empty) is 0, with gradient 0 (torch: NaN).

    A class index outside ``[0, C)`` that is not ``ignore_index`` raises a
    ValueError for NumPy and array-api-strict input, where it can be
    checked for free; on other backends (torch, JAX, Dask, CuPy), where the
    check would force a device sync or a computation, that sample's loss is
    NaN, and so is any reduction that includes it. The target class of a
    sample with a -inf logit there gives +inf, as it should; NaN logits give
    NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> logits = np.asarray([[2.0, 1.0, 0.1], [0.0, 5.0, -np.inf]])
    >>> xact.cross_entropy(logits, np.asarray([0, 1]), reduction="none")
    array([0.41703002, 0.00671535])
    >>> xact.cross_entropy(logits, np.asarray([0, 1]), label_smoothing=0.1)
    array(0.38520602)
    >>> xact.cross_entropy(logits, np.asarray([0, 1]), ignore_index=1)
    array(0.41703002)
    """
    fast = fastpath("cross_entropy", logits, xp)
    r = NotImplemented
    if fast:
        r = fast(
            logits,
            target=target,
            axis=axis,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
            where=where,
        )
    if r is not NotImplemented:
        return r
    func = "cross_entropy"
    xp, (logits, target, weight, where) = as_arrays(
        func, [("logits", logits), ("target", target), ("weight", weight), ("where", where)], xp
    )
    x = logits
    if target is None:
        msg = f"{func}: `target` must be an array, not None"
        raise TypeError(msg)
    ct, rt = compute_dtype(xp, x, func, "logits")
    ax = _class_axis(axis, x.ndim, func, "logits")
    ignore = _ignore_index(ignore_index, func)
    eps = _label_smoothing(label_smoothing, func)
    reduction = validate_reduction(reduction, func)
    n_classes = x.shape[ax]
    wb = _class_weight(xp, weight, n_classes, ax, x.ndim, ct, func)

    xc = to_compute(xp, x, ct)
    if where is not None:
        validate_bool_mask(xp, where, func)
        _, where = broadcast_to_x(xp, xc, where, "where", func, x_name="logits")
        xc = xp.where(where, xc, const(xp, float("-inf"), xc))
    lp = log_softmax(xc, axis=ax)
    zero, one = const(xp, 0.0, lp), const(xp, 1.0, lp)
    exists = xc > const(xp, float("-inf"), xc)  # False for -inf, masked (and NaN)

    if xp.isdtype(target.dtype, "integral"):
        onehot, active, bad = _index_target(xp, target, x, ax, ignore, func, "logits")
        nll = -_gather(xp, lp, onehot, ax)
        w_y = (
            xp.astype(active, ct)
            if wb is None
            else _gather(xp, xp.broadcast_to(wb, lp.shape), onehot, ax)
        )
        loss = nll if wb is None else w_y * nll
        if eps > 0:
            ex = exists & xp.expand_dims(active, axis=ax)
            lp_ex = xp.where(ex, lp, zero)  # the safe operand: no -inf * w
            if wb is not None:
                lp_ex = wb * lp_ex
            k = xp.sum(xp.astype(ex, ct), axis=ax)
            smooth = -xp.sum(lp_ex, axis=ax) / xp.where(k == zero, one, k)
            loss = (1 - eps) * loss + eps * smooth
        return _finish(xp, loss, bad, reduction, w_y, rt)

    if not xp.isdtype(target.dtype, "real floating"):
        msg = (
            f"{func}: `target` must hold integer class indices or floating class "
            f"probabilities, not dtype {target.dtype}"
        )
        raise TypeError(msg)
    if ignore is not None:
        msg = f"{func}: `ignore_index` applies only to class-index targets, not to probabilities"
        raise ValueError(msg)
    if tuple(target.shape) != tuple(x.shape):
        msg = (
            f"{func}: `target` of class probabilities must have the shape of `logits`, "
            f"{tuple(x.shape)}, not {tuple(target.shape)}"
        )
        raise ValueError(msg)
    q = to_compute(xp, target, ct)
    if eps > 0:
        k = xp.sum(xp.astype(exists, ct), axis=ax, keepdims=True)
        q = (1 - eps) * q + xp.where(exists, eps / xp.where(k == zero, one, k), zero)
    if wb is not None:
        q = wb * q
    # 0 * log 0 = 0: only a zero probability on a class with no mass is
    # dropped; elsewhere q * lp stays, so that the gradient with respect to
    # a target probability of exactly 0 is log p, not 0.
    dead = (q == zero) & (lp == const(xp, float("-inf"), lp))
    terms = xp.where(dead, zero, q * xp.where(dead, zero, lp))
    return _finish(xp, -xp.sum(terms, axis=ax), None, reduction, None, rt)


# --------------------------------------------------------------------------
# nll_loss


def nll_loss(
    log_probs: Array,
    target: Array,
    /,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
    xp: ModuleType | None = None,
) -> Array:
    r"""Negative log-likelihood of class indices under given log-probabilities.

    .. math::

        \ell_i = -w_{y_i} \log p_{i, y_i}, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    over the samples whose target is not ``ignore_index`` (torch's weighted
    mean). ``cross_entropy(x, y)`` is ``nll_loss(log_softmax(x), y)``.

    Parameters
    ----------
    log_probs : array
        Log-probabilities with the classes along ``axis`` (for instance from
        :func:`xact.log_softmax`); they are used as given.
    target : array
        Integer class indices with the shape of ``log_probs`` without ``axis``.
    axis : int, optional
        The class axis: -1 (default), or 1 for torch's ``(N, C, d1, ...)``.
    weight : array, optional
        Per-class weights, shape ``(C,)``.
    ignore_index : int, optional
        A class index whose samples contribute nothing. Default None:
        nothing is ignored (pass ``-100`` for torch's default).
    reduction : {"mean", "sum", "none"}, optional
        ``"none"`` returns the per-sample losses.
    xp : module, optional
        Array namespace to use instead of the one of ``log_probs``.

    Returns
    -------
    array
        The loss in the floating dtype of ``log_probs``, on its device.

    Notes
    -----
    * ``"mean"`` over a batch whose samples are all ignored (or whose total
      weight is 0, or which is empty) is 0, with gradient 0 (torch: NaN).
    * Only the target entry of each sample is read: a -inf or NaN elsewhere
      does not matter; a -inf at the target gives +inf.
    * A class index outside ``[0, C)`` that is not ``ignore_index`` raises a
      ValueError for NumPy and array-api-strict input; on torch, JAX, Dask
      and CuPy, where checking would force a sync or a computation, that
      sample's loss is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import xact
    >>> lp = np.log(np.asarray([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    >>> xact.nll_loss(lp, np.asarray([0, 1]), reduction="none")
    array([0.69314718, 0.22314355])
    >>> xact.nll_loss(lp, np.asarray([0, 1]), weight=np.asarray([1.0, 3.0, 1.0]))
    array(0.34064446)
    """
    func = "nll_loss"
    xp, (log_probs, target, weight) = as_arrays(
        func, [("log_probs", log_probs), ("target", target), ("weight", weight)], xp
    )
    x = log_probs
    if target is None:
        msg = f"{func}: `target` must be an array, not None"
        raise TypeError(msg)
    ct, rt = compute_dtype(xp, x, func, "log_probs")
    ax = _class_axis(axis, x.ndim, func, "log_probs")
    ignore = _ignore_index(ignore_index, func)
    reduction = validate_reduction(reduction, func)
    if not xp.isdtype(target.dtype, "integral"):
        msg = f"{func}: `target` must hold integer class indices, not dtype {target.dtype}"
        raise TypeError(msg)
    wb = _class_weight(xp, weight, x.shape[ax], ax, x.ndim, ct, func)
    xc = to_compute(xp, x, ct)
    onehot, active, bad = _index_target(xp, target, x, ax, ignore, func, "log_probs")
    loss = -_gather(xp, xc, onehot, ax)
    if wb is None:
        w_y = xp.astype(active, ct)
    else:
        w_y = _gather(xp, xp.broadcast_to(wb, xc.shape), onehot, ax)
        loss = w_y * loss
    return _finish(xp, loss, bad, reduction, w_y, rt)
