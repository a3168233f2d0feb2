"""The ONNX graph under construction: value names for the recorded tensors, initializers,
nodes, and the shapes that follow a dynamic axis.

Each recorded tensor has a Value: its name in the graph and its shape in the recorded run
and in the second run (``twin``: the same shape unless a dynamic axis reaches it). A size
the two runs disagree on is a dynamic dim, found again in the graph as a dim of an
earlier value with the same pair of sizes (Shape, then Gather) or as a product of two such
dims. Imports the onnx package, dtypes and the Tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .. import dtypes as dt
from ..tensor import Tensor
from .errors import OnnxExporterError

INT64_MAX = 2**63 - 1


def onnx_type(d: dt.dtype) -> int:
    """The TensorProto element type of a clgraph dtype."""
    if d is dt.bfloat16:
        return TensorProto.BFLOAT16
    return helper.np_dtype_to_tensor_dtype(d.np)


@dataclass(eq=False)
class Value:
    """A tensor in the graph: ``shape`` in the recorded run, ``twin`` in the second."""

    name: str | None  # None: an output the graph does not compute
    dtype: dt.dtype
    shape: tuple
    twin: tuple
    tensor: Tensor  # holds the id the values table is keyed by
    stale: bool = False


class Builder:
    """Nodes, initializers and value names of one graph. ``params``: id -> state-dict name
    of the parameters and buffers; ``constants``: id -> array of the other tensors the
    forward read (Trace.constants); ``params_as_inputs``: parameters are graph inputs
    (export_params=False)."""

    def __init__(self, opset: int, params: dict, constants: dict, params_as_inputs: bool):
        self.opset = opset
        self.params = params
        self.constants = constants
        self.params_as_inputs = params_as_inputs
        self.values: dict[int, Value] = {}
        self.nodes: list = []
        self.initializers: dict = {}  # name -> TensorProto
        self.param_inputs: list = []  # ValueInfoProto of parameters made graph inputs
        self.taken: set = set()
        self._consts: dict = {}  # (dtype, shape, bytes) -> name, small constants shared
        self._dims: dict = {}  # (size, twin size) -> (value name, axis): where a dim lives
        self._dim_names: dict = {}  # (size, twin size) -> name of an int64[1] holding it
        self.scope = ""  # the module path of the step being converted (node names)
        self.where = ""  # where the step was applied (messages)

    # --- names, nodes, constants ---------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def node(self, op_type: str, inputs: list, n: int = 1, **attrs):
        """Add a node; returns its output name (a list when ``n`` != 1)."""
        base = f"/{self.scope}/{op_type}" if self.scope else f"/{op_type}"
        name = self.fresh(base)
        outs = [self.fresh(f"{name}_output_{i}") for i in range(n)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if n == 1 else outs

    def const(self, array, name: str | None = None) -> str:
        """An initializer holding ``array`` (small ones are shared)."""
        array = np.asarray(array)
        key = None
        if name is None and array.size <= 16:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(name or "onnx::Constant")
        self.initializers[name] = numpy_helper.from_array(array, name)
        if key is not None:
            self._consts[key] = name
        return name

    def scalar(self, value, d: dt.dtype) -> str:
        if d is dt.bfloat16:
            raise OnnxExporterError("cg.onnx.export: bfloat16 constants are not supported")
        return self.const(np.array(value, dtype=d.np))

    def ints(self, values) -> str:
        return self.const(np.array(list(values), dtype=np.int64))

    def cast(self, name: str, src: dt.dtype, dst: dt.dtype) -> str:
        return name if src is dst else self.node("Cast", [name], to=onnx_type(dst))

    # --- values ------------------------------------------------------------------------
    def bind(self, t: Tensor, twin: Tensor | None, name: str) -> None:
        """``name`` is now the value of tensor ``t`` (``twin``: it in the second run)."""
        tw = tuple(twin.shape) if twin is not None else tuple(t.shape)
        if len(tw) != t.ndim:
            raise OnnxExporterError(f"cg.onnx.export: a tensor's rank changes with the dynamic "
                                    f"axes ({list(t.shape)} and {list(tw)}) {self.where}")
        self.values[id(t)] = Value(name, t.dtype, tuple(t.shape), tw, t)
        for axis, (a, b) in enumerate(zip(t.shape, tw)):
            if a != b:
                self._dims.setdefault((a, b), (name, axis))

    def name(self, t: Tensor) -> str:
        v = self.values[id(t)]
        if v.name is None:
            raise OnnxExporterError(f"cg.onnx.export: the model reads an output the graph "
                                    f"does not compute {self.where}")
        if v.stale:
            raise OnnxExporterError(
                "cg.onnx.export: a tensor is read after an in-place op changed the storage it "
                f"shares with another tensor {self.where}; the graph has no aliasing")
        return v.name

    def rename(self, old: str, new: str) -> bool:
        """Rename a node's output everywhere (False when ``new`` is taken)."""
        if new in self.taken:
            return False
        self.taken.add(new)
        for node in self.nodes:
            for names in (node.input, node.output):
                for k, n in enumerate(names):
                    if n == old:
                        names[k] = new
        for v in self.values.values():
            if v.name == old:
                v.name = new
        self._dims = {k: (new if n == old else n, a) for k, (n, a) in self._dims.items()}
        return True

    def shapes(self, t: Tensor) -> tuple[tuple, tuple]:
        v = self.values[id(t)]
        return v.shape, v.twin

    def out_shapes(self, s, i: int) -> tuple[tuple, tuple]:
        """The shapes of step ``s``'s output ``i`` in the two runs."""
        shape = tuple(s.outs[i].shape)
        return shape, tuple(s.twin.outs[i].shape) if s.twin is not None else shape

    def dynamic(self, t: Tensor) -> bool:
        v = self.values[id(t)]
        return v.shape != v.twin

    def static_dim(self, t: Tensor, axis: int, what: str) -> int:
        v = self.values[id(t)]
        if v.shape[axis] != v.twin[axis]:
            raise OnnxExporterError(f"cg.onnx.export: {what} needs dim {axis} static, but a "
                                    f"dynamic axis reaches it {self.where}")
        return v.shape[axis]

    def operand(self, a, d: dt.dtype) -> str:
        """A tensor (cast to ``d``) or a Python scalar (a constant of dtype ``d``)."""
        if isinstance(a, Tensor):
            return self.cast(self.name(a), a.dtype, d)
        return self.scalar(a, d)

    def prepare(self, tensors: list, twins: list | None) -> None:
        """Give the step's input tensors that have no value yet theirs: a parameter's
        initializer (or graph input), a constant read during the forward."""
        for i, t in enumerate(tensors):
            if id(t) in self.values:
                continue
            twin = twins[i] if twins is not None else None
            if id(t) in self.params:
                self._param(t, self.params[id(t)])
            elif id(t) in self.constants:
                self._constant(t, twin, self.constants[id(t)])
            else:
                raise OnnxExporterError(f"cg.onnx.export: a tensor of shape {list(t.shape)} "
                                        f"comes from nowhere the exporter saw {self.where}")

    def _param(self, t: Tensor, name: str) -> None:
        self.taken.add(name)
        if self.params_as_inputs:
            self.param_inputs.append(helper.make_tensor_value_info(
                name, onnx_type(t.dtype), list(t.shape)))
        else:
            if t.dtype is dt.bfloat16:
                raise OnnxExporterError(f"cg.onnx.export: {name} is bfloat16, which the "
                                        "exporter does not write; convert the model first")
            self.initializers[name] = numpy_helper.from_array(t.detach().numpy(), name)
        self.bind(t, None, name)

    def _constant(self, t: Tensor, twin: Tensor | None, array: np.ndarray) -> None:
        if twin is None or tuple(twin.shape) == tuple(t.shape):
            self.bind(t, None, self.const(array, "onnx::Constant"))
            return
        flat = array.reshape(-1)
        if flat.size == 0 or not (flat == flat[0]).all():
            raise OnnxExporterError(
                f"cg.onnx.export: a tensor made outside the ops (cg.tensor, arange, "
                f"from_numpy) has a shape that follows a dynamic axis ({list(t.shape)}, then "
                f"{list(twin.shape)}) {self.where}; make it from the input with tensor ops "
                "or leave that axis static")
        shape = self.shape_vector(tuple(t.shape), tuple(twin.shape))
        fill = numpy_helper.from_array(flat[:1].copy(), "value")
        self.bind(t, twin, self.node("ConstantOfShape", [shape], value=fill))

    # --- dynamic shapes ----------------------------------------------------------------
    def dim(self, a: int, b: int) -> str | None:
        """An int64[1] holding the dim whose sizes in the two runs are (a, b), or None."""
        if a == b:
            return self.ints([a])
        if (a, b) in self._dim_names:
            return self._dim_names[(a, b)]
        found = self._dims.get((a, b))
        if found is not None:
            name, axis = found
            out = self.node("Shape", [name], start=axis, end=axis + 1) if self.opset >= 15 \
                else self.node("Gather", [self.node("Shape", [name]), self.ints([axis])])
        else:
            out = self._product(a, b)
            if out is None:
                return None
        self._dim_names[(a, b)] = out
        return out

    def dim_of(self, t: Tensor, axis: int):
        """Dim ``axis`` of ``t``: an int where static, else an int64[1] read from ``t``."""
        a, b = self.shapes(t)
        if a[axis] == b[axis]:
            return a[axis]
        if self.opset >= 15:
            return self.node("Shape", [self.name(t)], start=axis, end=axis + 1)
        return self.node("Gather", [self.node("Shape", [self.name(t)]), self.ints([axis])])

    def _product(self, a: int, b: int) -> str | None:
        """(a, b) as a known dynamic dim times another known dim or a static factor."""
        for (a1, b1) in list(self._dims):
            if a1 and b1 and a % a1 == 0 and b % b1 == 0:
                rest = (a // a1, b // b1)
                if rest[0] == rest[1] or rest in self._dims:
                    return self.node("Mul", [self.dim(a1, b1), self.dim(*rest)])
        return None

    def vector(self, parts: list) -> str:
        """An int64 vector from ints and names of int64[1] tensors (consecutive ints
        become one constant)."""
        pieces, run = [], []
        for p in parts:
            if isinstance(p, str):
                if run:
                    pieces.append(self.ints(run))
                    run = []
                pieces.append(p)
            else:
                run.append(int(p))
        if run or not pieces:
            pieces.append(self.ints(run))
        return pieces[0] if len(pieces) == 1 else self.node("Concat", pieces, axis=0)

    def shape_vector(self, shape: tuple, twin: tuple, source: tuple | None = None) -> str:
        """A shape as an int64 vector. ``source``: the (shape, twin) of a Reshape's input,
        whose dims the Reshape may copy (0) and whose size lets one entry be -1."""
        parts, free = [], []
        for i, (a, b) in enumerate(zip(shape, twin)):
            if a == b:
                parts.append(a)
            elif source is not None and i < len(source[0]) and (source[0][i], source[1][i]) \
                    == (a, b):
                parts.append(0)
            else:
                d = self.dim(a, b)
                if d is None:
                    free.append(i)
                parts.append(d)
        if free:
            if source is None or len(free) > 1:
                raise OnnxExporterError(
                    f"cg.onnx.export: cannot express the shape {list(shape)} (then "
                    f"{list(twin)}) from the graph's dims {self.where}; leave those axes "
                    "static")
            parts[free[0]] = -1
        return self.vector(parts)

    # --- common patterns ---------------------------------------------------------------
    def reduce(self, op_type: str, x: str, axes, keepdims: bool) -> str:
        """Reduce* over ``axes`` (None: all), with axes as an input where the opset has it."""
        if axes is None:
            return self.node(op_type, [x], keepdims=int(keepdims))
        if self.opset >= 18 or op_type == "ReduceSum":
            return self.node(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.node(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes) -> str:
        return self.node("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x: str, axes) -> str:
        return self.node("Squeeze", [x, self.ints(axes)])

    def shape_tail(self, t: Tensor, k: int) -> str:
        """The last ``k`` dims of ``t`` as an int64 vector."""
        a, b = self.shapes(t)
        if a[-k:] == b[-k:]:
            return self.ints(a[-k:])
        if self.opset >= 15:
            return self.node("Shape", [self.name(t)], start=-k)
        return self.node("Slice", [self.node("Shape", [self.name(t)]), self.ints([-k]),
                                   self.ints([INT64_MAX])])
