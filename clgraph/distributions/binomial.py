"""torch.distributions.Binomial."""

from __future__ import annotations

import clgraph as cg

from . import constraints
from .distribution import Distribution
from .utils import (
    _size,
    _uniform,
    broadcast_all,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
)

__all__ = ["Binomial"]

# Draws on the device in a fixed number of launches, whatever total_count: for
# n min(p, 1 - p) < 10 by inversion, counting geometric gaps between successes (this many
# rounds: P(Binomial with mean < 10 > 48) < 1e-14), else by Hormann's BTRS transformed
# rejection ("The generation of binomial random variates", 1993), whose candidates are
# accepted with probability > 0.75 (16 rounds all fail with p < 1e-9; the rare rest draws
# again).
_INVERSION_ROUNDS = 48
_BTRS_ROUNDS = 16


def _clamp_by_zero(x):
    """max(x, 0) whose gradient at 0 is 1/2, as PyTorch's."""
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


def _binomial_inversion(n, p, shape, dtype, device):
    """Successes among n trials of probability p (p <= 1/2), by geometric gaps."""
    u = _uniform((_INVERSION_ROUNDS,) + shape, dtype, device).clamp(min=cg.finfo(dtype).tiny)
    gaps = cg.floor(cg.log(u) / cg.log1p(-p)) + 1
    return (cg.cumsum(gaps, 0) <= n).to(dtype).sum(0)


def _binomial_btrs(n, p, shape, dtype, device):
    """BTRS candidates for n p (1 - p) >= 10 (p <= 1/2): the first accepted one."""
    q = 1 - p
    spq = cg.sqrt(n * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = cg.log(p / q)
    m = cg.floor((n + 1) * p)
    h = cg.lgamma(m + 1) + cg.lgamma(n - m + 1)
    result = cg.zeros(shape, dtype=dtype, device=device)
    done = cg.zeros(shape, dtype=cg.bool, device=device)
    while not bool(done.all()):
        u = _uniform((_BTRS_ROUNDS,) + shape, dtype, device) - 0.5
        v = _uniform((_BTRS_ROUNDS,) + shape, dtype, device)
        us = 0.5 - u.abs()
        k = cg.floor((2 * a / us + b) * u + c)
        inside = (k >= 0) & (k <= n)
        quick = (us >= 0.07) & (v <= v_r)
        kc = cg.where(inside, k, 0.0)
        bound = h - cg.lgamma(kc + 1) - cg.lgamma(n - kc + 1) + (kc - m) * lpq
        slow = cg.log(v * alpha / (a / (us * us) + b)) <= bound
        accept = inside & (quick | slow)
        first = accept.to(cg.int32).argmax(0, keepdim=True)
        got = accept.any(0)
        result = cg.where(~done & got, k.gather(0, first).squeeze(0), result)
        done = done | got
    return result


def _binomial_draws(count, probs):
    """Binomial(count, probs) draws of their broadcast shape (exact; a fixed number of
    launches for any count)."""
    with cg.no_grad():
        count, probs = broadcast_all(count.detach(), probs.detach())
        out_dtype = probs.dtype
        if out_dtype is not cg.float64 and cg.cl.devices()[probs.device.index]["fp64"]:
            # BTRS's bound differences lgamma terms of n's size: float32 loses them
            count, probs = count.to(cg.float64), probs.to(cg.float64)
        shape, dtype, device = tuple(probs.shape), probs.dtype, probs.device
        flip = probs > 0.5
        p = cg.where(flip, 1 - probs, probs)
        n = count
        small = n * p < 10
        safe_small_p = cg.where(p > 0, p, 0.5)
        inv = _binomial_inversion(n, safe_small_p, shape, dtype, device)
        inv = cg.where(p > 0, inv, 0.0)
        if bool((~small).any()):
            big_n = cg.where(small, 100.0, n)  # a harmless stand-in where inversion serves
            big_p = cg.where(small, 0.5, p)
            btrs = _binomial_btrs(big_n, big_p, shape, dtype, device)
            draws = cg.where(small, inv, btrs)
        else:
            draws = inv
        return cg.where(flip, n - draws, draws).to(out_dtype)


class Binomial(Distribution):
    """torch.distributions.Binomial(total_count=1, probs=None, logits=None). Samples are
    drawn on the device by inversion (small means) or BTRS rejection."""

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None) -> None:
        batch_shape, (count,) = self._probs_or_logits(probs, logits, total_count)
        self.total_count = count.to(self._param.dtype)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Binomial, _instance)
        batch_shape = _size(batch_shape)
        new.total_count = self.total_count.expand(*batch_shape)
        return self._expand_probs_logits(new, batch_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> cg.Size:
        return self._param.shape

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        return _binomial_draws(self.total_count.expand(*shape), self.probs.expand(*shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n = self.total_count
        log_factorial_n = cg.lgamma(n + 1)
        log_factorial_k = cg.lgamma(value + 1)
        log_factorial_nmk = cg.lgamma(n - value + 1)
        # n log(1 + exp(logits)) split so that neither term overflows
        normalize_term = (n * _clamp_by_zero(self.logits)
                          + n * cg.log1p(cg.exp(-cg.abs(self.logits))) - log_factorial_n)
        return value * self.logits - log_factorial_k - log_factorial_nmk - normalize_term

    def entropy(self):
        total_count = int(self.total_count.max())
        if not float(self.total_count.min()) == total_count:
            raise NotImplementedError("Inhomogeneous total count not supported by "
                                      "`entropy`.")
        log_prob = self.log_prob(self.enumerate_support(False))
        return -(cg.exp(log_prob) * log_prob).sum(0)

    def enumerate_support(self, expand: bool = True):
        total_count = int(self.total_count.max())
        if not float(self.total_count.min()) == total_count:
            raise NotImplementedError("Inhomogeneous total count not supported by "
                                      "`enumerate_support`.")
        values = cg.arange(1 + total_count, dtype=self._param.dtype, device=self._param.device)
        values = values.view(-1, *(1,) * len(self._batch_shape))
        if expand:
            values = values.expand(-1, *self._batch_shape)
        return values


