"""torch.nn.modules.channelshuffle: ChannelShuffle."""

from __future__ import annotations

from ..layers import ChannelShuffle

__all__ = ["ChannelShuffle"]
