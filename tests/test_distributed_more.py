"""More of clgraph.distributed in real MPI jobs: ``mpirun -n 2`` and ``-n 3`` run
tests/distributed_more_worker.py, whose ranks check against numpy: point-to-point
(blocking, any source, isend/irecv, batch_isend_irecv rings, objects, a receive of the wrong
shape), reduce/gather/scatter, all_to_all and all_to_all_single with uneven splits, the
coalesced and object collectives, monitored_barrier (and its timeout), mapped and staged;
process groups (a group of 2 of 3 ranks, NON_GROUP_MEMBER, new_subgroups, every collective
with group=, destroy); the autograd-aware collectives' gradients; and mismatch errors. A
rank that fails inside a sub-group's collective or a receive ends the whole job. Skipped
where mpi4py or mpirun is missing. Each job groups several modes: a process start costs
seconds."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import torch_or_skip
from test_distributed import _job

import clgraph as cg
import clgraph.distributed as dist

WORKER = Path(__file__).with_name("distributed_more_worker.py")
MODES = ("p2p", "rooted", "groups", "functional", "compiled")


@pytest.mark.parametrize("ranks", [2, 3])
def test_more_collectives(ranks):
    modes = MODES if ranks == 2 else MODES[:-1]  # on 2 cores: compiled replays once
    r = _job(ranks, *modes, script=WORKER)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    for mode in modes:
        assert f"{mode} ok" in r.stdout, r.stdout


def test_a_failing_rank_ends_a_sub_group_job():
    t = time.perf_counter()
    r = _job(2, "fail_in_group", timeout=120, script=WORKER)
    took = time.perf_counter() - t
    assert r.returncode != 0
    assert "rank 1 fails on purpose" in r.stderr, r.stderr[-3000:]
    assert took < 60, took


def test_queries_without_a_process_group():
    assert dist.is_mpi_available() == dist.is_available()
    assert dist.is_backend_available("mpi") == dist.is_available()
    assert not any(f() for f in (dist.is_nccl_available, dist.is_gloo_available,
                                 dist.is_ucc_available, dist.is_xccl_available))
    assert not dist.is_backend_available("nccl")
    assert dist.get_default_backend_for_device("cpu") == "mpi"
    assert dist.get_default_backend_for_device(cg.device("cpu")) == "mpi"
    with pytest.raises(ValueError, match="Default backend not registered"):
        dist.get_default_backend_for_device("tpu")
    assert dist.get_pg_count() == 0 and dist.GroupMember.WORLD is None
    assert dist.group.WORLD is None and dist.GroupMember.NON_GROUP_MEMBER == -100
    assert dist.default_pg_timeout.total_seconds() == 1800
    assert not dist.is_torchelastic_launched()
    if not any(v in os.environ for v in ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK")):
        assert dist.get_node_local_rank(fallback_rank=3) == 3
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.new_group([0])
    with pytest.raises(ValueError, match="Invalid ``op``"):
        dist.P2POp(dist.send, cg.zeros(1), 0)


def test_names_match_pytorch():
    """Every function's parameters are torch 2.13's, in order."""
    torch_or_skip()
    import torch.distributed as tdist
    import torch.distributed.nn.functional as tfn

    names = ["send", "recv", "isend", "irecv", "batch_isend_irecv", "send_object_list",
             "recv_object_list", "reduce", "gather", "scatter", "all_to_all",
             "all_to_all_single", "all_gather_into_tensor", "reduce_scatter_tensor",
             "gather_object", "scatter_object_list", "broadcast_object_list",
             "all_gather_coalesced", "all_reduce_coalesced", "monitored_barrier", "new_group",
             "new_subgroups", "new_subgroups_by_enumeration", "get_process_group_ranks",
             "get_global_rank", "get_group_rank", "get_node_local_rank",
             "destroy_process_group", "is_backend_available", "get_backend_config",
             "get_default_backend_for_device", "is_torchelastic_launched", "get_pg_count",
             "broadcast", "all_reduce", "all_gather", "reduce_scatter", "barrier"]
    for name in names:
        ours = list(inspect.signature(getattr(dist, name)).parameters)
        theirs = list(inspect.signature(getattr(tdist, name)).parameters)
        assert ours == theirs, (name, ours, theirs)
    ours = list(inspect.signature(dist.P2POp).parameters)
    assert ours == list(inspect.signature(tdist.P2POp).parameters)[:len(ours)]
    for name in ("all_reduce", "all_gather", "broadcast", "reduce_scatter", "all_to_all",
                 "all_to_all_single", "gather", "scatter", "reduce"):
        ours = list(inspect.signature(getattr(dist.nn.functional, name)).parameters)
        assert ours == list(inspect.signature(getattr(tfn, name)).parameters), name


def test_importing_clgraph_still_does_not_need_mpi():
    code = ("import sys, clgraph.distributed.nn.functional\n"
            "assert 'mpi4py' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr
