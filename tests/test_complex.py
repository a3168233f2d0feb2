"""Complex dtypes: promotion, creation, printing, views, elementwise ops, reductions,
products, movement, errors, gradients (PyTorch's convention) and compiled chains."""

import warnings

import numpy as np
import pytest

import clgraph as cg

RNG = np.random.default_rng(7)


def crandn(*shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


def close(t, ref, tol=None):
    ref = np.asarray(ref)
    got = t.detach().numpy()
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if tol is None:
        tol = 1e-5 if got.dtype in (np.complex64, np.float32) else 1e-11
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


# --- dtypes and promotion -----------------------------------------------------------------


def test_dtype_names():
    assert cg.complex64 is cg.cfloat and cg.complex128 is cg.cdouble
    assert repr(cg.complex64) == "torch.complex64"
    assert cg.complex64.is_complex and not cg.complex64.is_floating_point
    assert cg.complex128.itemsize == 16
    t = cg.zeros(2, dtype=cg.cfloat)
    assert t.is_complex() and cg.is_complex(t) and not t.is_floating_point()
    assert not cg.zeros(2).is_complex()
    assert t.type() == "torch.ComplexFloatTensor"
    with pytest.raises(TypeError, match="complex32"):
        cg.zeros(2, dtype="complex32")


def test_promotion_matches_torch():
    torch = pytest.importorskip("torch")
    names = ["bool", "uint8", "int8", "int32", "int64", "float16", "bfloat16", "float32",
             "float64", "complex64", "complex128"]
    for a in names:
        for b in names:
            if "complex" not in a + b:
                continue
            if {a, b} & {"float16"} and "complex64" not in (a, b) and "complex128" not in (a, b):
                continue
            want = str(torch.promote_types(getattr(torch, a), getattr(torch, b)))
            got = cg.promote_types(getattr(cg, a), getattr(cg, b))
            if want == "torch.complex32":
                continue
            assert repr(got) == want, (a, b)


@pytest.mark.parametrize("case", range(8))
def test_result_type_matches_torch(case):
    torch = pytest.importorskip("torch")

    def pair(lib):
        f = lib.ones(2)
        d = lib.ones(2, dtype=lib.float64)
        i = lib.ones(2, dtype=lib.int64)
        c = lib.ones(2, dtype=lib.complex64)
        cd = lib.ones(2, dtype=lib.complex128)
        return [(f, 1j), (d, 1j), (i, 1j), (c, 1.0), (cd, 2),
                (f, lib.tensor(1j, dtype=lib.complex128)), (d, lib.tensor(1j)),
                (c, lib.tensor(1.0, dtype=lib.float64))][case]

    a, b = pair(torch)
    x, y = pair(cg)
    assert repr((x + y).dtype) == str((a + b).dtype)
    assert repr((x * y).dtype) == str((a * b).dtype)


def test_default_complex_follows_default_float():
    assert cg.tensor([1j]).dtype is cg.complex64
    old = cg.get_default_dtype()
    cg.set_default_dtype(cg.float64)
    try:
        assert cg.tensor([1j]).dtype is cg.complex128
        assert (cg.ones(2, dtype=cg.int64) + 1j).dtype is cg.complex128
        assert repr(cg.tensor([1 + 1j])) == "tensor([1.+1.j])"
    finally:
        cg.set_default_dtype(old)


# --- creation, host round trip, printing ----------------------------------------------------


def test_creation_and_numpy_round_trip():
    z = crandn(3, 4)
    t = cg.from_numpy(z)
    assert t.dtype is cg.complex128
    np.testing.assert_array_equal(t.numpy(), z)
    t32 = cg.tensor(z.astype(np.complex64))
    assert t32.dtype is cg.complex64
    np.testing.assert_array_equal(np.asarray(t32), z.astype(np.complex64))
    p = cg.tensor([[1 + 2j, 3], [4, -1j]])
    assert p.dtype is cg.complex64
    assert p.tolist() == [[1 + 2j, 3 + 0j], [4 + 0j, -1j]]
    assert cg.tensor(2 - 3j).item() == 2 - 3j
    assert cg.tensor([1.0, 2.0], dtype=cg.cdouble).numpy().tolist() == [1 + 0j, 2 + 0j]
    np.testing.assert_array_equal(cg.full((2,), 1 + 1j).numpy(), [1 + 1j] * 2)
    np.testing.assert_array_equal(cg.ones(2, dtype=cg.cfloat).numpy(), [1, 1])
    np.testing.assert_array_equal(cg.zeros_like(p).numpy(), np.zeros((2, 2)))


def test_printing_matches_torch():
    torch = pytest.importorskip("torch")
    cases = [
        ([1 + 2j, -3.5j], None), ([[1 + 2j, 0.25 - 1j]], "complex128"), (1 + 1j, None),
        ([1e10 + 1j], None), ([0j, -0.0 - 0.0j], None), ([float("nan") + 1j, 1 + float("inf") * 1j],
                                                          None),
        (crandn(20).tolist(), None), ([[1.5 + 2j] * 3] * 2, "complex128"), ([], None),
    ]
    for data, d in cases:
        a = torch.tensor(data, dtype=getattr(torch, d) if d else None)
        b = cg.tensor(data, dtype=getattr(cg, d) if d else None)
        assert repr(b) == repr(a), (data, d)
    big = crandn(40, 40)
    assert repr(cg.tensor(big)) == repr(torch.tensor(big))
    r = cg.tensor([1j], requires_grad=True)
    assert repr(r) == repr(torch.tensor([1j], requires_grad=True))


# --- views ----------------------------------------------------------------------------------


def test_real_imag_views_share_storage():
    z = crandn(3, 4)
    t = cg.from_numpy(z)
    r = cg.view_as_real(t)
    assert r.dtype is cg.float64 and r.shape == (3, 4, 2) and r.stride() == (8, 2, 1)
    close(r, np.stack([z.real, z.imag], -1))
    tt = t.t()
    assert cg.view_as_real(tt).stride() == (2, 8, 1)
    close(tt.real, z.T.real)
    close(tt.imag, z.T.imag)
    t.real.mul_(2)
    t.imag[0] = 5.0
    want = z.real * 2 + 1j * z.imag
    want[0] = want[0].real + 5j
    close(t, want)
    back = cg.view_as_complex(r)
    assert back.dtype is cg.complex128 and back.shape == (3, 4)
    r[0, 0, 1] = -7.0
    assert t[0, 0].item().imag == -7.0
    assert cg.real(cg.ones(2)).dtype is cg.float32
    with pytest.raises(RuntimeError, match="non-complex"):
        cg.ones(2).imag


def test_view_as_complex_checks():
    with pytest.raises(RuntimeError, match="last dimension of size 2"):
        cg.view_as_complex(cg.ones(3, 3))
    with pytest.raises(RuntimeError, match="stride 1"):
        cg.view_as_complex(cg.ones(2, 3).t())
    with pytest.raises(RuntimeError, match="divisible by 2"):
        cg.view_as_complex(cg.ones(3, 3)[:, 1:])
    with pytest.raises(RuntimeError, match="float and double"):
        cg.view_as_complex(cg.ones(3, 2, dtype=cg.int64))
    with pytest.raises(RuntimeError, match="complex tensors"):
        cg.view_as_real(cg.ones(2))


def test_complex_polar_conj():
    re, im = RNG.standard_normal(4), RNG.standard_normal(4)
    t = cg.complex(cg.tensor(re), cg.tensor(im))
    assert t.dtype is cg.complex128
    close(t, re + 1j * im)
    r, a = np.abs(re), im
    close(cg.polar(cg.tensor(r), cg.tensor(a)), r * np.exp(1j * a))
    with pytest.raises(RuntimeError, match="scalar type"):
        cg.complex(cg.ones(2), cg.ones(2, dtype=cg.float64))
    close(t.conj(), np.conj(re + 1j * im))
    close(cg.conj_physical(t), np.conj(re + 1j * im))
    assert not t.conj().is_conj() and not cg.is_conj(t)
    assert t.resolve_conj() is t
    m = cg.tensor(crandn(2, 3))
    close(m.mH, m.numpy().conj().T)
    close(m.adjoint(), m.numpy().conj().T)


def test_conversions():
    z = crandn(4).astype(np.complex64)
    t = cg.tensor(z)
    close(t.to(cg.complex128), z.astype(np.complex128), 1e-6)
    close(t.to(cg.complex128).to(cg.complex64), z)
    close(cg.tensor([1.0, 2.0]).to(cg.cfloat), np.array([1, 2], np.complex64))
    close(cg.tensor([1, 2]).to(cg.cdouble), np.array([1, 2], np.complex128))
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        r = t.to(cg.float32)
    close(r, z.real)
    with pytest.raises(TypeError, match="complex64.*int64"):
        t.long()
    with pytest.raises(TypeError, match="bool"):
        t.bool()
    x = cg.zeros(4, dtype=cg.cfloat)
    x.copy_(cg.tensor([1.0, 2.0, 3.0, 4.0]))
    close(x, [1, 2, 3, 4])
    x.copy_(t)
    close(x, z)
    y = cg.zeros(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y.copy_(t)
    close(y, z.real)


def test_save_load_round_trip():
    import io

    t = cg.tensor(crandn(3))
    buf = io.BytesIO()
    cg.save({"a": t, "b": t.cfloat()}, buf)
    buf.seek(0)
    back = cg.load(buf)
    assert back["a"].dtype is cg.complex128 and back["b"].dtype is cg.complex64
    close(back["a"], t.numpy())
    assert cg.ones(2).cdouble().dtype is cg.complex128
    assert cg.ones(2).type("torch.ComplexFloatTensor").dtype is cg.complex64


# --- elementwise -----------------------------------------------------------------------------

UNARY = {
    "neg": (lambda t: -t, np.negative),
    "exp": (lambda t: t.exp(), np.exp),
    "log": (lambda t: t.log(), np.log),
    "sqrt": (lambda t: t.sqrt(), np.sqrt),
    "sin": (lambda t: t.sin(), np.sin),
    "cos": (lambda t: t.cos(), np.cos),
    "tanh": (lambda t: t.tanh(), np.tanh),
    "sigmoid": (lambda t: t.sigmoid(), lambda z: 1 / (1 + np.exp(-z))),
    "reciprocal": (lambda t: t.reciprocal(), np.reciprocal),
    "abs": (lambda t: t.abs(), np.abs),
    "angle": (lambda t: t.angle(), np.angle),
    "sgn": (lambda t: t.sgn(), lambda z: np.where(z == 0, 0, z / np.where(z == 0, 1, abs(z)))),
    "square": (lambda t: t.square(), np.square),
    "pow2": (lambda t: t ** 2, lambda z: z ** 2),
    "pow_half": (lambda t: t.pow(0.5), lambda z: z ** 0.5),
    "pow_c": (lambda t: t ** (1 + 0.5j), lambda z: z ** (1 + 0.5j)),
    "rpow": (lambda t: 2 ** t, lambda z: 2 ** z),
    "conj": (lambda t: t.conj(), np.conj),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("npdt", [np.complex64, np.complex128])
def test_unary(name, npdt):
    fn, ref = UNARY[name]
    z = crandn(3, 5, dtype=npdt)
    z[0, 0] = 0 if name == "sgn" else z[0, 0]
    t = cg.from_numpy(z).t()  # a strided operand
    got = fn(t)
    want = ref(z.T)
    assert got.dtype.is_complex == np.iscomplexobj(want)
    close(got, want.astype(np.result_type(want.dtype, np.float32) if npdt == np.complex64
                           else want.dtype), 2e-5 if npdt == np.complex64 else 1e-10)


BINARY = {
    "add": (lambda a, b: a + b, np.add), "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply), "div": (lambda a, b: a / b, np.divide),
    "pow": (lambda a, b: a ** b, np.power),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name):
    fn, ref = BINARY[name]
    a, b, r = crandn(4, 3), crandn(3), RNG.standard_normal((4, 1))
    ta, tb, tr = cg.tensor(a), cg.tensor(b), cg.tensor(r)
    close(fn(ta, tb), ref(a, b))
    close(fn(ta, tr), ref(a, r))
    close(fn(tr, tb), ref(r, b))
    close(fn(ta, 1.5 - 2j), ref(a, 1.5 - 2j))
    close(fn(ta, 3), ref(a, 3))
    close(fn(tr, 0.5j), ref(r, 0.5j))
    c32 = fn(cg.tensor(a.astype(np.complex64)), cg.tensor(r.astype(np.float32)))
    assert c32.dtype is cg.complex64
    close(c32, ref(a, r).astype(np.complex64), 1e-4)


def test_in_place_and_out():
    a = crandn(3)
    t = cg.tensor(a)
    t.mul_(1j).add_(1).div_(2)
    close(t, (a * 1j + 1) / 2)
    t -= cg.tensor(a)
    close(t, (a * 1j + 1) / 2 - a)
    out = cg.empty(3, dtype=cg.cdouble)
    cg.add(cg.tensor(a), 1j, out=out)
    close(out, a + 1j)


def test_comparisons_and_predicates():
    a = np.array([1 + 1j, 2, np.nan + 0j, complex(0, np.inf), 3j])
    t = cg.tensor(a)
    b = np.array([1 + 1j, 2 + 1j, 0, 0, 3j])
    np.testing.assert_array_equal((t == cg.tensor(b)).numpy(), a == b)
    np.testing.assert_array_equal((t != cg.tensor(b)).numpy(), a != b)
    np.testing.assert_array_equal((t == 2).numpy(), a == 2)
    np.testing.assert_array_equal(t.isnan().numpy(), np.isnan(a))
    np.testing.assert_array_equal(cg.isinf(t).numpy(), np.isinf(a))
    np.testing.assert_array_equal(cg.isfinite(t).numpy(), np.isfinite(a))


def test_where_and_masks():
    a, b = crandn(3, 4), crandn(4)
    m = RNG.standard_normal((3, 4)) > 0
    ta, tb, tm = cg.tensor(a), cg.tensor(b), cg.tensor(m)
    close(cg.where(tm, ta, tb), np.where(m, a, b))
    close(cg.where(tm, ta, 0.0), np.where(m, a, 0))
    close(cg.where(tm, 1j, cg.tensor(np.ones(4))), np.where(m, 1j, 1))
    close(ta.masked_fill(tm, 2j), np.where(m, 2j, a))
    close(ta[tm], a[m])
    c = ta.clone()
    c[tm] = 0
    close(c, np.where(m, 0, a))


# --- reductions ------------------------------------------------------------------------------


def test_reductions():
    a = crandn(3, 4, 5)
    t = cg.tensor(a)
    close(t.sum(), a.sum())
    close(t.sum(1), a.sum(1))
    close(t.sum((0, 2), keepdim=True), a.sum((0, 2), keepdims=True))
    close(t.mean(-1), a.mean(-1))
    close(t.mean(), a.mean())
    close(t.prod(1), a.prod(1), 1e-10)
    close(t.prod(), a.prod(), 1e-9)
    close(t.prod(2, keepdim=True), a.prod(2, keepdims=True), 1e-10)
    close(cg.tensor(a.astype(np.complex64)).sum(dtype=cg.complex128), a.astype(np.complex64)
          .astype(np.complex128).sum(), 1e-5)
    s = cg.tensor(1 + 2j)
    close(s.sum(), 1 + 2j)


# --- products ------------------------------------------------------------------------------


def test_matmul_family():
    a, b = crandn(3, 4), crandn(4, 5)
    close(cg.tensor(a) @ cg.tensor(b), a @ b)
    close(cg.mm(cg.tensor(a), cg.tensor(b)), a @ b)
    x, y = crandn(2, 3, 4), crandn(2, 4, 2)
    close(cg.bmm(cg.tensor(x), cg.tensor(y)), x @ y)
    close(cg.matmul(cg.tensor(x), cg.tensor(b)), x @ b)
    r = RNG.standard_normal((4, 5))
    close(cg.tensor(a) @ cg.tensor(r), a @ r)
    close(cg.einsum("bij,bjk->bik", cg.tensor(x), cg.tensor(y)), np.einsum("bij,bjk->bik", x, y))
    close(cg.einsum("ij,ij->i", cg.tensor(a), cg.tensor(a)), np.einsum("ij,ij->i", a, a))
    v = crandn(4)
    close(cg.tensor(a) @ cg.tensor(v), a @ v)


# --- movement --------------------------------------------------------------------------------


def test_movement():
    a = crandn(3, 4)
    t = cg.tensor(a)
    close(t.reshape(2, 6), a.reshape(2, 6))
    close(t.t().reshape(-1), a.T.reshape(-1))
    close(t.permute(1, 0).contiguous(), a.T)
    close(t[1:, ::2], a[1:, ::2])
    close(t[..., 1], a[..., 1])
    close(t[None, :, 2], a[None, :, 2])
    close(t[cg.tensor([2, 0])], a[[2, 0]])
    close(t[:, cg.tensor([3, 1])], a[:, [3, 1]])
    close(cg.cat([t, t * 2], 1), np.concatenate([a, a * 2], 1))
    close(cg.cat([t, cg.ones(1, 4)]), np.concatenate([a, np.ones((1, 4))]))
    close(cg.stack([t, t], -1), np.stack([a, a], -1))
    close(t.flip(0), a[::-1])
    close(t.index_select(1, cg.tensor([0, 0, 2])), a[:, [0, 0, 2]])
    close(t.gather(1, cg.tensor([[0], [1], [3]])), np.take_along_axis(a, np.array([[0], [1], [3]]),
                                                                        1))
    close(t.unsqueeze(0).expand(2, 3, 4).contiguous(), np.broadcast_to(a, (2, 3, 4)))
    close(cg.tril(t), np.tril(a))
    u = [x.numpy() for x in t.split(2, 1)]
    np.testing.assert_array_equal(u[1], a[:, 2:])
    c = t.clone()
    c[cg.tensor([0, 2]), 1] = 7j
    want = a.copy()
    want[[0, 2], 1] = 7j
    close(c, want)
    c[1] = cg.tensor(np.arange(4.0))
    want[1] = np.arange(4.0)
    close(c, want)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [
    lambda t: t.max(), lambda t: t.argmax(), lambda t: t.clamp(0, 1), lambda t: t.relu(),
    lambda t: t < t, lambda t: t.floor(), lambda t: t.softmax(0), lambda t: t.cumsum(0),
    lambda t: t.maximum(t), lambda t: t.erf(),
])
def test_unsupported_ops_raise(fn):
    t = cg.tensor([1 + 1j, 2])
    with pytest.raises((NotImplementedError, RuntimeError, TypeError), match="Complex|complex"):
        fn(t)


def test_requires_grad_allowed():
    t = cg.tensor([1j], requires_grad=True)
    assert t.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        cg.tensor([1]).requires_grad_()


# --- gradients -------------------------------------------------------------------------------

GRADS = {
    "abs": lambda z, w: z.abs().sum(),
    "mul": lambda z, w: (z * w).abs().sum(),
    "exp": lambda z, w: z.exp().real.sum() + z.exp().imag.sum() * 0.5,
    "log": lambda z, w: (z.log() * w).real.sum(),
    "sqrt": lambda z, w: z.sqrt().abs().pow(3).sum(),
    "div": lambda z, w: (z / w).imag.sum(),
    "matmul": lambda z, w: (z.reshape(2, 3) @ w.reshape(3, 2)).abs().sum(),
    "sin_tanh": lambda z, w: (z.sin() + z.tanh()).abs().sum(),
    "conj": lambda z, w: (z.conj() * w).real.sum(),
    "angle": lambda z, w: z.angle().sum(),
    "sum_prod": lambda z, w: z.prod().abs() + (z.sum() * w.mean()).real,
    "sigmoid_pow": lambda z, w: (z.sigmoid() + z ** 2 + z ** w).abs().sum(),
}


@pytest.mark.parametrize("name", sorted(GRADS) + ["view_as_real"])
def test_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    z, w = crandn(6), crandn(6)
    if name == "view_as_real":
        def fn(lib, a, b):
            return (lib.view_as_real(a) ** 2 * lib.view_as_real(b)).sum()
    else:
        def fn(lib, a, b):
            return GRADS[name](a, b)
    tz = torch.tensor(z, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    fn(torch, tz, tw).backward()
    cz = cg.tensor(z, requires_grad=True)
    cw = cg.tensor(w, requires_grad=True)
    loss = fn(cg, cz, cw)
    np.testing.assert_allclose(loss.item(), fn(torch, tz, tw).item(), rtol=1e-10)
    loss.backward()
    close(cz.grad, tz.grad.resolve_conj().numpy(), 1e-9)
    if tw.grad is None:
        assert cw.grad is None
    else:
        close(cw.grad, tw.grad.resolve_conj().numpy(), 1e-9)
    assert cz.grad.dtype is cg.complex128


def _fd_grad(fn, z, eps=1e-6):
    """dL/d re + i dL/d im by central differences."""
    g = np.zeros_like(z)
    for k in range(z.size):
        for unit in (1, 1j):
            d = np.zeros_like(z)
            d.flat[k] = eps * unit
            hi = fn(cg.tensor(z + d)).item()
            lo = fn(cg.tensor(z - d)).item()
            g.flat[k] += unit * (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("name", ["abs_exp", "div_log", "matmul", "polar", "complex"])
def test_gradients_finite_differences(name):
    w = cg.tensor(crandn(4))
    fns = {
        "abs_exp": lambda z: (z.exp() * w).abs().sum(),
        "div_log": lambda z: ((z + 3) / (w + z.conj())).log().imag.sum(),
        "matmul": lambda z: (z.reshape(2, 2) @ w.reshape(2, 2)).abs().pow(2).sum(),
        "polar": lambda z: (cg.polar(z.abs(), z.angle() * 2) * w).real.sum(),
        "complex": lambda z: (cg.complex(z.real * z.imag, z.imag) * w).abs().sum(),
    }
    fn = fns[name]
    z = crandn(4)
    t = cg.tensor(z, requires_grad=True)
    fn(t).backward()
    np.testing.assert_allclose(t.grad.numpy(), _fd_grad(fn, z), rtol=1e-5, atol=1e-6)


IN_PLACE = {
    "mul_": lambda a: (lambda b: (b.mul_(1j), b.abs().sum())[1])(a * 2),
    "add_": lambda a: (lambda b: (b.add_(a), b.abs().sum())[1])(a * 2),
    "real_mul_": lambda a: (lambda b: (b.real.mul_(3), b.abs().sum())[1])(a * 2),
    "imag_view_then_mul_": lambda a: (lambda b: (lambda r: (b.mul_(a), (r * r).sum())[1])(
        b.imag))(a * 2),
    "setitem": lambda a: (lambda c: (c.__setitem__(0, 5j), c.angle().sum())[1])(a * 2),
    "slice_imul": lambda a: (lambda c: (c[1:].mul_(a[1:]), c.angle().sum())[1])(a * 2),
}


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_in_place_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    z = crandn(3)
    ta, ca = torch.tensor(z, requires_grad=True), cg.tensor(z, requires_grad=True)
    IN_PLACE[name](ta).backward()
    IN_PLACE[name](ca).backward()
    close(ca.grad, ta.grad.numpy(), 1e-10)


def test_complex_view_of_real_written_in_place():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 2))
    grads = []
    for lib in (torch, cg):
        t = lib.tensor(x, requires_grad=True)
        r = t * 1.5
        c = lib.view_as_complex(r)
        c.mul_(1j + 0.5)
        (r ** 2).sum().backward()
        grads.append(np.asarray(t.grad.numpy()))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-10)


def test_real_input_gets_real_gradient():
    torch = pytest.importorskip("torch")
    x, z = RNG.standard_normal(3), crandn(3)
    tx, cx = torch.tensor(x, requires_grad=True), cg.tensor(x, requires_grad=True)
    (tx * torch.tensor(z)).abs().sum().backward()
    (cx * cg.tensor(z)).abs().sum().backward()
    assert cx.grad.dtype is cg.float64
    close(cx.grad, tx.grad.numpy(), 1e-10)


# --- eigen-decomposition ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["real", "complex"])
def test_eig_matches_torch(kind):
    torch = pytest.importorskip("torch")
    a = RNG.standard_normal((2, 4, 4))
    if kind == "complex":
        a = a + 1j * RNG.standard_normal((2, 4, 4))
    ta = torch.tensor(a, requires_grad=True)
    ca = cg.tensor(a, requires_grad=True)
    tw, tv = torch.linalg.eig(ta)
    cw, cv = cg.linalg.eig(ca)
    assert cw.dtype is cg.complex128 and cv.dtype is cg.complex128
    close(cw, tw.detach().numpy(), 1e-10)
    close(cv, tv.detach().numpy(), 1e-10)
    close(cg.linalg.eigvals(ca), tw.detach().numpy(), 1e-10)

    def loss(w, v):
        return w.abs().sum() + v.abs().pow(3).sum() + (w * w).real.sum()

    loss(tw, tv).backward()
    loss(cw, cv).backward()
    close(ca.grad, ta.grad.numpy(), 1e-9)
    assert cg.linalg.eigvals(cg.tensor(a).to(cg.complex64 if kind == "complex" else cg.float32)
                             ).dtype is cg.complex64
    with pytest.raises(RuntimeError, match="complex tensor"):
        cg.linalg.eig(cg.ones(2, 2, dtype=cg.int64))


# --- compiled ----------------------------------------------------------------------------------


def test_compiled_chain_matches_eager():
    z, r = crandn(5, 6, dtype=np.complex64), RNG.standard_normal((5, 6)).astype(np.float32)

    def f(a, b):
        return ((a * b + 1j).exp() / (a + 2)).abs() + (a.conj() * a).real, a * a - b * 1j

    cf = cg.compile(f)
    a, b = cg.tensor(z), cg.tensor(r)
    want = [x.numpy() for x in f(a, b)]
    for _ in range(3):
        got = cf(a, b)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-6, atol=1e-6)
    a2 = cg.tensor(z * 2)
    for g, w in zip(cf(a2, b), f(a2, b)):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6, atol=1e-6)


def test_compiled_backward():
    z = crandn(4)

    def step(t):
        loss = (t * t).abs().sum()
        loss.backward()
        return loss

    cs = cg.compile(step)
    for _ in range(2):
        t = cg.tensor(z, requires_grad=True)
        cs(t)
        close(t.grad, 2 * z)  # L = sum |z|^2: torch's gradient is 2 z
