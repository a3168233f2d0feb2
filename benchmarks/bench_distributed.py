"""clgraph.distributed between local processes, against mpi4py on numpy arrays:

- all_reduce (SUM) of 1, 16 and 128 MB of float32 on 2 processes: clgraph's (device ->
  host -> MPI -> host -> device; mapped in place on CPU devices, and staged as on a discrete
  GPU) against mpi4py's Allreduce on a numpy array of the same size, as throughput (bytes
  per second of tensor reduced);
- a DistributedDataParallel training step (by default an MLP 1024-2048-2048-10, 6.3M
  parameters, batch 64 per process, SGD with momentum; ``--width``, ``--depth`` and
  ``--batch`` pick another: gradients spread over several buckets, and a backward long
  enough to hide their all-reduces, are what overlap needs) on 2 processes, against the
  same 2 processes each training on its own (no communication) and one process alone,
  eager (also with ``gradient_as_bucket_view=True`` and with 4 MB buckets) and compiled
  (``cg.compile`` of the whole step: its replay runs the bucket all-reduces as host steps);
  and one all-reduce of all the gradients at once, which the buckets' overlap with the
  backward should beat; and where DDP's time goes: its backward up to the last gradient
  (with the gradients' copies into the buckets) against the plain backward, and the wait
  for the all-reduces after it.

    pip install -e ".[distributed]"
    python benchmarks/bench_distributed.py [--steps N] [--width W --depth D --batch B]

It starts its own MPI jobs (``mpirun -n 2``). On PoCL every process shares the CPU: the
training part gives each process one PoCL thread (POCL_MAX_PTHREAD_COUNT=1, in both runs)
so that two processes compute side by side as two devices would.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _timing import settle

SIZES_MB = (1, 16, 128)
STAGED = "CLGRAPH_DISTRIBUTED_STAGED"


def _medians(fns: dict, sync, barrier, steps: int, warmup: int = 3, rounds: int = 3) -> dict:
    """Median seconds per call of each of ``fns``: after a warm-up of each, ``rounds``
    rounds of ``steps`` calls of one then the next (the machine's load drifts alike for
    all), every rank starting each call together."""
    times: dict = {k: [] for k in fns}
    for r in range(rounds + 1):
        if r == 1:
            settle()  # clgraph's background loading of cached kernels is done
        for k, fn in fns.items():
            for _ in range(warmup if r == 0 else steps):
                barrier()
                t = time.perf_counter()
                fn()
                sync()
                if r:
                    times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def allreduce_part(steps: int) -> dict:
    import clgraph.distributed as dist

    dist.init_process_group("mpi")
    rows = [dict(_one_size(mb << 18, max(steps // (mb // 16 + 1), 3)), mb=mb)
            for mb in SIZES_MB]
    dist.destroy_process_group()
    return {"rows": rows}


def _one_size(n: int, k: int) -> dict:
    """Seconds per all-reduce of n float32: mpi4py on numpy, clgraph mapped and staged."""
    import numpy as np
    from mpi4py import MPI

    import clgraph as cg
    import clgraph.distributed as dist

    comm = MPI.COMM_WORLD
    host, x, y = np.ones(n, np.float32), cg.ones(n), cg.ones(n)

    def staged():
        os.environ[STAGED] = "1"
        dist.all_reduce(y)
        del os.environ[STAGED]

    sync = cg.accelerator.synchronize
    t = _medians({"mpi": lambda: comm.Allreduce(MPI.IN_PLACE, host),
                  "mapped": lambda: dist.all_reduce(x)}, sync, comm.Barrier, k)
    # the staged copies' memory traffic disturbs what runs next: measured after
    t.update(_medians({"staged": staged}, sync, comm.Barrier, k))
    return t


def ddp_part(steps: int, width: int = 2048, depth: int = 2, batch: int = 64) -> dict:
    from mpi4py import MPI

    import clgraph as cg
    import clgraph.distributed as dist
    import clgraph.nn as nn
    from clgraph.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi")
    comm = MPI.COMM_WORLD
    cg.manual_seed(0)
    layers, n_in = [], 1024
    for _ in range(depth):
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    model = nn.Sequential(*layers, nn.Linear(n_in, 10))
    x, y = cg.randn(batch, 1024), cg.randint(0, 10, (batch,))

    def step(net):
        opt = cg.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        def run():
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()

        return run

    # no communication: each process on its own; then the same step compiled
    steps_of = {"plain": step(model), "plain_compiled": cg.compile(step(model))}
    if comm.Get_size() > 1:
        ddp = DistributedDataParallel(model)
        buckets = [b.flat.numel() * 4 / 2**20 for b in ddp._bucket_list]
        steps_of["ddp"] = step(ddp)
        steps_of["ddp_compiled"] = cg.compile(step(ddp))
        # PyTorch's options that cut DDP's own cost: .grad as views of the buckets (no copy
        # back), and smaller buckets (more of the all-reduce overlaps the backward)
        steps_of["ddp_view"] = step(DistributedDataParallel(model, gradient_as_bucket_view=True))
        steps_of["ddp_small"] = step(DistributedDataParallel(model, bucket_cap_mb=4))
    t = _medians(steps_of, cg.accelerator.synchronize, comm.Barrier, steps)
    for k in ("plain_compiled", "ddp_compiled"):  # replayed, never run eagerly
        if k in steps_of:
            entries = list(steps_of[k]._entries.values())
            assert all(e.plan is not None and e.eager is None for e in entries), k
    if comm.Get_size() > 1:
        t.update(_phases(model, x, y, comm, steps))
    n = sum(p.numel() for p in model.parameters())
    flat, grads = cg.zeros(n), cg.ones(n)

    def passes():  # what DDP adds on the device: gradients scaled into buckets, copied back
        cg.mul(grads, 0.5, out=flat)
        grads.copy_(flat)

    t.update(_medians({"allreduce_all": lambda: dist.all_reduce(flat, op=dist.ReduceOp.AVG),
                       "passes": passes}, cg.accelerator.synchronize, comm.Barrier, steps))
    dist.destroy_process_group()
    return dict(t, params=n, buckets=buckets if comm.Get_size() > 1 else [])


def _phases(model, x, y, comm, steps: int) -> dict:
    """Where DDP's time goes (gradient_as_bucket_view): the backward up to its last
    gradient (with the copies into the buckets), the wait for the all-reduces after it, and
    the plain backward for comparison; medians of ``steps`` steps, every wait explicit."""
    import statistics

    import clgraph as cg
    import clgraph.nn as nn
    from clgraph.nn.parallel import DistributedDataParallel

    sync, marks = cg.accelerator.synchronize, {}

    class Timed(DistributedDataParallel):
        def _finish(self):
            sync()
            marks["grads"] = time.perf_counter()
            for b in self._bucket_list:
                b.work.wait()
            marks["reduced"] = time.perf_counter()
            super()._finish()

    ddp = Timed(model, gradient_as_bucket_view=True)
    rows: dict = {"bwd_plain": [], "bwd_ddp": [], "ddp_wait": []}
    for i in range(steps + 3):
        for net in (model, ddp):
            comm.Barrier()
            loss = nn.functional.cross_entropy(net(x), y)
            sync()
            t0 = time.perf_counter()
            loss.backward()
            sync()
            if i >= 3 and net is model:
                rows["bwd_plain"].append(time.perf_counter() - t0)
            elif i >= 3:
                rows["bwd_ddp"].append(marks["grads"] - t0)
                rows["ddp_wait"].append(marks["reduced"] - marks["grads"])
            model.zero_grad()
    return {k: statistics.median(v) for k, v in rows.items()}


def _run(n: int, part: str, steps: int, extra_env=None, model=()) -> dict:
    mpirun = shutil.which("mpirun") or shutil.which("mpirun", path=str(
        Path(sys.executable).parent))
    if mpirun is None:
        sys.exit("no mpirun: pip install -e '.[distributed]'")
    env = dict(os.environ, **(extra_env or {}))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = [mpirun, "-n", str(n)] + (["--oversubscribe"] if n > (os.cpu_count() or 1) else [])
    cmd += [sys.executable, __file__, "--part", part, "--steps", str(steps), *model]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--width", type=int, default=2048, help="hidden width of the MLP")
    ap.add_argument("--depth", type=int, default=2, help="hidden layers of the MLP")
    ap.add_argument("--batch", type=int, default=64, help="batch per process")
    ap.add_argument("--part", choices=["allreduce", "ddp"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:  # one rank of a job this script started
        res = (allreduce_part(args.steps) if args.part == "allreduce" else
               ddp_part(args.steps, args.width, args.depth, args.batch))
        if int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0"))) == 0:
            print(json.dumps(res), flush=True)
        return
    ar = _run(2, "allreduce", args.steps)
    print("all_reduce, float32, 2 processes: throughput (GB/s) and share of mpi4py's")
    print(f"{'size':>8}  {'mpi4py numpy':>13}  {'clgraph mapped':>15}  {'clgraph staged':>15}")
    for row in ar["rows"]:
        gbs = {k: row["mb"] * 2**20 / row[k] / 1e9 for k in ("mpi", "mapped", "staged")}
        share = {k: f"{gbs[k]:>7.2f} ({gbs[k] / gbs['mpi']:4.0%})" for k in gbs}
        print(f"{row['mb']:>5} MB  {gbs['mpi']:>13.2f}  {share['mapped']:>15}  "
              f"{share['staged']:>15}")
    one_thread = {"POCL_MAX_PTHREAD_COUNT": "1"}
    model = ["--width", str(args.width), "--depth", str(args.depth), "--batch", str(args.batch)]
    one = _run(1, "ddp", args.steps, one_thread, model)
    two = _run(2, "ddp", args.steps, one_thread, model)
    print(f"\ntraining step, MLP of {one['params'] / 1e6:.1f}M parameters "
          f"({one['params'] * 4 / 2**20:.0f} MB of gradients), batch {args.batch} per process; "
          f"buckets of {', '.join(f'{b:.1f}' for b in two['buckets'])} MB")
    print(f"  1 process:                       {one['plain'] * 1e3:7.1f} ms")
    print(f"  2 processes, each on its own:    {two['plain'] * 1e3:7.1f} ms  (CPU shared)")
    print(f"  2 processes, DDP:                {two['ddp'] * 1e3:7.1f} ms  "
          f"(+{(two['ddp'] - two['plain']) * 1e3:.1f} ms for the gradients' all-reduces)")
    for key, what in (("ddp_view", "gradient_as_bucket_view=True"),
                      ("ddp_small", "bucket_cap_mb=4")):
        print(f"  2 processes, DDP, {what + ':':<30}{two[key] * 1e3:7.1f} ms  "
              f"(+{(two[key] - two['plain']) * 1e3:.1f} ms)")
    print(f"  compiled step, 1 process:        {one['plain_compiled'] * 1e3:7.1f} ms")
    print(f"  compiled, 2 processes on own:    {two['plain_compiled'] * 1e3:7.1f} ms")
    print(f"  compiled, 2 processes, DDP:      {two['ddp_compiled'] * 1e3:7.1f} ms  "
          f"(+{(two['ddp_compiled'] - two['plain_compiled']) * 1e3:.1f} ms, the all-reduces "
          "as host steps of the replay)")
    print(f"  one all-reduce of all gradients: {two['allreduce_all'] * 1e3:7.1f} ms")
    print(f"  DDP's backward (gradient_as_bucket_view): to its last gradient "
          f"{two['bwd_ddp'] * 1e3:.1f} ms (without DDP {two['bwd_plain'] * 1e3:.1f} ms), then "
          f"waiting for the all-reduces {two['ddp_wait'] * 1e3:.1f} ms")
    print(f"  DDP's two device passes over all gradients (into buckets, back): "
          f"{two['passes'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
