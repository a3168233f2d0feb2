"""Linear algebra: matmul (1-D, 2-D, batched with broadcasting batch dims), mm, bmm, dot,
mv, outer. One op row, ``matmul`` on (batch, M, K) x (batch, K, N) views, runs the
hand-written kernels of kernels/matmul.cl: register-blocked tiles on CPU devices (one
work-item per element for integer types), the GEMM family tuned per device and shape
class on GPUs (ops/gemm.py)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import codegen, runtime
from .. import dtypes as dt
from ..codegen.kernelsig import kernel_signature
from ..shapes import broadcast_shapes, wrap_dim
from . import gemm, registry
from .math import copy_, fill_
from .movement import contiguous, expand, permute, reshape, unsqueeze
from .registry import OpDef, apply, public, register

# the position of each of matmul_rb's parameters (C, c_off, M, N, ...; matmul_gemm's are
# the same), for the compile pass that fuses an epilogue into the store
MATMUL_ARGS = {p.name: i for i, p in enumerate(kernel_signature(
    (codegen.KERNEL_DIR / "matmul.cl").read_text(), "matmul_rb"))}
# rows of work-items per group of the register-blocked kernel (kernels/matmul.cl's LM)
_LM = 16
_KC = 256  # matmul_rb's rows of k per packed panel (its KC)


def _tile(info, d: dt.dtype) -> tuple[int, int]:
    """matmul_rb's register tile on this device: (VW, TM); each work-item holds TM rows of
    VW * 2 columns. 256-bit vectors, 6 rows (the kernel's defaults: 12 accumulators and 3
    more of the 16 AVX2 registers); where the device takes 512-bit vectors (PoCL on
    AVX-512) 8 rows of 16-float vectors use 16 of the 32 registers: matmul 1024^3 86-104
    -> 232-276 GFLOP/s, 2048x256x1024 74-78 -> 204-242 (same-run, 2 cores)."""
    wide = info.vector_width("double" if d is dt.float64 else "float")
    if d is dt.float64:
        return (8, 8) if wide >= 8 else (4, 6)
    return (16, 8) if wide >= 16 else (8, 6)


def _kernel_for(info, d: dt.dtype, apack: int = 0, lm: int = _LM):
    """The CPU kernels: register-blocked for floats, one work-item per element for
    integers (products accumulate in 64 bits). ``apack`` > 0: matmul_rb packs A into
    local memory (an A strided along k) for ``apack`` column tiles per work-group of
    ``lm`` work-items along M."""
    acc = d.compute if d.is_floating_point else None
    name = "matmul_naive" if acc is None else "matmul_rb"
    defines = gemm.base_defines(d)
    if acc is not None:
        vw, tm = _tile(info, d)
        defines = tuple(x for x in defines if x[0] != "VW") + (("VW", str(vw)),
                                                               ("TM", str(tm)))
        if apack:
            defines += (("APACK", "1"), ("NTG", str(apack)))
            if lm != _LM:
                defines += (("LM", str(lm)),)
    k = codegen.template_kernel(info, "matmul.cl", name, defines)
    if name == "matmul_rb" and d is dt.float32:
        EPILOGUE_READY[k] = (name, defines)
    return name, k


# float32 kernels a compiled graph may fuse an epilogue into: their name and defines, to
# build the same kernel again with EPI_* macros
EPILOGUE_READY: dict = {}


def epilogue_widths(ready) -> tuple[int, ...]:
    """The widths a fused epilogue of kernel ``ready`` (from EPILOGUE_READY) stores:
    matmul_rb single elements and vectors of its VW columns (8, or 16 where the device
    takes 512-bit vectors), matmul_gemm and matmul_mma single elements."""
    name, defines = ready
    return (1, int(dict(defines).get("VW", "8"))) if name == "matmul_rb" else (1, 8)


def epilogue_kernel(info, ready, source: str, params: tuple, by_column: bool = False):
    """The kernel ``ready`` (its name and defines, from EPILOGUE_READY) storing
    cg_epi<w>(product, row * N + col, ...) (``by_column``: col alone) instead of the
    product: ``source`` defines those functions (one per epilogue_widths(ready)) over
    ``params``, the kernel arguments they add (C declarations: the kernel's signature gives
    their types)."""
    name, defines = ready
    names = "".join(", " + p.split()[-1] for p in params)
    at = "(long)(col)" if by_column else "(long)(row) * N + (col)"
    vw = dict(defines).get("VW", "8")
    source += "\n".join(["#define EPI_PARAMS " + "".join(", " + p for p in params),
                          f"#define EPI_V(v, row, col) cg_epi{vw}((v), {at}{names})",
                          f"#define EPI_S(v, row, col) cg_epi1((v), {at}{names})", ""])
    return codegen.template_kernel(info, "matmul.cl", name, defines, extra_source=source)


def _geometry(info, name, M, N, batch, d, ntg=1, lm=_LM):
    if name == "matmul_rb":
        vw, tm = _tile(info, d)
        gy = -(-(-(-M // tm)) // lm) * lm
        return (-(-(-(-N // (2 * vw))) // ntg) * ntg, gy, batch), (ntg, lm, 1)
    return (N, M, batch), None


def _run_matmul(op, args, attrs, out=None):
    """(B, M, K) x (B', K, N) -> (max(B, B'), M, N); B or B' may be 1 (broadcast)."""
    a, b = args
    T = registry.Tensor
    if a.device != b.device:
        raise RuntimeError(
            f"Expected all tensors to be on the same device, but found at least two devices, "
            f"{a.device} and {b.device}! (when checking arguments for matmul)"
        )
    d = dt.promote_types(a.dtype, b.dtype)
    if a.dtype is not b.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {a.dtype.name} != "
            f"{b.dtype.name}"
        )
    if d is dt.bool_:
        raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Bool\'')
    Ba, M, K = a._shape
    Bb, _, N = b._shape
    out = T._empty((max(Ba, Bb), M, N), d, a.device)
    if out.numel() == 0:
        return out
    if K == 0:
        return fill_(out, 0)
    split = _split_k(a.device.info, d, M, N, K, out._shape[0])
    if split > 1:
        return _split_product(a, b, split)
    return _product(a, b, out)


def _split_k(info, d: dt.dtype, M: int, N: int, K: int, batch: int) -> int:
    """How many chunks of k a CPU product of few output tiles and a long k is split into,
    computed side by side and summed (1: not split). A weight gradient of a convolution
    (16 x 9 over k = 50176) is one work-group otherwise: 3 GFLOP/s on one core."""
    if not info.is_cpu or batch != 1 or not d.is_floating_point or K < 2048:
        return 1
    vw, tm = _tile(info, d)
    groups = -(-M // (tm * _LM)) * -(-N // (2 * vw))
    if groups >= 2 * info.compute_units:
        return 1
    # such groups are mostly idle work-items (M below a group's rows): many chunks
    want = min(K // 512, _SPLIT_MAX)
    for s in range(want, 1, -1):  # a divisor of K: the chunks are one strided batch
        if K % s == 0:
            return s
    return 1


_SPLIT_MAX = 16


def _split_product(a, b, s: int):
    """(1, M, K) x (1, K, N) as s products over consecutive chunks of k, summed."""
    _, M, K = a._shape
    N, c = b._shape[2], K // s
    T = registry.Tensor
    parts = T._empty((s, M, N), a.dtype, a.device)
    _product(a._view((s, M, c), (c * a._stride[2], a._stride[1], a._stride[2]), a._offset),
             b._view((s, c, N), (c * b._stride[1], b._stride[1], b._stride[2]), b._offset),
             parts)
    return reshape(registry.functions.sum(parts, 0), 1, M, N)


def _product(a, b, out, epi=None):
    """``out`` (contiguous (batch, M, N), K > 0) = a @ b. ``epi``: (C source, parameter
    declarations, their values by name, whether it may index by column) of an epilogue the
    kernel applies as it stores (the bias of an eager linear layer; float32 only): see
    epilogue_kernel."""
    d, info = out.dtype, out.device.info
    Ba, M, K = a._shape
    Bb, _, N = b._shape
    batch = out._shape[0]
    a_bs = a._stride[0] if Ba > 1 else 0
    b_bs = b._stride[0] if Bb > 1 else 0
    # each operand as (buffer, offset, batch stride, row stride, column stride)
    ga = (a._storage.buf, a._offset, a_bs, a._stride[1], a._stride[2])
    gb = (b._storage.buf, b._offset, b_bs, b._stride[1], b._stride[2])
    if not info.is_cpu:  # the tuned GPU family reads transposed operands in place
        ta = a._stride[2] != 1
        tb = b._stride[1] == 1 and b._stride[2] != 1
        vec = d in dt.NARROW_FLOATS and gemm.vec8(M, N, K, ga[1:], gb[1:])
        kern, defines, p = gemm.for_shape(info, d, M, N, K, ta, tb, vec=vec)
        name = "matmul_mma" if "WARPS_M" in p else "matmul_gemm"
        if d is dt.float32:
            EPILOGUE_READY.setdefault(kern, (name, defines))
        gsize, lsize = gemm.geometry(p, M, N, batch)
        return _launch(info, kern, name, gsize, lsize, ga, gb, out, M, N, K, epi)
    ntg, lm = _packs_a(info, d, a, M, N, batch)
    name, kern = _kernel_for(info, d, ntg, lm)
    swapped = False
    if b._stride[2] != 1 and N > 1:
        if M == 1:
            # a row times a transposed matrix (x @ W.T for one sample): C^T = B^T A^T has
            # C's memory layout and reads B^T along its contiguous rows
            M, N, swapped = N, M, True
            ga, gb = gb[:3] + (gb[4], gb[3]), ga[:3] + (ga[4], ga[3])
        elif name != "matmul_rb" or M > 4 * _tile(info, d)[1] * _LM:
            # many row tiles would each gather B's columns again: one transposed copy
            b = contiguous(b)
            gb = (b._storage.buf, b._offset, b_bs and b._stride[0], b._stride[1], 1)
    gsize, lsize = _geometry(info, name, M, N, batch, d, max(ntg, 1), lm)
    return _launch(info, kern, name, gsize, lsize, ga, gb, out, M, N, K, epi, swapped)


def _packs_a(info, d: dt.dtype, a, M: int, N: int, batch: int) -> tuple[int, int]:
    """(column tiles, work-items along M) of a matmul_rb work-group that packs A into local
    memory; (0, _LM): A is read in place. For an A strided along k with more than one row
    tile (a weight gradient g^T x). Packing reads each row of k, a page apart, once per
    group: up to 8 column tiles share it (as many as leave a few groups per compute unit;
    1024x256x2048: 143 (in place) -> 160 (packed, 1 tile) -> 229 (8 tiles) GFLOP/s, the
    kernel alone on 2 cores; contiguous A 239). A group takes only the rows M fills (a
    convolution's weight gradient has as many as output channels, 16 or 32: the other
    work-items of a 16-row group computed clamped copies of the last row), in whole
    vectors of VW."""
    if not d.is_floating_point or a._stride[2] == 1 or a._shape[2] < 2:
        return 0, _LM
    vw, tm = _tile(info, d)
    if M <= tm:
        return 0, _LM
    lm = _LM
    while lm > 1 and (lm // 2) * tm >= M and (lm // 2) * tm % vw == 0:
        lm //= 2
    size = 8 if d is dt.float64 else 4
    tiles, groups = -(-N // (2 * vw)), batch * -(-M // (tm * lm))
    for ntg in (8, 4, 2, 1):
        fits = size * _KC * (lm * tm + 16 + ntg * 2 * vw) <= info.local_memory
        if fits and (ntg == 1 or ntg <= tiles and
                     groups * -(-tiles // ntg) >= 4 * info.compute_units):
            return ntg, lm
    return 0, _LM


def _launch(info, kern, name, gsize, lsize, ga, gb, out, M, N, K, epi=None, swapped=False):
    """Launch a matmul.cl kernel on operands (buffer, offset, batch, row and column
    strides) into contiguous ``out``, with epilogue ``epi`` (see _product; ``swapped``: the
    kernel computes out's transpose, so that its columns are out's rows)."""
    values = {"C": out._storage.buf, "c_off": out._offset, "M": M, "N": N, "K": K}
    if epi is not None:
        source, params, extra, by_column = epi  # source(the widths the kernel stores, ...)
        by_column = by_column and not swapped
        ready = EPILOGUE_READY[kern]
        kern = epilogue_kernel(info, ready, source(epilogue_widths(ready), by_column), params,
                               by_column)
        values.update(extra)
    for x, (buf, off, bs, rs, cs) in (("a", ga), ("b", gb)):
        values.update({x.upper(): buf, f"{x}_off": off, f"{x}_bs": bs, f"{x}_rs": rs,
                       f"{x}_cs": cs})
    registry.launch(info, kern, name, gsize, lsize, codegen.pack(kern, values))
    return out


# matmul_rb packs B into local memory once per group of TM * _LM rows; a transposed B is
# gathered in place for up to 4 such groups of rows (measured on 256x256x64: 110 us against
# 100 us for rows of B plus a 20-50 us transposed copy; on 1024^3, 16.3 ms against 11.4 ms
# plus a 1 ms copy). Packing with a vector load per column along k was slower below 1024^3.


def _transposed(t) -> bool:
    """A (batch, rows, cols) view whose columns are contiguous: the transpose of a matrix
    (a Linear layer's weight in x @ W.T)."""
    return t._stride[1] == 1 and t._stride[2] != 1 and t._shape[1] > 1 and t._shape[2] > 1


def _vjp(g, a, b, out):
    # An input that is a transposed view gets its gradient in the same layout, as the
    # transpose of a product of transposes: the transposed view's own VJP then hands a
    # contiguous gradient to the weight, which .grad keeps without a copy.
    ga = (b @ g.mT).mT if _transposed(a) else g @ b.mT
    gb = (g.mT @ a).mT if _transposed(b) else a.mT @ g
    return ga, gb


MATMUL = register(OpDef("matmul", "linalg", lambda a, b: np.matmul(a, b), _run_matmul,
                        autocast="low",
                        vjp=_vjp,
                        saves_out=False))


# --- linear with its bias added in the product's store (eager) ------------------------------

_BIAS_PARAMS = ("__global const float* cg_bias", "const int cg_bn")


def _bias_source(widths, by_column: bool) -> str:
    """cg_epi<w>(v, idx, bias, n): the product's element(s) at idx plus the bias of their
    column(s): idx is the column (by_column), else the flat index (idx % n: a vector's
    columns lie in one row; a 64-bit division per store, which made a narrow product's
    store its slowest part)."""
    params = "".join(", " + p for p in _BIAS_PARAMS)
    col = "idx" if by_column else "idx % cg_bn"
    src = []
    for w in widths:
        t = "float" if w == 1 else f"float{w}"
        load = f"cg_bias[{col}]" if w == 1 else f"vload{w}(0, cg_bias + {col})"
        src.append(f"inline {t} cg_epi{w}(const {t} v, const long idx{params}) "
                   f"{{ return v + {load}; }}")
    return "\n".join(src) + "\n"


def _run_linear(op, args, attrs, out=None):
    """x (M, K) @ w.T + bias -> (M, N): float32 in one kernel, the bias added as the
    product is stored; other dtypes (autocast's) as the product and an add."""
    x, w, bias = args
    M, K = x._shape
    N = w._shape[0]
    a = x._view((1, M, K), (0,) + x._stride, x._offset)
    b = w._view((1, K, N), (0, w._stride[1], w._stride[0]), w._offset)
    if x.dtype is not dt.float32 or K == 0 or M * N == 0:
        prod = _run_matmul(MATMUL, (a, b), {})
        return reshape(prod, M, N) + bias.detach()
    if bias._offset or not bias._contig:
        bias = bias.detach().clone()
    res = registry.Tensor._empty((M, N), x.dtype, x.device)
    _product(a, b, res._view((1, M, N), (M * N, N, 1), 0),
             (_bias_source, _BIAS_PARAMS, {"cg_bias": bias._storage.buf, "cg_bn": N}, True))
    return res


def _linear_vjp(g, x, w, bias, out):
    # the weight's gradient contiguous (w's layout) as matmul's VJP gives a transposed view
    return g @ w, g.mT @ x, g.sum(0)


LINEAR = register(OpDef(
    "linear", "linalg", lambda x, w, b: x @ w.T + b, _run_linear, _linear_vjp,
    autocast="low", saves_out=False))


def fused_linear(x, w, bias) -> bool:
    """Whether F.linear runs as the linear op (one kernel for float32, the bias added in
    the product's store): a 1-D bias of w's rows, operands on one device, not traced (a
    traced call keeps the product and the add apart, so that the compiler fuses the add
    and what follows it into the store)."""
    return (not runtime.observers and bias.ndim == 1 and w.ndim == 2 and x.ndim >= 2
            and x.dtype is w.dtype is bias.dtype and x.dtype.is_floating_point
            and x.device == w.device == bias.device and bias._shape[0] == w._shape[0]
            and x._shape[-1] == w._shape[1])


def linear(x, w, bias):
    """x (..., K) @ w.T + bias as the linear op (fused_linear must hold)."""
    if x.ndim == 2:
        return apply(LINEAR, x, w, bias)
    lead = x._shape[:-1]
    y = apply(LINEAR, reshape(x, -1, x._shape[-1]), w, bias)
    return reshape(y, *lead, w._shape[0])


@public(dunders=("matmul", "rmatmul"))
def matmul(input, other, *, out=None):
    """torch.matmul: 1-D and 2-D products, and batched products with broadcast batch dims."""
    a, b = input, other
    T = registry.Tensor
    if not isinstance(a, T) or not isinstance(b, T):
        raise TypeError(f"matmul(): argument 'other' must be Tensor, not "
                        f"{type(b if isinstance(a, T) else a).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {a.ndim}D and "
            f"{b.ndim}D"
        )
    if a.ndim == 1 and b.ndim == 1:
        if a._shape[0] != b._shape[0]:
            raise RuntimeError(
                f"inconsistent tensor size, expected tensor [{a._shape[0]}] and src "
                f"[{b._shape[0]}] to have the same number of elements, but got "
                f"{a._shape[0]} and {b._shape[0]} elements respectively"
            )
        r = _mm3(reshape(a, 1, 1, -1), reshape(b, 1, -1, 1))
        return reshape(r, ())
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = unsqueeze(a, 0)
    if squeeze_b:
        b = unsqueeze(b, 1)
    M, K = a._shape[-2:]
    K2, N = b._shape[-2:]
    if K != K2:
        if a.ndim == 2 and b.ndim == 2:
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({M}x{K} and {K2}x{N})"
            )
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: "
            f"[{b._shape[0] if b.ndim > 2 else 1}, {K}] but got: "
            f"[{b._shape[0] if b.ndim > 2 else 1}, {K2}]."
            if a.ndim == b.ndim == 3 else
            f"mat1 and mat2 shapes cannot be multiplied ({M}x{K} and {K2}x{N})"
        )
    batch = broadcast_shapes(a._shape[:-2], b._shape[:-2])
    if batch and b.ndim == 2:
        # one matrix against a batch: the batch folds into the rows, one (B*M, K) x (K, N)
        # product whose weight gradient is one product too (not B products summed)
        rows = 1
        for n in a._shape[:-1]:
            rows *= n
        r = _mm3(reshape(a, 1, rows, K), unsqueeze(b, 0))
        r = reshape(r, *batch, M, N)
    elif not batch:
        r = _mm3(unsqueeze(a, 0), unsqueeze(b, 0))
        r = reshape(r, M, N)
    else:
        a3 = _batched(a, batch)
        b3 = _batched(b, batch)
        r = reshape(_mm3(a3, b3), *batch, M, N)
    if squeeze_a:
        r = r.squeeze(-2)
    if squeeze_b:
        r = r.squeeze(-1)
    if out is not None:

        return copy_(out, r)
    return r


def _batched(x, batch):
    """x (..., M, K) as a 3-D (nb, M, K) tensor over the broadcast batch: a view when the
    batch dims collapse to one stride (including pure broadcast), else a copy."""
    M, K = x._shape[-2:]
    nb = 1
    for s in batch:
        nb *= s
    return reshape(expand(x, *batch, M, K), nb, M, K)


def _mm3(a, b):
    return apply(MATMUL, a, b)


@public
def mm(input, mat2):
    if input.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    return matmul(input, mat2)


@public
def bmm(input, mat2):
    if input.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if input._shape[0] != mat2._shape[0] or input._shape[2] != mat2._shape[1]:
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: "
            f"[{input._shape[0]}, {input._shape[2]}] but got: [{mat2._shape[0]}, "
            f"{mat2._shape[1]}]."
        )
    return matmul(input, mat2)


@public
def dot(input, tensor):
    if input.ndim != 1 or tensor.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {tensor.ndim}D "
                           "tensors")
    return matmul(input, tensor)


@public
def mv(input, vec):
    return matmul(input, vec)


@public(aliases=("ger",))
def outer(input, vec2):
    return unsqueeze(input, 1) * unsqueeze(vec2, 0)


ger = outer


def _add_product(input, product, beta, alpha):
    """beta * input + alpha * product, input broadcast to the product's shape; beta == 0
    ignores input (its NaNs too). Integer tensors truncate beta and alpha, as PyTorch."""
    if input.dtype is not product.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got "
                           f"{input.dtype.scalar_type} and {product.dtype.scalar_type}")
    bias = expand(input, *product.shape)
    if product.dtype is dt.bool_:  # PyTorch: (beta and input) or (alpha and product)
        r = product if alpha else product.logical_and(product.logical_not())
        return bias.logical_or(r) if beta else r
    if not product.dtype.is_floating_point:
        beta, alpha = int(beta), int(alpha)
    if beta == 0:
        return product * alpha if alpha != 1 else product
    return (bias if beta == 1 else bias * beta).add(product, alpha=alpha)


@public(inplace=True)
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """torch.addmm: beta * input + alpha * (mat1 @ mat2)."""
    for name, m in (("mat1", mat1), ("mat2", mat2)):
        if m.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {m.ndim}-D tensor")
    return _add_product(input, mm(mat1, mat2), beta, alpha)


@public(inplace=True)
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """torch.baddbmm: beta * input + alpha * (batch1 @ batch2) for 3-d batches."""
    return _add_product(input, bmm(batch1, batch2), beta, alpha)


@public(inplace=True, inplace_function=True)
def addmv(input, mat, vec, *, beta=1, alpha=1):
    """torch.addmv: beta * input + alpha * (mat @ vec)."""
    if mat.ndim != 2 or vec.ndim != 1 or mat._shape[1] != vec._shape[0]:
        raise RuntimeError(f"size mismatch, got input ({'x'.join(map(str, input.shape))}), "
                           f"mat ({'x'.join(map(str, mat.shape))}), vec "
                           f"({'x'.join(map(str, vec.shape))})")
    return _add_product(input, matmul(mat, vec), beta, alpha)


@public(inplace=True)
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """torch.addbmm: beta * input + alpha * the sum over the batch of batch1 @ batch2."""
    products = bmm(batch1, batch2)
    return _add_product(input, products.sum(0, dtype=products.dtype), beta, alpha)


def _dims_list(dims):
    return [int(d) for d in (dims.tolist() if isinstance(dims, registry.Tensor) else dims)]


@public(method=False)
def tensordot(a, b, dims=2, out=None):
    """torch.tensordot: contract dims of ``a`` with dims of ``b`` (an int n: a's last n with
    b's first n) as one matmul of the permuted, flattened operands."""
    if a.dtype is not b.dtype:
        raise RuntimeError("both inputs should have same dtype")
    if isinstance(dims, registry.Tensor) and dims.ndim == 0:
        dims = dims.item()
    if isinstance(dims, numbers.Integral):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = (_dims_list(d) for d in dims)
        if len(da) != len(db):
            raise RuntimeError("both dimension lists should have same length")
    da = [wrap_dim(d, a.ndim) for d in da]
    db = [wrap_dim(d, b.ndim) for d in db]
    for i, j in zip(da, db):
        # PyTorch broadcasts a contracted dim of size 1: the other operand is summed over it
        if a._shape[i] == 1 and b._shape[j] != 1:
            b = b.sum(j, keepdim=True, dtype=b.dtype)
        elif b._shape[j] == 1 and a._shape[i] != 1:
            a = a.sum(i, keepdim=True, dtype=a.dtype)
        elif a._shape[i] != b._shape[j]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size "
                               f"{a._shape[i]} in dim {i} and second has size {b._shape[j]} "
                               f"in dim {j}")
    fa = [i for i in range(a.ndim) if i not in da]
    fb = [j for j in range(b.ndim) if j not in db]
    k = math.prod(a._shape[i] for i in da)
    am = reshape(permute(a, *fa, *da), math.prod(a._shape[i] for i in fa), k)
    bm = reshape(permute(b, *db, *fb), k, math.prod(b._shape[j] for j in fb))
    r = reshape(matmul(am, bm), *[a._shape[i] for i in fa], *[b._shape[j] for j in fb])
    return r if out is None else out.copy_(r)


@public
def kron(input, other):
    """torch.kron: the Kronecker product (a broadcast product of interleaved dims)."""
    n = max(input.ndim, other.ndim)
    a = reshape(input, *((1,) * (n - input.ndim) + tuple(input.shape)))
    b = reshape(other, *((1,) * (n - other.ndim) + tuple(other.shape)))
    pa = [s for d in a.shape for s in (d, 1)]
    pb = [s for d in b.shape for s in (1, d)]
    r = reshape(a, *pa) * reshape(b, *pb)
    return reshape(r, *[x * y for x, y in zip(a.shape, b.shape)])


@public(method=False)
def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """torch.cdist: the p-norm distances between the rows of x1 (..., P, M) and of x2
    (..., R, M), batch dims broadcast. Computed as the norm of the pairwise differences
    (exact, with PyTorch's zero gradient at zero distance); ``compute_mode`` is accepted and
    ignored."""
    for name, x in (("X1", x1), ("X2", x2)):
        if x.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: "
                               f"{x.ndim}D")
        if not x.dtype.is_floating_point:
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: "
                               f"{x.dtype.scalar_type}")
    if x1._shape[-1] != x2._shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1._shape[-1]} X2: {x2._shape[-1]}")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    diff = unsqueeze(x1, -2) - unsqueeze(x2, -3)
    if x1._shape[-1] == 0:
        return diff.sum(-1)
    return registry.functions.norm(diff, p, -1)


@public
def inner(input, other):
    """torch.inner: the sum of products over the last dims (a product with a 0-d tensor)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input._shape[-1] != other._shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but "
                           f"got shapes {list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, dims=([-1], [-1]))


@public
def vdot(input, other):
    """torch.vdot: the dot product of two 1-d tensors (no conjugate for real dtypes)."""
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D "
                           "tensors")
    return dot(input, other)


@public(inplace=True)
def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """torch.addr: beta * input + alpha * outer(vec1, vec2) in the three tensors' promoted
    dtype; for bool, (beta and input) or (alpha and vec1 & vec2), as PyTorch."""
    for name, v in (("vec1", vec1), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(f"addr: Expected 1-D argument {name}, but got {v.ndim}-D")
    tensors = (input, vec1, vec2)
    d = dt.result_type([t.dtype for t in tensors])  # a 0-d input promotes as a tensor
    for name, v in (("beta", beta), ("alpha", alpha)):
        if isinstance(v, bool) and d is not dt.bool_:
            raise RuntimeError(f"Boolean {name} only supported for Boolean results.")
        if not (d.is_floating_point or d.is_complex) and not isinstance(v, numbers.Integral):
            raise RuntimeError(f"For integral input tensors, argument {name} must not be a "
                               "floating point number.")
    if d is dt.bool_:
        product = unsqueeze(vec1, 1).logical_and(unsqueeze(vec2, 0))
        if not alpha:
            product = product.logical_xor(product)
        return expand(input, *product.shape).logical_or(product) if beta else product
    input, vec1, vec2 = (t if t.dtype is d else t.to(d) for t in tensors)
    return _add_product(input, outer(vec1, vec2), beta, alpha)


@public(method=False)
def chain_matmul(*matrices):
    """torch.chain_matmul: the product of 2-d matrices, left to right."""
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    if not matrices:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    for m in matrices:
        if m.ndim != 2:
            raise RuntimeError(f"Tensor dimension is {m.ndim}, expected 2 instead.")
    if len(matrices) == 1:
        return matrices[0].clone()
    r = matrices[0]
    for m in matrices[1:]:
        r = mm(r, m)
    return r

