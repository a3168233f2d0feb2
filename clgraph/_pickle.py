"""The pickle inside PyTorch's checkpoint format (``<archive>/data.pkl`` of torch.save's zip),
for clgraph objects, both ways.

Writing, ``Pickler`` names PyTorch's globals for clgraph's objects, as torch.save does: a
tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
OrderedDict())``, a parameter ``torch._utils._rebuild_parameter(data, requires_grad,
OrderedDict())``, a dtype ``torch.float32``, a Size ``torch.Size``, a device
``torch.device('cpu')``; each storage is the persistent id ``('storage', torch.FloatStorage,
key, 'cpu', numel)``, and its bytes go to ``<archive>/data/<key>`` (``Storages``).

Reading, both unpicklers take PyTorch's names back to clgraph's objects through one table
(``allowed_globals``): tensors rebuild from ``LoadedStorage``s, which the caller supplies
through ``persistent_load``. ``WeightsOnlyUnpickler`` is PyTorch's weights_only=True: only
the table's globals and the user's allowlist exist, only they may be called or built, so
nothing else in the file runs. ``FullUnpickler`` (weights_only=False) also imports any class,
mapping ``torch.*`` modules onto ``clgraph.*`` (``torch.nn.modules.linear.Linear`` ->
``clgraph.nn.modules.linear.Linear``).

Imports the tensor layer; ``nn`` is imported on first use (for Parameter and torch.nn's
classes)."""

from __future__ import annotations

import _compat_pickle
import codecs
import functools
import importlib
import pickle
import re
from collections import Counter, OrderedDict
from typing import Any, ClassVar

import numpy as np

from . import dtypes as dt
from . import runtime
from .device import as_device, default_device
from .device import device as _device
from .tensor import Size, Tensor

# --- errors --------------------------------------------------------------------------------


class Refused(pickle.UnpicklingError):
    """weights_only loading met a global, call or build it does not allow."""


class CheckpointError(RuntimeError):
    """The file contradicts itself (a storage's size, a tensor's extent): truncated or
    tampered."""


def parameter_class():
    """clgraph.nn.Parameter when the nn package is present (imported on first use)."""
    try:
        from . import nn
    except ImportError:
        return None
    return getattr(nn, "Parameter", None)


# --- writing -------------------------------------------------------------------------------


class _Global:
    """A global by name, written as pickle's GLOBAL opcode whether or not its module can be
    imported here (torch need not be). One object per name, so the memo shares it."""

    __slots__ = ("module", "name")
    _interned: ClassVar[dict] = {}

    def __new__(cls, module: str, name: str):
        g = cls._interned.get((module, name))
        if g is None:
            g = cls._interned[(module, name)] = object.__new__(cls)
            g.module, g.name = module, name
        return g

    def __call__(self, *args):  # pickle asks reduce functions to be callable
        raise TypeError(f"{self.module}.{self.name} is a name written into a checkpoint")


_REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
_LOCATION = "cpu"  # every storage loads onto PyTorch's CPU without a map_location


class _StorageRef:
    """One saved storage: its key in the archive, dtype and the device buffer to read."""

    __slots__ = ("dtype", "key", "numel", "storage")

    def __init__(self, key: str, storage, dtype: dt.dtype):
        self.key, self.storage, self.dtype = key, storage, dtype
        self.numel = storage.nbytes // dtype.itemsize

    def pid(self) -> tuple:
        return ("storage", _Global("torch", self.dtype.scalar_type + "Storage"), self.key,
                _LOCATION, self.numel)

    def data(self) -> np.ndarray:
        """The storage's bytes as little-endian elements (bfloat16: its bits)."""
        arr = np.empty(self.numel, dtype=self.dtype.np)
        runtime.read(self.storage, arr, 0)
        return arr.astype(arr.dtype.newbyteorder("<"), copy=False)


class Storages:
    """The storages a pickle refers to, keyed "0", "1"... in order of first use; tensors
    viewing one storage share its key, as in torch.save."""

    def __init__(self):
        self.refs: dict[int, _StorageRef] = {}

    def ref(self, t: Tensor) -> _StorageRef:
        r = self.refs.get(id(t._storage))
        if r is None:
            r = self.refs[id(t._storage)] = _StorageRef(str(len(self.refs)), t._storage,
                                                        t.dtype)
        elif r.dtype is not t.dtype:
            raise RuntimeError("Cannot save multiple tensors or storages that view the same "
                               "data as different types")
        return r

    def __iter__(self):
        return iter(self.refs.values())


class _Data:
    """A parameter's data: pickled as a plain tensor that does not require grad."""

    __slots__ = ("t",)

    def __init__(self, t: Tensor):
        self.t = t


def _save_global(pickler, g: _Global) -> None:
    pickler.write(pickle.GLOBAL + f"{g.module}\n{g.name}\n".encode())
    pickler.memoize(g)


class Pickler(pickle._Pickler):
    """pickle's Pickler writing clgraph objects under PyTorch's names (see the module
    docstring). The Python implementation, because it lets GLOBAL name a module that is not
    installed."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)
    dispatch[_Global] = _save_global
    dispatch[dt.dtype] = lambda self, d: self.save(_Global("torch", d.name))

    def __init__(self, file, storages: Storages, protocol: int = 2):
        super().__init__(file, protocol=protocol)
        self.storages = storages
        self.parameter = parameter_class()

    def persistent_id(self, obj):
        return obj.pid() if type(obj) is _StorageRef else None

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            if hasattr(type(obj), "materialize"):  # nn.UninitializedParameter / Buffer
                return (_Global("torch.nn.parameter", type(obj).__name__),
                        (bool(obj.requires_grad),))
            if self.parameter is not None and isinstance(obj, self.parameter):
                return _REBUILD_PARAMETER, (_Data(obj), bool(obj.requires_grad), OrderedDict())
            return _REBUILD_TENSOR, self.tensor_args(obj, obj.requires_grad)
        if type(obj) is _Data:
            return _REBUILD_TENSOR, self.tensor_args(obj.t, False)
        if isinstance(obj, Size):
            return _Global("torch", "Size"), (tuple(obj),)
        if isinstance(obj, _device):
            return _Global("torch", "device"), (_LOCATION,)
        return NotImplemented

    def tensor_args(self, t: Tensor, requires_grad: bool) -> tuple:
        # fresh tuples, as torch's: the memo shares only what torch's pickle shares
        return (self.storages.ref(t), t.storage_offset(), tuple(t.shape),
                (*t.stride(),), bool(requires_grad), OrderedDict())


# --- reading -------------------------------------------------------------------------------


class StorageType:
    """What ``torch.FloatStorage`` (and the other storage classes) load as: the dtype of the
    storage a persistent id names. ``torch.storage.UntypedStorage`` is bytes (uint8)."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: dt.dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"StorageType(torch.{self.name})"


class LoadedStorage:
    """A storage read from a checkpoint: its bytes until a tensor needs it, then one device
    tensor over all of it per dtype (``place(host_elements, dtype) -> Tensor`` puts it where
    map_location says)."""

    __slots__ = ("_flat", "big_endian", "data", "dtype", "place")

    def __init__(self, data: bytes, dtype: dt.dtype, place, big_endian: bool = False):
        self.data, self.dtype, self.place, self.big_endian = data, dtype, place, big_endian
        self._flat: dict = {}

    def numel(self, d: dt.dtype) -> int:
        return len(self.data) // d.itemsize

    def flat(self, d: dt.dtype) -> Tensor:
        t = self._flat.get(d)
        if t is None:
            n = self.numel(d)
            if d is dt.bool_:  # any nonzero byte is true, as a C++ bool read would be
                host = np.frombuffer(self.data, np.uint8, n) != 0
            else:
                host = np.frombuffer(self.data, d.np.newbyteorder(">" if self.big_endian
                                                                  else "<"), n)
                host = host.astype(d.np)
            t = self._flat[d] = self.place(host, d)
        return t

    def view(self, d: dt.dtype, offset, size, stride) -> Tensor:
        """A tensor of dtype d over this storage: (offset, size, stride) in elements."""
        _check_geometry(offset, size, stride, self.numel(d))
        flat = self.flat(d)
        if not flat.is_contiguous():
            flat = self._flat[d] = flat.contiguous()
        return Tensor._on(flat._storage, tuple(size), tuple(stride),
                          flat.storage_offset() + offset, d, flat.device)


def _is_index(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_geometry(offset, size, stride, numel: int) -> None:
    ok = (_is_index(offset) and isinstance(size, (tuple, list)) and isinstance(stride, (
        tuple, list)) and len(size) == len(stride) and all(map(_is_index, size))
        and all(map(_is_index, stride)))
    if not ok:
        raise CheckpointError(f"a tensor has a malformed geometry: offset {offset!r:.40}, size "
                              f"{size!r:.80}, stride {stride!r:.80}")
    end = offset + 1 + sum((s - 1) * st for s, st in zip(size, stride))
    if 0 in size:
        end = offset
    if end > numel:
        raise CheckpointError(f"a tensor of size {list(size)}, stride {list(stride)} at offset "
                              f"{offset} reaches element {end - 1} of a storage of {numel}")


def _as_storage(storage) -> LoadedStorage:
    if not isinstance(storage, LoadedStorage):
        raise CheckpointError(f"a tensor is rebuilt from a {type(storage).__name__}, not a "
                              "storage")
    return storage


def _set_requires_grad(t: Tensor, requires_grad) -> Tensor:
    if requires_grad:
        if not t.dtype.is_floating_point:
            raise CheckpointError(f"a tensor of dtype {t.dtype} cannot require grad")
        t.requires_grad_(True)
    return t


def _rebuild_tensor(storage, storage_offset, size, stride):
    s = _as_storage(storage)
    return s.view(s.dtype, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       metadata=None):
    return _set_requires_grad(_rebuild_tensor(storage, storage_offset, size, stride),
                              requires_grad)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    if not isinstance(dtype, dt.dtype):
        raise CheckpointError(f"a tensor's dtype is a {type(dtype).__name__}")
    t = _as_storage(storage).view(dtype, storage_offset, size, stride)
    return _set_requires_grad(t, requires_grad)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, Tensor):
        raise CheckpointError(f"a parameter's data is a {type(data).__name__}, not a tensor")
    return parameter_class()(data, bool(requires_grad))


def _set_state(t: Tensor, state) -> Tensor:
    """Python attributes saved with a tensor, into its __dict__; names the class defines
    (slots, properties, methods) are skipped, so the file cannot replace them."""
    if isinstance(state, tuple) and len(state) == 2:
        state = state[0]
    if isinstance(state, dict):
        t.__dict__.update({k: v for k, v in state.items()
                           if isinstance(k, str) and not hasattr(type(t), k)})
    return t


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _set_state(_rebuild_parameter(data, requires_grad, backward_hooks), state)


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter,
               _rebuild_parameter_with_state)


def _rebuild_from_type_v2(func, new_type, args, state):
    if not any(func is f for f in _REBUILDERS) or not isinstance(args, tuple):
        raise CheckpointError(f"a tensor is rebuilt by {func!r:.80}")
    t = func(*args)
    parameter = parameter_class()
    if new_type is parameter and not isinstance(t, parameter):
        t = parameter(t, t.requires_grad)
    elif new_type not in (Tensor, parameter):
        raise CheckpointError(f"clgraph has no tensor subclass {new_type!r:.80}")
    return _set_state(t, state)


def _device_of(type_or_spec: str, index=None):
    """torch.device(...) as saved: that device, or the default one where it does not exist."""
    spec = type_or_spec if index is None else f"{type_or_spec}:{index}"
    try:
        return as_device(spec)
    except (RuntimeError, ValueError, IndexError, TypeError):
        return default_device()


@functools.cache
def allowed_globals() -> dict[str, Any]:
    """What weights_only loading allows, by the name a checkpoint gives it (PyTorch's list,
    less what clgraph has no equivalent for)."""
    table: dict[str, Any] = {
        "collections.OrderedDict": OrderedDict, "collections.Counter": Counter,
        "builtins.set": set, "builtins.bytearray": bytearray, "builtins.complex": complex,
        "_codecs.encode": codecs.encode,  # bytes, in protocol 2
        "torch.Size": Size, "torch.Tensor": Tensor, "torch.device": _device_of,
        "torch.nn.parameter.Parameter": parameter_class(),
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
        "torch.storage.UntypedStorage": StorageType("UntypedStorage", dt.uint8),
    }
    for f in _REBUILDERS:
        table[f"torch._utils.{f.__name__}"] = f
    for d in dt.ALL + dt.COMPLEX:
        table[f"torch.{d.name}"] = d
        name = d.scalar_type + "Storage"
        table[f"torch.{name}"] = StorageType(name, d)
    return {k: v for k, v in table.items() if v is not None}


def _full_name(module: str, name: str, proto: int) -> tuple[str, str]:
    """Python 2 names (``__builtin__.set``) as Python 3's, as pickle does below protocol 3."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module, name


_BLOCKED_MODULES = ("sys", "os", "posix", "nt")
# PyTorch's dtypes and storages that clgraph lacks (complex, unsigned, float8, quantized...)
_TORCH_TYPE = re.compile(r"\w+Storage|complex\d+|c?(half|float|double)|u?int\d+|float8\w*|"
                         r"q\w*int\w*|bits\w*")


def _refusal(full: str) -> str:
    shown = full.removeprefix("builtins.")
    return (f"Unsupported global: GLOBAL {full} was not an allowed global by default. Please "
            f"use `clgraph.serialization.add_safe_globals([{shown}])` or the "
            f"`clgraph.serialization.safe_globals([{shown}])` context manager to allowlist "
            "this global if you trust this class/function.")


def _storage_from_pid(pid, storage_for) -> LoadedStorage:
    """A persistent id ('storage', storage type, key, location, numel) checked, then read."""
    ok = (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
          and isinstance(pid[1], StorageType) and isinstance(pid[2], str)
          and isinstance(pid[3], str) and _is_index(pid[4]))
    if not ok:
        raise CheckpointError(f"data.pkl refers to an unknown persistent id {pid!r:.120}")
    _, stype, key, location, numel = pid
    return storage_for(key, stype.dtype, location, numel)


class WeightsOnlyUnpickler(pickle._Unpickler):
    """torch.load(weights_only=True)'s unpickler: globals only from ``allowed_globals()`` and
    ``user`` (name -> object); REDUCE and NEWOBJ call only those, BUILD sets state only on
    OrderedDicts and the user's classes; the opcodes of protocols 0 and 1 that build objects
    and the extension registry are refused. ``storage_for(key, dtype, location, numel)``
    reads a storage. The Python implementation, because BUILD must be checked too."""

    dispatch: ClassVar[dict] = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, storage_for, user: dict[str, Any]):
        super().__init__(file)
        self.storage_for = storage_for
        self.user = user
        self.allowed = {**allowed_globals(), **user}
        self.callable_ids = {id(v) for v in self.allowed.values()}
        self.user_types = {id(v) for v in user.values() if isinstance(v, type)}
        self.new_types = {id(v) for v in self.allowed.values() if isinstance(v, type)
                          and not issubclass(v, Tensor)}

    def find_class(self, module, name):
        module, name = _full_name(module, name, self.proto)
        full = f"{module}.{name}"
        if module in _BLOCKED_MODULES:
            raise Refused(f"Trying to load unsupported GLOBAL {full} whose module {module} is "
                          "blocked.")
        if full not in self.allowed:
            if module == "torch" and _TORCH_TYPE.fullmatch(name):
                raise CheckpointError(f"clgraph has no dtype for torch.{name}; its dtypes are "
                                      f"{', '.join(d.name for d in dt.ALL + dt.COMPLEX)}")
            raise Refused(_refusal(full))
        return self.allowed[full]

    def persistent_load(self, pid):
        return _storage_from_pid(pid, self.storage_for)

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if id(func) not in self.callable_ids:
            raise Refused(f"Trying to call reduce for unrecognized function {func!r:.80}")
        self.stack[-1] = func(*args)

    def new_object(self, cls, args, kwargs):
        if cls is parameter_class():
            return cls(*args, **kwargs)
        if id(cls) in self.new_types:
            return cls.__new__(cls, *args, **kwargs)
        raise Refused("Can only create new object for nn.Parameter or classes allowlisted "
                      f"via `add_safe_globals` but got {cls!r:.80}")

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self.new_object(cls, args, {}))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self.new_object(cls, args, kwargs))

    def load_build(self):
        inst = self.stack[-2]  # under the state
        if type(inst) in (OrderedDict, Counter):
            state = self.stack.pop()
            if not isinstance(state, dict):
                raise Refused(f"an OrderedDict's state must be a dict, got {type(state)}")
            inst.__dict__.update({k: v for k, v in state.items() if isinstance(k, str)})
        elif id(type(inst)) in self.user_types:
            super().load_build()
        else:
            raise Refused("Can only build Tensor, Parameter, OrderedDict or types allowlisted "
                          f"via `add_safe_globals`, but got {type(inst)}")

    def check_target(self, types: tuple, opcode: str, depth: int):
        """SETITEM and APPEND write only into plain containers (not into a tensor's
        __setitem__, say): the target is ``depth`` below the stack's top, or (depth 0) under
        the mark."""
        target = self.metastack[-1][-1] if depth == 0 else self.stack[-depth]
        if type(target) not in types:
            raise Refused(f"Can only {opcode} into {', '.join(t.__name__ for t in types)}, "
                          f"but got {type(target)}")

    def load_setitem(self):
        self.check_target((dict, OrderedDict, Counter), "SETITEM", 3)
        super().load_setitem()

    def load_setitems(self):
        self.check_target((dict, OrderedDict, Counter), "SETITEMS", 0)
        super().load_setitems()

    def load_append(self):
        self.check_target((list,), "APPEND", 2)
        super().load_append()

    def load_appends(self):
        self.check_target((list,), "APPENDS", 0)
        super().load_appends()

    def load_additems(self):
        self.check_target((set,), "ADDITEMS", 0)
        super().load_additems()

    def refuse_opcode(self):
        raise Refused("weights_only loading does not support the pickle opcodes of protocols "
                      "0 and 1 that build objects (INST, OBJ) or the extension registry (EXT)")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends
    dispatch[pickle.ADDITEMS[0]] = load_additems
    for _op in (pickle.INST, pickle.OBJ, pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_op[0]] = refuse_opcode
    del _op


class FullUnpickler(pickle.Unpickler):
    """torch.load(weights_only=False)'s unpickler: imports any global, so loading can run code
    from the file. PyTorch's tensors, dtypes and storages load as in weights_only mode; other
    ``torch.*`` names load as the same path under ``clgraph.*``."""

    def __init__(self, file, storage_for):
        super().__init__(file)
        self.storage_for = storage_for

    def find_class(self, module, name):
        mapped, mapped_name = _full_name(module, name, 2)
        known = allowed_globals().get(f"{mapped}.{mapped_name}")
        if known is not None:
            return known
        if module == "torch" or module.startswith("torch."):
            return _clgraph_equivalent(module, name)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return _storage_from_pid(pid, self.storage_for)


def _clgraph_equivalent(module: str, name: str):
    """``torch.nn.modules.linear.Linear`` -> ``clgraph.nn.modules.linear.Linear``."""
    try:
        obj = importlib.import_module("clgraph" + module[len("torch"):])
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise pickle.UnpicklingError(f"clgraph has no equivalent of {module}.{name}, which "
                                     "this checkpoint's pickle refers to") from None
    return obj
