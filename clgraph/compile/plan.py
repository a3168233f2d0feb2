"""Building a Plan from a capture: where each result comes from, the steps the trace
recorded, the passes over them, buffer liveness and physical buffers, lowering of steps to
prepared kernels and replay actions (host calls, such as a collective, keep their place
among them), and index checks hoisted ahead of the launches.

Imports codegen (to build fused kernels), the trace's records, the passes and replay's
Plan; never the autograd bridge or the user API of this package.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pyopencl as cl

from .. import codegen, runtime
from ..codegen import fuse
from . import passes, replay
from .passes import Step, arg_values, segment_step
from .replay import BufArg, Enqueue, Plan, Recheck, ScalarArg, Slot, Source, Transfer, Upload
from .trace import Capture, Ref, Unreplayable, buffers, flatten, ref_of


def build(cap: Capture, inputs: list, result, dev, saved=(), graph_held=False) -> Plan:
    """The plan of a traced call of ``inputs`` that returned ``result``. ``saved``: more
    tensors to return (a forward's values its compiled backward reads); ``graph_held``: the
    traced call's autograd graph keeps its buffers alive. An input may stand for a buffer
    the call made (host data a replay uploads anew: hostdata): its upload is dropped."""
    in_slot: dict = {}
    for i, t in enumerate(inputs):
        in_slot.setdefault(t._storage.buf, i)
    # results and leaf gradients made inside the call escape: fresh buffers per call
    out_spec, out_tensors = _results(result, saved, graph_held)
    grads = [(weakref.ref(leaf), None if leaf._grad is None else ref_of(leaf._grad))
             for leaf in cap.grads.values()]
    esc_bufs, state_storage = _escaping(cap, out_tensors, in_slot)
    _check_contained(cap, esc_bufs.keys() | in_slot.keys(), graph_held)

    def source(r: Ref) -> Source:
        meta = (r.shape, r.stride, r.offset, r.dtype, r.device)
        if r.buf in esc_bufs:
            return Source("esc", esc_bufs[r.buf], *meta)
        if r.buf in in_slot:
            return Source("in", in_slot[r.buf], *meta)
        return Source("state", state_storage[r.buf], *meta)

    outputs = [source(ref_of(t)) for t in out_tensors]
    grads = [(w, None if r is None else source(r)) for w, r in grads]
    steps, refreshers = steps_from_capture(cap)
    steps = [s for s in steps if not (s.kind == "write" and s.payload.buf in in_slot)]
    internal = {b for b in cap.created if b not in esc_bufs and b not in in_slot}
    steps, const_bufs = passes.optimize(steps, internal, dev)
    scratch = internal - const_bufs
    budget = min(dev.cl_device.max_parameter_size, 4096) - 64
    batches = fuse.batch(steps, budget, lambda s: s.kind == "seg")
    first, last = liveness(batches, scratch)
    phys, phys_list = physical_buffers(first, last, cap.created, dev)
    low = lower(batches, dev, _Slots(in_slot, esc_bufs, phys), refreshers)
    pre_checks, actions = hoist_checks(low.actions, low.action_writes, low.written, cap.created)
    plan = Plan(dev=dev, events=cap.events, out_spec=out_spec, outputs=outputs, grads=grads,
                esc_sizes=[cap.created[b][1] for b in esc_bufs],
                pre_checks=pre_checks, actions=actions, dyn_bufs=low.dyn_bufs,
                dyn_scalars=low.dyn_scalars, refreshers=refreshers,
                kernel_names=low.kernel_names, sources=low.sources,
                event_kernel=low.event_kernel, buffers=phys_list, static_bufs=low.static_bufs,
                const_bufs=list(const_bufs), n_internal=len(first), n_physical=len(phys_list),
                bumps=tuple(w for b, w in cap.bumped.items() if b not in in_slot),
                bump_inputs=tuple(sorted({in_slot[b] for b in cap.bumped if b in in_slot})))
    # parameters, optimizer state and constants kept from the trace: the buffer pool
    # must never hand these to another tensor, even after their Storage objects die
    plan.pinned = list(plan.static_bufs)
    _pin(plan.pinned)
    weakref.finalize(plan, _unpin, plan.pinned)
    return plan


# --- what leaves the call -----------------------------------------------------------------


def _results(result, saved, graph_held) -> tuple[tuple, list]:
    """The result's description (trace.flatten) and the tensors that leave the call: its
    results, then ``saved``."""
    out_tensors: list = []
    out_spec = flatten(result, out_tensors)
    out_tensors += list(saved)
    for t in out_tensors:
        if graph_held:
            break
        if t.requires_grad and t.grad_fn is not None and t.grad_fn.inputs:
            raise Unreplayable(
                "it returns a tensor that requires grad and still holds its autograd "
                "graph; compile the whole training step (forward, loss.backward(), "
                "optimizer.step()) instead")
    return out_spec, out_tensors


def _escaping(cap: Capture, out_tensors: list, in_slot: dict) -> tuple[dict, dict]:
    """The buffers made inside the call that leave it (results, gradients), numbered; and
    the Storage of each one that leaves but is neither an argument nor made inside (state)."""
    esc_bufs: dict = {}
    state_storage: dict = {}
    for t in out_tensors + [leaf._grad for leaf in cap.grads.values()
                            if leaf._grad is not None]:
        b = t._storage.buf
        if b in cap.created and b not in esc_bufs and b not in in_slot:
            esc_bufs[b] = len(esc_bufs)
        elif b not in cap.created and b not in in_slot:
            state_storage[b] = t._storage
    return esc_bufs, state_storage


def _check_contained(cap: Capture, esc_bufs, graph_held: bool) -> None:
    """Every other tensor the call made must be gone: the plan reuses their buffers."""
    created = cap.created
    if any(wr() is not None and b not in esc_bufs for b, (wr, _, _) in created.items()):
        gc.collect()  # autograd graphs hold reference cycles
    for b, (wr, nbytes, _) in created.items():
        if wr() is not None and b not in esc_bufs and not graph_held:
            made = next((f"{e.name} {list(e.shape) if e.shape is not None else ''}"
                         for e in cap.events if b in e.created), "an upload")
            raise Unreplayable(
                f"a tensor made inside it (by {made.strip()}, {nbytes} bytes) outlives "
                "the call other than as a result or a gradient (kept in a global, in "
                "state created on the first call, or in an autograd graph)", retry=True)


# --- steps --------------------------------------------------------------------------------


def steps_from_capture(cap: Capture) -> tuple[list, list]:
    """The capture's actions as steps, and the refreshers of their scalar arguments."""
    steps: list = []
    refreshers: list = []
    for kind, ev, p in cap.actions:
        if kind == "launch":
            steps.append(_launch_step(p, ev, cap.events[ev], refreshers))
        elif kind == "write":
            steps.append(Step("write", p, [], [p.buf], [ev]))
        elif kind == "copy":
            steps.append(Step("copy", p, [p.src], [p.dst], [ev]))
        elif kind == "host":
            steps.append(Step("host", p, p.reads, p.writes, [ev]))
        else:
            steps.append(Step("index", p, [p.ref.buf], [], [ev]))
    return steps, refreshers


def _launch_step(launch, ev: int, event, refreshers: list) -> Step:
    """A generated elementwise kernel becomes a segment (fusable); any other a kernel."""
    refresh = ()
    if launch.refresh is not None:
        refresh = (len(refreshers),)
        refreshers.append(launch.refresh)
    if launch.kernel in codegen.GROUPS:
        seg = fuse.Segment(codegen.GROUPS[launch.kernel][0], arg_values(launch.args))
        return segment_step(seg, [ev], refresh)
    bufs = buffers(launch.args)
    # inside an op: what the op wrote (its results, its scratch); a bare launch may write
    # any buffer it is given
    writes = bufs if event.bare else [b for b in bufs
                                      if b in event.writes or b in event.created]
    return Step("kernel", launch, bufs, writes, [ev], refresh=refresh)


# --- buffers ------------------------------------------------------------------------------


def liveness(batches: list, scratch: set) -> tuple[dict, dict]:
    """The first and the last batch that use each scratch buffer (an asynchronous host
    step's buffers: the last batch, as it may still use them until the replay waits)."""
    first, last = {}, {}
    end = len(batches) - 1
    for i, batch in enumerate(batches):
        for st in batch:
            held = st.kind == "host" and st.payload.asynchronous
            for b in st.reads | st.writes:
                if b in scratch:
                    first.setdefault(b, i)
                    last[b] = end if held else max(i, last.get(b, i))
    return first, last


def physical_buffers(first: dict, last: dict, created: dict, dev) -> tuple[dict, list]:
    """Scratch buffers share physical buffers when their uses do not overlap (a freed one
    is taken when at most twice the size). Returns {scratch buffer: physical buffer} and
    the physical buffers."""
    phys: dict = {}
    free: list = []  # (size, buffer) released
    ends: dict = {}
    made: list = []
    for b in sorted(first, key=lambda b: first[b]):
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
            made.append(pb)
        phys[b] = pb
        ends.setdefault(last[b], []).append((sz, pb))
    return phys, made


class _Slots:
    """Where a replay finds each traced buffer."""

    def __init__(self, in_slot: dict, esc_bufs: dict, phys: dict):
        self.in_slot, self.esc_bufs, self.phys = in_slot, esc_bufs, phys
        self.static: set = set()  # the buffers the plan holds

    def __call__(self, b) -> Slot:
        if b in self.in_slot:
            return Slot("in", self.in_slot[b])
        if b in self.esc_bufs:
            return Slot("esc", self.esc_bufs[b])
        pb = self.phys.get(b, b)
        self.static.add(pb)
        return Slot("static", pb)


# --- lowering -----------------------------------------------------------------------------


def lower(batches: list, dev, slot: _Slots, refreshers: list) -> _Lowered:
    """Batches of steps to replay actions: one kernel per batch of segments (all of them
    built as one program), a fresh kernel object per other launch, fixed arguments set."""
    low = _Lowered(dev, slot, refreshers)
    for batch in batches:
        if batch[0].kind == "seg":
            low.wait_for(set().union(*(st.reads | st.writes for st in batch)))
            low.fused(batch)
            low.wrote(batch)
            continue
        for st in batch:
            low.wait_for(st.reads | st.writes)
            low.step(st)
            low.wrote([st])
    low.wait_for(None)
    low.finish()
    return low


class _Lowered:
    """What lowering makes: actions in program order, the argument slots each may write,
    the arguments a replay binds, kernel names and sources."""

    def __init__(self, dev, slot: _Slots, refreshers: list):
        self.dev, self.slot, self.refreshers = dev, slot, refreshers
        self.local = codegen.local_size(dev)
        self.actions: list = []
        self.action_writes: list = []  # input slots each action may write
        self.written: set = set()  # every buffer an action may write
        self.fused_kernels: list = []
        self.static_args: list = []  # (fused kernel, arg index, buffer), set once built
        self.dyn_bufs: list = []
        self.dyn_scalars: list = []
        self.kernel_names: list = []
        self.sources: list = []
        self.event_kernel: dict = {}
        self.static_bufs = slot.static
        self.pending: dict = {}  # asynchronous host calls not waited for: number -> buffers
        self.n_async = 0

    def wait_for(self, bufs) -> None:
        """Wait for the asynchronous host calls that use any of ``bufs`` (None: all) before
        the next action: the rest of the replay goes on while they run."""
        for k, used in list(self.pending.items()):
            if bufs is None or used & bufs:
                self.actions.append(replay.HostWait(k))
                self.action_writes.append(set())
                del self.pending[k]

    def wrote(self, steps: list) -> None:
        """Record the argument slots the last action may write."""
        in_slot = self.slot.in_slot
        self.written.update(b for st in steps for b in st.writes)
        self.action_writes.append({in_slot[b] for st in steps for b in st.writes
                                   if b in in_slot})

    def fused(self, batch: list) -> None:
        """One kernel for a batch of segments; literals a refresher recomputes become
        arguments."""
        segs = []
        for st in batch:
            seg = st.seg
            if st.refresh:
                rid = st.refresh[0]
                rpos = _refresh_positions(self.refreshers, rid)
                seg = fuse.Segment(seg.group, [
                    ("dyn", (rid, i)) if v[0] == "lit" and i in rpos else v
                    for i, v in enumerate(seg.values)])
            segs.append(seg)
        fk = fuse.fused_kernel(segs, self.local)
        self.fused_kernels.append(fk)
        for i, key in enumerate(fk.buffers):
            s = self.slot(key)
            if s.kind == "static":
                self.static_args.append((fk, i, s.x))
            else:
                self.dyn_bufs.append(BufArg(fk, i, s.kind, s.x))
        nb = len(fk.buffers)
        for j, (_, (rid, pos), npt) in enumerate(fk.dyn):
            self.dyn_scalars.append(ScalarArg(fk, nb + j, rid, pos, npt))
        self._launched(Enqueue(fk, fk.name, (fk.global_size,), (fk.local,)), fk, batch)

    def _launched(self, act: Enqueue, source, batch: list) -> None:
        self.actions.append(act)
        self.kernel_names.append(act.name)
        self.sources.append(source)
        for st in batch:
            for ev in st.src:
                self.event_kernel[ev] = act.name

    def step(self, st: Step) -> None:
        """A launch, upload, copy, host call or index check."""
        p = st.payload
        if st.kind == "kernel":
            self.kernel(st)
        elif st.kind == "host":
            k = None
            if p.asynchronous:
                k, self.n_async = self.n_async, self.n_async + 1
                self.pending[k] = set(st.reads) | set(st.writes)
            self.actions.append(replay.HostCall(p.name, p.fn,
                                                [self.slot(r.buf) for r in p.refs],
                                                [r._replace(buf=None) for r in p.refs], k))
        elif st.kind == "write":
            self.actions.append(Upload(self.slot(p.buf), p.host, p.offset))
        elif st.kind == "copy":
            self.actions.append(Transfer(self.slot(p.src), self.slot(p.dst), p.nbytes,
                                         p.src_off, p.dst_off))
        else:
            self.actions.append(Recheck(self.slot(p.ref.buf), p.ref, p.check, p.storage))

    def kernel(self, st: Step) -> None:
        """A kernel of its own with the launch's fixed arguments set."""
        launch = st.payload
        types = codegen.ARG_TYPES.get(launch.kernel)
        if types is None:
            raise Unreplayable(f"kernel {launch.name} has no recorded argument types")
        k = cl.Kernel(launch.kernel.program, launch.kernel.function_name)
        rid = st.refresh[0] if st.refresh else None
        rpos = _refresh_positions(self.refreshers, rid) if rid is not None else ()
        for i, a in enumerate(launch.args):
            if isinstance(a, cl.MemoryObjectHolder):
                s = self.slot(a)
                if s.kind == "static":
                    k.set_arg(i, s.x)
                else:
                    self.dyn_bufs.append(BufArg(k, i, s.kind, s.x))
            elif types[i] is None:
                k.set_arg(i, a)
            else:
                npt = np.dtype(types[i]).type
                k.set_arg(i, npt(a))
                if i in rpos:
                    self.dyn_scalars.append(ScalarArg(k, i, rid, i, npt))
        source = codegen.SOURCES.get(launch.kernel, f"// {launch.name}: source not kept")
        self._launched(Enqueue(k, launch.name, launch.gsize, launch.lsize), source, [st])

    def finish(self) -> None:
        """Build every fused kernel of the plan as one program, then set their fixed
        arguments and put the built kernels in place of the placeholders."""
        fuse.build_all(self.dev, self.fused_kernels)
        real = lambda k: k.kernel if isinstance(k, fuse.FusedKernel) else k
        for fk, i, x in self.static_args:
            fk.kernel.set_arg(i, x)
        self.sources = [s.source if isinstance(s, fuse.FusedKernel) else s
                        for s in self.sources]
        self.actions = [a._replace(kernel=real(a.kernel)) if type(a) is Enqueue else a
                        for a in self.actions]
        self.dyn_bufs = [a._replace(kernel=real(a.kernel)) for a in self.dyn_bufs]
        self.dyn_scalars = [a._replace(kernel=real(a.kernel)) for a in self.dyn_scalars]


def _refresh_positions(refreshers, rid) -> set:
    """Argument indices a refresher recomputes (peeked: nothing advances)."""
    return set(refreshers[rid](False))


def hoist_checks(actions: list, action_writes: list, written_bufs: set,
                 created) -> tuple[list, list]:
    """Index checks on the call's own arguments run before anything is enqueued, unless
    the call writes that argument first, and so do those on tensors made before the call
    that it never writes (they keep their Storage, see replay.Recheck). Returns (those
    checks, the other actions)."""
    written, pre, kept = set(), [], []
    for act, writes in zip(actions, action_writes):
        if type(act) is Recheck:
            kind, x = act.index
            if kind == "in" and x not in written:
                pre.append(act._replace(storage=None))
                continue
            if (kind == "static" and x not in written_bufs and x not in created
                    and act.storage is not None and act.storage() is not None):
                pre.append(act)
                continue
            act = act._replace(storage=None)
        kept.append(act)
        written |= writes
    return pre, kept


# --- buffers a live plan holds ------------------------------------------------------------

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
