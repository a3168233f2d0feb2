"""OpenCL C for reductions, softmax and scans, generated from a ``ReduceSpec``.

A reduction sees its input as kept dims (one output element each, "rows") times reduced
dims; sizes and strides arrive as kernel arguments, so one program serves every shape with
the same number of collapsed dims. The op supplies scalar expressions (the initial value,
how two accumulators combine, a prologue on each element, an epilogue on the result) and
this module owns the loops: the walk over the reduced range in contiguous runs of the
innermost reduced dim, explicit vector accumulators, the split of long rows into chunks
(stage 1 writes partial states, a combine kernel in the same program finishes them) and
the work-group tree used on GPUs.

Kernel shapes (``Mode``; every vector is an explicit OpenCL vector type, as PoCL only
vectorizes those):
- ``inner``: one work-item per row, ``unroll`` vector accumulators along the reduced axis
  (stride 1), merged lane by lane at the end.
- ``outer``: one work-item per tile of ``tile`` x ``width`` adjacent outputs, vectors
  along the kept innermost axis (stride 1): reductions over a leading axis read whole
  cache lines per reduced step.
- ``scalar``: one work-item per row, any strides.
- ``tree``: one work-group per row (or chunk), a local-memory tree; for GPUs.

Imports dtypes and the build cache only; never sees Tensor."""

from __future__ import annotations

import copy

import hashlib
from dataclasses import dataclass

import numpy as np

from .. import dtypes as dt
from .cache import POSITIONS, build, get_kernel, set_signature
from .emit import _NARROW_HELPERS, NARROW, load, needs_narrow_helpers, store
from .kernelsig import kernel_signature


class Mode:
    """Kernel shapes: a ReduceSpec's ``mode``, the keys of ReduceProgram.kernels and the
    second field of KERNELS' values. Plain strings: a spec's repr names and hashes its
    program, so these spellings are part of every generated kernel's name."""

    SCALAR = "scalar"
    INNER = "inner"
    OUTER = "outer"
    TREE = "tree"
    CPU = "cpu"  # a spec whose program holds its scalar, inner and outer kernels
    APPLY = "apply"  # the second kernel of a split softmax
    COMBINE = "combine"  # stage 2 of a split reduction (not a spec's mode)


@dataclass(frozen=True)
class ReduceSpec:
    """One reduction program. ``kind`` is fold | arg | welford | lse | softmax |
    log_softmax | cumsum. Expressions are format strings: ``init`` and ``combine`` ({a},
    {b}) over the accumulator, ``pre`` ({x}; {T} its type, {to_acc} a conversion, {P} the
    scalar parameter) maps an element converted to ``xtype`` to the accumulator, ``post``
    ({a} the result, {n} the reduced count, {q} welford's squared deviations, {T}, {P})
    finishes it, ``better`` ({x}, {v}) says x strictly beats v (arg)."""

    op: str
    kind: str
    x: str
    acc: str
    out: str
    mode: str
    nk: int
    nr: int = 1
    width: int = 1
    unroll: int = 1  # inner: vector accumulators along the row
    tile: int = 1  # outer: vectors of outputs per work-item
    local: int = 64
    init: str = "0"
    combine: str = "({a} + {b})"
    kahan: bool = False
    pre: str = "{x}"
    xtype: str = ""
    post: str = "{a}"
    better: str = ""
    # an elementwise prologue (fold, welford, arg, lse): C functions cg_pro<w>(pos, ...)
    # giving the input's element(s) at pos from other buffers, and their parameters
    prologue: str = ""
    pro_params: tuple = ()
    # an elementwise epilogue (fold, welford, lse): C functions cg_epi<w>(v, idx, ...) of
    # the result v of output element idx, stored instead of v, and their parameters
    epilogue: str = ""
    epi_params: tuple = ()
    # welford: the kernel also stores each row's mean (``mout``, dtype ``out``): var_mean
    mean_out: bool = False
    # tree softmax: rows of up to this many elements stay in local memory between its two
    # passes (sized to the device's local memory; 0: every row is read twice)
    cache: int = 0

    def name(self) -> str:
        h = hashlib.sha1(repr(self).encode()).hexdigest()[:6]
        return f"cg_{self.op}_{self.mode}_{h}"


class ReduceProgram:
    """The built kernels of one spec: ``kernels[mode]`` (rows or chunks; a "cpu" spec
    builds its scalar, inner and outer kernels in one program) and ``combine`` (stage 2)."""

    __slots__ = ("combine", "kernels", "name", "source")

    def __init__(self, kernels, combine, name, source):
        self.kernels, self.combine, self.name, self.source = kernels, combine, name, source


# --- small C helpers ----------------------------------------------------------------------


def _D(name: str) -> dt.dtype:
    return dt._BY_NAME[name]


def _vt(ctype: str, w: int) -> str:
    return ctype if w == 1 else f"{ctype}{w}"


def _cvt(expr: str, src: str, dst: str, w: int) -> str:
    """Convert ``expr`` from compute type src to compute type dst (C type names)."""
    if src == dst:
        return expr
    return f"(({dst})({expr}))" if w == 1 else f"convert_{dst}{w}({expr})"


def _in(spec: ReduceSpec, pos: str, w: int) -> str:
    """The reduction's input element(s) at ``pos``: a load, or the fused prologue."""
    if spec.pro_params:
        names = "".join(", " + p.split()[-1] for p in spec.pro_params)
        return f"cg_pro{w}({pos}{names})"
    return _load(_D(spec.x), "in", pos, w)


_load = load


def _store(d: dt.dtype, val: str, src: str, ptr: str, pos: str, w: int) -> str:
    """Store ``val`` (compute type src) as dtype d; bool stores 0/1."""
    if d is dt.bool_:
        val = (f"(uchar)(({val}) != 0)" if w == 1 else
               f"(convert_uchar{w}(({val}) != ({src}{w})0) & (uchar{w})1)")
    else:
        val = _cvt(val, src, d.compute, w)
    return store(d, val, ptr, pos, w)


def _lanes(w: int) -> list[str]:
    return [f"s{'0123456789abcdef'[i]}" for i in range(w)]


_INT_LIMITS = {"char": ("CHAR_MIN", "CHAR_MAX"), "uchar": ("0", "UCHAR_MAX"),
               "short": ("SHRT_MIN", "SHRT_MAX"), "int": ("INT_MIN", "INT_MAX"),
               "long": ("LONG_MIN", "LONG_MAX")}
_MASK = {1: "char", 2: "short", 4: "int", 8: "long"}  # what a vector comparison returns

MAX_NAN = "((({b} > {a}) || isnan({b})) ? {b} : {a})"
MIN_NAN = "((({b} < {a}) || isnan({b})) ? {b} : {a})"


def lowest(d: dt.dtype) -> str:
    """C constant at or below every value of d's compute type."""
    return "(-INFINITY)" if d.is_floating_point else _INT_LIMITS[d.compute][0]


def highest(d: dt.dtype) -> str:
    return "INFINITY" if d.is_floating_point else _INT_LIMITS[d.compute][1]


def _indent(ind: str, body: list[str]) -> list[str]:
    return [ind + s for s in body]


# --- accumulator algebras: C for one state at width w (1 or a vector width) ----------------


class _Fold:
    """An associative fold. Float32 sums carry a Kahan compensation ``c`` and a plain
    shadow sum ``s``: Kahan turns an infinite sum into NaN, the shadow keeps inf right."""

    def __init__(self, spec: ReduceSpec, w: int, sfx: str, combine=None, init=None,
                 kahan=None):
        self.w, self.sfx = w, sfx
        self.T = _vt(_D(spec.acc).compute, w)
        self.combine = spec.combine if combine is None else combine
        self.init = spec.init if init is None else init
        self.kahan = spec.kahan if kahan is None else kahan

    def _v(self, n):
        return f"f{n}{self.sfx}"

    def decl(self) -> list[str]:
        T = self.T
        out = [f"{T} {self._v('a')} = ({T})({self.init});"]
        if self.kahan:
            out += [f"{T} {self._v('c')} = ({T})0;", f"{T} {self._v('s')} = ({T})0;"]
        return out

    def update(self, x: str, idx: str = "") -> list[str]:
        a, T = self._v("a"), self.T
        if not self.kahan:
            return [f"{a} = {self.combine.format(a=a, b=x, T=T)};"]
        c, s = self._v("c"), self._v("s")
        return [f"{{ const {T} x_ = {x}; const {T} y_ = x_ - {c}; const {T} t_ = {a} + y_;",
                f"  {c} = (t_ - {a}) - y_; {a} = t_; {s} += x_; }}"]

    def comps(self, lane: str = "") -> tuple[str, ...]:
        sel = f".{lane}" if lane else ""
        if self.kahan:
            return (f"({self._v('a')}{sel} - {self._v('c')}{sel})", f"{self._v('s')}{sel}")
        return (f"{self._v('a')}{sel}",)

    def absorb(self, comps: tuple[str, ...]) -> list[str]:
        """Fold another state of the same width (its ``comps``) into this one."""
        if not self.kahan:
            return self.update(comps[0])
        a, c, s, T = self._v("a"), self._v("c"), self._v("s"), self.T
        return [f"{{ const {T} y_ = ({comps[0]}) - {c}; const {T} t_ = {a} + y_;",
                f"  {c} = (t_ - {a}) - y_; {a} = t_; {s} += {comps[1]}; }}"]

    def seed(self, comps: tuple[str, ...]) -> list[str]:
        """Declare this state holding another state's ``comps`` (a lane merge's first half)."""
        T = self.T
        out = [f"{T} {self._v('a')} = {comps[0]};"]
        if self.kahan:
            out += [f"{T} {self._v('c')} = ({T})0;", f"{T} {self._v('s')} = {comps[1]};"]
        return out

    def value(self) -> str:
        if not self.kahan:
            return self._v("a")
        k = f"({self._v('a')} - {self._v('c')})"
        return f"(isnan({k}) ? {self._v('s')} : {k})"

    def partial(self) -> tuple[str, ...]:
        """What a chunk stores, one expression per state array."""
        return (self.value(),)

    def from_partial(self, vals: tuple[str, ...]) -> tuple[str, ...]:
        return (vals[0], vals[0]) if self.kahan else (vals[0],)


class _Welford:
    """Running count, mean and sum of squared deviations; Chan's formula merges states."""

    def __init__(self, spec: ReduceSpec, w: int, sfx: str):
        self.w, self.sfx = w, sfx
        self.T = _vt(_D(spec.acc).compute, w)

    def _v(self, n):
        return f"w{n}{self.sfx}"

    def decl(self) -> list[str]:
        return [f"{self.T} {self._v(n)} = ({self.T})0;" for n in "nmq"]

    def update(self, x: str, idx: str = "") -> list[str]:
        n, m, q, T = self._v("n"), self._v("m"), self._v("q"), self.T
        return [f"{{ const {T} x_ = {x}; {n} += ({T})1; const {T} d_ = x_ - {m};",
                f"  {m} += d_ / {n}; {q} += d_ * (x_ - {m}); }}"]

    def comps(self, lane: str = "") -> tuple[str, ...]:
        sel = f".{lane}" if lane else ""
        return tuple(f"{self._v(k)}{sel}" for k in "nmq")

    def absorb(self, comps) -> list[str]:
        n, m, q, T = self._v("n"), self._v("m"), self._v("q"), self.T
        nb, mb, qb = comps
        return [(f"{{ const {T} nb_ = {nb}; const {T} nt_ = {n} + nb_; "
                 f"const {T} d_ = ({mb}) - {m};"),
                f"  const {T} f_ = nb_ / fmax(nt_, ({T})1);",
                f"  {q} += ({qb}) + d_ * d_ * {n} * f_; {m} += d_ * f_; {n} = nt_; }}"]

    def seed(self, comps) -> list[str]:
        return [f"{self.T} {self._v(k)} = {c};" for k, c in zip("nmq", comps)]

    def value(self) -> tuple[str, ...]:
        return self.comps()

    def partial(self):
        return self.comps()

    def from_partial(self, vals):
        return vals


class _Arg:
    """(value, index) of the best element; ties go to the lower index, NaN beats numbers.
    Vector states keep int indices (long8 is not native on AVX2) and see increasing
    indices per lane, so their update needs no tie-break beyond taking each lane's first
    element; lanes merge through the scalar ``absorb``, which has it."""

    def __init__(self, spec: ReduceSpec, w: int, sfx: str):
        self.spec, self.w, self.sfx = spec, w, sfx
        self.acc = _D(spec.acc)
        self.T = _vt(self.acc.compute, w)
        self.L = "long" if w == 1 else f"int{w}"
        self.sentinel = "LONG_MAX" if w == 1 else "INT_MAX"

    def _v(self, n):
        return f"a{n}{self.sfx}"

    def decl(self) -> list[str]:
        return [f"{self.T} {self._v('v')} = ({self.T})({self.spec.init});",
                f"{self.L} {self._v('i')} = ({self.L})({self.sentinel});"]

    def update(self, x: str, idx: str) -> list[str]:
        if self.w == 1:
            return self.absorb((x, idx))
        v, i, w, I = self._v("v"), self._v("i"), self.w, self.L
        M = _vt(_MASK[self.acc.itemsize], w)
        better = self.spec.better.format(x="x_", v=v)
        if M != I:
            better = f"convert_{I}({better})"
        vm = "m_" if M == I else f"convert_{M}(m_)"
        return [f"{{ const {self.T} x_ = {x}; const {I} m_ = {better} | ({i} == ({I})INT_MAX);",
                f"  {v} = {vm} ? x_ : {v}; {i} = m_ ? ({idx}) : {i}; }}"]

    def absorb(self, comps) -> list[str]:
        assert self.w == 1
        v, i = self._v("v"), self._v("i")
        x, j = comps
        better = self.spec.better.format(x="x_", v=v)
        same = (f"(x_ == {v} || (isnan(x_) && isnan({v})))" if self.acc.is_floating_point
                else f"(x_ == {v})")
        return [f"{{ const {self.T} x_ = {x}; const long j_ = {j};",
                f"  if ({better} || ({same} && j_ < {i})) {{ {v} = x_; {i} = j_; }} }}"]

    def comps(self, lane: str = ""):
        sel = f".{lane}" if lane else ""
        return (f"{self._v('v')}{sel}", f"{self._v('i')}{sel}")

    def value(self):
        return self.comps()

    def partial(self):
        return self.comps()

    def from_partial(self, vals):
        return vals


def _alg(spec: ReduceSpec, w: int, sfx: str = ""):
    return {"welford": _Welford, "arg": _Arg}.get(spec.kind, _Fold)(spec, w, sfx)


def _lse_folds(spec: ReduceSpec, w: int, sfx: str):
    """The two passes of logsumexp: a NaN-propagating max, then a sum of exps."""
    mx = _Fold(spec, w, "m" + sfx, combine=MAX_NAN, init="-INFINITY", kahan=False)
    sm = _Fold(spec, w, "e" + sfx, combine="({a} + {b})", init="0", kahan=spec.kahan)
    return mx, sm


def _merge(lines, ind, vecs, scalar=None):
    """Fold the vector states into the first (vector absorb; arg goes lane by lane) and,
    with ``scalar``, every lane into the scalar state."""
    if vecs and isinstance(vecs[0], _Arg):
        for v in vecs:
            for lane in _lanes(v.w):
                lines += _indent(ind, scalar.absorb(v.comps(lane)))
        return
    for v in vecs[1:]:
        lines += _indent(ind, vecs[0].absorb(v.comps()))
    if scalar is not None and vecs:
        # lanes in halves (16 -> 8 -> 4 -> 2 -> 1): log2(w) vector merges where one lane
        # at a time made a chain of w dependent ones, most of a short row's time
        v = vecs[0]
        while v.w > 1:
            half = copy.copy(v)
            half.w, half.sfx = v.w // 2, v.sfx + "h"
            half.T = _vt(v.T.rstrip("0123456789"), half.w)
            lines += _indent(ind, half.seed(v.comps("lo")))
            lines += _indent(ind, half.absorb(v.comps("hi")))
            v = half
        lines += _indent(ind, scalar.absorb(v.comps()))


# --- the element pipeline -----------------------------------------------------------------


def _element(spec: ReduceSpec, raw: str, w: int) -> str:
    """Accumulator-typed expression for one loaded element (or vector of them)."""
    xd, acc = _D(spec.x), _D(spec.acc).compute
    xtype = _D(spec.xtype or spec.acc).compute
    v = _cvt(raw, xd.compute, xtype, w)
    to_acc = f"convert_{acc}{w}" if w > 1 else f"({acc})"
    return spec.pre.format(x=f"({v})", T=_vt(xtype, w), P=f"(({_vt(acc, w)})prm)",
                           to_acc=to_acc)


def _post(spec: ReduceSpec, value, w: int) -> str:
    A = _vt(_D(spec.acc).compute, w)
    if spec.kind == "welford":
        cnt, _, q = value
        return spec.post.format(q=q, n=cnt, P=f"(({A})prm)", T=A)
    return spec.post.format(a=value, n=f"(({A})rn)", P=f"(({A})prm)", T=A)


# --- the walk over one row's reduced range ------------------------------------------------


def _walk(spec: ReduceSpec, lines: list[str], ind: str, mode: str, vecs, scalar, upd,
          blocked=None):
    """Reduce [lo, hi) of the flattened reduced index in runs along the innermost reduced
    dim. ``inner``: U vectors along the run then a scalar tail; ``outer``: one vector per
    state, state u at columns u*W; ``scalar``: one element at a time.
    ``upd(state, element, index, width)`` gives the update lines; ``blocked(state,
    element, width)``, for compensated sums, the term to add (outer mode blocks them)."""
    W, nr = spec.width, spec.nr
    L = nr - 1
    U = len(vecs)
    lines.append(f"{ind}for (long j = lo; j < hi;) {{")
    i2 = ind + "  "
    if nr > 1:
        lines.append(f"{i2}long q = j / rs{L}; const long i0 = j - q * rs{L};")
    else:
        lines.append(f"{i2}const long i0 = j;")
    lines.append(f"{i2}long p = base + i0{'' if mode == Mode.INNER else f' * rst{L}'};")
    for k in reversed(range(nr - 1)):
        lines.append(f"{i2}p += (q % rs{k}) * rst{k}; q /= rs{k};")
    lines.append(f"{i2}const long len = min(rs{L} - i0, hi - j);")
    lines.append(f"{i2}long t = 0;")
    i3 = i2 + "  "
    if mode == Mode.INNER:
        ramp = f"(int{W})({', '.join(str(k) for k in range(W))})"
        for per, states in ((U * W, vecs), (W, vecs[:1] if U > 1 else [])):
            if not states:
                continue
            lines.append(f"{i2}for (; t + {per} <= len; t += {per}) {{")
            for u, st in enumerate(states):
                e = _element(spec, _in(spec, f"p + t + {u * W}", W), W)
                lines += _indent(i3, upd(st, e, f"(int{W})((int)(j + t + {u * W})) + {ramp}", W))
            lines.append(f"{i2}}}")
        lines.append(f"{i2}for (; t < len; ++t) {{")
        e = _element(spec, _in(spec, "p + t", 1), 1)
        lines += _indent(i3, upd(scalar, e, "j + t", 1))
        lines.append(f"{i2}}}")
    elif mode == Mode.OUTER and blocked is not None:
        # Compensated sums down a column tile: plain sums over blocks of 64 steps, each
        # block Kahan-added. The per-step Kahan chain leaves too few loads in flight when
        # every step is a new page (measured 3.3 ms vs 1.4 ms, sum over dim 0 of 4096x1024).
        T = _vt(_D(spec.acc).compute, W)
        lines.append(f"{i2}long pt = p;")
        lines.append(f"{i2}while (t < len) {{")
        lines.append(f"{i3}const long e_ = min(t + 64, len);")
        for u in range(U):
            lines.append(f"{i3}{T} b{u}_ = ({T})0;")
        lines.append(f"{i3}for (; t < e_; ++t, pt += rst{L}) {{")
        for u, st in enumerate(vecs):
            e = _element(spec, _in(spec, f"pt + {u * W}", W), W)
            lines.append(f"{i3}  b{u}_ += {blocked(st, e, W)};")
        lines.append(f"{i3}}}")
        for u, st in enumerate(vecs):
            lines += _indent(i3, st.absorb((f"b{u}_", f"b{u}_")))
        lines.append(f"{i2}}}")
    elif mode == Mode.OUTER:
        lines.append(f"{i2}for (long pt = p; t < len; ++t, pt += rst{L}) {{")
        for u, st in enumerate(vecs):
            e = _element(spec, _in(spec, f"pt + {u * W}", W), W)
            lines += _indent(i3, upd(st, e, f"(int{W})((int)(j + t))", W))
        lines.append(f"{i2}}}")
    else:
        lines.append(f"{i2}for (; t < len; ++t) {{")
        e = _element(spec, _in(spec, f"p + t * rst{L}", 1), 1)
        lines += _indent(i3, upd(scalar, e, "j + t", 1))
        lines.append(f"{i2}}}")
    lines.append(f"{i2}j += len;")
    lines.append(f"{ind}}}")


def _plain(st, e, idx, w):
    return st.update(e, idx)


# --- results ------------------------------------------------------------------------------


def _result(spec, ind, value, w, opos, ppos) -> list[str]:
    """Store one finished state (``value``: the alg's value()) at output ``opos``, or its
    partial components at ``ppos`` when the kernel runs as stage 1."""
    acc = _D(spec.acc)
    A = acc.compute
    lines = [f"{ind}if (partial) {{"]
    comps = value if isinstance(value, tuple) else (value,)
    for k, c in enumerate(comps):
        if spec.kind == "arg" and k == 1:
            lines += _indent(ind + "  ", _store_index(c, "pidx", ppos, w))
        else:
            lines.append(f"{ind}  {_store(acc, c, A, f'ps{k}', ppos, w)}")
    lines.append(f"{ind}}} else {{")
    lines += _indent(ind + "  ", _final(spec, value, w, opos))
    lines.append(f"{ind}}}")
    return lines


def _store_index(val, ptr, pos, w) -> list[str]:
    """Indices to int64 memory; vectors (int) lane by lane, as long8 is not native."""
    if w == 1:
        return [f"{ptr}[{pos}] = {val};"]
    return [f"{ptr}[{pos} + {k}] = {val}.{lane};" for k, lane in enumerate(_lanes(w))]


def _out(spec, val, opos, w) -> str:
    """Store a finished result (accumulator type) at output element ``opos``, through the
    fused epilogue when there is one."""
    out, A = _D(spec.out), _D(spec.acc).compute
    if spec.epilogue:
        names = "".join(", " + p.split()[-1] for p in spec.epi_params)
        val = f"cg_epi{w}({_cvt(val, A, out.compute, w)}, {opos}{names})"
        A = out.compute
    return _store(out, val, A, "out", f"ooff + {opos}", w)


def _final(spec, value, w, opos) -> list[str]:
    if spec.kind == "arg":
        v, i = value
        lines = _store_index(i, "oidx", f"oioff + {opos}", w)
        if spec.post != "index":
            lines.append(_out(spec, v, opos, w))
        return lines
    lines = [_out(spec, _post(spec, value, w), opos, w)]
    if spec.mean_out:  # welford (n, mean, m2); the mean of nothing is NaN (n / n)
        n, m = value[0], value[1]
        lines.append(_store(_D(spec.out), f"({m} * ({n} / {n}))", _D(spec.acc).compute, "mout",
                            f"mooff + {opos}", w))
    return lines


# --- one row (inner, scalar) and one tile of rows (outer) ---------------------------------


def _row(spec, lines, ind, mode, opos, ppos):
    """Reduce one row; ``mode`` inner (vectors along the row) or scalar."""
    W = spec.width if mode == Mode.INNER else 1
    U = spec.unroll if mode == Mode.INNER else 0
    if spec.kind == "lse":
        A = _D(spec.acc).compute
        mx, sm = _lse_folds(spec, 1, "")
        mxs = [_lse_folds(spec, W, str(u))[0] for u in range(U)]
        for st in [mx] + mxs:
            lines += _indent(ind, st.decl())
        _walk(spec, lines, ind, mode, mxs, mx, _plain)
        _merge(lines, ind, mxs, mx)
        # PyTorch's shift: the max, or 0 where it is infinite (all -inf gives -inf)
        lines.append(f"{ind}const {A} sh = isinf({mx.value()}) ? ({A})0 : {mx.value()};")
        sms = [_lse_folds(spec, W, str(u))[1] for u in range(U)]
        for st in [sm] + sms:
            lines += _indent(ind, st.decl())
        _walk(spec, lines, ind, mode, sms, sm,
              lambda st, e, idx, w: st.update(f"exp({e} - ({_vt(A, w)})sh)"))
        _merge(lines, ind, sms, sm)
        lines.append(f"{ind}if (partial) {{ ps0[{ppos}] = {mx.value()}; "
                     f"ps1[{ppos}] = {sm.value()}; }} else {{")
        val = spec.post.format(a=f"(log({sm.value()}) + sh)")
        lines.append(f"{ind}  {_out(spec, val, opos, 1)}")
        lines.append(f"{ind}}}")
        return
    sc = _alg(spec, 1, "")
    vecs = [_alg(spec, W, str(u)) for u in range(U)]
    for st in [sc] + vecs:
        lines += _indent(ind, st.decl())
    _walk(spec, lines, ind, mode, vecs, sc, _plain)
    _merge(lines, ind, vecs, sc)
    lines += _result(spec, ind, sc.value(), 1, opos, ppos)


def _tile(spec, lines, ind, U, opos, ppos):
    """Reduce U x width adjacent rows (columns) at once, one vector state per W of them."""
    W, A = spec.width, _D(spec.acc).compute
    V = _vt(A, W)
    if spec.kind == "lse":
        mxs = [_lse_folds(spec, W, str(u))[0] for u in range(U)]
        for st in mxs:
            lines += _indent(ind, st.decl())
        _walk(spec, lines, ind, Mode.OUTER, mxs, None, _plain)
        for u, st in enumerate(mxs):
            lines.append(f"{ind}const {V} sh{u} = isinf({st.value()}) ? ({V})0 : {st.value()};")
        sms = [_lse_folds(spec, W, str(u))[1] for u in range(U)]
        for st in sms:
            lines += _indent(ind, st.decl())
        term = (lambda st, e, w: f"exp({e} - sh{st.sfx[1:]})")
        _walk(spec, lines, ind, Mode.OUTER, sms, None,
              lambda st, e, idx, w: st.update(term(st, e, w)), term if spec.kahan else None)
        lines.append(f"{ind}if (partial) {{")
        for u in range(U):
            lines.append(f"{ind}  vstore{W}({mxs[u].value()}, 0, ps0 + {ppos} + {u * W});")
            lines.append(f"{ind}  vstore{W}({sms[u].value()}, 0, ps1 + {ppos} + {u * W});")
        lines.append(f"{ind}}} else {{")
        for u in range(U):
            val = spec.post.format(a=f"(log({sms[u].value()}) + sh{u})")
            lines.append(f"{ind}  " + _out(spec, val, f"{opos} + {u * W}", W))
        lines.append(f"{ind}}}")
        return
    vecs = [_alg(spec, W, str(u)) for u in range(U)]
    for st in vecs:
        lines += _indent(ind, st.decl())
    blocked = (lambda st, e, w: e) if spec.kind == "fold" and spec.kahan else None
    _walk(spec, lines, ind, Mode.OUTER, vecs, None, _plain, blocked)
    for u, st in enumerate(vecs):
        lines += _result(spec, ind, st.value(), W, f"{opos} + {u * W}", f"{ppos} + {u * W}")


# --- kernel sources -----------------------------------------------------------------------


def _header(spec: ReduceSpec) -> list[str]:
    if "float64" in {spec.x, spec.acc, spec.out, spec.xtype}:
        return ["#pragma OPENCL EXTENSION cl_khr_fp64 : enable"]
    return []


def n_state(kind: str) -> int:
    """State arrays a stage-1 chunk writes (arg also writes ``pidx``)."""
    return {"fold": 1, "arg": 1, "welford": 3, "lse": 2}[kind]


def _main_params(spec: ReduceSpec) -> list[str]:
    x, acc, out = _D(spec.x), _D(spec.acc), _D(spec.out)
    ps = ["const long nitems", "const long nchunk", "const long chunk", "const long rn",
          "const int partial"]
    for k in range(spec.nk):
        ps += [f"const long ks{k}", f"const long kst{k}"]
    for k in range(spec.nr):
        ps += [f"const long rs{k}", f"const long rst{k}"]
    ps += [f"__global const {x.cl}* restrict in", "const long ioff",
           f"__global {out.cl}* restrict out", "const long ooff"]
    ps += [f"__global {acc.cl}* restrict ps{k}" for k in range(n_state(spec.kind))]
    if spec.kind == "arg":
        ps += ["__global long* restrict pidx", "__global long* restrict oidx",
               "const long oioff"]
    ps += _mean_params(spec)
    ps.append(f"const {acc.compute} prm")
    return ps + list(spec.pro_params) + list(spec.epi_params)


def _mean_params(spec: ReduceSpec) -> list[str]:
    return [f"__global {_D(spec.out).cl}* restrict mout", "const long mooff"] if (
        spec.mean_out) else []


def _main_source(spec: ReduceSpec, name: str, mode: str) -> list[str]:
    """Stage 1 (or the whole reduction when nchunk == 1). Work-item (or group, tree) gid
    is (row, chunk) with the chunk fastest; outer: (chunk, tile) with the tile fastest.
    Partial state (row, chunk) lives at row * nchunk + chunk (outer: chunk * rows + row)."""
    W, U, nk = spec.width, spec.tile, spec.nk
    ind = "  "
    lines = [f"__kernel void {name}({', '.join(_main_params(spec))}) {{"]
    if mode == Mode.TREE:
        # no early return before the barriers: the host launches exactly nitems groups, and
        # PoCL's AVX-512 code for a barrier kernel with a return ahead of it segfaults
        lines += [f"{ind}const long gid = get_group_id(0);",
                  f"{ind}const int lid = get_local_id(0);"]
    else:
        lines += [f"{ind}const long gid = get_global_id(0);",
                  f"{ind}if (gid >= nitems) return;"]
    if mode == Mode.OUTER:
        KL, TW = f"ks{nk - 1}", U * W
        lines += [f"{ind}const long per = nitems / nchunk;",
                  f"{ind}const long ch = gid / per; long rem = gid - ch * per;",
                  f"{ind}const long G = ({KL} + {TW - 1}) / {TW};",
                  f"{ind}const long lane0 = (rem % G) * {TW}; rem /= G;",
                  f"{ind}const long obase = rem * {KL} + lane0;",
                  f"{ind}const long pbase = ch * (per / G) * {KL} + obase;"]
    else:
        lines += [f"{ind}const long row = gid / nchunk; const long ch = gid - row * nchunk;",
                  f"{ind}long rem = row;"]
    lines += [f"{ind}const long lo = ch * chunk; const long hi = min(lo + chunk, rn);",
              f"{ind}long base = ioff;"]
    for k in reversed(range(nk - 1 if mode == Mode.OUTER else nk)):
        lines.append(f"{ind}base += (rem % ks{k}) * kst{k}; rem /= ks{k};")
    if mode == Mode.TREE:
        lines += _tree_body(spec, ind)
    elif mode == Mode.OUTER:
        i2, i3 = ind + "  ", ind + "    "
        lines += [f"{ind}const long base0 = base;",
                  f"{ind}if (lane0 + {TW} <= {KL}) {{", f"{i2}base = base0 + lane0;"]
        _tile(spec, lines, i2, U, "obase", "pbase")
        # the last tile of a row: single vectors, then single columns
        lines += [f"{ind}}} else {{", f"{i2}long l = 0;",
                  f"{i2}for (; lane0 + l + {W} <= {KL}; l += {W}) {{",
                  f"{i3}base = base0 + lane0 + l;"]
        _tile(spec, lines, i3, 1, "obase + l", "pbase + l")
        lines += [f"{i2}}}", f"{i2}for (; lane0 + l < {KL}; ++l) {{",
                  f"{i3}base = base0 + lane0 + l;"]
        _row(spec, lines, i3, Mode.SCALAR, "obase + l", "pbase + l")
        lines += [f"{i2}}}", f"{ind}}}"]
    else:
        _row(spec, lines, ind, mode, "row", "gid")
    lines.append("}")
    return lines


def _tree_reduce(spec, lines, ind, alg, types, tag):
    """Local-memory tree over the work-group; afterwards ``{tag}k[0]`` hold the state."""
    Lc = spec.local
    names = [f"{tag}{k}" for k in range(len(types))]
    for nm, ty in zip(names, types):
        lines.append(f"{ind}__local {ty} {nm}[{Lc}];")
    for nm, c in zip(names, alg.partial()):
        lines.append(f"{ind}{nm}[lid] = {c};")
    lines += [f"{ind}for (int s_ = {Lc // 2}; s_ > 0; s_ >>= 1) {{",
              f"{ind}  barrier(CLK_LOCAL_MEM_FENCE);", f"{ind}  if (lid < s_) {{"]
    i3 = ind + "    "
    tmp = _fresh(spec, alg, "t", tuple(f"{nm}[lid]" for nm in names), lines, i3)
    lines += _indent(i3, tmp.absorb(tmp.from_partial(tuple(f"{nm}[lid + s_]" for nm in names))))
    for nm, c in zip(names, tmp.partial()):
        lines.append(f"{i3}{nm}[lid] = {c};")
    lines += [f"{ind}  }}", f"{ind}}}", f"{ind}barrier(CLK_LOCAL_MEM_FENCE);"]
    return names


def _fresh(spec, alg, sfx, stored, lines, ind):
    """A new scalar state of alg's kind holding the ``stored`` partial components."""
    if isinstance(alg, _Fold):
        f = _Fold(spec, 1, sfx, combine=alg.combine, init=alg.init, kahan=alg.kahan)
    else:
        f = type(alg)(spec, 1, sfx)
    lines += _indent(ind, f.decl())
    lines += _indent(ind, f.absorb(f.from_partial(stored)))
    return f


def _tree_walk(spec, lines, ind, update):
    """Each work-item of the group takes every local-size-th element of [lo, hi)."""
    nr, L = spec.nr, spec.nr - 1
    lines.append(f"{ind}for (long j = lo + lid; j < hi; j += {spec.local}) {{")
    i2 = ind + "  "
    if nr > 1:
        lines.append(f"{i2}long q = j / rs{L}; long p = base + (j - q * rs{L}) * rst{L};")
        for k in reversed(range(nr - 1)):
            lines.append(f"{i2}p += (q % rs{k}) * rst{k}; q /= rs{k};")
    else:
        lines.append(f"{i2}const long p = base + j * rst{L};")
    lines += _indent(i2, update(_element(spec, _in(spec, "p", 1), 1), "j"))
    lines.append(f"{ind}}}")


def _tree_body(spec, ind) -> list[str]:
    lines: list[str] = []
    A = _D(spec.acc).compute
    if spec.kind == "lse":
        mx, sm = _lse_folds(spec, 1, "")
        lines += _indent(ind, mx.decl())
        _tree_walk(spec, lines, ind, mx.update)
        mnames = _tree_reduce(spec, lines, ind, mx, [A], "lm")
        lines += [f"{ind}const {A} mxv = {mnames[0]}[0];",
                  f"{ind}const {A} sh = isinf(mxv) ? ({A})0 : mxv;"]
        lines += _indent(ind, sm.decl())
        _tree_walk(spec, lines, ind, lambda e, idx: sm.update(f"exp({e} - sh)"))
        snames = _tree_reduce(spec, lines, ind, sm, [A], "ls")
        lines += [f"{ind}if (lid != 0) return;",
                  f"{ind}if (partial) {{ ps0[gid] = mxv; ps1[gid] = {snames[0]}[0]; }} else {{"]
        val = spec.post.format(a=f"(log({snames[0]}[0]) + sh)")
        lines += [f"{ind}  {_out(spec, val, 'row', 1)}", f"{ind}}}"]
        return lines
    alg = _alg(spec, 1, "")
    lines += _indent(ind, alg.decl())
    _tree_walk(spec, lines, ind, alg.update)
    types = [A, "long"] if spec.kind == "arg" else [A] * len(alg.partial())
    names = _tree_reduce(spec, lines, ind, alg, types, "lm")
    lines.append(f"{ind}if (lid != 0) return;")
    fin = _fresh(spec, alg, "f", tuple(f"{nm}[0]" for nm in names), lines, ind)
    lines += _result(spec, ind, fin.value(), 1, "row", "gid")
    return lines


def _combine_source(spec: ReduceSpec, name: str) -> list[str]:
    """Stage 2: one work-item per row folds the row's ``nchunk`` partial states, found at
    row * sr + chunk * sc."""
    acc, out = _D(spec.acc), _D(spec.out)
    A = acc.compute
    ps = ["const long nrows", "const long nchunk", "const long rn", "const long sr",
          "const long sc"]
    ps += [f"__global const {acc.cl}* restrict ps{k}" for k in range(n_state(spec.kind))]
    if spec.kind == "arg":
        ps.append("__global const long* restrict pidx")
    ps += [f"__global {out.cl}* restrict out", "const long ooff"]
    if spec.kind == "arg":
        ps += ["__global long* restrict oidx", "const long oioff"]
    ps += _mean_params(spec)
    ps.append(f"const {A} prm")
    ps += spec.epi_params
    ind = "  "
    lines = [f"__kernel void {name}({', '.join(ps)}) {{",
             f"{ind}const long row = get_global_id(0);",
             f"{ind}if (row >= nrows) return;"]
    loop = f"{ind}for (long c = 0, k = row * sr; c < nchunk; ++c, k += sc) {{"
    if spec.kind == "lse":
        mx, sm = _lse_folds(spec, 1, "")
        lines += _indent(ind, mx.decl()) + [loop]
        lines += _indent(ind + "  ", mx.update("ps0[k]")) + [f"{ind}}}"]
        lines.append(f"{ind}const {A} sh = isinf({mx.value()}) ? ({A})0 : {mx.value()};")
        lines += _indent(ind, sm.decl()) + [loop]
        lines.append(f"{ind}  const {A} m_ = ps0[k]; const {A} s_ = ps1[k];")
        lines.append(f"{ind}  const {A} shc_ = isinf(m_) ? ({A})0 : m_;")
        lines += _indent(ind + "  ", sm.update(f"(s_ == ({A})0 ? ({A})0 : s_ * exp(shc_ - sh))"))
        lines.append(f"{ind}}}")
        val = spec.post.format(a=f"(log({sm.value()}) + sh)")
        lines += [ind + _out(spec, val, "row", 1), "}"]
        return lines
    alg = _alg(spec, 1, "")
    lines += _indent(ind, alg.decl()) + [loop]
    stored = tuple(f"ps{k}[k]" for k in range(n_state(spec.kind)))
    if spec.kind == "arg":
        stored = ("ps0[k]", "pidx[k]")
    lines += _indent(ind + "  ", alg.absorb(alg.from_partial(stored)))
    lines.append(f"{ind}}}")
    lines += _indent(ind, _final(spec, alg.value(), 1, "row"))
    lines.append("}")
    return lines


# --- softmax / log_softmax ----------------------------------------------------------------


def _softmax_source(spec: ReduceSpec, name: str, mode: str) -> list[str]:
    """Per row: max, sum of exp(x - max), write. softmax stores exp(x - max) in the output
    on the second pass (when the output holds the compute type) and rescales it on the
    third, so exp runs once per element. Modes as for reductions; outer handles a tile of
    tile x width rows."""
    x, out = _D(spec.x), _D(spec.out)
    W, nk = spec.width, spec.nk
    U = spec.tile if mode == Mode.OUTER else spec.unroll
    ps = ["const long nitems", "const long R", "const long rst", "const long ost"]
    for k in range(nk):
        ps += [f"const long ks{k}", f"const long kst{k}", f"const long kos{k}"]
    ps += [f"__global const {x.cl}* restrict in", "const long ioff",
           f"__global {out.cl}* restrict out", "const long ooff"]
    ind = "  "
    lines = [f"__kernel void {name}({', '.join(ps)}) {{"]
    if mode == Mode.TREE:  # no early return before barriers: see _main_source
        lines += [f"{ind}const long row = get_group_id(0);",
                  f"{ind}const int lid = get_local_id(0);"]
    else:
        lines += [f"{ind}const long row = get_global_id(0);",
                  f"{ind}if (row >= nitems) return;"]
    lines.append(f"{ind}long p = ioff, o = ooff, rem = row;")
    outer = mode == Mode.OUTER
    if outer:
        KL, TW = f"ks{nk - 1}", U * W
        lines += [f"{ind}const long G = ({KL} + {TW - 1}) / {TW};",
                  f"{ind}const long lane0 = (rem % G) * {TW}; rem /= G;"]
    for k in reversed(range(nk - 1 if outer else nk)):
        lines.append(f"{ind}{{ const long c_ = rem % ks{k}; rem /= ks{k}; "
                     f"p += c_ * kst{k}; o += c_ * kos{k}; }}")
    if mode == Mode.TREE:
        lines += _softmax_tree(spec, ind)
    elif outer:
        i2, i3 = ind + "  ", ind + "    "
        lines += [f"{ind}const long p0 = p + lane0, o0 = o + lane0;",
                  f"{ind}if (lane0 + {TW} <= {KL}) {{", f"{i2}p = p0; o = o0;"]
        lines += _softmax_row(spec, i2, Mode.OUTER, U)
        lines += [f"{ind}}} else {{", f"{i2}long l = 0;",
                  f"{i2}for (; lane0 + l + {W} <= {KL}; l += {W}) {{",
                  f"{i3}p = p0 + l; o = o0 + l;"]
        lines += _softmax_row(spec, i3, Mode.OUTER, 1)
        lines += [f"{i2}}}", f"{i2}for (; lane0 + l < {KL}; ++l) {{",
                  f"{i3}p = p0 + l; o = o0 + l;"]
        lines += _softmax_row(spec, i3, Mode.SCALAR, 1)
        lines += [f"{i2}}}", f"{ind}}}"]
    else:
        lines += _softmax_row(spec, ind, mode, U if mode == Mode.INNER else 1)
    lines.append("}")
    return lines


def _softmax_row(spec, i, mode, U) -> list[str]:
    """The three passes over one row (scalar; inner: U vectors along the row and a scalar
    tail) or over U vectors of rows (outer). Row statistics are scalars (scalar, inner) or
    one vector per state (outer)."""
    row = _SoftmaxRow(spec, i, mode, U)
    row.reduce_max()
    row.reduce_sum()
    row.write()
    return row.lines


class _SoftmaxRow:
    """The C of one ``_softmax_row`` call, gathered in ``lines``: its three passes and the
    parts they share (element positions, row statistics, the walk along the row, states)."""

    def __init__(self, spec: ReduceSpec, ind: str, mode: str, U: int):
        self.spec, self.i, self.mode = spec, ind, mode
        self.x, self.out = _D(spec.x), _D(spec.out)
        self.A = _D(spec.acc).compute
        self.log = spec.kind == "log_softmax"
        # pass 2 keeps exp(x - max) in the output for pass 3 when the output holds it exactly
        self.reuse = not self.log and self.out.compute == self.A and self.out.name not in NARROW
        self.W = 1 if mode == Mode.SCALAR else spec.width
        self.outer = mode == Mode.OUTER
        self.SW = self.W if self.outer else 1  # width of the row statistics
        self.n_stats = U if self.outer else 1
        # inner: U accumulators along the row; outer: U row tiles; scalar: one
        self.n_acc = 1 if mode == Mode.SCALAR else U
        self.lines: list[str] = []

    def elem(self, pos: str, w: int) -> str:
        """The input element(s) at ``pos``, converted to the accumulator type."""
        return _cvt(_load(self.x, "in", pos, w), self.x.compute, self.A, w)

    def at(self, u: int, t: str) -> tuple[str, str]:
        """(input position, output position) of state u at step t."""
        W = self.W
        if self.mode == Mode.INNER:
            return f"p + {t} + {u * W}", f"o + {t} + {u * W}"
        return f"p + {t} * rst + {u * W}", f"o + {t} * ost + {u * W}"

    @staticmethod
    def tail_at(t: str) -> tuple[str, str]:
        """(input position, output position) of the scalar tail's step t."""
        return f"p + {t} * rst", f"o + {t} * ost"

    def stat(self, name: str, u: int, w: int) -> str:
        """Row statistic ``name`` for state u (outer; one per row otherwise) at width w."""
        nm = f"{name}{u if self.outer else ''}"
        return nm if w == self.SW else f"(({_vt(self.A, w)}){nm})"

    def loop(self, vec_body, tail_body, unroll: int) -> None:
        """inner: unroll vectors along the row per step, then single vectors, then a scalar
        tail; outer: every state at each step; scalar: the tail loop only."""
        lines, i, W = self.lines, self.i, self.W
        lines.append(f"{i}{{ long t = 0;")
        if self.mode == Mode.INNER:
            for per, us in ((unroll * W, range(unroll)), (W, range(1) if unroll > 1 else ())):
                if not us:
                    continue
                lines.append(f"{i}for (; t + {per} <= R; t += {per}) {{")
                for u in us:
                    lines.extend(_indent(i + "  ", vec_body(u, "t")))
                lines.append(f"{i}}}")
        elif self.outer:
            lines.append(f"{i}for (; t < R; ++t) {{")
            for u in range(unroll):
                lines.extend(_indent(i + "  ", vec_body(u, "t")))
            lines.append(f"{i}}}")
        if not self.outer:
            lines.append(f"{i}for (; t < R; ++t) {{")
            lines.extend(_indent(i + "  ", tail_body("t")))
            lines.append(f"{i}}}")
        lines.append(f"{i}}}")

    def states(self, comb: str, init: str, sfx: str):
        """Declared fold states: the vector ones and the scalar tail's (inner only)."""
        vec = [_Fold(self.spec, self.W, f"{sfx}{u}", combine=comb, init=init, kahan=False)
               for u in range(self.n_acc)]
        sc = _Fold(self.spec, 1, sfx, combine=comb, init=init, kahan=False)
        for f in vec + ([sc] if self.mode == Mode.INNER else []):
            self.lines.extend(_indent(self.i, f.decl()))
        return vec, sc

    def tail_state(self, vec, sc):
        """The state the scalar tail updates."""
        return sc if self.mode == Mode.INNER else vec[0]

    def finish(self, vec, sc, name: str) -> None:
        """Declare the row statistic ``name`` (outer: one per state) from the states."""
        lines, i, A = self.lines, self.i, self.A
        if self.outer:
            for u, f in enumerate(vec):
                lines.append(f"{i}const {_vt(A, self.W)} {name}{u} = {f.value()};")
            return
        if self.mode == Mode.INNER:
            _merge(lines, i, vec, sc)
            lines.append(f"{i}const {A} {name} = {sc.value()};")
        else:
            lines.append(f"{i}const {A} {name} = {vec[0].value()};")

    def reduce_max(self) -> None:
        """Pass 1: the row max. It only shifts exp, so it may skip NaN: a NaN still makes
        the sum, and so the whole row, NaN (PyTorch's result); 2.6 vs 3.05 ms on 4096x1024."""
        vec, sc = self.states("(({b} > {a}) ? {b} : {a})", "-INFINITY", "m")
        tail = self.tail_state(vec, sc)
        self.loop(lambda u, t: vec[u].update(self.elem(self.at(u, t)[0], self.W)),
                  lambda t: tail.update(self.elem(self.tail_at(t)[0], 1)), self.n_acc)
        self.finish(vec, sc, "mx")

    def reduce_sum(self) -> None:
        """Pass 2: the sum of exp(x - max), then the row's logsumexp (log_softmax) or the
        reciprocal of the sum (softmax)."""
        vec, sc = self.states("({a} + {b})", "0", "e")
        tail = self.tail_state(vec, sc)
        self.loop(lambda u, t: self._sum_step(vec[u], u, *self.at(u, t), self.W),
                  lambda t: self._sum_step(tail, 0, *self.tail_at(t), 1), self.n_acc)
        self.finish(vec, sc, "se")
        ST = _vt(self.A, self.SW)
        for u in range(self.n_stats):
            s = str(u) if self.outer else ""
            if self.log:
                self.lines.append(f"{self.i}const {ST} lse{s} = mx{s} + log(se{s});")
            else:
                self.lines.append(f"{self.i}const {ST} inv{s} = ({ST})1 / se{s};")

    def _sum_step(self, f, u: int, xp: str, op_: str, w: int) -> list[str]:
        """Add exp(x - max) at xp to state f; with ``reuse`` also store it at op_."""
        e = f"exp({self.elem(xp, w)} - {self.stat('mx', u, w)})"
        if not self.reuse:
            return f.update(e)
        T = _vt(self.A, w)
        return [f"{{ const {T} e_ = {e};", "  " + _store(self.out, "e_", self.A, "out", op_, w),
                *_indent("  ", f.update("e_")), "}"]

    def write(self) -> None:
        """Pass 3: the result of each element."""
        self.loop(lambda u, t: self._result(u, *self.at(u, t), self.W),
                  lambda t: self._result(0, *self.tail_at(t), 1), self.n_stats)

    def _result(self, u: int, xp: str, op_: str, w: int) -> list[str]:
        """Store the result for the element(s) at xp to op_."""
        if self.log:
            v = f"{self.elem(xp, w)} - {self.stat('lse', u, w)}"
        elif self.reuse:
            v = f"{_load(self.out, 'out', op_, w)} * {self.stat('inv', u, w)}"
        else:
            v = f"exp({self.elem(xp, w)} - {self.stat('mx', u, w)}) * {self.stat('inv', u, w)}"
        return [_store(self.out, v, self.A, "out", op_, w)]


def _softmax_apply_source(spec: ReduceSpec, name: str) -> list[str]:
    """Second kernel of a split softmax: work-item (row, chunk) writes exp(x - lse) (or
    x - lse) for its chunk of the row, given the row's logsumexp in ``lse``."""
    x, out = _D(spec.x), _D(spec.out)
    A, W = _D(spec.acc).compute, spec.width
    ps = ["const long nitems", "const long nchunk", "const long chunk", "const long R",
          "const long rst", "const long ost"]
    for k in range(spec.nk):
        ps += [f"const long ks{k}", f"const long kst{k}", f"const long kos{k}"]
    ps += [f"__global const {x.cl}* restrict in", "const long ioff",
           f"__global {out.cl}* restrict out", "const long ooff",
           f"__global const {_D(spec.acc).cl}* restrict lse"]
    ind = "  "
    lines = [f"__kernel void {name}({', '.join(ps)}) {{",
             f"{ind}const long gid = get_global_id(0);",
             f"{ind}if (gid >= nitems) return;",
             f"{ind}const long row = gid / nchunk; const long ch = gid - row * nchunk;",
             f"{ind}const long lo = ch * chunk; const long hi = min(lo + chunk, R);",
             f"{ind}long p = ioff, o = ooff, rem = row;"]
    for k in reversed(range(spec.nk)):
        lines.append(f"{ind}{{ const long c_ = rem % ks{k}; rem /= ks{k}; "
                     f"p += c_ * kst{k}; o += c_ * kos{k}; }}")
    lines.append(f"{ind}const {A} l = lse[row];")

    def val(pos, w):
        e = _cvt(_load(x, "in", pos, w), x.compute, A, w)
        lv = "l" if w == 1 else f"(({A}{w})l)"
        return f"({e} - {lv})" if spec.kind == "log_softmax" else f"exp({e} - {lv})"

    lines += [f"{ind}long t = lo;",
              f"{ind}if (rst == 1 && ost == 1) {{",
              (f"{ind}  for (; t + {W} <= hi; t += {W}) "
               f"{{ {_store(out, val('p + t', W), A, 'out', 'o + t', W)} }}"),
              f"{ind}}}",
              (f"{ind}for (; t < hi; ++t) "
               f"{{ {_store(out, val('p + t * rst', 1), A, 'out', 'o + t * ost', 1)} }}"),
              "}"]
    return lines


def _softmax_tree(spec, ind) -> list[str]:
    """A work-group per row, in one read of the row: each work-item keeps an online (max,
    sum of exp) pair over its elements (caching them in local memory when the row fits),
    the group combines the pairs in a tree, then writes exp(x - max) / sum (log_softmax:
    x - max - log sum) from the cache or, for longer rows, from a second read. int
    counters in the loops around barriers (POCL-NOTES: PoCL on AVX-512 hosts)."""
    x, out = _D(spec.x), _D(spec.out)
    A, Lc, i = _D(spec.acc).compute, spec.local, ind
    elem = _cvt(_load(x, "in", "p + (long)t * rst", 1), x.compute, A, 1)
    C = spec.cache
    lines = [f"{i}__local {A} lm[{Lc}], ls[{Lc}], xs[{max(C, 1)}];",
             f"{i}const int n = (int)R, cached = n <= {C};",
             f"{i}{A} m = -INFINITY, e = 0;",
             f"{i}for (int t = lid; t < n; t += {Lc}) {{",
             f"{i}  const {A} x_ = {elem};",
             f"{i}  if (cached) xs[t] = x_;",
             # online: rescale the sum when the maximum grows (NaN propagates through m); the
             # new element adds exp(x_ - x_): 1, or NaN for +inf as exp(x - max) is there
             f"{i}  if (x_ > m || isnan(x_)) {{ e = e * exp(m - x_) + exp(x_ - x_); m = x_; }}",
             f"{i}  else if (x_ != -INFINITY) e += exp(x_ - m);  /* (a masked -inf adds 0) */",
             f"{i}}}",
             f"{i}lm[lid] = m; ls[lid] = e;",
             f"{i}for (int s_ = {Lc // 2}; s_ > 0; s_ >>= 1) {{",
             f"{i}  barrier(CLK_LOCAL_MEM_FENCE);",
             f"{i}  if (lid < s_) {{",
             f"{i}    const {A} m1 = lm[lid], m2 = lm[lid + s_];",
             f"{i}    const {A} mm = {MAX_NAN.format(a='m1', b='m2')};",
             f"{i}    const {A} sh = isinf(mm) ? ({A})0 : mm;",
             f"{i}    ls[lid] = ls[lid] * exp(m1 - sh) + ls[lid + s_] * exp(m2 - sh);",
             f"{i}    lm[lid] = mm;",
             f"{i}  }}",
             f"{i}}}",
             f"{i}barrier(CLK_LOCAL_MEM_FENCE);",
             f"{i}const {A} mx = lm[0], ssum = ls[0];"]
    v = "x_ - (mx + log(ssum))" if spec.kind == "log_softmax" else "exp(x_ - mx) / ssum"
    store = _store(out, v, A, "out", "o + (long)t * ost", 1)
    lines += [f"{i}for (int t = lid; t < n; t += {Lc}) {{",
              f"{i}  const {A} x_ = cached ? xs[t] : {elem};",
              f"{i}  {store}",
              f"{i}}}"]
    return lines


# --- cumsum -------------------------------------------------------------------------------


def _cumsum_source(spec: ReduceSpec, name: str) -> list[str]:
    """One work-item per row scans it in order, accumulating in ``acc``."""
    x, acc, out = _D(spec.x), _D(spec.acc), _D(spec.out)
    ps = ["const long nitems", "const long R", "const long rst", "const long ost"]
    for k in range(spec.nk):
        ps += [f"const long ks{k}", f"const long kst{k}", f"const long kos{k}"]
    ps += [f"__global const {x.cl}* restrict in", "const long ioff",
           f"__global {out.cl}* restrict out", "const long ooff"]
    ind = "  "
    lines = [f"__kernel void {name}({', '.join(ps)}) {{",
             f"{ind}const long row = get_global_id(0);",
             f"{ind}if (row >= nitems) return;",
             f"{ind}long p = ioff, o = ooff, rem = row;"]
    for k in reversed(range(spec.nk)):
        lines.append(f"{ind}{{ const long c_ = rem % ks{k}; rem /= ks{k}; "
                     f"p += c_ * kst{k}; o += c_ * kos{k}; }}")
    e = _element(spec, _in(spec, "p + t * rst", 1), 1)
    lines += [f"{ind}{acc.compute} a = 0;",
              f"{ind}for (long t = 0; t < R; ++t) {{",
              f"{ind}  a += {e};",
              f"{ind}  {_store(out, 'a', acc.compute, 'out', 'o + t * ost', 1)}",
              f"{ind}}}", "}"]
    return lines


# --- build --------------------------------------------------------------------------------

_programs: dict = {}
# kernel -> (spec, its Mode: one of the spec's kernels or COMBINE), for graph passes that
# rebuild a reduction with a prologue or an epilogue
KERNELS: dict = {}
def _register(prg, kname: str, source: str, spec: ReduceSpec, mode: str):
    """One kernel of a built reduction program: its argument types and positions come from
    its C signature in the generated source."""
    k = get_kernel(prg, kname, source)
    set_signature(k, kernel_signature(source, kname))
    KERNELS[k] = (spec, mode)
    return k


def reduce_program(dev, spec: ReduceSpec) -> ReduceProgram:
    """The built kernels of ``spec`` on ``dev`` (once per device and spec). A spec of mode
    "cpu" gets its scalar, inner and outer kernels in one program: one build (about
    0.35 s cold, 20 ms from PoCL's cache) serves every layout of the op."""
    key = (dev.index, spec)
    prog = _programs.get(key)
    if prog is not None:
        return prog
    name = spec.name()
    if spec.mode == Mode.CPU:
        modes = (Mode.SCALAR, Mode.INNER, Mode.OUTER) if spec.width > 1 else (Mode.SCALAR,)
    else:
        modes = (spec.mode,)
    if spec.kind in ("softmax", "log_softmax") and spec.mode == Mode.APPLY:
        gen = lambda s, n, m: _softmax_apply_source(s, n)
    elif spec.kind in ("softmax", "log_softmax"):
        gen = _softmax_source
    elif spec.kind == "cumsum":
        gen = lambda s, n, m: _cumsum_source(s, n)
    else:
        gen = _main_source
    mains = {m: gen(spec, f"{name}_{m}", m) for m in modes}
    comb_lines = None
    if spec.kind in ("fold", "arg", "welford", "lse"):
        comb_lines = _combine_source(spec, name + "_combine")
    src = _header(spec) + [t for t in (spec.prologue, spec.epilogue) if t]
    for lines in mains.values():
        src += lines + [""]
    source = "\n".join(src + (comb_lines or [])) + "\n"
    if needs_narrow_helpers(source) and _NARROW_HELPERS not in source:
        source = _NARROW_HELPERS + source
    prg = build(dev, source, ("-cl-mad-enable",), name)
    kernels = {m: _register(prg, f"{name}_{m}", source, spec, m) for m in mains}
    comb = _register(prg, name + "_combine", source, spec, Mode.COMBINE) if comb_lines else None
    prog = _programs[key] = ReduceProgram(kernels, comb, name, source)
    return prog


def stage1(kernel, args) -> bool:
    """Whether a main kernel launched with ``args`` is stage 1 of a split reduction (it
    writes partial states; the combine kernel stores the result)."""
    at = POSITIONS[kernel].get("partial")
    return at is not None and bool(args[at])


def out_rows(kernel, args) -> int:
    """Output elements of a main (or the combine) kernel launched with ``args``."""
    at = POSITIONS[kernel]
    if "nrows" in at:
        return int(args[at["nrows"]])
    return int(np.prod([args[i] for name, i in at.items()
                        if name.startswith("ks") and name[2:].isdigit()]))
