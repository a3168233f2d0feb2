"""torch.distributions.Dirichlet."""

from __future__ import annotations

import clgraph as cg

from . import constraints
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .utils import _clamp_tiny, _size, _standard_gamma, _xlogy, digamma, lgamma

__all__ = ["Dirichlet"]


class Dirichlet(ExponentialFamily):
    """torch.distributions.Dirichlet(concentration). Samples are normalised Gamma draws;
    rsample differentiates them through the Gammas' implicit gradients (PyTorch uses the
    Beta marginals' instead: the same expected gradient, other values per draw)."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None) -> None:
        if concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Dirichlet, _instance)
        batch_shape = _size(batch_shape)
        new.concentration = self.concentration.expand(*batch_shape, *self.event_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        g = _standard_gamma(self.concentration.expand(*shape))
        return _clamp_tiny(g / g.sum(-1, keepdim=True))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return _xlogy(c - 1.0, value).sum(-1) + lgamma(c.sum(-1)) - lgamma(c).sum(-1)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, True)

    @property
    def mode(self):
        """As PyTorch's: where every concentration is below 1 the first vertex."""
        cm1 = (self.concentration - 1).clamp(min=0.0)
        mode = cm1 / cm1.sum(-1, True)
        first = (cg.arange(cm1.shape[-1], device=cm1.device) == 0).to(mode.dtype)
        mask = (self.concentration < 1).all(-1, keepdim=True)
        return cg.where(mask, first, mode)

    @property
    def variance(self):
        con0 = self.concentration.sum(-1, True)
        return self.concentration * (con0 - self.concentration) / (con0.pow(2) * (con0 + 1))

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (lgamma(c).sum(-1) - lgamma(a0) - (k - a0) * digamma(a0)
                - ((c - 1.0) * digamma(c)).sum(-1))

    @property
    def _natural_params(self):
        return (self.concentration,)

    def _log_normalizer(self, x):
        return x.lgamma().sum(-1) - cg.lgamma(x.sum(-1))

