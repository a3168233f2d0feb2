"""The GPU benchmark's workloads: clgraph (OpenCL) against PyTorch (CUDA when present, else
CPU), each library in its own process on the same machine, one table.

    python benchmarks/bench_gpu.py [--small] [--only matmul,mlp,cnn,reduce,chain,dispatch]

What multiplies matrices: square matmuls in float32 (1024, 4096) and float16 (4096); an
MLP 784-2048-2048-10 Adam training step at batch 2048, compiled; a CNN (two 3x3
convolutions, pooling, a linear layer) Adam step at batch 256 on 32x32 images, compiled
(torch: eager). What is bound by memory: on 8192 x 8192 float32, sums over rows, of all
and over columns, softmax over rows and LayerNorm(8192), eager and compiled (torch:
eager); an 8-op elementwise chain on 2^26 floats, eager (8 kernels) and compiled; the
host time of one tiny eager op. ``--small`` shrinks every size (a CPU run of the script,
e.g. PoCL with CLGRAPH_KERNELS=gpu). The speed column is clgraph's speed over PyTorch's
measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
from _timing import median_time


def _worker(lib: str, small: bool, only: list[str]) -> list[dict]:
    if lib == "torch":
        import torch as cg

        dev = "cuda" if cg.cuda.is_available() else "cpu"
        cg.set_default_device(dev)

        def sync():
            if dev == "cuda":
                cg.cuda.synchronize()

        def compiled(f):
            return f  # PyTorch eager: its usual training step
    else:
        import clgraph as cg

        sync = cg.accelerator.synchronize
        compiled = cg.compile
    nn, F = cg.nn, cg.nn.functional
    rows = []
    rng = np.random.default_rng(0)
    if "matmul" in only:
        for m, dtype in (((256, "float32"), (512, "float32"), (512, "float16")) if small else
                         ((1024, "float32"), (4096, "float32"), (4096, "float16"))):
            a = cg.tensor(rng.standard_normal((m, m), dtype=np.float32)).to(getattr(cg, dtype))
            b = cg.tensor(rng.standard_normal((m, m), dtype=np.float32)).to(getattr(cg, dtype))
            t = median_time(lambda a=a, b=b: a @ b, sync, 10)
            rows.append({"case": f"matmul {m} {dtype}", "s": t,
                         "rate": f"{2 * m ** 3 / t / 1e12:.2f} TFLOP/s"})

    def train(name, model, x, y):
        opt = cg.optim.Adam(model.parameters(), lr=1e-3)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        f = compiled(step)
        t = median_time(lambda: f(x, y), sync, 10)
        rows.append({"case": name, "s": t, "rate": f"{1 / t:.1f} steps/s"})

    if "mlp" in only:
        h, bsz = (256, 256) if small else (2048, 2048)
        cg.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                              nn.Linear(h, 10))
        x = cg.tensor(rng.standard_normal((bsz, 784), dtype=np.float32))
        y = cg.tensor(rng.integers(0, 10, bsz))
        train(f"MLP 784-{h}-{h}-10 b{bsz} Adam step", model, x, y)
    if "cnn" in only:
        bsz = 16 if small else 256
        cg.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(64 * 8 * 8, 10))
        x = cg.tensor(rng.standard_normal((bsz, 3, 32, 32), dtype=np.float32))
        y = cg.tensor(rng.integers(0, 10, bsz))
        train(f"CNN b{bsz} 32x32 Adam step", model, x, y)
    if "reduce" in only:
        rows += _bandwidth(cg, nn, compiled, sync, rng, small)
    if "chain" in only:
        n = 1 << (20 if small else 26)
        x = cg.tensor(rng.standard_normal(n, dtype=np.float32))

        def chain(v):
            return ((v * 1.5 + 0.5).sin().exp().abs().sqrt() - 1.0) * 2.0

        for how, f in (("eager", chain), ("compiled", compiled(chain))):
            t = median_time(lambda f=f: f(x), sync, 10)
            rows.append({"case": f"8-op chain 2^{n.bit_length() - 1} {how}", "s": t,
                         "rate": f"{8 * n / t / 1e9:.0f} GB/s"})
    if "dispatch" in only:
        x = cg.ones(4)
        reps = 2000

        def tiny():
            for _ in range(reps):
                x + 1.0

        t = median_time(tiny, sync, 5) / reps
        rows.append({"case": "tiny eager op (host)", "s": t, "rate": f"{t * 1e6:.1f} us/op"})
    return rows


def _bandwidth(cg, nn, compiled, sync, rng, small):
    """Reductions, softmax and LayerNorm over the rows of a square float32 matrix."""
    n = 1024 if small else 8192
    x = cg.tensor(rng.standard_normal((n, n), dtype=np.float32))
    size = n * n * 4
    rows = []
    for what, f, traffic in (("sum over rows", lambda: x.sum(-1), size),
                             ("sum of all", lambda: x.sum(), size),
                             ("sum over columns", lambda: x.sum(0), size)):
        t = median_time(f, sync, 10)
        rows.append({"case": f"{what} {n}^2", "s": t, "rate": f"{traffic / t / 1e9:.0f} GB/s"})
    ln = nn.LayerNorm(n)
    for what, fn in (("softmax rows", lambda v: cg.softmax(v, -1)), ("LayerNorm", ln)):
        for how, f in (("eager", fn), ("compiled", compiled(fn))):
            with cg.no_grad():
                t = median_time(lambda f=f: f(x), sync, 10)
            rows.append({"case": f"{what} {n}^2 {how}", "s": t,
                         "rate": f"{2 * size / t / 1e9:.0f} GB/s"})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--only", default="matmul,mlp,cnn,reduce,chain,dispatch")
    ap.add_argument("--worker", choices=("clgraph", "torch"))
    args = ap.parse_args()
    only = args.only.split(",")
    if args.worker:
        print(json.dumps(_worker(args.worker, args.small, only)))
        return
    results = {}
    for lib in ("clgraph", "torch"):
        cmd = [sys.executable, __file__, "--worker", lib, "--only", args.only]
        r = subprocess.run(cmd + (["--small"] if args.small else []), capture_output=True,
                           text=True)
        if r.returncode != 0:
            print(f"{lib}: failed\n{r.stderr[-2000:]}")
            results[lib] = {}
            continue
        results[lib] = {row["case"]: row for row in json.loads(r.stdout.splitlines()[-1])}
    print(f"{'case':<36}{'clgraph ms':>12}{'rate':>18}{'torch ms':>12}{'rate':>18}{'speed':>8}")
    for case, row in results["clgraph"].items():
        t = results.get("torch", {}).get(case)
        tail = f"{t['s'] * 1e3:>12.3f}{t['rate']:>18}{t['s'] / row['s']:>8.2f}" if t else ""
        print(f"{case:<36}{row['s'] * 1e3:>12.3f}{row['rate']:>18}{tail}")
    print("speed: clgraph's over PyTorch's (above 1: clgraph is faster)")


if __name__ == "__main__":
    main()
