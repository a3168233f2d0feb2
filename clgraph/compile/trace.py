"""Tracing: the interpreter pushed while a compiled call runs once eagerly, and the
signature of a call's arguments.

A Capture is a layer of the dispatch stack (ops/registry.py): it records every op applied
as an event (a node of a flat graph) and observes every event lower layers report
(runtime.notify): buffers allocated, kernels launched, host transfers, device copies, host
steps (collectives), index checks, gradient writes, optimizer steps and the nodes of custom
autograd Functions. It keeps what ran, in program order, as actions. Imports the runtime,
the registry, Tensor and the optimizer's and autograd's events; never the passes, the plan,
replay or the user API of this package.
"""

from __future__ import annotations

import os
import sys
import traceback
import weakref
from collections import namedtuple

import numpy as np
import pyopencl as cl

from .. import runtime
from ..autograd.function import FunctionNode
from ..ops import registry
from ..optim.optimizer import OptimizerStep
from ..tensor import Tensor
from . import hostdata

# A tensor's view of a buffer, without the tensor.
Ref = namedtuple("Ref", "buf shape stride offset dtype device")


def ref_of(t) -> Ref:
    return Ref(t._storage.buf, t._shape, t._stride, t._offset, t.dtype, t.device)


class Unreplayable(Exception):
    """The traced call cannot be replayed (the message says why). ``retry``: a second
    trace may succeed (state the first call created, such as optimizer moments)."""

    def __init__(self, msg, retry=False):
        super().__init__(msg)
        self.retry = retry


# --- what a trace records ----------------------------------------------------------------

# The actions of a capture are the events it observed, kept as records: a runtime.Launch
# (sizes as tuples, arguments as a list; ``refresh`` recomputes scalar arguments at each
# replay, as runtime.launch says, or is None); a runtime.Write (the host data copied); a
# runtime.Copy; an IndexCheck of an index tensor viewed as ``ref`` (``check(tensor)`` is
# False when a new index breaks what the trace assumed; ``storage``: a weak reference to its
# Storage, whose version tells a replay whether a tensor made before the call changed); a
# HostCallRecord.
IndexCheck = namedtuple("IndexCheck", "ref check storage")
# A runtime.HostStep: ``fn`` called on views ``refs`` (reads and writes: their buffers).
HostCallRecord = namedtuple("HostCallRecord", "name fn refs reads writes asynchronous")


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


def buffers(args) -> list:
    """The device buffers among a launch's arguments."""
    return [a for a in args if isinstance(a, cl.MemoryObjectHolder)]


class Capture(registry.Interpreter):
    """Pushed (registry.push) while a traced call runs. ``actions``: (kind, event index,
    record) in program order, kind one of "launch" (a runtime.Launch), "write" (a
    runtime.Write), "copy" (a runtime.Copy), "index" (an IndexCheck) and "host" (a
    HostCallRecord). ``host_state``: runtime.HostState reads seen, each with its value when
    first seen and the reason to run eagerly if the call changes it. After ``stop()``
    ops run unrecorded; events are still observed until the capture is popped (and the
    trace's buffers stay out of the pool until then). ``root``: the compiled function and
    the traced call's arguments (hostdata.Root), to find host data a replay reads again;
    without it (a traced backward) such data makes the call unreplayable."""

    def __init__(self, root=None):
        self.root = root
        self.host_inputs: list = []  # (buffer, hostdata.HostInput): uploads made anew
        self.host_data: str | None = None  # why an upload's data cannot be replayed
        self.events: list[Event] = []
        self.actions: list[tuple] = []
        self.cur: int | None = None
        self.depth = 0
        self.stopped = False
        self.created: dict = {}  # buffer -> (weakref to its Storage, nbytes, DeviceInfo)
        self.bumped: dict = {}  # buffer -> weakref to a Storage made before, written in place
        self.host_read: str | None = None
        self.checking = 0
        self.grads: dict = {}
        # id -> (weakref to a leaf, whether its .grad was None when the call began) for the
        # leaves whose first write in the call accumulates (not zero_grad's assignment): a
        # plan assigns the gradient or accumulates into the one it finds, as the trace did
        self.grad_start: dict = {}
        self.optimizers: dict = {}  # id -> an optimizer that stepped (its guard)
        self.nodes: dict = {}  # autograd nodes the traced ops made
        self.host_state: dict = {}  # read -> (its value when first seen, why)

    def stop(self) -> None:
        """The traced call has returned: record no more ops."""
        self.stopped = True

    def _event(self, ev: Event) -> int:
        self.events.append(ev)
        return len(self.events) - 1

    def _current(self, make) -> int:
        """The event an action belongs to: the op being applied, else a new one."""
        return self.cur if self.cur is not None else self._event(make())

    # --- ops -----------------------------------------------------------------------------
    def process(self, op, args, attrs, out):
        if self.depth or self.stopped:  # an op inside an op is part of it
            return self.inner.process(op, args, attrs, out)
        reads = [a._storage.buf for a in args if isinstance(a, Tensor)]
        ev = self._event(Event(op.name, reads))
        self.cur = ev
        self.depth += 1
        try:
            res = self.inner.process(op, args, attrs, out)
        finally:
            self.depth -= 1
            self.cur = None
        self._finish(self.events[ev], res, out)
        return res

    def _finish(self, e: Event, res, out) -> None:
        """What an op's event wrote, its result's shape and dtype, the nodes it made."""
        first = res[0] if isinstance(res, tuple) else res
        outs = [r for r in (res if isinstance(res, tuple) else (res,)) if isinstance(r, Tensor)]
        e.writes = [r._storage.buf for r in outs if r._storage.buf in e.created or r is out]
        for r in outs:
            if r.grad_fn is not None:
                self.nodes[id(r.grad_fn)] = weakref.ref(r.grad_fn)
        if isinstance(first, Tensor):
            e.shape, e.dtype = first._shape, first.dtype

    # --- events --------------------------------------------------------------------------
    def observe(self, event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _bump(self, ev):
        st = ev.storage
        if st.buf not in self.created:
            self.bumped[st.buf] = weakref.ref(st)

    def _alloc(self, ev):
        st = ev.storage
        self.created[st.buf] = (weakref.ref(st), st.nbytes, st.dev)
        if self.cur is not None:
            self.events[self.cur].created.add(st.buf)

    def _launch(self, ev):
        bufs = buffers(ev.args)
        i = self._current(lambda: Event(ev.name, bufs, bufs, bare=True))
        rec = ev._replace(gsize=tuple(ev.gsize), lsize=tuple(ev.lsize) if ev.lsize else None,
                          args=list(ev.args))
        self.actions.append(("launch", i, rec))

    def _write(self, ev):
        i = self._current(lambda: Event("upload", (), [ev.buf]))
        self.actions.append(("write", i, ev._replace(host=np.array(ev.host, copy=True))))
        if self.host_data is None and not self.stopped:
            found = hostdata.classify(sys._getframe(), self.root)
            if isinstance(found, str):
                self.host_data = found
            elif found is not None:
                self.host_inputs.append((ev.buf, found))

    def _copy(self, ev):
        i = self._current(lambda: Event("copy", [ev.src], [ev.dst]))
        self.actions.append(("copy", i, ev))

    def _read(self, ev):
        if self.checking or self.host_read is not None:
            return
        frames = [f for f in traceback.extract_stack()
                  if os.sep + "clgraph" + os.sep not in f.filename]
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        self.host_read = f"a tensor is read on the host (item(), numpy(), bool(), print){where}"

    def _host_step(self, ev):
        refs = [ref_of(t) for t in ev.tensors]
        reads = [r.buf for r, a in zip(refs, ev.access) if "r" in a]
        writes = [r.buf for r, a in zip(refs, ev.access) if "w" in a]
        i = self._current(lambda: Event(ev.name, reads, writes, bare=True))
        self.actions.append(("host", i, HostCallRecord(ev.name, ev.fn, refs, reads, writes,
                                                       ev.asynchronous)))

    def _host_state(self, ev):
        if ev.read not in self.host_state:
            self.host_state[ev.read] = (ev.read(), ev.why)

    def _index_read(self, ev):
        self.checking += 1 if ev.active else -1

    def _index_check(self, ev):
        i = self._current(lambda: Event("index_check", [ev.index._storage.buf]))
        self.actions.append(("index", i, IndexCheck(ref_of(ev.index), ev.check,
                                                         weakref.ref(ev.index._storage))))

    def _function_node(self, ev):
        """A custom autograd.Function applied in the call: its node is the call's own."""
        self.nodes[id(ev.node)] = weakref.ref(ev.node)

    def _grad_write(self, ev):
        key = id(ev.tensor)
        if key not in self.grads and ev.found_none is not None:
            self.grad_start[key] = (weakref.ref(ev.tensor), ev.found_none)
        self.grads[key] = ev.tensor

    def _optimizer_step(self, ev):
        """Guard the optimizer (its hyperparameters are baked into the plan, all but the
        learning rate) and make the state its parameters lack outside the trace: state made
        by the traced step would be tensors the call creates and keeps, and the first
        call's plan could not replay on the second."""
        self.optimizers[id(ev.optimizer)] = ev.optimizer
        with registry.eager():
            ev.optimizer._init_missing_state()


_HANDLERS = {
    runtime.Alloc: Capture._alloc,
    runtime.Launch: Capture._launch,
    runtime.Write: Capture._write,
    runtime.Copy: Capture._copy,
    runtime.Read: Capture._read,
    runtime.Bump: Capture._bump,
    runtime.HostStep: Capture._host_step,
    runtime.HostState: Capture._host_state,
    registry.IndexRead: Capture._index_read,
    registry.IndexCheck: Capture._index_check,
    registry.GradWrite: Capture._grad_write,
    FunctionNode: Capture._function_node,
    OptimizerStep: Capture._optimizer_step,
}


# --- signatures ---------------------------------------------------------------------------


def flatten(obj, tensors: list):
    """A hashable description of ``obj`` with its tensors collected in ``tensors``."""
    if isinstance(obj, Tensor):
        tensors.append(obj)
        return ("T",)
    if isinstance(obj, (list, tuple)):  # and tuple subclasses: namedtuples, Size
        return ("seq", type(obj)) + tuple(flatten(o, tensors) for o in obj)
    if isinstance(obj, dict):
        return ("dict",) + tuple((k, flatten(v, tensors)) for k, v in obj.items())
    try:
        hash(obj)
    except TypeError:
        return ("id", id(obj))
    return ("v", type(obj).__name__, obj)


def tensor_key(ts) -> tuple:
    """What of the argument tensors a plan depends on: views, dtypes, devices, grad flags
    and which of them share a buffer."""
    seen: dict = {}
    key = []
    for t in ts:
        share = seen.setdefault(t._storage.buf, len(seen))
        key.append((t._shape, t._stride, t._offset, t.dtype.name, t.device.info.index,
                    t.requires_grad, share, t._storage.nbytes))
    return tuple(key)


def rebuild(spec, it):
    """The object ``flatten`` described, with tensors taken in order from ``it``."""
    kind = spec[0]
    if kind == "T":
        return next(it)
    if kind == "seq":
        cls, items = spec[1], [rebuild(s, it) for s in spec[2:]]
        if cls is list:
            return items
        return cls(*items) if hasattr(cls, "_fields") else cls(items)
    if kind == "dict":
        return {k: rebuild(s, it) for k, s in spec[1:]}
    return spec[2] if kind == "v" else None
