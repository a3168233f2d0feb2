"""torch.nn.modules.sparse: Embedding and EmbeddingBag."""

from __future__ import annotations

from ..layers import Embedding, EmbeddingBag

__all__ = ["Embedding", "EmbeddingBag"]
