"""Joining and splitting: cat, stack, split, chunk, hstack, vstack, tril, triu, flip, roll,
repeat, tile, repeat_interleave, meshgrid.

cat copies each input into its slice of the result with the elementwise cast-copy (so
type promotion across inputs costs nothing extra); split and chunk are views; tril/triu use
kernels/index.cl; flip copies a negative-stride view that never leaves this module. stack,
roll, repeat, tile, repeat_interleave and meshgrid are compositions of rows and views (their
gradients follow), not rows.
Imports registry, movement, elementwise, index, codegen and dtypes; never tensor."""

from __future__ import annotations

import itertools
import numbers
import warnings

import numpy as np

from .. import dtypes as dt
from ..shapes import collapse
from . import registry
from .elementwise import op
from .index import (
    CHUNK,
    _check_read,
    _kernel,
    _launch,
    _meta,
    _same_device,
    _upload,
    index_select,
)
from .movement import (
    EXPAND,
    _sizes,
    apply,
    clone,
    flatten,
    narrow,
    reshape,
    unsqueeze,
    view,
    wrap_dim,
)
from .registry import OpDef, public, register

# --- cat ----------------------------------------------------------------------------------


def _skipped(t) -> bool:
    """PyTorch's legacy rule: 1-d empty tensors are ignored by cat's shape checks."""
    return t.ndim == 1 and t._shape[0] == 0


def _run_cat(op_, args, attrs, out=None):
    tensors = args
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, registry.Tensor):
            raise TypeError(f"cat(): expected a sequence of Tensors, but element {i} is "
                            f"{type(t).__name__}")
        if t.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
    _same_device("cat", *tensors)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = dt.promote_types(dtype, t.dtype)
    live = [(i, t) for i, t in enumerate(tensors) if not _skipped(t)]
    if not live:
        shape, d = (0,), 0
    else:
        ref = live[0][1]
        d = wrap_dim(attrs["dim"], ref.ndim)
        total = 0
        for i, t in live:
            if t.ndim != ref.ndim:
                raise RuntimeError(f"Tensors must have same number of dimensions: got "
                                   f"{ref.ndim} and {t.ndim}")
            for k in range(ref.ndim):
                if k != d and t._shape[k] != ref._shape[k]:
                    raise RuntimeError(
                        f"Sizes of tensors must match except in dimension {d}. Expected size "
                        f"{ref._shape[k]} but got size {t._shape[k]} for tensor number {i} in "
                        "the list."
                    )
            total += t._shape[d]
        shape = ref._shape[:d] + (total,) + ref._shape[d + 1:]
    if out is None:
        out = registry.Tensor._empty(shape, dtype, tensors[0].device)
    elif out._shape != shape:
        raise RuntimeError(f"cat(): expected out= of shape {list(shape)}, got "
                           f"{list(out.shape)}")
    start = 0
    for _, t in live:
        n = t._shape[d]
        if n and t.numel():
            apply(op("to_dtype"), t, dtype=out.dtype, out=narrow(out, d, start, n))
        start += n
    return out


def _cat_vjp(g, *xs, out, dim):
    grads, start = [], 0
    d = wrap_dim(dim, g.ndim)
    for x in xs:
        if _skipped(x):
            grads.append(None)
            continue
        n = x.shape[d]
        grads.append(narrow(g, d, start, n))
        start += n
    return tuple(grads)


CAT = register(OpDef("cat", "join", lambda *xs, dim: np.concatenate(xs, axis=dim), _run_cat,
                     _cat_vjp, saves=(), saves_out=False))


@public(method=False, aliases=("concat",))
def cat(tensors, dim=0, *, out=None):
    """torch.cat: promotes dtypes across inputs; 1-d empty tensors are skipped."""
    if isinstance(tensors, registry.Tensor):
        raise TypeError("cat(): argument 'tensors' must be tuple of Tensors, not Tensor")
    return registry.apply(CAT, *tensors, dim=dim, out=out)


concat = cat


@public(method=False)
def concatenate(tensors, axis=0, out=None, *, dim=None):
    """torch.concatenate: cat with numpy's ``axis`` (``dim`` is taken too)."""
    return cat(tensors, axis if dim is None else dim, out=out)


@public(method=False)
def stack(tensors, dim=0, *, out=None):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    s0 = tensors[0]._shape
    for i, t in enumerate(tensors):
        if t._shape != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} "
                               f"at entry 0 and {list(t.shape)} at entry {i}")
    d = wrap_dim(dim, len(s0) + 1)
    return cat([unsqueeze(t, d) for t in tensors], d, out=out)


def _atleast(t, n):
    if t.ndim >= n:
        return t
    return reshape(t, *((1,) * (n - t.ndim) + t._shape))


@public(method=False)
def hstack(tensors, *, out=None):
    ts = [_atleast(t, 1) for t in tensors]
    if not ts:
        raise RuntimeError("hstack expects a non-empty TensorList")
    return cat(ts, 0 if ts[0].ndim == 1 else 1, out=out)


@public(method=False, aliases=("row_stack",))
def vstack(tensors, *, out=None):
    ts = [_atleast(t, 2) for t in tensors]
    if not ts:
        raise RuntimeError("vstack expects a non-empty TensorList")
    return cat(ts, 0, out=out)


row_stack = vstack

# --- split / chunk (views) ----------------------------------------------------------------


@public(aliases=("unsafe_split",))
def split(tensor, split_size_or_sections=None, dim=0, *, split_size=None):
    """torch.split: views of ``tensor``, an int size (the last may be smaller) or sizes
    (Tensor.split calls the argument ``split_size``)."""
    if split_size is not None:
        if split_size_or_sections is not None:
            raise TypeError("split() got multiple values for argument 'split_size'")
        split_size_or_sections = split_size
    if split_size_or_sections is None:
        raise TypeError("split() missing required argument 'split_size_or_sections'")
    if tensor.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = wrap_dim(dim, tensor.ndim)
    n = tensor._shape[d]
    if isinstance(split_size_or_sections, registry.Tensor):
        split_size_or_sections = split_size_or_sections.tolist()
    if isinstance(split_size_or_sections, numbers.Integral):
        s = int(split_size_or_sections)
        if s < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got "
                               f"split_size={s}")
        if s == 0 and n != 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {n}")
        count = max(-(-n // s), 1) if s else 1
        sizes = [s] * (count - 1) + [n - s * (count - 1)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes have only non-negative "
                               f"entries, but got split_sizes={sizes}")
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {d}), but got "
                               f"split_sizes={sizes}")
    parts, start = [], 0
    for s in sizes:
        parts.append(narrow(tensor, d, start, s))
        start += s
    return tuple(parts)


def _run_split_views(op_, args, attrs, out=None):
    (x,) = args
    d, outs, start = attrs["dim"], [], 0
    for s in attrs["sizes"]:
        shape = x._shape[:d] + (s,) + x._shape[d + 1:]
        outs.append(x._view(shape, x._stride, x._offset + start * x._stride[d]))
        start += s
    return tuple(outs)


def _joined(pieces, dim: int):
    """The tensor whose consecutive slices along ``dim`` the ``pieces`` already are (one
    storage, the same strides, each starting where the previous ends), as a view; None when
    they are not."""
    p0 = pieces[0]
    if any(p is None for p in pieces):
        return None
    st, stride, off = p0._storage, p0._stride, p0._offset
    for p in pieces:
        if (p._storage is not st or p._stride != stride or p._offset != off
                or p.dtype is not p0.dtype
                or p._shape[:dim] + p._shape[dim + 1:] != p0._shape[:dim] + p0._shape[dim + 1:]):
            return None
        off += p._shape[dim] * stride[dim]
    n = sum(p._shape[dim] for p in pieces)
    return p0._view(p0._shape[:dim] + (n,) + p0._shape[dim + 1:], stride, p0._offset)


def _split_views_vjp(gs, x, out, dim, sizes):
    """The pieces' gradients joined: a view when they already lie side by side in one
    buffer (attention's backward writes them so), else one cat."""
    if not any(g is not None and g.requires_grad for g in gs):
        joined = _joined(gs, dim)
        if joined is not None:
            return (joined,)
    return (cat(list(gs), dim),)


# The pieces of ``split`` as one node: their gradients meet in one cat (one kernel),
# where separate slices would each make a zero tensor of the whole, copy into it, and add
# them up; none when they already lie side by side. Used where all pieces are consumed
# (attention's packed projection).
SPLIT_VIEWS = register(OpDef(
    "split_views", "movement", lambda x, dim, sizes: tuple(np.split(
        x, np.cumsum(sizes)[:-1], axis=dim)), _run_split_views,
    _split_views_vjp, saves=(), saves_out=False))


def split_views(x, sizes, dim: int):
    """``x`` split along ``dim`` into pieces of ``sizes`` (views), one autograd node."""
    return registry.apply(SPLIT_VIEWS, x, dim=dim % x.ndim, sizes=tuple(sizes))


@public(aliases=("unsafe_chunk",))
def chunk(input, chunks, dim=0):
    """torch.chunk: views; may return fewer than ``chunks`` pieces, as PyTorch does."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if input.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = wrap_dim(dim, input.ndim)
    n = input._shape[d]
    size = -(-n // chunks)
    if size == 0 and n == 0:
        return split(input, [0] * chunks, d)
    return split(input, size, d)


# --- tril / triu --------------------------------------------------------------------------


def _run_tri(op_, args, attrs, out=None):
    (x,) = args
    if x.ndim < 2:
        raise RuntimeError(f"{op_.name}: input tensor must have at least 2 dimensions")
    res = out if out is not None else registry.Tensor._empty(x._shape, x.dtype, x.device)
    n = res.numel()
    if n == 0:
        return res
    bshape, (bsst, bost) = collapse(x._shape[:-2], [list(x._stride[:-2]),
                                                    list(res._stride[:-2])])
    shape = tuple(bshape) + x._shape[-2:]
    sst = list(bsst) + list(x._stride[-2:])
    ost = list(bost) + list(res._stride[-2:])
    info = x.device.info
    _launch(info, "tri_copy", _kernel(info, "tri_copy", x.dtype.itemsize), -(-n // CHUNK),
            {"out": res._storage.buf, "ooff": res._offset, "n": n, "r": len(shape),
             "meta": _meta(info, shape, sst, ost), "src": x._storage.buf, "soff": x._offset,
             "diag": int(attrs["diagonal"]), "lower": int(op_.name == "tril"),
             "fill": _fill_bits(attrs.get("fill", 0), x.dtype)})
    return res


def _fill_bits(value, d: dt.dtype):
    """``value`` in dtype ``d`` as the unsigned integer of the same bits (tri_copy copies
    bits)."""
    return dt.to_storage(np.array(value), d).view(f"u{d.itemsize}")[()]


def _tri_ref(keep):
    def ref(x, diagonal, fill=0):
        rows, cols = np.indices(x.shape[-2:])
        return np.where(keep(cols - rows, diagonal), x, np.asarray(fill, x.dtype))

    return ref


# ``fill`` (not a public argument; 0 by default) is what replaces the dropped triangle: a
# causal attention mask fills it with -inf in the same pass
TRIL = register(OpDef("tril", "join", _tri_ref(lambda k, d: k <= d), _run_tri,
                      lambda g, x, out, diagonal, fill=0: (apply(TRIL, g, diagonal=diagonal),),
                      saves=(), saves_out=False))
TRIU = register(OpDef("triu", "join", _tri_ref(lambda k, d: k >= d), _run_tri,
                      lambda g, x, out, diagonal, fill=0: (apply(TRIU, g, diagonal=diagonal),),
                      saves=(), saves_out=False))


@public
def tril(input, diagonal=0, *, out=None):
    return registry.apply(TRIL, input, diagonal=diagonal, out=out)


@public
def triu(input, diagonal=0, *, out=None):
    return registry.apply(TRIU, input, diagonal=diagonal, out=out)


@public(function=False)
def tril_(input, diagonal=0):
    return registry.apply(TRIL, input, diagonal=diagonal, out=input)


@public(function=False)
def triu_(input, diagonal=0):
    return registry.apply(TRIU, input, diagonal=diagonal, out=input)


# --- flip / roll / repeat / tile ----------------------------------------------------------


def _run_flip(op_, args, attrs, out=None):
    (x,) = args
    dims = [wrap_dim(d, x.ndim) for d in attrs["dims"]]
    seen = set()
    for d in dims:
        if d in seen:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        seen.add(d)
    if x.ndim == 0:
        return clone(x)
    stride, offset = list(x._stride), x._offset
    for d in dims:
        n = x._shape[d]
        if n > 1:
            offset += (n - 1) * stride[d]
            stride[d] = -stride[d]
    # a negative-stride view: the elementwise copy reads it like any strided view
    return clone(x._view(x._shape, stride, offset))


FLIP = register(OpDef("flip", "join", lambda x, dims: np.flip(x, dims).copy(), _run_flip,
                      lambda g, x, out, dims: (apply(FLIP, g, dims=dims),),
                      saves=(), saves_out=False))


def _dims(dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    return tuple(int(d) for d in dims)


@public
def flip(input, *args, dims=None):
    """torch.flip(input, dims); Tensor.flip also takes the dims unpacked."""
    if dims is not None:
        if args:
            raise TypeError("flip() got multiple values for argument 'dims'")
        args = (dims,)
    return registry.apply(FLIP, input, dims=_dims(args))


@public
def fliplr(input):
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, 1)


@public
def flipud(input):
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, 0)


@public
def roll(input, shifts, dims=None):
    """torch.roll: a cat of two narrows per rolled dim."""
    if dims is None:
        s = shifts if isinstance(shifts, numbers.Integral) else tuple(shifts)
        if not isinstance(s, numbers.Integral):
            if len(s) != 1:
                raise RuntimeError(f"shifts and dimensions must align. shifts: {len(s)}, dims:0")
            s = s[0]
        return view(roll(flatten(input), s, 0), *input.shape)
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims:{len(dims)}")
    x = input
    for s, d in zip(shifts, dims):
        d = wrap_dim(d, x.ndim)
        n = x._shape[d]
        if n == 0 or int(s) % n == 0:
            continue
        s = int(s) % n
        x = cat([narrow(x, d, n - s, s), narrow(x, d, 0, n - s)], d)
    return clone(x) if x is input else x


@public(function=False)
def repeat(input, *sizes, repeats=None):
    """Tensor.repeat: a view with interleaved size-1 dims, expanded, then copied."""
    if repeats is not None:
        if sizes:
            raise TypeError("repeat() got multiple values for argument 'repeats'")
        sizes = (repeats,)
    sizes = _sizes(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension "
                           f"{min(sizes)}: {list(sizes)}")
    shape = (1,) * (len(sizes) - input.ndim) + input._shape
    inter = [k for s in shape for k in (1, s)]
    wide = [k for r, s in zip(sizes, shape) for k in (r, s)]
    out_shape = tuple(r * s for r, s in zip(sizes, shape))
    return view(clone(apply(EXPAND, reshape(input, *inter), shape=tuple(wide))), *out_shape)


@public
def tile(input, *args, dims=None):
    if dims is not None:
        if args:
            raise TypeError("tile() got multiple values for argument 'dims'")
        args = (dims,)
    dims = _sizes(args)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, *dims)



def _repeat_counts(repeats, n: int) -> np.ndarray:
    """repeat_interleave's per-element counts as a host array of length ``n``."""
    if isinstance(repeats, registry.Tensor):
        if repeats.dtype.is_floating_point or repeats.dtype is dt.bool_:
            raise RuntimeError(f"repeat_interleave(): repeats must be an integer tensor, got "
                               f"{repeats.dtype}")
        if repeats.ndim > 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        counts = _check_read(repeats).reshape(-1).astype(np.int64)
        if counts.size == 1:
            counts = np.full(n, counts[0], dtype=np.int64)
        elif counts.size != n:
            raise RuntimeError(f"repeats must have the same size as input along dim, but got "
                               f"repeats.size(0) = {counts.size} and input.size(0) = {n}")
    elif isinstance(repeats, numbers.Integral) and not isinstance(repeats, bool):
        counts = np.full(n, int(repeats), dtype=np.int64)
    else:
        raise TypeError(f"repeat_interleave(): argument 'repeats' must be int or Tensor, not "
                        f"{type(repeats).__name__}")
    if (counts < 0).any():
        raise RuntimeError("repeats can not be negative")
    return counts


@public
def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """torch.repeat_interleave: each element (slice along ``dim``; of the flattened input
    when ``dim`` is None) repeated ``repeats`` times; ``repeat_interleave(repeats)`` gives
    the indices 0..n-1 repeated. Tensor repeats are read on the host to size the result."""
    if repeats is None:  # repeat_interleave(repeats)
        counts = _repeat_counts(input, input.numel())
        return _upload(np.repeat(np.arange(counts.size, dtype=np.int64), counts), input.device)
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else wrap_dim(dim, max(x.ndim, 1))
    if x.ndim == 0:
        x = x.reshape(1)
    n = x._shape[d]
    if isinstance(repeats, numbers.Integral) and not isinstance(repeats, bool) or (
            isinstance(repeats, registry.Tensor) and repeats.numel() == 1 and n != 1):
        r = int(_repeat_counts(repeats, 1)[0])
        wide = list(x._shape)
        wide.insert(d + 1, r)
        out = clone(apply(EXPAND, unsqueeze(x, d + 1), shape=tuple(wide)))
        out = flatten(out, d, d + 1)
    else:
        counts = _repeat_counts(repeats, n)
        idx = _upload(np.repeat(np.arange(n, dtype=np.int64), counts), x.device)
        out = index_select(x, d, idx)
    if output_size is not None and out._shape[d] != output_size:
        raise RuntimeError(f"repeat_interleave(): output_size {output_size} does not match "
                           f"the result's size {out._shape[d]}")
    return out


@public(method=False)
def meshgrid(*tensors, indexing: str | None = None):
    """torch.meshgrid: coordinate grids (views) of 0-d or 1-d tensors; ``indexing`` "ij"
    (the default, with PyTorch's warning when not given) or "xy" (first two dims swapped)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but '
                           f"received: {indexing}")
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for t in tensors:
        if not isinstance(t, registry.Tensor):
            raise TypeError(f"meshgrid(): expected Tensors, got {type(t).__name__}")
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list "
                               f"but got: {t.ndim}D tensor")
        if t.dtype is not tensors[0].dtype:
            raise RuntimeError("torch.meshgrid: expects all tensors to have the same dtype")
    _same_device("meshgrid", *tensors)
    pos = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        pos[0], pos[1] = 1, 0
    shape = [0] * len(tensors)
    for t, p in zip(tensors, pos):
        shape[p] = t.numel()
    out = []
    for t, p in zip(tensors, pos):
        view_shape = [1] * len(tensors)
        view_shape[p] = t.numel()
        out.append(apply(EXPAND, reshape(t, *view_shape), shape=tuple(shape)))
    return tuple(out)


# --- more stacking, splitting and rearranging (compositions) ------------------------------


def _one_of(name, value, **named):
    """The one argument given positionally or under one of PyTorch's keywords for it."""
    given = [v for v in (value, *named.values()) if v is not None]
    if len(given) != 1:
        raise TypeError(f"{name}() takes exactly one of indices_or_sections, "
                        f"{', '.join(named)} (got {len(given)})")
    return given[0]


@public
def tensor_split(input, indices_or_sections=None, dim=0, *, sections=None, indices=None,
                 tensor_indices_or_sections=None):
    """torch.tensor_split: views; an int n gives n parts (the first n % size one longer),
    a list (or 1-d tensor) of indices gives the parts between them. PyTorch's keywords
    ``sections``, ``indices`` and ``tensor_indices_or_sections`` name the second argument."""
    indices_or_sections = _one_of("tensor_split", indices_or_sections, sections=sections,
                                  indices=indices,
                                  tensor_indices_or_sections=tensor_indices_or_sections)
    if input.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a "
                           "tensor with 0 dims")
    d = wrap_dim(dim, input.ndim)
    n = input._shape[d]
    spec = indices_or_sections
    if isinstance(spec, registry.Tensor):
        if spec.dtype.is_floating_point or spec.dtype is dt.bool_ or spec.ndim > 1:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a "
                               f"zero-dimensional or one-dimensional tensor of integers, but "
                               f"got a {spec.ndim}-D tensor of dtype {spec.dtype.scalar_type}")
        spec = spec.item() if spec.ndim == 0 else spec.tolist()
    if isinstance(spec, numbers.Integral):
        if spec <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {spec}")
        q, r = divmod(n, int(spec))
        bounds, start = [], 0
        for i in range(int(spec) - 1):
            start += q + (i < r)
            bounds.append(start)
    else:
        bounds = [int(i) for i in spec]
    parts, start = [], 0
    for stop in bounds + [n]:
        lo = min(max(start if start >= 0 else start + n, 0), n)
        hi = min(max(stop if stop >= 0 else stop + n, 0), n)
        parts.append(narrow(input, d, lo, max(hi - lo, 0)))
        start = stop
    return tuple(parts)


@public(method=False)
def dstack(tensors, *, out=None):
    """torch.dstack: cat along dim 2 of the inputs made at least 3-d."""
    if not tensors:
        raise RuntimeError("dstack expects a non-empty TensorList")
    ts = [registry.functions.atleast_3d(t) for t in tensors]
    return cat(ts, 2, out=out)


@public(method=False)
def column_stack(tensors, *, out=None):
    """torch.column_stack: 0-d and 1-d inputs become columns, then hstack."""
    if not tensors:
        raise RuntimeError("column_stack expects a non-empty TensorList")
    ts = [reshape(t, t.numel(), 1) if t.ndim <= 1 else t for t in tensors]
    return hstack(ts, out=out)


@public(method=False)
def block_diag(*tensors):
    """torch.block_diag: the inputs (0-d, 1-d as a row, or 2-d) on the diagonal of a zero
    matrix of their promoted dtype."""
    mats = []
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer "
                               f"dimensions. Input {i} has {t.ndim} dimensions")
        mats.append(reshape(t, *((1,) * (2 - t.ndim) + t._shape)))
    if not mats:
        return registry.Tensor._empty((1, 0), dt.get_default_dtype(), registry.default_device())
    _same_device("block_diag", *mats)
    d = mats[0].dtype
    for m in mats[1:]:
        d = dt.promote_types(d, m.dtype)
    rows = sum(m._shape[0] for m in mats)
    cols = sum(m._shape[1] for m in mats)
    pieces, c = [], 0
    for m in mats:
        r, w = m._shape
        left = m.new_zeros(r, c, dtype=d)
        right = m.new_zeros(r, cols - c - w, dtype=d)
        pieces.append(cat([left, m.to(d), right], 1))
        c += w
    out = cat(pieces, 0)
    assert out._shape == (rows, cols)
    return out


@public(method=False)
def cartesian_prod(*tensors):
    """torch.cartesian_prod: the rows of all combinations of the 1-d inputs (one input:
    itself)."""
    for t in tensors:
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return registry.functions.stack([flatten(g) for g in grids], 1)


@public(method=False)
def combinations(input, r=2, with_replacement=False):
    """torch.combinations: the r-length combinations of a 1-d tensor's elements, in
    itertools' order (the row indices are made on the host: they depend only on sizes)."""
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return input.new_zeros(0)
    pick = (itertools.combinations_with_replacement if with_replacement
            else itertools.combinations)
    idx = np.array(list(pick(range(input._shape[0]), r)), dtype=np.int64).reshape(-1, r)
    if idx.shape[0] == 0:  # no combinations: still a result of input, as in PyTorch
        return reshape(input.narrow(0, 0, 0), 0, 1).expand(0, r).clone()
    flat = index_select(input, 0, _upload(idx.reshape(-1), input.device))
    return reshape(flat, idx.shape[0], r)


@public
def rot90(input, k=1, dims=(0, 1)):
    """torch.rot90: k quarter turns in the plane ``dims``, from the first towards the
    second."""
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = wrap_dim(dims[0], input.ndim), wrap_dim(dims[1], input.ndim)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and "
                           f"dim1 = {d1}")
    k = int(k) % 4
    if k == 1:
        return registry.functions.transpose(flip(input, d1), d0, d1)
    if k == 2:
        return flip(input, d0, d1)
    if k == 3:
        return flip(registry.functions.transpose(input, d0, d1), d1)
    return clone(input)


@public
def diff(input, n=1, dim=-1, prepend=None, append=None):
    """torch.diff: the n-th forward difference along ``dim`` (logical_xor for bool), after
    ``prepend`` and ``append`` are joined on."""
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = wrap_dim(dim, input.ndim)
    x = input
    if prepend is not None or append is not None:
        parts = []
        for p in (prepend, x, append):
            if p is None:
                continue
            if not isinstance(p, registry.Tensor):
                shape = list(x._shape)
                shape[d] = 1
                p = x.new_full(shape, p)
            elif p.ndim == 0:
                shape = list(x._shape)
                shape[d] = 1
                p = p.expand(*shape)
            parts.append(p)
        x = cat(parts, d)
    for _ in range(n):
        m = x._shape[d]
        if m == 0:
            break
        a, b = narrow(x, d, 1, m - 1), narrow(x, d, 0, m - 1)
        x = registry.functions.logical_xor(a, b) if x.dtype is dt.bool_ else a - b
    return clone(x) if x is input else x


@public(aliases=("unsafe_split_with_sizes",))
def split_with_sizes(input, split_sizes, dim=0):
    """torch.split_with_sizes: views of ``input`` of the given sizes along ``dim``."""
    return split(input, [int(s) for s in split_sizes], dim)


def _split_at(input, indices_or_sections, dim: int, name: str, min_dims: int):
    """hsplit / vsplit / dsplit: tensor_split along ``dim``; an int must divide the size."""
    if input.ndim < min_dims:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {min_dims} "
                           f"dimension, but got a tensor with {input.ndim} dimensions!")
    if isinstance(indices_or_sections, numbers.Integral):
        n, s = input._shape[dim], int(indices_or_sections)
        if s == 0 or n % s:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but "
                               f"the size of the dimension {n} is not divisible by the "
                               f"split_size {s}!")
    return tensor_split(input, indices_or_sections, dim)


@public
def hsplit(input, indices_or_sections=None, *, sections=None, indices=None):
    indices_or_sections = _one_of("hsplit", indices_or_sections, sections=sections,
                                  indices=indices)
    return _split_at(input, indices_or_sections, 1 if input.ndim > 1 else 0, "hsplit", 1)


@public
def vsplit(input, indices_or_sections=None, *, sections=None, indices=None):
    indices_or_sections = _one_of("vsplit", indices_or_sections, sections=sections,
                                  indices=indices)
    return _split_at(input, indices_or_sections, 0, "vsplit", 2)


@public
def dsplit(input, indices_or_sections=None, *, sections=None, indices=None):
    indices_or_sections = _one_of("dsplit", indices_or_sections, sections=sections,
                                  indices=indices)
    return _split_at(input, indices_or_sections, 2, "dsplit", 3)
