"""torch.nn.modules.batchnorm: the batch normalization layers."""

from __future__ import annotations

from ..layers import BatchNorm1d, BatchNorm2d, BatchNorm3d

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]
