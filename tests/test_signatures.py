"""PyTorch's calling conventions across the public functions: ``out=`` (resized to the
result, cast-checked, tuples for several results, not differentiable), the keyword names
of operands (``other=``), and the factory keywords ``layout=`` / ``pin_memory=``."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
from conftest import close

import clgraph as cg


def test_elementwise_out_is_resized_as_pytorch_does():
    a = cg.tensor([[1.0, 2.0], [3.0, 4.0]])
    o = cg.empty(0)
    r = cg.add(a, a, out=o)
    assert r is o and o.shape == (2, 2)
    close(o, [[2.0, 4.0], [6.0, 8.0]])
    o = cg.empty(3)  # holds elements: resized with PyTorch's warning
    with pytest.warns(UserWarning, match="resized"):
        cg.exp(a, out=o)
    close(o, np.exp([[1.0, 2.0], [3.0, 4.0]]), rtol=1e-6)
    # an in-place op's operand is never resized: the broadcast error stays
    with pytest.raises(RuntimeError, match=r"output with shape \[2\] doesn't match"):
        cg.ones(2).add_(cg.ones(2, 2))
    # a result that broadcasts into the destination fills it (copy_)
    z = cg.zeros(2, 3)
    z.copy_(cg.tensor([1.0, 2.0, 3.0]))
    close(z, [[1.0, 2.0, 3.0]] * 2)


def test_operand_keywords():
    a, b = cg.tensor([1.0, -2.0, 0.0]), cg.tensor([3.0, 3.0, 3.0])
    close(cg.mul(a, other=b), [3.0, -6.0, 0.0])
    close(cg.gt(a, other=0), [True, False, False])
    close(a.sub(other=b), [-2.0, -5.0, -3.0])
    close(cg.heaviside(a, values=cg.tensor([0.5])), [1.0, 0.0, 0.5])
    assert list(inspect.signature(cg.mul).parameters) == ["input", "other", "out"]
    assert list(inspect.signature(cg.exp).parameters) == ["input", "out"]
    with pytest.raises(TypeError, match="othr"):
        cg.mul(a, othr=b)
    with pytest.raises(TypeError, match="exp"):
        cg.exp(a, b)
    close(cg.flatten(input=cg.ones(2, 2)), np.ones(4))
    close(cg.transpose(input=cg.ones(2, 3), dim0=0, dim1=1), np.ones((3, 2)))


def test_out_for_reductions_sorts_and_matmuls():
    x = cg.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    xn = x.numpy()
    o = cg.empty(0)
    assert cg.sum(x, 1, out=o) is o
    close(o, xn.sum(1))
    with pytest.warns(UserWarning, match="resized"):
        close(cg.mean(x, out=cg.empty(5)), xn.mean())
    v, i = cg.empty(0), cg.empty(0, dtype=cg.int64)
    r = cg.sort(x, dim=1, out=(v, i))
    assert r.values is v and r.indices is i
    close(v, np.sort(xn, 1))
    close(i, np.argsort(xn, 1))
    r = cg.max(x, 0, out=(cg.empty(0), cg.empty(0, dtype=cg.int64)))
    close(r.values, xn.max(0))
    close(r.indices, xn.argmax(0))
    m = cg.empty(0)
    cg.mm(x, x.T, out=m)
    close(m, xn @ xn.T, rtol=1e-6)
    t = cg.empty(0)
    cg.topk(x.flatten(), 2, out=(t, cg.empty(0, dtype=cg.int64)))
    close(t, [5.0, 4.0])
    # an integer sum into a float out is a cast PyTorch allows; the reverse is not
    close(cg.sum(cg.tensor([1, 2, 3]), out=cg.empty(0)), 6.0)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        cg.sum(x, out=cg.empty(0, dtype=cg.int64))
    with pytest.raises(TypeError, match="tuple of 2 tensors"):
        cg.sort(x, out=cg.empty(0))
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        cg.sum(x.clone().requires_grad_(), out=cg.empty(0))
    with cg.no_grad():
        close(cg.sum(x.clone().requires_grad_(), out=cg.empty(0)), xn.sum())
    assert "out" in inspect.signature(cg.sum).parameters


def test_factory_keywords():
    o = cg.empty(0)
    assert cg.zeros(2, 3, out=o) is o and o.shape == (2, 3)
    close(o, np.zeros((2, 3)))
    for make in (lambda **k: cg.zeros(2, **k), lambda **k: cg.ones(2, **k),
                 lambda **k: cg.full((2,), 1.5, **k), lambda **k: cg.arange(3, **k),
                 lambda **k: cg.linspace(0, 1, 3, **k), lambda **k: cg.eye(2, **k),
                 lambda **k: cg.empty(2, **k), lambda **k: cg.zeros_like(cg.ones(2), **k),
                 lambda **k: cg.hann_window(4, **k), lambda **k: cg.tril_indices(3, 3, **k)):
        assert make(layout=cg.strided).layout is cg.strided
        with pytest.raises(NotImplementedError, match="sparse_coo"):
            make(layout=cg.sparse_coo)
    for make in (cg.rand, cg.randn, cg.empty):
        assert make(2, pin_memory=True).shape == (2,)
    assert cg.randperm(4, pin_memory=False, layout=cg.strided).shape == (4,)
    g = cg.Generator().manual_seed(7)
    a = cg.randn_like(cg.zeros(4), generator=g)
    g.manual_seed(7)
    close(cg.randn_like(cg.zeros(4), generator=g), a.numpy())
    assert pickle.loads(pickle.dumps(cg.strided)) is cg.strided
    assert repr(cg.sparse_csr) == "torch.sparse_csr"
    with pytest.raises(TypeError):
        cg.zeros_like(cg.ones(2), dtyp=cg.float64)  # a misspelt keyword is not ignored
