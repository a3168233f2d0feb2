"""nn.RNN and the cells (RNNCell, LSTMCell, GRUCell), channel dropout (Dropout1d/2d/3d), the
decoder side of the transformer (TransformerDecoderLayer, TransformerDecoder, the
encoder-decoder Transformer) and the ``nn.modules.<file>`` paths: PyTorch parity for outputs
and gradients with the same weights, state-dict keys, initialization, masks, unbatched
inputs, dropout statistics and a finite-difference gradient check."""

from __future__ import annotations

import importlib
import inspect
import math
import warnings

import numpy as np
import pytest

import clgraph as cg
import clgraph.nn as nn
from clgraph.autograd import gradcheck
from conftest import torch_or_skip

RNG = np.random.default_rng(7)


def same(m, t):
    """Give the clgraph module ``m`` the torch module ``t``'s state."""
    m.load_state_dict({k: cg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})


def close(a, b, atol=1e-10):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-9, atol=atol)


def close_grads(m, t, atol=1e-10):
    """Every parameter's gradient in ``m`` equals the one of the same name in ``t``."""
    got = dict(m.named_parameters())
    assert list(got) == [k for k, _ in t.named_parameters()]
    for k, p in t.named_parameters():
        assert got[k].grad is not None, k
        np.testing.assert_allclose(got[k].grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=atol,
                                   err_msg=k)


def pair(x, requires_grad=True):
    """The same float64 array as a clgraph and a torch tensor."""
    torch = torch_or_skip()
    return (cg.tensor(x, requires_grad=requires_grad),
            torch.tensor(x, requires_grad=requires_grad))


def flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def loss(outs):
    """A scalar reading every output with distinct weights, so each gradient is checked."""
    total = None
    for o in outs:
        w = np.arange(1, o.numel() + 1, dtype=np.float64).reshape(tuple(o.shape)) / o.numel()
        w = cg.tensor(w) if isinstance(o, cg.Tensor) else torch_or_skip().tensor(w)
        term = (o * w).sum()
        total = term if total is None else total + term
    return total


# --- recurrent layers and cells -----------------------------------------------------------

RNN_CASES = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2, "bidirectional": True}),
    ("RNN", {"bias": False, "batch_first": True, "num_layers": 2}),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True, "batch_first": True}),
    ("LSTM", {"batch_first": True, "bidirectional": True}),
    ("GRU", {"num_layers": 2}),
]


@pytest.mark.parametrize("cls,kw", RNN_CASES,
                         ids=[c + "-" + "-".join(f"{a}={b}" for a, b in k.items())
                              for c, k in RNN_CASES])
@pytest.mark.parametrize("h0", [False, True], ids=["no_h0", "h0"])
def test_recurrent_layer_matches_torch(cls, kw, h0):
    torch = torch_or_skip()
    t = getattr(torch.nn, cls)(3, 5, **kw).double()
    m = getattr(nn, cls)(3, 5, **kw).double()
    assert list(m.state_dict()) == list(t.state_dict())
    assert repr(m) == repr(t)
    same(m, t)
    assert m.flatten_parameters() is None
    L, N, D = 4, 3, 2 if m.bidirectional else 1
    x = RNG.standard_normal((N, L, 3) if m.batch_first else (L, N, 3))
    (xc, xt), hc, ht = pair(x), None, None
    if h0:
        shape = (m.num_layers * D, N, 5)
        hs = [pair(RNG.standard_normal(shape)) for _ in range(2 if cls == "LSTM" else 1)]
        hc = tuple(h[0] for h in hs) if cls == "LSTM" else hs[0][0]
        ht = tuple(h[1] for h in hs) if cls == "LSTM" else hs[0][1]
    oc, sc = m(xc, hc)
    ot, st = t(xt, ht)
    assert tuple(oc.shape) == tuple(ot.shape)
    for a, b in zip([oc, *flat(sc)], [ot, *flat(st)]):
        close(a, b)
    loss([oc, *flat(sc)]).backward()
    loss([ot, *flat(st)]).backward()
    close_grads(m, t)
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    if h0:
        for a, b in zip(flat(hc), flat(ht)):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_rnn_unbatched_input_and_errors():
    torch = torch_or_skip()
    t = torch.nn.RNN(3, 4, nonlinearity="relu", bidirectional=True).double()
    m = nn.RNN(3, 4, nonlinearity="relu", bidirectional=True).double()
    same(m, t)
    x, h = RNG.standard_normal((5, 3)), RNG.standard_normal((2, 4))
    oc, hc = m(cg.tensor(x), cg.tensor(h))
    ot, ht = t(torch.tensor(x), torch.tensor(h))
    assert tuple(oc.shape) == (5, 8) and tuple(hc.shape) == (2, 4)
    close(oc, ot)
    close(hc, ht)
    assert m.mode == t.mode == "RNN_RELU" and m.nonlinearity == "relu"
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'. Select from 'tanh' or "
                                         "'relu'."):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(RuntimeError, match="Expected hidden size \\(2, 1, 4\\), got"):
        m(cg.ones(5, 1, 3, dtype=cg.float64), cg.ones(1, 1, 4, dtype=cg.float64))


CELL_CASES = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu", "bias": False}),
              ("LSTMCell", {}), ("GRUCell", {}), ("GRUCell", {"bias": False})]


@pytest.mark.parametrize("cls,kw", CELL_CASES,
                         ids=[c + "-" + "-".join(f"{a}={b}" for a, b in k.items())
                              for c, k in CELL_CASES])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("hx", [False, True], ids=["no_hx", "hx"])
def test_cell_matches_torch(cls, kw, batched, hx):
    torch = torch_or_skip()
    t = getattr(torch.nn, cls)(3, 5, **kw).double()
    m = getattr(nn, cls)(3, 5, **kw).double()
    assert list(m.state_dict()) == list(t.state_dict())
    assert repr(m) == repr(t)
    same(m, t)
    lead = (2,) if batched else ()
    xc, xt = pair(RNG.standard_normal(lead + (3,)))
    hc = ht = None
    if hx:
        hs = [pair(RNG.standard_normal(lead + (5,))) for _ in range(2 if cls == "LSTMCell"
                                                                      else 1)]
        hc = tuple(h[0] for h in hs) if cls == "LSTMCell" else hs[0][0]
        ht = tuple(h[1] for h in hs) if cls == "LSTMCell" else hs[0][1]
    oc, ot = flat(m(xc, hc)), flat(t(xt, ht))
    assert len(oc) == len(ot) == (2 if cls == "LSTMCell" else 1)
    for a, b in zip(oc, ot):
        assert tuple(a.shape) == tuple(b.shape) == lead + (5,)
        close(a, b)
    loss(oc).backward()
    loss(ot).backward()
    close_grads(m, t)
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_cell_init_errors_and_shared_step():
    m = nn.LSTMCell(3, 7)
    assert [(k, tuple(v.shape)) for k, v in m.named_parameters()] == [
        ("weight_ih", (28, 3)), ("weight_hh", (28, 7)), ("bias_ih", (28,)), ("bias_hh", (28,))]
    vals = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    bound = 1 / math.sqrt(7)
    assert np.abs(vals).max() <= bound and np.abs(vals).max() > 0.8 * bound
    assert abs(vals.mean()) < 0.1 * bound and vals.std() > 0.4 * bound  # U(-b, b): std b/1.7
    assert tuple(nn.GRUCell(2, 3, bias=False).weight_hh.shape) == (9, 3)
    assert nn.GRUCell(2, 3, bias=False).bias_ih is None
    assert repr(nn.RNNCell(2, 3, nonlinearity="relu")) == "RNNCell(2, 3, nonlinearity=relu)"
    with pytest.raises(ValueError, match="LSTMCell: Expected input to be 1D or 2D, got 3D"):
        m(cg.ones(1, 2, 3))
    with pytest.raises(ValueError, match="LSTMCell: Expected hx\\[1\\] to be 1D or 2D, got 3D"):
        m(cg.ones(2, 3), (cg.ones(2, 7), cg.ones(1, 2, 7)))
    with pytest.raises(ValueError, match="GRUCell: Expected hidden to be 1D or 2D, got 3D"):
        nn.GRUCell(3, 2)(cg.ones(2, 3), cg.ones(1, 2, 2))
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 4 expected"):
        m(cg.ones(2, 4))
    with pytest.raises(RuntimeError, match="Input batch size 2 doesn't match hidden0 batch "
                                           "size 3"):
        nn.GRUCell(3, 2)(cg.ones(2, 3), cg.ones(3, 2))
    # one step of the layer is the cell, with the layer's weights
    layer = nn.LSTM(3, 7).double()
    cell = nn.LSTMCell(3, 7).double()
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = cg.tensor(RNG.standard_normal((1, 2, 3)))
    out, (h, c) = layer(x)
    h2, c2 = cell(x[0])
    np.testing.assert_allclose(h2.detach().numpy(), h[0].detach().numpy(), atol=1e-14)
    np.testing.assert_allclose(c2.detach().numpy(), c[0].detach().numpy(), atol=1e-14)


def test_gru_cell_finite_difference_gradients():
    cell = nn.GRUCell(3, 2).double()
    x = cg.tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    h = cg.tensor(RNG.standard_normal((2, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: cell(a, b), (x, h))
    lstm = nn.LSTMCell(2, 2, bias=False).double()
    xu = cg.tensor(RNG.standard_normal(2), requires_grad=True)
    assert gradcheck(lambda a: lstm(a)[1], (xu,))


# --- channel dropout ----------------------------------------------------------------------


def channel_stats(x, y, p):
    """(fraction of zeroed channels, whether every channel is all zero or all x/(1-p))."""
    n, c = x.shape[:2]
    xs, ys = x.reshape(n, c, -1), y.reshape(n, c, -1)
    dropped = np.all(ys == 0, axis=-1)
    kept = np.all(np.isclose(ys, xs / (1 - p), rtol=1e-6, atol=0), axis=-1)
    return dropped.mean(), bool(np.all(dropped ^ kept))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout2d_zeroes_whole_channels(p):
    m = nn.Dropout2d(p)
    x = RNG.standard_normal((48, 64, 3, 5)).astype(np.float32) + 3.0  # no zero entries
    xc = cg.tensor(x, requires_grad=True)
    cg.manual_seed(11)
    y = m(xc)
    frac, whole = channel_stats(x, y.detach().numpy(), p)
    assert whole
    assert abs(frac - p) < 0.04, frac  # 3072 channels: 5 standard deviations
    y.sum().backward()  # the gradient is the mask
    mask = xc.grad.numpy()
    np.testing.assert_allclose(mask * x, y.detach().numpy(), rtol=1e-6)
    assert set(np.unique(mask).round(5)) <= {0.0, round(1 / (1 - p), 5)}
    cg.manual_seed(11)
    np.testing.assert_array_equal(m(cg.tensor(x)).numpy(), y.detach().numpy())
    m.eval()
    assert m(xc) is xc
    assert nn.Dropout2d(1.0)(cg.tensor(x)).numpy().max() == 0.0
    assert nn.Dropout2d(0.0)(xc) is xc


def test_dropout1d_3d_shapes_repr_and_warnings():
    torch = torch_or_skip()
    x = RNG.standard_normal((40, 50, 6)) + 3.0
    frac, whole = channel_stats(x, nn.Dropout1d(0.5)(cg.tensor(x)).numpy(), 0.5)
    assert whole and abs(frac - 0.5) < 0.1
    # unbatched (C, L) and (C, D, H, W): whole channels along the first dimension
    y = nn.Dropout1d(0.5)(cg.tensor(x[0])).numpy()
    assert y.shape == (50, 6)
    assert channel_stats(x[:1], y[None], 0.5)[1]
    x3 = RNG.standard_normal((2, 30, 2, 3, 2)) + 3.0
    frac, whole = channel_stats(x3, nn.Dropout3d(0.5)(cg.tensor(x3)).numpy(), 0.5)
    assert whole and 0.3 < frac < 0.7
    y = nn.Dropout3d(0.5)(cg.tensor(x3[0])).numpy()
    assert y.shape == x3.shape[1:] and channel_stats(x3[:1], y[None], 0.5)[1]
    for name in ("Dropout1d", "Dropout2d", "Dropout3d"):
        assert repr(getattr(nn, name)(0.3, True)) == repr(getattr(torch.nn, name)(0.3, True))
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            getattr(nn, name)(1.5)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received"):
        nn.Dropout1d()(cg.ones(2, 3, 4, 5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = nn.functional.dropout2d(cg.tensor(x), 0.5)  # 3-D: read as (N, C, L)
    assert any("Received a 3D input to dropout2d" in str(w.message) for w in caught)
    assert channel_stats(x, y.numpy(), 0.5)[1]
    t = cg.tensor(x)  # in place: the input itself is masked
    out = nn.Dropout1d(0.5, inplace=True)(t)
    np.testing.assert_array_equal(t.numpy(), out.numpy())
    assert channel_stats(x, t.numpy(), 0.5)[1]


# --- transformer decoder and encoder-decoder ----------------------------------------------

E, H, FF = 6, 3, 10  # d_model, heads, feed-forward width


def masks(T, S, N, kind):
    """(clgraph kwargs, torch kwargs) for the decoder's masks."""
    torch = torch_or_skip()
    kw = {}
    if kind in ("causal", "all"):
        kw["tgt_mask"] = np.triu(np.full((T, T), -np.inf), 1)
        kw["tgt_is_causal"] = True
    if kind == "all":
        mm = RNG.random((T, S)) < 0.3
        mm[:, 0] = False
        kw["memory_mask"] = mm
        tk = RNG.random((N, T)) < 0.3
        tk[:, 0] = False
        sk = RNG.random((N, S)) < 0.3
        sk[:, 0] = False
        kw["tgt_key_padding_mask"] = np.where(tk, -np.inf, 0.0)  # float like tgt_mask
        kw["memory_key_padding_mask"] = sk
    if kind == "bool":
        kw["tgt_mask"] = np.triu(np.ones((T, T), bool), 1)
        kw["memory_key_padding_mask"] = np.zeros((N, S), bool)
        kw["memory_key_padding_mask"][0, -2:] = True

    def conv(f):
        return {k: f(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}

    return conv(cg.tensor), conv(torch.tensor)


LAYER_CASES = [{}, {"norm_first": True, "activation": "gelu"},
               {"batch_first": True, "bias": False}, {"batch_first": True, "norm_first": True}]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kw", LAYER_CASES,
                         ids=["-".join(f"{a}={b}" for a, b in k.items()) or "default"
                              for k in LAYER_CASES])
@pytest.mark.parametrize("kind", ["none", "causal", "all", "bool"])
def test_decoder_layer_matches_torch(kw, kind):
    torch = torch_or_skip()
    t = torch.nn.TransformerDecoderLayer(E, H, FF, dropout=0.0, **kw).double()
    m = nn.TransformerDecoderLayer(E, H, FF, dropout=0.0, **kw).double()
    assert list(m.state_dict()) == list(t.state_dict())
    same(m, t)
    T, S, N = 4, 5, 3
    bf = kw.get("batch_first", False)
    (tc, tt), (mc, mt) = (pair(RNG.standard_normal((N, n, E) if bf else (n, N, E)))
                          for n in (T, S))
    kc, kt = masks(T, S, N, kind)
    oc, ot = m(tc, mc, **kc), t(tt, mt, **kt)
    close(oc, ot)
    loss([oc]).backward()
    loss([ot]).backward()
    close_grads(m, t)
    np.testing.assert_allclose(tc.grad.numpy(), tt.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(mc.grad.numpy(), mt.grad.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_decoder_stack_with_norm_and_unbatched():
    torch = torch_or_skip()
    tl = torch.nn.TransformerDecoderLayer(E, H, FF, dropout=0.0).double()
    t = torch.nn.TransformerDecoder(tl, 2, norm=torch.nn.LayerNorm(E).double())
    m = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF, dropout=0.0).double(), 2,
                              norm=nn.LayerNorm(E).double())
    keys = list(m.state_dict())
    assert keys == list(t.state_dict())
    assert keys[4] == "layers.0.multihead_attn.in_proj_weight" and keys[-1] == "norm.bias"
    same(m, t)
    T, S = 4, 3
    (tc, tt), (mc, mt) = pair(RNG.standard_normal((T, E))), pair(RNG.standard_normal((S, E)))
    mask = np.triu(np.full((T, T), -np.inf), 1)
    oc = m(tc, mc, tgt_mask=cg.tensor(mask))  # tgt_is_causal left to detection
    ot = t(tt, mt, tgt_mask=torch.tensor(mask))
    assert tuple(oc.shape) == (T, E)
    close(oc, ot)
    loss([oc]).backward()
    loss([ot]).backward()
    close_grads(m, t)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(tc, mc, tgt_is_causal=True)


TRANSFORMER_CASES = [{}, {"batch_first": True, "norm_first": True, "activation": "gelu"}]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kw", TRANSFORMER_CASES,
                         ids=["-".join(f"{a}={b}" for a, b in k.items()) or "default"
                              for k in TRANSFORMER_CASES])
def test_transformer_matches_torch(kw):
    torch = torch_or_skip()
    t = torch.nn.Transformer(E, H, 2, 1, FF, dropout=0.0, **kw).double()
    m = nn.Transformer(E, H, 2, 1, FF, dropout=0.0, **kw).double()
    assert list(m.state_dict()) == list(t.state_dict())
    assert repr(m) == repr(t)
    same(m, t)
    S, T, N = 5, 4, 2
    bf = kw.get("batch_first", False)
    (sc, st), (tc, tt) = (pair(RNG.standard_normal((N, n, E) if bf else (n, N, E)))
                          for n in (S, T))
    sk = RNG.random((N, S)) < 0.3
    sk[:, 0] = False
    tm = np.triu(np.full((T, T), -np.inf), 1)
    oc = m(sc, tc, tgt_mask=cg.tensor(tm), src_key_padding_mask=cg.tensor(sk),
           memory_key_padding_mask=cg.tensor(sk), tgt_is_causal=True)
    ot = t(st, tt, tgt_mask=torch.tensor(tm), src_key_padding_mask=torch.tensor(sk),
           memory_key_padding_mask=torch.tensor(sk), tgt_is_causal=True)
    close(oc, ot)
    loss([oc]).backward()
    loss([ot]).backward()
    close_grads(m, t)
    np.testing.assert_allclose(sc.grad.numpy(), st.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(tc.grad.numpy(), tt.grad.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_transformer_unbatched_src_mask_and_custom_parts():
    torch = torch_or_skip()
    t = torch.nn.Transformer(E, H, 1, 1, FF, dropout=0.0).double()
    m = nn.Transformer(E, H, 1, 1, FF, dropout=0.0).double()
    same(m, t)
    (sc, st), (tc, tt) = pair(RNG.standard_normal((5, E))), pair(RNG.standard_normal((3, E)))
    sm = RNG.random((5, 5)) < 0.3
    np.fill_diagonal(sm, False)
    mm = np.zeros((3, 5))
    mm[:, -1] = -1.5
    oc = m(sc, tc, src_mask=cg.tensor(sm), memory_mask=cg.tensor(mm))
    ot = t(st, tt, src_mask=torch.tensor(sm), memory_mask=torch.tensor(mm))
    assert tuple(oc.shape) == (3, E)
    close(oc, ot)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, FF), 1)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF), 1)
    custom = nn.Transformer(E, H, custom_encoder=enc, custom_decoder=dec)
    assert custom.encoder is enc and custom.decoder is dec
    assert len(custom.state_dict()) == 12 + 18
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        m(cg.ones(5, 2, E), cg.ones(3, 1, E))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal "
                                           "to d_model"):
        m(cg.ones(5, 2, E), cg.ones(3, 2, E + 1))


def test_transformer_defaults_and_xavier_init():
    sig = inspect.signature(nn.Transformer)
    want = {"d_model": 512, "nhead": 8, "num_encoder_layers": 6, "num_decoder_layers": 6,
            "dim_feedforward": 2048, "dropout": 0.1, "custom_encoder": None,
            "custom_decoder": None, "layer_norm_eps": 1e-5, "batch_first": False,
            "norm_first": False, "bias": True}
    assert {k: sig.parameters[k].default for k in want} == want
    assert list(sig.parameters)[:len(want) + 1] == [*list(want)[:6], "activation",
                                                    *list(want)[6:]]
    fwd = list(inspect.signature(nn.Transformer.forward).parameters)
    assert fwd == ["self", "src", "tgt", "src_mask", "tgt_mask", "memory_mask",
                   "src_key_padding_mask", "tgt_key_padding_mask", "memory_key_padding_mask",
                   "src_is_causal", "tgt_is_causal", "memory_is_causal"]
    m = nn.Transformer(16, 4, 1, 2, 32)
    assert m.d_model == 16 and m.nhead == 4 and m.batch_first is False
    assert isinstance(m.encoder.norm, nn.LayerNorm) and isinstance(m.decoder.norm, nn.LayerNorm)
    assert len(m.decoder.layers) == 2 and m.decoder.layers[1].dropout3.p == 0.1
    for name, p in m.named_parameters():
        v = p.detach().numpy()
        if v.ndim > 1:
            bound = math.sqrt(6.0 / (v.shape[0] + v.shape[1]))
            assert np.abs(v).max() <= bound and np.abs(v).max() > 0.8 * bound, name
        elif name.endswith("in_proj_bias"):
            assert np.all(v == 0), name
    # the layers start from different draws (not copies of one initialized layer)
    a, b = (m.decoder.layers[i].linear1.weight.detach().numpy() for i in range(2))
    assert not np.array_equal(a, b)


# --- nn.modules paths ---------------------------------------------------------------------

FILES = ["activation", "batchnorm", "container", "conv", "dropout", "flatten", "linear",
         "loss", "module", "normalization", "pooling", "rnn", "sparse", "transformer",
         "upsampling"]


def test_modules_paths_are_the_same_classes():
    assert cg.nn.modules.linear.Linear is nn.Linear
    assert cg.nn.modules.rnn.LSTMCell is nn.LSTMCell
    assert cg.nn.modules.activation.ReLU is nn.ReLU
    assert cg.nn.modules.activation.MultiheadAttention is nn.MultiheadAttention
    assert cg.nn.modules.sparse.Embedding is nn.Embedding
    assert cg.nn.modules.module.Module is nn.Module
    assert cg.nn.modules.Transformer is nn.Transformer
    for f in FILES:
        mod = importlib.import_module(f"clgraph.nn.modules.{f}")
        assert mod.__all__, f
        for name in mod.__all__:
            obj = getattr(mod, name)
            assert obj is getattr(nn, name, obj) and issubclass(obj, nn.Module), (f, name)
            assert getattr(cg.nn.modules, name) is obj
    linear = cg.nn.modules.linear
    out_proj = nn.MultiheadAttention(4, 2).out_proj
    assert type(out_proj) is linear.NonDynamicallyQuantizableLinear
    assert isinstance(out_proj, nn.Linear)


def test_modules_files_follow_torch():
    """Every class both libraries have sits in the file PyTorch puts it in."""
    torch = torch_or_skip()
    missing = []
    for name in dir(nn):
        obj, theirs = getattr(nn, name), getattr(torch.nn, name, None)
        if not (inspect.isclass(obj) and issubclass(obj, nn.Module) and inspect.isclass(theirs)):
            continue
        path = theirs.__module__
        assert path.startswith("torch.nn.modules."), (name, path)
        file = path.rsplit(".", 1)[1]
        try:
            mod = importlib.import_module(f"clgraph.nn.modules.{file}")
        except ImportError:
            missing.append((file, name))
            continue
        if getattr(mod, name, None) is not obj:
            missing.append((file, name))
    assert not missing, missing
