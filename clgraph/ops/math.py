"""Public elementwise functions (cg.add, cg.exp, ...) over the elementwise rows, with
PyTorch's argument conventions (alpha, out=, scalar operands, clamp's optional bounds)."""

from __future__ import annotations

import numbers

from .. import dtypes as dt
from . import registry
from .elementwise import OPS
from .registry import apply


def _check_operand(x, name):
    if isinstance(x, (registry.Tensor, numbers.Number)) or x is None:
        return x
    import numpy as np

    if isinstance(x, np.ndarray):
        raise TypeError(f"{name}(): expected a Tensor or number, got numpy.ndarray; use "
                        "clgraph.from_numpy() first")
    raise TypeError(f"{name}(): unsupported operand type {type(x).__name__}")


def _bin(name):
    opdef = OPS[name]

    def fn(input, other, *, out=None):
        return apply(opdef, _check_operand(input, name), _check_operand(other, name), out=out)

    fn.__name__ = name
    fn.__doc__ = f"torch.{name}"
    return fn


def _un(name):
    opdef = OPS[name]

    def fn(input, *, out=None):
        return apply(opdef, input, out=out)

    fn.__name__ = name
    fn.__doc__ = f"torch.{name}"
    return fn


for _n in ("neg", "abs", "sign", "floor", "ceil", "exp", "log", "log1p", "expm1", "sqrt",
           "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf", "reciprocal", "bitwise_not",
           "logical_not", "isnan", "relu", "round"):
    globals()[_n] = _un(_n)
for _n in ("mul", "div", "floor_divide", "remainder", "maximum", "minimum", "atan2",
           "eq", "ne", "lt", "le", "gt", "ge", "bitwise_and", "bitwise_or", "bitwise_xor",
           "logical_and", "logical_or", "logical_xor"):
    globals()[_n] = _bin(_n)

negative = neg  # noqa: F821
absolute = abs  # noqa: F821
multiply = mul  # noqa: F821
greater, greater_equal, less, less_equal = gt, ge, lt, le  # noqa: F821
not_equal = ne  # noqa: F821


def add(input, other, *, alpha=1, out=None):
    """torch.add; with ``alpha`` one addcmul kernel (input + other * alpha)."""
    _check_operand(other, "add")
    if alpha != 1:
        return apply(OPS["addcmul"], _check_operand(input, "add"), other, alpha, 1, out=out)
    return apply(OPS["add"], _check_operand(input, "add"), other, out=out)


def sub(input, other, *, alpha=1, out=None):
    _check_operand(other, "sub")
    if alpha != 1:
        return apply(OPS["addcmul"], _check_operand(input, "sub"), other, -alpha, 1, out=out)
    return apply(OPS["sub"], _check_operand(input, "sub"), other, out=out)


subtract = sub


def divide(input, other, *, rounding_mode=None, out=None):
    if rounding_mode is None:
        return apply(OPS["div"], input, other, out=out)
    if rounding_mode == "floor":
        return apply(OPS["floor_divide"], input, other, out=out)
    if rounding_mode == "trunc":
        q = apply(OPS["div"], input, other)
        r = apply(OPS["sign"], q) * apply(OPS["floor"], apply(OPS["abs"], q))
        if isinstance(input, registry.Tensor) and not input.dtype.is_floating_point and not (
            isinstance(other, float)
        ):
            r = r.to(dt.result_type([input.dtype], [], [other]) if not isinstance(
                other, registry.Tensor) else dt.promote_types(input.dtype, other.dtype))
        return r if out is None else out.copy_(r)
    raise RuntimeError(
        f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
        f"'{rounding_mode}'"
    )


div = true_divide = divide


def pow(input, exponent, *, out=None):
    """torch.pow; a scalar exponent of 2 or 1/2 becomes a multiply or a sqrt."""
    if isinstance(input, registry.Tensor) and isinstance(exponent, numbers.Number) and (
        out is None
    ):
        if exponent == 2 and not isinstance(exponent, bool):
            if input.dtype.is_floating_point or isinstance(exponent, int):
                return mul(input, input)  # noqa: F821
    return apply(OPS["pow"], input, exponent, out=out)


def square(input):
    return mul(input, input)  # noqa: F821


def clamp(input, min=None, max=None, *, out=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    r = input
    if min is not None:
        r = apply(OPS["maximum"], r, min, out=out if max is None else None)
    if max is not None:
        r = apply(OPS["minimum"], r, max, out=out)
    return r


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


def where(condition, input=None, other=None, *, out=None):
    if input is None and other is None:
        from .index import nonzero

        return nonzero(condition, as_tuple=True)
    if isinstance(condition, registry.Tensor) and condition.dtype is not dt.bool_:
        from .elementwise import _pyname

        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a "
                           f"tensor with dtype {_pyname(condition.dtype)}")
    return apply(OPS["where"], condition, input, other, out=out)


def lerp(input, end, weight, *, out=None):
    return apply(OPS["lerp"], input, end, weight, out=out)


def addcmul(input, tensor1, tensor2, *, value=1, out=None):
    return apply(OPS["addcmul"], input, tensor1, tensor2, value, out=out)


def addcdiv(input, tensor1, tensor2, *, value=1, out=None):
    return apply(OPS["addcdiv"], input, tensor1, tensor2, value, out=out)


def isfinite(input):
    return logical_not(logical_or(isnan(input), isinf(input)))  # noqa: F821


def isinf(input):
    if not input.dtype.is_floating_point:
        return ne(input, input)  # integers are never infinite  # noqa: F821
    return eq(abs(input), float("inf"))  # noqa: F821


def to_dtype(input, dtype):
    return apply(OPS["to_dtype"], input, dtype=dtype)


def fill_(t, value):
    if isinstance(value, registry.Tensor):
        if value.numel() != 1 or value.ndim:
            raise RuntimeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with "
                f"{value.ndim} dimensions."
            )
        return copy_(t, value)
    apply(OPS["fill"], value, dtype=t.dtype, out=t)
    return t


def copy_(t, src):
    """Tensor.copy_: broadcasts src into t, casting to t's dtype, across devices."""
    if not isinstance(src, registry.Tensor):
        raise TypeError(f"copy_(): argument 'src' must be Tensor, not {type(src).__name__}")
    if src.device != t.device:
        src = src.to(t.device)
    apply(OPS["to_dtype"], src, dtype=t.dtype, out=t)
    return t
