"""torch.nn.modules.linear: Identity, Linear, LazyLinear, Bilinear and
NonDynamicallyQuantizableLinear (the class of MultiheadAttention's ``out_proj``)."""

from __future__ import annotations

from ..layers import (  # noqa: F401
    Bilinear,
    Identity,
    Linear,
    NonDynamicallyQuantizableLinear,
)
from ..lazy import LazyLinear

# PyTorch's: NonDynamicallyQuantizableLinear is left out
__all__ = ["Bilinear", "Identity", "LazyLinear", "Linear"]
