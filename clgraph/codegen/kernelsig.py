"""Kernel signatures read from OpenCL C source: the parameters of ``__kernel void name(...)``
after the source's own macros (``#define GEOM ...``, ``#define IMG(x) ...``) and the build's
-D defines are expanded. Hand-written kernels (kernels/*.cl) declare their arguments once,
in C; their packing types and argument positions come from here. Imports nothing from
clgraph."""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

_NP = {"float": np.float32, "double": np.float64, "half": np.float16, "long": np.int64,
       "ulong": np.uint64, "int": np.int32, "uint": np.uint32, "short": np.int16,
       "ushort": np.uint16, "char": np.int8, "uchar": np.uint8}
_QUALIFIERS = {"const", "__private", "private", "restrict", "volatile"}
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)(\([^)]*\))?[ \t]*(.*)$", re.M)
_IDENT = re.compile(r"\b\w+\b")


class KernelParam(NamedTuple):
    name: str
    np_type: object  # how pyopencl packs it; None: a buffer (a pointer)


def _macros(source: str) -> dict:
    """name -> (parameters or None, body); the first definition wins (later ones sit
    behind #ifndef guards)."""
    text = source.replace("\\\n", " ")
    out: dict = {}
    for m in _DEFINE.finditer(text):
        name, params, body = m.group(1), m.group(2), m.group(3).strip()
        if name not in out:
            args = None if params is None else [a.strip() for a in params[1:-1].split(",")]
            out[name] = (args, body)
    return out


def _split(text: str) -> list[str]:
    """Top-level comma-separated parts."""
    parts, depth, cur = [], 0, []
    for c in text:
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += c == "("
        depth -= c == ")"
        cur.append(c)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _expand(text: str, macros: dict, depth: int = 0) -> str:
    if depth > 8:
        return text
    out, pos = [], 0
    for m in _IDENT.finditer(text):
        if m.start() < pos or m.group(0) not in macros:
            continue
        args, body = macros[m.group(0)]
        out.append(text[pos:m.start()])
        pos = m.end()
        if args is not None:  # NAME(actual, ...)
            rest = text[pos:]
            if not rest.lstrip().startswith("("):
                continue
            start = pos + rest.index("(")
            level, end = 0, start
            for end in range(start, len(text)):
                level += text[end] == "("
                level -= text[end] == ")"
                if level == 0:
                    break
            actual = _split(text[start + 1:end])
            sub = dict(zip(args, actual))
            body = re.sub(r"\s*##\s*", "##", body)
            body = _IDENT.sub(lambda t: sub.get(t.group(0), t.group(0)), body)
            body = body.replace("##", "")
            pos = end + 1
        out.append(_expand(body, macros, depth + 1))
    out.append(text[pos:])
    return "".join(out)


def kernel_signature(source: str, kernel: str, defines=()) -> tuple[KernelParam, ...]:
    """The parameters of kernel ``kernel`` in ``source`` built with ``defines``."""
    m = re.search(rf"__kernel\b[^;{{]*?\bvoid\s+{re.escape(kernel)}\s*\(", source)
    if m is None:
        raise ValueError(f"no kernel {kernel} in the source")
    level, end = 1, m.end()
    while level:
        level += source[end] == "("
        level -= source[end] == ")"
        end += 1
    macros = _macros(source)
    for name, value in defines:
        macros[name] = (None, str(value))
    params = []
    for part in _split(_expand(source[m.end():end - 1], macros)):
        if not part:
            continue
        words = part.replace("*", " * ").split()
        name = words[-1]
        if "*" in words:
            params.append(KernelParam(name, None))
            continue
        ctype = [w for w in words[:-1] if w not in _QUALIFIERS]
        params.append(KernelParam(name, _NP[ctype[-1]]))
    return tuple(params)
