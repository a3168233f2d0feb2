"""torch.nn.modules.distance: CosineSimilarity."""

from __future__ import annotations

from ..layers import CosineSimilarity

__all__ = ["CosineSimilarity"]
