"""ASGD: averaged stochastic gradient descent, with weight decay and maximize."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from .optimizer import Optimizer, _check, _check_flags, _number, _update


class ASGD(Optimizer):
    """torch.optim.ASGD. A step updates every parameter and its average ``ax`` in one
    launch; ``eta`` and ``mu`` are Python floats in the state (PyTorch's 0-d tensors)."""

    _host_state = ("step", "eta", "mu")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        lr = _number(lr)
        _check(lr >= 0.0, "learning rate", lr)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        _check_flags(differentiable)
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        state["eta"] = _scalar(group["lr"])
        state["mu"] = 1.0
        state["ax"] = zeros_like(p)

    @no_grad()
    def step(self, closure=None):
        """p = p * (1 - lambd * eta) - eta * g; ax += (p - ax) * mu (ax = p while mu is 1);
        then eta = lr / (1 + lambd * lr * step) ** alpha, mu = 1 / max(1, step - t0)."""
        loss = self._evaluate(closure)
        with fused.one_launch():
            for group in self.param_groups:
                wd = group["weight_decay"]
                for p, g, state in self._with_grad(group):
                    tensors = {"p": p, "g": g, "ax": state["ax"]}
                    options = {"maximize": group["maximize"], "wd": wd != 0,
                               "average": state["mu"] != 1}
                    refresh = _refresh(group, state)
                    _update("asgd", asgd_update, tensors, refresh(), options, refresh)
        return loss


def _scalar(x: float) -> float:
    """``x`` rounded as PyTorch's state tensors hold it: float32 unless the default dtype
    is float64."""
    return float(x) if dtypes.get_default_dtype() is dtypes.float64 else float(np.float32(x))


def _refresh(group, state):
    """A step's scalars (from eta and mu before it); unless only peeking, count the step
    and move eta and mu on."""
    def again(advance=True):
        eta, mu, lambd = state["eta"], state["mu"], group["lambd"]
        if advance:
            state["step"] += 1
            lr, step = group["lr"], state["step"]
            state["eta"] = _scalar(lr / ((1 + lambd * lr * step) ** group["alpha"]))
            state["mu"] = _scalar(1 / max(1, step - group["t0"]))
        return {"decay": 1 - lambd * eta, "negeta": -eta, "mu": mu,
                "wd": group["weight_decay"]}

    return again


def asgd_update(t, h, *, maximize, wd, average):
    """ASGD's update of ``t["p"]`` and its average ``t["ax"]``, as ops."""
    p, g, ax = t["p"], t["g"], t["ax"]
    if maximize:
        g = -g
    if wd:
        g = g + p * h["wd"]
    p.mul_(h["decay"]).add_(g * h["negeta"])
    if average:
        ax.add_((p - ax) * h["mu"])
    else:
        ax.copy_(p)
