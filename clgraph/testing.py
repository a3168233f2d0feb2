"""torch.testing: ``assert_close`` and ``make_tensor``.

assert_close compares on the host (numpy), with PyTorch's default tolerances per dtype
and its messages; make_tensor draws from clgraph's default generator, so its values
differ from PyTorch's for the same seed. Imports the tensor layer and creation only."""

from __future__ import annotations

import collections.abc
import math
import numbers
import warnings
from collections.abc import Callable

import numpy as np

from . import dtypes as dt
from .creation import empty, randint
from .tensor import Tensor

__all__ = ["assert_close", "make_tensor"]

# dtype -> (rtol, atol), PyTorch's defaults; every integer dtype and bool: exact
_TOLERANCES = {dt.float16: (1e-3, 1e-5), dt.bfloat16: (1.6e-2, 1e-5),
               dt.float32: (1.3e-6, 1e-5), dt.float64: (1e-7, 1e-7)}


class _Mismatch(AssertionError):
    """A failed comparison; ``path`` is where in nested containers it happened."""


def _default_tolerance(*dtypes) -> tuple[float, float]:
    rtols, atols = zip(*(_TOLERANCES.get(d, (0.0, 0.0)) for d in dtypes))
    return max(rtols), max(atols)


def _np_dtype_tolerance(a: np.ndarray):
    return {np.dtype(np.float16): dt.float16, np.dtype(np.float32): dt.float32,
            np.dtype(np.float64): dt.float64}.get(a.dtype)


def _mismatch_msg(identifier, default: str, extra: str, abs_diff, abs_idx, atol, rel_diff,
                  rel_idx, rtol) -> str:
    equality = rtol == 0 and atol == 0

    def diff_msg(kind, diff, idx, tol):
        msg = (f"{kind.title()} difference: {diff}" if idx is None
               else f"Greatest {kind} difference: {diff} at index {idx}")
        if not equality:
            msg += f" (up to {tol} allowed)"
        return msg + "\n"

    if identifier is None:
        identifier = default
    elif callable(identifier):
        identifier = identifier(default)
    msg = f"{identifier} are not {'equal' if equality else 'close'}!\n\n"
    if extra:
        msg += f"{extra.strip()}\n"
    msg += diff_msg("absolute", abs_diff, abs_idx, atol)
    msg += diff_msg("relative", rel_diff, rel_idx, rtol)
    return msg.strip()


def _compare_numbers(actual, expected, rtol, atol, equal_nan, check_dtype,
                     booleans: bool = True) -> None:
    if booleans and isinstance(actual, bool) and isinstance(expected, bool):
        if actual is not expected:
            raise _Mismatch(f"Booleans mismatch: {actual} is not {expected}")
        return
    if check_dtype and type(actual) is not type(expected):
        raise _Mismatch(f"The (d)types do not match: {type(actual)} != {type(expected)}.")
    if rtol is None:
        floating = isinstance(actual, float) or isinstance(expected, float)
        rtol, atol = (1e-7, 1e-7) if floating else (0.0, 0.0)
    a, e = actual, expected
    if a == e or (equal_nan and math.isnan(a) and math.isnan(e)):
        return
    if not (math.isnan(a) or math.isnan(e)) and not (math.isinf(a) or math.isinf(e)):
        if abs(a - e) <= atol + rtol * abs(e):
            return
    abs_diff = abs(a - e)
    rel_diff = abs_diff / abs(e) if e != 0 else math.inf
    raise _Mismatch(_mismatch_msg(None, "Scalars", f"Expected {e} but got {a}.", abs_diff, None,
                                  atol, rel_diff, None, rtol))


def _host(x) -> np.ndarray:
    if isinstance(x, Tensor):
        a = x.detach()._host()
        return np.asarray(a, dtype=np.float32) if x.dtype is dt.bfloat16 else np.asarray(a)
    return np.asarray(x)


def _compare_arrays(actual, expected, rtol, atol, equal_nan, check_device, check_dtype) -> None:
    if actual.shape != expected.shape:
        raise _Mismatch(f"The values for attribute 'shape' do not match: {actual.shape} != "
                        f"{expected.shape}.")
    if isinstance(actual, Tensor):
        if check_device and actual.device != expected.device:
            raise _Mismatch(f"The values for attribute 'device' do not match: {actual.device} "
                            f"!= {expected.device}.")
    da, de = actual.dtype, expected.dtype
    if check_dtype and da != de:
        raise _Mismatch(f"The values for attribute 'dtype' do not match: {da} != {de}.")
    if rtol is None:
        if isinstance(actual, Tensor):
            rtol, atol = _default_tolerance(da, de)
        else:
            rtol, atol = _default_tolerance(_np_dtype_tolerance(actual),
                                            _np_dtype_tolerance(expected))
    a, e = _host(actual), _host(expected)
    bf16 = False
    if isinstance(actual, Tensor):
        # PyTorch's promotion (int64 with float32 is float32); bfloat16 math in float32,
        # rounded back to bfloat16 where PyTorch's would be
        common_dt = dt.promote_types(da, de)
        bf16 = common_dt is dt.bfloat16
        common = np.dtype(np.float32) if bf16 else common_dt.np
    else:
        common = np.result_type(a, e)
    a, e = a.astype(common), e.astype(common)
    if a.size == 0:
        return
    if a.ndim == 0:
        _compare_numbers(a.item(), e.item(), rtol, atol, equal_nan, False, booleans=False)
        return
    if np.issubdtype(common, np.inexact):
        matches = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    else:
        matches = a == e
    if matches.all():
        return
    n = matches.size
    bad = n - int(matches.sum())
    extra = f"Mismatched elements: {bad} / {n} ({bad / n:.1%})"
    af, ef, mf = a.reshape(-1), e.reshape(-1), matches.reshape(-1)
    if not np.issubdtype(common, np.inexact):
        af, ef = af.astype(np.int64), ef.astype(np.int64)
    with np.errstate(all="ignore"):
        abs_diff = np.abs(af - ef)
        abs_diff[mf] = 0
        # integer differences are divided in float32, as PyTorch's
        fd = abs_diff.dtype if np.issubdtype(abs_diff.dtype, np.floating) else np.float32
        rel_diff = abs_diff.astype(fd) / np.abs(ef).astype(fd)
        rel_diff[mf] = 0
    if bf16:
        abs_diff, rel_diff = _round_bf16(abs_diff), _round_bf16(rel_diff)

    def greatest(d):
        i = int(np.argmax(d)) if not np.isnan(d).any() else int(np.argmax(np.isnan(d)))
        return d[i].item(), tuple(int(k) for k in np.unravel_index(i, a.shape))

    abs_v, abs_i = greatest(abs_diff)
    rel_v, rel_i = greatest(rel_diff)
    raise _Mismatch(_mismatch_msg(None, "Tensor-likes", extra, abs_v, abs_i, atol, rel_v, rel_i,
                                  rtol))


def _round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = bits.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, out)


def _is_number(x) -> bool:
    return isinstance(x, (numbers.Number, np.number)) and not isinstance(x, np.ndarray)


def _is_sequence(x) -> bool:
    return isinstance(x, collections.abc.Sequence) and not isinstance(x, str)


def _compare(actual, expected, path, **opts) -> None:
    if isinstance(actual, np.generic) and not isinstance(actual, np.ndarray):
        actual = actual.item()
    if isinstance(expected, np.generic) and not isinstance(expected, np.ndarray):
        expected = expected.item()
    try:
        if isinstance(actual, Tensor) and isinstance(expected, Tensor) or (
                isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray)):
            _compare_arrays(actual, expected, **opts)
            return
        if _is_number(actual) and _is_number(expected):
            _compare_numbers(actual, expected, opts["rtol"], opts["atol"], opts["equal_nan"],
                             opts["check_dtype"])
            return
    except _Mismatch as exc:
        msg = str(exc)
        if path:
            msg += "\n\nThe failure occurred for item " + "".join(f"[{p!r}]" for p in path)
        raise _Mismatch(msg) from None
    if _is_sequence(actual) and _is_sequence(expected):
        if len(actual) != len(expected):
            raise _Mismatch(f"The length of the sequences mismatch: {len(actual)} != "
                            f"{len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, path + (i,), **opts)
        return
    if isinstance(actual, collections.abc.Mapping) and isinstance(
            expected, collections.abc.Mapping):
        ka, ke = set(actual), set(expected)
        if ka != ke:
            missing, extra = sorted(ke - ka, key=repr), sorted(ka - ke, key=repr)
            raise _Mismatch(f"The keys of the mappings do not match:\n"
                            f"Missing keys in the actual mapping: {missing}\n"
                            f"Additional keys in the actual mapping: {extra}")
        for k in sorted(ka, key=repr):
            _compare(actual[k], expected[k], path + (k,), **opts)
        return
    raise TypeError(f"No comparison pair was able to handle inputs of type {type(actual)} and "
                    f"{type(expected)}.")


def assert_close(actual, expected, *, allow_subclasses: bool = True, rtol: float | None = None,
                 atol: float | None = None, equal_nan: bool = False, check_device: bool = True,
                 check_dtype: bool = True, check_layout: bool = True, check_stride: bool = False,
                 msg: str | Callable[[str], str] | None = None) -> None:
    """torch.testing.assert_close: tensors, numpy arrays, numbers and sequences or mappings
    of them are close: ``|actual - expected| <= atol + rtol * |expected|`` elementwise,
    with per-dtype defaults for rtol and atol."""
    if (rtol is None) != (atol is None):
        missing = "atol" if atol is None else "rtol"
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got "
                         f"no {missing}.")
    try:
        _compare(actual, expected, (), rtol=rtol, atol=atol, equal_nan=equal_nan,
                 check_device=check_device, check_dtype=check_dtype)
    except _Mismatch as exc:
        text = str(exc)
        if msg is not None:
            text = msg(text) if callable(msg) else msg
        raise AssertionError(text) from None


def make_tensor(*shape, dtype, device, low: float | None = None, high: float | None = None,
                requires_grad: bool = False, noncontiguous: bool = False,
                exclude_zero: bool = False, memory_format=None) -> Tensor:
    """torch.testing.make_tensor: values drawn uniformly from ``[low, high)`` (floats:
    [-9, 9) by default; integers [-9, 10) clamped to the dtype's range; bool: either)."""
    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = shape[0]
    shape = tuple(shape)
    if noncontiguous and memory_format is not None:
        raise ValueError(f"The parameters `noncontiguous` and `memory_format` are mutually "
                         f"exclusive, but got noncontiguous={noncontiguous} and "
                         f"memory_format={memory_format}")
    exact = dtype is dt.bool_ or not dtype.is_floating_point
    if requires_grad and exact:
        raise ValueError(f"`requires_grad=True` is not supported for boolean and integral "
                         f"dtypes, but got dtype={dtype}")

    def low_high(lowest, highest, default_low, default_high):
        lo = default_low if low is None else low
        hi = default_high if high is None else high
        if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
            raise ValueError(f"`low` and `high` cannot be NaN, but got low={lo} and high={hi}")
        if lo == hi and not exact:
            warnings.warn("Passing `low==high` to `torch.testing.make_tensor` for floating or "
                          "complex types is deprecated since 2.1 and will be removed in 2.3. "
                          "Use `torch.full(...)` instead.", FutureWarning, stacklevel=3)
        elif lo >= hi:
            raise ValueError(f"`low` must be less than `high`, but got {lo} >= {hi}")
        elif hi < lowest or lo >= highest:
            raise ValueError(f"The value interval specified by `low` and `high` is [{lo}, "
                             f"{hi}), but {dtype} only supports [{lowest}, {highest})")
        lo, hi = min(max(lo, lowest), highest), min(max(hi, lowest), highest)
        return (math.ceil(lo), math.ceil(hi)) if exact else (lo, hi)

    numel = math.prod(shape)
    noncontiguous = noncontiguous and numel > 1
    if noncontiguous:
        shape = (*shape[:-1], 2 * shape[-1])
    if dtype is dt.bool_:
        lo, hi = low_high(0, 2, 0, 2)
        result = randint(lo, hi, shape, device=device, dtype=dtype)
    elif exact:
        info = dt.iinfo(dtype)
        lo, hi = low_high(info.min, info.max + (1 if dtype is not dt.int64 else 0), -9, 10)
        result = randint(lo, hi, shape, device=device, dtype=dtype)
    else:
        info = dt.finfo(dtype)
        lo, hi = low_high(info.min, info.max, -9, 9)
        result = empty(shape, device=device, dtype=dtype)
        if hi - lo >= info.max:
            result.uniform_(lo / 2, hi / 2).mul_(2)
        else:
            result.uniform_(lo, hi)
    if noncontiguous:
        result = result[..., 1::2]
    if exclude_zero:
        result[result == 0] = 1 if exact else dt.finfo(dtype).tiny
    if not exact:
        result.requires_grad_(requires_grad)
    return result
