"""Adamax: Adam with the infinity norm, with weight decay and maximize."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from ..ops.registry import functions
from .optimizer import Optimizer, _check_adam_args, _check_flags, _number, _update


class Adamax(Optimizer):
    """torch.optim.Adamax. A step updates every parameter, its first moment and its
    infinity norm in one launch."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        lr = _number(lr)
        _check_adam_args(lr, betas, eps, weight_decay)
        _check_flags(differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        state["exp_avg"] = zeros_like(p)
        state["exp_inf"] = zeros_like(p)

    @no_grad()
    def step(self, closure=None):
        """m = lerp(m, g, 1 - beta1); u = max(beta2 * u, |g| + eps);
        p -= lr / (1 - beta1^t) * m / u."""
        loss = self._evaluate(closure)
        with fused.one_launch():  # every parameter's update in one kernel
            for group in self.param_groups:
                wd = group["weight_decay"]
                for p, g, state in self._with_grad(group):
                    state["step"] = t = state["step"] + 1
                    tensors = {"p": p, "g": g, "m": state["exp_avg"], "u": state["exp_inf"]}
                    _update("adamax", adamax_update, tensors, _scalars(group, t),
                            {"maximize": group["maximize"], "wd": wd != 0},
                            _refresh(group, state))
        return loss


def _scalars(group, t) -> dict:
    beta1, beta2 = group["betas"]
    return {"b1c": 1 - beta1, "b2": beta2, "eps": group["eps"],
            "wd": group["weight_decay"], "negclr": -group["lr"] / (1 - beta1**t)}


def _refresh(group, state):
    def again(advance=True):
        t = state["step"] + 1
        if advance:
            state["step"] = t
        return _scalars(group, t)

    return again


def adamax_update(t, h, *, maximize, wd):
    """Adamax's update of ``t["p"]``, its first moment ``t["m"]`` and infinity norm
    ``t["u"]``, as ops."""
    p, g, m, u = t["p"], t["g"], t["m"], t["u"]
    if maximize:
        g = -g
    if wd:
        g = g + p * h["wd"]
    m.lerp_(g, h["b1c"])
    u = functions.maximum(u.mul_(h["b2"]), g.abs() + h["eps"], out=u)
    p.addcdiv_(m, u, value=h["negclr"])
