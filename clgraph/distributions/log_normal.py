"""torch.distributions.LogNormal, written directly (clgraph has no
TransformedDistribution): exp of a Normal, which it keeps as ``base_dist``."""

from __future__ import annotations

import clgraph as cg

from . import constraints
from .distribution import Distribution
from .normal import Normal
from .utils import _size

__all__ = ["LogNormal"]


class LogNormal(Distribution):
    """torch.distributions.LogNormal(loc, scale)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        self.base_dist = Normal(loc, scale, validate_args=validate_args)
        super().__init__(self.base_dist.batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogNormal, _instance)
        batch_shape = _size(batch_shape)
        new.base_dist = self.base_dist.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def loc(self):
        return self.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mean(self):
        return (self.loc + self.scale.pow(2) / 2).exp()

    @property
    def mode(self):
        return (self.loc - self.scale.square()).exp()

    @property
    def variance(self):
        scale_sq = self.scale.pow(2)
        return cg.expm1(scale_sq) * (2 * self.loc + scale_sq).exp()

    def rsample(self, sample_shape=()):
        return cg.exp(self.base_dist.rsample(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        x = cg.log(value)
        return self.base_dist.log_prob(x) - x

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self.base_dist.cdf(cg.log(value))

    def icdf(self, value):
        return cg.exp(self.base_dist.icdf(value))

    def entropy(self):
        return self.base_dist.entropy() + self.loc
