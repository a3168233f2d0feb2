"""utils.checkpoint: the gradients of a checkpointed function equal the direct ones (dropout
inside sees the forward's RNG state), in both use_reentrant modes; checkpoint_sequential;
PyTorch's warnings and errors."""

from __future__ import annotations

import numpy as np
import pytest

import clgraph as cg
from clgraph import nn
from clgraph.utils.checkpoint import checkpoint, checkpoint_sequential


def _model():
    cg.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Tanh(), nn.Linear(8, 3),
                         nn.Dropout(0.3), nn.Linear(3, 2)).double()


def _grads(m, x, run):
    m.zero_grad()
    x.grad = None
    cg.manual_seed(7)
    y = run(x)
    cg.randn(10)  # the RNG moves on between forward and backward
    y.square().sum().backward()
    return y.detach().numpy(), [p.grad.numpy() for p in m.parameters()], x.grad.numpy()


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_gradients_equal_direct_with_dropout(use_reentrant):
    m = _model()
    x = cg.randn(5, 4, dtype=cg.float64, requires_grad=True)
    direct = _grads(m, x, m)
    ck = _grads(m, x, lambda x: checkpoint(m, x, use_reentrant=use_reentrant))
    seq = _grads(m, x, lambda x: checkpoint_sequential(m, 3, x, use_reentrant=use_reentrant))
    for got in (ck, seq):
        np.testing.assert_allclose(got[0], direct[0])
        for a, b in zip(got[1], direct[1]):
            np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(got[2], direct[2], rtol=1e-12)


def test_several_outputs_and_plain_arguments():
    a = cg.randn(3, dtype=cg.float64, requires_grad=True)
    b = cg.randn(3, dtype=cg.float64, requires_grad=True)

    def f(a, scale, b):
        return (a * b).sin() * scale, a.exp()

    for use_reentrant in (True, False):
        u, v = checkpoint(f, a, 2.0, b, use_reentrant=use_reentrant)
        (u.sum() + v.sum()).backward()
        ga, gb = a.grad.numpy(), b.grad.numpy()
        a.grad = b.grad = None
        u, v = f(a, 2.0, b)
        (u.sum() + v.sum()).backward()
        np.testing.assert_allclose(ga, a.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gb, b.grad.numpy(), rtol=1e-12)
        a.grad = b.grad = None


def test_rng_state_preserved_and_restored():
    x = cg.ones(1000, dtype=cg.float64, requires_grad=True)
    cg.manual_seed(3)
    y = checkpoint(lambda x: nn.functional.dropout(x, 0.5) * 2, x, use_reentrant=False)
    after_forward = cg.get_rng_state().numpy()
    y.sum().backward()
    np.testing.assert_array_equal(cg.get_rng_state().numpy(), after_forward)
    np.testing.assert_allclose(x.grad.numpy(), (y.detach().numpy() != 0) * 4.0)


def test_non_reentrant_reaches_parameters_without_input_grad():
    m = _model().eval()
    x = cg.randn(2, 4, dtype=cg.float64)
    checkpoint(m, x, use_reentrant=False).sum().backward()
    got = [p.grad.numpy() for p in m.parameters()]
    m.zero_grad()
    m(x).sum().backward()
    for a, p in zip(got, m.parameters()):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-12)


def test_warnings_and_errors():
    x = cg.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed"):
        checkpoint(cg.sin, x)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        checkpoint(cg.sin, x.detach(), use_reentrant=True)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: foo"):
        checkpoint(cg.sin, x, use_reentrant=True, foo=1)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: foo"):
        checkpoint_sequential([cg.sin], 1, x, use_reentrant=True, foo=1)
    with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
        checkpoint(cg.sin, x, use_reentrant=True, debug=True)
    y = checkpoint(lambda x, k: x * k, x, use_reentrant=False, k=3.0)  # kwargs pass through
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 3.0))


def _torch_twin(T, m):
    """The torch Sequential of _model's layers with m's weights (eval: no dropout)."""
    t = T.nn.Sequential(T.nn.Linear(4, 8), T.nn.Dropout(0.5), T.nn.Tanh(), T.nn.Linear(8, 3),
                        T.nn.Dropout(0.3), T.nn.Linear(3, 2)).double().eval()
    with T.no_grad():
        for tp, p in zip(t.parameters(), m.parameters()):
            tp.copy_(T.from_numpy(p.detach().numpy()))
    return t


@pytest.mark.parametrize("input_grad", [True, False])
def test_non_reentrant_parameter_gradients_through_autograd_grad(input_grad):
    """autograd.grad returns the parameters' gradients (and the input's) as PyTorch's
    non-reentrant checkpoint does; .grad stays untouched; backward() agrees."""
    m = _model().eval()
    xv = np.random.default_rng(0).standard_normal((5, 4))
    x = cg.tensor(xv, requires_grad=input_grad)
    params = list(m.parameters())
    wrt = params + ([x] if input_grad else [])
    direct = cg.autograd.grad(m(x).square().sum(), wrt)
    y = checkpoint(m, x, use_reentrant=False)
    got = cg.autograd.grad(y.square().sum(), wrt)
    assert all(p.grad is None for p in params)
    for a, b in zip(got, direct):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    checkpoint(m, x, use_reentrant=False).square().sum().backward()
    for p, b in zip(params, direct):
        np.testing.assert_allclose(p.grad.numpy(), b.numpy(), rtol=1e-12)

    T = pytest.importorskip("torch")
    from torch.utils.checkpoint import checkpoint as torch_checkpoint

    tm = _torch_twin(T, m)
    tx = T.tensor(xv, requires_grad=input_grad)
    ty = torch_checkpoint(tm, tx, use_reentrant=False)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    ref = T.autograd.grad(ty.square().sum(), list(tm.parameters()) + ([tx] if input_grad
                                                                       else []))
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10)


def test_non_reentrant_tensors_closed_over_keep_the_graph_that_made_them():
    """A weight made outside the checkpoint (w = 2 p) and closed over: its gradient flows
    on to p, through autograd.grad and backward, and the outer graph is not consumed by
    the recomputation."""
    p = cg.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=cg.float64, requires_grad=True)
    b = cg.tensor([0.3, -0.2], dtype=cg.float64, requires_grad=True)
    x = cg.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], dtype=cg.float64)
    w = p * 2

    def f(x):
        return (x @ w + b).tanh() * w.sum()

    direct = cg.autograd.grad(f(x).sum(), [p, b], retain_graph=True)
    got = cg.autograd.grad(checkpoint(f, x, use_reentrant=False).sum(), [p, b],
                           retain_graph=True)
    for a, d in zip(got, direct):
        np.testing.assert_allclose(a.numpy(), d.numpy(), rtol=1e-12)
    checkpoint(f, x, use_reentrant=False).sum().backward()  # w's graph is walked after
    np.testing.assert_allclose(p.grad.numpy(), direct[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), direct[1].numpy(), rtol=1e-12)


def test_non_reentrant_nested_and_unused_and_without_grad():
    lin = nn.Linear(3, 3).double()
    other = nn.Linear(3, 3).double()  # closed over but not used: allow_unused gives None
    x = cg.randn(2, 3, dtype=cg.float64, requires_grad=True)

    def inner(t):
        return lin(t).sin()

    def outer(t):
        return checkpoint(inner, t, use_reentrant=False) * 3 + 0 * t

    got = cg.autograd.grad(checkpoint(outer, x, use_reentrant=False).sum(),
                           [lin.weight, lin.bias, x, other.weight], allow_unused=True)
    ref = cg.autograd.grad(outer(x).sum(), [lin.weight, lin.bias, x])
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    assert got[3] is None
    with cg.no_grad():
        assert not checkpoint(inner, x, use_reentrant=False).requires_grad
    plain = cg.randn(2, 3, dtype=cg.float64)
    assert not checkpoint(lambda t: t.exp(), plain, use_reentrant=False).requires_grad


def test_non_reentrant_differentiates_twice():
    """create_graph=True through a non-reentrant checkpoint: the gradient is a graph of the
    input and of a parameter the function closes over, as without the checkpoint."""
    rng = np.random.default_rng(3)
    xn, wn = rng.standard_normal(4), rng.standard_normal(4)
    x = cg.tensor(xn, requires_grad=True)
    w = cg.tensor(wn, requires_grad=True)

    def f(t):
        return (t.sin() * t * w).sum()

    for y in (checkpoint(f, x, use_reentrant=False), f(x)):
        (g,) = cg.autograd.grad(y, x, create_graph=True)
        hx, hw = cg.autograd.grad((g * g).sum(), [x, w])
        d1 = np.sin(xn) + xn * np.cos(xn)  # d f / d x, divided by w
        d2 = 2 * np.cos(xn) - xn * np.sin(xn)
        np.testing.assert_allclose(g.detach().numpy(), wn * d1, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(hx.numpy(), 2 * wn * d1 * wn * d2, rtol=1e-12,
                                   atol=1e-14)
        np.testing.assert_allclose(hw.numpy(), 2 * wn * d1 * d1, rtol=1e-12, atol=1e-14)
