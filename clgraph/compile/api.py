"""The user API: compile() and Compiled, the callable it returns.

A Compiled keeps one entry per input signature: a plan to replay, or the reason that
signature runs eagerly; at most ``cache_size_limit`` signatures get a plan. The signature
covers the arguments, the values the function reaches without them (``_free_refs``), and
the number and string attributes of modules that its trace read (a temperature, an eps:
each entry's guard list, checked again after any module attribute was assigned). Host
state a traced call reported (runtime.HostState: whether DistributedDataParallel syncs) is part of
the signature: a call made in another state gets a plan of its own. Introspection
(graph(), kernels(), launches()) traces a new signature first. Imports every other module
of this package; nothing below it imports this one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import types
import warnings
import weakref

from .. import amp, autograd, runtime
from ..graph import to_networkx
from ..nn.module import Module
from ..ops import registry
from . import hostdata, plan
from .backward import Differentiable
from .trace import Capture, Unreplayable, flatten, rebuild, tensor_key


class _Entry:
    __slots__ = ("alts", "attr_ok", "attr_stamp", "attrs", "capture_events", "eager",
                 "guards", "host", "plan", "replays", "state", "tries")

    def __init__(self):
        self.plan = None
        self.host = None  # hostdata.Inputs: host data each replay uploads anew
        self.eager = None
        self.tries = 0
        self.replays = 0  # calls the plan ran
        self.capture_events = None
        self.guards = ()
        self.state = ()  # (read, value): host state the plan holds for (runtime.HostState)
        # (weakref to a module, attribute, typed value): the number and string attributes
        # its trace read (None while it runs); whether they hold, as of runtime.rebinds
        self.attrs = None
        self.attr_ok, self.attr_stamp = False, -1
        self.alts: list = []  # entries of the same signature traced with other attributes

    def attrs_hold(self) -> bool:
        """Whether the module attributes its trace read have those values now: computed
        again only after a module attribute was assigned (runtime.rebinds)."""
        if self.attr_stamp != runtime.rebinds:
            self.attr_ok = self.attrs is not None and all(
                _attr_value(w, n) == v for w, n, v in self.attrs)
            self.attr_stamp = runtime.rebinds
        return self.attr_ok

    def state_now(self) -> tuple:
        return tuple(read() for read, _ in self.state)

    def state_ok(self) -> bool:
        return all(read() == v for read, v in self.state)


# signatures one compiled function keeps plans for (PyTorch's cache_size_limit): a
# function called with ever new shapes runs eagerly after that, with a warning, instead
# of tracing and holding device buffers for each
CACHE_SIZE_LIMIT = 8


class Compiled:
    """What cg.compile returns: call it like the function (or module) it wraps."""

    def __init__(self, fn, module=None):
        self._fn = fn
        self._module = module
        self._orig_mod = module
        self._entries: dict = {}
        self._warned: set = set()
        self._limit = CACHE_SIZE_LIMIT
        functools.update_wrapper(self, fn if module is None else type(module).forward,
                                 updated=())
        # found at the first call, when the globals a decorated function names exist
        self._free = None if module is None else ()
        self._volatile: set = set()  # indices in _free of values the traced call changes

    def __getattr__(self, name):
        mod = self.__dict__.get("_module")
        if mod is not None:
            return getattr(mod, name)
        raise AttributeError(name)

    # signature ---------------------------------------------------------------------------
    def _key(self, args, kwargs):
        tensors: list = []
        spec = flatten((args, kwargs), tensors)
        key = (spec, tensor_key(tensors), autograd.is_grad_enabled(), amp.state_key())
        return key + self._free_key(), tensors

    def _free_key(self) -> tuple:
        """The part of the signature the call reads without arguments: the compiled
        module's state, or the values the function reaches (``_free_refs``); a value the
        traced call itself changed (a log it appends to, a counter) by identity only."""
        m = self._module
        if m is not None:
            return _module_key(m)
        if self._free is None:
            self._free = _free_refs(self._fn)
        return tuple(id(get()) if i in self._volatile else _value_key(get())
                     for i, get in enumerate(self._free))

    def _lookup(self, args, kwargs):
        """(key, entry or None, tensors): the entry of this signature whose module
        attributes hold their values now (the first one traced is keyed by the signature,
        the others are its ``alts``), and its own one for each host state."""
        key, tensors = self._key(args, kwargs)
        entry = self._entries.get(key)
        if entry is not None and entry.attrs and not entry.attrs_hold():
            entry = next((e for e in entry.alts if e.attrs_hold()), None)
            if entry is None:
                return key, None, tensors
            key = next(k for k, e in self._entries.items() if e is entry)
        if entry is not None and entry.state and not entry.state_ok():
            # traced with other host state (DistributedDataParallel inside no_sync() or
            # not): its own plan
            key += (entry.state_now(),)
            entry = self._entries.get(key)
        return key, entry, tensors

    def _guards_ok(self, entry) -> bool:
        if entry.state and not entry.state_ok():
            return False
        for w, snap in entry.guards:
            o = w()
            if o is None or _opt_snapshot(o) != snap:
                return False
        return True

    def __call__(self, *args, **kwargs):
        if runtime.observers:  # inside a trace (or another pushed interpreter): part of it
            return self._fn(*args, **kwargs)
        key, entry, tensors = self._lookup(args, kwargs)
        if entry is None:
            entry = _Entry()
            key = self._add(key, entry)
            if sum(e.plan is not None for e in self._entries.values()) >= self._limit:
                entry.eager = (f"it was compiled for {self._limit} signatures already; new "
                               "ones run eagerly (cg.compile(fn, cache_size_limit=N) keeps "
                               "more)")
                self._warn(entry.eager)
        if entry.plan is not None and self._guards_ok(entry):
            inputs = tensors
            if entry.host is not None:
                made = entry.host.make(args, kwargs)
                if made is None:
                    self._warn("host data it uploads cannot be read or changed shape or dtype "
                               "since the trace; such calls run eagerly")
                    return self._fn(*args, **kwargs)
                inputs = tensors + made
            outs, _ = entry.plan.run(inputs, lambda: self._fn(*args, **kwargs))
            if outs is not None:
                entry.replays += 1
                return rebuild(entry.plan.out_spec, iter(outs))
            return self._fn(*args, **kwargs)
        if entry.eager is not None:
            return self._fn(*args, **kwargs)
        return self._trace(entry, args, kwargs, tensors, key)

    def _add(self, key, entry) -> tuple:
        """Keeps ``entry`` under ``key``, or as another one of the entry there (traced with
        other module attributes, found through its ``alts``); returns its own key."""
        first = self._entries.get(key)
        if first is not None:
            first.alts.append(entry)
            key += (("attributes", len(first.alts)),)
        self._entries[key] = entry
        return key

    def _trace(self, entry, args, kwargs, tensors, key):
        cap = Capture(hostdata.Root(self._fn, self._module, args, kwargs))
        reads: dict = {}
        with registry.push(cap):
            try:
                with _reading_attributes(reads):
                    result = self._fn(*args, **kwargs)
            finally:
                cap.stop()
                self._rekey(entry, key, reads, _uploaded(cap))
            # still pushed: the trace's buffers stay out of the pool until the plan has
            # pinned the ones it keeps (constants, state)
            return self._plan(entry, cap, result, tensors)

    def _rekey(self, entry, key, reads: dict, uploaded: set) -> None:
        """After a trace: the entry keeps the module attributes the trace read and left as
        they were (a call counter the forward bumps is its own state, not a guard). A value
        the function reaches without arguments that the call changed itself (a log it
        appends to) is a side channel, not a setting, as is data a replay uploads anew
        (``cg.tensor(a_global_list)``): guarded by identity from now on, so the entry moves
        to the signature later calls compute."""
        entry.attrs = tuple((weakref.ref(m), name, v) for (_, name), (m, v) in reads.items()
                            if _typed(vars(m).get(name, _MISSING)) == v)
        entry.attr_stamp = -1
        if self._module is not None:
            return
        free = self._free_key()
        for i, v in enumerate(self._free):
            v = v()
            if i not in self._volatile and (id(v) in uploaded or (
                    free[i] != key[4 + i] and not isinstance(v, Module))):
                self._volatile.add(i)
        # key: spec, tensors, grad mode, autocast state (_key), the free part, then what
        # _add and the host state of a DistributedDataParallel appended
        new = key[:4] + self._free_key() + key[4 + len(free):]
        if new != key and self._entries.get(key) is entry:
            del self._entries[key]
            self._entries[new] = entry

    def _plan(self, entry, cap, result, tensors):
        entry.tries += 1
        entry.capture_events = cap.events
        reason = cap.host_read or cap.host_data or _state_changed(cap)
        entry.host = None
        entry.state = tuple((read, v) for read, (v, _) in cap.host_state.items()) + tuple(
            (_grad_state(w), v) for w, v in cap.grad_start.values())
        if reason is None:
            try:
                if cap.host_inputs:
                    with registry.eager():  # made once more, for their shapes and dtypes
                        entry.host = hostdata.Inputs(cap.host_inputs, cap.root)
                    tensors = tensors + entry.host.stand_ins
                entry.plan = _make_plan(cap, tensors, result)
                entry.guards = tuple((weakref.ref(o), _opt_snapshot(o))
                                     for o in cap.optimizers.values())
                if os.environ.get("CLGRAPH_DEBUG") == "1":
                    print(f"[clgraph] compiled {self.__name__}: {len(cap.events)} ops -> "
                          f"{len(entry.plan.kernel_names)} launches")
                return result
            except Unreplayable as e:
                reason = str(e)
                if e.retry and entry.tries < 2:  # state made on a first call (moments)
                    return result
        entry.eager = reason
        self._warn(reason, stacklevel=5)
        return result

    def _warn(self, reason, stacklevel=3):
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(f"clgraph.compile: {self.__name__} runs eagerly for this input "
                          f"signature: {reason}", RuntimeWarning, stacklevel=stacklevel)

    # introspection -----------------------------------------------------------------------
    def _entry(self, args, kwargs):
        entry = self._lookup(args, kwargs)[1]
        if entry is None or (entry.plan is None and entry.eager is None):
            self(*args, **kwargs)
            entry = self._lookup(args, kwargs)[1]
            if entry.plan is None and entry.eager is None:
                self(*args, **kwargs)
        return entry

    def graph(self, *args, **kwargs):
        """The traced graph for this signature as a networkx.DiGraph (traces it first, by
        running the function, when the signature is new)."""
        entry = self._entry(args, kwargs)
        return to_networkx(entry.capture_events,
                           entry.plan.event_kernel if entry.plan else {})

    def kernels(self, *args, **kwargs) -> list[str]:
        """OpenCL C source of each kernel a call with this signature launches, in order."""
        entry = self._entry(args, kwargs)
        if entry.plan is None:
            return []
        return list(entry.plan.sources)

    def launches(self, *args, **kwargs) -> list[str]:
        """Names of the kernels a call with this signature launches, in order."""
        entry = self._entry(args, kwargs)
        return [] if entry.plan is None else list(entry.plan.kernel_names)


_module_keys: dict = {}  # id(module) -> (runtime.rebinds when computed, key)
@contextlib.contextmanager
def _reading_attributes(reads: dict):
    """While tracing: the scalar attributes of modules the traced code reads (a temperature,
    an eps, a mode string), each with the value it read first, into ``reads``
    ({(id(module), name): (module, value)}). Module.__getattribute__ is replaced for the
    trace only; eager calls never pay for it."""
    def getattribute(self, name):
        v = object.__getattribute__(self, name)
        if name[:2] != "__" and _is_scalar_value(v) and name in object.__getattribute__(
                self, "__dict__"):
            reads.setdefault((id(self), name), (self, _typed(v)))
        return v

    Module.__getattribute__ = getattribute
    try:
        yield
    finally:
        del Module.__getattribute__


def _attr_value(ref, name):
    m = ref()
    return _MISSING if m is None else _typed(vars(m).get(name, _MISSING))


def _typed(v):
    """A scalar (or a tuple of them) as a key that tells 1 from 1.0 and True: a trace with
    an int may make other kernels than one with a float."""
    if type(v) is tuple:
        return tuple(map(_typed, v))
    return (type(v), v)


def _uploaded(cap) -> set:
    """ids of the host objects a replay of this trace reads anew (hostdata.HostInput)."""
    out = set()
    for _, spec in cap.host_inputs:
        for v in list(spec.args) + list(spec.kwargs.values()):
            if isinstance(v, hostdata.Path) and v.root[0] != "arg":
                try:
                    out.add(id(v.get(None)))
                except Exception:  # noqa: BLE001  (gone: nothing to guard)
                    pass
    return out


def _module_key(m) -> tuple:
    """What a traced call of module ``m`` baked in: each submodule's train/eval flag and
    the buffers of its
    parameters and buffers (a reassigned Parameter is another one). Remembered while
    nothing was re-bound (runtime.rebinds; every attribute assignment on a module counts):
    walking a model costs microseconds per call."""
    hit = _module_keys.get(id(m))
    if hit is not None and hit[0] == runtime.rebinds:
        return hit[1]
    key = (tuple(x.training for x in m.modules()),
           tuple(p._storage.buf.int_ptr for p in m.parameters()),
           tuple(b._storage.buf.int_ptr for b in m.buffers()))
    if len(_module_keys) > 1024:
        _module_keys.clear()
    _module_keys[id(m)] = (runtime.rebinds, key)
    return key


_SCALARS = (int, float, complex, bool, str, bytes, type(None))
_MISSING = object()


def _free_refs(fn) -> tuple:
    """Readers of the values a function reaches without arguments: its closure cells and
    the globals its code names (nested code included), and ``self`` of a bound method.
    A traced call bakes such values in (a float it multiplies by, a module's train flag
    and parameters); ``_value_key`` of each is part of the signature, so that a changed
    one traces again, as torch.compile's guards do."""
    refs = []
    if getattr(fn, "__self__", None) is not None:
        refs.append(lambda o=fn.__self__: o)
        fn = fn.__func__
    code, glb = getattr(fn, "__code__", None), getattr(fn, "__globals__", None)
    if code is None:
        return tuple(refs)
    for cell in fn.__closure__ or ():
        refs.append(lambda c=cell: c.cell_contents if _filled(c) else _MISSING)
    names, stack = set(), [code]
    while stack:
        co = stack.pop()
        names.update(co.co_names)
        stack += [c for c in co.co_consts if hasattr(c, "co_names")]
    for name in sorted(names):
        if name in glb and _guardable(glb[name]):
            refs.append(lambda n=name: glb.get(n, _MISSING))
    return tuple(refs)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _guardable(v) -> bool:
    """Values whose change a replay would miss (functions, classes and Python modules
    are looked up again when traced anew only; they are not guarded)."""
    return not isinstance(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                              type, Compiled))


_GUARDED_ITEMS = 256  # the largest list or dict of scalars guarded by its items


def _is_scalar_value(v) -> bool:
    return isinstance(v, _SCALARS) or (type(v) is tuple and len(v) <= _GUARDED_ITEMS and all(
        isinstance(x, _SCALARS) for x in v))


def _value_key(v):
    """A hashable stand-in that changes when a traced call could read ``v`` differently:
    scalars and tuples of them by value; a list or dict of scalars (settings, a schedule:
    up to 256 items) by its items, so that a changed setting traces anew; a module by
    its flags, scalar attributes and parameter buffers; a tensor by its storage; anything
    else (an optimizer, a list of objects) by identity. A value the traced call changes
    itself (a log it appends to) is guarded by identity instead (``Compiled._rekey``),
    and host data a trace turns into tensors (``cg.tensor(a_list)``) is read anew at each
    replay anyway."""
    if isinstance(v, _SCALARS):
        return (type(v), v)
    if isinstance(v, Module):
        return (id(v),) + _module_key(v)
    if isinstance(v, registry.Tensor):
        return (id(v), v._storage.buf.int_ptr)
    if type(v) is tuple and _is_scalar_value(v):
        return _typed(v)
    if type(v) is list and len(v) <= _GUARDED_ITEMS and all(_is_scalar_value(x) for x in v):
        return (id(v), tuple(map(_typed, v)))
    if type(v) is dict and len(v) <= _GUARDED_ITEMS:
        items = tuple(v.items())
        if all(isinstance(k, _SCALARS) and _is_scalar_value(x) for k, x in items):
            return (id(v), tuple((k, _typed(x)) for k, x in items))
    return id(v)


def _make_plan(cap: Capture, tensors: list, result):
    """A plan for the traced call, with a compiled backward when its result requires
    grad; Unreplayable when the call cannot be replayed."""
    devs = {t.device.info for t in tensors}
    devs |= {st[2] for st in cap.created.values()}
    if len(devs) > 1:
        raise Unreplayable("it uses more than one device")
    dev = devs.pop() if devs else registry.default_device().info
    outs: list = []
    flatten(result, outs)
    diff = [i for i, t in enumerate(outs) if t.requires_grad and
            t.grad_fn is not None and t.grad_fn.inputs]
    if diff:
        return Differentiable(cap, tensors, result, outs, diff, dev)
    return plan.build(cap, tensors, result, dev)


def _grad_state(w):
    """Whether a leaf's ``.grad`` is None when a call begins: a plan assigns the gradient
    where the trace found None and accumulates where it found one, so a call that finds
    the other gets its own plan."""
    def read():
        leaf = w()
        return "gone" if leaf is None else leaf._grad is None
    return read


def _state_changed(cap: Capture) -> str | None:
    """Why the call cannot replay when it left host state a replay does not update (which
    DistributedDataParallel's bookkeeping is) other than it found it."""
    for read, (v, why) in cap.host_state.items():
        if read() != v:
            return why
    return None


def _opt_snapshot(opt) -> tuple:
    """An optimizer's hyperparameters a traced step baked into its kernels: all but the
    learning rate, which a replay reads anew (the update kernels' refresh)."""
    groups = []
    for g in opt.param_groups:
        items = [(k, repr(v)) for k, v in g.items() if k not in ("params", "lr")]
        items.append(("n", len(g["params"])))
        groups.append(tuple(items))
    return tuple(groups)


def compile(fn=None, *, cache_size_limit: int = CACHE_SIZE_LIMIT, **options):
    """Compile ``fn`` (a function or an nn.Module); usable as ``@cg.compile`` and
    ``@cg.compile(...)``. ``cache_size_limit``: input signatures that get a compiled plan;
    later new ones run eagerly (with a warning). Other options are accepted for
    torch.compile compatibility (mode, fullgraph, dynamic, backend) and do not change what
    clgraph does."""
    if fn is None:
        return lambda f: compile(f, cache_size_limit=cache_size_limit, **options)
    if isinstance(fn, Compiled):
        return fn
    if isinstance(fn, Module):
        c = Compiled(fn.__call__, module=fn)
    elif callable(fn):
        c = Compiled(fn)
    else:
        raise TypeError(f"cg.compile expects a function or an nn.Module, but got "
                        f"{type(fn).__name__}: {fn!r}")
    c._limit = int(cache_size_limit)
    return c
