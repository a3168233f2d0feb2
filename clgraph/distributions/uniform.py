"""torch.distributions.Uniform."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .distribution import _BroadcastParams
from .utils import _uniform

__all__ = ["Uniform"]


class Uniform(_BroadcastParams):
    """torch.distributions.Uniform(low, high): samples in [low, high)."""

    has_rsample = True
    _params = ("low", "high")

    def __init__(self, low, high, validate_args=None) -> None:
        self._init_params((low, high), validate_args)

    @property
    def arg_constraints(self) -> dict:
        return {"low": constraints.less_than(self.high),
                "high": constraints.greater_than(self.low)}

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    @property
    def mean(self):
        return (self.high + self.low) / 2

    @property
    def mode(self):
        return math.nan * self.high

    @property
    def stddev(self):
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self):
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape=()):
        u = self._sample_like(sample_shape, _uniform)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        lb = (self.low <= value).type_as(self.low)
        ub = (self.high > value).type_as(self.low)
        return cg.log(lb * ub) - cg.log(self.high - self.low)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return ((value - self.low) / (self.high - self.low)).clamp(min=0, max=1)

    def icdf(self, value):
        return value * (self.high - self.low) + self.low

    def entropy(self):
        return cg.log(self.high - self.low)
