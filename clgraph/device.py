"""Devices: enumerate OpenCL devices, parse "cl:N" / "gpu" / "cpu" / "cuda", and hold one
context and one in-order queue per device, created on first use. Imports only diskcache
from clgraph (higher layers learn of a device's start through ``on_start``)."""

from __future__ import annotations

import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pyopencl as cl

from . import diskcache

_KERNELS = os.environ.get("CLGRAPH_KERNELS", "")  # "gpu": GPU kernels on every device

# called with each DeviceInfo once its context exists (the kernel cache starts preloading
# the programs this script built first): higher layers register here
on_start: list = []

_NO_DEVICE = (
    "clgraph found no OpenCL device. Install a CPU OpenCL runtime with "
    "`pip install pocl-binary-distribution` (it ships PoCL), or a GPU vendor's OpenCL driver."
)


@dataclass(eq=False)
class DeviceInfo:
    """One OpenCL device and the state clgraph keeps for it."""

    index: int
    cl_device: object
    platform: str
    _ctx: object = None
    _queue: object = None
    gate: object = None  # runtime.Gate: small launches held back and submitted together
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _widths: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cl_device.name.strip()

    @property
    def type(self) -> str:

        t = self.cl_device.type
        if t & cl.device_type.GPU:
            return "gpu"
        if t & cl.device_type.CPU:
            return "cpu"
        return "accelerator"

    @property
    def is_cpu(self) -> bool:
        """Whether clgraph picks its CPU kernels (explicit vectors, one work-item per row)
        for this device; CLGRAPH_KERNELS=gpu picks the GPU ones (local-memory tiles and
        trees) on any device, which is how they are tested on PoCL."""
        return self.type == "cpu" and _KERNELS != "gpu"

    @cached_property
    def local_memory(self) -> int:
        """Local memory per work-group in bytes (read once)."""
        return self.cl_device.local_mem_size

    # The memory limits are read once: Storage checks every new buffer against them.
    @cached_property
    def memory(self) -> int:
        """Global memory in bytes."""
        return self.cl_device.global_mem_size

    @cached_property
    def max_alloc_size(self) -> int:
        """The largest buffer the device allows, in bytes."""
        return self.cl_device.max_mem_alloc_size

    @cached_property
    def allocates_lazily(self) -> bool:
        """Whether the driver may create a buffer without memory behind it and fail at its
        first use (NVIDIA's does: a 4 TiB buffer is made, and a read of it fails). GPU
        drivers are assumed to; a CPU device's buffers are host memory, which the OS
        overcommits, so touching one byte of them would prove nothing."""
        return self.type != "cpu"

    @property
    def extensions(self) -> str:
        return self.cl_device.extensions

    @property
    def fp64(self) -> bool:
        return "cl_khr_fp64" in self.extensions or self.cl_device.double_fp_config != 0

    @property
    def fp16(self) -> bool:
        return "cl_khr_fp16" in self.extensions

    @property
    def max_work_group_size(self) -> int:
        return self.cl_device.max_work_group_size

    @property
    def opencl_c_version(self) -> tuple[int, int]:
        """The OpenCL C version the device compiles ("OpenCL C 1.2 ..." -> (1, 2))."""

        try:
            text = self.cl_device.opencl_c_version
        except Exception:  # noqa: BLE001  OpenCL 1.0 devices lack the query
            return (1, 0)
        m = re.search(r"(\d+)\.(\d+)", text or "")
        return (int(m.group(1)), int(m.group(2))) if m else (1, 0)

    @cached_property
    def compute_units(self) -> int:
        return self.cl_device.max_compute_units

    def vector_width(self, cl_type: str) -> int:
        """Elements of cl_type one work-item handles in vectorized kernels (memoized)."""
        w = self._widths.get(cl_type)
        if w is None:
            w = self._widths[cl_type] = self._vector_width(cl_type)
        return w

    def _vector_width(self, cl_type: str) -> int:
        d = self.cl_device
        if cl_type not in ("float", "double", "half"):
            return 1
        if not self.is_cpu:
            # GPUs: one element per work-item with coalesced loads is the norm; a small
            # vector keeps loads wide without starving occupancy.
            return 4 if cl_type != "double" else 2
        w = d.preferred_vector_width_double if cl_type == "double" else \
            d.preferred_vector_width_float
        w = max(1, min(16, w or 1))
        # PoCL reports 16 floats even when its LLVM targets a CPU without AVX-512 (here: Zen 4
        # seen as znver3); 512-bit vectors then abort LLVM or lose their kernels when PoCL
        # reloads the program from its cache. Cap at 256 bits.
        if not _wide_vectors_ok(self):
            w = min(w, 32 // (8 if cl_type == "double" else 4))
        return w

    @property
    def context(self):
        if self._ctx is None:
            self._init()
        return self._ctx

    @property
    def queue(self):
        if self._queue is None:
            self._init()
        return self._queue

    def _init(self) -> None:

        with self._lock:
            if self._ctx is not None:
                return  # another thread started the device (and runs the hooks)
            ctx = cl.Context([self.cl_device])
            self._queue = cl.CommandQueue(
                ctx, properties=cl.command_queue_properties.PROFILING_ENABLE
            )
            self._ctx = ctx
        for hook in on_start:
            hook(self)

    def describe(self) -> dict:
        return {
            "name": f"cl:{self.index}",
            "device": self.name,
            "platform": self.platform,
            "type": self.type,
            "memory": self.memory,
            "fp64": self.fp64,
            "fp16": self.fp16,
        }


# LLVM CPU names with AVX-512 that PoCL may report in its device version ("HSTR: ...-NAME").
_AVX512_CPUS = {"skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
                "icelake-server", "tigerlake", "rocketlake", "sapphirerapids", "graniterapids",
                "emeraldrapids", "knl", "knm", "znver4", "znver5", "x86-64-v4"}


def _wide_vectors_ok(dev: "DeviceInfo") -> bool:
    if "Portable Computing Language" not in dev.platform:
        return True
    cpu = dev.cl_device.version.rsplit("-", 1)[-1].strip()
    return cpu in _AVX512_CPUS


_devices: list[DeviceInfo] | None = None
_enum_lock = threading.Lock()


def cache_root():
    """clgraph's on-disk kernel cache (CLGRAPH_CACHE_DIR; empty string: none)."""

    d = os.environ.get("CLGRAPH_CACHE_DIR")
    if d == "":
        return None
    if d is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "clgraph")
    return Path(d)


def all_devices() -> list[DeviceInfo]:
    """Every OpenCL device over all platforms, in platform order, enumerated once."""
    global _devices
    if _devices is None:
        with _enum_lock:
            if _devices is None:
                # PoCL keeps built kernels on disk keyed by source; keep them with ours. It
                # reads POCL_CACHE_DIR once, when it lists its devices, and aborts the process
                # on a damaged cache file: the directory is checked before, and the variable
                # is restored after, so that child processes choose and check their own.
                pocl_cache = None
                if "POCL_CACHE_DIR" not in os.environ:
                    pocl_cache = diskcache.prepare_pocl_cache(cache_root())
                    if pocl_cache is not None:
                        os.environ["POCL_CACHE_DIR"] = pocl_cache
                try:

                    platforms = cl.get_platforms()
                except Exception:  # no ICD loader or no platform: both mean "no device"
                    platforms = []
                found = []
                for p in platforms:
                    try:
                        devs = p.get_devices()
                    except Exception:
                        devs = []
                    for d in devs:
                        found.append(DeviceInfo(len(found), d, p.name.strip()))
                if pocl_cache is not None:
                    del os.environ["POCL_CACHE_DIR"]
                _devices = found
    return _devices


def _resolve(spec: str) -> int:
    devs = all_devices()
    if not devs:
        raise RuntimeError(_NO_DEVICE)
    s = spec.strip().lower()
    if s in ("gpu", "cuda") or s.startswith(("gpu:", "cuda:")):
        gpus = [d for d in devs if d.type == "gpu"]
        k = int(s.split(":")[1]) if ":" in s else 0
        if k >= len(gpus):
            raise RuntimeError(
                f"device '{spec}' asked for GPU {k} but only {len(gpus)} OpenCL GPU(s) exist; "
                f"devices are: {', '.join(f'cl:{d.index} {d.name} ({d.type})' for d in devs)}"
            )
        return gpus[k].index
    if s == "cpu" or s.startswith("cpu:"):
        cpus = [d for d in devs if d.type == "cpu"]
        k = int(s.split(":")[1]) if ":" in s else 0
        if not cpus and k == 0:
            return _cpu_fallback(spec)
        if k >= len(cpus):
            raise RuntimeError(
                f"device '{spec}' asked for CPU device {k} but {len(cpus)} OpenCL CPU device(s) "
                "exist. " + (_NO_DEVICE if not cpus else "")
            )
        return cpus[k].index
    if s.startswith("cl:") or s == "cl":
        k = int(s[3:]) if s != "cl" else 0
        if not 0 <= k < len(devs):
            raise RuntimeError(
                f"device '{spec}' does not exist: there are {len(devs)} OpenCL device(s), "
                f"cl:0 to cl:{len(devs) - 1}"
            )
        return k
    raise RuntimeError(
        f"Expected one of cl:N, gpu, cpu, cuda device type at start of device string: {spec}"
    )


def _cpu_fallback(spec: str) -> int:
    """"cpu" on a machine whose OpenCL devices are all GPUs: every device's memory is
    readable from the host, so code written for PyTorch (``t.cpu().numpy()``,
    ``map_location="cpu"``) keeps working on the default device; said once."""
    devs = all_devices()
    if _default is not None:
        k = _default.index
    else:  # not default_device(): CLGRAPH_DEVICE=cpu resolves through here
        k = next((d.index for d in devs if d.type == "gpu"), 0)
    if not _warned_cpu:
        _warned_cpu.append(k)
        warnings.warn(f"device '{spec}': there is no OpenCL CPU device, so '{spec}' names the "
                      f"default device cl:{k} ({devs[k].name}); install "
                      "pocl-binary-distribution for a CPU device", stacklevel=4)
    return k


_warned_cpu: list = []


class device:
    """An OpenCL device, ``device("cl:0")``, ``device("gpu")``, ``device("cpu")``,
    ``device("cuda")`` (alias of "gpu"). Aliases resolve on construction, so devices that
    name the same OpenCL device compare equal."""

    # ``info`` (the DeviceInfo) is a plain slot, set once: the eager hot path reads it
    __slots__ = ("index", "info")

    def __new__(cls, spec="cl", index: int | None = None):
        if isinstance(spec, device):
            return spec
        if isinstance(spec, int) and index is None:
            spec, index = "cl", spec
        if not isinstance(spec, str):
            raise TypeError(f"device() expects a string or int, got {type(spec).__name__}")
        if index is not None:
            spec = f"{spec}:{index}"
        k = _resolve(spec)
        return _DEVICE_OBJECTS.setdefault(k, _make(cls, k))

    @property
    def type(self) -> str:
        return "cl"

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except RuntimeError:
                return False
        return isinstance(other, device) and other.index == self.index

    # devices are interned (one object per OpenCL device), so identity hashes them
    __hash__ = object.__hash__

    def __str__(self):
        return f"cl:{self.index}"

    def __repr__(self):
        return f"device(type='cl', index={self.index})"

    def __reduce__(self):
        return (device, (str(self),))


def _make(cls, k):
    obj = object.__new__(cls)
    obj.index = k
    obj.info = all_devices()[k]
    return obj


_DEVICE_OBJECTS: dict[int, device] = {}
_default: device | None = None


def default_device() -> device:
    global _default
    if _default is None:
        spec = os.environ.get("CLGRAPH_DEVICE")
        if spec:
            _default = device(spec)
        else:
            devs = all_devices()
            if not devs:
                raise RuntimeError(_NO_DEVICE)
            gpus = [d for d in devs if d.type == "gpu"]
            _default = device(f"cl:{(gpus[0] if gpus else devs[0]).index}")
    return _default


def set_default_device(d) -> None:
    global _default
    _default = None if d is None else device(d)


def as_device(d) -> device:
    if d is None:
        return default_device()
    if isinstance(d, device):
        return d
    return device(d)


def gpu_available() -> bool:
    return any(d.type == "gpu" for d in all_devices())
