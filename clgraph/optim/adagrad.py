"""Adagrad with learning-rate decay."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import full_like
from ..ops import fused
from .optimizer import Optimizer, _check, _check_flags, _number, _update


def _refresh(group, state):
    def again(advance=True):
        t = state["step"] + 1
        if advance:
            state["step"] = t
        return {"negclr": -group["lr"] / (1 + (t - 1) * group["lr_decay"])}

    return again


class Adagrad(Optimizer):
    """torch.optim.Adagrad. State is created at construction, like PyTorch's. A step
    updates every parameter and its sum of squares in one launch."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        lr = _number(lr)
        _check(lr >= 0.0, "learning rate", lr)
        _check(lr_decay >= 0.0, "lr_decay value", lr_decay)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        _check(initial_accumulator_value >= 0.0, "initial_accumulator_value value",
               initial_accumulator_value)
        _check(eps >= 0.0, "epsilon value", eps)
        _check_flags(differentiable)
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = 0.0
                state["sum"] = full_like(p, initial_accumulator_value)

    @no_grad()
    def step(self, closure=None):
        """sum += g * g; p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)."""
        loss = self._evaluate(closure)
        with fused.one_launch():  # every parameter's update in one kernel
            for group in self.param_groups:
                lr, lr_decay, eps, wd = (group["lr"], group["lr_decay"], group["eps"],
                                         group["weight_decay"])
                for p, g, state in self._with_grad(group):
                    state["step"] = t = state["step"] + 1
                    hypers = {"eps": eps, "negclr": -lr / (1 + (t - 1) * lr_decay), "wd": wd}
                    _update("adagrad", adagrad_update, {"p": p, "g": g, "s": state["sum"]}, hypers,
                            {"maximize": group["maximize"], "wd": wd != 0}, _refresh(group, state))
        return loss


def adagrad_update(t, h, *, maximize, wd):
    """Adagrad's update of ``t["p"]`` and its sum of squares ``t["s"]``, as ops."""
    p, g, s = t["p"], t["g"], t["s"]
    if maximize:
        g = -g
    if wd:
        g = g + p * h["wd"]
    s.addcmul_(g, g)
    p.addcdiv_(g, s.sqrt() + h["eps"], value=h["negclr"])
