"""torch.distributions.Normal."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .distribution import _BroadcastParams
from .exp_family import ExponentialFamily
from .utils import _standard_normal, erfinv

__all__ = ["Normal"]


class Normal(_BroadcastParams, ExponentialFamily):
    """torch.distributions.Normal(loc, scale)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    _params = ("loc", "scale")

    def __init__(self, loc, scale, validate_args=None) -> None:
        self._init_params((loc, scale), validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.stddev.pow(2)

    def rsample(self, sample_shape=()):
        eps = self._sample_like(sample_shape, _standard_normal)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        var = self.scale ** 2
        log_scale = cg.log(self.scale)
        return -((value - self.loc) ** 2) / (2 * var) - log_scale - math.log(
            math.sqrt(2 * math.pi))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + cg.erf((value - self.loc) * self.scale.reciprocal() /
                                 math.sqrt(2)))

    def icdf(self, value):
        """Inverse CDF through erfinv, which clgraph composes from its ops (Giles'
        approximation refined by a Newton step: about 1e-7 relative error in the tails)."""
        return self.loc + self.scale * erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + cg.log(self.scale)

    @property
    def _natural_params(self):
        return (self.loc / self.scale.pow(2), -0.5 * self.scale.pow(2).reciprocal())

    def _log_normalizer(self, x, y):
        return -0.25 * x.pow(2) / y + 0.5 * cg.log(-math.pi / y)

    _mean_carrier_measure = 0
