"""Cross entropy over class indices: (N, C) logits and int64 targets, forward and backward
in kernels/loss.cl. Two rows: the forward (the loss, and each row's logsumexp in float32
followed by the mean's denominator: what the backward reads) and its backward (the logits'
gradient in one pass per row). ``weight``, ``ignore_index``, ``label_smoothing`` and the
reductions follow PyTorch: the mean divides by the sum of the targets' weights (the count
of rows not ignored without weights), so a batch with every row ignored gives NaN.

On CPU devices one work-item handles a row with explicit vectors; on GPUs (and on any
device under CLGRAPH_KERNELS=gpu) a work-group (or a slice of one, for short rows) does,
with local-memory trees. A reduced loss takes a second launch: one work-group sums the
rows' losses and weights.

The VJP: under create_graph the logits' gradient is composed of ordinary ops (softmax and
a scatter of the one-hot term), so it differentiates again; otherwise the backward kernel
runs. Targets out of range raise IndexError before any launch (a compiled call repeats the
check on each call's targets). Imports codegen, dtypes, runtime and the registry (the public
functions of other rows come through ``registry.functions``)."""

from __future__ import annotations

import numpy as np

from .. import codegen, runtime
from .. import dtypes as dt
from . import registry
from .index import _check_read, _index_info
from .math import fill_
from .norm import launch_rows
from .registry import OpDef, apply, register


def _acc(d: dt.dtype) -> dt.dtype:
    """The logsumexp's and arithmetic's dtype: float for half and bfloat16."""
    return dt.float32 if d in dt.NARROW_FLOATS else d


def _kernel(info, name: str, d: dt.dtype):
    acc = _acc(d)
    defines = codegen.storage_defines(d) + (
        ("ACC", acc.cl), ("VW", str(min(info.vector_width(acc.cl), 16))),
        ("L", str(codegen.local_size(info))))
    if acc is dt.float64:
        defines += (("USE_FP64", "1"),)
    return codegen.template_kernel(info, "loss.cl", name, defines)


def _rows(x):
    """(x with contiguous rows, row stride): copied when its classes are strided."""
    x = x.detach()
    N, C = x._shape
    if C > 1 and x._stride[1] != 1:
        x = x.contiguous()
    return x, (x._stride[0] if N > 1 else C)


def _common(x, target, w, attrs):
    """The kernel arguments forward and backward share."""
    xr, rs = _rows(x)
    N, C = x._shape
    acc = _acc(x.dtype)
    wt = w.detach().contiguous() if w is not None else xr
    return {"x": xr._storage.buf, "x_off": xr._offset, "x_rs": rs,
            "tgt": target._storage.buf, "t_off": target._offset,
            "t_st": target._stride[0] if N > 1 else 0, "w": wt._storage.buf,
            "rows": N, "C": C, "ignore": attrs["ignore_index"],
            "smooth": acc.np.type(attrs["label_smoothing"]), "has_w": np.int32(w is not None),
            "_keep": (xr, wt)}


def _run_forward(op, args, attrs, out=None):
    x, target = args[0], args[1]
    w = args[2] if attrs["weight"] else None
    info, T = x.device.info, registry.Tensor
    N, C = x._shape
    acc, reduction = _acc(x.dtype), attrs["reduction"]
    summed = reduction != "none"
    loss = T._empty(() if summed else (N,), x.dtype, x.device)
    stats = T._empty((N + 1,), acc, x.device)
    part = T._empty((max(2 * N, 1),), acc, x.device) if summed else stats
    if N:
        kern = _kernel(info, "ce_fwd" if info.is_cpu else "ce_fwd_tree", x.dtype)
        launch_rows(info, kern, op.name, N, C, n_name="C", values={
            **_common(x, target, w, attrs), "lse": stats._storage.buf,
            "part": part._storage.buf, "out": loss._storage.buf, "summed": np.int32(summed)})
    if summed:
        kern = _kernel(info, "ce_reduce", x.dtype)
        local = codegen.local_size(info)
        registry.launch(info, kern, "cross_entropy_reduce", (local,), (local,), codegen.pack(
            kern, {"part": part._storage.buf, "lse": stats._storage.buf,
                   "out": loss._storage.buf, "rows": np.int32(N),
                   "mean": np.int32(reduction == "mean")}))
    elif not N:
        fill_(stats, 1.0)
    return loss, stats


def _run_backward(op, args, attrs, out=None):
    """The logits' gradient from (g, x, target, [weight], stats)."""
    g, x, target = args[0], args[1], args[2]
    w = args[3] if attrs["weight"] else None
    stats = args[-1]
    info, T = x.device.info, registry.Tensor
    N, C = x._shape
    dx = T._empty((N, C), x.dtype, x.device)
    if not (N and C):
        return dx
    if g.dtype is not x.dtype:
        g = g.to(x.dtype)
    g_st = g._stride[0] if g.ndim == 1 and N > 1 else 0
    kern = _kernel(info, "ce_bwd" if info.is_cpu else "ce_bwd_tree", x.dtype)
    launch_rows(info, kern, op.name, N, C, n_name="C", values={
        **_common(x, target, w, attrs), "g": g._storage.buf, "g_off": g._offset,
        "g_st": g_st, "lse": stats._storage.buf, "dx": dx._storage.buf,
        "mean": np.int32(attrs["reduction"] == "mean"), "_keep_g": g})
    return dx


# --- VJP ----------------------------------------------------------------------------------


def _composed_grad(g, x, target, w, stats, reduction, ignore_index, label_smoothing):
    """The logits' gradient as ops (softmax recomputed from x): a graph that differentiates
    again (create_graph)."""
    F = registry.functions
    N, C = x.shape
    valid = target != ignore_index
    safe = F.where(valid, target, 0)
    keep = valid.to(x.dtype)
    wt = keep if w is None else F.index_select(w, 0, safe) * keep
    gs = g.reshape(()) if g.ndim == 0 else g
    if reduction == "mean":
        gs = gs / wt.sum()
    eps = label_smoothing
    total = float(C) if w is None else w.sum()
    ct = gs * (1 - eps) * wt
    b = (gs * (eps / C)) * keep
    a = ct + b * total
    dx = F.softmax(x, 1) * a.reshape(N, 1)
    dx = dx - (b.reshape(N, 1) if w is None else b.reshape(N, 1) * w.reshape(1, C))
    hot = fill_(registry.Tensor._empty((N, C), x.dtype, x.device), 0.0)
    return dx - F.scatter(hot, 1, safe.reshape(N, 1), ct.expand(N).reshape(N, 1))


def _vjp(gs, x, target, *w, out, reduction, ignore_index, label_smoothing, weight):
    g = gs[0]
    if out[0].requires_grad:  # create_graph: composed of ops
        dx = _composed_grad(g, x, target, w[0] if weight else None, out[1], reduction,
                            ignore_index, label_smoothing)
    else:
        dx = apply(CROSS_ENTROPY_BACKWARD, g, x, target, *w, out[1], reduction=reduction,
                   ignore_index=ignore_index, label_smoothing=label_smoothing, weight=weight)
    return (dx, None) + ((None,) if weight else ())


# --- numpy reference ----------------------------------------------------------------------


def _ref(x, target, *w, reduction, ignore_index, label_smoothing, weight):
    acc = np.dtype(np.float32 if x.dtype.itemsize < 4 else x.dtype).type
    xa = x.astype(acc)
    N, C = xa.shape
    m = xa.max(axis=1, keepdims=True) if C else np.zeros((N, 1), acc)
    lse = (m + np.log(np.exp(xa - m).sum(axis=1, keepdims=True)))[:, 0]
    cw = w[0].astype(acc) if weight else np.ones(C, acc)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    rows = np.arange(N)
    wt = np.where(valid, cw[safe] if C else 0, 0).astype(acc)
    nll = wt * (lse - (xa[rows, safe] if C else 0))
    smooth = np.where(valid, (cw * (lse[:, None] - xa)).sum(axis=1), 0)
    loss = (1 - label_smoothing) * nll + label_smoothing / max(C, 1) * smooth
    denom = wt.sum() if reduction == "mean" else acc(1)
    if reduction == "none":
        out = loss
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.asarray(loss.sum() / denom if reduction == "mean" else loss.sum())
    return out.astype(x.dtype), np.append(lse, denom).astype(acc)


CROSS_ENTROPY = register(OpDef("cross_entropy", "loss", _ref, _run_forward, _vjp,
                               saves_out=True, autocast="float32"))
# not differentiable itself: a second derivative comes from the composed path of the VJP
CROSS_ENTROPY_BACKWARD = register(OpDef("cross_entropy_backward", "loss", None, _run_backward,
                                        differentiable=False))


# --- the function nn.functional calls -----------------------------------------------------


def _check_targets(target, C: int, ignore_index: int) -> None:
    """IndexError naming the first target outside [0, C) that is not ``ignore_index``. The
    (min, max) of a target tensor is read back once per version; a compiled call repeats
    the check on each call's targets."""
    if target.numel() == 0:
        return
    if runtime.observers:
        runtime.notify(registry.IndexCheck(
            target, lambda t: _check_targets(t, C, ignore_index) or True))
    lo, hi, _ = _index_info(target)
    if lo >= 0 and hi < C:
        return
    host = _check_read(target)
    bad = host[((host < 0) | (host >= C)) & (host != ignore_index)]
    if bad.size:
        raise IndexError(f"Target {int(bad.flat[0])} is out of bounds.")


def cross_entropy(input, target, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0,
                  autocast: bool = False):
    """The fused cross entropy of (N, C) logits and (N,) class indices (nn.functional
    checks the arguments, moves the class dim last and calls it). The weight comes in the
    logits' dtype, except under autocast, whose float32 cast of both comes after."""
    N, C = input.shape
    if target.dtype is not dt.int64:
        target = target.to(dt.int64)
    _check_targets(target, C, ignore_index)
    args = [input, target]
    if weight is not None:
        if weight.ndim != 1 or weight.numel() != C:
            raise RuntimeError(f"weight tensor should be defined either for all {C} classes "
                               f"or no classes but got weight tensor of shape: "
                               f"{list(weight.shape)}")
        args.append(weight if autocast or weight.dtype is input.dtype
                    else weight.to(input.dtype))
    return apply(CROSS_ENTROPY, *args, reduction=reduction, ignore_index=int(ignore_index),
                 label_smoothing=float(label_smoothing), weight=weight is not None)[0]


# --- binary cross entropy -------------------------------------------------------------------
# One elementwise row, so its gradient is PyTorch's closed form: (x - t) / max(x (1 - x),
# 1e-12), finite where a saturated sigmoid gives x = 0 or 1 (the chain rule through the
# clamped logs gives 0 * inf = nan there).


def _bce_ref(x, t):
    with np.errstate(divide="ignore"):
        return -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log(1 - x), -100))


def _bce_vjp(g, x, t, out):
    from .elementwise import op as ew

    log_x = apply(ew("clamp_min"), x.log(), -100.0)
    log_1mx = apply(ew("clamp_min"), (1 - x).log(), -100.0)
    gx = g * (x - t) / apply(ew("clamp_min"), (1 - x) * x, 1e-12)
    return gx, g * (log_1mx - log_x)


def _bce_row():
    from .elementwise import _floating, elementwise

    return elementwise(
        "binary_cross_entropy", _bce_ref,
        "(-({t} * fmax(log({x}), ({T})-100) + (({T})1 - {t}) * fmax(log(({T})1 - {x}), "
        "({T})-100)))", _floating, ("x", "t"), vjp=_bce_vjp, saves_out=False)


BINARY_CROSS_ENTROPY = _bce_row()
