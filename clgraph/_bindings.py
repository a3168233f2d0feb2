"""The public forms of every op, generated at import from registry.EXPORTS: ``cg.<name>``
functions, Tensor methods, in-place methods, operator dunders, ``nn.functional`` aliases and
activation Modules. Ops declare their forms where they are defined (a row's ``variants``,
or ``@public`` on a hand-written function); nothing here names an op. Imports only the
registry; the namespaces and classes to fill are passed in."""

from __future__ import annotations

import inspect
import numbers

from .ops.registry import EXPORTS, Export

# Python's operator protocol: binary dunders, their reflected and in-place forms
_COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
_BINARY = {"add", "sub", "mul", "truediv", "div", "floordiv", "mod", "pow", "and", "or", "xor",
           "matmul", "lshift", "rshift"}


def bind_core(namespace: dict, tensor_cls) -> None:
    """Functions into ``namespace`` (the clgraph package), methods onto ``tensor_cls``."""
    for e in EXPORTS.values():
        v = e.variants
        names = (e.name, *v.aliases)
        for n in names:
            if v.function:
                _put(namespace, n, e.fn)
            if v.method:
                _set(tensor_cls, n, e.fn)
        if v.inplace:
            method = _inplace(e)
            for n in names:
                if v.method:
                    _set(tensor_cls, n + "_", method)
                if v.inplace_function:
                    _put(namespace, n + "_", method)
        for d in v.dunders:
            _set(tensor_cls, f"__{d}__", _dunder(d, e, tensor_cls))
    tensor_cls.__hash__ = object.__hash__  # __eq__ is elementwise


def bind_nn(functional: dict, nn_namespace: dict, module_cls) -> None:
    """``nn.functional`` aliases into ``functional``; activation Modules into
    ``nn_namespace``."""
    for e in EXPORTS.values():
        v = e.variants
        if v.functional:
            _put(functional, e.name, _functional(e))
        if v.module:
            _put(nn_namespace, v.module, _module(e, functional[e.name], module_cls))


def _put(namespace: dict, name: str, value) -> None:
    if name in namespace and namespace[name] is not value:
        raise ValueError(f"{name} is defined twice: by hand and by an op's variants")
    namespace[name] = value


def _set(cls, name: str, value) -> None:
    if name in cls.__dict__:
        raise ValueError(f"{cls.__name__}.{name} is defined twice: in the class and by an "
                         "op's variants")
    setattr(cls, name, value)


def _takes_out(fn) -> bool:
    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _inplace(e: Export):
    """``x.name_(...)``: the function writing into x (one kernel); a function without
    ``out=`` computes and copies."""
    fn = e.fn
    if _takes_out(fn):
        def method(self, *args, **kwargs):
            fn(self, *args, out=self, **kwargs)
            return self
    else:
        def method(self, *args, **kwargs):
            r = fn(self, *args, **kwargs)
            if r is not self:
                self.copy_(r)
            return self

    method.__name__ = method.__qualname__ = e.name + "_"
    method.__doc__ = f"In-place {e.name}."
    return method


def _dunder(d: str, e: Export, tensor_cls):
    """Binary operators answer NotImplemented to operands they do not take, so Python tries
    the other side; unary ones and the item protocol (getitem) are the function itself."""
    fn = e.fn
    if d[0] == "i" and d[1:] in _BINARY:
        return _inplace(e)
    reflected = d[0] == "r" and d[1:] in _BINARY
    if not (reflected or d in _BINARY or d in _COMPARE):
        return fn

    def op(self, other):
        # the Tensor and float first: isinstance against the numbers.Number ABC is slow
        if not isinstance(other, (tensor_cls, float, int, numbers.Number)):
            return NotImplemented
        return fn(other, self) if reflected else fn(self, other)

    op.__name__ = op.__qualname__ = f"__{d}__"
    return op


def _functional(e: Export):
    """F.<name>: the function, with PyTorch's ``inplace=`` flag for ops that have an
    in-place form."""
    if not e.variants.inplace:
        return e.fn
    fn, name = e.fn, e.name + "_"

    def functional(input, inplace: bool = False):
        return getattr(input, name)() if inplace else fn(input)

    functional.__name__ = functional.__qualname__ = e.name
    functional.__doc__ = f"torch.nn.functional.{e.name}"
    return functional


def _module(e: Export, functional, module_cls):
    """An nn.Module applying the op (``nn.ReLU(inplace=False)``)."""
    name = e.variants.module
    if e.variants.inplace:
        def __init__(self, inplace: bool = False) -> None:
            module_cls.__init__(self)
            self.inplace = inplace

        def forward(self, input):
            return functional(input, inplace=self.inplace)

        def extra_repr(self) -> str:
            return "inplace=True" if self.inplace else ""

        body = {"__init__": __init__, "forward": forward, "extra_repr": extra_repr}
    else:
        body = {"forward": lambda self, input: functional(input)}
    body.update(__module__="clgraph.nn", __qualname__=name,
                __doc__=f"torch.nn.{name}: applies {e.name} elementwise.")
    return type(name, (module_cls,), body)
