"""Train the digits MLP data-parallel over MPI: each process takes its share of every batch,
DistributedDataParallel averages the gradients during backward, and every rank ends with
the same model, as accurate as one process trained on the whole batches.

    pip install -e ".[examples,distributed]"
    mpirun -n 2 python examples/digits_ddp.py [--epochs 40] [--compile]
    mpirun -n 8 --hostfile hosts python examples/digits_ddp.py   # several machines

Each process uses its node-local rank's GPU (all share PoCL's CPU device where there is
none); ``--batch-size`` is the global batch, split across the processes.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import clgraph as cg
import clgraph.distributed as dist
import clgraph.nn as nn
import clgraph.optim as optim
from _common import accuracy, digits, parse_args, progress
from clgraph.nn.parallel import DistributedDataParallel
from clgraph.utils.data import DataLoader, DistributedSampler, TensorDataset
from digits_mlp import MLP


def main(argv=None):
    if argv is not None:
        sys.argv[1:] = argv
    args = parse_args("The digits MLP trained data-parallel over MPI", epochs=40)
    dist.init_process_group("mpi", device_id=args.device)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = cg.get_default_device()
    xtr, ytr, xte, yte = digits(device, images=False)
    cg.manual_seed(args.seed)
    model = MLP().to(device)  # DistributedDataParallel starts every rank from rank 0's
    cg.manual_seed(args.seed + rank)  # each rank's own dropout masks
    ddp = DistributedDataParallel(cg.compile(model) if args.compile else model)
    data = TensorDataset(xtr, ytr)
    sampler = DistributedSampler(data, shuffle=True, seed=args.seed)
    loader = DataLoader(data, batch_size=max(args.batch_size // world, 1), sampler=sampler)
    opt = optim.Adam(ddp.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(ddp(xb), yb)
        loss.backward()  # gradients averaged across the ranks, bucket by bucket
        opt.step()
        return loss.detach()

    if rank == 0:
        print(f"training MLP on {world} processes ({device.info.name}), {len(xtr)} train / "
              f"{len(xte)} test samples, {len(sampler)} per process per epoch")
    losses, steps, start = [], 0, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)  # a new shuffle, the same on every rank
        epoch_losses = []
        for xb, yb in loader:
            epoch_losses.append(step(xb, yb))
            steps += 1
            if args.max_steps and steps >= args.max_steps:
                break
        mean = cg.stack(epoch_losses).mean()
        dist.all_reduce(mean, op=dist.ReduceOp.AVG)  # one host read per epoch, below
        losses.append(float(mean))
        if rank == 0:
            progress(epoch, args.epochs, losses[-1], start)
        if args.max_steps and steps >= args.max_steps:
            break
    acc = accuracy(model, xte, yte)
    same = _replicas_agree(model)
    if rank == 0:
        print(f"test accuracy: {acc * 100:.2f}%  ({time.perf_counter() - start:.1f}s), "
              f"replicas {'identical' if same else 'DIFFER'}")
    dist.destroy_process_group()
    return acc, losses, same


def _replicas_agree(model) -> bool:
    """Whether every rank holds rank 0's parameters (compared through one all-gather)."""
    flat = cg.cat([p.detach().reshape(-1) for p in model.parameters()])
    every = cg.zeros(dist.get_world_size(), flat.numel())
    dist.all_gather_into_tensor(every, flat)
    host = every.numpy()
    return bool(np.all(host == host[:1]))


if __name__ == "__main__":
    main()
