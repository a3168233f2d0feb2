"""torch.nn.modules.pixelshuffle: PixelShuffle and PixelUnshuffle."""

from __future__ import annotations

from ..layers import PixelShuffle, PixelUnshuffle

__all__ = ["PixelShuffle", "PixelUnshuffle"]
