"""torch.nn.modules.upsampling: Upsample, UpsamplingNearest2d and UpsamplingBilinear2d."""

from __future__ import annotations

from ..layers import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d"]
