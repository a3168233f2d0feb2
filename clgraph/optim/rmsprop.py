"""RMSprop, optionally centered and with momentum."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from .optimizer import Optimizer, _check, _check_flags, _number, _step_lr_refresh, _update


class RMSprop(Optimizer):
    """torch.optim.RMSprop. A step updates every parameter, its square average and
    (centered) gradient average and momentum buffer in one launch."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        lr = _number(lr)
        _check(lr >= 0.0, "learning rate", lr)
        _check(eps >= 0.0, "epsilon value", eps)
        _check(momentum >= 0.0, "momentum value", momentum)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        _check(alpha >= 0.0, "alpha value", alpha)
        _check_flags(differentiable)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "capturable": capturable,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        state["square_avg"] = zeros_like(p)
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = zeros_like(p)

    @no_grad()
    def step(self, closure=None):
        """v = alpha * v + (1 - alpha) * g * g; centered: avg g tracked and v - avg^2 used;
        p -= lr * g / (sqrt(v) + eps), through a momentum buffer when momentum > 0."""
        loss = self._evaluate(closure)
        with fused.one_launch():  # every parameter's update in one kernel
            for group in self.param_groups:
                lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
                wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
                for p, g, state in self._with_grad(group):
                    state["step"] += 1
                    tensors = {"p": p, "g": g, "sq": state["square_avg"]}
                    if momentum > 0:
                        tensors["buf"] = state["momentum_buffer"]
                    if centered:
                        tensors["ga"] = state["grad_avg"]
                    _step(tensors, lr, alpha, eps, wd, momentum, centered, group["maximize"],
                          _step_lr_refresh(group, state))
        return loss


def _step(tensors, lr, alpha, eps, wd, momentum, centered, maximize, refresh):
    """The RMSprop update (and its state) in one kernel."""
    hypers = {"alpha": alpha, "alpha1": 1 - alpha, "eps": eps, "neglr": -lr, "wd": wd,
              "mom": momentum}
    _update("rmsprop", rmsprop_update, tensors, hypers, {"maximize": maximize, "wd": wd != 0},
            refresh)


def rmsprop_update(t, h, *, maximize, wd):
    """RMSprop's update of ``t["p"]``, its square average ``t["sq"]`` and, when present,
    its gradient average ``t["ga"]`` (centered) and momentum buffer ``t["buf"]``, as ops."""
    p, g, sq = t["p"], t["g"], t["sq"]
    if maximize:
        g = -g
    if wd:
        g = g + p * h["wd"]
    sq.mul_(h["alpha"]).addcmul_(g, g, value=h["alpha1"])
    if "ga" in t:
        ga = t["ga"].lerp_(g, h["alpha1"])
        avg = (sq - ga * ga).sqrt() + h["eps"]
    else:
        avg = sq.sqrt() + h["eps"]
    if "buf" in t:
        buf = t["buf"].mul_(h["mom"]).add_(g / avg)
        p.add_(buf * h["neglr"])
    else:
        p.addcdiv_(g, avg, value=h["neglr"])
