"""Recording a forward for export: a layer pushed on the dispatch stack keeps every op row
applied at the top level, and chosen nn.functional functions, replaced for the duration,
keep their calls whole (a convolution is one call instead of im2col and a product). Ops
applied inside a kept call or inside another op are part of it. The layer also hears the
runtime's events: a tensor filled with random numbers outside any op cannot be a constant
of the graph. Imports the runtime, the registry, Tensor, creation, autograd and nn
(functional, Module); never the onnx package.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyopencl as cl

from .. import runtime
from ..autograd import no_grad
from ..creation import tensor
from ..nn import functional as F
from ..nn.module import Module
from ..ops import registry
from ..tensor import Tensor
from .errors import OnnxExporterError

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(eq=False)
class Step:
    """One recorded call. ``kind`` "op": an op row (``args`` as given to apply(), ``attrs``
    its keywords); "fn": an nn.functional call (``args`` its arguments by parameter name,
    defaults applied; ``attrs`` empty). ``outs``: its results (None for one that is not a
    tensor); ``inplace``: it wrote ``outs[0]``, a tensor that existed before; ``where``:
    the module path and source line it was applied at."""

    kind: str
    name: str
    args: tuple | dict
    attrs: dict
    outs: tuple
    inplace: bool = False
    where: str = ""
    module: str = ""  # the path of the innermost module running
    twin: Step | None = None  # this step in the second run (export with dynamic axes)

    def tensors(self) -> list:
        """The tensor arguments, in order (a list argument's tensors in place)."""
        values = self.args.values() if isinstance(self.args, dict) else self.args
        return [t for t in flatten(list(values)) if isinstance(t, Tensor)]

    def statics(self) -> dict:
        """The arguments that are not tensors, and the attributes, by name."""
        if isinstance(self.args, dict):
            items = {k: v for k, v in self.args.items() if not _has_tensor(v)}
        else:
            items = {i: v for i, v in enumerate(self.args) if not isinstance(v, Tensor)}
        return {**items, **self.attrs}


@dataclass(eq=False)
class Trace:
    """A recorded forward: its steps, flattened input and output tensors, and the values of
    the tensors the steps read that no step made and that are neither inputs nor
    parameters (``constants``: id -> array, read when first used)."""

    steps: list
    inputs: list
    outputs: list
    constants: dict = field(default_factory=dict)


def flatten(value) -> list:
    """The leaves of nested tuples, lists and dicts, in order (None dropped)."""
    if isinstance(value, (tuple, list)):
        return [x for v in value for x in flatten(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in flatten(v)]
    return [] if value is None else [value]


def _has_tensor(value) -> bool:
    return any(isinstance(v, Tensor) for v in flatten(value))


def _source_line() -> str:
    """file:line of the innermost frame outside clgraph (the model's own code)."""
    f = sys._getframe(1)
    while f is not None and (f.f_code.co_filename.startswith(_PACKAGE)
                             or f.f_code.co_filename.startswith("<frozen")):
        f = f.f_back
    return "" if f is None else f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


class Recorder(registry.Interpreter):
    """Pushed for one forward: ``steps`` receives each top-level op and kept call.
    ``known``: ids of the tensors the graph names otherwise (inputs, parameters)."""

    def __init__(self, known: set):
        self.steps: list[Step] = []
        self.depth = 0
        self.modules: list[tuple[str, str]] = []  # (path, label) of the modules running
        self.seen = set(known)
        self.constants: dict = {}
        self.random: dict = {}  # buffer -> where random numbers were drawn into it

    def process(self, op, args, attrs, out):
        if self.depth:
            return self.inner.process(op, args, attrs, out)
        res = self.call(lambda: self.inner.process(op, args, attrs, out))
        self.add("op", op.name, args, attrs, res, out is not None)
        return res

    def observe(self, event) -> None:
        """Note the buffers random numbers are drawn into outside any op (an allocation or
        an upload makes a buffer new again)."""
        if isinstance(event, runtime.Launch) and not self.depth and "random" in event.name:
            where = self.where(self.modules[-1][1] if self.modules else "")
            for a in event.args:
                if isinstance(a, cl.MemoryObjectHolder):
                    self.random[a] = where
        elif isinstance(event, runtime.Alloc):
            self.random.pop(event.storage.buf, None)
        elif isinstance(event, runtime.Write):
            self.random.pop(event.buf, None)

    def call(self, run: Callable):
        self.depth += 1
        try:
            return run()
        finally:
            self.depth -= 1

    def add(self, kind: str, name: str, args, attrs, res, inplace: bool) -> None:
        module = self.modules[-1] if self.modules else ("", "")
        step = Step(kind, name, args, attrs, (), inplace, self.where(module[1]), module[0])
        for t in step.tensors():
            if id(t) not in self.seen:  # made outside the ops: its value now
                if t._storage.buf in self.random:
                    raise OnnxExporterError(
                        f"cg.onnx.export: the forward draws random numbers "
                        f"({self.random[t._storage.buf]}), which the graph would hold as one "
                        "fixed draw; export in eval mode, or leave the sampling out of the "
                        "exported forward")
                self.seen.add(id(t))
                with registry.eager():
                    self.constants[id(t)] = t.detach().numpy()
        outs = res if isinstance(res, (tuple, list)) else (res,)
        step.outs = tuple(r if isinstance(r, Tensor) else None for r in outs)
        if kind == "fn" and not inplace:
            ids = {id(t) for t in step.tensors()}
            step.inplace = any(r is not None and id(r) in ids for r in step.outs)
        self.seen.update(id(r) for r in step.outs if r is not None)
        self.steps.append(step)

    def where(self, module: str) -> str:
        line = _source_line()
        parts = [f"in {module}" if module else "", f"at {line}" if line else ""]
        return " ".join(p for p in parts if p) or "in the forward"


def _kept(rec: Recorder, name: str, fn: Callable, accepts: Callable) -> Callable:
    """``fn`` recorded as one call when ``accepts(arguments)`` holds."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if rec.depth:
            return fn(*args, **kwargs)
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        if not accepts(arguments):
            return fn(*args, **kwargs)
        res = rec.call(lambda: fn(*args, **kwargs))
        rec.add("fn", name, arguments, {}, res, False)
        return res

    return call


@contextlib.contextmanager
def _functions_kept(rec: Recorder, rules: dict):
    """nn.functional's ``rules`` (name -> accepts(arguments)) recorded whole in the block.
    Replacing the module's attributes reaches the layers (they call ``F.<name>``) and
    functional's own calls between its functions."""
    saved = {name: getattr(F, name) for name in rules}
    try:
        for name, accepts in rules.items():
            setattr(F, name, _kept(rec, name, saved[name], accepts))
        yield
    finally:
        for name, fn in saved.items():
            setattr(F, name, fn)


@contextlib.contextmanager
def _module_paths(rec: Recorder, model):
    """Keep the path of the module running (for messages) with forward hooks."""
    handles = []
    if isinstance(model, Module):
        for path, m in model.named_modules():
            label = f"{path} ({type(m).__name__})" if path else type(m).__name__

            def enter(module, args, entry=(path, label)):
                rec.modules.append(entry)

            def leave(module, args, out):
                rec.modules.pop()

            handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def record(model, args: tuple, kwargs: dict, known: set, rules: dict) -> Trace:
    """Run ``model(*args, **kwargs)`` once without gradients and record it."""
    rec = Recorder(known | {id(t) for t in flatten([args, kwargs]) if isinstance(t, Tensor)})
    with no_grad(), _module_paths(rec, model), _functions_kept(rec, rules), registry.push(rec):
        result = model(*args, **kwargs)
    inputs = [t for t in flatten([list(args), kwargs]) if isinstance(t, Tensor)]
    outputs = flatten(result)
    for o in outputs:
        if not isinstance(o, Tensor):
            raise TypeError(f"cg.onnx.export: the model returned a {type(o).__name__}; only "
                            "tensors (in tuples, lists or dicts) can be graph outputs")
    return Trace(rec.steps, inputs, outputs, rec.constants)


def resized(t: Tensor, sizes: dict) -> Tensor:
    """``t`` with dims resized (axis -> size) by repeating its entries cyclically: integer
    inputs (indices) stay in range."""
    a = t.detach().numpy()
    for axis, n in sizes.items():
        a = np.take(a, np.arange(n) % a.shape[axis], axis=axis)
    return tensor(a, dtype=t.dtype, device=t.device)
