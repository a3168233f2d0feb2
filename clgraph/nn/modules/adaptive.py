"""torch.nn.modules.adaptive: AdaptiveLogSoftmaxWithLoss."""

from __future__ import annotations

from ..adaptive import AdaptiveLogSoftmaxWithLoss

__all__ = ["AdaptiveLogSoftmaxWithLoss"]
