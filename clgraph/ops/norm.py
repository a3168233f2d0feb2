"""Row normalizations: layer_norm and rms_norm over the last ``k`` dims, forward and
backward in kernels/norm.cl. Two rows each: the forward (the output and each row's
float32 statistics: mean and rstd, as PyTorch saves them) and its backward (dx in one pass
per row, dweight and dbias as column sums over the rows).

On CPU devices one work-item normalizes a row with explicit vectors; on GPUs (and on any
device under CLGRAPH_KERNELS=gpu) a work-group (or a slice of one, for short rows) does,
with local-memory tree sums and the row kept in local memory between its passes.

The VJP: under create_graph the input gradients are composed of ordinary ops (the
statistics recomputed from x), so the normalizations differentiate twice; otherwise the
backward kernels run. Imports codegen, dtypes and the registry (the public functions of
other rows come through ``registry.functions``)."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np

from .. import codegen
from .. import dtypes as dt
from ..shapes import numel
from . import registry
from .math import fill_
from .registry import OpDef, apply, register


def _acc(d: dt.dtype) -> dt.dtype:
    """The statistics' and arithmetic's dtype: float for half and bfloat16."""
    return dt.float32 if d in dt.NARROW_FLOATS else d


_TILE = 4  # vectors of columns per work-item of the CPU column sums (kernels/norm.cl)


def _tree(info) -> bool:
    return not info.is_cpu


def _cache(info, acc) -> int:
    """Elements the tree kernels keep in local memory per work-group: up to 8192, in at
    most half of the device's local memory (a power of two)."""
    fit = info.local_memory // 2 // acc.itemsize
    n = 8192
    while n > fit:
        n //= 2
    return n


def _kernel(info, name: str, d: dt.dtype, rms: bool):
    acc = _acc(d)
    tree = _tree(info)
    defines = codegen.storage_defines(d) + (
        ("ACC", acc.cl), ("VW", str(min(info.vector_width(acc.cl), 16))),
        ("RMS", str(int(rms))), ("L", str(codegen.local_size(info))),
        ("CACHE", str(_cache(info, acc) if tree else 1)),
        ("TILE", str(1 if tree else _TILE)))
    if acc is dt.float64:
        defines += (("USE_FP64", "1"),)
    return codegen.template_kernel(info, "norm.cl", name, defines)


def _rows(t, k: int):
    """``t`` as rows of its last ``k`` dims' elements, contiguous within a row: (tensor,
    row stride), copied into a contiguous tensor when its layout does not allow it."""
    t = t.detach()
    shape, st = t._shape, t._stride
    nd = len(shape)
    expect, ok = 1, True
    for size, s in reversed(list(zip(shape[nd - k:], st[nd - k:]))):
        if size != 1 and s != expect:
            ok = False
        expect *= size
    lead = [(n, s) for n, s in zip(shape[:nd - k], st[:nd - k]) if n != 1]
    ok = ok and all(s0 == n1 * s1 for (_, s0), (n1, s1) in pairwise(lead))
    if not ok:
        t = t.contiguous()
        return t, numel(shape[nd - k:])
    return t, (lead[-1][1] if lead else numel(shape[nd - k:]))


def _tpr(info, n: int) -> int:
    """Work-items per row in the tree kernels: a power of two, about n / 4, at most the
    work-group size (several short rows share a work-group)."""
    local = codegen.local_size(info)
    t = 1
    while t < local and 4 * t < n:
        t *= 2
    return t


def launch_rows(info, kern, name, rows, n, values, n_name="n"):
    """Launch a row kernel of norm.cl or loss.cl on ``rows`` rows of ``n`` elements: one
    work-item per row on CPUs; on GPUs _tpr work-items per row (the kernel's ``tpr`` and
    ``n_name`` arguments)."""
    local = codegen.local_size(info)
    if _tree(info):
        tpr = _tpr(info, n)
        per = local // tpr
        values = {**values, "tpr": np.int32(tpr), n_name: np.int32(n)}
        gsize = -(-rows // per) * local
    else:
        gsize = -(-rows // local) * local
    registry.launch(info, kern, name, (gsize,), (local,), codegen.pack(kern, values))


def _split(args, attrs):
    """(x, weight or None, bias or None) from a forward row's operands."""
    x, rest = args[0], list(args[1:])
    w = rest.pop(0) if attrs["weight"] else None
    b = rest.pop(0) if attrs["bias"] else None
    return x, w, b


def _run_forward(op, args, attrs, out=None):
    x, w, b = _split(args, attrs)
    rms = op is RMS_NORM
    k = attrs["k"]
    info, T = x.device.info, registry.Tensor
    lead, n = x._shape[:x.ndim - k], numel(x._shape[x.ndim - k:])
    rows, acc = numel(lead), _acc(x.dtype)
    y = T._empty(x._shape, x.dtype, x.device)
    stat_shape = lead + (1,) * k
    mean = None if rms else T._empty(stat_shape, acc, x.device)
    rstd = T._empty(stat_shape, acc, x.device)
    if rows and n:
        xr, rs = _rows(x, k)
        wt = w.detach().contiguous() if w is not None else xr
        bt = b.detach().contiguous() if b is not None else xr
        kern_name = "norm_fwd_tree" if _tree(info) else "norm_fwd"
        kern = _kernel(info, kern_name, x.dtype, rms)
        launch_rows(info, kern, op.name, rows, n, {
            "x": xr._storage.buf, "x_off": xr._offset, "x_rs": rs, "w": wt._storage.buf,
            "b": bt._storage.buf, "y": y._storage.buf,
            "mean": (rstd if rms else mean)._storage.buf, "rstd": rstd._storage.buf,
            "rows": rows, "n": n, "eps": acc.np.type(attrs["eps"]),
            "has_w": np.int32(w is not None), "has_b": np.int32(b is not None),
            "_keep": (xr, wt, bt)})
    elif rows:  # an empty normalized shape: PyTorch's statistics are NaN
        for s in (mean, rstd):
            if s is not None:
                fill_(s, math.nan)
    return (y, rstd) if rms else (y, mean, rstd)


def _run_backward(op, args, attrs, out=None):
    """(dx, dweight if weight, dbias if bias) from (g, x, [weight], [mean], rstd)."""
    rms, k = attrs["rms"], attrs["k"]
    g, x, rest = args[0], args[1], list(args[2:])
    w = rest.pop(0) if attrs["weight"] else None
    mean = None if rms else rest.pop(0)
    rstd = rest.pop(0)
    info, T = x.device.info, registry.Tensor
    n = numel(x._shape[x.ndim - k:])
    rows, acc = numel(x._shape[:x.ndim - k]), _acc(x.dtype)
    dx = T._empty(x._shape, x.dtype, x.device)
    if g.dtype is not x.dtype:
        g = g.to(x.dtype)
    xr, xrs = _rows(x, k)
    gr, grs = _rows(g, k)
    stats = {"mean": (rstd if rms else mean)._storage.buf, "rstd": rstd._storage.buf}
    common = {"g": gr._storage.buf, "g_off": gr._offset, "g_rs": grs,
              "x": xr._storage.buf, "x_off": xr._offset, "x_rs": xrs, **stats,
              "rows": rows, "n": n, "_keep": (xr, gr)}
    if rows and n:
        wt = w.detach().contiguous() if w is not None else xr
        kern = _kernel(info, "norm_bwd_tree" if _tree(info) else "norm_bwd", x.dtype, rms)
        launch_rows(info, kern, op.name, rows, n, {**common, "w": wt._storage.buf,
                                                     "dx": dx._storage.buf,
                                                     "has_w": np.int32(w is not None)})
    res = [dx]
    if w is not None or attrs["bias"]:
        res += _weight_grads(info, x, w, attrs["bias"], rms, common, rows, n, acc)
    return tuple(res)


def _weight_grads(info, x, w, has_b, rms, common, rows, n, acc):
    """[dweight if w, dbias if has_b]: column sums over the rows, in chunks of rows (a
    second sum over the chunks) when the columns alone give too few work-items."""
    T, local = registry.Tensor, codegen.local_size(info)
    vw = min(info.vector_width(acc.cl), 16) * (1 if _tree(info) else _TILE)
    cols = -(-n // vw)
    want = 4 * info.compute_units * local
    nchunk = max(1, min(-(-rows // 64), -(-want // max(cols, 1))))
    chunk = max(-(-rows // nchunk), 1)
    nchunk = max(-(-rows // chunk), 1)
    dw = T._empty((nchunk, n), acc, x.device)
    db = T._empty((nchunk, n), acc, x.device)
    if rows and n:
        kern = _kernel(info, "norm_bwd_wb", x.dtype, rms)
        values = {**common, "dw": dw._storage.buf, "db": db._storage.buf, "chunk": chunk,
                  "has_w": np.int32(w is not None), "has_b": np.int32(has_b)}
        registry.launch(info, kern, "norm_backward_weight", (-(-cols // local) * local, nchunk),
                        (local, 1), codegen.pack(kern, values))
    else:
        fill_(dw, 0.0)
        fill_(db, 0.0)
    out = []
    for t, want_it in ((dw, w is not None), (db, has_b)):
        if not want_it:
            continue
        s = t[0] if nchunk == 1 else t.sum(0)
        out.append(s.to(x.dtype) if s.dtype is not x.dtype else s)
    return out


# --- VJPs ---------------------------------------------------------------------------------


def _composed_grads(g, x, w, k, eps, rms):
    """(dx, dweight, dbias-shaped g) as ops, the statistics recomputed from x: a graph that
    differentiates again (create_graph)."""
    F = registry.functions
    dims = tuple(range(-k, 0))
    if rms:
        rstd = F.rsqrt(F.mean(x * x, dim=dims, keepdim=True) + eps)
        xh = x * rstd
    else:
        var, mu = F.var_mean(x, dim=dims, correction=0, keepdim=True)
        rstd = F.rsqrt(var + eps)
        xh = (x - mu) * rstd
    gw = g if w is None else g * w
    inner = gw - xh * F.mean(gw * xh, dim=dims, keepdim=True)
    if not rms:
        inner = inner - F.mean(gw, dim=dims, keepdim=True)
    return rstd * inner, g * xh, g


def _vjp(rms):
    def vjp(gs, x, *wb, out, k, eps, weight, bias):
        g = gs[0]
        w = wb[0] if weight else None
        if out[0].requires_grad:  # create_graph: composed of ops
            dx, dw, db = _composed_grads(g, x, w, k, eps, rms)
        else:
            stats = out[1:]
            res = list(apply(NORM_BACKWARD, g, x, *wb[:int(weight)], *stats, k=k,
                             weight=weight, bias=bias, rms=rms))
            dx = res.pop(0)
            dw = res.pop(0).reshape(w.shape) if weight else None
            db = res.pop(0).reshape(wb[-1].shape) if bias else None
        return (dx,) + ((dw,) if weight else ()) + ((db,) if bias else ())

    return vjp


# --- numpy references ---------------------------------------------------------------------


def _ref(rms):
    def ref(x, *wb, k, eps, weight, bias):
        acc = np.float32 if x.dtype.itemsize < 4 else x.dtype
        xa = x.astype(acc)
        dims = tuple(range(x.ndim - k, x.ndim))
        mean = np.zeros_like(xa.sum(axis=dims, keepdims=True)) if rms else \
            xa.mean(axis=dims, keepdims=True)
        rstd = 1 / np.sqrt(((xa - mean) ** 2).mean(axis=dims, keepdims=True) + eps)
        y = (xa - mean) * rstd
        if weight:
            y = y * wb[0]
        if bias:
            y = y + wb[-1]
        y = y.astype(x.dtype)
        return (y, rstd.astype(acc)) if rms else (y, mean.astype(acc), rstd.astype(acc))

    return ref


LAYER_NORM = register(OpDef("layer_norm", "norm", _ref(False), _run_forward, _vjp(False),
                            saves_out=True, autocast="float32"))
RMS_NORM = register(OpDef("rms_norm", "norm", _ref(True), _run_forward, _vjp(True),
                          saves_out=True, autocast="float32"))
# not differentiable itself: a second derivative comes from the composed path of the VJPs
NORM_BACKWARD = register(OpDef("norm_backward", "norm", None, _run_backward,
                               differentiable=False))


# --- the functions nn.functional calls ----------------------------------------------------


def _check(name, input, shape, weight, bias):
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if not shape:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., "
                           "containing at least one element, but got normalized_shape = []")
    k = len(shape)
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"Expected {what} to be of same shape as normalized_shape, but "
                               f"got {what} of shape {list(t.shape)} and normalized_shape = "
                               f"{list(shape)}")
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(str(s) for s in shape)}], but got input of size"
                           f"{list(input.shape)}")
    if not input.dtype.is_floating_point:
        kernel = "LayerNormKernelImpl" if name == "layer_norm" else "rms_norm"
        raise RuntimeError(f'"{kernel}" not implemented for \'{input.dtype.scalar_type}\'')


def _normalize(op, input, shape, weight, bias, eps, low):
    """Apply ``op`` with the affine parameters in the input's dtype (outside autocast,
    whose float32 cast of every operand comes after: ``low``)."""
    args = [input]
    for t in (weight, bias):
        if t is not None:
            args.append(t if low or t.dtype is input.dtype else t.to(input.dtype))
    return apply(op, *args, k=len(shape), eps=float(eps), weight=weight is not None,
                 bias=bias is not None)[0]


def layer_norm(input, normalized_shape: tuple, weight=None, bias=None, eps: float = 1e-5,
               autocast: bool = False):
    """The fused layer_norm (nn.functional checks and calls it)."""
    _check("layer_norm", input, normalized_shape, weight, bias)
    return _normalize(LAYER_NORM, input, normalized_shape, weight, bias, eps, autocast)


def rms_norm(input, normalized_shape: tuple, weight=None, eps: float | None = None,
             autocast: bool = False):
    """The fused rms_norm; eps None: the machine epsilon of the input's dtype (of float32
    under autocast), as PyTorch."""
    _check("rms_norm", input, normalized_shape, weight, None)
    if eps is None:
        d = dt.float32 if autocast else input.dtype
        eps = float(np.finfo(d.np).eps) if d is not dt.bfloat16 else 2.0 ** -7
    return _normalize(RMS_NORM, input, normalized_shape, weight, None, eps, autocast)
