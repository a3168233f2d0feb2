"""torch.special's functions: values against PyTorch over wide ranges in float32 and float64
(and against scipy where PyTorch's own values are less precise), dtype rules, gradients and
argument errors. The float64 finite-difference checks run without torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import clgraph as cg
from clgraph.autograd import gradcheck

S = cg.special

WIDE = np.concatenate([np.linspace(-30, 30, 241), np.geomspace(1e-6, 500, 60),
                       -np.geomspace(1e-6, 500, 60), [0.0]])
POSITIVE = WIDE[WIDE > 0]
PROB = np.concatenate([np.linspace(0.001, 0.999, 101), np.geomspace(1e-300, 1e-3, 40),
                       1 - np.geomspace(1e-15, 1e-3, 20), [0.0, 1.0]])

# (name, inputs, float64 atol relative to the largest |value|, float32 rtol)
UNARY = [
    ("entr", WIDE, 1e-14, 1e-6),
    ("erfcx", np.linspace(-25, 500, 400), 1e-13, 1e-5),
    ("ndtr", WIDE, 1e-15, 1e-5),
    ("log_ndtr", np.linspace(-200, 30, 300), 1e-13, 1e-5),
    ("ndtri", PROB, 1e-13, 1e-5),
    ("i0e", WIDE, 1e-14, 1e-5),
    ("i1", np.linspace(-80, 80, 321), 1e-14, 1e-5),
    ("i1e", WIDE, 1e-14, 1e-5),
    ("bessel_j0", WIDE, 1e-6, 2e-5),
    ("bessel_j1", WIDE, 1e-6, 2e-5),
    ("bessel_y0", POSITIVE, 1e-6, 2e-5),
    ("bessel_y1", POSITIVE, 1e-6, 2e-5),
    ("modified_bessel_i0", np.linspace(-80, 80, 321), 1e-14, 1e-5),
    ("modified_bessel_i1", np.linspace(-80, 80, 321), 1e-14, 1e-5),
    ("modified_bessel_k0", POSITIVE, 1e-13, 1e-5),
    ("modified_bessel_k1", POSITIVE, 1e-13, 1e-5),
    ("scaled_modified_bessel_k0", POSITIVE, 1e-13, 1e-5),
    ("scaled_modified_bessel_k1", POSITIVE, 1e-13, 1e-5),
    ("airy_ai", np.linspace(-30, 30, 601), 1e-5, 1e-4),
    ("spherical_bessel_j0", WIDE, 1e-14, 1e-5),
]


def _scaled_err(got, exp):
    """|got - exp| / max(1, max |exp|) over finite values, and whether the non-finite
    values (NaN, +-inf) are the same."""
    got, exp = np.asarray(got, np.float64), np.asarray(exp, np.float64)
    same = np.array_equal(np.isnan(got), np.isnan(exp)) and np.array_equal(
        np.where(np.isinf(exp), exp, 0), np.where(np.isinf(got), got, 0))
    fin = np.isfinite(exp) & np.isfinite(got)
    scale = max(1.0, float(np.max(np.abs(exp[fin]), initial=0)))
    return float(np.max(np.abs(got[fin] - exp[fin]), initial=0)) / scale, same


@pytest.mark.parametrize("name,xs,atol64,rtol32", UNARY, ids=[u[0] for u in UNARY])
def test_unary_against_torch(name, xs, atol64, rtol32):
    torch = pytest.importorskip("torch")
    for cdt, tdt in ((cg.float64, torch.float64), (cg.float32, torch.float32)):
        got = getattr(S, name)(cg.tensor(xs, dtype=cdt))
        exp = getattr(torch.special, name)(torch.tensor(xs, dtype=tdt))
        assert got.dtype is cdt and got.shape == tuple(exp.shape)
        g, e = got.numpy().astype(np.float64), exp.numpy().astype(np.float64)
        if cdt is cg.float64:
            err, same = _scaled_err(g, e)
            assert err < atol64, (name, err)
        else:  # relative where the values are not tiny
            fin = np.isfinite(e) & np.isfinite(g) & (np.abs(e) > 1e-3)
            rel = np.abs(g[fin] - e[fin]) / np.abs(e[fin])
            err, same = _scaled_err(g, e)
            if name in ("bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "airy_ai"):
                assert err < 1e-3, (name, err)  # near zeros and large |x|: absolute
            else:
                assert rel.max(initial=0) < rtol32, (name, rel.max())


# functions whose PyTorch values are themselves less precise than float64 somewhere
# (Cephes' float-precision ranges of J/Y, airy between -5 and -2, ndtr's far tail):
# float64 against scipy to near machine precision
SCIPY = [("bessel_j0", "j0", WIDE), ("bessel_j1", "j1", WIDE), ("bessel_y0", "y0", POSITIVE),
         ("bessel_y1", "y1", POSITIVE), ("ndtr", "ndtr", WIDE), ("erfcx", "erfcx", WIDE),
         ("log_ndtr", "log_ndtr", np.linspace(-500, 30, 300)), ("ndtri", "ndtri", PROB),
         ("modified_bessel_k0", "k0", POSITIVE), ("modified_bessel_k1", "k1", POSITIVE)]


@pytest.mark.parametrize("name,ref,xs", SCIPY, ids=[s[0] for s in SCIPY])
def test_float64_against_scipy(name, ref, xs):
    sc = pytest.importorskip("scipy.special")
    got = getattr(S, name)(cg.tensor(xs, dtype=cg.float64)).numpy()
    with np.errstate(all="ignore"):
        exp = getattr(sc, ref)(xs)
    fin = np.isfinite(exp)
    rel = np.abs(got[fin] - exp[fin]) / np.maximum(np.abs(exp[fin]), 1e-300)
    absolute = np.abs(got[fin] - exp[fin])
    assert np.all((rel < 1e-12) | (absolute < 1e-15)), (name, xs[fin][np.argmax(rel)])


def test_bessel_float64_tiny_and_torch_sample_points():
    """J and Y in float64 at tiny arguments (the series' a^2 terms), relative to 1e-14, and
    at points where PyTorch's own float64 J0/J1/Y1 are off by 1e-7: scipy's values."""
    sc = pytest.importorskip("scipy.special")
    x = np.array([1e-300, 1e-12, 3e-7, 9.658832241158709e-06, 9.99e-6, 1.01e-5, 2.5e-4])
    for name, ref, xs in (("bessel_j0", sc.j0, x), ("bessel_j1", sc.j1, np.r_[x, -x]),
                          ("bessel_y0", sc.y0, x), ("bessel_y1", sc.y1, x)):
        got = getattr(S, name)(cg.tensor(xs, dtype=cg.float64)).numpy()
        np.testing.assert_allclose(got, ref(xs), rtol=1e-14, err_msg=name)
    x = np.array([4.2, 5.1, 6.9, 7.8, 8.3, 11.7, 13.4, 24.9, 25.1])
    for name, ref in (("bessel_j0", sc.j0), ("bessel_j1", sc.j1), ("bessel_y1", sc.y1)):
        got = getattr(S, name)(cg.tensor(x, dtype=cg.float64)).numpy()
        np.testing.assert_allclose(got, ref(x), rtol=1e-13, atol=1e-15, err_msg=name)


def test_modified_bessel_k_between_1_and_2_against_scipy():
    """K0, K1 (and scaled) where their small-x series cancel: float64 to 3e-15, float32
    to 1e-6 relative."""
    sc = pytest.importorskip("scipy.special")
    x = np.array([1.0001, 1.2, 1.5, 1.5167168884709241, 1.75, 1.9833074334231782, 2.0])
    for name, ref in (("modified_bessel_k0", sc.k0), ("modified_bessel_k1", sc.k1),
                      ("scaled_modified_bessel_k0", sc.k0e),
                      ("scaled_modified_bessel_k1", sc.k1e)):
        got = getattr(S, name)(cg.tensor(x, dtype=cg.float64)).numpy()
        np.testing.assert_allclose(got, ref(x), rtol=3e-15, err_msg=name)
        x32 = x.astype(np.float32)
        got = getattr(S, name)(cg.tensor(x32)).numpy()
        np.testing.assert_allclose(got, ref(x32.astype(np.float64)), rtol=1e-6, err_msg=name)


def test_airy_against_scipy():
    sc = pytest.importorskip("scipy.special")
    xs = np.linspace(-40, 30, 701)
    got = S.airy_ai(cg.tensor(xs, dtype=cg.float64)).numpy()
    assert np.max(np.abs(got - sc.airy(xs)[0])) < 1e-14
    # between -9 and -2 (stepped by Taylor series), relative away from the zeros
    xs = np.linspace(-9, -2, 211)
    got = S.airy_ai(cg.tensor(xs, dtype=cg.float64)).numpy()
    exp = sc.airy(xs)[0]
    keep = np.abs(exp) > 0.05
    np.testing.assert_allclose(got[keep], exp[keep], rtol=1e-13)


def test_special_values_match_torch():
    torch = pytest.importorskip("torch")
    xs = [-2.0, -0.0, 0.0, math.inf, -math.inf, math.nan, 1.5]
    for name in ("entr", "erfcx", "ndtr", "log_ndtr", "i0e", "i1e", "bessel_j0", "bessel_j1",
                 "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_k0",
                 "modified_bessel_k1", "scaled_modified_bessel_k0", "airy_ai",
                 "spherical_bessel_j0"):
        got = getattr(S, name)(cg.tensor(xs, dtype=cg.float64)).numpy()
        exp = getattr(torch.special, name)(torch.tensor(xs, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(got, exp, rtol=1e-7, atol=1e-12, err_msg=name)
    p = [-0.5, 0.0, 1.0, 1.5, math.nan, 0.5]
    np.testing.assert_array_equal(S.ndtri(cg.tensor(p)).numpy(),
                                  torch.special.ndtri(torch.tensor(p)).numpy())


POLYS = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
         "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t",
         "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
         "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
         "laguerre_polynomial_l", "legendre_polynomial_p"]


@pytest.mark.parametrize("name", POLYS)
def test_polynomials_against_torch(name):
    torch = pytest.importorskip("torch")
    # (NaN x left out: PyTorch's vectorized loops give numbers there, clgraph NaN)
    x = np.concatenate([np.linspace(-2, 2, 41), [-1.0, 0.0, 1.0, 0.5]])
    n = np.array([-3, -1, -0.5, 0, 1, 2, 2.7, 3, 5, 7, 9, 12, 25, math.nan, 600])
    xx, nn = np.meshgrid(x, n)
    for cdt, tdt in ((cg.float64, torch.float64), (cg.float32, torch.float32)):
        got = getattr(S, name)(cg.tensor(xx, dtype=cdt), cg.tensor(nn, dtype=cdt)).numpy()
        exp = getattr(torch.special, name)(torch.tensor(xx, dtype=tdt),
                                           torch.tensor(nn, dtype=tdt)).numpy()
        tol = 1e-9 if cdt is cg.float64 else 1e-3
        np.testing.assert_allclose(got, exp, rtol=tol, atol=tol, err_msg=name)
    # scalar n, scalar x, and the dtype rules (integers give the default float)
    t = torch.tensor([0.25, 0.75], dtype=torch.float64)
    c = cg.tensor([0.25, 0.75], dtype=cg.float64)
    fc, ft = getattr(S, name), getattr(torch.special, name)
    np.testing.assert_allclose(fc(c, 3).numpy(), ft(t, 3).numpy(), rtol=1e-12)
    np.testing.assert_allclose(fc(0.5, cg.tensor([2, 3])).numpy(),
                               ft(0.5, torch.tensor([2, 3])).numpy(), rtol=1e-6)
    assert fc(cg.tensor([1, 2]), cg.tensor([2, 3])).dtype is cg.float32
    assert fc(c, cg.tensor([2.0, 3.0])).dtype is cg.float64
    with pytest.raises(TypeError, match="invalid combination"):
        fc(0.5, 2)


def test_dtype_rules_and_errors():
    assert S.bessel_j0(cg.tensor([1, 2])).dtype is cg.float32
    assert S.erfcx(cg.tensor([1.0], dtype=cg.float64)).dtype is cg.float64
    assert S.ndtri(cg.tensor([0.5], dtype=cg.float16)).dtype is cg.float16
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        S.entr(2.0)
    out = cg.empty(3)
    S.ndtr(cg.tensor([0.0, 1.0, -1.0]), out=out)
    np.testing.assert_allclose(out.numpy(), [0.5, 0.8413447, 0.1586553], rtol=1e-6)


def test_aliases_of_existing_functions():
    x = cg.tensor([0.3, 1.7, 2.5], dtype=cg.float64)
    np.testing.assert_allclose(S.i0(x).numpy(), cg.i0(x).numpy())
    np.testing.assert_allclose(S.polygamma(2, x).numpy(), cg.polygamma(2, x).numpy())
    np.testing.assert_allclose(S.multigammaln(x + 2, 3).numpy(), cg.mvlgamma(x + 2, 3).numpy())
    np.testing.assert_allclose(S.round(x * 10.123, decimals=1).numpy(),
                               np.round(x.numpy() * 10.123, 1))
    np.testing.assert_allclose(S.sinc(x).numpy(), np.sinc(x.numpy()))
    got = S.xlog1py(cg.tensor([0.0, 2.0, 3.0]), cg.tensor([-1.0, 0.5, 1e-8]))
    np.testing.assert_allclose(got.numpy(), [0.0, 2 * math.log1p(0.5), 3e-8], rtol=1e-6)


def test_gradients_finite_differences():
    """float64 central differences (cg.autograd.gradcheck), away from the kinks."""
    rng = np.random.default_rng(0)

    def leaf(lo, hi):
        return cg.tensor(rng.uniform(lo, hi, (7,)), dtype=cg.float64, requires_grad=True)

    for fn, x in ((S.entr, leaf(0.1, 4)), (S.erfcx, leaf(-3, 30)), (S.ndtr, leaf(-5, 5)),
                  (S.log_ndtr, leaf(-40, 6)), (S.ndtri, leaf(0.01, 0.99)),
                  (S.i0e, leaf(-30, 30)), (S.i1, leaf(-8, 8)), (S.i1e, leaf(-30, 30)),
                  (lambda v: S.xlog1py(v, v * v), leaf(0.1, 2))):
        assert gradcheck(fn, (x,)), fn


def test_gradients_against_torch():
    torch = pytest.importorskip("torch")
    xs = np.array([-7.5, -1.2, -0.3, 0.4, 1.1, 2.5, 9.0])
    for name, arg in (("entr", np.abs(xs)), ("erfcx", xs), ("ndtr", xs), ("log_ndtr", xs),
                      ("ndtri", (np.tanh(xs) + 1) / 2), ("i0e", xs), ("i1", xs), ("i1e", xs),
                      ("i0", xs)):
        c = cg.tensor(arg, dtype=cg.float64, requires_grad=True)
        t = torch.tensor(arg, dtype=torch.float64, requires_grad=True)
        getattr(S, name)(c).sum().backward()
        getattr(torch.special, name)(t).sum().backward()
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_functions_without_gradients_in_torch():
    x = cg.tensor([0.5, 1.5], requires_grad=True)
    for name in ("bessel_j0", "modified_bessel_k1", "airy_ai"):
        assert not getattr(S, name)(x).requires_grad
    assert not S.chebyshev_polynomial_t(x, 3).requires_grad


def test_compiled_fuses_special_rows():
    x = cg.tensor(np.linspace(0.1, 5, 50), dtype=cg.float64)

    def f(v):
        return S.bessel_y1(v) + S.log_ndtr(-v) * S.chebyshev_polynomial_u(v / 5, 4)

    c = cg.compile(f)
    np.testing.assert_allclose(c(x).numpy(), f(x).numpy(), rtol=1e-12)


def test_zeta_against_torch_and_scipy():
    torch = _torch_or_skip()
    x = np.array([2.0, 3.0, 1.0, 0.5, -1.0, 2.5, 4.0, 30.0, 1.0001, 7.5, 2.0, 3.0])
    q = np.array([1.0, 0.5, 2.0, 1.0, 1.0, -1.5, -2.0, 1.0, 3.0, 0.01, -0.5, -0.5])
    for cdt, tdt in ((cg.float64, torch.float64), (cg.float32, torch.float32)):
        got = S.zeta(cg.tensor(x, dtype=cdt), cg.tensor(q, dtype=cdt)).numpy()
        exp = torch.special.zeta(torch.tensor(x, dtype=tdt), torch.tensor(q, dtype=tdt))
        np.testing.assert_allclose(got, exp.numpy(), rtol=1e-12 if cdt is cg.float64 else 1e-5)
    np.testing.assert_allclose(S.zeta(cg.tensor([2.0, 3.0]), 1.0).numpy(), [math.pi ** 2 / 6,
                                                                          1.2020569], rtol=1e-6)
    assert S.zeta(2.0, cg.tensor([1, 2])).dtype is cg.float32
    sc = pytest.importorskip("scipy.special")
    xs, qs = np.meshgrid(np.linspace(1.05, 12, 25), np.geomspace(1e-3, 50, 25))
    got = S.zeta(cg.tensor(xs, dtype=cg.float64), cg.tensor(qs, dtype=cg.float64)).numpy()
    np.testing.assert_allclose(got, sc.zeta(xs, qs), rtol=1e-13)


def _torch_or_skip():
    return pytest.importorskip("torch")
