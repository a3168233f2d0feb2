"""torch.nn.modules.pixelshuffle: PixelShuffle."""

from __future__ import annotations

from ..layers import PixelShuffle

__all__ = ["PixelShuffle"]
