"""torch.linalg: norms composed of the reductions (ops/reduce.py), so their gradients
follow; the factorizations, inverses and solvers of ops/decomp.py (LAPACK on the host,
gradients on the device); the spectral matrix norms (ord 2, -2, 'nuc') from svdvals."""

from __future__ import annotations

import builtins
import math
import numbers

from . import dtypes as dt
from .ops import reduce as R
from .ops.decomp import (  # noqa: F401
    LinAlgError,
    cross,
    eigh,
    eigvalsh,
    inv,
    lstsq,
    matrix_exp,
    matrix_power,
    matrix_rank,
    pinv,
    qr,
    slogdet,
    solve,
    solve_triangular,
    svdvals,
    vecdot,
)
from .ops.decomp import linalg_cholesky as cholesky  # noqa: F401
from .ops.decomp import linalg_det as det  # noqa: F401
from .ops.decomp import linalg_svd as svd  # noqa: F401
from .ops.linalg import matmul  # noqa: F401
from .ops.registry import functions as _f
from .ops.registry import public
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
    """torch.linalg.matrix_norm: ord 'fro', 'nuc', 1, -1, 2, -2, inf or -inf over the two
    dims ``dim``."""
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
        # the sum, largest or smallest of the singular values of the (d0, d1) matrices
        m = A.movedim((d0, d1), (-2, -1))
        s = svdvals(m)
        out = s.sum(-1) if ord == "nuc" else (R.amax(s, -1) if ord == 2 else R.amin(s, -1))
        return out.unsqueeze(min(d0, d1)).unsqueeze(max(d0, d1)) if keepdim else out
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


__all__ = ["LinAlgError", "cholesky", "cross", "det", "eigh", "eigvalsh", "inv", "lstsq",
           "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "norm", "pinv",
           "qr", "slogdet", "solve", "solve_triangular", "svd", "svdvals", "vecdot",
           "vector_norm"]


# torch.* spellings of the matrix norms (public functions; not methods)


@public(method=False)
def nuclear_norm(input, dim=None, keepdim: bool = False, *, out=None):
    """torch.nuclear_norm: the sum of singular values over ``dim`` (the last two dims of a
    matrix when None)."""
    if dim is None:
        if input.ndim != 2:
            raise RuntimeError(f"Expected a tensor with 2 dimensions, but got a tensor with "
                               f"{input.ndim} dimensions instead.")
        dim = (0, 1)
    r = matrix_norm(input, "nuc", tuple(dim), keepdim)
    return r if out is None else out.copy_(r)


@public(method=False)
def frobenius_norm(input, dim, keepdim: bool = False, *, out=None):
    """torch.frobenius_norm: sqrt of the sum of squares over ``dim`` (one or two dims)."""
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    if len(dims) > 2:
        raise RuntimeError(f"Expected at most 2 dimensions, but got {len(dims)} dimensions "
                           "instead.")
    _check_float(input, "frobenius_norm")
    r = R.norm(input, 2, dims, keepdim)
    return r if out is None else out.copy_(r)
