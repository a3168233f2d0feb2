"""DistributedDataParallel: one model replica per process, gradients averaged across the
processes during backward.

At construction the replicas take rank 0's parameters and buffers (one broadcast per
dtype). The parameters that require grad are laid out in buckets, in reverse registration
order (the order backward produces their gradients): the first holds about 1 MB, the
others ``bucket_cap_mb`` (25 MB). Each bucket is a flat device tensor. A post-accumulate
hook on each parameter writes its gradient divided by the world size into its bucket
(one elementwise kernel); once a bucket is full, and every bucket before it has been
started, its sum across the ranks starts (the MPI side on the group's worker thread) while
autograd goes on enqueuing the rest of the backward. When the last bucket has started,
the hook waits for them in order, and each averaged bucket is copied back into the
``.grad`` of its parameters (a device copy), so backward() returns with averaged
gradients and any optimizer steps as in one process.

Compiled (a ``cg.compile``d training step through this module), the trace runs all of
this once; the plan keeps the bucket kernels, each bucket's all-reduce as an asynchronous
host step (started where the trace started it, on the group's worker, and waited for just
before the copies back, so the rest of the backward overlaps it as in eager) and the copies
back, and a replay repeats
them without the bookkeeping, which a whole step leaves as it found it. Whether backward
syncs (``no_sync()``) is reported as host state: a call inside ``no_sync()`` gets a plan of
its own.

Imports clgraph.distributed, autograd and nn.Module; nothing imports this module but the
nn.parallel package.
"""

from __future__ import annotations

import contextlib

from ... import runtime
from ...autograd import AccumulateGrad, is_grad_enabled, no_grad
from ...creation import zeros
from ...distributed import collectives
from ...distributed.group import current
from ...ops.elementwise import OPS
from ...ops.join import cat
from ...ops.registry import apply
from ...tensor import Tensor
from ..module import Module

_MB = 1 << 20
_FIRST_BUCKET_BYTES = 1 * _MB  # a small first bucket: its all-reduce starts early

_UNREPLAYABLE = (
    "DistributedDataParallel's gradient reduction is not finished when the call returns (its "
    "backward is outside the call, or parameters got no gradient), and a replay would skip "
    "its bookkeeping; compile the whole training step (forward, loss.backward(), "
    "optimizer.step()), or wrap a compiled model: DistributedDataParallel(cg.compile(model))")

_UNFINISHED = (
    "Expected to have finished reduction in the prior iteration before starting a new one. "
    "This error indicates that your module has parameters that were not used in producing "
    "loss. You can enable unused parameter detection by passing the keyword argument "
    "`find_unused_parameters=True` to `DistributedDataParallel`, and by making sure all "
    "`forward` function outputs participate in calculating loss. Parameters not yet "
    "reduced: {names}")


class _Bucket:
    """Gradients averaged together: their parameters, each one's offset in ``flat``."""

    __slots__ = ("checked", "flat", "offsets", "params", "ready", "work")

    def __init__(self, params: list):
        self.params = params
        self.offsets = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += p.numel()
        self.flat = zeros(n, dtype=params[0].dtype, device=params[0].device)
        self.ready = 0
        self.work = None
        self.checked = False

    def slot(self, i: int) -> Tensor:
        p, off = self.params[i], self.offsets[i]
        return self.flat[off:off + p.numel()].view(p.shape)


def _buckets(params: list, cap_bytes: int) -> list[_Bucket]:
    """Reverse registration order, one dtype and device per bucket, the first one small."""
    out, cur, size, limit = [], [], 0, min(_FIRST_BUCKET_BYTES, cap_bytes)
    for p in reversed(params):
        nbytes = p.numel() * p.dtype.itemsize
        if cur and (size + nbytes > limit or p.dtype is not cur[0].dtype
                    or p.device != cur[0].device):
            out.append(_Bucket(cur))
            cur, size, limit = [], 0, cap_bytes
        cur.append(p)
        size += nbytes
    if cur:
        out.append(_Bucket(cur))
    return out


def _from_rank0(tensors: list) -> None:
    """Every rank's ``tensors`` become rank 0's: one broadcast per dtype."""
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault((t.dtype, t.device), []).append(t)
    rank0 = current().rank == 0
    with no_grad():
        for ts in by_dtype.values():
            flat = cat([t.detach().reshape(-1) for t in ts])
            collectives.broadcast(flat, 0)
            if rank0:
                continue
            off = 0
            for t in ts:
                n = t.numel()
                t.copy_(flat[off:off + n].view(t.shape))
                off += n


def _check_same_parameters(named: list) -> None:
    """The replicas must hold the same parameters: each rank's list is compared with rank
    0's, and every rank raises the same error naming the first difference."""
    mine = [(n, p.dtype.name, tuple(p.shape)) for n, p in named]
    g = current()
    every = [None] * g.size
    collectives.all_gather_object(every, mine)
    for r, theirs in enumerate(every):
        if theirs == every[0]:
            continue
        diff = next(((a, b) for a, b in zip(every[0], theirs) if a != b), None)
        what = (f"rank 0 has {diff[0][0]}: {diff[0][1]}{list(diff[0][2])}, rank {r} has "
                f"{diff[1][0]}: {diff[1][1]}{list(diff[1][2])}" if diff else
                f"rank 0 has {len(every[0])} parameters, rank {r} has {len(theirs)}")
        raise RuntimeError(f"DistributedDataParallel: the replicas' parameters differ: {what}")


class DistributedDataParallel(Module):
    """torch.nn.parallel.DistributedDataParallel over clgraph.distributed (MPI).

    ``module`` may be a ``cg.compile``d module: its compiled forward and backward replay,
    and the gradients are all-reduced after the compiled backward. A ``cg.compile``d
    training step through this module replays with its all-reduces. ``device_ids``,
    ``output_device``, ``dim``, ``check_reduction`` and ``static_graph`` are accepted and
    unused (one device per process). With ``find_unused_parameters=True`` a parameter the
    forward did not reach contributes zeros, and its ``.grad`` is set to the average."""

    def __init__(self, module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb=None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False,
                 init_sync: bool = True, **unused):
        super().__init__()
        original = getattr(module, "_orig_mod", None)
        self.module = original if isinstance(original, Module) else module
        self.__dict__["_call"] = module  # not a submodule: a compiled module calls its own
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.require_backward_grad_sync = True
        named, seen = [], set()
        for n, p in self.module.named_parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                named.append((n, p))
        self._names = {id(p): n for n, p in named}
        _check_same_parameters(named)
        if init_sync:
            _from_rank0([p for _, p in named] + list(self.module.buffers()))
        cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * _MB)
        self._bucket_list = _buckets([p for _, p in named], cap)
        self._where = {id(p): (b, i) for b in self._bucket_list
                       for i, p in enumerate(b.params)}
        for _, p in named:
            p.register_post_accumulate_grad_hook(self._grad_ready)
        self._syncing = False  # this forward's backward averages the gradients
        self._marked: set = set()
        self._next = 0  # the next bucket to start

    # --- forward --------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if runtime.observers:
            runtime.notify(runtime.HostState(self._sync_state, _UNREPLAYABLE))
        if self._syncing and self._marked:
            left = [self._names[id(p)] for b in self._bucket_list for p in b.params
                    if id(p) not in self._marked]
            raise RuntimeError(_UNFINISHED.format(names=", ".join(left)))
        sync = self.require_backward_grad_sync and is_grad_enabled()
        buffers = list(self.module.buffers())
        if sync and self.broadcast_buffers and buffers:
            _from_rank0(buffers)
        self._reset()
        self._syncing = sync
        out = self._call(*inputs, **kwargs)
        if sync and self.find_unused_parameters:
            reached = _reached(out)
            for b in self._bucket_list:
                for i, p in enumerate(b.params):
                    if id(p) not in reached:
                        with no_grad():
                            b.slot(i).zero_()
                        self._mark(p)
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients of backward passes whose forward ran inside accumulate locally; the
        first synced backward after averages the accumulated ones."""
        if runtime.observers:
            runtime.notify(runtime.HostState(self._sync_state, _UNREPLAYABLE))
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def _sync_state(self) -> tuple:
        """What a compiled call through this module depends on and a replay leaves as it is
        (runtime.HostState): whether its backward averages, and whether a reduction is
        under way."""
        return self.require_backward_grad_sync, self._syncing

    # --- backward -------------------------------------------------------------------------
    def _grad_ready(self, p) -> None:
        """A parameter's gradient is accumulated: into its bucket, then start what is full."""
        if not self._syncing:
            return
        if id(p) in self._marked:
            raise RuntimeError(
                f"Expected to mark a variable ready only once: parameter "
                f"{self._names[id(p)]} got a second gradient in one synced backward (a "
                "second backward through the same forward, or a reentrant one)")
        b, i = self._where[id(p)]
        g, dst = p.grad, b.slot(i)
        scale = 1.0 / current().size  # divided on the way in: the bucket sums
        with no_grad():
            if g._storage is dst._storage and g._offset == dst._offset:
                dst.mul_(scale)  # gradient_as_bucket_view: accumulated in the bucket
            else:
                apply(OPS["mul"], g, scale, out=dst)
        self._mark(p)

    def _mark(self, p) -> None:
        self._marked.add(id(p))
        b, _ = self._where[id(p)]
        b.ready += 1
        buckets = self._bucket_list
        # every rank starts the buckets in one order, whatever order their gradients came in
        while self._next < len(buckets) and buckets[self._next].ready == len(
                buckets[self._next].params):
            nb = buckets[self._next]
            nb.work = collectives.bucket_sum(nb.flat, first=not nb.checked)
            nb.checked = True
            self._next += 1
        if self._next == len(buckets):
            self._finish()

    def _finish(self) -> None:
        """Wait for the buckets in order; their averages become the parameters' .grad."""
        for b in self._bucket_list:
            b.work.wait()
            b.work = None
            for i, p in enumerate(b.params):
                avg = b.slot(i)
                g = p.grad
                if self.gradient_as_bucket_view or g is None:
                    p.grad = avg if self.gradient_as_bucket_view else avg.clone()
                elif not (g._storage is avg._storage and g._offset == avg._offset):
                    size = g.dtype.itemsize
                    if g._contig:
                        runtime.copy_buffer(avg._storage, g._storage, g.numel() * size,
                                            avg._offset * size, g._offset * size)
                    else:
                        with no_grad():
                            g.copy_(avg)
                    runtime.bump(g._storage)
        self._reset()

    def _reset(self) -> None:
        self._syncing = False
        self._marked.clear()
        self._next = 0
        for b in self._bucket_list:
            b.ready = 0


def _reached(out) -> set:
    """ids of the leaves the autograd graph of ``out`` (tensors in any nesting) reaches."""
    stack, seen, found = [], set(), set()

    def collect(o):
        if isinstance(o, Tensor):
            if o.grad_fn is not None:
                stack.append(o.grad_fn)
            elif o.requires_grad:
                found.add(id(o))
        elif isinstance(o, (list, tuple)):
            for x in o:
                collect(x)
        elif isinstance(o, dict):
            for x in o.values():
                collect(x)

    collect(out)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for nxt in getattr(node, "next", ()):
            if isinstance(nxt, AccumulateGrad):
                found.add(id(nxt.variable))
            elif nxt is not None:
                stack.append(nxt)
    return found
