"""Pooling composed from other ops: adaptive max pooling (1-3 d), fractional max pooling
(2-3 d) and max unpooling (1-3 d).

Adaptive and fractional windows start at positions that vary along each axis, so they are
no kernel row: the pool reduces one spatial axis at a time, last first. Each step gathers
every window's taps along the axis into a new axis of length K (a window shorter than K
repeats its last tap, which never changes a maximum or its first position) and takes the
max over it; the positions chosen so far ride along through the same gathers. A maximum
over a box is the maximum over each axis in turn, and the first maximum in the
lexicographic scan PyTorch's kernels make is found by taking the first maximum axis by
axis, so values and indices equal PyTorch's (NaN aside: a NaN wins here too, but the first
one rather than the last), and the gradients (gather and max rows) reach the argmax.
Max unpooling is a scatter into zeros: its gradient is a gather, as PyTorch's.
Imports conv, index, movement, creation, registry and dtypes; never tensor."""

from __future__ import annotations

import numbers

import numpy as np

from .. import dtypes as dt
from .. import runtime
from ..creation import arange, rand, tensor, zeros
from . import registry
from .conv import _check_float, _check_tensor, _max_pool, _unbatch
from .elementwise import _pyname
from .index import _check_read, _index_info, gather, scatter
from .movement import reshape, unsqueeze

_F = registry.functions
_COUNT = {1: "one", 2: "two", 3: "three"}


# --- windows of varying start ------------------------------------------------------------


def _pool_axes(x, starts, lengths, size):
    """Max over windows of each spatial axis of x (N, C, *size): axis a's window o covers
    ``starts[a][..., o]`` onwards for ``lengths[a]`` taps (an int, or per output an (n_out,)
    array for adaptive windows). starts[a] broadcasts against (N, C, O_a). Returns the
    values and the flat input index of each maximum."""
    nd = len(size)
    pos = None  # flat position of the maximum so far, over the reduced axes
    stride_after = 1  # elements of the axes already reduced, in the flat index
    for a in range(nd - 1, -1, -1):
        dim = 2 + a
        start = starts[a]  # (N or 1, C or 1, n_out) int64
        n_out = start.shape[-1]
        K = int(np.max(lengths[a])) if n_out else 1
        taps = arange(K, device=x.device)
        if isinstance(lengths[a], np.ndarray):  # shorter windows repeat their last tap
            last = tensor(lengths[a] - 1, dtype=dt.int64, device=x.device)
            taps = _F.minimum(taps, unsqueeze(last, -1))
        idx = reshape(unsqueeze(start, -1) + taps, *start.shape[:-1], n_out * K)
        # idx along ``dim`` of x's current shape: (N, C, 1.., n_out*K, 1..)
        trail = x.ndim - dim - 1
        idx = reshape(idx, *idx.shape[:2], *([1] * (a)), n_out * K, *([1] * trail))
        shape = list(x.shape)
        shape[dim] = n_out * K
        idx = idx.expand(*shape)
        win = gather(x, dim, idx)
        split = shape[:dim] + [n_out, K] + shape[dim + 1:]
        x, k = _F.max(reshape(win, *split), dim + 1)
        chosen = gather(reshape(idx, *split), dim + 1, unsqueeze(k, dim + 1))
        chosen = _F.squeeze(chosen, dim + 1)  # input position along this axis
        if pos is None:
            pos = chosen
        else:
            carried = gather(pos, dim, idx)
            carried = _F.squeeze(gather(reshape(carried, *split), dim + 1,
                                        unsqueeze(k, dim + 1)), dim + 1)
            pos = chosen * stride_after + carried
        stride_after *= size[a]
    return x, pos


def _adaptive_starts(n: int, o: int, device):
    """Adaptive windows along one axis: their starts (as a (1, 1, O) tensor) and lengths."""
    s = np.arange(o) * n // o
    e = -(-(np.arange(o) + 1) * n // o)
    return reshape(tensor(s, dtype=dt.int64, device=device), 1, 1, o), e - s


# --- adaptive max pooling ----------------------------------------------------------------


def adaptive_max_pool(nd: int, input, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool{nd}d: window i along an axis of size n spans
    floor(i n / O) .. ceil((i + 1) n / O); indices are flat per plane. Evenly divided sizes
    are one max pool row."""
    fn = f"adaptive_max_pool{nd}d"
    _check_tensor(fn, input)
    if input.ndim not in (nd + 1, nd + 2):
        sep = ": " if nd == 3 else " "
        raise RuntimeError(f"{fn}(): Expected {nd + 1}D or {nd + 2}D tensor, but got{sep}"
                           f"{list(input.shape)}")
    size = tuple(input.shape[-nd:])
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise RuntimeError(f"{fn}(): internal error: output_size.size() must be {nd}")
        osize = tuple(n if v is None else int(v) for v, n in zip(output_size, size))
    else:
        osize = (int(output_size),) * nd
    for d in range(1, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(
                f"{fn}(): Expected input to have non-zero size for non-batch dimensions, but "
                f"input has sizes {list(input.shape)} with dimension {d} being empty")
    if min(osize) < 0 or (nd == 2 and min(osize) == 0):
        if nd == 2:
            raise RuntimeError(f"{fn}(): elements of output_size must be greater than 0 but "
                               f"received {{{osize[0]}, {osize[1]}}}")
        shape = list(input.shape[:-nd]) + list(osize)
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(osize)}: "
                           f"{shape}")
    _check_float(fn, input)
    if nd >= 2 and all(o > 0 and n % o == 0 for n, o in zip(size, osize)):
        r = _max_pool(nd, input, tuple(n // o for n, o in zip(size, osize)), None, 0, 1,
                      False, True)
        return r if return_indices else r[0]
    unbatched = input.ndim == nd + 1
    x = unsqueeze(input, 0) if unbatched else input
    if x.numel() == 0 or min(osize) == 0:
        y = zeros(*x.shape[:2], *osize, dtype=x.dtype, device=x.device)
        idx = zeros(*y.shape, dtype=dt.int64, device=x.device)
    else:
        starts, lengths = zip(*(_adaptive_starts(n, o, x.device) for n, o in zip(size, osize)))
        y, idx = _pool_axes(x, starts, lengths, size)
    return _unbatch((y, idx), unbatched) if return_indices else _unbatch(y, unbatched)


# --- fractional max pooling --------------------------------------------------------------


def _intervals(u, n: int, o: int, k: int, dtype):
    """PyTorch's generate_intervals for samples u (N, C): window starts (N, C, o), computed
    in the input's dtype as PyTorch computes them (int((i + u) * alpha) - int(u * alpha),
    the last window ending at the input's end)."""
    last = tensor([n - k], dtype=dt.int64, device=u.device).expand(*u.shape, 1)
    if o <= 1:
        return last[..., :o]
    np_t = dtype.np.type if dtype in (dt.float32, dt.float64) else np.float32
    alpha = tensor(np_t(n - k) / np_t(o - 1), dtype=u.dtype, device=u.device)
    i = arange(o - 1, dtype=u.dtype, device=u.device)
    uu = unsqueeze(u, -1)
    seq = _F.trunc((i + uu) * alpha).to(dt.int64) - _F.trunc(uu * alpha).to(dt.int64)
    return _F.cat([seq, last], -1)


def _fractional_sizes(fn, nd, input, kernel_size, output_size, output_ratio):
    """kernel_size and output_size as nd-tuples (output_ratio scaling the input's sizes)."""
    if output_size is None and output_ratio is None:
        raise ValueError(f"{fn} requires specifying either an output_size or an output_ratio")
    if output_size is None:
        ratio = output_ratio if isinstance(output_ratio, (tuple, list)) else (output_ratio,)
        if len(ratio) > nd:
            raise ValueError(f"{fn} requires output_ratio to either be a single Int or tuple "
                             "of Ints.")
        ratio = tuple(ratio) * (nd if len(ratio) == 1 else 1)
        output_size = [int(input.shape[i - nd] * r) for i, r in enumerate(ratio)]
    out = []
    for v, what in ((kernel_size, "kernel_size"), (output_size, "output_size")):
        t = tuple(v) if isinstance(v, (tuple, list)) else (v,)
        if len(t) not in (1, nd) or not all(isinstance(e, (numbers.Integral, np.integer))
                                             for e in t):
            raise RuntimeError(f"{fn}: {what} must either be a single Int or tuple of "
                               f"{'Ints' if nd == 2 else 'three Ints'}")
        out.append(tuple(int(e) for e in t) * (nd if len(t) == 1 else 1))
    return out


def fractional_max_pool(nd: int, input, kernel_size, output_size=None, output_ratio=None,
                        return_indices=False, _random_samples=None):
    """torch.nn.functional.fractional_max_pool{nd}d; the samples come from clgraph's
    generator (cg.manual_seed), (N, C, nd) of the input's dtype, one per axis in the order
    PyTorch reads them (2-d: width, height; 3-d: time, height, width)."""
    fn = f"fractional_max_pool{nd}d"
    _check_tensor(fn, input)
    ks, osize = _fractional_sizes(fn, nd, input, kernel_size, output_size, output_ratio)
    where = f"{fn}()" if nd == 2 else f"{fn}_out()"
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{where}: Expected {nd + 1}D or {nd + 2}D tensor, but got: "
                           f"{list(input.shape)}")
    for d in range(1, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(f"{where}: Expected input to have non-zero size for non-batch "
                               f"dimensions, but got{list(input.shape)} with dimension {d} "
                               "being empty.")
    size = tuple(input.shape[-nd:])
    # PyTorch's checks: 2-d height then width; 3-d time, width, height and one tap stricter
    order = ((0, "height"), (1, "width")) if nd == 2 else \
        ((0, "time"), (2, "width"), (1, "height"))
    for a, name in order:
        if osize[a] + ks[a] - 1 > size[a] - (nd == 3):
            raise RuntimeError(f"{where}: pool {name} {ks[a]} too large relative to input "
                               f"{name} {size[a]}")
    _check_float(fn, input)
    unbatched = input.ndim == nd + 1
    x = unsqueeze(input, 0) if unbatched else input
    N, C = x.shape[:2]
    u = _random_samples
    if u is None:
        u = rand(N, C, nd, dtype=x.dtype, device=x.device)
    else:
        _check_tensor(fn, u)
        if u.dtype != x.dtype:
            raise RuntimeError("Expect _random_samples to have the same dtype as input")
        if u.ndim != 3:
            raise RuntimeError(f"Expect _random_samples to have 3 dimensions, got {u.ndim}")
        if u.shape[0] < N:
            raise RuntimeError("Expect _random_samples.size(0) no less then input batch size.")
        if u.shape[1] != C:
            raise RuntimeError("Expect _random_samples.size(1) equals to input channel size.")
        if u.shape[2] != nd:
            raise RuntimeError(f"Expect _random_samples.size(2) equals to {nd}; got "
                               f"{u.shape[2]}.")
        u = u.detach()[:N]
    if x.numel() == 0 or min(osize) == 0 or min(ks) <= 0:
        y = zeros(N, C, *osize, dtype=x.dtype, device=x.device) - float("inf")
        idx = zeros(*y.shape, dtype=dt.int64, device=x.device)
    else:
        column = (1, 0) if nd == 2 else (0, 1, 2)  # PyTorch's sample for each axis
        starts = [_intervals(u[:, :, c], n, o, k, x.dtype)
                  for c, n, o, k in zip(column, size, osize, ks)]
        y, idx = _pool_axes(x, starts, ks, size)
    return _unbatch((y, idx), unbatched) if return_indices else _unbatch(y, unbatched)


# --- max unpooling -----------------------------------------------------------------------


def _unpool_size(input, kernel_size, stride, padding, output_size):
    """PyTorch's _unpool_output_size: the default size, or output_size checked against it."""
    nd = len(kernel_size)
    default = [(input.shape[i - nd] - 1) * stride[i] + kernel_size[i] - 2 * padding[i]
               for i in range(nd)]
    if output_size is None:
        return default
    if len(output_size) == nd + 2:
        output_size = output_size[2:]
    if len(output_size) != nd:
        raise ValueError(f"output_size should be a sequence containing {nd} or {nd + 2} "
                         f"elements, but it has a length of '{len(output_size)}'")
    for d in range(nd):
        lo, hi = default[d] - stride[d], default[d] + stride[d]
        if not lo < output_size[d] < hi:
            raise ValueError(f'invalid output_size "{output_size}" (dim {d} must be between '
                             f'{lo} and {hi})')
    return [int(v) for v in output_size]


def _unpool_tuple(v, nd):
    return tuple(int(e) for e in v) * (nd if len(v) == 1 else 1) \
        if isinstance(v, (tuple, list)) else (int(v),) * nd


def _check_unpool_index(indices, volume: int, shown: str) -> None:
    """PyTorch's runtime check that every index falls in the output volume (a host read,
    remembered per index version; replayed by compiled graphs)."""
    if indices.numel() == 0:
        return
    if runtime.observers:
        runtime.notify(registry.IndexCheck(
            indices, lambda t: _check_unpool_index(t, volume, shown) or True))
    lo, hi, _ = _index_info(indices)
    if lo >= 0 and hi < volume:
        return
    flat = _check_read(indices).ravel()
    bad = int(flat[np.flatnonzero((flat < 0) | (flat >= volume))[0]])
    raise RuntimeError(f"Found an invalid max index: {bad} (output volumes are of size "
                       f"{shown})")


def max_unpool(nd: int, input, indices, kernel_size, stride=None, padding=0,
               output_size=None):
    """torch.nn.functional.max_unpool{nd}d: the values put at their flat indices in a zero
    volume of output_size (by default the size max pooling came from). With repeated
    indices the last value wins; gradients are a gather, as PyTorch's."""
    fn = f"max_unpool{nd}d"
    _check_tensor(fn, input)
    ks = _unpool_tuple(kernel_size, nd)
    st = ks if stride is None else _unpool_tuple(stride, nd)
    pad = _unpool_tuple(padding, nd)
    osize = _unpool_size(input, ks, st, pad, output_size)
    if nd == 1:  # PyTorch's: a 2-d unpool of width one
        osize = osize + [1]
        input, indices = unsqueeze(input, -1), unsqueeze(indices, -1)
    kd = max(nd, 2)
    if not isinstance(indices, registry.Tensor) or indices.dtype != dt.int64:
        got = _pyname(indices.dtype) if isinstance(indices, registry.Tensor) else \
            type(indices).__name__
        raise RuntimeError(f"elements in indices should be type int64 but got: {got}")
    if input.ndim not in (kd + 1, kd + 2):
        raise RuntimeError(f"Input to max_unpooling{kd}d should be a {kd + 1}d or {kd + 2}d "
                           f"Tensor, but got a tensor with {input.ndim} dimensions.")
    if tuple(input.shape) != tuple(indices.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: "
                           f"{list(indices.shape)}")
    for d in range(1, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(f"max_unpooling{kd}d_forward_out_cpu(): Expected input to have "
                               f"non-zero size for non-batch dimensions, but got "
                               f"{list(input.shape)} with dimension {d} being empty.")
    if nd == 3 and min(st) <= 0:
        raise RuntimeError(f"strides should be greater than zero, but got stride: {list(st)}")
    _check_float(fn, input)
    volume = int(np.prod(osize))
    _check_unpool_index(indices, volume, "x".join(map(str, osize)))
    unbatched = input.ndim == kd + 1
    x = unsqueeze(input, 0) if unbatched else input
    idx = unsqueeze(indices, 0) if unbatched else indices
    N, C = x.shape[:2]
    out = scatter(zeros(N, C, volume, dtype=x.dtype, device=x.device), 2,
                  reshape(idx, N, C, -1), reshape(x, N, C, -1))
    out = _unbatch(reshape(out, N, C, *osize), unbatched)
    return _F.squeeze(out, -1) if nd == 1 else out


__all__ = ["adaptive_max_pool", "fractional_max_pool", "max_unpool"]
