"""PyTorch functions added together (searching, counting, quantiles, joins, scans, special
functions, random draws): numpy references, float64 gradchecks, PyTorch's errors."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from conftest import close, torch_or_skip, uniform_leaf

import clgraph as cg
from clgraph.autograd import gradcheck

F64 = cg.float64


leaf = functools.partial(uniform_leaf, salt=13)


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


# --- joins, splits and rearrangements -----------------------------------------------------


def test_tensor_split_and_stacks():
    x = cg.arange(7)
    assert [t.tolist() for t in cg.tensor_split(x, 3)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [t.tolist() for t in x.tensor_split([1, 5, 3, 9])] == [[0], [1, 2, 3, 4], [],
                                                                   [3, 4, 5, 6], []]
    assert [t.tolist() for t in cg.tensor_split(x, cg.tensor(3))] == [[0, 1, 2], [3, 4], [5, 6]]
    a = np.arange(12).reshape(3, 4)
    parts = cg.tensor_split(cg.tensor(a), [1, -1], dim=1)
    for p, r in zip(parts, np.split(a, [1, 3], axis=1)):
        close(p, r)
    with pytest.raises(RuntimeError, match="number of sections must be larger than 0, got 0"):
        cg.tensor_split(x, 0)
    with pytest.raises(RuntimeError, match="at least a 1-dimensional tensor"):
        cg.tensor_split(cg.tensor(1), 2)
    u, v = np.array([1, 2]), np.array([3, 4])
    close(cg.dstack([cg.tensor(u), cg.tensor(v)]), np.dstack([u, v]))
    close(cg.column_stack([cg.tensor(u), cg.tensor(np.ones((2, 2), np.int64))]),
          np.column_stack([u, np.ones((2, 2), np.int64)]))
    close(cg.column_stack([cg.tensor(1), cg.tensor([2])]), [[1, 2]])
    b = cg.broadcast_tensors(cg.ones(2, 1), cg.ones(3))
    assert [t.shape for t in b] == [(2, 3), (2, 3)]
    with pytest.raises(RuntimeError, match="must match the size"):
        cg.broadcast_tensors(cg.ones(2), cg.ones(3))
    assert gradcheck(lambda p, q: cg.dstack([p, q]) * cg.column_stack([p, q]).sum(),
                     (leaf(2, 3), leaf(2, 3, seed=1)))


def test_block_diag_cartesian_prod_combinations():
    r = cg.block_diag(cg.ones(2, 2, dtype=cg.int64), cg.tensor(3.0), cg.tensor([1.0, 2.0]))
    close(r, [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 3, 0, 0], [0, 0, 0, 1, 2]])
    assert r.dtype == cg.float32 and cg.block_diag().shape == (1, 0)
    with pytest.raises(RuntimeError, match="Input 0 has 3 dimensions"):
        cg.block_diag(cg.ones(2, 2, 2))
    assert cg.cartesian_prod(cg.tensor([1, 2]), cg.tensor([3, 4, 5])).tolist() == [
        [1, 3], [1, 4], [1, 5], [2, 3], [2, 4], [2, 5]]
    assert cg.cartesian_prod(cg.tensor([1, 2])).tolist() == [1, 2]
    assert cg.combinations(cg.arange(4)).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3],
                                                      [2, 3]]
    assert cg.combinations(cg.arange(3), with_replacement=True).tolist() == [
        [0, 0], [0, 1], [0, 2], [1, 1], [1, 2], [2, 2]]
    assert cg.combinations(cg.arange(3.0), r=4).shape == (0, 4)
    assert cg.combinations(cg.arange(3.0), r=0).shape == (0,)
    with pytest.raises(RuntimeError, match="Expect a non-negative number, but got -1"):
        cg.combinations(cg.arange(3), r=-1)
    with pytest.raises(RuntimeError, match=r"Expect a 1D vector, but got shape \[2, 2\]"):
        cg.combinations(cg.ones(2, 2))
    assert gradcheck(lambda a, b: cg.block_diag(a, b) * 2, (leaf(2, 3), leaf(1, 2, seed=1)))
    assert gradcheck(lambda a: cg.combinations(a, 3) ** 2, (leaf(4),))


def test_rot90_diag_embed_diff():
    a = np.arange(24.0).reshape(2, 3, 4)
    for k in range(-1, 5):
        for dims in ([0, 1], [2, 0], [1, -1]):
            close(cg.rot90(cg.tensor(a), k, dims), np.rot90(a, k, dims))
    with pytest.raises(RuntimeError, match="expected total rotation dims == 2"):
        cg.rot90(cg.ones(2, 3), 1, [0])
    with pytest.raises(RuntimeError, match="expected rotation dims to be different"):
        cg.rot90(cg.ones(2, 3), 1, [0, 0])
    v = np.random.default_rng(0).standard_normal((2, 3))
    e = cg.diag_embed(cg.tensor(v), offset=1, dim1=0, dim2=2)
    assert e.shape == (4, 2, 4)
    close(cg.diagonal(e, 1, 0, 2), v)
    assert float(e.abs().sum()) == pytest.approx(np.abs(v).sum())
    close(cg.tensor(v).diag_embed(-1)[1], np.diag(v[1], -1))
    x = np.array([[1, 4, 9, 16], [2, 3, 5, 8]])
    close(cg.diff(cg.tensor(x)), np.diff(x))
    close(cg.diff(cg.tensor(x), n=2, dim=0), np.diff(x, 2, 0))
    close(cg.diff(cg.tensor(x), n=10), np.zeros((2, 0)))
    close(cg.diff(cg.tensor(x), prepend=cg.tensor([[0], [0]]), append=cg.tensor([[1], [1]])),
          np.diff(x, prepend=[[0], [0]], append=[[1], [1]]))
    close(cg.diff(cg.tensor([True, False, False])), [True, False])
    with pytest.raises(RuntimeError, match="order must be non-negative but got -1"):
        cg.diff(cg.tensor(x), n=-1)
    with pytest.raises(RuntimeError, match="at least one-dimensional"):
        cg.diff(cg.tensor(1.0))
    assert gradcheck(lambda t: cg.diff(t, 2, 0, append=t[:1]), (leaf(4, 3),))
    assert gradcheck(lambda t: cg.rot90(t, 3).diag_embed(1), (leaf(2, 3),))


# --- products and distances ---------------------------------------------------------------


def leaf_from(a):
    return cg.tensor(a, requires_grad=True)


def test_tensordot_kron_addmv_addbmm():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 3, 4)), rng.random((4, 3, 5))
    close(cg.tensordot(cg.tensor(a), cg.tensor(b), dims=([1, 2], [1, 0])),
          np.tensordot(a, b, axes=([1, 2], [1, 0])), rtol=1e-12)
    c = rng.random((3, 4, 5))
    close(cg.tensordot(cg.tensor(a), cg.tensor(c)), np.tensordot(a, c), rtol=1e-12)
    assert cg.tensordot(cg.ones(2, 3), cg.ones(3, 5), dims=0).shape == (2, 3, 3, 5)
    with pytest.raises(RuntimeError, match="contracted dimensions need to match"):
        cg.tensordot(cg.ones(2, 3), cg.ones(4, 5), dims=1)
    with pytest.raises(RuntimeError, match="both dimension lists should have same length"):
        cg.tensordot(cg.ones(2, 3), cg.ones(3, 5), dims=([1], [0, 1]))
    # a contracted dim of size 1 broadcasts (PyTorch): the other side is summed over it
    p, q = rng.random((1, 1, 1)), rng.random((2, 1, 2))
    close(cg.tensordot(cg.tensor(p), cg.tensor(q), dims=([0, 1], [2, 0])),
          p.sum((0, 1))[:, None] * q.sum((2, 0))[None], rtol=1e-12)
    pl, ql = leaf_from(p), leaf_from(q)
    cg.tensordot(pl, ql, dims=([0, 1], [2, 0])).sum().backward()
    close(ql.grad, np.broadcast_to(p.sum(), q.shape), rtol=1e-12)
    for d in ("int32", "int16", "int8", "uint8"):  # the summed side keeps the dtype
        pi, qi = (rng.integers(0, 5, sh) for sh in ((1, 1, 3), (2, 1, 2)))
        r = cg.tensordot(cg.tensor(pi).to(getattr(cg, d)), cg.tensor(qi).to(getattr(cg, d)),
                         dims=([0, 1], [2, 0]))
        assert r.dtype == getattr(cg, d)
        np.testing.assert_array_equal(r.numpy(), pi.sum((0, 1))[:, None] * qi.sum((2, 0)))
    # bool addr: (beta and input) or (alpha and outer), as PyTorch
    i, u, v = cg.tensor([[True, False]]), cg.tensor([True, False]), cg.tensor([False, True])
    for beta, alpha, want in ((3, 2, [[1, 1], [1, 0]]), (0, 2, [[0, 1], [0, 0]]),
                              (3, 0, [[1, 0], [1, 0]])):
        r = cg.addr(i, u, v, beta=beta, alpha=alpha)
        assert r.dtype is cg.bool and r.tolist() == np.array(want, bool).tolist()
    x, y = rng.random((2, 3)), rng.random((3, 1, 2))
    close(cg.kron(cg.tensor(x), cg.tensor(y)), np.kron(x, y), rtol=1e-12)
    assert cg.kron(cg.ones(2, dtype=cg.int64), cg.ones(2, 2)).dtype == cg.float32
    close(cg.addmv(cg.ones(2), cg.ones(2, 3), cg.ones(3), beta=2, alpha=0.5), [3.5, 3.5])
    with pytest.raises(RuntimeError, match=r"size mismatch, got input \(2\), mat \(2x3\), "
                       r"vec \(4\)"):
        cg.addmv(cg.ones(2), cg.ones(2, 3), cg.ones(4))
    close(cg.addbmm(cg.ones(2, 2), cg.ones(3, 2, 4), cg.ones(3, 4, 2)), np.full((2, 2), 13.0))
    # small integer batches keep their dtype through the batch sum, as PyTorch
    for dt in (cg.int32, cg.int16, cg.uint8):
        got = cg.addbmm(cg.ones(2, 2, dtype=dt), cg.ones(3, 2, 4, dtype=dt),
                        cg.ones(3, 4, 2, dtype=dt), beta=2, alpha=3)
        assert got.dtype == dt
        assert (got.numpy() == 38).all()
    assert gradcheck(lambda p, q: cg.tensordot(p, q, dims=([0], [1])), (leaf(3, 2),
                                                                        leaf(4, 3, seed=1)))
    assert gradcheck(cg.kron, (leaf(2, 2), leaf(3, seed=1)))
    assert gradcheck(lambda i, m, v: cg.addmv(i, m, v, beta=0.5, alpha=2),
                     (leaf(2), leaf(2, 3, seed=1), leaf(3, seed=2)))
    assert gradcheck(cg.addbmm, (leaf(2, 2), leaf(3, 2, 4, seed=1), leaf(3, 4, 2, seed=2)))


def test_cdist():
    rng = np.random.default_rng(2)
    u, v = rng.random((2, 5, 3)), rng.random((4, 3))
    d = u[:, :, None, :] - v[None, None, :, :]
    for p in (2.0, 1.0, 0.0, 3.5, math.inf):
        ref = (np.abs(d) > 0).sum(-1) if p == 0 else np.linalg.norm(d, ord=p, axis=-1)
        close(cg.cdist(cg.tensor(u), cg.tensor(v), p=p), ref, rtol=1e-12, err_msg=str(p))
    x = cg.tensor([[0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    cg.cdist(x, x).sum().backward()
    close(x.grad, [[-math.sqrt(2)] * 2, [math.sqrt(2)] * 2], rtol=1e-6)
    with pytest.raises(RuntimeError, match="at least 2D tensors, X1 got: 1D"):
        cg.cdist(cg.ones(3), cg.ones(3))
    with pytest.raises(RuntimeError, match="same number of columns. X1: 3 X2: 4"):
        cg.cdist(cg.ones(2, 3), cg.ones(2, 4))
    with pytest.raises(RuntimeError, match="non-negative p values"):
        cg.cdist(cg.ones(2, 3), cg.ones(2, 3), p=-1)
    with pytest.raises(RuntimeError, match="floating-point dtypes, X1 got: Long"):
        cg.cdist(cg.ones(2, 3, dtype=cg.int64), cg.ones(2, 3, dtype=cg.int64))
    assert gradcheck(lambda a, b: cg.cdist(a, b, p=1.5), (leaf(3, 2), leaf(4, 2, seed=1)))


# --- searching, counting, order statistics ------------------------------------------------


def test_searchsorted_bucketize_isin():
    seq = np.array([1, 2, 2, 3, 5])
    v = np.array([[0, 2, 4], [5, 6, 2]])
    for side in ("left", "right"):
        close(cg.searchsorted(cg.tensor(seq), cg.tensor(v), side=side),
              np.searchsorted(seq, v, side=side))
    close(cg.searchsorted(cg.tensor(seq), cg.tensor(v), right=True),
          np.searchsorted(seq, v, side="right"))
    batched = np.array([[1.0, 3, 5], [0, 0, 7]])
    vals = np.array([[3.0, 6], [0, -1]])
    close(cg.searchsorted(cg.tensor(batched), cg.tensor(vals)),
          [np.searchsorted(batched[i], vals[i]) for i in range(2)])
    perm = np.array([2, 0, 4, 1, 3])
    unsorted = seq[np.argsort(perm)]
    close(cg.searchsorted(cg.tensor(unsorted), cg.tensor([2, 4]), sorter=cg.tensor(
        np.argsort(unsorted, kind="stable"))), np.searchsorted(seq, [2, 4]))
    r = cg.searchsorted(cg.tensor(seq), 2)
    assert r.shape == () and int(r) == 1
    assert cg.searchsorted(cg.tensor(seq), cg.tensor([2]), out_int32=True).dtype == cg.int32
    assert cg.searchsorted(cg.tensor(seq), cg.tensor([], dtype=cg.int64)).shape == (0,)
    with pytest.raises(RuntimeError, match="side and right can't be set to opposites"):
        cg.searchsorted(cg.tensor(seq), cg.tensor([2]), side="left", right=True)
    with pytest.raises(RuntimeError, match="side can only be 'left' or 'right' but got foo"):
        cg.searchsorted(cg.tensor(seq), cg.tensor([2]), side="foo")
    with pytest.raises(RuntimeError, match=r"boundaries tensor \[2, 3\] and input value "
                       r"tensor \[3, 2\]"):
        cg.searchsorted(cg.ones(2, 3), cg.ones(3, 2))
    close(cg.bucketize(cg.tensor(v), cg.tensor(seq)), np.searchsorted(seq, v))
    close(cg.bucketize(cg.tensor(v), cg.tensor(seq), right=True),
          np.searchsorted(seq, v, side="right"))
    with pytest.raises(RuntimeError, match=r"boundaries tensor must be 1 dimension, but got "
                       r"dim\(2\)"):
        cg.bucketize(cg.tensor([2]), cg.ones(1, 3))
    e, t = np.array([[1, 2, 3], [4, 9, 2]]), np.array([9, 2, 7, 2])
    close(cg.isin(cg.tensor(e), cg.tensor(t)), np.isin(e, t))
    close(cg.isin(cg.tensor(e), cg.tensor(t), invert=True), ~np.isin(e, t))
    close(cg.isin(cg.tensor(e), 2), e == 2)
    assert bool(cg.isin(3, cg.tensor([1, 2, 3]))) is True
    close(cg.isin(cg.tensor(e), cg.tensor([], dtype=cg.int64)), np.zeros(e.shape, bool))
    # PyTorch's keyword names, with element / test_element for a number
    close(cg.isin(elements=cg.tensor(e), test_elements=cg.tensor(t)), np.isin(e, t))
    close(cg.isin(cg.tensor(e), test_element=2), e == 2)
    assert bool(cg.isin(element=3, test_elements=cg.tensor([1, 2, 3]))) is True
    with pytest.raises(TypeError, match="'test_element' takes a number"):
        cg.isin(elements=cg.tensor(e), test_element=cg.tensor(t))
    with pytest.raises(TypeError, match="missing required argument 'test_elements'"):
        cg.isin(elements=cg.tensor(e))


def test_unique_consecutive_kthvalue_mode():
    u, inv, cnt = cg.unique_consecutive(cg.tensor([1, 1, 2, 2, 3, 1, 1, 2]),
                                        return_inverse=True, return_counts=True)
    assert (u.tolist(), inv.tolist(), cnt.tolist()) == ([1, 2, 3, 1, 2],
                                                        [0, 0, 1, 1, 2, 3, 3, 4],
                                                        [2, 2, 1, 2, 1])
    u, cnt = cg.tensor([[1, 1], [1, 1], [2, 3]]).unique_consecutive(return_counts=True, dim=0)
    assert u.tolist() == [[1, 1], [2, 3]] and cnt.tolist() == [2, 1]
    assert cg.unique_consecutive(cg.tensor([], dtype=cg.int64)).shape == (0,)
    x = np.array([[3.0, 1, 2, 5], [0, -1, 7, 7]])
    r = cg.kthvalue(cg.tensor(x), 2)
    close(r.values, np.sort(x, 1)[:, 1])
    close(r.indices, np.argsort(x, 1, kind="stable")[:, 1])
    r = cg.tensor(x).kthvalue(1, 0, keepdim=True)
    assert r.values.shape == (1, 4) and r.values.tolist() == [[0.0, -1, 2, 5]]
    with pytest.raises(RuntimeError, match="selected number k out of range for dimension 0"):
        cg.kthvalue(cg.tensor([3.0, 1, 2]), 4)
    m = cg.mode(cg.tensor([3, 1, 3, 1, 2]))
    assert (int(m.values), int(m.indices)) == (1, 3)
    m = cg.tensor([[3.0, 1, 3, 1, 2], [5, 5, 4, 4, 4]]).mode(1, keepdim=True)
    assert m.values.tolist() == [[1.0], [4.0]] and m.indices.tolist() == [[3], [4]]
    assert gradcheck(lambda t: cg.kthvalue(t, 2, 0).values, (leaf(4, 3),))
    assert gradcheck(lambda t: cg.mode(t.round() * 1.0 + t * 0, 0).values, (leaf(4, 3),))


def test_mode_and_kthvalue_against_torch():
    torch = torch_or_skip()
    x = np.random.default_rng(4).integers(0, 4, (6, 9))
    for dim in (0, 1):
        a, b = cg.mode(cg.tensor(x), dim), torch.mode(torch.tensor(x), dim)
        close(a.values, b.values.numpy())
        close(a.indices, b.indices.numpy())


def test_quantile_and_nanquantile():
    rng = np.random.default_rng(5)
    a = rng.random((3, 4, 5))
    methods = ("linear", "lower", "higher", "midpoint", "nearest")
    for method in methods:
        for dim in (None, 0, 2):
            for kd in (False, True):
                for q in (0.3, np.array([0.0, 0.5, 0.77, 1.0])):
                    tq = cg.tensor(q) if isinstance(q, np.ndarray) else q
                    got = cg.quantile(cg.tensor(a), tq, dim, kd, interpolation=method)
                    ref = np.quantile(a, q, axis=dim, keepdims=kd, method=method)
                    close(got, ref, rtol=1e-12, err_msg=f"{method} {dim} {kd}")
    b = a.copy()
    b[0, 1, 2] = b[2, 0, 0] = math.nan
    b[1, 3, :] = math.nan
    with pytest.warns(RuntimeWarning, match="All-NaN slice"):
        ref = np.nanquantile(b, 0.4, axis=2)
    close(cg.nanquantile(cg.tensor(b), 0.4, dim=2), ref, rtol=1e-12)
    close(cg.quantile(cg.tensor(b), 0.4, dim=2), np.quantile(b, 0.4, axis=2), rtol=1e-12)
    assert math.isnan(float(cg.quantile(cg.tensor(b), 0.5)))
    with pytest.raises(RuntimeError, match="input tensor must be either float or double"):
        cg.quantile(cg.tensor([1, 2]), 0.5)
    with pytest.raises(RuntimeError, match=r"q must be in the range \[0, 1\] but got 1.5"):
        cg.quantile(cg.tensor([1.0, 2]), 1.5)
    with pytest.raises(RuntimeError, match="q must be a scalar or 1D tensor"):
        cg.quantile(cg.tensor([1.0, 2]), cg.tensor([[0.5]]))
    with pytest.raises(RuntimeError, match="interpolation must be one of linear"):
        cg.quantile(cg.tensor([1.0, 2]), 0.5, interpolation="foo")
    with pytest.raises(RuntimeError, match="input tensor must be non-empty"):
        cg.quantile(cg.tensor([]), 0.5)
    assert gradcheck(lambda t: cg.quantile(t, cg.tensor([0.2, 0.9], dtype=F64), dim=1),
                     (leaf(3, 5),))


# --- scans, NaN-aware means, counting, Poisson --------------------------------------------


def test_cummax_cummin_logcumsumexp():
    r = cg.cummax(cg.tensor([1.0, 3, math.nan, 2, math.nan, 5]), 0)
    close(r.values, [1.0, 3, math.nan, math.nan, math.nan, math.nan])
    assert r.indices.tolist() == [0, 1, 2, 2, 4, 4]
    x = np.array([[3, 1, 1, 2, 0, 0, 4], [0, 5, -1, -1, 6, 6, 2]])
    r = cg.tensor(x).cummin(1)
    close(r.values, np.minimum.accumulate(x, 1))
    assert r.indices.tolist() == [[0, 1, 2, 2, 4, 5, 5], [0, 0, 2, 3, 3, 3, 3]]
    r = cg.cummax(cg.tensor(x), 0)
    close(r.values, np.maximum.accumulate(x, 0))
    assert cg.cummax(cg.tensor([True, False]), 0).indices.tolist() == [0, 0]
    z = cg.cummax(cg.tensor(2.0), 0)
    assert z.values.shape == () and int(z.indices) == 0
    v = np.array([1.0, 2.0, -1000.0, 500.0, -math.inf])
    close(cg.logcumsumexp(cg.tensor(v), 0), np.logaddexp.accumulate(v), rtol=1e-12)
    w = np.random.default_rng(6).standard_normal((3, 6))
    close(cg.tensor(w).logcumsumexp(1), np.log(np.cumsum(np.exp(w), 1)), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        cg.logcumsumexp(cg.tensor([1, 2]), 0)
    assert gradcheck(lambda t: cg.logcumsumexp(t, 0), (leaf(5, 2),))
    assert gradcheck(lambda t: cg.cummax(t, 1).values, (leaf(3, 5),))
    assert gradcheck(lambda t: cg.cummin(t, 0).values, (leaf(5, 2),))


def test_nanmean_and_bincount():
    x = np.array([[1.0, math.nan, 3.0], [math.nan] * 3])
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        close(cg.nanmean(cg.tensor(x), 1), np.nanmean(x, 1))
    assert float(cg.tensor(x).nanmean()) == 2.0
    with pytest.raises(RuntimeError, match="expected input to have floating point"):
        cg.nanmean(cg.tensor([1, 2]))
    assert gradcheck(lambda t: cg.nanmean(t, 0), (leaf(3, 2),))
    i = np.array([1, 3, 1, 0, 7])
    close(cg.bincount(cg.tensor(i)), np.bincount(i))
    close(cg.bincount(cg.tensor(i), minlength=10), np.bincount(i, minlength=10))
    w = np.array([0.5, 1.0, 2.0, 3.0, -1.0])
    r = cg.bincount(cg.tensor(i), weights=cg.tensor(w))
    close(r, np.bincount(i, w))
    assert r.dtype == F64
    assert cg.bincount(cg.tensor(i), cg.tensor(w, dtype=cg.float32)).dtype == cg.float32
    assert cg.bincount(cg.tensor([], dtype=cg.int64), minlength=3).tolist() == [0, 0, 0]
    with pytest.raises(RuntimeError, match="1-d non-negative integral inputs"):
        cg.bincount(cg.tensor([1, -3]))
    with pytest.raises(RuntimeError, match="minlength should be >= 0"):
        cg.bincount(cg.tensor([1]), minlength=-1)
    with pytest.raises(NotImplementedError, match="not implemented for 'Float'"):
        cg.bincount(cg.tensor([1.0]))


def test_poisson():
    lam = cg.tensor([0.0, 0.5, 3.0, 30.0, 1200.0]).repeat(3000).reshape(3000, 5)
    r = cg.poisson(lam)
    assert r.dtype == cg.float32 and r.shape == (3000, 5)
    v = r.numpy()
    assert np.all(v == np.floor(v)) and np.all(v[:, 0] == 0)
    rates = np.array([0.0, 0.5, 3.0, 30.0, 1200.0])
    assert np.all(np.abs(v.mean(0) - rates) <= 5 * np.sqrt(rates / 3000) + 1e-9)
    assert np.all(np.abs(v.var(0) - rates) <= 0.15 * rates + 1e-9)
    g = cg.Generator().manual_seed(2)
    a = cg.poisson(cg.full((50,), 4.0, dtype=F64), g)
    g.manual_seed(2)
    assert a.dtype == F64 and cg.equal(a, cg.poisson(cg.full((50,), 4.0, dtype=F64), g))
    assert cg.poisson(cg.zeros(0)).shape == (0,)
    with pytest.raises(RuntimeError, match="expected rate to be non-negative"):
        cg.poisson(cg.tensor([-1.0]))
    with pytest.raises(NotImplementedError, match="poisson_cpu\" not implemented for 'Long'"):
        cg.poisson(cg.tensor([1, 2]))
