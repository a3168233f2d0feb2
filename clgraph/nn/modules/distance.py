"""torch.nn.modules.distance: CosineSimilarity and PairwiseDistance."""

from __future__ import annotations

from ..layers import CosineSimilarity, PairwiseDistance

__all__ = ["CosineSimilarity", "PairwiseDistance"]
