"""Fused row kernels for the NumPy and torch CPU fast paths (``_ckernel.c``,
with the float32 rows for AVX-512 in ``_ckernel_avx512.c``)."""

from typing import Any

def cross_entropy(
    x: Any,
    target: Any,
    loss: Any,
    ignore: int | None,
    r0: int,
    r1: int,
    threads: int = 1,
    chunk: int = 1,
    /,
) -> tuple[int, int, int]: ...
def cross_entropy_at(
    x: int,
    row_stride: int,
    rows: int,
    n: int,
    f64: int,
    target: int,
    ignore: int | None,
    reduction: int,
    out: int,
    /,
) -> bool: ...
def cross_entropy_reduce(
    x: Any, target: Any, ignore: int | None, reduction: int, out: Any, /
) -> bool: ...
def rows_at(
    x: int,
    row_stride: int,
    rows: int,
    n: int,
    out: int,
    mode: int,
    f64: int,
    threads: int = 1,
    chunk: int = 1,
    /,
) -> int: ...
def rows(
    x: Any, out: Any, bad: Any, mode: int, r0: int, r1: int, threads: int = 1, chunk: int = 1, /
) -> int: ...
def log1p_exp(x: Any, out: Any, sign: int, threads: int = 1, chunk: int = 1, /) -> bool: ...
def log1p_exp_at(
    x: int, out: int, n: int, f64: int, sign: int, threads: int = 1, chunk: int = 1, /
) -> bool: ...
def openmp() -> bool: ...
def sigmoid(x: Any, out: Any, threads: int = 1, chunk: int = 1, /) -> None: ...
def sigmoid_at(
    x: int, out: int, n: int, f64: int, threads: int = 1, chunk: int = 1, lanes: bool = False, /
) -> bool: ...
def exp(x: Any, out: Any, careful: bool, /) -> None: ...
def exp16(x: Any, out: Any, full: bool = False, /) -> None: ...
def hugepages(on: bool = ..., /) -> bool: ...
def isas() -> tuple[str, ...]: ...
def set_isa(name: str, /) -> str: ...
def xla_handlers() -> dict[str, Any]: ...
def xla_pool_tasks() -> int: ...

__all__ = [
    "cross_entropy",
    "cross_entropy_at",
    "cross_entropy_reduce",
    "exp",
    "exp16",
    "isas",
    "log1p_exp",
    "log1p_exp_at",
    "openmp",
    "rows",
    "rows_at",
    "set_isa",
    "sigmoid",
    "sigmoid_at",
    "xla_handlers",
    "xla_pool_tasks",
]
