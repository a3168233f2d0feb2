"""torch.distributions.Wishart."""

from __future__ import annotations

import math
import numbers
import warnings

import clgraph as cg

from . import constraints
from .chi2 import Chi2
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .multivariate_normal import _precision_to_scale_tril
from .transforms import _vec_to_tril_matrix
from .utils import _size, _standard_normal, lazy_property

__all__ = ["Wishart"]

_LOG_2 = math.log(2)


def _mvdigamma(x, p: int):
    """The multivariate digamma: sum_i digamma(x - i / 2)."""
    steps = cg.arange(p, dtype=x.dtype, device=x.device) / 2
    return cg.digamma(x.unsqueeze(-1) - steps).sum(-1)


def _cholesky_solve_diag_sum(value, tril):
    """trace((L L^T)^-1 value) by two triangular solves."""
    y = cg.linalg.solve_triangular(tril, value, upper=False)
    x = cg.linalg.solve_triangular(tril.mT, y, upper=True)
    return x.diagonal(dim1=-2, dim2=-1).sum(-1)


class Wishart(ExponentialFamily):
    """torch.distributions.Wishart(df, covariance_matrix=None, precision_matrix=None,
    scale_tril=None): samples by Bartlett's decomposition (reparameterized)."""

    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    @property
    def arg_constraints(self) -> dict:
        return {"covariance_matrix": constraints.positive_definite,
                "precision_matrix": constraints.positive_definite,
                "scale_tril": constraints.lower_cholesky,
                "df": constraints.greater_than(self.event_shape[-1] - 1)}

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None) -> None:
        given = [p for p in (covariance_matrix, precision_matrix, scale_tril) if p is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or "
                             "scale_tril may be specified.")
        param = given[0]
        if param.ndim < 2:
            raise ValueError("scale_tril must be at least two-dimensional, with optional "
                             "leading batch dimensions")
        if isinstance(df, numbers.Number):
            batch_shape = tuple(param.shape[:-2])
            self.df = cg.tensor(df, dtype=param.dtype, device=param.device)
        else:
            batch_shape = tuple(cg.broadcast_shapes(param.shape[:-2], df.shape))
            self.df = df.expand(*batch_shape)
        event_shape = tuple(param.shape[-2:])
        p = event_shape[-1]
        if bool((self.df <= p - 1).any()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = "
                             f"{p - 1}.")
        if scale_tril is not None:
            self.scale_tril = param.expand(*batch_shape, p, p)
        elif covariance_matrix is not None:
            self.covariance_matrix = param.expand(*batch_shape, p, p)
        else:
            self.precision_matrix = param.expand(*batch_shape, p, p)
        if bool((self.df < p).any()):
            warnings.warn("Low df values detected. Singular samples are highly likely to "
                          "occur for ndim - 1 < df < ndim.", stacklevel=2)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        self._batch_dims = [-(x + 1) for x in range(len(self._batch_shape))]
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cg.linalg.cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)
        self._dist_chi2 = self._chi2(batch_shape)

    def _chi2(self, batch_shape):
        """Chi2(df - i) for the i-th diagonal entry of Bartlett's factor."""
        steps = cg.arange(self._event_shape[-1], dtype=self._unbroadcasted_scale_tril.dtype,
                          device=self._unbroadcasted_scale_tril.device)
        return Chi2(df=(self.df.unsqueeze(-1) - steps).expand(*batch_shape, -1))

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Wishart, _instance)
        batch_shape = _size(batch_shape)
        cov_shape = tuple(batch_shape) + tuple(self.event_shape)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril.expand(*cov_shape)
        new.df = self.df.expand(*batch_shape)
        new._batch_dims = [-(x + 1) for x in range(len(batch_shape))]
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(*cov_shape))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._dist_chi2 = new._chi2(tuple(batch_shape))
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(*self._batch_shape, *self._event_shape)

    @lazy_property
    def covariance_matrix(self):
        tril = self._unbroadcasted_scale_tril
        return (tril @ tril.mT).expand(*self._batch_shape, *self._event_shape)

    @lazy_property
    def precision_matrix(self):
        tril = self._unbroadcasted_scale_tril
        eye = cg.eye(self._event_shape[-1], dtype=tril.dtype, device=tril.device)
        inv_tril = cg.linalg.solve_triangular(tril, eye, upper=False)
        return (inv_tril.mT @ inv_tril).expand(*self._batch_shape, *self._event_shape)

    def _df_matrix(self, x):
        return x.reshape(*self._batch_shape, 1, 1)

    @property
    def mean(self):
        return self._df_matrix(self.df) * self.covariance_matrix

    @property
    def mode(self):
        factor = self.df - self.covariance_matrix.shape[-1] - 1
        factor = cg.where(factor <= 0, math.nan, factor)
        return self._df_matrix(factor) * self.covariance_matrix

    @property
    def variance(self):
        v = self.covariance_matrix
        diag = v.diagonal(dim1=-2, dim2=-1)
        return self._df_matrix(self.df) * (v.pow(2) + diag.unsqueeze(-1) * diag.unsqueeze(-2))

    def _bartlett_sampling(self, sample_shape=()):
        p = self._event_shape[-1]
        eps = cg.finfo(self._unbroadcasted_scale_tril.dtype).eps
        diag = cg.diag_embed(self._dist_chi2.rsample(sample_shape).sqrt().clamp(min=eps))
        below = _standard_normal(tuple(sample_shape) + tuple(self._batch_shape)
                                 + (p * (p - 1) // 2,), diag.dtype, diag.device)
        noise = diag + _vec_to_tril_matrix(below, diag=-1)
        chol = self._unbroadcasted_scale_tril @ noise
        return chol @ chol.mT

    def rsample(self, sample_shape=(), max_try_correction=None):
        """Bartlett draws; a singular one (ndim - 1 < df < ndim) is drawn again up to
        ``max_try_correction`` (10) times, with a warning, as PyTorch's."""
        max_try_correction = 10 if max_try_correction is None else max_try_correction
        sample_shape = tuple(sample_shape)
        sample = self._bartlett_sampling(sample_shape)
        singular = ~self.support.check(sample)
        if self._batch_shape:
            singular = singular.amax(self._batch_dims)
        if bool(singular.any()):
            warnings.warn("Singular sample detected.", stacklevel=2)
            for _ in range(max_try_correction):
                fresh = self._bartlett_sampling(sample_shape)
                mask = singular.reshape(*singular.shape, *(1,) * (sample.ndim
                                                                  - singular.ndim))
                sample = cg.where(mask, fresh, sample)
                singular = ~self.support.check(sample)
                if self._batch_shape:
                    singular = singular.amax(self._batch_dims)
                if not bool(singular.any()):
                    break
        return sample

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        nu = self.df
        p = self._event_shape[-1]
        tril = self._unbroadcasted_scale_tril
        return (-nu * (p * _LOG_2 / 2 + tril.diagonal(dim1=-2, dim2=-1).log().sum(-1))
                - cg.mvlgamma(nu / 2, p=p)
                + (nu - p - 1) / 2 * cg.linalg.slogdet(value).logabsdet
                - _cholesky_solve_diag_sum(value, tril) / 2)

    def entropy(self):
        nu = self.df
        p = self._event_shape[-1]
        tril = self._unbroadcasted_scale_tril
        return ((p + 1) * (p * _LOG_2 / 2 + tril.diagonal(dim1=-2, dim2=-1).log().sum(-1))
                + cg.mvlgamma(nu / 2, p=p) - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p=p)
                + nu * p / 2)

    @property
    def _natural_params(self):
        nu = self.df
        p = self._event_shape[-1]
        return -self.precision_matrix / 2, (nu - p - 1) / 2

    def _log_normalizer(self, x, y):
        p = self._event_shape[-1]
        return ((y + (p + 1) / 2) * (-cg.linalg.slogdet(-2 * x).logabsdet + _LOG_2 * p)
                + cg.mvlgamma(y + (p + 1) / 2, p=p))
