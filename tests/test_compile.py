"""The public functions under ``torch.compile(fullgraph=True)``.

``fullgraph=True`` makes any graph break an error, so these tests prove that
no public function branches in Python on a tensor value or syncs with
``.item()``. The default suite compiles with the ``aot_eager`` backend (the
whole Dynamo + AOTAutograd capture, forward and backward, without code
generation: quick, and bit-identical to eager); the ``slow`` marker adds the
real inductor backend, whose own ``exp``/``log1p`` may differ from eager by an
ULP.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_lazy_grad import CALLS, MASK, ROWS

torch = pytest.importorskip("torch")

# array-api-compat's namespace lookup is wrapped in functools.lru_cache;
# Dynamo traces through the wrapper and says so once per site.
pytestmark = pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")


def _inputs(requires_grad: bool = False):
    x = torch.tensor(ROWS, dtype=torch.float64, requires_grad=requires_grad)
    return x, torch.tensor(MASK)


def _same(got, want, *, ulps: float = 0.0) -> None:
    g, w = got.detach().numpy(), want.detach().numpy()
    if ulps == 0.0:
        np.testing.assert_array_equal(g, w)
    else:
        np.testing.assert_array_max_ulp(np.nan_to_num(g), np.nan_to_num(w), maxulp=ulps)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))


@pytest.mark.parametrize("name", sorted(CALLS))
def test_fullgraph_aot_eager_forward_and_backward(name):
    torch._dynamo.reset()
    f = CALLS[name]
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    x, w = _inputs(requires_grad=True)
    want = f(x, w)
    got = compiled(x, w)
    _same(got, want)
    # Backward through the captured graph: gradients equal eager's and are
    # finite (the massless and +inf rows included).
    (gw,) = torch.autograd.grad(torch.sum(torch.where(torch.isfinite(want), want, 0.0)), x)
    x2, _ = _inputs(requires_grad=True)
    out = compiled(x2, w)
    (gg,) = torch.autograd.grad(torch.sum(torch.where(torch.isfinite(out), out, 0.0)), x2)
    _same(gg, gw)
    assert torch.all(torch.isfinite(gg))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", sorted(CALLS))
def test_fullgraph_inductor(name):
    torch._dynamo.reset()
    f = CALLS[name]
    x, w = _inputs()
    _same(torch.compile(f, fullgraph=True)(x, w), f(x, w), ulps=2)


def test_first_torch_call_under_compile_in_a_fresh_process():
    """The torch fast path's first call in a process (its one-time set-up)
    may come inside ``torch.compile``: then Dynamo traces the set-up too.
    In a fresh interpreter, where nothing has called it before, a compiled
    sigmoid and softmax must capture as one graph (found: reading NumPy's
    huge-page switch there was a C function Dynamo cannot trace)."""
    import subprocess
    import sys

    script = """
import torch, xact
f = torch.compile(lambda x: xact.sigmoid(x) + xact.softmax(x, axis=-1),
                  fullgraph=True, backend="eager")
x = torch.linspace(-3.0, 3.0, 12, dtype=torch.float64).reshape(3, 4)
assert torch.equal(f(x), xact.sigmoid(x) + xact.softmax(x, axis=-1))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
