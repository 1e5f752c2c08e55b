"""Namespace detection, input conversion, validation and dtype policy.

This is the only module of xact that imports :mod:`array_api_compat`; every
other module takes what it needs from here. The helpers never import a
framework themselves: a torch tensor is recognised because torch is already
imported by whoever made it (array-api-compat looks the array's class up in
``sys.modules``), so ``import xact`` imports none of torch, JAX, CuPy or Dask.

The policy implemented here is the same for every public function:

* Arrays of the standard (NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict)
  are used as they are and never modified.
* Python scalars and (nested) lists or tuples of numbers are converted with
  NumPy, as SciPy does; any other object is a :class:`TypeError`.
* Several array arguments must come from one library; the error names them.
* Booleans and integers (unsigned too) compute in the namespace's default real
  floating dtype; float16 and bfloat16 compute in float32 and are cast back.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from types import ModuleType
from typing import Any, TypeAlias

import array_api_compat
from array_api_compat import (
    array_namespace as _compat_namespace,
)
from array_api_compat import (
    device as get_device,
)
from array_api_compat import (
    is_array_api_obj,
    is_dask_namespace,
    is_jax_namespace,
    is_numpy_namespace,
    is_torch_namespace,
)

__all__ = [
    "Array",
    "AxisLike",
    "as_arrays",
    "broadcast_to_x",
    "compute_dtype",
    "default_float",
    "elementwise_dtype",
    "full_like_reduced",
    "get_device",
    "has_zero_size",
    "is_dask_namespace",
    "is_jax_namespace",
    "is_numpy_namespace",
    "is_torch_namespace",
    "library_of",
    "max_with_nan",
    "normalize_axis",
    "reduced_shape",
    "runs_numpy_kernels",
    "to_compute",
    "validate_bool_mask",
    "validate_positive",
]

Array: TypeAlias = Any
"""Any array of a library that follows the Python array API standard."""

AxisLike: TypeAlias = "int | tuple[int, ...] | None"


def _type_name(obj: object) -> str:
    cls = type(obj)
    module = cls.__module__.split(".")[0]
    return f"{module}.{cls.__qualname__}" if module != "builtins" else cls.__qualname__


def _is_number_tree(obj: object) -> bool:
    if isinstance(obj, (bool, int, float, complex)):
        return True
    if isinstance(obj, (list, tuple)):
        return all(_is_number_tree(item) for item in obj)
    return False


def _from_python(obj: object, name: str, func: str) -> Array:
    """Convert a Python scalar or nested list of numbers with NumPy."""
    if not _is_number_tree(obj):
        msg = (
            f"{func}: `{name}` must be an array of the array API standard, a "
            f"Python number or a (nested) list of numbers, not {_type_name(obj)}"
        )
        raise TypeError(msg)
    import numpy as np  # only for Python input, as SciPy does

    try:
        arr = np.asarray(obj)
    except ValueError as exc:  # ragged nested lists
        msg = f"{func}: `{name}` could not be converted to an array: {exc}"
        raise TypeError(msg) from None
    if arr.dtype == object:
        msg = f"{func}: `{name}` is a ragged or mixed list and cannot be converted"
        raise TypeError(msg)
    return arr


def library_of(ns: ModuleType) -> str:
    """The array library behind a namespace module: ``array_api_compat.torch``,
    ``torch`` and ``torch.linalg`` all give ``"torch"``; ``jax.numpy`` gives
    ``"jax"``."""
    name = ns.__name__.removeprefix("array_api_compat.")
    return name.split(".")[0]


def _namespace_of(arr: Array, name: str, func: str) -> ModuleType:
    try:
        return _compat_namespace(arr)
    except TypeError:
        msg = (
            f"{func}: `{name}` is a {_type_name(arr)}, which does not follow the "
            "Python array API standard"
        )
        raise TypeError(msg) from None


def as_arrays(
    func: str,
    arrays: Sequence[tuple[str, object]],
    xp: ModuleType | None = None,
) -> tuple[ModuleType, list[Array | None]]:
    """Return the common namespace and the arguments as arrays.

    ``arrays`` is a sequence of ``(name, value)`` pairs; the first one is the
    main input and decides the namespace unless ``xp`` is given. ``None``
    values are passed through. Python numbers and lists are converted with
    NumPy for the main input and with the main input's namespace (on its
    device) for the others, so that ``b=2.0`` works with a torch tensor.
    """
    main_name, first = arrays[0]
    if first is None:
        msg = f"{func}: `{main_name}` must be an array, not None"
        raise TypeError(msg)
    if xp is not None and not isinstance(xp, ModuleType):
        msg = f"{func}: `xp` must be an array namespace module, not {_type_name(xp)}"
        raise TypeError(msg)
    # Typed as Array (Any): array-api-compat's TypeIs would narrow it to a
    # union of the known array classes, which is not what we work with.
    main: Array = first
    if not is_array_api_obj(first):
        main = _from_python(first, main_name, func)
        if xp is not None:
            # Python input goes to the namespace the caller asked for.
            main = xp.asarray(main)
    elif xp is not None and library_of(_namespace_of(main, main_name, func)) != library_of(xp):
        msg = (
            f"{func}: `{main_name}` is a {_type_name(main)} but `xp` is "
            f"{xp.__name__}; `xp` must be the namespace of the array arguments"
        )
        raise TypeError(msg)
    # Always work with array-api-compat's wrapper (``xp=torch`` gives
    # ``array_api_compat.torch``), whatever module the caller passed.
    ns = _namespace_of(main, main_name, func)
    xp = ns
    out: list[Array | None] = [main]
    dev = get_device(main)
    for name, value in arrays[1:]:
        if value is None:
            out.append(None)
            continue
        if not is_array_api_obj(value):
            # A Python scalar is "weak", as in the standard's promotion rules:
            # it takes the floating dtype of the main input.
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and xp.isdtype(main.dtype, "real floating")
            ):
                out.append(xp.asarray(value, dtype=main.dtype, device=dev))
                continue
            value = _from_python(value, name, func)
            out.append(xp.asarray(value, device=dev))
            continue
        other = _namespace_of(value, name, func)
        if library_of(other) != library_of(ns):
            msg = (
                f"{func}: `{name}` is a {_type_name(value)} but `{main_name}` is a "
                f"{_type_name(main)}; all array arguments must come from the same "
                "library"
            )
            raise TypeError(msg)
        out.append(value)
    return xp, out


def default_float(xp: ModuleType, device: Any = None) -> Any:
    """The namespace's default real floating dtype (float32 for torch)."""
    try:
        info = xp.__array_namespace_info__()
        return info.default_dtypes(device=device)["real floating"]
    except (AttributeError, TypeError):  # pragma: no cover - old libraries
        return xp.asarray(0.0).dtype


def _is_low_precision(xp: ModuleType, dtype: Any) -> bool:
    return bool(xp.finfo(dtype).bits < 32)


def compute_dtype(
    xp: ModuleType,
    x: Array,
    func: str,
    name: str = "x",
    *,
    allow_complex: bool = False,
) -> tuple[Any, Any]:
    """Return ``(compute_dtype, result_dtype)`` for the input array ``x``.

    Booleans and integers compute and return in the default real float;
    float16 and bfloat16 compute in float32 and return their own dtype;
    complex input is a TypeError unless ``allow_complex``.
    """
    dtype = x.dtype
    if xp.isdtype(dtype, "bool") or xp.isdtype(dtype, "integral"):
        f = default_float(xp, get_device(x))
        return f, f
    if xp.isdtype(dtype, "real floating"):
        if _is_low_precision(xp, dtype):
            return xp.float32, dtype
        return dtype, dtype
    if xp.isdtype(dtype, "complex floating"):
        if allow_complex:
            return dtype, dtype
        msg = f"{func}: `{name}` has complex dtype {dtype}; only real input is supported"
        raise TypeError(msg)
    msg = f"{func}: `{name}` must have a numeric dtype, not {dtype}"
    raise TypeError(msg)


def runs_numpy_kernels(xp: ModuleType) -> bool:
    """True for namespaces whose elementwise kernels are NumPy's on the host."""
    return bool(
        is_numpy_namespace(xp) or is_dask_namespace(xp) or xp.__name__ == "array_api_strict"
    )


def max_with_nan(xp: ModuleType, x: Array, axes: tuple[int, ...]) -> Array:
    """``xp.max(x, axis=axes, keepdims=True)``, NaN wherever the slice has
    a NaN, as the standard specifies.

    XLA's CPU backend drops NaN in a compiled max reduction over more than
    a few elements (openxla/xla#21461: a jitted row maximum of a (2000, 6)
    float32 array with a NaN in every row has none), so under JAX the NaN
    is put back from ``any(isnan)``, one more pass over the input.
    """
    m = xp.max(x, axis=axes, keepdims=True)
    if is_jax_namespace(xp):
        nan = xp.asarray(float("nan"), dtype=m.dtype, device=get_device(m))
        m = xp.where(xp.any(xp.isnan(x), axis=axes, keepdims=True), nan, m)
    return m


def elementwise_dtype(xp: ModuleType, dtype: Any) -> Any:
    """Compute dtype for the elementwise transcendental functions.

    NumPy's float32 ``exp`` and ``log1p`` are vectorised approximations with
    errors up to about 1.6 ULP, which leaves no room for the rounding of
    the formulas around them; its float64 ones are accurate to well under
    1 ULP. On host NumPy kernels float32 therefore computes in float64 and
    rounds once at the end (other backends' float32 kernels are good enough
    and a GPU would pay for float64).
    """
    if dtype == xp.float32 and runs_numpy_kernels(xp):
        return xp.float64
    return dtype


def to_compute(xp: ModuleType, x: Array, dtype: Any) -> Array:
    """Cast ``x`` to ``dtype`` without copying when it already has it."""
    if x.dtype == dtype:
        return x
    return xp.astype(x, dtype)


def normalize_axis(axis: object, ndim: int, func: str) -> tuple[int, ...]:
    """Return ``axis`` as a sorted tuple of non-negative ints.

    ``None`` means all axes. Out-of-range or repeated axes and non-integers
    raise a ValueError or TypeError naming ``axis``.
    """
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    result = []
    for item in items:
        if isinstance(item, bool):
            msg = f"{func}: `axis` must be an int, a tuple of ints or None, not {axis!r}"
            raise TypeError(msg)
        try:
            index = operator.index(item)
        except TypeError:
            msg = f"{func}: `axis` must be an int, a tuple of ints or None, not {axis!r}"
            raise TypeError(msg) from None
        if not -ndim <= index < ndim:
            msg = (
                f"{func}: `axis` {index} is out of range for an array with "
                f"{ndim} dimension{'s' if ndim != 1 else ''}"
            )
            raise ValueError(msg)
        result.append(index % ndim)
    if len(set(result)) != len(result):
        msg = f"{func}: `axis` {axis!r} repeats an axis"
        raise ValueError(msg)
    return tuple(sorted(result))


def reduced_shape(shape: tuple[Any, ...], axes: tuple[int, ...], keepdims: bool) -> tuple[Any, ...]:
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def has_zero_size(x: Array) -> bool:
    """True when ``x`` has no element (a static shape test; unknown Dask
    sizes count as non-zero).

    Reductions of zero-size arrays are answered from the shape alone: an
    empty reduced axis has no mass, and an empty other axis leaves nothing
    to compute (Dask's keepdims reductions mis-shape such chunks).
    """
    return any(n == 0 for n in x.shape)


def broadcast_to_x(
    xp: ModuleType,
    x: Array,
    other: Array,
    name: str,
    func: str,
    *,
    mutual: bool = False,
    x_name: str = "x",
) -> tuple[Array, Array]:
    """Broadcast ``other`` against ``x``.

    With ``mutual=False`` ``other`` must broadcast *to* the shape of ``x``;
    with ``mutual=True`` both are broadcast to their common shape.
    """
    try:
        shape = xp.broadcast_shapes(tuple(x.shape), tuple(other.shape))
    except Exception:  # noqa: BLE001 - torch raises RuntimeError, others ValueError
        try:
            shape = _broadcast_shapes(tuple(x.shape), tuple(other.shape))
        except ValueError:
            msg = (
                f"{func}: `{name}` with shape {tuple(other.shape)} does not broadcast "
                f"against `{x_name}` with shape {tuple(x.shape)}"
            )
            raise ValueError(msg) from None
    shape = tuple(shape)
    if not mutual and shape != tuple(x.shape):
        msg = (
            f"{func}: `{name}` with shape {tuple(other.shape)} does not broadcast "
            f"to the shape of `{x_name}`, {tuple(x.shape)}"
        )
        raise ValueError(msg)
    if tuple(x.shape) != shape:
        x = xp.broadcast_to(x, shape)
    if tuple(other.shape) != shape:
        other = xp.broadcast_to(other, shape)
    return x, other


def _broadcast_shapes(*shapes: tuple[Any, ...]) -> tuple[Any, ...]:
    ndim = max(len(s) for s in shapes)
    result: list[Any] = []
    for i in range(ndim):
        sizes = {s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0}
        sizes.discard(1)
        known = {n for n in sizes if n is not None and not (isinstance(n, float) and math.isnan(n))}
        if len(known) > 1:
            msg = f"shapes {shapes} do not broadcast"
            raise ValueError(msg)
        result.append(known.pop() if known else (sizes.pop() if sizes else 1))
    return tuple(result)


def full_like_reduced(
    xp: ModuleType, shape: tuple[Any, ...], value: float, dtype: Any, device: Any
) -> Array:
    return xp.full(shape, value, dtype=dtype, device=device)


def validate_bool_mask(xp: ModuleType, where: Array, func: str) -> None:
    if not xp.isdtype(where.dtype, "bool"):
        msg = f"{func}: `where` must be a boolean array, not of dtype {where.dtype}"
        raise TypeError(msg)


def validate_positive(value: object, name: str, func: str) -> float:
    """A positive finite Python number (temperature, beta)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            msg = f"{func}: `{name}` must be a positive Python number, not {_type_name(value)}"
            raise TypeError(msg) from None
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        msg = f"{func}: `{name}` must be positive and finite, got {value!r}"
        raise ValueError(msg)
    return value


del array_api_compat
