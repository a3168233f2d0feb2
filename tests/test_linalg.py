"""matmul and friends against numpy: shapes with tails, transposed and sliced operands,
broadcast batch dims, dtypes, and PyTorch's error messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import clgraph as cg

TOL = {np.float32: 2e-5, np.float64: 1e-12, np.float16: 2e-2}


def check(a, b, ta=None, tb=None, fn=None):
    ta = cg.from_numpy(np.ascontiguousarray(a)) if ta is None else ta
    tb = cg.from_numpy(np.ascontiguousarray(b)) if tb is None else tb
    got = (fn or cg.matmul)(ta, tb).numpy()
    exp = np.matmul(a.astype(np.float64), b.astype(np.float64)) if a.dtype.kind == "f" else a @ b
    assert got.shape == exp.shape
    if a.dtype.kind == "f":
        tol = TOL[a.dtype.type] * max(1, a.shape[-1])
        np.testing.assert_allclose(got, exp, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 7, 1), (5, 3, 17), (17, 33, 9), (64, 64, 64),
                                   (100, 1, 35), (6, 129, 16), (13, 0, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mm_shapes(m, k, n, dtype):
    rng = np.random.default_rng(m * 100 + n)
    check(rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype))


def test_half_and_int():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (9, 20)).astype(np.float16)
    b = rng.uniform(-1, 1, (20, 11)).astype(np.float16)
    got = (cg.from_numpy(a) @ cg.from_numpy(b))
    assert got.dtype == cg.float16
    np.testing.assert_allclose(got.numpy().astype(np.float64),
                               a.astype(np.float64) @ b.astype(np.float64), atol=3e-2)
    ai = rng.integers(-5, 5, (7, 9))
    bi = rng.integers(-5, 5, (9, 4))
    check(ai, bi)
    check(ai.astype(np.int32), bi.astype(np.int32))


def test_transposed_and_sliced_operands():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 30)).astype(np.float32)
    b = rng.standard_normal((30, 50)).astype(np.float32)
    ta, tb = cg.from_numpy(a), cg.from_numpy(b)
    check(b.T, a.T, tb.t(), ta.t())
    check(b.T[:, :20], a.T[:20], tb.t()[:, :20], ta.t()[:20])
    check(a[::2, 1:], b[1:, ::3], ta[::2, 1:], tb[1:, ::3])
    check(a.T, a, ta.t(), ta)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4,)), ((4,), (4, 5)), ((4,), (4,)),
                                   ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
                                   ((2, 1, 3, 4), (5, 4, 6)), ((2, 3, 4), (2, 4, 5)),
                                   ((4,), (2, 4, 5)), ((2, 3, 4), (4,))])
def test_matmul_broadcasting(sa, sb):
    rng = np.random.default_rng(2)
    check(rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32))


def test_bmm_mm_dot_mv_outer():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4, 5)).astype(np.float32)
    b = rng.standard_normal((3, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(cg.bmm(cg.from_numpy(a), cg.from_numpy(b)).numpy(), a @ b,
                               rtol=1e-5, atol=1e-5)
    v = rng.standard_normal(5).astype(np.float32)
    np.testing.assert_allclose(cg.dot(cg.from_numpy(v), cg.from_numpy(v)).item(), v @ v,
                               rtol=1e-5)
    np.testing.assert_allclose(cg.mv(cg.from_numpy(a[0]), cg.from_numpy(v)).numpy(), a[0] @ v,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cg.outer(cg.from_numpy(v), cg.from_numpy(v)).numpy(),
                               np.outer(v, v), rtol=1e-6)


def test_errors():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied "
                       r"\(2x3 and 4x5\)"):
        cg.ones(2, 3) @ cg.ones(4, 5)
    with pytest.raises(RuntimeError, match="both arguments to matmul need to be at least 1D"):
        cg.matmul(cg.tensor(1.0), cg.ones(2))
    with pytest.raises(RuntimeError, match="inconsistent tensor size"):
        cg.ones(3) @ cg.ones(4)
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
        cg.ones(2, 2) @ cg.ones(2, 2, dtype=cg.float64)
    with pytest.raises(RuntimeError, match="batch1 must be a 3D tensor"):
        cg.bmm(cg.ones(2, 2), cg.ones(2, 2))


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.booleans(),
       st.booleans())
def test_mm_hypothesis(m, k, n, ta, tb):
    rng = np.random.default_rng(m * k * n)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    xa, xb = cg.from_numpy(a), cg.from_numpy(b)
    if ta:
        a, xa = a.T, xa.t()
    if tb:
        b, xb = b.T, xb.t()
    check(a, b, xa, xb)


@pytest.mark.parametrize("m,k,n", [(1, 9, 33), (7, 5, 3), (40, 30, 50), (400, 20, 24)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_transposed_right_operand(m, k, n, dtype):
    """x @ W.T reads W in place (gathered columns, or C^T = W x^T for one row) or through a
    transposed copy for many rows; every path equals numpy."""
    rng = np.random.default_rng(m + n)
    x = rng.standard_normal((m, k)) * 4
    w = rng.standard_normal((n, k)) * 4
    x, w = x.astype(dtype), w.astype(dtype)
    tw = cg.from_numpy(w)
    check(x, w.T, tb=tw.t())
    check(x[None].repeat(2, 0), w.T, tb=tw.t())  # batched left operand, broadcast W.T


@pytest.mark.parametrize("m,k,n", [(9, 3, 17), (129, 300, 33), (300, 513, 65),
                                   (1100, 300, 200)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_left_operand_strided_along_k(m, k, n, dtype):
    """An A strided along k (the transposed g in a weight gradient g^T x, or every other
    column) is packed into local memory on CPUs, for one or several column tiles per
    work-group (1100 x 200 on 2 cores: 4): row tails past a group of rows, k past one
    packed panel, column tails and idle column tiles equal numpy."""
    rng = np.random.default_rng(m + k)
    d = getattr(cg, dtype)
    g = cg.tensor(rng.standard_normal((k, m)).astype(np.float32)).to(d)
    x = cg.tensor(rng.standard_normal((k, n)).astype(np.float32)).to(d)
    wide = cg.tensor(rng.standard_normal((m, 2 * k)).astype(np.float32)).to(d)
    f = np.float64
    tol = {"float16": 2e-2, "bfloat16": 6e-2}.get(dtype, 1e-4)
    for a in (g.T, wide[:, ::2]):
        got = (a @ x).to(cg.float64).numpy()
        want = a.to(cg.float64).numpy().astype(f) @ x.to(cg.float64).numpy().astype(f)
        scale = np.abs(want).max() + 1
        assert np.abs(got - want).max() / scale < tol
        got = (a.unsqueeze(0).expand(2, m, k) @ x).to(cg.float64).numpy()  # batched
        assert np.abs(got - want[None]).max() / scale < tol


@pytest.mark.parametrize("ta,tb", [(False, True), (True, False), (True, True)])
def test_transposed_operand_gradients(ta, tb):
    """Gradients of products of transposed views (float64 finite differences); a transposed
    operand's gradient arrives in its layout, so a Linear weight's .grad needs no copy."""
    from clgraph.autograd import gradcheck

    rng = np.random.default_rng(3)
    # leaves stored so that the product reads their transposes when ta / tb
    a = cg.tensor(rng.standard_normal((5, 6) if ta else (6, 5)), requires_grad=True)
    b = cg.tensor(rng.standard_normal((7, 5) if tb else (5, 7)), requires_grad=True)
    assert gradcheck(lambda p, q: (p.T if ta else p) @ (q.T if tb else q), (a, b))

    lin = cg.nn.Linear(5, 7).double()
    x = cg.tensor(rng.standard_normal((4, 5)))
    lin(x).sum().backward()
    assert lin.weight.grad.is_contiguous()
    np.testing.assert_allclose(lin.weight.grad.numpy(), np.ones((4, 7)).T @ x.numpy())


def test_device_limits_shape_the_build():
    """The GPU matmul tile shrinks to the device's work-group limit, and a device whose
    OpenCL C is older than 1.2 gets a clear error naming it instead of a compiler log."""
    from types import SimpleNamespace

    from clgraph.codegen import KernelBuildError, cache
    from clgraph.ops import gemm

    def default(wg, local):
        dev = SimpleNamespace(max_work_group_size=wg, local_memory=local)
        return gemm.candidates(dev, "float32:256x256x256:nn")

    big = default(1024, 48 * 1024)
    assert big[0] == gemm.DEFAULT and len(big) > 20
    small = default(64, 8 * 1024)
    assert all(p["MDIMC"] * p["NDIMC"] <= 64 for p in small)
    assert all((p["KWG"] * (p["MWG"] + 1) + p["KWG"] * p["NWG"]) * 4 <= 8 * 1024 for p in small)
    assert small[0]["MDIMC"] * small[0]["NDIMC"] <= 64
    dev = cg.ones(1).device.info
    old = SimpleNamespace(opencl_c_version=(1, 1), index=7, name="OldGPU")
    with pytest.raises(KernelBuildError, match=r"cl:7 \(OldGPU\) compiles OpenCL C 1\.1"):
        cache._compile(old, "__kernel void k() {}", (), "k")
    assert dev.opencl_c_version >= (1, 2)


def test_batch_times_matrix_with_empty_dims():
    """A batch times one matrix folds the batch into the rows, also when a size is 0."""
    for ashape, bshape in [((2, 3, 0), (0, 4)), ((2, 0, 5), (5, 4)), ((0, 3, 5), (5, 4)),
                           ((2, 3, 5), (5, 0))]:
        a = np.ones(ashape, np.float32)
        b = np.ones(bshape, np.float32)
        got = (cg.from_numpy(a) @ cg.from_numpy(b)).numpy()
        np.testing.assert_array_equal(got, a @ b)


@pytest.mark.parametrize("rows,k,n", [(1, 7, 33), (7, 5, 3), (300, 64, 65), (2048 + 3, 256, 24)])
def test_linear_adds_the_bias_in_the_product_kernel(rows, k, n):
    """F.linear eagerly: one linear op, its float32 kernel adding the bias as it stores the
    product (no separate add); values against numpy for any rows, a bias that is a slice,
    a weight that is a transposed view, and leading dims."""
    import clgraph.nn.functional as F
    rng = np.random.default_rng(rows + n)
    x = rng.standard_normal((rows, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    bb = rng.standard_normal(n + 3).astype(np.float32)
    want = x.astype(np.float64) @ w.T.astype(np.float64) + bb[2:n + 2]
    tw = cg.tensor(np.ascontiguousarray(w.T)).t()  # (n, k) with strides (1, n)
    for weight in (cg.tensor(w), tw):
        with cg.profile() as prof:
            got = F.linear(cg.tensor(x), weight, cg.tensor(bb)[2:n + 2])
        assert [f for f in prof.functions if "add" in f] == []
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)
    got = F.linear(cg.tensor(x.reshape(1, rows, k)), cg.tensor(w), cg.tensor(bb[2:n + 2]))
    np.testing.assert_allclose(got.numpy().reshape(rows, n), want, rtol=1e-4, atol=1e-4)


def test_linear_gradients_autocast_and_compile():
    """The linear op's gradients (float64 finite differences; float32 against float64),
    under autocast (product dtype), and a compiled call (product and add kept apart for the
    compiler) equal to eager."""
    import clgraph.nn.functional as F
    from clgraph.autograd import gradcheck
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s) for s in ((6, 5), (4, 5), (4,)))
    args = [cg.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert gradcheck(F.linear, tuple(args))
    a32 = [cg.tensor(a.astype(np.float32), requires_grad=True) for a in (x, w, b)]
    F.linear(*a32).pow(2).sum().backward()
    F.linear(*args).pow(2).sum().backward()
    for t32, t64 in zip(a32, args):
        np.testing.assert_allclose(t32.grad.numpy(), t64.grad.numpy(), rtol=1e-4, atol=1e-4)
    with cg.autocast("cpu", dtype=cg.bfloat16):
        assert F.linear(*a32).dtype is cg.bfloat16
    lin = cg.nn.Linear(5, 4)
    xs = cg.tensor(x.astype(np.float32))
    f = cg.compile(lambda t: lin(t).relu())
    for _ in range(2):  # the trace, then a replay
        np.testing.assert_allclose(f(xs).detach().numpy(), lin(xs).relu().detach().numpy(),
                                   rtol=1e-6)


@pytest.mark.parametrize("m,k,n", [(16, 50176, 9), (32, 12544, 144), (20, 4096, 7),
                                   (9, 4099, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skinny_products_over_a_long_k(m, k, n, dtype):
    """A convolution's weight gradient (few rows and columns, k the batch's pixels): on
    CPUs k is split into chunks computed side by side and summed (k with no suitable
    divisor, 4099, is not), with as few rows per work-group as the rows need."""
    rng = np.random.default_rng(m + n)
    g = rng.standard_normal((k, m)).astype(dtype)
    x = rng.standard_normal((k, n)).astype(dtype)
    got = (cg.tensor(g).T @ cg.tensor(x)).numpy()
    want = g.T.astype(np.float64) @ x
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.abs(got - want).max() / np.abs(want).max() < tol
    got = (cg.tensor(np.ascontiguousarray(g.T)) @ cg.tensor(x)).numpy()  # A row-major
    assert np.abs(got - want).max() / np.abs(want).max() < tol
