"""RAdam: Adam with a rectified adaptive learning rate, with (decoupled) weight decay and
maximize."""

from __future__ import annotations

import math

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from .adam import adam_moments
from .optimizer import Optimizer, _check_adam_args, _check_flags, _number, _update


class RAdam(Optimizer):
    """torch.optim.RAdam. A step updates every parameter and its moments in one launch.
    Whether a step is rectified depends on the step count only: the host picks the
    scalars of one kernel, which serves both kinds of step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        lr = _number(lr)
        _check_adam_args(lr, betas, eps, weight_decay)
        _check_flags(differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)

    @no_grad()
    def step(self, closure=None):
        """m, v as Adam's; rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t) with
        rho_inf = 2 / (1 - beta2) - 1; when rho_t > 5: p -= lr * m / (1 - beta1^t) * r_t *
        sqrt(1 - beta2^t) / (sqrt(v) + eps) (r_t the rectification), else
        p -= lr * m / (1 - beta1^t)."""
        loss = self._evaluate(closure)
        with fused.one_launch():  # every parameter's update in one kernel
            for group in self.param_groups:
                wd = group["weight_decay"]
                options = {"maximize": group["maximize"], "wd": wd != 0,
                           "decoupled": group["decoupled_weight_decay"]}
                for p, g, state in self._with_grad(group):
                    state["step"] = t = state["step"] + 1
                    tensors = {"p": p, "g": g, "m": state["exp_avg"], "v": state["exp_avg_sq"]}
                    _update("radam", radam_update, tensors, _scalars(group, t), options,
                            _refresh(group, state))
        return loss


def _scalars(group, t: float) -> dict:
    """Step ``t``'s scalars. The step is p += m * (a + b / (sqrt(v) * c + e)): rectified,
    a = 0, c = 1, e = eps; not, b = 0, c = 0, e = 1 (so v = 0 gives no 0 / 0)."""
    beta1, beta2 = group["betas"]
    lr = group["lr"]
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / bc2
    hypers = {"b1c": 1 - beta1, "b2": beta2, "b2c": 1 - beta2, "wd": group["weight_decay"],
              "decay": 1 - lr * group["weight_decay"]}
    if rho_t > 5.0:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        hypers.update(a=0.0, b=-lr * rect * math.sqrt(bc2) / bc1, c=1.0, e=group["eps"])
    else:
        hypers.update(a=-lr / bc1, b=0.0, c=0.0, e=1.0)
    return hypers


def _refresh(group, state):
    def again(advance=True):
        t = state["step"] + 1
        if advance:
            state["step"] = t
        return _scalars(group, t)

    return again


def radam_update(t, h, *, maximize, wd, decoupled):
    """RAdam's update of ``t["p"]`` and its moments ``t["m"]``, ``t["v"]``, as ops."""
    p, g, m, v = adam_moments(t, h, maximize, wd, decoupled)
    p.add_(m * (h["a"] + h["b"] / (v.sqrt() * h["c"] + h["e"])))
