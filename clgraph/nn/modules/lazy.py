"""torch.nn.modules.lazy: LazyModuleMixin."""

from __future__ import annotations

from ..lazy import LazyModuleMixin

__all__ = ["LazyModuleMixin"]
