"""torch.nn.modules.activation: the activation layers and MultiheadAttention. The
elementwise ones (ReLU, Sigmoid, ...) are made from their ops when ``clgraph.nn`` is imported,
so they come from the package itself."""

from __future__ import annotations

from .. import Hardsigmoid, Hardswish, ReLU, Sigmoid, Tanh
from ..layers import (
    CELU,
    ELU,
    GELU,
    SELU,
    Hardshrink,
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
    Softshrink,
    Softsign,
    Tanhshrink,
    Threshold,
)
from ..transformer import MultiheadAttention

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "MultiheadAttention",
    "PReLU",
    "ReLU",
    "ReLU6",
    "SELU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "Tanh",
    "Tanhshrink",
    "Threshold",
]
