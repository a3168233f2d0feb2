"""Indexing and join ops against numpy: advanced getitem/setitem, gather/scatter,
index_select/index_add, masks, nonzero, cat/stack/split/chunk, tril/triu, flip/roll,
repeat/tile. Inputs come contiguous, transposed, sliced (with an offset) and broadcast."""

import numpy as np
import pytest
from conftest import torch_or_skip
from hypothesis import given
from hypothesis import strategies as st

import clgraph as cg
from clgraph.ops.registry import REGISTRY

DTYPES = ["float32", "float64", "int64", "bool", "float16"]
LAYOUTS = ["contig", "transposed", "sliced", "broadcast"]


def rand(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype in ("int64", "int32", "int8", "uint8"):
        return rng.integers(-9 if dtype != "uint8" else 0, 10, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def make(shape, dtype="float32", layout="contig", seed=0):
    """(tensor, numpy array with the same values) with the tensor in the given layout."""
    a = rand(shape, dtype, seed)
    if layout == "contig" or not shape:
        return cg.tensor(a), a
    if layout == "transposed":
        return cg.tensor(np.ascontiguousarray(a.T)).T, a
    if layout == "sliced":
        big = np.zeros((2 * shape[0] + 1,) + tuple(shape[1:]), dtype=a.dtype)
        big[1::2] = a
        return cg.tensor(big)[1::2], a
    a = np.broadcast_to(a[:1], shape).copy()
    return cg.tensor(a[:1]).expand(*shape), a


def check(t, expected, exact=True):
    expected = np.asarray(expected)
    got = t.numpy()
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    if exact:
        np.testing.assert_array_equal(got, expected)
    else:
        tol = 1e-2 if got.dtype == np.float16 else 1e-5
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


# --- advanced getitem ---------------------------------------------------------------------

SHAPE = (4, 5, 6)
I = np.array
GET_CASES = [
    # (index as numpy understands it, same index for clgraph, torch-semantics expected fn)
    ("list", lambda: ([0, -1, 2],)),
    ("slice_then_list", lambda: (slice(None), [4, 0, -5])),
    ("ellipsis_list", lambda: (Ellipsis, [5, 1])),
    ("index_2d", lambda: (I([[0, 1], [3, -4]]),)),
    ("broadcast_pair", lambda: (I([[0], [3]]), I([1, 2, 4]))),
    ("separated", lambda: (I([0, 2]), slice(None), I([1, 5]))),
    ("adjacent_pair", lambda: (slice(None), I([1, 4]), I([0, 5]))),
    ("none_list_slice", lambda: (None, I([1, 3]), slice(1, 3))),
    ("mask_1d", lambda: (I([True, False, True, True]),)),
    ("mask_2d", lambda: (rand((4, 5), "bool", 3),)),
    ("mask_3d", lambda: (rand(SHAPE, "bool", 4),)),
    ("slice_mask_2d", lambda: (slice(None), rand((5, 6), "bool", 5))),
    ("mask_with_list", lambda: (I([False, True, False, True]), I([1, 3]))),
    ("empty_list", lambda: (I([], dtype=np.int64),)),
    ("step_slice_list", lambda: (slice(None, None, 2), I([3]), slice(None, None, 3))),
]


@pytest.mark.parametrize("case", GET_CASES, ids=[c[0] for c in GET_CASES])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_getitem_advanced_layouts(case, layout):
    x, a = make(SHAPE, "float32", layout)
    idx = case[1]()
    r = x[idx]
    check(r, a[idx])
    assert r._storage is not x._storage  # advanced indexing copies


@pytest.mark.parametrize("dtype", DTYPES + ["int32", "int8", "uint8"])
def test_getitem_advanced_dtypes(dtype):
    x, a = make(SHAPE, dtype, "transposed")
    for idx in [(I([2, 0, -1]),), (slice(None), I([[1], [3]]), I([0, 5])),
                (rand((4, 5), "bool", 1),)]:
        check(x[idx], a[idx])


def test_getitem_torch_rules():
    x, a = make(SHAPE)
    # an int with advanced indices is a select first (numpy would treat it as advanced)
    check(x[0, :, [1, 2]], a[0][:, [1, 2]])
    check(x[[1, 2], 0], a[:, 0][[1, 2]])
    # 0-d integer tensors select; Python and 0-d tensor bools add a dim of size 1 or 0
    check(x[cg.tensor(2)], a[2])
    assert x[cg.tensor(2)]._storage is x._storage
    check(x[True], a[None])
    check(x[False], a[None][:0])
    check(x[None, ..., cg.tensor(True)], a[None, ..., None])
    # a short list holding sequences is a tuple (PyTorch's legacy numpy rule)
    check(x[[[0, 1], [2, 3]]], a[[0, 1], [2, 3]])
    # tensors, numpy arrays, lists of bools and int32 indices
    check(x[cg.tensor([3, 1])], a[[3, 1]])
    check(x[cg.tensor([1, 0, 2], dtype=cg.int32)], a[[1, 0, 2]])
    check(x[np.array([[1, 2]])], a[np.array([[1, 2]])])
    check(x[[True, False, False, True]], a[[True, False, False, True]])
    check(x[cg.tensor(a > 0)], a[a > 0])
    with pytest.warns(UserWarning, match="uint8"):
        check(x[cg.tensor([1, 0, 0, 1], dtype=cg.uint8)], a[[0, 3]])


def test_getitem_edge_shapes():
    for shape, idx in [((0, 3), (I([], dtype=np.int64),)), ((3, 0), (I([2, 0]),)),
                       ((1, 1), (I([0, 0, 0]),)), ((3,), (I([[0, 1], [2, 2]]),)),
                       ((2, 3), (I(1),)), ((2, 3), (slice(None), I(1)))]:
        x, a = make(shape)
        check(x[idx], a[idx])
    x, a = make((3, 4))
    check(x[a > 10], a[a > 10])  # nothing selected
    check(cg.tensor(5.0)[True], np.array([5.0], dtype=np.float32))
    check(cg.tensor(5.0)[cg.tensor(False)], np.zeros(0, dtype=np.float32))


def test_getitem_errors():
    x, _ = make((3, 5))
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x[cg.tensor([0, 5])]
    with pytest.raises(IndexError, match="index -6 is out of bounds for dimension 1 with size 5"):
        x[:, [1, -6]]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[3, [0]]
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool"):
        x[cg.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool"):
        x[np.array([0.0])]
    with pytest.raises(IndexError, match=r"The shape of the mask \[2\] at index 0 does not match "
                                         r"the shape of the indexed tensor \[3, 5\] at index 0"):
        x[cg.tensor([True, False])]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[[0], [0], [0]]
    with pytest.raises(IndexError, match="shape mismatch: indexing tensors could not be "
                                         r"broadcast together with shapes \[2\], \[3\]"):
        x[[0, 1], [0, 1, 2]]
    with pytest.raises(IndexError, match="only integers, slices"):
        x[1.5]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., [0], ...]


# --- advanced setitem / index_put ---------------------------------------------------------

SET_CASES = [
    ("list_scalar", lambda a: ([0, -1],), lambda a: 7),
    ("list_rows", lambda a: (slice(None), [4, 1]), lambda a: rand((4, 2, 6), "float32", 9)),
    ("broadcast_value", lambda a: ([1, 2],), lambda a: rand((6,), "float32", 8)),
    ("pair", lambda a: (I([[0], [3]]), I([1, 2, 4])), lambda a: rand((2, 3, 6), "float32", 7)),
    ("separated", lambda a: (I([0, 2]), slice(None), I([1, 5])), lambda a: rand((1, 5), "float32")),
    ("mask_scalar", lambda a: (a > 0.5,), lambda a: -1),
    ("mask_2d_rows", lambda a: (a[:, :, 0] > 0,), lambda a: rand((6,), "float32", 4)),
    ("slice_mask", lambda a: (slice(1, 3), a[0] > 0), lambda a: 2.5),
]


@pytest.mark.parametrize("case", SET_CASES, ids=[c[0] for c in SET_CASES])
@pytest.mark.parametrize("layout", ["contig", "transposed", "sliced"])
def test_setitem_advanced(case, layout):
    x, a = make(SHAPE, "float32", layout)
    idx, value = case[1](a), case[2](a)
    v = cg.tensor(value) if isinstance(value, np.ndarray) else value
    x[idx] = v
    a[idx] = value
    check(x, a)


@pytest.mark.parametrize("dtype", DTYPES + ["int32", "uint8"])
def test_setitem_dtypes(dtype):
    x, a = make((5, 3), dtype, "transposed")
    v = rand((2, 3), dtype, 5)
    x[[4, 0]] = cg.tensor(v)
    a[[4, 0]] = v
    x[a[:, 0] != a[:, 1]] = 1
    a[a[:, 0] != a[:, 1]] = 1
    check(x, a)


def test_setitem_semantics():
    # duplicates: the last write wins, as on PyTorch CPU
    x = cg.zeros(4)
    x[[1, 3, 1, 1]] = cg.tensor([1.0, 2.0, 3.0, 4.0])
    check(x, np.array([0, 4, 0, 2], dtype=np.float32))
    x = cg.zeros(3, 2)
    x[[0, 0]] = cg.tensor([[1.0, 2.0], [3.0, 4.0]])
    check(x, np.array([[3, 4], [0, 0], [0, 0]], dtype=np.float32))
    # scalars are cast to the destination dtype
    x = cg.zeros(3, dtype=cg.int64)
    x[[0, 2]] = 2.7
    check(x, np.array([2, 0, 2]))
    # a view of the tensor as the value
    x, a = make((4, 3))
    x[[0, 1]] = x[2:]
    a[[0, 1]] = a[2:].copy()
    check(x, a)
    # through a basic view: writes land in the base
    x, a = make((4, 6))
    x[1:, ::2][[0, 2]] = 0.0
    a[1:, ::2][[0, 2]] = 0.0
    check(x, a)


def test_index_put_accumulate():
    x, a = make((5, 3), "float64")
    v = rand((4, 3), "float64", 2)
    idx = np.array([1, 4, 1, 1])
    x.index_put_((cg.tensor(idx),), cg.tensor(v), accumulate=True)
    np.add.at(a, idx, v)
    check(x, a, exact=False)
    y = cg.index_put(cg.zeros(4, dtype=cg.int64), (cg.tensor([0, 0, 3]),), cg.tensor(5),
                     accumulate=True)
    check(y, np.array([10, 0, 0, 5]))
    ref = REGISTRY["index_put"].ref(np.zeros(4), np.array(1.0), np.array([2, 2]), dims=(0,),
                                    accumulate=True)
    check(cg.index_put(cg.zeros(4, dtype=cg.float64), (cg.tensor([2, 2]),),
                       cg.tensor(1.0, dtype=cg.float64), accumulate=True), ref)


def test_setitem_errors():
    x, a = make((3, 4))
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[[0, 3]] = 1.0
    check(x, a)  # validated before any write
    with pytest.raises(RuntimeError, match=r"shape mismatch: value tensor of shape \[3\] cannot "
                                           r"be broadcast to indexing result of shape \[2, 4\]"):
        x[[0, 1]] = cg.ones(3)
    with pytest.raises(RuntimeError, match="Index put requires the source and destination "
                                           "dtypes match, got Float for the destination and "
                                           "Double for the source"):
        x[[0]] = cg.ones(4, dtype=cg.float64)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        e = cg.zeros(1, 4).expand(3, 4)
        e[[0]] = 1.0
    with pytest.raises(TypeError, match="can't assign a str"):
        x[[0]] = "a"


# --- gather / scatter / scatter_add -------------------------------------------------------


def index_for(shape, dim, size, seed=0, lo=0):
    rng = np.random.default_rng(seed)
    return rng.integers(lo, size, shape)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_layouts(layout, dim):
    x, a = make((4, 5, 3), "float32", layout)
    ishape = (3, 5, 2)
    ishape = tuple(7 if k == dim % 3 else n for k, n in enumerate(ishape))
    idx = index_for(ishape, dim, a.shape[dim], seed=dim % 3)
    it = cg.tensor(np.ascontiguousarray(idx.T)).T  # a transposed index tensor too
    check(x.gather(dim, it), REGISTRY["gather"].ref(a, idx, dim % 3))


@pytest.mark.parametrize("dtype", DTYPES + ["int8"])
def test_gather_scatter_dtypes(dtype):
    x, a = make((4, 6), dtype, "sliced")
    idx = index_for((4, 3), 1, 6, 2)
    it = cg.tensor(idx)
    check(cg.gather(x, 1, it), REGISTRY["gather"].ref(a, idx, 1))
    src, s = make((5, 3), dtype, "contig", seed=3)
    check(x.scatter(1, it, src), REGISTRY["scatter"].ref(a, idx, s[:4], 1))
    uniq = np.argsort(np.random.default_rng(1).random((4, 6)), axis=1)[:, :3]
    exp = REGISTRY["scatter_add"].ref(a, uniq, s, 1)
    check(x.scatter_add(1, cg.tensor(uniq), src), exp, exact=dtype != "float16")


REDUCTIONS = ["sum", "prod", "mean", "amax", "amin"]


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("layout", ["contig", "transposed", "sliced"])
def test_scatter_reduce_against_numpy(reduce, dtype, layout):
    # duplicates, ties and zeros on purpose: values drawn from -3..3
    rng = np.random.default_rng(4)
    x, a = make((4, 6), dtype, layout)
    a = np.round(a * 3).astype(a.dtype)
    x = cg.tensor(a)
    s = rng.integers(-3, 4, (9, 5)).astype(a.dtype)
    for dim, ishape in ((0, (9, 5)), (1, (3, 5)), (0, (0, 5))):
        idx = rng.integers(0, a.shape[dim], ishape)
        for inc in (True, False):
            want = REGISTRY["scatter_reduce"].ref(a, idx, s, dim, reduce, inc)
            got = x.scatter_reduce(dim, cg.tensor(idx), cg.tensor(s), reduce, include_self=inc)
            check(got, want, exact=dtype != "float32")
            y = cg.tensor(a)
            assert y.scatter_reduce_(dim, cg.tensor(idx), cg.tensor(s), reduce,
                                     include_self=inc) is y
            check(y, want, exact=dtype != "float32")


def test_scatter_reduce_long_runs_and_nan():
    # one destination receiving 100 values: the fold takes 7 doubling steps
    v = np.random.default_rng(5).uniform(0.9, 1.1, 100)
    got = cg.ones(2, dtype=cg.float64).scatter_reduce(0, cg.zeros(100, dtype=cg.int64),
                                                      cg.tensor(v), "prod")
    np.testing.assert_allclose(got.numpy(), [np.prod(v), 1.0], rtol=1e-13)
    got = cg.zeros(2).scatter_reduce(0, cg.tensor([1, 1, 1]),
                                     cg.tensor([1.0, float("nan"), 2.0]), "amax")
    assert got[0].item() == 0 and np.isnan(got[1].item())


def test_scatter_reduce_gradients_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    idx = rng.integers(0, 4, (5, 3))
    for reduce in REDUCTIONS:
        for inc in (True, False):
            x = rng.integers(-2, 3, (4, 3)).astype(float)  # ties and zeros
            s = rng.integers(-2, 3, (5, 3)).astype(float)
            w = rng.standard_normal((4, 3))
            xt, st_ = torch.tensor(x, requires_grad=True), torch.tensor(s, requires_grad=True)
            xc, sc = cg.tensor(x, requires_grad=True), cg.tensor(s, requires_grad=True)
            (xt.scatter_reduce(0, torch.tensor(idx), st_, reduce, include_self=inc)
             * torch.tensor(w)).sum().backward()
            (xc.scatter_reduce(0, cg.tensor(idx), sc, reduce, include_self=inc)
             * cg.tensor(w)).sum().backward()
            np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), atol=1e-12,
                                       err_msg=f"{reduce} {inc}")
            np.testing.assert_allclose(sc.grad.numpy(), st_.grad.numpy(), atol=1e-12,
                                       err_msg=f"{reduce} {inc}")


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
def test_index_reduce(reduce):
    rng = np.random.default_rng(7)
    a, s = rng.standard_normal((4, 5)), rng.standard_normal((4, 6))
    idx = np.array([0, 4, 4, 2, 0, 4])
    for inc in (True, False):
        spread = np.broadcast_to(idx, s.shape)
        want = REGISTRY["scatter_reduce"].ref(a, spread, s, 1, reduce, inc)
        got = cg.tensor(a).index_reduce(1, cg.tensor(idx), cg.tensor(s), reduce,
                                        include_self=inc)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
        xs = (cg.tensor(a, requires_grad=True), cg.tensor(s, requires_grad=True))
        assert cg.autograd.gradcheck(lambda x, y: cg.index_reduce(
            x, 1, cg.tensor(idx), y, reduce, include_self=inc), xs)


def test_scatter_legacy_reduce():
    a = np.arange(12.0).reshape(3, 4)
    idx = np.array([[0, 1, 0, 2], [0, 1, 1, 2]])
    s = np.arange(1.0, 9.0).reshape(2, 4)
    with pytest.warns(UserWarning, match="Use torch.scatter_reduce instead"):
        got = cg.tensor(a).scatter(0, cg.tensor(idx), cg.tensor(s), reduce="multiply")
    np.testing.assert_array_equal(got.numpy(), REGISTRY["scatter_reduce"].ref(
        a, idx, s, 0, "prod", True))
    got = cg.tensor(a).scatter_(0, cg.tensor(idx), value=2.0, reduce="multiply")
    np.testing.assert_array_equal(got.numpy(), REGISTRY["scatter_reduce"].ref(
        a, idx, np.full((2, 4), 2.0), 0, "prod", True))
    got = cg.tensor(a).scatter(0, cg.tensor(idx), value=2.0, reduce="add")
    np.testing.assert_array_equal(got.numpy(), REGISTRY["scatter_add"].ref(
        a, idx, np.full((2, 4), 2.0), 0))


def test_scatter_reduce_bool():
    """prod of bools is their logical and (include_self or not); mean is PyTorch's error,
    never a wrong value."""
    x = np.array([[True, False, True, True, True]] * 3)
    index = np.array([[0, 1, 0, 1, 0]])
    src = np.array([[True, False, True, True, False]])
    for include_self in (True, False):
        got = cg.scatter_reduce(cg.tensor(x), 0, cg.tensor(index), cg.tensor(src), "prod",
                                include_self=include_self)
        want = x.copy()
        if not include_self:
            want[0, [0, 2, 4]] = True
            want[1, [1, 3]] = True
        want[0, [0, 2, 4]] &= src[0, [0, 2, 4]]
        want[1, [1, 3]] &= src[0, [1, 3]]
        assert got.dtype == cg.bool and np.array_equal(got.numpy(), want)
    with pytest.raises(NotImplementedError, match="reduce_mean\" not implemented for 'Bool'"):
        cg.scatter_reduce(cg.tensor(x), 0, cg.tensor(index), cg.tensor(src), "mean")
    b = cg.tensor([[True, False], [True, True]])
    assert b.index_reduce(0, cg.tensor([0, 0]), b, "prod").tolist() == [[True, False],
                                                                       [True, True]]
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
        b.index_reduce(0, cg.tensor([0, 0]), b, "mean")


def test_scatter_reduce_errors():
    x, i = cg.zeros(3), cg.tensor([0])
    with pytest.raises(RuntimeError, match="must be either sum, prod, mean, amax or amin, got "
                                           "foo"):
        x.scatter_reduce(0, i, cg.ones(1), "foo")
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 0 with "
                                           "size 3"):
        x.scatter_reduce(0, cg.tensor([5]), cg.ones(1), "amax")
    with pytest.raises(RuntimeError, match="Expected self.dtype to be equal to src.dtype"):
        x.scatter_reduce(0, i, cg.ones(1, dtype=cg.float64), "sum")
    with pytest.raises(RuntimeError, match="reduce argument must be either add or multiply"):
        x.scatter(0, i, cg.ones(1), reduce="mean")
    with pytest.raises(RuntimeError, match="Expected reduce to be one of prod, mean, amax or "
                                           "amin but got sum"):
        x.index_reduce(0, i, cg.ones(1), "sum")
    with pytest.raises(RuntimeError, match=r"Number of indices \(2\) should be equal to "
                                           r"source.size\(dim\): \(1\), for dim: 0"):
        x.index_reduce(0, cg.tensor([0, 1]), cg.ones(1), "prod")
    with pytest.raises(IndexError, match=r"Index is supposed to be a vector, but got dim: 2"):
        x.index_reduce(0, cg.tensor([[0]]), cg.ones(1), "prod")
    with pytest.raises(RuntimeError, match=r"Got self.shape = \[3, 2\] source.shape = "
                                           r"\[1, 3\]"):
        cg.zeros(3, 2).index_reduce(0, i, cg.ones(1, 3), "prod")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_scatter_add_duplicates(layout):
    # the adjoint of gather: duplicate indices must all add, deterministically
    src, s = make((6, 4), "float64", layout)
    idx = np.array([[0, 0, 2, 0], [1, 1, 1, 1], [2, 0, 0, 0], [0, 1, 2, 0], [2, 2, 2, 2],
                    [1, 0, 1, 0]])
    x = cg.zeros(3, 4, dtype=cg.float64)
    exp = REGISTRY["scatter_add"].ref(np.zeros((3, 4)), idx, s, 0)
    r1 = x.scatter_add(0, cg.tensor(idx), src)
    r2 = cg.scatter_add(x, 0, cg.tensor(idx), src)
    check(r1, exp, exact=False)
    np.testing.assert_array_equal(r1.numpy(), r2.numpy())
    # int64 counts: exact
    ones = np.ones((6, 4), np.int64)
    check(cg.zeros(3, 4, dtype=cg.int64).scatter_add(0, cg.tensor(idx), cg.tensor(ones)),
          REGISTRY["scatter_add"].ref(np.zeros((3, 4), np.int64), idx, ones, 0))
    # bool adds as "or"
    b = cg.zeros(3, dtype=cg.bool).scatter_add(0, cg.tensor([0, 0, 2]),
                                               cg.tensor([True, False, True]))
    check(b, np.array([True, False, True]))


def test_scatter_inplace_and_value():
    x, a = make((3, 5))
    idx = np.array([[4, 0], [1, 1], [2, 3]])
    r = x.scatter_(1, cg.tensor(idx), 9.0)
    assert r is x
    a[np.arange(3)[:, None], idx] = 9.0
    check(x, a)
    y = cg.zeros(4, dtype=cg.int64)
    y.scatter_add_(0, cg.tensor([3, 3, 0]), cg.tensor([1, 2, 3]))
    check(y, np.array([3, 0, 0, 3]))
    # the last write wins for duplicates in index order
    z = cg.zeros(3).scatter(0, cg.tensor([1, 1, 1]), cg.tensor([1.0, 2.0, 3.0]))
    check(z, np.array([0, 3, 0], dtype=np.float32))
    # scatter into a non-contiguous destination
    t, a = make((4, 3), "float32", "transposed")
    t.scatter_(0, cg.tensor([[3, 0, 1]]), cg.tensor([[1.0, 2.0, 3.0]]))
    a[[3, 0, 1], [0, 1, 2]] = [1, 2, 3]
    check(t, a)
    with pytest.warns(UserWarning, match="reduce argument of torch.scatter with Tensor src"):
        r = cg.scatter(cg.zeros(2, 2), 1, cg.tensor([[1], [0]]), cg.ones(2, 2), reduce="add")
    check(r, np.array([[0, 1], [1, 0]], dtype=np.float32))


def test_gather_scatter_edges():
    x, a = make((3, 4))
    e = x.gather(1, cg.zeros(3, 0, dtype=cg.int64))
    check(e, np.zeros((3, 0), np.float32))
    check(x.scatter(0, cg.zeros(0, 4, dtype=cg.int64), cg.ones(0, 4)), a)
    s = cg.tensor(3.0)
    check(s.gather(0, cg.tensor(0)), np.array(3.0, np.float32))
    check(cg.tensor([5.0]).gather(0, cg.tensor([0, 0, 0])), np.full(3, 5, np.float32))
    check(s.index_select(0, cg.tensor([0])), np.array(3.0, np.float32))


def test_gather_scatter_errors():
    x, a = make((3, 4))
    for bad in ([[4]], [[-1]]):
        with pytest.raises(IndexError, match=f"index {bad[0][0]} is out of bounds for dimension "
                                             "1 with size 4"):
            x.gather(1, cg.tensor(bad))
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x.scatter_(0, cg.tensor([[3]]), 1.0)
    check(x, a)
    with pytest.raises(RuntimeError, match="gather\\(\\): Expected dtype int64 for index"):
        x.gather(1, cg.tensor([[0]], dtype=cg.int16))
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions"):
        x.gather(1, cg.tensor([0]))
    with pytest.raises(RuntimeError, match="Size does not match at dimension 0"):
        x.gather(1, cg.zeros(4, 1, dtype=cg.int64))
    with pytest.raises(RuntimeError, match="Expected self.dtype to be equal to src.dtype"):
        x.scatter(0, cg.tensor([[0]]), cg.ones(1, 1, dtype=cg.float64))
    with pytest.raises(RuntimeError, match="to be smaller size than src"):
        x.scatter_add(0, cg.zeros(2, 2, dtype=cg.int64), cg.ones(1, 1))
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.gather(2, cg.tensor([[0]]))


# --- index_select / index_add -------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select_layouts(layout, dim):
    x, a = make((4, 5, 3), "float32", layout)
    idx = np.array([2, 0, 2, 1])
    check(x.index_select(dim, cg.tensor(idx)), REGISTRY["index_select"].ref(a, idx, dim))
    i32 = cg.tensor(idx, dtype=cg.int32)
    check(cg.index_select(x, dim, i32), np.take(a, idx, axis=dim))
    # a strided index tensor
    check(x.index_select(dim, cg.tensor([0, 9, 1, 9, 2])[::2]), np.take(a, [0, 1, 2], axis=dim))


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_select_add_dtypes(dtype):
    x, a = make((4, 3), dtype, "transposed")
    idx = np.array([3, 3, 0])
    check(x.index_select(0, cg.tensor(idx)), a[idx])
    src, s = make((3, 3), dtype, seed=4)
    r = x.index_add(0, cg.tensor(idx), src)
    exp = REGISTRY["index_add"].ref(a, idx, s, 0)
    check(r, exp, exact=dtype not in ("float16", "float32"))


def test_index_add():
    x, a = make((3, 5), "float64", "sliced")
    src, s = make((3, 4), "float64", "transposed", 2)
    idx = np.array([4, 0, 4, 4])
    r = x.index_add_(1, cg.tensor(idx), src, alpha=2.0)
    assert r is x
    check(x, REGISTRY["index_add"].ref(a, idx, s, 1, alpha=2.0), exact=False)
    y = cg.zeros(3, dtype=cg.int64).index_add_(0, cg.tensor([0, 2], dtype=cg.int32),
                                                cg.tensor([4, 5]), alpha=3)
    check(y, np.array([12, 0, 15]))
    check(cg.index_add(cg.ones(2, 2), 0, cg.tensor([], dtype=cg.int64), cg.ones(0, 2)),
          np.ones((2, 2), np.float32))


def test_index_select_add_errors():
    x, _ = make((3, 4))
    with pytest.raises(IndexError, match="index out of range in self"):
        x.index_select(0, cg.tensor([3]))
    with pytest.raises(IndexError, match="index out of range in self"):
        x.index_select(1, cg.tensor([-1]))
    with pytest.raises(IndexError, match="Index is supposed to be a vector"):
        x.index_select(0, cg.tensor([[0]]))
    with pytest.raises(RuntimeError, match="Expected dtype int32 or int64 for index"):
        x.index_select(0, cg.tensor([0.0]))
    with pytest.raises(IndexError, match="index out of range in self"):
        x.index_add_(0, cg.tensor([5]), cg.ones(1, 4))
    with pytest.raises(RuntimeError, match="source tensor shape must match self tensor shape"):
        x.index_add_(0, cg.tensor([0]), cg.ones(1, 5))
    with pytest.raises(RuntimeError, match="must have the same scalar type"):
        x.index_add_(0, cg.tensor([0]), cg.ones(1, 4, dtype=cg.float64))


# --- masked_fill / masked_select / nonzero / where ----------------------------------------


@pytest.mark.parametrize("dtype", DTYPES + ["int32"])
@pytest.mark.parametrize("layout", ["contig", "transposed", "broadcast"])
def test_masked_fill(dtype, layout):
    x, a = make((3, 4), dtype, layout)
    m = rand((4,), "bool", 2)
    exp = REGISTRY["masked_fill"].ref(a, m, 1)
    check(x.masked_fill(cg.tensor(m), 1), exp)
    check(cg.masked_fill(x, cg.tensor(m), cg.tensor(True)),
          np.where(m, np.array(True).astype(a.dtype), a))
    y, b = make((3, 4), dtype, "transposed" if layout == "broadcast" else layout)
    y.masked_fill_(cg.tensor(m), 0)
    b[:, m] = 0
    check(y, b)


def test_masked_fill_semantics():
    x = cg.tensor([1, 2, 3])
    check(x.masked_fill(cg.tensor([True, False, True]), 2.7), np.array([2, 2, 2]))  # cast
    r = cg.zeros(3).masked_fill(cg.tensor([[True], [False]]), 5.0)  # the mask broadcasts out
    check(r, np.array([[5, 5, 5], [0, 0, 0]], np.float32))
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        x.masked_fill(cg.tensor([1, 0, 1]), 0)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        x.masked_fill(cg.tensor([True, False, True]), cg.tensor([1]))
    with pytest.raises(RuntimeError, match="must match"):
        x.masked_fill(cg.tensor([True, False]), 0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_masked_select_nonzero(layout):
    x, a = make((4, 5), "float32", layout)
    m = a > 0
    check(x.masked_select(cg.tensor(m)), a[m])
    check(cg.masked_select(x, cg.tensor(m[0])), REGISTRY["masked_select"].ref(a, m[0]))
    check(x.nonzero(), np.argwhere(a))
    check((x > 0).nonzero(), np.argwhere(m))
    for t, r in zip(cg.nonzero(x > 0, as_tuple=True), np.nonzero(m)):
        check(t, r)
    for t, r in zip(cg.where(x > 0), np.nonzero(m)):
        check(t, r)


@pytest.mark.parametrize("dtype", DTYPES + ["int8"])
def test_nonzero_dtypes_and_edges(dtype):
    x, a = make((3, 2, 5), dtype, "transposed")
    check(cg.nonzero(x), np.argwhere(a))
    check(cg.argwhere(x), np.argwhere(a))
    check(cg.nonzero(cg.zeros(0, 3, dtype=cg.float32)), np.zeros((0, 2), np.int64))
    check(cg.nonzero(cg.tensor(2.0)), np.zeros((1, 0), np.int64))
    check(cg.nonzero(cg.tensor(0.0), as_tuple=True)[0], np.zeros(0, np.int64))
    check(cg.nonzero(cg.tensor(-0.0)), np.zeros((0, 0), np.int64))
    big = rand((3000,), "bool", 7)  # several chunks
    check(cg.nonzero(cg.tensor(big)), np.argwhere(big))


def test_empty_index_of_any_dtype():
    """PyTorch checks the dtype of a non-empty index only: an empty uint8 / float index
    gathers an empty result of its shape (any number of dims) and scatters nothing."""
    x = cg.randn(5, requires_grad=True)
    r = cg.gather(x, 0, cg.zeros(2, 0, dtype=cg.uint8))
    assert r.shape == (2, 0) and r.dtype == cg.float32
    r.sum().backward()
    assert x.grad.tolist() == [0.0] * 5
    assert cg.gather(cg.ones(3, 4), 1, cg.zeros(3, 0, dtype=cg.float32)).shape == (3, 0)
    e = cg.zeros(0, dtype=cg.uint8)
    assert cg.scatter(cg.ones(3), 0, e, cg.ones(0)).tolist() == [1.0] * 3
    assert cg.scatter_add(cg.ones(3), 0, e, cg.ones(0)).tolist() == [1.0] * 3
    assert cg.scatter_reduce(cg.ones(3), 0, e, cg.ones(0), "amax").tolist() == [1.0] * 3
    with pytest.raises(RuntimeError, match="Expected dtype int64 for index"):
        cg.gather(cg.ones(3, 4), 1, cg.zeros(3, 1, dtype=cg.uint8))


def test_masked_select_zero_dim_gradient():
    """A 0-d input (and mask) selects from its one element; the gradient goes back to it."""
    for mask, want in ((True, 2.0), (False, 0.0)):
        x = cg.tensor(1.5, dtype=cg.float64).requires_grad_(True)
        y = cg.masked_select(x, cg.tensor(mask))
        assert y.shape == ((1,) if mask else (0,))
        (y * 2).sum().backward()
        assert x.grad.shape == () and float(x.grad) == want
    x = cg.tensor(1.5, dtype=cg.float64).requires_grad_(True)
    y = cg.masked_select(x, cg.tensor([True, False, True]))
    (y * cg.tensor([2.0, 3.0], dtype=cg.float64)).sum().backward()
    assert float(x.grad) == 5.0


def test_masked_select_errors():
    x, _ = make((3,))
    with pytest.raises(RuntimeError, match="expected BoolTensor for mask"):
        x.masked_select(cg.tensor([1, 0, 1]))
    with pytest.raises(RuntimeError, match="must match"):
        x.masked_select(cg.tensor([True, False]))


# --- cat / stack / split / chunk ----------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_layouts(layout, dim):
    x, a = make((4, 3, 2), "float32", layout)
    ys = list(x.shape)
    ys[dim] = 5
    y, b = make(tuple(ys), "float32", "transposed", seed=1)
    check(cg.cat([x, y, x], dim), REGISTRY["cat"].ref(a, b, a, dim=dim))
    check(cg.concatenate((y, x), dim=dim), np.concatenate([b, a], axis=dim))


def test_cat_promotion_and_empty():
    a = np.array([[1, 2]], np.int64)
    r = cg.cat([cg.tensor(a), cg.tensor([[0.5, 1.5]]), cg.tensor([[True, False]])])
    check(r, np.array([[1, 2], [0.5, 1.5], [1, 0]], np.float32))
    check(cg.cat([cg.tensor([1], dtype=cg.int8), cg.tensor([300], dtype=cg.int32)]),
          np.array([1, 300], np.int32))
    check(cg.cat([cg.tensor([True]), cg.tensor([False])]), np.array([True, False]))
    check(cg.cat([cg.tensor([1.0], dtype=cg.float16), cg.tensor([2.0], dtype=cg.float64)]),
          np.array([1, 2], np.float64))
    # legacy: 1-d empty tensors are skipped whatever the other shapes, but still promote
    e = cg.zeros(0, dtype=cg.float64)
    check(cg.cat([cg.ones(2, 2), e, cg.zeros(1, 2)]),
          np.array([[1, 1], [1, 1], [0, 0]], np.float64))
    check(cg.cat([e, e]), np.zeros(0, np.float64))
    check(cg.cat([cg.zeros(2, 0), cg.ones(2, 3)], 1), np.ones((2, 3), np.float32))
    out = cg.empty(3, 2)
    r = cg.cat([cg.ones(1, 2), cg.zeros(2, 2)], out=out)
    assert r is out
    check(out, np.array([[1, 1], [0, 0], [0, 0]], np.float32))


def test_cat_stack_errors():
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0. "
                                           "Expected size 4 but got size 5 for tensor number 1"):
        cg.cat([cg.zeros(2, 4), cg.zeros(2, 5)])
    with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions: got 2 "
                                           "and 3"):
        cg.cat([cg.zeros(2, 4), cg.zeros(2, 4, 1)])
    with pytest.raises(RuntimeError, match="zero-dimensional tensor \\(at position 1\\)"):
        cg.cat([cg.zeros(2), cg.tensor(1.0)])
    with pytest.raises(RuntimeError, match="expected a non-empty list of Tensors"):
        cg.cat([])
    with pytest.raises(IndexError, match="Dimension out of range"):
        cg.cat([cg.zeros(2)], 1)
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size, but got "
                                           r"\[2\] at entry 0 and \[3\] at entry 1"):
        cg.stack([cg.zeros(2), cg.zeros(3)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_stack_hstack_vstack(dtype):
    x, a = make((3, 2), dtype, "transposed")
    y, b = make((3, 2), dtype, "sliced", seed=1)
    for d in (0, 1, 2, -1, -3):
        check(cg.stack([x, y], d), np.stack([a, b], d))
    check(cg.hstack([x, y]), np.hstack([a, b]))
    check(cg.vstack([x, y]), np.vstack([a, b]))
    check(cg.hstack([x[0], y[1]]), np.hstack([a[0], b[1]]))
    check(cg.vstack([x[0], y[1]]), np.vstack([a[0], b[1]]))
    check(cg.stack([cg.tensor(a[0, 0]), cg.tensor(b[0, 0])]), np.stack([a[0, 0], b[0, 0]]))


def test_split_chunk():
    x, a = make((7, 4), "float32", "transposed")
    for size, dim in [(3, 0), (2, 1), (7, 0), (10, 0), ([1, 4, 2], 0), ([0, 4], -1)]:
        parts = x.split(size, dim)
        exp = (np.split(a, np.cumsum(size)[:-1], axis=dim) if isinstance(size, list)
               else np.split(a, range(size, a.shape[dim], size), axis=dim))
        assert len(parts) == len(exp)
        for p, e in zip(parts, exp):
            check(p, e)
            assert p._storage is x._storage  # views
    for chunks, n, count in [(3, 7, 3), (4, 7, 4), (4, 6, 3), (6, 6, 6), (8, 6, 6)]:
        t = cg.arange(n)
        parts = t.chunk(chunks)
        assert len(parts) == count
        check(cg.cat(parts), np.arange(n))
    assert len(cg.chunk(cg.zeros(0), 3)) == 3
    assert len(cg.split(cg.zeros(0), 0)) == 1
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly "
                                           "to 7"):
        x.split([3, 3])
    with pytest.raises(RuntimeError, match="chunk expects `chunks` to be greater than 0"):
        x.chunk(0)
    with pytest.raises(RuntimeError, match="split_size can only be 0"):
        x.split(0)


# --- tril / triu / flip / roll / repeat / tile --------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_tril_triu(dtype, layout):
    x, a = make((2, 4, 5), dtype, layout)
    for k in (0, 1, -2, 7, -9):
        check(x.tril(k), REGISTRY["tril"].ref(a, diagonal=k))
        check(cg.triu(x, diagonal=k), REGISTRY["triu"].ref(a, diagonal=k))


def test_tril_triu_inplace_and_errors():
    x, a = make((5, 3), "float64", "transposed")
    assert x.tril_(-1) is x
    check(x, np.tril(a, -1))
    y, b = make((4, 4), "int64", "sliced")
    y.triu_()
    check(y, np.triu(b))
    check(cg.tril(cg.zeros(0, 3)), np.zeros((0, 3), np.float32))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        cg.tril(cg.zeros(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_flip_roll(dtype, layout):
    x, a = make((3, 4, 2), dtype, layout)
    for dims in ((0,), (1, 2), (-1, 0), (0, 1, 2), ()):
        check(cg.flip(x, dims), REGISTRY["flip"].ref(a, dims))
    check(x.flip(0, 2), np.flip(a, (0, 2)))
    check(cg.fliplr(x), np.fliplr(a))
    check(cg.flipud(x), np.flipud(a))
    for shifts, dims in ((1, 0), (-3, 1), ((1, 5), (0, 1)), (7, None), (0, 2)):
        check(cg.roll(x, shifts, dims), np.roll(a, shifts, dims))
    r = x.roll(0, 0)
    assert r._storage is not x._storage
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        x.flip(0, -3)
    with pytest.raises(RuntimeError, match="shifts and dimensions must align"):
        x.roll((1, 2), 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_repeat_tile(dtype):
    x, a = make((2, 3), dtype, "transposed")
    for reps in ((1, 1), (2, 3), (2, 1, 2), (0, 2), (3, 1, 1, 1)):
        r = x.repeat(*reps)
        check(r, np.tile(a, reps))
        assert r._storage is not x._storage
    check(x.repeat((2, 2)), np.tile(a, (2, 2)))
    check(cg.tile(x, (2,)), np.tile(a, (2,)))
    check(x.tile(3, 1, 2), np.tile(a, (3, 1, 2)))
    check(cg.tensor(1.5).repeat(3), np.full(3, 1.5, np.float32))
    with pytest.raises(RuntimeError, match="can not be smaller than number of dimensions"):
        x.repeat(2)


# --- properties ---------------------------------------------------------------------------


@given(st.data())
def test_hypothesis_gather_scatter_add(data):
    nd = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd)))
    dim = data.draw(st.integers(-nd, nd - 1))
    ishape = tuple(data.draw(st.integers(0, n if k != dim % nd else 5))
                   for k, n in enumerate(shape))
    seed = data.draw(st.integers(0, 100))
    a = rand(shape, "float64", seed)
    idx = index_for(ishape, dim, shape[dim], seed)
    got = cg.tensor(a).gather(dim, cg.tensor(idx))
    check(got, REGISTRY["gather"].ref(a, idx, dim % nd))
    src = rand(ishape, "float64", seed + 1)
    sa = cg.tensor(a).scatter_add(dim, cg.tensor(idx), cg.tensor(src))
    check(sa, REGISTRY["scatter_add"].ref(a, idx, src, dim % nd), exact=False)


@given(st.data())
def test_hypothesis_advanced_getitem(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    a = rand(shape, "int64", 1)
    x = cg.tensor(a)
    idx = []
    for n in shape:
        kind = data.draw(st.sampled_from(["slice", "array", "mask", "int"]))
        if kind == "slice":
            idx.append(slice(data.draw(st.integers(-n, n)), None,
                             data.draw(st.integers(1, 2))))
        elif kind == "array":
            idx.append(np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1,
                                                   max_size=3))))
        elif kind == "int":
            idx.append(data.draw(st.integers(-n, n - 1)))
        else:
            idx.append(np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n))))
    arrays = [i for i in idx if isinstance(i, np.ndarray)]
    counts = {int(i.sum()) if i.dtype == bool else i.size for i in arrays}
    if len(counts - {1}) > 1:  # indices that do not broadcast: an IndexError
        with pytest.raises(IndexError, match="shape mismatch"):
            x[tuple(idx)]
        return
    # torch selects ints first (numpy would treat them as advanced indices)
    selected = a[tuple(i if isinstance(i, int) else slice(None) for i in idx)]
    exp = selected[tuple(i for i in idx if not isinstance(i, int))]
    check(x[tuple(idx)], exp)


@given(st.data())
def test_hypothesis_cat_split(data):
    nd = data.draw(st.integers(1, 3))
    base = data.draw(st.lists(st.integers(0, 3), min_size=nd, max_size=nd))
    dim = data.draw(st.integers(-nd, nd - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    arrays = []
    for k, s in enumerate(sizes):
        shape = list(base)
        shape[dim] = s
        arrays.append(rand(tuple(shape), data.draw(st.sampled_from(["float32", "int64"])), k))
    got = cg.cat([cg.tensor(a) for a in arrays], dim)
    exp = np.concatenate(arrays, axis=dim)
    check(got, exp.astype(np.float32) if any(a.dtype == np.float32 for a in arrays) else exp)
    parts = got.split(sizes, dim)
    for p, a in zip(parts, arrays):
        check(p, a.astype(got.dtype.np))


def test_larger_views_cross_chunks():
    # inner dims longer and shorter than a work-item's chunk, masks over several chunks
    x, a = make((70, 33), "float32", "transposed")
    m = a > 0.3
    check(x[m], a[m])
    check(x[:, m[0]], a[:, m[0]])
    rows = np.random.default_rng(0).integers(-70, 70, 300)
    check(x[rows], a[rows])
    check(x.index_select(1, cg.tensor(rows % 33)), a[:, rows % 33])
    check(x.tril(3), np.tril(a, 3))
    x[m] = cg.tensor(np.arange(m.sum(), dtype=np.float32))
    a[m] = np.arange(m.sum())
    check(x, a)


# --- the rows themselves ------------------------------------------------------------------

ROWS = {"index", "index_put", "gather", "scatter", "scatter_add", "index_select", "index_add",
        "scatter_reduce", "masked_fill", "masked_select", "nonzero", "cat", "tril", "triu", "flip"}


def test_rows_have_cases():
    rows = {n for n, o in REGISTRY.items() if o.family in ("index", "join")}
    assert rows == ROWS
    assert all(REGISTRY[n].ref is not None for n in rows)


def test_index_rows_direct():
    apply = cg.ops.registry.apply
    x, a = make(SHAPE, "float64", "sliced")
    i0, i2 = np.array([[0], [3]]), np.array([1, -2, 5])
    r = apply(REGISTRY["index"], x, cg.tensor(i0), cg.tensor(i2), dims=(0, 2))
    check(r, REGISTRY["index"].ref(a, i0, i2, dims=(0, 2)))
    m = rand((5, 6), "bool", 2)
    check(apply(REGISTRY["index"], x, cg.tensor(m), dims=(1,)),
          REGISTRY["index"].ref(a, m, dims=(1,)))
    v = rand((2, 3, 5), "float64", 3)
    r = apply(REGISTRY["index_put"], x, cg.tensor(v), cg.tensor(i0), cg.tensor(i2), dims=(0, 2),
              accumulate=False)
    check(r, REGISTRY["index_put"].ref(a, v, i0, i2, dims=(0, 2), accumulate=False))
    check(apply(REGISTRY["nonzero"], x > 0), REGISTRY["nonzero"].ref(a > 0))


def test_index_tensors_on_the_device():
    """Integer index tensors (strided views, several broadcast together, negative values)
    select what numpy selects, writes with repeated positions accumulate, and a compiled
    function indexing this way replays without reading the indices on the host."""
    rng = np.random.default_rng(5)
    an = rng.standard_normal((5, 9)).astype(np.float32)
    a = cg.from_numpy(an)
    step = cg.tensor(np.arange(8))[::2]
    np.testing.assert_array_equal(a[:, step].numpy(), an[:, ::2][:, :4])
    i, j = np.array([[0], [4], [-1]]), np.array([1, -2, 3])
    np.testing.assert_array_equal(a[cg.tensor(i), cg.tensor(j)].numpy(), an[i, j])
    x = cg.zeros(4, 4)
    x.index_put_((cg.tensor([0, 0, -1]), cg.tensor([1, 1, 2])), cg.tensor([1.0, 2.0, 3.0]),
                 accumulate=True)
    want = np.zeros((4, 4), np.float32)
    np.add.at(want, (np.array([0, 0, -1]), np.array([1, 1, 2])), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x.numpy(), want)
    c = cg.compile(lambda t, p, q: t[p, q] + 1)
    for _ in range(3):
        p, q = rng.integers(0, 5, 6), rng.integers(0, 9, 6)
        np.testing.assert_array_equal(c(a, cg.tensor(p), cg.tensor(q)).numpy(), an[p, q] + 1)
    assert any(e.plan is not None for e in c._entries.values())


def test_int32_indices_and_take_along_dim():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 5))
    idx = rng.integers(0, 4, (3, 2, 1))
    t = cg.tensor(x, requires_grad=True)
    got = cg.take_along_dim(t, cg.tensor(idx), 1)
    np.testing.assert_array_equal(got.detach().numpy(), np.take_along_axis(
        x, np.broadcast_to(idx, (3, 2, 5)), 1))
    got.sum().backward()
    want = np.zeros_like(x)
    np.add.at(want, (np.arange(3)[:, None, None], np.broadcast_to(idx, (3, 2, 5)),
                     np.arange(5)[None, None, :]), 1)
    np.testing.assert_array_equal(t.grad.numpy(), want)
    flat = rng.integers(0, 60, (7,))
    np.testing.assert_array_equal(cg.take_along_dim(cg.tensor(x), cg.tensor(flat)).numpy(),
                                  x.reshape(-1)[flat])
    with pytest.raises(RuntimeError, match="dtype of indices should be Long"):
        cg.take_along_dim(cg.tensor(x), cg.tensor(idx, dtype=cg.int32), 1)
    # with a dim, a negative index counts from the end of it (PyTorch's); beyond -size, or
    # without a dim, it is an error naming the index
    neg = rng.integers(-4, 0, (3, 2, 1))
    got = cg.take_along_dim(cg.tensor(x), cg.tensor(neg), 1)
    np.testing.assert_array_equal(got.numpy(), np.take_along_axis(
        x, np.broadcast_to(neg + 4, (3, 2, 5)), 1))
    with pytest.raises(IndexError, match="index -5 is out of bounds"):
        cg.take_along_dim(cg.tensor(x), cg.tensor(np.full((3, 1, 1), -5)), 1)
    with pytest.raises(IndexError, match="index -1 is out of bounds"):
        cg.take_along_dim(cg.tensor(x), cg.tensor([-1]))
    i32 = cg.tensor([[0, 2], [1, 0]], dtype=cg.int32)
    xx = cg.arange(6.0).reshape(2, 3)
    assert cg.gather(xx, 1, i32).tolist() == [[0.0, 2.0], [4.0, 3.0]]
    assert xx.scatter(1, i32[:, :1], 5.0).tolist() == [[5.0, 1.0, 2.0], [3.0, 5.0, 5.0]]
    assert xx.scatter_add(1, i32, cg.ones(2, 2)).tolist() == [[1.0, 1.0, 3.0],
                                                             [4.0, 5.0, 5.0]]
