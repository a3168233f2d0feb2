"""Attention against PyTorch (CPU, or CUDA when present) in the same run:
scaled_dot_product_attention forward+backward (batch 8, 8 heads, sequence 512, head dim
64, causal) and a TransformerEncoderLayer training step (d_model 256, 8 heads, batch 16,
sequence 128), eager and compiled; then clgraph's peak device memory of SDPA forward+backward
(batch 1, 8 heads, head dim 64, causal) as the sequence grows to 4096: linear, as no L x S
matrix is kept.

    python benchmarks/bench_attention.py [--seq 512] [--dtype float16]

--dtype float16 or bfloat16 runs the SDPA case in that dtype (tensor cores where the device
has them, on both sides).
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_time

import clgraph as cg

try:
    import torch

    torch.set_num_threads(2)
    TORCH_DEV = "cuda" if torch.cuda.is_available() else "cpu"
except ImportError:
    torch, TORCH_DEV = None, "cpu"


def torch_sync():
    if TORCH_DEV == "cuda":
        torch.cuda.synchronize()


def timeit(fn, sync):
    return median_time(fn, sync, 15, warmup=3)


def _device(lib):
    return TORCH_DEV if lib is torch else None


def sdpa_case(lib, seq, sync, dtype="float32"):
    rng = np.random.default_rng(0)
    q, k, v = (lib.tensor(rng.standard_normal((8, 8, seq, 64)), dtype=getattr(lib, dtype),
                          device=_device(lib), requires_grad=True) for _ in range(3))

    def step():
        y = lib.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        y.sum().backward()

    return timeit(step, sync)


def layer_case(lib, sync, compiled):
    lib.manual_seed(0)
    layer = lib.nn.TransformerEncoderLayer(256, 8, 1024, dropout=0.0, batch_first=True)
    layer = layer.to(_device(lib)) if lib is torch else layer
    opt = lib.optim.Adam(layer.parameters(), lr=1e-4)
    x = lib.tensor(np.random.default_rng(1).standard_normal((16, 128, 256)).astype(np.float32),
                   device=_device(lib))

    def step(x):
        opt.zero_grad()
        loss = layer(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    f = cg.compile(step) if compiled else step
    return timeit(lambda: f(x), sync)


def memory_rows():
    """(sequence, peak MiB, MiB the L x S scores alone would take, ms) for clgraph."""
    rng = np.random.default_rng(2)
    sync = cg.accelerator.synchronize
    out = []
    for seq in (512, 1024, 2048, 4096):
        q, k, v = (cg.tensor(rng.standard_normal((1, 8, seq, 64)).astype(np.float32),
                             requires_grad=True) for _ in range(3))

        def step(q=q, k=k, v=v):
            y = cg.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            y.sum().backward()

        step()
        sync()
        cg.cl.reset_peak_memory_stats()
        base = cg.cl.memory_allocated()
        t = median_time(step, sync, 3, warmup=0)
        peak = (cg.cl.max_memory_allocated() - base) / 2**20
        out.append((seq, peak, 8 * seq * seq * 4 / 2**20, t * 1e3))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    args = ap.parse_args()
    sync = cg.accelerator.synchronize
    rows = [(f"SDPA causal fwd+bwd 8x8x{args.seq}x64 {args.dtype}",
             sdpa_case(cg, args.seq, sync, args.dtype),
             sdpa_case(torch, args.seq, torch_sync, args.dtype) if torch else None),
            ("TransformerEncoderLayer step, eager", layer_case(cg, sync, False),
             layer_case(torch, torch_sync, False) if torch else None),
            ("TransformerEncoderLayer step, compiled", layer_case(cg, sync, True),
             layer_case(torch, torch_sync, False) if torch else None)]
    where = "CUDA" if TORCH_DEV == "cuda" else "CPU, 2 threads"
    print(f"device {cg.get_default_device().info.name}; torch "
          f"{torch.__version__ if torch else 'absent'} ({where})")
    print(f"{'case':<42}{'clgraph ms':>12}{'torch ms':>12}{'clgraph/torch':>15}")
    for name, c, t in rows:
        tt = f"{t * 1e3:>12.1f}{c / t:>15.2f}" if t else f"{'-':>12}{'-':>15}"
        print(f"{name:<42}{c * 1e3:>12.1f}{tt}")
    print("clgraph/torch: time ratio (below 1: clgraph is faster); compiled row against "
          "torch's eager step")
    print(f"\n{'SDPA fwd+bwd 1x8xLx64 causal':<30}{'peak MiB':>10}{'L x S MiB':>11}{'ms':>9}")
    for seq, peak, scores, ms in memory_rows():
        print(f"{'L = ' + str(seq):<30}{peak:>10.1f}{scores:>11.1f}{ms:>9.1f}")


if __name__ == "__main__":
    main()
