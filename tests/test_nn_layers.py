"""The nn pieces added on the nn-layers branch: losses (margin ranking, triplet, cosine
embedding, Gaussian/Poisson NLL, hinge, soft margin, multi-label soft margin, multi margin,
CTC), activations (SELU, CELU, shrinks, AlphaDropout, gumbel_softmax, LocalResponseNorm) and
layers (ConvTranspose1d, Conv3d, ConvTranspose3d, BatchNorm3d, 1-d adaptive pools, pads,
Fold/Unfold, Upsampling*2d, LazyLinear, Bilinear, EmbeddingBag, ChannelShuffle, LPPool,
pdist, affine_grid, grid_sample): numpy references, float64 gradchecks, PyTorch parity
(values, gradients, reprs, state_dict keys) where torch is installed."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
import clgraph.nn as nn
import clgraph.nn.functional as F
from clgraph.autograd import gradcheck

RNG = np.random.default_rng(11)


def arr(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, shape)


def leaf(a):
    return cg.from_numpy(np.array(a, dtype=np.float64)).requires_grad_()


def close(t, ref, **kw):
    """Values of t against ref; float32 results get float32 tolerances."""
    got = t.detach().numpy()
    assert got.shape == np.shape(ref), (got.shape, np.shape(ref))
    tol = 1e-10 if got.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, ref, **{"rtol": tol, "atol": tol, **kw})


# --- activations: numpy reference and gradcheck --------------------------------------------

XA = arr(3, 7, low=-3, high=3)
_A, _S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
ACTIVATIONS = {
    "selu": (F.selu, lambda a: _S * np.where(a > 0, a, _A * np.expm1(a))),
    "celu": (lambda x: F.celu(x, 0.7), lambda a: np.where(a > 0, a, 0.7 * np.expm1(a / 0.7))),
    "tanhshrink": (F.tanhshrink, lambda a: a - np.tanh(a)),
    "hardshrink": (lambda x: F.hardshrink(x, 0.6), lambda a: np.where(np.abs(a) > 0.6, a, 0)),
    "softshrink": (lambda x: F.softshrink(x, 0.6),
                   lambda a: np.where(a > 0.6, a - 0.6, np.where(a < -0.6, a + 0.6, 0))),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name):
    fn, ref = ACTIVATIONS[name]
    close(fn(cg.from_numpy(XA)), ref(XA))
    x = XA + 0.05 * (np.abs(np.abs(XA) - 0.6) < 0.05)  # away from the shrinks' kinks
    assert gradcheck(fn, (leaf(x),))


def test_activation_modules_and_errors():
    x = cg.from_numpy(XA)
    for module, fn in [(nn.SELU(), F.selu), (nn.CELU(0.7), lambda t: F.celu(t, 0.7)),
                       (nn.Tanhshrink(), F.tanhshrink), (nn.Hardshrink(0.6),
                                                         lambda t: F.hardshrink(t, 0.6)),
                       (nn.Softshrink(0.6), lambda t: F.softshrink(t, 0.6))]:
        close(module(x), fn(x).numpy())
    with pytest.raises(RuntimeError, match="-1"):
        F.softshrink(x, -1)
    assert repr(nn.CELU(0.5, True)) == "CELU(alpha=0.5, inplace=True)"
    assert repr(nn.Softshrink(0.3)) == "Softshrink(0.3)"


def test_alpha_dropout():
    x = cg.from_numpy(RNG.standard_normal((200, 200)))
    assert F.alpha_dropout(x, 0.3) is x  # training=False by default
    y = F.alpha_dropout(x, 0.2, training=True).numpy()
    # keeps zero mean and unit variance for a standard normal input
    assert abs(y.mean()) < 0.05 and abs(y.std() - 1) < 0.05
    alpha = _A * _S
    a = 1 / math.sqrt((alpha * alpha * 0.2 + 1) * 0.8)
    dropped = np.isclose(y, a * (-alpha) + alpha * a * 0.2)
    assert 0.17 < dropped.mean() < 0.23
    m = nn.AlphaDropout(0.2)
    m.eval()
    assert m(x) is x
    with pytest.raises(ValueError, match="1.5"):
        nn.AlphaDropout(1.5)


def test_gumbel_softmax():
    cg.manual_seed(0)
    logits = leaf(arr(4, 6))
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.detach().numpy().sum(-1), 1, rtol=1e-12)
    hard = F.gumbel_softmax(logits, hard=True, dim=0)
    h = hard.detach().numpy()
    assert set(np.unique(h)) <= {0.0, 1.0} and (h.sum(0) == 1).all()
    hard.sum().backward()  # straight-through: the soft sample's gradient
    assert logits.grad is not None and np.isfinite(logits.grad.numpy()).all()


def _lrn_ref(x, size, alpha, beta, k):
    sq = x * x
    C = x.shape[1]
    out = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C, c + (size - 1) // 2 + 1)
        out[:, c] = x[:, c] / (k + alpha / size * sq[:, lo:hi].sum(1)) ** beta
    return out


@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 6, 3, 2)])
def test_local_response_norm(shape):
    x = arr(*shape, low=-2, high=2)
    close(F.local_response_norm(cg.from_numpy(x), 3, 0.1, 0.6, 1.5),
          _lrn_ref(x, 3, 0.1, 0.6, 1.5))
    close(nn.LocalResponseNorm(4)(cg.from_numpy(x)), _lrn_ref(x, 4, 1e-4, 0.75, 1.0))
    assert gradcheck(lambda t: F.local_response_norm(t, 2, 0.5, 0.75, 1.0), (leaf(x),))
    with pytest.raises(ValueError, match="got 2 dimensions"):
        F.local_response_norm(cg.zeros(2, 3), 2)


# --- losses: gradcheck every reduction; PyTorch parity ---------------------------------------

A, B, Cn = arr(4, 5), arr(4, 5), arr(4, 5)
SIGNS = np.where(arr(4, 5) > 0, 1.0, -1.0)
T01 = (arr(4, 5) > 0).astype(np.float64)
CLS = np.array([0, 3, 4, 1])
W5 = RNG.uniform(0.5, 2, 5)
Y4 = np.array([1.0, -1, 1, -1])
VAR = RNG.uniform(0.2, 2, (4, 5))
COUNTS = RNG.poisson(2.5, (4, 5)).astype(np.float64)

# name -> (clgraph loss of float64 leaves, its inputs, torch equivalent of the same call)
LOSSES = {
    "margin_ranking": (lambda a, b, r: F.margin_ranking_loss(a, b, cg.from_numpy(SIGNS), 0.3,
                                                             reduction=r), (A, B),
                       lambda T, a, b, r: T.nn.functional.margin_ranking_loss(
                           a, b, T.from_numpy(SIGNS), 0.3, reduction=r)),
    "hinge_embedding": (lambda a, r: F.hinge_embedding_loss(a, cg.from_numpy(SIGNS), 0.5,
                                                            reduction=r), (A,),
                        lambda T, a, r: T.nn.functional.hinge_embedding_loss(
                            a, T.from_numpy(SIGNS), 0.5, reduction=r)),
    "soft_margin": (lambda a, r: F.soft_margin_loss(a, cg.from_numpy(SIGNS), reduction=r),
                    (A,), lambda T, a, r: T.nn.functional.soft_margin_loss(
                        a, T.from_numpy(SIGNS), reduction=r)),
    "multilabel_soft_margin": (
        lambda a, r: F.multilabel_soft_margin_loss(a, cg.from_numpy(T01), cg.from_numpy(W5),
                                                   reduction=r), (A,),
        lambda T, a, r: T.nn.functional.multilabel_soft_margin_loss(
            a, T.from_numpy(T01), T.from_numpy(W5), reduction=r)),
    "multi_margin_p1": (lambda a, r: F.multi_margin_loss(a, cg.tensor(CLS), 1, 0.7,
                                                         cg.from_numpy(W5), reduction=r), (A,),
                        lambda T, a, r: T.nn.functional.multi_margin_loss(
                            a, T.tensor(CLS), 1, 0.7, T.from_numpy(W5), reduction=r)),
    "multi_margin_p2": (lambda a, r: F.multi_margin_loss(a, cg.tensor(CLS), 2, reduction=r),
                        (A,), lambda T, a, r: T.nn.functional.multi_margin_loss(
                            a, T.tensor(CLS), 2, reduction=r)),
    "cosine_embedding": (lambda a, b, r: F.cosine_embedding_loss(a, b, cg.from_numpy(Y4), 0.1,
                                                                 reduction=r), (A, B),
                         lambda T, a, b, r: T.nn.functional.cosine_embedding_loss(
                             a, b, T.from_numpy(Y4), 0.1, reduction=r)),
    "gaussian_nll": (lambda a, b, v, r: F.gaussian_nll_loss(a, b, v, True, reduction=r),
                     (A, B, VAR), lambda T, a, b, v, r: T.nn.functional.gaussian_nll_loss(
                         a, b, v, True, reduction=r)),
    "gaussian_nll_homoscedastic": (
        lambda a, b, v, r: F.gaussian_nll_loss(a, b, v, reduction=r), (A, B, VAR[:, :1]),
        lambda T, a, b, v, r: T.nn.functional.gaussian_nll_loss(a, b, v, reduction=r)),
    "poisson_nll_log": (lambda a, r: F.poisson_nll_loss(a, cg.from_numpy(COUNTS), True, True,
                                                        reduction=r), (A,),
                        lambda T, a, r: T.nn.functional.poisson_nll_loss(
                            a, T.from_numpy(COUNTS), True, True, reduction=r)),
    "poisson_nll": (lambda v, r: F.poisson_nll_loss(v, cg.from_numpy(COUNTS), False,
                                                    reduction=r), (VAR,),
                    lambda T, v, r: T.nn.functional.poisson_nll_loss(
                        v, T.from_numpy(COUNTS), False, reduction=r)),
    "triplet": (lambda a, b, c, r: F.triplet_margin_loss(a, b, c, 0.8, reduction=r),
                (A, B, Cn), lambda T, a, b, c, r: T.nn.functional.triplet_margin_loss(
                    a, b, c, 0.8, reduction=r)),
    "triplet_p3_swap": (lambda a, b, c, r: F.triplet_margin_loss(a, b, c, 0.8, 3, swap=True,
                                                                 reduction=r), (A, B, Cn),
                        lambda T, a, b, c, r: T.nn.functional.triplet_margin_loss(
                            a, b, c, 0.8, 3, swap=True, reduction=r)),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradcheck(name, reduction):
    fn, inputs, _ = LOSSES[name]
    assert gradcheck(lambda *xs: fn(*xs, reduction), tuple(leaf(a) for a in inputs))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_torch(name):
    T = torch_or_skip()
    fn, inputs, tfn = LOSSES[name]
    for reduction in ("mean", "sum", "none"):
        ours = [leaf(a) for a in inputs]
        theirs = [T.tensor(a, requires_grad=True) for a in inputs]
        out, ref = fn(*ours, reduction), tfn(T, *theirs, reduction)
        close(out, ref.detach().numpy(), rtol=1e-9, atol=1e-12)
        out.sum().backward()
        ref.sum().backward()
        for o, t in zip(ours, theirs):
            close(o.grad, t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_loss_numpy_references():
    close(F.margin_ranking_loss(cg.from_numpy(A), cg.from_numpy(B), cg.from_numpy(SIGNS),
                                reduction="none"), np.maximum(0, -SIGNS * (A - B)))
    close(F.soft_margin_loss(cg.from_numpy(A), cg.from_numpy(SIGNS)),
          np.log1p(np.exp(-SIGNS * A)).mean())
    x_y = A[np.arange(4), CLS][:, None]
    z = np.maximum(0, 1 - x_y + A)
    z[np.arange(4), CLS] = 0
    close(F.multi_margin_loss(cg.from_numpy(A), cg.tensor(CLS), reduction="none"),
          z.sum(1) / 5)
    d = lambda u, v: np.linalg.norm(u - v + 1e-6, axis=-1)  # noqa: E731
    close(F.triplet_margin_loss(cg.from_numpy(A), cg.from_numpy(B), cg.from_numpy(Cn),
                                reduction="none"), np.maximum(d(A, B) - d(A, Cn) + 1, 0))
    close(F.gaussian_nll_loss(cg.from_numpy(A), cg.from_numpy(B), 0.5, reduction="sum"),
          (0.5 * (np.log(0.5) + (A - B) ** 2 / 0.5)).sum())


def test_loss_modules_and_errors():
    a, b = cg.from_numpy(A), cg.from_numpy(B)
    close(nn.TripletMarginLoss(margin=0.8, p=3, swap=True)(a, b, cg.from_numpy(Cn)),
          F.triplet_margin_loss(a, b, cg.from_numpy(Cn), 0.8, 3, swap=True).numpy())
    close(nn.MultiMarginLoss(p=2, weight=cg.from_numpy(W5))(a, cg.tensor(CLS)),
          F.multi_margin_loss(a, cg.tensor(CLS), 2, weight=cg.from_numpy(W5)).numpy())
    close(nn.GaussianNLLLoss(full=True, reduction="sum")(a, b, cg.from_numpy(VAR)),
          F.gaussian_nll_loss(a, b, cg.from_numpy(VAR), True, reduction="sum").numpy())
    assert list(nn.MultiLabelSoftMarginLoss(cg.from_numpy(W5)).state_dict()) == ["weight"]
    with pytest.raises(ValueError, match="p == 1 and p == 2"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="greater than 0, got -1"):
        nn.TripletMarginLoss(margin=-1)
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(a, b, -cg.from_numpy(VAR))
    with pytest.raises(ValueError, match="incorrect size"):
        F.gaussian_nll_loss(a, b, cg.ones(3))
    with pytest.raises(RuntimeError, match="same dimension"):
        F.margin_ranking_loss(a, b, cg.ones(4))
    with pytest.raises(RuntimeError, match="anchor 2D, positive 2D, and negative 1D"):
        F.triplet_margin_loss(a, b, cg.ones(5))
    with pytest.raises(ValueError, match="bad is not a valid value"):
        F.soft_margin_loss(a, b, reduction="bad")
    with pytest.raises(RuntimeError, match=re.escape(
            "target tensor should be 1-D with size equal to the number of input samples "
            "(batch size). Expected target size [5], but got [3]. Input has shape [5, 3].")):
        F.multi_margin_loss(cg.ones(5, 3), cg.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="delta must be a float or int, got: <class 'complex'>"):
        nn.HuberLoss(delta=1j)


# --- CTC -----------------------------------------------------------------------------------

def _ctc_ref(lp, target, T):
    """-log p(target) by brute force over all alignments of T frames (tiny cases)."""
    import itertools
    total = 0.0
    for path in itertools.product(range(lp.shape[1]), repeat=T):
        collapsed = [c for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c)]
        if collapsed == list(target):
            total += math.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return -math.log(total) if total else math.inf


def test_ctc_brute_force():
    logits = arr(4, 2, 3, low=-2, high=2)
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = np.array([[1, 1], [2, 0]])
    out = F.ctc_loss(cg.from_numpy(lp), cg.tensor(targets), [4, 3], [2, 1], reduction="none")
    close(out, [_ctc_ref(lp[:, 0], [1, 1], 4), _ctc_ref(lp[:3, 1], [2], 3)])


def test_ctc_gradcheck_and_infinity():
    logits = arr(6, 2, 4, low=-2, high=2)
    targets = cg.tensor([1, 2, 2, 3, 1])  # concatenated form
    fn = lambda x: F.ctc_loss(F.log_softmax(x, 2), targets, [6, 5], [3, 2])  # noqa: E731
    assert gradcheck(fn, (leaf(logits),))
    lp = F.log_softmax(cg.from_numpy(logits), 2)
    impossible = F.ctc_loss(lp, cg.tensor([[1, 1, 1, 1], [2, 0, 0, 0]]), [6, 2], [4, 1],
                            reduction="none")
    assert math.isinf(impossible.numpy()[0]) and math.isfinite(impossible.numpy()[1])
    x = leaf(logits)
    zeroed = F.ctc_loss(F.log_softmax(x, 2), cg.tensor([[1, 1, 1, 1], [2, 0, 0, 0]]), [6, 2],
                        [4, 1], zero_infinity=True, reduction="sum")
    zeroed.backward()
    assert np.isfinite(zeroed.detach().numpy()) and np.isfinite(x.grad.numpy()).all()
    with pytest.raises(RuntimeError, match="input_lengths must be of size batch_size"):
        F.ctc_loss(lp, targets, [6], [3, 2])
    with pytest.raises(RuntimeError, match="blank must be in label range"):
        nn.CTCLoss(blank=7)(lp, targets, [6, 5], [3, 2])


def test_ctc_matches_torch():
    T = torch_or_skip()
    logits = arr(9, 3, 5, low=-2, high=2)
    targets = np.array([[1, 2, 2, 4], [3, 1, 0, 0], [4, 4, 4, 0]])
    il, tl = [9, 6, 7], [4, 2, 3]
    for reduction in ("mean", "sum", "none"):
        x, tx = leaf(logits), T.tensor(logits, requires_grad=True)
        out = nn.CTCLoss(reduction=reduction)(F.log_softmax(x, 2), cg.tensor(targets),
                                              cg.tensor(il), cg.tensor(tl))
        ref = T.nn.CTCLoss(reduction=reduction)(T.log_softmax(tx, 2), T.tensor(targets),
                                                T.tensor(il), T.tensor(tl))
        close(out, ref.detach().numpy(), rtol=1e-9)
        out.sum().backward()
        ref.sum().backward()
        close(x.grad, tx.grad.numpy(), rtol=1e-8, atol=1e-12)


def _ce_ref(logits, t, w=None):
    """cross entropy of (N, C, *d) logits against class indices, numpy, reduction 'none'."""
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    picked = -np.take_along_axis(logp, t[:, None], 1)[:, 0]
    return picked if w is None else picked * w[t]


def test_linear_cross_entropy():
    x, W, b = arr(4, 3), arr(5, 2, 3), arr(5, 2)  # K = 1: logits (4, 5, 2)
    t = np.array([[0, 4], [1, 1], [3, 2], [4, 0]])
    logits = np.einsum("ni,cdi->ncd", x, W) + b
    cw = np.array([1.0, 0.5, 2.0, 1.5, 0.25])
    out = F.linear_cross_entropy(leaf(x), leaf(W), cg.tensor(t), linear_bias=leaf(b),
                                 weight=cg.tensor(cw), reduction="none")
    close(out, _ce_ref(logits, t, cw))
    assert gradcheck(lambda x, W: F.linear_cross_entropy(x, W, cg.tensor(t[:, 0])),
                     (leaf(x), leaf(W[:, 0])))
    m = nn.LinearCrossEntropyLoss(3, 5, out_features=(2,), bias=True, reduction="sum")
    assert list(m.state_dict()) == ["linear.weight", "linear.bias"]
    assert m.linear.weight.shape == (10, 3) and m.linear.bias.shape == (10,)
    m.linear.weight = nn.Parameter(cg.tensor(W.reshape(10, 3)))
    m.linear.bias = nn.Parameter(cg.tensor(b.reshape(10)))
    close(m(leaf(x), cg.tensor(t)), _ce_ref(logits, t).sum())
    with pytest.raises(RuntimeError, match="requires batched input"):
        F.linear_cross_entropy(leaf(x[0]), leaf(W), cg.tensor(t[0]))
    with pytest.raises(RuntimeError, match="got 3 and 2"):
        F.linear_cross_entropy(leaf(x), leaf(W[..., :2]), cg.tensor(t))
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified"):
        F.linear_cross_entropy(leaf(x), leaf(W[:, 0]), cg.tensor(arr(4, 5)), ignore_index=1)


def test_linear_cross_entropy_matches_torch():
    T = torch_or_skip()
    x, W = arr(6, 4), arr(3, 4)
    t = np.array([0, 2, 1, 1, 2, 0])
    for kw in ({}, {"reduction": "none", "ignore_index": 1}, {"label_smoothing": 0.2}):
        ours = nn.LinearCrossEntropyLoss(4, 3, **kw).double()
        theirs = T.nn.LinearCrossEntropyLoss(4, 3, **kw).double()
        assert repr(ours) == repr(theirs)
        ours.linear.weight = nn.Parameter(cg.tensor(W))
        theirs.linear.weight = T.nn.Parameter(T.tensor(W))
        xo, xt = leaf(x), T.tensor(x, requires_grad=True)
        out, ref = ours(xo, cg.tensor(t)), theirs(xt, T.tensor(t))
        close(out, ref.detach().numpy())
        out.sum().backward()
        ref.sum().backward()
        close(xo.grad, xt.grad.numpy())
        close(ours.linear.weight.grad, theirs.linear.weight.grad.numpy())


def test_ctc_direct_gradient_is_the_true_derivative():
    """Differentiated directly in log_probs (no log_softmax in between), clgraph gives the
    true derivative (float64 central differences); PyTorch's CTC backward assumes log_probs
    lie on the log-simplex and adds exp(log_probs) * grad_out on each frame t < input_length
    (pytorch/pytorch#52241), so the two differ by exactly that term."""
    logits = arr(7, 2, 5, low=-2, high=2)
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    il, tl = [7, 5], [3, 2]
    for targets, blank, reduction, zero_inf in (
            (np.array([[1, 3, 3], [4, 1, 0]]), 0, "none", False),
            (np.array([1, 0, 0, 4, 1]), 2, "sum", True),  # concatenated 1-D targets
            (np.array([[0, 1, 1], [4, 3, 4]]), 2, "mean", False)):
        w = np.array([0.7, -1.3]) if reduction == "none" else 1.0

        def fn(x):
            out = F.ctc_loss(x, cg.tensor(targets), il, tl, blank=blank,
                             reduction=reduction, zero_infinity=zero_inf)
            return (out * cg.tensor(w)).sum()

        assert gradcheck(fn, (leaf(lp),))
        T = torch_or_skip()
        x = leaf(lp)
        fn(x).backward()
        tx = T.tensor(lp, requires_grad=True)
        ref = T.nn.functional.ctc_loss(tx, T.tensor(targets), il, tl, blank=blank,
                                       reduction=reduction, zero_infinity=zero_inf)
        (ref * T.tensor(w)).sum().backward()
        g_out = np.broadcast_to(w, (2,)) / (np.array(tl) * 2 if reduction == "mean" else 1)
        frames = np.arange(7)[:, None] < np.array(il)
        close(x.grad, tx.grad.numpy() - np.exp(lp) * (g_out * frames)[..., None], atol=1e-12)


# --- layers --------------------------------------------------------------------------------

# name -> (clgraph function, float64 inputs, torch function of torch inputs)
FUNCS = {
    "conv_transpose1d": (lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1, 2, 1),
                         (arr(2, 4, 5), arr(4, 3, 3), arr(6)),
                         lambda T, x, w, b: T.nn.functional.conv_transpose1d(x, w, b, 2, 1, 1,
                                                                              2, 1)),
    "conv3d": (lambda x, w, b: F.conv3d(x, w, b, (2, 1, 1), 1, (1, 2, 1), 2),
               (arr(1, 4, 4, 5, 4), arr(4, 2, 2, 2, 3), arr(4)),
               lambda T, x, w, b: T.nn.functional.conv3d(x, w, b, (2, 1, 1), 1, (1, 2, 1), 2)),
    "conv3d_same": (lambda x, w: F.conv3d(x, w, None, 1, "same"),
                    (arr(1, 2, 3, 4, 3), arr(2, 2, 2, 3, 2)),
                    lambda T, x, w: T.nn.functional.conv3d(x, w, None, 1, "same")),
    "conv_transpose3d": (lambda x, w, b: F.conv_transpose3d(x, w, b, (2, 1, 2), 1, (1, 0, 1),
                                                            2, (1, 2, 1)),
                         (arr(1, 4, 3, 3, 2), arr(4, 1, 2, 2, 3), arr(2)),
                         lambda T, x, w, b: T.nn.functional.conv_transpose3d(
                             x, w, b, (2, 1, 2), 1, (1, 0, 1), 2, (1, 2, 1))),
    # output_padding at least the stride (allowed while it is below the dilation)
    "conv_transpose1d_wide_output_padding": (
        lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 3, 2, 4),
        (arr(1, 2, 3), arr(2, 1, 3), arr(2)),
        lambda T, x, w, b: T.nn.functional.conv_transpose1d(x, w, b, 2, 1, 3, 2, 4)),
    "conv_transpose2d_wide_output_padding": (
        lambda x, w, b: F.conv_transpose2d(x, w, b, (3, 2), (1, 2), (2, 3), 2, 4),
        (arr(1, 2, 2, 3), arr(2, 1, 2, 3), arr(2)),
        lambda T, x, w, b: T.nn.functional.conv_transpose2d(x, w, b, (3, 2), (1, 2), (2, 3),
                                                             2, 4)),
    "conv_transpose3d_wide_output_padding": (
        lambda x, w, b: F.conv_transpose3d(x, w, b, (2, 1, 2), (1, 0, 2), (2, 1, 3), 1, 4),
        (arr(1, 1, 2, 2, 2), arr(1, 2, 2, 2, 2), arr(2)),
        lambda T, x, w, b: T.nn.functional.conv_transpose3d(x, w, b, (2, 1, 2), (1, 0, 2),
                                                             (2, 1, 3), 1, 4)),
    "adaptive_avg_pool1d": (lambda x: F.adaptive_avg_pool1d(x, 3), (arr(2, 3, 7),),
                            lambda T, x: T.nn.functional.adaptive_avg_pool1d(x, 3)),
    "adaptive_max_pool1d": (lambda x: F.adaptive_max_pool1d(x, 4), (arr(2, 3, 7),),
                            lambda T, x: T.nn.functional.adaptive_max_pool1d(x, 4)),
    "lp_pool1d": (lambda x: F.lp_pool1d(x, 2, 3, 2), (arr(2, 3, 8, low=0.2),),
                  lambda T, x: T.nn.functional.lp_pool1d(x, 2, 3, 2)),
    "lp_pool2d": (lambda x: F.lp_pool2d(x, 1.5, (2, 3), ceil_mode=True),
                  (arr(1, 2, 5, 7, low=0.2),),
                  lambda T, x: T.nn.functional.lp_pool2d(x, 1.5, (2, 3), ceil_mode=True)),
    "channel_shuffle": (lambda x: F.channel_shuffle(x, 3), (arr(2, 6, 2, 2),),
                        lambda T, x: T.nn.functional.channel_shuffle(x, 3)),
    "bilinear": (F.bilinear, (arr(2, 3, 4), arr(2, 3, 5), arr(6, 4, 5), arr(6)),
                 lambda T, *a: T.nn.functional.bilinear(*a)),
    "pdist": (lambda x: F.pdist(x, 1.5), (arr(5, 3),),
              lambda T, x: T.nn.functional.pdist(x, 1.5)),
    "pairwise_distance": (lambda a, b: F.pairwise_distance(a, b, 3, keepdim=True),
                          (arr(4, 5), arr(4, 5)),
                          lambda T, a, b: T.nn.functional.pairwise_distance(a, b, 3,
                                                                            keepdim=True)),
    "reflection_pad": (lambda x: F.pad(x, (2, 1, 1, 2), "reflect"), (arr(1, 2, 4, 4),),
                       lambda T, x: T.nn.ReflectionPad2d((2, 1, 1, 2))(x)),
    "affine_grid": (lambda t: F.affine_grid(t, (2, 1, 3, 4), False), (arr(2, 2, 3),),
                    lambda T, t: T.nn.functional.affine_grid(t, (2, 1, 3, 4), False)),
    "affine_grid_3d": (lambda t: F.affine_grid(t, (1, 1, 2, 3, 2), True), (arr(1, 3, 4),),
                       lambda T, t: T.nn.functional.affine_grid(t, (1, 1, 2, 3, 2), True)),
}
GRID = arr(2, 3, 4, 2, low=-1.3, high=1.3)
GRID_3D = arr(2, 1, 2, 3, 3, low=-1.3, high=1.3)
for _mode, _x, _grid in [("bilinear", arr(2, 2, 3, 5), GRID), ("nearest", arr(2, 2, 3, 5), GRID),
                         ("bicubic", arr(2, 1, 3, 5), GRID[:, :2]),
                         ("bilinear", arr(2, 1, 2, 3, 4), GRID_3D),
                         ("nearest", arr(2, 1, 2, 3, 4), GRID_3D)]:
    for _pad in ("zeros", "border", "reflection"):
        for _ac in (True, False):
            FUNCS[f"grid_sample_{_x.ndim}d_{_mode}_{_pad}_{_ac}"] = (
                lambda x, g, m=_mode, p=_pad, a=_ac: F.grid_sample(x, g, m, p, a),
                (_x, _grid),
                lambda T, x, g, m=_mode, p=_pad, a=_ac: T.nn.functional.grid_sample(x, g, m, p,
                                                                                    a))


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function_gradcheck(name):
    fn, inputs, _ = FUNCS[name]
    assert gradcheck(fn, tuple(leaf(a) for a in inputs))


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function_matches_torch(name):
    T = torch_or_skip()
    fn, inputs, tfn = FUNCS[name]
    ours = [leaf(a) for a in inputs]
    theirs = [T.tensor(a, requires_grad=True) for a in inputs]
    out, ref = fn(*ours), tfn(T, *theirs)
    close(out, ref.detach().numpy(), rtol=1e-9, atol=1e-12)
    u = RNG.standard_normal(tuple(ref.shape))
    (out * cg.from_numpy(u)).sum().backward()
    (ref * T.from_numpy(u)).sum().backward()
    for o, t in zip(ours, theirs):  # no gradient path (nearest's grid) is PyTorch's zeros
        close(o.grad if o.grad is not None else cg.zeros(*o.shape), t.grad.numpy(),
              rtol=1e-8, atol=1e-10)


def test_pdist_p0_counts_and_has_zero_gradient():
    x = leaf(np.array([[1.0, 0.0, 2.0], [1.0, 3.0, 0.5], [0.0, 0.0, 2.0]]))
    out = F.pdist(x, 0.0)
    close(out, [2.0, 1.0, 3.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 3)))
    y = leaf(arr(2, 4))
    y.norm(p=0, dim=1).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), np.zeros((2, 4)))


def test_conv3d_numpy_reference():
    x, w = arr(1, 2, 3, 4, 4), arr(3, 2, 2, 3, 2)
    out = F.conv3d(cg.from_numpy(x), cg.from_numpy(w)).numpy()
    ref = np.zeros((1, 3, 2, 2, 3))
    for d in range(2):
        for h in range(2):
            for v in range(3):
                ref[0, :, d, h, v] = np.einsum("cdhw,ocdhw->o", x[0, :, d:d + 2, h:h + 3,
                                                                  v:v + 2], w)
    close(cg.from_numpy(out), ref)
    # conv_transpose3d is conv3d's adjoint: <conv(x), y> == <x, conv_t(y)>
    y = arr(1, 3, 2, 2, 3)
    back = F.conv_transpose3d(cg.from_numpy(y), cg.from_numpy(w)).numpy()
    np.testing.assert_allclose((out * y).sum(), (x * back).sum(), rtol=1e-10)


def test_grid_sample_identity_and_errors():
    x = cg.from_numpy(arr(1, 2, 4, 5))
    grid = F.affine_grid(cg.tensor([[[1.0, 0, 0], [0, 1, 0]]], dtype=cg.float64), (1, 2, 4, 5),
                         align_corners=False)
    for mode in ("bilinear", "nearest"):
        close(F.grid_sample(x, grid, mode, align_corners=False), x.numpy())
    with pytest.raises(ValueError, match="'cubic'"):
        F.grid_sample(x, grid, "cubic", align_corners=False)
    with pytest.raises(ValueError, match="'mirror'"):
        F.grid_sample(x, grid, padding_mode="mirror", align_corners=False)
    x3 = cg.from_numpy(arr(1, 2, 3, 4, 5))
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D input"):
        F.grid_sample(x3, cg.zeros(1, 2, 2, 2, 3, dtype=cg.float64), "bicubic",
                      align_corners=False)
    with pytest.raises(RuntimeError, match=r"size 3 in last dimension, but got grid with "
                                           r"sizes \[1, 2, 2, 2, 2\]"):
        F.grid_sample(x3, cg.zeros(1, 2, 2, 2, 2, dtype=cg.float64), align_corners=False)
    with pytest.raises(RuntimeError, match=r"expected 4D input and grid with same number of "
                                           r"dimensions, but got input with sizes \[1, 2, 4, 5\]"):
        F.grid_sample(x, cg.zeros(1, 2, 2, 2, 2, dtype=cg.float64), align_corners=False)
    with pytest.raises(RuntimeError, match=r"same batch size, but got input with sizes "
                                           r"\[1, 2, 3, 4, 5\] and grid with sizes \[2,"):
        F.grid_sample(x3, cg.zeros(2, 2, 2, 2, 3, dtype=cg.float64), align_corners=False)
    # identity grids reproduce the input in 3-D and with bicubic taps too
    grid3 = F.affine_grid(cg.tensor([[[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]],
                                    dtype=cg.float64), (1, 2, 3, 4, 5), align_corners=True)
    for mode in ("bilinear", "nearest"):
        close(F.grid_sample(x3, grid3, mode, align_corners=True), x3.numpy())
    close(F.grid_sample(x, grid, "bicubic", align_corners=False), x.numpy())
    with pytest.raises(ValueError, match="Nx2x3"):
        F.affine_grid(cg.zeros(1, 3, 3), (1, 2, 4, 5), align_corners=False)
    with pytest.warns(UserWarning, match="align_corners"):
        F.affine_grid(cg.zeros(1, 2, 3), (1, 2, 4, 5))


EB_WEIGHT = arr(10, 3)
EB_INPUT = np.array([1, 2, 4, 5, 4, 3, 2, 9])
EB_OFFSETS = np.array([0, 3, 3, 6])


def _bags_ref(mode, padding_idx=None, psw=None):
    ends = list(EB_OFFSETS[1:]) + [len(EB_INPUT)]
    out = []
    for a, b in zip(EB_OFFSETS, ends):
        rows = [EB_WEIGHT[i] * (1 if psw is None else psw[j])
                for j, i in enumerate(EB_INPUT[a:b], a) if i != padding_idx]
        if not rows:
            out.append(np.zeros(3))
        else:
            out.append({"sum": np.sum, "mean": np.mean, "max": np.max}[mode](rows, axis=0))
    return np.array(out)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 4])
def test_embedding_bag(mode, padding_idx):
    w = leaf(EB_WEIGHT)
    out = F.embedding_bag(cg.tensor(EB_INPUT), w, cg.tensor(EB_OFFSETS), mode=mode,
                          padding_idx=padding_idx)
    close(out, _bags_ref(mode, padding_idx))
    fixed = F.embedding_bag(cg.tensor(EB_INPUT.reshape(2, 4)), w, mode=mode,
                            padding_idx=padding_idx)
    assert fixed.shape == (2, 3)
    assert gradcheck(lambda t: F.embedding_bag(cg.tensor(EB_INPUT), t, cg.tensor(EB_OFFSETS),
                                               mode=mode, padding_idx=padding_idx), (w,))
    T = torch_or_skip()
    tw = T.tensor(EB_WEIGHT, requires_grad=True)
    ref = T.nn.functional.embedding_bag(T.tensor(EB_INPUT.reshape(2, 4)), tw, mode=mode,
                                        padding_idx=padding_idx)
    close(fixed, ref.detach().numpy())


def test_embedding_bag_weights_module_and_errors():
    psw = arr(8)
    w = leaf(EB_WEIGHT)
    out = F.embedding_bag(cg.tensor(EB_INPUT), w, cg.tensor(EB_OFFSETS), mode="sum",
                          per_sample_weights=cg.from_numpy(psw))
    close(out, _bags_ref("sum", psw=psw))
    assert gradcheck(lambda t, p: F.embedding_bag(cg.tensor(EB_INPUT), t,
                                                  cg.tensor(EB_OFFSETS), mode="sum",
                                                  per_sample_weights=p), (w, leaf(psw)))
    bag = nn.EmbeddingBag(10, 3, mode="max", padding_idx=2)
    assert repr(bag) == "EmbeddingBag(10, 3, mode='max', padding_idx=2)"
    assert (bag.weight[2].detach().numpy() == 0).all() and list(bag.state_dict()) == ["weight"]
    assert bag(cg.tensor(EB_INPUT), cg.tensor(EB_OFFSETS)).shape == (4, 3)
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(cg.tensor(EB_INPUT), w, cg.tensor(EB_OFFSETS),
                        per_sample_weights=cg.from_numpy(psw))
    with pytest.raises(ValueError, match="offsets has to be None"):
        F.embedding_bag(cg.tensor(EB_INPUT.reshape(2, 4)), w, cg.tensor(EB_OFFSETS))
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max"):
        F.embedding_bag(cg.tensor(EB_INPUT), w, cg.tensor(EB_OFFSETS), mode="min")
    with pytest.raises(RuntimeError, match="got 1"):
        F.embedding_bag(cg.tensor(EB_INPUT), w, cg.tensor([1, 3]))


def test_pads():
    x = arr(2, 3, 4)
    close(nn.ReflectionPad1d((2, 1))(cg.from_numpy(x)), np.pad(x, [(0, 0), (0, 0), (2, 1)],
                                                                mode="reflect"))
    close(nn.ReplicationPad1d(2)(cg.from_numpy(x)), np.pad(x, [(0, 0), (0, 0), (2, 2)],
                                                           mode="edge"))
    close(nn.ReplicationPad2d((1, 0, 2, 1))(cg.from_numpy(x)),
          np.pad(x, [(0, 0), (2, 1), (1, 0)], mode="edge"))
    close(nn.ReflectionPad2d(1)(cg.from_numpy(x)), np.pad(x, [(0, 0), (1, 1), (1, 1)],
                                                          mode="reflect"))
    close(nn.ConstantPad1d((1, 2), 3.5)(cg.from_numpy(x)),
          np.pad(x, [(0, 0), (0, 0), (1, 2)], constant_values=3.5))
    close(nn.ConstantPad2d(1, -1.0)(cg.from_numpy(x)),
          np.pad(x, [(0, 0), (1, 1), (1, 1)], constant_values=-1))
    close(nn.ZeroPad1d(1)(cg.from_numpy(x)), np.pad(x, [(0, 0), (0, 0), (1, 1)]))
    assert gradcheck(nn.ReflectionPad2d((1, 2, 0, 1)), (leaf(x),))
    assert repr(nn.ConstantPad1d(2, 3.5)) == "ConstantPad1d(padding=(2, 2), value=3.5)"
    assert repr(nn.ZeroPad2d(1)) == "ZeroPad2d((1, 1, 1, 1))"
    with pytest.raises(ValueError, match=r"4-tuple, got \(1, 2\)"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(ValueError, match="expected 2D or 3D input, got 4D"):
        nn.ReflectionPad1d(1)(cg.zeros(1, 1, 2, 3))


def test_modules_forward():
    cg.manual_seed(0)

    def f32(a):
        return cg.from_numpy(a).float()

    x1 = f32(arr(2, 4, 6))
    m = nn.ConvTranspose1d(4, 3, 3, stride=2)
    close(m(x1), F.conv_transpose1d(x1, m.weight, m.bias, 2).detach().numpy())
    assert m(x1, output_size=[14]).shape == (2, 3, 14)
    c3 = nn.Conv3d(2, 4, 3, padding=1, padding_mode="replicate")
    assert c3(cg.randn(1, 2, 3, 4, 5)).shape == (1, 4, 3, 4, 5)
    ct3 = nn.ConvTranspose3d(2, 4, 2, stride=2)
    assert ct3(cg.randn(1, 2, 2, 3, 1)).shape == (1, 4, 4, 6, 2)
    bn = nn.BatchNorm3d(2)
    x5 = f32(arr(3, 2, 2, 3, 2))
    ref = x5.numpy()
    mu, var = ref.mean((0, 2, 3, 4), keepdims=True), ref.var((0, 2, 3, 4), keepdims=True)
    close(bn(x5), (ref - mu) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="expected 5D input"):
        bn(cg.zeros(2, 2, 3))
    x = f32(arr(1, 2, 8, low=0.1))
    close(nn.AdaptiveAvgPool1d(4)(x), x.numpy().reshape(1, 2, 4, 2).mean(-1))
    vals, idx = nn.AdaptiveMaxPool1d(2, return_indices=True)(x)
    np.testing.assert_array_equal(idx.numpy(), x.numpy().reshape(1, 2, 2, 4).argmax(-1)
                                  + [0, 4])
    close(nn.LPPool1d(2, 4)(x), np.sqrt((x.numpy().reshape(1, 2, 2, 4) ** 2).sum(-1)))
    close(nn.ChannelShuffle(2)(f32(np.arange(4.0).reshape(1, 4, 1))),
          np.array([0.0, 2, 1, 3]).reshape(1, 4, 1))
    img = f32(arr(1, 2, 3, 3))
    close(nn.UpsamplingNearest2d(scale_factor=2)(img),
          img.numpy().repeat(2, 2).repeat(2, 3))
    close(nn.UpsamplingBilinear2d(size=5)(img),
          F.interpolate(img, size=5, mode="bilinear", align_corners=True).numpy())
    cols = nn.Unfold(2)(img)
    close(nn.Fold(3, 2)(cols), F.fold(cols, 3, 2).numpy())


def test_lazy_linear_and_bilinear():
    lazy = nn.LazyLinear(3)
    weight = lazy.weight
    assert repr(lazy) == "LazyLinear(in_features=0, out_features=3, bias=True)"
    y = lazy(cg.randn(2, 5))
    assert type(lazy) is nn.Linear and lazy.in_features == 5 and y.shape == (2, 3)
    assert lazy.weight is weight and weight.shape == (3, 5)  # materialized in place
    bound = 1 / math.sqrt(5)
    assert (np.abs(weight.detach().numpy()) <= bound).all()
    other = nn.LazyLinear(3, bias=False)
    other.load_state_dict({"weight": cg.ones(3, 4)})
    assert other.weight.shape == (3, 4) and other.in_features == 4
    bil = nn.Bilinear(4, 5, 6)
    assert repr(bil) == "Bilinear(in1_features=4, in2_features=5, out_features=6, bias=True)"
    assert list(bil.state_dict()) == ["weight", "bias"] and bil.weight.shape == (6, 4, 5)
    assert (np.abs(bil.weight.detach().numpy()) <= 0.5).all()
    a, b = arr(3, 4), arr(3, 5)
    close(bil(cg.from_numpy(a).float(), cg.from_numpy(b).float()),
          np.einsum("ni,oij,nj->no", a, bil.weight.detach().numpy(), b)
          + bil.bias.detach().numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="input1 size does not match weight size: got 3"):
        bil(cg.zeros(2, 3), cg.zeros(2, 5))
    # integer operands keep their dtype (the inner sum does not widen to int64)
    rng = np.random.default_rng(5)
    ints = [rng.integers(0, 4, s) for s in ((3, 4), (3, 5), (2, 4, 5), (2,))]
    for dt in (cg.int32, cg.uint8):
        got = F.bilinear(*[cg.tensor(v, dtype=dt) for v in ints])
        assert got.dtype == dt
        np.testing.assert_array_equal(
            got.numpy(), np.einsum("ni,oij,nj->no", ints[0], ints[2], ints[1]) + ints[3])


def test_reprs_and_state_dicts_match_torch():
    T = torch_or_skip()
    for spec in ["ConvTranspose1d(2, 3, 3, stride=2)", "Conv3d(2, 4, (1, 2, 3), stride=2, "
                 "padding=1, groups=2, bias=False)", "ConvTranspose3d(2, 4, 3, stride=2, "
                 "output_padding=1)", "BatchNorm3d(3)", "AdaptiveAvgPool1d(3)",
                 "AdaptiveMaxPool1d(3)", "ReflectionPad2d(1)", "ReplicationPad1d((1, 2))",
                 "ConstantPad2d(1, 2.0)", "Fold(4, 2)", "Unfold(2)",
                 "UpsamplingNearest2d(scale_factor=2)", "UpsamplingBilinear2d(size=3)",
                 "LazyLinear(5)", "Bilinear(2, 3, 4)", "EmbeddingBag(10, 3)",
                 "ChannelShuffle(2)", "LPPool2d(2, 3)", "LPPool1d(1.5, 3, 2)", "SELU()",
                 "CELU()", "Hardshrink()", "Softshrink(0.3)", "Tanhshrink()",
                 "AlphaDropout(0.2)", "LocalResponseNorm(3)", "PairwiseDistance()",
                 "TripletMarginLoss()", "MultiMarginLoss()", "CTCLoss()", "GaussianNLLLoss()",
                 "PoissonNLLLoss()", "MarginRankingLoss()", "CosineEmbeddingLoss()",
                 "HingeEmbeddingLoss()", "SoftMarginLoss()", "MultiLabelSoftMarginLoss()"]:
        ours, theirs = eval("nn." + spec), eval("T.nn." + spec, {"T": T})
        assert repr(ours) == repr(theirs), spec
        assert list(ours.state_dict()) == list(theirs.state_dict()), spec
        assert getattr(nn.modules, type(ours).__name__) is type(ours)
