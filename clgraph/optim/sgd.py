"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops import fused
from .optimizer import Optimizer, _check, _check_flags, _number, _update


class SGD(Optimizer):
    """torch.optim.SGD. A step updates every parameter and its momentum buffer in one
    launch (the first step with momentum also makes the buffer)."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        lr = _number(lr)
        _check(lr >= 0.0, "learning rate", lr)
        _check(momentum >= 0.0, "momentum value", momentum)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        _check_flags(differentiable)
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self._unstepped = {}
        super().__init__(params, defaults)

    # momentum buffers made before their first step (zeros, see _init_state), by id: that
    # step stores the gradient itself, as PyTorch's first step does
    _unstepped: dict

    def _init_state(self, p, group):
        # the first step is the same kernel as every later one, with other scalars
        if group["momentum"] != 0:
            buf = self.state[p]["momentum_buffer"] = zeros_like(p)
            self._unstepped[id(buf)] = buf

    def __setstate__(self, state):
        super().__setstate__(state)
        self._unstepped = {}
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)

    @no_grad()
    def step(self, closure=None):
        """One update: g = grad (+ weight_decay * p); buf = momentum * buf + (1 - dampening)
        * g; p -= lr * (g + momentum * buf if nesterov else buf)."""
        loss = self._evaluate(closure)
        with fused.one_launch():  # every parameter's update in one kernel
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    tensors = {"p": p, "g": p.grad}
                    first = False
                    if group["momentum"] != 0:
                        buf = self.state[p].get("momentum_buffer")
                        if buf is None:
                            self._init_state(p, group)
                            buf = self.state[p]["momentum_buffer"]
                        tensors["b"] = buf
                        first = self._unstepped.pop(id(buf), None) is buf
                    _step(tensors, group, first)
        return loss


def _step(tensors, group, first=False):
    """The parameter (and its momentum buffer) updated in one kernel. The first step of a
    buffer made ahead (zeros) stores the gradient: buf's weight 0, the gradient's 1; a
    replay's later steps use momentum and 1 - dampening."""
    mu = group["momentum"]
    hypers = {"neglr": -group["lr"], "wd": group["weight_decay"]}
    if mu != 0:
        hypers.update(mu=mu, mub=0.0 if first else mu,
                      damp1=1.0 if first else 1 - group["dampening"])
    options = {"maximize": group["maximize"], "wd": group["weight_decay"] != 0,
               "nesterov": group["nesterov"]}

    def refresh(advance=True):
        return {"neglr": -group["lr"], "mub": group["momentum"],
                "damp1": 1 - group["dampening"]}

    _update("sgd", sgd_update, tensors, hypers, options, refresh)


def sgd_update(t, h, *, maximize, wd, nesterov):
    """SGD's update of ``t["p"]`` (and its momentum buffer ``t["b"]``), as ops."""
    p, g = t["p"], t["g"]
    if maximize:
        g = -g
    if wd:
        g = g + p * h["wd"]
    if "b" in t:
        b = t["b"].mul_(h["mub"]).add_(g * h["damp1"])
        g = g + b * h["mu"] if nesterov else b
    p.add_(g * h["neglr"])
