"""torch.distributed.nn.functional: collectives that autograd differentiates. Each returns
new tensors (its inputs are left alone) and its backward runs the matching collective on
the gradients: broadcast <-> reduce (SUM), gather <-> scatter, all_gather <->
reduce_scatter (SUM), all_to_all <-> all_to_all, all_reduce <-> all_reduce (same op, as
torch: the gradient of SUM; AVG's would be AVG too).

Imports autograd's Function and the collectives.
"""

from __future__ import annotations

import warnings

from ...autograd import Function
from ...creation import empty, zeros_like
from .. import collectives as c
from ..collectives import ReduceOp
from ..group import get_rank, get_world_size

__all__ = ["all_gather", "all_reduce", "all_to_all", "all_to_all_single", "broadcast",
           "gather", "reduce", "reduce_scatter", "scatter"]


def _deprecated(name: str, suggestion: str) -> None:
    warnings.warn(f"torch.distributed.nn.functional.{name} is deprecated, use {suggestion} "
                  "instead.", FutureWarning, stacklevel=3)


def broadcast(tensor, src, group=None):
    """torch.distributed.nn.functional.broadcast: rank ``src``'s ``tensor``, on every rank;
    the gradient: the sum of the ranks' gradients, on ``src`` (zero elsewhere)."""
    _deprecated("broadcast", "torch.distributed._functional_collectives.broadcast")
    return _Broadcast.apply(src, group, tensor)


def gather(tensor, dst=0, group=None):
    """torch.distributed.nn.functional.gather: a tuple of every rank's ``tensor`` on rank
    ``dst`` (zeros elsewhere)."""
    return _Gather.apply(dst, group, tensor)


def scatter(tensors, src=0, group=None):
    """torch.distributed.nn.functional.scatter: rank r gets ``tensors[r]`` of rank ``src``;
    the other ranks pass tensors of the same shape (their values are unused)."""
    return _Scatter.apply(src, group, *tensors)


def reduce(tensor, dst, op=ReduceOp.SUM, group=None):
    """torch.distributed.nn.functional.reduce: the ranks' reduction on ``dst`` (elsewhere
    the input's values)."""
    return _Reduce.apply(dst, op, group, tensor)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None):
    """torch.distributed.nn.functional.reduce_scatter: rank r's result is the reduction of
    every rank's ``input_list[r]`` (written into ``output`` too, as torch's)."""
    _deprecated("reduce_scatter",
                "torch.distributed._functional_collectives.reduce_scatter_single")
    return _ReduceScatter.apply(op, group, output, *input_list)


def all_gather(tensor, group=None):
    """torch.distributed.nn.functional.all_gather: a tuple of every rank's ``tensor``."""
    _deprecated("all_gather", "torch.distributed._functional_collectives.all_gather_single")
    return _AllGather.apply(group, tensor)


def all_to_all(output_tensor_list, input_tensor_list, group=None):
    """torch.distributed.nn.functional.all_to_all: rank r's i-th result is rank i's
    ``input_tensor_list[r]`` (written into ``output_tensor_list`` too)."""
    return _AllToAll.apply(group, output_tensor_list, *input_tensor_list)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None,
                      group=None):
    """torch.distributed.nn.functional.all_to_all_single."""
    _deprecated("all_to_all_single",
                "torch.distributed._functional_collectives.all_to_all_single")
    return _AllToAllSingle.apply(group, output, output_split_sizes, input_split_sizes, input)


def all_reduce(tensor, op=ReduceOp.SUM, group=None):
    """torch.distributed.nn.functional.all_reduce: the ranks' reduction, on every rank."""
    _deprecated("all_reduce", "torch.distributed._functional_collectives.all_reduce")
    return _AllReduce.apply(op, group, tensor)


class _Broadcast(Function):
    @staticmethod
    def forward(ctx, src, group, tensor):
        ctx.src, ctx.group = src, group
        out = tensor.clone()
        c.broadcast(out, src, group=group)
        return out

    @staticmethod
    def backward(ctx, g):
        gx = _Reduce.apply(ctx.src, ReduceOp.SUM, ctx.group, g)
        if get_rank() != ctx.src:
            gx = zeros_like(gx)
        return None, None, gx


class _Reduce(Function):
    @staticmethod
    def forward(ctx, dst, op, group, tensor):
        ctx.dst, ctx.group = dst, group
        out = tensor.clone()
        c.reduce(out, dst, op=op, group=group)
        return out

    @staticmethod
    def backward(ctx, g):
        return None, None, None, _Broadcast.apply(ctx.dst, ctx.group, g)


class _Gather(Function):
    @staticmethod
    def forward(ctx, dst, group, tensor):
        ctx.dst, ctx.group = dst, group
        outs = [zeros_like(tensor) for _ in range(get_world_size(group))]
        root = get_rank() == dst
        c.gather(tensor.contiguous(), outs if root else None, dst, group=group)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *gs):
        return (None, None, _Scatter.apply(ctx.dst, ctx.group, *gs))


class _Scatter(Function):
    @staticmethod
    def forward(ctx, src, group, *tensors):
        ctx.src, ctx.group = src, group
        out = zeros_like(tensors[0])
        root = get_rank() == src
        c.scatter(out, [t.contiguous() for t in tensors] if root else None, src, group=group)
        return out

    @staticmethod
    def backward(ctx, g):
        return (None, None) + _Gather.apply(ctx.src, ctx.group, g)


class _ReduceScatter(Function):
    @staticmethod
    def forward(ctx, op, group, output, *inputs):
        ctx.group = group
        c.reduce_scatter(output, [t.contiguous() for t in inputs], op=op, group=group)
        return output.clone()

    @staticmethod
    def backward(ctx, g):
        return (None, None, None) + _AllGather.apply(ctx.group, g)


class _AllGather(Function):
    @staticmethod
    def forward(ctx, group, tensor):
        ctx.group = group
        outs = [empty(tensor.shape, dtype=tensor.dtype, device=tensor.device)
                for _ in range(get_world_size(group))]
        c.all_gather(outs, tensor.contiguous(), group=group)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *gs):
        gx = empty(gs[0].shape, dtype=gs[0].dtype, device=gs[0].device)
        c.reduce_scatter(gx, [g.contiguous() for g in gs], op=ReduceOp.SUM, group=ctx.group)
        return None, gx


class _AllToAll(Function):
    @staticmethod
    def forward(ctx, group, outs, *tensors):
        ctx.group = group
        ctx.shapes = [t.shape for t in tensors]
        c.all_to_all(outs, [t.contiguous() for t in tensors], group=group)
        return tuple(o.clone() for o in outs)

    @staticmethod
    def backward(ctx, *gs):
        outs = [empty(s, dtype=gs[0].dtype, device=gs[0].device) for s in ctx.shapes]
        return (None, None) + _AllToAll.apply(ctx.group, outs, *gs)


class _AllToAllSingle(Function):
    @staticmethod
    def forward(ctx, group, output, output_split_sizes, input_split_sizes, input):
        ctx.group, ctx.shape = group, input.shape
        ctx.splits = (input_split_sizes, output_split_sizes)  # the backward's, swapped
        c.all_to_all_single(output, input.contiguous(), output_split_sizes, input_split_sizes,
                            group=group)
        return output.clone()

    @staticmethod
    def backward(ctx, g):
        gx = empty(ctx.shape, dtype=g.dtype, device=g.device)
        return (None, None, None, None,
                _AllToAllSingle.apply(ctx.group, gx, *ctx.splits, g.contiguous()))


class _AllReduce(Function):
    @staticmethod
    def forward(ctx, op, group, tensor):
        ctx.reduce_op, ctx.group = op, group
        out = tensor.clone()
        c.all_reduce(out, op=op, group=group)
        return out

    @staticmethod
    def backward(ctx, g):
        return None, None, _AllReduce.apply(ctx.reduce_op, ctx.group, g)
