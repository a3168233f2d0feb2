"""torch.nn.modules: one submodule per PyTorch file (``linear``, ``conv``, ``rnn``,
``transformer``, ``activation``...) re-exporting clgraph's classes under the paths that
PyTorch checkpoints and code name (``clgraph.nn.modules.linear.Linear is clgraph.nn.Linear``);
every class is also a name of this package, as in PyTorch. ``clgraph.nn.modules`` loads on
first use."""

# ruff: noqa: F401  (the classes are re-exports)

from __future__ import annotations

from . import (activation, batchnorm, container, conv, distance, dropout, flatten, instancenorm,
               linear, loss, module, normalization, padding, pixelshuffle, pooling, rnn, sparse,
               transformer, upsampling)
from .activation import (ELU, GELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid,
                         LogSoftmax, Mish, MultiheadAttention, PReLU, ReLU, ReLU6, Sigmoid,
                         SiLU, Softmax, Softmin, Softplus, Softsign, Tanh, Threshold)
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d
from .flatten import Flatten, Unflatten
from .linear import Identity, Linear
from .distance import CosineSimilarity
from .instancenorm import InstanceNorm2d
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss,
                   MSELoss, NLLLoss, SmoothL1Loss)
from .module import Module
from .normalization import GroupNorm, LayerNorm, RMSNorm
from .padding import ZeroPad2d
from .pixelshuffle import PixelShuffle
from .pooling import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, MaxPool1d,
                      MaxPool2d)
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .sparse import Embedding
from .transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,
                          TransformerEncoder, TransformerEncoderLayer)
from .upsampling import Upsample

__all__ = sorted(name for f in (activation, batchnorm, container, conv, distance, dropout,
                                flatten, instancenorm, linear, loss, module, normalization,
                                padding, pixelshuffle, pooling, rnn, sparse, transformer,
                                upsampling) for name in f.__all__)
