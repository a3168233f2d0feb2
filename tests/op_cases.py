"""Op cases as data: one row per elementwise op, run against the registry's numpy
reference on many layouts and dtypes (see test_elementwise.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Case:
    op: str
    nargs: int = 1
    low: float = -3.0
    high: float = 3.0
    dtypes: tuple = ("float32", "float64", "float16", "int64", "int32")
    atol: float = 1e-5
    rtol: float = 1e-5
    nonzero_b: bool = False  # second operand kept away from zero (division)
    notes: dict = field(default_factory=dict)


FLOAT = ("float32", "float64", "float16")
F3264 = ("float32", "float64")
ALL = ("float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool")
INTS = ("int64", "int32", "int8", "uint8", "bool")

CASES = [
    Case("neg", dtypes=("float32", "float64", "float16", "int64", "int32", "int8")),
    Case("abs", dtypes=("float32", "float64", "float16", "int64", "int32", "int8")),
    Case("sign", dtypes=("float32", "float64", "int64", "int32")),
    Case("floor"), Case("ceil"), Case("round"),
    Case("relu"),
    Case("exp", low=-5, high=5),
    Case("log", low=0.1, high=10),
    Case("log1p", low=-0.9, high=10),
    Case("expm1", low=-3, high=3),
    Case("sqrt", low=0.0, high=10),
    Case("rsqrt", low=0.1, high=10),
    Case("sin"), Case("cos"), Case("tanh"), Case("sigmoid", low=-10, high=10),
    Case("erf"),
    Case("reciprocal", low=0.5, high=4),
    Case("hardswish", low=-5, high=5, dtypes=FLOAT),
    Case("hardsigmoid", low=-5, high=5, dtypes=FLOAT),
    Case("bitwise_not", dtypes=INTS),
    Case("logical_not", dtypes=ALL),
    Case("isnan", dtypes=FLOAT),
    Case("add", 2, dtypes=ALL), Case("sub", 2, dtypes=("float32", "float64", "float16", "int64", "int32")),
    Case("mul", 2, dtypes=ALL),
    Case("div", 2, nonzero_b=True, dtypes=("float32", "float64", "float16", "int64", "int32")),
    Case("floor_divide", 2, nonzero_b=True, dtypes=("float32", "float64", "int64", "int32")),
    Case("remainder", 2, nonzero_b=True, dtypes=("float32", "float64", "int64", "int32")),
    Case("pow", 2, low=0.5, high=2.0, dtypes=("float32", "float64")),
    Case("maximum", 2, dtypes=ALL), Case("minimum", 2, dtypes=ALL),
    Case("clamp_min", 2, dtypes=ALL[:-1]), Case("clamp_max", 2, dtypes=ALL[:-1]),
    Case("atan2", 2, dtypes=("float32", "float64")),
    Case("eq", 2, dtypes=ALL), Case("ne", 2, dtypes=ALL), Case("lt", 2, dtypes=ALL),
    Case("le", 2, dtypes=ALL), Case("gt", 2, dtypes=ALL), Case("ge", 2, dtypes=ALL),
    Case("bitwise_and", 2, dtypes=INTS), Case("bitwise_or", 2, dtypes=INTS),
    Case("bitwise_xor", 2, dtypes=INTS),
    Case("logical_and", 2, dtypes=ALL), Case("logical_or", 2, dtypes=ALL),
    Case("logical_xor", 2, dtypes=ALL),
    Case("where", 3, dtypes=("float32", "int64", "float16", "bool")),
    Case("to_dtype", dtypes=ALL),
    Case("threshold_backward", 2, dtypes=("float32", "float64", "float16")),
    Case("addcmul", 3, dtypes=("float32", "float64", "float16", "int64")),
    Case("addcdiv", 3, low=0.5, high=3.0, dtypes=FLOAT),
    Case("lerp", 3, dtypes=FLOAT),
    Case("binary_cross_entropy", 2, low=0.05, high=0.95, dtypes=("float32", "float64")),
    Case("trunc"),
    Case("exp2", low=-5, high=5), Case("log2", low=0.1, high=10),
    Case("log10", low=0.1, high=10),
    Case("tan", low=-1.2, high=1.2), Case("atan"),
    Case("asin", low=-0.95, high=0.95, dtypes=FLOAT),
    Case("acos", low=-0.95, high=0.95, dtypes=FLOAT),
    Case("sinh"), Case("cosh"),
    Case("signbit", dtypes=("float32", "float64", "float16", "int64", "int32", "int8",
                            "uint8", "bool")),
    Case("fmod", 2, nonzero_b=True, dtypes=("float32", "float64", "int64", "int32")),
    Case("bitwise_left_shift", 2, dtypes=("int64", "int32", "int8", "uint8")),
    Case("bitwise_right_shift", 2, dtypes=("int64", "int32", "int8", "uint8")),
    Case("erfc"),
    Case("erfinv", low=-0.99, high=0.99, dtypes=FLOAT + ("int64",)),
    Case("lgamma", low=0.1, high=8), Case("digamma", low=0.1, high=8),
    Case("_standard_gamma_grad", 2, low=0.05, high=12, dtypes=("float32", "float64")),
    Case("logaddexp", 2, low=-20, high=20, dtypes=FLOAT),
    Case("logaddexp2", 2, low=-20, high=20, dtypes=FLOAT),
    Case("hypot", 2, dtypes=FLOAT),
    Case("xlogy", 2, low=0.1, high=3),
    Case("copysign", 2),
    Case("heaviside", 2, dtypes=("float32", "float64", "int64", "int32")),
    Case("acosh", low=1.1, high=6, dtypes=FLOAT), Case("asinh", dtypes=FLOAT),
    Case("atanh", low=-0.9, high=0.9, dtypes=FLOAT),
    Case("gcd", 2, dtypes=("int64", "int32", "int8", "uint8")),
    Case("lcm", 2, dtypes=("int64", "int32", "int8", "uint8")),
    Case("sinc", dtypes=FLOAT),
    Case("i0", low=-6, high=6, dtypes=FLOAT),
    Case("nextafter", 2, dtypes=("float32", "float64")),
    # torch.special's rows (ops/special.py), against scipy; tests/test_parity_special.py
    # compares them with PyTorch over wide ranges
    Case("special_entr", low=0.05, high=5, dtypes=F3264),
    Case("special_erfcx", low=-3, high=12, dtypes=F3264),
    Case("special_ndtr", low=-6, high=6, dtypes=F3264),
    Case("special_log_ndtr", low=-12, high=5, dtypes=F3264),
    Case("special_ndtri", low=0.01, high=0.99, dtypes=F3264),
    Case("special_i0e", low=-25, high=25, dtypes=F3264),
    Case("special_i1e", low=-25, high=25, dtypes=F3264),
    Case("special_spherical_bessel_j0", low=-10, high=10, dtypes=F3264),
    Case("special_bessel_j0", low=-30, high=30, dtypes=F3264),
    Case("special_bessel_j1", low=-30, high=30, dtypes=F3264),
    Case("special_bessel_y0", low=0.1, high=30, dtypes=F3264),
    Case("special_bessel_y1", low=0.1, high=30, dtypes=F3264),
    Case("special_modified_bessel_i0", low=-10, high=10, dtypes=F3264),
    Case("special_modified_bessel_i1", low=-10, high=10, dtypes=F3264),
    Case("special_modified_bessel_k0", low=0.05, high=6, dtypes=F3264),
    Case("special_modified_bessel_k1", low=0.05, high=6, dtypes=F3264),
    Case("special_scaled_modified_bessel_k0", low=0.05, high=30, dtypes=F3264),
    Case("special_scaled_modified_bessel_k1", low=0.05, high=30, dtypes=F3264),
    Case("special_airy_ai", low=-4, high=5, dtypes=F3264, atol=1e-4),
    Case("igamma", 2, low=0.1, high=8, dtypes=("float32", "float64")),
    Case("igammac", 2, low=0.1, high=8, dtypes=("float32", "float64")),
    Case("special_zeta", 2, low=1.1, high=6, dtypes=F3264, atol=1e-4),
] + [Case(f"special_{name}", 2, low=-1.5, high=6, dtypes=F3264, atol=1e-4)
     for name in ("chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
                  "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t",
                  "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
                  "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
                  "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p")]

# ops with no direct case here: fill is exercised by every creation test; the internal rows
# of i0's gradient and of frexp by test_parity_math
NOT_CASED = {"fill", "_i1", "polygamma", "frexp_mantissa", "frexp_exponent"}
