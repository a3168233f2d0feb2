"""Structural, statistical and creation functions checked against PyTorch (numpy where
torch is absent): unfold and the splits, the scatters into views, index_copy and put,
histograms and statistics, small linear algebra, index grids and windows, the top-level
spellings of nn.functional and the real-dtype Tensor API. Gradients in float64."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from conftest import close, torch_or_skip, uniform_leaf

import clgraph as cg
from clgraph.autograd import gradcheck

leaf = functools.partial(uniform_leaf, salt=23)


def _pair(*shape, seed=0):
    a = np.random.default_rng(seed + sum(shape)).normal(size=shape)
    return cg.from_numpy(a), a


def _same(got, ref):
    """got (a clgraph tensor or tuple of them) equals the torch result ``ref``."""
    if isinstance(ref, (tuple, list)):
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            _same(g, r)
        return
    assert tuple(got.shape) == tuple(ref.shape), (got.shape, ref.shape)
    assert str(got.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-6, atol=1e-9)


# --- torch parity, one row per call: (name, fn(lib, x, xs) where x is a (3, 5, 4) float64
# tensor of lib and xs its numpy values) -----------------------------------------------------

CASES = {
    "unfold": lambda m, x: x.unfold(1, 2, 2),
    "unfold_last": lambda m, x: x.unfold(-1, 3, 1),
    "unfold_transposed": lambda m, x: x.transpose(0, 2).unfold(2, 3, 2),
    "sum_to_size": lambda m, x: x.sum_to_size(3, 1, 4),
    "sum_to_size_lead": lambda m, x: x.sum_to_size(5, 1),
    "split_with_sizes": lambda m, x: m.split_with_sizes(x, [1, 3, 1], 1),
    "hsplit": lambda m, x: m.hsplit(x, [1, 4]),
    "vsplit": lambda m, x: x.vsplit(3),
    "dsplit": lambda m, x: m.dsplit(x, 2),
    "hsplit_1d": lambda m, x: m.hsplit(x[0, 0], 2),
    "diagflat": lambda m, x: m.diagflat(x[0, :2], 1),
    "diagflat_neg": lambda m, x: x[:2, 0, 0].diagflat(-2),
    "select_scatter": lambda m, x: m.select_scatter(x, x[:, 0] * 2, 1, -2),
    "slice_scatter": lambda m, x: m.slice_scatter(x, x[:, 1:5:2] + 1, 1, 1, 5, 2),
    "slice_scatter_default": lambda m, x: x.slice_scatter(x * 0),
    "diagonal_scatter": lambda m, x: m.diagonal_scatter(x, x.diagonal(1, 0, 1) * 3, 1, 0, 1),
    "diagonal_scatter_neg": lambda m, x: x.diagonal_scatter(x.diagonal(-1, 1, 2) - 1, -1,
                                                            1, 2),
    "index_copy": lambda m, x: x.index_copy(1, m.tensor([4, 0]), x[:, :2] * 10),
    "put": lambda m, x: x.put(m.tensor([0, -1, 7]), m.tensor([1.0, 2.0, 3.0],
                                                             dtype=m.float64)),
    "put_accumulate": lambda m, x: x.put(m.tensor([2, 2, 9]), m.tensor(
        [1.0, 2.0, 3.0], dtype=m.float64), accumulate=True),
    "narrow_copy": lambda m, x: m.narrow_copy(x, 2, 1, 2),
    "aminmax": lambda m, x: tuple(m.aminmax(x)),
    "aminmax_dim": lambda m, x: tuple(x.aminmax(dim=1, keepdim=True)),
    "nanmedian": lambda m, x: m.nanmedian(m.where(x > 0.5, float("nan"), x)),
    "nanmedian_dim": lambda m, x: tuple(m.where(x > 0.5, float("nan"), x).nanmedian(2)),
    "histc": lambda m, x: m.histc(x, 7),
    "histc_range": lambda m, x: x.histc(4, -0.5, 1.0),
    "histogram": lambda m, x: tuple(m.histogram(x, 6)),
    "histogram_edges": lambda m, x: tuple(x.histogram(
        m.tensor([-1.0, 0.0, 0.25, 2.0], dtype=m.float64), weight=x.abs(), density=True)),
    "histogram_range": lambda m, x: tuple(m.histogram(x, 3, range=(-1.0, 1.0),
                                                      density=True)),
    "cov": lambda m, x: m.cov(x[0]),
    "cov_correction": lambda m, x: x[0].cov(correction=0),
    "cov_weights": lambda m, x: m.cov(x[0], fweights=m.tensor([1, 2, 1, 3]),
                                      aweights=x[1, 0].abs()),
    "cov_1d": lambda m, x: m.cov(x[0, 0]),
    "corrcoef": lambda m, x: m.corrcoef(x[1]),
    "dist": lambda m, x: m.dist(x, x.flip(0)),
    "dist_p": lambda m, x: x.dist(x * 2, 3),
    "dist_inf": lambda m, x: x.dist(x * 2, float("inf")),
    "inner": lambda m, x: m.inner(x, x[0]),
    "inner_0d": lambda m, x: m.inner(x, x[0, 0, 0]),
    "vdot": lambda m, x: m.vdot(x[0, 0], x[1, 1]),
    "addr": lambda m, x: m.addr(x[0], x[1, :, 0], x[2, 0], beta=0.5, alpha=2),
    "addr_beta0": lambda m, x: x[0].addr(x[1, :, 0], x[2, 0], beta=0),
    "cross_dim": lambda m, x: m.cross(x[:, :3], x[:, 1:4], dim=0),
    "cross_last": lambda m, x: m.cross(x[..., :3], x[..., 1:], dim=-1),
    "chain_matmul": lambda m, x: m.chain_matmul(x[0], x[1].T, x[2]),
    "renorm": lambda m, x: m.renorm(x, 2, 1, 1.0),
    "renorm_p1": lambda m, x: x.renorm(1, -1, 0.5),
    "trapezoid": lambda m, x: m.trapezoid(x),
    "trapezoid_x": lambda m, x: m.trapezoid(x, x[0, :, 0].cumsum(0), dim=1),
    "trapz_dx": lambda m, x: m.trapz(x, dx=0.25, dim=0),
    "cumulative_trapezoid": lambda m, x: m.cumulative_trapezoid(x, dim=1),
    "vander": lambda m, x: m.vander(x[0, :, 0]),
    "vander_n": lambda m, x: m.vander(x[0, 0], 6, increasing=True),
    "adjoint": lambda m, x: x.adjoint(),
    "mH": lambda m, x: x.mH,
    "unravel_index": lambda m, x: m.unravel_index(m.tensor([0, 7, -1, 59, 60, -61]),
                                                      (3, 5, 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_parity(name):
    torch = torch_or_skip()
    a = np.random.default_rng(5).uniform(-1, 1, (3, 5, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = CASES[name](cg, cg.from_numpy(a))
        ref = CASES[name](torch, torch.from_numpy(a))
    _same(got, ref)


def test_unfold_is_a_view_and_numpy():
    x, a = _pair(4, 7)
    w = x.unfold(1, 3, 2)
    ref = np.lib.stride_tricks.sliding_window_view(a, 3, axis=1)[:, ::2]
    close(w, ref)
    assert w.data_ptr() == x.data_ptr()
    x.add_(1)
    close(w, ref + 1)


def test_unfold_0d_and_errors():
    close(cg.tensor(3.0).unfold(0, 1, 1), [3.0])
    x = cg.ones(2, 3)
    with pytest.raises(RuntimeError, match="maximum size for tensor at dimension 1 is 3 but "
                                           "size is 4"):
        x.unfold(1, 4, 1)
    with pytest.raises(RuntimeError, match="step is 0 but must be > 0"):
        x.unfold(1, 2, 0)
    with pytest.raises(IndexError):
        x.unfold(2, 1, 1)


def test_trapezoid_integer_order_of_operations():
    """PyTorch's order: dx * (left + right) / 2 with x, (sum(y) - (y[0] + y[-1]) / 2) * dx
    without; uint8 operands wrap where PyTorch's do. An empty dim: zeros of y's dtype
    (trapezoid), an empty floating result (cumulative_trapezoid)."""
    y = np.array([[3, 200, 7], [250, 1, 90]], np.uint8)
    x = np.array([[1, 5, 2], [9, 0, 4]], np.uint8)
    # with x: dx = (4, 253) and (247, 4) in uint8; dx * (l + r) wraps mod 256
    close(cg.trapezoid(cg.tensor(y), cg.tensor(x)), [(44 + 147) / 2, (45 + 108) / 2])
    close(cg.cumulative_trapezoid(cg.tensor(y), cg.tensor(x)), [[22.0, 95.5], [22.5, 76.5]])
    # without: y.sum() is int64, y[0] + y[-1] wraps (250 + 90 = 84 in uint8)
    close(cg.trapezoid(cg.tensor(y)), [210 - 5.0, 341 - 42.0])
    close(cg.trapezoid(cg.tensor(y), dx=2), [410.0, 598.0])
    r = cg.trapezoid(cg.zeros(2, 0, dtype=cg.int8))
    assert r.dtype == cg.int8 and r.tolist() == [0, 0]
    r = cg.cumulative_trapezoid(cg.zeros(2, 0, dtype=cg.int16))
    assert r.dtype == cg.float32 and r.shape == (2, 0)


def test_cov_dtype_promotes_with_aweights():
    """The result has the dtype of input and aweights promoted (PyTorch's arithmetic);
    integer input without aweights takes the default float dtype."""
    a = np.random.default_rng(3).standard_normal((2, 4))
    aw = np.array([0.5, 1.0, 2.0, 0.25])
    fw = np.array([1, 2, 1, 1])
    for xd, ad, want in (("float16", "float32", "float32"), ("float32", "float64", "float64"),
                         ("bfloat16", "float16", "float32"), ("int64", "float16", "float16"),
                         ("int64", None, "float32"), ("float16", None, "float16")):
        x = cg.tensor(a).to(getattr(cg, xd))
        w = cg.tensor(aw).to(getattr(cg, ad)) if ad else None
        got = cg.cov(x, aweights=w, fweights=cg.tensor(fw))
        assert got.dtype == getattr(cg, want), (xd, ad, got.dtype)
        ref = np.cov(x.to(cg.float64).numpy(), fweights=fw, aweights=aw if ad else None)
        close(got.to(cg.float64), ref, rtol=2e-2 if "16" in want else 1e-5)


def test_numpy_references():
    x, a = _pair(4, 6)
    close(cg.diagflat(x[:2]), np.diagflat(a[:2]))
    close(cg.inner(x, x), np.inner(a, a))
    close(cg.vdot(x[0], x[1]), np.vdot(a[0], a[1]))
    close(cg.cov(x), np.cov(a))
    close(cg.corrcoef(x), np.corrcoef(a))
    close(cg.trapezoid(x), np.trapezoid(a) if hasattr(np, "trapezoid") else np.trapz(a))
    close(cg.vander(x[0]), np.vander(a[0]))
    close(cg.histc(x, 5), np.histogram(a, 5)[0].astype(np.float64))
    r, c = np.triu_indices(4, 1, 6)
    close(cg.triu_indices(4, 6, 1), np.stack([r, c]))
    close(cg.logspace(0, 3, 4, dtype=cg.float64), np.logspace(0, 3, 4))
    close(cg.hann_window(8, periodic=False, dtype=cg.float64), np.hanning(8))
    close(cg.hamming_window(7, periodic=False, dtype=cg.float64), np.hamming(7))
    close(cg.blackman_window(9, periodic=False, dtype=cg.float64), np.blackman(9), atol=1e-12)
    close(cg.bartlett_window(6, periodic=False, dtype=cg.float64), np.bartlett(6))
    close(cg.kaiser_window(5, periodic=False, beta=8.0, dtype=cg.float64), np.kaiser(5, 8.0))


@pytest.mark.parametrize("name", ["tril_indices", "triu_indices"])
@pytest.mark.parametrize("args", [(4, 3, 0), (3, 5, 1), (5, 2, -2), (0, 3, 0), (3, 3, 9)])
def test_tri_indices(name, args):
    torch = torch_or_skip()
    _same(getattr(cg, name)(*args), getattr(torch, name)(*args))


@pytest.mark.parametrize("window", ["hann", "hamming", "blackman", "bartlett", "kaiser"])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 10])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows(window, n, periodic):
    torch = torch_or_skip()
    got = getattr(cg, window + "_window")(n, periodic, dtype=cg.float64)
    ref = getattr(torch, window + "_window")(n, periodic, dtype=torch.float64)
    _same(got, ref)
    assert getattr(cg, window + "_window")(4).dtype is cg.float32  # periodic by default
    close(getattr(cg, window + "_window")(4, dtype=cg.float64),
          getattr(torch, window + "_window")(4, dtype=torch.float64).numpy(), atol=1e-12)


def test_logspace():
    torch = torch_or_skip()
    _same(cg.logspace(-2, 1, 7, dtype=cg.float64), torch.logspace(-2, 1, 7,
                                                                 dtype=torch.float64))
    _same(cg.logspace(0, 4, 5, base=2, dtype=cg.int64), torch.logspace(0, 4, 5, base=2,
                                                                      dtype=torch.int64))
    assert cg.logspace(0, 1, 0).shape == (0,)


def test_in_place_forms():
    torch = torch_or_skip()
    a = np.random.default_rng(1).normal(size=(4, 5))
    x, t = cg.from_numpy(a.copy()), torch.from_numpy(a.copy())
    i, s = [3, 1], a[:2] * 7
    x.index_copy_(0, cg.tensor(i), cg.from_numpy(s))
    t.index_copy_(0, torch.tensor(i), torch.from_numpy(s))
    _same(x, t)
    x.put_(cg.tensor([0, 0, -1]), cg.from_numpy(s[0, :3].copy()), accumulate=True)
    t.put_(torch.tensor([0, 0, -1]), torch.from_numpy(s[0, :3].copy()), accumulate=True)
    _same(x, t)
    v = cg.from_numpy(a[0].copy())
    x.addr_(v[:4], v)
    t.addr_(torch.from_numpy(a[0, :4].copy()), torch.from_numpy(a[0].copy()))
    _same(x, t)


def test_torch_cross_default_dim():
    torch = torch_or_skip()
    a = np.random.default_rng(2).normal(size=(2, 3, 3))
    with pytest.warns(UserWarning, match="without specifying the dim"):
        got = cg.cross(cg.from_numpy(a), cg.from_numpy(a[::-1].copy()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.cross(torch.from_numpy(a), torch.from_numpy(a[::-1].copy()))
    _same(got, ref)


def test_sum_to_size_dtypes():
    # summing an integer or bool tensor widens to int64, as sum(); a 0-d tensor summed to
    # size [] is a sum too; a tensor already of the size is returned as it is
    for dt in (cg.int32, cg.uint8, cg.bool):
        x = cg.ones(2, 3, dtype=dt)
        for size, dtype, value in (([], cg.int64, 6), ([3], cg.int64, [2, 2, 2]),
                                   ([2, 3], dt, x.tolist())):
            got = x.sum_to_size(size)
            assert got.dtype == dtype and got.tolist() == value
        got = cg.tensor(1, dtype=dt).sum_to_size([])
        assert got.dtype == cg.int64 and got.tolist() == 1
    assert cg.ones((), dtype=cg.float16).sum_to_size([]).dtype == cg.float16


def test_nonzero_static():
    torch = torch_or_skip()
    a = np.array([[0, 1, 2], [3, 0, 0]])
    for size, fill in ((2, -1), (3, -1), (6, 9), (0, -1)):
        _same(cg.nonzero_static(cg.tensor(a), size=size, fill_value=fill),
              torch.nonzero_static(torch.tensor(a), size=size, fill_value=fill))


# --- gradients ---------------------------------------------------------------------------

GRADS = {
    "unfold": (lambda x: x.unfold(1, 3, 2), [(3, 7)]),
    "unfold_overlap": (lambda x: x.unfold(0, 3, 1) * 2, [(5, 2)]),
    "sum_to_size": (lambda x: x.sum_to_size(1, 4), [(3, 4)]),
    "hsplit": (lambda x: cg.hsplit(x, [1])[1] * 3, [(2, 3)]),
    "select_scatter": (lambda x, s: cg.select_scatter(x, s, 0, 1), [(3, 4), (4,)]),
    "slice_scatter": (lambda x, s: cg.slice_scatter(x, s, 1, 0, 4, 2), [(3, 5), (3, 2)]),
    "diagonal_scatter": (lambda x, s: cg.diagonal_scatter(x, s, -1), [(4, 3), (3,)]),
    "index_copy": (lambda x, s: x.index_copy(0, cg.tensor([2, 0]), s), [(3, 4), (2, 4)]),
    "put": (lambda x, s: x.put(cg.tensor([1, -2]), s), [(2, 3), (2,)]),
    "narrow_copy": (lambda x: cg.narrow_copy(x, 0, 1, 2), [(4, 2)]),
    "aminmax": (lambda x: cg.aminmax(x, dim=0).max - cg.aminmax(x, dim=0).min, [(3, 4)]),
    "nanmedian": (lambda x: cg.nanmedian(x, 1).values, [(3, 5)]),
    "cov": (lambda x: cg.cov(x), [(3, 6)]),
    "cov_weights": (lambda x, w: cg.cov(x, aweights=w), [(2, 5), (5,)]),
    "corrcoef": (lambda x: cg.corrcoef(x), [(3, 6)]),
    "dist": (lambda x, y: cg.dist(x, y, 3), [(3, 4), (4,)]),
    "inner": (lambda x, y: cg.inner(x, y), [(2, 3), (4, 3)]),
    "vdot": (lambda x, y: cg.vdot(x, y), [(5,), (5,)]),
    "addr": (lambda m, u, v: cg.addr(m, u, v, beta=0.5, alpha=3), [(3, 4), (3,), (4,)]),
    "cross": (lambda x, y: cg.cross(x, y, dim=1), [(2, 3), (2, 3)]),
    "chain_matmul": (lambda a, b, c: cg.chain_matmul(a, b, c), [(2, 3), (3, 4), (4, 2)]),
    "renorm": (lambda x: cg.renorm(x, 2, 0, 0.8), [(3, 4)]),
    "trapezoid": (lambda y, x: cg.trapezoid(y, x), [(3, 5), (5,)]),
    "cumulative_trapezoid": (lambda y: cg.cumulative_trapezoid(y, dx=0.5, dim=0), [(4, 3)]),
    "vander": (lambda x: cg.vander(x, 4), [(3,)]),
    "diagflat": (lambda x: cg.diagflat(x, 1), [(2, 2)]),
    "adjoint": (lambda x: x.mH * 2, [(2, 3, 4)]),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradients(name):
    fn, shapes = GRADS[name]
    inputs = [leaf(*s, seed=i) for i, s in enumerate(shapes)]
    if name == "cov_weights":
        inputs[1] = (inputs[1].detach().abs() + 0.5).requires_grad_()
    assert gradcheck(fn, inputs)


# --- errors name the bad value ------------------------------------------------------------

ERRORS = [
    (lambda: cg.ones(2, 3).sum_to_size(2, 2), RuntimeError,
     r"size \{\[2, 2\]\} is not expandable to size \{\[2, 3\]\}"),
    (lambda: cg.hsplit(cg.ones(2, 5), 2), RuntimeError, "size of the dimension 5 is not "
                                                       "divisible by the split_size 2"),
    (lambda: cg.vsplit(cg.ones(4), 2), RuntimeError, "at least 2 dimension, but got a tensor "
                                                     "with 1 dimensions"),
    (lambda: cg.dsplit(cg.ones(2, 2), 2), RuntimeError, "at least 3 dimension"),
    (lambda: cg.split_with_sizes(cg.ones(5), [2, 2]), RuntimeError, "sum exactly to 5"),
    (lambda: cg.select_scatter(cg.ones(3, 4), cg.ones(3), 0, 0), RuntimeError,
     r"src size = \[3\], slice size = \[4\]"),
    (lambda: cg.index_copy(cg.ones(3, 4), 0, cg.tensor([0]), cg.ones(2, 4)), IndexError,
     r"Number of indices \(1\) should be equal to source.size\(dim\) \(2\)"),
    (lambda: cg.ones(3).put(cg.tensor([3]), cg.ones(1)), IndexError,
     "tried to access index 3 on a tensor of 3"),
    (lambda: cg.ones(3).put(cg.tensor([0, 1]), cg.ones(1)), RuntimeError,
     "source.numel\\(\\) = 1, index.numel\\(\\) = 2"),
    (lambda: cg.unravel_index(cg.tensor([1.5]), (3, 4)), TypeError,
     "expected 'indices' to be integer dtype, but got torch.float32"),
    (lambda: cg.histc(cg.ones(3), 0), RuntimeError, "bins must be > 0, but got 0"),
    (lambda: cg.histc(cg.ones(3), 4, 2, 1), RuntimeError, "min=2 max=1"),
    (lambda: cg.cov(cg.ones(2, 2, 2)), RuntimeError, "got an input with 3 dimensions"),
    (lambda: cg.cov(cg.ones(2, 3), fweights=cg.tensor([1, 1])), RuntimeError,
     "2 != 3"),
    (lambda: cg.cov(cg.ones(2, 3), fweights=cg.ones(3)), RuntimeError,
     "expected fweights to have integral dtype but got fweights with Float dtype"),
    (lambda: cg.cov(cg.ones(2, 3), aweights=cg.tensor([1, 2, 1])), RuntimeError,
     "expected aweights to have floating point dtype but got aweights with Long dtype"),
    (lambda: cg.vdot(cg.ones(2, 2), cg.ones(2)), RuntimeError, "got 2D and 1D tensors"),
    (lambda: cg.inner(cg.ones(2, 3), cg.ones(4)), RuntimeError, r"\[2, 3\] and \[4\]"),
    (lambda: cg.addr(cg.ones(2, 2), cg.ones(2, 1), cg.ones(2)), RuntimeError,
     "vec1, but got 2-D"),
    (lambda: cg.chain_matmul(cg.ones(2, 2), cg.ones(2)), RuntimeError,
     "Tensor dimension is 1, expected 2"),
    (lambda: cg.cross(cg.ones(2, 4), cg.ones(2, 4), dim=1), RuntimeError,
     "must have length 3. Got 4 and 4"),
    (lambda: cg.renorm(cg.ones(2, 2), -1, 0, 1.0), RuntimeError, "p=-1"),
    (lambda: cg.vander(cg.ones(2, 2)), RuntimeError, "one-dimensional"),
    (lambda: cg.tril_indices(-1, 3), RuntimeError, "got -1"),
    (lambda: cg.hann_window(-2), RuntimeError, "window_length=-2"),
    (lambda: cg.logspace(0, 1, -3), RuntimeError, "got -3"),
    (lambda: cg.nonzero_static(cg.ones(2), size=-1), RuntimeError, "size: -1"),
    (lambda: cg.ones(2).adjoint(), RuntimeError, "Got 1-D tensor"),
    (lambda: cg.ones(2).is_nonzero(), RuntimeError, "more than one value"),
    (lambda: cg.ones(0).is_nonzero(), RuntimeError, "no values"),
    (lambda: cg.ones(2).imag, RuntimeError, "non-complex dtypes"),
    (lambda: cg.nn.functional.pixel_unshuffle(cg.ones(1, 1, 3, 4), 2), RuntimeError,
     r"input.size\(-2\)=3 is not divisible by 2"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors(k):
    fn, exc, pattern = ERRORS[k]
    with pytest.raises(exc, match=pattern):
        fn()


# --- the top-level spellings of nn.functional and the real-dtype Tensor API -------------

ALIASES = ["cosine_similarity", "pairwise_distance", "pixel_shuffle", "pixel_unshuffle",
           "pdist", "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
           "triplet_margin_loss", "kl_div", "poisson_nll_loss",
           "binary_cross_entropy_with_logits", "layer_norm", "group_norm", "instance_norm",
           "batch_norm", "embedding", "dropout", "alpha_dropout", "feature_alpha_dropout",
           "conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "avg_pool1d", "max_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d",
           "bilinear", "channel_shuffle", "rms_norm"]


@pytest.mark.parametrize("name", ALIASES)
def test_functional_spellings(name):
    assert getattr(cg, name) is getattr(cg.nn.functional, name)


def test_functional_values():
    torch = torch_or_skip()
    a = np.random.default_rng(3).normal(size=(2, 8, 4, 6))
    _same(cg.pixel_unshuffle(cg.from_numpy(a), 2), torch.pixel_unshuffle(torch.from_numpy(a),
                                                                          2))
    _same(cg.pixel_shuffle(cg.pixel_unshuffle(cg.from_numpy(a), 2), 2), torch.from_numpy(a))
    _same(cg.cosine_similarity(cg.from_numpy(a), cg.from_numpy(a[::-1].copy())),
          torch.cosine_similarity(torch.from_numpy(a), torch.from_numpy(a[::-1].copy())))
    _same(cg.constant_pad_nd(cg.from_numpy(a), [1, 2, 0, 1], 0.5),
          torch.constant_pad_nd(torch.from_numpy(a), [1, 2, 0, 1], 0.5))
    x = cg.from_numpy(a)
    assert cg.feature_alpha_dropout(x, 0.5, training=False) is x
    y = cg.feature_alpha_dropout(x, 0.5, training=True)
    per_channel = (y - x * 0).reshape(2, 8, -1).numpy()
    dropped = np.all(np.isclose(per_channel, per_channel[..., :1]), axis=-1)
    assert dropped.any() and not dropped.all()  # whole channels are set to one constant


def test_real_dtype_tensor_api():
    torch = torch_or_skip()
    x = cg.arange(6.0).reshape(2, 3)
    for name in ("conj", "resolve_conj", "resolve_neg", "conj_physical"):
        assert getattr(cg, name)(x) is x and getattr(x, name)() is x
    assert not x.is_conj() and not cg.is_neg(x)
    assert x.real is x and cg.real(x) is x
    with pytest.raises(RuntimeError, match="non-complex"):
        cg.imag(x)
    assert cg.detach(x.requires_grad_()).requires_grad is False
    for dtype, tdtype in ((cg.float32, torch.float32), (cg.int64, torch.int64),
                          (cg.uint8, torch.uint8), (cg.bool, torch.bool), (cg.int8, torch.int8)):
        assert cg.ones(1, dtype=dtype).is_signed() == torch.ones(1, dtype=tdtype).is_signed()
        assert cg.is_signed(cg.ones(1, dtype=dtype)) == torch.ones(1, dtype=tdtype).is_signed()
    assert cg.tensor([2.0]).is_nonzero() and not cg.is_nonzero(cg.tensor(0))
    assert x.is_same_size(cg.ones(2, 3)) and not cg.is_same_size(x, cg.ones(3, 2))
    assert x.get_device() == x.device.index
    y = cg.arange(10, dtype=cg.float64)
    assert y[3:].data_ptr() - y.data_ptr() == 3 * 8
    assert y.data_ptr() != 0


def test_feature_alpha_dropout_module_drops_whole_channels():
    """nn.FeatureAlphaDropout: in training a channel is kept or set to SELU's saturation as a
    whole (then the same affine map for all); in eval the input passes through."""
    cg.manual_seed(1)
    x = cg.randn(6, 10, 4, 4)
    m = cg.nn.FeatureAlphaDropout(0.4)
    y = m(x).numpy()
    a = 1.0 / np.sqrt((1.7580993408473766 ** 2 * 0.4 + 1) * 0.6)
    # a kept channel is a * x + b (y - a x constant), a dropped one a constant
    kept = np.ptp((y - a * x.numpy()).reshape(6, 10, -1), -1) < 1e-5
    dropped = np.ptp(y.reshape(6, 10, -1), -1) < 1e-6
    assert np.all(kept ^ dropped) and 0 < dropped.mean() < 1
    m.eval()
    assert m(x) is x
