"""Complex tensors: complex64 and complex128 hold interleaved (real, imaginary) pairs of
float32 / float64. No kernel computes on complex values directly: ``dispatch`` (called by
registry.apply for any op that meets a complex operand) runs each supported op as clgraph
ops on the real view (view_as_real), so eager, compiled and backward all reuse the real
kernels, and gradients come out in PyTorch's convention (dL/d re + i dL/d im) because the
two view ops' VJPs are each other. An op without a row here raises, naming op and dtype."""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings

from .. import dtypes as dt
from . import registry
from .registry import OpDef, apply, public, register

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # warnings skip it

# --- the two views between complex and real ------------------------------------------------


def _retyped(x, shape, stride, offset, dtype):
    t = x._view(shape, stride, offset)
    t.dtype = dtype
    return t


def _run_as_real(op, args, attrs, out=None):
    x = args[0]
    return _retyped(x, x._shape + (2,), tuple(2 * s for s in x._stride) + (1,), 2 * x._offset,
                    dt.to_real(x.dtype))


def _check_as_complex(x):
    if x.dtype not in (dt.float32, dt.float64):
        raise RuntimeError("view_as_complex is only supported for float and double tensors, "
                           f"but got a tensor of scalar type: {x.dtype.scalar_type}")
    if not x._shape or x._shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    if x._stride[-1] != 1:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if any(s % 2 for s in x._stride[:-1]):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last "
                           "dimension")
    if x._offset % 2:
        raise RuntimeError("Tensor must have a storage_offset divisible by 2")


def _run_as_complex(op, args, attrs, out=None):
    x = args[0]
    _check_as_complex(x)
    return _retyped(x, x._shape[:-1], tuple(s // 2 for s in x._stride[:-1]), x._offset // 2,
                    dt.to_complex(x.dtype))


def _fit(g):
    """g laid out so that view_as_complex accepts it."""
    ok = g._stride[-1] == 1 and not any(s % 2 for s in g._stride[:-1]) and not g._offset % 2
    return g if ok else g.contiguous()


VIEW_AS_REAL = register(OpDef("view_as_real", "view", None, _run_as_real,
                              lambda g, x, out: (apply(VIEW_AS_COMPLEX, _fit(g)),),
                              saves=(), saves_out=False))
VIEW_AS_COMPLEX = register(OpDef("view_as_complex", "view", None, _run_as_complex,
                                 lambda g, x, out: (apply(VIEW_AS_REAL, g),),
                                 saves=(), saves_out=False))


@public(method=True)
def view_as_real(input):
    """torch.view_as_real: the (..., 2) real view sharing storage."""
    if not input.dtype.is_complex:
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return apply(VIEW_AS_REAL, input)


@public(method=True)
def view_as_complex(input):
    """torch.view_as_complex: the complex view of a (..., 2) float tensor."""
    _check_as_complex(input)
    return apply(VIEW_AS_COMPLEX, input)


# --- parts ----------------------------------------------------------------------------------

def _is_c(a) -> bool:
    return (isinstance(a, registry.Tensor) and a.dtype.kind == 3) or isinstance(a, complex)


def _promoted(args) -> dt.dtype:
    """PyTorch's result type of the operands (tensors, 0-d tensors, Python scalars)."""
    dims, zdims, scalars = [], [], []
    for a in args:
        if isinstance(a, registry.Tensor):
            (dims if a._shape else zdims).append(a.dtype)
        elif a is not None:
            scalars.append(a)
    return dt.result_type(dims, zdims, scalars)


def parts(a, real: dt.dtype):
    """(re, im) of an operand, as tensors of dtype ``real`` or Python floats; im is None
    where it is zero (a real operand)."""
    if isinstance(a, registry.Tensor):
        if a.dtype.kind == 3:
            r = apply(VIEW_AS_REAL, a)
            if r.dtype is not real:
                r = r.to(real)
            return r.select(-1, 0), r.select(-1, 1)
        return (a if a.dtype is real else a.to(real)), None
    if isinstance(a, complex):
        return a.real, a.imag
    return float(a), None


def make(re, im, cdtype: dt.dtype):
    """The complex tensor re + i im (im None: zero), of dtype ``cdtype``."""
    real = dt.to_real(cdtype)
    re, im = (t if not isinstance(t, registry.Tensor) or t.dtype is real else t.to(real)
              for t in (re, im))
    if not isinstance(re, registry.Tensor):
        re = _full_like(im, re)
    if im is None:
        im = _full_like(re, 0.0)
    elif not isinstance(im, registry.Tensor):
        im = _full_like(re, im)
    if re._shape != im._shape:
        re, im = _f("broadcast_tensors")(re, im)
    out = apply(VIEW_AS_COMPLEX, _f("stack")([re, im], -1))
    out._base = None  # the only view of a fresh tensor: in-place writes rebase on it
    return out


def _full_like(t, v: float):
    """A tensor of t's shape, dtype (floating) and device filled with v."""
    out = registry.Tensor._empty(t._shape, t.dtype, t.device)
    return apply(registry.REGISTRY["fill"], float(v), dtype=t.dtype, out=out)


def _add(x, y):
    if x is None:
        return y
    if y is None:
        return x
    return x + y


def _sub(x, y):
    if y is None:
        return x
    if x is None:
        return -y
    return x - y


def _mul(x, y):
    return None if x is None or y is None else x * y


# --- the rows: op name -> run(op, args, attrs, out) on complex operands -------------------

ROWS: dict = {}


def row(*names):
    def mark(fn):
        for n in names:
            ROWS[n] = fn
        return fn
    return mark


def _cname(d: dt.dtype) -> str:
    return d.scalar_type


def unsupported(op, d) -> NotImplementedError:
    return NotImplementedError(f'"{op}" not implemented for \'{_cname(d)}\'')


def dispatch(op, args, attrs, out):
    """Run ``op`` whose operands (or output, or target dtype) are complex."""
    if op.family in ("view", "fft") or op.name in ("to_device", "slice_backward",
                                                         "linalg_eig"):
        return registry.apply_inner(op, args, attrs, out)
    fn = ROWS.get(op.name)
    if fn is None:
        d = next((a.dtype for a in (*args, out) if isinstance(a, registry.Tensor)
                  and a.dtype.kind == 3), dt.complex64)
        raise unsupported(op.name, d)
    if out is not None and any(a is out for a in args) and any(
            isinstance(a, registry.Tensor) and a.requires_grad for a in args):
        # the real ops below save views of their operands, which the write into out
        # would change: they read a copy of its old value (PyTorch saves one too)
        args = tuple(a.clone() if a is out else a for a in args)
    res = fn(op, args, attrs, out)
    if out is not None and res is not out:
        _copy_into(out, res)
        return out
    return res


def _run_assign(op, args, attrs, out):
    """out's elements set to src's (same dtype, src broadcast), on the real views: a kernel
    of the eager layer, below autograd (the op's node is the whole write)."""
    src = args[0]
    eager = registry._installed[0]
    real = dt.to_real(out.dtype)
    eager.process(registry.REGISTRY["to_dtype"], (_run_as_real(None, (src,), {}),),
                  {"dtype": real}, _run_as_real(None, (out,), {}))
    return out


ASSIGN = register(OpDef("complex_assign", "fft", None, _run_assign,
                        lambda g, src, out: (g,), saves=(), saves_out=False))


def _copy_into(out, src):
    """out = src (complex, of out's dtype, broadcast) as one in-place op."""
    if src.dtype is not out.dtype:
        src = apply(registry.REGISTRY["to_dtype"], src, dtype=out.dtype)
    apply(ASSIGN, src, out=out)


def _binary(fn):
    def run(op, args, attrs, out):
        c = _promoted(args)
        if c.kind != 3:
            c = dt.to_complex(c)
        real = dt.to_real(c)
        a, b = (parts(x, real) for x in args)
        re, im = fn(a, b)
        return make(re, im, c)
    return run


def _cmul(a, b):
    return (_sub(_mul(a[0], b[0]), _mul(a[1], b[1])), _add(_mul(a[0], b[1]), _mul(a[1], b[0])))


def _cdiv(a, b):
    (p, q), (r, s) = a, b
    if s is None:
        return p / r, (None if q is None else q / r)
    den = r * r + s * s
    re = _add(_mul(p, r), _mul(q, s))
    im = _sub(_mul(q, r), _mul(p, s))
    return re / den, (im / den if im is not None else None)


ROWS["add"] = _binary(lambda a, b: (_add(a[0], b[0]), _add(a[1], b[1])))
ROWS["sub"] = _binary(lambda a, b: (_sub(a[0], b[0]), _sub(a[1], b[1])))
ROWS["mul"] = _binary(_cmul)
ROWS["div"] = _binary(_cdiv)


def _unary(fn):
    def run(op, args, attrs, out):
        x = args[0]
        re, im = fn(*parts(x, dt.to_real(x.dtype)))
        return make(re, im, x.dtype)
    return run


def _f(name):
    return getattr(registry.functions, name)


def _abs(re, im):
    return _f("abs")(re) if im is None else _f("hypot")(re, im)


def _angle(re, im):
    if im is None:  # pi for negative reals
        return _f("where")(re < 0, math.pi, 0.0 * re)
    return _f("atan2")(im, re)


def _cexp(re, im):
    e = _f("exp")(re)
    if im is None:
        return e, None
    return e * _f("cos")(im), e * _f("sin")(im)


def _clog(re, im):
    return _f("log")(_abs(re, im)), _angle(re, im)


ROWS["neg"] = _unary(lambda re, im: (-re, -im))
ROWS["exp"] = _unary(_cexp)
ROWS["log"] = _unary(_clog)
ROWS["reciprocal"] = _unary(lambda re, im: _cdiv((1.0, None), (re, im)))


@row("sqrt")
def _c_sqrt(op, args, attrs, out):
    def f(re, im):
        r = _f("sqrt")(_abs(re, im))
        h = _angle(re, im) * 0.5
        return r * _f("cos")(h), r * _f("sin")(h)
    return _unary(f)(op, args, attrs, out)


ROWS["sin"] = _unary(lambda a, b: (_f("sin")(a) * _f("cosh")(b), _f("cos")(a) * _f("sinh")(b)))
ROWS["cos"] = _unary(lambda a, b: (_f("cos")(a) * _f("cosh")(b), -_f("sin")(a) * _f("sinh")(b)))


@row("tanh")
def _c_tanh(op, args, attrs, out):
    def f(a, b):
        den = _f("cosh")(2 * a) + _f("cos")(2 * b)
        return _f("sinh")(2 * a) / den, _f("sin")(2 * b) / den
    return _unary(f)(op, args, attrs, out)


@row("sigmoid")
def _c_sigmoid(op, args, attrs, out):
    def f(a, b):
        e = _cexp(-a, -b)
        return _cdiv((1.0, None), (1.0 + e[0], e[1]))
    return _unary(f)(op, args, attrs, out)


@row("abs")
def _c_abs(op, args, attrs, out):
    x = args[0]
    return _abs(*parts(x, dt.to_real(x.dtype)))


@row("sign")
def _c_sgn(op, args, attrs, out):
    x = args[0]
    re, im = parts(x, dt.to_real(x.dtype))
    a = _abs(re, im)
    zero = a == 0
    safe = _f("where")(zero, 1.0, a)
    return make(_f("where")(zero, 0.0, re / safe), _f("where")(zero, 0.0, im / safe), x.dtype)


def conj(x):
    """The conjugate of a complex tensor, computed now (a copy)."""
    re, im = parts(x, dt.to_real(x.dtype))
    return make(re, -im, x.dtype)


def _small_power(b):
    return (isinstance(b, numbers.Real) and not isinstance(b, bool) and float(b).is_integer()
            and 0 <= b <= 4)


@row("pow")
def _c_pow(op, args, attrs, out):
    a, b = args
    c = _promoted(args)
    if c.kind != 3:
        c = dt.to_complex(c)
    real = dt.to_real(c)
    if isinstance(a, registry.Tensor) and _small_power(b):
        x = parts(a, real)
        acc = (1.0, None)
        for _ in range(int(b)):
            acc = _cmul(acc, x)
        re, im = acc
        if not isinstance(re, registry.Tensor):
            re = _full_like(x[0], re)
        return make(re, im, c)
    pa, pb = parts(a, real), parts(b, real)
    if not isinstance(pa[0], registry.Tensor):  # a scalar base: log of a number
        import cmath

        la = cmath.log(complex(pa[0], pa[1] or 0.0)) if (pa[0] or pa[1]) else None
        if la is None:
            raise NotImplementedError("pow of a complex zero scalar base is not supported")
        lre, lim = la.real, la.imag
    else:
        lre, lim = _clog(*pa)
    w = _cmul(pb, (lre, lim))
    return make(*_cexp(*w), c)


def _compare(fn):
    def run(op, args, attrs, out):
        c = _promoted(args)
        real = dt.to_real(c if c.kind == 3 else dt.to_complex(c))
        (ar, ai), (br, bi) = (parts(x, real) for x in args)
        return fn(ar == br, (ai if ai is not None else 0.0) == (bi if bi is not None else 0.0))
    return run


ROWS["eq"] = _compare(lambda r, i: r & i if isinstance(i, registry.Tensor) else r)
ROWS["ne"] = _compare(lambda r, i: ~(r & i) if isinstance(i, registry.Tensor) else ~r)


def _test(fn, join):
    def run(op, args, attrs, out):
        x = args[0]
        re, im = parts(x, dt.to_real(x.dtype))
        return join(_f(fn)(re), _f(fn)(im))
    return run


ROWS["isnan"] = _test("isnan", lambda a, b: a | b)


def isinf(x):
    """torch.isinf of a complex tensor: either part infinite."""
    re, im = parts(x, dt.to_real(x.dtype))
    return _f("isinf")(re) | _f("isinf")(im)


def angle(x):
    """torch.angle of a complex tensor: atan2(imag, real)."""
    return _angle(*parts(x, dt.to_real(x.dtype)))


@row("where")
def _c_where(op, args, attrs, out):
    cond, a, b = args
    c = _promoted((a, b))
    if c.kind != 3:
        c = dt.to_complex(c)
    real = dt.to_real(c)
    (ar, ai), (br, bi) = parts(a, real), parts(b, real)
    w = _f("where")
    return make(w(cond, ar, br), w(cond, ai if ai is not None else 0.0,
                                  bi if bi is not None else 0.0), c)


# --- casts and fills ---------------------------------------------------------------------------


def _discarding():
    level, f = 2, sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PACKAGE):
        level, f = level + 1, f.f_back
    warnings.warn("Casting complex values to real discards the imaginary part", UserWarning,
                  stacklevel=level)


@row("to_dtype")
def _c_to(op, args, attrs, out):
    x, d = args[0], attrs["dtype"]
    src = x.dtype
    if out is not None:
        d = out.dtype
    if src.kind == 3 and d.kind != 3:
        if d.kind < 2:
            raise TypeError(f"cannot cast {src} to {d}: complex to integer or bool casts are "
                            "not supported (take .real first)")
        _discarding()
        re = apply(VIEW_AS_REAL, x).select(-1, 0)
        return apply(op, re, dtype=d, out=out)
    if src.kind == 3 and d.kind == 3:
        if out is not None:
            _copy_into(out, x)
            return out
        return apply(VIEW_AS_COMPLEX, apply(op, apply(VIEW_AS_REAL, x), dtype=dt.to_real(d)))
    # real to complex
    if out is not None:
        r = apply(VIEW_AS_REAL, out)
        apply(op, x, dtype=r.dtype, out=r.select(-1, 0))
        apply(registry.REGISTRY["fill"], 0.0, dtype=r.dtype, out=r.select(-1, 1))
        return out
    return make(x, None, d)


@row("fill")
def _c_fill(op, args, attrs, out):
    v = args[0]
    if out is None or out.dtype.kind != 3:
        raise RuntimeError(f"value cannot be converted to type {attrs['dtype'].name} without "
                           "overflow")
    v = complex(v)
    r = apply(VIEW_AS_REAL, out)
    apply(op, v.real, dtype=r.dtype, out=r.select(-1, 0))
    apply(op, v.imag, dtype=r.dtype, out=r.select(-1, 1))
    return out


# --- reductions ----------------------------------------------------------------------------


@row("sum", "mean")
def _c_sum(op, args, attrs, out):
    x = args[0]
    d = attrs.get("dtype")
    a = dict(attrs)
    if d is not None:
        if d.kind != 3:
            raise RuntimeError(f"{op.name}: the dtype of a complex reduction must be complex, "
                               f"got {d}")
        a["dtype"] = dt.to_real(d)
    if x.ndim == 0:
        return x.clone() if d is None else x.to(d)
    return apply(VIEW_AS_COMPLEX, apply(op, apply(VIEW_AS_REAL, x), **a))


@row("prod")
def _c_prod(op, args, attrs, out):
    x = args[0]
    d = attrs.get("dtype")
    if d is not None:
        x = x.to(d)
    if x.ndim == 0:
        return x.clone()
    dims = tuple(attrs["dim"])
    keep = [i for i in range(x.ndim) if i not in dims]
    y = x.permute(*keep, *dims)
    kept = tuple(x._shape[i] for i in keep)
    y = y.reshape(*kept, -1)
    real = dt.to_real(x.dtype)
    p = parts(y, real)
    n = y._shape[-1]
    if n == 0:
        res = make(_full_like(p[0].sum(-1), 1.0), None, x.dtype)
    else:
        while n > 1:
            h = n // 2
            lo = (p[0].narrow(-1, 0, h), p[1].narrow(-1, 0, h))
            hi = (p[0].narrow(-1, h, h), p[1].narrow(-1, h, h))
            q = _cmul(lo, hi)
            if n % 2:
                q = tuple(_f("cat")([qq, pp.narrow(-1, 2 * h, 1)], -1) for qq, pp in zip(q, p))
            p, n = q, h + n % 2
        res = make(p[0].squeeze(-1), p[1].squeeze(-1), x.dtype)
    if attrs.get("keepdim"):
        for i in sorted(dims):
            res = res.unsqueeze(i)
    return res


# --- products ------------------------------------------------------------------------------


@row("matmul")
def _c_matmul(op, args, attrs, out):
    c = _promoted(args)
    if c.kind != 3:
        c = dt.to_complex(c)
    real = dt.to_real(c)
    a, b = (parts(x, real) for x in args)

    def mm(x, y):
        return None if x is None or y is None else apply(op, x, y, **attrs)
    return make(_sub(mm(a[0], b[0]), mm(a[1], b[1])), _add(mm(a[0], b[1]), mm(a[1], b[0])), c)


# --- data movement: the real view moved the same way ---------------------------------------


@row("cat")
def _c_cat(op, args, attrs, out):
    c = _promoted(args)
    if c.kind != 3:
        c = dt.to_complex(c)
    ts = [t if t.dtype is c else t.to(c) for t in args]
    nd = max(t.ndim for t in ts)
    dim = attrs["dim"]
    if dim < 0:
        dim += nd
    rs = [apply(VIEW_AS_REAL, t) for t in ts if not (t.ndim == 1 and t._shape[0] == 0)]
    if not rs:
        return ts[0].clone()
    return apply(VIEW_AS_COMPLEX, apply(op, *rs, dim=dim))


@row("index")
def _c_index(op, args, attrs, out):
    x, *idx = args
    return apply(VIEW_AS_COMPLEX, apply(op, apply(VIEW_AS_REAL, x), *idx, **attrs))


# Ops that move or select elements, or are linear in their data operands (at these
# positions; the others are indices, masks or sizes): run once on the real parts and once on
# the imaginary parts. A real data operand has a zero imaginary part.
PARTWISE = {"index_select": (0,), "gather": (0,), "flip": (0,), "tril": (0,), "triu": (0,),
            "masked_select": (0,), "take": (0,), "masked_fill": (0, 2), "index_put": (0, 1),
            "scatter": (0, 2), "scatter_add": (0, 2), "index_add": (0, 2),
            "index_fill": (0, 3), "diag_embed": (0,), "trace": (0,)}


def _partwise(op, args, attrs, out):
    data = PARTWISE[op.name]
    c = _promoted([args[i] for i in data if i < len(args)])
    if c.kind != 3:
        c = dt.to_complex(c)
    real = dt.to_real(c)
    split = [parts(a, real) if i in data else (a, a) for i, a in enumerate(args)]
    zero = [i for i in data if i < len(args) and split[i][1] is None]
    re = apply(op, *[s[0] for s in split], **attrs)
    for i in zero:
        a = split[i][0]
        split[i] = (a, a * 0.0 if isinstance(a, registry.Tensor) else 0.0)
    im = apply(op, *[s[1] for s in split], **attrs)
    return make(re, im, c)


for _name in PARTWISE:
    ROWS[_name] = _partwise


# --- construction -----------------------------------------------------------------------------


def _complex(real, imag, *, out=None):
    """torch.complex: real + i imag from two float tensors of the same dtype."""
    for name, t in (("real", real), ("imag", imag)):
        if not isinstance(t, registry.Tensor):
            raise TypeError(f"complex(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
    if real.dtype not in (dt.float32, dt.float64):
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got "
                           f"{real.dtype.scalar_type} and {imag.dtype.scalar_type}")
    if imag.dtype is not real.dtype:
        raise RuntimeError(f"Expected object of scalar type {real.dtype.scalar_type} but got "
                           f"scalar type {imag.dtype.scalar_type} for second argument")
    r = make(real, imag, dt.to_complex(real.dtype))
    return r if out is None else _copy_into(out, r) or out


def _polar(abs, angle, *, out=None):
    """torch.polar: abs * (cos(angle) + i sin(angle))."""
    return _complex(abs * _f("cos")(angle), abs * _f("sin")(angle), out=out)


registry.export("complex", _complex, registry.Variants(method=False))
registry.export("polar", _polar, registry.Variants(method=False))
registry.complex_dispatch = dispatch
