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

# draws count this many Bernoulli trials per step (memory: this times the sample's size)
_TRIALS_PER_STEP = 256


def _clamp_by_zero(x):
    """max(x, 0) whose gradient at 0 is 1/2, as PyTorch's."""
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


def _binomial_draws(count, probs):
    """Binomial(count, probs) draws of their broadcast shape as counts of uniforms below
    probs, _TRIALS_PER_STEP trials at a time (exact; time grows with the largest count)."""
    with cg.no_grad():
        count, probs = broadcast_all(count.detach(), probs.detach())
        shape = tuple(probs.shape)
        n_max = int(count.max()) if count.numel() else 0
        draws = cg.zeros(shape, dtype=probs.dtype, device=probs.device)
        for start in range(0, n_max, _TRIALS_PER_STEP):
            k = min(_TRIALS_PER_STEP, n_max - start)
            u = _uniform((k,) + shape, probs.dtype, probs.device)
            trial = cg.arange(start, start + k, dtype=probs.dtype, device=probs.device)
            trial = trial.reshape(k, *(1,) * len(shape))
            draws = draws + ((u < probs) & (trial < count)).to(probs.dtype).sum(0)
        return draws


class Binomial(Distribution):
    """torch.distributions.Binomial(total_count=1, probs=None, logits=None). Samples count
    Bernoulli trials on the device (their time grows with total_count)."""

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.to(self.probs.dtype)
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.to(self.logits.dtype)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(self._param.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Binomial, _instance)
        batch_shape = _size(batch_shape)
        new.total_count = self.total_count.expand(*batch_shape)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(*batch_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(*batch_shape)
            new._param = new.logits
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

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


