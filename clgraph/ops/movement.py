"""Movement ops: views that share the input's storage (view, reshape, permute, transpose,
expand, squeeze/unsqueeze, narrow, basic indexing) and the copies that must move data
(contiguous, clone); cat and stack live in join.py. A view op has a shape/stride rule and
no kernel."""

from __future__ import annotations

import builtins
import numbers

import numpy as np

from .. import dtypes as dt
from .. import runtime
from .._memory_format import channels_last_order, is_dense_in
from ..shapes import broadcast_shapes, infer_size, sum_to_dims, view_strides, wrap_dim
from . import complex as _complex
from . import registry
from .elementwise import op
from .math import copy_, fill_
from .registry import OpDef, apply, public, register


def _sizes(args) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    out = []
    for a in args:
        if isinstance(a, registry.Tensor):
            a = int(a)
        if not isinstance(a, numbers.Integral) or isinstance(a, builtins.bool):
            raise TypeError(f"expected a sequence of integers, but got {type(a).__name__}")
        out.append(int(a))
    return tuple(out)


# --- view ops: (tensor, attrs) -> view --------------------------------------------------


def _run_view(op, args, attrs, out=None):
    x = args[0]
    shape, stride, offset = op.view_rule(x, **attrs)
    return x._view(shape, stride, offset)


def _view_rule(x, shape):
    shape = infer_size(shape, x.numel())
    st = view_strides(x._shape, x._stride, shape)
    if st is None:
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride (at least one "
            "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
        )
    return shape, st, x._offset


def _permute_rule(x, dims):
    nd = x.ndim
    if len(dims) != nd:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal "
            f"to len(dims) = {len(dims)}".replace("(sparse_coo)", "")
        )
    d = [wrap_dim(i, nd) for i in dims]
    if len(set(d)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return tuple(x._shape[i] for i in d), tuple(x._stride[i] for i in d), x._offset


def _expand_rule(x, shape):
    nd = len(shape)
    if nd < x.ndim:
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(x.shape)}}}, size={list(shape)}): the number of "
            f"sizes provided ({nd}) must be greater or equal to the number of dimensions in "
            f"the tensor ({x.ndim})"
        )
    off = nd - x.ndim
    out_shape, out_stride = [], []
    for i, s in enumerate(shape):
        if i < off:
            if s < 0:
                raise RuntimeError(
                    f"The expanded size of the tensor ({s}) isn't allowed in a leading, "
                    "non-existing dimension 0"
                )
            out_shape.append(s)
            out_stride.append(0)
            continue
        n, st = x._shape[i - off], x._stride[i - off]
        if s == -1:
            s = n
        if n == s:
            out_shape.append(n)
            out_stride.append(st)
        elif n == 1:
            out_shape.append(s)
            out_stride.append(0)
        else:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({n}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(shape)}.  Tensor sizes: "
                f"{list(x.shape)}"
            )
    return tuple(out_shape), tuple(out_stride), x._offset


def _squeeze_rule(x, dims):
    nd = x.ndim
    if dims is None:
        keep = [i for i in range(nd) if x._shape[i] != 1]
    else:
        ds = {wrap_dim(d, nd) for d in dims}
        keep = [i for i in range(nd) if not (i in ds and x._shape[i] == 1)]
    return tuple(x._shape[i] for i in keep), tuple(x._stride[i] for i in keep), x._offset


def _unsqueeze_rule(x, dim):
    d = wrap_dim(dim, x.ndim + 1)
    sh, st = list(x._shape), list(x._stride)
    inner = sh[d] * st[d] if d < x.ndim else 1
    sh.insert(d, 1)
    st.insert(d, inner)
    return tuple(sh), tuple(st), x._offset


def _slice_rule(x, index):
    """Basic indexing: ints, slices, None and Ellipsis."""
    sh, st, off = [], [], x._offset
    nd = x.ndim
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    if consumed > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    d = 0
    for item in index:
        if item is Ellipsis:
            for _ in range(nd - consumed):
                sh.append(x._shape[d])
                st.append(x._stride[d])
                d += 1
            consumed = nd
            continue
        if item is None:
            sh.append(1)
            st.append(0)
            continue
        n, s = x._shape[d], x._stride[d]
        if isinstance(item, slice):
            step = 1 if item.step is None else item.step
            if step <= 0:
                raise ValueError("step must be greater than zero")
            start, stop, _ = slice(item.start, item.stop, 1).indices(n)
            length = max(0, -(-(stop - start) // step))
            if length == 0:
                start = 0
            sh.append(length)
            st.append(s * step)
            off += start * s
        else:
            i = int(item)
            if not -n <= i < n:
                raise IndexError(
                    f"index {i} is out of bounds for dimension {d} with size {n}"
                )
            off += (i % n) * s
        d += 1
    while d < nd:
        sh.append(x._shape[d])
        st.append(x._stride[d])
        d += 1
    return tuple(sh), tuple(st), off


def _as_strided_rule(x, size, stride, storage_offset):
    return tuple(size), tuple(stride), storage_offset


def _inverse(dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[wrap_dim(d, len(dims))] = i
    return tuple(inv)


def sum_to(g, shape):
    """Sum ``g`` over the dims that broadcasting added or expanded to reach its shape."""
    if tuple(g._shape) == tuple(shape):
        return g
    dims = sum_to_dims(g._shape, shape)
    r = g.sum(dim=dims, keepdim=True) if dims else g
    return r.reshape(*shape) if len(g._shape) != len(shape) else r


def _run_slice_backward(op, args, attrs, out=None):
    """Zeros of the sliced tensor's shape with ``g`` written where the slice was."""
    g = args[0]
    base = registry.Tensor._empty(attrs["shape"], g.dtype, g.device)
    fill_(base, 0)
    copy_(apply(SLICE, base, index=attrs["index"]), g)
    return base


def view_op(name, rule, vjp=None):
    return register(OpDef(name, "view", None, _run_view, vjp,
                          view_rule=rule, saves=(), saves_out=False))


VIEW = view_op("view", _view_rule, lambda g, x, out, shape: (g.reshape(*x.shape),))
PERMUTE = view_op("permute", _permute_rule,
                  lambda g, x, out, dims: (g.permute(*_inverse(dims)),))
EXPAND = view_op("expand", _expand_rule, lambda g, x, out, shape: (sum_to(g, x.shape),))
SQUEEZE = view_op("squeeze", _squeeze_rule, lambda g, x, out, dims: (g.reshape(*x.shape),))
UNSQUEEZE = view_op("unsqueeze", _unsqueeze_rule,
                    lambda g, x, out, dim: (g.reshape(*x.shape),))
SLICE = view_op("slice", _slice_rule, lambda g, x, out, index: (
    apply(SLICE_BACKWARD, g, shape=tuple(x.shape), index=index),))
def _as_strided_vjp(g, x, out, size, stride, storage_offset):
    """g added to the elements of x at the storage positions the view reads (twice for a
    position read twice); the map from positions to x's elements is built on the host."""
    def positions(shape, strides, offset):
        p = np.full((1,) * len(shape), offset, np.int64)
        for d, (n, st) in enumerate(zip(shape, strides)):
            p = p + (np.arange(n, dtype=np.int64) * st).reshape(
                (1,) * d + (n,) + (1,) * (len(shape) - d - 1))
        return np.broadcast_to(p, tuple(shape)).reshape(-1)

    px = positions(x._shape, x._stride, x._offset)
    order = np.argsort(px, kind="stable")
    sorted_px = px[order]
    if sorted_px.size > 1 and (np.diff(sorted_px) == 0).any():
        raise RuntimeError("as_strided backward: the input's elements overlap in memory "
                           f"(shape {list(x._shape)}, stride {list(x._stride)})")
    pv = positions(size, stride, storage_offset)
    k = np.searchsorted(sorted_px, pv).clip(0, max(sorted_px.size - 1, 0))
    if pv.size and (sorted_px.size == 0 or (sorted_px[k] != pv).any()):
        raise RuntimeError(f"as_strided backward: the view (size {list(size)}, stride "
                           f"{list(stride)}, offset {storage_offset}) reads outside its input")
    idx = registry.Tensor._empty((pv.size,), dt.int64, g.device)
    if pv.size:
        runtime.write(idx._storage, np.ascontiguousarray(order[k], np.int64), owned=True)
    gx = registry.Tensor._empty((x.numel(),), g.dtype, g.device)
    fill_(gx, 0)
    return (apply(registry.REGISTRY["index_add"], gx, idx, g.reshape(-1), dim=0,
                  alpha=1).reshape(*x._shape),)


AS_STRIDED = view_op("as_strided", _as_strided_rule, _as_strided_vjp)
SLICE_BACKWARD = register(OpDef(
    "slice_backward", "movement", None, _run_slice_backward,
    lambda g, x, out, shape, index: (apply(SLICE, g, index=index),),
    saves=(), saves_out=False))


# --- public functions -----------------------------------------------------------------


@public
def view(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], dt.dtype):
        raise NotImplementedError("view(dtype) is not supported; use .to(dtype)")
    return apply(VIEW, x, shape=_sizes(shape))


@public
def reshape(x, *shape):
    shape = infer_size(_sizes(shape), x.numel())
    if view_strides(x._shape, x._stride, shape) is None:
        x = contiguous(x)
    return apply(VIEW, x, shape=shape)


@public
def permute(x, *dims):
    return apply(PERMUTE, x, dims=_sizes(dims))


@public(aliases=("swapaxes", "swapdims"))
def transpose(x, dim0, dim1):
    nd = x.ndim
    d = list(range(nd))
    if nd == 0:  # (dims 0 and -1 name the scalar itself)
        wrap_dim(dim0, 0), wrap_dim(dim1, 0)
        return apply(PERMUTE, x, dims=())
    a, b = wrap_dim(dim0, nd), wrap_dim(dim1, nd)
    d[a], d[b] = d[b], d[a]
    return apply(PERMUTE, x, dims=tuple(d))


@public
def t(x):
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return transpose(x, 0, 1) if x.ndim == 2 else apply(PERMUTE, x, dims=tuple(range(x.ndim)))


@public
def expand(x, *shape):
    return apply(EXPAND, x, shape=_sizes(shape))


@public(function=False)
def expand_as(x, other):
    return expand(x, *other.shape)


@public
def broadcast_to(x, shape):
    return expand(x, *shape)


@public
def squeeze(x, dim=None):
    if dim is not None and not isinstance(dim, (tuple, list)):
        dim = (dim,)
    return apply(SQUEEZE, x, dims=None if dim is None else tuple(dim))


@public
def unsqueeze(x, dim):
    return apply(UNSQUEEZE, x, dim=dim)


@public
def flatten(x, start_dim=0, end_dim=-1):
    nd = x.ndim
    if nd == 0:
        return reshape(x, 1)
    s, e = wrap_dim(start_dim, nd), wrap_dim(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    n = 1
    for k in x._shape[s:e + 1]:
        n *= k
    return reshape(x, *x._shape[:s], n, *x._shape[e + 1:])


@public
def unflatten(x, dim, sizes):
    d = wrap_dim(dim, x.ndim)
    sizes = infer_size(tuple(sizes), x._shape[d])
    return reshape(x, *x._shape[:d], *sizes, *x._shape[d + 1:])


@public
def narrow(x, dim, start, length):
    d = wrap_dim(dim, x.ndim)
    n = x._shape[d]
    if isinstance(start, registry.Tensor):
        start = int(start)
    if not -n <= start <= n:
        raise IndexError(
            f"start out of range (expected to be in range of [{-n}, {n}], but got {start})"
        )
    start %= n if n else 1
    if length < 0 or start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    idx = [slice(None)] * d + [slice(start, start + length)]
    return apply(SLICE, x, index=tuple(idx))


@public
def select(x, dim, index):
    d = wrap_dim(dim, x.ndim)
    n = x._shape[d]
    if not -n <= index < n:
        raise IndexError(
            f"select(): index {index} out of range for tensor of size {list(x.shape)} at "
            f"dimension {d}"
        )
    return apply(SLICE, x, index=tuple([slice(None)] * d + [index]))


@public
def unbind(x, dim=0):
    d = wrap_dim(dim, x.ndim)
    return tuple(select(x, d, i) for i in range(x._shape[d]))


@public(aliases=("moveaxis",))
def movedim(x, source, destination):
    nd = x.ndim
    src = [wrap_dim(s, nd) for s in (source if isinstance(source, (tuple, list)) else [source])]
    dst = [wrap_dim(s, nd) for s in
           (destination if isinstance(destination, (tuple, list)) else [destination])]
    if nd == 0:  # dims 0 and -1 name a 0-d tensor's one element: nothing moves
        return permute(x)
    order = [i for i in range(nd) if i not in src]
    for s, d_ in sorted(zip(dst, src)):
        order.insert(s, d_)
    return permute(x, *order)


@public
def as_strided(x, size, stride, storage_offset=None):
    return apply(AS_STRIDED, x, size=tuple(size), stride=tuple(stride),
                 storage_offset=x._offset if storage_offset is None else storage_offset)


@public(function=False)
def unfold(x, dimension, size, step):
    """Tensor.unfold: a view of the windows of ``size`` every ``step`` along ``dimension``,
    as a new last dim."""
    d = wrap_dim(dimension, max(x.ndim, 1))
    n = x._shape[d] if x.ndim else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is "
                           f"{size}")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if x.ndim == 0:
        return as_strided(x, (size,), (1,))
    st = x._stride[d]
    shape = x._shape[:d] + ((n - size) // step + 1,) + x._shape[d + 1:] + (size,)
    stride = x._stride[:d] + (step * st,) + x._stride[d + 1:] + (st,)
    return as_strided(x, shape, stride)


@public(function=False)
def sum_to_size(x, *size):
    """Tensor.sum_to_size: ``x`` summed down to ``size``, which must expand to its shape."""
    shape = _sizes(size)
    try:
        ok = broadcast_shapes(shape, x._shape) == tuple(x._shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise RuntimeError(f"size {{{list(shape)}}} is not expandable to size "
                           f"{{{list(x._shape)}}}.")
    if not shape:  # PyTorch sums fully here, even a 0-d tensor: integers widen to int64
        return x.sum()
    return sum_to(x, shape)


@public
def ravel(x):
    """torch.ravel: the elements in row-major order, a view when ``x`` is contiguous."""
    return reshape(x, -1)


@public
def narrow_copy(x, dim, start, length):
    return narrow(x, dim, start, length).clone()


@public
def adjoint(x):
    """torch.adjoint: the last two dims swapped (the conjugate is the tensor itself)."""
    if x.ndim < 2:
        raise RuntimeError("tensor.adjoint() is only supported on matrices or batches of "
                           "matrices. Got 1-D tensor." if x.ndim == 1 else
                           "tensor.adjoint() is only supported on matrices or batches of "
                           "matrices. Got 0-D tensor.")
    return conj(transpose(x, -2, -1))


# Conjugation: eager (conj copies, so is_conj is always False); real tensors return
# themselves.


@public
def conj(x):
    return conj_physical(x) if x.dtype.is_complex else x


@public
def resolve_conj(x):
    return x


@public
def resolve_neg(x):
    return x


@public
def conj_physical(x):
    return _complex.conj(x) if x.dtype.is_complex else x


@public
def is_conj(x) -> bool:
    return False


@public
def is_neg(x) -> bool:
    return False


@public(method=False)
def real(x):
    """torch.real: a real tensor itself; of a complex one, its real view."""
    if not x.dtype.is_complex:
        return x
    return select(apply(registry.REGISTRY["view_as_real"], x), -1, 0)


@public(method=False)
def imag(x):
    if not x.dtype.is_complex:
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return select(apply(registry.REGISTRY["view_as_real"], x), -1, 1)


def _in_layout(x, order, copy: bool):
    """x with its dims laid out densely in ``order`` (outermost first): channels_last."""
    if not copy and is_dense_in(x._shape, x._stride, order):
        return x
    return permute(clone(permute(x, *order)), *_inverse(order))


@public
def contiguous(x, memory_format=None):
    """Tensor.contiguous; channels_last and channels_last_3d lay the channel dim innermost
    (clgraph._memory_format)."""
    order = channels_last_order(memory_format, x.ndim)
    if order is not None:
        return _in_layout(x, order, copy=False)
    if x._contig:
        return x
    return apply(op("to_dtype"), x, dtype=x.dtype)


@public
def clone(x, memory_format=None):
    """Tensor.clone: a contiguous copy (also for preserve_format, where PyTorch would keep a
    dense input's strides), or in channels_last layout when asked."""
    order = channels_last_order(memory_format, x.ndim)
    if order is not None:
        return _in_layout(x, order, copy=True)
    return apply(op("to_dtype"), x, dtype=x.dtype)


def _atleast(tensors, shape_of, name):
    """atleast_Nd over one tensor (returned as is) or several (a tuple)."""
    one = len(tensors) == 1 and not isinstance(tensors[0], (list, tuple))
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        if not isinstance(t, registry.Tensor):
            raise TypeError(f"{name}(): expected Tensor, got {type(t).__name__}")
        shape = shape_of(t._shape)
        out.append(t if shape == t._shape else reshape(t, *shape))
    return out[0] if one else tuple(out)


@public(method=False)
def atleast_1d(*tensors):
    """torch.atleast_1d: 0-d tensors as shape (1,)."""
    return _atleast(tensors, lambda s: s or (1,), "atleast_1d")


@public(method=False)
def atleast_2d(*tensors):
    """torch.atleast_2d: () -> (1, 1), (n,) -> (1, n)."""
    return _atleast(tensors, lambda s: (1,) * (2 - len(s)) + s if len(s) < 2 else s,
                    "atleast_2d")


@public(method=False)
def atleast_3d(*tensors):
    """torch.atleast_3d: () -> (1, 1, 1), (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    def shape_of(s):
        return {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)

    return _atleast(tensors, shape_of, "atleast_3d")


@public(method=False)
def broadcast_tensors(*tensors):
    """torch.broadcast_tensors: expanded views of the inputs in their common shape."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, *shape) for t in tensors)
