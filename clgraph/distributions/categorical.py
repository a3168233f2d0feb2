"""torch.distributions.Categorical."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .distribution import Distribution
from .utils import _size, _uniform, lazy_property, logits_to_probs, probs_to_logits

__all__ = ["Categorical"]


class Categorical(Distribution):
    """torch.distributions.Categorical(probs=None, logits=None). Samples by inverse CDF on
    the device: one uniform per draw, counted against the cumulative probabilities."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if probs.ndim < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.ndim < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        batch_shape = self._param.shape[:-1] if self._param.ndim > 1 else ()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = _size(batch_shape)
        param_shape = tuple(batch_shape) + (self._num_events,)
        new._num_events = self._num_events
        return self._expand_probs_logits(new, batch_shape, param_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> cg.Size:
        return self._param.shape

    @property
    def mean(self):
        return cg.full(tuple(self._extended_shape()), math.nan, dtype=self.probs.dtype,
                       device=self.probs.device)

    @property
    def mode(self):
        return self.probs.argmax(dim=-1)

    @property
    def variance(self):
        return self.mean

    def sample(self, sample_shape=()):
        with cg.no_grad():
            probs = self.probs.detach()
            cdf = cg.cumsum(probs, -1)
            shape = tuple(self._extended_shape(sample_shape))
            # u * total < total, so the count stops at a category of non-zero probability
            u = _uniform(shape + (1,), probs.dtype, probs.device) * cdf[..., -1:]
            index = (cdf < u).to(cg.int64).sum(-1)
            return index.clamp(max=self._num_events - 1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        shape = cg.broadcast_shapes(value.shape, self.logits.shape)
        log_pmf = self.logits.expand(*shape)
        value = value.expand(*shape[:-1], 1)
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self):
        logits = self.logits.clamp(min=cg.finfo(self.logits.dtype).min)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True):
        values = cg.arange(self._num_events, dtype=cg.int64, device=self._param.device)
        values = values.view(-1, *(1,) * len(self._batch_shape))
        if expand:
            values = values.expand(-1, *self._batch_shape)
        return values
