"""Random number generators: ``Generator`` (torch.Generator) and the default one behind
rand/randn/randint/randperm/normal_/uniform_/bernoulli/multinomial/dropout.

A generator is a Philox key (its 64-bit seed) and a counter: a random kernel draws block
``counter + g`` for its work-item g (kernels/random.cl), then the counter moves past the
blocks it used. Different seeds give independent streams, the same seed and counter the
same numbers on every device. Imports the tensor layer only; touches no device until a
state is read or written."""

from __future__ import annotations

import numbers
import os

import numpy as np

from . import dtypes as dt
from . import runtime
from .device import as_device
from .tensor import Tensor

DEFAULT_SEED = 67280421310721  # PyTorch's default seed
_STATE_BYTES = 16  # seed and counter, two little-endian uint64


def _seed_value(seed, name: str = "manual_seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise RuntimeError(f"{name} expected a long, but got {type(seed).__name__}")
    seed = int(seed)
    if not -(1 << 63) <= seed < (1 << 64):
        raise ValueError("Overflow when unpacking long long")
    return seed & 0xFFFFFFFFFFFFFFFF  # negative seeds as their two's complement, as PyTorch


class Generator:
    """torch.Generator: a counter-based Philox stream. ``device`` is where ``get_state``
    puts its tensor; the numbers themselves do not depend on the device."""

    def __init__(self, device=None) -> None:
        self._device_spec = device
        self._seed = DEFAULT_SEED
        self._counter = 0

    @property
    def device(self):
        return as_device(self._device_spec)

    def manual_seed(self, seed) -> "Generator":
        self._seed = _seed_value(seed)
        self._counter = 0
        return self

    def seed(self) -> int:
        """A fresh nondeterministic seed (from the OS), set and returned."""
        s = int.from_bytes(os.urandom(8), "little") & 0x7FFFFFFFFFFFFFFF
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        """The state as a uint8 tensor (16 bytes: seed and counter; PyTorch's CPU generator
        state is 5056 bytes of Mersenne Twister, which clgraph does not use)."""
        arr = np.array([self._seed, self._counter], dtype="<u8").view(np.uint8)
        t = Tensor._empty((_STATE_BYTES,), dt.uint8, self.device)
        runtime.write(t._storage, arr, owned=True)
        return t

    def set_state(self, new_state) -> "Generator":
        if not isinstance(new_state, Tensor):
            raise TypeError(f"expected a torch.ByteTensor, but got {type(new_state).__name__}")
        if new_state.dtype is not dt.uint8:
            raise TypeError("RNG state must be a torch.ByteTensor")
        if new_state.numel() != _STATE_BYTES:
            raise RuntimeError(f"Expected a clgraph Philox generator state of size "
                               f"{_STATE_BYTES} but found the input RNG state size to be "
                               f"{new_state.numel()}")
        seed, counter = new_state.detach()._host().reshape(-1).view("<u8")
        self._seed, self._counter = int(seed), int(counter)
        return self

    def clone_state(self) -> "Generator":
        """A generator at this one's position (torch.Generator.clone_state)."""
        g = Generator(self._device_spec)
        g._seed, g._counter = self._seed, self._counter
        return g

    def next_stream(self, blocks: int, advance: bool = True) -> dict:
        """Key and counter arguments of the next random kernel, which draws ``blocks``
        Philox blocks; the counter moves past them unless ``advance`` is False (a peek)."""
        base = self._counter
        if advance:
            self._counter += blocks
        s = self._seed
        return {"seed_lo": s & 0xFFFFFFFF, "seed_hi": (s >> 32) & 0xFFFFFFFF,
                "counter_base": base}

    def __repr__(self) -> str:
        return f"<clgraph.Generator object at {id(self):#x}>"


default_generator = Generator()


def resolve(generator) -> Generator:
    """The generator a ``generator=`` argument names: the default one for None."""
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"expected a torch.Generator as argument 'generator', but got "
                        f"{type(generator).__name__}")
    return generator


def manual_seed(seed) -> Generator:
    """torch.manual_seed: seed the default generator; returns it."""
    return default_generator.manual_seed(int(seed))


def seed() -> int:
    """torch.seed: a nondeterministic seed for the default generator, returned."""
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    default_generator.set_state(new_state)
