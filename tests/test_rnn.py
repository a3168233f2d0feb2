"""nn.LSTM and nn.GRU against a numpy step-by-step reference (layers, directions,
batch_first, no bias, initial states, unbatched input), gradchecks, PyTorch's weight names,
a compiled sequence equal to eager, and PyTorch parity where installed."""

from __future__ import annotations

import numpy as np
import pytest

import clgraph as cg
from clgraph import nn
from clgraph.autograd import gradcheck
from conftest import torch_or_skip


def sig(x):
    return 1 / (1 + np.exp(-x))


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    i, f, g, o = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=-1)
    c = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c), c


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    xr, xz, xn = np.split(x @ w_ih.T + b_ih, 3, axis=-1)
    hr, hz, hn = np.split(h @ w_hh.T + b_hh, 3, axis=-1)
    r, z = sig(xr + hr), sig(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def reference(m, x, h0=None, c0=None):
    """The module's result, one step at a time in numpy: x (L, N, in)."""
    p = {k: v.detach().numpy() for k, v in m.named_parameters()}
    D = 2 if m.bidirectional else 1
    H, R = m.hidden_size, m.proj_size or m.hidden_size
    L, N = x.shape[:2]
    h0 = np.zeros((m.num_layers * D, N, R)) if h0 is None else h0
    c0 = np.zeros((m.num_layers * D, N, H)) if c0 is None else c0
    hn, cn = [], []
    for layer in range(m.num_layers):
        outs = []
        for d in range(D):
            sfx = "_reverse" if d else ""
            w = [p[f"weight_ih_l{layer}{sfx}"], p[f"weight_hh_l{layer}{sfx}"]]
            w += [p[f"bias_ih_l{layer}{sfx}"], p[f"bias_hh_l{layer}{sfx}"]] if m.bias else [0, 0]
            h, c = h0[layer * D + d], c0[layer * D + d]
            out = [None] * L
            for t in (reversed(range(L)) if d else range(L)):
                if isinstance(m, nn.LSTM):
                    h, c = lstm_cell(x[t], h, c, *w)
                    if m.proj_size:
                        h = h @ p[f"weight_hr_l{layer}{sfx}"].T
                else:
                    h = gru_cell(x[t], h, *w)
                out[t] = h
            outs.append(np.stack(out))
            hn.append(h)
            cn.append(c)
        x = np.concatenate(outs, axis=-1)
    return x, np.stack(hn), np.stack(cn)


CASES = [{}, {"num_layers": 2}, {"bidirectional": True}, {"num_layers": 2,
         "bidirectional": True, "bias": False}, {"batch_first": True}]


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize("kw", CASES, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items())
                         or "default")
def test_rnn_against_step_by_step_numpy(cls, kw):
    rng = np.random.default_rng(1)
    m = getattr(nn, cls)(3, 4, **kw).double()
    x = rng.standard_normal((6, 2, 3))
    D = 2 if m.bidirectional else 1
    h0 = rng.standard_normal((m.num_layers * D, 2, 4))
    c0 = rng.standard_normal((m.num_layers * D, 2, 4))
    xin = np.swapaxes(x, 0, 1) if m.batch_first else x
    hx = (cg.tensor(h0), cg.tensor(c0)) if cls == "LSTM" else cg.tensor(h0)
    out, state = m(cg.tensor(xin), hx)
    want, hn, cn = reference(m, x, h0, c0)
    got = out.detach().numpy()
    np.testing.assert_allclose(np.swapaxes(got, 0, 1) if m.batch_first else got, want,
                               rtol=1e-12, atol=1e-12)
    if cls == "LSTM":
        np.testing.assert_allclose(state[0].detach().numpy(), hn, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state[1].detach().numpy(), cn, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(state.detach().numpy(), hn, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", CASES, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items())
                         or "default")
def test_lstm_proj_size_against_step_by_step_numpy(kw):
    rng = np.random.default_rng(3)
    m = nn.LSTM(3, 4, proj_size=2, **kw).double()
    D = 2 if m.bidirectional else 1
    names = [(n, tuple(p.shape)) for n, p in m.named_parameters()][:5 if m.bias else 3]
    width = 3
    assert names == [("weight_ih_l0", (16, width)), ("weight_hh_l0", (16, 2))] + (
        [("bias_ih_l0", (16,)), ("bias_hh_l0", (16,))] if m.bias else []) + [
        ("weight_hr_l0", (2, 4))]
    if m.num_layers > 1:
        assert m.weight_ih_l1.shape == (16, 2 * D)
    x = rng.standard_normal((5, 2, 3))
    h0 = rng.standard_normal((m.num_layers * D, 2, 2))
    c0 = rng.standard_normal((m.num_layers * D, 2, 4))
    xin = np.swapaxes(x, 0, 1) if m.batch_first else x
    for hx in (None, (h0, c0)):
        out, (hn, cn) = m(cg.tensor(xin), None if hx is None else tuple(map(cg.tensor, hx)))
        want, want_h, want_c = reference(m, x, *(hx or ()))
        got = out.detach().numpy()
        np.testing.assert_allclose(np.swapaxes(got, 0, 1) if m.batch_first else got, want,
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hn.detach().numpy(), want_h, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cn.detach().numpy(), want_c, rtol=1e-12, atol=1e-12)
    small = nn.LSTM(2, 3, proj_size=1, bidirectional=True).double()
    xs = cg.tensor(rng.standard_normal((3, 1, 2)), requires_grad=True)
    assert gradcheck(lambda t: small(t)[0], (xs,))


def test_lstm_proj_size_errors_and_repr():
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size should be a positive integer or zero"):
        nn.LSTM(3, 4, proj_size=-1)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.GRU(3, 4, proj_size=2)
    m = nn.LSTM(3, 4, proj_size=2, num_layers=2)
    assert repr(m) == "LSTM(3, 4, proj_size=2, num_layers=2)"
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 1, 2\), got "
                                           r"\[2, 1, 4\]"):
        m(cg.ones(5, 1, 3), (cg.ones(2, 1, 4), cg.ones(2, 1, 4)))
    out, (h, c) = m(cg.ones(5, 3))  # unbatched
    assert out.shape == (5, 2) and h.shape == (2, 2) and c.shape == (2, 4)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_rnn_names_unbatched_gradcheck_and_errors(cls):
    m = getattr(nn, cls)(3, 2, num_layers=2, bidirectional=True).double()
    G = 4 if cls == "LSTM" else 3
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert names[4] == "weight_ih_l0_reverse" and names[-1] == "bias_hh_l1_reverse"
    assert m.weight_ih_l1.shape == (G * 2, 4) and m.weight_hh_l0.shape == (G * 2, 2)
    bound = 1 / np.sqrt(2)
    assert all(np.abs(p.detach().numpy()).max() <= bound for p in m.parameters())
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3))
    out, _ = m(cg.tensor(x))
    want, *_ = reference(m, x[:, None])
    np.testing.assert_allclose(out.detach().numpy(), want[:, 0], rtol=1e-12, atol=1e-12)
    small = getattr(nn, cls)(2, 2).double()
    xs = cg.tensor(rng.standard_normal((3, 1, 2)), requires_grad=True)
    assert gradcheck(lambda t: small(t)[0], (xs,))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. "
                                           "Expected 2, got 5"):
        small(cg.ones(3, 1, 5, dtype=cg.float64))
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        getattr(nn, cls)(2, 2, dropout=1.5)


def test_rnn_constructor_argument_types_and_input_dtype():
    # as PyTorch: wrong argument types raise TypeError naming the argument and the type,
    # an input of another dtype than the weights a ValueError saying how to convert
    for kw, msg in ((dict(bias=1), "bias should be of type bool, got: int"),
                    (dict(batch_first="False"), "batch_first should be of type bool, got: str"),
                    (dict(input_size=3.0), "input_size should be of type int, got: float"),
                    (dict(hidden_size="5"), "hidden_size should be of type int, got: str")):
        args = {"input_size": 3, "hidden_size": 5, **kw}
        with pytest.raises(TypeError, match=msg):
            nn.GRU(**args)
    with pytest.raises(ValueError, match="input_size must be greater than zero"):
        nn.LSTM(0, 5)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.RNN(2, 3, dropout=0.5)
    m = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match=r"RNN input dtype \(torch.float64\) does not match "
                                         r"weight dtype \(torch.float32\)"):
        m(cg.ones(2, 1, 3, dtype=cg.float64))
    out, _ = m.double()(cg.ones(2, 1, 3, dtype=cg.float64))
    assert out.dtype == cg.float64
    # cells: a state of the wrong hidden size names the state and both sizes
    with pytest.raises(RuntimeError, match="hidden0 has inconsistent hidden_size: got 6, "
                                           "expected 5"):
        nn.GRUCell(3, 5)(cg.ones(2, 3), cg.ones(2, 6))
    with pytest.raises(RuntimeError, match="hidden1 has inconsistent hidden_size: got 4, "
                                           "expected 5"):
        nn.LSTMCell(3, 5)(cg.ones(2, 3), (cg.ones(2, 5), cg.ones(2, 4)))


def test_compiled_lstm_sequence_equals_eager():
    rng = np.random.default_rng(3)
    m = nn.LSTM(4, 8)
    head = nn.Linear(8, 1)
    x = cg.tensor(rng.standard_normal((10, 2, 4)).astype(np.float32))

    def f(x):
        out, (h, c) = m(x)
        return head(out).sum() + h.sum()

    fc = cg.compile(f)
    fc(x)
    np.testing.assert_allclose(float(fc(x)), float(f(x)), rtol=1e-5)
    with cg.profile() as eager:
        f(x)
    with cg.profile() as compiled:
        fc(x)
    assert compiled.launches < eager.launches, (compiled.launches, eager.launches)


def test_rnn_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    for cls in ("LSTM", "GRU"):
        t = getattr(torch.nn, cls)(3, 4, num_layers=2, bidirectional=True).double()
        m = getattr(nn, cls)(3, 4, num_layers=2, bidirectional=True).double()
        m.load_state_dict({k: cg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
        assert repr(m) == repr(t)
        x = rng.standard_normal((5, 2, 3))
        xc, xt = cg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        (oc, _), (ot, _) = m(xc), t(xt)
        oc.sum().backward()
        ot.sum().backward()
        np.testing.assert_allclose(oc.detach().numpy(), ot.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("kw", [{"proj_size": 2}, {"proj_size": 3, "num_layers": 2,
                                                   "bidirectional": True},
                                {"proj_size": 1, "batch_first": True, "bias": False,
                                 "num_layers": 2}])
def test_lstm_proj_size_matches_torch(kw):
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    t, m = torch.nn.LSTM(4, 5, **kw).double(), nn.LSTM(4, 5, **kw).double()
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in t.state_dict().items()]
    assert repr(m) == repr(t)
    m.load_state_dict({k: cg.tensor(v.numpy()) for k, v in t.state_dict().items()})
    D, L, N = 2 if m.bidirectional else 1, m.num_layers, 6
    x = rng.standard_normal((N, 3, 4) if m.batch_first else (3, N, 4))
    hx = (rng.standard_normal((D * L, N, kw["proj_size"])), rng.standard_normal((D * L, N, 5)))
    xt, xc = torch.tensor(x, requires_grad=True), cg.tensor(x, requires_grad=True)
    ot, (ht, ct) = t(xt, tuple(map(torch.tensor, hx)))
    oc, (hc, cc) = m(xc, tuple(map(cg.tensor, hx)))
    for a, b in ((oc, ot), (hc, ht), (cc, ct)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-12)
    (ot.sum() + ht.sum() * 2 + ct.sum() * 3).backward()
    (oc.sum() + hc.sum() * 2 + cc.sum() * 3).backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), atol=1e-12)
    for (name, p), q in zip(m.named_parameters(), t.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-11, err_msg=name)
