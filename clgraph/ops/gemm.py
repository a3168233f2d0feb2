"""The GPU GEMM family (kernels/matmul.cl: matmul_gemm) as a tunable kernel: its parameter
space, the shape classes it is tuned for, the test problem a candidate must solve, and
the kernel a matmul of some shape runs with the parameters the tuner chose.

A shape class is the dtype, M, N and K rounded up to 16, 64, 256, 1024 or 4096, and
whether A and B are read transposed ("nt": B transposed, as in x @ W.T). A candidate is
checked on a problem of its class a little smaller than the bucket (so tails are
exercised), with NaN guards around the operands and sentinels around the result: one
that reads or writes out of bounds fails its check, on PoCL as on a GPU."""

from __future__ import annotations

import itertools
import os
import warnings

import numpy as np
import pyopencl as cl

from .. import codegen, runtime, tune
from .. import dtypes as dt
from .registry import public

DEFAULT = {"MWG": 64, "NWG": 64, "KWG": 16, "MDIMC": 16, "NDIMC": 16, "DB": 0}
_SIZES = (16, 64, 256, 1024, 4096)
# good first tries, largest register tiles first (CLBlast's tunings of similar kernels on
# recent NVIDIA and AMD GPUs land near these); the rest of the space follows
_FIRST = [
    (128, 128, 16, 16, 16, 1), (128, 128, 8, 16, 16, 1), (64, 128, 16, 16, 16, 1),
    (128, 64, 16, 16, 16, 1), (64, 64, 16, 8, 8, 1), (128, 128, 32, 16, 16, 1),
    (64, 64, 16, 16, 16, 1), (64, 64, 32, 16, 16, 0), (32, 32, 16, 8, 8, 0),
    (32, 32, 16, 16, 16, 0),
]
_KEYS = ("MWG", "NWG", "KWG", "MDIMC", "NDIMC", "DB")
_GUARD = 64  # elements of guard before and after each test operand


def _bucket(n: int) -> int:
    return next((s for s in _SIZES if n <= s), _SIZES[-1])


def shape_class(d: dt.dtype, M: int, N: int, K: int, ta: bool, tb: bool) -> str:
    return (f"{d.name}:{_bucket(M)}x{_bucket(N)}x{_bucket(K)}:"
            f"{'t' if ta else 'n'}{'t' if tb else 'n'}")


def _parse(cls: str):
    name, dims, trans = cls.split(":")
    M, N, K = (int(x) for x in dims.split("x"))
    return dt._BY_NAME[name], M, N, K, trans[0] == "t", trans[1] == "t"


def base_defines(d: dt.dtype) -> tuple:
    acc = d.compute if d.is_floating_point else "long"
    defines = codegen.storage_defines(d) + (("ACC", acc),)
    if d is dt.float64:
        defines += (("VW", "4"),)
    return defines


def _acc_bytes(d: dt.dtype) -> int:
    return 4 if d.name in ("float16", "float32") else 8


def _valid(info, d, p: dict) -> bool:
    MWG, NWG, KWG, MDIMC, NDIMC = (p[k] for k in _KEYS[:5])
    threads = MDIMC * NDIMC
    local = (KWG * (MWG + 1) + KWG * NWG) * _acc_bytes(d)
    return (MWG % MDIMC == 0 and NWG % NDIMC == 0 and MWG // MDIMC <= 8
            and NWG // NDIMC <= 8 and threads <= info.max_work_group_size
            and (MWG * KWG) % threads == 0 and (KWG * NWG) % threads == 0
            and local <= info.local_memory)


def candidates(info, cls: str) -> list[dict]:
    """Valid parameter sets for ``cls`` on ``info``: the default first, then the good first
    tries, then the rest of the space; tiles far larger than the problem are left out."""
    d, M, N, _, _, _ = _parse(cls)
    space = [dict(zip(_KEYS, v)) for v in _FIRST]
    space += [dict(zip(_KEYS, v)) for v in itertools.product(
        (32, 64, 128), (32, 64, 128), (8, 16, 32), (8, 16, 32), (8, 16, 32), (0, 1))]
    out, seen = [], set()
    default = dict(DEFAULT)
    while not _valid(info, d, default):  # a device with small work-groups or local memory
        default["MDIMC"] //= 2
        default["NDIMC"] //= 2
        default["MWG"] //= 2
        default["NWG"] //= 2
    for p in [default] + space:
        key = tuple(p[k] for k in _KEYS)
        if key in seen or not _valid(info, d, p):
            continue
        if p is not default and (p["MWG"] > 2 * max(M, 32) or p["NWG"] > 2 * max(N, 32)):
            continue
        seen.add(key)
        out.append(p)
    return out


def geometry(p: dict, M: int, N: int, batch: int):
    """(global size, local size) of matmul_gemm, or matmul_mma, with parameters ``p``."""
    if "WARPS_M" in p:
        return mma_geometry(p, M, N, batch)
    return ((-(-N // p["NWG"]) * p["NDIMC"], -(-M // p["MWG"]) * p["MDIMC"], batch),
            (p["NDIMC"], p["MDIMC"], 1))


def kernel(info, d: dt.dtype, p: dict, extra_source: str = "", name: str = "matmul_gemm"):
    """A kernel of the family with parameters ``p``: matmul_gemm, or an implicit-GEMM
    convolution kernel (conv_gemm_fwd / _dx / _dw)."""
    defines = base_defines(d) + tuple((k, str(p[k])) for k in _KEYS)
    if name != "matmul_gemm":
        defines += (("GEMM_CONV", "1"),)
    return codegen.template_kernel(info, "matmul.cl", name, defines,
                                   extra_source=extra_source), defines


# --- the tuner's test problem ---------------------------------------------------------------


class _Problem:
    __slots__ = ("M", "N", "K", "d", "ta", "tb", "a", "b", "c", "ref", "c_host", "values",
                 "rtol")


def _guarded(info, arr: np.ndarray, fill) -> cl.Buffer:
    padded = np.concatenate([np.full(_GUARD, fill, arr.dtype), arr.ravel(),
                             np.full(_GUARD, fill, arr.dtype)])
    return cl.Buffer(info.context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                     hostbuf=padded)


def setup(info, cls: str) -> _Problem:
    d, M, N, K, ta, tb = _parse(cls)
    # a little under the bucket: tails of every tile size are exercised
    M, N, K = (max(1, s - 3) for s in (M, N, K))
    rng = np.random.default_rng(0)
    if d.is_floating_point:  # operands in the dtype's storage (bfloat16: its bits)
        a = dt.to_storage(rng.uniform(-1, 1, (M, K)), d)
        b = dt.to_storage(rng.uniform(-1, 1, (K, N)), d)
        guard, sentinel = (dt.to_storage(np.array([v]), d)[0] for v in (np.nan, 1234.5))
    else:
        a = rng.integers(-8, 8, (M, K)).astype(d.np)
        b = rng.integers(-8, 8, (K, N)).astype(d.np)
        guard, sentinel = np.iinfo(d.np).max // 2, 77
    pr = _Problem()
    pr.M, pr.N, pr.K, pr.d, pr.ta, pr.tb = M, N, K, d, ta, tb
    pr.rtol = 1e-2 if d in dt.NARROW_FLOATS else 1e-4
    # transposed operands are stored transposed and read through their strides
    pr.a = _guarded(info, np.ascontiguousarray(a.T) if ta else a, guard)
    pr.b = _guarded(info, np.ascontiguousarray(b.T) if tb else b, guard)
    pr.c_host = np.full(M * N + 2 * _GUARD, sentinel, a.dtype)
    pr.c = cl.Buffer(info.context, cl.mem_flags.READ_WRITE, pr.c_host.nbytes)
    pr.ref = dt.from_storage(a, d).astype(np.float64) @ dt.from_storage(b, d)
    a_rs, a_cs = (1, M) if ta else (K, 1)
    b_rs, b_cs = (1, K) if tb else (N, 1)
    pr.values = {"A": pr.a, "a_off": _GUARD, "a_bs": 0, "a_rs": a_rs, "a_cs": a_cs,
                 "B": pr.b, "b_off": _GUARD, "b_bs": 0, "b_rs": b_rs, "b_cs": b_cs,
                 "C": pr.c, "c_off": _GUARD, "M": M, "N": N, "K": K}
    return pr


def launcher(info, cls: str, p: dict, pr: _Problem):
    v = pr.values
    if "WARPS_M" in p:
        vec = vec8(pr.M, pr.N, pr.K, *((v[f"{x}_off"], v[f"{x}_bs"], v[f"{x}_rs"],
                                         v[f"{x}_cs"]) for x in "ab"))
        k, _ = mma_kernel(info, p, pr.d, vec)
    else:
        k, _ = kernel(info, pr.d, p)
    runtime.flush(info)
    cl.enqueue_copy(info.queue, pr.c, pr.c_host)
    args = codegen.pack(k, pr.values)
    gsize, lsize = geometry(p, pr.M, pr.N, 1)

    def go():
        k.set_args(*args)
        cl.enqueue_nd_range_kernel(info.queue, k, gsize, lsize)

    return go


def check(info, pr: _Problem) -> bool:
    out = np.empty_like(pr.c_host)
    runtime.flush(info)
    cl.enqueue_copy(info.queue, out, pr.c)
    body = dt.from_storage(out[_GUARD:_GUARD + pr.M * pr.N], pr.d).reshape(pr.M, pr.N)
    body = body.astype(np.float64)
    guards_ok = np.array_equal(out[:_GUARD], pr.c_host[:_GUARD]) and np.array_equal(
        out[-_GUARD:], pr.c_host[-_GUARD:])
    if not pr.d.is_floating_point:
        return guards_ok and np.array_equal(body, pr.ref)
    return guards_ok and bool(np.allclose(body, pr.ref, rtol=pr.rtol,
                                          atol=pr.rtol * np.sqrt(pr.K)))


def common_classes(info) -> list[str]:
    """What ``python -m clgraph.tune`` tunes ahead of time: square float32 and float16
    products of every bucket, plain and with B transposed (x @ W.T)."""
    out = []
    for d in (dt.float32, dt.float16):
        for s in _SIZES[1:]:
            for tb in (False, True):
                out.append(shape_class(d, s, s, s, False, tb))
    return out


GEMM = tune.register(tune.Tunable("gemm", candidates, setup, launcher, check,
                                  common_classes))


# --- tensor cores (kernels/matmul.cl: matmul_mma) -------------------------------------------
#
# NVIDIA's OpenCL C accepts inline PTX, and mma.sync reaches the tensor cores from it. A
# device uses matmul_mma for float16 products once a probe built the family's default and
# reproduced the tuner's reference product on it; any failure (an older GPU, another
# driver) leaves the GEMM family in charge. CLGRAPH_TENSOR_CORES=0 turns the path off;
# =emulate runs it on any device with the instruction done in software, which is how its
# tiling is tested on CPUs.

MMA_DEFAULT = {"WARPS_M": 2, "WARPS_N": 2, "WTM": 2, "WTN": 4, "KS": 32, "DB": 1}
_MMA_KEYS = ("WARPS_M", "WARPS_N", "WTM", "WTN", "KS", "DB")
# large tiles first: 128 x 128 per work-group reaches the tensor cores' rate on big GPUs
_MMA_FIRST = [
    (2, 4, 4, 4, 32, 1), (4, 2, 2, 8, 32, 1), (2, 2, 4, 8, 32, 1), (2, 4, 4, 4, 64, 1),
    (4, 2, 2, 8, 16, 1), (2, 2, 4, 4, 32, 1), (2, 4, 2, 4, 32, 1),
]
_probed: dict = {}  # (device index, mode, dtype) -> whether the probe passed


def mma_mode(info) -> str | None:
    """"ptx" on NVIDIA's platform, "emulate" under CLGRAPH_TENSOR_CORES=emulate, else None."""
    env = os.environ.get("CLGRAPH_TENSOR_CORES", "")
    if env == "0":
        return None
    if env == "emulate":
        return "emulate"
    return "ptx" if "NVIDIA" in info.platform.upper() else None


def tensor_cores(info, d: dt.dtype = dt.float16) -> bool:
    """Whether products of ``d`` operands (float16, bfloat16; float32 as TF32) can run on
    tensor cores on ``info`` (probed once per device and dtype)."""
    mode = mma_mode(info)
    if mode is None or d not in (dt.float16, dt.bfloat16, dt.float32):
        return False
    key = (info.index, mode, d)
    ok = _probed.get(key)
    if ok is None:
        ok = _probed[key] = _probe(info, d)
    return ok


def _probe(info, d: dt.dtype) -> bool:
    cls = shape_class(d, 64, 64, 64, False, True)
    try:
        pr = mma_setup(info, cls)
        go = launcher(info, cls, mma_candidates(info, cls)[0], pr)
        go()
        runtime.finish(info)
        return check(info, pr)
    except Exception:  # noqa: BLE001  no such instruction, or a driver without inline PTX
        return False


def _mma_shape(p: dict) -> tuple[int, int, int]:
    """(rows, columns, work-items) of a matmul_mma work-group."""
    return (p["WARPS_M"] * p["WTM"] * 16, p["WARPS_N"] * p["WTN"] * 8,
            32 * p["WARPS_M"] * p["WARPS_N"])


def _mma_valid(info, d: dt.dtype, p: dict, emulate: bool) -> bool:
    bm, bn, threads = _mma_shape(p)
    epw = 1 if d is dt.float32 else 2  # operands per 32-bit word
    local = (bm + bn) * (p["KS"] + 4 * epw) * 4 // epw + (threads * 24 if emulate else 0)
    return (threads <= info.max_work_group_size and p["WTM"] * p["WTN"] <= 32
            and (bm * p["KS"]) % threads == 0 and (bn * p["KS"]) % threads == 0
            and local <= info.local_memory)


def mma_candidates(info, cls: str) -> list[dict]:
    """Valid matmul_mma parameter sets for ``cls`` on ``info``, the default first."""
    d, M, N, _, _, _ = _parse(cls)
    emulate = mma_mode(info) == "emulate"
    space = [dict(MMA_DEFAULT)] + [dict(zip(_MMA_KEYS, v)) for v in _MMA_FIRST]
    space += [dict(zip(_MMA_KEYS, v)) for v in itertools.product(
        (1, 2, 4), (1, 2, 4), (1, 2, 4), (1, 2, 4, 8), (16, 32, 64), (0, 1))]
    out, seen = [], set()
    for n, p in enumerate(space):
        key = tuple(p[k] for k in _MMA_KEYS)
        bm, bn, _ = _mma_shape(p)
        if key in seen or not _mma_valid(info, d, p, emulate):
            continue
        if n and (bm > 2 * max(M, 32) or bn > 2 * max(N, 32)):
            continue
        seen.add(key)
        out.append(p)
    return out


def mma_geometry(p: dict, M: int, N: int, batch: int):
    bm, bn, threads = _mma_shape(p)
    return (-(-N // bn) * threads, -(-M // bm), batch), (threads, 1, 1)


def vec8(M: int, N: int, K: int, a: tuple, b: tuple) -> bool:
    """Whether matmul_mma may move 16-bit operands 8 elements per load (VEC8): each of A
    (M, K) and B (K, N), given as (offset, batch stride, row stride, column stride), is
    read along a unit-stride dimension whose rows start 16-byte aligned and hold a
    multiple of 8 elements."""
    def ok(op, rows, cols):
        off, bs, rs, cs = op
        if off % 8 or bs % 8:
            return False
        return (cs == 1 and rs % 8 == 0 and cols % 8 == 0) or \
            (rs == 1 and cs % 8 == 0 and rows % 8 == 0)

    return ok(a, M, K) and ok(b, K, N)


def mma_kernel(info, p: dict, d: dt.dtype = dt.float16, vec: bool = False):
    """matmul_mma with parameters ``p`` for float16 or bfloat16 (or float32 as TF32)
    operands, and its defines; ``vec``: the operands allow 8-element loads (vec8)."""
    defines = base_defines(d) + tuple((k, str(p[k])) for k in _MMA_KEYS)
    defines += (("GEMM_MMA", "1"),) + ((("MMA_TF32", "1"),) if d is dt.float32 else ())
    if vec and d in dt.NARROW_FLOATS:
        defines += (("VEC8", "1"),)
    if mma_mode(info) == "emulate":
        defines += (("MMA_EMULATE", "1"),)
    return codegen.template_kernel(info, "matmul.cl", "matmul_mma", defines), defines


def mma_setup(info, cls: str) -> _Problem:
    """The tuner's test problem of ``cls``; float32 products are checked to TF32's
    precision (operands rounded to 11 significant bits)."""
    pr = setup(info, cls)
    if pr.d is dt.float32:
        pr.rtol = 2e-3
    return pr


def _mma_classes(info) -> list[str]:
    if not tensor_cores(info):
        return []
    return [shape_class(dt.float16, s, s, s, False, tb) for s in _SIZES[1:]
            for tb in (False, True)]


MMA = tune.register(tune.Tunable("gemm_mma", mma_candidates, mma_setup, launcher, check,
                                 _mma_classes))


_chosen: dict = {}


def for_shape(info, d: dt.dtype, M: int, N: int, K: int, ta: bool, tb: bool,
              name: str = "matmul_gemm", vec: bool = False):
    """(kernel, its defines, parameters) of matmul_gemm for this product on ``info``; or of
    an implicit-GEMM convolution kernel ``name``, with the parameters tuned for the product
    of the same shape. ``vec``: the operands allow 8-element loads (vec8; tensor cores)."""
    tf32 = d is dt.float32 and _precision["float32"] != "highest"
    low = d in dt.NARROW_FLOATS or tf32
    key = (info.index, d, _bucket(M), _bucket(N), _bucket(K), ta, tb, name, tf32, vec)
    hit = _chosen.get(key)
    if hit is None:
        cls = shape_class(d, M, N, K, ta, tb)
        if name == "matmul_gemm" and low and tensor_cores(info, d):
            p = tune.params(MMA, info, cls)
            k, defines = mma_kernel(info, p, d, vec)
        else:
            p = tune.params(GEMM, info, cls)
            k, defines = kernel(info, d, p, name=name)
        hit = _chosen[key] = (k, defines, p)
    return hit


# --- float32 matmul precision (torch.set_float32_matmul_precision) -------------------------

_precision = {"float32": "highest"}


@public(method=False)
def set_float32_matmul_precision(precision) -> None:
    """torch.set_float32_matmul_precision: "highest" (float32 products, the default),
    "high" or "medium" (float32 products may round their operands to TF32 and run on
    tensor cores, where a device's probe found them; elsewhere they stay float32)."""
    if not isinstance(precision, str):
        raise RuntimeError(f"set_float32_matmul_precision expects a str, but got "
                           f"{type(precision).__name__}")
    if precision not in ("highest", "high", "medium"):
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "set_float32_matmul_precision call has no effect.", UserWarning,
                      stacklevel=2)
        return
    _precision["float32"] = precision


@public(method=False)
def get_float32_matmul_precision() -> str:
    """torch.get_float32_matmul_precision."""
    return _precision["float32"]
