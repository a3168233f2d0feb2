"""torch.distributions.Gamma."""

from __future__ import annotations

import clgraph as cg

from . import constraints
from .distribution import _BroadcastParams
from .exp_family import ExponentialFamily
from .utils import _clamp_tiny, _standard_gamma, _xlogy, digamma, lgamma

__all__ = ["Gamma"]


class Gamma(_BroadcastParams, ExponentialFamily):
    """torch.distributions.Gamma(concentration, rate). Samples are drawn on the device by
    Marsaglia and Tsang's method; rsample differentiates them with respect to concentration
    implicitly (the gradient at a fixed CDF value, as PyTorch's) and rate directly."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _params = ("concentration", "rate")

    def __init__(self, concentration, rate, validate_args=None) -> None:
        self._init_params((concentration, rate), validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        value = _standard_gamma(self.concentration.expand(*shape)) / self.rate.expand(*shape)
        return _clamp_tiny(value)

    def log_prob(self, value):
        value = value if isinstance(value, cg.Tensor) else cg.tensor(
            value, dtype=self.rate.dtype, device=self.rate.device)
        if self._validate_args:
            self._validate_sample(value)
        return (_xlogy(self.concentration, self.rate) + _xlogy(self.concentration - 1, value)
                - self.rate * value - lgamma(self.concentration))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return cg.special.gammainc(self.concentration, self.rate * value)

    def entropy(self):
        return (self.concentration - cg.log(self.rate) + lgamma(self.concentration)
                + (1.0 - self.concentration) * digamma(self.concentration))

    @property
    def _natural_params(self):
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return lgamma(x + 1) + (x + 1) * cg.log(-y.reciprocal())

    _mean_carrier_measure = 0
