"""export(): record the forward (twice with dynamic axes), convert each step through the
handler tables, name the graph's inputs and outputs, check the model with onnx.checker and
write it. Imports the onnx package, nn.Module and this package's modules.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os

import onnx
from onnx import helper

from ..nn.module import Module
from ..tensor import Tensor
from . import functional, record, symbolic
from .builder import Builder, onnx_type
from .errors import OnnxExporterError, UnsupportedOperatorError

MIN_OPSET = 14
HANDLERS = {**{("op", k): v for k, v in symbolic.OPS.items()},
            **{("op", k): v for k, v in functional.ROWS.items()},
            **{("fn", k): v for k, (_, v) in functional.FUNCTIONS.items()}}


def export(model, args, f, *, kwargs, export_params, verbose, training, input_names,
           output_names, opset_version, dynamic_axes, keep_initializers_as_inputs):
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset_version <= newest:
        raise ValueError(f"cg.onnx.export: opset_version {opset_version} is not supported "
                         f"(from {MIN_OPSET} to {newest})")
    args, kwargs = _split_args(args, kwargs)
    params = _parameter_names(model)
    rules = {name: _accepting(accepts, opset_version)
             for name, (accepts, _) in functional.FUNCTIONS.items()}
    with _mode(model, training):
        first = record.record(model, args, kwargs, set(params), rules)
        names_in = _names(input_names, _default_input_names(model, args, kwargs))
        names_out = _names(output_names, ["output"] if len(first.outputs) == 1 else
                           [f"output_{i}" for i in range(len(first.outputs))])
        axes = _dynamic_axes(dynamic_axes or {}, first, names_in, names_out)
        second = _second_run(model, args, kwargs, first, axes, names_in, params, rules)
    b = Builder(opset_version, params, first.constants, not export_params)
    graph_inputs = _inputs(b, first, second, names_in, axes)
    _convert(b, first, second)
    graph_outputs = _outputs(b, first, second, names_out, axes, graph_inputs)
    _prune(b, [o.name for o in graph_outputs])
    inputs = graph_inputs + b.param_inputs
    if keep_initializers_as_inputs:
        inputs += [helper.make_tensor_value_info(n, t.data_type, list(t.dims))
                   for n, t in b.initializers.items()]
    graph = helper.make_graph(b.nodes, "main_graph", inputs, graph_outputs,
                              initializer=list(b.initializers.values()))
    opsets = [helper.make_opsetid("", opset_version)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="clgraph",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    if verbose:
        print(onnx.printer.to_text(proto))
    _write(proto, f)
    return proto


def _accepting(accepts, opset: int):
    return lambda arguments: accepts(arguments, opset)


def _split_args(args, kwargs):
    """PyTorch's forms: a tensor, a tuple of arguments, one ending in a dict of keywords."""
    if not isinstance(args, tuple):
        args = (args,)
    kwargs = dict(kwargs or {})
    if args and isinstance(args[-1], dict):
        kwargs.update(args[-1])
        args = args[:-1]
    return args, kwargs


def _parameter_names(model) -> dict:
    """id -> state-dict name of the model's parameters and buffers (first name wins)."""
    names = {}
    if isinstance(model, Module):
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            names.setdefault(id(t), name)
    return names


@contextlib.contextmanager
def _mode(model, training):
    """The model in eval mode (TrainingMode.EVAL), train mode (TRAINING) or as it is
    (PRESERVE), restored afterwards."""
    if not isinstance(model, Module) or int(training) == 1:
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    model.train(int(training) == 2)
    try:
        yield
    finally:
        for m, was in modes:
            m.training = was


def _default_input_names(model, args, kwargs) -> list:
    """The forward's parameter names (``x``), numbered where an argument holds several
    tensors (``hx.0``, ``hx.1``)."""
    try:
        sig = inspect.signature(model.forward if isinstance(model, Module) else model)
        params = [p.name for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = []
    for i, (base, value) in enumerate([*zip(params + [None] * len(args), args),
                                        *kwargs.items()]):
        base = base or f"input_{i}"
        leaves = [t for t in record.flatten(value) if isinstance(t, Tensor)]
        names += [base] if isinstance(value, Tensor) else [f"{base}.{j}"
                                                            for j in range(len(leaves))]
    return names


def _names(given, defaults: list) -> list:
    given = list(given or [])
    if len(given) > len(defaults):
        raise ValueError(f"cg.onnx.export: {len(given)} names given for {len(defaults)} "
                         "tensors")
    names = given + defaults[len(given):]
    if len(set(names)) != len(names):
        raise ValueError(f"cg.onnx.export: duplicate input or output names {names}")
    return names


def _dynamic_axes(spec: dict, first, names_in, names_out) -> dict:
    """name -> {axis: dim name} from PyTorch's forms ({axis: name} or [axes])."""
    ranks = dict(zip(names_in, (t.ndim for t in first.inputs)))
    ranks.update(zip(names_out, (t.ndim for t in first.outputs)))
    out = {}
    for name, axes in spec.items():
        if name not in ranks:
            raise ValueError(f"cg.onnx.export: dynamic_axes names {name!r}, which is not an "
                             f"input or output name ({names_in + names_out})")
        if not isinstance(axes, dict):
            axes = {a: f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
        n = ranks[name]
        for a in axes:
            if not -n <= a < n:
                raise ValueError(f"cg.onnx.export: dynamic axis {a} of {name!r} is out of "
                                 f"range for its {n} dims")
        out[name] = {a % n: str(d) for a, d in axes.items()}
    return out


def _second_run(model, args, kwargs, first, axes, names_in, params, rules):
    """The forward again on inputs whose dynamic dims are resized (larger, or if the model
    refuses that, smaller), or None without dynamic input axes."""
    dims = {}
    for name, t in zip(names_in, first.inputs):
        for a, d in axes.get(name, {}).items():
            dims.setdefault(d, t.shape[a])
    if not dims:
        return None
    error = None
    for sign in (1, -1):
        new = {d: n + sign * (k + 1) for k, (d, n) in enumerate(dims.items())}
        if min(new.values()) < 2:
            continue
        by_id = {}
        for name, t in zip(names_in, first.inputs):
            sizes = {a: new[d] for a, d in axes.get(name, {}).items()}
            by_id[id(t)] = record.resized(t, sizes) if sizes else t
        a2, k2 = _replace(args, by_id), _replace(kwargs, by_id)
        try:
            return record.record(model, a2, k2, set(params), rules)
        except Exception as e:  # noqa: BLE001  (the model may refuse one size, not the other)
            error = e
    raise OnnxExporterError(f"cg.onnx.export: the model fails on inputs with the dynamic axes "
                            f"resized, so they cannot be dynamic (dims that must agree need "
                            f"one name in dynamic_axes): {error!r}") from error


def _replace(value, by_id):
    if isinstance(value, Tensor):
        return by_id.get(id(value), value)
    if isinstance(value, (tuple, list)):
        return type(value)(_replace(v, by_id) for v in value)
    if isinstance(value, dict):
        return {k: _replace(v, by_id) for k, v in value.items()}
    return value


def _inputs(b: Builder, first, second, names, axes) -> list:
    infos = []
    for i, (name, t) in enumerate(zip(names, first.inputs)):
        twin = second.inputs[i] if second else None
        if id(t) not in b.values:
            b.taken.add(name)
            b.bind(t, twin, name)
        dims = [axes.get(name, {}).get(a, n) for a, n in enumerate(t.shape)]
        infos.append(helper.make_tensor_value_info(name, onnx_type(t.dtype), dims))
    return infos


def _convert(b: Builder, first, second) -> None:
    steps = second.steps if second else None
    if steps is not None and len(steps) != len(first.steps):
        raise OnnxExporterError(
            f"cg.onnx.export: the forward applies {len(first.steps)} ops, and "
            f"{len(steps)} with the dynamic axes resized: its ops depend on those sizes "
            "(a loop over a dynamic dim, such as a recurrent layer's time steps, is "
            "unrolled); leave those axes static")
    for i, s in enumerate(first.steps):
        s.twin = steps[i] if steps else None
        b.scope, b.where = s.module, s.where
        _check_twin(s)
        handler = HANDLERS.get((s.kind, s.name))
        if handler is None:
            raise UnsupportedOperatorError(
                f"cg.onnx.export: op '{s.name}' has no ONNX mapping (applied {s.where})")
        b.prepare(s.tensors(), s.twin.tensors() if s.twin else None)
        names = handler(b, s)
        _bind_outputs(b, s, names)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001  (values without a truth value compare unequal)
        return False


def _check_twin(s) -> None:
    """The step in the second run is the same op with the same static arguments."""
    t = s.twin
    if t is None:
        return
    if (t.kind, t.name, len(t.tensors()), len(t.outs)) != (s.kind, s.name, len(s.tensors()),
                                                           len(s.outs)):
        raise OnnxExporterError(
            f"cg.onnx.export: the forward applies '{s.name}' (at {s.where}) but '{t.name}' "
            "when the dynamic axes are resized: its ops depend on those sizes; leave those "
            "axes static")
    mine, theirs = s.statics(), t.statics()
    skip = symbolic.DYNAMIC_ATTRS.get(s.name, ()) if s.kind == "op" else ()
    for key, value in mine.items():
        if key not in skip and not _same(value, theirs.get(key)):
            raise OnnxExporterError(
                f"cg.onnx.export: argument {key!r} of '{s.name}' is {value!r}, and "
                f"{theirs.get(key)!r} when the dynamic axes are resized ({s.where}): a "
                "Python number computed from a dynamic size is baked into the graph; "
                "compute it with tensor ops or leave that axis static")


def _bind_outputs(b: Builder, s, names) -> None:
    if s.inplace:
        w = s.outs[0]
        if w.numel() * w.dtype.itemsize != w._storage.nbytes:
            raise OnnxExporterError(
                f"cg.onnx.export: '{s.name}' writes in place into part of a tensor (a view, "
                f"slice assignment) {s.where}; the graph has no aliasing: write it "
                "out of place")
        for v in b.values.values():
            if v.tensor is not w and v.tensor._storage is w._storage:
                v.stale = True
    twins = s.twin.outs if s.twin else (None,) * len(s.outs)
    for t, twin, name in zip(s.outs, twins, names):
        if t is not None:
            b.bind(t, twin, name)


def _outputs(b: Builder, first, second, names, axes, graph_inputs) -> list:
    known = {}  # (size, twin size) -> dim name, from the inputs' dynamic axes
    for info, t in zip(graph_inputs, first.inputs):
        for a, d in axes.get(info.name, {}).items():
            known[(t.shape[a], b.shapes(t)[1][a])] = d
    claimed = {i.name for i in graph_inputs + b.param_inputs} | set(b.initializers)
    infos = []
    for i, (name, t) in enumerate(zip(names, first.outputs)):
        b.scope, b.where = "", "(a graph output)"
        b.prepare([t], [second.outputs[i]] if second else None)
        value = b.name(t)
        if value != name:
            if name in b.taken:
                raise ValueError(f"cg.onnx.export: output name {name!r} is taken by an "
                                 "input, a parameter or another value of the graph")
            if value in claimed:  # an input, a parameter or an earlier output: a copy
                b.taken.add(name)
                b.nodes.append(helper.make_node("Identity", [value], [name],
                                                name=b.fresh(f"/{name}/Identity")))
            else:
                b.rename(value, name)
        claimed.add(name)
        shape, twin = b.shapes(t)
        dims = []
        for a, (n, m) in enumerate(zip(shape, twin)):
            given = axes.get(name, {}).get(a)
            dims.append(given or (known.get((n, m), f"{name}_dim_{a}") if n != m else n))
        infos.append(helper.make_tensor_value_info(name, onnx_type(t.dtype), dims))
    return infos


def _prune(b: Builder, outputs: list) -> None:
    """Drop the nodes and initializers no output depends on (an unused output of a
    multi-output node stays with its node)."""
    live, kept = set(outputs), []
    for node in reversed(b.nodes):
        if live.intersection(node.output):
            kept.append(node)
            live.update(node.input)
    b.nodes[:] = kept[::-1]
    for name in [n for n in b.initializers if n not in live]:
        del b.initializers[name]


def _write(proto, f) -> None:
    if f is None:
        return
    if hasattr(f, "write"):
        f.write(proto.SerializeToString())
    else:
        onnx.save_model(proto, os.fspath(f))
