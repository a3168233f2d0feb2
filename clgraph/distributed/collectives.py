"""The collectives: all_reduce, broadcast, all_gather(_into_tensor), reduce_scatter(_tensor),
barrier and the object collectives, over the group's MPI communicator.

Each collective is a task (the MPI calls, run in the group's order: on the calling thread,
or on the group's worker for ``async_op=True``) and a finish (the way back to the device,
enqueued on the tensor's queue by whoever calls ``wait()``). Tensors cross to the host
through host.HostView: mapped in place on CPU devices, staged in chunks elsewhere.

Every collective starts with one small all-gather of its signature (kind, dtype, shape,
op or root), so that ranks that disagree raise the same clear error instead of exchanging
mismatched bytes or waiting forever; DistributedDataParallel checks each bucket's first
all-reduce only.

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

import numpy as np

from .. import dtypes as dt
from .. import runtime
from ..autograd import no_grad
from ..creation import empty
from ..ops.join import cat
from ..tensor import Tensor
from .group import current, mpi
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

_KINDS = ("all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier", "object")
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


def _check(g, sig: np.ndarray, extra_name=None) -> None:
    """check() of a signature made already (a compiled replay's, made at the trace)."""
    kind = _KINDS[int(sig[0])]
    rows = np.empty((g.size, _SIG), np.int64)
    g.comm.Allgather(sig, rows)
    if (rows == rows[0]).all():
        return
    if (rows[:, 0] != rows[0, 0]).any():
        calls = ", ".join(f"rank {r} {_KINDS[int(k)]}" for r, k in enumerate(rows[:, 0]))
        raise RuntimeError(f"clgraph.distributed: the ranks called different collectives: "
                           f"{calls}")
    ranks = ", ".join(f"rank {r} {_describe(row, extra_name)}" for r, row in enumerate(rows))
    raise RuntimeError(f"clgraph.distributed.{kind}: the ranks' tensors (or arguments) "
                       f"differ: {ranks}")


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
        if current() is not g:
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
    g = current()
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
    call = lambda chunk: g.comm.Allreduce(MPI.IN_PLACE, chunk, op=mpi_op)
    task, finish = in_place(g, "all_reduce", t, op.value, g.size > 1, g.size > 1, call,
                            after, checked, _op_name, replay_checked, async_op)
    return g.run(task, finish, async_op)


def broadcast(tensor, src: int = 0, group=None, async_op=False, group_src=None):
    """torch.distributed.broadcast: every rank's ``tensor`` becomes rank ``src``'s."""
    t = _tensor(tensor, "broadcast")
    g = current()
    src = src if group_src is None else group_src
    if not 0 <= src < g.size:
        raise ValueError(f"broadcast: src {src} is not a rank of a group of size {g.size}")
    root = g.rank == src
    call = lambda chunk: g.comm.Bcast(chunk, root=src)
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
    g = current()
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
    g = current()
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
    g = current()
    op = _as_op(op)
    _sizes_match("reduce_scatter_tensor", inp, out, g.size)
    return _reduce_scatter(g, out, inp, op, async_op)


def _reduce_scatter(g, out, inp, op, async_op):
    if op is ReduceOp.AVG and not out.is_floating_point():
        raise RuntimeError(f"ReduceOp.AVG needs a floating-point tensor, got {out.dtype}")
    mpi_op = _mpi_op(op, out.dtype)
    after = (lambda x: _average(x, g.size)) if op is ReduceOp.AVG else None
    call = lambda s, r: g.comm.Reduce_scatter_block(s, r, op=mpi_op)
    task, finish = _gathered(g, out, inp, "reduce_scatter", call, after, op.value, _op_name)
    return g.run(task, finish, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """torch.distributed.reduce_scatter: rank r's ``output`` becomes the reduction of every
    rank's ``input_list[r]``."""
    out = _tensor(output, "reduce_scatter", "output")
    g = current()
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


def barrier(group=None, async_op=False, device_ids=None):
    """torch.distributed.barrier: returns once every rank has called it (the signature
    all-gather is the barrier)."""
    g = current()
    if runtime.observers:
        _traced("barrier", _replay(g, lambda: (lambda: check(g, "barrier"), lambda: None)),
                [], [])
    return g.run(lambda: check(g, "barrier"), None, async_op)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """torch.distributed.all_gather_object: ``object_list[r]`` becomes rank r's ``obj``
    (pickled)."""
    g = current()
    _objects_traced()
    if len(object_list) != g.size:
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries for "
                         f"a group of size {g.size}")
    got = []
    g.run(lambda: (check(g, "object"), got.extend(g.comm.allgather(obj))), None, False)
    object_list[:] = got


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """torch.distributed.broadcast_object_list: every rank's ``object_list`` becomes rank
    ``src``'s (pickled)."""
    g = current()
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
