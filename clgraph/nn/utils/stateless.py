"""torch.nn.utils.stateless: the deprecated ``functional_call``, torch.func.functional_call
behind a FutureWarning."""

from __future__ import annotations

import warnings
from typing import Any

from ... import func
from ...tensor import Tensor
from ..module import Module
from ..parallel.data_parallel import DataParallel


def functional_call(module: Module, parameters_and_buffers: dict[str, Tensor],
                    args: Any | tuple | None = None, kwargs: dict[str, Any] | None = None, *,
                    tie_weights: bool = True, strict: bool = False):
    """torch.nn.utils.stateless.functional_call: call ``module`` with its parameters and
    buffers replaced by ``parameters_and_buffers``, as torch.func.functional_call does."""
    warnings.warn("`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 "
                  "and will be removed in a future version of PyTorch. Please use "
                  "`torch.func.functional_call` instead which is a drop-in replacement.",
                  FutureWarning, stacklevel=2)
    if isinstance(module, DataParallel):
        raise RuntimeError("The stateless API can't be used with nn.DataParallel module")
    return func.functional_call(module, parameters_and_buffers, args, kwargs,
                                tie_weights=tie_weights, strict=strict)


__all__ = ["functional_call"]
