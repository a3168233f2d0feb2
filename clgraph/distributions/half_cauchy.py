"""torch.distributions.HalfCauchy."""

from __future__ import annotations

import math

import clgraph as cg

from ._folded import _Folded
from .cauchy import Cauchy

__all__ = ["HalfCauchy"]


class HalfCauchy(_Folded):
    """torch.distributions.HalfCauchy(scale): |Cauchy(0, scale)|."""

    _base = Cauchy

    @property
    def mean(self):
        return cg.full(tuple(self._extended_shape()), math.inf, dtype=self.scale.dtype,
                       device=self.scale.device)

    @property
    def variance(self):
        return self.base_dist.variance
