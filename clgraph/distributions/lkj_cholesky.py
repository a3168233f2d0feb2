"""torch.distributions.LKJCholesky."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .beta import Beta
from .distribution import Distribution
from .utils import _size, _standard_normal, broadcast_all

__all__ = ["LKJCholesky"]


class LKJCholesky(Distribution):
    """torch.distributions.LKJCholesky(dim, concentration=1.0): Cholesky factors of
    correlation matrices with density proportional to det(L L^T)^(concentration - 1),
    sampled by the onion method (Lewandowski, Kurowicka and Joe, 2009): each row a Beta
    radius times a uniform direction."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration=1.0, validate_args=None) -> None:
        if dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. "
                             f"Found dim={dim}.")
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        batch_shape = self.concentration.shape
        marginal_conc = self.concentration + 0.5 * (self.dim - 2)
        offset = cg.arange(self.dim - 1, dtype=self.concentration.dtype,
                           device=self.concentration.device)
        offset = cg.cat([offset.new_zeros((1,)), offset])
        beta_conc1 = offset + 0.5
        beta_conc0 = marginal_conc.unsqueeze(-1) - 0.5 * offset
        self._beta = Beta(beta_conc1, beta_conc0)
        super().__init__(batch_shape, (dim, dim), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LKJCholesky, _instance)
        batch_shape = _size(batch_shape)
        new.dim = self.dim
        new.concentration = self.concentration.expand(*batch_shape)
        new._beta = self._beta.expand(tuple(batch_shape) + (self.dim,))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=()):
        with cg.no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)
            shape = tuple(self._extended_shape(sample_shape))
            u_normal = _standard_normal(shape, y.dtype, y.device).tril(-1)
            norm = u_normal.norm(dim=-1, keepdim=True)
            # row 0 has no off-diagonal entries: its direction is 0
            u_hypersphere = cg.where(norm > 0, u_normal / cg.where(norm > 0, norm, 1.0), 0.0)
            w = cg.sqrt(y) * u_hypersphere
            tiny = cg.finfo(w.dtype).tiny
            diag = cg.clamp(1 - (w * w).sum(-1), min=tiny).sqrt()
            return w + cg.diag_embed(diag)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diag_elems = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = cg.arange(2, self.dim + 1, dtype=self.concentration.dtype,
                          device=self.concentration.device)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized = (order * diag_elems.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        denominator = cg.lgamma(alpha) * dm1
        numerator = cg.mvlgamma(alpha - 0.5, dm1)
        pi_constant = 0.5 * dm1 * math.log(math.pi)
        return unnormalized - (pi_constant + numerator - denominator)
