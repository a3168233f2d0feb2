"""Autograd by graph transformation: every op's VJP builds ordinary clgraph ops, so a
gradient is itself a graph that can be differentiated again (create_graph=True).

Forward: this module installs its layer on the dispatch stack (registry.install), which
calls ``record`` for an op whose tensor inputs require grad (grad mode on); the result's
``grad_fn`` is a ``Node`` holding the op, its attrs, its inputs (saved, with their storage
versions) and its output's storage. Backward walks nodes in reverse topological order,
calls each op's VJP, sums gradients back over broadcast dims and accumulates into leaves'
``.grad``, reporting each leaf's gradient write (runtime.notify). User-defined operations
(``Function``: a forward and a backward written in Python) live in ``function``, whose
nodes are Nodes that run the user's backward. Imports the ops layer, Tensor and creation;
nothing above them.
"""

from __future__ import annotations

import functools
import threading
import warnings
import weakref

import numpy as np

from .. import creation, runtime
from .. import dtypes as dt
from ..creation import _from_host, ones_like, randn_like, zeros_like
from ..ops import registry
from ..ops.movement import sum_to
from ..tensor import Tensor

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


def _set_enabled(b: bool) -> None:
    _state.enabled = b


class _GradMode:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager and decorator."""

    mode = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__() if not isinstance(self, set_grad_enabled) else \
                    set_grad_enabled(self.mode):
                return fn(*args, **kwargs)

        return wrapper


class _BareDecorator(_GradMode):
    """A mode that also decorates without parentheses (``@no_grad``), as PyTorch's do."""

    def __new__(cls, orig_func=None):
        self = super().__new__(cls)
        if orig_func is None:
            return self
        if not callable(orig_func):
            raise TypeError(f"{cls.__name__}() takes no arguments, got "
                            f"{type(orig_func).__name__}")
        return self(orig_func)

    def __init__(self, orig_func=None):
        pass


class no_grad(_BareDecorator):
    """Disable gradient recording (context manager or decorator)."""

    mode = False


class enable_grad(_BareDecorator):
    """Enable gradient recording (context manager or decorator)."""

    mode = True


class set_grad_enabled(_GradMode):
    """Set gradient recording on or off; takes effect at once, like PyTorch's."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = is_grad_enabled()
        _set_enabled(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_enabled(self._prev)
        return False

    def __call__(self, fn):
        # as a decorator only the decorated calls change the mode: undo the constructor's
        _set_enabled(self._prev)
        return super().__call__(fn)


class inference_mode(_GradMode):
    """torch.inference_mode(mode=True): gradient recording off while ``mode`` (clgraph has
    no separate inference tensors); decorates with or without parentheses."""

    def __new__(cls, mode=True):
        self = super().__new__(cls)
        if callable(mode) and not isinstance(mode, bool):
            self.mode = False
            return self(mode)
        return self

    def __init__(self, mode=True):
        if isinstance(mode, bool):
            self.mode = not mode and is_grad_enabled()

    def __enter__(self):
        _state.inference = getattr(_state, "inference", 0) + (not self.mode)
        return super().__enter__()

    def __exit__(self, *exc):
        _state.inference -= not self.mode
        return super().__exit__(*exc)

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(not mode):
                return fn(*args, **kwargs)

        return wrapper


def is_inference_mode_enabled() -> bool:
    """torch.is_inference_mode_enabled."""
    return getattr(_state, "inference", 0) > 0


class set_detect_anomaly:
    """torch.autograd.set_detect_anomaly(mode, check_nan=True): while on, backward raises
    at the first node whose input gradients hold a NaN, naming the node (a device read per
    node: a debugging mode). detect_anomaly() is the same, on."""

    def __init__(self, mode: bool = True, check_nan: bool = True):
        self._prev = (is_anomaly_enabled(), is_anomaly_check_nan_enabled())
        set_anomaly_enabled(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        set_anomaly_enabled(*self._prev)
        return False


class detect_anomaly(set_detect_anomaly):
    def __init__(self, check_nan: bool = True):
        super().__init__(True, check_nan)


def is_anomaly_enabled() -> bool:
    return getattr(_state, "anomaly", False)


def is_anomaly_check_nan_enabled() -> bool:
    return getattr(_state, "anomaly_nan", True)


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """torch.set_anomaly_enabled: anomaly mode on or off for this thread; backward checks
    gradients for NaN while both ``enabled`` and ``check_nan``."""
    _state.anomaly = bool(enabled)
    _state.anomaly_nan = bool(check_nan)


# --- graph nodes --------------------------------------------------------------------------


class AccumulateGrad:
    """The node of a leaf tensor: accumulates into ``variable.grad``."""

    __slots__ = ("variable", "post_hooks", "__weakref__")

    def __init__(self, variable):
        self.variable = variable
        self.post_hooks = None  # run with the leaf once its .grad is accumulated

    next_functions = ()

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


def _grad_accumulator(t):
    acc = t._node
    if acc is None:
        acc = t._node = AccumulateGrad(t)
    return acc


class RemovableHandle:
    """torch.utils.hooks.RemovableHandle, a hook's handle: ``remove()`` takes the hook out of
    its dict. Defined here, the lowest layer that hands out hooks; nn.Module and
    clgraph.utils.hooks re-export it."""

    _next_id = 0

    def __init__(self, hooks_dict: dict):
        self._hooks = hooks_dict
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _ListHookHandle(RemovableHandle):
    """The handle of a hook kept in a list (a tensor's or a grad accumulator's hooks)."""

    def __init__(self, hooks: list, hook):
        super().__init__(hooks)
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def register_post_accumulate_grad_hook(t, hook):
    """Tensor.register_post_accumulate_grad_hook: ``hook(t)`` runs once backward() has
    accumulated this pass's gradient into the leaf's ``.grad``."""
    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if t.grad_fn is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                           "tensors")
    acc = _grad_accumulator(t)
    if acc.post_hooks is None:
        acc.post_hooks = []
    acc.post_hooks.append(hook)
    return _ListHookHandle(acc.post_hooks, hook)


_NAMES = {"to_dtype": "ToCopy", "copy_slices": "CopySlices", "sub": "Sub", "div": "Div",
          "matmul": "Bmm", "view": "View", "permute": "Permute", "expand": "Expand",
          "slice": "Slice", "squeeze": "Squeeze", "unsqueeze": "Unsqueeze",
          "log_softmax": "LogSoftmax", "logsumexp": "Logsumexp", "index_select": "IndexSelect",
          "floor_divide": "FloorDivide", "masked_fill": "MaskedFill", "where": "Where",
          "relu": "Relu", "pow": "Pow"}


def _slice_name(index) -> str:
    """Basic indexing's node as PyTorch names it: after its last step that does something
    (an int selects, a partial slice slices, None unsqueezes)."""
    for item in reversed(index):
        if isinstance(item, int):
            return "Select"
        if item is None:
            return "Unsqueeze"
        if isinstance(item, slice) and item != slice(None):
            return "Slice"
    return "Alias"


class Node:
    """``grad_fn`` of a tensor: one applied op, its saved inputs and outputs. A tensor is
    output ``_output_nr`` of its ``grad_fn`` (an op may have several: var_mean); an edge to
    an input's node names that output too (``next_nr``)."""

    __slots__ = ("op", "attrs", "inputs", "versions", "outs", "out_versions", "next",
                 "next_nr", "in_meta", "out_refs", "__weakref__")

    def __init__(self, op, args, attrs, outs):
        self.op = op
        self.attrs = attrs
        self.inputs = args
        saves = op.saves
        if op.needs is not None:
            saves = op.needs(tuple(isinstance(a, Tensor) and a.requires_grad for a in args))
        self.versions = tuple(
            a._storage.version if isinstance(a, Tensor) and (saves is None or i in saves) else None
            for i, a in enumerate(args)
        )
        self.in_meta = tuple((a._shape, a.dtype) if isinstance(a, Tensor) else None for a in args)
        nxt, nr = [], []
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                if a._base is not None:
                    refresh_view(a)
                nxt.append(a.grad_fn if a.grad_fn is not None else _grad_accumulator(a))
                nr.append(a._output_nr if a.grad_fn is not None else 0)
            else:
                nxt.append(None)
                nr.append(0)
        self.next = tuple(nxt)
        self.next_nr = tuple(nr)
        if isinstance(outs, Tensor):
            outs = (outs,)
        self.outs = tuple(o.detach() for o in outs)  # storage only: no cycle via grad_fn
        self.out_versions = tuple(o._storage.version for o in outs)
        self.out_refs = tuple(weakref.ref(o) for o in outs)

    @property
    def out(self):
        """The (first) output, detached."""
        return None if self.outs is None else self.outs[0]

    def name(self) -> str:
        """PyTorch's name of the backward node (repr and next_functions show it)."""
        op = self.op.name
        if op == "copy_slices":
            return "CopySlices"
        base = _NAMES.get(op) or "".join(p.capitalize() for p in op.split("_"))
        if op == "linear":  # addmm with a bias, mm without
            base = "Addmm" if self.in_meta[2] is not None else "Mm"
        elif op == "slice":
            base = _slice_name(self.attrs.get("index", ()))
        elif op in ("sum", "mean", "prod") and self.attrs.get("all_dims") is False:
            return f"{base}Backward1"  # PyTorch's overload with a dim
        return f"{base}Backward0"

    @property
    def next_functions(self):
        return tuple(zip(self.next, self.next_nr))

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    def register_hook(self, fn):
        raise NotImplementedError("hooks on grad_fn nodes are not supported; use "
                                  "Tensor.register_hook")

    def input_grads(self, gs: list, create_graph: bool):
        """The gradients of the node's inputs, given its outputs' ``gs`` (a custom Function's
        node runs its backward instead of an op's VJP)."""
        return _apply_vjp(self, gs, create_graph)

    def release(self) -> None:
        """Free what the node saved (backward without retain_graph)."""
        self.inputs = None
        self.outs = None
        self.attrs = {}  # what a VJP kept (a compiled call's saved buffers)


def record(op, args, attrs, res):
    """Attach a Node to the result (each floating-point tensor of a tuple of results) when
    any tensor input requires grad (grad mode on)."""
    if not op.differentiable:
        return res
    if isinstance(res, tuple):
        node = Node(op, args, attrs, res)
        for i, r in enumerate(res):
            if r.dtype.kind >= 2:
                r.grad_fn, r.requires_grad = node, True
                if i:
                    r._output_nr = i
        return res
    if res.dtype.kind >= 2:
        res.grad_fn = Node(op, args, attrs, res)
        res.requires_grad = True
    return res


def _take_grad_fn(dst, src) -> None:
    """``dst`` stands for the value ``src`` had: the same node and output."""
    dst.grad_fn, dst.requires_grad = src.grad_fn, src.requires_grad
    if src._output_nr:
        dst._output_nr = src._output_nr


def _set_grad_fn(t, node) -> None:
    """``t`` is now the (only) output of ``node``."""
    t.grad_fn, t.requires_grad = node, True
    if t._output_nr:
        del t._output_nr


def _copy_slices_vjp(g, old_base, value, out, geom):
    """Gradient of writing ``value`` into a view (geometry ``geom``) of a contiguous base:
    the old base gets ``g`` with the written region zeroed, the value gets that region."""
    if is_grad_enabled():
        raise RuntimeError("differentiating twice through an in-place write into a view is "
                           "not supported")
    shape, stride, offset = geom
    gc = g.contiguous()
    # a view of another dtype (.real of a complex base, view_as_complex of a real one): its
    # geometry counts its own elements, so the base's gradient is seen in that dtype
    back = None
    if gc.dtype.kind == 3 and value.dtype.kind != 3:
        gc, back = registry.functions.view_as_real(gc), registry.functions.view_as_complex
    elif gc.dtype.kind != 3 and value.dtype.kind == 3:
        gc, back = registry.functions.view_as_complex(gc), registry.functions.view_as_real
    g_old = gc.clone()
    g_old._view(shape, stride, offset).zero_()
    gv = gc._view(shape, stride, offset).clone()
    return (back(g_old) if back is not None else g_old), gv


_COPY_SLICES = registry.OpDef("copy_slices", "autograd", None, None, _copy_slices_vjp,
                              saves=(), saves_out=False)


def rebase_on_view_write(base, view):
    """After an in-place op wrote ``view`` (a view of contiguous ``base``), the base's new
    value is (old base outside the view, the op's result inside): PyTorch's CopySlices."""
    old = base._view(base._shape, base._stride, base._offset)
    _take_grad_fn(old, base)
    geom = (view._shape, view._stride, view._offset)
    _set_grad_fn(base, Node(_COPY_SLICES, (old, view), {"geom": geom}, base))


def _zero_vjp(g, old, out=None):
    return (zeros_like(old),)


_OVERWRITES: dict = {}


def overwritten(t, name: str) -> None:
    """``t`` (in the graph) was just overwritten with values that need no gradient (fill_,
    zero_, uniform_): it stays in the graph, as in PyTorch, as the output of a node that
    gives its old value zero gradients; a view's base learns the written region."""
    op = _OVERWRITES.get(name)
    if op is None:
        op = _OVERWRITES[name] = registry.OpDef(name, "autograd", None, None, _zero_vjp,
                                                saves=(), saves_out=False)
    old = t._view(t._shape, t._stride, t._offset)
    _take_grad_fn(old, t)
    _set_grad_fn(t, Node(op, (old,), {}, t))
    if t._base is not None and t._base.requires_grad:
        t._version_seen = t._storage.version
        rebase_on_view_write(t._base, t)


def _overwrite_in_graph(t, name: str, fill) -> bool:
    """creation's random fills on a tensor that requires grad (uniform_, normal_): under
    grad mode, PyTorch's leaf check, then ``fill`` and the overwrite recorded."""
    if not is_grad_enabled():
        return False
    _check_in_place(t)
    fill()
    overwritten(t, name)
    return True


creation.overwrite_hook = _overwrite_in_graph


def refresh_view(t) -> None:
    """A view whose base was written in place since the view's history was recorded (a
    write through the base or another view) stands for the base's new values: its
    ``grad_fn`` becomes the view op over the base's current node, as PyTorch regenerates
    it (AsStridedBackward0)."""
    base = t._base
    if base is None or not base.requires_grad or t._version_seen == t._storage.version:
        return
    if t._version_seen is not None:
        src = base._view(base._shape, base._stride, base._offset)
        _take_grad_fn(src, base)
        if src.dtype.kind == 3 and t.dtype.kind != 3:  # a view of another dtype: its
            src = registry.functions.view_as_real(src)  # geometry counts its own elements
        elif src.dtype.kind != 3 and t.dtype.kind == 3:
            src = registry.functions.view_as_complex(src)
        attrs = {"size": t._shape, "stride": t._stride, "storage_offset": t._offset}
        _set_grad_fn(t, Node(registry.REGISTRY["as_strided"], (src,), attrs, t))
    t._version_seen = t._storage.version


def needs_grad(args) -> bool:
    for a in args:
        if isinstance(a, Tensor) and a.requires_grad:
            return True
    return False


# --- the autograd layer of dispatch ---------------------------------------------------------


class _Recording(registry.Interpreter):
    """Installed at import above eager dispatch: when grad mode is on and an input (or the
    tensor an in-place op writes) requires grad, the result gets its Node."""

    def process(self, op, args, attrs, out):
        # the operands first: most ops have none that requires grad, and the grad mode is a
        # thread-local read
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                break
        else:
            if out is None or not out.requires_grad:
                return self.inner.process(op, args, attrs, out)
        if getattr(_state, "enabled", True):
            if out is None:
                return record(op, args, attrs, self.inner.process(op, args, attrs, None))
            return _record_in_place(self.inner, op, args, attrs, out)
        return self.inner.process(op, args, attrs, out)


def _check_in_place(out) -> None:
    """PyTorch's errors for an in-place op that autograd cannot record."""
    if out.requires_grad and out.grad_fn is None:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation."
        )
    base = out._base
    if base is not None and base.requires_grad and base.grad_fn is None:
        raise RuntimeError(
            "a view of a leaf Variable that requires grad is being used in an in-place "
            "operation."
        )
    if base is not None and not (base._contig and base._offset == 0):
        raise RuntimeError(
            "in-place operations on views of non-contiguous tensors are not supported when "
            "gradients are recorded; use an out-of-place operation (e.g. torch.where or "
            "torch.cat) instead"
        )


def _record_in_place(inner, op, args, attrs, out):
    """Run an in-place op (through ``inner``) and give ``out`` its new Node. The node's
    inputs are the pre-op tensors; ``out`` then stands for the new value. Where the VJP
    reads ``out``'s old value (mul_ by a tensor, clamp_, pow_), the node keeps a copy of it,
    as PyTorch does."""
    _check_in_place(out)
    refresh_view(out)
    base = out._base
    was_graph = out.requires_grad
    res_needs = needs_grad(args)
    if op.differentiable and res_needs and any(a is out for a in args):
        saves = op.saves
        if op.needs is not None:
            saves = op.needs(tuple(isinstance(a, Tensor) and a.requires_grad for a in args))
        reads_old = any(a is out and (saves is None or i in saves) for i, a in enumerate(args))
        with no_grad():
            old = out.clone() if reads_old else out._view(out._shape, out._stride,
                                                           out._offset)
    else:
        old = None
    node_args = tuple(old if a is out else a for a in args)
    if old is not None:
        _take_grad_fn(old, out)
    versions_before = [a._storage.version if isinstance(a, Tensor) else None
                       for a in node_args]
    res = inner.process(op, args, attrs, out)
    if not op.differentiable or not res_needs:
        # the new value depends on nothing that needs a gradient (fill_, zero_, a copy of a
        # constant): PyTorch keeps ``out`` in the graph when it was, its old value getting
        # zero gradients; its base learns the written region
        if was_graph and out.dtype.kind >= 2:
            overwritten(out, op.name)
        else:
            out.grad_fn, out.requires_grad = None, False
            if base is not None and base.requires_grad:
                rebase_on_view_write(base, out)
        return res
    node = Node(op, node_args, attrs, out)
    node.versions = tuple(v if n is not None else None
                          for v, n in zip(versions_before, node.versions))
    if not out.dtype.kind >= 2:
        return res
    _set_grad_fn(out, node)
    if base is not None:
        out._version_seen = out._storage.version
        rebase_on_view_write(base, out)
    return res


# --- backward -------------------------------------------------------------------------


def _check_nan(node, in_grads) -> None:
    for i, g in enumerate(in_grads):
        if isinstance(g, Tensor) and g.dtype.kind >= 2 and bool(g.isnan().any()):
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th "
                               "output.")


def _freed():
    return RuntimeError(
        "Trying to backward through the graph a second time (or directly access saved "
        "tensors after they have already been freed). Saved intermediate values of the graph "
        "are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if "
        "you need to backward through the graph a second time or if you need to access saved "
        "tensors after calling backward."
    )


def _check_versions(node):
    for i, (a, v) in enumerate(zip(node.inputs, node.versions)):
        if isinstance(a, Tensor) and v is not None and a._storage.version != v:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{_tname(a)} {list(a.shape)}], which is input {i} of "
                f"{node.name()}, is at version {a._storage.version}; expected version {v} "
                "instead. Hint: the operation that modified it ran after this tensor was saved."
            )
    if not node.op.saves_out:
        return
    for i, (o, v) in enumerate(zip(node.outs, node.out_versions)):
        if o._storage.version != v:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: [{_tname(o)} {list(o.shape)}], which is output {i} of "
                f"{node.name()}, is at version {o._storage.version}; expected version {v} "
                "instead."
            )


def _tname(t):
    return "torch." + t.dtype.tensor_type


def _toposort(roots):
    order, seen = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        # the last input is explored last, so it comes first: a weight's transpose is
        # walked right after the product that reads it, not after the whole chain of
        # inputs (its leaf is complete early: DistributedDataParallel's overlap)
        for n in reversed(getattr(node, "next", ())):
            if n is not None and isinstance(n, Node) and id(n) not in seen:
                stack.append((n, False))
    return order[::-1]  # roots first


def _run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=None,
                  allow_unused=False, accumulate=True):
    """One backward pass: seed the outputs' gradients, run each node's VJP in reverse
    topological order, then hand the leaves theirs; the gradients of ``inputs`` when
    given (autograd.grad)."""
    walk = _Pass(inputs, retain_graph, create_graph, accumulate)
    roots = walk.seed(outputs, grad_outputs)
    with set_grad_enabled(create_graph):
        order = _toposort([r for r in roots if isinstance(r, Node)])
        complete = _leaves_complete(order)
        for i, node in enumerate(order):
            gs = walk.grads.pop(id(node), None)
            if gs is not None:
                walk.visit(node, gs)
            for acc in complete.get(i, ()):
                walk.hand(acc)
        walk.leaves(roots)
    return None if inputs is None else walk.result(inputs, allow_unused)


def _leaves_complete(order) -> dict:
    """{i: the leaves whose gradient is complete once ``order[i]`` has run}. A leaf gets its
    gradient right after the last node that feeds it (where PyTorch runs AccumulateGrad),
    so that its post-accumulate hooks (a gradient all-reduce) start while the rest of the
    backward is still being enqueued."""
    last: dict = {}
    for i, node in enumerate(order):
        for nxt in node.next:
            if isinstance(nxt, AccumulateGrad):
                last[id(nxt)] = (i, nxt)
    complete: dict = {}
    for i, acc in last.values():
        complete.setdefault(i, []).append(acc)
    return complete


def _grad_node(t):
    """The node a gradient with respect to ``t`` arrives at."""
    return t.grad_fn if t.grad_fn is not None else _grad_accumulator(t)


def _grad_key(t) -> tuple:
    """Where a gradient with respect to ``t`` arrives: (id of its node, output number)."""
    if t.grad_fn is not None:
        return id(t.grad_fn), t._output_nr
    return id(_grad_accumulator(t)), 0


def _run_hooks(hooks, g):
    """``g`` through a tensor's hooks (a hook returning None keeps it)."""
    for h in hooks or ():
        r = h(g)
        if r is not None:
            g = r
    return g


class _Pass:
    """The state of one backward pass (per pass: a VJP may run a backward of its own)."""

    def __init__(self, inputs, retain_graph, create_graph, accumulate):
        self.retain_graph, self.create_graph = retain_graph, create_graph
        self.accumulate = accumulate
        self.grads: dict[int, list] = {}  # id(Node) -> gradient of each of its outputs
        self.leaf_grads: dict[int, object] = {}  # id(AccumulateGrad) -> gradient
        self.leaf_nodes: dict[int, object] = {}  # id(AccumulateGrad) -> it
        self.captured: dict[tuple, object] = {}  # the gradients of ``inputs``, by _grad_key
        self.owned: set[int] = set()  # the storages given to leaves in this pass
        self.wanted = None if inputs is None else {
            _grad_key(t): i for i, t in enumerate(inputs)}

    def seed(self, outputs, grad_outputs) -> list:
        """The roots of the walk, with their incoming gradients recorded."""
        roots = []
        for out, g in zip(outputs, grad_outputs):
            node = out.grad_fn
            if node is None:
                if not out.requires_grad:
                    raise RuntimeError(
                        "element 0 of tensors does not require grad and does not have a "
                        "grad_fn")
                node = _grad_accumulator(out)
                self.leaf_grads[id(node)] = _add(self.leaf_grads.get(id(node)), g)
            else:
                self._add_at(node, out._output_nr, g)
            roots.append(node)
        return roots

    def _add_at(self, node, nr: int, g) -> None:
        gs = self.grads.get(id(node))
        if gs is None:
            gs = self.grads[id(node)] = [None] * len(node.out_refs)
        gs[nr] = _add(gs[nr], g)

    def visit(self, node, gs: list) -> None:
        """Run one node: its outputs' hooks and retained grads, its VJP; pass the input
        gradients on."""
        for i, ref in enumerate(node.out_refs):
            outt, g = ref(), gs[i]
            if outt is not None and g is not None:
                g = gs[i] = _run_hooks(outt._hooks, g)
                if outt._retains_grad and self.accumulate:
                    outt._grad = g if outt._grad is None else outt._grad + g
                    if not self.create_graph:
                        outt._grad = outt._grad.detach()
            if self.wanted is not None and (id(node), i) in self.wanted:
                self.captured[(id(node), i)] = g
        if node.inputs is None:
            raise _freed()
        _check_versions(node)
        in_grads = node.input_grads(gs, self.create_graph)
        if getattr(_state, "anomaly", False) and getattr(_state, "anomaly_nan", True):
            _check_nan(node, in_grads)
        for meta, nxt, nr, gi in zip(node.in_meta, node.next, node.next_nr, in_grads):
            if nxt is not None and gi is not None:
                self._pass_on(nxt, nr, gi, *meta)
        if not self.retain_graph:
            node.release()

    def _pass_on(self, nxt, nr, gi, shape, dtype) -> None:
        """Add an input's gradient (summed back over broadcast dims, in its dtype) to what
        reaches its node."""
        gi = sum_to(gi, shape)
        if gi.dtype is not dtype:
            # a real input's gradient is the real part of a complex one (PyTorch's
            # handle_r_to_c)
            gi = (gi.real if gi.dtype.kind == 3 and dtype.kind != 3 else gi).to(dtype)
        if isinstance(nxt, AccumulateGrad):
            self.leaf_grads[id(nxt)] = _add(self.leaf_grads.get(id(nxt)), gi)
            self.leaf_nodes[id(nxt)] = nxt
        else:
            self._add_at(nxt, nr, gi)

    def hand(self, acc) -> None:
        """Hand a leaf its gradient, if it got one: through its hooks, into ``.grad``, then
        its post-accumulate hooks."""
        key = id(acc)
        g = self.leaf_grads.pop(key, None)
        if g is None:
            return
        self.leaf_nodes.pop(key, None)
        v = acc.variable
        g = _run_hooks(v._hooks, g)
        wanted = self.wanted
        if wanted is not None and (key, 0) in wanted:
            self.captured[(key, 0)] = g
        if self.accumulate and (wanted is None or (key, 0) in wanted):
            _accumulate(v, g, self.create_graph, self.owned)
            for h in list(acc.post_hooks or ()):
                h(v)

    def leaves(self, roots) -> None:
        """Hand the leaves not handed yet (the roots that are leaves) their gradients."""
        for r in roots:
            if isinstance(r, AccumulateGrad):
                self.leaf_nodes[id(r)] = r
        for key in list(self.leaf_grads):
            self.hand(self.leaf_nodes[key])

    def result(self, inputs, allow_unused) -> tuple:
        """The gradients of ``inputs`` (None for an unused one, when allowed)."""
        result = []
        for t in inputs:
            g = self.captured.get(_grad_key(t))
            if g is None and not allow_unused:
                raise RuntimeError(
                    "One of the differentiated Tensors appears to not have been used in the "
                    "graph. Set allow_unused=True if this is the desired behavior."
                )
            if g is not None and not self.create_graph:
                g = g.detach()
            result.append(g)
        return tuple(result)


def _accumulate(v, g, create_graph, owned: set) -> None:
    """Add ``g`` into leaf ``v``'s ``.grad``. ``owned``: the storages given to leaves in
    this pass."""
    if not create_graph:
        g = g.detach()
    found_none = v._grad is None
    if found_none:
        # .grad owns its memory, like PyTorch's: an expanded or sliced gradient, or one
        # already given to another leaf, is copied, so that accumulating (add_ below) or an
        # optimizer's in-place use never writes through an alias
        if not (g._contig and g._offset == 0 and id(g._storage) not in owned
                and g.numel() * g.dtype.itemsize == g._storage.nbytes):
            g = g.clone()
        owned.add(id(g._storage))
        v._grad = g
    else:
        v._grad = v._grad + g if create_graph else v._grad.add_(g)
    if runtime.observers:
        runtime.notify(registry.GradWrite(v, found_none))


def _add(a, b):
    if a is None:
        return b
    return a + b


def _apply_vjp(node, gs: list, create_graph):
    """The input gradients of ``node`` given its outputs' ``gs`` (None: no gradient). An op
    with one floating-point output gets that output's gradient and value; one with several
    gets tuples of them, a missing gradient as zeros."""
    op = node.op
    if op.vjp is None:
        raise RuntimeError(f"the derivative for '{op.name}' is not implemented")
    outs = node.outs
    if create_graph:
        # the outputs as graph tensors again, so second derivatives flow through them
        outs = tuple(_rebuilt(o, node, i) for i, o in enumerate(outs))
    args = node.inputs
    if not create_graph:
        args = tuple(a.detach() if isinstance(a, Tensor) else a for a in args)
    if sum(o.dtype.kind >= 2 for o in outs) == 1 and len(gs) >= 1:
        res = op.vjp(gs[0], *args, out=outs[0], **node.attrs)
    else:
        gs = tuple(zeros_like(o) if g is None and o.dtype.kind >= 2 else g
                   for g, o in zip(gs, outs))
        res = op.vjp(gs, *args, out=outs, **node.attrs)
    if not isinstance(res, (tuple, list)):
        res = (res,)
    return res


def _rebuilt(o, node, i):
    if not o.dtype.kind >= 2:
        return o
    r = o._view(o._shape, o._stride, o._offset)
    r.grad_fn, r.requires_grad = node, True
    if i:
        r._output_nr = i
    return r


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """torch.autograd.backward."""
    if isinstance(tensors, Tensor):
        tensors = (tensors,)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,) * len(tensors) if grad_tensors is None else (
            grad_tensors,)
    gs = []
    for t, g in zip(tensors, grad_tensors):
        if g is None:
            if t.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = ones_like(t)
        elif g.shape != t.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {g.shape} and output[0] has "
                f"a shape of {t.shape}."
            )
        gs.append(g)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        # accumulate into these leaves only (the rest of the graph is still walked)
        inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        for t in inputs:
            if t.grad_fn is not None:
                raise NotImplementedError("backward(inputs=...) accepts leaf tensors only")
        _run_backward(tensors, gs, retain_graph, create_graph, inputs=inputs,
                      allow_unused=True)
        return
    _run_backward(tensors, gs, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, only_inputs=True, materialize_grads=False):
    """torch.autograd.grad: gradients of outputs with respect to inputs, without touching
    ``.grad``."""
    if isinstance(outputs, Tensor):
        outputs = (outputs,)
    single = isinstance(inputs, Tensor)
    if single:
        inputs = (inputs,)
    inputs = tuple(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (
            grad_outputs,)
    gs = []
    for t, g in zip(outputs, grad_outputs):
        if g is None:
            if t.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = ones_like(t)
        gs.append(g)
    if retain_graph is None:
        retain_graph = create_graph
    res = _run_backward(outputs, gs, retain_graph, create_graph, inputs=inputs,
                        allow_unused=allow_unused or materialize_grads, accumulate=False)
    if materialize_grads:
        res = tuple(zeros_like(t) if r is None else r for r, t in zip(res, inputs))
    return res


class GradcheckError(RuntimeError):
    """Analytic and numerical gradients disagree."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, fast_mode: bool = False) -> bool:
    """torch.autograd.gradcheck: every analytic Jacobian (one backward per output element)
    against central finite differences (two forwards per input element)."""
    inputs = _as_tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    for i in diff:
        if inputs[i].dtype.is_complex:
            raise NotImplementedError("gradcheck of complex inputs is not supported: pass "
                                      "view_as_real(z) and call view_as_complex inside func")
        if inputs[i].dtype is not dt.float64:
            warnings.warn(f"Input #{i} requires gradient and is not a double precision "
                          "floating point; gradcheck may fail")

    def run(args):
        outs = _as_tuple(func(*args))
        return [o.detach().numpy().astype(np.float64).ravel() for o in outs
                if isinstance(o, Tensor) and o.dtype.is_floating_point]

    outs = _as_tuple(func(*inputs))
    if any(isinstance(o, Tensor) and o.dtype.is_complex for o in outs):
        raise NotImplementedError("gradcheck of complex outputs is not supported: return "
                                  "view_as_real(out)")
    outs = [o for o in outs if isinstance(o, Tensor) and o.dtype.is_floating_point]
    out_sizes = [o.numel() for o in outs]
    for i in diff:
        x = inputs[i]
        base = x.detach().numpy().astype(np.float64)
        n = base.size
        numeric = np.zeros((n, sum(out_sizes)))
        for j in range(n):
            cols = []
            for sgn in (1, -1):
                pert = base.copy().ravel()
                pert[j] += sgn * eps
                xt = _host_tensor(pert.reshape(base.shape), x).requires_grad_(True)
                args = list(inputs)
                args[i] = xt
                cols.append(np.concatenate(run(args)) if out_sizes else np.zeros(0))
            numeric[j] = (cols[0] - cols[1]) / (2 * eps)
        analytic = np.zeros((n, sum(out_sizes)))
        col = 0
        for o in outs:
            flat = o.reshape(-1)
            if not flat.requires_grad:  # independent of every input: a zero Jacobian
                col += o.numel()
                continue
            for k in range(o.numel()):
                go = zeros_like(flat)
                go[k] = 1.0
                (gx,) = grad(flat, (x,), grad_outputs=go, retain_graph=True, allow_unused=True)
                if gx is not None:
                    analytic[:, col] = gx.detach().numpy().astype(np.float64).ravel()
                col += 1
        if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
            if not raise_exception:
                return False
            bad = np.unravel_index(np.argmax(np.abs(analytic - numeric)), analytic.shape)
            raise GradcheckError(
                f"Jacobian mismatch for output {bad[1]} with respect to input {i} (element "
                f"{bad[0]}),\nnumerical:{numeric[bad]}\nanalytical:{analytic[bad]}\n"
                f"numerical Jacobian:\n{numeric.T}\nanalytical Jacobian:\n{analytic.T}"
            )
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """torch.autograd.gradgradcheck: gradcheck of the first-order gradients (built with
    create_graph=True) with respect to the inputs."""
    inputs = _as_tuple(inputs)
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    outs = _as_tuple(func(*inputs))
    if grad_outputs is None:
        grad_outputs = tuple(randn_like(o).detach() for o in outs)

    def first_order(*args):
        outs = _as_tuple(func(*args))
        xs = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
        gs = grad(outs, xs, grad_outputs=grad_outputs, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    del diff
    return gradcheck(first_order, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)


def _host_tensor(arr, like):
    return _from_host(arr, like.dtype, like.device)


registry.install(_Recording())

from . import forward_ad, functional  # noqa: E402,F401  (torch.autograd.forward_ad, .functional)
from .function import Function, FunctionCtx, once_differentiable  # noqa: E402,F401
