"""Matrix decompositions and inverses (torch.linalg's inv, det, slogdet, solve,
solve_triangular, cholesky, qr, eigh, svd; torch.inverse, det, logdet, svd, ...): one op
row each, computed on the host with numpy's LAPACK (a read of the input and an upload of
the results, batched over leading dims), with VJPs written in clgraph ops, so gradients
(and gradients of gradients) run on the device like any other. These factorizations are
sequential per matrix and are used on small matrices; a device kernel would not beat
LAPACK there. Under cg.compile the host read makes a signature run eagerly."""

from __future__ import annotations

import collections
import warnings

import numpy as np

from .. import dtypes as dt
from ..creation import _from_host, eye, zeros
from ..shapes import broadcast_shapes
from . import registry
from .linalg import matmul
from .registry import OpDef, apply, public, register


class LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: a matrix the factorization cannot handle (singular, not
    positive-definite), named with its batch element."""


def _host(t) -> np.ndarray:
    return t.detach().numpy()


def _up(arr, like):
    arr = np.asarray(arr, dtype=like.dtype.np)
    if not arr.flags.c_contiguous:
        arr = arr.copy()
    return _from_host(arr, like.dtype, like.device)


def _check_square(name: str, A) -> None:
    if A.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor A must have at least 2 dimensions.")
    if A._shape[-1] != A._shape[-2]:
        raise RuntimeError(f"{name}: A must be batches of square matrices, but they are "
                           f"{A._shape[-2]} by {A._shape[-1]} matrices")


def _check_float(name: str, *ts) -> None:
    for t in ts:
        if t.dtype not in (dt.float32, dt.float64):
            raise RuntimeError(f"{name}: Expected a floating point tensor as input (float32 or "
                               f"float64). Got {t.dtype.scalar_type}")


def _first_bad(mask: np.ndarray) -> str:
    """' (batch element i)' for the first True in a batch mask, '' for a single matrix."""
    if mask.ndim == 0:
        return ""
    return f" (batch element {int(np.flatnonzero(mask.reshape(-1))[0])})"


_NAMED: dict = {}


def _named(name: str, fields):
    """torch.return_types.<name>: a named tuple with PyTorch's fields and repr."""
    cls = _NAMED.get(name)
    if cls is None:
        cls = _NAMED[name] = collections.namedtuple(name, fields)
        cls.__repr__ = lambda self: (f"torch.return_types.{name}(\n" + ",\n".join(
            f"{f}={v!r}" for f, v in zip(fields, self)) + ")")
        cls.__module__ = "clgraph.return_types"
    return cls


def _batches(a: np.ndarray, core: int) -> np.ndarray:
    """``a`` as (number of batch elements, *last ``core`` dims): reshape(-1, ...) cannot
    infer the count when a core dim is 0."""
    return a.reshape(int(np.prod(a.shape[:a.ndim - core], dtype=np.int64)),
                     *a.shape[a.ndim - core:])


def _zero_gradient(value, source):
    """``value`` on the graph of ``source`` (which broadcasts to it) with a zero gradient:
    PyTorch's outputs that require grad but do not vary (a matrix's 0th power, a real
    determinant's sign). where() rather than 0 * source, which is NaN at infinities."""
    return registry.functions.where(True, value, source)


def _mT(x):
    return x.transpose(-2, -1)


def _run_host(fn):
    """A runner from a numpy function of the host inputs returning host results."""
    def run(op, args, attrs, out=None):
        like = next(a for a in args if isinstance(a, registry.Tensor))
        res = fn(*[_host(a) if isinstance(a, registry.Tensor) else a for a in args], **attrs)
        if isinstance(res, tuple):
            return tuple(_up(r, like) for r in res)
        return _up(res, like)
    return run


# --- inverse, determinant, solve -------------------------------------------------------------


def _inv(a):
    sing = np.linalg.matrix_rank(a) < a.shape[-1] if a.size else np.zeros(a.shape[:-2], bool)
    if np.any(sing):
        raise LinAlgError(f"linalg.inv: The matrix is singular{_first_bad(np.asarray(sing))}, "
                          "the inversion could not be completed")
    return np.linalg.inv(a)


INV = register(OpDef(
    "linalg_inv", "linalg", np.linalg.inv, _run_host(_inv),
    lambda g, a, out: (-(_mT(out) @ g @ _mT(out)),), saves=()))


def _slogdet(a):
    sign, logabs = np.linalg.slogdet(a)
    return sign, logabs


def _slogdet_vjp(gs, a, out):
    _, g = gs
    # d log|det A| = tr(A^-1 dA): the gradient is g * A^-T
    return ((g[..., None, None] * _mT(apply(INV, a))),)


SLOGDET = register(OpDef("linalg_slogdet", "linalg", np.linalg.slogdet, _run_host(_slogdet),
                         _slogdet_vjp, saves=(0,), saves_out=False))


def _solve(a, b, left=True):
    if not left:
        return np.swapaxes(np.linalg.solve(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2)),
                           -1, -2)
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise LinAlgError("linalg.solve: The solver failed because the input matrix is "
                          "singular.") from None


def _solve_vjp(g, a, b, out, left=True):
    if left:  # X = A^-1 B: gB = A^-T g, gA = -gB X^T
        gb = apply(SOLVE, _mT(a), g, left=True)
        return -(gb @ _mT(out)), gb
    gb = apply(SOLVE, _mT(a), g, left=False)  # X = B A^-1
    return -(_mT(out) @ gb), gb


SOLVE = register(OpDef("linalg_solve", "linalg", np.linalg.solve, _run_host(_solve),
                       _solve_vjp, saves=(0,)))


def _solve_triangular(a, b, upper, left=True, unitriangular=False):
    a = np.triu(a) if upper else np.tril(a)
    if unitriangular:
        idx = np.arange(a.shape[-1])
        a = a.copy()
        a[..., idx, idx] = 1
    return _solve(a, b, left)


def _solve_triangular_vjp(g, a, b, out, upper, left=True, unitriangular=False):
    at = _mT(a)
    gb = apply(SOLVE_TRIANGULAR, at, g, upper=not upper, left=left,
               unitriangular=unitriangular)
    ga = -(gb @ _mT(out)) if left else -(_mT(out) @ gb)
    ga = ga.triu() if upper else ga.tril()
    if unitriangular:
        ga = ga.tril(-1) if not upper else ga.triu(1)
    return ga, gb


SOLVE_TRIANGULAR = register(OpDef(
    "linalg_solve_triangular", "linalg", None, _run_host(_solve_triangular),
    _solve_triangular_vjp, saves=(0,)))


# --- Cholesky, QR, symmetric eigenproblem, SVD -----------------------------------------------


def _cholesky(a, upper=False):
    try:
        low = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        ok = np.array([np.all(np.linalg.eigvalsh(m) > 0)
                       for m in _batches(a, 2)]).reshape(a.shape[:-2])
        raise LinAlgError(
            f"linalg.cholesky: The factorization could not be completed because the input is "
            f"not positive-definite{_first_bad(~ok)}.") from None
    return np.swapaxes(low, -1, -2) if upper else low


def _phi(x):
    """The lower triangle with its diagonal halved."""
    return x.tril() - 0.5 * x.tril().triu()


def _cholesky_vjp(g, a, out, upper=False):
    low, gl = (_mT(out), _mT(g)) if upper else (out, g)
    # A = L L^T: S = L^-T Phi(L^T gL) L^-1, gA = (S + S^T) / 2
    p = _phi(_mT(low) @ gl)
    x = apply(SOLVE_TRIANGULAR, _mT(low), p, upper=True)  # L^-T P
    s = _mT(apply(SOLVE_TRIANGULAR, _mT(low), _mT(x), upper=True))  # L^-T P L^-1
    return (0.5 * (s + _mT(s)),)


CHOLESKY = register(OpDef("linalg_cholesky", "linalg", np.linalg.cholesky,
                          _run_host(_cholesky), _cholesky_vjp, saves=()))


def _qr(a, mode="reduced"):
    q, r = np.linalg.qr(a, mode="complete" if mode == "complete" else "reduced")
    return q, r


def _qr_vjp(gs, a, out, mode="reduced"):
    gq, gr = gs
    q, r = out
    m, n = a._shape[-2:]
    if mode == "complete" and m > n:
        raise RuntimeError("The QR decomposition is not differentiable when mode='complete' "
                           "and nrows > ncols.")
    if m < n:
        # A = [X | Y] with X = Q R1 square and R2 = Q^T Y: Y's gradient is Q gR2, and R2
        # adds Y gR2^T to Q's gradient before the square case
        y, gr2 = a[..., :, m:], gr[..., :, m:]
        gx = _qr_square_or_tall(gq + y @ _mT(gr2), gr[..., :, :m], q, r[..., :, :m])
        return (registry.functions.cat([gx, q @ gr2], -1),)
    return (_qr_square_or_tall(gq, gr, q, r),)


def _qr_square_or_tall(gq, gr, q, r):
    """m >= n: M = R gR^T - gQ^T Q; gA = (gQ + Q copyltu(M)) R^-T."""
    mm = r @ _mT(gr) - _mT(gq) @ q
    copyltu = mm.tril(-1) + _mT(mm.tril(-1)) + mm.tril().triu()
    rhs = gq + q @ copyltu
    return _mT(apply(SOLVE_TRIANGULAR, r, _mT(rhs), upper=True))


QR = register(OpDef("linalg_qr", "linalg", None, _run_host(_qr), _qr_vjp, saves=()))


def _eigh(a, UPLO="L"):
    w, v = np.linalg.eigh(a, UPLO=UPLO)
    return w, v


def _off_diagonal_inverse_gaps(w):
    """F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it."""
    gap = w.unsqueeze(-2) - w.unsqueeze(-1)
    n = w._shape[-1]
    diag = eye(n, dtype=w.dtype, device=w.device)
    return (1 - diag) / (gap + diag)


def _eigh_vjp(gs, a, out, UPLO="L"):
    gw, gv = gs
    w, v = out
    inner = (_mT(v) @ gv) * _off_diagonal_inverse_gaps(w)
    inner = inner + _diag(gw)
    ga = v @ inner @ _mT(v)
    return (0.5 * (ga + _mT(ga)),)


def _diag(x):
    """Batched diagonal matrices from vectors (..., n) -> (..., n, n)."""
    n = x._shape[-1]
    return x.unsqueeze(-1) * eye(n, dtype=x.dtype, device=x.device)


EIGH = register(OpDef("linalg_eigh", "linalg", None, _run_host(_eigh), _eigh_vjp, saves=()))


def _run_eig(op, args, attrs, out=None):
    """Eigenvalues and unit eigenvectors of general matrices (LAPACK geev, on the host),
    always complex."""
    a = args[0]
    w, v = np.linalg.eig(_host(a))
    cd = dt.to_complex(a.dtype)
    return (_from_host(np.ascontiguousarray(w, dtype=cd.np), cd, a.device),
            _from_host(np.ascontiguousarray(v, dtype=cd.np), cd, a.device))


def _complex_inverse(m):
    """The inverse of complex matrices M = A + iB from the real inverse of [[A, -B], [B, A]],
    which is [[C, -D], [D, C]] with M^-1 = C + iD (differentiable: inv's VJP)."""
    f = registry.functions
    a, b = m.real, m.imag
    n = m._shape[-1]
    big = f.cat([f.cat([a, -b], -1), f.cat([b, a], -1)], -2)
    r = apply(INV, big)
    return f.complex(r[..., :n, :n].contiguous(), r[..., n:, :n].contiguous())


def _eig_vjp(gs, a, out):
    """PyTorch's linalg_eig_backward: gA = V^-H (diag(gL) + off-diagonal (V^H gV - V^H V
    Re diag(V^H gV)) / conj(L_j - L_i)) V^H, real for a real A."""
    gl, gv = gs
    w, v = out
    n = w._shape[-1]
    eye_n = eye(n, dtype=dt.to_real(w.dtype), device=w.device)
    vh = v.mH
    inner = None
    if gv is not None:
        vhgv = vh @ gv
        d = vhgv.diagonal(0, -2, -1).real
        vhgv = vhgv - vh @ (v * d.unsqueeze(-2))
        lc = w.conj()
        gap = lc.unsqueeze(-2) - lc.unsqueeze(-1) + eye_n
        inner = vhgv / gap * (1 - eye_n)
    if gl is not None:
        dg = gl.unsqueeze(-1) * eye_n
        inner = dg if inner is None else inner + dg
    if inner is None:
        return (None,)
    ga = _complex_inverse(vh) @ inner @ vh
    return (ga if a.dtype.is_complex else ga.real,)


EIG = register(OpDef("linalg_eig", "linalg", None, _run_eig, _eig_vjp, saves=()))


def _svd(a, full_matrices=True):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return u, s, vh


def _svd_vjp(gs, a, out, full_matrices=True):
    gu, gsv, gvh = gs
    u, s, vh = out
    m, n = a._shape[-2:]
    k = min(m, n)
    if full_matrices and m != n:
        # as PyTorch: the columns of U and rows of Vh past k (and their gradients) are
        # arbitrary bases of the complements, left out
        u, gu, vh, gvh = u[..., :, :k], gu[..., :, :k], vh[..., :k, :], gvh[..., :k, :]
    v, gv = _mT(vh), _mT(gvh)
    s2 = s * s
    f = _off_diagonal_inverse_gaps(s2)  # 1 / (s_j^2 - s_i^2)
    j = f * (_mT(u) @ gu - _mT(gu) @ u)
    kk = f * (_mT(v) @ gv - _mT(gv) @ v)
    sm = _diag(s)
    inner = _diag(gsv) + j @ sm + sm @ kk
    ga = u @ inner @ vh
    sinv = _diag(1 / s)
    if m > k:  # the part of gU outside U's span
        ga = ga + (gu - u @ (_mT(u) @ gu)) @ sinv @ vh
    if n > k:
        ga = ga + u @ sinv @ _mT(gv - v @ (_mT(v) @ gv))
    return (ga,)


SVD = register(OpDef("linalg_svd", "linalg", None, _run_host(_svd), _svd_vjp, saves=()))


# --- public functions ------------------------------------------------------------------------


def inv(A, *, out=None):
    _check_square("linalg.inv", A)
    _check_float("linalg.inv", A)
    return _out(apply(INV, A), out)


def _out(r, out):
    return r if out is None else out.copy_(r)


@public
def slogdet(input, *, out=None):
    _check_square("linalg.slogdet", input)
    _check_float("linalg.slogdet", input)
    sign, logabs = apply(SLOGDET, input)
    return _named("slogdet", ("sign", "logabsdet"))(_zero_gradient(sign.detach(), logabs),
                                                   logabs)


def linalg_det(A, *, out=None):
    """sign * exp(log|det|): differentiable through slogdet (A^-T det A)."""
    r = slogdet(A)
    return _out(r.sign * r.logabsdet.exp(), out)


@public
def logdet(input):
    """log det A: nan where the determinant is negative, -inf where it is 0 (PyTorch)."""
    r = slogdet(input)
    return r.logabsdet + zeros((), dtype=input.dtype, device=input.device).where(
        r.sign >= 0, float("nan"))


def solve(A, B, *, left=True, out=None):
    _check_square("linalg.solve", A)
    _check_float("linalg.solve", A, B)
    vec = B.ndim == 1 or (B.ndim == A.ndim - 1 and B._shape == A._shape[:-1])
    b = B.unsqueeze(-1) if vec else B
    r = apply(SOLVE, A, b, left=bool(left))
    return _out(r.squeeze(-1) if vec else r, out)


def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    _check_square("linalg.solve_triangular", A)
    _check_float("linalg.solve_triangular", A, B)
    return _out(apply(SOLVE_TRIANGULAR, A, B, upper=bool(upper), left=bool(left),
                      unitriangular=bool(unitriangular)), out)


def linalg_cholesky(A, *, upper=False, out=None):
    _check_square("linalg.cholesky", A)
    _check_float("linalg.cholesky", A)
    return _out(apply(CHOLESKY, A, upper=bool(upper)), out)


def qr(A, mode="reduced", *, out=None):
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           "'reduced' (default), 'r', or 'complete'")
    _check_float("linalg.qr", A)
    q, r = apply(QR, A, mode="complete" if mode == "complete" else "reduced")
    if mode == "r":
        q = q.new_zeros(0)
    return _named("qr", ("Q", "R"))(q, r)


def eigh(A, UPLO="L", *, out=None):
    _check_square("linalg.eigh", A)
    _check_float("linalg.eigh", A)
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    w, v = apply(EIGH, A, UPLO=UPLO)
    return _named("eigh", ("eigenvalues", "eigenvectors"))(w, v)


def eigvalsh(A, UPLO="L", *, out=None):
    return _out(eigh(A, UPLO).eigenvalues, out)


def linalg_svd(A, full_matrices=True, *, driver=None, out=None):
    _check_float("linalg.svd", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.svd: The input tensor A must have at least 2 dimensions.")
    u, s, vh = apply(SVD, A, full_matrices=bool(full_matrices))
    return _named("svd", ("U", "S", "Vh"))(u, s, vh)


def svdvals(A, *, driver=None, out=None):
    _check_float("linalg.svdvals", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.svdvals: The input tensor A must have at least 2 "
                           "dimensions.")
    return _out(apply(SVDVALS, A), out)


def _svdvals_vjp(g, a, out):
    # PyTorch's gradient of the singular values alone: U diag(g) V^T, no 1 / (s_i - s_j)
    # terms, so it is finite for repeated or zero singular values (nuclear norm at 0)
    u, _, vh = apply(SVD, a, full_matrices=False)
    return (u @ (g.unsqueeze(-1) * vh),)


SVDVALS = register(OpDef("linalg_svdvals", "linalg", None,
                         _run_host(lambda a: np.linalg.svd(a, compute_uv=False)),
                         _svdvals_vjp, saves=(0,), saves_out=False))


def pinv(A, *, atol=None, rtol=None, hermitian=False, out=None):
    """The pseudo-inverse V diag(1/s) U^T over singular values above max(atol, rtol *
    s_max) (PyTorch's default rtol: eps * max(m, n) where atol is not positive); with
    ``hermitian`` from eigh of the lower triangle, as PyTorch's."""
    _check_float("linalg.pinv", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.pinv: The input tensor A must have at least 2 dimensions.")
    if hermitian:
        _check_square("linalg.pinv", A)
    atol_h, rtol_h = _atol_rtol(A, atol, rtol)
    return _out(apply(PINV, A, _up(atol_h, A), _up(rtol_h, A), hermitian=bool(hermitian)), out)


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False, out=None):
    if hermitian:
        _check_square("linalg.matrix_rank", A)
        s = eigvalsh(A).abs()
    else:
        s = svdvals(A)
    return _out((s > _singular_tol(A, s, atol, rtol)).sum(-1), out)


def _atol_rtol(A, atol, rtol):
    """Host arrays of PyTorch's tolerances: atol 0 when None; rtol eps * max(m, n) when
    None, except 0 where atol is positive."""
    def host(v):
        return v.detach().numpy() if isinstance(v, registry.Tensor) else np.asarray(v)
    atol_h = host(0.0 if atol is None else atol).astype(A.dtype.np)
    if rtol is None:
        default = np.finfo(A.dtype.np).eps * max(A._shape[-2:])
        rtol_h = np.where(atol_h > 0, 0.0, default) if atol is not None else np.asarray(default)
    else:
        rtol_h = host(rtol)
    return atol_h, rtol_h.astype(A.dtype.np)


def _pinv(a, atol, rtol, hermitian=False):
    batch = a.shape[:-2]
    # one tolerance per matrix: atol and rtol broadcast against the batch dims
    atol = np.broadcast_to(atol, np.broadcast_shapes(atol.shape, batch))[..., None]
    rtol = np.broadcast_to(rtol, np.broadcast_shapes(rtol.shape, batch))[..., None]
    if hermitian:
        w, v = np.linalg.eigh(a, UPLO="L")
        s, left, right = np.abs(w), v, v
    else:
        left, s, right = np.linalg.svd(a, full_matrices=False)
        right, w = np.swapaxes(right, -1, -2), s
    smax = s.max(-1, keepdims=True) if s.shape[-1] else np.zeros((*s.shape[:-1], 1), s.dtype)
    keep = s > np.maximum(atol, rtol * smax)
    with np.errstate(divide="ignore"):
        winv = np.where(keep, 1 / np.where(keep, w, 1), 0)
    return right @ (winv[..., None] * np.swapaxes(left, -1, -2))


def _pinv_vjp(g, a, atol, rtol, out, hermitian=False):
    """PyTorch's pinv backward (the derivative where the rank stays constant), from A and
    its pseudo-inverse only; the same for ``hermitian``."""
    p, ph, gh = out, _mT(out), _mT(g)
    m, n = a._shape[-2:]
    if m <= n:
        k = gh @ p
        kph = k @ ph
        ga = -_mT(p @ k) + kph - (a @ p) @ kph + (ph @ p) @ (gh - k @ a)
    else:
        k = p @ gh
        phk = ph @ k
        ga = -_mT(k @ p) + phk - (phk @ p) @ a + (gh - a @ k) @ p @ ph
    return (ga, None, None)


PINV = register(OpDef("linalg_pinv", "linalg", None, _run_host(_pinv), _pinv_vjp,
                      saves=(0,)))


def _singular_tol(A, s, atol, rtol):
    """max(atol, rtol * s_max) per matrix; PyTorch's default rtol is eps * max(m, n) when
    no positive atol is given, else 0."""
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else float(
            np.finfo(A.dtype.np).eps) * max(A._shape[-2:])
    smax = s.amax(-1, keepdim=True) if s.numel() else s
    return (smax * rtol).clamp_min(atol or 0.0)


_LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares solution pinv(A) @ B. Outputs by ``driver`` (default gelsy), as
    PyTorch's: residuals (the squared column norms of A X - B, differentiable) where m > n
    and the driver is not gelsy (gelsd / gelss: only where every A has full rank n), else
    empty; the rank for all but gels; the singular values for gelsd and gelss. The solution
    of a rank-deficient A is the minimum-norm one for every driver."""
    _check_float("linalg.lstsq", A, B)
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.lstsq: input must have at least 2 dimensions.")
    if B.ndim < 1:
        raise RuntimeError("torch.linalg.lstsq: other must have at least 1 dimension.")
    if driver is None:
        driver = "gelsy"
    if driver not in _LSTSQ_DRIVERS:
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of "
                           f"(gels, gelsy, gelsd, gelss), but got {driver}")
    m, n = A._shape[-2:]
    vec = B.ndim == A.ndim - 1
    b = B.unsqueeze(-1) if vec else B
    if b._shape[-2] != m:
        raise RuntimeError("torch.linalg.lstsq: input.size(-2) should match other.size(-2) "
                           f"(or other.size(-1) for a vector), got {m} and {b._shape[-2]}")
    if rcond is None:
        rcond = float(np.finfo(A.dtype.np).eps) * max(m, n)
    x = pinv(A, rtol=rcond) @ b
    s = svdvals(A).detach() if driver != "gels" else None
    rank = (s > _singular_tol(A, s, None, rcond)).sum(-1) if s is not None else None
    residuals = x.reshape(-1)[:0]  # empty, but on the graph: PyTorch's requires grad
    if m > n and driver != "gelsy" and (driver == "gels" or bool((rank == n).all())):
        residuals = ((matmul(A, x) - b) ** 2).sum(-2)
    empty = A.new_zeros(0)
    return _named("lstsq", ("solution", "residuals", "rank", "singular_values"))(
        x.squeeze(-1) if vec else x, residuals,
        empty.long() if rank is None else rank,
        s if driver in ("gelsd", "gelss") else empty)


@public
def matrix_power(input, n: int, *, out=None):
    """A^n by repeated squaring (n < 0: of the inverse; n == 0: the identity)."""
    _check_square("linalg.matrix_power", input)
    if not isinstance(n, int):
        raise TypeError(f"matrix_power(): argument 'n' must be int, not {type(n).__name__}")
    if n == 0:  # the identity, with PyTorch's zero gradient
        ident = eye(input._shape[-1], dtype=input.dtype, device=input.device)
        return _out(_zero_gradient(ident, input), out)
    base = inv(input) if n < 0 else input
    n = abs(n)
    r = None
    while n:
        if n & 1:
            r = base if r is None else matmul(r, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return _out(r, out)


@public
def matrix_exp(input):
    """exp(A) by scaling and squaring: a degree-18 Taylor polynomial of A / 2^s with
    |A / 2^s|_1 <= theta, squared s times (made of matmuls, so it differentiates). theta is
    PyTorch's bound for degree 18 in the dtype's precision: every squaring doubles the
    rounding error, so a smaller bound (1/2 was used) loses accuracy (6x in float32)."""
    _check_square("linalg.matrix_exp", input)
    _check_float("linalg.matrix_exp", input)
    theta = 3.010066362817634 if input.dtype is dt.float32 else 1.090863719290036
    norm = float(input.detach().abs().sum(-2).amax()) if input.numel() else 0.0
    s = max(0, int(np.ceil(np.log2(norm / theta)))) if norm > theta else 0
    x = input / (2.0 ** s)
    n = input._shape[-1]
    ident = eye(n, dtype=input.dtype, device=input.device)
    term, r = ident + 0 * x, ident + 0 * x
    for k in range(1, 19):
        term = matmul(term, x) / k
        r = r + term
    for _ in range(s):
        r = matmul(r, r)
    return r


def vecdot(x, y, *, dim=-1):
    return (x * y).sum(dim)


def cross(input, other, *, dim=-1):
    """torch.linalg.cross: 3-vectors along ``dim`` (broadcast)."""
    if input._shape[dim] != 3 or other._shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{input._shape[dim]} and {other._shape[dim]}")
    a = [input.select(dim, i) for i in range(3)]
    b = [other.select(dim, i) for i in range(3)]
    from .join import stack
    return stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                  a[0] * b[1] - a[1] * b[0]], dim)


# torch.* spellings (functions and Tensor methods)


def _torch_cross(input, other, dim=None):
    """torch.cross: linalg.cross over ``dim``; without it, the first dim of size 3 (with
    PyTorch's deprecation warning)."""
    if dim is None:
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\n"
                      "Please either pass the dim explicitly or simply use torch.linalg.cross."
                      "\nThe default value of dim will change to agree with that of "
                      "linalg.cross in a future release.", UserWarning, stacklevel=2)
        shape = broadcast_shapes(input._shape, other._shape)
        dim = next((i for i, n in enumerate(shape) if n == 3), None)
        if dim is None:
            raise RuntimeError(f"no dimension of size 3 in input (shape {list(shape)})")
    if input.ndim != other.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions. "
                           f"Got {input.ndim} and {other.ndim}")
    return cross(input, other, dim=dim)


_torch_cross.__name__ = "cross"
public(_torch_cross)


@public
def inverse(input, *, out=None):
    return inv(input, out=out)


@public
def det(input):
    return linalg_det(input)


@public
def cholesky(input, upper: bool = False, *, out=None):
    return linalg_cholesky(input, upper=upper, out=out)


@public
def pinverse(input, rcond: float = 1e-15):
    return pinv(input, rtol=rcond)


@public
def svd(input, some: bool = True, compute_uv: bool = True, *, out=None):
    """torch.svd: (U, S, V) with V, not V^T; ``some`` the reduced factorization."""
    u, s, vh = linalg_svd(input, full_matrices=not some)
    if not compute_uv:
        u, vh = u.new_zeros(u.shape).detach(), vh.new_zeros(vh.shape).detach()
    return _named("svd", ("U", "S", "V"))(u, s, _mT(vh))


# --- LU, triangular and Cholesky solves (torch.lu, lu_unpack, lu_solve, ...) -----------------


def _lu_factor(a):
    """LAPACK getrf on the host: the packed factors (unit L below the diagonal, U on and
    above), the 1-based row interchanges (int32) and getrf's info (the first zero pivot,
    1-based; 0 when none)."""
    a = np.array(a, dtype=a.dtype, copy=True)
    *batch, m, n = a.shape
    k = min(m, n)
    flat = _batches(a, 2)
    piv = np.zeros((flat.shape[0], k), np.int32)
    info = np.zeros(flat.shape[0], np.int32)
    for b, mat in enumerate(flat):
        for j in range(k):
            p = j + int(np.argmax(np.abs(mat[j:, j])))
            piv[b, j] = p + 1
            if mat[p, j] == 0:
                info[b] = info[b] or j + 1
                continue
            if p != j:
                mat[[j, p]] = mat[[p, j]]
            mat[j + 1:, j] /= mat[j, j]
            mat[j + 1:, j + 1:] -= np.outer(mat[j + 1:, j], mat[j, j + 1:])
    return flat.reshape(a.shape), piv.reshape(*batch, k), info.reshape(batch)


def _run_lu(op, args, attrs, out=None):
    (a,) = args
    lu, piv, info = _lu_factor(_host(a))
    return (_up(lu, a), _from_host(piv, dt.int32, a.device), _from_host(info, dt.int32,
                                                                        a.device))


def _permutation(pivots, m: int, like):
    """P of A = P L U from LAPACK's 1-based row interchanges (a tensor, read on the host, or
    an array)."""
    if isinstance(pivots, registry.Tensor):
        pivots = pivots.detach().numpy()
    piv = pivots.astype(np.int64) - 1
    flat = _batches(piv, 1)
    perms = np.empty((flat.shape[0], m, m), like.dtype.np)
    for b, swaps in enumerate(flat):
        order = np.arange(m)
        for i, p in enumerate(swaps):
            order[[i, p]] = order[[p, i]]
        perms[b] = 0
        perms[b][order, np.arange(m)] = 1
    return _up(perms.reshape(*piv.shape[:-1], m, m), like)


def _lu_square_vjp(low, up, gl, gu):
    """B = L U, both square: gB = L^-T (tril(L^T gL, -1) + triu(gU U^T)) U^-T."""
    inner = (_mT(low) @ gl).tril(-1) + (gu @ _mT(up)).triu()
    x = apply(SOLVE_TRIANGULAR, _mT(low), inner, upper=True, left=True, unitriangular=True)
    return apply(SOLVE_TRIANGULAR, _mT(up), x, upper=False, left=False, unitriangular=False)


def _lu_vjp(g, a, out):
    """P^T A = B = L U: the square block by _lu_square_vjp; the rest of a wide B is L U2
    (so gB2 = L^-T gU2, and L gets -gB2 U2^T), of a tall B is L2 U (gB2 = gL2 U^-T, and U
    gets -L2^T gB2). ``g``: the packed factors' gradient (the one floating output's); P
    again from A's factorization on the host."""
    lu = out
    m, n = a._shape[-2:]
    k = min(m, n)
    low = lu[..., :, :k].tril(-1) + eye(m, k, dtype=lu.dtype, device=lu.device)
    up = lu[..., :k, :].triu()
    gl, gu = g[..., :, :k].tril(-1), g[..., :k, :].triu()
    if m == n:
        gb = _lu_square_vjp(low, up, gl, gu)
    elif m < n:
        gb2 = apply(SOLVE_TRIANGULAR, _mT(low), gu[..., :, m:], upper=True, left=True,
                    unitriangular=True)
        gl = (gl - gb2 @ _mT(up[..., :, m:])).tril(-1)
        square = _lu_square_vjp(low, up[..., :, :m], gl, gu[..., :, :m])
        gb = registry.functions.cat([square, gb2], -1)
    else:
        low1, low2 = low[..., :n, :], low[..., n:, :]
        gb2 = apply(SOLVE_TRIANGULAR, _mT(up), gl[..., n:, :], upper=False, left=False,
                    unitriangular=False)
        gu = (gu - _mT(low2) @ gb2).triu()
        square = _lu_square_vjp(low1, up, gl[..., :n, :], gu)
        gb = registry.functions.cat([square, gb2], -2)
    return (_permutation(_lu_factor(_host(a))[1], m, lu) @ gb,)


LU = register(OpDef("lu_factor", "linalg", None, _run_lu, _lu_vjp, saves=(0,)))


@public
def lu(A, pivot: bool = True, get_infos: bool = False, out=None):
    """torch.lu: (LU, pivots) by partial pivoting, with getrf's info when ``get_infos``
    (pivots and info int32, as PyTorch's)."""
    if not A.dtype.is_floating_point:
        raise NotImplementedError(f"\"lu_cpu\" not implemented for '{A.dtype.scalar_type}'")
    _check_float("torch.lu", A)
    if A.ndim < 2:
        raise RuntimeError("torch.lu_factor: The input tensor A must have at least 2 "
                           "dimensions.")
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the "
                           "CPU")
    lu_, piv, info = apply(LU, A)
    if get_infos:
        return _named("_lu_with_info", ("LU", "pivots", "info"))(lu_, piv, info)
    return lu_, piv


@public(method=False)
def lu_unpack(LU_data, LU_pivots, unpack_data: bool = True, unpack_pivots: bool = True, *,
              out=None):
    """torch.lu_unpack: (P, L, U) of lu()'s packed factors; an empty tensor for each part
    not asked for."""
    m, n = LU_data._shape[-2:]
    k = min(m, n)
    empty_ = LU_data.new_zeros(0)
    low = up = perm = empty_
    if unpack_data:
        low = LU_data[..., :, :k].tril(-1) + eye(m, k, dtype=LU_data.dtype,
                                                  device=LU_data.device)
        up = LU_data[..., :k, :].triu()
    if unpack_pivots:
        perm = _permutation(LU_pivots, m, LU_data)
    return _named("lu_unpack", ("P", "L", "U"))(perm, low, up)


@public
def lu_solve(input, LU_data, LU_pivots, *, out=None):
    """torch.lu_solve: x with A x = b (input) from lu(A): U^-1 L^-1 P^T b."""
    perm, low, up = lu_unpack(LU_data, LU_pivots)
    y = solve_triangular(low, _mT(perm) @ input, upper=False, unitriangular=True)
    return _out(solve_triangular(up, y, upper=True), out)


@public
def triangular_solve(input, A, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False, *, out=None):
    """torch.triangular_solve: (solution of op(A) X = b (input), a copy of A), op(A) = A or A^T."""
    coeff = _mT(A) if transpose else A
    x = solve_triangular(coeff, input, upper=bool(upper) != bool(transpose),
                         unitriangular=unitriangular)
    return _named("triangular_solve", ("solution", "cloned_coefficient"))(x, A.clone())


@public
def cholesky_solve(input, input2, upper: bool = False, *, out=None):
    """torch.cholesky_solve: X with A X = B, A = L L^T (or U^T U with ``upper``), reading
    L's triangle; L's gradient is PyTorch's (a full matrix, not masked to the triangle)."""
    _check_float("cholesky_solve", input, input2)
    if input.ndim < 2 or input2.ndim < 2:
        raise RuntimeError("b should have at least 2 dimensions, but has "
                           f"{input.ndim} dimensions instead" if input.ndim < 2 else
                           "u should have at least 2 dimensions, but has "
                           f"{input2.ndim} dimensions instead")
    _check_square("cholesky_solve", input2)
    return _out(apply(CHOLESKY_SOLVE, input, input2, upper=bool(upper)), out)


def _cholesky_solve(b, factor, upper=False):
    low = np.swapaxes(np.triu(factor), -1, -2) if upper else np.tril(factor)
    y = _solve(low, b)
    return _solve(np.swapaxes(low, -1, -2), y)


def _cholesky_solve_vjp(g, b, factor, out, upper=False):
    # PyTorch's: gB = A^-1 g; C = gB X^T + X gB^T; gL = -C L (-L C with ``upper``)
    gb = apply(CHOLESKY_SOLVE, g, factor, upper=upper)
    common = gb @ _mT(out)
    common = common + _mT(common)
    return gb, -(factor @ common) if upper else -(common @ factor)


CHOLESKY_SOLVE = register(OpDef("cholesky_solve", "linalg", None, _run_host(_cholesky_solve),
                                _cholesky_solve_vjp, saves=(1,)))


@public
def cholesky_inverse(input, upper: bool = False, *, out=None):
    """torch.cholesky_inverse: A^-1 from A's Cholesky factor."""
    n = input._shape[-1]
    ident = eye(n, dtype=input.dtype, device=input.device).expand(*input._shape)
    return _out(cholesky_solve(ident, input, upper), out)


def _torch_qr(input, some: bool = True, *, out=None):
    """torch.qr: linalg.qr, reduced when ``some``, else complete."""
    return qr(input, "reduced" if some else "complete")


_torch_qr.__name__ = "qr"
public(_torch_qr)


def _geqrf(a):
    """LAPACK geqrf (numpy's raw QR, which returns the factors transposed)."""
    k = min(a.shape[-2:])
    if a.size == 0:
        return a.copy(), np.zeros((*a.shape[:-2], k), a.dtype)
    h, tau = np.linalg.qr(a, mode="raw")
    return np.swapaxes(h, -1, -2), tau


GEQRF = register(OpDef("geqrf", "linalg", None, _run_host(_geqrf), differentiable=False))


@public
def geqrf(input, *, out=None):
    """torch.geqrf: (a, tau), LAPACK's implicit QR: R on and above a's diagonal, the
    Householder vectors below it (no gradient, as PyTorch)."""
    if input.ndim < 2:
        raise RuntimeError("torch.geqrf: input must have at least 2 dimensions.")
    _check_float("torch.geqrf", input)
    a, tau = apply(GEQRF, input)
    if out is not None:
        out[0].copy_(a)
        out[1].copy_(tau)
        a, tau = out
    return _named("geqrf", ("a", "tau"))(a, tau)


@public
def ormqr(input, tau, other, left: bool = True, transpose: bool = False, *, out=None):
    """torch.ormqr: Q @ other (other @ Q where not ``left``; Q^T where ``transpose``) for
    the Q of geqrf's (input, tau), one Householder reflection at a time (matmuls, so
    differentiable in all three)."""
    if input.ndim < 2:
        raise RuntimeError("torch.ormqr: input must have at least 2 dimensions.")
    if other.ndim < 2:
        raise RuntimeError("torch.ormqr: other must have at least 2 dimensions.")
    if tau.ndim != input.ndim - 1:
        raise RuntimeError("torch.ormqr: Expected tau to have one dimension less than input, "
                           f"but got tau.ndim equal to {tau.ndim} and input.ndim is equal to "
                           f"{input.ndim}")
    if other.ndim != input.ndim:
        raise RuntimeError("torch.ormqr: Expected other to have the same number of dimensions "
                           f"as input, but got other.ndim equal to {other.ndim} and input.ndim "
                           f"is equal to {input.ndim}")
    side = -2 if left else -1
    mn, k = input._shape[-2], tau._shape[-1]
    if k != min(other._shape[side], input._shape[-1]):
        raise RuntimeError(f"torch.ormqr: tau.shape[-1] must be equal to min(other.shape[{side}]"
                           ", input.shape[-1])")
    if other._shape[side] != mn:
        raise RuntimeError(f"torch.ormqr: other.shape[{side}] must be equal to "
                           "input.shape[-2]")
    if tau._shape[:-1] != input._shape[:-2] or other._shape[:-2] != input._shape[:-2]:
        raise RuntimeError("torch.ormqr: Expected batch dimensions of tau and other to be "
                           f"equal to input.shape[:-2] = {list(input._shape[:-2])}, but got "
                           f"{list(tau._shape[:-1])} and {list(other._shape[:-2])}")
    for name, t in (("other", other), ("tau", tau)):
        if t.dtype is not input.dtype:
            raise RuntimeError(f"torch.ormqr: Expected input and {name} to have the same "
                               f"dtype, but input has dtype{input.dtype.scalar_type} and {name} "
                               f"has dtype {t.dtype.scalar_type}")
    _check_float("torch.ormqr", input)
    v = input[..., :, :k].tril(-1) + eye(mn, k, dtype=input.dtype, device=input.device)
    c = other
    # Q = H_1 ... H_k: Q C applies H_k first, C Q applies H_1 first; transposing reverses
    order = range(k) if left == bool(transpose) else reversed(range(k))
    for i in order:
        vi, ti = v[..., :, i:i + 1], tau[..., i:i + 1].unsqueeze(-1)
        if left:
            c = c - vi @ (ti * (_mT(vi) @ c))
        else:
            c = c - ((c @ vi) * ti) @ _mT(vi)
    return _out(c, out)


def _removed_matrix_rank(input, tol=None, symmetric=False, *, out=None):
    """torch.matrix_rank: removed from PyTorch, which raises this error."""
    raise RuntimeError("This function was deprecated since version 1.9 and is now removed.\n"
                       "Please use the `torch.linalg.matrix_rank` function instead. The "
                       "parameter 'symmetric' was renamed in `torch.linalg.matrix_rank()` to "
                       "'hermitian'.")


_removed_matrix_rank.__name__ = "matrix_rank"
public(_removed_matrix_rank, method=False)


# --- randomized low-rank SVD and PCA (Halko, Martinsson and Tropp 2009) ----------------------


def _approximate_basis(A, q: int, niter: int, M=None):
    """An orthonormal basis Q (n x q) whose span approximates A's range: a Gaussian sketch
    refined by ``niter`` power iterations, orthonormalized after each product."""
    from ..creation import randn
    r = randn(A._shape[-1], q, dtype=A.dtype, device=A.device)
    x = A @ r if M is None else A @ r - M @ r
    basis = qr(x).Q
    for _ in range(niter):
        x = _mT(A) @ basis if M is None else _mT(A) @ basis - _mT(M) @ basis
        basis = qr(x).Q
        x = A @ basis if M is None else A @ basis - M @ basis
        basis = qr(x).Q
    return basis


@public(method=False)
def svd_lowrank(A, q: int | None = 6, niter: int | None = 2, M=None):
    """torch.svd_lowrank: (U, S, V) of a rank-``q`` approximation of A - M, randomized (a
    wide A through its transpose)."""
    q = 6 if q is None else q
    niter = 2 if niter is None else niter
    m, n = A._shape[-2:]
    if M is not None:
        M = M.broadcast_to(A.shape)
    if m < n:
        A = _mT(A)
        M = None if M is None else _mT(M)
    basis = _approximate_basis(A, q, niter, M)
    b = _mT(basis) @ A if M is None else _mT(basis) @ A - _mT(basis) @ M
    u, s, vh = linalg_svd(b, full_matrices=False)
    u, v = basis @ u, _mT(vh)
    return (v, s, u) if m < n else (u, s, v)


@public(method=False)
def pca_lowrank(A, q: int | None = None, center: bool = True, niter: int = 2):
    """torch.pca_lowrank: svd_lowrank of A with its column means removed (``center``)."""
    m, n = A._shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not (isinstance(q, int) and 0 <= q <= min(m, n)):
        raise ValueError(f"q(={q}) must be non-negative integer and not greater than min(m, "
                         f"n)={min(m, n)}")
    if not (isinstance(niter, int) and niter >= 0):
        raise ValueError(f"niter(={niter}) must be non-negative integer")
    if not center:
        return svd_lowrank(A, q, niter)
    return svd_lowrank(A - A.mean(-2, keepdim=True), q, niter)
