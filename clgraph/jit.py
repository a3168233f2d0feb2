"""torch.jit on clgraph: TorchScript's entry points, so that code written for it runs.

clgraph has no TorchScript: ``script`` returns the function or module itself (marked, so
that ``isinstance(m, ScriptModule)`` holds); ``trace`` checks the example inputs and outputs
as torch.jit.trace does and returns a callable that runs ``cg.compile`` of the function
(``TracedModule`` for a module: it shares the module's parameters and state dict).
``save``/``load`` pickle the object whole with cg.save. ``fork`` runs its function at once.
Imports compile, nn.module, serialization, testing and tensor; nothing imports it but the
package."""

from __future__ import annotations

import contextlib
import functools
import typing
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from . import serialization, testing
from .compile import compile as _compile
from .nn.module import Module
from .tensor import Tensor

__all__ = ["Attribute", "Error", "Final", "Future", "ScriptFunction", "ScriptModule",
           "TracedModule", "TracerWarning", "annotate", "export", "fork", "freeze", "ignore",
           "interface", "is_scripting", "is_tracing", "load", "optimize_for_inference",
           "save", "script", "script_if_tracing", "script_method", "trace", "trace_module",
           "unused", "wait"]

Final = typing.Final


class Error(RuntimeError):
    """torch.jit.Error."""


class TracerWarning(Warning):
    """torch.jit.TracerWarning: the trace may not match what the function does."""


# objects script() returned or load() gave back: what isinstance(x, ScriptModule /
# ScriptFunction) recognises besides the traced wrappers
_scripted: weakref.WeakSet = weakref.WeakSet()
_tracing = 0  # > 0 while trace() runs its example inputs


def is_scripting() -> bool:
    """False: clgraph never compiles Python to TorchScript."""
    return False


def is_tracing() -> bool:
    """True while ``trace`` runs the function on its example inputs."""
    return _tracing > 0


@contextlib.contextmanager
def _tracing_run():
    global _tracing
    _tracing += 1
    try:
        yield
    finally:
        _tracing -= 1


def _mark(obj):
    with contextlib.suppress(TypeError):
        _scripted.add(obj)
    return obj


class _ScriptMeta(type):
    """isinstance also recognises what script() returned (a plain module or function)."""

    def __instancecheck__(cls, obj) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        try:
            marked = obj in _scripted
        except TypeError:
            return False
        return marked and (isinstance(obj, Module) == (cls is not ScriptFunction))


class ScriptModule(Module, metaclass=_ScriptMeta):
    """torch.jit.ScriptModule: an nn.Module; subclassing it gives an ordinary module."""


class ScriptFunction(metaclass=_ScriptMeta):
    """torch.jit.ScriptFunction: what ``trace`` returns for a function. Calls run
    ``cg.compile`` of it; ``graph`` and ``code`` give the compiled graph and OpenCL sources
    for the example inputs."""

    def __init__(self, fn: Callable, example_inputs: tuple = ()):
        self._fn, self._example = fn, example_inputs
        self._compiled = _compile(fn)
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    @property
    def graph(self):
        return self._compiled.graph(*self._example)

    @property
    def code(self) -> str:
        return "\n\n".join(self._compiled.kernels(*self._example))

    def __reduce__(self):
        return ScriptFunction, (self._fn,)


def script(obj, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """torch.jit.script: returns ``obj`` itself (a function, module or class), which runs
    as before; ``isinstance(obj, ScriptModule / ScriptFunction)`` is then True. Wrap it in
    ``cg.compile`` for fused kernels."""
    if isinstance(obj, (Module, ScriptFunction)) or callable(obj):
        return _mark(obj)
    raise TypeError(f"{type(obj)} is a built-in class")


def script_method(fn):
    return fn


def script_if_tracing(fn):
    return fn


def ignore(drop=False, **kwargs):
    """torch.jit.ignore: the function, unchanged (as a decorator with or without
    arguments)."""
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def interface(obj):
    return obj


def annotate(the_type, the_value):
    """torch.jit.annotate: ``the_value``."""
    return the_value


class Attribute(typing.NamedTuple):
    value: Any
    type: Any


# --- trace ----------------------------------------------------------------------------------


def _type_name(x) -> str:
    """The TorchScript spelling of a value's type, for trace's error messages."""
    if isinstance(x, Tensor):
        return "Tensor"
    if isinstance(x, tuple):
        return f"Tuple[{', '.join(_type_name(v) for v in x)}]"
    if isinstance(x, list):
        return f"List[{_type_name(x[0]) if x else 'Tensor'}]"
    if isinstance(x, dict):
        k, v = next(iter(x.items())) if x else ("", None)
        return f"Dict[{type(k).__name__}, {_type_name(v) if x else 'Tensor'}]"
    return type(x).__name__


def _only_tensors(x) -> bool:
    """Whether ``x`` is a tensor or nested lists, tuples and dicts of tensors."""
    if isinstance(x, Tensor):
        return True
    if isinstance(x, (list, tuple)):
        return all(_only_tensors(v) for v in x)
    if isinstance(x, dict):
        return all(_only_tensors(v) for v in x.values())
    return False


def _flat(x) -> list:
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _flat(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _flat(v)]
    return [x]


def _example_tuple(example_inputs) -> tuple:
    if isinstance(example_inputs, (Tensor, dict)):
        example_inputs = (example_inputs,)
    elif not isinstance(example_inputs, tuple):
        example_inputs = tuple(example_inputs)
    if not _only_tensors(example_inputs):
        raise RuntimeError(f"Type '{_type_name(example_inputs)}' cannot be traced. Only Tensors "
                           "and (possibly nested) Lists, Dicts, and Tuples of Tensors can be "
                           "traced")
    return example_inputs


def _check_output(out, strict: bool) -> None:
    if not _only_tensors(out):
        raise RuntimeError("Only tensors, lists, tuples of tensors, or dictionary of tensors can "
                           "be output from traced functions")
    if strict and isinstance(out, (list, dict)):
        warnings.warn(TracerWarning(
            f"Encountering a {type(out).__name__} at the output of the tracer might cause the "
            "trace to be incorrect, this is only valid if the container structure does not "
            "change based on the module's inputs. Consider using a constant container "
            "instead (e.g. for `list`, use a `tuple` instead. for `dict`, use a `NamedTuple` "
            "instead). If you absolutely need this and know the side effects, pass "
            "strict=False to trace() to allow this behavior."), stacklevel=3)


def _compare(traced_out, eager_out, tolerance: float) -> None:
    """A TracerWarning per output of the compiled run that differs from the eager run."""
    for i, (a, b) in enumerate(zip(_flat(traced_out), _flat(eager_out))):
        try:
            testing.assert_close(a.detach(), b.detach(), rtol=tolerance, atol=tolerance,
                                 equal_nan=True)
        except AssertionError as e:
            warnings.warn(TracerWarning(
                f"Output nr {i + 1}. of the traced function does not match the corresponding "
                f"output of the Python function. Detailed error:\n{e}"), stacklevel=4)


def _traced_call(fn, compiled, args: tuple, kwargs: dict, check_trace: bool, check_inputs,
                 tolerance: float, strict: bool) -> None:
    """Run ``fn`` eagerly and ``compiled`` on the example (and ``check_inputs``) and compare."""
    with _tracing_run():
        eager = fn(*args, **kwargs)
        _check_output(eager, strict)
        if not check_trace:
            return
        _compare(compiled(*args, **kwargs), eager, tolerance)
        for extra in check_inputs or ():
            extra = _example_tuple(extra)
            _compare(compiled(*extra), fn(*extra), tolerance)


def trace(func, example_inputs=None, optimize=None, check_trace: bool = True,
          check_inputs=None, check_tolerance: float = 1e-5, strict: bool = True,
          _force_outplace: bool = False, _module_class=None, _compilation_unit=None,
          example_kwarg_inputs: dict | None = None, _store_inputs: bool = True):
    """torch.jit.trace: checks the example inputs (tensors or nested containers of them),
    runs ``func`` on them and checks its outputs alike, and returns a ScriptFunction (a
    TracedModule for a module) whose calls run ``cg.compile(func)``. With ``check_trace``
    the compiled call's outputs on the example (and ``check_inputs``) are compared with the
    eager ones: a TracerWarning for each that differs. Unlike TorchScript, the compiled
    callable re-traces for new input shapes and does not freeze Python control flow."""
    if isinstance(func, (ScriptModule, ScriptFunction)):
        warnings.warn("The input to trace is already a ScriptModule, tracing it is a no-op. "
                      "Returning the object as is.", stacklevel=2)
        return func
    if isinstance(func, Module):
        inputs = example_inputs if example_kwarg_inputs is None else example_kwarg_inputs
        return trace_module(func, {"forward": inputs}, None, check_trace,
                            [{"forward": c} for c in check_inputs or ()], check_tolerance,
                            strict, example_inputs_is_kwarg=example_kwarg_inputs is not None)
    kwargs = {}
    if example_kwarg_inputs is not None:
        if not isinstance(example_kwarg_inputs, dict):
            raise RuntimeError("example_kwarg_inputs should be a dict")
        kwargs, args = example_kwarg_inputs, ()
        _example_tuple(tuple(kwargs.values()))
    else:
        args = _example_tuple(example_inputs)
    traced = ScriptFunction(func, args if _store_inputs else ())
    _traced_call(func, traced._compiled, args, kwargs, check_trace, check_inputs,
                 check_tolerance, strict)
    return traced


class TracedModule(ScriptModule):
    """What ``trace`` returns for a module: shares the module's parameters, buffers and
    submodules (same state dict keys); ``forward`` (and each other traced method) runs
    ``cg.compile`` of the module's own. ``train``/``eval`` reach the module."""

    def __init__(self, module: Module, methods: tuple = ("forward",)):
        super().__init__()
        d = self.__dict__
        d["_parameters"], d["_buffers"] = module._parameters, module._buffers
        d["_modules"] = module._modules
        d["_non_persistent_buffers_set"] = module._non_persistent_buffers_set
        d["training"] = module.training
        d["_actual_module"], d["_methods"] = module, tuple(methods)
        self._build()

    def _build(self) -> None:
        m = self._actual_module
        d = self.__dict__
        d["_compiled"] = {name: _compile(m if name == "forward" else getattr(m, name))
                          for name in self._methods}
        for name in self._methods:
            if name != "forward":
                d[name] = d["_compiled"][name]

    def forward(self, *args, **kwargs):
        return self._compiled["forward"](*args, **kwargs)

    def train(self, mode: bool = True) -> TracedModule:
        self._actual_module.train(mode)
        self.__dict__["training"] = mode
        return self

    @property
    def original_name(self) -> str:
        return type(self._actual_module).__name__

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_compiled")
        for name in self._methods:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._build()

    def _get_name(self) -> str:
        return type(self._actual_module).__name__

    def __repr__(self):
        return repr(self._actual_module)


def trace_module(mod: Module, inputs: dict, optimize=None, check_trace: bool = True,
                 check_inputs=None, check_tolerance: float = 1e-5, strict: bool = True,
                 _force_outplace: bool = False, _module_class=None, _compilation_unit=None,
                 example_inputs_is_kwarg: bool = False, _store_inputs: bool = True):
    """torch.jit.trace_module: ``inputs`` maps method names to example inputs; returns a
    TracedModule whose methods of those names run compiled (checked as ``trace`` does)."""
    if not isinstance(mod, Module):
        raise AttributeError("expected torch.nn.Module as the first argument")
    if not isinstance(inputs, dict):
        raise AttributeError("expected a dictionary of (method_name, input) pairs")
    traced = TracedModule(mod, tuple(inputs))
    for name, example in inputs.items():
        fn = mod if name == "forward" else getattr(mod, name)
        if example_inputs_is_kwarg:
            args, kwargs = (), dict(example)
            _example_tuple(tuple(kwargs.values()))
        else:
            args, kwargs = _example_tuple(example), {}
        checks = [c[name] for c in check_inputs or () if name in c]
        _traced_call(fn, traced._compiled[name], args, kwargs, check_trace, checks,
                     check_tolerance, strict)
    return traced


# --- save / load, fork / wait, freeze -------------------------------------------------------


class _Archive(typing.NamedTuple):
    """A saved object with the ``_extra_files`` given to ``save``."""

    obj: Any
    extra_files: dict


def save(m, f, _extra_files: dict | None = None) -> None:
    """torch.jit.save: pickles ``m`` whole (a scripted or traced module or function) with
    cg.save; ``load`` gives it back. ``_extra_files`` (name -> str or bytes) travel with it."""
    serialization.save(_Archive(m, dict(_extra_files)) if _extra_files else m, f)


def load(f, map_location=None, _extra_files: dict | None = None, _restore_shapes=False):
    """torch.jit.load: what ``save`` wrote (loaded with ``weights_only=False``: the file's
    pickle runs, as TorchScript archives run their code). ``_extra_files``: the names asked
    for are filled with the saved contents (bytes)."""
    obj = serialization.load(f, map_location=map_location, weights_only=False)
    files = {}
    if isinstance(obj, _Archive):
        obj, files = obj.obj, obj.extra_files
    for name in _extra_files or {}:
        if name in files:
            v = files[name]
            _extra_files[name] = v.encode() if isinstance(v, str) else v
    return obj if isinstance(obj, (TracedModule, ScriptFunction)) else _mark(obj)


class Future:
    """torch.jit.Future of ``fork``: already done; ``wait()`` gives the value."""

    def __init__(self, value):
        self._value = value

    def wait(self):
        return self._value

    value = wait

    def done(self) -> bool:
        return True

    def then(self, callback) -> Future:
        return Future(callback(self))


def fork(func, *args, **kwargs) -> Future:
    """torch.jit.fork: runs ``func(*args, **kwargs)`` now (kernels are asynchronous on the
    device already); ``wait`` on the result gives its value."""
    return Future(func(*args, **kwargs))


def wait(future: Future):
    return future.wait()


def freeze(mod, preserved_attrs=None, optimize_numerics: bool = True):
    """torch.jit.freeze: the module itself (it must be scripted or traced and in eval
    mode, as PyTorch asks)."""
    if not isinstance(mod, ScriptModule):
        raise RuntimeError("Freezing expects a ScriptModule as input. Please use "
                           "torch.jit.script or torch.jit.trace to script your 'nn.Module'.")
    if mod.training:
        raise RuntimeError("Freezing is currently only implemented for modules in eval mode. "
                           "Please call .eval() on your module before freezing.")
    return mod


def optimize_for_inference(mod, other_methods=None):
    """torch.jit.optimize_for_inference: the module in eval mode."""
    if not isinstance(mod, ScriptModule):
        raise RuntimeError("optimize_for_inference expects a ScriptModule as input. Please "
                           "use torch.jit.script or torch.jit.trace to script your 'nn.Module'.")
    return mod.eval()
