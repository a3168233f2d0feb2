"""The autograd bridge: a compiled call whose results require grad (a compiled module's
forward in an ordinary training loop) gets a compiled backward.

The backward from those results (one or several: a VAE's reconstruction, mean and log
variance) to the parameters and arguments is traced once, on the traced call's graph, with
one incoming gradient per result as an input of the backward plan; the forward plan then
also returns the values the backward reads, and the replayed results share one autograd
node (``compiled_function``, one output per result) whose VJP replays the backward plan. A
result that gets no gradient gets zeros. Imports clgraph's autograd, the trace and the plan
builder; never the user API of this package.
"""

from __future__ import annotations

import numpy as np

from .. import autograd
from .. import dtypes as dt
from ..creation import ones_like
from ..ops import registry
from ..tensor import Tensor
from . import plan
from .trace import Capture, Unreplayable, buffers, flatten


def _compiled_vjp(g, *inputs, out, ctx):
    # one result: its gradient and value; several: tuples of them (missing ones as zeros)
    gs, outs = (g, out) if isinstance(out, tuple) else ((g,), (out,))
    if autograd.is_grad_enabled():
        return ctx.differentiable_backward(gs, inputs, outs)
    return ctx.backward(gs)


COMPILED_OP = registry.OpDef("compiled_function", "compiled", None, None, _compiled_vjp,
                             saves_out=False)


class _Ctx:
    """One replayed call's saved values, for its backward; and how to run the call again
    eagerly, for a backward that must itself be differentiable (create_graph=True)."""

    __slots__ = ("args", "bwd", "diff", "eager", "go", "saved")

    def __init__(self, bwd, saved, args, go, eager=None, diff=0):
        self.bwd, self.saved, self.args, self.go = bwd, saved, args, go
        self.eager, self.diff = eager, diff

    def differentiable_backward(self, gs, inputs, outs):
        """The compiled backward is a replay, not a graph: to differentiate it again the
        call runs once more eagerly and autograd differentiates that, with the same
        parameters and arguments (an in-place change since the forward fails autograd's
        version check before this runs). A different result (random ops such as dropout)
        is an error."""
        if self.eager is None:
            raise RuntimeError("this compiled call's backward cannot be differentiated")
        with autograd.enable_grad():
            res = self.eager()
        flat: list = []
        flatten(res, flat)
        again = [flat[i] for i in self.diff]
        for a, o in zip(again, outs):
            if not np.allclose(a.detach().numpy(), o.detach().numpy(), rtol=1e-4,
                               atol=1e-4, equal_nan=True):
                raise RuntimeError(
                    "differentiating twice through a compiled function's result runs it "
                    "again eagerly, and it gave a different result (random ops such as "
                    "dropout?); compile the function that calls "
                    "autograd.grad(create_graph=True) instead")
        return autograd.grad(again, list(inputs), grad_outputs=list(gs), create_graph=True,
                             allow_unused=True)

    def backward(self, gs):
        gs = [g.to(dtype).expand(shape).contiguous() for g, (dtype, shape) in zip(gs, self.go)]
        grads, why = self.bwd.run(gs + self.saved + self.args)
        if grads is None:
            raise RuntimeError(f"compiled backward could not run: {why}")
        return tuple(grads)


class Differentiable:
    """A traced call whose result carries an autograd graph (a module's forward in a
    training loop): a forward plan that also returns the values its backward needs, and
    a backward plan traced from the same graph, run when autograd reaches the result."""

    def __init__(self, cap: Capture, tensors, result, outs, diff, dev):
        diff_outs = [outs[i] for i in diff]
        leaves = _inside_leaves(diff_outs, cap.nodes)
        slots = _leaf_slots(leaves, tensors)
        bcap, gos, grads = _trace_backward(diff_outs, leaves)
        saved = _saved_values(cap, bcap, diff_outs[0].device, tensors)
        self.fwd = plan.build(cap, tensors, result, dev, saved=saved, graph_held=True)
        self.n_saved = len(saved)
        self.bwd = plan.build(bcap, gos + saved + list(tensors), list(grads), dev)
        self.out_spec = self.fwd.out_spec
        self.diff = list(diff)
        self.leaves = [(None if s is not None else t, s) for t, s in zip(leaves, slots)]
        self.go = [(t.dtype, t._shape) for t in diff_outs]
        self.kernel_names = self.fwd.kernel_names + self.bwd.kernel_names
        self.sources = self.fwd.sources + self.bwd.sources
        self.event_kernel = self.fwd.event_kernel

    def run(self, inputs, eager=None):
        """Replay; ``eager`` runs the call again eagerly (a differentiable backward)."""
        outs, why = self.fwd.run(inputs)
        if outs is None:
            return None, why
        k = len(outs) - self.n_saved
        outs, saved = outs[:k], outs[k:]
        if autograd.is_grad_enabled():
            args = [t if t is not None else inputs[s] for t, s in self.leaves]
            if any(a.requires_grad for a in args):
                ctx = _Ctx(self.bwd, saved, list(inputs), self.go, eager, self.diff)
                diff_outs = [outs[i] for i in self.diff]
                autograd.record(COMPILED_OP, tuple(args), {"ctx": ctx},
                                diff_outs[0] if len(diff_outs) == 1 else tuple(diff_outs))
        return outs, None


def _inside_leaves(outs: list, nodes) -> list:
    """The tensors a traced call's outputs differentiate into: leaves (parameters, leaf
    arguments) and arguments computed outside the call, in first-seen order."""
    found, seen, stack = [], set(), [t.grad_fn for t in outs]
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
            inside = isinstance(nxt, autograd.Node) and ref is not None and ref() is nxt
            if inside:
                stack.append(nxt)
                continue
            key = id(nxt)
            if key not in seen:
                seen.add(key)
                found.append(nxt.variable if isinstance(nxt, autograd.AccumulateGrad) else a)
    return found


def _leaf_slots(leaves: list, tensors: list) -> list:
    """The argument index of each leaf, or None for one that is not an argument."""
    slots = []
    for t in leaves:
        slot = next((i for i, a in enumerate(tensors) if a is t), None)
        if slot is None and t._storage.buf in {a._storage.buf for a in tensors}:
            raise Unreplayable("it differentiates into a view of an argument")
        slots.append(slot)
    return slots


def _trace_backward(outs: list, leaves: list):
    """Trace the backward from ``outs`` to ``leaves`` once, on a copy of the graph
    (retain_graph keeps it for the traced call's own backward). Returns the backward's
    capture, its incoming gradients (one per output) and the gradients."""
    gos = [ones_like(t) for t in outs]
    bcap = Capture()
    with registry.eager(), registry.push(bcap):  # the forward's capture hears none of it
        grads = autograd.grad(list(outs), leaves, grad_outputs=gos, retain_graph=True,
                              allow_unused=True)
    if bcap.host_read is not None:
        raise Unreplayable(f"its backward reads the host: {bcap.host_read}")
    if bcap.host_data is not None:
        raise Unreplayable(f"its backward uploads: {bcap.host_data}")
    return bcap, gos, grads


def _saved_values(cap: Capture, bcap: Capture, device, inputs) -> list:
    """The buffers of the forward the backward reads, as byte tensors the forward plan
    returns (not the inputs, host data uploaded anew included: the backward gets those)."""
    held = {t._storage.buf for t in inputs}
    used = set()
    for kind, _, p in bcap.actions:
        if kind == "launch":
            used |= set(buffers(p.args))
        elif kind == "write":
            used.add(p.buf)
        elif kind == "copy":
            used |= {p.src, p.dst}
        elif kind == "host":
            used |= {r.buf for r in p.refs}
        else:
            used.add(p.ref.buf)
    saved = []
    for b in used:
        if b in cap.created and b not in held:
            st = cap.created[b][0]()
            if st is None:
                raise Unreplayable("its backward reads a value the forward freed")
            saved.append(Tensor._on(st, (st.nbytes,), (1,), 0, dt.uint8, device))
    return saved
