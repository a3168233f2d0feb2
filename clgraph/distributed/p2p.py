"""Point-to-point: send, recv, isend, irecv, batch_isend_irecv, the object variants, and
monitored_barrier, over the group's second communicator (their messages never match a
collective's).

A tensor goes as one MPI message of its header (dtype and shape) and its bytes, where they
lie (a struct datatype: no copy), posted without waiting; a receive, from one rank or any
(``src=None``), is posted at once the same way, so MPI moves the bytes whatever the program
does next (torch's ``tag`` t becomes MPI tag 3t; 3t + 2 carries objects). A receiver whose
tensor disagrees with the sender's raises an error naming both (the message is off the
wire all the same, so no rank is left waiting); the sender, like torch's, does not learn
of it. A compiled call that sends or receives runs eagerly (a replay cannot match another
process's program).

Imports the group and the collectives' helpers.
"""

from __future__ import annotations

import time
import warnings
from datetime import timedelta

import numpy as np

from .. import dtypes as dt
from ..tensor import Tensor
from .collectives import (
    _NOTHING,
    _bytes,
    _contiguous,
    _describe,
    _objects_traced,
    _signature,
    _stored,
    _tensor,
)
from .group import Group, Work, default_pg_timeout, group_peer, mpi
from .group import resolve as _resolve
from .host import HostView

_MONITOR_TAG = 32767  # monitored_barrier's messages: above every tag a user may pass


def _mpi_tag(tag: int, part: int) -> int:
    if not 0 <= tag <= (_MONITOR_TAG - 3) // 3:
        raise ValueError(f"tag {tag} is out of range: clgraph.distributed takes tags from 0 "
                         f"to {(_MONITOR_TAG - 3) // 3}")
    return 3 * tag + part


class _P2PWork(Work):
    """The Work of isend / irecv: its MPI requests advance whenever it is asked about
    (``wait()``, ``is_completed()``); ``wait()`` then puts a received tensor in place."""

    def __init__(self, op, finish=None):
        super().__init__(finish)
        self._op = op

    def _advance(self, block: bool) -> None:
        if self._done.is_set():
            return
        _serialized(self._op.g)
        try:
            done = self._op.progress(block)
        except BaseException as e:  # noqa: BLE001  (raised by wait())
            self._complete(e)
            return
        if done:
            self._complete()

    def is_completed(self) -> bool:
        self._advance(False)
        return super().is_completed()

    def wait(self, timeout=None) -> bool:
        if timeout is None:
            self._advance(True)
        else:
            deadline = time.monotonic() + _seconds(timeout)
            while not self._done.is_set() and time.monotonic() < deadline:
                self._advance(False)
                time.sleep(1e-4)
            if not self._done.is_set():
                raise RuntimeError(f"point-to-point operation did not finish within {timeout}")
        return super().wait()

    def _source_rank(self) -> int:
        """The group rank of the sender (a receive's)."""
        return self._op.source


def _seconds(t) -> float:
    return t.total_seconds() if hasattr(t, "total_seconds") else float(t)


def _serialized(g: Group) -> None:
    """Below MPI_THREAD_MULTIPLE, the worker's MPI calls (asynchronous collectives) must be
    over before this thread makes its own."""
    MPI = mpi()
    if g.worker is not None and MPI.Query_thread() < MPI.THREAD_MULTIPLE:
        g.worker.drain()


def _message(header: np.ndarray, data: np.ndarray):
    """One MPI message of a tensor's header and bytes, where they lie (a struct datatype
    of absolute addresses: nothing is copied)."""
    MPI = mpi()
    parts = [header] + ([data] if data.size else [])
    kind = MPI.Datatype.Create_struct([p.size for p in parts],
                                      [MPI.Get_address(p) for p in parts],
                                      [MPI.INT64_T, MPI.BYTE][:len(parts)]).Commit()
    return kind


class _Send:
    def __init__(self, g: Group, t: Tensor, peer: int, tag: int):
        self.g = g
        _serialized(g)
        self.view = HostView(t, True, False) if t.numel() else None
        if self.view is not None:
            for i in range(self.view.chunks):  # the device's bytes are on the host
                self.view.chunk(i)
        self.header = _signature("p2p", t, g.rank)
        kind = _message(self.header, _NOTHING if self.view is None else _bytes(self.view.array))
        self.request = g.p2p.Isend([mpi().BOTTOM, 1, kind], dest=peer, tag=_mpi_tag(tag, 0))
        kind.Free()  # MPI keeps it until the send is done

    def progress(self, block: bool) -> bool:
        if block:
            self.request.Wait()
        elif not self.request.Test():
            return False
        self.close()
        return True

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
            self.view = None


class _Recv:
    """A receive posted at once, from ``peer`` or any rank: the sender's header lands beside
    the bytes, and says whose they were and what they held."""

    def __init__(self, g: Group, t: Tensor, peer: int | None, tag: int, name: str):
        MPI = mpi()
        _serialized(g)
        self.g, self.name, self.source = g, name, peer
        self.mine = _signature("p2p", t, g.rank)
        self.view = HostView(t, False, True) if t.numel() else None
        if self.view is not None:  # the device is done with the buffer MPI will write
            for i in range(self.view.chunks):
                self.view.chunk(i)
        self.header = np.full_like(self.mine, -1)
        self.status = MPI.Status()
        kind = _message(self.header, _NOTHING if self.view is None else _bytes(self.view.array))
        self.request = g.p2p.Irecv([MPI.BOTTOM, 1, kind], source=MPI.ANY_SOURCE if peer is None
                                   else peer, tag=_mpi_tag(tag, 0))
        kind.Free()

    def progress(self, block: bool) -> bool:
        MPI = mpi()
        truncated = False
        try:
            if block:
                self.request.Wait(self.status)
            elif not self.request.Test(self.status):
                return False
        except MPI.Exception as e:
            if e.Get_error_class() != MPI.ERR_TRUNCATE:
                raise
            truncated = True  # more bytes came than the tensor holds
        self.source = self.status.Get_source()
        theirs, mine = self.header, self.mine
        if truncated or theirs[2] != mine[2] or theirs[4] != mine[4]:
            g = self.g
            sent = (_describe(theirs, None) if 0 <= theirs[2] < len(dt.ALL)
                    else f"{self.status.Get_count(MPI.BYTE)} bytes")
            raise RuntimeError(f"clgraph.distributed.{self.name}: rank {g.ranks[self.source]} "
                               f"sent {sent}, rank {g.ranks[g.rank]} receives into "
                               f"{_describe(mine, None)}")
        return True


def _peer(g: Group, name: str, rank, group_rank, what: str) -> int:
    peer = group_peer(g, name, rank, group_rank, what)
    if peer == g.rank:
        raise ValueError(f"Invalid {what} rank: {what} rank should not be the same as the rank "
                         "of the current process.")
    return peer


def isend(tensor: Tensor, dst: int | None = None, group=None, tag: int = 0,
          group_dst: int | None = None):
    """torch.distributed.isend: sends ``tensor`` to global rank ``dst`` (``group_dst``: a
    rank of ``group``) without waiting; returns a Work (None outside ``group``)."""
    t = _tensor(tensor, "isend")
    g = _resolve(group, "isend")
    if g is None:
        return None
    _objects_traced()  # a compiled call that sends or receives runs eagerly
    peer = _peer(g, "isend", dst, group_dst, "destination")
    op = _Send(g, _contiguous(t), peer, tag)
    return _P2PWork(op, lambda ok: op.close())


def irecv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0,
          group_src: int | None = None):
    """torch.distributed.irecv: receives into ``tensor`` from global rank ``src`` (any rank
    when neither ``src`` nor ``group_src`` is given) without waiting; returns a Work whose
    ``wait()`` puts the values in place (None outside ``group``)."""
    t = _tensor(tensor, "irecv")
    g = _resolve(group, "irecv")
    if g is None:
        return None
    _objects_traced()  # a compiled call that sends or receives runs eagerly
    peer = None if src is None and group_src is None else _peer(g, "irecv", src, group_src,
                                                                 "source")
    tmp = _contiguous(t)
    op = _Recv(g, tmp, peer, tag, "recv")

    def finish(ok):
        if op.view is not None:
            op.view.close()
            op.view = None
        if ok:
            _stored(t, tmp)

    return _P2PWork(op, finish)


def send(tensor: Tensor, dst: int | None = None, group=None, tag: int = 0,
         group_dst: int | None = None) -> None:
    """torch.distributed.send: isend, then wait for it."""
    work = isend(tensor, dst, group, tag, group_dst)
    if work is not None:
        work.wait()


def recv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0,
         group_src: int | None = None) -> int:
    """torch.distributed.recv: irecv, then wait for it; returns the sender's global rank
    (-1 outside ``group``)."""
    work = irecv(tensor, src, group, tag, group_src)
    if work is None:
        return -1
    work.wait()
    return work._op.g.ranks[work._source_rank()]


class P2POp:
    """torch.distributed.P2POp: one isend or irecv for batch_isend_irecv."""

    def __init__(self, op, tensor: Tensor, peer: int | None = None, group=None, tag: int = 0,
                 group_peer: int | None = None):
        if op not in (isend, irecv):
            raise ValueError("Invalid ``op``. Expected ``op`` to be of type "
                             "``torch.distributed.isend`` or ``torch.distributed.irecv``.")
        self.op, self.tensor, self.peer, self.group = op, _tensor(tensor, "P2POp"), peer, group
        self.tag, self.group_peer = tag, group_peer

    def __repr__(self) -> str:
        return (f"P2POp(op={self.op.__name__}, peer={self.peer}, group_peer={self.group_peer}, "
                f"tag={self.tag}, tensor={self.tensor.dtype}{list(self.tensor.shape)})")


def batch_isend_irecv(p2p_op_list: list) -> list:
    """torch.distributed.batch_isend_irecv: posts every operation at once (so a ring of
    sends and receives cannot deadlock) and returns their Works, in order."""
    ops = list(p2p_op_list)
    if not ops or not all(isinstance(p, P2POp) for p in ops):
        raise ValueError("Invalid ``p2p_op_list``. Each op is expected to to be of type "
                         "``torch.distributed.P2POp``.")
    works = []
    for p in ops:
        w = p.op(p.tensor, p.peer, p.group, p.tag, p.group_peer)
        if w is not None:
            works.append(w)
    return works


def send_object_list(object_list: list, dst: int | None = None, group=None, device=None,
                     group_dst: int | None = None, use_batch: bool = False) -> None:
    """torch.distributed.send_object_list: sends the list's objects (pickled) to ``dst``."""
    g = _resolve(group, "send_object_list")
    if g is None:
        return
    _objects_traced()
    peer = _peer(g, "send_object_list", dst, group_dst, "destination")
    g.p2p.send(list(object_list), dest=peer, tag=_mpi_tag(0, 2))


def recv_object_list(object_list: list, src: int | None = None, group=None, device=None,
                     group_src: int | None = None, use_batch: bool = False) -> int:
    """torch.distributed.recv_object_list: fills ``object_list`` (as long as the sender's)
    with the objects ``src`` (any rank by default) sent; returns the sender's global
    rank."""
    g = _resolve(group, "recv_object_list")
    if g is None:
        return -1
    _objects_traced()
    MPI = mpi()
    peer = MPI.ANY_SOURCE if src is None and group_src is None else _peer(
        g, "recv_object_list", src, group_src, "source")
    status = MPI.Status()
    got = g.p2p.recv(source=peer, tag=_mpi_tag(0, 2), status=status)
    sender = g.ranks[status.Get_source()]
    if len(got) != len(object_list):
        raise RuntimeError(f"recv_object_list: rank {sender} sent {len(got)} objects, "
                           f"object_list holds {len(object_list)}")
    object_list[:] = got
    return sender


def monitored_barrier(group=None, timeout=None, wait_all_ranks: bool = False) -> None:
    """torch.distributed.monitored_barrier: rank 0 waits up to ``timeout`` (30 minutes by
    default) for every other rank's arrival, then lets them go; it raises naming the first
    rank that did not come (every one with ``wait_all_ranks``), and the others raise when
    rank 0 does not answer in time."""
    g = _resolve(group, "monitored_barrier")
    if g is None:
        return
    _objects_traced()
    if timeout is None:
        timeout = default_pg_timeout
    elif isinstance(timeout, (int, float)):
        warnings.warn("Please specify timeout arg as a timedelta. Converting current value of "
                      f"{timeout} assuming it represents seconds", stacklevel=2)
        timeout = timedelta(seconds=timeout)
    if g.worker is not None:
        g.worker.drain()
    ms = int(timeout.total_seconds() * 1000)
    deadline = time.monotonic() + timeout.total_seconds()
    token = np.zeros(1, np.int8)
    if g.rank == 0:
        others = list(range(1, g.size))
        waiting = {r: g.p2p.Irecv(np.zeros(1, np.int8), source=r, tag=_MONITOR_TAG)
                   for r in others}
        late = _wait_for(waiting, deadline, stop_at_first=not wait_all_ranks)
        if late:
            who = [g.ranks[r] for r in late]
            if wait_all_ranks:
                raise RuntimeError(f"Ranks {', '.join(map(str, who))} failed to pass "
                                   f"monitoredBarrier in {ms} ms")
            raise RuntimeError(f"Rank {who[0]} failed to pass monitoredBarrier in {ms} ms")
        mpi().Request.Waitall([g.p2p.Isend(token, dest=r, tag=_MONITOR_TAG) for r in others])
        return
    g.p2p.Isend(token, dest=0, tag=_MONITOR_TAG).Wait()
    if _wait_for({0: g.p2p.Irecv(token, source=0, tag=_MONITOR_TAG)}, deadline, True):
        raise RuntimeError(f"Rank {g.ranks[g.rank]} timed out in monitoredBarrier: rank "
                           f"{g.ranks[0]} did not let it pass within {ms} ms")


def _wait_for(requests: dict, deadline: float, stop_at_first: bool) -> list:
    """Poll receives until all are in or ``deadline``; the ranks whose did not come
    (their receives cancelled), in rank order."""
    pending = dict(requests)
    while pending and time.monotonic() < deadline:
        for r, req in list(pending.items()):
            if req.Test():
                del pending[r]
        if pending:
            time.sleep(1e-3)
    late = sorted(pending)
    for r in late:
        pending[r].Cancel()
        pending[r].Wait()
    return late[:1] if stop_at_first else late



