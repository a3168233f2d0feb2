"""torch.utils.checkpoint: checkpoint and checkpoint_sequential. The checkpointed function
runs under no_grad in the forward pass; backward runs it again with grad enabled (from the
same RNG state when ``preserve_rng_state``) and backpropagates through that recomputation.
One autograd.Function serves both ``use_reentrant`` modes; imports nn only to recognise a
Sequential."""

from __future__ import annotations

import warnings

from .. import creation, generator
from ..autograd import Function, backward, enable_grad
from ..tensor import Tensor


class _Checkpoint(Function):
    """Inputs: the function, whether to keep the RNG state, a marker tensor (which makes
    the outputs require grad when only the function's parameters do, use_reentrant=False)
    or None, then the function's arguments."""

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, marker, *args):
        ctx.run_function = run_function
        ctx.rng_state = generator.get_rng_state() if preserve_rng_state else None
        ctx.arg_values = [None if isinstance(a, Tensor) else a for a in args]
        ctx.tensor_slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.save_for_backward(*(args[i] for i in ctx.tensor_slots))
        return run_function(*args)

    @staticmethod
    def backward(ctx, *grads):
        inputs = list(ctx.arg_values)
        for i, t in zip(ctx.tensor_slots, ctx.saved_tensors):
            inputs[i] = t.detach().requires_grad_(t.requires_grad)
        outer_state = generator.get_rng_state() if ctx.rng_state is not None else None
        try:
            if ctx.rng_state is not None:
                generator.set_rng_state(ctx.rng_state)
            with enable_grad():
                outputs = ctx.run_function(*inputs)
        finally:
            if outer_state is not None:
                generator.set_rng_state(outer_state)
        outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
        pairs = [(o, g) for o, g in zip(outputs, grads)
                 if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is "
                               "not necessary")
        backward([o for o, _ in pairs], [g for _, g in pairs])
        arg_grads = [a.grad if isinstance(a, Tensor) else None for a in inputs]
        return (None, None, None, *arg_grads)


def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=None,
               determinism_check: str = "default", debug: bool = False,
               preserve_rng_state: bool = True, **kwargs):
    """torch.utils.checkpoint.checkpoint: ``function(*args)`` without keeping its
    intermediate results; backward recomputes them.

    Both modes recompute through the same Function: gradients of the function's parameters
    reach their ``.grad`` (as with ``backward()``), not ``autograd.grad``'s results; keyword
    arguments are accepted only with use_reentrant=False (as PyTorch's)."""
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
            "Starting in PyTorch 2.9, calling checkpoint without use_reentrant will raise an "
            "exception. use_reentrant=False is recommended, but if you need to preserve the "
            "current default behavior, you can pass use_reentrant=True. Refer to docs for "
            "more details on the differences between the two variants.", stacklevel=2)
        use_reentrant = True
    if determinism_check not in ("default", "none"):
        raise ValueError(f"determinism_check should be one of ['default', 'none'], but got "
                         f"{determinism_check}")
    if use_reentrant:
        if context_fn is not None or debug:
            raise ValueError("Passing `context_fn` or `debug` is only supported when "
                             "use_reentrant=False.")
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
        if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
            warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                          stacklevel=2)
        return _Checkpoint.apply(function, preserve_rng_state, None, *args)
    if context_fn is not None:
        raise NotImplementedError("checkpoint: context_fn is not supported by clgraph")
    run = (lambda *a: function(*a, **kwargs)) if kwargs else function
    marker = creation.zeros((), requires_grad=True)
    return _Checkpoint.apply(run, preserve_rng_state, marker, *args)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None,
                          **kwargs):
    """torch.utils.checkpoint.checkpoint_sequential: run ``functions`` (a list or a
    Sequential) in ``segments`` chunks, checkpointing every chunk but the last."""
    from ..nn import Sequential

    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should "
            "be passed explicitly. In version 2.9 we will raise an exception if use_reentrant "
            "is not passed. use_reentrant=False is recommended, but if you need to preserve "
            "the current default behavior, you can pass use_reentrant=True. Refer to docs for "
            "more details on the differences between the two variants.", stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))

    def run_function(start, end):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x

        return forward

    if isinstance(functions, Sequential):
        functions = list(functions.children())
    segment_size = len(functions) // segments
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        input = checkpoint(run_function(start, end), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return run_function(end + 1, len(functions) - 1)(input)


__all__ = ["checkpoint", "checkpoint_sequential"]
