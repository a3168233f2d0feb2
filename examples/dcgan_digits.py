"""A DCGAN on scikit-learn's digits, upsampled to 16x16 and scaled to [-1, 1].

    pip install -e ".[examples]"
    python examples/dcgan_digits.py [--device cl:0] [--epochs 12] [--compile] [--plot samples.png]

The generator turns a noise vector into an image with transposed convolutions (1x1 -> 4x4
-> 8x8 -> 16x16, BatchNorm and ReLU between, Tanh at the end); the discriminator scores an
image with strided convolutions and LeakyReLU. Both train with Adam (beta1 = 0.5) on
BCEWithLogitsLoss: the discriminator to tell real images from generated ones, the generator
to have its images scored real. Prints both losses and the discriminator's mean
probability on real and generated images per epoch; --plot writes a grid of samples.
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
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--width", type=int, default=32, help="channels of the widest layers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="compile the training step")
    ap.add_argument("--max-steps", type=int, default=None, help="stop early (smoke tests)")
    ap.add_argument("--plot", default=None, help="write a grid of samples to this PNG")
    return ap.parse_args(argv)


class Generator(nn.Module):
    def __init__(self, latent: int = 32, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent, 2 * width, 4, 1, 0, bias=False),  # 4x4
            nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),  # 16x16
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),  # 8x8
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),  # 4x4
            nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 4, 1, 0),  # 1x1: one logit
        )

    def forward(self, x):
        return self.net(x).view(-1)


def init_weights(m) -> None:
    """DCGAN's initialization: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def images_16(x):
    """(N, 1, 8, 8) pixels in [0, 1] -> (N, 1, 16, 16) in [-1, 1]."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False) * 2 - 1


def save_grid(images, path, cols: int = 8) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no picture written")
        return
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k, 0], cmap="gray_r", vmin=-1, vmax=1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"samples written to {path}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    cg.manual_seed(args.seed)
    device = cg.device(args.device) if args.device else cg.ones(1).device
    xtr, _, xte, _ = digits(device, images=True)
    real_images = images_16(cg.cat([xtr, xte]))
    G, D = Generator(args.latent, args.width).to(device), Discriminator(args.width).to(device)
    G.apply(init_weights)
    D.apply(init_weights)
    opt_g = cg.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = cg.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()

    def step(real):
        n = real.shape[0]
        ones, zeros = cg.ones(n, device=device), cg.zeros(n, device=device)
        fake = G(cg.randn(n, args.latent, device=device))
        opt_d.zero_grad()  # the discriminator: real images 1, generated ones 0
        real_logits, fake_logits = D(real), D(fake.detach())
        loss_d = bce(real_logits, ones) + bce(fake_logits, zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()  # the generator: its images scored as real
        loss_g = bce(D(fake), ones)
        loss_g.backward()
        opt_g.step()
        return (loss_d, loss_g, real_logits.detach().sigmoid().mean(),
                fake_logits.detach().sigmoid().mean())

    run = cg.compile(step) if args.compile else step
    print(f"training a DCGAN on {device} ({device.info.name}): {len(real_images)} digits "
          f"at 16x16, latent {args.latent}")
    history, steps, start = [], 0, time.perf_counter()
    gen = np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = gen.permutation(len(real_images))
        parts = []
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            idx = cg.tensor(order[i:i + args.batch_size], device=device)
            parts.append(run(real_images[idx]))
            steps += 1
            if args.max_steps and steps >= args.max_steps:
                break
        vals = np.array([[float(v) for v in p] for p in parts])  # one host read per epoch
        history += vals.tolist()
        d, g, p_real, p_fake = vals.mean(0)
        print(f"epoch {epoch:3d}/{args.epochs}  D loss {d:.3f}  G loss {g:.3f}  "
              f"D(real) {p_real:.2f}  D(fake) {p_fake:.2f}  {time.perf_counter() - start:5.1f}s")
        if args.max_steps and steps >= args.max_steps:
            break
    G.eval()
    with cg.no_grad():
        samples = G(cg.randn(64, args.latent, device=device)).numpy()
    G.train()
    print(f"samples: pixel mean {samples.mean():.3f} (data {float(real_images.mean()):.3f}), "
          f"std {samples.std():.3f} (data {float(real_images.std()):.3f})")
    if args.plot:
        save_grid(samples, args.plot)
    hist = np.array(history)
    return {"d_losses": hist[:, 0].tolist(), "g_losses": hist[:, 1].tolist(),
            "d_real": hist[:, 2].tolist(), "d_fake": hist[:, 3].tolist(),
            "samples": samples, "steps": steps}


if __name__ == "__main__":
    main()
