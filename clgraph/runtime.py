"""Runtime: device buffers (Storage), kernel launches, profiling and host transfers.
Launches what it is given; knows nothing of ops, graphs or tensors.

Each allocation, launch, host transfer and device copy is an event (``Alloc``, ``Launch``,
``Write``, ``Copy``, ``Read``) delivered by ``notify`` to the ``observers``: the
interpreters a higher layer pushed (ops/registry.py: a compile trace). Higher layers report
their own events (index checks, gradient writes, optimizer steps) the same way. With no
observer an event costs one test of ``observers`` and is never built."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pyopencl as cl

from .device import DeviceInfo

_live = {"buffers": 0, "bytes": 0}
_pools: dict[int, dict[int, list]] = {}
_POOL_LIMIT_BYTES = 1 << 28  # cached free buffers per device; above it frees go to the driver
_pool_bytes: dict[int, int] = {}
# The pushed interpreters, innermost last (registry.push replaces the tuple, so that a
# notify in progress keeps the one it started with). While any is pushed, freed buffers
# stay out of the pool: an observer may hold a buffer by identity (a trace's records).
observers: tuple = ()

# The events, as lower layers make them (the buffers are cl.Buffers): a Storage allocated;
# a kernel enqueued (``refresh`` as launch() says); bytes written from or read to the host;
# bytes copied between buffers.
Alloc = namedtuple("Alloc", "storage")
Launch = namedtuple("Launch", "dev kernel name gsize lsize args refresh")
Write = namedtuple("Write", "buf host offset")
Read = namedtuple("Read", "buf")
Copy = namedtuple("Copy", "src dst nbytes src_off dst_off")


def notify(event) -> None:
    """Deliver ``event`` to every observer. Callers test ``observers`` first, so that an
    unobserved event is never built."""
    for o in observers:
        o.observe(event)
# Buffers a compiled plan writes to (parameters, optimizer state): never recycled by the pool.
_pinned: set = set()


class Storage:
    """A device buffer shared by a tensor and its views; ``version`` counts in-place writes."""

    __slots__ = ("buf", "nbytes", "dev", "version", "__weakref__")

    def __init__(self, dev: DeviceInfo, nbytes: int):
        self.dev = dev
        self.nbytes = nbytes
        self.version = 0
        size = max(nbytes, 1)
        pool = _pools.get(dev.index)
        buf = None
        if pool:
            lst = pool.get(size)
            if lst:
                buf = lst.pop()
                _pool_bytes[dev.index] -= size
        if buf is None:
            try:
                buf = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, size)
            except cl.Error as e:
                raise RuntimeError(
                    f"could not allocate {nbytes} bytes on cl:{dev.index} ({dev.name}): {e}"
                ) from None
        self.buf = buf
        _live["buffers"] += 1
        _live["bytes"] += nbytes
        if observers:
            notify(Alloc(self))

    def __del__(self):
        try:
            _live["buffers"] -= 1
            _live["bytes"] -= self.nbytes
            size = max(self.nbytes, 1)
            idx = self.dev.index
            if observers or self.buf in _pinned:
                return  # a trace or a compiled plan holds this buffer
            if _pool_bytes.get(idx, 0) + size <= _POOL_LIMIT_BYTES:
                _pools.setdefault(idx, {}).setdefault(size, []).append(self.buf)
                _pool_bytes[idx] = _pool_bytes.get(idx, 0) + size
        except Exception:  # interpreter shutdown
            pass


def live_buffers() -> int:
    """Number of device buffers held by tensors right now."""
    return _live["buffers"]


def empty_cache() -> None:
    """Release the cached free buffers to the driver."""
    _pools.clear()
    _pool_bytes.clear()


# --- profiling ---------------------------------------------------------------------------

_profilers: list = []


class profile:
    """``with cg.profile() as p``: counts kernel launches (``p.launches``), their names
    (``p.kernels``: the program's; ``p.functions``: the OpenCL kernel functions, which tell a
    program's variants apart) and device time in seconds (``p.device_time``, OpenCL
    profiling events)."""

    def __init__(self):
        self.records: list[tuple[str, object, object]] = []  # (name, event, kernel)
        self._times: list[float] | None = None

    def __enter__(self):
        _profilers.append(self)
        return self

    def __exit__(self, *exc):
        _profilers.remove(self)
        self._resolve()
        return False

    def _resolve(self):
        if self._times is None:
            for _, ev, _ in self.records:
                if ev is not None:
                    ev.wait()
            times = []
            for _, ev, _ in self.records:
                try:
                    times.append((ev.profile.end - ev.profile.start) * 1e-9)
                except Exception:
                    times.append(0.0)
            self._times = times

    @property
    def launches(self) -> int:
        return len(self.records)

    @property
    def kernels(self) -> list[str]:
        return [name for name, _, _ in self.records]

    @property
    def functions(self) -> list[str]:
        return [k.function_name for _, _, k in self.records]

    @property
    def device_time(self) -> float:
        self._resolve()
        return float(sum(self._times))

    def table(self) -> str:
        self._resolve()
        rows: dict[str, list] = {}
        for (name, _, _), t in zip(self.records, self._times):
            r = rows.setdefault(name, [0, 0.0])
            r[0] += 1
            r[1] += t
        w = max([len("kernel")] + [len(n) for n in rows])
        lines = [f"{'kernel':<{w}}  {'calls':>6}  {'device ms':>10}  {'mean us':>9}"]
        for name, (c, t) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"{name:<{w}}  {c:>6}  {t * 1e3:>10.3f}  {t / c * 1e6:>9.1f}")
        lines.append(f"{'total':<{w}}  {self.launches:>6}  {self.device_time * 1e3:>10.3f}")
        return "\n".join(lines)

    def __repr__(self):
        return f"profile(launches={self.launches}, device_time={self.device_time:.6f})"


def launch(dev: DeviceInfo, kernel, name: str, gsize, lsize, args, refresh=None) -> None:
    """Enqueue one kernel; no wait. Records the event when a profile is active.
    ``refresh(advance)`` (optional) returns {argument index: value} for scalar arguments a
    compiled replay must recompute (a random seed, an optimizer's step size); with
    ``advance=False`` it only peeks (the host-side counters do not move)."""
    if observers:
        notify(Launch(dev, kernel, name, gsize, lsize, args, refresh))
    try:
        ev = kernel(dev.queue, gsize, lsize, *args)
    except cl.Error as e:
        raise RuntimeError(
            f"launching kernel {name} on cl:{dev.index} ({dev.name}) with global size {gsize}, "
            f"local size {lsize} failed: {e}"
        ) from None
    if _profilers:
        for p in _profilers:
            p.records.append((name, ev, kernel))


def enqueue(dev: DeviceInfo, kernel, name: str, gsize, lsize) -> None:
    """Enqueue a kernel whose arguments are already set (compiled replay)."""
    ev = cl.enqueue_nd_range_kernel(dev.queue, kernel, gsize, lsize)
    if _profilers:
        for p in _profilers:
            p.records.append((name, ev, kernel))


def synchronize(dev: DeviceInfo | None = None) -> None:
    if dev is not None:
        dev.queue.finish()


# --- host transfers ----------------------------------------------------------------------


def write(storage: Storage, host: np.ndarray, byte_offset: int = 0) -> None:
    if host.nbytes == 0:
        return
    if observers:
        notify(Write(storage.buf, host, byte_offset))
    cl.enqueue_copy(storage.dev.queue, storage.buf, np.ascontiguousarray(host),
                    dst_offset=byte_offset, is_blocking=True)


def read(storage: Storage, out: np.ndarray, byte_offset: int = 0) -> np.ndarray:
    if out.nbytes == 0:
        return out
    if observers:
        notify(Read(storage.buf))
    cl.enqueue_copy(storage.dev.queue, out, storage.buf, src_offset=byte_offset,
                    is_blocking=True)
    return out


def copy_buffer(src: Storage, dst: Storage, nbytes: int, src_off: int = 0,
                dst_off: int = 0) -> None:
    if nbytes and observers:
        notify(Copy(src.buf, dst.buf, nbytes, src_off, dst_off))
    if nbytes:
        cl.enqueue_copy(dst.dev.queue, dst.buf, src.buf, byte_count=nbytes,
                        src_offset=src_off, dst_offset=dst_off)

