"""torch.nn on clgraph: Module and its containers, the layers, the losses, ``functional``
and ``init``. ``import clgraph.nn as nn`` and ``import clgraph.nn.functional as F`` work as
their torch counterparts."""

from __future__ import annotations

import importlib

from . import functional, init, parameter, utils
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .layers import (ELU, GELU, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d,
                     BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose2d,
                     CosineSimilarity, Dropout, Dropout1d, Dropout2d, Dropout3d, Embedding,
                     Flatten, GroupNorm, Hardtanh, Identity, InstanceNorm2d, LayerNorm,
                     LeakyReLU, Linear, LogSigmoid, LogSoftmax, MaxPool1d, MaxPool2d, Mish,
                     PixelShuffle, PReLU, ReLU6, RMSNorm, SiLU, Softmax, Softmin, Softplus,
                     Softsign, Threshold, Unflatten, Upsample, ZeroPad2d)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss,
                   MSELoss, NLLLoss, SmoothL1Loss)
from .module import Module
from .parameter import Buffer, Parameter
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .transformer import (MultiheadAttention, Transformer, TransformerDecoder,
                          TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer)

from .._bindings import bind_nn

bind_nn(vars(functional), globals(), Module)  # ops' functional aliases and Modules (ReLU)


def __getattr__(name: str):
    """``nn.modules`` (PyTorch's file paths for the classes above) loads on first use."""
    if name == "modules":
        return importlib.import_module(".modules", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(name for name, value in globals().items()
                 if not name.startswith("_") and name not in ("annotations", "bind_nn")
                 and (not isinstance(value, type(functional))
                      or name in ("functional", "init", "parameter", "utils")))
