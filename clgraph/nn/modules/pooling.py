"""torch.nn.modules.pooling: the pooling layers."""

from __future__ import annotations

from ..layers import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d"]
