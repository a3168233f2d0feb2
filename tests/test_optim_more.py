"""Adadelta, Adamax, NAdam, RAdam, LBFGS and the schedulers LinearLR, SequentialLR,
ReduceLROnPlateau, CosineAnnealingWarmRestarts, OneCycleLR: every optimizer and option
combination against a float64 numpy transcription of PyTorch's algorithm, one launch and
no rebuild per step whatever the learning rate, compiled steps equal eager ones; LBFGS
converges on the Rosenbrock function; each scheduler's sequence against a hand-written
closed form; PyTorch parity where torch is installed."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph import codegen, nn, optim
from clgraph.optim import lr_scheduler
from clgraph.optim.lbfgs import _strong_wolfe

SHAPES = [(3, 4), (5,)]
STEPS = 10  # RAdam's rectification starts at its 6th step


def grads_for(step):
    rng = np.random.default_rng(1000 + step)
    scale = [3.0, 0.2, 1.0, 0.05, 2.0, 0.5][step % 6]
    return [rng.standard_normal(s) * scale for s in SHAPES]


def initial():
    rng = np.random.default_rng(11)
    return [rng.standard_normal(s) for s in SHAPES]


def _lr(lr, t):
    """The learning rate of step ``t`` (1-based): a number, or one per step."""
    return lr[t - 1] if isinstance(lr, (list, tuple)) else lr


# --- numpy references: PyTorch's algorithms, float64, one parameter at a time ------------


def _grad(g, p, weight_decay, maximize):
    g = -g if maximize else g
    return g + weight_decay * p if weight_decay else g


def ref_adadelta(p, gs, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    v = u = np.zeros_like(p)
    for t, g in enumerate(gs, 1):
        g = _grad(g, p, weight_decay, maximize)
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - _lr(lr, t) * delta
        yield p


def ref_adamax(p, gs, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
               maximize=False):
    b1, b2 = betas
    m = u = np.zeros_like(p)
    for t, g in enumerate(gs, 1):
        g = _grad(g, p, weight_decay, maximize)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        p = p - _lr(lr, t) / (1 - b1**t) * m / u
        yield p


def ref_nadam(p, gs, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
              momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    m = v = np.zeros_like(p)
    product = 1.0
    for t, g in enumerate(gs, 1):
        lr_t = _lr(lr, t)
        if decoupled_weight_decay:
            g = -g if maximize else g
            p = p * (1 - lr_t * weight_decay)
        else:
            g = _grad(g, p, weight_decay, maximize)
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        product *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v / (1 - b2**t)) + eps
        p = p - lr_t * (1 - mu) / (1 - product) * g / denom
        p = p - lr_t * mu_next / (1 - product * mu_next) * m / denom
        yield p


def ref_radam(p, gs, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    m = v = np.zeros_like(p)
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(gs, 1):
        lr_t = _lr(lr, t)
        if decoupled_weight_decay:
            g = -g if maximize else g
            p = p * (1 - lr_t * weight_decay)
        else:
            g = _grad(g, p, weight_decay, maximize)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t > 5:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            p = p - lr_t * m_hat * rect * math.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
        else:
            p = p - lr_t * m_hat
        yield p


REFS = {"Adadelta": ref_adadelta, "Adamax": ref_adamax, "NAdam": ref_nadam,
        "RAdam": ref_radam}

CONFIGS = [
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-4}),
    ("Adadelta", {"weight_decay": 0.1}),
    ("Adadelta", {"lr": 0.3, "weight_decay": 0.05, "maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-3}),
    ("Adamax", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adamax", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("NAdam", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}),
    ("RAdam", {}),
    ("RAdam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}),
]


def _id(c):
    name, kw = c
    return name + "-" + ",".join(f"{k}={v}" for k, v in kw.items())


def make_params(dtype=cg.float64):
    return [cg.from_numpy(a).to(dtype).requires_grad_() for a in initial()]


def run_steps(opt, params, steps, start=0, dtype=cg.float64):
    for s in range(start, start + steps):
        for p, g in zip(params, grads_for(s)):
            p.grad = cg.from_numpy(g).to(dtype)
        opt.step()


def _check_against_reference(name, kw, params, dtype, rtol, atol, lrs=None):
    """Step ``params`` with the gradients of grads_for and compare each step with the
    reference (``lrs``: the learning rate of each step, set before it)."""
    opt = getattr(optim, name)(params, **kw)
    ref_kw = dict(kw, lr=lrs) if lrs is not None else kw
    refs = [REFS[name](p0, [grads_for(s)[i] for s in range(STEPS)], **ref_kw)
            for i, p0 in enumerate(initial())]
    for s in range(STEPS):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[s]
        run_steps(opt, params, 1, start=s, dtype=dtype)
        for i, (p, ref) in enumerate(zip(params, refs)):
            np.testing.assert_allclose(p.detach().numpy(), next(ref), rtol=rtol, atol=atol,
                                       err_msg=f"{name} {kw} step {s + 1} param {i}")
    return opt


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_against_numpy_reference(config):
    name, kw = config
    params = make_params()
    _check_against_reference(name, kw, params, cg.float64, rtol=1e-10, atol=1e-12)
    assert not np.allclose(params[0].detach().numpy(), initial()[0])


@pytest.mark.parametrize("config", CONFIGS[::2] + [CONFIGS[11]], ids=_id)
def test_float32_against_float64_reference(config):
    name, kw = config
    params = make_params(cg.float32)
    _check_against_reference(name, kw, params, cg.float32, rtol=2e-5, atol=2e-6)
    assert params[0].dtype is cg.float32


@pytest.mark.parametrize("config", CONFIGS[1::3], ids=_id)
def test_strided_parameters_match_the_reference(config):
    name, kw = config
    params = [cg.from_numpy(np.ascontiguousarray(a.T)).t().requires_grad_()
              for a in initial()]
    assert not params[0].is_contiguous()
    _check_against_reference(name, kw, params, cg.float64, rtol=1e-10, atol=1e-12)


STATE_KEYS = {
    "Adadelta": {"step", "square_avg", "acc_delta"},
    "Adamax": {"step", "exp_avg", "exp_inf"},
    "NAdam": {"step", "mu_product", "exp_avg", "exp_avg_sq"},
    "RAdam": {"step", "exp_avg", "exp_avg_sq"},
}


@pytest.mark.parametrize("name", sorted(STATE_KEYS))
def test_state_names_and_host_scalars(name):
    params = make_params()
    opt = getattr(optim, name)(params)
    run_steps(opt, params, 3)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1]
    assert set(sd["state"][0]) == STATE_KEYS[name]
    assert sd["state"][0]["step"] == 3.0
    for k, v in sd["state"][0].items():
        if k in ("step", "mu_product"):
            assert isinstance(v, float)
        else:
            assert isinstance(v, cg.Tensor) and v.shape == (3, 4), k
    if name == "NAdam":
        b1, md = 0.9, 4e-3
        want = math.prod(b1 * (1 - 0.5 * 0.96 ** (t * md)) for t in (1, 2, 3))
        assert math.isclose(sd["state"][0]["mu_product"], want, rel_tol=1e-14)


@pytest.mark.parametrize("config", CONFIGS[::3], ids=_id)
def test_state_dict_round_trip_resumes_identically(config):
    name, kw = config
    params = make_params()
    opt = getattr(optim, name)(params, **kw)
    run_steps(opt, params, 3)
    sd = opt.state_dict()
    params2 = [p.detach().clone().requires_grad_() for p in params]
    opt2 = getattr(optim, name)(params2, **kw)
    opt2.load_state_dict(sd)
    run_steps(opt, params, 4, start=3)
    run_steps(opt2, params2, 4, start=3)
    for a, b in zip(params, params2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_nadam_loads_tensor_mu_product_as_a_float():
    """A state dict with PyTorch's 0-d tensors for "step" and "mu_product" loads as
    Python floats, and the next steps are the reference's."""
    params = make_params()
    opt = optim.NAdam(params, lr=0.01)
    run_steps(opt, params, 2)
    sd = opt.state_dict()  # its entries are opt's own: change copies
    sd["state"] = {i: dict(st, step=cg.tensor(st["step"], dtype=cg.float32),
                           mu_product=cg.tensor(st["mu_product"], dtype=cg.float64))
                   for i, st in sd["state"].items()}
    params2 = [p.detach().clone().requires_grad_() for p in params]
    opt2 = optim.NAdam(params2, lr=0.01)
    opt2.load_state_dict(sd)
    st2 = opt2.state[params2[0]]
    assert isinstance(st2["step"], float) and isinstance(st2["mu_product"], float)
    run_steps(opt, params, 2, start=2)
    run_steps(opt2, params2, 2, start=2)
    np.testing.assert_allclose(params2[0].detach().numpy(), params[0].detach().numpy(),
                               rtol=1e-14)


@pytest.mark.parametrize("make,message", [
    (lambda p: optim.Adadelta(p, lr=-1), "Invalid learning rate: -1"),
    (lambda p: optim.Adadelta(p, rho=1.5), "Invalid rho value: 1.5"),
    (lambda p: optim.Adadelta(p, eps=-1.0), "Invalid epsilon value: -1.0"),
    (lambda p: optim.Adamax(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adamax(p, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (lambda p: optim.NAdam(p, momentum_decay=-1.0), "Invalid momentum_decay value: -1.0"),
    (lambda p: optim.NAdam(p, betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (lambda p: optim.RAdam(p, lr=-0.5), "Invalid learning rate: -0.5"),
    (lambda p: optim.LBFGS(p, lr=-1.0), "Invalid learning rate: -1.0"),
    (lambda p: optim.LBFGS([{"params": p[:1]}, {"params": p[1:]}]),
     "LBFGS doesn't support per-parameter options"),
])
def test_argument_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())


# --- kernels: one launch per step, scalars as arguments, no host reads --------------------


@pytest.mark.parametrize("name,kw", [
    ("Adadelta", {"weight_decay": 0.1}), ("Adamax", {"maximize": True}),
    ("NAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"weight_decay": 0.1}),
])
def test_one_launch_per_step_and_no_rebuild_when_lr_changes(name, kw):
    """Every parameter's update runs in one kernel, built at the first step: later steps
    with new learning rates (Hyper arguments), and RAdam's switch to rectified steps, reuse
    it; the new learning rates take effect as the reference's do."""
    lrs = [0.01 * (1 + 0.5 * math.sin(s)) for s in range(STEPS)]
    params = make_params(cg.float32)
    opt = getattr(optim, name)(params, lr=lrs[0], **kw)
    ref_kw = dict(kw, lr=lrs)
    refs = [REFS[name](p0, [grads_for(s)[i] for s in range(STEPS)], **ref_kw)
            for i, p0 in enumerate(initial())]
    for s in range(STEPS):
        opt.param_groups[0]["lr"] = lrs[s]
        for p, g in zip(params, grads_for(s)):
            p.grad = cg.from_numpy(g.astype(np.float32))
        builds = codegen.stats["builds"]
        with cg.profile() as prof:
            opt.step()
        if s > 0:
            assert codegen.stats["builds"] == builds, f"step {s + 1} built a kernel"
            assert prof.launches == 1, prof.kernels
        for p, ref in zip(params, refs):
            np.testing.assert_allclose(p.detach().numpy(), next(ref), rtol=2e-5, atol=2e-6,
                                       err_msg=f"{name} step {s + 1}")


def test_steps_never_read_the_device(monkeypatch):
    params = make_params()
    opts = [optim.Adadelta(params, weight_decay=0.1), optim.Adamax(params, maximize=True),
            optim.NAdam(params, decoupled_weight_decay=True, weight_decay=0.1),
            optim.RAdam(params, weight_decay=0.1)]
    for p, g in zip(params, grads_for(0)):
        p.grad = cg.from_numpy(g)
    p0 = params[0].detach().numpy().copy()

    def no_read(*args, **kwargs):
        raise AssertionError("step() read device data to the host")

    with monkeypatch.context() as m:
        m.setattr(cg.runtime, "read", no_read)
        for _ in range(7):
            for opt in opts:
                opt.step()
    assert not np.allclose(params[0].detach().numpy(), p0)


@pytest.mark.parametrize("name,kw", [
    ("Adadelta", {"lr": 0.5}), ("Adamax", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.01, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.01}),
])
def test_compiled_training_step_matches_eager(name, kw):
    """A compiled training step replays the update with the scalars of each step (its
    step count, NAdam's momentum product, RAdam's rectification): the same parameters as
    eager steps, past RAdam's switch to rectified steps."""
    models = []
    for _ in range(2):
        cg.manual_seed(3)
        models.append(nn.Linear(6, 3))
    opts = [getattr(optim, name)(m.parameters(), **kw) for m in models]

    def make_step(m, o):
        def step(x, y):
            o.zero_grad()
            loss = ((m(x) - y) ** 2).mean()
            loss.backward()
            o.step()
            return loss

        return step

    eager, compiled = make_step(models[0], opts[0]), cg.compile(make_step(models[1], opts[1]))
    rng = np.random.default_rng(4)
    for i in range(12):
        x = cg.tensor(rng.standard_normal((8, 6)).astype(np.float32))
        y = cg.tensor(rng.standard_normal((8, 3)).astype(np.float32))
        if i == 6:
            for o in opts:
                o.param_groups[0]["lr"] *= 0.5
        np.testing.assert_allclose(compiled(x, y).item(), eager(x, y).item(), rtol=1e-4,
                                   atol=1e-6)
        for pe, pc in zip(models[0].parameters(), models[1].parameters()):
            np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-4,
                                       atol=1e-6, err_msg=f"{name} step {i + 1}")
    assert any(e.plan is not None for e in compiled._entries.values())
    sa, sb = opts[0].state[models[0].weight], opts[1].state[models[1].weight]
    assert sa["step"] == sb["step"] == 12.0


# --- LBFGS ---------------------------------------------------------------------------------


def rosenbrock(x):
    """sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2 over a vector (clgraph or torch)."""
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def _lbfgs_closure(opt, params, cat):
    def closure():
        opt.zero_grad()
        loss = rosenbrock(cat([p.reshape(-1) for p in params]))
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("lr", [1.0, 0.5])
def test_lbfgs_converges_on_rosenbrock(line_search_fn, lr):
    x = cg.tensor([-1.5, 2.0], dtype=cg.float64, requires_grad=True)
    opt = optim.LBFGS([x], lr=lr, line_search_fn=line_search_fn)
    closure = _lbfgs_closure(opt, [x], cg.cat)
    first = opt.step(closure)
    assert math.isclose(first.item(), 12.5, rel_tol=1e-12)  # the loss at the start
    for _ in range(9):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 1.0], atol=1e-4)
    assert closure().item() < 1e-8
    state = opt.state[x]
    assert state["n_iter"] >= 40 and state["func_evals"] >= state["n_iter"]
    assert len(state["old_dirs"]) == len(state["old_stps"]) == len(state["ro"]) > 0


def test_lbfgs_history_size_and_zero_gradient():
    x = cg.tensor([-1.2, 1.0, 0.3, 0.8], dtype=cg.float64, requires_grad=True)
    opt = optim.LBFGS([x], history_size=3, max_iter=15, line_search_fn="strong_wolfe")
    closure = _lbfgs_closure(opt, [x], cg.cat)
    opt.step(closure)
    assert len(opt.state[x]["old_dirs"]) == 3
    # at the minimum the gradient is zero: step() evaluates once and returns
    y = cg.ones(3, dtype=cg.float64, requires_grad=True)
    opt = optim.LBFGS([y])
    loss = opt.step(_lbfgs_closure(opt, [y], cg.cat))
    assert loss.item() == 0.0 and opt.state[y]["func_evals"] == 1
    assert opt.state[y]["n_iter"] == 0
    np.testing.assert_array_equal(y.detach().numpy(), np.ones(3))


def test_lbfgs_rejects_unknown_line_search():
    x = cg.tensor([-1.5, 2.0], dtype=cg.float64, requires_grad=True)
    opt = optim.LBFGS([x], line_search_fn="armijo")
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(_lbfgs_closure(opt, [x], cg.cat))


LINES = {  # 1-d functions (of clgraph or torch tensors) and a start point
    "quartic": (lambda x: (x**4).sum() - 3 * (x**2).sum() + x.sum(), 2.0),
    "rosenbrock": (lambda x: ((1 - x) ** 2 + 100 * (x**2 - x) ** 2).sum(), -0.3),
    "quadratic": (lambda x: ((x - 5) ** 2).sum() * 0.01, 0.0),
    "cosine": (lambda x: (x * 0.5).cos().sum() + 0.01 * (x**2).sum(), 0.3),
    "sine": (lambda x: (x * 3).sin().sum() + 0.1 * (x**2).sum(), 0.2),
    "flat_then_wall": (lambda x: (x**8).sum() * 1e-3 - x.sum(), -1.0),
}


def _line_search(lib, fn, x0, t0):
    """lib's strong-Wolfe search along the steepest descent from x0: (loss, step,
    evaluations, slope at the step, loss and slope at 0)."""
    x = lib.tensor([x0], dtype=lib.float64)

    def loss_grad(at):
        at = at.detach().clone().requires_grad_(True)
        loss = fn(at)
        loss.backward()
        return float(loss.detach()), at.grad

    f0, g0 = loss_grad(x)
    d = -g0
    gtd = float((g0 * d).sum())
    if lib is cg:
        f, g, t, evals = _strong_wolfe(lambda t: loss_grad(x + t * d), t0, d, f0, g0, gtd)
    else:
        search = sys.modules[lib.optim.LBFGS.__module__]._strong_wolfe
        f, g, t, evals = search(lambda _, t, d: loss_grad(x + t * d), x, t0, d, f0, g0,
                                (g0 * d).sum())
    return float(f), float(t), int(evals), float((g * d).sum()), f0, gtd


@pytest.mark.parametrize("t0", [1e-3, 1.0, 100.0, 1000.0])
@pytest.mark.parametrize("name", sorted(LINES))
def test_strong_wolfe_finds_a_wolfe_point(name, t0):
    """From a trial step too short (extrapolation), about right or far too long (zoom,
    with its moves away from the bracket's ends), the step found satisfies the strong
    Wolfe conditions."""
    f, t, evals, slope, f0, gtd = _line_search(cg, *LINES[name], t0)
    assert t > 0 and evals <= 25
    assert f <= f0 + 1e-4 * t * gtd, (f, f0, t, gtd)  # sufficient decrease
    assert abs(slope) <= 0.9 * abs(gtd), (slope, gtd)  # curvature


@pytest.mark.parametrize("t0", [1e-3, 1.0, 100.0, 1000.0])
@pytest.mark.parametrize("name", sorted(LINES))
def test_strong_wolfe_pytorch_parity(name, t0):
    torch = torch_or_skip()
    ours = _line_search(cg, *LINES[name], t0)
    theirs = _line_search(torch, *LINES[name], t0)
    assert ours[2] == theirs[2]  # the same number of evaluations
    np.testing.assert_allclose(ours[:2], theirs[:2], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kw", [
    {}, {"line_search_fn": "strong_wolfe"}, {"lr": 0.5, "history_size": 4},
    {"line_search_fn": "strong_wolfe", "history_size": 3, "max_iter": 7, "max_eval": 9},
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_lbfgs_pytorch_trajectory(kw):
    """Two parameters (flattened into one vector) on a 5-dimensional Rosenbrock function:
    the same iterates, loss values, evaluation counts and state keys as torch.optim.LBFGS
    after every step()."""
    torch = torch_or_skip()
    a0, b0 = np.array([-1.5, 2.0, 0.5]), np.array([[1.2], [-0.3]])
    params = [cg.tensor(a0, requires_grad=True), cg.tensor(b0, requires_grad=True)]
    tparams = [torch.tensor(a0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    opt, topt = optim.LBFGS(params, **kw), torch.optim.LBFGS(tparams, **kw)
    closure = _lbfgs_closure(opt, params, cg.cat)
    tclosure = _lbfgs_closure(topt, tparams, torch.cat)
    for i in range(6):
        loss, tloss = opt.step(closure), topt.step(tclosure)
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-7, atol=1e-10)
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-6,
                                       atol=1e-8, err_msg=f"{kw} step {i + 1}")
        st, tst = opt.state[params[0]], topt.state[tparams[0]]
        assert (st["func_evals"], st["n_iter"]) == (tst["func_evals"], tst["n_iter"])
    assert set(opt.state_dict()["state"][0]) == set(topt.state_dict()["state"][0])
    assert opt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]


# --- PyTorch parity of the fused optimizers ------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_pytorch_parity(config):
    torch = torch_or_skip()
    name, kw = config
    params = make_params(cg.float32)
    tparams = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in initial()]
    opt = getattr(optim, name)(params, **kw)
    topt = getattr(torch.optim, name)(tparams, **kw)
    for s in range(STEPS):
        for p, tp, g in zip(params, tparams, grads_for(s)):
            p.grad = cg.from_numpy(g.astype(np.float32))
            tp.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        topt.step()
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=2e-5,
                                       atol=2e-6, err_msg=f"{name} {kw} step {s + 1}")
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == tsd["param_groups"]
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i in sd["state"]:
        assert set(sd["state"][i]) == set(tsd["state"][i])
        for k, tv in tsd["state"][i].items():
            v = sd["state"][i][k]
            if k in ("step", "mu_product"):
                assert math.isclose(v, tv.item(), rel_tol=1e-6), k
            else:
                np.testing.assert_allclose(v.numpy(), tv.numpy(), rtol=2e-5, atol=2e-6,
                                           err_msg=k)


# --- schedulers ------------------------------------------------------------------------------


def _sgd_two_groups(momentum=0.0):
    a, b = make_params()
    return optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=1.0,
                     momentum=momentum)


def _adam_two_groups():
    a, b = make_params()
    return optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=1.0)


def _torch_twin(torch, opt):
    """A torch optimizer with the same groups and options as ``opt`` (SGD or Adam)."""
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    for g in groups:
        g["params"] = [torch.zeros(2, requires_grad=True)]
    return getattr(torch.optim, type(opt).__name__)(groups)


def _cawr(base, e, T_0=5, T_mult=2, eta_min=0.01):
    """CosineAnnealingWarmRestarts' closed form at (possibly fractional) epoch ``e``."""
    T_i, T_cur = T_0, e
    while T_cur >= T_i:
        T_cur -= T_i
        T_i *= T_mult
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def _one_cycle(base_max, e, total, pct, final_div=1e4, div=25.0, strategy="cos",
               three_phase=False):
    """OneCycleLR's lr at step ``e``, written from its definition: up from
    max/div to max over pct*total steps, then down to max/div/final_div."""
    lo, hi = base_max / div, base_max / div / final_div

    def anneal(a, b, x):
        if strategy == "cos":
            return b + (a - b) * (1 + math.cos(math.pi * x)) / 2
        return a + (b - a) * x

    up = pct * total - 1
    if three_phase:
        if e <= up:
            return anneal(lo, base_max, e / up)
        if e <= 2 * up:
            return anneal(base_max, lo, (e - up) / up)
        return anneal(lo, hi, (e - 2 * up) / (total - 1 - 2 * up))
    if e <= up:
        return anneal(lo, base_max, e / up)
    return anneal(base_max, hi, (e - up) / (total - 1 - up))


def _linear(base, e, s=0.25, f=1.0, n=8):
    return base * (s + (f - s) * min(e, n) / n)


SCHEDULERS = {
    "LinearLR": (lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=8),
                 lambda base, e: _linear(base, e)),
    "LinearLR-decay": (lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1,
                                               total_iters=12),
                       lambda base, e: _linear(base, e, 1.0, 0.1, 12)),
    "CosineAnnealingWarmRestarts": (
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=0.01),
        _cawr),
    "CosineAnnealingWarmRestarts-T_mult1": (
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7),
        lambda base, e: _cawr(base, e, 7, 1, 0.0)),
    "OneCycleLR": (lambda m, o: m.OneCycleLR(o, max_lr=[2.0, 1.0], total_steps=31),
                   lambda base, e: _one_cycle(2 * base, e, 31, 0.3)),
    "OneCycleLR-linear-three_phase": (
        lambda m, o: m.OneCycleLR(o, max_lr=[2.0, 1.0], epochs=4, steps_per_epoch=8,
                                  pct_start=0.25, anneal_strategy="linear", three_phase=True,
                                  div_factor=10.0, final_div_factor=100.0),
        lambda base, e: _one_cycle(2 * base, e, 32, 0.25, 100.0, 10.0, "linear", True)),
    "SequentialLR": (
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, start_factor=0.1, total_iters=5),
                m.ExponentialLR(o, gamma=0.9)], milestones=[5]),
        lambda base, e: base * (0.1 + 0.9 * e / 5) if e < 5 else base * 0.9 ** (e - 5)),
    "SequentialLR-three": (
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, start_factor=0.5, total_iters=4),
                m.StepLR(o, step_size=3, gamma=0.5),
                m.CosineAnnealingLR(o, T_max=10)], milestones=[6, 15]),
        lambda base, e: (base * (0.5 + 0.5 * min(e, 4) / 4) if e < 6 else
                         base * 0.5 ** ((e - 6) // 3) if e < 15 else
                         base * (1 + math.cos(math.pi * (e - 15) / 10)) / 2)),
}
STEPPED = 30


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_sequences(name):
    make, closed = SCHEDULERS[name]
    opt = _sgd_two_groups(momentum=0.9)
    sched = make(lr_scheduler, opt)
    for e in range(STEPPED + 1):
        if e:
            opt.step()
            sched.step()
        got = sched.get_last_lr()
        assert got == [g["lr"] for g in opt.param_groups]
        for base, lr in zip([1.0, 0.5], got):
            assert math.isclose(lr, closed(base, e), rel_tol=1e-9, abs_tol=1e-12), (e, lr)


def test_one_cycle_momentum_and_betas():
    """cycle_momentum moves SGD's momentum, or Adam's beta1, opposite to the lr between
    max_momentum and base_momentum; beta2 stays; Adam's kernel is not rebuilt."""
    total, pct = 20, 0.4
    up = pct * total - 1

    def momentum(e):
        if e <= up:
            return 0.85 + (0.95 - 0.85) * (1 + math.cos(math.pi * e / up)) / 2
        return 0.95 + (0.85 - 0.95) * (1 + math.cos(math.pi * (e - up) / (total - 1 - up))) / 2

    sgd, adam = _sgd_two_groups(momentum=0.5), _adam_two_groups()
    params = [g["params"][0] for g in adam.param_groups]
    scheds = [lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=total, pct_start=pct)
              for o in (sgd, adam)]
    for e in range(total):
        if e:
            run_steps(adam, params, 1, start=e)
            if e == 2:
                builds = codegen.stats["builds"]
            for s in scheds:
                s.step()
        for g in sgd.param_groups:
            assert math.isclose(g["momentum"], momentum(e), rel_tol=1e-12)
        for g in adam.param_groups:
            assert math.isclose(g["betas"][0], momentum(e), rel_tol=1e-12)
            assert g["betas"][1] == 0.999
    assert codegen.stats["builds"] == builds
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        lr_scheduler.OneCycleLR(optim.Adagrad(make_params()), max_lr=1.0, total_steps=5)


def test_one_cycle_errors():
    opt = _sgd_two_groups()
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="Expected float between 0 and 1 pct_start"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=5, pct_start=1)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        lr_scheduler.OneCycleLR(opt, max_lr=[1.0], total_steps=5)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3, cycle_momentum=False)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()


def test_cosine_warm_restarts_fractional_epochs():
    opt = _sgd_two_groups()
    sched = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.05)
    iters = 4
    for epoch in range(12):
        for i in range(iters):
            e = epoch + i / iters
            sched.step(e)
            assert sched.last_epoch == math.floor(e)
            for base, lr in zip([1.0, 0.5], sched.get_last_lr()):
                assert math.isclose(lr, _cawr(base, e, 3, 2, 0.05), rel_tol=1e-9), (e, lr)
    with pytest.raises(ValueError, match="Expected non-negative epoch"):
        sched.step(-1)
    with pytest.raises(ValueError, match="Expected positive integer T_0"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=0)


METRICS = [10, 9, 9.5, 9.2, 9.1, 8, 8, 8.5, 9, 9, 9, 7, 7, 7, 7, 7, 6.9999, 7, 7, 7]


def _plateau_expected(lr, metrics, patience, cooldown, factor, min_lr, better):
    """ReduceLROnPlateau written out: the lr after each metric."""
    best, bad, cool, out = None, 0, 0, []
    for x in metrics:
        if best is None or better(x, best):
            best, bad = x, 0
        else:
            bad += 1
        if cool > 0:
            cool, bad = cool - 1, 0
        if bad > patience:
            new = max(lr * factor, min_lr)
            lr = new if lr - new > 1e-8 else lr
            cool, bad = cooldown, 0
        out.append(lr)
    return out


@pytest.mark.parametrize("as_tensor", [False, True])
def test_reduce_lr_on_plateau(as_tensor):
    opt = _sgd_two_groups()
    sched = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1,
                                           min_lr=[0.2, 0.01])
    assert sched.get_last_lr() == [1.0, 0.5]
    want = [_plateau_expected(lr, METRICS, 2, 1, 0.5, m, lambda a, b: a < b * (1 - 1e-4))
            for lr, m in ((1.0, 0.2), (0.5, 0.01))]
    for i, x in enumerate(METRICS):
        sched.step(cg.tensor(float(x)) if as_tensor else x)
        assert sched.get_last_lr() == [want[0][i], want[1][i]], i
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    assert sched.last_epoch == len(METRICS)
    assert want[0][-1] == 0.2  # the floor was reached


def test_reduce_lr_on_plateau_max_abs_and_errors():
    opt = _sgd_two_groups()
    sched = lr_scheduler.ReduceLROnPlateau(opt, mode="max", threshold=0.5,
                                           threshold_mode="abs", patience=1)
    metrics = [1, 1.4, 1.6, 1.7, 2.0, 2.2, 2.6, 2.6, 2.6, 3.2, 3.3, 3.3]
    want = _plateau_expected(1.0, metrics, 1, 0, 0.1, 0, lambda a, b: a > b + 0.5)
    for x, w in zip(metrics, want):
        sched.step(x)
        assert math.isclose(sched.get_last_lr()[0], w, rel_tol=1e-12)
    assert want[-1] < 1.0
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode up is unknown!"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="expected 2 min_lrs, got 1"):
        lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1])


def test_sequential_lr_errors():
    opt, other = _sgd_two_groups(), _sgd_two_groups()
    a = lr_scheduler.LinearLR(opt)
    with pytest.raises(ValueError, match="expects number of schedulers provided to be one"):
        lr_scheduler.SequentialLR(opt, [a, lr_scheduler.StepLR(opt, 2)], milestones=[])
    with pytest.raises(ValueError, match="expects all schedulers to belong to the same"):
        lr_scheduler.SequentialLR(opt, [a, lr_scheduler.StepLR(other, 2)], milestones=[3])
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        lr_scheduler.SequentialLR(opt, [a, lr_scheduler.ReduceLROnPlateau(opt)], [3])


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_state_dict_resumes(name):
    make, _ = SCHEDULERS[name]
    opt = _sgd_two_groups(momentum=0.9)
    sched = make(lr_scheduler, opt)
    for _ in range(7):
        sched.step()
    sd = sched.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 7
    opt2 = _sgd_two_groups(momentum=0.9)
    sched2 = make(lr_scheduler, opt2)
    sched2.load_state_dict(sd)
    opt2.load_state_dict(opt.state_dict())
    for _ in range(12):
        sched.step()
        sched2.step()
        assert sched.get_last_lr() == sched2.get_last_lr()


def test_reduce_lr_on_plateau_state_dict_resumes():
    opt = _sgd_two_groups()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1, mode="max")
    for x in METRICS[:6]:
        sched.step(-x)
    opt2 = _sgd_two_groups()
    sched2 = lr_scheduler.ReduceLROnPlateau(opt2)
    sched2.load_state_dict(sched.state_dict())
    opt2.load_state_dict(opt.state_dict())
    assert sched2.mode == "max" and sched2.mode_worse == -math.inf
    for x in METRICS[6:]:
        sched.step(-x)
        sched2.step(-x)
        assert sched.get_last_lr() == sched2.get_last_lr()
    assert sched.get_last_lr()[0] < 1.0


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_pytorch_parity(name):
    torch = torch_or_skip()
    opt = _sgd_two_groups(momentum=0.9)
    topt = _torch_twin(torch, opt)
    make, _ = SCHEDULERS[name]
    sched, tsched = make(lr_scheduler, opt), make(torch.optim.lr_scheduler, topt)
    np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
    for e in range(STEPPED):
        topt.step()
        tsched.step()
        sched.step()
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-9,
                                   atol=1e-15, err_msg=f"{name} epoch {e + 1}")
        for g, tg in zip(opt.param_groups, topt.param_groups):
            assert math.isclose(g["momentum"], tg["momentum"], rel_tol=1e-12)


def test_one_cycle_betas_pytorch_parity():
    torch = torch_or_skip()
    opt = _adam_two_groups()
    topt = _torch_twin(torch, opt)
    kw = {"max_lr": [0.1, 0.05], "total_steps": 25, "three_phase": True,
          "base_momentum": 0.8, "max_momentum": [0.9, 0.95]}
    sched = lr_scheduler.OneCycleLR(opt, **kw)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kw)
    for _ in range(25):
        topt.step()
        tsched.step()
        sched.step()
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
        for g, tg in zip(opt.param_groups, topt.param_groups):
            np.testing.assert_allclose(g["betas"], tg["betas"], rtol=1e-12)


def test_cosine_warm_restarts_fractional_pytorch_parity():
    torch = torch_or_skip()
    opt = _sgd_two_groups()
    topt = _torch_twin(torch, opt)
    sched = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=3, eta_min=0.02)
    tsched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0=4, T_mult=3,
                                                                   eta_min=0.02)
    for e in [0.5, 1.25, 3.9, 4.0, 7.5, 15.99, 16.0, 20.3, 50.0, 53.1]:
        sched.step(e)
        tsched.step(e)
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
        assert sched.last_epoch == tsched.last_epoch
    for _ in range(8):  # then whole epochs from there
        sched.step()
        tsched.step()
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)

