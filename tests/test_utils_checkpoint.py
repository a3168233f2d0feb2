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
