"""torch.distributions.utils: broadcasting of parameters, probs <-> logits, lazy_property,
and the special functions and samplers the distributions share, all composed of clgraph
ops (so they run on the device and differentiate). Imports clgraph's public API only."""

from __future__ import annotations

import numbers
from functools import update_wrapper

import clgraph as cg

euler_constant = 0.57721566490153286060  # Euler-Mascheroni constant

__all__ = ["broadcast_all", "logits_to_probs", "clamp_probs", "probs_to_logits",
           "lazy_property"]


def _is_number(v) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool) or isinstance(v, bool)


def broadcast_all(*values) -> tuple:
    """Tensors broadcast together; numbers become tensors of the first tensor's dtype and
    device (the default dtype when all are numbers)."""
    if not all(isinstance(v, (cg.Tensor, numbers.Number)) for v in values):
        raise ValueError("Input arguments must all be instances of Number, torch.Tensor or "
                         "objects implementing __torch_function__.")
    options = {"dtype": cg.get_default_dtype()}
    for v in values:
        if isinstance(v, cg.Tensor):
            options = {"dtype": v.dtype, "device": v.device}
            break
    tensors = [v if isinstance(v, cg.Tensor) else cg.tensor(v, **options) for v in values]
    shape = cg.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t if tuple(t.shape) == tuple(shape) else t.expand(*shape) for t in tensors)


def _sum_rightmost(value, dim: int):
    """Sum out the ``dim`` rightmost dimensions."""
    if dim == 0:
        return value
    return value.reshape(*value.shape[:value.ndim - dim], -1).sum(-1)


def logits_to_probs(logits, is_binary: bool = False):
    if is_binary:
        return cg.sigmoid(logits)
    return cg.softmax(logits, dim=-1)


def clamp_probs(probs):
    """Probabilities clamped to [eps, 1 - eps] of their dtype."""
    eps = cg.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs, is_binary: bool = False):
    ps_clamped = clamp_probs(probs)
    if is_binary:
        return cg.log(ps_clamped) - cg.log1p(-ps_clamped)
    return cg.log(ps_clamped)


class lazy_property:
    """A property computed on first access (with grad enabled) and then stored on the
    instance, as PyTorch's."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped
        update_wrapper(self, wrapped)

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with cg.enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value


def _size(shape) -> cg.Size:
    return cg.Size(tuple(shape))


def _standard_normal(shape, dtype, device):
    return cg.randn(*shape, dtype=dtype, device=device)


def _uniform(shape, dtype, device):
    return cg.rand(*shape, dtype=dtype, device=device)


# the special functions are clgraph's elementwise rows (ops/elementwise.py)
_xlogy = cg.xlogy
lgamma = cg.lgamma
digamma = cg.digamma
erfinv = cg.erfinv


# Marsaglia and Tsang's rejection sampler draws this many candidates per element at once:
# each is accepted with probability >= 0.95, so all fail with probability < 1e-13.
_GAMMA_ROUNDS = 10


def _standard_gamma(alpha):
    """Gamma(alpha, 1) draws of alpha's shape, on the device (torch._standard_gamma): they
    differentiate with respect to alpha by the implicit reparameterization gradient
    (cg._standard_gamma_grad), as PyTorch's."""
    return _StandardGamma.apply(alpha)


class _StandardGamma(cg.autograd.Function):
    @staticmethod
    def forward(ctx, alpha):
        x = _draw_standard_gamma(alpha)
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    def backward(ctx, g):
        alpha, x = ctx.saved_tensors
        return g * cg._standard_gamma_grad(alpha, x)


def _draw_standard_gamma(alpha):
    """Gamma(alpha, 1) draws of alpha's shape, on the device and without grad: Marsaglia and
    Tsang's method ("A simple method for generating gamma variables", 2000), alpha < 1
    boosted to alpha + 1 and scaled by U^(1/alpha)."""
    with cg.no_grad():
        alpha = alpha.detach()
        shape, dtype, device = tuple(alpha.shape), alpha.dtype, alpha.device
        boost = alpha < 1
        a = cg.where(boost, alpha + 1, alpha)
        d = a - 1 / 3
        c = 1 / cg.sqrt(9 * d)
        x = _standard_normal((_GAMMA_ROUNDS,) + shape, dtype, device)
        u = _uniform((_GAMMA_ROUNDS,) + shape, dtype, device)
        v = (1 + c * x) ** 3
        v_pos = v.clamp(min=cg.finfo(dtype).tiny)
        accept = (v > 0) & (cg.log(u) < 0.5 * x * x + d - d * v + d * cg.log(v_pos))
        first = accept.to(cg.int32).argmax(0, keepdim=True)
        draw = (d * v_pos).gather(0, first).squeeze(0)
        draw = cg.where(accept.any(0), draw, d)
        u_boost = _uniform(shape, dtype, device)
        draw = cg.where(boost, draw * u_boost ** (1 / alpha), draw)
        return draw.clamp(min=cg.finfo(dtype).tiny)


# Poisson draws: below rate 10 the count of Exp(1) arrivals in [0, rate], out of this many
# (P(Poisson(10) >= 40) < 1e-11); from 10 on Hormann's PTRS rejection sampler ("The
# transformed rejection method for generating Poisson random variables", 1993), whose
# candidates are accepted with probability > 0.85: 16 rounds all fail with p < 1e-13.
_POISSON_ARRIVALS = 40
_PTRS_ROUNDS = 16


def _clamp_tiny(value):
    """``value`` raised to the dtype's smallest normal where it underflowed, with the
    gradient of ``value`` (PyTorch clamps the detached sample in place)."""
    floor = value.detach().clamp(min=cg.finfo(value.dtype).tiny)
    return value + (floor - value.detach())


def _poisson(rate):
    """Poisson(rate) draws of rate's shape (as rate's dtype), on the device, without grad."""
    with cg.no_grad():
        rate = rate.detach()
        shape, dtype, device = tuple(rate.shape), rate.dtype, rate.device
        gaps = -cg.log1p(-_uniform((_POISSON_ARRIVALS,) + shape, dtype, device))
        small = (cg.cumsum(gaps, 0) < rate).to(dtype).sum(0)

        lam = rate.clamp(min=10.0)
        slam, loglam = cg.sqrt(lam), cg.log(lam)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2)
        u = _uniform((_PTRS_ROUNDS,) + shape, dtype, device) - 0.5
        v = _uniform((_PTRS_ROUNDS,) + shape, dtype, device)
        us = 0.5 - u.abs()
        k = cg.floor((2 * a / us + b) * u + lam + 0.43)
        quick = (us >= 0.07) & (v <= vr)
        bound = cg.log(v) + cg.log(invalpha) - cg.log(a / (us * us) + b)
        target = -lam + k * loglam - lgamma(k.clamp(min=0) + 1)
        slow = (k >= 0) & ~((us < 0.013) & (v > us)) & (bound <= target)
        accept = quick | slow
        first = accept.to(cg.int32).argmax(0, keepdim=True)
        large = cg.where(accept.any(0), k.gather(0, first).squeeze(0), cg.floor(lam))
        return cg.where(rate < 10, small, large)
