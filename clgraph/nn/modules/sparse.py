"""torch.nn.modules.sparse: Embedding."""

from __future__ import annotations

from ..layers import Embedding

__all__ = ["Embedding"]
