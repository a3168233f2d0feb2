"""torch.memory_format: contiguous_format, channels_last, channels_last_3d,
preserve_format, and the strides each asks for; torch.layout: strided, the only layout a
clgraph tensor has (the sparse ones exist as names, and factories refuse them). Imports
nothing from clgraph.

channels_last (and channels_last_3d) are real layouts here: ``contiguous``, ``clone``,
``to`` and ``empty_like`` given one return a tensor with the channel dim innermost, which
every op reads through its strides (clgraph's kernels do not run faster on it); the other
``*_like`` functions and ``Module.to`` accept the argument and return contiguous tensors.
preserve_format gives a contiguous result (PyTorch keeps a dense input's strides)."""

from __future__ import annotations


class _Named:
    """A constant PyTorch names ``torch.<name>``, one object per name (pickled by name)."""

    __slots__ = ("name",)
    _all: dict

    def __init__(self, name: str) -> None:
        self.name = name
        type(self)._all[name] = self

    def __repr__(self) -> str:
        return "torch." + self.name

    def __reduce__(self):
        return (_by_name, (self.name, type(self).__name__))


class memory_format(_Named):
    """torch.memory_format (lower case: PyTorch's name)."""

    __slots__ = ()
    _all: dict = {}


class layout(_Named):
    """torch.layout: how a tensor's elements are stored (lower case: PyTorch's name)."""

    __slots__ = ()
    _all: dict = {}


def _by_name(name: str, kind: str = "memory_format"):
    return {"memory_format": memory_format, "layout": layout}[kind]._all[name]


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")
_RANK = {channels_last: 4, channels_last_3d: 5}

strided = layout("strided")
sparse_coo = layout("sparse_coo")
sparse_csr = layout("sparse_csr")
sparse_csc = layout("sparse_csc")
sparse_bsr = layout("sparse_bsr")
sparse_bsc = layout("sparse_bsc")
_mkldnn = layout("_mkldnn")
jagged = layout("jagged")


def channels_last_order(fmt, ndim: int) -> tuple[int, ...] | None:
    """The dims from outermost to innermost that ``fmt`` lays out (N, spatial..., C for
    channels_last), or None for a row-major layout. Raises for a rank the format lacks."""
    if fmt is None or fmt is contiguous_format or fmt is preserve_format:
        return None
    if not isinstance(fmt, memory_format):
        raise TypeError(f"memory_format must be a torch.memory_format, not "
                        f"{type(fmt).__name__}")
    rank = _RANK[fmt]
    if ndim != rank:
        raise RuntimeError(f"required rank {rank} tensor to use {fmt.name} format")
    return (0,) + tuple(range(2, rank)) + (1,)


def strides_for(shape, order) -> tuple[int, ...]:
    """Dense strides of ``shape`` with dims laid out in ``order`` (outermost first)."""
    stride = [0] * len(shape)
    step = 1
    for d in reversed(order):
        stride[d] = step
        step *= max(shape[d], 1)
    return tuple(stride)


def is_dense_in(shape, stride, order) -> bool:
    """Whether strides are the dense layout ``order`` (size-1 dims may have any stride)."""
    want = strides_for(shape, order)
    return all(n == 1 or s == w for n, s, w in zip(shape, stride, want))



def check_strided(name: str, layout_) -> None:
    """A factory's ``layout=`` keyword: None or torch.strided (dense storage)."""
    if layout_ is not None and layout_ is not strided:
        raise NotImplementedError(f"{name}(): layout={layout_!r} is not supported: clgraph "
                                  f"tensors are dense (torch.strided)")
