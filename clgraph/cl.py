"""``cg.cl``: the OpenCL devices clgraph sees."""

from __future__ import annotations

from . import runtime, tune
from .device import all_devices, as_device
from .device import device as _device
from .runtime import OutOfMemoryError  # noqa: F401  (torch.cuda.OutOfMemoryError)


def devices() -> list[dict]:
    """One dict per OpenCL device, in ``cl:N`` order: name, device, platform, type, memory
    (bytes), fp64, fp16."""
    return [d.describe() for d in all_devices()]


def device_count() -> int:
    return len(all_devices())


def tuning(device=None) -> list[dict]:
    """What the auto-tuner knows (clgraph.tune): one dict per device, kernel family and
    shape class with the parameters chosen, their time per run on the tuner's test problem
    and where they came from ("disk", "searched", "default"); only ``device``'s (a
    ``cg.device`` or spec such as "cl:0") when given."""
    info = None
    if device is not None:
        info = (device if isinstance(device, _device) else _device(device)).info
    return tune.results(info)


def memory_allocated(device=None) -> int:
    """Bytes held by the tensors on ``device`` (default: the default device): torch.cuda's
    memory_allocated, counted exactly rather than in the allocator's blocks."""
    return runtime.memory_allocated(as_device(device).index)


def max_memory_allocated(device=None) -> int:
    """The most bytes tensors on ``device`` held since the start or the last
    reset_peak_memory_stats: torch.cuda's max_memory_allocated."""
    return runtime.max_memory_allocated(as_device(device).index)


def reset_peak_memory_stats(device=None) -> None:
    runtime.reset_peak_memory_stats(as_device(device).index)


def memory_reserved(device=None) -> int:
    """Bytes clgraph holds on ``device``: its tensors' plus the free buffers its pool keeps
    for reuse."""
    return runtime.memory_reserved(as_device(device).index)


def empty_cache() -> None:
    """Give the pool's cached free buffers back to the driver (every device's)."""
    runtime.empty_cache()
