"""Rprop (resilient backpropagation): per-element step sizes grown or shrunk by the sign
agreement of successive gradients."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import full_like, zeros_like
from ..ops import fused
from ..ops.registry import functions as _f
from .optimizer import Optimizer, _check, _check_flags, _number, _update


class Rprop(Optimizer):
    """torch.optim.Rprop. A step updates every parameter, its step sizes and its previous
    gradient in one launch. As PyTorch's, the step sizes start at ``lr`` and later changes
    of ``lr`` do not reach them."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        lr = _number(lr)
        _check(lr >= 0.0, "learning rate", lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        _check_flags(differentiable)
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0.0
        state["prev"] = zeros_like(p)
        state["step_size"] = full_like(p, group["lr"])

    @no_grad()
    def step(self, closure=None):
        """s = sign(g * prev); step_size *= etaplus where s > 0, etaminus where s < 0, then
        clamped to step_sizes; g = 0 where it shrank; p -= sign(g) * step_size; prev = g."""
        loss = self._evaluate(closure)
        with fused.one_launch():
            for group in self.param_groups:
                (etaminus, etaplus), (lo, hi) = group["etas"], group["step_sizes"]
                hypers = {"etaminus": etaminus, "etaplus": etaplus, "lo": lo, "hi": hi}
                for p, g, state in self._with_grad(group):
                    state["step"] += 1
                    tensors = {"p": p, "g": g, "prev": state["prev"],
                               "size": state["step_size"]}
                    _update("rprop", rprop_update, tensors, hypers,
                            {"maximize": group["maximize"]}, _counting(state, hypers))
        return loss


def _counting(state, hypers):
    """A compiled replay's refresh: count the step; the scalars never change."""
    def again(advance=True):
        if advance:
            state["step"] += 1
        return hypers

    return again


def rprop_update(t, h, *, maximize):
    """Rprop's update of ``t["p"]``, its step sizes ``t["size"]`` and previous gradient
    ``t["prev"]``, as ops."""
    p, g, prev, size = t["p"], t["g"], t["prev"], t["size"]
    if maximize:
        g = -g
    s = (g * prev).sign()
    # scaled as tensors: a where() of two Python scalars would be float32
    grown = _f.where(s > 0, size * h["etaplus"], _f.where(s < 0, size * h["etaminus"], size))
    size.copy_(grown.clamp(h["lo"], h["hi"]))
    g = _f.where(s < 0, 0.0, g)  # where the step size shrank (etaminus < 1 < etaplus)
    p.addcmul_(g.sign(), size, value=-1)
    prev.copy_(g)
