"""A variational autoencoder on scikit-learn's digits (8x8 images, pixels in [0, 1]).

    pip install -e ".[examples]"
    python examples/vae_digits.py [--device cl:0] [--epochs 30] [--latent 8] [--plot vae.png]

An MLP encoder gives each image a Gaussian over a small latent space (mean and log
variance); a sample drawn with the reparameterization trick (mu + sigma * eps) goes through
an MLP decoder back to pixel logits. The loss per image is the reconstruction's binary
cross-entropy summed over pixels plus the KL divergence of the encoder's Gaussian from the
standard normal prior. Prints the loss per epoch and the test images' reconstruction error
(next to predicting every image as the mean image); --plot writes test digits, their
reconstructions and samples from the prior as one picture.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import clgraph as cg
import clgraph.nn as nn
import clgraph.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import digits


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cl:N, gpu, cpu or cuda (default: auto)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--latent", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="compile the training step")
    ap.add_argument("--plot", default=None,
                    help="write test digits, reconstructions and samples to this PNG")
    return ap.parse_args(argv)


class VAE(nn.Module):
    def __init__(self, pixels: int = 64, hidden: int = 256, latent: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(pixels, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, pixels))

    def encode(self, x):
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def forward(self, x):
        """Pixel logits of a reconstruction, and the encoder's mean and log variance."""
        mu, logvar = self.encode(x)
        z = mu + cg.randn_like(mu) * (0.5 * logvar).exp()  # reparameterization
        return self.decoder(z), mu, logvar


def vae_loss(logits, x, mu, logvar):
    """(total, reconstruction, KL), each summed over an image and averaged over images."""
    n = x.shape[0]
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
    kl = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum() / n
    return recon + kl, recon, kl


@cg.no_grad()
def evaluate(model, x) -> float:
    """The mean loss over ``x`` (one sample of z per image)."""
    model.eval()
    logits, mu, logvar = model(x)
    model.train()
    return float(vae_loss(logits, x, mu, logvar)[0])


@cg.no_grad()
def reconstruction_error(model, x) -> float:
    """Mean squared error per pixel of the decoded encoder means."""
    model.eval()
    mu, _ = model.encode(x)
    rec = model.decoder(mu).sigmoid()
    model.train()
    return float(((rec - x) ** 2).mean())


def save_grid(rows, titles, path) -> None:
    """Rows of 8x8 images as one picture, a title left of each row."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no picture written")
        return
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.8, len(rows) * 0.9), squeeze=False)
    for i, (row, title) in enumerate(zip(rows, titles)):
        for j in range(n):
            ax = axes[i][j]
            ax.axis("off")
            if j < len(row):
                ax.imshow(row[j].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[i][0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"digits written to {path}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    cg.manual_seed(args.seed)
    device = cg.device(args.device) if args.device else cg.ones(1).device
    xtr, _, xte, _ = digits(device, images=False)
    model = VAE(xtr.shape[1], args.hidden, args.latent).to(device)
    opt = cg.optim.Adam(model.parameters(), lr=args.lr)

    def step(xb):
        opt.zero_grad()
        logits, mu, logvar = model(xb)
        loss, recon, kl = vae_loss(logits, xb, mu, logvar)
        loss.backward()
        opt.step()
        return loss, recon, kl

    run = cg.compile(step) if args.compile else step
    start_loss = evaluate(model, xtr)
    print(f"training a VAE (latent {args.latent}) on {device} ({device.info.name}), "
          f"{len(xtr)} train / {len(xte)} test images; loss before training {start_loss:.2f}")
    losses, start = [], time.perf_counter()
    gen = np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = gen.permutation(len(xtr))
        parts = []
        for i in range(0, len(order), args.batch_size):
            idx = cg.tensor(order[i:i + args.batch_size], device=device)
            parts.append(run(xtr[idx]))
        # one host read per epoch: the queue stays busy while Python runs ahead
        vals = np.array([[float(v) for v in p] for p in parts])
        loss, recon, kl = vals.mean(0)
        losses.append(float(loss))
        print(f"epoch {epoch:3d}/{args.epochs}  loss {loss:7.3f}  (reconstruction "
              f"{recon:7.3f} + KL {kl:6.3f})  {time.perf_counter() - start:5.1f}s")
    error = reconstruction_error(model, xte)
    baseline = float(((xte - xtr.mean(0)) ** 2).mean())
    test_loss = evaluate(model, xte)
    print(f"test loss {test_loss:.3f}; reconstruction error {error:.4f} per pixel (the mean "
          f"image: {baseline:.4f})")
    if args.plot:
        with cg.no_grad():
            model.eval()
            originals = xte[:10]
            recons = model.decoder(model.encode(originals)[0]).sigmoid()
            samples = model.decoder(cg.randn(10, args.latent, device=device)).sigmoid()
        save_grid([t.numpy() for t in (originals, recons, samples)],
                  ["test digits", "reconstructions", "samples from the prior"], args.plot)
    return {"losses": losses, "start_loss": start_loss, "test_loss": test_loss,
            "reconstruction_error": error, "baseline_error": baseline}


if __name__ == "__main__":
    main()
