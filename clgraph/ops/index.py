"""Indexing: basic indexing (views), advanced integer/boolean indexing (index, index_put),
gather, scatter, scatter_add, scatter_reduce (and index_reduce on it), index_select,
index_add, masked_fill, masked_select, nonzero.

Kernels live in kernels/index.cl and take shapes, strides and offsets as arguments. Index
tensors are read on the host and validated before any kernel addresses memory through them,
as PyTorch CPU does; the data itself never leaves the device. Scatters run one work-item
per fiber looping over its contributions in order, so duplicates resolve deterministically
(the last write wins; sums are added in index order). Imports registry, movement,
elementwise, codegen, runtime and dtypes; never tensor or creation."""

from __future__ import annotations

import builtins
import itertools
import numbers
import warnings
import weakref

import numpy as np
import pyopencl as cl

from .. import codegen, runtime
from .. import dtypes as dt
from ..creation import zeros
from ..shapes import broadcast_shapes, collapse, contiguous_strides
from . import registry
from .elementwise import _pyname, op
from .math import copy_, fill_
from .movement import EXPAND, SLICE, apply, clone, narrow, wrap_dim
from .registry import OpDef, public, register

# --- errors -------------------------------------------------------------------------------


class IndexOutOfRange(IndexError, RuntimeError):
    """An out-of-range index. PyTorch raises RuntimeError for gather/scatter and IndexError
    elsewhere; this is both, so either ``except`` catches it."""


def _check_range(values: np.ndarray, size: int, dim: int, negative: bool, message=None,
                 exc=IndexError) -> None:
    """Raise for the first index outside [-size, size) (negative) or [0, size)."""
    if values.size == 0:
        return
    lo = -size if negative else 0
    if values.min() >= lo and values.max() < size:
        return
    flat = values.ravel()
    v = int(flat[np.flatnonzero((flat < lo) | (flat >= size))[0]])
    text = f"index {v} is out of bounds for dimension {dim} with size {size}"
    raise exc(text if message is None else f"{message} ({text})")


_bounds_cache: "weakref.WeakKeyDictionary" = None


def _index_info(index):
    """(min, max, all distinct) of a non-empty device index tensor, memoized per storage
    version and view."""
    global _bounds_cache
    if _bounds_cache is None:
        _bounds_cache = weakref.WeakKeyDictionary()
    per = _bounds_cache.setdefault(index._storage, {})
    key = (index._storage.version, index._offset, index._shape, index._stride)
    info = per.get(key)
    if info is None:
        host = _check_read(index)
        if len(per) > 8 or any(k[0] != key[0] for k in per):
            per.clear()  # entries of older versions are dead
        info = per[key] = (int(host.min()), int(host.max()), np.unique(host).size == host.size)
    return info


def _check_read(index) -> np.ndarray:
    """The host copy a validity check needs (inside a compiled trace: not a host read the
    graph depends on; the compiled call repeats the check on each call's index)."""
    if not runtime.observers:
        return index._host()
    runtime.notify(registry.IndexRead(True))
    try:
        return index._host()
    finally:
        runtime.notify(registry.IndexRead(False))


def _index_unique(index) -> bool:
    """Whether a device index tensor holds distinct values (scatter-add picks its kernel)."""
    u = _index_info(index)[2]
    if runtime.observers:
        runtime.notify(registry.IndexCheck(index, lambda t: _index_info(t)[2] == u))
    return u


def _check_index(index, size: int, dim: int, negative: bool = False, message=None,
                 exc=IndexError) -> None:
    """_check_range for a device index tensor. Its (min, max) is remembered per storage
    version and view, so a training loop that gathers with the same labels every step reads
    them back once, not every step (a host read drains the whole queue)."""
    if index.numel() == 0:
        return
    if runtime.observers:
        runtime.notify(registry.IndexCheck(
            index, lambda t: _check_index(t, size, dim, negative, message, exc) or True))
    mm = _index_info(index)
    lo = -size if negative else 0
    if mm[0] >= lo and mm[1] < size:
        return
    _check_range(_check_read(index), size, dim, negative, message, exc)


def _same_device(name, *ts):
    dev = ts[0].device
    for t in ts[1:]:
        if t.device != dev:
            raise RuntimeError(
                f"Expected all tensors to be on the same device, but found at least two "
                f"devices, {dev} and {t.device}! (when checking argument for {name})"
            )


def _check_writable(t):
    if any(s == 0 and n > 1 for n, s in zip(t._shape, t._stride)):
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation."
        )


# --- kernels ------------------------------------------------------------------------------

_BITS = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong"}  # copies move bits, not values
CHUNK = 16  # elements per work-item of index_gather and tri_copy: one div/mod per row, not
# per element (index_select of 5000x1000 floats: 12 ms -> 5.6 ms on the 2-core PoCL machine)


def _kernel(info, name: str, itemsize: int = 1, idx: dt.dtype = dt.int64, add=None):
    """``name`` from kernels/index.cl: copy kernels per element size, the accumulating
    scatter per dtype (``add``)."""
    ix = "int" if idx is dt.int32 else "long"
    if add is None:
        defines = (("T", _BITS[itemsize]), ("IDX", ix), ("ADD", "0"), ("CHUNK", str(CHUNK)))
    else:
        codegen.check_dtype(info, add)
        defines = codegen.storage_defines(add) + (
            ("IDX", ix), ("ADD", "1"), ("ACC", add.compute),
            ("IS_BOOL", str(int(add is dt.bool_))))
        if add is dt.float64:
            defines += (("USE_FP64", "1"),)
    return codegen.template_kernel(info, "index.cl", name, defines)


def _meta(info, *lists) -> cl.Buffer:
    """Shape and strides for a launch, as a small read-only device buffer (about 1 us)."""
    arr = np.array([v for lst in lists for v in lst] or [0], dtype=np.int64)
    return cl.Buffer(info.context, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR,
                     hostbuf=arr)


def _launch(info, name, kern, n, values: dict):
    """Run ``kern`` (kernels/index.cl) on n work-items, its arguments by parameter name."""
    L = codegen.local_size(info)
    registry.launch(info, kern, name, (-(-n // L) * L,), (L,), codegen.pack(kern, values))


def _gather(out, src, sst, idx, ist, mult: int) -> None:
    """out[c] = src[sum c*sst + idx[sum c*ist] * mult] over out's (contiguous) shape."""
    n = out.numel()
    if n == 0:
        return
    shape, (sst, ist, _) = collapse(out._shape, [list(sst), list(ist),
                                                 list(contiguous_strides(out._shape))])
    info = out.device.info
    kern = _kernel(info, "index_gather", out.dtype.itemsize, idx.dtype)
    _launch(info, "index_gather", kern, -(-n // CHUNK),
            {"out": out._storage.buf, "n": n, "r": len(shape),
             "meta": _meta(info, shape, sst, ist), "src": src._storage.buf, "soff": src._offset,
             "idx": idx._storage.buf, "ioff": idx._offset, "mult": mult})


def _scatter(dst, dst_st, src, src_st, idx, idx_st, fiber_shape, K: int, ik: int, sk: int,
             dmult: int, add: bool, unique: bool) -> None:
    """For each fiber c and k < K in order: dst[c*dst_st + idx[c*idx_st + k*ik] * dmult]
    (+)= src[c*src_st + k*sk]. Fibers never share destinations; within one fiber k runs in
    order unless ``unique`` says no two k hit the same element."""
    nf = 1
    for s in fiber_shape:
        nf *= s
    if nf == 0 or K == 0:
        return
    shape, (dst_st, src_st, idx_st) = collapse(tuple(fiber_shape),
                                               [list(dst_st), list(src_st), list(idx_st)])
    chunks = 1
    if unique and nf < 1024:
        chunks = min(K, -(-1024 // nf))
    kchunk = -(-K // chunks)
    chunks = -(-K // kchunk)
    total = nf * chunks
    info = dst.device.info
    name = "index_scatter_add" if add else "index_scatter"
    kern = _kernel(info, name, dst.dtype.itemsize, idx.dtype, dst.dtype if add else None)
    _launch(info, name, kern, total,
            {"dst": dst._storage.buf, "doff": dst._offset, "nf": nf, "r": len(shape),
             "meta": _meta(info, shape, dst_st, src_st, idx_st), "src": src._storage.buf,
             "soff": src._offset, "idx": idx._storage.buf, "ioff": idx._offset, "K": K,
             "kchunk": kchunk, "ik": ik, "sk": sk, "dmult": dmult, "total": total})


def _nonzero(mask, target_strides=None):
    """Device nonzero of a 1-byte mask view: (nnz, ndim) coordinates, or (nnz,) offsets
    sum c_d * target_strides[d] when target strides are given."""
    T = registry.Tensor
    info = mask.device.info
    n, r = mask.numel(), mask.ndim
    coords = target_strides is None
    chunk = max(64, -(-n // 2048))
    groups = -(-n // chunk)
    total = 0
    if groups:
        counts = T._empty((groups,), dt.int64, mask.device)
        meta = _meta(info, mask._shape, mask._stride, target_strides or ())
        args = {"mask": mask._storage.buf, "moff": mask._offset, "n": n, "r": r, "meta": meta,
                "chunk": chunk}
        _launch(info, "nonzero_count", _kernel(info, "nonzero_count"), groups,
                {**args, "counts": counts._storage.buf})
        c = counts._host()
        starts = np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64)
        total = int(c.sum())
    out = T._empty((total, r) if coords else (total,), dt.int64, mask.device)
    if total:
        sbuf = cl.Buffer(info.context, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR,
                         hostbuf=starts)
        _launch(info, "nonzero_write", _kernel(info, "nonzero_write"), groups,
                {**args, "starts": sbuf, "out": out._storage.buf, "coords": int(coords)})
    return out


def _upload(arr: np.ndarray, device, d: dt.dtype | None = None):
    """``arr`` on ``device``: host storage of dtype ``d`` (by default arr's own)."""
    t = registry.Tensor._empty(arr.shape, d or dt.from_numpy_dtype(arr.dtype), device)
    runtime.write(t._storage, np.ascontiguousarray(arr))
    return t


def _as_mask_bytes(x):
    """A 1-byte view whose nonzero bytes are x's nonzero elements."""
    return x if x.dtype.itemsize == 1 else apply(op("ne"), x, 0)


# --- advanced indexing: the resolved index shared by index and index_put -----------------


class _ResolvedIndex:
    """Where an advanced index reads: result shape, the block of broadcast index dims in
    it (at ``bpos``, shape ``bshape``), the indexed tensor's remaining dims in result order
    (``rest``) and ``lin``, the element offsets (int64, shape bshape) the indices select."""

    __slots__ = ("bpos", "bshape", "host", "lin", "rest", "shape", "unique")


def _is_mask(t) -> bool:
    return t.dtype is dt.bool_ or t.dtype is dt.uint8


def _mask_error(x, mask_shape, d, j):
    raise IndexError(
        f"The shape of the mask {list(mask_shape)} at index {j} does not match the shape of "
        f"the indexed tensor {list(x.shape)} at index {d + j}"
    )


def _resolve_index(x, indices, dims) -> _ResolvedIndex:
    """Resolve index tensors at ``dims`` of x into offsets; raises PyTorch's IndexErrors."""
    p = _ResolvedIndex()
    if len(indices) == 1 and _is_mask(indices[0]):
        idims = _mask_offsets(p, x, indices[0], dims[0])
    elif all(t.dtype.kind == 1 for t in indices):
        idims = _device_offsets(p, x, indices, dims)
    else:
        idims = _host_offsets(p, x, indices, dims)
    p.rest = [d for d in range(x.ndim) if d not in idims]
    adjacent = idims == list(range(idims[0], idims[-1] + 1))
    p.bpos = idims[0] if adjacent else 0
    before = [d for d in p.rest if d < p.bpos] if adjacent else []
    after = [d for d in p.rest if d not in before]
    p.shape = (tuple(x._shape[d] for d in before) + tuple(p.bshape)
               + tuple(x._shape[d] for d in after))
    return p


def _mask_offsets(p: _ResolvedIndex, x, m, d: int) -> list[int]:
    """A lone bool or uint8 mask at dim d: the offsets of its nonzero elements, found on the
    device. Fills p's offsets; returns the indexed dims."""
    for j, n in enumerate(m._shape):
        if d + j >= x.ndim or x._shape[d + j] != n:
            _mask_error(x, m._shape, d, j)
    p.lin = _nonzero(m, x._stride[d:d + m.ndim])
    p.bshape = p.lin._shape
    p.unique, p.host = True, None
    return list(range(d, d + m.ndim))


def _device_offsets(p: _ResolvedIndex, x, indices, dims) -> list[int]:
    """Integer index tensors (x[idx], x[i, j], x[:, idx] = v): offsets computed on the
    device. Fills p's offsets; returns the indexed dims."""
    # the range checks read each index's min and max once per version (a compiled call
    # repeats them, and whether any index is negative, on each call)
    try:
        p.bshape = tuple(np.broadcast_shapes(*[t._shape for t in indices]))
    except ValueError:
        raise IndexError(
            "shape mismatch: indexing tensors could not be broadcast together with shapes "
            + ", ".join(str(list(t.shape)) for t in indices)) from None
    lin, negative = None, False
    for t, d in zip(indices, dims):
        n = x._shape[d]
        _check_index(t, n, d, negative=True)
        lo = _index_info(t)[0] if t.numel() else 0
        negative |= lo < 0
        if runtime.observers:
            runtime.notify(registry.IndexCheck(
                t, lambda u, neg=lo < 0: (u.numel() > 0 and _index_info(u)[0] < 0) == neg))
        v = t if t.dtype is dt.int64 else t.to(dt.int64)
        if lo < 0:
            v = apply(op("where"), v < 0, v + n, v)
        if x._stride[d] != 1:
            v = v * x._stride[d]
        lin = v if lin is None else lin + v
    p.lin = apply(EXPAND, lin, shape=p.bshape).contiguous()
    p.host = None
    # x[[-1, n - 1]] = v writes one element twice: negative or several indices take
    # the path that tolerates repeats
    if not p.lin.numel():
        p.unique = True
    elif len(indices) == 1 and not negative:
        p.unique = _index_unique(indices[0])
    else:
        p.unique = False
    return list(dims)


def _host_offsets(p: _ResolvedIndex, x, indices, dims) -> list[int]:
    """Masks among several indices: all read on the host, the offsets uploaded. Fills p's
    offsets; returns the indexed dims."""
    host = []  # (dim, int array)
    for t, d in zip(indices, dims):
        if _is_mask(t):
            for j, n in enumerate(t._shape):
                if d + j >= x.ndim or x._shape[d + j] != n:
                    _mask_error(x, t._shape, d, j)
            nz = _nonzero(_as_mask_bytes(t))._host()
            host += [(d + j, nz[:, j]) for j in range(t.ndim)]
        elif t.dtype.kind == 1:
            host.append((d, t._host().astype(np.int64, copy=False)))
        else:
            raise IndexError("tensors used as indices must be long, int, byte or bool "
                             "tensors")
    try:
        p.bshape = tuple(np.broadcast_shapes(*[a.shape for _, a in host]))
    except ValueError:
        raise IndexError(
            "shape mismatch: indexing tensors could not be broadcast together with shapes "
            + ", ".join(str(list(a.shape)) for _, a in host)
        ) from None
    lin = np.zeros(p.bshape, dtype=np.int64)
    for d, a in host:
        n = x._shape[d]
        _check_range(a, n, d, negative=True)
        lin += np.where(a < 0, a + n, a) * x._stride[d]
    p.lin = _upload(lin, x.device)
    p.unique, p.host = None, lin  # uniqueness: computed by index_put when needed
    return [d for d, _ in host]


def _split_dims(p: _ResolvedIndex):
    """Per result dim: (x dim or None for index dims, position within the index block)."""
    nb = len(p.bshape)
    before = p.rest[:p.bpos] if p.bpos else []
    after = p.rest[len(before):]
    return [(d, None) for d in before] + [(None, j) for j in range(nb)] + [
        (d, None) for d in after]


def _run_index(op_, args, attrs, out=None):
    x, indices = args[0], args[1:]
    _same_device("index", x, *indices)
    p = _resolve_index(x, indices, attrs["dims"])
    res = registry.Tensor._empty(p.shape, x.dtype, x.device)
    bst = contiguous_strides(p.bshape)
    sst, ist = [], []
    for d, j in _split_dims(p):
        sst.append(0 if d is None else x._stride[d])
        ist.append(0 if j is None else bst[j])
    _gather(res, x, sst, p.lin, ist, 1)
    return res


def _merged_stride(shape, strides):
    """The one stride that walks these dims in row-major order, or None if there is none."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if not dims:
        return 0
    for (_, s0), (n1, s1) in itertools.pairwise(dims):
        if s0 != s1 * n1:
            return None
    return dims[-1][1]


def _run_index_put(op_, args, attrs, out=None):
    x, values, indices = args[0], args[1], args[2:]
    _same_device("index_put_", x, values, *indices)
    if values.dtype is not x.dtype:
        raise RuntimeError(
            f"Index put requires the source and destination dtypes match, got "
            f"{_pyname(x.dtype)} for the destination and {_pyname(values.dtype)} for the "
            "source."
        )
    dst = out if out is not None else clone(x)
    _check_writable(dst)
    p = _resolve_index(dst, indices, attrs["dims"])
    try:
        vshape = broadcast_shapes(values._shape, p.shape)
        if vshape != p.shape:
            raise RuntimeError
    except RuntimeError:
        raise RuntimeError(
            f"shape mismatch: value tensor of shape {list(values.shape)} cannot be broadcast "
            f"to indexing result of shape {list(p.shape)}"
        ) from None
    if values._storage is dst._storage:
        values = clone(values)
    v = apply(EXPAND, values, shape=p.shape)
    nb = len(p.bshape)
    # the kernel walks the index block with one stride; a broadcast that cannot is copied
    sk = _merged_stride(p.bshape, v._stride[p.bpos:p.bpos + nb])
    if sk is None:
        v = clone(v)
        sk = _merged_stride(p.bshape, v._stride[p.bpos:p.bpos + nb])
    K = 1
    for n in p.bshape:
        K *= n
    fdims = [(d, k) for k, (d, j) in enumerate(_split_dims(p)) if d is not None]
    unique = p.unique
    if unique is None:
        unique = np.unique(p.host).size == p.host.size
    _scatter(dst, [dst._stride[d] for d, _ in fdims], v, [v._stride[k] for _, k in fdims],
             p.lin, [0] * len(fdims), [v._shape[k] for _, k in fdims], K, 1, sk, 1,
             add=attrs["accumulate"], unique=unique)
    return dst


# --- gather / scatter / index_select / index_add ------------------------------------------


def _shape1(t):
    """Shape and strides treating a 0-d tensor as 1-d."""
    return (t._shape, t._stride) if t._shape else ((1,), (1,))


def _run_gather(op_, args, attrs, out=None):
    x, index = args
    _same_device("gather", x, index)
    if index.dtype is not dt.int64:
        raise RuntimeError("gather(): Expected dtype int64 for index")
    xs, xst = _shape1(x)
    ixs, ist = _shape1(index)
    if len(xs) != len(ixs):
        raise RuntimeError("Index tensor must have the same number of dimensions as input "
                           "tensor")
    d = wrap_dim(attrs["dim"], x.ndim)
    for k in range(len(xs)):
        if k != d and ixs[k] > xs[k]:
            raise RuntimeError(
                f"Size does not match at dimension {k} expected index {list(index.shape)} to "
                f"be smaller than self {list(x.shape)} apart from dimension {d}"
            )
    res = registry.Tensor._empty(index._shape, x.dtype, x.device)
    if res.numel() == 0:
        return res
    _check_index(index, xs[d], d, negative=False, exc=IndexOutOfRange)
    sst = [0 if k == d else s for k, s in enumerate(xst)]
    if not index._shape:
        sst, ist = [], []
    _gather(res, x, sst, index, ist, xst[d])
    return res


def _scatter_checks(name, x, index, src, d):
    xs, _ = _shape1(x)
    ixs, _ = _shape1(index)
    if index.dtype is not dt.int64:
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")
    if src.dtype is not x.dtype:
        raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
    if len(ixs) != len(xs):
        raise RuntimeError("Index tensor must have the same number of dimensions as self "
                           "tensor")
    ss, _ = _shape1(src)
    if len(ss) != len(xs):
        raise RuntimeError("Index tensor must have the same number of dimensions as src "
                           "tensor")
    for k in range(len(xs)):
        if ixs[k] > ss[k] or (k != d and ixs[k] > xs[k]):
            raise RuntimeError(
                f"Expected index {list(index.shape)} to be smaller than self {list(x.shape)} "
                f"apart from dimension {d} and to be smaller size than src {list(src.shape)}"
            )


def _run_scatter(op_, args, attrs, out=None):
    x, index, src = args
    add = op_.name == "scatter_add"
    d = wrap_dim(attrs["dim"], x.ndim)
    if not isinstance(src, registry.Tensor):
        src = apply(EXPAND, _scalar(src, x.dtype, x.device), shape=index._shape)
    _same_device(op_.name, x, index, src)
    _scatter_checks(op_.name, x, index, src, d)
    dst = out if out is not None else clone(x)
    _check_writable(dst)
    if index.numel() == 0:
        return dst
    xs, dst_st = _shape1(dst)
    _check_index(index, xs[d], d, negative=False, exc=IndexOutOfRange)
    if src._storage is dst._storage:
        src = clone(src)
    ixs, ist = _shape1(index)
    _, sst = _shape1(src)
    keep = [k for k in range(len(ixs)) if k != d]
    _scatter(dst, [dst_st[k] for k in keep], src, [sst[k] for k in keep], index,
             [ist[k] for k in keep], [ixs[k] for k in keep], ixs[d], ist[d], sst[d],
             dst_st[d], add=add, unique=False)
    return dst


def _segment_reduce(x, d, index, src, combine):
    """``x`` with each position hit by ``index`` replaced by ``combine`` folded over its
    contributions in ``src``: the contributions are sorted by destination (stably) along
    ``d``, a segmented scan (log2 K doubling steps) folds each run of equal destinations into
    its last element, and a scatter in that order leaves each run's last value."""
    K = index.shape[d]
    src = src[tuple(slice(0, n) for n in index.shape)]
    sidx, perm = apply(registry.REGISTRY["sort"], index, dim=d, descending=False)
    vals = apply(GATHER, src, perm, dim=d)
    step = 1
    while step < K:
        same = narrow(sidx, d, step, K - step) == narrow(sidx, d, 0, K - step)
        tail = narrow(vals, d, step, K - step)
        tail = apply(op("where"), same, combine(narrow(vals, d, 0, K - step), tail), tail)
        vals = registry.functions.cat([narrow(vals, d, 0, step), tail], d)
        step *= 2
    return apply(SCATTER, x, sidx, vals, dim=d)


_COMBINE = {"prod": lambda a, b: a * b, "amax": lambda a, b: apply(op("maximum"), a, b),
            "amin": lambda a, b: apply(op("minimum"), a, b)}
_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _run_scatter_reduce(op_, args, attrs, out=None):
    x, index, src = (t.detach() for t in args)
    d, reduce, include_self = wrap_dim(attrs["dim"], x.ndim), attrs["reduce"], \
        attrs["include_self"]
    _same_device("scatter_reduce", x, index, src)
    _scatter_checks("scatter", x, index, src, d)
    if index.numel():
        _check_index(index, _shape1(x)[0][d], d, negative=False, exc=IndexOutOfRange)
    if reduce == "prod" and x.dtype is dt.bool_:
        reduce = "amin"  # a product of bools is their logical and
    if reduce in ("sum", "mean"):
        base = x if include_self else apply(SCATTER, x, index, 0, dim=d)
        r = apply(SCATTER_ADD, base, index, src, dim=d)
        if reduce == "mean":
            count = _mean_count(x, index, d, include_self)
            r = r / count if x.dtype.is_floating_point else apply(op("floor_divide"), r, count)
    elif index.numel() == 0:
        r = clone(x)
    elif not include_self:
        r = _segment_reduce(x, d, index, src, _COMBINE[reduce])
    elif reduce == "prod":
        r = x * _segment_reduce(_zeros(x.shape, x) + 1, d, index, src, _COMBINE[reduce])
    else:
        r = _COMBINE[reduce](x, _segment_reduce(x, d, index, src, _COMBINE[reduce]))
    if out is None:
        return r
    copy_(out, r)
    return out


def _mean_count(x, index, d, include_self):
    """How many values each position of a scatter-mean averages (at least 1)."""
    count = _zeros(x.shape, x) + (1 if include_self else 0)
    ones = _zeros(index.shape, x) + 1
    count = apply(SCATTER_ADD, count, index, ones, dim=d)
    return apply(op("maximum"), count, _scalar(1, x.dtype, x.device))


def _index_vector(name, index):
    if index.dtype not in (dt.int32, dt.int64):
        raise RuntimeError(f"{name}(): Expected dtype int32 or int64 for index")
    if index.ndim > 1:
        got = "" if name == "index_select" else (  # PyTorch's index_add_/index_reduce_ say more
            f", but got dim: {index.ndim} with type: "
            f"{'Long' if index.dtype is dt.int64 else 'Int'} and size: {list(index.shape)}")
        raise IndexError(f"{name}(): Index is supposed to be a vector{got}")


def _run_index_select(op_, args, attrs, out=None):
    x, index = args
    _same_device("index_select", x, index)
    _index_vector("index_select", index)
    d = wrap_dim(attrs["dim"], x.ndim)
    xs, xst = _shape1(x)
    m = index.numel()
    if not x._shape and m != 1:
        raise IndexError(f"index_select(): Index to scalar can have only 1 value, got {m} "
                         "value(s)")
    shape = xs[:d] + (m,) + xs[d + 1:] if x._shape else ()
    res = registry.Tensor._empty(shape, x.dtype, x.device)
    if res.numel() == 0:
        return res
    _check_index(index, xs[d], d, negative=False, message="index out of range in self")
    istride = index._stride[0] if index._shape else 0
    if x._shape:
        sst = [0 if k == d else s for k, s in enumerate(xst)]
        ist = [istride if k == d else 0 for k in range(len(xs))]
    else:
        sst, ist = [0] * len(shape), [0] * len(shape)
    _gather(res, x, sst, index, ist, xst[d])
    return res


def _run_index_add(op_, args, attrs, out=None):
    x, index, source = args
    _same_device("index_add_", x, index, source)
    _index_vector("index_add_", index)
    if source.dtype is not x.dtype:
        raise RuntimeError(f"index_add_(): self ({_pyname(x.dtype)}) and source "
                           f"({_pyname(source.dtype)}) must have the same scalar type")
    d = wrap_dim(attrs["dim"], x.ndim)
    xs, _ = _shape1(x)
    ss, sst = _shape1(source)
    m = index.numel()
    if len(ss) != len(xs) or any(a != b for k, (a, b) in enumerate(zip(xs, ss)) if k != d):
        raise RuntimeError(
            "source tensor shape must match self tensor shape, excluding the specified "
            f"dimension. Got self.shape = {list(x.shape)} source.shape = {list(source.shape)}"
        )
    if ss[d] != m:
        raise RuntimeError(f"index_add_(): Number of indices ({m}) should be equal to "
                           f"source.size(dim) ({ss[d]})")
    alpha = attrs.get("alpha", 1)
    if not x.dtype.is_floating_point and isinstance(alpha, float):
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating "
                           "point number.")
    dst = out if out is not None else clone(x)
    _check_writable(dst)
    if m == 0 or source.numel() == 0:
        return dst
    _check_index(index, xs[d], d, negative=False, message="index out of range in self")
    if alpha != 1:
        source = apply(op("to_dtype"), apply(op("mul"), source, alpha), dtype=x.dtype)
        ss, sst = _shape1(source)
    elif source._storage is dst._storage:
        source = clone(source)
    _, dst_st = _shape1(dst)
    keep = [k for k in range(len(xs)) if k != d]
    _scatter(dst, [dst_st[k] for k in keep], source, [sst[k] for k in keep], index,
             [0] * len(keep), [ss[k] for k in keep], m, index._stride[0] if index._shape else 0,
             sst[d], dst_st[d], add=True, unique=_index_unique(index))
    return dst


# --- masks --------------------------------------------------------------------------------


def _scalar(value, dtype: dt.dtype, device):
    """A 0-d tensor holding value cast to dtype (PyTorch casts scalars to self's dtype)."""
    with np.errstate(invalid="ignore", over="ignore"):
        arr = dt.to_storage(np.array(value), dtype)
    return _upload(arr.reshape(()), device, dtype)


def _cast_value(value, dtype: dt.dtype):
    """A Python scalar of dtype's kind, so that it does not promote dtype."""
    with np.errstate(invalid="ignore", over="ignore"):
        return dt.from_storage(dt.to_storage(np.array(value), dtype), dtype).item()


def _run_masked_fill(op_, args, attrs, out=None):
    x, mask, value = args
    if mask.dtype is not dt.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with "
                           f"dtype {_pyname(mask.dtype)}")
    _same_device("masked_fill", x, mask)
    if isinstance(value, registry.Tensor):
        if value.ndim:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s).")
        value = value.to(x.device) if value.dtype is x.dtype else value.to(x.device, x.dtype)
    elif isinstance(value, (numbers.Number, np.generic)):
        value = _cast_value(value, x.dtype)
    else:
        raise TypeError(f"masked_fill(): argument 'value' must be Number or Tensor, not "
                        f"{type(value).__name__}")
    return apply(op("where"), mask, value, x, out=out)


def _run_masked_select(op_, args, attrs, out=None):
    x, mask = args
    if mask.dtype is not dt.bool_:
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    _same_device("masked_select", x, mask)
    shape = broadcast_shapes(x._shape, mask._shape)
    xb = apply(EXPAND, x, shape=shape)
    mb = apply(EXPAND, mask, shape=shape)
    if not shape:
        xb, mb = xb._view((1,), (0,), xb._offset), mb._view((1,), (0,), mb._offset)
    return _run_index(None, (xb, mb), {"dims": (0,)})


def _run_nonzero(op_, args, attrs, out=None):
    (x,) = args
    return _nonzero(_as_mask_bytes(x))


# --- rows ---------------------------------------------------------------------------------


def _np_index(dims, indices, ndim):
    tup, pos = [], 0
    for d, a in zip(dims, indices):
        tup += [slice(None)] * (d - pos) + [a]
        pos = d + (a.ndim if a.dtype == np.bool_ else 1)
    return tuple(tup)


def _index_ref(x, *indices, dims):
    return x[_np_index(dims, indices, x.ndim)]


def _index_put_ref(x, values, *indices, dims, accumulate):
    y = x.copy()
    tup = _np_index(dims, indices, x.ndim)
    if accumulate:
        np.add.at(y, tup, values)
    else:
        y[tup] = values
    return y


def _fiber_tuple(index, dim):
    grid = list(np.indices(index.shape, sparse=True))
    src = tuple(grid)
    grid[dim] = index
    return tuple(grid), src


def _gather_ref(x, index, dim):
    return x[_fiber_tuple(index, dim)[0]]


def _scatter_ref(x, index, src, dim):
    y = x.copy()
    dst, s = _fiber_tuple(index, dim)
    y[dst] = np.broadcast_to(src, index.shape) if np.ndim(src) == 0 else src[s]
    return y


def _scatter_add_ref(x, index, src, dim):
    y = x.copy()
    dst, s = _fiber_tuple(index, dim)
    np.add.at(y, dst, src[s])
    return y


def _scatter_reduce_ref(x, index, src, dim, reduce, include_self):
    y = x.copy()
    dst, s = _fiber_tuple(index, dim)
    if not include_self:
        lo, hi = ((-np.inf, np.inf) if y.dtype.kind == "f" else
                  (np.iinfo(y.dtype).min, np.iinfo(y.dtype).max))
        y[dst] = {"sum": 0, "mean": 0, "prod": 1, "amax": lo, "amin": hi}[reduce]
    ufunc = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.maximum,
             "amin": np.minimum}[reduce]
    ufunc.at(y, dst, src[s])
    if reduce == "mean":
        count = np.full(x.shape, int(include_self))
        np.add.at(count, dst, 1)
        count = np.maximum(count, 1)
        y = (y / count if y.dtype.kind == "f" else y // count).astype(y.dtype)
    return y


def _index_add_ref(x, index, source, dim, alpha=1):
    y = x.copy()
    np.add.at(np.moveaxis(y, dim, 0), index, np.moveaxis(source * alpha, dim, 0).astype(y.dtype))
    return y


def _row(name, ref, run, vjp=None, differentiable=True, needs=None):
    return register(OpDef(name, "index", ref, run, vjp, differentiable=differentiable,
                          saves_out=False, needs=needs))


def _zeros(shape, like):

    return zeros(*shape, dtype=like.dtype, device=like.device)


def _index_vjp(g, x, *indices, out, dims):
    return (apply(INDEX_PUT, _zeros(x.shape, g), g, *indices, dims=dims, accumulate=True),
            *([None] * len(indices)))


def _index_put_vjp(g, x, values, *indices, out, dims, accumulate):
    gx = g if accumulate else apply(INDEX_PUT, g, _zeros((), g).expand(*values.shape),
                                    *indices, dims=dims, accumulate=False)
    return (gx, apply(INDEX, g, *indices, dims=dims), *([None] * len(indices)))


def _scatter_vjp(g, x, index, src, out, dim, **_):
    gsrc = apply(GATHER, g, index, dim=dim) if isinstance(src, registry.Tensor) else None
    return apply(SCATTER, g, index, 0.0, dim=dim), None, gsrc


def _masked_select_vjp(g, x, mask, out):
    shape = broadcast_shapes(x.shape, mask.shape)
    m = apply(EXPAND, mask, shape=shape)
    if not shape:  # 0-d operands select from one element, as _run_masked_select does
        r = apply(INDEX_PUT, _zeros((1,), g), g, m.reshape(1), dims=(0,), accumulate=True)
        return r.reshape(()), None
    return apply(INDEX_PUT, _zeros(shape, g), g, m, dims=(0,), accumulate=True), None


def _masked_fill_vjp(g, x, mask, value, out):
    gv = None
    if isinstance(value, registry.Tensor):
        gv = apply(op("where"), mask, g, 0.0)
    return apply(op("where"), mask, 0.0, g), None, gv


INDEX = _row("index", _index_ref, _run_index, _index_vjp)
# the VJP reads only the indices (inputs 2...), so x[idx] = v on a graph tensor stays legal
INDEX_PUT = _row("index_put", _index_put_ref, _run_index_put, _index_put_vjp,
                 needs=lambda rg: tuple(range(2, len(rg))))
GATHER = _row("gather", _gather_ref, _run_gather, lambda g, x, index, out, dim: (
    apply(SCATTER_ADD, _zeros(x.shape, g), index, g, dim=dim), None))
SCATTER = _row("scatter", _scatter_ref, _run_scatter, _scatter_vjp)
SCATTER_ADD = _row("scatter_add", _scatter_add_ref, _run_scatter,
                   lambda g, x, index, src, out, dim: (
                       g, None, apply(GATHER, g, index, dim=dim)))
def _pad_to(t, shape):
    """t with zeros appended along each dim to ``shape`` (a gradient of a larger src)."""
    for k, (n, m) in enumerate(zip(t.shape, shape)):
        if n < m:
            more = list(t.shape)
            more[k] = m - n
            t = registry.functions.cat([t, _zeros(more, t)], k)
    return t


def _scatter_reduce_vjp(g, x, index, src, out, dim, reduce, include_self):
    """PyTorch's scatter_reduce_backward: sum and mean pass g (divided by the count); amax
    and amin share it evenly among the values equal to the result; prod divides the result
    by each value, with single zeros handled by recomputing the product without them."""
    d = wrap_dim(dim, x.ndim)
    full = src.shape
    src = src[tuple(slice(0, n) for n in index.shape)]
    where = op("where")
    if reduce == "sum":
        gx, gs = g, apply(GATHER, g, index, dim=d)
    elif reduce == "mean":
        gx = g / _mean_count(g, index, d, include_self)
        gs = apply(GATHER, gx, index, dim=d)
    elif reduce in ("amax", "amin"):
        self_is = (x == out).to(g.dtype)
        src_is = (src == apply(GATHER, out, index, dim=d)).to(g.dtype)
        gd = g / apply(SCATTER_ADD, self_is, index, src_is, dim=d)
        gx, gs = self_is * gd, src_is * apply(GATHER, gd, index, dim=d)
    else:
        masked_self = apply(where, x == 0, 1, x)
        gx = g * apply(SCATTER_REDUCE, masked_self, index, src, dim=d, reduce=reduce,
                       include_self=include_self) / masked_self
        src_zero = src == 0
        zeros_at = apply(SCATTER_ADD, _zeros(x.shape, g), index, src_zero.to(g.dtype), dim=d)
        single = src_zero & (apply(GATHER, zeros_at, index, dim=d) == 1)
        without = apply(SCATTER_REDUCE, x, index, apply(where, single, 1, src), dim=d,
                        reduce=reduce, include_self=include_self)
        gs = apply(where, single, apply(GATHER, g * without, index, dim=d),
                   apply(GATHER, g * out, index, dim=d) / apply(where, src_zero, 1, src))
    if not include_self:
        gx = apply(SCATTER, gx, index, 0, dim=d)
    return gx, None, _pad_to(gs, full)


SCATTER_REDUCE = register(OpDef("scatter_reduce", "index", _scatter_reduce_ref,
                                _run_scatter_reduce, _scatter_reduce_vjp))
INDEX_SELECT = _row("index_select", lambda x, index, dim: np.take(x, index, axis=dim),
                    _run_index_select, lambda g, x, index, out, dim: (
                        apply(INDEX_ADD, _zeros(x.shape, g), index, g, dim=dim, alpha=1), None))
INDEX_ADD = _row("index_add", _index_add_ref, _run_index_add,
                 lambda g, x, index, source, out, dim, alpha: (
                     g, None, apply(INDEX_SELECT, g, index, dim=dim) * alpha))
MASKED_FILL = _row("masked_fill",
                   lambda x, mask, value: np.where(mask, value, x).astype(x.dtype),
                   _run_masked_fill, _masked_fill_vjp)
MASKED_SELECT = _row("masked_select",
                     lambda x, mask: np.broadcast_arrays(x, mask)[0][
                         np.broadcast_arrays(x, mask)[1]], _run_masked_select,
                     _masked_select_vjp)
NONZERO = _row("nonzero", np.argwhere, _run_nonzero, differentiable=False)


# --- __getitem__ / __setitem__ ------------------------------------------------------------


def _treat_as_tuple(index) -> bool:
    """PyTorch's rule: a short list holding a sequence, tensor, slice, None or Ellipsis is a
    tuple of indices (numpy's legacy behaviour); numpy arrays and tensors never are."""
    if isinstance(index, tuple):
        return True
    if not isinstance(index, list) or len(index) >= 32:
        return False
    return any(isinstance(i, (list, tuple, slice, np.ndarray, registry.Tensor))
               or i is None or i is Ellipsis for i in index)


_BAD_INDEX_DTYPE = "tensors used as indices must be long, int, byte or bool tensors"


def _parse(index):
    """An index as items: ("int", i), ("slice", s), ("none",), ("ellipsis",), ("bool", b)
    or ("adv", Tensor | ndarray, ndims consumed)."""
    T = registry.Tensor
    items = []
    for it in (tuple(index) if _treat_as_tuple(index) else (index,)):
        if isinstance(it, (list, tuple, np.ndarray)):
            a = np.asarray(it)
            if a.dtype == np.bool_ or a.dtype == np.uint8:
                pass
            elif a.dtype.kind in "iu" or (a.dtype.kind == "f" and not isinstance(it, np.ndarray)):
                a = a.astype(np.int64)  # PyTorch makes lists of numbers long
            elif a.size == 0:
                a = a.astype(np.int64)
            else:
                raise IndexError(_BAD_INDEX_DTYPE)
            it = builtins.bool(a) if a.ndim == 0 and a.dtype in (np.bool_, np.uint8) else a
        if isinstance(it, T) and it.ndim == 0 and it.dtype.kind <= 1:
            it = builtins.bool(it) if _is_mask(it) else int(it)  # PyTorch selects / unsqueezes
        if isinstance(it, (builtins.bool, np.bool_)):
            items.append(("bool", builtins.bool(it)))
        elif isinstance(it, numbers.Integral):
            items.append(("int", int(it)))
        elif isinstance(it, slice):
            items.append(("slice", it))
        elif it is None:
            items.append(("none",))
        elif it is Ellipsis:
            items.append(("ellipsis",))
        elif isinstance(it, (T, np.ndarray)):
            mask = it.dtype in (np.bool_, np.uint8) if isinstance(it, np.ndarray) else _is_mask(it)
            items.append(("adv", it, it.ndim if mask else 1))
        else:
            raise IndexError(
                "only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                f"Variables are valid indices (got {type(it).__name__})"
            )
    return items


def _split_index(x, index):
    """The basic part of an index as a SLICE view of x, and the advanced part as tensors
    with the view dims they start at."""
    items = _parse(index)
    if sum(1 for it in items if it[0] == "ellipsis") > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    specified = sum(1 if it[0] in ("int", "slice") else it[2] if it[0] == "adv" else 0
                    for it in items)
    if x.ndim == 0 and any(it[0] == "int" for it in items):
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                         "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
    if specified > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    basic, adv, vd = [], [], 0
    for it in items:
        kind = it[0]
        if kind == "ellipsis":
            basic.append(Ellipsis)
            vd += x.ndim - specified
        elif kind in ("none", "slice"):
            basic.append(None if kind == "none" else it[1])
            vd += 1
        elif kind == "int":
            basic.append(it[1])
        elif kind == "bool":  # a new dim of size 1, indexed by [0] (True) or [] (False)
            basic.append(None)
            adv.append((vd, np.zeros(1 if it[1] else 0, dtype=np.int64)))
            vd += 1
        else:
            basic += [slice(None)] * it[2]
            adv.append((vd, it[1]))
            vd += it[2]
    view = apply(SLICE, x, index=tuple(basic))
    tensors = []
    for _, a in adv:
        if isinstance(a, np.ndarray):
            a = _upload(a, x.device)
        if a.dtype is dt.uint8:
            warnings.warn("indexing with dtype torch.uint8 is now deprecated, please use a "
                          "dtype torch.bool instead.", UserWarning, stacklevel=4)
        elif a.dtype is not dt.bool_ and a.dtype.kind != 1:
            raise IndexError(_BAD_INDEX_DTYPE)
        tensors.append(a)
    return view, tensors, tuple(d for d, _ in adv)


@public(function=False, method=False, dunders=("getitem",))
def getitem(x, index):
    """Tensor.__getitem__: basic indexing gives a view, advanced indexing a copy."""
    view, tensors, dims = _split_index(x, index)
    if not tensors:
        return view
    return apply(INDEX, view, *tensors, dims=dims)


@public(function=False, method=False, dunders=("setitem",))
def setitem(x, index, value):
    """Tensor.__setitem__: copies value (cast to x's dtype, broadcast) into x[index]."""

    view, tensors, dims = _split_index(x, index)
    T = registry.Tensor
    if not tensors:
        if isinstance(value, T):
            copy_(view, value)
        elif isinstance(value, (numbers.Number, np.generic)):
            fill_(view, value)
        else:
            raise TypeError(f"can't assign a {type(value).__name__} to a "
                            f"torch.{x.dtype.tensor_type}")
        return
    if isinstance(value, (numbers.Number, np.generic)):
        value = _scalar(value, x.dtype, x.device)
    elif not isinstance(value, T):
        raise TypeError(f"can't assign a {type(value).__name__} to a torch.{x.dtype.tensor_type}")
    apply(INDEX_PUT, view, value, *tensors, dims=dims, accumulate=False, out=view)



# --- public functions ---------------------------------------------------------------------


def _as_indices(x, indices):
    """index_put's indices (a tuple with None for untouched dims) as tensors and dims."""
    tensors, dims, d = [], [], 0
    for t in indices:
        if t is None:
            d += 1
            continue
        if not isinstance(t, registry.Tensor):
            raise TypeError(f"index_put_(): indices must be a tuple of Tensors, got "
                            f"{type(t).__name__}")
        if t.ndim == 0 and _is_mask(t):
            raise NotImplementedError("index_put_ with a 0-d boolean index; use x[mask] = v")
        tensors.append(t)
        dims.append(d)
        d += t.ndim if _is_mask(t) else 1
    if d > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim} (got {d})")
    return tensors, tuple(dims)


@public(function=False)
def index_put_(input, indices, values, accumulate=False):
    """Tensor.index_put_; duplicate indices: the last value wins, or all add in order."""
    tensors, dims = _as_indices(input, indices)
    if not tensors:
        raise NotImplementedError("index_put_ with no index tensors")
    apply(INDEX_PUT, input, values, *tensors, dims=dims, accumulate=bool(accumulate),
          out=input)
    return input


@public
def index_put(input, indices, values, accumulate=False):
    tensors, dims = _as_indices(input, indices)
    return apply(INDEX_PUT, input, values, *tensors, dims=dims, accumulate=bool(accumulate))


@public
def gather(input, dim, index, *, sparse_grad=False, out=None):
    """torch.gather; negative indices are out of range, as in PyTorch. An empty index gives
    an empty result of its shape whatever its dtype and number of dims (PyTorch's)."""
    if isinstance(index, registry.Tensor) and index.numel() == 0 and isinstance(
            input, registry.Tensor) and index.ndim != input.ndim:
        wrap_dim(dim, input.ndim)
        r = input.reshape(-1)[:0].reshape(*index.shape)
        return r if out is None else out.copy_(r)
    r = apply(GATHER, input, _long(index), dim=dim)
    return r if out is None else out.copy_(r)


def _long(index):
    """An int32 index as int64 (PyTorch's gather and scatter take both), and an empty index
    of any dtype (PyTorch checks the dtype of a non-empty index only)."""
    if isinstance(index, registry.Tensor) and index.dtype is not dt.int64 and (
            index.dtype is dt.int32 or index.numel() == 0):
        return index.to(dt.int64)
    return index


@public
def take_along_dim(input, indices, dim=None, *, out=None):
    """torch.take_along_dim: gather along ``dim`` after broadcasting the other dims of
    ``input`` and ``indices``; without ``dim``, along the flattened input."""
    if not isinstance(indices, registry.Tensor) or indices.dtype is not dt.int64:
        got = indices.dtype if isinstance(indices, registry.Tensor) else type(indices)
        raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be Long but "
                           f"got {_pyname(got) if isinstance(got, dt.dtype) else got}")
    if dim is None:
        r = apply(GATHER, input.reshape(-1), indices.reshape(-1), dim=0)
    else:
        if input.ndim != indices.ndim:
            raise RuntimeError(f"torch.take_along_dim(): input and indices should have the "
                               f"same number of dimensions, but got {input.ndim} dimensions "
                               f"for input, and {indices.ndim} dimensions for indices")
        d = wrap_dim(dim, input.ndim)
        xs, ixs = list(input.shape), list(indices.shape)
        xs[d] = ixs[d] = 1
        common = list(broadcast_shapes(tuple(xs), tuple(ixs)))
        xb = input.expand(*(common[:d] + [input.shape[d]] + common[d + 1:]))
        ib = indices.expand(*(common[:d] + [indices.shape[d]] + common[d + 1:]))
        # PyTorch's take_along_dim counts a negative index from the end of ``dim``
        # (the flattened form above does not); gather rejects the rest, by their own value
        n = input.shape[d]
        ib = apply(op("where"), (ib < 0) & (ib >= -n), ib + n, ib)
        r = apply(GATHER, xb, ib, dim=d)
    return r if out is None else out.copy_(r)


def _scatter_with(input, dim, index, src, reduce, out=None):
    """scatter / scatter_ with PyTorch's legacy ``reduce`` ("add" or "multiply")."""
    index = _long(index)
    if reduce is None:
        return apply(SCATTER, input, index, src, dim=dim, out=out)
    if reduce not in ("add", "multiply"):
        raise RuntimeError("reduce argument must be either add or multiply.")
    if isinstance(src, registry.Tensor):
        warnings.warn("The reduce argument of torch.scatter with Tensor src is deprecated and "
                      "will be removed in a future PyTorch release. Use torch.scatter_reduce "
                      "instead for more reduction options.", UserWarning, stacklevel=3)
    if reduce == "add":
        return apply(SCATTER_ADD, input, index, src, dim=dim, out=out)
    if not isinstance(src, registry.Tensor):
        src = apply(EXPAND, _scalar(src, input.dtype, input.device), shape=index.shape)
    return apply(SCATTER_REDUCE, input, index, src, dim=dim, reduce="prod", include_self=True,
                 out=out)


@public
def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """torch.scatter; with duplicate indices the last write (in index order) wins.
    ``reduce="add"``/``"multiply"`` are differentiable here (PyTorch has no gradient)."""
    return _scatter_with(input, dim, index, value if src is None else src, reduce)


@public(function=False)
def scatter_(input, dim, index, src=None, *, value=None, reduce=None):
    return _scatter_with(input, dim, index, value if src is None else src, reduce, out=input)


def _scatter_reduce(input, dim, index, src, reduce, include_self, out=None):
    if reduce not in _REDUCTIONS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, "
                           f"got {reduce}")
    if not isinstance(src, registry.Tensor):
        raise TypeError(f"scatter_reduce(): argument 'src' (position 3) must be Tensor, not "
                        f"{type(src).__name__}")
    if reduce == "mean" and isinstance(input, registry.Tensor) and input.dtype is dt.bool_:
        raise NotImplementedError('"scatter_gather_tensor_cpu_reduce_mean" not implemented '
                                  "for 'Bool'")
    return apply(SCATTER_REDUCE, input, _long(index), src, dim=dim, reduce=reduce,
                 include_self=bool(include_self), out=out)


@public
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """torch.scatter_reduce: reduce ("sum", "prod", "mean", "amax", "amin") the values of
    ``src`` into ``input`` at ``index`` along ``dim``, ``input``'s own values included unless
    ``include_self=False``. Deterministic: sums add in index order; products and extrema
    fold by a tree over each destination's values (float rounding of "prod" may differ
    from PyTorch's sequential order in the last bits)."""
    return _scatter_reduce(input, dim, index, src, reduce, include_self)


@public(function=False)
def scatter_reduce_(input, dim, index, src, reduce, *, include_self=True):
    return _scatter_reduce(input, dim, index, src, reduce, include_self, out=input)


def _index_reduce(input, dim, index, source, reduce, include_self, out=None):
    """index_reduce as scatter_reduce with ``index`` spread over ``source``'s other dims."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or "
                           f"amin but got {reduce}.")
    _index_vector("index_reduce_", index)
    if reduce == "mean" and input.dtype is dt.bool_:
        raise NotImplementedError("\"div_floor_cpu\" not implemented for 'Bool'")
    d = wrap_dim(dim, input.ndim)
    m = index.numel()
    if source.ndim and m != source.shape[d]:
        raise RuntimeError(f"index_reduce_(): Number of indices ({m}) should be equal to "
                           f"source.size(dim): ({source.shape[d]}), for dim: {d}")
    if source.ndim != input.ndim or any(
            k != d and a != b for k, (a, b) in enumerate(zip(input.shape, source.shape))):
        raise RuntimeError(f"source tensor shape must match self tensor shape, excluding the "
                           f"specified dimension. Got self.shape = {list(input.shape)} "
                           f"source.shape = {list(source.shape)}")
    shape = [1] * max(source.ndim, 1)
    shape[d] = m
    spread = _long(index).reshape(*shape).expand(*(source.shape or (1,)))
    if not source.ndim:
        source = source.reshape(1)
    return apply(SCATTER_REDUCE, input, spread, source, dim=d, reduce=reduce,
                 include_self=bool(include_self), out=out)


@public
def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """Tensor.index_reduce: ``reduce`` ("prod", "mean", "amax", "amin") the slices of
    ``source`` into ``input`` at the positions ``index`` along ``dim``."""
    return _index_reduce(input, dim, index, source, reduce, include_self)


@public(function=False)
def index_reduce_(input, dim, index, source, reduce, *, include_self=True):
    return _index_reduce(input, dim, index, source, reduce, include_self, out=input)


@public
def scatter_add(input, dim, index, src):
    """torch.scatter_add; deterministic: contributions add in index order."""
    return apply(SCATTER_ADD, input, _long(index), src, dim=dim)


@public(function=False)
def scatter_add_(input, dim, index, src):
    return apply(SCATTER_ADD, input, _long(index), src, dim=dim, out=input)


@public
def index_select(input, dim, index, *, out=None):
    r = apply(INDEX_SELECT, input, index, dim=dim)
    return r if out is None else out.copy_(r)


@public
def index_add(input, dim, index, source, *, alpha=1):
    return apply(INDEX_ADD, input, index, source, dim=dim, alpha=alpha)


@public(function=False)
def index_add_(input, dim, index, source, *, alpha=1):
    """Tensor.index_add_; deterministic: contributions add in index order."""
    return apply(INDEX_ADD, input, index, source, dim=dim, alpha=alpha, out=input)


@public
def masked_fill(input, mask, value):
    return apply(MASKED_FILL, input, mask, value)


@public(function=False)
def masked_fill_(input, mask, value):
    apply(MASKED_FILL, input, mask, value, out=input)
    return input


@public
def masked_select(input, mask, *, out=None):
    r = apply(MASKED_SELECT, input, mask)
    return r if out is None else out.copy_(r)


@public
def nonzero(input, *, out=None, as_tuple=False):
    """torch.nonzero; reads the per-chunk counts back to the host to size the result."""
    r = apply(NONZERO, input)
    if as_tuple:
        if input.ndim == 0:  # PyTorch treats a 0-d input as 1-d here
            return (_upload(np.zeros(r._shape[0], dtype=np.int64), input.device),)
        return tuple(apply(SLICE, r, index=(slice(None), j)) for j in range(input.ndim))
    return r if out is None else out.copy_(r)


@public
def argwhere(input):
    return nonzero(input)


def _long_index(index, name: str):
    if not isinstance(index, registry.Tensor):
        raise TypeError(f"{name}(): argument 'index' must be Tensor, not "
                        f"{type(index).__name__}")
    if index.dtype is not dt.int64:
        raise RuntimeError(f"{name}(): Expected a long tensor for index, but got "
                           f"{_pyname(index.dtype)}")


@public
def take(input, index):
    """torch.take: input flattened, read at ``index`` (negative counts from the end); the
    result has the index's shape."""
    _long_index(index, "take")
    n = input.numel()
    flat = input.reshape(-1)
    if index.numel() == 0:
        return index_select(flat, 0, index.reshape(-1)).reshape(index.shape)
    lo, hi, _ = _index_info(index)
    for i in (lo, hi):
        if not -n <= i < n:
            raise IndexError(f"out of range: tried to access index {i} on a tensor of {n} "
                             "elements.")
    idx = index.reshape(-1)
    if lo < 0:
        idx = registry.functions.where(idx < 0, idx + n, idx)
    return index_select(flat, 0, idx).reshape(index.shape)


def _fill_mask(input, dim, index, value, name):
    """The mask of index_fill: True on the selected slices along ``dim``, shaped to
    broadcast against ``input``; ``dim`` wrapped and the value checked."""
    _long_index(index, name)
    if index.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector, got a "
                         f"{index.ndim}-d tensor")
    if isinstance(value, registry.Tensor) and value.ndim:
        raise RuntimeError(f"{name} only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")
    d = wrap_dim(dim, max(input.ndim, 1))
    n = input._shape[d] if input.ndim else 1
    host = _check_read(index).reshape(-1) if index.numel() else np.zeros(0, np.int64)
    bad = host[(host < -n) | (host >= n)]
    if bad.size:
        raise IndexError(f"index {int(bad[0])} is out of bounds for dimension {d} with size "
                         f"{n}")
    mask = np.zeros(n, dtype=np.bool_)
    mask[host] = True
    shape = [1] * input.ndim
    if input.ndim:
        shape[d] = n
    return _upload(mask.reshape(shape), input.device)


@public
def index_fill(input, dim, index, value):
    """torch.index_fill: the slices of ``input`` along ``dim`` at ``index`` set to
    ``value`` (a number or a 0-d tensor)."""
    return masked_fill(input, _fill_mask(input, dim, index, value, "index_fill"), value)


@public(function=False)
def index_fill_(input, dim, index, value):
    return masked_fill_(input, _fill_mask(input, dim, index, value, "index_fill_"), value)


# --- scatters into views: a copy of ``input`` with one view of it overwritten -------------


def _embed(input, src, view, name: str):
    """A clone of ``input`` whose ``view`` (a function of it) holds ``src``; differentiable
    through the in-place copy."""
    if not isinstance(src, registry.Tensor):
        raise TypeError(f"{name}(): argument 'src' must be Tensor, not {type(src).__name__}")
    out = clone(input)
    part = view(out)
    if tuple(src.shape) != tuple(part.shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size "
                           f"= {list(src.shape)}, slice size = {list(part.shape)}")
    copy_(part, src)
    return out


@public
def select_scatter(input, src, dim, index):
    """torch.select_scatter: ``input`` with ``input.select(dim, index)`` set to ``src``."""
    return _embed(input, src, lambda t: t.select(dim, index), "select_scatter")


@public
def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """torch.slice_scatter: ``input`` with the slice ``start:end:step`` of ``dim`` set to
    ``src``."""
    d = wrap_dim(dim, input.ndim)
    key = (slice(None),) * d + (slice(start, end, step),)
    return _embed(input, src, lambda t: t[key], "slice_scatter")


@public
def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """torch.diagonal_scatter: ``input`` with ``input.diagonal(offset, dim1, dim2)`` set to
    ``src``."""
    return _embed(input, src, lambda t: t.diagonal(offset, dim1, dim2), "diagonal_scatter")


def _copy_index(input, dim, index, source, name):
    _long_index(index, name)
    if index.ndim > 1:
        raise IndexError(f"{name}(): Index should have dimension 1 or 0 (got {index.ndim})")
    if source.dtype is not input.dtype:
        raise RuntimeError(f"{name}(): self and source expected to have the same dtype, but "
                           f"got (self) {_pyname(input.dtype)} and (source) "
                           f"{_pyname(source.dtype)}")
    d = wrap_dim(dim, max(input.ndim, 1))
    n = index.numel()
    got = source._shape[d] if source.ndim else 1
    if got != n:
        raise IndexError(f"{name}(): Number of indices ({n}) should be equal to "
                         f"source.size(dim) ({got})")
    return d


@public
def index_copy(input, dim, index, source):
    """torch.index_copy: ``input`` with the slices at ``index`` along ``dim`` replaced by
    those of ``source`` (a repeated index keeps one of its slices)."""
    d = _copy_index(input, dim, index, source, "index_copy_")  # PyTorch names the in-place form
    return index_add(index_fill(input, d, index.reshape(-1), 0), d, index.reshape(-1), source)


@public(function=False)
def index_copy_(input, dim, index, source):
    d = _copy_index(input, dim, index, source, "index_copy_")
    index_fill_(input, d, index.reshape(-1), 0)
    return index_add_(input, d, index.reshape(-1), source)


def _put_index(input, index, source, name):
    _long_index(index, name)
    if source.dtype is not input.dtype:
        raise RuntimeError(f"{name}(): self and source expected to have the same dtype, but "
                           f"got (self) {_pyname(input.dtype)} and (source) "
                           f"{_pyname(source.dtype)}")
    if index.numel() != source.numel():
        raise RuntimeError(f"{name}(): Expected source and index to have the same number of "
                           f"elements, but got source.numel() = {source.numel()}, "
                           f"index.numel() = {index.numel()}")
    n = input.numel()
    idx = index.reshape(-1)
    if idx.numel():
        lo, hi, _ = _index_info(index)
        for i in (lo, hi):
            if not -n <= i < n:
                raise IndexError(f"out of range: tried to access index {i} on a tensor of {n} "
                                 "elements.")
        if lo < 0:
            idx = registry.functions.where(idx < 0, idx + n, idx)
    return idx


@public
def put(input, index, source, accumulate=False):
    """torch.put: ``input`` flattened, ``source`` written (or added) at ``index``."""
    idx = _put_index(input, index, source, "put")
    flat, src = input.reshape(-1), source.reshape(-1)
    if not accumulate:
        flat = index_fill(flat, 0, idx, 0)
    return index_add(flat, 0, idx, src).reshape(input.shape)


@public(function=False)
def put_(input, index, source, accumulate=False):
    return copy_(input, put(input, index, source, accumulate))


@public(method=False)
def unravel_index(indices, shape):
    """torch.unravel_index: the coordinates in ``shape`` of flat ``indices``, one tensor per
    dim (negative and out-of-range indices wrap, unchecked, as PyTorch's)."""
    if not isinstance(indices, registry.Tensor):
        raise TypeError(f"unravel_index(): argument 'indices' must be Tensor, not "
                        f"{type(indices).__name__}")
    if indices.dtype.is_floating_point or indices.dtype is dt.bool_:
        raise TypeError(f"expected 'indices' to be integer dtype, but got {indices.dtype}")
    shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(s)
                                                                           for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"'shape' cannot have negative values, but got {shape}")
    flat = indices.long()  # floor division and modulo wrap out-of-range ones, as PyTorch
    out = []
    for s in reversed(shape):
        out.append(flat % s if s else flat)
        flat = flat // s if s else flat
    return tuple(reversed(out))


@public
def nonzero_static(input, *, size, fill_value=-1):
    """torch.nonzero_static: nonzero's rows, cut or padded with ``fill_value`` to ``size``."""
    if size < 0:
        raise RuntimeError(f"nonzero_static: 'size' must be an non-negative integer, but got "
                           f"size: {size}")
    r = nonzero(input)
    k = r._shape[0]
    if k >= size:
        return r[:size]
    pad = zeros((size - k, r._shape[1]), dtype=r.dtype, device=r.device)
    fill_(pad, fill_value)
    return registry.functions.cat([r, pad], 0)
