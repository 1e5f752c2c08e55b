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
def rows(
    x: Any, out: Any, bad: Any, mode: int, r0: int, r1: int, threads: int = 1, chunk: int = 1, /
) -> int: ...
def openmp() -> bool: ...
def exp(x: Any, out: Any, careful: bool, /) -> None: ...
def exp16(x: Any, out: Any, /) -> None: ...
def isas() -> tuple[str, ...]: ...
def set_isa(name: str, /) -> str: ...
def xla_handlers() -> dict[str, Any]: ...
def xla_pool_tasks() -> int: ...

__all__ = [
    "cross_entropy",
    "exp",
    "exp16",
    "isas",
    "openmp",
    "rows",
    "set_isa",
    "xla_handlers",
    "xla_pool_tasks",
]
