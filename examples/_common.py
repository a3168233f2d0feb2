"""Shared pieces of the digits examples: data, a progress bar, evaluation and the optional
loss-curve plot. Uses scikit-learn's bundled digits data set (1797 8x8 images)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import clgraph as cg


def parse_args(description: str, epochs: int, lr: float = 1e-3):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--device", default=None, help="cl:N, gpu, cpu or cuda (default: auto)")
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true",
                    help="run the training step through cg.compile")
    ap.add_argument("--plot", default=None, help="write the loss curve to this PNG")
    ap.add_argument("--max-steps", type=int, default=None, help="stop early (smoke tests)")
    return ap.parse_args()


def digits(device, images: bool):
    """Train/test tensors: pixels scaled to [0, 1], 80/20 split fixed by a seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    if images:
        x = x.reshape(-1, 1, 8, 8)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=0,
                                          stratify=d.target)
    t = [cg.from_numpy(a).to(device) for a in (xtr, ytr.astype(np.int64), xte,
                                               yte.astype(np.int64))]
    return t


def progress(epoch: int, epochs: int, loss: float, start: float, width: int = 30):
    done = int(width * epoch / epochs)
    bar = "#" * done + "." * (width - done)
    sys.stdout.write(f"\r[{bar}] epoch {epoch}/{epochs}  loss {loss:.4f}  "
                     f"{time.perf_counter() - start:5.1f}s")
    sys.stdout.flush()
    if epoch == epochs:
        sys.stdout.write("\n")


@cg.no_grad()
def accuracy(model, x, y, batch: int = 512) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        pred = model(x[i:i + batch]).argmax(dim=1)
        correct += int((pred == y[i:i + batch]).sum().item())
    model.train()
    return correct / len(x)


def maybe_compile(step, enabled: bool):
    if not enabled:
        return step
    return cg.compile(step)


def plot(losses, path):
    if not path:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no plot written")
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"loss curve written to {path}")


def train(model, args, images: bool):
    """The training loop both examples share: Adam, cross-entropy, shuffled batches."""
    import clgraph.nn as nn
    import clgraph.optim as optim
    from clgraph.utils.data import DataLoader, TensorDataset

    cg.manual_seed(args.seed)
    device = cg.device(args.device) if args.device else cg.ones(1).device
    xtr, ytr, xte, yte = digits(device, images)
    model = model.to(device)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    step = maybe_compile(step, args.compile)
    losses, steps, start = [], 0, time.perf_counter()
    print(f"training {model.__class__.__name__} on {device} ({device.info.name}), "
          f"{len(xtr)} train / {len(xte)} test samples")
    for epoch in range(1, args.epochs + 1):
        epoch_losses = []
        for xb, yb in loader:
            epoch_losses.append(step(xb, yb))
            steps += 1
            if args.max_steps and steps >= args.max_steps:
                break
        # one host read per epoch: the queue stays busy while Python runs ahead
        vals = [float(v) for v in epoch_losses]
        losses += vals
        progress(epoch, args.epochs, float(np.mean(vals)), start)
        if args.max_steps and steps >= args.max_steps:
            print()
            break
    acc = accuracy(model, xte, yte)
    print(f"test accuracy: {acc * 100:.2f}%  ({time.perf_counter() - start:.1f}s)")
    plot(losses, args.plot)
    return acc, losses
