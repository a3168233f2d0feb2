"""The exporter's exceptions, named as torch.onnx.errors names them. Imports nothing."""

from __future__ import annotations


class OnnxExporterError(RuntimeError):
    """An export failed: the model cannot be written as an ONNX graph as it is."""


class UnsupportedOperatorError(OnnxExporterError):
    """An op the model applied has no ONNX mapping (the message names the op and where the
    model applied it)."""
