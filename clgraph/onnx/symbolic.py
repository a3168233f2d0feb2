"""ONNX for the op rows: ``OPS[row name](builder, step) -> output names`` (one per output;
None for an output the graph does not compute). Elementwise rows take their operands' casts
from the row's own promotion rule, so the graph computes in the dtypes clgraph does.
Imports the registry and the elementwise rule, dtypes, and this package's builder.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from onnx import numpy_helper

from .. import dtypes as dt
from ..ops import elementwise
from ..ops.registry import REGISTRY
from .builder import INT64_MAX, Builder, onnx_type
from .errors import OnnxExporterError

OPS: dict[str, Callable] = {}
# attributes a row's handler reads per run (shapes that follow the dynamic axes); the
# other attributes and scalar arguments must agree between the two runs
DYNAMIC_ATTRS = {"view": {"shape"}, "expand": {"shape"}, "slice": {"index"}}


def rule(*names: str):
    def mark(fn):
        for n in names:
            OPS[n] = fn
        return fn

    return mark


# --- elementwise --------------------------------------------------------------------------

UNARY = {"neg": "Neg", "abs": "Abs", "sign": "Sign", "floor": "Floor", "ceil": "Ceil",
         "round": "Round", "relu": "Relu", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
         "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "sigmoid": "Sigmoid", "erf": "Erf",
         "reciprocal": "Reciprocal", "hardswish": "HardSwish", "logical_not": "Not",
         "isnan": "IsNaN", "bitwise_not": "BitwiseNot"}
BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
          "maximum": "Max", "minimum": "Min", "clamp_min": "Max", "clamp_max": "Min",
          "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
          "ge": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or",
          "logical_xor": "Xor", "bitwise_and": "BitwiseAnd", "bitwise_or": "BitwiseOr",
          "bitwise_xor": "BitwiseXor"}
PREDICATES = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
              "logical_not", "isnan"}


def _floor_divide(b: Builder, x, y, d):
    if d.is_floating_point:
        return b.node("Floor", [b.node("Div", [x, y])])
    # integer Div truncates: one less where the remainder is nonzero and the signs differ
    q = b.node("Div", [x, y])
    r = b.node("Sub", [x, b.node("Mul", [q, y])])
    zero = b.scalar(0, d)
    fix = b.node("And", [b.node("Not", [b.node("Equal", [r, zero])]),
                         b.node("Xor", [b.node("Less", [r, zero]), b.node("Less", [y, zero])])])
    return b.node("Sub", [q, b.node("Cast", [fix], to=onnx_type(d))])


def _remainder(b: Builder, x, y, d):
    if not d.is_floating_point:
        return b.node("Mod", [x, y], fmod=0)  # the divisor's sign, as Python's %
    return b.node("Sub", [x, b.node("Mul", [b.node("Floor", [b.node("Div", [x, y])]), y])])


COMPOSED = {
    "rsqrt": lambda b, x, d: b.node("Reciprocal", [b.node("Sqrt", [x])]),
    "log1p": lambda b, x, d: b.node("Log", [b.node("Add", [x, b.scalar(1, d)])]),
    "expm1": lambda b, x, d: b.node("Sub", [b.node("Exp", [x]), b.scalar(1, d)]),
    "hardsigmoid": lambda b, x, d: b.node("HardSigmoid", [x], alpha=1 / 6, beta=0.5),
    "ne": lambda b, x, y, d: b.node("Not", [b.node("Equal", [x, y])]),
    "floor_divide": _floor_divide,
    "remainder": _remainder,
    "where": lambda b, c, x, y, d: b.node("Where", [c, x, y]),
    "addcmul": lambda b, x, p, q, v, d: b.node("Add", [x, b.node("Mul", [
        v, b.node("Mul", [p, q])])]),
    "addcdiv": lambda b, x, p, q, v, d: b.node("Add", [x, b.node("Mul", [
        v, b.node("Div", [p, q])])]),
    "lerp": lambda b, x, e, w, d: b.node("Add", [x, b.node("Mul", [w, b.node("Sub", [e, x])])]),
    "to_dtype": lambda b, x, d: x,
}


def _elementwise(b: Builder, s):
    op = REGISTRY[s.name]
    casts = elementwise._signature(op, s.args, s.attrs)[0]
    xs = [b.operand(a, c) for a, c in zip(s.args, casts)]
    d = casts[1] if s.name == "where" else casts[0]
    name = s.name
    if name.startswith("bitwise_") and d is dt.bool_:  # on bools: the logical ops
        name = "logical_" + name[len("bitwise_"):]
    if name in UNARY:
        out = b.node(UNARY[name], xs)
    elif name in BINARY:
        out = b.node(BINARY[name], xs)
    else:
        out = COMPOSED[name](b, *xs, d)
    natural = dt.bool_ if s.name in PREDICATES else d
    return [b.cast(out, natural, s.outs[0].dtype)]


for _name in (*UNARY, *BINARY, *COMPOSED):
    OPS[_name] = _elementwise


@rule("fill")
def _fill(b: Builder, s):
    out = s.outs[0]
    shape, twin = b.out_shapes(s, 0)
    return [b.node("ConstantOfShape", [b.shape_vector(shape, twin)],
                   value=_tensor1(s.args[0], out.dtype.np))]


@rule("to_device")
def _to_device(b: Builder, s):
    return [b.name(s.args[0])]


# --- views and copies ------------------------------------------------------------------


@rule("view")
def _view(b: Builder, s):
    x = s.args[0]
    shape, twin = b.out_shapes(s, 0)
    if b.shapes(x) == (shape, twin):
        return [b.name(x)]
    return [b.node("Reshape", [b.name(x), b.shape_vector(shape, twin, b.shapes(x))])]


@rule("permute")
def _permute(b: Builder, s):
    nd = s.args[0].ndim
    perm = [d % nd for d in s.attrs["dims"]] if nd else []
    if perm == list(range(nd)):
        return [b.name(s.args[0])]
    return [b.node("Transpose", [b.name(s.args[0])], perm=perm)]


@rule("transpose_copy")
def _transpose_last(b: Builder, s):
    nd = s.args[0].ndim
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    return [b.node("Transpose", [b.name(s.args[0])], perm=perm)]


@rule("expand")
def _expand(b: Builder, s):
    x = s.args[0]
    (xa, xb), (oa, ob) = b.shapes(x), b.out_shapes(s, 0)
    if (xa, xb) == (oa, ob):
        return [b.name(x)]
    off = len(oa) - len(xa)
    parts = []
    for i, (a, c) in enumerate(zip(oa, ob)):
        if i >= off and (xa[i - off], xb[i - off]) == (a, c):
            parts.append(1)  # kept: Expand broadcasts the input's own size
        elif a == c:
            parts.append(a)
        else:
            parts.append(b.dim(a, c) or _no_dim(b, oa, ob))
    return [b.node("Expand", [b.name(x), b.vector(parts)])]


def _no_dim(b: Builder, shape, twin):
    raise OnnxExporterError(f"cg.onnx.export: cannot express the shape {list(shape)} (then "
                            f"{list(twin)}) from the graph's dims {b.where}")


@rule("squeeze")
def _squeeze(b: Builder, s):
    x = s.args[0]
    shape, twin = b.shapes(x)
    dims = range(x.ndim) if s.attrs["dims"] is None else [d % max(x.ndim, 1)
                                                          for d in s.attrs["dims"]]
    axes = [d for d in dims if shape[d] == 1 and twin[d] == 1]
    return [b.squeeze(b.name(x), axes) if axes else b.name(x)]


@rule("unsqueeze")
def _unsqueeze(b: Builder, s):
    x = s.args[0]
    return [b.unsqueeze(b.name(x), [s.attrs["dim"] % (x.ndim + 1)])]


def _bound(b: Builder, a, c, default: int):
    """A slice bound (this run's ``a``, the other run's ``c``) as an int or an int64[1]."""
    if a is None:
        return default
    if a == c:
        return int(a)
    d = b.dim(a, c) if a >= 0 and c >= 0 else None
    if d is None:
        raise OnnxExporterError(f"cg.onnx.export: a slice bound follows a dynamic axis "
                                f"({a}, then {c}) in a way the graph cannot compute {b.where}")
    return d


def _expand_ellipsis(index, nd: int) -> list:
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    out = []
    for item in index:
        if item is Ellipsis:
            out += [slice(None)] * (nd - used)
            used = nd
        else:
            out.append(item)
    return out + [slice(None)] * (nd - sum(1 for i in out if i is not None))


@rule("slice")
def _slice(b: Builder, s):
    x = s.args[0]
    index = _expand_ellipsis(s.attrs["index"], x.ndim)
    other = _expand_ellipsis(s.twin.attrs["index"], x.ndim) if s.twin else index
    axes, starts, ends, steps, squeeze, inserted = [], [], [], [], [], []
    d = pos = 0
    for item, twin in zip(index, other):
        if item is None:
            inserted.append(pos)
            pos += 1
            continue
        if isinstance(item, slice):
            if item != slice(None):
                axes.append(d)
                starts.append(_bound(b, item.start, twin.start, 0))
                ends.append(_bound(b, item.stop, twin.stop, INT64_MAX))
                steps.append(item.step or 1)
            pos += 1
        else:
            i = int(item)
            axes.append(d)
            starts.append(i)
            ends.append(INT64_MAX if i == -1 else i + 1)
            steps.append(1)
            squeeze.append(d)
        d += 1
    out = b.name(x)
    if axes:
        out = b.node("Slice", [out, b.vector(starts), b.vector(ends), b.ints(axes),
                               b.ints(steps)])
    if squeeze:
        out = b.squeeze(out, squeeze)
    if inserted:
        out = b.unsqueeze(out, inserted)
    return [out]


@rule("cat")
def _cat(b: Builder, s):
    d = s.outs[0].dtype
    xs = [b.cast(b.name(t), t.dtype, d) for t in s.args]
    return [b.node("Concat", xs, axis=s.attrs["dim"] % s.outs[0].ndim)]


@rule("split_views")
def _split_views(b: Builder, s):
    x = s.args[0]
    outs = b.node("Split", [b.name(x), b.ints(list(s.attrs["sizes"]))],
                  n=len(s.attrs["sizes"]), axis=s.attrs["dim"] % x.ndim)
    return outs if isinstance(outs, list) else [outs]


@rule("flip")
def _flip(b: Builder, s):
    x = s.args[0]
    axes = [a % x.ndim for a in s.attrs["dims"]]
    n = len(axes)
    return [b.node("Slice", [b.name(x), b.ints([-1] * n), b.ints([-INT64_MAX] * n),
                             b.ints(axes), b.ints([-1] * n)])]


@rule("tril", "triu")
def _tri(b: Builder, s):
    x = s.args[0]
    k = b.const(np.array(s.attrs["diagonal"], dtype=np.int64))
    upper = int(s.name == "triu")
    fill = s.attrs.get("fill", 0)
    if fill == 0:
        return [b.node("Trilu", [b.name(x), k], upper=upper)]
    ones = b.node("ConstantOfShape", [b.shape_tail(x, 2)], value=_tensor1(1.0, np.float32))
    keep = b.node("Cast", [b.node("Trilu", [ones, k], upper=upper)], to=onnx_type(dt.bool_))
    return [b.node("Where", [keep, b.name(x), b.scalar(fill, x.dtype)])]


def _tensor1(value, np_dtype):
    """ConstantOfShape's ``value`` attribute."""
    return numpy_helper.from_array(np.array([value], dtype=np_dtype), "value")


# --- indexing ------------------------------------------------------------------------------


@rule("index_select")
def _index_select(b: Builder, s):
    x, index = s.args
    return [b.node("Gather", [b.name(x), b.name(index)], axis=s.attrs["dim"] % x.ndim)]


@rule("gather")
def _gather(b: Builder, s):
    x, index = s.args
    return [b.node("GatherElements", [b.name(x), b.name(index)], axis=s.attrs["dim"] % x.ndim)]


@rule("masked_fill")
def _masked_fill(b: Builder, s):
    x, mask, value = s.args
    return [b.node("Where", [b.cast(b.name(mask), mask.dtype, dt.bool_),
                             b.operand(value, x.dtype), b.name(x)])]


@rule("index")
def _index(b: Builder, s):
    x, indices = s.args[0], s.args[1:]
    dims = s.attrs["dims"]
    if len(indices) != 1 or indices[0].dtype is dt.bool_:
        raise OnnxExporterError(
            "cg.onnx.export: indexing with several index tensors or a boolean mask has no "
            f"ONNX mapping here (one integer index tensor does) {b.where}")
    return [b.node("Gather", [b.name(x), b.name(indices[0])], axis=dims[0] % x.ndim)]


@rule("matmul")
def _matmul(b: Builder, s):
    return [b.node("MatMul", [b.name(t) for t in s.args])]


# --- reductions and row ops ------------------------------------------------------------------


def _axes(s):
    """The reduced dims (None: all) of a reduction row."""
    if s.attrs.get("all_dims"):
        return None
    return [d % max(s.args[0].ndim, 1) for d in s.attrs["dim"]]


def _reduced(b: Builder, s, op_type: str):
    x, out = s.args[0], s.outs[0]
    xin = b.cast(b.name(x), x.dtype, out.dtype)
    return b.reduce(op_type, xin, _axes(s), s.attrs["keepdim"])


REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "prod": "ReduceProd", "amax": "ReduceMax",
          "amin": "ReduceMin", "logsumexp": "ReduceLogSumExp"}


@rule(*REDUCE)
def _reduce(b: Builder, s):
    return [_reduced(b, s, REDUCE[s.name])]


@rule("any", "all")
def _any_all(b: Builder, s):
    x = s.args[0]
    flag = b.node("Cast", [b.cast(b.name(x), x.dtype, dt.bool_)], to=onnx_type(dt.int32))
    red = b.reduce("ReduceMax" if s.name == "any" else "ReduceMin", flag, _axes(s),
                   s.attrs["keepdim"])
    return [b.node("Cast", [red], to=onnx_type(dt.bool_))]


@rule("max", "min")
def _max_min(b: Builder, s):
    values = _reduced(b, s, "ReduceMax" if s.name == "max" else "ReduceMin")
    if len(s.outs) == 1:
        return [values]
    return [values, _arg(b, s, "ArgMax" if s.name == "max" else "ArgMin")]


@rule("argmax", "argmin")
def _argmax(b: Builder, s):
    return [_arg(b, s, "ArgMax" if s.name == "argmax" else "ArgMin")]


def _arg(b: Builder, s, op_type: str):
    x, keep = s.args[0], s.attrs["keepdim"]
    axes = _axes(s)
    if axes is None:
        flat = b.node("Reshape", [b.name(x), b.ints([-1])])
        out = b.node(op_type, [flat], axis=0, keepdims=0)
        return b.node("Reshape", [out, b.ints([1] * x.ndim)]) if keep else out
    return b.node(op_type, [b.name(x)], axis=axes[0], keepdims=int(keep))


@rule("var", "std", "var_mean", "std_mean")
def _moments(b: Builder, s):
    x, keep, c = s.args[0], s.attrs["keepdim"], s.attrs["correction"]
    axes = _axes(s)
    xn = b.name(x)
    mean = b.reduce("ReduceMean", xn, axes, True)
    dev = b.node("Sub", [xn, mean])
    var = b.reduce("ReduceMean", b.node("Mul", [dev, dev]), axes, keep)
    if c:
        n = 1
        for a in (range(x.ndim) if axes is None else axes):
            n *= b.static_dim(x, a, f"{s.name} with a correction")
        var = b.node("Mul", [var, b.scalar(n / max(n - c, 0), x.dtype)])
    first = b.node("Sqrt", [var]) if s.name.startswith("std") else var
    if len(s.outs) == 1:
        return [first]
    if not keep:
        mean = b.reduce("ReduceMean", xn, axes, False)
    return [first, mean]


@rule("norm")
def _norm(b: Builder, s):
    x, p = s.args[0], s.attrs["p"]
    xin = b.cast(b.name(x), x.dtype, s.outs[0].dtype)
    axes, keep = _axes(s), s.attrs["keepdim"]
    if p == 2:
        return [b.reduce("ReduceL2", xin, axes, keep)]
    if p == 1:
        return [b.reduce("ReduceL1", xin, axes, keep)]
    if p == math.inf:
        return [b.reduce("ReduceMax", b.node("Abs", [xin]), axes, keep)]
    d = s.outs[0].dtype
    powed = b.node("Pow", [b.node("Abs", [xin]), b.scalar(p, d)])
    return [b.node("Pow", [b.reduce("ReduceSum", powed, axes, keep), b.scalar(1 / p, d)])]


@rule("softmax", "log_softmax")
def _softmax(b: Builder, s):
    x, out = s.args[0], s.outs[0]
    xin = b.cast(b.name(x), x.dtype, out.dtype)
    op_type = "Softmax" if s.name == "softmax" else "LogSoftmax"
    return [b.node(op_type, [xin], axis=s.attrs["dim"] % max(x.ndim, 1))]


@rule("cumsum")
def _cumsum(b: Builder, s):
    x, out = s.args[0], s.outs[0]
    axis = b.const(np.array(s.attrs["dim"] % max(x.ndim, 1), dtype=np.int64))
    return [b.node("CumSum", [b.cast(b.name(x), x.dtype, out.dtype), axis])]


@rule("sort")
def _sort(b: Builder, s):
    """Values and indices of a sort, as a TopK over the whole dim (ties may come in
    another order than clgraph's stable sort)."""
    x = s.args[0]
    axis = s.attrs["dim"] % max(x.ndim, 1)
    k = b.vector([b.dim_of(x, axis)])
    return b.node("TopK", [b.name(x), k], 2, axis=axis, largest=int(s.attrs["descending"]),
                  sorted=1)
