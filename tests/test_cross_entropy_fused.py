"""The fused cross entropy (clgraph/ops/loss.py, kernels/loss.cl): loss and logits' gradient
against float64 numpy on rows of 1 to 4097 classes, batches of 0 to 300 rows, every
reduction, class weights, ignore_index (every row ignored too), label smoothing, K-dim and
unbatched inputs, strided logits and 16-bit dtypes; gradients by finite differences
(gradcheck, gradgradcheck through the composed create_graph path); out-of-range targets;
compiled training steps, autocast, ONNX and PyTorch where installed. Every test runs on the
CPU kernels and on the GPU ones (CLGRAPH_KERNELS=gpu)."""

from __future__ import annotations

import numpy as np
import pytest

import clgraph as cg
import clgraph.nn.functional as F
from clgraph import nn
from clgraph.autograd import gradcheck, gradgradcheck
from clgraph.ops import loss as L
from clgraph.ops.registry import apply

TOL = {cg.float32: 2e-5, cg.float64: 1e-12, cg.float16: 2e-3, cg.bfloat16: 2e-2}


@pytest.fixture(autouse=True)
def variant(kernel_variant):
    """Every test on the CPU kernels and on the GPU ones (conftest)."""
    return kernel_variant


def _ref(x, t, w=None, ignore=-100, eps=0.0, reduction="mean", g=None):
    """(loss, dx) in float64 for (N, C) logits, PyTorch's formulas; ``g`` the loss's
    gradient (ones)."""
    N, C = x.shape
    m = x.max(axis=1, keepdims=True) if C else np.zeros((N, 1))
    lse = m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    logp = x - lse
    cw = np.ones(C) if w is None else w
    valid = t != ignore
    safe = np.where(valid, t, 0)
    wt = np.where(valid, cw[safe], 0.0)
    rows = np.arange(N)
    loss = (1 - eps) * -logp[rows, safe] * wt + eps / C * np.where(
        valid, -(logp * cw).sum(axis=1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = wt.sum() if reduction == "mean" else 1.0
        out = loss if reduction == "none" else loss.sum() / denom
        g = np.ones(np.shape(out)) if g is None else g
        gs = (g if reduction == "none" else np.full(N, g / denom)) * valid
    hot = np.zeros((N, C))
    hot[rows, safe] = 1
    p = np.exp(logp)
    dx = gs[:, None] * ((1 - eps) * wt[:, None] * (p - hot)
                        + eps / C * (cw.sum() * p - cw[None, :]))
    return out, dx


def _data(shape, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    return rng.standard_normal(shape) * 3


def _targets(N, C, seed=0, ignore=None):
    rng = np.random.default_rng(seed + N + C)
    t = rng.integers(0, C, N)
    if ignore is not None and N > 1:
        t[1::3] = ignore
    return t


def _host(t):
    return t.detach().double().numpy()


def _close(got, want, dtype, what, scale=1.0):
    tol = TOL[dtype] * scale
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


# (weight, ignore_index, label_smoothing)
OPTIONS = [(False, None, 0.0), (True, None, 0.0), (False, -100, 0.1), (True, 3, 0.3)]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("N", [1, 5, 300])
@pytest.mark.parametrize("C", [1, 7, 33, 4097])
def test_against_numpy(C, N, reduction):
    x64 = _data((N, C))
    for weighted, ignore, eps in OPTIONS:
        w64 = np.random.default_rng(C).uniform(0.5, 2.0, C) if weighted else None
        ig = -100 if ignore is None else ignore
        t = _targets(N, C, ignore=ignore)
        x = cg.from_numpy(x64.astype(np.float32)).requires_grad_()
        w = cg.from_numpy(w64.astype(np.float32)) if weighted else None
        out = F.cross_entropy(x, cg.from_numpy(t), w, ignore_index=ig, reduction=reduction,
                              label_smoothing=eps)
        g64 = _data((N,), 1) if reduction == "none" else np.float64(0.7)
        want, dx = _ref(x64, t, w64, ig, eps, reduction, g64)
        what = f"C={C} N={N} {reduction} weight={weighted} ignore={ignore} eps={eps}"
        assert out.dtype is cg.float32 and tuple(out.shape) == np.shape(want), what
        _close(_host(out), want, cg.float32, what, 10)
        out.backward(cg.from_numpy(np.asarray(g64, np.float32)))
        _close(_host(x.grad), dx, cg.float32, what + " dx", 10)


def test_logsumexp_and_denominator_are_saved():
    x64, t = _data((6, 9)), _targets(6, 9, ignore=-100)
    for dtype in (cg.float32, cg.float16, cg.bfloat16, cg.float64):
        x = cg.from_numpy(x64).to(dtype)
        loss, stats = apply(L.CROSS_ENTROPY, x, cg.from_numpy(t), reduction="mean",
                            ignore_index=-100, label_smoothing=0.0, weight=False)
        acc = cg.float64 if dtype is cg.float64 else cg.float32
        assert stats.dtype is acc and tuple(stats.shape) == (7,) and loss.dtype is dtype
        xr = _host(x)
        lse = np.log(np.exp(xr).sum(1))
        np.testing.assert_allclose(_host(stats), np.append(lse, (t != -100).sum()),
                                   rtol=1e-5)


def test_empty_batch_and_every_row_ignored():
    for reduction, want in (("mean", np.nan), ("sum", 0.0)):
        x = cg.zeros(0, 4, requires_grad=True)
        out = F.cross_entropy(x, cg.zeros(0, dtype=cg.int64), reduction=reduction)
        np.testing.assert_array_equal(out.item(), want)
        out.backward()
        assert tuple(x.grad.shape) == (0, 4)
    out = F.cross_entropy(cg.zeros(0, 4), cg.zeros(0, dtype=cg.int64), reduction="none")
    assert tuple(out.shape) == (0,)
    # every row ignored: the mean is 0 / 0 (NaN, as PyTorch), the gradient zeros
    x = cg.from_numpy(_data((3, 5))).requires_grad_()
    t = cg.tensor([-100, -100, -100])
    for w in (None, cg.ones(5, dtype=cg.float64)):
        for eps in (0.0, 0.2):
            x.grad = None
            out = F.cross_entropy(x, t, w, label_smoothing=eps)
            assert np.isnan(out.item())
            out.backward()
            np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0
    np.testing.assert_array_equal(_host(F.cross_entropy(x, t, reduction="none")), 0.0)


def test_k_dim_and_unbatched_inputs():
    x64 = _data((2, 5, 3, 4))
    t = np.random.default_rng(0).integers(0, 5, (2, 3, 4))
    t[0, 1] = -100
    w64 = np.linspace(0.5, 2.0, 5)
    flat = np.moveaxis(x64, 1, -1).reshape(-1, 5)
    for reduction in ("mean", "sum", "none"):
        x = cg.from_numpy(x64).requires_grad_()
        out = F.cross_entropy(x, cg.from_numpy(t), cg.from_numpy(w64), reduction=reduction,
                              label_smoothing=0.1)
        want, dx = _ref(flat, t.reshape(-1), w64, eps=0.1, reduction=reduction)
        if reduction == "none":
            want = want.reshape(2, 3, 4)
        assert tuple(out.shape) == np.shape(want)
        _close(out.detach().numpy(), want, cg.float64, reduction)
        out.sum().backward()
        _close(x.grad.numpy(), np.moveaxis(dx.reshape(2, 3, 4, 5), -1, 1), cg.float64,
               reduction + " dx")
    x = cg.from_numpy(x64[0, :, 0, 0]).requires_grad_()
    out = F.cross_entropy(x, cg.tensor(2), reduction="none")
    want, dx = _ref(x64[0, :, 0, 0][None], np.array([2]), reduction="none")
    assert tuple(out.shape) == ()
    _close(out.item(), want[0], cg.float64, "unbatched")
    out.backward()
    _close(x.grad.numpy(), dx[0], cg.float64, "unbatched dx")


@pytest.mark.parametrize("layout", ["transposed", "sliced_classes", "sliced_rows"])
def test_strided_logits(layout):
    base = _data((40, 40))
    xt = cg.from_numpy(base)
    if layout == "transposed":
        x, x64 = xt.t(), base.T
    elif layout == "sliced_classes":
        x, x64 = xt[:, 1::3], base[:, 1::3]
    else:
        x, x64 = xt[::3, 2:], base[::3, 2:]
    x = x.detach().requires_grad_()
    t = _targets(*x64.shape, ignore=-100)
    # the targets strided too
    tt = cg.from_numpy(np.repeat(t, 2))[::2]
    out = F.cross_entropy(x, tt, label_smoothing=0.05)
    want, dx = _ref(np.asarray(x64), t, eps=0.05)
    _close(out.item(), want, cg.float64, layout)
    out.backward()
    _close(x.grad.numpy(), dx, cg.float64, layout + " dx")


@pytest.mark.parametrize("dtype", [cg.float16, cg.bfloat16], ids=str)
def test_half_and_bfloat16_logits(dtype):
    x = cg.from_numpy(_data((37, 203))).to(dtype).requires_grad_()
    x64 = _host(x)  # the reference sees the rounded logits
    t = _targets(37, 203, ignore=-100)
    w = cg.from_numpy(np.linspace(0.5, 2.0, 203))  # converted to the logits' dtype
    w64 = _host(w.to(dtype))
    for reduction in ("mean", "none"):
        x.grad = None
        out = F.cross_entropy(x, cg.from_numpy(t), w, reduction=reduction,
                              label_smoothing=0.1)
        assert out.dtype is dtype
        want, dx = _ref(x64, t, w64, eps=0.1, reduction=reduction)
        _close(_host(out), want, dtype, reduction, 8)
        out.float().sum().backward()
        assert x.grad.dtype is dtype
        _close(_host(x.grad), dx, dtype, reduction + " dx", 0.2 if reduction == "mean" else 1)


def test_gradcheck_and_second_order():
    x = cg.from_numpy(_data((4, 6))).requires_grad_()
    t = cg.tensor([1, -100, 5, 0])
    w = cg.from_numpy(np.linspace(0.5, 2.0, 6))
    s = cg.from_numpy(_data((4,), 2)).requires_grad_()
    for reduction in ("mean", "sum"):
        for eps in (0.0, 0.25):
            def fn(x):
                return F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=eps)

            assert gradcheck(fn, (x,))
            assert gradgradcheck(fn, (x,))

    def none(x, s):
        return F.cross_entropy(x, t, w, reduction="none", label_smoothing=0.1) * s

    assert gradcheck(none, (x, s))
    assert gradgradcheck(none, (x, s))
    x3 = cg.from_numpy(_data((2, 3, 4))).requires_grad_()
    assert gradcheck(lambda x: F.cross_entropy(x, cg.tensor([[0, 2, 1, 1], [2, 2, 0, 1]])),
                     (x3,))


def test_out_of_range_targets_raise():
    x = cg.randn(4, 7)
    with pytest.raises(IndexError, match=r"^Target 7 is out of bounds\.$"):
        F.cross_entropy(x, cg.tensor([1, 7, 2, 0]))
    with pytest.raises(IndexError, match=r"Target -3 is out of bounds"):
        F.cross_entropy(x, cg.tensor([1, -3, 2, 0]), ignore_index=-1)
    with pytest.raises(IndexError, match=r"Target -100 is out of bounds"):
        F.cross_entropy(x, cg.tensor([1, -100, 2, 0]), ignore_index=3)
    # an ignore_index beyond the classes is skipped, not checked
    got = F.cross_entropy(x, cg.tensor([1, 9, 2, 0]), ignore_index=9, reduction="none")
    assert got.numpy()[1] == 0.0
    with pytest.raises(RuntimeError, match=r"weight tensor should be defined either for all 7"):
        F.cross_entropy(x, cg.tensor([1, 2, 2, 0]), cg.ones(6))
    with pytest.raises(RuntimeError, match="expected target dtype to be Long"):
        F.cross_entropy(x, cg.tensor([True, False, True, True]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(4\) to match"):
        F.cross_entropy(x, cg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        F.cross_entropy(cg.ones(2, 3, dtype=cg.int64), cg.tensor([1, 2]))
    # int32 and uint8 targets as PyTorch's Byte
    t = cg.tensor([1, 3, 2, 0])
    want = F.cross_entropy(x, t).item()
    assert F.cross_entropy(x, t.to(cg.int32)).item() == want
    assert F.cross_entropy(x, t.to(cg.uint8)).item() == want


def _mlp():
    cg.manual_seed(3)
    return nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 7))


def test_compiled_training_step_equals_eager():
    ma, mb = _mlp(), _mlp()
    oa, ob = (cg.optim.Adam(m.parameters(), lr=1e-2) for m in (ma, mb))
    w = cg.from_numpy(np.linspace(0.5, 1.5, 7).astype(np.float32))

    def step(m, o, x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y, w, label_smoothing=0.1)
        loss.backward()
        o.step()
        return loss

    compiled = cg.compile(lambda x, y: step(mb, ob, x, y))
    rng = np.random.default_rng(0)
    for i in range(5):
        x = cg.from_numpy(rng.standard_normal((16, 12)).astype(np.float32))
        t = rng.integers(0, 7, 16)
        if i >= 2:
            t[::4] = -100  # new targets (ignored rows too) replay the same plan
        y = cg.from_numpy(t)
        la = step(ma, oa, x, y)
        lb = compiled(x, y)
        _close(lb.item(), la.item(), cg.float32, f"loss {i}", 10)
        for pa, pb in zip(ma.parameters(), mb.parameters()):
            _close(pb.detach().numpy(), pa.detach().numpy(), cg.float32, f"param {i}", 10)
    assert any(e.plan is not None for e in compiled._entries.values())
    with cg.profile() as p:
        compiled(x, y)
    assert "cross_entropy" in p.kernels and "cross_entropy_backward" in p.kernels, p.kernels
    # a replay checks each call's targets
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        compiled(x, cg.from_numpy(np.full(16, 7)))


def test_autocast_runs_in_float32():
    x = cg.from_numpy(_data((6, 8)).astype(np.float32)).requires_grad_()
    t = _targets(6, 8)
    with cg.autocast("cl"):
        h = x @ cg.eye(8)
        assert h.dtype is cg.float16
        out = F.cross_entropy(h, cg.from_numpy(t), cg.ones(8), label_smoothing=0.1)
    assert out.dtype is cg.float32
    want, _ = _ref(_host(h), t, eps=0.1)
    _close(out.item(), want, cg.float32, "autocast", 10)
    out.backward()
    assert x.grad.dtype is cg.float32


def test_probability_targets_keep_the_composition():
    x64 = _data((4, 5))
    p = np.random.default_rng(1).dirichlet(np.ones(5), 4)
    x = cg.from_numpy(x64).requires_grad_()
    out = F.cross_entropy(x, cg.from_numpy(p), label_smoothing=0.1)
    q = p * 0.9 + 0.02
    logp = x64 - np.log(np.exp(x64).sum(1, keepdims=True))
    _close(out.item(), -(q * logp).sum() / 4, cg.float64, "probabilities")
    assert gradcheck(lambda x: F.cross_entropy(x, cg.from_numpy(p)), (x,))


def test_onnx_export(variant):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    if variant == "gpu":
        pytest.skip("the export does not depend on the kernels")

    def fn(x, t, w, x4, t4):
        return (F.cross_entropy(x, t, w), F.cross_entropy(x, t, reduction="none"),
                F.cross_entropy(x, t, w, reduction="sum", label_smoothing=0.2),
                F.cross_entropy(x, t, label_smoothing=0.1),
                F.cross_entropy(x4, t4, w, label_smoothing=0.3, reduction="none"),
                F.cross_entropy(x4, t4))

    args = (cg.randn(6, 5), cg.tensor([0, 4, -100, 2, 1, 3]), cg.rand(5) + 0.5,
            cg.randn(2, 5, 3), cg.randint(0, 5, (2, 3)))
    names = [f"in{i}" for i in range(len(args))]
    proto = cg.onnx.export(fn, args, None, input_names=names)
    onnx.checker.check_model(proto, full_check=True)
    assert "SoftmaxCrossEntropyLoss" in {n.op_type for n in proto.graph.node}
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})
    for g, w in zip(got, fn(*args)):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)


def test_against_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    cases = [((300, 33), {}), ((64, 10), {"reduction": "sum", "label_smoothing": 0.1}),
             ((5, 4097), {"weight": True, "label_smoothing": 0.2, "ignore_index": 1}),
             ((7, 7), {"weight": True, "reduction": "none", "ignore_index": 2}),
             ((3, 6), {"weight": True, "ignore_index": 0, "all_ignored": True}),
             ((2, 5, 3, 4), {"weight": True, "label_smoothing": 0.1, "ignore_index": 4})]
    for shape, kw in cases:
        kw = dict(kw)
        x64 = _data(shape)
        C = shape[1]
        tshape = shape[:1] + shape[2:]
        t = np.random.default_rng(0).integers(0, C, tshape)
        if kw.pop("all_ignored", False):
            t[:] = kw["ignore_index"]
        weighted = kw.pop("weight", False)
        w64 = np.linspace(0.5, 2.0, C).astype(np.float32)
        tx = torch.tensor(x64, dtype=torch.float32, requires_grad=True)
        cx = cg.from_numpy(x64.astype(np.float32)).requires_grad_()
        tl = tf.cross_entropy(tx, torch.from_numpy(t), torch.from_numpy(w64) if weighted
                              else None, **kw)
        cl = F.cross_entropy(cx, cg.from_numpy(t), cg.from_numpy(w64) if weighted else None,
                             **kw)
        tl.sum().backward()
        cl.sum().backward()
        what = f"{shape} {kw}"
        np.testing.assert_allclose(cl.detach().numpy(), tl.detach().numpy(), rtol=1e-5,
                                   atol=1e-5, err_msg=what)
        np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=what)


def test_linear_cross_entropy():
    """cross_entropy of linear(input, linear_weight, linear_bias): against the numpy
    reference, the K-dimensional weight's logits (N, C, d_1), gradchecks, options and
    PyTorch's checks (and PyTorch's values where it is installed)."""
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    t, cw = np.array([0, 4, 2, 2, 1, 3]), rng.uniform(0.5, 2.0, 5)
    got = F.linear_cross_entropy(cg.tensor(x), cg.tensor(w), cg.tensor(t),
                                 linear_bias=cg.tensor(b), weight=cg.tensor(cw), ignore_index=2,
                                 reduction="sum")
    ref, _ = _ref(x @ w.T + b, t, cw, ignore=2, reduction="sum")
    np.testing.assert_allclose(got.item(), ref, rtol=1e-12)
    w3, t3 = rng.standard_normal((5, 3, 4)), rng.integers(0, 5, (6, 3))
    logits = np.einsum("nf,cdf->ncd", x, w3)
    per = F.linear_cross_entropy(cg.tensor(x), cg.tensor(w3), cg.tensor(t3), reduction="none")
    ref3, _ = _ref(logits.transpose(0, 2, 1).reshape(-1, 5), t3.reshape(-1), reduction="none")
    np.testing.assert_allclose(per.numpy(), ref3.reshape(6, 3), rtol=1e-12)
    probs = rng.dirichlet(np.ones(5), 6)
    assert gradcheck(lambda a, m, c: F.linear_cross_entropy(a, m, cg.tensor(probs[:3]),
                                                            linear_bias=c, label_smoothing=0.1),
                     (cg.tensor(x[:3]).requires_grad_(), cg.tensor(w).requires_grad_(),
                      cg.tensor(b).requires_grad_()))
    assert gradcheck(lambda a, m: F.linear_cross_entropy(a, m, cg.tensor(t3[:3])),
                     (cg.tensor(x[:3]).requires_grad_(), cg.tensor(w3).requires_grad_()))
    opts = nn.LinearCrossEntropyOptions(batch_chunk_size=2)
    chunked = F.linear_cross_entropy(cg.tensor(x), cg.tensor(w), cg.tensor(t), options=opts)
    plain = F.linear_cross_entropy(cg.tensor(x), cg.tensor(w), cg.tensor(t))
    assert chunked.item() == plain.item()
    with pytest.warns(UserWarning, match="``options`` ignored"):
        F.linear_cross_entropy(cg.tensor(x), cg.tensor(w), cg.tensor(t), options=opts,
                               label_smoothing=0.1)
    with pytest.raises(ValueError, match="batch_chunk_size must be positive"):
        nn.LinearCrossEntropyOptions(batch_chunk_size=0)
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified"):
        F.linear_cross_entropy(cg.tensor(x), cg.tensor(w), cg.tensor(probs), ignore_index=1)
    with pytest.raises(RuntimeError, match="requires batched input"):
        F.linear_cross_entropy(cg.tensor(x[0]), cg.tensor(w3), cg.tensor(t3[0]))
    with pytest.raises(RuntimeError, match=r"expected linear_bias shape \(5, 3\), got \(5,\)"):
        F.linear_cross_entropy(cg.tensor(x), cg.tensor(w3), cg.tensor(t3),
                               linear_bias=cg.tensor(b))
    torch = pytest.importorskip("torch")
    tl = torch.nn.functional.linear_cross_entropy(
        torch.tensor(x), torch.tensor(w3), torch.tensor(probs[:, :, None].repeat(3, 2)),
        label_smoothing=0.2, reduction="none")
    cl = F.linear_cross_entropy(cg.tensor(x), cg.tensor(w3),
                                cg.tensor(probs[:, :, None].repeat(3, 2)),
                                label_smoothing=0.2, reduction="none")
    np.testing.assert_allclose(cl.numpy(), tl.numpy(), rtol=1e-12)
