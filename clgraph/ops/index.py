"""Indexing: basic indexing (views), advanced integer/boolean indexing, gather,
index_select, masked_fill, setitem."""

from __future__ import annotations

import numbers

from . import registry
from .movement import SLICE, apply


def _is_basic(item) -> bool:
    return item is None or item is Ellipsis or isinstance(item, slice) or (
        isinstance(item, numbers.Integral) and not isinstance(item, bool)
    )


def getitem(x, index):
    if not isinstance(index, tuple):
        index = (index,)
    if all(_is_basic(i) for i in index):
        if x.ndim == 0 and any(i is not None and i is not Ellipsis for i in index):
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python "
                             "or `tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
        if sum(1 for i in index if i is Ellipsis) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        return apply(SLICE, x, index=index)
    raise NotImplementedError("advanced indexing is not implemented yet")


def setitem(x, index, value):
    target = getitem(x, index)
    from .math import copy_, fill_

    if isinstance(value, registry.Tensor):
        copy_(target, value)
    else:
        fill_(target, value)
