"""cg.compile: compiled equals eager (values, gradients, parameters after training steps),
kernel counts per call, recompilation rules, host-read fallback, grad of grad inside a
compiled function, introspection and the on-disk kernel cache across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import clgraph as cg
from clgraph import codegen, nn, runtime
from clgraph.nn import functional as F

RNG = np.random.default_rng(0)


def T(*shape, dtype=np.float32, positive=False):
    a = RNG.standard_normal(shape).astype(dtype)
    return cg.tensor(np.abs(a) + 0.1 if positive else a)


def close(a, b, tol=1e-5):
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            close(x, y, tol)
        return
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            close(a[k], b[k], tol)
        return
    if not isinstance(a, cg.Tensor):
        assert a == b
        return
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


# --- compiled equals eager over a table of functions ------------------------------------------

FUNCS = {
    "chain": (lambda x, y: ((x * 2 + y).exp() - 1).abs().sqrt() / 3 + x.sin(),
              lambda: (T(40, 33), T(33))),
    "broadcast_views": (lambda x, y: (x.t() + y[:, None]).relu().reshape(-1) * 0.5,
                        lambda: (T(7, 9), T(9))),
    "slices": (lambda x: x[1:, ::2] * x[:-1, 1::2] + x.T[::2, :-1].T,
               lambda: (T(9, 8),)),
    "reductions": (lambda x: (x.sum(0), x.mean(1, keepdim=True), x.max(-1).values,
                              x.var(0), x.logsumexp(1)),
                   lambda: (T(31, 17),)),
    "softmax": (lambda x: x.softmax(-1) * F.log_softmax(x, 1), lambda: (T(12, 50),)),
    "manual_softmax": (lambda x: (x - x.max(-1, keepdim=True).values).exp()
                       / (x - x.max(-1, keepdim=True).values).exp().sum(-1, keepdim=True),
                       lambda: (T(6, 30),)),
    "layernorm": (lambda x, w, b: F.layer_norm(x, (24,), w, b), lambda: (T(5, 24), T(24), T(24))),
    "matmul": (lambda a, b, c: (a @ b + c).tanh() @ b.T, lambda: (T(16, 20), T(20, 12), T(12))),
    "ints_and_masks": (lambda x, i: (cg.where(x > 0, x, -x) * i + (i // 2) % 3,
                                     (x > 0).sum(), i.max()),
                       lambda: (T(10, 4), cg.tensor(RNG.integers(-5, 9, (10, 4))))),
    "structures": (lambda d, scale: {"a": d["x"] * scale, "b": [d["y"] + 1, d["x"].sum()]},
                   lambda: ({"x": T(4, 5), "y": T(3)}, 2.5)),
    "float64": (lambda x: (x.double() * 1.5).exp().sum(0), lambda: (T(8, 3),)),
    "gather_index": (lambda x, i: x.gather(1, i) + x.index_select(0, i[:, 0]).sum(1, True),
                     lambda: (T(6, 5), cg.tensor(RNG.integers(0, 5, (6, 2))))),
    "constants_inside": (lambda x: x + cg.arange(5.0) * cg.ones(5) + cg.tensor([1.0, 2, 3, 4, 5]),
                         lambda: (T(3, 5),)),
    "conv_pool": (lambda x, w: F.max_pool2d(F.conv2d(x, w, padding=1).relu(), 2),
                  lambda: (T(2, 3, 8, 8), T(4, 3, 3, 3))),
}


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_compiled_equals_eager(name):
    fn, make = FUNCS[name]
    c = cg.compile(fn)
    for _ in range(2):  # two argument sets: the trace, then replays on new values
        args = make()
        expected = fn(*args)
        close(c(*args), expected)  # first call with the signature traces
        close(c(*args), expected)  # then replays
    assert c._entries and all(e.plan is not None for e in c._entries.values())


def test_results_do_not_alias_across_calls():
    c = cg.compile(lambda x: x * 2 + 1)
    x = T(100)
    r1 = c(x)
    r2 = c(x + 1)
    assert not np.allclose(r1.numpy(), r2.numpy())
    np.testing.assert_allclose(r1.numpy(), x.numpy() * 2 + 1, rtol=1e-6)


def test_in_place_writes_to_arguments_and_state():
    w = T(6)
    ref = w.clone()

    def f(x):
        x.mul_(2)
        w.add_(x)
        return x.sum()

    c = cg.compile(f)
    for k in range(3):
        x = T(6)
        x0 = x.numpy().copy()
        s = c(x)
        np.testing.assert_allclose(x.numpy(), 2 * x0, rtol=1e-6)
        ref = ref + 2 * cg.tensor(x0)
        np.testing.assert_allclose(w.numpy(), ref.numpy(), rtol=1e-5)
        np.testing.assert_allclose(s.item(), 2 * x0.sum(), rtol=1e-5)


# --- kernel counts ----------------------------------------------------------------------------


def eager_and_compiled(step, *args, warm=1):
    """Profiles of one eager call of ``step`` and one replay of it compiled (after ``warm``
    calls)."""
    c = cg.compile(step)
    for _ in range(warm):
        c(*args)
    with cg.profile() as eager:
        step(*args)
    with cg.profile() as compiled:
        c(*args)
    return eager, compiled


def w1(x):
    return ((x * 1.5 + 0.5).sin() * (x * 0.5).exp() - x).abs().sqrt() + 1


def test_elementwise_chain_is_one_launch():
    x = T(1 << 16)
    c = cg.compile(w1)
    c(x)
    with cg.profile() as eager:
        expected = w1(x)
    with cg.profile() as p:
        got = c(x)
    assert eager.launches >= 8
    assert p.launches == 1, p.kernels
    close(got, expected)


def test_softmax_kernel_counts():
    x = T(64, 128)
    manual = FUNCS["manual_softmax"][0]
    for fn, most in ((lambda x: x.softmax(-1), 1), (lambda x: F.log_softmax(x, -1), 1),
                     (manual, 3)):
        c = cg.compile(fn)
        c(x)
        with cg.profile() as p:
            got = c(x)
        close(got, fn(x))
        assert p.launches <= most, p.kernels


REDUCTION_FUSION = {  # name: (function, launches per call)
    "sum_of_squares": (lambda a, b: (a * a).sum(dim=1), 1),
    "mse_columns": (lambda a, b: ((a - b) ** 2).mean(dim=0), 1),
    "var_of_affine": (lambda a, b: (a * 2 + b).var(dim=1), 1),
    "argmax_of_sum": (lambda a, b: (a + b).argmax(dim=1), 1),
    "logsumexp_scaled": (lambda a, b: (a * 0.5).logsumexp(dim=1), 1),
    "row_norm": (lambda a, b: (a * a).sum(dim=1).sqrt(), 1),
    "inv_std": (lambda a, b: (a.var(dim=1, keepdim=True) + 1e-5).rsqrt(), 1),
    "relu_of_column_sums": (lambda a, b: a.sum(0).relu() * b[0], 1),
    "lse_minus_column": (lambda a, b: a.logsumexp(dim=1) * 2 - b[:, 0], 1),
    "centered_squares": (lambda a, b: ((a - a.mean(1, keepdim=True)) ** 2).sum(1), 2),
    "max_of_transposed_product": (lambda a, b: (a.T * b.T).amax(0), 1),
    "sum_of_broadcast_row": (lambda a, b: (a * b[:1]).sum(1) + b[:, 5], 1),
    "layer_norm": (lambda a, b: F.layer_norm(a, (a.shape[1],), b[0], b[1]), 3),
    "manual_layer_norm": (lambda a, b: (a - a.mean(1, keepdim=True)) / (
        (a - a.mean(1, keepdim=True)) ** 2).mean(1, keepdim=True).add(1e-5).sqrt() * b[0], 3),
    "product_of_row_sums": (lambda a, b: (a * b).sum(1) * (a - b).sum(1), 2),
}


@pytest.mark.parametrize("name", sorted(REDUCTION_FUSION))
def test_reduction_prologue_epilogue_fusion(name):
    """Elementwise work feeding a reduction runs in its loads, elementwise work on its
    result in its store (reading other tensors contiguous, broadcast or strided): the
    intermediates never reach memory."""
    fn, most = REDUCTION_FUSION[name]
    c = cg.compile(fn)
    c(T(37, 129), T(37, 129))
    args = (T(37, 129), T(37, 129))
    with cg.profile() as p:
        got = c(*args)
    close(got, fn(*args))
    if args[0].device.info.is_cpu:
        assert p.launches <= most, p.kernels


def test_split_reduction_fusion():
    """A reduction split in chunks (stage 1 and a combine kernel) takes its prologue into
    stage 1 and its epilogue into the combine kernel."""
    fn = lambda a, b: ((a - b) ** 2).mean() * 3 + 1
    c = cg.compile(fn)
    a, b = T(1 << 18), T(1 << 18)
    c(a, b)
    with cg.profile() as p:
        got = c(a, b)
    close(got, fn(a, b), tol=1e-4)
    if a.device.info.is_cpu:
        assert p.launches == 2 and p.kernels[1].endswith("_combine"), p.kernels


EPILOGUES = {
    "bias_relu": lambda a, b, v, r, rt: (a @ b + v).relu(),
    "scale_residual": lambda a, b, v, r, rt: (a @ b) * 0.5 + r,
    "transposed_residual": lambda a, b, v, r, rt: (a @ b) + rt.T,
    "row_bias_tanh": lambda a, b, v, r, rt: ((a @ b) - r[:, :1]).tanh(),
}


@pytest.mark.parametrize("name", sorted(EPILOGUES))
def test_matmul_epilogue_fusion(name):
    """Elementwise work on a matmul's product is fused into the matmul's store (register-
    blocked CPU kernel), across partial tiles and every operand layout."""
    fn = EPILOGUES[name]
    args = (T(37, 29), T(29, 23), T(23), T(37, 23), T(23, 37))
    c = cg.compile(fn)
    c(*args)
    args = (T(37, 29), T(29, 23), T(23), T(37, 23), T(23, 37))
    with cg.profile() as p:
        got = c(*args)
    close(got, fn(*args))
    if args[0].device.info.is_cpu:
        assert p.kernels == ["matmul_rb_epilogue"], p.kernels


# --- random programs -----------------------------------------------------------------------

_UNARY = [lambda t: (-t.abs()).exp(), lambda t: t.tanh(), lambda t: t.relu(),
          lambda t: t.sigmoid(), lambda t: (t.abs() + 1).sqrt(), lambda t: t * 0.5 + 1]
_BINARY = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, cg.maximum]
_REDUCE = [lambda t, d, k: t.sum(d, keepdim=k), lambda t, d, k: t.mean(d, keepdim=k),
           lambda t, d, k: t.amax(d, keepdim=k), lambda t, d, k: t.var(d, keepdim=k),
           lambda t, d, k: t.logsumexp(d, keepdim=k), lambda t, d, k: t.softmax(d)]
_VIEW = [lambda t: t[1:, ::2], lambda t: t.reshape(-1)[: t.shape[1]],
         lambda t: t[:, :1].expand(t.shape[0], 5), lambda t: t.flip(0), lambda t: t.T]


def _random_program(seed):
    """A random chain of elementwise ops with broadcasting, reductions, matmuls, views and
    in-place writes over four inputs, returning its last results and the gradients of
    their weighted sum with respect to every input."""
    rng = np.random.default_rng(seed)
    plan = [(rng.choice(["un", "bin", "red", "mm", "view", "inplace"],
                        p=[.25, .25, .22, .1, .1, .08]), *rng.integers(0, 1000, 3))
            for _ in range(rng.integers(3, 9))]

    def fn(a, b, c, d):
        pool = [a, b, c, d]
        for kind, i, j, k in plan:
            x = pool[i % len(pool)]
            if kind == "un":
                pool.append(_UNARY[j % len(_UNARY)](x))
            elif kind == "bin":
                y = pool[k % len(pool)]
                try:
                    cg.broadcast_shapes(x.shape, y.shape)
                except RuntimeError:
                    y = y.sum()
                pool.append(_BINARY[j % len(_BINARY)](x, y))
            elif x.ndim != 2:
                continue
            elif kind == "red":
                pool.append(_REDUCE[j % len(_REDUCE)](x, int(k % 2), bool(k // 2 % 2)))
            elif kind == "mm":
                if x.shape[1] == a.shape[1]:
                    pool.append(x @ a.T)
                elif x.shape[0] == a.shape[0]:
                    pool.append(x.T @ a)
                elif x.shape[1] == a.shape[0]:
                    pool.append(x @ a)
            elif kind == "view":
                pool.append(_VIEW[j % len(_VIEW)](x))
            else:
                y = x.clone()
                if j % 2:
                    y[:, 0] = 0.25
                else:
                    y.mul_(1.5)
                pool.append(y)
        outs = tuple(pool[4:][-3:]) or (a * 1,)
        total = sum((o * (n + 1)).sum() for n, o in enumerate(outs))
        return outs + cg.autograd.grad(total, [a, b, c, d], materialize_grads=True,
                                       allow_unused=True)

    return fn


@pytest.mark.parametrize("seed", range(24))
def test_random_programs(seed):
    """Compiled equals eager, values and gradients, over random programs: every fusion pass
    sees shapes, broadcasts, views and writes it was not written for."""
    fn = _random_program(seed)
    shapes = [(37, 23), (37, 23), (23,), (37, 1)]

    def inputs():
        return [cg.tensor(RNG.standard_normal(s).astype(np.float32), requires_grad=True)
                for s in shapes]

    c = cg.compile(fn)
    c(*inputs())
    args = inputs()
    close(c(*args), fn(*args), tol=1e-4)


# --- recompilation ------------------------------------------------------------------------------


def test_recompiles_on_new_shape_only():
    def f(x):
        return (x * 3 - 1).relu().sum(0)

    c = cg.compile(f)
    c(T(20, 7))
    builds = codegen.stats["builds"] + codegen.stats["disk_hits"]
    for _ in range(3):
        a = T(20, 7)
        close(c(a), f(a))
    assert codegen.stats["builds"] + codegen.stats["disk_hits"] == builds
    assert len(c._entries) == 1
    c(T(21, 7))
    assert len(c._entries) == 2
    b = T(20, 7, dtype=np.float64)
    c(b)
    assert len(c._entries) == 3


def test_host_read_falls_back_to_eager_with_one_warning():
    def f(x):
        if x.sum().item() > 0:
            return x * 2
        return x - 1

    c = cg.compile(f)
    x = T(10, positive=True)
    with pytest.warns(RuntimeWarning, match="read on the host"):
        close(c(x), f(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = -T(10, positive=True)
        close(c(y), f(y))  # control flow follows the data: it runs eagerly


def test_advanced_index_compiles():
    """x[:, idx] with an index tensor compiles (offsets on the device); a call whose
    indices turn negative runs eagerly, one out of range raises PyTorch's IndexError."""
    c = cg.compile(lambda a, i: a[:, i] * 2)
    a = T(5, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for idx in ([1, 5, 3], [0, 6, 2], [6, 6, 6], [-1, 2, -7]):
            close(c(a, cg.tensor(idx)), cg.tensor(a.numpy()[:, idx] * 2))
    assert any(e.plan is not None for e in c._entries.values())
    with pytest.raises(IndexError, match="index 7 is out of bounds for dimension 1 with size 7"):
        c(a, cg.tensor([1, 7, 0]))


def test_index_checks_repeat_on_replay():
    c = cg.compile(lambda x, i: x.gather(1, i))
    x = T(4, 3)
    c(x, cg.tensor([[0], [1], [2], [0]]))
    with pytest.raises((IndexError, RuntimeError), match="out of"):
        c(x, cg.tensor([[0], [1], [3], [0]]))


def test_captured_labels_are_read_back_once(monkeypatch):
    """A loss over labels captured from outside the call checks them before the replay, and
    remembers the check per version of their storage: unchanged labels are not read back at
    every call (a host read waits for the whole queue), labels changed in place are."""
    x, y = T(6, 4), cg.tensor([0, 3, 1, 2, 3, 0])
    c = cg.compile(lambda a: F.cross_entropy(a, y))
    for _ in range(2):
        c(x)
    reads = []
    real = runtime.read
    monkeypatch.setattr(runtime, "read", lambda *a, **k: reads.append(1) or real(*a, **k))
    outs = [c(x) for _ in range(3)]
    assert reads == []
    for out in outs:
        close(out, F.cross_entropy(x, y))
    y.copy_(cg.tensor([1, 1, 2, 2, 0, 0]))
    del reads[:]
    out = c(x)
    assert len(reads) == 1
    close(out, F.cross_entropy(x, y))
    y[2] = 4
    with pytest.raises(IndexError, match="out of bounds"):
        c(x)


def test_replays_count_in_place_writes():
    """A replay counts its in-place writes on tensors made before the call, as eager ops
    do: a gradient through a value the compiled call changed since raises PyTorch's error."""
    w = cg.ones(3, requires_grad=True)
    step = cg.compile(lambda: w.data.mul_(0.5))
    for _ in range(2):
        step()
    v0 = w._version
    step()
    assert w._version == v0 + 1
    loss = (w * w).sum()
    step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    # an argument written in place: the Storage of each call's own argument is counted
    scale = cg.compile(lambda t: t.mul_(2.0))
    for _ in range(2):
        scale(cg.ones(2))
    a = cg.ones(2, requires_grad=True)
    b = a * 1.0
    v0 = b._version
    scale(b.detach())
    assert b._version == v0 + 1


def test_cache_size_limit():
    """A function called with ever new shapes keeps plans for a bounded number of them;
    the rest run eagerly, with one warning naming the limit."""
    c = cg.compile(lambda x: x * 2 + 1, cache_size_limit=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 7):
            close(c(cg.ones(n)), cg.full((n,), 3.0))
    expected = ("clgraph.compile: <lambda> runs eagerly for this input signature: it was "
                "compiled for 3 signatures already; new ones run eagerly (cg.compile(fn, "
                "cache_size_limit=N) keeps more)")
    assert [str(w.message) for w in caught if "already" in str(w.message)] == [expected]
    assert sum(e.plan is not None for e in c._entries.values()) == 3
    close(c(cg.ones(2)), cg.full((2,), 3.0))  # a compiled signature still replays


def test_errors_are_eager_errors():
    """Bad input raises what eager raises, on the tracing call and on later calls; a value
    that cannot be compiled is refused at once."""
    c = cg.compile(lambda a, b: a @ b)
    for _ in range(2):
        with pytest.raises(RuntimeError, match=r"cannot be multiplied \(2x3 and 4x5\)"):
            c(T(2, 3), T(4, 5))
    a, b = T(2, 3), T(3, 4)
    close(c(a, b), a @ b)
    with pytest.raises(TypeError, match="expects a function or an nn.Module, but got int"):
        cg.compile(3)


# --- training steps ---------------------------------------------------------------------------


def mlp():
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 5))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.25), nn.Linear(4 * 4 * 4, 5))


OPTS = {
    "sgd_momentum": lambda p: cg.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
    "sgd_dampening": lambda p: cg.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.3),
    "sgd_nesterov": lambda p: cg.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: cg.optim.Adam(p, lr=3e-3),
    "adamw_amsgrad": lambda p: cg.optim.AdamW(p, lr=3e-3, amsgrad=True),
    "rmsprop": lambda p: cg.optim.RMSprop(p, lr=1e-3, momentum=0.5),
}


def _train_pair(make_model, make_opt, shape, steps=20, scheduler=False):
    models = []
    for _ in range(2):
        cg.manual_seed(1)
        models.append(make_model())
    opts = [make_opt(m.parameters()) for m in models]
    scheds = [cg.optim.lr_scheduler.StepLR(o, 5, 0.5) for o in opts] if scheduler else None
    loss_fn = nn.CrossEntropyLoss()

    def make_step(m, o):
        def step(x, y):
            o.zero_grad()
            loss = loss_fn(m(x), y)
            loss.backward()
            o.step()
            return loss

        return step

    eager = make_step(models[0], opts[0])
    compiled = cg.compile(make_step(models[1], opts[1]))
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(steps):
            x = cg.tensor(rng.standard_normal(shape).astype(np.float32))
            y = cg.tensor(rng.integers(0, 5, shape[0]))
            cg.manual_seed(100 + i)
            le = eager(x, y)
            cg.manual_seed(100 + i)
            lc = compiled(x, y)
            np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-4, atol=1e-5)
            for pe, pc in zip(models[0].parameters(), models[1].parameters()):
                np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(),
                                           rtol=1e-4, atol=1e-5)
                np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-4,
                                           atol=1e-5)
            if scheds:
                for s in scheds:
                    s.step()
    assert opts[0].state_dict()["state"].keys() == opts[1].state_dict()["state"].keys()
    return compiled, opts


@pytest.mark.parametrize("opt", sorted(OPTS))
def test_mlp_training_matches_eager(opt):
    compiled, _ = _train_pair(mlp, OPTS[opt], (16, 20))
    plans = [e.plan for e in compiled._entries.values() if e.plan is not None]
    assert plans, "the training step never compiled"


@pytest.mark.parametrize("opt", sorted(OPTS))
def test_training_step_replays_from_its_second_call(opt):
    """Optimizer state is made outside the trace, so the plan of the call that made it
    replays on the next one (users time the second step)."""
    m = mlp()
    o = OPTS[opt](m.parameters())

    def step(x, y):
        o.zero_grad()
        F.cross_entropy(m(x), y).backward()
        o.step()

    x, y = T(16, 20), cg.tensor(RNG.integers(0, 5, 16))
    c = cg.compile(step)
    c(x, y)
    assert [e.plan is not None for e in c._entries.values()] == [True]
    with cg.profile() as eager:
        step(x, y)
    with cg.profile() as p:
        c(x, y)
    assert p.launches < eager.launches, (p.kernels, eager.kernels)
    assert not any(k.startswith("cg_fill") for k in p.kernels), p.kernels  # no state made


@pytest.mark.parametrize("opt", ["sgd_momentum", "adam"])
def test_cnn_training_with_dropout_matches_eager(opt):
    _train_pair(cnn, OPTS[opt], (8, 1, 8, 8))


def test_learning_rate_schedule_is_followed():
    _, opts = _train_pair(mlp, OPTS["adam"], (16, 20), steps=12, scheduler=True)
    assert opts[1].param_groups[0]["lr"] == pytest.approx(3e-3 * 0.25)


def test_optimizer_updates_are_horizontally_fused():
    m = mlp()
    o = cg.optim.Adam(m.parameters())
    x, y = T(16, 20), cg.tensor(RNG.integers(0, 5, 16))

    def step(x, y):
        o.zero_grad()
        F.cross_entropy(m(x), y).backward()
        o.step()

    eager, p = eager_and_compiled(step, x, y, warm=3)
    # eager: the six parameters' updates in one kernel kept for this optimizer
    assert [k for k in eager.kernels if "addcdiv" in k] == [
        k for k in eager.kernels if k.startswith("cgf_")], eager.kernels
    assert sum("addcdiv" in k for k in eager.kernels) == 1, eager.kernels
    # compiled: the trace sees six updates and fuses them horizontally with backward's last
    # kernels, in one launch or two where the parameter space of one kernel runs out
    fused = [k for k in p.kernels if "addcdiv" in k]
    assert 1 <= len(fused) <= 2 and all(k.startswith("cgf_") for k in fused), p.kernels
    assert p.launches < eager.launches, (p.kernels, eager.kernels)


def test_gradient_penalty_inside_compiled_function():
    """create_graph=True inside the traced function: grad of grad compiles."""
    def make():
        cg.manual_seed(4)
        return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))

    ma, mb = make(), make()

    def step(m):
        def f(x):
            x = x.detach().requires_grad_()
            out = m(x).sum()
            (g,) = cg.autograd.grad(out, x, create_graph=True)
            penalty = (g.pow(2).sum(1) - 1).pow(2).mean()
            for p in m.parameters():
                p.grad = None
            penalty.backward()
            return penalty.detach()

        return f

    fa, fb = step(ma), cg.compile(step(mb))
    for _ in range(3):
        x = T(5, 6)
        close(fb(x), fa(x), 1e-4)
        for pa, pb in zip(ma.parameters(), mb.parameters()):
            close(pb.grad, pa.grad, 1e-4)
    assert any(e.plan is not None for e in fb._entries.values())


def test_compiled_module_forward():
    m = mlp()
    cm = cg.compile(m)
    x = T(8, 20)
    with cg.no_grad():
        close(cm(x), m(x))
        close(cm(x), m(x))
    assert cm.training is m.training and cm._orig_mod is m and cm.parameters
    m.eval()
    with cg.no_grad():
        close(cm(x), m(x))


def test_compiled_module_in_an_eager_training_loop():
    """model = cg.compile(model), then loss.backward() and optimizer.step() outside: the
    forward replays and its backward is a compiled graph too."""
    ma = mlp()
    mb = mlp()
    mb.load_state_dict(ma.state_dict())
    cm = cg.compile(mb)
    oa, ob = cg.optim.Adam(ma.parameters(), 1e-2), cg.optim.Adam(mb.parameters(), 1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(6):
            x, y = T(16, 20), cg.tensor(RNG.integers(0, 5, 16))
            for model, fwd, opt in ((ma, ma, oa), (mb, cm, ob)):
                opt.zero_grad()
                loss = F.cross_entropy(fwd(x), y)
                loss.backward()
                opt.step()
            for pa, pb in zip(ma.parameters(), mb.parameters()):
                close(pb, pa, 1e-5)
                close(pb.grad, pa.grad, 1e-5)
    out = cm(x)
    assert out.grad_fn is not None and "CompiledFunction" in out.grad_fn.name()
    with cg.profile() as p:
        cm(x)
    with cg.profile() as pe:
        mb(x)
    assert p.launches < pe.launches


def test_gradient_penalty_through_a_compiled_model():
    """Differentiating twice through a compiled module's result (a gradient penalty taken
    outside the compiled code) equals eager; with dropout it refuses, naming the cause."""
    m = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 1))
    cm = cg.compile(m)
    x = T(7, 6)

    def penalty(model):
        xi = x.clone().requires_grad_()
        out = model(xi)
        (g,) = cg.autograd.grad(out.sum(), xi, create_graph=True)
        (g ** 2).sum().backward()
        grads = [None if p.grad is None else p.grad.clone() for p in m.parameters()]
        m.zero_grad()
        return out, grads

    _, want = penalty(m)
    for _ in range(3):
        out, got = penalty(cm)
        close(got, want, 1e-5)
    assert "CompiledFunction" in out.grad_fn.name()

    md = nn.Sequential(nn.Linear(6, 12), nn.Dropout(0.5), nn.Linear(12, 1))
    cd = cg.compile(md)
    xi = x.clone().requires_grad_()
    cg.autograd.grad(cd(xi).sum(), xi, create_graph=True)  # the tracing call: eager graph
    with pytest.raises(RuntimeError, match="dropout"):
        cg.autograd.grad(cd(xi).sum(), xi, create_graph=True)


def test_compiled_function_gradients_wrt_arguments():
    def f(x, w):
        return ((x @ w).tanh() * x.sum(1, keepdim=True)).sum(0)

    c = cg.compile(f)
    for _ in range(3):
        xa, wa = T(5, 4).requires_grad_(), T(4, 3).requires_grad_()
        xb, wb = xa.detach().clone().requires_grad_(), wa.detach().clone().requires_grad_()
        ra, rb = f(xa, wa), c(xb, wb)
        close(rb, ra)
        g = T(3)
        ra.backward(g)
        rb.backward(g)
        close(xb.grad, xa.grad)
        close(wb.grad, wa.grad)


# --- introspection ------------------------------------------------------------------------


def test_graph_kernels_and_dot():
    c = cg.compile(lambda x, b: (x @ x.T + b).relu().sum(1))
    x, b = T(8, 4), T(8)
    c(x, b)
    g = c.graph(x, b)
    import networkx as nx

    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    ops = [d["op"] for _, d in g.nodes(data=True)]
    assert "matmul" in ops and "relu" in ops
    for _, d in g.nodes(data=True):
        assert {"op", "shape", "dtype", "kernel"} <= d.keys()
    relu = next(d for _, d in g.nodes(data=True) if d["op"] == "relu")
    assert relu["shape"] == (8, 8) and relu["dtype"] == "float32" and relu["kernel"]
    srcs = c.kernels(x, b)
    assert srcs and all("__kernel" in s for s in srcs)
    dot = cg.to_dot(g)
    assert dot.startswith("digraph") and "relu" in dot and "->" in dot


def test_second_process_builds_nothing(tmp_path):
    script = textwrap.dedent("""
        import clgraph as cg
        from clgraph import codegen
        m = cg.nn.Sequential(cg.nn.Linear(8, 16), cg.nn.ReLU(), cg.nn.Linear(16, 3))
        o = cg.optim.Adam(m.parameters())
        def step(x, y):
            o.zero_grad()
            cg.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
        c = cg.compile(step)
        x, y = cg.ones(4, 8), cg.tensor([0, 1, 2, 0])
        for _ in range(3):
            c(x, y)
        print(codegen.stats["warm_up"] + codegen.stats["memory_hits"] > 0, codegen.stats["builds"])
    """)
    env = dict(os.environ, CLGRAPH_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, timeout=300, check=False) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert int(runs[0].stdout.split()[-1]) > 0
    assert int(runs[1].stdout.split()[-1]) == 0
    # the second run loaded what the first built first on a background thread
    assert list(tmp_path.glob("startup-*.json"))
    assert runs[1].stdout.split()[-2] == "True"


def test_training_step_launches():
    """A compiled MLP Adam step: bias and ReLU in the matmuls' stores, the ReLU mask in the
    backward matmuls', one launch for every parameter's update; about 70% of eager's."""
    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                      nn.Linear(32, 10))
    opt = cg.optim.Adam(m.parameters(), lr=1e-3)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    x, y = T(64, 16), cg.tensor(np.arange(64) % 10)
    eager, p = eager_and_compiled(step, x, y)
    if not x.device.info.is_cpu:
        # the GPU matmul kernel takes no epilogues yet: elementwise and update fusion only
        assert p.launches * 4 <= eager.launches * 3, (p.kernels, eager.kernels)
    else:
        # eager: 22 launches (the biases added in the products' stores, the loss one
        # cross_entropy row, its sum and one backward kernel, the six updates already one);
        # compiled: 15 (ReLUs and their masks fused too, no gradient seeds filled)
        assert p.launches + 7 <= eager.launches, (p.kernels, eager.kernels)
        assert p.launches <= 15, p.kernels
        assert sum(k.startswith("cgf_") and "addcdiv" in k for k in p.kernels) == 1, p.kernels


# --- host steps (what a collective reports): replayed in place among the kernels ---------


def _host_double(t, calls):
    """Host code on a tensor's bytes (as a collective's exchange is): doubles them."""
    import pyopencl as cl

    q, it = t.device.info.queue, t.dtype.itemsize
    a = np.empty(t.numel(), t.dtype.np)
    cl.enqueue_copy(q, a, t._storage.buf, src_offset=t._offset * it, is_blocking=True)
    cl.enqueue_copy(q, t._storage.buf, a * 2, dst_offset=t._offset * it, is_blocking=True)
    calls.append(t.shape)


def _double_on_host(t, calls):
    from clgraph import runtime

    if runtime.observers:
        runtime.notify(runtime.HostStep("double", lambda v: _host_double(v, calls), [t],
                                        ["rw"]))
    _host_double(t, calls)


def test_host_steps_replay_in_order_and_stop_fusion():
    """A host step runs at its place in every replay, on that replay's buffers: the kernel
    writing its input runs before it and the one reading its output after (no fusion
    across it), and one whose result nothing uses or that works on a constant still
    runs."""
    calls = []

    @cg.compile
    def f(x):
        y = x + 1.0
        _double_on_host(y, calls)
        _double_on_host(x * 5.0, calls)  # its result is unused
        c = cg.ones(3)
        _double_on_host(c, calls)  # a constant, changed by the host
        return (y * 3.0).exp() + c

    ref = lambda x: np.exp((x + 1) * 2 * 3) + 2
    for k in range(4):
        x = np.linspace(-1, 0, 3).astype(np.float32) + k * 0.01
        close(f(cg.tensor(x)), cg.tensor(ref(x)), 1e-4)
        assert len(calls) == 3 * (k + 1)
    entry = next(iter(f._entries.values()))
    assert entry.plan is not None and entry.replays == 3
    # the kernels before the host steps (x + 1, x * 5, the fill) share one launch, the
    # ones after them another
    names = f.launches(cg.zeros(3))
    assert len(names) == 2 and "exp" not in names[0] and "exp" in names[1], names


class _Later:
    """An asynchronous host step's handle: its work happens at wait()."""

    def __init__(self, t, calls):
        self.t, self.calls = t, calls

    def wait(self):
        self.calls.append("wait")
        _host_double(self.t, self.calls)


def test_asynchronous_host_steps_wait_where_their_tensors_are_used():
    """An asynchronous host step (an async collective) starts at its place and is waited
    for just before the first later action on its tensor: work that does not touch it runs
    in between, and the results equal doing it in place."""
    from clgraph import runtime

    calls = []

    def start(t):
        calls.append("start")
        return _Later(t, calls)

    @cg.compile
    def f(x, z):
        y = x + 1.0
        if runtime.observers:
            runtime.notify(runtime.HostStep("later", start, [y], ["rw"], True))
        _host_double(y, calls)  # the traced call itself does it at once
        w = z.reshape(2, 2) @ z.reshape(2, 2)  # independent of y: runs before the wait
        return y * 3.0, w

    for k in range(3):
        x = np.linspace(-1, 0, 3).astype(np.float32) + k
        z = np.linspace(0, 1, 4).astype(np.float32)
        calls.clear()
        got_y, got_w = f(cg.tensor(x), cg.tensor(z))
        close(got_y, cg.tensor((x + 1) * 2 * 3), 1e-5)
        close(got_w, cg.tensor(z.reshape(2, 2) @ z.reshape(2, 2)), 1e-5)
    entry = next(iter(f._entries.values()))
    assert entry.replays == 2 and calls[:2] == ["start", "wait"], calls
    acts = [type(a).__name__ for a in entry.plan.actions]
    assert acts.index("HostCall") < acts.index("HostWait"), acts
    between = acts[acts.index("HostCall") + 1:acts.index("HostWait")]
    assert "Enqueue" in between, acts  # the product ran while the host step was pending


def test_compiled_backward_accumulates_into_grads_like_eager():
    """A compiled call that only runs backward accumulates into .grad as eager does: across
    calls, after zero_grad (None) in a gradient-accumulation loop, and into a gradient the
    user assigned; each starting state (no gradient / one to add to) gets one plan that
    replays."""
    m = nn.Linear(3, 2)
    m_ref = nn.Linear(3, 2)
    m_ref.load_state_dict(m.state_dict())
    x = T(4, 3)

    def fwd_bwd(model):
        model(x).pow(2).sum().backward()

    c = cg.compile(lambda: fwd_bwd(m))
    for cycle in range(3):
        for _ in range(3):
            c()
            fwd_bwd(m_ref)
        for p, q in zip(m.parameters(), m_ref.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)
        m.zero_grad()
        m_ref.zero_grad(set_to_none=cycle % 2 == 0)
    m.bias.grad = cg.full((2,), 100.0)
    c()
    m_ref.zero_grad()
    fwd_bwd(m_ref)
    np.testing.assert_allclose(m.bias.grad.numpy(), m_ref.bias.grad.numpy() + 100.0, rtol=1e-5)
    # plans: no gradients, both to add to, and the last call's mix (bias only)
    assert len(c._entries) == 3 and sum(e.replays for e in c._entries.values()) >= 7


_SCALE = 1.0


def test_closure_and_global_values_are_part_of_the_signature():
    """What a compiled function reaches without arguments is guarded as torch.compile
    guards it: a closure number, a global number, a module's train/eval flags and a
    reassigned Parameter each trace anew instead of replaying stale values."""
    global _SCALE
    x = cg.ones(2)
    k = 2.0
    f = cg.compile(lambda t: t * k)
    assert f(x).tolist() == [2.0, 2.0]
    k = 5.0
    assert f(x).tolist() == [5.0, 5.0]

    g = cg.compile(lambda t: t * _SCALE)
    assert g(x).tolist() == [1.0, 1.0]
    _SCALE = 3.0
    try:
        assert g(x).tolist() == [3.0, 3.0]
    finally:
        _SCALE = 1.0

    cg.manual_seed(0)
    m = cg.nn.Sequential(cg.nn.Linear(3, 4), cg.nn.Dropout(0.5))
    X = cg.randn(8, 3)
    h = cg.compile(lambda t: m(t))
    m.eval()
    ev = h(X)
    assert cg.equal(h(X), ev)
    m.train()
    tr = h(X)
    assert not cg.equal(tr, ev) and (tr == 0).any()
    m.eval()
    m[0].weight = cg.nn.Parameter(cg.ones(4, 3))
    close(h(X), m(X), 1e-6)


_CONFIG = {"scale": 2.0, "shift": 0.5}


def test_settings_read_from_a_global_dict_are_guarded():
    """A compiled function that reads a number out of a small dict of settings traces anew
    when the setting changes (torch.compile guards the items it reads), instead of
    replaying the number the first trace baked in."""
    x = cg.ones(3)
    f = cg.compile(lambda t: t * _CONFIG["scale"] + _CONFIG["shift"])
    assert f(x).tolist() == [2.5] * 3
    _CONFIG["scale"] = 3.0
    try:
        assert f(x).tolist() == [3.5] * 3
        cfg = {"p": 1.0}
        g = cg.compile(lambda t: t * cfg["p"])
        assert g(x).tolist() == [1.0] * 3
        cfg["p"] = -1.0
        assert g(x).tolist() == [-1.0] * 3
    finally:
        _CONFIG["scale"] = 2.0


_SCHEDULE = [2.0, 3.0]
_TABLE = {f"k{i}": float(i) for i in range(100)}
_LOG: list = []


def test_global_lists_and_larger_dicts_of_numbers_are_guarded():
    """A number read out of a global list, or out of a dict of 100 settings, is guarded by
    value like a small dict's: a changed item traces anew. A list the call appends to
    (a log) is its side channel: guarded by identity, so the call keeps replaying."""
    x = cg.ones(3)
    f = cg.compile(lambda t: t * _SCHEDULE[0] + _TABLE["k1"])
    assert f(x).tolist() == [3.0] * 3
    _SCHEDULE[0], _TABLE["k1"] = 5.0, 10.0
    try:
        assert f(x).tolist() == [15.0] * 3
    finally:
        _SCHEDULE[0], _TABLE["k1"] = 2.0, 1.0

    def logged(t):
        _LOG.append(len(_LOG))
        return t * 2

    g = cg.compile(logged)
    for _ in range(4):
        assert g(x).tolist() == [2.0] * 3
    (entry,) = g._entries.values()
    assert entry.plan is not None and entry.replays == 3


_FACTOR = 1


def test_a_number_guard_tells_int_from_float():
    """1 and 1.0 are equal, but ``t * 1`` keeps an int tensor's dtype and ``t * 1.0`` makes
    it float: a guard compares the type too."""
    global _FACTOR
    f = cg.compile(lambda t: t * _FACTOR)
    x = cg.arange(3)
    assert f(x).dtype == cg.int64
    _FACTOR = 1.0
    try:
        y = f(x)
        assert y.dtype == cg.float32 and y.tolist() == [0.0, 1.0, 2.0]
    finally:
        _FACTOR = 1


class _Tempered(cg.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = cg.nn.Linear(3, 3)
        self.temperature = 2.0
        self.calls = 0

    def forward(self, t):
        self.calls += 1  # changed by the forward itself: not a guard
        return self.lin(t) / self.temperature


def test_module_attributes_read_by_forward_are_guarded():
    """A number attribute the forward reads (a temperature) is guarded: a changed value
    traces anew and the old value's plan is kept for when it comes back; an attribute the
    forward does not read (an epoch count), or one it changes itself, traces nothing."""
    m = _Tempered()
    x = cg.randn(2, 3)
    for c in (cg.compile(m), cg.compile(lambda t: m(t))):
        for temp in (2.0, 4.0, 2.0, 4.0):
            m.temperature = temp
            close(c(x), m.lin(x) / temp, 1e-6)
        for epoch in range(3):
            m.epoch = epoch
            close(c(x), m.lin(x) / 4.0, 1e-6)
        plans = [e for e in c._entries.values() if e.plan is not None]
        assert len(plans) == 2 and sorted(e.replays for e in plans) == [1, 4]


class _Scaler(cg.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = cg.nn.Linear(2, 2)

    def step(self, t):
        return self.lin(t) * 2


def test_bound_method_of_a_module_is_guarded_by_its_module():
    mod = _Scaler()
    f = cg.compile(mod.step)
    x = cg.randn(3, 2)
    f(x)
    with cg.no_grad():
        mod.lin.weight = cg.nn.Parameter(cg.zeros(2, 2))
    close(f(x), mod.step(x), 1e-6)


def test_globals_defined_after_the_decorator_are_guarded():
    """@cg.compile above the module it uses: the globals are found at the first call."""
    ns = {"cg": cg}
    exec("@cg.compile\ndef f(t):\n    return net(t)\n", ns)
    ns["net"] = cg.nn.Sequential(cg.nn.Linear(3, 3), cg.nn.Dropout(0.5))
    x = cg.randn(4, 3)
    ns["net"].eval()
    ev = ns["f"](x)
    ns["net"].train()
    tr = ns["f"](x)
    assert not cg.equal(tr, ev)
