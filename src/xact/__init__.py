"""xact: numerically stable activation and loss functions for every array API backend."""

from __future__ import annotations

from ._logsumexp import log_softmax, logsumexp, softmax, softmin
from ._sigmoid import log_sigmoid, sigmoid, softplus

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softmin",
    "softplus",
]
