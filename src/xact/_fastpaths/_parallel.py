"""Split the NumPy fast paths' work over the CPU's cores.

NumPy runs each ufunc on one core and releases the GIL while it does, so
the independent row blocks of a large call can run in a few threads at once,
as PyTorch's and XLA's native kernels do: on a 2-core machine this nearly
halves the time of a large call. Each thread works on a contiguous range of
rows (or elements) with buffers of its own, and writes a disjoint part of
the output, so the result is bit-for-bit the same for any number of threads.

* The number of threads is the environment variable ``XACT_NUM_THREADS``
  (read at every call; ``1`` switches threading off), else the number of
  cores this process may run on (asked once, and again in a forked child:
  a process that narrows its own affinity later, ``os.sched_setaffinity``,
  sets ``XACT_NUM_THREADS`` to match).
* Only calls from the main thread are split. A call from another thread is
  already part of someone's parallel work (a Dask worker, a thread pool), and
  splitting it again would only oversubscribe the cores.
* Calls smaller than :data:`MIN_ELEMENTS` run in the calling thread: handing
  work to a thread costs tens of microseconds.
* Each range runs in a copy of the caller's context, so ``np.errstate``
  applies in every thread as in the caller's.
* After ``fork()`` the child starts a pool of its own (the parent's threads
  do not exist there); at interpreter shutdown, when no thread can start,
  every range runs in the calling thread.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from . import env_lookup

__all__ = [
    "CHUNK_ELEMENTS",
    "MIN_CHUNK_ROWS",
    "MIN_ELEMENTS",
    "budget",
    "cores",
    "num_threads",
    "plan",
    "share",
    "split",
]

_T = TypeVar("_T")

_ENV = "XACT_NUM_THREADS"
MIN_ELEMENTS = 1 << 17
"""Each thread gets at least this many elements of work."""

CHUNK_ELEMENTS = 1 << 16
""":func:`share` hands out chunks of about this many elements."""

MIN_CHUNK_ROWS = 4
"""Rows longer than a quarter of :data:`CHUNK_ELEMENTS` still go four to a
chunk (while that leaves two chunks a thread): the C kernel's row loops
prefetch the next row of their chunk, which the last row of a chunk
cannot. On AMD Zen 4 (2 threads), a float32 softmax of 64x50257 took 4 to
6% less time in chunks of 4 rows than of 1."""

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


_CORES = 0


def cores() -> int:
    """The number of cores this process may run on, asked once (a system
    call, a microsecond: every large call asks) and again after ``fork()``."""
    global _CORES
    if not _CORES:
        try:
            _CORES = len(os.sched_getaffinity(0)) or 1
        except (AttributeError, OSError):  # not on Linux
            _CORES = os.cpu_count() or 1
    return _CORES


_READ_ENV = env_lookup(_ENV)


def num_threads() -> int:
    """The number of threads a large call may use (at least 1)."""
    global _READ_ENV
    environ, data, key = _READ_ENV
    if environ is not os.environ:  # (replaced, as a test may do)
        environ, data, key = _READ_ENV = env_lookup(_ENV)
    raw = data.get(key)
    if raw is None:
        return cores()
    text = (raw if data is environ else environ.decodevalue(raw)).strip()
    if not text:
        return cores()
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"{_ENV} must be a positive integer, got {text!r}") from None
    if n < 1:
        raise ValueError(f"{_ENV} must be a positive integer, got {text!r}")
    return n


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xact")
            _pool_size = workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _forget_pool() -> None:
    global _pool, _pool_size, _lock, _CORES
    _pool, _pool_size, _lock, _CORES = None, 0, threading.Lock(), 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def budget() -> int:
    """The threads a large call from this thread may use: :func:`num_threads`
    on the main thread, else 1 (see the module docstring)."""
    if threading.current_thread() is threading.main_thread():
        return num_threads()
    return 1


def _threads(n_items: int, item_size: int) -> int:
    nt = min(n_items, (n_items * item_size) // MIN_ELEMENTS)
    return min(nt, budget()) if nt > 1 else 1


def plan(n_items: int, item_size: int) -> tuple[int, int]:
    """The threads and the chunk (in items) of a call that hands out its
    items in chunks, as :func:`share` does and the C kernel's OpenMP teams:
    chunks of about :data:`CHUNK_ELEMENTS` elements, but of at least
    :data:`MIN_CHUNK_ROWS` items where that leaves two per thread."""
    nt = _threads(n_items, item_size)
    per = max(CHUNK_ELEMENTS // max(item_size, 1), MIN_CHUNK_ROWS)
    per = max(1, min(per, -(-n_items // (2 * nt))))
    return nt, per


def split(n_items: int, item_size: int, work: Callable[[int, int], _T]) -> list[_T]:
    """``work(i0, i1)`` over contiguous ranges that cover ``range(n_items)``,
    in as many threads as pay off; the results in the order of the ranges.

    ``item_size`` is the number of elements of one item (a row's length), by
    which the split is sized. The calling thread runs the last range itself.
    """
    nt = _threads(n_items, item_size)
    if nt <= 1:
        return [work(0, n_items)]
    bounds = [n_items * i // nt for i in range(nt + 1)]
    futures: list[Future[_T]] = []
    mine = nt - 1  # the first range this thread runs itself
    try:
        try:
            pool = _get_pool(nt - 1)
            for i in range(nt - 1):
                # Each range sees the caller's context: np.errstate lives in
                # a context variable, and a pool thread starts without it.
                ctx = contextvars.copy_context()
                futures.append(pool.submit(ctx.run, work, bounds[i], bounds[i + 1]))
        except RuntimeError:
            # No new threads (the interpreter is shutting down): the ranges
            # not handed out run here.
            mine = len(futures)
        results = [work(bounds[i], bounds[i + 1]) for i in range(mine, nt)]
    finally:
        # The other ranges write into the caller's output: wait for them
        # even if this one failed.
        for f in futures:
            f.exception()
    return [f.result() for f in futures] + results


class _Chunks:
    """The chunks of one :func:`share` call: the next one to hand out, and
    how many are being worked on."""

    def __init__(self, n: int) -> None:
        self.cond = threading.Condition()
        self.next = 0
        self.n = n
        self.busy = 0
        self.errors: list[BaseException] = []


def share(n_items: int, item_size: int, work: Callable[[int, int], _T]) -> list[_T]:
    """``work(i0, i1)`` over chunks of about :data:`CHUNK_ELEMENTS` elements
    that cover ``range(n_items)``, handed out one at a time to the calling
    thread and the pool's (as many threads as :func:`split` would use); the
    results in the order of the chunks.

    Unlike :func:`split`, the calling thread never waits for a thread that
    has not started: where the other cores are busy (PyTorch's OpenMP
    threads spin for milliseconds after each parallel operation), it takes
    the chunks itself, and the call costs no more than in one thread. For
    work whose items are independent (rows of the C kernel), so that the
    bits do not depend on which thread computes which chunk.
    """
    nt, per = plan(n_items, item_size)
    if nt <= 1:
        return [work(0, n_items)]
    bounds = [*range(0, n_items, per), n_items]
    chunks = _Chunks(len(bounds) - 1)
    results: list[_T | None] = [None] * chunks.n

    def run() -> None:
        while True:
            with chunks.cond:
                if chunks.next >= chunks.n or chunks.errors:
                    return
                i = chunks.next
                chunks.next += 1
                chunks.busy += 1
            try:
                results[i] = work(bounds[i], bounds[i + 1])
            except BaseException as exc:  # noqa: BLE001  (raised in the caller, once all stop)
                with chunks.cond:
                    chunks.errors.append(exc)
            finally:
                with chunks.cond:
                    chunks.busy -= 1
                    chunks.cond.notify_all()

    try:
        pool = _get_pool(nt - 1)
        for _ in range(nt - 1):
            pool.submit(contextvars.copy_context().run, run)
    except RuntimeError:
        pass  # no new threads (the interpreter is shutting down): all here
    run()
    with chunks.cond:
        # Every chunk is handed out (or one failed): wait for those under
        # way, which write into the caller's output, not for idle threads.
        chunks.cond.wait_for(lambda: chunks.busy == 0)
    if chunks.errors:
        raise chunks.errors[0]
    return results  # type: ignore[return-value]  # (every chunk ran)
