"""``python -m xact`` (the demo), ``--version``, and what ``import xact`` imports."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import xact


def _run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "xact", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return proc.stdout


def test_version():
    assert _run("--version").strip() == f"xact {xact.__version__}"


def test_demo_prints_the_classic_values_on_every_backend():
    out = _run()
    body = out.split("\n\n")[1]  # between the header and the closing "Expected" lines
    blocks = ["", *re.split(r"\n(?=\S+(?: \(cuda\))?: )", body)]
    labels = [b.split(":")[0] for b in blocks[1:]]
    assert "numpy" in labels
    for name in ("array_api_strict", "torch", "jax", "dask"):
        try:
            __import__(name)
        except ImportError:
            continue
        assert name in labels, f"{name} is installed but the demo skipped it"
    for block in blocks[1:]:
        head = block.splitlines()[0]
        assert "dtype" in head and "device" in head, head
        assert "softmax     = [0.6590, 0.2424, 0.0986]" in block, block
        assert "log_softmax = [-0.4170, -1.4170, -2.3170]" in block, block
        assert "sigmoid(2.0) = 0.8808" in block, block


def test_import_xact_imports_no_framework():
    code = (
        "import sys, xact; "
        "print(sorted(m for m in ('torch', 'jax', 'cupy', 'dask') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("arg", ["--bogus"])
def test_bad_argument_is_a_usage_error(arg):
    proc = subprocess.run(
        [sys.executable, "-m", "xact", arg], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "usage" in proc.stderr
