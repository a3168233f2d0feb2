"""Backward cost of a 3-layer MLP (64-256-256-10, batch 256), eager: forward alone against
forward + backward, in one run; PyTorch CPU for reference when installed.

    python benchmarks/bench_autograd.py [--steps N]
"""

from __future__ import annotations

import argparse

import numpy as np

import clgraph as cg
from _timing import median_time as measure

try:
    import torch

    torch.set_num_threads(2)
except ImportError:
    torch = None

SIZES = (64, 256, 256, 10)
BATCH = 256


def params(lib, rng, dtype):
    ps = []
    for i, o in zip(SIZES[:-1], SIZES[1:]):
        w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)
        b = np.zeros(o, np.float32)
        if lib is cg:
            ps += [cg.from_numpy(w).requires_grad_(), cg.from_numpy(b).requires_grad_()]
        else:
            ps += [torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()]
    return ps


def forward(lib, ps, x, y):
    h = x
    for k in range(0, len(ps), 2):
        h = h @ ps[k] + ps[k + 1]
        if k + 2 < len(ps):
            h = h.relu()
    logp = h.log_softmax(dim=1)
    return -logp.gather(1, y.unsqueeze(1)).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    xh = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    yh = rng.integers(0, SIZES[-1], BATCH)

    ps = params(cg, rng, cg.float32)
    x, y = cg.from_numpy(xh), cg.from_numpy(yh)
    sync = cg.accelerator.synchronize

    def fwd():
        with cg.no_grad():
            forward(cg, ps, x, y)

    def fwd_bwd():
        for p in ps:
            p.grad = None
        forward(cg, ps, x, y).backward()

    t_f = measure(fwd, sync, args.steps)
    t_fb = measure(fwd_bwd, sync, args.steps)
    with cg.profile() as prof:
        fwd_bwd()
    rows = [("clgraph eager", t_f, t_fb, prof.launches)]
    if torch is not None:
        tps = params(torch, np.random.default_rng(0), None)
        tx, ty = torch.from_numpy(xh), torch.from_numpy(yh)

        def tfwd():
            with torch.no_grad():
                forward(torch, tps, tx, ty)

        def tfwd_bwd():
            for p in tps:
                p.grad = None
            forward(torch, tps, tx, ty).backward()

        rows.append(("torch CPU eager", measure(tfwd, lambda: None, args.steps),
                     measure(tfwd_bwd, lambda: None, args.steps), None))
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, device {x.device} "
          f"({x.device.info.name})")
    print(f"{'':<18}{'forward':>12}{'fwd+bwd':>12}{'ratio':>8}{'launches':>10}")
    for name, f, fb, launches in rows:
        print(f"{name:<18}{f * 1e3:>10.3f}ms{fb * 1e3:>10.3f}ms{fb / f:>8.2f}"
              f"{launches if launches is not None else '-':>10}")
    print("target: clgraph fwd+bwd under 3.5x forward")


if __name__ == "__main__":
    main()
