"""Tests for clgraph._format: PyTorch-identical tensor printing from numpy.

The hard-coded expectations below were copied from ``repr(torch.tensor(...))``
(PyTorch 2.13.0, default print options). The parity tests compare against a
live torch and are skipped when torch is not installed.
"""

import numpy as np
import pytest

from clgraph import _format
from clgraph._format import format_tensor, printoptions, set_printoptions
from conftest import torch_or_skip


@pytest.fixture(autouse=True)
def _default_printoptions():
    set_printoptions(profile="default")
    yield
    set_printoptions(profile="default")


# --------------------------------------------------------------------------- #
# torch-free tests: expected strings copied from torch's output
# --------------------------------------------------------------------------- #

F32 = np.float32

HARDCODED = [
    (np.array(3.5, F32), "float32", [], "tensor(3.5000)"),
    (np.array(-7), "int64", [], "tensor(-7)"),
    (np.array(True), "bool", [], "tensor(True)"),
    (
        np.array([[1.0, -2.0, 30.0], [4.0, 5.0, 6.0]], F32),
        "float32",
        [],
        "tensor([[ 1., -2., 30.],\n        [ 4.,  5.,  6.]])",
    ),
    (
        np.array([1e-5, 1.0, 2.5e3], F32),
        "float32",
        [],
        "tensor([1.0000e-05, 1.0000e+00, 2.5000e+03])",
    ),
    (
        np.array([np.nan, np.inf, -np.inf, -0.0, 1.25], F32),
        "float32",
        [],
        "tensor([   nan,    inf,   -inf, -0.0000, 1.2500])",
    ),
    (np.array([-0.0, 1.0], F32), "float32", [], "tensor([-0., 1.])"),
    (
        np.array([[True, False], [False, True]]),
        "bool",
        [],
        "tensor([[ True, False],\n        [False,  True]])",
    ),
    (np.zeros(0, F32), "float32", [], "tensor([])"),
    (np.zeros(0, np.int64), "int64", [], "tensor([], dtype=torch.int64)"),
    (np.zeros((2, 0, 3), F32), "float32", [], "tensor([], size=(2, 0, 3))"),
    (
        np.array([0.1, 65504.0, -3.0], np.float16),
        "float16",
        [],
        "tensor([ 9.9976e-02,  6.5504e+04, -3.0000e+00], dtype=torch.float16)",
    ),
    (
        np.array([[1, -200], [30000, 4]], np.int32),
        "int32",
        [],
        "tensor([[    1,  -200],\n        [30000,     4]], dtype=torch.int32)",
    ),
    (np.arange(2000), "int64", [], "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"),
    (
        np.arange(1100, dtype=F32).reshape(100, 11) / F32(7),
        "float32",
        [],
        (
            "tensor([[0.0000e+00, 1.4286e-01, 2.8571e-01,  ..., 1.1429e+00, 1.2857e+00,\n"
            "         1.4286e+00],\n"
            "        [1.5714e+00, 1.7143e+00, 1.8571e+00,  ..., 2.7143e+00, 2.8571e+00,\n"
            "         3.0000e+00],\n"
            "        [3.1429e+00, 3.2857e+00, 3.4286e+00,  ..., 4.2857e+00, 4.4286e+00,\n"
            "         4.5714e+00],\n"
            "        ...,\n"
            "        [1.5243e+02, 1.5257e+02, 1.5271e+02,  ..., 1.5357e+02, 1.5371e+02,\n"
            "         1.5386e+02],\n"
            "        [1.5400e+02, 1.5414e+02, 1.5429e+02,  ..., 1.5514e+02, 1.5529e+02,\n"
            "         1.5543e+02],\n"
            "        [1.5557e+02, 1.5571e+02, 1.5586e+02,  ..., 1.5671e+02, 1.5686e+02,\n"
            "         1.5700e+02]])"
        ),
    ),
    (
        np.arange(25, dtype=F32) * F32(1.5),
        "float32",
        [],
        (
            "tensor([ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000,\n"
            "        12.0000, 13.5000, 15.0000, 16.5000, 18.0000, 19.5000, 21.0000, 22.5000,\n"
            "        24.0000, 25.5000, 27.0000, 28.5000, 30.0000, 31.5000, 33.0000, 34.5000,\n"
            "        36.0000])"
        ),
    ),
    (
        np.arange(30, dtype=np.float64).reshape(2, 15),
        "float64",
        ["requires_grad=True"],
        (
            "tensor([[ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
            "         14.],\n"
            "        [15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27., 28.,\n"
            "         29.]], dtype=torch.float64, requires_grad=True)"
        ),
    ),
]


@pytest.mark.parametrize("values,dtype,suffixes,expected", HARDCODED)
def test_hardcoded(values, dtype, suffixes, expected):
    assert format_tensor(values, dtype, suffixes) == expected


def test_suffix_order_device_first():
    out = format_tensor(
        np.arange(6, dtype=np.float16).reshape(2, 3),
        "float16",
        ["requires_grad=True"],
        device="cl:1",
    )
    assert out == (
        "tensor([[0., 1., 2.],\n"
        "        [3., 4., 5.]], device='cl:1', dtype=torch.float16, requires_grad=True)"
    )
    # a device item passed among the suffixes is moved in front of size/dtype
    out = format_tensor(
        np.zeros((0, 3), np.int32), "int32", ["device='cl:1'", "requires_grad=True"]
    )
    assert out == "tensor([], device='cl:1', size=(0, 3), dtype=torch.int32, requires_grad=True)"


def test_default_float64():
    assert (
        format_tensor(np.array([1.0, 2.0]), "float64", default_float="float64")
        == "tensor([1., 2.])"
    )
    assert (
        format_tensor(np.array([1.0, 2.0], F32), "float32", default_float="float64")
        == "tensor([1., 2.], dtype=torch.float32)"
    )


def test_printoptions():
    with printoptions(precision=2):
        assert format_tensor(np.array([1.12345], F32), "float32") == "tensor([1.12])"
    assert format_tensor(np.array([1.12345], F32), "float32") == "tensor([1.1235])"
    set_printoptions(threshold=5)
    assert format_tensor(np.arange(10), "int64") == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    set_printoptions(profile="default")
    assert _format.get_printoptions()["threshold"] == 1000


# --------------------------------------------------------------------------- #
# parity with a live torch
# --------------------------------------------------------------------------- #

_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _ours(torch, t):
    suffixes = []
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{type(t.grad_fn).__name__}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    name = str(t.dtype).replace("torch.", "")
    default = str(torch.get_default_dtype()).replace("torch.", "")
    return format_tensor(t.detach().numpy(), name, suffixes, default_float=default)


def _random_tensor(torch, rng):
    nd = int(rng.choice([0, 1, 1, 2, 2, 3, 4]))
    shape = tuple(
        int(rng.choice([0, 1, 2, 3, 5, 7, 8, 13, 40]))
        if rng.random() < 0.9
        else int(rng.integers(1, 400))
        for _ in range(nd)
    )
    n = int(np.prod(shape)) if shape else 1
    if n > 200_000:
        shape = (n % 50 + 1,)
        n = shape[0]
    dt = str(rng.choice(_DTYPES))
    if dt == "bool":
        v = rng.random(n) < rng.random()
    elif dt.startswith("float"):
        kind = int(rng.integers(0, 7))
        mag = 10.0 ** int(rng.integers(-12, 14))
        if kind == 0:
            v = rng.standard_normal(n) * mag
        elif kind == 1:
            v = np.round(rng.standard_normal(n) * mag)
        elif kind == 2:
            v = rng.integers(-5, 5, n).astype(float)
        elif kind == 3:
            v = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 9, n)
        elif kind == 4:
            v = np.round(
                rng.standard_normal(n) * rng.choice([1, 10, 1000]), int(rng.integers(0, 6))
            )
        elif kind == 5:
            v = rng.random(n) * mag
        else:
            v = rng.standard_normal(n)
        if n and rng.random() < 0.3:
            k = int(rng.integers(1, 4))
            v[rng.integers(0, n, k)] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0], k)
    else:
        info = np.iinfo(dt)
        lo = max(int(info.min), -(10 ** int(rng.integers(0, 19))))
        hi = min(int(info.max), 10 ** int(rng.integers(0, 19)))
        v = rng.integers(lo, hi, n, endpoint=True, dtype=dt)
    with np.errstate(all="ignore"):
        a = np.asarray(v).astype(dt).reshape(shape)
    t = torch.from_numpy(a.copy())
    if dt.startswith("float") and rng.random() < 0.15:
        t.requires_grad_(True)
        if rng.random() < 0.5:
            t = t * 2
    return t


def _edge_tensors(torch):
    nan, inf = float("nan"), float("inf")
    return [
        torch.tensor(3.5),
        torch.tensor(True),
        torch.tensor(-0.0),
        torch.tensor(nan),
        torch.tensor(7),
        torch.tensor(3, dtype=torch.int8),
        torch.tensor(2.0, dtype=torch.float64),
        torch.tensor([]),
        torch.zeros(0, 3),
        torch.zeros(2, 0, 3, dtype=torch.int64),
        torch.zeros(0, dtype=torch.bool),
        torch.zeros(0, dtype=torch.float16),
        torch.tensor([True, False]),
        torch.tensor([1.0, 2.0]),
        torch.tensor([-0.0, 1.0]),
        torch.tensor([0.0, nan]),
        torch.tensor([inf, -inf, 1.5]),
        torch.tensor([1e300, 1e-300], dtype=torch.float64),
        torch.tensor([1e-310, 5.0], dtype=torch.float64),
        torch.tensor([65504.0, 6e-8, -1.0], dtype=torch.float16),
        torch.tensor([1e-4]),
        torch.tensor([1e-4], dtype=torch.float64),
        torch.tensor([1e8, 1.0]),
        torch.tensor([1e8 + 8, 1.0], dtype=torch.float64),
        torch.tensor([1000.0, 1.0]),
        torch.tensor([1001.0, 1.0]),
        torch.tensor([9.99995, 99999.5]),
        torch.arange(2000),
        torch.arange(2000.0).reshape(40, 50),
        torch.randn(100, 100, 3),
        torch.randn(8, 30),
        torch.arange(1_000_000).reshape(1000, 1000),
        torch.randn(2, 3, requires_grad=True),
        torch.randn(2, 3, requires_grad=True) * 2,
        torch.randn(10, 20, dtype=torch.float64, requires_grad=True).sum(0),
        torch.randint(-(2**63), 2**63 - 1, (5, 7)),
        torch.randint(0, 255, (30,), dtype=torch.uint8),
        torch.full((3,), -9223372036854775808),
        torch.randn(3, 4, 5, 6, 7),
    ]


def _check_parity(torch, tensors):
    mismatches = []
    for t in tensors:
        want, got = repr(t), _ours(torch, t)
        if want != got:
            mismatches.append(f"{t.dtype} {tuple(t.shape)}\n--- torch\n{want}\n--- ours\n{got}")
    assert not mismatches, f"{len(mismatches)} mismatches; first:\n" + mismatches[0]


def test_parity_edge_cases():
    torch = torch_or_skip()
    torch.manual_seed(0)
    _check_parity(torch, _edge_tensors(torch))


def test_parity_random():
    torch = torch_or_skip()
    rng = np.random.default_rng(1234)
    _check_parity(torch, [_random_tensor(torch, rng) for _ in range(600)])


@pytest.mark.parametrize(
    "opts",
    [
        {"precision": 2},
        {"precision": 0},
        {"threshold": 5},
        {"edgeitems": 1, "threshold": 10},
        {"edgeitems": 0, "threshold": 10},
        {"edgeitems": 0},
        {"linewidth": 40},
        {"sci_mode": True},
        {"sci_mode": False},
        {"profile": "full"},
        {"profile": "short"},
    ],
    ids=str,
)
def test_parity_printoptions(opts):
    torch = torch_or_skip()
    rng = np.random.default_rng(sum(map(ord, str(opts))))
    tensors = [_random_tensor(torch, rng) for _ in range(150)]
    torch.set_printoptions(**opts)
    set_printoptions(**opts)
    try:
        _check_parity(torch, tensors)
    finally:
        torch.set_printoptions(profile="default")
        set_printoptions(profile="default")


def test_parity_default_float64():
    torch = torch_or_skip()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        tensors = [
            torch.tensor([1.0, 2.0], dtype=torch.float32),
            torch.tensor([1.0, 2.0]),
            torch.zeros(0, 2),
            torch.zeros(0, dtype=torch.float32),
            torch.tensor([1, 2]),
            torch.tensor(0.5),
            torch.randn(3, 3, requires_grad=True),
        ]
        _check_parity(torch, tensors)
    finally:
        torch.set_default_dtype(old)
