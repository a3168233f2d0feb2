"""cg.optim: PyTorch's optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and learning-rate
schedulers. Each parameter's update is one fused in-place kernel; no host reads during
step()."""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
