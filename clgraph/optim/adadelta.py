"""Adadelta, with weight decay and maximize."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from .optimizer import Optimizer, _check, _check_flags, _number, _step_lr_refresh, _update


class Adadelta(Optimizer):
    """torch.optim.Adadelta. A step updates every parameter, its square average and its
    accumulated delta in one launch."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        lr = _number(lr)
        _check(lr >= 0.0, "learning rate", lr)
        _check(0.0 <= rho <= 1.0, "rho value", rho)
        _check(eps >= 0.0, "epsilon value", eps)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        _check_flags(differentiable)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        state["square_avg"] = zeros_like(p)
        state["acc_delta"] = zeros_like(p)

    @no_grad()
    def step(self, closure=None):
        """v = rho * v + (1 - rho) * g * g; delta = sqrt(u + eps) / sqrt(v + eps) * g;
        u = rho * u + (1 - rho) * delta * delta; p -= lr * delta."""
        loss = self._evaluate(closure)
        with fused.one_launch():  # every parameter's update in one kernel
            for group in self.param_groups:
                wd = group["weight_decay"]
                for p, g, state in self._with_grad(group):
                    state["step"] += 1
                    tensors = {"p": p, "g": g, "v": state["square_avg"],
                               "u": state["acc_delta"]}
                    hypers = {"rho": group["rho"], "rho1": 1 - group["rho"],
                              "eps": group["eps"], "neglr": -group["lr"], "wd": wd}
                    _update("adadelta", adadelta_update, tensors, hypers,
                            {"maximize": group["maximize"], "wd": wd != 0},
                            _step_lr_refresh(group, state))
        return loss


def adadelta_update(t, h, *, maximize, wd):
    """Adadelta's update of ``t["p"]``, its square average ``t["v"]`` and accumulated
    delta ``t["u"]``, as ops."""
    p, g, v, u = t["p"], t["g"], t["v"], t["u"]
    if maximize:
        g = -g
    if wd:
        g = g + p * h["wd"]
    v.mul_(h["rho"]).addcmul_(g, g, value=h["rho1"])
    delta = (u + h["eps"]).sqrt() / (v + h["eps"]).sqrt() * g
    u.mul_(h["rho"]).addcmul_(delta, delta, value=h["rho1"])
    p.add_(delta * h["neglr"])
