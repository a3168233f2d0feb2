"""torch.special: PyTorch's names for special functions, each an existing clgraph
function. Imports only the public functions (ops registry)."""

from __future__ import annotations

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


def gammainc(input, other, *, out=None):
    """torch.special.gammainc: igamma, the regularized lower incomplete gamma function."""
    return _F.igamma(input, other, out=out)


def gammaincc(input, other, *, out=None):
    """torch.special.gammaincc: igammac, the regularized upper incomplete gamma function."""
    return _F.igammac(input, other, out=out)
