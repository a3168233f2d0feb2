"""torch.distributions' transforms and the distributions built on them: log_prob, entropy,
moments, cdf / icdf, shapes and kl_divergence against PyTorch (float64); sample moments and
reparameterized gradients (same-seed finite differences) and transforms' log |det| against
numerical Jacobians without torch; argument validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import clgraph as cg

D = cg.distributions
T = D.transforms
RNG = np.random.default_rng(0)


def c(a, grad=False):
    return cg.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _torch():
    return pytest.importorskip("torch")


def _to_torch(v):
    torch = _torch()
    if isinstance(v, np.ndarray):
        return torch.tensor(v)
    return v


def _to_cg(v):
    return c(v) if isinstance(v, np.ndarray) else v


def pos(*shape, low=0.5, high=3.0):
    return RNG.uniform(low, high, shape)


def real(*shape):
    return RNG.standard_normal(shape)


def unit(*shape):
    return RNG.uniform(0.05, 0.95, shape)


def _simplex(*shape):
    p = RNG.uniform(0.1, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


# name, constructor kwargs (numpy arrays or numbers), a function drawing valid values
CASES = [
    ("Cauchy", dict(loc=real(3), scale=pos(3)), lambda: real(4, 3) * 3),
    ("HalfCauchy", dict(scale=pos(3)), lambda: pos(4, 3, low=0.01, high=5)),
    ("HalfNormal", dict(scale=pos(3)), lambda: pos(4, 3, low=0.01, high=5)),
    ("Chi2", dict(df=pos(3, low=0.5, high=6)), lambda: pos(4, 3, low=0.1, high=8)),
    ("FisherSnedecor", dict(df1=pos(3, low=1, high=8), df2=pos(3, low=4.5, high=9)),
     lambda: pos(4, 3, low=0.1, high=4)),
    ("Gumbel", dict(loc=real(3), scale=pos(3)), lambda: real(4, 3) * 2),
    ("InverseGamma", dict(concentration=pos(3, low=2.5, high=5), rate=pos(3)),
     lambda: pos(4, 3, low=0.1, high=4)),
    ("Kumaraswamy", dict(concentration1=pos(3, low=1.2, high=4),
                         concentration0=pos(3, low=1.2, high=4)), lambda: unit(4, 3)),
    ("Pareto", dict(scale=pos(3, low=0.5, high=1), alpha=pos(3, low=2.5, high=5)),
     lambda: pos(4, 3, low=1.0, high=5)),
    ("ContinuousBernoulli", dict(probs=np.array([0.1, 0.4995, 0.8])), lambda: unit(4, 3)),
    ("ContinuousBernoulli", dict(logits=real(3)), lambda: unit(4, 3)),
    ("LogisticNormal", dict(loc=real(2, 3), scale=pos(2, 3)), lambda: _simplex(5, 2, 4)),
    ("LowRankMultivariateNormal", dict(loc=real(2, 3), cov_factor=real(2, 3, 2),
                                       cov_diag=pos(2, 3)), lambda: real(5, 2, 3)),
    ("Binomial", dict(total_count=np.array([5.0, 7.0, 10.0]), probs=unit(3)),
     lambda: np.array([[0.0, 3.0, 10.0], [5.0, 7.0, 4.0]])),
    ("Binomial", dict(total_count=6, logits=real(3)),
     lambda: np.array([[0.0, 3.0, 6.0], [5.0, 1.0, 4.0]])),
    ("Multinomial", dict(total_count=5, probs=_simplex(2, 3)),
     lambda: np.array([[[1.0, 2.0, 2.0], [5.0, 0.0, 0.0]]])),
    ("NegativeBinomial", dict(total_count=np.array([1.5, 3.0, 6.0]), probs=unit(3)),
     lambda: np.array([[0.0, 3.0, 10.0], [5.0, 7.0, 4.0]])),
    ("NegativeBinomial", dict(total_count=4.0, logits=real(3)),
     lambda: np.array([[0.0, 3.0, 10.0]])),
    ("Geometric", dict(probs=unit(3)), lambda: np.array([[0.0, 3.0, 10.0], [5.0, 7.0, 4.0]])),
    ("Geometric", dict(logits=real(3)), lambda: np.array([[0.0, 3.0, 1.0]])),
    ("OneHotCategoricalStraightThrough", dict(probs=_simplex(2, 4)),
     lambda: np.eye(4)[[0, 3]]),
    ("RelaxedBernoulli", dict(temperature=np.array(0.7), probs=unit(3)), lambda: unit(4, 3)),
    ("RelaxedOneHotCategorical", dict(temperature=np.array(0.7), logits=real(2, 4)),
     lambda: _simplex(3, 2, 4)),
    ("LKJCholesky", dict(dim=3, concentration=np.array([0.5, 1.0, 2.5])), None),
    ("StudentT", dict(df=np.array([0.8, 1.5, 5.0]), loc=real(3), scale=pos(3)),
     lambda: real(4, 3) * 3),
    ("Weibull", dict(scale=pos(3), concentration=pos(3, low=0.7, high=3)),
     lambda: pos(4, 3, low=0.05, high=4)),
]
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)]


def _make(lib, name, kwargs, conv):
    return getattr(lib, name)(**{k: conv(v) for k, v in kwargs.items()})


def _same(a, b, name, what, rtol=1e-9, atol=1e-10):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (name, what, a.shape, b.shape)
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol,
                               atol=atol, err_msg=f"{name}.{what}")


def _try(fn):
    try:
        return fn(), None
    except (NotImplementedError, ValueError) as e:
        return None, type(e)


@pytest.mark.parametrize("name,kwargs,values", CASES, ids=IDS)
def test_against_torch(name, kwargs, values):
    torch = _torch()
    d = _make(D, name, kwargs, _to_cg)
    t = _make(torch.distributions, name, kwargs, _to_torch)
    assert tuple(d.batch_shape) == tuple(t.batch_shape), name
    assert tuple(d.event_shape) == tuple(t.event_shape), name
    assert d.has_rsample == t.has_rsample, name
    for what in ("mean", "variance", "mode", "stddev"):
        got, err_c = _try(lambda: getattr(d, what))
        exp, err_t = _try(lambda: getattr(t, what))
        assert (err_c is None) == (err_t is None), (name, what, err_c, err_t)
        if exp is not None:
            _same(got, exp, name, what)
    got, err_c = _try(d.entropy)
    exp, err_t = _try(t.entropy)
    assert (err_c is None) == (err_t is None), (name, "entropy", err_c, err_t)
    if exp is not None:  # PyTorch's Multinomial takes lgamma(n + 1) in float32
        _same(got, exp, name, "entropy", rtol=1e-7 if name == "Multinomial" else 1e-9)
    if values is None:  # values from the distribution itself
        with torch.no_grad():
            values = t.sample((4,)).numpy()
    v = values() if callable(values) else values
    _same(d.log_prob(c(v)), t.log_prob(torch.tensor(v)), name, "log_prob")
    got, err_c = _try(lambda: d.cdf(c(v)))
    exp, err_t = _try(lambda: t.cdf(torch.tensor(v)))
    assert (err_c is None) == (err_t is None), (name, "cdf", err_c, err_t)
    if exp is not None and got is not None:
        _same(got, exp, name, "cdf")
        # the quantile's condition number grows near 0 and 1: there, the round trip only
        p = exp.numpy()
        inner = (p > 1e-6) & (p < 1 - 1e-6)
        got_q, err_c = _try(lambda: d.icdf(c(p)))
        exp_q, err_t = _try(lambda: t.icdf(exp))
        assert (err_c is None) == (err_t is None), (name, "icdf", err_c, err_t)
        if exp_q is not None:
            _same(got_q.numpy()[inner], exp_q.numpy()[inner], name, "icdf", rtol=1e-6,
                  atol=1e-8)
            _same(d.cdf(got_q), exp, name, "cdf(icdf)", rtol=1e-7, atol=1e-9)
    s = d.sample((5,))
    assert tuple(s.shape) == tuple(t.sample((5,)).shape), name
    assert bool(d.support.check(s).all()), name
    e = d.expand((2,) + tuple(d.batch_shape))
    assert tuple(e.batch_shape) == (2,) + tuple(d.batch_shape)
    v1 = v[:1]
    _same(e.log_prob(c(v1)), t.expand((2,) + tuple(t.batch_shape)).log_prob(
        torch.tensor(v1)), name, "expand.log_prob")


def test_generalized_pareto_against_torch():
    """In float32: PyTorch 2.13's GeneralizedPareto compares the concentration with a
    float32 zero, which fails for float64 parameters."""
    torch = _torch()
    kw = dict(loc=np.array([0.0, 1.0, -1.0]), scale=np.array([1.0, 2.0, 0.5]),
              concentration=np.array([-0.3, 0.0, 0.4]))
    d = D.GeneralizedPareto(**{k: cg.tensor(v, dtype=cg.float32) for k, v in kw.items()})
    t = torch.distributions.GeneralizedPareto(**{k: torch.tensor(v, dtype=torch.float32)
                                                 for k, v in kw.items()})
    v = np.array([[0.5, 1.5, 0.0], [2.0, 3.0, 4.0]], dtype=np.float32)
    for what in ("log_prob", "cdf", "log_survival_function", "log_cdf"):
        _same(getattr(d, what)(cg.tensor(v)), getattr(t, what)(torch.tensor(v)), "GP", what,
              rtol=1e-5, atol=1e-6)
    u = np.array([0.1, 0.5, 0.9], dtype=np.float32)
    _same(d.icdf(cg.tensor(u)), t.icdf(torch.tensor(u)), "GP", "icdf", rtol=1e-5)
    for what in ("mean", "variance", "mode"):
        _same(getattr(d, what), getattr(t, what), "GP", what, rtol=1e-5)
    _same(d.entropy(), t.entropy(), "GP", "entropy", rtol=1e-5)
    _same(d.support.upper_bound, t.support.upper_bound, "GP", "support")
    assert tuple(d.sample((4,)).shape) == (4, 3)


def test_mixture_same_family_against_torch():
    torch = _torch()
    logits, loc, scale = real(2, 3), real(2, 3), pos(2, 3)
    d = D.MixtureSameFamily(D.Categorical(logits=c(logits)), D.Normal(c(loc), c(scale)))
    t = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.tensor(logits)),
        torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale)))
    v = real(4, 2)
    for what in ("mean", "variance"):
        _same(getattr(d, what), getattr(t, what), "MSF", what)
    _same(d.log_prob(c(v)), t.log_prob(torch.tensor(v)), "MSF", "log_prob")
    _same(d.cdf(c(v)), t.cdf(torch.tensor(v)), "MSF", "cdf")
    assert tuple(d.sample((6,)).shape) == (6, 2)
    # multivariate components, one mixture for the whole batch
    comps = D.Independent(D.Normal(c(real(3, 2)), c(pos(3, 2))), 1)
    m = D.MixtureSameFamily(D.Categorical(probs=c(_simplex(3))), comps)
    tm = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=torch.tensor(m.mixture_distribution.probs
                                                           .numpy())),
        torch.distributions.Independent(torch.distributions.Normal(
            torch.tensor(comps.base_dist.loc.numpy()),
            torch.tensor(comps.base_dist.scale.numpy())), 1))
    v = real(5, 2)
    _same(m.log_prob(c(v)), tm.log_prob(torch.tensor(v)), "MSF-mv", "log_prob")
    _same(m.variance, tm.variance, "MSF-mv", "variance")
    assert tuple(m.sample((4,)).shape) == (4, 2)
    with pytest.raises(ValueError, match="does not equal"):
        D.MixtureSameFamily(D.Categorical(probs=c(_simplex(2))), D.Normal(c(real(3)),
                                                                        c(pos(3))))
    with pytest.raises(ValueError, match="instance of torch.distributions.Categorical"):
        D.MixtureSameFamily(D.Normal(0.0, 1.0), D.Normal(c(real(3)), c(pos(3))))


# --- transforms -----------------------------------------------------------------------------


TRANSFORMS = [
    ("ExpTransform", {}, lambda: real(3, 4)),
    ("PowerTransform", dict(exponent=np.array(2.5)), lambda: pos(3, 4)),
    ("SigmoidTransform", {}, lambda: real(3, 4)),
    ("SoftplusTransform", {}, lambda: real(3, 4)),
    ("TanhTransform", {}, lambda: real(3, 4)),
    ("AffineTransform", dict(loc=real(4), scale=real(4)), lambda: real(3, 4)),
    ("AffineTransform", dict(loc=1.5, scale=-2.0, event_dim=1), lambda: real(3, 4)),
    ("StickBreakingTransform", {}, lambda: real(3, 4)),
    ("CorrCholeskyTransform", {}, lambda: real(3, 6)),
    ("LowerCholeskyTransform", {}, lambda: real(2, 3, 3)),
    ("PositiveDefiniteTransform", {}, lambda: real(2, 3, 3)),
    ("SoftmaxTransform", {}, lambda: real(3, 4)),
    ("AbsTransform", {}, lambda: real(3, 4)),
    ("ReshapeTransform", dict(in_shape=(4,), out_shape=(2, 2)), lambda: real(3, 4)),
]


def _transform(lib, name, kwargs, conv):
    return getattr(lib, name)(**{k: conv(v) for k, v in kwargs.items()})


@pytest.mark.parametrize("name,kwargs,values", TRANSFORMS,
                         ids=[f"{t[0]}-{i}" for i, t in enumerate(TRANSFORMS)])
def test_transforms_against_torch(name, kwargs, values):
    torch = _torch()
    tc = _transform(T, name, kwargs, _to_cg)
    tt = _transform(torch.distributions.transforms, name, kwargs, _to_torch)
    x = values()
    yc, yt = tc(c(x)), tt(torch.tensor(x))
    _same(yc, yt, name, "forward")
    _same(tc.inv(yc), tt.inv(yt), name, "inverse", rtol=1e-7, atol=1e-8)
    got, err_c = _try(lambda: tc.log_abs_det_jacobian(c(x), yc))
    exp, err_t = _try(lambda: tt.log_abs_det_jacobian(torch.tensor(x), yt))
    assert (err_c is None) == (err_t is None), (name, err_c, err_t)
    if exp is not None:
        _same(got, exp, name, "log_abs_det_jacobian")
    assert tc.domain.event_dim == tt.domain.event_dim
    assert tc.codomain.event_dim == tt.codomain.event_dim
    assert tc.bijective == tt.bijective
    shape = tuple(x.shape)
    assert tuple(tc.forward_shape(shape)) == tuple(tt.forward_shape(shape))
    assert tuple(tc.inverse_shape(tuple(yt.shape))) == tuple(tt.inverse_shape(yt.shape))


def _jacobian_logdet(fn, x):
    """log |det J| of fn at one vector x (float64 autograd, a row per output)."""
    x = c(x, grad=True)
    y = fn(x).reshape(-1)
    rows = [cg.autograd.grad(y[i], x, retain_graph=True)[0].reshape(-1).numpy()
            for i in range(y.shape[0])]
    return np.linalg.slogdet(np.stack(rows))[1]


def test_log_abs_det_jacobian_against_numerical():
    """Without torch: each bijection's log |det| against the autograd Jacobian."""
    x = real(4)
    for t in (T.ExpTransform(), T.SigmoidTransform(), T.TanhTransform(),
              T.SoftplusTransform(), T.PowerTransform(c(1.7)), T.AffineTransform(0.5, -3.0)):
        xx = np.abs(x) + 0.1 if isinstance(t, T.PowerTransform) else x
        got = t.log_abs_det_jacobian(c(xx), t(c(xx))).sum().item()
        assert abs(got - _jacobian_logdet(t, xx)) < 1e-9, t
    t = T.StickBreakingTransform()
    # the simplex has one dimension less: drop the last coordinate
    got = t.log_abs_det_jacobian(c(x), t(c(x))).item()
    assert abs(got - _jacobian_logdet(lambda v: t(v)[:-1], x)) < 1e-9
    t = T.CorrCholeskyTransform()
    v = real(3)
    got = t.log_abs_det_jacobian(c(v), t(c(v))).item()
    rows = [1, 2, 2]  # the free entries of a 3 x 3 correlation Cholesky factor: below diag
    sel = [3, 6, 7]
    assert len(rows) == 3
    assert abs(got - _jacobian_logdet(lambda w: t(w).reshape(-1)[sel], v)) < 1e-9


def test_compose_cat_stack_independent_cache():
    torch = _torch()
    tt = torch.distributions.transforms
    x = real(3, 4)
    comp = T.ComposeTransform([T.AffineTransform(0.5, 2.0), T.ExpTransform()])
    tcomp = tt.ComposeTransform([tt.AffineTransform(0.5, 2.0), tt.ExpTransform()])
    _same(comp(c(x)), tcomp(torch.tensor(x)), "Compose", "forward")
    _same(comp.log_abs_det_jacobian(c(x), comp(c(x))),
          tcomp.log_abs_det_jacobian(torch.tensor(x), tcomp(torch.tensor(x))), "Compose",
          "ladj")
    assert comp.inv.inv is comp and comp.sign == 1
    cat = T.CatTransform([T.ExpTransform(), T.AffineTransform(1.0, 3.0)], dim=1,
                         lengths=[1, 3])
    tcat = tt.CatTransform([tt.ExpTransform(), tt.AffineTransform(1.0, 3.0)], dim=1,
                           lengths=[1, 3])
    _same(cat(c(x)), tcat(torch.tensor(x)), "Cat", "forward")
    _same(cat.log_abs_det_jacobian(c(x), cat(c(x))),
          tcat.log_abs_det_jacobian(torch.tensor(x), tcat(torch.tensor(x))), "Cat", "ladj")
    _same(cat.inv(cat(c(x))), x, "Cat", "inverse")
    st = T.StackTransform([T.ExpTransform(), T.TanhTransform(), T.SigmoidTransform()], dim=0)
    tst = tt.StackTransform([tt.ExpTransform(), tt.TanhTransform(), tt.SigmoidTransform()],
                            dim=0)
    _same(st(c(x)), tst(torch.tensor(x)), "Stack", "forward")
    _same(st.log_abs_det_jacobian(c(x), st(c(x))),
          tst.log_abs_det_jacobian(torch.tensor(x), tst(torch.tensor(x))), "Stack", "ladj")
    ind = T.IndependentTransform(T.ExpTransform(), 1)
    _same(ind.log_abs_det_jacobian(c(x), ind(c(x))), np.sum(x, -1), "Independent", "ladj")
    assert ind.domain.event_dim == 1 and ind.codomain.event_dim == 1
    cached = T.ExpTransform().with_cache(1)
    xc = c(x)
    y = cached(xc)
    assert cached(xc) is y and cached.inv(y) is xc
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        T.ExpTransform(cache_size=2)
    with pytest.raises(ValueError, match="different numbers of elements"):
        T.ReshapeTransform((4,), (3,))
    cdf = T.CumulativeDistributionTransform(D.Normal(c(0.0), c(1.0)))
    _same(cdf(c(x)), tt.CumulativeDistributionTransform(torch.distributions.Normal(
        torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)))(
        torch.tensor(x)), "CDF", "forward")
    assert T.identity_transform(c(x)) is not None


def test_transformed_distribution_against_torch():
    torch = _torch()
    tt = torch.distributions.transforms
    loc, scale = real(3), pos(3)
    d = D.TransformedDistribution(D.Normal(c(loc), c(scale)),
                                  [T.AffineTransform(1.0, -2.0), T.ExpTransform()])
    t = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale)),
        [tt.AffineTransform(1.0, -2.0), tt.ExpTransform()])
    v = pos(4, 3)
    _same(d.log_prob(c(v)), t.log_prob(torch.tensor(v)), "TD", "log_prob")
    _same(d.cdf(c(v)), t.cdf(torch.tensor(v)), "TD", "cdf")  # decreasing map: 1 - cdf
    u = unit(3)
    _same(d.icdf(c(u)), t.icdf(torch.tensor(u)), "TD", "icdf")
    kl = D.kl_divergence(d, D.TransformedDistribution(
        D.Normal(c(loc + 1), c(scale)), [T.AffineTransform(1.0, -2.0), T.ExpTransform()]))
    assert kl.shape == (3,)
    # a vector transform makes the base's batch dim an event dim
    sb = D.TransformedDistribution(D.Normal(c(real(2, 3)), c(pos(2, 3))),
                                   T.StickBreakingTransform())
    assert tuple(sb.batch_shape) == (2,) and tuple(sb.event_shape) == (4,)


# --- without torch: sample moments and pathwise gradients ---------------------------------------


# the samplers beyond a transform of a uniform or normal draw (those are checked through
# their rsample gradients and log_prob)
MOMENTS = [
    (lambda: D.Chi2(c([3.0, 7.0])), 3e-2),
    (lambda: D.InverseGamma(c([6.0, 9.0]), c([2.0, 3.0])), 3e-2),
    (lambda: D.Kumaraswamy(c([2.0, 3.0]), c([2.5, 1.5])), 2e-2),
    (lambda: D.ContinuousBernoulli(c([0.2, 0.7])), 2e-2),
    (lambda: D.FisherSnedecor(c([5.0, 8.0]), c([12.0, 15.0])), 4e-2),
    (lambda: D.GeneralizedPareto(c([0.0, 1.0]), c([1.0, 0.5]), c([0.1, -0.2])), 3e-2),
    (lambda: D.NegativeBinomial(c([3.0, 5.0]), c([0.4, 0.6])), 4e-2),
    (lambda: D.Geometric(c([0.3, 0.6])), 3e-2),
    (lambda: D.LowRankMultivariateNormal(c([0.0, 1.0]), c([[1.0], [0.5]]), c([0.5, 1.0])),
     3e-2),
    (lambda: D.StudentT(c([7.0, 9.0]), c([0.5, -1.0]), c([1.0, 2.0])), 4e-2),
]


@pytest.mark.parametrize("make,tol", MOMENTS, ids=range(len(MOMENTS)))
def test_sample_moments(make, tol):
    """20000 draws: the sample mean within 5 standard errors, the variance within 4 tol."""
    cg.manual_seed(0)
    d = make()
    n = 20000
    s = d.sample((n,)).numpy()
    mean, var = d.mean.detach().numpy(), d.variance.detach().numpy()
    assert np.all(np.abs(s.mean(0) - mean) < 5 * np.sqrt(var / n) + 1e-3), (s.mean(0), mean)
    np.testing.assert_allclose(s.var(0), var, rtol=4 * tol, atol=tol)


def test_multinomial_and_mixture_sample_moments():
    cg.manual_seed(1)
    p = np.array([0.2, 0.3, 0.5])
    s = D.Multinomial(10, c(p)).sample((5000,)).numpy()
    assert (s.sum(-1) == 10).all()
    np.testing.assert_allclose(s.mean(0), 10 * p, atol=0.1)
    m = D.MixtureSameFamily(D.Categorical(c([0.3, 0.7])), D.Normal(c([-2.0, 3.0]),
                                                                   c([0.5, 1.0])))
    s = m.sample((20000,)).numpy()
    np.testing.assert_allclose([s.mean(), s.var()], [m.mean.item(), m.variance.item()],
                               rtol=3e-2)
    lkj = D.LKJCholesky(3, c(2.0))
    s = lkj.sample((2000,))
    assert bool(D.constraints.corr_cholesky.check(s).all())
    corr = (s @ s.mT).numpy()
    np.testing.assert_allclose(corr[:, [0, 0, 1], [1, 2, 2]].mean(0), 0.0, atol=0.05)


RSAMPLE = [
    lambda p: D.Cauchy(p, c(1.5)),
    lambda p: D.HalfNormal(p.abs() + 0.5),
    lambda p: D.Gumbel(c(0.3), p.abs() + 0.5),
    lambda p: D.Kumaraswamy(p.abs() + 1.0, c(2.0)),
    lambda p: D.Pareto(c(1.0), p.abs() + 2.0),
    lambda p: D.ContinuousBernoulli(logits=p),
    lambda p: D.LogisticNormal(p, c([1.0, 1.0, 1.0])),
    lambda p: D.LowRankMultivariateNormal(p, c([[1.0], [0.5], [0.2]]), c([0.5, 1.0, 2.0])),
    lambda p: D.RelaxedBernoulli(c(0.5), logits=p),
    lambda p: D.RelaxedOneHotCategorical(c(0.5), logits=p),
    lambda p: D.GeneralizedPareto(c(0.0), c(1.0), p * 0.2),
    lambda p: D.StudentT(c(5.0), p, p.abs() + 0.5),
    lambda p: D.Weibull(p.abs() + 0.5, c(2.0)),
]


@pytest.mark.parametrize("make", RSAMPLE, ids=range(len(RSAMPLE)))
def test_rsample_gradient_matches_same_seed_differences(make):
    """d sample / d parameter by autograd equals the finite difference of two draws with
    the same seed (the reparameterization's noise is the same)."""
    p0 = np.array([0.3, -0.4, 0.8])
    w = RNG.standard_normal(3)
    p = c(p0, grad=True)
    cg.manual_seed(5)
    s = make(p).rsample((3,))
    g = cg.autograd.grad((s * c(np.resize(w, s.shape))).sum(), p)[0].numpy()
    eps = 1e-6
    direction = RNG.standard_normal(3)

    def value(q):
        cg.manual_seed(5)
        s = make(c(q)).rsample((3,)).numpy()
        return (s * np.resize(w, s.shape)).sum()

    fd = (value(p0 + eps * direction) - value(p0 - eps * direction)) / (2 * eps)
    assert abs(fd - g @ direction) < 1e-5 * max(1.0, abs(fd))


def test_straight_through_gradient():
    probs = c(_simplex(4), grad=True)
    d = D.OneHotCategoricalStraightThrough(probs=probs)
    s = d.rsample((2,))
    assert set(np.unique(s.detach().numpy())) <= {0.0, 1.0}
    (s * c(np.arange(4.0))).sum().backward()
    assert probs.grad is not None and np.abs(probs.grad.numpy()).sum() > 0


# --- kl_divergence, validation --------------------------------------------------------------------


KL = [
    ("Cauchy", dict(loc=real(3), scale=pos(3)), dict(loc=real(3), scale=pos(3))),
    ("Gumbel", dict(loc=real(3), scale=pos(3)), dict(loc=real(3), scale=pos(3))),
    ("HalfNormal", dict(scale=pos(3)), dict(scale=pos(3))),
    ("Pareto", dict(scale=np.array([1.0, 2.0, 1.0]), alpha=pos(3)),
     dict(scale=np.array([0.5, 2.5, 1.0]), alpha=pos(3))),
    ("Geometric", dict(probs=unit(3)), dict(probs=unit(3))),
    ("Binomial", dict(total_count=np.array([5.0, 6.0, 7.0]), probs=unit(3)),
     dict(total_count=np.array([5.0, 6.0, 6.0]), probs=unit(3))),
    ("ContinuousBernoulli", dict(probs=unit(3)), dict(probs=unit(3))),
    ("LowRankMultivariateNormal", dict(loc=real(3), cov_factor=real(3, 2), cov_diag=pos(3)),
     dict(loc=real(3), cov_factor=real(3, 1), cov_diag=pos(3))),
    ("InverseGamma", dict(concentration=pos(3), rate=pos(3)),
     dict(concentration=pos(3), rate=pos(3))),
]


@pytest.mark.parametrize("name,kp,kq", KL, ids=[k[0] for k in KL])
def test_kl_against_torch(name, kp, kq):
    torch = _torch()
    got = D.kl_divergence(_make(D, name, kp, _to_cg), _make(D, name, kq, _to_cg))
    exp = torch.distributions.kl_divergence(_make(torch.distributions, name, kp, _to_torch),
                                            _make(torch.distributions, name, kq, _to_torch))
    _same(got, exp, name, "kl")


def test_cross_family_kl_against_torch():
    torch = _torch()
    td = torch.distributions
    pairs = [
        (("Normal", dict(loc=real(3), scale=pos(3))), ("Gumbel", dict(loc=real(3),
                                                                     scale=pos(3)))),
        (("Exponential", dict(rate=pos(3))), ("Gumbel", dict(loc=real(3), scale=pos(3)))),
        (("Gamma", dict(concentration=pos(3), rate=pos(3))),
         ("Gumbel", dict(loc=real(3), scale=pos(3)))),
        (("Uniform", dict(low=np.zeros(3), high=pos(3))),
         ("Gumbel", dict(loc=real(3), scale=pos(3)))),
        (("Gumbel", dict(loc=real(3), scale=pos(3))), ("Normal", dict(loc=real(3),
                                                                     scale=pos(3)))),
        (("Uniform", dict(low=np.array([1.0, 2.0, 0.5]), high=np.array([3.0, 4.0, 1.0]))),
         ("Pareto", dict(scale=np.array([0.5, 1.0, 1.0]), alpha=pos(3)))),
        (("MultivariateNormal", dict(loc=real(3), scale_tril=np.tril(real(3, 3), -1)
                                     + np.diag(pos(3)))),
         ("LowRankMultivariateNormal", dict(loc=real(3), cov_factor=real(3, 2),
                                            cov_diag=pos(3)))),
        (("LowRankMultivariateNormal", dict(loc=real(3), cov_factor=real(3, 2),
                                            cov_diag=pos(3))),
         ("MultivariateNormal", dict(loc=real(3), scale_tril=np.tril(real(3, 3), -1)
                                     + np.diag(pos(3))))),
    ]
    for (np_, kp), (nq, kq) in pairs:
        got = D.kl_divergence(_make(D, np_, kp, _to_cg), _make(D, nq, kq, _to_cg))
        exp = td.kl_divergence(_make(td, np_, kp, _to_torch), _make(td, nq, kq, _to_torch))
        _same(got, exp, f"{np_}-{nq}", "kl")


VALIDATION = [
    (lambda lib, t: lib.Cauchy(t([0.0]), t([-1.0])), "scale"),
    (lambda lib, t: lib.HalfNormal(t([-1.0])), "scale"),
    (lambda lib, t: lib.Gumbel(t([0.0]), t([0.0])), "scale"),
    (lambda lib, t: lib.Pareto(t([1.0]), t([-2.0])), "rate"),  # its base Exponential's
    (lambda lib, t: lib.Kumaraswamy(t([1.0]), t([-2.0])), "concentration0"),
    (lambda lib, t: lib.Binomial(t([2.5]), t([0.5])), "total_count"),
    (lambda lib, t: lib.Geometric(t([0.0])), "probs"),
    (lambda lib, t: lib.Geometric(t([1.5])), "probs"),
    (lambda lib, t: lib.NegativeBinomial(t([2.0]), t([1.0])), "probs"),
    (lambda lib, t: lib.LKJCholesky(3, t([-1.0])), "concentration"),
    (lambda lib, t: lib.Chi2(t([0.0])), "df"),
]


@pytest.mark.parametrize("make,param", VALIDATION, ids=range(len(VALIDATION)))
def test_validation_names_the_parameter(make, param):
    with pytest.raises(ValueError, match=f"Expected parameter {param}"):
        make(D, lambda v: c(v))
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError) as et:
        make(torch.distributions, lambda v: torch.tensor(v, dtype=torch.float64))
    with pytest.raises(ValueError) as ec:
        make(D, lambda v: c(v))
    assert str(ec.value) == str(et.value)


def test_sample_validation_and_errors():
    d = D.HalfNormal(c([1.0]))
    with pytest.raises(ValueError, match="to be within the support"):
        d.log_prob(c([-1.0]))
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Binomial(5, probs=c([0.5]), logits=c([0.0]))
    with pytest.raises(ValueError, match="dim to be an integer greater than or equal to 2"):
        D.LKJCholesky(1)
    with pytest.raises(ValueError, match="cov_factor must be a batch of matrices"):
        D.LowRankMultivariateNormal(c(real(3)), c(real(2, 1)), c(pos(3)))
    with pytest.raises(NotImplementedError, match="Inhomogeneous total count"):
        D.Binomial(c([2.0, 3.0]), c([0.5, 0.5])).enumerate_support()
    assert D.Binomial(c([3.0, 3.0]), c([0.2, 0.5])).enumerate_support().shape == (4, 2)
    with pytest.raises(NotImplementedError):
        D.kl_divergence(D.Gumbel(0.0, 1.0), D.Cauchy(0.0, 1.0))


def test_exponential_family_entropy_by_bregman():
    """ExponentialFamily.entropy (autograd of the log normalizer) equals the closed form
    of ContinuousBernoulli's."""
    d = D.ContinuousBernoulli(logits=c([-2.0, 0.3, 1.5]))
    np.testing.assert_allclose(D.ExponentialFamily.entropy(d).detach().numpy(),
                               d.entropy().numpy(), rtol=1e-9)
    q = D.ContinuousBernoulli(logits=c([0.5, -0.3, 2.0]))
    from clgraph.distributions.kl import _kl_expfamily_expfamily
    np.testing.assert_allclose(_kl_expfamily_expfamily(d, q).detach().numpy(),
                               D.kl_divergence(d, q).numpy(), rtol=1e-8)


def test_repr_matches_torch():
    torch = _torch()
    assert repr(D.Gumbel(c(0.0), c(1.0))) == repr(torch.distributions.Gumbel(
        torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)))
    assert repr(T.ExpTransform()) == repr(torch.distributions.transforms.ExpTransform())
    assert math.isinf(D.HalfCauchy(c(1.0)).mean.item())


def test_exponential_family_members():
    """The Bregman entropy of each family member equals its closed form (no torch)."""
    members = [D.Normal(c([0.3, -1.0]), c([0.5, 2.0])), D.Exponential(c([0.5, 3.0])),
               D.Gamma(c([0.7, 4.0]), c([2.0, 0.5])), D.Bernoulli(c([0.2, 0.9])),
               D.ContinuousBernoulli(c([0.3, 0.8]))]
    # Beta and Dirichlet have a carrier measure PyTorch leaves undefined: their natural
    # parameters serve the Bregman KL only
    assert isinstance(D.Beta(c(1.0), c(2.0)), D.ExponentialFamily)
    q = D.Dirichlet(c([[1.5, 1.0, 2.0]]))
    from clgraph.distributions.kl import _kl_expfamily_expfamily
    p = D.Dirichlet(c([[0.5, 2.0, 1.0]]))
    np.testing.assert_allclose(_kl_expfamily_expfamily(p, q).detach().numpy(),
                               D.kl_divergence(p, q).numpy(), rtol=1e-9)
    for d in members:
        assert isinstance(d, D.ExponentialFamily)
        np.testing.assert_allclose(D.ExponentialFamily.entropy(d).detach().numpy(),
                                   d.entropy().detach().numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=type(d).__name__)


def test_biject_to_and_transform_to():
    torch = _torch()
    cons, tcons = D.constraints, torch.distributions.constraints
    pairs = [(cons.positive, tcons.positive), (cons.unit_interval, tcons.unit_interval),
             (cons.simplex, tcons.simplex), (cons.interval(-1.0, 2.0), tcons.interval(-1.0, 2.0)),
             (cons.greater_than(1.5), tcons.greater_than(1.5)),
             (cons.less_than(-0.5), tcons.less_than(-0.5)),
             (cons.corr_cholesky, tcons.corr_cholesky), (cons.real_vector, tcons.real_vector),
             (cons.lower_cholesky, tcons.lower_cholesky)]
    for con, tcon in pairs:
        for name in ("biject_to", "transform_to"):
            try:
                tt = getattr(torch.distributions, name)(tcon)
            except NotImplementedError:
                with pytest.raises(NotImplementedError, match="Cannot transform"):
                    getattr(D, name)(con)
                continue
            tc = getattr(D, name)(con)
            assert repr(tc) == repr(tt), (name, con)
            x = real(2, *((6,) if con is cons.corr_cholesky else (3, 3)
                          if con is cons.lower_cholesky else (4,)))
            y = tc(c(x))
            _same(y, tt(torch.tensor(x)), name, repr(con))
            assert bool(con.check(y).all()), (name, con)
    with pytest.raises(TypeError, match="Constraint subclass or instance"):
        D.biject_to.register(int, lambda c: None)


def test_von_mises_and_wishart():
    cg.manual_seed(3)
    loc, k = np.array([0.3, -2.0, 1.0]), np.array([0.5, 2.0, 30.0])
    d = D.VonMises(c(loc), c(k))
    s = d.sample((20000,)).numpy()
    assert s.min() >= -math.pi and s.max() < math.pi
    np.testing.assert_allclose(np.angle(np.exp(1j * s).mean(0)), loc, atol=0.03)
    np.testing.assert_allclose(1 - np.abs(np.exp(1j * s).mean(0)), d.variance.numpy(),
                               rtol=0.05, atol=0.01)
    a = RNG.standard_normal((2, 3, 3))
    cov = a @ a.transpose(0, 2, 1) + np.eye(3)
    w = D.Wishart(c([4.0, 6.0]), covariance_matrix=c(cov))
    s = w.rsample((4000,)).numpy()
    assert np.abs(s.mean(0) - w.mean.numpy()).max() < 0.05 * np.abs(w.mean.numpy()).max()
    np.testing.assert_allclose(D.ExponentialFamily.entropy(w).detach().numpy(),
                               w.entropy().numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="expected to be greater than ndim - 1 = 2"):
        D.Wishart(c(1.5), covariance_matrix=c(cov[0]))
    torch = _torch()
    t = torch.distributions.VonMises(torch.tensor(loc), torch.tensor(k))
    v = real(4, 3)
    # PyTorch's I0 is a polynomial fit good to about 1e-7 relative
    _same(d.log_prob(c(v)), t.log_prob(torch.tensor(v)), "VonMises", "log_prob", rtol=1e-6,
          atol=1e-6)
    _same(d.variance, t.variance, "VonMises", "variance", rtol=1e-6, atol=1e-7)
    tw = torch.distributions.Wishart(torch.tensor([4.0, 6.0], dtype=torch.float64),
                                     covariance_matrix=torch.tensor(cov))
    x = torch.tensor(s[:3])
    _same(w.log_prob(c(x.numpy())), tw.log_prob(x), "Wishart", "log_prob")
    for what in ("mean", "variance", "mode", "precision_matrix", "entropy"):
        got = getattr(w, what)
        exp = getattr(tw, what)
        _same(got() if callable(got) else got, exp() if callable(exp) else exp, "Wishart",
              what)
    p = D.Wishart(c(5.0), scale_tril=c(np.linalg.cholesky(cov[0])))
    q = D.Wishart(c(7.0), precision_matrix=c(np.linalg.inv(cov[1])))
    tp = torch.distributions.Wishart(torch.tensor(5.0, dtype=torch.float64),
                                     scale_tril=torch.tensor(np.linalg.cholesky(cov[0])))
    tq = torch.distributions.Wishart(torch.tensor(7.0, dtype=torch.float64),
                                     precision_matrix=torch.tensor(np.linalg.inv(cov[1])))
    _same(D.kl_divergence(p, q), torch.distributions.kl_divergence(tp, tq), "Wishart", "kl")


def test_binomial_sampler_frequencies():
    """Inversion (small means) and BTRS (large ones) against the exact pmf: a chi-square
    statistic well inside its 99.9% range; huge counts in a fixed number of launches."""
    cg.manual_seed(2)
    for n, p in ((12, 0.2), (40, 0.5), (100, 0.7)):
        s = D.Binomial(c(float(n)), c(p)).sample((100000,)).numpy().astype(int)
        k = np.arange(n + 1)
        pmf = np.array([math.comb(n, int(i)) * p ** i * (1 - p) ** (n - i) for i in k])
        obs, exp = np.bincount(s, minlength=n + 1), pmf * len(s)
        keep = exp > 5
        chi = ((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()
        dof = keep.sum() - 1
        assert chi < dof + 6 * math.sqrt(2 * dof), (n, p, chi, dof)
    s = D.Binomial(c([1e7, 1e7]), c([0.3, 1e-7])).sample((2000,)).numpy()
    np.testing.assert_allclose(s.mean(0), [3e6, 1.0], rtol=0.05)
    assert (D.Binomial(c(0.0), c(0.5)).sample((5,)).numpy() == 0).all()
    assert (D.Binomial(c(9.0), c(1.0)).sample((5,)).numpy() == 9).all()
