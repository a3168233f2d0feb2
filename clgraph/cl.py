"""``cg.cl``: the OpenCL devices clgraph sees."""

from __future__ import annotations

from .device import all_devices


def devices() -> list[dict]:
    """One dict per OpenCL device, in ``cl:N`` order: name, device, platform, type, memory
    (bytes), fp64, fp16."""
    return [d.describe() for d in all_devices()]


def device_count() -> int:
    return len(all_devices())
