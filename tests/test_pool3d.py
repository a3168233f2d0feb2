"""3-d pooling (max, average, adaptive, LP), fractional max pooling, max unpooling and the
*_with_indices names: numpy references (direct loops over windows) and float64
finite-difference gradchecks that need no PyTorch, then PyTorch 2.13 parity for values,
indices, gradients, errors and module reprs where torch is installed, and compiled against
eager."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
import clgraph.nn as nn
import clgraph.nn.functional as F
from clgraph.autograd import gradcheck, gradgradcheck
from clgraph.ops.registry import REGISTRY, apply


def arr(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed + 7 * sum(shape)).standard_normal(shape).astype(dtype)


def T(a):
    return cg.from_numpy(np.ascontiguousarray(a))


def leaf(*shape, seed=0):
    return T(arr(*shape, seed=seed)).requires_grad_()


def close(got, exp, tol=1e-12):
    got = got.detach().numpy() if isinstance(got, cg.Tensor) else np.asarray(got)
    exp = exp.detach().numpy() if hasattr(exp, "detach") else np.asarray(exp)
    assert got.shape == exp.shape, (got.shape, exp.shape)
    np.testing.assert_allclose(got, exp, rtol=tol, atol=tol)


# --- direct numpy references ----------------------------------------------------------------


def pool_out(n, k, s, p, d, ceil):
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    return o - 1 if ceil and (o - 1) * s >= n + p else o


def ref_max_pool3d(x, k, s, p, d=(1, 1, 1), ceil=False):
    """Values and flat indices: the first maximum of each window in (d, h, w) scan order."""
    N, C, *size = x.shape
    out = [pool_out(n, *a, ceil) for n, a in zip(size, zip(k, s, p, d))]
    y = np.full((N, C, *out), -np.inf)
    idx = np.zeros((N, C, *out), np.int64)
    for o in itertools.product(*map(range, out)):
        for t in itertools.product(*map(range, k)):
            pos = [o[a] * s[a] - p[a] + t[a] * d[a] for a in range(3)]
            if not all(0 <= q < n for q, n in zip(pos, size)):
                continue
            v = x[(..., *pos)]
            better = v > y[(..., *o)]
            y[(..., *o)] = np.where(better, v, y[(..., *o)])
            idx[(..., *o)] = np.where(better, np.ravel_multi_index(pos, size), idx[(..., *o)])
    return y, idx


def ref_avg_pool3d(x, k, s, p, ceil=False, include_pad=True, divisor=None):
    N, C, *size = x.shape
    out = [pool_out(n, *a, 1, ceil) for n, a in zip(size, zip(k, s, p))]
    y = np.zeros((N, C, *out))
    for o in itertools.product(*map(range, out)):
        lo = [o[a] * s[a] - p[a] for a in range(3)]
        hi = [min(lo[a] + k[a], size[a] + p[a]) for a in range(3)]
        clo = [max(v, 0) for v in lo]
        chi = [min(v, n) for v, n in zip(hi, size)]
        total = x[(..., *[slice(a, b) for a, b in zip(clo, chi)])].sum((-3, -2, -1))
        if divisor:
            div = divisor
        elif include_pad:
            div = np.prod([b - a for a, b in zip(lo, hi)])
        else:
            div = np.prod([b - a for a, b in zip(clo, chi)])
        y[(..., *o)] = total / div
    return y


def ref_adaptive_avg_pool3d(x, out):
    N, C, *size = x.shape
    y = np.zeros((N, C, *out))
    for o in itertools.product(*map(range, out)):
        win = tuple(slice(o[a] * size[a] // out[a], -(-(o[a] + 1) * size[a] // out[a]))
                    for a in range(3))
        y[(..., *o)] = x[(..., *win)].mean((-3, -2, -1))
    return y


MAX_CASES = [  # kernel, stride, padding, dilation, ceil_mode, input (D, H, W)
    ((2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), False, (4, 6, 4)),
    ((3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), True, (5, 7, 5)),
    ((1, 3, 2), (1, 2, 3), (0, 1, 1), (1, 1, 1), True, (1, 7, 5)),
    ((2, 2, 3), (1, 2, 1), (1, 0, 1), (2, 3, 1), False, (5, 7, 6)),
    ((3, 1, 2), (3, 1, 2), (1, 0, 0), (1, 1, 2), True, (7, 1, 7)),
]


@pytest.mark.parametrize("k,s,p,d,ceil,size", MAX_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool3d_against_numpy(k, s, p, d, ceil, size, dtype):
    x = arr(2, 3, *size, dtype=dtype)
    y, idx = F.max_pool3d(T(x), k, s, p, d, ceil_mode=ceil, return_indices=True)
    ey, eidx = ref_max_pool3d(x.astype(np.float64), k, s, p, d, ceil)
    close(y, ey.astype(dtype), 0)
    np.testing.assert_array_equal(idx.numpy(), eidx)
    close(F.max_pool3d(T(x[0]), k, s, p, d, ceil_mode=ceil), ey[0].astype(dtype), 0)


@pytest.mark.parametrize("k,s,p,ceil,include,div,size", [
    ((2, 2, 2), (2, 2, 2), (0, 0, 0), False, True, None, (4, 6, 4)),
    ((3, 3, 3), (2, 2, 2), (1, 1, 1), True, True, None, (5, 7, 5)),
    ((3, 3, 3), (2, 2, 2), (1, 1, 1), True, False, None, (5, 7, 5)),
    ((1, 3, 2), (1, 2, 3), (0, 1, 1), True, False, None, (1, 7, 5)),
    ((2, 3, 1), (1, 2, 1), (1, 1, 0), False, True, 5, (5, 5, 1)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool3d_against_numpy(k, s, p, ceil, include, div, size, dtype):
    x = arr(2, 3, *size, dtype=dtype)
    got = F.avg_pool3d(T(x), k, s, p, ceil, include, div)
    exp = ref_avg_pool3d(x.astype(np.float64), k, s, p, ceil, include, div)
    close(got, exp, 1e-5 if dtype == np.float32 else 1e-12)
    assert F.avg_pool3d(T(x[0]), k, s, p, ceil, include, div).shape == got.shape[1:]


@pytest.mark.parametrize("size,out", [((5, 7, 6), (2, 3, 4)), ((1, 5, 7), (1, 1, 1)),
                                      ((5, 5, 5), (7, 3, 5)), ((4, 6, 8), (2, 3, 4))])
def test_adaptive_avg_pool3d_against_numpy(size, out):
    x = arr(2, 3, *size)
    close(F.adaptive_avg_pool3d(T(x), out), ref_adaptive_avg_pool3d(x, out))
    close(F.adaptive_avg_pool3d(T(x[1]), out), ref_adaptive_avg_pool3d(x, out)[1])


def test_views_ties_and_nan():
    base = arr(3, 2, 6, 7, 9)
    view = T(base).permute(1, 0, 2, 3, 4)[:, :, 1:, ::2, 1:]  # non-contiguous
    exp = ref_max_pool3d(np.ascontiguousarray(base.transpose(1, 0, 2, 3, 4)[:, :, 1:, ::2, 1:]),
                         (2, 3, 2), (1, 2, 2), (1, 1, 0))
    y, idx = F.max_pool3d(view, (2, 3, 2), (1, 2, 2), (1, 1, 0), return_indices=True)
    close(y, exp[0])
    np.testing.assert_array_equal(idx.numpy(), exp[1])
    close(F.avg_pool3d(view, 2, 1, 1), ref_avg_pool3d(view.numpy(), (2,) * 3, (1,) * 3, (1,) * 3))
    close(F.adaptive_avg_pool3d(view, (2, 3, 3)),
          ref_adaptive_avg_pool3d(view.numpy(), (2, 3, 3)))
    # ties: the first position of the window in scan order takes the value and the gradient
    x = T(np.ones((1, 1, 3, 3, 3))).requires_grad_()
    y, idx = F.max_pool3d(x, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy().ravel(), [0, 1, 3, 4, 9, 10, 12, 13])
    y.sum().backward()
    assert x.grad.numpy().sum() == 8 and x.grad.numpy()[0, 0, 0, 0, 0] == 1
    a = np.zeros((1, 1, 2, 2, 2))
    a[0, 0, 1, 0, 1] = np.nan
    y, idx = F.max_pool3d(T(a), 2, return_indices=True)
    assert np.isnan(y.item()) and idx.item() == 5


def test_rows_match_their_references():
    x, g = arr(2, 2, 5, 4, 6), arr(2, 2, 3, 2, 3, seed=1)
    mp = dict(kernel_size=(2, 3, 2), stride=(2, 2, 2), padding=(1, 1, 0), dilation=(1, 1, 2),
              ceil_mode=True)
    ap = dict(kernel_size=(3, 2, 3), stride=(2, 2, 2), padding=(1, 1, 1), ceil_mode=False,
              count_include_pad=False, divisor_override=None)
    for name, args, attrs in [
        ("max_pool3d", (x,), dict(mp, return_indices=True)),
        ("max_pool3d_backward", (arr(2, 2, 3, 3, 3, seed=2), x), mp),
        ("avg_pool3d", (x,), ap),
        ("avg_pool3d_backward", (arr(2, 2, 3, 3, 3, seed=3),), dict(ap, input_size=(5, 4, 6))),
        ("adaptive_avg_pool3d", (x,), dict(output_size=(3, 3, 4))),
        ("adaptive_avg_pool3d_backward", (g,), dict(input_size=(5, 4, 6))),
    ]:
        got = apply(REGISTRY[name], *[T(a) for a in args], **attrs)
        exp = REGISTRY[name].ref(*args, **attrs)
        for gv, ev in zip(got if isinstance(got, tuple) else (got,),
                          exp if isinstance(exp, tuple) else (exp,)):
            if ev.dtype.kind == "i":
                np.testing.assert_array_equal(gv.numpy(), ev)
            else:
                close(gv, ev)


# --- gradients (float64 central differences) -------------------------------------------------

_U = np.random.default_rng(9).random((1, 2, 3))

GRADS = {
    "max_pool3d": lambda: (lambda x: F.max_pool3d(x, (2, 3, 2), (1, 2, 2), (1, 1, 0),
                                                  (1, 1, 2), ceil_mode=True),
                           (leaf(1, 2, 3, 5, 5),)),
    "max_pool3d_unbatched": lambda: (lambda x: F.max_pool3d(x.transpose(1, 3), 2, 1),
                                     (leaf(2, 4, 3, 3),)),
    "avg_pool3d": lambda: (lambda x: F.avg_pool3d(x, 3, 2, 1, ceil_mode=True,
                                                  count_include_pad=False),
                           (leaf(1, 2, 4, 5, 3),)),
    "avg_pool3d_divisor": lambda: (lambda x: F.avg_pool3d(x, (1, 2, 2), 1, divisor_override=3),
                                   (leaf(1, 1, 2, 3, 3),)),
    "adaptive_avg_pool3d": lambda: (lambda x: F.adaptive_avg_pool3d(x, (2, 3, 2)),
                                    (leaf(1, 2, 3, 5, 4),)),
    "adaptive_max_pool3d": lambda: (lambda x: F.adaptive_max_pool3d(x, (2, 3, 2)),
                                    (leaf(1, 2, 3, 5, 4),)),
    "lp_pool3d": lambda: (lambda x: F.lp_pool3d(x.abs() + 0.5, 2.0, 2, 1),
                          (leaf(1, 1, 3, 3, 3),)),
    "fractional_max_pool3d": lambda: (
        lambda x: F.fractional_max_pool3d(x, 2, output_size=(2, 3, 2),
                                          _random_samples=T(_U)),
        (leaf(1, 2, 4, 5, 4),)),
    "fractional_max_pool2d": lambda: (
        lambda x: F.fractional_max_pool2d(x, (2, 3), output_size=(3, 2),
                                          _random_samples=T(_U[:, :, :2])),
        (leaf(1, 2, 5, 5),)),
    "max_unpool3d": lambda: (
        lambda v: F.max_unpool3d(v, cg.tensor([[[[[0, 7]], [[13, 26]]]]]), 2,
                                 output_size=(3, 3, 3)),
        (leaf(1, 1, 2, 1, 2),)),
    "max_unpool1d": lambda: (
        lambda v: F.max_unpool1d(v, cg.tensor([[1, 2, 5]]), 2), (leaf(1, 3),)),
}


@pytest.mark.parametrize("name", GRADS)
def test_gradcheck(name):
    fn, inputs = GRADS[name]()
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("name", ["max_pool3d", "avg_pool3d", "adaptive_avg_pool3d"])
def test_gradgradcheck(name):
    fn, inputs = GRADS[name]()
    assert gradgradcheck(fn, inputs)


def test_backward_rows_gradcheck():
    """The backward rows' own VJPs (what double backward runs)."""
    mp = dict(kernel_size=(2, 2, 2), stride=(1, 2, 1), padding=(1, 0, 1), dilation=(1, 1, 1),
              ceil_mode=False)
    x = leaf(1, 2, 3, 4, 3, seed=5).detach()
    assert gradcheck(lambda g: apply(REGISTRY["max_pool3d_backward"], g, x, **mp),
                     (leaf(1, 2, 4, 2, 4),))
    ap = dict(kernel_size=(2, 2, 2), stride=(1, 2, 1), padding=(1, 0, 1), ceil_mode=True,
              count_include_pad=True, divisor_override=None)
    assert gradcheck(lambda g: apply(REGISTRY["avg_pool3d_backward"], g, input_size=(3, 4, 3),
                                     **ap), (leaf(1, 2, 4, 2, 4),))
    assert gradcheck(lambda g: apply(REGISTRY["adaptive_avg_pool3d_backward"], g,
                                     input_size=(3, 5, 4)), (leaf(1, 2, 2, 3, 2),))


# --- fractional pooling and unpooling without PyTorch -----------------------------------------


def test_fractional_windows_cover_the_input_and_follow_the_seed():
    x = T(arr(2, 3, 9, 8, 7))
    cg.manual_seed(3)
    a, ia = F.fractional_max_pool3d(x, 2, output_size=(4, 5, 3), return_indices=True)
    cg.manual_seed(3)
    b, ib = F.fractional_max_pool3d(x, 2, output_size=(4, 5, 3), return_indices=True)
    np.testing.assert_array_equal(ia.numpy(), ib.numpy())
    close(a, b)
    # every value is the input at its index, and each output is the max of a 2x2x2 box
    flat = x.numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, ia.numpy().reshape(2, 3, -1), 2),
                                  a.numpy().reshape(2, 3, -1))
    y = F.fractional_max_pool2d(T(arr(3, 9, 8)), 3, output_ratio=(0.5, 0.5))
    assert y.shape == (3, 4, 4)
    m = nn.FractionalMaxPool2d(2, output_size=3, return_indices=True)
    assert [t.shape for t in m(T(arr(2, 3, 7, 6)))] == [(2, 3, 3, 3)] * 2


def test_unpool_inverts_pooling():
    x = T(arr(2, 3, 4, 6, 4))
    y, idx = F.max_pool3d(x, 2, return_indices=True)
    u = nn.MaxUnpool3d(2)(y, idx)
    assert u.shape == x.shape
    kept = u.numpy() != 0
    np.testing.assert_array_equal(u.numpy()[kept], x.numpy()[kept])
    assert kept.sum() == y.numel()
    y1, i1 = F.max_pool1d_with_indices(T(arr(3, 7)), 2)
    assert F.max_unpool1d(y1, i1, 2, output_size=[7]).shape == (3, 7)


# --- compiled equals eager -------------------------------------------------------------------


@pytest.mark.parametrize("which", ["max", "avg", "adaptive_max", "fractional", "unpool"])
def test_compiled_forward_and_backward(which):
    x0 = arr(2, 2, 5, 4, 6)
    u = T(np.random.default_rng(1).random((2, 2, 3)))
    idx = F.max_pool3d(T(x0), 2, 1, return_indices=True)[1]
    fns = {
        "max": lambda x: F.max_pool3d(x, 3, 2, 1, ceil_mode=True),
        "avg": lambda x: F.avg_pool3d(x, (2, 3, 2), 1, (1, 1, 0), count_include_pad=False)
        + F.adaptive_avg_pool3d(x, 2).sum(),
        "adaptive_max": lambda x: F.adaptive_max_pool3d(x, (3, 2, 4)),
        "fractional": lambda x: F.fractional_max_pool3d(x, 2, output_size=(3, 2, 3),
                                                        _random_samples=u),
        "unpool": lambda x: F.max_unpool3d(F.max_pool3d(x, 2, 1), idx, 2, 1),
    }
    pool = fns[which]

    def step(x):
        y = pool(x)
        (y * y).sum().backward()
        return y

    compiled = cg.compile(step)
    for _ in range(2):  # the trace, then the replay
        xe, xc = T(x0).requires_grad_(), T(x0).requires_grad_()
        ye, yc = step(xe), compiled(xc)
        close(yc, ye, 1e-12)
        close(xc.grad, xe.grad, 1e-12)


# --- modules ---------------------------------------------------------------------------------


def test_modules_are_exported_like_the_2d_ones():
    for name in ["MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "LPPool3d",
                 "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "FractionalMaxPool2d",
                 "FractionalMaxPool3d"]:
        cls = getattr(nn, name)
        assert getattr(nn.modules, name) is cls
        assert getattr(nn.modules.pooling, name) is cls
    assert cg.max_pool3d is F.max_pool3d
    assert cg.max_pool1d_with_indices is F.max_pool1d_with_indices
    x = T(arr(2, 2, 4, 4, 4))
    close(nn.MaxPool3d(2)(x), F.max_pool3d(x, 2))
    close(nn.AvgPool3d(3, 1, 1)(x), F.avg_pool3d(x, 3, 1, 1))
    close(nn.LPPool3d(2, 2)(x), F.lp_pool3d(x, 2, 2))
    with pytest.raises(ValueError, match="only one of output_size and output_ratio"):
        nn.FractionalMaxPool3d(2, 2, 0.5)


# --- errors ----------------------------------------------------------------------------------


def _x(*shape, dtype=np.float32):
    return T(np.zeros(shape, dtype))


BAD = [  # call, exception, message (PyTorch's, carrying the values)
    (lambda: F.max_pool3d(_x(3, 5, 6), 2), RuntimeError,
     r"non-empty 4D or 5D \(batch mode\) tensor expected for input"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), (2, 2)), RuntimeError,
     "max_pool3d: kernel_size must either be a single int, or a tuple of three ints"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), 2, (1, 1, 1, 1)), RuntimeError,
     "max_pool3d: stride must either be omitted, a single int, or a tuple of three ints"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), 2.0), TypeError,
     r"max_pool3d\(\): argument 'kernel_size' \(position 2\) must be tuple of ints, not float"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), 2, 0), RuntimeError, "stride should not be zero"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), 2, -1), RuntimeError,
     "stride should be greater than zero, but got dT: -1 dH: -1 dW: -1"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), 2, 1, -1), RuntimeError,
     "pad must be non-negative, but got pad: -1"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), 2, 1, 2), RuntimeError,
     "pad should be at most half of effective kernel size, but got pad=2, kernel_size=2 and "
     "dilation=1"),
    (lambda: F.max_pool3d(_x(2, 3, 8, 8, 8), 3, 1, 2, 2), RuntimeError,
     "pad should be smaller than or equal to half of kernel size, but got kT: 3 kW: 3 kH: 3 "
     "padT: 2 padW: 2 padH: 2"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), 0, 1), RuntimeError,
     "kernel size should be greater than zero, but got kT: 0 kH: 0 kW: 0"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), 2, 1, 0, 0), RuntimeError,
     "dilation should be greater than zero, but got dilationT: 0 dilationH: 0 dilationW: 0"),
    (lambda: F.max_pool3d(_x(2, 3, 5, 6, 7), (2, 2, 9)), RuntimeError,
     r"Given input size: \(3x5x6x7\). Calculated output size: \(3x2x3x0\). Output size is "
     "too small"),
    (lambda: F.max_pool3d(_x(2, 3, 0, 6, 7), 2), RuntimeError,
     r"Expected input's non-batch dimensions to have positive length, but input has a shape "
     r"of \[2, 3, 0, 6, 7\]"),
    (lambda: F.max_pool3d(_x(2, 3, 4, 4, 4, dtype=np.bool_), 2), NotImplementedError,
     "\"max_pool3d\" not implemented for 'Bool'"),
    (lambda: F.avg_pool3d(_x(2, 3, 4, 4, 4, dtype=np.int32), 2), NotImplementedError,
     "\"avg_pool3d\" not implemented for 'Int'"),
    (lambda: F.avg_pool3d(_x(2, 3, 5, 6, 7), (2, 2)), RuntimeError,
     "avg_pool3d: kernel_size must be a single int, or a tuple of three ints"),
    (lambda: F.avg_pool3d(_x(2, 3, 5, 6, 7), 2, divisor_override=0), RuntimeError,
     "divisor must be not zero"),
    (lambda: F.avg_pool3d(_x(2, 3, 5, 6, 7), (6, 2, 2), 1, (3, 0, 0)), RuntimeError,
     r"input image \(T: 5 H: 6 W: 7\) smaller than kernel size \(kT: 6 kH: 2 kW: 2\)"),
    (lambda: F.adaptive_avg_pool3d(_x(3, 5, 6), 2), RuntimeError,
     r"adaptive_avg_pool3d\(\): Expected 4D or 5D tensor, but got \[3, 5, 6\]"),
    (lambda: F.adaptive_avg_pool3d(_x(2, 3, 5, 6, 7), (2, 2)), RuntimeError,
     "adaptive_avg_pool3d: output_size must be 3"),
    (lambda: F.adaptive_avg_pool3d(_x(2, 3, 0, 6, 7), 2), RuntimeError,
     r"non-zero size for non-batch dimensions, but input has sizes \[2, 3, 0, 6, 7\] with "
     "dimension 2 being empty"),
    (lambda: F.adaptive_max_pool3d(_x(3, 5, 6), 2), RuntimeError,
     r"adaptive_max_pool3d\(\): Expected 4D or 5D tensor, but got: \[3, 5, 6\]"),
    (lambda: F.adaptive_max_pool3d(_x(2, 3, 5, 6, 7), (2, 2)), RuntimeError,
     r"adaptive_max_pool3d\(\): internal error: output_size.size\(\) must be 3"),
    (lambda: F.max_unpool2d(_x(3, 5, 3, 3), cg.zeros(3, 5, 3, 3, dtype=cg.int32), 2),
     RuntimeError, "elements in indices should be type int64 but got: Int"),
    (lambda: F.max_unpool2d(_x(3, 5, 3, 3), cg.full((3, 5, 3, 3), 36), 2), RuntimeError,
     r"Found an invalid max index: 36 \(output volumes are of size 6x6\)"),
    (lambda: F.max_unpool3d(_x(3, 5, 3), cg.zeros(3, 5, 3, dtype=cg.int64), 2), RuntimeError,
     "Input to max_unpooling3d should be a 4d or 5d Tensor, but got a tensor with 3 "
     "dimensions."),
    (lambda: F.max_unpool2d(_x(3, 5, 3, 3), cg.zeros(3, 2, 3, 3, dtype=cg.int64), 2),
     RuntimeError, r"Expected shape of indices to be same as that of the input tensor \(\[3, "
                   r"5, 3, 3\]\) but got indices tensor with shape: \[3, 2, 3, 3\]"),
    (lambda: F.max_unpool2d(_x(3, 5, 3, 3), cg.zeros(3, 5, 3, 3, dtype=cg.int64), 2,
                            output_size=(9, 9)), ValueError,
     r'invalid output_size "\(9, 9\)" \(dim 0 must be between 4 and 8\)'),
    (lambda: F.max_unpool3d(_x(1, 3, 2, 2, 2), cg.zeros(1, 3, 2, 2, 2, dtype=cg.int64), 2, 0),
     RuntimeError, r"strides should be greater than zero, but got stride: \[0, 0, 0\]"),
    (lambda: F.fractional_max_pool2d(_x(3, 5, 6, 7), 2), ValueError,
     "fractional_max_pool2d requires specifying either an output_size or an output_ratio"),
    (lambda: F.fractional_max_pool2d(_x(3, 5, 6, 7), 3, output_size=5), RuntimeError,
     r"fractional_max_pool2d\(\): pool height 3 too large relative to input height 6"),
    (lambda: F.fractional_max_pool3d(_x(2, 3, 5, 7, 6), 2, output_size=(4, 5, 3)),
     RuntimeError,
     r"fractional_max_pool3d_out\(\): pool time 2 too large relative to input time 5"),
    (lambda: F.fractional_max_pool3d(_x(2, 3, 5, 7, 6), (2, 2), output_size=2), RuntimeError,
     "fractional_max_pool3d: kernel_size must either be a single Int or tuple of three Ints"),
    (lambda: F.fractional_max_pool2d(_x(3, 5, 6, 7), 2, output_size=2,
                                      _random_samples=_x(1, 5, 2)), RuntimeError,
     r"Expect _random_samples.size\(0\) no less then input batch size."),
    (lambda: F.fractional_max_pool3d(_x(2, 3, 5, 5, 5), 2, output_size=2,
                                      _random_samples=_x(2, 3, 2)), RuntimeError,
     r"Expect _random_samples.size\(2\) equals to 3; got 2."),
    (lambda: nn.FractionalMaxPool3d(2, output_ratio=1.2), ValueError,
     r"output_ratio must be between 0 and 1 \(got 1.2\)"),
]


@pytest.mark.parametrize("call,exc,message", BAD)
def test_bad_input_raises_like_pytorch(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


# --- PyTorch parity ----------------------------------------------------------------------------


def _pair(torch, x, requires_grad=True):
    return (torch.from_numpy(x.copy()).requires_grad_(requires_grad),
            T(x).requires_grad_(requires_grad))


def _check_grad(torch, out, got, tx, cx, seed=4, tol=1e-12):
    gout = arr(*out.shape, seed=seed, dtype=tx.detach().numpy().dtype)
    out.backward(torch.from_numpy(gout))
    got.backward(T(gout))
    close(cx.grad, tx.grad.numpy(), tol)


@pytest.mark.parametrize("k,s,p,d,ceil,size", MAX_CASES)
def test_max_pool3d_matches_torch(k, s, p, d, ceil, size):
    torch = torch_or_skip()
    tx, cx = _pair(torch, arr(2, 3, *size))
    out, ti = torch.nn.functional.max_pool3d(tx, k, s, p, d, ceil, return_indices=True)
    got, ci = F.max_pool3d(cx, k, s, p, d, ceil, return_indices=True)
    close(got, out.detach().numpy())
    np.testing.assert_array_equal(ci.numpy(), ti.numpy())
    _check_grad(torch, out, got, tx, cx)


@pytest.mark.parametrize("k,s,p,ceil,include,div", [
    (3, 2, 1, True, True, None), (3, 2, 1, True, False, None), ((2, 3, 1), (1, 2, 2),
                                                                (1, 1, 0), False, True, 7)])
def test_avg_pool3d_matches_torch(k, s, p, ceil, include, div):
    torch = torch_or_skip()
    tx, cx = _pair(torch, arr(2, 2, 5, 7, 6))
    out = torch.nn.functional.avg_pool3d(tx, k, s, p, ceil, include, div)
    got = F.avg_pool3d(cx, k, s, p, ceil, include, div)
    close(got, out.detach().numpy())
    _check_grad(torch, out, got, tx, cx)


@pytest.mark.parametrize("out_size", [(2, 3, 4), (None, 1, 5), 7, (5, 7, 6)])
@pytest.mark.parametrize("which", ["avg", "max"])
def test_adaptive_pool3d_matches_torch(out_size, which):
    torch = torch_or_skip()
    tx, cx = _pair(torch, arr(2, 2, 5, 7, 6))
    if which == "avg":
        out = torch.nn.functional.adaptive_avg_pool3d(tx, out_size)
        got = F.adaptive_avg_pool3d(cx, out_size)
    else:
        out, ti = torch.nn.functional.adaptive_max_pool3d(tx, out_size, True)
        got, ci = F.adaptive_max_pool3d(cx, out_size, True)
        np.testing.assert_array_equal(ci.numpy(), ti.numpy())
    close(got, out.detach().numpy())
    _check_grad(torch, out, got, tx, cx)


def test_adaptive_max_pool_1d_2d_unbatched_match_torch():
    torch = torch_or_skip()
    TF = torch.nn.functional
    for mine, theirs, x, size in [
            (F.adaptive_max_pool2d_with_indices, TF.adaptive_max_pool2d_with_indices,
             arr(3, 7, 5), (3, 4)),
            (F.adaptive_max_pool1d_with_indices, TF.adaptive_max_pool1d_with_indices,
             arr(3, 7), 3),
            (F.adaptive_max_pool3d_with_indices, TF.adaptive_max_pool3d_with_indices,
             arr(2, 1, 5, 3), (2, 1, 2))]:
        tx, cx = _pair(torch, x)
        (out, ti), (got, ci) = theirs(tx, size), mine(cx, size)
        close(got, out.detach().numpy())
        np.testing.assert_array_equal(ci.numpy(), ti.numpy())
        _check_grad(torch, out, got, tx, cx)


@pytest.mark.parametrize("nd,size,k,out", [
    (2, (9, 8), 2, (4, 5)), (2, (7, 5), (3, 2), (1, 4)), (2, (5, 5), 1, (5, 5)),
    (3, (5, 7, 6), 2, (3, 5, 3)), (3, (7, 5, 6), (3, 1, 2), (2, 4, 1))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fractional_max_pool_matches_torch_with_given_samples(nd, size, k, out, dtype):
    torch = torch_or_skip()
    x = arr(2, 3, *size, dtype=dtype)
    u = np.random.default_rng(sum(size)).random((2, 3, nd)).astype(dtype)
    tx, cx = _pair(torch, x)
    theirs = getattr(torch.nn.functional, f"fractional_max_pool{nd}d_with_indices")
    mine = getattr(F, f"fractional_max_pool{nd}d_with_indices")
    out_t, ti = theirs(tx, k, out, _random_samples=torch.from_numpy(u))
    got, ci = mine(cx, k, out, _random_samples=T(u))
    close(got, out_t.detach().numpy(), 0)
    np.testing.assert_array_equal(ci.numpy(), ti.numpy())
    _check_grad(torch, out_t, got, tx, cx, tol=1e-6 if dtype == np.float32 else 1e-12)
    # unbatched, with an output ratio and a module holding the samples
    ratio = (0.5,) * nd
    m = getattr(torch.nn, f"FractionalMaxPool{nd}d")(k, output_ratio=ratio, return_indices=True,
                                                     _random_samples=torch.from_numpy(u[:1]))
    c = getattr(nn, f"FractionalMaxPool{nd}d")(k, output_ratio=ratio, return_indices=True,
                                               _random_samples=T(u[:1]))
    (a, ai), (b, bi) = m(torch.from_numpy(x[0])), c(T(x[0]))
    close(b, a.numpy(), 0)
    np.testing.assert_array_equal(bi.numpy(), ai.numpy())


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_matches_torch(nd):
    torch = torch_or_skip()
    TF = torch.nn.functional
    x = arr(2, 3, *[7, 5, 6][:nd])
    pooled, ti = getattr(TF, f"max_pool{nd}d")(torch.from_numpy(x), 2, 2, 1,
                                               return_indices=True)
    tv, cv = _pair(torch, pooled.numpy())
    size = x.shape[2:]
    out = getattr(TF, f"max_unpool{nd}d")(tv, ti, 2, 2, 1, output_size=size)
    got = getattr(F, f"max_unpool{nd}d")(cv, T(ti.numpy()), 2, 2, 1, output_size=size)
    close(got, out.detach().numpy())
    _check_grad(torch, out, got, tv, cv)
    m = getattr(torch.nn, f"MaxUnpool{nd}d")(2, 2, 1)
    c = getattr(nn, f"MaxUnpool{nd}d")(2, 2, 1)
    assert repr(c) == repr(m)
    close(c(T(pooled.numpy()[0]), T(ti.numpy()[0]), size), m(pooled[0], ti[0], size).numpy())


def test_lp_pool3d_and_with_indices_names_match_torch():
    torch = torch_or_skip()
    TF = torch.nn.functional
    x = np.abs(arr(2, 2, 5, 4, 7)) + 0.1
    for p, k, s, ceil in [(2.0, 2, None, False), (1.5, (3, 2, 2), 2, True)]:
        tx, cx = _pair(torch, x)
        out, got = TF.lp_pool3d(tx, p, k, s, ceil), F.lp_pool3d(cx, p, k, s, ceil)
        close(got, out.detach().numpy())
        _check_grad(torch, out, got, tx, cx)
    xs = torch.from_numpy(x)
    for name, args in [("max_pool1d_with_indices", (xs[0, :, 0], 2)),
                       ("max_pool2d_with_indices", (xs[0], 2, 1, 1)),
                       ("max_pool3d_with_indices", (xs, 3, 2, 1, 1, True))]:
        (tv, ti), (cv, ci) = getattr(TF, name)(*args), getattr(F, name)(
            *[T(a.numpy()) if isinstance(a, torch.Tensor) else a for a in args])
        close(cv, tv.numpy())
        np.testing.assert_array_equal(ci.numpy(), ti.numpy())
    tv, ti = torch.max_pool1d_with_indices(xs[0, :, 0], 3)
    cv, ci = cg.max_pool1d_with_indices(T(x[0, :, 0]), 3)
    np.testing.assert_array_equal(ci.numpy(), ti.numpy())
    close(cg.max_pool3d(T(x), 2), torch.max_pool3d(xs, 2).numpy())


def test_module_reprs_match_torch():
    torch = torch_or_skip()
    for name, args, kw in [
            ("MaxPool3d", (2,), {}), ("MaxPool3d", ((2, 1, 2), 1, 1, 2, True, True), {}),
            ("AvgPool3d", (2,), {}), ("AvgPool3d", ((2, 3, 1), 1, 1, True, False, 3), {}),
            ("AdaptiveAvgPool3d", ((2, None, 3),), {}), ("AdaptiveMaxPool3d", (2, True), {}),
            ("LPPool3d", (2, 3), {}), ("LPPool3d", (1.5, (2, 3, 1), 2, True), {}),
            ("MaxUnpool1d", (2,), {}), ("MaxUnpool2d", (2, 1, 1), {}),
            ("MaxUnpool3d", ((2, 1, 3),), {}), ("FractionalMaxPool2d", (2,), {"output_size": 3}),
            ("FractionalMaxPool3d", ((2, 1, 1),), {"output_ratio": (0.5, 0.6, 0.7)})]:
        m, c = getattr(torch.nn, name)(*args, **kw), getattr(nn, name)(*args, **kw)
        assert repr(c) == repr(m), name
        for attr in ("kernel_size", "stride", "padding", "output_size", "output_ratio"):
            assert getattr(c, attr, None) == getattr(m, attr, None), (name, attr)


@pytest.mark.parametrize("call", [
    lambda F, t: F.max_pool3d(t(2, 3, 5, 6, 7), 2, 1, 2),
    lambda F, t: F.max_pool3d(t(2, 3, 5, 6, 7), 0, 1, 1),
    lambda F, t: F.max_pool3d(t(3, 5, 6), 2),
    lambda F, t: F.max_pool3d(t(2, 3, 5, 6, 7), 2, 1, 0, (1, 1)),
    lambda F, t: F.avg_pool3d(t(2, 3, 5, 6, 7), 2, (1, 1)),
    lambda F, t: F.avg_pool3d(t(2, 3, 5, 6, 7), 2, 1, (1, 1)),
    lambda F, t: F.avg_pool3d(t(0, 5, 6, 7), 2),
    lambda F, t: F.adaptive_avg_pool3d(t(2, 3, 5, 6, 7), (2, -1, 2)),
    lambda F, t: F.fractional_max_pool3d(t(2, 3, 5, 7, 6), 1, output_size=(1, 7, 1)),
    lambda F, t: F.max_unpool1d(t(3, 5, 3), t(3, 5, 3).long() + 7, 2),
])
def test_error_messages_equal_torch(call):
    torch = torch_or_skip()
    with pytest.raises(Exception) as theirs:
        call(torch.nn.functional, lambda *s: torch.zeros(s))
    with pytest.raises(type(theirs.value)) as mine:
        call(F, lambda *s: cg.zeros(*s))
    assert str(mine.value) == str(theirs.value)
