"""torch.fft: discrete Fourier transforms of complex and real tensors.

One op computes on the device: ``fft_pow2``, the unnormalized transform along the last dim
of a power-of-two length, as radix-2 Stockham passes (kernels/fft.cl); its VJP is the
transform in the other direction (the adjoint of the DFT matrix is its conjugate). Other
lengths use Bluestein's algorithm: chirp products and a convolution through power-of-two
transforms. Every public transform is composed of these and the complex ops (resizing,
scaling, the Hermitian extension of irfft), so gradients follow PyTorch's convention.

What differs from PyTorch: the ``out=`` argument is not supported."""

from __future__ import annotations

import math

import numpy as np

from . import codegen
from . import dtypes as dt
from .creation import ones, tensor, zeros
from .ops import registry
from .ops.registry import OpDef, apply, register
from .tensor import Tensor

__all__ = ["fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn",
           "ifftn", "rfftn", "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]


# --- the device op --------------------------------------------------------------------------


def _run_pow2(op, args, attrs, out=None):
    x = args[0]
    n = x._shape[-1]
    x = x.contiguous()
    real = dt.to_real(x.dtype)
    info = x.device.info
    rows = x.numel() // n if n else 0
    if n <= 1 or rows == 0:
        return x.clone()
    defines = (("T", real.cl),) + ((("USE_FP64", "1"),) if real is dt.float64 else ())
    kern = codegen.template_kernel(info, "fft.cl", "fft_radix2", defines)
    bufs = [Tensor._empty(x._shape, x.dtype, x.device) for _ in range(2 if n > 2 else 1)]
    total = rows * (n // 2)
    L = codegen.local_size(info)
    sign = 1.0 if attrs["inverse"] else -1.0
    src, soff, k, p = x._storage.buf, 2 * x._offset, 0, 1
    while p < n:
        dst = bufs[k % len(bufs)]
        registry.launch(info, kern, "fft_radix2", (max(1, -(-total // L)) * L,), (L,),
                        codegen.pack(kern, {"src": src, "soff": soff, "dst": dst._storage.buf,
                                            "total": total, "n": n, "p": p, "sign": sign}))
        src, soff, k, p = dst._storage.buf, 0, k + 1, 2 * p
    return bufs[(k - 1) % len(bufs)]


def _np_pow2(x, inverse):
    return np.fft.ifft(x) * x.shape[-1] if inverse else np.fft.fft(x)


FFT_POW2 = register(OpDef(
    "fft_pow2", "fft", _np_pow2, _run_pow2,
    lambda g, x, out, inverse: (apply(FFT_POW2, g, inverse=not inverse),),
    saves=(), saves_out=False))


# --- transforms along the last dim -------------------------------------------------------


_chirps: dict = {}


def _chirp(n: int, m: int, cdtype, device, inverse: bool):
    """Bluestein's factors for length n padded to m: w_k = exp(-+ i pi k^2 / n) for the
    output, and the transform of the conjugate chirp over -(n-1)..n-1 (wrapped into m).
    Kept on the host (a device cache would hold memory no tensor owns); uploaded per call."""
    key = (n, m, inverse)
    hit = _chirps.get(key)
    if hit is None:
        k = np.arange(n, dtype=np.int64)
        sgn = 1.0 if inverse else -1.0
        w = np.exp(sgn * 1j * np.pi * ((k * k) % (2 * n)) / n)
        b = np.zeros(m, np.complex128)
        b[:n] = np.conj(w)
        b[m - n + 1:] = np.conj(w[1:][::-1])
        if len(_chirps) >= 64:
            _chirps.clear()
        hit = _chirps[key] = (w, np.fft.fft(b))
    return tuple(tensor(c, dtype=cdtype, device=device) for c in hit)


def _last(x, inverse: bool):
    """The unnormalized transform of x (complex) along its last dim."""
    n = x._shape[-1]
    x = x.contiguous()
    if n & (n - 1) == 0:
        return apply(FFT_POW2, x, inverse=inverse)
    m = 1 << (2 * n - 2).bit_length()
    w, bf = _chirp(n, m, x.dtype, x.device, inverse)
    a = x * w
    a = _resize(a, -1, m)
    conv = apply(FFT_POW2, apply(FFT_POW2, a, inverse=False) * bf, inverse=True)
    return conv.narrow(-1, 0, n) * (w * (1.0 / m))


def _resize(x, dim: int, n: int):
    """x cut or zero-padded at the end of ``dim`` to length n."""
    have = x._shape[dim]
    if n == have:
        return x
    if n < have:
        return x.narrow(dim, 0, n)
    shape = list(x._shape)
    shape[dim] = n - have
    return registry.functions.cat([x, zeros(*shape, dtype=x.dtype, device=x.device)], dim)


_NORMS = ("backward", "ortho", "forward")


def _scale(norm, n: int, inverse: bool) -> float:
    if norm is None:
        norm = "backward"
    if norm not in _NORMS:
        raise ValueError(f'Invalid normalization mode: "{norm}"')
    if norm == "ortho":
        return 1.0 / math.sqrt(n)
    return 1.0 / n if (norm == "backward") == inverse else 1.0


def _swap(norm):
    return {None: "forward", "backward": "forward", "forward": "backward"}.get(norm, norm)


def _as_complex(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(x).__name__}")
    if x.dtype.is_complex:
        return x
    if x.dtype.is_floating_point and x.dtype in (dt.float32, dt.float64):
        return x.to(dt.to_complex(x.dtype))
    if x.dtype.kind < 2:
        return x.to(dt.to_complex(dt.get_default_dtype()))
    raise RuntimeError(f"{name}: unsupported dtype {x.dtype.name} (use float32 or float64)")


def _real_input(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(x).__name__}")
    if x.dtype.is_complex:
        raise RuntimeError(f"{name} expects a real input tensor, but got {x.dtype.scalar_type}")
    if x.dtype not in (dt.float32, dt.float64):
        return x.to(dt.get_default_dtype() if x.dtype.kind < 2 else dt.float32)
    return x


def _wrap(dim: int, ndim: int, name) -> int:
    if not -ndim <= dim < max(ndim, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-ndim}, {ndim - 1}], but got {dim})")
    return dim % ndim


def _c2c(x, n, dim, norm, inverse, name):
    """One complex transform along ``dim`` with length n (None: as is)."""
    dim = _wrap(dim, x.ndim, name)
    if n is None:
        n = x._shape[dim]
    if n < 1:
        raise RuntimeError(f"Invalid number of data points ({n}) specified")
    x = _resize(x, dim, n)
    y = _last(x.movedim(dim, -1), inverse).movedim(-1, dim)
    s = _scale(norm, n, inverse)
    return y if s == 1.0 else y * s


# --- public one-dimensional transforms ------------------------------------------------------


def fft(input, n=None, dim=-1, norm=None):
    """torch.fft.fft."""
    return _c2c(_as_complex(input, "fft"), n, dim, norm, False, "fft")


def ifft(input, n=None, dim=-1, norm=None):
    """torch.fft.ifft."""
    return _c2c(_as_complex(input, "ifft"), n, dim, norm, True, "ifft")


def rfft(input, n=None, dim=-1, norm=None):
    """torch.fft.rfft: the n // 2 + 1 non-negative frequencies of a real signal."""
    x = _real_input(input, "rfft")
    d = _wrap(dim, x.ndim, "rfft")
    n = x._shape[d] if n is None else n
    y = _c2c(_as_complex(x, "rfft"), n, d, norm, False, "rfft")
    return y.narrow(d, 0, n // 2 + 1)


def _hermitian_full(x, d: int, n: int):
    """The full length-n spectrum whose first n // 2 + 1 entries are x's (cut or padded)."""
    half = n // 2 + 1
    x = _resize(x, d, half)
    rest = n - half
    if rest <= 0:
        return x
    tail = x.narrow(d, 1, rest).flip(d).conj()
    return registry.functions.cat([x, tail], d)


def irfft(input, n=None, dim=-1, norm=None):
    """torch.fft.irfft: the real signal of length n (default 2 (m - 1)) whose rfft is the
    input; the imaginary parts of the zero and Nyquist frequencies are ignored."""
    x = _as_complex(input, "irfft")
    d = _wrap(dim, x.ndim, "irfft")
    if n is None:
        n = 2 * (x._shape[d] - 1)
    if n < 1:
        raise RuntimeError(f"Invalid number of data points ({n}) specified")
    full = _hermitian_full(x, d, n)
    return _c2c(full, n, d, norm, True, "irfft").real


def hfft(input, n=None, dim=-1, norm=None):
    """torch.fft.hfft: the real spectrum of a Hermitian-symmetric signal given by its first
    half."""
    return irfft(_as_complex(input, "hfft").conj(), n, dim, _swap(norm))


def ihfft(input, n=None, dim=-1, norm=None):
    """torch.fft.ihfft: the inverse of hfft, from a real signal."""
    return rfft(input, n, dim, _swap(norm)).conj()


# --- n-dimensional transforms ---------------------------------------------------------------


def _dims(x, s, dim, default_last: int | None = None):
    """(sizes, dims) for an n-dimensional transform as torch resolves s and dim."""
    if dim is None:
        if s is None:
            dims = list(range(x.ndim)) if default_last is None else list(
                range(x.ndim - default_last, x.ndim))
        else:
            dims = list(range(x.ndim - len(s), x.ndim))
    elif isinstance(dim, int):
        dims = [dim]
    else:
        dims = list(dim)
    dims = [_wrap(d, x.ndim, "fftn") for d in dims]
    if len(set(dims)) != len(dims):
        raise RuntimeError("FFT dims must be unique")
    if s is None:
        sizes = [None] * len(dims)
    else:
        if len(s) != len(dims):
            raise RuntimeError("When given, dim and shape arguments must have the same length")
        sizes = [None if v == -1 else v for v in s]
    return sizes, dims


def _nd(x, s, dim, norm, inverse, name, default_last=None):
    x = _as_complex(x, name)
    sizes, dims = _dims(x, s, dim, default_last)
    for n, d in zip(sizes, dims):
        x = _c2c(x, n, d, norm, inverse, name)
    return x


def fftn(input, s=None, dim=None, norm=None):
    """torch.fft.fftn."""
    return _nd(input, s, dim, norm, False, "fftn")


def ifftn(input, s=None, dim=None, norm=None):
    """torch.fft.ifftn."""
    return _nd(input, s, dim, norm, True, "ifftn")


def fft2(input, s=None, dim=(-2, -1), norm=None):
    """torch.fft.fft2."""
    return _nd(input, s, dim, norm, False, "fft2")


def ifft2(input, s=None, dim=(-2, -1), norm=None):
    """torch.fft.ifft2."""
    return _nd(input, s, dim, norm, True, "ifft2")


def rfftn(input, s=None, dim=None, norm=None):
    """torch.fft.rfftn: rfft over the last of ``dim``, then fft over the others."""
    x = _real_input(input, "rfftn")
    sizes, dims = _dims(x, s, dim)
    y = rfft(x, sizes[-1], dims[-1], norm)
    for n, d in zip(sizes[:-1], dims[:-1]):
        y = _c2c(y, n, d, norm, False, "rfftn")
    return y


def irfftn(input, s=None, dim=None, norm=None):
    """torch.fft.irfftn: ifft over all of ``dim`` but the last, then irfft over it."""
    x = _as_complex(input, "irfftn")
    sizes, dims = _dims(x, s, dim)
    for n, d in zip(sizes[:-1], dims[:-1]):
        x = _c2c(x, n, d, norm, True, "irfftn")
    return irfft(x, sizes[-1], dims[-1], norm)


def rfft2(input, s=None, dim=(-2, -1), norm=None):
    """torch.fft.rfft2."""
    return rfftn(input, s, dim, norm)


def irfft2(input, s=None, dim=(-2, -1), norm=None):
    """torch.fft.irfft2."""
    return irfftn(input, s, dim, norm)


def hfftn(input, s=None, dim=None, norm=None):
    """torch.fft.hfftn: the real n-dimensional spectrum of a Hermitian-symmetric signal given
    by the first half of its last dim: irfftn of the conjugate, the scaling swapped."""
    return irfftn(_as_complex(input, "hfftn").conj(), s, dim, _swap(norm))


def ihfftn(input, s=None, dim=None, norm=None):
    """torch.fft.ihfftn: the inverse of hfftn, from a real signal."""
    return rfftn(_real_input(input, "ihfftn"), s, dim, _swap(norm)).conj()


def hfft2(input, s=None, dim=(-2, -1), norm=None):
    """torch.fft.hfft2."""
    return hfftn(input, s, dim, norm)


def ihfft2(input, s=None, dim=(-2, -1), norm=None):
    """torch.fft.ihfft2."""
    return ihfftn(input, s, dim, norm)


# --- helpers --------------------------------------------------------------------------------


def fftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False):
    """torch.fft.fftfreq: the sample frequencies of a length-n transform."""
    k = np.concatenate([np.arange(0, (n - 1) // 2 + 1), np.arange(-(n // 2), 0)])
    return tensor(k / (d * n), dtype=dtype or dt.get_default_dtype(), device=device,
                  requires_grad=requires_grad)


def rfftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False):
    """torch.fft.rfftfreq: the non-negative sample frequencies of rfft."""
    return tensor(np.arange(n // 2 + 1) / (d * n), dtype=dtype or dt.get_default_dtype(),
                  device=device, requires_grad=requires_grad)


def _shift(x, dim, sign: int):
    if dim is None:
        dim = tuple(range(x.ndim))
    elif isinstance(dim, int):
        dim = (dim,)
    shifts = tuple(sign * (x._shape[_wrap(d, x.ndim, "fftshift")] // 2) for d in dim)
    return registry.functions.roll(x, shifts, tuple(dim))


def fftshift(input, dim=None):
    """torch.fft.fftshift: the zero frequency moved to the middle."""
    return _shift(input, dim, 1)


def ifftshift(input, dim=None):
    """torch.fft.ifftshift: the inverse of fftshift."""
    return _shift(input, dim, -1)


# --- short-time transforms (torch.stft, torch.istft) ---------------------------------------


def _window(window, win_length: int, n_fft: int, like, name: str):
    """The window (ones by default) zero-padded on both sides to n_fft."""
    if win_length is None:
        win_length = n_fft
    if not 0 < win_length <= n_fft:
        raise RuntimeError(f"{name}: expected 0 < win_length <= n_fft, but got "
                           f"win_length={win_length}")
    if window is None:
        window = ones(win_length, dtype=dt.to_real(like.dtype) if like.dtype.kind >= 2
                      else dt.get_default_dtype(), device=like.device)
    elif window.ndim != 1 or window._shape[0] != win_length:
        raise RuntimeError(f"{name}: expected a 1D window tensor of size equal to "
                           f"win_length={win_length}, but got window with size "
                           f"{list(window.shape)}")
    left = (n_fft - win_length) // 2
    if left or n_fft - win_length - left:
        window = _pad_to(window, left, n_fft - win_length - left)
    return window


def _pad_to(x, left: int, right: int):
    lead = x._shape[:-1]
    parts = [zeros(*lead, left, dtype=x.dtype, device=x.device), x,
             zeros(*lead, right, dtype=x.dtype, device=x.device)]
    return registry.functions.cat([p for p in parts if p.numel() or p is x], -1)


def _pad_signal(x, p: int, mode: str):
    """x padded by p on both ends of its last dim as nn.functional.pad's modes do."""
    if p == 0:
        return x
    n = x._shape[-1]
    if mode == "constant":
        return _pad_to(x, p, p)
    if mode == "reflect":
        if p >= n:
            raise RuntimeError(f"Argument #4: Padding size should be less than the "
                               f"corresponding input dimension, but got: padding ({p}, {p}) "
                               f"at dimension {x.ndim - 1} of input {list(x.shape)}")
        left, right = x.narrow(-1, 1, p).flip(-1), x.narrow(-1, n - 1 - p, p).flip(-1)
    elif mode == "replicate":
        shape = x._shape[:-1] + (p,)
        left, right = x.narrow(-1, 0, 1).expand(*shape), x.narrow(-1, n - 1, 1).expand(*shape)
    elif mode == "circular":
        left, right = x.narrow(-1, n - p, p), x.narrow(-1, 0, p)
    else:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    return registry.functions.cat([left, x, right], -1)


def stft(input, n_fft: int, hop_length=None, win_length=None, window=None, center=True,
         pad_mode="reflect", normalized=False, onesided=None, return_complex=None):
    """torch.stft: the Fourier transforms of overlapping windowed frames of a 1-D signal or
    a batch of them, as (batch, frequencies, frames)."""
    real_in = not input.dtype.is_complex and (window is None or not window.dtype.is_complex)
    if return_complex is None:
        if real_in:
            raise RuntimeError("stft requires the return_complex parameter be given for real "
                               "inputs, and will further require that return_complex=True in "
                               "a future PyTorch release.")
        return_complex = True
    if input.ndim not in (1, 2):
        raise RuntimeError(f"stft: expected a 1D or 2D tensor, but got {input.ndim}D")
    hop = n_fft // 4 if hop_length is None else hop_length
    if hop <= 0:
        raise RuntimeError(f"stft: expected hop_length > 0, but got hop_length={hop}")
    x = input if input.ndim == 2 else input.unsqueeze(0)
    if x.dtype.kind < 2:
        x = x.to(dt.get_default_dtype())
    if center:
        x = _pad_signal(x, n_fft // 2, pad_mode)
    if not 0 < n_fft <= x._shape[-1]:
        raise RuntimeError(f"stft: expected 0 < n_fft <= {x._shape[-1]}, but got n_fft={n_fft}")
    w = _window(window, win_length, n_fft, x, "stft")
    frames = x.unfold(-1, n_fft, hop) * w  # (batch, frames, n_fft)
    norm = "ortho" if normalized else "backward"
    if onesided is None:
        onesided = real_in
    if onesided and not real_in:
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    spec = rfft(frames, dim=-1, norm=norm) if onesided else fft(frames, dim=-1, norm=norm)
    spec = spec.transpose(-1, -2)
    if input.ndim == 1:
        spec = spec.squeeze(0)
    return spec if return_complex else registry.functions.view_as_real(spec.contiguous())


def istft(input, n_fft: int, hop_length=None, win_length=None, window=None, center=True,
          normalized=False, onesided=None, length=None, return_complex=False):
    """torch.istft: the signal whose stft is ``input``, by windowed overlap-add."""
    if not input.dtype.is_complex:
        raise RuntimeError("istft requires a complex-valued input tensor")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"istft: expected a tensor with 2 or 3 dimensions of complex "
                           f"values, but got {input.ndim}D")
    hop = n_fft // 4 if hop_length is None else hop_length
    spec = input if input.ndim == 3 else input.unsqueeze(0)
    n_freq, n_frames = spec._shape[-2], spec._shape[-1]
    if onesided is None:
        onesided = n_freq != n_fft
    if onesided and n_freq != n_fft // 2 + 1:
        raise RuntimeError(f"istft: expected the frequency dimension (size {n_freq}) to be "
                           f"n_fft // 2 + 1 = {n_fft // 2 + 1} for a onesided input")
    if not onesided and n_freq != n_fft:
        raise RuntimeError(f"istft: expected the frequency dimension (size {n_freq}) to equal "
                           f"n_fft = {n_fft}")
    if onesided and return_complex:
        raise RuntimeError("cannot have onesided output if window or input is complex")
    norm = "ortho" if normalized else "backward"
    cols = spec.transpose(-1, -2)  # (batch, frames, frequencies)
    if onesided:
        frames = irfft(cols, n_fft, -1, norm)
    else:
        frames = ifft(cols, n_fft, -1, norm)
        if not return_complex:
            frames = frames.real
    w = _window(window, win_length, n_fft, frames, "istft")
    frames = frames * w
    total = n_fft + hop * (n_frames - 1)
    pos = (np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]).reshape(-1)
    idx = tensor(pos, dtype=dt.int64, device=frames.device)
    batch = frames._shape[0]
    y = zeros(batch, total, dtype=frames.dtype, device=frames.device).index_add(
        -1, idx, frames.reshape(batch, -1))
    wsq = (w * w.conj()).real if w.dtype.is_complex else w * w
    env = zeros(total, dtype=wsq.dtype, device=wsq.device).index_add(
        0, idx, wsq.expand(n_frames, n_fft).reshape(-1))
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + length
    else:
        end = total - n_fft // 2 if center else total
    stop = min(end, total)
    y = y.narrow(-1, start, stop - start)
    env = env.narrow(-1, start, stop - start)
    if env.numel() and float(env.abs().min()) < 1e-11:
        raise RuntimeError("istft(...): window overlap add min: "
                           f"{float(env.abs().min()):g} (the window must overlap-add to a "
                           "nonzero envelope: NOLA)")
    y = y / env
    if end > total:
        y = _resize(y, -1, end - start)
    return y if input.ndim == 3 else y.squeeze(0)


registry.export("stft", stft, registry.Variants())
registry.export("istft", istft, registry.Variants())
