"""torch.nn.modules.upsampling: Upsample."""

from __future__ import annotations

from ..layers import Upsample

__all__ = ["Upsample"]
