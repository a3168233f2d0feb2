"""torch.nn.modules.normalization: LayerNorm, GroupNorm and RMSNorm."""

from __future__ import annotations

from ..layers import GroupNorm, LayerNorm, RMSNorm

__all__ = ["GroupNorm", "LayerNorm", "RMSNorm"]
