"""Muon: momentum whose update is orthogonalized by a quintic Newton-Schulz iteration in
bfloat16, for 2-D parameters (PyTorch's algorithm and defaults)."""

from __future__ import annotations

import math

from ..autograd import no_grad
from ..creation import zeros_like
from .optimizer import Optimizer, _number


def _newton_schulz(g, coefficients, steps: int, eps: float):
    """An approximate U V^T of g = U S V^T: ``steps`` rounds of X <- aX + (bA + cA^2)X,
    A = X X^T, X the wider orientation of g / |g| in bfloat16."""
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if g.ndim != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = coefficients
    tall = g.shape[0] > g.shape[1]
    x = g.bfloat16()
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        # each addmm in float32, rounded to bfloat16 once, as PyTorch's bfloat16 addmm: the
        # iteration amplifies a second rounding
        xf = x.float()
        gram = (xf @ xf.T).bfloat16().float()
        update = (gram * b + (gram @ gram) * c).bfloat16().float()
        x = (xf * a + update @ xf).bfloat16()
    return x.T if tall else x


def _adjusted_lr(lr: float, adjust_lr_fn, shape) -> float:
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(Optimizer):
    """torch.optim.Muon: 2-D parameters only."""

    def __init__(self, params, lr=1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients=(3.4445, -4.7750, 2.0315),
                 eps: float = 1e-7, ns_steps: int = 5, adjust_lr_fn: str | None = None):
        lr = _number(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum,
                    "nesterov": nesterov, "ns_coefficients": ns_coefficients, "eps": eps,
                    "ns_steps": ns_steps, "adjust_lr_fn": adjust_lr_fn}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError("Muon only supports 2D parameters whereas we found a "
                                     f"parameter with size: {p.size()}")

    def _init_state(self, p, group):
        self.state[p]["momentum_buffer"] = zeros_like(p)

    @no_grad()
    def step(self, closure=None):
        """B = lerp(B, g, 1 - momentum); the update NS(lerp(g, B, momentum)) with nesterov,
        else NS(B); p *= 1 - lr * wd; p -= adjusted lr * update."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            for p, g, state in self._with_grad(group):
                if g.ndim != 2:
                    raise ValueError("Param gradient must be a 2D matrix")
                buf = state["momentum_buffer"]
                buf.lerp_(g, 1 - mu)
                update = g.lerp(buf, mu) if group["nesterov"] else buf
                update = _newton_schulz(update, group["ns_coefficients"], group["ns_steps"],
                                        group["eps"])
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(update, alpha=-_adjusted_lr(lr, group["adjust_lr_fn"], p.shape))
        return loss
