"""Movement ops: views that share the input's storage (view, reshape, permute, transpose,
expand, squeeze/unsqueeze, narrow, basic indexing) and the copies that must move data
(contiguous, clone); cat and stack live in join.py. A view op has a shape/stride rule and no
kernel."""

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
    """size, stride and storage_offset address x's storage (not x itself, which may be a
    view into part of it); a view reaching past the storage's end is refused."""
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"as_strided: mismatch in length of strides and shape (size "
                           f"{list(size)}, stride {list(stride)})")
    if any(n < 0 for n in size):
        raise RuntimeError(f"as_strided: negative size in {list(size)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, "
                           f"got strides: {list(stride)}")
    if storage_offset < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {storage_offset}")
    if all(size):
        need = storage_offset + builtins.sum((n - 1) * s for n, s in zip(size, stride)) + 1
        have = x._storage.nbytes // x.dtype.itemsize
        if need > have:
            raise RuntimeError(
                f"as_strided: sizes {list(size)}, strides {list(stride)} and storage offset "
                f"{storage_offset} need a storage of {need} elements, but the storage has "
                f"{have}")
    return size, stride, storage_offset


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
    """PyTorch's rule: g is summed onto the storage positions the view reads, and each of
    x's elements takes the sum at its own position, divided by the number of x's elements at
    that position when x overlaps itself. Positions outside x give it nothing. The maps from
    positions to elements are built on the host."""
    def positions(shape, strides, offset):
        p = np.full((1,) * len(shape), offset, np.int64)
        for d, (n, st) in enumerate(zip(shape, strides)):
            p = p + (np.arange(n, dtype=np.int64) * st).reshape(
                (1,) * d + (n,) + (1,) * (len(shape) - d - 1))
        return np.broadcast_to(p, tuple(shape)).reshape(-1)

    def index(a):
        t = registry.Tensor._empty((a.size,), dt.int64, g.device)
        if a.size:
            runtime.write(t._storage, np.ascontiguousarray(a, np.int64), owned=True)
        return t

    px = positions(x._shape, x._stride, x._offset)
    upos, inv, count = np.unique(px, return_inverse=True, return_counts=True)
    pv = positions(size, stride, storage_offset)
    k = np.searchsorted(upos, pv).clip(0, max(upos.size - 1, 0))
    inside = (upos[k] == pv) if upos.size else np.zeros(pv.shape, bool)
    gv = g.reshape(-1)
    if not inside.all():  # elements of the view outside x
        gv = gv.index_select(0, index(np.flatnonzero(inside)))
        k = k[inside]
    gu = registry.Tensor._empty((upos.size,), g.dtype, g.device)
    fill_(gu, 0)
    gu = apply(registry.REGISTRY["index_add"], gu, index(k), gv, dim=0, alpha=1)
    if upos.size == px.size:  # no overlap: x's elements in storage order
        gx = gu if (inv == np.arange(px.size)).all() else gu.index_select(0, index(inv))
    else:
        gx = gu.index_select(0, index(inv)) / index(count[inv])
    return (gx.reshape(*x._shape),)


AS_STRIDED = view_op("as_strided", _as_strided_rule, _as_strided_vjp)
SLICE_BACKWARD = register(OpDef(
    "slice_backward", "movement", None, _run_slice_backward,
    lambda g, x, out, shape, index: (apply(SLICE, g, index=index),),
    saves=(), saves_out=False))


# --- public functions -----------------------------------------------------------------


@public
def _given(name, args, value, kw):
    """A size or dims argument given unpacked, as one sequence, or by PyTorch's keyword."""
    if value is None:
        return args
    if args:
        raise TypeError(f"{name}() got multiple values for argument '{kw}'")
    return (value,)


@public
def view(input, *shape, size=None):
    shape = _given("view", shape, size, "size")
    if len(shape) == 1 and isinstance(shape[0], dt.dtype):
        raise NotImplementedError("view(dtype) is not supported; use .to(dtype)")
    return apply(VIEW, input, shape=_sizes(shape))


@public
def reshape(input, *sizes, shape=None):
    shape = infer_size(_sizes(_given("reshape", sizes, shape, "shape")), input.numel())
    if view_strides(input._shape, input._stride, shape) is None:
        input = contiguous(input)
    return apply(VIEW, input, shape=shape)


@public
def permute(input, *args, dims=None):
    return apply(PERMUTE, input, dims=_sizes(_given("permute", args, dims, "dims")))


@public(aliases=("swapdims",))
def transpose(input, dim0, dim1):
    nd = input.ndim
    d = list(range(nd))
    if nd == 0:  # (dims 0 and -1 name the scalar itself)
        wrap_dim(dim0, 0), wrap_dim(dim1, 0)
        return apply(PERMUTE, input, dims=())
    a, b = wrap_dim(dim0, nd), wrap_dim(dim1, nd)
    d[a], d[b] = d[b], d[a]
    return apply(PERMUTE, input, dims=tuple(d))


@public
def swapaxes(input, axis0, axis1):
    """torch.swapaxes: transpose with numpy's names."""
    return transpose(input, axis0, axis1)


@public
def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                           f"{input.ndim}D")
    if input.ndim == 2:
        return transpose(input, 0, 1)
    return apply(PERMUTE, input, dims=tuple(range(input.ndim)))


@public
def expand(input, *sizes, size=None):
    return apply(EXPAND, input, shape=_sizes(_given("expand", sizes, size, "size")))


@public(function=False)
def expand_as(input, other):
    return expand(input, *other.shape)


@public
def broadcast_to(input, size):
    return expand(input, *size)


@public
def squeeze(input, dim=None):
    if dim is not None and not isinstance(dim, (tuple, list)):
        dim = (dim,)
    return apply(SQUEEZE, input, dims=None if dim is None else tuple(dim))


@public
def unsqueeze(input, dim):
    return apply(UNSQUEEZE, input, dim=dim)


@public
def flatten(input, start_dim=0, end_dim=-1):
    nd = input.ndim
    if nd == 0:
        return reshape(input, 1)
    s, e = wrap_dim(start_dim, nd), wrap_dim(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    n = 1
    for k in input._shape[s:e + 1]:
        n *= k
    return reshape(input, *input._shape[:s], n, *input._shape[e + 1:])


@public
def unflatten(input, dim, sizes):
    d = wrap_dim(dim, input.ndim)
    sizes = infer_size(tuple(sizes), input._shape[d])
    return reshape(input, *input._shape[:d], *sizes, *input._shape[d + 1:])


@public
def narrow(input, dim, start, length):
    d = wrap_dim(dim, input.ndim)
    n = input._shape[d]
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
    return apply(SLICE, input, index=tuple(idx))


@public
def select(input, dim, index):
    d = wrap_dim(dim, input.ndim)
    n = input._shape[d]
    if not -n <= index < n:
        raise IndexError(
            f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
            f"dimension {d}"
        )
    return apply(SLICE, input, index=tuple([slice(None)] * d + [index]))


@public
def unbind(input, dim=0):
    d = wrap_dim(dim, input.ndim)
    return tuple(select(input, d, i) for i in range(input._shape[d]))


@public(aliases=("moveaxis",))
def movedim(input, source, destination):
    nd = input.ndim
    src = [wrap_dim(s, nd) for s in (source if isinstance(source, (tuple, list)) else [source])]
    dst = [wrap_dim(s, nd) for s in
           (destination if isinstance(destination, (tuple, list)) else [destination])]
    if nd == 0:  # dims 0 and -1 name a 0-d tensor's one element: nothing moves
        return permute(input)
    order = [i for i in range(nd) if i not in src]
    for s, d_ in sorted(zip(dst, src)):
        order.insert(s, d_)
    return permute(input, *order)


@public
def as_strided(input, size, stride, storage_offset=None):
    return apply(AS_STRIDED, input, size=tuple(size), stride=tuple(stride),
                 storage_offset=input._offset if storage_offset is None else storage_offset)


@public(function=False)
def unfold(input, dimension, size, step):
    """Tensor.unfold: a view of the windows of ``size`` every ``step`` along ``dimension``,
    as a new last dim."""
    d = wrap_dim(dimension, max(input.ndim, 1))
    n = input._shape[d] if input.ndim else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is "
                           f"{size}")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if input.ndim == 0:
        return as_strided(input, (size,), (1,))
    st = input._stride[d]
    shape = input._shape[:d] + ((n - size) // step + 1,) + input._shape[d + 1:] + (size,)
    stride = input._stride[:d] + (step * st,) + input._stride[d + 1:] + (st,)
    return as_strided(input, shape, stride)


@public(function=False)
def sum_to_size(input, *sizes, size=None):
    """Tensor.sum_to_size: ``input`` summed down to ``size``, which must expand to its shape."""
    shape = _sizes(_given("sum_to_size", sizes, size, "size"))
    try:
        ok = broadcast_shapes(shape, input._shape) == tuple(input._shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise RuntimeError(f"size {{{list(shape)}}} is not expandable to size "
                           f"{{{list(input._shape)}}}.")
    if not shape:  # PyTorch sums to () even a 0-d tensor: a new tensor, bool counted as int64
        return input.sum()
    return sum_to(input, shape)


@public
def ravel(input):
    """torch.ravel: the elements in row-major order, a view when ``input`` is contiguous."""
    return reshape(input, -1)


@public
def narrow_copy(input, dim, start, length):
    return narrow(input, dim, start, length).clone()


@public
def adjoint(input):
    """torch.adjoint: the last two dims swapped (the conjugate is the tensor itself)."""
    if input.ndim < 2:
        raise RuntimeError("tensor.adjoint() is only supported on matrices or batches of "
                           "matrices. Got 1-D tensor." if input.ndim == 1 else
                           "tensor.adjoint() is only supported on matrices or batches of "
                           "matrices. Got 0-D tensor.")
    return conj(transpose(input, -2, -1))


# Conjugation: eager (conj copies, so is_conj is always False); real tensors return
# themselves.


@public
def conj(input):
    return conj_physical(input) if input.dtype.is_complex else input


@public
def resolve_conj(input):
    return input


@public
def resolve_neg(input):
    return input


@public
def conj_physical(input):
    return _complex.conj(input) if input.dtype.is_complex else input


@public
def is_conj(input) -> bool:
    return False


@public
def is_neg(input) -> bool:
    return False


@public(method=False)
def real(input):
    """torch.real: a real tensor itself; of a complex one, its real view."""
    if not input.dtype.is_complex:
        return input
    return select(apply(registry.REGISTRY["view_as_real"], input), -1, 0)


@public(method=False)
def imag(input):
    if not input.dtype.is_complex:
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return select(apply(registry.REGISTRY["view_as_real"], input), -1, 1)


def _in_layout(x, order, copy: bool):
    """x with its dims laid out densely in ``order`` (outermost first): channels_last."""
    if not copy and is_dense_in(x._shape, x._stride, order):
        return x
    return permute(clone(permute(x, *order)), *_inverse(order))


@public
def contiguous(input, memory_format=None):
    """Tensor.contiguous; channels_last and channels_last_3d lay the channel dim innermost
    (clgraph._memory_format)."""
    order = channels_last_order(memory_format, input.ndim)
    if order is not None:
        return _in_layout(input, order, copy=False)
    if input._contig:
        return input
    return apply(op("to_dtype"), input, dtype=input.dtype)


@public
def clone(input, memory_format=None):
    """Tensor.clone: a contiguous copy (also for preserve_format, where PyTorch would keep a
    dense input's strides), or in channels_last layout when asked."""
    order = channels_last_order(memory_format, input.ndim)
    if order is not None:
        return _in_layout(input, order, copy=True)
    return apply(op("to_dtype"), input, dtype=input.dtype)


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
