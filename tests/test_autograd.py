"""Autograd: gradcheck over every differentiable registry row (float64 finite differences),
second order on a sub-table, accumulation, hooks, grad modes and the safety checks."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import clgraph as cg
from clgraph import runtime
from clgraph.autograd import gradcheck, gradgradcheck
from clgraph.ops.registry import REGISTRY
from conftest import close, torch_or_skip
from op_cases import CASES

F64 = cg.float64


def leaf(*shape, low=-1.0, high=1.0, seed=0):
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    return cg.from_numpy(rng.uniform(low, high, shape)).requires_grad_()


def pos(*shape, seed=0):
    return leaf(*shape, low=0.5, high=2.0, seed=seed)


# One or more gradchecked functions per differentiable row. Inputs use broadcasting and
# non-contiguous views where the op allows.
GRAD_CASES = {
    "neg": [lambda: ((lambda x: -x), (leaf(3, 2),))],
    "abs": [lambda: (cg.abs, (leaf(3, 4) + 0.05,))],
    "sign": [lambda: (cg.sign, (leaf(3) + 0.05,))],
    "floor": [lambda: (cg.floor, (leaf(3) + 0.05,))],
    "ceil": [lambda: (cg.ceil, (leaf(3) + 0.05,))],
    "round": [lambda: (cg.round, (leaf(3) + 0.05,))],
    "relu": [lambda: (cg.relu, (leaf(4, 3).t() + 0.05,))],
    "exp": [lambda: (cg.exp, (leaf(2, 3).t(),))],
    "log": [lambda: (cg.log, (pos(3, 2),))],
    "log1p": [lambda: (cg.log1p, (pos(3),))],
    "expm1": [lambda: (cg.expm1, (leaf(3),))],
    "sqrt": [lambda: (cg.sqrt, (pos(2, 2),))],
    "rsqrt": [lambda: (cg.rsqrt, (pos(3),))],
    "sin": [lambda: (cg.sin, (leaf(3),))],
    "cos": [lambda: (cg.cos, (leaf(3),))],
    "tanh": [lambda: (cg.tanh, (leaf(3, 2),))],
    "sigmoid": [lambda: (cg.sigmoid, (leaf(3, 2),))],
    "erf": [lambda: (cg.erf, (leaf(3),))],
    "reciprocal": [lambda: (cg.reciprocal, (pos(3),))],
    "to_dtype": [lambda: ((lambda x: x.to(cg.float64, copy=True) * 2), (leaf(3),))],
    "add": [lambda: (cg.add, (leaf(2, 3), leaf(3, seed=1))),
            lambda: ((lambda a: a + 2.5), (leaf(2, 2),))],
    "sub": [lambda: (cg.sub, (leaf(2, 1), leaf(1, 3, seed=1)))],
    "mul": [lambda: (cg.mul, (leaf(3, 2).t(), leaf(3, seed=1)))],
    "div": [lambda: (cg.div, (leaf(2, 3), pos(2, 1, seed=1)))],
    "floor_divide": [lambda: (cg.floor_divide, (leaf(3) * 5 + 0.1, pos(3, seed=1)))],
    "remainder": [lambda: (cg.remainder, (leaf(3) * 3 + 0.1, pos(1, seed=1) + 0.31))],
    "fmod": [lambda: (cg.fmod, (leaf(3) * 3 + 0.1, pos(1, seed=1) + 0.31))],
    "pow": [lambda: (cg.pow, (pos(2, 3), leaf(3, seed=1))),
            lambda: ((lambda a: a ** 3), (leaf(3),))],
    "maximum": [lambda: (cg.maximum, (leaf(2, 3), leaf(3, seed=1)))],
    "minimum": [lambda: (cg.minimum, (leaf(2, 3), leaf(3, seed=1)))],
    "clamp_min": [lambda: ((lambda x, lo: cg.clamp(x, min=lo)), (leaf(2, 3), leaf(3, seed=1))),
                  lambda: ((lambda x: x.clamp(min=-0.2)), (leaf(2, 3),))],
    "clamp_max": [lambda: ((lambda x, hi: cg.clamp(x, max=hi)), (leaf(2, 3), leaf(3, seed=1))),
                  lambda: ((lambda x: x.clamp(-0.5, 0.3)), (leaf(2, 3),))],
    "atan2": [lambda: (cg.atan2, (leaf(3), pos(3, seed=1)))],
    "binary_cross_entropy": [lambda: (cg.nn.functional.binary_cross_entropy,
                                      (pos(3) * 0.4, pos(3, seed=1) * 0.4))],
    "threshold_backward": [lambda: ((lambda g: cg.ops.registry.apply(
        REGISTRY["threshold_backward"], g, cg.tensor([1.0, -1.0, 2.0], dtype=F64))),
        (leaf(3),))],
    "where": [lambda: ((lambda a, b: cg.where(a > 0, a, b)), (leaf(2, 3), leaf(3, seed=1)))],
    "addcmul": [lambda: ((lambda x, a, b: cg.addcmul(x, a, b, value=0.5)),
                         (leaf(2, 3), leaf(3, seed=1), leaf(2, 1, seed=2))),
                lambda: ((lambda a, b: cg.add(a, b, alpha=-1.5)), (leaf(2, 3), leaf(3, seed=1)))],
    "addcdiv": [lambda: ((lambda x, a, b: cg.addcdiv(x, a, b, value=2.0)),
                         (leaf(2, 3), leaf(3, seed=1), pos(2, 1, seed=2)))],
    "lerp": [lambda: ((lambda x, e: cg.lerp(x, e, 0.3)), (leaf(2, 3), leaf(3, seed=1))),
             lambda: (cg.lerp, (leaf(3), leaf(3, seed=1), leaf(2, 1, seed=2)))],
    "view": [lambda: ((lambda x: x.view(6, 2) * 1), (leaf(3, 4),))],
    "permute": [lambda: ((lambda x: x.permute(2, 0, 1) * 1), (leaf(2, 3, 2),))],
    "expand": [lambda: ((lambda x: x.expand(3, 2, 4) * 1), (leaf(2, 1),))],
    "squeeze": [lambda: ((lambda x: x.squeeze(1) * 1), (leaf(3, 1),))],
    "unsqueeze": [lambda: ((lambda x: x.unsqueeze(0) * 1), (leaf(3),))],
    "slice": [lambda: ((lambda x: x[1:, ::2] * 1), (leaf(3, 5),))],
    # the row itself (slice's VJP), so its own VJP, a slice of the gradient, is checked
    "slice_backward": [lambda: ((lambda g: cg.ops.registry.apply(
        REGISTRY["slice_backward"], g, shape=(3, 4),
        index=(slice(1, None, None), slice(None, None, 2)))), (leaf(2, 2),))],
    "matmul": [lambda: (cg.matmul, (leaf(3, 4), leaf(4, 2, seed=1))),
               lambda: (cg.matmul, (leaf(2, 1, 3, 4), leaf(3, 4, 2, seed=1))),
               lambda: (cg.matmul, (leaf(4), leaf(4, 2, seed=1)))],
    "linear": [lambda: (cg.nn.functional.linear, (leaf(3, 4), leaf(2, 4, seed=1),
                                                  leaf(2, seed=2))),
               lambda: (cg.nn.functional.linear, (leaf(2, 3, 4), leaf(2, 4, seed=1).t().t(),
                                                  leaf(2, seed=2)))],
    "index": [lambda: ((lambda x: x[cg.tensor([0, 2, 0])]), (leaf(3, 2),)),
              lambda: ((lambda x: x[x > 0]), (leaf(4, 3),)),
              lambda: ((lambda x: x[:, [1, 1, 0]]), (leaf(2, 3).t(),))],
    "index_put": [lambda: ((lambda x, v: cg.index_put(x, (cg.tensor([0, 2]),), v)),
                           (leaf(3, 2), leaf(2, 2, seed=1))),
                  lambda: ((lambda x, v: cg.index_put(x, (cg.tensor([1, 1]),), v, True)),
                           (leaf(3), leaf(2, seed=1)))],
    "gather": [lambda: ((lambda x: cg.gather(x, 1, cg.tensor([[0, 0], [1, 0]]))),
                        (leaf(2, 3),))],
    "scatter": [lambda: ((lambda x, s: cg.scatter(x, 0, cg.tensor([[1, 0, 2]]), s)),
                         (leaf(3, 3), leaf(1, 3, seed=1)))],
    "scatter_add": [lambda: ((lambda x, s: cg.scatter_add(x, 0, cg.tensor([[1, 1, 2]]), s)),
                             (leaf(3, 3), leaf(1, 3, seed=1)))],
    "scatter_reduce": [
        lambda r=r, inc=inc: ((lambda x, s: cg.scatter_reduce(
            x, 0, cg.tensor([[1, 1, 2], [0, 1, 1]]), s, r, include_self=inc)),
            (leaf(3, 3), leaf(3, 3, seed=1)))
        for r in ("sum", "prod", "mean", "amax", "amin") for inc in (True, False)],
    "index_select": [lambda: ((lambda x: cg.index_select(x, 0, cg.tensor([2, 0, 2]))),
                              (leaf(3, 2),))],
    "index_add": [lambda: ((lambda x, s: cg.index_add(x, 0, cg.tensor([1, 1]), s, alpha=2)),
                           (leaf(3, 2), leaf(2, 2, seed=1)))],
    "masked_fill": [lambda: ((lambda x: cg.masked_fill(x, cg.tensor([True, False, True]), 0.5)),
                             (leaf(2, 3),))],
    "masked_select": [lambda: ((lambda x: cg.masked_select(x, cg.tensor([True, False, True]))),
                               (leaf(2, 3),))],
    "cat": [lambda: ((lambda a, b: cg.cat([a, b], dim=1)), (leaf(2, 2), leaf(2, 3, seed=1))),
            lambda: ((lambda a, b: cg.stack([a, b])), (leaf(3), leaf(3, seed=1)))],
    "tril": [lambda: ((lambda x: cg.tril(x, -1)), (leaf(3, 3),))],
    "triu": [lambda: ((lambda x: cg.triu(x)), (leaf(3, 4),))],
    "flip": [lambda: ((lambda x: cg.flip(x, (0, 1))), (leaf(3, 2),))],
    "diagonal": [lambda: ((lambda x: cg.diagonal(x, 1, 2, 0)), (leaf(3, 2, 4),))],
    "diagonal_backward": [lambda: ((lambda v: cg.diag(v, -1)), (leaf(3),))],
    # complex values through their real views: (x0 + i x1)^2 and its real and imaginary parts
    "view_as_complex": [lambda: ((lambda x: cg.view_as_real(cg.view_as_complex(x) ** 2)),
                                 (leaf(3, 2),))],
    "view_as_real": [lambda: ((lambda x: cg.view_as_real(cg.view_as_complex(x).exp() * 1j)),
                              (leaf(3, 2),))],
    # eigenvalues (a real matrix: conjugate pairs) and eigenvector moduli (phase-free)
    "linalg_eig": [lambda: ((lambda a: (cg.view_as_real(cg.linalg.eig(a).eigenvalues),
                                        cg.linalg.eig(a).eigenvectors.abs())),
                            (leaf(3, 3),))],
    # an in-place write of complex values (copy_ into a complex tensor)
    "complex_assign": [lambda: ((lambda x: cg.view_as_real(cg.zeros(3, dtype=cg.complex128).copy_(
        cg.view_as_complex(x) * (2 + 1j)))), (leaf(3, 2),))],
    # lengths 8 (radix-2 passes) and 6 (Bluestein: chirps around length-16 passes)
    "fft_pow2": [lambda: ((lambda x: cg.view_as_real(cg.fft.fft(cg.view_as_complex(x)))),
                          (leaf(2, 8, 2),)),
                 lambda: ((lambda x: cg.view_as_real(cg.fft.ifft(cg.view_as_complex(x)))),
                          (leaf(6, 2),))],
}

GRAD_CASES.update({
    "sum": [lambda: ((lambda x: x.sum()), (leaf(3, 2),)),
            lambda: ((lambda x: x.t().sum(dim=(0,), keepdim=True)), (leaf(3, 2),))],
    "mean": [lambda: ((lambda x: x.mean(dim=-1)), (leaf(2, 3, 2),))],
    "prod": [lambda: ((lambda x: x.prod(dim=1)), (leaf(3, 3),)),
             lambda: ((lambda x: (x * cg.tensor([1.0, 0.0, 1.0], dtype=F64)).prod(dim=1)),
                      (leaf(2, 3),))],
    "amax": [lambda: ((lambda x: cg.amax(x, dim=0)), (leaf(3, 2),))],
    "amin": [lambda: ((lambda x: cg.amin(x, dim=(0, 1))), (leaf(3, 2),))],
    "max": [lambda: ((lambda x: x.max(dim=1).values), (leaf(3, 4),)),
            lambda: ((lambda x: x.max()), (leaf(3, 4),))],
    "min": [lambda: ((lambda x: x.min(dim=0, keepdim=True)[0]), (leaf(3, 4),))],
    "norm": [lambda: ((lambda x: x.norm()), (leaf(3, 2),)),
             lambda: ((lambda x: x.norm(p=3, dim=1)), (leaf(3, 2),))],
    "var": [lambda: ((lambda x: x.var(dim=1)), (leaf(3, 4),)),
            lambda: ((lambda x: x.var(correction=0)), (leaf(5),))],
    "std": [lambda: ((lambda x: x.std(dim=0)), (leaf(4, 2),))],
    # two outputs of one node: both used, or one (the other's gradient is zero)
    "var_mean": [lambda: ((lambda x: cg.var_mean(x, dim=1)), (leaf(3, 4),)),
                 lambda: ((lambda x: cg.var_mean(x)[1] * 2), (leaf(5),)),
                 lambda: ((lambda x: cg.var_mean(x, dim=0)[0]), (leaf(4, 2),))],
    "std_mean": [lambda: ((lambda x: cg.std_mean(x, dim=0)), (leaf(4, 2),))],
    "logsumexp": [lambda: ((lambda x: cg.logsumexp(x, dim=1)), (leaf(3, 4),))],
    "softmax": [lambda: ((lambda x: x.softmax(dim=-1)), (leaf(3, 4),)),
                lambda: ((lambda x: x.softmax(dim=0)), (leaf(3, 4).t(),))],
    "log_softmax": [lambda: ((lambda x: x.log_softmax(dim=1)), (leaf(2, 5),))],
    "cumsum": [lambda: ((lambda x: x.cumsum(dim=1)), (leaf(2, 4),))],
})

_CONV = cg.ops.conv
# conv.cl's GEOM: C=2, 5x6 image, 2x3 kernel, stride (2, 1), padding (1, 0), dilation
# (1, 2): a 3x2 output
_GEOM = (2, 5, 6, 2, 3, 2, 1, 1, 0, 1, 2, 3, 2)
_MP = dict(kernel_size=(2, 2), stride=(1, 2), padding=(1, 0), dilation=(1, 1), ceil_mode=True)
_AP = dict(kernel_size=(2, 2), stride=(1, 2), padding=(1, 1), ceil_mode=True,
           count_include_pad=False, divisor_override=None)
GRAD_CASES.update({
    "im2col": [lambda: ((lambda x: _CONV.unfold(x, (2, 3), dilation=(1, 2), padding=1,
                                                stride=(2, 1))), (leaf(1, 2, 3, 4),)),
               lambda: ((lambda x, w, b: cg.conv2d(x, w, b, padding=1)),
                        (leaf(2, 2, 3, 3), leaf(2, 2, 2, 2, seed=1), leaf(2, seed=2)))],
    # implicit-GEMM convolution rows (the GPU path), called directly on any device:
    # stride, dilation and asymmetric padding; each VJP is another of the three rows
    "conv2d_gemm": [lambda: ((lambda x, w: cg.ops.registry.apply(
        REGISTRY["conv2d_gemm"], x, w, geom=_GEOM)), (leaf(2, 2, 5, 6), leaf(3, 2, 2, 3)))],
    "conv2d_gemm_dx": [lambda: ((lambda g, w: cg.ops.registry.apply(
        REGISTRY["conv2d_gemm_dx"], g, w, geom=_GEOM)), (leaf(2, 3, 3, 2), leaf(3, 2, 2, 3)))],
    "conv2d_gemm_dw": [lambda: ((lambda g, x: cg.ops.registry.apply(
        REGISTRY["conv2d_gemm_dw"], g, x, geom=_GEOM)), (leaf(2, 3, 3, 2), leaf(2, 2, 5, 6)))],
    # a 1x1 convolution is one batched GEMM (its weight broadcast over the batch)
    "conv2d_1x1": [lambda: ((lambda x, w, b: cg.conv2d(x, w, b)),
                            (leaf(2, 3, 2, 3), leaf(4, 3, 1, 1, seed=1), leaf(4, seed=2)))],
    "col2im": [lambda: ((lambda c: _CONV.fold(c, (3, 4), 2, padding=(0, 1), stride=(1, 2))),
                        (leaf(1, 8, 6),))],
    "transpose_copy": [lambda: ((lambda x: cg.ops.registry.apply(
        REGISTRY["transpose_copy"], x)), (leaf(3, 2, 4).permute(2, 0, 1),))],
    "max_pool2d": [lambda: ((lambda x: _CONV.max_pool2d(x, 2, 1, 1, dilation=(2, 1))),
                            (leaf(1, 2, 4, 3),))],
    "max_pool2d_backward": [lambda: ((lambda g: cg.ops.registry.apply(
        REGISTRY["max_pool2d_backward"], g, leaf(1, 2, 4, 3, seed=3).detach(), **_MP)),
        (leaf(1, 2, 5, 2),))],
    "avg_pool2d": [lambda: ((lambda x: _CONV.avg_pool2d(x, 2, (1, 2), 1, ceil_mode=True,
                                                        count_include_pad=False)),
                            (leaf(1, 2, 3, 4),))],
    "avg_pool2d_backward": [lambda: ((lambda g: cg.ops.registry.apply(
        REGISTRY["avg_pool2d_backward"], g, input_size=(3, 4), **_AP)), (leaf(1, 2, 4, 3),))],
    "adaptive_avg_pool2d": [lambda: ((lambda x: _CONV.adaptive_avg_pool2d(x, (2, 3))),
                                     (leaf(1, 2, 3, 5),))],
    "adaptive_avg_pool2d_backward": [lambda: ((lambda g: cg.ops.registry.apply(
        REGISTRY["adaptive_avg_pool2d_backward"], g, input_size=(3, 5))), (leaf(1, 2, 2, 3),))],
})

# recurrent cells (ops/rnn.py): each VJP is the fused backward kernel, or composed ops under
# create_graph (second order below)
GRAD_CASES.update({
    "lstm_cell": [lambda: ((lambda xg, hg, c: cg.ops.rnn.lstm_cell(xg, hg, c)),
                           (leaf(3, 8), leaf(3, 8, seed=1), leaf(3, 2, seed=2)))],
    "split_views": [lambda: ((lambda x: tuple(t * (i + 1) for i, t in enumerate(
        cg.ops.join.split_views(x, (2, 3, 1), 1)))), (leaf(2, 6),))],
    "gru_cell": [lambda: ((lambda x, hm, b, h: cg.ops.rnn.gru_cell(x, hm, b, h)),
                          (leaf(3, 6), leaf(3, 6, seed=1), leaf(6, seed=2),
                           leaf(3, 2, seed=3)))],
})

# the fused normalizations (tests/test_norm_fused.py checks them further)
GRAD_CASES.update({
    "layer_norm": [lambda: ((lambda x, w, b: cg.nn.functional.layer_norm(x, (2, 4), w, b)),
                            (leaf(3, 2, 4), leaf(2, 4, seed=1), leaf(2, 4, seed=2)))],
    "rms_norm": [lambda: ((lambda x, w: cg.nn.functional.rms_norm(x, (4,), w, 1e-3)),
                          (leaf(3, 4).t().t(), leaf(4, seed=1)))],
})

# the fused cross entropy (tests/test_cross_entropy_fused.py checks it further)
GRAD_CASES.update({
    "cross_entropy": [
        lambda: ((lambda x: cg.nn.functional.cross_entropy(x, cg.tensor([2, 0, -100, 3]))),
                 (leaf(4, 5),)),
        lambda: ((lambda x, s: cg.nn.functional.cross_entropy(
            x, cg.tensor([1, 4, 0]), cg.tensor([0.5, 1.0, 2.0, 1.5, 0.7], dtype=cg.float64),
            reduction="none", label_smoothing=0.2) * s), (leaf(3, 5), leaf(3, seed=1))),
        lambda: ((lambda x: cg.nn.functional.cross_entropy(
            x, cg.tensor([[1, 0, 2], [2, 2, 1]]), cg.tensor([0.5, 2.0, 1.0], dtype=cg.float64),
            ignore_index=0, label_smoothing=0.1)), (leaf(2, 3, 3),))],
})

# special functions and two-operand rows (ops/elementwise.py)
GRAD_CASES.update({
    "logaddexp": [lambda: (cg.logaddexp, (leaf(2, 3), leaf(3, seed=1)))],
    "logaddexp2": [lambda: (cg.logaddexp2, (leaf(2, 3).t(), leaf(2, seed=1)))],
    "hypot": [lambda: (cg.hypot, (leaf(2, 3), leaf(3, seed=1)))],
    "xlogy": [lambda: (cg.xlogy, (leaf(2, 3), pos(3, seed=1))),
              lambda: ((lambda b: cg.xlogy(2.0, b)), (pos(3),))],
    "copysign": [lambda: (cg.copysign, (leaf(2, 3), leaf(3, seed=1)))],
    # PyTorch's derivative of nextafter: 1 in input, 0 in other
    "nextafter": [lambda: (cg.nextafter, (leaf(2, 3), leaf(3, seed=1)))],
    "digamma": [lambda: (cg.digamma, (leaf(3, 4, low=-2.7, high=4),))],
    "lgamma": [lambda: (cg.lgamma, (leaf(3, 4, low=-2.7, high=4),))],
    "polygamma": [lambda: ((lambda x: cg.polygamma(2, x)), (leaf(3, 4, low=-2.7, high=4),)),
                  lambda: ((lambda x: cg.polygamma(1, x)), (leaf(3, 4, low=0.3, high=6),))],
    "erfinv": [lambda: (cg.erfinv, (leaf(3, 4, low=-0.95, high=0.95),))],
    "_i1": [lambda: ((lambda x: cg.ops.registry.apply(REGISTRY["_i1"], x)),
                     (leaf(3, 4, low=-6, high=6),))],
    "frexp_mantissa": [lambda: ((lambda x: cg.frexp(x)[0]), (leaf(3, 4, low=-40, high=40),))],
    # the gradient in x only: PyTorch defines none in a
    "igamma": [lambda: ((lambda x: cg.igamma(pos(2, 3, seed=2).detach() * 3, x)),
                        (pos(3, seed=1),))],
    "igammac": [lambda: ((lambda x: cg.igammac(pos(2, 3, seed=2).detach() * 3, x)),
                         (pos(3, seed=1),))],
    # the packed LU factors of a batch of square matrices, of a wide and of a tall one
    "lu_factor": [lambda: ((lambda a: cg.lu(a)[0]), (leaf(2, 3, 3, seed=3),)),
                  lambda: ((lambda a: cg.lu(a)[0]), (leaf(3, 5, seed=3),)),
                  lambda: ((lambda a: cg.lu(a)[0].t()), (leaf(5, 3, seed=3),))],
})

# rows whose cases live elsewhere in the table or that are deliberately not differentiable
NOT_DIFFERENTIABLE = {"as_strided"}
# rows gradchecked in another module: the fused attention takes float32 only, and
# tests/test_attention.py checks its VJP (and second order) against the float64 composition
CHECKED_ELSEWHERE = {"sdpa_flash",
                     # tests/test_decomp.py gradchecks every factorization row
                     "linalg_cholesky", "linalg_eigh", "linalg_inv", "linalg_pinv", "linalg_qr",
                     "linalg_svdvals", "cholesky_solve",
                     "linalg_slogdet", "linalg_solve", "linalg_solve_triangular", "linalg_svd",
                     # tests/test_pool3d.py gradchecks the 3-d pooling rows
                     "max_pool3d", "max_pool3d_backward", "avg_pool3d", "avg_pool3d_backward",
                     "adaptive_avg_pool3d", "adaptive_avg_pool3d_backward",
                     # tests/test_parity_linalg_extra.py gradchecks cholesky_ex
                     "linalg_cholesky_ex"}
# moves between devices: with one device it is exercised as a round trip to the last device
# a unary elementwise row needs no entry of its own: its op_cases row gives the domain, and
# it is gradchecked on a (3, 4) input there
for _case in CASES:
    if _case.nargs == 1 and _case.op not in GRAD_CASES and REGISTRY[_case.op].differentiable:
        GRAD_CASES[_case.op] = [lambda c=_case: (
            getattr(cg, c.op, None) or (lambda x, o=REGISTRY[c.op]: cg.ops.registry.apply(o, x)),
            (leaf(3, 4, low=c.low, high=c.high),))]

GRAD_CASES["to_device"] = [lambda: ((lambda x: x.to(cg.cl.devices()[-1]["name"])
                                     .to(x.device, copy=True) * 2), (leaf(3),))]


def _cases():
    for name, fns in GRAD_CASES.items():
        for i, f in enumerate(fns):
            yield pytest.param(f, id=f"{name}-{i}")


@pytest.mark.parametrize("make", list(_cases()))
def test_gradcheck(make):
    fn, inputs = make()
    inputs = tuple(i.detach().requires_grad_() for i in inputs)
    assert gradcheck(fn, inputs)


SECOND_ORDER = ["exp", "log", "tanh", "sigmoid", "mul", "div", "pow", "matmul", "sqrt",
                "sin", "expand", "slice", "sum", "mean", "softmax", "log_softmax", "logsumexp",
                "var", "var_mean", "prod", "max", "gather", "index_select", "cat",
                "conv2d_gemm", "conv2d_gemm_dx", "conv2d_gemm_dw", "lstm_cell", "gru_cell",
                "layer_norm", "rms_norm", "cross_entropy", "digamma", "lgamma", "polygamma",
                "erfinv", "logaddexp", "xlogy"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_gradgradcheck(name):
    fn, inputs = GRAD_CASES[name][0]()
    inputs = tuple(i.detach().requires_grad_() for i in inputs)
    assert gradgradcheck(fn, inputs)


def test_every_differentiable_row_is_gradchecked():
    rows = {n for n, op in REGISTRY.items() if op.differentiable and op.family != "elementwise"
            or (op.family == "elementwise" and op.differentiable and op.name != "fill")}
    missing = rows - set(GRAD_CASES) - NOT_DIFFERENTIABLE - CHECKED_ELSEWHERE
    assert not missing, f"differentiable rows without a gradcheck case: {sorted(missing)}"
    no_vjp = {n for n in rows - NOT_DIFFERENTIABLE if REGISTRY[n].vjp is None}
    assert not no_vjp, f"differentiable rows without a VJP: {sorted(no_vjp)}"


def test_seed_tutorial_autograd():
    x = cg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = ((x + 2) * (x + 2) * 3).mean()
    assert "grad_fn=<MeanBackward0>" in repr(out)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.5 * (x.detach().numpy() + 2))
    t = cg.tensor([1.0], requires_grad=True)
    (t * 2).backward()
    assert t.grad.tolist() == [2.0]


def test_accumulation_and_zeroing():
    w = cg.tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    assert w.grad.tolist() == [6.0, 6.0]
    w.grad = None
    (w * w).sum().backward()
    assert w.grad.tolist() == [2.0, 4.0]


def test_backward_twice_needs_retain_graph():
    x = cg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_inplace_change_of_saved_tensor_is_caught():
    x = cg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = (y * y).sum()
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()
    a = cg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        a.add_(1)


def test_inplace_on_graph_tensor_is_differentiated():
    x = cg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y += 1  # add_ does not need its inputs' values
    y.relu_()
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


# In-place ops on graph tensors whose VJP reads the overwritten value: the node keeps a
# copy of it, so each gives the out-of-place form's gradients (float64, gradcheck too).
_IN_PLACE_READING_SELF = {
    "mul_": (lambda y, o: y.mul_(o), lambda y, o: y * o),
    "div_": (lambda y, o: y.div_(o.abs() + 1), lambda y, o: y / (o.abs() + 1)),
    "clamp_": (lambda y, o: y.clamp_(-0.3, 0.4), lambda y, o: y.clamp(-0.3, 0.4)),
    "clamp_min_": (lambda y, o: y.clamp_min_(0.1), lambda y, o: y.clamp_min(0.1)),
    "pow_": (lambda y, o: y.abs_().pow_(o), lambda y, o: y.abs().pow(o)),
    "abs_": (lambda y, o: y.abs_() * o, lambda y, o: y.abs() * o),
    "masked_fill_": (lambda y, o: y.masked_fill_(o > 0.2, -2.0) * o,
                     lambda y, o: y.masked_fill(o > 0.2, -2.0) * o),
    "index_add_": (lambda y, o: y.index_add_(0, cg.tensor([2, 0]), o[:2] * o[:2]),
                   lambda y, o: y.index_add(0, cg.tensor([2, 0]), o[:2] * o[:2])),
    "scatter_": (lambda y, o: y.scatter_(1, cg.tensor([[1, 0, 2]] * 3), o) * y,
                 lambda y, o: (lambda r: r * r)(y.scatter(1, cg.tensor([[1, 0, 2]] * 3), o))),
}


@pytest.mark.parametrize("name", sorted(_IN_PLACE_READING_SELF))
def test_inplace_ops_that_read_the_old_value(name):
    in_place, out_of_place = _IN_PLACE_READING_SELF[name]
    grads = []
    for f in (in_place, out_of_place):
        x, o = leaf(3, 3), leaf(3, 3, seed=2)
        (f(x * 1, o) * cg.arange(9.0).reshape(3, 3)).sum().backward()
        grads.append([None if g is None else g.numpy() for g in (x.grad, o.grad)])
    for g_in, g_out in zip(*grads):
        assert (g_in is None) == (g_out is None), name
        if g_in is not None:
            np.testing.assert_allclose(g_in, g_out, rtol=1e-12, err_msg=name)
    assert gradcheck(lambda x, o: in_place(x * 1, o), (leaf(3, 3), leaf(3, 3, seed=2)))


def test_attention_mask_filled_in_place():
    q = leaf(4, 5)
    mask = cg.tensor(np.triu(np.ones((4, 4), bool), 1))

    def f(q):
        s = q @ q.t()
        s.masked_fill_(mask, float("-inf"))
        return s.softmax(-1)

    assert gradcheck(f, (q,))


def test_view_taken_before_an_inplace_write_of_its_base():
    """A view made before its base was written in place stands for the new values."""
    a, b = leaf(3), leaf(3, seed=1)
    y = a * 1
    v = y[:2]
    y.mul_(b)
    v.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.r_[b.detach().numpy()[:2], 0])
    np.testing.assert_allclose(b.grad.numpy(), np.r_[a.detach().numpy()[:2], 0])
    # written through another view, and through setitem
    a = leaf(4)
    y = a * 2
    v, w = y[1:], y[:2]
    w.mul_(3)
    y[3] = 0.0
    (v * cg.tensor([1.0, 10.0, 100.0], dtype=cg.float64)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 6.0, 20.0, 0.0])


def test_overwritten_graph_tensors_stay_in_the_graph():
    """fill_, zero_, uniform_ and normal_ on a graph tensor: PyTorch keeps it in the graph
    and its old value gets zero gradients; on a leaf they raise."""
    for fill in (lambda y: y.fill_(2.0), lambda y: y.zero_(), lambda y: y.uniform_(),
                 lambda y: y.normal_()):
        a, b = leaf(3), leaf(3, seed=1)
        y = a * 1
        fill(y)
        assert y.requires_grad and y.grad_fn is not None
        (y * b).sum().backward()
        assert a.grad.tolist() == [0.0, 0.0, 0.0]
        np.testing.assert_allclose(b.grad.numpy(), y.detach().numpy())
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            fill(leaf(3))
    a = leaf(4)
    y = a * 1
    y[1:3].uniform_()
    (y * 2).sum().backward()
    assert a.grad.tolist() == [2.0, 0.0, 0.0, 2.0]


def test_binary_cross_entropy_gradient_at_saturated_probabilities():
    """PyTorch's closed form (x - t) / max(x (1 - x), 1e-12): finite at x = 0 and 1."""
    x = cg.tensor([20.0, -20.0, 0.5], requires_grad=True)
    t = cg.tensor([0.0, 1.0, 1.0])
    cg.nn.BCELoss()(cg.sigmoid(x), t).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, -1 / 3, (1 / (1 + np.exp(-0.5)) - 1) / 3],
                               rtol=1e-6, atol=1e-7)
    p, tt = pos(5) * 0.4, leaf(5, seed=3).detach().abs()
    assert gradcheck(lambda p: cg.nn.functional.binary_cross_entropy(p, tt), (p,))
    assert gradcheck(lambda t: cg.nn.functional.binary_cross_entropy(p.detach(), t),
                     (tt.clone().requires_grad_(),))


def test_grad_modes_as_pytorch():
    x = cg.tensor([1.0, 0.0], requires_grad=True)

    @cg.no_grad
    def bare(t):
        return t * 2

    @cg.enable_grad
    def on(t):
        return t * 2

    assert not bare(x).requires_grad
    with cg.no_grad():
        assert on(x).requires_grad
    with cg.inference_mode():
        assert cg.is_inference_mode_enabled() and not cg.is_grad_enabled()
    assert not cg.is_inference_mode_enabled() and cg.is_grad_enabled()
    assert not cg.inference_mode(lambda t: t * 2)(x).requires_grad
    with cg.inference_mode(False):
        assert (x * 2).requires_grad
    # materialized gradients of unused inputs have the inputs' shapes
    b = cg.ones(3, requires_grad=True)
    ga, gb = cg.autograd.grad((x * x).sum(), [x, b], allow_unused=True,
                              materialize_grads=True)
    assert gb.shape == (3,) and gb.tolist() == [0.0] * 3
    # anomaly detection names the node that made a NaN
    with cg.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="'LogBackward0' returned nan values"):
            (x.log() * 0).sum().backward()


def test_grad_fn_names_as_pytorch():
    x = cg.tensor([[0.1, -0.2]], requires_grad=True)
    w = cg.ones(3, 2)
    assert cg.nn.functional.linear(x, w, cg.ones(3)).grad_fn.name() == "AddmmBackward0"
    assert x.sum().grad_fn.name() == "SumBackward0"
    assert x.sum(0).grad_fn.name() == "SumBackward1"
    assert x.mean(1).grad_fn.name() == "MeanBackward1"
    assert x[0].grad_fn.name() == "SelectBackward0"
    assert x[:, 1:].grad_fn.name() == "SliceBackward0"
    assert x[:, 0].grad_fn.name() == "SelectBackward0"
    assert "grad_fn=<AddmmBackward0>" in repr(cg.nn.Linear(2, 3)(x))
    assert cg.ones(3)._version == 0 and cg.randn(2)._version == 0


def test_nonscalar_backward_needs_gradient():
    x = cg.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        y.backward()
    y.backward(cg.tensor([1.0, 2.0, 3.0]))
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_autograd_grad_options():
    x = cg.tensor([1.0, 2.0], requires_grad=True)
    z = cg.tensor([3.0], requires_grad=True)
    y = (x * x).sum()
    (gx,) = cg.autograd.grad(y, x, retain_graph=True)
    assert gx.tolist() == [2.0, 4.0] and x.grad is None
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        cg.autograd.grad(y, (x, z), retain_graph=True)
    gx, gz = cg.autograd.grad(y, (x, z), allow_unused=True, retain_graph=True)
    assert gz is None
    (g2,) = cg.autograd.grad(y, x, grad_outputs=cg.tensor(2.0))
    assert g2.tolist() == [4.0, 8.0]


def test_hessian_vector_product_and_penalty():
    x = cg.tensor([1.0, 2.0, 3.0], dtype=F64, requires_grad=True)
    y = (x ** 3).sum()
    (g,) = cg.autograd.grad(y, x, create_graph=True)
    v = cg.tensor([1.0, 0.5, 0.25], dtype=F64)
    (hv,) = cg.autograd.grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.numpy(), 6 * x.detach().numpy() * v.numpy())
    w = cg.tensor([0.5, -1.0], requires_grad=True)
    inp = cg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = (inp @ w).tanh().sum()
    (gi,) = cg.autograd.grad(out, inp, create_graph=True)
    penalty = (gi * gi).sum()
    penalty.backward()
    assert w.grad is not None and w.grad.shape == (2,)


def test_hooks_and_retain_grad():
    x = cg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    y = x * 3
    y.retain_grad()
    h = y.register_hook(lambda g: g * 2)
    y.sum().backward()
    assert y.grad.tolist() == [2.0, 2.0]
    assert x.grad.tolist() == [6.0, 6.0] and seen == [[6.0, 6.0]]
    h.remove()


def test_hook_handles_are_removable_handles():
    x = cg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handles = [x.register_hook(lambda g: seen.append("tensor")),
               x.register_post_accumulate_grad_hook(lambda t: seen.append("post"))]
    assert all(isinstance(h, cg.utils.hooks.RemovableHandle) for h in handles)
    assert handles[0].id != handles[1].id
    (x * 2).sum().backward()
    assert seen == ["tensor", "post"]
    with handles[0]:
        pass  # leaving the block removes the hook, as torch's handle does
    handles[1].remove()
    handles[1].remove()
    (x * 2).sum().backward()
    assert seen == ["tensor", "post"] and x.grad.tolist() == [4.0, 4.0]


def test_grad_modes():
    x = cg.ones(2, requires_grad=True)
    with cg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    with cg.no_grad():
        with cg.enable_grad():
            assert (x * 2).requires_grad

    @cg.no_grad()
    def f(a):
        return a * 2

    assert not f(x).requires_grad
    with cg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad

    @cg.set_grad_enabled(False)  # as a decorator: only the decorated calls, as PyTorch
    def g(a):
        return a * 2

    assert cg.is_grad_enabled() and (x * 2).requires_grad
    assert not g(x).requires_grad
    assert cg.is_grad_enabled()
    cg.set_grad_enabled(False)  # a plain call switches the mode at once
    assert not cg.is_grad_enabled()
    cg.set_grad_enabled(True)
    assert x.detach().requires_grad is False
    d = x.detach()
    assert d._storage is x._storage


def test_next_functions_like_pytorch():
    a = cg.ones(2, requires_grad=True)
    b = cg.ones(2)
    c = a * b
    fns = c.grad_fn.next_functions
    assert fns[0][0].name() == "AccumulateGrad" and fns[1][0] is None
    assert c.grad_fn.name() == "MulBackward0"
    assert not a.requires_grad or a.is_leaf and not c.is_leaf


def test_saved_buffers_released_after_backward():
    gc.collect()
    x = cg.randn(64, 64, requires_grad=True)
    before = runtime.live_buffers()
    y = ((x @ x).tanh() * x).exp().sum()
    mid = runtime.live_buffers()
    y.backward()
    after = runtime.live_buffers()
    assert mid > before
    # only y itself and x.grad remain besides what existed before
    assert after <= before + 2, (before, mid, after)


def test_integer_and_bool_results_do_not_require_grad():
    x = cg.ones(3, requires_grad=True)
    assert not (x > 0).requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        cg.ones(2, dtype=cg.int64).requires_grad_()


def test_backward_inputs_accumulates_only_into_those_leaves():
    a = cg.tensor([1.0, 2.0], requires_grad=True)
    b = cg.tensor([3.0, 4.0], requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    assert a.grad.tolist() == [3.0, 4.0] and b.grad is None
    (a * b).sum().backward(inputs=b)
    assert b.grad.tolist() == [1.0, 2.0] and a.grad.tolist() == [3.0, 4.0]


def test_writes_into_views_are_differentiated():
    """In-place writes through views rebase the base's graph (PyTorch's CopySlices)."""
    w = cg.tensor([1.0, 2.0], requires_grad=True)
    x = cg.zeros(4)
    x[1:3] = w * 3
    assert x.grad_fn.name() == "CopySlices"
    (x * cg.tensor([1.0, 10.0, 100.0, 1000.0])).sum().backward()
    assert w.grad.tolist() == [30.0, 300.0]
    a = cg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = a * 2
    y[0] = 0
    y[1:].mul_(5)
    y.sum().backward()
    assert a.grad.tolist() == [0.0, 10.0, 10.0]
    m = cg.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True)
    z = m.exp() * 1
    z[z > 5] = 0.0
    z.sum().backward()
    np.testing.assert_allclose(m.grad.numpy(), [np.e, np.exp(-2), 0.0])
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        a[0].mul_(2)


def test_gradcheck_through_slice_assignment():
    def f(w, v):
        x = w * 1
        x[1:, ::2] = v.exp()
        return x * x

    assert gradcheck(f, (leaf(3, 4), leaf(2, 2, seed=1)))


def test_transposing_a_scalar_keeps_its_graph():
    """transpose(0, -1) and t() of a 0-d tensor are views in the graph, as in PyTorch: the
    gradient flows back through them."""
    x = cg.tensor(2.0, requires_grad=True)
    y = x.transpose(0, -1) * 3 + x.t() * 2
    assert y.requires_grad and y.grad_fn is not None
    y.backward()
    assert x.grad.item() == 5.0
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.transpose(0, 1)


# --- forward mode: torch.autograd.forward_ad ------------------------------------------------


def test_forward_ad_dual_tensors():
    import clgraph.autograd.forward_ad as fwAD

    x = cg.tensor([0.3, -1.2, 2.0], dtype=cg.float64)
    w = cg.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]], dtype=cg.float64, requires_grad=True)
    t = cg.tensor([1.0, 0.5, -2.0], dtype=cg.float64)
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        assert fwAD.unpack_dual(d).tangent is t
        y = (w @ d).tanh() * d.sum()
        primal, tangent = fwAD.unpack_dual(y)
        # reverse mode through the dual still works (w's gradient)
        (y.sum()).backward()
        assert w.grad is not None
        assert fwAD.unpack_dual(x).tangent is None  # not a dual
        assert fwAD.unpack_dual(d.detach() * 0 + 1).tangent is None  # cut from the dual
    xn, tn, wn = x.numpy(), t.numpy(), w.detach().numpy()
    # J t by central differences in float64
    f = lambda v: np.tanh(wn @ v) * v.sum()  # noqa: E731
    eps = 1e-6
    close(primal, f(xn), rtol=1e-12)
    close(tangent, (f(xn + eps * tn) - f(xn - eps * tn)) / (2 * eps), rtol=1e-7)
    assert fwAD.unpack_dual(y).tangent is None  # the level has ended
    # the same through torch.func.jvp
    _, jt = cg.func.jvp(lambda v: (w.detach() @ v).tanh() * v.sum(), (x,), (t,))
    close(jt, tangent.numpy(), rtol=1e-12)


def test_forward_ad_errors():
    import clgraph.autograd.forward_ad as fwAD

    x = cg.ones(3)
    with pytest.raises(RuntimeError, match="inside a dual_level"):
        fwAD.make_dual(x, x)
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match="different size"):
            fwAD.make_dual(x, cg.ones(2))
        with pytest.raises(RuntimeError, match="Nested forward mode AD"):
            fwAD.enter_dual_level()
        with pytest.raises(ValueError, match="floating point"):
            fwAD.make_dual(cg.ones(3, dtype=cg.int64), cg.ones(3))


def test_forward_ad_against_pytorch():
    torch = torch_or_skip()
    import torch.autograd.forward_ad as tfw

    import clgraph.autograd.forward_ad as fwAD

    rng = np.random.default_rng(3)
    a, ta = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))

    def program(lib, v):
        return lib.nn.functional.softmax(v.exp() @ v.T, dim=-1).log1p().sum(0)

    with tfw.dual_level():
        want = tfw.unpack_dual(program(torch, tfw.make_dual(torch.tensor(a), torch.tensor(ta))))
    with fwAD.dual_level():
        got = fwAD.unpack_dual(program(cg, fwAD.make_dual(cg.tensor(a), cg.tensor(ta))))
    close(got.primal, want.primal.numpy(), rtol=1e-12)
    close(got.tangent, want.tangent.numpy(), rtol=1e-10)
