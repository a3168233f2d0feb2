"""clgraph.distributed and DistributedDataParallel in real MPI jobs: ``mpirun -n 2`` and
``-n 3`` run tests/distributed_worker.py, whose ranks check every collective against numpy
(mapped in place and staged; eagerly and replayed in a compiled function), DDP training
against one process on the combined batch (SGD with momentum and Adam; eager, a compiled
module, a whole compiled step that replays its all-reduces, mapped and staged), no_sync
accumulation (eager, and a compiled micro-step with a plan per mode), unused parameters
(eager and compiled) and mismatch errors; examples/digits_ddp.py learns. A rank that
raises, or Ctrl-C, ends the whole job. The MPI tests skip where mpi4py or mpirun is missing
(``pip install -e ".[distributed]"`` brings both). tests/test_distributed_more.py covers
point-to-point, the rooted collectives, process groups and distributed.nn.functional."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import torch_or_skip

from clgraph.utils.data import DistributedSampler

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("distributed_worker.py")


def _mpirun() -> str:
    pytest.importorskip("mpi4py")
    found = shutil.which("mpirun") or shutil.which("mpirun", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("no mpirun (pip install -e '.[distributed]' brings Open MPI's)")
    return found


def _command(n: int, *modes: str, script: Path = WORKER) -> tuple[list, dict]:
    cmd = [_mpirun(), "-n", str(n)]
    if n > (os.cpu_count() or 1):
        cmd.append("--oversubscribe")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers: Open MPI refuses root
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return cmd + [sys.executable, str(script), *modes], env


def _job(n: int, *modes: str, timeout: float = 240, script: Path = WORKER):
    cmd, env = _command(n, *modes, script=script)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, check=False)


@pytest.mark.parametrize("ranks,ddp", [(2, "ddp"), (3, "ddp_subset")])
def test_collectives_and_ddp(ranks, ddp):
    r = _job(ranks, "collectives", ddp)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    assert "collectives ok" in r.stdout and f"{ddp} ok" in r.stdout, r.stdout


def test_digits_ddp_example_learns():
    pytest.importorskip("sklearn")
    r = _job(2, "--epochs", "3", script=ROOT / "examples" / "digits_ddp.py")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    line = r.stdout.strip().splitlines()[-1]
    assert "replicas identical" in line, line
    assert float(line.split("test accuracy: ")[1].split("%")[0]) > 80, line


def test_a_failing_rank_ends_the_job():
    t = time.perf_counter()
    r = _job(2, "fail", timeout=120)
    took = time.perf_counter() - t
    assert r.returncode != 0
    assert "rank 1 fails on purpose" in r.stderr, r.stderr[-3000:]
    assert took < 60, took  # the other rank was waiting in an all-reduce: aborted, not hung


def test_ctrl_c_ends_every_rank():
    cmd, env = _command(2, "hang")
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, cwd=ROOT, start_new_session=True)
    try:
        pids = []
        while len(pids) < 2:
            line = p.stdout.readline()
            assert line, "the job ended before both ranks were ready"
            if line.startswith("ready"):
                pids.append(int(line.split()[1]))
        p.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends mpirun
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode != 0
    deadline = time.time() + 10
    for pid in pids:
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), f"rank process {pid} survived Ctrl-C"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def test_importing_clgraph_does_not_need_mpi():
    code = ("import sys, clgraph as cg\n"
            "assert 'mpi4py' not in sys.modules\n"
            "assert not cg.distributed.is_initialized()\n"
            "try:\n    cg.distributed.get_rank()\n"
            "except RuntimeError as e:\n    assert 'init_process_group' in str(e)\n"
            "else:\n    raise AssertionError\n"
            "assert cg.nn.parallel.DistributedDataParallel\n"
            "assert 'mpi4py' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr


# --- DistributedSampler (no MPI needed: replicas and rank given) ---------------------------

SAMPLER_CASES = [(n, replicas, drop_last) for n in (0, 1, 5, 10, 12) for replicas in (1, 3, 4)
                 for drop_last in (False, True)]


@pytest.mark.parametrize("n,replicas,drop_last", SAMPLER_CASES)
def test_distributed_sampler_splits(n, replicas, drop_last):
    parts = [list(DistributedSampler(range(n), replicas, rank, shuffle=False,
                                     drop_last=drop_last)) for rank in range(replicas)]
    lengths = {len(p) for p in parts}
    assert len(lengths) == 1  # every rank takes as many steps
    k = lengths.pop()
    assert k == len(DistributedSampler(range(n), replicas, 0, drop_last=drop_last))
    if drop_last:
        assert k == n // replicas
        assert sorted(i for p in parts for i in p) == list(range(k * replicas))
    else:
        assert k == -(-n // replicas)
        assert {i for p in parts for i in p} == set(range(n))  # a few twice: padding
    for rank, p in enumerate(parts):
        assert p[:1] == ([rank % max(n, 1)] if k else [])


def test_distributed_sampler_shuffles_by_epoch():
    def order(epoch, rank, seed=0):
        s = DistributedSampler(range(20), 2, rank, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert sorted(order(0, 0) + order(0, 1)) == list(range(20))
    assert order(0, 0) == order(0, 0) and order(0, 0) != order(1, 0)
    assert order(3, 1, seed=7) != order(3, 1)
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(range(4), 2, 2)


def test_distributed_sampler_matches_pytorch():
    torch = torch_or_skip()
    for n, replicas, drop_last in SAMPLER_CASES:
        for rank in range(replicas):
            ours = DistributedSampler(range(n), replicas, rank, shuffle=False,
                                      drop_last=drop_last)
            theirs = torch.utils.data.DistributedSampler(range(n), replicas, rank,
                                                         shuffle=False, drop_last=drop_last)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
