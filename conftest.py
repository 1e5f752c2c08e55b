"""Test fixtures: one ``xp`` fixture per array backend.

Every test that takes ``xp`` (or ``backend``) runs once per backend: NumPy,
array-api-strict, PyTorch (CPU), JAX (64-bit enabled), Dask, and CuPy /
PyTorch-on-CUDA where a GPU is present. A backend that is not installed is
skipped with the reason, except that when ``CI`` (or
``XACT_REQUIRE_BACKENDS``) is set the five CPU backends are required and a
missing one fails the run. GPU backends always skip with a stated reason when
no GPU is found.

``backend.check(actual, expected, dtype=...)`` checks namespace, dtype,
shape and device before values.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

REQUIRED = ("numpy", "array_api_strict", "torch", "jax", "dask")
GPU = ("cupy", "torch_cuda")
ALL_BACKENDS = REQUIRED + GPU


def _required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("XACT_REQUIRE_BACKENDS"))


def _enable_jax_x64() -> None:
    try:
        import jax
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)


_enable_jax_x64()


@dataclass
class Backend:
    """An array library under test, with the device its arrays live on."""

    name: str
    xp: ModuleType
    device: Any = None

    @property
    def lazy(self) -> bool:
        return self.name == "dask"

    @property
    def has_autograd(self) -> bool:
        return self.name in ("torch", "torch_cuda", "jax")

    def asarray(self, obj: Any, dtype: Any = None) -> Any:
        """Make an array of this backend (dtype given as a NumPy dtype name)."""
        arr = np.asarray(obj)
        if dtype is None:
            dtype = arr.dtype.name
        if isinstance(dtype, str):
            if dtype == "bfloat16":
                dt = self.xp.bfloat16 if hasattr(self.xp, "bfloat16") else None
                if dt is None:
                    pytest.skip(f"{self.name} has no bfloat16")
                return self.xp.asarray(arr.astype(np.float32), device=self.device, dtype=dt)
            if not hasattr(self.xp, dtype):
                pytest.skip(f"{self.name} has no {dtype}")
            dt = getattr(self.xp, dtype)
        else:
            dt = dtype
        return self.xp.asarray(arr, dtype=dt, device=self.device)

    def to_numpy(self, arr: Any) -> np.ndarray:
        """Copy an array of this backend to the host as NumPy."""
        name = type(arr).__module__.split(".")[0]
        if name == "torch":
            return (
                arr.detach().cpu().numpy()
                if arr.dtype != self.xp.bfloat16
                else arr.detach().float().cpu().numpy()
            )
        if name == "dask":
            return np.asarray(arr.compute())
        if name == "cupy":
            return arr.get()
        if name == "array_api_strict":
            return np.from_dlpack(arr)
        if name in ("jax", "jaxlib"):
            return np.asarray(arr)
        return np.asarray(arr)

    def dtype(self, name: str) -> Any:
        return getattr(self.xp, name)

    def check(
        self,
        actual: Any,
        expected: Any = None,
        *,
        dtype: Any = None,
        shape: tuple[int, ...] | None = None,
        rtol: float | None = None,
        atol: float = 0.0,
        equal: bool = False,
    ) -> np.ndarray:
        """Assert namespace, dtype, shape and device, then values.

        ``dtype`` may be a name (``"float32"``) or a dtype of the backend.
        Returns the values as NumPy.
        """
        import array_api_compat

        ns = array_api_compat.array_namespace(actual)
        assert ns.__name__ == self.xp.__name__ or (
            self.name == "numpy" and ns.__name__.endswith("numpy")
        ), f"result namespace {ns.__name__}, expected {self.xp.__name__}"
        if self.name == "dask":
            import dask.array as da

            assert isinstance(actual, da.Array), f"result is {type(actual)}, not a Dask array"
        if self.name == "numpy":
            assert isinstance(actual, (np.ndarray, np.generic)), type(actual)
        if dtype is not None:
            want = self.dtype(dtype) if isinstance(dtype, str) else dtype
            assert actual.dtype == want, f"dtype {actual.dtype}, expected {want}"
        if shape is not None:
            assert tuple(actual.shape) == tuple(shape), f"shape {actual.shape}, expected {shape}"
        if self.device is not None:
            assert array_api_compat.device(actual) == self.device, (
                f"device {array_api_compat.device(actual)}, expected {self.device}"
            )
        values = self.to_numpy(actual)
        if expected is not None:
            exp = np.asarray(expected)
            if shape is None:
                assert values.shape == exp.shape, f"shape {values.shape}, expected {exp.shape}"
            if equal:
                np.testing.assert_array_equal(values, exp)
            else:
                if rtol is None:
                    rtol = 1e-12 if values.dtype in (np.float64, np.complex128) else 2e-6
                    if values.dtype == np.float16:
                        rtol = 2e-3
                np.testing.assert_allclose(values, exp, rtol=rtol, atol=atol, equal_nan=True)
        return values


def _load(name: str) -> Backend:
    if name == "numpy":
        return Backend("numpy", np)
    if name == "array_api_strict":
        mod = importlib.import_module("array_api_strict")
        return Backend(name, mod, mod.Device("CPU_DEVICE"))
    if name == "torch":
        importlib.import_module("torch")
        import array_api_compat.torch as xtorch
        import torch

        return Backend(name, xtorch, torch.device("cpu"))
    if name == "torch_cuda":
        import torch

        if not torch.cuda.is_available():
            raise _NoGPU("torch reports no CUDA device")
        import array_api_compat.torch as xtorch

        return Backend(name, xtorch, torch.device("cuda", 0))
    if name == "jax":
        importlib.import_module("jax")
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        return Backend(name, jnp, jax.devices("cpu")[0])
    if name == "dask":
        importlib.import_module("dask.array")
        import array_api_compat.dask.array as xdask

        return Backend(name, xdask)
    if name == "cupy":
        try:
            cp = importlib.import_module("cupy")
        except ImportError:
            raise _NoGPU("CuPy is not installed (it needs a CUDA GPU)") from None
        try:
            ndev = cp.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - any CUDA failure means no GPU
            raise _NoGPU(f"CuPy finds no CUDA device ({exc})") from None
        if ndev == 0:
            raise _NoGPU("CuPy finds no CUDA device")
        return Backend(name, cp, cp.cuda.Device(0))
    msg = f"unknown backend {name}"
    raise ValueError(msg)


class _NoGPU(Exception):
    pass


_CACHE: dict[str, Backend | BaseException] = {}


def get_backend(name: str) -> Backend:
    """Load a backend, or skip (fail, where required) with the reason."""
    if name not in _CACHE:
        try:
            _CACHE[name] = _load(name)
        except (ImportError, _NoGPU) as exc:
            _CACHE[name] = exc
    got = _CACHE[name]
    if isinstance(got, BaseException):
        if name in REQUIRED and _required():
            pytest.fail(f"backend {name} is required (CI) but unavailable: {got}")
        pytest.skip(f"backend {name} unavailable: {got}")
    return got


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return get_backend(request.param)


@pytest.fixture
def xp(backend: Backend) -> ModuleType:
    return backend.xp


@pytest.fixture(
    params=[b for b in ALL_BACKENDS if b not in ("dask", "array_api_strict", "numpy", "cupy")]
)
def ad_backend(request: pytest.FixtureRequest) -> Backend:
    """Backends with automatic differentiation (torch, JAX)."""
    return get_backend(request.param)


def _forbid_compute(*args: Any, **kwargs: Any) -> None:
    msg = "a Dask graph was computed before it was asked for"
    raise AssertionError(msg)


@pytest.fixture
def no_compute() -> Callable[[], Any]:
    """A context manager factory: inside it, computing a Dask graph fails."""
    import dask

    def ctx() -> Any:
        return dask.config.set(scheduler=_forbid_compute)

    return ctx


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict[str, Any]) -> None:
    doctest_namespace["np"] = np


@pytest.fixture(autouse=True)
def _mpmath_precision() -> Any:
    """mpmath's working precision is global: a test that sets it (some
    measure at 120 bits) must not leave it to the next, as a lower one once
    did to ``tests/accuracy.py``'s references (50 digits, set at import),
    which then read hundreds of ULP of error that was mpmath's own."""
    try:
        import mpmath
    except ImportError:  # (the test extra has it; a bare run may not)
        yield
        return
    prec = mpmath.mp.prec
    try:
        yield
    finally:
        mpmath.mp.prec = prec
