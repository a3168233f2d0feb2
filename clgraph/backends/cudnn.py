"""torch.backends.cudnn: cuDNN's flags. clgraph does not use cuDNN (``is_available()`` is
False); the flags are stored for programs that set or read them and change nothing:
clgraph's convolutions are its own OpenCL kernels, deterministic, and float32 convolutions
never round to TF32."""

from __future__ import annotations

import contextlib

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True
benchmark_limit = 10


def is_available() -> bool:
    return False


def version() -> None:
    """None: there is no cuDNN."""


@contextlib.contextmanager
def flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False,
          allow_tf32=True):
    """Set the flags inside a block, restoring them after."""
    names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")
    module = globals()
    saved = {n: module[n] for n in names}
    module.update(zip(names, (enabled, benchmark, benchmark_limit, deterministic, allow_tf32)))
    try:
        yield
    finally:
        module.update(saved)
