"""The rows behind torch.special's functions that clgraph had no op for: the scaled error
and normal functions (erfcx, ndtr, log_ndtr, ndtri, entr), the Bessel, modified Bessel and
Airy functions, the Hurwitz zeta function and the classical orthogonal polynomials. Each row
is one call of a C helper (codegen.emit.register_helper; helpers may call helpers), so they
fuse like any elementwise row; their references are scipy's (imported when a reference runs:
the tests' oracle). Imports the elementwise family and codegen's helper registry."""

from __future__ import annotations

import math

import numpy as np

from ..codegen.emit import register_helper
from .elementwise import OPS, _call, _floating, _np_float, _scipy_special, binary, unary

_SQRT_2PI = math.sqrt(2 * math.pi)


def _scipy(name, *convert):
    """The reference ``scipy.special.<name>`` in float64, cast back to the input's dtype."""
    def ref(*args):
        sc = _scipy_special()
        args = [np.asarray(a) for a in args]
        out_dtype = np.result_type(*args)
        if out_dtype.kind in "biu":
            out_dtype = np.dtype(np.float32)
        vals = [a.astype(np.float64) for a in args]
        for i, fn in convert:
            vals[i] = fn(vals[i])
        with np.errstate(all="ignore"):
            return np.asarray(getattr(sc, name)(*vals)).astype(out_dtype)

    return ref


# --- error and normal functions -----------------------------------------------------------

# erfcx(x) = exp(x^2) erfc(x): for 0 <= x < 8 the product, with exp's argument split by an
# fma into x^2 and its rounding error (exp(x^2 + e) = exp(x^2)(1 + e)), which keeps full
# relative precision where x^2 is large; beyond 8 the continued fraction
# 1 / (sqrt(pi) (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))), 60 terms from the tail.
# Negative x: 2 exp(x^2) - erfcx(-x), which overflows to inf as the value does.
register_helper("erfcx", r"""
inline T cg_erfcx_T(T x) {
  if (isnan(x)) return x;
  const T a = fabs(x);
  T r;
  if (a < (T)8) {
    const T a2 = a * a;
    r = exp(a2) * ((T)1 + fma(a, a, -a2)) * erfc(a);
  } else if (isinf(a)) {
    r = (T)0;
  } else {
    T f = a;
    for (int k = 60; k >= 1; --k) f = a + (T)(0.5 * k) / f;
    r = (T)0.56418958354775628695 / f;
  }
  if (x < (T)0) {
    const T x2 = x * x;
    if (isinf(x2)) return x2;
    r = (T)2 * exp(x2) * ((T)1 + fma(x, x, -x2)) - r;
  }
  return r;
}""")

# log Phi(x): log1p(-erfc(x / sqrt 2) / 2) down to -1, below it log(erfcx(t) / 2) - t^2 with
# t = -x / sqrt 2, which stays finite where Phi(x) underflows.
register_helper("log_ndtr", r"""
inline T cg_log_ndtr_T(T x) {
  const T t = x * (T)0.70710678118654752440;
  if (x < (T)-1) return log(cg_erfcx_T(-t) / (T)2) - t * t;
  return log1p(-erfc(t) / (T)2);
}""")

# ndtri, the normal quantile: Acklam's rational approximations (relative error 1.2e-9) on
# min(p, 1 - p), 1 - p being exact for p >= 1/2, then one Halley step on erfc (which keeps its
# relative precision in the lower tail) for full precision.
register_helper("ndtri", r"""
inline T cg_ndtri_T(T p) {
  if (!(p >= (T)0 && p <= (T)1)) return (T)NAN;
  const int upper = p > (T)0.5;
  const T q = upper ? (T)1 - p : p;
  if (q == (T)0) return upper ? (T)INFINITY : -(T)INFINITY;
  T x;
  if (q < (T)0.02425) {
    const T s = sqrt((T)-2 * log(q));
    x = (((((-(T)7.784894002430293e-03 * s - (T)3.223964580411365e-01) * s
            - (T)2.400758277161838e+00) * s - (T)2.549732539343734e+00) * s
            + (T)4.374664141464968e+00) * s + (T)2.938163982698783e+00) /
        (((((T)7.784695709041462e-03 * s + (T)3.224671290700398e-01) * s
           + (T)2.445134137142996e+00) * s + (T)3.754408661907416e+00) * s + (T)1);
  } else {
    const T c = q - (T)0.5, r = c * c;
    x = (((((-(T)3.969683028665376e+01 * r + (T)2.209460984245205e+02) * r
            - (T)2.759285104469687e+02) * r + (T)1.383577518672690e+02) * r
            - (T)3.066479806614716e+01) * r + (T)2.506628277459239e+00) * c /
        (((((-(T)5.447609879822406e+01 * r + (T)1.615858368580409e+02) * r
            - (T)1.556989798598866e+02) * r + (T)6.680131188771972e+01) * r
            - (T)1.328068155288572e+01) * r + (T)1);
  }
  const T e = (T)0.5 * erfc(-x * (T)0.70710678118654752440) - q;
  const T u = e * (T)2.50662827463100050242 * exp(x * x / (T)2);
  if (isfinite(u)) x = x - u / ((T)1 + x * u / (T)2);
  return upper ? -x : x;
}""")


def _entr_vjp(g, x, out=None):
    return (g * -(_call("log", x) + 1),)


def _log_ndtr_vjp(g, x, out):
    """phi(x) / Phi(x) = exp(-x^2 / 2 - log Phi(x)) / sqrt(2 pi)."""
    return (g * _call("exp", -(x * x) / 2 - out) * (1 / _SQRT_2PI),)


unary("special_entr", _scipy("entr"),
      "(isnan({x}) ? {x} : ({x} > ({T})0 ? -{x} * log({x}) : "
      "({x} == ({T})0 ? ({T})0 : -({T})INFINITY)))", _floating, vec=False,
      vjp=_entr_vjp, saves_out=False)
unary("special_erfcx", _scipy("erfcx"), "cg_erfcx_{T}({x})", _floating, vec=False,
      vjp=lambda g, x, out: (g * (2 * x * out - 2 / math.sqrt(math.pi)),))
unary("special_ndtr", _scipy("ndtr"),
      "(({T})0.5 * erfc(-{x} * ({T})0.70710678118654752440))", _floating, vec=False,
      vjp=lambda g, x, out: (g * _call("exp", -(x * x) / 2) * (1 / _SQRT_2PI),),
      saves_out=False)
unary("special_log_ndtr", _scipy("log_ndtr"), "cg_log_ndtr_{T}({x})", _floating, vec=False,
      vjp=_log_ndtr_vjp)
unary("special_ndtri", _scipy("ndtri"), "cg_ndtri_{T}({x})", _floating, vec=False,
      vjp=lambda g, x, out: (g * _call("exp", out * out / 2) * _SQRT_2PI,), saves=())

# --- Bessel functions ---------------------------------------------------------------------

unary("special_spherical_bessel_j0",
      _np_float(lambda x: np.where(np.isinf(x), 0.0, np.sinc(x / np.pi)).astype(x.dtype)),
      "(isinf({x}) ? ({T})0 : (fabs({x}) < ({T})1e-4 ? ({T})1 - {x} * {x} / ({T})6 "
      ": sin({x}) / {x}))", _floating, vec=False, differentiable=False)

# exp(-|x|) I_nu(x) for nu = 0, 1: the power series times exp(-|x|) up to |x| = 20, beyond
# it the asymptotic series without its exp(|x|) (as cg_bessel_i, ops/elementwise.py).
register_helper("bessel_ie", r"""
inline T cg_bessel_ie_T(T x, int nu) {
  const T a = fabs(x);
  T s, t;
  if (a <= (T)20) {
    const T q = a * a / (T)4;
    t = nu ? a / (T)2 : (T)1; s = t;
    for (int k = 1; k < 80 && t > s * (T)1e-17; k++) { t *= q / (T)(k * (k + nu)); s += t; }
    s *= exp(-a);
  } else {
    t = (T)1; s = (T)1;
    for (int k = 1; k < 40; k++) {
      t *= (T)((2 * k - 1) * (2 * k - 1) - 4 * nu * nu) / ((T)(8 * k) * a); s += t; }
    s /= sqrt((T)(2 * M_PI) * a);
  }
  return (nu && x < (T)0) ? -s : s;
}""")


def _i0e_vjp(g, x, out):
    """d/dx exp(-|x|) I0(x) = i1e(x) - sign(x) i0e(x)."""
    return (g * (_call("special_i1e", x) - _call("sign", x) * out),)


def _i1e_vjp(g, x, out):
    """d/dx exp(-|x|) I1(x) = i0e(x) - i1e(x) (sign(x) + 1 / x), 1/2 at 0."""
    d = _call("special_i0e", x) - out * (_call("sign", x) + 1 / x)
    return (g * _call("where", _call("eq", x, 0), 0.5, d),)


unary("special_i0e", _scipy("i0e"), "cg_bessel_ie_{T}({x}, 0)", _floating, vec=False,
      vjp=_i0e_vjp)
unary("special_i1e", _scipy("i1e"), "cg_bessel_ie_{T}({x}, 1)", _floating, vec=False,
      vjp=_i1e_vjp)

# J0, J1, Y0, Y1 (``which``: bit 0 the order, bit 1 Y): up to |x| = 25 Miller's backward
# recurrence J_{n-1} = (2n / x) J_n - J_{n+1} from J_N = 1, normalised by
# J0 + 2 sum J_2k = 1, with the Neumann series Y0 = (2/pi)((log(x/2) + gamma) J0
# - 2 sum (-1)^k J_2k / k) and its derivative for Y1 taken from the same J_n; beyond 25
# Hankel's asymptotic series (24 terms: below 1e-17 there). Tiny x: the series' first
# terms (to a^4 in J, whose a^2 term is 1e-11 relative at 1e-5).
register_helper("bessel_jy", r"""
inline T cg_bessel_jy_T(T x, int which) {
  const int nu = which & 1, y = which >> 1;
  if (isnan(x)) return x;
  if (y && x < (T)0) return (T)NAN;
  if (y && x == (T)0) return -(T)INFINITY;
  const T a = fabs(x), two_pi = (T)0.63661977236758134308, euler = (T)0.57721566490153286061;
  T r;
  if (a < (T)1e-5) {
    const T q = a * a / (T)4, l = log(a / (T)2) + euler;
    const T j0 = (T)1 - q * ((T)1 - q / (T)4), j1 = a / (T)2 * ((T)1 - q / (T)2);
    if (!y) r = nu ? j1 : j0;
    else r = nu ? -two_pi / a + two_pi * (l - (T)0.5) * j1 : two_pi * (l * j0 + q);
  } else if (a > (T)25) {
    const T m = nu ? (T)4 : (T)0, z = (T)8 * a;
    T p = (T)1, q = (T)0, t = (T)1;
    for (int k = 1; k <= 24; k++) {
      t *= (m - (T)((2 * k - 1) * (2 * k - 1))) / ((T)k * z);
      if (k & 1) q += ((k >> 1) & 1) ? -t : t;
      else p += ((k >> 1) & 1) ? -t : t;
    }
    const T s = sin(a), c = cos(a), h = (T)0.70710678118654752440;
    const T cx = nu ? (s - c) * h : (c + s) * h, sx = nu ? -(s + c) * h : (s - c) * h;
    const T amp = sqrt(two_pi / a);
    r = y ? amp * (p * sx + q * cx) : amp * (p * cx - q * sx);
  } else {
    const int n_top = 2 * ((int)(a / (T)2) + 20);
    T cur = (T)1, nxt = (T)0, norm = (T)2, sy0 = ((n_top / 2) & 1) ? -(T)2 / (T)n_top
                                                                  : (T)2 / (T)n_top;
    T sy1 = (T)0;
    for (int m = n_top; m >= 1; --m) {
      const T prev = (T)(2 * m) / a * cur - nxt;
      nxt = cur; cur = prev;
      const int i = m - 1;
      if (i > 0 && !(i & 1)) {
        const int k = i / 2;
        norm += (T)2 * cur;
        sy0 += ((k & 1) ? -cur : cur) / (T)k;
      } else if (i & 1) {
        const int j = i / 2;
        const T c = j ? (T)1 / (T)j + (T)1 / (T)(j + 1) : (T)1;
        sy1 += ((j & 1) ? c : -c) * cur;
      }
      if (fabs(cur) > (T)1e10) {
        cur *= (T)1e-10; nxt *= (T)1e-10; norm *= (T)1e-10; sy0 *= (T)1e-10; sy1 *= (T)1e-10;
      }
    }
    norm += cur;
    const T j0 = cur / norm, j1 = nxt / norm, l = log(a / (T)2) + euler;
    if (!y) r = nu ? j1 : j0;
    else if (!nu) r = two_pi * (l * j0 - (T)2 * sy0 / norm);
    else r = -two_pi / a * j0 + two_pi * (l * j1 + sy1 / norm);
  }
  return (!y && nu && x < (T)0) ? -r : r;
}""")

for _i, _name in enumerate(("j0", "j1", "y0", "y1")):
    unary(f"special_bessel_{_name}", _scipy(_name), f"cg_bessel_jy_{{T}}({{x}}, {_i})",
          _floating, vec=False, differentiable=False)

# K_mu(x) exp(x) and K_{mu+1}(x) exp(x) (``next``) for x >= 2 and |mu| <= 1/2: Steed's
# continued fraction with Temme's normalisation (Temme 1975; Numerical Recipes' CF2), which
# converges in a few dozen steps there (under a hundred down to x = 1).
register_helper("bessel_kcf", r"""
inline T cg_bessel_kcf_T(T x, T mu, int next) {
  const T a1 = (T)0.25 - mu * mu;
  T b = (T)2 * ((T)1 + x), d = (T)1 / b, h = d, delh = d, q1 = (T)0, q2 = (T)1;
  T q = a1, c = a1, a = -a1, s = (T)1 + q * delh;
  for (int i = 2; i < 500; i++) {
    a -= (T)(2 * (i - 1));
    c = -a * c / (T)i;
    const T qnew = (q1 - b * q2) / a;
    q1 = q2; q2 = qnew; q += c * qnew;
    b += (T)2;
    d = (T)1 / (b + a * d);
    delh = (b * d - (T)1) * delh;
    h += delh;
    const T dels = q * delh;
    s += dels;
    if (fabs(dels) < fabs(s) * (sizeof(T) == 8 ? (T)1e-16 : (T)1e-7)) break;
  }
  const T k = sqrt((T)M_PI / ((T)2 * x)) / s;
  return next ? k * (mu + x + (T)0.5 - a1 * h) / x : k;
}""")

# K0 and K1 (times exp(x) when ``scaled``): the series K0 = -(log(x/2) + gamma) I0 +
# sum H_k (x^2/4)^k / (k!)^2 and K1 = 1/x + log(x/2) I1 - (x/4) sum (psi(k+1) + psi(k+2))
# (x^2/4)^k / (k! (k+1)!) up to x = 1 (K0's two sums cancel tenfold by x = 2), the continued
# fraction beyond.
register_helper("bessel_k", r"""
inline T cg_bessel_k_T(T x, int nu, int scaled) {
  if (isnan(x)) return x;
  if (x < (T)0) return (T)NAN;
  if (x == (T)0) return (T)INFINITY;
  if (isinf(x)) return (T)0;
  if (x > (T)1) {
    const T k = cg_bessel_kcf_T(x, (T)0, nu);
    return scaled ? k : k * exp(-x);
  }
  const T q = x * x / (T)4, l = log(x / (T)2), euler = (T)0.57721566490153286061;
  T r;
  if (!nu) {
    T t = (T)1, h = (T)0, i0 = (T)1, sh = (T)0;
    for (int k = 1; k < 30; k++) {
      t *= q / (T)(k * k); h += (T)1 / (T)k; i0 += t; sh += t * h;
    }
    r = -(l + euler) * i0 + sh;
  } else {
    T t = (T)1, hk = (T)0, i1 = (T)1, sp = (T)1 - (T)2 * euler;
    for (int k = 1; k < 30; k++) {
      t *= q / (T)(k * (k + 1)); hk += (T)1 / (T)k; i1 += t;
      sp += t * ((T)2 * hk + (T)1 / (T)(k + 1) - (T)2 * euler);
    }
    r = (T)1 / x + l * (x / (T)2) * i1 - x / (T)4 * sp;
  }
  return scaled ? r * exp(x) : r;
}""")

unary("special_modified_bessel_i0", _scipy("i0"), "cg_bessel_i_{T}({x}, 0)", _floating,
      vec=False, differentiable=False)
unary("special_modified_bessel_i1", _scipy("i1"), "cg_bessel_i_{T}({x}, 1)", _floating,
      vec=False, differentiable=False)
for _nu in (0, 1):
    unary(f"special_modified_bessel_k{_nu}", _scipy(f"k{_nu}"),
          f"cg_bessel_k_{{T}}({{x}}, {_nu}, 0)", _floating, vec=False, differentiable=False)
    unary(f"special_scaled_modified_bessel_k{_nu}", _scipy(f"k{_nu}e"),
          f"cg_bessel_k_{{T}}({{x}}, {_nu}, 1)", _floating, vec=False, differentiable=False)

# Ai(x): for zeta = 2/3 x^(3/2) >= 2, sqrt(x / 3) K_{1/3}(zeta) / pi; for x below -9 (double)
# or -5 (float) the oscillatory asymptotic series in 1/zeta; between, the Maclaurin series
# c1 f(x) - c2 g(x), whose cancellation costs e^zeta in relative precision, except for double
# below -2, where Ai'' = x Ai is stepped from 0 by Taylor series.
register_helper("airy_ai", r"""
inline T cg_airy_ai_T(T x) {
  if (isnan(x)) return x;
  if (isinf(x)) return (T)NAN;
  const T neg_cut = sizeof(T) == 8 ? (T)-9 : (T)-5;
  if (x >= (T)2.0800838230519041) {
    const T z = (T)2 / (T)3 * x * sqrt(x);
    return sqrt(x / (T)3) / (T)M_PI * exp(-z) * cg_bessel_kcf_T(z, (T)1 / (T)3, 0);
  }
  if (x < neg_cut) {
    const T ax = -x, z = (T)2 / (T)3 * ax * sqrt(ax);
    T u = (T)1, p = (T)1, q = (T)0, zk = (T)1;
    for (int k = 1; k < 30; k++) {
      u *= (T)((6 * k - 5) * (6 * k - 3) * (6 * k - 1)) / (T)((2 * k - 1) * 216 * k);
      zk /= z;
      const T term = u * zk;
      if (k & 1) q += ((k >> 1) & 1) ? -term : term;
      else p += ((k >> 1) & 1) ? -term : term;
    }
    const T ph = z + (T)0.78539816339744830962;
    return (sin(ph) * p - cos(ph) * q) / (sqrt((T)M_PI) * sqrt(sqrt(ax)));
  }
  if (sizeof(T) == 8 && x < (T)-2) {
    /* Ai'' = x Ai stepped from 0 in steps h <= 1/2 by its Taylor series at each point t
       (a_{k+2} = (t a_k + a_{k-1}) / ((k + 2)(k + 1))): the solutions oscillate there, so
       the error stays near eps, where the Maclaurin series loses e^zeta */
    const int steps = (int)ceil(-x * (T)2);
    const T h = x / (T)steps;
    T y = (T)0.35502805388781723926, dy = -(T)0.25881940379280679840, t = (T)0;
    for (int i = 0; i < steps; i++) {
      T am1 = (T)0, a0 = y, a1 = dy, hk = (T)1, sy = y, sdy = dy;
      for (int k = 0; k < 60; k++) {
        const T a2 = (t * a0 + am1) / (T)((k + 2) * (k + 1));
        hk *= h;
        const T ty = a1 * hk, tdy = (T)(k + 2) * a2 * hk;
        sy += ty; sdy += tdy;
        if (k > 6 && fabs(ty) + fabs(tdy) < (T)1e-18 * (fabs(sy) + fabs(sdy))) break;
        am1 = a0; a0 = a1; a1 = a2;
      }
      y = sy; dy = sdy; t = x * (T)(i + 1) / (T)steps;
    }
    return y;
  }
  const T x3 = x * x * x;
  T f = (T)1, g = x, tf = (T)1, tg = x;
  for (int k = 1; k < 200; k++) {
    tf *= x3 / (T)((3 * k - 1) * (3 * k));
    tg *= x3 / (T)((3 * k) * (3 * k + 1));
    f += tf; g += tg;
    if (fabs(tf) <= fabs(f) * (T)1e-17 && fabs(tg) <= fabs(g) * (T)1e-17) break;
  }
  return (T)0.35502805388781723926 * f - (T)0.25881940379280679840 * g;
}""")

def _airy_ref(x):
    sc = _scipy_special()
    x = np.asarray(x)
    out = np.float32 if x.dtype.kind in "biu" else x.dtype
    with np.errstate(all="ignore"):
        return sc.airy(x.astype(np.float64))[0].astype(out)


unary("special_airy_ai", _airy_ref, "cg_airy_ai_{T}({x})", _floating, vec=False,
      differentiable=False)


# --- Hurwitz zeta ----------------------------------------------------------------------------

# zeta(x, q) = sum_k (q + k)^-x: the terms up to q + 9 (or until they stop mattering), then the
# Euler-Maclaurin tail with the Bernoulli numbers' (2j)! / B_2j; PyTorch's (Cephes') domain:
# inf at x == 1 and at q a non-positive integer, NaN for x < 1 and for a negative q with a
# non-integer x.
register_helper("zeta", r"""
inline T cg_zeta_T(T x, T q) {
  const T eps = sizeof(T) == 8 ? (T)1.11022302462515654042e-16 : (T)5.9604644775390625e-8;
  const T bern[12] = {12.0, -720.0, 30240.0, -1209600.0, 47900160.0,
                      -1.8924375803183791606e9, 7.47242496e10, -2.950130727918164224e12,
                      1.1646782814350067249e14, -4.5979787224074726105e15,
                      1.8152105401943546773e17, -7.1661652561756670113e18};
  if (x == (T)1) return (T)INFINITY;
  if (x < (T)1) return (T)NAN;
  if (q <= (T)0) {
    if (q == floor(q)) return (T)INFINITY;
    if (x != floor(x)) return (T)NAN;
  }
  T s = pow(q, -x), a = q, b = (T)0;
  int i = 0;
  while (i < 9 || a <= (T)9) {
    i += 1; a += (T)1; b = pow(a, -x); s += b;
    if (fabs(b / s) < eps) return s;
  }
  const T w = a;
  s += b * w / (x - (T)1);
  s -= (T)0.5 * b;
  T f = (T)1, k = (T)0;
  for (int j = 0; j < 12; j++) {
    f *= x + k; b /= w;
    const T t = f * b / bern[j];
    s += t;
    if (fabs(t / s) < eps) return s;
    k += (T)1; f *= x + k; b /= w; k += (T)1;
  }
  return s;
}""")

binary("special_zeta", _scipy("zeta"), "cg_zeta_{T}({a}, {b})", _floating, vec=False,
       differentiable=False)

# --- orthogonal polynomials ---------------------------------------------------------------
# PyTorch's rules: n truncated to an integer, 0 for n < 0; the endpoint values exactly; for
# large n inside (-1, 1) the trigonometric forms (T_n = cos(n acos y), ...), else the
# three-term recurrence. ``kind`` 0..3 is T, U, V, W; ``shifted`` evaluates at y = 2x - 1
# with PyTorch's endpoint tests on x (1 and 0).
register_helper("chebyshev", r"""
inline T cg_chebyshev_T(T x, T nf, int kind, int shifted) {
  if (isnan(nf) || nf <= (T)-1) return (T)0;
  const long n = (long)nf;
  const T odd = (n & 1) ? (T)-1 : (T)1, n1 = (T)(n + 1), n21 = (T)(2 * n + 1);
  const int top = shifted ? x == (T)1 : x == (T)1;
  const int bottom = shifted ? x == (T)0 : x == (T)-1;
  if (top) return kind == 0 ? (T)1 : kind == 1 ? n1 : kind == 2 ? (T)1 : n21;
  if (bottom) return kind == 0 ? odd : kind == 1 ? odd * n1 : kind == 2 ? odd * n21 : odd;
  const T y = shifted ? x + x - (T)1 : x;
  const long big = (kind == 0 || shifted) ? ((shifted && kind == 3) ? 4 : 6) : 8;
  if (n > big && fabs(y) < (T)1) {
    const T th = acos(y);
    if (kind == 0) return cos((T)n * th);
    if (kind == 1) {
      if (sin(th) != (T)0) return sin((T)(n + 1) * th) / sin(th);
      return n1 * cos(n1 * th) / y;
    }
    if (kind == 2) {
      if (sin(th / (T)2) != (T)1) return cos(((T)n + (T)0.5) * th) / cos(th / (T)2);
      return odd * n21;
    }
    if (cos(th / (T)2) != (T)1) return sin(((T)n + (T)0.5) * th) / sin(th / (T)2);
    return (!shifted && x > (T)0) ? n21 : odd;
  }
  const T first = kind == 0 ? y : kind == 1 ? y + y : kind == 2 ? y + y - (T)1 : y + y + (T)1;
  if (n == 0) return (T)1;
  T p = (T)1, q = first;
  for (long k = 2; k <= n && !isnan(q); k++) {
    const T r = (y + y) * q - p;
    p = q; q = r;
  }
  return q;
}""")

# H_n (physicists'), He_n (probabilists'), L_n and P_n by their recurrences; H and He are NaN
# beyond n = 128 (float) or 512 (double), as PyTorch's.
register_helper("orthopoly", r"""
inline T cg_orthopoly_T(T x, T nf, int kind) {
  if (isnan(nf) || isinf(nf) || nf <= (T)-1) return (T)0;
  const long n = (long)nf;
  if (kind == 2 && x == (T)0) return (T)1;
  if (kind == 3 && fabs(x) == (T)1) return (x > (T)0 || !(n & 1)) ? (T)1 : (T)-1;
  if (n == 0) return (T)1;
  if (kind <= 1 && n > (sizeof(T) == 8 ? 512 : 128)) return (T)NAN;
  T p = (T)1, q = kind == 0 ? x + x : kind == 2 ? (T)1 - x : x;
  for (long k = 1; k < n && !isnan(q); k++) {
    T r;
    if (kind == 0) r = (x + x) * q - (T)(2 * k) * p;
    else if (kind == 1) r = x * q - (T)k * p;
    else if (kind == 2) r = (((T)(2 * k) + ((T)1 - x)) * q - (T)k * p) / (T)(k + 1);
    else r = ((T)(2 * k + 1) * x * q - (T)k * p) / (T)(k + 1);
    p = q; q = r;
  }
  return q;
}""")


def _np_poly(fn):
    """A float64 reference of a polynomial row from scipy's ``eval_*`` (n truncated, 0 for
    n < 0): the values away from PyTorch's endpoint and large-n special cases."""
    def ref(x, n):
        sc = _scipy_special()
        x, n = np.asarray(x), np.asarray(n)
        out = np.result_type(x, n)
        out = np.float32 if out.kind in "biu" else out
        nf = np.trunc(n.astype(np.float64))
        with np.errstate(all="ignore"):
            v = fn(sc, np.where(nf < 0, 0, nf).astype(np.int64), x.astype(np.float64))
        return np.where(nf < 0, 0.0, v).astype(out)

    return ref


def _chebyshev_rec(n, y, shift):
    """V (shift -1) and W (shift 1) by their recurrence from 1 and 2y + shift."""
    n, y = np.broadcast_arrays(n, y)
    p, q = np.ones(y.shape), 2 * y + shift
    out = np.where(n == 0, 1.0, q)
    for k in range(2, int(n.max(initial=0)) + 1):
        p, q = q, 2 * y * q - p
        out = np.where(n == k, q, out)
    return out


_POLYS = {
    "chebyshev_polynomial_t": ("cg_chebyshev_{T}({a}, {b}, 0, 0)",
                               lambda sc, n, x: sc.eval_chebyt(n, x)),
    "chebyshev_polynomial_u": ("cg_chebyshev_{T}({a}, {b}, 1, 0)",
                               lambda sc, n, x: sc.eval_chebyu(n, x)),
    "chebyshev_polynomial_v": ("cg_chebyshev_{T}({a}, {b}, 2, 0)",
                               lambda sc, n, x: _chebyshev_rec(n, x, -1.0)),
    "chebyshev_polynomial_w": ("cg_chebyshev_{T}({a}, {b}, 3, 0)",
                               lambda sc, n, x: _chebyshev_rec(n, x, 1.0)),
    "shifted_chebyshev_polynomial_t": ("cg_chebyshev_{T}({a}, {b}, 0, 1)",
                                       lambda sc, n, x: sc.eval_sh_chebyt(n, x)),
    "shifted_chebyshev_polynomial_u": ("cg_chebyshev_{T}({a}, {b}, 1, 1)",
                                       lambda sc, n, x: sc.eval_sh_chebyu(n, x)),
    "shifted_chebyshev_polynomial_v": ("cg_chebyshev_{T}({a}, {b}, 2, 1)",
                                       lambda sc, n, x: _chebyshev_rec(n, 2 * x - 1, -1.0)),
    "shifted_chebyshev_polynomial_w": ("cg_chebyshev_{T}({a}, {b}, 3, 1)",
                                       lambda sc, n, x: _chebyshev_rec(n, 2 * x - 1, 1.0)),
    "hermite_polynomial_h": ("cg_orthopoly_{T}({a}, {b}, 0)",
                             lambda sc, n, x: sc.eval_hermite(n, x)),
    "hermite_polynomial_he": ("cg_orthopoly_{T}({a}, {b}, 1)",
                              lambda sc, n, x: sc.eval_hermitenorm(n, x)),
    "laguerre_polynomial_l": ("cg_orthopoly_{T}({a}, {b}, 2)",
                              lambda sc, n, x: sc.eval_laguerre(n, x)),
    "legendre_polynomial_p": ("cg_orthopoly_{T}({a}, {b}, 3)",
                              lambda sc, n, x: sc.eval_legendre(n, x)),
}
for _name, (_expr, _fn) in _POLYS.items():
    binary(f"special_{_name}", _np_poly(_fn), _expr, _floating, vec=False,
           differentiable=False)

SPECIAL_OPS = {name: OPS[name] for name in OPS if name.startswith("special_")}
