"""cg.compile against eager, hand-written OpenCL and PyTorch CPU, all in one run:

- W1: an 8-op elementwise chain on 2^22 floats, compiled vs eager vs a hand-written fused
  kernel with an explicit vector per work-item (the device's preferred width)
- softmax over the last axis of 4096x1024, compiled vs eager (and torch)
- MLP 64-256-256-10, batch 256, one Adam training step (forward, backward, update):
  compiled vs eager vs PyTorch CPU eager, with kernel launches per step
- start-up: a fresh process with warm caches (kernels, and Python's bytecode as on a
  user's machine), from its first line (and from interpreter start) to the end of its
  first compiled training step; and with every cache empty

    python benchmarks/bench_compile.py [--steps N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pyopencl as cl
from _timing import median_time
from bench_train import mlp

import clgraph as cg

try:
    import torch

    torch.set_num_threads(2)
except ImportError:
    torch = None


def w1(x):
    """Eight elementwise ops."""
    return (((x * 1.5 + 0.5).sin() * x).exp() - x).abs().sqrt()


HAND = """
__kernel void w1(__global const float* restrict x, __global float* restrict out,
                 const long n) {
  const long base = (long)get_global_id(0) * W;
  if (base + W <= n) {
    const floatW v = VLOAD(0, x + base);
    VSTORE(sqrt(fabs(exp(sin(v * 1.5f + 0.5f) * v) - v)), 0, out + base);
  } else {
    for (long i = base; i < n; ++i) {
      const float v = x[i];
      out[i] = sqrt(fabs(exp(sin(v * 1.5f + 0.5f) * v) - v));
    }
  }
}
"""


def hand_written(x):
    """The W1 chain as one hand-written kernel: a float vector of the device's preferred
    width per work-item (the peer baseline)."""
    info = x.device.info
    W = info.vector_width("float")
    src = HAND.replace("floatW", f"float{W}").replace("VLOAD", f"vload{W}").replace(
        "VSTORE", f"vstore{W}")
    prg = cl.Program(info.context, src).build(options=[f"-DW={W}", "-cl-mad-enable"])
    k = cl.Kernel(prg, "w1")
    n = x.numel()
    out = cg.empty(n)
    local = 64 if info.is_cpu else 256
    items = -(-n // W)
    g = -(-items // local) * local

    def run():
        k.set_args(x._storage.buf, out._storage.buf, np.int64(n))
        cl.enqueue_nd_range_kernel(info.queue, k, (g,), (local,))
        return out

    return run, W


def best_of_rounds(fns, steps, rounds=3):
    """Seconds per call of each (fn, sync): three rounds over all of them, the best median
    of each, so that none pays alone for warm-up or for a busy spell of this shared
    machine."""
    per = max(steps // rounds, 5)
    return [min(ts) for ts in zip(*[[median_time(f, s, per) for f, s in fns]
                                    for _ in range(rounds)])]


def launches(fn):
    with cg.profile() as p:
        fn()
    return p.launches


def bench_w1(steps, sync, rows):
    x = cg.randn(1 << 22)
    c = cg.compile(w1)
    hand, W = hand_written(x)
    np.testing.assert_allclose(c(x).numpy(), w1(x).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hand().numpy(), w1(x).numpy(), rtol=1e-5, atol=1e-5)
    # rounds of all three, the best median of each: whichever runs first on this shared
    # machine otherwise pays for its warm-up
    t_hand, t_c, t_e = best_of_rounds([(hand, sync), (lambda: c(x), sync),
                                       (lambda: w1(x), sync)], steps)
    rows.append((f"W1 chain 2^22, hand-written float{W}", t_hand, 1, 1.0))
    rows.append(("W1 chain 2^22, compiled", t_c, launches(lambda: c(x)), t_c / t_hand))
    rows.append(("W1 chain 2^22, eager", t_e, launches(lambda: w1(x)), t_e / t_hand))


def bench_softmax(steps, sync, rows):
    x = cg.randn(4096, 1024)
    def f(x):
        return x.softmax(-1)

    c = cg.compile(f)
    t_e = median_time(lambda: f(x), sync, steps)
    t_c = median_time(lambda: c(x), sync, steps)
    rows.append(("softmax 4096x1024, eager", t_e, launches(lambda: f(x)), 1.0))
    rows.append(("softmax 4096x1024, compiled", t_c, launches(lambda: c(x)), t_c / t_e))
    if torch is not None:
        xt = torch.from_numpy(x.numpy())
        t_t = median_time(lambda: xt.softmax(-1), lambda: None, steps)
        rows.append(("softmax 4096x1024, torch CPU", t_t, None, t_t / t_e))


def train_step(lib, model):
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = lib.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def bench_mlp(steps, sync, rows):
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((256, 64)).astype(np.float32)
    yn = rng.integers(0, 10, 256)
    x, y = cg.from_numpy(xn), cg.from_numpy(yn)
    eager = train_step(cg, mlp(cg))
    compiled = cg.compile(train_step(cg, mlp(cg)))
    fns = [(lambda: eager(x, y), sync), (lambda: compiled(x, y), sync)]
    if torch is not None:
        step = train_step(torch, mlp(torch))
        xt, yt = torch.from_numpy(xn), torch.from_numpy(yn)
        fns.append((lambda: step(xt, yt), lambda: None))
    t_e, t_c, *t_t = best_of_rounds(fns, steps)
    rows.append(("MLP Adam step, eager", t_e, launches(lambda: eager(x, y)), 1.0))
    rows.append(("MLP Adam step, compiled", t_c, launches(lambda: compiled(x, y)), t_c / t_e))
    if torch is not None:
        t_t = t_t[0]
        rows.append(("MLP Adam step, torch CPU eager", t_t, None, t_t / t_e))
        rows.append(("  compiled / torch", t_c / t_t, None, None))


STARTUP = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import numpy as np
    import clgraph as cg
    nn = cg.nn
    m = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                      nn.Linear(256, 10))
    opt = cg.optim.Adam(m.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    @cg.compile
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(m(x), y)
        loss.backward()
        opt.step()
        return loss

    x, y = cg.randn(256, 64), cg.tensor(np.arange(256) % 10)
    for _ in range(2):  # the first step creates Adam's moments; the second compiles
        step(x, y).item()
    print(time.perf_counter() - t0)
""")


def bench_startup(rows):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, CLGRAPH_CACHE_DIR=d)
        env.pop("POCL_CACHE_DIR", None)  # PoCL's cache goes under the fresh directory too
        # a user's second process also finds Python's bytecode cache (some machines turn it
        # off: every process would compile clgraph's sources again, about 0.13 s)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(d, "pycache")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", STARTUP], env=env, capture_output=True,
                               text=True, check=True)
            times.append((time.perf_counter() - t, float(r.stdout.split()[-1])))
    cold, warm = times[0], min(times[1:])
    rows.append(("process start to compiled step, cold cache (in-process)", cold[1], None,
                 None))
    rows.append(("process start to compiled step, warm cache (in-process)", warm[1], None,
                 None))
    rows.append(("process start to compiled step, warm cache (whole process)", warm[0], None,
                 None))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip-startup", action="store_true")
    args = ap.parse_args()
    dev = cg.randn(1).device.info
    print(f"device: {dev.name}")
    sync = cg.accelerator.synchronize
    rows = []
    bench_w1(args.steps, sync, rows)
    bench_softmax(args.steps, sync, rows)
    bench_mlp(args.steps * 3, sync, rows)
    if not args.skip_startup:
        bench_startup(rows)
    w = max(len(r[0]) for r in rows)
    print(f"{'case':<{w}}  {'ms':>9}  {'launches':>8}  {'ratio':>6}")
    for name, t, n, ratio in rows:
        r = "" if ratio is None else f"{ratio:6.2f}"
        nn_ = "" if n is None else str(n)
        if name.startswith("  "):
            print(f"{name:<{w}}  {'':>9}  {'':>8}  {t:6.2f}")
            continue
        print(f"{name:<{w}}  {t * 1e3:9.3f}  {nn_:>8}  {r:>6}")
    print("ratio: against the first row of its group (hand-written kernel, eager)")


if __name__ == "__main__":
    main()
