"""Fused scaled-dot-product attention (kernels/attention.cl): two rows, the forward (the
output and each query row's log-sum-exp) and its backward (the three input gradients),
neither holding the L x S matrix of scores in memory, so memory grows linearly with the
sequence. nn.functional.scaled_dot_product_attention picks this path for float32
operands with equal batch dims and no dropout, and the composition of ops otherwise.

The backward's VJP: under create_graph the input gradients are composed of ordinary ops
(the scores recomputed), so attention differentiates twice; otherwise the fused backward
kernels run."""

from __future__ import annotations

import math

import numpy as np

from .. import codegen
from .. import dtypes as dt
from ..creation import _from_host
from . import gemm, registry
from .math import fill_
from .registry import OpDef, apply, register

# query (or key) rows per work-item: each loaded key (query) vector serves R rows; 2 was
# fastest on PoCL with AVX-512 (forward+backward 84 ms; 4: 112-116 ms, 1: 141 ms)
_R = 2
# vectors of keys per online-softmax step of the CPU forward: its maximum, rescale and sums
# once per 2 * VW keys (16x8x128x32 forward 3.3 -> 2.45 ms, 8x8x512x64 causal 20.4 -> 16.2;
# 4 vectors: 2.7 and 20.6)
_KB = 2
# 16-bit operands: the tensor-core forward (sdpa_fwd_mma) where the device has one, else
# the float32 kernels on float32 copies (one conversion pass each way)
_FLOATS = (dt.float32, dt.float16, dt.bfloat16)


def supported(q, k, v, mask) -> bool:
    """Whether the fused kernels take these operands (else the composition of ops runs):
    float32, float16 or bfloat16 (all three alike), the same batch dims, head dims the CPU
    kernels' vectors divide (up to 256; up to 128 on GPUs, whose work-items hold a row in
    registers), a mask broadcastable over at most two batch dims."""
    batch = q.shape[:-2]
    if not (q.dtype is k.dtype is v.dtype and q.dtype in _FLOATS and q.ndim >= 2
            and k.shape[:-2] == batch and v.shape[:-2] == batch
            and q.device == k.device == v.device
            and (mask is None or (len(batch) <= 2 and mask.device == q.device
                                  and not mask.requires_grad))):
        return False
    E, EV, info = q.shape[-1], v.shape[-1], q.device.info
    if not info.is_cpu:
        return E <= 128 and EV <= 128
    w = _width(info)
    return E % w == 0 and EV % w == 0 and E <= 256 and EV <= 256


def _width(info) -> int:
    return 16 if info.vector_width("float") >= 16 else 8


def _kernel(info, name, E, EV, has_mask, dropout=False):
    w = _width(info) if info.is_cpu else 8  # (the GPU kernels use no vectors)
    defines = (("E", str(E)), ("EV", str(EV)), ("VW", str(w)), ("R", str(_R)),
               ("KB", str(_KB)),
               ("HAS_MASK", str(int(has_mask))), ("BQ", str(_BQ)),
               ("DROPOUT", str(int(dropout))))
    return codegen.template_kernel(info, "attention.cl", _kernel_name(info, name), defines)


def _rows(name: str, t) -> dict:
    """Kernel arguments of operand ``t`` (*batch, N, C) read in place as (b, h, row) rows
    with contiguous elements: offset and the strides of b (the leading batch dims, when
    they collapse to one), h (the last batch dim) and the row. Other layouts are copied
    into a contiguous tensor first."""
    t = t.detach()
    shape, st = tuple(t.shape), t.stride()
    nb = len(shape) - 2
    lead = [(shape[d], st[d]) for d in range(max(nb - 1, 0)) if shape[d] != 1]
    collapsible = all(s0 == n1 * s1 for (_, s0), (n1, s1) in zip(lead, lead[1:]))
    if st[-1] != 1 and shape[-1] > 1 or not collapsible:
        t = t.contiguous()
        return _rows(name, t)
    sb = lead[-1][1] if lead else 0
    sh = st[nb - 1] if nb else 0
    return {name: t._storage.buf, f"{name}_off": t._offset, f"{name}_sb": sb,
            f"{name}_sh": sh, f"{name}_sl": st[-2], "_keep_" + name: t}


def _pad(n: int, w: int) -> int:
    return -(-n // w) * w


def _transposed(info, x, bh, H, NP):
    """Operand x (*batch, N, C) -> (bh, C, NP) contiguous, zeros past N."""
    N, C = x.shape[-2:]
    y = registry.Tensor._empty((bh, C, NP), x.dtype, x.device)
    w = _width(info)
    k = codegen.template_kernel(info, "attention.cl", "transpose_pad",
                                (("E", str(w)), ("EV", str(w)), ("VW", str(w))))
    L = codegen.local_size(info)
    registry.launch(info, k, "sdpa_transpose", (_pad(NP, L), C // w, bh), (L, 1, 1),
                    codegen.pack(k, {**_rows("x", x), "y": y._storage.buf, "N": N,
                                     "C": C, "NP": NP, "H": H}))
    return y


def _mask_values(q, mask, S):
    """The mask's kernel arguments: an additive float mask viewed as (*batch, L, S)."""
    batch, L = tuple(q.shape[:-2]), q.shape[-2]
    if mask is None:
        return {"mask": q._storage.buf, "m_off": 0, "m_bs": 0, "m_hs": 0, "m_ls": 0}
    m = mask.detach()
    if m.dtype is dt.bool_:
        m = registry.functions.where(m, 0.0, -math.inf).to(dt.float32)
    elif m.dtype is not dt.float32:
        m = m.to(dt.float32)
    m = m.expand(*batch, L, S)
    if m.stride(-1) != 1:
        m = m.contiguous()
    st = (0, 0) + tuple(m.stride())
    return {"mask": m._storage.buf, "m_off": m._offset, "m_bs": st[-4], "m_hs": st[-3],
            "m_ls": st[-2], "_keep": m}


_BQ = 64  # the GPU kernels' rows per work-group (kernels/attention.cl)


def _launch(info, name, kern, rows, bh, values):
    if info.is_cpu:
        L = codegen.local_size(info)
        gsize, lsize = (_pad(-(-rows // _R), L), bh), (L, 1)
    else:
        gsize, lsize = (_pad(rows, _BQ), bh), (_BQ, 1)
    registry.launch(info, kern, name, gsize, lsize, codegen.pack(kern, values))


def _kernel_name(info, name: str) -> str:
    return name if info.is_cpu else name + "_tiled"


def _geometry(q, k):
    """(bh, H): batch elements times heads, and the heads (the last batch dim)."""
    batch = tuple(q.shape[:-2])
    bh = 1
    for n in batch:
        bh *= n
    return bh, (batch[-1] if batch else 1)


def _output(q, EV):
    """The forward's output (*batch, L, EV) of q's dtype: for (B, H) batches laid out as
    (B, L, H, EV), so that merging the heads back ((B, L, H * EV), as attention layers do)
    is a view."""
    T, batch, L = registry.Tensor, tuple(q.shape[:-2]), q.shape[-2]
    if len(batch) == 2:
        return T._empty((batch[0], L, batch[1], EV), q.dtype, q.device).permute(0, 2, 1, 3)
    return T._empty((*batch, L, EV), q.dtype, q.device)


def _tile_one_buffer(q, k, v) -> bool:
    """Whether q, k and v are views of one buffer, alike but for their offsets, that
    together cover a dense block of it without overlap: (3, *q.shape) with the offsets'
    step as the first stride is a permutation of a contiguous layout (the heads of an
    attention layer's packed projection (B, L, 3 * H * E))."""
    st = q._storage
    if k._storage is not st or v._storage is not st:
        return False
    if not (q._shape == k._shape == v._shape and q._stride == k._stride == v._stride):
        return False
    step = k._offset - q._offset
    if step <= 0 or v._offset - k._offset != step:
        return False
    return _dense((3,) + q._shape, (step,) + q._stride)


def _dense(shape, stride) -> bool:
    """Whether a layout covers a block of memory without gaps or overlap (a permutation of
    a contiguous one)."""
    extent = 1
    for s, n in sorted(((s, n) for s, n in zip(stride, shape) if n != 1)):
        if s != extent:
            return False
        extent *= n
    return True


def _grads_like(q, k, v):
    """dq, dk and dv for the backward kernels (they write rows in place), each laid out as
    its input (a leaf's .grad then needs no copy, and heads viewed from a projection get
    their gradient back as views): when q, k and v tile one buffer (_tile_one_buffer) the
    gradients tile a new one the same way, so that the split of a packed projection needs
    no cat; an input whose layout has gaps or overlaps gets the forward output's layout."""
    T = registry.Tensor
    if _tile_one_buffer(q, k, v):
        base = T._empty((3 * q.numel(),), q.dtype, q.device)
        return tuple(base._view(t._shape, t._stride, t._offset - q._offset)
                     for t in (q, k, v))
    return tuple(T._empty((t.numel(),), t.dtype, t.device)._view(t._shape, t._stride, 0)
                 if _dense(t._shape, t._stride) else _output(t, t.shape[-1])
                 for t in (q, k, v))


def _extras(rest, attrs):
    """(the dropout seeds or None, the mask or None, the dropout's kernel argument) from the
    operands after q, k, v: the seeds come first when the call drops weights."""
    rest = list(rest)
    seeds = rest.pop(0) if attrs["dropout"] > 0 else None
    mask = rest[0] if rest else None
    values = {"pdrop": np.float32(attrs["dropout"])}
    return seeds, mask, values


def _run_sdpa(op, args, attrs, out=None):
    q, k, v, *rest = args
    if q.dtype is not dt.float32:
        if _mma_ready(q, v):
            return _run_sdpa_mma(q, k, v, rest, attrs)
        o, lse = _run_sdpa(op, (*_widened(q, k, v), *rest), attrs)
        return o.to(q.dtype), lse
    seeds, mask, dv = _extras(rest, attrs)
    dv["seeds"] = (seeds if seeds is not None else q)._storage.buf
    info = q.device.info
    L, E, S, EV = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    (bh, H), w = _geometry(q, k), _width(info)
    SP, LP = _pad(S, w), _pad(L, w)
    o = _output(q, EV)
    lse = fill_(registry.Tensor._empty((bh, LP), dt.float32, q.device), math.inf)
    if bh * L and S:
        kt = _transposed(info, k, bh, H, SP) if info.is_cpu else q
        values = {**_mask_values(q, mask, S), **_rows("q", q), **_rows("k", k),
                  **_rows("v", v), **_rows("o", o), "kt": kt._storage.buf,
                  "lse": lse._storage.buf, "L": L, "S": S, "SP": SP, "LP": LP, "H": H,
                  "scale": np.float32(attrs["scale"]), "causal": int(attrs["causal"]), **dv}
        kern = _kernel(info, "sdpa_fwd", E, EV, mask is not None, seeds is not None)
        _launch(info, "sdpa_fwd", kern, L, bh, values)
    elif bh * L:
        fill_(o, 0.0)
    return o, lse


def _widened(*ts):
    """float32 copies of 16-bit operands, for the float32 kernels."""
    return tuple(t.detach().to(dt.float32) for t in ts)


# --- tensor cores (kernels/attention.cl: sdpa_fwd_mma) --------------------------------------
#
# float16 and bfloat16 forwards run on the tensor cores where ops/gemm.py's probe found
# them (mma.sync on NVIDIA; CLGRAPH_TENSOR_CORES=emulate runs the instruction in software on
# any device, which is how the tiling and fragments are tested on CPUs). The kernel is
# probed once more per device and dtype: it must build and reproduce the float64 reference
# on a small problem, else 16-bit operands take the float32 kernels.

_MMA_WARPS = 4  # kernels/attention.cl's MMA_WARPS: 16 owned rows per warp
_mma_probed: dict = {}  # (device index, mode, dtype) -> whether the kernels passed


def _mma_kernel(info, name, d, E, EV, has_mask, dropout, vec8):
    # blocks of 64 rows; 32 in the backward's wide heads, whose four tiles must fit 48 KiB
    bkm = 64 if name == "sdpa_fwd_mma" or max(E, EV) <= 64 else 32
    defines = (("E", str(E)), ("EV", str(EV)), ("VW", "8"), ("HAS_MASK", str(int(has_mask))),
               ("DROPOUT", str(int(dropout))), ("SDPA_MMA", "1"), ("BKM", str(bkm)),
               ("MMA_WARPS", str(_MMA_WARPS)), ("IS_BF16", str(int(d is dt.bfloat16))),
               ("VEC8", str(int(vec8))))
    if gemm.mma_mode(info) == "emulate":
        defines += (("MMA_EMULATE", "1"),)
    return codegen.template_kernel(info, "attention.cl", name, defines)


def _launch_mma(info, name, rows, bh, values, *shape):
    kern = _mma_kernel(info, name, *shape)
    registry.launch(info, kern, name, (-(-rows // (16 * _MMA_WARPS)) * 32 * _MMA_WARPS, bh),
                    (32 * _MMA_WARPS, 1), codegen.pack(kern, values))


def _mma_ready(q, v) -> bool:
    info = q.device.info
    if info.is_cpu or q.shape[-1] > 128 or v.shape[-1] > 128 \
            or not gemm.tensor_cores(info, q.dtype):
        return False
    key = (info.index, gemm.mma_mode(info), q.dtype)
    ok = _mma_probed.get(key)
    if ok is None:
        ok = _mma_probed[key] = _mma_probe(q.device, q.dtype)
    return ok


def _mma_probe(device, d) -> bool:
    """Whether the tensor-core kernels build and reproduce the float32 kernels' forward and
    backward on ``device`` (operands with tails in every dimension)."""
    rng = np.random.default_rng(0)
    shapes = ((2, 70, 64), (2, 100, 64), (2, 100, 40), (2, 70, 40))
    arrays = [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    attrs = {"scale": 0.125, "causal": False, "dropout": 0.0}
    try:
        q, k, v, g = (_from_host(a, d, device) for a in arrays)
        o, lse = _run_sdpa_mma(q, k, v, (), attrs)
        got = [o, *_run_sdpa_backward_mma(q, k, v, o, lse, g, (), attrs)]
        got = [t.to(dt.float32).numpy() for t in got]
    except Exception:  # noqa: BLE001  no such instruction, a driver without inline PTX
        return False
    q, k, v, g = _widened(q, k, v, g)
    o, lse = _run_sdpa(None, (q, k, v), attrs)
    want = [o, *_run_sdpa_backward(None, (q, k, v, o, lse, g), attrs)]
    return all(np.allclose(a, b.numpy(), rtol=3e-2, atol=3e-2) for a, b in zip(got, want))


def _rows16(name, t, values) -> bool:
    """Adds operand ``t``'s row arguments to ``values``; whether its rows start 16-byte
    aligned with a multiple of 8 elements each (the kernels then load 8 at a time)."""
    rows = _rows(name, t)
    values.update(rows)
    return t.shape[-1] % 8 == 0 and all(rows[name + s] % 8 == 0
                                        for s in ("_off", "_sb", "_sh", "_sl"))


def _mma_values(q, k, v, rest, attrs, g=None):
    """The arguments the tensor-core kernels share (with the output gradient ``g`` for the
    backward), the kernels' shape parameters, and (bh, LP)."""
    seeds, mask, values = _extras(rest, attrs)
    named = [("q", q), ("k", k), ("v", v)] + ([("dO", g)] if g is not None else [])
    vec8 = all([_rows16(name, t, values) for name, t in named])
    L, S = q.shape[-2], k.shape[-2]
    bh, H = _geometry(q, k)
    LP = _pad(L, _width(q.device.info))  # as the float32 kernels pad lse
    values.update({**_mask_values(q, mask, S),
                   "seeds": (seeds if seeds is not None else q)._storage.buf,
                   "L": L, "S": S, "LP": LP, "H": H, "scale": np.float32(attrs["scale"]),
                   "causal": int(attrs["causal"])})
    shape = (q.dtype, q.shape[-1], v.shape[-1], mask is not None, seeds is not None, vec8)
    return values, shape, bh, LP


def _run_sdpa_mma(q, k, v, rest, attrs):
    values, shape, bh, LP = _mma_values(q, k, v, rest, attrs)
    L, S = q.shape[-2], k.shape[-2]
    o = _output(q, v.shape[-1])
    lse = fill_(registry.Tensor._empty((bh, LP), dt.float32, q.device), math.inf)
    if bh * L and S:
        _launch_mma(q.device.info, "sdpa_fwd_mma", L, bh,
                    {**values, **_rows("o", o), "lse": lse._storage.buf}, *shape)
    elif bh * L:
        fill_(o, 0.0)
    return o, lse


def _run_sdpa_backward_mma(q, k, v, o, lse, g, rest, attrs):
    values, shape, bh, LP = _mma_values(q, k, v, rest, attrs, g)
    L, S = q.shape[-2], k.shape[-2]
    dq, dk, dv = _grads_like(q, k, v)
    if bh * L * S == 0:
        for t in (dq, dk, dv):
            fill_(t, 0.0)
        return dq, dk, dv
    values.update({"lse": lse._storage.buf, "dd": _row_dots(g, o, bh, LP)._storage.buf})
    info = q.device.info
    _launch_mma(info, "sdpa_bwd_dq_mma", L, bh, {**values, **_rows("dq", dq)}, *shape)
    _launch_mma(info, "sdpa_bwd_dkv_mma", S, bh,
                {**values, **_rows("dk", dk), **_rows("dv", dv)}, *shape)
    return dq, dk, dv


def _row_dots(g, o, bh, LP):
    """dd_i = do_i . o_i in float32, as (bh, LP) with zeros past L like lse."""
    L = g.shape[-2]
    dd = (g.detach().to(dt.float32) * o.detach().to(dt.float32)).sum(-1).reshape(bh, L)
    if LP != L:
        pad = fill_(registry.Tensor._empty((bh, LP - L), dt.float32, g.device), 0.0)
        dd = registry.functions.cat([dd, pad], 1)
    return dd


def _run_sdpa_backward(op, args, attrs, out=None):
    q, k, v, o, lse, g, *rest = args
    if q.dtype is not dt.float32:
        if _mma_ready(q, v):
            return _run_sdpa_backward_mma(q, k, v, o, lse, g, rest, attrs)
        dtype = q.dtype  # the float32 kernels on float32 copies
        q, k, v, o, g = _widened(q, k, v, o, g)
        grads = _run_sdpa_backward(op, (q, k, v, o, lse, g, *rest), attrs)
        return tuple(t.to(dtype) for t in grads)
    seeds, mask, dvals = _extras(rest, attrs)
    dvals["seeds"] = (seeds if seeds is not None else q)._storage.buf
    info = q.device.info
    L, E, S, EV = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    (bh, H), w = _geometry(q, k), _width(info)
    SP, LP = _pad(S, w), _pad(L, w)
    dq, dk, dv = _grads_like(q, k, v)
    if bh * L * S == 0:
        for t in (dq, dk, dv):
            fill_(t, 0.0)
        return dq, dk, dv
    dd = _row_dots(g, o, bh, LP)
    common = {**_mask_values(q, mask, S), **_rows("q", q), **_rows("k", k), **_rows("v", v),
              **_rows("dO", g), "lse": lse._storage.buf, "dd": dd._storage.buf, "L": L,
              "S": S, "SP": SP, "LP": LP, "H": H, "scale": np.float32(attrs["scale"]),
              "causal": int(attrs["causal"]), **dvals}
    drop = seeds is not None
    cpu = info.is_cpu  # the GPU kernels read the rows in place
    kt, vt = (_transposed(info, k, bh, H, SP), _transposed(info, v, bh, H, SP)) if cpu \
        else (q, q)
    kern = _kernel(info, "sdpa_bwd_dq", E, EV, mask is not None, drop)
    _launch(info, "sdpa_bwd_dq", kern, L, bh, {
        **common, "kt": kt._storage.buf, "vt": vt._storage.buf, **_rows("dq", dq)})
    qt, dot = (_transposed(info, q, bh, H, LP), _transposed(info, g, bh, H, LP)) if cpu \
        else (q, q)
    kern = _kernel(info, "sdpa_bwd_dkv", E, EV, mask is not None, drop)
    _launch(info, "sdpa_bwd_dkv", kern, S, bh, {
        **common, "qt": qt._storage.buf, "dot": dot._storage.buf, **_rows("dk", dk),
        **_rows("dv", dv)})
    return dq, dk, dv


def _scores(q, k, mask, scale, causal):
    """The masked scores as ops (the composition the create_graph path differentiates)."""
    s = (q * scale) @ k.transpose(-2, -1)
    if causal:
        s = apply(registry.REGISTRY["tril"], s, diagonal=0, fill=-math.inf)
    elif mask is not None:
        s = s.masked_fill(mask.logical_not(), -math.inf) if mask.dtype is dt.bool_ else s + mask
    return s


def dropout_weights(q, k, seeds, p: float):
    """The weights the fused kernels multiply the probabilities by when they drop with
    probability ``p`` under ``seeds``: 0 or 1 / (1 - p), shaped (*batch, L, S)."""
    info = q.device.info
    L, S = q.shape[-2], k.shape[-2]
    bh, _ = _geometry(q, k)
    w = registry.Tensor._empty((bh, L, S), dt.float32, q.device)
    if w.numel():
        kern = codegen.template_kernel(info, "attention.cl", "sdpa_dropout_weights",
                                       (("E", "8"), ("EV", "8"), ("VW", "8")))
        registry.launch(info, kern, "sdpa_dropout_weights", (S, L, bh), None,
                        codegen.pack(kern, {"seeds": seeds._storage.buf,
                                            "pdrop": np.float32(p), "w": w._storage.buf,
                                            "L": L, "S": S}))
    return w.reshape(*q.shape[:-2], L, S)


def _sdpa_vjp(gs, q, k, v, *rest, out, scale, causal, dropout):
    g = gs[0]
    o, lse = out
    none = tuple(None for _ in rest)
    if not o.requires_grad:  # no create_graph: the fused kernels
        grads = apply(SDPA_BACKWARD, q, k, v, o, lse, g, *rest, scale=scale, causal=causal,
                      dropout=dropout)
        return (*grads, *none)
    # create_graph: the input gradients composed of ops, differentiable again
    seeds, mask, _ = _extras(rest, {"dropout": dropout})
    s = _scores(q, k, mask, scale, causal)
    dead = s.amax(dim=-1, keepdim=True) == -math.inf
    p = registry.functions.softmax(s.masked_fill(dead, 0.0), -1).masked_fill(dead, 0.0)
    w = dropout_weights(q, k, seeds, dropout) if seeds is not None else None
    pw = p if w is None else p * w
    dv = pw.transpose(-2, -1) @ g
    dp = g @ v.transpose(-2, -1)
    if w is not None:
        dp = dp * w
    ds = p * (dp - (dp * p).sum(-1, keepdim=True))
    dq = (ds @ k) * scale
    dk = (ds.transpose(-2, -1) @ q) * scale
    return (dq, dk, dv, *none)


def _ref_sdpa(q, k, v, *mask, scale, causal, dropout=0.0):  # (without dropout)
    s = np.einsum("...le,...se->...ls", q, k) * scale
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    elif mask:
        m = mask[0]
        s = np.where(m, s, -np.inf) if m.dtype == bool else s + m
    mx = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(mx), mx, 0))
    tot = e.sum(-1, keepdims=True)
    p = np.where(tot > 0, e / np.where(tot > 0, tot, 1), 0)
    return p @ v


SDPA = register(OpDef("sdpa_flash", "attention", _ref_sdpa, _run_sdpa, _sdpa_vjp,
                      saves_out=True))
# not differentiable itself: a second derivative comes from _sdpa_vjp's composed path
SDPA_BACKWARD = register(OpDef("sdpa_flash_backward", "attention", None, _run_sdpa_backward,
                               differentiable=False))


def flash_attention(q, k, v, mask, scale: float, causal: bool, dropout_p: float = 0.0,
                    seeds=None):
    """The fused forward's output (``supported`` must hold). With ``dropout_p``, ``seeds``
    is a 2-element int64 tensor drawn from the generator (nn.functional draws it, so
    manual_seed drives it and a compiled replay draws new ones); the kernels drop the same
    weights forward and backward."""
    args = (q, k, v)
    if dropout_p > 0:
        args += (seeds,)
    if mask is not None:
        args += (mask,)
    return apply(SDPA, *args, scale=float(scale), causal=bool(causal),
                 dropout=float(dropout_p))[0]
