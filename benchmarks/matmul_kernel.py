"""Check kernels/matmul.cl against numpy, then time it against numpy's A @ B.

Standalone (pyopencl and numpy only, no clgraph import); runs on the first OpenCL
device, or the one named by CLGRAPH_BENCH_DEVICE ("platform_index:device_index").

    python benchmarks/matmul_kernel.py            # checks, then timings
    python benchmarks/matmul_kernel.py --sweep    # also time tile configurations of matmul_rb
    python benchmarks/matmul_kernel.py --quick    # checks and matmul_rb timings only

Times are medians of OpenCL profiling events after a warm-up launch (PoCL compiles
again on the first launch with a new work-group size).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyopencl as cl

KERNEL_PATH = Path(__file__).resolve().parents[1] / "kernels" / "matmul.cl"
BUILD_OPTIONS = ["-cl-std=CL1.2", "-cl-mad-enable"]
TYPES = {  # numpy dtype -> (T, ACC)
    np.float32: ("float", "float"),
    np.float64: ("double", "double"),
    np.float16: ("half", "float"),
    np.int64: ("long", "long"),
    np.int32: ("int", "int"),
}


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pick_device() -> cl.Device:
    spec = os.environ.get("CLGRAPH_BENCH_DEVICE")
    if spec:
        p, d = (int(x) for x in spec.split(":"))
        return cl.get_platforms()[p].get_devices()[d]
    return cl.get_platforms()[0].get_devices()[0]


class Matmul:
    """One built program (one dtype and tile configuration) and its launch geometry."""

    def __init__(self, ctx: cl.Context, dtype, **macros):
        self.ctx = ctx
        self.dtype = np.dtype(dtype)
        t, acc = TYPES[self.dtype.type]
        self.macros = {"T": t, "ACC": acc, **macros}
        if t == "half":
            self.macros["IS_HALF"] = 1
        opts = BUILD_OPTIONS + [f"-D{k}={v}" for k, v in self.macros.items()]
        self.program = cl.Program(ctx, KERNEL_PATH.read_text()).build(options=opts)
        self.kernels = {}

    def macro(self, name: str, default: int) -> int:
        return int(self.macros.get(name, default))

    def geometry(self, name: str, M: int, N: int, batch: int):
        if name == "matmul_rb":
            vw = self.macro("VW", 4 if self.macros["ACC"] in ("double", "long", "ulong") else 8)
            tm, tn, lm = self.macro("TM", 6), vw * self.macro("NV", 2), self.macro("LM", 16)
            return (ceil_div(N, tn), ceil_div(ceil_div(M, tm), lm) * lm, batch), (1, lm, 1)
        if name == "matmul_tiled":
            ts = self.macro("TS", 16)
            return (ceil_div(N, ts) * ts, ceil_div(M, ts) * ts, batch), (ts, ts, 1)
        return (N, M, batch), None

    def __call__(self, queue, name, a, b, c, M, N, K, batch):
        """Enqueue one kernel; a and b = (buffer, off, bs, rs, cs), c = (buffer, off)."""
        if name not in self.kernels:
            self.kernels[name] = getattr(self.program, name)
        gsize, lsize = self.geometry(name, M, N, batch)
        args = [a[0], *map(np.int64, a[1:]), b[0], *map(np.int64, b[1:]), c[0], np.int64(c[1])]
        return self.kernels[name](queue, gsize, lsize, *args, *map(np.int32, (M, N, K)))


def random(rng, shape, dtype):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-20, 20, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def check_case(
    queue,
    mm: Matmul,
    name: str,
    M,
    N,
    K,
    batch=1,
    trans_a=False,
    trans_b=False,
    bcast_a=False,
    bcast_b=False,
    offset=3,
    rng=None,
) -> str | None:
    """Run one case with nonzero offsets; return an error message or None."""
    rng = rng or np.random.default_rng(0)
    dt = mm.dtype
    a = random(rng, (1 if bcast_a else batch, M, K), dt)
    b = random(rng, (1 if bcast_b else batch, K, N), dt)
    a_store = np.ascontiguousarray(a.transpose(0, 2, 1)) if trans_a else a
    b_store = np.ascontiguousarray(b.transpose(0, 2, 1)) if trans_b else b
    a_rs, a_cs = (1, M) if trans_a else (K, 1)
    b_rs, b_cs = (1, K) if trans_b else (N, 1)
    a_bs = 0 if bcast_a else M * K
    b_bs = 0 if bcast_b else K * N
    pad = np.zeros(offset, dt)
    mf = cl.mem_flags
    bufs = [
        cl.Buffer(mm.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=np.concatenate([pad, x.ravel()]))
        for x in (a_store, b_store)
    ]
    c_host = np.full(offset + batch * M * N + offset, 7, dt)  # guard elements on both sides
    C = cl.Buffer(mm.ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=c_host)
    a_arg, b_arg = (bufs[0], offset, a_bs, a_rs, a_cs), (bufs[1], offset, b_bs, b_rs, b_cs)
    mm(queue, name, a_arg, b_arg, (C, offset), M, N, K, batch)
    cl.enqueue_copy(queue, c_host, C)
    queue.finish()
    if np.any(c_host[:offset] != 7) or np.any(c_host[offset + batch * M * N :] != 7):
        return "wrote outside C"
    got = c_host[offset : offset + batch * M * N].reshape(batch, M, N).astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = np.matmul(a64, b64)
    if np.issubdtype(dt, np.integer):
        bad = got != want
    else:
        # error bound of a K-term dot product, plus the rounding of the stored result
        eps_acc = np.finfo(np.float64 if dt == np.float64 else np.float32).eps
        eps_out = np.finfo(dt).eps
        bound = 2 * K * eps_acc * np.matmul(np.abs(a64), np.abs(b64)) + eps_out * np.abs(want)
        bad = np.abs(got - want) > bound + 1e-30
    if bad.any():
        idx = tuple(int(x[0]) for x in np.nonzero(bad))
        return f"{int(bad.sum())} bad elements, first at {idx}: got {got[idx]}, want {want[idx]}"
    return None


CASES = [  # (M, N, K, batch, trans_a, bcast_a, bcast_b)
    (1, 1, 1, 1, False, False, False),
    (1, 17, 5, 1, False, False, False),
    (1, 40, 300, 2, True, False, True),
    (4, 40, 300, 2, True, True, False),
    (7, 1, 3, 1, True, False, False),
    (5, 9, 0, 1, False, False, False),
    (13, 17, 19, 1, False, False, False),
    (64, 48, 31, 1, False, False, False),
    (6, 16, 300, 1, False, False, False),
    (100, 33, 257, 1, True, False, False),
    (1000, 17, 33, 1, True, False, False),
    (33, 100, 513, 1, False, False, False),
    (256, 10, 256, 1, False, False, False),
    (256, 256, 64, 1, True, False, False),
    (9, 20, 11, 3, False, False, False),
    (9, 20, 11, 3, True, True, False),
    (9, 20, 11, 3, False, False, True),
    (97, 130, 70, 2, True, False, True),
]


def check_half_specials(queue, mm: Matmul, name: str) -> str | None:
    """Half bits -> float conversion: subnormals, -0, inf and nan through A and through B."""
    special = np.array(
        [
            0.0,
            -0.0,
            1.0,
            -2.5,
            65504.0,
            -65504.0,
            6.104e-5,
            6e-8,
            -3e-5,
            1e-7,
            np.inf,
            -np.inf,
            np.nan,
            0.1,
            1e4,
            -7.0,
            2.0**-20,
            3.0,
        ],
        np.float16,
    )
    mf = cl.mem_flags
    for a, b in [
        (special[:, None], np.ones((1, 20), np.float16)),
        (np.ones((7, 1), np.float16), special[None, :]),
    ]:
        M, N = a.shape[0], b.shape[1]
        bufs = [cl.Buffer(mm.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x) for x in (a, b)]
        c = np.empty((M, N), np.float16)
        C = cl.Buffer(mm.ctx, mf.WRITE_ONLY, c.nbytes)
        mm(queue, name, (bufs[0], 0, 0, 1, 1), (bufs[1], 0, 0, N, 1), (C, 0), M, N, 1, 1)
        cl.enqueue_copy(queue, c, C)
        want = a * b
        same = (c == want) | (np.isnan(c) & np.isnan(want))  # the sum turns -0 into +0
        if not same.all():
            idx = tuple(int(x[0]) for x in np.nonzero(~same))
            return f"half value {want[idx]!r} came back as {c[idx]!r}"
    return None


def run_checks(queue, ctx) -> int:
    failures = 0
    all_kernels = ["matmul_rb", "matmul_tiled", "matmul_naive"]
    plans = [  # (dtype, extra macros, kernels, cases)
        (np.float32, {}, all_kernels, CASES),
        (np.float64, {}, all_kernels, CASES[::2]),
        (np.float16, {}, all_kernels, CASES),
        (np.int64, {}, all_kernels, CASES[::2]),
        (np.int32, {}, all_kernels, CASES[1::2]),
        (np.int32, {"ACC": "long"}, all_kernels, CASES[::3]),
        (np.int32, {"ACC": "long", "NO_CLANG_EXT": 1}, ["matmul_rb"], CASES[::3]),
        # built-in vloadN/convert_* instead of clang vector extensions (what a GPU compiles)
        (np.float32, {"NO_CLANG_EXT": 1}, ["matmul_rb"], CASES[1::2]),
        (np.float16, {"NO_CLANG_EXT": 1}, ["matmul_rb"], CASES[1::2]),
        # odd tiles: the tail logic must not depend on the defaults
        (np.float32, {"TM": 4, "NV": 3, "LM": 4, "KC": 64}, ["matmul_rb"], CASES),
        (
            np.float32,
            {"TM": 1, "VW": 4, "NV": 1, "LM": 1, "TS": 8},
            ["matmul_rb", "matmul_tiled"],
            CASES[::3],
        ),
    ]
    for dtype, macros, names, cases in plans:
        t = TYPES[dtype][0]
        mm = Matmul(ctx, dtype, **macros)
        label = t + "".join(f" {k}={v}" for k, v in macros.items())
        for name in names:
            bad = 0
            for M, N, K, batch, ta, ba, bb in cases:
                for tb in (False, True):  # B as stored rows, and transposed (x @ W.T)
                    err = check_case(queue, mm, name, M, N, K, batch, ta, tb, ba, bb)
                    if err:
                        bad += 1
                        print(
                            f"  FAIL {label} {name} M={M} N={N} K={K} batch={batch} "
                            f"trans_a={ta} trans_b={tb} bcast_a={ba} bcast_b={bb}: {err}"
                        )
            n = 2 * len(cases)
            print(f"check {name:13s} {label:36s} {n - bad}/{n} cases ok")
            failures += bad
            if dtype == np.float16:
                err = check_half_specials(queue, mm, name)
                print(
                    f"check {name:13s} {label:36s} half special values {'ok' if not err else err}"
                )
                failures += bool(err)
    return failures


def time_kernel(queue, mm: Matmul, name, M, N, K, trans_a=False, reps=10,
                trans_b=False) -> float:
    """Median seconds of one launch (profiling events), after a warm-up launch."""
    rng = np.random.default_rng(1)
    a = random(rng, (M, K), mm.dtype)
    b = random(rng, (K, N), mm.dtype)
    mf = cl.mem_flags
    A = cl.Buffer(
        mm.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=np.ascontiguousarray(a.T) if trans_a else a
    )
    B = cl.Buffer(
        mm.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=np.ascontiguousarray(b.T) if trans_b else b
    )
    C = cl.Buffer(mm.ctx, mf.WRITE_ONLY, M * N * mm.dtype.itemsize)
    a_rs, a_cs = (1, M) if trans_a else (K, 1)
    b_rs, b_cs = (1, K) if trans_b else (N, 1)
    times = []
    for i in range(reps + 1):
        ev = mm(queue, name, (A, 0, 0, a_rs, a_cs), (B, 0, 0, b_rs, b_cs), (C, 0), M, N, K, 1)
        ev.wait()
        if i:
            times.append((ev.profile.end - ev.profile.start) * 1e-9)
    return float(np.median(times))


def time_numpy(M, N, K, dtype=np.float32, trans_a=False, reps=10) -> float:
    rng = np.random.default_rng(1)
    a = random(rng, (K, M), dtype).T if trans_a else random(rng, (M, K), dtype)
    b = random(rng, (K, N), dtype)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def row(label, M, N, K, t, t_ref):
    gf = 2 * M * N * K / t / 1e9
    print(f"{label:34s} {M:5d} {N:5d} {K:5d} {t * 1e3:10.3f} {gf:9.1f} {t_ref / t:14.2f}")


def run_timings(queue, ctx, quick: bool, sweep: bool):
    print(
        f"\n{'kernel':34s} {'M':>5s} {'N':>5s} {'K':>5s} {'ms':>10s} {'GFLOP/s':>9s} "
        f"{'speed vs numpy':>14s}"
    )
    f32 = Matmul(ctx, np.float32)
    n = 1024
    t_np = time_numpy(n, n, n)
    row("numpy A@B", n, n, n, t_np, t_np)
    row("matmul_rb", n, n, n, time_kernel(queue, f32, "matmul_rb", n, n, n), t_np)
    t_np_t = time_numpy(n, n, n, trans_a=True)
    row("numpy A.T@B", n, n, n, t_np_t, t_np_t)
    row(
        "matmul_rb (A transposed)",
        n,
        n,
        n,
        time_kernel(queue, f32, "matmul_rb", n, n, n, trans_a=True),
        t_np_t,
    )
    row(
        "matmul_rb (B transposed)",
        n,
        n,
        n,
        time_kernel(queue, f32, "matmul_rb", n, n, n, trans_b=True),
        t_np,
    )
    if not quick:
        row("matmul_tiled", n, n, n, time_kernel(queue, f32, "matmul_tiled", n, n, n, reps=2), t_np)
        row("matmul_naive", n, n, n, time_kernel(queue, f32, "matmul_naive", n, n, n, reps=1), t_np)
    for M, N, K in [(256, 256, 64), (256, 10, 256), (64, 256, 256), (1, 1024, 1024)]:
        t_ref = time_numpy(M, N, K, reps=50)
        row("numpy A@B", M, N, K, t_ref, t_ref)
        row("matmul_rb", M, N, K, time_kernel(queue, f32, "matmul_rb", M, N, K, reps=50), t_ref)
        t_bt = time_kernel(queue, f32, "matmul_rb", M, N, K, reps=50, trans_b=True)
        row("matmul_rb (B transposed)", M, N, K, t_bt, t_ref)
    if not quick:
        f64 = Matmul(ctx, np.float64)
        t_ref = time_numpy(n, n, n, np.float64)
        row("numpy A@B float64", n, n, n, t_ref, t_ref)
        row("matmul_rb float64", n, n, n, time_kernel(queue, f64, "matmul_rb", n, n, n), t_ref)
        f16 = Matmul(ctx, np.float16)
        row(
            "matmul_rb half (vs f32 numpy)",
            n,
            n,
            n,
            time_kernel(queue, f16, "matmul_rb", n, n, n),
            t_np,
        )
    if sweep:
        print("\nmatmul_rb float32 tile sweep, 1024^3 and 256x256x64")
        tiles = [(6, 2), (4, 3), (4, 2), (8, 1), (5, 2)]
        configs = [{"TM": tm, "NV": nv, "LM": lm} for tm, nv in tiles for lm in (8, 16)]
        configs += [{"LM": lm, "KC": kc} for lm, kc in [(16, 128), (16, 512), (32, 256), (4, 256)]]
        for cfg in configs:
            mm = Matmul(ctx, np.float32, **cfg)
            label = " ".join(f"{k}={v}" for k, v in cfg.items())
            row(label, n, n, n, time_kernel(queue, mm, "matmul_rb", n, n, n, reps=5), t_np)
            row(
                label,
                256,
                256,
                64,
                time_kernel(queue, mm, "matmul_rb", 256, 256, 64, reps=30),
                time_numpy(256, 256, 64, reps=30),
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="time matmul_rb tile configurations")
    parser.add_argument("--quick", action="store_true", help="skip slow kernels and dtypes")
    args = parser.parse_args()
    device = pick_device()
    ctx = cl.Context([device])
    queue = cl.CommandQueue(ctx, properties=cl.command_queue_properties.PROFILING_ENABLE)
    print(f"device: {device.name} ({device.platform.name}), {device.max_compute_units} CUs")
    t0 = time.perf_counter()
    failures = run_checks(queue, ctx)
    print(f"checks: {failures} failures ({time.perf_counter() - t0:.1f} s)")
    run_timings(queue, ctx, args.quick, args.sweep)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
