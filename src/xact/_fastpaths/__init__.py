"""Per-backend fast paths, kept apart from the generic code.

The generic functions (:mod:`xact._logsumexp`, :mod:`xact._sigmoid`) are the
definition of xact: they are written once against the array API standard.
A fast path is an optional, backend-specific implementation of one public
function for the common case, which gives the same answers (to a few ULP
of rounding, exactly for every special value) under the same tests. Each
public function starts with::

    fast = fastpath("softmax", x, xp)
    if fast and (r := fast(x, axis=axis, where=where, ...)) is not NotImplemented:
        return r

:func:`fastpath` looks the type of ``x`` up (cached per type, without
importing any framework: a type's module is in ``sys.modules`` already)
and returns the backend module's function of that name, which returns
``NotImplemented`` to decline wherever it would differ or gain nothing
(``where=``, weights, complex or low-precision dtypes, unusual axes or
layouts, an explicit ``xp``...). Declining costs well under a microsecond.

Fast paths are switched off by setting the environment variable
``XACT_DISABLE_FASTPATHS=1`` (read at every call) or inside
``with xact._fastpaths.disabled():``; the test suite runs both ways. Under
``jax.jit`` a call is made when the function is traced: a function traced
with the fast paths on keeps them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

__all__ = ["LARGEST_MAX", "disabled", "enabled", "env_lookup", "fastpath", "plain_cross_entropy"]

LARGEST_MAX = 1.7e308
"""Fast paths compute the rows whose maximum ``m`` has ``|m|`` below this;
the others (not finite, or within 6% of the float64 range) are left to the
generic code. Below it, the float64 kernel's clip bound
``(m - CUTOFF) - |m| 2^-50`` is finite; at ``m = -1.797e308`` it overflows
to -inf, and ``-inf - (-inf)`` would turn a -inf entry's TwoSum into NaN."""

_DISABLED_DEPTH = 0
_ENV = "XACT_DISABLE_FASTPATHS"


def env_lookup(name: str) -> tuple[Any, Any, Any]:
    """``(environ, data, key)``: ``data.get(key)`` is the raw value of the
    environment variable ``name`` (None where unset), in one lookup in
    ``os.environ``'s own dict on CPython, with the key encoded once:
    ``os.environ.get`` encodes the key at every call and, where the variable
    is unset, raises and catches a KeyError (1 to 1.3 µs, as much as the
    whole of a small call's dispatch). The raw value is bytes there
    (``environ.decodevalue`` makes it a str), and a str where ``data`` is
    ``environ`` itself (other platforms). The dict is the one
    ``os.environ[...] = ...`` updates; a caller reads this again where
    ``os.environ`` was replaced (as a test may do)."""
    env = os.environ
    data, encode = getattr(env, "_data", None), getattr(env, "encodekey", None)
    values = getattr(env, "encodevalue", None), getattr(env, "decodevalue", None)
    if isinstance(data, dict) and callable(encode) and all(map(callable, values)):
        return env, data, encode(name)
    return env, env, name


def _env_reader() -> tuple[Any, Any, Any, frozenset[Any]]:
    """``(environ, data, key, on)`` (:func:`env_lookup`): fast paths are on
    where ``data.get(key)`` returns one of ``on``."""
    env, data, key = env_lookup(_ENV)
    if data is env:
        return env, data, key, frozenset((None, "", "0"))
    return env, data, key, frozenset((None, env.encodevalue(""), env.encodevalue("0")))


_READ_ENV = _env_reader()


def enabled() -> bool:
    """Whether fast paths are used (the environment is read at every call)."""
    global _READ_ENV
    if _DISABLED_DEPTH:
        return False
    env, data, key, on = _READ_ENV
    if env is not os.environ:  # (replaced, as a test may do)
        env, data, key, on = _READ_ENV = _env_reader()
    return data.get(key) in on


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this block every call takes the generic path."""
    global _DISABLED_DEPTH
    _DISABLED_DEPTH += 1
    try:
        yield
    finally:
        _DISABLED_DEPTH -= 1


_BY_TYPE: dict[type, ModuleType | None] = {}


def _backend_for(tp: type) -> ModuleType | None:
    """The fast-path module for arrays of type ``tp`` (None: no fast path)."""
    try:
        return _BY_TYPE[tp]
    except KeyError:
        pass
    root = tp.__module__.split(".")[0]
    mod: ModuleType | None = None
    np = sys.modules.get("numpy")
    if root == "numpy" and np is not None and tp is np.ndarray:
        from . import _numpy as mod
    elif root == "dask":
        da = sys.modules.get("dask.array")
        if da is not None and issubclass(tp, da.Array):
            from . import _dask as mod
    elif root in ("jax", "jaxlib"):
        jax = sys.modules.get("jax")
        # (a tracer, under jax.jit, vmap or grad, is an instance of jax.Array
        # but not a subclass of it)
        tracer = any(c.__name__ == "Tracer" for c in tp.__mro__[1:])
        if jax is not None and (issubclass(tp, jax.Array) or tracer):
            from . import _jax as mod
    elif root == "torch":
        torch = sys.modules.get("torch")
        if torch is not None and issubclass(tp, torch.Tensor):
            from . import _torch as mod
    _BY_TYPE[tp] = mod
    return mod


def fastpath(func: str, x: Any, xp: ModuleType | None) -> Callable[..., Any] | None:
    """The fast path for ``func`` on ``x``, or None. The caller calls it with
    its own arguments and takes its result unless it is NotImplemented.

    Every public function asks this first, so it is kept to a few
    dictionary lookups, and it does not call the fast path itself: passing
    the caller's keywords on through ``**kwargs`` cost 0.2 µs, where a 32x10
    native call takes 1 to 5 µs. (The function is looked up in its module at
    every call, so that a test may replace it.)"""
    if xp is not None or _DISABLED_DEPTH:
        return None
    env, data, key, on = _READ_ENV
    # (enabled() again where the quick look says off, or os.environ changed)
    if (data.get(key) not in on or env is not os.environ) and not enabled():
        return None
    tp = type(x)
    mod = _BY_TYPE[tp] if tp in _BY_TYPE else _backend_for(tp)
    return None if mod is None else getattr(mod, func, None)


def plain_cross_entropy(
    weight: Any, ignore_index: Any, label_smoothing: Any, reduction: Any, where: Any
) -> bool:
    """The ``cross_entropy`` options every fast path takes: no weight, mask
    or smoothing, a known reduction, and an int ``ignore_index`` or none.
    (Anything else, valid or not, is left to the generic code.)"""
    return (
        weight is None
        and where is None
        and type(label_smoothing) in (int, float)
        and label_smoothing == 0
        and reduction in ("mean", "sum", "none")
        and (ignore_index is None or type(ignore_index) is int)
    )
