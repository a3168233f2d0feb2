"""The timer the benchmark scripts share: median wall time of ``fn`` per call, each call
followed by ``sync`` (waiting for the device queue), after a few warm-up calls."""

from __future__ import annotations

import statistics
import threading
import time


def settle() -> None:
    """Wait for clgraph's background loading of cached kernels (the warm-up thread a
    device starts) to finish, so it does not compete with what is timed."""
    for t in threading.enumerate():
        if t.name == "clgraph-warm-up":
            t.join()


def median_time(fn, sync, steps: int, warmup: int = 3) -> float:
    """Median seconds per call of fn(); sync() runs after each call."""
    for _ in range(warmup):
        fn()
    sync()
    settle()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
