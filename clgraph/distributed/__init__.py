"""cg.distributed: torch.distributed over MPI, one process per OpenCL device.

``mpirun -n 4 python train.py`` starts the processes; ``init_process_group("mpi")`` takes
rank and world size from the launcher and gives each process its node-local rank's GPU
(``CLGRAPH_DEVICE`` overrides; on a machine with only PoCL's CPU device the ranks share
it). Collectives move a tensor's bytes device -> host -> MPI -> host -> device: in place
through a mapping on devices that share host memory, through reused page-locked staging
buffers in pipelined chunks elsewhere. ``async_op=True`` returns a Work whose ``wait()``
puts the result in place; its MPI calls run on a worker thread meanwhile.

MPI comes from mpi4py (``pip install 'clgraph[distributed]'``), imported by
``init_process_group``: importing clgraph never needs it. Once initialized, an uncaught
exception in any rank aborts the whole job, and ranks that call mismatching collectives
(different kinds, shapes or dtypes) all raise one error naming each rank's tensor.

Collectives compile: inside a ``cg.compile``d call each one is a host step of the plan,
which a replay runs in its place among the kernels (mapped or staged as eagerly). A whole
training step through DistributedDataParallel (forward, ``loss.backward()``,
``optimizer.step()``) replays with its bucket all-reduces; a compiled call that leaves
DDP's reduction unfinished (``cg.compile(ddp)`` around the forward alone) runs eagerly,
with a warning, while ``DistributedDataParallel(cg.compile(model))`` replays the model's
forward and backward and all-reduces between them and the optimizer step. Object
collectives (``all_gather_object``) make a compiled call run eagerly.
"""

from .collectives import (ReduceOp, all_gather, all_gather_into_tensor, all_gather_object,
                          all_reduce, barrier, broadcast, broadcast_object_list,
                          reduce_scatter, reduce_scatter_tensor)
from .group import (Work, destroy_process_group, get_backend, get_rank, get_world_size,
                    init_process_group, is_available, is_initialized)

__all__ = ["ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object",
           "all_reduce", "barrier", "broadcast", "broadcast_object_list",
           "destroy_process_group", "get_backend", "get_rank", "get_world_size",
           "init_process_group", "is_available", "is_initialized", "reduce_scatter",
           "reduce_scatter_tensor"]
