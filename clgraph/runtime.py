"""Runtime: device buffers (Storage), kernel launches, profiling and host transfers.
Launches what it is given; knows nothing of ops, graphs or tensors."""

from __future__ import annotations

import numpy as np
import pyopencl as cl

from .device import DeviceInfo

_live = {"buffers": 0, "bytes": 0}
_pools: dict[int, dict[int, list]] = {}
_POOL_LIMIT_BYTES = 1 << 28  # cached free buffers per device; above it frees go to the driver
_pool_bytes: dict[int, int] = {}
# A compiled graph in the making (clgraph.compile installs it): it hears of every buffer
# allocated, kernel launched and host transfer made while a traced call runs.
_capture = None
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
        if _capture is not None:
            _capture.on_alloc(self)

    def __del__(self):
        try:
            _live["buffers"] -= 1
            _live["bytes"] -= self.nbytes
            size = max(self.nbytes, 1)
            idx = self.dev.index
            if _capture is not None or self.buf in _pinned:
                return  # a compiled plan holds this buffer
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
    if _capture is not None:
        _capture.on_launch(dev, kernel, name, gsize, lsize, args, refresh)
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
    if _capture is not None:
        _capture.on_write(storage, host, byte_offset)
    cl.enqueue_copy(storage.dev.queue, storage.buf, np.ascontiguousarray(host),
                    dst_offset=byte_offset, is_blocking=True)


def read(storage: Storage, out: np.ndarray, byte_offset: int = 0) -> np.ndarray:
    if out.nbytes == 0:
        return out
    if _capture is not None:
        _capture.on_read(storage)
    cl.enqueue_copy(storage.dev.queue, out, storage.buf, src_offset=byte_offset,
                    is_blocking=True)
    return out


def copy_buffer(src: Storage, dst: Storage, nbytes: int, src_off: int = 0,
                dst_off: int = 0) -> None:
    if nbytes and _capture is not None:
        _capture.on_copy(src, dst, nbytes, src_off, dst_off)
    if nbytes:
        cl.enqueue_copy(dst.dev.queue, dst.buf, src.buf, byte_count=nbytes,
                        src_offset=src_off, dst_offset=dst_off)

