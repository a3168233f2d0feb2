"""The timer the benchmark scripts share: median wall time of ``fn`` per call, each call
followed by ``sync`` (waiting for the device queue), after a few warm-up calls."""

from __future__ import annotations

import statistics
import time


def median_time(fn, sync, steps: int, warmup: int = 3) -> float:
    """Median seconds per call of fn(); sync() runs after each call."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
