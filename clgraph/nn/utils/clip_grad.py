"""torch.nn.utils.clip_grad: clip_grad_norm_ and clip_grad_value_. Norms
and scaling stay on the device: nothing is read back to the host unless
``error_if_nonfinite`` asks for the check."""

from __future__ import annotations

import math

from ... import creation
from ...autograd import no_grad
from ...ops.registry import functions as _f
from ...tensor import Tensor


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their total ``norm_type``
    norm (over all of them, as one vector) is at most ``max_norm``; returns that norm
    before clipping. The scale is max_norm / (norm + 1e-6), capped at 1, as PyTorch's."""
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return creation.tensor(0.0)
    dev = grads[0].device
    stacked = _f.stack([g.norm(norm_type).to(dev) for g in grads])
    total = stacked.max() if norm_type == math.inf else stacked.norm(norm_type)
    if error_if_nonfinite and not bool(total.isfinite()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.to(g.dtype))
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of ``parameters`` in place to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(min=-clip_value, max=clip_value)


__all__ = ["clip_grad_norm_", "clip_grad_value_"]
