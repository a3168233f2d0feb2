"""torch.nn.modules.linear: Identity, Linear and NonDynamicallyQuantizableLinear (the
class of MultiheadAttention's ``out_proj``)."""

from __future__ import annotations

from ..layers import Identity, Linear, NonDynamicallyQuantizableLinear  # noqa: F401

__all__ = ["Identity", "Linear"]  # PyTorch's: NonDynamicallyQuantizableLinear is left out
