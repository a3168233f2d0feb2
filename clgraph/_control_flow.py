"""torch.cond and torch.while_loop, PyTorch's higher-order control flow, with eager
semantics: the predicate is read on the host and the chosen branch (or the loop body) runs.
Under cg.compile a tensor predicate of cond does not end the trace: both branches are traced
and their results selected with where() when they agree in structure, shapes and dtypes
(PyTorch requires that of cond's branches). Imports the tensor layer and the registry."""

from __future__ import annotations

import numbers

from .ops import registry
from .tensor import Tensor


def _leaves(tree) -> list:
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in _leaves(v)]
    return [tree]


def _check_pred(pred):
    if isinstance(pred, Tensor):
        if pred.numel() != 1:
            raise RuntimeError(f"Expected pred to be bool or single-element tensor, but got "
                               f"{pred}.")
    elif not isinstance(pred, numbers.Number):
        raise RuntimeError(f"Expected pred to be bool or tensor, but got {pred}.")


def _select(pred, a, b):
    """where(pred, a, b) over matching structures of tensors; None where they differ."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.shape != b.shape or a.dtype is not b.dtype:
            return None
        return registry.functions.where(pred.reshape(()).bool(), a, b)
    if isinstance(a, (tuple, list)) and type(a) is type(b) and len(a) == len(b):
        parts = [_select(pred, x, y) for x, y in zip(a, b)]
        return None if any(p is None for p in parts) else type(a)(parts)
    return None


def cond(pred, true_fn, false_fn, operands=()):
    """torch.cond: ``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``."""
    _check_pred(pred)
    if not (callable(true_fn) and callable(false_fn)):
        raise RuntimeError("Expect both branches to be callable.")
    if not isinstance(operands, (tuple, list)) or not all(
            isinstance(leaf, Tensor) for leaf in _leaves(operands)):
        raise RuntimeError("Expect operands to be a tuple of possibly nested dict/list/tuple "
                           f"that only consists of tensor leaves, but got {operands}.")
    if isinstance(pred, Tensor) and registry.pushed():
        picked = _select(pred, true_fn(*operands), false_fn(*operands))
        if picked is not None:
            return picked
    return true_fn(*operands) if bool(pred) else false_fn(*operands)


def while_loop(cond_fn, body_fn, carried_inputs):
    """torch.while_loop: ``carried = body_fn(*carried)`` while ``cond_fn(*carried)``; the
    last body result (a body returning one tensor gives a tensor). Without any iteration:
    the single carried input, or the tuple of them."""
    if not isinstance(carried_inputs, (tuple, list)):
        raise RuntimeError(f"carried_inputs must be a tuple or list, got "
                           f"{type(carried_inputs)}")
    carried = tuple(carried_inputs)
    result = carried[0] if len(carried) == 1 else carried
    while True:
        flag = cond_fn(*carried)
        _check_pred(flag)
        if not bool(flag):
            return result
        result = body_fn(*carried)
        carried = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        if len(carried) != len(carried_inputs):
            raise RuntimeError(f"body_fn should return the same number of elements as "
                               f"carried_inputs: {len(carried_inputs)}, got {len(carried)}")
