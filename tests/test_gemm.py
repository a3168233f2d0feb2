"""The GPU GEMM family (matmul_gemm) on any device, and its tuner: every parameter set's
products against numpy on odd shapes, transposed and strided operands, batches, dtypes
and fused epilogues; the tuner's disk cache round trip, its levels, and its refusal of
candidates that compute a wrong result or read out of bounds."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import clgraph as cg
from clgraph import tune
from clgraph.ops import gemm

PARAMS = [
    gemm.DEFAULT,
    {"MWG": 64, "NWG": 64, "KWG": 16, "MDIMC": 8, "NDIMC": 8, "DB": 1},
    {"MWG": 32, "NWG": 128, "KWG": 8, "MDIMC": 8, "NDIMC": 16, "DB": 1},
    {"MWG": 128, "NWG": 32, "KWG": 32, "MDIMC": 16, "NDIMC": 8, "DB": 0},
]
D = importlib.import_module("clgraph.device")  # the module (cg.device is the class)
SHAPES = [(1, 1, 1), (7, 33, 65), (65, 7, 33), (127, 300, 7), (300, 127, 65), (33, 65, 127)]


@pytest.fixture
def gpu_kernels(monkeypatch):
    """The GPU kernel variants on this device (CLGRAPH_KERNELS=gpu), tuning off."""
    monkeypatch.setattr(D, "_KERNELS", "gpu")
    monkeypatch.setenv("CLGRAPH_TUNE", "0")
    monkeypatch.setenv("CLGRAPH_TENSOR_CORES", "0")
    monkeypatch.setattr(gemm, "_chosen", {})
    monkeypatch.setattr(tune, "_memory", {})


def use(monkeypatch, p):
    monkeypatch.setattr(tune, "params", lambda fam, info, cls: dict(p))
    monkeypatch.setattr(gemm, "_chosen", {})


def operand(rng, shape, dtype, layout):
    """A tensor of ``shape`` (batch, rows, cols) in ``layout``: contiguous, transposed in
    memory (columns contiguous), or a strided slice of a wider tensor."""
    if np.dtype(dtype).kind == "f":
        a = rng.uniform(-1, 1, shape).astype(dtype)
    else:
        a = rng.integers(-9, 9, shape).astype(dtype)
    if layout == "t":
        return cg.from_numpy(np.ascontiguousarray(np.swapaxes(a, -1, -2))).mT, a
    if layout == "s":
        wide = np.concatenate([a, a], axis=-1)
        return cg.from_numpy(wide)[..., ::2], wide[..., ::2]
    return cg.from_numpy(a), a


def check(got, want, dtype, K):
    if np.dtype(dtype).kind in "iu":
        np.testing.assert_array_equal(got, want)
    else:
        tol = 1e-2 if dtype == "float16" else 1e-5
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol,
                                   atol=tol * np.sqrt(K))


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: "x".join(str(p[k]) for k in gemm._KEYS))
def test_gemm_parameter_sets_against_numpy(gpu_kernels, monkeypatch, p):
    use(monkeypatch, p)
    rng = np.random.default_rng(0)
    for (M, N, K), (la, lb) in zip(SHAPES * 2, ["nn", "nt", "tn", "tt", "sn", "ns"] * 2):
        a, ah = operand(rng, (1, M, K), "float32", la)
        b, bh = operand(rng, (1, K, N), "float32", lb)
        with cg.profile() as prof:
            c = (a[0] @ b[0]).numpy()
        assert prof.functions == ["matmul_gemm"], prof.functions
        check(c, ah[0].astype(np.float64) @ bh[0], "float32", K)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "int64"])
def test_gemm_dtypes_and_batches(gpu_kernels, dtype):
    rng = np.random.default_rng(1)
    for (B1, B2), (M, N, K) in [((3, 3), (33, 7, 65)), ((1, 4), (7, 65, 33)),
                                ((4, 1), (65, 33, 7)), ((2, 2), (1, 127, 300))]:
        a, ah = operand(rng, (B1, M, K), dtype, "n")
        b, bh = operand(rng, (B2, K, N), dtype, "t")
        with cg.profile() as prof:
            c = (a @ b).numpy()
        assert prof.functions == ["matmul_gemm"], prof.functions
        assert c.dtype == np.dtype(dtype)
        check(c, np.matmul(ah.astype(np.float64), bh.astype(np.float64)), dtype, K)


def test_gemm_takes_fused_epilogues(gpu_kernels):
    """A compiled linear layer with bias and ReLU stores through matmul_gemm's epilogue."""
    rng = np.random.default_rng(2)
    x = cg.from_numpy(rng.standard_normal((37, 20)).astype(np.float32))
    w = cg.from_numpy(rng.standard_normal((30, 20)).astype(np.float32))
    bias = cg.from_numpy(rng.standard_normal(30).astype(np.float32))

    def f(x):
        return (x @ w.t() + bias).relu()

    fc = cg.compile(f)
    fc(x)
    with cg.profile() as prof:
        y = fc(x).numpy()
    assert prof.kernels == ["matmul_gemm_epilogue"], prof.kernels
    want = np.maximum(x.numpy() @ w.numpy().T + bias.numpy(), 0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


# --- tensor cores ----------------------------------------------------------------------------

MMA_PARAMS = [
    gemm.MMA_DEFAULT,
    {"WARPS_M": 1, "WARPS_N": 2, "WTM": 1, "WTN": 2, "KS": 16, "DB": 0},
    {"WARPS_M": 2, "WARPS_N": 1, "WTM": 2, "WTN": 1, "KS": 64, "DB": 1},
]


@pytest.fixture
def emulated_mma(gpu_kernels, monkeypatch):
    """matmul_mma with the instruction done in software (its fragment layout), any device."""
    monkeypatch.setenv("CLGRAPH_TENSOR_CORES", "emulate")
    monkeypatch.setattr(gemm, "_probed", {})


@pytest.mark.parametrize("p", MMA_PARAMS, ids=lambda p: "x".join(str(p[k]) for k in gemm._MMA_KEYS))
def test_tensor_core_tiling_against_numpy(emulated_mma, monkeypatch, p):
    """float16 products through matmul_mma's tiles and fragments: odd shapes, every
    operand layout, broadcast batches; float32 accumulation, one rounding on the store."""
    use(monkeypatch, p)
    rng = np.random.default_rng(3)
    cases = list(zip(SHAPES, ["nn", "nt", "tn", "tt", "sn", "ns"]))
    cases += [((33, 65, 40), "nt")] if p is gemm.MMA_DEFAULT else []
    for (M, N, K), (la, lb) in cases:
        a, ah = operand(rng, (1, M, K), "float16", la)
        b, bh = operand(rng, (2, K, N), "float16", lb)
        with cg.profile() as prof:
            c = (a @ b).numpy()
        assert prof.functions == ["matmul_mma"], prof.functions
        want = np.matmul(ah.astype(np.float64), bh.astype(np.float64))
        np.testing.assert_allclose(c.astype(np.float64), want, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("p", MMA_PARAMS, ids=lambda p: "x".join(str(p[k]) for k in gemm._MMA_KEYS))
def test_tensor_core_aligned_operands_load_8_elements(emulated_mma, monkeypatch, p):
    """16-bit operands whose rows hold multiples of 8 elements, 16-byte aligned, are staged
    8 elements per load (VEC8), along k or across rows for every layout and batch
    broadcast, with partial tiles; parameters whose share of a tile is no whole number of
    chunks keep the one-element loads."""
    use(monkeypatch, p)
    rng = np.random.default_rng(7)
    cases = [((40, 72, 56), "nn"), ((8, 16, 24), "nt"), ((136, 80, 48), "tn"),
             ((24, 8, 64), "tt")]
    for d in ("float16", "bfloat16"):
        for (M, N, K), (la, lb) in cases[:4 if d == "float16" else 2]:
            a, ah = operand(rng, (2, M, K), "float32", la)
            b, bh = operand(rng, (1, K, N), "float32", lb)
            a, b = a.to(getattr(cg, d)), b.to(getattr(cg, d))
            with cg.profile() as prof:
                c = a @ b
            assert prof.functions == ["matmul_mma"], prof.functions
            c = c.float().numpy()
            want = np.matmul(a.float().numpy().astype(np.float64), b.float().numpy())
            np.testing.assert_allclose(c, want, rtol=1e-2, atol=1e-2)
    vec = [("VEC8", "1") in defines for _, defines, _ in gemm._chosen.values()]
    assert vec and all(vec)


def test_bfloat16_tensor_core_products(emulated_mma):
    """bfloat16 operands take mma.sync's bf16 form: odd shapes, B transposed (x @ W.T)."""
    rng = np.random.default_rng(6)
    for M, N, K in [(7, 33, 65), (65, 7, 33), (40, 40, 40)]:
        a = cg.tensor(rng.uniform(-1, 1, (M, K)), dtype=cg.bfloat16)
        w = cg.tensor(rng.uniform(-1, 1, (N, K)), dtype=cg.bfloat16)
        with cg.profile() as prof:
            c = (a @ w.T).float().numpy()
        assert prof.functions[0] == "matmul_mma", prof.functions
        want = a.float().numpy().astype(np.float64) @ w.float().numpy().T
        np.testing.assert_allclose(c, want, rtol=1e-2, atol=1e-2)


def _tf32(x):
    """float32 rounded to TF32 as cvt.rna does: 10 mantissa bits, ties away from zero."""
    u = np.asarray(x, np.float32).view(np.uint32)
    return ((u + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


@pytest.mark.parametrize("p", MMA_PARAMS[:2], ids=lambda p: "x".join(str(p[k]) for k in gemm._MMA_KEYS))
def test_tf32_products_when_precision_allows(emulated_mma, monkeypatch, p):
    """set_float32_matmul_precision("high"): float32 products take the tensor-core path with
    operands rounded to TF32 (matching numpy on rounded operands); "highest" keeps float32."""
    use(monkeypatch, p)
    monkeypatch.setitem(gemm._precision, "float32", "high")
    rng = np.random.default_rng(4)
    for (M, N, K), (la, lb) in zip(SHAPES, ["nn", "nt", "tn", "tt", "sn", "ns"]):
        a, ah = operand(rng, (1, M, K), "float32", la)
        b, bh = operand(rng, (1, K, N), "float32", lb)
        with cg.profile() as prof:
            c = (a[0] @ b[0]).numpy()
        assert prof.functions == ["matmul_mma"], prof.functions
        want = _tf32(ah[0]).astype(np.float64) @ _tf32(bh[0]).astype(np.float64)
        np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5 * np.sqrt(K))
    monkeypatch.setitem(gemm._precision, "float32", "highest")
    use(monkeypatch, gemm.DEFAULT)
    with cg.profile() as prof:
        c = (a[0] @ b[0]).numpy()
    assert prof.functions == ["matmul_gemm"]
    np.testing.assert_allclose(c, ah[0].astype(np.float64) @ bh[0], rtol=1e-5, atol=1e-5)


def test_tf32_product_takes_fused_epilogues(emulated_mma, monkeypatch):
    monkeypatch.setitem(gemm._precision, "float32", "high")
    rng = np.random.default_rng(5)
    x = cg.from_numpy(rng.standard_normal((37, 20)).astype(np.float32))
    w = cg.from_numpy(rng.standard_normal((30, 20)).astype(np.float32))
    bias = cg.from_numpy(rng.standard_normal(30).astype(np.float32))
    fc = cg.compile(lambda x: (x @ w.t() + bias).relu())
    fc(x)
    with cg.profile() as prof:
        y = fc(x).numpy()
    assert prof.kernels == ["matmul_mma_epilogue"], prof.kernels
    want = np.maximum(_tf32(x.numpy()).astype(np.float64) @ _tf32(w.numpy()).T
                      + bias.numpy(), 0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-4)


def test_tensor_cores_only_where_the_probe_passes(gpu_kernels, monkeypatch):
    """No NVIDIA platform, or a probe that fails: float16 stays on matmul_gemm."""
    info = cg.tensor([1.0]).device.info
    monkeypatch.delenv("CLGRAPH_TENSOR_CORES")
    if "NVIDIA" not in info.platform.upper():
        assert gemm.mma_mode(info) is None and not gemm.tensor_cores(info)
    monkeypatch.setenv("CLGRAPH_TENSOR_CORES", "emulate")
    monkeypatch.setattr(gemm, "_probed", {})

    def broken(info, cls, p, pr):
        raise RuntimeError("ptxas: unknown instruction")

    monkeypatch.setattr(gemm, "launcher", broken)
    assert not gemm.tensor_cores(info)
    a = cg.ones(5, 9, dtype=cg.float16)
    with cg.profile() as prof:
        c = (a @ a.T).numpy()
    assert prof.functions == ["matmul_gemm"] and (c == 9).all()


# --- the tuner ------------------------------------------------------------------------------


@pytest.fixture
def tuner_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLGRAPH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tune, "_memory", {})
    monkeypatch.setattr(tune, "_disk", None)
    return tmp_path


def test_tuner_searches_once_and_keeps_the_result(gpu_kernels, tuner_cache, monkeypatch):
    info = cg.get_default_device().info
    monkeypatch.setenv("CLGRAPH_TUNE", "1")
    monkeypatch.setenv("CLGRAPH_TUNE_BUDGET", "0.2")
    cls = gemm.shape_class(cg.float32, 16, 16, 16, False, True)
    p = tune.params(gemm.GEMM, info, cls)
    assert p in gemm.candidates(info, cls)
    saved = json.loads((tuner_cache / "tuning.json").read_text())
    (key, entry), = saved.items()
    assert key.endswith("|gemm|" + cls) and entry["params"] == p and entry["seconds"] > 0
    # a new process: read from disk, nothing searched
    monkeypatch.setattr(tune, "_memory", {})
    monkeypatch.setattr(tune, "_disk", None)
    monkeypatch.setattr(tune, "search", lambda *a, **k: pytest.fail("searched again"))
    assert tune.params(gemm.GEMM, info, cls) == p
    row = [r for r in tune.results(info) if r["class"] == cls]
    assert row and row[0]["params"] == p
    # and the product uses it
    a = cg.ones(9, 5)
    assert np.allclose((a @ cg.ones(7, 5).t()).numpy(), 5)


def test_tuning_off_uses_the_default(gpu_kernels, tuner_cache, monkeypatch):
    monkeypatch.setenv("CLGRAPH_TUNE", "0")
    monkeypatch.setattr(tune, "search", lambda *a, **k: pytest.fail("searched"))
    info = cg.get_default_device().info
    assert tune.params(gemm.GEMM, info, "float32:64x64x64:nn") == gemm.candidates(
        info, "float32:64x64x64:nn")[0]
    assert not (tuner_cache / "tuning.json").exists()
    monkeypatch.setenv("CLGRAPH_TUNE", "3")
    with pytest.raises(ValueError, match="CLGRAPH_TUNE must be 0, 1 or 2, got '3'"):
        tune.level(info)


def test_tuner_rejects_wrong_and_out_of_bounds_candidates(gpu_kernels, tuner_cache):
    """Two broken candidates, each given every chance to win: one computes with K - 1 (a
    wrong result), one with K + 1 (it reads past its rows, into the NaN guard). The tuner
    keeps the correct one."""
    info = cg.get_default_device().info
    good = dict(gemm.DEFAULT)

    def launcher(info, cls, p, pr):
        pr.values["K"] = pr.K + p.get("dk", 0)
        try:
            return gemm.launcher(info, cls, good, pr)
        finally:
            pr.values["K"] = pr.K

    fam = tune.Tunable("gemm_test", lambda info, cls: [good, {"dk": -1}, {"dk": 1}],
                       gemm.setup, launcher, gemm.check)
    res = tune.search(fam, info, "float32:64x64x64:nn", exhaustive=True)
    assert res.params == good
    assert [(p, why) for p, why in res.rejected] == [({"dk": -1}, "wrong result"),
                                                    ({"dk": 1}, "wrong result")]


def test_tuner_rejects_candidates_that_do_not_build(gpu_kernels, tuner_cache):
    info = cg.get_default_device().info
    bad = {"MWG": 64, "NWG": 64, "KWG": 16, "MDIMC": 16, "NDIMC": 16, "DB": 0, "X": 1}

    def launcher(info, cls, p, pr):
        if "X" in p:  # tile sizes the kernel's #error refuses
            p = dict(p, KWG=3)
        return gemm.launcher(info, cls, p, pr)

    fam = tune.Tunable("gemm_build", lambda info, cls: [gemm.DEFAULT, bad], gemm.setup,
                       launcher, gemm.check)
    res = tune.search(fam, info, "float32:16x16x16:nn", exhaustive=True)
    assert res.params == gemm.DEFAULT
    assert len(res.rejected) == 1 and "KernelBuildError" in res.rejected[0][1]


def test_tune_command_line(tmp_path):
    """``python -m clgraph.tune`` tunes the asked classes and keeps them on disk."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, CLGRAPH_KERNELS="gpu", CLGRAPH_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "clgraph.tune", "--only", "float32:64x64x64",
                        "--seconds", "0.1"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "gemm float32:64x64x64:nn" in r.stdout and "gemm float32:64x64x64:nt" in r.stdout
    saved = json.loads((tmp_path / "tuning.json").read_text())
    assert sorted(k.rsplit("|", 1)[1] for k in saved) == ["float32:64x64x64:nn",
                                                           "float32:64x64x64:nt"]
    assert "RuntimeWarning" not in r.stderr


def test_float32_matmul_precision_setting():
    """PyTorch's switch: kept and reported; float32 products stay float32 here."""
    assert cg.get_float32_matmul_precision() == "highest"
    try:
        cg.set_float32_matmul_precision("high")
        assert cg.get_float32_matmul_precision() == "high"
        with pytest.warns(UserWarning, match="foo is not one of"):
            cg.set_float32_matmul_precision("foo")
        assert cg.get_float32_matmul_precision() == "high"
        with pytest.raises(RuntimeError, match="expects a str, but got int"):
            cg.set_float32_matmul_precision(3)
        a = np.random.default_rng(5).standard_normal((33, 65)).astype(np.float32)
        np.testing.assert_allclose((cg.from_numpy(a) @ cg.from_numpy(a.T)).numpy(),
                                   a.astype(np.float64) @ a.T, rtol=1e-5, atol=1e-4)
    finally:
        cg.set_float32_matmul_precision("highest")


# --- implicit-GEMM convolution --------------------------------------------------------------


def _conv_cases():
    from test_conv import CONV_CASES

    return [c for c in CONV_CASES if "groups" not in c[2]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_implicit_gemm_conv_matches_the_patch_path(monkeypatch, dtype):
    """On GPUs conv2d (groups of one) is one implicit GEMM forward and one each for the
    input and weight gradients; values and gradients match the CPU path (patches and
    matmul) and the numpy reference, on strided, dilated, asymmetrically padded cases."""
    from test_conv import ref_conv2d

    rng = np.random.default_rng(6)
    for xs, ws, kw, pads in _conv_cases():
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        g = rng.standard_normal((1,)).astype(dtype)
        results = {}
        for kernels in ("", "gpu"):
            monkeypatch.setattr(D, "_KERNELS", kernels)
            xt, wt, bt = (cg.tensor(v, requires_grad=True) for v in (x, w, b))
            with cg.profile() as prof:
                y = cg.nn.functional.conv2d(xt, wt, bt, **kw)
                (y * y).sum().mul(cg.tensor(g)).backward()
            results[kernels] = (y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(),
                                bt.grad.numpy(), prof.functions)
        gpu, cpu = results["gpu"], results[""]
        is_1x1 = ws[2:] == (1, 1) and not kw
        for f in ("conv_gemm_fwd", "conv_gemm_dx", "conv_gemm_dw"):
            assert (f in gpu[4]) == (not is_1x1), gpu[4]
        assert not any(f.startswith("conv_gemm") for f in cpu[4]), cpu[4]
        stride = kw.get("stride", 1)
        stride = (stride, stride) if isinstance(stride, int) else stride
        dil = kw.get("dilation", 1)
        dil = (dil, dil) if isinstance(dil, int) else dil
        ref = ref_conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                         stride, pads, dil)
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(gpu[0], ref, rtol=tol, atol=tol * ws[1] * ws[2] * ws[3])
        for got, want in zip(gpu[1:4], cpu[1:4]):
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10)
