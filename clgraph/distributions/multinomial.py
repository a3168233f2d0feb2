"""torch.distributions.Multinomial."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .binomial import Binomial
from .categorical import Categorical
from .distribution import Distribution
from .utils import _size, broadcast_all

__all__ = ["Multinomial"]


class Multinomial(Distribution):
    """torch.distributions.Multinomial(total_count=1, probs=None, logits=None): counts of
    total_count categorical draws (an int total_count, as PyTorch's)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None) -> None:
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        self._binomial = Binomial(total_count=total_count, probs=self.probs)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Multinomial, _instance)
        batch_shape = _size(batch_shape)
        new.total_count = self.total_count
        new._categorical = self._categorical.expand(batch_shape)
        new._binomial = Binomial(total_count=self.total_count, probs=new.probs)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def param_shape(self) -> cg.Size:
        return self._categorical.param_shape

    def sample(self, sample_shape=()):
        """total_count categorical draws per sample, counted by a one-hot sum."""
        with cg.no_grad():
            sample_shape = tuple(sample_shape)
            draws = self._categorical.sample((self.total_count,) + sample_shape)
            k = self._categorical._num_events
            classes = cg.arange(k, device=draws.device)
            counts = (draws.unsqueeze(-1) == classes).to(self.probs.dtype).sum(0)
            return counts.reshape(*self._extended_shape(sample_shape))

    def entropy(self):
        n = self.total_count
        support = self._binomial.enumerate_support(expand=False)[1:]
        binomial_probs = cg.exp(self._binomial.log_prob(support))
        weights = cg.lgamma(support + 1)
        return (n * self._categorical.entropy() - math.lgamma(n + 1)
                + (binomial_probs * weights).sum((0, -1)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        log_factorial_n = cg.lgamma(value.sum(-1) + 1)
        log_factorial_xs = cg.lgamma(value + 1).sum(-1)
        logits = cg.where((value == 0) & (logits == -math.inf), 0.0, logits)
        log_powers = (logits * value).sum(-1)
        return log_factorial_n - log_factorial_xs + log_powers
