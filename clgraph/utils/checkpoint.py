"""torch.utils.checkpoint: checkpoint and checkpoint_sequential. The checkpointed function
runs under no_grad in the forward pass; backward runs it again with grad enabled (from the
same RNG state when ``preserve_rng_state``) and backpropagates through that recomputation.
One autograd.Function serves both ``use_reentrant`` modes; imports nn only to recognise a
Sequential."""

from __future__ import annotations

import contextlib
import warnings

from .. import generator
from ..autograd import Function, backward, enable_grad, grad, is_grad_enabled, no_grad
from ..ops import registry
from ..tensor import Tensor


class _Captured(registry.Interpreter):
    """Pushed while the function runs under no_grad (use_reentrant=False): collects the
    tensors requiring grad that its ops read and that are not its arguments (parameters,
    tensors it closes over). Under no_grad nothing it makes requires grad, so these are
    exactly the tensors PyTorch's graph of the function would reach outside it. Inside the
    recomputation of an enclosing checkpoint an op reads that one's stand-in instead: the
    stand-in is captured, and ``aliases`` keeps the tensors it stands for."""

    def __init__(self, args) -> None:
        self.known = {id(a) for a in args if isinstance(a, Tensor)}
        self.found: list = []
        self.aliases: list = []  # per found tensor: the tensors the function reads for it

    def process(self, op, args, attrs, out):
        for a in (*args, out):
            if not isinstance(a, Tensor):
                continue
            chain = [a]
            for stand_ins in _recomputing:
                chain.append(stand_ins.get(id(chain[-1]), chain[-1]))
            a = chain[-1]
            if a.requires_grad and id(a) not in self.known:
                self.known.add(id(a))
                self.found.append(a)
                self.aliases.append(tuple({id(t): t for t in chain}.values()))
        return self.inner.process(op, args, attrs, out)


_recomputing: list = []  # the stand-ins of the checkpoints being recomputed, outermost first


class _StandIns(registry.Interpreter):
    """Pushed while backward recomputes the function: its ops read leaf stand-ins of the
    captured tensors, so the recomputation's gradient stops at them instead of walking (and
    releasing) the graph that made them."""

    def __init__(self, stand_ins: dict) -> None:
        self.stand_ins = stand_ins

    def process(self, op, args, attrs, out):
        args = tuple(self.stand_ins.get(id(a), a) if isinstance(a, Tensor) else a
                     for a in args)
        return self.inner.process(op, args, attrs, out)


class _Checkpoint(Function):
    """Inputs: the function, the RNG state to replay (or None), its outputs when already
    computed (use_reentrant=False) or None, the number of its arguments, the captured
    tensors' aliases, then its arguments and (use_reentrant=False) the captured tensors,
    whose gradients it returns too."""

    @staticmethod
    def forward(ctx, run_function, rng_state, outputs, n_args, aliases, *inputs):
        args = inputs[:n_args]
        ctx.run_function, ctx.rng_state = run_function, rng_state
        ctx.reentrant = outputs is None
        ctx.captured, ctx.aliases = inputs[n_args:], aliases
        ctx.arg_values = [None if isinstance(a, Tensor) else a for a in args]
        ctx.tensor_slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.save_for_backward(*(args[i] for i in ctx.tensor_slots))
        return run_function(*args) if outputs is None else outputs

    @staticmethod
    def backward(ctx, *grads):
        # create_graph (grad mode on in a backward), use_reentrant=False: the recomputation
        # runs on the inputs and captured tensors themselves, so the gradients it returns
        # are functions of them and can be differentiated again
        twice = not ctx.reentrant and is_grad_enabled()
        inputs = list(ctx.arg_values)
        for i, t in zip(ctx.tensor_slots, ctx.saved_tensors):
            inputs[i] = t if twice else t.detach().requires_grad_(t.requires_grad)
        leaves = list(ctx.captured) if twice else [
            c.detach().requires_grad_() for c in ctx.captured]
        stand_ins = {} if twice else {
            id(t): leaf for leaf, ts in zip(leaves, ctx.aliases) for t in ts}
        outer_state = generator.get_rng_state() if ctx.rng_state is not None else None
        _recomputing.append(stand_ins)
        try:
            if ctx.rng_state is not None:
                generator.set_rng_state(ctx.rng_state)
            with enable_grad(), (registry.push(_StandIns(stand_ins)) if stand_ins
                                 else contextlib.nullcontext()):
                outputs = ctx.run_function(*inputs)
        finally:
            _recomputing.pop()
            if outer_state is not None:
                generator.set_rng_state(outer_state)
        outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
        pairs = [(o, g) for o, g in zip(outputs, grads)
                 if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is "
                               "not necessary")
        if ctx.reentrant:  # into the .grad of the tensors the function closes over
            backward([o for o, _ in pairs], [g for _, g in pairs])
            return (None,) * 5 + tuple(a.grad if isinstance(a, Tensor) else None
                                       for a in inputs)
        wrt = [a for a in inputs if isinstance(a, Tensor) and a.requires_grad] + leaves
        got = iter(grad([o for o, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True,
                        create_graph=twice) if wrt else ())
        arg_grads = [next(got) if isinstance(a, Tensor) and a.requires_grad else None
                     for a in inputs]
        return (None,) * 5 + tuple(arg_grads) + tuple(got)


def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=None,
               determinism_check: str = "default", debug: bool = False,
               preserve_rng_state: bool = True, **kwargs):
    """torch.utils.checkpoint.checkpoint: ``function(*args)`` without keeping its
    intermediate results; backward recomputes them.

    With use_reentrant=True the gradients of the tensors the function closes over
    (parameters) reach their ``.grad`` during backward() and not autograd.grad's results,
    as PyTorch's does; with use_reentrant=False they are inputs of the checkpoint's node and
    reach both. Keyword arguments are accepted only with use_reentrant=False (as
    PyTorch's)."""
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
        rng_state = generator.get_rng_state() if preserve_rng_state else None
        return _Checkpoint.apply(function, rng_state, None, len(args), (), *args)
    if context_fn is not None:
        raise NotImplementedError("checkpoint: context_fn is not supported by clgraph")
    run = (lambda *a: function(*a, **kwargs)) if kwargs else function
    rng_state = generator.get_rng_state() if preserve_rng_state else None
    captured = _Captured(args)
    with no_grad(), registry.push(captured):
        outputs = run(*args)
    return _Checkpoint.apply(run, rng_state, outputs, len(args), captured.aliases, *args,
                             *captured.found)


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
