"""Fused in-place updates written as ordinary ops.

An update is a Python function of tensors and named scalars, written with clgraph's
elementwise ops; its in-place ops (``m.lerp_(g, w)``, ``p.addcdiv_(...)``) are its results.
``update`` runs it once symbolically: an interpreter pushed on the dispatch stack takes
each op's row (dtype rule and OpenCL expression) and adds it to one multi-output
elementwise group instead of launching it, the vertical and multi-output fusion the
compiler does on traced graphs. The group's kernel is kept per (function, options, dtype,
device), so every later update is one launch over any same-shaped contiguous tensors,
whatever their size. The optimizers write each update once this way (optim/*.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import NamedTuple

from .. import codegen, runtime
from .. import dtypes as dt
from ..codegen import EwGroup, fuse
from ..codegen.emit import CONTIG, SCALAR, packer
from . import elementwise, registry


class Hyper(float):
    """A named scalar operand of an update: its value may change from one call to the next
    (a learning rate, a bias correction), so it is a kernel argument, never a constant of
    the kernel's source. Use it as an op's operand as it is: arithmetic on it in Python
    gives a plain float, which the kernel would keep as a constant."""

    __slots__ = ("name",)

    def __new__(cls, value, name: str):
        h = super().__new__(cls, value)
        h.name = name
        return h


class Unfusable(Exception):
    """An update function did something one elementwise kernel cannot."""


class _Symbolic(registry.Interpreter):
    """Builds an update's group: each elementwise op becomes an expression node over the
    update's tensors, its scalars and earlier nodes; nothing runs on the device."""

    def __init__(self, tensors: dict):
        self.inputs: list = []  # (dtype name, layout) per kernel input
        self.scalars: list = []  # (input index, Hyper name or None, value) per scalar input
        self.nodes: list = []  # (op row, argument refs, casts, out dtype, attrs)
        self.value: dict = {}  # id(tensor) -> ("in", i) or ("op", j)
        self.keep: list = []  # the placeholders whose ids ``value`` holds
        self.written: dict = {}  # tensor name -> ("op", j), its final value
        self.names = {id(t): k for k, t in tensors.items()}
        for t in tensors.values():
            self.value[id(t)] = ("in", len(self.inputs))
            self.inputs.append((t.dtype.name, CONTIG))
        self.anchor = next(iter(tensors.values()))

    def _ref(self, a, cast):
        if isinstance(a, registry.Tensor):
            ref = self.value.get(id(a))
            if ref is None or a._shape != self.anchor._shape:
                raise Unfusable("an operand is not one of the update's tensors or values")
            return ref
        self.scalars.append((len(self.inputs), getattr(a, "name", None), a))
        self.inputs.append((cast.name, SCALAR))
        return ("in", len(self.inputs) - 1)

    def process(self, op, args, attrs, out):
        if op.family != "elementwise":
            raise Unfusable(f"{op.name} is not an elementwise op")
        casts, odt, _ = elementwise._signature(op, args, attrs)
        refs = tuple(self._ref(a, c) for a, c in zip(args, casts))
        self.nodes.append((op, refs, casts, odt, attrs))
        ref = ("op", len(self.nodes) - 1)
        if out is not None:
            if id(out) not in self.value or out.dtype is not odt:
                raise Unfusable(f"{op.name}_ writes a tensor that is not one of the update's "
                                "tensors or values, or of another dtype than its result")
            self.value[id(out)] = ref
            name = self.names.get(id(out))
            if name is not None:
                self.written[name] = ref
            return out
        a = self.anchor
        res = registry.Tensor._on(a._storage, a._shape, a._stride, 0, odt, a.device, True)
        self.keep.append(res)
        self.value[id(res)] = ref
        return res

    def group(self, width: int) -> EwGroup:
        nin = len(self.inputs)

        def index(ref):
            return ref[1] if ref[0] == "in" else nin + ref[1]

        ops = tuple(elementwise.ew_op(op, attrs, casts, odt, tuple(map(index, refs)))
                    for op, refs, casts, odt, attrs in self.nodes)
        outputs = tuple((index(ref), ops[ref[1]].out, CONTIG) for ref in self.written.values())
        return EwGroup(tuple(self.inputs), ops, outputs, 0, width, in_place=True)


class _Program:
    """An update's kernel and how its arguments are made from the call's tensors and
    scalars (the kernel's signature): the tensors in order, each scalar input's Hyper name
    (None: a constant) and value, the written tensors' names."""

    __slots__ = ("group", "kern", "pack", "scalars", "tensors", "where", "written")

    def __init__(self, kern, group, tensors, scalars, written):
        self.kern = kern
        self.group = group
        self.pack = packer(group)
        self.tensors = tensors
        self.scalars = scalars
        self.written = written
        # where each Hyper sits among the kernel's arguments, for a replay's refresh
        at = {p.operand: i for i, p in enumerate(codegen.signature(group))
              if p.kind == "scalar"}
        self.where: dict = {}
        for k, name, _ in scalars:
            if name is not None:
                self.where.setdefault(name, []).append(at[k])


_programs: dict = {}


def _program(fn, options: tuple, tensors: dict, hypers: dict) -> _Program:
    t0 = next(iter(tensors.values()))
    info = t0.device.info
    key = (fn, options, tuple((k, t.dtype) for k, t in tensors.items()), tuple(hypers),
           info.index)
    prog = _programs.get(key)
    if prog is not None:
        return prog
    sym = _Symbolic(tensors)
    with registry.push(sym):
        fn(dict(tensors), {k: Hyper(v, k) for k, v in hypers.items()}, **dict(options))
    dtypes = {d for d, _ in sym.inputs} | {t.dtype.name for t in tensors.values()}
    width = min(info.vector_width(dt._BY_NAME[d].compute) for d in dtypes)
    group = sym.group(width)
    prog = _programs[key] = _Program(codegen.elementwise_kernel(info, group), group,
                                     tuple(tensors), tuple(sym.scalars), tuple(sym.written))
    return prog


def written(fn: Callable, tensors: dict, hypers: dict, options: dict | None = None) -> tuple:
    """The names of the tensors ``update(name, fn, tensors, ...)`` writes."""
    return _program(fn, tuple(sorted((options or {}).items())), tensors, hypers).written


def fusable(*tensors) -> bool:
    """Same shape, dtype and device, contiguous, floating point: what update() takes."""
    t0 = tensors[0]
    return all(
        t._contig and t._shape == t0._shape and t.dtype is t0.dtype and t.device is t0.device
        and t.dtype.is_floating_point for t in tensors
    )


def update(name: str, fn: Callable, tensors: dict, hypers: dict, options: dict | None = None,
           refresh: Callable | None = None, now: bool = False) -> None:
    """``fn(tensors, hypers, **options)`` (ops; its in-place ops its results) as one kernel
    over ``tensors`` (fusable(): same shape, dtype, device, contiguous) with the scalar
    operands ``hypers`` (name -> value); ``options`` (hashable values) select what the
    function does and key its kernel. ``refresh(advance)`` (optional) returns the scalars
    anew: a compiled replay calls it at each step (an optimizer's step count and learning
    rate live on the host); with advance=False it only peeks. Inside ``one_launch()`` the
    update waits for the block's end unless ``now``."""
    prog = _program(fn, tuple(sorted((options or {}).items())), tensors, hypers)
    t0 = tensors[prog.tensors[0]]
    n = t0.numel()
    if n == 0:
        return
    for k in prog.written:
        runtime.bump(tensors[k]._storage)
    item = _Item(name, prog, tensors, hypers, refresh, n)
    pending = getattr(_collect, "items", None)
    if pending is not None and not now and not runtime.observers:
        pending.append(item)
    else:
        _launch_one(item)


class _Item(NamedTuple):
    name: str
    prog: _Program
    tensors: dict
    hypers: dict
    refresh: Callable | None
    n: int

    def tensor_name(self, k: int) -> str | None:
        """The name of the tensor that is the group's input or output ``k`` (outputs
        numbered after the inputs); None for a scalar input."""
        nin = len(self.prog.group.inputs)
        if k >= nin:
            return self.prog.written[k - nin]
        return self.prog.tensors[k] if k < len(self.prog.tensors) else None

    def operand(self, k: int):
        """The group's input or output ``k``: a tensor or a scalar."""
        name = self.tensor_name(k)
        if name is not None:
            return self.tensors[name]
        _, hname, value = self.prog.scalars[k - len(self.prog.tensors)]
        return self.hypers[hname] if hname is not None else value


def _launch_one(item: _Item) -> None:
    prog, n = item.prog, item.n
    nin = len(prog.group.inputs)
    args = prog.pack(n, (), [item.operand(k) for k in range(nin)],
                     [item.operand(nin + j) for j in range(len(prog.written))], ())
    remap = None
    if item.refresh is not None:
        def remap(advance=True):
            return {i: v for k, v in item.refresh(advance).items()
                    for i in prog.where.get(k, ())}

    kern = prog.kern
    t0 = item.tensors[prog.tensors[0]]
    registry.launch(t0.device.info, kern.kernel, f"{item.name}_update",
                    (kern.global_size(n),), (kern.local,), args, remap)


# --- several updates, one launch ----------------------------------------------------------

_collect = threading.local()  # .items: the updates one_launch() collects in this thread


@contextlib.contextmanager
def one_launch():
    """Collect the updates of the block and launch them at its end side by side in one
    kernel per device (horizontal fusion, fuse.fused_kernel), kept per set of updates: an
    optimizer's step() over all its parameters is one launch. Under a compile trace each
    update launches alone and the compiler fuses them."""
    if getattr(_collect, "items", None) is not None:  # nested: the outer block launches
        yield
        return
    _collect.items = []
    try:
        yield
    finally:
        items, _collect.items = _collect.items, None
        by_device: dict = {}
        for it in items:
            by_device.setdefault(it.tensors[it.prog.tensors[0]].device.info, []).append(it)
        for info, group in by_device.items():
            for chunk in _chunks(info, group):
                if len(chunk) == 1:
                    _launch_one(chunk[0])
                else:
                    _launch_fused(info, chunk)


def _chunks(info, items: list) -> list:
    """``items`` in runs whose arguments fit one kernel's parameter space."""
    budget = min(info.cl_device.max_parameter_size, 4096) - 64
    out, cur, used = [], [], 0
    for it in items:
        size = 8 * (len(it.prog.tensors) + len(it.prog.scalars))
        if cur and (used + size > budget or len(cur) == 64):
            out.append(cur)
            cur, used = [], 0
        cur.append(it)
        used += size
    return out + [cur] if cur else out


_fused: dict = {}


def _segment(si: int, item: _Item) -> fuse.Segment:
    """One update as a segment of a horizontally fused kernel: its tensors are buffer
    parameters (an output shares its input's), offsets and sizes literals, Hyper scalars
    dynamic parameters (refreshed at each launch), constants literals."""
    values = []
    for p in codegen.signature(item.prog.group):
        if p.operand < 0:
            values.append(("lit", item.n))
            continue
        x = item.operand(p.operand)
        if p.kind == "buf":
            values.append(("buf", (si, item.tensor_name(p.operand))))
        elif p.kind == "scalar":
            hname = item.prog.scalars[p.operand - len(item.prog.tensors)][1]
            values.append(("dyn", hname) if hname is not None else ("lit", x))
        else:
            values.append(("lit", x._offset))
    return fuse.Segment(item.prog.group, values)


def _launch_fused(info, items: list) -> None:
    key = (info.index, tuple((it.prog, it.n, tuple(t._offset for t in it.tensors.values()))
                             for it in items))
    fk = _fused.get(key)
    if fk is None:
        segs = [_segment(si, it) for si, it in enumerate(items)]
        fk = fuse.fused_kernel(segs, codegen.local_size(info))
        fuse.build_all(info, [fk])
        codegen.set_arg_types(fk.kernel, [None] * len(fk.buffers) + [t for *_, t in fk.dyn])
        if len(_fused) >= 256:  # models come and go (tests, notebooks): keep the recent
            _fused.clear()
        _fused[key] = fk
    # each buffer parameter is (update, tensor name), each dynamic one (update, Hyper name)
    bufs = fk.buffers
    args = [items[si].tensors[k]._storage.buf for si, k in bufs]
    args += [items[si].hypers[hname] for si, hname, _ in fk.dyn]
    remap = None
    if any(it.refresh is not None for it in items):
        nb = len(bufs)

        def remap(advance=True):
            fresh = [it.refresh(advance) if it.refresh is not None else {} for it in items]
            return {nb + j: fresh[si][h] for j, (si, h, _) in enumerate(fk.dyn)
                    if h in fresh[si]}

    registry.launch(info, fk.kernel, fk.name, (fk.global_size,), (fk.local,), args, remap)
