"""torch.nn.utils.init: skip_init."""

from __future__ import annotations

import inspect

from ..module import Module

__all__ = ["skip_init"]


def skip_init(module_cls, *args, **kwargs):
    """torch.nn.utils.skip_init: an instance of ``module_cls`` whose parameters and buffers
    are to be treated as uninitialized. clgraph has no meta device: the module is built on
    ``device`` (default "cpu") and its values are whatever its constructor drew."""
    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    kwargs["device"] = kwargs.pop("device", "cpu")
    return module_cls(*args, **kwargs)
