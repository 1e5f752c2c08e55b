"""How close to torch's own time can a small xact call on torch get at all?

Run from the repository root (needs torch)::

    python docs/scripts/dispatch_floor.py

At 32x10 a torch elementwise call (``torch.sigmoid``, ``F.softplus``,
``F.logsigmoid``) takes 1.2 to 3 µs, and the benchmark's goal is 1.3 times
that. This script times, on the same tensor and interleaved (``xact.bench``'s
``time_calls``: medians of rounds, equal call counts):

``native``
    torch's function itself, the benchmark's anchor.
``floor``
    ``xact.<name>(x)`` with its torch fast path replaced by a bare call of
    torch's function: the public function and its dispatch (``fastpath``)
    and nothing else, no check and no correction of torch's result. No
    fast path that does any work can be quicker.
``xact``
    ``xact.<name>(x)`` as it is.

It prints each as a ratio to ``native``. Where ``floor`` is already above
1.3, the goal cannot be met by any fast path behind xact's Python
dispatch; where it is below, the difference between ``floor`` and ``xact``
is what the fast path's own checks and work cost.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src")]

import torch
import torch.nn.functional as F

import xact
from xact._fastpaths import _torch as fast_torch
from xact.bench import time_calls

NATIVE: dict[str, Callable[..., Any]] = {
    "sigmoid": torch.sigmoid,
    "log_sigmoid": F.logsigmoid,
    "softplus": F.softplus,
}


def bare(native: Callable[..., Any]) -> Callable[..., Any]:
    """A fast path that only calls torch's function (any keywords dropped)."""

    def path(x: Any, **_: Any) -> Any:
        return native(x)

    return path


def ratio_pair(native: Any, public: Any, x: Any, budget: float) -> tuple[float, float]:
    """Median seconds per call of ``native(x)`` and ``public(x)``, interleaved."""
    t_native, t_public = time_calls(
        [lambda: native(x), lambda: public(x)], lambda r: r, budget=budget, min_repeats=15
    )
    return t_native, t_public


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="32x10")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per function")
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.shape.split("x"))
    print(f"torch {torch.__version__}, shape {args.shape}; ratios to torch's own function")
    print("| function | dtype | native | floor | xact |")
    print("|---|---|---|---|---|")
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
        for name, native in NATIVE.items():
            public = getattr(xact, name)
            real = getattr(fast_torch, name)
            setattr(fast_torch, name, bare(native))  # (looked up at every call)
            try:
                t_native, t_floor = ratio_pair(native, public, x, args.budget)
            finally:
                setattr(fast_torch, name, real)
            t_native2, t_xact = ratio_pair(native, public, x, args.budget)
            print(
                f"| {name} | {str(dtype).removeprefix('torch.')} "
                f"| {t_native * 1e6:.2f} µs | {t_floor / t_native:.2f} "
                f"| {t_xact / t_native2:.2f} |"
            )


if __name__ == "__main__":
    main()
