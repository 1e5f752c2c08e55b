"""log_softmax out of core on ``dask.distributed``: bounded worker memory.

A small version of ``python -m xact.bench --dask-ooc MB``: an in-process
cluster (one worker, two threads) reduces ``log_softmax`` over an array
that is never materialised. The chunks are generated, transformed and
reduced on the worker, and the data it holds at any time (sampled from the
worker's own bookkeeping) stays a small multiple of one chunk, far below
the array's size. The result equals the same computation on NumPy.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import xact

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")


def test_log_softmax_streams_through_a_small_worker():
    import dask

    rows, cols, chunk_rows = 4096, 512, 16  # 16 MB in 256 chunks of 64 kB
    chunk_bytes = chunk_rows * cols * 8
    # The memory limit is informational in process: the pytest process's RSS
    # (torch, JAX) is not the worker's, so the RSS-based actions are off and
    # the worker's managed memory is what we measure.
    with (
        dask.config.set(
            {
                "distributed.worker.memory.target": False,
                "distributed.worker.memory.spill": False,
                "distributed.worker.memory.pause": False,
                "distributed.worker.memory.terminate": False,
            }
        ),
        distributed.Client(
            processes=False,
            n_workers=1,
            threads_per_worker=2,
            memory_limit="4MB",
            dashboard_address=None,
        ) as client,
    ):
        (worker,) = client.cluster.workers.values()
        x = da.random.default_rng(7).standard_normal((rows, cols), chunks=(chunk_rows, cols))
        y = xact.log_softmax(x, axis=-1)
        # Per-row total probability (must be 1) and the sum of the logs.
        checks = [da.exp(y).sum(axis=-1), y.sum()]

        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], worker.state.nbytes)
                stop.wait(0.001)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        try:
            futures = client.compute(checks)
            distributed.wait(futures, timeout=120)
            mass, total = client.gather(futures)
        finally:
            stop.set()
            th.join()
        expected = xact.log_softmax(x.compute(), axis=-1)

    np.testing.assert_allclose(mass, 1.0, rtol=1e-13)
    np.testing.assert_allclose(total, expected.sum(), rtol=1e-12)
    assert peak[0] > 0, "the sampler saw no data on the worker"
    assert peak[0] <= 32 * chunk_bytes, (  # an eighth of the array
        f"worker held {peak[0] / 2**20:.1f} MB of a {rows * cols * 8 / 2**20:.0f} MB array "
        f"({peak[0] / chunk_bytes:.1f} chunks)"
    )
