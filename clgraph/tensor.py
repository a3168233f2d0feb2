"""Tensor: a view (shape, strides, offset) of a device Storage with a dtype, plus autograd
fields. Methods call ops; nothing here launches a kernel directly."""

from __future__ import annotations

import builtins

import numpy as np

from . import _format, runtime
from . import dtypes as dt
from ._memory_format import channels_last_order, contiguous_format, is_dense_in
from .codegen import check_dtype
from .device import as_device, default_device
from .device import device as _device_cls
from .ops import registry
from .shapes import contiguous_strides, is_contiguous, wrap_dim


class Size(tuple):
    """torch.Size: a tuple that prints as ``torch.Size([2, 3])``."""

    def __repr__(self):
        return f"torch.Size({list(self)})"

    __str__ = __repr__

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__

    def __getitem__(self, k):
        r = tuple.__getitem__(self, k)
        return Size(r) if isinstance(k, slice) else r


class Tensor:
    """A multi-dimensional array on an OpenCL device (torch.Tensor)."""

    __slots__ = ("_storage", "_shape", "_stride", "_offset", "dtype", "device", "_contig",
                 "requires_grad", "_grad", "grad_fn", "_retains_grad", "_hooks", "_base",
                 "_version_seen", "_node", "__weakref__", "__dict__")

    __array_priority__ = 1000  # numpy defers binary operators to Tensor
    _output_nr = 0  # which output of ``grad_fn`` this is (set per tensor when not 0)

    # --- construction ---------------------------------------------------------------
    @classmethod
    def _empty(cls, shape, dtype: dt.dtype, device) -> "Tensor":
        """A fresh contiguous tensor with uninitialized storage."""
        shape = tuple(shape)
        n = 1
        for s in shape:
            n *= s
        return cls._alloc(shape, contiguous_strides(shape), n * dtype.itemsize, dtype, device)

    @classmethod
    def _alloc(cls, shape, stride, nbytes, dtype, device) -> "Tensor":
        """A fresh contiguous tensor whose strides and size the caller already knows."""
        return cls._on(runtime.Storage(device.info, nbytes), shape, stride, 0, dtype, device,
                       True)

    @classmethod
    def _on(cls, storage, shape, stride, offset, dtype, device, contig=None) -> "Tensor":
        """A tensor viewing an existing storage (a compiled call's results)."""
        t = object.__new__(cls)
        t._storage = storage
        t._shape = shape
        t._stride = stride
        t._offset = offset
        t.dtype = dtype
        t.device = device
        t._contig = contig if contig is not None else (
            shape == () or stride == contiguous_strides(shape) or is_contiguous(shape, stride))
        t.requires_grad = False
        t._grad = None
        t.grad_fn = None
        t._retains_grad = False
        t._hooks = None
        t._base = None
        t._node = None
        return t

    def _view(self, shape, stride, offset) -> "Tensor":
        """A tensor sharing this one's storage (no copy)."""
        t = object.__new__(Tensor)
        t._storage = self._storage
        t._shape = tuple(shape)
        t._stride = tuple(stride)
        t._offset = offset
        t.dtype = self.dtype
        t.device = self.device
        t._contig = t._shape == () or t._stride == contiguous_strides(t._shape) or is_contiguous(
            t._shape, t._stride)
        t.requires_grad = False
        t._grad = None
        t.grad_fn = None
        t._retains_grad = False
        t._hooks = None
        t._base = self if self._base is None else self._base
        t._version_seen = self._storage.version  # autograd.refresh_view
        t._node = None
        return t

    def __init__(self, *args, **kwargs):
        pass  # the legacy constructor Tensor(...) is __new__, bound by clgraph._legacy

    # --- attributes -------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._shape)
        return self._shape[wrap_dim(dim, len(self._shape))]

    def stride(self, dim: int | None = None):
        if dim is None:
            return self._stride
        return self._stride[wrap_dim(dim, len(self._shape))]

    def storage_offset(self) -> int:
        return self._offset

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def dim(self) -> int:
        return len(self._shape)

    ndimension = dim

    def numel(self) -> int:
        n = 1
        for s in self._shape:
            n *= s
        return n

    nelement = numel

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_contiguous(self, memory_format=None) -> bool:
        if memory_format is None or memory_format is contiguous_format:
            return self._contig
        try:
            order = channels_last_order(memory_format, self.ndim)
        except RuntimeError:  # a format of another rank
            return False
        return order is None and self._contig or order is not None and is_dense_in(
            self._shape, self._stride, order)

    def is_complex(self) -> bool:
        return self.dtype.kind == 3

    # PyTorch's storage kinds: a clgraph tensor is always a dense strided device buffer
    is_sparse = is_quantized = is_meta = is_mkldnn = is_xpu = is_mps = is_nested = False

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    @property
    def is_cuda(self) -> bool:
        return self.device.info.type == "gpu"

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"assigned grad expected to be a Tensor or None but got {type(value).__name__}")
        if value is not None and value.shape != self.shape:
            raise RuntimeError(
                f"assigned grad has data of a different size: {list(value.shape)} vs "
                f"{list(self.shape)}"
            )
        self._grad = value
        if runtime.observers:
            runtime.notify(registry.GradWrite(self, None))

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, other: "Tensor"):
        runtime.rebinds += 1
        self._storage = other._storage
        self._shape, self._stride, self._offset = other._shape, other._stride, other._offset
        self.dtype, self.device, self._contig = other.dtype, other.device, other._contig

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> "Tensor":
        return self.transpose(-2, -1)

    @property
    def mH(self) -> "Tensor":
        """The last two dims swapped (real dtypes: the conjugate is the tensor itself)."""
        return self.adjoint()

    @property
    def real(self) -> "Tensor":
        """The real part: for a complex tensor a real view sharing its storage."""
        return registry.functions.real(self)

    @property
    def imag(self) -> "Tensor":
        return registry.functions.imag(self)

    def is_signed(self) -> bool:
        return self.dtype.name not in ("bool", "uint8")

    def is_nonzero(self) -> bool:
        n = self.numel()
        if n == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        if n > 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def is_same_size(self, other: "Tensor") -> bool:
        return self._shape == other._shape

    def get_device(self) -> int:
        """The OpenCL device's index (PyTorch: the CUDA index, -1 on the CPU)."""
        return self.device.index

    def data_ptr(self) -> int:
        """The address of the first element: the device buffer's plus the offset."""
        return self._storage.buf.int_ptr + self._offset * self.dtype.itemsize

    @property
    def _version(self) -> int:
        return self._storage.version

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.dtype.kind < 2:
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               "gradients")
        if not self.is_leaf:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want "
                    "to use a computed variable in a subgraph that doesn't require "
                    "differentiation use var_no_grad = var.detach()."
                )
            return self
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        return self._view(self._shape, self._stride, self._offset)

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self.requires_grad = False
        return self

    # --- host transfers -----------------------------------------------------------------
    def _host(self) -> np.ndarray:
        """A host copy of the data, waiting for the queue."""
        src = self if self._contig else self.contiguous()
        n = src.numel()
        arr = np.empty(n, dtype=src.dtype.np)
        runtime.read(src._storage, arr, src._offset * src.dtype.itemsize)
        return dt.from_storage(arr, src.dtype).reshape(src._shape)

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        self._numpy_dtype_check()
        return self._host()

    def _numpy_dtype_check(self) -> None:
        if self.dtype is dt.bfloat16:  # numpy has no such type; PyTorch refuses too
            raise TypeError("Got unsupported ScalarType BFloat16 (numpy has no bfloat16: "
                            "convert first, e.g. tensor.float().numpy())")

    def __array__(self, dtype=None, copy=None):
        self._numpy_dtype_check()
        a = self._host()
        return a.astype(dtype) if dtype is not None else a

    def tolist(self):
        return self._host().tolist()

    def item(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError(f"a Tensor with {n} elements cannot be converted to Scalar")
        return self._host().reshape(()).item()

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __index__(self):
        if self.dtype.is_floating_point or self.dtype is dt.bool_:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._scalar("int"))

    def __bool__(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {'more than one value' if n else 'no values'} "
                "is ambiguous"
            )
        return bool(self._host().reshape(()).item())

    def _scalar(self, what):
        n = self.numel()
        if n != 1:
            raise ValueError(f"only one element tensors can be converted to Python scalars "
                             f"(got {n} elements for {what}())")
        return self._host().reshape(()).item()

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __iter__(self):
        if not self._shape:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        return _repr(self)

    __str__ = __repr__

    def __format__(self, spec):
        """PyTorch's: a 0-d tensor formats as its Python number (f"{loss:.4f}", f"{t}")."""
        if self.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec) if spec else repr(self)

    def __reduce__(self):
        raise TypeError("clgraph tensors are not picklable; use clgraph.save")

    def __deepcopy__(self, memo):
        t = self.clone()
        if self.is_leaf:
            t = t.detach()
            t.requires_grad = self.requires_grad
        memo[id(self)] = t
        return t

    # --- conversion -------------------------------------------------------------------
    def to(self, *args, **kwargs) -> "Tensor":
        """Tensor.to(dtype, non_blocking, copy), to(device, dtype, non_blocking, copy) or
        to(other, non_blocking, copy); ``memory_format`` by keyword."""
        device = dtype = None
        args = list(args)
        if args and isinstance(args[0], Tensor):
            device, dtype = args[0].device, args[0].dtype
            args.pop(0)
        elif args and _is_dtype(args[0]):
            dtype = _as_dtype(args.pop(0))
        elif args and (isinstance(args[0], (str, _device_cls, int)) or args[0] is None) \
                and not isinstance(args[0], builtins.bool):
            a = args.pop(0)
            device = None if a is None else as_device(a)
            if args and (args[0] is None or _is_dtype(args[0])):
                a = args.pop(0)
                dtype = None if a is None else _as_dtype(a)
        flags = dict(zip(("non_blocking", "copy"), args))
        if len(args) > 2 or any(not isinstance(v, builtins.bool) for v in flags.values()):
            raise TypeError(f"to() received an invalid combination of arguments: "
                            f"{args!r} after the device/dtype")
        for k in flags:
            if k in kwargs:
                raise TypeError(f"to() got multiple values for argument '{k}'")
        kwargs = {**flags, **kwargs}
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        fmt = kwargs.pop("memory_format", None)
        if "device" in kwargs:
            a = kwargs.pop("device")
            device = None if a is None else as_device(a)
        if "dtype" in kwargs:
            a = kwargs.pop("dtype")
            dtype = None if a is None else _as_dtype(a)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        out = _to(self, device, dtype, copy)
        return out if fmt is None else out.contiguous(memory_format=fmt)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        return self.to(as_device("cuda" if device is None else device))

    def type(self, dtype=None, non_blocking=False):
        """The legacy type name ("torch.FloatTensor"), or a conversion to a dtype, a legacy
        type (``cg.LongTensor``) or its name."""
        if dtype is None:
            return f"torch.{self.dtype.tensor_type}"
        if isinstance(dtype, str):
            name = dtype.rsplit(".", 1)[-1]
            match = [d for d in dt.ALL + dt.COMPLEX if d.tensor_type == name]
            if not match:
                raise ValueError(f"invalid type: '{dtype}'")
            dtype = match[0]
        elif not isinstance(dtype, dt.dtype) and isinstance(getattr(dtype, "dtype", None),
                                                             dt.dtype):
            dtype = dtype.dtype
        return self.to(dtype)

    def float(self, memory_format=None):
        return self.to(dt.float32, memory_format=memory_format)

    def double(self, memory_format=None):
        return self.to(dt.float64, memory_format=memory_format)

    def half(self, memory_format=None):
        return self.to(dt.float16, memory_format=memory_format)

    def bfloat16(self, memory_format=None):
        return self.to(dt.bfloat16, memory_format=memory_format)

    def cfloat(self, memory_format=None):
        return self.to(dt.complex64, memory_format=memory_format)

    def cdouble(self, memory_format=None):
        return self.to(dt.complex128, memory_format=memory_format)

    def int(self, memory_format=None):
        return self.to(dt.int32, memory_format=memory_format)

    def long(self, memory_format=None):
        return self.to(dt.int64, memory_format=memory_format)

    def short(self, memory_format=None):
        return self.to(dt.int16, memory_format=memory_format)

    def char(self, memory_format=None):
        return self.to(dt.int8, memory_format=memory_format)

    def byte(self, memory_format=None):
        return self.to(dt.uint8, memory_format=memory_format)

    def bool(self, memory_format=None):
        return self.to(dt.bool_, memory_format=memory_format)

    def type_as(self, other):
        return self.to(other.dtype)


# Tensor.to's Python types: PyTorch's double, long, bool and cdouble
_PY_TYPES = {float: dt.float64, int: dt.int64, bool: dt.bool_, complex: dt.complex128}


def _is_dtype(a) -> bool:
    return isinstance(a, dt.dtype) or isinstance(a, type) and a in _PY_TYPES


def _as_dtype(a):
    return _PY_TYPES[a] if a in _PY_TYPES else dt.as_dtype(a)


def _to(t: Tensor, device, dtype, copy: bool) -> Tensor:
    dtype = dtype or t.dtype
    device = device or t.device
    if device == t.device:
        if dtype is t.dtype and not copy:
            return t
        return registry.apply(registry.REGISTRY["to_dtype"], t, dtype=dtype)
    # across devices: through the host (contexts differ), then cast on the target
    check_dtype(device.info, dtype)
    out = registry.apply(_TO_DEVICE, t, device=device)
    return out if dtype is t.dtype else out.to(dtype)


def _run_to_device(op, args, attrs, out=None):
    t = args[0]
    host = t.detach()._host()
    res = Tensor._empty(t._shape, t.dtype, attrs["device"])
    runtime.write(res._storage, host, owned=True)
    return res


_TO_DEVICE = registry.register(registry.OpDef(
    "to_device", "movement", None, _run_to_device,
    vjp=lambda g, x, out, device: (g.to(x.device),),
    saves=(), saves_out=False))


def _repr(t: Tensor) -> str:
    """PyTorch's repr: data, then device (when not the default), dtype, grad_fn."""
    tail = []
    if t.grad_fn is not None:
        tail.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        tail.append("requires_grad=True")
    dev = None if t.device == default_device() else str(t.device)
    return _format.format_tensor(t.detach()._host(), t.dtype.name, tail, device=dev,
                                 default_float=dt.get_default_dtype().name)


registry.Tensor = Tensor
