"""torch.nn.modules: one submodule per PyTorch file (``linear``, ``conv``, ``rnn``,
``transformer``, ``activation``...) re-exporting clgraph's classes under the paths that
PyTorch checkpoints and code name (``clgraph.nn.modules.linear.Linear is clgraph.nn.Linear``);
every class is also a name of this package, as in PyTorch. ``clgraph.nn.modules`` loads on
first use."""

# ruff: noqa: F401  (the classes are re-exports)

from __future__ import annotations

from . import (activation, batchnorm, container, conv, dropout, flatten, linear, loss, module,
               normalization, pooling, rnn, sparse, transformer, upsampling)
from .activation import (GELU, Hardsigmoid, Hardswish, LeakyReLU, LogSoftmax,
                         MultiheadAttention, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh)
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d
from .flatten import Flatten, Unflatten
from .linear import Identity, Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss,
                   SmoothL1Loss)
from .module import Module
from .normalization import GroupNorm, LayerNorm, RMSNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .sparse import Embedding
from .transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,
                          TransformerEncoder, TransformerEncoderLayer)
from .upsampling import Upsample

__all__ = sorted(name for f in (activation, batchnorm, container, conv, dropout, flatten,
                                linear, loss, module, normalization, pooling, rnn, sparse,
                                transformer, upsampling) for name in f.__all__)
