"""torch.nn.modules.batchnorm: the batch normalization layers, their lazy forms and
SyncBatchNorm."""

from __future__ import annotations

from ..layers import BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm
from ..lazy import LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
           "LazyBatchNorm3d", "SyncBatchNorm"]
