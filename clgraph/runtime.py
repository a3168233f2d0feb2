"""Runtime: device buffers (Storage), kernel launches, profiling and host transfers.
Launches what it is given; knows nothing of ops, graphs or tensors.

Each allocation, launch, host transfer and device copy is an event (``Alloc``, ``Launch``,
``Write``, ``Copy``, ``Read``) delivered by ``notify`` to the ``observers``: the
interpreters a higher layer pushed (ops/registry.py: a compile trace). Higher layers report
their own events (index checks, gradient writes, optimizer steps, and ``HostStep`` and
``HostState``: host work a replay repeats, host state it depends on) the same way. With no
observer an event costs one test of ``observers`` and is never built."""

from __future__ import annotations

import atexit
import gc
import os
import threading
import time
from collections import namedtuple

import numpy as np
import pyopencl as cl

from .device import DeviceInfo, on_start

_POOL_LIMIT_BYTES = 1 << 28  # cached free buffers per device; above it frees go to the driver
# A new buffer at least this big is touched once (one byte written, waited for) on devices
# whose driver allocates at first use, so that a failed allocation is raised by the op that
# asked for it, not by a later read. The wait drains the queue; one pass over 64 MiB takes
# about as long as the wait itself (14 us at an H200's 4.8 TB/s), and a pooled buffer is not
# touched again.
_PROBE_BYTES = 64 << 20
_ONE_BYTE = np.zeros(1, np.uint8)
# The OpenCL errors that mean "not enough memory" (INVALID_BUFFER_SIZE: above the device's
# largest buffer).
_OOM_CODES = frozenset({cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE,
                        cl.status_code.OUT_OF_RESOURCES, cl.status_code.OUT_OF_HOST_MEMORY,
                        cl.status_code.INVALID_BUFFER_SIZE})
# The pushed interpreters, innermost last (registry.push replaces the tuple, so that a
# notify in progress keeps the one it started with). While any is pushed, freed buffers
# stay out of the pool: an observer may hold a buffer by identity (a trace's records).
observers: tuple = ()
# Counts re-bindings that change what a compiled call would read: an attribute set on an
# nn.Module (a Parameter reassigned, train()/eval()) or a tensor's storage swapped
# (``t.data = ...``). cg.compile's signature reuses what it computed while this is unchanged.
rebinds = 0

# The events, as lower layers make them (the buffers are cl.Buffers): a Storage allocated;
# a kernel enqueued (``refresh`` as launch() says); bytes written from or read to the host;
# bytes copied between buffers.
Alloc = namedtuple("Alloc", "storage")
Launch = namedtuple("Launch", "dev kernel name gsize lsize args refresh")
Write = namedtuple("Write", "buf host offset")
Read = namedtuple("Read", "buf")
Copy = namedtuple("Copy", "src dst nbytes src_off dst_off")
# A Storage written in place (its version counted): a compiled replay counts the writes of
# the call it repeats on the Storages made before it.
Bump = namedtuple("Bump", "storage")
# Host work a compiled replay repeats at this point of the call (a collective's exchange
# over MPI): ``fn(*views)`` with views of ``tensors``' layouts on that replay's buffers;
# ``access`` says per tensor what ``fn`` does with it: "r", "w" or "rw". ``asynchronous``:
# ``fn`` starts the work and returns a handle whose ``wait()`` completes it; a replay waits
# before the first later action on those tensors' buffers (or at its end).
HostStep = namedtuple("HostStep", "name fn tensors access asynchronous", defaults=(False,))
# Host state a traced call depends on and a replay neither reads nor changes (whether
# DistributedDataParallel averages gradients): ``read()`` gives it, hashable. A plan is made
# only when the call leaves it as it found it (else ``why`` says why the call runs eagerly),
# and is replayed only while ``read()`` still gives that value.
HostState = namedtuple("HostState", "read why")


def bump(storage) -> None:
    """Count an in-place write of ``storage`` (autograd's saved-tensor checks and the
    index checks' memo read its version)."""
    storage.version += 1
    if observers:
        notify(Bump(storage))


def notify(event) -> None:
    """Deliver ``event`` to every observer. Callers test ``observers`` first, so that an
    unobserved event is never built."""
    for o in observers:
        o.observe(event)
# Buffers a compiled plan writes to (parameters, optimizer state): never recycled by the pool.
_pinned: set = set()


class OutOfMemoryError(RuntimeError):
    """torch.OutOfMemoryError: a device could not hold a buffer (clgraph's check against the
    device's limits, or the driver's failure after the pool's cached buffers were freed)."""


class _Memory:
    """What clgraph holds on one device: its live Storages (how many, their bytes, the most
    bytes held since the last reset) and the pool of free buffers (size -> buffers, their
    bytes). One object per device index, so that an allocation touches no dict by index."""

    __slots__ = ("buffers", "allocated", "peak", "free", "cached")

    def __init__(self):
        self.buffers = self.allocated = self.peak = self.cached = 0
        self.free: dict[int, list] = {}


_memory: dict[int, _Memory] = {}  # device index -> what clgraph holds there


def _memory_of(index: int) -> _Memory:
    mem = _memory.get(index)
    if mem is None:
        mem = _memory[index] = _Memory()
    return mem


class Storage:
    """A device buffer shared by a tensor and its views; ``version`` counts in-place writes."""

    __slots__ = ("buf", "nbytes", "dev", "version", "mem", "__weakref__")

    def __init__(self, dev: DeviceInfo, nbytes: int):
        self.dev = dev
        self.nbytes = nbytes
        self.version = 0
        mem = _memory.get(dev.index) or _memory_of(dev.index)
        size = nbytes or 1
        free = mem.free.get(size)
        if free:
            self.buf = free.pop()
            mem.cached -= size
        else:
            self.buf = _new_buffer(dev, size)
        self.mem = mem
        mem.buffers += 1
        held = mem.allocated = mem.allocated + nbytes
        if held > mem.peak:
            mem.peak = held
        if observers:
            notify(Alloc(self))

    def __del__(self):
        try:
            buf = self.buf  # AttributeError: __init__ raised, nothing was counted
            mem = self.mem
            mem.buffers -= 1
            nbytes = self.nbytes
            mem.allocated -= nbytes
            if observers or buf in _pinned:
                return  # a trace or a compiled plan holds this buffer
            size = nbytes or 1
            if mem.cached + size <= _POOL_LIMIT_BYTES:
                free = mem.free.get(size)
                if free is None:
                    mem.free[size] = [buf]
                else:
                    free.append(buf)
                mem.cached += size
        except Exception:  # interpreter shutdown, or __init__ raised
            pass


def _new_buffer(dev: DeviceInfo, size: int):
    """A new cl.Buffer of ``size`` bytes: checked against the device's limits first, and
    tried once more, after the pool's cached buffers are freed, when the driver fails."""
    mem = _memory_of(dev.index)
    if size > dev.max_alloc_size:
        raise _out_of_memory(dev, size, "more than the largest buffer the device allows")
    if size > dev.memory - mem.allocated - mem.cached:
        _free_cached(dev)
        if size > dev.memory - mem.allocated:
            raise _out_of_memory(dev, size, "more than the device has beside what clgraph "
                                 "holds")
    try:
        return _create(dev, size)
    except cl.Error as e:
        return _retry(e, dev, f"allocating {_size(size)}", lambda: _create(dev, size))


def _create(dev: DeviceInfo, size: int):
    """cl.Buffer, touched once when it is big and the driver allocates at first use."""
    buf = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, size)
    if size >= _PROBE_BYTES and dev.allocates_lazily:
        try:
            _touch(dev, buf, size)
        except cl.Error:
            buf.release()  # before the retry, not when the traceback dies
            raise
    return buf


def _touch(dev: DeviceInfo, buf, size: int) -> None:
    """Write the buffer's last byte and wait: a lazy driver allocates it here or fails."""
    flush(dev)
    cl.enqueue_copy(dev.queue, buf, _ONE_BYTE, dst_offset=size - 1, is_blocking=True)


def _retry(e: cl.Error, dev: DeviceInfo, doing: str, again):
    """After OpenCL error ``e`` while ``doing`` (a phrase): when it means out of memory, free
    the pool's cached buffers and return ``again()``; else, or when that fails too, raise
    the clgraph exception naming what was done and where."""
    if getattr(e, "code", None) in _OOM_CODES:
        _free_cached(dev)
        try:
            return again()
        except cl.Error as e2:
            e = e2
    code = getattr(e, "code", None)
    if code in _OOM_CODES:
        also = (" (OUT_OF_RESOURCES may also mean a work-group too large for the kernel's "
                "registers)" if code == cl.status_code.OUT_OF_RESOURCES else "")
        raise OutOfMemoryError(f"OpenCL out of memory {doing} on {_where(dev)}: {e}{also}. "
                               f"{_holding(dev)}. {_HINT}") from None
    raise RuntimeError(f"{doing} on {_where(dev)} failed: {e}") from None


def guarded(dev: DeviceInfo, doing: str, fn):
    """``fn()`` (an OpenCL call on ``dev``) with its errors as clgraph's: out of memory
    retried once after the pool is emptied, then OutOfMemoryError or RuntimeError naming
    what was done (``doing``) and the device."""
    try:
        return fn()
    except cl.Error as e:
        return _retry(e, dev, doing, fn)


_HINT = ("Free the tensors you no longer need, use a smaller batch, or call "
         "cg.cl.empty_cache() to give the pool's cached buffers back to the driver.")


def _out_of_memory(dev: DeviceInfo, size: int, reason: str) -> OutOfMemoryError:
    return OutOfMemoryError(
        f"OpenCL out of memory allocating {_size(size)} on {_where(dev)}: {reason}. "
        f"{_holding(dev)}. {_HINT}")


def _size(n: int) -> str:
    return format_bytes(n) + (f" ({n} bytes)" if n >= 1024 else "")


def _where(dev: DeviceInfo) -> str:
    return f"cl:{dev.index} ({dev.name})"


def _holding(dev: DeviceInfo) -> str:
    return (f"The device has {format_bytes(dev.memory)} of memory, at most "
            f"{format_bytes(dev.max_alloc_size)} in one buffer; clgraph holds "
            f"{format_bytes(memory_allocated(dev.index))} in tensors and "
            f"{format_bytes(_memory_of(dev.index).cached)} cached in its pool")


def format_bytes(n: int) -> str:
    """PyTorch's size wording: "512 bytes", "1.50 KiB", ..., "4.00 TiB"."""
    if n < 1024:
        return f"{n} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.2f} {unit}"


def _free_cached(dev: DeviceInfo) -> None:
    """Give the device's cached buffers back to the driver, after collecting the tensors
    only reference cycles keep, and wait for the queue so that releases take effect."""
    gc.collect()
    mem = _memory_of(dev.index)
    mem.free, mem.cached = {}, 0
    finish(dev)


def live_buffers() -> int:
    """Number of device buffers held by tensors right now."""
    return sum(mem.buffers for mem in _memory.values())


def memory_allocated(index: int) -> int:
    """Bytes the live tensors on device ``index`` hold."""
    mem = _memory.get(index)
    return mem.allocated if mem is not None else 0


def max_memory_allocated(index: int) -> int:
    """The most bytes the live tensors on device ``index`` held since the last
    reset_peak_memory_stats (or the start)."""
    mem = _memory.get(index)
    return mem.peak if mem is not None else 0


def reset_peak_memory_stats(index: int) -> None:
    mem = _memory.get(index)
    if mem is not None:
        mem.peak = mem.allocated


def memory_reserved(index: int) -> int:
    """Bytes clgraph holds on device ``index``: its tensors' and the pool's cached buffers'."""
    mem = _memory.get(index)
    return mem.allocated + mem.cached if mem is not None else 0


def empty_cache() -> None:
    """Release the cached free buffers to the driver."""
    for mem in _memory.values():
        mem.free, mem.cached = {}, 0


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
                    flush_all()
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


# --- submission --------------------------------------------------------------------------
# PoCL's CPU device hands each command to its worker threads as it is enqueued; woken for
# every short kernel, they compete with the Python thread for the same cores, and a tiny
# eager op costs nearly twice the host time it costs in a burst (12 vs 7 us on 2 cores). On
# CPU devices, launches of kernels that run briefly therefore queue behind a gate (a marker
# waiting on a user event) and go to the device together: before a longer kernel, before
# anything waits for the device (``flush``: reads, blocking writes, maps, finish, events),
# when DEFER_LAUNCHES wait, and otherwise about GATE_SECONDS after the gate closed, released
# by a watchdog thread (the thread that enqueues then pays nothing for it), so that work held
# back never waits for long, whatever waits for it.
# Whether a kernel is brief is measured, per kernel and global size: from its second
# launch on (the first may include PoCL's build) it runs at once with its device time read,
# until one run takes less than SHORT_SECONDS (held from then on) or LONG_RUNS did not (never
# held). Longer kernels gain nothing from it (the host is not what waits) and go to the
# device at once, so that it never idles while the host works. CLGRAPH_DEFER=0 turns it off,
# =N holds up to N launches; GPUs' drivers batch submissions themselves.
DEFER_LAUNCHES = 1024
SHORT_SECONDS = 10e-6
LONG_RUNS = 3
GATE_SECONDS = 0.001
_SHORT = -1


class Gate:
    """The launches of one device held back from its queue (see above)."""

    __slots__ = ("dev", "limit", "event", "held", "since", "lock", "kinds", "probes")

    def __init__(self, dev: DeviceInfo, limit: int):
        self.dev, self.limit = dev, limit
        self.event = None  # the user event the queue waits on; None while open
        self.held = 0
        self.since = 0.0
        self.lock = threading.Lock()
        # (kernel, global size) -> _SHORT, or how many of its runs were measured long
        self.kinds: dict = {}
        self.probes: list = []  # [(key, event)]: launches whose device time is to be read

    def hold(self, kernel, gsize):
        """Before a launch: hold it back, or let what is held go before it. Returns the key
        of a launch whose device time is to be measured (``probe``), else None."""
        key = (kernel, gsize if type(gsize) is tuple else tuple(gsize))
        kind = self.kinds.get(key)
        if self.probes:
            self._read_probe()
        if kind == _SHORT:
            if self.event is None:
                self._close()
            elif self.held >= self.limit:
                self.release()
                self._close()
            self.held += 1
            return None
        if self.event is not None:
            self.release()
        if kind is None:
            if len(self.kinds) > 4096:
                self.kinds.clear()
            self.kinds[key] = 0
        elif kind < LONG_RUNS and all(k != key for k, _ in self.probes):
            return key
        return None

    def probe(self, key, event) -> None:
        self.probes.append((key, event))

    def _read_probe(self) -> None:
        key, ev = self.probes[0]
        try:
            if ev.command_execution_status != cl.command_execution_status.COMPLETE:
                return
            t = (ev.profile.end - ev.profile.start) * 1e-9
        except cl.Error:  # a failed command: judge it by another run
            t = None
        del self.probes[0]
        if t is not None and key in self.kinds:
            self.kinds[key] = _SHORT if t < SHORT_SECONDS else self.kinds[key] + 1

    def _close(self) -> None:
        with self.lock:  # two threads closing at once would lose one gate's event
            if self.event is not None:
                return
            ev = cl.UserEvent(self.dev.context)
            cl.enqueue_marker(self.dev.queue, wait_for=[ev])
            self.event, self.since = ev, time.perf_counter()
        _watchdog.wake()

    def release(self) -> None:
        with self.lock:
            ev, self.event, self.held = self.event, None, 0
        if ev is not None:
            ev.set_status(cl.command_execution_status.COMPLETE)


class _Watchdog:
    """Releases any gate closed for more than GATE_SECONDS (one daemon thread, started with
    the first gate and again in a forked child)."""

    def __init__(self):
        self.gates: list[Gate] = []
        self.ring = threading.Event()
        self.thread = None

    def add(self, gate: Gate) -> None:
        self.gates.append(gate)

    def wake(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="clgraph-gates", daemon=True)
            self.thread.start()
        self.ring.set()

    def _run(self) -> None:
        while True:
            self.ring.wait()
            self.ring.clear()
            time.sleep(GATE_SECONDS)
            now = time.perf_counter()
            for g in self.gates:
                if g.event is not None and now - g.since >= GATE_SECONDS / 2:
                    g.release()

    def forked(self) -> None:
        self.thread = None
        self.ring = threading.Event()


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.forked)


def _install_gate(dev: DeviceInfo) -> None:
    limit = os.environ.get("CLGRAPH_DEFER", "")
    limit = int(limit) if limit.strip().isdigit() else DEFER_LAUNCHES
    if limit > 0 and dev.type == "cpu":
        dev.gate = Gate(dev, limit)
        _watchdog.add(dev.gate)


on_start.append(_install_gate)


def flush(dev: DeviceInfo) -> None:
    """Let the launches held back on ``dev`` go: before anything waits for the device."""
    g = dev.gate
    if g is not None and g.event is not None:
        g.release()


def flush_all() -> None:
    for g in _watchdog.gates:
        if g.event is not None:
            g.release()


atexit.register(flush_all)


def finish(dev: DeviceInfo) -> None:
    """Wait until every command enqueued on ``dev`` has run."""
    flush(dev)
    dev.queue.finish()
    _landed()


def wait(dev: DeviceInfo, event) -> None:
    """Wait for ``event``, a command enqueued on ``dev``."""
    flush(dev)
    event.wait()


# kernel -> ``set(kernel, args)``, a faster way to set its arguments than pyopencl's invoker,
# which kernels without one go through (codegen makes them with the argument types)
arg_setters: dict = {}


def launch(dev: DeviceInfo, kernel, name: str, gsize, lsize, args, refresh=None) -> None:
    """Enqueue one kernel; no wait. Records the event when a profile is active.
    ``refresh(advance)`` (optional) returns {argument index: value} for scalar arguments a
    compiled replay must recompute (a random seed, an optimizer's step size); with
    ``advance=False`` it only peeks (the host-side counters do not move)."""
    if observers:
        notify(Launch(dev, kernel, name, gsize, lsize, args, refresh))
    gate = dev.gate
    probe = gate.hold(kernel, gsize) if gate is not None else None
    setter = arg_setters.get(kernel)
    try:
        if setter is None:
            ev = kernel(dev.queue, gsize, lsize, *args)
        else:  # _start's work, without its frame
            setter(kernel, args)
            ev = cl.enqueue_nd_range_kernel(dev.queue, kernel, gsize, lsize)
    except cl.Error as e:
        ev = _retry(e, dev, f"launching kernel {name} with global size {gsize}, local size "
                    f"{lsize}", lambda: _start(dev, kernel, gsize, lsize, args, setter))
    if probe is not None:
        gate.probe(probe, ev)
    if _profilers:
        for p in _profilers:
            p.records.append((name, ev, kernel))


def _start(dev: DeviceInfo, kernel, gsize, lsize, args, setter):
    """Set the kernel's arguments (with its setter when it has one) and enqueue it."""
    if setter is None:
        return kernel(dev.queue, gsize, lsize, *args)
    setter(kernel, args)
    return cl.enqueue_nd_range_kernel(dev.queue, kernel, gsize, lsize)


def enqueue(dev: DeviceInfo, kernel, name: str, gsize, lsize) -> None:
    """Enqueue a kernel whose arguments are already set (compiled replay)."""
    gate = dev.gate
    probe = gate.hold(kernel, gsize) if gate is not None else None
    try:
        ev = cl.enqueue_nd_range_kernel(dev.queue, kernel, gsize, lsize)
    except cl.Error as e:
        ev = _retry(e, dev, f"launching kernel {name} of a compiled plan with global size "
                    f"{gsize}, local size {lsize}",
                    lambda: cl.enqueue_nd_range_kernel(dev.queue, kernel, gsize, lsize))
    if probe is not None:
        gate.probe(probe, ev)
    if _profilers:
        for p in _profilers:
            p.records.append((name, ev, kernel))


def synchronize(dev: DeviceInfo | None = None) -> None:
    if dev is not None:
        finish(dev)


# --- host transfers ----------------------------------------------------------------------


# Host-to-device copies in flight (pyopencl's NannyEvents, which keep the host array alive and
# wait for the copy when they die), oldest first. Up to ASYNC_WRITE_BYTES a write enqueues
# the copy from a private copy of the host data and returns, so that a training loop's batch
# upload does not wait for the previous step's kernels (on a GPU, a blocking write drains the
# queue every step); bigger writes block, as they did, rather than hold a second copy.
_uploads: list = []
ASYNC_WRITE_BYTES = 16 << 20


def _landed() -> None:
    """Forget the copies that have landed, oldest first (their host data goes)."""
    while _uploads and _uploads[0].command_execution_status == cl.command_execution_status.COMPLETE:
        del _uploads[0]


def write(storage: Storage, host: np.ndarray, byte_offset: int = 0, owned: bool = False) -> None:
    """Copy ``host`` into the buffer at ``byte_offset``. The caller may change ``host`` as
    soon as this returns (``owned``: nobody will, so a small write needs no private copy)."""
    if host.nbytes == 0:
        return
    if observers:
        notify(Write(storage.buf, host, byte_offset))
    q, buf = storage.dev.queue, storage.buf
    blocking = host.nbytes > ASYNC_WRITE_BYTES
    if blocking:
        host = np.ascontiguousarray(host)
        flush(storage.dev)
    elif not (owned and host.flags.c_contiguous):
        host = np.array(host, order="C")  # a copy, whatever host's layout
    _landed()
    try:
        ev = cl.enqueue_copy(q, buf, host, dst_offset=byte_offset, is_blocking=blocking)
    except cl.Error as e:
        ev = _retry(e, storage.dev, f"writing {host.dtype}{list(host.shape)} from the host",
                    lambda: cl.enqueue_copy(q, buf, host, dst_offset=byte_offset,
                                            is_blocking=blocking))
    if not blocking:
        _uploads.append(ev)


def read(storage: Storage, out: np.ndarray, byte_offset: int = 0) -> np.ndarray:
    if out.nbytes == 0:
        return out
    if observers:
        notify(Read(storage.buf))
    q, buf = storage.dev.queue, storage.buf
    flush(storage.dev)
    try:
        cl.enqueue_copy(q, out, buf, src_offset=byte_offset, is_blocking=True)
    except cl.Error as e:
        _retry(e, storage.dev, f"reading {out.dtype}{list(out.shape)} to the host",
               lambda: cl.enqueue_copy(q, out, buf, src_offset=byte_offset, is_blocking=True))
    return out


def copy_buffer(src: Storage, dst: Storage, nbytes: int, src_off: int = 0,
                dst_off: int = 0) -> None:
    if nbytes and observers:
        notify(Copy(src.buf, dst.buf, nbytes, src_off, dst_off))
    if not nbytes:
        return
    q = dst.dev.queue
    try:
        cl.enqueue_copy(q, dst.buf, src.buf, byte_count=nbytes, src_offset=src_off,
                        dst_offset=dst_off)
    except cl.Error as e:
        _retry(e, dst.dev, f"copying {format_bytes(nbytes)} between buffers",
               lambda: cl.enqueue_copy(q, dst.buf, src.buf, byte_count=nbytes,
                                       src_offset=src_off, dst_offset=dst_off))

