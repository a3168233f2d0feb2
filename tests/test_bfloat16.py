"""bfloat16: storage of float's upper 16 bits, arithmetic in float32, one rounding to nearest
even on each store, as PyTorch CPU. Values against an independent numpy rounding (frexp and
round-half-even on the significand), every float op row of the elementwise table, reductions,
products, convolution, indexing, random fills, autograd, compiled code, checkpoints,
autocast, and PyTorch's results where it is installed."""

from __future__ import annotations

import importlib
import io

import numpy as np
import pytest
from op_cases import CASES
from test_elementwise import INTERNAL, reference, run

import clgraph as cg
import clgraph.nn.functional as F
from clgraph.ops import gemm

ULP = 2.0 ** -7  # bfloat16 keeps 8 significant bits: a rounding moves a value by < 2^-8


def bf16_round(x) -> np.ndarray:
    """float64 values rounded to bfloat16 (8 significant bits, ties to even), for normal
    numbers: numpy's round() is half-to-even on the scaled significand."""
    x = np.asarray(x, np.float64)
    m, e = np.frexp(x)
    return np.ldexp(np.round(m * 256.0) / 256.0, e)


def bf16(values) -> cg.Tensor:
    return cg.tensor(np.asarray(values, np.float32), dtype=cg.bfloat16)


def values(t: cg.Tensor) -> np.ndarray:
    assert t.dtype is cg.bfloat16
    return t.float().numpy().astype(np.float64)


def test_dtype_row_and_promotion():
    x = cg.zeros(3, dtype=cg.bfloat16)
    assert x.element_size() == 2 and x.is_floating_point() and x.type() == "torch.BFloat16Tensor"
    assert str(cg.bfloat16) == "torch.bfloat16" and cg.tensor([1.0]).bfloat16().dtype is cg.bfloat16
    h = cg.zeros(3, dtype=cg.float16)
    assert (x + h).dtype is cg.float32  # neither 16-bit float holds the other
    assert (x + cg.zeros(3)).dtype is cg.float32
    assert (x + cg.zeros(3, dtype=cg.int64)).dtype is cg.bfloat16
    assert (x + 1.5).dtype is cg.bfloat16
    assert cg.promote_types(cg.bfloat16, cg.float64) is cg.float64


def test_conversion_rounds_to_nearest_even():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000),
                        # exact ties: 1 + k/256 + 1/512 rounds to the even neighbour
                        1 + np.arange(16) / 256 + 1 / 512, -(1 + np.arange(16) / 256 + 1 / 512)])
    v = v.astype(np.float32)
    want = bf16_round(v.astype(np.float64))
    # from host values, and from a float32 tensor through the conversion kernel
    np.testing.assert_array_equal(values(bf16(v)), want)
    np.testing.assert_array_equal(values(cg.tensor(v).to(cg.bfloat16)), want)
    np.testing.assert_array_equal(values(cg.tensor(v).double().bfloat16()),
                                  bf16_round(v.astype(np.float64)))


def test_special_values_and_the_numpy_refusal():
    x = bf16([np.nan, np.inf, -np.inf, 3.4e38, -0.0, 1e-45])
    v = values(x)
    assert np.isnan(v[0]) and v[1] == np.inf and v[2] == -np.inf
    assert v[3] == np.inf  # above bfloat16's largest finite value after rounding
    assert v[4] == 0 and np.signbit(v[4])
    assert x.tolist()[1] == float("inf") and bf16([2.5]).item() == 2.5
    with pytest.raises(TypeError, match="BFloat16"):
        x.numpy()
    with pytest.raises(TypeError, match="BFloat16"):
        np.asarray(x)


FLOAT_CASES = [c for c in CASES if "float16" in c.dtypes and c.op not in INTERNAL]


@pytest.mark.parametrize("case", FLOAT_CASES, ids=lambda c: c.op)
def test_elementwise_rows(case):
    """Each op computes in float32 from bfloat16 operands and rounds its result once."""
    rng = np.random.default_rng(1)
    arrays = []
    for i in range(case.nargs):
        a = rng.uniform(case.low, case.high, (3, 37))
        if case.nonzero_b and i == 1:
            a = np.where(np.abs(a) < 0.5, 0.5, a)
        if case.op == "where" and i == 0:
            arrays.append(a > 0)
            continue
        arrays.append(bf16_round(a).astype(np.float32))
    tensors = [cg.from_numpy(a) if a.dtype == bool else bf16(a) for a in arrays]
    out = run(case, tensors)
    exp = reference(case, arrays, None)
    if out.dtype is cg.bool:
        np.testing.assert_array_equal(out.numpy(), exp)
        return
    assert out.dtype is (cg.float32 if case.op == "to_dtype" else cg.bfloat16)
    got = out.float().numpy().astype(np.float64)
    scale = np.maximum(np.abs(exp.astype(np.float64)), 1e-30)
    err = np.abs(got - exp) / scale
    assert np.all((err <= ULP) | (np.abs(got - exp) < 1e-6)), (case.op, float(err.max()))


@pytest.mark.parametrize("gpu_kernels", [False, True])
def test_reductions_products_and_layers(gpu_kernels, monkeypatch):
    """Reductions accumulate in float32 and round once; matmul and conv accumulate in
    float32 (CPU kernels, and the GPU variants on this device)."""
    if gpu_kernels:
        monkeypatch.setattr(importlib.import_module("clgraph.device"), "_KERNELS", "gpu")
        monkeypatch.setenv("CLGRAPH_TUNE", "0")
        monkeypatch.setenv("CLGRAPH_TENSOR_CORES", "0")
        monkeypatch.setattr(gemm, "_chosen", {})
    rng = np.random.default_rng(2)
    a = bf16_round(rng.standard_normal((33, 65)))
    b = bf16_round(rng.standard_normal((65, 7)))
    ta, tb = bf16(a), bf16(b)
    for got, want in [(ta.sum(1), a.sum(1)), (ta.sum(0), a.sum(0)), (ta.mean(), a.mean()),
                      (ta.amax(1), a.max(1)), (ta @ tb, a @ b), (ta.T @ ta[:, :9], a.T @ a[:, :9]),
                      (ta.softmax(1), np.exp(a) / np.exp(a).sum(1, keepdims=True))]:
        np.testing.assert_allclose(values(got), want, rtol=ULP, atol=ULP * 1e-2 * np.abs(want).max())
    x = bf16_round(rng.standard_normal((2, 3, 9, 9)))
    w = bf16_round(rng.standard_normal((4, 3, 3, 3)))
    y = F.conv2d(bf16(x), bf16(w), padding=1)
    ref = F.conv2d(cg.tensor(x), cg.tensor(w), padding=1).numpy()
    np.testing.assert_allclose(values(y), ref, rtol=ULP, atol=ULP * 0.1)


def test_indexing_joins_and_fills():
    x = bf16(np.arange(24, dtype=np.float32).reshape(4, 6) / 7)
    v = values(x)
    np.testing.assert_array_equal(values(x[[2, 0]]), v[[2, 0]])
    np.testing.assert_array_equal(values(x[:, 1::2].contiguous()), v[:, 1::2])
    np.testing.assert_array_equal(values(cg.cat([x, x[:1]])), np.concatenate([v, v[:1]]))
    np.testing.assert_array_equal(values(x.masked_fill(x > 1, 0.1)),
                                  np.where(v > 1, bf16_round(0.1), v))
    np.testing.assert_array_equal(values(x.tril(-1)), np.tril(v, -1))
    z = cg.zeros(5, dtype=cg.bfloat16).index_add_(0, cg.tensor([1, 1, 3]), bf16([0.5, 0.25, 3.0]))
    np.testing.assert_array_equal(values(z), [0, 0.75, 0, 3, 0])
    np.testing.assert_array_equal(values(cg.full((3,), 1 / 3, dtype=cg.bfloat16)),
                                  bf16_round([1 / 3] * 3))
    cg.manual_seed(0)
    r = values(cg.rand(4000, dtype=cg.bfloat16))
    assert 0 <= r.min() and r.max() <= 1 and abs(r.mean() - 0.5) < 0.03
    assert np.array_equal(r, bf16_round(r))


def test_autograd_compile_and_checkpoint(tmp_path):
    rng = np.random.default_rng(3)
    w0 = bf16_round(rng.standard_normal((5, 4)))
    w = bf16(w0).requires_grad_()
    x = bf16(bf16_round(rng.standard_normal((3, 5))))
    (x @ w).tanh().sum().backward()
    assert w.grad.dtype is cg.bfloat16
    xv = values(x)
    t = np.tanh(bf16_round(xv @ w0))
    np.testing.assert_allclose(values(w.grad), xv.T @ (1 - t ** 2), rtol=4 * ULP, atol=0.05)

    def f(a):
        return (a * 1.5 + 0.25).exp() - a

    fc = cg.compile(f)
    fc(x)
    # fused, the intermediates stay in float32 (as torch.compile keeps them): one rounding
    once = bf16_round(f(x.float()).numpy().astype(np.float64))
    np.testing.assert_allclose(values(fc(x)), once, rtol=1e-7)
    np.testing.assert_allclose(values(f(x)), once, rtol=4 * ULP)  # eager rounds every op
    buf = io.BytesIO()
    cg.save({"w": w.detach()}, buf)
    buf.seek(0)
    back = cg.load(buf)["w"]
    assert back.dtype is cg.bfloat16
    np.testing.assert_array_equal(values(back), w0)


def test_autocast_bfloat16():
    a, b = cg.randn(8, 16), cg.randn(16, 4)
    with cg.autocast("cpu"):
        assert cg.get_autocast_dtype("cpu") is cg.bfloat16
        y = a @ b
        assert y.dtype is cg.bfloat16
        assert y.softmax(1).dtype is cg.float32
    with cg.autocast("cl", dtype=cg.bfloat16):
        assert F.linear(a, b.t()).dtype is cg.bfloat16
    with pytest.raises(RuntimeError, match="supported dtypes"):
        cg.autocast("cl", dtype=cg.float64)


def test_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    v = (rng.standard_normal(500) * 10.0 ** rng.integers(-20, 20, 500)).astype(np.float32)
    v[:4] = [np.nan, np.inf, 3.3e38, 1e-40]  # a NaN, overflow on rounding, a subnormal
    c, t = cg.tensor(v).bfloat16(), torch.tensor(v).bfloat16()
    for got, want in [(c, t), (c * 3 + 1, t * 3 + 1), (c.exp(), t.exp()), (c / 7, t / 7),
                      (c.half(), t.half()), (c.half().bfloat16(), t.half().bfloat16())]:
        np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
    m = rng.standard_normal((17, 33)).astype(np.float32)
    cm, tm = cg.tensor(m).bfloat16(), torch.tensor(m).bfloat16()
    np.testing.assert_allclose((cm @ cm.T).float().numpy(), (tm @ tm.T).float().numpy(),
                               rtol=ULP, atol=0.05)
    assert str(cm[:2, :3]) == str(tm[:2, :3])
