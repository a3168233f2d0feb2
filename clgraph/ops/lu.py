"""Bunch-Kaufman LDL^T and the error-reporting (``*_ex``) Cholesky: host rows beside
ops/decomp.py's (whose lu_factor row torch.linalg's LU functions use), written in numpy as
LAPACK's unblocked routines (sytf2, sytrs, potf2) compute them, so pivots, ``info`` and the
partial factor of a failed Cholesky are PyTorch's. LDL has no VJP (nor has PyTorch's).
Imports the registry and ops/decomp.py."""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from .decomp import (
    CHOLESKY,
    LU,
    LinAlgError,
    _batches,
    _cholesky_vjp,
    _host,
    _up,
)
from .registry import OpDef, apply, register

# --- LU -------------------------------------------------------------------------------------
# (the factorization is ops/decomp.py's lu_factor row, torch.lu's: getf2, with its VJP)


def permutation_from_pivots(piv: np.ndarray, m: int) -> np.ndarray:
    """The (..., m) row order perm of sequential 1-based row swaps: P^T A = A[perm]."""
    flat = _batches(piv, 1) - 1
    perm = np.tile(np.arange(m), (flat.shape[0], 1))
    rows = np.arange(flat.shape[0])
    for j in range(flat.shape[1]):
        p = flat[:, j]
        a, b = perm[rows, j].copy(), perm[rows, p].copy()
        perm[rows, j], perm[rows, p] = b, a
    return perm.reshape(*piv.shape[:-1], m)


def lu_solve_host(lu, piv, b):
    """X = A^-1 B from a packed LU, by substitution in numpy: a singular U gives the
    infinities and NaNs of dividing by its zero pivots (inv_ex and solve_ex's values)."""
    n = lu.shape[-1]
    perm = permutation_from_pivots(piv, n)
    x = np.take_along_axis(b, perm[..., None], axis=-2).astype(lu.dtype, copy=True)
    with np.errstate(all="ignore"):
        for i in range(n):
            x[..., i, :] -= np.einsum("...j,...jk->...k", lu[..., i, :i], x[..., :i, :])
        for i in reversed(range(n)):
            x[..., i, :] -= np.einsum("...j,...jk->...k", lu[..., i, i + 1:], x[..., i + 1:, :])
            x[..., i, :] /= lu[..., i, i, None]
    return x


class _Int:
    """A stand-in carrying an int dtype and a tensor's device, for _up."""

    def __init__(self, like, dtype):
        self.dtype, self.device = dtype, like.device


# --- Cholesky and inverse that report failures -------------------------------------------------


def _potf2(a):
    """Lower Cholesky of one matrix as potf2: on a leading minor that is not positive
    definite, that diagonal entry keeps its reduced value and the columns to its right the
    input's lower triangle; info is the minor's order."""
    n = a.shape[-1]
    low = np.tril(a).astype(a.dtype, copy=True)
    for j in range(n):
        d = low[j, j] - low[j, :j] @ low[j, :j]
        if not d > 0:
            low[j, j] = d
            return low, j + 1
        low[j, j] = np.sqrt(d)
        low[j + 1:, j] = (low[j + 1:, j] - low[j + 1:, :j] @ low[j, :j]) / low[j, j]
    return low, 0


def _run_cholesky_ex(op, args, attrs, out=None):
    (a,) = args
    h = _host(a)
    flat = _batches(h, 2)
    try:
        low = np.linalg.cholesky(flat)
        info = np.zeros(flat.shape[0], np.int32)
    except np.linalg.LinAlgError:
        res = [_potf2(m) for m in flat]
        low = np.stack([r[0] for r in res]) if res else flat.copy()
        info = np.array([r[1] for r in res], np.int32)
    low = low.reshape(h.shape)
    if attrs.get("upper"):
        low = np.swapaxes(low, -1, -2)
    return _up(low, a), _up(info.reshape(h.shape[:-2]), _Int(a, dt.int32))


CHOLESKY_EX = register(OpDef(
    "linalg_cholesky_ex", "linalg", None, _run_cholesky_ex,
    lambda g, a, out, upper=False: _cholesky_vjp(g, a, out, upper), saves=()))


def cholesky_ex(A, upper=False, check_errors=False):
    low, info = apply(CHOLESKY_EX, A, upper=bool(upper))
    if check_errors:
        _raise_info("linalg.cholesky_ex", info, "The factorization could not be completed "
                    "because the input is not positive-definite (the leading minor of order "
                    "{} is not positive-definite).")
    return low, info


def _raise_info(name, info, message):
    h = _host(info)
    if np.any(h > 0):
        first = int(np.flatnonzero(h.reshape(-1) > 0)[0])
        batch = f"(Batch element {first}): " if h.ndim else ""
        raise LinAlgError(f"{name}: {batch}" + message.format(int(h.reshape(-1)[first])))


def lu_info(A):
    """The info of getrf on A (int32, 0 where A is invertible), without gradients."""
    return apply(LU, A.detach())[2]


# --- LDL^T (Bunch-Kaufman) ----------------------------------------------------------------------

_BK_ALPHA = (1 + 17 ** 0.5) / 8


def _sytf2(a):
    """sytf2 with uplo 'L' on one symmetric matrix: (LD lower, 1-based pivots, negative for
    2 x 2 blocks, info = the first zero diagonal block)."""
    a = np.tril(a).astype(a.dtype, copy=True)
    a = a + np.tril(a, -1).T  # keep both triangles; only the lower one is read
    n = a.shape[0]
    piv = np.zeros(n, np.int32)
    info, k = 0, 0
    while k < n:
        step, absakk = 1, abs(a[k, k])
        imax = k + 1 + int(np.argmax(np.abs(a[k + 1:, k]))) if k < n - 1 else k
        colmax = abs(a[imax, k]) if k < n - 1 else 0.0
        if max(absakk, colmax) == 0 or np.isnan(absakk):
            info = info or k + 1
            kp = k
        else:
            if absakk >= _BK_ALPHA * colmax:
                kp = k
            else:
                rowmax = np.max(np.abs(a[imax, k:imax]))
                if imax < n - 1:
                    rowmax = max(rowmax, np.max(np.abs(a[imax + 1:, imax])))
                if absakk >= _BK_ALPHA * colmax * (colmax / rowmax):
                    kp = k
                elif abs(a[imax, imax]) >= _BK_ALPHA * rowmax:
                    kp = imax
                else:
                    kp, step = imax, 2
            kk = k + step - 1
            if kp != kk:
                a[kp + 1:, [kk, kp]] = a[kp + 1:, [kp, kk]]
                col = a[kk + 1:kp, kk].copy()
                a[kk + 1:kp, kk] = a[kp, kk + 1:kp]
                a[kp, kk + 1:kp] = col
                a[kk, kk], a[kp, kp] = a[kp, kp], a[kk, kk]
                if step == 2:
                    a[k + 1, k], a[kp, k] = a[kp, k], a[k + 1, k]
            if step == 1 and k < n - 1:
                d11 = 1 / a[k, k]
                a[k + 1:, k + 1:] -= d11 * np.outer(a[k + 1:, k], a[k + 1:, k])
                a[k + 1:, k] *= d11
            elif step == 2 and k < n - 2:
                d21 = a[k + 1, k]
                d11, d22 = a[k + 1, k + 1] / d21, a[k, k] / d21
                d21 = 1 / (d11 * d22 - 1) / d21
                wk = d21 * (d11 * a[k + 2:, k] - a[k + 2:, k + 1])
                wkp1 = d21 * (d22 * a[k + 2:, k + 1] - a[k + 2:, k])
                a[k + 2:, k + 2:] -= (np.outer(a[k + 2:, k], wk)
                                      + np.outer(a[k + 2:, k + 1], wkp1))
                a[k + 2:, k], a[k + 2:, k + 1] = wk, wkp1
        if step == 1:
            piv[k] = kp + 1
        else:
            piv[k] = piv[k + 1] = -(kp + 1)
        k += step
    return np.tril(a), piv, info


def _run_ldl(op, args, attrs, out=None):
    (a,) = args
    h = _host(a)
    with np.errstate(all="ignore"):
        res = [_sytf2(m) for m in _batches(h, 2)]
    ld = np.stack([r[0] for r in res]).reshape(h.shape) if res else h.copy()
    piv = np.stack([r[1] for r in res]).reshape(h.shape[:-1]) if res else np.zeros(
        h.shape[:-1], np.int32)
    info = np.array([r[2] for r in res], np.int32).reshape(h.shape[:-2])
    return _up(ld, a), _up(piv, _Int(a, dt.int32)), _up(info, _Int(a, dt.int32))


LDL_FACTOR = register(OpDef("linalg_ldl_factor_ex", "linalg", None, _run_ldl,
                            differentiable=False))


def _sytrs(a, piv, b):
    """sytrs with uplo 'L': solve A X = B for one factorization (a, piv) and b (n, k)."""
    n = a.shape[0]
    b = b.astype(np.result_type(a, b), copy=True)
    k = 0
    while k < n:
        if piv[k] > 0:
            kp = piv[k] - 1
            b[[k, kp]] = b[[kp, k]]
            b[k + 1:] -= np.outer(a[k + 1:, k], b[k])
            b[k] /= a[k, k]
            k += 1
        else:
            kp = -piv[k] - 1
            b[[k + 1, kp]] = b[[kp, k + 1]]
            b[k + 2:] -= np.outer(a[k + 2:, k], b[k]) + np.outer(a[k + 2:, k + 1], b[k + 1])
            akm1k = a[k + 1, k]
            akm1, ak = a[k, k] / akm1k, a[k + 1, k + 1] / akm1k
            denom = akm1 * ak - 1
            bkm1, bk = b[k] / akm1k, b[k + 1] / akm1k
            b[k], b[k + 1] = (ak * bkm1 - bk) / denom, (akm1 * bk - bkm1) / denom
            k += 2
    k = n - 1
    while k >= 0:
        if piv[k] > 0:
            b[k] -= a[k + 1:, k] @ b[k + 1:]
            kp = piv[k] - 1
            b[[k, kp]] = b[[kp, k]]
            k -= 1
        else:
            b[k] -= a[k + 1:, k] @ b[k + 1:]
            b[k - 1] -= a[k + 1:, k - 1] @ b[k + 1:]
            kp = -piv[k] - 1
            b[[k, kp]] = b[[kp, k]]
            k -= 2
    return b


def _run_ldl_solve(op, args, attrs, out=None):
    ld, piv, b = args
    hl, hp, hb = _host(ld), _host(piv), _host(b)
    batch = np.broadcast_shapes(hl.shape[:-2], hp.shape[:-1], hb.shape[:-2])
    n, k = hb.shape[-2:]
    hl = _batches(np.broadcast_to(hl, (*batch, n, n)), 2)
    hp = _batches(np.broadcast_to(hp, (*batch, n)), 1)
    hb = _batches(np.broadcast_to(hb, (*batch, n, k)), 2)
    with np.errstate(all="ignore"):
        x = np.stack([_sytrs(*t) for t in zip(hl, hp, hb)]) if len(hb) else hb.copy()
    return _up(x.reshape(*batch, n, k), b)


LDL_SOLVE = register(OpDef("linalg_ldl_solve", "linalg", None, _run_ldl_solve,
                           differentiable=False))

__all__ = ["CHOLESKY", "CHOLESKY_EX", "LDL_FACTOR", "LDL_SOLVE", "LU", "cholesky_ex",
           "lu_info", "lu_solve_host"]
