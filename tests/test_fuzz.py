"""Differential fuzzing against numpy. Hypothesis draws the op, the dtypes, the shapes (0-
and 1-sized dims, broadcasting), the layout of each operand (transposed, stepped with an
offset, expanded), Python scalars and 0-d tensors; the expected value is numpy's, with
PyTorch's semantics written out where the two differ (type promotion with scalars and 0-d
tensors, true division of integers, integer indices applied before advanced ones, ...).
Families: elementwise, reductions, matmul, indexing and setitem, view chains (with writes
through them), cat/stack, chains of ops across dtypes, each also through cg.compile.
Gradients of random float64 programs are checked against central differences. With
PyTorch installed the same draws run against it too (values, and gradients also where its
conventions decide: ties, zeros, clamp's bounds). Every bug these tests found has a named
regression case at the end.

CLGRAPH_FUZZ_EXAMPLES (default 6) sets the examples per test (times a per-test weight);
raise it for a long run. Shapes and dtypes come from small fixed sets so that draws share
their kernels."""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_elementwise import TOL, _finite_max

import clgraph as cg
from clgraph.autograd import gradcheck, gradgradcheck

try:
    import torch

    if not torch.__version__.startswith("2.13."):  # the version the API follows
        torch = None
except ImportError:
    torch = None

EXAMPLES = int(os.environ.get("CLGRAPH_FUZZ_EXAMPLES", "6"))


def fuzz(weight: float = 1.0):
    """Hypothesis settings for one fuzz test: ``weight`` times CLGRAPH_FUZZ_EXAMPLES."""
    return settings(max_examples=max(1, round(EXAMPLES * weight)))


FLOATS = ("float32", "float64", "float16")
INTS = ("int8", "int16", "int32", "int64", "uint8")
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ("bool",)
INTEGRAL = INTS + ("bool",)
KIND = {"bool": 0, **dict.fromkeys(INTS, 1), **dict.fromkeys(FLOATS, 2)}
SHAPES = [(), (0,), (1,), (5,), (2, 3), (3, 1), (1, 4), (0, 3), (3, 8), (2, 1, 3), (3, 2, 4)]
LAYOUTS = ("contiguous", "transposed", "strided", "expanded")
_GAP = 9  # fills the gaps of stepped roots: a kernel reading one shows in the result


# --- PyTorch's type promotion, written independently of clgraph.dtypes ------------------------


def promote(a: str, b: str) -> str:
    """torch.promote_types: a higher kind (bool < integer < float) wins outright; within a
    kind numpy's lattice (uint8 with int8 gives int16) is PyTorch's."""
    if KIND[a] != KIND[b]:
        return a if KIND[a] > KIND[b] else b
    return np.promote_types(a, b).name


def scalar_kind(s) -> int:
    return 0 if isinstance(s, bool) else 1 if isinstance(s, int) else 2


def result_dtype(*operands) -> str:
    """torch.result_type: dimensioned tensors, then 0-d tensors, then Python scalars; a
    lower tier only counts when it is of a higher kind."""
    dims = [o.dtype for o in operands if isinstance(o, Arg) and o.ndim]
    zero = [o.dtype for o in operands if isinstance(o, Arg) and not o.ndim]
    kinds = [scalar_kind(o) for o in operands if not isinstance(o, Arg)]
    out = reduce(promote, dims) if dims else None
    if zero:
        z = reduce(promote, zero)
        out = z if out is None or KIND[z] > KIND[out] else out
    if kinds and (out is None or max(kinds) > KIND[out]):
        out = ("bool", "int64", "float32")[max(kinds)]
    return out


def wide(x, dtype: str) -> np.ndarray:
    """``x`` cast to ``dtype`` (as PyTorch casts operands to the common dtype), then widened
    to float64 / int64 for an exact reference; integer results wrap on the final cast."""
    x = np.asarray(x).astype(dtype)
    return x.astype({0: np.bool_, 1: np.int64, 2: np.float64}[KIND[dtype]])


# --- operands -----------------------------------------------------------------------------


def _views(x, views):
    """Apply view steps alike to a numpy array or a tensor."""
    for kind, arg in views:
        if kind == "index":
            x = x[arg]
        elif kind == "permute":
            x = x.transpose(arg) if isinstance(x, np.ndarray) else x.permute(arg)
        else:
            x = np.broadcast_to(x, arg) if isinstance(x, np.ndarray) else x.expand(arg)
    return x


@dataclass
class Arg:
    """A tensor operand: the values of its root buffer and the views that make the operand
    from it, applied alike to numpy (the expected value) and to tensors."""

    root: np.ndarray
    views: tuple = ()
    layout: str = "contiguous"

    @property
    def arr(self) -> np.ndarray:
        return _views(self.root, self.views)

    @property
    def dtype(self) -> str:
        return self.root.dtype.name

    @property
    def shape(self) -> tuple:
        return self.arr.shape

    @property
    def ndim(self) -> int:
        return self.arr.ndim

    def build(self, m=cg):
        return _views(m.from_numpy(self.root.copy()), self.views)

    def __repr__(self):
        return f"{self.layout} {self.dtype}{list(self.shape)}"


@st.composite
def values(draw, shape, dtype, low=-4.0, high=4.0, *, integral=False, nonzero=False,
           wide=False, special=False):
    """Arrays of ``dtype``: floats mix a quarter grid (ties, exact results) with arbitrary
    values; ``integral`` floats are whole numbers; ``wide`` integers span the dtype;
    ``special`` floats may hold a few NaNs and infinities."""
    arr = draw(_values(shape, dtype, low, high, integral, nonzero, wide))
    if special and KIND[dtype] == 2 and arr.size:
        for _ in range(draw(st.integers(0, 2))):
            at = draw(st.integers(0, arr.size - 1))
            arr.flat[at] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return arr


def _no_subnormals(a: np.ndarray) -> np.ndarray:
    """Values subnormal in ``a``'s float dtype as 0 (a float64 draw of 5e-45 is normal, its
    float32 cast is not): OpenCL devices may flush them (single precision denormals are
    optional), and a variance with no degrees of freedom then gives nan for inf."""
    if a.dtype.kind != "f":
        return a
    return np.where(np.abs(a) < np.finfo(a.dtype).tiny, np.zeros_like(a), a)


def _values(shape, dtype, low, high, integral, nonzero, wide):
    if dtype == "bool":
        return hnp.arrays(np.bool_, shape)
    if KIND[dtype] == 1:
        info = np.iinfo(dtype)
        lo, hi = (info.min, info.max) if wide else (max(info.min, math.ceil(low)),
                                                    min(info.max, math.floor(high)))
        elements = st.integers(lo, hi)
    elif integral:
        elements = st.integers(math.ceil(low), math.floor(high)).map(float)
    else:
        elements = (st.integers(math.ceil(low * 4), math.floor(high * 4)).map(lambda i: i / 4)
                    | st.floats(low, high, allow_subnormal=False))
    arrays = hnp.arrays(np.int64 if KIND[dtype] == 1 else np.float64, shape, elements=elements)
    arrays = arrays.map(lambda a: _no_subnormals(a.astype(dtype)))
    if nonzero:
        arrays = arrays.map(lambda a: np.where(a == 0, np.ones_like(a), a))
    return arrays


@st.composite
def tensors(draw, shape, dtype, layouts=LAYOUTS, **kw) -> Arg:
    """An operand of ``shape`` and ``dtype`` in a drawn layout; ``kw`` go to values()."""
    shape = tuple(shape)
    layout = draw(st.sampled_from(layouts))
    if layout == "expanded" and shape:
        keep = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
        lead = draw(st.integers(0, len(shape)))
        src = tuple(n if k else 1 for n, k in zip(shape, keep))[lead:]
        return Arg(draw(values(src, dtype, **kw)), (("expand", shape),), layout)
    arr = draw(values(shape, dtype, **kw))
    if layout == "transposed" and len(shape) >= 2:
        perm = tuple(reversed(range(len(shape))))
        return Arg(np.ascontiguousarray(arr.transpose(perm)), (("permute", perm),), layout)
    if layout == "strided":
        root = np.full(tuple(2 * n + 1 for n in shape) or (2,), _GAP, arr.dtype)
        index = tuple(slice(1, None, 2) for _ in shape) or (1, ...)
        root[index] = arr
        return Arg(root, (("index", index),), layout)
    return Arg(arr)


def plant(x: Arg, value):
    """Write ``value`` (cast to x's dtype) into one element of ``x``: ties between operands,
    and a float that is not exactly representable meets its own rounding."""
    target = x.root if x.layout == "expanded" else x.arr
    if target.size and (KIND[x.dtype] == 2 or np.isfinite(value)):
        target.flat[0] = np.asarray(value).astype(x.dtype)


def scalars(kind: int, low=-4.0, high=4.0, integral=False):
    if kind == 0:
        return st.booleans()
    if kind == 1:
        return st.integers(math.ceil(low), math.floor(high))
    if integral:
        return st.integers(math.ceil(low), math.floor(high)).map(float)
    return (st.integers(math.ceil(low * 4), math.floor(high * 4)).map(lambda i: i / 4)
            | st.floats(low, high, allow_subnormal=False))


@st.composite
def broadcast_pair(draw, shapes=SHAPES):
    """Two shapes that broadcast: the second drops leading dims and/or sets dims to 1."""
    a = draw(st.sampled_from(shapes))
    lead = draw(st.integers(0, len(a)))
    ones = draw(st.lists(st.booleans(), min_size=len(a), max_size=len(a)))
    b = tuple(1 if o else n for n, o in zip(a, ones))[lead:]
    return (a, b) if draw(st.booleans()) else (b, a)


# --- cases, running and comparing ------------------------------------------------------------


@dataclass
class Raises:
    """The expected outcome is this exception (PyTorch's type)."""

    types: Any


@dataclass
class Case:
    """One drawn call: ``fn(m, *operands)`` runs it with m = clgraph (or torch);
    ``ref(*numpy operands)`` gives numpy arrays of the expected dtype, or Raises."""

    name: str
    args: list
    fn: Callable
    ref: Callable
    tol: str = ""  # the dtype whose tolerance applies, when coarser than the result's

    def __repr__(self):
        return f"{self.name}({', '.join(map(repr, self.args))})"

    def run(self, m=cg):
        return self.fn(m, *[a.build(m) if isinstance(a, Arg) else a for a in self.args])

    def expected(self):
        with np.errstate(all="ignore"):
            return self.ref(*[a.arr if isinstance(a, Arg) else a for a in self.args])


def host(result):
    """A result as (numpy array, dtype name), recursively through tuples."""
    if isinstance(result, (tuple, list)):
        return tuple(host(r) for r in result)
    name = str(result.dtype).rsplit(".", 1)[-1]
    if torch is not None and isinstance(result, torch.Tensor):
        return result.detach().numpy(), name
    return result.numpy(), name


def assert_matches(got, expected, what: str, tol: str = ""):
    """Same structure, shapes and dtypes; values exact for integers and bools, within the
    tolerance of the dtype (or of ``tol``) scaled by the largest finite value for floats."""
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), what
        for n, (g, e) in enumerate(zip(got, expected)):
            assert_matches(g, e, f"{what} [output {n}]", tol)
        return
    arr, dtype = got
    expected = np.asarray(expected)
    assert dtype == expected.dtype.name, f"{what}: dtype {dtype}, expected {expected.dtype}"
    assert arr.shape == expected.shape, f"{what}: shape {arr.shape}, expected {expected.shape}"
    if expected.dtype.kind == "f":
        atol, rtol = (max(t) for t in zip(TOL[expected.dtype.name], TOL.get(tol, (0, 0))))
        np.testing.assert_allclose(arr.astype(np.float64), expected.astype(np.float64),
                                   rtol=rtol, atol=atol * max(1.0, _finite_max(expected)),
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(arr, expected, err_msg=what)


def check(case: Case):
    expected = case.expected()
    if isinstance(expected, Raises):
        with pytest.raises(expected.types):
            case.run()
        return
    assert_matches(host(case.run()), expected, repr(case), case.tol)


# --- elementwise ----------------------------------------------------------------------------


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


# name: (numpy function of the widened input, result ("same", "float": integers give
# float32, "bool"), dtypes PyTorch defines it for, domain (low, high))
UNARY = {
    "neg": (np.negative, "same", NUMERIC, None),
    "abs": (np.abs, "same", NUMERIC, None),
    "sign": (lambda x: np.where(np.isnan(x), 0, np.sign(x)), "same", ALL, None),
    "floor": (np.floor, "same", NUMERIC, None),
    "ceil": (np.ceil, "same", NUMERIC, None),
    "round": (np.round, "same", NUMERIC, None),
    "relu": (lambda x: np.maximum(x, 0), "same", NUMERIC, None),
    "square": (np.square, "square", ALL, None),
    "exp": (np.exp, "float", ALL, None),
    "log": (np.log, "float", ALL, (0.0, 8.0)),
    "log1p": (np.log1p, "float", ALL, (-0.9, 8.0)),
    "expm1": (np.expm1, "float", ALL, None),
    "sqrt": (np.sqrt, "float", ALL, (0.0, 8.0)),
    "rsqrt": (lambda x: 1 / np.sqrt(x), "float", ALL, (0.0, 8.0)),
    "sin": (np.sin, "float", ALL, None),
    "cos": (np.cos, "float", ALL, None),
    "tanh": (np.tanh, "float", ALL, None),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), "float", ALL, None),
    "erf": (_erf, "float", ALL, None),
    "reciprocal": (np.reciprocal, "float", ALL, None),
    "bitwise_not": (np.invert, "same", INTEGRAL, None),
    "logical_not": (np.logical_not, "bool", ALL, None),
    "isnan": (np.isnan, "bool", ALL, None),
    "isinf": (np.isinf, "bool", ALL, None),
    "isfinite": (np.isfinite, "bool", ALL, None),
}


def _result(rule: str, common: str) -> str:
    if rule == "float":
        return common if KIND[common] == 2 else "float32"
    if rule == "square":
        return "int64" if common == "bool" else common
    return "bool" if rule == "bool" else common


@st.composite
def unary_cases(draw):
    name = draw(st.sampled_from(sorted(UNARY)))
    fn, rule, dtypes, domain = UNARY[name]
    dtype = draw(st.sampled_from(dtypes))
    low, high = domain or (-4.0, 4.0)
    x = draw(tensors(draw(st.sampled_from(SHAPES)), dtype, low=low, high=high, special=True))
    out = _result(rule, dtype)
    compute = out if rule == "float" else dtype
    method = draw(st.booleans())

    def run(m, x):
        return getattr(x, name)() if method else getattr(m, name)(x)

    def ref(x):
        if name == "sign" and dtype == "bool":
            return x.copy()
        return np.asarray(fn(wide(x, compute))).astype(out)

    return Case(name, [x], run, ref)


# name: (numpy function of the widened operands, Python operator or None, dtypes, result)
BINARY = {
    "add": (np.add, operator.add, ALL, "same"),
    "sub": (np.subtract, operator.sub, NUMERIC, "same"),
    "mul": (np.multiply, operator.mul, ALL, "same"),
    "div": (np.true_divide, operator.truediv, ALL, "float"),
    "floor_divide": (np.floor_divide, operator.floordiv, NUMERIC, "same"),
    "remainder": (np.remainder, operator.mod, NUMERIC, "same"),
    "pow": (np.power, operator.pow, NUMERIC, "same"),
    "maximum": (np.maximum, None, ALL, "same"),
    "minimum": (np.minimum, None, ALL, "same"),
    "atan2": (np.arctan2, None, ALL, "float"),
    "bitwise_and": (np.bitwise_and, operator.and_, INTEGRAL, "same"),
    "bitwise_or": (np.bitwise_or, operator.or_, INTEGRAL, "same"),
    "bitwise_xor": (np.bitwise_xor, operator.xor, INTEGRAL, "same"),
    "logical_and": (np.logical_and, None, ALL, "logical"),
    "logical_or": (np.logical_or, None, ALL, "logical"),
    "logical_xor": (np.logical_xor, None, ALL, "logical"),
}
for _name, _fn, _op in [("eq", np.equal, operator.eq), ("ne", np.not_equal, operator.ne),
                        ("lt", np.less, operator.lt), ("le", np.less_equal, operator.le),
                        ("gt", np.greater, operator.gt), ("ge", np.greater_equal, operator.ge)]:
    BINARY[_name] = (_fn, _op, ALL, "bool")


def _operand_domains(name, common, draw):
    """Value domains (kwargs of values()/scalars()) of the two operands of ``name``."""
    if name in ("floor_divide", "remainder") and KIND[common] < 2:
        return {}, {"nonzero": True}
    if name == "pow":
        if KIND[common] < 2:
            return {"low": -3, "high": 3}, {"low": 0, "high": 4}
        if draw(st.booleans()):  # any base, whole exponents
            return {"low": -3, "high": 3}, {"low": -2, "high": 3, "integral": True}
        return {"low": 0.25, "high": 3}, {"low": -2, "high": 2}
    return {}, {}


@st.composite
def binary_cases(draw):
    name = draw(st.sampled_from(sorted(BINARY)))
    fn, op, dtypes, rule = BINARY[name]
    forms = ["tensors", "zero_dim"] + (["scalar", "rscalar"] if op else [])
    form = draw(st.sampled_from(forms))
    if form == "tensors":
        shapes = draw(broadcast_pair())
    else:
        shapes = (draw(st.sampled_from(SHAPES)), ())
    kinds = sorted({KIND[d] for d in dtypes})
    da = draw(st.sampled_from(dtypes))
    if form in ("scalar", "rscalar"):
        # the scalar's kind need not match; an integer scalar with uint8 stays non-negative
        db = ("bool", "int64", "float32")[draw(st.sampled_from(kinds))]
    else:
        db = draw(st.sampled_from(dtypes))
    dummy = [Arg(np.zeros(s, d)) for s, d in zip(shapes, (da, db))]
    if form in ("scalar", "rscalar"):
        dummy[1] = {"bool": True, "int64": 1, "float32": 1.0}[db]
    common = result_dtype(*dummy)
    dom_a, dom_b = _operand_domains(name, common, draw)
    if form == "rscalar":
        dom_a, dom_b = dom_b, dom_a
    if "uint8" in (da, db):
        dom_a, dom_b = ({**d, "low": max(0, d.get("low", 0))} for d in (dom_a, dom_b))
    if name not in ("floor_divide", "remainder", "pow"):  # NaN and inf where numpy is PyTorch
        dom_a, dom_b = ({**d, "special": True} for d in (dom_a, dom_b))
    a = draw(tensors(shapes[0], da, **dom_a))
    if form in ("scalar", "rscalar"):
        b = draw(scalars(scalar_kind(dummy[1]), **{k: v for k, v in dom_b.items()
                                                    if k not in ("nonzero", "special")}))
        if dom_b.get("nonzero") and b == 0:
            b = 1
    else:
        b = draw(tensors(shapes[1], db, **dom_b))
    if (KIND[common] == 2 or name not in ("pow", "floor_divide", "remainder")) and draw(
            st.booleans()):
        plant(a, b if not isinstance(b, Arg) else b.arr.flat[0] if b.arr.size else 0)
    args = [b, a] if form == "rscalar" else [a, b]
    out = _result(rule, common) if rule != "logical" else "bool"
    compute = out if rule == "float" else common
    how = draw(st.sampled_from(["function", "method", "operator"] if op else
                               ["function", "method"]))
    if form == "rscalar":
        how = "operator"

    def run(m, x, y):
        if how == "operator":
            return op(x, y)
        return getattr(x, name)(y) if how == "method" else getattr(m, name)(x, y)

    def ref(x, y):
        if rule == "logical":
            return np.asarray(fn(np.asarray(x) != 0, np.asarray(y) != 0))
        return np.asarray(fn(wide(x, compute), wide(y, compute))).astype(out)

    return Case(f"{name}[{how}]", args, run, ref)


@st.composite
def where_cases(draw):
    sc, sa = draw(broadcast_pair())
    sb = draw(st.sampled_from([sa, sc, ()]))
    cond = draw(tensors(sc, "bool"))
    a, b = (draw(tensors(s, draw(st.sampled_from(ALL)), special=True)) for s in (sa, sb))
    if draw(st.booleans()):
        b = draw(scalars(draw(st.integers(0, 2))))
    out = result_dtype(a, b)

    def ref(c, x, y):
        return np.where(c, wide(x, out), wide(y, out)).astype(out)

    return Case("where", [cond, a, b], lambda m, c, x, y: m.where(c, x, y), ref)


@st.composite
def clamp_cases(draw):
    shape = draw(st.sampled_from(SHAPES))
    x = draw(tensors(shape, draw(st.sampled_from(NUMERIC)), special=True))
    bounds = []
    for _ in range(2):
        form = draw(st.sampled_from(["none", "scalar", "tensor"]))
        if form == "scalar":
            kinds = [1, 2] if x.dtype != "uint8" else [2]
            bounds.append(draw(scalars(draw(st.sampled_from(kinds)),
                                       low=0 if x.dtype == "uint8" else -4)))
        elif form == "tensor":
            sb = draw(st.sampled_from([shape, shape[1:], ()]))
            bounds.append(draw(tensors(sb, draw(st.sampled_from([x.dtype, "float32"])),
                                       low=0 if x.dtype == "uint8" else -4)))
        else:
            bounds.append(None)
    if bounds == [None, None]:
        bounds[0] = 0
    lo, hi = bounds
    if isinstance(lo, Arg) != isinstance(hi, Arg) and None not in bounds:
        hi = None  # torch.clamp takes both bounds as numbers or both as tensors
    out = result_dtype(x, *[b for b in (lo, hi) if b is not None])
    args = [x] + [b for b in (lo, hi) if b is not None]

    def run(m, x, *b):
        it = iter(b)
        lo_, hi_ = (next(it) if v is not None else None for v in (lo, hi))
        return m.clamp(x, min=lo_, max=hi_)

    def ref(x, *b):
        it = iter(b)
        r = wide(x, out)
        if lo is not None:
            r = np.maximum(r, wide(next(it), out))
        if hi is not None:
            r = np.minimum(r, wide(next(it), out))
        return r.astype(out)

    return Case(f"clamp(min={lo!r}, max={hi!r})", args, run, ref)


# --- reductions -----------------------------------------------------------------------------


def _acc(x) -> np.ndarray:
    return x.astype(np.float64 if x.dtype.kind == "f" else np.int64)


def _lse(x, axes, keepdim):
    n = math.prod(x.shape[a] for a in axes)
    if n == 0:
        return np.full(np.sum(x, axes, keepdims=keepdim).shape, -np.inf)
    m = np.max(x, axes, keepdims=True)
    m = np.where(np.isinf(m), 0, m)  # PyTorch's shift: infinite maxima are not subtracted
    r = np.log(np.sum(np.exp(x - m), axes, keepdims=True)) + m
    return r if keepdim else np.squeeze(r, axes)


def _var(x, axes, keepdim, c):
    n = math.prod(x.shape[a] for a in axes)
    mean = np.sum(x, axes, keepdims=True) / n
    ss = np.sum((x - mean) ** 2, axes, keepdims=keepdim)
    return ss / max(0, n - c)


def _softmax(x, axis, log):
    m = np.max(x, axis, keepdims=True) if x.shape[axis] else 0
    e = np.exp(x - m)
    s = np.sum(e, axis, keepdims=True)
    return x - m - np.log(s) if log else e / s


def _arg(fn, x, axes, keepdim, flat):
    """argmax/argmin: the first occurrence (NaN counts as the extreme)."""
    if flat:
        r = np.asarray(fn(x.reshape(-1)))
        return r.reshape((1,) * x.ndim) if keepdim else r
    r = fn(x, axes[0])
    return np.expand_dims(r, axes[0]) if keepdim else r


# name: (reference (widened x, axes, keepdim, **kwargs) -> value, dtypes PyTorch accepts
# (others raise RuntimeError), result dtype rule, dims: "multi" (None, int or tuple), "one"
# (None or int), "req" (an int), "req_multi" (int or tuple), empty: "ok" or "error")
REDUCTIONS = {
    "sum": (lambda x, a, k: np.sum(x, a, keepdims=k), ALL, "acc", "multi", "ok"),
    "prod": (lambda x, a, k: np.prod(x, a, keepdims=k), ALL, "acc", "one", "ok"),
    "mean": (lambda x, a, k: np.sum(x, a, keepdims=k) / math.prod(x.shape[i] for i in a),
             FLOATS, "same", "multi", "ok"),
    "amax": (lambda x, a, k: np.max(x, a, keepdims=k), ALL, "same", "multi", "error"),
    "amin": (lambda x, a, k: np.min(x, a, keepdims=k), ALL, "same", "multi", "error"),
    "all": (lambda x, a, k: np.all(x != 0, a, keepdims=k), ALL, "logical", "multi", "ok"),
    "any": (lambda x, a, k: np.any(x != 0, a, keepdims=k), ALL, "logical", "multi", "ok"),
    "var": (_var, FLOATS, "same", "multi", "ok"),
    "std": (lambda x, a, k, c: np.sqrt(_var(x, a, k, c)), FLOATS, "same", "multi", "ok"),
    "logsumexp": (_lse, ALL, "float", "req_multi", "ok"),
    "argmax": (lambda x, a, k, flat: _arg(np.argmax, x, a, k, flat), NUMERIC, "index", "one",
               "error"),
    "argmin": (lambda x, a, k, flat: _arg(np.argmin, x, a, k, flat), NUMERIC, "index", "one",
               "error"),
    "max": (lambda x, a, k: (np.max(x, a, keepdims=k),
                             _arg(np.argmax, x, a, k, False)), ALL, "values", "one", "error"),
    "min": (lambda x, a, k: (np.min(x, a, keepdims=k),
                             _arg(np.argmin, x, a, k, False)), ALL, "values", "one", "error"),
    "cumsum": (lambda x, a, k: np.cumsum(x, a[0]), ALL, "acc", "req", "ok"),
    "softmax": (lambda x, a, k: _softmax(x, a[0], False), FLOATS, "same", "req", "ok"),
    "log_softmax": (lambda x, a, k: _softmax(x, a[0], True), FLOATS, "same", "req", "ok"),
}


@st.composite
def dims(draw, ndim: int, style: str):
    """A ``dim`` argument: None, an int or a tuple of distinct dims, negative ones too."""
    n = max(ndim, 1)
    one = st.integers(-n, n - 1)
    forms = {"multi": ["none", "int", "tuple"], "one": ["none", "int"], "req": ["int"],
             "req_multi": ["int", "tuple"]}[style]
    form = draw(st.sampled_from(forms))
    if form == "none":
        return None
    if form == "int":
        return draw(one)
    picked = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    return tuple(d - n if draw(st.booleans()) else d for d in picked)


@st.composite
def reduce_cases(draw):
    name = draw(st.sampled_from(sorted(REDUCTIONS)))
    fn, dtypes, rule, style, empty = REDUCTIONS[name]
    dtype = draw(st.sampled_from(ALL))
    kw = {"low": -1.5, "high": 1.5} if name == "prod" else {}
    x = draw(tensors(draw(st.sampled_from(SHAPES)), dtype, special=True, **kw))
    # PyTorch checks softmax's dtype only when there is an element to compute
    assume(not ("softmax" in name and dtype not in dtypes and 0 in x.shape))
    dim = draw(dims(x.ndim, style))
    keepdim = draw(st.booleans()) if style != "req" and (dim is not None or name != "prod") \
        else False
    kwargs, extra = {}, {}
    if name in ("var", "std"):
        kwargs = draw(st.sampled_from([{}, {"unbiased": False}, {"correction": 0},
                                       {"correction": 2}]))
        extra["c"] = kwargs.get("correction", 0 if kwargs.get("unbiased") is False else 1)
    if name in ("argmax", "argmin"):
        extra["flat"] = dim is None
    if name in ("sum", "prod", "cumsum") and draw(st.booleans()):
        kwargs["dtype"] = "float64"
    whole = name in ("max", "min") and dim is None  # max(): the value only
    method = draw(st.booleans())

    def run(m, x):
        kw = {k: getattr(m, v) if k == "dtype" else v for k, v in kwargs.items()}
        if whole:
            return getattr(x, name)() if method else getattr(m, name)(x)
        if dim is not None or name != "prod":  # torch.prod takes no dim=None
            kw["dim"] = () if dim is None and name in ("amax", "amin") else dim
            if style != "req":
                kw["keepdim"] = keepdim
        return getattr(x, name)(**kw) if method else getattr(m, name)(x, **kw)

    def ref(x):
        if dtype not in dtypes:
            return Raises(RuntimeError)
        x1 = x.reshape(1) if x.ndim == 0 else x  # a 0-d tensor reduces its one element
        axes = tuple(range(x1.ndim)) if dim is None else tuple(sorted(
            {d % x1.ndim for d in (dim if isinstance(dim, tuple) else (dim,))}))
        if empty == "error" and (x.size == 0 and (dim is None or dim == ()) or any(
                x1.shape[a] == 0 for a in axes)):
            return Raises(RuntimeError if dim is None and name not in ("argmax", "argmin")
                          else IndexError)
        acc = _acc(x1.astype(kwargs["dtype"]) if "dtype" in kwargs else x1)
        if rule in ("same", "values") and KIND[dtype] < 2:
            acc = x1  # integer and bool extremes in their own dtype
        if whole:
            r = np.max(acc) if name == "max" else np.min(acc)
        else:
            r = fn(acc, axes, keepdim, **extra)
        out = {"acc": kwargs.get("dtype", "int64" if KIND[dtype] < 2 else dtype),
               "same": dtype, "values": dtype, "index": "int64",
               "logical": "uint8" if dtype == "uint8" else "bool",
               "float": dtype if KIND[dtype] == 2 else "float32"}[rule]
        if rule == "values" and not whole:
            r = (np.asarray(r[0]).astype(out), np.asarray(r[1]).astype("int64"))
            return tuple(v.reshape(()) if x.ndim == 0 else v for v in r)
        r = np.asarray(r).astype(out)
        return r.reshape(()) if x.ndim == 0 else r

    return Case(f"{name}(dim={dim!r}, keepdim={keepdim}, {kwargs})", [x], run, ref)


# --- matmul -------------------------------------------------------------------------------

BATCHES = [(), (1,), (2,), (2, 1), (1, 3)]


@st.composite
def matmul_cases(draw):
    dtype = draw(st.sampled_from(NUMERIC))
    m, k, n = (draw(st.sampled_from([0, 1, 2, 3, 5])) for _ in range(3))
    form = draw(st.sampled_from(["dot", "vm", "mv", "mm", "batched"]))
    if form == "batched":
        ba, bb = draw(broadcast_pair(BATCHES))
        sa, sb = ba + (m, k), bb + (k, n)
        sa, sb = draw(st.sampled_from([(sa, sb), (sa, (k,)), ((k,), sb)]))
    else:
        sa = {"dot": (k,), "vm": (k,), "mv": (m, k), "mm": (m, k)}[form]
        sb = {"dot": (k,), "vm": (k, n), "mv": (k,), "mm": (k, n)}[form]
    a, b = draw(tensors(sa, dtype)), draw(tensors(sb, dtype))
    hows = ["matmul", "operator"] + {"dot": ["dot"], "mv": ["mv"], "mm": ["mm"]}.get(form, [])
    if len(sa) == len(sb) == 3 and sa[0] == sb[0]:
        hows.append("bmm")
    how = draw(st.sampled_from(hows))

    def run(m, x, y):
        return x @ y if how == "operator" else getattr(m, how)(x, y)

    def ref(x, y):
        return np.asarray(np.matmul(_acc(x), _acc(y))).astype(dtype)

    return Case(how, [a, b], run, ref)


# --- indexing -------------------------------------------------------------------------------


@st.composite
def indices(draw, shape, advanced=True, unique=False):
    """An index tuple for ``shape``: ints (negative too), slices (any bounds, positive
    steps), None, an Ellipsis and, when ``advanced``, integer tensors or lists (the same
    shape for all) or one boolean mask over consecutive dims. ``unique``: no two integer
    index entries address the same element (for setitem)."""
    ndim = len(shape)
    lead = draw(st.integers(0, ndim))
    ellipsis = draw(st.booleans())
    dims_ = list(range(ndim - lead, ndim)) if ellipsis else list(range(lead))
    adv_shape = draw(st.sampled_from([(2,), (1,), (0,), (2, 2)] if not unique else [(2,), (1,)]))
    mask_used = False
    items, d = [], 0
    while d < len(dims_):
        n = shape[dims_[d]]
        kinds = ["slice"] + (["int"] if n else []) + (["array", "list"] if advanced and n else [])
        if advanced and not mask_used and not unique:
            kinds.append("mask")
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-n - 2, n + 2)
            items.append(slice(draw(bound), draw(bound), draw(st.none() | st.integers(1, 3))))
        elif kind == "mask":
            k = draw(st.integers(1, len(dims_) - d))
            mask_used = True
            items.append(draw(hnp.arrays(np.bool_, tuple(shape[j] for j in dims_[d:d + k]))))
            d += k
            continue
        else:
            size = math.prod(adv_shape)
            if unique:
                size = min(size, n)
                picks = draw(st.lists(st.integers(0, n - 1), min_size=size, max_size=size,
                                      unique=True))
                flat = [p - n if draw(st.booleans()) else p for p in picks]
            else:
                flat = draw(st.lists(st.integers(-n, n - 1), min_size=size, max_size=size))
            arr = np.array(flat, np.int64).reshape(adv_shape if size == math.prod(adv_shape) else -1)
            items.append(arr if kind == "array" else arr.tolist())
        d += 1
    if unique and sum(isinstance(i, (np.ndarray, list)) for i in items) > 1:
        items = [i if not isinstance(i, (np.ndarray, list)) or i is first else slice(None)
                 for first in [next(i for i in items if isinstance(i, (np.ndarray, list)))]
                 for i in items]
    if ellipsis:
        items.insert(0, ...)
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return tuple(items)


def _is_advanced(i) -> bool:
    return isinstance(i, (np.ndarray, list))


def torch_index(x: np.ndarray, index: tuple):
    """The numpy view (or copy) ``x[index]`` is in PyTorch: ints, slices, None and the
    Ellipsis apply first as views, then the tensor indices, at the positions they keep in
    the view (numpy would count an int next to an array as advanced too)."""
    index = tuple(np.asarray(i, np.int64) if isinstance(i, list) else i for i in index)
    basic = sum(((slice(None),) * (i.ndim if i.dtype == bool else 1) if _is_advanced(i)
                 else (i,) for i in index), ())
    y = view_index(x, basic)
    consumed = sum(np.asarray(i).ndim if _is_advanced(i) and np.asarray(i).dtype == bool
                   else 0 if i is None or i is ... else 1 for i in index)
    positions, p = {}, 0
    for i in index:
        if i is ...:
            p += x.ndim - consumed
        elif _is_advanced(i):
            a = np.asarray(i)
            positions[p] = a
            p += a.ndim if a.dtype == bool else 1
        elif not isinstance(i, int):
            p += 1
    if not positions:
        return y
    items, p = [], 0
    while p < y.ndim:
        a = positions.get(p)
        items.append(slice(None) if a is None else a)
        p += 1 if a is None or a.dtype != bool else a.ndim
    return y, tuple(items)


def view_index(x, index):
    """x[index] for basic indices, as a view (numpy gives a scalar for a 0-d result)."""
    if isinstance(x, np.ndarray) and not any(i is ... for i in index):
        index = tuple(index) + (...,)
    return x[index]


def _torch_getitem(x, index):
    r = torch_index(x, index)
    return r[0][r[1]] if isinstance(r, tuple) else r


def _index_for(m, index):
    """The index with its numpy arrays as tensors of module m."""
    return tuple(m.from_numpy(i.copy()) if isinstance(i, np.ndarray) else i for i in index)


@st.composite
def getitem_cases(draw):
    x = draw(tensors(draw(st.sampled_from(SHAPES)), draw(st.sampled_from(ALL))))
    index = draw(indices(x.shape))
    # x[i] without a tuple, except a nested list: PyTorch reads that as a tuple of indices
    single = len(index) == 1 and not (isinstance(index[0], list) and index[0] and isinstance(
        index[0][0], list)) and draw(st.booleans())

    def run(m, t):
        idx = _index_for(m, index)
        return t[idx[0]] if single else t[idx]

    def ref(t):
        try:
            return np.array(_torch_getitem(t, index))
        except IndexError:  # index shapes that do not broadcast: PyTorch's error type too
            return Raises(IndexError)

    return Case(f"getitem[{index!r}]", [x], run, ref)


@st.composite
def setitem_cases(draw):
    dtype = draw(st.sampled_from(ALL))
    x = draw(tensors(draw(st.sampled_from(SHAPES)), dtype,
                     layouts=("contiguous", "transposed", "strided")))
    index = draw(indices(x.shape, unique=True))
    target = _torch_getitem(x.arr, index).shape
    low = 0 if dtype == "uint8" else -4
    if draw(st.booleans()):
        kind = draw(st.sampled_from([0, 1, 2] if dtype != "uint8" else [0, 1]))
        value = draw(scalars(kind, low=low))
    else:
        shape = draw(st.sampled_from([target, target[1:], tuple(1 for _ in target), ()]))
        vtype = draw(st.sampled_from(ALL if dtype != "uint8" else INTEGRAL + ("float32",)))
        if any(_is_advanced(i) for i in index):
            vtype = dtype  # PyTorch's index_put takes no other dtype
        value = draw(tensors(shape, vtype, low=low))
    root = Arg(x.root)  # the whole buffer is the result: a write must stay in its view

    def run(m, r, v):
        _views(r, x.views)[_index_for(m, index)] = v
        return r

    def ref(r, v):
        r = r.copy()
        y = torch_index(_views(r, x.views), index)
        v = np.asarray(v).astype(dtype)
        if isinstance(y, tuple):
            y[0][y[1]] = v
        else:
            y[...] = v
        return r

    return Case(f"setitem[{x.layout}, {index!r}]", [root, value], run, ref)


# --- views and movement -------------------------------------------------------------------


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def movement(draw, shape):
    """One movement step for a tensor of ``shape``: (label, numpy function, tensor function).
    Copies are numpy copies too, so that numpy's aliasing is PyTorch's."""
    ndim, n = len(shape), math.prod(shape)
    d = draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
    dw = d % max(ndim, 1)
    size = shape[dw] if ndim else 1
    kinds = ["reshape", "permute", "transpose", "unsqueeze", "squeeze", "flatten", "expand",
             "slice", "flip", "roll", "contiguous", "clone", "movedim"]
    if ndim:
        kinds += ["narrow", "split"]
    if ndim <= 2:
        kinds.append("t")
    if ndim >= 2:
        kinds.append("mT")
    if ndim and size:
        kinds += ["select", "unbind"]
    if ndim and size and n:
        kinds.append("unflatten")
    kind = draw(st.sampled_from(kinds))
    if kind == "reshape":
        options = [(n,), (1, n), shape + (1,), (-1,)] if n else [(0,), (1, 0), shape]
        options += [(a, -1) for a in _divisors(n)]
        new = draw(st.sampled_from(options))
        view = draw(st.booleans())

        def fn(x):
            if isinstance(x, np.ndarray):
                return x.reshape(new)
            # view where numpy could alias (PyTorch's rule is the same), else reshape
            return x.view(new) if view and _aliases(x, new) else x.reshape(new)

        return f"reshape{new}", fn
    if kind == "permute":
        perm = tuple(draw(st.permutations(range(ndim))))
        return f"permute{perm}", lambda x: x.transpose(perm) if isinstance(
            x, np.ndarray) else x.permute(perm)
    if kind == "transpose":
        e = draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
        return f"transpose({d}, {e})", lambda x: np.swapaxes(x, d, e) if isinstance(
            x, np.ndarray) and ndim else x if isinstance(x, np.ndarray) else x.transpose(d, e)
    if kind == "t":
        return "t", lambda x: x.T if isinstance(x, np.ndarray) else x.t()
    if kind == "mT":
        return "mT", lambda x: np.swapaxes(x, -1, -2) if isinstance(x, np.ndarray) else x.mT
    if kind == "unsqueeze":
        u = draw(st.integers(-ndim - 1, ndim))
        return f"unsqueeze({u})", lambda x: np.expand_dims(x, u) if isinstance(
            x, np.ndarray) else x.unsqueeze(u)
    if kind == "squeeze":
        arg = draw(st.sampled_from([None, d] + ([(dw, -1)] if dw < ndim - 1 else [])
                                   if ndim else [None]))
        axes = tuple(range(ndim)) if arg is None else tuple(
            {a % ndim for a in (arg if isinstance(arg, tuple) else (arg,))})
        ones = tuple(a for a in axes if shape[a] == 1)
        return f"squeeze({arg})", lambda x: np.squeeze(x, ones) if isinstance(
            x, np.ndarray) else x.squeeze() if arg is None else x.squeeze(arg)
    if kind == "flatten":
        e = draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
        s0, e0 = sorted((dw, e % max(ndim, 1)))
        new = shape[:s0] + (math.prod(shape[s0:e0 + 1]),) + shape[e0 + 1:]
        return f"flatten({s0}, {e0})", lambda x: x.reshape(new) if isinstance(
            x, np.ndarray) else x.flatten(s0, e0)
    if kind == "unflatten":
        a = draw(st.sampled_from(_divisors(size)))
        sizes = draw(st.sampled_from([(a, -1), (a, size // a), (1, size)]))
        new = shape[:dw] + (a if sizes[0] == a else 1, size // a if sizes[0] == a else size) \
            + shape[dw + 1:]
        return f"unflatten({d}, {sizes})", lambda x: x.reshape(new) if isinstance(
            x, np.ndarray) else x.unflatten(d, sizes)
    if kind == "expand":
        lead = draw(st.sampled_from([(), (2,)] if ndim else [(2,)]))
        sizes = tuple(draw(st.sampled_from([1, 2])) if k == 1 else draw(st.sampled_from([k, -1]))
                      for k in shape)
        new = lead + sizes
        full = lead + tuple(k if s == -1 else s for k, s in zip(shape, sizes))
        return f"expand{new}", lambda x: np.broadcast_to(x, full) if isinstance(
            x, np.ndarray) else x.expand(*new)
    if kind == "slice":
        index = draw(indices(shape, advanced=False))
        return f"[{index!r}]", lambda x: view_index(x, index)
    if kind == "select" or kind == "unbind":
        i = draw(st.integers(-size, size - 1))
        sel = (slice(None),) * dw + (i,)
        if kind == "unbind":
            return f"unbind({d})[{i}]", lambda x: view_index(x, sel) if isinstance(
                x, np.ndarray) else x.unbind(d)[i]
        return f"select({d}, {i})", lambda x: view_index(x, sel) if isinstance(
            x, np.ndarray) else x.select(d, i)
    if kind == "narrow":
        start = draw(st.integers(0, size))
        length = draw(st.integers(0, size - start))
        sel = (slice(None),) * dw + (slice(start, start + length),)
        return f"narrow({d}, {start}, {length})", lambda x: x[sel] if isinstance(
            x, np.ndarray) else x.narrow(d, start, length)
    if kind == "split":
        step = draw(st.integers(1, 3))
        k = draw(st.integers(0, max(0, -(-size // step) - 1)))
        sel = (slice(None),) * dw + (slice(k * step, (k + 1) * step),)
        return f"split({step}, {d})[{k}]", lambda x: x[sel] if isinstance(
            x, np.ndarray) else x.split(step, d)[k]
    if kind == "movedim":
        e = draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
        return f"movedim({d}, {e})", lambda x: np.moveaxis(x, d, e) if isinstance(
            x, np.ndarray) and ndim else x if isinstance(x, np.ndarray) else x.movedim(d, e)
    if kind == "flip":
        fd = tuple(draw(st.lists(st.integers(0, ndim - 1), unique=True))) if ndim else ()
        return f"flip{fd}", lambda x: np.array(np.flip(x, fd)) if isinstance(
            x, np.ndarray) else x.flip(fd)
    if kind == "roll":
        shift = draw(st.integers(-3, 3))
        axis = draw(st.sampled_from([None, d] if ndim else [None]))
        return f"roll({shift}, {axis})", lambda x: np.roll(x, shift, axis) if isinstance(
            x, np.ndarray) else x.roll(shift, axis)
    if kind == "contiguous":
        return "contiguous", lambda x: (x if x.flags.c_contiguous else x.copy()) if isinstance(
            x, np.ndarray) else x.contiguous()
    return "clone", lambda x: x.copy() if isinstance(x, np.ndarray) else x.clone()


def _aliases(x, new) -> bool:
    """Whether numpy reshapes an array laid out as tensor ``x`` to ``new`` without a copy."""
    probe = np.lib.stride_tricks.as_strided(np.zeros(1), x.shape, [s * 8 for s in x.stride()])
    return np.shares_memory(probe.reshape(new), probe) if x.numel() > 1 else True


@st.composite
def movement_cases(draw):
    """A chain of movement ops; the result, an elementwise op and a sum read it, and a
    write into it lands in the root buffer exactly where numpy's view aliases it."""
    dtype = draw(st.sampled_from(ALL))
    x = draw(tensors(draw(st.sampled_from(SHAPES)), dtype))
    steps, shape = [], x.shape
    for _ in range(draw(st.integers(1, 4))):
        label, fn = draw(movement(shape))
        shape = fn(np.zeros(shape, dtype)).shape
        steps.append((label, fn))
    fill = {"bool": True}.get(dtype, 7)
    root = Arg(x.root)

    def run(m, r):
        y = _views(r, x.views)
        for _, fn in steps:
            y = fn(y)
        out = (y.clone(), y.contiguous() * 1, y.sum())
        if write:
            y.fill_(fill)
            return out + (r,)
        return out

    def ref(r):
        r = r.copy()
        y = _views(r, x.views)
        for _, fn in steps:
            y = fn(y)
        out = (y.copy(), _acc(y) * 1, _acc(y).sum())
        out = tuple(np.asarray(o).astype(t) for o, t in zip(
            out, (dtype, result_dtype(Arg(np.asarray(y)), 1), "int64" if KIND[dtype] < 2
                  else dtype)))
        if write:
            y[...] = fill
            return out + (r,)
        return out

    probe = _views(x.root.copy(), x.views)
    for _, fn in steps:
        probe = fn(probe)
    write = probe.size > 0 and probe.flags.writeable
    return Case(" . ".join(label for label, _ in steps), [root], run, ref)


@st.composite
def join_cases(draw):
    base = draw(st.sampled_from([s for s in SHAPES if s]))
    d = draw(st.integers(-len(base), len(base) - 1))
    count = draw(st.integers(1, 3))
    stack = draw(st.booleans())
    shapes = [base if stack else base[:d % len(base)] + (draw(st.integers(0, 2)),)
              + base[d % len(base) + 1:] for _ in range(count)]
    args = [draw(tensors(s, draw(st.sampled_from(ALL)))) for s in shapes]
    out = result_dtype(*args)
    if stack:
        d = draw(st.integers(-len(base) - 1, len(base)))

    def run(m, *ts):
        return (m.stack if stack else m.cat)(list(ts), d)

    def ref(*xs):
        return (np.stack if stack else np.concatenate)([wide(x, out) for x in xs], d).astype(out)

    return Case(f"{'stack' if stack else 'cat'}(dim={d})", args, run, ref)


@given(unary_cases())
@fuzz(3)
def test_unary(case):
    check(case)


@given(binary_cases())
@fuzz(6)
def test_binary(case):
    check(case)


@given(where_cases() | clamp_cases())
@fuzz(2)
def test_where_and_clamp(case):
    check(case)


@given(reduce_cases())
@fuzz(6)
def test_reductions(case):
    check(case)


@given(matmul_cases())
@fuzz(3)
def test_matmul(case):
    check(case)


@given(getitem_cases() | setitem_cases())
@fuzz(5)
def test_indexing(case):
    check(case)


@given(movement_cases() | join_cases())
@fuzz(5)
def test_views_and_joins(case):
    check(case)


# --- chains: composed ops across dtypes (fusion's input) --------------------------------------

CHAIN_UNARY = ["neg", "abs", "sign", "floor", "round", "relu", "square", "exp", "sin", "tanh",
               "sigmoid", "sqrt", "reciprocal", "logical_not", "isnan"]
CHAIN_BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "eq", "lt", "ge",
                "bitwise_and", "logical_or"]


def _as_arg(a):
    return Arg(np.asarray(a)) if isinstance(a, np.ndarray) else a


@st.composite
def chain_step(draw, r: np.ndarray, y: np.ndarray):
    """One step (label, fn(m, t, y), ref(t, y)) applicable to the current value ``r``."""
    dtype = r.dtype.name
    kind = draw(st.sampled_from(["unary", "binary", "binary", "where", "reduce", "cast", "view"]))
    if kind == "unary":
        name = draw(st.sampled_from([n for n in CHAIN_UNARY if dtype in UNARY[n][2]]))
        fn, rule, _, _ = UNARY[name]

        def ref(t, y):
            out = _result(rule, t.dtype.name)
            if name == "sign" and t.dtype == bool:
                return t.copy()
            return np.asarray(fn(wide(t, out if rule == "float" else t.dtype.name))).astype(out)

        return name, lambda m, t, y: getattr(t, name)(), ref
    if kind == "binary":
        name = draw(st.sampled_from(CHAIN_BINARY))
        fn, op, dtypes, rule = BINARY[name]
        try:
            np.broadcast_shapes(r.shape, y.shape)
            forms = ["y", "y_first"] + (["scalar"] if op is not None else [])
        except ValueError:
            forms = ["scalar"] if op is not None else []
        if not forms:
            return None
        form = draw(st.sampled_from(forms))
        other = y if form != "scalar" else draw(scalars(draw(st.integers(0, 2))))
        ops = (other, r) if form == "y_first" else (r, other)
        if any(_as_arg(o).dtype not in dtypes if isinstance(o, np.ndarray) else False
               for o in ops) or (name == "sub" and any(
                   isinstance(o, bool) or getattr(o, "dtype", None) == bool for o in ops)):
            return None
        if name in ("bitwise_and",) and KIND[result_dtype(*map(_as_arg, ops))] == 2:
            return None

        def pick(t, y):
            return {"y": (t, y), "y_first": (y, t), "scalar": (t, other)}[form]

        def ref(t, y):
            a, b = pick(t, y)
            common = result_dtype(_as_arg(a), _as_arg(b))
            if rule == "logical":
                return np.asarray(fn(np.asarray(a) != 0, np.asarray(b) != 0))
            out = _result(rule, common)
            compute = out if rule == "float" else common
            return np.asarray(fn(wide(a, compute), wide(b, compute))).astype(out)

        def run(m, t, yt):
            a, b = pick(t, yt)
            return op(a, b) if op is not None else getattr(m, name)(a, b)

        return f"{name}({form})", run, ref
    if kind == "where":
        try:
            np.broadcast_shapes(r.shape, y.shape)
        except ValueError:
            return None

        def ref(t, y):
            out = result_dtype(_as_arg(t), _as_arg(y))
            return np.where(t > 0, wide(t, out), wide(y, out)).astype(out)

        return "where(t > 0, t, y)", lambda m, t, yt: m.where(t > 0, t, yt), ref
    if kind == "reduce":
        if r.ndim == 0:
            return None
        name = draw(st.sampled_from(["sum", "amax", "mean", "any"]))
        if name == "mean" and KIND[dtype] < 2 or name == "amax" and r.size == 0:
            return None
        d = draw(st.integers(-r.ndim, r.ndim - 1))
        if name == "amax" and r.shape[d] == 0:
            return None
        keepdim = draw(st.booleans())
        fn, _, rule, _, _ = REDUCTIONS[name]

        def ref(t, y):
            out = {"acc": "int64" if KIND[t.dtype.name] < 2 else t.dtype.name,
                   "logical": "uint8" if t.dtype == np.uint8 else "bool"}.get(rule, t.dtype.name)
            return np.asarray(fn(_acc(t), (d % t.ndim,), keepdim)).astype(out)

        return f"{name}({d}, {keepdim})", lambda m, t, y: getattr(t, name)(d, keepdim), ref
    if kind == "cast":
        targets = [t for t in ALL if KIND[t] >= KIND[dtype] or t == "bool"]
        to = draw(st.sampled_from(targets))
        return f"to({to})", lambda m, t, y: t.to(getattr(m, to)), lambda t, y: t.astype(to)
    if r.ndim == 0:
        return None
    view = draw(st.sampled_from(["flip", "step", "T", "unsqueeze"]))
    if view == "flip":
        return "flip(0)", lambda m, t, y: t.flip(0), lambda t, y: np.flip(t, 0).copy()
    if view == "step":
        return "[::2]", lambda m, t, y: t[::2], lambda t, y: t[::2].copy()
    if view == "T":
        return "mT" if r.ndim >= 2 else "t", (lambda m, t, y: t.mT if t.ndim >= 2 else t.t()), \
            lambda t, y: np.swapaxes(t, -1, -2).copy() if t.ndim >= 2 else t.copy()
    return "unsqueeze(0)", lambda m, t, y: t.unsqueeze(0), lambda t, y: t[None].copy()


@st.composite
def chain_cases(draw):
    """A chain of 2-5 elementwise ops, reductions, casts and views over two operands of
    drawn dtypes, each step's reference taken from the op tables above."""
    sx, sy = draw(broadcast_pair())
    x = draw(tensors(sx, draw(st.sampled_from(ALL))))
    y = draw(tensors(sy, draw(st.sampled_from(ALL))))
    steps, r = [], x.arr.copy()
    floats = {d for d in (x.dtype, y.dtype) if KIND[d] == 2}
    with np.errstate(all="ignore"):
        for _ in range(draw(st.integers(2, 5))):
            step = draw(chain_step(r, y.arr))
            if step is not None:
                steps.append(step)
                r = step[2](r, y.arr)
                floats |= {r.dtype.name} if r.dtype.kind == "f" else set()

    def run(m, t, yt):
        for _, fn, _ in steps:
            t = fn(m, t, yt)
        return t

    def ref(t, yv):
        for _, _, fn in steps:
            t = fn(t, yv)
        return t

    # an intermediate's precision bounds the result's
    coarsest = max(floats, key=lambda d: TOL[d], default="")
    return Case(" . ".join(label for label, _, _ in steps), [x, y], run, ref, coarsest)


FAMILIES = {"unary": unary_cases, "binary": binary_cases, "where": where_cases,
            "clamp": clamp_cases, "reduce": reduce_cases, "matmul": matmul_cases,
            "getitem": getitem_cases, "setitem": setitem_cases, "movement": movement_cases,
            "join": join_cases, "chain": chain_cases}


@given(chain_cases())
@fuzz(4)
def test_chains(case):
    check(case)


# boolean masks size their result on the host: compile runs those eagerly, and says so
@pytest.mark.filterwarnings("ignore:clgraph.compile.*runs eagerly:RuntimeWarning")
@given(st.sampled_from(["unary", "binary", "where", "clamp", "reduce", "matmul", "getitem",
                        "setitem", "movement", "join", "chain", "chain"]).flatmap(
    lambda f: FAMILIES[f]()))
@fuzz(3)
def test_compiled(case):
    """The same draws through cg.compile (traced, fused, replayed twice) equal numpy too."""
    compiled = cg.compile(lambda *args: case.fn(cg, *args))
    expected = case.expected()
    for _ in range(2):
        args = [a.build() if isinstance(a, Arg) else a for a in case.args]
        if isinstance(expected, Raises):
            with pytest.raises(expected.types):
                compiled(*args)
            continue
        assert_matches(host(compiled(*args)), expected, f"compiled {case!r}", case.tol)


# --- gradients of random programs ------------------------------------------------------------

# smooth on every value they see (kinks and ties, where a finite difference and a gradient
# may disagree, have probability zero for the drawn inputs); methods only, so that the same
# program runs on PyTorch
GRAD_UNARY = {
    "exp": lambda t: (t * 0.5).exp(), "tanh": lambda t: t.tanh(),
    "sigmoid": lambda t: t.sigmoid(), "sin": lambda t: t.sin(), "cos": lambda t: t.cos(),
    "log": lambda t: (t * t + 0.5).log(), "sqrt": lambda t: (t * t + 0.5).sqrt(),
    "rsqrt": lambda t: (t * t + 0.5).rsqrt(), "reciprocal": lambda t: (t * t + 1).reciprocal(),
    "log1p": lambda t: (t * t).log1p(), "expm1": lambda t: (t * 0.5).expm1(),
    "abs": lambda t: t.abs(), "relu": lambda t: t.relu(), "erf": lambda t: t.erf(),
    "square": lambda t: t.square(), "pow": lambda t: (t * t + 0.5) ** 1.5,
    "cube": lambda t: t ** 3, "rpow": lambda t: 2 ** t, "clamp": lambda t: t.clamp(-0.5, 0.5),
    "neg": lambda t: -t, "scalar_div": lambda t: 1.5 / (t * t + 1),
}
GRAD_BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 0.5), "maximum": lambda a, b: a.maximum(b),
    "minimum": lambda a, b: a.minimum(b), "pow": lambda a, b: (a * a + 0.5) ** b,
    "atan2": lambda a, b: a.atan2(b * b + 0.5), "where": lambda a, b: (a * 2).where(a > b, b),
    "lerp": lambda a, b: a.lerp(b, 0.3), "addcmul": lambda a, b: a.addcmul(a, b, value=0.5),
    "add_alpha": lambda a, b: a.add(b, alpha=-1.5),
}


class Program:
    """A chain of differentiable steps (label, fn(m, t, y)) over leaves x and y (float64),
    ending in a weighted sum; m is the module (clgraph, or torch for parity)."""

    def __init__(self, x, y, steps, weight):
        self.x, self.y, self.steps, self.weight = x, y, steps, weight

    def __repr__(self):
        return (f"Program(x={self.x!r}, y={self.y!r}: "
                f"{' . '.join(label for label, _ in self.steps)})")

    def __call__(self, x, y, m=cg):
        t = x
        for _, fn in self.steps:
            t = fn(m, t, y)
        return (t * m.from_numpy(self.weight.copy())).sum()

    def rounding_at_a_kink(self) -> bool:
        """Whether a step sees or makes a value that is a rounding residue (0 < |v| < 1e-9;
        exact values here are zero or a grid's): a kink there (abs, relu, a tie) takes its
        side from the order of a sum, which two libraries need not share, and std of a
        constant is such a residue or exactly 0, its gradient residue / residue or 0."""
        t, y = (torch.from_numpy(a.copy()) for a in (self.x, self.y))
        for _, fn in self.steps + [(None, None)]:
            a = np.abs(t.detach().numpy())
            if ((a > 0) & (a < 1e-9)).any():
                return True
            if fn is not None:
                t = fn(torch, t, y)
        return False

    def gradients(self, m=cg):
        """(value, dx, dy) of the program on module m."""
        x, y = (m.from_numpy(a.copy()).requires_grad_() for a in (self.x, self.y))
        out = self(x, y, m)
        gx, gy = m.autograd.grad(out, (x, y), allow_unused=True)
        return tuple(np.zeros_like(a) if g is None else g.detach().numpy()
                     for g, a in ((out, 0.0), (gx, self.x), (gy, self.y)))


def _smooth_values(rng, shape) -> np.ndarray:
    """Values in +-[0.1, 1.5] away from +-0.5, from a seeded generator: shrinking cannot
    drive them into the ties and kinks (0, clamp's bounds) where gradients are undefined."""
    v = rng.uniform(0.1, 1.4, shape)
    return np.asarray(np.where(v > 0.45, v + 0.1, v) * rng.choice([-1.0, 1.0], shape))


def _uniform(shape):
    return st.integers(0, 2**32 - 1).map(lambda s: _smooth_values(np.random.default_rng(s),
                                                                  shape))


def _kinked_values(rng, shape) -> np.ndarray:
    """Values on a half grid in [-1.5, 1.5]: ties, zeros and clamp's bounds, where PyTorch's
    gradient conventions (not finite differences) decide."""
    return np.asarray(rng.integers(-3, 4, shape) / 2.0)


@st.composite
def grad_step(draw, shape, y_shape):
    """One step (label, fn(m, t, y)) for a tensor of ``shape``, or None where it does not
    fit. Constants (weights, indices, masks) are numpy arrays made tensors at each call."""
    ndim, n = len(shape), math.prod(shape)
    d = draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
    size = shape[d] if ndim else 1
    kind = draw(st.sampled_from(["unary", "binary", "reduce", "move", "matmul"]))
    if kind == "unary":
        name = draw(st.sampled_from(sorted(GRAD_UNARY)))
        return name, lambda m, t, y: GRAD_UNARY[name](t)
    if kind == "binary":
        name = draw(st.sampled_from(sorted(GRAD_BINARY)))
        try:
            np.broadcast_shapes(shape, y_shape)
            other = draw(st.sampled_from(["y", "y.sum()", "y.t"]))
        except ValueError:
            other = "y.sum()"
        fn = GRAD_BINARY[name]
        if other == "y.t":
            return f"{name}(y, t)", lambda m, t, y: fn(y, t)
        if other == "y":
            return f"{name}(t, y)", lambda m, t, y: fn(t, y)
        return f"{name}(t, y.sum())", lambda m, t, y: fn(t, y.sum())
    if kind == "reduce":
        name = draw(st.sampled_from(["sum", "mean", "amax", "var", "std", "logsumexp",
                                     "softmax", "log_softmax", "prod", "cumsum", "norm",
                                     "max", "min"]))
        keepdim = draw(st.booleans())
        dim = draw(st.sampled_from([None, d]))
        if name in ("softmax", "log_softmax", "cumsum", "max", "min", "logsumexp"):
            dim = d
        if name in ("var", "std") and (n if dim is None else size) < 2:
            return None
        label = f"{name}(dim={dim}, keepdim={keepdim})"
        if name in ("softmax", "log_softmax", "cumsum"):
            return label, lambda m, t, y: getattr(t, name)(dim)
        if name in ("max", "min"):
            return label, lambda m, t, y: getattr(t, name)(dim, keepdim).values
        if dim is None and name == "prod":
            return "prod()", lambda m, t, y: t.prod()
        if dim is None and name == "amax":
            return "amax()", lambda m, t, y: t.amax()
        return label, lambda m, t, y: getattr(t, name)(dim=dim, keepdim=keepdim)
    if kind == "matmul":
        if ndim == 0:
            return None
        if ndim == 1 and draw(st.booleans()):
            return "dot(t, t)", lambda m, t, y: t.dot(t)
        if ndim >= 2 and draw(st.booleans()):
            return "t @ t.mT", lambda m, t, y: t @ t.mT
        w = draw(_uniform((shape[-1], 2)))
        return f"t @ w{list(w.shape)}", lambda m, t, y: t @ m.from_numpy(w.copy())
    name = draw(st.sampled_from(["permute", "transpose", "flip", "slice", "expand", "reshape",
                                 "cat", "stack", "index", "mask", "gather", "narrow", "roll",
                                 "index_select", "masked_fill", "tril", "squeeze"]))
    if ndim == 0 and name not in ("expand", "reshape", "stack", "flip", "squeeze"):
        return None
    if name == "permute":
        perm = tuple(draw(st.permutations(range(ndim))))
        return f"permute{perm}", lambda m, t, y: t.permute(perm)
    if name == "transpose":
        return f"transpose({d}, 0)", lambda m, t, y: t.transpose(d, 0)
    if name == "flip":
        dims_ = tuple(draw(st.lists(st.integers(0, ndim - 1), unique=True))) if ndim else ()
        return f"flip{dims_}", lambda m, t, y: t.flip(dims_)
    if name == "slice":
        sel = (slice(None),) * (d % ndim) + (slice(draw(st.sampled_from([None, 1, -2])), None,
                                                   draw(st.sampled_from([1, 2]))),)
        if view_index(np.zeros(shape), sel).size == 0:
            return None
        return f"[{sel}]", lambda m, t, y: t[sel]
    if name == "expand":
        return "unsqueeze(0).expand(2, ...)", lambda m, t, y: t.unsqueeze(0).expand(2, *shape)
    if name == "reshape":
        return "reshape(-1)", lambda m, t, y: t.reshape(-1)
    if name == "cat":
        return f"cat([t, t * 2], {d})", lambda m, t, y: m.cat([t, t * 2], d)
    if name == "stack":
        e = draw(st.integers(-ndim - 1, ndim))
        return f"stack([t, t.exp()], {e})", lambda m, t, y: m.stack([t, (t * 0.3).exp()], e)
    if name == "squeeze":
        return "unsqueeze(-1).squeeze()", lambda m, t, y: t.unsqueeze(-1).squeeze()
    if name in ("index", "index_select", "gather"):
        count = draw(st.integers(1, 4))
        picks = draw(st.lists(st.integers(-size, size - 1), min_size=count, max_size=count))
        if name == "index":
            picks = np.array([p % shape[0] for p in picks])
            return f"[{picks}]", lambda m, t, y: t[m.from_numpy(picks.copy())]
        if name == "index_select":
            picks = np.array([p % size for p in picks])
            return (f"index_select({d}, {picks})",
                    lambda m, t, y: t.index_select(d, m.from_numpy(picks.copy())))
        gshape = list(shape)
        gshape[d] = count
        idx = draw(hnp.arrays(np.int64, tuple(gshape), elements=st.integers(0, size - 1)))
        return f"gather({d})", lambda m, t, y: t.gather(d, m.from_numpy(idx.copy()))
    if name in ("mask", "masked_fill"):
        mask = draw(hnp.arrays(np.bool_, shape))
        if name == "mask":
            return (f"[mask {mask.sum()}/{mask.size}]",
                    lambda m, t, y: t[m.from_numpy(mask.copy())]) if mask.any() else None
        return ("masked_fill(mask, 0.5)",
                lambda m, t, y: t.masked_fill(m.from_numpy(mask.copy()), 0.5))
    if name == "narrow":
        start = draw(st.integers(0, size - 1))
        length = draw(st.integers(1, size - start))
        return f"narrow({d}, {start}, {length})", lambda m, t, y: t.narrow(d, start, length)
    if name == "roll":
        shift = draw(st.integers(-3, 3))
        return f"roll({shift}, {d})", lambda m, t, y: t.roll(shift, d)
    if ndim != 2:
        return None
    k = draw(st.integers(-1, 1))
    return f"tril({k})", lambda m, t, y: t.tril(k)


@st.composite
def grad_programs(draw, max_steps=5, values=_smooth_values):
    sx, sy = draw(broadcast_pair([(3,), (2, 3), (3, 1), (2, 1, 3)]))
    if not sx:
        sx, sy = sy, sx
    steps, shape = [], sx
    for _ in range(draw(st.integers(1, max_steps))):
        step = draw(grad_step(shape, sy))
        if step is None:
            continue
        with cg.no_grad():
            shape = tuple(step[1](cg, cg.zeros(shape, dtype=cg.float64),
                                  cg.zeros(sy, dtype=cg.float64)).shape)
        steps.append(step)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return Program(*(values(rng, s) for s in (sx, sy)), steps, _smooth_values(rng, shape))


@given(grad_programs())
@fuzz(4)
def test_random_program_gradients(program):
    """Analytic gradients of a random float64 program with respect to both leaves equal
    central finite differences (gradcheck, eps 1e-6)."""
    leaves = (cg.from_numpy(program.x).requires_grad_(), cg.from_numpy(program.y).requires_grad_())
    # a difference quotient carries about 1e-10 |f| of rounding: keep it under gradcheck's atol
    assume(abs(program(*leaves).item()) < 1e4)
    assert gradcheck(program, leaves)


@given(grad_programs(max_steps=3))
@fuzz(1)
def test_random_program_second_order(program):
    """Gradients of gradients (create_graph=True) of a shorter random program."""
    # norm and std have no second derivative at 0, which degenerate steps (softmax over one
    # element, relu) reach exactly: NaN there, in PyTorch too
    assume(not any(label.startswith(("norm", "std")) for label, _ in program.steps))
    leaves = (cg.from_numpy(program.x).requires_grad_(), cg.from_numpy(program.y).requires_grad_())
    assume(abs(program(*leaves).item()) < 1e4)
    assert gradgradcheck(program, leaves)


# --- PyTorch parity (only where torch is installed) ------------------------------------------



@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@given(st.sampled_from(sorted(FAMILIES)).flatmap(lambda f: FAMILIES[f]()))
@fuzz(6)
def test_torch_parity(case):
    """PyTorch agrees with the numpy reference (the reference encodes its semantics), and
    clgraph agrees with PyTorch."""
    expected = case.expected()
    if isinstance(expected, Raises):
        with pytest.raises(expected.types):
            case.run(torch)
        return
    got = host(case.run(torch))
    assert_matches(got, expected, f"torch: {case!r}", case.tol)
    assert_matches(host(case.run()), tuple(np.asarray(g[0]) for g in got) if isinstance(
        got, tuple) and isinstance(got[0], tuple) else np.asarray(got[0]), repr(case),
        case.tol)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@given(grad_programs(values=_kinked_values) | grad_programs())
@fuzz(4)
def test_torch_gradient_parity(program):
    """Values and gradients of random programs equal PyTorch's, also on grid inputs with
    ties, zeros and clamp's bounds, where PyTorch's conventions decide the gradient."""
    assume(not program.rounding_at_a_kink())
    expected = program.gradients(torch)
    for got, want, what in zip(program.gradients(), expected, ("value", "d/dx", "d/dy")):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=f"{what} {program}")


# --- regressions: each bug these tests found, as a named case ---------------------------------


def test_square_of_bool_is_int64():
    """torch.square(b) is pow(b, 2): bool with an integer scalar promotes to int64."""
    b = cg.tensor([True, False])
    for r in (b.square(), cg.square(b), b ** 2, cg.pow(b, 2)):
        assert r.dtype == cg.int64 and r.tolist() == [1, 0]


def test_float16_operands_are_rounded_to_half():
    """Operands cast to float16 take half's precision, as PyTorch's cast to the common dtype
    does: a float scalar or a wider 0-d tensor compares and computes as its float16 value."""
    x = cg.tensor([0.09997559, 2.923828], dtype=cg.float16)  # float16(0.1), float16(2.9248)
    assert (x == 0.1).tolist() == [True, False] and (x < 0.1).tolist() == [False, False]
    assert (x != 2.9248027803079086).tolist() == [True, False]
    assert (x - 2.9248027803079086).tolist()[1] == 0.0
    assert (x % 2.9248027803079086).tolist()[1] == 0.0
    assert (x == cg.tensor(0.1, dtype=cg.float64)).tolist() == [True, False]
    vec = cg.tensor(np.full(40, 2.923828, np.float16))  # the vectorized kernel
    assert (vec - cg.tensor(2.9248027803079086)).abs().max().item() == 0.0
    ints = cg.tensor([2049, 3], dtype=cg.int16)  # 2049 is not a half: it becomes 2048
    assert (ints == cg.tensor(2048.0, dtype=cg.float16)).tolist() == [True, False]
    compiled = cg.compile(lambda t: ((t == 0.1) | (t > 1), t - 2.9248027803079086))
    for _ in range(2):
        eq, diff = compiled(x)
        assert eq.tolist() == [True, True] and diff.tolist()[1] == 0.0


def test_argmax_of_an_empty_bool_tensor_names_the_dtype():
    for fn in (cg.argmax, cg.argmin):
        with pytest.raises(RuntimeError, match="does not support bool"):
            fn(cg.zeros(0, dtype=cg.bool))


def test_movedim_of_a_0d_tensor():
    x = cg.tensor(2.5)
    for src, dst in [(0, 0), (-1, 0), (0, -1)]:
        r = x.movedim(src, dst)
        assert r.shape == () and r.item() == 2.5


def test_float_scalar_into_integer_and_bool_tensors():
    """A float written into an integer tensor truncates toward zero, into a bool tensor it
    is its truth value (the kernel's scalar argument has the tensor's type)."""
    x = cg.zeros(4, dtype=cg.int8)
    x[0], x[1] = 2.7, np.float32(-1.5)
    x[2:] = -0.5
    assert x.tolist() == [2, -1, 0, 0]
    assert cg.full((2,), 3.9, dtype=cg.int64).tolist() == [3, 3]
    assert cg.zeros(2, dtype=cg.uint8).fill_(1.2).tolist() == [1, 1]
    b = cg.zeros(3, dtype=cg.bool)
    b[1] = 0.5
    assert b.tolist() == [False, True, False]
    with pytest.raises(RuntimeError, match="without overflow"):
        cg.zeros(2, dtype=cg.int32).fill_(float("nan"))


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "prod", "logsumexp", "norm",
                                  "var", "std"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reduction_gradient_over_dim_0_of_a_0d_tensor(name, keepdim):
    """A 0-d tensor reduces over dim 0 (or -1) to 0-d; its gradient has no dim to restore."""
    kwargs = {"correction": 0} if name in ("var", "std") else {}
    x = cg.tensor(1.5, dtype=cg.float64, requires_grad=True)
    for dim in (0, -1):
        r = getattr(x, name)(dim=dim, keepdim=keepdim, **kwargs)
        (g,) = cg.autograd.grad(r * 1.0, x)
        assert r.shape == () and g.shape == ()
        assert g.item() == (0.0 if name in ("var", "std") else 1.0)


def test_std_gradient_of_a_constant_range_is_zero():
    """PyTorch's std backward masks a zero std: no NaN from 0 / 0."""
    x = cg.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]], dtype=cg.float64, requires_grad=True)
    (g,) = cg.autograd.grad(x.std(1).sum(), x)
    np.testing.assert_allclose(g.numpy(), [[0, 0, 0], [-0.5, 0, 0.5]])
    y = cg.tensor([2.0, 2.0], dtype=cg.float64, requires_grad=True)  # no degrees of freedom
    assert np.isnan(cg.autograd.grad(y.std(correction=2), y)[0].numpy()).all()


def test_logical_ops_take_tensors_only():
    """As in PyTorch, logical_and/or/xor take no Python scalar (a float one crashed)."""
    t = cg.ones(2)
    for fn in (cg.logical_and, cg.logical_or, cg.logical_xor):
        for s in (2.5, True, 1):
            with pytest.raises(TypeError, match="must be Tensor"):
                fn(t, s)
    assert cg.logical_or(t, cg.zeros(2)).tolist() == [True, True]


def test_subtraction_with_any_bool_operand_is_refused():
    """PyTorch refuses `-` with a bool operand even when the result would be numeric."""
    b = cg.tensor([True, False])
    for fn in (lambda: cg.ones(2) - True, lambda: 1.5 - b, lambda: cg.ones(2, dtype=cg.int64) - b,
               lambda: cg.sub(cg.ones(2), b)):
        with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
            fn()
    with pytest.raises(RuntimeError, match="two bool tensors"):
        b - b


def test_compiled_function_returns_a_namedtuple():
    """A compiled call rebuilds tuple subclasses (max's (values, indices)) as they were."""
    compiled = cg.compile(lambda t: t.max(0))
    x = cg.tensor([1.0, 3.0, 2.0])
    for _ in range(2):
        r = compiled(x)
        assert r is not None and r.values.item() == 3.0 and r.indices.item() == 1


def test_clamp_gradient_on_the_bound_goes_to_the_input():
    """PyTorch's clamp passes the whole gradient where the input equals a bound (maximum and
    minimum split a tie); a tensor bound gets it only where it clips, a NaN input none."""
    x = cg.tensor([1.0, float("nan"), -2.0, 0.5, -0.5], requires_grad=True)
    x.clamp(-0.5, 0.5).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    x = cg.tensor([1.0, float("nan"), -2.0], requires_grad=True)
    lo = cg.tensor([1.0, 0.0, -2.0], requires_grad=True)
    hi = cg.tensor([1.0, 1.0, -3.0], requires_grad=True)  # hi < lo: the result is hi
    r = cg.clamp(x, lo, hi)
    r.sum().backward()
    assert r.tolist()[::2] == [1.0, -3.0]
    assert (x.grad.tolist(), lo.grad.tolist(), hi.grad.tolist()) == (
        [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0])


def test_gradient_of_a_number_to_a_float64_power_is_double_precision():
    """d(2 ** t)/dt = 2 ** t log 2 with log 2 in double (it was a float32 0-d tensor)."""
    t = cg.tensor([0.5, 0.0, -1.25], dtype=cg.float64, requires_grad=True)
    (g,) = cg.autograd.grad((2 ** t).sum(), t)
    np.testing.assert_allclose(g.numpy(), 2 ** t.detach().numpy() * math.log(2), rtol=1e-15)
    (g,) = cg.autograd.grad((0 ** t).sum(), t)  # PyTorch's convention at a zero base
    assert g.tolist() == [0.0, 0.0, 0.0]


def test_float64_pow_beside_zero_lanes():
    """PoCL's pow on double8 vectors was wrong next to zero lanes (1.5 ** 3 gave 0.42):
    vectorized float64 pow kernels and norm(p) reductions keep to 4 lanes or fewer."""
    x = np.array([0.0, 0.0, 1.0, 1.5, 1.5, 1.0, 0.0, 0.0, 1.0, 1.5, 1.5, 1.0] * 4)
    t = cg.from_numpy(x)
    np.testing.assert_allclose((t ** 3).numpy(), x ** 3, rtol=1e-14)
    np.testing.assert_allclose(cg.pow(t, t).numpy(), x ** x, rtol=1e-14)
    compiled = cg.compile(lambda a: (a ** 1.5 + 1).exp())
    for _ in range(2):
        np.testing.assert_allclose(compiled(t).numpy(), np.exp(x ** 1.5 + 1), rtol=1e-14)
    for p in (3, 1.5):
        np.testing.assert_allclose(t.norm(p=p).item(), np.sum(x ** p) ** (1 / p), rtol=1e-14)
        rows = t.reshape(4, 12).norm(p=p, dim=1).numpy()
        np.testing.assert_allclose(rows, np.sum(x.reshape(4, 12) ** p, 1) ** (1 / p), rtol=1e-14)


def test_compiled_cast_to_float16_rounds_and_overflows():
    """x.half() inside a fused kernel rounds to half (overflowing to inf) as eager does; it
    was a no-op there, float16 being computed in float."""
    x, y = cg.tensor([0.0, 0.25, 70000.0, 1e-8]), cg.ones(4)

    def f(a, b):
        return (a / 5.9604645e-08).half() + b, a.half().float() * 3

    eager = f(x, y)
    compiled = cg.compile(f)
    for _ in range(2):
        for got, want in zip(compiled(x, y), eager):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert np.isinf(eager[0].numpy()[1:3]).all() and eager[1].numpy()[3] == 0.0
