"""torch.accelerator: the OpenCL GPUs clgraph sees, by PyTorch's device-agnostic names.
An OpenCL CPU device (PoCL) is not an accelerator here: ``current_accelerator()`` is None
on a machine without an OpenCL GPU. Imports the device layer only."""

from __future__ import annotations

from . import runtime
from .device import all_devices, default_device, device, set_default_device


def _gpus() -> list:
    return [d for d in all_devices() if d.type == "gpu"]


def is_available() -> bool:
    """Whether an OpenCL GPU exists."""
    return bool(_gpus())


def device_count() -> int:
    """The number of OpenCL GPUs."""
    return len(_gpus())


def current_accelerator(check_available: bool = False):
    """The default device when it is a GPU, else the first OpenCL GPU; None without one."""
    gpus = _gpus()
    if not gpus:
        return None
    d = default_device()
    return d if d.info.type == "gpu" else device(f"cl:{gpus[0].index}")


def current_device_index() -> int:
    """The position of current_accelerator() among the GPUs (as ``cuda:N``)."""
    acc = current_accelerator()
    if acc is None:
        raise RuntimeError("no accelerator is available (clgraph found no OpenCL GPU)")
    return [d.index for d in _gpus()].index(acc.index)


current_device_idx = current_device_index


def set_device_index(device_index) -> None:
    """Make GPU ``device_index`` (an int, or a device) the default device."""
    if isinstance(device_index, int):
        if not 0 <= device_index < device_count():
            raise RuntimeError(f"device index {device_index} is out of range: "
                               f"{device_count()} accelerator(s)")
        set_default_device(device(f"cl:{_gpus()[device_index].index}"))
    else:
        set_default_device(device(device_index))


set_device_idx = set_device_index


def synchronize(device_index=None) -> None:
    """Wait for the accelerator's queue (the default device's when none is given)."""
    if device_index is None:
        acc = current_accelerator() or default_device()
    elif isinstance(device_index, int):
        acc = device(f"cl:{_gpus()[device_index].index}")
    else:
        acc = device(device_index)
    runtime.finish(acc.info)
