"""Host time per tiny eager op (16 float32 elements): the Python and driver work of one
dispatch, no waiting for the device.

    python benchmarks/bench_dispatch.py [--calls N] [--rounds R]

Each case runs R rounds of N calls, the cases interleaved, with the queue drained between
rounds. Prints per call the least and the median wall time over the rounds, and the least
CPU time of the calling thread: on a shared 2-core machine the wall time varies by 20% or
more with other load and with PoCL's threads running the held-back kernels, while the
thread's CPU time measures the dispatch path itself.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import settle

import clgraph as cg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    x, y = cg.ones(16), cg.ones(16)
    cases = {
        "x + 1.0": lambda: x + 1.0,
        "x + y": lambda: x + y,
        "cg.add(x, y)": lambda: cg.add(x, y),
        "x * y": lambda: x * y,
        "x.exp()": lambda: x.exp(),
        "cg.relu(x)": lambda: cg.relu(x),
        "y.add_(1.0)": lambda: y.add_(1.0),
    }
    for fn in cases.values():
        for _ in range(300):
            fn()
    cg.accelerator.synchronize()
    settle()
    wall = {name: [] for name in cases}
    cpu = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            c, t = time.thread_time(), time.perf_counter()
            for _ in range(args.calls):
                fn()
            wall[name].append((time.perf_counter() - t) / args.calls)
            cpu[name].append((time.thread_time() - c) / args.calls)
            cg.accelerator.synchronize()
    print(f"{'tiny eager op (host)':<22}{'wall min':>10}{'wall median':>13}{'thread CPU':>12}")
    for name in cases:
        least, median = min(wall[name]) * 1e6, statistics.median(wall[name]) * 1e6
        print(f"{name:<22}{least:>8.2f}us{median:>11.2f}us{min(cpu[name]) * 1e6:>10.2f}us")


if __name__ == "__main__":
    main()
