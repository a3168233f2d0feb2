"""torch.nn.modules.normalization: LayerNorm and GroupNorm."""

from __future__ import annotations

from ..layers import GroupNorm, LayerNorm

__all__ = ["GroupNorm", "LayerNorm"]
