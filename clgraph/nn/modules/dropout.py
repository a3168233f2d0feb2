"""torch.nn.modules.dropout: element- and channel-wise dropout, AlphaDropout and
FeatureAlphaDropout."""

from __future__ import annotations

from ..layers import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout

__all__ = ["AlphaDropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
           "FeatureAlphaDropout"]
