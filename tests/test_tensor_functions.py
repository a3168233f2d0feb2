"""PyTorch functions added together (searching, counting, quantiles, joins, scans, special
functions, random draws): numpy references, float64 gradchecks, PyTorch's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph.autograd import gradcheck

F64 = cg.float64


def leaf(*shape, low=-1.0, high=1.0, seed=0):
    rng = np.random.default_rng(seed + 13 * len(shape) + sum(shape))
    return cg.from_numpy(rng.uniform(low, high, shape)).requires_grad_()


def close(t, ref, **kw):
    got = t.detach().numpy() if isinstance(t, cg.Tensor) else np.asarray(t)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    np.testing.assert_allclose(got, ref, **kw)


# --- special functions and elementwise composites -----------------------------------------


def test_special_function_values():
    x = np.array([-2.5, -0.5, 1e-3, 0.5, 1.0, 3.3, 10.0, 50.0])
    # psi(1) = -gamma, psi(1/2) = -gamma - 2 ln 2, psi(n + 1) = psi(n) + 1/n
    g = 0.5772156649015329
    close(cg.digamma(cg.tensor([1.0, 0.5, 2.0, 3.0], dtype=F64)),
          [-g, -g - 2 * math.log(2), 1 - g, 1.5 - g], rtol=1e-13)
    close(cg.lgamma(cg.tensor(x)), [math.lgamma(v) for v in x], rtol=1e-6)
    close(cg.digamma(cg.tensor([0.0, -0.0, -1.0, -2.0])), [-math.inf, math.inf, math.nan,
                                                           math.nan])
    close(cg.lgamma(cg.tensor([0.0, -1.0])), [math.inf, math.inf])
    y = np.array([-0.999, -0.5, 0.0, 1e-9, 0.3, 0.9, 0.999999])
    e = cg.erfinv(cg.tensor(y, dtype=F64)).numpy()
    close(np.array([math.erf(v) for v in e]), y, rtol=1e-14, atol=1e-15)
    close(cg.erfinv(cg.tensor([-1.0, 1.0, 1.5, math.nan])), [-math.inf, math.inf, math.nan,
                                                              math.nan])
    close(cg.erfc(cg.tensor([0.5, 3.0], dtype=F64)), [math.erfc(0.5), math.erfc(3.0)],
          rtol=1e-14)
    assert cg.erfinv(cg.tensor([0, 1])).dtype == cg.float32


def test_special_functions_against_torch():
    torch = torch_or_skip()
    x = np.concatenate([np.linspace(-4.7, 6, 41), [1e-6, 20.0, 100.0]])
    for name in ("digamma", "lgamma", "erfc"):
        close(getattr(cg, name)(cg.tensor(x)), getattr(torch, name)(torch.tensor(x)).numpy(),
              rtol=1e-12, atol=1e-12, err_msg=name)
    y = np.linspace(-0.999, 0.999, 37)
    close(cg.erfinv(cg.tensor(y)), torch.erfinv(torch.tensor(y)).numpy(), rtol=1e-13)
    a, b = np.array([-3.0, 0.0, 2.0, math.inf, -math.inf]), np.array([1.0, 0.0, -1, math.inf,
                                                                          -math.inf])
    for name in ("logaddexp", "logaddexp2", "hypot", "copysign", "xlogy"):
        close(getattr(cg, name)(cg.tensor(a), cg.tensor(b)),
              getattr(torch, name)(torch.tensor(a), torch.tensor(b)).numpy(), err_msg=name)


def test_binary_special_rows():
    close(cg.logaddexp(cg.tensor([1.0, math.inf, -math.inf]), cg.tensor([2.0, math.inf,
                                                                         -math.inf])),
          [np.logaddexp(1, 2), math.inf, -math.inf], rtol=1e-6)
    close(cg.xlogy(cg.tensor([0.0, 0.0, 2.0]), cg.tensor([math.nan, 0.0, 3.0])),
          [math.nan, 0.0, 2 * math.log(3)], rtol=1e-6)
    close(cg.xlogy(2, cg.tensor([3.0])), [2 * math.log(3)], rtol=1e-6)
    assert cg.xlogy(cg.tensor([1, 2]), cg.tensor([1, 2])).dtype == cg.float32
    close(cg.copysign(cg.tensor([1, 2]), -1), [-1.0, -2.0])
    close(cg.heaviside(cg.tensor([-1.0, 0.0, 2.0, math.nan]), cg.tensor([0.5])),
          [0.0, 0.5, 1.0, 0.0])
    assert cg.heaviside(cg.tensor([-1, 0, 3]), cg.tensor([7])).tolist() == [0, 7, 1]
    with pytest.raises(RuntimeError, match="heaviside is not yet implemented for tensors "
                       "with different dtypes"):
        cg.heaviside(cg.tensor([1]), cg.tensor([1.0]))
    with pytest.raises(NotImplementedError, match="logaddexp_cpu\" not implemented for 'Long'"):
        cg.logaddexp(cg.tensor([1]), cg.tensor([2]))
    with pytest.raises(TypeError, match="must be Tensor"):
        cg.hypot(cg.tensor([3.0]), 4.0)
    x = cg.tensor([3.0, -4.0])
    x.hypot_(cg.tensor([4.0, 3.0]))
    close(x, [5.0, 5.0])
    close(cg.tensor([1.0, 2.0]).xlogy_(cg.tensor([math.e, 1.0])), [1.0, 0.0], atol=1e-6)


def test_deg_rad_logit_clamp_and_special_namespace():
    close(cg.deg2rad(cg.tensor([180, -90])), [math.pi, -math.pi / 2], rtol=1e-6)
    assert cg.deg2rad(cg.tensor([1])).dtype == cg.float32
    close(cg.tensor([math.pi]).rad2deg(), [180.0], rtol=1e-6)
    p = np.array([0.0, 0.3, 1.0])
    with np.errstate(divide="ignore"):
        close(cg.logit(cg.tensor(p)), np.log(p / (1 - p)), rtol=1e-6)
    q = np.clip(p, 0.1, 0.9)
    close(cg.logit(cg.tensor(p), eps=0.1), np.log(q / (1 - q)), rtol=1e-6)
    t = cg.tensor([1.0, 5.0, -3.0])
    assert cg.clamp_(t, -1, 2) is t and t.tolist() == [1.0, 2.0, -1.0]
    x = cg.tensor([[-1.0, 0.5], [2.0, 0.0]])
    s = cg.special
    close(s.expit(x), 1 / (1 + np.exp(-x.numpy())), rtol=1e-6)
    close(s.erf(x), cg.erf(x).numpy())
    close(s.erfc(x), cg.erfc(x).numpy())
    close(s.xlogy(x, 2.0), cg.xlogy(x, 2.0).numpy())
    close(s.logit(cg.tensor([0.25])), [math.log(1 / 3)], rtol=1e-6)
    close(s.softmax(x, 1), cg.softmax(x, 1).numpy())
    close(s.log_softmax(x, 0), cg.log_softmax(x, 0).numpy())
    close(s.gammaln(cg.tensor([4.0])), [math.log(6)], rtol=1e-6)
    assert gradcheck(lambda v: cg.logit(v, eps=0.2), (leaf(5, low=0.05, high=0.95),))
    assert gradcheck(cg.deg2rad, (leaf(3),))


def test_masked_scatter():
    m = cg.tensor([True, False, True])
    close(cg.ones(3).masked_scatter(m, cg.tensor([5.0, 6.0, 7.0])), [5.0, 1.0, 6.0])
    close(cg.zeros(2, 3).masked_scatter(m, cg.arange(1.0, 9).reshape(2, 4)),
          [[1.0, 0, 2], [3, 0, 4]])
    t = cg.zeros(2, 2)
    t.masked_scatter_(cg.tensor([[True, False], [False, True]]), cg.tensor([1.0, 2.0]))
    close(t, [[1.0, 0.0], [0.0, 2.0]])
    close(cg.ones(2).masked_scatter(cg.tensor([False, False]), cg.zeros(0)), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        cg.ones(3).masked_scatter(cg.tensor([1, 0, 1]), cg.ones(3))
    with pytest.raises(RuntimeError, match="Number of elements of source < number of ones"):
        cg.ones(3).masked_scatter(m, cg.ones(1))
    with pytest.raises(RuntimeError, match="expected self and source to have same dtypes"):
        cg.ones(3).masked_scatter(m, cg.ones(3, dtype=cg.int64))
    mask = cg.tensor([[True, False, True], [False, True, True]])
    assert gradcheck(lambda x, s: cg.masked_scatter(x, mask, s), (leaf(2, 3), leaf(5, seed=1)))


# --- creation and random draws ------------------------------------------------------------


def test_empty_strided_and_randint_like():
    t = cg.empty_strided((2, 3), (1, 2))
    assert t.shape == (2, 3) and t.stride() == (1, 2)
    assert cg.empty_strided((0, 3), (3, 1)).shape == (0, 3)
    with pytest.raises(RuntimeError, match=r"dimensionality of sizes \(2\) must match "
                       r"dimensionality of strides \(3\)"):
        cg.empty_strided((2, 3), (1, 2, 3))
    r = cg.randint_like(cg.zeros(50, 4), 3, 6)
    assert r.dtype == cg.float32 and r.shape == (50, 4)
    v = r.numpy()
    assert v.min() >= 3 and v.max() <= 5 and np.all(v == np.floor(v))
    r = cg.randint_like(cg.zeros(100, dtype=cg.int64), 2)
    assert r.dtype == cg.int64 and set(r.tolist()) == {0, 1}


def test_normal_four_forms():
    g = cg.Generator().manual_seed(3)
    a = cg.normal(0.0, 1.0, (4000,), generator=g)
    g.manual_seed(3)
    assert cg.equal(a, cg.normal(0.0, 1.0, (4000,), generator=g))
    assert abs(float(a.mean())) < 0.1 and abs(float(a.std()) - 1) < 0.1
    b = cg.normal(cg.full((2000,), 5.0, dtype=F64), 0.5)
    assert b.dtype == F64 and abs(float(b.mean()) - 5) < 0.1
    assert abs(float(b.std()) - 0.5) < 0.05
    c = cg.normal(-3.0, cg.full((2000,), 2.0))
    assert abs(float(c.mean()) + 3) < 0.2 and abs(float(c.std()) - 2) < 0.2
    d = cg.normal(cg.zeros(2, 1), cg.ones(3))
    assert d.shape == (2, 3) and d.dtype == cg.float32
    assert cg.normal(cg.zeros(0), 1.0).shape == (0,)
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0, but found std -1"):
        cg.normal(0.0, -1.0, (2,))
    with pytest.raises(RuntimeError, match="normal expects all elements of std >= 0.0"):
        cg.normal(cg.zeros(2), -cg.ones(2))
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        cg.normal(0.0, 1.0)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        cg.normal(cg.zeros(2, dtype=cg.int64), 1.0)
