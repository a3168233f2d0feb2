"""torch.random: the default generator's seed and state (clgraph.generator's), and
``fork_rng``. clgraph has one default generator for all devices, so forking it covers
every device; ``devices`` and ``device_type`` are accepted and change nothing. Imports
clgraph.generator only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .generator import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)

__all__ = ["fork_rng", "get_rng_state", "initial_seed", "manual_seed", "seed",
           "set_rng_state", "thread_safe_generator"]


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, _caller: str = "fork_rng",
             _devices_kw: str = "devices", device_type: str | None = None) -> Iterator[None]:
    """torch.random.fork_rng: the default generator's state is restored on exit."""
    if not enabled or device_type == "meta":
        yield
        return
    if devices is not None:
        list(devices)  # an iterable, as PyTorch's
    saved = default_generator.clone_state()
    try:
        yield
    finally:
        default_generator._seed, default_generator._counter = saved._seed, saved._counter


def thread_safe_generator() -> Generator | None:
    """None: clgraph's DataLoader has no thread workers (their generator is PyTorch's
    answer there); callers use the default generator."""
    return None
