"""Built OpenCL programs: in memory by source and device, and on disk (CLGRAPH_CACHE_DIR)
as device binaries so a second process builds nothing. Imports only the device layer and
diskcache.

Loading a cached program still costs PoCL about 25 ms, whatever its size, and a training
script's first step loads a few dozen. So each script's run records, in the cache
directory, the programs it built first (startup-<script hash>.json); its next run loads
them on a background thread (warm_up) from the moment its device starts, while Python
builds the model and runs the first ops; a build() of a program the thread is loading
waits for it.

Files are written and checked by clgraph.diskcache, so a damaged cache never breaks a run.
Compiler logs never become warnings: they go into KernelBuildError, and to stderr under CLGRAPH_DEBUG=1."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pyopencl as cl
from pyopencl import _cl

from .. import device, diskcache, runtime
from ..device import DeviceInfo, cache_root
from .emit import special_helpers

_programs: dict[tuple, cl.Program] = {}
stats = {"builds": 0, "disk_hits": 0, "memory_hits": 0, "warm_up": 0}
_printed: set = set()
_pending: dict[tuple, threading.Event] = {}  # programs the warm-up thread is loading
_used: list = []  # (device tag, source, options) this process built, first use first
_recorded: set = set()
_STARTUP_MAX = 64  # programs a run records for the next one
_warmed: set = set()  # device indices warm_up() ran for
_threads: list = []
_stop = threading.Event()
_devices_used: dict[int, DeviceInfo] = {}  # their queues are finished at exit


class KernelBuildError(RuntimeError):
    """An OpenCL program failed to build; the message holds the source and compiler log."""


def cache_dir() -> Path | None:
    return cache_root()


def _device_tag(dev: DeviceInfo) -> str:
    d = dev.cl_device
    return f"{dev.platform}|{d.name}|{d.version}|{d.driver_version}|{cl.VERSION_TEXT}"


def build(dev: DeviceInfo, source: str, options: tuple[str, ...] = (),
          name: str = "") -> cl.Program:
    """The built program for ``source`` on ``dev``: memory, then disk, then the compiler."""
    source = special_helpers(source) + source  # the registered C functions it calls
    key = (dev.index, source, options)
    prg = _programs.get(key)
    if prg is None and key in _pending:
        ev = _pending.get(key)
        if ev is not None:
            ev.wait()
        prg = _programs.get(key)
    if len(_used) < _STARTUP_MAX and key not in _recorded:
        _recorded.add(key)
        _used.append((_device_tag(dev), source, list(options)))
    if prg is not None:
        stats["memory_hits"] += 1
        return prg
    return _load(dev, source, options, name, key)


def _digest(dev: DeviceInfo, source: str, options) -> str:
    return hashlib.sha256("\0".join((_device_tag(dev), source, *options)).encode()
                          ).hexdigest()[:32]


def _pocl(dev: DeviceInfo) -> bool:
    return "Portable Computing Language" in dev.platform


def _load(dev: DeviceInfo, source: str, options, name: str, key, warm=False) -> cl.Program:
    """Disk, then the compiler (a program not in memory). The warm-up thread counts its
    loads apart (stats["warm_up"]), so that counts of a script's own builds stay exact."""
    prg = None

    def count(what):
        stats["warm_up" if warm else what] += 1

    _devices_used.setdefault(dev.index, dev)
    if os.environ.get("CLGRAPH_DEBUG") == "1" and source not in _printed:
        _printed.add(source)
        print(f"// clgraph kernel {name} on cl:{dev.index} {' '.join(options)}\n{source}",
              file=sys.stderr)
    digest = _digest(dev, source, options)
    root = cache_dir()
    if root is not None and _pocl(dev):
        # PoCL caches built kernels on disk itself (POCL_CACHE_DIR, set under our cache
        # dir), compiling each kernel lazily; reading prg.binaries here would force every
        # kernel of the program to compile at once. A marker records that it is cached.
        marker = root / f"{digest}.pocl"
        prg = _compile(dev, source, options, name)
        if diskcache.pocl_shared() and marker.exists():
            count("disk_hits")
        else:
            count("builds")
            if diskcache.pocl_shared():
                diskcache.write_atomic(marker, b"")
        _programs[key] = prg
        return prg
    path = root / f"{digest}.clbin" if root is not None else None
    if path is not None:
        prg = _from_binary(dev, path, options)
        if prg is not None:
            count("disk_hits")
    if prg is None:
        prg = _compile(dev, source, options, name)
        count("builds")
        if path is not None:
            diskcache.write_atomic(path, diskcache.pack_binary(prg.binaries[0]))
    _programs[key] = prg
    return prg


def numbered(source: str) -> str:
    """Source with line numbers, for error messages."""
    return "\n".join(f"{i + 1:4d}  {line}" for i, line in enumerate(source.splitlines()))


def _compile(dev: DeviceInfo, source: str, options, name: str) -> cl.Program:
    if dev.opencl_c_version < (1, 2):
        raise KernelBuildError(
            f"cl:{dev.index} ({dev.name}) compiles OpenCL C "
            f"{'.'.join(map(str, dev.opencl_c_version))}; clgraph's kernels need OpenCL C "
            "1.2 or later")
    source = special_helpers(source) + source  # a source recorded before it had them
    raw = _cl._Program(dev.context, source)
    try:
        _build(dev, raw, options, name)
    except cl.Error as e:
        raise KernelBuildError(
            f"building OpenCL kernel {name or '?'} for cl:{dev.index} ({dev.name}) failed ({e})\n"
            f"options: {' '.join(options)}\n{numbered(source)}\n--- compiler log ---\n"
            f"{_build_log(dev, raw) or '(empty)'}"
        ) from None
    return cl.Program(raw)


def _build(dev: DeviceInfo, raw, options, name: str) -> None:
    """Build a pyopencl _Program for dev; its log goes to stderr under CLGRAPH_DEBUG=1.
    pyopencl's Program.build turns every non-empty log into a CompilerWarning, and NVIDIA's
    driver (580, H200) logs "Function k is a kernel, so overriding noinline attribute" for
    every program of several kernels; catch_warnings() around it would not do, being
    process-wide state while warm_up builds on a thread."""
    raw._build(options=" ".join(options).encode(), devices=[dev.cl_device])
    if os.environ.get("CLGRAPH_DEBUG") == "1":
        log = _build_log(dev, raw)
        if log:
            print(f"// clgraph compiler log for {name or '?'} on cl:{dev.index}\n{log}",
                  file=sys.stderr)


def _build_log(dev: DeviceInfo, raw) -> str:
    try:
        return (raw.get_build_info(dev.cl_device, cl.program_build_info.LOG) or "").strip()
    except (cl.Error, ValueError):  # ValueError: a log that is not UTF-8
        return ""


def clear_memory_cache() -> None:
    _programs.clear()


def _from_binary(dev: DeviceInfo, path: Path, options) -> cl.Program | None:
    """The program in a .clbin file, or None: absent, damaged (deleted, with the warning) or
    refused by the driver (then rebuilt from source and replaced)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    binary = diskcache.unpack_binary(data)
    if binary is None:
        diskcache.unlink(path)
        diskcache.warn_damaged(path.parent, 1)
        return None
    try:
        raw = _cl._Program(dev.context, [dev.cl_device], [binary])
        _build(dev, raw, options, path.name)
    except cl.Error:
        return None
    return cl.Program(raw)



# --- start-up: the programs a script's previous run built first ----------------------------


def _startup_file(root: Path) -> Path:
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "-"
    return root / f"startup-{hashlib.sha256(script.encode()).hexdigest()[:16]}.json"


def warm_up(dev: DeviceInfo) -> None:
    """Start loading, on a background thread, the cached programs this script's previous
    run built first on this device (called when a device starts)."""
    root = cache_dir()
    if root is None or dev.index in _warmed or (_pocl(dev) and not diskcache.pocl_shared()):
        return
    _warmed.add(dev.index)
    try:
        entries = json.loads(_startup_file(root).read_text())
    except (OSError, ValueError):
        return
    tag = _device_tag(dev)
    keys = []
    for e in entries if isinstance(entries, list) else ():
        try:
            etag, source, options = e
            key = (dev.index, source, tuple(options))
        except (TypeError, ValueError):
            continue
        if not (isinstance(source, str) and all(isinstance(o, str) for o in options)):
            continue
        if etag != tag or key in _programs or key in _pending or key in keys:
            continue
        # only what the disk cache holds: compiling here would compete with the script
        d = _digest(dev, source, options)
        if (root / f"{d}.pocl" if _pocl(dev) else root / f"{d}.clbin").exists():
            keys.append(key)
    if not keys:
        return
    for key in keys:
        _pending[key] = threading.Event()

    def run():
        for key in keys:
            try:
                if key not in _programs and not _stop.is_set():
                    _load(dev, key[1], key[2], "", key, warm=True)
            except Exception:  # noqa: BLE001  a failed build fails again, loudly, in build()
                pass
            finally:
                ev = _pending.pop(key, None)
                if ev is not None:
                    ev.set()

    t = threading.Thread(target=run, name="clgraph-warm-up", daemon=True)
    _threads.append(t)
    t.start()


def _save_startup() -> None:
    root = cache_dir()
    if root is None or not _used:
        return
    path = _startup_file(root)
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = []
    # this run's programs first, then the previous runs' (a short run keeps a long one's)
    seen = {(t, s, tuple(o)) for t, s, o in _used}
    merged = list(_used)
    for e in old if isinstance(old, list) else ():
        try:
            if (e[0], e[1], tuple(e[2])) not in seen:
                merged.append(e)
        except (TypeError, IndexError):
            continue
    diskcache.write_atomic(path, json.dumps(merged[:_STARTUP_MAX]).encode())


def _at_exit() -> None:
    # a build still running when the interpreter tears OpenCL down aborts the process
    _stop.set()
    for t in _threads:
        t.join()
    _save_startup()
    if not diskcache.pocl_cache_in_use():
        return
    for dev in list(_devices_used.values()):
        try:  # PoCL compiles a kernel into its cache at the first launch
            runtime.finish(dev)
        except Exception:  # noqa: BLE001  a failed queue has nothing left to write
            pass
    diskcache.close_pocl_cache()


atexit.register(_at_exit)
device.on_start.append(warm_up)


# What a compiled graph needs to know of a kernel it captured: its source, its scalar
# argument types and, for elementwise kernels, the group it was generated from.
SOURCES: dict = {}
ARG_TYPES: dict = {}
GROUPS: dict = {}


def set_arg_types(kernel, types) -> None:
    """kernel.set_scalar_arg_dtypes, remembered for compiled replays, and the kernel's
    argument setter for eager launches (runtime.arg_setters)."""
    kernel.set_scalar_arg_dtypes(types)
    ARG_TYPES[kernel] = tuple(types)
    setter = _arg_setter(types)
    if setter is not None:
        runtime.arg_setters[kernel] = setter


# The two batched setters pyopencl's generated invoker calls (private: a pyopencl without
# them leaves every launch to the invoker) and the scalar types the packing one takes.
_BATCHED = hasattr(cl.Kernel, "_set_arg_multi") and hasattr(cl.Kernel, "_set_arg_buf_pack_multi")
_PACKED = frozenset("bBhHiIlLfd")


def _arg_setter(types):
    """``set(kernel, args)``: the arguments set as pyopencl's invoker sets them (objects in
    one call, scalars packed in another) without the invoker's Python frame and keyword
    handling, about 0.3 us of a tiny op's 5; None where a type needs the invoker."""
    if not _BATCHED:
        return None
    objects, scalars = [], []
    for i, t in enumerate(types):
        if t is None:
            objects.append(f"{i}, a[{i}]")
        elif (c := np.dtype(t).char) in _PACKED:
            scalars.append(f"{i}, {c.encode()!r}, a[{i}]")
        else:
            return None
    calls = [f"k._set_arg_multi(({', '.join(objects)},))"] if objects else []
    calls += [f"k._set_arg_buf_pack_multi(({', '.join(scalars)},))"] if scalars else []
    return eval(f"lambda k, a: ({', '.join(calls)},)") if calls else None


# kernel -> {parameter name: position}: kernels whose C signature was read (hand-written
# and reduction kernels), so that their arguments are packed and found by name
POSITIONS: dict = {}


def set_signature(kernel, params) -> None:
    """Argument types and names from the kernel's C signature (kernelsig.KernelParam)."""
    set_arg_types(kernel, [p.np_type for p in params])
    POSITIONS[kernel] = {p.name: i for i, p in enumerate(params)}


def pack(kernel, values: dict) -> list:
    """The kernel's arguments in its signature's order from ``values``, by parameter name."""
    try:
        return [values[name] for name in POSITIONS[kernel]]
    except KeyError as e:
        raise AssertionError(f"no value for parameter {e} of {kernel.function_name}; given "
                             f"{sorted(values)}") from None


def arg(kernel, name: str) -> int:
    """The position of parameter ``name`` among the kernel's arguments."""
    return POSITIONS[kernel][name]


def get_kernel(prg, name: str, source: str):
    """One kernel object of a built program (created once: pyopencl makes a new one per
    attribute access)."""

    try:
        k = cl.Kernel(prg, name)
        SOURCES[k] = source
        return k
    except cl.Error as e:
        raise KernelBuildError(
            f"OpenCL program built but kernel {name} is missing from it ({e}); the compiler "
            f"dropped it. Source:\n{numbered(source)}"
        ) from None
