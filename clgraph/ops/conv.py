"""Convolution and pooling: conv2d, unfold/fold, and the 2-d and 3-d max, average and adaptive
average pools.

conv2d unfolds patches with the im2col row (as rows: (N, OH*OW, C*kh*kw)), multiplies them
by W^T with the matmul row (the batch folded into M, one GEMM per group), adds the bias as
an ordinary broadcast add and turns the channels-last product into NCHW with the
transpose_copy row. im2col and col2im (fold, its adjoint) are rows whose VJPs are each
other, so conv2d's gradients (input: col2im of g @ W, weight: rows^T @ g, bias: a sum)
come out of autograd as matmuls and differentiate again. Each pool is a row with a kernel
and a backward row, one set of rows per dimensionality over the same N-d kernels (a 2-d
pool runs as a 3-d one of depth one): the average pools' backward rows have the forward
rows as VJPs, max pooling's has a gather at the argmax. No kernel races: each work-item
owns the outputs it writes and adds its contributions in a fixed order, so results are
deterministic without atomics. Kernels live in kernels/conv.cl and read inputs through
strides, so no input is copied. Imports registry, movement, linalg, index (lazily), codegen
and dtypes; never tensor."""

from __future__ import annotations

import functools
import itertools
import numbers

import numpy as np

from .. import codegen
from .. import dtypes as dt
from . import gemm, registry
from .elementwise import _pyname
from .index import gather
from .linalg import fused_linear, linear, matmul
from .movement import reshape, squeeze, unsqueeze
from .registry import OpDef, apply, public, register

# --- kernels ------------------------------------------------------------------------------



def _launch(name, d: dt.dtype, out, rows: int, values: dict, label: str | None = None) -> None:
    """Run kernel ``name`` of kernels/conv.cl for dtype d, one work-item per row, with its
    arguments by parameter name (``rows`` added unless given: the 2x2 pooling kernels take
    several work-items per row); ``label`` names the launch (the row of an N-d kernel)."""
    if rows == 0:
        return
    info = out.device.info
    codegen.check_dtype(info, d)
    defines = codegen.storage_defines(d) + (("ACC", d.compute),
                                            ("F32_ROWS", str(int(d is dt.float32))))
    if d.kind < 2:
        defines += (("LOWEST", _CL_MIN[d.cl]),)
    if d is dt.float64:
        defines += (("USE_FP64", "1"),)
    kern = codegen.template_kernel(info, "conv.cl", name, defines)
    L = codegen.local_size(info)
    registry.launch(info, kern, label or name, (-(-rows // L) * L,), (L,),
                    codegen.pack(kern, {"rows": rows, **values}))


def _img(name: str, t) -> dict:
    """conv.cl's IMG(name): an NCHW image's buffer, offset and strides."""
    sn, sc, sh, sw = t._stride
    return {name: t._storage.buf, f"{name}off": t._offset, f"{name}sn": sn, f"{name}sc": sc,
            f"{name}sh": sh, f"{name}sw": sw}


def _geom(C, H, W, kernel_size, stride, padding, dilation, OH, OW) -> dict:
    """conv.cl's GEOM: the image, window and output sizes."""
    (KH, KW), (SH, SW), (PH, PW), (DH, DW) = kernel_size, stride, padding, dilation
    return {"C": C, "H": H, "W": W, "KH": KH, "KW": KW, "SH": SH, "SW": SW, "PH": PH,
            "PW": PW, "DH": DH, "DW": DW, "OH": OH, "OW": OW}


def _empty(shape, like):
    return registry.Tensor._empty(tuple(shape), like.dtype, like.device)


def _same_device(name, *ts):
    dev = ts[0].device
    for t in ts[1:]:
        if t is not None and t.device != dev:
            raise RuntimeError(
                f"Expected all tensors to be on the same device, but found at least two "
                f"devices, {dev} and {t.device}! (when checking argument for {name})"
            )


def _check_float(name, x):
    if not x.dtype.is_floating_point:

        raise NotImplementedError(f'"{name}" not implemented for \'{_pyname(x.dtype)}\'')


# the lowest value of each integer OpenCL type, where max_pool starts
_CL_MIN = {"uchar": "0", "char": "CHAR_MIN", "short": "SHRT_MIN", "int": "INT_MIN",
           "long": "LONG_MIN", "bool": "0"}


def _check_real(name, x, ints=True):
    """The dtypes an op computes in: floating point, and integers where ``ints`` (as PyTorch's
    CPU kernels: convolutions and max pooling take every integer type, average pooling
    int64 only); bool and complex raise naming the dtype."""
    d = x.dtype
    if d.is_floating_point or (d.kind == 1 and (ints is True or d in ints)):
        return
    raise NotImplementedError(f'"{name}" not implemented for \'{_pyname(d)}\'')


# --- im2col / col2im ----------------------------------------------------------------------


def _conv_out(n, k, s, lo, hi, d) -> int:
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def _unfold_size(size, kernel_size, dilation, padding, stride):
    """(OH, OW) of the sliding blocks; ``padding`` is ((top, bottom), (left, right))."""
    return tuple(_conv_out(n, k, s, lo, hi, d) for n, k, s, (lo, hi), d in
                 zip(size, kernel_size, stride, padding, dilation))


def _run_im2col(op, args, attrs, out=None):
    (x,) = args
    kernel_size, dilation, padding, stride = (attrs[k] for k in
                                              ("kernel_size", "dilation", "padding", "stride"))
    N, C, H, W = x._shape
    OH, OW = _unfold_size((H, W), kernel_size, dilation, padding, stride)
    if OH < 1 or OW < 1:
        raise RuntimeError(
            f"Given input with spatial size ({H}, {W}), kernel_size={tuple(kernel_size)}, "
            f"dilation={tuple(dilation)}, padding={tuple(p[0] for p in padding)}, "
            f"calculated shape of the array of sliding blocks as ({OH}, {OW}), but its "
            "components must be at least one."
        )
    kh, kw = kernel_size
    K, L = C * kh * kw, OH * OW
    top_left = (padding[0][0], padding[1][0])
    geom = _geom(C, H, W, kernel_size, stride, top_left, dilation, OH, OW)
    if attrs["transposed"]:  # (N, L, K): one work-item per (n, oh) writes OW patches
        cols = _empty((N, L, K), x)
        _launch("im2row", x.dtype, cols, N * OH,
                {**_img("x", x), **geom, "out": cols._storage.buf})
    else:  # (N, K, L): one work-item per (n, c, i, j, oh) writes OW taps
        cols = _empty((N, K, L), x)
        rows = N * K * OH
        _launch("im2col", x.dtype, cols, rows, {**_img("x", x), **geom,
                                                 "cols": cols._storage.buf})
    return cols


def _run_col2im(op, args, attrs, out=None):
    (cols,) = args
    H, W = attrs["output_size"]
    kernel_size, dilation, padding, stride = (attrs[k] for k in
                                              ("kernel_size", "dilation", "padding", "stride"))
    kh, kw = kernel_size
    N, K, L = cols._shape
    OH, OW = _unfold_size((H, W), kernel_size, dilation, padding, stride)
    if K % (kh * kw):
        raise RuntimeError(
            f"Expected size of input's dimension 1 to be divisible by the product of "
            f"kernel_size, but got input.size(1)={K} and kernel_size={tuple(kernel_size)}."
        )
    if OH * OW != L or OH < 1 or OW < 1:
        raise RuntimeError(
            f"Given output_size=({H}, {W}), kernel_size={tuple(kernel_size)}, "
            f"dilation={tuple(dilation)}, padding={tuple(p[0] for p in padding)}, "
            f"stride={tuple(stride)}, expected size of input's dimension 2 to match the "
            f"calculated number of sliding blocks {OH} * {OW} = {OH * OW}, but got "
            f"input.size(2)={L}."
        )
    C = K // (kh * kw)
    gx = _empty((N, C, H, W), cols)
    rows = N * C * H
    top_left = (padding[0][0], padding[1][0])
    csn, csk, csl = cols._stride
    _launch("col2im", cols.dtype, gx, rows,
            {"cols": cols._storage.buf, "coff": cols._offset, "csn": csn, "csk": csk,
             "csl": csl, "gx": gx._storage.buf,
             **_geom(C, H, W, kernel_size, stride, top_left, dilation, OH, OW)})
    return gx


def _taps(k, s, lo, d, o):
    """Per tap i and output position, the input position read (may be in the padding)."""
    return np.arange(o)[None, :] * s - lo + np.arange(k)[:, None] * d


def _im2col_ref(x, kernel_size, dilation, padding, stride, transposed):
    N, C, H, W = x.shape
    OH, OW = _unfold_size((H, W), kernel_size, dilation, padding, stride)
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((lo, max(hi, 0)) for lo, hi in padding))
    ih = _taps(kernel_size[0], stride[0], 0, dilation[0], OH)  # in padded coordinates
    iw = _taps(kernel_size[1], stride[1], 0, dilation[1], OW)
    p = xp[:, :, ih[:, None, :, None], iw[None, :, None, :]].reshape(N, -1, OH * OW)
    return np.ascontiguousarray(p.transpose(0, 2, 1)) if transposed else p


def _col2im_ref(cols, output_size, kernel_size, dilation, padding, stride):
    N, K, _ = cols.shape
    kh, kw = kernel_size
    H, W = output_size
    OH, OW = _unfold_size((H, W), kernel_size, dilation, padding, stride)
    (pt, pb), (pl, pr) = padding
    out = np.zeros((N, K // (kh * kw), H + pt + max(pb, 0), W + pl + max(pr, 0)), cols.dtype)
    c = cols.reshape(N, -1, kh, kw, OH, OW)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dilation[0]:i * dilation[0] + stride[0] * OH:stride[0],
                j * dilation[1]:j * dilation[1] + stride[1] * OW:stride[1]] += c[:, :, i, j]
    return out[:, :, pt:pt + H, pl:pl + W]


IM2COL = register(OpDef(
    "im2col", "conv", _im2col_ref, _run_im2col,
    lambda g, x, out, transposed, **a: (apply(
        COL2IM, g.mT if transposed else g, output_size=tuple(x.shape[2:]), **a),),
    saves=(), saves_out=False))
COL2IM = register(OpDef(
    "col2im", "conv", _col2im_ref, _run_col2im,
    lambda g, cols, out, output_size, **a: (apply(IM2COL, g, transposed=False, **a),),
    saves=(), saves_out=False))


def _run_transpose(op, args, attrs, out=None):
    """(..., R, C) with at most two leading dims, any strides -> (..., C, R) contiguous."""
    (x,) = args
    if not 2 <= x.ndim <= 4:
        raise RuntimeError(f"transpose_copy: expected a 2-D to 4-D tensor, got {x.ndim}-D")
    lead = x._shape[:-2]
    R, Cn = x._shape[-2:]
    y = _empty(lead + (Cn, R), x)
    st = (0,) * (2 - len(lead)) + x._stride[:-2]
    B2 = lead[-1] if lead else 1
    nb = int(np.prod(lead)) if lead else 1
    tiles = nb * -(-R // 8) * -(-Cn // 8)
    _launch("transpose", x.dtype, y, tiles,
            {"x": x._storage.buf, "xoff": x._offset, "xs1": st[0], "xs2": st[1],
             "xsr": x._stride[-2], "xsc": x._stride[-1], "B2": B2, "R": R, "Cn": Cn,
             "tiles": tiles, "out": y._storage.buf})
    return y


# The last two dims swapped into a contiguous result: conv2d's layout change from its
# channels-last product to NCHW. A tiled kernel, where the elementwise strided copy pays
# index math per element (2-D transposes of 1.8M floats: 5.6 ms against about 0.4 ms).
TRANSPOSE_COPY = register(OpDef(
    "transpose_copy", "conv", lambda x: np.ascontiguousarray(np.swapaxes(x, -1, -2)),
    _run_transpose, lambda g, x, out: (apply(TRANSPOSE_COPY, g),),
    saves=(), saves_out=False))


# --- implicit-GEMM convolution (GPUs) ------------------------------------------------------
# Three rows, each one GEMM whose operand gathers patches on the fly (kernels/matmul.cl,
# conv_gemm_*): the forward product, the input gradient and the weight gradient. Each is
# linear in each operand, so each VJP is one of the three again (grad of grad works). The
# geometry ``geom`` is conv.cl's GEOM tuple (C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH,
# OW), with the top and left padding; groups of one only.


def _gemm_conv(name, d, M, N, K, out, values):
    info = out.device.info
    codegen.check_dtype(info, d)
    kern, _, p = gemm.for_shape(info, d, M, N, K, False, True, name=name)
    gsize, lsize = gemm.geometry(p, M, N, 1)
    registry.launch(info, kern, name, gsize, lsize, codegen.pack(kern, values))
    return out


def _geom_dict(geom) -> dict:
    return dict(zip(("C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "OH",
                     "OW"), geom))


def _run_conv_gemm(op, args, attrs, out=None):
    """One of the three rows: operands (x, w), (g, w) or (g, x) by the row's name."""
    a, b = args
    geom = attrs["geom"]
    C, H, W, KH, KW, *_, OH, OW = geom
    kernel = {"conv2d_gemm": "conv_gemm_fwd", "conv2d_gemm_dx": "conv_gemm_dx",
              "conv2d_gemm_dw": "conv_gemm_dw"}[op.name]
    N = a._shape[0]
    O = a._shape[1] if kernel == "conv_gemm_dw" else b._shape[0]
    taps, L = C * KH * KW, OH * OW
    # result shape and name, and the GEMM's M, N, K
    shape, name, mnk = {
        "conv_gemm_fwd": ((N, O, OH, OW), "y", (O, N * L, taps)),
        "conv_gemm_dx": ((N, C, H, W), "gx", (C, N * H * W, O * KH * KW)),
        "conv_gemm_dw": ((O, C, KH, KW), "gw", (O, taps, N * L)),
    }[kernel]
    res = _empty(shape, a)
    if res.numel() == 0:
        return res
    values = {**_img("x" if kernel == "conv_gemm_fwd" else "g", a), **_geom_dict(geom),
              "O": O, "NB": N, name: res._storage.buf}
    if kernel == "conv_gemm_dw":
        values.update(_img("x", b))
    else:  # the weight, contiguous from its first element
        w = b.contiguous()
        if w._offset:
            w = w.clone()
        values["wt"] = w._storage.buf
    return _gemm_conv(kernel, a.dtype, *mnk, res, values)


def _taps_ref(geom):
    """For each tap (ki, kj): the input rows and columns each output position reads, and
    whether they are inside the image."""
    _, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW = geom
    for ki in range(KH):
        h = np.arange(OH) * SH - PH + ki * DH
        for kj in range(KW):
            w = np.arange(OW) * SW - PW + kj * DW
            ok = (h[:, None] >= 0) & (h[:, None] < H) & (w[None] >= 0) & (w[None] < W)
            yield ki, kj, np.clip(h, 0, H - 1), np.clip(w, 0, W - 1), ok


def _conv_fwd_ref(x, w, geom):
    y = 0
    for ki, kj, h, ww, ok in _taps_ref(geom):
        patch = x[:, :, h][:, :, :, ww] * ok
        y = y + np.einsum("nchw,oc->nohw", patch, w[:, :, ki, kj])
    return y


def _conv_dx_ref(g, w, geom):
    C, H, W = geom[:3]
    gx = np.zeros((g.shape[0], C, H, W), np.result_type(g, w))
    for ki, kj, h, ww, ok in _taps_ref(geom):
        contrib = np.einsum("nohw,oc->nchw", g, w[:, :, ki, kj]) * ok
        np.add.at(gx, (slice(None), slice(None), h[:, None], ww[None]), contrib)
    return gx


def _conv_dw_ref(g, x, geom):
    KH, KW = geom[3:5]
    gw = np.zeros((g.shape[1], x.shape[1], KH, KW), np.result_type(g, x))
    for ki, kj, h, ww, ok in _taps_ref(geom):
        gw[:, :, ki, kj] = np.einsum("nohw,nchw->oc", g, x[:, :, h][:, :, :, ww] * ok)
    return gw


CONV_FWD = register(OpDef(
    "conv2d_gemm", "conv", _conv_fwd_ref, _run_conv_gemm,
    lambda g, x, w, out, geom: (apply(CONV_DX, g, w, geom=geom),
                                apply(CONV_DW, g, x, geom=geom)),
    saves_out=False, autocast="low"))
CONV_DX = register(OpDef(
    "conv2d_gemm_dx", "conv", _conv_dx_ref, _run_conv_gemm,
    lambda gg, g, w, out, geom: (apply(CONV_FWD, gg, w, geom=geom),
                                 apply(CONV_DW, g, gg, geom=geom)),
    saves_out=False))
CONV_DW = register(OpDef(
    "conv2d_gemm_dw", "conv", _conv_dw_ref, _run_conv_gemm,
    lambda gg, g, x, out, geom: (apply(CONV_FWD, x, gg, geom=geom),
                                 apply(CONV_DX, g, gg, geom=geom)),
    saves_out=False))


# --- pooling rows -------------------------------------------------------------------------
# One set of rows per dimensionality (max_pool2d, max_pool3d, ...), all from _pool_rows and
# run by conv.cl's N-d kernels: a 2-d pool is a 3-d one of depth one. Inputs are batched
# (N, C, *spatial); attrs are tuples of one entry per spatial dim.


def _pool_out(n, k, s, p, d, ceil_mode) -> int:
    """PyTorch's pooling_output_shape: with ceil_mode the last window must start inside the
    image or its left padding."""
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _pool_size(x, kernel_size, stride, padding, dilation, ceil_mode):
    return tuple(_pool_out(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                 zip(x._shape[2:], kernel_size, stride, padding, dilation))


def _vol(name: str, t) -> dict:
    """conv.cl's VOL(name): a volume's buffer, offset and strides (depth stride 0 for an
    image)."""
    sn, sc, *sp = t._stride
    sd, sh, sw = [0] * (3 - len(sp)) + sp
    return {name: t._storage.buf, f"{name}off": t._offset, f"{name}sn": sn, f"{name}sc": sc,
            f"{name}sd": sd, f"{name}sh": sh, f"{name}sw": sw}


def _geom3(C, size, kernel_size, stride, padding, dilation, out) -> dict:
    """conv.cl's GEOM3; a 2-d pool gets a depth of one."""
    def three(v, fill):
        return (fill,) * (3 - len(v)) + tuple(v)
    values = {"C": C}
    for keys, v, fill in (("DHW", size, 1), (("KD", "KH", "KW"), kernel_size, 1),
                          (("SD", "SH", "SW"), stride, 1), (("PD", "PH", "PW"), padding, 0),
                          (("DD", "DH", "DW"), dilation, 1), (("OD", "OH", "OW"), out, 1)):
        values.update(zip(keys, three(v, fill)))
    return values


def _out_rows(N, C, out) -> int:
    """Work-items of the forward pool kernels: one per output row (n, c, od, oh)."""
    return N * C * int(np.prod(out[:-1]))


def _run_max_pool(op, args, attrs, out=None):
    (x,) = args
    ks, st, pad, dil = (attrs[k] for k in ("kernel_size", "stride", "padding", "dilation"))
    N, C, *size = x._shape
    osize = _pool_size(x, ks, st, pad, dil, attrs["ceil_mode"])
    y = _empty((N, C) + osize, x)
    idx = registry.Tensor._empty((N, C) + osize, dt.int64, x.device) \
        if attrs["return_indices"] else None
    rows = _out_rows(N, C, osize)
    bufs = {"y": y._storage.buf, "want_idx": int(idx is not None),
            "idx": (idx if idx is not None else y)._storage.buf}
    if _pool2x2(attrs, x, osize):
        H, W = size
        _launch("max_pool2x2", x.dtype, y, rows * -(-osize[1] // 8),
                {**_img("x", x), **bufs, "C": C, "H": H, "W": W, "OH": osize[0],
                 "OW": osize[1], "rows": rows})
    else:
        _launch("max_pool", x.dtype, y, rows,
                {**_vol("x", x), **bufs, **_geom3(C, size, ks, st, pad, dil, osize)},
                label=op.name)
    return y if idx is None else (y, idx)


def _pool2x2(attrs, x, osize) -> bool:
    """Whether conv.cl's max_pool2x2 kernels apply: 2-d 2x2 windows at stride 2 without
    padding or dilation over float32 rows read with unit stride."""
    return (attrs["kernel_size"] == (2, 2) and attrs["stride"] == (2, 2)
            and attrs["padding"] == (0, 0) and attrs["dilation"] == (1, 1)
            and x.dtype is dt.float32 and x._stride[3] == 1 and min(osize) >= 1
            and osize == (x._shape[2] // 2, x._shape[3] // 2))


def _run_max_pool_backward(op, args, attrs, out=None):
    g, x = args
    ks, st, pad, dil = (attrs[k] for k in ("kernel_size", "stride", "padding", "dilation"))
    N, C, *size = x._shape
    osize = _check_grad_size(g, _pool_size(x, ks, st, pad, dil, attrs["ceil_mode"]))
    gx = _empty(x._shape, g)
    rows = _out_rows(N, C, osize)
    if _pool2x2(attrs, x, osize) and g.dtype is dt.float32:
        H, W = size
        _launch("max_pool2x2_backward", g.dtype, gx, rows * -(-osize[1] // 8),
                {**_img("g", g), **_img("x", x), "gx": gx._storage.buf, "C": C, "H": H,
                 "W": W, "OH": osize[0], "OW": osize[1], "rows": rows})
    else:
        _launch("max_pool_backward", g.dtype, gx, rows,
                {**_vol("g", g), **_vol("x", x), "gx": gx._storage.buf,
                 **_geom3(C, size, ks, st, pad, dil, osize)}, label=op.name)
    return gx


def _check_grad_size(g, size):
    if tuple(g._shape[2:]) != tuple(size):
        raise RuntimeError(f"expected a gradient of spatial size {list(size)}, but got "
                           f"{list(g.shape)}")
    return tuple(size)


def _avg_flags(attrs) -> dict:
    return {"include_pad": int(attrs["count_include_pad"]),
            "divisor": int(attrs["divisor_override"] or 0)}


def _run_avg_pool(op, args, attrs, out=None):
    (x,) = args
    ks, st, pad = (attrs[k] for k in ("kernel_size", "stride", "padding"))
    N, C, *size = x._shape
    ones = (1,) * len(ks)
    osize = _pool_size(x, ks, st, pad, ones, attrs["ceil_mode"])
    y = _empty((N, C) + osize, x)
    _launch("avg_pool", x.dtype, y, _out_rows(N, C, osize),
            {**_vol("x", x), **_geom3(C, size, ks, st, pad, ones, osize),
             **_avg_flags(attrs), "y": y._storage.buf}, label=op.name)
    return y


def _run_avg_pool_backward(op, args, attrs, out=None):
    (g,) = args
    ks, st, pad = (attrs[k] for k in ("kernel_size", "stride", "padding"))
    N, C, *osize = g._shape
    size = tuple(attrs["input_size"])
    ones = (1,) * len(ks)
    _check_grad_size(g, tuple(_pool_out(n, k, s, p, 1, attrs["ceil_mode"]) for n, k, s, p in
                              zip(size, ks, st, pad)))
    gx = _empty((N, C) + size, g)
    _launch("avg_pool_backward", g.dtype, gx, N * C * int(np.prod(size[:-1])),
            {**_vol("g", g), **_geom3(C, size, ks, st, pad, ones, osize),
             **_avg_flags(attrs), "gx": gx._storage.buf}, label=op.name)
    return gx


def _adaptive(kernel, label, x, size, osize, result_size):
    """Adaptive average pooling ``size`` -> ``osize``, or its backward (result_size the
    input's): one work-item per result row."""
    N, C = x._shape[:2]
    y = _empty((N, C) + tuple(result_size), x)
    src, dst = ("x", "y") if kernel == "adaptive_avg_pool" else ("g", "gx")
    g = _geom3(C, size, (), (), (), (), osize)
    _launch(kernel, x.dtype, y, N * C * int(np.prod(result_size[:-1])),
            {**_vol(src, x), **{k: g[k] for k in ("C", "D", "H", "W", "OD", "OH", "OW")},
             dst: y._storage.buf}, label=label)
    return y


def _run_adaptive(op, args, attrs, out=None):
    (x,) = args
    osize = tuple(attrs["output_size"])
    return _adaptive("adaptive_avg_pool", op.name, x, x._shape[2:], osize, osize)


def _run_adaptive_backward(op, args, attrs, out=None):
    (g,) = args
    size = tuple(attrs["input_size"])
    return _adaptive("adaptive_avg_pool_backward", op.name, g, size, g._shape[2:], size)


# numpy references (the row's ``ref``); NaN ties aside, they match the kernels exactly


def _grid(nd: int, axis: int, a):
    """A (O, K) table of axis ``axis`` of ``nd`` shaped to broadcast as (O..., K...)."""
    shape = [1] * (2 * nd)
    shape[axis], shape[nd + axis] = a.shape
    return a.reshape(shape)


def _windows(x, kernel_size, stride, padding, dilation, out_size, fill):
    """The windows as an (N, C, *out_size, *kernel_size) array of the input padded with
    ``fill``."""
    nd = len(kernel_size)
    pads = [(p, max(0, (o - 1) * s + d * (k - 1) + 1 - n - p)) for n, k, s, p, d, o in
            zip(x.shape[2:], kernel_size, stride, padding, dilation, out_size)]
    xp = np.pad(x, ((0, 0), (0, 0), *pads), constant_values=fill)
    taps = tuple(_grid(nd, i, _taps(k, s, 0, d, o).T) for i, (k, s, d, o) in
                 enumerate(zip(kernel_size, stride, dilation, out_size)))
    return xp[(slice(None), slice(None)) + taps]


def _max_pool_ref(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    nd = len(kernel_size)
    size = tuple(_pool_out(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                 zip(x.shape[2:], kernel_size, stride, padding, dilation))
    win = _windows(x, kernel_size, stride, padding, dilation, size, -np.inf)
    flat = win.reshape(*win.shape[:2 + nd], -1)
    y = flat.max(-1)
    if not return_indices:
        return y
    taps = np.unravel_index(flat.argmax(-1), kernel_size)
    pos = [np.arange(o).reshape([-1 if j == i else 1 for j in range(nd)]) * s - p + t * d
           for i, (t, o, s, p, d) in enumerate(zip(taps, size, stride, padding, dilation))]
    return y, np.ravel_multi_index(tuple(pos), x.shape[2:])


def _max_pool_backward_ref(g, x, **attrs):
    _, idx = _max_pool_ref(x, **attrs, return_indices=True)
    gx = np.zeros(x.shape, g.dtype)
    N, C = x.shape[:2]
    flat = gx.reshape(N, C, -1)
    for n in range(N):
        for c in range(C):
            np.add.at(flat[n, c], idx[n, c].ravel(), g[n, c].ravel())
    return gx


def _avg_divisors(size, kernel_size, stride, padding, count_include_pad, divisor_override,
                  out_size):
    if divisor_override:
        return np.full(out_size, float(divisor_override))
    ext = []
    for n, k, s, p, o in zip(size, kernel_size, stride, padding, out_size):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        ext.append(end - start if count_include_pad else
                   np.minimum(end, n) - np.maximum(start, 0))
    return functools.reduce(np.multiply.outer, ext)


def _avg_pool_ref(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override):
    nd = len(kernel_size)
    size = tuple(_pool_out(n, k, s, p, 1, ceil_mode) for n, k, s, p in
                 zip(x.shape[2:], kernel_size, stride, padding))
    win = _windows(x, kernel_size, stride, padding, (1,) * nd, size, 0)
    div = _avg_divisors(x.shape[2:], kernel_size, stride, padding, count_include_pad,
                        divisor_override, size)
    return (win.sum(tuple(range(-nd, 0))) / div).astype(x.dtype)


def _avg_pool_backward_ref(g, input_size, **attrs):
    x = np.zeros(g.shape[:2] + tuple(input_size), g.dtype)
    # the adjoint of a linear map, through its matrix
    n = int(np.prod(input_size))
    basis = np.eye(n, dtype=g.dtype).reshape(n, 1, *input_size)
    m = _avg_pool_ref(basis, **attrs).reshape(n, -1)  # input pixel -> outputs
    N, C = g.shape[:2]
    x[:] = (g.reshape(N, C, -1) @ m.T).reshape(x.shape)
    return x


def _adaptive_bounds(n, o):
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def _adaptive_windows(size, out_size):
    """(output position, the window's slices) for each adaptive window."""
    per_dim = [list(enumerate(_adaptive_bounds(n, o))) for n, o in zip(size, out_size)]
    for combo in itertools.product(*per_dim):
        yield tuple(i for i, _ in combo), tuple(slice(a, b) for _, (a, b) in combo)


def _adaptive_ref(x, output_size):
    nd = len(output_size)
    y = np.zeros(x.shape[:2] + tuple(output_size), x.dtype)
    for at, win in _adaptive_windows(x.shape[2:], output_size):
        y[(...,) + at] = x[(...,) + win].mean(tuple(range(-nd, 0)))
    return y


def _adaptive_backward_ref(g, input_size):
    gx = np.zeros(g.shape[:2] + tuple(input_size), g.dtype)
    for at, win in _adaptive_windows(input_size, g.shape[2:]):
        gx[(...,) + win] += g[(...,) + at][(...,) + (None,) * len(at)] / np.prod(
            [w.stop - w.start for w in win])
    return gx


def _row(name, ref, run, vjp, saves):
    return register(OpDef(name, "conv", ref, run, vjp,
                          saves=saves, saves_out=False))


def _pool_rows(nd: int) -> tuple:
    """The pooling rows of ``nd`` spatial dims: max, its backward, average, its backward,
    adaptive average, its backward."""
    def max_pool_backward_vjp(gg, g, x, out, **attrs):
        """The gradient of the scatter-to-argmax: gather gg at each window's argmax."""
        _, idx = apply(max_pool, x.detach(), return_indices=True, **attrs)
        N, C, *osize = g.shape
        flat = gather(reshape(gg, N, C, -1), 2, reshape(idx, N, C, -1))
        return reshape(flat, N, C, *osize), None

    max_pool = _row(f"max_pool{nd}d", _max_pool_ref, _run_max_pool,
                    lambda g, x, out, return_indices, **a: (
                        apply(max_pool_backward, g, x, **a),), saves=(0,))
    max_pool_backward = _row(f"max_pool{nd}d_backward", _max_pool_backward_ref,
                             _run_max_pool_backward, max_pool_backward_vjp, saves=(1,))
    avg_pool = _row(f"avg_pool{nd}d", _avg_pool_ref, _run_avg_pool,
                    lambda g, x, out, **a: (
                        apply(avg_pool_backward, g, input_size=tuple(x.shape[2:]), **a),),
                    saves=())
    avg_pool_backward = _row(f"avg_pool{nd}d_backward", _avg_pool_backward_ref,
                             _run_avg_pool_backward,
                             lambda gg, g, out, input_size, **a: (apply(avg_pool, gg, **a),),
                             saves=())
    adaptive = _row(f"adaptive_avg_pool{nd}d", _adaptive_ref, _run_adaptive,
                    lambda g, x, out, output_size: (apply(
                        adaptive_backward, g, input_size=tuple(x.shape[2:])),), saves=())
    adaptive_backward = _row(
        f"adaptive_avg_pool{nd}d_backward", _adaptive_backward_ref, _run_adaptive_backward,
        lambda gg, g, out, input_size: (apply(adaptive, gg, output_size=tuple(g.shape[2:])),),
        saves=())
    return (max_pool, max_pool_backward, avg_pool, avg_pool_backward, adaptive,
            adaptive_backward)


(MAX_POOL2D, MAX_POOL2D_BACKWARD, AVG_POOL2D, AVG_POOL2D_BACKWARD, ADAPTIVE_AVG_POOL2D,
 ADAPTIVE_AVG_POOL2D_BACKWARD) = _pool_rows(2)
(MAX_POOL3D, MAX_POOL3D_BACKWARD, AVG_POOL3D, AVG_POOL3D_BACKWARD, ADAPTIVE_AVG_POOL3D,
 ADAPTIVE_AVG_POOL3D_BACKWARD) = _pool_rows(3)
_MAX_POOL = {2: MAX_POOL2D, 3: MAX_POOL3D}
_AVG_POOL = {2: AVG_POOL2D, 3: AVG_POOL3D}
_ADAPTIVE_AVG_POOL = {2: ADAPTIVE_AVG_POOL2D, 3: ADAPTIVE_AVG_POOL3D}


# --- argument parsing (PyTorch's rules and messages) -------------------------------------


def _ints(value, name: str, message: str) -> tuple[int, int]:
    """An int or a 1- or 2-sequence of ints as a pair; ``message`` for other lengths."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and 1 <= len(value) <= 2 and all(
            isinstance(v, (numbers.Integral, np.integer)) for v in value):
        return int(value[0]), int(value[-1])
    if isinstance(value, (tuple, list)):
        raise RuntimeError(message)
    raise TypeError(f"{name}(): argument must be int or tuple of ints, not "
                    f"{type(value).__name__}")


def _conv_pair(value, what: str) -> tuple[int, int]:
    shown = list(value) if isinstance(value, (tuple, list)) else value
    return _ints(value, "conv2d", f"expected {what} to be a single integer value or a list of "
                                  f"2 values to match the convolution dimensions, but got "
                                  f"{what}={shown}")


def _batched4(x, fn: str, ndim_message):
    """x as (N, C, H, W) and whether it was unbatched (C, H, W)."""
    if not isinstance(x, registry.Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    if x.ndim == 3:
        return unsqueeze(x, 0), True
    if x.ndim == 4:
        return x, False
    raise RuntimeError(ndim_message(x))


def _unbatch(y, unbatched):
    if isinstance(y, tuple):
        return tuple(_unbatch(t, unbatched) for t in y)
    return squeeze(y, 0) if unbatched else y


_CNAME = {"float32": "float", "float64": "double", "float16": "c10::Half",
          "bfloat16": "c10::BFloat16"}


def _tname(t) -> str:

    return "torch." + t.dtype.tensor_type


def _conv_args(x, weight, bias, stride, padding, dilation, groups):
    """conv2d's checks, in PyTorch's order; returns stride, ((top, bottom), (left, right))
    padding and dilation."""
    if not isinstance(weight, registry.Tensor):
        raise TypeError(f"conv2d(): argument 'weight' (position 2) must be Tensor, not "
                        f"{type(weight).__name__}")
    if not isinstance(groups, (numbers.Integral, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"conv2d(): argument 'groups' must be int, not {type(groups).__name__}")
    _same_device("conv2d", x, weight, bias)
    st, dil = _conv_pair(stride, "stride"), _conv_pair(dilation, "dilation")
    if min(st) <= 0:
        raise RuntimeError("non-positive stride is not supported")
    if min(dil) <= 0:
        raise RuntimeError("non-positive dilation is not supported")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if weight.ndim != 4:
        raise RuntimeError(
            f"expected stride to be a single integer value or a list of {weight.ndim - 2} "
            f"values to match the convolution dimensions, but got stride={list(st)}")
    O, Cg, kh, kw = weight.shape
    N, C, H, W = x.shape
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise RuntimeError(f"Invalid padding string: '{padding}'")
        if padding == "same" and st != (1, 1):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        # 'same': the odd one of an odd total goes to the bottom/right, as PyTorch's
        total = [d * (k - 1) if padding == "same" else 0 for k, d in ((kh, dil[0]),
                                                                      (kw, dil[1]))]
        pads = tuple((t // 2, t - t // 2) for t in total)
    else:
        ph, pw = _conv_pair(padding, "padding")
        if ph < 0 or pw < 0:
            raise RuntimeError("negative padding is not supported")
        pads = ((ph, ph), (pw, pw))
    if O == 0:
        raise RuntimeError(f"Given groups={groups}, expected weight to be at least 1 at "
                           f"dimension 0, but got weight of size {list(weight.shape)} instead")
    if O % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by "
                           f"{groups} at dimension 0, but got weight of size "
                           f"[{list(weight.shape)}] instead")
    if C != Cg * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
            f"input{list(x.shape)} to have {Cg * groups} channels, but got {C} channels "
            "instead")
    padded = (H + sum(pads[0]), W + sum(pads[1]))
    eff = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    if padded[0] < eff[0] or padded[1] < eff[1]:
        raise RuntimeError(
            f"Calculated padded input size per channel: ({padded[0]} x {padded[1]}). "
            f"Kernel size: ({eff[0]} x {eff[1]}). Kernel size can't be greater than actual "
            "input size")
    if x.dtype is not weight.dtype:
        raise RuntimeError(
            f"Input type ({_tname(x)}) and weight type ({_tname(weight)}) should be the same "
            "or input should be a MKLDNN tensor and weight is a dense tensor")
    if bias is not None:
        if bias.ndim != 1 or bias.shape[0] != O:
            raise RuntimeError(
                f"Given weight of size {list(weight.shape)}, expected bias to be "
                f"1-dimensional with {O} elements, but got bias of size {list(bias.shape)} "
                "instead")
        if bias.dtype is not x.dtype:
            raise RuntimeError(
                f"Input type ({_CNAME.get(x.dtype.name, x.dtype.name)}) and bias type "
                f"({_CNAME.get(bias.dtype.name, bias.dtype.name)}) should be the same")
    _check_real("conv2d", x)
    return st, pads, dil


# --- public functions ---------------------------------------------------------------------


@public(method=False)
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d, as im2col and matmul; ``padding`` may be 'valid'/'same'."""
    x, unbatched = _batched4(input, "conv2d", lambda t: (
        f"Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: "
        f"{list(t.shape)}"))
    st, pads, dil = _conv_args(x, weight, bias, stride, padding, dilation, groups)
    O, Cg, kh, kw = weight.shape
    N, C, H, W = x.shape
    OH, OW = _unfold_size((H, W), (kh, kw), dil, pads, st)
    L, K, Og = OH * OW, Cg * kh * kw, O // groups
    if (kh, kw) == (1, 1) and st == (1, 1) and pads == ((0, 0), (0, 0)) and groups == 1:
        # a 1x1 convolution is a GEMM as it stands: W (O, C) times each image's (C, H*W),
        # straight into NCHW, with no patches and no layout change
        y = matmul(reshape(weight, 1, O, C), reshape(x, N, C, L))
        if bias is not None:
            y = y + reshape(bias, 1, O, 1).to(y.dtype)
        return _unbatch(reshape(y, N, O, OH, OW), unbatched)
    if groups == 1 and not x.device.info.is_cpu and x.dtype.is_floating_point:
        # GPUs: one implicit GEMM, patches gathered while tiles are staged
        geom = (C, H, W, kh, kw, *st, pads[0][0], pads[1][0], *dil, OH, OW)
        y = apply(CONV_FWD, x, weight, geom=geom)
        if bias is not None:
            y = y + reshape(bias, 1, O, 1, 1).to(y.dtype)
        return _unbatch(y, unbatched)
    # A channels-last product: patches as rows (N*L, C*kh*kw) times W^T, one GEMM per group
    # with the batch folded into M. Then each of the three GEMMs (forward, input gradient,
    # weight gradient) finds its right operand with a unit column stride, as the matmul
    # kernel needs; with patches as columns the weight gradient g @ cols^T would copy
    # cols transposed, and that strided copy is the slowest part of a step (5.6 ms for
    # 1.8M floats against 0.4 ms for both transpose_copy calls of this layout).
    rows = apply(IM2COL, x, kernel_size=(kh, kw), dilation=dil, padding=pads, stride=st,
                 transposed=True)  # (N, L, C*kh*kw)
    if (groups == 1 and bias is not None and N * L * K > 0
            and fused_linear(rows, reshape(weight, O, K), bias)):
        # one linear op: the bias is added as the product is stored
        y = reshape(linear(rows, reshape(weight, O, K), bias), N, 1, L, O)
        y = apply(TRANSPOSE_COPY, y)  # (N, 1, O, L): NCHW
        return _unbatch(reshape(y, N, O, OH, OW), unbatched)
    a = reshape(rows, N * L, groups, K).permute(1, 0, 2)  # (groups, N*L, K), a view
    wt = reshape(weight, groups, Og, K).permute(0, 2, 1)  # (groups, K, Og)
    y = matmul(a, wt)  # (groups, N*L, Og)
    if bias is not None:
        y = y + reshape(bias, groups, 1, Og).to(y.dtype)  # the product's (autocast)
    y = reshape(y, groups, N, L, Og).permute(1, 0, 2, 3)  # (N, groups, L, Og), a view
    y = apply(TRANSPOSE_COPY, y)  # (N, groups, Og, L): NCHW
    return _unbatch(reshape(y, N, O, OH, OW), unbatched)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.unfold: (N, C, H, W) -> (N, C*kh*kw, L) sliding blocks."""
    x, unbatched = _batched4(input, "unfold", lambda t: (
        f"Input Error: Only 3D or 4D input Tensors are supported (got {t.ndim}D)"))
    args = [_ints(v, "unfold", f"{n} must be an int or a tuple of two ints")
            for v, n in ((kernel_size, "kernel_size"), (dilation, "dilation"),
                         (padding, "padding"), (stride, "stride"))]
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = args
    _check_window("im2col", kh, kw, dh, dw, ph, pw, sh, sw)
    if x.dtype is not dt.bool_:  # PyTorch's unfold: floating types and bool
        _check_float("im2col", x)
    return _unbatch(apply(IM2COL, x, kernel_size=(kh, kw), dilation=(dh, dw),
                          padding=((ph, ph), (pw, pw)), stride=(sh, sw), transposed=False),
                    unbatched)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.fold: sums (N, C*kh*kw, L) sliding blocks into (N, C, H, W)."""
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"fold(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors "
                           f"are supported (got {input.ndim}D)")
    unbatched = input.ndim == 2
    cols = unsqueeze(input, 0) if unbatched else input
    args = [_ints(v, "fold", f"{n} must be an int or a tuple of two ints")
            for v, n in ((output_size, "output_size"), (kernel_size, "kernel_size"),
                         (dilation, "dilation"), (padding, "padding"), (stride, "stride"))]
    (H, W), (kh, kw), (dh, dw), (ph, pw), (sh, sw) = args
    _check_window("col2im", kh, kw, dh, dw, ph, pw, sh, sw)
    args = ((H, W), (kh, kw), (dh, dw), (ph, pw), (sh, sw))
    if cols.dtype is dt.bool_:  # PyTorch's bool sum of overlapping blocks: any of them
        return _unbatch(col2im(cols.to(dt.int32), *args) != 0, unbatched)
    _check_float("col2im", cols)
    return _unbatch(col2im(cols, *args), unbatched)


def col2im(cols, output_size, kernel_size, dilation, padding, stride):
    """fold of checked (N, C*kh*kw, L) blocks, pairs for each argument, integers too (the
    sum of an integer transposed convolution's windows; PyTorch's public fold takes floating
    types only)."""
    (ph, pw) = padding
    return apply(COL2IM, cols, output_size=tuple(output_size), kernel_size=tuple(kernel_size),
                 dilation=tuple(dilation), padding=((ph, ph), (pw, pw)), stride=tuple(stride))


def _check_window(name, kh, kw, dh, dw, ph, pw, sh, sw):
    if kh <= 0 or kw <= 0:
        raise RuntimeError(f"kernel size should be greater than zero, but got kernel_height: "
                           f"{kh} kernel_width: {kw}")
    if dh <= 0 or dw <= 0:
        raise RuntimeError(f"dilation should be greater than zero, but got dilation_height: "
                           f"{dh} dilation_width: {dw}")
    if ph < 0 or pw < 0:
        raise RuntimeError(f"padding should be non-negative, but got pad_height: {ph} "
                           f"pad_width: {pw}")
    if sh <= 0 or sw <= 0:
        raise RuntimeError(f"stride should be greater than zero, but got stride_height: {sh} "
                           f"stride_width: {sw}")


# --- pooling functions ---------------------------------------------------------------------

_COUNT = {1: "one", 2: "two", 3: "three"}
_AXES = {2: ("H", "W"), 3: ("T", "H", "W")}  # PyTorch's letters in its messages


def _pool_tuple(value, nd: int, fn: str, what: str, position: int, message: str) -> tuple:
    """An int or a 1- or nd-sequence of ints as an nd-tuple; ``message`` for other lengths,
    PyTorch's TypeError for anything but ints."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        return (int(value),) * nd
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{fn}(): argument '{what}' (position {position}) must be tuple of "
                        f"ints, not {type(value).__name__}")
    for i, v in enumerate(value):
        if not isinstance(v, (numbers.Integral, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{fn}(): argument '{what}' (position {position}) must be tuple "
                            f"of ints, but found element of type {type(v).__name__} at pos {i}")
    if len(value) not in (1, nd):
        raise RuntimeError(message)
    return tuple(int(v) for v in value) * (nd if len(value) == 1 else 1)


def _half(a: int, b: int) -> int:
    """C's a / b for b > 0 (rounds toward zero), as PyTorch's checks compute."""
    return -(-a // b) if a < 0 else a // b


def _pool_args(fn, x, kernel_size, stride, padding, dilation, ceil_mode, nd: int = 2,
               avg: bool = False):
    """PyTorch's pooling checks for ``nd`` spatial dims, in its order and words (the 3-d
    average pool's differ a little); returns kernel_size, stride, padding, dilation."""
    count = _COUNT[nd]
    must = "must be" if avg and nd == 3 else "must either be"
    ks = _pool_tuple(kernel_size, nd, fn, "kernel_size", 2,
                     f"{fn}: kernel_size {must} a single int, or a tuple of {count} ints")
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        st = ks
    else:
        st = _pool_tuple(stride, nd, fn, "stride", 3, f"{fn}: stride {must} omitted, a single "
                                                      f"int, or a tuple of {count} ints")
    pad = _pool_tuple(padding, nd, fn, "padding", 4,
                      f"{fn}: padding {must} a single int, or a tuple of {count} ints")
    dil = _pool_tuple(dilation, nd, fn, "dilation", 5,
                      f"{fn}: dilation must be either a single int, or a tuple of {count} ints")
    if nd == 3 and x.ndim not in (4, 5):
        raise RuntimeError("non-empty 4D or 5D (batch mode) tensor expected for input")
    if 0 in st:
        raise RuntimeError("stride should not be zero")
    for p in pad:
        if p < 0:
            raise RuntimeError(f"pad must be non-negative, but got pad: {p}")
    for k, p, d in zip(ks, pad, dil):
        if p > _half((k - 1) * d + 1, 2):
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p}, kernel_size={k} and dilation={d}")
    axes = _AXES[nd]
    for vals, what, key in ((ks, "kernel size", "k"), (st, "stride", "d"),
                            (dil, "dilation", "dilation")):
        if min(vals) <= 0:
            got = " ".join(f"{key}{a}: {v}" for a, v in zip(axes, vals))
            raise RuntimeError(f"{what} should be greater than zero, but got {got}")
    shape = list(x.shape)
    if nd == 2:
        if x.ndim not in (3, 4) or (x.ndim == 3 and x.numel() == 0):
            raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
        if 0 in shape[-3:]:
            raise RuntimeError(f"Expected 3D or 4D (batch mode) tensor with optional 0 dim "
                               f"batch size for input, but got:{shape}")
    elif 0 in shape[-4:]:
        where = "avg_pool3d()" if avg else "max_pool3d_with_indices_out_cpu_template()"
        raise RuntimeError(f"{where}: Expected input's non-batch dimensions to have positive "
                           f"length, but input has a shape of {shape} and non-batch dimension "
                           "0 has length zero!")
    size = shape[-nd:]
    if avg and nd == 3 and any(n < k for n, k in zip(size, ks)):
        raise RuntimeError(f"input image (T: {size[0]} H: {size[1]} W: {size[2]}) smaller "
                           f"than kernel size (kT: {ks[0]} kH: {ks[1]} kW: {ks[2]})")
    if any(k // 2 < p for k, p in zip(ks, pad)):
        if nd == 2:
            raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, "
                               f"but got padW = {pad[1]}, padH = {pad[0]}, kW = {ks[1]}, "
                               f"kH = {ks[0]}")
        raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but "
                           f"got kT: {ks[0]} kW: {ks[2]} kH: {ks[1]} padT: {pad[0]} padW: "
                           f"{pad[2]} padH: {pad[1]}")
    osize = [_pool_out(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
             zip(size, ks, st, pad, dil)]
    if min(osize) < 1:
        C = shape[-nd - 1]
        raise RuntimeError(f"Given input size: ({'x'.join(map(str, [C] + size))}). Calculated "
                           f"output size: ({'x'.join(map(str, [C] + osize))}). Output size is "
                           "too small")
    _check_real(fn, x, ints=(dt.int64,) if avg else True)
    return ks, st, pad, dil


def _batched(x, nd: int):
    """x with a batch dim and whether it was unbatched ((C, *spatial) of nd spatial dims)."""
    return (unsqueeze(x, 0), True) if x.ndim == nd + 1 else (x, False)


def _check_tensor(fn: str, x) -> None:
    if not isinstance(x, registry.Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


def _max_pool(nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    fn = f"max_pool{nd}d"
    _check_tensor(fn, input)
    ks, st, pad, dil = _pool_args(fn, input, kernel_size, stride, padding, dilation,
                                  ceil_mode, nd)
    x, unbatched = _batched(input, nd)
    r = apply(_MAX_POOL[nd], x, kernel_size=ks, stride=st, padding=pad, dilation=dil,
              ceil_mode=bool(ceil_mode), return_indices=bool(return_indices))
    return _unbatch(r, unbatched)


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    fn = f"avg_pool{nd}d"
    _check_tensor(fn, input)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    ks, st, pad, _ = _pool_args(fn, input, kernel_size, stride, padding, 1, ceil_mode, nd,
                                avg=True)
    x, unbatched = _batched(input, nd)
    y = apply(_AVG_POOL[nd], x, kernel_size=ks, stride=st, padding=pad,
              ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
              divisor_override=int(divisor_override) if divisor_override else None)
    return _unbatch(y, unbatched)


@public(method=False)
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool2d; indices are flat h*W + w per plane, as PyTorch's."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool3d; indices are flat (d*H + h)*W + w per volume."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """torch.nn.functional.avg_pool2d."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """torch.nn.functional.avg_pool3d (floating-point inputs only)."""
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _adaptive_size(fn: str, input, output_size, nd: int, message: str) -> tuple:
    """output_size as an nd-tuple, None keeping that input size."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise RuntimeError(message)
        return tuple(input.shape[i - nd] if v is None else int(v)
                     for i, v in enumerate(output_size))
    return (int(output_size),) * nd


def _check_adaptive_input(fn: str, input, nd: int, got_sep: str = " ") -> None:
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}(): Expected {nd + 1}D or {nd + 2}D tensor, but got"
                           f"{got_sep}{list(input.shape)}")
    for d in range(1, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(
                f"{fn}(): Expected input to have non-zero size for non-batch dimensions, but "
                f"input has sizes {list(input.shape)} with dimension {d} being empty")


def _adaptive_avg_pool(nd, input, output_size):
    fn = f"adaptive_avg_pool{nd}d"
    _check_tensor(fn, input)
    size = _adaptive_size(fn, input, output_size, nd, f"{fn}: output_size must be {nd}")
    _check_adaptive_input(fn, input, nd)
    if min(size) < 0:
        shown = ", ".join(map(str, size)) if nd == 2 else \
            f"{size[0]}, {size[1]},{size[2]}"  # sic
        raise RuntimeError(f"{fn}: elements of output_size must be greater than or equal to 0 "
                           f"but received {{{shown}}}")
    _check_float(fn, input)
    x, unbatched = _batched(input, nd)
    return _unbatch(apply(_ADAPTIVE_AVG_POOL[nd], x, output_size=size), unbatched)


def adaptive_avg_pool2d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool2d; None in output_size keeps that input size."""
    return _adaptive_avg_pool(2, input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool3d; None in output_size keeps that input size."""
    return _adaptive_avg_pool(3, input, output_size)


def _single(v, fn: str, what: str) -> int:
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise RuntimeError(f"{fn}: {what} must be a single int or a tuple of one int, got "
                               f"{tuple(v)}")
        v = v[0]
    if not isinstance(v, numbers.Integral) or isinstance(v, bool):
        raise TypeError(f"{fn}(): argument '{what}' must be int, not {type(v).__name__}")
    return int(v)


def _as_1d_pool(fn: str, input):
    """(N, C, L) or (C, L) as one-row images for the 2-d pools."""
    _check_tensor(fn, input)
    if input.ndim not in (2, 3):
        raise RuntimeError(f"{fn}: Expected 2D or 3D (batch mode) tensor for input, but got "
                           f"{list(input.shape)}")
    return unsqueeze(input, -2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool1d: max_pool2d over one-row images."""
    x = _as_1d_pool("max_pool1d", input)
    k = _single(kernel_size, "max_pool1d", "kernel_size")
    s = k if stride is None or stride == () or stride == [] else _single(stride, "max_pool1d",
                                                                         "stride")
    r = max_pool2d(x, (1, k), (1, s), (0, _single(padding, "max_pool1d", "padding")),
                   (1, _single(dilation, "max_pool1d", "dilation")), ceil_mode, return_indices)
    if isinstance(r, tuple):
        return tuple(squeeze(t, -2) for t in r)
    return squeeze(r, -2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """torch.nn.functional.avg_pool1d: avg_pool2d over one-row images."""
    x = _as_1d_pool("avg_pool1d", input)
    k = _single(kernel_size, "avg_pool1d", "kernel_size")
    s = k if stride is None or stride == () or stride == [] else _single(stride, "avg_pool1d",
                                                                         "stride")
    y = avg_pool2d(x, (1, k), (1, s), (0, _single(padding, "avg_pool1d", "padding")),
                   ceil_mode, count_include_pad)
    return squeeze(y, -2)


__all__ = ["adaptive_avg_pool2d", "adaptive_avg_pool3d", "avg_pool1d", "avg_pool2d",
           "avg_pool3d", "conv2d", "fold", "max_pool1d", "max_pool2d", "max_pool3d", "unfold"]
