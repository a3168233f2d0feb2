"""Functions and Tensor methods PyTorch scripts commonly use, added together: closeness,
finfo/iinfo, linalg norms, meshgrid, repeat_interleave, atleast_Nd, take, index_fill,
frac/nan_to_num/positive, cumprod, nansum, median, count_nonzero, shifts, axis=, the
in-place view ops and tensor attributes. numpy references; gradients in float64."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
from conftest import close, torch_or_skip, uniform_leaf

import clgraph as cg
from clgraph.autograd import gradcheck

F64 = cg.float64


leaf = functools.partial(uniform_leaf, salt=11)


# --- closeness and dtype info -----------------------------------------------------------


def test_isclose_allclose_equal():
    a = np.array([1.0, math.inf, math.nan, 1e-9, -2.0])
    b = np.array([1.0 + 1e-6, math.inf, math.nan, 0.0, -2.1])
    ta, tb = cg.from_numpy(a), cg.from_numpy(b)
    close(cg.isclose(ta, tb), np.isclose(a, b))
    close(ta.isclose(tb, equal_nan=True), np.isclose(a, b, equal_nan=True))
    close(cg.isclose(ta, tb, rtol=0.1, atol=0.0), np.isclose(a, b, rtol=0.1, atol=0.0))
    close(cg.isclose(cg.tensor([1, 2]), cg.tensor([1, 3])), [True, False])
    assert cg.allclose(cg.ones(3), cg.ones(3) + 1e-7) is True
    assert cg.ones(3).allclose(cg.ones(3) + 1e-3) is False
    assert cg.equal(cg.ones(2), cg.ones(2, dtype=cg.int64)) is True
    assert cg.equal(cg.ones(2), cg.ones(3)) is False
    assert cg.tensor([math.nan]).equal(cg.tensor([math.nan])) is False
    with pytest.raises(RuntimeError, match="Float did not match Double"):
        cg.isclose(cg.ones(2), cg.ones(2, dtype=F64))
    with pytest.raises(RuntimeError, match="rtol must be greater than or equal to zero"):
        cg.isclose(cg.ones(2), cg.ones(2), rtol=-1)


def test_finfo_iinfo():
    f = cg.finfo(cg.float32)
    npf = np.finfo(np.float32)
    assert (f.bits, f.eps, f.max, f.min, f.tiny) == (32, float(npf.eps), float(npf.max),
                                                     float(npf.min), float(npf.tiny))
    assert f.resolution == 1e-06 and f.dtype == "float32"
    assert cg.finfo().dtype == "float32"
    assert cg.finfo(cg.float16).max == 65504.0 and cg.finfo(cg.bfloat16).eps == 2.0 ** -7
    i = cg.iinfo(cg.int8)
    assert (i.bits, i.min, i.max, i.dtype) == (8, -128, 127, "int8")
    assert cg.iinfo(cg.int64).max == 2 ** 63 - 1 and cg.iinfo(cg.uint8).min == 0
    with pytest.raises(TypeError, match="finfo\\(\\) requires a floating point"):
        cg.finfo(cg.int32)
    with pytest.raises(TypeError, match="iinfo\\(\\) requires an integer"):
        cg.iinfo(cg.float32)
    with pytest.raises(TypeError, match="torch.bool is not supported"):
        cg.iinfo(cg.bool)


def test_finfo_iinfo_match_torch():
    torch = torch_or_skip()
    for name in ("float32", "float64", "float16", "bfloat16"):
        a, b = cg.finfo(getattr(cg, name)), torch.finfo(getattr(torch, name))
        assert repr(a) == repr(b)
        for k in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution",
                  "dtype"):
            assert getattr(a, k) == getattr(b, k), (name, k)
    for name in ("int8", "uint8", "int16", "int32", "int64"):
        a, b = cg.iinfo(getattr(cg, name)), torch.iinfo(getattr(torch, name))
        assert repr(a) == repr(b)
        assert (a.bits, a.min, a.max, a.dtype) == (b.bits, b.min, b.max, b.dtype)


# --- linalg -----------------------------------------------------------------------------

A = np.random.default_rng(3).standard_normal((3, 4, 5))

NORM_CASES = [
    (lambda m, x: m.linalg.norm(x), lambda a: np.linalg.norm(a.reshape(-1))),
    (lambda m, x: m.linalg.norm(x, dim=1), lambda a: np.linalg.norm(a, axis=1)),
    (lambda m, x: m.linalg.norm(x, dim=(0, 2)),
     lambda a: np.sqrt((a * a).sum(axis=(0, 2)))),
    (lambda m, x: m.linalg.norm(x[0], ord=math.inf), lambda a: np.linalg.norm(a[0], np.inf)),
    (lambda m, x: m.linalg.norm(x[0, 0], ord=1), lambda a: np.linalg.norm(a[0, 0], 1)),
    (lambda m, x: m.linalg.vector_norm(x, ord=math.inf, dim=(1, 2)),
     lambda a: np.abs(a).max(axis=(1, 2))),
    (lambda m, x: m.linalg.vector_norm(x, 0), lambda a: np.count_nonzero(a) * 1.0),
    (lambda m, x: m.linalg.vector_norm(x, 3, dim=-1, keepdim=True),
     lambda a: np.linalg.norm(a, 3, axis=-1, keepdims=True)),
    (lambda m, x: m.linalg.matrix_norm(x),
     lambda a: np.linalg.norm(a, "fro", axis=(-2, -1))),
    (lambda m, x: m.linalg.matrix_norm(x, 1), lambda a: np.linalg.norm(a, 1, axis=(-2, -1))),
    (lambda m, x: m.linalg.matrix_norm(x, -math.inf, keepdim=True),
     lambda a: np.linalg.norm(a, -np.inf, axis=(-2, -1), keepdims=True)),
    (lambda m, x: m.linalg.matrix_norm(x, -1, dim=(2, 0)),
     lambda a: np.linalg.norm(a, -1, axis=(2, 0))),
]


@pytest.mark.parametrize("i", range(len(NORM_CASES)))
def test_linalg_norms(i):
    fn, ref = NORM_CASES[i]
    close(fn(cg, cg.from_numpy(A)), ref(A), rtol=1e-12, atol=1e-12)


def test_linalg_norm_gradients_and_errors():
    assert gradcheck(lambda x: cg.linalg.norm(x, dim=1), (leaf(3, 4),))
    assert gradcheck(lambda x: cg.linalg.matrix_norm(x), (leaf(2, 3, 4),))
    assert gradcheck(lambda x: cg.linalg.matrix_norm(x, math.inf), (leaf(3, 4),))
    with pytest.raises(RuntimeError, match="must have at least 2 dimensions"):
        cg.linalg.matrix_norm(cg.ones(3))
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor"):
        cg.linalg.vector_norm(cg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="input must be 1D or 2D. Got 3D"):
        cg.linalg.norm(cg.ones(2, 3, 4), ord=1)
    np.testing.assert_allclose(cg.linalg.matrix_norm(cg.ones(2, 2), 2).item(), 2.0,
                               rtol=1e-6)


# --- shapes and indexing ----------------------------------------------------------------


def test_meshgrid():
    a, b, c = np.arange(3.0), np.arange(4.0) + 10, np.array([7.0, 8.0])
    for indexing in ("ij", "xy"):
        got = cg.meshgrid(cg.from_numpy(a), cg.from_numpy(b), cg.from_numpy(c),
                          indexing=indexing)
        for g, r in zip(got, np.meshgrid(a, b, c, indexing=indexing)):
            close(g, r)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = cg.meshgrid([cg.from_numpy(a), cg.from_numpy(b)])
    assert any("indexing argument" in str(x.message) for x in w)
    close(got[1], np.meshgrid(a, b, indexing="ij")[1])
    with pytest.raises(RuntimeError, match='indexing must be one of "xy" or "ij"'):
        cg.meshgrid(cg.ones(2), indexing="foo")
    with pytest.raises(RuntimeError, match="Expected 0D or 1D tensor"):
        cg.meshgrid(cg.ones(2, 2), indexing="ij")
    x, y = leaf(3), leaf(4, seed=1)
    assert gradcheck(lambda x, y: cg.meshgrid(x, y, indexing="xy")[0] * cg.meshgrid(
        x, y, indexing="xy")[1], (x, y))


def test_repeat_interleave():
    a = np.array([[1, 2], [3, 4]])
    t = cg.from_numpy(a)
    close(cg.repeat_interleave(t, 2), np.repeat(a, 2))
    close(t.repeat_interleave(3, dim=1), np.repeat(a, 3, axis=1))
    close(cg.repeat_interleave(t, cg.tensor([1, 2]), dim=0), np.repeat(a, [1, 2], axis=0))
    close(cg.repeat_interleave(t, cg.tensor(2), dim=-1), np.repeat(a, 2, axis=-1))
    close(cg.repeat_interleave(cg.tensor([2, 0, 1])), [0, 0, 2])
    close(cg.repeat_interleave(cg.tensor(5), 2), [5, 5])
    with pytest.raises(RuntimeError, match="repeats must have the same size as input"):
        cg.repeat_interleave(cg.ones(3), cg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="repeats can not be negative"):
        cg.repeat_interleave(cg.ones(2), -1)
    assert gradcheck(lambda x: x.repeat_interleave(cg.tensor([2, 0, 1]), dim=1), (leaf(2, 3),))
    assert gradcheck(lambda x: cg.repeat_interleave(x, 2), (leaf(2, 3),))


def test_atleast():
    s, v, m = cg.tensor(1.0), cg.ones(3), cg.ones(2, 3)
    assert cg.atleast_1d(s).shape == (1,) and cg.atleast_1d(v) is v
    assert [t.shape for t in cg.atleast_2d(s, v, m)] == [(1, 1), (1, 3), (2, 3)]
    assert [t.shape for t in cg.atleast_3d([s, v, m, cg.ones(1, 2, 3, 4)])] == [
        (1, 1, 1), (1, 3, 1), (2, 3, 1), (1, 2, 3, 4)]
    assert cg.atleast_3d(v).shape == np.atleast_3d(np.ones(3)).shape


def test_take_and_index_fill():
    a = np.arange(12.0).reshape(3, 4)
    t = cg.from_numpy(a)
    idx = np.array([[0, -1], [5, 11]])
    close(cg.take(t, cg.from_numpy(idx)), np.take(a, idx))
    close(t.take(cg.tensor([], dtype=cg.int64)), np.zeros(0))
    with pytest.raises(IndexError, match="tried to access index 12 on a tensor of 12"):
        cg.take(t, cg.tensor([12]))
    with pytest.raises(RuntimeError, match="Expected a long tensor"):
        cg.take(t, cg.tensor([1], dtype=cg.int32))
    ref = a.copy()
    ref[:, [0, 2]] = -1
    close(cg.index_fill(t, 1, cg.tensor([0, 2]), -1.0), ref)
    z = t.clone()
    assert z.index_fill_(-1, cg.tensor([0, 2]), cg.tensor(-1.0)) is z
    close(z, ref)
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 1 with size 4"):
        t.index_fill(1, cg.tensor([4]), 0.0)
    assert gradcheck(lambda x: cg.take(x, cg.tensor([[3, 0], [-1, 3]])), (leaf(2, 3),))
    assert gradcheck(lambda x: x.index_fill(0, cg.tensor([1]), 2.0), (leaf(3, 2),))


# --- elementwise composites -------------------------------------------------------------


def test_frac_nan_to_num_positive():
    a = np.array([1.5, -2.25, 0.0, 3.0])
    close(cg.frac(cg.from_numpy(a)), a - np.trunc(a))
    b = np.array([math.nan, math.inf, -math.inf, 1.0], dtype=np.float32)
    close(cg.from_numpy(b).nan_to_num(), np.nan_to_num(b))
    close(cg.nan_to_num(cg.from_numpy(b), nan=1.5, posinf=2.0, neginf=-3.0),
          np.nan_to_num(b, nan=1.5, posinf=2.0, neginf=-3.0))
    h = cg.tensor([math.inf, -math.inf], dtype=cg.float16).nan_to_num()
    assert h.tolist() == [65504.0, -65504.0]
    x = cg.ones(2)
    assert cg.positive(x) is x
    with pytest.raises(RuntimeError, match="on a bool tensor is not supported"):
        cg.positive(cg.tensor([True]))
    with pytest.raises(NotImplementedError, match="frac_cpu\" not implemented for 'Long'"):
        cg.frac(cg.tensor([1, 2]))
    assert gradcheck(cg.frac, (leaf(3) * 3 + 0.01,))
    assert gradcheck(cg.nan_to_num, (leaf(4),))


def test_shift_operators():
    a = np.array([1, -8, 3, 100], dtype=np.int64)
    t = cg.from_numpy(a)
    close(t << 2, a << 2)
    close(t >> 1, a >> 1)
    close(cg.bitwise_left_shift(t, cg.tensor([0, 1, 2, 64])), [1, -16, 12, 0])
    close(cg.bitwise_right_shift(t, cg.tensor([0, 1, 70, -1])), [1, -4, 0, 0])
    close(2 << cg.tensor([3], dtype=cg.int32), [16])
    i8 = cg.tensor([1, 1, -8], dtype=cg.int8)
    close(i8 << cg.tensor([7, 8, 1], dtype=cg.int8), np.array([-128, 0, -16], dtype=np.int8))
    u = cg.tensor([5, 6])
    u <<= 1
    assert u.tolist() == [10, 12]
    with pytest.raises(NotImplementedError, match="\"lshift_cpu\" not implemented for 'Float'"):
        cg.ones(2) << 1
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
        cg.tensor([True]) >> cg.tensor([True])


# --- reductions -------------------------------------------------------------------------

X = np.random.default_rng(5).standard_normal((4, 5))


def test_axis_alias():
    t = cg.from_numpy(X)
    close(t.sum(axis=1), X.sum(axis=1))
    close(cg.mean(t, axis=0, keepdims=True), X.mean(axis=0, keepdims=True))
    close(cg.amax(t, axis=(0, 1)), X.max())
    close(t.max(axis=1).values, X.max(axis=1))
    close(cg.std(t, axis=1), X.std(axis=1, ddof=1))
    with pytest.raises(TypeError, match="multiple values for argument 'dim'"):
        cg.sum(t, dim=0, axis=0)


def test_nansum_count_nonzero():
    a = X.copy()
    a[1, 2] = a[3, 0] = math.nan
    t = cg.from_numpy(a)
    close(cg.nansum(t), np.nansum(a))
    close(t.nansum(1, keepdim=True), np.nansum(a, 1, keepdims=True))
    close(cg.nansum(cg.tensor([1, 2])), 3)
    b = np.array([[0, 1, 2], [0, 0, 3.0]])
    close(cg.count_nonzero(cg.from_numpy(b)), np.count_nonzero(b))
    close(cg.from_numpy(b).count_nonzero(dim=0), np.count_nonzero(b, axis=0))
    close(cg.count_nonzero(cg.from_numpy(b), dim=(0, 1)), 3)
    assert cg.count_nonzero(cg.from_numpy(b)).dtype is cg.int64
    x = leaf(3, 4)
    assert gradcheck(lambda x: cg.nansum(x, 1), (x,))


def test_cumprod():
    a = np.array([[1.0, 2.0, 0.0, 3.0, -1.5], [0.5, -2.0, 4.0, 0.25, 3.0]])
    close(cg.cumprod(cg.from_numpy(a), 1), np.cumprod(a, 1))
    close(cg.from_numpy(a).cumprod(dim=0), np.cumprod(a, 0))
    close(cg.cumprod(cg.tensor([1, 2, 3, 4, 5, 6, 7]), 0), np.cumprod(np.arange(1, 8)))
    assert cg.cumprod(cg.tensor([True, False]), 0).dtype is cg.int64
    assert cg.cumprod(cg.ones(3), 0, dtype=F64).dtype is F64
    close(cg.cumprod(cg.tensor(2.0), 0), 2.0)
    z = cg.from_numpy(a.copy())
    z.cumprod_(1)
    close(z, np.cumprod(a, 1))
    # a zero inside the scan: the gradient is exact (no division by the product)
    x = cg.from_numpy(np.array([[0.5, 0.0, 2.0, -1.0, 3.0, 0.7]])).requires_grad_()
    assert gradcheck(lambda x: cg.cumprod(x, 1), (x,))
    assert gradcheck(lambda x: cg.cumprod(x, 0), (leaf(5, 2),))


def test_median():
    a = np.array([[3.0, 1.0, 4.0, 1.5], [9.0, 2.0, 6.0, 5.0], [0.0, -1.0, 2.0, 7.0]])
    t = cg.from_numpy(a)
    flat = np.sort(a.reshape(-1))
    close(cg.median(t), flat[(flat.size - 1) // 2])
    v, i = cg.median(t, 1)
    lower = np.sort(a, 1)[:, 1]
    close(v, lower)
    close(i, np.argsort(a, 1)[:, 1])
    r = t.median(dim=0, keepdim=True)
    assert type(r).__name__ == "median" and repr(r).startswith("torch.return_types.median(")
    close(r.values, np.sort(a, 0)[1:2])
    close(cg.median(cg.tensor([1, 5, 3, 2])), 2)
    n = cg.tensor([[1.0, math.nan, 3.0], [1.0, 2.0, 3.0]])
    assert math.isnan(cg.median(n).item())
    v, i = n.median(1)
    assert math.isnan(v[0].item()) and i.tolist() == [1, 1]
    assert math.isnan(cg.median(cg.tensor([])).item())
    with pytest.raises(IndexError, match="Expected reduction dim 1 to have non-zero size"):
        cg.median(cg.ones(2, 0), 1)
    assert gradcheck(lambda x: cg.median(x, 1).values, (leaf(3, 5),))
    assert gradcheck(cg.median, (leaf(3, 5),))


# --- tensor attributes and in-place views -----------------------------------------------


def test_tensor_attributes():
    t = cg.ones(2, 3, dtype=cg.int32)
    assert (t.nbytes, t.itemsize) == (24, 4)
    assert cg.ones(5, dtype=F64)[::2].nbytes == 24
    # the "cpu" device is PoCL's host CPU: .cpu() answers is_cpu True, as in PyTorch
    assert t.cpu().is_cpu is True
    assert t.is_cpu is (t.device.info.type == "cpu")


def test_in_place_views():
    a = np.arange(6.0).reshape(2, 3)
    t = cg.from_numpy(a)
    assert t.t_() is t and t.shape == (3, 2)
    close(t, a.T)
    assert t.unsqueeze_(1).shape == (3, 1, 2)
    assert t.squeeze_(1).shape == (3, 2)
    assert t.unsqueeze_(0).unsqueeze_(-1).squeeze_().shape == (3, 2)
    close(t, a.T)
    w = leaf(3)
    y = w * 2
    y.unsqueeze_(1)
    assert y.shape == (3, 1) and y.grad_fn is not None
    (y * cg.tensor([[1.0], [2.0], [3.0]], dtype=F64)).sum().backward()
    close(w.grad, [2.0, 4.0, 6.0])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        w.unsqueeze_(0)
