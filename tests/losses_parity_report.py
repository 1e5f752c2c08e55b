"""Print the torch-parity figures of the losses: cases run per backend and
the largest relative differences.

Runs every case of ``test_losses.CASES`` (all options and their
combinations) in float32 and float64 on each available backend, with the
same assertions as ``test_losses.test_torch_parity``, and reports

* ``vs torch (float64 eval)``: the largest relative difference from torch's
  formula evaluated in float64 on the same (dtype-rounded) inputs, the
  reference of the tests (tolerance 1e-6 / 1e-12, plus for BCE in float64
  the rounding bound of torch's cancelling formula);
* ``vs torch (same dtype)``: the largest relative difference from torch run
  in the input's own dtype (informative: in float32 it is mostly torch's
  rounding error).

Usage, from the repository root::

    python tests/losses_parity_report.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    # Imported here, not at module level: pytest imports this file for its
    # (absent) doctests and must not have its path changed.
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT)]
    import conftest

    import test_losses as T

    conftest._enable_jax_x64()
    rows = []
    for name in conftest.ALL_BACKENDS:
        try:
            bk = conftest._load(name)
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"{name:18s} unavailable: {exc}")
            continue
        t0 = time.perf_counter()
        for dtype in T.FLOATS:
            per_family: dict[str, tuple[int, float, float]] = {}
            for case in T.CASES:
                rel = T.check_parity(case, bk, dtype)
                native = T.torch_reference(case, dtype, compute=dtype).astype(np.float64)
                got = bk.to_numpy(T.run_xact(case, bk, dtype)).astype(np.float64)
                nz = native != 0
                rel_native = float(
                    np.max(np.abs(got[nz] - native[nz]) / np.abs(native[nz]), initial=0.0)
                )
                n, a, b = per_family.get(case.family, (0, 0.0, 0.0))
                per_family[case.family] = (n + 1, max(a, rel), max(b, rel_native))
            for fam, (n, a, b) in per_family.items():
                rows.append((name, dtype, fam, n, a, b))
        print(f"{name}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(
        f"{'backend':17s} {'dtype':8s} {'loss':33s} {'cases':>5s} {'vs torch (f64 eval)':>20s} {'vs torch (same dtype)':>22s}"
    )
    for name, dtype, fam, n, a, b in rows:
        print(f"{name:17s} {dtype:8s} {fam:33s} {n:5d} {a:20.2e} {b:22.2e}")
    totals: dict[str, int] = {}
    for name, _, _, n, _, _ in rows:
        totals[name] = totals.get(name, 0) + n
    print("cases per backend:", ", ".join(f"{k} {v}" for k, v in totals.items()))
    for dtype in T.FLOATS:
        worst = max((r[4] for r in rows if r[1] == dtype), default=float("nan"))
        print(f"largest relative difference, {dtype}: {worst:.2e} (vs torch evaluated in float64)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
