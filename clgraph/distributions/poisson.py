"""torch.distributions.Poisson."""

from __future__ import annotations

from . import constraints
from .distribution import _BroadcastParams
from .exp_family import ExponentialFamily
from .utils import _poisson, _xlogy, broadcast_all, lgamma

__all__ = ["Poisson"]


class Poisson(_BroadcastParams, ExponentialFamily):
    """torch.distributions.Poisson(rate). Samples are drawn on the device (clgraph has no
    torch.poisson): exponential arrivals below rate 10, Hormann's PTRS from 10 on."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer
    _params = ("rate",)

    def __init__(self, rate, validate_args=None) -> None:
        self._init_params((rate,), validate_args)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        return _poisson(self.rate.expand(*self._extended_shape(sample_shape)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value.to(self.rate.dtype))
        return _xlogy(value, rate) - rate - lgamma(value + 1)

    @property
    def _natural_params(self):
        return (self.rate.log(),)

    def _log_normalizer(self, x):
        return x.exp()
