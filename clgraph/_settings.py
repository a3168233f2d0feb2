"""PyTorch's process-wide flags that clgraph records without acting on them: the
deterministic-algorithms mode (clgraph's kernels are deterministic: no atomics decide a
float sum order), warn-always, flush-denormal (OpenCL decides denormals per device), the
legacy default tensor type; and typename / is_storage. Imports dtypes and the tensor
layer."""

from __future__ import annotations

import warnings

from . import dtypes as dt
from .tensor import Tensor

_flags = {"deterministic": False, "warn_only": False, "warn_always": False}


def _check_bool(value, what: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be bool, not {type(value).__name__}")


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """torch.use_deterministic_algorithms: recorded (every clgraph kernel is already
    deterministic)."""
    _check_bool(mode, "_set_deterministic_algorithms(): argument 'mode' (position 1)")
    _check_bool(warn_only, "_set_deterministic_algorithms(): argument 'warn_only'")
    _flags["deterministic"], _flags["warn_only"] = mode, mode and warn_only


def are_deterministic_algorithms_enabled() -> bool:
    return _flags["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _flags["warn_only"]


_DEBUG_MODES = ("default", "warn", "error")


def set_deterministic_debug_mode(debug_mode) -> None:
    """0 / "default": off; 1 / "warn": on, warning only; 2 / "error": on."""
    if isinstance(debug_mode, str):
        if debug_mode not in _DEBUG_MODES:
            raise RuntimeError("invalid value of debug_mode, expected one of `default`, "
                               f"`warn`, `error`, but got {debug_mode}")
        debug_mode = _DEBUG_MODES.index(debug_mode)
    elif isinstance(debug_mode, int) and not isinstance(debug_mode, bool):
        if debug_mode not in (0, 1, 2):
            raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got "
                               f"{debug_mode}")
    else:
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    use_deterministic_algorithms(debug_mode > 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    if not _flags["deterministic"]:
        return 0
    return 1 if _flags["warn_only"] else 2


def set_warn_always(b: bool) -> None:
    """torch.set_warn_always: recorded; clgraph's warnings go through Python's warnings
    filters, which decide how often they show."""
    if not isinstance(b, bool):
        raise RuntimeError(f"setWarnOnlyOnce expects a bool, but got {type(b).__name__}")
    _flags["warn_always"] = b


def is_warn_always_enabled() -> bool:
    return _flags["warn_always"]


def set_flush_denormal(mode: bool) -> bool:
    """torch.set_flush_denormal: False, the mode is not supported (the OpenCL compiler and
    device decide how denormals are treated)."""
    if not isinstance(mode, bool):
        raise RuntimeError(f"flush_denormal expects a bool, but got {type(mode).__name__}")
    return False


def set_default_tensor_type(t, /) -> None:
    """torch.set_default_tensor_type (deprecated): the default dtype from a legacy type
    (``cg.DoubleTensor``) or its name; floating-point types only."""
    warnings.warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please "
                  "use torch.set_default_dtype() and torch.set_default_device() as "
                  "alternatives.", UserWarning, stacklevel=2)
    if isinstance(t, str):
        module, _, name = t.rpartition(".")
        if module not in ("torch", "torch.cuda", "clgraph"):
            raise ModuleNotFoundError(f"No module named '{module or name}'")
        match = [d for d in dt.ALL if d.tensor_type == name]
        if not match:
            raise TypeError(f"invalid type: '{t}'")
        d = match[0]
    else:
        d = getattr(t, "dtype", None)
        if not isinstance(d, dt.dtype):
            raise TypeError("invalid type object: only floating-point types are supported as "
                            "the default type")
    if not d.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    dt.set_default_dtype(d)


def typename(obj, /) -> str:
    """torch.typename: a tensor's legacy type name ("torch.FloatTensor"), else the object's
    module-qualified class name (builtins unqualified)."""
    if isinstance(obj, Tensor):
        return obj.type()
    if hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
        module, name = obj.__module__ or "", obj.__qualname__
    else:
        module, name = type(obj).__module__, type(obj).__qualname__
    return name if module in ("", "builtins") else f"{module}.{name}"


def is_storage(obj, /) -> bool:
    """torch.is_storage: False, clgraph exposes no storage objects."""
    return False
