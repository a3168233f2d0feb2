"""torch.set_num_threads / get_num_threads for the OpenCL CPU device.

PoCL's CPU driver starts one worker thread per compute unit when it enumerates its devices
(the first use of any device), reading the count from the environment: a count set before
that takes effect; a count set afterwards is recorded and returned by get_num_threads, but
the running driver keeps its threads (PoCL cannot change them). GPU devices are not
affected. Imports only the device layer."""

from __future__ import annotations

import importlib
import numbers
import os

# the module (the package's ``device`` attribute is the device class)
_device = importlib.import_module(".device", __package__)

# PoCL 3's pthread driver reads the first, PoCL 4's cpu driver the second
_POCL_VARIABLES = ("POCL_MAX_PTHREAD_COUNT", "POCL_CPU_MAX_CU_COUNT")
_requested: list[int] = []


def set_num_threads(n: int) -> None:
    """Threads of the OpenCL CPU device: effective when called before the first device use
    (see the module's docstring), recorded either way."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    _requested[:] = [int(n)]
    if not devices_started():
        for name in _POCL_VARIABLES:
            os.environ[name] = str(int(n))


def devices_started() -> bool:
    """Whether the OpenCL devices are enumerated (PoCL has started its threads)."""
    return _device._devices is not None


def get_num_threads() -> int:
    """The count last set; else the CPU device's compute units once the devices are
    enumerated; else what PoCL will start with (its variable, or this process's CPUs)."""
    if _requested:
        return _requested[0]
    if devices_started():
        cpus = [d for d in _device.all_devices() if d.type == "cpu"]
        if cpus:
            return cpus[0].compute_units
    for name in _POCL_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_interop: list[int] = []


def set_num_interop_threads(n: int) -> None:
    """torch.set_num_interop_threads: recorded (clgraph runs no inter-op thread pool); as
    in PyTorch, it can be set once."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_interop_threads(): argument 'num' (position 1) must be int, "
                        f"not {type(n).__name__}")
    if n <= 0:
        raise RuntimeError("set_num_interop_threads expects a positive integer")
    if _interop:
        raise RuntimeError("Error: cannot set number of interop threads after parallel work "
                           "has started or set_num_interop_threads called")
    _interop.append(int(n))


def get_num_interop_threads() -> int:
    """The count set, else the intra-op count (PyTorch's default is the core count)."""
    return _interop[0] if _interop else get_num_threads()
