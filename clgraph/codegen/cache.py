"""Built OpenCL programs: in memory by source and device, and on disk (CLGRAPH_CACHE_DIR)
as device binaries so a second process builds nothing. Imports only the device layer."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pyopencl as cl

from ..device import DeviceInfo, cache_root

_programs: dict[tuple, cl.Program] = {}
stats = {"builds": 0, "disk_hits": 0, "memory_hits": 0}
_printed: set = set()


class KernelBuildError(RuntimeError):
    """An OpenCL program failed to build; the message holds the source and compiler log."""


def cache_dir() -> Path | None:
    return cache_root()


def _device_tag(dev: DeviceInfo) -> str:
    d = dev.cl_device
    return f"{dev.platform}|{d.name}|{d.version}|{d.driver_version}|{cl.VERSION_TEXT}"


def build(dev: DeviceInfo, source: str, options: tuple[str, ...] = (), name: str = "") -> cl.Program:
    """The built program for ``source`` on ``dev``: memory, then disk, then the compiler."""
    key = (dev.index, source, options)
    prg = _programs.get(key)
    if prg is not None:
        stats["memory_hits"] += 1
        return prg
    if os.environ.get("CLGRAPH_DEBUG") == "1" and source not in _printed:
        _printed.add(source)
        print(f"// clgraph kernel {name} on cl:{dev.index} {' '.join(options)}\n{source}",
              file=sys.stderr)
    digest = hashlib.sha256(
        "\0".join((_device_tag(dev), source, *options)).encode()
    ).hexdigest()[:32]
    root = cache_dir()
    if root is not None and "Portable Computing Language" in dev.platform:
        # PoCL caches built kernels on disk itself (POCL_CACHE_DIR, set under our cache
        # dir), compiling each kernel lazily; reading prg.binaries here would force every
        # kernel of the program to compile at once. A marker records that it is cached.
        marker = root / f"{digest}.pocl"
        prg = _compile(dev, source, options, name)
        if marker.exists():
            stats["disk_hits"] += 1
        else:
            stats["builds"] += 1
            try:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            except OSError:
                pass
        _programs[key] = prg
        return prg
    path = root / f"{digest}.bin" if root is not None else None
    if path is not None and path.exists():
        try:
            binary = path.read_bytes()
            prg = cl.Program(dev.context, [dev.cl_device], [binary]).build(options=list(options))
            stats["disk_hits"] += 1
        except Exception:
            prg = None  # a stale or corrupt entry: rebuild from source below
    if prg is None:
        prg = _compile(dev, source, options, name)
        stats["builds"] += 1
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(prg.binaries[0])
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only or full cache directory only costs rebuilds
    _programs[key] = prg
    return prg


def numbered(source: str) -> str:
    """Source with line numbers, for error messages."""
    return "\n".join(f"{i + 1:4d}  {line}" for i, line in enumerate(source.splitlines()))


def _compile(dev: DeviceInfo, source: str, options, name: str) -> cl.Program:
    try:
        return cl.Program(dev.context, source).build(options=list(options))
    except cl.Error as e:
        raise KernelBuildError(
            f"building OpenCL kernel {name or '?'} for cl:{dev.index} ({dev.name}) failed\n"
            f"options: {' '.join(options)}\n{numbered(source)}\n--- compiler log ---\n{e}"
        ) from None


def clear_memory_cache() -> None:
    _programs.clear()
