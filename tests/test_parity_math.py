"""PyTorch parity of the math functions added together: inverse hyperbolics, fmax/fmin,
gcd/lcm, float_power, sinc, sgn, ldexp, frexp, nextafter, i0, polygamma, mvlgamma, the
infinity tests, in-place comparison/logical/bitwise methods, torch-level in-place functions
and the activations torch exposes (selu, celu, threshold, hardshrink, prelu, rrelu, rsub).
Values against torch where installed (numpy otherwise), gradients by float64 gradcheck."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from conftest import close, torch_or_skip, uniform_leaf

import clgraph as cg
from clgraph.autograd import gradcheck, gradgradcheck

leaf = functools.partial(uniform_leaf, salt=29)
SHAPE = (3, 5, 7)


def _pair(a: np.ndarray):
    """The same values as a clgraph tensor (a transposed view: strided kernels) and a torch
    one."""
    torch = torch_or_skip()
    x = cg.from_numpy(np.ascontiguousarray(a.T)).permute(*reversed(range(a.ndim)))
    return x, torch.from_numpy(a.copy())


def _check(got, exp, **kw):
    assert str(got.dtype) == str(exp.dtype), (got.dtype, exp.dtype)
    close(got, exp.numpy(), equal_nan=True, **kw)


# --- unary functions: values, aliases, promotion -----------------------------------------

UNARY = [("acosh", 1.0, 5.0), ("asinh", -4.0, 4.0), ("atanh", -0.95, 0.95),
         ("arccosh", 1.0, 5.0), ("arcsinh", -4.0, 4.0), ("arctanh", -0.95, 0.95),
         ("sinc", -3.0, 3.0), ("i0", -30.0, 30.0), ("sgn", -2.0, 2.0), ("square", -3.0, 3.0)]


@pytest.mark.parametrize("name,low,high", UNARY)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_like_torch(name, low, high, dtype):
    torch = torch_or_skip()
    a = np.random.default_rng(1).uniform(low, high, (5, 3, 4)).astype(dtype)
    a.flat[0] = 0.0 if low < 0 else 1.0
    x, tx = _pair(a)
    _check(getattr(cg, name)(x), getattr(torch, name)(tx), rtol=2e-6 if dtype == "float32"
           else 1e-12)
    _check(getattr(x, name)(), getattr(tx, name)(), rtol=1e-5)


@pytest.mark.parametrize("name", ["acosh", "asinh", "atanh", "sinc", "i0"])
def test_unary_integers_give_the_default_float(name):
    torch = torch_or_skip()
    a = np.array([[0, 1, 2], [3, -1, 5]], dtype=np.int64)
    _check(getattr(cg, name)(cg.from_numpy(a)), getattr(torch, name)(torch.from_numpy(a)),
           rtol=1e-6)


@pytest.mark.parametrize("name,low,high", [u for u in UNARY if u[0] != "square"] +
                         [("square", -3.0, 3.0)])
def test_unary_in_place_method_and_function(name, low, high):
    torch = torch_or_skip()
    a = np.random.default_rng(2).uniform(low, high, SHAPE).astype(np.float32)
    x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    assert getattr(x, name + "_")() is x
    getattr(tx, name + "_")()
    close(x, tx.numpy(), rtol=2e-6, equal_nan=True)
    if hasattr(torch, name + "_"):
        y = cg.from_numpy(a.copy())
        assert getattr(cg, name + "_")(y) is y
        close(y, tx.numpy(), rtol=2e-6, equal_nan=True)


def test_special_values():
    torch = torch_or_skip()
    a = np.array([0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 1e-30, 700.0])
    for name in ("acosh", "asinh", "atanh", "sinc", "i0", "sgn", "isposinf", "isneginf",
                 "isreal"):
        _check(getattr(cg, name)(cg.from_numpy(a)), getattr(torch, name)(torch.from_numpy(a)),
               rtol=1e-12)


def test_isposinf_isneginf_isreal_on_integers_and_out():
    torch = torch_or_skip()
    for d in ("int64", "int32", "uint8", "bool"):
        a = np.array([0, 1, 1], dtype=d)
        for name in ("isposinf", "isneginf", "isreal"):
            _check(getattr(cg, name)(cg.from_numpy(a)),
                   getattr(torch, name)(torch.from_numpy(a)))
    out = cg.empty(3, dtype=cg.bool)
    r = cg.isposinf(cg.tensor([math.inf, 1.0, -math.inf]), out=out)
    assert r is out and out.tolist() == [True, False, False]
    assert cg.isneginf(cg.tensor([math.inf, 1.0, -math.inf])).tolist() == [False, False, True]


# --- binary functions: broadcasting, promotion, NaN rules --------------------------------


def test_fmax_fmin_ignore_nan_and_broadcast():
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    a = rng.uniform(-2, 2, (3, 1, 7))
    b = rng.uniform(-2, 2, (5, 1))
    a[0, 0, :3] = math.nan
    b[1, 0] = math.nan
    for name in ("fmax", "fmin"):
        for da, db in (("float64", "float64"), ("float32", "int64"), ("int32", "int8")):
            p, q = (v if d.startswith("float") else np.nan_to_num(v).astype(d)
                    for v, d in ((a, da), (b, db)))
            x, tx = cg.from_numpy(p.astype(da)), torch.from_numpy(p.astype(da))
            y, ty = cg.from_numpy(q.astype(db)), torch.from_numpy(q.astype(db))
            _check(getattr(cg, name)(x, y), getattr(torch, name)(tx, ty))
            _check(getattr(x, name)(y), getattr(tx, name)(ty))
        both = np.array([math.nan, 1.0])
        _check(getattr(cg, name)(cg.from_numpy(both), cg.from_numpy(both[::-1].copy())),
               getattr(torch, name)(torch.from_numpy(both), torch.from_numpy(both[::-1].copy())))


@pytest.mark.parametrize("d", ["int64", "int32", "int16", "int8", "uint8"])
def test_gcd_lcm_like_torch(d):
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    lo = 0 if d == "uint8" else -12
    a = rng.integers(lo, 13, (3, 5, 7)).astype(d)
    b = rng.integers(lo, 13, (5, 1)).astype(d)
    a.flat[0] = b.flat[0] = 0
    x, tx = _pair(a)
    y, ty = cg.from_numpy(b), torch.from_numpy(b)
    for name in ("gcd", "lcm"):
        _check(getattr(cg, name)(x, y), getattr(torch, name)(tx, ty))
        z, tz = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
        getattr(z, name + "_")(y)
        getattr(tz, name + "_")(ty)
        _check(z, tz)


def test_gcd_lcm_promote_mixed_integers():
    torch = torch_or_skip()
    a, b = np.array([12, -18, 7], dtype=np.int8), np.array([[8], [30]], dtype=np.int64)
    for name in ("gcd", "lcm"):
        _check(getattr(cg, name)(cg.from_numpy(a), cg.from_numpy(b)),
               getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(b)))


@pytest.mark.parametrize("name", ["gcd", "lcm"])
@pytest.mark.parametrize("d", ["float32", "float64", "bool"])
def test_gcd_lcm_refuse_floats_and_bool_naming_the_dtype(name, d):
    torch = torch_or_skip()
    a = np.ones(3, dtype=d)
    with pytest.raises(NotImplementedError) as want:
        getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(a))
    with pytest.raises(NotImplementedError, match=str(want.value).replace('"', '.')):
        getattr(cg, name)(cg.from_numpy(a), cg.from_numpy(a))


def test_float_power_computes_in_double():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    a = rng.uniform(0.1, 3, (3, 5)).astype(np.float32)
    e = rng.uniform(-2, 2, (5,))
    for x, y in ((a, e), (a, 2), (a.astype(np.int64), 3), (2.5, e), (a, e.astype(np.float16))):
        cx = cg.from_numpy(x) if isinstance(x, np.ndarray) else x
        tx = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
        cy = cg.from_numpy(y) if isinstance(y, np.ndarray) else y
        ty = torch.from_numpy(y) if isinstance(y, np.ndarray) else y
        _check(cg.float_power(cx, cy), torch.float_power(tx, ty), rtol=1e-12)
    d = cg.from_numpy(a.astype(np.float64))
    td = torch.from_numpy(a.astype(np.float64))
    d.float_power_(2.5)
    td.float_power_(2.5)
    _check(d, td, rtol=1e-12)
    with pytest.raises(RuntimeError, match="float_power_ has dtype Float but the operation's "
                                           "result requires dtype Double"):
        cg.from_numpy(a).float_power_(2)


def test_ldexp_and_in_place_forms():
    torch = torch_or_skip()
    a = np.random.default_rng(6).uniform(-3, 3, (4, 5)).astype(np.float32)
    e = np.arange(-2, 3, dtype=np.int64)
    x, tx = _pair(a)
    _check(cg.ldexp(x, cg.from_numpy(e)), torch.ldexp(tx, torch.from_numpy(e)))
    _check(cg.ldexp(cg.from_numpy(e), cg.from_numpy(e)),
           torch.ldexp(torch.from_numpy(e), torch.from_numpy(e)))
    y, ty = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    assert cg.ldexp_(y, cg.from_numpy(e)) is y
    torch.ldexp_(ty, torch.from_numpy(e))
    _check(y, ty)


def test_nextafter():
    torch = torch_or_skip()
    for d in ("float32", "float64"):
        a = np.array([0.0, 1.0, -1.0, 1.0, math.inf, math.nan], dtype=d)
        b = np.array([1.0, 2.0, -2.0, 1.0, 0.0, 0.0], dtype=d)
        _check(cg.nextafter(cg.from_numpy(a), cg.from_numpy(b)),
               torch.nextafter(torch.from_numpy(a), torch.from_numpy(b)), rtol=0)
        x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
        x.nextafter_(cg.from_numpy(b))
        tx.nextafter_(torch.from_numpy(b))
        _check(x, tx, rtol=0)
    with pytest.raises(NotImplementedError, match="\"nextafter_cpu\" not implemented for "
                                                  "'Long'"):
        cg.nextafter(cg.tensor([1]), cg.tensor([2]))


@pytest.mark.parametrize("d", ["float16", "bfloat16"])
def test_nextafter_narrow_floats(d):
    """One step of float16's / bfloat16's own spacing (not float's): below a power of two,
    through the subnormals, from 0 and from inf."""
    torch = torch_or_skip()
    fi = torch.finfo(getattr(torch, d))
    vals = [0.0, -0.0, 1.0, -2.0, 0.5, 3.0, fi.tiny, -fi.tiny, fi.tiny / 8, fi.max, -7.5,
            math.inf, -math.inf, math.nan]
    ta = torch.tensor(vals, dtype=getattr(torch, d))
    for target in (math.inf, -math.inf, 0.0, math.nan):
        tb = torch.full_like(ta, target)
        got = cg.nextafter(cg.tensor(ta.float().numpy(), dtype=getattr(cg, d)),
                           cg.tensor(tb.float().numpy(), dtype=getattr(cg, d)))
        assert got.dtype == getattr(cg, d)
        np.testing.assert_array_equal(got.float().numpy(),
                                      torch.nextafter(ta, tb).float().numpy())


def test_atan2_alias_and_in_place():
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    a, b = rng.uniform(-2, 2, (3, 7)), rng.uniform(-2, 2, (7,))
    _check(cg.arctan2(cg.from_numpy(a), cg.from_numpy(b)),
           torch.arctan2(torch.from_numpy(a), torch.from_numpy(b)))
    x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    assert x.atan2_(cg.from_numpy(b)) is x
    tx.atan2_(torch.from_numpy(b))
    _check(x, tx)
    x.arctan2_(cg.from_numpy(b))
    tx.arctan2_(torch.from_numpy(b))
    _check(x, tx)


# --- frexp --------------------------------------------------------------------------------


@pytest.mark.parametrize("d", ["float32", "float64", "float16"])
def test_frexp_like_torch(d):
    torch = torch_or_skip()
    a = np.array([0.0, -0.0, 1.0, -5.0, 0.3, 1e-3, 6e4, math.inf, -math.inf, math.nan],
                 dtype=d)
    if d != "float16":
        a = np.concatenate([a, np.array([1e-40 if d == "float32" else 1e-310, 3e38],
                                        dtype=d)])
    m, e = cg.frexp(cg.from_numpy(a))
    tm, te = torch.frexp(torch.from_numpy(a))
    _check(m, tm, rtol=0)
    _check(e, te)
    r = cg.from_numpy(a).frexp()
    _check(r.mantissa, tm, rtol=0)
    _check(r.exponent, te)
    assert repr(r).startswith("torch.return_types.frexp(\nmantissa=")


def test_frexp_out_and_errors():
    a = cg.tensor([[3.0, -0.75], [8.0, 0.0]])
    m, e = cg.empty(2, 2), cg.empty(2, 2, dtype=cg.int32)
    r = cg.frexp(a, out=(m, e))
    assert r.mantissa is m and r.exponent is e
    assert m.tolist() == [[0.75, -0.75], [0.5, 0.0]] and e.tolist() == [[2, 0], [4, 0]]
    with pytest.raises(RuntimeError, match=r"torch.frexp\(\) only supports floating-point"):
        cg.frexp(cg.tensor([1, 2]))


# --- polygamma, mvlgamma ------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_polygamma_like_torch(n):
    torch = torch_or_skip()
    a = np.random.default_rng(8).uniform(0.05, 30, (3, 11))
    if n < 2:  # digamma and trigamma hold on the whole line
        a[0] = np.random.default_rng(9).uniform(-5, 0, 11)
        a[0, 0] = -2.5
    _check(cg.polygamma(n, cg.from_numpy(a)), torch.polygamma(n, torch.from_numpy(a)),
           rtol=1e-9)
    _check(cg.from_numpy(a).polygamma(n), torch.from_numpy(a).polygamma(n), rtol=1e-9)
    x, tx = cg.from_numpy(a.astype(np.float32)), torch.from_numpy(a.astype(np.float32))
    x.polygamma_(n)
    tx.polygamma_(n)
    _check(x, tx, rtol=1e-4)
    with pytest.raises(RuntimeError, match="does not support negative n"):
        cg.polygamma(-1, cg.from_numpy(a))


def test_polygamma_digamma_against_scipy_on_hard_points():
    """Near the poles, on the negative axis far out and tiny arguments: float64 to 1e-13
    relative (1e-10 at the half-integer zeros of the even orders), float32 to 1e-6."""
    sc = pytest.importorskip("scipy.special")
    x = np.array([-10.000001, -9.999999, -19.000001, -1e-8, -0.3, -2.7, -7.2, -25.25,
                  -100.3, -1e6 + 0.3, 1e-9, 0.5, 1.4616321449683622, 7.3, 123.4, 1e6])
    mp = pytest.importorskip("mpmath")  # scipy's digamma is off by 1e-10 near -10
    with mp.workdps(30):
        psi = np.array([float(mp.digamma(v)) for v in x])
    for n in (0, 1, 2, 3, 6):
        exp = sc.polygamma(n, x) if n else psi
        got = cg.polygamma(n, cg.tensor(x, dtype=cg.float64)).numpy()
        np.testing.assert_allclose(got, exp, rtol=1e-13 if n != 2 else 1e-12, atol=1e-15,
                                   err_msg=str(n))
        if n > 3:  # beyond float's range near the poles
            continue
        x32 = x.astype(np.float32)
        with mp.workdps(30):
            exp32 = (sc.polygamma(n, x32.astype(np.float64)) if n else
                     np.array([float(mp.digamma(float(v))) for v in x32]))
        got32 = cg.polygamma(n, cg.tensor(x32)).numpy()
        np.testing.assert_allclose(got32, exp32, rtol=2e-6, atol=1e-7, err_msg=str(n))
    # the even orders' zeros: at a half-integer psi(n)(x) = psi(n)(1 - x) (scipy's values
    # there lose all digits for large n), near the zeros float32 as well
    half = np.array([-0.5, -3.5, -27.5, -70.5, -1000.5])
    for n in (2, 4, 12, 40):
        got = cg.polygamma(n, cg.tensor(half, dtype=cg.float64)).numpy()
        exp = sc.polygamma(n, 1 - half)
        np.testing.assert_allclose(got, exp, rtol=1e-14, err_msg=str(n))
    got32 = cg.polygamma(2, cg.tensor(half.astype(np.float32))).numpy()
    np.testing.assert_allclose(got32, sc.polygamma(2, 1 - half), rtol=2e-6)
    near = np.array([-25.5004, -8.4961, -3.53, -64.47], dtype=np.float32)
    np.testing.assert_allclose(cg.polygamma(2, cg.tensor(near)).numpy(),
                               sc.polygamma(2, near.astype(np.float64)), rtol=2e-6)
    edge = cg.tensor([0.0, -3.0, math.inf, -math.inf, math.nan], dtype=cg.float64)
    np.testing.assert_array_equal(cg.polygamma(2, edge).numpy(),
                                  [-math.inf, -math.inf, 0.0, math.nan, math.nan])
    np.testing.assert_array_equal(cg.polygamma(3, edge).numpy(),
                                  [math.inf, math.inf, 0.0, math.nan, math.nan])
    # each order's gradient is the next order
    leaf = cg.tensor([-2.7, 0.4, 3.3], dtype=cg.float64, requires_grad=True)
    cg.polygamma(2, leaf).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), sc.polygamma(3, [-2.7, 0.4, 3.3]), rtol=1e-13)


def test_polygamma_half_computes_in_float():
    # the series runs in float32 and rounds once: every value is torch's to within one
    # rounding of the half type (rounding each term lost 1% near x = -4.2)
    torch = torch_or_skip()
    a = np.array([0.1, -0.3, -1.7, 2.5, -4.2, 0.27, 7.5], np.float32)
    for name, tol in (("float16", 1e-3), ("bfloat16", 8e-3)):
        for n in (1, 2):
            got = cg.polygamma(n, cg.tensor(a, dtype=getattr(cg, name)))
            exp = torch.polygamma(n, torch.from_numpy(a).to(getattr(torch, name)))
            assert got.dtype == getattr(cg, name)
            np.testing.assert_allclose(got.float().numpy(), exp.float().numpy(), rtol=tol)


def test_mvlgamma_like_torch():
    torch = torch_or_skip()
    a = np.random.default_rng(10).uniform(2.0, 9.0, (4, 5))
    for p in (1, 2, 5):
        _check(cg.mvlgamma(cg.from_numpy(a), p), torch.mvlgamma(torch.from_numpy(a), p),
               rtol=1e-12)
        x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
        x.mvlgamma_(p)
        tx.mvlgamma_(p)
        _check(x, tx, rtol=1e-12)
    with pytest.raises(RuntimeError, match="p has to be greater than or equal to 1"):
        cg.mvlgamma(cg.from_numpy(a), 0)


# --- gradients ----------------------------------------------------------------------------


GRADS = [
    ("acosh", lambda x: cg.acosh(x * x + 1.5)),
    ("asinh", lambda x: cg.asinh(x * 3)),
    ("atanh", lambda x: cg.atanh(x * 0.9)),
    ("sinc", lambda x: cg.sinc(x * 2)),
    ("i0", lambda x: cg.i0(x * 6)),
    ("square", lambda x: cg.square(x)),
    ("ldexp", lambda x: cg.ldexp(x, cg.tensor([1, -1, 2, 0, 3, -2, 1]))),
    ("float_power", lambda x: cg.float_power(x * x + 0.5, x)),
    ("frexp", lambda x: cg.frexp(x * 40)[0]),
    ("polygamma0", lambda x: cg.polygamma(0, x + 2)),
    ("polygamma1", lambda x: cg.polygamma(1, x + 2)),
    ("polygamma2", lambda x: cg.polygamma(2, x + 2)),
    ("polygamma3", lambda x: cg.polygamma(3, x + 2)),
    ("mvlgamma", lambda x: cg.mvlgamma(x + 3, 3)),
    ("selu", lambda x: cg.selu(x)),
    ("celu", lambda x: cg.celu(x, 0.7)),
    ("threshold", lambda x: cg.threshold(x, 0.1, 2.0)),
    ("hardshrink", lambda x: cg.hardshrink(x, 0.3)),
    ("rrelu", lambda x: cg.rrelu(x)),
    ("rsub", lambda x: cg.rsub(x, 2.0, alpha=3)),
]


@pytest.mark.parametrize("name,f", GRADS, ids=[g[0] for g in GRADS])
def test_gradients(name, f):
    assert gradcheck(f, (leaf(3, 7),))


def test_binary_gradients():
    a, b = leaf(3, 7, seed=1), leaf(7, seed=2)
    c = b.detach().clone()
    c[1] = math.nan
    assert gradcheck(lambda x, y: cg.fmax(x, y), (a, b))
    assert gradcheck(lambda x, y: cg.fmin(x, y), (a, b))
    assert gradcheck(lambda x: cg.fmax(x, c), (a,))
    assert gradcheck(lambda x, y: cg.arctan2(x, y), (a, b))
    w = cg.from_numpy(np.array([0.1, 0.2, 0.3])).requires_grad_()
    assert gradcheck(lambda x, w: cg.prelu(x, w), (leaf(2, 3, 4, seed=3), w))


def test_second_order_gradients():
    assert gradgradcheck(lambda x: cg.i0(x * 4), (leaf(2, 5),))
    assert gradgradcheck(lambda x: cg.sinc(x * 2 + 0.1), (leaf(2, 5),))
    assert gradgradcheck(lambda x: cg.asinh(x * 2), (leaf(2, 5),))


def test_gradients_like_torch():
    torch = torch_or_skip()
    a = np.random.default_rng(11).uniform(-2, 2, (4, 6))
    b = np.random.default_rng(12).uniform(-2, 2, (6,))
    a[0, :3] = b[:3]  # ties
    b[4] = math.nan
    for name in ("fmax", "fmin"):
        x, y = cg.from_numpy(a).requires_grad_(), cg.from_numpy(b).requires_grad_()
        tx, ty = torch.from_numpy(a).requires_grad_(), torch.from_numpy(b).requires_grad_()
        getattr(cg, name)(x, y).sum().backward()
        getattr(torch, name)(tx, ty).sum().backward()
        close(x.grad, tx.grad.numpy())
        close(y.grad, ty.grad.numpy())
    for name in ("sinc", "i0"):
        z = np.array([0.0, 0.5, -1.5, 3.0])
        x, tx = cg.from_numpy(z).requires_grad_(), torch.from_numpy(z).requires_grad_()
        getattr(cg, name)(x).sum().backward()
        getattr(torch, name)(tx).sum().backward()
        close(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# --- in-place comparison, logical and bitwise methods ------------------------------------

COMPARE = ["eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less",
           "less_equal", "not_equal"]


@pytest.mark.parametrize("name", COMPARE)
@pytest.mark.parametrize("d", ["float32", "int64", "uint8", "bool"])
def test_in_place_comparisons_keep_self_dtype(name, d):
    torch = torch_or_skip()
    rng = np.random.default_rng(13)
    a = rng.integers(0, 3, (3, 5)).astype(d)
    b = rng.integers(0, 3, (5,)).astype(np.int64 if d == "float32" else d)
    x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    assert getattr(x, name + "_")(cg.from_numpy(b)) is x
    getattr(tx, name + "_")(torch.from_numpy(b))
    _check(x, tx)
    getattr(x, name + "_")(1)
    getattr(tx, name + "_")(1)
    _check(x, tx)


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor", "bitwise_and",
                                  "bitwise_or", "bitwise_xor"])
@pytest.mark.parametrize("d", ["int64", "int8", "bool", "float64"])
def test_in_place_logical_and_bitwise(name, d):
    torch = torch_or_skip()
    if name.startswith("bitwise") and d == "float64":
        with pytest.raises(RuntimeError, match="not implemented for 'Double'"):
            getattr(cg.ones(2, dtype=cg.float64), name + "_")(cg.ones(2, dtype=cg.float64))
        return
    rng = np.random.default_rng(14)
    a, b = rng.integers(0, 4, (4, 3)).astype(d), rng.integers(0, 4, (3,)).astype(d)
    x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    assert getattr(x, name + "_")(cg.from_numpy(b)) is x
    getattr(tx, name + "_")(torch.from_numpy(b))
    _check(x, tx)


@pytest.mark.parametrize("d", ["int64", "int8", "bool", "float32"])
def test_in_place_not(d):
    torch = torch_or_skip()
    a = np.array([[0, 1, 2], [3, 0, 1]]).astype(d)
    x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    x.logical_not_()
    tx.logical_not_()
    _check(x, tx)
    if d != "float32":
        x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
        assert x.bitwise_not_() is x
        tx.bitwise_not_()
        _check(x, tx)


def test_in_place_comparison_cannot_broadcast_self():
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        cg.ones(2).lt_(cg.ones(3, 2))


# --- torch-level in-place functions -------------------------------------------------------

IN_PLACE = [("abs", ()), ("acos", ()), ("asin", ()), ("atan", ()), ("ceil", ()), ("cos", ()),
            ("cosh", ()), ("erf", ()), ("erfc", ()), ("exp", ()), ("exp2", ()),
            ("expm1", ()), ("floor", ()), ("frac", ()), ("log", ()), ("log10", ()),
            ("log1p", ()), ("log2", ()), ("neg", ()), ("negative", ()), ("reciprocal", ()),
            ("relu", ()), ("round", ()), ("rsqrt", ()), ("sigmoid", ()), ("sin", ()),
            ("sinh", ()), ("sqrt", ()), ("tan", ()), ("tanh", ()), ("trunc", ()), ("fix", ()),
            ("deg2rad", ()), ("rad2deg", ()), ("clamp_min", (0.2,)), ("clamp_max", (0.3,)),
            ("clip", (-0.1, 0.4)), ("clamp", (-0.1, 0.4)), ("logit", (0.05,)),
            ("nan_to_num", ()), ("zero", ()), ("fill", (2.5,)), ("square", ()),
            ("xlogy", (0.7,)), ("arccos", ()), ("arcsin", ()), ("arctan", ()),
            ("selu", ()), ("celu", ()), ("threshold", (0.1, 3.0))]


@pytest.mark.parametrize("name,args", IN_PLACE, ids=[n for n, _ in IN_PLACE])
def test_torch_level_in_place_functions(name, args):
    torch = torch_or_skip()
    a = np.random.default_rng(15).uniform(-0.9, 0.9, SHAPE)
    a.flat[1] = math.nan if name == "nan_to_num" else a.flat[1]
    a = np.abs(a) if name in ("log", "log10", "log2", "sqrt", "rsqrt", "logit") else a
    x, tx = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    fn = getattr(cg, name + "_")
    assert fn(x, *args) is x
    getattr(torch, name + "_")(tx, *args)
    _check(x, tx, rtol=1e-12)


def test_in_place_functions_match_pytorchs_set():
    torch = torch_or_skip()
    for name, _ in IN_PLACE:
        assert hasattr(torch, name + "_"), name
    for name in ("acosh_", "asinh_", "atanh_", "arccosh_", "arcsinh_", "arctanh_", "gcd_",
                 "lcm_", "sinc_", "i0_", "ldexp_", "rrelu_"):
        assert hasattr(torch, name) and hasattr(cg, name), name


# --- activations torch exposes ------------------------------------------------------------


def test_activations_like_torch():
    torch = torch_or_skip()
    a = np.random.default_rng(16).uniform(-3, 3, SHAPE)
    x, tx = _pair(a)
    _check(cg.selu(x), torch.selu(tx), rtol=1e-12)
    _check(cg.celu(x, 0.6), torch.celu(tx, 0.6), rtol=1e-12)
    _check(cg.threshold(x, 0.5, -7.0), torch.threshold(tx, 0.5, -7.0))
    _check(cg.hardshrink(x, 0.8), torch.hardshrink(tx, 0.8))
    _check(x.hardshrink(), tx.hardshrink())
    _check(cg.rrelu(x, 0.1, 0.3), torch.rrelu(tx, 0.1, 0.3), rtol=1e-12)
    _check(cg.rsub(x, 2.0), torch.rsub(tx, 2.0))
    _check(cg.rsub(x, x * 2, alpha=0.5), torch.rsub(tx, tx * 2, alpha=0.5))
    w = np.array([0.1, -0.2, 0.3, 0.4, 0.5])
    _check(cg.prelu(x, cg.from_numpy(w)), torch.prelu(tx, torch.from_numpy(w)))
    _check(x.prelu(cg.tensor([0.25], dtype=cg.float64)),
           tx.prelu(torch.tensor([0.25], dtype=torch.float64)))
    for name, args in (("selu", ()), ("celu", (0.5,)), ("threshold", (0.0, 1.0)),
                       ("rrelu", ())):
        y, ty = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
        assert getattr(cg, name + "_")(y, *args) is y
        getattr(torch, name + "_")(ty, *args)
        _check(y, ty, rtol=1e-12)
    import clgraph.nn.functional as F
    _check(F.rrelu(x), torch.nn.functional.rrelu(tx), rtol=1e-12)
    y = cg.from_numpy(a.copy())
    F.selu_(y)
    _check(y, torch.selu(torch.from_numpy(a)), rtol=1e-12)
    with pytest.raises(RuntimeError, match="celu: alpha must not be 0"):
        cg.celu(x, 0.0)


def test_rrelu_training_draws_slopes_in_range():
    x = cg.full((4000,), -1.0)
    y = cg.rrelu(x, 0.1, 0.3, training=True).numpy()
    assert -0.3 <= y.min() and y.max() <= -0.1 and y.std() > 0.03
    p = cg.full((5,), 2.0)
    assert cg.rrelu(p, training=True).tolist() == [2.0] * 5


def test_legacy_div_dunders():
    # Tensor.__div__, __rdiv__ and __idiv__ (PyTorch keeps them beside the truediv forms)
    a, b = cg.tensor([1.0, 2.0, 4.0]), cg.tensor([2.0, 2.0, 2.0])
    assert a.__div__(b).tolist() == [0.5, 1.0, 2.0]
    assert a.__rdiv__(b).tolist() == [2.0, 1.0, 0.5]
    assert a.__rdiv__(3).tolist() == [3.0, 1.5, 0.75]
    c = a.clone()
    assert c.__idiv__(b) is c and c.tolist() == [0.5, 1.0, 2.0]
    assert cg.tensor([3, 4]).__rdiv__(6).dtype == cg.float32
