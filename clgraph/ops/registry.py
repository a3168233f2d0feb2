"""The op registry: every op is one OpDef row (numpy reference, dtype/shape rule, OpenCL
expression or kernel, VJP) and apply() is the single dispatch point.

Dispatch is a stack of interpreters. apply() hands each op to the top one; each layer does
its part and hands the op to the layer below (``inner``); the bottom one runs it (the
row's ``run``, which families supply). Higher layers add theirs: autograd installs its
layer at import (an op whose input requires grad gets its node), a compile trace pushes
one for the duration of a traced call. A pushed layer also observes the events lower
layers report through runtime.notify (allocations, launches, transfers, index checks,
gradient writes, optimizer steps). Imports the runtime and the device layer only."""

from __future__ import annotations

import contextlib
import warnings
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import dtypes, runtime
from ..device import default_device  # noqa: F401  (ops modules reach it through registry)
from ..runtime import launch  # noqa: F401  (ops modules launch through registry)

REGISTRY: dict[str, "OpDef"] = {}
EXPORTS: dict[str, "Export"] = {}  # public name -> its function and forms (clgraph._bindings)
Tensor: Any = None  # installed by clgraph.tensor (ops must not import it at module load)


@dataclass(frozen=True)
class Variants:
    """The public forms of an op, declared where it is defined and generated at import by
    clgraph._bindings: the function ``cg.<name>``; the method ``Tensor.<name>``; the in-place
    method ``Tensor.<name>_`` (the function with ``out=self``: one kernel) and, where PyTorch
    has it, the same as a function ``cg.<name>_`` (``inplace_function``); operator dunders
    (``("add", "radd", "iadd")``: ``__add__``, reflected, in place); the ``nn.functional``
    alias (with PyTorch's ``inplace=`` argument for ops that have an in-place form); other
    public names; and an ``nn.Module`` class that applies it (activations)."""

    function: bool = True
    method: bool = True
    inplace: bool = False
    inplace_function: bool = False
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


def resize_out(out, shape: tuple, name: str):
    """An ``out=`` tensor whose shape is not the result's: resized to it as PyTorch does,
    with PyTorch's warning when it held elements (an empty ``out`` is the usual idiom)."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if out._shape != shape:
        if out.numel():
            warnings.warn(f"{name}(): an output with one or more elements was resized since it "
                          f"had shape {list(out._shape)}, which does not match the required "
                          f"output shape {list(shape)}. This behavior is deprecated in "
                          f"PyTorch; resize it to zero elements first (t.resize_(0)) to reuse "
                          f"a tensor as out=.", UserWarning, stacklevel=3)
        out.resize_(shape)
    return out


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
    # under autocast (clgraph.amp): "low" (floating operands cast to the region's low
    # dtype: products), "float32" (cast up: ops that need range or precision) or None
    autocast: str | None = None

    def __repr__(self):
        return f"<op {self.name}>"


@dataclass(frozen=True)
class Reduction:
    """What a reduction row adds: its kernel ``kind`` (a fold of codegen/reduce.py),
    ``accumulation(x dtype, attrs, device) -> Accumulation`` (accumulator and output dtypes,
    the fold's expressions; ops/reduce.py), ``empty``: the op's name in PyTorch's error
    for an empty reduced range (ops without an identity) and ``mean``: the op also returns
    the mean, which the same kernel stores (a welford row: var_mean)."""

    kind: str
    accumulation: Callable
    empty: str | None = None
    mean: bool = False


def register(op: OpDef) -> OpDef:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name} registered twice")
    REGISTRY[op.name] = op
    return op


# --- dispatch -----------------------------------------------------------------------------


class Interpreter:
    """One layer of dispatch. ``process`` handles an op application (``args`` as given to
    apply(), ``attrs`` its keywords, ``out`` the tensor an in-place op writes, or None) and
    returns its result, normally by handing it to ``inner``, the layer below. ``observe``
    hears the events lower layers report (runtime.notify) while the layer is pushed."""

    inner: Interpreter

    def process(self, op: OpDef, args: tuple, attrs: dict, out):
        return self.inner.process(op, args, attrs, out)

    def observe(self, event) -> None:
        pass


class _Eager(Interpreter):
    """The bottom layer: run the op now; an in-place op bumps its output's version."""

    def process(self, op, args, attrs, out):
        try:
            res = op.run(op, args, attrs, out)
        except runtime.OutOfMemoryError as e:
            if getattr(e, "op", None) is not None:  # an op inside this one named it
                raise
            raise _naming(e, op, args) from None
        if out is not None:
            runtime.bump(out._storage)
        return res


def _naming(e, op, args):
    """Out of memory ``e`` again, naming the op that allocated and its operands' shapes."""
    shapes = ", ".join(str(list(a._shape)) for a in args if isinstance(a, Tensor))
    err = runtime.OutOfMemoryError(f"{op.name} (operands of shapes {shapes or 'none'}): {e}")
    err.op = op.name
    return err


_installed: list[Interpreter] = [_Eager()]  # the permanent layers, bottom first
_top: Interpreter = _installed[0]  # where apply() hands an op


def apply(op: OpDef, *args, out=None, **attrs):
    """Run ``op`` on tensors/scalars ``args`` through the interpreter stack: eagerly, with
    its autograd node when grad mode is on and an input requires grad, recorded when a
    trace is pushed. With ``out`` the result is written into that tensor (an in-place
    op). An op meeting a complex operand, output or target dtype goes to ops/complex.py,
    which runs it as real ops."""
    for a in args:
        c = a.__class__
        if c in _PLAIN:
            continue
        if isinstance(a, Tensor):
            if a.dtype.kind == 3:
                return complex_dispatch(op, args, attrs, out)
        elif c is complex or isinstance(a, complex) or getattr(
                getattr(a, "dtype", None), "kind", None) == "c":
            return complex_dispatch(op, args, attrs, out)
    if out is not None and out.dtype.kind == 3 or attrs and attrs.get("dtype") in _COMPLEX:
        return complex_dispatch(op, args, attrs, out)
    return _top.process(op, args, attrs, out)


def apply_inner(op: OpDef, args, attrs, out):
    """apply() without the complex check (ops/complex.py runs views and real ops)."""
    return _top.process(op, args, attrs, out)


_PLAIN = frozenset((int, float, bool, type(None), str, tuple))
_COMPLEX = dtypes.COMPLEX
complex_dispatch: Callable = None  # installed by ops/complex.py


def install(layer: Interpreter) -> None:
    """Add a permanent layer above the installed ones (autograd, at import): it processes
    every op and hears no events."""
    global _top
    assert _top is _installed[-1], "layers are installed at import, before any push"
    layer.inner = _installed[-1]
    _installed.append(layer)
    _top = layer


@contextlib.contextmanager
def push(layer: Interpreter):
    """``with push(layer)``: ``layer`` processes every op applied in the block (before the
    layers below it) and observes every event reported in it."""
    global _top
    layer.inner, _top = _top, layer
    runtime.observers = runtime.observers + (layer,)
    try:
        yield layer
    finally:
        _top = layer.inner
        runtime.observers = tuple(o for o in runtime.observers if o is not layer)


def pushed() -> bool:
    """Whether a layer (a compile trace) is pushed above the installed ones."""
    return _top is not _installed[-1]


@contextlib.contextmanager
def eager():
    """Run the block with the installed layers only: the pushed ones (a trace) neither
    process its ops nor observe its events."""
    global _top
    top, observers = _top, runtime.observers
    _top, runtime.observers = _installed[-1], ()
    try:
        yield
    finally:
        _top, runtime.observers = top, observers


# The events the ops layer reports (runtime.notify, when runtime.observers is not empty):
# an index tensor checked on the host (``check(tensor)`` repeats the check for another
# index: False when it breaks what the first assumed); the host reads between
# IndexRead(True) and IndexRead(False) serve such a check, not the program's data flow;
# a leaf tensor's ``.grad`` set or accumulated (``found_none``: for an accumulation,
# whether it found no gradient; None for an assignment, which does not depend on it).
IndexCheck = namedtuple("IndexCheck", "index check")
IndexRead = namedtuple("IndexRead", "active")
GradWrite = namedtuple("GradWrite", "tensor found_none")
