"""NAdam: Adam with Nesterov momentum and a momentum decay schedule, with (decoupled)
weight decay and maximize."""

from __future__ import annotations

import math

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from .adam import adam_moments
from .optimizer import Optimizer, _check, _check_adam_args, _check_flags, _number, _update


class NAdam(Optimizer):
    """torch.optim.NAdam. A step updates every parameter and its moments in one launch;
    ``"mu_product"`` (the product of the momentum schedule) is a Python float, like
    ``"step"``."""

    _host_state = ("step", "mu_product")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        lr = _number(lr)
        _check_adam_args(lr, betas, eps, weight_decay)
        _check(momentum_decay >= 0.0, "momentum_decay value", momentum_decay)
        _check_flags(differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        state["mu_product"] = 1.0
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)

    @no_grad()
    def step(self, closure=None):
        """mu_t = beta1 * (1 - 0.96^(t * momentum_decay) / 2); m, v as Adam's;
        p -= lr * ((1 - mu_t) / (1 - prod mu_1..t) * g
                   + mu_{t+1} / (1 - prod mu_1..t+1) * m) / (sqrt(v / (1 - beta2^t)) + eps)."""
        loss = self._evaluate(closure)
        with fused.one_launch():  # every parameter's update in one kernel
            for group in self.param_groups:
                wd = group["weight_decay"]
                options = {"maximize": group["maximize"], "wd": wd != 0,
                           "decoupled": group["decoupled_weight_decay"]}
                for p, g, state in self._with_grad(group):
                    hypers = _advance(group, state)
                    tensors = {"p": p, "g": g, "m": state["exp_avg"], "v": state["exp_avg_sq"]}
                    _update("nadam", nadam_update, tensors, hypers, options,
                            _refresh(group, state))
        return loss


def _scalars(group, t: float, mu_product: float) -> tuple[dict, float]:
    """Step ``t``'s scalars, given the momentum product of the steps before; and the
    product including step ``t``."""
    beta1, beta2 = group["betas"]
    lr, decay = group["lr"], group["momentum_decay"]
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * decay))
    product = mu_product * mu
    # sqrt(1 - beta2^t) moves from the denominator into both coefficients (as Adam's)
    bc2_sqrt = math.sqrt(1 - beta2**t)
    hypers = {"b1c": 1 - beta1, "b2": beta2, "b2c": 1 - beta2,
              "epsb": group["eps"] * bc2_sqrt, "wd": group["weight_decay"],
              "decay": 1 - lr * group["weight_decay"],
              "cg": -lr * (1 - mu) / (1 - product) * bc2_sqrt,
              "cm": -lr * mu_next / (1 - product * mu_next) * bc2_sqrt}
    return hypers, product


def _advance(group, state) -> dict:
    """Count a step in ``state`` and return its scalars."""
    state["step"] = t = state["step"] + 1
    hypers, state["mu_product"] = _scalars(group, t, state["mu_product"])
    return hypers


def _refresh(group, state):
    def again(advance=True):
        if advance:
            return _advance(group, state)
        return _scalars(group, state["step"] + 1, state["mu_product"])[0]

    return again


def nadam_update(t, h, *, maximize, wd, decoupled):
    """NAdam's update of ``t["p"]`` and its moments ``t["m"]``, ``t["v"]``, as ops."""
    p, g, m, v = adam_moments(t, h, maximize, wd, decoupled)
    p.addcdiv_(g * h["cg"] + m * h["cm"], v.sqrt() + h["epsb"])
