"""torch.distributions.VonMises."""

from __future__ import annotations

import math

import clgraph as cg

from . import constraints
from .distribution import Distribution
from .utils import _size, _uniform, broadcast_all, lazy_property

__all__ = ["VonMises"]

# Best and Fisher's rejection sampler accepts a candidate with probability > 0.65: this many
# rounds at once all fail with probability < 1e-10, and the rare rest draws again
_VON_MISES_ROUNDS = 24


def _log_i0(x):
    """log I0(x) = log(i0e(x)) + x (exact where PyTorch uses a 1e-7 polynomial fit)."""
    return cg.log(cg.special.i0e(x)) + x.abs()


class VonMises(Distribution):
    """torch.distributions.VonMises(loc, concentration): the circular normal on [-pi, pi);
    its normalizer from the exact I0 (PyTorch's polynomial fit differs by about 1e-7
    relative)."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None) -> None:
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, (), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = _size(batch_shape)
        return type(self)(self.loc.expand(*batch_shape),
                          self.concentration.expand(*batch_shape),
                          validate_args=self.__dict__.get("_validate_args"))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (self.concentration * cg.cos(value - self.loc) - math.log(2 * math.pi)
                - _log_i0(self.concentration))

    @lazy_property
    def _proposal_r(self):
        kappa = self.concentration.detach()
        tau = 1 + (1 + 4 * kappa ** 2).sqrt()
        rho = (tau - (2 * tau).sqrt()) / (2 * kappa)
        return cg.where(kappa < 1e-5, 1 / kappa + kappa, (1 + rho ** 2) / (2 * rho))

    def sample(self, sample_shape=()):
        """Best and Fisher's wrapped-Cauchy envelope (1979), as PyTorch's."""
        with cg.no_grad():
            shape = tuple(self._extended_shape(sample_shape))
            loc, kappa = self.loc.detach().expand(*shape), self.concentration.detach()
            r = self._proposal_r.expand(*shape)
            kappa = kappa.expand(*shape)
            x = cg.zeros(shape, dtype=loc.dtype, device=loc.device)
            done = cg.zeros(shape, dtype=cg.bool, device=loc.device)
            while not bool(done.all()):
                u = _uniform((_VON_MISES_ROUNDS, 3) + shape, loc.dtype, loc.device)
                u1, u2, u3 = u[:, 0], u[:, 1], u[:, 2]
                z = cg.cos(math.pi * u1)
                f = (1 + r * z) / (r + z)
                c = kappa * (r - f)
                accept = (c * (2 - c) - u2 > 0) | ((c / u2).log() + 1 - c >= 0)
                first = accept.to(cg.int32).argmax(0, keepdim=True)
                cand = ((u3 - 0.5).sign() * f.clamp(min=-1.0, max=1.0).acos()).gather(0, first)
                got = accept.any(0)
                x = cg.where(~done & got, cand.squeeze(0), x)
                done = done | got
            return (x + math.pi + loc) % (2 * math.pi) - math.pi

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @lazy_property
    def variance(self):
        k = self.concentration
        return 1 - cg.special.i1e(k) / cg.special.i0e(k)
