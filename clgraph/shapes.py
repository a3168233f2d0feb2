"""Shape and stride arithmetic shared by tensors, ops and codegen: sizes, contiguous strides,
dims wrapped as PyTorch wraps them, broadcasting, views of strided memory. Pure functions on
tuples of ints; imports nothing from clgraph."""

from __future__ import annotations

import builtins
import numbers


def numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def contiguous_strides(shape) -> tuple[int, ...]:
    """Row-major strides (size-0 dims count as 1, as PyTorch's)."""
    st = []
    acc = 1
    for n in reversed(shape):
        st.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(st))


def is_contiguous(shape, stride) -> bool:
    """Row-major, up to the strides of size-1 dims, which never matter."""
    acc = 1
    for n, s in zip(reversed(shape), reversed(stride)):
        if n != 1 and s != acc:
            return False
        acc *= n
    return True


def wrap_dim(dim, ndim: int) -> int:
    """A dim in [-ndim, ndim) as a non-negative index (a 0-d tensor takes -1 and 0)."""
    if not isinstance(dim, numbers.Integral) or isinstance(dim, builtins.bool):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not lo <= dim <= hi:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})"
        )
    return dim % ndim if ndim else 0


def wrap_dims(dim, ndim: int) -> tuple[int, ...] | None:
    """dim as None, an int or a sequence -> sorted tuple of wrapped dims (None: all)."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        seen: list[int] = []
        for d in dim:
            w = wrap_dim(d, ndim)
            if w in seen:
                raise RuntimeError(f"dim {w} appears multiple times in the list of dims")
            seen.append(w)
        return tuple(sorted(seen)) if seen else None
    return (wrap_dim(dim, ndim),)


# --- broadcasting ----------------------------------------------------------------------------


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """torch.broadcast_shapes, with PyTorch's error message: shapes broadcast pairwise, left
    to right, each pair compared from the last dimension. An int n is the shape (n,)."""
    shapes = [(s,) if isinstance(s, numbers.Integral) else tuple(s) for s in shapes]
    for s in shapes:
        if any(n < 0 for n in s):
            raise RuntimeError(f"Trying to create tensor with negative dimension {min(s)}: "
                               f"{list(s)}")
    out: tuple[int, ...] = shapes[0] if shapes else ()
    for s in shapes[1:]:
        out = _broadcast_pair(out, s)
    return out


def _broadcast_pair(a, b):
    ndim = max(len(a), len(b))
    a1, b1 = (1,) * (ndim - len(a)) + a, (1,) * (ndim - len(b)) + b
    for j in reversed(range(ndim)):
        if a1[j] != b1[j] and a1[j] != 1 and b1[j] != 1:
            raise RuntimeError(f"The size of tensor a ({a1[j]}) must match the size of tensor "
                               f"b ({b1[j]}) at non-singleton dimension {j}")
    return tuple(y if x == 1 else x for x, y in zip(a1, b1))


def broadcast_strides(shape, strides, out_shape):
    """Strides that read a tensor of ``shape`` as ``out_shape`` (0 along broadcast dims)."""
    off = len(out_shape) - len(shape)
    st = [0] * off
    for n, s in zip(shape, strides):
        st.append(0 if n == 1 else s)
    return st


def sum_to_dims(shape, target) -> tuple[int, ...]:
    """The dims of ``shape`` to sum (keeping them) so that it broadcasts back from
    ``target``: the leading dims broadcasting added, and the size-1 dims of target that
    were expanded."""
    lead = len(shape) - len(target)
    dims = list(range(lead))
    for i, n in enumerate(target):
        if n == 1 and shape[lead + i] != 1:
            dims.append(lead + i)
    return tuple(dims)


def collapse(shape, stride_lists):
    """Merge adjacent dims that every operand walks contiguously; drops size-1 dims."""
    dims = [i for i, n in enumerate(shape) if n != 1]
    if not dims:
        return (), [[] for _ in stride_lists]
    new_shape = [shape[dims[0]]]
    new_strides = [[st[dims[0]]] for st in stride_lists]
    for i in dims[1:]:
        n = shape[i]
        if all(ns[-1] == st[i] * n for ns, st in zip(new_strides, stride_lists)):
            new_shape[-1] *= n
            for ns, st in zip(new_strides, stride_lists):
                ns[-1] = st[i]
        else:
            new_shape.append(n)
            for ns, st in zip(new_strides, stride_lists):
                ns.append(st[i])
    return tuple(new_shape), new_strides


# --- views -----------------------------------------------------------------------------------


def infer_size(shape, numel: int) -> tuple[int, ...]:
    """Resolve one -1 in ``shape`` against ``numel`` elements, as view/reshape do."""
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if any(s < -1 for s in shape):
        raise RuntimeError(f"invalid shape dimension {min(shape)}")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = list(shape)
        shape[neg[0]] = numel // known
        return tuple(shape)
    if known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


def view_strides(old_shape, old_stride, new_shape):
    """Strides that view old memory as new_shape, or None when no view exists. Walks the
    old dims from the innermost, grouping dims that are contiguous with each other into
    chunks; new dims must tile each chunk exactly."""
    if 0 in old_shape or 0 in new_shape:
        return contiguous_strides(new_shape)
    if not old_shape:
        old_shape, old_stride = (1,), (1,)
    new_stride = [0] * len(new_shape)
    vd = len(new_shape) - 1
    base = old_stride[-1]
    old_n = view_n = 1
    for d in range(len(old_shape) - 1, -1, -1):
        old_n *= old_shape[d]
        if d == 0 or (old_shape[d - 1] != 1 and old_stride[d - 1] != old_n * base):
            while vd >= 0 and (view_n < old_n or new_shape[vd] == 1):
                new_stride[vd] = view_n * base
                view_n *= new_shape[vd]
                vd -= 1
            if view_n != old_n:
                return None
            if d > 0:
                base = old_stride[d - 1]
                old_n = view_n = 1
    if vd != -1:
        return None
    return tuple(new_stride)
