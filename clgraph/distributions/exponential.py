"""torch.distributions.Exponential."""

from __future__ import annotations

import clgraph as cg

from . import constraints
from .distribution import _BroadcastParams
from .exp_family import ExponentialFamily
from .utils import _uniform

__all__ = ["Exponential"]


class Exponential(_BroadcastParams, ExponentialFamily):
    """torch.distributions.Exponential(rate)."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _params = ("rate",)

    def __init__(self, rate, validate_args=None) -> None:
        self._init_params((rate,), validate_args)

    @property
    def mean(self):
        return self.rate.reciprocal()

    @property
    def mode(self):
        return cg.zeros_like(self.rate)

    @property
    def stddev(self):
        return self.rate.reciprocal()

    @property
    def variance(self):
        return self.rate.pow(-2)

    def rsample(self, sample_shape=()):
        # u in [0, 1): -log1p(-u) is finite and >= 0
        u = self._sample_like(sample_shape, _uniform)
        return -cg.log1p(-u) / self.rate

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return cg.log(self.rate) - self.rate * value

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 1 - cg.exp(-self.rate * value)

    def icdf(self, value):
        return -cg.log1p(-value) / self.rate

    def entropy(self):
        return 1.0 - cg.log(self.rate)

    @property
    def _natural_params(self):
        return (-self.rate,)

    def _log_normalizer(self, x):
        return -cg.log(-x)

    _mean_carrier_measure = 0
