"""cg.profiler, cg.autograd.profiler, cg.jit and cg.utils.hooks: PyTorch code using them runs
under ``import clgraph as torch``; schedules step as torch.profiler's do."""

import io
import json
import os
import warnings

import numpy as np
import pytest

import clgraph as cg
from clgraph import jit, runtime
from clgraph import profiler as cgprof
from clgraph.profiler import ProfilerActivity, record_function

DEVICE = [ProfilerActivity.CPU, ProfilerActivity.CUDA]


def _work(x):
    return (x @ x).relu().sum() + x.exp().mean()


def test_table_has_kernels_and_ranges():
    x = cg.randn(16, 16)
    _work(x)  # kernels built before profiling
    with cg.profile() as plain, cgprof.profile(activities=DEVICE) as p:
        with record_function("block"):
            y = _work(x)
            with record_function("inner"):
                z = x * 3
    float(y), float(z.sum())
    rows = {r.key: r for r in p.key_averages()}
    assert rows["block"].count == 1 and rows["inner"].count == 1
    assert rows["block"].cpu_time_total > rows["inner"].cpu_time_total > 0
    assert rows["block"].device_time_total > rows["inner"].device_time_total > 0
    assert rows["block"].self_device_time_total < rows["block"].device_time_total
    kernels = {k for k in rows if k not in ("block", "inner")}
    assert kernels == set(plain.kernels)  # every launch, named by its kernel
    assert all(rows[k].device_time_total > 0 and rows[k].cpu_time_total == 0 for k in kernels)
    assert sum(rows[k].count for k in kernels) == plain.launches
    table = p.key_averages().table(sort_by="cuda_time_total", row_limit=50)
    assert "block" in table and "inner" in table and all(k in table for k in kernels)
    assert "Self CPU time total" in table
    first = table.splitlines()[3].split()[0]
    assert first == "block"  # sorted by device time: the outer range first
    assert len(p.key_averages().table(row_limit=2).splitlines()) == 2 + 6
    inner = next(e for e in p.events() if e.name == "inner")
    assert inner.cpu_parent.name == "block" and inner.kernels
    with pytest.warns(FutureWarning):
        assert inner.cuda_time_total == inner.device_time_total
    with pytest.warns(FutureWarning):
        assert inner.self_cuda_time_total == inner.self_device_time_total
    assert not runtime._profilers and not cgprof._recording


def test_cpu_activity_only_records_ranges():
    x = cg.randn(8, 8)
    ready = []
    with cgprof.profile(activities=[ProfilerActivity.CPU], on_trace_ready=ready.append) as p:
        with record_function("block"):
            float((x + 1).sum())
    assert ready == [p]  # without a schedule: once, when the profile stops
    (row,) = p.key_averages()
    assert row.key == "block" and row.cpu_time_total > 0 and row.device_time_total == 0
    assert "Self CL" not in p.key_averages().table()
    p = cgprof.profile(activities=[ProfilerActivity.XPU])  # any accelerator: the kernels
    p.start()
    float((x + 1).sum())
    p.stop()
    assert p.events() and all(e.device_type is cgprof.DeviceType.CUDA for e in p.events())


def test_record_function_decorator_and_idle_cost():
    @record_function("decorated")
    def f(x):
        return x * 2

    x = cg.ones(4)
    with record_function("nobody records this"):  # no profile: nothing is kept
        f(x)
    assert not cgprof._recording
    with cgprof.profile(activities=DEVICE) as p:
        f(x)
        f(x)
    rows = {r.key: r for r in p.key_averages()}
    assert rows["decorated"].count == 2 and rows["decorated"].device_time_total > 0


def _recorded_steps(prof_mod, sched_kwargs, n_steps, **profile_kwargs):
    """The names of the step ranges each on_trace_ready sees, one list per cycle."""
    cycles = []

    def seen(p):
        names = [e.name for e in p.events()]
        return sorted(n for n in names if n.startswith("step")), names.count("ProfilerStep*")

    def ready(p):
        cycles.append(seen(p))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = prof_mod.schedule(**sched_kwargs)
        with prof_mod.profile(activities=[prof_mod.ProfilerActivity.CPU], schedule=sched,
                              on_trace_ready=ready, **profile_kwargs) as p:
            for i in range(n_steps):
                with prof_mod.record_function(f"step{i:02d}"):
                    pass
                p.step()
    return cycles, [sched(i).name for i in range(n_steps + 3)], seen(p)


SCHEDULES = [dict(wait=1, warmup=1, active=2), dict(wait=1, warmup=1, active=2, repeat=2),
             dict(wait=0, warmup=0, active=1, repeat=3, skip_first=2),
             dict(wait=2, warmup=1, active=3, skip_first=3, skip_first_wait=1),
             dict(wait=0, warmup=2, active=1, repeat=1)]


@pytest.mark.parametrize("kw", SCHEDULES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in
                                                                   kw.items()))
def test_schedule_steps_match_torch(kw):
    torch_profiler = pytest.importorskip("torch.profiler")
    ours = _recorded_steps(cgprof, kw, 11)
    theirs = _recorded_steps(torch_profiler, kw, 11)
    assert ours == theirs


def test_chrome_trace_and_tensorboard_handler(tmp_path):
    x = cg.randn(8, 8)
    with cgprof.profile(activities=DEVICE) as p:
        with record_function("block"):
            float(_work(x))
    path = tmp_path / "trace.json"
    p.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    (block,) = [e for e in events if e.get("name") == "block"]
    assert block["ph"] == "X" and block["cat"] == "user_annotation" and block["dur"] > 0
    assert kernels and all(e["ph"] == "X" and e["dur"] > 0 for e in kernels)
    assert {e["name"] for e in kernels} == {e.key for e in p.events() if e.kernels == [] and
                                            e.device_type is cgprof.DeviceType.CUDA}
    # device times moved onto the host clock: each kernel ends after the range began
    assert all(e["ts"] + e["dur"] > block["ts"] for e in kernels)

    out = tmp_path / "tb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = cgprof.schedule(wait=0, warmup=0, active=1, repeat=2)
    with cgprof.profile(activities=DEVICE, schedule=sched,
                        on_trace_ready=cgprof.tensorboard_trace_handler(str(out))) as p:
        for _ in range(4):
            float((x + 1).sum())
            p.step()
    files = sorted(os.listdir(out))
    assert len(files) == 2 and all(f.endswith(".pt.trace.json") for f in files)
    for f in files:
        trace = json.loads((out / f).read_text())
        names = {e["name"] for e in trace["traceEvents"]}
        assert sum(n.startswith("ProfilerStep#") for n in names) == 1
        assert any(e.get("cat") == "kernel" for e in trace["traceEvents"])


def test_autograd_profiler():
    x = cg.randn(8, 8)
    with cg.autograd.profiler.profile(use_cuda=True) as prof:
        with cg.autograd.profiler.record_function("fwd"):
            float((x * 2).sum())
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["fwd"].device_time_total > 0
    assert "fwd" in prof.key_averages().table(sort_by="self_cuda_time_total")
    assert prof.total_average().count == len(prof.function_events)
    with cg.autograd.profiler.emit_nvtx(), cg.autograd.profiler.emit_itt():
        assert float((x + 1).sum()) == pytest.approx(float(x.sum()) + 64, rel=1e-5)
    with cg.autograd.profiler.profile(enabled=False) as off:
        float(x.sum())
    with pytest.raises(RuntimeError):
        off.key_averages()


# --- jit ------------------------------------------------------------------------------------


class Net(cg.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = cg.nn.Linear(4, 8), cg.nn.Linear(8, 3)
        self.drop = cg.nn.Dropout(0.5)

    def forward(self, x):
        return self.fc2(self.drop(self.fc1(x).relu()))


def _np(t):
    return t.detach().numpy()


def test_script_returns_the_module():
    net = Net()
    scripted = jit.script(net)
    assert scripted is net and isinstance(scripted, jit.ScriptModule)
    assert not isinstance(Net(), jit.ScriptModule)
    assert list(scripted.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    scripted.eval()
    assert not scripted.training and not net.drop.training
    x = cg.randn(2, 4)
    np.testing.assert_array_equal(_np(scripted(x)), _np(net(x)))

    def f(a):
        return a + 1

    assert jit.script(f) is f and isinstance(f, jit.ScriptFunction)
    assert not jit.is_scripting()


def test_trace_module_and_save_load(tmp_path):
    net = Net().eval()
    x = cg.randn(5, 4)
    traced = jit.trace(net, x)
    assert isinstance(traced, jit.ScriptModule) and isinstance(traced, cg.nn.Module)
    assert list(traced.state_dict()) == list(net.state_dict())
    assert traced.fc1.weight is net.fc1.weight
    np.testing.assert_allclose(_np(traced(x)), _np(net(x)), rtol=1e-5, atol=1e-6)
    x2 = cg.randn(7, 4)  # another shape: compiled again
    np.testing.assert_allclose(_np(traced(x2)), _np(net(x2)), rtol=1e-5, atol=1e-6)
    traced.train()
    assert net.training and net.drop.training
    traced.eval()

    path = tmp_path / "m.pt"
    jit.save(traced, str(path))
    loaded = jit.load(str(path))
    assert isinstance(loaded, jit.ScriptModule) and not loaded.training
    np.testing.assert_allclose(_np(loaded(x)), _np(net(x)), rtol=1e-5, atol=1e-6)
    sd = loaded.state_dict()
    assert all(np.array_equal(_np(sd[k]), _np(v)) for k, v in net.state_dict().items())

    buf, extra = io.BytesIO(), {"meta.txt": ""}
    jit.save(jit.script(net), buf, _extra_files={"meta.txt": "hello"})
    buf.seek(0)
    again = jit.load(buf, _extra_files=extra)
    assert extra["meta.txt"] == b"hello" and isinstance(again, jit.ScriptModule)
    np.testing.assert_allclose(_np(again(x)), _np(net(x)), rtol=1e-5, atol=1e-6)


def _mul_add(a, b):
    return a * b + 1, (a - b).sum()


def test_trace_function_and_save_load():
    a, b = cg.randn(3, 4), cg.randn(3, 4)
    seen = []

    def f(a, b):
        seen.append(jit.is_tracing())
        return _mul_add(a, b)

    traced = jit.trace(f, (a, b))
    assert seen and all(seen) and not jit.is_tracing()
    assert isinstance(traced, jit.ScriptFunction)
    for got, want in zip(traced(a, b), _mul_add(a, b)):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5, atol=1e-6)
    assert "__kernel" in traced.code

    buf = io.BytesIO()
    jit.save(jit.trace(_mul_add, (a, b)), buf)
    buf.seek(0)
    loaded = jit.load(buf)
    for got, want in zip(loaded(a, b), _mul_add(a, b)):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5, atol=1e-6)


def _trace_errors(mod):
    """What trace raises or warns, for bad example inputs and outputs and a
    nondeterministic function."""
    out = []

    def double(x):
        return x * 2

    for bad in [(3,), "a", None]:
        try:
            mod.jit.trace(double, bad)
            out.append("ok")
        except (RuntimeError, TypeError) as e:
            out.append((type(e).__name__, str(e)))
    try:
        mod.jit.trace(lambda x: 3, mod.ones(2))
    except RuntimeError as e:
        out.append(str(e))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod.jit.trace(lambda x: x + mod.rand(2), mod.ones(2))
        mod.jit.trace(lambda x: [x + 1], mod.ones(2))
    out.append(sorted({str(w.message).split(".")[0] for w in caught
                       if w.category is mod.jit.TracerWarning
                       and not str(w.message).startswith("Trace had")}))
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13's on jit.trace
def test_trace_errors_match_torch():
    torch = pytest.importorskip("torch")
    ours = _trace_errors(cg)
    assert ours[0][0] == "RuntimeError" and "cannot be traced" in ours[0][1]
    assert ours == _trace_errors(torch)


def test_jit_helpers():
    x = cg.ones(3)
    fut = jit.fork(lambda a, b: a + b, x, 2)
    assert isinstance(fut, jit.Future)
    assert jit.wait(fut).tolist() == [3.0, 3.0, 3.0] and cg.wait(cg.fork(cg.neg, x)).sum() == -3
    assert jit.annotate(list, [1]) == [1]
    assert jit.ignore(len) is len and jit.ignore(drop=True)(len) is len
    assert jit.unused(len) is len and jit.export(len) is len
    net = jit.script(Net())
    with pytest.raises(RuntimeError, match="eval mode"):
        jit.freeze(net)
    assert jit.freeze(net.eval()) is net
    with pytest.raises(RuntimeError, match="ScriptModule"):
        jit.freeze(Net().eval())
    assert jit.optimize_for_inference(jit.script(Net())).training is False
    with pytest.warns(UserWarning, match="no-op"):
        assert jit.trace(net, cg.ones(1, 4)) is net


def test_removable_handle():
    lin = cg.nn.Linear(2, 2)
    calls = []
    handle = lin.register_forward_hook(lambda m, i, o: calls.append(1))
    assert isinstance(handle, cg.utils.hooks.RemovableHandle)
    lin(cg.ones(1, 2))
    handle.remove()
    lin(cg.ones(1, 2))
    assert calls == [1]
