"""Convolution and pooling: conv2d, unfold/fold, max_pool2d, avg_pool2d, adaptive_avg_pool2d.

conv2d unfolds patches with the im2col row (as rows: (N, OH*OW, C*kh*kw)), multiplies them
by W^T with the matmul row (the batch folded into M, one GEMM per group), adds the bias as
an ordinary broadcast add and turns the channels-last product into NCHW with the
transpose_copy row. im2col and col2im (fold, its adjoint) are rows whose VJPs are each
other, so conv2d's gradients (input: col2im of g @ W, weight: rows^T @ g, bias: a sum)
come out of autograd as matmuls and differentiate again. Each pool is a row with a kernel
and a backward row: the average pools' backward rows have the forward rows as VJPs, max
pooling's has a gather at the argmax. No kernel races: each work-item owns the outputs it
writes and adds its contributions in a fixed order, so results are deterministic without
atomics. Kernels live in kernels/conv.cl and read inputs through strides, so no input is
copied. Imports registry, movement, linalg, index (lazily), codegen and dtypes; never
tensor."""

from __future__ import annotations

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



def _launch(name, d: dt.dtype, out, rows: int, values: dict) -> None:
    """Run kernel ``name`` of kernels/conv.cl for dtype d, one work-item per row, with its
    arguments by parameter name (``rows`` added unless given: the 2x2 pooling kernels take
    several work-items per row)."""
    if rows == 0:
        return
    info = out.device.info
    codegen.check_dtype(info, d)
    defines = codegen.storage_defines(d) + (("ACC", d.compute),)
    if d is dt.float64:
        defines += (("USE_FP64", "1"),)
    kern = codegen.template_kernel(info, "conv.cl", name, defines)
    L = codegen.local_size(info)
    registry.launch(info, kern, name, (-(-rows // L) * L,), (L,),
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


def _run_max_pool(op, args, attrs, out=None):
    (x,) = args
    ks, st, pad, dil = (attrs[k] for k in ("kernel_size", "stride", "padding", "dilation"))
    N, C, H, W = x._shape
    OH, OW = _pool_size(x, ks, st, pad, dil, attrs["ceil_mode"])
    y = _empty((N, C, OH, OW), x)
    idx = registry.Tensor._empty((N, C, OH, OW), dt.int64, x.device) \
        if attrs["return_indices"] else None
    rows = N * C * OH
    values = {**_img("x", x), "y": y._storage.buf, "want_idx": int(idx is not None),
              "idx": (idx if idx is not None else y)._storage.buf}
    if _pool2x2(attrs, x, OH, OW):
        _launch("max_pool2x2", x.dtype, y, rows * -(-OW // 8),
                {**values, "C": C, "H": H, "W": W, "OH": OH, "OW": OW, "rows": rows})
    else:
        _launch("max_pool2d", x.dtype, y, rows,
                {**values, **_geom(C, H, W, ks, st, pad, dil, OH, OW)})
    return y if idx is None else (y, idx)


def _pool2x2(attrs, x, OH, OW) -> bool:
    """Whether conv.cl's max_pool2x2 kernels apply: 2x2 windows at stride 2 without padding
    or dilation over float32 rows read with unit stride."""
    return (attrs["kernel_size"] == (2, 2) and attrs["stride"] == (2, 2)
            and attrs["padding"] == (0, 0) and attrs["dilation"] == (1, 1)
            and x.dtype is dt.float32 and x._stride[3] == 1 and OH >= 1 and OW >= 1
            and OH == x._shape[2] // 2 and OW == x._shape[3] // 2)


def _run_max_pool_backward(op, args, attrs, out=None):
    g, x = args
    ks, st, pad, dil = (attrs[k] for k in ("kernel_size", "stride", "padding", "dilation"))
    N, C, H, W = x._shape
    OH, OW = _check_grad_size(g, _pool_size(x, ks, st, pad, dil, attrs["ceil_mode"]))
    gx = _empty(x._shape, g)
    rows = N * C * OH
    values = {**_img("g", g), **_img("x", x), "gx": gx._storage.buf}
    if _pool2x2(attrs, x, OH, OW) and g.dtype is dt.float32:
        _launch("max_pool2x2_backward", g.dtype, gx, rows * -(-OW // 8),
                {**values, "C": C, "H": H, "W": W, "OH": OH, "OW": OW, "rows": rows})
    else:
        _launch("max_pool2d_backward", g.dtype, gx, rows,
                {**values, **_geom(C, H, W, ks, st, pad, dil, OH, OW)})
    return gx


def _check_grad_size(g, size):
    if tuple(g._shape[2:]) != tuple(size):
        raise RuntimeError(f"expected a gradient of spatial size {list(size)}, but got "
                           f"{list(g.shape)}")
    return size


def _avg_flags(attrs) -> dict:
    return {"include_pad": int(attrs["count_include_pad"]),
            "divisor": int(attrs["divisor_override"] or 0)}


def _run_avg_pool(op, args, attrs, out=None):
    (x,) = args
    ks, st, pad = (attrs[k] for k in ("kernel_size", "stride", "padding"))
    N, C, H, W = x._shape
    OH, OW = _pool_size(x, ks, st, pad, (1, 1), attrs["ceil_mode"])
    y = _empty((N, C, OH, OW), x)
    rows = N * C * OH
    _launch("avg_pool2d", x.dtype, y, rows,
            {**_img("x", x), **_geom(C, H, W, ks, st, pad, (1, 1), OH, OW),
             **_avg_flags(attrs), "y": y._storage.buf})
    return y


def _run_avg_pool_backward(op, args, attrs, out=None):
    (g,) = args
    ks, st, pad = (attrs[k] for k in ("kernel_size", "stride", "padding"))
    N, C, OH, OW = g._shape
    H, W = attrs["input_size"]
    _check_grad_size(g, tuple(_pool_out(n, k, s, p, 1, attrs["ceil_mode"]) for n, k, s, p in
                              zip((H, W), ks, st, pad)))
    gx = _empty((N, C, H, W), g)
    rows = N * C * H
    _launch("avg_pool2d_backward", g.dtype, gx, rows,
            {**_img("g", g), **_geom(C, H, W, ks, st, pad, (1, 1), OH, OW),
             **_avg_flags(attrs), "gx": gx._storage.buf})
    return gx


def _adaptive(kernel, x, C, H, W, OH, OW, out_hw):
    """Adaptive average pooling (H, W) -> (OH, OW), or its backward: one work-item per
    output row."""
    y = _empty(x._shape[:2] + out_hw, x)
    rows = x._shape[0] * C * out_hw[0]
    src, dst = ("x", "y") if kernel == "adaptive_avg_pool2d" else ("g", "gx")
    _launch(kernel, x.dtype, y, rows, {**_img(src, x), "C": C, "H": H, "W": W, "OH": OH,
                                       "OW": OW, dst: y._storage.buf})
    return y


def _run_adaptive(op, args, attrs, out=None):
    (x,) = args
    _, C, H, W = x._shape
    OH, OW = attrs["output_size"]
    return _adaptive("adaptive_avg_pool2d", x, C, H, W, OH, OW, (OH, OW))


def _run_adaptive_backward(op, args, attrs, out=None):
    (g,) = args
    _, C, OH, OW = g._shape
    H, W = attrs["input_size"]
    return _adaptive("adaptive_avg_pool2d_backward", g, C, H, W, OH, OW, (H, W))


# numpy references (the row's ``ref``); NaN ties aside, they match the kernels exactly


def _windows(x, kernel_size, stride, padding, dilation, out_size, fill):
    """The windows as an (N, C, OH, OW, kh, kw) array of the image padded with ``fill``."""
    pads = [(p, max(0, (o - 1) * s + d * (k - 1) + 1 - n - p)) for n, k, s, p, d, o in
            zip(x.shape[2:], kernel_size, stride, padding, dilation, out_size)]
    xp = np.pad(x, ((0, 0), (0, 0), *pads), constant_values=fill)
    ih = _taps(kernel_size[0], stride[0], 0, dilation[0], out_size[0])
    iw = _taps(kernel_size[1], stride[1], 0, dilation[1], out_size[1])
    return xp[:, :, ih.T[:, None, :, None], iw.T[None, :, None, :]]


def _max_pool_ref(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    size = tuple(_pool_out(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                 zip(x.shape[2:], kernel_size, stride, padding, dilation))
    win = _windows(x, kernel_size, stride, padding, dilation, size, -np.inf)
    flat = win.reshape(*win.shape[:4], -1)
    y = flat.max(-1)
    if not return_indices:
        return y
    k = flat.argmax(-1)
    ih = np.arange(size[0])[:, None] * stride[0] - padding[0] + (k // kernel_size[1]) * \
        dilation[0]
    iw = np.arange(size[1])[None, :] * stride[1] - padding[1] + (k % kernel_size[1]) * \
        dilation[1]
    return y, ih * x.shape[3] + iw


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
    return np.outer(*ext)


def _avg_pool_ref(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override):
    size = tuple(_pool_out(n, k, s, p, 1, ceil_mode) for n, k, s, p in
                 zip(x.shape[2:], kernel_size, stride, padding))
    win = _windows(x, kernel_size, stride, padding, (1, 1), size, 0)
    div = _avg_divisors(x.shape[2:], kernel_size, stride, padding, count_include_pad,
                        divisor_override, size)
    return (win.sum((-2, -1)) / div).astype(x.dtype)


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


def _adaptive_ref(x, output_size):
    y = np.zeros(x.shape[:2] + tuple(output_size), x.dtype)
    for a, (h0, h1) in enumerate(_adaptive_bounds(x.shape[2], output_size[0])):
        for b, (w0, w1) in enumerate(_adaptive_bounds(x.shape[3], output_size[1])):
            y[:, :, a, b] = x[:, :, h0:h1, w0:w1].mean((-2, -1))
    return y


def _adaptive_backward_ref(g, input_size):
    gx = np.zeros(g.shape[:2] + tuple(input_size), g.dtype)
    for a, (h0, h1) in enumerate(_adaptive_bounds(input_size[0], g.shape[2])):
        for b, (w0, w1) in enumerate(_adaptive_bounds(input_size[1], g.shape[3])):
            gx[:, :, h0:h1, w0:w1] += g[:, :, a:a + 1, b:b + 1] / ((h1 - h0) * (w1 - w0))
    return gx


def _max_pool_backward_vjp(gg, g, x, out, **attrs):
    """The gradient of the scatter-to-argmax: gather gg at each window's argmax."""

    _, idx = apply(MAX_POOL2D, x.detach(), return_indices=True, **attrs)
    N, C, OH, OW = g.shape
    flat = gather(reshape(gg, N, C, -1), 2, reshape(idx, N, C, -1))
    return reshape(flat, N, C, OH, OW), None


def _row(name, ref, run, vjp, saves):
    return register(OpDef(name, "conv", ref, run, vjp,
                          saves=saves, saves_out=False))


MAX_POOL2D = _row("max_pool2d", _max_pool_ref, _run_max_pool,
                  lambda g, x, out, return_indices, **a: (
                      apply(MAX_POOL2D_BACKWARD, g, x, **a),), saves=(0,))
MAX_POOL2D_BACKWARD = _row("max_pool2d_backward", _max_pool_backward_ref,
                           _run_max_pool_backward, _max_pool_backward_vjp, saves=(1,))
AVG_POOL2D = _row("avg_pool2d", _avg_pool_ref, _run_avg_pool,
                  lambda g, x, out, **a: (
                      apply(AVG_POOL2D_BACKWARD, g, input_size=tuple(x.shape[2:]), **a),),
                  saves=())
AVG_POOL2D_BACKWARD = _row("avg_pool2d_backward", _avg_pool_backward_ref,
                           _run_avg_pool_backward,
                           lambda gg, g, out, input_size, **a: (apply(AVG_POOL2D, gg, **a),),
                           saves=())
ADAPTIVE_AVG_POOL2D = _row("adaptive_avg_pool2d", _adaptive_ref, _run_adaptive,
                           lambda g, x, out, output_size: (apply(
                               ADAPTIVE_AVG_POOL2D_BACKWARD, g,
                               input_size=tuple(x.shape[2:])),), saves=())
ADAPTIVE_AVG_POOL2D_BACKWARD = _row(
    "adaptive_avg_pool2d_backward", _adaptive_backward_ref, _run_adaptive_backward,
    lambda gg, g, out, input_size: (apply(ADAPTIVE_AVG_POOL2D, gg,
                                          output_size=tuple(g.shape[2:])),), saves=())


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
    _check_float("conv2d", x)
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
    if groups == 1 and not x.device.info.is_cpu:
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
    _check_float("col2im", cols)
    return _unbatch(apply(COL2IM, cols, output_size=(H, W), kernel_size=(kh, kw),
                          dilation=(dh, dw), padding=((ph, ph), (pw, pw)), stride=(sh, sw)),
                    unbatched)


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


def _pool_args(fn, x, kernel_size, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling checks, in its order; returns the pairs."""
    def pair(v, what, verb="must either be"):
        return _ints(v, fn, f"{fn}: {what} {verb} a single int, or a tuple of two ints")

    ks = pair(kernel_size, "kernel_size")
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        st = ks
    else:
        st = _ints(stride, fn, f"{fn}: stride must either be omitted, a single int, or a "
                               "tuple of two ints")
    pad = pair(padding, "padding")
    dil = pair(dilation, "dilation", "must be either")
    if st[0] == 0 or st[1] == 0:
        raise RuntimeError("stride should not be zero")
    for p in pad:
        if p < 0:
            raise RuntimeError(f"pad must be non-negative, but got pad: {p}")
    for k, p, d in zip(ks, pad, dil):
        if k > 0 and d > 0 and p > ((k - 1) * d + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p}, kernel_size={k} and dilation={d}")
    if ks[0] <= 0 or ks[1] <= 0:
        raise RuntimeError(f"kernel size should be greater than zero, but got kH: {ks[0]} "
                           f"kW: {ks[1]}")
    if st[0] < 0 or st[1] < 0:
        raise RuntimeError(f"stride should be greater than zero, but got dH: {st[0]} dW: "
                           f"{st[1]}")
    if dil[0] <= 0 or dil[1] <= 0:
        raise RuntimeError(f"dilation should be greater than zero, but got dilationH: "
                           f"{dil[0]} dilationW: {dil[1]}")
    if x.ndim not in (3, 4) or (x.ndim == 3 and x.numel() == 0):
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    if any(n == 0 for n in x.shape[-3:]):
        raise RuntimeError(f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch "
                           f"size for input, but got:{list(x.shape)}")
    if ks[1] // 2 < pad[1] or ks[0] // 2 < pad[0]:
        raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but "
                           f"got padW = {pad[1]}, padH = {pad[0]}, kW = {ks[1]}, kH = {ks[0]}")
    H, W = x.shape[-2:]
    OH, OW = (_pool_out(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
              zip((H, W), ks, st, pad, dil))
    if OH < 1 or OW < 1:
        raise RuntimeError(f"Given input size: ({x.shape[-3]}x{H}x{W}). Calculated output "
                           f"size: ({x.shape[-3]}x{OH}x{OW}). Output size is too small")
    _check_float(fn, x)
    return ks, st, pad, dil


@public(method=False)
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool2d; indices are flat h*W + w per plane, as PyTorch's."""
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"max_pool2d(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    ks, st, pad, dil = _pool_args("max_pool2d", input, kernel_size, stride, padding,
                                  dilation, ceil_mode)
    x, unbatched = _batched4(input, "max_pool2d", None)
    r = apply(MAX_POOL2D, x, kernel_size=ks, stride=st, padding=pad, dilation=dil,
              ceil_mode=bool(ceil_mode), return_indices=bool(return_indices))
    return _unbatch(r, unbatched)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """torch.nn.functional.avg_pool2d."""
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"avg_pool2d(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    ks, st, pad, _ = _pool_args("avg_pool2d", input, kernel_size, stride, padding, 1,
                                ceil_mode)
    x, unbatched = _batched4(input, "avg_pool2d", None)
    y = apply(AVG_POOL2D, x, kernel_size=ks, stride=st, padding=pad, ceil_mode=bool(ceil_mode),
              count_include_pad=bool(count_include_pad),
              divisor_override=int(divisor_override) if divisor_override else None)
    return _unbatch(y, unbatched)


def adaptive_avg_pool2d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool2d; None in output_size keeps that input size."""
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"adaptive_avg_pool2d(): argument 'input' (position 1) must be "
                        f"Tensor, not {type(input).__name__}")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise RuntimeError("adaptive_avg_pool2d: output_size must be 2")
        size = tuple(input.shape[-2 + i] if v is None else int(v)
                     for i, v in enumerate(output_size))
    else:
        size = (int(output_size),) * 2
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(input.shape)}")
    for d in range(1, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(
                f"adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch "
                f"dimensions, but input has sizes {list(input.shape)} with dimension {d} "
                "being empty")
    if size[0] < 0 or size[1] < 0:
        raise RuntimeError(f"adaptive_avg_pool2d: elements of output_size must be greater "
                           f"than or equal to 0 but received {{{size[0]}, {size[1]}}}")
    _check_float("adaptive_avg_pool2d", input)
    x, unbatched = _batched4(input, "adaptive_avg_pool2d", None)
    return _unbatch(apply(ADAPTIVE_AVG_POOL2D, x, output_size=size), unbatched)


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
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
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


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool2d: window (i, j) spans rows
    floor(i H / OH) .. ceil((i + 1) H / OH) and likewise columns; indices are flat h*W + w
    per plane. Evenly divided sizes are one max_pool2d; other sizes take the max of each
    window (OH * OW reductions)."""
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"adaptive_max_pool2d(): argument 'input' (position 1) must be "
                        f"Tensor, not {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_max_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(input.shape)}")
    H, W = input.shape[-2:]
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise RuntimeError("adaptive_max_pool2d(): internal error: output_size.size() "
                               "must be 2")
        size = tuple(n if v is None else int(v) for v, n in zip(output_size, (H, W)))
    else:
        size = (int(output_size),) * 2
    OH, OW = size
    for d in range(1, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(
                f"adaptive_max_pool2d(): Expected input to have non-zero size for non-batch "
                f"dimensions, but input has sizes {list(input.shape)} with dimension {d} "
                "being empty")
    if OH <= 0 or OW <= 0:
        raise RuntimeError(f"adaptive_max_pool2d(): elements of output_size must be greater "
                           f"than 0 but received {{{OH}, {OW}}}")
    _check_float("adaptive_max_pool2d", input)
    if H % OH == 0 and W % OW == 0:
        r = max_pool2d(input, (H // OH, W // OW), None, 0, 1, False, True)
        return r if return_indices else r[0]
    F = registry.functions
    values, indices = [], []
    for i in range(OH):
        hs, he = (i * H) // OH, -(-((i + 1) * H) // OH)
        for j in range(OW):
            ws, we = (j * W) // OW, -(-((j + 1) * W) // OW)
            win = input[..., hs:he, ws:we]
            v, k = F.max(win.reshape(*input.shape[:-2], -1), -1)
            ww = we - ws
            values.append(v)
            indices.append((k // ww + hs) * W + k % ww + ws)
    out = F.stack(values, -1).reshape(*input.shape[:-2], OH, OW)
    if not return_indices:
        return out
    return out, F.stack(indices, -1).reshape(*input.shape[:-2], OH, OW)


__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "conv2d",
           "fold", "max_pool1d", "max_pool2d", "unfold"]
