"""cg.optim: PyTorch's optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and learning-rate
schedulers. Each update is written once with ops and fused into one in-place kernel; a
step() runs every parameter's in one launch, with no host reads."""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
