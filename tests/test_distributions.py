"""clgraph.distributions: each distribution is one row of CASES (parameters, a value in the
support, numpy closed forms); the tests run every row for values, shapes, sample moments,
gradients (gradcheck in float64) and, where PyTorch 2.13 is installed, parity with
torch.distributions. Then KL, validation errors, reprs and constraints."""

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph.distributions import constraints

D = cg.distributions
LOG2PI = math.log(2 * math.pi)
lgamma = np.vectorize(math.lgamma)


def digamma(x):
    """Central difference of math.lgamma: about 1e-10 accurate, enough for a reference."""
    h = 1e-5
    return (lgamma(x + h) - lgamma(x - h)) / (2 * h)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def mvn_logp(p, x):
    cov, d = p["covariance_matrix"], x - p["loc"]
    k = d.shape[-1]
    m = np.einsum("...i,...ij,...j->...", d, np.linalg.inv(cov), d)
    return -0.5 * (k * LOG2PI + np.linalg.slogdet(cov)[1] + m)


def beta_logp(p, x):
    a, b = p["concentration1"], p["concentration0"]
    return ((a - 1) * np.log(x) + (b - 1) * np.log1p(-x)
            - (lgamma(a) + lgamma(b) - lgamma(a + b)))


def beta_entropy(p):
    a, b = p["concentration1"], p["concentration0"]
    lbeta = lgamma(a) + lgamma(b) - lgamma(a + b)
    return (lbeta - (a - 1) * digamma(a) - (b - 1) * digamma(b)
            + (a + b - 2) * digamma(a + b))


def dirichlet_entropy(p):
    c = p["concentration"]
    a0, k = c.sum(-1), c.shape[-1]
    return (lgamma(c).sum(-1) - lgamma(a0) + (a0 - k) * digamma(a0)
            - ((c - 1) * digamma(c)).sum(-1))


@dataclass
class Case:
    """One distribution: ``make(D, **params)`` builds it from either library's
    distributions module; ``value`` is a point of the support (numpy, batch + event shape);
    the closed forms take the numpy parameters."""
    name: str
    make: Callable
    params: dict
    value: np.ndarray
    logp: Callable
    entropy: Callable | None
    mean: Callable
    var: Callable
    event_shape: tuple = ()
    discrete: bool = False
    grad_params: tuple | None = None  # parameters gradchecked (default: all)
    extra: dict = field(default_factory=dict)


_rng = np.random.default_rng(0)
_A = _rng.normal(size=(2, 3, 3))
_COV = _A @ _A.transpose(0, 2, 1) + 3 * np.eye(3)
_PROBS = np.array([[0.2, 0.3, 0.5], [0.7, 0.1, 0.2]])

CASES = [
    Case("Normal", lambda D, loc, scale: D.Normal(loc, scale),
         {"loc": np.array([0.0, 1.5, -2.0]), "scale": np.array([1.0, 0.5, 2.0])},
         np.array([0.3, 1.0, -4.0]),
         lambda p, x: -(x - p["loc"]) ** 2 / (2 * p["scale"] ** 2) - np.log(p["scale"])
         - 0.5 * LOG2PI,
         lambda p: 0.5 + 0.5 * LOG2PI + np.log(p["scale"]),
         lambda p: p["loc"], lambda p: p["scale"] ** 2),
    Case("Uniform", lambda D, low, high: D.Uniform(low, high),
         {"low": np.array([0.0, -1.0]), "high": np.array([2.0, 3.0])}, np.array([0.5, 2.0]),
         lambda p, x: -np.log(p["high"] - p["low"]), lambda p: np.log(p["high"] - p["low"]),
         lambda p: (p["low"] + p["high"]) / 2, lambda p: (p["high"] - p["low"]) ** 2 / 12),
    Case("Bernoulli", lambda D, probs: D.Bernoulli(probs=probs),
         {"probs": np.array([0.1, 0.5, 0.8])}, np.array([1.0, 0.0, 1.0]),
         lambda p, x: x * np.log(p["probs"]) + (1 - x) * np.log1p(-p["probs"]),
         lambda p: -(p["probs"] * np.log(p["probs"]) + (1 - p["probs"])
                     * np.log1p(-p["probs"])),
         lambda p: p["probs"], lambda p: p["probs"] * (1 - p["probs"]), discrete=True),
    Case("Bernoulli_logits", lambda D, logits: D.Bernoulli(logits=logits),
         {"logits": np.array([-2.0, 0.3, 1.5])}, np.array([0.0, 1.0, 1.0]),
         lambda p, x: x * np.log(sigmoid(p["logits"])) + (1 - x) * np.log(
             sigmoid(-p["logits"])),
         lambda p: -(sigmoid(p["logits"]) * np.log(sigmoid(p["logits"]))
                     + sigmoid(-p["logits"]) * np.log(sigmoid(-p["logits"]))),
         lambda p: sigmoid(p["logits"]),
         lambda p: sigmoid(p["logits"]) * sigmoid(-p["logits"]), discrete=True),
    Case("Categorical", lambda D, probs: D.Categorical(probs=probs), {"probs": _PROBS},
         np.array([2.0, 0.0]),
         lambda p, x: np.log(np.take_along_axis(p["probs"], x.astype(int)[:, None], 1)[:, 0]),
         lambda p: -(p["probs"] * np.log(p["probs"])).sum(-1),
         lambda p: (p["probs"] * np.arange(3)).sum(-1),
         lambda p: (p["probs"] * np.arange(3) ** 2).sum(-1)
         - (p["probs"] * np.arange(3)).sum(-1) ** 2, discrete=True),
    Case("Categorical_logits", lambda D, logits: D.Categorical(logits=logits),
         {"logits": np.log(_PROBS) + 0.7}, np.array([1.0, 2.0]),
         lambda p, x: np.log(np.take_along_axis(_PROBS, x.astype(int)[:, None], 1)[:, 0]),
         lambda p: -(_PROBS * np.log(_PROBS)).sum(-1),
         lambda p: (_PROBS * np.arange(3)).sum(-1),
         lambda p: (_PROBS * np.arange(3) ** 2).sum(-1) - (_PROBS * np.arange(3)).sum(-1) ** 2,
         discrete=True),
    Case("OneHotCategorical", lambda D, probs: D.OneHotCategorical(probs=probs),
         {"probs": _PROBS}, np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
         lambda p, x: np.log((p["probs"] * x).sum(-1)),
         lambda p: -(p["probs"] * np.log(p["probs"])).sum(-1),
         lambda p: p["probs"], lambda p: p["probs"] * (1 - p["probs"]), event_shape=(3,),
         discrete=True),
    Case("Exponential", lambda D, rate: D.Exponential(rate), {"rate": np.array([0.5, 2.0])},
         np.array([1.0, 0.25]), lambda p, x: np.log(p["rate"]) - p["rate"] * x,
         lambda p: 1 - np.log(p["rate"]), lambda p: 1 / p["rate"], lambda p: p["rate"] ** -2.0),
    Case("Laplace", lambda D, loc, scale: D.Laplace(loc, scale),
         {"loc": np.array([0.0, 1.0]), "scale": np.array([1.0, 0.5])}, np.array([0.7, -1.0]),
         lambda p, x: -np.log(2 * p["scale"]) - np.abs(x - p["loc"]) / p["scale"],
         lambda p: 1 + np.log(2 * p["scale"]), lambda p: p["loc"],
         lambda p: 2 * p["scale"] ** 2),
    Case("LogNormal", lambda D, loc, scale: D.LogNormal(loc, scale),
         {"loc": np.array([0.0, 0.5]), "scale": np.array([0.5, 0.25])}, np.array([1.3, 0.7]),
         lambda p, x: -(np.log(x) - p["loc"]) ** 2 / (2 * p["scale"] ** 2)
         - np.log(p["scale"]) - 0.5 * LOG2PI - np.log(x),
         lambda p: 0.5 + 0.5 * LOG2PI + np.log(p["scale"]) + p["loc"],
         lambda p: np.exp(p["loc"] + p["scale"] ** 2 / 2),
         lambda p: np.expm1(p["scale"] ** 2) * np.exp(2 * p["loc"] + p["scale"] ** 2)),
    Case("Gamma", lambda D, concentration, rate: D.Gamma(concentration, rate),
         {"concentration": np.array([0.5, 2.0, 7.5]), "rate": np.array([1.0, 3.0, 0.5])},
         np.array([0.4, 1.2, 10.0]),
         lambda p, x: (p["concentration"] * np.log(p["rate"]) + (p["concentration"] - 1)
                       * np.log(x) - p["rate"] * x - lgamma(p["concentration"])),
         lambda p: (p["concentration"] - np.log(p["rate"]) + lgamma(p["concentration"])
                    + (1 - p["concentration"]) * digamma(p["concentration"])),
         lambda p: p["concentration"] / p["rate"],
         lambda p: p["concentration"] / p["rate"] ** 2),
    Case("Beta", lambda D, concentration1, concentration0: D.Beta(concentration1,
                                                                   concentration0),
         {"concentration1": np.array([0.5, 2.0, 5.0]),
          "concentration0": np.array([0.7, 3.0, 1.5])}, np.array([0.2, 0.5, 0.9]),
         beta_logp, beta_entropy,
         lambda p: p["concentration1"] / (p["concentration1"] + p["concentration0"]),
         lambda p: (p["concentration1"] * p["concentration0"]
                    / ((p["concentration1"] + p["concentration0"]) ** 2
                       * (p["concentration1"] + p["concentration0"] + 1)))),
    Case("Dirichlet", lambda D, concentration: D.Dirichlet(concentration),
         {"concentration": np.array([[0.5, 1.3, 2.0], [3.0, 4.0, 0.8]])},
         np.array([[0.2, 0.3, 0.5], [0.4, 0.5, 0.1]]),
         lambda p, x: (((p["concentration"] - 1) * np.log(x)).sum(-1)
                       + lgamma(p["concentration"].sum(-1))
                       - lgamma(p["concentration"]).sum(-1)),
         dirichlet_entropy,
         lambda p: p["concentration"] / p["concentration"].sum(-1, keepdims=True),
         lambda p: (p["concentration"] * (p["concentration"].sum(-1, keepdims=True)
                                          - p["concentration"])
                    / (p["concentration"].sum(-1, keepdims=True) ** 2
                       * (p["concentration"].sum(-1, keepdims=True) + 1))),
         event_shape=(3,)),
    Case("Poisson", lambda D, rate: D.Poisson(rate), {"rate": np.array([0.5, 4.0, 25.0])},
         np.array([0.0, 3.0, 30.0]),
         lambda p, x: x * np.log(p["rate"]) - p["rate"] - lgamma(x + 1), None,
         lambda p: p["rate"], lambda p: p["rate"], discrete=True),
    Case("MultivariateNormal",
         lambda D, loc, covariance_matrix: D.MultivariateNormal(loc, covariance_matrix),
         {"loc": np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]]), "covariance_matrix": _COV},
         np.array([[0.5, 0.0, -2.0], [1.0, 1.0, 1.0]]), mvn_logp,
         lambda p: 0.5 * 3 * (1 + LOG2PI) + 0.5 * np.linalg.slogdet(p["covariance_matrix"])[1],
         lambda p: p["loc"], lambda p: np.diagonal(p["covariance_matrix"], 0, -2, -1),
         event_shape=(3,), grad_params=("loc",)),
    Case("MultivariateNormal_scale_tril",
         lambda D, loc, scale_tril: D.MultivariateNormal(loc, scale_tril=scale_tril.tril()),
         {"loc": np.array([0.0, 1.0, -1.0]), "scale_tril": np.linalg.cholesky(_COV[0])},
         np.array([0.5, 0.0, -2.0]),
         lambda p, x: mvn_logp({"loc": p["loc"], "covariance_matrix": _COV[0]}, x),
         lambda p: 0.5 * 3 * (1 + LOG2PI) + np.log(np.diagonal(p["scale_tril"])).sum(),
         lambda p: p["loc"], lambda p: np.diagonal(_COV[0]), event_shape=(3,)),
    Case("Independent_Normal",
         lambda D, loc, scale: D.Independent(D.Normal(loc, scale), 1),
         {"loc": np.array([[0.0, 1.0], [2.0, -1.0]]), "scale": np.array([[1.0, 2.0],
                                                                          [0.5, 1.5]])},
         np.array([[0.1, 0.2], [2.5, 0.0]]),
         lambda p, x: (-(x - p["loc"]) ** 2 / (2 * p["scale"] ** 2) - np.log(p["scale"])
                       - 0.5 * LOG2PI).sum(-1),
         lambda p: (0.5 + 0.5 * LOG2PI + np.log(p["scale"])).sum(-1),
         lambda p: p["loc"], lambda p: p["scale"] ** 2, event_shape=(2,)),
]
IDS = [c.name for c in CASES]


def _build(case, lib, dtype=None, requires_grad=False):
    """The case's distribution in clgraph (``lib`` cg) or torch, float64 parameters."""
    dtype = dtype or lib.float64
    params = {k: lib.tensor(v, dtype=dtype, requires_grad=requires_grad)
              for k, v in case.params.items()}
    return case.make(lib.distributions, **params), params


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_closed_forms(case):
    d, _ = _build(case, cg)
    value = cg.tensor(case.value, dtype=cg.float64)
    np.testing.assert_allclose(_np(d.log_prob(value)), case.logp(case.params, case.value),
                               rtol=1e-7, atol=1e-9, err_msg=f"{case.name}.log_prob")
    if case.entropy is not None:
        np.testing.assert_allclose(_np(d.entropy()), case.entropy(case.params), rtol=1e-7,
                                   atol=1e-9, err_msg=f"{case.name}.entropy")
    if not case.name.startswith("Categorical"):  # Categorical's mean and variance are NaN
        np.testing.assert_allclose(_np(d.mean), case.mean(case.params), rtol=1e-9)
        np.testing.assert_allclose(_np(d.variance), case.var(case.params), rtol=1e-9)
        np.testing.assert_allclose(_np(d.stddev), np.sqrt(case.var(case.params)), rtol=1e-9)
    batch = case.value.shape[:case.value.ndim - len(case.event_shape)]
    assert d.batch_shape == cg.Size(batch) and d.event_shape == cg.Size(case.event_shape)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sample_shapes_and_dtype(case):
    d, _ = _build(case, cg, cg.float32)
    s = d.sample((4, 5))
    assert tuple(s.shape) == (4, 5) + tuple(d.batch_shape) + tuple(d.event_shape)
    assert s.dtype == (cg.int64 if case.name.startswith("Categorical") else cg.float32)
    assert d.sample().shape == d.batch_shape + d.event_shape
    assert not s.requires_grad
    if d.has_rsample:
        assert d.rsample((3,)).shape == (3,) + tuple(d.batch_shape) + tuple(d.event_shape)
    # the support holds every draw, and log_prob of draws is finite
    assert bool(d.support.check(s).all()), case.name
    assert bool(cg.isfinite(d.log_prob(s)).all()), case.name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sample_moments(case):
    cg.manual_seed(1234)
    n = 40000
    d, _ = _build(case, cg)
    s = _np(d.sample((n,)))
    if case.name.startswith("Categorical"):
        s = s.astype(np.float64)
    mean, var = case.mean(case.params), case.var(case.params)
    tol = 6 * np.sqrt(var / n) + 1e-6  # six standard errors
    np.testing.assert_array_less(np.abs(s.mean(0) - mean), tol, err_msg=f"{case.name} mean")
    np.testing.assert_allclose(s.var(0), var, rtol=0.06, atol=1e-6,
                               err_msg=f"{case.name} variance")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sampling_is_reproducible(case):
    d, _ = _build(case, cg, cg.float32)
    cg.manual_seed(7)
    a = _np(d.sample((3,)))
    cg.manual_seed(7)
    b = _np(d.sample((3,)))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_log_prob_and_entropy_gradcheck(case):
    names = case.grad_params or tuple(case.params)
    value = cg.tensor(case.value, dtype=cg.float64)

    def f(*tensors):
        params = {k: cg.tensor(v, dtype=cg.float64) for k, v in case.params.items()}
        params.update(zip(names, tensors))
        d = case.make(cg.distributions, **params)
        out = d.log_prob(value)
        return out + d.entropy().sum() if case.entropy is not None else out

    inputs = [cg.tensor(case.params[k], dtype=cg.float64, requires_grad=True) for k in names]
    assert cg.autograd.gradcheck(f, tuple(inputs))


RSAMPLE_CASES = [c for c in CASES if c.name in (
    "Normal", "Uniform", "Exponential", "Laplace", "LogNormal", "MultivariateNormal_scale_tril",
    "Independent_Normal")]


@pytest.mark.parametrize("case", RSAMPLE_CASES, ids=[c.name for c in RSAMPLE_CASES])
def test_rsample_gradcheck(case):
    def f(*tensors):
        cg.manual_seed(3)  # the same noise in every evaluation
        d = case.make(cg.distributions, **dict(zip(case.params, tensors)))
        return d.rsample((2,))

    inputs = [cg.tensor(v, dtype=cg.float64, requires_grad=True) for v in case.params.values()]
    assert cg.autograd.gradcheck(f, tuple(inputs))


def test_mvn_covariance_gradcheck():
    """Gradients reach a covariance (built symmetric) through the Cholesky factor."""
    value = cg.tensor([[0.5, 0.0, -2.0]], dtype=cg.float64)

    def f(a):
        cov = a @ a.mT + 3 * cg.eye(3, dtype=cg.float64)
        d = D.MultivariateNormal(cg.zeros(3, dtype=cg.float64), covariance_matrix=cov)
        return d.log_prob(value) + d.entropy()

    assert cg.autograd.gradcheck(f, (cg.tensor(_A[0], requires_grad=True),))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case):
    torch = torch_or_skip()
    d, _ = _build(case, cg)
    t, _ = _build(case, torch)
    value = case.value
    assert repr(d) == repr(t)
    assert tuple(d.batch_shape) == tuple(t.batch_shape)
    assert tuple(d.event_shape) == tuple(t.event_shape)
    close = dict(rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(_np(d.log_prob(cg.tensor(value))),
                               t.log_prob(torch.tensor(value)).numpy(), **close)
    for name in ("mean", "variance", "mode"):
        np.testing.assert_allclose(_np(getattr(d, name)), getattr(t, name).detach().numpy(),
                                   err_msg=f"{case.name}.{name}", **close)
    if case.entropy is not None:
        np.testing.assert_allclose(_np(d.entropy()), t.entropy().detach().numpy(), **close)
    if d.has_enumerate_support:
        np.testing.assert_array_equal(_np(d.enumerate_support()),
                                      t.enumerate_support().numpy())


CDF_CASES = [c for c in CASES if c.name in ("Normal", "Uniform", "Exponential", "Laplace",
                                            "LogNormal")]


@pytest.mark.parametrize("case", CDF_CASES, ids=[c.name for c in CDF_CASES])
def test_cdf_icdf(case):
    d, _ = _build(case, cg)
    x = cg.tensor(case.value, dtype=cg.float64)
    p = d.cdf(x)
    np.testing.assert_allclose(_np(d.icdf(p)), case.value, rtol=1e-9, atol=1e-9)
    q = cg.tensor(np.full(case.value.shape, 0.3))
    assert bool((d.cdf(d.icdf(q)) - 0.3).abs().max() < 1e-9)
    torch = pytest.importorskip("torch")
    if torch.__version__.startswith("2.13."):
        t, _ = _build(case, torch)
        np.testing.assert_allclose(_np(p), t.cdf(torch.tensor(case.value)).numpy(), rtol=1e-9)
        np.testing.assert_allclose(_np(d.icdf(q)), t.icdf(torch.tensor(_np(q))).numpy(),
                                   rtol=1e-9)


def test_normal_icdf_tails():
    """erfinv is composed from clgraph ops: float64 quantiles to 1e-12 up to |z| ~ 5.6,
    float32 ones to the precision of 2q - 1; 0 and 1 give -inf and inf as PyTorch."""
    q = np.array([1e-8, 1e-4, 0.001, 0.025, 0.5, 0.9, 0.999, 1 - 1e-4])
    ref = np.array([-5.612001244174789, -3.719016485455709, -3.090232306167813,
                    -1.959963984540054, 0.0, 1.2815515655446004, 3.090232306167813,
                    3.719016485455709])
    got = _np(D.Normal(0.0, 1.0).icdf(cg.tensor(q, dtype=cg.float64)))
    np.testing.assert_allclose(got[1:], ref[1:], rtol=1e-12)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-6)  # |x| > 4: Giles' 1e-7
    got = _np(D.Normal(0.0, 1.0).icdf(cg.tensor(q[1:], dtype=cg.float32)))
    np.testing.assert_allclose(got, ref[1:], rtol=1e-4, atol=1e-6)
    edge = _np(D.Normal(0.0, 1.0).icdf(cg.tensor([0.0, 1.0])))
    assert edge[0] == -np.inf and edge[1] == np.inf


def test_sample_shapes_with_broadcast_parameters():
    d = D.Normal(cg.zeros(3, 1), cg.ones(4))
    assert d.batch_shape == cg.Size([3, 4])
    assert d.sample((2, 5)).shape == cg.Size([2, 5, 3, 4])
    assert d.log_prob(cg.zeros(4)).shape == cg.Size([3, 4])
    assert D.Normal(0.0, 1.0).sample().shape == cg.Size([])
    assert D.Normal(0.0, 1.0).sample().dtype == cg.float32


def test_categorical_never_draws_zero_probability():
    cg.manual_seed(0)
    probs = cg.tensor([[0.0, 0.5, 0.0, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    s = _np(D.Categorical(probs).sample((5000,)))
    assert set(np.unique(s[:, 0])) == {1, 3} and set(np.unique(s[:, 1])) == {0}
    np.testing.assert_allclose((s[:, 0] == 1).mean(), 0.5, atol=0.03)


def test_gamma_small_concentration_and_poisson_rates():
    cg.manual_seed(5)
    g = _np(D.Gamma(cg.tensor([0.05, 0.3]), 1.0).sample((40000,)))
    assert (g > 0).all()
    np.testing.assert_allclose(g.mean(0), [0.05, 0.3], rtol=0.08)
    r = np.array([0.0, 0.1, 9.9, 10.0, 200.0])
    s = _np(D.Poisson(cg.tensor(r)).sample((40000,)))
    assert (s % 1 == 0).all() and (s[:, 0] == 0).all()
    np.testing.assert_allclose(s.mean(0), r, rtol=0.03, atol=0.01)
    np.testing.assert_allclose(s.var(0), r, rtol=0.06, atol=0.01)


def test_expand():
    d = D.Normal(cg.tensor([0.0, 1.0]), cg.tensor(1.0)).expand((3, 2))
    assert d.batch_shape == cg.Size([3, 2]) and d.sample((4,)).shape == cg.Size([4, 3, 2])
    for case in CASES:
        base, _ = _build(case, cg)
        e = base.expand((5,) + tuple(base.batch_shape))
        assert e.batch_shape == cg.Size((5,) + tuple(base.batch_shape)), case.name
        assert e.event_shape == base.event_shape
        value = cg.tensor(case.value, dtype=cg.float64)
        np.testing.assert_allclose(_np(e.log_prob(value)),
                                   np.broadcast_to(_np(base.log_prob(value)),
                                                   tuple(e.batch_shape)), rtol=1e-12)


def test_mvn_parameterizations_agree():
    loc = cg.tensor([0.0, 1.0, -1.0], dtype=cg.float64)
    cov = cg.tensor(_COV[0])
    x = cg.tensor([[0.5, 0.0, -2.0]], dtype=cg.float64)
    by_cov = D.MultivariateNormal(loc, covariance_matrix=cov)
    by_prec = D.MultivariateNormal(loc, precision_matrix=cg.tensor(np.linalg.inv(_COV[0])))
    by_tril = D.MultivariateNormal(loc, scale_tril=cg.tensor(np.linalg.cholesky(_COV[0])))
    for d in (by_prec, by_tril):
        np.testing.assert_allclose(_np(d.log_prob(x)), _np(by_cov.log_prob(x)), rtol=1e-10)
        np.testing.assert_allclose(_np(d.covariance_matrix), _COV[0], rtol=1e-10)
        np.testing.assert_allclose(_np(d.precision_matrix), np.linalg.inv(_COV[0]),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(_np(d.scale_tril), np.linalg.cholesky(_COV[0]), rtol=1e-10)
    assert by_cov.rsample((4, 2)).shape == cg.Size([4, 2, 3])


# KL: pairs of distributions (same family, other parameters) against a closed form or
# Monte Carlo, and against torch where installed.
KL_PAIRS = [
    ("Normal", lambda D, T: (D.Normal(T([0.0, 1.0]), T([1.0, 2.0])),
                             D.Normal(T([0.5, -1.0]), T([2.0, 0.5])))),
    ("Bernoulli", lambda D, T: (D.Bernoulli(T([0.2, 0.7, 0.0])),
                                D.Bernoulli(T([0.5, 0.1, 0.3])))),
    ("Categorical", lambda D, T: (D.Categorical(T(_PROBS)),
                                  D.Categorical(T([[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])))),
    ("OneHotCategorical", lambda D, T: (D.OneHotCategorical(T(_PROBS)),
                                        D.OneHotCategorical(T([0.1, 0.1, 0.8])))),
    ("Uniform", lambda D, T: (D.Uniform(T([0.0, 0.0]), T([1.0, 2.0])),
                              D.Uniform(T([-1.0, -0.5]), T([2.0, 3.0])))),
    ("Exponential", lambda D, T: (D.Exponential(T([0.5, 2.0])), D.Exponential(T([1.0, 1.5])))),
    ("Laplace", lambda D, T: (D.Laplace(T([0.0, 1.0]), T([1.0, 0.5])),
                              D.Laplace(T([0.3, -1.0]), T([2.0, 0.7])))),
    ("MultivariateNormal", lambda D, T: (D.MultivariateNormal(T([0.0, 1.0, -1.0]), T(_COV)),
                                         D.MultivariateNormal(T([[1.0, 0.0, 0.0]]),
                                                              T(_COV[::-1].copy())))),
    ("Independent", lambda D, T: (D.Independent(D.Normal(T([[0.0, 1.0]]), T([[1.0, 2.0]])), 1),
                                  D.Independent(D.Normal(T([[1.0, 0.0]]), T([[0.5, 1.0]])),
                                                1))),
    ("Beta", lambda D, T: (D.Beta(T([0.5, 2.0]), T([1.5, 3.0])),
                           D.Beta(T([1.0, 4.0]), T([2.0, 0.5])))),
    ("Gamma", lambda D, T: (D.Gamma(T([0.5, 2.0]), T([1.5, 3.0])),
                            D.Gamma(T([1.0, 4.0]), T([2.0, 0.5])))),
    ("Dirichlet", lambda D, T: (D.Dirichlet(T([[0.5, 2.0, 1.0]])),
                                D.Dirichlet(T([[1.0, 1.0, 3.0], [2.0, 0.5, 0.5]])))),
    ("Poisson", lambda D, T: (D.Poisson(T([0.5, 20.0])), D.Poisson(T([2.0, 15.0])))),
]
KL_IDS = [k for k, _ in KL_PAIRS]


def _cg_maker(v):
    return cg.tensor(np.asarray(v, dtype=np.float64))


@pytest.mark.parametrize("name,make", KL_PAIRS, ids=KL_IDS)
def test_kl_monte_carlo(name, make):
    """KL(p || q) = E_p[log p(x) - log q(x)] over 60000 draws, six standard errors."""
    p, q = make(D, _cg_maker)
    kl = _np(cg.distributions.kl_divergence(p, q))
    cg.manual_seed(11)
    x = p.sample((60000,))
    diff = _np(p.log_prob(x) - q.log_prob(x))
    est, se = diff.mean(0), diff.std(0) / np.sqrt(len(diff))
    np.testing.assert_array_less(np.abs(kl - est), 6 * se + 1e-9, err_msg=name)


@pytest.mark.parametrize("name,make", KL_PAIRS, ids=KL_IDS)
def test_kl_matches_torch(name, make):
    torch = torch_or_skip()
    p, q = make(D, _cg_maker)
    tp, tq = make(torch.distributions, lambda v: torch.tensor(np.asarray(v, np.float64)))
    np.testing.assert_allclose(_np(D.kl_divergence(p, q)),
                               torch.distributions.kl_divergence(tp, tq).numpy(), rtol=1e-7,
                               atol=1e-10)


def test_kl_closed_forms_and_gradients():
    p = D.Normal(cg.tensor([0.0]), cg.tensor([1.0]))
    q = D.Normal(cg.tensor([1.0]), cg.tensor([2.0]))
    expected = math.log(2) + (1 + 1) / (2 * 4) - 0.5
    np.testing.assert_allclose(_np(D.kl_divergence(p, q)), [expected], rtol=1e-6)
    u = D.kl_divergence(D.Uniform(0.0, 2.0), D.Uniform(0.5, 3.0))
    assert _np(u) == np.inf
    np.testing.assert_allclose(_np(D.kl_divergence(D.Uniform(0.0, 1.0), D.Uniform(-1.0, 3.0))),
                               math.log(4), rtol=1e-6)
    b = _np(D.kl_divergence(D.Bernoulli(cg.tensor([0.3, 0.0])),
                            D.Bernoulli(cg.tensor([0.0, 0.5]))))
    assert b[0] == np.inf and abs(b[1] - math.log(2)) < 1e-6

    def f(loc, scale, loc2, scale2, rate, rate2):
        kl = D.kl_divergence(D.Normal(loc, scale), D.Normal(loc2, scale2))
        return kl + D.kl_divergence(D.Gamma(scale, rate), D.Gamma(scale2, rate2))

    inputs = [cg.tensor(v, dtype=cg.float64, requires_grad=True)
              for v in ([0.0, 1.0], [1.0, 2.0], [0.5, -1.0], [0.7, 1.5], [2.0, 1.0],
                        [1.0, 0.3])]
    assert cg.autograd.gradcheck(f, tuple(inputs))


def test_register_kl_dispatch():
    class MyNormal(D.Normal):
        pass

    p, q = MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)
    np.testing.assert_allclose(_np(D.kl_divergence(p, q)), 0.5, rtol=1e-6)

    @D.register_kl(MyNormal, D.Normal)
    def _kl_mine(p, q):
        return cg.tensor(42.0)

    assert float(D.kl_divergence(p, q)) == 42.0
    assert float(D.kl_divergence(q, p)) == 0.5
    with pytest.raises(NotImplementedError, match="No KL"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Laplace(0.0, 1.0))
    with pytest.raises(ValueError, match="different event shapes"):
        D.kl_divergence(D.MultivariateNormal(cg.zeros(2), cg.eye(2)),
                        D.MultivariateNormal(cg.zeros(3), cg.eye(3)))


def test_validate_args_errors():
    with pytest.raises(ValueError) as e:
        D.Normal(cg.tensor([1.0, 2.0]), cg.tensor([1.0, -1.0]))
    assert str(e.value) == (
        "Expected parameter scale (Tensor of shape (2,)) of distribution Normal(loc: "
        "torch.Size([2]), scale: torch.Size([2])) to satisfy the constraint "
        "GreaterThan(lower_bound=0.0), but found invalid values:\ntensor([ 1., -1.])")
    with pytest.raises(ValueError, match="constraint Interval"):
        D.Bernoulli(probs=cg.tensor([1.5]))
    with pytest.raises(ValueError, match="Simplex"):
        D.Categorical(probs=cg.tensor([[-0.5, 1.0]]))
    with pytest.raises(ValueError, match="Uniform"):
        D.Uniform(cg.tensor([2.0]), cg.tensor([1.0]))
    with pytest.raises(ValueError, match="LowerCholesky"):
        D.MultivariateNormal(cg.zeros(2), scale_tril=cg.tensor([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="PositiveDefinite"):
        D.MultivariateNormal(cg.zeros(2), cg.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Bernoulli()
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix"):
        D.MultivariateNormal(cg.zeros(2))
    # values: support, shape and type
    with pytest.raises(ValueError) as e:
        D.Exponential(cg.tensor([1.0, 2.0])).log_prob(cg.tensor([1.0, -1.0]))
    assert str(e.value).startswith(
        "Expected value argument (Tensor of shape (2,)) to be within the support "
        "(GreaterThanEq(lower_bound=0.0)) of the distribution Exponential(rate: "
        "torch.Size([2])), but found invalid values:")
    with pytest.raises(ValueError, match="must be a Tensor"):
        D.Normal(0.0, 1.0).log_prob(0.5)
    with pytest.raises(ValueError, match="not broadcastable with batch_shape"):
        D.Normal(cg.zeros(3), 1.0).log_prob(cg.zeros(2))
    with pytest.raises(ValueError, match="right-most size of value must match event_shape"):
        D.MultivariateNormal(cg.zeros(3), cg.eye(3)).log_prob(cg.zeros(2))
    # validate_args=False skips the checks
    d = D.Normal(cg.tensor([0.0]), cg.tensor([-1.0]), validate_args=False)
    assert d.log_prob(cg.tensor([0.0])).shape == cg.Size([1])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_validate_args_match_torch(case):
    """Each parameter made invalid (NaN) raises the same message in both libraries."""
    torch = torch_or_skip()
    for name in case.params:
        bad = dict(case.params)
        bad[name] = np.full_like(case.params[name], np.nan)
        errors = []
        for lib in (cg, torch):
            with pytest.raises(ValueError) as e:
                case.make(lib.distributions, **{k: lib.tensor(v) for k, v in bad.items()})
            errors.append(str(e.value))
        assert errors[0] == errors[1], case.name


def test_reprs():
    assert repr(D.Normal(cg.zeros(2), cg.ones(2))) == (
        "Normal(loc: torch.Size([2]), scale: torch.Size([2]))")
    assert repr(D.Normal(0.0, 1.0)) == "Normal(loc: 0.0, scale: 1.0)"
    assert repr(D.Bernoulli(logits=cg.tensor([0.5]))) == "Bernoulli(logits: tensor([0.5000]))"
    assert repr(D.Independent(D.Normal(cg.zeros(2), 1.0), 1)) == (
        "Independent(Normal(loc: torch.Size([2]), scale: torch.Size([2])), 1)")
    assert repr(D.Categorical(logits=cg.zeros(3, 4))) == "Categorical(logits: torch.Size([3, 4]))"


def test_constraints():
    x = cg.tensor([-1.0, 0.0, 0.5, 1.0, float("nan")])
    assert _np(constraints.real.check(x)).tolist() == [True, True, True, True, False]
    assert _np(constraints.positive.check(x)).tolist() == [False, False, True, True, False]
    assert _np(constraints.nonnegative.check(x)).tolist() == [False, True, True, True, False]
    assert _np(constraints.unit_interval.check(x)).tolist() == [False, True, True, True, False]
    assert _np(constraints.boolean.check(x)).tolist() == [False, True, False, True, False]
    assert _np(constraints.nonnegative_integer.check(x)).tolist() == [False, True, False, True,
                                                                      False]
    assert _np(constraints.simplex.check(cg.tensor([[0.2, 0.8], [0.5, 0.6]]))).tolist() == [
        True, False]
    assert _np(constraints.independent(constraints.positive, 1).check(
        cg.tensor([[1.0, 2.0], [1.0, -1.0]]))).tolist() == [True, False]
    assert _np(constraints.lower_cholesky.check(cg.tensor([[[1.0, 0.0], [2.0, 1.0]],
                                                           [[1.0, 0.0], [2.0, -1.0]]]))
               ).tolist() == [True, False]
    assert _np(constraints.positive_definite.check(cg.eye(2))).tolist() is True
    assert repr(constraints.interval(0.0, 1.0)) == "Interval(lower_bound=0.0, upper_bound=1.0)"
    assert repr(constraints.real_vector) == "IndependentConstraint(Real(), 1)"
    assert constraints.is_dependent(D.Uniform(0.0, 1.0).__class__.support)
    assert constraints.simplex.event_dim == 1 and constraints.one_hot.is_discrete


def test_mixture_same_family_constraint():
    c = constraints.MixtureSameFamilyConstraint(constraints.simplex)
    assert repr(c) == "MixtureSameFamilyConstraint(Simplex())"
    assert c.event_dim == 1 and not c.is_discrete
    assert _np(c.check(cg.tensor([[0.5, 0.5], [0.2, 0.9]]))).tolist() == [True, False]
    c = constraints.MixtureSameFamilyConstraint(constraints.nonnegative_integer)
    assert c.event_dim == 0 and c.is_discrete
    assert _np(c.check(cg.tensor([[1.0, -1.0], [2.0, 0.5]]))).tolist() == [[True, False],
                                                                          [True, False]]
    with pytest.raises(AssertionError, match="base_constraint must be a Constraint, got int"):
        constraints.MixtureSameFamilyConstraint(3)
    mix = D.MixtureSameFamily(D.Categorical(probs=cg.tensor([0.3, 0.7])),
                              D.Normal(cg.tensor([0.0, 1.0]), cg.tensor([1.0, 2.0])))
    assert isinstance(mix.support, constraints.MixtureSameFamilyConstraint)
    assert repr(mix.support) == "MixtureSameFamilyConstraint(Real())"


def test_parameter_gradients_reach_leaves():
    loc = cg.tensor([0.0, 1.0], requires_grad=True)
    scale = cg.tensor([1.0, 2.0], requires_grad=True)
    d = D.Normal(loc, scale)
    loss = -d.log_prob(cg.tensor([0.5, 0.5])).sum() + d.rsample((8,)).mean()
    loss.backward()
    assert loc.grad is not None and scale.grad is not None
    assert not d.sample().requires_grad and d.rsample().requires_grad
    logits = cg.tensor([0.1, 0.2, 0.3], requires_grad=True)
    D.Categorical(logits=logits).entropy().backward()
    assert logits.grad is not None


# --- reparameterized Gamma, Beta and Dirichlet draws ----------------------------------------

def _gamma_cdf(a, x):
    """The regularized lower incomplete gamma P(a, x) by its power series, float64."""
    term = np.exp(a * np.log(x) - x - lgamma(a + 1))
    total = term.copy()
    for k in range(1, 400):
        term = term * x / (a + k)
        total = total + term
    return total


# (concentration, draw) pairs reaching each branch of the gradient: x < 0.8 (the series),
# alpha > 8 near and away from the mean (Rice's expansion), the rational fit elsewhere
_ALPHA = np.array([0.02, 0.3, 1.0, 2.5, 0.7, 3.0, 7.9, 9.0, 20.0, 20.0, 20.0, 60.0, 1.7])
_DRAW = np.array([0.001, 0.5, 0.79, 1.5, 0.9, 6.0, 3.0, 9.0, 15.0, 21.0, 31.0, 50.0, 0.8])


def test_standard_gamma_grad_is_the_cdf_derivative():
    """-(dP/dalpha) / (dP/dx) at the draw, P by its series and dP/dalpha by central
    differences; PyTorch's rational fit is good to about 1e-3, the rest much better."""
    got = _np(cg._standard_gamma_grad(cg.tensor(_ALPHA), cg.tensor(_DRAW)))
    h = 1e-6
    dp_da = (_gamma_cdf(_ALPHA + h, _DRAW) - _gamma_cdf(_ALPHA - h, _DRAW)) / (2 * h)
    density = np.exp((_ALPHA - 1) * np.log(_DRAW) - _DRAW - lgamma(_ALPHA))
    np.testing.assert_allclose(got, -dp_da / density, rtol=2e-3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standard_gamma_grad_matches_torch(dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    alpha = np.concatenate([_ALPHA, np.exp(rng.uniform(-4, 4.5, 300))])
    draw = np.concatenate([_DRAW, rng.gamma(alpha[len(_ALPHA):])]).clip(1e-30)
    got = _np(cg._standard_gamma_grad(cg.tensor(alpha, dtype=getattr(cg, dtype)),
                                      cg.tensor(draw, dtype=getattr(cg, dtype))))
    ref = torch._standard_gamma_grad(torch.tensor(alpha, dtype=getattr(torch, dtype)),
                                     torch.tensor(draw, dtype=getattr(torch, dtype))).numpy()
    rtol = 1e-10 if dtype == "float64" else 2e-4
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=1e-30)


def test_standard_gamma_grad_errors_name_the_operands():
    with pytest.raises(NotImplementedError, match="'Long'"):
        cg._standard_gamma_grad(cg.tensor([1, 2]), cg.tensor([1, 2]))
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        cg._standard_gamma_grad(cg.tensor([1.0]), 0.5)


def _gamma_draws(concentration, shape, seed):
    """The standard Gamma draws the distributions make after manual_seed(seed)."""
    cg.manual_seed(seed)
    return _np(D.Gamma(concentration, 1.0).sample(shape))


def test_gamma_rsample_gradient_is_the_implicit_one():
    from clgraph.ops.elementwise import _np_standard_gamma_grad

    conc = cg.tensor([0.3, 2.0, 9.5], dtype=cg.float64, requires_grad=True)
    rate = cg.tensor([1.0, 3.0, 0.5], dtype=cg.float64, requires_grad=True)
    u = np.random.default_rng(2).standard_normal((7, 3))
    cg.manual_seed(11)
    x = D.Gamma(conc, rate).rsample((7,))
    assert x.requires_grad and x.shape == (7, 3)
    (x * cg.tensor(u)).sum().backward()
    g = _gamma_draws(conc.detach(), (7,), 11)
    c, r = conc.detach().numpy(), rate.detach().numpy()
    np.testing.assert_allclose(_np(x), g / r, rtol=1e-12)
    np.testing.assert_allclose(_np(conc.grad),
                               (u * _np_standard_gamma_grad(c, g) / r).sum(0), rtol=1e-10)
    np.testing.assert_allclose(_np(rate.grad), (-u * g / r ** 2).sum(0), rtol=1e-10)


def test_dirichlet_and_beta_rsample_gradients_through_the_gammas():
    from clgraph.ops.elementwise import _np_standard_gamma_grad

    c = np.array([[0.5, 1.3, 2.0, 0.1], [3.0, 4.0, 0.8, 12.0]])
    conc = cg.tensor(c, requires_grad=True)
    u = np.random.default_rng(3).standard_normal((5, 2, 4))
    cg.manual_seed(21)
    x = D.Dirichlet(conc).rsample((5,))
    (x * cg.tensor(u)).sum().backward()
    g = _gamma_draws(conc.detach(), (5,), 21)
    total = g.sum(-1, keepdims=True)
    np.testing.assert_allclose(_np(x), g / total, rtol=1e-12)
    # x = g / sum(g): dL/dg_j = (u_j - <u, x>) / sum(g), times dg_j / dalpha_j
    dg = (u - (u * g / total).sum(-1, keepdims=True)) / total
    np.testing.assert_allclose(_np(conc.grad),
                               (dg * _np_standard_gamma_grad(c, g)).sum(0), rtol=1e-9)

    a = cg.tensor([0.5, 6.0], dtype=cg.float64, requires_grad=True)
    b = cg.tensor([2.0, 0.3], dtype=cg.float64, requires_grad=True)
    cg.manual_seed(5)
    y = D.Beta(a, b).rsample((6,))
    y.sum().backward()
    g = _gamma_draws(cg.tensor([[0.5, 2.0], [6.0, 0.3]], dtype=cg.float64), (6,), 5)
    s = g.sum(-1)
    d1, d0 = (_np_standard_gamma_grad(np.array([[0.5, 2.0], [6.0, 0.3]]), g)[..., i]
              for i in (0, 1))
    np.testing.assert_allclose(_np(y), g[..., 0] / s, rtol=1e-12)
    np.testing.assert_allclose(_np(a.grad), (d1 * g[..., 1] / s ** 2).sum(0), rtol=1e-9)
    np.testing.assert_allclose(_np(b.grad), (-d0 * g[..., 0] / s ** 2).sum(0), rtol=1e-9)


def test_reparameterized_gradients_are_unbiased():
    """The mean over many draws of d sample / d parameter is d mean / d parameter."""
    n = 40000
    conc = cg.tensor([0.2, 1.5, 20.0], requires_grad=True)
    rate = cg.tensor([2.0, 0.5, 1.0], requires_grad=True)
    cg.manual_seed(8)
    D.Gamma(conc, rate).rsample((n,)).mean(0).sum().backward()
    np.testing.assert_allclose(_np(conc.grad), 1 / _np(rate), rtol=0.03)
    np.testing.assert_allclose(_np(rate.grad), -_np(conc) / _np(rate) ** 2, rtol=0.03)

    c = np.array([0.4, 1.3, 2.5])
    conc = cg.tensor(c, requires_grad=True)
    cg.manual_seed(9)
    D.Dirichlet(conc).rsample((n,)).mean(0)[0].backward()
    a0 = c.sum()
    np.testing.assert_allclose(_np(conc.grad), ((np.arange(3) == 0) * a0 - c[0]) / a0 ** 2,
                               rtol=0.05)

    a, b = cg.tensor([0.7, 3.0], requires_grad=True), cg.tensor([1.2, 0.5], requires_grad=True)
    cg.manual_seed(10)
    D.Beta(a, b).rsample((n,)).mean(0).sum().backward()
    an, bn = _np(a), _np(b)
    np.testing.assert_allclose(_np(a.grad), bn / (an + bn) ** 2, rtol=0.05)
    np.testing.assert_allclose(_np(b.grad), -an / (an + bn) ** 2, rtol=0.05)


def test_gamma_rsample_rate_gradcheck_and_flags():
    conc = cg.tensor([0.5, 2.0, 7.5], dtype=cg.float64)

    def f(rate):
        cg.manual_seed(3)
        return D.Gamma(conc, rate).rsample((2,))

    assert cg.autograd.gradcheck(f, (cg.tensor([1.0, 3.0, 0.5], dtype=cg.float64,
                                                requires_grad=True),))
    leafs = [cg.tensor([1.5, 0.2], requires_grad=True) for _ in range(2)]
    for d in (D.Gamma(*leafs), D.Beta(*leafs), D.Dirichlet(leafs[0])):
        assert d.has_rsample and d.rsample().requires_grad and not d.sample().requires_grad
    # a draw that underflows in float32 comes back as the smallest normal, with a gradient
    tiny = cg.tensor([1e-3], requires_grad=True)
    cg.manual_seed(0)
    s = D.Gamma(tiny, 1.0).rsample((200,))
    assert bool((s >= cg.finfo(cg.float32).tiny).all())
    s.sum().backward()
    assert bool(cg.isfinite(tiny.grad).all())
