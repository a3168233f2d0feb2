"""clgraph.nn: every layer's forward against a numpy reference and float64 gradcheck through
it (tables), PyTorch parity of values, gradients, reprs and state-dict keys (where torch is
installed), the Module API (registration, traversal order, state dicts, to(), modes, hooks),
containers, init, and the seed tutorial's model."""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import clgraph as cg
import clgraph.nn as nn
import clgraph.nn.functional as F
from clgraph.autograd import gradcheck
from clgraph.nn import init
from conftest import torch_or_skip

F64 = cg.float64

try:
    import clgraph.ops.conv

    HAS_CONV = True
except ImportError:
    HAS_CONV = False
needs_conv = pytest.mark.skipif(not HAS_CONV, reason="clgraph.ops.conv (conv/pool kernels) "
                                "is not in this tree yet")


def rnd(*shape, low=-1.0, high=1.0, seed=0):
    rng = np.random.default_rng(seed + 13 * len(shape) + sum(shape))
    return lambda: rng.uniform(low, high, shape)


def unit(*shape, seed=0):
    return rnd(*shape, low=0.05, high=0.95, seed=seed)


def idx(values):
    return lambda: np.array(values, dtype=np.int64)


def P(t):
    return t.detach().numpy().astype(np.float64)


def randomize(m, seed=1):
    """Non-default parameter values (norm layers start at ones/zeros)."""
    rng = np.random.default_rng(seed)
    with cg.no_grad():
        for p in m.parameters():
            p.copy_(cg.from_numpy(rng.uniform(0.5, 1.5, tuple(p.shape))).to(p.dtype))
    return m


# --- numpy references ---------------------------------------------------------------------


def conv_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    def pair(v):
        return (v, v) if isinstance(v, int) else v

    s, p, d = pair(stride), pair(padding), pair(dilation)
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    N, _, H, W = x.shape
    O, Cg, kh, kw = w.shape
    OH = (H - d[0] * (kh - 1) - 1) // s[0] + 1
    OW = (W - d[1] * (kw - 1) - 1) // s[1] + 1
    out = np.zeros((N, O, OH, OW))
    og = O // groups
    for o in range(O):
        g = o // og
        for i in range(kh):
            for j in range(kw):
                patch = x[:, g * Cg:(g + 1) * Cg, i * d[0]:i * d[0] + s[0] * (OH - 1) + 1:s[0],
                          j * d[1]:j * d[1] + s[1] * (OW - 1) + 1:s[1]]
                out[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j])
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def pool_ref(x, k, s, p, reduce, fill):
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    OH, OW = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
    out = np.empty(x.shape[:2] + (OH, OW))
    for i in range(OH):
        for j in range(OW):
            out[:, :, i, j] = reduce(x[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return out


def adaptive_ref(x, size):
    H, W = x.shape[2:]
    out = np.empty(x.shape[:2] + size)
    for i in range(size[0]):
        for j in range(size[1]):
            h0, h1 = i * H // size[0], -(-(i + 1) * H // size[0])
            w0, w1 = j * W // size[1], -(-(j + 1) * W // size[1])
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def norm_ref(x, axes, w=None, b=None, eps=1e-5, mean=None, var=None):
    mean = x.mean(axis=axes, keepdims=True) if mean is None else mean
    var = x.var(axis=axes, keepdims=True) if var is None else var
    y = (x - mean) / np.sqrt(var + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def bn_ref(m, x):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    return norm_ref(x, axes, P(m.weight).reshape(shape), P(m.bias).reshape(shape))


def bn_eval_ref(m, x):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return norm_ref(x, (), P(m.weight).reshape(shape), P(m.bias).reshape(shape),
                    mean=P(m.running_mean).reshape(shape), var=P(m.running_var).reshape(shape))


def bn_eval(m):
    with cg.no_grad():
        m.running_mean.copy_(cg.tensor([0.1, -0.2, 0.3]))
        m.running_var.copy_(cg.tensor([0.5, 2.0, 1.5]))
    return randomize(m).eval()


def log_softmax_ref(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def ce_ref(x, t, w=None, ignore=-100, smoothing=0.0, reduction="mean"):
    """PyTorch's cross_entropy on (N, C) logits and class targets."""
    logp = log_softmax_ref(x, 1)
    C = x.shape[1]
    w = np.ones(C) if w is None else w
    keep = t != ignore
    ts = np.where(keep, t, 0)
    wt = w[ts] * keep
    nll = -logp[np.arange(len(t)), ts] * wt
    smooth = -(logp * w).sum(1) * keep
    if reduction == "mean":
        nll, smooth = nll.sum() / wt.sum(), smooth.sum() / wt.sum()
    elif reduction == "sum":
        nll, smooth = nll.sum(), smooth.sum()
    return (1 - smoothing) * nll + smoothing / C * smooth


def erf(x):
    return np.vectorize(math.erf)(x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


W5 = np.array([0.5, 1.0, 2.0, 0.25, 1.5])
PW = np.array([2.0, 0.5])

# id -> (module factory, input makers, numpy reference(module, *inputs))
LAYERS = {
    "Linear": (lambda: nn.Linear(4, 3), [rnd(2, 4)],
               lambda m, x: x @ P(m.weight).T + P(m.bias)),
    "Linear-nobias-3d": (lambda: nn.Linear(3, 2, bias=False), [rnd(2, 2, 3)],
                         lambda m, x: x @ P(m.weight).T),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3), [rnd(1, 2, 4, 5)],
               lambda m, x: conv_ref(x, P(m.weight), P(m.bias))),
    "Conv2d-strided": (lambda: nn.Conv2d(4, 2, (3, 2), stride=(2, 1), padding=(1, 2),
                                         dilation=(1, 2), groups=2),
                       [rnd(1, 4, 5, 4)],
                       lambda m, x: conv_ref(x, P(m.weight), P(m.bias), (2, 1), (1, 2), (1, 2),
                                             2)),
    "Conv2d-same-reflect": (lambda: nn.Conv2d(1, 2, 3, padding="same", padding_mode="reflect",
                                              bias=False), [rnd(1, 1, 4, 4)],
                            lambda m, x: conv_ref(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)),
                                                         mode="reflect"), P(m.weight))),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), [rnd(1, 2, 4, 4)],
                  lambda m, x: pool_ref(x, 2, 2, 0, np.max, -np.inf)),
    "MaxPool2d-k3s2p1": (lambda: nn.MaxPool2d(3, stride=2, padding=1), [rnd(1, 1, 5, 5)],
                         lambda m, x: pool_ref(x, 3, 2, 1, np.max, -np.inf)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2, padding=1), [rnd(1, 2, 3, 3)],
                  lambda m, x: pool_ref(x, 2, 2, 1, np.mean, 0.0)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 3)), [rnd(1, 2, 5, 4)],
                          lambda m, x: adaptive_ref(x, (2, 3))),
    "BatchNorm1d-train": (lambda: randomize(nn.BatchNorm1d(3)), [rnd(4, 3)], bn_ref),
    "BatchNorm1d-3d": (lambda: randomize(nn.BatchNorm1d(3)), [rnd(2, 3, 2)], bn_ref),
    "BatchNorm2d-train": (lambda: randomize(nn.BatchNorm2d(3)), [rnd(2, 3, 2, 2)], bn_ref),
    "BatchNorm2d-eval": (lambda: bn_eval(nn.BatchNorm2d(3)), [rnd(2, 3, 2, 2)], bn_eval_ref),
    "LayerNorm": (lambda: randomize(nn.LayerNorm((2, 3))), [rnd(2, 2, 3)],
                  lambda m, x: norm_ref(x, (1, 2), P(m.weight), P(m.bias))),
    "LayerNorm-noaffine": (lambda: nn.LayerNorm(4, elementwise_affine=False), [rnd(3, 4)],
                           lambda m, x: norm_ref(x, (1,))),
    "Dropout-eval": (lambda: nn.Dropout(0.4).eval(), [rnd(3, 4)], lambda m, x: x),
    "Embedding": (lambda: nn.Embedding(5, 3, padding_idx=1), [idx([[0, 1], [4, 1]])],
                  lambda m, i: P(m.weight)[i]),
    "Flatten": (lambda: nn.Flatten(), [rnd(2, 3, 2)], lambda m, x: x.reshape(2, 6)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 3)), [rnd(2, 6)],
                  lambda m, x: x.reshape(2, 2, 3)),
    "Identity": (lambda: nn.Identity(54, unused=1), [rnd(3)], lambda m, x: x),
    "ReLU": (lambda: nn.ReLU(), [rnd(3, 4)], lambda m, x: np.maximum(x, 0)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), [rnd(3, 4)],
                  lambda m, x: np.where(x > 0, x, 0.2 * x)),
    "GELU": (lambda: nn.GELU(), [rnd(3, 4, low=-3, high=3)],
             lambda m, x: 0.5 * x * (1 + erf(x / np.sqrt(2)))),
    "GELU-tanh": (lambda: nn.GELU("tanh"), [rnd(3, 4, low=-3, high=3)],
                  lambda m, x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                      * (x + 0.044715 * x**3)))),
    "SiLU": (lambda: nn.SiLU(), [rnd(3, 4, low=-4, high=4)], lambda m, x: x * sigmoid(x)),
    "Sigmoid": (lambda: nn.Sigmoid(), [rnd(3, 4, low=-4, high=4)], lambda m, x: sigmoid(x)),
    "Tanh": (lambda: nn.Tanh(), [rnd(3, 4)], lambda m, x: np.tanh(x)),
    "Softplus": (lambda: nn.Softplus(beta=2.0, threshold=3.0), [rnd(3, 4, low=-3, high=3)],
                 lambda m, x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2)),
    "Softmax": (lambda: nn.Softmax(dim=1), [rnd(2, 4)],
                lambda m, x: np.exp(log_softmax_ref(x, 1))),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=0), [rnd(3, 2)],
                   lambda m, x: log_softmax_ref(x, 0)),
    "MSELoss": (lambda: nn.MSELoss(), [rnd(3, 2), rnd(3, 2, seed=1)],
                lambda m, x, t: ((x - t) ** 2).mean()),
    "L1Loss-sum": (lambda: nn.L1Loss(reduction="sum"), [rnd(3, 2), rnd(3, 2, seed=1)],
                   lambda m, x, t: np.abs(x - t).sum()),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(), [rnd(4, 5), idx([1, 0, 4, 2])],
                         lambda m, x, t: ce_ref(x, t)),
    "CrossEntropyLoss-all": (
        lambda: nn.CrossEntropyLoss(weight=cg.tensor(W5.tolist()), ignore_index=2, label_smoothing=0.2),
        [rnd(4, 5), idx([1, 2, 4, 3])],
        lambda m, x, t: ce_ref(x, t, W5, 2, 0.2)),
    "CrossEntropyLoss-none": (lambda: nn.CrossEntropyLoss(reduction="none",
                                                          label_smoothing=0.1),
                              [rnd(3, 5), idx([1, 0, 4])],
                              lambda m, x, t: ce_ref(x, t, smoothing=0.1, reduction="none")),
    "NLLLoss": (lambda: nn.NLLLoss(weight=cg.tensor(W5.tolist()), ignore_index=0),
                [rnd(4, 5), idx([1, 0, 4, 3])],
                lambda m, x, t: -(x[np.arange(4), t] * W5[t] * (t != 0)).sum()
                / (W5[t] * (t != 0)).sum()),
    "BCELoss": (lambda: nn.BCELoss(weight=cg.tensor([[1.0, 2.0]])),
                [unit(3, 2), unit(3, 2, seed=1)],
                lambda m, x, t: (-(t * np.log(x) + (1 - t) * np.log(1 - x))
                                 * np.array([[1.0, 2.0]])).mean()),
    "BCEWithLogitsLoss": (lambda: nn.BCEWithLogitsLoss(pos_weight=cg.tensor(PW.tolist())),
                          [rnd(3, 2, low=-3, high=3), unit(3, 2, seed=1)],
                          lambda m, x, t: (-(PW * t * np.log(sigmoid(x))
                                             + (1 - t) * np.log(1 - sigmoid(x)))).mean()),
}
CONV_LAYERS = {k for k in LAYERS if "Conv" in k or "Pool" in k}
NOT_GRADCHECKED = {"Embedding": "integer input; its weight gradient is checked below",
                   "Dropout-eval": "the identity"}


def _layer_params(name):
    marks = [needs_conv] if name in CONV_LAYERS else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_layer_params(n) for n in LAYERS])
def test_layer_forward_matches_numpy(name):
    make, makers, ref = LAYERS[name]
    m = make()
    arrays = [mk() for mk in makers]
    inputs = [cg.from_numpy(a.astype(np.float32) if a.dtype.kind == "f" else a)
              for a in arrays]
    expected = ref(m, *arrays)
    out = m(*inputs)
    assert out.dtype == cg.float32
    assert tuple(out.shape) == np.shape(expected), (name, out.shape, np.shape(expected))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-5,
                               err_msg=name)


def _with_params(m, names, n_inputs):
    """f(*inputs, *params): m's forward with the given tensors as its parameters, so
    gradcheck perturbs the parameters too."""

    def f(*args):
        saved = dict(m._parameters)
        m._parameters.update(zip(names, args[n_inputs:]))
        try:
            return m(*args[:n_inputs])
        finally:
            m._parameters.update(saved)

    return f


@pytest.mark.parametrize("name", [_layer_params(n) for n in LAYERS
                                  if n not in NOT_GRADCHECKED])
def test_layer_gradcheck(name):
    make, makers, _ = LAYERS[name]
    m = make().double()
    inputs = []
    for k, mk in enumerate(makers):
        a = mk()
        t = cg.from_numpy(a)
        # differentiate the input, and a loss's target where PyTorch's loss does too
        wants = a.dtype.kind == "f" and (k == 0 or name in ("MSELoss", "L1Loss-sum"))
        inputs.append(t.requires_grad_() if wants else t)
    names = [k for k, p in m._parameters.items() if p is not None]
    params = [m._parameters[k].detach().requires_grad_() for k in names]
    f = _with_params(m, names, len(inputs))
    assert gradcheck(f, tuple(inputs) + tuple(params))


def test_second_order_through_functional():
    from clgraph.autograd import gradgradcheck

    x = cg.from_numpy(np.random.default_rng(4).normal(size=(2, 3))).requires_grad_()
    w = cg.from_numpy(np.random.default_rng(5).normal(size=(3, 3))).requires_grad_()
    target = cg.tensor([2, 0])

    def f(x, w):
        h = F.layer_norm(F.gelu(F.linear(x, w)), (3,))
        return F.cross_entropy(h, target, label_smoothing=0.1)

    assert gradgradcheck(f, (x, w))
    probs = cg.from_numpy(np.random.default_rng(6).uniform(size=(2, 3)))
    assert gradgradcheck(lambda x: F.binary_cross_entropy_with_logits(
        x, probs, pos_weight=cg.tensor([1.0, 2.0, 3.0], dtype=F64)), (x,))


def test_embedding_weight_gradient_skips_padding_row():
    m = nn.Embedding(4, 2, padding_idx=1)
    m(cg.tensor([[0, 1], [1, 3]])).sum().backward()
    np.testing.assert_array_equal(m.weight.grad.numpy(), [[1, 1], [0, 0], [0, 0], [1, 1]])
    np.testing.assert_array_equal(m.weight[1].detach().numpy(), [0, 0])
    w = cg.randn(4, 2, dtype=F64, requires_grad=True)
    assert gradcheck(lambda w: F.embedding(cg.tensor([2, 0, 2]), w), (w,))
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(4, 2, padding_idx=4)
    e = nn.Embedding.from_pretrained(cg.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert not e.weight.requires_grad and e(cg.tensor([1])).tolist() == [[3.0, 4.0]]


def test_embedding_scale_grad_by_freq():
    """Each row's gradient divided by how often its index occurs (the padding row: none)."""
    m = nn.Embedding(4, 2, padding_idx=1, scale_grad_by_freq=True)
    idx = cg.tensor([[0, 2, 2], [1, 2, 0]])
    y = m(idx)
    np.testing.assert_array_equal(y.detach().numpy(), m.weight.detach().numpy()[idx.numpy()])
    (y * cg.arange(1.0, 19.0).reshape(2, 3, 3)[..., :2]).sum().backward()
    # row 0 at (0,0) and (1,2): (g[0,0] + g[1,2]) / 2; row 2 at (0,1), (0,2), (1,1): sum / 3
    np.testing.assert_allclose(m.weight.grad.numpy(), [[(1 + 16) / 2, (2 + 17) / 2], [0, 0],
                                                       [(4 + 7 + 13) / 3, (5 + 8 + 14) / 3],
                                                       [0, 0]], rtol=1e-6)
    w = cg.ones(3, 2, requires_grad=True)  # without a padding row
    F.embedding(cg.tensor([2, 0, 2, 2]), w, scale_grad_by_freq=True).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [[1, 1], [0, 0], [1, 1]], rtol=1e-6)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_embedding_max_norm_renormalizes_looked_up_rows(norm_type):
    rng = np.random.default_rng(21)
    w = rng.standard_normal((6, 4)) * 2
    w[3] *= 0.01  # a row under max_norm: untouched
    idx = np.array([[0, 2, 2], [5, 0, 3]])
    want_w = w.copy()
    for i in np.unique(idx):
        n = np.linalg.norm(w[i], ord=norm_type)
        if n > 1.5:
            want_w[i] = w[i] * (1.5 / (n + 1e-7))
    weight = cg.tensor(w, requires_grad=True)
    out = F.embedding(cg.tensor(idx), weight, max_norm=1.5, norm_type=norm_type)
    np.testing.assert_allclose(weight.detach().numpy(), want_w, rtol=1e-12)  # in place
    np.testing.assert_allclose(out.detach().numpy(), want_w[idx], rtol=1e-12)
    assert weight.is_leaf and weight.requires_grad
    (out * out).sum().backward()
    want_g = np.zeros_like(w)
    np.add.at(want_g, idx, 2 * want_w[idx])
    np.testing.assert_allclose(weight.grad.numpy(), want_g, rtol=1e-12)
    m = nn.Embedding(6, 4, max_norm=1.0, norm_type=norm_type, dtype=F64)
    before = m.weight.detach().numpy()
    m(cg.tensor([1, 4]))
    after = m.weight.detach().numpy()
    np.testing.assert_array_equal(np.delete(after, [1, 4], 0), np.delete(before, [1, 4], 0))
    assert np.all(np.linalg.norm(after[[1, 4]], ord=norm_type, axis=1) <= 1.0 + 1e-9)


def test_embedding_max_norm_matches_torch():
    torch = torch_or_skip()
    torch.manual_seed(0)
    t = torch.nn.Embedding(7, 3, max_norm=1.2, norm_type=1.5, padding_idx=2).double()
    m = nn.Embedding(7, 3, max_norm=1.2, norm_type=1.5, padding_idx=2).double()
    assert repr(m) == repr(t)
    m.load_state_dict({"weight": cg.tensor(t.weight.detach().numpy())})
    idx = [[0, 2, 6], [6, 6, 1]]
    a, b = m(cg.tensor(idx)), t(torch.tensor(idx))
    (a * a).sum().backward()
    (b * b).sum().backward()
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.weight.detach().numpy(), t.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-12)


# --- train / eval behaviour -----------------------------------------------------------------


def test_dropout_train_and_eval():
    cg.manual_seed(0)
    m = nn.Dropout(0.25)
    x = cg.ones(100, 100, requires_grad=True)
    y = m(x)
    vals = y.detach().numpy()
    kept = vals != 0
    assert abs(kept.mean() - 0.75) < 0.03
    np.testing.assert_allclose(vals[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), vals)  # d/dx = mask / (1 - p)
    m.eval()
    assert m(x) is x
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 1.0).detach().numpy().sum() == 0
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        nn.Dropout(1.5)
    z = cg.ones(10)
    assert F.dropout(z, 0.5, inplace=True) is z
    # an input autograd tracks is not overwritten (the VJP reads it): a new tensor instead
    leaf = cg.ones(6, requires_grad=True)
    tracked = leaf * 2
    out = nn.Dropout(0.5, inplace=True)(tracked)
    out.sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), out.detach().numpy())
    assert F.silu(z, inplace=True) is z


def test_batchnorm_running_stats_and_modes():
    m = nn.BatchNorm1d(2, momentum=0.5)
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]], dtype=np.float32)
    m(cg.from_numpy(x))
    np.testing.assert_allclose(m.running_mean.numpy(), 0.5 * x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(m.running_var.numpy(), 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-6)
    assert m.num_batches_tracked.item() == 1 and m.num_batches_tracked.dtype == cg.int64
    m.eval()
    y = m(cg.from_numpy(x)).detach().numpy()
    rm, rv = m.running_mean.numpy(), m.running_var.numpy()
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-5)
    assert m.num_batches_tracked.item() == 1  # eval does not count
    # momentum=None: a cumulative average over the batches seen
    c = nn.BatchNorm1d(2, momentum=None)
    c(cg.from_numpy(x))
    c(cg.from_numpy(x * 3))
    np.testing.assert_allclose(c.running_mean.numpy(), (x.mean(0) + 3 * x.mean(0)) / 2,
                               rtol=1e-6)
    # without running stats the batch statistics are used in eval too
    t = nn.BatchNorm1d(2, track_running_stats=False).eval()
    assert t.running_mean is None and list(t.state_dict()) == ["weight", "bias"]
    np.testing.assert_allclose(t(cg.from_numpy(x)).detach().numpy(),
                               (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-5)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        nn.BatchNorm1d(2)(cg.ones(1, 2))
    with pytest.raises(ValueError, match=re.escape("expected 4D input (got 2D input)")):
        nn.BatchNorm2d(2)(cg.ones(3, 2))
    na = nn.BatchNorm2d(3, affine=False)
    assert na.weight is None and list(dict(na.named_parameters())) == []


def test_batchnorm_empty_batch_keeps_running_stats():
    # as in PyTorch: an empty batch gives an empty output, counts as a batch, and leaves
    # the running statistics unchanged (they were set to NaN)
    for m, shape in ((nn.BatchNorm1d(3, momentum=0.3), (0, 3, 4)),
                     (nn.BatchNorm2d(3, momentum=None), (0, 3, 2, 2))):
        out = m(cg.ones(*shape))
        assert out.shape == shape
        np.testing.assert_array_equal(m.running_mean.numpy(), np.zeros(3, np.float32))
        np.testing.assert_array_equal(m.running_var.numpy(), np.ones(3, np.float32))
        assert m.num_batches_tracked.item() == 1


def test_train_eval_flags_propagate():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2)))
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")


# --- functional -------------------------------------------------------------------------


def test_losses_are_stable_at_extremes():
    x = cg.tensor([[1000.0, -1000.0, 0.0]], requires_grad=True)
    ce = F.cross_entropy(x, cg.tensor([1]))
    assert abs(ce.item() - 2000.0) < 1e-2
    ce.backward()
    assert np.isfinite(x.grad.numpy()).all()
    z = cg.tensor([100.0, -100.0, 0.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, cg.tensor([0.0, 1.0, 1.0]), reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [100.0, 100.0, math.log(2)], rtol=1e-5)
    loss.sum().backward()
    assert np.isfinite(z.grad.numpy()).all()
    # BCE clamps its logs at -100 like PyTorch
    b = F.binary_cross_entropy(cg.tensor([0.0, 1.0]), cg.tensor([1.0, 0.0]), reduction="none")
    assert b.tolist() == [100.0, 100.0]


def test_cross_entropy_forms():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 3))
    t = np.array([[0, 3, 1], [2, 2, 0]])
    got = F.cross_entropy(cg.from_numpy(x), cg.from_numpy(t)).item()
    flat = x.transpose(0, 2, 1).reshape(-1, 4)
    assert abs(got - ce_ref(flat, t.reshape(-1))) < 1e-9
    # unbatched
    got = F.cross_entropy(cg.from_numpy(x[0, :, 0]), cg.tensor(0)).item()
    assert abs(got - ce_ref(x[0, :, 0][None], np.array([0]))) < 1e-9
    # class probabilities
    probs = rng.dirichlet(np.ones(4), size=3)
    logits = rng.normal(size=(3, 4))
    got = F.cross_entropy(cg.from_numpy(logits), cg.from_numpy(probs)).item()
    assert abs(got + (probs * log_softmax_ref(logits, 1)).sum(1).mean()) < 1e-9
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(cg.randn(2, 4), cg.tensor([1, 7]))
    with pytest.raises(ValueError, match=re.escape("Expected input batch_size (3) to match "
                                                   "target batch_size (2).")):
        F.cross_entropy(cg.randn(3, 4), cg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        F.nll_loss(cg.randn(3, 4), cg.tensor([1.0, 2.0, 3.0]))
    # as PyTorch, a target of the input's shape holds probabilities (whatever its dtype),
    # and the batch size is checked before the dtype of class indices
    with pytest.raises(RuntimeError, match="Expected floating point type for target with "
                                           "class probabilities, got Long"):
        F.cross_entropy(cg.randn(2, 3), cg.tensor([[0, 1, 2], [2, 1, 0]]))
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point"):
        F.cross_entropy(cg.randn(2, 3), cg.rand(2, 3), ignore_index=1)
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        F.cross_entropy(cg.randn(2, 3), cg.rand(2))
    with pytest.raises(ValueError, match=re.escape("Expected input batch_size (4) to match "
                                                   "target batch_size (5).")):
        F.cross_entropy(cg.randn(4, 3, 2), cg.rand(5, 2))
    close_ = F.cross_entropy(cg.tensor([[1.0, 2.0, 0.5]]), cg.tensor([[0.2, 0.3, 0.5]]),
                             ignore_index=-5).item()
    logp = log_softmax_ref(np.array([[1.0, 2.0, 0.5]]), 1)
    assert abs(close_ + (np.array([0.2, 0.3, 0.5]) * logp).sum()) < 1e-6
    with pytest.raises(ValueError, match="xx is not a valid value for reduction"):
        F.mse_loss(cg.ones(2), cg.ones(2), reduction="xx")
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        assert F.l1_loss(cg.ones(2), cg.zeros(2), size_average=False).item() == 2.0


def test_one_hot_pad_softmax_dim():
    np.testing.assert_array_equal(F.one_hot(cg.tensor([0, 2, 1])).numpy(), np.eye(3)[[0, 2, 1]])
    assert F.one_hot(cg.tensor([[1]]), 4).shape == (1, 1, 4)
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        F.one_hot(cg.tensor([3]), 2)
    with pytest.raises(RuntimeError, match="only applicable to index tensor"):
        F.one_hot(cg.tensor([1.0]))
    x = np.arange(12.0).reshape(1, 3, 4)
    for mode in ("constant", "reflect", "replicate", "circular"):
        got = F.pad(cg.from_numpy(x), (2, 1, 1, 0), mode=mode).numpy()
        np_mode = {"replicate": "edge", "circular": "wrap"}.get(mode, mode)
        np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (1, 0), (2, 1)), mode=np_mode))
    np.testing.assert_array_equal(F.pad(cg.from_numpy(x), (-1, 1), value=7.0).numpy(),
                                  np.pad(x[..., 1:], ((0, 0), (0, 0), (0, 1)),
                                         constant_values=7.0))
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(cg.ones(2), (1,))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        s = F.softmax(cg.ones(2, 3))
    np.testing.assert_allclose(s.numpy(), np.full((2, 3), 1 / 3), rtol=1e-6)
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(cg.ones(1), approximate="fast")
    with pytest.raises(RuntimeError, match=re.escape(
            "Given normalized_shape=[10], expected input with shape [*, 10], but got input of "
            "size[2, 5]")):
        nn.LayerNorm(10)(cg.ones(2, 5))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(2, 2, 3, padding_mode="mirror")


def test_functional_matches_modules_and_torch_names():
    x = cg.randn(3, 4)
    for fn in ("relu", "gelu", "silu", "sigmoid", "tanh"):
        np.testing.assert_allclose(getattr(F, fn)(x).numpy(),
                                   getattr(nn, {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU",
                                                "sigmoid": "Sigmoid", "tanh": "Tanh"}[fn])()(x)
                                   .numpy())
    assert cg.nn is nn and cg.nn.functional is F
    from clgraph import nn as nn2

    assert nn2 is nn


# --- init -------------------------------------------------------------------------------------


def test_init_functions():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("tanh") == 5 / 3 and init.calculate_gain("conv2d") == 1
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    assert init._calculate_fan_in_and_fan_out(cg.empty(8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(cg.empty(3))
    w = nn.Parameter(cg.empty(400, 100))
    assert init.kaiming_uniform_(w, a=0, nonlinearity="relu") is w
    v = w.detach().numpy()
    bound = math.sqrt(2) * math.sqrt(3 / 100)
    assert v.min() >= -bound and v.max() <= bound and v.max() > 0.95 * bound
    init.kaiming_normal_(w, mode="fan_out")
    assert abs(w.detach().numpy().std() - math.sqrt(2 / 400) * 1 / math.sqrt(1.0001)) < 3e-3
    init.xavier_normal_(w, gain=2.0)
    assert abs(w.detach().numpy().std() - 2 * math.sqrt(2 / 500)) < 3e-3
    init.xavier_uniform_(w)
    assert np.abs(w.detach().numpy()).max() <= math.sqrt(6 / 500)
    init.normal_(w, 3.0, 0.5)
    assert abs(w.detach().numpy().mean() - 3.0) < 0.01
    init.constant_(w, 0.25)
    assert (w.detach().numpy() == 0.25).all() and w.requires_grad and w.is_leaf
    init.zeros_(w)
    init.ones_(w[:2])
    assert w.detach().numpy().sum() == 200
    e = init.eye_(cg.empty(2, 3))
    np.testing.assert_array_equal(e.numpy(), np.eye(2, 3))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(w, mode="fan_avg")


def test_default_initialisation_ranges():
    lin = nn.Linear(50, 40)
    b = 1 / math.sqrt(50)
    for p in (lin.weight, lin.bias):
        v = p.detach().numpy()
        assert np.abs(v).max() <= b and v.std() > 0.4 * b
    if HAS_CONV:
        conv = nn.Conv2d(4, 8, 3)
        b = 1 / math.sqrt(36)
        assert np.abs(conv.weight.detach().numpy()).max() <= b
        assert np.abs(conv.bias.detach().numpy()).max() <= b
    emb = nn.Embedding(100, 30)
    assert abs(emb.weight.detach().numpy().std() - 1) < 0.05
    ln, bn = nn.LayerNorm(3), nn.BatchNorm2d(3)
    for m in (ln, bn):
        assert m.weight.tolist() == [1, 1, 1] and m.bias.tolist() == [0, 0, 0]
    assert bn.running_var.tolist() == [1, 1, 1] and bn.running_mean.tolist() == [0, 0, 0]
    d = nn.Linear(2, 3, dtype=F64)
    assert d.weight.dtype == F64 and d.bias.dtype == F64


# --- Module API ------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("count", cg.zeros(1))
        self.register_buffer("scratch", cg.zeros(2), persistent=False)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = Block()
        self.shared = self.a  # the same module twice: listed once, saved under both names
        self.scale = nn.Parameter(cg.ones(1))
        self.register_parameter("unused", None)
        self.head = nn.Sequential(nn.Linear(2, 3), nn.ReLU())

    def forward(self, x):
        return self.head(self.b.lin(self.a.lin(x)) * self.scale)


def test_registration_and_traversal_order():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "a.lin.weight", "a.lin.bias", "b.lin.weight", "b.lin.bias",
        "head.0.weight", "head.0.bias"]
    assert len(list(net.parameters())) == 7
    assert [n for n, _ in net.named_parameters(remove_duplicate=False)].count(
        "shared.lin.weight") == 1
    assert [n for n, _ in net.named_buffers()] == ["a.count", "a.scratch", "b.count",
                                                   "b.scratch"]
    assert [n for n, _ in net.named_children()] == ["a", "b", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "a", "a.lin", "b", "b.lin", "head",
                                                   "head.0", "head.1"]
    assert [n for n, _ in net.named_modules(prefix="model")][:2] == ["model", "model.a"]
    assert list(net.state_dict()) == [
        "scale", "a.count", "a.lin.weight", "a.lin.bias", "b.count", "b.lin.weight",
        "b.lin.bias", "shared.count", "shared.lin.weight", "shared.lin.bias",
        "head.0.weight", "head.0.bias"]
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert net.get_submodule("head.0") is net.head[0]
    assert net.get_parameter("a.lin.bias") is net.a.lin.bias
    assert net.get_buffer("b.count") is net.b.count
    assert isinstance(net.scale, nn.Parameter) and net.unused is None
    assert "lin" in dir(net.a) and "count" in dir(net.a)


def test_setattr_getattr_delattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(cg.ones(2))
    assert "w" in m._parameters and "w" not in m.__dict__
    with pytest.raises(TypeError, match=r"cannot assign 'torch.FloatTensor' as parameter 'w' "
                                        r"\(torch.nn.Parameter or None expected\)"):
        m.w = cg.ones(2)
    m.w = None
    assert m.w is None and list(m.parameters()) == []
    m.sub = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="as child module 'sub'"):
        m.sub = 3
    m.register_buffer("buf", cg.zeros(1))
    m.buf = cg.ones(1)  # re-assigning a buffer keeps it a buffer
    assert m._buffers["buf"].tolist() == [1.0]
    with pytest.raises(TypeError, match="as buffer 'buf'"):
        m.buf = 3
    m.kept = nn.Buffer(cg.ones(1), persistent=False)
    assert "kept" in m._buffers and "kept" in m._non_persistent_buffers_set
    assert list(m.state_dict()) == ["buf", "sub.weight", "sub.bias"]
    m.plain = 5
    assert m.plain == 5 and "plain" in m.__dict__
    m.sub = nn.Parameter(cg.ones(1))  # a parameter replaces a module of the same name
    assert "sub" not in m._modules and isinstance(m.sub, nn.Parameter)
    del m.sub, m.buf, m.plain
    assert not m._parameters.get("sub") and "buf" not in m._buffers
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nothing'"):
        m.nothing
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        m.register_buffer("training", cg.ones(1))
    with pytest.raises(KeyError, match="buffer name can.*t contain"):
        m.register_buffer("a.b", cg.ones(1))
    with pytest.raises(TypeError, match="cannot assign 'int' object to parameter 'p'"):
        m.register_parameter("p", 1)
    with pytest.raises(ValueError, match="Cannot assign non-leaf Tensor to parameter 'q'"):
        m.register_parameter("q", _nonleaf_param(nn.Parameter(cg.ones(1))))
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        m.add_module("x", 3)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(cg.ones(1))

    with pytest.raises(AttributeError, match="cannot assign parameters before "
                                             "Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required '
                                                  r'"forward" function'):
        nn.Module()(1)


def _nonleaf_param(p):
    q = p * 2
    q.__class__ = nn.Parameter
    return q


def test_parameter_class():
    data = cg.tensor([1.0, 2.0])
    p = nn.Parameter(data)
    assert isinstance(p, nn.Parameter) and isinstance(p, cg.Tensor)
    assert p.requires_grad and p.is_leaf and p._storage is data._storage
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert type(p * 2) is cg.Tensor and type(p.detach()) is cg.Tensor
    assert not nn.Parameter(cg.ones(1), requires_grad=False).requires_grad
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q._storage is not p._storage and q.tolist() == [1, 2]
    assert nn.Parameter().shape == (0,)


def test_state_dict_detached_and_load_errors():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    assert all(not v.requires_grad for v in sd.values())
    assert sd["scale"]._storage is net.scale._storage  # a view, not a copy
    assert net.state_dict(keep_vars=True)["scale"] is net.scale
    other = Net()
    res = other.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    np.testing.assert_array_equal(other.head[0].weight.detach().numpy(),
                                  net.head[0].weight.detach().numpy())
    bad = OrderedDict(sd)
    del bad["a.lin.bias"]
    bad["extra.weight"] = cg.ones(1)
    with pytest.raises(RuntimeError) as e:
        other.load_state_dict(bad)
    assert str(e.value) == (
        'Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: '
        '"a.lin.bias". \n\tUnexpected key(s) in state_dict: "extra.weight". ')
    res = other.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["a.lin.bias"] and res.unexpected_keys == ["extra.weight"]
    bad = OrderedDict(sd)
    bad["head.0.weight"] = cg.ones(2, 2)
    with pytest.raises(RuntimeError, match=re.escape(
            "size mismatch for head.0.weight: copying a param with shape torch.Size([2, 2]) "
            "from checkpoint, the shape in current model is torch.Size([3, 2]).")):
        other.load_state_dict(bad, strict=False)
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        other.load_state_dict([1, 2])
    # a plain dict of float64 tensors loads into float32 parameters in place
    p = other.scale
    other.load_state_dict({k: v.double() for k, v in sd.items()})
    assert other.scale is p and p.dtype == cg.float32


def test_to_dtype_keeps_parameter_identity():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    params = list(net.parameters())
    net(cg.randn(4, 2)).sum().backward()
    assert net.to(F64) is net
    assert all(a is b for a, b in zip(params, net.parameters()))
    assert all(p.dtype == F64 and p.grad.dtype == F64 for p in params)
    assert net[1].running_mean.dtype == F64 and net[1].num_batches_tracked.dtype == cg.int64
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    out = net(cg.randn(4, 2, dtype=F64))
    assert out.dtype == F64
    net.float()
    assert params[0].dtype == cg.float32
    dev = params[0].device
    net.to(dev, F64)
    net.to(device=str(dev), dtype=cg.float32)
    net.to(cg.ones(1, dtype=F64))
    assert params[0].dtype == F64 and params[0].device == dev
    net.cpu()
    net.half()
    assert params[0].dtype == cg.float16 and net[1].num_batches_tracked.dtype == cg.int64
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point"):
        net.to(cg.int64)


def test_zero_grad_requires_grad_apply_hooks():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    net(cg.randn(3, 2)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "Linear", "Sequential"]
    calls = []
    h1 = net[0].register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = net[0].register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    y = net[0](cg.ones(1, 2))
    np.testing.assert_allclose(y.detach().numpy(), net[0].bias.detach().numpy()[None] + 1)
    assert calls == [(1, 2)]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(net[0](cg.zeros(1, 2)).detach().numpy(),
                               net[0].bias.detach().numpy()[None])


def _grads(gs):
    return [None if g is None else g.detach().numpy().tolist() for g in gs]


def test_full_backward_hooks_see_and_replace_gradients():
    m = nn.Linear(3, 2).double()
    W = m.weight.detach().numpy()
    x = cg.tensor(np.arange(6.0).reshape(2, 3), dtype=F64, requires_grad=True)
    u = np.array([[1.0, 2.0], [3.0, 4.0]])
    log = []

    def pre(mod, go):
        log.append(("pre", mod, _grads(go)))
        return (go[0] * 3,)

    def hook(mod, gi, go):
        log.append(("full", mod, _grads(gi), _grads(go)))
        return (gi[0] * 2,)

    h1 = m.register_full_backward_hook(hook)
    h2 = m.register_full_backward_pre_hook(pre)
    (m(x) * cg.tensor(u)).sum().backward()
    assert [e[0] for e in log] == ["pre", "full"] and log[0][1] is m
    assert log[0][2] == [u.tolist()]
    np.testing.assert_allclose(log[1][3], [3 * u])  # grad_output after the pre-hook
    np.testing.assert_allclose(log[1][2], [3 * u @ W])  # grad_input seen by the hook
    np.testing.assert_allclose(x.grad.numpy(), 6 * u @ W)  # the hook's replacement
    np.testing.assert_allclose(m.weight.grad.numpy(), 3 * u.T @ x.detach().numpy())
    h1.remove()
    h2.remove()
    x.grad = None
    log.clear()
    (m(x) * cg.tensor(u)).sum().backward()
    assert not log
    np.testing.assert_allclose(x.grad.numpy(), u @ W)
    with cg.no_grad():
        m.register_full_backward_hook(hook)
        m(x)


def test_full_backward_hooks_tuples_nesting_and_no_input_grad():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2).double()

        def forward(self, a, k, b):
            return a * k + self.lin(b), b.sum(), 3

    m = Two()
    log = []
    m.register_full_backward_hook(lambda mod, gi, go: log.append(("m", _grads(gi),
                                                                  _grads(go))))
    m.lin.register_full_backward_hook(lambda mod, gi, go: log.append(("lin", _grads(gi),
                                                                      _grads(go))))
    a = cg.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    b = cg.tensor([3.0, 5.0], dtype=F64, requires_grad=True)
    o, s, c = m(a, 2.0, b)
    assert c == 3
    o.sum().backward()  # s unused: its grad_output is None
    W = m.lin.weight.detach().numpy()
    assert log[0][0] == "lin" and log[0][2] == [[1.0, 1.0]]
    np.testing.assert_allclose(log[0][1][0], np.ones(2) @ W)
    assert log[1][0] == "m" and log[1][2] == [[1.0, 1.0], None, None]
    np.testing.assert_allclose(log[1][1][0], [2.0, 2.0])
    assert log[1][1][1] is None
    np.testing.assert_allclose(log[1][1][2], np.ones(2) @ W)
    # no input requires grad: the hook runs with grad_input all None, and warns as PyTorch
    lin = nn.Linear(2, 1)
    seen = []
    lin.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, len(go))))
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        lin(cg.ones(1, 2)).sum().backward()
    assert seen == [((None,), 1)]
    lin.register_full_backward_hook(lambda mod, gi, go: (cg.ones(1, 2),))
    with pytest.raises(RuntimeError, match="where no input requires gradient should always "
                                           "return None"), pytest.warns(UserWarning):
        lin(cg.ones(1, 2)).sum().backward()
    bad = nn.Linear(2, 1)
    bad.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of "
                                           "grad_input, got 2, but expected 1"):
        bad(cg.ones(1, 2, requires_grad=True)).sum().backward()


def test_full_backward_hooks_match_torch():
    torch = torch_or_skip()

    def run(lib):
        lib.manual_seed(0)
        net = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2)).double()
        log = []
        for i, mod in enumerate(net):
            mod.register_full_backward_pre_hook(
                lambda m, go, i=i: log.append((i, "pre", _grads(go))))
            mod.register_full_backward_hook(
                lambda m, gi, go, i=i: log.append((i, "full", _grads(gi), _grads(go))))
        x = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
        (net(x) ** 2).sum().backward()
        return log, {k: v.detach().numpy() for k, v in net.state_dict().items()}

    want, sd = run(torch)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    net.load_state_dict({k: cg.tensor(v) for k, v in sd.items()})
    log = []
    for i, mod in enumerate(net):
        mod.register_full_backward_pre_hook(lambda m, go, i=i: log.append((i, "pre",
                                                                          _grads(go))))
        mod.register_full_backward_hook(
            lambda m, gi, go, i=i: log.append((i, "full", _grads(gi), _grads(go))))
    x = cg.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    (net(x) ** 2).sum().backward()
    assert [e[:2] for e in log] == [e[:2] for e in want]
    for got, exp in zip(log, want):
        for g, e in zip(got[2:], exp[2:]):
            np.testing.assert_allclose(np.array(g, dtype=float), np.array(e, dtype=float),
                                       atol=1e-12)


def test_state_dict_hooks_extra_state_set_submodule():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 1)
            self.steps = 0

        def get_extra_state(self):
            return {"steps": self.steps}

        def set_extra_state(self, state):
            self.steps = state["steps"]

    a, b = Counter(), Counter()
    a.steps = 7
    sd = a.state_dict()
    assert list(sd) == ["_extra_state", "fc.weight", "fc.bias"]
    b.load_state_dict(sd)
    assert b.steps == 7
    with pytest.raises(RuntimeError,
                       match=re.escape('Missing key(s) in state_dict: "_extra_state"')):
        b.load_state_dict({k: v for k, v in sd.items() if k != "_extra_state"})
    seen = []
    h = b.register_state_dict_pre_hook(lambda m, prefix, keep_vars: seen.append(prefix))
    b.register_state_dict_post_hook(lambda m, d, prefix, meta: d.pop(prefix + "fc.bias"))
    assert list(b.state_dict()) == ["_extra_state", "fc.weight"] and seen == [""]
    h.remove()
    b.register_load_state_dict_pre_hook(
        lambda m, d, prefix, *rest: d.setdefault(prefix + "fc.bias", cg.zeros(1)))
    b.register_load_state_dict_post_hook(lambda m, keys: keys.unexpected_keys.clear())
    b.load_state_dict({"fc.weight": cg.ones(1, 1), "_extra_state": {"steps": 1},
                       "junk": cg.ones(1)})
    assert b.fc.bias.tolist() == [0.0] and b.steps == 1
    net = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    net.set_submodule("1.0", nn.Tanh())
    assert isinstance(net[1][0], nn.Tanh)
    with pytest.raises(AttributeError, match="has no attribute `9`"):
        net.set_submodule("1.9", nn.Tanh())


def test_deepcopy_module():
    net = Net()
    twin = copy.deepcopy(net)
    assert twin.shared is twin.a and twin.a is not net.a
    assert isinstance(twin.scale, nn.Parameter)
    assert twin.a.lin.weight._storage is not net.a.lin.weight._storage
    x = cg.randn(2, 2)
    np.testing.assert_allclose(twin(x).detach().numpy(), net(x).detach().numpy())


# --- containers ---------------------------------------------------------------------------------


def test_sequential():
    l1, r, l2 = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(l1, r, l2)
    assert len(s) == 3 and s[0] is l1 and s[-1] is l2 and list(s) == [l1, r, l2]
    assert isinstance(s[1:], nn.Sequential) and list(s[1:]) == [r, l2]
    assert list(s[1:]._modules) == ["1", "2"]
    x = cg.randn(4, 2)
    np.testing.assert_allclose(s(x).detach().numpy(), l2(r(l1(x))).detach().numpy())
    with pytest.raises(IndexError, match="index 3 is out of range"):
        s[3]
    s.append(nn.Sigmoid())
    assert list(s._modules) == ["0", "1", "2", "3"]
    del s[1]
    assert list(s._modules) == ["0", "1", "2"] and s[1] is l2
    s.insert(1, r)
    assert s[1] is r and len(s) == 4
    assert isinstance(s.pop(3), nn.Sigmoid) and len(s) == 3
    s[0] = nn.Identity()
    assert isinstance(s[0], nn.Identity)
    named = nn.Sequential(OrderedDict([("conv", nn.Identity()), ("act", nn.ReLU())]))
    assert list(dict(named.named_children())) == ["conv", "act"] and named.act is named[1]
    both = s + named
    assert len(both) == 5 and list(both._modules) == [str(i) for i in range(5)]
    s.extend([nn.Tanh()])
    assert isinstance(s[-1], nn.Tanh)
    assert repr(nn.Sequential()) == "Sequential()"


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.ReLU())
    layers += [nn.Tanh()]
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "Linear", "Linear",
                                                  "ReLU", "Tanh"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert list(layers._modules) == [str(i) for i in range(5)]
    assert isinstance(layers.pop(), nn.Tanh)
    layers[-1] = nn.Sigmoid()
    assert isinstance(layers[3], nn.Sigmoid)
    assert repr(layers) == ("ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, "
                            "bias=True)\n  (3): Sigmoid()\n)")
    with pytest.raises(IndexError, match="index 9 is out of range"):
        layers[9]
    with pytest.raises(TypeError, match="ModuleList.extend should be called with an iterable"):
        layers.extend(3)
    assert repr(nn.ModuleList()) == "ModuleList()"
    d = nn.ModuleDict({"b": nn.Linear(1, 1), "a": nn.ReLU()})
    assert list(d) == ["b", "a"] and "a" in d and len(d) == 2
    d["c"] = nn.Tanh()
    d.update([("e", nn.Identity())])
    assert list(d.keys()) == ["b", "a", "c", "e"]
    assert isinstance(d.pop("a"), nn.ReLU) and "a" not in d
    assert [k for k, _ in d.items()] == ["b", "c", "e"] and len(list(d.values())) == 3
    assert list(d.state_dict()) == ["b.weight", "b.bias"]
    with pytest.raises(ValueError, match="element #0 has length 1; 2 is required"):
        d.update([("x",)])
    d.clear()
    assert len(d) == 0


# --- reprs -----------------------------------------------------------------------------------


def test_reprs():
    assert repr(nn.Linear(2, 3, bias=False)) == \
        "Linear(in_features=2, out_features=3, bias=False)"
    assert repr(nn.Conv2d(3, 16, 3, stride=2, padding=1, groups=1, bias=False)) == \
        "Conv2d(3, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"
    assert repr(nn.MaxPool2d(2)) == \
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.BatchNorm1d(4)) == ("BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, "
                                       "bias=True, track_running_stats=True)")
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    assert repr(nn.ReLU()) == "ReLU()" and repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.GELU()) == "GELU(approximate='none')"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Dropout(0.1)))
    assert repr(net) == ("Sequential(\n  (0): Linear(in_features=2, out_features=2, bias=True)\n"
                         "  (1): Sequential(\n    (0): ReLU()\n    (1): Dropout(p=0.1, "
                         "inplace=False)\n  )\n)")

    class Multi(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 1)

        def extra_repr(self):
            return "a=1\nb=2"

    assert repr(Multi()) == ("Multi(\n  a=1\n  b=2\n  (fc): Linear(in_features=1, "
                             "out_features=1, bias=True)\n)")


# --- the seed tutorial ------------------------------------------------------------------------


def test_seed_tutorial_model(capsys):
    import clgraph as torch
    import clgraph.nn as nn

    class SimpleNN(nn.Module):
        def __init__(self):
            super(SimpleNN, self).__init__()
            self.fc1 = nn.Linear(2, 2)  # 输入层到隐藏层
            self.fc2 = nn.Linear(2, 1)  # 隐藏层到输出层

        def forward(self, x):
            x = torch.relu(self.fc1(x))  # ReLU 激活函数
            x = self.fc2(x)
            return x

    model = SimpleNN()
    print(model)
    x = torch.randn(1, 2)
    output = model(x)
    print(output)
    criterion = nn.MSELoss()
    target = torch.randn(1, 1)
    loss = criterion(output, target)
    print(loss)
    loss.backward()
    out = capsys.readouterr().out
    assert out.startswith("SimpleNN(\n  (fc1): Linear(in_features=2, out_features=2, bias=True)"
                          "\n  (fc2): Linear(in_features=2, out_features=1, bias=True)\n)\n")
    assert "grad_fn=<MeanBackward0>" in out
    h = np.maximum(x.numpy() @ P(model.fc1.weight).T + P(model.fc1.bias), 0)
    expected = h @ P(model.fc2.weight).T + P(model.fc2.bias)
    np.testing.assert_allclose(output.detach().numpy(), expected, rtol=1e-5)
    assert abs(loss.item() - ((expected - target.numpy()) ** 2).mean()) < 1e-5
    assert all(p.grad is not None for p in model.parameters())
    model.to(torch.device("cpu"))
    assert model(x).shape == (1, 1)


# --- PyTorch parity ---------------------------------------------------------------------------

# constructor calls evaluated against both torch.nn and clgraph.nn, with an input shape
PARITY = [
    ("Linear(4, 3)", (2, 4)),
    ("Linear(3, 2, bias=False)", (2, 2, 3)),
    ("Conv2d(2, 4, 3)", (2, 2, 5, 5)),
    (("Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, "
      "bias=False)"), (1, 4, 6, 6)),
    ("Conv2d(2, 3, 4, padding='same')", (1, 2, 5, 5)),
    ("Conv2d(2, 3, 3, padding=1, padding_mode='circular')", (1, 2, 4, 4)),
    ("Conv2d(2, 3, 3, padding=(1, 2), padding_mode='replicate')", (1, 2, 4, 4)),
    ("MaxPool2d(2)", (1, 2, 4, 4)),
    ("MaxPool2d(3, stride=2, padding=1, ceil_mode=True)", (1, 2, 6, 6)),
    ("AvgPool2d(3, stride=2, padding=1, count_include_pad=False)", (1, 2, 5, 5)),
    ("AdaptiveAvgPool2d((2, 3))", (1, 2, 5, 7)),
    ("AdaptiveAvgPool2d(1)", (2, 3, 4, 4)),
    ("BatchNorm1d(3)", (5, 3)),
    ("BatchNorm1d(3, momentum=None, bias=False)", (4, 3, 2)),
    ("BatchNorm2d(3, affine=False)", (2, 3, 2, 2)),
    ("BatchNorm2d(3, track_running_stats=False)", (2, 3, 2, 2)),
    ("LayerNorm((3, 4))", (2, 3, 4)),
    ("LayerNorm(4, elementwise_affine=False)", (3, 4)),
    ("LayerNorm(4, bias=False)", (3, 4)),
    ("Embedding(6, 3, padding_idx=2)", "index"),
    ("Flatten()", (2, 3, 2)),
    ("Flatten(0, 1)", (2, 3, 2)),
    ("Unflatten(1, (2, 3))", (2, 6)),
    ("Identity()", (3,)),
    ("ReLU()", (3, 4)),
    ("LeakyReLU(0.2)", (3, 4)),
    ("GELU()", (3, 4)),
    ("GELU(approximate='tanh')", (3, 4)),
    ("SiLU()", (3, 4)),
    ("Sigmoid()", (3, 4)),
    ("Tanh()", (3, 4)),
    ("Softplus(beta=2.0, threshold=1.0)", (3, 4)),
    ("Softmax(dim=1)", (2, 5)),
    ("LogSoftmax(dim=-1)", (2, 5)),
    ("Dropout(p=0.3)", (3, 4)),
]

LOSS_PARITY = [
    ("MSELoss()", "float"),
    ("MSELoss(reduction='sum')", "float"),
    ("L1Loss(reduction='none')", "float"),
    ("SmoothL1Loss(beta=0.5)", "float"),
    ("CrossEntropyLoss()", "class"),
    ("CrossEntropyLoss(weight=W, ignore_index=1, label_smoothing=0.2)", "class"),
    ("CrossEntropyLoss(reduction='none', label_smoothing=0.1)", "class"),
    ("CrossEntropyLoss(weight=W, reduction='sum')", "class"),
    ("CrossEntropyLoss(label_smoothing=0.3)", "kdim"),
    ("CrossEntropyLoss(weight=W, label_smoothing=0.1)", "probs"),
    ("NLLLoss(weight=W, ignore_index=0)", "class"),
    ("NLLLoss(reduction='none')", "kdim"),
    ("BCELoss(weight=W[:4])", "unit"),
    ("BCEWithLogitsLoss(pos_weight=W[:4])", "logit"),
    ("BCEWithLogitsLoss(weight=W[:4], reduction='sum')", "logit"),
]


def _needs_conv_spec(spec):
    return any(k in spec for k in ("Conv", "Pool"))


def _torch_to_cg(t):
    return cg.from_numpy(t.detach().numpy().copy())


def _sync_params(tm, cm):
    """Copy torch's state (parameters and buffers) into the clgraph module."""
    res = cm.load_state_dict({k: _torch_to_cg(v) for k, v in tm.state_dict().items()})
    assert res.missing_keys == [] and res.unexpected_keys == []


def _close(a, b, what, rtol=2e-5, atol=2e-5):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64),
                               b.detach().numpy().astype(np.float64), rtol=rtol, atol=atol,
                               err_msg=what)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("spec,shape", [
    pytest.param(s, sh, id=s, marks=[needs_conv] if _needs_conv_spec(s) else [])
    for s, sh in PARITY])
def test_layer_parity_with_torch(spec, shape):
    torch = torch_or_skip()
    tm = eval("torch.nn." + spec)
    cm = eval("nn." + spec)
    assert repr(cm) == repr(tm)
    assert list(cm.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in cm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    _sync_params(tm, cm)
    if spec.startswith("Dropout"):
        tm.eval(), cm.eval()
    rng = np.random.default_rng(0)
    if shape == "index":
        x_np = np.array([[0, 2, 5], [2, 1, 1]])
        tx, cx = torch.from_numpy(x_np), cg.from_numpy(x_np)
    else:
        x_np = rng.normal(size=shape).astype(np.float32)
        tx = torch.from_numpy(x_np).requires_grad_()
        cx = cg.from_numpy(x_np).requires_grad_()
    ty, cy = tm(tx), cm(cx)
    _close(ty.detach().numpy(), cy, f"{spec} forward")
    r = rng.normal(size=tuple(ty.shape)).astype(np.float32)
    (ty * torch.from_numpy(r)).sum().backward()
    (cy * cg.from_numpy(r)).sum().backward()
    if shape != "index":
        _close(tx.grad.numpy(), cx.grad, f"{spec} input grad", rtol=1e-4, atol=1e-4)
    for (name, tp), cp in zip(tm.named_parameters(), cm.parameters()):
        _close(tp.grad.numpy(), cp.grad, f"{spec} grad of {name}", rtol=1e-4, atol=1e-4)
    for (name, tb), cb in zip(tm.named_buffers(), cm.buffers()):
        _close(tb.numpy(), cb, f"{spec} buffer {name} after forward")


@pytest.mark.parametrize("spec,kind", LOSS_PARITY, ids=[s for s, _ in LOSS_PARITY])
def test_loss_parity_with_torch(spec, kind):
    torch = torch_or_skip()
    w = np.array([0.5, 1.0, 2.0, 0.25, 1.5], dtype=np.float32)
    tm = eval("torch.nn." + spec, {"torch": torch, "W": torch.from_numpy(w)})
    cm = eval("nn." + spec, {"nn": nn, "W": cg.from_numpy(w)})
    assert repr(cm) == repr(tm)
    assert list(cm.state_dict()) == list(tm.state_dict())
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5)).astype(np.float32)
    if kind == "float":
        t = rng.normal(size=(3, 5)).astype(np.float32)
    elif kind == "class":
        t = np.array([1, 0, 4])
    elif kind == "kdim":
        x = rng.normal(size=(2, 5, 3)).astype(np.float32)
        t = np.array([[1, 0, 4], [2, 2, 3]])
    elif kind == "probs":
        t = rng.dirichlet(np.ones(5), size=3).astype(np.float32)
    elif kind == "unit":
        x = rng.uniform(0.05, 0.95, size=(3, 4)).astype(np.float32)
        t = rng.uniform(0, 1, size=(3, 4)).astype(np.float32)
    else:
        x = rng.normal(size=(3, 4)).astype(np.float32) * 3
        t = rng.uniform(0, 1, size=(3, 4)).astype(np.float32)
    if kind == "kdim" and spec.startswith("NLL"):
        x = np.log(np.exp(x) / np.exp(x).sum(1, keepdims=True)).astype(np.float32)
    tx, cx = torch.from_numpy(x).requires_grad_(), cg.from_numpy(x).requires_grad_()
    ty, cy = tm(tx, torch.from_numpy(t)), cm(cx, cg.from_numpy(t))
    _close(ty.detach().numpy(), cy, f"{spec} value")
    ty.sum().backward()
    cy.sum().backward()
    _close(tx.grad.numpy(), cx.grad, f"{spec} input grad", rtol=1e-4, atol=1e-5)


def _make_net(nn_mod, lib):
    class Net(nn_mod.Module):
        def __init__(self):
            super().__init__()
            self.features = nn_mod.Sequential(nn_mod.Conv2d(1, 4, 3, padding=1),
                                              nn_mod.BatchNorm2d(4), nn_mod.ReLU(),
                                              nn_mod.MaxPool2d(2))
            self.pool = nn_mod.AdaptiveAvgPool2d(1)
            self.blocks = nn_mod.ModuleList([nn_mod.Linear(4, 4) for _ in range(2)])
            self.heads = nn_mod.ModuleDict({"cls": nn_mod.Linear(4, 3),
                                            "norm": nn_mod.LayerNorm(4)})
            self.emb = nn_mod.Embedding(5, 4, padding_idx=0)
            self.alias = self.blocks[0]
            self.gain = nn_mod.Parameter(lib.ones(4))
            self.register_buffer("offset", lib.zeros(4))
            self.register_buffer("cache", lib.zeros(2), persistent=False)
            self.drop = nn_mod.Dropout(0.1)

        def forward(self, x, tokens):
            h = self.pool(self.features(x)).flatten(1) * self.gain + self.offset
            for block in self.blocks:
                h = nn_mod.functional.gelu(block(h))
            h = self.heads["norm"](self.drop(h) + self.emb(tokens).mean(1))
            return self.heads["cls"](h)

    return Net()


def test_model_parity_with_torch():
    torch = torch_or_skip()
    if not HAS_CONV:
        pytest.skip("clgraph.ops.conv (conv/pool kernels) is not in this tree yet")
    tnet, cnet = _make_net(torch.nn, torch), _make_net(nn, cg)
    assert repr(cnet) == repr(tnet)
    assert list(cnet.state_dict()) == list(tnet.state_dict())
    for what in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(cnet, what)()] == [n for n, _ in getattr(tnet, what)()]
    _sync_params(tnet, cnet)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 1, 6, 6)).astype(np.float32)
    tok = np.array([[0, 1, 2], [3, 4, 0], [1, 1, 1]])
    tnet.eval(), cnet.eval()
    ty = tnet(torch.from_numpy(x), torch.from_numpy(tok))
    cy = cnet(cg.from_numpy(x), cg.from_numpy(tok))
    _close(ty.detach().numpy(), cy, "Net forward (eval)", rtol=1e-4, atol=1e-5)
    tnet.train(), cnet.train()
    tnet.drop.p = cnet.drop.p = 0.0
    t = np.array([0, 2, 1])
    tl = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x), torch.from_numpy(tok)),
                                           torch.from_numpy(t))
    cl = F.cross_entropy(cnet(cg.from_numpy(x), cg.from_numpy(tok)), cg.from_numpy(t))
    _close(tl.detach().numpy(), cl, "Net loss (train)", rtol=1e-4)
    tl.backward()
    cl.backward()
    for (name, tp), cp in zip(tnet.named_parameters(), cnet.parameters()):
        _close(tp.grad.numpy(), cp.grad, f"grad of {name}", rtol=1e-3, atol=1e-5)
    for (name, tb), cb in zip(tnet.named_buffers(), cnet.buffers()):
        _close(tb.numpy(), cb, f"buffer {name}", rtol=1e-4, atol=1e-6)


def test_load_state_dict_errors_match_torch():
    torch = torch_or_skip()

    def make(nn_mod):
        class SimpleNN(nn_mod.Module):
            def __init__(self, hidden):
                super().__init__()
                self.fc1 = nn_mod.Linear(2, hidden)
                self.fc2 = nn_mod.Linear(hidden, 1)

        return SimpleNN

    tsd = make(torch.nn)(3).state_dict()
    del tsd["fc2.bias"]
    tsd["fc3.weight"] = torch.ones(1)
    csd = OrderedDict((k, _torch_to_cg(v)) for k, v in tsd.items())
    for strict in (True, False):
        with pytest.raises(RuntimeError) as te:
            make(torch.nn)(2).load_state_dict(tsd, strict=strict)
        with pytest.raises(RuntimeError) as ce:
            make(nn)(2).load_state_dict(csd, strict=strict)
        assert str(ce.value) == str(te.value)
    tres = make(torch.nn)(3).load_state_dict(tsd, strict=False)
    cres = make(nn)(3).load_state_dict(csd, strict=False)
    assert cres == tuple(tres) and repr(cres) == repr(tres)



def test_pad_negative_amounts_in_reflect_replicate_circular():
    """A negative amount crops that side; reflect and replicate read the other side from the
    uncropped dim (PyTorch's source index j - left), circular wraps the cropped one."""
    x = cg.from_numpy(np.arange(4.0).reshape(1, 1, 4))
    cases = {("replicate", (-4, 5)): [3, 3, 3, 3, 3], ("replicate", (-2, 5)): [2, 3, 3, 3, 3, 3, 3],
             ("replicate", (2, -1)): [0, 0, 0, 1, 2], ("replicate", (3, -2)): [0, 0, 0, 0, 1],
             ("replicate", (1, -3)): [0, 0], ("reflect", (-2, 3)): [2, 3, 2, 1, 0],
             ("reflect", (3, -2)): [3, 2, 1, 0, 1], ("reflect", (-4, 1)): [2],
             ("reflect", (-1, 2)): [1, 2, 3, 2, 1], ("circular", (-1, 2)): [1, 2, 3, 1, 2],
             ("circular", (2, -1)): [1, 2, 0, 1, 2], ("circular", (-3, 1)): [3, 3]}
    for (mode, amounts), want in cases.items():
        np.testing.assert_array_equal(F.pad(x, amounts, mode).numpy()[0, 0], want,
                                      err_msg=f"{mode} {amounts}")
    for mode, amounts in (("replicate", (-4, 0)), ("reflect", (-4, -1))):
        with pytest.raises(RuntimeError, match=r"too small for padding .* output size is"):
            F.pad(x, amounts, mode)
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        F.pad(x, (-1, 4), "reflect")
    for mode, amounts in (("replicate", (-3, 4, 2, -2)), ("reflect", (-2, 3, 1, -2))):
        assert gradcheck(lambda a, m=mode, p=amounts: F.pad(a, p, m),
                         (cg.from_numpy(rnd(2, 3, 4, seed=3)())
                          .requires_grad_(),))


def test_batch_norm_passes_an_empty_1d_input_through():
    x = cg.zeros(0, dtype=F64).requires_grad_()
    y = F.batch_norm(x, cg.zeros(0, dtype=F64), cg.zeros(0, dtype=F64), training=True)
    assert y.shape == (0,) and y.dtype == F64
    y.sum().backward()
    assert x.grad.shape == (0,)
    with pytest.raises(RuntimeError, match="running_mean should contain 0 elements not 3"):
        F.batch_norm(cg.zeros(0), cg.zeros(3), cg.ones(3))
    with pytest.raises(ValueError, match="expected at least 2D input"):
        F.batch_norm(cg.ones(3), None, None, training=True)

def test_functional_parity_with_torch():
    torch = torch_or_skip()
    tF = torch.nn.functional
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    for pad, mode in [((1, 2), "constant"), ((1, 1, 2, 0), "reflect"),
                      ((2, 1, 1, 1), "replicate"), ((1, 3), "circular"), ((-1, 2), "constant"),
                      ((-3, 4, 1, -2), "replicate"), ((-2, 3, 2, -1), "reflect"),
                      ((-1, 2, 1, -2), "circular")]:
        _close(tF.pad(torch.from_numpy(x), pad, mode=mode).numpy(),
               F.pad(cg.from_numpy(x), pad, mode=mode), f"pad {pad} {mode}")
    t = np.array([[0, 2], [1, 1]])
    np.testing.assert_array_equal(F.one_hot(cg.from_numpy(t), 4).numpy(),
                                  tF.one_hot(torch.from_numpy(t), 4).numpy())
    _close(tF.normalize(torch.from_numpy(x), dim=1).numpy(),
           F.normalize(cg.from_numpy(x), dim=1), "normalize")
    _close(tF.logsigmoid(torch.from_numpy(x * 30)).numpy(), F.logsigmoid(cg.from_numpy(x * 30)),
           "logsigmoid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for shape in [(4,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]:
            a = rng.normal(size=shape).astype(np.float32)
            _close(tF.softmax(torch.from_numpy(a)).numpy(), F.softmax(cg.from_numpy(a)),
                   f"softmax implicit dim {shape}")


# --- nn.utils: gradient clipping ---------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_against_numpy(norm_type):
    rng = np.random.default_rng(8)
    gs = [rng.standard_normal(s) for s in ((3, 4), (5,), (2, 2, 2))]
    ps = [cg.zeros(g.shape, dtype=cg.float64, requires_grad=True) for g in gs]
    for p, g in zip(ps, gs):
        p.grad = cg.tensor(g)
    flat = np.concatenate([g.ravel() for g in gs])
    total = np.abs(flat).max() if norm_type == float("inf") else (
        np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type))
    got = cg.nn.utils.clip_grad_norm_(ps, 1.5, norm_type)
    assert got.dtype is cg.float64 and got.shape == ()
    np.testing.assert_allclose(float(got), total, rtol=1e-12)
    coef = min(1.0, 1.5 / (total + 1e-6))
    for p, g in zip(ps, gs):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
    # already small: unchanged
    before = [p.grad.numpy().copy() for p in ps]
    cg.nn.utils.clip_grad_norm_(ps, 1e6, norm_type)
    for p, b in zip(ps, before):
        np.testing.assert_allclose(p.grad.numpy(), b, rtol=1e-12)


def test_clip_grad_value_and_edge_cases():
    p = cg.zeros(4, requires_grad=True)
    p.grad = cg.tensor([-3.0, -0.05, 0.2, 7.0])
    q = cg.zeros(2, requires_grad=True)  # no gradient: skipped
    cg.nn.utils.clip_grad_value_([p, q], 0.1)
    np.testing.assert_allclose(p.grad.numpy(), [-0.1, -0.05, 0.1, 0.1])
    assert q.grad is None
    assert float(cg.nn.utils.clip_grad_norm_([q], 1.0)) == 0.0
    p.grad = cg.tensor([float("inf"), 1.0, 1.0, 1.0])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from "
                                           "`parameters` is non-finite"):
        cg.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    m = cg.nn.Linear(3, 2)
    m(cg.ones(4, 3)).sum().backward()
    n = cg.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
    total = np.sqrt(sum((q.grad.numpy() ** 2).sum() for q in m.parameters()))
    assert float(n) > 0.5 and total == pytest.approx(0.5, rel=1e-5)


def test_clip_grad_norm_torch_parity():
    torch = torch_or_skip()
    rng = np.random.default_rng(9)
    gs = [rng.standard_normal(s).astype(np.float32) for s in ((6, 3), (3,))]
    ps = [cg.zeros(g.shape, requires_grad=True) for g in gs]
    ts = [torch.zeros(g.shape, requires_grad=True) for g in gs]
    for p, t, g in zip(ps, ts, gs):
        p.grad, t.grad = cg.tensor(g), torch.tensor(g)
    a = cg.nn.utils.clip_grad_norm_(ps, 0.7, 2.0)
    b = torch.nn.utils.clip_grad_norm_(ts, 0.7, 2.0)
    assert float(a) == pytest.approx(float(b), rel=1e-6)
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-6)


# --- GroupNorm ---------------------------------------------------------------------------


def _group_norm_ref(x, G, w, b, eps):
    N, C = x.shape[:2]
    g = x.reshape(N, G, -1)
    m = g.mean(axis=2, keepdims=True)
    v = g.var(axis=2, keepdims=True)
    y = ((g - m) / np.sqrt(v + eps)).reshape(x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    return y * w.reshape(shape) + b.reshape(shape)


@pytest.mark.parametrize("shape,groups", [((2, 6, 3, 4), 3), ((3, 4), 2), ((2, 4, 5), 1),
                                          ((1, 6, 2, 2), 6)])
def test_group_norm_against_numpy_and_gradcheck(shape, groups):
    rng = np.random.default_rng(10)
    x = rng.standard_normal(shape)
    m = nn.GroupNorm(groups, shape[1], eps=1e-3).double()
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    m.weight.data, m.bias.data = cg.tensor(w), cg.tensor(b)
    np.testing.assert_allclose(m(cg.tensor(x)).detach().numpy(),
                               _group_norm_ref(x, groups, w, b, 1e-3), rtol=1e-10, atol=1e-10)
    assert gradcheck(lambda t, w_, b_: F.group_norm(t, groups, w_, b_, 1e-3),
                     (cg.tensor(x, requires_grad=True), cg.tensor(w, requires_grad=True),
                      cg.tensor(b, requires_grad=True)))


def test_group_norm_module_and_errors():
    m = nn.GroupNorm(2, 4)
    assert repr(m) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    assert list(m.state_dict()) == ["weight", "bias"]
    assert list(nn.GroupNorm(2, 4, affine=False).state_dict()) == []
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by "
                                         r"num_groups \(3\)"):
        nn.GroupNorm(3, 5)
    with pytest.raises(RuntimeError, match=r"divisible by num_groups, but got input of shape "
                                           r"\[2, 5, 3\] and num_groups=2"):
        F.group_norm(cg.ones(2, 5, 3), 2)
    with pytest.raises(RuntimeError, match="Expected at least 2 dimensions"):
        F.group_norm(cg.ones(2), 1)


# --- Upsample / interpolate --------------------------------------------------------------


def _interp_ref(x, out, mode, corners, scales):
    """Separable resampling of the spatial dims with PyTorch's source coordinates."""
    for axis, (o, sc) in enumerate(zip(out, scales), start=2):
        n = x.shape[axis]
        dst = np.arange(o)
        if mode == "nearest":
            x = np.take(x, np.minimum(np.floor(dst * sc), n - 1).astype(int), axis=axis)
            continue
        pos = dst * ((n - 1) / (o - 1)) if corners and o > 1 else (
            np.zeros(o) if corners else np.maximum((dst + 0.5) * sc - 0.5, 0))
        lo = np.minimum(np.floor(pos), n - 1).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        shape = [1] * x.ndim
        shape[axis] = o
        lam = (pos - lo).reshape(shape)
        x = np.take(x, lo, axis=axis) * (1 - lam) + np.take(x, hi, axis=axis) * lam
    return x


@pytest.mark.parametrize("kw,out,scales", [
    (dict(scale_factor=2), (10, 14), (0.5, 0.5)),
    (dict(scale_factor=1.7), (8, 11), (1 / 1.7, 1 / 1.7)),
    (dict(size=(3, 4)), (3, 4), (5 / 3, 7 / 4)),
    (dict(size=(9, 11), mode="bilinear"), (9, 11), (5 / 9, 7 / 11)),
    (dict(size=(9, 11), mode="bilinear", align_corners=True), (9, 11), (None, None)),
    (dict(scale_factor=(0.6, 1.5), mode="bilinear"), (3, 10), (1 / 0.6, 1 / 1.5)),
])
def test_interpolate_against_numpy(kw, out, scales):
    x = np.random.default_rng(15).standard_normal((2, 3, 5, 7))
    got = F.interpolate(cg.tensor(x), **kw).numpy()
    want = _interp_ref(x, out, kw.get("mode", "nearest"), kw.get("align_corners", False),
                       scales)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    up = nn.Upsample(**kw)
    np.testing.assert_allclose(up(cg.tensor(x)).numpy(), want, rtol=1e-12, atol=1e-12)


def _bicubic_ref(x, out, corners):
    """PyTorch's upsample_bicubic2d loop: 4x4 taps, clamped, cubic convolution A=-0.75."""
    A = -0.75

    def coeffs(t):
        near = lambda v: ((A + 2) * v - (A + 3)) * v * v + 1  # noqa: E731
        far = lambda v: ((A * v - 5 * A) * v + 8 * A) * v - 4 * A  # noqa: E731
        return [far(t + 1), near(t), near(1 - t), far(2 - t)]

    (H, W), (OH, OW) = x.shape[2:], out
    y = np.zeros(x.shape[:2] + tuple(out))

    def src(o, n, m):
        if corners:
            return o * ((n - 1) / (m - 1)) if m > 1 else 0.0
        return (o + 0.5) * n / m - 0.5

    for oy in range(OH):
        for ox in range(OW):
            ry, rx = src(oy, H, OH), src(ox, W, OW)
            iy, ix = int(np.floor(ry)), int(np.floor(rx))
            cy, cx = coeffs(ry - iy), coeffs(rx - ix)
            for i in range(4):
                for j in range(4):
                    yy, xx = min(max(iy - 1 + i, 0), H - 1), min(max(ix - 1 + j, 0), W - 1)
                    y[:, :, oy, ox] += cy[i] * cx[j] * x[:, :, yy, xx]
    return y


def _area_ref(x, out):
    """Adaptive average pooling over the spatial dims, region by region."""
    y = np.zeros(x.shape[:2] + tuple(out))
    for idx in np.ndindex(*out):
        region = tuple(slice(int(np.floor(i * n / o)), int(np.ceil((i + 1) * n / o)))
                       for i, n, o in zip(idx, x.shape[2:], out))
        y[(...,) + idx] = x[(...,) + region].mean(axis=tuple(range(2, x.ndim)))
    return y


@pytest.mark.parametrize("size,corners", [((9, 11), False), ((9, 11), True), ((3, 4), False),
                                          ((1, 1), True)])
def test_interpolate_bicubic_against_numpy(size, corners):
    x = np.random.default_rng(17).standard_normal((2, 3, 5, 7))
    got = F.interpolate(cg.tensor(x), size=size, mode="bicubic", align_corners=corners)
    np.testing.assert_allclose(got.numpy(), _bicubic_ref(x, size, corners), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("shape,out", [((2, 3, 7), (3,)), ((2, 3, 5, 7), (3, 4)),
                                       ((1, 2, 5, 7), (8, 9)), ((1, 2, 3, 4, 5), (2, 5, 3))])
def test_interpolate_area_nearest_exact_trilinear_against_numpy(shape, out):
    x = np.random.default_rng(18).standard_normal(shape)
    got = F.interpolate(cg.tensor(x), size=out, mode="area")
    np.testing.assert_allclose(got.numpy(), _area_ref(x, out), rtol=1e-12, atol=1e-12)
    want = x
    for axis, o in enumerate(out, start=2):
        n = x.shape[axis]
        src = np.minimum(np.floor((np.arange(o) + 0.5) * n / o), n - 1).astype(int)
        want = np.take(want, src, axis=axis)
    got = nn.Upsample(size=out, mode="nearest-exact")(cg.tensor(x))
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=0)
    if len(out) == 3:
        got = F.interpolate(cg.tensor(x), size=out, mode="trilinear", align_corners=True)
        want = _interp_ref(x, out, "trilinear", True, (None,) * 3)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_interpolate_new_modes_gradients():
    rng = np.random.default_rng(19)
    x = cg.tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    for kw in (dict(size=(5, 7), mode="bicubic"), dict(scale_factor=1.5, mode="bicubic",
                                                       align_corners=True),
               dict(size=(2, 3), mode="area"), dict(scale_factor=1.7, mode="nearest-exact")):
        assert gradcheck(lambda t: F.interpolate(t, **kw), (x,)), kw
    x5 = cg.tensor(rng.standard_normal((1, 1, 2, 3, 2)), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, size=(3, 2, 4), mode="trilinear"), (x5,))
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=0.7, mode="area"), (x5,))


@pytest.mark.parametrize("mode,nd", [("nearest-exact", 3), ("nearest-exact", 5), ("area", 3),
                                     ("area", 4), ("area", 5), ("trilinear", 5),
                                     ("bicubic", 4), ("nearest", 5), ("linear", 3)])
def test_interpolate_modes_match_torch(mode, nd):
    torch = torch_or_skip()
    x = np.random.default_rng(20).standard_normal((2, 3) + (5, 7, 4)[:nd - 2])
    corners = [None] if mode in ("nearest", "nearest-exact", "area") else [False, True]
    for kw in (dict(scale_factor=2), dict(scale_factor=1.7), dict(scale_factor=0.6),
               dict(size=1), dict(size=(3, 9, 2)[:nd - 2]), dict(size=(11, 4, 6)[:nd - 2]),
               dict(scale_factor=1.7, recompute_scale_factor=True)):
        for ac in corners:
            got = F.interpolate(cg.tensor(x), mode=mode, align_corners=ac, **kw).numpy()
            want = torch.nn.functional.interpolate(torch.tensor(x), mode=mode,
                                                   align_corners=ac, **kw).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=str(kw))


def test_interpolate_uint8_images_match_torch():
    # uint8 images resample in float, the width first, rounding and clamping after each
    # pass (PyTorch's fixed-point weights differ from that by at most 1 level, rarely);
    # in uint8 arithmetic the weights wrapped and bicubic gave zeros
    torch = torch_or_skip()
    x = np.random.default_rng(22).integers(0, 256, (2, 3, 27, 27)).astype(np.uint8)
    for mode in ("bilinear", "bicubic"):
        for ac in (False, True):
            got = F.interpolate(cg.tensor(x), size=(13, 19), mode=mode, align_corners=ac)
            want = torch.nn.functional.interpolate(torch.tensor(x), size=(13, 19), mode=mode,
                                                   align_corners=ac).numpy()
            assert got.dtype == cg.uint8
            diff = np.abs(got.numpy().astype(int) - want.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.2, (mode, ac)


_AA_CALLS = [dict(size=(5, 4)), dict(size=(3, 2)), dict(size=1), dict(scale_factor=0.37),
             dict(scale_factor=(0.5, 2.3), recompute_scale_factor=True), dict(size=(20, 5))]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_antialias_matches_torch(mode):
    """Values and gradients of the antialiased filters against PyTorch's, down- and
    upsampling, with and without align_corners, float64 and float32."""
    torch = torch_or_skip()
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 3, 17, 11))
    for kw in _AA_CALLS:
        for ac in (False, True):
            ours = cg.tensor(x, requires_grad=True)
            theirs = torch.tensor(x, requires_grad=True)
            got = F.interpolate(ours, mode=mode, align_corners=ac, antialias=True, **kw)
            want = torch.nn.functional.interpolate(theirs, mode=mode, align_corners=ac,
                                                   antialias=True, **kw)
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12,
                                       atol=1e-12, err_msg=f"{mode} {kw} {ac}")
            u = rng.standard_normal(tuple(want.shape))
            (got * cg.tensor(u)).sum().backward()
            (want * torch.tensor(u)).sum().backward()
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12,
                                       atol=1e-12, err_msg=f"{mode} {kw} {ac} grad")
    got = F.interpolate(cg.tensor(x, dtype=cg.float32), size=(6, 4), mode=mode, antialias=True)
    want = torch.nn.functional.interpolate(torch.tensor(x, dtype=torch.float32), size=(6, 4),
                                           mode=mode, antialias=True)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_interpolate_antialias_filters_and_gradients():
    """Halving with the triangle filter weighs 4 inputs 1:3:3:1 (renormalized at the
    border); constants stay constant; float64 gradcheck of both filters."""
    x = np.random.default_rng(22).standard_normal((1, 1, 8, 3))
    got = F.interpolate(cg.tensor(x), size=(4, 3), mode="bilinear", antialias=True).numpy()
    rows = x[0, 0]
    want = [(3 * rows[0] + 3 * rows[1] + rows[2]) / 7]
    want += [(rows[i - 1] + 3 * rows[i] + 3 * rows[i + 1] + rows[i + 2]) / 8 for i in (2, 4)]
    want += [(rows[5] + 3 * rows[6] + 3 * rows[7]) / 7]
    np.testing.assert_allclose(got[0, 0], np.array(want), rtol=1e-12)
    for mode in ("bilinear", "bicubic"):
        flat = F.interpolate(cg.full((1, 2, 9, 7), 2.5, dtype=cg.float64), size=(4, 3),
                             mode=mode, antialias=True)
        np.testing.assert_allclose(flat.numpy(), np.full((1, 2, 4, 3), 2.5), rtol=1e-12)
        t = cg.tensor(np.random.default_rng(23).standard_normal((1, 2, 7, 5)),
                      requires_grad=True)
        assert gradcheck(lambda v, m=mode: F.interpolate(v, size=(3, 4), mode=m,
                                                         antialias=True), (t,))
    with pytest.raises(NotImplementedError, match="Got 3D input, but bilinear mode needs 4D"):
        F.interpolate(cg.ones(1, 1, 3), size=2, mode="bilinear", antialias=True)


def test_interpolate_mode_errors():
    with pytest.raises(NotImplementedError, match=r"Only 3D, 4D and 5D .* \(got 3D\) .* "
                                                  r"\(got bicubic\)"):
        F.interpolate(cg.ones(1, 1, 3), size=4, mode="bicubic")
    with pytest.raises(NotImplementedError, match="Got 4D input, but trilinear mode needs 5D"):
        F.interpolate(cg.ones(1, 1, 3, 3), size=4, mode="trilinear")
    with pytest.raises(NotImplementedError, match=r"\(got 4D\) .* \(got foo\)"):
        F.interpolate(cg.ones(1, 1, 3, 3), size=4, mode="foo")
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(cg.ones(1, 1, 3, 3), size=4, mode="area", align_corners=False)
    with pytest.raises(ValueError, match="output size of \\(4, 4, 4\\)"):
        F.interpolate(cg.ones(1, 1, 3, 3), size=(4, 4, 4))
    with pytest.raises(RuntimeError, match=r"input \(H: 3, W: 3\) output \(H: 0, W: 0\)"):
        F.interpolate(cg.ones(1, 1, 3, 3), scale_factor=0.1)
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful"):
        F.interpolate(cg.ones(1, 1, 3, 3), size=4, recompute_scale_factor=True)
    with pytest.raises(ValueError, match="Anti-alias option is restricted"):
        F.interpolate(cg.ones(1, 1, 3, 3), size=4, antialias=True)
    assert repr(nn.Upsample(size=(4, 5), mode="bicubic")) == "Upsample(size=(4, 5), " \
        "mode='bicubic')"


def test_interpolate_gradients_linear_and_errors():
    x = cg.tensor(np.random.default_rng(16).standard_normal((1, 2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, size=(5, 7), mode="bilinear"), (x,))
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=2), (x,))
    x3 = np.arange(4.0).reshape(1, 1, 4)
    np.testing.assert_allclose(F.interpolate(cg.tensor(x3), scale_factor=1.7,
                                             mode="linear").numpy()[0, 0],
                               [0, 0.3824, 0.9706, 1.5588, 2.1471, 2.7353], atol=1e-4)
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):
        F.interpolate(cg.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(cg.ones(1, 1, 3, 3), size=4, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(cg.ones(1, 1, 3, 3), size=4, align_corners=True)
    with pytest.raises(NotImplementedError, match="Got 3D input, but bilinear mode needs 4D"):
        F.interpolate(cg.ones(1, 1, 3), size=4, mode="bilinear")
