"""torch.nn.modules.batchnorm: the batch normalization layers."""

from __future__ import annotations

from ..layers import BatchNorm1d, BatchNorm2d

__all__ = ["BatchNorm1d", "BatchNorm2d"]
