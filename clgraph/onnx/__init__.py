"""cg.onnx: write a model's forward as an ONNX graph (torch.onnx.export).

The forward runs once eagerly (twice with ``dynamic_axes``) with a recording layer pushed on
the dispatch stack (record.py); the recorded op rows and nn.functional calls become ONNX
nodes (symbolic.py, functional.py) through a graph builder (builder.py), assembled and
checked by exporter.py. The ``onnx`` package is imported by export() only, so
``import clgraph`` never needs it (``pip install clgraph[onnx]``). Imports only its own
errors at load time."""

from __future__ import annotations

import enum

from .errors import OnnxExporterError, UnsupportedOperatorError

__all__ = ["OnnxExporterError", "TrainingMode", "UnsupportedOperatorError", "export"]


# PyTorch's options that change nothing here
_IGNORED = {"operator_export_type", "custom_opsets", "export_modules_as_functions",
            "autograd_inlining", "external_data", "report", "optimize", "verify", "profile",
            "fallback"}


class TrainingMode(enum.IntEnum):
    """The mode the model is exported in (torch.onnx.TrainingMode)."""

    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


def export(model, args=(), f=None, *, kwargs: dict | None = None, export_params: bool = True,
           verbose: bool = False, training: TrainingMode = TrainingMode.EVAL,
           input_names: list[str] | None = None, output_names: list[str] | None = None,
           opset_version: int | None = 17, do_constant_folding: bool = True,
           dynamic_axes: dict | None = None, keep_initializers_as_inputs: bool = False,
           dynamo: bool = False, **options):
    """Export ``model`` (an nn.Module or a function of tensors) called on ``args`` to ONNX,
    as torch.onnx.export: ``f`` a path or a binary file object (None: write nothing);
    ``input_names``/``output_names`` name the flattened inputs and outputs;
    ``dynamic_axes`` ({name: {axis: dim_name}} or {name: [axes]}) makes those dims
    symbolic. Parameters and buffers become initializers named by their state-dict names.
    Returns the ``onnx.ModelProto`` (PyTorch returns None or an ONNXProgram).

    What differs from PyTorch: the graph is what the forward applied on these inputs, op
    by op; Python control flow is unrolled (a recurrent layer becomes one cell per step,
    so its sequence length stays static). With ``dynamic_axes`` the forward runs a second
    time with those dims resized, and every shape the two runs disagree on is computed in
    the graph (Shape, Concat, or 0 and -1 in a Reshape); what cannot follow raises: a loop
    over a dynamic dim, a Python number computed from a dynamic size, a tensor made
    outside the ops (``cg.tensor``, ``arange``) whose shape follows one. Random numbers
    drawn in the forward (dropout in training mode, sampling) raise too, as do in-place
    writes into part of a tensor. Attention whose keys are all masked for a query gives
    NaN in the graph (zeros in clgraph). ``do_constant_folding``, ``dynamo`` and PyTorch's
    options that pick among its own exporters are accepted and ignored. Default opset 17
    (LayerNormalization; Gelu from opset 20); opsets 14 and newer are supported."""
    unknown = set(options) - _IGNORED
    if unknown:
        raise TypeError(f"cg.onnx.export() got unexpected keyword arguments {sorted(unknown)}"
                        + ("; shapes are made dynamic with dynamic_axes"
                           if "dynamic_shapes" in unknown else ""))
    from . import exporter  # imports the optional onnx package

    return exporter.export(
        model, args, f, kwargs=kwargs, export_params=export_params, verbose=verbose,
        training=training, input_names=input_names, output_names=output_names,
        opset_version=17 if opset_version is None else opset_version,
        dynamic_axes=dynamic_axes, keep_initializers_as_inputs=keep_initializers_as_inputs)
