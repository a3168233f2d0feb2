"""Binds the public functions to Tensor as methods and Python operators."""

from __future__ import annotations

import numbers

from . import creation
from .ops import math as M
from .ops import movement as V
from .tensor import Tensor


def _rev(fn):
    def r(self, other):
        if not isinstance(other, (numbers.Number, Tensor)):
            return NotImplemented
        return fn(other, self)

    return r


def _fwd(fn):
    def f(self, other):
        if not isinstance(other, (numbers.Number, Tensor)):
            return NotImplemented
        return fn(self, other)

    return f


def _inplace(fn):
    def f(self, *args, **kwargs):
        r = fn(self, *args, **kwargs)
        if r is not self:
            M.copy_(self, r)
        return self

    return f


def _inplace_op(name):
    """x.op_(y): run the op with the output written into x itself (one kernel, no copy)."""
    from .ops.elementwise import OPS
    from .ops.registry import apply

    opdef = OPS[name]

    def f(self, *args):
        apply(opdef, self, *args, out=self)
        return self

    f.__name__ = name + "_"
    return f


def bind():
    T = Tensor
    for name in ("neg", "abs", "sign", "floor", "ceil", "exp", "log", "log1p", "expm1", "sqrt",
                 "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf", "reciprocal", "bitwise_not",
                 "logical_not", "isnan", "relu", "round", "mul", "div", "floor_divide", "remainder",
                 "maximum", "minimum", "atan2", "eq", "ne", "lt", "le", "gt", "ge",
                 "bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or",
                 "logical_xor", "add", "sub", "pow", "clamp", "clip", "clamp_min",
                 "clamp_max", "square", "lerp", "addcmul", "addcdiv", "isinf", "isfinite",
                 "negative", "absolute", "multiply", "divide", "true_divide", "subtract",
                 "greater", "greater_equal", "less", "less_equal", "not_equal"):
        setattr(T, name, getattr(M, name))
    T.where = lambda self, condition, other: M.where(condition, self, other)
    for name in ("view", "reshape", "permute", "transpose", "t", "expand", "expand_as",
                 "squeeze", "unsqueeze", "flatten", "unflatten", "narrow", "select", "unbind",
                 "movedim", "as_strided", "contiguous", "clone", "broadcast_to"):
        setattr(T, name, getattr(V, name))
    T.swapaxes = T.swapdims = V.transpose
    T.moveaxis = V.movedim
    T.view_as = lambda self, other: V.view(self, *other.shape)
    T.reshape_as = lambda self, other: V.reshape(self, *other.shape)

    # in-place: one kernel writing into self
    for name in ("add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "sqrt",
                 "sigmoid", "tanh", "relu", "floor", "ceil", "round", "sign", "sin", "cos",
                 "reciprocal", "rsqrt", "remainder", "floor_divide", "maximum", "minimum",
                 "log1p", "expm1", "erf"):
        setattr(T, name + "_", _inplace_op(name))

    addcmul_ = _inplace_op("addcmul")
    addcdiv_ = _inplace_op("addcdiv")
    plain_add_, plain_sub_ = T.add_, T.sub_

    def add_(self, other, *, alpha=1):
        if alpha != 1:
            return addcmul_(self, other, alpha, 1)
        return plain_add_(self, other)

    def sub_(self, other, *, alpha=1):
        if alpha != 1:
            return addcmul_(self, other, -alpha, 1)
        return plain_sub_(self, other)

    T.add_, T.sub_ = add_, sub_
    T.addcmul_ = lambda self, tensor1, tensor2, *, value=1: addcmul_(self, tensor1, tensor2,
                                                                      value)
    T.addcdiv_ = lambda self, tensor1, tensor2, *, value=1: addcdiv_(self, tensor1, tensor2,
                                                                      value)
    T.lerp_ = _inplace_op("lerp")
    T.clamp_ = _inplace(M.clamp)
    T.clip_ = T.clamp_
    T.clamp_min_ = _inplace(M.clamp_min)
    T.clamp_max_ = _inplace(M.clamp_max)
    T.zero_ = lambda self: M.fill_(self, 0)
    T.fill_ = M.fill_
    T.copy_ = lambda self, src, non_blocking=False: M.copy_(self, src)
    T.uniform_ = creation.uniform_
    T.normal_ = creation.normal_
    T.random_ = creation.random_
    T.bernoulli_ = creation.bernoulli_

    ops = {"add": M.add, "sub": M.sub, "mul": M.mul, "truediv": M.div,
           "floordiv": M.floor_divide, "mod": M.remainder, "pow": M.pow,
           "and": M.bitwise_and, "or": M.bitwise_or, "xor": M.bitwise_xor}
    for k, fn in ops.items():
        setattr(T, f"__{k}__", _fwd(fn))
        setattr(T, f"__r{k}__", _rev(fn))
    for k, name in (("add", "add_"), ("sub", "sub_"), ("mul", "mul_"), ("truediv", "div_"),
                    ("floordiv", "floor_divide_"), ("mod", "remainder_"), ("pow", "pow_")):
        setattr(T, f"__i{k}__", getattr(T, name))
    for k, name in (("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor")):
        setattr(T, f"__i{k}__", _inplace_op(name))
    for k, fn in (("eq", M.eq), ("ne", M.ne), ("lt", M.lt), ("le", M.le), ("gt", M.gt),
                  ("ge", M.ge)):
        setattr(T, f"__{k}__", _fwd(fn))
    T.__neg__ = M.neg
    T.__pos__ = lambda self: self
    T.__abs__ = M.abs
    T.__invert__ = M.bitwise_not
    from .ops import linalg as L

    for name in ("matmul", "mm", "bmm", "dot", "mv", "outer", "ger"):
        setattr(T, name, getattr(L, name))
    T.__matmul__ = lambda self, other: _linalg().matmul(self, other)
    T.__rmatmul__ = lambda self, other: _linalg().matmul(other, self)
    T.__hash__ = object.__hash__
    _bind_autograd(T)
    from .ops import index as I

    T.__getitem__ = I.getitem
    T.__setitem__ = I.setitem
    for name in ("gather", "scatter", "scatter_", "scatter_add", "scatter_add_", "index_select",
                 "index_add", "index_add_", "masked_fill", "masked_fill_", "masked_select",
                 "nonzero", "argwhere", "index_put", "index_put_"):
        setattr(T, name, getattr(I, name))
    from .ops import join as J

    for name in ("split", "chunk", "tril", "triu", "tril_", "triu_", "flip", "fliplr", "flipud",
                 "roll", "repeat", "tile"):
        setattr(T, name, getattr(J, name))
    from .ops import reduce as Rd

    for name in Rd.__all__:
        setattr(T, name, getattr(Rd, name))


def _bind_autograd(T):
    from . import autograd

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        autograd.backward(self, gradient, retain_graph, create_graph, inputs)

    def retain_grad(self):
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self._retains_grad = True

    def register_hook(self, hook):
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require "
                               "gradient")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        hooks = self._hooks

        class _Handle:
            def remove(self_):
                if hook in hooks:
                    hooks.remove(hook)

        return _Handle()

    T.backward = backward
    T.retain_grad = retain_grad
    T.register_hook = register_hook
    T.retains_grad = property(lambda self: self._retains_grad)


def _linalg():
    from .ops import linalg

    return linalg
