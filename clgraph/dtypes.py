"""Dtypes: one row per dtype (name, numpy dtype, OpenCL storage and compute types) and
PyTorch's type promotion. Imports nothing from clgraph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class dtype:
    """A tensor element type, printed and compared like ``torch.float32``."""

    name: str
    np: np.dtype
    cl: str  # OpenCL type used in global memory
    compute: str  # OpenCL type arithmetic is done in (half and bfloat16: float)
    kind: int  # 0 bool, 1 integer, 2 floating, 3 complex
    rank: int  # position in the promotion lattice
    short: str  # short name in graph printouts
    scalar_type: str  # PyTorch's name in messages ("Float"; torch.FloatTensor)

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def tensor_type(self) -> str:
        """The legacy type name, as Tensor.type() gives it: "FloatTensor"."""
        return self.scalar_type + "Tensor"

    @property
    def is_floating_point(self) -> bool:
        return self.kind == 2

    @property
    def is_complex(self) -> bool:
        return self.kind == 3

    @property
    def is_signed(self) -> bool:
        return self.kind >= 2 or self.np.kind == "i"

    def __repr__(self) -> str:
        return "torch." + self.name if _TORCH_REPR else "clgraph." + self.name

    __str__ = __repr__

    def __reduce__(self):
        return (_by_name, (self.name,))


_TORCH_REPR = True  # repr(dtype) reads like PyTorch's so printed tensors match byte for byte

bool_ = dtype("bool", np.dtype(np.bool_), "uchar", "uchar", 0, 0, "b8", "Bool")
uint8 = dtype("uint8", np.dtype(np.uint8), "uchar", "uchar", 1, 1, "u8", "Byte")
int8 = dtype("int8", np.dtype(np.int8), "char", "char", 1, 2, "i8", "Char")
int16 = dtype("int16", np.dtype(np.int16), "short", "short", 1, 3, "i16", "Short")
int32 = dtype("int32", np.dtype(np.int32), "int", "int", 1, 4, "i32", "Int")
int64 = dtype("int64", np.dtype(np.int64), "long", "long", 1, 5, "i64", "Long")
float16 = dtype("float16", np.dtype(np.float16), "half", "float", 2, 6, "f16", "Half")
# numpy has no bfloat16: its host storage is the bits, as uint16 (to_storage/from_storage)
bfloat16 = dtype("bfloat16", np.dtype(np.uint16), "ushort", "float", 2, 7, "bf16", "BFloat16")
float32 = dtype("float32", np.dtype(np.float32), "float", "float", 2, 8, "f32", "Float")
float64 = dtype("float64", np.dtype(np.float64), "double", "double", 2, 9, "f64", "Double")

# complex: interleaved (real, imaginary) pairs of the real type; no kernel computes on them
# directly, their ops run on the real view (ops/complex.py)
complex64 = dtype("complex64", np.dtype(np.complex64), "float2", "float2", 3, 10, "c64",
                  "ComplexFloat")
complex128 = dtype("complex128", np.dtype(np.complex128), "double2", "double2", 3, 11, "c128",
                   "ComplexDouble")
COMPLEX = (complex64, complex128)
_REAL_OF = {complex64: float32, complex128: float64}


def to_real(d: dtype) -> dtype:
    """The real dtype of a complex one's parts (complex64 -> float32); others unchanged."""
    return _REAL_OF.get(d, d)


def to_complex(d: dtype) -> dtype:
    """The complex dtype whose parts are floating dtype d (float64 -> complex128; float32,
    float16 and bfloat16 -> complex64, as clgraph has no complex32)."""
    if d.kind == 3:
        return d
    return complex128 if d is float64 else complex64


ALL = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
# float16 and bfloat16 live in memory as 16 bits and are computed in float
NARROW_FLOATS = (float16, bfloat16)
_BY_NP = {d.np: d for d in ALL + COMPLEX if d is not bfloat16}
_BY_NAME = {d.name: d for d in ALL + COMPLEX}
_BY_NAME.update(
    {"float": float32, "double": float64, "half": float16, "int": int32, "long": int64,
     "short": int16, "cfloat": complex64, "cdouble": complex128}
)


def unsupported_complex32() -> TypeError:
    return TypeError("complex32 (chalf) is not supported by clgraph: use complex64")


def to_storage(values, d: dtype) -> np.ndarray:
    """Host values as dtype d's storage: a cast, or for bfloat16 the bits of the values
    rounded to nearest even (as PyTorch converts; NaN stays a quiet NaN)."""
    if d is not bfloat16:
        return np.asarray(values).astype(d.np)
    f = np.array(values, dtype=np.float32)  # a contiguous copy, 0-d stays 0-d
    u = f.view(np.uint32)
    bits = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16))
    bits = np.where(np.isnan(f), (u >> np.uint32(16)) | np.uint32(0x40), bits)
    return bits.astype(np.uint16)


def from_storage(arr: np.ndarray, d: dtype) -> np.ndarray:
    """Host storage of dtype d as values numpy holds (bfloat16: exact float32)."""
    if d is not bfloat16:
        return arr
    return (arr.astype(np.uint32) << np.uint32(16)).view(np.float32)


def _by_name(name: str) -> dtype:
    return _BY_NAME[name]


_default_float = float32


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d: dtype) -> None:
    global _default_float
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    global _default_float
    _default_float = d


def as_dtype(d) -> dtype:
    """Accept a clgraph dtype, a numpy dtype/type, a Python type or a name."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return _default_float
    if d is int:
        return int64
    if d is bool:
        return bool_
    if d is complex:
        return to_complex(_default_float)
    if isinstance(d, str) and d in ("complex32", "chalf"):
        raise unsupported_complex32()
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    try:
        nd = np.dtype(d)
    except TypeError:
        nd = None
    if nd is not None and nd in _BY_NP:
        return _BY_NP[nd]
    raise TypeError(f"unsupported dtype: {d!r}")


def from_numpy_dtype(nd: np.dtype) -> dtype:
    if nd in _BY_NP:
        return _BY_NP[nd]
    if nd.kind == "u" and nd.itemsize > 1:
        raise TypeError(f"can't convert np.ndarray of type numpy.{nd}. The only supported "
                        "types are: float64, float32, float16, int64, int32, int16, int8, "
                        "uint8, and bool.")
    raise TypeError(f"unsupported numpy dtype: {nd}")


_LATTICE = {}


def promote_types(type1: dtype, type2: dtype) -> dtype:
    """PyTorch's torch.promote_types."""
    a, b = type1, type2
    if a is b:
        return a
    key = (a.rank, b.rank)
    hit = _LATTICE.get(key)
    if hit is not None:
        return hit
    if a.kind == 3 or b.kind == 3:  # complex: parts as wide as the widest float
        ra = to_real(a) if a.kind >= 2 else float32
        rb = to_real(b) if b.kind >= 2 else float32
        out = complex128 if float64 in (ra, rb) else complex64
    elif {a, b} == {float16, bfloat16}:  # neither holds the other
        out = float32
    elif a.kind != b.kind:
        out = a if a.kind > b.kind else b
    elif {a, b} == {uint8, int8}:
        out = int16
    else:
        out = a if a.rank > b.rank else b
    if a.kind == b.kind == 1 and (a is uint8 or b is uint8) and out is not uint8:
        # uint8 with a wider signed type gives the signed type
        out = a if a is not uint8 else b
        if out is int8:
            out = int16
    _LATTICE[key] = out
    return out


def scalar_kind(value) -> int:
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    if isinstance(value, (float, np.floating)):
        return 2
    if isinstance(value, (complex, np.complexfloating)):
        return 3
    raise TypeError(f"unsupported scalar type {type(value).__name__}")


def default_for_kind(kind: int) -> dtype:
    return (bool_, int64, _default_float, to_complex(_default_float))[kind]


def _jump(out: dtype, kind: int, default: dtype) -> dtype:
    """A floating tensor's dtype meeting an operand of complex kind: the complex dtype of
    the same precision (float64 -> complex128); others take ``default``."""
    if kind == 3 and out.kind == 2:
        return to_complex(out)
    return default


def result_type(tensor_dtypes, zero_dim_dtypes=(), scalars=()) -> dtype:
    """PyTorch's result_type: dimensioned tensors, then 0-d tensors, then Python scalars;
    a lower tier only matters when it is of a higher kind (bool < integer < float)."""
    out = None
    for d in tensor_dtypes:
        out = d if out is None else promote_types(out, d)
    zd = None
    for d in zero_dim_dtypes:
        zd = d if zd is None else promote_types(zd, d)
    if zd is not None:
        if out is None:
            out = zd
        elif zd.kind > out.kind:
            out = _jump(out, zd.kind, zd) if zd.kind >= 1 else out
    sk = max((scalar_kind(s) for s in scalars), default=-1)
    if sk >= 0:
        if out is None:
            out = default_for_kind(sk)
        elif sk > out.kind:
            out = _jump(out, sk, default_for_kind(sk))
    return out


class finfo:
    """torch.finfo: the numerical properties of a floating point dtype (the default dtype
    when none is given); ``dtype`` is its name, as PyTorch's."""

    def __init__(self, type: dtype | None = None) -> None:
        d = _default_float if type is None else to_real(as_dtype(type))
        if not d.is_floating_point:
            raise TypeError("torch.finfo() requires a floating point input type. Use "
                            "torch.iinfo to handle 'torch.finfo'")
        if d is bfloat16:  # float32's exponent, 8 bits of significand
            self.bits, self.eps, self.max = 16, 2.0 ** -7, float(np.float32(3.3895313892515355e38))
            self.tiny = self.smallest_normal = 2.0 ** -126
            self.resolution = 0.01
        else:
            f = np.finfo(d.np)
            self.bits, self.eps, self.max = f.bits, float(f.eps), float(f.max)
            self.tiny = self.smallest_normal = float(f.smallest_normal)
            self.resolution = 10.0 ** -f.precision
        self.min = -self.max
        self.dtype = d.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """torch.iinfo: the range of an integer dtype."""

    def __init__(self, type: dtype) -> None:
        d = as_dtype(type)
        if d is bool_:
            raise TypeError("torch.bool is not supported by torch.iinfo")
        if d.is_floating_point:
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo "
                            "to handle 'torch.iinfo'")
        i = np.iinfo(d.np)
        self.bits, self.min, self.max, self.dtype = i.bits, int(i.min), int(i.max), d.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"
