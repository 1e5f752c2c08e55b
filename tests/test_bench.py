"""The benchmark command in its quick (CI smoke) mode.

What is asserted is the shape of the output, not timings: every case of
the table is timed on every backend, the ratios are positive and finite,
and the markdown table has one row per measurement.
"""

from __future__ import annotations

import math

import pytest

from xact import bench


def test_quick_mode_writes_a_sane_table(tmp_path, capsys):
    pytest.importorskip("scipy")
    backends = ["numpy"]
    for mod in ("torch", "jax"):
        try:
            __import__(mod)
            backends.append(mod)
        except ImportError:
            pass
    assert (
        bench.main(
            [
                "--quick",
                "--shapes",
                "32x10",
                "--backends",
                ",".join(backends),
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    header, body = rows[0], rows[1:]
    assert header == bench.HEADER
    names = {c.name for c in bench.CASES}
    # one row per backend, function and dtype
    assert len(body) == len(backends) * len(names) * len(bench.DTYPES)
    for row in body:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] in backends and cells[1] in names and cells[2] == "32x10"
        assert cells[4].endswith(("µs", "ms", " s")), row
        case = next(c for c in bench.CASES if c.name == cells[1])
        if cells[0] in case.anchors:
            ratio = float(cells[6])
            assert math.isfinite(ratio) and ratio > 0, row
        else:  # no native anchor on this backend (cross_entropy on NumPy)
            assert cells[6] == "-", row
    md = (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert "Command: `python -m xact.bench --quick" in md
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + len(body)  # header, rows
    assert bench.RULE in md
    # the NumPy rows carry a peak-memory multiple of the input
    numpy_rows = [r for r in body if r.startswith("| numpy ")]
    assert all(r.rstrip(" |").split("|")[-2].strip().endswith("x") for r in numpy_rows)
    assert "per call (goal ≤15)" in md


def test_results_are_measured_on_the_same_array():
    results = bench.run(
        backends=["numpy"],
        shapes=[(4, 3)],
        dtypes=["float64"],
        functions=["softmax"],
        budget=0.0,
        min_repeats=1,
        log=lambda s: None,
    )
    (r,) = results
    assert r.function == "softmax" and r.shape == (4, 3)
    assert r.xact_s > 0 and r.anchor_s is not None and r.anchor_s > 0
    assert r.copy_s > 0 and r.exp_s > 0 and r.xact_mem is not None and r.xact_mem > 0


def test_unknown_function_is_an_error():
    with pytest.raises(ValueError, match="unknown functions"):
        bench.run(functions=["nope"], log=lambda s: None)


def test_time_calls_samples_the_functions_in_turn():
    """One sample of each function per round, so a slow spell of the machine
    weighs on every function alike (after one warm-up and one probe call
    each, which size the samples)."""
    calls = []

    def slow(tag):
        def f():
            calls.append(tag)
            t = bench.time.perf_counter() + 3e-3  # over 2 ms: one call per sample
            while bench.time.perf_counter() < t:
                pass

        return f

    times = bench.time_calls(
        [slow("a"), slow("b"), slow("c")], lambda r: r, budget=0.0, min_repeats=4
    )
    assert len(times) == 3 and all(t >= 3e-3 for t in times)
    assert calls[:12] == ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    assert calls[12:] == ["a", "b", "c"] * 4


def test_time_calls_gives_every_function_the_same_count():
    """A sample has as many calls of each function (sized from the median
    of their single-call times): with asynchronous dispatch the wait for the
    last call weighs less the more calls a sample has, and different counts
    biased JAX's 32x10 ratios (xact's sigmoid read 1.1 to 1.6x jax.nn's,
    1.0 with equal counts)."""
    counts = {"fast": 0, "mid": 0, "slow": 0}

    def work(tag, seconds):
        def f():
            counts[tag] += 1
            t = bench.time.perf_counter() + seconds
            while bench.time.perf_counter() < t:
                pass

        return f

    fns = [work("fast", 0.0), work("mid", 2e-4), work("slow", 5e-4)]
    bench.time_calls(fns, lambda r: r, budget=0.0, min_repeats=3)
    assert counts["fast"] == counts["mid"] == counts["slow"]
    assert counts["mid"] > 4 + 3  # (the warm-up and probes, then 3 samples of several calls)
