"""PyTorch fast paths (CPU tensors): native kernels plus the exact parts.

The generic code issues some twenty separate tensor operations for one
softmax; each is a pass over memory and an allocation. Here, for a float32
or float64 CPU tensor, no mask, weight or temperature, and one reduced
axis, the same values come from far fewer passes:

* **Small tensors** (at most :data:`SMALL` elements, no autograd): there
  the cost is per operation, and a torch operation costs several
  microseconds. Contiguous ones reduced along their last axis run the C
  kernel on their own memory (:func:`_small`, :func:`_small_ce`: one call,
  by address, into a new tensor, each call checked once, ahead of the
  general route); the others the NumPy fast path on a
  zero-copy view of their memory (:func:`_via_numpy`). Large contiguous
  tensors reduced along their last axis take :func:`_small` (or, with an
  axis that is not an int, :func:`_at`) too, their rows split over the C
  kernel's threads.
* **float32** runs torch's own fused kernels *in float64*
  (``torch.softmax(x, dim, dtype=torch.float64)`` and friends) and rounds
  once. The difference of two float32 numbers within the cut-off is exact
  in float64 (``tests/test_fastpaths.py`` checks it), so the shift by the
  maximum loses nothing, and ``exp``, the sum and ``log`` are float64
  accurate: far below float32's resolution. The one place where float64 is
  not enough is ``log`` of a sum within ``2^-16`` of 1 (a row dominated
  by one entry): there ``log(1 + r)`` needs ``log1p(r)``, so such rows,
  found from the result itself, are recomputed with the float64 kernel
  below on a float64 copy of those rows (with autograd: by the generic code).
* **float64** computes the kernel of :mod:`xact._kernel` (TwoSum error of
  ``x - m``, the maximum entries counted, ``log1p`` of the rest) with
  in-place operations on three buffers owned by the call, without autograd.
  With ``requires_grad`` it declines: the generic path differentiates.
* **sigmoid**: the C kernel's one pass (``_ckernel.sigmoid_at``): for
  float64 and small float32 tensors the NumPy path's float64 formula, for
  large float32 ones a float32-lane kernel (within 0.78 ULP over every
  float32 input, subnormal results kept; float64 lanes took twice torch's
  time there). Where the C
  kernel is not built (or, for large float32, without AVX-512) or the
  tensor is not contiguous: :func:`torch.sigmoid`, which is within 2 ULP of
  the truth except where ``exp(-x)`` overflows (``x < -88``); there
  ``sigmoid(x) = exp(x)`` to the last bit, and those entries (found with
  one ``amin``) are recomputed that way. Its backward, ``y (1 - y)``,
  cancels for large ``x``, so with ``requires_grad`` it declines.
* **log_sigmoid** and **softplus**: :func:`torch.nn.functional.logsigmoid`
  evaluates ``min(x, 0) - log1p(exp(-|x|))``, the generic formula, in one
  kernel; :func:`torch.nn.functional.softplus` evaluates
  ``log1p(exp(beta x)) / beta`` below a ``threshold`` and ``x`` above, and
  with the threshold set per dtype where ``exp(-beta x)`` is below half an
  ULP of ``beta x`` (float64: 40, float32: 20) ``x`` *is* the correctly
  rounded result there. Large float64 tensors without autograd (and
  ``beta`` 1) take the C kernel instead (``_ckernel.log1p_exp_at``, the
  NumPy path's bits, over its threads: torch's float64 ``log1p`` is not
  vectorised).

Rows whose maximum is not finite (+inf, all -inf, NaN) follow special rules;
they are rare, and are recomputed by the generic code, which defines them,
from an input where they were zeroed first so that no NaN reaches the
autograd graph of the fast part.

Everything else declines with ``NotImplemented``: CUDA and other devices
(no GPU was available to test them), integer, complex and low-precision
dtypes, ``where=``, ``b=``, ``return_sign``, several axes, empty tensors,
and tracing (``torch.compile``, ``torch.func`` transforms), because the
row check above is a data-dependent branch; the generic code traces.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import LARGEST_MAX, _numpy, _parallel, plain_cross_entropy

__all__ = [
    "SMALL",
    "cross_entropy",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softmin",
    "softplus",
]

_THRESHOLD: dict[Any, int] = {}
_ITEMSIZE: dict[Any, int] = {}
_SIGMOID_TAIL: dict[Any, float] = {}
_TINY_LOG = 2.0**-16
"""On the float32 path, rows whose log-sum ``log(k + r)`` is below this are
recomputed where ``log1p`` of the rest matters (see the module docstring)."""


def _tables() -> None:
    global _F_LOGSIGMOID, _F_SOFTPLUS, _F64
    import torch
    import torch.nn.functional as F

    _F_LOGSIGMOID, _F_SOFTPLUS, _F64 = F.logsigmoid, F.softplus, torch.float64
    _THRESHOLD.update({torch.float64: 40, torch.float32: 20})
    _ITEMSIZE.update({torch.float64: 8, torch.float32: 4})
    # Below these, exp(-x) overflows in torch.sigmoid; exp(x) is exact there.
    _SIGMOID_TAIL.update({torch.float64: -700.0, torch.float32: -80.0})


_F_LOGSIGMOID: Any = None
_F_SOFTPLUS: Any = None
_F64: Any = None


_MODULES: tuple[Any, Any, Any] | None = None
_WATCHERS: tuple[Any, ...] = ()


def _modules() -> tuple[Any, Any, Any]:
    """torch, torch.autograd.forward_ad and torch.nn.functional, imported
    once (an import statement in :func:`_plain` cost a microsecond a call),
    and the functions :func:`_plain` asks, looked up once."""
    global _MODULES, _CPU, _WATCHERS
    import torch
    import torch.nn.functional as F
    from torch.autograd import forward_ad

    _CPU = torch.device("cpu")
    _WATCHERS = (
        torch.compiler.is_compiling,
        torch._C._get_tracing_state,  # (torch.jit.is_tracing())
        torch._C._len_torch_dispatch_stack,
        torch._C._functorch.is_functorch_wrapped_tensor,
        forward_ad,
        forward_ad.unpack_dual,
    )
    _MODULES = (torch, forward_ad, F)
    return _MODULES


_CPU: Any = None
"""torch.device("cpu"), for every tensor the fast paths create (outputs,
buffers, constants): ``torch.empty`` without a device would follow
``torch.set_default_device``."""


def _plain(x: Any, *, min_ndim: int = 1) -> bool:
    """A float32/float64 CPU tensor, not empty, and no transform watching:
    not ``torch.compile``, ``torch.jit.trace``, a ``TorchDispatchMode``
    (``make_fx``, fake tensors), a ``torch.func`` transform or a forward-mode
    dual tensor. Those see what the generic code does (the fast paths branch
    on data, write in place and, for small tensors, leave torch for NumPy).
    A reduction needs an axis: ``min_ndim`` 1. (Every small call asks this:
    it is written for speed, about half a microsecond.)"""
    if not _THRESHOLD:
        _tables()
    if x.dtype not in _THRESHOLD or not x.is_cpu or x.ndim < min_ndim:
        return False
    return not _watched(x) and x.numel() != 0


def _watched(x: Any) -> bool:
    """Whether a transform watches: see :func:`_plain`."""
    if not _WATCHERS:
        _modules()
    compiling, tracing, modes, wrapped, forward_ad, unpack_dual = _WATCHERS
    return bool(
        compiling()
        or tracing() is not None
        or modes() > 0
        or wrapped(x)
        # (a dual tensor exists only within a dual level: none, no lookup)
        or (getattr(forward_ad, "_current_level", 0) >= 0 and unpack_dual(x).tangent is not None)
    )


def _dim(x: Any, axis: Any) -> int | None:
    """The one reduced dimension, or None where the fast path declines."""
    if type(axis) is tuple:
        if len(axis) != 1:
            return None
        (axis,) = axis
    if type(axis) is not int or not -x.ndim <= axis < x.ndim:
        return None
    return axis % int(x.ndim)


def _needs_grad(x: Any) -> bool:
    return bool(x.requires_grad) and (_MODULES or _modules())[0].is_grad_enabled()


# --------------------------------------------------------------------------
# The log-sum-exp family


def _generic_rows(func: str, x: Any, dim: int, bad: Any, out: Any) -> Any:
    """``out`` with the rows (along ``dim``) flagged in ``bad`` (the shape of
    ``x`` with ``dim`` of length 1) replaced by the generic result."""
    import xact

    from . import disabled

    n = x.shape[dim]
    idx = bad.movedim(dim, -1).reshape(-1).nonzero().squeeze(1)
    rows = x.movedim(dim, -1).reshape(-1, n).index_select(0, idx)
    with disabled():
        fixed = getattr(xact, func)(rows, axis=-1)
    if func == "logsumexp":  # out has the shape of bad
        flat = out.movedim(dim, -1).reshape(-1).index_copy(0, idx, fixed)
        return flat.reshape(out.movedim(dim, -1).shape).movedim(-1, dim)
    shape = out.movedim(dim, -1).shape
    flat = out.movedim(dim, -1).reshape(-1, n).index_copy(0, idx, fixed)
    return flat.reshape(shape).movedim(-1, dim)


def _via_float64(func: str, x: Any, dim: int) -> Any:
    """float32: torch's fused kernels in float64, rounded once."""
    import torch

    m = x.detach().amax(dim, keepdim=True)
    fin = torch.isfinite(m)
    all_fin = bool(fin.all())
    xf = x if all_fin else x.masked_fill(~fin, 0.0)
    f64 = torch.float64
    if func == "softmax":
        out = torch.softmax(xf, dim, dtype=f64).to(x.dtype)
        bad = None if all_fin else ~fin
    else:
        lp = torch.log_softmax(xf, dim, dtype=f64)
        # -log(k + r): the value at the maximum entries.
        neg_lg = lp.detach().amax(dim, keepdim=True)
        if func == "log_softmax":
            out = lp.to(x.dtype)
            small = neg_lg > -_TINY_LOG
        else:
            lse64 = m.to(f64) - neg_lg
            # lse = m + log(k + r) is as accurate as float64 allows in
            # absolute terms; relative to float32 only where it is not tiny.
            small = lse64.abs() < _TINY_LOG * (1.0 + m.to(f64).abs())
            if x.requires_grad and torch.is_grad_enabled():
                # lse = x_j - log_softmax(x)_j at the maximum entry j; its
                # gradient is softmax(x), as for any logsumexp.
                j = xf.detach().argmax(dim, keepdim=True)
                lse64 = xf.gather(dim, j).to(f64) - lp.gather(dim, j)
            out = lse64.to(x.dtype)
        bad = small if all_fin else small | ~fin
    if bad is not None and bool(bad.any()):
        out = _generic_rows(func, x, dim, bad, out)
    return out


SMALL = 1 << 14
"""CPU tensors up to this many elements, without autograd, take the NumPy
fast path on a zero-copy view of their memory (:func:`_via_numpy`)."""


def _at(func: str, x: Any, dim: int | None, lse_shape: Any = None) -> Any:
    """A contiguous tensor reduced along its last axis (or along all of it
    for ``dim`` None), without autograd, through the C kernel on its own
    memory (``_ckernel.rows_at``), into a new tensor. No NumPy view and no
    torch operation but the output's allocation:

    * small tensors (at most :data:`SMALL` elements): a view cost as much as
      the arithmetic (a 32x10 softmax: 15 µs through :func:`_via_numpy`,
      5 µs for ``torch.softmax``);
    * large ones: after a large call, each torch operation ahead of the
      kernel runs with cold caches (10 to 40 µs for a ``movedim`` or a
      ``reshape``, measured after a 64x50257 softmax); their rows are split
      over the C kernel's OpenMP threads as :func:`._numpy._c_rows` splits
      them (where it has none, NotImplemented: the NumPy path splits them
      over Python threads). The kernel advises an output of 4 MiB or more
      ``MADV_HUGEPAGE`` before it writes it (:func:`._numpy._follow_numpy_hugepages`),
      as it does for sigmoid's: on a fresh 128 MiB output the page faults
      of 4 KiB pages cost more than the arithmetic.

    For logsumexp the result has the shape ``lse_shape``. NotImplemented
    where it does not apply, or where a row has no finite maximum (the
    caller's path then runs, and recomputes the whole call)."""
    ck = _numpy._ck
    torch = (_MODULES or _modules())[0]
    f64 = x.dtype == torch.float64
    isz = 8 if f64 else 4
    if (
        ck is None
        or not x.is_contiguous()
        or x.is_neg()
        or x.data_ptr() % isz  # (the kernel reads whole floats)
        or (dim is not None and dim != x.ndim - 1)
        or _needs_grad(x)
    ):
        return NotImplemented
    size = x.numel()
    n = size if dim is None else x.shape[-1]
    mode = _numpy.C_MODES[func]
    out = _rows_into(ck, torch, x, x.data_ptr(), isz, size, n, mode, lse_shape)
    return NotImplemented if out is _TRIED else out


def _rows_into(
    ck: Any, torch: Any, x: Any, ptr: int, isz: int, size: int, n: int, mode: int, lse_shape: Any
) -> Any:
    """The C kernel's rows of n (``mode``: ``_numpy.C_MODES``) of the
    checked, contiguous tensor ``x`` (``size`` elements at ``ptr``) into a
    new tensor (for logsumexp, of ``lse_shape``), for :func:`_small` and
    :func:`_at`: above :data:`SMALL` elements split over the kernel's OpenMP
    threads. NotImplemented where rows are longer than
    :data:`._numpy.MAX_ROW` or threads are planned where OpenMP is not (a
    forked child); :data:`_TRIED` where a row has no finite maximum."""
    threads = chunk = 1
    if size > SMALL:
        if n > _numpy.MAX_ROW:
            return NotImplemented
        threads, chunk = _parallel.plan(size // n, n)
        if threads > 1 and not ck.openmp():
            return NotImplemented
    # (x is a CPU tensor: new_empty and empty_like make theirs there, with x's
    # dtype; empty_like keeps x's strides, contiguous here. Each is 0.2 to
    # 0.3 µs quicker than torch.empty with a dtype and device, or
    # empty_like with a memory format: a 32x10 call is 5 µs.)
    out = torch.empty_like(x) if mode else x.new_empty(lse_shape)
    if ck.rows_at(ptr, n * isz, size // n, n, out.data_ptr(), mode, isz == 8, threads, chunk):
        return _TRIED
    return out


def _small(x: Any, axis: Any, mode: int, keepdims: bool = False) -> Any:
    """The common call, checked once: logsumexp (``mode`` 0, with
    ``keepdims``), softmax (1) or log_softmax (2) of a contiguous float32 or
    float64 CPU tensor along its last axis (an int), without autograd, with
    no transform watching (see :func:`_plain`), in one call of the C kernel
    on its memory: what :func:`_at` does for it, without the general
    route's layers and repeated checks (a microsecond of a 32x10 call's 3
    to 5; for a large call 3 µs, and 10 to 15 µs with the caches cold after
    a large torch operation). Above :data:`SMALL` elements its rows are
    split over the kernel's OpenMP threads, as :func:`_at` splits them.
    NotImplemented for anything else (rows longer than
    :data:`._numpy.MAX_ROW`, a forked child without OpenMP), and
    :data:`_TRIED` where a row has no finite maximum: the general route
    then runs."""
    ck = _numpy._ck
    if ck is None or type(axis) is not int:
        return NotImplemented
    if not _ITEMSIZE:
        _tables()
    isz = _ITEMSIZE.get(x.dtype)
    ndim = x.ndim
    # (_watched first: torch.compile traces this code, and cannot trace
    # is_neg or data_ptr)
    if isz is None or ndim == 0 or (axis != -1 and axis != ndim - 1) or _watched(x):
        return NotImplemented
    size = x.numel()
    if not size or not x.is_cpu or not x.is_contiguous() or x.is_neg():
        return NotImplemented
    torch = (_MODULES or _modules())[0]
    if x.requires_grad and torch.is_grad_enabled():
        return NotImplemented
    ptr = x.data_ptr()
    if ptr % isz:  # (the kernel reads whole floats)
        return NotImplemented
    n = x.shape[-1]
    shape = None if mode else (*x.shape[:-1], 1) if keepdims else x.shape[:-1]
    return _rows_into(ck, torch, x, ptr, isz, size, n, mode, shape)


_TRIED = object()
"""What :func:`_small` returns where the kernel ran and found a row without
a finite maximum: the general route then runs, without :func:`_at`."""


def _via_numpy(func: str, x: Any, target: Any = None, **kw: Any) -> Any:
    """A small tensor through the NumPy fast path of :mod:`._numpy`.

    At this size a call is all per-operation overhead: a torch operation
    costs 2-5 µs, a NumPy ufunc about 0.5 µs, and the float64 kernel is two
    dozen of them (a 32x10 softmax: 130 µs as torch operations, 20 µs as
    NumPy ones). ``Tensor.numpy()`` of a CPU tensor shares its memory, so
    the input is not copied; the (small) result is copied once into a CPU
    tensor of the input's dtype. The NumPy path gives the generic answers
    under the same tests. NotImplemented where it does not apply (large or
    autograd inputs) or where the NumPy path declines (the torch path then
    runs)."""
    if x.numel() > SMALL or _needs_grad(x) or x.is_neg():
        return NotImplemented
    import torch

    if target is not None:
        if target.is_neg():
            return NotImplemented
        kw["target"] = target.numpy()
    r = getattr(_numpy, func)((x.detach() if x.requires_grad else x).numpy(), **kw)
    if r is NotImplemented:
        return r
    # A copy (a few µs at most here) into memory torch owns: a tensor over
    # NumPy's memory cannot be resized, as an ``out=`` argument may need.
    return torch.from_numpy(np.asarray(r)).clone()


_BLOCK = 1 << 18
"""Elements per block of rows: the temporaries of a block stay in the CPU
cache and are reused, instead of a fresh full-size tensor per step (whose
page faults cost more than the arithmetic)."""


def _row_max(blk: Any) -> tuple[Any, Any, Any]:
    """The maxima (rows, 1) of the rows ``blk`` (rows, n), the mask of the
    rows whose maximum is not finite (None if there are none), and ``blk``;
    those rows get garbage-free stand-ins (0) in both, and are recomputed by
    the caller."""
    m = blk.amax(1, keepdim=True)
    fin = m.abs() < LARGEST_MAX  # finite, and so is the clip bound
    if bool(fin.all()):
        return m, None, blk
    bad = ~fin
    return m.masked_fill(bad, 0.0), bad, blk.masked_fill(bad, 0.0)


def _kernel64(
    blk: Any, func: str, out: Any, s: Any, b: Any, e: Any, is_max: Any
) -> tuple[Any, Any, Any]:
    """float64 rows ``blk`` (rows, n): the kernel of xact._kernel, written
    into ``out`` (rows, n), or (rows, 1) for logsumexp and "parts", with the
    buffers ``s``, ``b``, ``e`` (float64) and ``is_max`` (bool) of ``blk``'s
    shape. Returns ``(bad, m, lg)``: the mask of rows (rows, 1) whose maximum
    is not finite (or None), the row maxima and ``log(k + r)``; "parts"
    writes nothing else."""
    import torch

    from .._kernel import CUTOFF

    m, bad, blk = _row_max(blk)
    lo = (m - CUTOFF) - m.abs() * 2.0**-50
    far = bool((blk.amin(1, keepdim=True) < lo).any())
    # Entries more than the cut-off below the maximum have exp == 0; raise
    # them to it so that every operand of TwoSum is finite.
    a = torch.maximum(blk, lo) if far else blk
    # TwoSum: a - m == s + e exactly.
    torch.sub(a, m, out=s)
    torch.sub(s, a, out=b)
    torch.sub(s, b, out=e)
    torch.sub(a, e, out=e)
    b.add_(m)
    e.sub_(b)
    torch.eq(s, 0.0, out=is_max)
    t = torch.exp(s, out=b)
    t.addcmul_(t, e)  # exp(s) * (1 + e)
    # The maximum entries are counted, not summed: added in, their ones
    # would swamp the rest's rounding (1000 terms of 2e-9 after a 1: 11 ULP).
    t.masked_fill_(is_max, 0.0)
    rest = t.sum(1, keepdim=True)
    k = torch.count_nonzero(is_max, dim=1).unsqueeze(1).to(torch.float64)
    if func == "softmax":
        torch.div(t.masked_fill_(is_max, 1.0), k + rest, out=out)
        return bad, m, None
    lg = torch.log1p((k - 1.0) + rest)
    if func == "logsumexp":
        torch.add(m, lg, out=out)
    elif func == "log_softmax":  # (s - lg) + e; (x - m) - lg below the cut-off
        torch.sub(s, lg, out=out)
        out.add_(e)
        if far:
            below = blk < lo
            out.copy_(torch.where(below, (blk - m) - lg, out))
    return bad, m, lg


def _float64_rows(rows: Any, func: str) -> tuple[Any, Any, Any, Any]:
    """_kernel64 on a float64 (rows, n) tensor with buffers of its own:
    ``(out, bad, m, lg)``."""
    import torch

    r, n = rows.shape
    s, b, e = (torch.empty((r, n), dtype=torch.float64, device=_CPU) for _ in range(3))
    is_max = torch.empty((r, n), dtype=torch.bool, device=_CPU)
    out = torch.empty(
        (r, n if func in ("softmax", "log_softmax") else 1), dtype=torch.float64, device=_CPU
    )
    bad, m, lg = _kernel64(rows, func, out, s, b, e, is_max)
    return out, bad, m, lg


def _float32_block(blk: Any, func: str, out: Any) -> tuple[Any, Any, Any]:
    """float32 rows through torch's kernels in float64 (see the module
    docstring); returns ``(bad, m, lg)`` as :func:`_kernel64` (float64)."""
    import torch

    m, bad, blk = _row_max(blk)
    m64 = m.to(torch.float64)
    if func == "softmax":
        out.copy_(torch.softmax(blk, 1, dtype=torch.float64))
        return bad, m64, None
    lp = torch.log_softmax(blk, 1, dtype=torch.float64)
    lg = -lp.amax(1, keepdim=True)  # log(k + r): minus the value at the maximum
    if func == "log_softmax":
        out.copy_(lp)
    elif func == "logsumexp":
        out.copy_(m64 + lg)
    # A sum within 2^-16 of 1 needs log1p of the rest: recompute those
    # rows with the float64 kernel, exact on float32 input.
    small = lg < _TINY_LOG
    if bad is not None:
        small &= ~bad
    if bool(small.any()):
        idx = small[:, 0].nonzero()[:, 0]
        o64, _, _, lg_s = _float64_rows(blk[idx].to(torch.float64), func)
        if func != "parts":
            out[idx] = o64.to(out.dtype)
        lg = lg.index_copy(0, idx, lg_s)
    return bad, m64, lg


def _row_blocks(func: str, x2: Any, out2: Any | None) -> tuple[Any, Any, Any]:
    """Run the kernel over ``x2`` (rows, n) in blocks of rows, writing
    ``out2``; returns the indices of the rows whose maximum is not finite
    (still to recompute), and for "parts" the row maxima and ``log(k + r)``
    (float64, (rows, 1))."""
    import torch

    rows, n = x2.shape
    rb = max(1, min(rows, _BLOCK // n))
    f64 = x2.dtype == torch.float64
    if f64:
        s, b, e = (torch.empty((rb, n), dtype=torch.float64, device=_CPU) for _ in range(3))
        is_max = torch.empty((rb, n), dtype=torch.bool, device=_CPU)
    parts = func == "parts"
    if parts:
        m_all = torch.empty((rows, 1), dtype=torch.float64, device=_CPU)
        lg_all = torch.empty((rows, 1), dtype=torch.float64, device=_CPU)
    bad_rows = []
    for r0 in range(0, rows, rb):
        r1 = min(rows, r0 + rb)
        h = r1 - r0
        o = None if out2 is None else out2[r0:r1]
        if f64:
            bad, m, lg = _kernel64(x2[r0:r1], func, o, s[:h], b[:h], e[:h], is_max[:h])
        else:
            bad, m, lg = _float32_block(x2[r0:r1], func, o)
        if parts:
            m_all[r0:r1] = m
            lg_all[r0:r1] = lg
        if bad is not None:
            bad_rows.append(r0 + bad[:, 0].nonzero()[:, 0])
    idx = torch.cat(bad_rows) if bad_rows else None
    return (idx, m_all, lg_all) if parts else (idx, None, None)


def _blocked(func: str, x: Any, dim: int) -> Any:
    """Without autograd: rows along ``dim`` in blocks, into a new output."""
    import torch

    import xact

    from . import disabled

    n = x.shape[dim]
    xt = x.movedim(dim, -1)
    x2 = xt.reshape(-1, n)  # a view when dim is last and x contiguous
    if not x2.is_contiguous():
        x2 = x2.contiguous()
    out2 = torch.empty((x2.shape[0], 1 if func == "logsumexp" else n), dtype=x.dtype, device=_CPU)
    idx, _, _ = _row_blocks(func, x2, out2)
    if idx is not None:
        # Rows without a finite maximum follow the generic rules.
        kw = {"keepdims": True} if func == "logsumexp" else {}
        with disabled():
            out2[idx] = getattr(xact, func)(x2[idx], axis=-1, **kw)
    if func == "logsumexp":
        return out2.reshape((*xt.shape[:-1], 1)).movedim(-1, dim)
    return out2.reshape(xt.shape).movedim(-1, dim)


def _c_rows(func: str, x2: Any, out2: Any) -> None:
    """The C kernel of :mod:`._numpy` (``_ckernel.c``) on the rows of the
    CPU tensor ``x2`` (unit stride along a row) into ``out2``: both through
    ``Tensor.numpy()``, which shares their memory, so nothing is copied and
    the result is in memory torch owns. Rows without a finite maximum get
    the generic answers (:func:`._numpy._c_rows`); in "parts" mode such a
    row raises ``_numpy._NotFinite``."""
    _numpy._c_rows(x2.numpy(), func, out2.numpy())


def _via_c(func: str, x: Any, dim: int) -> Any:
    """Without autograd, where the C kernel is built: rows along ``dim``
    (made contiguous if they are not) into a new output."""
    import torch

    n = x.shape[dim]
    if n > _numpy.MAX_ROW or x.is_neg():
        return NotImplemented
    xt = x.detach().movedim(dim, -1)
    x2 = xt.reshape(-1, n)  # a view when dim is last and x contiguous
    if x2.stride(1) != 1:
        x2 = x2.contiguous()
    out2 = torch.empty((x2.shape[0], 1 if func == "logsumexp" else n), dtype=x.dtype, device=_CPU)
    _c_rows(func, x2, out2)
    if func == "logsumexp":
        return out2.reshape((*xt.shape[:-1], 1)).movedim(-1, dim)
    return out2.reshape(xt.shape).movedim(-1, dim)


def _reduction(func: str, x: Any, axis: Any, tried: bool = False) -> Any:
    """The general route; ``tried``: :func:`_small` ran the kernel on these
    rows and found one without a finite maximum, which :func:`_at` would
    find again (a whole pass over a large tensor), so it is skipped."""
    if not _plain(x):
        return NotImplemented
    dim = _dim(x, axis)
    if dim is None:
        return NotImplemented
    if not _needs_grad(x):
        if func != "logsumexp":
            r = NotImplemented if tried else _at(func, x, dim)
            if r is not NotImplemented:
                return r
            r = _via_numpy(func, x, axis=axis, where=None, temperature=1)
            if r is not NotImplemented:
                return r
        if _numpy.c_kernel_built():
            r = _via_c(func, x, dim)
            if r is not NotImplemented:
                return r
        return _blocked(func, x, dim)
    import torch

    if x.dtype == torch.float32:
        return _via_float64(func, x, dim)
    return NotImplemented


def logsumexp(x: Any, *, axis: Any, keepdims: bool, b: Any, return_sign: bool, where: Any) -> Any:
    if b is not None or where is not None or return_sign:
        return NotImplemented
    if (r := _small(x, axis, 0, keepdims)) is not NotImplemented and r is not _TRIED:
        return r
    tried = r is _TRIED  # (then _at would find the same rows: see _reduction)
    if not _plain(x):
        return NotImplemented
    if axis is None:
        r = _at("logsumexp", x, None, (1,) * x.ndim if keepdims else ())
    elif (dim := _dim(x, axis)) is not None:
        shape = x.shape[:dim]
        r = (
            NotImplemented
            if tried
            else _at("logsumexp", x, dim, (*shape, 1) if keepdims else shape)
        )
    else:
        return NotImplemented
    if r is not NotImplemented:
        return r
    kw = {"axis": axis, "keepdims": keepdims, "b": None, "return_sign": False, "where": None}
    if (r := _via_numpy("logsumexp", x, **kw)) is not NotImplemented:
        return r
    if axis is None:
        out = _reduction("logsumexp", x.reshape(1, -1), 1)
        if out is NotImplemented:
            return out
        return out.reshape((1,) * x.ndim if keepdims else ())
    out = _reduction("logsumexp", x, axis)
    if out is NotImplemented or keepdims:
        return out
    return out.squeeze(_dim(x, axis))


def _normalise(
    func: str, x: Any, axis: Any, where: Any, temperature: Any, tried: bool = False
) -> Any:
    if where is not None or type(temperature) not in (int, float) or temperature != 1:
        return NotImplemented
    return _reduction(func, x, axis, tried)


def softmax(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    plain = where is None and temperature == 1 and type(temperature) in (int, float)
    r = _small(x, axis, 1) if plain else NotImplemented
    if r is not NotImplemented and r is not _TRIED:
        return r
    return _normalise("softmax", x, axis, where, temperature, r is _TRIED)


def log_softmax(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    plain = where is None and temperature == 1 and type(temperature) in (int, float)
    r = _small(x, axis, 2) if plain else NotImplemented
    if r is not NotImplemented and r is not _TRIED:
        return r
    return _normalise("log_softmax", x, axis, where, temperature, r is _TRIED)


def softmin(x: Any, *, axis: Any, where: Any, temperature: Any) -> Any:
    # softmax(-x): negation is exact and swaps the infinities, as softmin's
    # rules do; autograd flows through it.
    if (
        not _plain(x)
        or where is not None
        or type(temperature) not in (int, float)
        or temperature != 1
        or _dim(x, axis) is None
    ):
        return NotImplemented  # (before -x is made)
    return _normalise("softmax", -x, axis, where, temperature)


# --------------------------------------------------------------------------
# The sigmoid family


def sigmoid(x: Any) -> Any:
    # torch.sigmoid's backward, y (1 - y), cancels for large x (0.1% off at
    # x = 30); the generic path differentiates sigmoid(x) sigmoid(-x).
    # (the checks of _plain and _needs_grad, each made once: a 32x10 call
    # competes with torch.sigmoid's 1.2 µs)
    if not _ITEMSIZE:
        _tables()
    isz = _ITEMSIZE.get(x.dtype)
    torch = (_MODULES or _modules())[0]
    if (
        isz is None
        or _watched(x)  # (first: see _small)
        or not x.is_cpu
        or (x.requires_grad and torch.is_grad_enabled())
        or x.numel() == 0
    ):
        return NotImplemented
    ck = _numpy._ck
    f64 = isz == 8
    if (
        ck is not None
        and x.is_contiguous()
        and not x.is_neg()
        and not x.data_ptr() % isz  # (the kernel reads whole floats)
    ):
        # One pass of the C kernel on the tensor's memory. float64, and
        # float32 up to SMALL elements: the NumPy path's float64 formula
        # (float32 correctly rounded; float64 in 0.8x torch.sigmoid's time).
        # Larger float32: in float32 lanes (within 0.78 ULP over every
        # float32, subnormal results kept), where float64 lanes took twice
        # torch.sigmoid's time; AVX-512 only (else torch.sigmoid).
        n = x.numel()
        nt, chunk = (1, 1) if n <= SMALL else _parallel.plan(n, 1)
        if nt == 1 or ck.openmp():
            out = torch.empty_like(x)  # (contiguous, as x is)
            lanes = not f64 and n > SMALL
            if ck.sigmoid_at(x.data_ptr(), out.data_ptr(), n, f64, nt, chunk, lanes):
                return out
    out = torch.sigmoid(x)
    tail = _SIGMOID_TAIL[x.dtype]
    low = x.detach().amin()
    # (amin is NaN if x has a NaN; then look at every entry.)
    if bool(low < tail) or (bool(low.isnan()) and bool((x.detach() < tail).any())):
        # exp(-x) overflowed: sigmoid(x) = exp(x) / (1 + exp(x)) = exp(x)
        # exactly in this dtype. (The clamp keeps exp finite in the branch
        # that is not taken, so that its gradient is 0, not NaN.)
        out = torch.where(x < tail, torch.exp(torch.clamp(x, max=tail)), out)
    return out


def _log1p_exp_at(x: Any, sign: int) -> Any:
    """log_sigmoid (``sign`` -1) or softplus (+1) of a large float64 tensor
    (more than :data:`SMALL` elements), without autograd, through the C
    kernel on its memory (``_ckernel.log1p_exp_at``: the NumPy path's
    arithmetic and bits), its elements split over the kernel's threads,
    into a new tensor; NotImplemented where it does not apply (without
    AVX-512 the kernel declines). On the CPU measured (AMD Zen 4, two
    threads) it took 0.55x the time of torch's kernels, whose float64
    ``log1p`` is not vectorised. Not for float32, where torch's float32
    kernels are quicker than the C kernel's float64 arithmetic (1.46x), nor
    for small tensors, where the checks and the allocation cost more than
    they save (3.3 µs against F.logsigmoid's 3.0 at 32x10)."""
    ck = _numpy._ck
    if (
        ck is None
        or not _plain(x, min_ndim=0)
        or _needs_grad(x)
        or not x.is_contiguous()
        or x.is_neg()
        or x.data_ptr() % 8  # (the kernel reads whole floats)
    ):
        return NotImplemented
    n = x.numel()
    threads, chunk = _parallel.plan(n, 1)
    if threads > 1 and not ck.openmp():
        return NotImplemented
    # (no values: whether the kernel is in use, before a full-size output)
    if not ck.log1p_exp_at(x.data_ptr(), x.data_ptr(), 0, 1, sign):
        return NotImplemented
    out = (_MODULES or _modules())[0].empty_like(x)  # (contiguous, as x is)
    ck.log1p_exp_at(x.data_ptr(), out.data_ptr(), n, 1, sign, threads, chunk)
    return out


def log_sigmoid(x: Any) -> Any:
    if not _THRESHOLD:
        _tables()
    dt = x.dtype
    if dt not in _THRESHOLD:
        return NotImplemented
    if dt is _F64 and x.numel() > SMALL and (r := _log1p_exp_at(x, -1)) is not NotImplemented:
        return r
    # F.logsigmoid: the generic formula in one kernel, with autograd.
    return _F_LOGSIGMOID(x)


def softplus(x: Any, *, beta: Any) -> Any:
    if not _THRESHOLD:
        _tables()
    if (threshold := _THRESHOLD.get(x.dtype)) is None:
        return NotImplemented
    if beta == 1 and threshold == 20 and type(beta) in (int, float):
        # torch's defaults (parsing them costs a third of a 32x10 call)
        return _F_SOFTPLUS(x)
    if type(beta) not in (int, float) or not (math.isfinite(beta) and beta > 0):
        return NotImplemented
    if beta == 1:
        if x.numel() > SMALL and (r := _log1p_exp_at(x, 1)) is not NotImplemented:
            return r
        beta = 1  # (an int and the int threshold: torch parses them quicker)
    return _F_SOFTPLUS(x, beta, threshold)


# --------------------------------------------------------------------------
# cross_entropy with class indices


def _ce_loss(logits: Any, t: Any, safe: Any, ignore_index: Any) -> Any:
    """Without autograd: each sample's loss, in the logits' dtype (where a
    target is out of range and not ignored, any value: the caller puts NaN
    there), or NotImplemented for a row without a finite maximum."""
    import torch

    x2 = logits if logits.is_contiguous() else logits.contiguous()
    x2 = x2.detach()
    if _numpy.c_kernel_built() and not x2.is_neg():
        # Each sample's loss in the C kernel, on views of the memory (NaN
        # where a target is out of range: that row is not read).
        loss64 = torch.empty(t.shape, dtype=torch.float64, device=_CPU)
        n_bad, _, _ = _numpy.c_cross_entropy_loss(
            x2.numpy(), t.resolve_neg().contiguous().numpy(), ignore_index, loss64.numpy()
        )
        if n_bad:
            return NotImplemented
        return loss64.to(logits.dtype)
    idx, m, lg = _row_blocks("parts", x2, None)
    if idx is not None:
        return NotImplemented
    xt = x2.gather(1, safe).to(torch.float64)
    d = xt - m  # exact for float32 input
    if logits.dtype == torch.float64:
        b = d - xt  # TwoSum: xt - m == d + e
        e = (xt - (d - b)) - (m + b)
        loss64 = (lg - d) - e
    else:
        loss64 = lg - d
    return loss64[:, 0].to(logits.dtype)


def _small_ce(
    logits: Any,
    target: Any,
    axis: Any,
    weight: Any,
    ignore_index: Any,
    label_smoothing: Any,
    reduction: Any,
    where: Any,
) -> Any:
    """:func:`cross_entropy` of small (N, C) logits with int64 targets, the
    common small call checked once (as :func:`_small`): the losses and
    their reduction in one call of the C kernel
    (``_ckernel.cross_entropy_at``), which sums them as the NumPy path does
    (NumPy's pairwise sum of the float64 losses). NotImplemented for
    anything else, or for a row without a finite maximum or a target out of
    range: the general route then runs."""
    ck = _numpy._ck
    if (
        ck is None
        or type(axis) is not int
        or type(reduction) is not str
        or not plain_cross_entropy(weight, ignore_index, label_smoothing, reduction, where)
    ):
        return NotImplemented
    if not _ITEMSIZE:
        _tables()
    isz = _ITEMSIZE.get(logits.dtype)
    torch = (_MODULES or _modules())[0]
    if (
        isz is None
        or logits.ndim != 2
        or axis not in (-1, 1)
        or _watched(logits)  # (first: see _small)
        or not 0 < logits.numel() <= SMALL
        or not logits.is_cpu
        or not logits.is_contiguous()
        or logits.is_neg()
        or type(target) is not torch.Tensor
        or target.dtype is not torch.int64
        or target.ndim != 1
        or not target.is_cpu
        or not target.is_contiguous()
        or target.is_neg()
        or (logits.requires_grad and torch.is_grad_enabled())
    ):
        return NotImplemented
    rows, n = logits.shape
    ptr, tptr = logits.data_ptr(), target.data_ptr()
    if target.shape[0] != rows or ptr % isz or tptr % 8:  # (whole floats and integers)
        return NotImplemented
    red = _numpy.C_REDUCTIONS[reduction]
    out = logits.new_empty(target.shape if red == 0 else ())  # (on the CPU, as logits)
    if not ck.cross_entropy_at(
        ptr, n * isz, rows, n, isz == 8, tptr, ignore_index, red, out.data_ptr()
    ):
        return NotImplemented
    return out


def cross_entropy(
    logits: Any,
    *,
    target: Any,
    axis: Any,
    weight: Any,
    ignore_index: Any,
    label_smoothing: Any,
    reduction: Any,
    where: Any,
) -> Any:
    """``(N, C)`` logits, ``(N,)`` integer targets, no weight, mask or
    smoothing: the loss of sample ``i`` is ``log(k + r) - (x_{i,y} - m)``
    from the row maximum ``m`` and ``log(k + r)`` of the kernel, without
    the log-probabilities of the other classes ever being written. The
    target's difference ``x_{i,y} - m`` is exact (float64 for float32
    input, TwoSum for float64), so a confident, correct prediction (loss
    near 0) keeps its relative accuracy."""
    args = (logits, target, axis, weight, ignore_index, label_smoothing, reduction, where)
    if (r := _small_ce(*args)) is not NotImplemented:
        return r
    torch = (_MODULES or _modules())[0]
    if (
        not plain_cross_entropy(weight, ignore_index, label_smoothing, reduction, where)
        or not _plain(logits)
        or logits.ndim != 2
        or type(axis) is not int
        or axis not in (-1, 1)
        or not isinstance(target, torch.Tensor)
        or not target.is_cpu  # (as logits, by _plain)
        or target.ndim != 1
        or target.shape[0] != logits.shape[0]
        or (
            target.dtype is not torch.int64
            and (
                target.dtype in (torch.bool, torch.uint8)
                or target.is_floating_point()
                or target.is_complex()
            )
        )
    ):
        return NotImplemented
    kw = {"axis": axis, "weight": None, "ignore_index": ignore_index, "where": None}
    kw.update(label_smoothing=label_smoothing, reduction=reduction)
    if (r := _via_numpy("cross_entropy", logits, target=target, **kw)) is not NotImplemented:
        return r
    n_classes = logits.shape[1]
    t = target.to(torch.int64)
    in_range = (t >= 0) & (t < n_classes)
    ignored = t == ignore_index if ignore_index is not None else torch.zeros_like(in_range)
    active = in_range & ~ignored
    safe = torch.where(in_range, t, 0).unsqueeze(1)
    if _needs_grad(logits):
        if logits.dtype != torch.float32:
            return NotImplemented
        lp = _via_float64("log_softmax", logits, 1)
        loss = -lp.gather(1, safe)[:, 0]
    else:
        loss = _ce_loss(logits, t, safe, ignore_index)
        if loss is NotImplemented:
            return loss  # rows without a finite maximum: generic rules
    zero = torch.zeros((), dtype=loss.dtype, device=_CPU)
    # -0.0 where ignored, as the generic path's -where(active, lp, 0).
    loss = torch.where(active, loss, torch.full((), -0.0, dtype=loss.dtype, device=_CPU))
    bad = ~in_range & ~ignored
    den = active.to(loss.dtype)
    if bool(bad.any()):  # out of range and not ignored: NaN, as the generic
        loss = torch.where(bad, torch.full((), math.nan, dtype=loss.dtype, device=_CPU), loss)
        den = torch.where(bad, torch.full((), math.nan, dtype=loss.dtype, device=_CPU), den)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    count = den.sum()
    empty = count == 0
    return torch.where(empty, zero, total / torch.where(empty, torch.ones_like(count), count))
