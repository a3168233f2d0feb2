"""torch.distributions.Laplace."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .distribution import _BroadcastParams
from .utils import _uniform

__all__ = ["Laplace"]


class Laplace(_BroadcastParams):
    """torch.distributions.Laplace(loc, scale)."""

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
    def variance(self):
        return 2 * self.scale.pow(2)

    @property
    def stddev(self):
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape=()):
        # u in (-1, 1), as PyTorch: the open interval keeps log1p(-|u|) finite
        eps = cg.finfo(self.loc.dtype).eps
        u = self._sample_like(sample_shape, _uniform) * (2 - 2 * eps) + (eps - 1)
        return self.loc - self.scale * u.sign() * cg.log1p(-u.abs())

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -cg.log(2 * self.scale) - (value - self.loc).abs() / self.scale

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 - 0.5 * (value - self.loc).sign() * cg.expm1(
            -(value - self.loc).abs() / self.scale)

    def icdf(self, value):
        term = value - 0.5
        return self.loc - self.scale * term.sign() * cg.log1p(-2 * term.abs())

    def entropy(self):
        return 1 + cg.log(2 * self.scale)
