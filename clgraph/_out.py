"""PyTorch's ``out=`` keyword for the public functions whose op does not write into a given
tensor itself (reductions, matmuls, sorts, factories): the result is computed, then
written into ``out``. As in PyTorch, ``out`` is resized to the result's shape (with a
warning when it held elements), its dtype must be one the result can be cast to, a tuple
result takes a tuple of tensors, and the call is not differentiable."""

from __future__ import annotations

import functools
import inspect

from . import autograd
from .ops import registry
from .ops.elementwise import can_cast
from .tensor import Tensor


def with_out(fn):
    """``fn`` with PyTorch's keyword-only ``out=`` (``fn`` itself where it takes one)."""
    name, sig = fn.__name__, inspect.signature(fn)
    if "out" in sig.parameters or any(p.kind is p.VAR_KEYWORD
                                      for p in sig.parameters.values()):
        return fn

    @functools.wraps(fn)
    def public(*args, out=None, **kwargs):
        result = fn(*args, **kwargs)
        return result if out is None else write(name, result, out)

    public.__signature__ = sig.replace(parameters=[
        *sig.parameters.values(),
        inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None)])
    return public


def write(name: str, result, out):
    """``result`` (a tensor or a tuple of them) written into ``out``; returns ``out``."""
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise TypeError(f"{name}(): out= must be a tuple of {len(result)} tensors for "
                            f"this call, got {_what(out)}")
        outs = [write(name, r, o) for r, o in zip(result, out)]
        return type(result)(*outs) if hasattr(result, "_fields") else tuple(outs)
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {_what(out)}")
    if result.requires_grad and autograd.is_grad_enabled():
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support "
                           f"automatic differentiation, but one of the arguments requires "
                           f"grad.")
    if not can_cast(result.dtype, out.dtype):
        raise RuntimeError(f"{name}(): result type {result.dtype.scalar_type} can't be cast "
                           f"to the desired output type {out.dtype.scalar_type}")
    if out.device != result.device:
        raise RuntimeError(f"{name}(): Expected out tensor to be on device {result.device}, "
                           f"but got it on {out.device}")
    registry.resize_out(out, result._shape, name)
    return out.copy_(result)


def _what(x) -> str:
    return type(x).__name__
