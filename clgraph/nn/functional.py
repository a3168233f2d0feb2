"""torch.nn.functional: activations, normalization, dropout, embedding and losses as
compositions of clgraph ops, so autograd (and double backward) works through them; conv and
pooling come from ``clgraph.ops.conv``.

Numerics follow PyTorch: cross_entropy over class indices is one fused row (its logsumexp
saved in float32; clgraph/ops/loss.py), over probabilities log_softmax composed with ops;
binary_cross_entropy clamps its logs at -100, binary_cross_entropy_with_logits uses
log-sigmoid's stable form."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import amp as _amp
from .. import dtypes as dt
from ..autograd import Function, is_grad_enabled, no_grad
from ..backends import cuda as _cuda_backend
from ..creation import arange, full, rand, randint, tensor, zeros
from ..ops import attention as _attention
from ..ops import conv as _conv
from ..ops import linalg as _linalg
from ..ops import loss as _loss
from ..ops import math as M
from ..ops import movement as V
from ..ops import norm as _norm
from ..ops import pool as _pool
from ..ops import reduce as R
from ..ops.index import _index_info, gather, index_select
from ..ops.join import cat, split_views
from ..ops.linalg import matmul
from ..ops.registry import REGISTRY, apply
from ..ops.registry import functions as _f
from ..shapes import broadcast_shapes, wrap_dim
from ..tensor import Tensor

# --- reductions and argument conventions ---------------------------------------------------


def _legacy_reduction(size_average, reduce, emit_warning: bool = True) -> str:
    """The reduction string for the deprecated ``size_average``/``reduce`` flags."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if size_average and reduce else "sum" if reduce else "none"
    if emit_warning:
        warnings.warn(f"size_average and reduce args will be deprecated, please use "
                      f"reduction='{ret}' instead.", stacklevel=3)
    return ret


def _reduction(size_average, reduce, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        return _legacy_reduction(size_average, reduce)
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _in_place(input: Tensor) -> bool:
    """Whether ``inplace=True`` can overwrite ``input``: not when autograd tracks it, since
    the VJPs of these composites read the input's old values (a new tensor comes back)."""
    return not (input.requires_grad and is_grad_enabled())


# --- linear and activations ---------------------------------------------------------------


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight.T + bias (the bias in the product's dtype: float16 under
    autocast, as PyTorch's fused linear). Eagerly one op whose float32 kernel adds the
    bias as it stores the product."""
    if bias is not None and _linalg.fused_linear(input, weight, bias):
        return _linalg.linear(input, weight, bias)
    out = matmul(input, weight.t())
    if bias is None:
        return out
    return out + (bias if bias.dtype is out.dtype else bias.to(out.dtype))


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) with erf, or PyTorch's tanh approximation."""
    if approximate == "none":
        return input * 0.5 * (_f.erf(input * (1 / math.sqrt(2))) + 1)
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
        return input * 0.5 * (_f.tanh(inner) + 1)
    raise RuntimeError("approximate argument must be either none or tanh.")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    out = input * _f.sigmoid(input)
    return input.copy_(out) if inplace and _in_place(input) else out



def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    out = M.where(input > 0, input, input * negative_slope)
    return input.copy_(out) if inplace and _in_place(input) else out


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return _result(input, leaky_relu(input, negative_slope), True)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), finite for every x."""
    return _f.minimum(input, 0.0) - _f.log1p(_f.exp(-_f.abs(input)))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` like PyTorch."""
    bx = input * beta
    soft = (_f.maximum(bx, 0.0) + _f.log1p(_f.exp(-_f.abs(bx)))) / beta
    return M.where(bx > threshold, input, soft)


def _result(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    return input.copy_(out) if inplace and _in_place(input) else out


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _result(input, M.where(input > 0, input, _f.expm1(input) * alpha), inplace)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); the gradient is 0 outside (min_val, max_val). An integer
    input keeps its dtype, the bounds converted to it (truncated toward zero) as PyTorch does."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    if input.dtype is dt.bool_:
        raise RuntimeError("Bool inputs not supported for hardtanh")
    if input.dtype.kind == 1:
        if not input.dtype.is_signed and (int(min_val) < 0 or int(max_val) < 0):
            raise RuntimeError(f"cannot do hardtanh on an unsigned type with negative limits "
                               f"(min_val={min_val}, max_val={max_val}, dtype "
                               f"{input.dtype.name})")
        lo, hi = (M.integral_scalar(v, input.dtype, "hardtanh") for v in (min_val, max_val))
        return _result(input, M.clamp(input, lo, hi), inplace)
    inside = (input > min_val) & (input < max_val)
    out = M.where(inside, input, M.clamp(input.detach(), min_val, max_val))
    return _result(input, out, inplace)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return _result(input, M.threshold(input, threshold, value), inplace)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return _result(input, M.threshold(input, threshold, value), True)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _result(input, input * _f.tanh(softplus(input)), inplace)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return input / (_f.abs(input) + 1)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * (x for x > 0, alpha * (exp(x) - 1) otherwise), PyTorch's alpha and scale."""
    return _result(input, M.selu(input), inplace)


def selu_(input: Tensor) -> Tensor:
    return _result(input, M.selu(input), True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x / alpha) - 1) otherwise."""
    return _result(input, M.celu(input, alpha), inplace)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return _result(input, M.celu(input, alpha), True)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """x for x >= 0, x * a otherwise: a uniform in [lower, upper] per element in training,
    their mean in evaluation."""
    return _result(input, M.rrelu(input, lower, upper, training), inplace)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    return _result(input, M.rrelu(input, lower, upper, training), True)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return input - _f.tanh(input)


hardshrink = M.hardshrink


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return M.where(input > lambd, input - lambd, M.where(input < -lambd, input + lambd, 0.0))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), a and b the halves of ``input`` along ``dim``."""
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = wrap_dim(dim, input.ndim)
    n = input.shape[d]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    a, b = input.narrow(d, 0, n // 2), input.narrow(d, n // 2, n // 2)
    return a * _f.sigmoid(b)


prelu = M.prelu


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim, _stacklevel)
    return R.softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim, _stacklevel)
    return R.log_softmax(input, dim, dtype=dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim, _stacklevel)
    return R.softmax(-input, dim, dtype=dtype)


# --- dropout, embedding, shapes -------------------------------------------------------------


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability p (device RNG) and scale the rest by 1/(1-p);
    the identity when not training."""
    return _dropout(input, p, training, inplace, tuple(input.shape))


def _dropout(input: Tensor, p: float, training: bool, inplace: bool, mask_shape: tuple):
    """Dropout with one draw per entry of ``mask_shape`` (broadcast over the input): the
    input's shape for dropout, (N, C, 1, ...) for the channel-wise forms."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        mask = full(mask_shape, 0.0, dtype=input.dtype, device=input.device)
    else:
        keep = rand(*mask_shape, dtype=input.dtype, device=input.device) >= p
        mask = keep.to(input.dtype) * (1.0 / (1.0 - p))
    return input.mul_(mask) if inplace and _in_place(input) else input * mask


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool,
                     batched: bool = True) -> Tensor:
    """Whole channels zeroed: one draw per (batch, channel) of an (N, C, *) input, or per
    channel of an unbatched (C, *) one."""
    lead = 2 if batched else 1
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    return _dropout(input, p, training, inplace, shape)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel-wise dropout of (N, C, L) or unbatched (C, L) input."""
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note "
            "that dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            "inputs).")
    return _feature_dropout(input, p, training, inplace, batched=input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel-wise dropout of (N, C, H, W) input. As PyTorch, a 3-D input is read as
    (N, C, L) (with a warning), and other ranks are deprecated (a warning)."""
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior and "
            "silence this warning, please use dropout instead. Note that dropout2d exists to "
            "provide channel-wise dropout on inputs with 2 spatial dimensions, a channel "
            "dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret "
            "the input as one without a batch dimension, i.e. shape (C, H, W). To maintain "
            "the 1D channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2)
    return _feature_dropout(input, p, training, inplace)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel-wise dropout of (N, C, D, H, W) or unbatched (C, D, H, W) input."""
    if input.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior and "
            "silence this warning, please use dropout instead. Note that dropout3d exists to "
            "provide channel-wise dropout on inputs with 3 spatial dimensions, a channel "
            "dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2)
    return _feature_dropout(input, p, training, inplace, batched=input.ndim == 5)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Dropout that keeps a SELU network's mean and variance: dropped elements are set to
    SELU's negative saturation -alpha * scale, then an affine map a x + b restores the
    statistics (a, b as PyTorch's)."""
    return _alpha_dropout(input, p, training, inplace, tuple(input.shape))


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """alpha_dropout of whole channels: one draw per (N, C) entry, shared over the rest."""
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _alpha_dropout(input, p, training, inplace, shape)


def _alpha_dropout(input: Tensor, p: float, training: bool, inplace: bool, shape) -> Tensor:
    """alpha_dropout with one draw per element of ``shape`` (broadcast over the input)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _result(input, input * 0.0, inplace)
    alpha = M._SELU_ALPHA * M._SELU_SCALE
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    keep = (rand(*shape, dtype=input.dtype, device=input.device) >= p).to(input.dtype)
    b = (keep - 1.0) * (alpha * a) + alpha * a * p
    return _result(input, input * (keep * a) + b, inplace)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """softmax((logits + g) / tau) with g ~ Gumbel(0, 1); ``hard`` returns the one-hot of
    its argmax whose gradient is the soft sample's (straight-through)."""
    u = rand(*logits.shape, dtype=logits.dtype, device=logits.device)
    # g = -log(E), E = -log(1 - u) ~ Exponential(1); the clamp keeps g finite at u = 0
    gumbels = -_f.log(M.clamp_min(-_f.log1p(-u), 1e-30))
    y_soft = R.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    d = wrap_dim(dim, logits.ndim)
    index = y_soft.argmax(d, keepdim=True)
    positions = arange(logits.shape[d], device=logits.device).reshape(
        *([1] * d), -1, *([1] * (logits.ndim - d - 1)))
    y_hard = (positions == index).to(logits.dtype)
    return y_hard - y_soft.detach() + y_soft


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input``; the row at ``padding_idx``
    gets no gradient. With ``max_norm``, the picked rows of ``weight`` whose
    ``norm_type``-norm exceeds it are first scaled in place (under no_grad) to norm
    ``max_norm``. With ``scale_grad_by_freq``, each row's gradient is divided by how often
    its index occurs in ``input``. ``sparse`` is not supported."""
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported")
    if input.dtype.is_floating_point or input.dtype is dt.bool_:
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the "
                           "following scalar types: Long, Int; but got "
                           f"torch.{input.type()[6:]} instead (while checking arguments for "
                           "embedding)")
    if padding_idx is not None:
        n = weight.shape[0]
        if padding_idx > 0 and padding_idx >= n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        if padding_idx < 0:
            if padding_idx < -n:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx += n
    if max_norm is not None:
        _embedding_renorm_(weight, input.reshape(-1), max_norm, norm_type)
    out = index_select(weight, 0, input.reshape(-1)).view(*input.shape, weight.shape[-1])
    if padding_idx is not None and out.requires_grad:
        # the padding row's value, cut off from autograd
        pad = (input == padding_idx).unsqueeze(-1)
        out = M.where(pad, out.detach(), out)
    if scale_grad_by_freq and out.requires_grad:
        flat = input.reshape(-1)
        counts = zeros(weight.shape[0], dtype=weight.dtype, device=weight.device).scatter_add(
            0, flat, full(flat.shape, 1, dtype=weight.dtype, device=weight.device))
        scale = 1 / index_select(counts, 0, flat).view(*input.shape, 1)
        out = _ScaleGrad.apply(out, scale)
    return out


class _ScaleGrad(Function):
    """The identity, its gradient multiplied by ``scale``."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor) -> Tensor:
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, g: Tensor):
        return g * ctx.scale, None


def _embedding_renorm_(weight: Tensor, index: Tensor, max_norm: float, norm_type: float):
    """torch.embedding_renorm_: the rows ``index`` of ``weight`` with a ``norm_type``-norm
    above ``max_norm`` scaled by max_norm / (norm + 1e-7), in place and outside autograd."""
    if weight.ndim != 2:
        raise RuntimeError(f"embedding_renorm_(): Expected 2-dimensional tensor, but got "
                           f"{weight.ndim}-dimensional tensor for argument #1 'self' (while "
                           f"checking arguments for embedding_renorm_)")
    with no_grad():
        rows = index_select(weight, 0, index)
        norms = R.norm(rows, p=float(norm_type), dim=1, keepdim=True)
        scale = M.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[index] = rows * scale


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding with a new last dim of size ``num_classes``."""
    if tensor.dtype is not dt.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if tensor.numel():
        lo, hi = int(tensor.min()), int(tensor.max())
        if lo < 0:
            raise RuntimeError("Class values must be non-negative.")
        if num_classes == -1:
            num_classes = hi + 1
        elif hi >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    elif num_classes == -1:
        raise RuntimeError("Can not infer total number of classes from empty tensor.")
    classes = arange(num_classes, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).to(dt.int64)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return V.flatten(input, start_dim, end_dim)


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """torch.nn.functional.pad: ``pad`` lists (left, right) pairs from the last dim
    backwards; negative amounts crop. Modes constant, reflect, replicate, circular."""
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the "
                           f"input dimension but got padding length {len(pad)} and input of "
                           f"dimension {input.ndim}")
    if mode != "constant" and value not in (None, 0):
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    out = input
    for k in range(len(pad) // 2):
        left, right = int(pad[2 * k]), int(pad[2 * k + 1])
        d = input.ndim - 1 - k
        n = out.shape[d]
        if (left or right) and n + left + right < (1 if mode in ("reflect", "replicate") else 0):
            raise RuntimeError(f"pad: input of size {list(input.shape)} is too small for "
                               f"padding ({left}, {right}) at dimension {d} in {mode} mode: "
                               f"the calculated output size is {n + left + right}")
        if mode in ("reflect", "replicate") and (left < 0 or right < 0):
            # PyTorch reads output j from source j - left, reflected or clamped into the
            # uncropped dim: a negative side crops, the other pads from the full extent
            if mode == "reflect" and (left >= n or right >= n):
                raise RuntimeError(f"Argument #4: Padding size should be less than the "
                                   f"corresponding input dimension, but got: padding ({left}, "
                                   f"{right}) at dimension {d} of input {list(input.shape)}")
            if n == 0:
                raise RuntimeError(f"Expected a non-empty dimension {d} to pad in {mode} "
                                   f"mode, but got input of size {list(input.shape)}")
            out = index_select(out, d, _pad_index(mode, n, left, right, out.device))
            continue
        if left < 0:
            out = out.narrow(d, -left, n + left)
            n, left = n + left, 0
        if right < 0:
            out = out.narrow(d, 0, n + right)
            n, right = n + right, 0
        if not (left or right):
            continue
        if mode == "constant":
            parts = []
            for amount in (left, right):
                shape = list(out.shape)
                shape[d] = amount
                parts.append(full(shape, 0.0 if value is None else value, dtype=out.dtype,
                                  device=out.device))
            out = cat([parts[0], out, parts[1]], dim=d)
            continue
        if mode == "reflect" and (left >= n or right >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the "
                               f"corresponding input dimension, but got: padding ({left}, "
                               f"{right}) at dimension {d} of input {list(input.shape)}")
        if mode == "circular" and (left > n or right > n):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        out = index_select(out, d, _pad_index(mode, n, left, right, out.device))
    return out


def _pad_index(mode, n, left, right, device):
    """Source positions of a reflect/replicate/circular pad along one dim."""

    pos = np.arange(-left, n + right)
    if mode == "replicate":
        idx = np.clip(pos, 0, n - 1)
    elif mode == "circular":
        idx = pos % n
    else:  # reflect without repeating the edge
        period = 2 * (n - 1) if n > 1 else 1
        idx = np.abs(pos) % period
        idx = np.where(idx >= n, period - idx, idx)

    return tensor(idx.astype(np.int64), device=device)


# --- normalization --------------------------------------------------------------------------


def _normalized_shape(normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(n) for n in normalized_shape)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` dims (biased variance): one kernel
    (each row's mean and rstd saved in float32), one backward kernel per row and a column
    sum for weight and bias."""
    return _norm.layer_norm(input, _normalized_shape(normalized_shape), weight, bias, eps,
                            autocast=_amp.is_autocast_enabled())


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last ``len(normalized_shape)`` dims; eps
    None: the machine epsilon of the input's dtype."""
    return _norm.rms_norm(input, _normalized_shape(normalized_shape), weight, eps,
                          autocast=_amp.is_autocast_enabled())


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize each of ``num_groups`` groups of channels (dim 1) of each sample over the
    group's channels and the spatial dims (biased variance; the fused layer_norm over each
    group), then the per-channel affine."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")
    N, C = input.shape[0], input.shape[1]
    if C % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    x = input.reshape(N, num_groups, -1)
    out = _norm.layer_norm(x, (x.shape[2],), None, None, eps,
                           autocast=_amp.is_autocast_enabled()).reshape(input.shape)
    cshape = (1, C) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(cshape)
    if bias is not None:
        out = out + bias.reshape(cshape)
    return out


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalizes each (sample, channel) plane over its spatial dims; running statistics
    (given) are updated with the mean of the per-instance statistics, or used instead when
    ``use_input_stats`` is False."""
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher input (got {input.ndim}D input)")
    spatial = tuple(range(2, input.ndim))
    if input.shape[2:].numel() <= 1 and use_input_stats:
        raise ValueError(f"Expected more than 1 spatial element when training, got input "
                         f"size {list(input.shape)}")
    cshape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    if use_input_stats:
        var, mean = R.var_mean(input, spatial, correction=0, keepdim=True)
        with no_grad():
            _update_running(running_mean, running_var, mean.mean(0), var.mean(0),
                            input.shape[2:].numel(), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("Expected running_mean and running_var to be defined when "
                               "use_input_stats is false")
        mean, var = running_mean.reshape(cshape), running_var.reshape(cshape)
    return _normalized(input, mean, var, weight, bias, eps, cshape)


def _update_running(running_mean, running_var, mean, var, n: int, momentum: float) -> None:
    """The running statistics (either may be None) move by ``momentum`` towards the batch's
    mean and its unbiased variance (``var`` over ``n`` values per channel). An empty batch
    (``n == 0``) leaves them as they are, as in PyTorch."""
    if n == 0:
        return
    if running_mean is not None:
        running_mean.mul_(1 - momentum).add_(
            mean.detach().reshape(-1).to(running_mean.dtype) * momentum)
    if running_var is not None:
        unbiased = var.detach().reshape(-1) * (n / max(n - 1, 1))
        running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype) * momentum)


def _normalized(input, mean, var, weight, bias, eps: float, cshape):
    """(input - mean) / sqrt(var + eps), then the per-channel weight and bias."""
    out = (input - mean) * _f.rsqrt(var + eps)
    if weight is not None:
        out = out * weight.reshape(cshape)
    if bias is not None:
        out = out + bias.reshape(cshape)
    return out


def _verify_batch_size(size) -> None:
    n = size[0]
    for s in size[2:]:
        n *= s
    if n == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {size}")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) over the batch and spatial dims. In training the
    batch statistics normalize and update the running ones in place (unbiased variance);
    otherwise the running statistics normalize."""
    if training:
        _verify_batch_size(input.shape)
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if input.ndim == 1 and input.numel() == 0:
        # PyTorch passes an empty 1-D input through (no channels, nothing to normalize)
        for name, t in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
            if t is not None and t.numel() != 0:
                raise RuntimeError(f"{name} should contain 0 elements not {t.numel()}")
        return input.clone()
    if input.ndim < 2:
        raise ValueError(f"batch_norm expected at least 2D input (got {input.ndim}D input)")
    C = input.shape[1]
    bshape = (1, C) + (1,) * (input.ndim - 2)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != C:
            raise RuntimeError(f"{name} should contain {C} elements not {t.numel()}")
    if training:
        dims = (0,) + tuple(range(2, input.ndim))
        var, mean = _f.var_mean(input, dim=dims, correction=0, keepdim=True)
        with no_grad():
            _update_running(running_mean, running_var, mean, var, input.numel() // C,
                            momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation "
                               "mode")
        mean = running_mean.reshape(bshape)
        var = running_var.reshape(bshape)
    return _normalized(input, mean, var, weight, bias, eps, bshape)


def _sync_batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                     weight: Tensor | None, bias: Tensor | None, momentum: float, eps: float,
                     process_group) -> Tensor:
    """batch_norm in training over the batch of every rank of ``process_group`` together
    (SyncBatchNorm): the per-channel sums, sums of squares and counts are all-reduced by an
    all_reduce whose backward all-reduces their gradients, so each rank's input gradient
    includes the other ranks' losses through the shared statistics, as in PyTorch."""
    C = input.shape[1]
    dims = (0,) + tuple(range(2, input.ndim))
    x = input.float() if input.dtype in (dt.float16, dt.bfloat16) else input  # as PyTorch
    count = full((C,), float(input.numel() // C), dtype=x.dtype, device=x.device)
    stats = _AllReduceSum.apply(cat([x.sum(dims), (x * x).sum(dims), count]), process_group)
    total = int(stats[2 * C].item()) if C else 0
    if total <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {list(input.shape)} on every rank together")
    mean = stats[:C] / total
    var = _f.relu(stats[C:2 * C] / total - mean * mean)
    with no_grad():
        _update_running(running_mean, running_var, mean, var, total, momentum)
    bshape = (1, C) + (1,) * (input.ndim - 2)
    mean, var = mean.to(input.dtype), var.to(input.dtype)
    return _normalized(input, mean.reshape(bshape), var.reshape(bshape), weight, bias, eps,
                       bshape)


class _AllReduceSum(Function):
    """all_reduce(SUM) whose backward all-reduces the gradient (clgraph.distributed is
    imported only when it runs)."""

    @staticmethod
    def forward(ctx, t: Tensor, group) -> Tensor:
        from .. import distributed as dist

        ctx.group = group
        out = t.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        from .. import distributed as dist

        g = g.clone()
        dist.all_reduce(g, group=ctx.group)
        return g, None


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """x / (k + alpha / size * sum of x^2 over ``size`` neighbouring channels)^beta; the
    window at channel c spans c - size // 2 .. c + (size - 1) // 2, zero padded."""
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} "
                         "dimensions)")
    if input.numel() == 0:
        return input
    channels = input.shape[1]
    sq = pad(input * input, [0, 0] * (input.ndim - 2) + [size // 2, (size - 1) // 2])
    window = sq.narrow(1, 0, channels)
    for j in range(1, size):
        window = window + sq.narrow(1, j, channels)
    return input / _f.pow(window * (alpha / size) + k, beta)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    return input / M.clamp_min(input.norm(p=p, dim=dim, keepdim=True), eps)


# --- losses ---------------------------------------------------------------------------------


def _check_same_size(input, target):
    if target.shape != input.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.", stacklevel=3)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _check_same_size(input, target)
    diff = input - target
    loss = diff * diff
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _check_same_size(input, target)
    loss = _f.abs(input - target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _check_same_size(input, target)
    d = _f.abs(input - target)
    if beta == 0.0:
        return _reduce(d, reduction)
    loss = M.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, delta (|d| - delta / 2) beyond (d = input - target)."""
    _check_reduction(reduction)
    _check_same_size(input, target)
    if delta <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta, "
                           f"got {delta}")
    d = _f.abs(input - target)
    loss = M.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """target * (log target - input) pointwise (input holds log-probabilities; target too
    with ``log_target``); 'batchmean' divides the sum by the batch size."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and "
                      "the support size.'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition.'mean' will be changed to "
                      "behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    if log_target:
        loss = _f.exp(target) * (target - input)
    else:  # x log x is 0 at x = 0 (xlogy), with a finite gradient there; NaN below 0
        loss = target * _f.log(M.where(target == 0, 1.0, target)) - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.ndim else loss.sum()
    return _reduce(loss, reduction)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along ``dim``, after
    broadcasting x1 and x2."""
    shape = broadcast_shapes(x1.shape, x2.shape)
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    n1 = M.clamp_min(x1.norm(p=2, dim=dim, keepdim=True), eps)
    n2 = M.clamp_min(x2.norm(p=2, dim=dim, keepdim=True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim."""
    return (x1 - x2 + eps).norm(p=p, dim=-1, keepdim=keepdim)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distances between the rows of an (N, M) input, for i < j in row-major
    order (N (N - 1) / 2 values)."""
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if p < 0:
        raise RuntimeError(f"pdist only supports non-negative p values, got {p}")
    i, j = np.triu_indices(input.shape[0], k=1)
    a = index_select(input, 0, tensor(i.astype(np.int64), device=input.device))
    b = index_select(input, 0, tensor(j.astype(np.int64), device=input.device))
    return (a - b).norm(p=p, dim=1)


def _class_dim(input: Tensor) -> int:
    if input.ndim == 0:
        raise ValueError("Expected input to have at least 1 dimension, got 0")
    return 0 if input.ndim == 1 else 1


def _check_targets(input: Tensor, target: Tensor) -> None:
    if input.ndim >= 2 and target.ndim >= 1 and input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0]}).")
    if target.dtype.is_floating_point or target.dtype is dt.bool_:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                           f"{target.type()[6:-6]}")
    expected = input.shape[:1] + input.shape[2:] if input.ndim >= 2 else ()
    if tuple(target.shape) != tuple(expected):
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}")


def _picked(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int):
    """(input at each target class along the class dim, each target's weight: 0 where
    ignored, None when every weight is 1). Both gathers share one index view, whose bounds
    check is memoized per tensor, so a step reads at most that index back; targets in range
    with an out-of-range ``ignore_index`` (the usual case) need no masking."""
    cdim = _class_dim(input)
    C = input.shape[cdim]
    index = target.to(dt.int64).unsqueeze(cdim)
    lo, hi, _ = _index_info(index) if index.numel() else (0, 0, True)
    in_range = lo >= 0 and hi < C
    w = None
    if not in_range:
        host = index._host()
        bad = host[((host < 0) | (host >= C)) & (host != ignore_index)]
        if bad.size:
            raise IndexError(f"Target {int(bad.flat[0])} is out of bounds.")
    if not in_range or 0 <= ignore_index < C:
        valid = index != ignore_index
        index = M.where(valid, index, 0)
        w = valid.to(input.dtype)
    picked = gather(input, cdim, index)
    if weight is not None:
        if weight.ndim != 1 or weight.numel() != C:
            raise RuntimeError(f"weight tensor should be defined either for all {C} classes "
                               f"or no classes but got weight tensor of shape: "
                               f"{list(weight.shape)}")
        shape = [1] * input.ndim
        shape[cdim] = C
        per_class = weight.to(input.dtype).reshape(shape).expand(*input.shape)
        wt = gather(per_class, cdim, index)
        w = wt if w is None else wt * w
    return picked.squeeze(cdim), (None if w is None else w.squeeze(cdim))


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] * weight[target[n]]; ``mean`` divides by the weights' sum."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _check_targets(input, target)
    picked, w = _picked(input, target, weight, ignore_index)
    loss = -picked if w is None else -picked * w
    if reduction == "mean":
        return loss.mean() if w is None else loss.sum() / w.sum()
    return _reduce(loss, reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dim (1, or 0 for unbatched input) then nll_loss; a
    floating ``target`` of the input's shape holds class probabilities. Class indices take
    the fused row (clgraph/ops/loss.py): the class dim moved last, one pass per row forward
    and backward."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: "
                           f"{label_smoothing}")
    cdim = _class_dim(input)
    C = input.shape[cdim]
    if tuple(target.shape) == tuple(input.shape):  # class probabilities, as PyTorch decides
        if not target.dtype.is_floating_point:
            raise RuntimeError(f"Expected floating point type for target with class "
                               f"probabilities, got {target.dtype.scalar_type}")
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing, cdim)
    _check_targets(input, target)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f'"log_softmax_lastdim_kernel_impl" not implemented for '
                           f"'{input.dtype.scalar_type}'")
    if input.ndim == 1:
        x, t = input.unsqueeze(0), target.reshape(1)
    elif input.ndim == 2:
        x, t = input, target
    else:
        x = input.permute(0, *range(2, input.ndim), 1).reshape(-1, C)
        t = target.reshape(-1)
    loss = _loss.cross_entropy(x, t, weight, ignore_index, reduction, label_smoothing,
                               autocast=_amp.is_autocast_enabled())
    return loss.reshape(target.shape) if reduction == "none" else loss



def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *,
                         linear_bias: Tensor | None = None, weight: Tensor | None = None,
                         reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None) -> Tensor:
    """cross_entropy(linear(input, linear_weight, linear_bias), target, ...): input
    (in_features,) or (N, in_features), linear_weight (C, in_features) or
    (C, d_1, ..., d_K, in_features) for a K-dimensional loss (batched input only), whose
    logits are (N, C, d_1, ..., d_K). ``ignore_index`` None means -100 for class indices and
    must stay None for class probabilities. ``options`` (nn.LinearCrossEntropyOptions)
    selects PyTorch's batch-chunked evaluation, the same values; here the composition
    always runs, and options PyTorch's chunked path cannot take warn as there."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got "
                           f"{linear_weight.ndim}")
    batch, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError(f"expected equal input and linear_weight last dimensions "
                           f"(in_features), got {in_features} and {linear_weight.shape[-1]}, "
                           f"respectively")
    C, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (C, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(C, *out_features)}, got "
                           f"{tuple(linear_bias.shape)}")
    if out_features and not batch:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape "
                           f"{tuple(linear_weight.shape)} requires batched input, "
                           f"(N, {in_features}), got unbatched input with shape "
                           f"{tuple(input.shape)}")
    logits_shape = (*batch, C, *out_features)
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains "
                           "probabilities")
    if options is not None and (out_features or reduction not in ("mean", "sum", "none")
                                or label_smoothing != 0.0 or target.dtype is not dt.int64):
        warnings.warn(f"linear_cross_entropy: ``options`` ignored; chunked path needs "
                      f"reduction in {{'mean','sum','none'}}, label_smoothing == 0, "
                      f"target.dtype == int64, out_features == (). Got "
                      f"reduction={reduction!r}, label_smoothing={label_smoothing}, "
                      f"target.dtype={target.dtype}, out_features={out_features}, "
                      f"linear_bias.shape="
                      f"{tuple(linear_bias.shape) if linear_bias is not None else None}.",
                      stacklevel=2)
    rows = C * math.prod(out_features)
    w = linear_weight.reshape(rows, in_features) if out_features else linear_weight
    b = linear_bias.reshape(rows) if out_features and linear_bias is not None else linear_bias
    logits = linear(input, w, b).reshape(logits_shape)
    return cross_entropy(logits, target, weight, ignore_index=-100 if ignore_index is None
                         else ignore_index, reduction=reduction,
                         label_smoothing=label_smoothing)

def _cross_entropy_probs(input, target, weight, reduction, label_smoothing, cdim):
    """cross_entropy with class probabilities: -sum(target * log_softmax(input)), composed
    of ops."""
    C = input.shape[cdim]
    if target.shape != input.shape:
        raise RuntimeError(f"Expected target size {list(input.shape)}, got "
                           f"{list(target.shape)}")
    logp = R.log_softmax(input, cdim)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / C
    prod = logp * target
    if weight is not None:
        wshape = [1] * input.ndim
        wshape[cdim] = C
        prod = prod * weight.reshape(wshape)
    if reduction == "mean":
        return -prod.sum() / (input.numel() // C if input.numel() else float("nan"))
    if reduction == "sum":
        return -prod.sum()
    return -prod.sum(dim=cdim)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-(t log x + (1 - t) log(1 - x)) with each log clamped at -100, as PyTorch does."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if target.shape != input.shape:
        raise ValueError(f"Using a target size ({target.shape}) that is different to the "
                         f"input size ({input.shape}) is deprecated. Please ensure they have "
                         "the same size.")
    loss = apply(_loss.BINARY_CROSS_ENTROPY, input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """(1 - t) x - (1 + (pos_weight - 1) t) log_sigmoid(x), finite for every x."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    log_sig = logsigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _same_ndim(name: str, **tensors) -> None:
    """PyTorch's check that the inputs of a pairwise loss agree in rank."""
    if len({t.ndim for t in tensors.values()}) > 1:
        sizes = ", ".join(f"{k}: {list(t.shape)}" for k, t in tensors.items())
        raise RuntimeError(f"{name} : All input tensors should have same dimension but got "
                           f"sizes: {sizes}")


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -target * (input1 - input2) + margin)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _same_ndim("margin_ranking_loss", input1=input1, input2=input2, target=target)
    return _reduce(M.clamp_min(-target * (input1 - input2) + margin, 0.0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """x where target is 1, max(0, margin - x) where target is -1."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    below = M.where(target != 1, M.clamp_min(margin - input, 0.0), 0.0)
    return _reduce(below + M.where(target != -1, input, 0.0), reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target * input)), in softplus's stable form."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _check_same_size(input, target)
    return _reduce(-logsigmoid(target * input), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """-(t log sigmoid(x) + (1 - t) log sigmoid(-x)), weighted per class and averaged over
    the class (last) dim."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    cdim = max(input.ndim - 1, 0)
    return _reduce(loss.sum(cdim) / input.shape[cdim] if input.ndim else loss, reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    """sum over j != y of max(0, margin - x[y] + x[j])^p / C (times weight[y]), for
    (N, C) or (C,) input and class targets y."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"only p == 1 and p == 2 supported, got p={p}")
    if weight is not None and weight.ndim != 1:
        raise ValueError(f"weight must be one-dimensional, got a {weight.ndim}-D weight")
    if input.ndim > 2:
        raise RuntimeError(f"multi_margin_loss: Expected non-empty vector or matrix with "
                           f"optional 0-dim batch size, but got: {list(input.shape)}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    y = target.reshape(-1).to(dt.int64)
    N, C = x.shape
    if y.numel() != N:
        raise RuntimeError(f"multi_margin_loss: target tensor should be 1-D with size equal "
                           f"to the number of input samples (batch size). Expected target "
                           f"size [{N}], but got {list(target.shape)}. Input has shape "
                           f"{list(input.shape)}.")
    if N and (int(y.min()) < 0 or int(y.max()) >= C):
        raise IndexError(f"target out of range: class indices must lie in [0, {C}), got "
                         f"{y.tolist()}")
    x_y = gather(x, 1, y.unsqueeze(1))
    z = M.clamp_min(x - x_y + margin, 0.0)
    z = z * z if p == 2 else z
    z = M.where(arange(C, device=x.device) == y.unsqueeze(1), 0.0, z)
    if weight is not None:
        z = z * index_select(weight, 0, y).unsqueeze(1)
    loss = z.sum(1) / C
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """sum over the target classes j and the other classes i of max(0, 1 - (x[j] - x[i]))
    / C, for (N, C) or (C,) input; each target row lists class indices up to its first -1.
    A class listed twice counts twice, as in PyTorch."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if input.ndim > 2 or (input.ndim == 2 and input.shape[1] == 0) or (
            input.ndim < 2 and input.numel() == 0):
        raise RuntimeError(f"multilabel_margin_loss: Expected non-empty vector or matrix with "
                           f"optional 0-dim batch size, but got: {list(input.shape)}")
    if target.shape != input.shape:
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)}")
    if target.dtype is not dt.int64:
        raise RuntimeError(f"multilabel_margin_loss: expected target of dtype torch.int64, "
                           f"got {target.dtype}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    y = target.reshape(x.shape)
    N, C = x.shape
    if y.numel() and (int(y.min()) < -1 or int(y.max()) >= C):
        raise RuntimeError(f"multilabel_margin_loss: target values must lie in [-1, {C}), "
                           f"got {y.tolist()}")
    listed = _f.cumsum((y < 0).to(dt.int64), 1) == 0  # the entries before the first -1
    yc = M.clamp_min(y, 0)
    is_target = (one_hot(yc, C) * listed.unsqueeze(-1).to(dt.int64)).sum(1) > 0  # (N, C)
    x_y = gather(x, 1, yc)  # (N, C): the score of each listed class
    pair = M.clamp_min(x.unsqueeze(1) - x_y.unsqueeze(2) + 1.0, 0.0)  # (N, j, i)
    keep = listed.unsqueeze(2) & ~is_target.unsqueeze(1)
    loss = M.where(keep, pair, 0.0).sum((1, 2)) / C
    if input.ndim < 2:
        loss = loss.reshape(())
    if reduction == "mean" and loss.numel() == 0:
        return loss.sum()  # PyTorch's empty mean is 0 here, not nan
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1;
    cos over the last dim with PyTorch's 1e-12 added to each squared norm."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if target.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    _same_ndim("cosine_embedding_loss", input1=input1, input2=input2)
    if input1.ndim != target.ndim + 1:
        raise RuntimeError(f"{target.ndim}D target tensor expects {target.ndim + 1}D input "
                           f"tensors, but found inputs with sizes {list(input1.shape)} and "
                           f"{list(input2.shape)}.")
    d = target.ndim
    prod = (input1 * input2).sum(d)
    mag = ((input1 * input1).sum(d) + 1e-12) * ((input2 * input2).sum(d) + 1e-12)
    cos = prod / _f.sqrt(mag)
    loss = (M.where(target == 1, 1 - cos, 0.0)
            + M.where(target == -1, M.clamp_min(cos - margin, 0.0), 0.0))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """0.5 (log var + (input - target)^2 / var) (+ 0.5 log 2 pi with ``full``); var is
    clamped at eps for the value only (its gradient passes as if unclamped, as PyTorch)."""
    if isinstance(var, numbers.Real):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = tensor(float(var), dtype=input.dtype, device=input.device).expand(*input.shape)
    elif bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (input.ndim == var.ndim and sum(
                b for a, b in zip(input.shape, var.shape) if a != b) == 1):
            raise ValueError(f"var is of incorrect size: {list(var.shape)} for input of size "
                             f"{list(input.shape)}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var + (M.clamp_min(var, eps) - var).detach()
    diff = input - target
    loss = (_f.log(var) + diff * diff / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """exp(input) - target * input (log_input), or input - target * log(input + eps);
    ``full`` adds Stirling's target log target - target + 0.5 log(2 pi target) where
    target > 1."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if log_input:
        loss = _f.exp(input) - target * input
    else:
        loss = input - target * _f.log(input + eps)
    if full:
        t = M.where(target > 1, target, 1.0)
        stirling = t * _f.log(t) - t + _f.log(t * (2 * math.pi)) * 0.5
        loss = loss + M.where(target > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(0, margin + d(a, p) - d(a, n)), d the p-norm pairwise distance; ``swap`` uses
    min(d(a, n), d(p, n)) for the negative."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    dims = (anchor.ndim, positive.ndim, negative.ndim)
    if len(set(dims)) > 1:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have "
                           f"the same number of dimensions, but got: anchor {dims[0]}D, "
                           f"positive {dims[1]}D, and negative {dims[2]}D inputs")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _f.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(M.clamp_min(d_pos - d_neg + margin, 0.0), reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """max(0, margin + d(a, p) - d(a, n)) for any ``distance_function`` d (default the
    2-norm pairwise_distance); ``swap`` uses min(d(a, n), d(p, n)) for the negative."""
    _check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    dims = (anchor.ndim, positive.ndim, negative.ndim)
    if len(set(dims)) > 1:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have "
                           f"the same number of dimensions, but got: anchor {dims[0]}D, "
                           f"positive {dims[1]}D, and negative {dims[2]}D inputs")
    distance = pairwise_distance if distance_function is None else distance_function
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = _f.minimum(d_neg, distance(positive, negative))
    return _reduce(M.clamp_min(d_pos - d_neg + margin, 0.0), reduction)


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """Connectionist temporal classification: -log of the total probability of the
    alignments of each target, by the alpha recursion in log space over time (one step of
    clgraph ops per frame); autograd gives the gradient. 'mean' divides each loss by its
    target length, then averages. Unlike PyTorch's CTC backward, the gradient is the true
    derivative with respect to ``log_probs``; through a log_softmax both agree."""
    _check_reduction(reduction)
    if log_probs.ndim not in (2, 3):
        raise RuntimeError(f"ctc_loss: expected log_probs of 2 (T, C) or 3 (T, N, C) "
                           f"dimensions, but got size {list(log_probs.shape)}")
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise RuntimeError(f"blank must be in label range, got blank={blank} for {C} classes")
    in_len = [int(v) for v in (input_lengths.reshape(-1).tolist()
                               if isinstance(input_lengths, Tensor) else
                               np.ravel(input_lengths))]
    tg_len = [int(v) for v in (target_lengths.reshape(-1).tolist()
                               if isinstance(target_lengths, Tensor) else
                               np.ravel(target_lengths))]
    if len(in_len) != N:
        raise RuntimeError(f"input_lengths must be of size batch_size ({N}), got {len(in_len)}")
    if len(tg_len) != N:
        raise RuntimeError(f"target_lengths must be of size batch_size ({N}), got "
                           f"{len(tg_len)}")
    if any(t > T or t < 0 for t in in_len):
        raise RuntimeError(f"Expected input_lengths to have values in [0, {T}], but got "
                           f"{in_len}")
    host_targets = targets.reshape(-1 if unbatched else targets.shape).detach().numpy() \
        if isinstance(targets, Tensor) else np.asarray(targets)
    labels = []
    for n, s in enumerate(tg_len):
        if host_targets.ndim == 2 and not unbatched:
            row = host_targets[n, :s]
        else:
            start = sum(tg_len[:n])
            row = host_targets.reshape(-1)[start:start + s]
        if len(row) != s:
            raise RuntimeError(f"Expected tensor to have size at least {s} at dimension 1, "
                               f"but got size {len(row)} for target {n}")
        labels.append(row.astype(np.int64))
    L = 2 * max(tg_len, default=0) + 1
    ext = np.full((N, L), blank, dtype=np.int64)
    skip = np.zeros((N, L), dtype=bool)  # alpha[s - 2] may feed alpha[s]
    for n, row in enumerate(labels):
        ext[n, 1:2 * len(row):2] = row
        skip[n, 3:2 * len(row):2] = row[1:] != row[:-1]
    dev = lp.device
    neg = -1e30  # "log 0", finite so that impossible paths keep finite gradients
    picked = gather(lp, 2, tensor(ext, device=dev).unsqueeze(0).expand(T, N, L))
    start = np.full((N, L), neg)
    start[:, :2] = 0.0
    alpha = picked[0] + tensor(start, dtype=lp.dtype, device=dev)
    skip_t = tensor(skip, device=dev)
    lengths = np.asarray(in_len)
    for t in range(1, T):
        a1 = alpha
        a2 = pad(alpha, [1, -1], value=neg)
        a3 = M.where(skip_t, pad(alpha, [2, -2], value=neg), neg)
        m = _f.maximum(_f.maximum(a1, a2), a3).detach()
        step = m + _f.log(_f.exp(a1 - m) + _f.exp(a2 - m) + _f.exp(a3 - m)) + picked[t]
        active = tensor((t < lengths)[:, None], device=dev)
        alpha = M.where(active, step, alpha)
    last = np.array([[2 * s, max(2 * s - 1, 0)] for s in tg_len], dtype=np.int64)
    ends = gather(alpha, 1, tensor(last, device=dev))
    ends = M.where(tensor(np.array(tg_len)[:, None] > np.array([[-1, 0]]), device=dev), ends,
                   neg)
    m = _f.maximum(ends[:, 0], ends[:, 1]).detach()
    nll = -(m + _f.log(_f.exp(ends[:, 0] - m) + _f.exp(ends[:, 1] - m)))
    impossible = (nll > 1e29) | tensor(lengths == 0, device=dev)
    nll = M.where(impossible, 0.0 if zero_infinity else math.inf, nll)
    if reduction == "mean":
        denom = tensor(np.maximum(np.array(tg_len), 1), dtype=lp.dtype, device=dev)
        return (nll / denom).mean()
    if reduction == "sum":
        return nll.sum()
    return nll.squeeze(0) if unbatched else nll


# --- resampling -----------------------------------------------------------------------------

# the input dims each mode takes; PyTorch's message for a wrong one names the first
_INTERP = {"nearest": (3, 4, 5), "nearest-exact": (3, 4, 5), "area": (3, 4, 5),
           "linear": (3,), "bilinear": (4,), "trilinear": (5,), "bicubic": (4,)}
_INTERP_MODES = "nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact"


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resample the spatial dims (after N, C), separably, with PyTorch's source coordinates
    (half-pixel centers, or the corners with ``align_corners``; a given ``scale_factor``
    maps coordinates by its inverse unless ``recompute_scale_factor``): "nearest" and
    "nearest-exact" (3-5-D), "linear" (3-D), "bilinear" and "bicubic" (4-D; cubic
    convolution with A = -0.75, taps clamped to the border), "trilinear" (5-D), "area"
    (3-5-D, adaptive average pooling); with ``antialias`` (bilinear and bicubic) PyTorch's
    separable antialiasing filters, a matmul per axis. Made of index_select, matmul and
    elementwise ops, so it differentiates."""
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    if input.ndim not in _INTERP.get(mode, ()):
        wants = {"linear": 3, "bilinear": 4, "trilinear": 5}
        if mode in wants and input.ndim in (3, 4, 5):
            raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs "
                                      f"{wants[mode]}D input")
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported "
                                  f"(got {input.ndim}D) for the modes: {_INTERP_MODES} "
                                  f"(got {mode})")
    if antialias:
        if mode not in ("bilinear", "bicubic"):
            raise ValueError("Anti-alias option is restricted to bilinear and bicubic modes "
                             "and requires a 4-D tensor as input")
    nd = input.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("either size or scale_factor should be defined" if size is None
                         else "only one of size or scale_factor should be defined")
    spatial = list(input.shape[2:])
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        out = [int(size)] * nd if isinstance(size, numbers.Integral) else [int(v) for v in size]
        if len(out) != nd:
            raise ValueError(f"Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of {spatial} "
                             f"and output size of {size}. Please provide input tensor "
                             f"in (N, C, d1, d2, ...,dK) format and output size in "
                             f"(o1, o2, ...,oK) format.")
        scales = [n / o for n, o in zip(spatial, out)]
    else:
        sf = [float(scale_factor)] * nd if isinstance(scale_factor, numbers.Real) else [
            float(v) for v in scale_factor]
        if len(sf) != nd:
            raise ValueError(f"Input and scale_factor must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of {spatial} "
                             f"and scale_factor of shape {scale_factor}. Please provide "
                             f"input tensor in (N, C, d1, d2, ...,dK) format and scale_factor "
                             f"in (s1, s2, ...,sK) format.")
        out = [int(math.floor(n * f)) for n, f in zip(spatial, sf)]
        scales = [n / o if recompute_scale_factor else 1.0 / f
                  for n, o, f in zip(spatial, out, sf)]
    if any(o <= 0 for o in out):
        def dims(v):
            return ", ".join(f"{d}: {n}" for d, n in zip("DHW"[3 - nd:], v))

        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input "
                           f"({dims(spatial)}) output ({dims(out)})")
    y = input
    integer = not input.dtype.is_floating_point and mode not in ("nearest", "nearest-exact")
    passes = list(enumerate(zip(spatial, out, scales), start=2))
    if integer:  # uint8 images, as PyTorch: a float pass per axis, the last axis first,
        y = y.to(dt.float32)  # each rounded to the nearest and clamped to the type's range
        passes.reverse()
    for axis, (n, o, sc) in passes:
        if antialias:
            y = _resample_antialiased(y, axis, n, o, sc, mode, bool(align_corners))
        else:
            y = _resample(y, axis, n, o, sc, mode, bool(align_corners))
        if integer:
            info = dt.iinfo(input.dtype)
            y = y.round().clamp(info.min, info.max)
    return y.to(input.dtype) if integer else y


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """Deprecated: interpolate."""
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: interpolate(mode="nearest")."""
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use "
                  "`nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: interpolate(mode="bilinear", align_corners=True)."""
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use "
                  "`nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _antialias_filter(mode: str):
    """PyTorch's antialiasing filters: the triangle, or Keys' cubic with a = -0.5."""
    if mode == "bilinear":
        return lambda x: np.maximum(0.0, 1.0 - np.abs(x))
    a = -0.5

    def cubic(x):
        x = np.abs(x)
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return np.where(x < 1, near, np.where(x < 2, far, 0.0))

    return cubic


def _resample_antialiased(x: Tensor, axis: int, n: int, o: int, scale: float, mode: str,
                          corners: bool) -> Tensor:
    """One axis of interpolate(antialias=True), as PyTorch's _upsample_*_aa: output i is
    the normalized filter (stretched by the scale when downsampling) over the inputs whose
    centers lie within its support around scale * (i + 0.5); a matmul with that (o, n)
    matrix."""
    if corners:
        scale = (n - 1) / (o - 1) if o > 1 else 0.0
    taps = 2 if mode == "bilinear" else 4
    support = taps * 0.5 * scale if scale >= 1 else taps * 0.5
    inv = 1.0 / scale if scale >= 1 else 1.0
    width = int(math.ceil(support)) * 2 + 1
    filt = _antialias_filter(mode)
    weights = np.zeros((o, n))
    for i in range(o):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)  # int(): C++'s truncation toward zero
        size = min(max(min(int(center + support + 0.5), n) - lo, 0), width)
        w = filt((np.arange(lo, lo + size) - center + 0.5) * inv)
        total = w.sum()
        weights[i, lo:lo + size] = w / total if total != 0 else w
    y = x.movedim(axis, -1) @ tensor(weights.T, dtype=x.dtype, device=x.device)
    return y.movedim(-1, axis)


def _cubic_weights(t: np.ndarray) -> list:
    """The four cubic-convolution weights (A = -0.75) of taps -1, 0, 1, 2 at fraction t."""
    A = -0.75

    def near(x):  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _resample(x: Tensor, axis: int, n: int, o: int, scale: float, mode: str, corners: bool):
    """One spatial axis of interpolate, from n to o samples (scale: source step per output
    step, unless corners)."""
    dst = np.arange(o, dtype=np.float64)
    shape = [1] * x.ndim
    shape[axis] = o

    def take(src):
        return x.index_select(axis, tensor(np.clip(src, 0, n - 1), device=x.device))

    def weight(w):
        return tensor(w.reshape(shape), dtype=x.dtype, device=x.device)

    if mode in ("nearest", "nearest-exact"):
        return take(np.floor((dst + (mode == "nearest-exact") * 0.5) * scale).astype(np.int64))
    if mode == "area":  # output i averages inputs [floor(i n / o), ceil((i + 1) n / o))
        start = np.floor(dst * n / o).astype(np.int64)
        end = -(-(np.arange(1, o + 1) * n) // o)
        cols = np.arange(n)
        avg = ((cols >= start[:, None]) & (cols < end[:, None])) / (end - start)[:, None]
        y = x.movedim(axis, -1) @ tensor(avg.T, dtype=x.dtype, device=x.device)
        return y.movedim(-1, axis)
    if corners:
        pos = dst * ((n - 1) / (o - 1)) if o > 1 else np.zeros(o)
    else:
        pos = (dst + 0.5) * scale - 0.5
    if mode == "bicubic":  # no clamp of the source coordinate; the taps clamp instead
        lo = np.floor(pos)
        ws = _cubic_weights(pos - lo)
        lo = lo.astype(np.int64)
        y = None
        for k, w in enumerate(ws):
            term = take(lo + k - 1) * weight(w)
            y = term if y is None else y + term
        return y
    pos = np.maximum(pos, 0.0)
    lo = np.minimum(np.floor(pos), n - 1).astype(np.int64)
    lam = weight(pos - lo)
    a, b = take(lo), take(lo + 1)
    return a + (b - a) * lam


# --- attention ------------------------------------------------------------------------------


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value over the last two dims (..., L, E) x
    (..., S, E) x (..., S, Ev). A bool ``attn_mask`` keeps its True positions, a float one
    is added; ``is_causal`` keeps key j <= query i; a query whose keys are all masked gets
    zeros, as PyTorch's. ``enable_gqa``: key and value heads (dim -3) are shared by groups
    of query heads. float32 runs the fused kernels (ops/attention.py: no L x S matrix in
    memory; dropout drawn in the kernels from two seeds of the default generator);
    otherwise composed of ops. Both differentiate twice."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim < 2:
            raise RuntimeError(f"scaled_dot_product_attention: expected {name} to be a tensor "
                               f"of at least 2 dims, got {getattr(t, 'shape', type(t))}")
    _cuda_backend.check_sdp_enabled()  # nn.attention.sdpa_kernel([]) turned all off
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be "
                           "set when is_causal=True")
    E = query.shape[-1]
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk:
            raise RuntimeError(f"scaled_dot_product_attention: number of heads in query "
                               f"({hq}) must be divisible by those of key and value ({hk})")
        key, value = (_repeat_heads(t, hq // hk) for t in (key, value))
    s = 1.0 / math.sqrt(E) if scale is None else scale
    if _attention.supported(query, key, value, attn_mask):
        seeds = randint(0, 2**31 - 1, (2,), device=query.device) if dropout_p > 0 else None
        return _attention.flash_attention(query, key, value, attn_mask, s, is_causal,
                                          dropout_p, seeds)
    # the scale on the (L, E) query, not on the (L, S) scores: fewer elements both ways
    scores = (query * s) @ key.transpose(-2, -1)
    masked = None
    if is_causal:  # key j > query i: -inf, in one pass over the scores
        scores = apply(REGISTRY["tril"], scores, diagonal=0, fill=-math.inf)
    elif attn_mask is not None:
        if attn_mask.dtype is dt.bool_:
            masked = attn_mask.logical_not()
        else:
            scores = scores + attn_mask
    if masked is not None:
        scores = scores.masked_fill(masked, -math.inf)
    if attn_mask is not None:
        # rows with every key masked: zeros instead of softmax's 0/0
        dead = scores.amax(dim=-1, keepdim=True) == -math.inf
        weights = softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
    else:
        weights = softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights @ value


def multi_head_attention_forward(
        query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
        in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
        bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor,
        out_proj_bias: Tensor | None, training: bool = True,
        key_padding_mask: Tensor | None = None, need_weights: bool = True,
        attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
        q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
        v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
        static_v: Tensor | None = None, average_attn_weights: bool = True,
        is_causal: bool = False):
    """nn.MultiheadAttention's computation on (L, N, E) / (S, N, E) inputs, or unbatched
    (L, E) / (S, E): returns (output, weights or None). ``is_causal`` is only a hint:
    ``attn_mask`` must be given and is used."""
    if query.ndim not in (2, 3):
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received "
                             f"{query.ndim}-D query tensor")
    batched = query.ndim == 3
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise AssertionError(f"For {'batched (3-D)' if batched else 'unbatched (2-D)'} "
                             f"`query`, expected `key` and `value` to be {query.ndim}-D but "
                             f"found {key.ndim}-D and {value.ndim}-D tensors respectively")
    if query.shape[-1] != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but "
                             f"got {query.shape[-1]}")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                           "Transformer module method `generate_square_subsequent_mask` to "
                           "create this mask.")
    if not batched:
        query, key, value = (t.unsqueeze(1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    if use_separate_proj_weight:
        separate = (q_proj_weight, k_proj_weight, v_proj_weight)
        if any(w is None for w in separate):
            raise AssertionError("use_separate_proj_weight is True but q_proj_weight, "
                                 "k_proj_weight or v_proj_weight is None")
    else:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is "
                                 "None")
        separate = None
    out, weights = _multi_head_attention(
        query, key, value, (0, 1), num_heads, in_proj_weight, in_proj_bias, separate, bias_k,
        bias_v, add_zero_attn, dropout_p if training else 0.0, out_proj_weight, out_proj_bias,
        key_padding_mask, need_weights, attn_mask, static_k, static_v, average_attn_weights)
    if not batched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights


def _multi_head_attention(query, key, value, dims, H, in_proj_weight, in_proj_bias, separate,
                          bias_k, bias_v, add_zero_attn, p, out_proj_weight, out_proj_bias,
                          key_padding_mask, need_weights, attn_mask, static_k, static_v,
                          average):
    """Multi-head attention on inputs whose (sequence, batch) dims are ``dims`` ((0, 1) or
    (1, 0)): the output in the same layout and the weights (or None). The heads are views of
    the projections (one product when query, key and value are one tensor), and the output
    merges back into the layout without a copy. ``bias_k``/``bias_v`` append one key and
    value per batch after the projection, ``static_k``/``static_v`` ((N * H, S, D)) replace
    the projected ones, ``add_zero_attn`` appends one zero key and value per head; the masks
    get a zero (attending) column for each appended key."""
    sd, bd = dims
    L, N, E = query.shape[sd], query.shape[bd], query.shape[-1]
    if E % H:
        raise AssertionError(f"embed_dim {E} not divisible by num_heads {H}")
    D = E // H

    def heads(y):  # (.., .., E) -> (N, H, n, D)
        return y.reshape(*y.shape[:2], H, D).permute(bd, 2, sd, 3)

    def static(t, name):  # (N * H, S, D) -> (N, H, S, D)
        if t.shape[0] != N * H or t.shape[2] != D:
            raise AssertionError(f"expecting {name} of size ({N * H}, S, {D}), but got "
                                 f"{list(t.shape)}")
        return t.reshape(N, H, t.shape[1], D)

    q, k, v = _mha_project(query, key, value, in_proj_weight, in_proj_bias, separate)
    extra = 0
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise AssertionError("bias cannot be added to static key or value.")
        one = (1, N, E) if sd == 0 else (N, 1, E)
        k, v = cat([k, bias_k.expand(*one)], sd), cat([v, bias_v.expand(*one)], sd)
        extra += 1
    q = heads(q)
    k = heads(k) if static_k is None else static(static_k, "static_k")
    v = heads(v) if static_v is None else static(static_v, "static_v")
    if add_zero_attn:
        z = zeros(N, H, 1, D, dtype=k.dtype, device=k.device)
        k, v = cat([k, z], 2), cat([v, z], 2)
        extra += 1
    S = k.shape[2] - extra
    mask = _mha_mask(attn_mask, key_padding_mask, N, H, L, S, q.dtype, extra)
    if need_weights:
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        if mask is not None:
            scores = scores + mask
        weights = softmax(scores, dim=-1)
        if p > 0:  # PyTorch returns the weights after dropout
            weights = dropout(weights, p)
        out = weights @ v
        weights = weights.mean(dim=1) if average else weights
    else:
        out = scaled_dot_product_attention(q, k, v, mask, p)
        weights = None
    # (N, H, L, D) -> the inputs' layout (.., .., E)
    out = out.permute(*((2, 0) if sd == 0 else (0, 2)), 1, 3).reshape(
        *((L, N) if sd == 0 else (N, L)), E)
    return linear(out, out_proj_weight, out_proj_bias), weights


def _mha_project(query, key, value, in_proj_weight, in_proj_bias, separate):
    """The input projections of query, key and value, in their inputs' layout; one product
    with the packed weight when the three are one tensor (self-attention)."""
    b = in_proj_bias
    E = query.shape[-1]
    if separate is None:
        w = in_proj_weight
        if query is key and key is value:
            return split_views(linear(query, w, b), (E, E, E), -1)
        ws = (w[:E], w[E:2 * E], w[2 * E:])
    else:
        ws = separate
    bs = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
    return tuple(linear(x, w, b) for x, w, b in zip((query, key, value), ws, bs))


def _mha_float_mask(mask: Tensor | None, dtype) -> Tensor | None:
    """A mask as an additive float mask: True (bool) becomes -inf, floats stay."""
    if mask is None or mask.dtype is not dt.bool_:
        return mask
    return full(tuple(mask.shape), 0.0, dtype=dtype, device=mask.device).masked_fill(
        mask, -math.inf)


def _mha_mask(attn_mask, key_padding_mask, N, H, L, S, dtype, extra=0):
    """attn_mask ((L, S) or (N*H, L, S)) and key_padding_mask ((N, S)) merged into one
    additive mask broadcast to (N, H, L, S + extra), the ``extra`` keys unmasked."""
    if (attn_mask is not None and key_padding_mask is not None
            and attn_mask.dtype != key_padding_mask.dtype):
        warnings.warn("Support for mismatched key_padding_mask and attn_mask is deprecated. "
                      "Use same type for both instead.", stacklevel=4)
    mask = _mha_float_mask(attn_mask, dtype)
    if mask is not None:
        if mask.ndim == 3:
            if tuple(mask.shape) != (N * H, L, S):
                raise RuntimeError(f"The shape of the 3D attn_mask is {list(mask.shape)}, but "
                                   f"should be {[N * H, L, S]}.")
            mask = mask.reshape(N, H, L, S)
        elif tuple(mask.shape) != (L, S):
            raise RuntimeError(f"The shape of the 2D attn_mask is {list(mask.shape)}, but "
                               f"should be {[L, S]}.")
    padding = _mha_float_mask(key_padding_mask, dtype)
    if padding is not None:
        if tuple(padding.shape) != (N, S):
            raise RuntimeError(f"expected key_padding_mask of shape {[N, S]}, but got "
                               f"{list(padding.shape)}")
        padding = padding.reshape(N, 1, 1, S)
        mask = padding if mask is None else mask + padding
    if mask is not None and extra:
        mask = pad(mask, (0, extra))
    return mask


def _repeat_heads(t: Tensor, r: int) -> Tensor:
    """(..., H, S, E) -> (..., H * r, S, E), each head repeated r times in place."""
    shape = tuple(t.shape)
    return t.unsqueeze(-3).expand(*shape[:-2], r, *shape[-2:]).reshape(
        *shape[:-3], shape[-3] * r, *shape[-2:])


# --- convolution and pooling (clgraph.ops.conv) -----------------------------------------------


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d convolution (cross-correlation); ``padding`` may be an int, a pair, 'valid' or
    'same'."""
    return _conv.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-d convolution over (N, C, L) or (C, L): the 2-d one over a height of one."""
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise RuntimeError("Expected 2D (unbatched) or 3D (batched) input to conv1d, but got "
                           f"input of size: {list(getattr(input, 'shape', ()))}")
    if not isinstance(weight, Tensor) or weight.ndim != 3:
        raise RuntimeError(f"conv1d: expected a 3-D weight (out_channels, in_channels / "
                           f"groups, kernel), but got size {list(getattr(weight, 'shape', ()))}")

    def one(v, name, pad=False):
        if pad and isinstance(v, str):
            return v
        return (0 if pad else 1, _one(v, name))

    y = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, one(stride, "stride"),
               one(padding, "padding", pad=True), one(dilation, "dilation"), groups)
    return y.squeeze(-2)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The adjoint of conv2d (a "deconvolution"): each input pixel spreads its weight
    window over the output. One GEMM makes the windows, col2im (fold) sums them; weight
    (in_channels, out_channels / groups, kh, kw)."""
    if not isinstance(input, Tensor) or input.ndim not in (3, 4):
        raise RuntimeError("Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, "
                           f"but got input of size: {list(getattr(input, 'shape', ()))}")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (
        (v, v) if isinstance(v, numbers.Integral) else tuple(v)
        for v in (stride, padding, output_padding, dilation))
    if not (oph < sh or oph < dh) or not (opw < sw or opw < dw):
        raise RuntimeError(
            f"output padding must be smaller than either stride or dilation, but got "
            f"output_padding_height: {oph} output_padding_width: {opw} stride_height: {sh} "
            f"stride_width: {sw} dilation_height: {dh} dilation_width: {dw}")
    N, Cin, H, W = x.shape
    if weight.ndim != 4 or weight.shape[0] != Cin or Cin % groups:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {weight.shape[0]} channels, but got "
                           f"{Cin} channels instead")
    _, Cg, kh, kw = weight.shape
    OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    OW = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    # windows: (N, groups, Cout/groups * kh * kw, H*W) = W_g^T @ x_g, one batched GEMM
    xg = x.reshape(N, groups, Cin // groups, H * W)
    wg = weight.reshape(groups, Cin // groups, Cg * kh * kw).transpose(1, 2)
    cols = (wg.unsqueeze(0) @ xg).reshape(N, groups * Cg * kh * kw, H * W)
    if oph < sh and opw < sw:  # the output padding lies within the last stride
        y = _conv.col2im(cols, (OH, OW), (kh, kw), (dh, dw), (ph, pw), (sh, sw))
    else:  # output_padding >= stride (allowed when < dilation): fold the whole padded
        # extent the windows cover, then crop the padding and zero-extend to (OH, OW)
        Hp, Wp = (H - 1) * sh + dh * (kh - 1) + 1, (W - 1) * sw + dw * (kw - 1) + 1
        y = _conv.col2im(cols, (Hp, Wp), (kh, kw), (dh, dw), (0, 0), (sh, sw))
        y = pad(y, [-pw, OW + pw - Wp, -ph, OH + ph - Hp])
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The adjoint of conv1d: conv_transpose2d over a height of one; weight
    (in_channels, out_channels / groups, k)."""
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise RuntimeError("Expected 2D (unbatched) or 3D (batched) input to conv_transpose1d, "
                           f"but got input of size: {list(getattr(input, 'shape', ()))}")
    if not isinstance(weight, Tensor) or weight.ndim != 3:
        raise RuntimeError(f"conv_transpose1d: expected a 3-D weight (in_channels, "
                           f"out_channels / groups, kernel), but got size "
                           f"{list(getattr(weight, 'shape', ()))}")
    s, p, op, d = (_one(v, name) for v, name in ((stride, "stride"), (padding, "padding"),
                                                 (output_padding, "output_padding"),
                                                 (dilation, "dilation")))
    y = conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, s), (0, p),
                         (0, op), groups, (1, d))
    return y.squeeze(-2)


def _one(v, name: str) -> int:
    """A 1-d convolution argument given as an int or a 1-sequence."""
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(v) != 1:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of 1 "
                           f"values to match the convolution dimensions, but got "
                           f"{name}={list(v)}")
    return int(v[0])


def _triple(v, name: str) -> tuple:
    v = tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v),) * 3
    if len(v) != 3:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of 3 "
                           f"values to match the convolution dimensions, but got "
                           f"{name}={list(v)}")
    return v


def _batched5(input: Tensor, name: str) -> tuple[Tensor, bool]:
    if not isinstance(input, Tensor) or input.ndim not in (4, 5):
        raise RuntimeError(f"Expected 4D (unbatched) or 5D (batched) input to {name}, but got "
                           f"input of size: {list(getattr(input, 'shape', ()))}")
    return (input.unsqueeze(0), True) if input.ndim == 4 else (input, False)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """3-d convolution over (N, C, D, H, W): a sum over the kernel's depth of 2-d
    convolutions, each over all output depths at once (the depth folded into the batch)."""
    x, unbatched = _batched5(input, "conv3d")
    if not isinstance(weight, Tensor) or weight.ndim != 5:
        raise RuntimeError(f"conv3d: expected a 5-D weight (out_channels, in_channels / "
                           f"groups, kd, kh, kw), but got size "
                           f"{list(getattr(weight, 'shape', ()))}")
    if x.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, "
                           f"expected input{list(x.shape)} to have "
                           f"{weight.shape[1] * groups} channels, but got {x.shape[1]} "
                           f"channels instead")
    (sd, sh, sw), (dd, dh, dw) = _triple(stride, "stride"), _triple(dilation, "dilation")
    k = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                             "{'same', 'valid'}")
        if padding == "same" and (sd, sh, sw) != (1, 1, 1):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        totals = [d * (n - 1) if padding == "same" else 0 for d, n in zip((dd, dh, dw), k)]
        x = pad(x, [a for t in reversed(totals) for a in (t // 2, t - t // 2)])
        pd = ph = pw = 0
    else:
        pd, ph, pw = _triple(padding, "padding")
        x = pad(x, [0, 0, 0, 0, pd, pd])
    N, C, D = x.shape[:3]
    OD = (D - dd * (k[0] - 1) - 1) // sd + 1
    if OD <= 0:
        raise RuntimeError(f"Calculated padded input size per channel: ({D} x "
                           f"{x.shape[3]} x {x.shape[4]}). Kernel size: ({k[0]} x {k[1]} x "
                           f"{k[2]}). Kernel size can't be greater than actual input size")
    out = None
    for z in range(k[0]):
        planes = x[:, :, z * dd: z * dd + sd * (OD - 1) + 1: sd]  # (N, C, OD, H, W)
        planes = planes.transpose(1, 2).reshape(N * OD, C, *x.shape[3:])
        y = conv2d(planes, weight[:, :, z], None, (sh, sw), (ph, pw), (dh, dw), groups)
        out = y if out is None else out + y
    out = out.reshape(N, OD, *out.shape[1:]).transpose(1, 2)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The adjoint of conv3d: for each kernel depth a conv_transpose2d of every input plane,
    spread to output depths d * stride + kd * dilation and summed; weight
    (in_channels, out_channels / groups, kd, kh, kw)."""
    x, unbatched = _batched5(input, "conv_transpose3d")
    if not isinstance(weight, Tensor) or weight.ndim != 5 or weight.shape[0] != x.shape[1]:
        raise RuntimeError(f"Given transposed=1, weight of size "
                           f"{list(getattr(weight, 'shape', ()))}, expected input"
                           f"{list(x.shape)} to have {x.shape[1]} channels")
    (sd, sh, sw), (pd, ph, pw) = _triple(stride, "stride"), _triple(padding, "padding")
    (od, oh, ow), (dd, dh, dw) = (_triple(output_padding, "output_padding"),
                                  _triple(dilation, "dilation"))
    if not (od < sd or od < dd):
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, "
                           f"but got output_padding_depth: {od} stride_depth: {sd} "
                           f"dilation_depth: {dd}")
    N, C, D = x.shape[:3]
    kd = weight.shape[2]
    full_depth = (D - 1) * sd + dd * (kd - 1) + 1 + od
    planes = x.transpose(1, 2).reshape(N * D, C, *x.shape[3:])
    out = None
    for z in range(kd):
        y = conv_transpose2d(planes, weight[:, :, z], None, (sh, sw), (ph, pw), (oh, ow),
                             groups, (dh, dw))
        y = y.reshape(N, D, *y.shape[1:])  # (N, D, Cout, OH, OW)
        if sd > 1:  # depth d lands at d * sd: interleave sd - 1 zero planes
            y = pad(y.unsqueeze(2), [0, 0, 0, 0, 0, 0, 0, sd - 1]).reshape(
                N, D * sd, *y.shape[2:])[:, :(D - 1) * sd + 1]
        y = pad(y, [0, 0, 0, 0, 0, 0, z * dd, full_depth - z * dd - y.shape[1]])
        out = y if out is None else out + y
    out = out[:, pd: full_depth - pd].transpose(1, 2)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out.squeeze(0) if unbatched else out


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    return _conv.unfold(input, kernel_size, dilation, padding, stride)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    return _conv.fold(input, output_size, kernel_size, dilation, padding, stride)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    return _conv.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode,
                                  return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    return _conv.max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode,
                            return_indices)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    return _conv.avg_pool2d(input, kernel_size, stride, padding, ceil_mode,
                                  count_include_pad, divisor_override)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    return _conv.avg_pool3d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                            divisor_override)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    return _conv.adaptive_avg_pool2d(input, output_size)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    return _conv.adaptive_avg_pool3d(input, output_size)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    return _conv.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode,
                            return_indices)


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    """max_pool1d's (values, indices), whatever return_indices says (as PyTorch's)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    return _conv.avg_pool1d(input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    return _pool.adaptive_max_pool(2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    return _pool.adaptive_max_pool(3, input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = False):
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = False):
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices: bool = False):
    return adaptive_max_pool3d(input, output_size, True)


def _output_size_1d(output_size, name: str) -> int:
    size = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,)
    if len(size) != 1:
        raise RuntimeError(f"{name}() argument 'output_size' should contain one int (got "
                           f"{len(size)})")
    return int(size[0])


def _check_3d(input, name: str) -> None:
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise RuntimeError(f"{name}(): Expected 2D or 3D tensor, but got "
                           f"{list(getattr(input, 'shape', ()))}")


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Adaptive average pooling over (N, C, L) or (C, L): the 2-d one over a height of one."""
    _check_3d(input, "adaptive_avg_pool1d")
    size = _output_size_1d(output_size, "adaptive_avg_pool1d")
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size)).squeeze(-2)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Adaptive max pooling over (N, C, L) or (C, L): the 2-d one over a height of one."""
    _check_3d(input, "adaptive_max_pool1d")
    size = _output_size_1d(output_size, "adaptive_max_pool1d")
    r = adaptive_max_pool2d(input.unsqueeze(-2), (1, size), return_indices)
    if return_indices:
        return r[0].squeeze(-2), r[1].squeeze(-2)
    return r.squeeze(-2)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """(sum of x^p over each window)^(1/p), as PyTorch: an average pool of x^p times the
    window size."""
    k = _one(kernel_size, "kernel_size")
    out = avg_pool1d(_f.pow(input, norm_type), k, stride if stride is not None else k, 0,
                     ceil_mode)
    return _f.pow(_f.sign(out) * _f.relu(_f.abs(out)) * k, 1.0 / norm_type)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """(sum of x^p over each window)^(1/p) over (N, C, H, W)."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, numbers.Integral) else \
        tuple(kernel_size)
    out = avg_pool2d(_f.pow(input, norm_type), (kh, kw),
                     stride if stride is not None else (kh, kw), 0, ceil_mode)
    return _f.pow(_f.sign(out) * _f.relu(_f.abs(out)) * (kh * kw), 1.0 / norm_type)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """(sum of x^p over each window)^(1/p) over (N, C, D, H, W)."""
    kd, kh, kw = (kernel_size,) * 3 if isinstance(kernel_size, numbers.Integral) else \
        tuple(kernel_size)
    out = avg_pool3d(_f.pow(input, norm_type), kernel_size, stride, 0, ceil_mode)
    return _f.pow(_f.sign(out) * _f.relu(_f.abs(out)) * (kd * kh * kw), 1.0 / norm_type)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    return _pool.max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    return _pool.max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    return _pool.max_unpool(3, input, indices, kernel_size, stride, padding, output_size)


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    return _pool.fractional_max_pool(2, input, kernel_size, output_size, output_ratio,
                                     return_indices, _random_samples)


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    return _pool.fractional_max_pool(3, input, kernel_size, output_size, output_ratio,
                                     return_indices, _random_samples)


def fractional_max_pool2d_with_indices(input: Tensor, kernel_size, output_size=None,
                                       output_ratio=None, return_indices: bool = False,
                                       _random_samples=None):
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


def fractional_max_pool3d_with_indices(input: Tensor, kernel_size, output_size=None,
                                       output_ratio=None, return_indices: bool = False,
                                       _random_samples=None):
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, C, *) with C = g * k: channel i * k + j moves to j * g + i."""
    if input.ndim < 3:
        raise RuntimeError(f"channel_shuffle expects input to have at least 3 dimensions, but "
                           f"got input with {input.ndim} dimension(s)")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value "
                           f"of groups:{groups}")
    n, c, *rest = input.shape
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels "
                           f"and {groups} groups.")
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(
        n, c, *rest)


native_channel_shuffle = channel_shuffle


# --- bilinear, bags, sampling grids ----------------------------------------------------------


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None):
    """y_o = x1^T W_o x2 + b_o over the last dims, any leading dims."""
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-D (out, in1, in2), got size "
                           f"{list(weight.shape)}")
    out_f, n1, n2 = weight.shape
    if input1.shape[-1] != n1:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got "
                           f"{input1.shape[-1]} but expected {n1}")
    if input2.shape[-1] != n2:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got "
                           f"{input2.shape[-1]} but expected {n2}")
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise RuntimeError(f"bilinear(): input batch dimensions do not match: got "
                           f"{list(input1.shape[:-1])} and {list(input2.shape[:-1])}")
    lead = tuple(input1.shape[:-1])
    x1, x2 = input1.reshape(-1, n1), input2.reshape(-1, n2)
    t = matmul(x1, weight.permute(1, 0, 2).reshape(n1, out_f * n2)).reshape(-1, out_f, n2)
    y = t * x2.unsqueeze(1)
    y = y.sum(-1, dtype=y.dtype)  # integer inputs keep their type, as PyTorch
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, out_f)


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm: float | None = None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Sums, means or maxima of bags of embedding rows: the rows of a 2-D input, or the
    runs of a 1-D input that ``offsets`` starts. Indices equal to ``padding_idx`` are left
    out (and not counted by 'mean'); an empty bag gives zeros. The bags are gathered into
    one (bags, longest bag, dim) tensor and reduced."""
    if per_sample_weights is not None and input.shape != per_sample_weights.shape:
        raise ValueError(f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) "
                         f"is not None, then it must have the same shape as the input "
                         f"({input.shape})")
    if weight.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension "
                         f"{weight.ndim}")
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    if mode == "max" and (scale_grad_by_freq or sparse):
        raise ValueError("max mode does not support scaling the gradient by the frequency "
                         "or sparse weights")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding_bag: scale_grad_by_freq and sparse are not "
                                  "supported")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
            f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
            "on GitHub.")
    index, valid, psw = _bags(input, offsets, per_sample_weights, include_last_offset)
    if padding_idx is not None:
        rows = weight.shape[0]
        if not -rows <= padding_idx < rows:
            raise AssertionError(f"padding_idx must be within the number of embeddings, got "
                                 f"{padding_idx} for {rows}")
        padding_idx %= rows
        keep = index != padding_idx
        valid = keep if valid is None else valid & keep
    if max_norm is not None:
        _embedding_renorm_(weight, index.reshape(-1), max_norm, norm_type)
    B, L = index.shape
    rows = index_select(weight, 0, index.reshape(-1)).reshape(B, L, weight.shape[1])
    if psw is not None:
        rows = rows * psw.unsqueeze(-1).to(rows.dtype)
    if mode == "max":
        if valid is not None:
            rows = M.where(valid.unsqueeze(-1), rows, -math.inf)
        if L == 0:
            return full((B, weight.shape[1]), 0.0, dtype=weight.dtype, device=weight.device)
        best = rows.max(1)[0]
        if valid is None:
            return best
        return M.where(valid.any(1, keepdim=True), best, 0.0)
    if valid is not None:
        rows = M.where(valid.unsqueeze(-1), rows, 0.0)
    total = rows.sum(1)
    if mode == "sum":
        return total
    count = float(L) if valid is None else M.clamp_min(valid.sum(1, keepdim=True), 1).to(
        total.dtype)
    return total / count if L else total


def _bags(input: Tensor, offsets: Tensor | None, per_sample_weights: Tensor | None,
          include_last_offset: bool):
    """embedding_bag's bags as a (bags, longest bag) index, its mask of real entries (None:
    all real) and the per-sample weights laid out alike."""
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is "
                             "treated is a mini-batch of fixed length sequences. However, "
                             f"found offsets of type {type(offsets)}")
        return input.to(dt.int64), None, per_sample_weights
    if input.ndim != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.ndim}")
    if offsets is None:
        raise ValueError("offsets has to be a 1D Tensor but got None")
    if offsets.ndim != 1:
        raise ValueError("offsets has to be a 1D Tensor")
    starts = [int(v) for v in offsets.tolist()]
    n = input.shape[0]
    if starts and starts[0] != 0:
        raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the "
                           f"mini-batch has to start from position 0. However, got "
                           f"{starts[0]}")
    if include_last_offset:  # as PyTorch's CPU kernel, the last bag runs to the end
        starts = starts[:-1]
    ends = starts[1:] + [n] if starts else []
    if any(b < a or b > n for a, b in zip(starts, ends)):
        raise RuntimeError(f"offsets must be non-decreasing and at most the input length "
                           f"{n}, got {offsets.tolist()}")
    longest = max([b - a for a, b in zip(starts, ends)], default=0)
    pos = np.array([[a + j if a + j < b else 0 for j in range(longest)]
                    for a, b in zip(starts, ends)], dtype=np.int64).reshape(len(ends),
                                                                             longest)
    valid = tensor(np.array([[a + j < b for j in range(longest)] for a, b in
                             zip(starts, ends)], dtype=bool).reshape(pos.shape),
                   device=input.device)
    pos_t = tensor(pos, device=input.device)
    index = index_select(input.to(dt.int64), 0, pos_t.reshape(-1)).reshape(pos.shape)
    psw = (None if per_sample_weights is None else
           index_select(per_sample_weights, 0, pos_t.reshape(-1)).reshape(pos.shape))
    return index, valid, psw


def _grid_align_corners(align_corners: bool | None) -> bool:
    """affine_grid's and grid_sample's align_corners: None warns as PyTorch does and means
    False."""
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to "
                      "align_corners=False since 1.3.0. Please specify align_corners=True if "
                      "the old behavior is desired. See the documentation of grid_sample for "
                      "details.", stacklevel=3)
        return False
    return align_corners


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """The sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the affine maps ``theta``
    (N, 2, 3) (or (N, 3, 4)) over normalized output coordinates in [-1, 1]."""
    align_corners = _grid_align_corners(align_corners)
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = [int(s) for s in size]
    if len(size) in (4, 5):
        k = len(size) - 2
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (k, k + 1):
            raise ValueError(f"Expected a batch of {k}D affine matrices of shape Nx{k}x{k + 1} "
                             f"for size {size}. Got {theta.shape}.")
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D "
                                  f"affine transforms, respectively. Got size {size}.")
    spatial = size[2:]
    if min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")

    def axis(n):
        if n == 1:
            return np.zeros(1)
        steps = np.linspace(-1.0, 1.0, n)
        return steps if align_corners else steps * (n - 1) / n

    # base[..., :] = (x, y[, z], 1): the last spatial dim varies first
    coords = np.meshgrid(*[axis(n) for n in spatial], indexing="ij")[::-1]
    base = np.stack([*coords, np.ones(spatial)], axis=-1).reshape(1, -1, len(spatial) + 1)
    base_t = tensor(base, dtype=theta.dtype, device=theta.device)
    grid = matmul(base_t, theta.transpose(1, 2))
    return grid.reshape(size[0], *spatial, len(spatial))


def _grid_unnormalize(coord: Tensor, n: int, align_corners: bool) -> Tensor:
    """A normalized grid coordinate in [-1, 1] -> pixel position along a dim of size n."""
    if align_corners:
        return (coord + 1) * ((n - 1) / 2)
    return ((coord + 1) * n - 1) / 2


def _grid_pad(x: Tensor, n: int, padding_mode: str, align_corners: bool) -> Tensor:
    """The border/reflection modes' clipping of a pixel position (PyTorch's
    compute_coordinates); zeros padding leaves it."""
    if padding_mode == "border":
        return M.clamp(x, 0, n - 1)
    if padding_mode == "reflection":
        lo, span = (0.0, n - 1.0) if align_corners else (-0.5, float(n))
        if span <= 0:
            return x * 0.0
        d = _f.abs(x - lo)
        flips = _f.floor(d / span).detach()
        extra = d - flips * span
        odd = (flips - 2 * _f.floor(flips / 2)) > 0.5
        x = M.where(odd, span - extra, extra) + lo
        return M.clamp(x, 0, n - 1)
    return x


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear",
                padding_mode: str = "zeros", align_corners: bool | None = None) -> Tensor:
    """Samples (N, C, H, W) input at the normalized (x, y) positions of grid (N, Ho, Wo, 2),
    or (N, C, D, H, W) input at the (x, y, z) of grid (N, Do, Ho, Wo, 3): bilinear
    (trilinear for 5-D), nearest, or bicubic (4-D; cubic convolution with A = -0.75, each
    tap padded as PyTorch's); padding zeros/border/reflection. Built from gathers of the
    neighbours, so gradients reach input and grid."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', "
                         f"'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
                         f"'border', or 'reflection', but got: '{padding_mode}'")
    align_corners = _grid_align_corners(align_corners)
    shapes = f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
    if grid.ndim < 1 or grid.shape[-1] != input.ndim - 2:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {input.ndim - 2} in "
                           f"last dimension, but got grid with sizes {list(grid.shape)}")
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sampler(): expected {4 if input.ndim == 4 else 5}D input and "
                           f"grid with same number of dimensions, but got {shapes}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, "
                           f"but got {shapes}")
    if mode == "bicubic" and input.ndim == 5:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    N, C, *sizes = input.shape
    out_sizes = tuple(grid.shape[1:-1])
    P = math.prod(out_sizes)
    flat = input.reshape(N, C, math.prod(sizes))
    # grid's last dim lists x, y(, z): the spatial dims last to first
    pos = [_grid_unnormalize(grid[..., len(sizes) - 1 - k], n, align_corners).reshape(N, 1, P)
           for k, n in enumerate(sizes)]

    def tap(idx):
        """input at integer positions ``idx`` (float tensors, one per spatial dim), 0
        outside."""
        inside, flat_index = None, 0
        for i, n in zip(idx, sizes):
            ok = (i >= 0) & (i <= n - 1)
            inside = ok if inside is None else inside & ok
            flat_index = flat_index * n + M.clamp(i, 0, n - 1)
        v = gather(flat, 2, flat_index.detach().to(dt.int64).expand(N, C, P))
        return M.where(inside, v, 0.0)

    if mode == "bicubic":  # the taps around the unpadded position are padded one by one
        base = [_f.floor(p).detach() for p in pos]
        wy, wx = (_cubic_weights(p - b) for p, b in zip(pos, base))
        ys, xs = ([_grid_pad(b + (k - 1), n, padding_mode, align_corners).detach()
                   for k in range(4)] for b, n in zip(base, sizes))
        out = 0
        for iy, w in zip(ys, wy):
            row = 0
            for ix, v in zip(xs, wx):
                row = row + tap([iy, ix]) * v
            out = out + row * w
        return out.reshape(N, C, *out_sizes)
    pos = [_grid_pad(p, n, padding_mode, align_corners) for p, n in zip(pos, sizes)]
    if mode == "nearest":
        return tap([_f.round(p).detach() for p in pos]).reshape(N, C, *out_sizes)
    lo = [_f.floor(p).detach() for p in pos]
    frac = [p - b for p, b in zip(pos, lo)]
    out = 0
    for corner in range(2 ** len(sizes)):  # bit k set: the upper neighbour along dim k
        bits = [(corner >> k) & 1 for k in range(len(sizes))]
        weight = None
        for w, bit in zip(frac, bits):
            w = w if bit else 1 - w
            weight = w if weight is None else weight * w
        out = out + tap([b + bit for b, bit in zip(lo, bits)]) * weight
    return out.reshape(N, C, *out_sizes)


def _shuffle_factor(input: Tensor, factor: int, name: str, what: str) -> int:
    """pixel_shuffle's and pixel_unshuffle's checks of the input's rank and the factor."""
    if input.ndim < 3:
        raise RuntimeError(f"{name} expects input to have at least 3 dimensions, but got "
                           f"input with {input.ndim} dimension(s)")
    r = int(factor)
    if r <= 0:
        raise RuntimeError(f"{name} expects a positive {what}, but got {r}")
    return r


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), pixel_shuffle's inverse."""
    r = _shuffle_factor(input, downscale_factor, "pixel_unshuffle", "downscale_factor")
    *batch, c, h, w = input.shape
    if h % r or w % r:
        bad, n = ("height", h) if h % r else ("width", w)
        raise RuntimeError(f"pixel_unshuffle expects {bad} to be divisible by "
                           f"downscale_factor, but input.size({-2 if bad == 'height' else -1})"
                           f"={n} is not divisible by {r}")
    nb = len(batch)
    x = input.reshape(*batch, c, h // r, r, w // r, r)
    x = x.permute(*range(nb), nb, nb + 2, nb + 4, nb + 1, nb + 3)
    return x.reshape(*batch, c * r * r, h // r, w // r)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""
    r = _shuffle_factor(input, upscale_factor, "pixel_shuffle", "upscale_factor")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)="
                           f"{c} is not divisible by {r * r}")
    nb = len(batch)
    x = input.reshape(*batch, c // (r * r), r, r, h, w)
    x = x.permute(*range(nb), nb, nb + 3, nb + 1, nb + 4, nb + 2)
    return x.reshape(*batch, c // (r * r), h * r, w * r)
