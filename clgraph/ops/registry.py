"""The op registry: every op is one OpDef row (numpy reference, dtype/shape rule, OpenCL
expression or kernel, VJP) and apply() is the single dispatch point. Families (elementwise,
reduce, movement, linalg, index) supply ``run``; a recorder installed by a higher layer
(tracing) may intercept apply()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

REGISTRY: dict[str, "OpDef"] = {}
EXPORTS: dict[str, "Export"] = {}  # public name -> its function and forms (clgraph._bindings)
Tensor: Any = None  # installed by clgraph.tensor (ops must not import it at module load)
_recorder: Callable | None = None


@dataclass(frozen=True)
class Variants:
    """The public forms of an op, declared where it is defined and generated at import by
    clgraph._bindings: the function ``cg.<name>``; the method ``Tensor.<name>``; the in-place
    method ``Tensor.<name>_`` (the function with ``out=self``: one kernel); operator dunders
    (``("add", "radd", "iadd")``: ``__add__``, reflected, in place); the ``nn.functional``
    alias (with PyTorch's ``inplace=`` argument for ops that have an in-place form); other
    public names; and an ``nn.Module`` class that applies it (activations)."""

    function: bool = True
    method: bool = True
    inplace: bool = False
    dunders: tuple[str, ...] = ()
    functional: bool = False
    aliases: tuple[str, ...] = ()
    module: str | None = None


@dataclass(frozen=True)
class Export:
    name: str
    fn: Callable
    variants: Variants


def public(fn: Callable | None = None, /, **forms):
    """Declare a hand-written function public: ``@public`` (function and method) or
    ``@public(inplace=True, dunders=("add", "radd", "iadd"), ...)`` (Variants' fields)."""
    def mark(f):
        export(f.__name__, f, Variants(**forms))
        return f

    return mark(fn) if fn is not None else mark


class _Functions:
    """The public functions by attribute (``functions.exp``), for library code above the
    ops (nn.functional) that calls generated ones."""

    def __getattr__(self, name: str) -> Callable:
        try:
            return EXPORTS[name].fn
        except KeyError:
            raise AttributeError(name) from None


functions = _Functions()


def export(name: str, fn: Callable, variants: Variants) -> None:
    if name in EXPORTS:
        raise ValueError(f"public name {name} declared twice")
    EXPORTS[name] = Export(name, fn, variants)


@dataclass(frozen=True, eq=False)
class OpDef:
    """One op. ``run(args, attrs, out)`` executes it eagerly and returns Tensor(s)."""

    name: str
    family: str
    ref: Callable | None
    run: Callable
    vjp: Callable | None = None
    expr: Any = None  # elementwise: template str, or callable(compute dtype) -> str
    rule: Callable | None = None  # elementwise: (common dtype, arg dtypes, attrs) -> (casts, out)
    argnames: tuple[str, ...] = ()
    vec: bool = True  # safe on explicit OpenCL vector types
    promote: slice = field(default_factory=lambda: slice(None))
    differentiable: bool = True
    # autograd: indices of the inputs the VJP reads (None: all), or ``needs(which inputs
    # need gradients) -> those indices``; whether it reads the output
    saves: tuple[int, ...] | None = None
    needs: Callable | None = None
    saves_out: bool = True
    view_rule: Callable | None = None  # view ops: (x, **attrs) -> (shape, stride, offset)
    reduction: "Reduction | None" = None  # reductions and row ops (softmax, cumsum)

    def __repr__(self):
        return f"<op {self.name}>"


@dataclass(frozen=True)
class Reduction:
    """What a reduction row adds: its kernel ``kind`` (a fold of codegen/reduce.py),
    ``plan(x dtype, attrs, device) -> dict`` (accumulator and output dtypes, the fold's
    expressions) and ``empty``: the op's name in PyTorch's error for an empty reduced range
    (ops without an identity)."""

    kind: str
    plan: Callable
    empty: str | None = None


def register(op: OpDef) -> OpDef:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name} registered twice")
    REGISTRY[op.name] = op
    return op


def apply(op: OpDef, *args, out=None, **attrs):
    """Run ``op`` on tensors/scalars ``args``: eagerly, or into the active recorder. With
    ``out`` the result is written into that tensor (an in-place op). When grad mode is on
    and an input requires grad, the result gets its autograd node."""
    if _recorder is not None:
        return _recorder(op, args, attrs, out)
    return execute(op, args, attrs, out)


def execute(op: OpDef, args, attrs: dict, out=None):
    """apply() without the recorder: run the op now (with its autograd node)."""
    if _autograd is not None and _autograd.is_grad_enabled() and (
        _autograd.needs_grad(args) or (out is not None and out.requires_grad)
    ):
        return _apply_with_grad(op, args, attrs, out)
    res = op.run(op, args, attrs, out)
    if out is not None:
        out._storage.version += 1
    return res


def _apply_with_grad(op, args, attrs, out):
    if out is None:
        res = op.run(op, args, attrs, None)
        first = res[0] if isinstance(res, tuple) else res
        _autograd.record(op, args, attrs, first)
        return res
    if out.requires_grad and out.grad_fn is None:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation."
        )
    if out._base is not None and out._base.requires_grad and out._base.grad_fn is None:
        raise RuntimeError(
            "a view of a leaf Variable that requires grad is being used in an in-place "
            "operation."
        )
    base = out._base
    if base is not None and not (base._contig and base._offset == 0):
        raise RuntimeError(
            "in-place operations on views of non-contiguous tensors are not supported when "
            "gradients are recorded; use an out-of-place operation (e.g. torch.where or "
            "torch.cat) instead"
        )
    # In place: the node's inputs are the pre-op tensors; ``out`` then stands for the new
    # value. Inputs the VJP reads must not be ``out`` itself: the version check catches it.
    node_args = tuple(a if a is not out else out._view(out._shape, out._stride, out._offset)
                      for a in args)
    for a, b in zip(args, node_args):
        if a is out:
            b.grad_fn, b.requires_grad = out.grad_fn, out.requires_grad
    versions_before = [a._storage.version if isinstance(a, Tensor) else None
                       for a in node_args]
    res = op.run(op, args, attrs, out)
    out._storage.version += 1
    if not op.differentiable or not _autograd.needs_grad(args):
        # the new value depends on nothing that needs a gradient (fill_, zero_, a copy of a
        # constant): ``out`` becomes a constant, and its base learns the written region
        out.grad_fn, out.requires_grad = None, False
        if base is not None and base.requires_grad:
            _autograd.rebase_on_view_write(base, out)
        return res
    node = _autograd.Node(op, node_args, attrs, out)
    node.versions = tuple(v if n is not None else None
                          for v, n in zip(versions_before, node.versions))
    if not out.dtype.is_floating_point:
        return res
    out.grad_fn = node
    out.requires_grad = True
    if base is not None:
        _autograd.rebase_on_view_write(base, out)
    return res


def default_device():
    from ..device import default_device as _d

    return _d()


from ..runtime import launch  # noqa: E402,F401  (ops modules launch through registry)

_autograd: Any = None  # clgraph.autograd installs itself here (a higher layer)
