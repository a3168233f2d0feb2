"""ONNX for whole nn.functional calls and for the op rows of layers (pooling, fused
attention, recurrent cells).

``FUNCTIONS[name] = (accepts, handler)``: while exporting, ``nn.functional.<name>`` is
recorded as one call when ``accepts(arguments, opset)`` holds (a convolution becomes one
Conv instead of im2col and a product; an eval-mode batch norm one BatchNormalization);
otherwise its op rows are recorded and converted one by one. ``ROWS`` extends
symbolic.OPS. Handlers take (builder, step) and return output names. Imports dtypes, the
onnx package and this package's builder.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
from onnx import numpy_helper

from .. import dtypes as dt
from .builder import Builder, onnx_type
from .errors import OnnxExporterError

FUNCTIONS: dict[str, tuple[Callable, Callable]] = {}
ROWS: dict[str, Callable] = {}


def function(name: str, accepts: Callable = lambda a, opset: True):
    def mark(fn):
        FUNCTIONS[name] = (accepts, fn)
        return fn

    return mark


def row(*names: str):
    def mark(fn):
        for n in names:
            ROWS[n] = fn
        return fn

    return mark


def _tuple(v, n: int) -> list:
    return [int(x) for x in v] if isinstance(v, (tuple, list)) else [int(v)] * n


# --- linear and convolutions ---------------------------------------------------------------


@function("linear")
def _linear(b: Builder, s):
    x, w, bias = s.args["input"], s.args["weight"], s.args["bias"]
    d = s.outs[0].dtype
    bias_name = None if bias is None else b.cast(b.name(bias), bias.dtype, d)
    if x.ndim == 2 and w.ndim == 2:
        ins = [b.name(x), b.name(w)] + ([bias_name] if bias_name else [])
        return [b.node("Gemm", ins, transB=1)]
    wt = b.node("Transpose", [b.name(w)], perm=[1, 0]) if w.ndim == 2 else b.name(w)
    y = b.node("MatMul", [b.name(x), wt])
    return [b.node("Add", [y, bias_name]) if bias_name else y]


def _conv_pads(padding, kernel, dilation, n: int) -> list:
    """ONNX pads (all begins, then all ends) of a PyTorch padding argument."""
    if padding == "valid":
        return [0] * (2 * n)
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [t // 2 for t in total] + [t - t // 2 for t in total]
    p = _tuple(padding, n)
    return p + p


def _conv(b: Builder, s, n: int):
    x, w, bias = s.args["input"], s.args["weight"], s.args["bias"]
    kernel = list(w.shape[2:])
    dilation = _tuple(s.args["dilation"], n)
    xin = b.name(x)
    unbatched = x.ndim == n + 1
    if unbatched:
        xin = b.unsqueeze(xin, [0])
    ins = [xin, b.name(w)] + ([b.name(bias)] if bias is not None else [])
    y = b.node("Conv", ins, kernel_shape=kernel, strides=_tuple(s.args["stride"], n),
               pads=_conv_pads(s.args["padding"], kernel, dilation, n), dilations=dilation,
               group=int(s.args["groups"]))
    return [b.squeeze(y, [0]) if unbatched else y]


@function("conv2d", lambda a, opset: a["input"].ndim in (3, 4) and a["weight"].ndim == 4)
def _conv2d(b: Builder, s):
    return _conv(b, s, 2)


@function("conv1d", lambda a, opset: a["input"].ndim in (2, 3) and a["weight"].ndim == 3)
def _conv1d(b: Builder, s):
    return _conv(b, s, 1)


@function("conv_transpose2d", lambda a, opset: a["input"].ndim in (3, 4))
def _conv_transpose2d(b: Builder, s):
    x, w, bias = s.args["input"], s.args["weight"], s.args["bias"]
    xin = b.name(x)
    unbatched = x.ndim == 3
    if unbatched:
        xin = b.unsqueeze(xin, [0])
    ins = [xin, b.name(w)] + ([b.name(bias)] if bias is not None else [])
    pads = _tuple(s.args["padding"], 2)
    y = b.node("ConvTranspose", ins, kernel_shape=list(w.shape[2:]),
               strides=_tuple(s.args["stride"], 2), pads=pads + pads,
               output_padding=_tuple(s.args["output_padding"], 2),
               dilations=_tuple(s.args["dilation"], 2), group=int(s.args["groups"]))
    return [b.squeeze(y, [0]) if unbatched else y]


# --- normalization and activations ----------------------------------------------------------


def _filled(b: Builder, t, like, value: float, shape) -> str:
    """``t``'s name, or a constant of ``value`` where the argument is None."""
    if t is not None:
        return b.cast(b.name(t), t.dtype, like.dtype)
    return b.const(np.full(shape, value, dtype=like.dtype.np))


@function("batch_norm", lambda a, opset: not a["training"] and a["running_mean"] is not None
          and a["running_var"] is not None)
def _batch_norm(b: Builder, s):
    x, a = s.args["input"], s.args
    C = x.shape[1]
    ins = [b.name(x), _filled(b, a["weight"], x, 1.0, (C,)), _filled(b, a["bias"], x, 0.0, (C,)),
           b.cast(b.name(a["running_mean"]), a["running_mean"].dtype, x.dtype),
           b.cast(b.name(a["running_var"]), a["running_var"].dtype, x.dtype)]
    return [b.node("BatchNormalization", ins, epsilon=float(a["eps"]))]


@function("layer_norm", lambda a, opset: opset >= 17)
def _layer_norm(b: Builder, s):
    x, a = s.args["input"], s.args
    shape = a["normalized_shape"]
    shape = [int(shape)] if isinstance(shape, numbers.Integral) else [int(v) for v in shape]
    ins = [b.name(x), _filled(b, a["weight"], x, 1.0, shape)]
    if a["bias"] is not None:
        ins.append(b.cast(b.name(a["bias"]), a["bias"].dtype, x.dtype))
    return [b.node("LayerNormalization", ins, axis=-len(shape), epsilon=float(a["eps"]))]


def _class_targets(a, opset) -> bool:
    """cross_entropy calls SoftmaxCrossEntropyLoss takes whole: batched logits, class
    indices, no label smoothing, no legacy reduction flags."""
    return (a["input"].ndim >= 2 and not a["target"].dtype.is_floating_point
            and a["target"].dtype is not dt.bool_ and not a["label_smoothing"]
            and a["size_average"] is None and a["reduce"] is None)


@function("cross_entropy", _class_targets)
def _cross_entropy(b: Builder, s):
    a = s.args
    x, t, w = a["input"], a["target"], a["weight"]
    return [_softmax_ce(b, b.name(x), b.cast(b.name(t), t.dtype, dt.int64),
                        None if w is None else b.cast(b.name(w), w.dtype, x.dtype),
                        a["reduction"], a["ignore_index"])]


def _softmax_ce(b: Builder, x: str, t: str, w: str | None, reduction, ignore) -> str:
    ins = [x, t] + ([w] if w is not None else [])
    return b.node("SoftmaxCrossEntropyLoss", ins, reduction=reduction,
                  ignore_index=int(ignore))


@row("cross_entropy")
def _cross_entropy_row(b: Builder, s):
    """The fused cross entropy of (N, C) logits: SoftmaxCrossEntropyLoss, plus with label
    smoothing eps / C times the sum of -w * log_softmax over each row not ignored (reduced
    as the loss: the mean by the sum of the targets' weights)."""
    x, t = s.args[0], s.args[1]
    a = s.attrs
    w = b.name(s.args[2]) if a["weight"] else None
    red, eps, ignore = a["reduction"], a["label_smoothing"], a["ignore_index"]
    loss = _softmax_ce(b, b.name(x), b.name(t), w, red, ignore)
    if not eps:
        return [loss, None]
    d, C = x.dtype, x.shape[1]
    logp = b.node("LogSoftmax", [b.name(x)], axis=1)
    keep = b.node("Not", [b.node("Equal", [b.name(t), b.scalar(ignore, dt.int64)])])
    weighted = logp if w is None else b.node("Mul", [logp, w])
    smooth = b.node("Where", [keep, b.node("Neg", [b.reduce("ReduceSum", weighted, [1],
                                                            False)]), b.scalar(0, d)])
    if red != "none":
        smooth = b.reduce("ReduceSum", smooth, [0], False)
    if red == "mean":
        wt = b.node("Cast", [keep], to=onnx_type(d))
        if w is not None:
            safe = b.node("Where", [keep, b.name(t), b.scalar(0, dt.int64)])
            wt = b.node("Mul", [wt, b.node("Gather", [w, safe], axis=0)])
        smooth = b.node("Div", [smooth, b.reduce("ReduceSum", wt, [0], False)])
    loss = b.node("Add", [b.node("Mul", [loss, b.scalar(1 - eps, d)]),
                          b.node("Mul", [smooth, b.scalar(eps / C, d)])])
    return [loss, None]


@function("gelu", lambda a, opset: opset >= 20 and a["approximate"] in ("none", "tanh"))
def _gelu(b: Builder, s):
    return [b.node("Gelu", [b.name(s.args["input"])], approximate=s.args["approximate"])]


@function("leaky_relu")
def _leaky_relu(b: Builder, s):
    return [b.node("LeakyRelu", [b.name(s.args["input"])],
                   alpha=float(s.args["negative_slope"]))]


@function("embedding", lambda a, opset: a["max_norm"] is None)
def _embedding(b: Builder, s):
    return [b.node("Gather", [b.name(s.args["weight"]), b.name(s.args["input"])], axis=0)]


# --- pooling rows ------------------------------------------------------------------------


def _batched(b: Builder, x):
    """The name of ``x`` with a batch dim (pooling wants N, C, H, W) and whether one was
    added."""
    return (b.unsqueeze(b.name(x), [0]), True) if x.ndim == 3 else (b.name(x), False)


@row("max_pool2d")
def _max_pool2d(b: Builder, s):
    x, a = s.args[0], s.attrs
    if a["return_indices"]:
        raise OnnxExporterError(f"cg.onnx.export: max_pool2d with return_indices has no ONNX "
                                f"mapping here {b.where}")
    xin, added = _batched(b, x)
    p = _tuple(a["padding"], 2)
    y = b.node("MaxPool", [xin], kernel_shape=_tuple(a["kernel_size"], 2),
               strides=_tuple(a["stride"], 2), pads=p + p, dilations=_tuple(a["dilation"], 2),
               ceil_mode=int(a["ceil_mode"]))
    return [b.squeeze(y, [0]) if added else y]


@row("avg_pool2d")
def _avg_pool2d(b: Builder, s):
    x, a = s.args[0], s.attrs
    if a["divisor_override"] is not None:
        raise OnnxExporterError(f"cg.onnx.export: avg_pool2d with divisor_override has no "
                                f"ONNX mapping {b.where}")
    xin, added = _batched(b, x)
    p = _tuple(a["padding"], 2)
    y = b.node("AveragePool", [xin], kernel_shape=_tuple(a["kernel_size"], 2),
               strides=_tuple(a["stride"], 2), pads=p + p, ceil_mode=int(a["ceil_mode"]),
               count_include_pad=int(a["count_include_pad"]))
    return [b.squeeze(y, [0]) if added else y]


@row("adaptive_avg_pool2d")
def _adaptive_avg_pool2d(b: Builder, s):
    x, out = s.args[0], s.outs[0]
    xin, added = _batched(b, x)
    oh, ow = out.shape[-2:]
    if (oh, ow) == (1, 1):
        y = b.node("GlobalAveragePool", [xin])
    else:
        h = b.static_dim(x, x.ndim - 2, "adaptive_avg_pool2d")
        w = b.static_dim(x, x.ndim - 1, "adaptive_avg_pool2d")
        if h % oh or w % ow:
            raise OnnxExporterError(
                f"cg.onnx.export: adaptive_avg_pool2d from {h}x{w} to {oh}x{ow} (sizes that "
                f"do not divide) has no ONNX mapping {b.where}")
        k = [h // oh, w // ow]
        y = b.node("AveragePool", [xin], kernel_shape=k, strides=k)
    return [b.squeeze(y, [0]) if added else y]


# --- attention and recurrent cells ----------------------------------------------------------


@row("sdpa_flash")
def _sdpa(b: Builder, s):
    """The fused attention as its composition: softmax(q k^T * scale + mask) v (a query
    whose keys are all masked gives NaN here, zeros in clgraph)."""
    q, k, v = s.args[:3]
    mask = s.args[3] if len(s.args) > 3 else None
    perm = list(range(k.ndim - 2)) + [k.ndim - 1, k.ndim - 2]
    qs = b.node("Mul", [b.name(q), b.scalar(s.attrs["scale"], q.dtype)])
    scores = b.node("MatMul", [qs, b.node("Transpose", [b.name(k)], perm=perm)])
    ninf = b.scalar(-math.inf, q.dtype)
    if s.attrs["causal"]:
        size = b.vector([b.dim_of(q, q.ndim - 2), b.dim_of(k, k.ndim - 2)])
        ones = b.node("ConstantOfShape", [size], value=_one())
        keep = b.node("Cast", [b.node("Trilu", [ones], upper=0)], to=onnx_type(dt.bool_))
        scores = b.node("Where", [keep, scores, ninf])
    elif mask is not None and mask.dtype is dt.bool_:
        scores = b.node("Where", [b.name(mask), scores, ninf])
    elif mask is not None:
        scores = b.node("Add", [scores, b.cast(b.name(mask), mask.dtype, q.dtype)])
    out = b.node("MatMul", [b.node("Softmax", [scores], axis=-1), b.name(v)])
    return [out] + [None] * (len(s.outs) - 1)


def _one():
    """ConstantOfShape's ``value`` attribute: float 1."""
    return numpy_helper.from_array(np.ones(1, dtype=np.float32), "value")


def _split(b: Builder, x: str, n: int, size: int) -> list:
    """``x`` cut into ``n`` parts of ``size`` along its last dim."""
    return b.node("Split", [x, b.ints([size] * n)], n, axis=-1)


@row("layer_norm", "rms_norm")
def _norm_row(b: Builder, s):
    """The fused normalizations as their composition (opset 17's LayerNormalization covers
    the nn.functional call): (y, [mean], rstd), the statistics in float32 for 16-bit
    inputs."""
    x, a = s.args[0], s.attrs
    acc = s.outs[-1].dtype
    axes = list(range(x.ndim - a["k"], x.ndim))
    xn = b.cast(b.name(x), x.dtype, acc)
    rms = s.name == "rms_norm"
    dev = xn if rms else b.node("Sub", [xn, b.reduce("ReduceMean", xn, axes, True)])
    var = b.reduce("ReduceMean", b.node("Mul", [dev, dev]), axes, True)
    rstd = b.node("Reciprocal", [b.node("Sqrt", [b.node("Add", [var, b.scalar(a["eps"],
                                                                               acc)])])])
    y = b.node("Mul", [dev, rstd])
    rest = list(s.args[1:])
    for present, op_type in ((a["weight"], "Mul"), (a["bias"], "Add")):
        if present:
            t = rest.pop(0)
            y = b.node(op_type, [y, b.cast(b.name(t), t.dtype, acc)])
    y = b.cast(y, acc, x.dtype)
    if rms:
        return [y, rstd]
    return [y, b.reduce("ReduceMean", xn, axes, True), rstd]


@row("lstm_cell")
def _lstm_cell(b: Builder, s):
    """(h', c') of one LSTM step from the input and hidden products and c."""
    xg, hg, c = s.args
    H = c.shape[-1]
    i, f, g, o = _split(b, b.node("Add", [b.name(xg), b.name(hg)]), 4, H)
    c2 = b.node("Add", [b.node("Mul", [b.node("Sigmoid", [f]), b.name(c)]),
                        b.node("Mul", [b.node("Sigmoid", [i]), b.node("Tanh", [g])])])
    h2 = b.node("Mul", [b.node("Sigmoid", [o]), b.node("Tanh", [c2])])
    return [h2, c2]


@row("gru_cell")
def _gru_cell(b: Builder, s):
    """h' of one GRU step: n = tanh(x_n + r * (h W_hn + b_hn))."""
    x, hm, bias, h = s.args
    H = h.shape[-1]
    xr, xz, xn = _split(b, b.name(x), 3, H)
    hr, hz, hn = _split(b, b.node("Add", [b.name(hm), b.name(bias)]), 3, H)
    r = b.node("Sigmoid", [b.node("Add", [xr, hr])])
    z = b.node("Sigmoid", [b.node("Add", [xz, hz])])
    n = b.node("Tanh", [b.node("Add", [xn, b.node("Mul", [r, hn])])])
    return [b.node("Add", [n, b.node("Mul", [z, b.node("Sub", [b.name(h), n])])])]
