"""torch.nn.modules.flatten: Flatten and Unflatten."""

from __future__ import annotations

from ..layers import Flatten, Unflatten

__all__ = ["Flatten", "Unflatten"]
