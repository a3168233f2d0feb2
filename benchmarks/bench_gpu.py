"""What multiplies matrices, on a GPU: clgraph (OpenCL) against PyTorch (CUDA when present,
else CPU), each library in its own process on the same machine, one table.

    python benchmarks/bench_gpu.py [--small] [--only matmul,mlp,cnn]

Workloads (the GEMM-bound ones of the GPU benchmark): square matmuls in float32 (1024,
4096) and float16 (4096); an MLP 784-2048-2048-10 Adam training step at batch 2048,
compiled; a CNN (two 3x3 convolutions, pooling, a linear layer) Adam step at batch 256 on
32x32 images, compiled (torch: eager). ``--small`` shrinks every size (a CPU run of the
script, e.g. PoCL with CLGRAPH_KERNELS=gpu). The ratio column is clgraph's speed over
PyTorch's measured in the same run.
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

        queue = cg.get_default_device().info.queue
        sync = queue.finish
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
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--only", default="matmul,mlp,cnn")
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
