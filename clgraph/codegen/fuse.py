"""Fused kernels for compiled graphs: elementwise segments and the kernels that run several
of them in one launch.

A segment is one elementwise group applied to concrete operands: the group's parameters
are buffers (named by an opaque key), literals baked into the source, or dynamic scalars
set at each replay. A fused kernel runs segments side by side: work-item ``g`` belongs to
the segment whose range holds it, so independent updates (every parameter of an optimizer
step, say) share one launch ("horizontal fusion"); a vertically fused chain is a segment
of its own. Pure functions of groups and values; never sees Tensor."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pyopencl as cl

from .. import dtypes as dt
from . import check_dtype
from .cache import build
from .emit import (
    _NARROW_HELPERS,
    _INT_HELPERS,
    needs_narrow_helpers,
    _NP_SCALAR,
    CONTIG,
    SCALAR,
    EwGroup,
    EwOp,
    emit,
    signature,
    vectorizable,
)


def group_params(group: EwGroup) -> list[tuple[str, str]]:
    """(kind, C type) of each parameter of the group's kernel (emit.signature)."""
    return [(p.kind, p.ctype) for p in signature(group)]


def group_io(group: EwGroup, values) -> tuple[list, list]:
    """Buffer keys a segment reads and writes."""
    kinds = group_params(group)
    bufs = [v for (kind, _), v in zip(kinds, values) if kind == "buf"]
    nin = sum(1 for _, lay in group.inputs if lay != SCALAR)
    return bufs[:nin], bufs[nin:]


@dataclass
class Segment:
    """``group`` with one value per parameter: ("buf", key), ("lit", number) or
    ("dyn", slot) for a scalar recomputed at each replay."""

    group: EwGroup
    values: list
    reads: set = field(default_factory=set)
    writes: set = field(default_factory=set)

    def __post_init__(self):
        r, w = group_io(self.group, [v[1] if v[0] == "buf" else None for v in self.values])
        self.reads, self.writes = set(r), set(w)

    @property
    def n(self) -> int:
        return int(self.values[0][1])

    def width(self) -> int:
        return self.group.width if vectorizable(self.group) else 1

    def items(self) -> int:
        return -(-self.n // self.width())

    def param_bytes(self) -> int:
        return 8 * sum(1 for v in self.values if v[0] in ("buf", "dyn"))


def _literal(value, ctype: str) -> str:
    if ctype in ("float", "double"):
        v = float(np.float32(value)) if ctype == "float" else float(value)
        if math.isnan(v):
            return "NAN"
        if math.isinf(v):
            return "INFINITY" if v > 0 else "(-INFINITY)"
        return v.hex() + ("f" if ctype == "float" else "")
    return f"(({ctype}){int(value)})" if ctype != "long" else f"{int(value)}L"


@dataclass
class FusedKernel:
    kernel: object
    name: str
    source: str
    buffers: list  # buffer key of each buffer parameter, in order
    dyn: list  # (segment index, value slot, numpy type) of each dynamic scalar parameter
    global_size: int
    local: int
    fp64: bool = False
    ints: bool = False
    program_source: str = ""


_built: dict = {}


def fused_kernel(segments: list[Segment], local: int) -> FusedKernel:
    """One kernel running ``segments`` side by side (one segment: a plain fused kernel);
    build_all() builds it."""
    buffers: list = []
    bindex: dict = {}
    dyn: list = []
    funcs: dict = {}
    calls = []
    start = 0
    fp64 = False
    ints = False
    for si, seg in enumerate(segments):
        g = seg.group
        fname = funcs.get(g)
        if fname is None:
            fname = funcs[g] = f"CG_SEG_FN{len(funcs)}"
        kinds = group_params(g)
        args = []
        for (kind, ctype), (vk, v) in zip(kinds, seg.values):
            if vk == "buf":
                b = bindex.get(v)
                if b is None:
                    b = bindex[v] = len(buffers)
                    buffers.append(v)
                args.append(f"(__global {ctype}*)b{b}")
            elif vk == "dyn":
                args.append(f"d{len(dyn)}")
                dyn.append((si, v, ctype))
            else:
                args.append(_literal(v, ctype))
        end = start + seg.items()
        idx = "g" if start == 0 else f"g - {start}L"
        calls.append(f"  if (g < {end}L) {{ {fname}({', '.join(args)}, {idx}); return; }}")
        start = end
        names = {d for d, _ in g.inputs} | {o.out for o in g.ops} | {d for _, d, _ in g.outputs}
        names |= {c for o in g.ops for c in o.casts}
        fp64 |= "float64" in names
        ints |= any(dt._BY_NAME[n].kind == 1 for n in names)
    lines = []
    for g, fname in funcs.items():
        src, _ = emit(g, fname, as_function=True)
        src = src.replace(_INT_HELPERS, "").replace(_NARROW_HELPERS, "").replace(
            "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n", "")
        lines.append(src)
    params = [f"__global uchar* b{i}" for i in range(len(buffers))]
    params += [f"const {ctype} d{i}" for i, (_, _, ctype) in enumerate(dyn)]
    lines.append(f"__kernel void CG_KERNEL_NAME({', '.join(params)}) {{\n"
                 f"  const long g = get_global_id(0);\n" + "\n".join(calls) + "\n}")
    body = "\n".join(lines) + "\n"
    digest = hashlib.sha1(body.encode()).hexdigest()[:8]
    ops = "_".join(dict.fromkeys(o.name for s in segments for o in s.group.ops))[:40]
    name = f"cgf_{ops}_{digest}"
    body = body.replace("CG_KERNEL_NAME", name).replace("CG_SEG_FN", f"{name}_s")
    gsize = max(-(-start // local) * local, local)
    return FusedKernel(None, name, body, buffers, [(s, v, _NP_SCALAR[c]) for s, v, c in dyn],
                       gsize, local, fp64, ints)


def build_all(dev, kernels: list[FusedKernel]) -> None:
    """Build the fused kernels of one plan as a single OpenCL program (a program costs a
    fixed time to build or to load from the disk cache, whatever its size) and give each
    its own kernel object."""

    bodies = list(dict.fromkeys(k.source for k in kernels))
    if not bodies:
        return

    if any(k.fp64 for k in kernels):
        check_dtype(dev, dt.float64)  # a clear error before the OpenCL compiler's
    head = []
    if any(k.fp64 for k in kernels):
        head.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
    if any(k.ints for k in kernels):
        head.append(_INT_HELPERS)
    if any(needs_narrow_helpers(k.source) for k in kernels):
        head.append(_NARROW_HELPERS)
    source = "\n".join(head + bodies)
    key = (dev.index, source)
    prg = _built.get(key)
    if prg is None:
        prg = _built[key] = build(dev, source, ("-cl-mad-enable",), kernels[0].name)
    for k in kernels:
        k.kernel = cl.Kernel(prg, k.name)  # its own object: a plan sets its arguments once
        k.program_source = source


def batch(steps, budget: int, is_segment) -> list:
    """Order ``steps`` (each with .reads and .writes sets) into batches: a segment joins the
    earliest batch of segments after everything it depends on (read after write, write after
    read or write), so independent segments share a launch; any other step is a batch of its
    own in program order. ``budget`` caps the parameter bytes of one fused kernel."""
    batches: list[dict] = []
    for st in steps:
        dep = -1
        for i in range(len(batches) - 1, -1, -1):
            b = batches[i]
            if (st.reads & b["writes"]) or (st.writes & (b["reads"] | b["writes"])):
                dep = i
                break
        placed = False
        if is_segment(st):
            for i in range(dep + 1, len(batches)):
                b = batches[i]
                if b["seg"] and b["bytes"] + st.param_bytes() <= budget and len(b["steps"]) < 64:
                    b["steps"].append(st)
                    b["bytes"] += st.param_bytes()
                    b["reads"] |= st.reads
                    b["writes"] |= st.writes
                    placed = True
                    break
        if not placed:
            batches.append({"seg": is_segment(st), "steps": [st], "reads": set(st.reads),
                            "writes": set(st.writes),
                            "bytes": st.param_bytes() if is_segment(st) else 0})
    return [b["steps"] for b in batches]


# --- vertical fusion: one segment after another, in registers ------------------------------


def split(seg: Segment):
    """(n, shape values, inputs [(dtype, layout, values)], outputs [(value index, dtype,
    layout, values)]) of a segment: its values grouped by the operand each belongs to in
    the kernel's signature."""
    g, r = seg.group, seg.group.ndim
    per = [[] for _ in range(len(g.inputs) + len(g.outputs))]
    for p, v in zip(signature(g), seg.values):
        if p.operand >= 0:
            per[p.operand].append(v)
    nin = len(g.inputs)
    ins = [(dname, lay, per[k]) for k, (dname, lay) in enumerate(g.inputs)]
    outs = [(vi, dname, lay, per[nin + k]) for k, (vi, dname, lay) in enumerate(g.outputs)]
    return seg.values[0], list(seg.values[1:1 + r]), ins, outs


def join(n, sh, ins, ops, outs, width, in_place) -> Segment:
    group = EwGroup(tuple((d, lay) for d, lay, _ in ins), tuple(ops),
                    tuple((vi, d, lay) for vi, d, lay, _ in outs), len(sh), width, in_place)
    values = [n] + list(sh)
    for *_, v in ins:
        values += v
    for *_, v in outs:
        values += v
    return Segment(group, values)


def _strided_only_c(ins, outs) -> bool:
    return all(lay in (CONTIG, SCALAR) for _, lay, _ in ins) and all(
        o[2] == CONTIG for o in outs)


def can_merge(a: Segment, b: Segment, key) -> bool:
    """Whether b can take a's output ``key`` from registers: the same iteration space, a
    stores it contiguously and b reads it only at the same index."""
    if a.values[0] != b.values[0] or (b.writes & a.reads):
        return False
    _, sha, ia, oa = split(a)
    _, shb, ib, ob = split(b)
    if sha and shb and sha != shb:
        return False
    if (sha and not shb and not _strided_only_c(ib, ob)) or (
            shb and not sha and not _strided_only_c(ia, oa)):
        return False
    produced = {tuple(v[:2]) for _, _, lay, v in oa if lay == CONTIG}
    if not any(p[0] == ("buf", key) for p in produced):
        return False
    # b reads whatever a writes (key and a's other results) at the same index only: the
    # merged kernel passes those values in registers
    for _, lay, v in ib:
        if lay != SCALAR and v[0][1] in a.writes and (
                lay != CONTIG or tuple(v[:2]) not in produced):
            return False
    return True


def merge(a: Segment, b: Segment, key) -> Segment:
    """One segment computing a then b, b reading a's results (``key`` and any other it
    reads) from registers."""


    na, sha, ia, oa = split(a)
    _, shb, ib, ob = split(b)
    vdt = [d for d, _, _ in ia] + [o.out for o in a.group.ops]
    ins = list(ia)
    produced = {tuple(v[:2]): vi for vi, _, lay, v in oa if lay == CONTIG}
    ops = []
    bmap = []
    pending = []  # b inputs read from a's registers: (b input index, a value, stored dtype)
    for j, (d, lay, v) in enumerate(ib):
        if lay != SCALAR and tuple(v[:2]) in produced:
            bmap.append(None)
            pending.append((j, produced[tuple(v[:2])], d))
            continue
        found = next((k for k, x in enumerate(ins) if x == (d, lay, v)), None)
        if found is None:
            ins.append((d, lay, v))
            found = len(ins) - 1
        bmap.append(("in", found))
    NI = len(ins)

    def amap(vi):
        return vi if vi < len(ia) else NI + vi - len(ia)

    for o in a.group.ops:
        ops.append(replace(o, args=tuple(amap(x) for x in o.args)))
    for j, avi, d in pending:
        src = amap(avi)
        if vdt[avi] != d:  # the value as b would have loaded it
            ops.append(EwOp("to", "{x}", (src,), (d,), d, ("x",), True))
            src = NI + len(ops) - 1
        bmap[j] = ("v", src)
    base = NI + len(ops)

    def bm(vi):
        if vi < len(ib):
            return bmap[vi][1]
        return base + vi - len(ib)

    for o in b.group.ops:
        ops.append(replace(o, args=tuple(bm(x) for x in o.args)))
    outs = [(amap(vi), d, lay, v) for vi, d, lay, v in oa]
    outs += [(bm(vi), d, lay, v) for vi, d, lay, v in ob]
    sh = sha or shb
    return join(na, sh, ins, ops, outs, min(a.group.width, b.group.width),
                a.group.in_place or b.group.in_place)


def drop_outputs(seg: Segment, keys) -> Segment | None:
    """The segment without the outputs stored into ``keys`` (None when nothing is left)."""
    n, sh, ins, outs = split(seg)
    kept = [o for o in outs if o[3][0][1] not in keys]
    if len(kept) == len(outs):
        return seg
    if not kept:
        return None
    return join(n, sh, ins, seg.group.ops, kept, seg.group.width, seg.group.in_place)


# --- segments inlined into other kernels (reduction prologues, reduction and matmul
# epilogues) ------------------------------------------------------------------------------


def _single_float_type(seg: Segment) -> str | None:
    """The one floating dtype every value of ``seg`` has (float32 or float64), or None when
    it mixes types, casts, takes scalars set at replay or has ops without a vector form."""
    g = seg.group
    names = {d for d, _ in g.inputs} | {o.out for o in g.ops} | {d for _, d, _ in g.outputs}
    names |= {c for o in g.ops for c in o.casts}
    if len(names) != 1 or any(v[0] == "dyn" for v in seg.values) or not all(
            o.vec for o in g.ops):
        return None
    name = next(iter(names))
    return name if name in ("float32", "float64") else None


def _value_fn(g: EwGroup, name: str, T: str, head: str, params: list, loads: list,
              result: int) -> list[str]:
    """An inline C function computing the group's value ``result`` of type T from one
    expression per input (``loads``)."""
    lines = [f"inline {T} {name}({head}" + "".join(", " + p for p in params) + ") {"]
    for k, expr in enumerate(loads):
        lines.append(f"  const {T} v{k} = {expr};")
    base = len(loads)
    for j, o in enumerate(g.ops):
        sub = {"T": T}
        for an, a in zip(o.argnames, o.args):
            sub[an] = f"v{a}"
        lines.append(f"  const {T} v{base + j} = ({T})({o.expr.format(**sub)});")
    lines += [f"  return v{result};", "}"]
    return lines


def _inline(seg: Segment, widths, fname: str, head: str, index: str, rebase: int = 0,
            key=None, key_off=None, prefix="e", out_key=None):
    """C functions ``<fname><w>(<head>, ...)`` for each width w computing ``seg``'s single
    contiguous output at element ``index`` + ``rebase`` from its inputs at the same
    element: buffers (parameters ``prefix``<k>, ``prefix``o<k>), contiguous or strided
    views (broadcasts: an element's address follows from its coordinates in the segment's
    shape), literals, and ``key`` (at offset ``key_off``), which is the function's
    argument x. Returns (source, parameter declarations, values) or None when
    the segment does not fit (mixed dtypes; several outputs unless ``out_key`` names the
    one to compute)."""
    g = seg.group
    _, sh, ins, outs = split(seg)
    shape = [int(v[1]) for v in sh]
    helpers: list[str] = []
    if out_key is not None:
        outs = [o for o in outs if o[3][0] == ("buf", out_key)]
    if len(outs) != 1 or outs[0][2] != CONTIG:
        return None
    name = _single_float_type(seg)
    if name is None:
        return None
    ctype = dt._BY_NAME[name].compute
    params, pvals = [], []
    loads = {w: [] for w in widths}
    found = key is None
    for k, (d, lay, v) in enumerate(ins):
        if lay == SCALAR:
            lit = _literal(v[0][1], ctype)
            for w in widths:
                loads[w].append(lit if w == 1 else f"(({ctype}{w})({lit}))")
            continue
        if key is not None and v[0] == ("buf", key):
            if lay != CONTIG:
                return None
            if v[1][1] != key_off:
                return None
            found = True
            for w in widths:
                loads[w].append("x")
            continue
        e, eo = f"{prefix}{k}", f"{prefix}o{k}"
        params += [f"__global const {ctype}* restrict {e}", f"const long {eo}"]
        if lay == CONTIG:
            pvals += [v[0][1], int(v[1][1]) + rebase]
            for w in widths:
                loads[w].append(f"{e}[{eo} + {index}]" if w == 1 else
                                f"vload{w}(0, {e} + {eo} + {index})")
            continue
        if len(shape) != len(v) - 2:
            return None
        pvals += [v[0][1], int(v[1][1])]
        strides = [int(x[1]) for x in v[2:]]
        at = f"{fname}_at{k}"
        helpers += _strided_loader(at, ctype, shape, strides, widths)
        for w in widths:
            loads[w].append(f"{at}_{w}({e}, {eo}, {index} + {rebase})")
    if not found:
        return None
    src = list(helpers)
    for w in widths:
        T = ctype if w == 1 else f"{ctype}{w}"
        src += _value_fn(g, f"{fname}{w}", T, head.format(T=T), params, loads[w],
                         outs[0][0])
    return "\n".join(src) + "\n", tuple(params), pvals


def _strided_loader(name: str, ctype: str, shape: list, strides: list, widths) -> list[str]:
    """C for ``<name>_<w>(e, eo, i)``: elements i..i+w-1 (in the segment's row-major
    order over ``shape``) of a strided view at e + eo. A run inside one innermost row is
    one vector load (stride 1), one broadcast element (stride 0) or a gather; a run across
    rows takes each lane's coordinates."""
    lines = [f"inline long {name}(long i) {{", "  long a = 0;"]
    for d in reversed(range(len(shape))):
        if d:
            if strides[d]:
                lines.append(f"  a += (i % {shape[d]}L) * {strides[d]}L;")
            lines.append(f"  i /= {shape[d]}L;")
        elif strides[d]:
            lines.append(f"  a += i * {strides[d]}L;")
    lines += ["  return a;", "}"]
    last, sl = shape[-1], strides[-1]
    for w in widths:
        head = f"inline {ctype}{'' if w == 1 else w} {name}_{w}(const __global {ctype}* e, " \
               "const long eo, const long i)"
        if w == 1:
            lines += [head + " {", f"  return e[eo + {name}(i)];", "}"]
            continue
        if sl == 1:
            run = f"vload{w}(0, e + eo + {name}(i))"
        elif sl == 0:
            run = f"(({ctype}{w})(e[eo + {name}(i)]))"
        else:
            run = (f"(({ctype}{w})(" + ", ".join(f"e[eo + {name}(i) + {j * sl}L]"
                                                  for j in range(w)) + "))")
        lanes = f"(({ctype}{w})(" + ", ".join(f"e[eo + {name}(i + {j})]" for j in range(w)) + "))"
        lines += [head + " {", f"  return (i % {last}L) + {w} <= {last}L ? {run} : {lanes};",
                  "}"]
    return lines


def prologue(seg: Segment, key, widths):
    """C functions ``cg_pro<w>(pos, ...)`` for each width w computing the element(s) that
    ``seg`` would store at position ``pos`` of its output ``key``, from its inputs at the
    same element, so that a reduction reads the segment's inputs instead of its result.
    Returns (source, parameter declarations, parameter values) or None when
    the segment does not fit."""
    outs = [o for o in split(seg)[3] if o[3][0] == ("buf", key)]
    if len(outs) != 1:
        return None
    r = _inline(seg, widths, "cg_pro", "const long pos", "pos", rebase=-int(outs[0][3][1][1]),
                prefix="p", out_key=key)
    return r if r is not None and r[1] else None  # no buffer to read: nothing to gain


def epilogue(seg: Segment, key, r_off: int, rows: int, widths):
    """C functions ``cg_epi<w>(v, idx, ...)`` computing what ``seg`` stores at element idx
    when its input ``key`` (a kernel's result, ``rows`` elements at offset ``r_off``, read
    at the segment's own index) holds v there, and the buffer and offset of that output:
    the kernel (a reduction, a matmul) stores the segment's result in place of its own.
    Returns (source, parameter declarations, parameter values, (output key, output
    offset)); the kernel's signature types the parameters) or None when the segment does not fit."""
    n, _, _, outs = split(seg)
    if n[1] != rows:
        return None
    r = _inline(seg, widths, "cg_epi", "const {T} x, const long idx", "idx", key=key,
                key_off=r_off)
    if r is None:
        return None
    (_, obuf), (_, ooff) = outs[0][3][:2]
    return (*r, (obuf, int(ooff)))
