"""torch.linalg: norms composed of the reductions (ops/reduce.py), so their gradients
follow. Matrix norms that need singular values (ord 2, -2, 'nuc') are not provided."""

from __future__ import annotations

import builtins
import math
import numbers

from . import dtypes as dt
from .ops import reduce as R
from .ops.registry import functions as _f
from .shapes import wrap_dim


def _check_float(x, name: str):
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. "
                           f"Got {x.dtype.scalar_type}")


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None):
    """torch.linalg.vector_norm: ord a number, inf or -inf, over ``dim`` (all dims when
    None, the input seen flat)."""
    _check_float(x, "linalg.vector_norm")
    if dtype is not None:
        x = x.to(dt.as_dtype(dtype))
    if isinstance(ord, str) or not isinstance(ord, numbers.Real):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    if isinstance(dim, numbers.Integral):
        dim = (dim,)
    a = _f.abs(x)
    if ord == math.inf:
        return R.amax(a, () if dim is None else dim, keepdim)
    if ord == -math.inf:
        return R.amin(a, () if dim is None else dim, keepdim)
    if ord == 0:
        return R.sum(_f.ne(x, 0).to(x.dtype), dim, keepdim)
    return R.norm(x, ord, dim, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None):
    """torch.linalg.matrix_norm: ord 'fro', 1, -1, inf or -inf over the two dims ``dim``."""
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 "
                           "dimensions.")
    _check_float(A, "linalg.matrix_norm")
    if dtype is not None:
        A = A.to(dt.as_dtype(dtype))
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}")
    d0, d1 = wrap_dim(dim[0], A.ndim), wrap_dim(dim[1], A.ndim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, "
                           f"{dim[1]})")
    if ord == "fro":
        return R.norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        raise NotImplementedError(f"linalg.matrix_norm: ord={ord!r} needs singular values, "
                                  "which clgraph does not compute")
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    # 1 / -1: the largest / smallest column sum of |A|; inf / -inf: of row sums
    summed, picked = (d0, d1) if abs(ord) == 1 else (d1, d0)
    sums = R.sum(_f.abs(A), summed, True)
    pick = R.amax if ord > 0 else R.amin
    out = pick(sums, picked, True)
    return out if keepdim else out.squeeze((d0, d1))


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None):
    """torch.linalg.norm: a vector norm over one dim (or the flattened input when ord and
    dim are None), a matrix norm over two."""
    if isinstance(dim, numbers.Integral) and not isinstance(dim, builtins.bool):
        dim = (dim,)
    if dim is None:
        if ord is None:
            return vector_norm(A, 2, None, keepdim, dtype=dtype)
        if A.ndim not in (1, 2):
            raise RuntimeError("linalg.norm: If dim is not specified but ord is, the input "
                               f"must be 1D or 2D. Got {A.ndim}D.")
        dim = tuple(range(A.ndim))
    dim = tuple(dim)
    if len(dim) == 1:
        if isinstance(ord, str):
            raise RuntimeError(f"linalg.norm: ord={ord!r} is a matrix norm; it needs two dims")
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got "
                       f"{list(dim)}")


__all__ = ["matrix_norm", "norm", "vector_norm"]
