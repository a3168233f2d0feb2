"""nn.Parameter and nn.Buffer: Tensor subclasses that Module.__setattr__ registers.

A Parameter is a detached view of its data re-classed, so it shares the data's storage
(like ``torch.nn.Parameter(t)``) and every op on it returns a plain Tensor. Imports only
the tensor layer."""

from __future__ import annotations

from ..creation import empty
from ..tensor import Tensor


def _reclass(cls, data: Tensor | None, requires_grad: bool):
    if data is None:

        data = empty(0)
    if not isinstance(data, Tensor):
        raise TypeError(f"{cls.__name__}(): argument 'data' must be Tensor, not "
                        f"{type(data).__name__}")
    t = data.detach()
    t.__class__ = cls
    t.requires_grad_(requires_grad)
    return t


class Parameter(Tensor):
    """torch.nn.Parameter: a leaf tensor that a Module lists in ``parameters()``."""

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        return _reclass(cls, data, requires_grad)

    def __init__(self, data=None, requires_grad=True):
        pass  # Tensor.__init__ refuses direct construction; __new__ did the work

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        res = Parameter(self.detach().clone(), self.requires_grad)
        if self.grad is not None:
            res.grad = self.grad.detach().clone()
        memo[id(self)] = res
        return res


class Buffer(Tensor):
    """torch.nn.Buffer: marks a tensor to be registered as a buffer on assignment. The
    module stores the plain tensor (as PyTorch does) and ``persistent`` picks whether it
    enters the state dict."""

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, *, persistent: bool = True):
        t = _reclass(cls, data, False)
        t.persistent = persistent
        return t

    def __init__(self, data=None, *, persistent=True):
        pass


class UninitializedTensorMixin:
    """A lazy module's placeholder: an empty tensor of the dtype and device asked for, until
    ``materialize(shape)`` gives it that shape in place (same object, so references taken
    before, by an optimizer say, stay valid) and turns it into ``cls_to_become``."""

    __slots__ = ()
    cls_to_become: type

    def materialize(self, shape, device=None, dtype=None) -> None:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.data = empty(*shape, device=self.device if device is None else device,
                          dtype=self.dtype if dtype is None else dtype)
        self.__class__ = self.cls_to_become

    def __repr__(self):
        return f"<{type(self).__name__}>"

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = type(self)(self.requires_grad, device=self.device,
                                        dtype=self.dtype)
        return memo[id(self)]

    def __reduce_ex__(self, protocol):
        return (type(self), (self.requires_grad,))


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """torch.nn.UninitializedParameter: a Parameter whose shape is not known yet (of
    LazyLinear, LazyConv2d...). Until it is materialized its data is an empty (0,) tensor;
    PyTorch refuses most uses of it, clgraph lets them see that empty tensor."""

    __slots__ = ()
    cls_to_become = Parameter

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        return _reclass(cls, empty(0, device=device, dtype=dtype), requires_grad)

    def __init__(self, requires_grad=True, device=None, dtype=None):
        pass


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """torch.nn.UninitializedBuffer: a buffer whose shape is not known yet (a lazy norm's
    running statistics); ``materialize(shape)`` turns it into a plain Tensor in place."""

    __slots__ = ()
    cls_to_become = Tensor

    def __new__(cls, requires_grad: bool = False, device=None, dtype=None):
        return _reclass(cls, empty(0, device=device, dtype=dtype), requires_grad)

    def __init__(self, requires_grad=False, device=None, dtype=None):
        pass


def is_lazy(param) -> bool:
    """Whether ``param`` is an UninitializedParameter or UninitializedBuffer."""
    return isinstance(param, UninitializedTensorMixin)
