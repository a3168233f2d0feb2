"""``cg.cuda``: "cuda" is an alias of the first OpenCL GPU."""

from __future__ import annotations

from . import runtime
from .creation import manual_seed as _ms
from .device import all_devices, device, gpu_available
from .runtime import OutOfMemoryError, empty_cache  # noqa: F401  (torch.cuda's names)


def is_available() -> bool:
    """True when an OpenCL GPU exists."""
    return gpu_available()


def device_count() -> int:
    return sum(1 for d in all_devices() if d.type == "gpu")


def synchronize(dev=None) -> None:
    runtime.finish(device("cuda" if dev is None else dev).info)


def manual_seed(seed: int) -> None:

    _ms(seed)


manual_seed_all = manual_seed


def _gpu(dev) -> device:
    """torch.cuda's device argument: None is the first GPU, an int the k-th one."""
    if dev is None:
        return device("cuda")
    if isinstance(dev, int):
        return device("cuda", dev)
    return device(dev)


def memory_allocated(device=None) -> int:
    """Bytes held by the tensors on the GPU ``device`` (default: the first)."""
    return runtime.memory_allocated(_gpu(device).index)


def max_memory_allocated(device=None) -> int:
    """The most bytes tensors on the GPU ``device`` held since the last reset."""
    return runtime.max_memory_allocated(_gpu(device).index)


def reset_peak_memory_stats(device=None) -> None:
    runtime.reset_peak_memory_stats(_gpu(device).index)


def memory_reserved(device=None) -> int:
    """Bytes clgraph holds on the GPU ``device``: its tensors' plus its pool's cached
    buffers."""
    return runtime.memory_reserved(_gpu(device).index)
