"""Public elementwise functions (cg.add, cg.exp, ...) over the elementwise rows, with
PyTorch's argument conventions (alpha, out=, scalar operands, clamp's optional bounds)."""

from __future__ import annotations

import collections
import math
import numbers

import numpy as np

from .. import dtypes as dt
from ..shapes import broadcast_shapes
from . import complex as _complex
from . import registry
from .elementwise import (
    OPS,
    _check_tensors,
    _pyname,
    check_operand,
    integer_zero_divisor,
)
from .registry import apply, public


@public(inplace=True, dunders=("add", "radd", "iadd"))
def add(input, other, *, alpha=1, out=None):
    """torch.add; with ``alpha`` one addcmul kernel (input + other * alpha)."""
    check_operand(other, "add")
    if alpha != 1:
        return apply(OPS["addcmul"], check_operand(input, "add"), other, alpha, 1, out=out)
    return apply(OPS["add"], check_operand(input, "add"), other, out=out)


def _is_bool(x) -> bool:
    return isinstance(x, bool) or isinstance(x, registry.Tensor) and x.dtype is dt.bool_


@public(inplace=True, dunders=("sub", "rsub", "isub"), aliases=("subtract",))
def sub(input, other, *, alpha=1, out=None):
    """torch.sub: any bool operand is refused, as in PyTorch, whatever the result dtype."""
    check_operand(other, "sub")
    input_bool, other_bool = _is_bool(input), _is_bool(other)
    if input_bool and other_bool:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not "
                           "supported. Use the `^` or `logical_xor()` operator instead.")
    if input_bool or other_bool:
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not "
                           "supported. If you are trying to invert a mask, use the `~` or "
                           "`logical_not()` operator instead.")
    if alpha != 1:
        return apply(OPS["addcmul"], check_operand(input, "sub"), other, -alpha, 1, out=out)
    return apply(OPS["sub"], check_operand(input, "sub"), other, out=out)


@public(inplace=True, dunders=("truediv", "rtruediv", "itruediv", "div", "rdiv", "idiv"),
        aliases=("div", "true_divide"))
def divide(input, other, *, rounding_mode=None, out=None):
    if rounding_mode is None:
        return apply(OPS["div"], input, other, out=out)
    if rounding_mode in ("floor", "trunc"):
        integer_zero_divisor("div", input, other)
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




@public(inplace=True, dunders=("pow", "rpow", "ipow"))
def pow(input, exponent, *, out=None):
    """torch.pow; a scalar exponent of 2 or 1/2 becomes a multiply or a sqrt."""
    if isinstance(input, registry.Tensor) and isinstance(exponent, numbers.Number) and (
        out is None
    ):
        if exponent == 2 and not isinstance(exponent, bool) and input.dtype is not dt.bool_:
            if input.dtype.is_floating_point or isinstance(exponent, int):
                return apply(OPS["mul"], input, input)
    return apply(OPS["pow"], input, exponent, out=out)


@public(inplace=True, inplace_function=True)
def square(input, *, out=None):
    """torch.square: pow(input, 2), so a bool input gives int64."""
    return pow(input, 2, out=out)


@public(inplace=True, inplace_function=True)
def round(input, *, decimals: int = 0, out=None):
    """torch.round: halves to even; with ``decimals``, round(x * 10^d) / 10^d as PyTorch
    computes it (negative ``decimals`` round to tens, hundreds)."""
    if not isinstance(decimals, numbers.Integral) or isinstance(decimals, bool):
        raise TypeError(f"round(): argument 'decimals' must be int, not "
                        f"{type(decimals).__name__}")
    if decimals == 0:
        return apply(OPS["round"], input, out=out)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"round_decimals is not implemented for integer inputs, got "
                           f"{_pyname(input.dtype)}")
    if decimals > 0:
        scale = 10.0 ** decimals
        return apply(OPS["div"], apply(OPS["round"], apply(OPS["mul"], input, scale)), scale,
                     out=out)
    scale = 10.0 ** -decimals
    return apply(OPS["mul"], apply(OPS["round"], apply(OPS["div"], input, scale)), scale,
                 out=out)


@public(inplace=True, inplace_function=True, aliases=("clip",))
def clamp(input, min=None, max=None, *, out=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    r = input
    if min is not None:
        # with out= (clamp_), both steps write out: the second must not overwrite a value
        # the first step's node saved
        r = apply(OPS["clamp_min"], r, min, out=out)
    if max is not None:
        r = apply(OPS["clamp_max"], r, max, out=out)
    return r


@public(inplace=True, inplace_function=True)
def clamp_min(input, min, *, out=None):
    return clamp(input, min=min, out=out)


@public(inplace=True, inplace_function=True)
def clamp_max(input, max, *, out=None):
    return clamp(input, max=max, out=out)


@public(method=False)
def where(condition, input=None, other=None, *, out=None):
    if input is None and other is None:
        return registry.functions.nonzero(condition, as_tuple=True)
    if isinstance(condition, registry.Tensor) and condition.dtype is not dt.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a "
                           f"tensor with dtype {_pyname(condition.dtype)}")
    return apply(OPS["where"], condition, input, other, out=out)


@public(inplace=True)
def lerp(input, end, weight, *, out=None):
    return apply(OPS["lerp"], input, end, weight, out=out)


@public(inplace=True)
def addcmul(input, tensor1, tensor2, *, value=1, out=None):
    return apply(OPS["addcmul"], input, tensor1, tensor2, value, out=out)


@public(inplace=True)
def addcdiv(input, tensor1, tensor2, *, value=1, out=None):
    return apply(OPS["addcdiv"], input, tensor1, tensor2, value, out=out)


@public
def isfinite(input):
    return apply(OPS["logical_not"], apply(OPS["logical_or"], apply(OPS["isnan"], input),
                                                  isinf(input)))


@public
def isinf(input):
    if input.dtype.is_complex:
        return _complex.isinf(input)
    if not input.dtype.is_floating_point:
        return apply(OPS["ne"], input, input)  # integers are never infinite
    return apply(OPS["eq"], apply(OPS["abs"], input), float("inf"))


def to_dtype(input, dtype):
    return apply(OPS["to_dtype"], input, dtype=dtype)


@public
def zero_(input):
    """torch.zero_: fills ``input`` with zeros."""
    return fill_(input, 0)


@public
def fill_(t, value):
    if isinstance(value, registry.Tensor):
        if value.numel() != 1 or value.ndim:
            raise RuntimeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with "
                f"{value.ndim} dimensions."
            )
        return copy_(t, value)
    if not t.dtype.is_floating_point and isinstance(value, numbers.Real) and not isinstance(
        value, numbers.Integral
    ):
        # the kernel's scalar has the tensor's type: convert as PyTorch's C++ cast does
        if t.dtype is dt.bool_:
            value = bool(value)
        elif math.isfinite(value):
            value = int(value)  # truncation toward zero
        else:
            raise RuntimeError(f"value cannot be converted to type {t.dtype.name}_t without "
                               "overflow")
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


@public(inplace=True, inplace_function=True)
def frac(input, *, out=None):
    """torch.frac: input - trunc(input), floating point only."""
    if isinstance(input, registry.Tensor) and not input.dtype.is_floating_point:
        raise NotImplementedError(f'"frac_cpu" not implemented for \'{_pyname(input.dtype)}\'')
    r = input - apply(OPS["trunc"], input)
    return r if out is None else out.copy_(r)


@public
def positive(input):
    """torch.positive: the input itself (bool refused, as PyTorch's unary +)."""
    if input.dtype is dt.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


@public(inplace=True, inplace_function=True)
def nan_to_num(input, nan=0.0, posinf=None, neginf=None, *, out=None):
    """torch.nan_to_num: NaN, +inf and -inf replaced (by default 0 and the dtype's
    largest and lowest finite values); integer tensors are returned as a copy."""
    if not input.dtype.is_floating_point:
        r = input.clone()
    else:
        info = dt.finfo(input.dtype)
        posinf = info.max if posinf is None else posinf
        neginf = info.min if neginf is None else neginf
        r = where(apply(OPS["isnan"], input), float(nan), input)
        r = where(apply(OPS["eq"], input, math.inf), float(posinf), r)
        r = where(apply(OPS["eq"], input, -math.inf), float(neginf), r)
    return r if out is None else out.copy_(r)


@public
def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """torch.isclose: |input - other| <= atol + rtol * |other|, or equal (infinities)."""
    for name, v in (("input", input), ("other", other)):
        if not isinstance(v, registry.Tensor):
            raise TypeError(f"isclose(): argument '{name}' must be Tensor, not "
                            f"{type(v).__name__}")
    if input.dtype is not other.dtype:
        raise RuntimeError(f"{_pyname(input.dtype)} did not match {_pyname(other.dtype)}")
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol}")
    close = apply(OPS["eq"], input, other)
    if equal_nan and input.dtype.is_floating_point:
        both = apply(OPS["logical_and"], apply(OPS["isnan"], input), apply(OPS["isnan"], other))
        close = apply(OPS["logical_or"], close, both)
    if rtol == 0 and atol == 0:
        return close
    a, b = input.detach(), other.detach()
    if a.dtype is dt.bool_:
        a, b = a.to(dt.get_default_dtype()), b.to(dt.get_default_dtype())
    allowed = apply(OPS["abs"], b * rtol) + atol
    actual = apply(OPS["abs"], a - b)
    within = apply(OPS["logical_and"], isfinite(actual), apply(OPS["le"], actual, allowed))
    return apply(OPS["logical_or"], close, within)


@public
def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """torch.allclose: whether isclose holds everywhere (a Python bool)."""
    return bool(registry.functions.all(isclose(input, other, rtol, atol, equal_nan)))


@public
def equal(input, other) -> bool:
    """torch.equal: same shape and the same values (NaN equals nothing)."""
    for name, v in (("input", input), ("other", other)):
        if not isinstance(v, registry.Tensor):
            raise TypeError(f"equal(): argument '{name}' must be Tensor, not "
                            f"{type(v).__name__}")
    if input.shape != other.shape:
        return False
    return bool(registry.functions.all(apply(OPS["eq"], input, other)))


@public(inplace=True, inplace_function=True)
def deg2rad(input, *, out=None):
    """torch.deg2rad: input * pi / 180 (integers give the default float dtype)."""
    r = apply(OPS["mul"], _as_float(input, "deg2rad"), math.pi / 180)
    return r if out is None else out.copy_(r)


@public(inplace=True, inplace_function=True)
def rad2deg(input, *, out=None):
    """torch.rad2deg: input * 180 / pi (integers give the default float dtype)."""
    r = apply(OPS["mul"], _as_float(input, "rad2deg"), 180 / math.pi)
    return r if out is None else out.copy_(r)


def _as_float(input, name):
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    return input if input.dtype.is_floating_point else input.to(dt.get_default_dtype())


@public(inplace=True, inplace_function=True)
def logit(input, eps=None, *, out=None):
    """torch.logit: log(x / (1 - x)), x clamped to [eps, 1 - eps] when ``eps`` is given
    (the gradient is 0 outside that range, as PyTorch's)."""
    x = _as_float(input, "logit")
    if eps is not None:
        x = clamp(x, eps, 1 - eps)
    r = apply(OPS["log"], apply(OPS["div"], x, 1 - x))
    return r if out is None else out.copy_(r)


@public(inplace=True)
def masked_scatter(input, mask, source):
    """torch.masked_scatter: where ``mask`` (broadcast with input) is True, the next
    elements of ``source`` in row-major order; elsewhere input."""
    if not isinstance(mask, registry.Tensor) or mask.dtype is not dt.bool_:
        got = _pyname(mask.dtype) if isinstance(mask, registry.Tensor) else type(mask).__name__
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with "
                           f"dtype {got}")
    if source.dtype is not input.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but "
                           f"got {_pyname(input.dtype)} and {_pyname(source.dtype)}")
    shape = broadcast_shapes(input.shape, mask.shape)
    m = mask.expand(*shape).reshape(-1)
    picks = registry.functions.cumsum(m, 0) - 1
    count = int(picks[-1]) + 1 if m.numel() else 0
    if count > source.numel():
        raise RuntimeError(f"Number of elements of source < number of ones in mask "
                           f"({source.numel()} < {count})")
    if count == 0:
        return where(m.reshape(shape), input, input.expand(*shape))
    values = registry.functions.index_select(source.reshape(-1), 0, clamp(picks, min=0))
    return where(m.reshape(shape), values.reshape(shape), input.expand(*shape))


# --- more of torch's math: ldexp, float_power, frexp, polygamma, mvlgamma, infinity tests --


@public(inplace=True, inplace_function=True)
def ldexp(input, other, *, out=None):
    """torch.ldexp: input * 2 ** other (integers give the default float dtype)."""
    return apply(OPS["mul"], input, pow(2.0, other), out=out)


@public(inplace=True)
def float_power(input, exponent, *, out=None):
    """torch.float_power: pow computed in float64; ``float_power_`` needs a float64 self."""
    if out is not None and out.dtype is not dt.float64:
        raise RuntimeError(f"the base given to float_power_ has dtype {_pyname(out.dtype)} but "
                           "the operation's result requires dtype Double")
    a = input.to(dt.float64) if isinstance(input, registry.Tensor) else float(input)
    b = exponent.to(dt.float64) if isinstance(exponent, registry.Tensor) else float(exponent)
    return apply(OPS["pow"], a, b, out=out)


_Frexp = collections.namedtuple("frexp", ["mantissa", "exponent"])
_Frexp.__module__ = "clgraph.return_types"
_Frexp.__repr__ = lambda self: (f"torch.return_types.frexp(\nmantissa={self.mantissa!r},"
                                f"\nexponent={self.exponent!r})")


@public
def frexp(input, *, out=None):
    """torch.frexp: (mantissa, exponent) with input = mantissa * 2 ** exponent, the
    mantissa's magnitude in [0.5, 1), the exponent int32."""
    if not input.dtype.is_floating_point:
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    mantissa, exponent = (None, None) if out is None else out
    return _Frexp(
        apply(OPS["frexp_mantissa"], input, out=mantissa),
        apply(OPS["frexp_exponent"], input, out=exponent))


@public(method=False)
def polygamma(n, input, *, out=None):
    """torch.polygamma: the n-th derivative of digamma: the digamma row for n = 0, else the
    polygamma row (the Hurwitz zeta series, negative x split into positive arguments)."""
    if not isinstance(n, numbers.Integral) or n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    x = _as_float(input, "polygamma")
    r = apply(OPS["digamma"], x) if n == 0 else apply(OPS["polygamma"], x, n=int(n))
    return r if out is None else out.copy_(r)


@public(inplace=True)
def mvlgamma(input, p: int):
    """torch.mvlgamma: the multivariate log-gamma, sum_i lgamma(x - i / 2) plus
    p (p - 1) / 4 log(pi)."""
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    x = _as_float(input, "mvlgamma")
    r = apply(OPS["lgamma"], x)
    for i in range(1, p):
        r = r + apply(OPS["lgamma"], x - i / 2)
    return r + p * (p - 1) / 4 * math.log(math.pi)


def _nan_ignoring(name, keep):
    def fn(input, other, *, out=None):
        """torch.{name}: the {pick} where neither is NaN, else the other one: a where() so the
        gradient goes, as PyTorch's, to input where it is kept (ties included) or other is
        NaN, to other elsewhere."""
        for pos, (arg, v) in enumerate((("input", input), ("other", other)), 1):
            if not isinstance(v, registry.Tensor):
                raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, "
                                f"not {type(v).__name__}")
        take = apply(OPS["logical_or"], apply(OPS[keep], input, other),
                     apply(OPS["isnan"], other))
        return apply(OPS["where"], take, input, other, out=out)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = fn.__doc__.format(name=name, pick="larger" if keep == "ge" else "smaller")
    return public(fn)


fmax = _nan_ignoring("fmax", "ge")
fmin = _nan_ignoring("fmin", "le")


@public
def isposinf(input, *, out=None):
    """torch.isposinf: input == +inf (never for integers)."""
    if not input.dtype.is_floating_point:
        return apply(OPS["ne"], input, input, out=out)
    return apply(OPS["eq"], input, math.inf, out=out)


@public
def isneginf(input, *, out=None):
    """torch.isneginf: input == -inf (never for integers)."""
    if not input.dtype.is_floating_point:
        return apply(OPS["ne"], input, input, out=out)
    return apply(OPS["eq"], input, -math.inf, out=out)


@public
def isreal(input):
    """torch.isreal: True everywhere (clgraph has no complex dtypes)."""
    return input.new_ones(input.shape, dtype=dt.bool_)


@public(method=False)
def rsub(input, other, *, alpha=1):
    """torch.rsub: other - alpha * input."""
    return sub(other, input, alpha=alpha)


# --- activations PyTorch also exposes as torch.<name> (nn.functional wraps them) ----------

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@public(method=False, inplace=True, inplace_function=True)
def threshold(input, threshold, value):
    """torch.threshold: x where x > threshold, else value. On an integer tensor both scalars
    are first converted to its dtype (truncated toward zero), so the result keeps it."""
    kind = getattr(getattr(input, "dtype", None), "kind", None)
    if kind == 0:
        raise NotImplementedError("\"threshold\" not implemented for 'Bool'")
    if kind == 1:
        threshold, value = (integral_scalar(v, input.dtype, "threshold")
                            for v in (threshold, value))
    return where(apply(OPS["gt"], input, threshold), input, value)


def integral_scalar(value, dtype, name: str) -> int:
    """A real scalar converted to the integer ``dtype`` as PyTorch converts a Scalar argument
    of an integer kernel: truncated toward zero, an error where it does not fit."""
    v = int(value)
    info = np.iinfo(dtype.np)
    if not info.min <= v <= info.max:
        raise RuntimeError(f"{name}: value {value} cannot be converted to type {dtype.name} "
                           f"without overflow")
    return v


@public(method=False, inplace=True, inplace_function=True)
def selu(input):
    """torch.selu: scale * (x for x > 0, alpha * (exp(x) - 1) otherwise)."""
    neg = apply(OPS["mul"], apply(OPS["expm1"], input), _SELU_ALPHA)
    return apply(OPS["mul"], where(apply(OPS["gt"], input, 0), input, neg), _SELU_SCALE)


@public(method=False, inplace=True, inplace_function=True)
def celu(input, alpha: float = 1.0):
    """torch.celu: x for x > 0, alpha * (exp(x / alpha) - 1) otherwise."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: celu: alpha must not be 0")
    neg = apply(OPS["mul"], apply(OPS["expm1"], apply(OPS["div"], input, alpha)), alpha)
    return where(apply(OPS["gt"], input, 0), input, neg)


@public
def hardshrink(input, lambd: float = 0.5):
    """torch.hardshrink: x where |x| > lambd, else 0."""
    return where(apply(OPS["gt"], apply(OPS["abs"], input), lambd), input, 0.0)


@public(method=False, inplace=True, inplace_function=True)
def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          generator=None):
    """torch.rrelu: x for x >= 0, x * a otherwise, a drawn uniformly from [lower, upper]
    per element in training, (lower + upper) / 2 in evaluation."""
    if lower > upper:
        raise RuntimeError(f"Lower bound should be less than or equal to the upper bound, got "
                           f"lower={lower} and upper={upper}")
    if training:
        slope = input.detach().new_empty(input.shape).uniform_(lower, upper,
                                                              generator=generator)
    else:
        slope = (lower + upper) / 2
    return where(apply(OPS["ge"], input, 0), input, apply(OPS["mul"], input, slope))


@public
def prelu(input, weight):
    """torch.prelu: x for x > 0, weight * x otherwise; a weight of C elements applies per
    channel (dim 1)."""
    if not isinstance(weight, registry.Tensor):
        raise TypeError(f"prelu(): argument 'weight' (position 2) must be Tensor, not "
                        f"{type(weight).__name__}")
    n = weight.numel()
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                           f"ndim = {weight.ndim}")
    if n != 1:
        if input.ndim == 0:
            raise RuntimeError(f"prelu: a zero-dim input needs a one-element weight, got "
                               f"{n} elements")
        channels = input.shape[1] if input.ndim >= 2 else input.shape[0]
        if n != channels:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {n} and channel size = {channels}.")
        if input.ndim >= 2:
            weight = weight.reshape(n, *([1] * (input.ndim - 2)))
    else:  # one weight for every element, a 0-d input included
        weight = weight.reshape(())
    return where(apply(OPS["gt"], input, 0), input, apply(OPS["mul"], input, weight))


def _incomplete_gamma(name: str, input, other, out):
    """igamma / igammac; as in PyTorch, a backward that needs the gradient in ``input``
    raises (the row's VJP has none)."""
    _check_tensors(name, (input, other))
    r = apply(OPS[name], input, other, out=out)
    if input.requires_grad and r.requires_grad:
        def no_input_gradient(g):
            raise NotImplementedError(f"the derivative for '{name}: input' is not "
                                      "implemented.")
        r.register_hook(no_input_gradient)
    return r


@public(inplace=True)
def igamma(input, other, *, out=None):
    """torch.igamma: the regularized lower incomplete gamma function P(input, other)."""
    return _incomplete_gamma("igamma", input, other, out)


@public(inplace=True)
def igammac(input, other, *, out=None):
    """torch.igammac: the regularized upper incomplete gamma function Q = 1 - P."""
    return _incomplete_gamma("igammac", input, other, out)


@public
def angle(input, *, out=None):
    """torch.angle of a real tensor: pi where negative, 0 elsewhere, NaN kept (integers and
    bools give the default float dtype). The gradient is zero, as PyTorch's."""
    if input.dtype.is_complex:
        r = _complex.angle(input)
        return r if out is None else out.copy_(r)
    x = input if input.dtype.is_floating_point else to_dtype(input, dt.get_default_dtype())
    inner = where(apply(OPS["isnan"], x), x, 0.0)
    return apply(OPS["where"], apply(OPS["lt"], x, 0), math.pi, inner, out=out)


@public(method=False)
def gradient(input, *, spacing=1, dim=None, edge_order=1):
    """torch.gradient: the derivative estimated by second-order central differences inside
    and first- or second-order one-sided ones at the ends, along each dim of ``dim`` (all
    when None); ``spacing``: a number, one per dim, or the points' coordinates (1-d
    tensors)."""
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    if spacing is None:  # PyTorch: unit spacing
        spacing = 1
    if isinstance(spacing, registry.Tensor):
        raise TypeError("gradient(): argument 'spacing' must be a number, or a list or tuple "
                        "of numbers or 1-d tensors, not Tensor")
    if dim is None:
        dims = list(range(input.ndim))
    else:
        dims = [dim] if isinstance(dim, numbers.Integral) else list(dim)
        dims = [d % max(input.ndim, 1) for d in dims]
        for d in dims:
            if dims.count(d) > 1:
                raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            if dim is None:
                raise RuntimeError(
                    "torch.gradient expected spacing to be unspecified, a scalar, or a list of "
                    f"length equal to 'self.dim() = {input.ndim}', since dim argument was not "
                    f"given, but got a list of length {len(spacing)}")
            raise RuntimeError(
                "torch.gradient expected spacing to be unspecified, a scalar or it's spacing "
                "and dim arguments to have the same length, but got a spacing argument of "
                f"length {len(spacing)} and a dim argument of length {len(dims)}.")
        spacings = list(spacing)
    else:
        spacings = [spacing] * len(dims)
    x = input if input.dtype.is_floating_point else to_dtype(input, dt.get_default_dtype())
    for d in dims:
        if x.shape[d] < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least "
                               "edge_order+1")
    return tuple(_derivative(x, d, s, edge_order) for d, s in zip(dims, spacings))


def _derivative(f, d: int, spacing, edge_order: int):
    """One dim of gradient(): numpy.gradient's weights, for uniform or given points."""
    n = f.shape[d]

    def part(start, stop):
        return f.narrow(d, start, stop - start)

    if isinstance(spacing, registry.Tensor):
        shape = [1] * f.ndim
        shape[d] = -1
        h = (spacing[1:] - spacing[:-1]).to(f.dtype).reshape(*shape)
        h1, h2 = h.narrow(d, 0, n - 2), h.narrow(d, 1, n - 2)
        inner = (part(0, n - 2) * (-h2 / (h1 * (h1 + h2))) + part(1, n - 1) * ((h2 - h1) / (
            h1 * h2)) + part(2, n) * (h1 / (h2 * (h1 + h2))))
        a, b = h.narrow(d, 0, 1), h.narrow(d, 1, 1) if n > 2 else None
        y, z = h.narrow(d, n - 2, 1), h.narrow(d, n - 3, 1) if n > 2 else None
        if edge_order == 1:
            first = (part(1, 2) - part(0, 1)) / a
            last = (part(n - 1, n) - part(n - 2, n - 1)) / y
        else:
            first = (part(0, 1) * (-(2 * a + b) / (a * (a + b))) + part(1, 2) * ((a + b) / (
                a * b)) + part(2, 3) * (-a / (b * (a + b))))
            last = (part(n - 3, n - 2) * (y / (z * (z + y))) + part(n - 2, n - 1) * (-(y + z) / (
                z * y)) + part(n - 1, n) * ((2 * y + z) / (y * (z + y))))
    else:
        h = float(spacing)
        inner = (part(2, n) - part(0, n - 2)) / (2 * h)
        if edge_order == 1:
            first = (part(1, 2) - part(0, 1)) / h
            last = (part(n - 1, n) - part(n - 2, n - 1)) / h
        else:
            first = (part(0, 1) * -3 + part(1, 2) * 4 - part(2, 3)) / (2 * h)
            last = (part(n - 3, n - 2) - part(n - 2, n - 1) * 4 + part(n - 1, n) * 3) / (2 * h)
    return registry.functions.cat([first, inner, last], d)
