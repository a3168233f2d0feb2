"""Tensor creation: from host data, constant fills, ranges and device-side random numbers
(Philox, kernels/random.cl) with a global seed (manual_seed)."""

from __future__ import annotations

import math
import numbers
import warnings
from builtins import range as builtins_range

import numpy as np

from . import codegen, runtime
from . import dtypes as dt
from ._memory_format import channels_last_order
from ._memory_format import check_strided as _strided
from .device import as_device
from .generator import initial_seed, manual_seed, resolve, seed  # noqa: F401  (cg.<name>)
from .ops.math import copy_, fill_
from .ops.movement import _sizes, as_strided
from .shapes import broadcast_shapes
from .tensor import Tensor


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    t._storage.version = 0  # a new tensor's fill is not an in-place write of it
    if requires_grad:
        t.requires_grad_(True)
    return t


def _host_dtype(arr: np.ndarray, from_python: bool) -> dt.dtype:
    if from_python:
        if arr.dtype.kind == "f":
            return dt.get_default_dtype()
        if arr.dtype.kind in "iu":
            return dt.int64
        if arr.dtype.kind == "b":
            return dt.bool_
        if arr.dtype.kind == "c":
            return dt.to_complex(dt.get_default_dtype())
    return dt.from_numpy_dtype(arr.dtype)


def _flatten_data(data):
    """Python data to numpy, unpacking 0-d tensors inside lists."""
    if isinstance(data, (list, tuple)):
        if any(isinstance(x, Tensor) for x in data):
            return np.array([_flatten_data(x) for x in data])
        return data
    if isinstance(data, Tensor):
        return data.detach()._host()
    return data


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """torch.tensor: always copies ``data`` (nested lists, numbers, numpy arrays, tensors)."""
    from_python = not isinstance(data, (np.ndarray, np.generic, Tensor))
    if isinstance(data, Tensor):
        src = data.detach()
        return _finish(src.to(device=as_device(device) if device else src.device,
                              dtype=dt.as_dtype(dtype) if dtype else src.dtype, copy=True),
                       requires_grad)
    data = _flatten_data(data)
    try:
        arr = np.asarray(data)
    except ValueError as e:
        raise ValueError(f"could not convert data to a tensor: {e}") from None
    if arr.dtype == object:
        raise TypeError(f"could not infer dtype of {type(data).__name__}: ragged or non-numeric "
                        "data")
    d = dt.as_dtype(dtype) if dtype is not None else _host_dtype(arr, from_python)
    return _finish(_from_host(arr, d, as_device(device)), requires_grad)


def _from_host(arr: np.ndarray, d: dt.dtype, device, storage: bool = False) -> Tensor:
    """A tensor of dtype d holding host values ``arr`` (``storage``: arr is already d's
    storage, such as bfloat16 bits)."""
    codegen.check_dtype(device.info, d)
    given = arr
    if not storage and (arr.dtype != d.np or d is dt.bfloat16):
        with np.errstate(invalid="ignore", over="ignore"):
            arr = dt.to_storage(arr, d)
    t = Tensor._empty(arr.shape, d, device)
    arr = np.ascontiguousarray(arr)
    # an array made here (converted or made contiguous) needs no private copy to upload
    runtime.write(t._storage, arr, owned=not np.may_share_memory(arr, given))
    return t


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """torch.from_numpy, except that it copies: device memory cannot alias host arrays."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return _from_host(ndarray, dt.from_numpy_dtype(ndarray.dtype), as_device(None))


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor):
        return data.to(device=as_device(device) if device else data.device,
                       dtype=dt.as_dtype(dtype) if dtype else data.dtype)
    return tensor(data, dtype=dtype, device=device)


def _sizes_or(name, sizes, size):
    """The shape given unpacked, as one sequence, or by the keyword ``size`` (PyTorch)."""
    if size is None:
        return sizes
    if sizes:
        raise TypeError(f"{name}() got multiple values for argument 'size'")
    return (size,)


def empty(*sizes, size=None, dtype=None, device=None, requires_grad=False, layout=None,
          pin_memory=False, memory_format=None) -> Tensor:
    _strided("empty", layout)
    shape = _sizes(_sizes_or("empty", sizes, size))
    if any(s < 0 for s in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(shape)}: "
                           f"{list(shape)}")
    d = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    dev = as_device(device)
    codegen.check_dtype(dev.info, d)
    return _finish(Tensor._empty(shape, d, dev), requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False, layout=None) -> Tensor:
    _strided("full", layout)
    if dtype is None:
        dtype = dt.default_for_kind(dt.scalar_kind(fill_value))
    t = empty(*_sizes((size,) if isinstance(size, numbers.Integral) else size), dtype=dtype,
              device=device)
    fill_(t, fill_value)
    return _finish(t, requires_grad)


def zeros(*sizes, size=None, dtype=None, device=None, requires_grad=False,
          layout=None) -> Tensor:
    _strided("zeros", layout)
    t = empty(*_sizes_or("zeros", sizes, size), dtype=dtype, device=device)
    fill_(t, 0)
    return _finish(t, requires_grad)


def ones(*sizes, size=None, dtype=None, device=None, requires_grad=False,
         layout=None) -> Tensor:
    _strided("ones", layout)
    t = empty(*_sizes_or("ones", sizes, size), dtype=dtype, device=device)
    fill_(t, 1)
    return _finish(t, requires_grad)


def _like(fn, x, dtype, device, requires_grad, *args):
    return fn(*args, dtype=dtype or x.dtype, device=device or x.device,
              requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None,
               layout=None):
    """torch.empty_like: contiguous, or channels_last when asked (clgraph._memory_format)."""
    _strided("empty_like", layout)
    order = channels_last_order(memory_format, input.ndim)
    if order is None:
        return empty(*input.shape, dtype=dtype or input.dtype, device=device or input.device,
                     requires_grad=requires_grad)
    t = empty(*[input.shape[d] for d in order], dtype=dtype or input.dtype,
              device=device or input.device)
    return _finish(t.permute(*np.argsort(order)), requires_grad)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, layout=None,
               memory_format=None):
    _strided("zeros_like", layout)
    return zeros(*input.shape, dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False, layout=None,
              memory_format=None):
    _strided("ones_like", layout)
    return ones(*input.shape, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, layout=None,
              memory_format=None):
    _strided("full_like", layout)
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def rand_like(input, *, generator=None, dtype=None, device=None, requires_grad=False,
              layout=None, memory_format=None):
    _strided("rand_like", layout)
    return rand(*input.shape, generator=generator, dtype=dtype or input.dtype,
                device=device or input.device,
                requires_grad=requires_grad)


def randn_like(input, *, generator=None, dtype=None, device=None, requires_grad=False,
               layout=None, memory_format=None):
    _strided("randn_like", layout)
    return randn(*input.shape, generator=generator, dtype=dtype or input.dtype,
                 device=device or input.device,
                 requires_grad=requires_grad)


def empty_strided(size, stride, *, dtype=None, device=None, requires_grad=False, layout=None,
                  pin_memory=False) -> Tensor:
    """torch.empty_strided: uninitialized storage just large enough for the view (size,
    stride)."""
    _strided("empty_strided", layout)
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"dimensionality of sizes ({len(size)}) must match dimensionality "
                           f"of strides ({len(stride)})")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, "
                           f"got strides: {list(stride)}")
    n = 0 if 0 in size else 1 + sum((s - 1) * st for s, st in zip(size, stride))
    base = empty(n, dtype=dtype, device=device)
    return _finish(as_strided(base, size, stride, 0), requires_grad)


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, device=None,
                 requires_grad=False, layout=None, memory_format=None):
    """torch.randint_like: randint(low, high) of input's shape, dtype and device
    (``randint_like(x, high)`` draws from [0, high))."""
    _strided("randint_like", layout)
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), generator=generator,
                   dtype=dtype or input.dtype, device=device or input.device)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False,
           layout=None) -> Tensor:
    _strided("arange", layout)
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(
            f"upper bound and larger bound inconsistent with step sign (start={start}, "
            f"end={end}, step={step})"
        )
    if dtype is None:
        is_float = any(isinstance(v, float) for v in vals)
        dtype = dt.get_default_dtype() if is_float else dt.int64
    d = dt.as_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    # computed in float64 on the host like PyTorch's start + i * step, then cast
    arr = start + np.arange(n, dtype=np.float64 if d.is_floating_point else np.int64) * step
    return _finish(_from_host(arr, d, as_device(device)), requires_grad)


def range(start, end, step=1, *, dtype=None, device=None, requires_grad=False,
          layout=None) -> Tensor:
    """torch.range (deprecated): start, start + step, ... up to ``end`` included, in the
    default float dtype unless ``dtype`` says."""
    _strided("range", layout)
    warnings.warn("torch.range is deprecated and will be removed in a future release because "
                  "its behavior is inconsistent with Python's range builtin. Instead, use "
                  "torch.arange, which produces values in [start, end).", UserWarning,
                  stacklevel=2)
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    d = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    if not d.is_floating_point:
        start, end, step = int(start), int(end), int(step)
        if step == 0:
            raise RuntimeError("step must be nonzero")
    n = int(math.floor((end - start) / step)) + 1
    arr = start + np.arange(n, dtype=np.float64 if d.is_floating_point else np.int64) * step
    return _finish(_from_host(arr, d, as_device(device)), requires_grad)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad=False, layout=None,
                  pin_memory=False) -> Tensor:
    """torch.scalar_tensor: a 0-d tensor of the default float dtype unless ``dtype`` says."""
    _strided("scalar_tensor", layout)
    if isinstance(s, Tensor):
        s = s.item()
    return full((), s, dtype=dtype or dt.get_default_dtype(), device=device,
                requires_grad=requires_grad)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False) -> Tensor:
    """torch.asarray: a tensor ``obj`` itself when its dtype and device already fit and
    ``copy`` is not True; otherwise a converted copy (``copy=False`` then raises). Host
    buffers are always copied (device memory cannot alias them)."""
    if isinstance(obj, Tensor):
        d = dt.as_dtype(dtype) if dtype is not None else obj.dtype
        dev = as_device(device) if device is not None else obj.device
        if d is obj.dtype and dev == obj.device and not copy:
            return obj.requires_grad_(True) if requires_grad else obj
        if copy is False:
            if d is not obj.dtype:
                raise ValueError(f"can't alias tensor with dtype '{obj.dtype.scalar_type}' "
                                 f"into dtype '{d.scalar_type}'.")
            raise ValueError(f"can't alias tensor from device '{obj.device}' to '{dev}'.")
        r = obj.detach().to(device=dev, dtype=d, copy=True)
        return _finish(r, requires_grad)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return frombuffer(obj, dtype=dtype or dt.uint8, requires_grad=requires_grad)
    return tensor(obj, dtype=dtype, device=device, requires_grad=requires_grad)


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False) -> Tensor:
    """torch.frombuffer, except that it copies: the tensor does not share the buffer's
    memory (device memory cannot alias host memory)."""
    d = dt.as_dtype(dtype)
    view = memoryview(buffer).cast("B")
    length, size = view.nbytes, d.itemsize
    if length <= 0 and count <= 0 or count == 0:
        raise ValueError(f"both buffer length ({length}) and count ({count}) must not be 0")
    if not 0 <= offset < length:
        raise ValueError(f"offset ({offset} bytes) must be non-negative and no greater than "
                         f"buffer length ({length} bytes) minus 1")
    if count < 0:
        if (length - offset) % size:
            raise ValueError(f"buffer length ({length - offset} bytes) after offset "
                             f"({offset} bytes) must be a multiple of element size ({size})")
        count = (length - offset) // size
    elif offset + count * size > length:
        raise ValueError(f"requested buffer length ({count} * {size} bytes) after offset "
                         f"({offset} bytes) must not be greater than actual buffer length "
                         f"({length} bytes)")
    raw = np.frombuffer(view, dtype=np.uint8, count=count * size, offset=offset).copy()
    arr = raw.view(np.uint16 if d is dt.bfloat16 else d.np)  # bfloat16: its storage bits
    return _finish(_from_host(arr, d, as_device(None), storage=d is dt.bfloat16),
                   requires_grad)


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None,
                   requires_grad=False, pin_memory=False) -> Tensor:
    """torch.empty_permuted: uninitialized, laid out in memory in the dim order
    ``physical_layout`` (outermost first), indexed in the logical order of ``size``."""
    size, order = tuple(size), tuple(physical_layout)
    if len(size) != len(order):
        raise RuntimeError(f"Number of dimensions in size does not match the length of the "
                           f"physical_layout; i.e. len(size) = {len(size)} is not equal to "
                           f"len(physical_layout) = {len(order)}")
    if sorted(order) != list(builtins_range(len(order))):
        raise RuntimeError("Duplicate dim not allowed")
    t = empty(*[size[d] for d in order], dtype=dtype, device=device)
    return _finish(t.permute(*np.argsort(order).tolist()), requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False,
             layout=None) -> Tensor:
    _strided("linspace", layout)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    d = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    arr = np.linspace(start, end, steps, dtype=np.float64)
    if not d.is_floating_point:
        arr = np.trunc(arr)
    return _finish(_from_host(arr, d, as_device(device)), requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False, layout=None) -> Tensor:
    _strided("eye", layout)
    m = n if m is None else m
    d = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    t = zeros(n, m, dtype=d, device=device)
    if n and m:
        k = min(n, m)

        diag = as_strided(t, (k,), (m + 1,), 0)
        fill_(diag, 1)
    return _finish(t, requires_grad)


# --- random ------------------------------------------------------------------------------


# Autograd's rule for overwriting a graph tensor in place (uniform_ on a tensor that
# requires grad), installed by clgraph.autograd, which imports this module:
# ``hook(t, name, fill) -> bool``, True when it ran ``fill`` and recorded the write.
overwrite_hook = None


def _random_fill(t: Tensor, kind: int, a, b, generator=None) -> Tensor:
    """Fill t with kind 0 uniform [a, b), 1 normal(a, b), 2 integers [a, b), drawn from
    ``generator`` (None: the default one)."""
    gen = resolve(generator)
    n = t.numel()
    if n == 0:
        return t
    if t.requires_grad and overwrite_hook is not None and overwrite_hook(
            t, ("uniform", "normal", "random")[kind],
            lambda: _random_fill(t.detach(), kind, a, b, generator)):
        return t
    target = t
    if not t._contig or t._offset:
        t = empty(*t.shape, dtype=t.dtype, device=t.device)
    info = t.device.info
    d = t.dtype
    if kind == 2:
        acc = "long"
    else:
        acc = "double" if d is dt.float64 else "float"
    defines = codegen.storage_defines(d) + (("ACC", acc), ("KIND", str(kind)))
    if acc == "double":
        defines += (("USE_FP64", "1"),)
    k = codegen.template_kernel(info, "random.cl", "random_fill", defines)
    groups = -(-n // 4)
    L = codegen.local_size(info)

    def refresh(advance=True):
        return {codegen.arg(k, name): v for name, v in gen.next_stream(groups, advance).items()}

    runtime.launch(info, k, "random_fill", (-(-groups // L) * L,), (L,),
                   codegen.pack(k, {"out": t._storage.buf, "n": n, "a": a, "b": b,
                                    **gen.next_stream(groups)}),
                   refresh=refresh)
    runtime.bump(t._storage)
    if t is not target:

        copy_(target, t)
    return target


def _float_dtype(dtype):
    d = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    if not d.is_floating_point:
        raise RuntimeError(f'"check_uniform_bounds" not implemented for \'{d.name}\'')
    return d


def rand(*sizes, size=None, generator=None, dtype=None, device=None,
         requires_grad=False, layout=None, pin_memory=False) -> Tensor:
    _strided("rand", layout)
    t = empty(*_sizes_or("rand", sizes, size), dtype=_float_dtype(dtype), device=device)
    return _finish(_random_fill(t, 0, 0.0, 1.0, generator), requires_grad)


def randn(*sizes, size=None, generator=None, dtype=None, device=None,
          requires_grad=False, layout=None, pin_memory=False) -> Tensor:
    _strided("randn", layout)
    t = empty(*_sizes_or("randn", sizes, size), dtype=_float_dtype(dtype), device=device)
    return _finish(_random_fill(t, 1, 0.0, 1.0, generator), requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False, layout=None) -> Tensor:
    _strided("randint", layout)
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if high <= low:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    t = empty(*_sizes((size,) if isinstance(size, int) else size),
              dtype=dtype or dt.int64, device=device)
    return _random_fill(t, 2, int(low), int(high), generator)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False, layout=None,
             pin_memory=False) -> Tensor:
    """torch.randperm: the order of n random 62-bit keys (sorted on the host)."""
    _strided("randperm", layout)
    if n < 0:
        raise RuntimeError(f"n must be non-negative, got{n}")
    keys = randint(0, 1 << 62, (n,), generator=generator, device=device)
    perm = np.argsort(keys._host(), kind="stable")
    return _from_host(perm, dt.as_dtype(dtype) if dtype else dt.int64, as_device(device))


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None,
           device=None, requires_grad=False) -> Tensor:
    """torch.normal's four forms: tensor mean and/or std (broadcast; the result in their
    dtype), or float mean and std with ``size``. Not differentiable (PyTorch's gradient with
    respect to mean and std is zero)."""
    t_mean, t_std = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not (t_mean or t_std):
        if size is None:
            raise TypeError("normal() received an invalid combination of arguments - got "
                            "(float, float): a float mean and std need a size")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        t = empty(*_sizes((size,) if isinstance(size, numbers.Integral) else size),
                  dtype=_float_dtype(dtype), device=device)
        r = _finish(_random_fill(t, 1, float(mean), float(std), generator), requires_grad)
        return r if out is None else copy_(out, r)
    if size is not None:
        raise TypeError("normal(): size is only taken with a float mean and std")
    for v in (mean, std):
        if isinstance(v, Tensor) and not v.dtype.is_floating_point:
            raise NotImplementedError(f"\"normal_kernel_cpu\" not implemented for "
                                      f"'{v.dtype.scalar_type}'")
    if t_std:
        if std.numel() and not bool((std.detach() >= 0).all()):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    ref = mean if t_mean else std
    shape = broadcast_shapes(*[v.shape for v in (mean, std) if isinstance(v, Tensor)])
    d = dt.promote_types(mean.dtype, std.dtype) if t_mean and t_std else ref.dtype
    noise = randn(*shape, generator=generator, dtype=d, device=ref.device)
    m = mean.detach() if t_mean else mean
    s = std.detach() if t_std else std
    r = noise * s + m
    return r if out is None else copy_(out, r)


def _from_to(name: str, args: tuple, kw: dict, defaults: tuple) -> list:
    """The ``from`` / ``to`` operands of Tensor.uniform_ / random_, positional or by
    PyTorch's keyword names (``from`` is a Python keyword: ``**{"from": 2}``)."""
    if len(args) > 2:
        raise TypeError(f"{name}() takes at most 2 positional arguments but {len(args)} were "
                        "given")
    vals = list(args) + list(defaults[len(args):])
    for k, v in kw.items():
        if k not in ("from", "to"):
            raise TypeError(f"{name}() got an unexpected keyword argument '{k}'")
        i = 0 if k == "from" else 1
        if i < len(args):
            raise TypeError(f"{name}() got multiple values for argument '{k}'")
        vals[i] = v
    return vals


def uniform_(t: Tensor, *args, generator=None, **kw) -> Tensor:
    """Tensor.uniform_(from=0, to=1): uniform in [from, to)."""
    a, b = _from_to("uniform_", args, kw, (0.0, 1.0))
    return _random_fill(t, 0, float(a), float(b), generator)


def normal_(t: Tensor, mean=0.0, std=1.0, *, generator=None) -> Tensor:
    return _random_fill(t, 1, float(mean), float(std), generator)


def random_(t: Tensor, *args, generator=None, **kw) -> Tensor:
    """Tensor.random_(from, to) in [from, to), random_(to) in [0, to), random_() in
    [0, 2^24); ``from`` / ``to`` also by keyword."""
    if len(args) == 1 and not kw:
        low, high = 0, args[0] if args[0] else 2**24
    else:
        low, high = _from_to("random_", args, kw, (0, None))
        if high is None:
            high = 2**24
    return _random_fill(t, 2, int(low), int(high), generator)


def exponential_(t: Tensor, lambd=1.0, *, generator=None) -> Tensor:
    """Tensor.exponential_: -log(1 - u) / lambd for uniform u in [0, 1)."""
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    u = rand(*t.shape, generator=generator, device=t.device,
             dtype=dt.float64 if t.dtype is dt.float64 else dt.float32)
    return copy_(t, u.neg().log1p().neg() / lambd)


def _check_float_fill(t: Tensor, name: str, what: str) -> None:
    if not t.dtype.is_floating_point:
        raise RuntimeError(f"{what} is a continuous probability distribution. dtype must be a "
                           f"floating point but you specified {t.dtype.scalar_type}")


def _uniform_like(t: Tensor, generator) -> Tensor:
    return rand(*t.shape, generator=generator, device=t.device,
                dtype=dt.float64 if t.dtype is dt.float64 else dt.float32)


def cauchy_(t: Tensor, median=0.0, sigma=1.0, *, generator=None) -> Tensor:
    """Tensor.cauchy_: median + sigma * tan(pi * (u - 1/2)) for uniform u."""
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    if not t.dtype.is_floating_point:
        raise RuntimeError("Cauchy distribution is a continuous probability distribution. "
                           f"dtype must be a floating point but you specified "
                           f"{t.dtype.name.replace('int64', 'long int')}")
    u = _uniform_like(t, generator)
    return copy_(t, ((u - 0.5) * math.pi).tan() * sigma + median)


def geometric_(t: Tensor, p, *, generator=None) -> Tensor:
    """Tensor.geometric_: the number of Bernoulli(p) trials up to the first success,
    ceil(log(1 - u) / log(1 - p)) (at least 1)."""
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    u = _uniform_like(t, generator)
    k = (u.neg().log1p() / math.log1p(-p)).ceil().clamp_min(1)
    return copy_(t, k)


def log_normal_(t: Tensor, mean=1.0, std=2.0, *, generator=None) -> Tensor:
    """Tensor.log_normal_: exp of normal(mean, std) draws."""
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    if not t.dtype.is_floating_point:
        raise NotImplementedError(f'"log_normal_cpu" not implemented for '
                                  f"'{t.dtype.scalar_type}'")
    z = randn(*t.shape, generator=generator, device=t.device,
              dtype=dt.float64 if t.dtype is dt.float64 else dt.float32)
    return copy_(t, (z * std + mean).exp())


# --- index grids, log ranges and windows (computed on the host in float64, as linspace) ---


def _tri_indices(lower: bool, row, col, offset, dtype, device, name):
    if row < 0 or col < 0:
        raise RuntimeError(f"{name}: row must be non-negative, got {row}" if row < 0 else
                           f"{name}: col must be non-negative, got {col}")
    d = dt.int64 if dtype is None else dt.as_dtype(dtype)
    if d.is_floating_point or d is dt.bool_:
        raise RuntimeError(f'"{name}" not implemented for \'{d.scalar_type}\'')
    r, c = np.tril_indices(row, offset, col) if lower else np.triu_indices(row, offset, col)
    return _from_host(np.stack([r, c]).astype(np.int64).reshape(2, -1), d, as_device(device))


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None) -> Tensor:
    """torch.tril_indices: the (row, col) coordinates of the lower triangle, a 2 x N tensor."""
    _strided("tril_indices", layout)
    return _finish(_tri_indices(True, row, col, offset, dtype, device, "tril_indices"), False)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None) -> Tensor:
    """torch.triu_indices: the (row, col) coordinates of the upper triangle."""
    _strided("triu_indices", layout)
    return _finish(_tri_indices(False, row, col, offset, dtype, device, "triu_indices"), False)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None,
             requires_grad=False, layout=None) -> Tensor:
    _strided("logspace", layout)
    if steps < 0:
        raise RuntimeError(f"number of steps must be non-negative, got {steps}")
    d = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    arr = np.power(float(base), np.linspace(start, end, steps, dtype=np.float64))
    if not d.is_floating_point:
        arr = np.trunc(arr)
    return _finish(_from_host(arr, d, as_device(device)), requires_grad)


def _window(name, fn, window_length, periodic, dtype, device, requires_grad):
    """A window of ``window_length`` points from ``fn(n)`` (the symmetric window of n
    points); periodic windows are the symmetric one of length + 1 without its last point."""
    if window_length < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got "
                           f"window_length={window_length}")
    d = dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    if not d.is_floating_point:
        raise RuntimeError(f"{name} expects floating point dtypes, got: {d}")
    if window_length <= 1:
        arr = np.ones(window_length, dtype=np.float64)
    else:
        n = window_length + 1 if periodic else window_length
        arr = fn(n)[:window_length]
    return _finish(_from_host(arr, d, as_device(device)), requires_grad)


def _cosine_sum(*a):
    def fn(n):
        k = np.arange(n, dtype=np.float64) * (2 * np.pi / (n - 1))
        return sum(c * (-1) ** i * np.cos(i * k) for i, c in enumerate(a))
    return fn


def hann_window(window_length, periodic=True, *, dtype=None, device=None,
                requires_grad=False, layout=None) -> Tensor:
    _strided("hann_window", layout)
    return _window("hann_window", _cosine_sum(0.5, 0.5), window_length, periodic, dtype,
                   device, requires_grad)


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None,
                   device=None, requires_grad=False, layout=None, pin_memory=False) -> Tensor:
    _strided("hamming_window", layout)
    return _window("hamming_window", _cosine_sum(alpha, beta), window_length, periodic, dtype,
                   device, requires_grad)


def blackman_window(window_length, periodic=True, *, dtype=None, device=None,
                    requires_grad=False, layout=None) -> Tensor:
    _strided("blackman_window", layout)
    return _window("blackman_window", _cosine_sum(0.42, 0.5, 0.08), window_length, periodic,
                   dtype, device, requires_grad)


def bartlett_window(window_length, periodic=True, *, dtype=None, device=None,
                    requires_grad=False, layout=None) -> Tensor:
    _strided("bartlett_window", layout)
    def fn(n):
        k = np.arange(n, dtype=np.float64) * (2.0 / (n - 1))
        return 1 - np.abs(k - 1)
    return _window("bartlett_window", fn, window_length, periodic, dtype, device,
                   requires_grad)


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, device=None,
                  requires_grad=False, layout=None) -> Tensor:
    _strided("kaiser_window", layout)
    def fn(n):
        k = np.arange(n, dtype=np.float64)
        return np.i0(beta * np.sqrt(1 - ((k - (n - 1) / 2) / ((n - 1) / 2)) ** 2)) / np.i0(beta)
    return _window("kaiser_window", fn, window_length, periodic, dtype, device, requires_grad)
