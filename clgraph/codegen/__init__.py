"""Codegen: elementwise groups and kernel templates to built OpenCL kernels.
Entry points: ``elementwise_kernel(dev, group)`` and ``template_kernel(dev, file, name,
defines)``; ``pack(kernel, values)`` / ``arg(kernel, name)`` give a hand-written or
reduction kernel's arguments by parameter name (its C signature, codegen.kernelsig). Never
sees Tensor; imports dtypes and its own modules (the build cache imports the device
layer)."""

from __future__ import annotations

import re
from pathlib import Path

from .. import dtypes as dt
from .cache import (
    ARG_TYPES,
    GROUPS,
    SOURCES,
    POSITIONS,
    KernelBuildError,
    arg,
    build,
    get_kernel,
    pack,
    set_arg_types,
    set_signature,
    stats,
)
from .emit import _NARROW_HELPERS, EwGroup, EwOp, emit, signature, vectorizable
from .kernelsig import kernel_signature

__all__ = ["EwGroup", "EwOp", "signature", "KernelBuildError", "elementwise_kernel",
           "template_kernel", "stats", "local_size", "KERNEL_DIR", "set_arg_types", "SOURCES",
           "ARG_TYPES", "GROUPS", "pack", "arg", "POSITIONS"]

KERNEL_DIR = Path(__file__).resolve().parent.parent.parent / "kernels"
if not KERNEL_DIR.exists():  # installed as a wheel: kernels ship inside the package
    KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels"



class Kernel:
    """A built kernel with its launch geometry rule."""

    __slots__ = ("kernel", "name", "width", "source", "local")

    def __init__(self, kernel, name, width, source, local):
        self.kernel = kernel
        self.name = name
        self.width = width
        self.source = source
        self.local = local

    def global_size(self, n: int) -> int:
        L = self.local * self.width
        return -(-n // L) * self.local if n > 0 else self.local


_ew_kernels: dict = {}


def local_size(dev) -> int:
    # PoCL compiles a kernel again for every new work-group size (35-50 ms): keep one.
    return min(64 if dev.is_cpu else 256, dev.max_work_group_size)


def elementwise_kernel(dev, group: EwGroup) -> Kernel:
    key = (dev.index, group)
    k = _ew_kernels.get(key)
    if k is not None:
        return k
    for name in {d for d, _ in group.inputs} | {o.out for o in group.ops}:
        check_dtype(dev, dt._BY_NAME[name])
    src, name = emit(group)
    prg = build(dev, src, ("-cl-mad-enable",), name)
    kern = get_kernel(prg, name, src)
    set_arg_types(kern, [p.np_type for p in signature(group)])
    k = Kernel(kern, name, group.width if vectorizable(group) else 1, src, local_size(dev))
    _ew_kernels[key] = k
    GROUPS[kern] = (group, k)
    return k


_tpl_kernels: dict = {}

_INCLUDE = re.compile(r'^#include "([\w.]+)"[ \t]*$', re.MULTILINE)


def kernel_source(file: str) -> str:
    """kernels/<file> with each ``#include "name"`` line replaced by kernels/<name> (so the
    program text, which the kernel cache keys on, holds what it includes)."""
    return _INCLUDE.sub(lambda m: kernel_source(m.group(1)), (KERNEL_DIR / file).read_text())


def template_kernel(dev, file: str, kernel: str, defines: tuple[tuple[str, str], ...] = (),
                    arg_types: tuple | None = None, extra_source: str = "") -> object:
    """A kernel from kernels/<file>, built with -D defines; cached per device and defines.
    Its argument types come from its C signature (codegen.kernelsig) unless given."""
    key = (dev.index, file, kernel, defines, extra_source)
    k = _tpl_kernels.get(key)
    if k is not None:
        return k
    if ("IS_BF16", "1") in defines:  # the conversions bfloat16 kernels load and store with
        extra_source = _NARROW_HELPERS + extra_source
    src = extra_source + kernel_source(file)
    opts = ("-cl-mad-enable",) + tuple(f"-D{n}={v}" for n, v in defines)
    prg = build(dev, src, opts, f"{file}:{kernel}")
    k = get_kernel(prg, kernel, src)
    sig = kernel_signature(src, kernel, defines)
    set_signature(k, sig)
    if arg_types is not None:
        set_arg_types(k, list(arg_types))
    _tpl_kernels[key] = k
    return k


def storage_defines(d: dt.dtype) -> tuple:
    """A template kernel's storage type T and how its loads and stores convert it
    (IS_HALF: half bits, IS_BF16: bfloat16 bits; both compute in float)."""
    return (("T", d.cl), ("IS_HALF", str(int(d is dt.float16))),
            ("IS_BF16", str(int(d is dt.bfloat16))))


def check_dtype(dev, d: dt.dtype) -> None:
    if d in (dt.float64, dt.complex128) and not dev.fp64:
        raise TypeError(
            f"{d.name} is not supported on cl:{dev.index} ({dev.name}): the device lacks "
            "cl_khr_fp64; use float32"
        )
