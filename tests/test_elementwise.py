"""Elementwise ops against numpy: every registry row on contiguous, transposed, sliced,
broadcast, 0-d and empty inputs across dtypes; promotion and error cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import clgraph as cg
from clgraph.ops.registry import REGISTRY, apply
from op_cases import CASES, NOT_CASED, Case

# rows that only other ops and the autograd use, not public functions
INTERNAL = {"threshold_backward", "binary_cross_entropy"}
TOL = {"float16": (2e-3, 2e-3), "float32": (1e-5, 1e-5), "float64": (1e-12, 1e-12)}


def host(shape, dtype, case: Case, rng, role=0):
    """Random host data of numpy dtype ``dtype`` respecting the case's domain."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    lo, hi = case.low, case.high
    if np.dtype(dtype).kind in "iu":
        lo, hi = (0, 6) if np.dtype(dtype).kind == "u" else (-6, 6)
        if case.op == "pow":
            lo, hi = 0, 4
        v = rng.integers(lo, hi, size=shape).astype(dtype)
        if role == 1 and case.nonzero_b:
            v[v == 0] = 1
        return v
    v = rng.uniform(lo, hi, size=shape)
    if role == 1 and case.nonzero_b:
        v = np.where(np.abs(v) < 0.25, 0.25, v)
    return v.astype(dtype)


def operands(case: Case, shape, dtype, rng) -> list:
    """The case's operands of one shape and dtype (where's condition is bool)."""
    return [host(shape, "bool" if case.op == "where" and i == 0 else dtype, case, rng, i)
            for i in range(case.nargs)]


def reference(case: Case, arrays, out_dtype):
    ref = REGISTRY[case.op].ref
    with np.errstate(all="ignore"):
        if case.op == "to_dtype":
            return arrays[0].astype(np.float32)
        if case.op == "where":
            return np.where(arrays[0], arrays[1], arrays[2])
        wide = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
        r = ref(*wide)
    return np.asarray(r)


def run(case: Case, tensors):
    if case.op == "to_dtype":
        return tensors[0].to(cg.float32)
    if case.op in INTERNAL or case.op.startswith("special_"):  # torch.special's rows
        return apply(REGISTRY[case.op], *tensors)
    return getattr(cg, case.op)(*tensors)  # every other row is public


def _finite_max(a) -> float:
    a = np.abs(np.asarray(a, dtype=np.float64))
    return float(np.max(a[np.isfinite(a)], initial=0))


def check(case, arrays, tensors):
    out = run(case, tensors)
    exp = reference(case, arrays, None)
    got = out.numpy()
    assert got.shape == exp.shape, (case.op, got.shape, exp.shape)
    if got.dtype.kind == "f":
        atol, rtol = TOL.get(str(got.dtype), (1e-5, 1e-5))
        atol = max(atol, case.atol if got.dtype == np.float32 else atol)
        np.testing.assert_allclose(got.astype(np.float64), exp.astype(np.float64), rtol=rtol,
                                   atol=atol * max(1.0, _finite_max(exp)),
                                   err_msg=f"{case.op} {[a.dtype for a in arrays]}")
    else:
        np.testing.assert_array_equal(got, exp.astype(got.dtype), err_msg=case.op)
    return out


_BOOL_RESULT = {"eq", "ne", "lt", "le", "gt", "ge", "isnan", "logical_not", "logical_and",
                "logical_or", "logical_xor", "signbit"}
_FLOAT_RESULT = {"exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh",
                 "sigmoid", "erf", "reciprocal", "div", "atan2", "exp2", "log2", "log10", "tan",
                 "atan", "asin", "acos", "sinh", "cosh", "erfc", "erfinv", "lgamma", "digamma",
                 "xlogy", "copysign"}


def result_dtype(op: str, d: str) -> str:
    """PyTorch's result dtype of ``op`` on operands that all have dtype ``d``."""
    if op in _BOOL_RESULT:
        return "bool"
    if op == "to_dtype" or op in _FLOAT_RESULT and d not in ("float16", "float32", "float64"):
        return "float32"  # the default dtype
    return d


def _ids(c):
    return c.op


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_contiguous_all_dtypes(case):
    rng = np.random.default_rng(0)
    for d in case.dtypes:
        shapes = [(3, 37)] * case.nargs
        arrays = operands(case, shapes[0], d, rng)
        tensors = [cg.from_numpy(a) for a in arrays]
        out = check(case, arrays, tensors)
        assert out.shape == tuple(shapes[0])
        assert str(out.dtype) == f"torch.{result_dtype(case.op, d)}", (case.op, d, out.dtype)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_views_and_broadcast(case):
    """Transposed, sliced (stepped), broadcast and 0-d operands read in place."""
    rng = np.random.default_rng(1)
    d = case.dtypes[0]
    big = operands(case, (6, 10), d, rng)
    tens = [cg.from_numpy(a) for a in big]
    # transposed
    check(case, [a.T for a in big], [t.t() for t in tens])
    # stepped slices
    check(case, [a[1::2, ::3] for a in big], [t[1::2, ::3] for t in tens])
    if case.nargs >= 2:
        # broadcast: a row against a column, and against the full matrix
        rows = [a[:1, :] if i % 2 else a[:, :1] for i, a in enumerate(big)]
        check(case, rows, [cg.from_numpy(np.ascontiguousarray(r)) for r in rows])
        zero = [a[0, 0] if i == 1 else a for i, a in enumerate(big)]
        check(case, [np.asarray(z) for z in zero], [cg.from_numpy(np.asarray(z)) for z in zero])
    # 0-d and empty
    check(case, [np.asarray(a[0, 0]) for a in big], [cg.from_numpy(np.asarray(a[0, 0])) for a in big])
    empty = [a[:0] for a in big]
    out = run(case, [cg.from_numpy(np.ascontiguousarray(e)) for e in empty])
    assert out.shape == (0, 10)


# Large operands that walk the output transposed go through the tiled transpose kernel
# first (ops/elementwise.py, TILE_MIN elements and up): each permutation that collapses to
# a transposition, with offsets, steps and odd sizes, in every storage dtype.
_PERMS = [
    ((37, 1031), lambda a: a.T, lambda t: t.t()),                                # matrix
    ((5, 67, 9, 13), lambda a: a.transpose(0, 2, 3, 1),
     lambda t: t.permute(0, 2, 3, 1)),                                           # NCHW -> NHWC
    ((5, 9, 13, 67), lambda a: a.transpose(0, 3, 1, 2),
     lambda t: t.permute(0, 3, 1, 2)),                                           # NHWC -> NCHW
    ((6, 7, 33, 35), lambda a: a.transpose(1, 0, 3, 2),
     lambda t: t.permute(1, 0, 3, 2)),                                           # two leading
    ((45, 19, 47), lambda a: a.transpose(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    ((90, 2100), lambda a: a[1::2, 3:].T, lambda t: t[1::2, 3:].t()),          # steps, offset
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int32",
                                   "int64", "uint8", "bool"])
def test_large_permuted_copies(dtype):
    rng = np.random.default_rng(3)
    for shape, npf, cgf in _PERMS:
        a = rng.standard_normal(shape) * 50
        if dtype == "bool":
            a = a > 0
        elif dtype != "bfloat16":
            a = a.astype(dtype)
        t = cg.tensor(a, dtype=getattr(cg, dtype))
        ref = npf(t.to(cg.float64).numpy() if dtype == "bfloat16" else a)
        v = cgf(t)
        assert v.numel() >= cg.ops.elementwise.TILE_MIN
        with cg.profile() as p:
            assert v.contiguous().is_contiguous()
        assert p.kernels == ["transpose"], p.kernels
        for y in (v.contiguous(), v.clone(), v.to(cg.float64), v.to(cg.float32)):
            assert y.shape == ref.shape
            got = y.to(cg.float64).numpy() if y.dtype == cg.bfloat16 else y.numpy()
            np.testing.assert_array_equal(got, ref.astype(got.dtype), err_msg=f"{dtype} {shape}")


def test_large_transposed_operands():
    """Binary ops, out=, in-place and autograd with transposed operands past TILE_MIN."""
    rng = np.random.default_rng(4)
    an = rng.standard_normal((300, 257)).astype(np.float32)
    bn = rng.standard_normal((257, 300)).astype(np.float32)
    a, b = cg.tensor(an), cg.tensor(bn)
    with cg.profile() as p:
        np.testing.assert_allclose((a + b.t()).numpy(), an + bn.T, rtol=1e-6)
    assert p.kernels[0] == "transpose" and p.launches == 2, p.kernels
    np.testing.assert_allclose((b.t() * b.t()).numpy(), bn.T * bn.T, rtol=1e-6)
    np.testing.assert_allclose(cg.where(a > 0, b.t(), a).numpy(),
                               np.where(an > 0, bn.T, an), rtol=1e-6)
    out = cg.empty(300, 257)
    cg.sub(a, b.t(), out=out)
    np.testing.assert_allclose(out.numpy(), an - bn.T, rtol=1e-6)
    # an in-place op on a transposed view and one reading a transposed view
    c = cg.tensor(an.copy())
    c.mul_(b.t())
    np.testing.assert_allclose(c.numpy(), an * bn.T, rtol=1e-6)
    d = cg.tensor(bn.copy())
    d.t().add_(a)
    np.testing.assert_allclose(d.numpy(), bn + an.T, rtol=1e-6)
    # gradients through the copy
    x = cg.tensor(bn, requires_grad=True)
    w = cg.tensor(an, requires_grad=True)
    (x.t().contiguous() * w).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), an.T, rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), bn.T, rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_compiled_equals_eager(case):
    """Each row inside a traced function, fused with a neighbour, replays eager's values."""
    rng = np.random.default_rng(5)
    d = case.dtypes[0]
    arrays = operands(case, (4, 33), d, rng)
    tensors = [cg.from_numpy(a) for a in arrays]

    def f(*ts):
        return run(case, list(ts)).to(cg.float64) * 2

    c = cg.compile(f)
    c(*tensors)
    np.testing.assert_allclose(c(*tensors).numpy(), f(*tensors).numpy(), rtol=1e-6,
                               err_msg=case.op)
    assert all(e.plan is not None for e in c._entries.values()), case.op


def test_every_elementwise_row_has_a_case():
    cased = {c.op for c in CASES} | NOT_CASED
    rows = {name for name, op in REGISTRY.items() if op.family == "elementwise"}
    assert rows - cased == set(), f"elementwise rows without a test case: {rows - cased}"


@pytest.mark.parametrize(
    "a,b",
    [("int64", 2.5), ("int32", 2), ("bool", 1), ("uint8", -1), ("float16", 2.0),
     ("int8", True)],
)
def test_scalar_promotion_like_pytorch(a, b):
    x = cg.ones(3, dtype=getattr(cg, a))
    r = x + b
    exp = {("int64", 2.5): cg.float32, ("int32", 2): cg.int32, ("bool", 1): cg.int64,
           ("uint8", -1): cg.uint8, ("float16", 2.0): cg.float16, ("int8", True): cg.int8}
    assert r.dtype == exp[(a, b)]


@pytest.mark.parametrize(
    "a,b,out",
    [("int32", "int64", "int64"), ("uint8", "int8", "int16"), ("bool", "int8", "int8"),
     ("float16", "float32", "float32"), ("int64", "float16", "float16"),
     ("float32", "float64", "float64")],
)
def test_tensor_promotion(a, b, out):
    x = cg.ones(2, dtype=getattr(cg, a))
    y = cg.ones(2, dtype=getattr(cg, b))
    assert (x + y).dtype == getattr(cg, out)
    assert cg.promote_types(getattr(cg, a), getattr(cg, b)) == getattr(cg, out)


def test_zero_dim_tensor_does_not_upcast():
    x = cg.ones(3, dtype=cg.float16)
    y = cg.tensor(2.0, dtype=cg.float64)
    assert (x * y).dtype == cg.float16
    i = cg.ones(3, dtype=cg.int32)
    assert (i + cg.tensor(5)).dtype == cg.int32
    assert (i + cg.tensor(5.0)).dtype == cg.float32


def test_true_division_of_ints_is_float():
    r = cg.tensor([1, 2, 3]) / cg.tensor([2, 2, 2])
    assert r.dtype == cg.float32
    np.testing.assert_allclose(r.numpy(), [0.5, 1.0, 1.5])


def test_integer_division_by_zero_does_not_crash():
    a = cg.tensor([5, -5, 7])
    b = cg.tensor([0, 0, 2])
    r = (a // b).numpy()
    assert r[2] == 3
    assert (cg.tensor([-(2**63)]) // cg.tensor([-1])).numpy().shape == (1,)


def test_shape_mismatch_message():
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of "
                       r"tensor b \(4\) at non-singleton dimension 1"):
        cg.ones(2, 3) + cg.ones(2, 4)
    # PyTorch names the last mismatching dimension, comparing from the right
    with pytest.raises(RuntimeError, match=r"tensor a \(3\) must match the size of tensor b "
                       r"\(5\) at non-singleton dimension 1"):
        cg.ones(2, 3) + cg.ones(4, 5)
    with pytest.raises(RuntimeError, match=r"tensor a \(2\) must match the size of tensor b "
                       r"\(3\) at non-singleton dimension 0"):
        cg.ones(2, 1) + cg.ones(3, 4)
    assert cg.broadcast_shapes((2, 1), (1, 3), (3,)) == (2, 3)


def test_inplace_into_view_and_cast_errors():
    x = cg.zeros(4, 4)
    x.t()[1:3].add_(1)
    exp = np.zeros((4, 4), np.float32)
    exp.T[1:3] += 1
    np.testing.assert_array_equal(x.numpy(), exp)
    i = cg.zeros(3, dtype=cg.int64)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                       "output type Long"):
        i.add_(1.5)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        cg.zeros(3).add_(cg.ones(2, 3))


def test_inplace_operators_and_bool_ops():
    x = cg.arange(6).reshape(2, 3)
    x += 1
    x *= 2
    np.testing.assert_array_equal(x.numpy(), (np.arange(6).reshape(2, 3) + 1) * 2)
    m = (x > 4) & ~(x > 10)
    np.testing.assert_array_equal(m.numpy(), (x.numpy() > 4) & ~(x.numpy() > 10))
    assert m.dtype == cg.bool
    with pytest.raises(RuntimeError, match="Subtraction"):
        m - m
    with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
        cg.ones(2) & cg.ones(2)


def test_clamp_and_where_and_pow():
    x = cg.tensor([-2.0, -0.5, 0.5, 2.0, float("nan")])
    np.testing.assert_array_equal(
        x.clamp(-1, 1).numpy(), np.array([-1, -0.5, 0.5, 1, np.nan], np.float32)
    )
    np.testing.assert_array_equal(x.clamp(min=0).numpy()[:4], [0, 0, 0.5, 2])
    np.testing.assert_array_equal(cg.where(x > 0, x, 0.0).numpy()[:4], [0, 0, 0.5, 2])
    np.testing.assert_allclose((x[:4] ** 2).numpy(), [4, 0.25, 0.25, 4])
    np.testing.assert_allclose((2 ** cg.tensor([1.0, 3.0])).numpy(), [2, 8])
    assert (cg.tensor([2, 3]) ** 2).dtype == cg.int64
    assert cg.maximum(cg.tensor([1.0, float("nan")]), cg.tensor([2.0, 0.0])).numpy()[1] != 0


def test_relu_propagates_nan_and_fp16_rounds_on_store():
    x = cg.tensor([float("nan"), -1.0, 3.0])
    r = x.relu().numpy()
    assert np.isnan(r[0]) and r[1] == 0 and r[2] == 3
    h = cg.tensor([1.0, 2.0, 3.0], dtype=cg.float16) / 3
    np.testing.assert_array_equal(h.numpy(), (np.array([1, 2, 3], np.float16) / np.float16(3)))


def test_mixing_devices_names_both(monkeypatch):
    devs = cg.cl.devices()
    if len(devs) < 2:
        pytest.skip("one OpenCL device (set POCL_DEVICES='pthread pthread' for two)")
    a = cg.ones(2, device="cl:0")
    b = cg.ones(2, device="cl:1")
    with pytest.raises(RuntimeError, match="cl:0.*cl:1"):
        a + b


shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)


@st.composite
def broadcast_pair(draw):
    s = draw(shapes)
    t = list(s[draw(st.integers(0, len(s))):])
    t = [1 if draw(st.booleans()) else n for n in t]
    if draw(st.booleans()):
        return s, tuple(t)
    return tuple(t), s


@given(broadcast_pair(), st.sampled_from(["add", "mul", "maximum", "lt", "sub"]),
       st.sampled_from(["float32", "int64", "float16"]), st.booleans())
def test_broadcast_hypothesis(pair, op, dtype, transpose):
    rng = np.random.default_rng(0)
    case = Case(op, 2)
    a = host(pair[0], dtype, case, rng)
    b = host(pair[1], dtype, case, rng, 1)
    ta, tb = cg.from_numpy(a), cg.from_numpy(b)
    if transpose and a.ndim >= 2:
        a = np.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1)
        ta = cg.from_numpy(np.ascontiguousarray(a.swapaxes(0, 1))).transpose(0, 1)
    check(case, [a, b], [ta, tb])


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("sa,sb", [((6, 16), (16,)), ((6, 16), (6, 1)), ((3, 5, 32), (5, 1)),
                                   ((4, 24), (1, 24)), ((7, 40), (40,))])
def test_broadcast_rows_vector_path(dtype, sa, sb):
    """Row- and column-broadcast operands (bias adds) on the vectorized path."""
    rng = np.random.default_rng(5)
    case = Case("add", 2)
    a, b = host(sa, dtype, case, rng), host(sb, dtype, case, rng, 1)
    ta, tb = cg.from_numpy(a), cg.from_numpy(b)
    for op in ("add", "mul", "maximum"):
        check(Case(op, 2), [a, b], [ta, tb])
        check(Case(op, 2), [b, a], [tb, ta])
    # a strided (sliced) row operand too
    check(Case("sub", 2), [a[:, ::1], a[:1]], [ta, ta[:1]])


def test_round_with_decimals():
    x = np.array([1.2345, 2.5, -0.555, 125.0, 0.125, -37.5], np.float32)
    for d in (1, 2, -1, -2):
        want = (np.round(x * np.float32(10.0 ** d)) / np.float32(10.0 ** d) if d > 0 else
                np.round(x / np.float32(10.0 ** -d)) * np.float32(10.0 ** -d))
        np.testing.assert_array_equal(cg.tensor(x).round(decimals=d).numpy(), want)
    t = cg.tensor(x)
    t.round_(decimals=1)
    np.testing.assert_allclose(t.numpy(), np.round(x * 10) / 10, rtol=1e-6)
    assert cg.round(cg.tensor([3, 4])).tolist() == [3, 4]
    with pytest.raises(TypeError, match="decimals"):
        cg.tensor(x).round(decimals=1.5)


def test_writes_into_overlapping_views_raise():
    a = cg.zeros(1, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        a[:, :1].expand(2, 3).add_(1)
    with pytest.raises(RuntimeError, match=r"shape \[2, 3\], stride \[0, 1\]"):
        cg.add(cg.ones(2, 3), 1, out=cg.zeros(3).expand(2, 3))
    assert a.tolist() == [[0.0, 0.0, 0.0]]


def test_rows_pytorch_does_not_define_on_bool_raise_its_errors():
    b = cg.tensor([True, False])
    for f in (lambda: b // True, lambda: b % True, lambda: b.abs(), lambda: b.floor(),
              lambda: b.ceil(), lambda: b.round()):
        with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
            f()
    with pytest.raises(RuntimeError, match="Boolean inputs not supported for relu"):
        b.relu()
    assert (b.to(cg.int64) // 1).tolist() == [1, 0] and (b / True).tolist() == [1.0, 0.0]


def test_integer_division_by_a_python_zero_raises():
    """PyTorch's ZeroDivisionError for an integer tensor divided by the number 0, in every
    spelling; float tensors give inf and nan, a tensor divisor is not read back."""
    x = cg.arange(3)
    calls = [lambda: x // 0, lambda: x % 0, lambda: cg.fmod(x, 0), lambda: x.remainder_(0),
             lambda: cg.div(x, 0, rounding_mode="floor"),
             lambda: cg.div(x, 0, rounding_mode="trunc")]
    for call in calls:
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            call()
    np.testing.assert_array_equal((x.float() // 0).numpy(), [np.nan, np.inf, np.inf])
    assert (x // 2).tolist() == [0, 0, 1] and (x / 0).isinf().tolist() == [False, True, True]
