"""torch.distributions.ContinuousBernoulli."""

from __future__ import annotations

import math
import numbers

import clgraph as cg
import clgraph.nn.functional as F

from . import constraints
from .exp_family import ExponentialFamily
from .utils import (
    _size,
    _uniform,
    broadcast_all,
    clamp_probs,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
)

__all__ = ["ContinuousBernoulli"]


class ContinuousBernoulli(ExponentialFamily):
    """torch.distributions.ContinuousBernoulli(probs=None, logits=None, lims=(0.499,
    0.501)): density proportional to p^x (1 - p)^(1 - x) on [0, 1]; within ``lims`` of
    p = 1/2 the normalizer, moments and inverse CDF use their Taylor expansions."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _mean_carrier_measure = 0
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501),
                 validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            is_scalar = isinstance(probs, numbers.Number)
            (self.probs,) = broadcast_all(probs)
            if validate_args is not None and not bool(
                    self.arg_constraints["probs"].check(self.probs).all()):
                raise ValueError("The parameter probs has invalid values")
            self.probs = clamp_probs(self.probs)
        else:
            is_scalar = isinstance(logits, numbers.Number)
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        self._lims = lims
        super().__init__(() if is_scalar else self._param.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ContinuousBernoulli, _instance)
        new._lims = self._lims
        batch_shape = _size(batch_shape)
        return self._expand_probs_logits(new, batch_shape)

    def _outside_unstable_region(self):
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self):
        return cg.where(self._outside_unstable_region(), self.probs,
                        cg.full_like(self.probs, self._lims[0]))

    def _cont_bern_log_norm(self):
        """log C(p), C the normalizing constant: 2 atanh(1 - 2p) / (1 - 2p)."""
        cut = self._cut_probs()
        below = cg.where(cut <= 0.5, cut, cg.zeros_like(cut))
        above = cg.where(cut >= 0.5, cut, cg.ones_like(cut))
        log_norm = cg.log(cg.abs(cg.log1p(-cut) - cg.log(cut))) - cg.where(
            cut <= 0.5, cg.log1p(-2.0 * below), cg.log(2.0 * above - 1.0))
        x = (self.probs - 0.5).pow(2)
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return cg.where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut = self._cut_probs()
        mus = cut / (2.0 * cut - 1.0) + 1.0 / (cg.log1p(-cut) - cg.log(cut))
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x.pow(2)) * x
        return cg.where(self._outside_unstable_region(), mus, taylor)

    @property
    def stddev(self):
        return self.variance.sqrt()

    @property
    def variance(self):
        cut = self._cut_probs()
        var = (cut * (cut - 1.0) / (1.0 - 2.0 * cut).pow(2)
               + 1.0 / (cg.log1p(-cut) - cg.log(cut)).pow(2))
        x = (self.probs - 0.5).pow(2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return cg.where(self._outside_unstable_region(), var, taylor)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    @property
    def param_shape(self) -> cg.Size:
        return self._param.shape

    def sample(self, sample_shape=()):
        u = _uniform(tuple(self._extended_shape(sample_shape)), self.probs.dtype,
                     self.probs.device)
        with cg.no_grad():
            return self.icdf(u)

    def rsample(self, sample_shape=()):
        u = _uniform(tuple(self._extended_shape(sample_shape)), self.probs.dtype,
                     self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return (-F.binary_cross_entropy_with_logits(logits, value, reduction="none")
                + self._cont_bern_log_norm())

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        cut = self._cut_probs()
        cdfs = (cut.pow(value) * (1.0 - cut).pow(1.0 - value) + cut - 1.0) / (2.0 * cut - 1.0)
        unbounded = cg.where(self._outside_unstable_region(), cdfs, value)
        return cg.where(value <= 0.0, cg.zeros_like(value),
                        cg.where(value >= 1.0, cg.ones_like(value), unbounded))

    def icdf(self, value):
        cut = self._cut_probs()
        inside = ((cg.log1p(-cut + value * (2.0 * cut - 1.0)) - cg.log1p(-cut))
                  / (cg.log(cut) - cg.log1p(-cut)))
        return cg.where(self._outside_unstable_region(), inside, value)

    def entropy(self):
        log_probs0 = cg.log1p(-self.probs)
        log_probs1 = cg.log(self.probs)
        return (self.mean * (log_probs0 - log_probs1) - self._cont_bern_log_norm()
                - log_probs0)

    @property
    def _natural_params(self):
        return (self.logits,)

    def _log_normalizer(self, x):
        """log((exp(x) - 1) / x), its Taylor series near x = 0."""
        out_unst_reg = (x <= self._lims[0] - 0.5) | (x > self._lims[1] - 0.5)
        cut = cg.where(out_unst_reg, x, cg.full_like(x, self._lims[0] - 0.5))
        log_norm = cg.log(cg.abs(cg.expm1(cut))) - cg.log(cg.abs(cut))
        taylor = 0.5 * x + x.pow(2) / 24.0 - x.pow(4) / 2880.0
        return cg.where(out_unst_reg, log_norm, taylor)
