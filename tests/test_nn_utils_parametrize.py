"""nn.utils.weight_norm / spectral_norm (hook-based) and nn.utils.parametrize /
parametrizations: values against numpy closed forms, gradients, PyTorch's names, reprs and
errors, and PyTorch parity for the same weights and power-iteration vectors where
installed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph import nn
from clgraph.autograd import gradcheck
from clgraph.nn.utils import parametrizations, parametrize
from clgraph.nn.utils.spectral_norm import (
    SpectralNormLoadStateDictPreHook,
    SpectralNormStateDictHook,
)
from clgraph.nn.utils.weight_norm import _weight_norm

rng = np.random.default_rng(0)


def _linear(i=3, o=4):
    cg.manual_seed(0)
    return nn.Linear(i, o).double()


def np_weight_norm(v, g, dim):
    if dim is None:
        return v * g / np.linalg.norm(v)
    axes = tuple(d for d in range(v.ndim) if d != dim)
    return v * g / np.sqrt((v * v).sum(axis=axes, keepdims=True))


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_hook(dim):
    m = _linear()
    w = m.weight.detach().numpy().copy()
    with pytest.warns(FutureWarning, match="deprecated"):
        nn.utils.weight_norm(m, dim=dim)
    assert list(m.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert tuple(m.weight_g.shape) == {0: (4, 1), 1: (1, 3), None: ()}[dim]
    np.testing.assert_allclose(m.weight.detach().numpy(), w)
    with cg.no_grad():
        m.weight_g.mul_(2.0)
    x = cg.tensor(rng.standard_normal((2, 3)))
    expect = x.numpy() @ np_weight_norm(w, m.weight_g.detach().numpy(), dim).T
    np.testing.assert_allclose(m(x).detach().numpy(), expect + m.bias.detach().numpy())
    g, v = m.weight_g.detach().requires_grad_(), m.weight_v.detach().requires_grad_()
    assert gradcheck(lambda g, v: _weight_norm(v, g, -1 if dim is None else dim), (g, v))
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nn.utils.weight_norm(m, dim=dim)
    nn.utils.remove_weight_norm(m)
    assert list(m.state_dict()) == ["bias", "weight"]
    assert isinstance(m.weight, nn.Parameter)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in"):
        nn.utils.remove_weight_norm(m)


def test_parametrizations_weight_norm_names_and_old_state_dict():
    m = parametrizations.weight_norm(_linear())
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original0",
                                    "parametrizations.weight.original1"]
    assert type(m).__name__ == "ParametrizedLinear"
    assert "(0): _WeightNorm()" in repr(m)
    old = _linear(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nn.utils.weight_norm(old)
    with cg.no_grad():
        old.weight_g.mul_(3.0)
    m.load_state_dict(old.state_dict())  # weight_g / weight_v keys are converted
    old(cg.zeros(1, 3, dtype=cg.float64))  # the hook recomputes old.weight
    np.testing.assert_allclose(m.weight.detach().numpy(), old.weight.detach().numpy())
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and list(m.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(m.weight.detach().numpy(), old.weight.detach().numpy())


def _spectral(w):
    return np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0]


def test_spectral_norm_hook():
    cg.manual_seed(0)
    m = nn.Conv2d(2, 3, 3).double()
    w = m.weight.detach().numpy().copy()
    nn.utils.spectral_norm(m, n_power_iterations=30)
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    x = cg.tensor(rng.standard_normal((1, 2, 5, 5)))
    m(x)
    np.testing.assert_allclose(m.weight.detach().numpy(), w / _spectral(w), rtol=1e-6)
    u = m.weight_u.numpy().copy()
    m.eval()
    m(x)
    np.testing.assert_array_equal(m.weight_u.numpy(), u)  # no power iteration in eval
    m.train()
    m(x).sum().backward()
    assert m.weight_orig.grad is not None
    nn.utils.remove_spectral_norm(m)
    assert list(m.state_dict()) == ["bias", "weight"]
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(m)
    with pytest.raises(ValueError, match="n_power_iterations=0"):
        nn.utils.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)


def test_spectral_norm_state_dict_hooks():
    m = nn.utils.spectral_norm(_linear(5, 4))
    sd = m.state_dict()
    assert sd._metadata[""]["spectral_norm"] == {"weight.version": 1}
    assert [type(h) for h, _ in m._state_dict_hooks.values()] == [SpectralNormStateDictHook]
    assert [type(h) for h in m._load_state_dict_pre_hooks.values()] == [
        SpectralNormLoadStateDictPreHook]
    m.load_state_dict(sd)
    m.load_state_dict(dict(sd))  # no metadata, but already in the current format
    # a version-0 state dict: the normalised weight instead of weight_v
    m(cg.tensor(rng.standard_normal((2, 5))))
    w_orig, u = m.weight_orig.detach().numpy(), m.weight_u.numpy()
    old = {"bias": sd["bias"], "weight_orig": sd["weight_orig"], "weight_u": sd["weight_u"],
           "weight": m.weight.detach()}
    fresh = nn.utils.spectral_norm(_linear(5, 4))
    fresh.load_state_dict(old)
    v = fresh.weight_v.numpy()
    sigma = np.mean(w_orig / m.weight.detach().numpy())
    np.testing.assert_allclose(u @ w_orig @ v, sigma, rtol=1e-8)
    wv = w_orig @ v
    np.testing.assert_allclose(wv / np.linalg.norm(wv), u, rtol=1e-6, atol=1e-12)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "weight"'):
        fresh.load_state_dict({"bias": sd["bias"], "weight_orig": sd["weight_orig"],
                               "weight_u": sd["weight_u"]})
    nn.utils.remove_spectral_norm(fresh)
    assert not fresh._state_dict_hooks and not fresh._load_state_dict_pre_hooks
    assert "spectral_norm" not in fresh.state_dict()._metadata[""]


def test_parametrizations_spectral_norm():
    m = parametrizations.spectral_norm(_linear(6, 5))
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original",
                                    "parametrizations.weight.0._u",
                                    "parametrizations.weight.0._v"]
    w = m.parametrizations.weight.original.detach().numpy()
    for _ in range(30):
        got = m.weight
    np.testing.assert_allclose(got.detach().numpy(), w / _spectral(w), rtol=1e-6)
    with pytest.raises(IndexError, match="Dimension out of range"):
        parametrizations.spectral_norm(_linear(), dim=2)


class Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(0, 1)

    def right_inverse(self, a):
        return a.triu()


class Double(nn.Module):
    def forward(self, x):
        return x * 2


def test_register_parametrization_and_cached():
    m = _linear(3, 3)
    w = m.weight.detach().numpy().copy()
    parametrize.register_parametrization(m, "weight", Symmetric())
    assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias")
    assert parametrize.type_before_parametrizations(m) is nn.Linear
    sym = np.triu(w) + np.triu(w, 1).T
    np.testing.assert_allclose(m.weight.detach().numpy(), sym)
    np.testing.assert_allclose(m.parametrizations.weight.original.detach().numpy(), np.triu(w))
    m(cg.ones(1, 3, dtype=cg.float64)).sum().backward()
    assert m.parametrizations.weight.original.grad is not None
    with parametrize.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    parametrize.register_parametrization(m, "weight", Double())
    np.testing.assert_allclose(m.weight.detach().numpy(), 2 * sym)
    with pytest.raises(RuntimeError, match="Double does not implement right_inverse"):
        m.weight = cg.eye(3, dtype=cg.float64)
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    assert type(m) is nn.Linear and not hasattr(m, "parametrizations")
    np.testing.assert_allclose(m.weight.detach().numpy(), np.triu(w))
    parametrize.register_parametrization(m, "weight", Symmetric())
    m.weight = cg.tensor(np.arange(9.0).reshape(3, 3))  # through right_inverse
    np.testing.assert_allclose(m.weight.detach().numpy(),
                               np.triu(np.arange(9.0).reshape(3, 3))
                               + np.triu(np.arange(9.0).reshape(3, 3), 1).T)


def test_parametrize_errors():
    class Shrink(nn.Module):
        def forward(self, x):
            return x[:1]

    with pytest.raises(ValueError, match="may not change the shape"):
        parametrize.register_parametrization(_linear(), "weight", Shrink())
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a "
                                         "parametrized element with name 'nope'"):
        parametrize.register_parametrization(_linear(), "nope", Double())
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(_linear(), "weight")


def _copy(c, t):
    c.load_state_dict({k: cg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})


def test_matches_torch():
    torch = torch_or_skip()
    x = rng.standard_normal((2, 5))
    for apply in ("weight_norm", "spectral_norm"):
        t, c = torch.nn.Linear(5, 4).double(), _linear(5, 4)
        getattr(torch.nn.utils.parametrizations, apply)(t)
        getattr(parametrizations, apply)(c)
        _copy(c, t)
        for _ in range(3):  # power iteration state advances alike
            yt, yc = t(torch.tensor(x)), c(cg.tensor(x))
            np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), rtol=1e-10)
        yt.square().sum().backward()
        yc.square().sum().backward()
        for name, p in t.named_parameters():
            np.testing.assert_allclose(c.get_parameter(name).grad.numpy(), p.grad.numpy(),
                                       rtol=1e-8, err_msg=name)
        assert repr(c) == repr(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, c = torch.nn.Conv2d(2, 3, 3).double(), nn.Conv2d(2, 3, 3).double()
        torch.nn.utils.spectral_norm(t)
        nn.utils.spectral_norm(c)
    _copy(c, t)
    xi = rng.standard_normal((1, 2, 5, 5))
    for _ in range(3):
        yt, yc = t(torch.tensor(xi)), c(cg.tensor(xi))
    np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), rtol=1e-10)
    yt.sum().backward()
    yc.sum().backward()
    np.testing.assert_allclose(c.weight_orig.grad.numpy(), t.weight_orig.grad.numpy(),
                               rtol=1e-8)
    sd_t, sd_c = t.state_dict(), c.state_dict()
    assert sd_c._metadata[""] == sd_t._metadata[""]
    old = {k: sd_t[k] for k in ("bias", "weight_orig", "weight_u")}
    old["weight"] = t.weight.detach()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t2, c2 = torch.nn.Conv2d(2, 3, 3).double(), nn.Conv2d(2, 3, 3).double()
        torch.nn.utils.spectral_norm(t2)
        nn.utils.spectral_norm(c2)
    t2.load_state_dict(old)
    c2.load_state_dict({k: cg.tensor(v.numpy()) for k, v in old.items()})
    np.testing.assert_allclose(c2.weight_v.numpy(), t2.weight_v.numpy(), rtol=1e-6)
