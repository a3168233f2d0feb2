"""Device memory: OutOfMemoryError at the allocating call (clgraph's check against the
device's limits, and the driver's failure after the pool is emptied and the allocation
tried again), the per-device counters (memory_allocated, memory_reserved, empty_cache), and
OpenCL errors wrapped with the op and the device."""

from __future__ import annotations

import gc

import numpy as np
import pyopencl as cl
import pytest

import clgraph as cg
from clgraph import runtime
from clgraph.device import DeviceInfo


@pytest.fixture
def dev():
    """The default device's DeviceInfo, with an empty pool and no collection mid-test (a
    tensor freed by the collector would move the counters)."""
    gc.collect()
    cg.cl.empty_cache()
    gc.disable()
    try:
        yield cg.get_default_device().info
    finally:
        gc.enable()


def _cl_error(code, routine="clCreateBuffer"):
    record = cl._cl._ErrorRecord(routine, code, "")
    return (cl.MemoryError if code == cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE
            else cl.LogicError)(record)


def _counters():
    return cg.cl.memory_allocated(), cg.cl.memory_reserved()


def _assert_names_device(msg, dev):
    assert f"cl:{dev.index}" in msg and dev.name in msg, msg
    assert "empty_cache" in msg and "smaller batch" in msg, msg


@pytest.mark.parametrize("make", [lambda: cg.empty(1 << 38), lambda: cg.zeros(1 << 38),
                                  lambda: cg.ones((1 << 19, 1 << 19), dtype=cg.float32)],
                         ids=["empty", "zeros", "ones-2d"])
def test_request_above_the_device_raises_at_the_call(dev, make):
    before = _counters()
    with pytest.raises(cg.OutOfMemoryError) as info:
        make()
    assert isinstance(info.value, RuntimeError)
    msg = str(info.value)
    assert "out of memory" in msg and "1.00 TiB" in msg and f"{1 << 40} bytes" in msg, msg
    _assert_names_device(msg, dev)
    assert _counters() == before
    np.testing.assert_array_equal((cg.ones(3) + 1).numpy(), [2, 2, 2])


def test_broadcast_output_above_the_device(dev):
    a, b = cg.ones(1 << 20, 1), cg.ones(1 << 20)
    before = _counters()
    with pytest.raises(cg.OutOfMemoryError, match=r"4\.00 TiB \(4398046511104 bytes\)") as e:
        a + b
    # the message starts with the op that allocated and its operands' shapes
    assert str(e.value).startswith("add (operands of shapes [1048576, 1], [1048576]): ")
    assert _counters() == before
    np.testing.assert_array_equal((a[:2] + b[:3]).numpy(), np.full((2, 3), 2.0))


def test_exported_names():
    assert issubclass(cg.OutOfMemoryError, RuntimeError)
    assert cg.cl.OutOfMemoryError is cg.OutOfMemoryError is cg.cuda.OutOfMemoryError
    assert cg.cuda.empty_cache is runtime.empty_cache
    if cg.cuda.is_available():
        k = cg.device("cuda").index
        assert cg.cuda.memory_allocated() == cg.cl.memory_allocated(k)
        assert cg.cuda.memory_reserved(0) == cg.cl.memory_reserved(k)


def test_counters_follow_a_tensor(dev):
    base = cg.cl.memory_allocated()
    assert cg.cl.memory_reserved() == base  # the pool is empty
    t = cg.empty(1000, dtype=cg.float32)
    for spec in (None, dev.index, f"cl:{dev.index}", cg.device(f"cl:{dev.index}")):
        assert cg.cl.memory_allocated(spec) == base + 4000
        assert cg.cl.memory_reserved(spec) == base + 4000
    del t
    assert _counters() == (base, base + 4000)  # the buffer went to the pool
    u = cg.empty(1000, dtype=cg.float32)  # and comes back from it
    assert _counters() == (base + 4000, base + 4000)
    del u
    cg.cl.empty_cache()
    assert _counters() == (base, base)


def test_counters_are_per_device(dev):
    # the same OpenCL device under a second index, sharing its context and queue
    other = DeviceInfo(1000 + dev.index, dev.cl_device, dev.platform, dev.context, dev.queue)
    base = _counters()
    st = runtime.Storage(other, 100)
    assert runtime.memory_allocated(other.index) == 100
    assert _counters() == base
    del st
    assert runtime.memory_allocated(other.index) == 0
    assert runtime.memory_reserved(other.index) == 100
    cg.cl.empty_cache()
    assert runtime.memory_reserved(other.index) == 0


def test_limit_of_free_memory_empties_the_pool_first(dev, monkeypatch):
    t = cg.empty(1 << 20, dtype=cg.float32)  # 4 MiB, then cached in the pool
    del t
    allocated, reserved = _counters()
    assert reserved == allocated + (4 << 20)
    # the device has 3 MiB beside the pool: 5 MiB fit only once the pool is emptied
    monkeypatch.setattr(dev, "memory", reserved + (3 << 20))
    u = cg.empty(5 << 20, dtype=cg.uint8)
    assert _counters() == (allocated + (5 << 20), allocated + (5 << 20))
    with pytest.raises(cg.OutOfMemoryError, match="beside what clgraph holds") as info:
        cg.zeros(3 << 20, dtype=cg.uint8)  # 2 MiB are left
    assert "3.00 MiB" in str(info.value) and "5.00 MiB in tensors" in str(info.value)
    del u


def test_driver_failure_empties_the_pool_and_retries(dev, monkeypatch):
    t = cg.empty(3000, dtype=cg.uint8)
    del t
    assert cg.cl.memory_reserved() > cg.cl.memory_allocated()
    calls = []
    create = runtime._create

    def fails_once(d, size):
        calls.append(size)
        if len(calls) == 1:
            raise _cl_error(cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE)
        return create(d, size)

    monkeypatch.setattr(runtime, "_create", fails_once)
    x = cg.full((5, 7), 2.5)
    assert calls == [140, 140]
    allocated, reserved = _counters()
    assert reserved == allocated  # the pool was emptied before the retry
    np.testing.assert_array_equal(x.numpy(), np.full((5, 7), 2.5, np.float32))


def test_driver_failure_twice_raises_from_the_allocating_op(dev, monkeypatch):
    def fails(d, size):
        raise _cl_error(cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE)

    a = cg.ones(6, 7)
    before = _counters()
    monkeypatch.setattr(runtime, "_create", fails)
    with pytest.raises(cg.OutOfMemoryError) as info:
        a.exp()
    msg = str(info.value)
    assert "allocating 168 bytes" in msg and "MEM_OBJECT_ALLOCATION_FAILURE" in msg, msg
    _assert_names_device(msg, dev)
    assert cg.cl.memory_allocated() == before[0]
    monkeypatch.undo()
    np.testing.assert_allclose(a.exp().numpy(), np.full((6, 7), np.e), rtol=1e-6)


def test_other_driver_failure_at_creation_is_a_runtime_error(dev, monkeypatch):
    def fails(d, size):
        raise _cl_error(cl.status_code.INVALID_CONTEXT)

    monkeypatch.setattr(runtime, "_create", fails)
    with pytest.raises(RuntimeError, match="allocating 12 bytes on cl:.*INVALID_CONTEXT") as info:
        cg.zeros(3)
    assert not isinstance(info.value, cg.OutOfMemoryError)


@pytest.fixture
def lazy(dev, monkeypatch):
    """The default device as a lazily allocating driver: new buffers of 4 KiB and more are
    touched once, as big ones are on a GPU."""
    monkeypatch.setattr(dev, "allocates_lazily", True)
    monkeypatch.setattr(runtime, "_PROBE_BYTES", 4096)
    touched = []
    touch = runtime._touch

    def counting(d, buf, size):
        touched.append(size)
        touch(d, buf, size)

    monkeypatch.setattr(runtime, "_touch", counting)
    return touched


def test_big_new_buffers_are_touched_once(lazy):
    small = cg.zeros(100)
    big = cg.ones(2048)
    assert lazy == [8192]
    del big
    again = cg.full((2048,), 3.0)  # from the pool: not touched again
    assert lazy == [8192]
    np.testing.assert_array_equal(again.numpy(), np.full(2048, 3.0, np.float32))
    assert float(small.sum()) == 0.0


def test_lazy_failure_empties_the_pool_and_retries(lazy, monkeypatch):
    cached = cg.empty(5000, dtype=cg.uint8)
    del cached
    touch = runtime._touch

    def fails_once(d, buf, size):
        touch(d, buf, size)
        if len(lazy) == 2:
            raise _cl_error(cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE, "clEnqueueWriteBuffer")

    monkeypatch.setattr(runtime, "_touch", fails_once)
    x = cg.arange(3000, dtype=cg.float32)
    assert lazy == [5000, 12000, 12000]
    assert cg.cl.memory_reserved() == cg.cl.memory_allocated()
    np.testing.assert_array_equal(x.numpy(), np.arange(3000, dtype=np.float32))


def test_lazy_failure_twice_raises_from_the_allocating_op(lazy, monkeypatch):
    x = cg.ones(64, 64)
    before = cg.cl.memory_allocated()

    def fails(d, buf, size):
        raise _cl_error(cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE, "clEnqueueWriteBuffer")

    monkeypatch.setattr(runtime, "_touch", fails)
    with pytest.raises(cg.OutOfMemoryError, match=r"allocating 16\.00 KiB \(16384 bytes\)"
                       r".*clEnqueueWriteBuffer failed: MEM_OBJECT_ALLOCATION_FAILURE"):
        x @ x
    assert cg.cl.memory_allocated() == before


def test_launch_failure_names_the_kernel_and_device(dev, monkeypatch):
    a, b = cg.ones(4), cg.ones(4)

    def fails(*args, **kwargs):
        raise _cl_error(cl.status_code.INVALID_KERNEL_ARGS, "clEnqueueNDRangeKernel")

    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", fails)
    monkeypatch.setattr(cl.Kernel, "__call__", fails)  # kernels launched through pyopencl's invoker
    with pytest.raises(RuntimeError) as info:
        a + b
    msg = str(info.value)
    assert not isinstance(info.value, cg.OutOfMemoryError)
    assert "launching kernel cg_add" in msg and "INVALID_KERNEL_ARGS" in msg, msg
    assert f"cl:{dev.index} ({dev.name})" in msg and "global size" in msg, msg


def test_launch_out_of_memory_retries_then_raises(dev, monkeypatch):
    a, b = cg.ones(4), cg.ones(4)
    cached = cg.empty(777, dtype=cg.uint8)
    del cached
    enqueue = cl.enqueue_nd_range_kernel
    attempts = []

    def fails_once(queue, kernel, *args, **kwargs):
        attempts.append(kernel.function_name)
        if len(attempts) == 1:
            raise _cl_error(cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE, "clEnqueueNDRangeKernel")
        return enqueue(queue, kernel, *args, **kwargs)

    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", fails_once)
    y = a * b
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    assert cg.cl.memory_reserved() == cg.cl.memory_allocated()
    np.testing.assert_array_equal(y.numpy(), np.ones(4, np.float32))

    def fails(*args, **kwargs):
        raise _cl_error(cl.status_code.OUT_OF_RESOURCES, "clEnqueueNDRangeKernel")

    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", fails)
    monkeypatch.setattr(cl.Kernel, "__call__", fails)
    with pytest.raises(cg.OutOfMemoryError, match="launching kernel cg_sub.*OUT_OF_RESOURCES"):
        a - b


def test_read_failure_names_what_was_read(dev, monkeypatch):
    t = cg.ones(2, 3)
    copy = cl.enqueue_copy
    attempts = []

    def fails_once(*args, **kwargs):
        attempts.append(1)
        if len(attempts) == 1:
            raise _cl_error(cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE, "clEnqueueReadBuffer")
        return copy(*args, **kwargs)

    monkeypatch.setattr(cl, "enqueue_copy", fails_once)
    np.testing.assert_array_equal(t.numpy(), np.ones((2, 3), np.float32))
    assert len(attempts) == 2

    def fails(*args, **kwargs):
        raise _cl_error(cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE, "clEnqueueReadBuffer")

    monkeypatch.setattr(cl, "enqueue_copy", fails)
    with pytest.raises(cg.OutOfMemoryError, match=r"reading float32\[6\] to the host on cl:"):
        t.numpy()


def test_format_bytes():
    assert runtime.format_bytes(0) == "0 bytes"
    assert runtime.format_bytes(1023) == "1023 bytes"
    assert runtime.format_bytes(1536) == "1.50 KiB"
    assert runtime.format_bytes(5 << 20) == "5.00 MiB"
    assert runtime.format_bytes(1 << 42) == "4.00 TiB"
    assert runtime.format_bytes(1 << 52) == "4096.00 TiB"


def test_guarded_driver_calls_name_what_failed(dev):
    """runtime.guarded (compiled replays' uploads and copies go through it): a driver error
    becomes clgraph's RuntimeError naming the action and the device; an out-of-memory one
    is retried once after the pool is emptied."""
    def bad():
        raise cl.Error("clEnqueueWriteBuffer failed: INVALID_VALUE")

    with pytest.raises(RuntimeError, match=r"uploading host data in a compiled call on cl:"):
        runtime.guarded(dev, "uploading host data in a compiled call", bad)
    calls = []

    class _OOM(cl.Error):
        code = cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise _OOM("clEnqueueCopyBuffer failed: MEM_OBJECT_ALLOCATION_FAILURE")
        return "done"

    assert runtime.guarded(dev, "copying", flaky) == "done" and len(calls) == 2
