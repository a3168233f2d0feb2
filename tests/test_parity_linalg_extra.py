"""torch.linalg's LU and LDL factorizations, the *_ex functions, householder_product, cond,
diagonal, multi_dot, tensorinv, tensorsolve and vander: values, pivots and info against
PyTorch, gradients against PyTorch and float64 finite differences, argument errors. The
numpy checks (reconstruction, gradcheck) run without torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import clgraph as cg
from clgraph.autograd import gradcheck

L = cg.linalg
RNG = np.random.default_rng(0)


def c(a, dtype=cg.float64, grad=False):
    return cg.tensor(np.asarray(a), dtype=dtype, requires_grad=grad)


def _torch():
    return pytest.importorskip("torch")


A4 = RNG.standard_normal((2, 4, 4))
RECT = RNG.standard_normal((3, 5, 3))
WIDE = RNG.standard_normal((2, 3, 5))
SYM = RNG.standard_normal((3, 6, 6))
SYM = SYM + SYM.transpose(0, 2, 1)
SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])
NOT_PD = np.array([[1.0, 2.0, 0], [2.0, 1.0, 0], [0, 0, 1]])


# --- without torch: reconstructions and finite differences ------------------------------------


def test_lu_reconstructs():
    for a in (A4, RECT, WIDE):
        p, low, up = L.lu(c(a))
        np.testing.assert_allclose((p @ low @ up).numpy(), a, atol=1e-12)
        assert np.allclose(np.tril(low.numpy(), -1) + np.eye(*low.shape[-2:]), low.numpy())
        assert np.allclose(np.triu(up.numpy()), up.numpy())
        r = L.lu_factor_ex(c(a))
        assert r.pivots.dtype is cg.int32 and r.info.dtype is cg.int32
        assert (r.info.numpy() == 0).all()


def test_lu_solve_all_forms():
    lu, piv = L.lu_factor(c(A4))
    b = RNG.standard_normal((2, 4, 3))
    bt = RNG.standard_normal((2, 3, 4))
    np.testing.assert_allclose(L.lu_solve(lu, piv, c(b)).numpy(), np.linalg.solve(A4, b),
                               atol=1e-12)
    np.testing.assert_allclose(L.lu_solve(lu, piv, c(b), adjoint=True).numpy(),
                               np.linalg.solve(A4.transpose(0, 2, 1), b), atol=1e-12)
    np.testing.assert_allclose(L.lu_solve(lu, piv, c(bt), left=False).numpy(),
                               bt @ np.linalg.inv(A4), atol=1e-12)


def test_ldl_solves():
    ld, piv = L.ldl_factor(c(SYM))
    b = RNG.standard_normal((3, 6, 2))
    np.testing.assert_allclose(L.ldl_solve(ld, piv, c(b)).numpy(), np.linalg.solve(SYM, b),
                               atol=1e-11)
    assert piv.dtype is cg.int32 and np.triu(ld.numpy(), 1).max() == 0


def test_ex_functions_report_info():
    r = L.cholesky_ex(c(NOT_PD))
    assert int(r.info) == 2
    np.testing.assert_allclose(r.L.numpy(), [[1, 0, 0], [2, -3, 0], [0, 0, 1]])
    assert int(L.cholesky_ex(c(NOT_PD @ NOT_PD.T + np.eye(3))).info) == 0
    with pytest.raises(L.LinAlgError, match="leading minor of order 2"):
        L.cholesky_ex(c(NOT_PD), check_errors=True)
    r = L.inv_ex(c(SINGULAR))
    assert int(r.info) == 2 and not np.isfinite(r.inverse.numpy()).any()
    with pytest.raises(L.LinAlgError, match="diagonal element 2 is zero"):
        L.inv_ex(c(SINGULAR), check_errors=True)
    batch = np.stack([SINGULAR, np.eye(2) * 2])
    r = L.inv_ex(c(batch))
    np.testing.assert_array_equal(r.info.numpy(), [2, 0])
    np.testing.assert_allclose(r.inverse.numpy()[1], np.eye(2) / 2)
    r = L.solve_ex(c(batch), c(np.ones((2, 2))))
    np.testing.assert_allclose(r.result.numpy()[1], [0.5, 0.5])
    with pytest.raises(RuntimeError, match=r"U\[2,2\] is zero"):
        L.lu_factor(c(SINGULAR))
    assert int(L.lu_factor_ex(c(SINGULAR)).info) == 2
    with pytest.raises(RuntimeError, match="LU without pivoting"):
        L.lu_factor(c(A4), pivot=False)


def test_products_and_tensor_inverses():
    mats = [RNG.standard_normal(s) for s in [(3,), (3, 5), (5, 2), (2, 7), (7,)]]
    got = L.multi_dot([c(m) for m in mats]).numpy()
    np.testing.assert_allclose(got, np.linalg.multi_dot(mats), rtol=1e-12)
    t = RNG.standard_normal((4, 6, 8, 3))
    np.testing.assert_allclose(L.tensorinv(c(t), ind=2).numpy(), np.linalg.tensorinv(t, 2),
                               atol=1e-10)
    a, b = RNG.standard_normal((2, 3, 6)), RNG.standard_normal((2, 3))
    np.testing.assert_allclose(L.tensorsolve(c(a), c(b)).numpy(), np.linalg.tensorsolve(a, b),
                               atol=1e-12)
    x = RNG.standard_normal((2, 4))
    np.testing.assert_allclose(L.vander(c(x), N=5).numpy(),
                               np.stack([np.vander(r, 5, increasing=True) for r in x]))
    assert L.vander(cg.tensor([1, 2, 3])).dtype is cg.int64
    # every integer dtype computes its powers in int64 (no uint8 / int32 wraparound), as
    # PyTorch's; bool and the 16-bit floats are PyTorch's error
    for d in (cg.uint8, cg.int8, cg.int16, cg.int32):
        r = L.vander(cg.tensor([100, 20, 3], dtype=d), N=3)
        assert r.dtype is cg.int64
        assert r.tolist() == [[1, 100, 10000], [1, 20, 400], [1, 3, 9]]
    for d, name in ((cg.bool, "Bool"), (cg.float16, "Half"), (cg.bfloat16, "BFloat16")):
        with pytest.raises(RuntimeError, match=f"integer tensors, but got {name}"):
            L.vander(cg.tensor([1, 0, 1]).to(d))
    np.testing.assert_allclose(L.diagonal(c(A4), offset=1).numpy(),
                               np.diagonal(A4, 1, -2, -1))
    s = np.linalg.svd(A4, compute_uv=False)
    np.testing.assert_allclose(L.cond(c(A4)).numpy(), s[:, 0] / s[:, -1], rtol=1e-10)
    np.testing.assert_allclose(L.cond(c(A4), "fro").numpy(),
                               [np.linalg.cond(m, "fro") for m in A4], rtol=1e-10)
    assert math.isinf(float(L.cond(c(SINGULAR), 1)))


def test_householder_product_matches_qr():
    # numpy has no geqrf (a QR's Householder vectors): check H_i's definition instead
    a, tau = RNG.standard_normal((5, 3)), RNG.standard_normal(2)
    expect = np.eye(5)
    for i in range(2):
        v = np.concatenate([np.zeros(i), [1.0], a[i + 1:, i]])
        expect = expect @ (np.eye(5) - tau[i] * np.outer(v, v))
    np.testing.assert_allclose(L.householder_product(c(a), c(tau)).numpy(), expect[:, :3],
                               atol=1e-12)


def test_gradients_finite_differences():
    a = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    b = RNG.standard_normal((3, 2))
    spd = a @ a.T
    checks = [
        (lambda x: L.lu_factor(x).LU, (c(a, grad=True),)),
        (lambda x: L.lu(x).L.sum() + (L.lu(x).U ** 2).sum(), (c(a, grad=True),)),
        (lambda x, y: L.lu_solve(*L.lu_factor(x), y), (c(a, grad=True), c(b, grad=True))),
        (lambda x, y: L.lu_solve(*L.lu_factor(x), y, adjoint=True),
         (c(a, grad=True), c(b, grad=True))),
        (lambda x: L.cholesky_ex((x + x.mT) / 2).L, (c(spd, grad=True),)),
        (lambda x: L.inv_ex(x).inverse, (c(a, grad=True),)),
        (lambda x, y: L.solve_ex(x, y).result, (c(a, grad=True), c(b, grad=True))),
        (lambda x: L.cond(x), (c(a, grad=True),)),
        (lambda x: L.cond(x, "fro"), (c(a, grad=True),)),
        (lambda x, t: L.householder_product(x, t),
         (c(RNG.standard_normal((4, 3)), grad=True), c(RNG.standard_normal(2), grad=True))),
        (lambda x, y, z: L.multi_dot([x, y, z]),
         (c(RNG.standard_normal(3), grad=True), c(RNG.standard_normal((3, 4)), grad=True),
          c(RNG.standard_normal((4, 2)), grad=True))),
        (lambda x, y: L.tensorsolve(x, y),
         (c(RNG.standard_normal((2, 3, 6)), grad=True), c(RNG.standard_normal((2, 3)),
                                                          grad=True))),
        (lambda x: L.tensorinv(x, 1), (c(a, grad=True),)),
        (lambda x: L.vander(x, N=4), (c(np.array([0.0, 0.5, -1.2]), grad=True),)),
    ]
    for fn, inputs in checks:
        assert gradcheck(fn, inputs), fn


# --- against PyTorch ----------------------------------------------------------------------------


def test_lu_against_torch():
    torch = _torch()
    for a in (A4, RECT, WIDE, SINGULAR):
        got, exp = L.lu_factor_ex(c(a)), torch.linalg.lu_factor_ex(torch.tensor(a))
        np.testing.assert_allclose(got.LU.numpy(), exp.LU.numpy(), atol=1e-12)
        np.testing.assert_array_equal(got.pivots.numpy(), exp.pivots.numpy())
        np.testing.assert_array_equal(got.info.numpy(), exp.info.numpy())
        for g, e in zip(L.lu(c(a)), torch.linalg.lu(torch.tensor(a))):
            np.testing.assert_allclose(g.numpy(), e.numpy(), atol=1e-12)
    got = L.lu_factor(c(A4, cg.float32))
    assert got.LU.dtype is cg.float32


def test_ldl_and_cholesky_ex_against_torch():
    torch = _torch()
    special = np.array([[0.0, 1, 2], [1, 0, 3], [2, 3, 1]])
    for a in (SYM, special, np.zeros((3, 3))):
        got, exp = L.ldl_factor_ex(c(a)), torch.linalg.ldl_factor_ex(torch.tensor(a))
        np.testing.assert_allclose(got.LD.numpy(), exp.LD.numpy(), atol=1e-12)
        np.testing.assert_array_equal(got.pivots.numpy(), exp.pivots.numpy())
        np.testing.assert_array_equal(got.info.numpy(), exp.info.numpy())
    ld, piv = torch.linalg.ldl_factor(torch.tensor(SYM))
    b = RNG.standard_normal((3, 6, 2))
    np.testing.assert_allclose(
        L.ldl_solve(c(ld.numpy()), cg.tensor(piv.numpy()), c(b)).numpy(),
        torch.linalg.ldl_solve(ld, piv, torch.tensor(b)).numpy(), atol=1e-11)
    for a in (NOT_PD, np.stack([NOT_PD, np.eye(3)])):
        for upper in (False, True):
            got = L.cholesky_ex(c(a), upper=upper)
            exp = torch.linalg.cholesky_ex(torch.tensor(a), upper=upper)
            np.testing.assert_allclose(got.L.numpy(), exp.L.numpy())
            np.testing.assert_array_equal(got.info.numpy(), exp.info.numpy())
    got, exp = L.inv_ex(c(SINGULAR)), torch.linalg.inv_ex(torch.tensor(SINGULAR))
    np.testing.assert_array_equal(got.inverse.numpy(), exp.inverse.numpy())


def _grads(fn_c, fn_t, arrays):
    torch = _torch()
    cs = [c(a, grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_c, out_t = fn_c(*cs), fn_t(*ts)
    np.testing.assert_allclose(out_c.detach().numpy(), out_t.detach().numpy(), rtol=1e-9,
                               atol=1e-12)
    w = RNG.standard_normal(tuple(out_t.shape))
    (out_c * c(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    for a, b in zip(cs, ts):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_gradients_against_torch():
    torch = _torch()
    tl = torch.linalg
    a = RNG.standard_normal((2, 4, 4))
    b = RNG.standard_normal((2, 4, 2))
    _grads(lambda x: L.lu_factor(x).LU, lambda x: tl.lu_factor(x).LU, [a])
    for shape in ((3, 5), (5, 3)):  # wide and tall
        _grads(lambda x: L.lu_factor(x).LU, lambda x: tl.lu_factor(x).LU,
               [RNG.standard_normal(shape)])
        _grads(lambda x: L.lu(x).L.sum() + L.lu(x).U.sum(),
               lambda x: tl.lu(x).L.sum() + tl.lu(x).U.sum(), [RNG.standard_normal(shape)])
    _grads(lambda x: L.lu(x).L + L.lu(x).U, lambda x: tl.lu(x).L + tl.lu(x).U, [a])
    _grads(lambda x, y: L.lu_solve(*L.lu_factor(x), y),
           lambda x, y: tl.lu_solve(*tl.lu_factor(x), y), [a, b])
    _grads(lambda x, y: L.lu_solve(*L.lu_factor(x), y.mT, left=False, adjoint=True),
           lambda x, y: tl.lu_solve(*tl.lu_factor(x), y.mT, left=False, adjoint=True), [a, b])
    _grads(lambda x: L.cond(x), lambda x: tl.cond(x), [a])
    _grads(lambda x: L.cond(x, -2), lambda x: tl.cond(x, -2), [a])
    # (PyTorch 2.13's cond with p=1 fails in its own backward: an in-place inv_ex output)
    np.testing.assert_allclose(L.cond(c(a), 1).numpy(), tl.cond(torch.tensor(a), 1).numpy())
    _grads(lambda x, t: L.householder_product(x, t),
           lambda x, t: tl.householder_product(x, t),
           [RNG.standard_normal((2, 5, 3)), RNG.standard_normal((2, 3))])
    _grads(lambda *m: L.multi_dot(m), lambda *m: tl.multi_dot(m),
           [RNG.standard_normal(s) for s in [(3,), (3, 5), (5, 2), (2, 7)]])
    _grads(lambda x, y: L.tensorsolve(x, y, dims=(0,)),
           lambda x, y: tl.tensorsolve(x, y, dims=(0,)),
           [RNG.standard_normal((6, 2, 3)), RNG.standard_normal((2, 3))])
    _grads(lambda x: L.tensorinv(x, 2), lambda x: tl.tensorinv(x, 2),
           [RNG.standard_normal((2, 3, 6))])
    _grads(lambda x: L.vander(x, N=4), lambda x: tl.vander(x, N=4),
           [np.array([0.0, 0.5, -1.2])])
    spd = a @ a.transpose(0, 2, 1) + np.eye(4)
    _grads(lambda x: L.cholesky_ex(x).L, lambda x: tl.cholesky_ex(x).L, [spd])
    _grads(lambda x: L.inv_ex(x).inverse, lambda x: tl.inv_ex(x).inverse, [a])
    _grads(lambda x, y: L.solve_ex(x, y).result, lambda x, y: tl.solve_ex(x, y).result, [a, b])


ERRORS = [
    (lambda: L.multi_dot([c(np.ones(3))]), "expected at least 2 tensors but got 1"),
    (lambda: L.multi_dot([c(np.ones((2, 3))), c(np.ones((2, 3)))]),
     r"tensors 0 and 1 with shapes \[2, 3\] and \[2, 3\] cannot be multiplied"),
    (lambda: L.multi_dot([c(np.ones((2, 3, 3))), c(np.ones((3, 3)))]),
     "the first tensor must be 1D or 2D but got 3D"),
    (lambda: L.tensorinv(c(np.ones((2, 3, 4))), ind=1), "but got 12 != 2"),
    (lambda: L.tensorinv(c(np.ones((2, 2))), ind=0), "strictly positive integer for 'ind'"),
    (lambda: L.tensorsolve(c(np.ones((2, 3, 6))), c(np.ones(5))), "but got 18 != 5"),
    (lambda: L.cond(c(np.ones((2, 3))), "fro"), "must be batches of square matrices"),
    (lambda: L.cond(c(np.eye(2)), "foo"), "invalid norm type: foo"),
    (lambda: L.vander(c(np.ones(3)), N=0), "N must be greater than 1"),
    (lambda: L.householder_product(c(np.ones((2, 3))), c(np.ones(1))),
     r"input.shape\[-2\] must be greater than or equal to input.shape\[-1\]"),
    (lambda: L.householder_product(c(np.ones((3, 2))), c(np.ones(3))),
     r"input.shape\[-1\] must be greater than or equal to tau.shape\[-1\]"),
    (lambda: L.lu_solve(c(np.eye(3)), cg.tensor([1, 2, 3], dtype=cg.int32),
                        c(np.ones((2, 1)))), r"Incompatible shapes of A and B .*3x3 and 2x1"),
    (lambda: L.lu_factor(c(np.ones(3))), "Expected tensor with 2 or more dimensions"),
    (lambda: L.cholesky_ex(c(np.ones((2, 3)))), "must be batches of square matrices"),
]


@pytest.mark.parametrize("fn,match", ERRORS, ids=range(len(ERRORS)))
def test_errors(fn, match):
    with pytest.raises(RuntimeError, match=match):
        fn()


def test_errors_match_torch_wording():
    torch = _torch()
    for fn_t, fn_c in (
        (lambda: torch.linalg.multi_dot([torch.ones(3)]), lambda: L.multi_dot([c(np.ones(3))])),
        (lambda: torch.linalg.tensorinv(torch.ones(2, 3, 4), ind=1),
         lambda: L.tensorinv(c(np.ones((2, 3, 4))), ind=1)),
        (lambda: torch.linalg.lu_factor(torch.tensor(SINGULAR)),
         lambda: L.lu_factor(c(SINGULAR))),
    ):
        with pytest.raises(RuntimeError) as et:
            fn_t()
        with pytest.raises(RuntimeError) as ec:
            fn_c()
        assert str(ec.value) == str(et.value)


EMPTY_CASES = {
    "cholesky_ex upper": lambda m, a: tuple(m.linalg.cholesky_ex(a, upper=True)),
    "inv_ex": lambda m, a: tuple(m.linalg.inv_ex(a)),
    "ldl_factor": lambda m, a: tuple(m.linalg.ldl_factor(a)),
    "ldl_factor_ex": lambda m, a: tuple(m.linalg.ldl_factor_ex(a)),
    "lu_factor_ex": lambda m, a: tuple(m.linalg.lu_factor_ex(a)),
    "lu": lambda m, a: tuple(m.linalg.lu(a)),
    "solve_ex": lambda m, a: tuple(m.linalg.solve_ex(a, a[..., :1])),
    "lu_solve": lambda m, a: m.linalg.lu_solve(*m.linalg.lu_factor(a), a),
    "ldl_solve": lambda m, a: m.linalg.ldl_solve(*m.linalg.ldl_factor(a), a),
    "lstsq": lambda m, a: tuple(m.linalg.lstsq(a, a)),
    "matrix_norm 1": lambda m, a: m.linalg.matrix_norm(a, 1),
    "matrix_norm 2": lambda m, a: m.linalg.matrix_norm(a, 2),
    "matrix_norm inf": lambda m, a: m.linalg.matrix_norm(a, math.inf),
    "cond": lambda m, a: m.linalg.cond(a),
    "cond fro": lambda m, a: m.linalg.cond(a, "fro"),
    "cond -1": lambda m, a: m.linalg.cond(a, -1),
}


@pytest.mark.parametrize("name", sorted(EMPTY_CASES))
def test_empty_matrices_match_torch(name):
    torch = _torch()
    f = EMPTY_CASES[name]
    for shape in ((0, 0), (3, 0, 0), (0, 2, 2)):
        got, want = f(cg, c(np.zeros(shape))), f(torch, torch.zeros(shape, dtype=torch.float64))
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape) and str(g.dtype) == str(w.dtype), (name, shape)
            np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_tensorsolve_dims_and_vander_of_a_scalar_match_torch():
    torch = _torch()
    a, b = RNG.standard_normal((2, 3, 6)), RNG.standard_normal((2, 3))
    for dims, bb in (([0, 2], b), (None, b.T), ([-1], b)):
        np.testing.assert_allclose(
            L.tensorsolve(c(a), c(bb), dims=dims).numpy(),
            torch.linalg.tensorsolve(torch.tensor(a), torch.tensor(bb), dims=dims).numpy(),
            atol=1e-10)
    with pytest.raises(RuntimeError, match="but got 5 != 6"):
        L.tensorsolve(c(np.ones((2, 3, 5))), c(np.ones((2, 3))))
    x = c(2.0, grad=True)
    v = L.vander(x, N=3)
    v.sum().backward()
    np.testing.assert_array_equal(v.detach().numpy(), [[1.0, 2.0, 4.0]])
    assert x.grad.item() == 5.0
    for bad in (lambda: L.vander(c(2.0)), lambda: L.vander(c(np.ones(3)), N=1)):
        with pytest.raises(RuntimeError, match="N must be greater than 1"):
            bad()


def test_cdist_p0_gradient_is_zero_in_every_mode():
    torch = _torch()
    x1, x2 = RNG.standard_normal((5, 5, 2)), RNG.standard_normal((5, 6, 2))
    x1[0, 0, 0] = x2[0, 0, 0]  # one coordinate equal: the count drops
    for mode in ("use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"):
        t1, t2 = c(x1, grad=True), c(x2, grad=True)
        out = cg.cdist(t1, t2, 0.0, mode)
        out.sum().backward()
        want = torch.cdist(torch.tensor(x1), torch.tensor(x2), 0.0, mode)
        np.testing.assert_array_equal(out.detach().numpy(), want.numpy())
        assert (t1.grad.numpy() == 0).all() and (t2.grad.numpy() == 0).all()


def test_householder_product_without_reflectors_is_on_the_graph():
    torch = _torch()
    for shape in ((0, 0), (5, 5), (2, 4, 3)):
        a = c(RNG.standard_normal(shape), grad=True)
        q = L.householder_product(a, c(np.zeros((*shape[:-2], 0))))
        want = torch.linalg.householder_product(torch.zeros(shape, dtype=torch.float64),
                                                torch.zeros(*shape[:-2], 0, dtype=torch.float64))
        np.testing.assert_array_equal(q.detach().numpy(), want.numpy())
        assert q.requires_grad
        q.sum().backward()
        assert a.grad.shape == shape and (a.grad.numpy() == 0).all()
