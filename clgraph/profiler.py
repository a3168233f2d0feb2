"""torch.profiler on clgraph: ``profile`` (schedule, on_trace_ready, key_averages, table,
Chrome traces), ``record_function`` ranges and ``schedule``.

Built on runtime.profile: a recording profile pushes one (``_Collector``, a runtime.profile
whose record list also keeps each launch's host time) and reads each kernel's OpenCL event
times when it stops. Every kernel launch is a device event named by its kernel (generated
kernels carry the op names: ``cg_mul_add_...``); ``record_function`` ranges and the
``ProfilerStep#N`` ranges of a scheduled profile are host events that also carry the device
time of the kernels launched inside them. With no profile recording, ``record_function``
costs one test of a list and launches are untouched. Imports only runtime."""

from __future__ import annotations

import contextlib
import enum
import functools
import gzip
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable

from . import runtime

__all__ = ["DeviceType", "ProfilerAction", "ProfilerActivity", "profile", "record_function",
           "schedule", "supported_activities", "tensorboard_trace_handler"]


class ProfilerActivity(enum.Enum):
    """torch.profiler.ProfilerActivity. Every accelerator activity (CUDA, XPU, ...) means
    clgraph's OpenCL kernels; CPU means host-side ranges."""

    CPU = 0
    XPU = 1
    MTIA = 2
    CUDA = 3
    HPU = 4
    PrivateUse1 = 5


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


class DeviceType(enum.Enum):
    """Where an event's time was spent: CPU (host ranges) or CUDA (OpenCL kernels, named as
    PyTorch names its accelerator events)."""

    CPU = 0
    CUDA = 1


def supported_activities() -> set:
    return {ProfilerActivity.CPU, ProfilerActivity.CUDA}


# The collectors of the profiles recording now; record_function tests this list only.
_recording: list = []


# --- what a recording collects --------------------------------------------------------------


class _Launches(list):
    """runtime appends (name, event, kernel) per launch; the host time of each is kept too."""

    def __init__(self):
        super().__init__()
        self.host_ns: list[int] = []

    def append(self, record) -> None:
        self.host_ns.append(time.perf_counter_ns())
        super().append(record)


class _Range:
    """One record_function range: host times in ns, the launches made inside it
    (``first`` to ``last``, indices into the collector's launches) and its parent range."""

    __slots__ = ("name", "start_ns", "end_ns", "first", "last", "parent", "thread")

    def __init__(self, name, start_ns, first, parent):
        self.name, self.start_ns, self.end_ns = name, start_ns, None
        self.first, self.last, self.parent = first, None, parent
        self.thread = threading.get_ident()


class _Collector(runtime.profile):
    """One recording's launches (when device activity is profiled) and ranges."""

    def __init__(self, device: bool):
        super().__init__()
        self.records = _Launches()
        self.device = device
        self.ranges: list[_Range] = []
        self.open: list[_Range] = []

    def start(self) -> None:
        if self.device:
            self.__enter__()
        _recording.append(self)

    def stop(self) -> None:
        _recording.remove(self)
        if self.device:
            self.__exit__(None, None, None)
        end = time.perf_counter_ns()
        for r in self.open:  # ranges still open when recording stops end here
            r.end_ns, r.last = end, len(self.records)
        self.open = []


# --- events ---------------------------------------------------------------------------------


def _format_us(us: float) -> str:
    """Time in microseconds, written as PyTorch's tables write it."""
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _deprecated_cuda(name: str, new: str):
    def get(self):
        warnings.warn(f"`{name}` is deprecated. Use `{new}` instead.", FutureWarning,
                      stacklevel=2)
        return getattr(self, new)
    return property(get)


class _TimeAliases:
    """The names PyTorch's events and rows share: averages, formatted times and the
    deprecated CUDA spellings of the device times."""

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def device_time(self) -> float:
        return self.device_time_total / self.count if self.count else 0.0

    cpu_time_str = property(lambda self: _format_us(self.cpu_time))
    cpu_time_total_str = property(lambda self: _format_us(self.cpu_time_total))
    self_cpu_time_total_str = property(lambda self: _format_us(self.self_cpu_time_total))
    device_time_str = property(lambda self: _format_us(self.device_time))
    device_time_total_str = property(lambda self: _format_us(self.device_time_total))
    self_device_time_total_str = property(
        lambda self: _format_us(self.self_device_time_total))
    cuda_time = _deprecated_cuda("cuda_time", "device_time")
    cuda_time_total = _deprecated_cuda("cuda_time_total", "device_time_total")
    self_cuda_time_total = _deprecated_cuda("self_cuda_time_total", "self_device_time_total")


class FunctionEvent(_TimeAliases):
    """One event (torch.autograd.profiler_util.FunctionEvent): a host range
    (``device_type`` CPU, with the device time of the kernels launched inside it) or one
    kernel run (``device_type`` CUDA). Times in microseconds; ``start_us``/``end_us`` on the
    host clock, relative to the profile's start."""

    def __init__(self, id, name, start_us, end_us, device_type, thread=0, device_index=0,
                 is_user_annotation=False, trace_name=None):
        self.id, self.name, self.thread = id, name, thread
        self.trace_name = name if trace_name is None else trace_name
        self.start_us, self.end_us = start_us, end_us
        self.device_type, self.device_index = device_type, device_index
        self.is_user_annotation = is_user_annotation
        self.count = 1
        self.cpu_parent = None
        self.cpu_children: list[FunctionEvent] = []
        self.kernels: list[FunctionEvent] = []
        self.input_shapes: list = []
        self.stack: list = []
        self.is_async = self.is_remote = self.is_legacy = False
        self.node_id = -1
        self.flops = 0
        self.cpu_memory_usage = self.device_memory_usage = 0
        self.self_cpu_memory_usage = self.self_device_memory_usage = 0

    key = property(lambda self: self.name)

    @property
    def cpu_time_total(self) -> float:
        return self.end_us - self.start_us if self.device_type is DeviceType.CPU else 0.0

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - sum(c.cpu_time_total for c in self.cpu_children)

    @property
    def device_time_total(self) -> float:
        if self.device_type is not DeviceType.CPU:
            return self.end_us - self.start_us
        return (sum(k.device_time_total for k in self.kernels)
                + sum(c.device_time_total for c in self.cpu_children))

    @property
    def self_device_time_total(self) -> float:
        if self.device_type is not DeviceType.CPU:
            return self.device_time_total
        return sum(k.device_time_total for k in self.kernels)

    def __repr__(self):
        return (f"<FunctionEvent id={self.id} name={self.name} device_type={self.device_type}"
                f" cpu_time={self.cpu_time_str} start_us={self.start_us:.3f} "
                f"end_us={self.end_us:.3f} device_time={self.device_time_str}>")


class FunctionEventAvg(_TimeAliases):
    """The events of one key summed (torch's FunctionEventAvg): ``count`` and the totals."""

    def __init__(self, key: str, device_type):
        self.key, self.device_type = key, device_type
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0
        self.device_time_total = self.self_device_time_total = 0.0
        self.is_user_annotation = False
        self.input_shapes: list = []
        self.stack: list = []
        self.node_id = -1
        self.is_async = self.is_remote = self.is_legacy = False
        self.cpu_memory_usage = self.device_memory_usage = 0
        self.self_cpu_memory_usage = self.self_device_memory_usage = 0
        self.flops = 0

    def add(self, e) -> FunctionEventAvg:
        self.count += e.count
        self.cpu_time_total += e.cpu_time_total
        self.self_cpu_time_total += e.self_cpu_time_total
        self.device_time_total += e.device_time_total
        self.self_device_time_total += e.self_device_time_total
        self.is_user_annotation = self.is_user_annotation or e.is_user_annotation
        return self

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total_str}"
                f" cpu_time={self.cpu_time_str} self_device_time="
                f"{self.self_device_time_total_str} device_time={self.device_time_str}>")


class EventList(list):
    """A list of events or of averaged rows (torch's EventList): ``table``,
    ``key_averages``, ``total_average``, ``export_chrome_trace``."""

    def __init__(self, events=(), trace=None):
        super().__init__(events)
        self._trace = trace

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     group_by_overload_name: bool = False) -> EventList:
        rows: dict = {}
        for e in self:
            key = (e.key, tuple(map(tuple, e.input_shapes))) if group_by_input_shape else e.key
            rows.setdefault(key, FunctionEventAvg(e.key, e.device_type)).add(e)
        return EventList(rows.values(), self._trace)

    def total_average(self) -> FunctionEventAvg:
        total = FunctionEventAvg("Total", DeviceType.CPU)
        for e in self:
            total.add(e)
        return total

    def table(self, sort_by: str | None = None, row_limit: int = 100,
              max_src_column_width: int = 75, max_name_column_width: int = 55,
              max_shapes_column_width: int = 80, header: str | None = None,
              top_level_events_only: bool = False, time_unit: str | None = None) -> str:
        return _table(self, sort_by, row_limit, max_name_column_width, header,
                      top_level_events_only)

    def export_chrome_trace(self, path: str) -> None:
        if self._trace is None:
            raise RuntimeError("these events have no trace to export")
        _write_trace(self._trace, path)


_SORT_KEYS = ("cpu_time", "cpu_time_total", "self_cpu_time_total", "device_time",
              "device_time_total", "self_device_time_total", "count", "cpu_memory_usage",
              "self_cpu_memory_usage", "device_memory_usage", "self_device_memory_usage",
              "flops")


def _table(events, sort_by, row_limit, name_width, header, top_level_only) -> str:
    """PyTorch's key_averages().table(): one row per event or key, CPU then device columns."""
    rows = list(events)
    if top_level_only:
        rows = [e for e in rows if getattr(e, "cpu_parent", None) is None]
    if sort_by is not None:
        sort_by = sort_by.replace("cuda", "device").replace("xpu", "device")
        if sort_by not in _SORT_KEYS:
            raise AttributeError(f"'FunctionEventAvg' object has no attribute '{sort_by}'")
        rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
    if row_limit is not None and row_limit > 0:
        rows = rows[:row_limit]
    self_cpu = sum(e.self_cpu_time_total for e in events) or 1.0
    # device time is the kernels' (a range's self device time is that of its kernels)
    self_dev = sum(e.self_device_time_total for e in events
                   if e.device_type is not DeviceType.CPU)
    # device columns only where a kernel was recorded, as PyTorch's CPU-only tables
    device = any(e.device_type is not DeviceType.CPU for e in events)
    width = min(max([len("Name")] + [len(e.key) for e in rows]) + 2, name_width)
    heads = ["Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
    heads += ["Self CL", "Self CL %", "CL total", "CL time avg"] if device else []
    heads.append("# of Calls")
    line = "-" * width + "  " + "  ".join("-" * 12 for _ in heads) + "  "
    out = [header] if header else []
    out += [line, "Name".rjust(width) + "  " + "  ".join(h.rjust(12) for h in heads) + "  ",
            line]
    for e in rows:
        name = e.key if len(e.key) <= width else e.key[:width - 3] + "..."
        cells = [f"{100 * e.self_cpu_time_total / self_cpu:.2f}%",
                 _format_us(e.self_cpu_time_total),
                 f"{100 * e.cpu_time_total / self_cpu:.2f}%", _format_us(e.cpu_time_total),
                 _format_us(e.cpu_time)]
        if device:
            cells += [_format_us(e.self_device_time_total),
                      f"{100 * e.self_device_time_total / (self_dev or 1.0):.2f}%",
                      _format_us(e.device_time_total), _format_us(e.device_time)]
        cells.append(str(e.count))
        out.append(name.rjust(width) + "  " + "  ".join(c.rjust(12) for c in cells) + "  ")
    out += [line, f"Self CPU time total: {_format_us(self_cpu if rows else 0.0)}"]
    out += [f"Self CL time total: {_format_us(self_dev)}"] if device else []
    out.append("")
    return "\n".join(out)


# --- from a recording to events and a trace -------------------------------------------------


def _kernel_times(col: _Collector) -> list:
    """(host start ns, host end ns, device name) of each launch: the OpenCL event's device
    times, moved to the host clock by the smallest (host time of the enqueue - device time
    at which the command was queued): the enqueue happens before the host time is read."""
    col._resolve()
    raw, offsets = [], []
    for (_, ev, _), host in zip(col.records, col.records.host_ns):
        try:
            info = ev.profile
            queued, start, end = info.queued, info.start, info.end
            offsets.append(host - queued)
            raw.append((start, end, ev.command_queue.device.name))
        except Exception:  # a launch without profiling information: no device time
            raw.append(None)
    offset = min(offsets) if offsets else 0
    out = []
    for (start, end, dev), host in zip((r or (0, 0, "") for r in raw), col.records.host_ns):
        if start == 0 and end == 0:
            out.append((host, host, dev))
        else:
            out.append((start + offset, end + offset, dev))
    return out


def _events(col: _Collector, base_ns: int) -> tuple[list, dict]:
    """The events of one recording (host ranges, then kernels) and its Chrome trace."""
    kernel_times = _kernel_times(col) if col.device else []
    devices = sorted({d for _, _, d in kernel_times})
    ranges = {}
    events: list[FunctionEvent] = []
    for r in col.ranges:
        # as PyTorch's, the step ranges share one name (ProfilerStep*) and keep their own
        # (ProfilerStep#N) in the trace
        step = r.name.startswith("ProfilerStep#")
        e = FunctionEvent(len(events), "ProfilerStep*" if step else r.name,
                          (r.start_ns - base_ns) / 1e3, (r.end_ns - base_ns) / 1e3,
                          DeviceType.CPU, r.thread, is_user_annotation=not step,
                          trace_name=r.name)
        ranges[id(r)] = e
        if r.parent is not None and id(r.parent) in ranges:
            e.cpu_parent = ranges[id(r.parent)]
            e.cpu_parent.cpu_children.append(e)
        events.append(e)
    # the innermost range open at each launch: ranges nest, so a later-started one is inner
    owner = [None] * len(kernel_times)
    for r in col.ranges:
        for i in range(r.first, min(r.last, len(owner))):
            owner[i] = ranges[id(r)]
    for i, ((name, _, _), (s, e_ns, dev)) in enumerate(zip(col.records, kernel_times)):
        k = FunctionEvent(len(events), name, (s - base_ns) / 1e3, (e_ns - base_ns) / 1e3,
                          DeviceType.CUDA, device_index=devices.index(dev))
        if owner[i] is not None:
            k.cpu_parent = owner[i]
            owner[i].kernels.append(k)
        events.append(k)
    trace = _chrome_trace(events, col, kernel_times, base_ns, devices)
    return events, trace


def _chrome_trace(events, col, kernel_times, base_ns, devices) -> dict:
    """Chrome trace events: host ranges on the process, kernels on one track per device,
    each kernel tied to its host launch by a flow arrow."""
    pid = os.getpid()  # the host's track; each device's is its index, as in PyTorch's
    out = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
            "args": {"name": "python (host)"}}]
    for i, dev in enumerate(devices):
        out.append({"ph": "M", "name": "process_name", "pid": i, "tid": 0,
                    "args": {"name": f"OpenCL device {i}: {dev}"}})
        out.append({"ph": "M", "name": "thread_name", "pid": i, "tid": 0,
                    "args": {"name": "queue 0"}})
    for e in events:
        base = {"ph": "X", "name": e.trace_name, "ts": e.start_us,
                "dur": e.end_us - e.start_us, "args": {"External id": e.id}}
        if e.device_type is DeviceType.CPU:
            cat = "user_annotation" if e.is_user_annotation else "cpu_op"
            out.append({**base, "cat": cat, "pid": pid, "tid": e.thread})
        else:
            out.append({**base, "cat": "kernel", "pid": e.device_index, "tid": 0,
                        "args": {"External id": e.id, "device": e.device_index}})
    for i, host in enumerate(col.records.host_ns if col.device else ()):
        out.append({"ph": "i", "s": "t", "cat": "cl_runtime", "name": "clEnqueueNDRangeKernel",
                    "pid": pid, "tid": threading.main_thread().ident,
                    "ts": (host - base_ns) / 1e3, "args": {"kernel": col.records[i][0]}})
    return {"schemaVersion": 1, "displayTimeUnit": "ms", "traceEvents": out,
            "traceName": "clgraph"}


def _write_trace(trace: dict, path) -> None:
    path = os.fspath(path)
    data = json.dumps(trace).encode()
    if path.endswith(".gz"):
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)


# --- the public API ---------------------------------------------------------------------


class record_function(contextlib.ContextDecorator):
    """torch.profiler.record_function: a named range, reported with its host time and the
    device time of the kernels launched inside it. Also a decorator."""

    def __init__(self, name: str, args: str | None = None):
        self.name, self.args = name, args
        self._opened: list = []

    def _recreate_cm(self) -> record_function:
        # as a decorator, each call gets its own range (a recursive call opens another)
        return record_function(self.name, self.args)

    def __enter__(self):
        if _recording:
            now = time.perf_counter_ns()
            for col in _recording:
                r = _Range(self.name, now, len(col.records),
                           col.open[-1] if col.open else None)
                col.ranges.append(r)
                col.open.append(r)
                self._opened.append((col, r))
        return self

    def __exit__(self, *exc):
        if self._opened:
            now = time.perf_counter_ns()
            for col, r in self._opened:
                if r in col.open:  # not already closed by the recording's stop
                    r.end_ns, r.last = now, len(col.records)
                    col.open.remove(r)
            self._opened = []
        return False


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0,
             skip_first_wait: int = 0) -> Callable[[int], ProfilerAction]:
    """torch.profiler.schedule: skip ``skip_first`` steps, then cycles of ``wait`` idle,
    ``warmup`` and ``active`` recorded steps (``repeat`` cycles, 0: no limit); the last
    active step of a cycle is RECORD_AND_SAVE."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise AssertionError(
            f"Invalid profiler schedule arguments. Got wait={wait} (need >= 0), warmup="
            f"{warmup} (need >= 0), active={active} (need > 0), repeat={repeat} (need >= 0), "
            f"skip_first={skip_first} (need >= 0).")
    if warmup == 0:
        warnings.warn("Profiler won't be using warmup, this can skew profiler results",
                      stacklevel=2)
    cycle = wait + warmup + active

    def action(step: int) -> ProfilerAction:
        if step < 0:
            raise AssertionError(f"Step must be non-negative. Got {step}.")
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        phase = step % cycle
        if phase < wait:
            return ProfilerAction.NONE
        if phase < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if phase < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None,
                              use_gzip: bool = False) -> Callable:
    """An ``on_trace_ready`` that writes each recorded cycle's Chrome trace to
    ``dir_name/<worker>.<ns>.pt.trace.json[.gz]``."""
    def handler(prof) -> None:
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        name = f"{worker}.{time.time_ns()}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, name))
    return handler


def _record_always(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


class _Profile:
    """What torch.profiler.profile and torch.autograd.profiler.profile share: recording
    on and off, and the events of the last recording."""

    def __init__(self, device: bool):
        self._device = device
        self._col: _Collector | None = None
        self._events: list | None = None
        self._trace: dict | None = None
        self._metadata: dict = {}
        self._base_ns = time.perf_counter_ns()

    def _start_recording(self) -> None:
        self._col = _Collector(self._device)
        self._col.start()

    def _stop_recording(self) -> None:
        col, self._col = self._col, None
        if col is None:
            return
        col.stop()
        self._events, self._trace = _events(col, self._base_ns)
        self._trace["metadata"] = dict(self._metadata)

    def events(self) -> EventList:
        if self._events is None:
            raise RuntimeError("Profiler didn't finish running")
        return EventList(self._events, self._trace)

    function_events = property(events)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     group_by_overload_name: bool = False) -> EventList:
        return self.events().key_averages(group_by_input_shape, group_by_stack_n)

    def table(self, sort_by: str | None = None, row_limit: int = 100, **kwargs) -> str:
        return self.events().table(sort_by=sort_by, row_limit=row_limit, **kwargs)

    def total_average(self) -> FunctionEventAvg:
        return self.events().total_average()

    @property
    def self_cpu_time_total(self) -> float:
        return self.events().self_cpu_time_total

    def export_chrome_trace(self, path, *args, **kwargs) -> None:
        self.events().export_chrome_trace(path)

    def add_metadata(self, key: str, value: str) -> None:
        self._metadata[key] = value

    def add_metadata_json(self, key: str, value: str) -> None:
        self._metadata[key] = json.loads(value)


def _wants_device(activities) -> bool:
    """Whether ``activities`` asks for accelerator time (the OpenCL kernels)."""
    out = False
    for a in activities:
        if isinstance(a, dict):
            out = out or any(k is not ProfilerActivity.CPU and v for k, v in a.items())
        elif not isinstance(a, ProfilerActivity):
            raise TypeError(f"activities must be ProfilerActivity values, got {a!r}")
        elif a is not ProfilerActivity.CPU:
            out = True
    return out


class profile(_Profile):
    """torch.profiler.profile: a context manager (or ``start``/``stop``) that records host
    ranges (record_function, and ``ProfilerStep#N`` with a ``schedule``) and, when
    ``activities`` holds an accelerator activity (CUDA, XPU, ...; the default holds CUDA),
    every OpenCL kernel launch with its device time. ``step()`` moves through the schedule
    as PyTorch's does; ``on_trace_ready(prof)`` runs at the end of each recorded cycle.
    record_shapes, profile_memory, with_stack, with_flops and with_modules are accepted and
    record nothing more."""

    def __init__(self, *, activities: Iterable | None = None, schedule: Callable | None = None,
                 on_trace_ready: Callable | None = None, record_shapes: bool = False,
                 profile_memory: bool = False, with_stack: bool = False,
                 with_flops: bool = False, with_modules: bool = False,
                 experimental_config=None, execution_trace_observer=None,
                 acc_events: bool = False, use_cuda: bool | None = None,
                 custom_trace_id_callback=None):
        activities = (list(activities) if activities is not None
                      else [ProfilerActivity.CPU, ProfilerActivity.CUDA])
        super().__init__(_wants_device(activities) or bool(use_cuda))
        self.activities = set(a for a in activities if isinstance(a, ProfilerActivity))
        self.record_shapes, self.profile_memory = record_shapes, profile_memory
        self.with_stack, self.with_flops, self.with_modules = with_stack, with_flops, with_modules
        self.record_steps = schedule is not None
        self.schedule = schedule if schedule is not None else _record_always
        self.on_trace_ready = on_trace_ready
        self.step_num = 0
        self.current_action = self.schedule(0)
        self._step_range: record_function | None = None
        after_save = [self._stop_recording, self._trace_ready]
        A = ProfilerAction
        self._transitions = {
            (A.NONE, A.RECORD): [self._start_recording],
            (A.NONE, A.RECORD_AND_SAVE): [self._start_recording],
            (A.WARMUP, A.NONE): [functools.partial(warnings.warn,
                                                   "Incorrect schedule: WARMUP followed by NONE")],
            (A.WARMUP, A.RECORD): [self._start_recording],
            (A.WARMUP, A.RECORD_AND_SAVE): [self._start_recording],
            (A.RECORD, A.NONE): [functools.partial(
                warnings.warn, "Incorrect schedule: RECORD followed by NONE"),
                self._stop_recording],
            (A.RECORD, A.WARMUP): [functools.partial(
                warnings.warn, "Incorrect schedule: RECORD followed by WARMUP"),
                self._stop_recording],
            (A.RECORD_AND_SAVE, A.NONE): after_save,
            (A.RECORD_AND_SAVE, A.WARMUP): after_save,
            (A.RECORD_AND_SAVE, A.RECORD): after_save + [self._start_recording],
            (A.RECORD_AND_SAVE, A.RECORD_AND_SAVE): after_save + [self._start_recording],
            (A.WARMUP, None): [self._start_recording, self._stop_recording],
            (A.RECORD, None): after_save,
            (A.RECORD_AND_SAVE, None): after_save,
        }

    def _trace_ready(self) -> None:
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _transit(self, prev, current) -> None:
        for action in self._transitions.get((prev, current), ()):
            action()

    def _open_step_range(self) -> None:
        if self.record_steps:
            self._step_range = record_function(f"ProfilerStep#{self.step_num}")
            self._step_range.__enter__()

    def _close_step_range(self) -> None:
        if self._step_range is not None:
            self._step_range.__exit__(None, None, None)
            self._step_range = None

    def start(self) -> None:
        self._transit(ProfilerAction.NONE, self.current_action)
        self._open_step_range()

    def stop(self) -> None:
        self._close_step_range()
        self._transit(self.current_action, None)

    def step(self) -> None:
        """Signals that the next step starts: the schedule's action for it takes over."""
        self._close_step_range()
        prev = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        self._transit(prev, self.current_action)
        self._open_step_range()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def export_stacks(self, path: str, metric: str = "self_cpu_time_total") -> None:
        """No stacks are recorded (with_stack records nothing): writes an empty file."""
        open(path, "w").close()
