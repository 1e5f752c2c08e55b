"""xact: numerically stable activation and loss functions for every array API backend."""

from __future__ import annotations

from ._logexp import log1mexp, logit, softplus_inverse
from ._logspace import logcumsumexp, logmeanexp
from ._logsumexp import log_softmax, logsumexp, softmax, softmin
from ._sigmoid import log_sigmoid, sigmoid, softplus

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "log1mexp",
    "log_sigmoid",
    "log_softmax",
    "logcumsumexp",
    "logit",
    "logmeanexp",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softmin",
    "softplus",
    "softplus_inverse",
]
