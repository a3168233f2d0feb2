"""Tensor methods that are not an op's generated form: argument orders of their own
(``x.where(cond, y)``), ``new_*`` constructors, the legacy constructor ``Tensor(...)``, the
random in-place fills, autograd's entry points. Everything else comes from the ops' declared
variants (clgraph._bindings)."""

from __future__ import annotations

import numpy as np

from . import _legacy, autograd, creation, runtime
from ._bindings import bind_core
from ._memory_format import strided
from ._memory_format import (
    channels_last,
    channels_last_3d,
    channels_last_order,
    contiguous_format,
    is_dense_in,
    preserve_format,
    strides_for,
)
from .ops import math as M
from .ops import movement as V
from .shapes import contiguous_strides, is_contiguous
from .tensor import Tensor


def bind(namespace: dict) -> None:
    bind_core(namespace, Tensor)
    T = Tensor
    T.__new__ = staticmethod(_legacy.tensor_new)
    T.where = lambda self, condition, other: M.where(condition, self, other)
    T.view_as = lambda self, other: V.view(self, *other.shape)
    T.reshape_as = lambda self, other: V.reshape(self, *other.shape)
    T.copy_ = lambda self, src, non_blocking=False: M.copy_(self, src)
    T.polygamma = lambda self, n: M.polygamma(n, self)
    T.polygamma_ = lambda self, n: M.copy_(self, M.polygamma(n, self))
    T.__pos__ = lambda self: self
    # PyTorch's Python 2 era spellings, kept as aliases
    T.__div__, T.__rdiv__, T.__idiv__ = T.__truediv__, T.__rtruediv__, T.__itruediv__
    T.__long__, T.__nonzero__ = T.__int__, T.__bool__
    T.__complex__ = lambda self: complex(self.item())
    T.__reversed__ = lambda self: self if self.ndim == 0 else self.flip(0)
    T.__contains__ = _contains
    T.uniform_ = creation.uniform_
    T.normal_ = creation.normal_
    T.random_ = creation.random_
    T.exponential_ = creation.exponential_
    for name in ("tensor", "zeros", "ones", "empty"):
        setattr(T, "new_" + name, _new(getattr(creation, name), sized=name != "tensor"))
    T.new_full = lambda self, size, fill_value, dtype=None, device=None, requires_grad=False: \
        creation.full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=requires_grad)
    T.backward = _backward
    T.retain_grad = _retain_grad
    T.register_hook = _register_hook
    T.register_post_accumulate_grad_hook = autograd.register_post_accumulate_grad_hook
    T.retains_grad = property(lambda self: self._retains_grad)
    T.nbytes = property(lambda self: self.numel() * self.dtype.itemsize)
    T.itemsize = property(lambda self: self.dtype.itemsize)
    # PoCL's CPU device is the host: t.cpu() (t.to("cpu")) gives a tensor with is_cpu True
    T.is_cpu = property(lambda self: self.device.info.type == "cpu")
    T.t_ = lambda self: _restride(self, V.t)
    T.unsqueeze_ = lambda self, dim: _restride(self, V.unsqueeze, dim)
    T.squeeze_ = lambda self, dim=None: _restride(self, V.squeeze, dim)
    T.transpose_ = T.swapdims_ = \
        lambda self, dim0, dim1: _restride(self, V.transpose, dim0, dim1)
    T.swapaxes_ = lambda self, axis0, axis1: _restride(self, V.transpose, axis0, axis1)
    T.as_strided_ = lambda self, size, stride, storage_offset=None: _restride(
        self, V.as_strided, size, stride, storage_offset)
    T.new_empty_strided = lambda self, size, stride, dtype=None, device=None, \
        requires_grad=False: creation.empty_strided(size, stride, dtype=dtype or self.dtype,
                                                    device=device or self.device,
                                                    requires_grad=requires_grad)
    T.cauchy_ = creation.cauchy_
    T.geometric_ = creation.geometric_
    T.log_normal_ = creation.log_normal_
    T.resize_ = _resize_
    T.resize_as_ = namespace["resize_as_"] = _resize_as_
    T.fill_diagonal_ = _fill_diagonal_
    T.apply_ = lambda self, callable: _map_host(self, "apply_", callable)
    T.map_ = lambda self, tensor, callable: _map_host(self, "map_", callable, tensor)
    T.map2_ = lambda self, x, y, callable: _map_host(self, "map2_", callable, x, y)
    # device buffers are neither page-locked host memory nor shared between processes:
    # pinning and sharing keep the tensor as it is
    T.pin_memory = lambda self, device=None: self
    T.is_pinned = lambda self, device=None: False
    T.share_memory_ = _share_memory_
    T.is_shared = lambda self: getattr(self, "_shared", False)
    T.is_inference = lambda self: False  # clgraph's inference_mode makes no inference tensors
    T.output_nr = property(lambda self: self._output_nr)
    T.dim_order = _dim_order
    T.H = property(_conj_transpose)
    T.layout = property(lambda self: strided)


def _contains(self, element):
    """``element in t``: whether any element of ``t`` equals it (PyTorch)."""
    if not isinstance(element, (Tensor, int, float, complex, bool)):
        raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you "
                           f"passed in a {type(element)}.")
    return bool((self == element).any())


def _new(make, sized: bool):
    """Tensor.new_zeros(*size) and kin: ``make`` with this tensor's dtype and device unless
    given."""
    if sized:
        def method(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
            if size is not None:
                if sizes:
                    raise TypeError(f"new_{make.__name__}() got multiple values for argument "
                                    "'size'")
                sizes = (size,)
            return make(*sizes, dtype=dtype or self.dtype, device=device or self.device,
                        requires_grad=requires_grad)
    else:
        def method(self, data, dtype=None, device=None, requires_grad=False):
            return make(data, dtype=dtype or self.dtype, device=device or self.device,
                        requires_grad=requires_grad)
    method.__name__ = method.__qualname__ = "new_" + make.__name__
    return method


def _restride(self, view_op, *args):
    """PyTorch's in-place view ops (t_, unsqueeze_, squeeze_): ``self`` takes the geometry
    of ``view_op(self, *args)`` and its autograd node. The view is taken of an alias, so the
    node's input keeps the old geometry."""
    if self.requires_grad and self.grad_fn is None and autograd.is_grad_enabled():
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           "operation.")
    alias = self._view(self._shape, self._stride, self._offset)
    alias.grad_fn, alias.requires_grad = self.grad_fn, self.requires_grad
    if self._output_nr:
        alias._output_nr = self._output_nr
    view = view_op(alias, *args)
    self._shape, self._stride, self._offset = view._shape, view._stride, view._offset
    self._contig = view._contig
    if view.grad_fn is not None:
        self.grad_fn, self.requires_grad = view.grad_fn, True
        if self._output_nr:
            del self._output_nr
    return self


def _resize_(self, *sizes, size=None, memory_format=None):
    """Tensor.resize_: the tensor becomes dense with ``sizes`` at its offset (row-major, or
    in ``memory_format``), its storage grown (the new elements uninitialized) when too
    small; the same shape without a memory_format keeps the strides."""
    if size is not None:
        if sizes:
            raise TypeError("resize_() got multiple values for argument 'size'")
        sizes = (size,)
    shape = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) \
        else tuple(sizes)
    if self.requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    if any(n < 0 for n in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(shape)}: "
                           f"{list(shape)}")
    if memory_format is preserve_format:
        raise RuntimeError("resize_: Unsupported memory format preserve_format")
    order = channels_last_order(memory_format, len(shape))
    if shape == self._shape and memory_format is None:
        return self
    n = 1
    for d in shape:
        n *= d
    need = (self._offset + n) * self.dtype.itemsize
    old = self._storage
    if need > old.nbytes:
        # the storage object stays (the views of it see the new buffer); the temporary one
        # takes the old buffer and frees it
        new = runtime.Storage(old.dev, need)
        runtime.copy_buffer(old, new, old.nbytes)
        old.buf, new.buf = new.buf, old.buf
        old.nbytes, new.nbytes = new.nbytes, old.nbytes
        del new
    self._shape = shape
    self._stride = contiguous_strides(shape) if order is None else strides_for(shape, order)
    self._contig = order is None or is_contiguous(shape, self._stride)
    runtime.bump(old)
    return self


def _resize_as_(input, the_template, memory_format=None):
    """torch.resize_as_ / Tensor.resize_as_: resize_ to the template's shape; with
    preserve_format, in the template's own layout (channels_last when it is dense so)."""
    if memory_format is preserve_format:
        memory_format = contiguous_format
        if the_template.ndim in (4, 5) and not the_template.is_contiguous():
            fmt = channels_last if the_template.ndim == 4 else channels_last_3d
            order = channels_last_order(fmt, the_template.ndim)
            if is_dense_in(the_template.shape, the_template.stride(), order):
                memory_format = fmt
    return _resize_(input, the_template.shape, memory_format=memory_format)


def _fill_diagonal_(self, fill_value, wrap: bool = False):
    """Tensor.fill_diagonal_: the main diagonal (all indices equal) set to ``fill_value``;
    with ``wrap``, a tall matrix's diagonal starts again every ncols + 1 rows."""
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if self.ndim > 2 and len(set(self._shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    n = min(self._shape)
    step = sum(self._stride)
    if self.ndim == 2 and wrap and self._shape[0] > self._shape[1] + 1:
        # row-major positions k * (ncols + 1) through the whole matrix (rows ncols, 2ncols+1,
        # ... stay empty): count them over the rows as PyTorch's flat stride does
        rows, cols = self._shape
        flat = (rows * cols + cols) // (cols + 1)
        if self._stride == (cols, 1):
            n, step = flat, cols + 1
    self.as_strided((n,), (step,), self._offset).fill_(fill_value)
    return self


def _map_host(self, name: str, fn, *others):
    """apply_ / map_ / map2_: ``fn`` called on each element (and the broadcast elements of
    ``others``) on the host, as PyTorch's CPU-only methods; the results are cast to this
    tensor's dtype and written back."""
    if self.requires_grad:
        raise RuntimeError(f"Can't call {name}() on Variable that requires grad. Use "
                           f"var.detach().{name}() instead.")
    values = self.numpy()
    args = [o.expand(*self._shape).detach().numpy() for o in others]
    out = np.empty(values.shape, dtype=values.dtype)
    flat = out.reshape(-1)
    for i, v in enumerate(values.reshape(-1).tolist()):
        flat[i] = fn(v, *(a.reshape(-1)[i].item() for a in args))
    self.copy_(creation._from_host(out, self.dtype, self.device))
    return self


def _share_memory_(self):
    self._shared = True
    return self


def _dim_order(self, *, ambiguity_check=False):
    """Tensor.dim_order: the dims from the outermost in memory (largest stride) in. With
    ``ambiguity_check`` (True, or a list of memory formats exactly one of which the tensor
    must have) a tensor with size-1 dims or equal neighbouring strides raises."""
    order = tuple(sorted(range(self.ndim), key=lambda d: -self._stride[d]))
    check = ambiguity_check if isinstance(ambiguity_check, bool) else True
    formats = ambiguity_check if isinstance(ambiguity_check, list) else []
    strides = self._stride
    ambiguous = 1 in self._shape or any(a == b for a, b in zip(strides, strides[1:]))
    if check and ambiguous and sum(self.is_contiguous(memory_format=f) for f in formats) != 1:
        raise RuntimeError("The tensor does not have unique dim order, or cannot map to exact "
                           "one of the given memory formats.")
    return order


def _conj_transpose(self):
    """Tensor.H: the transpose of a matrix (real dtypes: no conjugation), a 0-d tensor
    itself."""
    if self.ndim == 0:
        return self
    if self.ndim != 2:
        extra = (" For batches of matrices, consider using tensor.mH" if self.ndim > 2
                 else "")
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got "
                           f"{self.ndim}-D tensor.{extra}")
    return V.transpose(self, 0, 1)


def _backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    autograd.backward(self, gradient, retain_graph, create_graph, inputs)


def _retain_grad(self):
    if not self.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if self.grad_fn is not None:
        self._retains_grad = True


def _register_hook(self, hook):
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self._hooks is None:
        self._hooks = []
    self._hooks.append(hook)
    return autograd._ListHookHandle(self._hooks, hook)
