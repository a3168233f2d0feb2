"""``cg.cl``: the OpenCL devices clgraph sees."""

from __future__ import annotations

from . import tune
from .device import all_devices
from .device import device as _device


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
