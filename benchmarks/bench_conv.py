"""Small CNN step, eager: batch 64 of 1x28x28, conv(1->16, 3x3, pad 1) + relu + maxpool 2,
conv(16->32, 3x3, pad 1) + relu + maxpool 2, linear 32*7*7 -> 10, cross entropy. Forward
alone and forward + backward, against PyTorch CPU (2 threads) when installed; --profile
prints clgraph's per-kernel device time for one step.

    python benchmarks/bench_conv.py [--steps N] [--profile]
"""

from __future__ import annotations

import argparse

import numpy as np

import clgraph as cg
from _timing import median_time
from clgraph.ops import conv

try:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
except ImportError:
    torch = None

BATCH = 64
SHAPES = [(16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (32 * 7 * 7, 10), (10,)]


def params(lib, rng):
    ps = []
    for s in SHAPES:
        fan_in = int(np.prod(s[1:])) if len(s) == 4 else s[0]
        a = (rng.standard_normal(s) / np.sqrt(fan_in if len(s) > 1 else 1)).astype(np.float32)
        t = cg.from_numpy(a) if lib is cg else torch.from_numpy(a)
        ps.append(t.requires_grad_())
    return ps


def forward(lib, ps, x, y):
    c2d, pool = (conv.conv2d, conv.max_pool2d) if lib is cg else (F.conv2d, F.max_pool2d)
    h = pool(c2d(x, ps[0], ps[1], padding=1).relu(), 2)
    h = pool(c2d(h, ps[2], ps[3], padding=1).relu(), 2)
    logits = h.reshape(BATCH, -1) @ ps[4] + ps[5]
    return -logits.log_softmax(dim=1).gather(1, y.unsqueeze(1)).mean()


def run(lib, steps, profile=False):
    rng = np.random.default_rng(0)
    ps = params(lib, rng)
    xs = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    ys = rng.integers(0, 10, BATCH)
    if lib is cg:
        x, y = cg.from_numpy(xs), cg.from_numpy(ys)
        sync = cg.accelerator.synchronize
    else:
        x, y = torch.from_numpy(xs), torch.from_numpy(ys)
        sync = lambda: None

    def fwd():
        with (cg.no_grad() if lib is cg else torch.no_grad()):
            forward(lib, ps, x, y)

    def step():
        for p in ps:
            p.grad = None
        forward(lib, ps, x, y).backward()

    f, s = median_time(fwd, sync, steps) * 1e3, median_time(step, sync, steps) * 1e3
    if profile and lib is cg:
        with cg.profile() as prof:
            step()
            sync()
        print(prof.table())
    return f, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    cf, cs = run(cg, args.steps, args.profile)
    print(f"{'':24}{'clgraph ms':>12}{'torch ms':>12}{'ratio':>8}")
    if torch is not None:
        tf, ts = run(torch, args.steps)
        print(f"{'forward':24}{cf:12.2f}{tf:12.2f}{cf / tf:8.2f}")
        print(f"{'forward + backward':24}{cs:12.2f}{ts:12.2f}{cs / ts:8.2f}")
    else:
        print(f"{'forward':24}{cf:12.2f}")
        print(f"{'forward + backward':24}{cs:12.2f}")


if __name__ == "__main__":
    main()
