"""The fused normalizations (clgraph/ops/norm.py, kernels/norm.cl): layer_norm and rms_norm
forward and backward against float64 numpy on rows of 1 to 2^20 elements, every dtype,
strided inputs, empty batches and missing affine parameters; gradients by finite
differences (gradcheck, gradgradcheck through the composed create_graph path); compiled
calls, autocast and PyTorch where it is installed. Every test runs on the CPU kernels and
on the GPU ones (CLGRAPH_KERNELS=gpu)."""

from __future__ import annotations

import numpy as np
import pytest

import clgraph as cg
import clgraph.nn.functional as F
from clgraph import nn
from clgraph.autograd import gradcheck, gradgradcheck
from clgraph.ops import norm

TOL = {cg.float32: 2e-5, cg.float64: 1e-12, cg.float16: 2e-3, cg.bfloat16: 2e-2}


@pytest.fixture(autouse=True)
def variant(kernel_variant):
    """Every test on the CPU kernels and on the GPU ones (conftest)."""
    return kernel_variant


def _data(shape, seed=0, offset=0.0):
    rng = np.random.default_rng(seed + sum(shape))
    return rng.standard_normal(shape) * 2 + offset


def _ref(x, k, w=None, b=None, eps=1e-5, rms=False):
    """(y, mean, rstd) in float64."""
    dims = tuple(range(x.ndim - k, x.ndim))
    mean = 0.0 if rms else x.mean(axis=dims, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(axis=dims, keepdims=True) + eps)
    y = (x - mean) * rstd
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y, mean, rstd


def _ref_grads(x, k, g, w=None, eps=1e-5, rms=False):
    """(dx, dw, db) in float64."""
    dims = tuple(range(x.ndim - k, x.ndim))
    lead = tuple(range(x.ndim - k))
    _, mean, rstd = _ref(x, k, eps=eps, rms=rms)
    xh = (x - mean) * rstd
    gw = g if w is None else g * w
    inner = gw - xh * (gw * xh).mean(axis=dims, keepdims=True)
    if not rms:
        inner = inner - gw.mean(axis=dims, keepdims=True)
    return rstd * inner, (g * xh).sum(axis=lead), g.sum(axis=lead)


def _to(a, dtype):
    return cg.from_numpy(np.ascontiguousarray(a)).to(dtype)


def _host(t):
    return t.detach().double().numpy()


def _close(got, want, dtype, what, scale=1.0):
    tol = TOL[dtype] * scale
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


ROWS = [((3, 1), 1), ((5, 7), 1), ((4, 33), 1), ((2, 4097), 1), ((2, 3, 11), 2),
        ((2, 3, 5, 7), 1)]


@pytest.mark.parametrize("dtype", [cg.float32, cg.float64, cg.float16, cg.bfloat16],
                         ids=str)
@pytest.mark.parametrize("shape,k", ROWS, ids=str)
@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_forward_and_backward_against_numpy(shape, k, dtype, rms):
    x64 = _data(shape, offset=3.0)
    ns = shape[len(shape) - k:]
    w64, b64 = _data(ns, 1), _data(ns, 2)
    if dtype in (cg.float16, cg.bfloat16):  # the reference sees the rounded operands
        x64, w64, b64 = (_host(_to(a, dtype)) for a in (x64, w64, b64))
    x, w, b = (_to(a, dtype).requires_grad_() for a in (x64, w64, b64))
    if rms:
        y = F.rms_norm(x, ns, w, eps=1e-5)
        want = _ref(x64, k, w64, eps=1e-5, rms=True)[0]
    else:
        y = F.layer_norm(x, ns, w, b)
        want = _ref(x64, k, w64, b64)[0]
    assert y.dtype is dtype and tuple(y.shape) == shape
    # a bfloat16 output rounds at 2^-8 relative to values up to ~8
    _close(_host(y), want, dtype, "forward", 8.0 if dtype is cg.bfloat16 else 1.0)
    g64 = _data(shape, 3)
    if dtype in (cg.float16, cg.bfloat16):
        g64 = _host(_to(g64, dtype))
    y.backward(_to(g64, dtype))
    dx, dw, db = _ref_grads(x64, k, g64, w64, rms=rms)
    n = int(np.prod(ns))
    scale = 4.0 if dtype in (cg.float16, cg.bfloat16) else 1.0
    _close(_host(x.grad), dx, dtype, "dx", scale * 8)
    _close(_host(w.grad), dw, dtype, "dweight", scale * max(1, x64.size // n) ** 0.5 * 4)
    if not rms:
        _close(_host(b.grad), db, dtype, "dbias", scale * max(1, x64.size // n) ** 0.5 * 4)
        assert b.grad.dtype is dtype
    assert x.grad.dtype is dtype and w.grad.dtype is dtype


@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_rows_of_a_million_elements(rms):
    shape = (2, 1 << 20)
    x64 = _data(shape, offset=5.0)
    w64 = _data(shape[1:], 1)
    x, w = (_to(a, cg.float32).requires_grad_() for a in (x64, w64))
    y = F.rms_norm(x, shape[1:], w, 1e-5) if rms else F.layer_norm(x, shape[1:], w)
    _close(_host(y), _ref(x64, 1, w64, rms=rms)[0], cg.float32, "forward", 10)
    g64 = _data(shape, 3)
    y.backward(_to(g64, cg.float32))
    dx, dw, _ = _ref_grads(x64, 1, g64, w64, rms=rms)
    _close(_host(x.grad), dx, cg.float32, "dx", 10)
    _close(_host(w.grad), dw, cg.float32, "dweight", 10)


def test_statistics_are_saved_in_float32():
    for dtype in (cg.float16, cg.bfloat16, cg.float32):
        x = _to(_data((4, 9)), dtype)
        _, mean, rstd = cg.ops.registry.apply(norm.LAYER_NORM, x, k=1, eps=1e-5,
                                             weight=False, bias=False)
        assert mean.dtype is cg.float32 and rstd.dtype is cg.float32
        assert tuple(mean.shape) == (4, 1)
        _, m, r = _ref(_host(x), 1)
        np.testing.assert_allclose(mean.numpy(), m, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(rstd.numpy(), r, rtol=1e-4)
    _, mean, rstd = cg.ops.registry.apply(norm.LAYER_NORM, _to(_data((3, 5)), cg.float64), k=1,
                                          eps=1e-5, weight=False, bias=False)
    assert mean.dtype is cg.float64


@pytest.mark.parametrize("layout", ["transposed", "sliced", "expanded", "lead_strided"])
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
def test_strided_inputs_and_optional_affine(layout, affine):
    base = _data((6, 10, 12))
    xt = cg.from_numpy(base)
    if layout == "transposed":
        x, x64 = xt.transpose(1, 2), base.transpose(0, 2, 1)
    elif layout == "sliced":
        x, x64 = xt[:, ::2, 1:], base[:, ::2, 1:]
    elif layout == "expanded":
        x, x64 = xt[:1, :1].expand(3, 10, 12), np.broadcast_to(base[:1, :1], (3, 10, 12))
    else:
        x, x64 = xt[::2], base[::2]
    x = x.detach().requires_grad_()
    n = x.shape[-1]
    w64, b64 = _data((n,), 1), _data((n,), 2)
    w = cg.from_numpy(w64).requires_grad_() if affine in ("weight", "both") else None
    b = cg.from_numpy(b64).requires_grad_() if affine in ("bias", "both") else None
    y = F.layer_norm(x, (n,), w, b, eps=1e-3)
    want = _ref(x64, 1, None if w is None else w64, None if b is None else b64, eps=1e-3)[0]
    _close(_host(y), want, cg.float64, "forward")
    g = _data(tuple(x.shape), 4)
    # a gradient that arrives strided too
    gt = cg.from_numpy(np.ascontiguousarray(np.swapaxes(g, 0, 1))).transpose(0, 1)
    y.backward(gt)
    dx, dw, db = _ref_grads(np.asarray(x64), 1, g, None if w is None else w64, eps=1e-3)
    _close(_host(x.grad), dx, cg.float64, "dx")
    if w is not None:
        _close(_host(w.grad), dw, cg.float64, "dweight")
    if b is not None:
        _close(_host(b.grad), db, cg.float64, "dbias")


def test_empty_batches_and_eps():
    x = cg.zeros(0, 5, requires_grad=True)
    w = cg.ones(5, requires_grad=True)
    b = cg.zeros(5, requires_grad=True)
    y = F.layer_norm(x, (5,), w, b)
    assert tuple(y.shape) == (0, 5)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 5)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(5, np.float32))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(5, np.float32))
    assert tuple(F.rms_norm(cg.zeros(2, 0, 3), (3,)).shape) == (2, 0, 3)
    # a large eps shows in the result; a constant row normalizes to zero
    x64 = _data((3, 8))
    for eps in (1e-5, 0.5, 10.0):
        got = F.layer_norm(cg.from_numpy(x64), (8,), eps=eps)
        _close(got.numpy(), _ref(x64, 1, eps=eps)[0], cg.float64, f"eps={eps}")
    np.testing.assert_array_equal(F.layer_norm(cg.full((2, 6), 3.0), (6,)).numpy(), 0.0)


def test_rms_norm_default_eps_and_module():
    x64 = _data((4, 6)) * 1e-4
    for dtype, eps in ((cg.float32, np.finfo(np.float32).eps), (cg.float64,
                                                                 np.finfo(np.float64).eps)):
        got = F.rms_norm(_to(x64, dtype), (6,))
        _close(_host(got), _ref(x64, 1, eps=eps, rms=True)[0], dtype, str(dtype), 10)
    m = nn.RMSNorm(6)
    assert repr(m) == "RMSNorm((6,), eps=None, elementwise_affine=True)"
    assert list(m.state_dict()) == ["weight"]
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.ones(6, np.float32))
    assert list(nn.RMSNorm([2, 3], elementwise_affine=False).state_dict()) == []
    m = nn.RMSNorm((2, 3), eps=1e-3).double()
    x = cg.from_numpy(_data((4, 2, 3)))
    _close(m(x).detach().numpy(), _ref(x.numpy(), 2, eps=1e-3, rms=True)[0], cg.float64,
           "module")
    assert nn.modules.RMSNorm is nn.RMSNorm


def test_errors_name_the_values():
    x = cg.ones(2, 5)
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\].*\[2, 5\]"):
        F.layer_norm(x, (4,))
    with pytest.raises(RuntimeError, match=r"weight of shape \[4\] and normalized_shape = \[5\]"):
        F.layer_norm(x, (5,), cg.ones(4))
    with pytest.raises(RuntimeError, match=r"bias of shape \[5, 1\]"):
        F.layer_norm(x, (5,), None, cg.ones(5, 1))
    with pytest.raises(RuntimeError, match="at least 1-dimensional"):
        F.layer_norm(x, ())
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        F.layer_norm(cg.ones(2, 5, dtype=cg.int64), (5,))
    with pytest.raises(RuntimeError, match="normalized_shape=\\[3\\]"):
        F.rms_norm(x, 3)
    with pytest.raises(TypeError, match="must be Tensor, not list"):
        F.layer_norm([1.0, 2.0], (2,))


@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_gradcheck_and_second_order(rms):
    x = cg.from_numpy(_data((3, 2, 4))).requires_grad_()
    w = cg.from_numpy(_data((2, 4), 1)).requires_grad_()
    b = cg.from_numpy(_data((2, 4), 2)).requires_grad_()
    if rms:
        def fn(x, w, b):
            return F.rms_norm(x, (2, 4), w, 1e-3) + b
    else:
        def fn(x, w, b):
            return F.layer_norm(x, (2, 4), w, b, 1e-3)
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))
    assert gradcheck(lambda t: F.layer_norm(t, (4,)), (x.detach()[:, 0].requires_grad_(),))


def test_group_norm_through_the_fused_rows():
    x = cg.from_numpy(_data((2, 4, 3, 5))).requires_grad_()
    w = cg.from_numpy(_data((4,), 1)).requires_grad_()
    b = cg.from_numpy(_data((4,), 2)).requires_grad_()
    assert gradcheck(lambda t, w_, b_: F.group_norm(t, 2, w_, b_, 1e-3), (x, w, b))
    y = F.group_norm(x, 2, w, b)
    x64 = x.detach().numpy().reshape(2, 2, -1)
    want = _ref(x64, 1)[0].reshape(2, 4, 3, 5) * w.detach().numpy()[:, None, None] \
        + b.detach().numpy()[:, None, None]
    _close(y.detach().numpy(), want, cg.float64, "group_norm")


def test_compiled_forward_is_one_kernel_and_training_matches(variant):
    m = nn.LayerNorm(64)
    with cg.no_grad():
        m.weight.copy_(cg.from_numpy(_data((64,), 1).astype(np.float32)))
        m.bias.copy_(cg.from_numpy(_data((64,), 2).astype(np.float32)))
    x = _to(_data((32, 64)), cg.float32)
    with cg.no_grad():
        f = cg.compile(m)
        f(x)
        with cg.profile() as p:
            got = f(x)
    assert p.launches == 1, p.kernels
    _close(got.numpy(), m(x).detach().numpy(), cg.float32, "compiled")
    # with parameters that require grad the compiled call adds the one fill it adds after
    # any row (softmax's too), for its backward
    f = cg.compile(m)
    f(x)
    with cg.profile() as p:
        f(x)
    assert p.launches <= 2 and p.kernels[0] == "layer_norm", p.kernels

    def step(x, w, b):
        y = F.layer_norm(F.layer_norm(x * w, (64,)), (64,), w, b) * x
        y.sum().backward()
        return y

    # a training step: the weights' gradients (the product makes dx matter too)
    w = cg.from_numpy(_data((64,), 1).astype(np.float32)).requires_grad_()
    b = cg.from_numpy(_data((64,), 2).astype(np.float32)).requires_grad_()
    step_c = cg.compile(step)
    for i in range(3):
        xs = _to(_data((32, 64), seed=10 + i), cg.float32)
        w.grad = b.grad = None
        step_c(xs, w, b)
        gw, gb = w.grad.numpy().copy(), b.grad.numpy().copy()
        w.grad = b.grad = None
        step(xs, w, b)
        _close(gw, w.grad.numpy(), cg.float32, "compiled dweight", 10)
        _close(gb, b.grad.numpy(), cg.float32, "compiled dbias", 10)


def test_autocast_runs_in_float32():
    x = cg.from_numpy(_data((4, 8)).astype(np.float32)).requires_grad_()
    w = cg.from_numpy(_data((8,), 1).astype(np.float32)).requires_grad_()
    with cg.autocast("cl"):
        h = x @ cg.eye(8)  # float16
        assert h.dtype is cg.float16
        y = F.layer_norm(h, (8,), w)
        r = F.rms_norm(h, (8,), w)
    assert y.dtype is cg.float32 and r.dtype is cg.float32
    want = _ref(_host(h), 1, w.detach().numpy().astype(np.float64))[0]
    _close(y.detach().numpy(), want, cg.float32, "autocast", 10)
    (y.sum() + r.sum()).backward()
    assert w.grad.dtype is cg.float32 and x.grad.dtype is cg.float32


def test_module_layer_norm_half_and_bfloat16_parameters():
    for dtype in (cg.float16, cg.bfloat16):
        m = nn.LayerNorm(16).to(dtype)
        x = _to(_data((5, 16)), dtype).requires_grad_()
        y = m(x)
        assert y.dtype is dtype
        y.float().sum().backward()
        assert m.weight.grad.dtype is dtype and x.grad.dtype is dtype


def test_against_torch():
    torch = pytest.importorskip("torch")
    x64 = _data((6, 3, 40), offset=1.0)
    w64, b64 = _data((3, 40), 1), _data((3, 40), 2)
    g64 = _data((6, 3, 40), 3)
    for rms in (False, True):
        tx, tw, tb = (torch.tensor(a, dtype=torch.float32, requires_grad=True)
                      for a in (x64, w64, b64))
        cx, cw, cb = (_to(a, cg.float32).requires_grad_() for a in (x64, w64, b64))
        if rms:
            ty = torch.nn.functional.rms_norm(tx, (3, 40), tw, eps=1e-6)
            cy = F.rms_norm(cx, (3, 40), cw, eps=1e-6)
        else:
            ty = torch.nn.functional.layer_norm(tx, (3, 40), tw, tb)
            cy = F.layer_norm(cx, (3, 40), cw, cb)
        ty.backward(torch.tensor(g64, dtype=torch.float32))
        cy.backward(_to(g64, cg.float32))
        pairs = [(cy, ty), (cx.grad, tx.grad), (cw.grad, tw.grad)]
        if not rms:
            pairs.append((cb.grad, tb.grad))
        for c, t in pairs:
            np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-4,
                                       atol=1e-4)
        assert torch.nn.RMSNorm(4).extra_repr() == nn.RMSNorm(4).extra_repr()
