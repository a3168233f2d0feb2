"""torch.nn.modules.activation: the activation layers and MultiheadAttention. The
elementwise ones (ReLU, Sigmoid, ...) are made from their ops when ``clgraph.nn`` is imported,
so they come from the package itself."""

from __future__ import annotations

from .. import Hardsigmoid, Hardswish, ReLU, Sigmoid, Tanh
from ..layers import (
    ELU,
    GELU,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU6,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softsign,
    Threshold,
)
from ..transformer import MultiheadAttention

__all__ = ["ELU", "GELU", "Hardsigmoid", "Hardswish", "Hardtanh", "LeakyReLU", "LogSigmoid",
           "LogSoftmax", "Mish", "MultiheadAttention", "PReLU", "ReLU", "ReLU6", "SiLU",
           "Sigmoid", "Softmax", "Softmin", "Softplus", "Softsign", "Tanh", "Threshold"]
