"""A character-level, decoder-only transformer language model trained on Python's own
standard library (its .py files ship with every Python installation: no download).

    python examples/char_transformer.py                    # about 3 minutes of training
    python examples/char_transformer.py --minutes 10 --compile --plot loss.png
    python examples/char_transformer.py --amp              # float16 products, a GradScaler

Prints the held-out loss next to a unigram model's (what predicting characters by their
frequency alone gives), saves a checkpoint and samples a few lines of "Python" at the end.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import sysconfig
import time

import numpy as np

import clgraph as cg
import clgraph.nn as nn
import clgraph.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import plot


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cl:N, gpu, cpu or cuda (default: auto)")
    ap.add_argument("--minutes", type=float, default=3.0, help="training time")
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--data-chars", type=int, default=4_000_000,
                    help="characters of the standard library to read")
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="compile the training step")
    ap.add_argument("--amp", action="store_true",
                    help="mixed precision: float16 products (autocast) and a GradScaler")
    ap.add_argument("--plot", default=None, help="write the loss curve to this PNG")
    ap.add_argument("--checkpoint", default="char_transformer.pt")
    ap.add_argument("--sample", type=int, default=300, help="characters to generate")
    return ap.parse_args(argv)


def load_text(limit: int) -> str:
    """The standard library's top-level .py files, in name order, up to ``limit`` chars."""
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
    parts, total = [], 0
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        parts.append(text)
        total += len(text)
        if total >= limit:
            break
    text = "".join(parts)[:limit]
    return "".join(c if c.isascii() else "?" for c in text)


class CharTransformer(nn.Module):
    """Token and position embeddings, pre-norm causal transformer layers, a linear head."""

    def __init__(self, vocab: int, context: int, d: int, heads: int, layers: int):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(layer, layers)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(context))
        self.register_buffer("positions", cg.arange(context))

    def forward(self, idx):
        T = idx.shape[1]
        x = self.tok(idx) + self.pos(self.positions[:T])
        x = self.blocks(x, mask=self.mask[:T, :T], is_causal=True)
        return self.head(self.norm(x))


def batches(data: np.ndarray, n: int, context: int, rng):
    starts = rng.integers(0, len(data) - context - 1, n)
    x = np.stack([data[s:s + context] for s in starts])
    y = np.stack([data[s + 1:s + context + 1] for s in starts])
    return x, y


def main(argv=None) -> dict:
    args = parse_args(argv)
    cg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = cg.device(args.device) if args.device else cg.ones(1).device
    text = load_text(args.data_chars)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    split = int(len(data) * 0.95)
    train, held = data[:split], data[split:]
    counts = np.bincount(train, minlength=len(chars)) + 1
    p = counts / counts.sum()
    unigram = float(-(np.bincount(held, minlength=len(chars)) * np.log(p)).sum() / len(held))
    model = CharTransformer(len(chars), args.context, args.d_model, args.heads,
                            args.layers).to(device)
    n_params = sum(q.numel() for q in model.parameters())
    print(f"{len(text):,} characters of the standard library, {len(chars)} symbols; "
          f"{n_params:,} parameters on {device} ({device.info.name})")
    opt = cg.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)

    scaler = cg.amp.GradScaler(enabled=args.amp)

    def step(x, y):
        opt.zero_grad()
        with cg.autocast("cl", enabled=args.amp):
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        cg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        return loss

    # the scaler reads a flag from the device each step, which a compiled call cannot
    # replay: with --amp the step runs eagerly (autocast itself compiles)
    run = cg.compile(step) if args.compile and not args.amp else step
    losses, start, n = [], time.perf_counter(), 0
    pending = []
    while True:
        x, y = batches(train, args.batch_size, args.context, rng)
        pending.append(run(cg.tensor(x, device=device), cg.tensor(y, device=device)))
        n += 1
        elapsed = time.perf_counter() - start
        done = (args.steps is not None and n >= args.steps) or (
            args.steps is None and elapsed >= 60 * args.minutes)
        if n % 20 == 0 or done:  # one host read per 20 steps
            losses += [float(v) for v in pending]
            pending = []
            frac = min(1.0, n / args.steps) if args.steps else min(1.0, elapsed / 60 / args.minutes)
            bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
            sys.stdout.write(f"\r[{bar}] step {n}  loss {np.mean(losses[-20:]):.3f}  "
                             f"{elapsed:5.0f}s")
            sys.stdout.flush()
        if done:
            break
    print()
    model.eval()
    with cg.no_grad():
        vals = []
        for _ in range(8):
            x, y = batches(held, args.batch_size, args.context, rng)
            logits = model(cg.tensor(x, device=device))
            vals.append(float(F.cross_entropy(logits.reshape(-1, len(chars)),
                                              cg.tensor(y, device=device).reshape(-1))))
    held_loss = float(np.mean(vals))
    print(f"held-out loss {held_loss:.3f} nats/char (unigram model: {unigram:.3f}); "
          f"{n} steps in {time.perf_counter() - start:.0f}s")
    if args.checkpoint:
        cg.save({"model": model.state_dict(), "chars": chars}, args.checkpoint)
        print(f"checkpoint written to {args.checkpoint}")
    plot(losses, args.plot)
    sample = generate(model, "def ", args.sample, stoi, chars, args.context, device, rng)
    print("sample:\n" + sample)
    return {"losses": losses, "held_out": held_loss, "unigram": unigram, "steps": n}


@cg.no_grad()
def generate(model, prompt, n, stoi, chars, context, device, rng, temperature=0.8) -> str:
    idx = [stoi.get(c, 0) for c in prompt]
    for _ in range(n):
        x = cg.tensor([idx[-context:]], device=device)
        logits = model(x)[0, -1].numpy().astype(np.float64) / temperature
        p = np.exp(logits - logits.max())
        idx.append(int(rng.choice(len(chars), p=p / p.sum())))
    return "".join(chars[i] for i in idx)


if __name__ == "__main__":
    main()
