"""torch.nn.modules.fold: Fold and Unfold."""

from __future__ import annotations

from ..layers import Fold, Unfold

__all__ = ["Fold", "Unfold"]
