"""``cg.cuda``: "cuda" is an alias of the first OpenCL GPU."""

from __future__ import annotations

from .creation import manual_seed as _ms
from .device import all_devices, device, gpu_available


def is_available() -> bool:
    """True when an OpenCL GPU exists."""
    return gpu_available()


def device_count() -> int:
    return sum(1 for d in all_devices() if d.type == "gpu")


def synchronize(dev=None) -> None:
    device("cuda" if dev is None else dev).info.queue.finish()


def manual_seed(seed: int) -> None:

    _ms(seed)


manual_seed_all = manual_seed
