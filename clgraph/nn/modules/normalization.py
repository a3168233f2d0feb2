"""torch.nn.modules.normalization: LayerNorm, GroupNorm, RMSNorm and LocalResponseNorm."""

from __future__ import annotations

from ..layers import GroupNorm, LayerNorm, LocalResponseNorm, RMSNorm

__all__ = ["GroupNorm", "LayerNorm", "LocalResponseNorm", "RMSNorm"]
