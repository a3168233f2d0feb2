"""Shared test settings: hypothesis profile sized for a 2-core machine."""

import importlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "clgraph",
    max_examples=int(os.environ.get("CLGRAPH_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("clgraph")


def torch_or_skip():
    """PyTorch as a reference, only in the version whose API clgraph follows (2.13): other
    versions differ in reprs and arguments (BatchNorm's ``bias`` is new in 2.13)."""
    import pytest

    torch = pytest.importorskip("torch")
    if not torch.__version__.startswith("2.13."):
        pytest.skip(f"parity tests follow PyTorch 2.13; this is {torch.__version__}")
    return torch


def uniform_leaf(*shape, low=-1.0, high=1.0, seed=0, salt=7):
    """A float64 leaf of uniform values in [low, high), seeded by its shape (``salt``
    keeps each test file's own draws)."""
    import clgraph as cg

    rng = np.random.default_rng(seed + salt * len(shape) + sum(shape))
    return cg.from_numpy(rng.uniform(low, high, shape)).requires_grad_()


def close(t, ref, **kw):
    """A tensor (or array) of ``ref``'s shape, within ``assert_allclose``'s tolerances."""
    import clgraph as cg

    got = t.detach().numpy() if isinstance(t, cg.Tensor) else np.asarray(t)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    np.testing.assert_allclose(got, ref, **kw)


@pytest.fixture(params=["cpu", "gpu"])
def kernel_variant(request, monkeypatch):
    """The CPU kernels, or the GPU work-group kernels forced on this device
    (CLGRAPH_KERNELS=gpu)."""
    if request.param == "gpu":
        monkeypatch.setattr(importlib.import_module("clgraph.device"), "_KERNELS", "gpu")
    return request.param
