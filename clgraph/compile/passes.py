"""The graph passes of a compiled call: plain functions from steps to steps.

A Step is one thing the traced call did, in program order: an elementwise segment
("seg", fusable), a kernel launch ("kernel", its payload the trace's Launch), a host upload
("write"), a device copy ("copy"), an index check ("index") or a host call ("host", a
collective: always kept, never folded, and no kernel moves across it against the buffers
it reads and writes), with the buffers it reads and writes and the trace events it came
from. Passes remove common subexpressions, dead code
and work on constants, fuse elementwise segments vertically and into the loads or store of
a reduction or a matmul. They know codegen (to rebuild fused kernels) and the op tables of
reductions and matmuls; never tensors, the runtime, the plan or replay.
"""

from __future__ import annotations

from dataclasses import replace

import pyopencl as cl

from .. import codegen
from ..codegen import fuse
from ..codegen import reduce as rc
from ..ops import linalg


class Step:
    """One step of a traced call. ``refresh``: indices of the plan's refreshers that give
    its scalar arguments anew at each replay (empty: its arguments are fixed)."""

    __slots__ = ("kind", "payload", "reads", "refresh", "seg", "src", "writes")

    def __init__(self, kind, payload, reads, writes, src, seg=None, refresh=()):
        self.kind = kind
        self.payload = payload
        self.seg = seg
        self.reads = set(reads)
        self.writes = set(writes)
        self.src = set(src)
        self.refresh = refresh

    def param_bytes(self):
        return self.seg.param_bytes()


def segment_step(seg, src, refresh=()) -> Step:
    return Step("seg", None, seg.reads, seg.writes, src, seg=seg, refresh=refresh)


def arg_values(args) -> list:
    """A launch's arguments as a Segment's values: ("buf", buffer) or ("lit", scalar)."""
    return [("buf", a) if isinstance(a, cl.MemoryObjectHolder) else ("lit", a) for a in args]


def optimize(steps: list, internal: set, dev) -> tuple[list, set]:
    """All passes, in order, over the steps of a call whose scratch buffers are
    ``internal``; returns the steps and the buffers of constants kept from the trace."""
    steps = cse(steps, internal)
    steps = fuse_vertical(steps)
    const_bufs, const_steps = constants(steps, internal)
    steps = [s for s in steps if not (s.src and s.kind != "index" and s in const_steps)]
    internal = internal - const_bufs
    steps = dead_code(steps, internal)
    steps = matmul_epilogues(steps, internal, dev)
    steps = reduce_prologues(steps, internal, dev)
    steps = reduce_epilogues(steps, internal, dev)
    # a segment a reduction now recomputes may join its other readers
    return dead_code(fuse_vertical(steps), internal), const_bufs


def fuse_vertical(steps: list) -> list:
    """Merge elementwise segments into their consumers when the consumer reads the value at
    the same index; stop at anything that reads the value otherwise or writes the inputs."""
    out: list = []
    open_prod: dict = {}  # buffer -> index in ``out`` of the open segment storing it
    open_reads: dict = {}  # buffer -> indices of open segments reading it

    def close(j):
        st = out[j]
        if st is None:
            return
        for b in st.writes:
            if open_prod.get(b) == j:
                del open_prod[b]
        for b in st.reads:
            s = open_reads.get(b)
            if s:
                s.discard(j)

    for st in steps:
        if st.kind == "seg" and not st.refresh:
            merged = True
            while merged:
                merged = False
                for b in list(st.reads):
                    j = open_prod.get(b)
                    if j is None or out[j] is None or out[j].refresh:
                        continue
                    a = out[j]
                    if not fuse.can_merge(a.seg, st.seg, b):
                        continue
                    seg = fuse.merge(a.seg, st.seg, b)
                    close(j)
                    out[j] = None
                    st = segment_step(seg, a.src | st.src)
                    merged = True
                    break
        for b in st.reads:
            j = open_prod.get(b)
            if j is not None:
                close(j)
        for b in st.writes:
            for j in list(open_reads.get(b, ())):
                close(j)
            j = open_prod.get(b)
            if j is not None:
                close(j)
        out.append(st)
        if st.kind == "seg":
            j = len(out) - 1
            for b in st.writes:
                open_prod[b] = j
            for b in st.reads:
                open_reads.setdefault(b, set()).add(j)
    return [s for s in out if s is not None]


def _rename(st: Step, alias: dict) -> Step:
    """The step with buffers renamed (common subexpressions share one result)."""
    if not (st.reads | st.writes) & alias.keys():
        return st
    r = lambda b: alias.get(b, b)
    if st.kind == "seg":
        seg = fuse.Segment(st.seg.group, [("buf", r(v[1])) if v[0] == "buf" else v
                                          for v in st.seg.values])
        return segment_step(seg, st.src, st.refresh)
    p = st.payload
    if st.kind == "kernel":
        p = p._replace(args=[r(a) if isinstance(a, cl.MemoryObjectHolder) else a
                             for a in p.args])
    elif st.kind == "write":
        p = p._replace(buf=r(p.buf))
    elif st.kind == "copy":
        p = p._replace(src=r(p.src), dst=r(p.dst))
    elif st.kind == "host":
        p = p._replace(refs=[x._replace(buf=r(x.buf)) for x in p.refs],
                       reads=[r(b) for b in p.reads], writes=[r(b) for b in p.writes])
    else:
        p = p._replace(ref=p.ref._replace(buf=r(p.ref.buf)))
    return Step(st.kind, p, {r(b) for b in st.reads}, {r(b) for b in st.writes}, st.src,
                seg=st.seg, refresh=st.refresh)


def _cse_signature(st: Step, gen: dict):
    """What makes two pure steps compute the same: kernel, launch geometry, literal
    arguments and inputs at their write generation; and the step's results, in order."""
    slots: dict = {}
    if st.kind == "seg":
        vals = st.seg.values
        head = st.seg.group
    else:
        vals = arg_values(st.payload.args)
        head = (st.payload.kernel, st.payload.gsize, st.payload.lsize)
    sig = [head]
    for v in vals:
        if v[0] != "buf":
            sig.append(v)
        elif v[1] in st.writes:
            sig.append(("out", slots.setdefault(v[1], len(slots))))
        else:
            sig.append(("in", v[1], gen.get(v[1], 0)))
    return tuple(sig), slots


def cse(steps: list, internal: set) -> list:
    """Common subexpressions: a launch of the same kernel on the same (unchanged) inputs
    as an earlier one, writing only fresh buffers, reuses the earlier results."""
    alias: dict = {}
    gen: dict = {}
    seen: dict = {}
    out = []
    writers: dict = {}
    for st in steps:
        for b in st.writes:
            writers[b] = writers.get(b, 0) + 1
    for st in steps:
        st = _rename(st, alias)
        # results written once (never accumulated into later) can be shared
        pure = st.kind in ("seg", "kernel") and not st.refresh and st.writes and \
            st.writes <= internal and all(writers[b] == 1 for b in st.writes)
        if pure:
            sig, slots = _cse_signature(st, gen)
            try:
                prev = seen.get(sig)
            except TypeError:
                sig, prev = None, None
            if prev is not None:
                for b, k in slots.items():
                    alias[b] = prev[k]
                continue
            if sig is not None:
                seen[sig] = list(slots)
        for b in st.writes:
            gen[b] = gen.get(b, 0) + 1
        out.append(st)
    return out


def _readers_writers(steps: list) -> tuple[dict, dict]:
    readers: dict = {}
    writers: dict = {}
    for i, st in enumerate(steps):
        for b in st.reads - st.writes:
            readers.setdefault(b, []).append(i)
        for b in st.writes:
            writers.setdefault(b, []).append(i)
    return readers, writers


def _seg_at(out: list, j: int, between: list, untouched: set):
    """The elementwise step at ``out[j]``, if no step in ``between`` writes ``untouched``
    (the operands a fused kernel reads at its new place); else None."""
    st = out[j]
    if st is None or st.kind != "seg" or st.refresh:
        return None
    if any(s is not None and s.writes & untouched for s in between):
        return None
    return st


def _sole_reader_seg(out: list, i: int, st: Step, r, internal: set, readers: dict):
    """The elementwise step that is the only reader of ``r``, the internal result of
    ``out[i]``, when it may move into ``out[i]``'s store (nothing between them writes what
    ``out[i]`` reads); else None. Returns (its index, the step)."""
    if r not in internal or len(readers.get(r, ())) != 1:
        return None, None
    j = readers[r][0]
    seg_step = _seg_at(out, j, out[i + 1:j], st.reads) if j > i else None
    return j, seg_step


def _reductions(steps: list):
    """(index, step, spec, mode) of each reduction kernel a pass may rebuild."""
    for i, st in enumerate(steps):
        found = rc.KERNELS.get(st.payload.kernel) if st.kind == "kernel" else None
        if found is not None and not st.refresh:
            yield (i, st, *found)


def reduce_prologues(steps: list, internal: set, dev) -> list:
    """Fuse an elementwise segment whose result only a reduction reads (x * x before a
    sum, the difference and square of a mean squared error) into the reduction's loads:
    the segment's result never reaches memory."""
    readers, writers = _readers_writers(steps)
    out = list(steps)
    for i, st, spec, mode in _reductions(steps):
        if (spec.kind not in ("fold", "welford", "arg", "lse") or spec.pro_params
                or mode == "combine"):
            continue
        args = st.payload.args
        xi = codegen.arg(st.payload.kernel, "in")
        x = args[xi]
        if x not in internal or i not in readers.get(x, ()) or len(writers.get(x, ())) != 1:
            continue
        j = writers[x][0]
        # the reduction reads the segment's operands in its place
        seg_step = _seg_at(out, j, out[j + 1:i], out[j].reads) if j < i and out[j] else None
        if seg_step is None:
            continue
        # read elsewhere too (softmax's exp(x - max) by the sum and the division): the
        # reduction recomputes it from at most two tensors; the segment stays for the
        # others and a second vertical fusion pass can move it into them
        others = [steps[r] for r in readers[x] if r != i]
        shared = bool(others) or len(seg_step.seg.writes) > 1
        if shared and (len(seg_step.seg.reads) > 2 or any(o.kind != "seg" for o in others)):
            continue
        # one program holds the scalar, inner and outer kernels: every width they load
        pro = fuse.prologue(seg_step.seg, x, sorted({1, spec.width}))
        if pro is None:
            continue
        source, params, pvals = pro
        prog = rc.reduce_program(dev, replace(spec, prologue=source, pro_params=params))
        new_args = list(args) + pvals
        new_args[xi] = pvals[0]  # a valid buffer: the kernel reads the prologue's instead
        if not shared:
            out[j] = None
        launch = st.payload._replace(kernel=prog.kernels[mode], name=prog.name, args=new_args)
        out[i] = Step("kernel", launch, (st.reads - {x}) | seg_step.reads, st.writes,
                      st.src | seg_step.src)
    return [s for s in out if s is not None]


def _writes_partials(st: Step) -> bool:
    """Stage 1 of a split reduction: given the output too, but only writes partials."""
    found = rc.KERNELS.get(st.payload.kernel) if st.kind == "kernel" else None
    return found is not None and rc.stage1(st.payload.kernel, st.payload.args)


def reduce_epilogues(steps: list, internal: set, dev) -> list:
    """Fuse an elementwise segment that only reads a reduction's result (and scalars or
    tensors of the result's shape) into the reduction's final store: 1 / sqrt(var + eps)
    of a normalization, the sqrt of a norm, a loss's scale."""
    readers, writers = _readers_writers(steps)
    out = list(steps)
    for i, st, spec, mode in _reductions(steps):
        if spec.kind not in ("fold", "welford", "lse") or spec.epilogue:
            continue
        args = st.payload.args
        if rc.stage1(st.payload.kernel, args):
            continue  # its combine kernel stores the result
        oi, ooi = codegen.arg(st.payload.kernel, "out"), codegen.arg(st.payload.kernel, "ooff")
        r = args[oi]
        if any(w != i and not _writes_partials(steps[w]) for w in writers.get(r, ())):
            continue
        j, seg_step = _sole_reader_seg(out, i, st, r, internal, readers)
        if seg_step is None:
            continue
        epi = fuse.epilogue(seg_step.seg, r, args[ooi], rc.out_rows(st.payload.kernel, args),
                            sorted({1, spec.width}))
        if epi is None:
            continue
        source, params, pvals, (obuf, ooff) = epi
        prog = rc.reduce_program(dev, replace(spec, epilogue=source, epi_params=params))
        k = prog.combine if mode == "combine" else prog.kernels[mode]
        new_args = list(args) + pvals
        new_args[oi], new_args[ooi] = obuf, ooff
        nm = prog.name + ("_combine" if mode == "combine" else "")
        out[i] = None
        out[j] = Step("kernel", st.payload._replace(kernel=k, name=nm, args=new_args),
                      (st.reads | seg_step.reads) - {r}, (st.writes - {r}) | {obuf},
                      st.src | seg_step.src)
    return [s for s in out if s is not None]


def matmul_epilogues(steps: list, internal: set, dev) -> list:
    """Fuse an elementwise segment that consumes a float32 matmul's product (bias add,
    activation) into the matmul's store: the product never reaches memory."""
    readers, _ = _readers_writers(steps)
    out = list(steps)
    for i, st in enumerate(steps):
        if st.kind != "kernel" or st.payload.kernel not in linalg.EPILOGUE_READY or st.refresh:
            continue
        launch = st.payload
        at = linalg.MATMUL_ARGS
        c, c_off, M, N = (launch.args[at[k]] for k in ("C", "c_off", "M", "N"))
        if launch.gsize[2] != 1:
            continue
        j, seg_step = _sole_reader_seg(out, i, st, c, internal, readers)
        if seg_step is None:
            continue
        ready = linalg.EPILOGUE_READY[launch.kernel]
        epi = fuse.epilogue(seg_step.seg, c, c_off, M * N, linalg.epilogue_widths(ready))
        if epi is None:
            continue
        source, params, pvals, (obuf, ooff) = epi
        k = linalg.epilogue_kernel(dev, ready, source, params)
        new_args = list(launch.args) + pvals
        new_args[at["C"]], new_args[at["c_off"]] = obuf, ooff
        reads = (st.reads | seg_step.reads) - {c}
        out[i] = None
        launch = launch._replace(kernel=k, name=launch.name + "_epilogue", args=new_args)
        out[j] = Step("kernel", launch, reads, {obuf}, st.src | seg_step.src)
    return [s for s in out if s is not None]


def constants(steps: list, internal: set) -> tuple[set, set]:
    """Steps that compute only from constants made inside the call (uploads of literals,
    fills): their results are kept from the trace and not recomputed. Returns (their
    buffers, the steps)."""
    banned: set = set()
    while True:
        const_bufs, const_steps = set(), set()
        for st in steps:
            if st.kind in ("index", "host") or st.refresh:
                continue
            if st.writes and st.writes <= internal - banned and st.reads <= const_bufs:
                const_steps.add(st)
                const_bufs |= st.writes
        bad = set()
        for st in steps:
            if st not in const_steps:
                bad |= st.writes & const_bufs
        if not bad:
            return const_bufs, const_steps
        banned |= bad


def dead_code(steps: list, internal: set) -> list:
    """Drop steps whose results nothing uses, and stores nothing reads."""
    needed: set = set()
    kept = []
    for st in reversed(steps):
        if st.kind in ("index", "host"):  # a collective runs on every rank, used or not
            kept.append(st)
            needed |= st.reads
            continue
        side = st.writes - internal
        live = st.writes & needed
        if not side and not live:
            continue
        if st.kind == "seg":
            dead = (st.writes & internal) - needed
            if dead:
                seg = fuse.drop_outputs(st.seg, dead)
                st = segment_step(seg, st.src, st.refresh)
        kept.append(st)
        needed |= st.reads
    kept.reverse()
    return kept
