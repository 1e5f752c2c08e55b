"""``python -m xact``: the classic examples on every installed backend.

Prints ``softmax``, ``log_softmax`` and ``sigmoid`` of the textbook inputs
for each array library that can be imported here (NumPy, array-api-strict,
PyTorch on the CPU and on CUDA, JAX, Dask, CuPy), with the dtype and device
of each result, so that one glance shows that every backend gives the same
answer in its own array type. ``python -m xact --version`` prints the
version.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import xact

LOGITS = [2.0, 1.0, 0.1]


def _backends() -> Iterator[tuple[str, Callable[[list[float]], Any]]]:
    """Yield ``(label, make_array)`` for each importable backend."""
    import numpy as np

    yield "numpy", lambda v: np.asarray(v, dtype=np.float64)

    def attempt(name: str) -> ModuleType | None:
        try:
            return importlib.import_module(name)
        except ImportError:
            return None
        except Exception as exc:  # noqa: BLE001 - a broken install must not stop the demo
            print(f"{name}: cannot be imported ({type(exc).__name__}: {exc})")
            return None

    if (strict := attempt("array_api_strict")) is not None:
        yield "array_api_strict", lambda v: strict.asarray(v, dtype=strict.float64)
    if (torch := attempt("torch")) is not None:
        yield "torch", lambda v: torch.asarray(v, dtype=torch.float32)
        if torch.cuda.is_available():
            yield "torch (cuda)", lambda v: torch.asarray(v, dtype=torch.float32, device="cuda")
    if (jnp := attempt("jax.numpy")) is not None:
        yield "jax", lambda v: jnp.asarray(v, dtype=jnp.float32)
    if (da := attempt("dask.array")) is not None:
        import numpy as np

        yield "dask", lambda v: da.from_array(np.asarray(v, dtype=np.float64), chunks=2)
    if (cp := attempt("cupy")) is not None:
        try:
            has_gpu = cp.cuda.runtime.getDeviceCount() > 0
        except Exception:  # noqa: BLE001 - no driver, no device
            has_gpu = False
        if has_gpu:
            yield "cupy", lambda v: cp.asarray(v, dtype=cp.float32)


def _show(arr: Any) -> str:
    """Values with 4 decimals, computed (Dask) and copied to the host."""
    import numpy as np

    if hasattr(arr, "compute"):
        arr = arr.compute()
    if hasattr(arr, "get") and type(arr).__module__.startswith("cupy"):
        arr = arr.get()
    if type(arr).__module__.startswith("torch"):
        arr = arr.cpu().numpy()
    if type(arr).__module__.startswith("array_api_strict"):
        arr = np.from_dlpack(arr)
    values = np.asarray(arr, dtype=np.float64)
    return np.array2string(values, precision=4, floatmode="fixed", separator=", ")


def _device(arr: Any) -> str:
    from array_api_compat import device

    return str(device(arr))


def demo() -> int:
    print(f"xact {xact.__version__}: softmax, log_softmax and sigmoid on every installed backend")
    print(f"logits = {LOGITS}")
    print()
    for label, make in _backends():
        x = make(LOGITS)
        s = make([2.0])[0]
        sm = xact.softmax(x)
        lsm = xact.log_softmax(x)
        sg = xact.sigmoid(s)
        print(
            f"{label}: {type(sm).__module__.split('.')[0]}.{type(sm).__name__}, dtype {sm.dtype}, device {_device(sm)}"
        )
        print(f"  softmax     = {_show(sm)}")
        print(f"  log_softmax = {_show(lsm)}")
        print(f"  sigmoid(2.0) = {_show(sg)}")
    print()
    print("Expected: softmax [0.659, 0.242, 0.099], log_softmax [-0.417, -1.417, -2.317],")
    print("sigmoid(2.0) 0.8808 (the last log-probability is -2.317, not -2.417).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xact",
        description="Show xact's classic examples on every installed array backend.",
    )
    parser.add_argument("--version", action="version", version=f"xact {xact.__version__}")
    parser.parse_args(argv)
    return demo()


if __name__ == "__main__":
    sys.exit(main())
