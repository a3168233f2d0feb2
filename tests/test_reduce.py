"""Reductions, softmax and cumsum against numpy (float64 references from each row's
``OpDef.ref``): every row on contiguous, transposed, sliced, expanded, 0-d, size-1 and empty
inputs across dtypes; each kernel shape (inner / outer vectors, split rows, the GPU tree);
NaN, inf and tie rules; PyTorch's dtypes and error messages; torch parity where installed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import clgraph as cg
from clgraph.ops import reduce as R
from clgraph.ops.registry import REGISTRY
from conftest import torch_or_skip

FLOAT = ("float32", "float64", "float16")
NUM = ("float32", "float64", "float16", "int32", "int64")
ALL = NUM + ("bool",)
TOL = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-10}


@dataclass
class Case:
    """One public reduction: how to call it, its registry row, the dtypes it accepts."""

    op: str
    dtypes: tuple = ALL
    dims: str = "multi"  # multi: None/int/tuple; one: None or one int; req: one int
    kwargs: tuple = ()  # extra keyword sets, each a dict
    low: float = -3.0
    high: float = 3.0
    empty_ok: bool = True  # has an identity (reduces an empty range)

    @property
    def row(self):
        return REGISTRY[{"max_dim": "max", "min_dim": "min"}.get(self.op, self.op)]


CASES = [
    Case("sum", kwargs=({}, {"dtype": cg.float64})),
    Case("prod", NUM + ("bool",), low=0.5, high=1.5),
    Case("mean", FLOAT, kwargs=({}, {"dtype": cg.float64})),
    Case("amax", empty_ok=False), Case("amin", empty_ok=False),
    Case("max_dim", dims="req", empty_ok=False), Case("min_dim", dims="req", empty_ok=False),
    Case("argmax", NUM, dims="one", empty_ok=False),
    Case("argmin", NUM, dims="one", empty_ok=False),
    Case("var", FLOAT, kwargs=({}, {"correction": 0}, {"unbiased": False})),
    Case("std", FLOAT, kwargs=({}, {"correction": 2})),
    Case("var_mean", FLOAT, kwargs=({}, {"correction": 0})),
    Case("std_mean", FLOAT, kwargs=({}, {"unbiased": False})),
    Case("logsumexp", NUM),
    Case("norm", FLOAT, kwargs=({}, {"p": 1}, {"p": 3}, {"p": math.inf}, {"p": 0})),
    Case("all"), Case("any"),
    Case("softmax", FLOAT, dims="req"), Case("log_softmax", FLOAT, dims="req"),
    Case("cumsum", ALL, dims="req"),
]
BY_OP = {c.op: c for c in CASES}


def test_every_reduce_row_has_a_case():
    rows = {n for n, op in REGISTRY.items() if op.family == "reduce"}
    assert rows - {c.row.name for c in CASES} == set()
    assert all(REGISTRY[n].ref is not None for n in rows)


# --- data, layouts, references ------------------------------------------------------------


def host(shape, dtype, case: Case, rng):
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.6)
    if np.dtype(dtype).kind in "iu":
        lo, hi = (0, 3) if case.op == "prod" else (-4, 5)
        return rng.integers(lo, hi, size=shape).astype(dtype)
    return rng.uniform(case.low, case.high, size=shape).astype(dtype)


def layouts(a: np.ndarray):
    """(name, tensor, its logical numpy value) for each way to hold ``a``'s values."""
    out = [("contiguous", cg.from_numpy(a), a)]
    if a.ndim >= 2:
        t = cg.from_numpy(np.ascontiguousarray(a.T)).permute(*reversed(range(a.ndim)))
        out.append(("transposed", t, a))
    if a.ndim >= 1:
        big = np.repeat(a, 2, axis=-1)
        big = np.concatenate([big, big[..., :1]], axis=-1)  # odd, so the slice has an offset
        t = cg.from_numpy(big)[..., 1::2]
        out.append(("sliced", t, big[..., 1::2]))
        first = a[:1]
        t = cg.from_numpy(np.ascontiguousarray(first)).expand(*a.shape)
        out.append(("expanded", t, np.broadcast_to(first, a.shape)))
    return out


def axes(dim, ndim):
    """Normalised dims the way the public functions pass them to a row's ref."""
    if dim is None or dim == ():
        return None
    ds = dim if isinstance(dim, tuple) else (dim,)
    return tuple(sorted(d % max(ndim, 1) for d in ds))


def call(case: Case, t, dim, keepdim, kw):
    if case.op in ("max_dim", "min_dim"):
        r = getattr(cg, case.op[:3])(t, dim, keepdim)
        assert r.values is r[0] and r.indices is r[1]
        return r
    if case.dims == "req":
        return getattr(cg, case.op)(t, dim, **kw)
    if case.op in ("amax", "amin") and dim is None:
        return getattr(cg, case.op)(t, (), keepdim)
    if case.op == "norm":
        # 'fro' over three or more dims is PyTorch's matrix-norm error; 2 is the same norm
        return cg.norm(t, kw.get("p", 2), dim, keepdim)
    if dim is None and case.op in ("sum", "mean") and not keepdim:
        return getattr(t, case.op)(**kw)  # the method, no dim
    return getattr(cg, case.op)(t, dim, keepdim=keepdim, **kw)


def reference(case: Case, a, dim, keepdim, kw):
    wide = a.astype(np.float64) if a.dtype.kind == "f" else a
    ref = case.row.ref
    nd = a.ndim
    with np.errstate(all="ignore"):
        if case.op in ("max_dim", "min_dim"):
            return ref(wide, (dim % max(nd, 1),), keepdim)
        if case.dims == "req":
            d = dim % max(nd, 1)
            if nd == 0:
                wide = wide.reshape(1)
            r = ref(wide, d, **({"dtype": kw["dtype"]} if "dtype" in kw else {}))
            return np.asarray(r).reshape(a.shape) if nd == 0 else r
        ax = axes(dim, nd)
        if case.op in ("argmax", "argmin"):
            return ref(wide, None if dim is None else ax, keepdim)
        if nd == 0:
            wide = wide.reshape(1)
            ax = None
        if case.op in ("var", "std", "var_mean", "std_mean"):
            corr = kw.get("correction", 0 if kw.get("unbiased") is False else 1)
            r = ref(wide, ax, keepdim, correction=corr)
        elif case.op == "norm":
            r = ref(wide, p=kw.get("p", 2), dim=ax, keepdim=keepdim)
        elif "dtype" in kw:
            r = ref(wide, ax, keepdim, dtype=kw["dtype"])
        else:
            r = ref(wide, ax, keepdim)
        if nd == 0:
            if isinstance(r, tuple):
                return tuple(np.asarray(v).reshape(()) for v in r)
            return np.asarray(r).reshape(())
        return r


def expected_dtype(case: Case, dtype: str, kw) -> str:
    if "dtype" in kw:
        return kw["dtype"].name
    if case.op in ("sum", "prod", "cumsum") and dtype in ("int32", "int64", "bool"):
        return "int64"
    if case.op in ("argmax", "argmin"):
        return "int64"
    if case.op in ("all", "any"):
        return "bool"
    if case.op == "logsumexp" and dtype not in FLOAT:
        return "float32"
    return dtype


def compare(got, exp, out_dtype, what):
    got = got.numpy()
    exp = np.asarray(exp)
    assert got.shape == exp.shape, f"{what}: shape {got.shape} != {exp.shape}"
    assert got.dtype.name == out_dtype, f"{what}: dtype {got.dtype} != {out_dtype}"
    if out_dtype in TOL:
        tol = TOL[out_dtype]
        mag = 1.0 if exp.size == 0 else max(1.0, float(np.nanmax(np.abs(
            np.where(np.isfinite(exp), exp, 0)), initial=0)))
        np.testing.assert_allclose(got.astype(np.float64), exp.astype(np.float64),
                                   rtol=tol, atol=tol * mag, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, exp.astype(got.dtype), err_msg=what)


def check(case: Case, t, a, dim, keepdim, kw, dtype, tag=""):
    what = f"{case.op}(dim={dim}, keepdim={keepdim}, {kw}) on {dtype}{list(a.shape)} {tag}"
    r = call(case, t, dim, keepdim, kw)
    exp = reference(case, a, dim, keepdim, kw)
    odt = expected_dtype(case, dtype, kw)
    if case.op in ("max_dim", "min_dim"):
        compare(r.values, exp[0], dtype, what + " values")
        compare(r.indices, exp[1], "int64", what + " indices")
    elif case.op in ("var_mean", "std_mean"):
        compare(r[0], exp[0], dtype, what + " " + case.op[:3])
        compare(r[1], exp[1], dtype, what + " mean")
    else:
        compare(r, exp, odt, what)


def dim_choices(case: Case, ndim: int):
    if case.dims == "req":
        return [0, -1] if ndim else [0]
    if case.dims == "one":
        return [None, 0, -1] if ndim else [None, 0]
    ds = [None, 0, -1] if ndim else [None, 0, ()]
    if ndim >= 3:
        ds += [(0, 2), (-1, 0, 1)]
    return ds


# --- the table: every row, layout, dtype, dims and keepdim ------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.op)
def test_rows_against_numpy(case):
    rng = np.random.default_rng(0)
    for dtype in case.dtypes:
        # keyword variants on the first dtype only: each dtype is a program to build
        for kw in case.kwargs if dtype == case.dtypes[0] and case.kwargs else ({},):
            for shape in [(3, 5, 4), (7,), ()]:
                a = host(shape, dtype, case, rng)
                for lname, t, logical in layouts(a):
                    for dim in dim_choices(case, len(shape)):
                        for keepdim in (False, True):
                            if case.dims == "req" and keepdim:
                                continue
                            check(case, t, logical, dim, keepdim, kw, dtype, lname)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.op)
def test_size_one_and_empty(case):
    rng = np.random.default_rng(1)
    dtype = "float32" if "float32" in case.dtypes else case.dtypes[0]
    for shape in [(1,), (1, 1), (4, 1), (1, 5), (0,), (0, 3), (3, 0), (2, 0, 3)]:
        a = host(shape, dtype, case, rng)
        t = cg.from_numpy(a)
        for dim in dim_choices(case, len(shape)):
            ax = axes(dim, len(shape))
            reduced = a.shape if ax is None else [a.shape[d] for d in ax]
            if not case.empty_ok and 0 in reduced:
                with pytest.raises((RuntimeError, IndexError), match="Expected reduction dim"):
                    call(case, t, dim, False, {})
                continue
            for keepdim in (False, True):
                if case.dims == "req" and keepdim:
                    continue
                check(case, t, a, dim, keepdim, {}, dtype)


# --- kernel shapes: vectors along the reduced axis, across outputs, split rows, tree -----

BIG = [  # (shape, dims): inner vectors, outer tiles (with tails), split rows, scalar
    ((301, 203), 1), ((301, 203), 0), ((2, 140001), 1), ((50001, 3), 0), ((20011,), 0),
    ((3, 40, 70), (0, 2)), ((70, 3, 41), (0, 1)), ((5, 9000), None), ((9000, 37), 0),
]
BIG_OPS = ["sum", "mean", "amax", "argmax", "max_dim", "var", "var_mean", "logsumexp", "norm",
           "all",
           "prod", "softmax", "log_softmax", "cumsum"]


def _big_case(op, a, shape, dims, tag):
    case = BY_OP[op]
    if case.dims != "multi" and isinstance(dims, tuple):
        return
    if case.dims == "req" and dims is None:
        return
    if op == "prod":
        a = np.ones(shape, np.float32) + np.where(a > 2.9, 1e-3, 0).astype(np.float32)
    t = cg.from_numpy(a)
    check(case, t, a, dims, False, {}, "float32")
    # the same values transposed in memory take the other kernel shape
    if a.ndim == 2 and dims is not None:
        tt = cg.from_numpy(np.ascontiguousarray(a.T)).t()
        check(case, tt, a, dims, False, {}, "float32", tag)


# the kernel variants BIG reaches on CPU devices (function-name suffixes; split rows end in
# _combine or run the softmax apply kernel)
BIG_VARIANTS = {"cumsum": {"scalar"}, "softmax": {"inner", "outer", "scalar", "apply"},
                "log_softmax": {"inner", "outer", "scalar", "apply"}}


@pytest.mark.parametrize("op", BIG_OPS)
def test_kernel_shapes(op):
    rng = np.random.default_rng(2)
    with cg.profile() as p:
        for shape, dims in BIG:
            a = rng.uniform(-3, 3, size=shape).astype(np.float32)
            _big_case(op, a, shape, dims, "transposed")
    if cg.get_default_device().info.is_cpu:
        ran = {f.rsplit("_", 1)[-1] for f in p.functions}
        want = BIG_VARIANTS.get(op, {"inner", "outer", "scalar", "combine"})
        assert want <= ran, f"{op}: no {want - ran} kernel ran ({sorted(set(p.functions))})"


@pytest.fixture
def tree():
    R.FORCE_TREE = True
    yield
    R.FORCE_TREE = False


@pytest.mark.parametrize("op", ["sum", "amax", "argmax", "var", "var_mean", "logsumexp", "softmax",
                                "log_softmax", "all"])
def test_gpu_tree_kernels_on_any_device(tree, op):
    rng = np.random.default_rng(3)
    for shape, dims in [((37, 203), 1), ((37, 203), 0), ((3, 40000), 1), ((3, 40, 7), (0, 2)),
                        ((), None), ((0, 3), 1)]:
        a = rng.uniform(-3, 3, size=shape).astype(np.float32)
        case = BY_OP[op]
        if case.dims != "multi" and isinstance(dims, tuple) or case.dims == "req" and (
                dims is None):
            continue
        if not case.empty_ok and 0 in shape:
            continue
        with cg.profile() as p:
            check(case, cg.from_numpy(a), a, dims, False, {}, "float32", "tree")
        if a.size:
            assert any(f.endswith("_tree") for f in p.functions), (op, shape, p.functions)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_gpu_softmax_rows_in_one_read(tree, op):
    """The tree softmax's online (max, sum) pass, with the row cached in local memory when
    it fits (rows of 1, 7, 4097 and 8192 elements) or read twice (2^20): against numpy,
    with masked (-inf) and fully masked rows, on a transposed input."""
    rng = np.random.default_rng(4)
    for n in (1, 7, 4097, 8192, 2**20):
        a = rng.uniform(-30, 30, size=(3, n)).astype(np.float32)
        if n > 1:
            a[1, ::3] = -np.inf  # masked entries
        a[2, :] = -np.inf if n < 100 else a[2, :]  # a fully masked row (short rows)
        x = cg.from_numpy(a)
        with cg.profile() as p:
            got = getattr(x, op)(1).numpy()
        assert any(f.endswith("_tree") for f in p.functions), p.functions
        m = a.max(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            lse = m + np.log(np.exp(a - m).sum(1, keepdims=True))
            want = a - lse if op == "log_softmax" else np.exp(a - lse)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6 if op == "softmax" else 5e-5)
    t = cg.from_numpy(rng.standard_normal((300, 9)).astype(np.float32)).t()
    want = np.exp(t.numpy()) / np.exp(t.numpy()).sum(1, keepdims=True)
    np.testing.assert_allclose(t.softmax(1).numpy(), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("force_tree", [False, True])
def test_row_ops_over_large_transposed_views(force_tree):
    """softmax, log_softmax and cumsum along rows that a view lays a stride apart (x.t(),
    NHWC seen as NCHW): copied contiguous first past TILE_MIN elements, same values."""
    R.FORCE_TREE = force_tree
    try:
        rng = np.random.default_rng(6)
        b = rng.uniform(-5, 5, size=(515, 301)).astype(np.float32)
        y = rng.uniform(-5, 5, size=(5, 9, 11, 67)).astype(np.float32)
        for x, ref, dim in [(cg.tensor(b).t(), b.T, 1),
                            (cg.tensor(y).permute(0, 3, 1, 2), y.transpose(0, 3, 1, 2), 1)]:
            assert x.numel() >= R.TILE_MIN
            e = np.exp(ref - ref.max(dim, keepdims=True))
            np.testing.assert_allclose(x.softmax(dim).numpy(), e / e.sum(dim, keepdims=True),
                                       rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(x.log_softmax(dim).numpy(),
                                       np.log(e / e.sum(dim, keepdims=True)), rtol=1e-5,
                                       atol=1e-5)
            np.testing.assert_allclose(x.cumsum(dim).numpy(),
                                       np.cumsum(ref.astype(np.float64), dim), rtol=1e-4,
                                       atol=1e-3)
            with cg.profile() as p:
                x.softmax(dim)
            assert p.kernels[0] == "transpose", p.kernels
        # gradients flow through the runner's copy as through the op
        t = cg.tensor(b, requires_grad=True)
        w = cg.tensor(rng.standard_normal((301, 515)).astype(np.float32))
        (t.t().softmax(1) * w).sum().backward()
        s_ = np.exp(b.T - b.T.max(1, keepdims=True))
        s_ /= s_.sum(1, keepdims=True)
        wn = w.numpy()
        g = s_ * (wn - (s_ * wn).sum(1, keepdims=True))
        np.testing.assert_allclose(t.grad.numpy(), g.T, rtol=1e-4, atol=1e-6)
    finally:
        R.FORCE_TREE = False


def test_dtypes_in_vector_kernels():
    rng = np.random.default_rng(4)
    for dtype in ("float64", "float16", "int32", "int64", "bool"):
        for op in ("sum", "amax", "argmax", "max_dim", "any", "cumsum", "logsumexp"):
            case = BY_OP[op]
            if dtype not in case.dtypes:
                continue
            for shape, dims in [((64, 300), 1), ((300, 64), 0), ((2, 30000), 1)]:
                a = host(shape, dtype, case, rng)
                check(case, cg.from_numpy(a), a, dims, False, {}, dtype)


# --- hypothesis: random shapes, dims, layouts ---------------------------------------------


@st.composite
def problems(draw):
    case = draw(st.sampled_from([c for c in CASES if c.op not in ("prod",)]))
    dtype = draw(st.sampled_from(case.dtypes))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=4)))
    ndim = len(shape)
    if case.dims == "multi":
        dim = draw(st.one_of(st.none(), st.integers(-max(ndim, 1), max(ndim, 1) - 1),
                             st.lists(st.integers(0, max(ndim, 1) - 1), unique=True,
                                      min_size=1, max_size=max(ndim, 1)).map(tuple)))
    elif case.dims == "one":
        dim = draw(st.one_of(st.none(), st.integers(-max(ndim, 1), max(ndim, 1) - 1)))
    else:
        dim = draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
    keepdim = draw(st.booleans()) and case.dims != "req"
    layout = draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2**16))
    return case, dtype, shape, dim, keepdim, layout, seed


@given(problems())
def test_hypothesis_shapes_and_dims(p):
    case, dtype, shape, dim, keepdim, layout, seed = p
    a = host(shape, dtype, case, np.random.default_rng(seed))
    ls = layouts(a)
    name, t, logical = ls[layout % len(ls)]
    ax = axes(dim, len(shape))
    reduced = [n for n in shape] if ax is None else [shape[d] for d in ax] if shape else []
    if case.dims == "one" and dim is None:
        reduced = list(shape)
    if not case.empty_ok and 0 in reduced:
        with pytest.raises((RuntimeError, IndexError), match="Expected reduction dim"):
            call(case, t, dim, keepdim, {})
        return
    check(case, t, logical, dim, keepdim, {}, dtype, name)


# --- numerics -----------------------------------------------------------------------------


def test_float32_sum_of_a_million_is_compensated():
    rng = np.random.default_rng(5)
    for a in (rng.random(10**6, dtype=np.float32),
              (rng.random(10**6, dtype=np.float32) + 1e4).astype(np.float32),
              rng.standard_normal(10**6).astype(np.float32)):
        exact = a.astype(np.float64).sum()
        bound = 1e-5 * np.abs(a.astype(np.float64)).sum()
        for t in (cg.from_numpy(a), cg.from_numpy(a.reshape(1000, 1000)).t()):
            got = float(t.sum())
            assert abs(got - exact) <= bound, (got, exact)
        # row sums of a 2-row matrix go through the split (chunked) kernels
        got = cg.from_numpy(a.reshape(2, -1)).sum(1).numpy().astype(np.float64)
        exp = a.reshape(2, -1).astype(np.float64).sum(1)
        assert np.all(np.abs(got - exp) <= 1e-5 * np.abs(a.reshape(2, -1)).sum(1)), (got, exp)
    assert float(cg.from_numpy(np.full(10**6, 0.1, np.float32)).mean()) == pytest.approx(
        0.1, rel=1e-6)


def test_half_accumulates_in_float():
    a = np.full(5000, 1.0, np.float16)
    assert float(cg.from_numpy(a).sum()) == 5000.0  # half alone stalls at 2048
    assert cg.from_numpy(a).sum().dtype == cg.float16
    assert float(cg.from_numpy(a).mean()) == 1.0


def test_nan_and_inf_rules():
    nan, inf = float("nan"), float("inf")
    x = cg.tensor([1.0, nan, 3.0, nan])
    assert math.isnan(float(x.max())) and math.isnan(float(x.amin()))
    assert int(x.argmax()) == 1 and int(x.argmin()) == 1
    v, i = x.max(0)
    assert math.isnan(float(v)) and int(i) == 1
    assert math.isnan(float(x.sum())) and math.isnan(float(x.logsumexp(0)))
    assert np.isnan(x.softmax(0).numpy()).all()
    assert float(cg.tensor([1.0, inf, 2.0]).sum()) == inf
    assert math.isnan(float(cg.tensor([inf, -inf]).sum()))
    big = np.zeros(100000, np.float32)
    big[7] = np.inf
    assert float(cg.from_numpy(big).sum()) == inf  # Kahan would say NaN
    assert float(cg.from_numpy(big.reshape(1000, 100)).sum(0)[7]) == inf
    assert float(cg.tensor([-inf, -inf]).logsumexp(0)) == -inf
    assert float(cg.tensor([inf, 1.0]).logsumexp(0)) == inf
    assert np.isnan(cg.tensor([-inf, -inf]).softmax(0).numpy()).all()
    assert float(cg.tensor([1e30, 1e30]).logsumexp(0)) == pytest.approx(1e30 + math.log(2))
    assert cg.tensor([[1000.0, 0.0]]).softmax(1).numpy().tolist() == [[1.0, 0.0]]
    row = np.full((3, 1000), -np.inf, np.float32)  # all -inf: index of the first
    assert cg.from_numpy(row).argmax(1).numpy().tolist() == [0, 0, 0]
    assert cg.from_numpy(row.T.copy()).argmax(0).numpy().tolist() == [0, 0, 0]
    assert float(cg.tensor([nan, 1.0]).all()) and not float(cg.tensor([0.0, 0.0]).any())


def test_ties_give_the_first_index():
    a = np.zeros((5, 3000), np.float32)
    a[:, [17, 1999, 2500]] = 2.0
    a[3, 5] = 2.0
    t = cg.from_numpy(a)
    assert t.argmax(1).numpy().tolist() == [17, 17, 17, 5, 17]
    assert t.max(1).indices.numpy().tolist() == [17, 17, 17, 5, 17]
    assert cg.from_numpy(a.T.copy()).argmax(0).numpy().tolist() == [17, 17, 17, 5, 17]
    flat = np.zeros(100000, np.int32)
    flat[[99999, 40000, 65000]] = -1
    assert int(cg.from_numpy(flat).argmin()) == 40000
    assert int(cg.from_numpy(flat).argmax()) == 0


def test_var_std_numerics():
    rng = np.random.default_rng(6)
    a = (rng.standard_normal((3, 100000)) + 1e4).astype(np.float32)
    got = cg.from_numpy(a).var(1).numpy()
    np.testing.assert_allclose(got, a.astype(np.float64).var(1, ddof=1), rtol=1e-3)
    x = cg.tensor([1.0, 2.0])
    assert float(x.var(correction=3)) == math.inf
    assert math.isnan(float(cg.tensor([1.0, 1.0]).var(correction=3)))
    assert math.isnan(float(cg.tensor([3.0]).std()))
    assert float(x.std(unbiased=False)) == pytest.approx(0.5)
    assert float(x.var(True)) == pytest.approx(0.5)
    v, m = cg.var_mean(x)
    assert float(v) == pytest.approx(0.5) and float(m) == pytest.approx(1.5)
    s, m = cg.std_mean(x, 0, correction=0)
    assert float(s) == pytest.approx(0.5) and float(m) == pytest.approx(1.5)


# --- dtypes, return types, errors ---------------------------------------------------------


def test_result_dtypes_like_pytorch():
    i32 = cg.tensor([1, 2], dtype=cg.int32)
    b = cg.tensor([True, False, True])
    assert i32.sum().dtype == cg.int64 and b.sum().dtype == cg.int64 and int(b.sum()) == 2
    assert i32.prod().dtype == cg.int64 and b.cumsum(0).dtype == cg.int64
    assert i32.amax().dtype == cg.int32 and b.amax().dtype == cg.bool
    assert i32.sum(dtype=cg.float32).dtype == cg.float32
    assert float(i32.mean(dtype=cg.float32)) == 1.5
    assert cg.tensor([1.5, 2.7]).sum(dtype=cg.int32).numpy().tolist() == 3
    assert cg.tensor([1.5, 2.7]).cumsum(0, dtype=cg.int32).numpy().tolist() == [1, 3]
    assert i32.logsumexp(0).dtype == cg.float32
    assert i32.softmax(0, dtype=cg.float64).dtype == cg.float64
    h = cg.tensor([1.0, 2.0], dtype=cg.float16)
    assert h.softmax(0, dtype=cg.float32).dtype == cg.float32
    for f in (h.sum(), h.var(), h.norm(), h.logsumexp(0), h.cumsum(0), h.softmax(0)):
        assert f.dtype == cg.float16
    u8 = cg.tensor([1, 2], dtype=cg.uint8)
    assert u8.all().dtype == cg.uint8 and int(u8.any(0)) == 1
    assert cg.tensor([0.5, 1.0]).all().dtype == cg.bool and bool(cg.tensor([0.5, 1.0]).all())
    assert b.max(0).values.dtype == cg.bool and int(b.min(0).indices) == 1


def test_shapes_keepdim_and_methods():
    x = cg.from_numpy(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert x.sum((0, 2)).shape == (3,) and x.sum([0, 2], keepdim=True).shape == (1, 3, 1)
    assert x.sum(()).shape == () and x.amax(()).shape == ()
    assert x.argmax(keepdim=True).shape == (1, 1, 1) and int(x.argmax()) == 23
    assert cg.tensor(5.0).sum(0).shape == () and cg.tensor(5.0).sum(-1, True).shape == ()
    assert int(cg.tensor(5.0).argmax(0)) == 0
    r = x.max(1)
    assert isinstance(r, tuple) and r.values.shape == (2, 4) and r.indices.dtype == cg.int64
    assert "torch.return_types.max(" in repr(type(r)("v", "i"))
    assert cg.max(x, cg.zeros(4)).shape == (2, 3, 4)  # a tensor second argument: maximum
    for name in R.__all__:  # one definition (the function may add PyTorch's out=)
        assert getattr(cg.Tensor, name) is getattr(R, name)
        fn = getattr(cg, name)
        assert getattr(R, name) in (fn, getattr(fn, "__wrapped__", None))


def test_errors_like_pytorch():
    x = cg.zeros(2, 3)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range "
                                         r"of \[-2, 1\], but got 5\)"):
        x.sum(5)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.softmax(-3)
    with pytest.raises(IndexError, match=r"\[-1, 0\], but got 1"):
        cg.tensor(3.0).sum(1)
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times in the list of dims"):
        x.sum((0, -2))
    with pytest.raises(RuntimeError, match=r"mean\(\): could not infer output dtype. Input "
                                           "dtype must be either a floating point or complex "
                                           "dtype. Got: Long"):
        cg.tensor([1, 2]).mean()
    with pytest.raises(RuntimeError, match="std and var only support floating point"):
        cg.tensor([1, 2]).var()
    with pytest.raises(NotImplementedError, match="softmax_lastdim_kernel_impl"):
        cg.tensor([1, 2]).softmax(0)
    with pytest.raises(RuntimeError, match=r"argmax\(\): does not support bool input"):
        cg.tensor([True]).argmax()
    with pytest.raises(RuntimeError, match="linalg.vector_norm: Expected a floating point"):
        cg.tensor([1, 2]).norm()
    with pytest.raises(RuntimeError, match=r"max\(\): Expected reduction dim to be specified "
                                           r"for input.numel\(\) == 0. Specify the reduction "
                                           "dim with the 'dim' argument."):
        cg.zeros(0).max()
    with pytest.raises(IndexError, match=r"max\(\): Expected reduction dim 0 to have non-zero "
                                         "size."):
        cg.zeros(0, 3).max(0)
    with pytest.raises(IndexError, match=r"argmax\(\): Expected reduction dim to be specified "
                                         r"for input.numel\(\) == 0."):
        cg.zeros(0, 3).argmax()
    with pytest.raises(RuntimeError, match=r"amin\(\): Expected reduction dim to be specified"):
        cg.zeros(0, 3).amin()
    with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim 0 to have"):
        cg.zeros(0, 3).amax(0)
    with pytest.raises(TypeError):
        x.argmax((0, 1))
    with pytest.raises(TypeError):
        x.sum(1.0)
    assert x.max(1).values.shape == (2,) and cg.zeros(0, 3).max(1).values.shape == (0,)


def test_expanded_inputs_are_read_in_place():
    base = cg.from_numpy(np.arange(7, dtype=np.float32))
    t = base.expand(5000, 7)
    with cg.profile() as p:
        r = t.sum(0)
    assert all(k.startswith("cg_sum") for k in p.kernels), p.kernels
    np.testing.assert_allclose(r.numpy(), np.arange(7) * 5000.0)
    tt = base[:, None].expand(7, 5000)
    with cg.profile() as p:
        r = tt.amax(1)
        s = tt.softmax(1)
    assert all(k.startswith(("cg_amax", "cg_softmax")) for k in p.kernels), p.kernels
    assert r.numpy().tolist() == list(range(7))
    np.testing.assert_allclose(s.numpy(), np.full((7, 5000), 1 / 5000), rtol=1e-5)


# --- PyTorch parity -----------------------------------------------------------------------


def test_torch_parity():
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 6, 5)).astype(np.float32)
    a[1, 2, 3] = np.nan
    ta, ca = torch.from_numpy(a), cg.from_numpy(a)
    ints = rng.integers(-3, 4, (4, 6, 5)).astype(np.int32)
    ti, ci = torch.from_numpy(ints), cg.from_numpy(ints)
    calls = [
        ("sum", (1,), {}), ("sum", ((0, 2),), {"keepdim": True}), ("mean", (-1,), {}),
        ("prod", (2,), {}), ("amax", ((0, 1),), {}), ("amin", (), {}), ("argmax", (), {}),
        ("argmin", (1,), {"keepdim": True}), ("var", (1,), {}), ("std", ((0, 2),), {}),
        ("var", (2,), {"correction": 0}), ("logsumexp", (0,), {}), ("softmax", (1,), {}),
        ("log_softmax", (-1,), {}), ("cumsum", (1,), {}), ("all", (1,), {}), ("any", (), {}),
        ("norm", (), {}), ("norm", (3, 1), {}),
    ]
    for name, args, kw in calls:
        for t, c in ((ta, ca), (ti, ci)):
            try:
                exp = getattr(t, name)(*args, **kw)
            except (RuntimeError, IndexError, TypeError, NotImplementedError) as e:
                with pytest.raises(type(e)):
                    getattr(c, name)(*args, **kw)
                continue
            got = getattr(c, name)(*args, **kw)
            assert str(exp.dtype).split(".")[-1] == got.dtype.name, (name, exp.dtype)
            np.testing.assert_allclose(got.numpy(), exp.numpy(), rtol=1e-5, atol=1e-5,
                                       equal_nan=True, err_msg=f"{name}{args}{kw}")
    for name in ("max", "min"):
        e, g = getattr(ta, name)(1), getattr(ca, name)(1)
        np.testing.assert_array_equal(g.indices.numpy(), e.indices.numpy())
        np.testing.assert_allclose(g.values.numpy(), e.values.numpy(), equal_nan=True)
        assert math.isnan(float(getattr(ca, name)())) == math.isnan(float(getattr(ta, name)()))
    for f in (lambda m: m.zeros(0).max(), lambda m: m.zeros(0, 2).argmax(),
              lambda m: m.zeros(2).sum(2), lambda m: m.tensor([1, 2]).mean()):
        with pytest.raises(Exception) as te:
            f(torch)
        with pytest.raises(type(te.value), match=str(te.value)[:40].replace("(", r"\(").replace(
                ")", r"\)").replace("[", r"\[").replace(".", r"\.")):
            f(cg)


def test_var_gradient_without_degrees_of_freedom():
    """var/std over a size-1 dim (correction 1) are NaN, and so are their gradients (as in
    PyTorch), not a Python ZeroDivisionError."""
    for name in ("var", "std"):
        x = cg.tensor([[1.0], [2.0]], requires_grad=True)
        y = getattr(x, name)(1)
        assert np.isnan(y.detach().numpy()).all()
        y.sum().backward()
        assert np.isnan(x.grad.numpy()).all()


def test_softmax_of_a_row_holding_inf_is_nan(kernel_variant):
    """exp(inf - inf) is NaN, so is every element of the row (PyTorch, numpy); the GPU
    variant's online sum added 1 for the new maximum instead."""
    for v in ([math.inf, 0.0, 0.0, 0.0, 0.0], [0.0, 2.0, math.inf]):
        x = cg.tensor(v)
        assert np.isnan(cg.log_softmax(x, 0).numpy()).all()
        assert np.isnan(cg.softmax(x, 0).numpy()).all()
    close = cg.log_softmax(cg.tensor([-math.inf, 0.0, 1.0]), 0).numpy()
    np.testing.assert_allclose(close, [-math.inf, -1.3132616, -0.3132616], rtol=1e-6)
