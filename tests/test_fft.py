"""torch.fft on the device: values against numpy.fft for power-of-two and other lengths,
every norm, n/s and dim; gradients against PyTorch and central differences."""

import numpy as np
import pytest

import clgraph as cg

RNG = np.random.default_rng(11)
NORMS = [None, "backward", "ortho", "forward"]


def crandn(*shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


def close(t, ref, tol=1e-9):
    got = t.detach().numpy()
    ref = np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    scale = max(1.0, float(np.abs(ref).max()) if ref.size else 1.0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 100, 1000, 4096])
def test_fft_ifft_sizes(n):
    x = crandn(2, n)
    t = cg.tensor(x)
    close(cg.fft.fft(t), np.fft.fft(x))
    close(cg.fft.ifft(t), np.fft.ifft(x))
    x32 = x.astype(np.complex64)
    y = cg.fft.fft(cg.tensor(x32))
    assert y.dtype is cg.complex64
    close(y, np.fft.fft(x32.astype(np.complex128)), 2e-6)


@pytest.mark.parametrize("norm", NORMS)
def test_one_dimensional_transforms(norm):
    x, r = crandn(3, 10, 4), RNG.standard_normal((3, 10, 4))
    t, tr = cg.tensor(x), cg.tensor(r)
    for n, dim in [(None, 1), (16, 1), (6, 1), (5, -1), (None, 0)]:
        close(cg.fft.fft(t, n, dim, norm), np.fft.fft(x, n, dim, norm))
        close(cg.fft.ifft(t, n, dim, norm), np.fft.ifft(x, n, dim, norm))
        close(cg.fft.fft(tr, n, dim, norm), np.fft.fft(r, n, dim, norm))
        close(cg.fft.rfft(tr, n, dim, norm), np.fft.rfft(r, n, dim, norm))
        close(cg.fft.irfft(t, n, dim, norm), np.fft.irfft(x, n, dim, norm))
        close(cg.fft.hfft(t, n, dim, norm), np.fft.hfft(x, n, dim, norm))
        close(cg.fft.ihfft(tr, n, dim, norm), np.fft.ihfft(r, n, dim, norm))
    assert cg.fft.rfft(tr).dtype is cg.complex128
    assert cg.fft.irfft(t).dtype is cg.float64
    assert cg.fft.rfft(tr.float()).dtype is cg.complex64
    assert cg.fft.fft(cg.tensor([1, 2, 3])).dtype is cg.complex64


@pytest.mark.parametrize("norm", NORMS)
def test_n_dimensional_transforms(norm):
    x, r = crandn(4, 6, 5), RNG.standard_normal((4, 6, 5))
    t, tr = cg.tensor(x), cg.tensor(r)
    close(cg.fft.fft2(t, norm=norm), np.fft.fft2(x, norm=norm))
    close(cg.fft.ifft2(t, norm=norm), np.fft.ifft2(x, norm=norm))
    close(cg.fft.fftn(t, norm=norm), np.fft.fftn(x, norm=norm))
    close(cg.fft.ifftn(t, norm=norm), np.fft.ifftn(x, norm=norm))
    close(cg.fft.fftn(t, s=(8, 3), dim=(0, 2), norm=norm),
          np.fft.fftn(x, s=(8, 3), axes=(0, 2), norm=norm))
    close(cg.fft.ifftn(t, s=(3, 4), norm=norm), np.fft.ifftn(x, s=(3, 4), axes=(1, 2),
                                                           norm=norm))
    close(cg.fft.rfft2(tr, norm=norm), np.fft.rfft2(r, norm=norm))
    close(cg.fft.rfftn(tr, norm=norm), np.fft.rfftn(r, norm=norm))
    close(cg.fft.rfftn(tr, s=(4, 8), dim=(0, 1), norm=norm),
          np.fft.rfftn(r, s=(4, 8), axes=(0, 1), norm=norm))
    close(cg.fft.irfft2(t, norm=norm), np.fft.irfft2(x, norm=norm))
    close(cg.fft.irfftn(t, norm=norm), np.fft.irfftn(x, norm=norm))
    close(cg.fft.irfftn(t, s=(5, 7), norm=norm), np.fft.irfftn(x, s=(5, 7), axes=(1, 2),
                                                           norm=norm))


@pytest.mark.parametrize("norm", NORMS)
def test_hermitian_n_dimensional_transforms(norm):
    sfft = pytest.importorskip("scipy.fft")
    x, r = crandn(3, 4, 5), RNG.standard_normal((3, 4, 6))
    t, tr = cg.tensor(x), cg.tensor(r)
    close(cg.fft.hfft2(t, norm=norm), sfft.hfft2(x, norm=norm))
    close(cg.fft.hfftn(t, norm=norm), sfft.hfftn(x, norm=norm))
    close(cg.fft.hfftn(t, s=(3, 8), dim=(0, 2), norm=norm),
          sfft.hfftn(x, s=(3, 8), axes=(0, 2), norm=norm))
    close(cg.fft.ihfft2(tr, norm=norm), sfft.ihfft2(r, norm=norm))
    close(cg.fft.ihfftn(tr, norm=norm), sfft.ihfftn(r, norm=norm))
    close(cg.fft.ihfftn(tr, s=(2, 5), dim=(0, 1), norm=norm),
          sfft.ihfftn(r, s=(2, 5), axes=(0, 1), norm=norm))


def test_round_trips():
    r = RNG.standard_normal((3, 9))
    tr = cg.tensor(r)
    close(cg.fft.irfft(cg.fft.rfft(tr), 9), r)
    close(cg.fft.ifft(cg.fft.fft(tr)).real, r)
    close(cg.fft.ihfft(cg.fft.hfft(cg.fft.ihfft(tr), 9)), np.fft.ihfft(r))


def test_freq_and_shift():
    for n in (1, 6, 7):
        close(cg.fft.fftfreq(n), np.fft.fftfreq(n).astype(np.float32), 1e-7)
        close(cg.fft.rfftfreq(n, 0.5, dtype=cg.float64), np.fft.rfftfreq(n, 0.5))
    assert cg.fft.fftfreq(4).dtype is cg.float32
    x = crandn(4, 5)
    t = cg.tensor(x)
    close(cg.fft.fftshift(t), np.fft.fftshift(x))
    close(cg.fft.ifftshift(t), np.fft.ifftshift(x))
    close(cg.fft.fftshift(t, dim=1), np.fft.fftshift(x, axes=1))
    close(cg.fft.ifftshift(t, dim=(0,)), np.fft.ifftshift(x, axes=(0,)))


def test_bad_input():
    with pytest.raises(ValueError, match="normalization"):
        cg.fft.fft(cg.ones(4), norm="bad")
    with pytest.raises(RuntimeError, match="real input"):
        cg.fft.rfft(cg.ones(4, dtype=cg.cfloat))
    with pytest.raises(IndexError):
        cg.fft.fft(cg.ones(4), dim=2)
    with pytest.raises(RuntimeError, match="data points"):
        cg.fft.fft(cg.ones(4), n=0)


GRAD_FNS = {
    "fft": lambda lib, z, r: (lib.fft.fft(z, norm="ortho") * z).abs().sum(),
    "ifft_n": lambda lib, z, r: lib.fft.ifft(z, n=5).abs().pow(2).sum(),
    "rfft": lambda lib, z, r: (lib.fft.rfft(r, n=7) * z[:4]).real.sum(),
    "irfft": lambda lib, z, r: (lib.fft.irfft(z, n=10) * lib.cat([r, r[:4]])).sum(),
    "irfft_odd": lambda lib, z, r: lib.fft.irfft(z, norm="forward").pow(2).sum(),
    "hfft": lambda lib, z, r: (lib.fft.hfft(z) ** 2).sum(),
    "ihfft": lambda lib, z, r: lib.fft.ihfft(r).abs().sum(),
    "fft2": lambda lib, z, r: lib.fft.fft2(z.reshape(2, 3)).abs().sum(),
    "rfft2": lambda lib, z, r: lib.fft.rfft2(r.reshape(2, 3)).abs().sum(),
    "irfftn": lambda lib, z, r: (lib.fft.irfftn(z.reshape(3, 2)) * 2).pow(2).sum(),
    "hfft2": lambda lib, z, r: (lib.fft.hfft2(z.reshape(2, 3)) ** 2).sum(),
    "ihfftn": lambda lib, z, r: lib.fft.ihfftn(r.reshape(2, 3)).abs().sum(),
}


@pytest.mark.parametrize("name", sorted(GRAD_FNS))
def test_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    z, r = crandn(6), RNG.standard_normal(6)
    fn = GRAD_FNS[name]
    tz = torch.tensor(z, requires_grad=True)
    tr = torch.tensor(r, requires_grad=True)
    want = fn(torch, tz, tr)
    want.backward()
    cz = cg.tensor(z, requires_grad=True)
    cr = cg.tensor(r, requires_grad=True)
    got = fn(cg, cz, cr)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-9)
    got.backward()
    for c, t in ((cz, tz), (cr, tr)):
        if t.grad is None:
            assert c.grad is None or not np.abs(c.grad.numpy()).any()
        else:
            close(c.grad, t.grad.resolve_conj().numpy(), 1e-9)


@pytest.mark.parametrize("n", [8, 6])
def test_gradient_finite_differences(n):
    w = cg.tensor(crandn(n))

    def loss(t):
        return (cg.fft.fft(t) * w).abs().sum() + cg.fft.irfft(t, n).pow(2).sum()

    z = crandn(n)
    t = cg.tensor(z, requires_grad=True)
    loss(t).backward()
    eps = 1e-6
    fd = np.zeros_like(z)
    for k in range(n):
        for unit in (1, 1j):
            d = np.zeros_like(z)
            d[k] = eps * unit
            fd[k] += unit * (loss(cg.tensor(z + d)).item() - loss(cg.tensor(z - d)).item()) / (
                2 * eps)
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [16, 12])
def test_compiled_spectrum(n):
    x = RNG.standard_normal((4, n)).astype(np.float32)

    def f(a):
        return cg.fft.irfft(cg.fft.rfft(a) * 0.5, n) + cg.fft.fft(a).abs()

    cf = cg.compile(f)
    a = cg.tensor(x)
    want = f(a).numpy()
    for _ in range(3):
        np.testing.assert_allclose(cf(a).numpy(), want, rtol=1e-5, atol=1e-5)
    a2 = cg.tensor(x * 3)
    np.testing.assert_allclose(cf(a2).numpy(), f(a2).numpy(), rtol=1e-5, atol=1e-5)


STFT_CASES = [dict(n_fft=16), dict(n_fft=16, hop_length=5, window="hann"),
              dict(n_fft=16, win_length=10, center=False),
              dict(n_fft=15, normalized=True, window="hann15", pad_mode="constant"),
              dict(n_fft=16, onesided=False, window="hann")]


def _stft_args(lib, case):
    k = dict(case)
    if k.get("window") == "hann":
        k["window"] = lib.tensor(np.hanning(16))
    elif k.get("window") == "hann15":
        k["window"] = lib.tensor(np.hanning(15) + 0.1)
    return k


@pytest.mark.filterwarnings("ignore:A window was not provided")
@pytest.mark.parametrize("case", range(len(STFT_CASES)))
def test_stft_istft_match_torch(case):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 50))
    kw = STFT_CASES[case]
    a = torch.stft(torch.tensor(x), return_complex=True, **_stft_args(torch, kw))
    b = cg.stft(cg.tensor(x), return_complex=True, **_stft_args(cg, kw))
    close(b, a.numpy())
    close(cg.stft(cg.tensor(x[0]), return_complex=True, **_stft_args(cg, kw)), a[0].numpy())
    if kw.get("center", True) and "win_length" not in kw:
        ka = _stft_args(torch, kw)
        kb = _stft_args(cg, kw)
        ka.pop("pad_mode", None)
        kb.pop("pad_mode", None)
        ia = torch.istft(a, length=50, **ka)
        ib = cg.istft(b, length=50, **kb)
        close(ib, ia.numpy())
        close(ib, x)
        close(cg.istft(b, **kb), torch.istft(a, **ka).numpy())


def test_stft_errors_and_real_output():
    x = cg.tensor(RNG.standard_normal(40))
    with pytest.raises(RuntimeError, match="return_complex"):
        cg.stft(x, 8)
    r = cg.stft(x, 8, window=cg.ones(8), return_complex=False)
    assert r.shape == (5, 21, 2) and r.dtype is cg.float64
    with pytest.raises(RuntimeError, match="overlap add"):
        cg.istft(cg.stft(x, 8, window=cg.zeros(8), return_complex=True), 8,
                 window=cg.zeros(8))


def test_stft_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(30)
    w = np.hanning(8)

    def loss(lib, t):
        s = lib.stft(t, 8, hop_length=3, window=lib.tensor(w), return_complex=True)
        return s.abs().sum() + lib.istft(s * s.abs(), 8, hop_length=3,
                                         window=lib.tensor(w)).pow(2).sum()

    tx = torch.tensor(x, requires_grad=True)
    loss(torch, tx).backward()
    cx = cg.tensor(x, requires_grad=True)
    loss(cg, cx).backward()
    close(cx.grad, tx.grad.numpy(), 1e-8)


SIGNAL_WINDOWS = [("bartlett", {}, ("bartlett",)), ("blackman", {}, ("blackman",)),
                  ("cosine", {}, ("cosine",)), ("hann", {}, ("hann",)),
                  ("hamming", {}, ("hamming",)), ("nuttall", {}, ("nuttall",)),
                  ("gaussian", {"std": 0.7}, ("gaussian", 0.7)),
                  ("kaiser", {"beta": 3.0}, ("kaiser", 3.0)),
                  ("general_hamming", {"alpha": 0.6}, ("general_hamming", 0.6)),
                  ("general_cosine", {"a": [0.46, 0.23, 0.31]},
                   ("general_cosine", [0.46, 0.23, 0.31])),
                  ("exponential", {"tau": 0.5}, ("exponential", None, 0.5))]


@pytest.mark.parametrize("name, kw, spec", SIGNAL_WINDOWS)
def test_signal_windows_match_scipy(name, kw, spec):
    sw = pytest.importorskip("scipy.signal.windows")
    fn = getattr(cg.signal.windows, name)
    for m in (0, 1, 2, 7, 8):
        for sym in (True, False):
            want = sw.get_window(spec, m, fftbins=not sym) if m else np.ones(0)
            if name == "nuttall" and m:  # scipy's nuttall is the same 4-term window
                want = sw.nuttall(m, sym=sym)
            got = fn(m, sym=sym, dtype=cg.float64, **kw)
            assert got.dtype == cg.float64
            close(got, want, 1e-7)
    assert fn(5, **kw).dtype == cg.float32


def test_signal_window_errors():
    w = cg.signal.windows
    with pytest.raises(ValueError, match="non-negative window length, got M=-1"):
        w.hann(-1)
    with pytest.raises(ValueError, match="expects float32 or float64 dtypes"):
        w.hann(3, dtype=cg.int64)
    with pytest.raises(ValueError, match="Center must be None for symmetric windows"):
        w.exponential(3, center=1.0)
    close(w.exponential(6, sym=False, center=1.0), np.exp(-np.abs(np.arange(6.0) - 1.0)), 1e-6)
    with pytest.raises(ValueError, match="beta must be non-negative"):
        w.kaiser(3, beta=-1.0)
