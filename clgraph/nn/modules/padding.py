"""torch.nn.modules.padding: ZeroPad2d."""

from __future__ import annotations

from ..layers import ZeroPad2d

__all__ = ["ZeroPad2d"]
