"""RMSprop, optionally centered and with momentum."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from .optimizer import Optimizer, _check, _check_flags, _number, _update


class RMSprop(Optimizer):
    """torch.optim.RMSprop. Per parameter and step: one fused kernel that updates the
    parameter, its square average and (centered) gradient average and momentum buffer."""

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
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                state = self.state[p]
                if not state:
                    self._init_state(p, group)
                state["step"] += 1
                tensors = {"p": p, "g": g, "sq": state["square_avg"]}
                if momentum > 0:
                    tensors["buf"] = state["momentum_buffer"]
                if centered:
                    tensors["ga"] = state["grad_avg"]
                _step(tensors, lr, alpha, eps, wd, momentum, centered, group["maximize"],
                      _refresh(group, state))
        return loss


def _refresh(group, state):
    def again(advance=True):
        if advance:
            state["step"] += 1
        return {"neglr": -group["lr"]}

    return again


def _step(tensors, lr, alpha, eps, wd, momentum, centered, maximize, refresh):
    """The RMSprop update (and its state) in one kernel."""
    scalars = {"alpha": alpha, "alpha1": 1 - alpha, "eps": eps, "neglr": -lr}
    steps, g = fused.grad_prologue(maximize, wd, scalars)
    steps.append(("sq1", f"({{sq}} * {{alpha}} + {g} * {g} * {{alpha1}})"))
    writes = {"sq1": "sq"}
    if centered:
        steps.append(("ga1", f"({{ga}} + ({g} - {{ga}}) * {{alpha1}})"))
        steps.append(("avg", "(sqrt({sq1} - {ga1} * {ga1}) + {eps})"))
        writes["ga1"] = "ga"
    else:
        steps.append(("avg", "(sqrt({sq1}) + {eps})"))
    if momentum > 0:
        scalars["mom"] = momentum
        steps.append(("buf1", f"({{buf}} * {{mom}} + {g} / {{avg}})"))
        steps.append(("p1", "({p} + {neglr} * {buf1})"))
        writes["buf1"] = "buf"
    else:
        steps.append(("p1", f"({{p}} + {{neglr}} * {g} / {{avg}})"))
    _update("rmsprop", tensors, scalars, tuple(steps), {"p1": "p", **writes}, refresh)
