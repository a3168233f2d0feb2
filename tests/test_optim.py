"""Optimizers and schedulers: every optimizer and option combination against a numpy
transcription of PyTorch's documented algorithm over several steps, param groups, state
dicts, zero_grad, argument errors, kernel counts; PyTorch parity where torch is installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph import optim
from clgraph.ops import fused
from clgraph.optim import lr_scheduler
from clgraph.optim.adagrad import adagrad_update
from clgraph.optim.adam import adam_update
from clgraph.optim.rmsprop import rmsprop_update
from clgraph.optim.sgd import sgd_update

SHAPES = [(3, 4), (5,)]
STEPS = 4


def grads_for(step, seed=0):
    """Gradients of varying size per step (so AMSGrad's running max matters)."""
    rng = np.random.default_rng(100 * seed + step)
    scale = [3.0, 0.2, 1.0, 0.05, 2.0, 0.5][step % 6]
    return [rng.standard_normal(s) * scale for s in SHAPES]


def initial(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


# --- numpy references: PyTorch's algorithms, one parameter at a time --------------------


def ref_sgd(p, gs, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
            maximize=False):
    buf = None
    for g in gs:
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        yield p


def ref_adam(p, gs, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
             maximize=False, decoupled_weight_decay=False):
    b1, b2 = betas
    m = v = vmax = np.zeros_like(p)
    for t, g in enumerate(gs, 1):
        g = -g if maximize else g
        if weight_decay:
            if decoupled_weight_decay:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = m + (1 - b1) * (g - m)
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax if amsgrad else v) / math.sqrt(1 - b2**t) + eps
        p = p - lr / (1 - b1**t) * m / denom
        yield p


def ref_adamw(p, gs, weight_decay=1e-2, **kw):
    return ref_adam(p, gs, weight_decay=weight_decay, decoupled_weight_decay=True, **kw)


def ref_rmsprop(p, gs, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                centered=False, maximize=False):
    sq = np.zeros_like(p)
    gavg = np.zeros_like(p)
    buf = np.zeros_like(p)
    for g in gs:
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * p
        sq = alpha * sq + (1 - alpha) * g * g
        if centered:
            gavg = gavg + (1 - alpha) * (g - gavg)
            avg = np.sqrt(sq - gavg * gavg) + eps
        else:
            avg = np.sqrt(sq) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
        yield p


def ref_adagrad(p, gs, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                eps=1e-10, maximize=False):
    s = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(gs, 1):
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
        yield p


REFS = {"SGD": ref_sgd, "Adam": ref_adam, "AdamW": ref_adamw, "RMSprop": ref_rmsprop,
        "Adagrad": ref_adagrad}

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "maximize": True}),
    ("SGD", {"lr": 0.1, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05, "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5,
                 "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "maximize": True, "eps": 1e-4}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.1}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "maximize": True, "eps": 1e-5}),
]


def _id(c):
    name, kw = c
    return name + "-" + ",".join(f"{k}={v}" for k, v in kw.items())


def make_params(dtype=cg.float64, seed=0):
    return [cg.from_numpy(a).to(dtype).requires_grad_() for a in initial(seed)]


def run_steps(opt, params, steps, start=0, dtype=cg.float64):
    for s in range(start, start + steps):
        for p, g in zip(params, grads_for(s)):
            p.grad = cg.from_numpy(g).to(dtype)
        opt.step()


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_against_numpy_reference(config):
    name, kw = config
    params = make_params()
    opt = getattr(optim, name)(params, **kw)
    refs = [REFS[name](p0, [grads_for(s)[i] for s in range(STEPS)], **kw)
            for i, p0 in enumerate(initial())]
    for s in range(STEPS):
        run_steps(opt, params, 1, start=s)
        for i, (p, ref) in enumerate(zip(params, refs)):
            exp = next(ref)
            np.testing.assert_allclose(p.detach().numpy(), exp, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} {kw} step {s + 1} param {i}")


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_strided_parameters_and_gradients_match_the_reference(config):
    """Transposed parameters and gradients go through the same fused update (copied in and
    out): the same values as the numpy reference."""
    name, kw = config
    params = [cg.from_numpy(np.ascontiguousarray(a.T)).t().requires_grad_() for a in initial()]
    assert not all(p.is_contiguous() for p in params)
    opt = getattr(optim, name)(params, **kw)
    refs = [REFS[name](p0, [grads_for(s)[i] for s in range(STEPS)], **kw)
            for i, p0 in enumerate(initial())]
    for s in range(STEPS):
        for p, g in zip(params, grads_for(s)):
            p.grad = cg.from_numpy(np.ascontiguousarray(g.T)).t()
        opt.step()
        for i, (p, ref) in enumerate(zip(params, refs)):
            np.testing.assert_allclose(p.detach().numpy(), next(ref), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} {kw} step {s + 1} param {i}")


STATE_KEYS = {
    "SGD": {"momentum_buffer"},
    "Adam": {"step", "exp_avg", "exp_avg_sq"},
    "AdamW": {"step", "exp_avg", "exp_avg_sq"},
    "RMSprop": {"step", "square_avg"},
    "Adagrad": {"step", "sum"},
}


@pytest.mark.parametrize("name,kw,extra", [
    ("SGD", {"lr": 0.1, "momentum": 0.9}, set()),
    ("Adam", {}, set()), ("Adam", {"amsgrad": True}, {"max_exp_avg_sq"}),
    ("AdamW", {}, set()),
    ("RMSprop", {"centered": True, "momentum": 0.5}, {"grad_avg", "momentum_buffer"}),
    ("Adagrad", {}, set()),
])
def test_state_names_and_step_count(name, kw, extra):
    params = make_params()
    opt = getattr(optim, name)(params, **kw)
    run_steps(opt, params, 3)
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sorted(sd["state"]) == [0, 1]
    assert set(sd["state"][0]) == STATE_KEYS[name] | extra
    if "step" in sd["state"][0]:
        assert sd["state"][0]["step"] == 3.0
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert all(isinstance(v, cg.Tensor) and v.shape == (3, 4)
               for k, v in sd["state"][0].items() if k != "step")


def test_sgd_without_momentum_keeps_no_state():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    run_steps(opt, params, 2)
    assert opt.state_dict()["state"] == {}


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[1].get("momentum") or
                                    c[0] != "SGD"][::2], ids=_id)
def test_state_dict_round_trip_resumes_identically(config):
    name, kw = config
    params = make_params()
    opt = getattr(optim, name)(params, **kw)
    run_steps(opt, params, 3)
    sd = opt.state_dict()
    params2 = [p.detach().clone().requires_grad_() for p in params]
    opt2 = getattr(optim, name)(params2, **kw)
    opt2.load_state_dict(sd)
    assert opt2.state_dict()["param_groups"] == sd["param_groups"]
    run_steps(opt, params, 2, start=3)
    run_steps(opt2, params2, 2, start=3)
    for a, b in zip(params, params2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    # the loaded state is a copy: stepping the source did not touch opt2's buffers
    k = next(k for k in opt.state[params[0]] if k != "step")
    assert opt2.state[params2[0]][k]._storage is not opt.state[params[0]][k]._storage


def test_load_state_dict_casts_to_param_dtype_and_keeps_groups_options():
    params = make_params()
    opt = optim.Adam(params, lr=0.01)
    run_steps(opt, params, 1)
    sd = opt.state_dict()
    p32 = make_params(cg.float32)
    opt2 = optim.Adam(p32, lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.01
    assert opt2.param_groups[0]["params"][0] is p32[0]
    assert opt2.state[p32[0]]["exp_avg"].dtype == cg.float32
    assert opt2.state[p32[0]]["step"] == 1.0
    sd["state"][0]["step"] = cg.tensor(7.0)  # PyTorch-style tensor step
    opt2.load_state_dict(sd)
    assert opt2.state[p32[0]]["step"] == 7.0 and isinstance(opt2.state[p32[0]]["step"], float)


def test_load_state_dict_rejects_mismatched_groups():
    params = make_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    run_steps(opt, params, 1)
    sd = opt.state_dict()
    other = optim.SGD([{"params": [params[0]]}, {"params": [params[1]]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        other.load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD([params[0]], lr=0.1).load_state_dict(sd)


def test_param_groups_with_different_lrs_and_defaults():
    a, b = make_params()
    opt = optim.SGD([{"params": [a]}, {"params": iter([b]), "lr": 0.01, "momentum": 0.5}],
                    lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.5
    assert opt.param_groups[1]["dampening"] == 0 and opt.param_groups[1]["params"] == [b]
    a0, b0 = initial()
    ra = ref_sgd(a0, [grads_for(s)[0] for s in range(3)], lr=0.1, momentum=0.9)
    rb = ref_sgd(b0, [grads_for(s)[1] for s in range(3)], lr=0.01, momentum=0.5)
    for s in range(3):
        run_steps(opt, [a, b], 1, start=s)
        np.testing.assert_allclose(a.detach().numpy(), next(ra), rtol=1e-12)
        np.testing.assert_allclose(b.detach().numpy(), next(rb), rtol=1e-12)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]


def test_add_param_group():
    a, b = make_params()
    opt = optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "betas": (0.5, 0.9)})
    assert opt.param_groups[1]["params"] == [b]
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.5, 0.9)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="ordered collections"):
        opt.add_param_group({"params": {cg.zeros(2, requires_grad=True)}})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([a])


def test_params_forms_and_errors():
    a, b = make_params()
    assert optim.SGD(iter([a, b])).param_groups[0]["params"] == [a, b]
    named = optim.SGD([("w", a), ("b", b)])
    assert named.param_groups[0]["param_names"] == ["w", "b"]
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        optim.Adam([])
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        optim.SGD(iter([]))
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got torch.Double"):
        optim.SGD(a)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([a, 3.0])
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([a * 2])


@pytest.mark.parametrize("make,message", [
    (lambda p: optim.SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD(p, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: optim.SGD(p, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: optim.SGD(p, nesterov=True),
     "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, lr=-1e-3), "Invalid learning rate: -0.001"),
    (lambda p: optim.Adam(p, eps=-1.0), "Invalid epsilon value: -1.0"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (lambda p: optim.RMSprop(p, alpha=-0.5), "Invalid alpha value: -0.5"),
    (lambda p: optim.RMSprop(p, momentum=-1), "Invalid momentum value: -1"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "Invalid lr_decay value: -1"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1),
     "Invalid initial_accumulator_value value: -1"),
])
def test_argument_errors(make, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        make(make_params())


def test_zero_grad():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    run_steps(opt, params, 1)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    run_steps(opt, params, 1)
    g0 = params[0].grad
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is g0
    assert not g0.requires_grad
    np.testing.assert_array_equal(g0.numpy(), np.zeros((3, 4)))


def test_accumulated_grads_do_not_alias():
    """.grad owns its memory: backward may produce expanded gradients or hand one tensor to
    two leaves, yet accumulation after zero_grad(set_to_none=False) stays exact."""
    a = cg.ones(3, 4, dtype=cg.float64, requires_grad=True)
    b = cg.ones(4, dtype=cg.float64, requires_grad=True)
    c = cg.ones(3, 4, dtype=cg.float64, requires_grad=True)
    w = np.arange(12.0).reshape(3, 4)
    opt = optim.SGD([a, b, c], lr=0.1)
    for _ in range(2):
        opt.zero_grad(set_to_none=False)
        (a + b + c).sum().backward()  # a and c receive the same (expanded) gradient
        (a * cg.from_numpy(w)).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), 1 + w)
        np.testing.assert_array_equal(b.grad.numpy(), [3.0] * 4)
        np.testing.assert_array_equal(c.grad.numpy(), np.ones((3, 4)))
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), 1 - 0.1 * (1 + w), atol=1e-15)
    np.testing.assert_allclose(c.detach().numpy(), np.full((3, 4), 0.9))


def test_params_without_grad_are_skipped():
    a, b = make_params()
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = cg.ones_like(a)
    before = b.detach().numpy()
    opt.step()
    np.testing.assert_array_equal(b.detach().numpy(), before)
    assert b not in opt.state and opt.state[a]["step"] == 1.0


def test_closure_runs_with_grad_and_returns_loss():
    w = cg.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with cg.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_allclose(w.detach().numpy(), [0.5, -1.0])


def test_training_loop_with_backward():
    rng = np.random.default_rng(3)
    x = cg.from_numpy(rng.standard_normal((16, 3)))
    y = cg.from_numpy(x.numpy() @ np.array([1.0, -2.0, 0.5]))
    w = cg.zeros(3, dtype=cg.float64, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [1.0, -2.0, 0.5], atol=2e-2)


def test_step_never_reads_the_device(monkeypatch):
    params = make_params()
    opts = [optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
            optim.Adam(params, amsgrad=True, weight_decay=0.1),
            optim.RMSprop(params, centered=True, momentum=0.5),
            optim.Adagrad(params, lr_decay=0.1)]
    for p, g in zip(params, grads_for(0)):
        p.grad = cg.from_numpy(g)

    def no_read(*args, **kwargs):
        raise AssertionError("step() read device data to the host")

    monkeypatch.setattr(cg.runtime, "read", no_read)
    for opt in opts:
        opt.step()
        opt.step()


@pytest.mark.parametrize("name,kw", [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    ("AdamW", {}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    ("Adagrad", {}),
])
def test_one_launch_per_step(name, kw):
    """Every parameter's update runs in one kernel, built once: later steps (new
    gradients, new step sizes) reuse it."""
    from clgraph import codegen

    params = make_params(cg.float32)
    opt = getattr(optim, name)(params, **kw)
    run_steps(opt, params, 1, dtype=cg.float32)
    for p in params:
        p.grad = cg.ones_like(p)
    builds = codegen.stats["builds"]
    with cg.profile() as prof:
        opt.step()
    assert prof.launches == 1, prof.kernels
    assert codegen.stats["builds"] == builds


def test_one_launch_mixes_dtypes_and_stages_views():
    """A float64 parameter and a float32 one share the step's kernel; a non-contiguous
    parameter is staged (its own launches) and still updated in place, like the others."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 6))
    b = rng.standard_normal(5).astype(np.float32)
    pa = cg.tensor(a, requires_grad=True)
    pb = cg.tensor(b, requires_grad=True)
    base = cg.tensor(rng.standard_normal((6, 4)))
    pc = base.t().detach().requires_grad_()  # a transposed view
    assert not pc.is_contiguous()
    c = pc.detach().numpy().copy()
    opt = optim.Adam([pa, pb, pc], lr=0.1)
    for _ in range(2):
        for p in (pa, pb, pc):
            p.grad = cg.ones_like(p)
        with cg.profile() as prof:
            opt.step()
    assert sum(k.startswith("cgf_") for k in prof.kernels) == 1, prof.kernels
    for p, x0 in ((pa, a), (pb, b), (pc, c)):
        *_, ref = ref_adam(x0.astype(np.float64), [np.ones_like(x0, dtype=np.float64)] * 2,
                           lr=0.1)
        np.testing.assert_allclose(p.detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    assert pa.dtype is cg.float64 and pb.dtype is cg.float32


# --- schedulers ------------------------------------------------------------------------------


def _sgd_two_groups():
    a, b = make_params()
    return optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=1.0)


SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.1}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 6, "eta_min": 0.01}),
    ("LambdaLR", {"lr_lambda": lambda e: 1 / (1 + e)}),
]


def _closed(name, base, e):
    if name == "StepLR":
        return base * 0.5 ** (e // 3)
    if name == "MultiStepLR":
        return base * 0.1 ** sum(1 for m in [2, 5, 5, 9] if m <= e)
    if name == "ExponentialLR":
        return base * 0.9**e
    if name == "CosineAnnealingLR":
        return 0.01 + (base - 0.01) * (1 + math.cos(math.pi * e / 6)) / 2
    return base / (1 + e)


@pytest.mark.parametrize("name,kw", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_scheduler_sequences(name, kw):
    opt = _sgd_two_groups()
    sched = getattr(lr_scheduler, name)(opt, **kw)
    assert sched.last_epoch == 0 and sched.get_last_lr() == [1.0, 0.5]
    for e in range(1, 16):
        opt.step()
        sched.step()
        for base, got, group in zip([1.0, 0.5], sched.get_last_lr(), opt.param_groups):
            assert got == group["lr"]
            assert math.isclose(got, _closed(name, base, e), rel_tol=1e-12, abs_tol=1e-15)
    assert sched.last_epoch == 15 and opt.param_groups[0]["initial_lr"] == 1.0


@pytest.mark.parametrize("name,kw", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_scheduler_state_dict_resumes(name, kw):
    opt = _sgd_two_groups()
    sched = getattr(lr_scheduler, name)(opt, **kw)
    for _ in range(4):
        sched.step()
    sd = sched.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 4
    opt2 = _sgd_two_groups()
    sched2 = getattr(lr_scheduler, name)(opt2, **kw)
    sched2.load_state_dict(sd)
    opt2.load_state_dict(opt.state_dict())
    for _ in range(5):
        sched.step()
        sched2.step()
        assert sched.get_last_lr() == sched2.get_last_lr()


def test_scheduler_resume_needs_initial_lr_and_optimizer():
    opt = _sgd_two_groups()
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0])


def test_scheduler_drives_optimizer_lr():
    (w,) = make_params()[:1]
    opt = optim.SGD([w], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    w0 = w.detach().numpy()
    for _ in range(3):
        w.grad = cg.ones_like(w)
        opt.step()
        sched.step()
    np.testing.assert_allclose(w.detach().numpy(), w0 - (1 + 0.5 + 0.25), rtol=1e-12)


# --- PyTorch parity ----------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS[::2] + [CONFIGS[13], CONFIGS[21]], ids=_id)
def test_pytorch_parity(config):
    torch = torch_or_skip()
    name, kw = config
    params = make_params(cg.float32)
    tparams = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in initial()]
    opt = getattr(optim, name)(params, **kw)
    topt = getattr(torch.optim, name)(tparams, **kw)
    for s in range(6):
        for p, tp, g in zip(params, tparams, grads_for(s)):
            p.grad = cg.from_numpy(g.astype(np.float32))
            tp.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=2e-5,
                                   atol=2e-6, err_msg=f"{name} {kw}")
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == tsd["param_groups"]
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for k, tv in tsd["state"].get(0, {}).items():
        v = sd["state"][0][k]
        if k == "step":
            assert v == tv.item()
        else:
            np.testing.assert_allclose(v.numpy(), tv.numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name,kw", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_scheduler_pytorch_parity(name, kw):
    torch = torch_or_skip()
    opt = _sgd_two_groups()
    ta, tb = (torch.zeros(2, requires_grad=True) for _ in range(2))
    topt = torch.optim.SGD([{"params": [ta]}, {"params": [tb], "lr": 0.5}], lr=1.0)
    sched = getattr(lr_scheduler, name)(opt, **kw)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for _ in range(20):
        topt.step()
        tsched.step()
        sched.step()
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)


# --- updates written as ops --------------------------------------------------------------

_H = {"b1c": 0.1, "b2": 0.999, "b2c": 0.001, "epsb": 1e-3, "step": -0.01, "decay": 0.99,
      "wd": 0.05, "neglr": -0.1, "mu": 0.9, "mub": 0.8, "damp1": 0.7, "alpha": 0.9,
      "alpha1": 0.1, "eps": 1e-2, "mom": 0.5, "negclr": -0.2}
UPDATES = [
    (adam_update, "p g m v", {"maximize": False, "wd": False, "decoupled": False}),
    (adam_update, "p g m v vm", {"maximize": True, "wd": True, "decoupled": False}),
    (adam_update, "p g m v", {"maximize": False, "wd": True, "decoupled": True}),
    (sgd_update, "p g", {"maximize": True, "wd": True, "nesterov": False}),
    (sgd_update, "p g b", {"maximize": False, "wd": False, "nesterov": True}),
    (sgd_update, "p g b", {"maximize": False, "wd": True, "nesterov": False}),
    (rmsprop_update, "p g sq", {"maximize": False, "wd": True}),
    (rmsprop_update, "p g sq ga buf", {"maximize": True, "wd": False}),
    (adagrad_update, "p g s", {"maximize": False, "wd": True}),
]


@pytest.mark.parametrize("fn,names,options", UPDATES,
                         ids=[f"{f.__name__}-{n.replace(' ', '')}-{i}"
                              for i, (f, n, _) in enumerate(UPDATES)])
def test_update_ops_fuse_to_what_they_compute(fn, names, options):
    """An optimizer's update is ordinary ops: run eagerly (one launch per op) they give what
    the one fused kernel built from them gives, and the fused kernel is one launch."""
    rng = np.random.default_rng(7)
    vals = {k: rng.random((6, 5)) + 0.5 for k in names.split()}
    eager = {k: cg.tensor(v, dtype=cg.float32) for k, v in vals.items()}
    fused_t = {k: cg.tensor(v, dtype=cg.float32) for k, v in vals.items()}
    with cg.profile() as ops_prof:
        fn(eager, dict(_H), **options)
    with cg.profile() as fused_prof:
        fused.update("test", fn, fused_t, dict(_H), options)
    assert ops_prof.launches > 2 and fused_prof.launches == 1, fused_prof.kernels
    for k in names.split():
        np.testing.assert_allclose(fused_t[k].numpy(), eager[k].numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=k)
    assert any(not np.allclose(fused_t[k].numpy(), vals[k]) for k in names.split())


def test_update_scalars_are_arguments():
    """A Hyper's value is an argument of the kernel, not a constant of its source: a new
    value reuses the kernel and takes effect."""
    from clgraph import codegen

    def step(t, h):
        t["p"].add_(t["g"] * h["lr"])

    p, g = cg.ones(8), cg.full((8,), 2.0)
    fused.update("t", step, {"p": p, "g": g}, {"lr": 0.5})
    before = dict(codegen.stats)
    fused.update("t", step, {"p": p, "g": g}, {"lr": -0.25})
    assert codegen.stats["builds"] == before["builds"]
    np.testing.assert_allclose(p.numpy(), np.full(8, 1 + 1.0 - 0.5))


def test_update_refuses_what_one_kernel_cannot_do():
    def reduces(t, h):
        t["p"].add_(t["g"].sum())

    with pytest.raises(fused.Unfusable, match="sum"):
        fused.update("t", reduces, {"p": cg.ones(4), "g": cg.ones(4)}, {})
