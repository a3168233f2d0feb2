"""cg.utils: data loading (cg.utils.data)."""

from . import data

__all__ = ["data"]
