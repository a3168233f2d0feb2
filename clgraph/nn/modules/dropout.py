"""torch.nn.modules.dropout: element- and channel-wise dropout."""

from __future__ import annotations

from ..layers import Dropout, Dropout1d, Dropout2d, Dropout3d

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]
