"""xact: numerically stable activation and loss functions for every array API backend."""

from __future__ import annotations

from ._logexp import log1mexp, logit, softplus_inverse
from ._logspace import logcumsumexp, logmeanexp
from ._logsumexp import log_softmax, logsumexp, softmax, softmin
from ._losses import cross_entropy, nll_loss
from ._pointwise_losses import binary_cross_entropy_with_logits, kl_div
from ._sigmoid import log_sigmoid, sigmoid, softplus

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "kl_div",
    "log1mexp",
    "log_sigmoid",
    "log_softmax",
    "logcumsumexp",
    "logit",
    "logmeanexp",
    "logsumexp",
    "nll_loss",
    "sigmoid",
    "softmax",
    "softmin",
    "softplus",
    "softplus_inverse",
]
