"""torch.autograd.Function: an operation whose forward and backward are Python code.

``Function.apply`` runs the subclass's ``forward`` under no_grad (its ops record no graph
of their own) and gives the outputs one node: an instance of the subclass's
``<Name>Backward`` class, which is also the ``ctx`` the forward saw. The node's VJP is the
user's ``backward``; written with clgraph ops it is itself differentiable
(create_graph=True) and a compile trace records it like any VJP. A node made while an
interpreter is pushed is announced to it (runtime.notify(FunctionNode)): a trace learns
that the node belongs to the traced call.

Saved tensors keep the storage version they had when the forward returned; reading
``ctx.saved_tensors`` after an in-place change raises PyTorch's RuntimeError. A saved
output is kept as the node's own output (no reference cycle through the tensor).

Imports the autograd engine (this package), creation and Tensor; nothing above them.
"""

from __future__ import annotations

import functools
import inspect
from collections import namedtuple

from .. import runtime
from ..creation import zeros_like
from ..ops import registry
from ..tensor import Tensor
from . import (
    Node,
    _check_in_place,
    _freed,
    _rebuilt,
    _set_grad_fn,
    _take_grad_fn,
    _tname,
    is_grad_enabled,
    no_grad,
    rebase_on_view_write,
    record,
)

# event: a custom Function's node was made (a compile trace keeps it as its own)
FunctionNode = namedtuple("FunctionNode", "node")

_FUNCTION = registry.OpDef("function", "autograd", None, None, None, saves=(), saves_out=False)


class FunctionCtx:
    """The ``ctx`` of ``forward`` / ``setup_context``: it saves tensors and flags for
    ``backward`` and holds any other attribute set on it."""

    _to_save: tuple = ()
    _dirty: tuple = ()
    _non_differentiable: tuple = ()
    _materialize = True
    needs_input_grad: tuple = ()

    def save_for_backward(self, *tensors) -> None:
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} "
                                f"is of type {type(t).__name__}")
        self._to_save = tensors

    def mark_dirty(self, *tensors) -> None:
        """The inputs ``forward`` modified in place (they must be returned as outputs)."""
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        """Outputs that get no gradient (their incoming gradient is zeros or None)."""
        self._non_differentiable = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """Whether ``backward`` receives zeros (True, the default) or None for an output
        that got no gradient."""
        self._materialize = bool(value)


class BackwardCFunction(FunctionCtx, Node):
    """The node (and ctx) of one application of a custom Function; ``_forward_cls`` is the
    Function. PyTorch's name, as is each subclass's: ``<Function name>Backward``."""

    _forward_cls: type = None

    def __init__(self):
        self.inputs = None
        self._saved = None  # (kind "in" / "out" / None, tensor or output index, version)
        self._released = False
        self._out_index = ()  # per forward output: its index among the node's outputs

    def name(self) -> str:
        return type(self).__name__

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise _freed()
        if self._saved is None:  # inside forward or setup_context
            return tuple(self._to_save)
        res = []
        for kind, x, version in self._saved:
            if kind is None:
                res.append(None)
                continue
            t = x
            if kind == "out":
                # as the node's output again when differentiated (create_graph=True)
                t = _rebuilt(self.outs[x], self, x) if is_grad_enabled() else self.outs[x]
            if t._storage.version != version:
                raise _modified(x if kind == "in" else self.out_refs[x]() or t, version)
            res.append(t)
        return tuple(res)

    saved_variables = saved_tensors

    def input_grads(self, gs: list, create_graph: bool):
        grads = []
        for k in self._out_index:
            g = None if k is None else gs[k]
            if g is None and k is not None and self._materialize:
                g = zeros_like(self.outs[k])
            grads.append(g)
        res = self._forward_cls._backward_fn()(self, *grads)
        return self._checked(res)

    def _checked(self, res) -> tuple:
        """The backward's gradients, one per forward input, with PyTorch's errors for a
        wrong count, a gradient for a non-tensor input or a shape that does not fit."""
        res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
        n = len(self.in_meta)
        if len(res) > n and all(r is None for r in res[n:]):
            res = res[:n]
        if len(res) != n:
            raise RuntimeError(f"function {self.name()} returned an incorrect number of "
                               f"gradients (expected {n}, got {len(res)})")
        out = []
        for i, (g, meta, nxt) in enumerate(zip(res, self.in_meta, self.next)):
            if g is not None and meta is None:
                raise RuntimeError(
                    f"function {self.name()} returned a gradient different than None at "
                    f"position {i + 1}, but the corresponding forward input was not a Variable")
            if g is None or nxt is None:
                out.append(None)
                continue
            if not isinstance(g, Tensor):
                raise TypeError(f"function {self.name()} returned a gradient of type "
                                f"{type(g).__name__} at position {i + 1}; expected a Tensor")
            if g._shape != meta[0] and not _expandable(meta[0], g._shape):
                raise RuntimeError(
                    f"Function {self.name()} returned an invalid gradient at index {i} - got "
                    f"{list(g._shape)} but expected shape compatible with {list(meta[0])}")
            out.append(g)
        return tuple(out)

    def release(self) -> None:
        super().release()
        self._saved = None
        self._released = True


def _modified(t, version):
    where = f", which is output {t._output_nr} of {t.grad_fn.name()}," if t.grad_fn else ""
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [{_tname(t)} {list(t.shape)}]{where} is at version "
        f"{t._storage.version}; expected version {version} instead. Hint: the operation that "
        "modified it ran after it was saved for backward.")


def _expandable(shape, to) -> bool:
    """``shape`` broadcasts to ``to`` (a gradient of that shape sums back to it)."""
    return len(shape) <= len(to) and all(
        s == t or s == 1 for s, t in zip(reversed(shape), reversed(to)))


class Function:
    """torch.autograd.Function: subclass it with static ``forward`` and ``backward``
    methods (and optionally ``setup_context``) and call ``apply``."""

    _backward_cls = BackwardCFunction

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._backward_cls = type(cls.__name__ + "Backward", (BackwardCFunction,),
                                 {"_forward_cls": cls})

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. Please "
            "use new-style autograd function with static forward method. (Example: "
            "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")

    @staticmethod
    def forward(*args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward "
                                  "mode AD.")

    vjp = backward

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")

    @classmethod
    def _backward_fn(cls):
        if cls.backward is not Function.backward:
            return cls.backward
        return cls.vjp

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on ``args`` and connect its outputs to autograd."""
        new_style = cls.setup_context is not Function.setup_context
        if new_style:
            args, kwargs = _bind(cls.forward, args, kwargs), {}
        ctx = cls._backward_cls()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        executable = is_grad_enabled() and any(ctx.needs_input_grad)
        with no_grad():
            if new_style:
                out = cls.forward(*args)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        return _wrap(ctx, args, out, executable)


def _bind(fn, args, kwargs) -> tuple:
    """``args`` and ``kwargs`` as the positional arguments of ``fn``, defaults filled in
    (a new-style forward: its inputs are what setup_context and backward see)."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.args


def _contains(ts, t) -> bool:
    return any(x is t for x in ts)


def _wrap(ctx, args, out, executable: bool):
    """The outputs of ``forward``, connected to the node ``ctx`` (PyTorch's _wrap_outputs):
    an input returned unchanged comes back as a view, a dirty input takes the node (its
    old value becomes the node's input), non-differentiable outputs stay constants."""
    single = not isinstance(out, tuple)
    outs = (out,) if single else out
    for d in ctx._dirty:
        if not _contains(outs, d):
            raise RuntimeError(
                "Some elements marked as dirty during the forward method were not returned "
                "as output. The inputs that are modified inplace must all be outputs of the "
                "Function.")
    tensor_args = [a for a in args if isinstance(a, Tensor)]
    finals, diff = [], []
    for o in outs:
        if not isinstance(o, Tensor):
            finals.append(o)
            continue
        is_input, dirty = _contains(tensor_args, o), _contains(ctx._dirty, o)
        if not (executable and o.dtype.is_floating_point
                and not _contains(ctx._non_differentiable, o)):
            if is_input and not (dirty and not o.requires_grad):
                o = o.detach()  # an alias of the input, which keeps its own graph
            elif o.requires_grad:
                o.detach_()
        else:
            if dirty:
                _check_in_place(o)
            elif is_input:
                o = o.detach()
            diff.append(o)
        finals.append(o)
    if executable:
        _connect(ctx, args, outs, finals, diff)
    return finals[0] if single else tuple(finals)


def _connect(ctx, args, outs, finals, diff) -> None:
    """Make ``ctx`` the node of the differentiable outputs ``diff``; record what it saved."""
    node_args = list(args)
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and _contains(ctx._dirty, a):
            # the node's input is the value before the forward wrote it
            node_args[i] = a._view(a._shape, a._stride, a._offset)
            _take_grad_fn(node_args[i], a)
    tensors = [f for f in finals if isinstance(f, Tensor)]
    Node.__init__(ctx, _FUNCTION, tuple(node_args), {}, tuple(tensors))
    index = {id(t): k for k, t in enumerate(tensors)}
    ctx._out_index = tuple(index.get(id(f)) for f in finals)
    for t in diff:
        k = index[id(t)]
        if _contains(ctx._dirty, t):
            _set_grad_fn(t, ctx)
            if t._base is not None:
                rebase_on_view_write(t._base, t)
        else:
            t.grad_fn, t.requires_grad = ctx, True
        if k:
            t._output_nr = k
    ctx._saved = tuple(_saved_entry(ctx, t, args, outs, index, finals) for t in ctx._to_save)
    ctx._to_save = ()
    if runtime.observers:
        runtime.notify(FunctionNode(ctx))


def _saved_entry(ctx, t, args, outs, index, finals) -> tuple:
    """How a saved tensor is kept: an output (a dirty input too) as the node's output
    number, anything else as the tensor itself; with its version now."""
    if t is None:
        return None, None, None
    for o, f in zip(outs, finals):
        if o is t and (_contains(ctx._dirty, t) or not _contains(args, t)):
            return "out", index[id(f)], t._storage.version
    return "in", t, t._storage.version


def _raise_twice(g, *args, out):
    raise RuntimeError("trying to differentiate twice a function that was marked with "
                       "@once_differentiable")


_DELAYED_ERROR = registry.OpDef("delayed_error", "autograd", None, None, _raise_twice,
                                saves=(), saves_out=False)


def once_differentiable(fn):
    """Decorate a Function's ``backward`` that is not itself differentiable: it runs under
    no_grad, and differentiating its results (create_graph=True) raises."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            outputs = fn(ctx, *args)
        if not is_grad_enabled():
            return outputs
        needing = tuple(a for a in args if isinstance(a, Tensor) and a.requires_grad)
        if not needing:
            return outputs
        single = not isinstance(outputs, tuple)
        wrapped = tuple(
            record(_DELAYED_ERROR, needing, {}, o.detach())
            if isinstance(o, Tensor) and o.dtype.is_floating_point else o
            for o in ((outputs,) if single else outputs))
        return wrapped[0] if single else wrapped

    return wrapper
