"""One rank of the MPI jobs tests/test_distributed.py starts (``mpirun -n N python
tests/distributed_worker.py MODE``). Each mode checks its results against numpy or against
one process training on the combined batch, and prints "<mode> ok" on success; a failed
check raises, which aborts the whole job."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings

import numpy as np

import clgraph as cg
import clgraph.distributed as dist
import clgraph.nn as nn
from clgraph.nn.parallel import DistributedDataParallel as DDP

R = dist.ReduceOp


def _close(t, ref, what, rtol=1e-6):
    got = t.float().numpy() if t.dtype is cg.bfloat16 else t.numpy()
    np.testing.assert_allclose(got.astype(np.float64), np.asarray(ref, np.float64), rtol=rtol,
                               atol=0, err_msg=what)


def _values(rank, shape, dtype):
    """Rank-dependent values every dtype holds exactly (products stay small)."""
    base = (np.arange(int(np.prod(shape))).reshape(shape) % 3) + 1
    if dtype is cg.bool:
        return (base + rank) % 2 == 0
    return base + rank if dtype not in (cg.float32, cg.float64) else (base + rank) * 0.5


def check_all_reduce(rank, size):
    for dtype in (cg.float32, cg.float64, cg.float16, cg.bfloat16, cg.int64, cg.int32, cg.int8,
                  cg.uint8, cg.bool):
        every = [_values(r, (3, 5), dtype) for r in range(size)]
        ops = [(R.SUM, np.sum), (R.MAX, np.max), (R.MIN, np.min), (R.PRODUCT, np.prod)]
        if dtype.is_floating_point:
            ops.append((R.AVG, np.mean))
        if dtype in (cg.int64, cg.int32):
            ops += [(R.BAND, np.bitwise_and.reduce), (R.BOR, np.bitwise_or.reduce),
                    (R.BXOR, np.bitwise_xor.reduce)]
        for op, ref in ops:
            t = cg.tensor(every[rank], dtype=dtype)
            dist.all_reduce(t, op=op)
            want = ref(np.stack(every), axis=0)
            if dtype is cg.bool:
                want = (np.any if op in (R.SUM, R.MAX) else np.all)(np.stack(every), axis=0)
            _close(t, want, f"all_reduce {dtype} {op}", 1e-2 if dtype.itemsize == 2 else 1e-6)
    # a view that is not contiguous: reduced through a copy, written back in place
    base = cg.tensor(np.arange(24.0).reshape(4, 6) * (rank + 1))
    view = base.t()[1:4]
    dist.all_reduce(view)
    want = np.arange(24.0).reshape(4, 6) * (rank + 1)
    want.T[1:4] = (np.arange(24.0).reshape(4, 6).T * sum(range(1, size + 1)))[1:4]
    _close(base, want, "all_reduce of a transposed slice")
    # several chunks when staged (6 MB), async, waited out of order
    big = [cg.full((1_500_000,), float(rank + k)) for k in range(3)]
    works = [dist.all_reduce(b, op=R.AVG, async_op=True) for b in big]
    for k in (2, 0, 1):
        assert works[k].wait() and works[k].is_completed()
        _close(big[k][::499_999], [np.mean([r + k for r in range(size)])] * 4, "async avg")
    empty = cg.zeros(0, 3)
    dist.all_reduce(empty)
    assert empty.shape == (0, 3)


def check_others(rank, size):
    t = cg.tensor(_values(rank, (2, 3), cg.float32), dtype=cg.float32)
    dist.broadcast(t, src=size - 1)
    _close(t, _values(size - 1, (2, 3), cg.float32), "broadcast")
    w = dist.broadcast(cg.full((5,), float(rank)), src=0, async_op=True)
    w.wait()
    outs = [cg.zeros(2, 3, dtype=cg.int64) for _ in range(size)]
    dist.all_gather(outs, cg.tensor(_values(rank, (2, 3), cg.int64)))
    for r, o in enumerate(outs):
        _close(o, _values(r, (2, 3), cg.int64), "all_gather")
    flat = cg.zeros(size, 4)
    dist.all_gather_into_tensor(flat, cg.full((4,), float(rank)))
    _close(flat, np.repeat(np.arange(size.__float__())[:, None], 4, 1), "all_gather_into_tensor")
    ins = [cg.tensor(_values(rank * size + k, (3,), cg.float32), dtype=cg.float32)
           for k in range(size)]
    out = cg.zeros(3)
    dist.reduce_scatter(out, ins, op=R.MAX)
    _close(out, np.max([_values(r * size + rank, (3,), cg.float32) for r in range(size)], 0),
           "reduce_scatter max")
    whole = cg.tensor(np.arange(2.0 * size) + rank, dtype=cg.float32)
    part = cg.zeros(2)
    dist.reduce_scatter_tensor(part, whole, op=R.SUM)
    _close(part, (np.arange(2.0 * size)[2 * rank:2 * rank + 2] * size + sum(range(size))),
           "reduce_scatter_tensor")
    dist.barrier()
    objs = [None] * size
    dist.all_gather_object(objs, {"rank": rank})
    assert objs == [{"rank": r} for r in range(size)]
    lst = [rank, "x"] if rank == 1 else [None, None]
    dist.broadcast_object_list(lst, src=1)
    assert lst == [1, "x"]


def check_mismatch(rank, size):
    try:
        dist.all_reduce(cg.zeros(4, 5 + rank))
    except RuntimeError as e:
        msg = str(e)
        assert "rank 0 float32[4, 5]" in msg and "rank 1 float32[4, 6]" in msg, msg
    else:
        raise AssertionError("mismatching shapes did not raise")
    try:
        if rank == 0:
            dist.all_reduce(cg.zeros(3))
        else:
            dist.broadcast(cg.zeros(3), src=0)
    except RuntimeError as e:
        assert "rank 0 all_reduce, rank 1 broadcast" in str(e), str(e)
    else:
        raise AssertionError("mismatching collectives did not raise")
    t = cg.ones(3)
    dist.all_reduce(t)  # the group still works
    _close(t, [size] * 3, "all_reduce after a mismatch")


def collectives(rank, size):
    for staged in ("0", "1"):  # mapped in place (PoCL), then staged as on a discrete GPU
        os.environ["CLGRAPH_DISTRIBUTED_STAGED"] = staged
        check_all_reduce(rank, size)
        check_others(rank, size)
    os.environ.pop("CLGRAPH_DISTRIBUTED_STAGED")
    check_mismatch(rank, size)
    compiled_collectives(rank, size)


# --- DistributedDataParallel ---------------------------------------------------------------

STEPS, BATCH = 4, 12


def _model(seed):
    cg.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3))


def _data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((STEPS, BATCH, 6)).astype(np.float32),
            rng.standard_normal((STEPS, BATCH, 3)).astype(np.float32))


def _optimizer(name, params):
    if name == "sgd":
        return cg.optim.SGD(params, lr=0.1, momentum=0.9)
    return cg.optim.Adam(params, lr=0.01)


def _same(a, b, what):
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=2e-4, atol=2e-6,
                                   err_msg=f"{what}: {k}")


def train(rank, size, opt_name, mode, bucket_cap_mb):
    """DDP on each rank's share of the batch against one model on the whole batch."""
    X, Y = _data()
    per = BATCH // size
    model, ref = _model(1 + rank), _model(1)  # rank 0's initial parameters must win
    ddp = DDP(cg.compile(model) if mode == "compiled module" else model,
              bucket_cap_mb=bucket_cap_mb)
    opt, ref_opt = _optimizer(opt_name, ddp.parameters()), _optimizer(opt_name,
                                                                       ref.parameters())

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
        return loss

    if mode.startswith("compiled step"):
        step = cg.compile(step)
    if mode == "compiled step, staged":
        os.environ["CLGRAPH_DISTRIBUTED_STAGED"] = "1"
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for s in range(STEPS):
            mine = slice(rank * per, (rank + 1) * per)
            step(cg.tensor(X[s, mine]), cg.tensor(Y[s, mine]))
            ref_opt.zero_grad()
            nn.functional.mse_loss(ref(cg.tensor(X[s])), cg.tensor(Y[s])).backward()
            ref_opt.step()
            seen += [str(w.message) for w in caught]
    os.environ.pop("CLGRAPH_DISTRIBUTED_STAGED", None)
    _same(model, ref, f"{opt_name}, {mode}, buckets of {bucket_cap_mb} MB")
    if mode.startswith("compiled step"):  # replayed with its all-reduces, never eagerly
        assert not [m for m in seen if "eagerly" in m], seen
        _replayed(step, STEPS - 1)


def _replayed(compiled, calls):
    """``compiled`` has one plan, which replayed ``calls`` times (the others traced)."""
    plans = [e for e in compiled._entries.values() if e.plan is not None]
    assert len(plans) == 1 and plans[0].replays == calls, [
        (e.plan is not None, e.replays, e.eager) for e in compiled._entries.values()]


def accumulate(rank, size):
    """Two micro-batches under no_sync, one synced: the sum of three batches' gradients,
    averaged over the ranks, as one process computes it on the combined batches."""
    X, Y = _data()
    per = BATCH // size
    model, ref = _model(2), _model(2)
    ddp = DDP(model)
    mine = slice(rank * per, (rank + 1) * per)
    for s in range(3):
        ctx = ddp.no_sync() if s < 2 else warnings.catch_warnings()
        with ctx:
            nn.functional.mse_loss(ddp(cg.tensor(X[s, mine])), cg.tensor(Y[s, mine])).backward()
        if s < 2:  # not averaged yet: each rank holds its own
            assert ddp._bucket_list[0].work is None
        nn.functional.mse_loss(ref(cg.tensor(X[s])), cg.tensor(Y[s])).backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=2e-4, atol=1e-6,
                                   err_msg="no_sync accumulation")


def compiled_accumulate(rank, size):
    """A compiled micro-step (forward, backward) called twice inside no_sync() and once
    outside, then the optimizer, for several rounds: each mode replays a plan of its own
    (the synced one ends with the all-reduces), and training matches one process on the
    combined batches. (The gradients exist before every call, zeroed in place: a plan
    traced on a parameter without .grad assigns a fresh one.)"""
    X, Y = _data()
    per = BATCH // size
    model, ref = _model(4), _model(4)
    ddp = DDP(model, bucket_cap_mb=0.001)
    opt, ref_opt = _optimizer("sgd", model.parameters()), _optimizer("sgd", ref.parameters())
    for p in model.parameters():
        p.grad = cg.zeros_like(p)

    @cg.compile
    def micro(x, y):
        nn.functional.mse_loss(ddp(x), y).backward()

    mine = slice(rank * per, (rank + 1) * per)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no call runs eagerly
        for r in range(3):
            for s in range(3):
                x, y = X[(r + s) % STEPS], Y[(r + s) % STEPS]
                with ddp.no_sync() if s < 2 else contextlib.nullcontext():
                    micro(cg.tensor(x[mine]), cg.tensor(y[mine]))
                nn.functional.mse_loss(ref(cg.tensor(x)), cg.tensor(y)).backward()
            opt.step()
            opt.zero_grad(set_to_none=False)
            ref_opt.step()
            ref_opt.zero_grad()
    _same(model, ref, "compiled micro-steps under no_sync()")
    plans = [e for e in micro._entries.values() if e.plan is not None]
    assert len(plans) == 2 and sorted(e.replays for e in plans) == [2, 5], [
        (e.replays, e.eager) for e in micro._entries.values()]


def compiled_unused(rank, size):
    """find_unused_parameters in a compiled step: a head only rank 1 uses (the flag is an
    argument, so part of the signature) gets its gradient averaged with the others'
    zeros."""
    X = cg.tensor(np.random.default_rng(1).standard_normal((size, 4, 6)).astype(np.float32))
    ddp = DDP(_TwoHeads(), find_unused_parameters=True)

    @cg.compile
    def step(x, use_b):
        ddp.zero_grad()
        ddp(x, use_b).sum().backward()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            step(X[rank], rank == 1)
    _replayed(step, 2)
    _check_two_heads_average(ddp, X, size, "compiled unused parameters")


def _check_two_heads_average(ddp, X, size, what):
    """ddp's gradients are the mean of each rank's own _TwoHeads gradients (zeros for the
    head only rank 1 uses)."""
    local = []
    for r in range(size):
        m = _TwoHeads()
        m(X[r], r == 1).sum().backward()
        local.append([np.zeros(p.shape) if p.grad is None else p.grad.numpy()
                      for p in m.parameters()])
    for i, p in enumerate(ddp.module.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), np.mean([g[i] for g in local], 0),
                                   rtol=1e-5, atol=1e-6, err_msg=what)


def compiled_collectives(rank, size):
    """Collectives inside a compiled function replay (mapped in place, then staged) and
    match numpy on each call's values: an AVG all-reduce of a transposed slice computed in
    the call, a broadcast, all_gather_into_tensor, reduce_scatter_tensor and a barrier."""

    @cg.compile
    def f(x, w):
        y = x * 2.0 + w
        dist.all_reduce(y.t()[1:3], op=R.AVG)
        z = x.sum(1)
        dist.broadcast(z, src=size - 1)
        g = cg.zeros(size, 3)
        dist.all_gather_into_tensor(g, x[0] + 1.0)
        part = cg.zeros(2)
        dist.reduce_scatter_tensor(part, x.reshape(-1)[:2 * size])
        dist.barrier()
        return y + 1.0, z, g, part

    calls = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for staged in ("0", "1"):
            os.environ["CLGRAPH_DISTRIBUTED_STAGED"] = staged
            for k in range(3):
                xs = [np.arange(12.0).reshape(4, 3) * (r + 1) + k for r in range(size)]
                w = np.linspace(0, 1, 3) + k
                y, z, g, part = f(cg.tensor(xs[rank], dtype=cg.float32),
                                  cg.tensor(w, dtype=cg.float32))
                calls += 1
                want = xs[rank] * 2 + w
                want.T[1:3] = np.mean([x * 2 + w for x in xs], 0).T[1:3]
                _close(y, want + 1, "compiled all_reduce AVG of a view", 1e-5)
                _close(z, xs[-1].sum(1), "compiled broadcast")
                _close(g, np.stack([x[0] + 1 for x in xs]), "compiled all_gather_into_tensor")
                _close(part, np.sum([x.reshape(-1)[:2 * size] for x in xs], 0)[
                    2 * rank:2 * rank + 2], "compiled reduce_scatter_tensor")
    os.environ.pop("CLGRAPH_DISTRIBUTED_STAGED")
    _replayed(f, calls - 1)


def overlap(rank, size):
    """The first bucket's all-reduce is under way before the backward reaches the first
    layer."""
    model = _model(3)
    started = []
    model[0].weight.register_post_accumulate_grad_hook(
        lambda p: started.append(ddp._bucket_list[0].work is not None))
    ddp = DDP(model, bucket_cap_mb=0.001)
    assert len(ddp._bucket_list) > 2
    ddp(cg.randn(4, 6)).sum().backward()
    assert started == [True], started


class _TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        cg.manual_seed(5)
        self.body, self.a, self.b = nn.Linear(6, 4), nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x, use_b):
        h = self.body(x)
        return self.a(h) + self.b(h) if use_b else self.a(h)


def unused(rank, size):
    """find_unused_parameters: a head only rank 1 uses gets its gradient averaged with
    the others' zeros; without it, the next forward says which parameters were left."""
    X = cg.tensor(np.random.default_rng(1).standard_normal((size, 4, 6)).astype(np.float32))
    ddp = DDP(_TwoHeads(), find_unused_parameters=True)
    for _ in range(2):  # a second iteration finds the reduction finished
        ddp.zero_grad()
        ddp(X[rank], rank == 1).sum().backward()
    _check_two_heads_average(ddp, X, size, "find_unused_parameters")
    ddp = DDP(_TwoHeads())
    ddp(X[rank], False).sum().backward()
    try:
        ddp(X[rank], False)
    except RuntimeError as e:
        assert "find_unused_parameters=True" in str(e) and "b.weight" in str(e), str(e)
    else:
        raise AssertionError("an unfinished reduction did not raise")


def compiled_ddp(rank, size):
    """cg.compile around DDP's forward alone runs eagerly, with a warning (the reduction is
    unfinished when the call returns: a replay would skip DDP's bookkeeping), and still
    trains as one process on the combined batch."""
    X, Y = _data()
    per = BATCH // size
    model, ref = _model(6), _model(6)
    net = cg.compile(DDP(model))
    opt, ref_opt = _optimizer("sgd", model.parameters()), _optimizer("sgd", ref.parameters())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for s in range(STEPS):
            mine = slice(rank * per, (rank + 1) * per)
            opt.zero_grad()
            nn.functional.mse_loss(net(cg.tensor(X[s, mine])),
                                   cg.tensor(Y[s, mine])).backward()
            opt.step()
            ref_opt.zero_grad()
            nn.functional.mse_loss(ref(cg.tensor(X[s])), cg.tensor(Y[s])).backward()
            ref_opt.step()
    _same(model, ref, "cg.compile(DDP(model))")
    said = [str(w.message) for w in caught]
    assert any("runs eagerly" in m and "reduction is not finished" in m for m in said), said


def mismatched_replicas(rank, size):
    model = nn.Linear(4, 3 + (rank > 0))
    try:
        DDP(model)
    except RuntimeError as e:
        assert "weight: float32[3, 4], rank 1 has weight: float32[4, 4]" in str(e), str(e)
    else:
        raise AssertionError("replicas with different parameters did not raise")


def ddp(rank, size):
    for opt_name in ("sgd", "adam"):
        for mode in ("eager", "compiled module", "compiled step"):
            train(rank, size, opt_name, mode, 25 if mode != "eager" else 0.001)
    train(rank, size, "sgd", "compiled step, staged", 0.001)
    accumulate(rank, size)
    compiled_accumulate(rank, size)
    overlap(rank, size)
    unused(rank, size)
    compiled_unused(rank, size)
    compiled_ddp(rank, size)
    mismatched_replicas(rank, size)


def ddp_subset(rank, size):
    """The DDP checks a 3-process job repeats (on 2 cores: fewer of them)."""
    train(rank, size, "sgd", "eager", 0.001)
    train(rank, size, "adam", "compiled module", 25)
    train(rank, size, "adam", "compiled step", 0.001)
    accumulate(rank, size)


def fail(rank, size):
    t = cg.ones(3)
    dist.all_reduce(t)
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(t)  # the others wait here until the job is aborted


def hang(rank, size):
    dist.all_reduce(cg.ones(3))
    print("ready", os.getpid(), flush=True)
    if rank == 1:
        time.sleep(600)
    dist.all_reduce(cg.ones(3))


if __name__ == "__main__":
    dist.init_process_group("mpi")
    for mode in sys.argv[1:]:
        globals()[mode](dist.get_rank(), dist.get_world_size())
        dist.barrier()
        if dist.get_rank() == 0:
            print(f"{mode} ok", flush=True)
    dist.destroy_process_group()
