"""``cg.cuda``: "cuda" is an alias of the first OpenCL GPU."""

from __future__ import annotations

from typing import NamedTuple

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


class _DeviceProperties(NamedTuple):
    """torch.cuda's device properties, for an OpenCL device: ``major``/``minor`` are 0 (no
    compute capability), ``multi_processor_count`` is its compute units."""

    name: str
    total_memory: int
    multi_processor_count: int
    major: int = 0
    minor: int = 0
    is_integrated: int = 0

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, "
                f"minor={self.minor}, total_memory={self.total_memory >> 20}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def get_device_properties(device=None) -> _DeviceProperties:
    """The OpenCL device's name, global memory (bytes) and compute units. ``device``: None
    is the first GPU, an int the k-th GPU; a device or its name (``"cl:0"``, ``"cpu"``)
    answers for any OpenCL device."""
    cl_device = _gpu(device).info.cl_device
    return _DeviceProperties(cl_device.name.strip(), int(cl_device.global_mem_size),
                             int(cl_device.max_compute_units),
                             is_integrated=int(bool(cl_device.host_unified_memory)))


def get_device_name(device=None) -> str:
    """The OpenCL device's name (``device`` as get_device_properties')."""
    return get_device_properties(device).name
