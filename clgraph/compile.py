"""cg.compile: trace a call into a graph, fuse it into OpenCL kernels, replay them.

Tracing. The first call with a new signature (the shapes, dtypes, devices and
requires_grad of the tensor arguments, the values of the others, grad mode, the
train/eval flags and parameter buffers of a compiled module) runs the function once with a
recorder installed: every op applied (forward ops, the VJP ops backward() applies, an
optimizer's fused updates), every kernel launched, every host upload and every index check
becomes a node of a flat graph. Python control flow runs at trace time. The traced call
computes real values, so it returns what eager returns.

Host reads. A host read inside the function (``item()``, ``numpy()``, ``bool(t)``, printing
a tensor) means the function's control flow or results may depend on data: the signature
then runs eagerly from then on, with a one-time warning naming the read. Index range checks
are not such reads: the compiled call repeats them on each call's indices.

Passes (pure functions over the captured graph): elementwise kernels are fused vertically
(a chain, across broadcasts and views, computes in registers), common subexpressions and
dead code are removed, work that depends only on constants made inside the function is
folded, independent elementwise kernels (every parameter update of an optimizer step) are
fused horizontally into one launch, and intermediate buffers are reused by liveness.

Autograd across the boundary. When the result of a traced call requires grad (a compiled
module's forward in an ordinary training loop), the backward from that result to the
parameters and arguments is traced too (autograd.grad on the traced graph): the forward
plan then also returns the intermediate values the backward reads, and each replayed
result gets one autograd node whose VJP replays the backward plan.

Replay binds the new argument buffers and fresh result buffers into prepared kernels and
enqueues them; optimizer step counts, learning rates and random streams are recomputed on
the host (no Python op code runs). State written in place (parameters, moments, buffers,
``.grad``) is written exactly as eager writes it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import traceback
import warnings
import weakref
from collections import namedtuple
from dataclasses import replace

import numpy as np
import pyopencl as cl

from . import codegen, runtime
from .codegen import fuse
from .ops import registry
from .tensor import Tensor

Ref = namedtuple("Ref", "buf shape stride offset dtype device")


def _ref(t) -> Ref:
    return Ref(t._storage.buf, t._shape, t._stride, t._offset, t.dtype, t.device)


class _Unreplayable(Exception):
    """The traced call cannot be replayed (the message says why). ``retry``: a second
    trace may succeed (state the first call created, such as optimizer moments)."""

    def __init__(self, msg, retry=False):
        super().__init__(msg)
        self.retry = retry


# --- tracing ------------------------------------------------------------------------------


class Event:
    """A node of the traced graph: an op applied (or a launch, upload or check made outside
    any op), with the buffers it read and wrote."""

    __slots__ = ("bare", "created", "dtype", "name", "reads", "shape", "writes")

    def __init__(self, name, reads=(), writes=(), shape=None, dtype=None, bare=False):
        self.bare = bare
        self.name = name
        self.reads = list(reads)
        self.writes = list(writes)
        self.shape = shape
        self.dtype = dtype
        self.created = set()


class _Capture:
    """Installed as runtime._capture and registry._recorder while a traced call runs."""

    def __init__(self):
        self.events: list[Event] = []
        self.actions: list[tuple] = []  # (kind, event index, payload) in program order
        self.cur: int | None = None
        self.depth = 0
        self.created: dict = {}  # buffer -> (weakref to its Storage, nbytes, DeviceInfo)
        self.host_read: str | None = None
        self.checking = 0
        self.grads: dict = {}
        self.optimizers: dict = {}
        self.nodes: dict = {}  # autograd nodes the traced ops made

    def _event(self, ev: Event) -> int:
        self.events.append(ev)
        return len(self.events) - 1

    # runtime hooks
    def on_alloc(self, st):
        self.created[st.buf] = (weakref.ref(st), st.nbytes, st.dev)
        if self.cur is not None:
            self.events[self.cur].created.add(st.buf)

    def on_launch(self, dev, kernel, name, gsize, lsize, args, refresh):
        ev = self.cur
        if ev is None:
            bufs = [a for a in args if isinstance(a, cl.MemoryObjectHolder)]
            ev = self._event(Event(name, bufs, bufs, bare=True))
        self.actions.append(("launch", ev, (dev, kernel, name, tuple(gsize),
                                            tuple(lsize) if lsize else None, list(args),
                                            refresh)))

    def on_write(self, st, host, offset):
        ev = self.cur if self.cur is not None else self._event(Event("upload", (), [st.buf]))
        self.actions.append(("write", ev, (st.buf, np.array(host, copy=True), offset)))

    def on_copy(self, src, dst, nbytes, src_off, dst_off):
        ev = self.cur if self.cur is not None else self._event(
            Event("copy", [src.buf], [dst.buf]))
        self.actions.append(("copy", ev, (src.buf, dst.buf, nbytes, src_off, dst_off)))

    def on_read(self, st):
        if self.checking or self.host_read is not None:
            return
        frames = [f for f in traceback.extract_stack()[:-2]
                  if os.sep + "clgraph" + os.sep not in f.filename]
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        self.host_read = f"a tensor is read on the host (item(), numpy(), bool(), print){where}"

    def on_index(self, index, check):
        ev = self.cur if self.cur is not None else self._event(Event("index_check",
                                                                     [index._storage.buf]))
        self.actions.append(("index", ev, (_ref(index), check)))

    def on_grad(self, t):
        self.grads[id(t)] = t

    @contextlib.contextmanager
    def paused(self):
        """Run eagerly, unrecorded (an optimizer making its state ahead of a traced step)."""
        runtime._capture, registry._recorder = None, None
        try:
            yield
        finally:
            runtime._capture, registry._recorder = self, self.record

    def on_optimizer(self, opt, lr_static=False):
        prev = self.optimizers.get(id(opt), (opt, False))[1]
        self.optimizers[id(opt)] = (opt, prev or lr_static)

    # registry hook
    def record(self, op, args, attrs, out):
        if self.depth:
            return registry.execute(op, args, attrs, out)
        reads = [a._storage.buf for a in args if isinstance(a, Tensor)]
        ev = self._event(Event(op.name, reads))
        self.cur = ev
        self.depth += 1
        try:
            res = registry.execute(op, args, attrs, out)
        finally:
            self.depth -= 1
            self.cur = None
        first = res[0] if isinstance(res, tuple) else res
        outs = [r for r in (res if isinstance(res, tuple) else (res,)) if isinstance(r, Tensor)]
        e = self.events[ev]
        e.writes = [r._storage.buf for r in outs if r._storage.buf in e.created or r is out]
        for r in outs:
            if r.grad_fn is not None:
                self.nodes[id(r.grad_fn)] = weakref.ref(r.grad_fn)
        if isinstance(first, Tensor):
            e.shape, e.dtype = first._shape, first.dtype
        return res


# --- signatures ---------------------------------------------------------------------------


def _flatten(obj, tensors: list):
    """A hashable description of ``obj`` with its tensors collected in ``tensors``."""
    if isinstance(obj, Tensor):
        tensors.append(obj)
        return ("T",)
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__,) + tuple(_flatten(o, tensors) for o in obj)
    if isinstance(obj, dict):
        return ("dict",) + tuple((k, _flatten(v, tensors)) for k, v in obj.items())
    try:
        hash(obj)
    except TypeError:
        return ("id", id(obj))
    return ("v", type(obj).__name__, obj)


def _tensor_key(ts) -> tuple:
    seen: dict = {}
    key = []
    for t in ts:
        share = seen.setdefault(t._storage.buf, len(seen))
        key.append((t._shape, t._stride, t._offset, t.dtype.name, t.device.info.index,
                    t.requires_grad, share, t._storage.nbytes))
    return tuple(key)


def _rebuild(spec, it):
    kind = spec[0]
    if kind == "T":
        return next(it)
    if kind in ("list", "tuple"):
        items = [_rebuild(s, it) for s in spec[1:]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _rebuild(s, it) for k, s in spec[1:]}
    return spec[2] if kind == "v" else None


# --- the plan -----------------------------------------------------------------------------


class _Step:
    __slots__ = ("kind", "payload", "reads", "refresh", "seg", "src", "writes")

    def __init__(self, kind, payload, reads, writes, src, seg=None, refresh=()):
        self.kind = kind
        self.payload = payload
        self.seg = seg
        self.reads = set(reads)
        self.writes = set(writes)
        self.src = set(src)
        self.refresh = refresh

    def param_bytes(self):
        return self.seg.param_bytes()


_pin_counts: dict = {}


def _pin(bufs):
    for b in bufs:
        _pin_counts[b] = _pin_counts.get(b, 0) + 1
        runtime._pinned.add(b)


def _unpin(bufs):
    for b in bufs:
        c = _pin_counts.get(b, 0) - 1
        if c <= 0:
            _pin_counts.pop(b, None)
            runtime._pinned.discard(b)
        else:
            _pin_counts[b] = c


class Plan:
    """A traced call, fused and ready to replay."""

    def __init__(self, cap: _Capture, inputs: list, result, dev, saved=(), graph_held=False):
        """``saved``: more tensors to return (a forward's values its compiled backward
        reads); ``graph_held``: the traced call's autograd graph keeps its buffers alive."""
        self.dev = dev
        self.events = cap.events
        in_slot: dict = {}
        for i, t in enumerate(inputs):
            in_slot.setdefault(t._storage.buf, i)
        created = cap.created
        # results and leaf gradients made inside the call escape: fresh buffers per call
        out_tensors: list = []
        self.out_spec = _flatten(result, out_tensors)
        out_tensors += list(saved)
        for t in out_tensors:
            if graph_held:
                break
            if t.requires_grad and t.grad_fn is not None and t.grad_fn.inputs:
                raise _Unreplayable(
                    "it returns a tensor that requires grad and still holds its autograd "
                    "graph; compile the whole training step (forward, loss.backward(), "
                    "optimizer.step()) instead")
        grads = []
        for leaf in cap.grads.values():
            g = leaf._grad
            grads.append((weakref.ref(leaf), g if g is None else _ref(g)))
        esc_bufs: dict = {}
        state_storage: dict = {}
        for t in out_tensors + [leaf._grad for leaf in cap.grads.values()
                                if leaf._grad is not None]:
            b = t._storage.buf
            if b in created and b not in esc_bufs:
                esc_bufs[b] = len(esc_bufs)
            elif b not in created and b not in in_slot:
                state_storage[b] = t._storage
        if any(wr() is not None and b not in esc_bufs for b, (wr, _, _) in created.items()):
            gc.collect()  # autograd graphs hold reference cycles
        for b, (wr, nbytes, _) in created.items():
            if wr() is not None and b not in esc_bufs and not graph_held:
                made = next((f"{e.name} {list(e.shape) if e.shape is not None else ''}"
                             for e in cap.events if b in e.created), "an upload")
                raise _Unreplayable(
                    f"a tensor made inside it (by {made.strip()}, {nbytes} bytes) outlives "
                    "the call other than as a result or a gradient (kept in a global, in "
                    "state created on the first call, or in an autograd graph)", retry=True)
        self.esc_sizes = [created[b][1] for b in esc_bufs]
        self.outputs = [self._source(_ref(t), in_slot, esc_bufs, state_storage)
                        for t in out_tensors]
        self.grads = [(w, None if r is None else self._source(r, in_slot, esc_bufs,
                                                              state_storage))
                      for w, r in grads]
        self.optimizers = [(weakref.ref(o), s) for o, s in cap.optimizers.values()]
        steps, refreshers = self._steps(cap, in_slot, created)
        internal = {b for b in created if b not in esc_bufs}
        steps = _cse(steps, internal)
        steps = _fuse_vertical(steps)
        const = _constants(steps, internal)
        steps = [s for s in steps if not (s.src and s.kind != "index" and s in const["steps"])]
        steps = _dead_code(steps, internal - const["bufs"])
        steps = _matmul_epilogues(steps, internal - const["bufs"], dev)
        steps = _reduce_prologues(steps, internal - const["bufs"], dev)
        steps = _reduce_epilogues(steps, internal - const["bufs"], dev)
        # a segment a reduction now recomputes may join its other readers
        steps = _dead_code(_fuse_vertical(steps), internal - const["bufs"])
        budget = min(dev.cl_device.max_parameter_size, 4096) - 64
        batches = fuse.batch(steps, budget, lambda s: s.kind == "seg")
        self._materialize(batches, in_slot, esc_bufs, internal - const["bufs"], created,
                          refreshers)
        self.const_bufs = [b for b in const["bufs"]]
        # parameters, optimizer state and constants kept from the trace: the buffer pool
        # must never hand these to another tensor, even after their Storage objects die
        self._pinned = list(self.static_bufs)
        _pin(self._pinned)
        weakref.finalize(self, _unpin, self._pinned)

    @staticmethod
    def _source(r: Ref, in_slot, esc_bufs, state_storage):
        meta = (r.shape, r.stride, r.offset, r.dtype, r.device)
        if r.buf in esc_bufs:
            return ("esc", esc_bufs[r.buf]) + meta
        if r.buf in in_slot:
            return ("in", in_slot[r.buf]) + meta
        return ("state", state_storage[r.buf]) + meta

    def _steps(self, cap, in_slot, created):
        steps = []
        refreshers = []
        for kind, ev, p in cap.actions:
            e = cap.events[ev]
            if kind == "launch":
                _, kernel, name, gsize, lsize, args, refresh = p
                bufs = [a for a in args if isinstance(a, cl.MemoryObjectHolder)]
                rid = None
                if refresh is not None:
                    rid = len(refreshers)
                    refreshers.append(refresh)
                if kernel in codegen.GROUPS:
                    group = codegen.GROUPS[kernel][0]
                    values = []
                    for i, a in enumerate(args):
                        if isinstance(a, cl.MemoryObjectHolder):
                            values.append(("buf", a))
                        else:
                            values.append(("lit", a))
                    seg = fuse.Segment(group, values)
                    steps.append(_Step("seg", None, seg.reads, seg.writes, [ev], seg=seg,
                                       refresh=((rid,) if rid is not None else ())))
                    continue
                # inside an op: what the op wrote (its results, its scratch); a bare launch
                # may write any buffer it is given
                writes = bufs if e.bare else [b for b in bufs if b in e.writes or b in e.created]
                steps.append(_Step("kernel", (kernel, name, gsize, lsize, args, rid), bufs,
                                   writes, [ev]))
            elif kind == "write":
                steps.append(_Step("write", p, [], [p[0]], [ev]))
            elif kind == "copy":
                steps.append(_Step("copy", p, [p[0]], [p[1]], [ev]))
            else:
                steps.append(_Step("index", p, [p[0].buf], [], [ev]))
        for st in steps:
            if st.kind == "kernel" and st.payload[5] is not None:
                st.refresh = (st.payload[5],)
        return steps, refreshers

    def _materialize(self, batches, in_slot, esc_bufs, internal, created, refreshers):
        dev = self.dev
        local = codegen.local_size(dev)
        # liveness: internal buffers share physical buffers when their uses do not overlap
        first, last = {}, {}
        for i, batch in enumerate(batches):
            for st in batch:
                for b in st.reads | st.writes:
                    if b in internal:
                        first.setdefault(b, i)
                        last[b] = i
        phys: dict = {}
        free: list = []  # (size, buffer) released
        ends: dict = {}
        self.buffers = []
        order = sorted(first, key=lambda b: first[b])
        for b in order:
            i = first[b]
            for e in [e for e in list(ends) if e < i]:
                free.extend(ends.pop(e))
            size = max(created[b][1], 1)
            pick = None
            for k, (sz, pb) in enumerate(free):
                if size <= sz <= 2 * size:
                    pick = k
                    break
            if pick is not None:
                sz, pb = free.pop(pick)
            else:
                sz, pb = size, cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, size)
                self.buffers.append(pb)
            phys[b] = pb
            ends.setdefault(last[b], []).append((sz, pb))
        self.n_internal, self.n_physical = len(order), len(self.buffers)
        self.static_bufs = set()

        def resolve(b):
            if b in in_slot:
                return ("in", in_slot[b])
            if b in esc_bufs:
                return ("esc", esc_bufs[b])
            pb = phys.get(b, b)
            self.static_bufs.add(pb)
            return ("static", pb)

        actions = []
        fused, static_args = [], []
        self._action_writes = []  # input slots each action may write
        dyn_bufs = []  # (kernel, arg index, "in"/"esc", slot)
        dyn_scalars = []  # (kernel, arg index, refresher, original arg index, numpy type)
        self.kernel_names, self.sources, self.event_kernel = [], [], {}
        self.pre_checks, self.refreshers = [], refreshers
        for batch in batches:
            st0 = batch[0]
            if st0.kind == "seg":
                segs = []
                for st in batch:
                    seg = st.seg
                    if st.refresh:
                        rid = st.refresh[0]
                        seg = fuse.Segment(seg.group, [
                            ("dyn", (rid, i)) if v[0] == "lit" and i in _refresh_positions(
                                refreshers, rid) else v for i, v in enumerate(seg.values)])
                    segs.append(seg)
                fk = fuse.fused_kernel(segs, local)
                fused.append(fk)
                for i, key in enumerate(fk.buffers):
                    kind, x = resolve(key)
                    if kind == "static":
                        static_args.append((fk, i, x))
                    else:
                        dyn_bufs.append((fk, i, kind, x))
                nb = len(fk.buffers)
                for j, (si, (rid, pos), npt) in enumerate(fk.dyn):
                    dyn_scalars.append((fk, nb + j, rid, pos, npt))
                actions.append(("k", fk, fk.name, (fk.global_size,), (fk.local,)))
                self._action_writes.append({in_slot[b] for st in batch for b in st.writes
                                            if b in in_slot})
                self.kernel_names.append(fk.name)
                self.sources.append(fk)
                for st in batch:
                    for ev in st.src:
                        self.event_kernel[ev] = fk.name
                continue
            for st in batch:
                self._materialize_step(st, resolve, actions, dyn_bufs, dyn_scalars)
                self._action_writes.append({in_slot[b] for b in st.writes if b in in_slot})
        # every fused kernel of the plan comes from one program
        fuse.build_all(dev, fused)
        real = lambda k: k.kernel if isinstance(k, fuse.FusedKernel) else k
        for fk, i, x in static_args:
            fk.kernel.set_arg(i, x)
        self.sources = [s.source if isinstance(s, fuse.FusedKernel) else s
                        for s in self.sources]
        actions = [(a[0], real(a[1])) + a[2:] if a[0] == "k" else a for a in actions]
        self.actions = actions
        self.dyn_bufs = [(real(k),) + tuple(rest) for k, *rest in dyn_bufs]
        self.dyn_scalars = [(real(k),) + tuple(rest) for k, *rest in dyn_scalars]
        # index checks on the call's own arguments run before anything is enqueued, unless
        # the call writes that argument first
        written, kept = set(), []
        for act, st_writes in zip(actions, self._action_writes):
            if act[0] == "index" and act[1][0] == "in" and act[1][1] not in written:
                self.pre_checks.append(act)
                continue
            kept.append(act)
            written |= st_writes
        self.actions = kept
        del self._action_writes

    def _materialize_step(self, st, resolve, actions, dyn_bufs, dyn_scalars):
        if st.kind == "kernel":
            kernel, name, gsize, lsize, args, rid = st.payload
            types = codegen.ARG_TYPES.get(kernel)
            if types is None:
                raise _Unreplayable(f"kernel {name} has no recorded argument types")
            k = cl.Kernel(kernel.program, kernel.function_name)
            rpos = _refresh_positions(self.refreshers, rid) if rid is not None else ()
            for i, a in enumerate(args):
                if isinstance(a, cl.MemoryObjectHolder):
                    kind, x = resolve(a)
                    if kind == "static":
                        k.set_arg(i, x)
                    else:
                        dyn_bufs.append((k, i, kind, x))
                elif types[i] is None:
                    k.set_arg(i, a)
                else:
                    npt = np.dtype(types[i]).type
                    k.set_arg(i, npt(a))
                    if i in rpos:
                        dyn_scalars.append((k, i, rid, i, npt))
            actions.append(("k", k, name, gsize, lsize))
            self.kernel_names.append(name)
            self.sources.append(codegen.SOURCES.get(kernel, f"// {name}: source not kept"))
            for ev in st.src:
                self.event_kernel[ev] = name
        elif st.kind == "write":
            b, host, off = st.payload
            actions.append(("write", resolve(b), host, off))
        elif st.kind == "copy":
            src, dst, n, so, do = st.payload
            actions.append(("copy", resolve(src), resolve(dst), n, so, do))
        else:
            r, check = st.payload
            actions.append(("index", resolve(r.buf), r, check))

    # --- replay ---------------------------------------------------------------------------
    def run(self, inputs: list, eager=None):
        """Enqueue the plan for these argument tensors; returns (flat results, None) or
        (None, reason) when an index check finds the trace's assumptions broken. (``eager``
        reruns the call: only a result with a compiled backward keeps it.)"""
        in_bufs = [t._storage.buf for t in inputs]
        for act in self.pre_checks:
            t = self._tensor(("in",) + (act[1][1],) + tuple(act[2])[1:], inputs, None)
            if not act[3](t):
                return None, "index tensor differs from the traced one"
        esc = [runtime.Storage(self.dev, n) for n in self.esc_sizes]
        for k, i, kind, x in self.dyn_bufs:
            k.set_arg(i, in_bufs[x] if kind == "in" else esc[x].buf)
        vals = [r() for r in self.refreshers]
        for k, i, rid, pos, npt in self.dyn_scalars:
            k.set_arg(i, npt(vals[rid][pos]))
        dev = self.dev
        for act in self.actions:
            kind = act[0]
            if kind == "k":
                runtime.enqueue(dev, act[1], act[2], act[3], act[4])
            elif kind == "write":
                cl.enqueue_copy(dev.queue, self._buf(act[1], in_bufs, esc), act[2],
                                dst_offset=act[3])
            elif kind == "copy":
                cl.enqueue_copy(dev.queue, self._buf(act[2], in_bufs, esc),
                                self._buf(act[1], in_bufs, esc), byte_count=act[3],
                                src_offset=act[4], dst_offset=act[5])
            else:
                r = act[2]
                src = act[1]
                st = _BufStorage(self._buf(src, in_bufs, esc), dev)
                t = Tensor._on(st, r.shape, r.stride, r.offset, r.dtype, r.device)
                if not act[3](t):
                    raise RuntimeError(
                        "compiled call: an index tensor computed inside the function no "
                        "longer matches the traced one (distinct values); call the function "
                        "eagerly")
        outs = [self._tensor(o, inputs, esc) for o in self.outputs]
        for w, src in self.grads:
            leaf = w()
            if leaf is not None:
                leaf._grad = None if src is None else self._tensor(src, inputs, esc)
        return outs, None

    @staticmethod
    def _buf(res, in_bufs, esc):
        kind, x = res
        if kind == "static":
            return x
        return in_bufs[x] if kind == "in" else esc[x].buf

    @staticmethod
    def _tensor(src, inputs, esc):
        kind, x, shape, stride, offset, dtype, device = src
        if kind == "esc":
            st = esc[x]
        elif kind == "in":
            st = inputs[x]._storage
        else:
            st = x
        return Tensor._on(st, shape, stride, offset, dtype, device)


def _inside_leaves(out, nodes) -> list:
    """The tensors a traced call's output differentiates into: leaves (parameters, leaf
    arguments) and arguments computed outside the call, in first-seen order."""
    from .autograd import AccumulateGrad, Node

    found, seen, stack = [], set(), [out.grad_fn]
    visited = set()
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        for a, nxt in zip(node.inputs, node.next):
            if nxt is None:
                continue
            ref = nodes.get(id(nxt))
            inside = isinstance(nxt, Node) and ref is not None and ref() is nxt
            if inside:
                stack.append(nxt)
                continue
            key = id(nxt)
            if key not in seen:
                seen.add(key)
                found.append(nxt.variable if isinstance(nxt, AccumulateGrad) else a)
    return found


_COMPILED_OP = None


def _compiled_vjp(g, *inputs, out, ctx):
    from .autograd import is_grad_enabled

    if is_grad_enabled():
        return ctx.differentiable_backward(g, inputs, out)
    return ctx.backward(g)


class _Ctx:
    """One replayed call's saved values, for its backward; and how to run the call again
    eagerly, for a backward that must itself be differentiable (create_graph=True)."""

    __slots__ = ("args", "bwd", "diff", "eager", "go", "saved")

    def __init__(self, bwd, saved, args, go, eager=None, diff=0):
        self.bwd, self.saved, self.args, self.go = bwd, saved, args, go
        self.eager, self.diff = eager, diff

    def differentiable_backward(self, g, inputs, out):
        """The compiled backward is a replay, not a graph: to differentiate it again the
        call runs once more eagerly and autograd differentiates that, with the same
        parameters and arguments (an in-place change since the forward fails autograd's
        version check before this runs). A different result (random ops such as dropout)
        is an error."""
        from . import autograd

        if self.eager is None:
            raise RuntimeError("this compiled call's backward cannot be differentiated")
        with autograd.enable_grad():
            res = self.eager()
        outs: list = []
        _flatten(res, outs)
        again = outs[self.diff]
        if not np.allclose(again.detach().numpy(), out.detach().numpy(), rtol=1e-4,
                           atol=1e-4, equal_nan=True):
            raise RuntimeError(
                "differentiating twice through a compiled function's result runs it again "
                "eagerly, and it gave a different result (random ops such as dropout?); "
                "compile the function that calls autograd.grad(create_graph=True) instead")
        return autograd.grad([again], list(inputs), grad_outputs=[g], create_graph=True,
                             allow_unused=True)

    def backward(self, g):
        g = g.to(self.go[0]).expand(self.go[1]).contiguous()
        grads, why = self.bwd.run([g] + self.saved + self.args)
        if grads is None:
            raise RuntimeError(f"compiled backward could not run: {why}")
        return tuple(grads)


class _Differentiable:
    """A traced call whose result carries an autograd graph (a module's forward in a
    training loop): a forward plan that also returns the values its backward needs, and
    a backward plan traced from the same graph, run when autograd reaches the result."""

    def __init__(self, cap, tensors, result, outs, diff, dev):
        global _COMPILED_OP
        from . import autograd
        from .creation import ones_like

        if len(diff) != 1:
            raise _Unreplayable("it returns several tensors that require grad")
        out = outs[diff[0]]
        leaves = _inside_leaves(out, cap.nodes)
        slots = []
        for t in leaves:
            slot = next((i for i, a in enumerate(tensors) if a is t), None)
            if slot is None and t._storage.buf in {a._storage.buf for a in tensors}:
                raise _Unreplayable("it differentiates into a view of an argument")
            slots.append(slot)
        # trace the backward once (on a copy of the graph: retain_graph keeps it for the
        # traced call's own backward)
        go = ones_like(out)
        bcap = _Capture()
        runtime._capture = bcap
        registry._recorder = bcap.record
        try:
            grads = autograd.grad([out], leaves, grad_outputs=[go], retain_graph=True,
                                  allow_unused=True)
        finally:
            registry._recorder = None
            runtime._capture = cap
        if bcap.host_read is not None:
            raise _Unreplayable(f"its backward reads the host: {bcap.host_read}")
        from . import dtypes as dt
        from .tensor import Tensor as _T

        used = set()
        for kind, _, p in bcap.actions:
            if kind == "launch":
                used |= {a for a in p[5] if isinstance(a, cl.MemoryObjectHolder)}
            elif kind == "write":
                used.add(p[0])
            elif kind == "copy":
                used |= {p[0], p[1]}
            else:
                used.add(p[0].buf)
        saved = []
        for b in used:
            if b in cap.created:
                st = cap.created[b][0]()
                if st is None:
                    raise _Unreplayable("its backward reads a value the forward freed")
                saved.append(_T._on(st, (st.nbytes,), (1,), 0, dt.uint8, out.device))
        self.fwd = Plan(cap, tensors, result, dev, saved=saved, graph_held=True)
        self.n_saved = len(saved)
        bwd_result = [g if g is not None else None for g in grads]
        self.bwd = Plan(bcap, [go] + saved + list(tensors), bwd_result, dev)
        self.out_spec = self.fwd.out_spec
        self.diff = diff[0]
        self.leaves = [(None if s is not None else t, s) for t, s in zip(leaves, slots)]
        self.go = (out.dtype, out._shape)
        self.kernel_names = self.fwd.kernel_names + self.bwd.kernel_names
        self.sources = self.fwd.sources + self.bwd.sources
        self.event_kernel = self.fwd.event_kernel
        if _COMPILED_OP is None:
            _COMPILED_OP = registry.OpDef("compiled_function", "compiled", None, None,
                                          _compiled_vjp, saves_out=False)

    def run(self, inputs, eager=None):
        """Replay; ``eager`` runs the call again eagerly (a differentiable backward)."""
        from .autograd import is_grad_enabled, record

        outs, why = self.fwd.run(inputs)
        if outs is None:
            return None, why
        k = len(outs) - self.n_saved
        outs, saved = outs[:k], outs[k:]
        if is_grad_enabled():
            args = [t if t is not None else inputs[s] for t, s in self.leaves]
            if any(a.requires_grad for a in args):
                ctx = _Ctx(self.bwd, saved, list(inputs), self.go, eager, self.diff)
                record(_COMPILED_OP, tuple(args), {"ctx": ctx}, outs[self.diff])
        return outs, None


class _BufStorage:
    """A Storage-like view of a plan's buffer (an index check reads it)."""

    __slots__ = ("__weakref__", "buf", "dev", "nbytes", "version")

    def __init__(self, buf, dev):
        self.buf, self.dev, self.version, self.nbytes = buf, dev, -1, buf.size


def _refresh_positions(refreshers, rid) -> set:
    """Argument indices a refresher recomputes (peeked: nothing advances)."""
    return set(refreshers[rid](False))


# --- passes -------------------------------------------------------------------------------


def _fuse_vertical(steps: list) -> list:
    """Merge elementwise segments into their consumers when the consumer reads the value at
    the same index; stop at anything that reads the value otherwise or writes the inputs."""
    out: list = []
    open_prod: dict = {}  # buffer -> index in ``out`` of the open segment storing it
    open_reads: dict = {}  # buffer -> indices of open segments reading it

    def close(j):
        st = out[j]
        if st is None:
            return
        for b in st.writes:
            if open_prod.get(b) == j:
                del open_prod[b]
        for b in st.reads:
            s = open_reads.get(b)
            if s:
                s.discard(j)

    for st in steps:
        if st.kind == "seg" and not st.refresh:
            merged = True
            while merged:
                merged = False
                for b in list(st.reads):
                    j = open_prod.get(b)
                    if j is None or out[j] is None or out[j].refresh:
                        continue
                    a = out[j]
                    if not fuse.can_merge(a.seg, st.seg, b):
                        continue
                    seg = fuse.merge(a.seg, st.seg, b)
                    close(j)
                    out[j] = None
                    st = _Step("seg", None, seg.reads, seg.writes, a.src | st.src, seg=seg)
                    merged = True
                    break
        for b in st.reads:
            j = open_prod.get(b)
            if j is not None:
                close(j)
        for b in st.writes:
            for j in list(open_reads.get(b, ())):
                close(j)
            j = open_prod.get(b)
            if j is not None:
                close(j)
        out.append(st)
        if st.kind == "seg":
            j = len(out) - 1
            for b in st.writes:
                open_prod[b] = j
            for b in st.reads:
                open_reads.setdefault(b, set()).add(j)
    return [s for s in out if s is not None]


def _rename(st: _Step, alias: dict) -> _Step:
    """The step with buffers renamed (common subexpressions share one result)."""
    if not (st.reads | st.writes) & alias.keys():
        return st
    r = lambda b: alias.get(b, b)
    if st.kind == "seg":
        seg = fuse.Segment(st.seg.group, [("buf", r(v[1])) if v[0] == "buf" else v
                                          for v in st.seg.values])
        return _Step("seg", None, seg.reads, seg.writes, st.src, seg=seg, refresh=st.refresh)
    p = st.payload
    if st.kind == "kernel":
        args = [r(a) if isinstance(a, cl.MemoryObjectHolder) else a for a in p[4]]
        p = p[:4] + (args,) + p[5:]
    elif st.kind == "write":
        p = (r(p[0]),) + p[1:]
    elif st.kind == "copy":
        p = (r(p[0]), r(p[1])) + p[2:]
    else:
        p = (p[0]._replace(buf=r(p[0].buf)), p[1])
    return _Step(st.kind, p, {r(b) for b in st.reads}, {r(b) for b in st.writes}, st.src,
                 seg=st.seg, refresh=st.refresh)


def _cse(steps: list, internal: set) -> list:
    """Common subexpressions: a launch of the same kernel on the same (unchanged) inputs
    as an earlier one, writing only fresh buffers, reuses the earlier results."""
    alias: dict = {}
    gen: dict = {}
    seen: dict = {}
    out = []
    writers: dict = {}
    for st in steps:
        for b in st.writes:
            writers[b] = writers.get(b, 0) + 1
    for st in steps:
        st = _rename(st, alias)
        # results written once (never accumulated into later) can be shared
        pure = st.kind in ("seg", "kernel") and not st.refresh and st.writes and \
            st.writes <= internal and all(writers[b] == 1 for b in st.writes)
        if pure:
            slots: dict = {}
            if st.kind == "seg":
                vals = st.seg.values
                head = st.seg.group
            else:
                vals = [("buf", a) if isinstance(a, cl.MemoryObjectHolder) else ("lit", a)
                        for a in st.payload[4]]
                head = (st.payload[0], st.payload[2], st.payload[3])
            sig = [head]
            for v in vals:
                if v[0] != "buf":
                    sig.append(v)
                elif v[1] in st.writes:
                    sig.append(("out", slots.setdefault(v[1], len(slots))))
                else:
                    sig.append(("in", v[1], gen.get(v[1], 0)))
            try:
                sig = tuple(sig)
                prev = seen.get(sig)
            except TypeError:
                sig, prev = None, None
            if prev is not None:
                for b, k in slots.items():
                    alias[b] = prev[k]
                continue
            if sig is not None:
                seen[sig] = list(slots)
        for b in st.writes:
            gen[b] = gen.get(b, 0) + 1
        out.append(st)
    return out


def _readers_writers(steps: list) -> tuple[dict, dict]:
    readers: dict = {}
    writers: dict = {}
    for i, st in enumerate(steps):
        for b in st.reads - st.writes:
            readers.setdefault(b, []).append(i)
        for b in st.writes:
            writers.setdefault(b, []).append(i)
    return readers, writers


def _seg_at(out: list, j: int, between: list, untouched: set):
    """The elementwise step at ``out[j]``, if no step in ``between`` writes ``untouched``
    (the operands a fused kernel reads at its new place); else None."""
    st = out[j]
    if st is None or st.kind != "seg" or st.refresh:
        return None
    if any(s is not None and s.writes & untouched for s in between):
        return None
    return st


def _reductions(steps: list):
    """(index, step, spec, mode) of each reduction kernel a pass may rebuild."""
    from .codegen import reduce as rc

    for i, st in enumerate(steps):
        found = rc.KERNELS.get(st.payload[0]) if st.kind == "kernel" else None
        if found is not None and not st.refresh:
            yield (i, st, *found)


def _reduce_prologues(steps: list, internal: set, dev) -> list:
    """Fuse an elementwise segment whose result only a reduction reads (x * x before a
    sum, the difference and square of a mean squared error) into the reduction's loads:
    the segment's result never reaches memory."""
    from .codegen import reduce as rc

    readers, writers = _readers_writers(steps)
    out = list(steps)
    for i, st, spec, mode in _reductions(steps):
        if (spec.kind not in ("fold", "welford", "arg", "lse") or spec.pro_params
                or mode == "combine"):
            continue
        _, _, gsize, lsize, args, _ = st.payload
        xi = rc.in_arg(spec)
        x = args[xi]
        if x not in internal or i not in readers.get(x, ()) or len(writers.get(x, ())) != 1:
            continue
        j = writers[x][0]
        # the reduction reads the segment's operands in its place
        seg_step = _seg_at(out, j, out[j + 1:i], out[j].reads) if j < i and out[j] else None
        if seg_step is None:
            continue
        # read elsewhere too (softmax's exp(x - max) by the sum and the division): the
        # reduction recomputes it from at most two tensors; the segment stays for the
        # others and a second vertical fusion pass can move it into them
        others = [steps[r] for r in readers[x] if r != i]
        shared = bool(others) or len(seg_step.seg.writes) > 1
        if shared and (len(seg_step.seg.reads) > 2 or any(o.kind != "seg" for o in others)):
            continue
        # one program holds the scalar, inner and outer kernels: every width they load
        pro = fuse.prologue(seg_step.seg, x, sorted({1, spec.width}))
        if pro is None:
            continue
        source, params, pvals, _ = pro
        prog = rc.reduce_program(dev, replace(spec, prologue=source, pro_params=params))
        new_args = list(args) + pvals
        new_args[xi] = pvals[0]  # a valid buffer: the kernel reads the prologue's instead
        if not shared:
            out[j] = None
        out[i] = _Step("kernel", (prog.kernels[mode], prog.name, gsize, lsize, new_args, None),
                       (st.reads - {x}) | seg_step.reads, st.writes, st.src | seg_step.src)
    return [s for s in out if s is not None]


def _reduce_epilogues(steps: list, internal: set, dev) -> list:
    """Fuse an elementwise segment that only reads a reduction's result (and scalars or
    tensors of the result's shape) into the reduction's final store: 1 / sqrt(var + eps)
    of a normalization, the sqrt of a norm, a loss's scale."""
    from .codegen import reduce as rc

    readers, writers = _readers_writers(steps)
    out = list(steps)
    for i, st, spec, mode in _reductions(steps):
        if spec.kind not in ("fold", "welford", "lse") or spec.epilogue:
            continue
        _, _, gsize, lsize, args, _ = st.payload
        if rc.stage1(mode, args):
            continue  # its combine kernel stores the result
        oi = rc.out_arg(spec, mode)
        r = args[oi]
        # stage 1 of a split reduction is given the output too, but only writes partials
        others = [w for w in writers.get(r, ()) if w != i and not (
            steps[w].kind == "kernel" and steps[w].payload[0] in rc.KERNELS
            and rc.stage1(rc.KERNELS[steps[w].payload[0]][1], steps[w].payload[4]))]
        if r not in internal or others or len(readers.get(r, ())) != 1:
            continue
        j = readers[r][0]
        # the segment's place: the reduction's operands must not change before it
        seg_step = _seg_at(out, j, out[i + 1:j], st.reads) if j > i else None
        if seg_step is None:
            continue
        epi = fuse.epilogue(seg_step.seg, r, args[oi + 1], rc.out_rows(spec, mode, args),
                            sorted({1, spec.width}))
        if epi is None:
            continue
        source, params, pvals, _, (obuf, ooff) = epi
        prog = rc.reduce_program(dev, replace(spec, epilogue=source, epi_params=params))
        k = prog.combine if mode == "combine" else prog.kernels[mode]
        new_args = list(args) + pvals
        new_args[oi:oi + 2] = [obuf, ooff]
        nm = prog.name + ("_combine" if mode == "combine" else "")
        out[i] = None
        out[j] = _Step("kernel", (k, nm, gsize, lsize, new_args, None),
                       (st.reads | seg_step.reads) - {r}, (st.writes - {r}) | {obuf},
                       st.src | seg_step.src)
    return [s for s in out if s is not None]


def _matmul_epilogues(steps: list, internal: set, dev) -> list:
    """Fuse an elementwise segment that consumes a float32 matmul's product (bias add,
    activation) into the matmul's store: the product never reaches memory."""
    from .ops import linalg

    readers, _ = _readers_writers(steps)
    out = list(steps)
    for i, st in enumerate(steps):
        if st.kind != "kernel" or st.payload[0] not in linalg.EPILOGUE_READY or st.refresh:
            continue
        kernel, name, gsize, lsize, args, _ = st.payload
        c, c_off, M, N = args[linalg.C_ARG:linalg.C_ARG + 4]
        if gsize[2] != 1 or c not in internal or len(readers.get(c, ())) != 1:
            continue
        j = readers[c][0]
        # the segment's place: the matmul's operands must not change before it
        seg_step = _seg_at(out, j, out[i + 1:j], st.reads) if j > i else None
        if seg_step is None:
            continue
        epi = fuse.epilogue(seg_step.seg, c, c_off, M * N, linalg.EPILOGUE_WIDTHS)
        if epi is None:
            continue
        source, params, pvals, ptypes, (obuf, ooff) = epi
        k = linalg.epilogue_kernel(dev, linalg.EPILOGUE_READY[kernel], source, params,
                                   ptypes)
        new_args = list(args) + pvals
        new_args[linalg.C_ARG:linalg.C_ARG + 2] = [obuf, ooff]
        reads = (st.reads | seg_step.reads) - {c}
        out[i] = None
        out[j] = _Step("kernel", (k, name + "_epilogue", gsize, lsize, new_args, None), reads,
                       {obuf}, st.src | seg_step.src)
    return [s for s in out if s is not None]


def _constants(steps: list, internal: set) -> dict:
    """Steps that compute only from constants made inside the call (uploads of literals,
    fills): their results are kept from the trace and not recomputed."""
    banned: set = set()
    while True:
        const_bufs, const_steps = set(), set()
        for st in steps:
            if st.kind == "index" or st.refresh:
                continue
            if st.writes and st.writes <= internal - banned and st.reads <= const_bufs:
                const_steps.add(st)
                const_bufs |= st.writes
        bad = set()
        for st in steps:
            if st not in const_steps:
                bad |= st.writes & const_bufs
        if not bad:
            return {"bufs": const_bufs, "steps": const_steps}
        banned |= bad


def _dead_code(steps: list, internal: set) -> list:
    """Drop steps whose results nothing uses, and stores nothing reads."""
    needed: set = set()
    kept = []
    for st in reversed(steps):
        if st.kind == "index":
            kept.append(st)
            needed |= st.reads
            continue
        side = st.writes - internal
        live = st.writes & needed
        if not side and not live:
            continue
        if st.kind == "seg":
            dead = (st.writes & internal) - needed
            if dead:
                seg = fuse.drop_outputs(st.seg, dead)
                st = _Step("seg", None, seg.reads, seg.writes, st.src, seg=seg,
                           refresh=st.refresh)
        kept.append(st)
        needed |= st.reads
    kept.reverse()
    return kept


# --- the user-facing callable --------------------------------------------------------------


class _Entry:
    __slots__ = ("capture_events", "eager", "guards", "plan", "tries")

    def __init__(self):
        self.plan = None
        self.eager = None
        self.tries = 0
        self.capture_events = None
        self.guards = ()


# signatures one compiled function keeps plans for (PyTorch's cache_size_limit): a
# function called with ever new shapes runs eagerly after that, with a warning, instead
# of tracing and holding device buffers for each
CACHE_SIZE_LIMIT = 8


class Compiled:
    """What cg.compile returns: call it like the function (or module) it wraps."""

    def __init__(self, fn, module=None):
        self._fn = fn
        self._module = module
        self._orig_mod = module
        self._entries: dict = {}
        self._warned: set = set()
        self._limit = CACHE_SIZE_LIMIT
        functools.update_wrapper(self, fn if module is None else type(module).forward,
                                 updated=())

    def __getattr__(self, name):
        mod = self.__dict__.get("_module")
        if mod is not None:
            return getattr(mod, name)
        raise AttributeError(name)

    # signature ---------------------------------------------------------------------------
    def _key(self, args, kwargs):
        from .autograd import is_grad_enabled

        tensors: list = []
        spec = _flatten((args, kwargs), tensors)
        key = (spec, _tensor_key(tensors), is_grad_enabled())
        m = self._module
        if m is not None:
            key += (tuple(x.training for x in m.modules()),
                    tuple(p._storage.buf.int_ptr for p in m.parameters()),
                    tuple(b._storage.buf.int_ptr for b in m.buffers()))
        return key, tensors

    def _guards_ok(self, entry) -> bool:
        for w, snap in entry.guards:
            o = w()
            if o is None or _opt_snapshot(o, snap[0]) != snap:
                return False
        return True

    def __call__(self, *args, **kwargs):
        if runtime._capture is not None:  # inside another trace: part of that graph
            return self._fn(*args, **kwargs)
        key, tensors = self._key(args, kwargs)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            if sum(e.plan is not None for e in self._entries.values()) >= self._limit:
                entry.eager = (f"it was compiled for {self._limit} signatures already; new "
                               "ones run eagerly (cg.compile(fn, cache_size_limit=N) keeps "
                               "more)")
                self._warn(entry.eager)
        if entry.plan is not None and self._guards_ok(entry):
            outs, _ = entry.plan.run(tensors, lambda: self._fn(*args, **kwargs))
            if outs is not None:
                return _rebuild(entry.plan.out_spec, iter(outs))
            return self._fn(*args, **kwargs)
        if entry.eager is not None:
            return self._fn(*args, **kwargs)
        return self._trace(entry, args, kwargs, tensors)

    def _trace(self, entry, args, kwargs, tensors):
        cap = _Capture()
        runtime._capture = cap
        registry._recorder = cap.record
        try:
            result = self._fn(*args, **kwargs)
        except BaseException:
            runtime._capture = None
            raise
        finally:
            registry._recorder = None
        try:
            # buffers of the trace stay out of the pool until the plan has pinned the ones
            # it keeps (constants, state)
            return self._plan(entry, cap, result, tensors)
        finally:
            runtime._capture = None

    def _plan(self, entry, cap, result, tensors):
        entry.tries += 1
        entry.capture_events = cap.events
        reason = cap.host_read
        if reason is None:
            try:
                devs = {t.device.info for t in tensors}
                devs |= {st[2] for st in cap.created.values()}
                if len(devs) > 1:
                    raise _Unreplayable("it uses more than one device")
                dev = devs.pop() if devs else registry.default_device().info
                outs: list = []
                _flatten(result, outs)
                diff = [i for i, t in enumerate(outs) if t.requires_grad and
                        t.grad_fn is not None and t.grad_fn.inputs]
                if diff:
                    entry.plan = _Differentiable(cap, tensors, result, outs, diff, dev)
                else:
                    entry.plan = Plan(cap, tensors, result, dev)
                entry.guards = tuple((weakref.ref(o), _opt_snapshot(o, s))
                                     for o, s in cap.optimizers.values())
                if os.environ.get("CLGRAPH_DEBUG") == "1":
                    print(f"[clgraph] compiled {self.__name__}: {len(cap.events)} ops -> "
                          f"{len(entry.plan.kernel_names)} launches")
                return result
            except _Unreplayable as e:
                reason = str(e)
                if e.retry and entry.tries < 2:  # state made on a first call (moments)
                    return result
        entry.eager = reason
        self._warn(reason, stacklevel=5)
        return result

    def _warn(self, reason, stacklevel=3):
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(f"clgraph.compile: {self.__name__} runs eagerly for this input "
                          f"signature: {reason}", RuntimeWarning, stacklevel=stacklevel)

    # introspection -----------------------------------------------------------------------
    def _entry(self, args, kwargs):
        key, _ = self._key(args, kwargs)
        entry = self._entries.get(key)
        if entry is None or (entry.plan is None and entry.eager is None):
            self(*args, **kwargs)
            entry = self._entries[key]
            if entry.plan is None and entry.eager is None:
                self(*args, **kwargs)
        return entry

    def graph(self, *args, **kwargs):
        """The traced graph for this signature as a networkx.DiGraph (traces it first, by
        running the function, when the signature is new)."""
        from .graph import to_networkx

        entry = self._entry(args, kwargs)
        plan = entry.plan
        return to_networkx(entry.capture_events, plan.event_kernel if plan else {})

    def kernels(self, *args, **kwargs) -> list[str]:
        """OpenCL C source of each kernel a call with this signature launches, in order."""
        entry = self._entry(args, kwargs)
        if entry.plan is None:
            return []
        return list(entry.plan.sources)

    def launches(self, *args, **kwargs) -> list[str]:
        """Names of the kernels a call with this signature launches, in order."""
        entry = self._entry(args, kwargs)
        return [] if entry.plan is None else list(entry.plan.kernel_names)


def _opt_snapshot(opt, lr_static: bool):
    groups = []
    for g in opt.param_groups:
        items = []
        for k, v in g.items():
            if k == "params" or (k == "lr" and not lr_static):
                continue
            items.append((k, repr(v)))
        items.append(("n", len(g["params"])))
        groups.append(tuple(items))
    return (lr_static, tuple(groups))


def compile(fn=None, *, cache_size_limit: int = CACHE_SIZE_LIMIT, **options):
    """Compile ``fn`` (a function or an nn.Module); usable as ``@cg.compile`` and
    ``@cg.compile(...)``. ``cache_size_limit``: input signatures that get a compiled plan;
    later new ones run eagerly (with a warning). Other options are accepted for
    torch.compile compatibility (mode, fullgraph, dynamic, backend) and do not change what
    clgraph does."""
    if fn is None:
        return lambda f: compile(f, cache_size_limit=cache_size_limit, **options)
    from .nn.module import Module

    if isinstance(fn, Compiled):
        return fn
    if isinstance(fn, Module):
        c = Compiled(fn.__call__, module=fn)
    elif callable(fn):
        c = Compiled(fn)
    else:
        raise TypeError(f"cg.compile expects a function or an nn.Module, but got "
                        f"{type(fn).__name__}: {fn!r}")
    c._limit = int(cache_size_limit)
    return c
