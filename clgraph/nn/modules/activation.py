"""torch.nn.modules.activation: the activation layers and MultiheadAttention. The
elementwise ones (ReLU, Sigmoid, ...) are made from their ops when ``clgraph.nn`` is imported,
so they come from the package itself."""

from __future__ import annotations

from .. import Hardsigmoid, Hardswish, ReLU, Sigmoid, Tanh
from ..layers import GELU, LeakyReLU, LogSoftmax, SiLU, Softmax, Softplus
from ..transformer import MultiheadAttention

__all__ = ["GELU", "Hardsigmoid", "Hardswish", "LeakyReLU", "LogSoftmax", "MultiheadAttention",
           "ReLU", "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh"]
