"""Tensor methods that are not an op's generated form: argument orders of their own
(``x.where(cond, y)``), ``new_*`` constructors, the legacy constructor ``Tensor(...)``, the
random in-place fills, autograd's entry points. Everything else comes from the ops' declared
variants (clgraph._bindings)."""

from __future__ import annotations

from . import _legacy, autograd, creation
from ._bindings import bind_core
from .ops import math as M
from .ops import movement as V
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


def _new(make, sized: bool):
    """Tensor.new_zeros(*size) and kin: ``make`` with this tensor's dtype and device unless
    given."""
    if sized:
        def method(self, *size, dtype=None, device=None, requires_grad=False):
            return make(*size, dtype=dtype or self.dtype, device=device or self.device,
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
    hooks = self._hooks

    class _Handle:
        def remove(self_):
            if hook in hooks:
                hooks.remove(hook)

    return _Handle()
