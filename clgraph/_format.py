"""PyTorch-compatible tensor printing from a host numpy array.

This module reproduces ``torch/_tensor_str.py`` (PyTorch 2.x) byte for byte for
dense, strided, real-valued tensors: the ``tensor(...)`` repr with the same
number formatting (integer-valued floats as ``1.``, automatic scientific mode,
``nan``/``inf``, negative zero), column alignment, nested brackets, line
wrapping, summarization with ``...`` and the trailing ``device=`` / ``size=`` /
``dtype=`` / ``grad_fn=`` / ``requires_grad=`` suffixes.

It is self-contained: it depends on numpy and the standard library only.

Public API
----------
``format_tensor(values, dtype_name, suffixes=(), *, device=None,
default_float="float32")`` -> str
    See its docstring.

``set_printoptions(precision=None, threshold=None, edgeitems=None,
linewidth=None, profile=None, sci_mode=None)``
    Same semantics as ``torch.set_printoptions`` (including the quirk that
    ``sci_mode`` is reset to ``None`` when it is not passed).

``get_printoptions()`` / ``printoptions(**kwargs)``
    Same as the torch functions of the same name.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "format_tensor",
    "get_printoptions",
    "printoptions",
    "set_printoptions",
]


# --------------------------------------------------------------------------- #
# Print options
# --------------------------------------------------------------------------- #


class _PrinterOptions:
    __slots__ = ("edgeitems", "linewidth", "precision", "sci_mode", "threshold")

    def __init__(self) -> None:
        self.precision: int = 4
        self.threshold: float = 1000
        self.edgeitems: int = 3
        self.linewidth: int = 80
        self.sci_mode: bool | None = None


PRINT_OPTS = _PrinterOptions()


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set module-wide print options, exactly like ``torch.set_printoptions``.

    Args:
        precision: digits after the decimal point (default 4).
        threshold: numel above which the tensor is summarized (default 1000).
        edgeitems: items shown at each end of a summarized dim (default 3).
        linewidth: characters per line used for wrapping (default 80).
        profile: ``"default"``, ``"short"`` or ``"full"``, applied first.
        sci_mode: ``True``/``False`` forces scientific notation on/off;
            ``None`` lets the formatter decide. As in torch, this option is
            always assigned, so omitting it resets it to ``None``.
    """
    if profile is not None:
        if profile == "default":
            PRINT_OPTS.precision = 4
            PRINT_OPTS.threshold = 1000
            PRINT_OPTS.edgeitems = 3
            PRINT_OPTS.linewidth = 80
        elif profile == "short":
            PRINT_OPTS.precision = 2
            PRINT_OPTS.threshold = 1000
            PRINT_OPTS.edgeitems = 2
            PRINT_OPTS.linewidth = 80
        elif profile == "full":
            PRINT_OPTS.precision = 4
            PRINT_OPTS.threshold = math.inf
            PRINT_OPTS.edgeitems = 3
            PRINT_OPTS.linewidth = 80

    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """Return the current options as a dict usable as ``set_printoptions(**d)``."""
    return {
        "precision": PRINT_OPTS.precision,
        "threshold": PRINT_OPTS.threshold,
        "edgeitems": PRINT_OPTS.edgeitems,
        "linewidth": PRINT_OPTS.linewidth,
        "sci_mode": PRINT_OPTS.sci_mode,
    }


@contextlib.contextmanager
def printoptions(**kwargs: Any) -> Iterator[None]:
    """Context manager that temporarily changes the print options."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


# --------------------------------------------------------------------------- #
# dtypes
# --------------------------------------------------------------------------- #

_ALIASES = {
    "float": "float32",
    "half": "float16",
    "double": "float64",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "char": "int8",
    "byte": "uint8",
    "cfloat": "complex64",
    "cdouble": "complex128",
}

_NUMPY_DTYPES = {
    "bool": np.bool_,
    "uint8": np.uint8,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    # numpy has no bfloat16: the caller hands the values over widened to
    # float32 (exact), and they are printed from there.
    "bfloat16": np.float32,
    "complex64": np.complex64,
    "complex128": np.complex128,
}

_FLOAT_NAMES = {"float16", "bfloat16", "float32", "float64"}


def _canon_dtype(name: str) -> str:
    name = str(name)
    name = name.removeprefix("torch.")
    return _ALIASES.get(name, name)


# --------------------------------------------------------------------------- #
# Element formatter (torch._tensor_str._Formatter)
# --------------------------------------------------------------------------- #


class _Formatter:
    """Decides the number style and the common column width of a tensor.

    ``data`` is the (possibly summarized) numpy array whose elements are all
    printed. Torch loops over every element in Python; here the widths are
    computed from a few extreme values only, which gives the same result
    because the length of a rounded ``f``/``e`` string is monotone in ``|x|``
    for each sign (and, for ``e``, the exponent digit count is largest at the
    smallest or largest magnitude).
    """

    def __init__(self, data: np.ndarray, floating: bool) -> None:
        self.floating_dtype = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        prec = PRINT_OPTS.precision

        flat = data.reshape(-1)

        if not floating:
            if flat.size:
                for v in (flat.min().item(), flat.max().item()):
                    self.max_width = max(self.max_width, len(f"{v}"))
            return

        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return

        absvals = np.abs(vals).astype(np.float64)
        nz_min = float(absvals.min())
        nz_max = float(absvals.max())

        self.int_mode = bool(np.all(vals == np.ceil(vals)))

        if PRINT_OPTS.sci_mode is None:
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                ratio = np.float64(nz_max) / np.float64(nz_min)
            self.sci_mode = bool(ratio > 1000.0 or nz_max > 1.0e8 or nz_min < 1.0e-4)
        else:
            self.sci_mode = PRINT_OPTS.sci_mode

        # Extreme values per sign (see class docstring).
        candidates: list[float] = []
        pos = vals[vals > 0]
        neg = vals[vals < 0]
        for part in (pos, neg):
            if part.size:
                candidates.append(float(part.min()))
                candidates.append(float(part.max()))

        if self.sci_mode:
            spec = f"{{:.{prec}e}}"
            for v in candidates:
                self.max_width = max(self.max_width, len(spec.format(v)))
        elif self.int_mode:
            for v in candidates:
                self.max_width = max(self.max_width, len(f"{v:.0f}") + 1)
        else:
            spec = f"{{:.{prec}f}}"
            for v in candidates:
                self.max_width = max(self.max_width, len(spec.format(v)))

    def width(self) -> int:
        return self.max_width

    def format(self, value: Any) -> str:
        if self.floating_dtype:
            if self.sci_mode:
                ret = f"{{:{self.max_width}.{PRINT_OPTS.precision}e}}".format(value)
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{{:.{PRINT_OPTS.precision}f}}".format(value)
        else:
            ret = f"{value}"
        return (self.max_width - len(ret)) * " " + ret


class _ComplexFormatter:
    """Complex elements: the real and imaginary parts each with their own formatter,
    joined as torch does (``1.+2.0000j``, ``-0.-3.5000j``)."""

    def __init__(self, data: np.ndarray) -> None:
        self.re = _Formatter(data.real, True)
        self.im = _Formatter(data.imag, True)

    def width(self) -> int:
        return self.re.width() + self.im.width() + 1

    def format(self, value: Any) -> str:
        real_str = self.re.format(value.real)
        imag_str = (self.im.format(value.imag) + "j").lstrip()
        if imag_str[0] in "+-":
            return real_str + imag_str
        return real_str + "+" + imag_str


# --------------------------------------------------------------------------- #
# Layout (torch._tensor_str._vector_str / _tensor_str_with_formatter)
# --------------------------------------------------------------------------- #


def _vector_str(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    element_length = fmt.width() + 2
    elements_per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / element_length))
    e = PRINT_OPTS.edgeitems

    if summarize and not e:
        data = ["..."]
    elif summarize and a.shape[0] > 2 * e:
        data = (
            [fmt.format(v) for v in a[:e].tolist()]
            + [" ..."]
            + [fmt.format(v) for v in a[-e:].tolist()]
        )
    else:
        data = [fmt.format(v) for v in a.tolist()]

    lines = [
        ", ".join(data[i : i + elements_per_line]) for i in range(0, len(data), elements_per_line)
    ]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    dim = a.ndim
    if dim == 0:
        return fmt.format(a.item())
    if dim == 1:
        return _vector_str(a, indent, summarize, fmt)

    e = PRINT_OPTS.edgeitems
    n = a.shape[0]
    if summarize and n > 2 * e:
        slices = (
            [_tensor_str_with_formatter(a[i], indent + 1, summarize, fmt) for i in range(e)]
            + ["..."]
            + [
                _tensor_str_with_formatter(a[i], indent + 1, summarize, fmt)
                for i in range(n - e, n)
            ]
        )
    else:
        slices = [_tensor_str_with_formatter(a[i], indent + 1, summarize, fmt) for i in range(n)]

    return "[" + ("," + "\n" * (dim - 1) + " " * (indent + 1)).join(slices) + "]"


def _summarized_data(a: np.ndarray) -> np.ndarray:
    """Elements that a summarized print shows (torch ``get_summarized_data``)."""
    e = PRINT_OPTS.edgeitems
    if a.ndim == 0:
        return a
    if a.ndim >= 2 and not e:
        return a[(slice(0, 0),) * a.ndim]
    # Per axis: keep the first and last ``e`` items when the axis is longer
    # than 2*e. (With e == 0 only the 1-d case gets here; torch's
    # ``cat(t[:0], t[-0:])`` then is the whole vector.)
    for axis, n in enumerate(a.shape):
        if n > 2 * e:
            idx = np.concatenate([np.arange(0, e), np.arange(n - e, n)]) if e else np.arange(n)
            a = np.take(a, idx, axis=axis)
    return a


def _tensor_str(a: np.ndarray, indent: int, floating: bool) -> str:
    if a.size == 0:
        return "[]"
    summarize = a.size > PRINT_OPTS.threshold
    data = _summarized_data(a) if summarize else a
    fmt = _ComplexFormatter(data) if a.dtype.kind == "c" else _Formatter(data, floating)
    return _tensor_str_with_formatter(a, indent, summarize, fmt)


def _add_suffixes(tensor_str: str, suffixes: Sequence[str], indent: int) -> str:
    parts = [tensor_str]
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        suffix_len = len(suffix)
        if last_line_len + suffix_len + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + suffix_len
        else:
            parts.append(", " + suffix)
            last_line_len += suffix_len + 2
    parts.append(")")
    return "".join(parts)


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def format_tensor(
    values: np.ndarray,
    dtype_name: str,
    suffixes: Sequence[str] = (),
    *,
    device: str | None = None,
    default_float: str = "float32",
) -> str:
    """Return what ``repr(torch_tensor)`` would print for this data.

    Args:
        values: host copy of the tensor data, any shape (0-d and empty
            included). It is cast to the numpy dtype of ``dtype_name`` if it
            differs (for ``bfloat16`` pass the values widened to float32).
        dtype_name: the tensor's dtype name: ``"float32"``, ``"int64"``,
            ``"bool"``, ... (``"torch.float32"`` and torch aliases such as
            ``"half"``/``"long"`` are accepted too). It decides the number
            style and whether ``dtype=torch.<name>`` is printed.
        suffixes: extra items, already formatted, that go after the ones this
            function adds, in the order given, e.g.
            ``["grad_fn=<MulBackward0>"]`` or ``["requires_grad=True"]``.
            Items starting with ``"device="`` are moved to the front, since
            torch prints the device before ``size=``/``dtype=``.
        device: device to show, e.g. ``"cl:1"`` -> ``device='cl:1'``
            (a string that already starts with ``"device="`` is used as is).
            ``None`` prints no device (torch omits the default device).
        default_float: the default floating dtype (``torch.get_default_dtype``).

    Suffix order is torch's: device, size (empty tensors not 1-d, or
    ``edgeitems == 0``), dtype (when not default: the default float dtype,
    int64 and bool are not shown; for empty tensors every dtype except the
    default float dtype is shown), then ``suffixes``. Lines wrap at
    ``linewidth`` as torch does.
    """
    name = _canon_dtype(dtype_name)
    default_float = _canon_dtype(default_float)

    a = np.asarray(values)
    np_dtype = _NUMPY_DTYPES.get(name)
    if np_dtype is not None and a.dtype != np_dtype:
        a = a.astype(np_dtype)
    floating = name in _FLOAT_NAMES if np_dtype is not None else a.dtype.kind == "f"

    prefix = "tensor("
    indent = len(prefix)

    lead: list[str] = []
    if device is not None:
        lead.append(device if device.startswith("device=") else f"device='{device}'")
    rest: list[str] = []
    for s in suffixes:
        (lead if s.startswith("device=") else rest).append(s)

    out = list(lead)
    dtype_str = "dtype=torch." + name
    if a.size == 0:
        if a.ndim != 1:
            out.append("size=" + str(tuple(int(d) for d in a.shape)))
        if name != default_float:
            out.append(dtype_str)
        tensor_str = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            out.append("size=" + str(tuple(int(d) for d in a.shape)))
        default_complex = "complex128" if default_float == "float64" else "complex64"
        if name not in (default_float, default_complex, "int64", "bool"):
            out.append(dtype_str)
        tensor_str = _tensor_str(a, indent, floating)
    out.extend(rest)

    return _add_suffixes(prefix + tensor_str, out, indent)
