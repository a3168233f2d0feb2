"""Host data a traced call turns into tensors (``cg.tensor(array)``, ``cg.from_numpy(arr)``,
``x[list]``): where it comes from decides what a replay does with it.

A replay runs no Python code of the function, so an upload recorded by the trace would
write, on every call, the bytes the trace saw. The trace classifies each upload by the
user code that caused it: the innermost frame outside clgraph and the expression it is
executing (a call, a subscript, a subscript assignment), found in the source by the
instruction's position.

- Made by an op, or by library code from shapes and its own arguments (padding indices,
  interpolation weights, a scalar's 0-d tensor): a constant of the signature, kept by the
  plan.
- Through a creation function (``tensor``, ``as_tensor``, ``asarray``, ``from_numpy``) or
  an index (``x[i]``, ``x[i] = v``) whose operands are all
  literals, immutable values (numbers, strings, tuples of them, dtypes, devices) or
  tensors: a constant too. Immutable Python values are baked into a trace like every
  scalar the function uses.
- Through a creation function whose data is a name, an attribute chain or a constant
  subscript rooted where a replay finds it again (an argument of the compiled function, a
  global, a closure variable of the compiled function, a module's attribute): an input of
  the plan. Each replay calls the creation function again on the current value and binds
  the new tensor in place of the traced upload; a value whose shape or dtype changed runs
  that call eagerly.
- Anything else (data computed in the function, a local variable, a list used as an
  index, a DataLoader's batch or a file loaded in the call): the signature runs eagerly,
  with a warning naming the line: a replay could not see the data change.

Python statements of the function never run at replay: data the function itself mutates
is read as it is when the call starts. Imports Tensor, Module, dtypes and the device type;
nothing else of clgraph.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import os
import types
import weakref

import numpy as np

from .. import dtypes as dt
from ..device import device as _Device
from ..nn.module import Module
from ..tensor import Tensor

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

# the functions through which user data reaches an upload: creation functions (the data
# can become an input of the plan) and those that take host indices or values
_CREATE = {("creation.py", n) for n in ("tensor", "as_tensor", "asarray", "from_numpy")}
_FORWARD = {("index.py", "getitem"): "get", ("index.py", "setitem"): "set"}
# library code that reads host data of its own (a batch a DataLoader collates, a file)
_LOADERS = (os.path.join("utils", "data.py"), "serialization.py")

_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, np.generic, np.dtype,
              dt.dtype, _Device, slice, type(Ellipsis), Tensor, Module, type, types.ModuleType,
              types.FunctionType, types.BuiltinFunctionType, types.MethodType)


class Root:
    """The compiled function as a replay sees it: its code, closure cells and signature,
    and the arguments of the traced call (to tell an argument from a local)."""

    def __init__(self, fn, module, args, kwargs):
        target = type(module).forward if module is not None else fn
        target = getattr(target, "__func__", target)
        self.code = getattr(target, "__code__", None)
        self.bound = getattr(fn, "__self__", None) if module is None else None  # a method's
        cells = getattr(target, "__closure__", None) or ()
        self.cells = dict(zip(self.code.co_freevars, cells)) if self.code else {}
        try:
            self.signature = inspect.signature(module.forward if module is not None else fn)
        except (TypeError, ValueError):
            self.signature = None
        self.traced = self.arguments(args, kwargs) if self.signature else {}

    def arguments(self, args, kwargs) -> dict:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments


class Path:
    """Where a replay reads a value: a root (an argument by name, a global in its dict, a
    closure cell, a live object) and a chain of attributes and constant subscripts."""

    def __init__(self, root: tuple, chain: tuple):
        self.root, self.chain = root, chain

    def get(self, arguments: dict | None):
        kind, x = self.root[0], self.root[1]
        if kind == "arg":
            v = arguments[x]
        elif kind == "global":
            v = x[self.root[2]]
        elif kind == "cell":
            v = x.cell_contents
        else:
            v = x()
            if v is None:
                raise LookupError("the object holding the data is gone")
        for how, key in self.chain:
            v = getattr(v, key) if how == "attr" else v[key]
        return v


class HostInput:
    """An upload a replay makes anew: ``fn(*args, **kwargs)`` with each Path read at the
    call (the others are values kept from the trace)."""

    def __init__(self, fn, args: list, kwargs: dict, where: str):
        self.fn, self.args, self.kwargs, self.where = fn, args, kwargs, where

    def uses_arguments(self) -> bool:
        return any(isinstance(v, Path) and v.root[0] == "arg"
                   for v in self.args + list(self.kwargs.values()))

    def make(self, arguments):
        get = lambda v: v.get(arguments) if isinstance(v, Path) else v
        return self.fn(*[get(v) for v in self.args],
                       **{k: get(v) for k, v in self.kwargs.items()})


class _HeldBuffer:
    """A Storage-like stand-in for a traced upload's buffer (a plan input slot)."""

    def __init__(self, buf):
        self.buf = buf


class Inputs:
    """The host inputs of one plan, in order after the call's argument tensors."""

    def __init__(self, found: list, root: Root):
        self.specs = [spec for _, spec in found]
        self.root = root
        self.by_argument = any(s.uses_arguments() for s in self.specs)
        made = [s.make(root.traced) for s in self.specs]
        self.meta = [(t._shape, t.dtype, t.device.info) for t in made]
        self.stand_ins = [Tensor._on(_HeldBuffer(buf), (1,), (1,), 0, dt.uint8, t.device)
                          for (buf, _), t in zip(found, made)]

    def make(self, args, kwargs) -> list | None:
        """The host inputs of this call, or None when one cannot be read or changed shape
        or dtype (the call then runs eagerly, which raises what eager raises)."""
        try:
            arguments = self.root.arguments(args, kwargs) if self.by_argument else None
            made = [s.make(arguments) for s in self.specs]
        except Exception:  # noqa: BLE001  (the eager call reports it)
            return None
        for t, meta in zip(made, self.meta):
            if (t._shape, t.dtype, t.device.info) != meta:
                return None
        return made


# --- classifying an upload ---------------------------------------------------------------


def classify(frame, root: Root | None):
    """What an upload observed now is: None (a constant of the signature), a HostInput
    (a plan input; only with a ``root``), or the reason the signature must run eagerly."""
    user, callee = _user_frame(frame)
    if user is None or callee is None:
        return None
    where = f"{user.f_code.co_filename}:{user.f_lineno}"
    if _loads(frame):
        return (f"host data is loaded inside the call at {where} (a DataLoader's batch, a "
                "file), and a replay would not see it change")
    entry = (os.path.basename(callee.f_code.co_filename), callee.f_code.co_name)
    kind = "create" if entry in _CREATE else _FORWARD.get(entry)
    if kind is None:
        return None  # library code computing from shapes and its arguments
    node, assigned = _expression(user)
    if node is None:
        return (f"host data becomes a tensor at {where}, whose source clgraph cannot read "
                "to tell whether the data may change")
    operands = _operands(node, assigned, kind)
    if operands is None:
        return _reason(where, node, "an expression clgraph cannot follow")
    found = [(o, _operand(o, user, root)) for o in operands]
    if all(f[0] == "value" for _, f in found):
        return None
    for o, f in found:
        if f[0] == "local":
            return _reason(where, node, f"`{ast.unparse(o)}` is a local variable")
        if f[0] != "value" and f[0] != "path":
            return _reason(where, node, f"`{ast.unparse(o)}` is computed in the call")
    if kind == "get":
        return _reason(where, node, "an index made of host data (index with a tensor)")
    if kind == "set":
        return _reason(where, node, "host data assigned into a tensor or used as an index")
    if root is None:
        return _reason(where, node, "host data in a traced backward")
    fn = _evaluate(node.func, user)
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is not callee.f_code:
        return _reason(where, node, "a call clgraph cannot repeat")
    values = dict(zip(map(id, operands), (f[1] for _, f in found)))
    return HostInput(fn, [values[id(a)] for a in node.args],
                     {k.arg: values[id(k.value)] for k in node.keywords}, where)


def _reason(where: str, node, why: str) -> str:
    return (f"host data becomes a tensor at {where} (`{ast.unparse(node)}`): {why}, and a "
            "replay would not see it change")


def _loads(frame) -> bool:
    """Whether the upload is made by clgraph code that loads host data (a DataLoader)."""
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not name.startswith(_PACKAGE):
            return False
        if name.endswith(_LOADERS):
            return True
        frame = frame.f_back
    return False


def _user_frame(frame):
    """The innermost frame outside clgraph, and the clgraph frame it called."""
    callee = None
    while frame is not None:
        if not os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
            return frame, callee
        callee, frame = frame, frame.f_back
    return None, None


def _operands(node, assigned, kind):
    """The expressions whose values reach the upload, or None."""
    if kind == "get" and isinstance(node, ast.Subscript):
        return [node.slice]
    if kind == "set" and isinstance(node, ast.Subscript) and assigned is not None:
        return [node.slice, assigned]
    if kind == "create" and isinstance(node, ast.Call):
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            return None
        return list(node.args) + [k.value for k in node.keywords]
    return None


def _operand(node, frame, root):
    """("value", v) for a constant operand, ("path", Path) for one a replay can read
    again, ("local", None) or ("unknown", None) otherwise."""
    try:
        return "value", ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_operand(e, frame, root) for e in node.elts]
        if all(i[0] == "value" for i in items):
            vals = [i[1] for i in items]
            return "value", (vals if isinstance(node, ast.List) else tuple(vals))
        return "unknown", None
    chain = _chain(node)
    if chain is None:
        return "unknown", None
    try:
        value = _evaluate(node, frame)
    except Exception:  # noqa: BLE001  (a lookup the trace cannot repeat)
        return "unknown", None
    if _constant(value):
        return "value", value
    where = _root(chain[0], frame, root)
    if where is None:
        return "local", None
    return "path", Path(where, tuple(chain[1:]))


def _chain(node):
    """``name.attr[const]...`` as [name, ("attr", a), ("item", k), ...], or None."""
    out = []
    while True:
        if isinstance(node, ast.Attribute):
            out.append(("attr", node.attr))
            node = node.value
        elif isinstance(node, ast.Subscript):
            try:
                out.append(("item", ast.literal_eval(node.slice)))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
            node = node.value
        elif isinstance(node, ast.Name):
            return [node.id] + out[::-1]
        else:
            return None


def _evaluate(node, frame):
    """The value of a name/attribute/constant-subscript chain in ``frame`` (lookups only:
    attributes, and items of dicts, lists and tuples)."""
    chain = _chain(node)
    if chain is None:
        raise LookupError("not a chain")
    name = chain[0]
    for scope in (frame.f_locals, frame.f_globals, vars(builtins)):
        if name in scope:
            v = scope[name]
            break
    else:
        raise NameError(name)
    for how, key in chain[1:]:
        if how == "attr":
            v = getattr(v, key)
        elif type(v) in (dict, list, tuple):
            v = v[key]
        else:
            raise LookupError("a subscript of an object")
    return v


def _constant(v) -> bool:
    if isinstance(v, (tuple, frozenset)):
        return all(_constant(x) for x in v)
    return isinstance(v, _IMMUTABLE)


def _root(name: str, frame, root: Root | None):
    """Where a replay finds ``name`` of ``frame`` again, or None (a local)."""
    local = frame.f_locals
    if name in local and name not in frame.f_code.co_freevars:
        v = local[name]
        if isinstance(v, Module):  # ``self`` of a forward: a module lives across calls
            return ("object", weakref.ref(v))
        if root is not None and root.bound is not None and v is root.bound:
            return ("object", lambda: root.bound)  # the object of a compiled bound method
        if root is not None and frame.f_code is root.code and name in root.traced \
                and root.traced[name] is v:
            return ("arg", name)
        return None
    if name in frame.f_code.co_freevars:
        if root is not None and frame.f_code is root.code and name in root.cells:
            return ("cell", root.cells[name])
        return None
    if name in frame.f_globals:
        return ("global", frame.f_globals, name)
    return None


# --- the source of an executing instruction ----------------------------------------------

_files: dict = {}  # file name -> (hash of its text, {position: node}, {position: value})


def _expression(frame):
    """The call or subscript ``frame`` is executing, and the value assigned to it when it
    is the target of an assignment; (None, None) when the source is not available."""
    code = frame.f_code
    pos = next((p for i, p in enumerate(code.co_positions()) if i == frame.f_lasti // 2),
               None)
    index = _index(code.co_filename)
    if pos is None or index is None or None in pos:
        return None, None
    nodes, stores = index
    return nodes.get(pos), stores.get(pos)


def _index(filename: str):
    lines = linecache.getlines(filename)
    if not lines:
        return None
    text = "".join(lines)
    key = hash(text)
    cached = _files.get(filename)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    nodes, stores = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Call, ast.Subscript)):
            nodes[_pos(node)] = node
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Subscript):
                    stores[_pos(t)] = node.value
    _files[filename] = (key, (nodes, stores))
    return nodes, stores


def _pos(node) -> tuple:
    return node.lineno, node.end_lineno, node.col_offset, node.end_col_offset
