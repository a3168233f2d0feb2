"""nn.init.orthogonal_, sparse_, dirac_ (properties and PyTorch's errors; dirac_ equal to
PyTorch's where installed) and cuda.get_device_name / get_device_properties for an OpenCL
device."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph.nn import init


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (6, 2, 2), (4, 4)])
def test_orthogonal(shape):
    w = init.orthogonal_(cg.empty(*shape, dtype=cg.float64), gain=2.0)
    a = w.numpy().reshape(shape[0], -1)
    small = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    np.testing.assert_allclose(small, 4.0 * np.eye(min(a.shape)), atol=1e-12)
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions"):
        init.orthogonal_(cg.empty(3))


def test_sparse():
    cg.manual_seed(0)
    w = init.sparse_(cg.empty(10, 6), sparsity=0.25, std=0.5)
    zeros = (w.numpy() == 0).sum(axis=0)
    assert zeros.tolist() == [3] * 6
    assert 0.2 < w.numpy()[w.numpy() != 0].std() < 1.0
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions"):
        init.sparse_(cg.empty(2, 2, 2), 0.1)


@pytest.mark.parametrize("shape,groups", [((4, 2, 3, 3), 2), ((3, 5, 4), 1),
                                          ((2, 2, 3, 3, 3), 1)])
def test_dirac(shape, groups):
    w = init.dirac_(cg.empty(*shape), groups)
    expect = np.zeros(shape)
    per = shape[0] // groups
    for g in range(groups):
        for d in range(min(per, shape[1])):
            expect[(g * per + d, d, *(s // 2 for s in shape[2:]))] = 1
    np.testing.assert_array_equal(w.numpy(), expect)
    torch = torch_or_skip()
    np.testing.assert_array_equal(
        w.numpy(), torch.nn.init.dirac_(torch.empty(*shape), groups).numpy())


def test_dirac_errors():
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions"):
        init.dirac_(cg.empty(2, 2))
    with pytest.raises(ValueError, match="dim 0 must be divisible by groups"):
        init.dirac_(cg.empty(3, 2, 3), groups=2)


def test_device_name_and_properties():
    dev = cg.device("cl:0")
    props = cg.cuda.get_device_properties(dev)
    info = cg.cl.devices()[0]
    assert props.name == info["device"] == cg.cuda.get_device_name("cl:0")
    assert props.total_memory == info["memory"] > 0
    assert props.multi_processor_count >= 1
    assert repr(props).startswith(f"_CudaDeviceProperties(name='{info['device']}'")
    if not cg.cuda.is_available():
        with pytest.raises(RuntimeError, match="asked for GPU 0 but only 0 OpenCL GPU"):
            cg.cuda.get_device_name()
