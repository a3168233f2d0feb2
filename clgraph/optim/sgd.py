"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros_like
from ..ops.math import add
from ..ops import fused
from .optimizer import Optimizer, _check, _check_flags, _number


class SGD(Optimizer):
    """torch.optim.SGD. Per parameter and step: one kernel without momentum, two with it
    (``buf = momentum * buf + grad`` is one kernel when dampening is 0)."""

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
        # only where the fused update runs: its first step is the same kernel with other
        # scalars (the op-by-op path's first step copies the gradient instead)
        if group["momentum"] != 0 and fused.fusable(p, p.grad):
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
        for group in self.param_groups:
            lr, mu, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if mu != 0:
                    buf = self.state[p].get("momentum_buffer")
                    if buf is not None and fused.fusable(p, grad, buf):
                        first = self._unstepped.pop(id(buf), None) is buf
                        _fused_step(p, grad, buf, lr, mu, damp, wd, nesterov,
                                    group["maximize"], group, first)
                        continue
                self._lr_static()
                g = -grad if group["maximize"] else grad
                if wd != 0:
                    g = g.add(p, alpha=wd)
                if mu != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.clone() if g is grad else g
                    elif damp == 0:
                        add(g, buf, alpha=mu, out=buf)
                    else:
                        buf.mul_(mu).add_(g, alpha=1 - damp)
                    g = g.add(buf, alpha=mu) if nesterov else buf
                p.add_(g, alpha=-lr)
        return loss


def _fused_step(p, grad, buf, lr, mu, damp, wd, nesterov, maximize, group, first=False):
    """Momentum buffer and parameter updated in one kernel (the formulas of SGD.step). The
    first step of a buffer made ahead (zeros) stores the gradient: buf's weight 0, the
    gradient's 1; a replay's later steps use mu and 1 - dampening."""
    scalars = {"mu": mu, "mub": 0.0 if first else mu, "damp1": 1.0 if first else 1 - damp,
               "neglr": -lr}
    steps, g = fused.grad_prologue(maximize, wd, scalars)
    steps.append(("b1", f"({{mub}} * {{b}} + {{damp1}} * {g})"))
    upd = f"({g} + {{mu}} * {{b1}})" if nesterov else "{b1}"
    steps.append(("p1", f"({{p}} + {{neglr}} * {upd})"))

    def refresh(advance=True):
        return {"neglr": -group["lr"], "mub": group["momentum"],
                "damp1": 1 - group["dampening"]}

    fused.update("sgd", {"p": p, "g": grad, "b": buf}, scalars, tuple(steps),
                 {"p1": "p", "b1": "b"}, refresh=refresh)
