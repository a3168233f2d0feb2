"""Mixed precision: autocast's dtype table, gradients reaching float32 parameters, the
decorator and nested regions, autocast under cg.compile; GradScaler scaling, skipping a
non-finite step with one host read, growing and backing off, its state dict and errors."""

from __future__ import annotations

import numpy as np
import pytest

import clgraph as cg
import clgraph.nn.functional as F
from clgraph import runtime


def test_autocast_dtype_table():
    a, b = cg.randn(3, 4), cg.randn(4, 5)
    with cg.autocast("cl"):
        assert cg.is_autocast_enabled() and cg.get_autocast_dtype("cl") is cg.float16
        y = a @ b
        assert y.dtype is cg.float16
        assert F.linear(a, b.t()).dtype is cg.float16
        assert cg.bmm(a[None], b[None]).dtype is cg.float16
        assert F.conv2d(cg.randn(1, 2, 5, 5), cg.randn(3, 2, 3, 3)).dtype is cg.float16
        for f in (lambda t: t.softmax(-1), lambda t: t.log_softmax(-1), lambda t: t.exp(),
                  lambda t: t.log(), lambda t: t.sum(), lambda t: t.mean(),
                  lambda t: F.layer_norm(t, (5,)), lambda t: F.cross_entropy(
                      t, cg.tensor([0, 1, 2]))):
            assert f(y).dtype is cg.float32
        assert (y + 1).dtype is cg.float16  # other ops keep their operands' dtype
        assert (a.double() @ b.double()).dtype is cg.float64  # float64 is not lowered
        with cg.autocast("cl", enabled=False):
            assert (a @ b).dtype is cg.float32
        assert (a @ b).dtype is cg.float16
    assert not cg.is_autocast_enabled() and (a @ b).dtype is cg.float32
    np.testing.assert_allclose(y.float().numpy(), (a @ b).numpy(), rtol=1e-2, atol=1e-2)


def test_autocast_gradients_decorator_and_errors():
    w = cg.randn(4, 3, requires_grad=True)

    @cg.autocast("cl")
    def f(x):
        return (x @ w).float().pow(2).sum()

    f(cg.randn(5, 4)).backward()
    assert w.grad is not None and w.grad.dtype is cg.float32
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        cg.autocast("tpu")


def test_autocast_under_compile_is_part_of_the_signature():
    lin = cg.nn.Linear(6, 4)
    x = cg.randn(3, 6)

    def f(x):
        with cg.autocast("cl"):
            return lin(x).softmax(-1)

    fc = cg.compile(f)
    for _ in range(3):
        y = fc(x)
    assert y.dtype is cg.float32
    np.testing.assert_allclose(y.detach().numpy(), f(x).detach().numpy(), rtol=1e-3, atol=1e-4)
    g = cg.compile(lambda x: lin(x))
    assert g(x).dtype is cg.float32
    with cg.autocast("cl"):
        assert g(x).dtype is cg.float16  # a separate entry, not the float32 plan
    assert g(x).dtype is cg.float32


def _setup():
    cg.manual_seed(0)
    lin = cg.nn.Linear(4, 3)
    return lin, cg.optim.SGD(lin.parameters(), lr=0.1), cg.randn(5, 4)


def test_grad_scaler_steps_like_unscaled_training():
    lin, opt, x = _setup()
    ref, ropt, _ = _setup()
    sc = cg.amp.GradScaler(init_scale=1024.0)
    for _ in range(3):
        opt.zero_grad()
        ropt.zero_grad()
        sc.scale(lin(x).pow(2).mean()).backward()
        sc.step(opt)
        sc.update()
        ref(x).pow(2).mean().backward()
        ropt.step()
    np.testing.assert_allclose(lin.weight.detach().numpy(), ref.weight.detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert sc.get_scale() == 1024.0 and sc.state_dict()["_growth_tracker"] == 3


def test_grad_scaler_skips_non_finite_step_with_one_read(monkeypatch):
    lin, opt, x = _setup()
    sc = cg.amp.GradScaler(init_scale=64.0, growth_interval=2)
    w0 = lin.weight.detach().numpy().copy()
    opt.zero_grad()
    sc.scale(lin(x).sum() * float("inf")).backward()
    reads = []
    real = runtime.read
    monkeypatch.setattr(runtime, "read", lambda *a, **k: reads.append(1) or real(*a, **k))
    sc.step(opt)
    assert len(reads) == 1
    monkeypatch.setattr(runtime, "read", real)
    sc.update()
    np.testing.assert_array_equal(lin.weight.detach().numpy(), w0)
    assert sc.get_scale() == 32.0
    for _ in range(2):  # two good steps: the scale grows back
        opt.zero_grad()
        sc.scale(lin(x).sum()).backward()
        sc.step(opt)
        sc.update()
    assert sc.get_scale() == 64.0
    assert not np.array_equal(lin.weight.detach().numpy(), w0)


def test_grad_scaler_state_dict_errors_and_disabled():
    lin, opt, x = _setup()
    sc = cg.amp.GradScaler(init_scale=8.0, growth_factor=3.0, growth_interval=5)
    other = cg.amp.GradScaler()
    other.load_state_dict(sc.state_dict())
    assert other.state_dict() == sc.state_dict() == {
        "scale": 8.0, "growth_factor": 3.0, "backoff_factor": 0.5, "growth_interval": 5,
        "_growth_tracker": 0}
    sc.scale(lin(x).sum()).backward()
    sc.unscale_(opt)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        sc.unscale_(opt)
    sc.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        sc.step(opt)
    with pytest.raises(ValueError, match="The growth factor must be > 1.0."):
        cg.amp.GradScaler(growth_factor=1.0)
    off = cg.amp.GradScaler(enabled=False)
    loss = lin(x).sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
