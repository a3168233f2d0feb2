"""cg.utils: data loading (cg.utils.data) and activation checkpointing
(cg.utils.checkpoint)."""

from . import checkpoint, data

__all__ = ["checkpoint", "data"]
