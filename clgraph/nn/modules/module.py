"""torch.nn.modules.module: the Module class."""

from __future__ import annotations

from ..module import Module

__all__ = ["Module"]
