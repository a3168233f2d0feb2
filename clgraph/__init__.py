"""clgraph: PyTorch's API on OpenCL, with a graph compiler underneath.

``import clgraph as cg`` (or ``as torch``). Public names only; nothing here touches a
device at import time."""

from __future__ import annotations

import importlib

from . import autograd, cl, cuda
from ._format import get_printoptions, printoptions, set_printoptions
from . import dtypes as _dt
from ._methods import bind as _bind
from .codegen import KernelBuildError
from .creation import (arange, as_tensor, bartlett_window, blackman_window, empty, empty_like,
                       empty_strided, eye, from_numpy, full, full_like, hamming_window,
                       hann_window, initial_seed, kaiser_window, linspace, logspace,
                       manual_seed, normal, ones, ones_like, rand, rand_like, randint,
                       randint_like, randn, randn_like, randperm, seed, tensor, tril_indices,
                       triu_indices, zeros, zeros_like)
from .device import default_device as get_default_device, device, set_default_device
from .dtypes import finfo, get_default_dtype, iinfo, promote_types, set_default_dtype
from .ops import conv as _conv, index as _index, join as _join, linalg as _linalg  # noqa: F401
from .ops import math as _math, movement as _movement, reduce as _reduce  # noqa: F401
from .ops import einsum as _einsum, sampling as _sampling, sort as _sort  # noqa: F401
from .ops import decomp as _decomp  # noqa: F401
from .ops import complex as _complex  # noqa: F401
from .ops.elementwise import can_cast as _cc
from .shapes import broadcast_shapes
from .ops.reduce import return_types
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .autograd import is_inference_mode_enabled  # noqa: F401
from . import amp
from .amp import autocast, get_autocast_dtype, is_autocast_enabled
from . import fft, linalg, optim, signal, special, utils
from .serialization import load, save
from .runtime import OutOfMemoryError, profile
from .tensor import Size, Tensor
from . import accelerator, backends
from ._legacy import (BFloat16Tensor, BoolTensor, ByteTensor, CharTensor, DoubleTensor,
                      FloatTensor, HalfTensor, IntTensor, LongTensor, ShortTensor)
from ._memory_format import (channels_last, channels_last_3d, contiguous_format, jagged, layout,
                             memory_format, preserve_format, sparse_bsc, sparse_bsr, sparse_coo,
                             sparse_csc, sparse_csr, strided)
from ._threads import get_num_threads, set_num_threads
from .generator import Generator, default_generator, get_rng_state, set_rng_state

float32 = float = _dt.float32
float64 = double = _dt.float64
float16 = half = _dt.float16
bfloat16 = _dt.bfloat16
complex64 = cfloat = _dt.complex64
complex128 = cdouble = _dt.complex128
int64 = long = _dt.int64
int32 = int = _dt.int32
int16 = short = _dt.int16
int8 = _dt.int8
uint8 = _dt.uint8
bool = _dt.bool_
dtype = _dt.dtype

# --- PyTorch's further top-level names: creation, *_copy views, control flow, flags -------
from ._control_flow import cond, while_loop  # noqa: E402
from ._settings import (  # noqa: E402
    are_deterministic_algorithms_enabled,
    get_deterministic_debug_mode,
    is_deterministic_algorithms_warn_only_enabled,
    is_storage,
    is_warn_always_enabled,
    set_default_tensor_type,
    set_deterministic_debug_mode,
    set_flush_denormal,
    set_warn_always,
    typename,
    use_deterministic_algorithms,
)
from ._threads import get_num_interop_threads, set_num_interop_threads  # noqa: E402
from .autograd import (  # noqa: E402
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    set_anomaly_enabled,
)
from .creation import asarray, empty_permuted, frombuffer, range, scalar_tensor  # noqa: E402,A004
from .ops import copies as _copies  # noqa: E402,F401


def fill(input, value) -> Tensor:
    """torch.fill: a new tensor of ``input``'s shape and dtype filled with ``value`` (a
    number or a 0-d tensor, which gets the gradient; ``input`` gets zeros)."""
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor "
                               f"with {value.ndim} dimensions.")
        value = value.to(input.dtype)
    else:
        value = full((), value, dtype=input.dtype, device=input.device)
    return where(ones_like(input, dtype=bool), value, input)


def detach_(input) -> Tensor:
    return input.detach_()


def get_device(input) -> "int":
    return input.get_device()


def is_inference(input) -> "bool":
    return input.is_inference()


def _in_place(out, result) -> Tensor:
    return out.copy_(result) if result is not out else out


def dropout_(input, p, train) -> Tensor:
    return nn.functional.dropout(input, p, train, inplace=True)


def alpha_dropout_(input, p, train) -> Tensor:
    return _in_place(input, nn.functional.alpha_dropout(input, p, train))


def feature_alpha_dropout_(input, p, train) -> Tensor:
    return _in_place(input, nn.functional.feature_alpha_dropout(input, p, train))


def feature_dropout(input, p, train) -> Tensor:
    """torch.feature_dropout: whole channels (dim 1) zeroed with probability ``p``, the
    others scaled by 1 / (1 - p)."""
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if not train or p == 0:
        return input.clone() if train else input
    if p == 1:
        return input * 0.0
    mask_shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    keep = empty(mask_shape, dtype=input.dtype, device=input.device).bernoulli_(1 - p)
    return input * keep / (1 - p)


def feature_dropout_(input, p, train) -> Tensor:
    return _in_place(input, feature_dropout(input, p, train))


_bind(globals())  # every op's declared forms: functions here, Tensor methods

# PyTorch's out= on the functions whose op does not write into a given tensor itself
from ._out import with_out as _with_out  # noqa: E402

for _name in ("addbmm", "addmm", "addmv", "addr", "all", "amax", "amin", "aminmax", "any",
              "arange", "argmax", "argmin", "baddbmm", "bartlett_window", "bernoulli",
              "blackman_window", "bmm", "conj_physical", "cross", "cummax", "cummin", "cumprod",
              "cumsum", "diag", "diff", "dot", "empty", "empty_permuted", "eye", "full", "ger",
              "hamming_window", "hann_window", "histc", "histogram", "histogramdd", "index_add",
              "index_copy", "index_reduce", "inner", "kaiser_window", "kron", "kthvalue",
              "linspace", "logcumsumexp", "logspace", "logsumexp", "max", "mean", "median", "min",
              "mm", "mode", "msort", "multinomial", "mv", "mvlgamma", "nanmean", "nanmedian",
              "nanquantile", "nansum", "narrow_copy", "norm", "ones", "outer", "prod",
              "quantile", "rand", "randint", "randn", "randperm", "range", "renorm", "sort",
              "std", "std_mean", "sum", "take", "topk", "tril_indices", "triu_indices", "var",
              "var_mean", "vdot", "zeros"):
    if _name in globals():
        globals()[_name] = _with_out(globals()[_name])
del _name

from . import nn  # noqa: E402  (torch.nn: Module, layers, functional, init)
from .compile import compile  # noqa: E402,A004
from .graph import to_dot  # noqa: E402
from . import distributed  # noqa: E402  (mpi4py is imported by init_process_group only)
from . import onnx  # noqa: E402  (the onnx package is imported by onnx.export only)
from .nn import parallel as _parallel  # noqa: E402,F401  (cg.nn.parallel)
# torch.func, torch.random, torch.testing and torch.nn.attention, as after `import torch`
from . import func, random, testing  # noqa: E402
from .func import vmap  # noqa: E402
from .nn import attention as _nn_attention  # noqa: E402,F401  (cg.nn.attention)
# torch.jit, torch.profiler, torch.autograd.profiler and torch.utils.hooks, as after
# `import torch`; torch.fork / torch.wait are torch.jit's
from . import jit, profiler  # noqa: E402
from .autograd import profiler as _autograd_profiler  # noqa: E402,F401
from .jit import fork, wait  # noqa: E402
from .utils import hooks as _utils_hooks  # noqa: E402,F401

# torch.<name> spellings of nn.functional functions (PyTorch exposes these at the top level)
for _name in ("cosine_similarity", "pairwise_distance", "pixel_shuffle", "pixel_unshuffle",
              "pdist", "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
              "triplet_margin_loss", "kl_div", "poisson_nll_loss",
              "binary_cross_entropy_with_logits", "layer_norm", "group_norm", "instance_norm",
              "batch_norm", "embedding", "dropout", "alpha_dropout", "feature_alpha_dropout",
              "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "avg_pool1d", "max_pool1d", "max_pool2d", "max_pool3d",
              "max_pool1d_with_indices",
              "adaptive_avg_pool1d", "adaptive_max_pool1d", "bilinear", "channel_shuffle",
              "rms_norm"):
    if _name not in globals() and hasattr(nn.functional, _name):
        globals()[_name] = getattr(nn.functional, _name)
del _name

# torch.<name> forms with ATen's signatures (mode or reduction as ints, several results)
from .nn._aten import (  # noqa: E402
    ctc_loss,
    embedding_bag,
    gru_cell,
    lstm_cell,
    rnn_relu_cell,
    rnn_tanh_cell,
)

native_channel_shuffle = nn.functional.native_channel_shuffle


def constant_pad_nd(input, pad, value=0) -> Tensor:
    """torch.constant_pad_nd: nn.functional.pad in constant mode."""
    return nn.functional.pad(input, pad, value=value)


def detach(input) -> Tensor:
    return input.detach()


def is_nonzero(input) -> "bool":
    return input.is_nonzero()


def is_same_size(input, other) -> "bool":
    return input.is_same_size(other)


def is_signed(input) -> "bool":
    return input.is_signed()


def is_tensor(obj) -> "bool":
    return isinstance(obj, Tensor)


def numel(input) -> "int":
    return input.numel()


def is_floating_point(input) -> "bool":
    return input.is_floating_point()


def is_complex(input) -> "bool":
    if not isinstance(input, Tensor):
        raise TypeError(f"is_complex(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    return input.dtype.is_complex


def can_cast(from_, to) -> "bool":

    return _cc(from_, to)


def result_type(tensor, other) -> _dt.dtype:  # noqa: F811 (PyTorch's argument names)
    def tiers(x):
        if isinstance(x, Tensor):
            return ([x.dtype], [], []) if x.ndim else ([], [x.dtype], [])
        return [], [], [x]

    a, b = tiers(tensor), tiers(other)
    return _dt.result_type(a[0] + b[0], a[1] + b[1], a[2] + b[2])


__version__ = "0.1.0"


def __getattr__(name):
    """cg.distributions is imported on first use (it adds 16 ms to every import)."""
    if name == "distributions":
        return importlib.import_module(".distributions", __name__)
    raise AttributeError(f"module 'clgraph' has no attribute '{name}'")
