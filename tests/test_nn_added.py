"""nn layers and functions added together (activations, HuberLoss, KLDivLoss, 1-d and
adaptive max pooling, InstanceNorm2d, ZeroPad2d, CosineSimilarity, PixelShuffle,
ParameterList/Dict), init.trunc_normal_, parameters_to_vector and the data sets
IterableDataset and ConcatDataset: numpy references, float64 gradchecks, PyTorch reprs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
import clgraph.nn as nn
import clgraph.nn.functional as F
from clgraph.autograd import gradcheck
from clgraph.utils.data import ConcatDataset, DataLoader, IterableDataset, TensorDataset

F64 = cg.float64
RNG = np.random.default_rng(7)
XA = RNG.uniform(-3, 3, (2, 4, 6))


def leaf(*shape, low=-1.0, high=1.0, seed=0):
    rng = np.random.default_rng(seed + 13 * len(shape) + sum(shape))
    return cg.from_numpy(rng.uniform(low, high, shape)).requires_grad_()


def close(t, ref, **kw):
    got = t.detach().numpy()
    assert got.shape == np.shape(ref), (got.shape, np.shape(ref))
    np.testing.assert_allclose(got, ref, **kw)


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


# name -> (clgraph function, numpy reference); each also gradchecked in float64
ACTIVATIONS = {
    "elu": (lambda x: F.elu(x, 0.7), lambda a: np.where(a > 0, a, 0.7 * np.expm1(a))),
    "hardtanh": (lambda x: F.hardtanh(x, -2.0, 1.5), lambda a: np.clip(a, -2.0, 1.5)),
    "relu6": (lambda x: F.relu6(x * 3), lambda a: np.clip(a * 3, 0, 6)),
    "mish": (F.mish, lambda a: a * np.tanh(_softplus(a))),
    "softsign": (F.softsign, lambda a: a / (1 + np.abs(a))),
    "logsigmoid": (F.logsigmoid, lambda a: -_softplus(-a)),
    "softmin": (lambda x: F.softmin(x, 1), lambda a: np.exp(-a) / np.exp(-a).sum(1,
                                                                                keepdims=True)),
    "threshold": (lambda x: F.threshold(x, 0.5, -2.0), lambda a: np.where(a > 0.5, a, -2.0)),
    "glu": (lambda x: F.glu(x, 1), lambda a: a[:, :2] / (1 + np.exp(-a[:, 2:]))),
    "prelu": (lambda x: F.prelu(x, cg.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)),
              lambda a: np.where(a > 0, a, a * np.array([0.1, 0.2, 0.3, 0.4])[:, None])),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name):
    fn, ref = ACTIVATIONS[name]
    close(fn(cg.from_numpy(XA)), ref(XA), rtol=1e-12, atol=1e-12)
    x = leaf(2, 4, 3, low=-2.5, high=2.5)
    assert gradcheck(fn, (x,))


def test_activation_modules_and_inplace():
    x = cg.from_numpy(XA)
    close(nn.ELU()(x), np.where(XA > 0, XA, np.expm1(XA)))
    close(nn.ReLU6()(x), np.clip(XA, 0, 6))
    close(nn.Hardtanh(-1, 2)(x), np.clip(XA, -1, 2))
    close(nn.Threshold(0.1, 20)(x), np.where(XA > 0.1, XA, 20))
    close(nn.Softsign()(x), XA / (1 + np.abs(XA)))
    close(nn.LogSigmoid()(x), -_softplus(-XA))
    close(nn.Mish()(x), XA * np.tanh(_softplus(XA)))
    close(nn.Softmin(dim=-1)(x), np.exp(-XA) / np.exp(-XA).sum(-1, keepdims=True))
    p = nn.PReLU(4)
    assert p.weight.shape == (4,) and p.weight.tolist() == [0.25] * 4
    close(p(x.float()), np.where(XA > 0, XA, 0.25 * XA).astype(np.float32), rtol=1e-6)
    y = x.clone()
    assert nn.ELU(inplace=True)(y) is y
    close(y, np.where(XA > 0, XA, np.expm1(XA)))
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        F.glu(cg.ones(3))
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers and input channel"):
        F.prelu(cg.ones(2, 3), cg.ones(2))



def test_clamping_activations_keep_integer_dtypes():
    """hardtanh, relu6 and threshold on integers keep the dtype, their float bounds
    truncated toward zero (PyTorch converts the scalars to the tensor's dtype)."""
    x = cg.arange(-3, 4)
    for got, want in ((F.hardtanh(x, -0.5, 0.5), [0] * 7),
                      (F.hardtanh(x, -1.5, 2.5), [-1, -1, -1, 0, 1, 2, 2]),
                      (F.hardtanh(x), [-1, -1, -1, 0, 1, 1, 1]),
                      (F.relu6(x * 3), [0, 0, 0, 0, 3, 6, 6]),
                      (F.threshold(x, 0.5, 2.7), [2, 2, 2, 2, 1, 2, 3]),
                      (cg.threshold(x, 1, -20), [-20] * 5 + [2, 3]),
                      (F.relu6(cg.tensor([250, 3], dtype=cg.uint8)), [6, 3])):
        assert got.dtype == x.dtype or got.dtype == cg.uint8
        assert got.tolist() == want
    y = x.clone()
    assert F.hardtanh_(y, -1.5, 1.5) is y and y.tolist() == [-1, -1, -1, 0, 1, 1, 1]
    with pytest.raises(RuntimeError, match="Bool inputs not supported for hardtanh"):
        F.relu6(cg.tensor([True]))
    with pytest.raises(RuntimeError, match="unsigned type with negative limits"):
        F.hardtanh(cg.tensor([1], dtype=cg.uint8))
    with pytest.raises(RuntimeError, match="300.0 cannot be converted to type int8"):
        F.hardtanh(x.to(cg.int8), 0, 300.0)


def test_hardtanh_integer_inputs_keep_their_dtype():
    # the bounds convert to the input's type (truncating), as PyTorch's
    x = np.array([-9, -3, -1, 0, 1, 2, 5, 6, 7, 100])
    for dt in (cg.int32, cg.int8, cg.int64):
        got = F.hardtanh(cg.tensor(x, dtype=dt), -2.7, 3.9)
        assert got.dtype == dt and got.tolist() == np.clip(x, -2, 3).tolist()
        got = F.relu6(cg.tensor(x, dtype=dt))
        assert got.dtype == dt and got.tolist() == np.clip(x, 0, 6).tolist()
    assert F.hardtanh(cg.tensor(np.abs(x), dtype=cg.uint8), -0.5, 0.5).tolist() == [0] * 10
    with pytest.raises(RuntimeError, match="unsigned type with negative limits"):
        F.hardtanh(cg.tensor(np.abs(x), dtype=cg.uint8), -2.0, 3.0)

def test_losses():
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4)) * 2
    d = np.abs(a - b)
    hub = np.where(d < 1.5, 0.5 * d * d, 1.5 * (d - 0.75))
    close(F.huber_loss(cg.from_numpy(a), cg.from_numpy(b), delta=1.5), hub.mean())
    close(nn.HuberLoss(reduction="none")(cg.from_numpy(a), cg.from_numpy(b)),
          np.where(d < 1, 0.5 * d * d, d - 0.5))
    logp = a - np.log(np.exp(a).sum(1, keepdims=True))
    q = np.exp(b) / np.exp(b).sum(1, keepdims=True)
    q[0, 0] = 0.0
    pw = np.where(q > 0, q * np.log(np.where(q > 0, q, 1)), 0) - q * logp
    tl, tq = cg.from_numpy(logp), cg.from_numpy(q)
    close(F.kl_div(tl, tq, reduction="batchmean"), pw.sum() / 3)
    close(F.kl_div(tl, tq, reduction="sum"), pw.sum())
    with pytest.warns(UserWarning, match="batchmean"):
        close(nn.KLDivLoss()(tl, tq), pw.mean())
    lq = np.log(np.where(q > 0, q, 0.5))
    close(F.kl_div(tl, cg.from_numpy(lq), reduction="none", log_target=True),
          np.exp(lq) * (lq - logp))
    with pytest.raises(ValueError, match="bad is not a valid value for reduction"):
        F.kl_div(tl, tq, reduction="bad")
    x, t = leaf(3, 4), leaf(3, 4, seed=1)
    assert gradcheck(lambda x, t: F.huber_loss(x, t * 2, delta=0.5), (x, t))
    assert gradcheck(lambda x: F.kl_div(F.log_softmax(x, 1), tq, reduction="batchmean"), (x,))
    assert gradcheck(lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True), (x, t))


def test_kl_div_negative_target_is_nan_and_zero_target_is_zero():
    # xlogy(t, t): 0 at t = 0, NaN (log of a negative) below 0, as PyTorch gives
    inp = cg.tensor([0.3, 0.3, 0.3], dtype=F64, requires_grad=True)
    tgt = cg.tensor([0.5, 0.0, -0.5], dtype=F64, requires_grad=True)
    out = F.kl_div(inp, tgt, reduction="none")
    close(out, [0.5 * math.log(0.5) - 0.15, 0.0, math.nan], equal_nan=True)
    gi, gt = cg.autograd.grad(out.sum(), [inp, tgt])
    close(gi, [-0.5, 0.0, 0.5])
    close(gt, [math.log(0.5) + 1 - 0.3, -0.3, math.nan], equal_nan=True)
    assert math.isnan(nn.KLDivLoss(reduction="sum")(inp, tgt).item())


def test_prelu_zero_dim_input():
    # a one-element weight applies to a 0-d input (PReLU() on a scalar), as in PyTorch
    x = cg.tensor(-2.0, dtype=F64, requires_grad=True)
    p = nn.PReLU().double()
    y = p(x)
    assert y.shape == ()
    close(y, -0.5)
    gx, gw = cg.autograd.grad(y, [x, p.weight])
    close(gx, 0.25)
    close(gw, [-2.0])
    close(F.prelu(cg.tensor(3.0), cg.tensor([0.1])), 3.0)
    with pytest.raises(RuntimeError, match="ndim = 2"):
        F.prelu(cg.ones(2, 3), cg.ones(1, 1))
    with pytest.raises(RuntimeError, match="zero-dim input"):
        F.prelu(cg.tensor(1.0), cg.ones(2))


def test_cosine_similarity_pixel_shuffle_zero_pad():
    a, b = RNG.standard_normal((3, 5)), RNG.standard_normal((1, 5))
    ref = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    close(F.cosine_similarity(cg.from_numpy(a), cg.from_numpy(b)), ref)
    close(nn.CosineSimilarity(dim=0)(cg.from_numpy(a.T), cg.from_numpy(b.T)), ref)
    assert gradcheck(lambda x, y: F.cosine_similarity(x, y, dim=-1), (leaf(3, 4),
                                                                       leaf(3, 4, seed=2)))
    x = np.arange(2 * 8 * 2 * 3, dtype=np.float64).reshape(2, 8, 2, 3)
    r = 2
    ref = x.reshape(2, 2, r, r, 2, 3).transpose(0, 1, 4, 2, 5, 3).reshape(2, 2, 4, 6)
    close(F.pixel_shuffle(cg.from_numpy(x), 2), ref)
    close(nn.PixelShuffle(2)(cg.from_numpy(x[0])), ref[0])
    with pytest.raises(RuntimeError, match="is not divisible by 4"):
        F.pixel_shuffle(cg.ones(1, 6, 2, 2), 2)
    close(nn.ZeroPad2d((1, 2, 0, 1))(cg.from_numpy(x)),
          np.pad(x, ((0, 0), (0, 0), (0, 1), (1, 2))))
    assert gradcheck(lambda x: F.pixel_shuffle(x, 2), (leaf(1, 4, 2, 3),))


def _pool1d_ref(a, k, s, p, fn):
    a = np.pad(a, ((0, 0), (0, 0), (p, p)), constant_values=-np.inf if fn is np.max else 0)
    n = (a.shape[-1] - k) // s + 1
    return np.stack([fn(a[..., i * s:i * s + k], -1) for i in range(n)], -1)


def test_pool1d():
    a = RNG.standard_normal((2, 3, 9))
    t = cg.from_numpy(a)
    close(F.max_pool1d(t, 3), _pool1d_ref(a, 3, 3, 0, np.max))
    close(nn.MaxPool1d(3, 2, 1)(t), _pool1d_ref(a, 3, 2, 1, np.max))
    v, i = F.max_pool1d(t, 2, return_indices=True)
    close(i, np.argmax(a[..., :8].reshape(2, 3, 4, 2), -1) + np.arange(0, 8, 2))
    close(F.avg_pool1d(t, 2), _pool1d_ref(a, 2, 2, 0, np.mean))
    close(nn.AvgPool1d(3, 2, 1)(t), _pool1d_ref(a, 3, 2, 1, np.mean))
    close(nn.MaxPool1d(2)(t[0]), _pool1d_ref(a[:1], 2, 2, 0, np.max)[0])
    with pytest.raises(RuntimeError, match="Expected 2D or 3D"):
        F.max_pool1d(cg.ones(3), 2)
    assert gradcheck(lambda x: F.max_pool1d(x, 2, 1), (leaf(1, 2, 6),))
    assert gradcheck(lambda x: F.avg_pool1d(x, 3, 2, 1), (leaf(1, 2, 7),))


def _adaptive_max_ref(a, oh, ow):
    H, W = a.shape[-2:]
    vals = np.empty(a.shape[:-2] + (oh, ow))
    idx = np.empty(a.shape[:-2] + (oh, ow), dtype=np.int64)
    for i in range(oh):
        hs, he = i * H // oh, -(-(i + 1) * H // oh)
        for j in range(ow):
            ws, we = j * W // ow, -(-(j + 1) * W // ow)
            win = a[..., hs:he, ws:we].reshape(a.shape[:-2] + (-1,))
            k = win.argmax(-1)
            vals[..., i, j] = win.max(-1)
            idx[..., i, j] = (hs + k // (we - ws)) * W + ws + k % (we - ws)
    return vals, idx


@pytest.mark.parametrize("size", [(2, 3), (3, 2), 1, (None, 2)])
def test_adaptive_max_pool2d(size):
    a = RNG.standard_normal((2, 3, 6, 7))
    oh, ow = (size, size) if isinstance(size, int) else (size[0] or 6, size[1])
    v, i = F.adaptive_max_pool2d(cg.from_numpy(a), size, return_indices=True)
    rv, ri = _adaptive_max_ref(a, oh, ow)
    close(v, rv)
    close(i, ri)
    close(nn.AdaptiveMaxPool2d(size)(cg.from_numpy(a[0])), rv[0])
    assert gradcheck(lambda x: F.adaptive_max_pool2d(x, size), (leaf(1, 2, 6, 7),))


def test_instance_norm():
    a = RNG.standard_normal((2, 3, 4, 5)) * 2 + 1
    mean, var = a.mean((2, 3), keepdims=True), a.var((2, 3), keepdims=True)
    ref = (a - mean) / np.sqrt(var + 1e-5)
    m = nn.InstanceNorm2d(3)
    assert m.weight is None and m.running_mean is None
    close(m(cg.from_numpy(a)), ref, atol=1e-12)
    close(m(cg.from_numpy(a[0])), ref[0], atol=1e-12)
    t = nn.InstanceNorm2d(3, affine=True, track_running_stats=True).double()
    assert sorted(t.state_dict()) == ["bias", "num_batches_tracked", "running_mean",
                                      "running_var", "weight"]
    close(t(cg.from_numpy(a)), ref, atol=1e-12)
    close(t.running_mean, 0.9 * 0 + 0.1 * a.mean((0, 2, 3)))
    close(t.running_var, 0.9 + 0.1 * (a.var((2, 3), ddof=1)).mean(0))
    t.eval()
    rm, rv = t.running_mean.numpy(), t.running_var.numpy()
    close(t(cg.from_numpy(a)), (a - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5))
    with pytest.raises(ValueError, match="expected 3D or 4D input"):
        m(cg.ones(2, 3))
    w, b = leaf(3, seed=1), leaf(3, seed=2)
    assert gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                     (leaf(2, 3, 2, 3), w, b))


def test_reprs_match_torch():
    torch = torch_or_skip()
    made = ["ELU()", "ELU(alpha=0.5, inplace=True)", "PReLU()", "PReLU(3)", "Hardtanh()",
            "Hardtanh(-2, 2, True)", "ReLU6()", "ReLU6(inplace=True)", "Mish()", "Softsign()",
            "LogSigmoid()", "Softmin(1)", "Softmin()", "Threshold(0.1, 20)", "HuberLoss()",
            "HuberLoss(delta=2.0)", "KLDivLoss(reduction='batchmean')", "MaxPool1d(2)",
            "MaxPool1d(3, 1, 1)", "AvgPool1d(2)", "AvgPool1d(3, 2, 1)",
            "AdaptiveMaxPool2d(2)", "AdaptiveMaxPool2d((2, 3))", "InstanceNorm2d(3)",
            "InstanceNorm2d(4, affine=True, track_running_stats=True)", "ZeroPad2d(1)",
            "ZeroPad2d((1, 2, 3, 4))", "CosineSimilarity()", "PixelShuffle(2)"]
    ns = {"nn": nn, "torch": torch}
    for text in made:
        assert repr(eval("nn." + text, ns)) == repr(eval("torch.nn." + text, ns)), text
    for m in ("PReLU(3)", "InstanceNorm2d(4, affine=True, track_running_stats=True)"):
        assert list(eval("nn." + m, ns).state_dict()) == list(
            eval("torch.nn." + m, ns).state_dict())


def test_parameter_containers():
    torch = torch_or_skip()
    pl = nn.ParameterList([nn.Parameter(cg.ones(2, 3)), cg.ones(3)])
    tl = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2, 3)), torch.ones(3)])
    assert repr(pl) == repr(tl) and list(pl.state_dict()) == list(tl.state_dict())
    pd = nn.ParameterDict({"b": nn.Parameter(cg.ones(2, 3)), "a": cg.ones(3)})
    td = torch.nn.ParameterDict({"b": torch.nn.Parameter(torch.ones(2, 3)), "a": torch.ones(3)})
    assert repr(pd) == repr(td) and list(pd.state_dict()) == list(td.state_dict())
    assert repr(nn.ParameterDict({"w": cg.ones(1)})) == repr(
        torch.nn.ParameterDict({"w": torch.ones(1)}))


def test_parameter_containers_behave():
    pl = nn.ParameterList([cg.ones(2)])
    pl.append(cg.zeros(3))
    assert len(pl) == 2 and isinstance(pl[1], nn.Parameter) and pl[-1].shape == (3,)
    assert [p.shape for p in pl.parameters()] == [(2,), (3,)]
    pd = nn.ParameterDict()
    pd["x"] = cg.ones(2)
    pd.update([("y", cg.zeros(1))])
    assert list(pd.keys()) == ["x", "y"] and "x" in pd and isinstance(pd["y"], nn.Parameter)
    assert pd.pop("x").shape == (2,) and len(pd) == 1

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = nn.ParameterList([cg.ones(2), cg.ones(2)])

        def forward(self, x):
            return sum(w * x for w in self.ws)

    m = M()
    assert list(m.state_dict()) == ["ws.0", "ws.1"]
    m(cg.ones(2)).sum().backward()
    assert m.ws[0].grad.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="ParameterList should not be called"):
        pl(1)


def test_trunc_normal_and_parameter_vectors():
    cg.manual_seed(0)
    w = cg.empty(100000, dtype=F64)
    assert nn.init.trunc_normal_(w, 0.5, 2.0, -1.0, 3.0) is w
    a = w.numpy()
    assert a.min() >= -1.0 and a.max() <= 3.0
    # the truncated normal's mean and standard deviation (alpha, beta = -0.75, 1.25)
    al, be = -0.75, 1.25
    pdf = [math.exp(-z * z / 2) / math.sqrt(2 * math.pi) for z in (al, be)]
    z = 0.5 * (math.erf(be / math.sqrt(2)) - math.erf(al / math.sqrt(2)))
    mean = 0.5 + 2.0 * (pdf[0] - pdf[1]) / z
    std = 2.0 * math.sqrt(1 + (al * pdf[0] - be * pdf[1]) / z - ((pdf[0] - pdf[1]) / z) ** 2)
    assert abs(a.mean() - mean) < 0.02 and abs(a.std() - std) < 0.02
    lin = nn.Linear(3, 2)
    v = nn.utils.parameters_to_vector(lin.parameters())
    assert v.shape == (8,)
    nn.utils.vector_to_parameters(cg.arange(8.0), lin.parameters())
    assert lin.weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert lin.bias.tolist() == [6.0, 7.0]
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        nn.utils.vector_to_parameters([1.0], lin.parameters())


class _Stream(IterableDataset):
    def __init__(self, n, sized=True):
        self.n, self.sized = n, sized

    def __iter__(self):
        return iter(cg.tensor([float(i), 2.0 * i]) for i in range(self.n))

    def __len__(self):
        if not self.sized:
            raise TypeError("no len")
        return self.n


def test_iterable_dataset_loader():
    batches = list(DataLoader(_Stream(5), batch_size=2))
    assert [b.tolist() for b in batches] == [[[0.0, 0.0], [1.0, 2.0]], [[2.0, 4.0], [3.0, 6.0]],
                                             [[4.0, 8.0]]]
    assert len(DataLoader(_Stream(5), batch_size=2)) == 3
    assert len(DataLoader(_Stream(5), batch_size=2, drop_last=True)) == 2
    assert len(list(DataLoader(_Stream(5), batch_size=2, drop_last=True))) == 2
    single = list(DataLoader(_Stream(3), batch_size=None))
    assert [s.tolist() for s in single] == [[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]]
    assert len(list(DataLoader(_Stream(4, sized=False)))) == 4
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(_Stream(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        DataLoader(_Stream(3), sampler=[0, 1])


def test_concat_dataset():
    a = TensorDataset(cg.arange(3), cg.arange(3) * 10)
    b = TensorDataset(cg.arange(100, 102), cg.arange(2))
    c = ConcatDataset([a, b])
    assert len(c) == 5 and c.cumulative_sizes == [3, 5]
    assert [int(c[i][0]) for i in range(5)] == [0, 1, 2, 100, 101]
    assert int(c[-1][0]) == 101 and int((a + b)[3][0]) == 100
    assert [x.tolist() for x, _ in DataLoader(c, batch_size=2)] == [[0, 1], [2, 100], [101]]
    with pytest.raises(ValueError, match="should not exceed dataset length"):
        c[-6]
    with pytest.raises(AssertionError, match="does not support IterableDataset"):
        ConcatDataset([a, _Stream(2)])
