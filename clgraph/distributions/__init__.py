"""torch.distributions: probability distributions composed of clgraph ops, so log_prob,
rsample and entropy differentiate with respect to the parameters and samples come from
clgraph's generator (cg.manual_seed makes them reproducible) on the device.

What differs from PyTorch: Dirichlet's (and Beta's) rsample differentiates through the
normalised Gamma draws, not the Beta marginals (the same expected gradient, other values per
draw); there is no TransformedDistribution (LogNormal is written directly);
lgamma, digamma and erfinv are composed here from elementwise ops for positive arguments
(about 1e-11 absolute error in float64). Imports clgraph's public API only."""

from __future__ import annotations

from . import constraints
from .bernoulli import Bernoulli
from .beta import Beta
from .categorical import Categorical
from .dirichlet import Dirichlet
from .distribution import Distribution
from .exponential import Exponential
from .gamma import Gamma
from .independent import Independent
from .kl import kl_divergence, register_kl
from .laplace import Laplace
from .log_normal import LogNormal
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .one_hot_categorical import OneHotCategorical
from .poisson import Poisson
from .uniform import Uniform

__all__ = ["Bernoulli", "Beta", "Categorical", "Dirichlet", "Distribution", "Exponential",
           "Gamma", "Independent", "Laplace", "LogNormal", "MultivariateNormal", "Normal",
           "OneHotCategorical", "Poisson", "Uniform", "constraints", "kl_divergence",
           "register_kl"]
