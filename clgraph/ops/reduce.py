"""Reductions: one row per op (numpy reference, an Accumulation rule: dtypes and the fold's
scalar expressions) and the family's eager executor ``_run``: collapse the input's layout
(strides read in place: transposed, sliced and expanded inputs are never copied) into kept
and reduced dims, pick a kernel shape (codegen/reduce.py) and launch it. Scans (cumsum)
and softmax live here too: they walk rows the same way. Public functions with PyTorch's
signatures sit at the bottom. Imports codegen, dtypes, shapes, creation and the ops below it
(math, index, join: the VJPs); the Tensor class comes through ``registry.Tensor``."""

from __future__ import annotations

import builtins
import collections
import functools
import math
import numbers

import numpy as np

from .. import codegen
from .. import dtypes as dt
from ..codegen import pack
from ..codegen.reduce import (
    MAX_NAN,
    MIN_NAN,
    ReduceSpec,
    highest,
    lowest,
    n_state,
    reduce_program,
)
from ..creation import _from_host, arange, linspace, ones, zeros
from ..shapes import numel as _numel
from ..shapes import wrap_dim
from ..shapes import wrap_dims as _dims
from . import registry
from .index import scatter
from .join import cat, flip
from .elementwise import TILE_MIN
from .elementwise import op as _ew_op
from .math import where
from .registry import OpDef, apply, public, register
from .sort import RETURN_TYPES, return_type

FORCE_TREE = False  # run the GPU work-group tree kernels on any device (tests set it)

# With fewer work-items than two work-groups per core, a reduced range of at least
# _SPLIT_MIN_ELEMENTS is split into chunks of at least _CHUNK_MIN elements (stage 1 writes
# partial states, stage 2 combines them), so a full sum of 2^22 floats uses both cores.
# Below 2^17 elements the second launch costs more than the second core saves (measured,
# launch to finish: sum over dim 0 of 256x256 86 us split, 51 us whole; of 1024x256 143
# against 84 us). softmax splits its few long rows from _SOFTMAX_SPLIT_MIN elements.
_SPLIT_MIN_ELEMENTS = 1 << 17
_SOFTMAX_SPLIT_MIN = 4096
_CHUNK_MIN = 2048

# --- dtype rules: (input dtype, attrs, device) -> Accumulation ----------------------------


def _acc_float(d: dt.dtype) -> dt.dtype:
    return dt.float32 if d in dt.NARROW_FLOATS else d


def _acc_of(d: dt.dtype) -> dt.dtype:
    """Accumulator of sum/prod over d: float types in float (half in float), ints in int64."""
    return _acc_float(d) if d.is_floating_point else dt.int64


class Accumulation(collections.namedtuple(
        "Accumulation", "acc out xtype init combine kahan pre post better prm max_width",
        defaults=(None, "0", "({a} + {b})", False, "{to_acc}({x})", "{a}", "", 0, None))):
    """How a reduction row accumulates, for one input dtype and attrs: ``acc`` and ``out``,
    the accumulator and output dtypes; ``xtype``, the dtype an element is cast to first
    (PyTorch's dtype= argument; None: none); the fold's C expressions (``init``,
    ``combine``, ``pre``, ``post``, ``better``; ``kahan``: compensated; see ReduceSpec);
    ``prm``, the kernels' scalar parameter {P}; ``max_width``, a cap on the vector width.
    A row's rule makes one, and user errors about dtypes rise there, before any launch."""

    __slots__ = ()


def _sum_accumulation(x, attrs, info):
    d = attrs.get("dtype") or (x if x.is_floating_point else dt.int64)
    acc = _acc_of(d)
    return Accumulation(acc, d, xtype=d, kahan=acc is dt.float32)


def _prod_accumulation(x, attrs, info):
    return _sum_accumulation(x, attrs, info)._replace(init="1", combine="({a} * {b})",
                                                      kahan=False)


def _mean_accumulation(x, attrs, info):
    d = attrs.get("dtype") or x
    if not d.is_floating_point:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating "
            f"point or complex dtype. Got: {d.scalar_type}")
    return _sum_accumulation(x, {**attrs, "dtype": d}, info)._replace(post="({a} / {n})")


def _extreme_accumulation(largest):
    def accumulation(x, attrs, info):
        acc = _acc_float(x)
        if x.is_floating_point:
            comb = MAX_NAN if largest else MIN_NAN
        else:
            comb = "max({a}, {b})" if largest else "min({a}, {b})"
        return Accumulation(acc, x, init=lowest(acc) if largest else highest(acc),
                            combine=comb)

    return accumulation


def _logical_accumulation(is_all):
    def accumulation(x, attrs, info):
        # x != 0 is -1 (vector) or 1 (scalar): both truthy, and & | keep them so.
        return Accumulation(dt.int32, dt.uint8 if x is dt.uint8 else dt.bool_, xtype=x,
                            init="-1" if is_all else "0",
                            combine="({a} & {b})" if is_all else "({a} | {b})",
                            pre="{to_acc}({x} != ({T})0)",
                            post="(({a} != ({T})0) ? ({T})1 : ({T})0)")

    return accumulation


def _norm_accumulation(x, attrs, info):
    d = attrs.get("dtype") or x
    if not d.is_floating_point:
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor "
                           f"as input. Got {d.scalar_type}")
    acc = _acc_float(d)
    p = attrs["p"]
    base = Accumulation(acc, d, kahan=acc is dt.float32)
    if p == 2:
        return base._replace(pre="({x} * {x})", post="sqrt({a})")
    if p == 1:
        return base._replace(pre="fabs({x})")
    if p == 0:
        return base._replace(pre="(({x} != ({T})0) ? ({T})1 : ({T})0)")
    if p == math.inf:
        return base._replace(pre="fabs({x})", combine=MAX_NAN, kahan=False)
    if p == -math.inf:
        return base._replace(pre="fabs({x})", combine=MIN_NAN, init="INFINITY", kahan=False)
    # PoCL's pow on double8 is wrong next to zero lanes (codegen/emit.py): at most 4 lanes
    return base._replace(pre="pow(fabs({x}), {P})", post="pow({a}, ({T})1 / {P})", prm=p,
                         max_width=4 if acc is dt.float64 else None)


def _var_accumulation(sqrt):
    def accumulation(x, attrs, info):
        if not x.is_floating_point:
            raise RuntimeError("std and var only support floating point and complex dtypes")
        var = "({q} / fmax({n} - {P}, ({T})0))"  # PyTorch: M2 / max(0, N - correction)
        return Accumulation(_acc_float(x), x, post=f"sqrt({var})" if sqrt else var,
                            prm=attrs["correction"])

    return accumulation


def _lse_accumulation(x, attrs, info):
    out = x if x.is_floating_point else dt.get_default_dtype()
    acc = _acc_float(out)
    return Accumulation(acc, out, kahan=acc is dt.float32)


def _arg_accumulation(largest, values):
    def accumulation(x, attrs, info):
        if not values and x is dt.bool_:
            name = "argmax" if largest else "argmin"
            raise RuntimeError(f"{name}(): does not support bool input")
        acc = _acc_float(x)
        c = ">" if largest else "<"
        better = f"({{x}} {c} {{v}})"
        if x.is_floating_point:  # NaN beats every number
            better = f"({better} || (isnan({{x}}) && !isnan({{v}})))"
        return Accumulation(acc, x if values else dt.int64,
                            init=lowest(acc) if largest else highest(acc), better=better,
                            post="{a}" if values else "index")

    return accumulation


def _softmax_accumulation(name):
    def accumulation(x, attrs, info):
        out = attrs.get("dtype") or x
        if not out.is_floating_point:
            raise NotImplementedError(
                f'"{name}_lastdim_kernel_impl" not implemented for \'{out.scalar_type}\'')
        return Accumulation(_acc_float(out), out)

    return accumulation


def _cumsum_accumulation(x, attrs, info):
    d = attrs.get("dtype") or (x if x.is_floating_point else dt.int64)
    if d is dt.float32 and info.fp64:
        acc = dt.float64  # PyTorch's CPU scan accumulates float in double
    else:
        acc = _acc_of(d)
    return Accumulation(acc, d, xtype=d)


# --- numpy references ---------------------------------------------------------------------


def _axis(x, dim):
    return None if dim is None else tuple(dim)


def _np_acc(x, dtype):
    if dtype is not None:
        return x.astype(dtype.np)
    if x.dtype.kind in "biu":
        return x.astype(np.int64)
    return x


def _ref_sum(x, dim=None, keepdim=False, dtype=None):
    return np.sum(_np_acc(x, dtype), axis=_axis(x, dim), keepdims=keepdim)


def _ref_prod(x, dim=None, keepdim=False, dtype=None):
    return np.prod(_np_acc(x, dtype), axis=_axis(x, dim), keepdims=keepdim)


def _ref_mean(x, dim=None, keepdim=False, dtype=None):
    x = x.astype(dtype.np) if dtype is not None else x
    if x.size == 0:
        return np.full(np.sum(x, axis=_axis(x, dim), keepdims=keepdim).shape, np.nan, x.dtype)
    return np.mean(x, axis=_axis(x, dim), keepdims=keepdim).astype(x.dtype)


def _ref_extreme(fn):
    def ref(x, dim=None, keepdim=False):
        return fn(x, axis=_axis(x, dim), keepdims=keepdim)

    return ref


def _ref_arg(fn, values):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            i = fn(x.reshape(-1))
            shape = (1,) * x.ndim if keepdim else ()
            return np.asarray(i, np.int64).reshape(shape)
        (d,) = dim
        if x.ndim == 0:
            i = np.zeros((), np.int64)
            return (x.copy(), i) if values else i
        i = np.expand_dims(fn(x, axis=d), d)
        v = np.take_along_axis(x, i, d)
        if not keepdim:
            i, v = i.squeeze(d), v.squeeze(d)
        return (v, i.astype(np.int64)) if values else i.astype(np.int64)

    return ref


def _nan_first(fn):
    """np.argmax/argmin with PyTorch's rule: the first NaN wins."""
    def f(x, axis=None):
        if x.dtype.kind == "f":
            nan = np.isnan(x)
            if nan.any():
                return np.where(nan.any(axis=axis), np.argmax(nan, axis=axis), fn(x, axis=axis))
        return fn(x, axis=axis)

    return f


def _ref_var(sqrt):
    def ref(x, dim=None, keepdim=False, correction=1):
        axis = _axis(x, dim)
        n = x.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
        with np.errstate(all="ignore"):
            m = np.mean(x, axis=axis, keepdims=True) if x.size else np.zeros_like(x)
            q = np.sum((x - m) ** 2, axis=axis, keepdims=keepdim)
            v = q / builtins.max(0, n - correction)
        return (np.sqrt(v) if sqrt else v).astype(x.dtype)

    return ref


def _ref_lse(x, dim=None, keepdim=False):
    x = x if x.dtype.kind == "f" else x.astype(np.float32)
    axis = _axis(x, dim)
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
        m = np.where(np.isinf(m), 0, m)
        r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdim else np.squeeze(r, axis) if axis is not None else r.reshape(())


def _ref_softmax(log):
    def ref(x, dim, dtype=None):
        x = x.astype(dtype.np) if dtype is not None else x
        with np.errstate(all="ignore"):
            m = np.max(x, axis=dim, keepdims=True, initial=-np.inf)
            e = x - m
            s = np.sum(np.exp(e), axis=dim, keepdims=True)
            return e - np.log(s) if log else np.exp(e) / s

    return ref


def _ref_cumsum(x, dim, dtype=None):
    return np.cumsum(_np_acc(x, dtype), axis=dim)


def _ref_logical(fn):
    def ref(x, dim=None, keepdim=False):
        r = fn(x != 0, axis=_axis(x, dim), keepdims=keepdim)
        return r.astype(np.uint8) if x.dtype == np.uint8 else r

    return ref


def _ref_norm(x, p=2, dim=None, keepdim=False, dtype=None):
    x = x.astype(dtype.np) if dtype is not None else x
    axis = _axis(x, dim)
    a = np.abs(x)
    if p == math.inf:
        return np.max(a, axis=axis, keepdims=keepdim, initial=0)
    if p == -math.inf:
        return np.min(a, axis=axis, keepdims=keepdim, initial=np.inf)
    if p == 0:
        return np.sum(a != 0, axis=axis, keepdims=keepdim).astype(x.dtype)
    return np.sum(a ** p, axis=axis, keepdims=keepdim) ** (1.0 / p)


# --- layout -------------------------------------------------------------------------------


def _merge(dims):
    """Merge (size, stride) pairs, outer to inner, that walk memory as one dim."""
    out = []
    for n, s in dims:
        if out and out[-1][1] == s * n:
            out[-1] = (out[-1][0] * n, s)
        else:
            out.append((n, s))
    return out


def _bucket(n: int) -> int:
    """Dims a kernel is generated for: 2, 4 or more. Padding with size-1 dims costs a
    division per row or run; each distinct program costs a build (0.35 s cold)."""
    return 2 if n <= 2 else builtins.max(4, n)


def _chunks(R: int, items: int, step: int, info) -> tuple[int, int]:
    """(nchunk, chunk): split a reduced range of R steps (``step`` elements each) when
    ``items`` work-items are too few for every core; chunks of >= _CHUNK_MIN elements."""
    local = codegen.local_size(info)
    if items >= 2 * info.compute_units * local or R * step < _SPLIT_MIN_ELEMENTS:
        return 1, builtins.max(R, 1)
    nchunk = builtins.min(-(-R * step // _CHUNK_MIN), -(-4 * info.compute_units * local // items))
    if nchunk <= 1:
        return 1, builtins.max(R, 1)
    chunk = -(-R // nchunk)
    chunk = -(-chunk // 16) * 16
    return -(-R // chunk), chunk


def _pad(dims, n):
    return [(1, 0)] * (n - len(dims)) + dims


def _out_shape(shape, dims, keepdim):
    if keepdim:
        return tuple(1 if i in dims else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in dims)


def _check_device(info, *dtypes):
    for d in dtypes:
        codegen.check_dtype(info, d)


_widths: dict = {}


def _vector_width(info, *dtypes) -> int:
    """Elements per vector: what the device prefers for the widest type involved. Vectors
    stay within 256 bits where PoCL targets AVX2: LLVM 14 aborts the process compiling a
    long8 -> float8 conversion ("Cannot select X86ISD::FILD"). Memoized: a device query
    costs about 25 us."""
    key = (info.index, builtins.max(d.itemsize for d in dtypes))
    w = _widths.get(key)
    if w is None:
        w = _widths[key] = info.vector_width("double" if key[1] == 8 else "float")
    return w


# --- the eager executor -------------------------------------------------------------------

Mode = codegen.reduce.Mode  # kernel shapes: scalar, inner, outer, tree; programs: cpu, apply


def _run(op: OpDef, args, attrs, out=None):
    if out is not None:
        raise TypeError(f"{op.name}(): out= is not supported")
    x = args[0]
    kind = op.reduction.kind
    if kind in ("softmax", "log_softmax", "cumsum"):
        return _run_rows(op, x, attrs)
    return _run_reduce(op, x, attrs)


def _accumulation(op, x, attrs):
    """(device info, the row's Accumulation for x), its dtypes checked against the device."""
    info = x.device.info
    accum = op.reduction.accumulation(x.dtype, attrs, info)
    _check_device(info, x.dtype, accum.acc, accum.out)
    return info, accum


# Vector accumulators along the row (inner) and vectors of outputs per work-item (outer).
# Wide outer tiles touch fewer pages per element (each reduced step is a new row, often a
# new page): 8 x float8 measured 0.45-0.5 ms vs 0.65-0.95 ms for 4, sum over dim 0 of
# 4096x1024. States of several vectors use fewer, to stay in registers.
_UNROLL = {"fold": 4, "welford": 2, "arg": 2, "lse": 2, "softmax": 2, "log_softmax": 2}
_TILE = {"fold": 8, "welford": 4, "arg": 4, "lse": 4, "softmax": 1, "log_softmax": 1}


def _spec(op, x, accum, mode, nk, nr, info, width=None):
    """The program for ``op`` on this device: Mode.CPU (scalar, inner and outer kernels in
    one program) or Mode.TREE / Mode.APPLY."""
    kind = op.reduction.kind
    if width is None:
        width = _vector_width(info, x.dtype, accum.acc, accum.out) if mode == Mode.CPU else 1
        width = builtins.min(width, accum.max_width or width)
    return ReduceSpec(
        op=op.name, kind=kind, x=x.dtype.name, acc=accum.acc.name, out=accum.out.name,
        mode=mode, nk=nk, nr=nr, width=width, unroll=_UNROLL.get(kind, 1) if width > 1 else 1,
        tile=_TILE.get(kind, 1) if width > 1 else 1, local=codegen.local_size(info),
        init=accum.init, combine=accum.combine, kahan=accum.kahan, pre=accum.pre,
        xtype=accum.xtype.name if accum.xtype is not None else "", post=accum.post,
        mean_out=op.reduction.mean,
        better=accum.better,
        cache=_softmax_cache(info, accum.acc) if kind in _SOFTMAX and mode == Mode.TREE else 0)


_SOFTMAX = ("softmax", "log_softmax")


def _softmax_cache(info, acc) -> int:
    """Elements of a row the tree softmax keeps in local memory: up to 8192, in at most
    half of the device's local memory (a power of two)."""
    fit = info.local_memory // 2 // acc.itemsize
    n = 8192
    while n > fit:
        n //= 2
    return n if n >= 256 else 0


class _Launch:
    """How one reduction runs for one input layout: output, kernels and their static
    arguments. Memoized per (op, attrs, dtype, shape, strides, device)."""

    __slots__ = (
        "acc",
        "combine",
        "cstatic",
        "gsize",
        "index_only",
        "kernel",
        "kind",
        "local",
        "mean",
        "mode",
        "name",
        "nchunk",
        "nitems",
        "ns",
        "odt",
        "oshape",
        "prm",
        "rows",
        "static",
    )


_launches: dict = {}


def _run_reduce(op, x, attrs, out_dtype=None):
    key = (op, tuple(attrs.items()), out_dtype, x.dtype, x._shape, x._stride, x.device,
           FORCE_TREE)
    try:
        L = _launches.get(key)
    except TypeError:  # an unhashable attr
        key, L = None, None
    if L is None:
        L = _layout(op, x, attrs, out_dtype)
        if key is not None and len(_launches) < 4096:
            _launches[key] = L
    T = registry.Tensor
    dev = x.device
    y = T._empty(L.oshape, L.odt, dev)
    idx = None
    if L.kind == "arg":
        idx = y if L.index_only else T._empty(L.oshape, dt.int64, dev)
    elif L.mean:
        idx = T._empty(L.oshape, L.odt, dev)
    if L.kernel is not None:
        _launch(L, x, y, idx, dev)
    return (y, idx) if idx is not None and idx is not y else y


def _launch(L, x, y, idx, dev):
    T = registry.Tensor
    info = dev.info
    partial = L.nchunk > 1
    states = [T._empty((L.rows * L.nchunk,), L.acc, dev) for _ in range(L.ns)] if partial else []
    pidx = T._empty(states[0]._shape, dt.int64, dev) if partial and L.kind == "arg" else None
    yb = y._storage.buf
    io = {"in": x._storage.buf, "ioff": x._offset, "out": yb, "ooff": 0, "prm": L.prm}
    # stage-1 state arrays; a whole (unsplit) run never touches them: pass the output
    io.update((f"ps{k}", states[k]._storage.buf if partial else yb) for k in range(L.ns))
    if L.kind == "arg":
        io.update(pidx=(pidx if partial else idx)._storage.buf, oidx=idx._storage.buf,
                  oioff=0)
    elif L.mean:
        io.update(mout=idx._storage.buf, mooff=0)
    registry.launch(info, L.kernel, L.name, (L.gsize,), (L.local,),
                    pack(L.kernel, {**L.static, **io}))
    if partial:
        registry.launch(info, L.combine, L.name + "_combine",
                        (-(-L.rows // L.local) * L.local,), (L.local,),
                        pack(L.combine, {**L.cstatic, **io}))


def _layout(op, x, attrs, out_dtype):
    """Checks (PyTorch's errors), output shape and dtype, and the kernel choice for this
    input layout."""
    flat = attrs["dim"] is None  # argmax/argmin without dim: the flattened input
    red_dims = tuple(range(x.ndim)) if flat else attrs["dim"]
    keepdim = attrs["keepdim"]
    info, accum = _accumulation(op, x, attrs)
    if out_dtype is not None:
        accum = accum._replace(out=out_dtype)
    _check_nonempty(op.reduction.empty, x, red_dims, flat or attrs.get("all_dims"))
    L = _Launch()
    L.kind, L.acc, L.odt = op.reduction.kind, accum.acc, accum.out
    L.oshape = _out_shape(x._shape, red_dims, keepdim) if not flat else (
        (1,) * x.ndim if keepdim else ())
    L.index_only = accum.post == "index"
    L.mean = op.reduction.mean
    L.kernel = None
    if _numel(L.oshape) != 0:
        kept, red = _kept_and_reduced(x, red_dims, L.kind)
        _choose_kernel(L, op, x, accum, kept, red, info)
    return L


def _check_nonempty(empty, x, red_dims, whole):
    """PyTorch's error for a reduction without identity (``empty`` names the op; None: it
    has one) over an empty range; ``whole``: no dim was given."""
    if empty is None:
        return
    for d in red_dims:
        if d < x.ndim and x._shape[d] == 0:
            if whole:
                if empty.startswith("arg"):
                    raise IndexError(f"{empty}(): Expected reduction dim to be specified "
                                     "for input.numel() == 0.")
                raise RuntimeError(
                    f"{empty}(): Expected reduction dim to be specified for input.numel() "
                    "== 0. Specify the reduction dim with the 'dim' argument.")
            raise IndexError(f"{empty}(): Expected reduction dim {d} to have non-zero size.")


def _kept_and_reduced(x, red_dims, kind):
    """Kept and reduced dims as (size, stride), size-1 dims dropped and neighbours merged;
    reduced dims of an order-free fold sorted so the smallest nonzero stride is innermost."""
    kept = [(n, s) for i, (n, s) in enumerate(zip(x._shape, x._stride))
            if i not in red_dims and n != 1]
    red = [(n, s) for i, (n, s) in enumerate(zip(x._shape, x._stride))
           if i in red_dims and n != 1]
    if builtins.any(n == 0 for n, _ in red):
        red = [(0, 0)]
    if kind != "arg":
        red.sort(key=lambda t: (t[1] != 0, -t[1]))
    return _merge(kept), _merge(red) or [(1, 0)]


def _choose_kernel(L, op, x, accum, kept, red, info):
    """Fill L with the program, kernel shape (Mode) and static arguments for rows of
    ``kept`` dims, each reducing the ``red`` dims."""
    rows, R = _numel([n for n, _ in kept]), _numel([n for n, _ in red])
    nk, nr = _bucket(len(kept)), _bucket(len(red))
    tree = FORCE_TREE or not info.is_cpu
    gpu_columns = tree and not FORCE_TREE and _over_outer_dims(kept, red)
    if gpu_columns:
        # over outer dims on a GPU: one work-item per output (neighbours read neighbouring
        # elements: coalesced), the reduced range split into chunks for occupancy; a
        # work-group tree per output would read one element per row of every column
        tree = False
    # vector arg states hold int indices
    width = 1 if tree or gpu_columns or L.kind == "arg" and R >= 2**31 - 1 else None
    spec = _spec(op, x, accum, Mode.TREE if tree else Mode.CPU, nk, nr, info, width)
    prog = reduce_program(info, spec)
    if tree:
        mode, items = Mode.TREE, rows
        nchunk, chunk = _tree_chunks(R, rows, info)
    else:
        mode = _cpu_mode(spec.width, kept, red)
        KL = kept[-1][0] if kept else 1
        # outer: one item per tile of outputs; each step of its walk reads a tile
        step = spec.tile * spec.width if mode == Mode.OUTER else 1
        items = (rows // KL) * -(-KL // step) if mode == Mode.OUTER else rows
        nchunk, chunk = _chunks(R, items, step, info)
    local = codegen.local_size(info)
    L.nitems, L.rows, L.nchunk, L.mode, L.local = items * nchunk, rows, nchunk, mode, local
    L.ns = n_state(L.kind)
    L.prm = (np.uint8 if accum.acc is dt.bool_ else accum.acc.np.type)(accum.prm)
    L.static = {"nitems": L.nitems, "nchunk": nchunk, "chunk": chunk, "rn": R,
                "partial": np.int32(nchunk > 1)}
    for k, (n, s) in enumerate(_pad(kept, nk)):
        L.static.update({f"ks{k}": n, f"kst{k}": s})
    for k, (n, s) in enumerate(_pad(red, nr)):
        L.static.update({f"rs{k}": n, f"rst{k}": s})
    L.kernel, L.name, L.combine = prog.kernels[mode], prog.name, prog.combine
    L.gsize = L.nitems * local if mode == Mode.TREE else -(-L.nitems // local) * local
    # partial state (row, chunk): outer stores chunk-major, the others row-major
    sr, sc = (1, rows) if mode == Mode.OUTER else (nchunk, 1)
    L.cstatic = {"nrows": rows, "nchunk": nchunk, "rn": R, "sr": sr, "sc": sc}


def _over_outer_dims(kept, red) -> bool:
    """The innermost kept dim is contiguous and the reduced ones are not (sum over dim 0)."""
    return bool(kept) and kept[-1][1] == 1 and red[-1][1] != 1


def _tree_chunks(R: int, rows: int, info) -> tuple[int, int]:
    """(nchunk, chunk) for the work-group tree: long rows are split when there are too few
    rows for a few work-groups per compute unit."""
    local, cus = codegen.local_size(info), info.compute_units
    nchunk, chunk = 1, builtins.max(R, 1)
    if rows < 4 * cus and R >= local * 64:
        nchunk = builtins.min(-(-R // (local * 16)), -(-8 * cus // rows))
        chunk = -(-R // nchunk)
        nchunk = -(-R // chunk)
    return nchunk, chunk


def _cpu_mode(W: int, kept, red) -> str:
    """The CPU kernel shape: inner when the innermost reduced dim is contiguous, outer when
    the innermost kept dim is, else scalar (vectors of W need a dim of W or more)."""
    if W > 1 and red[-1][1] == 1 and red[-1][0] >= W:
        return Mode.INNER
    if W > 1 and kept and kept[-1][1] == 1 and kept[-1][0] >= W:
        return Mode.OUTER
    return Mode.SCALAR


def _run_rows(op, x, attrs):
    """softmax, log_softmax, cumsum: the output has the input's shape; one row per
    work-item (CPU) or work-group (tree) along ``dim``."""
    T = registry.Tensor
    kind = op.reduction.kind
    info, accum = _accumulation(op, x, attrs)
    nd = x.ndim
    d = attrs["dim"]
    y = T._empty(x._shape, accum.out, x.device)
    if y.numel() == 0:
        return y
    R = x._shape[d] if nd else 1
    rst = x._stride[d] if nd else 0
    ost = y._stride[d] if nd else 0
    kept = []
    for i, (n, s, o) in enumerate(zip(x._shape, x._stride, y._stride)):
        if i == d or n == 1:
            continue
        if kept and kept[-1][1] == s * n and kept[-1][2] == o * n:
            kept[-1] = (kept[-1][0] * n, s, o)
        else:
            kept.append((n, s, o))
    rows = _numel([n for n, _, _ in kept])
    local = codegen.local_size(info)
    nk = _bucket(len(kept))
    tree = kind != "cumsum" and (FORCE_TREE or not info.is_cpu)
    spec = _spec(op, x, accum, Mode.TREE if tree else Mode.CPU, nk, 1, info,
                 1 if tree or kind == "cumsum" else None)
    W = spec.width
    mode = Mode.TREE if tree else Mode.SCALAR
    if W > 1 and rst == 1 and ost == 1 and R >= W:
        mode = Mode.INNER
        if rows < 2 * info.compute_units * local and R >= _SOFTMAX_SPLIT_MIN:
            # a few long rows: a split logsumexp, then a chunked write
            return _softmax_split(op, x, y, accum, kept, R, rst, ost, d, info)
    elif W > 1 and kept and kept[-1][1] == 1 and kept[-1][2] == 1 and kept[-1][0] >= W:
        mode = Mode.OUTER
    if mode != Mode.OUTER and (rst != 1 or ost != 1) and not x._contig and (
            x.numel() >= TILE_MIN) and 0 not in x._stride:
        # rows a view lays a stride apart (softmax over x.t()), or written a stride apart
        # (over NHWC's channels seen as NCHW): a contiguous copy first (the tiled transpose
        # kernel where it applies), then rows read and written in runs (3-10x faster);
        # an expanded input stays read in place
        return _run_rows(op, _dense(x), attrs)
    prog = reduce_program(info, spec)
    kept = [(1, 0, 0)] * (nk - len(kept)) + kept
    nitems = rows
    if mode == Mode.OUTER:
        KL = kept[-1][0]
        nitems = (rows // KL) * (-(-KL // (spec.tile * W)))
    values = _row_values(kept, x, y, nitems=nitems, R=R, rst=rst, ost=ost)
    gsize = nitems * local if mode == Mode.TREE else -(-nitems // local) * local
    registry.launch(info, prog.kernels[mode], prog.name, (gsize,), (local,),
                    pack(prog.kernels[mode], values))
    return y


def _dense(x):
    """A contiguous copy of x, made by the copy op's runner (no autograd node)."""
    copy = _ew_op("to_dtype")
    return copy.run(copy, (x,), {"dtype": x.dtype})


def _softmax_split(op, x, y, accum, kept, R, rst, ost, d, info):
    """softmax over a few long rows: logsumexp (rows split in chunks over all cores), then
    a kernel writing exp(x - lse) (or x - lse) chunk by chunk."""
    acc = accum.acc
    rows = _numel([n for n, _, _ in kept])
    # logsumexp of the input as the softmax computes it (cast to dtype, result in acc)
    xd = x if x.dtype.compute == acc.compute else x.to(accum.out)
    lse = _run_reduce(LOGSUMEXP, xd, {"dim": (d,), "keepdim": False, "all_dims": False},
                      out_dtype=acc)
    local = codegen.local_size(info)
    nk = _bucket(len(kept))
    kept = [(1, 0, 0)] * (nk - len(kept)) + kept
    spec = _spec(op, x, accum, Mode.APPLY, nk, 1, info,
                 _vector_width(info, x.dtype, acc, accum.out))
    prog = reduce_program(info, spec)
    nchunk, chunk = _chunks(R, rows, 1, info)
    values = _row_values(kept, x, y, nitems=rows * nchunk, nchunk=nchunk, chunk=chunk, R=R,
                         rst=rst, ost=ost, lse=lse._storage.buf)
    registry.launch(info, prog.kernels[Mode.APPLY], prog.name,
                    (-(-rows * nchunk // local) * local,), (local,),
                    pack(prog.kernels[Mode.APPLY], values))
    return y


def _row_values(kept, x, y, **scalars) -> dict:
    """The arguments of a row kernel (softmax, cumsum) by parameter name: each kept dim's
    size and input and output strides, the input and output, and ``scalars``."""
    values = {"in": x._storage.buf, "ioff": x._offset, "out": y._storage.buf, "ooff": 0,
              **scalars}
    for k, (n, s, o) in enumerate(kept):
        values.update({f"ks{k}": n, f"kst{k}": s, f"kos{k}": o})
    return values


# --- rows ---------------------------------------------------------------------------------


def reduction(name, ref, kind, accumulation, empty=None, vjp=None, differentiable=True,
              mean=False, autocast="float32"):
    """One reduction row. ``accumulation(x dtype, attrs, device) -> Accumulation`` gives the
    accumulator and output dtypes and the fold's expressions; ``empty`` names the op in
    PyTorch's error for an empty reduced range (ops that have no identity). Attrs: dim as a
    sorted tuple, keepdim, dtype, correction, p. Under autocast a reduction computes in
    float32 unless ``autocast`` says otherwise (extremes, argmax and logical ones: None)."""
    return register(OpDef(name, "reduce", ref, _run, vjp, differentiable=differentiable,
                          reduction=registry.Reduction(kind, accumulation, empty, mean),
                          autocast=autocast))


# --- VJPs (gradients built from clgraph ops, so they differentiate again) ------------------


def _expand_back(g, x, dim, keepdim):
    """A reduced gradient broadcast back over the reduced dims of x."""
    if not keepdim and x.ndim:  # a 0-d input reduces (over dim 0 or -1) to 0-d
        for d in sorted(dim):
            g = g.unsqueeze(d)
    return g.expand(*x.shape)


def _count(x, dim) -> int:
    n = 1
    for d in dim if x.ndim else ():  # a 0-d input holds one element
        n *= x.shape[d]
    return n


def _sum_vjp(g, x, out, dim, keepdim, all_dims, dtype=None):
    return (_expand_back(g, x, dim, keepdim),)


def _mean_vjp(g, x, out, dim, keepdim, all_dims, dtype=None):
    return (_expand_back(g, x, dim, keepdim) / _count(x, dim),)


def _prod_vjp(g, x, out, dim, keepdim, all_dims, dtype=None):
    # d prod / d x_i is the product of the others: out / x_i without zeros; with exactly one
    # zero in the range only that element gets the product of the rest; with two, none do.

    zero = x == 0
    nonzero = where(zero, 1.0, x)
    p_nz = prod(nonzero, dim=dim, keepdim=True)
    count = sum(zero, dim=dim, keepdim=True)
    ge = _expand_back(g, x, dim, keepdim)
    others = where(count == 0, p_nz / nonzero, where((count == 1) & zero, p_nz, 0.0))
    return (ge * others,)


def _extreme_vjp(g, x, out, dim, keepdim, all_dims):
    """amax/amin: the gradient is shared evenly by the tied extreme elements."""
    mask = (x == _expand_back(out, x, dim, keepdim)).to(g.dtype)
    share = mask / sum(mask, dim=dim, keepdim=True)
    return (_expand_back(g, x, dim, keepdim) * share,)


def _arg_vjp(arg_op):
    """max/min with dim: the gradient goes to the index PyTorch reports."""

    def vjp(g, x, out, dim, keepdim, all_dims):

        (d,) = dim
        idx = apply(arg_op, x.detach(), dim=(d,), keepdim=True, all_dims=False)
        gk = g if keepdim else g.unsqueeze(d)
        return (scatter(zeros(*x.shape, dtype=g.dtype, device=g.device), d, idx, gk),)

    return vjp


def _norm_vjp(g, x, out, dim, keepdim, all_dims, p, dtype=None):

    if p == 0:  # the count of nonzeros is piecewise constant: PyTorch's zero gradient
        return (zeros(*x.shape, dtype=g.dtype, device=g.device),)
    o = _expand_back(out, x, dim, keepdim)
    ge = _expand_back(g, x, dim, keepdim)
    if p == 0:  # a count of nonzeros: piecewise constant
        return (where(True, 0.0, ge),)
    if p == 2:
        return (ge * where(o == 0, 0.0, x / o),)
    if math.isinf(p):
        mask = (x.abs() == o).to(g.dtype)
        return (ge * x.sign() * mask / sum(mask, dim=dim, keepdim=True),)
    if p == 1:
        return (ge * x.sign(),)
    if p < 1:  # PyTorch: 0 at x == 0 (where |x|^(p-1) is infinite); o^(1-p) is finite
        return (ge * where(x == 0, 0.0, x.sign() * x.abs() ** (p - 1)) * o ** (1 - p),)
    return (ge * x.sign() * x.abs() ** (p - 1) * where(o == 0, 0.0, o ** (1 - p)),)


def _var_vjp(is_std):
    def vjp(g, x, out, dim, keepdim, all_dims, correction):
        n = _count(x, dim)
        centered = x - mean(x, dim=dim, keepdim=True)
        ge = _expand_back(g, x, dim, keepdim)
        if not is_std:
            # no degrees of freedom left: PyTorch's 2 / 0 = inf, so the gradient is NaN
            dof = builtins.max(n - correction, 0)
            return (ge * centered * (2.0 / dof if dof else math.inf),)

        # PyTorch's std backward passes no gradient through a zero std (a constant range)
        o = _expand_back(out, x, dim, keepdim)
        dof = builtins.max(n - correction, 0)
        return (where(o == 0, 0.0, ge / o) * centered * (1.0 / dof if dof else math.inf),)

    return vjp


def _var_mean_vjp(is_std):
    var_vjp = _var_vjp(is_std)

    def vjp(gs, x, out, dim, keepdim, all_dims, correction):
        (gv,) = var_vjp(gs[0], x, out[0], dim, keepdim, all_dims, correction)
        (gm,) = _mean_vjp(gs[1], x, out[1], dim, keepdim, all_dims)
        return (gv + gm,)

    return vjp


def _ref_var_mean(sqrt):
    var = _ref_var(sqrt)

    def ref(x, dim=None, keepdim=False, correction=1):
        axis = _axis(x, dim)
        n = x.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
        with np.errstate(all="ignore"):
            m = (np.sum(x, axis=axis, keepdims=keepdim) / n).astype(x.dtype)
        return var(x, dim, keepdim, correction), m

    return ref


def _lse_vjp(g, x, out, dim, keepdim, all_dims):
    return (_expand_back(g, x, dim, keepdim) * (x - _expand_back(out, x, dim, keepdim)).exp(),)


def _softmax_vjp(g, x, out, dim, dtype):
    return (out * (g - sum(g * out, dim=dim, keepdim=True)),)


def _log_softmax_vjp(g, x, out, dim, dtype):
    return (g - out.exp() * sum(g, dim=dim, keepdim=True),)


def _cumsum_vjp(g, x, out, dim, dtype):

    return (flip(cumsum(flip(g, (dim,)), dim), (dim,)),)


SUM = reduction("sum", _ref_sum, "fold", _sum_accumulation, vjp=_sum_vjp)
PROD = reduction("prod", _ref_prod, "fold", _prod_accumulation, vjp=_prod_vjp)
MEAN = reduction("mean", _ref_mean, "fold", _mean_accumulation, vjp=_mean_vjp)
AMAX = reduction("amax", _ref_extreme(np.amax), "fold", _extreme_accumulation(True),
                 empty="amax", vjp=_extreme_vjp, autocast=None)
AMIN = reduction("amin", _ref_extreme(np.amin), "fold", _extreme_accumulation(False),
                 empty="amin", vjp=_extreme_vjp, autocast=None)
ALL = reduction("all", _ref_logical(np.all), "fold", _logical_accumulation(True),
                differentiable=False, autocast=None)
ANY = reduction("any", _ref_logical(np.any), "fold", _logical_accumulation(False),
                differentiable=False, autocast=None)
NORM = reduction("norm", _ref_norm, "fold", _norm_accumulation, vjp=_norm_vjp)
VAR = reduction("var", _ref_var(False), "welford", _var_accumulation(False),
                vjp=_var_vjp(False))
STD = reduction("std", _ref_var(True), "welford", _var_accumulation(True), vjp=_var_vjp(True))
# (var, mean) and (std, mean) from one pass of one kernel: an op with two outputs
VAR_MEAN = reduction("var_mean", _ref_var_mean(False), "welford", _var_accumulation(False),
                     vjp=_var_mean_vjp(False), mean=True)
STD_MEAN = reduction("std_mean", _ref_var_mean(True), "welford", _var_accumulation(True),
                     vjp=_var_mean_vjp(True), mean=True)
LOGSUMEXP = reduction("logsumexp", _ref_lse, "lse", _lse_accumulation, vjp=_lse_vjp)
ARGMAX = reduction("argmax", _ref_arg(_nan_first(np.argmax), False), "arg",
                   _arg_accumulation(True, False), empty="argmax", differentiable=False,
                   autocast=None)
ARGMIN = reduction("argmin", _ref_arg(_nan_first(np.argmin), False), "arg",
                   _arg_accumulation(False, False), empty="argmin", differentiable=False,
                   autocast=None)
MAX = reduction("max", _ref_arg(_nan_first(np.argmax), True), "arg",
                _arg_accumulation(True, True), empty="max", vjp=_arg_vjp(ARGMAX), autocast=None)
MIN = reduction("min", _ref_arg(_nan_first(np.argmin), True), "arg",
                _arg_accumulation(False, True), empty="min", vjp=_arg_vjp(ARGMIN), autocast=None)
SOFTMAX = reduction("softmax", _ref_softmax(False), "softmax",
                    _softmax_accumulation("softmax"), vjp=_softmax_vjp)
LOG_SOFTMAX = reduction("log_softmax", _ref_softmax(True), "log_softmax",
                        _softmax_accumulation("log_softmax"), vjp=_log_softmax_vjp)
CUMSUM = reduction("cumsum", _ref_cumsum, "cumsum", _cumsum_accumulation, vjp=_cumsum_vjp)


# --- public functions ---------------------------------------------------------------------


def _numpy_names(fn):
    """PyTorch's numpy spellings of reduction arguments: ``axis`` for ``dim``, ``keepdims``
    for ``keepdim``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if kwargs:
            for alias, name in (("axis", "dim"), ("keepdims", "keepdim")):
                if alias in kwargs:
                    if name in kwargs:
                        raise TypeError(f"{fn.__name__}() got multiple values for argument "
                                        f"'{name}' (as '{alias}')")
                    kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)

    return wrapper


def _check_tensor(x, name):
    if not isinstance(x, registry.Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


def _reduce(op, input, dim, keepdim, **attrs):
    _check_tensor(input, op.name)
    dims = _dims(dim, input.ndim)
    all_dims = dims is None
    if all_dims:
        dims = tuple(range(input.ndim))
    return apply(op, input, dim=dims, keepdim=bool(keepdim), all_dims=all_dims, **attrs)


def _dtype(dtype):
    return None if dtype is None else dt.as_dtype(dtype)


@public
@_numpy_names
def sum(input, dim=None, keepdim=False, *, dtype=None):
    """torch.sum. Float32 sums are compensated (Kahan)."""
    return _reduce(SUM, input, dim, keepdim, dtype=_dtype(dtype))


@public
@_numpy_names
def prod(input, dim=None, keepdim=False, *, dtype=None):
    """torch.prod; ``dim`` may also be a tuple."""
    return _reduce(PROD, input, dim, keepdim, dtype=_dtype(dtype))


@public
@_numpy_names
def mean(input, dim=None, keepdim=False, *, dtype=None):
    """torch.mean."""
    return _reduce(MEAN, input, dim, keepdim, dtype=_dtype(dtype))


@public
@_numpy_names
def amax(input, dim=(), keepdim=False):
    """torch.amax."""
    return _reduce(AMAX, input, dim, keepdim)


@public
@_numpy_names
def amin(input, dim=(), keepdim=False):
    """torch.amin."""
    return _reduce(AMIN, input, dim, keepdim)


@public
@_numpy_names
def all(input, dim=None, keepdim=False):
    """torch.all."""
    return _reduce(ALL, input, dim, keepdim)


@public
@_numpy_names
def any(input, dim=None, keepdim=False):
    """torch.any."""
    return _reduce(ANY, input, dim, keepdim)


return_types = type("return_types", (), {**{n: return_type(n) for n in (
                                             "max", "min", "median", "cummax", "cummin")},
                                         **RETURN_TYPES})


def _extreme(op, amax_op, other_fn, input, dim, keepdim):
    _check_tensor(input, op.name)
    if isinstance(dim, registry.Tensor):
        return other_fn(input, dim)
    if dim is None:
        if keepdim:
            raise TypeError(f"{op.name}() received an invalid combination of arguments: "
                            "keepdim without dim")
        if input.numel() == 0:
            raise RuntimeError(
                f"{op.name}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument.")
        return apply(amax_op, input, dim=tuple(range(input.ndim)), keepdim=False,
                     all_dims=True)
    if not isinstance(dim, numbers.Integral) or isinstance(dim, builtins.bool):
        raise TypeError(f"{op.name}(): argument 'dim' must be int, not {type(dim).__name__}")
    d = wrap_dim(dim, input.ndim)
    values, indices = apply(op, input, dim=(d,), keepdim=bool(keepdim), all_dims=False)
    return getattr(return_types, op.name)(values, indices)


@public
@_numpy_names
def max(input, dim=None, keepdim=False, *, other=None):
    """torch.max: the largest value; with ``dim`` (values, indices); with a tensor second
    argument (or ``other``) the elementwise maximum."""
    if other is not None:
        return registry.EXPORTS["maximum"].fn(input, other)
    return _extreme(MAX, AMAX, registry.EXPORTS["maximum"].fn, input, dim, keepdim)


@public
@_numpy_names
def min(input, dim=None, keepdim=False, *, other=None):
    """torch.min (see max)."""
    if other is not None:
        return registry.EXPORTS["minimum"].fn(input, other)
    return _extreme(MIN, AMIN, registry.EXPORTS["minimum"].fn, input, dim, keepdim)


def _arg(op, input, dim, keepdim):
    _check_tensor(input, op.name)
    if dim is None:
        if input.numel() == 0 and input.dtype is not dt.bool_:  # bool: its own error first
            raise IndexError(f"{op.name}(): Expected reduction dim to be specified for "
                             "input.numel() == 0.")
        return apply(op, input, dim=None, keepdim=bool(keepdim), all_dims=True)
    if not isinstance(dim, numbers.Integral) or isinstance(dim, builtins.bool):
        raise TypeError(f"{op.name}(): argument 'dim' (position 1) must be int, not "
                        f"{type(dim).__name__}")
    return apply(op, input, dim=(wrap_dim(dim, input.ndim),), keepdim=bool(keepdim),
                 all_dims=False)


@public
@_numpy_names
def argmax(input, dim=None, keepdim=False):
    """torch.argmax: the first index of the largest value (NaN counts as largest)."""
    return _arg(ARGMAX, input, dim, keepdim)


@public
@_numpy_names
def argmin(input, dim=None, keepdim=False):
    """torch.argmin."""
    return _arg(ARGMIN, input, dim, keepdim)


def _correction(unbiased, correction):
    if unbiased is not None and correction is not None:
        raise TypeError("var()/std(): use either unbiased or correction, not both")
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


@public
@_numpy_names
def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.var: ``unbiased`` (legacy) or ``correction`` (default 1)."""
    if isinstance(dim, builtins.bool):
        dim, unbiased = None, dim
    return _reduce(VAR, input, dim, keepdim, correction=_correction(unbiased, correction))


@public
@_numpy_names
def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.std: ``unbiased`` (legacy) or ``correction`` (default 1)."""
    if isinstance(dim, builtins.bool):
        dim, unbiased = None, dim
    return _reduce(STD, input, dim, keepdim, correction=_correction(unbiased, correction))


@public
@_numpy_names
def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.var_mean: (var, mean), both from one kernel."""
    if isinstance(dim, builtins.bool):
        dim, unbiased = None, dim
    return _reduce(VAR_MEAN, input, dim, keepdim, correction=_correction(unbiased, correction))


@public
@_numpy_names
def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.std_mean: (std, mean), both from one kernel."""
    if isinstance(dim, builtins.bool):
        dim, unbiased = None, dim
    return _reduce(STD_MEAN, input, dim, keepdim, correction=_correction(unbiased, correction))


@public
@_numpy_names
def logsumexp(input, dim, keepdim=False):
    """torch.logsumexp, max-shifted; integer inputs give the default float dtype."""
    return _reduce(LOGSUMEXP, input, dim, keepdim)


@public
@_numpy_names
def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm: a vector norm (p a number, inf, -inf; 'fro' over at most two dims is
    the 2-norm) over ``dim``, else the matrix norm p ('nuc') over the two dims ``dim`` (all
    dims when None)."""
    dims = [dim] if isinstance(dim, numbers.Integral) else dim
    if p is None or (p == "fro" and (dims is None or len(dims) <= 2)):
        p = 2
    if isinstance(p, str):
        dims = list(range(input.ndim)) if dims is None else list(dims)
        if len(dims) != 2:
            raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got "
                               f"{' '.join(map(str, dims))}")
        if p != "nuc":
            raise RuntimeError(f"linalg.matrix_norm: Order {p} not supported.")
        x = input if dtype is None else input.to(_dtype(dtype))
        return registry.functions.nuclear_norm(x, tuple(dims), keepdim)
    return _reduce(NORM, input, dim, keepdim, p=float(p), dtype=_dtype(dtype))


def _row_op(op, input, dim, dtype):
    _check_tensor(input, op.name)
    if not isinstance(dim, numbers.Integral) or isinstance(dim, builtins.bool):
        raise TypeError(f"{op.name}(): argument 'dim' must be int, not {type(dim).__name__}")
    return apply(op, input, dim=wrap_dim(dim, input.ndim), dtype=_dtype(dtype))


@public
@_numpy_names
def softmax(input, dim, dtype=None):
    """torch.softmax (the input is cast to ``dtype`` first when given)."""
    return _row_op(SOFTMAX, input, dim, dtype)


@public
@_numpy_names
def log_softmax(input, dim, dtype=None):
    """torch.log_softmax."""
    return _row_op(LOG_SOFTMAX, input, dim, dtype)


@public(inplace=True)
@_numpy_names
def cumsum(input, dim, *, dtype=None):
    """torch.cumsum; integer and bool inputs give int64. Float32 accumulates in float64
    where the device has it, as PyTorch's CPU kernel does."""
    return _row_op(CUMSUM, input, dim, dtype)


@public
@_numpy_names
def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """torch.nansum: sum with NaN counted as zero."""
    _check_tensor(input, "nansum")
    x = input
    if input.dtype.is_floating_point:
        x = where(apply(_ew_op("isnan"), input), 0.0, input)
    return _reduce(SUM, x, dim, keepdim, dtype=_dtype(dtype))


@public
@_numpy_names
def count_nonzero(input, dim=None):
    """torch.count_nonzero: int64 counts over ``dim`` (an int or a tuple; None: all)."""
    _check_tensor(input, "count_nonzero")
    return _reduce(SUM, apply(_ew_op("ne"), input, 0), dim, False, dtype=dt.int64)


@public(inplace=True)
@_numpy_names
def cumprod(input, dim, *, dtype=None, out=None):
    """torch.cumprod; integer and bool inputs give int64. A Hillis-Steele scan of
    ceil(log2 n) products of shifted copies, so the gradient is exact with zeros too."""
    _check_tensor(input, "cumprod")
    if not isinstance(dim, numbers.Integral) or isinstance(dim, builtins.bool):
        raise TypeError(f"cumprod(): argument 'dim' must be int, not {type(dim).__name__}")
    d = wrap_dim(dim, input.ndim)
    target = _dtype(dtype) or (input.dtype if input.dtype.is_floating_point else dt.int64)
    y = input if input.dtype is target else input.to(target)
    n = y.shape[d] if y.ndim else 1
    k = 1
    while k < n:
        pad = list(y.shape)
        pad[d] = k
        head = ones(*pad, dtype=target, device=y.device)
        y = y * cat([head, y.narrow(d, 0, n - k)], d)
        k *= 2
    if y is input:
        y = y.clone()
    return y if out is None else out.copy_(y)


def _median_nan(x, indices, d):
    """PyTorch's median of rows holding NaN: NaN, at the first NaN's index."""
    nan = apply(_ew_op("isnan"), x)
    has = any(nan, d, True)
    first = argmax(nan.to(dt.uint8), d, True)
    return where(has, first, indices)


@public
@_numpy_names
def median(input, dim=None, keepdim=False):
    """torch.median: the lower of the two middle values; with ``dim`` (values, indices).
    A row holding NaN gives NaN."""
    _check_tensor(input, "median")
    if dim is None:
        x = input.reshape(-1)
        n = x.shape[0]
        if n == 0:
            return zeros((), dtype=input.dtype, device=input.device) + math.nan
        idx = registry.functions.sort(x.detach(), 0).indices.narrow(0, (n - 1) // 2, 1)
        if input.dtype.is_floating_point:
            idx = _median_nan(x.detach(), idx, 0)
        return registry.functions.gather(x, 0, idx).reshape(())
    if not isinstance(dim, numbers.Integral) or isinstance(dim, builtins.bool):
        raise TypeError(f"median(): argument 'dim' must be int, not {type(dim).__name__}")
    d = wrap_dim(dim, input.ndim)
    x = input if input.ndim else input.reshape(1)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"median(): Expected reduction dim {d} to have non-zero size.")
    idx = registry.functions.sort(x.detach(), d).indices.narrow(d, (n - 1) // 2, 1)
    if input.dtype.is_floating_point:
        idx = _median_nan(x.detach(), idx, d)
    values = registry.functions.gather(x, d, idx)
    if not keepdim or not input.ndim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return return_types.median(values, idx)


@public
@_numpy_names
def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """torch.nanmean: the mean of the non-NaN values (NaN where there are none)."""
    _check_tensor(input, "nanmean")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex "
                           f"dtype but got {input.dtype.scalar_type}")
    keep = apply(_ew_op("logical_not"), apply(_ew_op("isnan"), input))
    return nansum(input, dim, keepdim, dtype=dtype) / _reduce(SUM, keep, dim, keepdim)


@public
def bincount(input, weights=None, minlength=0):
    """torch.bincount: the count (or summed weight) of each value of a 1-d non-negative
    integer tensor; the length is read on the host (it depends on the data)."""
    _check_tensor(input, "bincount")
    if input.dtype.is_floating_point:
        raise NotImplementedError(f'"bincount_cpu" not implemented for '
                                  f"'{input.dtype.scalar_type}'")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if input.ndim != 1 or (input.numel() and int(amin(input)) < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if weights is not None and weights.shape != input.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    size = builtins.max(int(amax(input)) + 1 if input.numel() else 0, int(minlength))
    idx = input.to(dt.int64)
    if weights is None:
        src, d = ones(input.numel(), dtype=dt.int64, device=input.device), dt.int64
    else:
        d = weights.dtype if weights.dtype in (dt.float32, dt.float64) else dt.float64
        src = weights.to(d)
    return registry.functions.scatter_add(zeros(size, dtype=d, device=input.device), 0, idx,
                                          src)


def _scan_shift(y, d, k, pad):
    """y shifted k places along d, the first k places ``pad`` (the scan's identity)."""
    n = y.shape[d]
    shape = list(y.shape)
    shape[d] = k
    return cat([y.new_full(shape, pad), y.narrow(d, 0, n - k)], d)


def _cumextreme(name, input, dim, largest):
    """cummax / cummin: a Hillis-Steele scan of (value, index) pairs; a later pair wins
    ties (the last index, as PyTorch) and NaN wins over numbers."""
    _check_tensor(input, name)
    d = wrap_dim(dim, input.ndim)
    x = input if input.ndim else input.reshape(1)
    v = x.detach()
    n = v.shape[d]
    shape = [1] * v.ndim
    shape[d] = n
    i = arange(n, device=v.device).reshape(*shape).expand(*v.shape)
    if v.dtype is dt.bool_:
        pad = not largest
    elif v.dtype.is_floating_point:
        pad = -math.inf if largest else math.inf
    else:
        info = dt.iinfo(v.dtype)
        pad = info.min if largest else info.max
    cmp = _ew_op("ge" if largest else "le")
    isnan = _ew_op("isnan")
    k = 1
    while k < n:
        pv, pi = _scan_shift(v, d, k, pad), _scan_shift(i, d, k, 0)
        take = apply(cmp, v, pv)
        if v.dtype.is_floating_point:
            take = (take & ~apply(isnan, pv)) | apply(isnan, v)
        v, i = where(take, v, pv), where(take, i, pi)
        k *= 2
    i = i.contiguous()
    values = registry.functions.gather(x, d, i) if input.requires_grad else v.contiguous()
    if not input.ndim:
        values, i = values.reshape(()), i.reshape(())
    return getattr(return_types, name)(values, i)


@public
def cummax(input, dim):
    """torch.cummax: running maximum along ``dim`` and the index where it was taken."""
    return _cumextreme("cummax", input, dim, True)


@public
def cummin(input, dim):
    """torch.cummin: running minimum along ``dim`` and the index where it was taken."""
    return _cumextreme("cummin", input, dim, False)


@public
def logcumsumexp(input, dim):
    """torch.logcumsumexp: log(cumsum(exp(x))) as a scan of logaddexp (exact for any
    spread of values; its gradient is logaddexp's)."""
    _check_tensor(input, "logcumsumexp")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"logcumsumexp_out_cpu" not implemented for '
                                  f"'{input.dtype.scalar_type}'")
    d = wrap_dim(dim, input.ndim)
    y = input if input.ndim else input.reshape(1)
    n, k = y.shape[d], 1
    while k < n:
        y = registry.functions.logaddexp(y, _scan_shift(y, d, k, -math.inf))
        k *= 2
    if y is input:
        y = y.clone()
    return y.reshape(()) if not input.ndim else y


__all__ = ["all", "amax", "amin", "any", "argmax", "argmin", "count_nonzero", "cumprod",
           "cumsum", "log_softmax", "logsumexp", "max", "mean", "median", "min", "nansum",
           "norm", "prod", "softmax", "std", "std_mean", "sum", "var", "var_mean"]


# --- statistics composed of other ops ----------------------------------------------------

_aminmax = collections.namedtuple("aminmax", "min max")
_histogram = collections.namedtuple("histogram", "hist bin_edges")
return_types.aminmax, return_types.histogram = _aminmax, _histogram
return_types.nanmedian = return_type("nanmedian")


@public
def aminmax(input, *, dim=None, keepdim=False):
    """torch.aminmax: (amin, amax) over ``dim`` (all elements when None)."""
    _check_tensor(input, "aminmax")
    if input.numel() == 0 and dim is None:
        raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the "
                           "operation has no identity.")
    d = () if dim is None else dim
    lo, hi = amin(input, d, keepdim), amax(input, d, keepdim)
    if dim is None and keepdim:
        lo, hi = lo.reshape((1,) * input.ndim), hi.reshape((1,) * input.ndim)
    return _aminmax(lo, hi)


@public
def nanmedian(input, dim=None, keepdim=False):
    """torch.nanmedian: the lower median of the non-NaN values (NaN where there are none);
    with ``dim`` (values, indices)."""
    _check_tensor(input, "nanmedian")
    if not input.dtype.is_floating_point:
        return median(input, dim, keepdim)
    fn = registry.functions
    if dim is None:
        x = input.reshape(-1)
        if x.shape[0] == 0:
            return zeros((), dtype=input.dtype, device=input.device) + math.nan
        d = 0
    else:
        d = wrap_dim(dim, input.ndim)
        x = input if input.ndim else input.reshape(1)
        if x.shape[d] == 0:
            raise IndexError(f"nanmedian(): Expected reduction dim {d} to have non-zero size.")
    order = fn.sort(x.detach(), d).indices  # NaN sorts last
    count = sum(fn.logical_not(fn.isnan(x.detach())), d, keepdim=True)
    idx = fn.gather(order, d, ((count - 1) // 2).clamp(min=0))
    values = fn.gather(x, d, idx)
    if dim is None:
        return values.reshape(())
    if not keepdim or not input.ndim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return return_types.nanmedian(values, idx)


@public
def histc(input, bins=100, min=0, max=0):
    """torch.histc: counts in ``bins`` equal bins over [min, max] (values outside are
    ignored; min = max = 0 takes the data's range); the range is read on the host."""
    _check_tensor(input, "histc")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f'"histogram_cpu" not implemented for \'{input.dtype.scalar_type}\'')
    if bins <= 0:
        raise RuntimeError(f"torch.histc: bins must be > 0, but got {bins} for dimension 0")
    lo, hi = float(min), float(max)
    if lo == hi and input.numel():
        lo, hi = (float(t) for t in aminmax(input.detach()))
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError(f"torch.histc: max must be larger than min, but got min={min} "
                           f"max={max}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"torch.histc: range of [{lo}, {hi}] is not finite")
    edges = linspace(lo, hi, bins + 1, dtype=input.dtype,
                                        device=input.device)
    return _bin_counts(input.detach(), edges, None).to(input.dtype)


def _increasing_edges(edges, what):
    """``edges`` if they do not decrease (read on the host), else PyTorch's undefined case
    as an error."""
    e = edges.detach().numpy()
    if (np.diff(e) < 0).any() or np.isnan(e).any():
        raise RuntimeError(f"{what} must be monotonically increasing edges, but got "
                           f"{e.tolist()}")
    return edges


def _bin_counts(x, edges, weight):
    """The (weighted) count of ``x`` in each bin between ``edges`` (the last bin closed),
    values outside ignored."""
    fn = registry.functions
    flat = x.reshape(-1)
    bins = edges.shape[0] - 1
    i = fn.searchsorted(edges, flat, right=True) - 1
    i = fn.where(flat == edges[-1], bins - 1, i)
    keep = (flat >= edges[0]) & (flat <= edges[-1])
    idx = fn.masked_select(i, keep)
    w = None if weight is None else fn.masked_select(weight.reshape(-1), keep)
    return fn.bincount(idx, w, minlength=bins)


@public
def histogram(input, bins, *, range=None, weight=None, density=False):
    """torch.histogram: (hist, bin_edges); ``bins`` a count of equal bins over ``range`` (or
    the data's) or a tensor of increasing edges."""
    _check_tensor(input, "histogram")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"torch.histogram: input tensor and bins tensors should have the "
                           f"same dtype, but got input {input.dtype.scalar_type}")
    if isinstance(bins, registry.Tensor):
        if bins.ndim != 1 or bins.shape[0] < 1:
            raise RuntimeError(f"torch.histogram: bins tensor should have one dimension and "
                               f"at least 1 entry, but got {bins.ndim} dimensions")
        edges = _increasing_edges(bins.to(input.dtype), "torch.histogram: bins")
    elif not isinstance(bins, numbers.Integral) or isinstance(bins, bool):
        raise TypeError(f"histogram(): argument 'bins' must be an int or a 1-d Tensor of "
                        f"edges, not {type(bins).__name__}")
    else:
        if bins <= 0:
            raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for "
                               f"dimension 0")
        if range is not None:
            lo, hi = (float(r) for r in range)
        elif input.numel():
            lo, hi = (float(t) for t in aminmax(input.detach()))
        else:
            lo, hi = 0.0, 0.0
        if lo > hi:
            raise RuntimeError(f"torch.histogram(): min should not exceed max, but got min "
                               f"{lo} max {hi}")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = linspace(lo, hi, int(bins) + 1, dtype=input.dtype, device=input.device)
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise RuntimeError(f"torch.histogram: if weight tensor is provided it should have "
                           f"the same shape as the input tensor excluding its innermost "
                           f"dimension, but got input with shape {list(input.shape)} and "
                           f"weight with shape {list(weight.shape)}")
    if edges.shape[0] == 1:
        return _histogram(zeros(0, dtype=input.dtype, device=input.device), edges)
    hist = _bin_counts(input.detach(), edges,
                       None if weight is None else weight.detach()).to(input.dtype)
    if density:
        widths = edges[1:] - edges[:-1]
        hist = hist / (hist.sum() * widths)
    return _histogram(hist, edges)


@public(method=False)
def histogramdd(input, bins, *, range=None, weight=None, density=False):
    """torch.histogramdd: (hist, bin_edges) of the points ``input[..., :D]`` in D
    dimensions; ``bins`` a count for all dims, one per dim, or one tensor of edges per dim;
    ``range`` [min_0, max_0, min_1, ...]. Counted on the host."""
    _check_tensor(input, "histogramdd")
    if input.ndim < 2:
        raise RuntimeError("torch.histogramdd: input tensor should have at least 2 dimensions")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"histogramdd\" not implemented for "
                                  f"'{input.dtype.scalar_type}'")
    ndims = input.shape[-1]
    points = input.detach().reshape(-1, ndims)
    if isinstance(bins, registry.Tensor):
        raise TypeError("histogramdd(): argument 'bins' must be an int, a sequence of ints or "
                        "a sequence of 1-d Tensors (one per dimension), not Tensor")
    if isinstance(bins, (list, tuple)):
        if len(bins) != ndims:
            raise RuntimeError("histogramdd: The size of bins must be equal to the innermost "
                               "dimension of the input.")
    else:
        bins = [bins] * ndims
    if range is not None and len(range) != 2 * ndims:
        raise RuntimeError(f"torch.histogramdd: for a {ndims}-dimensional histogram range "
                           f"should have {2 * ndims} elements, but got {len(range)}")
    data = points.numpy()
    edges = []
    for d, b in enumerate(bins):
        if isinstance(b, registry.Tensor):
            if b.ndim != 1 or b.shape[0] < 1:
                raise RuntimeError(f"torch.histogramdd: bins[{d}] should be a 1-d tensor of "
                                   f"at least 1 edge, but got shape {list(b.shape)}")
            edges.append(_increasing_edges(b.to(input.dtype), f"torch.histogramdd: bins[{d}]"))
            continue
        if b <= 0:
            raise RuntimeError(f"torch.histogramdd(): bins must be > 0, but got {b} for "
                               f"dimension {d}")
        if range is not None:
            lo, hi = float(range[2 * d]), float(range[2 * d + 1])
        elif data.shape[0]:
            lo, hi = float(data[:, d].min()), float(data[:, d].max())
        else:
            lo, hi = 0.0, 0.0
        if lo > hi:
            raise RuntimeError(f"torch.histogramdd(): min should not exceed max, but got min "
                               f"{lo} max {hi} for dimension {d}")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges.append(linspace(lo, hi, int(b) + 1, dtype=input.dtype, device=input.device))
    w = None if weight is None else weight.detach().reshape(-1).numpy()
    hist, _ = np.histogramdd(data, bins=[e.numpy().astype(np.float64) for e in edges],
                             weights=w, density=bool(density))
    out = _from_host(np.ascontiguousarray(hist), input.dtype, input.device)
    return _histogramdd(out, tuple(edges))


_histogramdd = collections.namedtuple("histogramdd", ("hist", "bin_edges"))
_histogramdd.__repr__ = lambda self: (f"torch.return_types.histogramdd(\nhist={self.hist!r},"
                                      f"\nbin_edges={self.bin_edges!r})")


@public
def cov(input, *, correction=1, fweights=None, aweights=None):
    """torch.cov: the covariance of the rows (variables) of a 1-d or 2-d ``input`` whose
    columns are observations."""
    _check_tensor(input, "cov")
    if input.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an "
                           f"input with {input.ndim} dimensions")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    d = x.dtype  # promoted with aweights' dtype, as PyTorch's arithmetic does
    if aweights is not None:
        if not aweights.dtype.is_floating_point:
            raise RuntimeError(f"cov(): expected aweights to have floating point dtype but got "
                               f"aweights with {aweights.dtype.scalar_type} dtype")
        d = dt.promote_types(d, aweights.dtype)
    if fweights is not None and (fweights.dtype.is_floating_point or
                                 fweights.dtype.is_complex):
        raise RuntimeError(f"cov(): expected fweights to have integral dtype but got fweights "
                           f"with {fweights.dtype.scalar_type} dtype")
    x = x.to(d if d.is_floating_point else dt.get_default_dtype())
    n = x.shape[1]
    w = None
    for name, v in (("fweights", fweights), ("aweights", aweights)):
        if v is None:
            continue
        if v.ndim > 1:
            raise RuntimeError(f"cov(): expected {name} to have one or fewer dimensions but "
                               f"got {name} with {v.ndim} dimensions")
        if v.numel() != n:
            raise RuntimeError(f"cov(): expected {name} to have the same numel as there are "
                               f"observations in the input but got {v.numel()} != {n}")
        w = v.to(x.dtype) if w is None else w * v.to(x.dtype)
    if w is None:
        w_sum = float(n)
        avg = x.mean(1, keepdim=True)
        norm = w_sum - correction
    else:
        w_sum = w.sum()
        avg = (x * w).sum(1, keepdim=True) / w_sum
        if aweights is not None and correction:
            norm = w_sum - correction * (w * aweights.to(x.dtype)).sum() / w_sum
        else:
            norm = w_sum - correction
    xm = x - avg
    xw = xm if w is None else xm * w
    if isinstance(norm, float):
        norm = builtins.max(norm, 0.0)
    else:
        norm = norm.clamp(min=0)
    c = (xw @ xm.mT) / norm
    return c.reshape(()) if x.shape[0] == 1 else c


@public
def corrcoef(input):
    """torch.corrcoef: Pearson's correlation of the rows, clipped to [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal().sqrt()
    return (c / d.unsqueeze(1) / d.unsqueeze(0)).clamp(-1, 1)


@public
def dist(input, other, p=2):
    """torch.dist: the p-norm of ``input - other``."""
    return norm(input - other, p)


@public(inplace=True)
def renorm(input, p, dim, maxnorm):
    """torch.renorm: each slice along ``dim`` whose p-norm exceeds ``maxnorm`` scaled down
    to it."""
    _check_tensor(input, "renorm")
    if p <= 0:
        raise RuntimeError(f"renorm: non-positive-norm not supported, got p={p}")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = wrap_dim(dim, input.ndim)
    size = norm(input, p, [i for i in builtins.range(input.ndim) if i != d], keepdim=True)
    factor = where(size > maxnorm, maxnorm / (size + 1e-7), 1.0)
    return input * factor


def _trapezoid_parts(y, x, dx, dim, name):
    """The terms of the trapezoidal rule in PyTorch's order of operations, dx * (left +
    right) / 2 (so integer operands wrap where PyTorch's do); None for an empty ``dim``."""
    if x is not None and dx is not None:
        raise TypeError(f"{name}() received an invalid combination of arguments: x and dx")
    d = wrap_dim(dim, y.ndim)
    n = y.shape[d]
    if n == 0:
        return None, d
    left, right = y.narrow(d, 0, n - 1), y.narrow(d, 1, n - 1)
    if x is None:
        return (1.0 if dx is None else dx) / 2 * (left + right), d
    if x.ndim == 1:
        if x.shape[0] != n:
            raise RuntimeError(f"{name}: There must be one `x` value for each sample point")
        dxs = (x[1:] - x[:-1]).reshape((n - 1,) + (1,) * (y.ndim - d - 1))
    else:
        xd = wrap_dim(dim, x.ndim)
        dxs = x.narrow(xd, 1, n - 1) - x.narrow(xd, 0, n - 1)
    return dxs * (left + right) / 2, d


@public(method=False, aliases=("trapz",))
def trapezoid(y, x=None, *, dx=None, dim=-1):
    """torch.trapezoid (and trapz): the trapezoidal rule along ``dim``; with a constant
    spacing, PyTorch's (sum(y) - (y[0] + y[-1]) / 2) * dx."""
    _check_tensor(y, "trapezoid")
    if x is None:
        d = wrap_dim(dim, y.ndim)
        if y.shape[d] == 0:  # PyTorch: zeros of y's dtype
            return y.sum(d, dtype=y.dtype)
        ends = y.select(d, 0) + y.select(d, -1)
        return (sum(y, d) - ends * 0.5) * (1.0 if dx is None else dx)
    parts, d = _trapezoid_parts(y, x, dx, dim, "trapezoid")
    if parts is None:
        return y.sum(d, dtype=y.dtype)
    return sum(parts, d)


@public(method=False)
def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """torch.cumulative_trapezoid: the running trapezoidal rule along ``dim`` (one element
    shorter)."""
    _check_tensor(y, "cumulative_trapezoid")
    parts, d = _trapezoid_parts(y, x, dx, dim, "cumulative_trapezoid")
    if parts is None:  # empty, in the dtype of the terms (floating)
        return y * 0.5
    return cumsum(parts, d)


@public(method=False)
def vander(x, N=None, increasing=False):
    """torch.vander: columns of powers of the 1-d ``x`` (decreasing unless ``increasing``),
    as running products, so gradients follow."""
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x._shape[0] if N is None else int(N)
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    col = (x if x.dtype.is_floating_point else x.to(dt.int64)).unsqueeze(1)
    if n == 0:
        return col.expand(x._shape[0], 0).clone()
    ones = col * 0 + 1
    out = cumprod(cat([ones] + [col] * (n - 1), 1), 1) if n > 1 else ones
    return out if increasing else flip(out, [1])
