"""torch.optim.swa_utils: weight averaging (AveragedModel with the SWA and EMA averaging
functions), the SWALR schedule and update_bn, which recomputes batch-norm statistics for
averaged weights. Builds on cg.nn (imported on first use of cg.optim.swa_utils)."""

from __future__ import annotations

import itertools
import math
from copy import deepcopy
from typing import Any

from .. import creation
from .. import dtypes as dt
from ..autograd import no_grad
from ..nn import Module
from ..nn.layers import _BatchNorm
from ..tensor import Tensor
from .lr_scheduler import LRScheduler

__all__ = ["SWALR", "AveragedModel", "get_ema_avg_fn", "get_ema_multi_avg_fn",
           "get_swa_avg_fn", "get_swa_multi_avg_fn", "update_bn"]


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")


def get_ema_multi_avg_fn(decay: float = 0.999):
    """An in-place exponential moving average over lists of tensors:
    ema = decay * ema + (1 - decay) * current."""
    _check_decay(decay)

    @no_grad()
    def ema_update(ema_param_list, current_param_list, _):
        if ema_param_list[0].is_floating_point():
            for p_ema, p in zip(ema_param_list, current_param_list):
                p_ema.lerp_(p, 1 - decay)
        else:
            for p_ema, p in zip(ema_param_list, current_param_list):
                p_ema.copy_(p_ema * decay + p * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn():
    """An in-place running mean over lists of tensors: avg += (current - avg) / (n + 1)."""

    @no_grad()
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        if averaged_param_list[0].is_floating_point():
            # a count tensor makes the weight a tensor of the default float dtype, as in
            # PyTorch
            weight = (1 / (num_averaged + 1)).item() if isinstance(num_averaged, Tensor) \
                else 1 / (num_averaged + 1)
            for p_avg, p in zip(averaged_param_list, current_param_list):
                p_avg.lerp_(p, weight)
        else:
            for p_avg, p in zip(averaged_param_list, current_param_list):
                p_avg.copy_(p_avg + (p - p_avg) / (num_averaged + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """decay * ema + (1 - decay) * current, as a new tensor."""
    _check_decay(decay)

    @no_grad()
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """avg + (current - avg) / (n + 1), as a new tensor."""

    @no_grad()
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """torch.optim.swa_utils.AveragedModel: a deep copy of ``model`` whose parameters (and,
    with ``use_buffers``, buffers) ``update_parameters`` averages with ``avg_fn`` (one
    tensor at a time) or ``multi_avg_fn`` (lists); the running mean (SWA) by default. The
    count is the buffer ``n_averaged``."""

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None,
                 use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", creation.tensor(0, dtype=dt.int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        if self.use_buffers:
            mine = itertools.chain(self.module.parameters(), self.module.buffers())
            theirs = itertools.chain(model.parameters(), model.buffers())
        else:
            mine, theirs = self.parameters(), model.parameters()
        n = int(self.n_averaged.item())
        averaged, current = [], []
        for p_avg, p in zip(mine, theirs):
            p = p.detach().to(p_avg.device)
            averaged.append(p_avg.detach())
            current.append(p)
            if n == 0:
                p_avg.detach().copy_(p)
        if n > 0:
            if self.multi_avg_fn is not None:
                # PyTorch groups the lists by device and dtype before a multi_avg_fn
                groups: dict = {}
                for p_avg, p in zip(averaged, current):
                    lists = groups.setdefault((p_avg.device, p_avg.dtype), ([], []))
                    lists[0].append(p_avg)
                    lists[1].append(p)
                for (device, _), (avg_list, cur_list) in groups.items():
                    self.multi_avg_fn(avg_list, cur_list, self.n_averaged.to(device))
            else:
                # the running mean by default (PyTorch's path for CPU tensors)
                fn = self.avg_fn or get_swa_avg_fn()
                for p_avg, p in zip(averaged, current):
                    p_avg.copy_(fn(p_avg, p, self.n_averaged.to(p_avg.device)))
        if not self.use_buffers:
            for b_avg, b in zip(self.module.buffers(), model.buffers()):
                b_avg.detach().copy_(b.detach().to(b_avg.device))
        self.n_averaged += 1


@no_grad()
def update_bn(loader, model: Module, device=None) -> None:
    """Recompute the running statistics of every batch-norm layer of ``model`` over one
    pass of ``loader`` (cumulative averages; the first item of a list or tuple batch is the
    input)."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    for input in loader:
        if isinstance(input, (list, tuple)):
            input = input[0]
        if device is not None:
            input = input.to(device)
        model(input)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to its ``swa_lr`` over ``anneal_epochs`` epochs ("cos" or
    "linear"), then hold it."""

    def __init__(self, optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        swa_lrs = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else (
            [swa_lr] * len(optimizer.param_groups))
        if len(swa_lrs) != len(optimizer.param_groups):
            raise ValueError(f"swa_lr must have the same length as optimizer.param_groups. "
                             f"swa_lr has {len(swa_lrs)} values, param_groups has "
                             f"{len(optimizer.param_groups)}.")
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else (
            self._linear_anneal)

    def get_lr(self) -> list[float]:
        # the lr before annealing is recovered from the current one, so changes made to it
        # by hand carry on, as in PyTorch
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        groups = self.optimizer.param_groups
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev_lrs)]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
