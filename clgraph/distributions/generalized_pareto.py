"""torch.distributions.GeneralizedPareto."""

from __future__ import annotations

import math
import numbers

import clgraph as cg

from . import constraints
from .distribution import _BroadcastParams
from .utils import _uniform

__all__ = ["GeneralizedPareto"]


class GeneralizedPareto(_BroadcastParams):
    """torch.distributions.GeneralizedPareto(loc, scale, concentration): a concentration
    within isclose of 0 takes the exponential limit."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive,
                       "concentration": constraints.real}
    has_rsample = True
    _params = ("loc", "scale", "concentration")

    def __init__(self, loc, scale, concentration, validate_args=None) -> None:
        self._init_params((loc, scale, concentration), validate_args)

    def _safe(self):
        eq_zero = cg.isclose(self.concentration, cg.zeros_like(self.concentration))
        return eq_zero, cg.where(eq_zero, cg.ones_like(self.concentration), self.concentration)

    def _z(self, x):
        return (x - self.loc) / self.scale

    def rsample(self, sample_shape=()):
        return self.icdf(self._sample_like(sample_shape, _uniform))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        eq_zero, safe = self._safe()
        y = 1 / safe + cg.ones_like(z)
        nonzero = cg.where(y == 0, y, y * cg.log1p(safe * z))
        log_scale = (math.log(self.scale) if isinstance(self.scale, numbers.Real)
                     else self.scale.log())
        return -log_scale - cg.where(eq_zero, z, nonzero)

    def log_survival_function(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        eq_zero, safe = self._safe()
        return cg.where(eq_zero, -z, -cg.log1p(safe * z) / safe)

    def log_cdf(self, value):
        return cg.log1p(-cg.exp(self.log_survival_function(value)))

    def cdf(self, value):
        return cg.exp(self.log_cdf(value))

    def icdf(self, value):
        eq_zero, safe = self._safe()
        logu = cg.log1p(-value)
        nonzero = self.loc + self.scale / safe * cg.expm1(-safe * logu)
        return cg.where(eq_zero, self.loc - self.scale * logu, nonzero)

    @property
    def mean(self):
        valid = self.concentration < 1
        safe = cg.where(valid, self.concentration, 0.5)
        return cg.where(valid, self.loc + self.scale / (1 - safe), math.nan)

    @property
    def variance(self):
        valid = self.concentration < 0.5
        safe = cg.where(valid, self.concentration, 0.25)
        return cg.where(valid, self.scale ** 2 / ((1 - safe) ** 2 * (1 - 2 * safe)), math.nan)

    def entropy(self):
        ans = cg.log(self.scale) + self.concentration + 1
        return ans.expand(*self._batch_shape)

    @property
    def mode(self):
        return self.loc

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        lower = self.loc
        upper = cg.where(self.concentration < 0, lower - self.scale / self.concentration,
                         math.inf)
        return constraints.interval(lower, upper)
