"""cg.optim: PyTorch's optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax,
NAdam, RAdam, Rprop, ASGD, LBFGS, Adafactor, Muon), learning-rate schedulers and swa_utils.
Each update but LBFGS's, Adafactor's and Muon's is written once with ops and fused into one
in-place kernel; a step() runs every parameter's in one launch, with no host reads. LBFGS
reads the scalars its line search and stopping tests need, Adafactor two norms per
parameter; Muon's update is a chain of matmuls."""

import importlib

from . import lr_scheduler
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = ["ASGD", "LBFGS", "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW",
           "Adamax", "Muon", "NAdam", "Optimizer", "RAdam", "RMSprop", "Rprop", "lr_scheduler",
           "swa_utils"]


def __getattr__(name):
    """cg.optim.swa_utils is imported on first use: it builds on cg.nn, which is imported
    after cg.optim."""
    if name == "swa_utils":
        return importlib.import_module(".swa_utils", __name__)
    raise AttributeError(f"module 'clgraph.optim' has no attribute '{name}'")
