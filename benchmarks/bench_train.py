"""Training steps per second, eager, against PyTorch CPU (when installed) in the same run:

- MLP 64-256-256-10, batch 256, Adam
- small CNN, batch 64, 1x28x28: (conv 3x3 + relu + maxpool 2) x 2, linear; Adam

    python benchmarks/bench_train.py [--steps N]
"""

from __future__ import annotations

import argparse

import numpy as np

import clgraph as cg
from _timing import median_time

try:
    import torch

    torch.set_num_threads(2)
except ImportError:
    torch = None


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def cnn(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


def copy_weights(src, dst):
    """Same initial weights in both frameworks."""
    for (_, p), (_, q) in zip(src.named_parameters(), dst.named_parameters()):
        q.data = cg.from_numpy(p.detach().numpy().copy())


def run(lib, model, x, y, steps, sync):
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = lib.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return median_time(step, sync, steps), step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cases = [("MLP 64-256-256-10 b256", mlp, (256, 64)),
             ("CNN 1x28x28 b64", cnn, (64, 1, 28, 28))]
    dev = cg.ones(1).device
    print(f"device {dev} ({dev.info.name}); torch {torch.__version__ if torch else 'absent'}")
    print(f"{'step (Adam, eager)':<26}{'clgraph':>12}{'steps/s':>9}{'launches':>10}"
          f"{'torch':>12}{'steps/s':>9}{'ratio':>7}")
    for name, make, shape in cases:
        xh = rng.standard_normal(shape).astype(np.float32)
        yh = rng.integers(0, 10, shape[0])
        tm = make(torch) if torch else None
        model = make(cg)
        if tm is not None:
            copy_weights(tm, model)
        t_cl, step = run(cg, model, cg.from_numpy(xh), cg.from_numpy(yh), args.steps,
                         cg.accelerator.synchronize)
        with cg.profile() as prof:
            step()
        t_t = None
        if tm is not None:
            t_t, _ = run(torch, tm, torch.from_numpy(xh), torch.from_numpy(yh), args.steps,
                         lambda: None)
        tt = f"{t_t * 1e3:>10.2f}ms{1 / t_t:>9.0f}{t_cl / t_t:>7.2f}" if t_t else ""
        print(f"{name:<26}{t_cl * 1e3:>10.2f}ms{1 / t_cl:>9.0f}{prof.launches:>10}{tt}")


if __name__ == "__main__":
    main()
