"""torch.distributions.NegativeBinomial."""

from __future__ import annotations

import clgraph as cg
import clgraph.nn.functional as F

from . import constraints
from .distribution import Distribution
from .gamma import Gamma
from .utils import (
    _poisson,
    _size,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
)

__all__ = ["NegativeBinomial"]


class NegativeBinomial(Distribution):
    """torch.distributions.NegativeBinomial(total_count, probs=None, logits=None): the
    number of successes before total_count failures; samples are Poisson draws of a Gamma
    rate."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0),
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None) -> None:
        batch_shape, (count,) = self._probs_or_logits(probs, logits, total_count)
        self.total_count = count.to(self._param.dtype)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(NegativeBinomial, _instance)
        batch_shape = _size(batch_shape)
        new.total_count = self.total_count.expand(*batch_shape)
        return self._expand_probs_logits(new, batch_shape)

    @property
    def mean(self):
        return self.total_count * cg.exp(self.logits)

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / cg.sigmoid(-self.logits)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> cg.Size:
        return self._param.shape

    @lazy_property
    def _gamma(self):
        return Gamma(concentration=self.total_count, rate=cg.exp(-self.logits),
                     validate_args=False)

    def sample(self, sample_shape=()):
        with cg.no_grad():
            rate = self._gamma.sample(sample_shape)
            return _poisson(rate)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        log_unnormalized = (self.total_count * F.logsigmoid(-self.logits)
                            + value * F.logsigmoid(self.logits))
        log_normalization = (-cg.lgamma(self.total_count + value) + cg.lgamma(1.0 + value)
                             + cg.lgamma(self.total_count))
        # a total_count + value of 0 is a point mass at 0
        log_normalization = cg.where(self.total_count + value == 0, 0.0, log_normalization)
        return log_unnormalized - log_normalization
