"""A tensor's bytes on the host, where MPI reads and writes them.

Devices whose memory the host shares (CPU devices such as PoCL's, integrated GPUs) map
the tensor's own buffer: MPI works in place, no byte is copied. Other devices copy through
page-locked staging buffers kept for reuse, in chunks, each copy enqueued without waiting,
so that MPI works on one chunk while the device copies the next, and the copies back are
enqueued in order on the tensor's queue. ``CLGRAPH_DISTRIBUTED_STAGED=1`` stages on every
device (how the GPU path is tested on PoCL).

Imports nothing of clgraph (only pyopencl and numpy); knows nothing of MPI.
"""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np
import pyopencl as cl

from .. import runtime

CHUNK_BYTES = 4 << 20  # a staged transfer's unit: MPI reduces one while the next is copied


_HUGE = 2 << 20
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _huge_pages(arr: np.ndarray) -> None:
    """Advise the 2 MiB-aligned inside of a mapped buffer for transparent huge pages
    (MADV_HUGEPAGE, as numpy advises its own big arrays; MADV_COLLAPSE where Linux has it,
    6.1 on). Measured on PoCL, 2 processes: Open MPI's shared-memory all-reduce of 16 MB on
    a mapped buffer 2.9 -> 2.3 ms (on a numpy array: 2.0 ms), even on a VM that gives no
    huge page. Repeated calls on a region cost about 10 us; elsewhere this does nothing."""
    lo = -(-arr.ctypes.data // _HUGE) * _HUGE
    hi = (arr.ctypes.data + arr.nbytes) // _HUGE * _HUGE
    if _libc is None or hi <= lo:
        return
    for advice in (14, 25):  # MADV_HUGEPAGE, MADV_COLLAPSE
        _libc.madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), advice)


def zero_copy(dev) -> bool:
    """Whether MPI can work on the device's buffers in place (mapped without a copy)."""
    if os.environ.get("CLGRAPH_DISTRIBUTED_STAGED") == "1":
        return False
    d = dev.cl_device
    return bool(d.type & cl.device_type.CPU) or bool(getattr(d, "host_unified_memory", False))


class _Staging:
    """Page-locked host memory: a host-allocated OpenCL buffer mapped once for good."""

    __slots__ = ("buf", "host", "last")

    def __init__(self, dev, nbytes: int):
        self.buf = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE | cl.mem_flags.ALLOC_HOST_PTR,
                             nbytes)
        runtime.flush(dev)  # the map blocks
        self.host, _ = cl.enqueue_map_buffer(dev.queue, self.buf, cl.map_flags.READ |
                                             cl.map_flags.WRITE, 0, (nbytes,), np.uint8)
        self.last = None  # the last copy back to the device that reads it


_pool: dict = {}  # (device index, bytes) -> free staging buffers


def _take(dev, nbytes: int) -> _Staging:
    size = 1 << max(nbytes - 1, 1).bit_length()  # powers of two: buffers are reused
    free = _pool.get((dev.index, size))
    st = free.pop() if free else _Staging(dev, size)
    if st.last is not None:  # its previous contents may still be on the way to a device
        runtime.wait(dev, st.last)
        st.last = None
    return st


def _give_back(dev, st: _Staging) -> None:
    _pool.setdefault((dev.index, st.host.nbytes), []).append(st)


class HostView:
    """The bytes of contiguous tensor ``t`` as a numpy array of its storage dtype.
    ``fetch``: MPI reads them (the device's values are brought over); ``store``: MPI writes
    them (they go back). Made on the thread that enqueues the tensor's work: the map or the
    copies to the host are enqueued here, without waiting. ``chunk(i)`` (any thread) waits
    for chunk i; ``store_chunk(i)`` and ``close()`` (the enqueuing thread) send it back."""

    def __init__(self, t, fetch: bool, store: bool):
        self.dev = dev = t.device.info
        self.fetch, self.store = fetch, store
        n = t.numel()
        np_dtype = t.dtype.np
        off = t._offset * t.dtype.itemsize
        self.nbytes = n * t.dtype.itemsize
        self.buf, self.offset = t._storage.buf, off
        self.staging = None
        self._stored: set = set()
        if zero_copy(dev):
            flags = (cl.map_flags.READ if fetch else 0) | (cl.map_flags.WRITE if store else 0)
            if not fetch:
                flags = cl.map_flags.WRITE_INVALIDATE_REGION
            arr, ev = cl.enqueue_map_buffer(dev.queue, self.buf, flags, off, (n,), np_dtype,
                                            is_blocking=False)
            self.array, self.events, self.bounds = arr, [ev], [(0, n)]
            runtime.flush(dev)  # MPI waits for the map: it goes to the device now
            return
        self.staging = _take(dev, max(self.nbytes, 1))
        self.array = self.staging.host[:self.nbytes].view(np_dtype)
        step = max(CHUNK_BYTES // t.dtype.itemsize, 1)
        self.bounds = [(a, min(a + step, n)) for a in range(0, n, step)] or [(0, 0)]
        self.events = [None] * len(self.bounds)
        if fetch:
            it = t.dtype.itemsize
            self.events = [cl.enqueue_copy(dev.queue, self.array[a:b], self.buf,
                                           src_offset=off + a * it, is_blocking=False)
                           for a, b in self.bounds]
            runtime.flush(dev)

    @property
    def chunks(self) -> int:
        return len(self.bounds)

    def chunk(self, i: int) -> np.ndarray:
        """Chunk i on the host, once its copy (or the map) has landed."""
        ev = self.events[min(i, len(self.events) - 1)]
        if ev is not None:
            ev.wait()
            if self.staging is None and self.events[0] is not None:
                self.events[0] = None
                _huge_pages(self.array)
        a, b = self.bounds[i]
        return self.array[a:b]

    def store_chunk(self, i: int) -> None:
        """Enqueue chunk i's copy back to the device (staged views; a map is released by
        close())."""
        if self.staging is None or not self.store or i in self._stored:
            return
        self._stored.add(i)
        a, b = self.bounds[i]
        it = self.array.itemsize
        if b > a:
            self.staging.last = cl.enqueue_copy(self.dev.queue, self.buf, self.array[a:b],
                                                dst_offset=self.offset + a * it,
                                                is_blocking=False)

    def close(self) -> None:
        """Send what is left back to the device (unmap, or the copies not enqueued yet) and
        give the staging buffer back to the pool."""
        if self.staging is None:
            if self.array is not None:
                self.array.base.release(self.dev.queue)
                self.array = None
            return
        for i in range(self.chunks):
            self.store_chunk(i)
        _give_back(self.dev, self.staging)
        self.staging = None
