"""Sorting on the device: sort, argsort, msort, topk, unique, and the cumulative-weight
search multinomial samples with. One row, ``sort``, runs kernels/sort.cl on the rows of a
(rows, row) copy of its input with the sorted dim last: stable in both directions, NaN
above every number (first when descending), -0.0 equal to 0.0, as PyTorch.

The row is not differentiable; a sort or topk whose input requires grad takes its values
with ``gather`` at the indices, whose VJP scatters the gradient back. unique reads the
number of distinct values on the host (its output shape depends on the data). Imports
registry, movement, math, codegen and dtypes; functions of other ops modules (gather,
nonzero, cumsum, ...) are reached through registry.functions, never imported (creation
imports this module for randperm)."""

from __future__ import annotations

import builtins
import collections
import math
import numbers

import numpy as np

from .. import codegen
from .. import dtypes as dt
from ..shapes import wrap_dim
from . import registry
from .elementwise import op
from .math import fill_
from .movement import contiguous, movedim, narrow, reshape
from .registry import OpDef, apply, public, register
from .registry import functions as F


def return_type(name: str):
    """A torch.return_types-style (values, indices) named tuple."""
    cls = collections.namedtuple(name, ["values", "indices"])
    cls.__repr__ = lambda self: (f"torch.return_types.{name}(\nvalues={self.values!r},"
                                 f"\nindices={self.indices!r})")
    cls.__module__ = "clgraph.return_types"
    return cls


RETURN_TYPES = {n: return_type(n) for n in ("sort", "topk", "kthvalue", "mode")}

# --- kernels ------------------------------------------------------------------------------

_SIGNED = {1: "char", 2: "short", 4: "int", 8: "long"}
_UNSIGNED = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong"}
# IEEE floats by their bits: sign bit and +inf
_FLOAT_BITS = {dt.float16: (0x8000, 0x7C00), dt.bfloat16: (0x8000, 0x7F80),
               dt.float32: (0x80000000, 0x7F800000),
               dt.float64: (0x8000000000000000, 0x7FF0000000000000)}


def _key_kernel(info, name: str, d: dt.dtype):
    """sort_keys or sort_finish for values of dtype d (they read values as bits)."""
    size = d.itemsize
    sign, inf = _FLOAT_BITS.get(d, (0, 0))
    kind = 2 if d.is_floating_point else 0 if d.is_signed else 1
    defines = (("U", _UNSIGNED[size]), ("S", _SIGNED[size]), ("KIND", str(kind)),
               ("SIGNBIT", f"{sign:#x}ul"), ("EXPBITS", f"{inf:#x}ul"))
    return codegen.template_kernel(info, "sort.cl", name, defines)


def _bitonic_geometry(info) -> tuple[int, int]:
    """(CAP, WG) of sort_bitonic: pairs per work-group (12 bytes each in local memory, at
    most half of it) and its local size."""
    wg = min(256, info.max_work_group_size)
    cap = 2048
    while cap > 2 * wg and cap * 12 > info.local_memory // 2:
        cap //= 2
    return cap, wg


def _launch(info, kern, name: str, n: int, values: dict) -> None:
    """One work-item per element (or block) of n."""
    L = codegen.local_size(info)
    registry.launch(info, kern, name, (max(1, -(-n // L)) * L,), (L,),
                    codegen.pack(kern, values))


# output places per work-item of sort_merge_chunks (CPUs): a merge pass over a row of 2^20
# floats takes 143 ms with a binary search per element (sort_merge), 13 ms in chunks of 1024
# (2-core PoCL machine)
_MERGE_CHUNK = 1024


def _cpu_block(rows: int, row: int) -> int:
    """sort_serial's block: whole rows when there are enough of them to keep the cores
    busy, else rows cut in up to 8 blocks of at least 256 (merged by sort_merge_chunks)."""
    parts = 1 if rows >= 8 else max(1, min(-(-8 // rows), row // 256))
    return -(-row // parts)


def _sort_blocks(info, key, idx, key2, idx2, rows: int, row: int) -> int:
    """Sort the blocks of each row in place; the block size is returned."""
    if info.is_cpu:
        block = _cpu_block(rows, row)
        nblocks = rows * -(-row // block)
        _launch(info, codegen.template_kernel(info, "sort.cl", "sort_serial"), "sort_serial",
                nblocks, {"key": key, "idx": idx, "key2": key2, "idx2": idx2, "row": row,
                          "block": block, "nblocks": nblocks})
        return block
    cap, wg = _bitonic_geometry(info)
    block = min(row, cap)
    p = 1 << (block - 1).bit_length()
    nblocks = rows * -(-row // block)
    groups = -(-nblocks // (cap // p))
    kern = codegen.template_kernel(info, "sort.cl", "sort_bitonic",
                                   (("CAP", str(cap)), ("WG", str(wg))))
    registry.launch(info, kern, "sort_bitonic", (groups * wg,), (wg,), codegen.pack(
        kern, {"key": key, "idx": idx, "row": row, "block": block, "nblocks": nblocks,
               "P": p}))
    return block


def _sort_rows(x, descending: bool):
    """Values and int64 indices of each row of the contiguous (rows, row) tensor x, sorted
    stably."""
    T = registry.Tensor
    rows, row = x._shape
    n = rows * row
    if row >= 1 << 31:
        raise RuntimeError(f"sort: rows of {row} elements are longer than clgraph sorts "
                           "(2^31 - 1)")
    info = x.device.info
    key, key2 = (T._empty((n,), dt.int64, x.device) for _ in range(2))
    idx, idx2 = (T._empty((n,), dt.int32, x.device) for _ in range(2))
    bufs = [(key._storage.buf, idx._storage.buf), (key2._storage.buf, idx2._storage.buf)]
    _launch(info, _key_kernel(info, "sort_keys", x.dtype), "sort_keys", n,
            {"x": x._storage.buf, "xoff": x._offset, "n": n, "row": row,
             "descending": int(descending), "key": bufs[0][0], "idx": bufs[0][1]})
    width = _sort_blocks(info, *bufs[0], *bufs[1], rows, row)
    name = "sort_merge_chunks" if info.is_cpu else "sort_merge"
    merge = codegen.template_kernel(info, "sort.cl", name)
    items = rows * -(-row // _MERGE_CHUNK) if info.is_cpu else n
    while width < row:
        (k, i), (k2, i2) = bufs
        _launch(info, merge, name, items, {"key": k, "idx": i, "dst_key": k2, "dst_idx": i2,
                                           "n": n, "rows": rows, "row": row, "width": width,
                                           "chunk": _MERGE_CHUNK})
        bufs.reverse()
        width *= 2
    values = T._empty((rows, row), x.dtype, x.device)
    indices = T._empty((rows, row), dt.int64, x.device)
    _launch(info, _key_kernel(info, "sort_finish", x.dtype), "sort_finish", n,
            {"x": x._storage.buf, "xoff": x._offset, "idx": bufs[0][1], "n": n, "row": row,
             "values": values._storage.buf, "indices": indices._storage.buf})
    return values, indices


def _run_sort(op_, args, attrs, out=None):
    (x,) = args
    x = x.detach()
    d = attrs["dim"]
    if x.ndim == 0 or x.numel() == 0:
        indices = registry.Tensor._empty(x._shape, dt.int64, x.device)
        if x.ndim == 0:
            fill_(indices, 0)
        return apply(op("to_dtype"), x, dtype=x.dtype), indices
    moved = contiguous(movedim(x, d, -1))
    row = moved._shape[-1]
    values, indices = _sort_rows(reshape(moved, -1, row), attrs["descending"])
    values = movedim(reshape(values, *moved._shape), -1, d)
    indices = movedim(reshape(indices, *moved._shape), -1, d)
    if d != x.ndim - 1:
        values, indices = contiguous(values), contiguous(indices)
    return values, indices


def _ref_sort(x, dim, descending):
    """numpy's stable sort (NaN last); descending sorts the reversed axis and reverses
    back, which keeps equal values in their original order."""
    x = np.asarray(x)
    if x.ndim == 0:
        return x.copy(), np.zeros((), np.int64)
    if not descending:
        i = np.argsort(x, axis=dim, kind="stable")
    else:
        n = x.shape[dim]
        i = np.flip(n - 1 - np.argsort(np.flip(x, dim), axis=dim, kind="stable"), dim)
    return np.take_along_axis(x, i, dim), i.astype(np.int64)


SORT = register(OpDef("sort", "sort", _ref_sort, _run_sort, differentiable=False))


def _check_tensor(x, name: str) -> None:
    if not isinstance(x, registry.Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


def _sorted(name: str, input, dim, descending: bool):
    """(values, indices) of ``input`` sorted along ``dim``; values differentiable through
    a gather when input requires grad."""
    _check_tensor(input, name)
    if isinstance(dim, builtins.bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{name}(): argument 'dim' must be int, not {type(dim).__name__}")
    d = wrap_dim(dim, input.ndim)
    values, indices = apply(SORT, input, dim=d, descending=bool(descending))
    if input.requires_grad:
        values = F.gather(input, d, indices)
    return values, indices


@public
def sort(input, dim=-1, descending=False, *, stable=False):
    """torch.sort: (values, indices) along ``dim``. Always stable: ``stable`` only says
    whether the caller relies on it."""
    return RETURN_TYPES["sort"](*_sorted("sort", input, dim, descending))


@public
def argsort(input, dim=-1, descending=False, *, stable=False):
    """torch.argsort: the indices that sort ``input`` along ``dim`` (always stable)."""
    return _sorted("argsort", input, dim, descending)[1]


@public
def msort(input):
    """torch.msort: sorted along dim 0."""
    return sort(input, 0).values


@public
def topk(input, k, dim=-1, largest=True, sorted=True):
    """torch.topk: the k largest (or smallest) along ``dim`` as (values, indices), NaN
    largest. The result is always sorted (``sorted=False`` leaves the order free, as in
    PyTorch)."""
    _check_tensor(input, "topk")
    if isinstance(k, builtins.bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"topk(): argument 'k' (position 2) must be int, not "
                        f"{type(k).__name__}")
    if input.dtype is dt.bool_:
        raise RuntimeError("topk does not support bool dtypes")
    if isinstance(dim, builtins.bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"topk(): argument 'dim' must be int, not {type(dim).__name__}")
    d = wrap_dim(dim, input.ndim)
    size = input._shape[d] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError("selected index k out of range")
    values, indices = apply(SORT, input, dim=d, descending=bool(largest))
    if input.ndim:
        indices = contiguous(narrow(indices, d, 0, k))
        values = contiguous(narrow(values, d, 0, k))
    if input.requires_grad:
        values = F.gather(input, d, indices)
    return RETURN_TYPES["topk"](values, indices)


# --- unique -------------------------------------------------------------------------------


def _runs(ordered):
    """Where the runs of equal entries of a sorted non-empty 1-d tensor (or of equal rows
    of a 2-d one) start, and the run of every entry. NaN differs from itself, so each NaN
    is a run of its own, as in PyTorch. Reads the number of runs on the host."""
    differs = ordered[1:] != ordered[:-1]
    if differs.ndim > 1:
        differs = differs.any(1)
    new = F.cat([ordered.new_ones(1, dtype=dt.bool_), differs])
    return F.nonzero(new).reshape(-1), F.cumsum(new, 0) - 1


def _lexicographic_order(rows):
    """The stable lexicographic order of the rows of a 2-d tensor: a stable sort by each
    column, from the last to the first."""
    perm = None
    for col in reversed(range(rows._shape[1])):
        column = rows[:, col] if perm is None else F.index_select(rows[:, col], 0, perm)
        order = argsort(column)
        perm = order if perm is None else F.index_select(perm, 0, order)
    return perm


@public
def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """torch.unique: the distinct values (or slices along ``dim``) in ascending order,
    with the inverse map and the counts on request. The result is sorted whatever
    ``sorted`` says (PyTorch's CPU result is sorted too). Not differentiable."""
    _check_tensor(input, "unique")
    x = input.detach()
    if dim is None:
        flat = reshape(x, -1)
    else:
        d = wrap_dim(dim, x.ndim)
        if any(s == 0 for k, s in enumerate(x._shape) if k != d):
            raise RuntimeError("There are 0 sized dimensions, and they aren't selected, so "
                               "unique cannot be applied")
        moved = movedim(x, d, 0)
        flat = reshape(moved, moved._shape[0], -1)
    m = flat._shape[0]
    if m == 0:
        empty = flat.new_zeros(0, dtype=dt.int64)
        uniq, starts, ids, perm = flat, empty, empty, empty
    elif dim is None:
        uniq, perm = apply(SORT, flat, dim=0, descending=False)
        starts, ids = _runs(uniq)
        uniq = F.index_select(uniq, 0, starts)
    else:
        perm = _lexicographic_order(flat)
        ordered = F.index_select(flat, 0, perm)
        starts, ids = _runs(ordered)
        uniq = F.index_select(ordered, 0, starts)
    if dim is not None:
        uniq = contiguous(movedim(reshape(uniq, -1, *moved._shape[1:]), 0, d))
    out = [uniq]
    if return_inverse:
        inverse = F.scatter(flat.new_zeros(m, dtype=dt.int64), 0, perm, ids) if m else ids
        out.append(reshape(inverse, *x._shape) if dim is None else inverse)
    if return_counts:
        out.append(F.cat([starts[1:], starts.new_full((1,), m)]) - starts if m else starts)
    return out[0] if len(out) == 1 else tuple(out)


@public
def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """torch.unique_consecutive: the first of each run of equal values (or slices along
    ``dim``), with the inverse map and the run lengths on request. Not differentiable."""
    _check_tensor(input, "unique_consecutive")
    x = input.detach()
    if dim is None:
        flat = reshape(x, -1)
    else:
        d = wrap_dim(dim, x.ndim)
        moved = movedim(x, d, 0)
        flat = reshape(moved, moved._shape[0], -1)
    m = flat._shape[0]
    if m == 0:
        starts = ids = flat.new_zeros(0, dtype=dt.int64)
        uniq = flat
    else:
        starts, ids = _runs(flat)
        uniq = F.index_select(flat, 0, starts)
    if dim is not None:
        uniq = contiguous(movedim(reshape(uniq, -1, *moved._shape[1:]), 0, d))
    out = [uniq]
    if return_inverse:
        out.append(reshape(ids, *x._shape) if dim is None else ids)
    if return_counts:
        out.append(F.cat([starts[1:], starts.new_full((1,), m)]) - starts if m else starts)
    return out[0] if len(out) == 1 else tuple(out)


@public
def kthvalue(input, k, dim=-1, keepdim=False):
    """torch.kthvalue: the k-th smallest along ``dim`` (values, indices); NaN largest."""
    _check_tensor(input, "kthvalue")
    d = wrap_dim(dim, input.ndim)
    size = input._shape[d] if input.ndim else 1
    if isinstance(k, builtins.bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"kthvalue(): argument 'k' must be int, not {type(k).__name__}")
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    x = input if input.ndim else reshape(input, 1)
    _, indices = apply(SORT, x, dim=d, descending=False)
    indices = narrow(indices, d, k - 1, 1)
    values = F.gather(x, d, indices)
    if not keepdim or not input.ndim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return RETURN_TYPES["kthvalue"](values, contiguous(indices))


@public
def mode(input, dim=-1, keepdim=False):
    """torch.mode: the most frequent value along ``dim`` (the smallest of equally frequent
    ones) and the index of its last occurrence, from one sort and run lengths."""
    _check_tensor(input, "mode")
    d = wrap_dim(dim, input.ndim)
    x = input if input.ndim else reshape(input, 1)
    n = x._shape[d]
    if n == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    rows = contiguous(movedim(x.detach(), d, -1))
    rows = reshape(rows, -1, n)
    values, order = apply(SORT, rows, dim=1, descending=False)
    new = values[:, 1:] != values[:, :-1]
    new = F.cat([new.new_ones(new._shape[0], 1), new], 1)
    run = F.cumsum(new, 1) - 1
    lengths = F.scatter_add(run.new_zeros(*run._shape), 1, run, run.new_ones(*run._shape))
    per_place = F.gather(lengths, 1, run)
    # the last place of the longest, smallest run: the largest place whose run is longest
    # and starts no later than the first such run
    best_run = F.gather(run, 1, F.argmax(per_place, 1, True))
    last = F.sum(run <= best_run, 1, True) - 1
    indices = F.gather(order, 1, last)
    indices = movedim(reshape(indices, *_rows_shape(x, d)), -1, d)
    out = F.gather(x, d, indices)
    if not keepdim or not input.ndim:
        out, indices = out.squeeze(d), indices.squeeze(d)
    return RETURN_TYPES["mode"](out, contiguous(indices))


def _rows_shape(x, d):
    """x's shape with dim d moved last and made 1."""
    shape = [s for i, s in enumerate(x._shape) if i != d]
    return (*shape, 1)


def _search(name, sorted_sequence, values, right: bool, sorter):
    """For each value, the number of entries of its row of ``sorted_sequence`` below it
    (right: not above it): one stable sort of the row joined with its values, where each
    value lands after (right: before) the entries equal to it."""
    seq = sorted_sequence.detach()
    if sorter is not None:
        seq = F.gather(seq, -1, sorter)
    vals = values.detach()
    n = seq._shape[-1]
    if seq.ndim == 1:
        lead, rows = vals._shape, 1
        vals = reshape(vals, 1, -1)
    else:
        if seq._shape[:-1] != vals._shape[:-1]:
            raise RuntimeError(
                f"torch.{name}(): boundaries tensor should be 1 dimension or the first N-1 "
                f"dimensions of boundaries tensor and input value tensor must match, but we "
                f"got boundaries tensor {list(seq.shape)} and input value tensor "
                f"{list(values.shape)}")
        lead = vals._shape
        rows = math.prod(seq._shape[:-1])
        vals = reshape(vals, rows, -1)
    m = vals._shape[1]
    seq = reshape(seq, rows, n)
    if m == 0 or rows == 0:
        return vals.new_zeros(*lead, dtype=dt.int64)
    joined = F.cat([seq, vals] if right else [vals, seq], 1)
    _, order = apply(SORT, joined, dim=1, descending=False)
    is_entry = (order < n) if right else (order >= m)
    below = F.cumsum(is_entry, 1)
    placed = F.scatter(below.new_zeros(*below._shape), 1, order, below)
    found = placed[:, n:] if right else placed[:, :m]
    return reshape(contiguous(found), *lead)


@public(method=False)
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,
                 sorter=None, out=None):
    """torch.searchsorted: the insertion points of ``input`` in the innermost dim of
    ``sorted_sequence`` (1-d, or with input's leading dims); ``right``/``side`` place equal
    values after the entries; ``sorter`` sorts an unsorted sequence."""
    _check_tensor(sorted_sequence, "searchsorted")
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but "
                               f"got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to "
                               "opposites, got side of left while right was True")
        right = side == "right"
    if sorted_sequence.ndim == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should have positive "
                           "dimension, but got 0 dimension")
    if sorter is not None and (sorter.shape != sorted_sequence.shape or
                               sorter.dtype is not dt.int64):
        raise RuntimeError(f"torch.searchsorted(): sorter must be an int64 tensor of the "
                           f"boundaries' shape {list(sorted_sequence.shape)}, got "
                           f"{sorter.dtype.scalar_type} {list(sorter.shape)}")
    scalar = not isinstance(input, registry.Tensor)
    values = sorted_sequence.new_full((), input) if scalar else input
    r = _search("searchsorted", sorted_sequence, values, bool(right), sorter)
    if out_int32:
        r = r.to(dt.int32)
    return r if out is None else out.copy_(r)


@public(method=False)
def bucketize(input, boundaries, *, out_int32=False, right=False, out=None):
    """torch.bucketize: searchsorted in 1-d ``boundaries`` for every element of input."""
    _check_tensor(boundaries, "bucketize")
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim"
                           f"({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right, out=out)


@public(method=False)
def isin(elements=None, test_elements=None, *, assume_unique=False, invert=False,
         element=None, test_element=None):
    """torch.isin: whether each element occurs in ``test_elements`` (either may be a
    number, then named ``element`` / ``test_element`` as in PyTorch's overloads), by a
    search in the sorted test elements."""
    for name, value, other in (("element", element, elements),
                               ("test_element", test_element, test_elements)):
        if value is not None and (other is not None or isinstance(value, registry.Tensor)):
            raise TypeError(f"isin(): '{name}' takes a number and replaces "
                            f"'{name}s', got {type(value).__name__}"
                            + (f" besides '{name}s'" if other is not None else ""))
    elements = element if element is not None else elements
    test_elements = test_element if test_element is not None else test_elements
    if elements is None or test_elements is None:
        raise TypeError("isin() missing required argument "
                        f"'{'elements' if elements is None else 'test_elements'}'")
    if not isinstance(elements, registry.Tensor):
        _check_tensor(test_elements, "isin")
        elements = test_elements.new_full((), elements)
    if not isinstance(test_elements, registry.Tensor):
        test_elements = elements.new_full((), test_elements)
    tests = reshape(test_elements.detach(), -1)
    if tests._shape[0] == 0:
        found = elements.new_zeros(*elements.shape, dtype=dt.bool_)
    else:
        ordered = apply(SORT, tests, dim=0, descending=False)[0]
        pos = _search("isin", ordered, elements, False, None)
        pos = pos.clamp(max=tests._shape[0] - 1)
        found = F.index_select(ordered, 0, reshape(pos, -1)).reshape(*elements.shape)
        found = found == elements.detach()
    return ~found if invert else found


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(name, input, q, dim, keepdim, interpolation, ignore_nan):
    _check_tensor(input, name)
    if not input.dtype.is_floating_point or input.dtype not in (dt.float32, dt.float64):
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest, but got {interpolation}")
    if input.numel() == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    if isinstance(q, registry.Tensor):
        if q.ndim > 1:
            raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
        if q.dtype is not input.dtype:
            raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor")
        qs = q.detach()
        if qs.numel() and not bool(((qs >= 0) & (qs <= 1)).all()):
            raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
        scalar_q = q.ndim == 0
    else:
        if not 0 <= q <= 1:
            raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {q}")
        qs, scalar_q = input.new_full((), float(q)).detach(), True
    qs = reshape(qs, -1)
    if dim is None:
        x, d = reshape(input, -1), 0
    else:
        d = wrap_dim(dim, input.ndim)
        x = input if input.ndim else reshape(input, 1)
    x = movedim(x, d, -1)                         # (..., n)
    n = x._shape[-1]
    ordered, order = apply(SORT, x, dim=x.ndim - 1, descending=False)
    nan = apply(op("isnan"), ordered)
    nans = F.sum(nan, -1, True)                   # NaN sorts last
    valid = nans.new_full((), n) - nans
    if ignore_nan:
        last = (valid - 1).clamp(min=0)
    else:
        last = nans.new_full(nans._shape, n - 1)
    shape = (1,) * x.ndim
    rank = reshape(qs, -1, *shape) * last.to(input.dtype)   # (Q, ..., 1)
    lo = F.floor(rank)
    hi = F.ceil(rank)
    if interpolation == "nearest":
        lo = hi = F.round(rank)
    lo_i, hi_i = lo.to(dt.int64), hi.to(dt.int64)
    xs = F.gather(x, -1, order) if input.requires_grad else ordered
    xs = xs.unsqueeze(0).expand(qs._shape[0], *xs._shape)
    a = F.gather(xs, -1, lo_i)
    b = F.gather(xs, -1, hi_i)
    if interpolation in ("lower", "nearest"):
        r = a
    elif interpolation == "higher":
        r = b
    elif interpolation == "midpoint":
        r = (a + b) * 0.5
    else:
        r = F.lerp(a, b, rank - lo)
    bad = (valid == 0) if ignore_nan else (nans > 0)
    r = F.where(bad.unsqueeze(0), math.nan, r)
    r = r.squeeze(-1)                             # (Q, ...)
    if keepdim:
        if dim is None:
            r = reshape(r, qs._shape[0], *((1,) * input.ndim))
        else:
            r = r.unsqueeze(d + 1) if input.ndim else r
    return r.squeeze(0) if scalar_q else r


@public
def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """torch.quantile: the q-th quantiles along ``dim`` (all elements when None); a row
    holding NaN gives NaN. A 1-d q puts its dim first."""
    return _quantile("quantile", input, q, dim, keepdim, interpolation, False)


@public
def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """torch.nanquantile: quantile over the non-NaN values (NaN for an all-NaN row)."""
    return _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)


# --- cumulative-weight search (multinomial) -----------------------------------------------


def search_cdf(cdf, u):
    """For each row r of the contiguous float (rows, n) cumulative weights and each uniform
    u[r, s] in [0, 1): the first category whose cumulative weight exceeds u times the row's
    total (an int64 (rows, m) tensor); zero-weight categories are never returned."""
    rows, n = cdf._shape
    m = u._shape[1]
    out = registry.Tensor._empty((rows, m), dt.int64, cdf.device)
    total = rows * m
    if total:
        info = cdf.device.info
        defines = (("ACC", cdf.dtype.cl),) + ((("USE_FP64", "1"),) if cdf.dtype is dt.float64
                                              else ())
        kern = codegen.template_kernel(info, "sort.cl", "search_cdf", defines)
        _launch(info, kern, "search_cdf", total, {"cdf": cdf._storage.buf, "n": n,
                                                  "u": u._storage.buf, "m": m,
                                                  "total": total, "out": out._storage.buf})
    return out
