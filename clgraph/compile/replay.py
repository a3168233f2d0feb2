"""Replay: a Plan (what plan.build made of a traced call) and running it on new arguments.

A plan's kernels hold their fixed arguments already; a replay binds the new argument
buffers and fresh result buffers, recomputes refreshed scalars (random seeds, optimizer
step sizes) on the host, enqueues every action (host calls, such as a collective, run in
their place) and wraps the results as tensors. Imports the runtime and Tensor; never the
passes, the plan builder, the autograd bridge or the user API of this package.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyopencl as cl

from .. import runtime
from ..tensor import Tensor

# Where a replay finds a buffer: an argument ("in", its index), a fresh result ("esc",
# its index) or a buffer the plan holds ("static", the cl.Buffer).
Slot = namedtuple("Slot", "kind x")
# Where a result or gradient lives after a replay: an argument's or a fresh result's buffer
# ("in" / "esc", an index) or state kept from the trace ("state", its Storage), and the view.
Source = namedtuple("Source", "kind x shape stride offset dtype device")

# The actions of a plan: launch a kernel whose arguments are set, write host data into a
# buffer, copy bytes between buffers, repeat an index check on a buffer viewed as ``ref``,
# call host code (a collective) on views ``refs`` (trace.Ref) of buffers ``slots``. A check
# hoisted before the actions on a tensor made before the call that the call never writes
# (the labels a loss reads) keeps a weak reference to its Storage (``storage``): checks are
# remembered per storage version, so that unchanged labels are read back once, not at
# every call.
Enqueue = namedtuple("Enqueue", "kernel name gsize lsize")
Upload = namedtuple("Upload", "dst host offset")
Transfer = namedtuple("Transfer", "src dst nbytes src_off dst_off")
Recheck = namedtuple("Recheck", "index ref check storage", defaults=(None,))
HostCall = namedtuple("HostCall", "name fn slots refs pending", defaults=(None,))
# the wait of asynchronous host call number ``pending`` (its handle's wait())
HostWait = namedtuple("HostWait", "pending")

# Kernel arguments a replay sets: a buffer argument bound to an argument's (kind "in") or
# a fresh result's ("esc") buffer; a scalar recomputed by refresher ``refresher`` (the value
# at ``position`` of what it returns, as numpy type ``type``).
BufArg = namedtuple("BufArg", "kernel index kind slot")
ScalarArg = namedtuple("ScalarArg", "kernel index refresher position type")


# pyopencl's Kernel.set_arg tries a scalar as each kind of OpenCL object before reading its
# bytes (about 5 us); the method its generated launchers use takes the bytes at once.
set_scalar = getattr(cl.Kernel, "_set_arg_buf", cl.Kernel.set_arg)


class _BufStorage:
    """A Storage-like view of a plan's buffer (an index check reads it)."""

    __slots__ = ("__weakref__", "buf", "dev", "nbytes", "version")

    def __init__(self, buf, dev):
        self.buf, self.dev, self.version, self.nbytes = buf, dev, -1, buf.size


@dataclass(eq=False)
class Plan:
    """A traced call, fused and ready to replay."""

    dev: Any
    events: list  # the trace's events (graph() draws them)
    out_spec: tuple  # trace.flatten's description of the result
    outputs: list[Source]  # each flat result, then the saved values of a compiled backward
    grads: list  # (weakref to a leaf, Source of the .grad the call leaves, or None)
    esc_sizes: list[int]  # bytes of each fresh result buffer a replay allocates
    pre_checks: list[Recheck]  # on the call's own arguments, before anything is enqueued
    actions: list  # Enqueue, Upload, Transfer, Recheck and HostCall, in program order
    dyn_bufs: list[BufArg]
    dyn_scalars: list[ScalarArg]
    refreshers: list[Callable]
    kernel_names: list[str]
    sources: list[str]
    event_kernel: dict  # trace event index -> name of the kernel that computes it
    buffers: list  # physical buffers of the plan's scratch values
    static_bufs: set  # buffers kernels read or write in place (state, constants, scratch)
    const_bufs: list  # results of constants kept from the trace
    n_internal: int = 0  # scratch values of the trace
    n_physical: int = 0  # buffers they share by liveness
    pinned: list | None = None
    bumps: tuple = ()  # weak references to the Storages made before the call it writes
    bump_inputs: tuple = ()  # the arguments it writes in place (their Storages are counted)

    def run(self, inputs: list, eager=None):
        """Enqueue the plan for these argument tensors; returns (flat results, None) or
        (None, reason) when an index check finds the trace's assumptions broken. (``eager``
        reruns the call: only a result with a compiled backward keeps it.)"""
        in_bufs = [t._storage.buf for t in inputs]
        for chk in self.pre_checks:
            r = chk.ref
            if chk.index.kind == "in":
                st = inputs[chk.index.x]._storage
            else:
                st = chk.storage()
                if st is None or st.buf is not chk.index.x:  # the tensor is gone, not its buffer
                    st = _BufStorage(chk.index.x, self.dev)
            t = Tensor._on(st, r.shape, r.stride, r.offset, r.dtype, r.device)
            if not chk.check(t):
                return None, "index tensor differs from the traced one"
        for w, src in self.grads:
            if src is not None and src.kind == "state" and not _adopt(w(), src):
                return None, "a gradient it accumulates into was replaced by another layout"
        esc = [runtime.Storage(self.dev, n) for n in self.esc_sizes]
        for k, i, kind, x in self.dyn_bufs:
            k.set_arg(i, in_bufs[x] if kind == "in" else esc[x].buf)
        vals = [r() for r in self.refreshers]
        for k, i, rid, pos, npt in self.dyn_scalars:
            set_scalar(k, i, npt(vals[rid][pos]))
        self._act(in_bufs, esc)
        for w in self.bumps:  # the writes counted as the traced call's were
            st = w()
            if st is not None:
                st.version += 1
        for i in self.bump_inputs:
            inputs[i]._storage.version += 1
        outs = [_tensor(o, inputs, esc) for o in self.outputs]
        for w, src in self.grads:
            leaf = w()
            if leaf is not None:
                leaf._grad = None if src is None else _tensor(src, inputs, esc)
        return outs, None


    def _act(self, in_bufs, esc) -> None:
        """Enqueue every action in order. An asynchronous host call still running when
        an action fails is waited for (its buffers are mapped or staged until then)."""
        dev = self.dev
        pending: dict = {}  # asynchronous host calls started and not waited for
        try:
            for act in self.actions:
                if type(act) is Enqueue:
                    runtime.enqueue(dev, act.kernel, act.name, act.gsize, act.lsize)
                elif type(act) is Upload:
                    dst = _buf(act.dst, in_bufs, esc)
                    runtime.flush(dev)  # a blocking copy: what is held back runs first
                    runtime.guarded(dev, "uploading host data in a compiled call",
                                    lambda: cl.enqueue_copy(dev.queue, dst, act.host,
                                                            dst_offset=act.offset))
                elif type(act) is Transfer:
                    dst, src = _buf(act.dst, in_bufs, esc), _buf(act.src, in_bufs, esc)
                    runtime.guarded(dev, "copying a buffer in a compiled call",
                                    lambda: cl.enqueue_copy(dev.queue, dst, src,
                                                            byte_count=act.nbytes,
                                                            src_offset=act.src_off,
                                                            dst_offset=act.dst_off))
                elif type(act) is HostCall:
                    # in program order on the queue: the host code waits for the kernels before
                    # it (a map or a read), and the kernels enqueued after it see what it wrote
                    # (an asynchronous one once its HostWait has run)
                    runtime.flush(dev)
                    handle = act.fn(*[Tensor._on(_BufStorage(_buf(s, in_bufs, esc), dev),
                                                 r.shape, r.stride, r.offset, r.dtype, r.device)
                                      for s, r in zip(act.slots, act.refs)])
                    if act.pending is not None:
                        pending[act.pending] = handle
                elif type(act) is HostWait:
                    pending.pop(act.pending).wait()
                else:
                    r = act.ref
                    st = _BufStorage(_buf(act.index, in_bufs, esc), dev)
                    t = Tensor._on(st, r.shape, r.stride, r.offset, r.dtype, r.device)
                    if not act.check(t):
                        raise RuntimeError(
                            "compiled call: an index tensor computed inside the function no "
                            "longer matches the traced one (distinct values); call the function "
                            "eagerly")
            runtime.flush(dev)  # the call's launches go to the device together
        except BaseException:
            for handle in pending.values():
                try:
                    handle.wait()
                except Exception:  # noqa: BLE001  (the first error is the one raised)
                    pass
            raise


def _adopt(leaf, src: Source) -> bool:
    """Before a plan accumulates into the storage its trace found as ``leaf``'s ``.grad``:
    when the leaf holds another gradient now (assigned anew since), its values are copied
    into that storage. False when the layouts differ (the call then runs eagerly)."""
    g = None if leaf is None else leaf._grad
    if g is None or g._storage is src.x:
        return True
    if not (g.shape == src.shape and g.dtype is src.dtype and g._contig
            and tuple(src.stride) == g._stride and g.device == src.device):
        return False
    size = g.numel() * g.dtype.itemsize
    if size:
        dev = src.device.info
        runtime.guarded(dev, "bringing a gradient into a compiled call", lambda: cl.enqueue_copy(
            dev.queue, src.x.buf, g._storage.buf, byte_count=size,
            src_offset=g._offset * g.dtype.itemsize, dst_offset=src.offset * g.dtype.itemsize))
    return True


def _buf(slot: Slot, in_bufs, esc):
    kind, x = slot
    if kind == "static":
        return x
    return in_bufs[x] if kind == "in" else esc[x].buf


def _tensor(src: Source, inputs, esc):
    kind, x, shape, stride, offset, dtype, device = src
    if kind == "esc":
        st = esc[x]
    elif kind == "in":
        st = inputs[x]._storage
    else:
        st = x
    return Tensor._on(st, shape, stride, offset, dtype, device)
