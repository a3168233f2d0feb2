"""torch.nn on clgraph: Module and its containers, the layers, the losses, ``functional``
and ``init``. ``import clgraph.nn as nn`` and ``import clgraph.nn.functional as F`` work as
their torch counterparts."""

from __future__ import annotations

from . import functional, init, parameter
from .container import ModuleDict, ModuleList, Sequential
from .layers import (GELU, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d,
                     Dropout, Embedding, Flatten, Identity, LayerNorm, LeakyReLU, Linear,
                     LogSoftmax, MaxPool2d, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh,
                     Unflatten)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss,
                   SmoothL1Loss)
from .module import Module
from .parameter import Buffer, Parameter

__all__ = ["GELU", "AdaptiveAvgPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss",
           "BatchNorm1d", "BatchNorm2d", "Buffer", "Conv2d", "CrossEntropyLoss", "Dropout",
           "Embedding", "Flatten", "Identity", "L1Loss", "LayerNorm", "LeakyReLU", "Linear",
           "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList",
           "NLLLoss", "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss",
           "Softmax", "Softplus", "Tanh", "Unflatten", "functional", "init", "parameter"]
