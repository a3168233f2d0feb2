"""torch.autograd.forward_ad: dual tensors (a primal with a tangent) inside a dual level.

clgraph derives forward mode from the reverse-mode graph rather than from a second table
of JVP rules. ``make_dual`` makes the primal a node the graph records from (a view of it,
or a detached alias that requires grad); ``unpack_dual(y)`` gives J t, the tangent of y,
by the double-backward trick: the vector-Jacobian product g(u) = J^T u is linear in the
cotangent u, so differentiating <g(u), t> with respect to u gives J t. Each unpack costs
two reverse passes over the ops between the duals and y.

Differences from PyTorch: a dual made from a tensor that does not require grad reports
``requires_grad=True`` (it is how its ops are recorded), and ops run under ``no_grad``
inside the level carry no tangent."""

from __future__ import annotations

import functools
from collections import namedtuple

from .. import autograd
from ..tensor import Tensor

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])
UnpackedDualTensor.__doc__ = "torch.autograd.forward_ad.UnpackedDualTensor"

_duals: list | None = None  # the current level's (dual, tangent) pairs; None outside one


def enter_dual_level() -> int:
    """Start the (single) dual level; returns its index, 0."""
    global _duals
    if _duals is not None:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _duals = []
    return 0


def exit_dual_level(*, level: int | None = None) -> None:
    """End the dual level: every dual tensor made in it loses its tangent."""
    global _duals
    _check_level(level, "exit_dual_level")
    if _duals is None:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one "
                           "that was created. This is not supported.")
    _duals = None


def _check_level(level, name: str) -> None:
    if level not in (None, 0):
        raise RuntimeError(f"{name}(): level {level} is not an active forward AD level "
                           f"(clgraph has one, 0)")


class dual_level:
    """Context manager (and decorator) of a dual level: ``with fwAD.dual_level(): ...``."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc) -> None:
        exit_dual_level()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with dual_level():
                return fn(*args, **kwargs)
        return wrapped


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """A tensor with ``tensor``'s values whose tangent is ``tangent``; ops on it carry the
    tangent (read it with ``unpack_dual``)."""
    _check_level(level, "make_dual")
    if _duals is None:
        raise RuntimeError("To create a dual Tensor, you must be inside a dual_level context "
                           "manager (fwAD.dual_level()).")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError(f"make_dual(): expected tensors, got {type(tensor).__name__} and "
                        f"{type(tangent).__name__}")
    if not tensor.dtype.is_floating_point or not tangent.dtype.is_floating_point:
        raise ValueError(f"make_dual(): expected primal and tangent of floating point "
                         f"dtypes, got {tensor.dtype} and {tangent.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(f"Trying to set a forward gradient that has a different size than "
                           f"that of the original Tensor, this is not supported. Tensor is "
                           f"of size {list(tensor.shape)} while the given forward gradient "
                           f"is of size {list(tangent.shape)}.")
    with autograd.enable_grad():
        dual = tensor.view_as(tensor) if tensor.requires_grad \
            else tensor.detach().requires_grad_(True)
    _duals.append((dual, tangent.to(tensor.dtype)))
    return dual


def unpack_dual(tensor: Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """(primal, tangent) of ``tensor``; the tangent is None when ``tensor`` does not depend
    on a dual tensor of the current level (or no level is active)."""
    _check_level(level, "unpack_dual")
    if _duals is None or not isinstance(tensor, Tensor):
        return UnpackedDualTensor(tensor, None)
    for dual, tangent in _duals:
        if dual is tensor:
            return UnpackedDualTensor(tensor, tangent)
    if not tensor.requires_grad or not tensor.dtype.is_floating_point or not _duals:
        return UnpackedDualTensor(tensor, None)
    duals = [d for d, _ in _duals]
    with autograd.enable_grad():
        u = autograd.zeros_like(tensor).requires_grad_(True)
        vjps = autograd.grad(tensor, duals, u, retain_graph=True, create_graph=True,
                             allow_unused=True)
        live = [(g, t) for g, (_, t) in zip(vjps, _duals) if g is not None and g.requires_grad]
        if not live:
            return UnpackedDualTensor(tensor, autograd.zeros_like(tensor) if any(
                g is not None for g in vjps) else None)
        (jvp,) = autograd.grad([g for g, _ in live], [u], [t for _, t in live], retain_graph=True,
                               allow_unused=True)
    return UnpackedDualTensor(tensor, autograd.zeros_like(tensor) if jvp is None
                              else jvp.detach())
