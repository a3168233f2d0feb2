"""torch.linalg's factorizations, inverses and solvers (ops/decomp.py): values against
numpy on batches and both float dtypes, float64 gradchecks (gradgradchecks for inv and
det), PyTorch's errors and named results, the torch.* spellings."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph.autograd import gradcheck, gradgradcheck

L = cg.linalg
RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4, 4))
SPD = A @ A.transpose(0, 2, 1) + 4 * np.eye(4)
B = RNG.standard_normal((3, 4, 2))
TALL = RNG.standard_normal((5, 3))
WIDE = RNG.standard_normal((3, 5))


def leaf(a):
    return cg.tensor(a, requires_grad=True)


def _eigh_loss(a):
    r = L.eigh((a + a.mT) / 2)
    return (r.eigenvalues * cg.arange(4.0)).sum() + (
        r.eigenvectors ** 2 * cg.arange(16.0).reshape(4, 4)).sum()


def _svd_loss(a):
    r = L.svd(a, full_matrices=False)
    return r.S.sum() + r.U.abs().sum() + r.Vh.abs().sum()  # signs cancel in abs


GRADCHECKS = {
    "inv": (L.inv, (A,)),
    "det": (L.det, (A,)),
    "slogdet": (lambda a: L.slogdet(a).logabsdet, (A,)),
    "solve": (L.solve, (A, B)),
    "solve vector": (lambda a, b: L.solve(a, b[..., 0]), (A, B)),
    "solve right": (lambda a, b: L.solve(a, b.mT, left=False), (A, B)),
    "solve_triangular": (lambda a, b: L.solve_triangular(a, b, upper=False),
                         (A + 4 * np.eye(4), B)),
    "solve_triangular upper unit": (
        lambda a, b: L.solve_triangular(a, b, upper=True, unitriangular=True), (A, B)),
    "cholesky": (lambda a: L.cholesky((a + a.mT) / 2), (SPD,)),
    "cholesky upper": (lambda a: L.cholesky((a + a.mT) / 2, upper=True), (SPD,)),
    "qr": (lambda a: sum(x.sum() * (i + 1) for i, x in enumerate(L.qr(a))), (TALL,)),
    "eigh": (_eigh_loss, (A,)),
    "svd tall": (_svd_loss, (TALL,)),
    "svd wide": (_svd_loss, (WIDE,)),
    "pinv": (L.pinv, (TALL,)),
    "svdvals": (L.svdvals, (WIDE,)),
    # through tril, as PyTorch's gradcheck: its L gradient is not masked to the triangle
    "cholesky_solve": (lambda b, low: cg.cholesky_solve(b, low.tril()),
                       (B, np.linalg.cholesky(SPD))),
    "lstsq": (lambda a, b: L.lstsq(a, b).solution, (TALL, RNG.standard_normal((5, 2)))),
    "matrix_norm nuc": (lambda a: L.matrix_norm(a, "nuc"), (TALL,)),
    "matrix_norm 2": (lambda a: L.matrix_norm(a, 2), (WIDE,)),
    "matrix_exp": (L.matrix_exp, (A * 0.7,)),
    "matrix_power -3": (lambda a: L.matrix_power(a, -3), (A + 4 * np.eye(4),)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradients(name):
    f, args = GRADCHECKS[name]
    assert gradcheck(f, tuple(leaf(a) for a in args))


def test_second_order():
    assert gradgradcheck(L.inv, (leaf(A + 4 * np.eye(4)),))
    assert gradgradcheck(L.det, (leaf(A),))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_against_numpy(dtype):
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    a, spd, b = (x.astype(dtype) for x in (A, SPD, B))
    t = cg.tensor(a)
    np.testing.assert_allclose(L.inv(t).numpy(), np.linalg.inv(a), **tol)
    np.testing.assert_allclose(L.det(t).numpy(), np.linalg.det(a), **tol)
    sign, logabs = np.linalg.slogdet(a)
    r = L.slogdet(t)
    np.testing.assert_array_equal(r.sign.numpy(), sign)
    np.testing.assert_allclose(r.logabsdet.numpy(), logabs, **tol)
    np.testing.assert_allclose(L.solve(t, cg.tensor(b)).numpy(), np.linalg.solve(a, b), **tol)
    np.testing.assert_allclose(L.cholesky(cg.tensor(spd)).numpy(), np.linalg.cholesky(spd),
                               **tol)
    w, v = L.eigh(cg.tensor(spd))
    np.testing.assert_allclose(w.numpy(), np.linalg.eigvalsh(spd), **tol)
    np.testing.assert_allclose(((v * w.unsqueeze(-2)) @ v.mT).numpy(), spd, **tol)
    u, s, vh = L.svd(cg.tensor(TALL.astype(dtype)), full_matrices=False)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(TALL, compute_uv=False), **tol)
    np.testing.assert_allclose((u * s.unsqueeze(-2) @ vh).numpy(), TALL, **tol)
    q, rr = L.qr(cg.tensor(TALL.astype(dtype)))
    np.testing.assert_allclose((q @ rr).numpy(), TALL, **tol)
    np.testing.assert_allclose(L.pinv(cg.tensor(TALL.astype(dtype))).numpy(),
                               np.linalg.pinv(TALL), **tol)
    assert L.matrix_rank(cg.tensor(np.ones((3, 3), dtype))).item() == 1
    np.testing.assert_allclose(L.matrix_power(t, 3).numpy(), a @ a @ a, **tol)
    np.testing.assert_allclose(L.matrix_power(t, 0).numpy(), np.broadcast_to(np.eye(4), a.shape))


def test_torch_spellings_and_named_results():
    t = cg.tensor(A[0])
    assert cg.det(t).shape == () and t.det().shape == ()
    np.testing.assert_allclose(cg.inverse(t).numpy(), np.linalg.inv(A[0]), rtol=1e-10)
    np.testing.assert_allclose(t.inverse().numpy(), np.linalg.inv(A[0]), rtol=1e-10)
    u, s, v = cg.svd(cg.tensor(TALL))  # V, not V^T
    np.testing.assert_allclose((u * s @ v.mT).numpy(), TALL, atol=1e-12)
    assert u.shape == (5, 3) and v.shape == (3, 3)
    assert cg.svd(cg.tensor(TALL), some=False).U.shape == (5, 5)
    np.testing.assert_allclose(cg.pinverse(cg.tensor(TALL)).numpy(), np.linalg.pinv(TALL),
                               atol=1e-12)
    assert np.isnan(cg.logdet(cg.tensor(-np.eye(3))).item())
    assert cg.logdet(cg.tensor(np.zeros((2, 2)))).item() == -np.inf
    r = L.slogdet(t)
    assert r._fields == ("sign", "logabsdet") and "torch.return_types.slogdet" in repr(r)
    assert L.eigh(t + t.mT)._fields == ("eigenvalues", "eigenvectors")
    assert L.svd(t)._fields == ("U", "S", "Vh") and L.qr(t)._fields == ("Q", "R")
    np.testing.assert_allclose(cg.cholesky(cg.tensor(SPD[0])).numpy(),
                               np.linalg.cholesky(SPD[0]), rtol=1e-12)
    np.testing.assert_allclose(L.cross(cg.tensor([1.0, 0, 0]), cg.tensor([0.0, 1, 0])).numpy(),
                               [0, 0, 1])
    np.testing.assert_allclose(L.vecdot(cg.tensor(B), cg.tensor(B)).numpy(),
                               (B * B).sum(-1), rtol=1e-12)


def test_errors():
    with pytest.raises(L.LinAlgError, match="singular"):
        L.inv(cg.zeros(3, 3))
    with pytest.raises(L.LinAlgError, match=r"not positive-definite \(batch element 1\)"):
        L.cholesky(cg.tensor(np.stack([np.eye(3), -np.eye(3)])))
    with pytest.raises(RuntimeError, match="must be batches of square matrices"):
        L.inv(cg.zeros(2, 3))
    with pytest.raises(RuntimeError, match="Expected a floating point tensor"):
        L.det(cg.ones(2, 2, dtype=cg.int64))
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        L.qr(cg.zeros(2, 2), mode="full")
    assert issubclass(L.LinAlgError, RuntimeError)


def test_torch_parity():
    torch = torch_or_skip()
    tA, tB = torch.tensor(A), torch.tensor(B)
    cA, cB = cg.tensor(A), cg.tensor(B)
    for f, g in [(lambda m: m.linalg.inv(cA), lambda m: m.linalg.inv(tA)),
                 (lambda m: m.linalg.solve(cA, cB), lambda m: m.linalg.solve(tA, tB)),
                 (lambda m: m.linalg.matrix_exp(cA), lambda m: m.linalg.matrix_exp(tA)),
                 (lambda m: m.linalg.matrix_norm(cA, "nuc"),
                  lambda m: m.linalg.matrix_norm(tA, "nuc")),
                 (lambda m: m.linalg.svdvals(cA), lambda m: m.linalg.svdvals(tA))]:
        np.testing.assert_allclose(f(cg).numpy(), g(torch).numpy(), rtol=1e-9, atol=1e-12)


def _value_and_grad_parity(torch, ft, fc, *arrays, n_out=1):
    """Outputs and the gradient of sum(out_i * w_i) over the first n_out outputs, both
    against PyTorch."""
    xt = [torch.tensor(a, requires_grad=True) for a in arrays]
    xc = [leaf(a) for a in arrays]
    ot, oc = ft(*xt), fc(*xc)
    ot, oc = (ot, oc) if isinstance(ot, tuple) else ((ot,), (oc,))
    for t, g in zip(ot, oc):
        assert tuple(g.shape) == tuple(t.shape) and str(t.dtype) == str(g.dtype)
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), atol=1e-10)
    ws = [RNG.standard_normal(tuple(t.shape)) for t in ot[:n_out]]
    assert all(g.requires_grad for g in oc[:n_out])
    gt = torch.autograd.grad(sum((t * torch.tensor(w)).sum() for t, w in zip(ot, ws)), xt)
    sum((g * cg.tensor(w)).sum() for g, w in zip(oc, ws)).backward()
    for t, c in zip(gt, xc):
        np.testing.assert_allclose(c.grad.numpy(), t.numpy(), atol=1e-9)


def test_pinv_hermitian_reads_the_lower_triangle_and_grads_match_torch():
    torch = torch_or_skip()
    nonsym = A[0] + np.diag([3.0, -2, 1, 0])  # not symmetric: eigh reads its lower triangle
    _value_and_grad_parity(torch, lambda a: torch.linalg.pinv(a, hermitian=True),
                           lambda a: L.pinv(a, hermitian=True), nonsym)
    np.testing.assert_allclose(L.pinv(cg.tensor(nonsym), hermitian=True).numpy(),
                               np.linalg.pinv(np.tril(nonsym) + np.tril(nonsym, -1).T),
                               atol=1e-10)


def test_pinv_rank_deficient_gradient_and_tolerances_match_torch():
    torch = torch_or_skip()
    a = np.linalg.qr(RNG.random((3, 2)))[0]
    b = np.linalg.qr(RNG.random((3, 2)))[0]  # a @ b^T: 3 x 3 of rank 2
    _value_and_grad_parity(torch, lambda x, y: torch.linalg.pinv(x @ y.mT),
                           lambda x, y: L.pinv(x @ y.mT), a, b)
    for kw in ({"rtol": 0.3}, {"atol": 0.5}, {"atol": 0.5, "rtol": 0.1}):
        _value_and_grad_parity(torch, lambda x: torch.linalg.pinv(x, **kw),
                               lambda x: L.pinv(x, **kw), A)
    _value_and_grad_parity(torch, lambda x: torch.linalg.pinv(x, rtol=torch.tensor([.3, .1, .5])),
                           lambda x: L.pinv(x, rtol=cg.tensor([.3, .1, .5])), A)
    _value_and_grad_parity(torch, torch.linalg.pinv, L.pinv, WIDE)
    _value_and_grad_parity(torch, torch.linalg.pinv, L.pinv, np.zeros((2, 0, 3)))
    sym = SPD[0] - 5 * np.eye(4)
    assert L.matrix_rank(cg.tensor(sym), hermitian=True).item() == torch.linalg.matrix_rank(
        torch.tensor(sym), hermitian=True).item()


@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
def test_lstsq_outputs_by_driver_match_torch(driver):
    torch = torch_or_skip()
    for a, b in [(TALL, RNG.standard_normal((5, 2))), (WIDE, RNG.standard_normal((3, 2))),
                 (A[:, :, :3], B), (A[:, :, :3], B[..., 0])]:
        _value_and_grad_parity(torch, lambda x, y: tuple(torch.linalg.lstsq(x, y, driver=driver)),
                               lambda x, y: tuple(L.lstsq(x, y, driver=driver)), a, b, n_out=2)
    if driver != "gels":  # gels (QR without pivoting) returns LAPACK's garbage there
        deficient = TALL.copy()
        deficient[:, 2] = deficient[:, 1]
        _value_and_grad_parity(
            torch, lambda x, y: tuple(torch.linalg.lstsq(x, y, driver=driver)),
            lambda x, y: tuple(L.lstsq(x, y, driver=driver)), deficient, np.ones((5, 2)),
            n_out=2)
    with pytest.raises(RuntimeError, match="parameter `driver` should be one of"):
        L.lstsq(cg.tensor(TALL), cg.tensor(TALL), driver="gelsx")


def test_constant_outputs_require_grad_with_zero_gradient():
    # PyTorch: A^0, the count norm and a real determinant's sign are on the graph, with zero
    # gradients (no NaN from infinities)
    a = leaf(A)
    for out in (L.matrix_power(a, 0), L.slogdet(a).sign, L.vector_norm(a, 0),
                cg.norm(a, 0), L.norm(a.reshape(-1), 0)):
        assert out.requires_grad
        a.grad = None
        out.sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), np.zeros_like(A))
    np.testing.assert_array_equal(L.matrix_power(a, 0).detach().numpy(),
                                  np.broadcast_to(np.eye(4), A.shape))
    x = leaf(np.array([1.0, 0.0, np.inf]))
    n0 = L.vector_norm(x, 0)
    n0.backward()
    assert n0.item() == 2 and (x.grad.numpy() == 0).all()
    e = leaf(np.zeros((0, 0)))
    r = L.slogdet(e)
    assert r.sign.requires_grad and r.logabsdet.requires_grad
    (r.sign + r.logabsdet).backward()
    assert e.grad.shape == (0, 0)


@pytest.mark.parametrize("mode", ["reduced", "complete"])
def test_qr_gradient_of_wide_matrices_matches_torch(mode):
    torch = torch_or_skip()
    _value_and_grad_parity(torch, lambda x: tuple(torch.linalg.qr(x, mode)),
                           lambda x: tuple(L.qr(x, mode)), WIDE, n_out=2)
    _value_and_grad_parity(torch, lambda x: tuple(torch.linalg.qr(x, mode)),
                           lambda x: tuple(L.qr(x, mode)), A[:, :2, :], n_out=2)
    assert gradcheck(lambda x: L.qr(x, mode).Q.sum() + L.qr(x, mode).R.sum(), (leaf(WIDE),))


def test_torch_norm_matrix_norms_match_torch():
    torch = torch_or_skip()
    for args in (("nuc",), ("nuc", (0, 2)), ("nuc", (1, 2), True), ("fro", (0, 1), True),
                 ("fro",)):
        x = A if len(args) > 1 else A[0]
        _value_and_grad_parity(torch, lambda t: torch.norm(t, *args),
                               lambda t: cg.norm(t, *args), x)
    for args in (("nuc",), ("fro", (0, 1, 2))):
        with pytest.raises(RuntimeError, match="dim must be a 2-tuple. Got 0 1 2"):
            cg.norm(cg.tensor(A), *args)


def test_fractional_norm_gradient_is_zero_at_zero_entries():
    torch = torch_or_skip()
    x = np.array([0.0, 1.5, -2.0, 0.0])
    for p in (0.5, 0.3, 1.5):
        _value_and_grad_parity(torch, lambda t: torch.linalg.norm(t, p),
                               lambda t: L.norm(t, p), x)
        _value_and_grad_parity(torch, lambda t: torch.linalg.norm(t, p),
                               lambda t: L.norm(t, p), np.zeros(3))


def test_geqrf_and_ormqr_match_torch():
    torch = torch_or_skip()
    for shape in ((5, 3), (3, 5), (2, 4, 4), (0, 3)):
        a = RNG.standard_normal(shape)
        got, want = cg.geqrf(cg.tensor(a)), torch.geqrf(torch.tensor(a))
        assert got._fields == ("a", "tau") and got.tau.shape == tuple(want.tau.shape)
        np.testing.assert_allclose(got.a.numpy(), want.a.numpy(), atol=1e-12)
        np.testing.assert_allclose(got.tau.numpy(), want.tau.numpy(), atol=1e-12)
    h, tau = torch.geqrf(torch.tensor(A[:, :, :3]))
    for left, other in ((True, RNG.standard_normal((3, 4, 2))),
                        (False, RNG.standard_normal((3, 5, 4)))):
        for transpose in (False, True):
            _value_and_grad_parity(
                torch, lambda x, t, o: torch.ormqr(x, t, o, left, transpose),
                lambda x, t, o: x.ormqr(t, o, left, transpose), h.numpy(), tau.numpy(), other)
    np.testing.assert_allclose(cg.orgqr(cg.tensor(h.numpy()), cg.tensor(tau.numpy())).numpy(),
                               torch.orgqr(h, tau).numpy(), atol=1e-12)
    with pytest.raises(RuntimeError, match=r"tau.shape\[-1\] must be equal to min"):
        cg.ormqr(cg.tensor(h.numpy()), cg.tensor(RNG.standard_normal((3, 4))),
                 cg.tensor(RNG.standard_normal((3, 4, 2))))


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_and_inverse_gradients_match_torch(upper):
    torch = torch_or_skip()
    low = np.linalg.cholesky(SPD)
    factor = low.transpose(0, 2, 1) if upper else low
    _value_and_grad_parity(torch, lambda b, f: torch.cholesky_solve(b, f, upper),
                           lambda b, f: cg.cholesky_solve(b, f, upper), B, factor)
    # PyTorch's gradient is a full matrix: the other triangle gets one too
    _value_and_grad_parity(torch, lambda f: torch.cholesky_inverse(f, upper),
                           lambda f: cg.cholesky_inverse(f, upper), factor[0] + 0.1)


def test_singular_value_gradients_match_torch():
    torch = torch_or_skip()
    # the nuclear norm at 0: U V^T, finite (no 1 / (s_i - s_j) terms for S alone)
    _value_and_grad_parity(torch, lambda a: torch.linalg.matrix_norm(a, "nuc"),
                           lambda a: L.matrix_norm(a, "nuc"), np.zeros((4, 4)))
    _value_and_grad_parity(torch, torch.linalg.svdvals, L.svdvals, A)
    # full_matrices=True: PyTorch differentiates through the first min(m, n) columns
    for x in (TALL, WIDE, np.zeros((0, 3))):
        _value_and_grad_parity(torch, lambda a: torch.linalg.svd(a).S,
                               lambda a: L.svd(a).S, x)
        _value_and_grad_parity(torch, lambda a: torch.linalg.svd(a).U[..., :2].abs(),
                               lambda a: L.svd(a).U[..., :2].abs(), x)


def test_matrix_exp_float32_keeps_float32_accuracy():
    # few squarings (PyTorch's degree-18 bound for float32): the error stays near float32's
    # rounding instead of doubling with each extra squaring (it was 1e-6 here)
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a = np.random.default_rng(0).standard_normal((5, 5, 5)).astype(np.float32)
    want = np.stack([scipy_linalg.expm(m) for m in a.astype(np.float64)])
    got = L.matrix_exp(cg.tensor(a)).numpy()
    assert (np.abs(got - want) / np.abs(want).max(axis=(-1, -2), keepdims=True)).max() < 5e-7
