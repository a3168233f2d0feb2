"""Kernel signatures read from OpenCL C: macros and -D defines expanded, every hand-written
kernel of kernels/*.cl parsed."""

import re

import numpy as np

from clgraph.codegen import KERNEL_DIR
from clgraph.codegen.kernelsig import kernel_signature

SOURCE = r"""
#define GEOM const int C, \
  const int H
#define IMG(name) __global const T *name, const long name##off
#ifndef EXTRA
#define EXTRA
#endif
__kernel __attribute__((reqd_work_group_size(8, 1, 1)))
void k(IMG(x), GEOM, const ACC a, __global T* restrict out, long n EXTRA) { }
"""


def test_macros_defines_and_pointers():
    sig = kernel_signature(SOURCE, "k", (("T", "float"), ("ACC", "double")))
    assert [p.name for p in sig] == ["x", "xoff", "C", "H", "a", "out", "n"]
    assert [p.np_type for p in sig] == [None, np.int64, np.int32, np.int32, np.float64, None,
                                        np.int64]
    # a definition ahead of the source's own (behind #ifndef) wins: extra arguments
    extra = "#define EXTRA , const uint m\n" + SOURCE
    assert kernel_signature(extra, "k", (("T", "float"), ("ACC", "float")))[-1].name == "m"


def test_every_hand_written_kernel_parses():
    defines = (("T", "float"), ("ACC", "float"), ("IDX", "long"), ("TS", "16"))
    count = 0
    for path in KERNEL_DIR.glob("*.cl"):
        src = path.read_text()
        for name in re.findall(r"__kernel\b[^;{]*?\bvoid\s+(\w+)\s*\(", src):
            sig = kernel_signature(src, name, defines)
            assert sig and all(p.name.isidentifier() for p in sig), (path.name, name)
            count += 1
    assert count >= 20
