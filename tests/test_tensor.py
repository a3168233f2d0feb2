"""Tensors: creation, dtypes, devices, views sharing storage, host interop, errors,
random numbers and profiling."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import clgraph as cg
from clgraph import runtime


def test_creation_matches_numpy():
    np.testing.assert_array_equal(cg.zeros(2, 3).numpy(), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(cg.ones((2, 3)).numpy(), np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(cg.full((2,), 7).numpy(), [7, 7])
    assert cg.full((2,), 7).dtype == cg.int64
    assert cg.full((2,), 7.0).dtype == cg.float32
    assert cg.full((2,), True).dtype == cg.bool
    np.testing.assert_array_equal(cg.arange(5).numpy(), np.arange(5))
    np.testing.assert_allclose(cg.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert cg.arange(0, 1, 0.25).dtype == cg.float32
    np.testing.assert_allclose(cg.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(cg.eye(3, 4).numpy(), np.eye(3, 4))
    assert cg.empty(0, 3).shape == (0, 3)
    x = cg.tensor([[1, 2], [3, 4]])
    assert x.dtype == cg.int64 and x.shape == (2, 2)
    assert cg.tensor([1.5, 2]).dtype == cg.float32
    assert cg.tensor(np.array([1.5])).dtype == cg.float64
    assert cg.tensor([True, False]).dtype == cg.bool
    assert cg.tensor(3.0).shape == () and cg.tensor(3.0).item() == 3.0
    assert cg.zeros_like(x).dtype == cg.int64
    np.testing.assert_array_equal(cg.full_like(x, 5).numpy(), [[5, 5], [5, 5]])
    assert cg.ones_like(x, dtype=cg.float16).dtype == cg.float16


def test_from_numpy_copies_all_dtypes():
    for d in (np.float32, np.float64, np.float16, np.int64, np.int32, np.int16, np.int8,
              np.uint8, np.bool_):
        a = (np.arange(12).reshape(3, 4) % 3).astype(d)
        t = cg.from_numpy(a)
        a[0, 0] = 1
        got = t.numpy()
        assert got.dtype == a.dtype
        assert got[0, 0] == 0
        np.testing.assert_array_equal(got[1:], a[1:])
        np.testing.assert_array_equal(np.asarray(t), got)
    with pytest.raises(TypeError, match="uint16"):
        cg.from_numpy(np.zeros(2, np.uint16))


def test_views_share_storage():
    x = cg.arange(24).reshape(2, 3, 4)
    v = x.permute(2, 0, 1)
    assert v._storage is x._storage and not v.is_contiguous()
    assert v.shape == (4, 2, 3) and v.stride() == (1, 12, 4)
    np.testing.assert_array_equal(v.numpy(), np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1))
    s = x[1, ::2, None, 1:]
    np.testing.assert_array_equal(s.numpy(), np.arange(24).reshape(2, 3, 4)[1, ::2, None, 1:])
    assert s._storage is x._storage
    s.fill_(0)
    ref = np.arange(24).reshape(2, 3, 4)
    ref[1, ::2, 1:] = 0
    np.testing.assert_array_equal(x.numpy(), ref)
    e = cg.ones(3, 1).expand(3, 5)
    assert e.stride() == (1, 0) and e._storage.nbytes == 12
    assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert x.unsqueeze(1).squeeze(1).shape == x.shape
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert x.narrow(2, 1, 2).shape == (2, 3, 2)
    assert x.view(6, -1).shape == (6, 4)
    assert x.t().shape == (4, 3, 2) if x.ndim <= 2 else True
    assert x[..., 0].shape == (2, 3)
    assert x.T.shape == (4, 3, 2)


def test_reshape_copies_only_when_needed():
    x = cg.arange(12).reshape(3, 4)
    assert x.reshape(4, 3)._storage is x._storage
    y = x.t().reshape(12)
    assert y._storage is not x._storage
    np.testing.assert_array_equal(y.numpy(), np.arange(12).reshape(3, 4).T.reshape(12))
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.t().view(12)
    with pytest.raises(RuntimeError, match=r"shape '\[5, -1\]' is invalid for input of size 12"):
        x.view(5, -1)
    z = x.t().contiguous()
    assert z.is_contiguous() and z._storage is not x._storage


def test_dim_errors_and_index_errors():
    x = cg.zeros(2, 3)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of "
                       r"\[-3, 2\], but got 3\)"):
        x.unsqueeze(3)
    with pytest.raises(IndexError, match=r"\[-2, 1\], but got -3"):
        x.transpose(-3, 0)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 2"):
        x[5]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(RuntimeError, match="a Tensor with 6 elements cannot be converted"):
        x.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    with pytest.raises(RuntimeError, match="The expanded size"):
        x.expand(4, 3)


def test_host_reads():
    x = cg.tensor([[1.5, 2.0]])
    assert x.tolist() == [[1.5, 2.0]]
    assert float(x[0, 0]) == 1.5 and int(x[0, 1]) == 2
    assert bool(cg.tensor([True]))
    assert len(x) == 1
    assert [r.tolist() for r in cg.tensor([[1, 2], [3, 4]])] == [[1, 2], [3, 4]]
    r = cg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        r.numpy()
    assert r.detach().numpy()[0] == 1.0


def test_dtype_conversions():
    x = cg.tensor([1.7, -2.5, 0.0])
    assert x.int().tolist() == [1, -2, 0]
    assert x.long().dtype == cg.int64
    assert x.bool().tolist() == [True, True, False]
    assert x.double().dtype == cg.float64
    assert x.half().float().tolist() == [np.float32(np.float16(1.7)), -2.5, 0.0]
    assert x.to(cg.int8).dtype == cg.int8
    assert x.to(x.device) is x
    assert x.to(x.device, copy=True)._storage is not x._storage
    assert x.type() == "torch.FloatTensor"


def test_cpu_without_a_cpu_device_names_the_default_device(monkeypatch):
    D = sys.modules["clgraph.device"]
    monkeypatch.setattr(D.DeviceInfo, "type", property(lambda self: "gpu"))
    monkeypatch.setattr(D, "_warned_cpu", [])
    with pytest.warns(UserWarning, match=r"no OpenCL CPU device, so 'cpu' names the default"):
        k = D._resolve("cpu")
    assert k == cg.get_default_device().index
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        assert D._resolve("cpu") == k
    with pytest.raises(RuntimeError, match="CPU device 1"):
        D._resolve("cpu:1")


def test_devices():
    devs = cg.cl.devices()
    assert devs and {"name", "type", "memory", "fp64", "fp16"} <= set(devs[0])
    with warnings.catch_warnings():  # no OpenCL CPU device: "cpu" names the default one
        warnings.simplefilter("ignore")
        d = cg.device("cpu")
    cpus = [i for i, e in enumerate(devs) if e["type"] == "cpu"]
    assert d == cg.device(f"cl:{cpus[0]}" if cpus else cg.get_default_device())
    assert hash(cg.device(str(d))) == hash(d)
    assert str(d).startswith("cl:")
    x = cg.ones(2, device="cpu")
    assert x.device == d
    assert x.cpu().device == d
    assert isinstance(cg.cuda.is_available(), bool)
    if not cg.cuda.is_available():
        with pytest.raises(RuntimeError, match="GPU"):
            cg.device("cuda")
    with pytest.raises(RuntimeError, match="cl:99"):
        cg.device("cl:99")
    with pytest.raises(RuntimeError, match="Expected one of"):
        cg.device("tpu")


def test_manual_seed_reproducible_and_distributions():
    cg.manual_seed(0)
    a = cg.rand(1000).numpy()
    b = cg.randn(100_001).numpy()
    cg.manual_seed(0)
    assert np.array_equal(a, cg.rand(1000).numpy())
    assert np.array_equal(b, cg.randn(100_001).numpy())
    assert 0 <= a.min() and a.max() < 1 and abs(a.mean() - 0.5) < 0.05
    assert abs(b.mean()) < 0.02 and abs(b.std() - 1) < 0.02
    r = cg.randint(3, 7, (10000,)).numpy()
    assert r.min() == 3 and r.max() == 6 and r.dtype == np.int64
    r = cg.randint(4, (2000,)).numpy()  # randint(high, size), as PyTorch
    assert r.shape == (2000,) and r.min() == 0 and r.max() == 3
    assert cg.randint(5, size=(3, 2)).shape == (3, 2)
    u = cg.empty(4, 5).t().uniform_(-2, 2).numpy()
    assert u.min() >= -2 and u.max() < 2
    # PyTorch's from / to keywords ("from" is a Python keyword: passed by **)
    u = cg.empty(2000).uniform_(**{"from": 2, "to": 3}).numpy()
    assert u.min() >= 2 and u.max() < 3 and u.max() > 2.9
    u = cg.empty(2000).uniform_(-1, to=-0.5).numpy()
    assert u.min() >= -1 and u.max() < -0.5
    r = cg.empty(2000, dtype=cg.int64).random_(**{"from": 5, "to": 8}).numpy()
    assert set(np.unique(r)) == {5, 6, 7}
    assert set(np.unique(cg.empty(500).random_(**{"to": 2}).numpy())) == {0, 1}
    assert set(np.unique(cg.empty(500).random_(3).numpy())) == {0, 1, 2}
    with pytest.raises(TypeError, match="multiple values for argument 'from'"):
        cg.empty(3).uniform_(1, **{"from": 2})
    with pytest.raises(TypeError, match="unexpected keyword argument 'low'"):
        cg.empty(3).random_(low=2)
    n = cg.zeros(10000, dtype=cg.float64).normal_(3, 0.5).numpy()
    assert abs(n.mean() - 3) < 0.05 and abs(n.std() - 0.5) < 0.05


def test_profile_counts_launches():
    x = cg.ones(1000)
    with cg.profile() as p:
        y = (x + 1) * 2
        y.exp()
    assert p.launches == 3
    assert len(p.kernels) == 3 and all(k.startswith("cg_") for k in p.kernels)
    assert p.device_time > 0
    assert "total" in p.table()


def test_async_until_host_read():
    x = cg.ones(1 << 20)
    for _ in range(5):
        x = x + 1
    assert x[-1].item() == 6.0


def test_storage_released():
    before = runtime.live_buffers()
    x = cg.ones(100)
    y = x * 2
    assert runtime.live_buffers() == before + 2
    del x, y
    assert runtime.live_buffers() == before


def test_disk_cache_second_process_builds_nothing(tmp_path):
    code = (
        "import clgraph as cg\n"
        "from clgraph.codegen import stats\n"
        "x = cg.arange(10).float()\n"
        "y = (x * 3.5 + 1).sqrt()\n"
        "print(y.sum().item() if hasattr(y, 'sum') else y.numpy()[0], stats['builds'])\n"
    )
    env = dict(os.environ, CLGRAPH_CACHE_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout.split()
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True).stdout.split()
    assert int(first[-1]) > 0
    assert second[-1] == "0" and second[0] == first[0]


def test_format_and_size_arithmetic_as_pytorch():
    assert f"{cg.tensor(0.5)}" == "0.5" and f"{cg.tensor(2.0):.3f}" == "2.000"
    assert f"{cg.tensor([0.5])}" == "tensor([0.5000])"
    s = cg.Size([2, 3])
    for r in (s + cg.Size([4]), (1,) + s, s + (5,), s * 2):
        assert type(r) is cg.Size
    assert repr((1,) + s) == "torch.Size([1, 2, 3])"
