"""torch.nn.modules.container: Sequential, ModuleList, ModuleDict."""

from __future__ import annotations

from ..container import ModuleDict, ModuleList, Sequential

__all__ = ["ModuleDict", "ModuleList", "Sequential"]
