"""The collectives: all_reduce, broadcast, all_gather(_into_tensor), reduce_scatter(_tensor),
barrier, reduce, gather, scatter, all_to_all(_single), the deprecated coalesced ones and the
object collectives, over the group's MPI communicator (the default group's or a
``new_group``'s: ``src``/``dst`` are global ranks, ``group_src``/``group_dst`` its own).

Each collective is a task (the MPI calls, run in the group's order: on the calling thread,
or on the group's worker for ``async_op=True``) and a finish (the way back to the device,
enqueued on the tensor's queue by whoever calls ``wait()``). Tensors cross to the host
through host.HostView: mapped in place on CPU devices, staged in chunks elsewhere.

Every collective starts with one small all-gather of its signature (kind, dtype, shape,
op or root; for all_to_all the element counts each rank sends and expects), so that ranks
that disagree raise the same clear error instead of exchanging mismatched bytes or waiting
forever; DistributedDataParallel checks each bucket's first all-reduce only.

Inside a call cg.compile traces, each collective reports its exchange (the MPI side, on the
contiguous tensor it moves) as a runtime.HostStep, in program order among the kernels: a
replay runs it again at that point, on the replay's buffers; what surrounds it (a
contiguous copy, AVG's division, the copy back into a view) is ops the trace records.
Object collectives cannot be replayed: such a call runs eagerly. Imports the runtime, the
group, the host views, dtypes, Tensor and a few ops.
"""

from __future__ import annotations

import enum
import threading
import warnings

import numpy as np

from .. import dtypes as dt
from .. import runtime
from ..autograd import no_grad
from ..creation import empty
from ..ops.join import cat
from ..tensor import Tensor
from .group import current, group_peer, mpi, resolve
from .host import HostView


class ReduceOp(enum.Enum):
    """torch.distributed.ReduceOp: how all_reduce and reduce_scatter combine the ranks'
    values (AVG: the sum divided by the world size, floating-point tensors only)."""

    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7


_MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD",
            ReduceOp.MIN: "MIN", ReduceOp.MAX: "MAX", ReduceOp.BAND: "BAND",
            ReduceOp.BOR: "BOR", ReduceOp.BXOR: "BXOR"}
# MPI has no arithmetic on C bool: logical ops give PyTorch's results
_BOOL_OPS = {ReduceOp.SUM: "LOR", ReduceOp.MAX: "LOR", ReduceOp.BOR: "LOR",
             ReduceOp.PRODUCT: "LAND", ReduceOp.MIN: "LAND", ReduceOp.BAND: "LAND",
             ReduceOp.BXOR: "LXOR"}
_BF16_FNS = {ReduceOp.SUM: np.add, ReduceOp.AVG: np.add, ReduceOp.PRODUCT: np.multiply,
             ReduceOp.MIN: np.minimum, ReduceOp.MAX: np.maximum}
_bf16_ops: dict = {}


def _mpi_op(op: ReduceOp, d: dt.dtype):
    """The MPI reduction for ``op`` on dtype ``d``'s storage."""
    MPI = mpi()
    if d is dt.bool_:
        return getattr(MPI, _BOOL_OPS.get(op, "LOR"))
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and d.is_floating_point:
        raise RuntimeError(f"ReduceOp.{op.name} needs an integer or bool tensor, got {d}")
    if d is dt.bfloat16:  # numpy has no bfloat16: reduce its bits through float32
        if op not in _bf16_ops:
            _bf16_ops[op] = MPI.Op.Create(_bf16_reduction(_BF16_FNS[op]), commute=True)
        return _bf16_ops[op]
    return getattr(MPI, _MPI_OPS[op])


def _bf16_reduction(fn):
    def reduce(inbuf, inoutbuf, datatype):
        a = np.frombuffer(inbuf, np.uint16)
        b = np.frombuffer(inoutbuf, np.uint16)
        r = fn(dt.from_storage(a, dt.bfloat16), dt.from_storage(b, dt.bfloat16))
        b[...] = dt.to_storage(r, dt.bfloat16)
    return reduce


def _as_op(op) -> ReduceOp:
    if isinstance(op, ReduceOp):
        return op
    if isinstance(op, str) and op.upper() in ReduceOp.__members__:
        return ReduceOp[op.upper()]
    raise TypeError(f"op must be a ReduceOp, got {op!r}")


# --- the signature check ------------------------------------------------------------------

_KINDS = ("all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier", "object",
          "reduce", "gather", "scatter", "all_to_all", "p2p")
_DIMS = 8  # shape entries a signature carries (and numel, for more dimensions)
_SIG = 5 + _DIMS


def _signature(kind: str, t: Tensor | None, extra: int) -> np.ndarray:
    sig = np.full(_SIG, -1, np.int64)
    sig[0], sig[1] = _KINDS.index(kind), extra
    if t is not None:
        sig[2] = dt.ALL.index(t.dtype)
        sig[3], sig[4] = t.ndim, t.numel()
        sig[5:5 + min(t.ndim, _DIMS)] = t.shape[:_DIMS]
    return sig


def _describe(row, extra_name) -> str:
    if row[2] < 0:
        return ""
    ndim = int(row[3])
    shape = ", ".join(str(int(s)) for s in row[5:5 + min(ndim, _DIMS)])
    more = ", ..." if ndim > _DIMS else ""
    extra = f" ({extra_name(int(row[1]))})" if extra_name else ""
    return f"{dt.ALL[int(row[2])].name}[{shape}{more}]{extra}"


def check(g, kind: str, t: Tensor | None = None, extra: int = -1, extra_name=None) -> None:
    """All ranks compare what they are about to do; each raises the same error when they
    disagree (a collective every rank joins, so none is left waiting)."""
    _check(g, _signature(kind, t, extra), extra_name)


def _check(g, sig: np.ndarray, extra_name=None, counts=None) -> None:
    """check() of a signature made already (a compiled replay's, made at the trace).
    ``counts``: the elements this rank sends to and receives from each rank (all_to_all),
    which must pair up across ranks (then shapes may differ)."""
    kind = _KINDS[int(sig[0])]
    row = np.full(_SIG + 2 * g.size, -1, np.int64)  # one width for every kind of call
    row[:_SIG] = sig
    if counts is not None:
        row[_SIG:] = counts
    rows = np.empty((g.size, row.size), np.int64)
    g.comm.Allgather(row, rows)
    if (rows == rows[0]).all():
        return
    if (rows[:, 0] != rows[0, 0]).any():
        calls = ", ".join(f"rank {r} {_KINDS[int(k)]}" for r, k in enumerate(rows[:, 0]))
        raise RuntimeError(f"clgraph.distributed: the ranks called different collectives: "
                           f"{calls}")
    if counts is not None and (rows[:, :3] == rows[0, :3]).all():
        _check_counts(kind, rows[:, _SIG:_SIG + g.size], rows[:, _SIG + g.size:])
        return
    rows = rows[:, :_SIG]
    ranks = ", ".join(f"rank {r} {_describe(row, extra_name)}" for r, row in enumerate(rows))
    raise RuntimeError(f"clgraph.distributed.{kind}: the ranks' tensors (or arguments) "
                       f"differ: {ranks}")


def _check_counts(kind: str, sends: np.ndarray, recvs: np.ndarray) -> None:
    """Rank i sends sends[i, j] elements to rank j, which expects recvs[j, i]."""
    bad = np.argwhere(sends != recvs.T)
    if len(bad):
        pairs = ", ".join(f"rank {i} sends {sends[i, j]} elements to rank {j}, which expects "
                          f"{recvs[j, i]}" for i, j in bad)
        raise RuntimeError(f"clgraph.distributed.{kind}: the ranks' split sizes differ: "
                           f"{pairs}")


def _op_name(i: int) -> str:
    return f"ReduceOp.{ReduceOp(i).name}"


def _src_name(i: int) -> str:
    return f"src={i}"


# --- tensors ------------------------------------------------------------------------------


def _tensor(t, name: str, what: str = "tensor") -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}(): argument '{what}' must be Tensor, not {type(t).__name__}")
    return t


def _contiguous(t: Tensor) -> Tensor:
    return t if t._contig else t.contiguous()


def _stored(t: Tensor, tmp: Tensor) -> None:
    """A collective wrote ``tmp`` (``t`` or its contiguous copy): count the in-place write,
    copy a contiguous copy's values into ``t``."""
    runtime.bump(tmp._storage)
    if tmp is not t:
        with no_grad():
            t.copy_(tmp)


def _average(t: Tensor, size: int) -> None:
    with no_grad():
        t.div_(size)


def _traced(name: str, fn, tensors: list, access: list, asynchronous=False) -> None:
    """Inside a traced call (cg.compile): the host exchange ``fn`` a replay repeats at this
    point, on views of ``tensors`` (runtime.HostStep)."""
    runtime.notify(runtime.HostStep(name, fn, tensors, access, asynchronous))


def _replay(g, exchange, asynchronous=False):
    """A compiled replay's host step: ``exchange(*views)`` gives (task, close), run now;
    ``asynchronous`` (an async_op collective, such as DistributedDataParallel's bucket
    all-reduces): started on the group's worker, and its Work returned, which the replay
    waits for before the first later action on its tensors, so that the rest of the
    backward overlaps it as in eager."""
    def step(*views):
        if g.comm is None:
            raise RuntimeError("a compiled call replays a collective of a process group that "
                               "was destroyed since it was traced; compile it again")
        task, close = exchange(*views)
        return g.run(task, lambda ok: close(), asynchronous)
    return step


def _exchange(g, sig, t, fetch, store, call, checked, extra_name):
    """(task, close) of the MPI side of an in-place collective on contiguous ``t`` (None:
    nothing to move), chunk by chunk: ``call(chunk)`` is the MPI call. The calling thread
    stores each chunk back as soon as MPI is done with it; the worker leaves that to
    close()."""
    view = HostView(t, fetch, store) if t is not None else None
    caller = threading.get_ident()

    def task():
        if checked:
            _check(g, sig, extra_name)
        if view is None:
            return
        for i in range(view.chunks):
            call(view.chunk(i))
            if threading.get_ident() == caller:
                view.store_chunk(i)

    def close():
        if view is not None:
            view.close()

    return task, close


def in_place(g, kind, t, extra, fetch, store, call, after=None, checked=True,
             extra_name=None, replay_checked=None, asynchronous=False):
    """(task, finish) of a collective that works on ``t`` in place: the exchange (its
    contiguous copy's bytes through MPI), then ``after`` and the copy back into ``t``.
    ``replay_checked``: whether a compiled replay checks the signature (``checked``
    unless given); ``asynchronous``: whether a replay overlaps it (async_op)."""
    tmp = _contiguous(t) if fetch or store else t
    sig = _signature(kind, t, extra) if checked or runtime.observers else None
    moved = tmp if t.numel() and (fetch or store) else None
    if runtime.observers:
        again = checked if replay_checked is None else replay_checked
        step = _replay(g, lambda x=None: _exchange(g, sig, x, fetch, store, call, again,
                                                   extra_name), asynchronous)
        access = ("r" if fetch else "") + ("w" if store else "")
        _traced(kind, step, [] if moved is None else [moved], [access], asynchronous)
    task, close = _exchange(g, sig, moved, fetch, store, call, checked, extra_name)

    def finish(ok):
        close()
        if store and ok:
            if after is not None:
                after(tmp)
            _stored(t, tmp)

    return task, finish


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """torch.distributed.all_reduce: ``tensor`` becomes the ranks' reduction, in place."""
    t = _tensor(tensor, "all_reduce")
    op = _as_op(op)
    g = resolve(group, "all_reduce")
    if g is None:
        return None
    if op is ReduceOp.AVG and not t.is_floating_point():
        raise RuntimeError(f"ReduceOp.AVG needs a floating-point tensor, got {t.dtype}")
    return _all_reduce(g, t, op, async_op, checked=True)


def bucket_sum(t: Tensor, first: bool):
    """DistributedDataParallel's bucket all-reduce (SUM, asynchronous): the signature is
    checked on a bucket's first one only (never by a compiled replay), its layout never
    changes."""
    return _all_reduce(current(), t, ReduceOp.SUM, True, checked=first, replay_checked=False)


def _all_reduce(g, t, op, async_op, checked, replay_checked=None):
    mpi_op = _mpi_op(op, t.dtype)
    MPI = mpi()
    after = (lambda x: _average(x, g.size)) if op is ReduceOp.AVG else None
    def call(chunk):
        return g.comm.Allreduce(MPI.IN_PLACE, chunk, op=mpi_op)
    task, finish = in_place(g, "all_reduce", t, op.value, g.size > 1, g.size > 1, call,
                            after, checked, _op_name, replay_checked, async_op)
    return g.run(task, finish, async_op)


def broadcast(tensor, src: int | None = None, group=None, async_op=False, group_src=None):
    """torch.distributed.broadcast: every rank's ``tensor`` becomes rank ``src``'s (a global
    rank; ``group_src``: a rank of ``group``)."""
    t = _tensor(tensor, "broadcast")
    g = resolve(group, "broadcast")
    if g is None:
        return None
    src = group_peer(g, "broadcast", src, group_src, "src")
    root = g.rank == src
    def call(chunk):
        return g.comm.Bcast(chunk, root=src)
    task, finish = in_place(g, "broadcast", t, src, root and g.size > 1,
                            not root and g.size > 1, call, extra_name=_src_name)
    return g.run(task, finish, async_op)


def _gathered(g, out: Tensor, inp: Tensor, kind: str, call, after=None, extra=-1,
              extra_name=None):
    """(task, finish) of a collective from ``inp``'s bytes into ``out``'s (both whole; both
    empty or neither)."""
    src, dst = _contiguous(inp), _contiguous(out)
    sig = _signature(kind, inp, extra)
    moved = [src, dst] if inp.numel() and out.numel() else []
    if runtime.observers:
        step = _replay(g, lambda *x: _exchange_between(g, sig, *x, call=call,
                                                       extra_name=extra_name))
        _traced(kind, step, moved, ["r", "w"][:len(moved)])
    task, close = _exchange_between(g, sig, *moved, call=call, extra_name=extra_name)

    def finish(ok):
        close()
        if ok:
            if after is not None:
                after(dst)
            _stored(out, dst)

    return task, finish


def _exchange_between(g, sig, src=None, dst=None, *, call, extra_name):
    """(task, close) of the MPI side of a collective from contiguous ``src`` into
    contiguous ``dst`` (None: nothing to move)."""
    send = HostView(src, True, False) if src is not None else None
    recv = HostView(dst, False, True) if dst is not None else None

    def task():
        _check(g, sig, extra_name)
        if send is not None:
            for v in (send, recv):  # the device is done with both (a map is in order)
                for i in range(v.chunks):
                    v.chunk(i)
            call(send.array, recv.array)

    def close():
        for v in (send, recv):
            if v is not None:
                v.close()

    return task, close


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """torch.distributed.all_gather_into_tensor: ``output_tensor`` (world size times the
    input's elements, stacked or concatenated) receives every rank's input, in rank
    order."""
    out = _tensor(output_tensor, "all_gather_into_tensor", "output_tensor")
    inp = _tensor(input_tensor, "all_gather_into_tensor", "input_tensor")
    g = resolve(group, "all_gather_into_tensor")
    if g is None:
        return None
    _sizes_match("all_gather_into_tensor", out, inp, g.size)
    task, finish = _gathered(g, out, inp, "all_gather", lambda s, r: g.comm.Allgather(s, r))
    return g.run(task, finish, async_op)


def _sizes_match(name, big, small, size) -> None:
    if big.dtype is not small.dtype:
        raise TypeError(f"{name}: the tensors' dtypes differ ({big.dtype} and {small.dtype})")
    if big.numel() != size * small.numel():
        raise ValueError(f"{name}: a tensor of {big.numel()} elements cannot hold {size} "
                         f"ranks' {small.numel()}")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """torch.distributed.all_gather: ``tensor_list[r]`` receives rank r's ``tensor``."""
    t = _tensor(tensor, "all_gather")
    g = resolve(group, "all_gather")
    if g is None:
        return None
    outs = list(tensor_list)
    if len(outs) != g.size:
        raise ValueError(f"all_gather: tensor_list has {len(outs)} tensors for a group of "
                         f"size {g.size}")
    for o in outs:
        if _tensor(o, "all_gather", "tensor_list").shape != t.shape or o.dtype is not t.dtype:
            raise ValueError(f"all_gather: every output must be {t.dtype}{list(t.shape)}, got "
                             f"{o.dtype}{list(o.shape)}")
    flat = empty((g.size,) + tuple(t.shape), dtype=t.dtype, device=t.device)
    task, finish0 = _gathered(g, flat, t, "all_gather", lambda s, r: g.comm.Allgather(s, r))

    def finish(ok):
        finish0(ok)
        if ok:
            with no_grad():
                for r, o in enumerate(outs):
                    o.copy_(flat[r])

    return g.run(task, finish, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """torch.distributed.reduce_scatter_tensor: ``input`` (world size times ``output``'s
    elements) is reduced across ranks; rank r keeps the r-th part in ``output``."""
    out = _tensor(output, "reduce_scatter_tensor", "output")
    inp = _tensor(input, "reduce_scatter_tensor", "input")
    g = resolve(group, "reduce_scatter_tensor")
    if g is None:
        return None
    op = _as_op(op)
    _sizes_match("reduce_scatter_tensor", inp, out, g.size)
    return _reduce_scatter(g, out, inp, op, async_op)


def _reduce_scatter(g, out, inp, op, async_op):
    if op is ReduceOp.AVG and not out.is_floating_point():
        raise RuntimeError(f"ReduceOp.AVG needs a floating-point tensor, got {out.dtype}")
    mpi_op = _mpi_op(op, out.dtype)
    after = (lambda x: _average(x, g.size)) if op is ReduceOp.AVG else None
    def call(s, r):
        return g.comm.Reduce_scatter_block(s, r, op=mpi_op)
    task, finish = _gathered(g, out, inp, "reduce_scatter", call, after, op.value, _op_name)
    return g.run(task, finish, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """torch.distributed.reduce_scatter: rank r's ``output`` becomes the reduction of every
    rank's ``input_list[r]``."""
    out = _tensor(output, "reduce_scatter", "output")
    g = resolve(group, "reduce_scatter")
    if g is None:
        return None
    ins = list(input_list)
    if len(ins) != g.size:
        raise ValueError(f"reduce_scatter: input_list has {len(ins)} tensors for a group of "
                         f"size {g.size}")
    for x in ins:
        if _tensor(x, "reduce_scatter", "input_list").shape != out.shape or (
                x.dtype is not out.dtype):
            raise ValueError(f"reduce_scatter: every input must be {out.dtype}"
                             f"{list(out.shape)} like the output, got {x.dtype}"
                             f"{list(x.shape)}")
    with no_grad():
        flat = cat([x.reshape(-1) for x in ins])
    return _reduce_scatter(g, out, flat, _as_op(op), async_op)


def barrier(group=None, async_op=False, device_ids=None, timeout=None):
    """torch.distributed.barrier: returns once every rank has called it (the signature
    all-gather is the barrier)."""
    g = resolve(group, "barrier")
    if g is None:
        return None
    if runtime.observers:
        _traced("barrier", _replay(g, lambda: (lambda: check(g, "barrier"), lambda: None)),
                [], [])
    return g.run(lambda: check(g, "barrier"), None, async_op)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """torch.distributed.all_gather_object: ``object_list[r]`` becomes rank r's ``obj``
    (pickled)."""
    g = resolve(group, "all_gather_object")
    if g is None:
        return None
    _objects_traced()
    if len(object_list) != g.size:
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries for "
                         f"a group of size {g.size}")
    got = []
    g.run(lambda: (check(g, "object"), got.extend(g.comm.allgather(obj))), None, False)
    object_list[:] = got


def broadcast_object_list(object_list: list, src: int | None = None, group=None, device=None,
                          group_src=None) -> None:
    """torch.distributed.broadcast_object_list: every rank's ``object_list`` becomes rank
    ``src``'s (pickled; rank 0's when neither ``src`` nor ``group_src`` is given)."""
    g = resolve(group, "broadcast_object_list")
    if g is None:
        return None
    src = _root(g, "broadcast_object_list", src, group_src, "src")
    _objects_traced()
    got = []
    g.run(lambda: (check(g, "object", extra=src, extra_name=_src_name),
                   got.append(g.comm.bcast(list(object_list), root=src))), None, False)
    object_list[:] = got[0]


def _objects_traced() -> None:
    """A replay cannot give Python objects: inside a traced call, an object collective is
    reported as the host read it is (the call runs eagerly)."""
    if runtime.observers:
        runtime.notify(runtime.Read(None))


# --- rooted and personalized collectives ---------------------------------------------------


def _root(g, name: str, rank, group_rank, what: str) -> int:
    """A root given as a global rank or a group rank; group rank 0 when neither is."""
    if rank is None and group_rank is None:
        return 0
    return group_peer(g, name, rank, group_rank, what)


def _bytes(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint8)


_NOTHING = np.empty(0, np.uint8)  # an empty tensor's host array: MPI moves 0 bytes


def _exchange_many(g, sig, srcs, dsts, call, counts, extra_name):
    """(task, close) of the MPI side of a collective that reads contiguous ``srcs`` and
    writes contiguous ``dsts`` (None: an empty one): ``call(read arrays, write arrays)``
    on their host bytes."""
    views = ([HostView(t, True, False) if t is not None else None for t in srcs]
             + [HostView(t, False, True) if t is not None else None for t in dsts])

    def task():
        _check(g, sig, extra_name, counts)
        arrays = []
        for v in views:  # the device is done with each (a map is in order)
            if v is not None:
                for i in range(v.chunks):
                    v.chunk(i)
            arrays.append(_NOTHING if v is None else _bytes(v.array))
        call(arrays[:len(srcs)], arrays[len(srcs):])

    def close():
        for v in views:
            if v is not None:
                v.close()

    return task, close


def _moving(g, kind, sig, reads, writes, call, counts=None, extra_name=None, after=None):
    """(task, finish) of a collective from the bytes of tensors ``reads`` into those of
    ``writes`` (through contiguous copies); ``after()``: what finish does once they are
    written. Inside a traced call, reported as one host step that a replay repeats."""
    srcs = [_contiguous(t) for t in reads]
    dsts = [_contiguous(t) for t in writes]
    a = [t if t.numel() else None for t in srcs]
    b = [t if t.numel() else None for t in dsts]
    if runtime.observers:
        present = [t is not None for t in a + b]
        n = len(a)  # (the step keeps no tensor of the trace alive)

        def again(*views):
            it = iter(views)
            full = [next(it) if p else None for p in present]
            return _exchange_many(g, sig, full[:n], full[n:], call, counts, extra_name)

        access = ["r"] * len(a) + ["w"] * len(b)
        _traced(kind, _replay(g, again), [t for t in a + b if t is not None],
                [x for x, t in zip(access, a + b) if t is not None])
    task, close = _exchange_many(g, sig, a, b, call, counts, extra_name)

    def finish(ok):
        close()
        if ok:
            for t, tmp in zip(writes, dsts):
                _stored(t, tmp)
            if after is not None:
                after()

    return task, finish


def _same_list(name: str, what: str, tensors, like: Tensor, size: int) -> list:
    tensors = list(tensors)
    if len(tensors) != size:
        raise ValueError(f"{name}: {what} has {len(tensors)} tensors for a group of size "
                         f"{size}")
    for x in tensors:
        if _tensor(x, name, what).shape != like.shape or x.dtype is not like.dtype:
            raise ValueError(f"{name}: every tensor of {what} must be {like.dtype}"
                             f"{list(like.shape)}, got {x.dtype}{list(x.shape)}")
    return tensors


def _flat(tensors: list) -> Tensor:
    with no_grad():
        return cat([x.reshape(-1) for x in tensors])


def _unflatten(flat: Tensor, outs: list) -> None:
    with no_grad():
        flat, at = flat.reshape(-1), 0
        for o in outs:
            n = o.numel()
            o.copy_(flat[at:at + n].reshape(o.shape))
            at += n


def _reduce_name(i: int) -> str:
    return f"ReduceOp.{ReduceOp(i // 4096).name}, dst={i % 4096}"


def _dst_name(i: int) -> str:
    return f"dst={i}"


def reduce(tensor, dst: int | None = None, op=ReduceOp.SUM, group=None, async_op=False,
           group_dst=None):
    """torch.distributed.reduce: rank ``dst``'s ``tensor`` becomes the ranks' reduction
    (the others' are left as they were)."""
    t = _tensor(tensor, "reduce")
    op = _as_op(op)
    g = resolve(group, "reduce")
    if g is None:
        return None
    dst = group_peer(g, "reduce", dst, group_dst, "dst")
    if op is ReduceOp.AVG and not t.is_floating_point():
        raise RuntimeError(f"ReduceOp.AVG needs a floating-point tensor, got {t.dtype}")
    mpi_op = _mpi_op(op, t.dtype)
    MPI = mpi()
    root = g.rank == dst

    def call(chunk):
        if root:
            g.comm.Reduce(MPI.IN_PLACE, chunk, op=mpi_op, root=dst)
        else:
            g.comm.Reduce(chunk, None, op=mpi_op, root=dst)

    after = (lambda x: _average(x, g.size)) if op is ReduceOp.AVG else None
    task, finish = in_place(g, "reduce", t, op.value * 4096 + dst, g.size > 1,
                            root and g.size > 1, call, after, extra_name=_reduce_name)
    return g.run(task, finish, async_op)


def _only_on_root(lst, root: bool, arg: str, role: str) -> None:
    """A rooted collective's list: given on the root rank, and only there (PyTorch's errors)."""
    if root and not lst:
        raise ValueError(f"Argument ``{arg}`` must be specified on {role} rank.")
    if not root and lst:
        raise ValueError(f"Argument ``{arg}`` must NOT be specified on non-{role} ranks.")


def gather(tensor, gather_list=None, dst: int | None = None, group=None, async_op=False,
           group_dst=None):
    """torch.distributed.gather: on rank ``dst`` (0 by default), ``gather_list[r]``
    receives rank r's ``tensor``; the other ranks pass no list."""
    t = _tensor(tensor, "gather")
    g = resolve(group, "gather")
    if g is None:
        return None
    dst = _root(g, "gather", dst, group_dst, "dst")
    root = g.rank == dst
    _only_on_root(gather_list, root, "gather_list", "destination")
    outs = _same_list("gather", "gather_list", gather_list, t, g.size) if root else []
    flat = [empty((g.size,) + tuple(t.shape), dtype=t.dtype, device=t.device)] if root else []
    def call(s, r):
        return g.comm.Gather(s[0], r[0] if root else None, root=dst)
    def after():
        return _unflatten(flat[0], outs) if root else None
    task, finish = _moving(g, "gather", _signature("gather", t, dst), [t], flat, call,
                           extra_name=_dst_name, after=after)
    return g.run(task, finish, async_op)


def scatter(tensor, scatter_list=None, src: int | None = None, group=None, async_op=False,
            group_src=None):
    """torch.distributed.scatter: rank r's ``tensor`` receives ``scatter_list[r]`` of rank
    ``src`` (0 by default); the other ranks pass no list."""
    t = _tensor(tensor, "scatter")
    g = resolve(group, "scatter")
    if g is None:
        return None
    src = _root(g, "scatter", src, group_src, "src")
    root = g.rank == src
    _only_on_root(scatter_list, root, "scatter_list", "source")
    ins = [_flat(_same_list("scatter", "scatter_list", scatter_list, t, g.size))] if root else []
    def call(s, r):
        return g.comm.Scatter(s[0] if root else None, r[0], root=src)
    task, finish = _moving(g, "scatter", _signature("scatter", t, src), ins, [t], call,
                           extra_name=_src_name)
    return g.run(task, finish, async_op)


def _alltoallv(g, name, sends, recvs, itemsize, flat_in, flat_out, like, after, async_op):
    """Rank i's ``sends[j]`` elements of ``flat_in`` go to rank j's ``flat_out``, which
    takes ``recvs[i]`` from rank i (the counts are checked to pair up on every rank)."""
    sends, recvs = np.asarray(sends, np.int64), np.asarray(recvs, np.int64)

    def layout(counts):
        b = counts * itemsize
        return b, np.concatenate([[0], np.cumsum(b)[:-1]])

    MPI = mpi()
    (sb, sd), (rb, rd) = layout(sends), layout(recvs)
    def call(s, r):
        return g.comm.Alltoallv([s[0], (sb, sd), MPI.BYTE], [r[0], (rb, rd), MPI.BYTE])
    task, finish = _moving(g, "all_to_all", _signature("all_to_all", like, -1), [flat_in],
                           [flat_out], call, counts=np.concatenate([sends, recvs]),
                           after=after)
    return g.run(task, finish, async_op)


def all_to_all(output_tensor_list, input_tensor_list, group=None, async_op=False):
    """torch.distributed.all_to_all: rank r's ``output_tensor_list[i]`` receives rank i's
    ``input_tensor_list[r]`` (sizes may differ between pairs, and must agree)."""
    g = resolve(group, "all_to_all")
    if g is None:
        return None
    outs, ins = list(output_tensor_list), list(input_tensor_list)
    for what, ts in (("output_tensor_list", outs), ("input_tensor_list", ins)):
        if len(ts) != g.size:
            raise ValueError(f"all_to_all: {what} has {len(ts)} tensors for a group of size "
                             f"{g.size}")
        for x in ts:
            if _tensor(x, "all_to_all", what).dtype is not ins[0].dtype:
                raise ValueError(f"all_to_all: the tensors' dtypes differ ({x.dtype} and "
                                 f"{ins[0].dtype})")
    flat_out = empty((sum(o.numel() for o in outs),), dtype=ins[0].dtype, device=ins[0].device)
    return _alltoallv(g, "all_to_all", [x.numel() for x in ins], [o.numel() for o in outs],
                      ins[0].dtype.itemsize, _flat(ins), flat_out, ins[0],
                      lambda: _unflatten(flat_out, outs), async_op)


def _splits(name: str, what: str, t: Tensor, sizes, n: int) -> list:
    rows = t.shape[0] if t.ndim else 1
    if not sizes:
        if rows % n:
            raise ValueError(f"{name}: {what}'s dim 0 ({rows}) does not divide equally across "
                             f"group size {n}")
        return [rows // n] * n
    sizes = [int(s) for s in sizes]
    if len(sizes) != n or sum(sizes) != rows or min(sizes) < 0:
        raise ValueError(f"{name}: split sizes {sizes} do not split {what}'s dim 0 ({rows}) "
                         f"into {n} parts")
    return sizes


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None,
                      group=None, async_op=False):
    """torch.distributed.all_to_all_single: ``input`` is split along dim 0
    (``input_split_sizes``, or evenly) and part j goes to rank j, whose ``output``
    concatenates the parts it receives in rank order (``output_split_sizes``)."""
    out = _tensor(output, "all_to_all_single", "output")
    inp = _tensor(input, "all_to_all_single", "input")
    g = resolve(group, "all_to_all_single")
    if g is None:
        return None
    if out.dtype is not inp.dtype:
        raise ValueError(f"all_to_all_single: the tensors' dtypes differ ({out.dtype} and "
                         f"{inp.dtype})")
    row_in = int(np.prod(inp.shape[1:], dtype=np.int64))
    row_out = int(np.prod(out.shape[1:], dtype=np.int64))
    sends = [s * row_in for s in _splits("all_to_all_single", "input", inp,
                                         input_split_sizes, g.size)]
    recvs = [s * row_out for s in _splits("all_to_all_single", "output", out,
                                          output_split_sizes, g.size)]
    return _alltoallv(g, "all_to_all_single", sends, recvs, inp.dtype.itemsize, inp, out,
                      inp, None, async_op)


# --- deprecated, as in torch ----------------------------------------------------------------

_COALESCED = ("`torch.distributed.{}` will be deprecated. If you must use it, please revisit "
              "our documentation later at "
              "https://pytorch.org/docs/main/distributed.html#collective-functions")


def all_reduce_coalesced(tensors, op=ReduceOp.SUM, group=None, async_op=False):
    """torch.distributed.all_reduce_coalesced (deprecated): all_reduce of each tensor, in
    one exchange (they share one dtype)."""
    warnings.warn(_COALESCED.format("all_reduce_coalesced"), FutureWarning, stacklevel=2)
    ts = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    op = _as_op(op)
    g = resolve(group, "all_reduce_coalesced")
    if g is None:
        return None
    for x in ts:
        if _tensor(x, "all_reduce_coalesced", "tensors").dtype is not ts[0].dtype:
            raise ValueError(f"all_reduce_coalesced: the tensors' dtypes differ ({x.dtype} and "
                             f"{ts[0].dtype})")
    flat = _flat(ts)
    if op is ReduceOp.AVG and not flat.is_floating_point():
        raise RuntimeError(f"ReduceOp.AVG needs a floating-point tensor, got {flat.dtype}")
    mpi_op = _mpi_op(op, flat.dtype)
    MPI = mpi()
    after = (lambda x: _average(x, g.size)) if op is ReduceOp.AVG else None
    def call(chunk):
        return g.comm.Allreduce(MPI.IN_PLACE, chunk, op=mpi_op)
    task, finish0 = in_place(g, "all_reduce", flat, op.value, g.size > 1, g.size > 1, call,
                             after, extra_name=_op_name)

    def finish(ok):
        finish0(ok)
        if ok:
            _unflatten(flat, ts)

    return g.run(task, finish, async_op)


def all_gather_coalesced(output_tensor_lists, input_tensor_list, group=None, async_op=False):
    """torch.distributed.all_gather_coalesced (deprecated): ``output_tensor_lists[r][i]``
    receives rank r's ``input_tensor_list[i]``, in one exchange."""
    warnings.warn(_COALESCED.format("all_gather_coalesced"), FutureWarning, stacklevel=2)
    g = resolve(group, "all_gather_coalesced")
    if g is None:
        return None
    ins = list(input_tensor_list)
    outs = [list(x) for x in output_tensor_lists]
    if len(outs) != g.size:
        raise ValueError(f"all_gather_coalesced: output_tensor_lists has {len(outs)} lists for "
                         f"a group of size {g.size}")
    for row in outs:
        if [tuple(o.shape) for o in row] != [tuple(x.shape) for x in ins]:
            raise ValueError("all_gather_coalesced: each output list must hold tensors of the "
                             "inputs' shapes")
    flat = _flat(ins)
    big = empty((g.size * flat.numel(),), dtype=flat.dtype, device=flat.device)
    def call(s, r):
        return g.comm.Allgather(s[0], r[0])
    task, finish = _moving(g, "all_gather", _signature("all_gather", flat, -1), [flat], [big],
                           call, after=lambda: _unflatten(big, [o for row in outs
                                                                for o in row]))
    return g.run(task, finish, async_op)


# --- objects ------------------------------------------------------------------------------


def gather_object(obj, object_gather_list=None, dst: int | None = None, group=None,
                  group_dst=None) -> None:
    """torch.distributed.gather_object: on rank ``dst`` (0 by default),
    ``object_gather_list[r]`` becomes rank r's ``obj`` (pickled)."""
    g = resolve(group, "gather_object")
    if g is None:
        return None
    _objects_traced()
    dst = _root(g, "gather_object", dst, group_dst, "dst")
    root = g.rank == dst
    if root and not object_gather_list:
        raise ValueError("Argument ``gather_list`` must be specified on destination rank.")
    if not root and object_gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on non-destination "
                         "ranks.")
    if root and len(object_gather_list) != g.size:
        raise ValueError(f"gather_object: object_gather_list has {len(object_gather_list)} "
                         f"entries for a group of size {g.size}")
    got = []
    g.run(lambda: (check(g, "object", extra=dst, extra_name=_dst_name),
                   got.append(g.comm.gather(obj, root=dst))), None, False)
    if root:
        object_gather_list[:] = got[0]


def scatter_object_list(scatter_object_output_list, scatter_object_input_list=None,
                        src: int | None = None, group=None, group_src=None) -> None:
    """torch.distributed.scatter_object_list: ``scatter_object_output_list[0]`` becomes
    entry r of rank ``src``'s ``scatter_object_input_list`` (pickled) on rank r."""
    if not isinstance(scatter_object_output_list, list) or not scatter_object_output_list:
        raise ValueError("Expected argument scatter_object_output_list to be a list of size at "
                         "least 1.")
    g = resolve(group, "scatter_object_list")
    if g is None:
        return None
    _objects_traced()
    src = _root(g, "scatter_object_list", src, group_src, "src")
    sent = None
    if g.rank == src:
        sent = list(scatter_object_input_list or [])
        if len(sent) != g.size:
            raise ValueError(f"scatter_object_list: scatter_object_input_list has {len(sent)} "
                             f"entries for a group of size {g.size}")
    got = []
    g.run(lambda: (check(g, "object", extra=src, extra_name=_src_name),
                   got.append(g.comm.scatter(sent, root=src))), None, False)
    scatter_object_output_list[0] = got[0]
