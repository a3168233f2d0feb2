"""torch.nn.modules.instancenorm: InstanceNorm2d."""

from __future__ import annotations

from ..layers import InstanceNorm2d

__all__ = ["InstanceNorm2d"]
