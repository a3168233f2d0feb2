"""Adafactor: factored second moments (a row and a column mean of g^2 for matrices), with
PyTorch's relative step size, update clipping and decoupled weight decay. A step reads two
norms per parameter to the host (the parameter's RMS and the update's), as PyTorch's
does."""

from __future__ import annotations

import math

from ..autograd import no_grad
from ..creation import zeros_like
from ..dtypes import finfo
from .optimizer import Optimizer, _number


class Adafactor(Optimizer):
    """torch.optim.Adafactor (PyTorch's variant: ``lr`` caps the relative step size and
    scales the weight decay; ``eps[0]`` None is the parameter dtype's eps)."""

    def __init__(self, params, lr=1e-2, beta2_decay: float = -0.8,
                 eps: tuple = (None, 1e-3), d: float = 1.0, weight_decay: float = 0.0, *,
                 foreach=None, maximize: bool = False):
        lr = _number(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        g = p.grad
        if g.ndim > 1:
            state["row_var"] = g.new_zeros((*g.shape[:-1], 1))
            state["col_var"] = g.new_zeros((*g.shape[:-2], 1, g.shape[-1]))
        else:
            state["variance"] = zeros_like(g)

    @no_grad()
    def step(self, closure=None):
        """For t = 1, 2, ...: beta2 complement t^beta2_decay; rho = min(lr, 1/sqrt(t));
        alpha = max(eps2, RMS(p)) * rho; p *= 1 - lr * wd; the row and column means of g^2
        (or g^2 itself for vectors) averaged in; u = g / sqrt(max(V, eps1^2)), V the
        estimate row_var @ col_var / max(mean(row_var), eps1); p -= alpha * u /
        max(1, RMS(u) / d)."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, wd, d = group["lr"], group["weight_decay"], group["d"]
            eps1, eps2 = group["eps"]
            for p, g, state in self._with_grad(group):
                if p.is_complex():
                    raise RuntimeError("Adafactor does not support complex parameters")
                if group["maximize"]:
                    g = -g
                e1 = finfo(p.dtype).eps if eps1 is None else eps1
                state["step"] = t = state["step"] + 1
                beta2c = t ** group["beta2_decay"]
                rho = min(lr, 1 / math.sqrt(t))
                alpha = max(eps2, p.norm(2).item() / math.sqrt(p.numel())) * rho
                if wd != 0:
                    p.mul_(1 - lr * wd)
                if g.ndim > 1:
                    row, col = state["row_var"], state["col_var"]
                    row.lerp_((g * g).mean(-1, keepdim=True), beta2c)
                    col.lerp_((g * g).mean(-2, keepdim=True), beta2c)
                    var = (row @ col) / row.mean(-2, keepdim=True).clamp_min(e1)
                else:
                    var = state["variance"].lerp_(g * g, beta2c).clone()
                u = var.clamp_min(e1 * e1).rsqrt() * g
                denom = max(1.0, u.norm(2).item() / (math.sqrt(u.numel()) * d))
                p.add_(u, alpha=-alpha / denom)
        return loss
