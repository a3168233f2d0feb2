"""Elementwise ops: one row per op with its numpy reference, dtype rule, OpenCL scalar
expression and VJP. ``_run`` is the family's eager executor: broadcast, promote, classify
each operand's layout and launch the generated kernel."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import codegen, runtime
from .. import dtypes as dt
from ..codegen import EwGroup, EwOp
from ..codegen.emit import (
    BROADCAST,
    CONTIG,
    SCALAR,
    STRIDED,
    UNIT,
    is_strided,
    packer,
    register_helper,
)
from ..shapes import broadcast_shapes, broadcast_strides, collapse, contiguous_strides
from . import registry
from .registry import OpDef, Variants, apply, register

# --- shapes and layouts -------------------------------------------------------------------


def can_cast(src: dt.dtype, dst: dt.dtype) -> bool:
    """torch.can_cast: no float to integer, nothing but bool to bool."""
    if src.kind > dst.kind:
        return False
    return True


# --- the eager executor -------------------------------------------------------------------

_kernels: dict = {}  # (call signature, layouts, device) -> Kernel


_rules: dict = {}


def _signature(op, args, attrs):
    """(casts, out dtype) of ``op`` on these operand kinds, memoized: promotion only depends
    on each operand's dtype, whether it is 0-d, and the kind of each Python scalar."""
    T = registry.Tensor
    sig = tuple(
        (a.dtype, not a._shape) if isinstance(a, T) else dt.scalar_kind(a) for a in args
    )
    key = (op, sig, tuple(sorted(attrs.items())) if attrs else ())
    hit = _rules.get(key)
    if hit is None:
        dims, zdims, scalars = [], [], []
        for a in args[op.promote]:
            if isinstance(a, T):
                (dims if a._shape else zdims).append(a.dtype)
            elif a is not None:
                scalars.append(a)
        common = dt.result_type(dims, zdims, scalars) if (dims or zdims or scalars) else None
        arg_dtypes = tuple(a.dtype if isinstance(a, T) else None for a in args)
        hit = _rules[key] = op.rule(common, arg_dtypes, attrs) + (key,)
    return hit


_fast: dict = {}


def _run(op: OpDef, args, attrs, out=None):
    """Eager elementwise op. Warm calls are one dict lookup on the operands' metadata
    (dtype, shape, strides, device; scalar kinds; the ``out=`` tensor's) followed by an
    allocation (none with ``out=``) and an enqueue."""
    T = registry.Tensor
    if len(args) == 2:  # most ops: the key without a loop
        a, b = args
        fkey = (op, (a.dtype, a._shape, a._stride, a.device) if isinstance(a, T) else type(a),
                (b.dtype, b._shape, b._stride, b.device) if isinstance(b, T) else type(b))
    else:
        fkey = (op, *[(a.dtype, a._shape, a._stride, a.device) if isinstance(a, T) else type(a)
                      for a in args])
    if attrs:
        fkey += (tuple(attrs.items()),)
    if out is not None:
        fkey += ("out", out.dtype, out._shape, out._stride, out.device)
    hit = _fast.get(fkey)
    if hit is None:
        return _run_general(op, args, attrs, out, fkey)
    odt, shape, cstride, nbytes, dev, kernel, name, pack, cshape, strides, gsize, lsize, n, \
        info = hit
    if out is None:
        out = T._on(runtime.Storage(info, nbytes), shape, cstride, 0, odt, dev, True)
    registry.launch(info, kernel, name, gsize, lsize, pack(n, cshape, args, (out,), strides))
    return out


def _run_general(op: OpDef, args, attrs, out, fkey):
    """An elementwise call the fast path has not seen: checks, output, layouts, kernel and
    launch. A call writing a contiguous result is remembered in ``_fast`` under ``fkey``
    (the checks depend only on what the key holds)."""
    T = registry.Tensor
    dev, shape, same = _common_device(op, args, out)
    casts, odt, key = _signature(op, args, attrs)
    if dev is None:
        dev = out.device if out is not None else registry.default_device()
        shape = ()
    elif not same:
        shape = broadcast_shapes(*[a._shape for a in args if isinstance(a, T)])
    fresh = out is None
    if fresh:
        out = T._empty(shape, odt, dev)
    else:
        if out._shape != shape and all(a is not out for a in args) \
                and not _broadcasts_to(shape, out._shape):
            # an out= the result does not fit (not an in-place op's operand): resized to
            # it as PyTorch does; a result that broadcasts to out fills it (copy_)
            registry.resize_out(out, shape, op.name)
        _check_out(out, shape, odt)
        shape = out._shape
        if 0 in out._stride and any(st == 0 and n > 1 for n, st in zip(shape, out._stride)):
            raise RuntimeError(
                "unsupported operation: more than one element of the written-to tensor refers "
                "to a single memory location. Please clone() the tensor before performing the "
                f"operation. (shape {list(shape)}, stride {list(out._stride)})")
    n = out.numel()
    if n == 0:
        return out
    info = dev.info
    lay, olay, ndim, cshape, strides = _layouts(args, out, shape)
    if n >= TILE_MIN and STRIDED in lay:
        flat = _untransposed(args, lay, shape)
        if flat is not None:
            if fresh and op.name == "to_dtype" and flat[0].dtype is out.dtype:
                return flat[0]  # a plain copy (contiguous(), clone()): the copy is the result
            return _run_general(op, flat, attrs, out, None)
    kkey = (key, tuple(lay), out.dtype, olay, ndim, info.index)
    hit = _kernels.get(kkey)
    if hit is None:
        hit = _kernels[kkey] = _kernel_for(op, args, attrs, lay, casts, odt, out.dtype, olay,
                                           ndim, info)
    kern, pack = hit
    gsize = (kern.global_size(n),)
    registry.launch(info, kern.kernel, kern.name, gsize, (kern.local,),
                    pack(n, cshape, args, (out,), strides))
    if fkey is not None and olay == CONTIG and len(_fast) < 4096:
        _fast[fkey] = (odt, shape, out._stride, n * odt.itemsize, dev, kern.kernel, kern.name,
                       pack, cshape, strides, gsize, (kern.local,), n, info)
    return out


# Operands of at least this many elements that walk the output transposed are first copied
# through the tiled transpose kernel (kernels/conv.cl): the strided kernel would read them a
# row apart per element, 3-10x slower than the copy and a contiguous pass together.
TILE_MIN = 1 << 15


def transposed_view(x):
    """For a tensor whose dims collapse to (..., A, B) with at most two leading dims and
    unit stride on A (a transposed matrix, NHWC seen as NCHW, a batch of x.mT), the view of
    the same elements as (..., B, A) with unit stride on its last dim, which the tiled
    transpose kernel copies to x's elements in row-major order; else None."""
    cshape, (cst,) = collapse(x._shape, [x._stride])
    if not 2 <= len(cshape) <= 4 or cst[-2] != 1 or cst[-1] <= 1 or 0 in cst:
        return None
    shape = cshape[:-2] + (cshape[-1], cshape[-2])
    stride = tuple(cst[:-2]) + (cst[-1], 1)
    return registry.Tensor._on(x._storage, shape, stride, x._offset, x.dtype, x.device, False)


def _untransposed(args, lay, shape):
    """args with each full-size STRIDED operand that transposed_view can copy replaced by
    its contiguous copy; None when there is none."""
    T = registry.Tensor
    out, changed = list(args), False
    for i, (a, la) in enumerate(zip(args, lay)):
        if la is STRIDED and a._shape == shape:
            v = transposed_view(a)
            if v is not None:
                y = registry.REGISTRY["transpose_copy"].run(None, (v,), {})
                out[i] = T._on(y._storage, a._shape, contiguous_strides(a._shape), 0,
                               a.dtype, a.device, True)
                changed = True
    return out if changed else None


def _common_device(op, args, out):
    """(device, shape, same): the tensor operands' device (None: there is none), the first
    one's shape and whether all have it; PyTorch's error for tensors on two devices."""
    T = registry.Tensor
    dev = None
    shape = None
    same = True
    for a in args:
        if isinstance(a, T):
            if dev is None:
                dev, shape = a.device, a._shape
            else:
                if a.device is not dev and a.device != dev:
                    raise RuntimeError(
                        f"Expected all tensors to be on the same device, but found at least "
                        f"two devices, {dev} and {a.device}! (when checking arguments for "
                        f"{op.name})"
                    )
                if a._shape != shape:
                    same = False
    if out is not None and dev is not None and out.device is not dev and out.device != dev:
        raise RuntimeError(
            f"Expected all tensors to be on the same device, but found at least two "
            f"devices, {dev} and {out.device}! (when writing the result of {op.name})"
        )
    return dev, shape, same


def _broadcasts_to(shape, target) -> bool:
    if len(shape) > len(target):
        return False
    return all(n == m or n == 1 for n, m in zip(shape[::-1], target[::-1]))


def _check_out(out, shape, odt):
    """PyTorch's errors for an ``out=`` tensor the result of this shape and dtype cannot be
    written to."""
    if shape != out._shape and broadcast_shapes(shape, out._shape) != out._shape:
        raise RuntimeError(
            f"output with shape {list(out.shape)} doesn't match the broadcast shape "
            f"{list(broadcast_shapes(shape, out._shape))}"
        )
    if not can_cast(odt, out.dtype):
        raise RuntimeError(
            f"result type {_pyname(odt)} can't be cast to the desired output type "
            f"{_pyname(out.dtype)}"
        )


def _layouts(args, out, shape):
    """Each operand's layout and the output's: CONTIG when contiguous in the output's shape,
    else a strided view (STRIDED; UNIT / BROADCAST when its innermost stride is 1 / 0),
    SCALAR for a number; for a strided kernel (ndim > 0) the collapsed shape and each
    operand's strides (the output's last; None for a scalar). Returns (layouts, output
    layout, ndim, shape, strides)."""
    T = registry.Tensor
    lay = [(CONTIG if a._shape == shape and a._contig else STRIDED) if isinstance(a, T)
           else SCALAR for a in args]
    olay = CONTIG if out._contig else STRIDED
    ndim, cshape, strides = 0, None, None
    if olay == STRIDED or STRIDED in lay:
        tensors = [a for a in args if isinstance(a, T)] + [out]
        cshape, cstrides = collapse(shape, [
            broadcast_strides(a._shape, a._stride, shape) for a in tensors[:-1]
        ] + [list(out._stride)])
        cont = list(contiguous_strides(cshape))
        it = iter(cstrides)
        strides = [next(it) if isinstance(a, T) else None for a in args] + [cstrides[-1]]
        for i, st in enumerate(strides[:-1]):
            if st is not None:
                lay[i] = CONTIG if st == cont else (UNIT if st[-1] == 1 else
                                                    BROADCAST if st[-1] == 0 else STRIDED)
        olay = CONTIG if cstrides[-1] == cont else STRIDED
        if olay == STRIDED or any(is_strided(la) for la in lay):
            ndim = len(cshape)
    return lay, olay, ndim, cshape, strides


def _pyname(d: dt.dtype) -> str:
    return d.scalar_type


def ew_op(op, attrs, casts, odt, args) -> EwOp:
    """The expression node of ``op`` over the group values ``args`` (each cast to its entry
    of ``casts``; result dtype ``odt``): an eager kernel's one node, a node of an update
    fused from ops (ops/fused.py)."""
    expr = op.expr(casts[-1] if casts else odt, attrs) if callable(op.expr) else op.expr
    return EwOp(op.name, expr, args, tuple(c.name for c in casts), odt.name, op.argnames,
                op.vec)


def _kernel_for(op, args, attrs, lay, casts, odt, store_dt, olay, ndim, info):
    """The generated kernel of one elementwise op for these operand layouts and dtypes, and
    its argument packer."""
    inputs = []
    for a, la, c in zip(args, lay, casts):
        inputs.append(((a.dtype if la != SCALAR else c).name, la))
    ew = ew_op(op, attrs, casts, odt, tuple(range(len(args))))
    used = [a.dtype for a, la in zip(args, lay) if la != SCALAR] + list(casts) + [odt, store_dt]
    width = min(info.vector_width(d.compute) for d in used)
    group = EwGroup(tuple(inputs), (ew,), ((len(args), store_dt.name, olay),), ndim, width)
    return codegen.elementwise_kernel(info, group), packer(group)


# --- dtype rules --------------------------------------------------------------------------


def _same(common, arg_dtypes, attrs):
    return (common,) * len(arg_dtypes), common


def _floating(common, arg_dtypes, attrs):
    f = common if common.is_floating_point else dt.get_default_dtype()
    return (f,) * len(arg_dtypes), f


def _compare(common, arg_dtypes, attrs):
    return (common,) * len(arg_dtypes), dt.bool_


def _logical(common, arg_dtypes, attrs):
    return (dt.bool_,) * len(arg_dtypes), dt.bool_


def _integral(name):
    def rule(common, arg_dtypes, attrs):
        if common.is_floating_point:
            raise RuntimeError(f'"{name}_cpu" not implemented for \'{_pyname(common)}\'')
        return (common,) * len(arg_dtypes), common

    return rule


def _no_bool(name):
    def rule(common, arg_dtypes, attrs):
        if common is dt.bool_:
            raise RuntimeError(
                f"{name}: Subtraction, the `-` operator, with a bool tensor is not supported. "
                "If you are trying to invert a mask, use the `~` or `logical_not()` operator "
                "instead." if name == "sub" else
                "Negation, the `-` operator, on a bool tensor is not supported. If you are "
                "trying to invert a mask, use the `~` or `logical_not()` operator instead."
            )
        return (common,) * len(arg_dtypes), common

    return rule


def integer_zero_divisor(name, a, b) -> None:
    """PyTorch's error for an integer tensor divided by a Python 0 (floor division,
    remainder, fmod, rounded div). A tensor divisor is not read back: its zeros give 0, or
    the sign of a trunc division's infinity, as on GPUs."""
    if type(b) is int and b == 0 and isinstance(a, registry.Tensor) and not (
            a.dtype.is_floating_point):
        raise RuntimeError(f"ZeroDivisionError: {name} of an integer tensor ({a.dtype}) by 0")


def _not_for_bool(name, error=NotImplementedError, message=None):
    """Rows PyTorch does not define on bool tensors (floor_divide, abs, relu): its error
    instead of a kernel (integer floor division has none for uchar)."""
    def rule(common, arg_dtypes, attrs):
        if common is dt.bool_:
            raise error(message or f'"{name}" not implemented for \'Bool\'')
        return (common,) * len(arg_dtypes), common

    return rule


def _where_rule(common, arg_dtypes, attrs):
    return (dt.bool_, common, common), common


def _cast_rule(common, arg_dtypes, attrs):
    return (arg_dtypes[0],), attrs["dtype"]


def _fill_rule(common, arg_dtypes, attrs):
    d = attrs["dtype"]
    return (d,), d


# --- rows ---------------------------------------------------------------------------------


def _by_kind(fexpr: str, iexpr: str, bexpr: str | None = None):
    def expr(d, attrs):
        if d.is_floating_point:
            return fexpr
        if d is dt.bool_ and bexpr is not None:
            return bexpr
        return iexpr.replace("{T}", d.compute)

    return expr


def elementwise(name, ref, expr, rule, argnames, vjp=None, vec=True, promote=slice(None),
                differentiable=True, saves=None, saves_out=True, needs=None, variants=None,
                tensors_only=False, autocast=None, check=None, keywords=None):
    """One elementwise row; ``variants`` (registry.Variants) makes it public as
    ``cg.<name>(input, *others, out=None)`` and the forms it lists; ``tensors_only``: its
    public function takes no Python number (PyTorch's signature is all Tensors);
    ``check(name, input, *others)`` runs on the public function's operands first;
    ``keywords``: PyTorch's names of the operands after ``input`` (default ``other`` for a
    binary row), which the public function also takes by keyword."""
    op = register(OpDef(name, "elementwise", ref, _run, vjp, expr, rule, argnames, vec,
                        promote, differentiable, saves=saves, needs=needs,
                        saves_out=saves_out, autocast=autocast))
    if variants is not None:
        if keywords is None:
            keywords = ("other",) if len(argnames) == 2 else ()
        registry.export(name, _public(op, tensors_only, check, keywords), variants)
    return op


def check_operand(x, name):
    """A Tensor, a Python number or None; anything else is PyTorch's TypeError."""
    # float and int first: isinstance against the numbers.Number ABC takes ~0.2 us
    if isinstance(x, (registry.Tensor, float, int, numbers.Number)) or x is None:
        return x
    if isinstance(x, np.ndarray):
        raise TypeError(f"{name}(): expected a Tensor or number, got numpy.ndarray; use "
                        "clgraph.from_numpy() first")
    raise TypeError(f"{name}(): unsupported operand type {type(x).__name__}")


def _check_tensors(name, operands) -> None:
    for pos, (arg, x) in enumerate(zip(("input", "other"), operands), 1):
        if not isinstance(x, registry.Tensor):
            raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, "
                            f"not {type(x).__name__}")


def _public(op: OpDef, tensors_only=False, check=None, keywords=()):
    """The public function of a row, with PyTorch's parameter names (``input``, then
    ``keywords``): its operands checked, ``out=`` writing in place."""
    name, n_others = op.name, len(op.argnames) - 1

    def run(input, others, out):
        if tensors_only:
            _check_tensors(name, (input, *others))
        check_operand(input, name)
        for a in others:
            check_operand(a, name)
        if check is not None:
            check(name, input, *others)
        return apply(op, input, *others, out=out)

    if n_others == 0:
        def fn(input, *, out=None):
            return run(input, (), out)
    elif tuple(keywords) == ("other",):
        def fn(input, other, *, out=None):
            return run(input, (other,), out)
    else:
        def fn(input, *others, out=None, **named):
            if named:
                for k in named:
                    if k not in keywords[len(others):]:
                        raise TypeError(f"{name}() got an unexpected keyword argument '{k}'")
                others += tuple(named[k] for k in keywords[len(others):] if k in named)
            if len(others) != n_others:
                raise TypeError(f"{name}() takes {len(op.argnames)} operand(s) but "
                                f"{1 + len(others)} were given")
            return run(input, others, out)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"torch.{name}"
    return fn


def unary(name, ref, expr, rule=_same, vjp=None, vec=True, differentiable=True, **kw):
    return elementwise(name, ref, expr, rule, ("x",), vjp, vec, differentiable=differentiable,
                       **kw)


def binary(name, ref, expr, rule=_same, vjp=None, vec=True, differentiable=True, **kw):
    return elementwise(name, ref, expr, rule, ("a", "b"), vjp, vec,
                       differentiable=differentiable, **kw)


def _first(common, arg_dtypes, attrs):
    """The first operand's dtype for both (a gradient masked by a float tensor)."""
    return (common, arg_dtypes[1] or common), common


def _np_float(fn):
    def ref(x):
        x = np.asarray(x)
        if x.dtype.kind in "biu":
            x = x.astype(np.float32)
        return fn(x)

    return ref


def _sigmoid_ref(x):
    return 1.0 / (1.0 + np.exp(-x))


def _erf_ref(x):

    return np.vectorize(math.erf, otypes=[x.dtype])(x)


def _call(name, *args):
    return apply(OPS[name], *args)


def _zeros_vjp(g, *args, out=None, **attrs):
    return tuple(g * 0 if isinstance(a, registry.Tensor) else None for a in args)


def _where_vjp(g, c, a, b, out=None):
    return (None, _call("where", c, g, 0.0), _call("where", c, 0.0, g))


def _pow_vjp(g, a, b, out=None):
    ga = g * b * _call("pow", a, b - 1) if isinstance(b, registry.Tensor) or b != 0 else g * 0
    gb = None
    if isinstance(b, registry.Tensor):
        # d/db a**b = a**b log(a), taken as 0 where a == 0 (PyTorch's convention)
        if isinstance(a, registry.Tensor):
            gb = _call("where", _call("eq", a, 0), 0.0, g * out * _call("log", a))
        else:  # a Python number (2 ** t): its log in double, not as a float32 tensor
            gb = g * 0 if a == 0 else g * out * (math.log(a) if a > 0 else math.nan)
    return ga, gb


def _minmax_vjp(pick):
    def vjp(g, a, b, out=None):
        wa = _call(pick, a, b).to(g.dtype) + _call("eq", a, b).to(g.dtype) * 0.5
        return g * wa, g * (1 - wa)

    return vjp


def _clamp_vjp(keep, clip):
    """clamp_min / clamp_max: the input keeps the gradient where it is inside the bound, on
    it included, as in PyTorch (maximum and minimum share a tie); a tensor bound gets the
    rest, NaN inputs give none."""
    def vjp(g, x, bound, out=None):
        return g * _call(keep, x, bound).to(g.dtype), g * _call(clip, x, bound).to(g.dtype)

    return vjp


_SQRT_PI = 1.7724538509055159

unary("neg", np.negative, "(-{x})", _no_bool("neg"), lambda g, x, out: (-g,),
      saves=(), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True, dunders=("neg",),
                        aliases=("negative",)))
unary("abs", np.abs, _by_kind("fabs({x})", "abs({x})", "{x}"), _not_for_bool("abs"),
      vjp=lambda g, x, out: (g * _call("sign", x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True, dunders=("abs",),
                        aliases=("absolute",)))
unary("sign", np.sign, _by_kind("sign({x})", "(({x} > 0) - ({x} < 0))", "{x}"), vec=False,
      vjp=_zeros_vjp,
      variants=Variants(inplace=True, aliases=("sgn",)))
unary("floor", np.floor, _by_kind("floor({x})", "{x}"), _not_for_bool("floor"),
      vjp=_zeros_vjp,
      variants=Variants(inplace=True, inplace_function=True))
unary("ceil", np.ceil, _by_kind("ceil({x})", "{x}"), _not_for_bool("ceil"),
      vjp=_zeros_vjp,
      variants=Variants(inplace=True, inplace_function=True))
unary("round", np.round, _by_kind("rint({x})", "{x}"), _not_for_bool("round"),
      vjp=_zeros_vjp)  # public: ops/math.py
unary("relu", lambda x: np.maximum(x, 0),
      _by_kind("(({x} > 0) || isnan({x})) ? {x} : ({T})0", "max({x}, ({T})0)", "{x}"),
      _not_for_bool("relu", RuntimeError, "Boolean inputs not supported for relu"),
      vjp=lambda g, x, out: (_call("threshold_backward", g, out),), saves=(),
      variants=Variants(inplace=True, inplace_function=True, functional=True, module="ReLU"))
# relu's gradient in one vectorized kernel: g where out > 0, else 0
binary("threshold_backward", lambda g, y: np.where(y > 0, g, 0).astype(g.dtype),
       "(({b} > 0) ? {a} : ({T})0)", _first, promote=slice(0, 1),
       vjp=lambda gg, g, y, out: (_call("threshold_backward", gg, y), None), saves=(1,),
       saves_out=False)
unary("exp", _np_float(np.exp), "exp({x})", _floating,
      vjp=lambda g, x, out: (g * out,), saves=(),
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("log", _np_float(np.log), "log({x})", _floating,
      vjp=lambda g, x, out: (g / x,), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("log1p", _np_float(np.log1p), "log1p({x})", _floating,
      vjp=lambda g, x, out: (g / (x + 1),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("expm1", _np_float(np.expm1), "expm1({x})", _floating,
      vjp=lambda g, x, out: (g * (out + 1),), saves=(),
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("sqrt", _np_float(np.sqrt), "sqrt({x})", _floating,
      vjp=lambda g, x, out: (g / (out * 2),), saves=(),
      variants=Variants(inplace=True, inplace_function=True))
unary("rsqrt", _np_float(lambda x: 1 / np.sqrt(x)), "rsqrt({x})", _floating,
      vjp=lambda g, x, out: (g * out * out * out * -0.5,), saves=(),
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("sin", _np_float(np.sin), "sin({x})", _floating,
      vjp=lambda g, x, out: (g * _call("cos", x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True))
unary("cos", _np_float(np.cos), "cos({x})", _floating,
      vjp=lambda g, x, out: (-g * _call("sin", x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True))
unary("tanh", _np_float(np.tanh), "tanh({x})", _floating,
      vjp=lambda g, x, out: (g * (1 - out * out),), saves=(),
      variants=Variants(inplace=True, inplace_function=True, functional=True, module="Tanh"))
unary("sigmoid", _np_float(_sigmoid_ref), "(({T})1 / (({T})1 + exp(-{x})))", _floating,
      vjp=lambda g, x, out: (g * out * (1 - out),), saves=(),
      variants=Variants(inplace=True, inplace_function=True, functional=True, module="Sigmoid"))
unary("erf", _np_float(_erf_ref), "erf({x})", _floating,
      vjp=lambda g, x, out: (g * _call("exp", -(x * x)) * (2 / _SQRT_PI),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True))
unary("reciprocal", _np_float(np.reciprocal), "(({T})1 / {x})", _floating,
      vjp=lambda g, x, out: (-g * out * out,), saves=(),
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("hardswish", _np_float(lambda x: x * np.clip(x + 3, 0, 6) / 6),
      "({x} * fmin(fmax({x} + ({T})3, ({T})0), ({T})6) / ({T})6)", _floating,
      vjp=lambda g, x, out: (g * _call("where", _call("lt", x, -3.0), 0.0, _call(
          "where", _call("le", x, 3.0), x / 3 + 0.5, 1.0)),), saves_out=False,
      variants=Variants(inplace=True, functional=True, module="Hardswish"))
unary("hardsigmoid", _np_float(lambda x: np.clip(x / 6 + 0.5, 0, 1)),
      "fmin(fmax({x} / ({T})6 + ({T})0.5, ({T})0), ({T})1)", _floating,
      vjp=lambda g, x, out: (_call("where", _call("lt", _call("abs", x), 3.0), g / 6, 0.0),),
      saves_out=False, variants=Variants(inplace=True, functional=True, module="Hardsigmoid"))
unary("bitwise_not", np.invert, _by_kind("", "(~{x})", "(!{x})"), _integral("bitwise_not"),
      vec=False, differentiable=False,
      variants=Variants(inplace=True, dunders=("invert",)))
unary("logical_not", np.logical_not, "(!{x})", _logical, vec=False, differentiable=False,
      variants=Variants(inplace=True))
unary("isnan", np.isnan, _by_kind("isnan({x})", "0"), _compare, vec=False,
      differentiable=False,
      variants=Variants())
unary("to_dtype", lambda x, dtype: x.astype(dtype.np), "{x}", _cast_rule,
      vjp=lambda g, x, out, dtype: (g,), saves=(), saves_out=False)
unary("fill", None, "{x}", _fill_rule, differentiable=False)

binary("add", np.add, _by_kind("({a} + {b})", "({a} + {b})", "({a} | {b})"),
       vjp=lambda g, a, b, out: (g, g), saves=(), saves_out=False)
binary("sub", np.subtract, "({a} - {b})", _no_bool("sub"),
       vjp=lambda g, a, b, out: (g, -g), saves=(), saves_out=False)
# a's value is read only for b's gradient and vice versa: x.mul_(2) on a graph tensor saves
# nothing of x, so later in-place writes to it stay legal
binary("mul", np.multiply, _by_kind("({a} * {b})", "({a} * {b})", "({a} & {b})"),
       vjp=lambda g, a, b, out: (g * b, g * a), saves_out=False,
       needs=lambda rg: tuple(i for i, other in ((0, rg[1]), (1, rg[0])) if other),
       variants=Variants(inplace=True, dunders=("mul", "rmul", "imul"), aliases=("multiply",)))
binary("div", np.true_divide, "({a} / {b})", _floating,
       vjp=lambda g, a, b, out: (g / b, -g * a / (b * b)), saves_out=False,
       needs=lambda rg: (0, 1) if rg[1] else (1,))
binary("floor_divide", np.floor_divide,
       _by_kind("floor({a} / {b})", "cg_floordiv_{T}({a}, {b})"), _not_for_bool("floor_divide"),
       vec=False, vjp=_zeros_vjp, check=integer_zero_divisor,
       variants=Variants(inplace=True, dunders=("floordiv", "rfloordiv", "ifloordiv")))
binary("remainder", np.remainder,
       _by_kind("((fmod({a}, {b}) != 0 && ((fmod({a}, {b}) < 0) != ({b} < 0))) ? "
                "fmod({a}, {b}) + {b} : fmod({a}, {b}))", "cg_mod_{T}({a}, {b})"),
       _not_for_bool("remainder"), vec=False, check=integer_zero_divisor,
       vjp=lambda g, a, b, out: (g, -g * _call("floor_divide", a, b)), saves_out=False,
       variants=Variants(inplace=True, dunders=("mod", "rmod", "imod")))
binary("pow", np.power, _by_kind("pow({a}, {b})", "cg_pow_{T}({a}, {b})", "({a} | !{b})"),
       vjp=_pow_vjp, autocast="float32")
binary("maximum", np.maximum,
       _by_kind("((({a} > {b}) || isnan({a})) ? {a} : {b})", "max({a}, {b})"),
       vjp=_minmax_vjp("gt"), saves_out=False,
       variants=Variants(inplace=True))
binary("minimum", np.minimum,
       _by_kind("((({a} < {b}) || isnan({a})) ? {a} : {b})", "min({a}, {b})"),
       vjp=_minmax_vjp("lt"), saves_out=False,
       variants=Variants(inplace=True))
# clamp's halves (ops/math.py's clamp): maximum's and minimum's values, clamp's gradient
binary("clamp_min", np.maximum,
       _by_kind("((({a} > {b}) || isnan({a})) ? {a} : {b})", "max({a}, {b})"),
       vjp=_clamp_vjp("ge", "lt"), saves_out=False)
binary("clamp_max", np.minimum,
       _by_kind("((({a} < {b}) || isnan({a})) ? {a} : {b})", "min({a}, {b})"),
       vjp=_clamp_vjp("le", "gt"), saves_out=False)
binary("atan2", np.arctan2, "atan2({a}, {b})", _floating, saves_out=False,
       vjp=lambda g, a, b, out: (g * b / (a * a + b * b), -g * a / (a * a + b * b)),
       variants=Variants(inplace=True, aliases=("arctan2",)))
for _name, _ref, _c, _alias in [("eq", np.equal, "==", ()),
                                ("ne", np.not_equal, "!=", ("not_equal",)),
                                ("lt", np.less, "<", ("less",)),
                                ("le", np.less_equal, "<=", ("less_equal",)),
                                ("gt", np.greater, ">", ("greater",)),
                                ("ge", np.greater_equal, ">=", ("greater_equal",))]:
    binary(_name, _ref, f"({{a}} {_c} {{b}})", _compare, vec=False, differentiable=False,
           variants=Variants(inplace=True, dunders=(_name,), aliases=_alias))
for _name, _ref, _c, _op in [("bitwise_and", np.bitwise_and, "&", "and"),
                             ("bitwise_or", np.bitwise_or, "|", "or"),
                             ("bitwise_xor", np.bitwise_xor, "^", "xor")]:
    binary(_name, _ref, f"({{a}} {_c} {{b}})", _integral(_name), vec=False,
           differentiable=False,
           variants=Variants(inplace=True, dunders=(_op, "r" + _op, "i" + _op)))
for _name, _ref, _c in [("logical_and", np.logical_and, "&&"),
                        ("logical_or", np.logical_or, "||"),
                        ("logical_xor", np.logical_xor, "!=")]:
    binary(_name, _ref, f"((!!{{a}}) {_c} (!!{{b}}))", _logical, vec=False,
           differentiable=False, variants=Variants(inplace=True), tensors_only=True)
elementwise("where", lambda c, a, b: np.where(c, a, b), "({c} ? {a} : {b})", _where_rule,
            ("c", "a", "b"), vjp=_where_vjp, vec=False, promote=slice(1, None), saves=(0,),
            saves_out=False)

_LN2, _LN10 = math.log(2.0), math.log(10.0)

unary("trunc", np.trunc, _by_kind("trunc({x})", "{x}"), vjp=_zeros_vjp,
      variants=Variants(inplace=True, inplace_function=True, aliases=("fix",)))
unary("exp2", _np_float(np.exp2), "exp2({x})", _floating,
      vjp=lambda g, x, out: (g * out * _LN2,), saves=(),
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("log2", _np_float(np.log2), "log2({x})", _floating,
      vjp=lambda g, x, out: (g / (x * _LN2),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("log10", _np_float(np.log10), "log10({x})", _floating,
      vjp=lambda g, x, out: (g / (x * _LN10),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True), autocast="float32")
unary("tan", _np_float(np.tan), "tan({x})", _floating,
      vjp=lambda g, x, out: (g * (out * out + 1),), saves=(),
      variants=Variants(inplace=True, inplace_function=True))
unary("atan", _np_float(np.arctan), "atan({x})", _floating,
      vjp=lambda g, x, out: (g / (x * x + 1),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True, aliases=("arctan",)))
unary("asin", _np_float(np.arcsin), "asin({x})", _floating,
      vjp=lambda g, x, out: (g * _call("rsqrt", 1 - x * x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True, aliases=("arcsin",)))
unary("acos", _np_float(np.arccos), "acos({x})", _floating,
      vjp=lambda g, x, out: (-g * _call("rsqrt", 1 - x * x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True, aliases=("arccos",)))
unary("sinh", _np_float(np.sinh), "sinh({x})", _floating,
      vjp=lambda g, x, out: (g * _call("cosh", x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True))
unary("cosh", _np_float(np.cosh), "cosh({x})", _floating,
      vjp=lambda g, x, out: (g * _call("sinh", x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True))
# signbit() of a float is 1 for -0.0 and negative NaNs too (a comparison would miss them)
unary("signbit", np.signbit, _by_kind("signbit({x})", "({x} < 0)", "0"), _compare, vec=False,
      differentiable=False, variants=Variants())
# fmod truncates (C's remainder); an integer divisor of 0 gives 0, as remainder's does
binary("fmod", np.fmod,
       _by_kind("fmod({a}, {b})", "((({b}) == 0 || ({b}) == ({T})-1) ? ({T})0 : ({a} % {b}))"),
       vec=False, vjp=lambda g, a, b, out: (g, -g * _call("trunc", a / b)), saves_out=False,
       check=integer_zero_divisor, variants=Variants(inplace=True))


def _shift_rule(name):
    """Integer operands only, as the shifts, gcd and lcm take them (PyTorch: a bool tensor
    alone is refused, promoted it is not), with PyTorch's dispatch error."""
    def rule(common, arg_dtypes, attrs):
        if common.is_floating_point or common is dt.bool_:
            raise NotImplementedError(f'"{name}_cpu" not implemented for \'{_pyname(common)}\'')
        return (common,) * len(arg_dtypes), common

    return rule


def _shift_expr(left: bool):
    """PyTorch's shifts: a shift by a negative count or by the type's width or more gives 0
    (right: the sign fill); OpenCL would take the count modulo the width."""
    def expr(d, attrs):
        w, t = d.itemsize * 8, d.compute
        if left:
            return f"((({{b}}) < 0 || ({{b}}) >= {w}) ? ({t})0 : ({t})({{a}} << {{b}}))"
        return (f"((({{b}}) < 0 || ({{b}}) >= {w}) ? ({{a}} < 0 ? ({t})-1 : ({t})0) : "
                f"({t})({{a}} >> {{b}}))")

    return expr


def _shift_ref(left: bool):
    def ref(a, b):
        a, b = np.asarray(a), np.asarray(b)
        d = np.result_type(a, b)
        a, b = a.astype(d), b.astype(d)
        w = d.itemsize * 8
        out_range = (b < 0) | (b >= w)
        bb = np.where(out_range, 0, b).astype(d)
        if left:
            return np.where(out_range, 0, np.left_shift(a, bb)).astype(d)
        return np.where(out_range, np.where(a < 0, -1, 0), np.right_shift(a, bb)).astype(d)

    return ref


binary("bitwise_left_shift", _shift_ref(True), _shift_expr(True), _shift_rule("lshift"),
       vec=False, differentiable=False,
       variants=Variants(inplace=True, dunders=("lshift", "rlshift", "ilshift")))
binary("bitwise_right_shift", _shift_ref(False), _shift_expr(False), _shift_rule("rshift"),
       vec=False, differentiable=False,
       variants=Variants(inplace=True, dunders=("rshift", "rrshift", "irshift")))



def _float_only(name):
    def rule(common, arg_dtypes, attrs):
        if not common.is_floating_point:
            raise RuntimeError(f'"{name}" not implemented for \'{_pyname(common)}\'; use '
                               "floating point tensors")
        return (common,) * len(arg_dtypes), common

    return rule


def _scaled(g, *factors):
    """g times the product of the factors, Python numbers folded into one multiply."""
    k, tensors = 1, []
    for f in factors:
        if isinstance(f, registry.Tensor):
            tensors.append(f)
        else:
            k *= f
    for t in tensors:
        g = g * t
    return g if k == 1 else g * k


def _addcmul_vjp(g, x, a, b, v, out=None):
    gv = _scaled(g, a, b) if isinstance(v, registry.Tensor) else None
    return g, _scaled(g, b, v), _scaled(g, a, v), gv


def _addcdiv_vjp(g, x, a, b, v, out=None):
    q = _scaled(g, v) / b
    gv = g * a / b if isinstance(v, registry.Tensor) else None
    return g, q, -q * a / b, gv


def _lerp_vjp(g, x, e, w, out=None):
    gw = g * (e - x) if isinstance(w, registry.Tensor) else None
    return g * (1 - w), g * w, gw


# x + v*a*b, x + v*a/b, x + w*(e - x): one kernel each (optimizer updates, add's alpha);
# ``v`` and ``w`` are runtime operands, so a changing lr or bias correction reuses the kernel.
elementwise("addcmul", lambda x, a, b, v=1: x + v * a * b, "({x} + {v} * {a} * {b})", _same,
            ("x", "a", "b", "v"), vjp=_addcmul_vjp, saves_out=False)
elementwise("addcdiv", lambda x, a, b, v=1: x + v * a / b, "({x} + {v} * {a} / {b})",
            _float_only("addcdiv"), ("x", "a", "b", "v"), vjp=_addcdiv_vjp, saves_out=False)
elementwise("lerp", lambda x, e, w: x + w * (e - x), "({x} + {w} * ({e} - {x}))",
            _float_only("lerp"), ("x", "e", "w"), vjp=_lerp_vjp, saves_out=False)

# --- special functions -------------------------------------------------------------------
# digamma and erfinv need loops and branches: their rows call C functions registered here
# (codegen.emit.register_helper; every program calling one gets its definition), so they
# stay one scalar expression per element and fuse like any row.

_TWO_OVER_SQRT_PI = 2 / _SQRT_PI

# psi(x): psi(1 - x) - pi / tan(pi x) for x < 0 (tan's argument reduced to pi (x - round(x)),
# exact, so the poles keep their relative precision), the recurrence psi(x) = psi(x + 1) - 1/x
# up to x >= 10, then the asymptotic series; psi(+-0) = -+inf, NaN at negative integers.
register_helper("digamma", r"""
inline T cg_digamma_T(T x) {
  T r = (T)0;
  if (x == (T)0) return copysign((T)INFINITY, -x);
  if (x < (T)0 && x == floor(x)) return (T)NAN;
  if (x < (T)0) { r = -(T)3.14159265358979323846 / tan((T)3.14159265358979323846 * (x - rint(x)));
                  x = (T)1 - x; }
  while (x < (T)10) { r -= (T)1 / x; x += (T)1; }
  const T i = (T)1 / (x * x);
  return r + log(x) - (T)0.5 / x - i * ((T)0.083333333333333333 - i *
      ((T)0.0083333333333333333 - i * ((T)0.0039682539682539683 - i *
      ((T)0.0041666666666666667 - i * ((T)0.0075757575757575758 - i *
      (T)0.021092796092796093)))));
}""")

# Hurwitz zeta(s, q) = sum_k (q + k)^-s for an integer s >= 2 and q > 0: the terms below
# y = q + m >= s + 15 (s + 7 in float), smallest first, on top of the Euler-Maclaurin tail at
# y (up to 12 Bernoulli terms, the first left out below 1e-20 relative there).
register_helper("hurwitz_pos", r"""
inline T cg_hurwitz_pos_T(int s, T q) {
  const T eps = sizeof(T) == 8 ? (T)1e-17 : (T)1e-8;
  const T inv_b[12] = {12.0, -720.0, 30240.0, -1209600.0, 47900160.0,
                       -1.8924375803183791606e9, 7.47242496e10, -2.950130727918164224e12,
                       1.1646782814350067249e14, -4.5979787224074726105e15,
                       1.8152105401943546773e17, -7.1661652561756670113e18};
  const T ys = (T)(s + (sizeof(T) == 8 ? 15 : 7));
  const int m = q < ys ? (int)ceil(ys - q) : 0;
  const T y = q + (T)m, sf = (T)s;
  const T b = pow(y, -sf);
  T sum = y * b / (sf - (T)1) + (T)0.5 * b;
  T f = sf, t = b / y, y2 = (T)1 / (y * y);
  for (int j = 0; j < 12; j++) {
    const T term = f * t / inv_b[j];
    sum += term;
    if (fabs(term) <= eps * sum) break;
    f *= (sf + (T)(2 * j + 1)) * (sf + (T)(2 * j + 2)); t *= y2;
  }
  for (int k = m - 1; k >= 0; --k) sum += pow(q + (T)k, -sf);
  return sum;
}""")

# polygamma(n, x) = (-1)^(n+1) n! zeta(n + 1, x) for n >= 1. For -64 < x < 0 the terms up
# to x + k >= s + 15 one by one from k = 0 (x + k is exact near the poles, and terms
# symmetric about a half-integer cancel exactly), then zeta at the last. Below, with x = d - M
# (M = -rint(x), d = x + M in [-1/2, 1/2] exactly), the sum splits into d^-s, the terms
# d + j, j >= 1, and the M terms d - j = -(j - d), j = 1..M: d^-s + zeta(s, 1 + d)
# + (-1)^s (zeta(s, 1 - d) - zeta(s, 1 - d + M)), the zetas at arguments >= 1/2, so the pole
# keeps its relative precision and the cost does not grow with |x|. Even n <= 60 (30 in float)
# at x < 0 take the reflection formula instead (below). Poles (x a non-positive
# integer) give (-1)^(n+1) inf, as PyTorch's; +inf gives 0, -inf NaN.
register_helper("polygamma", r"""
inline T cg_polygamma_T(T x, int n) {
  const int s = n + 1;
  const T sign = (n & 1) ? (T)1 : (T)-1;
  if (isnan(x) || x == -(T)INFINITY) return (T)NAN;
  if (x == (T)INFINITY) return sign * (T)0;
  if (x <= (T)0 && x == floor(x)) return sign * (T)INFINITY;
  T fact = (T)1;
  for (int k = 2; k <= n; k++) fact *= (T)k;
  T z;
  if (x < (T)0 && !(n & 1) && n <= (sizeof(T) == 8 ? 60 : 30)) {
    /* even n, whose values change sign between the poles: the reflection
       psi(n)(x) = psi(n)(1 - x) - pi^(n+1) cot^(n)(pi x), cot^(n) = P_n(cot) with
       P_0 = c, P_k+1 = -(1 + c^2) P_k' (all coefficients of one sign), cot(pi d) from
       the exact d = x - rint(x) (by tan(pi (1/2 - |d|)) near |d| = 1/2, where it
       vanishes): near the zeros the terms cancelling are as small as psi(n)(1 - x) */
    T p[64], q[64];
    for (int i = 0; i <= n + 1; i++) p[i] = (T)0;
    p[1] = (T)1;
    for (int k = 0; k < n; k++) {
      for (int i = 0; i <= k + 2; i++)
        q[i] = -(i + 1 <= k + 1 ? (T)(i + 1) * p[i + 1] : (T)0)
               - (i >= 1 ? (T)(i - 1) * p[i - 1] : (T)0);
      for (int i = 0; i <= k + 2; i++) p[i] = q[i];
    }
    const T d = x - rint(x), ad = fabs(d), pi = (T)3.14159265358979323846;
    const T c = ad < (T)0.25 ? (T)1 / tan(pi * d) : copysign(tan(pi * ((T)0.5 - ad)), d);
    T poly = (T)0;
    for (int i = n + 1; i >= 0; i--) poly = poly * c + p[i];
    T pin = pi;
    for (int k = 0; k < n; k++) pin *= pi;
    return -(pin * poly + fact * cg_hurwitz_pos_T(s, (T)1 - x));
  }
  if (x > (T)0) {
    z = cg_hurwitz_pos_T(s, x);
  } else if (x > (T)-64) {
    const T ys = (T)(s + (sizeof(T) == 8 ? 15 : 7));
    z = (T)0;
    T a = x;
    while (a < ys) { z += pow(a, -(T)s); a += (T)1; }
    z += cg_hurwitz_pos_T(s, a);
  } else {
    const T r = rint(x), d = x - r;
    const T rest = r < (T)0 ? cg_hurwitz_pos_T(s, (T)1 - d) - cg_hurwitz_pos_T(s, (T)1 - d - r)
                            : (T)0;
    z = pow(d, -(T)s) + cg_hurwitz_pos_T(s, (T)1 + d) + ((s & 1) ? -rest : rest);
  }
  return sign * fact * z;
}""")
_DIGAMMA = "cg_digamma_{T}({x})"

# erfinv: Giles' single-precision approximation ("Approximating the erfinv function",
# 2010), then two Newton steps on erf (|y| < 0.5) or on erfc (the tails, where 1 - |y| is
# exact and erfc keeps its relative precision).
register_helper("erfinv", r"""
inline T cg_erfinv_T(T y) {
  const T a = fabs(y);
  if (!(a < (T)1)) return a == (T)1 ? copysign((T)INFINITY, y) : (T)NAN;
  T w = -log(((T)1 - a) * ((T)1 + a)), p;
  if (w < (T)5) {
    w -= (T)2.5; p = (T)2.81022636e-08;
    p = (T)3.43273939e-07 + p * w; p = (T)-3.5233877e-06 + p * w;
    p = (T)-4.39150654e-06 + p * w; p = (T)0.00021858087 + p * w;
    p = (T)-0.00125372503 + p * w; p = (T)-0.00417768164 + p * w;
    p = (T)0.246640727 + p * w; p = (T)1.50140941 + p * w;
  } else {
    w = sqrt(w) - (T)3; p = (T)-0.000200214257;
    p = (T)0.000100950558 + p * w; p = (T)0.00134934322 + p * w;
    p = (T)-0.00367342844 + p * w; p = (T)0.00573950773 + p * w;
    p = (T)-0.0076224613 + p * w; p = (T)0.00943887047 + p * w;
    p = (T)1.00167406 + p * w; p = (T)2.83297682 + p * w;
  }
  T r = p * a;
  for (int k = 0; k < 2; ++k)
    r += (a < (T)0.5 ? a - erf(r) : erfc(r) - ((T)1 - a)) /
         ((T)1.1283791670955126 * exp(-r * r));
  return copysign(r, y);
}""")
_ERFINV = "cg_erfinv_{T}({x})"


# d x / d alpha of a Gamma(alpha, 1) draw x at fixed CDF (the implicit reparameterization
# gradient -(dF/dalpha) / (dF/dx)), PyTorch's standard_gamma_grad_one: a Taylor series of
# the CDF for x < 0.8 (its ratio to the density taken as x e^x, which stays finite in float
# where x^(alpha - 1) overflows), Rice's saddle point expansion for alpha > 8, else a
# bivariate rational fit in (log(x / alpha), log(alpha)). ``psi`` is digamma(alpha), passed
# in so that the call site names cg_digamma and the program gets its definition.
register_helper("standard_gamma_grad", r"""
inline T cg_standard_gamma_grad_T(T alpha, T x, T psi) {
  if (x < (T)0.8f) {  /* float thresholds, as PyTorch's: x = 0.8 takes the series */
    T numer = (T)1, denom = alpha;
    T series1 = numer / denom, series2 = numer / (denom * denom);
    for (int i = 1; i <= 5; ++i) {
      numer *= -x / (T)i; denom += (T)1;
      series1 += numer / denom; series2 += numer / (denom * denom);
    }
    const T r = -x * exp(x) * ((log(x) - psi) * series1 - series2);
    return isnan(r) ? (T)0 : r;
  }
  if (alpha > (T)8) {
    if ((T)0.9f * alpha <= x && x <= (T)1.1f * alpha) {
      const T numer_1 = (T)1 + (T)24 * alpha * ((T)1 + (T)12 * alpha);
      const T numer_2 = (T)1440 * (alpha * alpha) + (T)6 * x * ((T)53 - (T)120 * x)
          - (T)65 * x * x / alpha + alpha * ((T)107 + (T)3600 * x);
      const T denom = (T)1244160 * (alpha * alpha) * (alpha * alpha);
      return numer_1 * numer_2 / denom;
    }
    /* log(x / alpha) as log1p of the exact x - alpha: float32 keeps 5 digits near the band */
    const T t = (x - alpha) / alpha, log_ratio = log1p(t);
    const T denom = sqrt((T)8 * alpha);
    const T term2 = denom / (alpha - x);
    const T term3 = pow(alpha * (t - log_ratio), (T)-1.5);
    const T term23 = (x < alpha) ? term2 - term3 : term2 + term3;
    const T term1 = log_ratio * term23
        - sqrt((T)2 / alpha) * (alpha + x) / ((alpha - x) * (alpha - x));
    const T stirling = (T)1 + (T)1 / ((T)12 * alpha) * ((T)1 + (T)1 / ((T)24 * alpha));
    return -stirling * x * term1 / denom;
  }
  const T u = log(x / alpha), v = log(alpha);
  const T c0[8] = {0.16009398, -0.094634809, 0.025146376, -0.0030648343,
                   1, 0.32668115, 0.10406089, 0.0014179084};
  const T c1[8] = {0.53487893, 0.1298071, 0.065735949, -0.0015649758,
                   0.16639465, 0.020070113, -0.0035938915, -0.00058392623};
  const T c2[8] = {0.040121004, -0.0065914022, -0.0026286047, -0.0013441777,
                   0.017050642, -0.0021309326, 0.00085092367, -1.5247877e-07};
  T c[8];
  for (int i = 0; i < 8; ++i) c[i] = c0[i] + u * (c1[i] + u * c2[i]);
  const T p = c[0] + v * (c[1] + v * (c[2] + v * c[3]));
  const T q = c[4] + v * (c[5] + v * (c[6] + v * c[7]));
  return exp(p / q);
}""")
_STANDARD_GAMMA_GRAD = "cg_standard_gamma_grad_{T}({a}, {b}, cg_digamma_{T}({a}))"


def _trigamma(x):
    """psi'(x), digamma's derivative: the polygamma row with n = 1."""
    return apply(OPS["polygamma"], x, n=1)


def _xlogy_vjp(g, a, b, out=None):
    T = registry.Tensor
    ga = g * _call("xlogy", _call("ne", a, 0), b) if isinstance(a, T) else None
    return ga, (g * a / b if isinstance(b, T) else None)


def _copysign_vjp(g, a, b, out=None):
    """out / a where a != 0 (the sign flip), 0 at a == 0; nothing flows to the sign."""
    ratio = _call("where", _call("eq", a, 0), 0.0, out / a)
    return g * ratio, (g * 0 if isinstance(b, registry.Tensor) else None)


def _heaviside_rule(common, arg_dtypes, attrs):
    if arg_dtypes[0] is not arg_dtypes[1]:
        raise RuntimeError("heaviside is not yet implemented for tensors with different "
                           f"dtypes. (got {_pyname(arg_dtypes[0])} and "
                           f"{_pyname(arg_dtypes[1])})")
    return (common, common), common


def _float_args(name):
    """Floating-point results that PyTorch does not define on integer-only operands."""
    def rule(common, arg_dtypes, attrs):
        if not common.is_floating_point:
            raise NotImplementedError(f'"{name}_cpu" not implemented for '
                                      f"'{_pyname(common)}'")
        return (common,) * len(arg_dtypes), common

    return rule


def _np_digamma(x):
    """psi by the same series in float64 (numpy has none): the reference of its row."""
    x = np.asarray(x, dtype=np.float64)
    r = np.zeros_like(x)
    with np.errstate(all="ignore"):
        refl = x < 0
        r = np.where(refl, -np.pi / np.tan(np.pi * x), 0.0)
        z = np.where(refl, 1 - x, x)
        while np.any(z < 10):
            small = z < 10
            r = np.where(small, r - 1 / z, r)
            z = np.where(small, z + 1, z)
        i = 1 / (z * z)
        r = r + np.log(z) - 0.5 / z - i * (1 / 12 - i * (1 / 120 - i * (1 / 252 - i * (
            1 / 240 - i * (1 / 132 - i * 691 / 32760)))))
        r = np.where(x == 0, np.copysign(np.inf, -x), r)
        r = np.where((x < 0) & (x == np.floor(x)), np.nan, r)
    return r


_GAMMA_UV = np.array([
    [0.16009398, -0.094634809, 0.025146376, -0.0030648343,
     1, 0.32668115, 0.10406089, 0.0014179084],
    [0.53487893, 0.1298071, 0.065735949, -0.0015649758,
     0.16639465, 0.020070113, -0.0035938915, -0.00058392623],
    [0.040121004, -0.0065914022, -0.0026286047, -0.0013441777,
     0.017050642, -0.0021309326, 0.00085092367, -1.5247877e-07]])


def _np_standard_gamma_grad(alpha, x):
    """The row's three branches in float64 (PyTorch's standard_gamma_grad_one)."""
    alpha, x = np.broadcast_arrays(np.asarray(alpha, np.float64), np.asarray(x, np.float64))
    with np.errstate(all="ignore"):
        numer, denom = np.ones_like(x), alpha.copy()
        s1, s2 = numer / denom, numer / (denom * denom)
        for i in range(1, 6):
            numer = numer * -x / i
            denom = denom + 1
            s1, s2 = s1 + numer / denom, s2 + numer / (denom * denom)
        small = -x * np.exp(x) * ((np.log(x) - _np_digamma(alpha)) * s1 - s2)
        small = np.where(np.isnan(small), 0.0, small)
        saddle = ((1 + 24 * alpha * (1 + 12 * alpha))
                  * (1440 * alpha**2 + 6 * x * (53 - 120 * x) - 65 * x * x / alpha
                     + alpha * (107 + 3600 * x)) / (1244160 * alpha**4))
        denom = np.sqrt(8 * alpha)
        term2 = denom / (alpha - x)
        term3 = (x - alpha - alpha * np.log(x / alpha)) ** -1.5
        term1 = (np.log(x / alpha) * np.where(x < alpha, term2 - term3, term2 + term3)
                 - np.sqrt(2 / alpha) * (alpha + x) / (alpha - x) ** 2)
        rice = -(1 + 1 / (12 * alpha) * (1 + 1 / (24 * alpha))) * x * term1 / denom
        u, v = np.log(x / alpha)[..., None], np.log(alpha)
        c = _GAMMA_UV[0] + u * (_GAMMA_UV[1] + u * _GAMMA_UV[2])
        p = c[..., 0] + v * (c[..., 1] + v * (c[..., 2] + v * c[..., 3]))
        q = c[..., 4] + v * (c[..., 5] + v * (c[..., 6] + v * c[..., 7]))
        fit = np.exp(p / q)
    f32 = np.float64(np.float32(0.9)), np.float64(np.float32(1.1)), np.float64(np.float32(0.8))
    near = (f32[0] * alpha <= x) & (x <= f32[1] * alpha)
    return np.where(x < f32[2], small,
                    np.where(alpha > 8, np.where(near, saddle, rice), fit))


def _np_erfinv(y):
    """erfinv by bisection on math.erf in float64: the reference of its row."""
    y = np.asarray(y, dtype=np.float64)
    lo, hi = np.full(y.shape, -6.0), np.full(y.shape, 6.0)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    for _ in range(80):
        mid = (lo + hi) / 2
        below = erf(mid) < y
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    r = (lo + hi) / 2
    r = np.where(np.abs(y) == 1, np.copysign(np.inf, y), r)
    return np.where((np.abs(y) > 1) | np.isnan(y), np.nan, r)


unary("erfc", _np_float(lambda x: np.vectorize(math.erfc, otypes=[x.dtype])(x)), "erfc({x})",
      _floating, vjp=lambda g, x, out: (g * _call("exp", -(x * x)) * -_TWO_OVER_SQRT_PI,),
      saves_out=False, variants=Variants(inplace=True, inplace_function=True))
unary("erfinv", _np_float(_np_erfinv), _ERFINV, _floating, vec=False,
      vjp=lambda g, x, out: (g * _call("exp", out * out) * (_SQRT_PI / 2),), saves=(),
      variants=Variants(inplace=True))
unary("lgamma", _np_float(lambda x: np.vectorize(
          lambda v: math.inf if v <= 0 and v == math.floor(v) else math.lgamma(v),
          otypes=[x.dtype])(x)), "lgamma({x})", _floating,
      vjp=lambda g, x, out: (g * _call("digamma", x),), saves_out=False,
      variants=Variants(inplace=True))
unary("digamma", _np_float(_np_digamma), _DIGAMMA, _floating, vec=False,
      vjp=lambda g, x, out: (g * _trigamma(x),), saves_out=False,
      variants=Variants(inplace=True))


def _scipy_special():
    """scipy.special, imported when a reference runs (scipy is a test dependency only)."""
    import scipy.special

    return scipy.special


def _np_polygamma(x, n):
    """scipy's polygamma in float64: the row's reference."""
    x = np.asarray(x)
    with np.errstate(all="ignore"):
        return _scipy_special().polygamma(n, x.astype(np.float64)).astype(x.dtype)


# the n-th derivative of digamma for n >= 1 (cg.polygamma's n = 0 is the digamma row); its
# gradient is the next one, so it differentiates any number of times
unary("polygamma", _np_float(_np_polygamma),
      lambda d, attrs: f"cg_polygamma_{{T}}({{x}}, {int(dict(attrs)['n'])})", _floating,
      vec=False, vjp=lambda g, x, out, n: (g * apply(OPS["polygamma"], x, n=n + 1),),
      saves_out=False)
binary("_standard_gamma_grad", _np_standard_gamma_grad, _STANDARD_GAMMA_GRAD,
       _float_args("_standard_gamma_grad"), vec=False, differentiable=False,
       variants=Variants(method=False), tensors_only=True, keywords=("output",))
# igamma / igammac: the regularized incomplete gamma functions P(a, x) and Q(a, x) = 1 - P,
# by the series of P for x < a + 1 and Lentz's continued fraction of Q beyond (Numerical
# Recipes' gser / gcf), each computing the complement of the other by subtraction; the edges
# as PyTorch's (NaN for negative or NaN operands and a = x = 0, P(0, x > 0) = 1,
# P(inf, x) = 0 for finite x, P(a, inf) = 1).
register_helper("igamma", r"""
inline T cg_igamma_T(T a, T x, int upper) {
  if (isnan(a) || isnan(x) || a < (T)0 || x < (T)0 || (a == (T)0 && x == (T)0))
    return (T)NAN;
  if (a == (T)0) return upper ? (T)0 : (T)1;
  if (x == (T)0) return upper ? (T)1 : (T)0;
  if (isinf(a)) return isinf(x) ? (T)NAN : (upper ? (T)1 : (T)0);
  if (isinf(x)) return upper ? (T)0 : (T)1;
  const T eps = sizeof(T) == 8 ? (T)1e-16 : (T)3e-8;
  const T tiny = sizeof(T) == 8 ? (T)1e-300 : (T)1e-30;
  T log_front;
  if (a >= (T)10) {
    /* x^a e^-x / Gamma(a) through Stirling's series: a (log1p(t) - t) + log(a / 2pi) / 2
       - (Gamma's correction), t = (x - a) / a, keeps float's precision at large a, where
       a log x and lgamma(a) cancel */
    const T t = (x - a) / a, ia = (T)1 / a, ia2 = ia * ia;
    const T corr = ia * ((T)0.083333333333333333 - ia2 * ((T)0.0027777777777777778
        - ia2 * ((T)0.00079365079365079365 - ia2 * ((T)0.00059523809523809524
        - ia2 * ((T)0.00084175084175084175 - ia2 * ((T)0.0019175269175269175
        - ia2 * (T)0.0064102564102564103))))));
    /* log(x / a) directly where 1 + t is far from 1: t's rounding would cost 1 / (1 + t) */
    const T l = (t < (T)-0.5 || t > (T)1) ? log(x / a) : log1p(t);
    log_front = a * (l - t) + (T)0.5 * log(a * (T)0.15915494309189535) - corr;
  } else {
    log_front = -x + a * log(x) - lgamma(a);
  }
  if (upper && x <= (T)1.1 && (x <= (T)0.5 ? a < (T)-0.4 / log(x) : a <= x * (T)1.1)) {
    /* Q where it is small next to P (a small, x <= 1.1): 1 - x^a / Gamma(a + 1)
       - x^a / Gamma(a) sum_n>=1 (-x)^n / (n! (a + n)) (DLMF 8.7.3), the first difference
       by expm1 of a log x - lgamma(1 + a), whose series in a keeps its relative precision
       for small a (1 - P would lose it) */
    T fac = (T)1, sum = (T)0;
    for (int n = 1; n < 200; ++n) {
      fac *= -x / (T)n;
      const T term = fac / (a + (T)n);
      sum += term;
      if (fabs(term) <= eps * fabs(sum)) break;
    }
    T lg1p;
    if (a < (T)0.2) {
      const T zk[24] = {0.8224670334241132, -0.40068563438653143, 0.27058080842778454,
          -0.20738555102867398, 0.16955717699740819, -0.14404989676884611,
          0.12550966952474304, -0.11133426586956469, 0.10009945751278181,
          -0.090954017145829041, 0.083353840546109004, -0.076932516411352195,
          0.07143294629536133, -0.066668705882420465, 0.062500955141213038,
          -0.058823978658684585, 0.055555767627403614, -0.052631679379616658,
          0.050000047698101693, -0.047619070330142226, 0.045454556293204669,
          -0.043478266053040261, 0.041666669150341208, -0.040000001192140137};
      T acc = (T)0;  /* lgamma(1 + a) = -gamma a + sum_k>=2 (-1)^k zeta(k) a^k / k */
      for (int k = 23; k >= 0; --k) acc = acc * a + zk[k];
      lg1p = a * (acc * a - (T)0.57721566490153286061);
    } else {
      lg1p = lgamma((T)1 + a);
    }
    const T la = a * log(x);
    return -expm1(la - lg1p) - exp(la - lgamma(a)) * sum;
  }
  const T front = exp(log_front);
  if (x < a + (T)1) {
    T ap = a, del = (T)1 / a, sum = del;
    for (int n = 0; n < 10000; ++n) {
      ap += (T)1; del *= x / ap; sum += del;
      if (fabs(del) < fabs(sum) * eps) break;
    }
    const T p = sum * front;
    return upper ? (T)1 - p : p;
  }
  T b = x + (T)1 - a, c = (T)1 / tiny, d = (T)1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const T an = -(T)i * ((T)i - a);
    b += (T)2;
    d = an * d + b; if (fabs(d) < tiny) d = tiny;
    c = b + an / c; if (fabs(c) < tiny) c = tiny;
    d = (T)1 / d;
    const T del = d * c;
    h *= del;
    if (fabs(del - (T)1) < eps) break;
  }
  const T q = front * h;
  return upper ? q : (T)1 - q;
}""")


def _np_igamma(upper: bool):
    """P(a, x) (or Q) in float64 by the row's series and continued fraction: its
    reference."""
    def scalar(a, x):
        if math.isnan(a) or math.isnan(x) or a < 0 or x < 0 or (a == 0 and x == 0):
            return math.nan
        if a == 0 or x == 0 or math.isinf(a) or math.isinf(x):
            if math.isinf(a) and math.isinf(x):
                return math.nan
            p = 1.0 if (a == 0 or math.isinf(x)) else 0.0
            return 1.0 - p if upper else p
        if a >= 10:  # Stirling's form, as the row's
            t, ia2 = (x - a) / a, 1 / (a * a)
            corr = (1 / 12 - ia2 * (1 / 360 - ia2 * (1 / 1260 - ia2 * (1 / 1680 - ia2 * (
                1 / 1188 - ia2 * (691 / 360360 - ia2 / 156)))))) / a
            front = math.exp(a * (math.log1p(t) - t) + 0.5 * math.log(a / (2 * math.pi))
                             - corr)
        else:
            front = math.exp(-x + a * math.log(x) - math.lgamma(a))
        if x < a + 1:
            ap, term, total = a, 1 / a, 1 / a
            while abs(term) >= abs(total) * 1e-16:
                ap += 1
                term *= x / ap
                total += term
            p = total * front
            return 1 - p if upper else p
        b, c, d = x + 1 - a, 1e300, 1 / (x + 1 - a)
        h, i = d, 1
        while True:
            an = -i * (i - a)
            b += 2
            d = an * d + b
            d = 1 / (d if abs(d) > 1e-300 else 1e-300)
            c = b + an / c
            c = c if abs(c) > 1e-300 else 1e-300
            h *= d * c
            i += 1
            if abs(d * c - 1) < 1e-16:
                break
        return h * front if upper else 1 - h * front

    return lambda a, x: np.vectorize(scalar, otypes=[np.float64])(a, x)


def _igamma_vjp(sign: float):
    """d/dx P(a, x) = x^(a-1) e^-x / Gamma(a) (Q: its negative). PyTorch defines no
    derivative in a: the public functions (ops/math.py) raise when one is asked for."""
    def vjp(g, a, x, out=None):
        density = _call("exp", -x + (a - 1) * _call("log", x) - _call("lgamma", a))
        return None, g * density * sign

    return vjp


binary("igamma", _np_igamma(False), "cg_igamma_{T}({a}, {b}, 0)", _float_args("igamma"),
       vec=False, vjp=_igamma_vjp(1.0), saves_out=False)
binary("igammac", _np_igamma(True), "cg_igamma_{T}({a}, {b}, 1)", _float_args("igammac"),
       vec=False, vjp=_igamma_vjp(-1.0), saves_out=False)
binary("logaddexp", np.logaddexp,
       "((({a} == {b}) && isinf({a})) ? {a} : fmax({a}, {b}) + log1p(exp(-fabs({a} - {b}))))",
       _float_args("logaddexp"), saves=(),
       vjp=lambda g, a, b, out: (g * _call("exp", a - out), g * _call("exp", b - out)),
       variants=Variants())
binary("logaddexp2", np.logaddexp2,
       "((({a} == {b}) && isinf({a})) ? {a} : fmax({a}, {b}) + "
       "log2(({T})1 + exp2(-fabs({a} - {b}))))",
       _float_args("logaddexp2"), saves=(),
       vjp=lambda g, a, b, out: (g * _call("exp2", a - out), g * _call("exp2", b - out)),
       variants=Variants())
binary("hypot", np.hypot, "hypot({a}, {b})", _float_args("hypot"), saves=(),
       vjp=lambda g, a, b, out: (g * a / out, g * b / out), variants=Variants(inplace=True),
       tensors_only=True)
binary("xlogy", lambda a, b: np.where((a == 0) & ~np.isnan(b), 0.0, a * np.log(b)),
       "((({a} == ({T})0) && !isnan({b})) ? ({T})0 : {a} * log({b}))", _floating,
       vec=False, vjp=_xlogy_vjp, saves_out=False,
       variants=Variants(inplace=True, inplace_function=True))
binary("copysign", np.copysign, "copysign({a}, {b})", _floating, vec=False,
       vjp=_copysign_vjp, variants=Variants(inplace=True))
binary("heaviside", lambda a, b: np.where(a == 0, b, (a > 0).astype(np.result_type(a, b))),
       "(({a} == 0) ? {b} : ({T})({a} > 0))", _heaviside_rule, vec=False,
       differentiable=False, variants=Variants(inplace=True), tensors_only=True,
       keywords=("values",))

# --- inverse hyperbolics, NaN-ignoring extrema, gcd / lcm, sinc, i0, nextafter, frexp ------

unary("acosh", _np_float(np.arccosh), "acosh({x})", _floating,
      vjp=lambda g, x, out: (g * _call("rsqrt", x * x - 1),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True, aliases=("arccosh",)))
unary("asinh", _np_float(np.arcsinh), "asinh({x})", _floating,
      vjp=lambda g, x, out: (g * _call("rsqrt", x * x + 1),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True, aliases=("arcsinh",)))
unary("atanh", _np_float(np.arctanh), "atanh({x})", _floating,
      vjp=lambda g, x, out: (g / (1 - x * x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True, aliases=("arctanh",)))



binary("gcd", np.gcd, lambda d, attrs: f"cg_gcd_{d.compute}({{a}}, {{b}})", _shift_rule("gcd"),
       vec=False, differentiable=False, variants=Variants(inplace=True, inplace_function=True))
binary("lcm", np.lcm, lambda d, attrs: f"cg_lcm_{d.compute}({{a}}, {{b}})", _shift_rule("lcm"),
       vec=False, differentiable=False, variants=Variants(inplace=True, inplace_function=True))


def _sinc_vjp(g, x, out=None):
    """(pi x cos(pi x) - sin(pi x)) / (pi x^2), 0 at x == 0 (PyTorch's formula)."""
    px = x * math.pi
    d = (px * _call("cos", px) - _call("sin", px)) / (px * x)
    return (g * _call("where", _call("eq", x, 0), 0.0, d),)


unary("sinc", _np_float(np.sinc),
      "(({x} == ({T})0) ? ({T})1 : sin(({T})M_PI * {x}) / (({T})M_PI * {x}))", _floating,
      vec=False, vjp=_sinc_vjp, saves_out=False,
      variants=Variants(inplace=True, inplace_function=True))

# I0 and I1, the modified Bessel functions: the power series up to |x| = 20, beyond it the
# asymptotic series e^x / sqrt(2 pi x) sum_k prod_j ((2j - 1)^2 - 4 nu^2) / (k! (8x)^k),
# whose smallest term there is near e^-40; exp(a / 2) twice keeps float finite up to where
# the value itself overflows. I1 is odd.
register_helper("bessel_i", r"""
inline T cg_bessel_i_T(T x, int nu) {
  const T a = fabs(x);
  T s, t;
  if (a <= (T)20) {
    const T q = a * a / (T)4;
    t = nu ? a / (T)2 : (T)1; s = t;
    for (int k = 1; k < 80 && t > s * (T)1e-17; k++) { t *= q / (T)(k * (k + nu)); s += t; }
  } else {
    t = (T)1; s = (T)1;
    for (int k = 1; k < 40; k++) {
      t *= (T)((2 * k - 1) * (2 * k - 1) - 4 * nu * nu) / ((T)(8 * k) * a); s += t; }
    const T h = exp(a / (T)2);
    s = h * (h / sqrt((T)(2 * M_PI) * a) * s);
  }
  return (nu && x < (T)0) ? -s : s;
}""")


def _np_bessel_i(nu):
    """I_nu(x) = (1/pi) int_0^pi exp(x cos t) cos(nu t) dt by the trapezoid rule, which
    converges geometrically for a smooth periodic integrand: the rows' float64 reference."""
    def ref(x):
        x = np.asarray(x)
        t = np.linspace(0.0, np.pi, 257)
        w = np.full(t.shape, 1.0)
        w[0] = w[-1] = 0.5
        v = np.exp(np.multiply.outer(x.astype(np.float64), np.cos(t))) * np.cos(nu * t)
        return ((v * w).sum(-1) / 256).astype(x.dtype)

    return _np_float(ref)


unary("i0", _np_bessel_i(0), "cg_bessel_i_{T}({x}, 0)", _floating, vec=False,
      vjp=lambda g, x, out: (g * _call("_i1", x),), saves_out=False,
      variants=Variants(inplace=True, inplace_function=True))
# I1' = I0 - I1 / x, 1/2 at 0: i0's gradient differentiates again
unary("_i1", _np_bessel_i(1), "cg_bessel_i_{T}({x}, 1)", _floating, vec=False,
      vjp=lambda g, x, out: (g * _call("where", _call("eq", x, 0), 0.5,
                                       _call("i0", x) - out / x),), saves_out=False)


def _nextafter_rule(common, arg_dtypes, attrs):
    if not common.is_floating_point:
        raise NotImplementedError(f'"nextafter_cpu" not implemented for \'{_pyname(common)}\'')
    return (common,) * len(arg_dtypes), common


# nextafter in float16 / bfloat16 (held exactly in float): the neighbour one step of the
# narrow format's spacing away, 2^(max(e, emin) - mant) at exponent e, half that below a
# normal power of two; 0 steps to the smallest subnormal and inf to the largest finite value
register_helper("nextafter_narrow", r"""
inline T cg_nextafter_narrow_T(T a, T b, int mant, int emin, int emax) {
  if (isnan(a) || isnan(b)) return (T)NAN;
  if (a == b) return b;
  if (a == (T)0) return copysign(ldexp((T)1, emin - mant), b);
  if (isinf(a)) return copysign(ldexp((T)2 - ldexp((T)1, -mant), emax), a);
  const T m = fabs(a);
  const int e = max(ilogb(m), emin);
  T step = ldexp((T)1, e - mant);
  if ((b > a) != (a > (T)0) && e > emin && m == ldexp((T)1, e)) step *= (T)0.5;
  return b > a ? a + step : a - step;
}""")


def _nextafter_expr(d, attrs):
    if d is dt.float16:
        return "cg_nextafter_narrow_{T}({a}, {b}, 10, -14, 15)"
    if d is dt.bfloat16:
        return "cg_nextafter_narrow_{T}({a}, {b}, 7, -126, 127)"
    return "nextafter({a}, {b})"


# PyTorch's derivative: the step to the next float is ignored (1 for input, 0 for other)
binary("nextafter", np.nextafter, _nextafter_expr, _nextafter_rule, vec=False,
       vjp=lambda g, a, b, out: (g, g * 0), saves=(), saves_out=False,
       variants=Variants(inplace=True), tensors_only=True)


def _frexp_exponent_rule(common, arg_dtypes, attrs):
    return (common,), dt.int32


# frexp's halves: 0, inf and NaN keep exponent 0 and mantissa x, as C's frexp does
unary("frexp_mantissa", lambda x: np.frexp(x)[0],
      "((({x}) == ({T})0 || !isfinite({x})) ? {x} : ldexp({x}, -(ilogb({x}) + 1)))", vec=False,
      vjp=lambda g, x, out: (g * _call("exp2", -_call("frexp_exponent", x).to(g.dtype)),),
      saves_out=False)
unary("frexp_exponent", lambda x: np.frexp(x)[1].astype(np.int32),
      "((({x}) == 0 || !isfinite({x})) ? 0 : ilogb({x}) + 1)", _frexp_exponent_rule,
      vec=False, differentiable=False)

OPS = registry.REGISTRY


def op(name: str) -> OpDef:
    return OPS[name]


__all__ = ["apply", "broadcast_shapes", "op"]
