"""torch.distributions.Cauchy."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .distribution import _BroadcastParams
from .utils import _uniform

__all__ = ["Cauchy"]


class Cauchy(_BroadcastParams):
    """torch.distributions.Cauchy(loc, scale): draws tan(pi (u - 1/2)) of uniforms."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    _params = ("loc", "scale")

    def __init__(self, loc, scale, validate_args=None) -> None:
        self._init_params((loc, scale), validate_args)

    @property
    def mean(self):
        return cg.full(tuple(self._extended_shape()), math.nan, dtype=self.loc.dtype,
                       device=self.loc.device)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return cg.full(tuple(self._extended_shape()), math.inf, dtype=self.loc.dtype,
                       device=self.loc.device)

    def rsample(self, sample_shape=()):
        u = self._sample_like(sample_shape, _uniform)
        return self.loc + cg.tan(math.pi * (u - 0.5)) * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (-math.log(math.pi) - self.scale.log()
                - (((value - self.loc) / self.scale) ** 2).log1p())

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return cg.atan((value - self.loc) / self.scale) / math.pi + 0.5

    def icdf(self, value):
        return cg.tan(math.pi * (value - 0.5)) * self.scale + self.loc

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()
