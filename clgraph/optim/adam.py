"""Adam and AdamW (decoupled weight decay), with AMSGrad and maximize."""

from __future__ import annotations

import math

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from ..ops.registry import functions
from .optimizer import Optimizer, _check_adam_args, _check_flags, _number, _update


class Adam(Optimizer):
    """torch.optim.Adam. A step updates every parameter and its moments in one launch."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        lr = _number(lr)
        betas = (_number(betas[0], "beta1"), _number(betas[1], "beta2"))
        _check_adam_args(lr, betas, eps, weight_decay)
        _check_flags(differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_like(p)

    @no_grad()
    def step(self, closure=None):
        """One Adam update per parameter with a gradient, PyTorch's algorithm:
        m = lerp(m, g, 1 - beta1); v = beta2 * v + (1 - beta2) * g * g;
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""
        loss = self._evaluate(closure)
        with fused.one_launch():  # every parameter's update in one kernel
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
                amsgrad, decoupled = group["amsgrad"], group["decoupled_weight_decay"]
                for p, g, state in self._with_grad(group):
                    state["step"] = t = state["step"] + 1
                    tensors = {"p": p, "g": g, "m": state["exp_avg"], "v": state["exp_avg_sq"]}
                    if amsgrad:
                        tensors["vm"] = state["max_exp_avg_sq"]
                    _step(tensors, t, lr, beta1, beta2, eps, wd, decoupled, amsgrad,
                          group["maximize"], _refresh(group, state))
        return loss


def _scalars(t, lr, beta1, beta2, eps, wd) -> dict:
    # sqrt(1 - beta2^t) moves from the denominator into the step size: the same value, one
    # operation less per element
    bc2_sqrt = math.sqrt(1 - beta2**t)
    return {"b1c": 1 - beta1, "b2": beta2, "b2c": 1 - beta2, "epsb": eps * bc2_sqrt,
            "step": -lr * bc2_sqrt / (1 - beta1**t), "decay": 1 - lr * wd, "wd": wd}


def _refresh(group, state):
    """The step's scalars at the next step (a compiled replay's view of step())."""
    def again(advance=True):
        t = state["step"] + 1
        if advance:
            state["step"] = t
        return _scalars(t, group["lr"], *group["betas"], group["eps"], group["weight_decay"])

    return again


def _step(tensors, t, lr, beta1, beta2, eps, wd, decoupled, amsgrad, maximize, refresh):
    """The whole update of one parameter (and its moments) in one kernel."""
    hypers = _scalars(t, lr, beta1, beta2, eps, wd)
    options = {"maximize": maximize, "wd": wd != 0, "decoupled": decoupled}
    _update("adam", adam_update, tensors, hypers, options, refresh)


def adam_moments(t, h, maximize, wd, decoupled):
    """What Adam's family (Adam, AdamW, NAdam, RAdam) shares, as ops: the gradient (negated
    to maximize, plus L2 weight decay, or the parameter decayed), and both moments updated
    in place. Returns (p, g, m, v)."""
    p, g, m, v = t["p"], t["g"], t["m"], t["v"]
    if maximize:
        g = -g
    if wd and decoupled:
        p.mul_(h["decay"])
    elif wd:
        g = g + p * h["wd"]
    m.lerp_(g, h["b1c"])
    v.mul_(h["b2"]).addcmul_(g, g, value=h["b2c"])
    return p, g, m, v


def adam_update(t, h, *, maximize, wd, decoupled):
    """Adam's update of ``t["p"]`` and its moments (``t["vm"]``: AMSGrad's maximum), as ops;
    ``h``: this step's scalars (_scalars)."""
    p, g, m, v = adam_moments(t, h, maximize, wd, decoupled)
    if "vm" in t:
        v = functions.maximum(t["vm"], v, out=t["vm"])
    p.addcdiv_(m, v.sqrt() + h["epsb"], value=h["step"])


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (p *= 1 - lr * weight_decay)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
