"""torch.signal.windows: scipy-style windows of M points, symmetric (``sym=True``) or
periodic (the first M of the symmetric window of M + 1 points), float32 or float64. Each is
computed on the host in float64 from PyTorch's formula and copied to the device once."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import dtypes as dt
from ..creation import _finish, _from_host
from ..device import as_device

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine",
           "general_hamming", "hamming", "hann", "kaiser", "nuttall"]


def _check(name, M, dtype, layout):
    d = dt.get_default_dtype() if dtype is None else dt.as_dtype(dtype)
    if M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    if layout is not None and str(layout) not in ("torch.strided", "strided"):
        raise ValueError(f"{name} is implemented for strided tensors only, got: {layout}")
    if d not in (dt.float32, dt.float64):
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: {d}")
    return d


def _out(values, d, device, requires_grad):
    return _finish(_from_host(np.asarray(values, np.float64), d, as_device(device)),
                   requires_grad)


def _span(M, start, step):
    """PyTorch's linspace(start, start + (M - 1) * step, M)."""
    return start + step * np.arange(M, dtype=np.float64)


def general_cosine(M, *, a: Iterable, sym=True, dtype=None, layout=None, device=None,
                   requires_grad=False):
    """w_n = sum_i (-1)^i a_i cos(2 pi i n / N), N = M - 1 if sym else M."""
    d = _check("general_cosine", M, dtype, layout)
    if M <= 1:
        return _out(np.ones(M), d, device, requires_grad)
    if not isinstance(a, Iterable):
        raise TypeError("Coefficients must be a list/tuple")
    a = list(a)
    if not a:
        raise ValueError("Coefficients cannot be empty")
    k = _span(M, 0.0, 2 * math.pi / (M - 1 if sym else M))
    w = sum((-1) ** i * c * np.cos(i * k) for i, c in enumerate(a))
    return _out(w, d, device, requires_grad)


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, layout=None, device=None,
                    requires_grad=False):
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)


def hamming(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_hamming(M, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)


def nuttall(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym,
                          dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def bartlett(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The triangle 1 - |k|, k from -1 in steps of 2 / N."""
    d = _check("bartlett", M, dtype, layout)
    if M <= 1:
        return _out(np.ones(M), d, device, requires_grad)
    k = _span(M, -1.0, 2.0 / (M - 1 if sym else M))
    return _out(1 - np.abs(k), d, device, requires_grad)


def cosine(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """sin(pi (n + 1/2) / N), N = M if sym else M + 1."""
    d = _check("cosine", M, dtype, layout)
    if M == 0:
        return _out(np.ones(0), d, device, requires_grad)
    step = math.pi / (M + 1 if not sym and M > 1 else M)
    return _out(np.sin(_span(M, 0.5 * step, step)), d, device, requires_grad)


def gaussian(M, *, std=1.0, sym=True, dtype=None, layout=None, device=None,
             requires_grad=False):
    """exp(-(n - c)^2 / (2 std^2)) about the window's center c."""
    d = _check("gaussian", M, dtype, layout)
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    if M == 0:
        return _out(np.ones(0), d, device, requires_grad)
    start = -(M if not sym and M > 1 else M - 1) / 2.0
    c = 1 / (std * math.sqrt(2))
    return _out(np.exp(-_span(M, start * c, c) ** 2), d, device, requires_grad)


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, layout=None, device=None,
                requires_grad=False):
    """exp(-|n - center| / tau); ``center`` only for periodic windows."""
    d = _check("exponential", M, dtype, layout)
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if M == 0:
        return _out(np.ones(0), d, device, requires_grad)
    if center is None:
        center = (M if not sym and M > 1 else M - 1) / 2.0
    return _out(np.exp(-np.abs(_span(M, -center / tau, 1 / tau))), d, device, requires_grad)


def kaiser(M, *, beta=12.0, sym=True, dtype=None, layout=None, device=None,
           requires_grad=False):
    """I0(beta sqrt(1 - (2n / N - 1)^2)) / I0(beta), N = M - 1 if sym else M."""
    d = _check("kaiser", M, dtype, layout)
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    if M <= 1:
        return _out(np.ones(M), d, device, requires_grad)
    k = np.minimum(_span(M, -beta, 2.0 * beta / (M - 1 if sym else M)), beta)
    return _out(np.i0(np.sqrt(np.maximum(beta * beta - k * k, 0.0))) / np.i0(beta), d,
                device, requires_grad)
