"""conv2d, unfold/fold and the 2-D pools against direct numpy references (loops over taps and
windows, independent of im2col), every conv row against its registry reference, PyTorch
parity for values and gradients where torch is installed, float64 gradchecks (first and
second order) and PyTorch's error messages."""

from __future__ import annotations

import numpy as np
import pytest

import clgraph as cg
from clgraph.autograd import gradcheck, gradgradcheck
from clgraph.ops import conv
from clgraph.ops.registry import REGISTRY, apply
from conftest import torch_or_skip

TOL = {np.float32: 2e-5, np.float64: 1e-12}


def arr(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(dtype)


def close(got, exp, dtype=np.float64, scale=1.0):
    got = got.detach().numpy() if isinstance(got, cg.Tensor) else got
    assert got.shape == exp.shape, (got.shape, exp.shape)
    tol = TOL[np.dtype(dtype).type] * scale
    np.testing.assert_allclose(got, exp, rtol=tol, atol=tol)


# --- direct numpy references ----------------------------------------------------------------


def ref_conv2d(x, w, b=None, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Sum over kernel taps of channel contractions of strided slices of the padded input."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    (sh, sw), (dh, dw) = stride, dilation
    OH = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    OW = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((N, O, OH, OW))
    Og = O // groups
    for g in range(groups):
        xs, ws = xp[:, g * Cg:(g + 1) * Cg], w[g * Og:(g + 1) * Og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (OH - 1) + 1:sh,
                           j * dw:j * dw + sw * (OW - 1) + 1:sw]
                out[:, g * Og:(g + 1) * Og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    return out if b is None else out + b[None, :, None, None]


def pool_out(n, k, s, p, d, ceil):
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    return o - 1 if ceil and (o - 1) * s >= n + p else o


def ref_max_pool(x, k, s, p, d=(1, 1), ceil=False):
    """Values and PyTorch's flat indices: the first maximum of each window, scanned by rows."""
    H, W = x.shape[-2:]
    OH, OW = (pool_out(n, *a, ceil) for n, a in zip((H, W), zip(k, s, p, d)))
    y = np.full(x.shape[:-2] + (OH, OW), -np.inf)
    idx = np.zeros(y.shape, np.int64)
    for oh in range(OH):
        for ow in range(OW):
            first = True
            for i in range(k[0]):
                for j in range(k[1]):
                    ih, iw = oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1]
                    if not (0 <= ih < H and 0 <= iw < W):
                        continue
                    v = x[..., ih, iw]
                    upd = (v > y[..., oh, ow]) | np.isnan(v) | first
                    y[..., oh, ow] = np.where(upd, v, y[..., oh, ow])
                    idx[..., oh, ow] = np.where(upd, ih * W + iw, idx[..., oh, ow])
                    first = False
    return y, idx


def ref_avg_pool(x, k, s, p, ceil=False, include_pad=True, divisor=None):
    H, W = x.shape[-2:]
    OH, OW = (pool_out(n, *a, 1, ceil) for n, a in zip((H, W), zip(k, s, p)))
    y = np.zeros(x.shape[:-2] + (OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            full = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            total = x[..., h0:h1, w0:w1].sum((-2, -1))
            y[..., oh, ow] = total / (divisor or (full if include_pad else
                                                  (h1 - h0) * (w1 - w0)))
    return y


def ref_adaptive(x, size):
    H, W = x.shape[-2:]
    y = np.zeros(x.shape[:-2] + tuple(size))
    for oh in range(size[0]):
        for ow in range(size[1]):
            h0, h1 = oh * H // size[0], -(-(oh + 1) * H // size[0])
            w0, w1 = ow * W // size[1], -(-(ow + 1) * W // size[1])
            y[..., oh, ow] = x[..., h0:h1, w0:w1].mean((-2, -1))
    return y


def T(a):
    return cg.from_numpy(np.ascontiguousarray(a))


# --- conv2d forward ---------------------------------------------------------------------------

CONV_CASES = [  # x shape, w shape, kwargs, reference pads
    ((2, 3, 8, 8), (4, 3, 3, 3), {}, ((0, 0), (0, 0))),
    ((2, 3, 9, 7), (5, 3, 3, 2), dict(stride=2, padding=1), ((1, 1), (1, 1))),
    ((1, 2, 7, 9), (3, 2, 2, 3), dict(stride=(2, 1), padding=(2, 0), dilation=(1, 2)),
     ((2, 2), (0, 0))),
    ((2, 3, 6, 7), (4, 3, 3, 3), dict(padding="same", dilation=2), ((2, 2), (2, 2))),
    ((2, 3, 6, 7), (4, 3, 4, 2), dict(padding="same"), ((1, 2), (0, 1))),
    ((2, 2, 5, 5), (4, 2, 3, 3), dict(padding="valid"), ((0, 0), (0, 0))),
    ((2, 4, 6, 6), (6, 2, 3, 3), dict(groups=2, padding=1), ((1, 1), (1, 1))),
    ((1, 6, 7, 5), (6, 1, 3, 3), dict(groups=6, stride=2, padding=(1, 2)), ((1, 1), (2, 2))),
    ((1, 6, 5, 5), (12, 1, 1, 1), dict(groups=6), ((0, 0), (0, 0))),  # depthwise multiplier
    ((3, 1, 28, 28), (16, 1, 3, 3), dict(padding=1), ((1, 1), (1, 1))),
    ((2, 3, 1, 9), (2, 3, 1, 4), dict(stride=3), ((0, 0), (0, 0))),
    # 1x1: one GEMM straight into NCHW; with stride or padding, through patches
    ((2, 5, 7, 9), (4, 5, 1, 1), {}, ((0, 0), (0, 0))),
    ((1, 3, 4, 4), (2, 3, 1, 1), dict(stride=2), ((0, 0), (0, 0))),
    ((2, 3, 4, 5), (2, 3, 1, 1), dict(padding=1), ((1, 1), (1, 1))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,ws,kw,pads", CONV_CASES)
def test_conv2d_forward(xs, ws, kw, pads, dtype):
    x, w, b = arr(*xs, dtype=dtype), arr(*ws, seed=1, dtype=dtype), arr(ws[0], seed=2,
                                                                         dtype=dtype)
    args = {k: v for k, v in kw.items() if k != "padding"}
    stride = args.get("stride", 1)
    stride = (stride, stride) if isinstance(stride, int) else stride
    dil = args.get("dilation", 1)
    dil = (dil, dil) if isinstance(dil, int) else dil
    exp = ref_conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride,
                     pads, dil, args.get("groups", 1))
    got = conv.conv2d(T(x), T(w), T(b), **kw)
    assert got.dtype == (cg.float32 if dtype == np.float32 else cg.float64)
    close(got, exp, dtype, scale=ws[1] * ws[2] * ws[3])
    close(conv.conv2d(T(x), T(w), None, **kw), exp - b[None, :, None, None], dtype,
          scale=ws[1] * ws[2] * ws[3])


def test_conv2d_unbatched_batch1_and_views():
    x, w, b = arr(3, 7, 6), arr(4, 3, 3, 3, seed=1), arr(4, seed=2)
    exp = ref_conv2d(x[None], w, b, pads=((1, 1), (1, 1)))
    got = conv.conv2d(T(x), T(w), T(b), padding=1)
    assert got.shape == (4, 7, 6)
    close(got, exp[0])
    close(conv.conv2d(T(x[None]), T(w), T(b), padding=1), exp)
    # a transposed and sliced input and a transposed weight: read through strides
    xt = T(x.transpose(0, 2, 1).copy()).transpose(1, 2)
    wt = T(w.transpose(0, 1, 3, 2).copy()).transpose(2, 3)
    close(conv.conv2d(xt, wt, T(b), padding=1), exp[0])
    xb = T(np.concatenate([x, x], 2)[None])[:, :, :, ::2]
    close(conv.conv2d(xb, T(w)), ref_conv2d(np.concatenate([x, x], 2)[None][..., ::2], w))
    assert cg.conv2d is conv.conv2d


def test_conv2d_bias_in_the_product_kernel():
    """On a CPU device a float32 convolution with a bias is one linear product (the bias
    added as it is stored) and the layout change: no separate add; values and gradients as
    the reference's."""
    x, w, b = arr(3, 4, 9, 8), arr(6, 4, 3, 3), arr(6)
    xt, wt, bt = (T(a.astype(np.float32)).requires_grad_() for a in (x, w, b))
    with cg.profile() as prof:
        y = conv.conv2d(xt, wt, bt, padding=1)
    if xt.device.info.is_cpu:
        assert [f for f in prof.functions if "add" in f] == []
    close(y, ref_conv2d(x, w, b, pads=((1, 1), (1, 1))), np.float32)
    y.sum().backward()
    close(bt.grad, np.full(6, 3 * 9 * 8.0), np.float32)


def test_conv2d_empty_and_zero_channels():
    w = arr(4, 3, 3, 3)
    assert conv.conv2d(T(arr(0, 3, 5, 5)), T(w)).shape == (0, 4, 3, 3)
    got = conv.conv2d(T(arr(2, 0, 5, 5)), T(arr(4, 0, 3, 3)), T(arr(4, seed=1)))
    close(got, np.broadcast_to(arr(4, seed=1)[None, :, None, None], (2, 4, 3, 3)))


def test_conv2d_half():
    x, w = arr(2, 3, 6, 6, dtype=np.float32), arr(4, 3, 3, 3, seed=1, dtype=np.float32)
    got = conv.conv2d(T(x).half(), T(w).half(), padding=1)
    assert got.dtype == cg.float16
    np.testing.assert_allclose(got.float().numpy(), ref_conv2d(x, w, pads=((1, 1), (1, 1))),
                               atol=3e-2, rtol=1e-2)
    # gradients through conv and the pools in half against float64
    grads = []
    for d in (cg.float16, cg.float64):
        xt, wt = T(x).to(d).requires_grad_(), T(w).to(d).requires_grad_()
        h = conv.max_pool2d(conv.conv2d(xt, wt, padding=1).relu(), 2)
        (conv.avg_pool2d(h, 3, 1, 1) * conv.adaptive_avg_pool2d(h, 3)).sum().backward()
        grads.append([t.grad.double().numpy() for t in (xt, wt)])
    for lo, hi in zip(*grads):
        np.testing.assert_allclose(lo, hi, atol=2e-2 * np.abs(hi).max())


# --- unfold / fold and the rows against their references -----------------------------------


def test_unfold_fold():
    x = arr(2, 3, 6, 5)
    kw = dict(kernel_size=(2, 3), dilation=(2, 1), padding=(1, 2), stride=(1, 2))
    cols = conv.unfold(T(x), **kw)
    ref = REGISTRY["im2col"].ref(x, kernel_size=(2, 3), dilation=(2, 1),
                                 padding=((1, 1), (2, 2)), stride=(1, 2), transposed=False)
    close(cols, ref)
    assert cols.is_contiguous()
    # fold is unfold's adjoint: <unfold(x), c> == <x, fold(c)>
    c = arr(*cols.shape, seed=3)
    back = conv.fold(T(c), (6, 5), **kw).numpy()
    np.testing.assert_allclose((ref * c).sum(), (x * back).sum(), rtol=1e-12)
    close(back, REGISTRY["col2im"].ref(c, output_size=(6, 5), kernel_size=(2, 3),
                                       dilation=(2, 1), padding=((1, 1), (2, 2)), stride=(1, 2)))
    assert conv.unfold(T(x[0]), 2).shape == (12, 20)
    assert conv.fold(T(arr(12, 20)), (6, 5), 2).shape == (3, 6, 5)


@pytest.mark.parametrize("name,make", [
    ("im2col", lambda: ((arr(2, 3, 5, 6),), dict(kernel_size=(3, 2), dilation=(1, 2),
                                                 padding=((1, 2), (0, 1)), stride=(2, 1),
                                                 transposed=True))),
    ("col2im", lambda: ((arr(2, 6, 25),), dict(output_size=(4, 5), kernel_size=(2, 1),
                                               dilation=(1, 1), padding=((1, 1), (0, 0)),
                                               stride=(1, 1)))),
    ("transpose_copy", lambda: ((arr(2, 3, 9, 11),), {})),
    ("max_pool2d", lambda: ((arr(2, 3, 7, 6),), dict(kernel_size=(3, 2), stride=(2, 1),
                                                     padding=(1, 1), dilation=(1, 2),
                                                     ceil_mode=True, return_indices=True))),
    ("max_pool2d_backward", lambda: ((arr(2, 3, 4, 4, seed=1), arr(2, 3, 7, 6)),
                                     dict(kernel_size=(3, 2), stride=(2, 2), padding=(1, 1),
                                          dilation=(1, 1), ceil_mode=True))),
    ("avg_pool2d", lambda: ((arr(2, 3, 7, 6),), dict(kernel_size=(3, 2), stride=(2, 1),
                                                     padding=(1, 1), ceil_mode=True,
                                                     count_include_pad=False,
                                                     divisor_override=None))),
    ("avg_pool2d_backward", lambda: ((arr(2, 3, 4, 7, seed=1),),
                                     dict(input_size=(7, 6), kernel_size=(3, 2),
                                          stride=(2, 1), padding=(1, 1), ceil_mode=True,
                                          count_include_pad=True, divisor_override=None))),
    ("adaptive_avg_pool2d", lambda: ((arr(2, 3, 7, 10),), dict(output_size=(3, 4)))),
    ("adaptive_avg_pool2d_backward", lambda: ((arr(2, 3, 3, 4, seed=1),),
                                              dict(input_size=(7, 10)))),
])
def test_rows_match_their_references(name, make):
    arrays, attrs = make()
    got = apply(REGISTRY[name], *[T(a) for a in arrays], **attrs)
    exp = REGISTRY[name].ref(*arrays, **attrs)
    for g, e in zip(got if isinstance(got, tuple) else (got,),
                    exp if isinstance(exp, tuple) else (exp,)):
        if e.dtype.kind == "i":
            np.testing.assert_array_equal(g.numpy(), e)
        else:
            close(g, e)


# --- pools --------------------------------------------------------------------------------

MAX_CASES = [  # kernel, stride, padding, dilation, ceil_mode, input (H, W)
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (8, 8)),
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (7, 9)),
    ((3, 3), (2, 2), (1, 1), (1, 1), False, (9, 8)),
    ((3, 3), (2, 2), (1, 1), (1, 1), True, (8, 8)),
    ((3, 2), (1, 2), (1, 0), (1, 1), True, (6, 7)),
    ((2, 3), (3, 2), (1, 1), (2, 1), True, (9, 7)),
    ((3, 3), (1, 1), (1, 1), (2, 2), False, (5, 6)),
    ((1, 1), (3, 2), (0, 0), (1, 1), True, (7, 6)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,d,ceil,hw", MAX_CASES)
def test_max_pool2d(k, s, p, d, ceil, hw, dtype):
    x = arr(2, 3, *hw, dtype=dtype)
    y, idx = conv.max_pool2d(T(x), k, s, p, d, ceil_mode=ceil, return_indices=True)
    ey, eidx = ref_max_pool(x, k, s, p, d, ceil)
    close(y, ey, dtype)
    assert idx.dtype == cg.int64
    np.testing.assert_array_equal(idx.numpy(), eidx)
    close(conv.max_pool2d(T(x), k, s, p, d, ceil_mode=ceil), ey, dtype)


def test_max_pool2d_ties_nan_inf_unbatched_and_views():
    x = np.zeros((1, 4, 4))
    x[0, 1, 2] = np.nan
    x[0, 2:, :2] = -np.inf
    y, idx = conv.max_pool2d(T(x), 2, return_indices=True)
    ey, eidx = ref_max_pool(x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(y.numpy(), ey)
    np.testing.assert_array_equal(idx.numpy(), eidx)
    assert idx.numpy()[0, 0, 0] == 0 and np.isnan(y.numpy()[0, 0, 1])
    # the gradient follows the reported index on ties
    xt = T(np.zeros((1, 1, 2, 2))).requires_grad_()
    conv.max_pool2d(xt, 2).sum().backward()
    assert xt.grad.numpy().ravel().tolist() == [1.0, 0.0, 0.0, 0.0]
    base = arr(2, 3, 9, 8)
    view = T(base.transpose(0, 1, 3, 2).copy()).transpose(2, 3)[:, :, 1:, ::2]
    close(conv.max_pool2d(view, 2, 1), ref_max_pool(base[:, :, 1:, ::2], (2, 2), (1, 1),
                                                    (0, 0))[0])


@pytest.mark.parametrize("hw", [(2, 2), (4, 16), (5, 17), (9, 35), (28, 28), (3, 50)])
def test_max_pool2x2_vector_kernels(hw):
    """2x2 windows at stride 2 over float32 (conv.cl's max_pool2x2 kernels: 8 outputs per
    work-item, scalar tails, odd sizes whose last row or column no window covers), with
    ties, NaNs and infinities, on a channel slice of a larger tensor, and the gradient
    (contiguous and broadcast) to each window's argmax."""
    base = arr(2, 5, *hw, seed=4).astype(np.float32)
    base[:, :, ::3, 1::4] = base[:, :, ::3, ::4][..., :base[:, :, ::3, 1::4].shape[-1]]
    base[0, 1, 0, :3] = np.nan
    base[1, 2, -1, -2:] = np.nan
    base[1, 3, :2, :4] = -np.inf
    xs = base[:, 1:4]
    x = T(base)[:, 1:4].requires_grad_()
    y, idx = conv.max_pool2d(x, 2, return_indices=True)
    ey, eidx = ref_max_pool(xs, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(y.detach().numpy(), ey.astype(np.float32))
    np.testing.assert_array_equal(idx.numpy(), eidx)
    g = arr(*ey.shape, seed=5).astype(np.float32)
    expected = np.zeros_like(xs)
    flat = expected.reshape(2, 3, -1)
    for n in range(2):
        for c in range(3):
            np.add.at(flat[n, c], eidx[n, c].ravel(), g[n, c].ravel())
    (y * T(g)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    x.grad = None
    conv.max_pool2d(x, 2).sum().backward()  # a broadcast (stride 0) gradient
    ones = np.zeros_like(xs).reshape(2, 3, -1)
    for n in range(2):
        for c in range(3):
            np.add.at(ones[n, c], eidx[n, c].ravel(), 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), ones.reshape(xs.shape))


@pytest.mark.parametrize("k,s,p,ceil,include,div,hw", [
    ((2, 2), (2, 2), (0, 0), False, True, None, (8, 8)),
    ((3, 3), (2, 2), (1, 1), False, True, None, (7, 8)),
    ((3, 3), (2, 2), (1, 1), False, False, None, (7, 8)),
    ((3, 2), (2, 1), (1, 1), True, True, None, (8, 7)),
    ((3, 2), (2, 1), (1, 1), True, False, None, (8, 7)),
    ((2, 3), (3, 3), (1, 1), True, True, 5, (7, 7)),
    ((2, 3), (3, 2), (1, 1), True, True, -2, (7, 7)),  # a negative divisor divides too
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d(k, s, p, ceil, include, div, hw, dtype):
    x = arr(2, 3, *hw, dtype=dtype)
    got = conv.avg_pool2d(T(x), k, s, p, ceil_mode=ceil, count_include_pad=include,
                          divisor_override=div)
    close(got, ref_avg_pool(x, k, s, p, ceil, include, div), dtype, scale=4)
    assert conv.avg_pool2d(T(x[0]), k, s, p, ceil, include, div).shape == got.shape[1:]


def test_avg_pool_negative_divisor_gradient():
    x = T(arr(1, 2, 4, 6)).requires_grad_()
    conv.avg_pool2d(x, 2, divisor_override=-4).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 2, 4, 6), -0.25))


@pytest.mark.parametrize("hw,size", [((8, 8), (4, 4)), ((7, 10), (3, 4)), ((5, 5), (7, 3)),
                                     ((6, 9), 1), ((6, 9), (None, 4)), ((4, 4), (0, 2))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg_pool2d(hw, size, dtype):
    x = arr(2, 3, *hw, dtype=dtype)
    got = conv.adaptive_avg_pool2d(T(x), size)
    s = (size, size) if isinstance(size, int) else tuple(n if v is None else v
                                                         for n, v in zip(hw, size))
    close(got, ref_adaptive(x, s), dtype, scale=4)
    assert conv.adaptive_avg_pool2d(T(x[0]), size).shape == got.shape[1:]


def test_pools_half_and_empty_batch():
    x = arr(2, 3, 6, 6, dtype=np.float32)
    for fn, ref in [(lambda t: conv.max_pool2d(t, 2), lambda a: ref_max_pool(a, (2, 2), (2, 2),
                                                                              (0, 0))[0]),
                    (lambda t: conv.avg_pool2d(t, 3, 2, 1), lambda a: ref_avg_pool(
                        a, (3, 3), (2, 2), (1, 1))),
                    (lambda t: conv.adaptive_avg_pool2d(t, 4), lambda a: ref_adaptive(a, (4, 4)))]:
        got = fn(T(x).half())
        assert got.dtype == cg.float16
        np.testing.assert_allclose(got.float().numpy(), ref(x), atol=1e-2)
        assert fn(T(arr(0, 3, 6, 6))).shape[0] == 0


# --- gradients ------------------------------------------------------------------------------


def leaf(*shape, seed=0):
    return T(arr(*shape, seed=seed)).requires_grad_()


GRADS = {
    "conv2d": lambda: (lambda x, w, b: conv.conv2d(x, w, b, stride=(2, 1), padding=1,
                                                   dilation=(1, 2)),
                       (leaf(2, 2, 5, 5), leaf(3, 2, 2, 2, seed=1), leaf(3, seed=2))),
    "conv2d_groups": lambda: (lambda x, w: conv.conv2d(x, w, padding="same", groups=2),
                              (leaf(1, 4, 4, 3), leaf(4, 2, 2, 3, seed=1))),
    "conv2d_unbatched_view": lambda: (lambda x, w: conv.conv2d(x.transpose(1, 2), w),
                                      (leaf(2, 4, 5), leaf(2, 2, 3, 2, seed=1))),
    "max_pool2d": lambda: (lambda x: conv.max_pool2d(x, 3, 2, 1, ceil_mode=True),
                           (leaf(1, 2, 6, 5),)),
    "max_pool2d_dilated": lambda: (lambda x: conv.max_pool2d(x, 2, 1, 1, dilation=2),
                                   (leaf(1, 1, 5, 5),)),
    "avg_pool2d": lambda: (lambda x: conv.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                     count_include_pad=False),
                           (leaf(1, 2, 6, 5),)),
    "adaptive_avg_pool2d": lambda: (lambda x: conv.adaptive_avg_pool2d(x, (3, 2)),
                                    (leaf(1, 2, 5, 5),)),
    "fold": lambda: (lambda c: conv.fold(c, (4, 4), 2, padding=1, stride=2),
                     (leaf(1, 8, 9),)),
}


@pytest.mark.parametrize("name", GRADS)
def test_gradcheck(name):
    fn, inputs = GRADS[name]()
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("name", ["conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"])
def test_gradgradcheck(name):
    fn, inputs = GRADS[name]()
    assert gradgradcheck(fn, inputs)


def test_cnn_gradients_against_finite_differences_of_the_loss():
    """A conv-relu-pool-conv-pool-linear chain: <grad, v> against a central difference."""
    rng = np.random.default_rng(5)
    x = T(rng.standard_normal((2, 1, 8, 8)))
    params = [T(rng.standard_normal(s) * 0.5).requires_grad_() for s in
              [(4, 1, 3, 3), (4,), (6, 4, 3, 3), (6,), (24, 3)]]

    def loss(ps):
        h = conv.max_pool2d(conv.conv2d(x, ps[0], ps[1], padding=1).relu(), 2)
        h = conv.avg_pool2d(conv.conv2d(h, ps[2], ps[3], padding=1).tanh(), 2)
        return (h.reshape(2, -1) @ ps[4]).sin().sum()

    loss(params).backward()
    eps = 1e-6
    for p in params:
        v = rng.standard_normal(p.shape)
        base = p.detach().numpy()
        vals = []
        for sgn in (1, -1):
            ps = [T(base + sgn * eps * v) if q is p else q.detach() for q in params]
            vals.append(loss(ps).item())
        np.testing.assert_allclose((p.grad.numpy() * v).sum(), (vals[0] - vals[1]) / (2 * eps),
                                   rtol=1e-5, atol=1e-7)


# --- PyTorch parity -----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(padding="same", dilation=(2, 1)),
                                dict(groups=3, padding=(0, 1)), dict(groups=6, stride=(1, 2))])
def test_conv2d_matches_torch(kw):
    torch = torch_or_skip()
    g = kw.get("groups", 1)
    x, w, b = arr(2, 6, 7, 8), arr(6, 6 // g, 3, 2, seed=1), arr(6, seed=2)
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    out = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    gout = arr(*out.shape, seed=3)
    out.backward(torch.from_numpy(gout))
    cx, cw, cb = (T(a).requires_grad_() for a in (x, w, b))
    got = conv.conv2d(cx, cw, cb, **kw)
    got.backward(T(gout))
    for c, t in [(got, out), (cx.grad, tx.grad), (cw.grad, tw.grad), (cb.grad, tb.grad)]:
        close(c, t.detach().numpy(), scale=100)


@pytest.mark.parametrize("which", ["max", "max_idx", "avg", "avg_nopad", "adaptive"])
def test_pools_match_torch(which):
    torch = torch_or_skip()
    F = torch.nn.functional
    fns = {
        "max": (lambda m, t: m(t, 3, 2, 1, ceil_mode=True), conv.max_pool2d, F.max_pool2d),
        "max_idx": (lambda m, t: m(t, (2, 3), (1, 2), (1, 1), 2, return_indices=True)[0],
                    conv.max_pool2d, F.max_pool2d),
        "avg": (lambda m, t: m(t, 3, 2, 1, ceil_mode=True), conv.avg_pool2d, F.avg_pool2d),
        "avg_nopad": (lambda m, t: m(t, (3, 2), 2, (1, 1), True, False, None),
                      conv.avg_pool2d, F.avg_pool2d),
        "adaptive": (lambda m, t: m(t, (3, 5)), conv.adaptive_avg_pool2d,
                     F.adaptive_avg_pool2d),
    }
    call, mine, theirs = fns[which]
    x = arr(2, 3, 8, 7)
    tx, cx = torch.from_numpy(x).requires_grad_(), T(x).requires_grad_()
    out, got = call(theirs, tx), call(mine, cx)
    gout = arr(*out.shape, seed=4)
    out.backward(torch.from_numpy(gout))
    got.backward(T(gout))
    close(got, out.detach().numpy())
    close(cx.grad, tx.grad.numpy())
    if which == "max_idx":
        _, ti = F.max_pool2d(tx, (2, 3), (1, 2), (1, 1), 2, return_indices=True)
        _, ci = conv.max_pool2d(cx, (2, 3), (1, 2), (1, 1), 2, return_indices=True)
        np.testing.assert_array_equal(ci.numpy(), ti.numpy())


def test_unfold_fold_match_torch():
    torch = torch_or_skip()
    x = arr(2, 3, 7, 6)
    kw = dict(kernel_size=(3, 2), dilation=(1, 2), padding=(1, 0), stride=(2, 1))
    exp = torch.nn.functional.unfold(torch.from_numpy(x), **kw)
    close(conv.unfold(T(x), **kw), exp.numpy())
    c = arr(*exp.shape, seed=1)
    close(conv.fold(T(c), (7, 6), **kw),
          torch.nn.functional.fold(torch.from_numpy(c), (7, 6), **kw).numpy())


# --- errors (raised before any launch, with PyTorch's wording) -----------------------------


def _x(*shape, dtype=np.float32):
    return T(np.zeros(shape, dtype))


@pytest.mark.parametrize("fn,exc,match", [
    (lambda: conv.conv2d(_x(2, 4, 8, 8), _x(8, 3, 3, 3)), RuntimeError,
     r"Given groups=1, weight of size \[8, 3, 3, 3\], expected input\[2, 4, 8, 8\] to have 3 "
     r"channels, but got 4 channels instead"),
    (lambda: conv.conv2d(_x(2, 3, 2, 2), _x(8, 3, 3, 3)), RuntimeError,
     r"Calculated padded input size per channel: \(2 x 2\). Kernel size: \(3 x 3\). Kernel "
     r"size can't be greater than actual input size"),
    (lambda: conv.conv2d(_x(3, 3), _x(8, 3, 3, 3)), RuntimeError,
     r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of size: "
     r"\[3, 3\]"),
    (lambda: conv.conv2d(_x(2, 4, 8, 8), _x(3, 2, 3, 3), groups=2), RuntimeError,
     r"Given groups=2, expected weight to be divisible by 2 at dimension 0"),
    (lambda: conv.conv2d(_x(2, 3, 8, 8), _x(8, 3, 3, 3), _x(4)), RuntimeError,
     r"expected bias to be 1-dimensional with 8 elements, but got bias of size \[4\]"),
    (lambda: conv.conv2d(_x(2, 3, 8, 8), _x(8, 3, 3, 3), stride=0), RuntimeError,
     "non-positive stride is not supported"),
    (lambda: conv.conv2d(_x(2, 3, 8, 8), _x(8, 3, 3, 3), padding=-1), RuntimeError,
     "negative padding is not supported"),
    (lambda: conv.conv2d(_x(2, 3, 8, 8), _x(8, 3, 3, 3), padding="full"), RuntimeError,
     "Invalid padding string: 'full'"),
    (lambda: conv.conv2d(_x(2, 3, 8, 8), _x(8, 3, 3, 3), padding="same", stride=2),
     RuntimeError, "padding='same' is not supported for strided convolutions"),
    (lambda: conv.conv2d(_x(2, 3, 8, 8), _x(8, 3, 3, 3), padding=(1, 1, 1)), RuntimeError,
     r"expected padding to be a single integer value or a list of 2 values"),
    (lambda: conv.conv2d(_x(2, 3, 8, 8, dtype=np.float64), _x(8, 3, 3, 3)), RuntimeError,
     r"Input type \(torch.DoubleTensor\) and weight type \(torch.FloatTensor\) should be the "
     "same"),
    (lambda: conv.conv2d(_x(2, 3, 8, 8), _x(8, 3, 3, 3), _x(8, dtype=np.float64)),
     RuntimeError, r"Input type \(float\) and bias type \(double\) should be the same"),
    (lambda: conv.max_pool2d(_x(2, 4, 8, 8), 2, padding=2), RuntimeError,
     "pad should be at most half of effective kernel size, but got pad=2, kernel_size=2 and "
     "dilation=1"),
    (lambda: conv.max_pool2d(_x(2, 4, 8, 8), 3, padding=2, dilation=2), RuntimeError,
     "pad should be smaller than or equal to half of kernel size, but got padW = 2, padH = 2, "
     "kW = 3, kH = 3"),
    (lambda: conv.max_pool2d(_x(2, 4, 8, 8), (2, 2, 2)), RuntimeError,
     "max_pool2d: kernel_size must either be a single int, or a tuple of two ints"),
    (lambda: conv.max_pool2d(_x(2, 4, 8, 8), 2, stride=0), RuntimeError,
     "stride should not be zero"),
    (lambda: conv.max_pool2d(_x(2, 4, 8, 8), 0, stride=1), RuntimeError,
     "kernel size should be greater than zero, but got kH: 0 kW: 0"),
    (lambda: conv.max_pool2d(_x(1, 2, 2), 3), RuntimeError,
     r"Given input size: \(1x2x2\). Calculated output size: \(1x0x0\). Output size is too "
     "small"),
    (lambda: conv.max_pool2d(_x(2, 2), 1), RuntimeError,
     r"non-empty 3D or 4D \(batch mode\) tensor expected for input"),
    (lambda: conv.max_pool2d(_x(2, 4, 8, 8), 2, dilation=0), RuntimeError,
     "dilation should be greater than zero"),
    (lambda: conv.avg_pool2d(_x(2, 4, 8, 8), 2, divisor_override=0), RuntimeError,
     "divisor must be not zero"),
    (lambda: conv.avg_pool2d(_x(2, 4, 8, 8), 2, stride=(1, 1, 1)), RuntimeError,
     "avg_pool2d: stride must either be omitted, a single int, or a tuple of two ints"),
    (lambda: conv.adaptive_avg_pool2d(_x(2, 4, 8, 8), (2, 2, 2)), RuntimeError,
     "adaptive_avg_pool2d: output_size must be 2"),
    (lambda: conv.adaptive_avg_pool2d(_x(1, 2, 0, 3), 2), RuntimeError,
     r"Expected input to have non-zero size for non-batch dimensions, but input has sizes "
     r"\[1, 2, 0, 3\] with dimension 2 being empty"),
    (lambda: conv.adaptive_avg_pool2d(T(np.zeros((1, 2, 4, 4), np.int64)), 2),
     NotImplementedError, "\"adaptive_avg_pool2d\" not implemented for 'Long'"),
    (lambda: conv.unfold(_x(2, 3, 8, 8), 9), RuntimeError,
     r"calculated shape of the array of sliding blocks as \(0, 0\), but its components must "
     "be at least one"),
    (lambda: conv.fold(_x(2, 35, 9), (4, 4), 2), RuntimeError,
     r"Expected size of input's dimension 1 to be divisible by the product of kernel_size, "
     r"but got input.size\(1\)=35 and kernel_size=\(2, 2\)"),
])
def test_errors(fn, exc, match):
    with cg.profile() as prof:
        with pytest.raises(exc, match=match):
            fn()
    assert prof.launches == 0



def test_integer_convolutions_and_pools_are_exact():
    """Integer convolutions (every integer dtype, wrapping on overflow as PyTorch's CPU
    kernels), max pools of integers and int64 average pools (C's truncating division)
    against loop references; bool (and avg_pool of int32) raise naming the dtype."""
    import clgraph.nn.functional as F

    rng = np.random.default_rng(3)
    x, w, b = (rng.integers(-9, 10, s) for s in ((2, 4, 5, 6), (6, 2, 3, 2), (6,)))
    got = F.conv2d(T(x), T(w), T(b), 1, 1, 2, 2)
    assert got.dtype == cg.int64
    ref = ref_conv2d(x.astype(np.float64), w.astype(np.float64), b, (1, 1), ((1, 1), (1, 1)),
                     (2, 2), 2)
    np.testing.assert_array_equal(got.numpy(), ref)
    big = F.conv2d(T(np.full((1, 1, 1, 2), 2 ** 40)), T(np.full((1, 1, 1, 2), 2 ** 30)))
    assert big.tolist() == [[[[0]]]]  # 2**71 wraps to 0 in int64
    u8 = F.conv1d(T(np.array([[[200, 100, 3]]], np.uint8)), T(np.array([[[1, 1]]], np.uint8)))
    assert u8.dtype == cg.uint8 and u8.tolist() == [[[44, 103]]]
    xt, wt = rng.integers(-5, 6, (1, 2, 3, 3)), rng.integers(-5, 6, (2, 1, 2, 3))
    yt = F.conv_transpose2d(T(xt), T(wt), None, (2, 1), 0, (1, 0), 2)
    ref_t = np.zeros((1, 2, (3 - 1) * 2 + 2 + 1, (3 - 1) + 3))  # output_padding 1 below
    for c in range(2):
        for i in range(3):
            for j in range(3):
                ref_t[0, c, 2 * i:2 * i + 2, j:j + 3] += xt[0, c, i, j] * wt[c, 0]
    np.testing.assert_array_equal(yt.numpy(), ref_t)
    p = rng.integers(-50, 50, (1, 2, 5, 7)).astype(np.int32)
    mp = F.max_pool2d(T(p), 3, 2, 1, ceil_mode=True)
    assert mp.dtype == cg.int32
    padded = np.pad(p, ((0, 0), (0, 0), (1, 1), (1, 2)), constant_values=-100)
    np.testing.assert_array_equal(
        mp.numpy(), [[[[padded[0, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(4)]
                       for i in range(3)] for c in range(2)]])
    a = np.array([[[-7, 2, 3, -4, 5, 6, 1]]])
    assert F.avg_pool1d(T(a), 3, 1, 1).tolist() == [[[-1, 0, 0, 1, 2, 4, 2]]]
    assert F.avg_pool2d(T(a[None]), (1, 2), divisor_override=3).tolist() == [[[[-1, 0, 3]]]]
    with pytest.raises(NotImplementedError, match="\"conv2d\" not implemented for 'Bool'"):
        F.conv2d(T(x > 0), T(w > 0), None, 1, 1, 2, 2)
    with pytest.raises(NotImplementedError, match="\"avg_pool2d\" not implemented for 'Int'"):
        F.avg_pool2d(T(p), 2)
    with pytest.raises(NotImplementedError, match="\"im2col\" not implemented for 'Long'"):
        F.unfold(T(x), 2)  # as PyTorch's unfold and fold: floating point and bool only
    m = rng.random((1, 2, 3, 4)) > 0.6
    cols = F.unfold(T(m), 2, padding=1)
    assert cols.dtype == cg.bool
    np.testing.assert_array_equal(cols.numpy(), conv._im2col_ref(
        m.astype(np.float64), (2, 2), (1, 1), ((1, 1), (1, 1)), (1, 1), False) != 0)
    blocks = rng.random((1, 8, 9)) > 0.7  # overlapping blocks: a position is any of them
    folded = F.fold(T(blocks), (4, 4), 2)
    np.testing.assert_array_equal(folded.numpy(), F.fold(T(blocks.astype(np.float64)),
                                                         (4, 4), 2).numpy() != 0)

# --- Conv1d ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1, dilation=2, groups=2),
    dict(kernel_size=4, padding="same"), dict(kernel_size=1),
    dict(kernel_size=3, padding=1, padding_mode="reflect", bias=False),
])
def test_conv1d_module_against_numpy(kw):
    rng = np.random.default_rng(11)
    m = cg.nn.Conv1d(4, 6, **kw).double()
    x = rng.standard_normal((2, 4, 11))
    k, s = m.kernel_size[0], m.stride[0]
    d, g = m.dilation[0], m.groups
    if m.padding_mode == "reflect":
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1)), mode="reflect")
        pads = ((0, 0), (0, 0))
    else:
        xp = x
        if m.padding == "same":
            total = d * (k - 1)
            pads = ((0, 0), (total // 2, total - total // 2))
        else:
            pads = ((0, 0), (m.padding[0], m.padding[0]))
    w = m.weight.detach().numpy()
    b = None if m.bias is None else m.bias.detach().numpy()
    want = ref_conv2d(xp[:, :, None], w[:, :, None], b, (1, s), pads, (1, d), g)[:, :, 0]
    got = m(cg.tensor(x))
    assert tuple(got.shape) == want.shape
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(m(cg.tensor(x[0])).detach().numpy(), want[0], rtol=1e-10,
                               atol=1e-10)
    assert list(m.state_dict()) == (["weight"] if m.bias is None else ["weight", "bias"])
    assert m.weight.shape == (6, 4 // g, k)


def test_conv1d_gradients_and_errors():
    rng = np.random.default_rng(12)
    x = cg.tensor(rng.standard_normal((2, 3, 7)), requires_grad=True)
    w = cg.tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    b = cg.tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda x_, w_, b_: cg.nn.functional.conv1d(x_, w_, b_, stride=2,
                                                                padding=1), (x, w, b))
    assert repr(cg.nn.Conv1d(3, 4, 2, stride=2)) == "Conv1d(3, 4, kernel_size=(2,), stride=(2,))"
    with pytest.raises(RuntimeError, match=r"Expected 2D \(unbatched\) or 3D \(batched\) input "
                                           r"to conv1d, but got input of size: \[2, 3, 4, 5\]"):
        cg.nn.functional.conv1d(cg.ones(2, 3, 4, 5), cg.ones(2, 3, 3))
    with pytest.raises(RuntimeError, match="expected stride to be a single integer value"):
        cg.nn.functional.conv1d(cg.ones(2, 3, 4), cg.ones(2, 3, 3), stride=(1, 2))


# --- ConvTranspose2d ------------------------------------------------------------------------


def ref_conv_transpose2d(x, w, b, stride, pad, out_pad, groups, dil):
    """Each input pixel adds its weight window into the output (the definition)."""
    N, Cin, H, W = x.shape
    _, Cg, kh, kw = w.shape
    OH = (H - 1) * stride[0] - 2 * pad[0] + dil[0] * (kh - 1) + out_pad[0] + 1
    OW = (W - 1) * stride[1] - 2 * pad[1] + dil[1] * (kw - 1) + out_pad[1] + 1
    full = np.zeros((N, Cg * groups, OH + 2 * pad[0] + stride[0], OW + 2 * pad[1] + stride[1]))
    cin = Cin // groups
    for g in range(groups):
        for i in range(H):
            for j in range(W):
                for ki in range(kh):
                    for kj in range(kw):
                        full[:, g * Cg:(g + 1) * Cg, i * stride[0] + ki * dil[0],
                             j * stride[1] + kj * dil[1]] += x[:, g * cin:(g + 1) * cin, i, j] @ \
                            w[g * cin:(g + 1) * cin, :, ki, kj]
    y = full[:, :, pad[0]:pad[0] + OH, pad[1]:pad[1] + OW]
    return y if b is None else y + b[None, :, None, None]


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, output_padding=1),
                                dict(stride=2, padding=1, dilation=2, groups=2),
                                dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                                     bias=False)])
def test_conv_transpose2d_against_numpy(kw):
    rng = np.random.default_rng(13)
    m = cg.nn.ConvTranspose2d(4, 6, 3, **kw).double()
    x = rng.standard_normal((2, 4, 4, 5))
    b = None if m.bias is None else m.bias.detach().numpy()
    want = ref_conv_transpose2d(x, m.weight.detach().numpy(), b, m.stride, m.padding,
                                m.output_padding, m.groups, m.dilation)
    got = m(cg.tensor(x)).detach().numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    assert m.weight.shape == (4, 6 // m.groups, 3, 3)


def test_conv_transpose2d_gradients_output_size_and_errors():
    rng = np.random.default_rng(14)
    x = cg.tensor(rng.standard_normal((1, 2, 3, 3)), requires_grad=True)
    w = cg.tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: cg.nn.functional.conv_transpose2d(a, b, stride=2, padding=1,
                                                                    output_padding=1), (x, w))
    m = cg.nn.ConvTranspose2d(2, 4, 3, stride=2)
    assert tuple(m(cg.ones(1, 2, 5, 5), output_size=[12, 12]).shape) == (1, 4, 12, 12)
    with pytest.raises(ValueError, match=r"requested an output size of \[14, 14\], but valid "
                                         r"sizes range from \[11, 11\] to \[12, 12\]"):
        m(cg.ones(1, 2, 5, 5), output_size=[14, 14])
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride "
                                           "or dilation"):
        cg.nn.functional.conv_transpose2d(cg.ones(1, 2, 3, 3), cg.ones(2, 3, 3, 3), stride=2,
                                          output_padding=2)
