"""torch.nn.utils.convert_parameters: parameters_to_vector and vector_to_parameters."""

from __future__ import annotations

from ...ops.registry import functions as _f
from ...tensor import Tensor


def _check_same_device(param: Tensor, device):
    if device is not None and param.device != device:
        raise TypeError(f"Found two parameters on different devices, this is currently not "
                        f"supported. ({device} and {param.device})")
    return param.device


def parameters_to_vector(parameters) -> Tensor:
    """The parameters flattened and concatenated into one vector (differentiable)."""
    device, parts = None, []
    for p in parameters:
        device = _check_same_device(p, device)
        parts.append(p.reshape(-1))
    return _f.cat(parts)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into the parameters' data (no autograd)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    device, pointer = None, 0
    for p in parameters:
        device = _check_same_device(p, device)
        n = p.numel()
        p.data = vec[pointer:pointer + n].view_as(p).data
        pointer += n


__all__ = ["parameters_to_vector", "vector_to_parameters"]
