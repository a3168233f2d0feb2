"""OpenCL C for elementwise groups: the loop, the view index math, explicit vector types
and the tail. An elementwise group is a tiny graph (inputs, scalar-expression ops, outputs);
an eager op is a group of one. Imports only dtypes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import dtypes as dt

# Integer helpers whose C semantics differ from PyTorch's (floor division, Python-style
# remainder, integer power, gcd / lcm of negative values; lcm wraps as C++'s int promotion
# does) or that would trap on x86 (division by zero, MIN / -1).
_INT_HELPERS = r"""
#define CG_INT_HELPERS(T, UT) \
inline T cg_div_##T(T a, T b) { return b == 0 ? (T)0 : ((b == (T)-1) ? (T)(-(UT)a) : a / b); } \
inline T cg_floordiv_##T(T a, T b) { \
  if (b == 0) return (T)0; if (b == (T)-1) return (T)(-(UT)a); \
  T q = a / b; return (q * b != a && ((a < 0) != (b < 0))) ? q - 1 : q; } \
inline T cg_mod_##T(T a, T b) { \
  if (b == 0 || b == (T)-1) return (T)0; T r = a % b; \
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; } \
inline T cg_pow_##T(T a, T b) { \
  if (b < 0) return a == 1 ? (T)1 : (a == (T)-1 ? ((b & 1) ? (T)-1 : (T)1) : (T)0); \
  T r = 1; while (b) { if (b & 1) r *= a; a *= a; b >>= 1; } return r; } \
inline T cg_gcd_##T(T a, T b) { \
  UT x = a < 0 ? -(UT)a : (UT)a, y = b < 0 ? -(UT)b : (UT)b; \
  while (y) { UT t = x % y; x = y; y = t; } return (T)x; } \
inline T cg_lcm_##T(T a, T b) { \
  T g = cg_gcd_##T(a, b); if (g == 0) return (T)0; \
  long r = (long)(a / g) * (long)b; return (T)(r < 0 ? -r : r); }
CG_INT_HELPERS(char, uchar)
CG_INT_HELPERS(uchar, uchar)
CG_INT_HELPERS(short, ushort)
CG_INT_HELPERS(int, uint)
CG_INT_HELPERS(long, ulong)
"""

# float16 and bfloat16 are stored in 16 bits and computed in float. cg_half<w> and
# cg_bfr<w> round a value cast to the narrow type (a float scalar, a wider operand) to its
# precision, as PyTorch casts operands to the common dtype: float16(0.1) == 0.1 is True,
# float16(1.0) - 1.0001 is 0. bfloat16 is float's upper half: cg_bf16<w> widens the bits,
# cg_bfbits<w> rounds to nearest even (a NaN stays a quiet NaN), as PyTorch converts.
_NARROW_HELPERS = r"""
#define CG_HALF_ROUND(W) \
inline float##W cg_half##W(float##W x) { \
  ushort h[16]; vstore_half##W(x, 0, (__private half*)h); \
  return vload_half##W(0, (__private half*)h); }
CG_HALF_ROUND()
CG_HALF_ROUND(2)
CG_HALF_ROUND(4)
CG_HALF_ROUND(8)
CG_HALF_ROUND(16)
#if defined(__clang__)
/* PoCL does not inline vloadN/vstoreN/convert_*: unaligned vector types load in place */
#define CG_CVT(v, t) __builtin_convertvector((v), t)
#define CG_USHORTS(W) typedef ushort cg_ush##W __attribute__((ext_vector_type(W), aligned(2)));
CG_USHORTS(2)
CG_USHORTS(4)
CG_USHORTS(8)
CG_USHORTS(16)
#define CG_LDBF(W, p) cg_bf16##W(*(__global const cg_ush##W*)(p))
#define CG_STBF(W, v, p) (*(__global cg_ush##W*)(p) = cg_bfbits##W(v))
#else
#define CG_CVT(v, t) convert_##t(v)
#define CG_LDBF(W, p) cg_bf16##W(vload##W(0, (p)))
#define CG_STBF(W, v, p) vstore##W(cg_bfbits##W(v), 0, (p))
#endif
inline float cg_bf16(ushort b) { return as_float((uint)b << 16); }
inline ushort cg_bfbits(float x) {
  const uint u = as_uint(x);
  return (ushort)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u
                                                  : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16); }
inline float cg_bfr(float x) { return cg_bf16(cg_bfbits(x)); }
#define CG_BF16(W) \
inline float##W cg_bf16##W(ushort##W b) { return as_float##W(CG_CVT(b, uint##W) << 16); } \
inline ushort##W cg_bfbits##W(float##W x) { \
  const uint##W u = as_uint##W(x); \
  const uint##W r = (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u \
                                                    : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16; \
  return CG_CVT(r, ushort##W); } \
inline float##W cg_bfr##W(float##W x) { return cg_bf16##W(cg_bfbits##W(x)); }
CG_BF16(2)
CG_BF16(4)
CG_BF16(8)
CG_BF16(16)
"""


class _Narrow(NamedTuple):
    """How kernels reach a dtype stored narrower than it computes (C format strings over
    {p} the pointer, {i} the element position, {v} a value, {w} the vector width)."""

    load1: str
    loadw: str
    store1: str
    storew: str
    round: str  # a function name prefix; the width follows it


NARROW = {
    "float16": _Narrow("vload_half({i}, {p})", "vload_half{w}(0, {p} + {i})",
                       "vstore_half({v}, {i}, {p});", "vstore_half{w}({v}, 0, {p} + {i});",
                       "cg_half"),
    "bfloat16": _Narrow("cg_bf16({p}[{i}])", "CG_LDBF({w}, {p} + {i})",
                        "{p}[{i}] = cg_bfbits({v});", "CG_STBF({w}, {v}, {p} + {i});",
                        "cg_bfr"),
}


def load(d: dt.dtype, ptr: str, pos: str, w: int) -> str:
    """The C expression loading element(s) ``pos`` of ``ptr`` as d's compute type."""
    n = NARROW.get(d.name)
    if n is not None:
        return (n.load1 if w == 1 else n.loadw).format(p=ptr, i=pos, w=w)
    return f"{ptr}[{pos}]" if w == 1 else f"vload{w}(0, {ptr} + {pos})"


def store(d: dt.dtype, val: str, ptr: str, pos: str, w: int) -> str:
    """The C statement storing ``val`` (d's compute type) at element(s) ``pos``."""
    n = NARROW.get(d.name)
    if n is not None:
        return (n.store1 if w == 1 else n.storew).format(p=ptr, i=pos, v=val, w=w)
    return f"{ptr}[{pos}] = {val};" if w == 1 else f"vstore{w}({val}, 0, {ptr} + {pos});"


def round_to(d: dt.dtype, expr: str, w: int) -> str:
    """``expr`` (a float value) rounded to narrow dtype d's precision."""
    return f"{NARROW[d.name].round}{'' if w == 1 else w}({expr})"


# C functions with loops and branches that elementwise rows call by name, one per compute
# type (``cg_<name>_float``, ``cg_<name>_double``): a row registers its template (``T`` the
# compute type) beside its expression (ops/elementwise.py: digamma, erfinv), and every
# program that calls one gets its definition ahead of its source (special_helpers).
_SPECIAL: dict[str, str] = {}
_SPECIAL_USE = None


def register_helper(name: str, template: str) -> None:
    """Define ``cg_<name>_T`` (template: C code with the compute type as the token T)."""
    global _SPECIAL_USE
    _SPECIAL[name] = template
    _SPECIAL_USE = re.compile(r"\bcg_(" + "|".join(_SPECIAL) + r")_(float|double)\b")


def special_helpers(source: str) -> str:
    """Definitions of the registered functions ``source`` calls (cg_digamma_float, ...)
    and does not define yet, to put ahead of it; "" when there are none."""
    if _SPECIAL_USE is None:
        return ""
    used = sorted((n, t) for n, t in set(_SPECIAL_USE.findall(source))
                  if f"inline {t} cg_{n}_{t}(" not in source)
    if not used:
        return ""
    used = _with_callees(used, source)
    out = []
    if any(t == "double" for _, t in used):
        out.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
    for name, t in used:  # T, the compute type, is a whole token of the template
        out.append(re.sub(r"\b(cg_\w+?)_T\(", rf"\1_{t}(", re.sub(r"\bT\b", t, _SPECIAL[name])))
    return "\n".join(out) + "\n"


def _with_callees(used, source):
    """``used`` and the helpers their templates call (``cg_<name>_T``), each callee ahead of
    its callers; none that ``source`` defines already."""
    order, seen = [], set()

    def visit(name, t):
        if (name, t) in seen or f"inline {t} cg_{name}_{t}(" in source:
            return
        seen.add((name, t))
        for callee in sorted(set(re.findall(r"\bcg_(\w+?)_T\(", _SPECIAL[name])) - {name}):
            if callee in _SPECIAL:
                visit(callee, t)
        order.append((name, t))

    for name, t in used:
        visit(name, t)
    return order


def needs_narrow_helpers(source: str) -> bool:
    return "cg_half" in source or "cg_bf" in source


# The layout of an elementwise kernel's operand (EwGroup.inputs and outputs): how the kernel
# reaches element ``i`` of it.
CONTIG = "c"  # contiguous in the output's shape: at offset + i
STRIDED = "v"  # a strided view: an offset and one stride per dimension
UNIT = "v1"  # a strided view whose innermost stride is 1 (the vector path loads vectors)
BROADCAST = "v0"  # a strided view whose innermost stride is 0 (one element, splatted)
SCALAR = "s"  # a scalar argument, the same for every element


def is_strided(layout: str) -> bool:
    """STRIDED, UNIT or BROADCAST: the operand comes with strides."""
    return layout[0] == "v"


@dataclass(frozen=True)
class EwOp:
    """One scalar-expression node of a group: ``expr`` over ``args`` (value indices), each
    argument cast to its entry in ``casts`` (dtype names), result of dtype ``out``."""

    name: str
    expr: str
    args: tuple[int, ...]
    casts: tuple[str, ...]
    out: str
    argnames: tuple[str, ...]
    vec: bool


@dataclass(frozen=True)
class EwGroup:
    """Inputs are (dtype name, layout), any layout above; outputs are (value index, dtype
    name, layout) with layout CONTIG or STRIDED."""

    inputs: tuple[tuple[str, str], ...]
    ops: tuple[EwOp, ...]
    outputs: tuple[tuple[int, str, str], ...]
    ndim: int
    width: int  # elements per work-item in the vector path; 1 disables it
    in_place: bool = False  # outputs may alias inputs (no ``restrict``)

    def name(self) -> str:
        ops = "_".join(dict.fromkeys(o.name for o in self.ops))[:48]
        h = hashlib.sha1(repr(self).encode()).hexdigest()[:6]
        return f"cg_{ops}_{h}"


def _D(name: str) -> dt.dtype:
    return dt._BY_NAME[name]


# PoCL 3.0 (LLVM 14, SLEEF) computes pow and fmod on double8 wrongly next to lanes holding
# 0: 1.5 ** 1.5 came out 0.65 (double4, float8 and float16 are right). Such groups run one
# element per work-item.
_WIDE_DOUBLE_BROKEN = ("pow(", "fmod(")


def vectorizable(group: EwGroup) -> bool:
    if group.width <= 1:
        return False
    if group.width > 4 and any(f in o.expr for o in group.ops for f in _WIDE_DOUBLE_BROKEN) \
            and any(_D(c).compute == "double" for o in group.ops for c in (*o.casts, o.out)):
        return False
    if any(lay == STRIDED for _, lay in group.inputs) or any(
            lay != CONTIG for *_, lay in group.outputs):
        return False
    names = [d for d, _ in group.inputs] + [o.out for o in group.ops]
    names += [d for _, d, _ in group.outputs]
    names += [c for o in group.ops for c in o.casts]
    return all(o.vec for o in group.ops) and all(_D(n).is_floating_point for n in names)


def _convert(expr: str, src: str, dst: str, width: int) -> str:
    """Cast a value of compute type src to compute type dst (scalar or vector)."""
    s, d = _D(src), _D(dst)
    if d.name in NARROW and s is not d and s.itemsize > 1:  # (8-bit values are exact)
        if s.compute != "float":
            expr = f"(float)({expr})" if width == 1 else f"convert_float{width}({expr})"
        return round_to(d, expr, width)
    if s.compute == d.compute:
        return expr
    if d is dt.bool_:
        return f"(uchar)(({expr}) != 0)" if width == 1 else None
    if width == 1:
        return f"({d.compute})({expr})"
    return f"convert_{d.compute}{width}({expr})"


def emit(group: EwGroup, name: str | None = None,
         as_function: bool = False) -> tuple[str, str]:
    """OpenCL C source and kernel name for an elementwise group. ``as_function`` makes it an
    inline function of the work-item index ``gid`` instead (a segment of a fused kernel)."""
    name = name or group.name()
    r = group.ndim
    vec = vectorizable(group)
    W = group.width if vec else 1
    types = {d for d, _ in group.inputs} | {o.out for o in group.ops}
    types |= {d for _, d, _ in group.outputs}
    types |= {c for o in group.ops for c in o.casts}
    lines = []
    if "float64" in types:
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
    if any(_D(t).kind == 1 for t in types):
        lines.append(_INT_HELPERS)
    helpers_at = len(lines)
    params = [p.decl for p in signature(group)]
    gid = "gid" if as_function else "get_global_id(0)"
    if as_function:
        lines.append(f"inline void {name}({', '.join(params + ['const long gid'])}) {{")
    else:
        lines.append(f"__kernel void {name}({', '.join(params)}) {{")
    if vec:
        strided = any(is_strided(lay) for _, lay in group.inputs)
        # strided operands: a vector must stay within one innermost row
        row_ok = f" && sh{r - 1} % {W} == 0" if strided else ""
        lines.append(f"  const long base = (long){gid} * {W};")
        lines.append(f"  if (base + {W} <= n{row_ok}) {{")
        lines += _body(group, W, "base", "    ")
        lines.append("  } else {")
        lines.append(f"    for (long i = base; i < n && i < base + {W}; ++i) {{")
        lines += _body(group, 1, "i", "      ")
        lines.append("    }")
        lines.append("  }")
    else:
        lines.append(f"  const long i = {gid};")
        lines.append("  if (i >= n) return;")
        lines += _body(group, 1, "i", "  ")
    lines.append("}")
    if any(needs_narrow_helpers(line) for line in lines):
        lines.insert(helpers_at, _NARROW_HELPERS)
    return "\n".join(lines) + "\n", name


class Param(NamedTuple):
    """One parameter of a generated elementwise kernel: ``kind`` is "buf" (a buffer),
    "int" (a size, an offset or a stride) or "scalar" (a scalar operand); ``ctype`` its
    OpenCL type (the element type for a buffer); ``decl`` its C declaration; ``np_type``
    how pyopencl packs it (None: a buffer); ``source`` the Python expression of its value
    in a call's terms (``packer``): ``n``, ``shape[d]``, ``a[k]`` (the k-th operand: a
    scalar or a tensor), ``o[k]`` (the k-th output tensor), ``st[k][d]`` (the strides of the
    k-th operand, outputs numbered after the operands); ``operand`` the operand it belongs
    to in that numbering (-1: the element count and the shape)."""

    kind: str
    ctype: str
    decl: str
    np_type: object
    source: str
    operand: int

    @property
    def name(self) -> str:
        return self.decl.split()[-1]


_NP_SCALAR = {"float": np.float32, "double": np.float64, "long": np.int64, "int": np.int32,
              "short": np.int16, "char": np.int8, "uchar": np.uint8, "half": np.float16}


def signature(group: EwGroup) -> tuple[Param, ...]:
    """The kernel's parameters, the one description its C parameter list, its argument
    types, its argument packing (``packer``) and the fusion passes (``fuse.split``) derive
    from: n and the shape, then per input a scalar, or a buffer with its offset (and strides
    for a strided view), then per output the same."""
    r = group.ndim

    def ints(operand, *names_sources):
        return [Param("int", "long", f"const long {n}", np.int64, s, operand)
                for n, s in names_sources]

    params = ints(-1, ("n", "n"), *((f"sh{d}", f"shape[{d}]") for d in range(r)))
    for k, (dname, lay) in enumerate(group.inputs):
        d = _D(dname)
        if lay == SCALAR:
            params.append(Param("scalar", d.compute, f"const {d.compute} s{k}",
                                _NP_SCALAR[d.compute], f"a[{k}]", k))
            continue
        restrict = "" if group.in_place else "restrict "
        params.append(Param("buf", d.cl, f"__global const {d.cl}* {restrict}in{k}", None,
                            f"a[{k}]._storage.buf", k))
        params += ints(k, (f"off{k}", f"a[{k}]._offset"))
        if is_strided(lay):
            params += ints(k, *((f"st{k}_{j}", f"st[{k}][{j}]") for j in range(r)))
    nin = len(group.inputs)
    for k, (_, dname, lay) in enumerate(group.outputs):
        d = _D(dname)
        params.append(Param("buf", d.cl, f"__global {d.cl}* out{k}", None,
                            f"o[{k}]._storage.buf", nin + k))
        params += ints(nin + k, (f"ooff{k}", f"o[{k}]._offset"))
        if is_strided(lay):
            params += ints(nin + k, *((f"ost{k}_{j}", f"st[{nin + k}][{j}]") for j in range(r)))
    return tuple(params)


_packers: dict = {}


def packer(group: EwGroup):
    """``pack(n, shape, a, o, st) -> list``: the kernel's arguments in its signature's order
    from a call's element count, (collapsed) shape, operands (tensors and scalars, in the
    group's input order), output tensors and strides (per operand, then per output; only
    the strided ones are read). Generated once per group from ``signature``."""
    fn = _packers.get(group)
    if fn is None:
        body = ", ".join(p.source for p in signature(group))
        fn = _packers[group] = eval(f"lambda n, shape, a, o, st: [{body}]")
    return fn


def _vt(width: int):
    """The compute type's spelling at this width (float, float8)."""
    return (lambda c: c) if width == 1 else (lambda c: f"{c}{width}")


def _body(group: EwGroup, width: int, idx: str, indent: str) -> list[str]:
    """Loads, expressions and stores for one element (width 1) or one vector at ``idx``."""
    r = group.ndim
    out = []
    if r and (any(is_strided(lay) for _, lay in group.inputs) or any(
            is_strided(lay) for *_, lay in group.outputs)):
        out += _coords(r, idx, indent)
    vals: list[tuple[str, str]] = []  # (C expression of the value, dtype name)
    out += _loads(group, width, idx, indent, vals)
    out += _exprs(group, width, indent, vals)
    out += _stores(group, width, idx, indent, vals)
    return out


def _coords(r: int, idx: str, indent: str) -> list[str]:
    """c0..c{r-1}, the coordinates of flat index ``idx`` in shape sh0..sh{r-1}: in 32-bit
    arithmetic while n fits (a 64-bit division by a runtime size costs 40-90 cycles on x86,
    several times the element's memory traffic), the outermost one without a division."""
    out = [f"{indent}long {', '.join(f'c{j}' for j in range(r))};"]
    for cond, t in (("if (n <= 4294967295L) {", "uint"), ("} else {", "long")):
        out.append(indent + cond)
        out.append(f"{indent}  {t} rem = ({t})({idx});")
        for j in reversed(range(1, r)):
            out.append(f"{indent}  c{j} = rem % ({t})sh{j}; rem /= ({t})sh{j};")
        out.append(f"{indent}  c0 = rem;")
    out.append(indent + "}")
    return out


def _loads(group: EwGroup, width: int, idx: str, indent: str, vals: list) -> list[str]:
    r, vt, out = group.ndim, _vt(width), []
    for k, (dname, lay) in enumerate(group.inputs):
        d = _D(dname)
        if lay == SCALAR:
            expr = round_to(d, f"s{k}", 1) if d.name in NARROW else f"s{k}"
            if width > 1:
                expr = f"(({vt(d.compute)})({expr}))"
        else:
            if lay == CONTIG:
                pos = f"off{k} + {idx}"
            else:
                pos = " + ".join([f"off{k}"] + [f"c{j} * st{k}_{j}" for j in range(r)])
            if width == 1:
                expr = load(d, f"in{k}", pos, 1)
            elif lay == BROADCAST:  # broadcast along the vector: one element, splatted
                expr = f"(({vt(d.compute)})({load(d, f'in{k}', pos, 1)}))"
            else:
                expr = load(d, f"in{k}", pos, width)
        out.append(f"{indent}const {vt(d.compute)} v{k} = {expr};")
        vals.append((f"v{k}", dname))
    return out


def _exprs(group: EwGroup, width: int, indent: str, vals: list) -> list[str]:
    vt, out = _vt(width), []
    for o in group.ops:
        k = len(vals)
        sub = {"T": vt(_D(o.casts[-1] if o.casts else o.out).compute)}
        for an, a, c in zip(o.argnames, o.args, o.casts):
            vexpr, vd = vals[a]
            sub[an] = _convert(vexpr, vd, c, width)
        res = o.expr.format(**sub)
        od = _D(o.out)
        if od is dt.bool_:
            res = f"(uchar)(({res}) != 0)"
        elif width == 1:
            res = f"({od.compute})({res})"
        else:
            res = f"convert_{od.compute}{width}({res})"
        if od.name in NARROW and od.name not in o.casts:
            # a narrowing cast (x.half() inside a fused group) rounds, overflowing to
            # inf, as eager's store does; narrow ops' own results stay in float
            res = round_to(od, res, width)
        out.append(f"{indent}const {vt(od.compute)} v{k} = {res};")
        vals.append((f"v{k}", o.out))
    return out


def _stores(group: EwGroup, width: int, idx: str, indent: str, vals: list) -> list[str]:
    r, out = group.ndim, []
    for k, (vi, dname, lay) in enumerate(group.outputs):
        d = _D(dname)
        vexpr = _convert(vals[vi][0], vals[vi][1], dname, width)
        if lay == CONTIG:
            pos = f"ooff{k} + {idx}"
        else:
            pos = " + ".join([f"ooff{k}"] + [f"c{j} * ost{k}_{j}" for j in range(r)])
        out.append(indent + store(d, vexpr, f"out{k}", pos, width))
    return out
