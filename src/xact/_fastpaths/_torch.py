"""PyTorch fast paths: native kernels where they compute xact's formula.

* ``log_sigmoid``: :func:`torch.nn.functional.logsigmoid` evaluates
  ``min(x, 0) - log1p(exp(-|x|))``, the formula of the generic code, in one
  fused kernel (with its own backward).
* ``softplus``: :func:`torch.nn.functional.softplus` evaluates
  ``log1p(exp(beta x)) / beta`` below its ``threshold`` and ``x`` above. With
  the threshold set per dtype where ``exp(-beta x)`` is below half an ULP of
  ``beta x`` (float64: 40, float32: 20), ``x`` *is* the correctly rounded
  result there, and below it ``log1p(exp(t))`` is within the same 2 ULP as
  ``max(t, 0) + log1p(exp(-|t|))`` (tests/test_accuracy.py runs on torch).

Both are elementwise, so there is no edge case for a fix-up to handle:
``-inf``, ``+inf`` and NaN map as in the generic code. Only float32 and
float64 tensors take them (low precision, integer and complex input
decline). ``logsumexp``, ``softmax`` and ``log_softmax`` have no fast path:
the native kernels lack the TwoSum correction and the log1p of the rest,
so they round the dominant entry (see the benchmark report in the docs).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["log_sigmoid", "softplus"]

_THRESHOLD: dict[Any, float] = {}


def _threshold(dtype: Any) -> float | None:
    if not _THRESHOLD:
        import torch

        _THRESHOLD.update({torch.float64: 40.0, torch.float32: 20.0})
    return _THRESHOLD.get(dtype)


def log_sigmoid(x: Any) -> Any:
    if _threshold(x.dtype) is None:
        return NotImplemented
    import torch.nn.functional as F

    return F.logsigmoid(x)


def softplus(x: Any, *, beta: Any) -> Any:
    thr = _threshold(x.dtype)
    if thr is None or type(beta) not in (int, float) or not (math.isfinite(beta) and beta > 0):
        return NotImplemented
    import torch.nn.functional as F

    return F.softplus(x, beta=beta, threshold=thr)
