"""torch.nn.attention: ``SDPBackend`` and the ``sdpa_kernel`` context manager.

clgraph's scaled_dot_product_attention has one implementation, so the backend choice is
recorded (in torch.backends.cuda's flags, as PyTorch keeps it) and changes nothing, except
that with every backend turned off the call raises, as PyTorch's does."""

from __future__ import annotations

import contextlib
from enum import IntEnum

from ...backends import cuda as _cuda

__all__ = ["SDPBackend", "WARN_FOR_UNFUSED_KERNELS", "sdpa_kernel"]

WARN_FOR_UNFUSED_KERNELS = False


class SDPBackend(IntEnum):
    """The backends of scaled dot product attention, with PyTorch's values."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


# SDPBackend -> its flag in torch.backends.cuda (``_cuda._sdp``)
_FLAGS = {SDPBackend.CUDNN_ATTENTION: "cudnn", SDPBackend.FLASH_ATTENTION: "flash",
          SDPBackend.EFFICIENT_ATTENTION: "mem_efficient", SDPBackend.MATH: "math",
          SDPBackend.OVERRIDEABLE: "overrideable"}
_DEFAULT_PRIORITY = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                     SDPBackend.MATH, SDPBackend.CUDNN_ATTENTION, SDPBackend.OVERRIDEABLE]
_priority = list(_DEFAULT_PRIORITY)


def _current(with_priority: bool = False) -> list:
    on = [b for b, flag in _FLAGS.items() if _cuda._sdp.get(flag, True)]
    if with_priority:
        on.sort(key=_priority.index)
    return on


def _set(backends, set_priority: bool) -> None:
    global _priority
    for b, flag in _FLAGS.items():
        _cuda._sdp[flag] = b in backends
    if set_priority:
        _priority = list(backends) + [b for b in _priority if b not in backends]


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """torch.nn.attention.sdpa_kernel: within the block only ``backends`` (an SDPBackend or
    a list of them) are enabled, in that priority order with ``set_priority``; the previous
    state is restored on exit."""
    if not isinstance(backends, (list, SDPBackend)):
        raise AssertionError(f"Backend must be an instance of SDPBackend or a list of "
                             f"SDPBackend instances, got {type(backends).__name__}")
    if isinstance(backends, SDPBackend):
        backends = [backends]
    backends = list(dict.fromkeys(backends))
    previous = _current(with_priority=set_priority)
    previous_priority = list(_priority)
    try:
        _set(backends, set_priority)
        yield {}
    finally:
        _set(previous, False)
        if set_priority:
            _priority[:] = previous_priority
