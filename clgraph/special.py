"""torch.special: PyTorch's names for special functions: existing clgraph functions and
the rows of ops/special.py (Bessel, Airy, normal-distribution functions, orthogonal
polynomials). Imports the public functions and those rows (ops registry).

What differs from PyTorch: the Bessel and Airy functions are computed by other methods than
PyTorch's (Cephes): Miller's recurrence, Hankel's and Temme's expansions. In float64 they
agree with scipy to about 1e-15 of the function's scale (PyTorch's own J0/J1/Y0/Y1 are off by
up to 1e-7 near x = 5, its ndtr underflows to 0 in the far tail); airy_ai holds about 1e-15
of its scale in float64 and 1e-5 below -2 in float32. NaN arguments of the
polynomials give NaN (PyTorch's vectorized loops return numbers there)."""

from __future__ import annotations

from . import dtypes as _dt
from .ops import registry as _registry
from .ops import special as _rows  # noqa: F401  (registers the special_* rows)
from .ops.registry import REGISTRY as _OPS
from .ops.registry import apply as _apply
from .ops.registry import functions as _F


def expit(input, *, out=None):
    """torch.special.expit: the logistic sigmoid."""
    return _F.sigmoid(input, out=out)


def erf(input, *, out=None):
    return _F.erf(input, out=out)


def erfc(input, *, out=None):
    return _F.erfc(input, out=out)


def erfinv(input, *, out=None):
    return _F.erfinv(input, out=out)


def gammaln(input, *, out=None):
    """torch.special.gammaln: lgamma."""
    return _F.lgamma(input, out=out)


def digamma(input, *, out=None):
    return _F.digamma(input, out=out)


psi = digamma


def logit(input, eps=None, *, out=None):
    return _F.logit(input, eps, out=out)


def xlogy(input, other, *, out=None):
    return _F.xlogy(input, other, out=out)


def exp2(input, *, out=None):
    return _F.exp2(input, out=out)


def expm1(input, *, out=None):
    return _F.expm1(input, out=out)


def log1p(input, *, out=None):
    return _F.log1p(input, out=out)


def logsumexp(input, dim, keepdim=False):
    return _F.logsumexp(input, dim, keepdim)


def softmax(input, dim, *, dtype=None):
    return _F.softmax(input, dim, dtype)


def log_softmax(input, dim, *, dtype=None):
    return _F.log_softmax(input, dim, dtype)


def _tensor(x, fn: str):
    if not isinstance(x, _registry.Tensor):
        raise TypeError(f"special_{fn}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    return x


def _unary(name: str, op: str | None = None):
    op = op or f"special_{name}"

    def fn(input, *, out=None):
        return _apply(_OPS[op], _tensor(input, name), out=out)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"torch.special.{name}."
    return fn


entr = _unary("entr")
erfcx = _unary("erfcx")
ndtr = _unary("ndtr")
log_ndtr = _unary("log_ndtr")
ndtri = _unary("ndtri")
i0e = _unary("i0e")
i1 = _unary("i1", "_i1")
i1e = _unary("i1e")
bessel_j0 = _unary("bessel_j0")
bessel_j1 = _unary("bessel_j1")
bessel_y0 = _unary("bessel_y0")
bessel_y1 = _unary("bessel_y1")
modified_bessel_i0 = _unary("modified_bessel_i0")
modified_bessel_i1 = _unary("modified_bessel_i1")
modified_bessel_k0 = _unary("modified_bessel_k0")
modified_bessel_k1 = _unary("modified_bessel_k1")
scaled_modified_bessel_k0 = _unary("scaled_modified_bessel_k0")
scaled_modified_bessel_k1 = _unary("scaled_modified_bessel_k1")
airy_ai = _unary("airy_ai")
spherical_bessel_j0 = _unary("spherical_bessel_j0")


def _polynomial(name: str):
    op = f"special_{name}"

    def fn(input, n, *, out=None):
        if not isinstance(input, _registry.Tensor) and not isinstance(n, _registry.Tensor):
            raise TypeError(f"special_{name}() received an invalid combination of arguments "
                            f"- got ({type(input).__name__}, {type(n).__name__}), but "
                            "expected one of: (Tensor x, Tensor n), (Number x, Tensor n), "
                            "(Tensor x, Number n)")
        return _apply(_OPS[op], input, n, out=out)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"torch.special.{name}: n truncated to an integer (0 for n < 0), PyTorch's "
                  "endpoint values and large-n forms.")
    return fn


chebyshev_polynomial_t = _polynomial("chebyshev_polynomial_t")
chebyshev_polynomial_u = _polynomial("chebyshev_polynomial_u")
chebyshev_polynomial_v = _polynomial("chebyshev_polynomial_v")
chebyshev_polynomial_w = _polynomial("chebyshev_polynomial_w")
shifted_chebyshev_polynomial_t = _polynomial("shifted_chebyshev_polynomial_t")
shifted_chebyshev_polynomial_u = _polynomial("shifted_chebyshev_polynomial_u")
shifted_chebyshev_polynomial_v = _polynomial("shifted_chebyshev_polynomial_v")
shifted_chebyshev_polynomial_w = _polynomial("shifted_chebyshev_polynomial_w")
hermite_polynomial_h = _polynomial("hermite_polynomial_h")
hermite_polynomial_he = _polynomial("hermite_polynomial_he")
laguerre_polynomial_l = _polynomial("laguerre_polynomial_l")
legendre_polynomial_p = _polynomial("legendre_polynomial_p")


def zeta(input, other, *, out=None):
    """torch.special.zeta: the Hurwitz zeta function sum_k (other + k)^-input."""
    if not isinstance(input, _registry.Tensor) and not isinstance(other, _registry.Tensor):
        raise TypeError("special_zeta() received an invalid combination of arguments - got "
                        f"({type(input).__name__}, {type(other).__name__}), but expected one "
                        "of: (Tensor input, Tensor other), (Number self, Tensor other), "
                        "(Tensor input, Number other)")
    return _apply(_OPS["special_zeta"], input, other, out=out)


def i0(input, *, out=None):
    return _F.i0(input, out=out)


def polygamma(n, input, *, out=None):
    return _F.polygamma(n, input, out=out)


def multigammaln(input, p, *, out=None):
    """torch.special.multigammaln: mvlgamma."""
    r = _F.mvlgamma(input, p)
    return r if out is None else out.copy_(r)


def round(input, *, decimals=0, out=None):  # noqa: A001
    return _F.round(input, decimals=decimals, out=out)


def sinc(input, *, out=None):
    return _F.sinc(input, out=out)


def xlog1py(input, other, *, out=None):
    """torch.special.xlog1py: input * log1p(other), 0 where input is 0 and other is not
    NaN."""
    if not isinstance(input, _registry.Tensor) and not isinstance(other, _registry.Tensor):
        raise TypeError("special_xlog1py(): at least one of input and other must be a Tensor")
    ref = input if isinstance(input, _registry.Tensor) else other
    a = input if isinstance(input, _registry.Tensor) else _F.full_like(ref, input)
    b = other if isinstance(other, _registry.Tensor) else _F.full_like(ref, other)
    dtype = _dt.result_type([a.dtype, b.dtype], [], [])
    if not dtype.is_floating_point:
        dtype = _dt.get_default_dtype()
    a, b = a.to(dtype), b.to(dtype)
    zero = _F.logical_and(_F.eq(a, 0), _F.logical_not(_F.isnan(b)))
    r = _F.where(zero, 0.0, a * _F.log1p(b))
    return r if out is None else out.copy_(r)
def gammainc(input, other, *, out=None):
    """torch.special.gammainc: igamma, the regularized lower incomplete gamma function."""
    return _F.igamma(input, other, out=out)


def gammaincc(input, other, *, out=None):
    """torch.special.gammaincc: igammac, the regularized upper incomplete gamma function."""
    return _F.igammac(input, other, out=out)
