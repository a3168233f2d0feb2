"""torch.autograd.profiler on clgraph: the older profiler API (``profile``,
``record_function``) over clgraph.profiler's recording, and ``emit_nvtx`` / ``emit_itt``,
which have nothing to emit to on OpenCL and do nothing. Imports only clgraph.profiler."""

from __future__ import annotations

from ..profiler import EventList, FunctionEvent, FunctionEventAvg, _Profile, record_function

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg", "emit_itt", "emit_nvtx", "profile",
           "record_function"]


class profile(_Profile):
    """torch.autograd.profiler.profile: records record_function ranges while entered and,
    with ``use_cuda=True`` or a ``use_device``, every OpenCL kernel with its device time.
    ``record_shapes``, ``with_flops``, ``profile_memory``, ``with_stack`` and
    ``with_modules`` are accepted and record nothing more."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False,
                 use_device: str | None = None, record_shapes: bool = False,
                 with_flops: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_modules: bool = False, use_kineto: bool = False,
                 use_cpu: bool = True, experimental_config=None, acc_events: bool = False,
                 custom_trace_id_callback=None, **kwargs):
        super().__init__(bool(use_cuda or use_device))
        self.enabled = enabled
        self.use_cuda, self.use_device = use_cuda, use_device
        self.record_shapes, self.profile_memory = record_shapes, profile_memory
        self._entered = False

    def __enter__(self):
        if not self.enabled:
            return self
        if self._entered:
            raise RuntimeError("Profiler context manager is not reentrant")
        self._entered = True
        self._start_recording()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop_recording()
        return False

    def __str__(self):
        return self.table()


class emit_nvtx:
    """torch.autograd.profiler.emit_nvtx: no NVTX on OpenCL; entering does nothing."""

    def __init__(self, enabled: bool = True, record_shapes: bool = False):
        self.enabled, self.record_shapes = enabled, record_shapes
        self.entered = False

    def __enter__(self):
        if self.enabled:
            if self.entered:
                raise RuntimeError(f"{type(self).__name__} context manager is not reentrant")
            self.entered = True
        return self

    def __exit__(self, *exc):
        self.entered = False
        return False


class emit_itt(emit_nvtx):
    """torch.autograd.profiler.emit_itt: no ITT on OpenCL; entering does nothing."""
