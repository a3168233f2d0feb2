"""Core op speed against numpy and (when installed) PyTorch CPU, measured in one run.

    python benchmarks/bench_core.py [--repeat N]

Prints a table: median time per call and the ratio clgraph / baseline. Device times come
from waiting on the queue after a batch of calls, so they include launch overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import clgraph as cg

try:
    import torch

    torch.set_num_threads(2)
except ImportError:
    torch = None


def timeit(fn, repeat: int, sync=None, inner: int = 5) -> float:
    fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t) / inner)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    R = args.repeat
    dev = cg.device(None) if False else cg.ones(1).device
    sync = cg.accelerator.synchronize
    rows = []

    def row(name, cl_t, np_t=None, torch_t=None, note=""):
        rows.append((name, cl_t, np_t, torch_t, note))

    n = 1 << 22
    xh = np.random.rand(n).astype(np.float32)
    yh = np.random.rand(n).astype(np.float32)
    x, y = cg.from_numpy(xh), cg.from_numpy(yh)
    tx = torch.from_numpy(xh) if torch else None
    ty = torch.from_numpy(yh) if torch else None

    row("add 2^22 f32", timeit(lambda: x + y, R, sync), timeit(lambda: xh + yh, R),
        timeit(lambda: tx + ty, R) if torch else None, "floor ~1.3 ms (25 GB/s)")

    def chain(a, b, lib):
        return lib.tanh(lib.exp((a * b + 1.0) * 0.5) - a) * b + 2.0

    row("8-op chain 2^22 (eager)", timeit(lambda: chain(x, y, cg), R, sync),
        timeit(lambda: chain(xh, yh, np), R),
        timeit(lambda: chain(tx, ty, torch), R) if torch else None)

    # tiny-op host dispatch: the time to enqueue one small op, no waiting
    s1, s2 = cg.ones(4), cg.ones(4)
    N = 5000
    s1 + s2
    sync()
    t = time.perf_counter()
    for _ in range(N):
        s1 + s2
    disp = (time.perf_counter() - t) / N
    sync()
    ts = torch.ones(4) if torch else None
    tdisp = timeit(lambda: ts + ts, R, inner=N) if torch else None
    row("tiny op dispatch (host)", disp, None, tdisp, "target < 15 us")

    if hasattr(cg, "matmul"):
        m = 1024
        ah = np.random.rand(m, m).astype(np.float32)
        bh = np.random.rand(m, m).astype(np.float32)
        a, b = cg.from_numpy(ah), cg.from_numpy(bh)
        t_cl = timeit(lambda: a @ b, R, sync, inner=2)
        ta, tb = (torch.from_numpy(ah), torch.from_numpy(bh)) if torch else (None, None)
        row("matmul 1024^3 f32", t_cl, timeit(lambda: ah @ bh, R, inner=2),
            timeit(lambda: ta @ tb, R, inner=2) if torch else None,
            f"{2 * m**3 / t_cl / 1e9:.0f} GFLOP/s")

    mh = np.random.rand(4096, 1024).astype(np.float32)
    mat = cg.from_numpy(mh)
    tm = torch.from_numpy(mh) if torch else None
    if hasattr(cg, "sum"):
        row("sum last axis 4096x1024", timeit(lambda: mat.sum(dim=-1), R, sync),
            timeit(lambda: mh.sum(axis=-1), R),
            timeit(lambda: tm.sum(dim=-1), R) if torch else None)
        row("sum all 2^22", timeit(lambda: x.sum(), R, sync), timeit(lambda: xh.sum(), R),
            timeit(lambda: tx.sum(), R) if torch else None)
    if hasattr(cg, "softmax"):
        def np_softmax(v):
            e = np.exp(v - v.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)

        row("softmax last axis 4096x1024", timeit(lambda: mat.softmax(dim=-1), R, sync),
            timeit(lambda: np_softmax(mh), R),
            timeit(lambda: tm.softmax(dim=-1), R) if torch else None)

    # LayerNorm(256) forward+backward on (16*128, 256): the fused rows (clgraph/ops/norm.py)
    lh = np.random.rand(16 * 128, 256).astype(np.float32)
    lg = np.random.rand(16 * 128, 256).astype(np.float32)
    lx, lgrad = cg.from_numpy(lh).requires_grad_(), cg.from_numpy(lg)
    ln = cg.nn.LayerNorm(256)

    def ln_step():
        lx.grad = ln.weight.grad = ln.bias.grad = None
        ln(lx).backward(lgrad)

    t_ln = None
    if torch:
        tlx, tlg, tln = torch.from_numpy(lh).requires_grad_(), torch.from_numpy(lg), \
            torch.nn.LayerNorm(256)

        def t_ln_step():
            tlx.grad = tln.weight.grad = tln.bias.grad = None
            tln(tlx).backward(tlg)

        t_ln = timeit(t_ln_step, R)
    row("LayerNorm(256) fwd+bwd 2048r", timeit(ln_step, R, sync), None, t_ln)

    # cross_entropy forward+backward on (2048, 1000) logits: the fused row (ops/loss.py)
    ch = np.random.rand(2048, 1000).astype(np.float32)
    th = np.random.randint(0, 1000, 2048)
    cx, ct = cg.from_numpy(ch).requires_grad_(), cg.from_numpy(th)

    def ce_step():
        cx.grad = None
        cg.nn.functional.cross_entropy(cx, ct).backward()

    t_ce = None
    if torch:
        tcx, tct = torch.from_numpy(ch).requires_grad_(), torch.from_numpy(th)

        def t_ce_step():
            tcx.grad = None
            torch.nn.functional.cross_entropy(tcx, tct).backward()

        t_ce = timeit(t_ce_step, R)
    row("cross_entropy fwd+bwd 2048x1000", timeit(ce_step, R, sync), None, t_ce)

    print(f"device: {dev} {dev.info.name}; torch: {torch.__version__ if torch else 'absent'}")
    hdr = (f"{'work':<31} {'clgraph':>10} {'numpy':>10} {'ratio':>6} {'torch':>10} "
           f"{'ratio':>6}  note")
    print(hdr)
    print("-" * len(hdr))

    def ms(v):
        return f"{v * 1e3:8.3f}ms" if v is not None else f"{'-':>10}"

    for name, c, npt, tt, note in rows:
        r1 = f"{c / npt:6.2f}" if npt else f"{'-':>6}"
        r2 = f"{c / tt:6.2f}" if tt else f"{'-':>6}"
        if "dispatch" in name:
            cs = f"{c * 1e6:8.2f}us"
            ts_ = f"{tt * 1e6:8.2f}us" if tt else f"{'-':>10}"
            print(f"{name:<31} {cs:>10} {'-':>10} {'-':>6} {ts_:>10} {r2}  {note}")
        else:
            print(f"{name:<31} {ms(c)} {ms(npt)} {r1} {ms(tt)} {r2}  {note}")


if __name__ == "__main__":
    main()
