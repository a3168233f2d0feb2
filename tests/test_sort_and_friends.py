"""sort, argsort, topk, unique, einsum, diagonal/diag/trace, addmm and baddbmm against
numpy (stable sorts, NaN last), PyTorch where installed, and float64 finite differences;
the sort kernels on both variants (CPU blocks and CLGRAPH_KERNELS=gpu bitonic blocks),
on odd row lengths that need one block, several blocks and merge passes."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import clgraph as cg
from clgraph.autograd import gradcheck
from clgraph.ops import sort as sort_module

D = importlib.import_module("clgraph.device")  # the module (cg.device is the class)
LENGTHS = [1, 7, 33, 1000, 5000]


@pytest.fixture(params=["cpu", "gpu"])
def kernels(request, monkeypatch):
    """The sort kernels of one variant: CPU serial blocks, or the GPU bitonic blocks."""
    monkeypatch.setattr(D, "_KERNELS", "gpu" if request.param == "gpu" else "")
    return request.param


def ref_sort(a, axis=-1, descending=False):
    """numpy's stable sort; descending: the reversed axis sorted stably and reversed back,
    so equal values keep their order and NaN comes first."""
    if not descending:
        i = np.argsort(a, axis=axis, kind="stable")
    else:
        n = a.shape[axis]
        i = np.flip(n - 1 - np.argsort(np.flip(a, axis), axis=axis, kind="stable"), axis)
    return np.take_along_axis(a, i, axis), i


def tied(shape, dtype, seed=0):
    """Values with many ties (and NaN, inf and both zeros for floats)."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    a = rng.integers(-4, 5, shape)
    if np.dtype(dtype).kind != "f":
        return (a if np.dtype(dtype).kind == "i" else a + 4).astype(dtype)
    a = (a / 2).astype(dtype)
    flat = a.reshape(-1)
    for k, v in enumerate([np.nan, -np.inf, np.inf, -0.0, 0.0, np.nan]):
        if k < flat.size:
            flat[(k * 7919) % flat.size] = v
    return a


def check_sorted(got, a, axis=-1, descending=False):
    values, indices = got
    want_v, want_i = ref_sort(a, axis, descending)
    assert values.dtype == cg.tensor(a).dtype and indices.dtype == cg.int64
    np.testing.assert_array_equal(indices.numpy(), want_i)
    np.testing.assert_array_equal(values.numpy(), want_v)


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_rows_of_odd_lengths(kernels, n, descending):
    for rows in (1, 3, 9):
        a = tied((rows, n), "float32", seed=n + rows)
        check_sorted(cg.sort(cg.tensor(a), descending=descending), a, -1, descending)


@pytest.mark.parametrize("dtype", ["float64", "float16", "int64", "int32", "int16", "int8",
                                   "uint8", "bool"])
def test_sort_dtypes(kernels, dtype):
    for n in (33, 1000):
        a = tied((4, n), dtype, seed=n)
        for descending in (False, True):
            check_sorted(cg.sort(cg.tensor(a), descending=descending), a, -1, descending)


def test_sort_bfloat16_orders_as_float32(kernels):
    a = tied((3, 40), "float32")
    x = cg.tensor(a).to(cg.bfloat16)
    values, indices = cg.sort(x, descending=True)
    _, want = ref_sort(x.float().numpy(), -1, True)
    assert values.dtype == cg.bfloat16
    np.testing.assert_array_equal(indices.numpy(), want)


def test_sort_extremes_of_integer_types(kernels):
    for dtype in ("int64", "int32", "int8", "uint8"):
        info = np.iinfo(dtype)
        a = np.array([3, info.max, info.min, 0, info.max, info.min + 1, 1], dtype=dtype)
        check_sorted(cg.sort(cg.tensor(a)), a)
        check_sorted(cg.sort(cg.tensor(a), descending=True), a, -1, True)


def test_sort_layouts_dims_and_shapes(kernels):
    a = tied((5, 6, 7), "float64")
    for axis in (0, 1, 2, -2):
        values, indices = cg.sort(cg.tensor(a), dim=axis)
        assert values.is_contiguous() and indices.is_contiguous()
        check_sorted((values, indices), a, axis)
    t = cg.tensor(np.ascontiguousarray(a.transpose(2, 1, 0))).permute(2, 1, 0)
    check_sorted(cg.sort(t, 1, True), a, 1, True)
    big = cg.tensor(tied((2, 9, 7), "float32"))
    sliced = big[1, 2:]  # a view with an offset
    check_sorted(cg.sort(sliced, dim=0), big.numpy()[1, 2:], 0)
    v, i = cg.sort(cg.tensor(2.5))
    assert v.shape == () and v.item() == 2.5 and i.item() == 0 and i.dtype == cg.int64
    v, i = cg.sort(cg.zeros(3, 0, 2), dim=1)
    assert v.shape == (3, 0, 2) and i.shape == (3, 0, 2) and i.dtype == cg.int64


def test_argsort_msort_and_stable_keyword():
    a = np.array([[3.0, 1.0, 3.0, np.nan, 1.0], [0.0, -0.0, 2.0, 2.0, -1.0]])
    np.testing.assert_array_equal(cg.argsort(cg.tensor(a), descending=True, stable=True).numpy(),
                                  ref_sort(a, -1, True)[1])
    np.testing.assert_array_equal(cg.tensor(a).argsort(dim=0).numpy(), ref_sort(a, 0)[1])
    np.testing.assert_array_equal(cg.msort(cg.tensor(a)).numpy(), ref_sort(a, 0)[0])
    r = cg.tensor(a).sort(stable=True, descending=True)
    np.testing.assert_array_equal(r.indices.numpy(), ref_sort(a, -1, True)[1])
    assert repr(r).startswith("torch.return_types.sort(")


def test_sort_against_torch():
    torch = pytest.importorskip("torch")
    a = tied((6, 301), "float32", seed=3)
    for descending in (False, True):
        got = cg.sort(cg.tensor(a), dim=0, descending=descending, stable=True)
        want = torch.sort(torch.tensor(a), dim=0, descending=descending, stable=True)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


@pytest.mark.parametrize("largest", [True, False])
def test_topk(kernels, largest):
    rng = np.random.default_rng(0)
    a = rng.permutation(3 * 1100).reshape(3, 1100).astype(np.float32)  # distinct
    a[1, 5] = np.nan
    for k, dim in ((1, -1), (7, -1), (1100, 1), (2, 0), (0, 1)):
        got = cg.topk(cg.tensor(a), k, dim=dim, largest=largest)
        want_v, want_i = ref_sort(a, dim, largest)
        want_i = np.take(want_i, range(k), axis=dim)
        np.testing.assert_array_equal(got.indices.numpy(), want_i)
        np.testing.assert_array_equal(got.values.numpy(), np.take_along_axis(a, want_i, dim))
    ints = cg.tensor([4, 9, 1, 7], dtype=cg.int32)
    assert cg.topk(ints, 2).values.tolist() == [9, 7] and ints.topk(2).values.dtype == cg.int32
    s = cg.topk(cg.tensor(3.0), 1)
    assert s.values.item() == 3.0 and s.indices.item() == 0


def test_topk_against_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(1).standard_normal((5, 37)).astype(np.float32)
    for k, largest in ((5, True), (3, False)):
        got = cg.topk(cg.tensor(a), k, largest=largest)
        want = torch.topk(torch.tensor(a), k, largest=largest)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_sort_and_topk_errors():
    x = cg.ones(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        cg.sort(x, dim=2)
    with pytest.raises(TypeError, match="dim"):
        cg.sort(x, dim=1.5)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        cg.topk(x, 4)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        cg.topk(x, -1)
    with pytest.raises(TypeError, match="argument 'k'"):
        cg.topk(x, 2.0)
    with pytest.raises(RuntimeError, match="topk does not support bool"):
        cg.topk(x.bool(), 1)
    with pytest.raises(TypeError, match="must be Tensor"):
        cg.sort([3, 1])


def test_sort_and_topk_gradients():
    rng = np.random.default_rng(2)
    a = rng.permutation(24).reshape(2, 3, 4).astype(np.float64) / 7  # no ties
    x = cg.tensor(a, requires_grad=True)
    assert gradcheck(lambda t: cg.sort(t, dim=1, descending=True).values, (x,))
    assert gradcheck(lambda t: cg.topk(t, 2, dim=-1).values, (x,))
    assert gradcheck(lambda t: cg.topk(t, 1, dim=0, largest=False).values, (x,))
    s = cg.tensor(1.5, dtype=cg.float64, requires_grad=True)
    assert gradcheck(lambda t: cg.sort(t).values * cg.topk(t, 1).values, (s,))
    v = cg.sort(x, dim=-1).values
    assert v.requires_grad and v.grad_fn is not None
    (v * cg.arange(4.0, dtype=cg.float64)).sum().backward()
    want = np.take_along_axis(np.broadcast_to(np.arange(4.0), a.shape),
                              np.argsort(np.argsort(a, -1), -1), -1)
    np.testing.assert_allclose(x.grad.numpy(), want)


# --- unique -------------------------------------------------------------------------------


def test_unique_flat_with_inverse_and_counts(kernels):
    a = np.nan_to_num(tied((7, 33), "float32", seed=5), nan=7.0)  # NaN: against torch below
    u, inv, cnt = cg.unique(cg.tensor(a), return_inverse=True, return_counts=True)
    wu, winv, wcnt = np.unique(a, return_inverse=True, return_counts=True, equal_nan=False)
    np.testing.assert_array_equal(u.numpy(), wu)
    np.testing.assert_array_equal(inv.numpy(), winv.reshape(a.shape))
    np.testing.assert_array_equal(cnt.numpy(), wcnt)
    assert inv.dtype == cg.int64 and cnt.dtype == cg.int64 and u.dtype == cg.float32
    ints = np.array([3, 1, 3, 2, 1, 1], dtype=np.int32)
    assert cg.unique(cg.tensor(ints)).tolist() == [1, 2, 3]
    assert cg.tensor(ints).unique(return_counts=True)[1].tolist() == [3, 1, 2]
    u, inv = cg.unique(cg.tensor(7), return_inverse=True)
    assert u.tolist() == [7] and inv.shape == () and inv.item() == 0
    u, inv, cnt = cg.unique(cg.zeros(0), return_inverse=True, return_counts=True)
    assert u.shape == (0,) and inv.shape == (0,) and cnt.shape == (0,)
    b = cg.unique(cg.tensor([True, False, True]), return_counts=True)
    assert b[0].tolist() == [False, True] and b[1].tolist() == [1, 2]


def test_unique_dim():
    a = np.array([[1, 2, 0], [1, 2, 0], [0, 5, 1], [1, 1, 9], [0, 5, 1]], dtype=np.int64)
    for axis in (0, 1, -1):
        u, inv, cnt = cg.unique(cg.tensor(a), dim=axis, return_inverse=True,
                                return_counts=True)
        wu, winv, wcnt = np.unique(a, axis=axis, return_inverse=True, return_counts=True)
        np.testing.assert_array_equal(u.numpy(), wu)
        np.testing.assert_array_equal(inv.numpy(), winv.reshape(-1))
        np.testing.assert_array_equal(cnt.numpy(), wcnt)
    f = np.random.default_rng(0).integers(0, 2, (6, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(cg.unique(cg.tensor(f), dim=1).numpy(),
                                  np.unique(f, axis=1))
    with pytest.raises(RuntimeError, match="0 sized dimensions"):
        cg.unique(cg.ones(3, 0), dim=0)
    with pytest.raises(IndexError):
        cg.unique(cg.ones(3, 2), dim=2)


def test_unique_against_torch():
    torch = pytest.importorskip("torch")
    a = np.array([3.0, np.nan, np.nan, 1.0, 1.0, -0.0, 0.0])
    got = cg.unique(cg.tensor(a), return_inverse=True, return_counts=True)
    want = torch.unique(torch.tensor(a), return_inverse=True, return_counts=True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    m = np.array([[2, 1], [1, 3], [2, 1]])
    got = cg.unique(cg.tensor(m), dim=1, return_inverse=True)
    want = torch.unique(torch.tensor(m), dim=1, return_inverse=True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


# --- einsum -------------------------------------------------------------------------------

EQUATIONS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bkj->bik", [(2, 3, 4), (1, 5, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("iji->ij", [(3, 2, 3)]),
    ("ij->ji", [(3, 5)]),
    ("ij->", [(3, 5)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...ij->...j", [(2, 3, 4)]),
    ("ij...->...", [(2, 3, 4, 5)]),
    ("a...b,b...->a...", [(2, 3, 4), (4, 3)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)]),
    ("ab,cd->", [(2, 3), (4, 5)]),
    ("Ba,aB->B", [(2, 3), (3, 2)]),
    ("i j , j k -> i k", [(2, 3), (3, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ijk,ikl,ilm->ijm", [(2, 3, 4), (2, 4, 2), (2, 2, 3)]),
]


@pytest.mark.parametrize("equation,shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_against_numpy(equation, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    got = cg.einsum(equation, *[cg.tensor(a) for a in arrays])
    want = np.einsum(equation.replace(" ", ""), *arrays)
    assert got.shape == np.shape(want) and got.dtype == cg.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("equation,shapes", EQUATIONS[::3], ids=[e for e, _ in EQUATIONS[::3]])
def test_einsum_gradients(equation, shapes):
    rng = np.random.default_rng(1)
    inputs = tuple(cg.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes)
    assert gradcheck(lambda *ts: cg.einsum(equation, *ts), inputs)


def test_einsum_forms_dtypes_and_torch():
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    b = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    t = [cg.tensor(a), cg.tensor(b)]
    np.testing.assert_allclose(cg.einsum("ij,jk", t).numpy(), a @ b)
    np.testing.assert_allclose(cg.einsum(t[0], [0, 1], t[1], [1, 2], [0, 2]).numpy(), a @ b)
    np.testing.assert_allclose(cg.einsum(t[0], [Ellipsis, 1]).numpy(), a)
    ints = cg.einsum("ij,jk->ik", cg.tensor(a, dtype=cg.int32), cg.tensor(b, dtype=cg.int32))
    assert ints.dtype == cg.int32 and ints.tolist() == (a @ b).astype(int).tolist()
    # an operand summed on its own widens to int64 (sum's rule), as PyTorch
    for eq, ops, want in (("i->", [b[0]], cg.int64), ("ij->i", [a], cg.int64),
                          ("ij,j->j", [a, b[:, 0]], cg.int64), ("ii->i", [b[:, :3]], cg.int32),
                          ("ij->ji", [a], cg.int32)):
        got = cg.einsum(eq, *[cg.tensor(o, dtype=cg.int32) for o in ops])
        assert got.dtype == want, eq
        np.testing.assert_array_equal(got.numpy(), np.einsum(eq, *ops).astype(np.int64))
    assert cg.einsum("i->", cg.tensor([True, True, False])).tolist() == 2
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((2, 3, 3)).astype(np.float32)
    for eq, n in (("bii->bi", 1), ("bij->b", 1), ("b...->...", 1), ("...ij->ij", 1),
                  ("bij,bjk->bki", 2)):
        np.testing.assert_allclose(cg.einsum(eq, *[cg.tensor(x)] * n).numpy(),
                                   torch.einsum(eq, *[torch.tensor(x)] * n).numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_einsum_broadcasts_size_one_dims():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(5), rng.standard_normal(1)
    np.testing.assert_allclose(cg.einsum("i,i", cg.tensor(a), cg.tensor(b)).item(),
                               a.sum() * b[0])
    p, q = rng.standard_normal((2, 3)), rng.standard_normal((1, 4))
    np.testing.assert_allclose(cg.einsum("ij,jk->ik", cg.tensor(p), cg.tensor(q)).numpy(),
                               p.sum(1, keepdims=True) * q)
    np.testing.assert_allclose(cg.einsum("ij,ij->ij", cg.tensor(p), cg.tensor(p[:1])).numpy(),
                               p * p[:1])
    inputs = (cg.tensor(p, requires_grad=True), cg.tensor(q, requires_grad=True))
    assert gradcheck(lambda s, t: cg.einsum("ij,jk->ik", s, t), inputs)


EINSUM_ERRORS = [
    (("ij,jk->ik", (2, 3)), RuntimeError, "fewer operands were provided"),
    (("ij", (2, 3), (3, 4)), RuntimeError, "more operands were provided"),
    (("ijk,jk", (2, 3), (3, 4)), RuntimeError,
     r"number of subscripts in the equation \(3\) does not match the number of dimensions "
     r"\(2\) for operand 0 and no ellipsis"),
    (("...ijk", (2, 3)), RuntimeError, r"\(3\) is more than the number of dimensions \(2\)"),
    (("i1,jk", (2, 3), (3, 4)), RuntimeError, "invalid subscript given at index 1"),
    (("i-j", (2, 2)), RuntimeError, "invalid subscript given at index 1"),
    (("ij,jk->ii", (2, 3), (3, 4)), RuntimeError, "output subscript i appears more than once"),
    (("ij->ik", (2, 3)), RuntimeError, "output subscript k does not appear"),
    (("ii", (2, 3)), RuntimeError, "subscript i is repeated for operand 0 but the sizes don't "
                                   "match, 3 != 2"),
    (("ij,jk->ik", (2, 3), (4, 4)), RuntimeError,
     "subscript j has size 4 for operand 1 which does not broadcast with previously seen size 3"),
    (("i.j", (2, 3)), RuntimeError, "found '.' for operand 0 that is not part of any ellipsis"),
    (("...i...", (2, 3)), RuntimeError, "for which an ellipsis was already found"),
    (("ij->i.", (2, 3)), RuntimeError, "found '.' for output that is not part of any ellipsis"),
]


@pytest.mark.parametrize("args,exc,match", EINSUM_ERRORS)
def test_einsum_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        cg.einsum(args[0], *[cg.ones(*s) for s in args[1:]])
    torch = pytest.importorskip("torch")
    with pytest.raises(exc, match=match):
        torch.einsum(args[0], *[torch.ones(*s) for s in args[1:]])


def test_einsum_argument_errors():
    with pytest.raises(ValueError, match="must specify the equation string"):
        cg.einsum("ij")
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        cg.einsum("i,i", cg.ones(2), cg.ones(2, dtype=cg.float64))
    with pytest.raises(TypeError, match="expected Tensor as element 1"):
        cg.einsum("i,i", cg.ones(2), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"not within the valid range \[0, 52\)"):
        cg.einsum(cg.ones(2), [60])


# --- diagonal, diag, trace, addmm, baddbmm --------------------------------------------------


def test_diagonal_diag_trace():
    a = np.arange(60.0).reshape(3, 4, 5)
    for offset, d1, d2 in ((0, 0, 1), (1, 0, 2), (-2, 2, 1), (7, 1, 2), (-1, -1, 0)):
        got = cg.diagonal(cg.tensor(a), offset, d1, d2)
        np.testing.assert_array_equal(got.numpy(), np.diagonal(a, offset, d1, d2))
    x = cg.zeros(3, 3)
    x.diagonal().fill_(2.0)  # a view: writes reach the base
    np.testing.assert_array_equal(x.numpy(), 2 * np.eye(3))
    m = np.arange(6.0).reshape(2, 3)
    for k in (0, 1, -1, 5):
        np.testing.assert_array_equal(cg.diag(cg.tensor(m), k).numpy(), np.diag(m, k))
        np.testing.assert_array_equal(cg.tensor([1.0, 2.0, 3.0]).diag(k).numpy(),
                                      np.diag([1.0, 2.0, 3.0], k))
    assert cg.diag(cg.tensor(m)).is_contiguous()
    assert cg.trace(cg.tensor(m)).item() == 4.0
    t = cg.trace(cg.arange(9).reshape(3, 3))
    assert t.item() == 12 and t.dtype == cg.int64
    with pytest.raises(RuntimeError, match=r"diag\(\): Supports 1D or 2D tensors. Got 3D"):
        cg.diag(cg.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match="diagonal dimensions cannot be identical 0, 0"):
        cg.diagonal(cg.ones(2, 2), 0, 0, 0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        cg.diagonal(cg.ones(3))
    with pytest.raises(RuntimeError, match="trace: expected a matrix"):
        cg.trace(cg.ones(2, 2, 2))
    x = cg.tensor(np.random.default_rng(0).standard_normal((3, 4, 2)), requires_grad=True)
    assert gradcheck(lambda t: cg.diagonal(t, -1, 1, 0), (x,))
    v = cg.tensor([1.0, -2.0, 0.5], dtype=cg.float64, requires_grad=True)
    assert gradcheck(lambda t: cg.diag(t, 2), (v,))
    assert gradcheck(lambda t: cg.diag(cg.diag(t, -1)), (v,))
    assert gradcheck(lambda t: cg.trace(t[0]), (x,))


def test_addmm_and_baddbmm():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((5, 4))
    bias = rng.standard_normal(4)
    got = cg.addmm(cg.tensor(bias), cg.tensor(a), cg.tensor(b), beta=0.5, alpha=-2)
    np.testing.assert_allclose(got.numpy(), 0.5 * bias - 2 * (a @ b), rtol=1e-12)
    nan = cg.full((3, 4), float("nan"), dtype=cg.float64)
    np.testing.assert_allclose(cg.addmm(nan, cg.tensor(a), cg.tensor(b), beta=0).numpy(), a @ b)
    x = cg.tensor(rng.standard_normal((3, 4)))
    want = x.numpy() + a @ b
    x.addmm_(cg.tensor(a), cg.tensor(b))
    np.testing.assert_allclose(x.numpy(), want, rtol=1e-12)
    li = cg.ones(2, 2, dtype=cg.int64)
    m = cg.tensor([[1, 2], [3, 4]])
    assert cg.addmm(li, m, m, alpha=0.5).tolist() == [[1, 1], [1, 1]]  # alpha truncates to 0
    assert cg.addmm(li, m, m, beta=2).tolist() == [[9, 12], [17, 24]]
    b1, b2 = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 5, 4))
    c = rng.standard_normal((3, 1))
    got = cg.baddbmm(cg.tensor(c), cg.tensor(b1), cg.tensor(b2), alpha=3)
    np.testing.assert_allclose(got.numpy(), c + 3 * (b1 @ b2), rtol=1e-12)
    ins = [cg.tensor(v, requires_grad=True) for v in (c, b1, b2)]
    assert gradcheck(lambda i, p, q: cg.baddbmm(i, p, q, beta=0.5, alpha=2), tuple(ins))
    ins = tuple(cg.tensor(v, requires_grad=True) for v in (bias, a, b))
    assert gradcheck(lambda i, p, q: i.addmm(p, q, beta=2), ins)


def test_addmm_errors():
    a, b = cg.ones(2, 3), cg.ones(3, 4)
    with pytest.raises(RuntimeError, match="mat1 must be a matrix, got 1-D tensor"):
        cg.addmm(cg.ones(2, 4), cg.ones(3), b)
    with pytest.raises(RuntimeError, match="mat2 must be a matrix, got 1-D tensor"):
        cg.addmm(cg.ones(2, 4), a, cg.ones(3))
    with pytest.raises(RuntimeError, match=r"shapes cannot be multiplied \(2x3 and 4x4\)"):
        cg.addmm(cg.ones(2, 4), a, cg.ones(4, 4))
    with pytest.raises(RuntimeError, match="The expanded size of the tensor"):
        cg.addmm(cg.ones(3), a, b)
    with pytest.raises(RuntimeError, match="self and mat2 must have the same dtype, but got "
                                           "Double and Float"):
        cg.addmm(cg.ones(2, 4, dtype=cg.float64), a, b)
    with pytest.raises(RuntimeError, match="batch1 must be a 3D tensor"):
        cg.baddbmm(cg.ones(4), cg.ones(2, 3), cg.ones(2, 3, 4))
    with pytest.raises(RuntimeError, match="Expected size for first two dimensions of batch2"):
        cg.baddbmm(cg.ones(4), cg.ones(2, 2, 3), cg.ones(3, 3, 4))


def test_sort_helpers_cut_rows_into_blocks():
    """The CPU block size keeps several blocks per row when rows are few, so that the merge
    passes run (the GPU variant's blocks are CAP long)."""
    assert sort_module._cpu_block(1, 5000) < 5000 and sort_module._cpu_block(16, 5000) == 5000
    assert sort_module._cpu_block(3, 7) == 7
