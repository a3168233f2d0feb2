"""torch.linalg: norms composed of the reductions (ops/reduce.py), so their gradients
follow; the factorizations, inverses and solvers of ops/decomp.py and ops/lu.py (on the
host, gradients on the device); the spectral matrix norms (ord 2, -2, 'nuc') from svdvals;
products, condition numbers and tensor inverses composed of those.

What differs from PyTorch: eig / eigvals compute on the host (gradients on the device); the
inverse that inv_ex and solve_ex return for a singular matrix may hold other infinities or
NaNs than LAPACK's."""

from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from . import dtypes as dt
from .creation import as_tensor as _as_tensor
from .creation import eye as _eye
from .ops import decomp as _decomp
from .ops import lu as _lu
from .ops import reduce as R
from .ops.decomp import EIG as _EIG
from .ops.decomp import LU as _LU
from .ops.decomp import SOLVE_TRIANGULAR as _SOLVE_TRIANGULAR
from .ops.decomp import (  # noqa: F401
    LinAlgError,
    _check_square,
    _named,
    _permutation,
    cross,
    eigh,
    eigvalsh,
    inv,
    lstsq,
    matrix_rank,
    pinv,
    qr,
    solve,
    solve_triangular,
    svdvals,
    vecdot,
)
from .ops.decomp import _check_float as _check_float32_64
from .ops.decomp import linalg_cholesky as cholesky  # noqa: F401
from .ops.decomp import linalg_det as det  # noqa: F401
from .ops.decomp import linalg_svd as svd  # noqa: F401
from .ops.linalg import matmul  # noqa: F401
from .ops.registry import apply as _apply
from .ops.registry import functions as _f
from .ops.registry import public
from .shapes import wrap_dim

# torch.linalg names the matrix A where the top-level functions (ops/decomp.py) say input


def matrix_exp(A):
    return _decomp.matrix_exp(A)


def matrix_power(A, n: int, *, out=None):
    return _decomp.matrix_power(A, n, out=out)


def slogdet(A, *, out=None):
    return _decomp.slogdet(A, out=out)


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
    return R.norm(x, ord, dim, keepdim)  # ord 0 too: the count, with a zero gradient


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
        if ord == "nuc":
            out = s.sum(-1)
        elif ord == 2:
            # PyTorch's largest singular value of an empty matrix is 0 (the smallest raises)
            out = R.amax(s, -1) if s.shape[-1] else s.new_zeros(s.shape[:-1])
        else:
            out = R.amin(s, -1)
        return out.unsqueeze(min(d0, d1)).unsqueeze(max(d0, d1)) if keepdim else out
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    # 1 / -1: the largest / smallest column sum of |A|; inf / -inf: of row sums
    summed, picked = (d0, d1) if abs(ord) == 1 else (d1, d0)
    sums = R.sum(_f.abs(A), summed, True)
    if ord > 0 and sums.shape[picked] == 0:  # PyTorch: 0, as the 2-norm's
        out = sums.new_zeros(sums.shape[:picked] + (1,) + sums.shape[picked + 1:])
    else:
        out = (R.amax if ord > 0 else R.amin)(sums, picked, True)
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


# --- factorizations that report failures: *_ex, LU, LDL ----------------------------------------


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False, out=None):
    """torch.linalg.cholesky_ex: (L, info), info the order of the first leading minor that
    is not positive-definite (0 if none), L then the partial factor LAPACK leaves."""
    _check_square("linalg.cholesky_ex", A)
    _check_float32_64("linalg.cholesky_ex", A)
    low, info = _lu.cholesky_ex(A, upper, check_errors)
    return _named("linalg_cholesky_ex", ("L", "info"))(low, info)


def _ex_info(name, A, check_errors):
    info = _lu.lu_info(A)
    if check_errors:
        _lu._raise_info(name, info, "The diagonal element {} is zero, the inversion could not "
                        "be completed because the input matrix is singular.")
    return info


def _singular_aware(A, B, info, good):
    """good(A', B) where info is 0 (A' = A there, the identity elsewhere, so gradients flow
    to the invertible matrices), the host substitution's infinities where A is singular."""
    if not bool((info > 0).any()):
        return good(A, B)
    mask = (info > 0).reshape(*info.shape, 1, 1)
    safe = _f.where(mask, _eye(A.shape[-1], dtype=A.dtype, device=A.device), A)
    lu, piv, _ = _apply(_LU, A.detach())
    bad = _lu.lu_solve_host(lu.numpy(), piv.numpy(),
                            B.detach().expand(*A.shape[:-2], *B.shape[-2:]).numpy())
    return _f.where(mask, _as_tensor(bad, dtype=A.dtype, device=A.device), good(safe, B))


def inv_ex(A, *, check_errors: bool = False, out=None):
    """torch.linalg.inv_ex: (inverse, info), info getrf's (the first zero pivot)."""
    _check_square("linalg.inv_ex", A)
    _check_float32_64("linalg.inv_ex", A)
    info = _ex_info("linalg.inv_ex", A, check_errors)
    identity = _eye(A.shape[-1], dtype=A.dtype, device=A.device)
    inverse = _singular_aware(A, identity, info, lambda a, b: inv(a))
    return _named("linalg_inv_ex", ("inverse", "info"))(inverse, info)


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False, out=None):
    """torch.linalg.solve_ex: (result, info)."""
    _check_square("linalg.solve_ex", A)
    _check_float32_64("linalg.solve_ex", A, B)
    info = _ex_info("linalg.solve_ex", A, check_errors)
    if not bool((info > 0).any()):
        return _named("linalg_solve_ex", ("result", "info"))(solve(A, B, left=left), info)
    vec = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    b = B.unsqueeze(-1) if vec else B
    if left:
        r = _singular_aware(A, b, info, lambda a, bb: solve(a, bb))
    else:
        r = _singular_aware(A.mT, b.mT, info, lambda a, bb: solve(a, bb)).mT
    return _named("linalg_solve_ex", ("result", "info"))(r.squeeze(-1) if vec else r, info)


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False, out=None):
    """torch.linalg.lu_factor_ex: (LU, pivots, info): partial pivoting (getrf), pivots
    1-based int32, info the first zero pivot."""
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.lu_factor: Expected tensor with 2 or more "
                           f"dimensions. Got size: {list(A.shape)} instead")
    _check_float32_64("linalg.lu_factor", A)
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the "
                           "CPU")
    lu, piv, info = _apply(_LU, A)
    if check_errors:
        _lu._raise_info("torch.linalg.lu_factor_ex", info, "U[{0},{0}] is zero.")
    return _named("linalg_lu_factor_ex", ("LU", "pivots", "info"))(lu, piv, info)


def lu_factor(A, *, pivot: bool = True, out=None):
    """torch.linalg.lu_factor: (LU, pivots); a zero pivot of a square matrix raises, as
    PyTorch's."""
    lu, piv, info = lu_factor_ex(A, pivot=pivot)
    if A.shape[-1] == A.shape[-2]:
        h = info.numpy()
        if (h > 0).any():
            first = int(h.reshape(-1)[h.reshape(-1) > 0][0])
            batch = (f"(Batch element {int(np.flatnonzero(h.reshape(-1) > 0)[0])}): "
                     if h.ndim else "")
            raise RuntimeError(f"torch.linalg.lu_factor: {batch}U[{first},{first}] is zero and "
                               "using it on lu_solve would result in a division by zero. If "
                               "you still want to perform the factorization, consider "
                               "calling linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    return _named("linalg_lu_factor", ("LU", "pivots"))(lu, piv)


def _unpack(lu, piv):
    """(P, L, U) of a packed LU: L unit lower (m, k), U upper (k, n)."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    low = lu[..., :, :k].tril(-1) + _eye(m, k, dtype=lu.dtype, device=lu.device)
    up = lu[..., :k, :].triu()
    return _permutation(piv, m, lu), low, up


def lu(A, *, pivot: bool = True, out=None):
    """torch.linalg.lu: (P, L, U) with A = P L U."""
    packed, piv, _ = lu_factor_ex(A, pivot=pivot)
    return _named("linalg_lu", ("P", "L", "U"))(*_unpack(packed, piv))


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False, out=None):
    """torch.linalg.lu_solve: solve A X = B (A^T X = B with ``adjoint``, X A = B with
    ``left=False``) from lu_factor's output, by two triangular solves; differentiable in LU
    and B."""
    _check_float32_64("linalg.lu_solve", LU, B)
    n = LU.shape[-1]
    if LU.shape[-2] != n:
        raise RuntimeError("linalg.lu_solve: Expected LU to be square, but got "
                           f"{LU.shape[-2]} by {n} matrices")
    rows = B.shape[-2] if left else B.shape[-1]
    if B.ndim < 2 or rows != n:
        raise RuntimeError("linalg.lu_solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and "
                           f"{B.shape[-2] if B.ndim > 1 else '?'}x{B.shape[-1]})")
    if pivots.dtype is not dt.int32:
        raise RuntimeError("linalg.lu_solve: Expected pivots to be int32, got "
                           f"{pivots.dtype.scalar_type}")
    p, low, up = _unpack(LU, pivots)
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return _out(lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT, out)
    if not adjoint:  # A = P L U: X = U^-1 L^-1 P^T B
        y = _apply(_SOLVE_TRIANGULAR, low, p.mT @ B, upper=False, unitriangular=True)
        return _out(_apply(_SOLVE_TRIANGULAR, up, y, upper=True), out)
    # A^T = U^T L^T P^T: X = P L^-T U^-T B
    y = _apply(_SOLVE_TRIANGULAR, up.mT, B, upper=False)
    return _out(p @ _apply(_SOLVE_TRIANGULAR, low.mT, y, upper=True, unitriangular=True), out)


def _out(r, out):
    return r if out is None else out.copy_(r)


def ldl_factor_ex(A, *, hermitian: bool = False, check_errors: bool = False, out=None):
    """torch.linalg.ldl_factor_ex: (LD, pivots, info) of the Bunch-Kaufman factorization of
    the lower triangle (sytrf's format: 2 x 2 blocks have negative pivots)."""
    _check_square("torch.linalg.ldl_factor_ex", A)
    _check_float32_64("torch.linalg.ldl_factor_ex", A)
    ld, piv, info = _apply(_lu.LDL_FACTOR, A)
    if check_errors:
        _lu._raise_info("torch.linalg.ldl_factor_ex", info, "The factorization could not be "
                        "completed because the input is singular (the diagonal element {} "
                        "is zero).")
    return _named("linalg_ldl_factor_ex", ("LD", "pivots", "info"))(ld, piv, info)


def ldl_factor(A, *, hermitian: bool = False, out=None):
    """torch.linalg.ldl_factor: (LD, pivots)."""
    ld, piv, _ = ldl_factor_ex(A, hermitian=hermitian)
    return _named("linalg_ldl_factor", ("LD", "pivots"))(ld, piv)


def ldl_solve(LD, pivots, B, *, hermitian: bool = False, out=None):
    """torch.linalg.ldl_solve: solve A X = B from ldl_factor's output (no gradient, as
    PyTorch)."""
    _check_float32_64("torch.linalg.ldl_solve", LD, B)
    if B.ndim < 2 or B.shape[-2] != LD.shape[-1]:
        raise RuntimeError("torch.linalg.ldl_solve: Incompatible shapes of A and B for the "
                           f"equation AX = B ({LD.shape[-2]}x{LD.shape[-1]} and "
                           f"{B.shape[-2] if B.ndim > 1 else '?'}x{B.shape[-1]})")
    if pivots.dtype is not dt.int32:
        raise RuntimeError("torch.linalg.ldl_solve: Expected pivots to be integers. Got "
                           f"{pivots.dtype.scalar_type}")
    return _out(_apply(_lu.LDL_SOLVE, LD, pivots, B), out)


# --- products, condition number, tensor inverses -------------------------------------------------


def householder_product(A, tau, *, out=None):
    """torch.linalg.householder_product: the first n columns of H_1 ... H_k, H_i = I - tau_i
    v_i v_i^T with v_i column i of A below the diagonal and 1 on it; composed of matmuls, so
    differentiable in A and tau."""
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.householder_product: input must have at least 2 "
                           "dimensions.")
    m, n = A.shape[-2:]
    k = tau.shape[-1] if tau.ndim else 1
    if m < n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-2] must be greater "
                           "than or equal to input.shape[-1]")
    if n < k:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-1] must be greater "
                           "than or equal to tau.shape[-1]")
    if tau.ndim != A.ndim - 1:
        raise RuntimeError("torch.linalg.householder_product: Expected tau to have one "
                           f"dimension less than input, but got tau.ndim equal to {tau.ndim} "
                           f"and input.ndim is equal to {A.ndim}")
    v = A.tril(-1) + _eye(m, n, dtype=A.dtype, device=A.device)
    q = _eye(m, dtype=A.dtype, device=A.device).expand(*A.shape[:-2], m, m)
    for i in range(k):
        vi = v[..., :, i:i + 1]
        q = q - (q @ vi) @ (vi.mT * tau[..., i:i + 1].unsqueeze(-1))
    if k == 0:  # no reflectors: the identity, still on A's graph (zero gradient) as PyTorch's
        q = _f.where(True, q[..., :, :n], A)
    return _out(q[..., :, :n], out)


def cond(A, p=None, *, out=None):
    """torch.linalg.cond: s_max / s_min (p None or 2; s_min / s_max for -2) from svdvals,
    else norm(A, p) * norm(inv(A), p) for square A (inf where A is singular)."""
    _check_float(A, "linalg.cond")
    if A.ndim < 2:
        raise RuntimeError("linalg.cond: The input tensor A must have at least 2 dimensions.")
    empty = A.shape[-2] == 0 or A.shape[-1] == 0  # PyTorch's condition number is then 0
    if p in (None, 2, -2):
        if empty:
            return _out(A.new_zeros(A.shape[:-2]), out)
        s = svdvals(A)
        big, small = R.amax(s, -1), R.amin(s, -1)
        return _out(small / big if p == -2 else big / small, out)
    if p not in ("fro", "nuc", 1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.cond(ord={p}): A must be batches of square matrices, but "
                           f"they are {A.shape[-2]} by {A.shape[-1]} matrices")
    if empty:
        return _out(A.new_zeros(A.shape[:-2]), out)
    inverse, info = inv_ex(A)
    r = matrix_norm(A, p) * matrix_norm(inverse, p)
    return _out(_f.where(info > 0, math.inf, r), out)


def eig(A, *, out=None):
    """torch.linalg.eig: complex eigenvalues and unit-norm eigenvectors (LAPACK geev on the
    host). The gradient is PyTorch's; it does not check that the loss is invariant to the
    eigenvectors' phases."""
    _check_square("linalg.eig", A)
    if A.dtype not in (dt.float32, dt.float64, dt.complex64, dt.complex128):
        raise RuntimeError(f"linalg.eig: Expected a floating point or complex tensor as input. "
                           f"Got {A.dtype.scalar_type}")
    w, v = _apply(_EIG, A)
    res = _named("eig", ("eigenvalues", "eigenvectors"))(w, v)
    if out is not None:
        out[0].copy_(w)
        out[1].copy_(v)
        return _named("eig", ("eigenvalues", "eigenvectors"))(*out)
    return res


def eigvals(A, *, out=None):
    """torch.linalg.eigvals: the complex eigenvalues."""
    return _out(eig(A).eigenvalues, out)


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """torch.linalg.diagonal: A.diagonal(offset, dim1, dim2) with matrix defaults."""
    return _f.diagonal(A, offset, dim1, dim2)


def multi_dot(tensors, *, out=None):
    """torch.linalg.multi_dot: the chained product in the cheapest order (the classic
    matrix-chain program on the shapes); a 1-D first or last operand is a row or column
    vector, dropped from the result."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        allowed = (1, 2) if i in (0, len(tensors) - 1) else (2,)
        if t.ndim not in allowed:
            which = ("first" if i == 0 else "last" if i == len(tensors) - 1 else None)
            if which:
                raise RuntimeError(f"multi_dot(): the {which} tensor must be 1D or 2D but got "
                                   f"{t.ndim}D")
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {t.ndim}D")
    first_vec, last_vec = tensors[0].ndim == 1, tensors[-1].ndim == 1
    mats = list(tensors)
    if first_vec:
        mats[0] = mats[0].unsqueeze(0)
    if last_vec:
        mats[-1] = mats[-1].unsqueeze(-1)
    for i in range(len(mats) - 1):
        if mats[i].shape[-1] != mats[i + 1].shape[-2]:
            raise RuntimeError(f"multi_dot(): tensors {i} and {i + 1} with shapes "
                               f"{list(tensors[i].shape)} and {list(tensors[i + 1].shape)} "
                               "cannot be multiplied")
    dims = [mats[0].shape[0]] + [t.shape[1] for t in mats]
    n = len(mats)
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k

    def chain(i, j):
        if i == j:
            return mats[i]
        k = split[i][j]
        return chain(i, k) @ chain(k + 1, j)

    r = chain(0, n - 1)
    if first_vec:
        r = r.squeeze(0)
    if last_vec:
        r = r.squeeze(-1)
    return _out(r, out)


def tensorinv(A, ind: int = 2, *, out=None):
    """torch.linalg.tensorinv: the inverse of A seen as a prod(shape[:ind]) square matrix,
    shaped shape[ind:] + shape[:ind]."""
    if not isinstance(ind, numbers.Integral) or ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    rows, cols = math.prod(A.shape[:ind]), math.prod(A.shape[ind:])
    if rows != cols:
        raise RuntimeError("Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {cols} != {rows}")
    r = inv(A.reshape(rows, cols))
    return _out(r.reshape(*A.shape[ind:], *A.shape[:ind]), out)


def tensorsolve(A, B, dims=None, *, out=None):
    """torch.linalg.tensorsolve: X with tensordot(A, X, X.ndim) = B; ``dims`` of A move to
    the end first."""
    if dims is not None:
        dims = [wrap_dim(d, A.ndim) for d in dims]
        rest = [d for d in range(A.ndim) if d not in dims]
        A = A.permute(*rest, *dims)
    # as PyTorch: X has A's last A.ndim - B.ndim dims, and A is read as a square matrix of
    # B.numel() rows (A's leading dims need not be B's shape, only hold as many entries)
    rows = B.numel()
    cols = math.prod(A.shape[B.ndim:])
    if rows != cols:
        raise RuntimeError("Expected self to satisfy the requirement "
                           "prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), "
                           f"but got {cols} != {rows}")
    if A.numel() != rows * cols:
        raise RuntimeError(f"shape '[{rows}, {cols}]' is invalid for input of size {A.numel()}")
    x = solve(A.reshape(rows, cols), B.reshape(rows))
    return _out(x.reshape(*A.shape[B.ndim:]), out)


def vander(x, *, N=None):
    """torch.linalg.vander: the powers x^0 .. x^(N-1) along a new last dim (increasing, as
    PyTorch's, unlike numpy's default), by repeated products (exact gradients at 0)."""
    if x.dtype in (dt.bool_, dt.float16, dt.bfloat16):
        raise RuntimeError(f"linalg.vander supports floating point, complex, and integer "
                           f"tensors, but got {x.dtype.scalar_type}")
    if not x.dtype.is_floating_point and not x.dtype.is_complex:
        x = x.to(dt.int64)  # integer powers in int64, as PyTorch's
    if x.ndim == 0:  # PyTorch: one point
        x = x.reshape(1)
    n = x.shape[-1] if N is None else N
    if n <= 1:
        raise RuntimeError("N must be greater than 1.")
    cols = [x.new_ones(x.shape)]
    for _ in range(1, n):
        cols.append(cols[-1] * x)
    return _f.stack(cols, -1)


__all__ = ["LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal",
           "eigh", "eigvalsh", "householder_product", "inv", "inv_ex", "ldl_factor",
           "ldl_factor_ex", "ldl_solve", "lstsq", "lu", "lu_factor", "lu_factor_ex", "lu_solve",
           "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot",
           "norm", "pinv", "qr", "slogdet", "solve", "solve_ex", "solve_triangular", "svd",
           "svdvals", "tensorinv", "tensorsolve", "vander", "vecdot", "vector_norm"]


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


@public
def orgqr(input, tau):
    """torch.orgqr: linalg.householder_product."""
    return householder_product(input, tau)
