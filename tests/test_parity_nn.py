"""PyTorch parity of the nn names added together: GLU, Softmax2d, PixelUnshuffle, RReLU,
CircularPad*d, InstanceNorm1d/3d, the lazy layers with UninitializedParameter/Buffer,
MultiLabelMarginLoss, TripletMarginWithDistanceLoss, AdaptiveLogSoftmaxWithLoss, RNNBase and
RNNCellBase, Container, NLLLoss2d, SyncBatchNorm; F.leaky_relu_, upsample*,
multi_head_attention_forward, native_channel_shuffle, multilabel_margin_loss,
triplet_margin_with_distance_loss; nn.grad; the top-level lstm_cell, gru_cell, rnn_*_cell,
embedding_bag and ctc_loss. Values, gradients, reprs and state dicts against torch where
installed; float64 finite-difference gradients and error checks without it."""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import pytest
from conftest import close, torch_or_skip, uniform_leaf

import clgraph as cg
import clgraph.nn as nn
import clgraph.nn.functional as F
from clgraph.autograd import gradcheck

leaf = functools.partial(uniform_leaf, salt=41)


def rand(*shape, seed=0, dtype="float64"):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(dtype)


def both(a: np.ndarray, grad: bool = False):
    """The same values as a clgraph and a torch tensor (leaves when ``grad``)."""
    torch = torch_or_skip()
    x, t = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    if grad:
        x.requires_grad_()
        t.requires_grad_()
    return x, t


def load_torch_state(module, torch_module) -> None:
    module.load_state_dict({k: cg.from_numpy(v.detach().numpy().copy())
                            for k, v in torch_module.state_dict().items()})


def build(lib, spec: str):
    """``lib.<spec>``, e.g. build(nn, "GLU(0)"), with deprecation warnings silenced."""
    return _quiet(lambda: eval("lib." + spec, {"lib": lib}))


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


# --- names, reprs, state dicts -----------------------------------------------------------------

MODULES = ["GLU", "Softmax2d", "PixelUnshuffle", "RReLU", "CircularPad1d", "CircularPad2d",
           "CircularPad3d", "InstanceNorm1d", "InstanceNorm3d", "LazyConv1d", "LazyConv2d",
           "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
           "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
           "LazyInstanceNorm2d", "LazyInstanceNorm3d", "MultiLabelMarginLoss",
           "TripletMarginWithDistanceLoss", "AdaptiveLogSoftmaxWithLoss", "RNNBase",
           "RNNCellBase", "Container", "NLLLoss2d", "SyncBatchNorm", "UninitializedParameter",
           "UninitializedBuffer"]
FUNCTIONS = ["leaky_relu_", "upsample", "upsample_nearest", "upsample_bilinear",
             "multi_head_attention_forward", "native_channel_shuffle", "multilabel_margin_loss",
             "triplet_margin_with_distance_loss"]
TOP = ["lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "embedding_bag", "ctc_loss",
       "native_channel_shuffle"]


def test_names_exist_where_pytorch_has_them():
    for name in MODULES:
        assert isinstance(getattr(nn, name), type), name
        assert name in nn.__all__
    for name in FUNCTIONS:
        assert callable(getattr(F, name)), name
    for name in TOP:
        assert callable(getattr(cg, name)), name
    for name in ("conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight",
                 "conv3d_input", "conv3d_weight"):
        assert callable(getattr(nn.grad, name))
    from clgraph.nn import modules

    assert modules.adaptive.AdaptiveLogSoftmaxWithLoss is nn.AdaptiveLogSoftmaxWithLoss
    assert modules.conv.LazyConv2d is nn.LazyConv2d
    assert modules.batchnorm.SyncBatchNorm is nn.SyncBatchNorm
    assert modules.rnn.RNNBase is nn.RNNBase and modules.container.Container is nn.Container
    assert modules.lazy.LazyModuleMixin is not None


SPECS = ["GLU()", "GLU(0)", "Softmax2d()", "PixelUnshuffle(2)", "RReLU()",
         "RReLU(0.1, 0.3, inplace=True)", "CircularPad1d((1, 2))", "CircularPad2d(1)",
         "CircularPad3d((1, 0, 2, 1, 0, 1))", "InstanceNorm1d(3)",
         "InstanceNorm3d(3, affine=True, track_running_stats=True)",
         "InstanceNorm1d(4, affine=True, bias=False)", "LazyLinear(3)", "LazyConv1d(4, 3)",
         "LazyConv2d(4, 3, stride=2, padding=1, bias=False)", "LazyConv3d(2, 1)",
         "LazyConvTranspose1d(4, 3, stride=2)", "LazyConvTranspose2d(4, 3, output_padding=0)",
         "LazyConvTranspose3d(2, 2)", "LazyBatchNorm1d()",
         "LazyBatchNorm2d(momentum=None, affine=False)",
         "LazyBatchNorm3d(track_running_stats=False)",
         "LazyInstanceNorm1d()", "LazyInstanceNorm2d(affine=False)", "LazyInstanceNorm3d()",
         "MultiLabelMarginLoss()", "MultiLabelMarginLoss(reduction='sum')",
         "TripletMarginWithDistanceLoss()", "TripletMarginWithDistanceLoss(margin=2.0, swap=True)",
         "AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8])",
         "AdaptiveLogSoftmaxWithLoss(16, 20, (5, 10, 15), div_value=2.0, head_bias=True)",
         "SyncBatchNorm(3)", "SyncBatchNorm(3, momentum=None, affine=False)",
         "RNNBase('LSTM', 3, 4)", "RNNBase('GRU', 3, 4, 2, bidirectional=True)",
         "RNNBase('RNN_RELU', 3, 4, bias=False)", "RNNBase('LSTM', 3, 4, proj_size=2)",
         "RNNCellBase(3, 4, True, 4)", "NLLLoss2d()", "Container()"]


@pytest.mark.parametrize("spec", SPECS)
def test_repr_and_state_dict_like_torch(spec):
    torch = torch_or_skip()
    m, t = build(nn, spec), build(torch.nn, spec)
    assert repr(m) == repr(t)
    mine, theirs = m.state_dict(), t.state_dict()
    assert list(mine) == list(theirs)
    for key, value in theirs.items():
        if isinstance(value, torch.nn.parameter.UninitializedTensorMixin):
            assert type(mine[key]).__name__ == type(value).__name__, key
        else:
            assert tuple(mine[key].shape) == tuple(value.shape), key
            assert str(mine[key].dtype) == str(value.dtype), key


def test_deprecated_classes_warn():
    with pytest.warns(FutureWarning, match="`nn.Container` is deprecated"):
        c = nn.Container(fc=nn.Linear(2, 3))
    assert list(c.state_dict()) == ["fc.weight", "fc.bias"]
    with pytest.warns(FutureWarning, match="`NLLLoss2d` has been deprecated"):
        loss = nn.NLLLoss2d(ignore_index=1)
    assert isinstance(loss, nn.NLLLoss) and loss.ignore_index == 1


# --- activations, shuffles, pads -------------------------------------------------------------


def test_activation_modules_like_torch():
    torch = torch_or_skip()
    a = rand(2, 4, 3, 2)
    for spec in ("GLU()", "GLU(1)", "Softmax2d()", "PixelUnshuffle(2)", "RReLU(0.1, 0.3)",
                 "CircularPad1d((1, 2))", "CircularPad2d((2, 1, 0, 1))",
                 "CircularPad3d(1)"):
        m, t = build(nn, spec).eval(), build(torch.nn, spec).eval()
        arr = a.reshape(2, 4, 3, 2, 1) if "3d" in spec else (
            a.reshape(2, 4, 6) if "1d" in spec else a)
        if "PixelUnshuffle" in spec:
            arr = rand(2, 3, 4, 6)
        x, tx = both(arr, grad=True)
        out, tout = m(x), t(tx)
        close(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
        g = rand(*tout.shape, seed=3)
        out.backward(cg.from_numpy(g))
        tout.backward(torch.from_numpy(g))
        close(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    # unbatched inputs
    close(nn.Softmax2d()(cg.from_numpy(a[0])), torch.nn.Softmax2d()(torch.from_numpy(a[0])),
          rtol=1e-12)
    close(nn.CircularPad2d(1)(cg.from_numpy(a[0])),
          torch.nn.CircularPad2d(1)(torch.from_numpy(a[0])))


def test_activation_errors_name_the_value():
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D"):
        nn.Softmax2d()(cg.zeros(2, 3))
    with pytest.raises(ValueError, match="expected 3D or 4D input \\(got 2D input\\)"):
        nn.CircularPad2d(1)(cg.zeros(2, 3))
    with pytest.raises(RuntimeError, match="dimension 1 is size 3"):
        nn.GLU(1)(cg.zeros(2, 3))
    with pytest.raises(RuntimeError, match="wrapping around more than once"):
        nn.CircularPad1d(4)(cg.zeros(1, 2, 3))


def test_rrelu_module_training_and_inplace():
    m = nn.RReLU(0.1, 0.3)
    x = cg.from_numpy(-np.ones((200,)))
    y = m(x).numpy()
    assert ((y <= -0.1) & (y >= -0.3)).all() and len(set(y.tolist())) > 1
    m.eval()
    close(m(x), np.full(200, -0.2), rtol=1e-12)
    z = cg.from_numpy(-np.ones(3))
    assert nn.RReLU(inplace=True).eval()(z) is z
    with pytest.raises(RuntimeError, match="Lower bound should be less than or equal to the "
                       "upper bound, got lower=0.5 and upper=0.1"):
        nn.RReLU(0.5, 0.1).eval()(z)


def test_glu_gradient_by_finite_differences():
    x = leaf(3, 4, 2)
    assert gradcheck(lambda t: nn.GLU(1)(t), (x,))
    assert gradcheck(lambda t: F.glu(t, -1), (x,))


def test_functional_helpers_like_torch():
    torch = torch_or_skip()
    a = rand(2, 6, 3)
    x, tx = both(a)
    assert F.leaky_relu_(x, 0.2) is x
    close(x, torch.nn.functional.leaky_relu_(tx, 0.2).numpy(), rtol=1e-12)
    close(F.native_channel_shuffle(cg.from_numpy(a), 3),
          torch.nn.functional.native_channel_shuffle(torch.from_numpy(a), 3))
    img = rand(1, 2, 3, 4)
    x, tx = both(img)
    for name, kw in (("upsample", dict(scale_factor=2, mode="bilinear", align_corners=False)),
                     ("upsample", dict(size=(5, 7))), ("upsample_nearest", dict(size=5)),
                     ("upsample_bilinear", dict(scale_factor=2))):
        with pytest.warns(UserWarning, match=f"`nn.functional.{name}` is deprecated"):
            out = getattr(F, name)(x, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = getattr(torch.nn.functional, name)(tx, **kw)
        close(out, ref.numpy(), rtol=1e-10, atol=1e-12)


# --- instance norm -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3])
def test_instance_norm_like_torch(n):
    torch = torch_or_skip()
    cls = f"InstanceNorm{n}d"
    shape = (2, 3) + (4, 3, 2)[:n]
    m = getattr(nn, cls)(3, affine=True, track_running_stats=True).double()
    t = getattr(torch.nn, cls)(3, affine=True, track_running_stats=True).double()
    with torch.no_grad():
        t.weight.uniform_(0.5, 1.5)
        t.bias.uniform_(-0.5, 0.5)
    load_torch_state(m, t)
    x, tx = both(rand(*shape), grad=True)
    out, tout = m(x), t(tx)
    close(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rand(*shape, seed=5)
    out.backward(cg.from_numpy(g))
    tout.backward(torch.from_numpy(g))
    close(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    close(m.weight.grad, t.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
    close(m.running_var, t.running_var.numpy(), rtol=1e-12)
    m.eval()
    t.eval()
    close(m(x[0]), t(tx[0]).detach().numpy(), rtol=1e-10, atol=1e-12)  # unbatched
    with pytest.raises(ValueError, match=f"expected {n + 1}D or {n + 2}D input \\(got 1D"):
        m(cg.zeros(3))
    with pytest.raises(ValueError, match="to match num_features \\(3\\), but got: 4"):
        m(cg.zeros(2, 4, *shape[2:]))
    with pytest.warns(UserWarning, match="does not match num_features"):
        getattr(nn, cls)(5)(cg.zeros(2, 3, *shape[2:]))


# --- lazy layers ---------------------------------------------------------------------------


def test_uninitialized_parameter_and_buffer():
    p = nn.UninitializedParameter(dtype=cg.float64)
    assert repr(p) == "<UninitializedParameter>" and isinstance(p, nn.Parameter)
    assert nn.parameter.is_lazy(p) and not nn.parameter.is_lazy(nn.Parameter(cg.zeros(1)))
    assert p.requires_grad and p.dtype == cg.float64
    q = copy.deepcopy(p)
    assert type(q) is nn.UninitializedParameter and q is not p
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and p.shape == (2, 3) and p.dtype == cg.float64
    b = nn.UninitializedBuffer()
    assert repr(b) == "<UninitializedBuffer>" and not b.requires_grad
    b.materialize(4)
    assert type(b) is cg.Tensor and b.shape == (4,)


LAZY = [("LazyConv1d(4, 3)", (2, 3, 6)), ("LazyConv2d(4, 3, padding=1, groups=2)", (2, 6, 5, 4)),
        ("LazyConv3d(2, 2, stride=2)", (1, 3, 4, 4, 4)),
        ("LazyConvTranspose1d(4, 3, stride=2)", (2, 3, 5)),
        ("LazyConvTranspose2d(4, 3, groups=2)", (2, 4, 3, 3)),
        ("LazyConvTranspose3d(2, 2)", (1, 3, 2, 2, 2)), ("LazyBatchNorm1d()", (4, 3)),
        ("LazyBatchNorm2d()", (2, 3, 2, 2)), ("LazyBatchNorm3d(affine=False)", (2, 3, 2, 2, 1)),
        ("LazyInstanceNorm1d()", (2, 3, 4)), ("LazyInstanceNorm2d()", (2, 3, 2, 2)),
        ("LazyInstanceNorm3d()", (2, 3, 2, 2, 2)), ("LazyLinear(3)", (2, 5))]


@pytest.mark.parametrize("spec,shape", LAZY)
def test_lazy_layers_like_torch(spec, shape):
    torch = torch_or_skip()
    m, t = build(nn, spec).double(), build(torch.nn, spec).double()
    assert m.has_uninitialized_params() and t.has_uninitialized_params()
    params = list(m.parameters())
    assert all(isinstance(p, nn.UninitializedParameter) for p in params)
    opt = cg.optim.SGD(params, lr=0.1) if params else None
    x, tx = both(rand(*shape), grad=True)
    out, tout = m(x), t(tx)
    assert type(m).__name__ == type(t).__name__ and repr(m) == repr(t)
    assert not hasattr(m, "has_uninitialized_params") and not hasattr(m, "_initialize_hook")
    assert all(type(p) is nn.Parameter for p in m.parameters())
    assert [p is q for p, q in zip(m.parameters(), params)] == [True] * len(params)
    for (k, v), (tk, tv) in zip(m.state_dict().items(), t.state_dict().items()):
        assert k == tk and tuple(v.shape) == tuple(tv.shape)
    load_torch_state(m, t)  # the same weights: the same results
    m.train()
    out, tout = m(x), t(tx)
    close(out, tout.detach().numpy(), rtol=1e-9, atol=1e-10)
    g = rand(*tout.shape, seed=4)
    out.backward(cg.from_numpy(g))
    tout.backward(torch.from_numpy(g))
    close(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    if opt is not None:  # the optimizer made before the forward steps the same parameters
        before = [p.detach().numpy().copy() for p in params]
        opt.step()
        assert all(not np.allclose(b, p.detach().numpy()) for b, p in zip(before, params))


def test_lazy_default_initialization_and_loading():
    conv = nn.LazyConv2d(4, 3)
    conv(cg.zeros(1, 2, 5, 5))
    bound = 1 / np.sqrt(2 * 9)
    w = conv.weight.detach().numpy()
    assert w.shape == (4, 2, 3, 3) and (np.abs(w) <= bound).all() and w.std() > 0
    bn = nn.LazyBatchNorm1d()
    bn(cg.randn(4, 5))
    assert type(bn) is nn.BatchNorm1d and bn.num_features == 5
    close(bn.weight, np.ones(5))
    assert int(bn.num_batches_tracked) == 1
    # loading a state dict materializes the shapes and the size attributes
    fresh = nn.LazyConvTranspose2d(4, 3, groups=2)
    fresh.load_state_dict({"weight": cg.ones(6, 2, 3, 3), "bias": cg.zeros(4)})
    assert not fresh.has_uninitialized_params() and fresh.in_channels == 6
    assert type(fresh) is nn.LazyConvTranspose2d  # the class changes on the first forward
    fresh(cg.zeros(1, 6, 2, 2))
    assert type(fresh) is nn.ConvTranspose2d
    close(fresh.weight, np.ones((6, 2, 3, 3)))
    lbn = nn.LazyBatchNorm2d()
    lbn.load_state_dict(nn.BatchNorm2d(7).state_dict())
    assert lbn.num_features == 7 and lbn.running_mean.shape == (7,)
    lazy_sd = nn.LazyLinear(3).state_dict(keep_vars=True)
    assert type(lazy_sd["weight"]) is nn.UninitializedParameter


def test_lazy_modules_copy_and_save_uninitialized(tmp_path):
    net = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d())
    twin = copy.deepcopy(net)
    twin(cg.zeros(1, 2, 5, 5))
    assert type(twin[0]) is nn.Conv2d and type(net[0]) is nn.LazyConv2d
    assert net[0].has_uninitialized_params()
    cg.save(net, tmp_path / "lazy.pt")
    back = cg.load(tmp_path / "lazy.pt", weights_only=False)
    assert type(back[0].weight) is nn.UninitializedParameter
    assert type(back[1].running_mean) is nn.UninitializedBuffer
    back(cg.zeros(1, 2, 5, 5))
    assert type(back[1]) is nn.BatchNorm2d and back[1].num_features == 4


def test_lazy_errors_name_the_value():
    with pytest.raises(RuntimeError, match="Expected 3D \\(unbatched\\) or 4D \\(batched\\) "
                       "input to LazyConv2d, but got input of size"):
        nn.LazyConv2d(4, 3)(cg.zeros(5, 5))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv1d(4, 3, groups=2)(cg.zeros(1, 3, 5))
    with pytest.raises(ValueError, match="expected 2D or 3D input \\(got 1D input\\)"):
        nn.LazyBatchNorm1d()(cg.zeros(3))
    with pytest.raises(RuntimeError, match="module LazyLinear has not been fully initialized"):
        m = nn.LazyLinear(3)
        m.initialize_parameters = lambda input: None
        m(cg.zeros(2, 2))


# --- losses --------------------------------------------------------------------------------

MLM_TARGET = np.array([[0, 3, -1, 2, 1], [4, 4, -1, 0, 0], [-1, 0, 0, 0, 0], [1, 2, 3, 4, 0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin_loss_like_torch(reduction):
    torch = torch_or_skip()
    x, tx = both(rand(4, 5), grad=True)
    y, ty = cg.from_numpy(MLM_TARGET), torch.from_numpy(MLM_TARGET)
    out = nn.MultiLabelMarginLoss(reduction=reduction)(x, y)
    tout = torch.nn.MultiLabelMarginLoss(reduction=reduction)(tx, ty)
    close(out, tout.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    close(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    v, tv = both(rand(5))  # unbatched
    close(F.multilabel_margin_loss(v, y[0], reduction=reduction),
          torch.nn.functional.multilabel_margin_loss(tv, ty[0], reduction=reduction).numpy(),
          rtol=1e-12)
    empty = F.multilabel_margin_loss(cg.zeros(0, 3), cg.zeros(0, 3, dtype=cg.int64),
                                     reduction=reduction)  # PyTorch's mean here is garbage
    assert empty.shape == ((0,) if reduction == "none" else ()) and empty.sum().item() == 0


def test_multilabel_margin_loss_gradient_and_errors():
    x = leaf(4, 5)
    y = cg.from_numpy(MLM_TARGET)
    assert gradcheck(lambda t: F.multilabel_margin_loss(t, y), (x,))
    # by hand: sample 0 lists {0, 3}, the others are {1, 2, 4}
    a = x.detach().numpy()[0]
    hand = sum(max(0.0, 1 - (a[j] - a[i])) for j in (0, 3) for i in (1, 2, 4)) / 5
    close(F.multilabel_margin_loss(x[0].detach(), y[0]), np.array(hand), rtol=1e-12)
    with pytest.raises(RuntimeError, match="target values must lie in \\[-1, 5\\), got "
                       "\\[\\[0, 7"):
        F.multilabel_margin_loss(cg.zeros(1, 5), cg.tensor([[0, 7, -1, 0, 0]]))
    with pytest.raises(RuntimeError, match="inconsistent target size: \\[1, 4\\] for input "
                       "of size: \\[1, 5\\]"):
        F.multilabel_margin_loss(cg.zeros(1, 5), cg.zeros(1, 4, dtype=cg.int64))
    with pytest.raises(ValueError, match="bad is not a valid value for reduction"):
        F.multilabel_margin_loss(cg.zeros(1, 5), y[:1], reduction="bad")


def _cosine_distance(a, b):
    return 1.0 - F.cosine_similarity(a, b)


@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_with_distance_loss_like_torch(swap):
    torch = torch_or_skip()
    arrays = [rand(4, 3, seed=s) for s in range(3)]
    mine = [both(a, grad=True) for a in arrays]
    def torch_cosine_distance(a, b):
        return 1 - torch.nn.functional.cosine_similarity(a, b)

    for dist, tdist in ((None, None), (_cosine_distance, torch_cosine_distance)):
        for x, tx in mine:
            x.grad = None
            tx.grad = None
        m = nn.TripletMarginWithDistanceLoss(distance_function=dist, margin=0.5, swap=swap)
        t = torch.nn.TripletMarginWithDistanceLoss(distance_function=tdist, margin=0.5,
                                                   swap=swap)
        out, tout = m(*(x for x, _ in mine)), t(*(tx for _, tx in mine))
        close(out, tout.detach().numpy(), rtol=1e-10)
        out.backward()
        tout.backward()
        for x, tx in mine:
            close(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_triplet_margin_with_distance_loss_gradient_and_errors():
    a, p, n = leaf(3, 4), leaf(3, 4, seed=1), leaf(3, 4, seed=2)
    assert gradcheck(lambda *t: F.triplet_margin_with_distance_loss(
        *t, distance_function=_cosine_distance, margin=2.0, swap=True), (a, p, n))
    assert gradcheck(lambda *t: F.triplet_margin_with_distance_loss(*t, margin=3.0), (a, p, n))
    with pytest.raises(ValueError, match="expected margin to be greater than 0, got 0"):
        nn.TripletMarginWithDistanceLoss(margin=0)
    with pytest.raises(ValueError, match="margin must be greater than 0, got -1"):
        F.triplet_margin_with_distance_loss(a, p, n, margin=-1)
    with pytest.raises(RuntimeError, match="anchor 2D, positive 1D, and negative 2D"):
        F.triplet_margin_with_distance_loss(a, p[0], n)


def test_nll_loss_2d_like_torch():
    torch = torch_or_skip()
    x, tx = both(rand(2, 3, 2, 2))
    y = np.array([[[0, 1], [2, 1]], [[1, 1], [0, 2]]])
    with pytest.warns(FutureWarning):
        m = nn.NLLLoss2d()
    t = _quiet(torch.nn.NLLLoss2d)
    close(m(x, cg.from_numpy(y)), t(tx, torch.from_numpy(y)).numpy(), rtol=1e-12)


# --- adaptive softmax ----------------------------------------------------------------------


def test_adaptive_log_softmax_like_torch():
    torch = torch_or_skip()
    torch.manual_seed(0)
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 7], div_value=2.0, head_bias=True)
    t = t.double()
    m = nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 7], div_value=2.0, head_bias=True).double()
    load_torch_state(m, t)
    x, tx = both(rand(6, 8), grad=True)
    target = np.array([0, 5, 11, 2, 7, 3])
    out, loss = m(x, cg.from_numpy(target))
    tout, tloss = t(tx, torch.from_numpy(target))
    close(out, tout.detach().numpy(), rtol=1e-10)
    close(loss, tloss.detach().numpy(), rtol=1e-10)
    loss.backward()
    tloss.backward()
    close(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), tp in zip(m.named_parameters(), t.parameters()):
        close(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    close(m.log_prob(x), t.log_prob(tx).detach().numpy(), rtol=1e-10)
    close(m.predict(x), t.predict(tx).numpy())
    res = m(x[0], cg.tensor(9))  # unbatched
    tres = t(tx[0], torch.tensor(9))
    assert res.output.shape == () and type(res).__name__ == "_ASMoutput"
    close(res.output, tres.output.detach().numpy(), rtol=1e-10)
    close(res.loss, tres.loss.detach().numpy(), rtol=1e-10)


def test_adaptive_log_softmax_gradient_and_full_distribution():
    cg.manual_seed(0)
    m = nn.AdaptiveLogSoftmaxWithLoss(6, 9, [2, 5], div_value=2.0).double()
    x = leaf(5, 6)
    target = cg.tensor([0, 4, 8, 1, 6])
    assert gradcheck(lambda t: m(t, target).loss, (x,))
    assert gradcheck(lambda t: m(t, target).output, (x,))
    full = m.log_prob(x.detach()).detach()
    close(full.exp().sum(1), np.ones(5), rtol=1e-12)  # a distribution over the 9 classes
    picked = np.take_along_axis(full.numpy(), target.numpy()[:, None], 1)[:, 0]
    close(m(x.detach(), target).output, picked, rtol=1e-12)
    close(m.predict(x.detach()), full.numpy().argmax(1))


def test_adaptive_log_softmax_errors_name_the_value():
    m = nn.AdaptiveLogSoftmaxWithLoss(4, 6, [2])
    with pytest.raises(RuntimeError, match="Target values should be in \\[0, 5\\], but values "
                       "in range \\[0, 9\\] were found"):
        m(cg.zeros(2, 4), cg.tensor([0, 9]))
    with pytest.raises(RuntimeError, match="same size in the batch dimension"):
        m(cg.zeros(3, 4), cg.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="0D or 1D target tensor expected"):
        m(cg.zeros(3, 4), cg.zeros(3, 1, dtype=cg.int64))
    for cutoffs in ([], [4, 4], [0, 3], [3, 6], [2.5]):
        with pytest.raises(ValueError, match="cutoffs should be a sequence"):
            nn.AdaptiveLogSoftmaxWithLoss(4, 6, cutoffs)


# --- sync batch norm -------------------------------------------------------------------------


def test_sync_batch_norm_without_process_group_is_batch_norm():
    torch = torch_or_skip()
    m = nn.SyncBatchNorm(3).double()
    t = torch.nn.SyncBatchNorm(3).double()
    x, tx = both(rand(4, 3, 2), grad=True)
    out, tout = m(x), t(tx)
    close(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    close(x.grad, tx.grad.numpy(), atol=1e-10)
    close(m.running_var, t.running_var.numpy(), rtol=1e-12)
    m.eval()
    t.eval()
    close(m(x), t(tx).detach().numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="expected at least 2D input \\(got 1D input\\)"):
        m(cg.zeros(3))


def test_sync_batch_norm_all_reduces_its_statistics(monkeypatch):
    """Two ranks holding the same batch: the statistics (and their gradients) are those of
    the batch twice over, as BatchNorm computes them on the concatenation."""
    import clgraph.distributed as dist
    from clgraph.nn import layers

    calls = []

    def all_reduce(t, op=None, group=None, async_op=False):
        calls.append(tuple(t.shape))
        with cg.no_grad():
            t.mul_(2)

    monkeypatch.setattr(layers, "_sync_world_size", lambda group: 2)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    a = rand(3, 2, 4)
    g = rand(3, 2, 4, seed=9)
    m = nn.SyncBatchNorm(2, momentum=0.3).double()
    with cg.no_grad():
        m.weight.copy_(cg.tensor([1.5, 0.5], dtype=cg.float64))
    x = cg.from_numpy(a).requires_grad_()
    out = m(x)
    out.backward(cg.from_numpy(g))
    assert calls == [(6,), (6,)]  # forward statistics, backward gradients
    ref = nn.BatchNorm2d(2, momentum=0.3).double()
    with cg.no_grad():
        ref.weight.copy_(m.weight)
    xx = cg.from_numpy(np.concatenate([a, a])[..., None]).requires_grad_()
    rout = ref(xx)
    rout.backward(cg.from_numpy(np.concatenate([g, g])[..., None]))
    close(out, rout.detach().numpy()[:3, ..., 0], rtol=1e-10, atol=1e-12)
    close(x.grad, xx.grad.numpy()[:3, ..., 0], rtol=1e-8, atol=1e-10)
    close(m.running_mean, ref.running_mean.numpy(), rtol=1e-10)
    close(m.running_var, ref.running_var.numpy(), rtol=1e-10)
    close(m.weight.grad, ref.weight.grad.numpy() / 2, rtol=1e-9)  # this rank's share


SYNC_WORKER = """
import sys
import numpy as np
import clgraph as cg
import clgraph.distributed as dist
import clgraph.nn as nn

dist.init_process_group("mpi")
rank, size = dist.get_rank(), dist.get_world_size()
data = [np.random.default_rng(r).standard_normal((r + 2, 3, 4)) for r in range(size)]
grads = [np.random.default_rng(10 + r).standard_normal((r + 2, 3, 4)) for r in range(size)]
m = nn.SyncBatchNorm(3, momentum=0.5).double()
x = cg.from_numpy(data[rank]).requires_grad_()
out = m(x)
out.backward(cg.from_numpy(grads[rank]))
ref = nn.BatchNorm1d(3, momentum=0.5).double()
xx = cg.from_numpy(np.concatenate(data)).requires_grad_()
rout = ref(xx)
rout.backward(cg.from_numpy(np.concatenate(grads)))
lo = sum(d.shape[0] for d in data[:rank])
sl = slice(lo, lo + data[rank].shape[0])
np.testing.assert_allclose(out.detach().numpy(), rout.detach().numpy()[sl], rtol=1e-9)
np.testing.assert_allclose(x.grad.numpy(), xx.grad.numpy()[sl], rtol=1e-8, atol=1e-12)
np.testing.assert_allclose(m.running_var.numpy(), ref.running_var.numpy(), rtol=1e-10)
wg = m.weight.grad.clone()
dist.all_reduce(wg)
np.testing.assert_allclose(wg.numpy(), ref.weight.grad.numpy(), rtol=1e-9)
m.eval()
np.testing.assert_allclose(m(x).detach().numpy(), ref.eval()(xx).detach().numpy()[sl],
                           rtol=1e-9)
dist.barrier()
print(f"rank {rank} sync ok", flush=True)
dist.destroy_process_group()
"""


def test_sync_batch_norm_in_an_mpi_job(tmp_path):
    """Two MPI ranks with batches of different sizes: each rank's output, input gradient
    and running statistics are those of BatchNorm over the concatenated batch."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("mpi4py")
    mpirun = shutil.which("mpirun") or shutil.which("mpirun",
                                                    path=str(Path(sys.executable).parent))
    if mpirun is None:
        pytest.skip("no mpirun")
    script = tmp_path / "sync_worker.py"
    script.write_text(SYNC_WORKER)
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([mpirun, "-n", "2", sys.executable, str(script)], env=env, cwd=root,
                       capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "rank 0 sync ok" in r.stdout and "rank 1 sync ok" in r.stdout, r.stdout


def test_convert_sync_batchnorm_keeps_parameters():
    net = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3),
                        nn.Sequential(nn.BatchNorm1d(4, affine=False)), nn.InstanceNorm2d(3))
    net[1].eval()
    weight, mean = net[1].weight, net[1].running_mean
    out = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert out is net and type(net[1]) is nn.SyncBatchNorm and type(net[3]) is nn.InstanceNorm2d
    assert net[1].weight is weight and net[1].running_mean is mean and not net[1].training
    assert type(net[2][0]) is nn.SyncBatchNorm and net[2][0].weight is None
    assert type(nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(2))) is nn.SyncBatchNorm


# --- recurrent bases and top-level cells -----------------------------------------------------


def test_rnn_bases():
    torch = torch_or_skip()
    for m in (nn.RNN(3, 4), nn.LSTM(3, 4), nn.GRU(3, 4)):
        assert isinstance(m, nn.RNNBase)
    for c in (nn.RNNCell(3, 4), nn.LSTMCell(3, 4), nn.GRUCell(3, 4)):
        assert isinstance(c, nn.RNNCellBase) and not isinstance(c, nn.RNNBase)
    assert nn.LSTM(3, 4).mode == "LSTM" and nn.RNN(3, 4, nonlinearity="relu").mode == "RNN_RELU"
    t = torch.nn.LSTM(3, 4, 2, batch_first=True).double()
    m = nn.RNNBase("LSTM", 3, 4, 2, batch_first=True).double()
    load_torch_state(m, t)
    x, tx = both(rand(2, 5, 3))
    out, (h, c) = m(x)
    tout, (th, tc) = t(tx)
    close(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    close(c, tc.detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="Unrecognized RNN mode: BAD"):
        nn.RNNBase("BAD", 3, 4)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.GRU(3, 4, proj_size=2)
    cell = nn.RNNCellBase(3, 4, False, 3)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh"]
    assert cell.weight_ih.shape == (12, 3)


@pytest.mark.parametrize("name,gates", [("lstm_cell", 4), ("gru_cell", 3),
                                        ("rnn_tanh_cell", 1), ("rnn_relu_cell", 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_top_level_cells_like_torch(name, gates, bias):
    torch = torch_or_skip()
    arrays = [rand(3, 4), rand(3, 5, seed=1), rand(gates * 5, 4, seed=2),
              rand(gates * 5, 5, seed=3)]
    if bias:
        arrays += [rand(gates * 5, seed=4), rand(gates * 5, seed=5)]
    mine = [both(a, grad=True) for a in arrays]
    c, tc = both(rand(3, 5, seed=6), grad=True)
    xs, ts = [m for m, _ in mine], [t for _, t in mine]
    if name == "lstm_cell":
        out = cg.lstm_cell(xs[0], (xs[1], c), *xs[2:])
        tout = torch.lstm_cell(ts[0], (ts[1], tc), *ts[2:])
        assert isinstance(out, tuple) and len(out) == 2
        total, ttotal = out[0].sum() + (out[1] * 2).sum(), tout[0].sum() + (tout[1] * 2).sum()
        close(out[1], tout[1].detach().numpy(), rtol=1e-10, atol=1e-12)
    else:
        out = getattr(cg, name)(*xs)
        tout = getattr(torch, name)(*ts)
        close(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        total, ttotal = (out * out).sum(), (tout * tout).sum()
    total.backward()
    ttotal.backward()
    for (x, tx), label in zip(mine, ["input", "hx", "w_ih", "w_hh", "b_ih", "b_hh"]):
        close(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=label)


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_top_level_embedding_bag_like_torch(mode, padding_idx):
    torch = torch_or_skip()
    w, tw = both(rand(6, 3), grad=True)
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 0])
    off = np.array([0, 2, 2, 5])
    args = (cg.from_numpy(idx), cg.from_numpy(off), False, mode, False, None, False)
    targs = (torch.from_numpy(idx), torch.from_numpy(off), False, mode, False, None, False)
    if padding_idx is not None:
        args += (padding_idx,)
        targs += (padding_idx,)
    mine, theirs = cg.embedding_bag(w, *args), torch.embedding_bag(tw, *targs)
    assert len(mine) == 4
    close(mine[0], theirs[0].detach().numpy(), rtol=1e-12)
    for got, exp, label in zip(mine[1:], theirs[1:], ["offset2bag", "bag_size", "max_indices"]):
        assert got.tolist() == exp.tolist(), label
    mine[0].sum().backward()
    theirs[0].sum().backward()
    close(w.grad, tw.grad.numpy(), rtol=1e-12)


def test_top_level_ctc_loss_like_torch():
    torch = torch_or_skip()
    lp = np.log(np.random.default_rng(3).dirichlet(np.ones(4), size=(6, 2)))
    targets = np.array([[1, 2, 1], [3, 1, 0]])
    for reduction in (0, 1, 2):
        got = cg.ctc_loss(cg.from_numpy(lp), cg.from_numpy(targets), [6, 5], [3, 2], 0,
                          reduction)
        exp = torch.ctc_loss(torch.from_numpy(lp), torch.from_numpy(targets), [6, 5], [3, 2],
                             0, reduction)
        close(got, exp.numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="reduction must be 0 \\(none\\), 1 \\(mean\\) or 2 "
                       "\\(sum\\), got 3"):
        cg.ctc_loss(cg.from_numpy(lp), cg.from_numpy(targets), [6, 5], [3, 2], 0, 3)


# --- multi-head attention ------------------------------------------------------------------


def _mha_args(torch, E=4, H=2, separate=False, bias_kv=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"in_proj_weight": rng.standard_normal((3 * E, E)) * 0.5,
              "in_proj_bias": rng.standard_normal(3 * E) * 0.1,
              "out_proj_weight": rng.standard_normal((E, E)) * 0.5,
              "out_proj_bias": rng.standard_normal(E) * 0.1}
    if separate:
        arrays.update(q_proj_weight=rng.standard_normal((E, E)),
                      k_proj_weight=rng.standard_normal((E, E)),
                      v_proj_weight=rng.standard_normal((E, E)))
    if bias_kv:
        arrays.update(bias_k=rng.standard_normal((1, 1, E)), bias_v=rng.standard_normal((1, 1, E)))
    return {k: both(v, grad=True) for k, v in arrays.items()}


MHA_CASES = [dict(), dict(separate=True), dict(bias_kv=True), dict(add_zero_attn=True),
             dict(key_padding_mask=True), dict(attn_mask="bool"), dict(attn_mask="float3d"),
             dict(need_weights=False), dict(average_attn_weights=False), dict(unbatched=True),
             dict(static=True), dict(bias_kv=True, add_zero_attn=True, key_padding_mask=True,
                                     attn_mask="float")]


@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: "-".join(c) or "plain")
def test_multi_head_attention_forward_like_torch(case):
    torch = torch_or_skip()
    E, H, L, S, N = 4, 2, 3, 5, 2
    w = _mha_args(torch, E, H, case.get("separate", False), case.get("bias_kv", False))
    unbatched = case.get("unbatched", False)
    shape_q, shape_k = ((L, E), (S, E)) if unbatched else ((L, N, E), (S, N, E))
    q, tq = both(rand(*shape_q), grad=True)
    k, tk = both(rand(*shape_k, seed=1))
    v, tv = both(rand(*shape_k, seed=2))
    rng = np.random.default_rng(7)
    kw, tkw = {}, {}
    if case.get("key_padding_mask"):
        mask = np.zeros((N, S), bool)
        mask[0, -2:] = True
        kw["key_padding_mask"], tkw["key_padding_mask"] = both(mask)
    kind = case.get("attn_mask")
    if kind == "bool":
        kw["attn_mask"], tkw["attn_mask"] = both(np.triu(np.ones((L, S), bool), 2))
    elif kind == "float":
        kw["attn_mask"], tkw["attn_mask"] = both(rng.standard_normal((L, S)))
    elif kind == "float3d":
        kw["attn_mask"], tkw["attn_mask"] = both(rng.standard_normal((N * H, L, S)))
    if case.get("static"):
        kw["static_k"], tkw["static_k"] = both(rand(N * H, S, E // H, seed=4))
        kw["static_v"], tkw["static_v"] = both(rand(N * H, S, E // H, seed=5))
    for name in ("need_weights", "average_attn_weights"):
        if name in case:
            kw[name] = tkw[name] = case[name]

    def run(lib, qq, kk, vv, ww, extra):
        sep = "q_proj_weight" in ww
        return lib(qq, kk, vv, E, H, None if sep else ww["in_proj_weight"],
                   ww["in_proj_bias"], ww.get("bias_k"), ww.get("bias_v"),
                   case.get("add_zero_attn", False), 0.0, ww["out_proj_weight"],
                   ww["out_proj_bias"], use_separate_proj_weight=sep,
                   q_proj_weight=ww.get("q_proj_weight"), k_proj_weight=ww.get("k_proj_weight"),
                   v_proj_weight=ww.get("v_proj_weight"), **extra)

    with warnings.catch_warnings(record=True) as mine:
        warnings.simplefilter("always")
        out, weights = run(F.multi_head_attention_forward, q, k, v,
                           {n: a for n, (a, _) in w.items()}, kw)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        tout, tweights = run(torch.nn.functional.multi_head_attention_forward, tq, tk, tv,
                             {n: b for n, (_, b) in w.items()}, tkw)
    assert [str(m.message) for m in mine] == [str(m.message) for m in theirs]
    close(out, tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    if tweights is None:
        assert weights is None
    else:
        close(weights, tweights.detach().numpy(), rtol=1e-9, atol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    close(q.grad, tq.grad.numpy(), rtol=1e-8, atol=1e-11)
    for name, (a, b) in w.items():
        if b.grad is not None:
            close(a.grad, b.grad.numpy(), rtol=1e-8, atol=1e-11, err_msg=name)


def test_multi_head_attention_forward_errors():
    E = 4
    args = [cg.zeros(3 * E, E), None, None, None, False, 0.0, cg.zeros(E, E), None]
    with pytest.raises(AssertionError, match="was expecting embedding dimension of 6, but got 4"):
        F.multi_head_attention_forward(cg.zeros(2, 1, E), cg.zeros(2, 1, E), cg.zeros(2, 1, E),
                                       6, 2, *args)
    with pytest.raises(AssertionError, match="received 4-D query tensor"):
        F.multi_head_attention_forward(*(cg.zeros(1, 2, 1, E),) * 3, E, 2, *args)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        F.multi_head_attention_forward(*(cg.zeros(2, 1, E),) * 3, E, 2, *args, is_causal=True)
    with pytest.raises(RuntimeError, match="The shape of the 2D attn_mask is \\[2, 3\\], but "
                       "should be \\[2, 2\\]"):
        F.multi_head_attention_forward(*(cg.zeros(2, 1, E),) * 3, E, 2, *args,
                                       attn_mask=cg.zeros(2, 3))


# --- nn.grad -------------------------------------------------------------------------------

GRAD_CASES = [(1, dict()), (1, dict(stride=2, padding=1, dilation=2)),
              (2, dict(stride=(2, 1), padding=1, groups=2)), (2, dict(dilation=2)),
              (3, dict(stride=2, padding=(1, 0, 1)))]


@pytest.mark.parametrize("n,kw", GRAD_CASES)
def test_nn_grad_like_torch(n, kw):
    torch = torch_or_skip()
    groups = kw.get("groups", 1)
    in_shape = (2, 4) + (7, 6, 5)[:n]
    w_shape = (6, 4 // groups) + (3, 2, 3)[:n]
    x, tx = both(rand(*in_shape))
    w, tw = both(rand(*w_shape, seed=1))
    conv = getattr(torch.nn.functional, f"conv{n}d")
    g, tg = both(rand(*conv(tx, tw, None, **kw).shape, seed=2))
    got = getattr(nn.grad, f"conv{n}d_input")(in_shape, w, g, **kw)
    exp = getattr(torch.nn.grad, f"conv{n}d_input")(in_shape, tw, tg, **kw)
    close(got, exp.numpy(), rtol=1e-10, atol=1e-12)
    got = getattr(nn.grad, f"conv{n}d_weight")(x, w_shape, g, **kw)
    exp = getattr(torch.nn.grad, f"conv{n}d_weight")(tx, w_shape, tg, **kw)
    close(got, exp.numpy(), rtol=1e-10, atol=1e-12)
    assert not got.requires_grad


def test_nn_grad_is_differentiable_and_checks_sizes():
    x, w = leaf(1, 2, 5), leaf(3, 2, 2, seed=1)
    g = leaf(1, 3, 4, seed=2)
    assert gradcheck(lambda ww, gg: nn.grad.conv1d_input((1, 2, 5), ww, gg), (w, g))
    assert gradcheck(lambda xx, gg: nn.grad.conv1d_weight(xx, (3, 2, 2), gg), (x, g))
    # the transpose of the convolution: <conv(x), g> == <x, conv_input(g)>
    inner = (F.conv1d(x, w) * g).sum().item()
    close(np.array((x * nn.grad.conv1d_input(x.shape, w, g)).sum().item()), np.array(inner),
          rtol=1e-12)
    with pytest.raises(RuntimeError, match="grad_output has size \\[1, 3, 3\\], but the "
                       "convolution's output for these sizes is \\[1, 3, 4\\]"):
        nn.grad.conv1d_input((1, 2, 5), w.detach(), cg.zeros(1, 3, 3, dtype=cg.float64))
