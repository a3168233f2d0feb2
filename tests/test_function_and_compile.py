"""Custom autograd Functions (values against numpy, gradients against finite differences,
ctx features, PyTorch's errors, double backward, hooks, inside cg.compile) and two
properties of cg.compile: host data made into tensors inside a compiled call is never
replayed stale, and a call with several results that require grad gets one compiled
backward (a VAE trains as it does eagerly)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import clgraph as cg
from clgraph import nn
from clgraph.autograd import Function, gradcheck, gradgradcheck
from clgraph.compile.backward import COMPILED_OP, Differentiable
from clgraph.nn import functional as F

RNG = np.random.default_rng(7)


def D(*shape, requires_grad=True):
    """A float64 tensor of normal draws."""
    return cg.tensor(RNG.standard_normal(shape), dtype=cg.float64, requires_grad=requires_grad)


def F32(*shape):
    return cg.tensor(RNG.standard_normal(shape).astype(np.float32))


def npy(t):
    return t.detach().numpy()


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- custom Functions --------------------------------------------------------------------


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x


class ScaledMulAdd(Function):
    """a * b * scale + a, with a non-tensor argument and the output saved."""

    @staticmethod
    def forward(ctx, a, b, scale, note):
        ctx.scale, ctx.note = scale, note
        ctx.save_for_backward(a, b)
        return a * b * scale + a

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = g * (b * ctx.scale + 1) if ctx.needs_input_grad[0] else None
        gb = g * a * ctx.scale if ctx.needs_input_grad[1] else None
        return ga, gb, None, None


class Exp(Function):
    """New style: forward without ctx, setup_context saves the output."""

    @staticmethod
    def forward(x):
        return x.exp()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out


class SinCos(Function):
    """Two outputs."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin(), x.cos()

    @staticmethod
    def backward(ctx, gs, gc):
        (x,) = ctx.saved_tensors
        return gs * x.cos() - gc * x.sin()


def test_values_and_gradcheck():
    x, y = D(3, 4), D(3, 4)
    xn, yn = npy(x), npy(y)
    np.testing.assert_allclose(npy(Cube.apply(x)), xn ** 3, rtol=1e-12)
    np.testing.assert_allclose(npy(ScaledMulAdd.apply(x, y, 2.5, "n")), xn * yn * 2.5 + xn,
                               rtol=1e-12)
    np.testing.assert_allclose(npy(Exp.apply(x)), np.exp(xn), rtol=1e-12)
    s, c = SinCos.apply(x)
    np.testing.assert_allclose(npy(s), np.sin(xn), rtol=1e-12)
    np.testing.assert_allclose(npy(c), np.cos(xn), rtol=1e-12)
    assert gradcheck(Cube.apply, (D(2, 3),))
    assert gradcheck(lambda a, b: ScaledMulAdd.apply(a, b, -1.5, None), (D(2, 3), D(2, 3)))
    assert gradcheck(Exp.apply, (D(5),))
    assert gradcheck(SinCos.apply, (D(4),))
    # broadcasting inside the function: the gradient of b sums back
    assert gradcheck(lambda a, b: ScaledMulAdd.apply(a, b, 0.5, None), (D(3, 4), D(4)))


def test_gradients_against_numpy():
    x = D(6)
    (Cube.apply(x) * cg.tensor(np.arange(6.0))).sum().backward()
    np.testing.assert_allclose(npy(x.grad), 3 * npy(x) ** 2 * np.arange(6.0), rtol=1e-12)
    s, c = SinCos.apply(x)
    gx = cg.autograd.grad((2 * s + 3 * c).sum(), x)[0]
    np.testing.assert_allclose(npy(gx), 2 * np.cos(npy(x)) - 3 * np.sin(npy(x)), rtol=1e-12)


def test_grad_fn_names_and_paths():
    y = Cube.apply(D(2))
    assert y.grad_fn.name() == "CubeBackward" and type(y.grad_fn).__name__ == "CubeBackward"
    assert y.grad_fn.next_functions[0][0].name() == "AccumulateGrad"
    assert cg.autograd.Function is cg.autograd.function.Function is Function
    from clgraph.autograd.function import FunctionCtx, once_differentiable

    assert callable(once_differentiable) and isinstance(y.grad_fn, FunctionCtx)


def test_multiple_outputs_missing_gradients():
    x = D(5)
    xn = npy(x)
    s, c = SinCos.apply(x)
    assert s.grad_fn is c.grad_fn and c._output_nr == 1
    (gx,) = cg.autograd.grad(c.sum(), x)  # the sin output gets zeros
    np.testing.assert_allclose(npy(gx), -np.sin(xn), rtol=1e-12)
    seen = []

    class NoMaterialize(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            seen.append((g1 is None, g2 is None))
            return (g1 * 2 if g1 is not None else 0) + (g2 * 3 if g2 is not None else 0)

    _, b = NoMaterialize.apply(x)
    (gx,) = cg.autograd.grad(b.sum(), x)
    assert seen == [(True, False)]
    np.testing.assert_allclose(npy(gx), np.full(5, 3.0))


def test_needs_input_grad_and_non_tensor_arguments():
    recorded = []

    class Record(Function):
        @staticmethod
        def forward(ctx, a, k, b, mode):
            recorded.append(ctx.needs_input_grad)
            assert isinstance(k, int) and mode == "sum"
            ctx.k = k
            return a * k + b

        @staticmethod
        def backward(ctx, g):
            return (g * ctx.k if ctx.needs_input_grad[0] else None, None,
                    g if ctx.needs_input_grad[2] else None, None)

    a, b = D(3), D(3, requires_grad=False)
    out = Record.apply(a, 4, b, "sum")
    out.sum().backward()
    assert recorded == [(True, False, False, False)]
    np.testing.assert_allclose(npy(a.grad), np.full(3, 4.0))
    assert b.grad is None
    np.testing.assert_allclose(npy(out), npy(a) * 4 + npy(b), rtol=1e-12)
    with cg.no_grad():
        r = Record.apply(a, 2, b, "sum")
    assert r.grad_fn is None and not r.requires_grad
    assert recorded[-1] == (True, False, False, False)  # requires_grad, as PyTorch reports

    class BadGrad(Function):
        @staticmethod
        def forward(ctx, a, k):
            return a * k

        @staticmethod
        def backward(ctx, g):
            return g, g  # a gradient for the int

    with pytest.raises(RuntimeError, match="returned a gradient different than None at "
                                           "position 2"):
        BadGrad.apply(D(2), 3).sum().backward()


def test_mark_dirty_in_place():
    class MulInPlace(Function):
        @staticmethod
        def forward(ctx, x, k):
            x.mul_(k)
            ctx.mark_dirty(x)
            ctx.k = k
            return x

        @staticmethod
        def backward(ctx, g):
            return g * ctx.k, None

    leaf = D(4)
    x = leaf * 1.0
    x0 = npy(x).copy()
    y = MulInPlace.apply(x, 3.0)
    assert y is x and x.grad_fn.name() == "MulInPlaceBackward"
    np.testing.assert_allclose(npy(x), 3 * x0)
    (y * y).sum().backward()
    np.testing.assert_allclose(npy(leaf.grad), 2 * 3 * x0 * 3, rtol=1e-12)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        MulInPlace.apply(D(3), 2.0)

    class ForgetsToReturn(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="marked as dirty"):
        ForgetsToReturn.apply(D(3) * 1.0)


def test_mark_non_differentiable():
    class ClampWithMask(Function):
        @staticmethod
        def forward(ctx, x):
            mask = (x > 0).to(x.dtype)
            ctx.mark_non_differentiable(mask)
            ctx.save_for_backward(mask)
            return x * mask, mask

        @staticmethod
        def backward(ctx, g, g_mask):
            (mask,) = ctx.saved_tensors
            return g * mask

    x = D(8)
    y, mask = ClampWithMask.apply(x)
    assert not mask.requires_grad and mask.grad_fn is None and y.requires_grad
    (y * 2).sum().backward()
    np.testing.assert_allclose(npy(x.grad), 2.0 * (npy(x) > 0))


def test_input_returned_unchanged_is_an_alias():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    x = D(3)
    y = Identity.apply(x)
    assert y is not x and x.grad_fn is None and y.grad_fn.name() == "IdentityBackward"
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), np.full(3, 2.0))


def test_saved_tensor_modified_in_place_raises():
    leaf = D(4)
    x = leaf * 2
    y = Cube.apply(x)
    x.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_saved_tensors_freed_after_backward():
    x = D(3)
    y = Cube.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()
    y = Cube.apply(x)
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), 3 * 3 * npy(x) ** 2, rtol=1e-12)


def test_wrong_number_or_shape_of_gradients():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match=r"TooFewBackward returned an incorrect number of "
                                           r"gradients \(expected 2, got 1\)"):
        TooFew.apply(D(2), D(2)).sum().backward()

    class BadShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g[:1]

    with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[1\] but "
                                           r"expected shape compatible with \[3\]"):
        BadShape.apply(D(3)).sum().backward()

    class ExtraNones(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2, None, None

    x = D(3)
    ExtraNones.apply(x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), np.full(3, 2.0))


def test_double_backward():
    x = D(5)
    (g,) = cg.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(npy(g), 3 * npy(x) ** 2, rtol=1e-12)
    (gg,) = cg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(npy(gg), 6 * npy(x), rtol=1e-12)
    assert gradgradcheck(Cube.apply, (D(3),))
    assert gradgradcheck(Exp.apply, (D(3),))  # through a saved output
    assert gradgradcheck(SinCos.apply, (D(3),))


def test_once_differentiable():
    class CubeOnce(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        @cg.autograd.function.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    x = D(3)
    (g,) = cg.autograd.grad(CubeOnce.apply(x).sum(), x)
    np.testing.assert_allclose(npy(g), 3 * npy(x) ** 2, rtol=1e-12)
    go = cg.ones(3, dtype=cg.float64, requires_grad=True)
    (g,) = cg.autograd.grad(CubeOnce.apply(x), x, grad_outputs=go, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        g.sum().backward()


def test_hooks_on_inputs_and_outputs():
    x = D(4)
    h = x * 1.0
    seen = {}
    h.register_hook(lambda g: seen.__setitem__("input", npy(g)))
    y = Cube.apply(h)
    y.register_hook(lambda g: g * 2)  # doubles what reaches the function's backward
    y.retain_grad()
    y.sum().backward()
    xn = npy(x)
    np.testing.assert_allclose(seen["input"], 2 * 3 * xn ** 2, rtol=1e-12)
    np.testing.assert_allclose(npy(x.grad), 2 * 3 * xn ** 2, rtol=1e-12)
    np.testing.assert_allclose(npy(y.grad), np.full(4, 2.0))


def test_legacy_call_and_missing_backward_raise():
    with pytest.raises(RuntimeError, match="Legacy autograd function"):
        Cube()(D(2))

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    with pytest.raises(NotImplementedError, match="backward or vjp"):
        NoBackward.apply(D(2)).sum().backward()


# --- custom Functions inside cg.compile ----------------------------------------------------


class Swish(Function):
    @staticmethod
    def forward(ctx, x, beta):
        s = (x * beta).sigmoid()
        ctx.save_for_backward(x, s)
        ctx.beta = beta
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * (s + ctx.beta * x * s * (1 - s)), None


class SwishNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 10)
        self.b = nn.Linear(10, 3)

    def forward(self, x):
        return self.b(Swish.apply(self.a(x), 1.5))


def _pair(cls, seed=0):
    cg.manual_seed(seed)
    m1 = cls()
    m2 = cls()
    m2.load_state_dict(m1.state_dict())
    return m1, m2


def _assert_same_parameters(m1, m2, tol=1e-5):
    for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        np.testing.assert_allclose(npy(p1), npy(p2), rtol=tol, atol=tol, err_msg=n)


def test_function_in_a_compiled_training_step(no_warnings):
    m1, m2 = _pair(SwishNet)
    o1 = cg.optim.SGD(m1.parameters(), lr=0.1)
    o2 = cg.optim.SGD(m2.parameters(), lr=0.1)

    def step(model, opt, x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    c = cg.compile(step)
    for _ in range(4):
        x, y = F32(8, 6), F32(8, 3)
        l1 = step(m1, o1, x, y)
        l2 = c(m2, o2, x, y)
        np.testing.assert_allclose(l1.item(), l2.item(), rtol=1e-5)
        _assert_same_parameters(m1, m2)
    assert all(e.plan is not None for e in c._entries.values())


def test_function_in_a_compiled_forward(no_warnings):
    m1, m2 = _pair(SwishNet)
    c = cg.compile(m2)
    for k in range(3):
        x = F32(5, 6)
        m1.zero_grad()
        m2.zero_grad()
        y1, y2 = m1(x), c(x)
        np.testing.assert_allclose(npy(y1), npy(y2), rtol=1e-5, atol=1e-6)
        assert k == 0 or y2.grad_fn.op is COMPILED_OP  # a replay's one node
        (y1 ** 2).sum().backward()
        (y2 ** 2).sum().backward()
        for p1, p2 in zip(m1.parameters(), m2.parameters()):
            np.testing.assert_allclose(npy(p1.grad), npy(p2.grad), rtol=1e-4, atol=1e-5)
    (entry,) = c._entries.values()
    assert isinstance(entry.plan, Differentiable)


def test_function_with_argument_gradient_in_compiled_call(no_warnings):
    c = cg.compile(lambda x, w: Cube.apply(x * w).sum(-1))
    for _ in range(3):
        x = cg.tensor(RNG.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
        w = F32(3)
        out = c(x, w)
        out.sum().backward()
        xn, wn = npy(x), npy(w)
        np.testing.assert_allclose(npy(out), ((xn * wn) ** 3).sum(-1), rtol=1e-4)
        np.testing.assert_allclose(npy(x.grad), 3 * (xn * wn) ** 2 * wn, rtol=1e-4, atol=1e-6)


# --- compile: host data made into tensors inside the call ---------------------------------

TABLE = np.zeros(3, np.float32)
OFFSETS = [0.0, 0.0, 0.0]


def _warns_eagerly(c, *args, match):
    with pytest.warns(RuntimeWarning, match=match):
        return c(*args)


def test_global_array_and_list_are_uploaded_anew(no_warnings):
    def f(x):
        return x * cg.from_numpy(TABLE) + cg.tensor(OFFSETS)

    c = cg.compile(f)
    x = F32(2, 3)
    for k in range(4):
        TABLE[:] = np.arange(3) + k  # in place
        OFFSETS[k % 3] = float(k)  # a list mutated
        np.testing.assert_allclose(npy(c(x)), npy(x) * TABLE + np.array(OFFSETS, np.float32),
                                   rtol=1e-6)
    (entry,) = c._entries.values()
    assert entry.plan is not None and len(entry.host.specs) == 2


def test_closure_rebinding_and_module_attribute(no_warnings):
    scale = np.ones(4, np.float32)

    def f(x):
        return x * cg.tensor(scale)

    c = cg.compile(f)
    x = F32(4)
    for k in range(3):
        scale = np.full(4, k + 2.0, np.float32)  # rebinds the closure variable
        np.testing.assert_allclose(npy(c(x)), npy(x) * (k + 2), rtol=1e-6)

    class Shift(nn.Module):
        def __init__(self):
            super().__init__()
            self.shift = np.zeros(4, np.float32)

        def forward(self, x):
            return x + cg.as_tensor(self.shift)

    m = Shift()
    cm = cg.compile(m)
    for k in range(3):
        m.shift = np.full(4, float(k), np.float32)
        np.testing.assert_allclose(npy(cm(x)), npy(x) + k, rtol=1e-6)
    assert all(e.plan is not None for e in cm._entries.values())


def test_bound_method_object_attribute(no_warnings):
    class Scaler:
        def __init__(self):
            self.factors = [1.0, 1.0]

        def apply(self, x):
            return x * cg.tensor(self.factors)

    s = Scaler()
    c = cg.compile(s.apply)
    x = F32(2)
    for k in range(3):
        s.factors = [float(k), 2.0 * k]
        np.testing.assert_allclose(npy(c(x)), npy(x) * [k, 2 * k], rtol=1e-6)
    (entry,) = c._entries.values()
    assert entry.plan is not None and len(entry.host.specs) == 1


def test_data_loader_inside_runs_eagerly():
    data = [np.full(2, i, np.float32) for i in range(4)]
    loader = cg.utils.data.DataLoader(data, batch_size=2)
    c = cg.compile(lambda x: sum(b.sum() for b in loader) + x.sum())
    x = cg.zeros(3)
    _warns_eagerly(c, x, match="host data is loaded inside the call")
    for k in range(2):
        data[0][:] = k + 10
        np.testing.assert_allclose(c(x).item(), 2 * (k + 10) + 2 + 4 + 6)


def test_array_argument_mutated_in_place(no_warnings):
    c = cg.compile(lambda x, arr: (x + cg.tensor(arr)).sum())
    x, arr = F32(5), np.zeros(5, np.float32)
    for k in range(3):
        arr += 1
        np.testing.assert_allclose(c(x, arr).item(), float(npy(x).sum() + 5 * (k + 1)),
                                   rtol=1e-5)
    assert len(c._entries) == 1 and next(iter(c._entries.values())).plan is not None


def test_data_computed_inside_runs_eagerly_and_stays_fresh():
    def f(x, n):
        return x + cg.tensor(np.arange(n, dtype=np.float32) * n)

    c = cg.compile(f)
    x = F32(3)
    out = _warns_eagerly(c, x, 3, match=r"host data becomes a tensor at .*test_function_and_"
                                       r"compile.py:\d+ \(`cg.tensor\(np.arange")
    np.testing.assert_allclose(npy(out), npy(x) + np.arange(3) * 3, rtol=1e-6)
    counter = [0]

    def g(x):
        counter[0] += 1
        values = [float(counter[0])] * 3
        return x * cg.tensor(values)

    cg_ = cg.compile(g)
    _warns_eagerly(cg_, x, match="`values` is a local variable")
    for k in range(2, 5):
        np.testing.assert_allclose(npy(cg_(x)), npy(x) * k, rtol=1e-6)


def test_literal_constants_still_compile(no_warnings):
    c = cg.compile(lambda x: x * cg.tensor([1.0, 2.0, 3.0]) + cg.tensor(0.5) + x[[2, 0]].sum())
    for _ in range(3):
        x = F32(3)
        xn = npy(x)
        np.testing.assert_allclose(npy(c(x)), xn * [1, 2, 3] + 0.5 + xn[[2, 0]].sum(),
                                   rtol=1e-5)
    (entry,) = c._entries.values()
    assert entry.plan is not None and entry.host is None


def test_host_list_index_runs_eagerly():
    idx = [0, 1]
    c = cg.compile(lambda x: x[idx] * 2)
    x = F32(4)
    _warns_eagerly(c, x, match="an index made of host data")
    for k in range(3):
        idx[0] = k
        np.testing.assert_allclose(npy(c(x)), npy(x)[[k, 1]] * 2)


def test_host_data_changing_shape_runs_that_call_eagerly():
    holder = {"data": np.ones(3, np.float32)}
    c = cg.compile(lambda x: x.sum() + cg.tensor(holder["data"]).sum())
    x = F32(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(c(x).item(), npy(x).sum() + 3, rtol=1e-5)
    holder["data"] = np.ones(5, np.float32)
    with pytest.warns(RuntimeWarning, match="changed shape or dtype"):
        np.testing.assert_allclose(c(x).item(), npy(x).sum() + 5, rtol=1e-5)
    holder["data"] = np.full(3, 2.0, np.float32)
    np.testing.assert_allclose(c(x).item(), npy(x).sum() + 6, rtol=1e-5)


def test_host_input_read_by_a_compiled_backward(no_warnings):
    weights = np.ones(4, np.float32)
    lin = nn.Linear(3, 4)
    c = cg.compile(lambda x: (lin(x) * cg.tensor(weights)).sum())
    for k in range(3):
        weights = RNG.standard_normal(4).astype(np.float32)
        lin.zero_grad()
        x = F32(2, 3)
        out = c(x)
        out.backward()
        np.testing.assert_allclose(npy(lin.weight.grad), np.outer(weights, npy(x).sum(0)),
                                   rtol=1e-4, atol=1e-5)


# --- compile: several results that require grad ------------------------------------------


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(12, 16)
        self.mu = nn.Linear(16, 4)
        self.logvar = nn.Linear(16, 4)
        self.dec = nn.Linear(4, 12)

    def forward(self, x, eps):
        h = self.enc(x).relu()
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + eps * (0.5 * logvar).exp()
        return self.dec(z).sigmoid(), mu, logvar


def vae_loss(recon, x, mu, logvar):
    kl = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
    return F.mse_loss(recon, x, reduction="sum") + kl


def test_vae_trains_like_eager_with_one_compiled_backward(no_warnings):
    m1, m2 = _pair(VAE, seed=3)
    o1 = cg.optim.Adam(m1.parameters(), lr=1e-2)
    o2 = cg.optim.Adam(m2.parameters(), lr=1e-2)
    c = cg.compile(m2)
    for k in range(5):
        x = cg.tensor(RNG.random((8, 12)).astype(np.float32))
        eps = F32(8, 4)
        losses = []
        for model, opt, fwd in ((m1, o1, m1), (m2, o2, c)):
            opt.zero_grad()
            recon, mu, logvar = fwd(x, eps)
            loss = vae_loss(recon, x, mu, logvar)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if k:  # a replay: the three results are the outputs of one compiled node
            assert recon.grad_fn is mu.grad_fn is logvar.grad_fn
            assert recon.grad_fn.op is COMPILED_OP
            assert [recon._output_nr, mu._output_nr, logvar._output_nr] == [0, 1, 2]
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
        _assert_same_parameters(m1, m2, tol=1e-4)
    (entry,) = c._entries.values()
    assert isinstance(entry.plan, Differentiable) and entry.plan.diff == [0, 1, 2]


def test_several_results_some_without_gradient(no_warnings):
    m1, m2 = _pair(VAE, seed=4)
    c = cg.compile(m2)
    for k in range(3):
        x, eps = F32(4, 12), F32(4, 4)
        m1.zero_grad()
        m2.zero_grad()
        outs1, outs2 = m1(x, eps), c(x, eps)
        # mu alone, then recon and logvar: the others get zeros
        pick = (lambda o: o[1].sum()) if k % 2 else (lambda o: (o[0] * o[2].sum()).sum())
        pick(outs1).backward()
        pick(outs2).backward()
        for p1, p2 in zip(m1.parameters(), m2.parameters()):
            g1 = np.zeros(p1.shape) if p1.grad is None else npy(p1.grad)
            g2 = np.zeros(p2.shape) if p2.grad is None else npy(p2.grad)
            np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5)
