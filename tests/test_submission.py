"""Launches held back on CPU devices (runtime.Gate): short kernels reach the device together,
and whatever waits for the device, through clgraph or around it, still gets their results."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import clgraph as cg
from clgraph import runtime


@pytest.fixture(autouse=True)
def _slow_watchdog(monkeypatch):
    """The watchdog lets held launches go after 0.2 s here (1 ms by default), and kernels
    under 50 ms count as short (10 us by default), measured afresh in each test: a test sees
    tiny launches held however slowly a loaded machine runs them."""
    monkeypatch.setattr(runtime, "GATE_SECONDS", 0.2)
    monkeypatch.setattr(runtime, "SHORT_SECONDS", 0.05)
    g = cg.ones(1)._storage.dev.gate
    if g is not None:
        cg.accelerator.synchronize()
        g.kinds.clear()


def _gate():
    g = cg.ones(1)._storage.dev.gate
    if g is None:
        pytest.skip("launches are not held back on this device")
    return g


def _short_ops(x, n):
    """``n`` tiny in-place adds: after a few runs their kernel is known to be short."""
    for _ in range(n):
        x.add_(1.0)


def _held(size: int, k: int):
    """(gate, x): zeros(size) plus 20 adds that ran, then ``k`` adds held back."""
    g = _gate()
    x = cg.zeros(size)
    _short_ops(x, 20)
    cg.accelerator.synchronize()
    _short_ops(x, k)
    assert g.event is not None and g.held >= 1  # held back, not on the device yet
    return g, x


def test_short_launches_are_held_and_reads_see_them():
    g, x = _held(4, 5)
    np.testing.assert_array_equal(x.numpy(), np.full(4, 25.0, np.float32))
    assert g.event is None  # the read let them go first


def test_long_kernels_are_not_held(monkeypatch):
    monkeypatch.setattr(runtime, "SHORT_SECONDS", 10e-6)  # a 512^3 product takes ~1 ms
    g = _gate()
    a = cg.randn(512, 512)
    for _ in range(6):
        b = a @ a
    cg.accelerator.synchronize()
    b = a @ a
    assert g.event is None
    np.testing.assert_allclose(b.numpy(), a.numpy() @ a.numpy(), rtol=1e-4, atol=1e-3)


def test_a_wait_around_clgraph_ends():
    """Waiting on the raw queue skips the gate's release: the watchdog lets the held launches
    go (within 0.2 to 0.4 s here)."""
    _, x = _held(4, 3)
    start = time.perf_counter()
    x._storage.dev.queue.finish()
    assert time.perf_counter() - start < 5.0
    assert x.numpy()[0] == 23.0


def test_another_thread_reads_what_this_one_holds():
    _, x = _held(8, 4)
    seen = []
    t = threading.Thread(target=lambda: seen.append(x.numpy().copy()))
    t.start()
    t.join(10)
    assert not t.is_alive()
    np.testing.assert_array_equal(seen[0], np.full(8, 24.0, np.float32))


def test_profile_times_held_launches():
    _gate()
    x = cg.zeros(4)
    _short_ops(x, 20)
    cg.accelerator.synchronize()
    with cg.profile() as p:
        _short_ops(x, 3)
    assert p.launches == 3 and p.device_time > 0


def test_compiled_replays_are_held_and_complete():
    _gate()
    w = cg.zeros(4)
    step = cg.compile(lambda: w.add_(1.0).mul_(1.0))
    for _ in range(30):
        step()
    assert w.numpy()[0] == 30.0


def _printed(code: str, **env) -> str:
    """What ``code`` prints in a fresh process (with ``env`` added), which must succeed."""
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_defer_zero_turns_it_off():
    code = ("import clgraph as cg; x = cg.ones(2); x + 1; "
            "print(x._storage.dev.gate is None)")
    assert _printed(code, CLGRAPH_DEFER="0") == "True"


def test_exit_with_launches_held():
    """A process that ends with launches held back exits (nothing waits for them forever),
    and what it saved before is complete."""
    code = ("import clgraph as cg\n"
            "x = cg.zeros(4)\n"
            "for _ in range(40): x.add_(1.0)\n"
            "cg.accelerator.synchronize()\n"
            "for _ in range(5): x.add_(1.0)\n"
            "print(float(x.sum()))\n"
            "for _ in range(5): x.add_(1.0)\n")
    assert _printed(code) == "180.0"


def test_threads_launching_together():
    """Threads launching short kernels on one device at once: every gate one of them closes
    is released (a lost one would stall the queue for good), and every result is right."""
    code = ("import threading, clgraph as cg\n"
            "xs = [cg.zeros(4) for _ in range(4)]\n"
            "def work(x):\n"
            "    for _ in range(300): x.add_(1.0)\n"
            "ts = [threading.Thread(target=work, args=(x,)) for x in xs]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n"
            "print(sorted(float(x.sum()) for x in xs))\n")
    assert _printed(code) == str([1200.0] * 4)


def test_uploads_return_at_once_with_the_values_given():
    """A write from the host enqueues its copy and returns (behind held launches too); the
    array may change right after, each tensor keeps what it was given; bigger writes than
    runtime.ASYNC_WRITE_BYTES block as before."""
    buf = np.zeros(1000, np.float32)
    x = cg.zeros(4)
    _short_ops(x, 20)
    made = []
    for i in range(50):
        buf[:] = i
        made.append(cg.tensor(buf))
        x.add_(1.0)  # held launches between the uploads
        made.append(cg.tensor(buf[::2]))  # a strided view: copied to a contiguous array
        made.append(cg.tensor(buf.astype(np.float64), dtype=cg.float32))
    buf[:] = -1
    for i in range(50):
        for t, n in zip(made[3 * i:3 * i + 3], (1000, 500, 1000)):
            np.testing.assert_array_equal(t.numpy(), np.full(n, i, np.float32))
    assert x.numpy()[0] == 70.0
    cg.accelerator.synchronize()
    assert runtime._uploads == []  # landed copies (and their host data) are let go
    big = np.ones(runtime.ASYNC_WRITE_BYTES // 4 + 1, np.float32)
    t = cg.tensor(big)
    big[:] = 0
    assert float(t[-1]) == 1.0
