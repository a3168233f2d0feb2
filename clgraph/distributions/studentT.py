"""torch.distributions.StudentT."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .chi2 import Chi2
from .distribution import _BroadcastParams
from .utils import _size, _standard_normal

__all__ = ["StudentT"]


class StudentT(_BroadcastParams):
    """torch.distributions.StudentT(df, loc=0.0, scale=1.0): a Normal over the root of a
    scaled Chi2 draw (reparameterized in loc, scale and df)."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real,
                       "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    _params = ("df", "loc", "scale")

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None) -> None:
        self._init_params((df, loc, scale), validate_args)
        self._chi2 = Chi2(self.df)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new._chi2 = self._chi2.expand(_size(batch_shape))
        return new

    @property
    def mean(self):
        return cg.where(self.df <= 1, math.nan, self.loc)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df = self.df
        finite = self.scale.pow(2) * df / cg.where(df > 2, df - 2, 1.0)
        return cg.where(df > 2, finite, cg.where(df > 1, math.inf, math.nan))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        x = _standard_normal(shape, self.df.dtype, self.df.device)
        z = self._chi2.rsample(sample_shape)
        return self.loc + self.scale * x * cg.rsqrt(z / self.df)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (value - self.loc) / self.scale
        z = (self.scale.log() + 0.5 * self.df.log() + 0.5 * math.log(math.pi)
             + cg.lgamma(0.5 * self.df) - cg.lgamma(0.5 * (self.df + 1.0)))
        return -0.5 * (self.df + 1.0) * cg.log1p(y ** 2.0 / self.df) - z

    def entropy(self):
        lbeta = (cg.lgamma(0.5 * self.df) + math.lgamma(0.5)
                 - cg.lgamma(0.5 * (self.df + 1)))
        return (self.scale.log() + 0.5 * (self.df + 1) * (cg.digamma(0.5 * (self.df + 1))
                                                          - cg.digamma(0.5 * self.df))
                + 0.5 * self.df.log() + lbeta)
