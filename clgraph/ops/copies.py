"""The ``*_copy`` functions (torch.view_copy, permute_copy, ...): each view function's
result as a new contiguous tensor that shares no storage with its input, differentiable
through the view and the copy. Imports only the registry's public functions."""

from __future__ import annotations

from .._memory_format import contiguous_format
from .registry import functions as F
from .registry import public


def _copied(r):
    return tuple(t.clone() for t in r) if isinstance(r, (tuple, list)) else r.clone()


@public(method=False)
def view_copy(input, size):
    return _copied(F.view(input, *size) if isinstance(size, (tuple, list))
                   else F.view(input, size))


@public(method=False)
def permute_copy(input, dims):
    return _copied(F.permute(input, *dims))


@public(method=False)
def t_copy(input):
    return _copied(F.t(input))


@public(method=False)
def transpose_copy(input, dim0, dim1):
    return _copied(F.transpose(input, dim0, dim1))


@public(method=False)
def squeeze_copy(input, dim=None):
    return _copied(F.squeeze(input, dim))


@public(method=False)
def unsqueeze_copy(input, dim):
    return _copied(F.unsqueeze(input, dim))


@public(method=False)
def expand_copy(input, size, *, implicit=False):
    return _copied(F.expand(input, *size))


@public(method=False)
def diagonal_copy(input, offset=0, dim1=0, dim2=1):
    return _copied(F.diagonal(input, offset, dim1, dim2))


@public(method=False)
def select_copy(input, dim, index):
    return _copied(F.select(input, dim, index))


@public(method=False)
def slice_copy(input, dim=0, start=None, end=None, step=1):
    """torch.slice_copy: input[start:end:step] along ``dim``, copied."""
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    index = [slice(None)] * (dim % max(input.ndim, 1)) + [slice(start, end, step)]
    return _copied(input[tuple(index)])


@public(method=False)
def split_copy(input, split_size, dim=0):
    return _copied(F.split(input, split_size, dim))


@public(method=False)
def split_with_sizes_copy(input, split_sizes, dim=0):
    return _copied(F.split_with_sizes(input, split_sizes, dim))


@public(method=False)
def unbind_copy(input, dim=0):
    return _copied(F.unbind(input, dim))


@public(method=False)
def unfold_copy(input, dimension, size, step):
    return _copied(input.unfold(dimension, size, step))


@public(method=False)
def detach_copy(input):
    return _copied(input.detach())


@public(method=False)
def alias_copy(input):
    return _copied(input)


@public(method=False)
def as_strided_copy(input, size, stride, storage_offset=None):
    return _copied(F.as_strided(input, size, stride, storage_offset))


@public
def as_strided_scatter(input, src, size, stride, storage_offset=None):
    """torch.as_strided_scatter: a copy of ``input`` whose elements under the view
    as_strided(size, stride, storage_offset) are those of ``src``. As in PyTorch the result is
    a fresh contiguous tensor and ``storage_offset`` counts in input's storage, so the view
    starts ``storage_offset - input.storage_offset()`` elements into the result."""
    if tuple(src.shape) != tuple(size):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src "
                           f"size = {list(src.shape)}, slice size = {list(size)}")
    offset = 0 if storage_offset is None else storage_offset - input._offset
    if offset < 0:
        raise RuntimeError(f"as_strided_scatter: storage_offset {storage_offset} is before "
                           f"the input's own storage offset {input._offset}")
    out = input.clone(memory_format=contiguous_format)
    F.as_strided(out, size, stride, offset).copy_(src)
    return out
