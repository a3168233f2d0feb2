"""One rank of the MPI jobs tests/test_distributed_more.py starts (``mpirun -n N python
tests/distributed_more_worker.py MODE...``): point-to-point, rooted and personalized
collectives, process groups and the autograd-aware collectives, each result checked against
numpy on every rank. Prints "<mode> ok" on success; a failed check raises, which aborts the
whole job."""

from __future__ import annotations

import os
import sys
import warnings
from datetime import timedelta

import numpy as np

import clgraph as cg
import clgraph.distributed as dist
import clgraph.distributed.nn.functional as dfn

R = dist.ReduceOp


def _close(t, ref, what, rtol=1e-6):
    np.testing.assert_allclose(t.detach().numpy().astype(np.float64), np.asarray(ref, np.float64),
                               rtol=rtol, atol=0, err_msg=what)


def _v(rank, shape, k=0):
    """Rank-dependent float values."""
    n = int(np.prod(shape))
    return (np.arange(n, dtype=np.float64).reshape(shape) + 10 * rank + 100 * k) * 0.5


def _raises(fn, *words, exc=RuntimeError):
    try:
        fn()
    except exc as e:
        for w in words:
            assert w in str(e), (w, str(e))
        return str(e)
    raise AssertionError(f"did not raise {exc.__name__} with {words}")


# --- point to point ------------------------------------------------------------------------


def p2p(rank, size):
    for staged in ("0", "1"):  # mapped in place (PoCL), then staged as on a discrete GPU
        os.environ["CLGRAPH_DISTRIBUTED_STAGED"] = staged
        _p2p_ring(rank, size)
    os.environ.pop("CLGRAPH_DISTRIBUTED_STAGED")
    _p2p_others(rank, size)


def _p2p_ring(rank, size):
    nxt, prv = (rank + 1) % size, (rank - 1) % size
    # a ring with blocking calls: even ranks send first
    t = cg.tensor(_v(rank, (3, 4)))
    got = cg.zeros(3, 4, dtype=cg.float64)
    if rank % 2 == 0:
        dist.send(t, nxt)
        assert dist.recv(got, prv) == prv
    else:
        assert dist.recv(got, src=None) == prv  # any source: the sender's rank comes back
        dist.send(t, dst=nxt)
    if size % 2 == 0 or rank != 0:
        _close(got, _v(prv, (3, 4)), "send/recv ring")
    # isend / irecv posted together, waited in either order; a transposed view received
    outs = cg.zeros(4, 3, dtype=cg.float64)
    rw = dist.irecv(outs.t(), group_src=prv, tag=3)
    sw = dist.isend(t, group_dst=nxt, tag=3)
    assert rw.wait() and sw.wait() and rw.is_completed() and sw.is_completed()
    _close(outs.t(), _v(prv, (3, 4)), "isend/irecv into a view")
    # batch_isend_irecv: both directions of the ring at once, several dtypes
    a = cg.tensor(np.arange(5) + rank, dtype=cg.int32)
    b = cg.tensor(_v(rank, (2, 2)), dtype=cg.float32)
    ra, rb = cg.zeros(5, dtype=cg.int32), cg.zeros(2, 2)
    ops = [dist.P2POp(dist.isend, a, nxt), dist.P2POp(dist.irecv, ra, prv),
           dist.P2POp(dist.isend, b, prv, tag=1), dist.P2POp(dist.irecv, rb, nxt, tag=1)]
    for w in dist.batch_isend_irecv(ops):
        w.wait()
    _close(ra, np.arange(5) + prv, "batch ring int32")
    _close(rb, _v(nxt, (2, 2)), "batch ring float32")


def _p2p_others(rank, size):
    a = cg.zeros(1)
    _raises(lambda: dist.P2POp(dist.send, a, 0), "Invalid ``op``", exc=ValueError)
    _raises(lambda: dist.send(a, rank), "should not be the same", exc=ValueError)
    # objects
    if rank == 0:
        dist.send_object_list([{"from": 0}, "x", 3], dst=size - 1)
    if rank == size - 1:
        objs = [None] * 3
        assert dist.recv_object_list(objs) == 0 and objs == [{"from": 0}, "x", 3], objs
    # a receive into the wrong shape raises on the receiver, naming both; nobody hangs
    if rank == 0:
        dist.send(cg.zeros(6), dst=1, tag=5)
        dist.send(cg.zeros(2), dst=1, tag=5)
    elif rank == 1:
        _raises(lambda: dist.recv(cg.zeros(7), src=0, tag=5), "rank 0 sent float32[6]",
                "rank 1 receives into float32[7]")
        _raises(lambda: dist.recv(cg.zeros(3, dtype=cg.int64), tag=5), "float32[2]",
                "int64[3]")
    # a receive from any rank is posted at once: a blocking send of 8 MB (more than MPI
    # sends eagerly) completes while the receiver is in a collective
    big = cg.zeros(2_000_000)
    if rank == 0:
        w = dist.irecv(big)
        dist.all_reduce(cg.ones(1))
        w.wait()
        _close(big[::999_999], [1.0] * 3, "irecv from any rank, waited after a collective")
    else:
        if rank == 1:
            dist.send(big + 1.0, dst=0)
        dist.all_reduce(cg.ones(1))
    t = cg.ones(3)
    dist.all_reduce(t)
    _close(t, [size] * 3, "all_reduce after p2p")


# --- rooted and personalized collectives ----------------------------------------------------


def rooted(rank, size):
    for staged in ("0", "1"):  # mapped in place (PoCL), then staged as on a discrete GPU
        os.environ["CLGRAPH_DISTRIBUTED_STAGED"] = staged
        _rooted(rank, size)
    os.environ.pop("CLGRAPH_DISTRIBUTED_STAGED")
    _objects(rank, size)
    _rooted_mismatch(rank, size)


def _rooted(rank, size):
    every = np.stack([_v(r, (2, 3)) for r in range(size)])
    for op, ref in ((R.SUM, np.sum), (R.MAX, np.max), (R.PRODUCT, np.prod), (R.AVG, np.mean)):
        t = cg.tensor(_v(rank, (2, 3)))
        dist.reduce(t, dst=size - 1, op=op)
        _close(t, ref(every, 0) if rank == size - 1 else _v(rank, (2, 3)), f"reduce {op}")
    t = cg.tensor(_v(rank, (2, 3)))
    dist.reduce(t, group_dst=1, async_op=True).wait()
    _close(t, every.sum(0) if rank == 1 else _v(rank, (2, 3)), "reduce async")
    # gather: the list on the destination only
    outs = [cg.zeros(2, 3, dtype=cg.float64) for _ in range(size)] if rank == 1 else None
    w = dist.gather(cg.tensor(_v(rank, (2, 3))), outs, dst=1, async_op=True)
    w.wait()
    if rank == 1:
        for r, o in enumerate(outs):
            _close(o, _v(r, (2, 3)), "gather")
    _raises(lambda: dist.gather(cg.zeros(2), None if rank == 0 else [cg.zeros(2)] * size),
            "gather_list", exc=ValueError)
    # scatter from the last rank, into a transposed view
    ins = [cg.tensor(_v(r, (3, 2)).T.copy()) for r in range(size)] if rank == size - 1 else None
    got = cg.zeros(3, 2, dtype=cg.float64)
    dist.scatter(got.t(), ins, src=size - 1, async_op=True).wait()
    _close(got.t(), _v(rank, (3, 2)).T, "scatter")
    # all_to_all with pairs of different sizes: rank i sends i + j + 1 values to rank j
    ins = [cg.tensor(np.full(rank + j + 1, 10.0 * rank + j)) for j in range(size)]
    outs = [cg.zeros(i + rank + 1, dtype=cg.float64) for i in range(size)]
    dist.all_to_all(outs, ins, async_op=True).wait()
    for i, o in enumerate(outs):
        _close(o, np.full(i + rank + 1, 10.0 * i + rank), "all_to_all")
    # all_to_all_single, uneven: rank i sends (j + 1) rows of width 2 to rank j
    splits_in = [j + 1 for j in range(size)]
    inp = cg.tensor(np.concatenate([np.full((j + 1, 2), 100.0 * rank + j) for j in range(size)]))
    out = cg.zeros((rank + 1) * size, 2, dtype=cg.float64)
    w = dist.all_to_all_single(out, inp, [rank + 1] * size, splits_in, async_op=True)
    assert w.wait() and w.is_completed()
    want = np.concatenate([np.full((rank + 1, 2), 100.0 * i + rank) for i in range(size)])
    _close(out, want, "all_to_all_single uneven")
    even_in = cg.tensor(np.arange(2.0 * size) + 10 * rank)
    even_out = cg.zeros(2 * size, dtype=cg.float64)
    dist.all_to_all_single(even_out, even_in)
    _close(even_out, [10 * i + 2 * rank + k for i in range(size) for k in range(2)],
           "all_to_all_single even")
    # coalesced (deprecated in torch: FutureWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = [cg.tensor(_v(rank, (2,))), cg.tensor(_v(rank, (3, 1)))]
        dist.all_reduce_coalesced(ts, op=R.MAX, async_op=True).wait()
        outs = [[cg.zeros(2, dtype=cg.float64), cg.zeros(3, 1, dtype=cg.float64)]
                for _ in range(size)]
        dist.all_gather_coalesced(outs, [cg.tensor(_v(rank, (2,))), cg.tensor(_v(rank, (3, 1)))])
    assert sum(issubclass(w.category, FutureWarning) for w in caught) == 2, caught
    _close(ts[0], _v(size - 1, (2,)), "all_reduce_coalesced")
    _close(ts[1], _v(size - 1, (3, 1)), "all_reduce_coalesced")
    for r in range(size):
        _close(outs[r][1], _v(r, (3, 1)), "all_gather_coalesced")


def _objects(rank, size):
    got = [None] * size if rank == 0 else None
    dist.gather_object({"r": rank}, got)
    if rank == 0:
        assert got == [{"r": r} for r in range(size)], got
    out = [None]
    dist.scatter_object_list(out, [f"to {r}" for r in range(size)] if rank == 1 else None, src=1)
    assert out == [f"to {rank}"], out
    lst = ["mine", rank] if rank == size - 1 else [None, None]
    dist.broadcast_object_list(lst, group_src=size - 1)
    assert lst == ["mine", size - 1], lst
    dist.monitored_barrier(timeout=timedelta(seconds=30), wait_all_ranks=True)
    # a rank that never comes: rank 0 names it; the others hear nothing from rank 0
    if rank != size - 1:
        msg = _raises(lambda: dist.monitored_barrier(timeout=timedelta(seconds=1),
                                                     wait_all_ranks=True),
                      "failed to pass monitoredBarrier" if rank == 0 else "timed out")
        if rank == 0:
            assert f"Ranks {size - 1} failed" in msg or f"Rank {size - 1} failed" in msg, msg
    dist.barrier()


def _rooted_mismatch(rank, size):
    _raises(lambda: dist.gather(cg.zeros(2 + rank), [cg.zeros(2)] * size if rank == 0 else None),
            "rank 0 float32[2]", "rank 1 float32[3]")
    _raises(lambda: dist.reduce(cg.zeros(2, dtype=cg.float64 if rank else cg.float32), dst=0),
            "rank 0 float32[2]", "rank 1 float64[2]")
    # rank 0 expects one more row from rank 1 than rank 1 sends
    out_splits = [1] * size
    out_splits[1] += rank == 0
    _raises(lambda: dist.all_to_all_single(cg.zeros(sum(out_splits)), cg.zeros(size),
                                           out_splits, [1] * size),
            "rank 1 sends 1 elements to rank 0, which expects 2")
    _raises(lambda: dist.scatter(cg.zeros(2), [cg.zeros(2)] * size, src=0) if rank == 0
            else dist.reduce(cg.zeros(2), dst=0), "rank 0 scatter", "rank 1 reduce")
    t = cg.ones(2)
    dist.all_reduce(t)
    _close(t, [size] * 2, "all_reduce after mismatches")


# --- process groups -------------------------------------------------------------------------


def groups(rank, size):
    assert dist.is_mpi_available() and dist.is_backend_available("mpi")
    assert not (dist.is_nccl_available() or dist.is_gloo_available() or dist.is_ucc_available()
                or dist.is_xccl_available())
    assert dist.get_default_backend_for_device("cpu") == "mpi"
    assert dist.get_backend_config() == "cpu:mpi,cl:mpi"
    assert dist.default_pg_timeout == timedelta(minutes=30)
    assert not dist.is_torchelastic_launched()
    locals_ = [None] * size  # one node: the node-local ranks are 0 .. size - 1
    dist.all_gather_object(locals_, dist.get_node_local_rank())
    assert sorted(locals_) == list(range(size)), locals_
    assert dist.get_pg_count() == 1 and dist.group.WORLD is dist.GroupMember.WORLD
    members = [size - 1, 0]  # sorted: group rank 0 is global rank 0
    sub = dist.new_group(members)
    assert dist.get_pg_count() == (2 if rank in members else 1)
    if rank not in members:
        assert sub is dist.GroupMember.NON_GROUP_MEMBER
        assert dist.get_rank(sub) == -1 and dist.get_world_size(sub) == -1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert dist.all_reduce(cg.ones(2), group=sub) is None
        assert "does not belong to the given group" in str(caught[0].message)
    else:
        _in_group(rank, size, sub)
    # new_subgroups: consecutive pairs (2 ranks) or singles (3 ranks)
    size_each = 2 if size % 2 == 0 else 1
    mine, subs = dist.new_subgroups(group_size=size_each)
    assert len(subs) == size // size_each and dist.get_rank(mine) == rank % size_each
    t = cg.tensor([float(rank)])
    dist.all_reduce(t, group=mine)
    first = rank - rank % size_each
    _close(t, [sum(range(first, first + size_each))], "all_reduce in new_subgroups")
    mine2, subs2 = dist.new_subgroups_by_enumeration([[r] for r in range(size)])
    assert dist.get_process_group_ranks(mine2) == [rank]
    _raises(lambda: dist.new_subgroups_by_enumeration([[0, 1], [1]]), "Rank 1 has appeared",
            exc=ValueError)
    for s in subs + subs2:
        if s is not dist.GroupMember.NON_GROUP_MEMBER:
            dist.destroy_process_group(s)
    if rank in members:
        dist.destroy_process_group(sub)
        _raises(lambda: dist.all_reduce(cg.ones(1), group=sub), "destroyed", exc=ValueError)
    assert dist.get_pg_count() == 1


def _in_group(rank, size, sub):
    g0, g1 = 0, size - 1  # the global ranks of group ranks 0 and 1
    me = dist.get_rank(sub)
    assert me == (0 if rank == 0 else 1) and dist.get_world_size(sub) == 2
    assert dist.get_process_group_ranks(sub) == [g0, g1]
    assert dist.get_global_rank(sub, 1) == g1 and dist.get_group_rank(sub, g1) == 1
    _raises(lambda: dist.get_group_rank(sub, 1 if size == 3 else 5), "not part of group",
            exc=ValueError)
    both = np.stack([_v(g0, (3,)), _v(g1, (3,))])
    t = cg.tensor(_v(rank, (3,)))
    dist.all_reduce(t, group=sub)
    _close(t, both.sum(0), "all_reduce in a group")
    t = cg.tensor(_v(rank, (3,)))
    dist.broadcast(t, src=g1, group=sub)  # src is a global rank
    _close(t, both[1], "broadcast in a group")
    t = cg.tensor(_v(rank, (3,)))
    dist.broadcast(t, group_src=0, group=sub, async_op=True).wait()
    _close(t, both[0], "broadcast group_src")
    t = cg.tensor(_v(rank, (3,)))
    dist.reduce(t, dst=g1, op=R.MIN, group=sub)
    _close(t, both.min(0) if rank == g1 else _v(rank, (3,)), "reduce in a group")
    outs = [cg.zeros(3, dtype=cg.float64) for _ in range(2)]
    dist.all_gather(outs, cg.tensor(_v(rank, (3,))), group=sub)
    _close(outs[1], both[1], "all_gather in a group")
    flat = cg.zeros(6, dtype=cg.float64)
    dist.all_gather_into_tensor(flat, cg.tensor(_v(rank, (3,))), group=sub)
    _close(flat, both.reshape(-1), "all_gather_into_tensor in a group")
    part = cg.zeros(1, dtype=cg.float64)
    dist.reduce_scatter_tensor(part, cg.tensor(_v(rank, (2,))), group=sub)
    _close(part, [_v(g0, (2,))[me] + _v(g1, (2,))[me]], "reduce_scatter_tensor in a group")
    got = cg.zeros(3, dtype=cg.float64)
    dist.scatter(got, [cg.tensor(_v(7, (3,))), cg.tensor(_v(8, (3,)))] if rank == g1 else None,
                 src=g1, group=sub)
    _close(got, _v(7 + me, (3,)), "scatter in a group")
    outs = [cg.zeros(2, dtype=cg.float64) for _ in range(2)]
    dist.all_to_all(outs, [cg.tensor(_v(rank, (2,), k)) for k in range(2)], group=sub)
    _close(outs[1], _v(g1, (2,), me), "all_to_all in a group")
    # point to point inside the group: group ranks, global ranks in return
    peer = g1 if rank == g0 else g0
    t = cg.tensor(_v(rank, (2,)))
    if me == 0:
        dist.send(t, group_dst=1, group=sub)
    else:
        assert dist.recv(t, group=sub) == g0
        _close(t, _v(g0, (2,)), "recv in a group")
    objs = [None] * 2
    dist.all_gather_object(objs, rank, group=sub)
    assert objs == [g0, g1]
    dist.barrier(group=sub)
    dist.monitored_barrier(group=sub, timeout=timedelta(seconds=30))
    _raises(lambda: dist.broadcast(cg.zeros(2), src=peer if size == 2 else 1, group=sub)
            if size == 3 else dist.broadcast(cg.zeros(2), src=5, group=sub),
            "not part of group", exc=ValueError)
    _raises(lambda: dist.all_reduce(cg.zeros(2 + me), group=sub), "rank 0 float32[2]",
            "rank 1 float32[3]")


def compiled(rank, size):
    """reduce, gather, scatter and all_to_all_single inside a compiled function replay
    (mapped, then staged) and match numpy on each call's values; a compiled call that sends
    and receives runs eagerly, right each time."""

    @cg.compile
    def f(x):
        y = x * 2.0
        dist.reduce(y, dst=0)
        outs = [cg.zeros(2, 3) for _ in range(size)] if rank == 1 else None
        dist.gather(x + 1.0, outs, dst=1)
        got = cg.zeros(3)
        dist.scatter(got, [x[0] * float(r) for r in range(size)] if rank == 0 else None)
        ex = cg.zeros(size, 2)
        dist.all_to_all_single(ex, x.t().reshape(-1)[:2 * size].reshape(size, 2))
        return (y, got, ex) + tuple(outs or ())

    @cg.compile
    def ring(x):
        got = cg.zeros(3)
        w = dist.irecv(got, (rank - 1) % size)
        dist.send(x * 3.0, (rank + 1) % size)
        w.wait()
        return got + 1.0

    calls = 0
    for staged in ("0", "1"):
        os.environ["CLGRAPH_DISTRIBUTED_STAGED"] = staged
        for k in range(3):
            xs = [np.arange(6.0).reshape(2, 3) * (r + 1) + k for r in range(size)]
            res = f(cg.tensor(xs[rank], dtype=cg.float32))
            calls += 1
            _close(res[0], np.sum(xs, 0) * 2 if rank == 0 else xs[rank] * 2, "compiled reduce")
            _close(res[1], xs[0][0] * rank, "compiled scatter")
            _close(res[2], [xs[i].T.reshape(-1)[2 * rank:2 * rank + 2]
                            for i in range(size)], "compiled all_to_all_single")
            if rank == 1:
                for r in range(size):
                    _close(res[3 + r], xs[r] + 1, "compiled gather")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _close(ring(cg.tensor(xs[rank][0], dtype=cg.float32)),
                       xs[(rank - 1) % size][0] * 3 + 1, "compiled send/recv")
            assert calls > 1 or "runs eagerly" in str(caught[0].message), caught
    os.environ.pop("CLGRAPH_DISTRIBUTED_STAGED")
    plans = [e for e in f._entries.values() if e.plan is not None]
    assert len(plans) == 1 and plans[0].replays == calls - 1, plans


# --- autograd-aware collectives --------------------------------------------------------------


def functional(rank, size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _functional(rank, size)


def _leaf(rank, shape, k=0):
    return cg.tensor(_v(rank, shape, k), requires_grad=True)


def _weights(shape, k):
    """Fixed weights every rank knows: the loss is sum(w * y)."""
    return np.cos(np.arange(int(np.prod(shape))) + k).reshape(shape)


def _functional(rank, size):
    # all_reduce (SUM): y = sum_r x_r on every rank; the loss summed over ranks is
    # sum_r <w_r, y>, so each x gets sum_r w_r
    x = _leaf(rank, (2, 3))
    y = dfn.all_reduce(x)
    _close(y, sum(_v(r, (2, 3)) for r in range(size)), "nn all_reduce forward")
    (y * cg.tensor(_weights((2, 3), rank))).sum().backward()
    _close(x.grad, sum(_weights((2, 3), r) for r in range(size)), "nn all_reduce grad")
    # all_gather: x_r appears on every rank at position r: its grad is sum over ranks q of
    # rank q's weight for slot r
    x = _leaf(rank, (3,))
    ys = dfn.all_gather(x)
    assert len(ys) == size
    for r in range(size):
        _close(ys[r], _v(r, (3,)), "nn all_gather forward")
    loss = sum((ys[r] * cg.tensor(_weights((3,), 10 * rank + r))).sum() for r in range(size))
    loss.backward()
    _close(x.grad, sum(_weights((3,), 10 * q + rank) for q in range(size)), "nn all_gather grad")
    # broadcast from the last rank: only it gets a gradient, the sum of every rank's weights
    src = size - 1
    x = _leaf(rank, (4,))
    y = dfn.broadcast(x, src)
    _close(y, _v(src, (4,)), "nn broadcast forward")
    (y * cg.tensor(_weights((4,), rank))).sum().backward()
    _close(x.grad, sum(_weights((4,), r) for r in range(size)) if rank == src else np.zeros(4),
           "nn broadcast grad")
    # reduce_scatter: rank r's output is sum_q inputs_q[r]; inputs_q[j] gets rank j's weight
    xs = [_leaf(rank, (2,), j) for j in range(size)]
    y = dfn.reduce_scatter(cg.zeros(2, dtype=cg.float64), xs)
    _close(y, sum(_v(q, (2,), rank) for q in range(size)), "nn reduce_scatter forward")
    (y * cg.tensor(_weights((2,), rank))).sum().backward()
    for j in range(size):
        _close(xs[j].grad, _weights((2,), j), "nn reduce_scatter grad")
    # all_to_all with pair-dependent sizes: rank i's input j (i + j + 1 values) lands on rank j
    # at slot i; its grad is rank j's weight for slot i
    xs = [_leaf(rank, (rank + j + 1,), j) for j in range(size)]
    outs = [cg.zeros(i + rank + 1, dtype=cg.float64) for i in range(size)]
    ys = dfn.all_to_all(outs, xs)
    for i in range(size):
        _close(ys[i], _v(i, (i + rank + 1,), rank), "nn all_to_all forward")
    loss = sum((ys[i] * cg.tensor(_weights((i + rank + 1,), 10 * rank + i))).sum()
               for i in range(size))
    loss.backward()
    for j in range(size):
        _close(xs[j].grad, _weights((rank + j + 1,), 10 * j + rank), "nn all_to_all grad")
    _functional_rooted(rank, size)


def _functional_rooted(rank, size):
    dst = size - 1
    # reduce: every x gets dst's gradient (broadcast back)
    x = _leaf(rank, (3,))
    y = dfn.reduce(x, dst)
    _close(y, sum(_v(r, (3,)) for r in range(size)) if rank == dst else _v(rank, (3,)),
           "nn reduce forward")
    (y * cg.tensor(_weights((3,), rank))).sum().backward()
    _close(x.grad, _weights((3,), dst), "nn reduce grad")
    # gather to dst: x_r gets dst's weight for slot r
    x = _leaf(rank, (2,))
    ys = dfn.gather(x, dst=dst)
    if rank == dst:
        for r in range(size):
            _close(ys[r], _v(r, (2,)), "nn gather forward")
    sum((ys[r] * cg.tensor(_weights((2,), 10 * rank + r))).sum() for r in range(size)).backward()
    _close(x.grad, _weights((2,), 10 * dst + rank), "nn gather grad")
    # scatter from src 0: its tensor j gets rank j's weight; the others' get zeros
    xs = [_leaf(rank, (2,), j) for j in range(size)]
    y = dfn.scatter(xs, src=0)
    _close(y, _v(0, (2,), rank), "nn scatter forward")
    (y * cg.tensor(_weights((2,), rank))).sum().backward()
    for j in range(size):
        _close(xs[j].grad, _weights((2,), j) if rank == 0 else np.zeros(2), "nn scatter grad")
    # all_to_all_single, uneven: rank i sends j + 1 rows of 2 to rank j
    x = _leaf(rank, (size * (size + 1) // 2, 2))
    y = dfn.all_to_all_single(cg.zeros(size * (rank + 1), 2, dtype=cg.float64), x,
                              [rank + 1] * size, [j + 1 for j in range(size)])
    starts = [j * (j + 1) // 2 for j in range(size)]  # where rank i's part for j begins
    _close(y, np.concatenate([_v(i, x.shape)[starts[rank]:starts[rank] + rank + 1]
                              for i in range(size)]), "nn all_to_all_single forward")
    (y * cg.tensor(_weights(y.shape, rank))).sum().backward()
    want = np.concatenate([_weights((size * (j + 1), 2), j)[rank * (j + 1):(rank + 1) * (j + 1)]
                           for j in range(size)])
    _close(x.grad, want, "nn all_to_all_single grad")


# --- jobs that fail -------------------------------------------------------------------------


def fail_in_group(rank, size):
    """A rank raises while the others wait in a sub-group's collective: the job ends."""
    sub = dist.new_group(list(range(size)))
    dist.all_reduce(cg.ones(2), group=sub)
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.recv(cg.zeros(2), src=1)  # the others wait here until the job is aborted


if __name__ == "__main__":
    dist.init_process_group("mpi")
    for mode in sys.argv[1:]:
        globals()[mode](dist.get_rank(), dist.get_world_size())
        dist.barrier()
        if dist.get_rank() == 0:
            print(f"{mode} ok", flush=True)
    dist.destroy_process_group()
