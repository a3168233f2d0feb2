"""Tracing: the capture installed while a compiled call runs once eagerly, and the
signature of a call's arguments.

The capture hears every op applied (registry._recorder), buffer allocated, kernel launched,
host transfer made and index checked (runtime._capture) and keeps them as events (the
nodes of a flat graph) and actions (what ran, in program order, as named records).
Imports the runtime, the registry and Tensor; never the passes, the plan, replay or the
user API of this package.
"""

from __future__ import annotations

import contextlib
import os
import traceback
import weakref
from collections import namedtuple

import numpy as np
import pyopencl as cl

from .. import runtime
from ..ops import registry
from ..tensor import Tensor

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

# The actions of a capture: a kernel launch as runtime.launch made it (``refresh``
# recomputes scalar arguments at each replay, as runtime.launch says, or is None); a host
# upload; a device-to-device copy; a check of an index tensor viewed as ``ref``
# (``check(tensor)`` is False when a new index breaks what the trace assumed).
Launch = namedtuple("Launch", "dev kernel name gsize lsize args refresh")
Write = namedtuple("Write", "buf host offset")
Copy = namedtuple("Copy", "src dst nbytes src_off dst_off")
IndexCheck = namedtuple("IndexCheck", "ref check")


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


class Capture:
    """Installed as runtime._capture and registry._recorder while a traced call runs.
    ``actions``: (kind, event index, record) in program order, kind one of "launch"
    (a Launch), "write" (a Write), "copy" (a Copy) and "index" (an IndexCheck)."""

    def __init__(self):
        self.events: list[Event] = []
        self.actions: list[tuple] = []
        self.cur: int | None = None
        self.depth = 0
        self.created: dict = {}  # buffer -> (weakref to its Storage, nbytes, DeviceInfo)
        self.host_read: str | None = None
        self.checking = 0
        self.grads: dict = {}
        self.optimizers: dict = {}
        self.nodes: dict = {}  # autograd nodes the traced ops made

    def install(self):
        """Hear every op, launch and transfer from now on."""
        runtime._capture, registry._recorder = self, self.record

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
            bufs = buffers(args)
            ev = self._event(Event(name, bufs, bufs, bare=True))
        launch = Launch(dev, kernel, name, tuple(gsize), tuple(lsize) if lsize else None,
                        list(args), refresh)
        self.actions.append(("launch", ev, launch))

    def on_write(self, st, host, offset):
        ev = self.cur if self.cur is not None else self._event(Event("upload", (), [st.buf]))
        self.actions.append(("write", ev, Write(st.buf, np.array(host, copy=True), offset)))

    def on_copy(self, src, dst, nbytes, src_off, dst_off):
        ev = self.cur if self.cur is not None else self._event(
            Event("copy", [src.buf], [dst.buf]))
        self.actions.append(("copy", ev, Copy(src.buf, dst.buf, nbytes, src_off, dst_off)))

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
        self.actions.append(("index", ev, IndexCheck(ref_of(index), check)))

    def on_grad(self, t):
        self.grads[id(t)] = t

    @contextlib.contextmanager
    def paused(self):
        """Run eagerly, unrecorded (an optimizer making its state ahead of a traced step)."""
        runtime._capture, registry._recorder = None, None
        try:
            yield
        finally:
            self.install()

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


def flatten(obj, tensors: list):
    """A hashable description of ``obj`` with its tensors collected in ``tensors``."""
    if isinstance(obj, Tensor):
        tensors.append(obj)
        return ("T",)
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__,) + tuple(flatten(o, tensors) for o in obj)
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
    if kind in ("list", "tuple"):
        items = [rebuild(s, it) for s in spec[1:]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: rebuild(s, it) for k, s in spec[1:]}
    return spec[2] if kind == "v" else None
