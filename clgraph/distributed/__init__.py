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
collectives (``all_gather_object``) and point-to-point calls make a compiled call run
eagerly.

``new_group(ranks)`` splits an MPI sub-communicator off the world's (every rank calls it;
the ranks left out get ``GroupMember.NON_GROUP_MEMBER``, and a collective on it does nothing
there, with torch's warning); every call takes ``group=``. Point-to-point (p2p.py) travels on
a second communicator of the group; ``cg.distributed.nn.functional`` holds the collectives
autograd differentiates.
"""

from . import nn  # noqa: E402  (the autograd-aware collectives)
from .collectives import (
    ReduceOp,
    all_gather,
    all_gather_coalesced,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    all_reduce_coalesced,
    all_to_all,
    all_to_all_single,
    barrier,
    broadcast,
    broadcast_object_list,
    gather,
    gather_object,
    reduce,
    reduce_scatter,
    reduce_scatter_tensor,
    scatter,
    scatter_object_list,
)
from .group import Group as ProcessGroup
from .group import (
    GroupMember,
    Work,
    default_pg_timeout,
    destroy_process_group,
    get_backend,
    get_backend_config,
    get_default_backend_for_device,
    get_global_rank,
    get_group_rank,
    get_node_local_rank,
    get_pg_count,
    get_process_group_ranks,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_backend_available,
    is_gloo_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
    is_torchelastic_launched,
    is_ucc_available,
    is_xccl_available,
    new_group,
    new_subgroups,
    new_subgroups_by_enumeration,
)
from .p2p import (
    P2POp,
    batch_isend_irecv,
    irecv,
    isend,
    monitored_barrier,
    recv,
    recv_object_list,
    send,
    send_object_list,
)

__all__ = ["GroupMember", "P2POp", "ProcessGroup", "ReduceOp", "Work", "all_gather",
           "all_gather_coalesced", "all_gather_into_tensor", "all_gather_object", "all_reduce",
           "all_reduce_coalesced", "all_to_all", "all_to_all_single", "barrier",
           "batch_isend_irecv", "broadcast", "broadcast_object_list", "default_pg_timeout",
           "destroy_process_group", "gather", "gather_object", "get_backend", "get_backend_config",
           "get_default_backend_for_device", "get_global_rank", "get_group_rank",
           "get_node_local_rank", "get_pg_count", "get_process_group_ranks", "get_rank",
           "get_world_size", "group", "init_process_group", "irecv", "is_available",
           "is_backend_available", "is_gloo_available", "is_initialized", "is_mpi_available",
           "is_nccl_available", "is_torchelastic_launched", "is_ucc_available", "is_xccl_available",
           "isend", "monitored_barrier", "new_group", "new_subgroups",
           "new_subgroups_by_enumeration", "nn", "recv", "recv_object_list", "reduce",
           "reduce_scatter", "reduce_scatter_tensor", "scatter", "scatter_object_list", "send",
           "send_object_list"]
