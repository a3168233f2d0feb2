"""torch.nn.grad: the gradients of conv1d/2d/3d with respect to their input and their weight,
given the output's gradient. Each runs the convolution on a stand-in for the missing operand
and asks autograd (the convolution is linear in each operand), so the results are themselves
differentiable when their operands require grad."""

from __future__ import annotations

from ..autograd import enable_grad, grad, is_grad_enabled
from ..creation import zeros
from ..tensor import Tensor
from . import functional as F


def _check_output(name: str, out: Tensor, grad_output: Tensor) -> None:
    if tuple(out.shape) != tuple(grad_output.shape):
        raise RuntimeError(f"{name}: grad_output has size {list(grad_output.shape)}, but the "
                           f"convolution's output for these sizes is {list(out.shape)}")


def _input_grad(conv, name, input_size, weight, grad_output, stride, padding, dilation,
                groups) -> Tensor:
    create = is_grad_enabled() and (weight.requires_grad or grad_output.requires_grad)
    with enable_grad():
        x = zeros(*input_size, dtype=grad_output.dtype, device=grad_output.device,
                  requires_grad=True)
        out = conv(x, weight, None, stride, padding, dilation, groups)
        _check_output(name, out, grad_output)
        (g,) = grad(out, x, grad_output, create_graph=create)
    return g if create else g.detach()


def _weight_grad(conv, name, input, weight_size, grad_output, stride, padding, dilation,
                 groups) -> Tensor:
    create = is_grad_enabled() and (input.requires_grad or grad_output.requires_grad)
    with enable_grad():
        w = zeros(*weight_size, dtype=grad_output.dtype, device=grad_output.device,
                  requires_grad=True)
        out = conv(input, w, None, stride, padding, dilation, groups)
        _check_output(name, out, grad_output)
        (g,) = grad(out, w, grad_output, create_graph=create)
    return g if create else g.detach()


def conv1d_input(input_size, weight: Tensor, grad_output: Tensor, stride=1, padding=0,
                 dilation=1, groups: int = 1) -> Tensor:
    """The gradient of conv1d with respect to an input of size ``input_size``."""
    return _input_grad(F.conv1d, "conv1d_input", input_size, weight, grad_output, stride,
                       padding, dilation, groups)


def conv1d_weight(input: Tensor, weight_size, grad_output: Tensor, stride=1, padding=0,
                  dilation=1, groups: int = 1) -> Tensor:
    """The gradient of conv1d with respect to a weight of size ``weight_size``."""
    return _weight_grad(F.conv1d, "conv1d_weight", input, weight_size, grad_output, stride,
                        padding, dilation, groups)


def conv2d_input(input_size, weight: Tensor, grad_output: Tensor, stride=1, padding=0,
                 dilation=1, groups: int = 1) -> Tensor:
    """The gradient of conv2d with respect to an input of size ``input_size``."""
    return _input_grad(F.conv2d, "conv2d_input", input_size, weight, grad_output, stride,
                       padding, dilation, groups)


def conv2d_weight(input: Tensor, weight_size, grad_output: Tensor, stride=1, padding=0,
                  dilation=1, groups: int = 1) -> Tensor:
    """The gradient of conv2d with respect to a weight of size ``weight_size``."""
    return _weight_grad(F.conv2d, "conv2d_weight", input, weight_size, grad_output, stride,
                        padding, dilation, groups)


def conv3d_input(input_size, weight: Tensor, grad_output: Tensor, stride=1, padding=0,
                 dilation=1, groups: int = 1) -> Tensor:
    """The gradient of conv3d with respect to an input of size ``input_size``."""
    return _input_grad(F.conv3d, "conv3d_input", input_size, weight, grad_output, stride,
                       padding, dilation, groups)


def conv3d_weight(input: Tensor, weight_size, grad_output: Tensor, stride=1, padding=0,
                  dilation=1, groups: int = 1) -> Tensor:
    """The gradient of conv3d with respect to a weight of size ``weight_size``."""
    return _weight_grad(F.conv3d, "conv3d_weight", input, weight_size, grad_output, stride,
                        padding, dilation, groups)


__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input",
           "conv3d_weight"]
