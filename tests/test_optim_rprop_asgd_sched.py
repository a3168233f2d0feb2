"""optim.Rprop and optim.ASGD against numpy transcriptions of their updates, and
lr_scheduler.CyclicLR and PolynomialLR against their closed forms; PyTorch parity of whole
trajectories (parameters, lr, momentum) where installed; argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg

rng = np.random.default_rng(0)
GRADS = [rng.standard_normal(6) for _ in range(6)]
P0 = rng.standard_normal(6)


def _run(make, steps=6, with_sched=None):
    p = cg.tensor(P0.copy(), requires_grad=True)
    opt = make([p])
    sched = with_sched(opt) if with_sched else None
    out = []
    for g in GRADS[:steps]:
        p.grad = cg.tensor(g)
        opt.step()
        if sched:
            sched.step()
        out.append((p.detach().numpy().copy(), opt.param_groups[0]["lr"]))
    return out


def np_rprop(lr, etas, sizes, maximize=False):
    p, prev, size = P0.copy(), np.zeros(6), np.full(6, lr)
    out = []
    for g in GRADS:
        g = -g if maximize else g.copy()
        s = np.sign(g * prev)
        size = np.clip(size * np.where(s > 0, etas[1], np.where(s < 0, etas[0], 1.0)), *sizes)
        g[s < 0] = 0
        p = p - np.sign(g) * size
        prev = g
        out.append(p.copy())
    return out


@pytest.mark.parametrize("kw", [{}, {"lr": 0.1, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2),
                                     "maximize": True}])
def test_rprop(kw):
    got = _run(lambda ps: cg.optim.Rprop(ps, **kw))
    expect = np_rprop(kw.get("lr", 1e-2), kw.get("etas", (0.5, 1.2)),
                      kw.get("step_sizes", (1e-6, 50)), kw.get("maximize", False))
    for (a, _), b in zip(got, expect):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def np_asgd(lr, lambd, alpha, t0, wd, maximize=False):
    p, ax, eta, mu = P0.copy(), np.zeros(6), float(np.float32(lr)), 1.0  # float32, as torch
    out = []
    for step, g in enumerate(GRADS, 1):
        g = (-g if maximize else g) + wd * p
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + (p - ax) * mu if mu != 1 else p.copy()
        eta = float(np.float32(lr / (1 + lambd * lr * step) ** alpha))
        mu = float(np.float32(1 / max(1, step - t0)))
        out.append((p.copy(), ax.copy()))
    return out


@pytest.mark.parametrize("kw", [{}, {"lr": 0.1, "lambd": 0.01, "alpha": 0.5, "t0": 2,
                                     "weight_decay": 0.1, "maximize": True}])
def test_asgd(kw):
    full = {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6, "weight_decay": 0, **kw}
    p = cg.tensor(P0.copy(), requires_grad=True)
    opt = cg.optim.ASGD([p], **kw)
    expect = np_asgd(full["lr"], full["lambd"], full["alpha"], full["t0"],
                     full["weight_decay"], kw.get("maximize", False))
    for g, (ep, eax) in zip(GRADS, expect):
        p.grad = cg.tensor(g)
        opt.step()
        np.testing.assert_allclose(p.detach().numpy(), ep, rtol=1e-12)
        np.testing.assert_allclose(opt.state[p]["ax"].numpy(), eax, rtol=1e-12)
    state = opt.state_dict()["state"][0]
    assert sorted(state) == ["ax", "eta", "mu", "step"] and state["step"] == 6.0


def test_optimizer_errors():
    p = [cg.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="Invalid eta values: 1.5, 1.2"):
        cg.optim.Rprop(p, etas=(1.5, 1.2))
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        cg.optim.Rprop(p, lr=-1)
    with pytest.raises(ValueError, match="Invalid weight_decay value: -0.1"):
        cg.optim.ASGD(p, weight_decay=-0.1)


def cyclic_closed(e, base, top, up, down, mode, gamma):
    total = up + down
    cycle = math.floor(1 + e / total)
    x = 1.0 + e / total - cycle
    f = x / (up / total) if x <= up / total else (x - 1) / (up / total - 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2.0 ** (cycle - 1),
             "exp_range": gamma**e}[mode]
    return base + (top - base) * f * scale


@pytest.mark.parametrize("mode,down", [("triangular", None), ("triangular2", 3),
                                       ("exp_range", None)])
def test_cyclic_lr(mode, down):
    def make(opt):
        return cg.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=2,
                                              step_size_down=down, mode=mode, gamma=0.9)

    got = _run(lambda ps: cg.optim.SGD(ps, lr=1.0, momentum=0.9), with_sched=make)
    for e, (_, lr) in enumerate(got, 1):
        assert lr == pytest.approx(cyclic_closed(e, 0.01, 0.1, 2, down or 2, mode, 0.9))
    p = cg.zeros(2, requires_grad=True)
    opt = cg.optim.SGD([p], lr=1.0, momentum=0.9)
    sched = make(opt)
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["lr"] == 0.01
    sched.step()  # the momentum falls as the lr rises
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9 - 0.1 * 0.5 * (
        0.9 if mode == "exp_range" else 1.0))
    adam = cg.optim.Adam([p])
    cg.optim.lr_scheduler.CyclicLR(adam, 0.01, 0.1, base_momentum=0.7, max_momentum=0.95)
    assert adam.param_groups[0]["betas"][0] == 0.95
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        cg.optim.lr_scheduler.CyclicLR(cg.optim.Rprop([p]), 0.01, 0.1)
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        cg.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, mode="square")


def test_cyclic_state_dict_round_trip():
    p = cg.zeros(2, requires_grad=True)
    opt = cg.optim.SGD([p], lr=1.0, momentum=0.9)
    a = cg.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=3, mode="triangular2")
    for _ in range(4):
        a.step()
    b = cg.optim.lr_scheduler.CyclicLR(cg.optim.SGD([p], lr=1.0, momentum=0.9), 0.01, 0.1)
    b.load_state_dict(a.state_dict())
    assert b.last_epoch == 4 and b.mode == "triangular2" and b.get_lr() == a.get_lr()


def test_polynomial_lr():
    got = _run(lambda ps: cg.optim.SGD(ps, lr=0.5),
               with_sched=lambda o: cg.optim.lr_scheduler.PolynomialLR(o, total_iters=4,
                                                                       power=2.0))
    for e, (_, lr) in enumerate(got, 1):
        assert lr == pytest.approx(0.5 * (1 - min(e, 4) / 4) ** 2, abs=1e-15)


TRAJECTORIES = {
    "Rprop": ("Rprop", {"lr": 0.05}, None),
    "ASGD": ("ASGD", {"lr": 0.1, "lambd": 0.01, "t0": 2}, None),
    "CyclicLR": ("SGD", {"lr": 0.05, "momentum": 0.9},
                 lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=2, mode="exp_range",
                                         gamma=0.8)),
    "PolynomialLR": ("Adam", {"lr": 0.05},
                     lambda m, o: m.PolynomialLR(o, total_iters=3, power=1.5)),
}


@pytest.mark.parametrize("case", sorted(TRAJECTORIES))
def test_matches_torch(case):
    torch = torch_or_skip()
    name, kw, sched = TRAJECTORIES[case]
    results = []
    for lib in (cg, torch):
        p = lib.tensor(P0.copy(), requires_grad=True)
        opt = getattr(lib.optim, name)([p], **kw)
        s = sched(lib.optim.lr_scheduler, opt) if sched else None
        trace = []
        for g in GRADS:
            p.grad = lib.tensor(g)
            opt.step()
            if s:
                s.step()
            group = opt.param_groups[0]
            trace.append((p.detach().numpy().copy(), group["lr"], group.get("momentum")))
        results.append(trace)
    for (a, lr_a, m_a), (b, lr_b, m_b) in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
        assert lr_a == pytest.approx(lr_b, abs=1e-15)
        assert m_a == pytest.approx(m_b)
