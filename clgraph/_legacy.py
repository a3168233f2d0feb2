"""PyTorch's legacy constructors: ``Tensor(*sizes)`` / ``Tensor(data)`` and the typed
classes ``FloatTensor``, ``LongTensor``, ... (callable like Tensor, with their dtype; a
tensor of that dtype is an instance of the class, as in PyTorch). Imports creation and
the tensor layer."""

from __future__ import annotations

import numbers

import numpy as np

from . import dtypes as dt
from .creation import empty, tensor
from .device import as_device
from .tensor import Size, Tensor


def _sizes_or_data(args):
    """("sizes", tuple) or ("data", object) for a legacy constructor's positional
    arguments."""
    if not args:
        return "sizes", (0,)
    if len(args) == 1:
        a = args[0]
        if isinstance(a, Size):
            return "sizes", tuple(a)
        if isinstance(a, (list, tuple, np.ndarray, Tensor)):
            return "data", a
        if isinstance(a, numbers.Integral) and not isinstance(a, bool):
            return "sizes", (int(a),)
        raise TypeError(f"new(): data must be a sequence (got {type(a).__name__})")
    for pos, a in enumerate(args):
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"new(): argument 'size' failed to unpack the object at pos "
                            f"{pos + 1} with error \"type must be tuple of ints,but got "
                            f"{type(a).__name__}\"")
    return "sizes", tuple(int(a) for a in args)


def _construct(d: dt.dtype, args, device) -> Tensor:
    kind, value = _sizes_or_data(args)
    if kind == "sizes":
        return empty(*value, dtype=d, device=device)
    if isinstance(value, Tensor):
        if value.dtype is not d:
            raise TypeError(f"expected {d.scalar_type} (got {value.dtype.scalar_type})")
        if device is not None and as_device(device) != value.device:
            raise RuntimeError(f"Attempted to create a tensor on {as_device(device)} from a "
                               f"tensor on {value.device}")
        return value.detach()  # an alias of the same storage
    return tensor(value, dtype=d, device=device)


def tensor_new(cls, *args, device=None, **kwargs):
    """``Tensor.__new__``: torch.Tensor(...) in the default dtype."""
    if kwargs:
        raise TypeError(f"new() received an invalid combination of arguments - got "
                        f"keyword arguments {sorted(kwargs)}; only 'device' is accepted")
    t = _construct(dt.get_default_dtype(), args, device)
    if cls is not Tensor:
        t.__class__ = cls
    return t


class _LegacyType(type):
    """The metaclass of FloatTensor and kin: calling one constructs a tensor of its dtype;
    ``isinstance(t, FloatTensor)`` asks whether t is a float32 tensor."""

    def __call__(cls, *args, device=None):
        return _construct(cls.dtype, args, device)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype

    def __repr__(cls) -> str:
        return f"<class 'torch.{cls.__name__}'>"


def _legacy_type(d: dt.dtype) -> type:
    return _LegacyType(d.tensor_type, (), {"dtype": d, "__module__": "clgraph",
                                          "__doc__": f"torch.{d.tensor_type}: {d!r} "
                                                     "tensors (legacy constructor)."})


FloatTensor = _legacy_type(dt.float32)
DoubleTensor = _legacy_type(dt.float64)
HalfTensor = _legacy_type(dt.float16)
BFloat16Tensor = _legacy_type(dt.bfloat16)
LongTensor = _legacy_type(dt.int64)
IntTensor = _legacy_type(dt.int32)
ShortTensor = _legacy_type(dt.int16)
CharTensor = _legacy_type(dt.int8)
ByteTensor = _legacy_type(dt.uint8)
BoolTensor = _legacy_type(dt.bool_)
