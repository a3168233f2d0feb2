"""Generators (reproducible and independent streams through every ``generator=``),
bernoulli and multinomial (statistics, exact edge cases, PyTorch's errors),
set/get_num_threads, the legacy constructors, tensor attributes, memory formats,
cg.accelerator, cg.backends and nn.parallel.DataParallel."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import clgraph as cg
import clgraph.backends.cudnn
from clgraph import _threads
from clgraph.nn.parallel import DataParallel

D = importlib.import_module("clgraph.device")  # the module (cg.device is the class)


def draws(g):
    """One value of every random function that takes ``generator=``."""
    t = cg.empty(5)
    return [cg.rand(6, generator=g), cg.randn(2, 3, generator=g),
            cg.randint(0, 100, (7,), generator=g), cg.randperm(9, generator=g),
            t.normal_(generator=g).clone(), t.uniform_(-2, 2, generator=g).clone(),
            t.exponential_(generator=g).clone(),
            cg.bernoulli(cg.full((8,), 0.5), generator=g),
            cg.zeros(8).bernoulli_(0.3, generator=g),
            cg.multinomial(cg.ones(2, 6), 3, generator=g),
            cg.multinomial(cg.ones(6), 4, replacement=True, generator=g)]


def same(a, b) -> bool:
    return all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b))


# --- generators ---------------------------------------------------------------------------


def test_generator_streams_are_reproducible_and_independent():
    g = cg.Generator().manual_seed(123)
    first = draws(g)
    assert not same(first, draws(g))  # the stream moves on
    g.manual_seed(123)
    assert same(first, draws(g))
    h = cg.Generator()
    assert h.initial_seed() == 67280421310721
    h.manual_seed(124)
    assert not same(first, draws(h))
    # drawing from g does not move h or the default generator
    h.manual_seed(5)
    cg.manual_seed(5)
    from_default = cg.rand(10)
    g.manual_seed(9)
    draws(g)
    assert np.array_equal(cg.rand(10, generator=h).numpy(), from_default.numpy())
    cg.manual_seed(5)
    draws(g)
    assert np.array_equal(cg.rand(10).numpy(), from_default.numpy())


def test_generator_state_and_seeds():
    g = cg.Generator()
    assert g.initial_seed() == 67280421310721
    assert g.manual_seed(7) is g and g.initial_seed() == 7
    cg.rand(3, generator=g)
    state = g.get_state()
    assert state.dtype == cg.uint8 and state.shape == (16,)
    a = cg.rand(4, generator=g)
    cg.rand(100, generator=g)
    g.set_state(state)
    assert np.array_equal(cg.rand(4, generator=g).numpy(), a.numpy())
    assert g.manual_seed(-1).initial_seed() == 2**64 - 1
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s
    c = g.clone_state()
    assert np.array_equal(cg.rand(3, generator=c).numpy(), cg.rand(3, generator=g).numpy())
    assert cg.manual_seed(11) is cg.default_generator and cg.initial_seed() == 11
    saved = cg.get_rng_state()
    x = cg.randn(5)
    cg.set_rng_state(saved)
    assert np.array_equal(cg.randn(5).numpy(), x.numpy())
    assert isinstance(cg.seed(), int)
    assert g.device == cg.get_default_device()


def test_generator_errors():
    g = cg.Generator()
    with pytest.raises(RuntimeError, match="manual_seed expected a long, but got float"):
        g.manual_seed(1.5)
    with pytest.raises(ValueError, match="Overflow"):
        g.manual_seed(2**64)
    with pytest.raises(TypeError, match="expected a torch.ByteTensor"):
        g.set_state(5)
    with pytest.raises(TypeError, match="RNG state must be a torch.ByteTensor"):
        g.set_state(cg.zeros(16))
    with pytest.raises(RuntimeError, match="state size to be 3"):
        g.set_state(cg.zeros(3, dtype=cg.uint8))
    with pytest.raises(TypeError, match="Generator"):
        cg.rand(2, generator=5)
    cg.manual_seed(1.5)  # torch.manual_seed takes int(seed)
    assert cg.initial_seed() == 1


def test_compiled_random_draws_follow_the_generator():
    g = cg.Generator().manual_seed(3)
    f = cg.compile(lambda x: x + cg.rand(4, generator=g))
    x = cg.zeros(4)
    compiled = [f(x).numpy() for _ in range(3)]
    g.manual_seed(3)
    eager = [cg.rand(4, generator=g).numpy() for _ in range(3)]
    np.testing.assert_array_equal(np.array(compiled), np.array(eager))


# --- bernoulli, exponential, multinomial ---------------------------------------------------


def test_bernoulli():
    g = cg.Generator().manual_seed(0)
    p = cg.tensor([0.0, 1.0, 0.25, 0.9]).expand(20000, 4)
    x = cg.bernoulli(p, generator=g)
    assert x.dtype == cg.float32 and x.shape == (20000, 4)
    np.testing.assert_allclose(x.numpy().mean(0), [0.0, 1.0, 0.25, 0.9], atol=0.015)
    assert cg.bernoulli(cg.ones(3, dtype=cg.float64), 0.0).tolist() == [0.0, 0.0, 0.0]
    half = cg.bernoulli(cg.full((4,), 0.5, dtype=cg.float16))
    assert half.dtype == cg.float16 and set(half.tolist()) <= {0.0, 1.0}
    y = cg.zeros(30000, dtype=cg.int64).bernoulli_(0.7, generator=g)
    assert y.dtype == cg.int64 and abs(y.float().mean().item() - 0.7) < 0.015
    z = cg.zeros(3, dtype=cg.int64).bernoulli_(cg.tensor([0.0, 1.0, 1.0]))
    assert z.tolist() == [0, 1, 1]
    assert cg.tensor([0.5, 0.5]).bernoulli().shape == (2,)
    e = cg.empty(40000, dtype=cg.float64).exponential_(2.0, generator=g).numpy()
    assert e.min() >= 0 and abs(e.mean() - 0.5) < 0.01 and abs(e.std() - 0.5) < 0.015


def test_bernoulli_errors():
    with pytest.raises(RuntimeError, match=r"Expected p_in >= 0 && p_in <= 1"):
        cg.bernoulli(cg.tensor([0.5, 1.5]))
    with pytest.raises(RuntimeError, match=r"Expected p_in >= 0 && p_in <= 1"):
        cg.bernoulli(cg.tensor([0.5, float("nan")]))
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        cg.bernoulli(cg.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=r"bernoulli_ expects p to be in \[0, 1\], but got "
                                           r"p=1.3"):
        cg.bernoulli(cg.zeros(2), 1.3)
    with pytest.raises(RuntimeError, match="The expanded size of the tensor"):
        cg.zeros(3).bernoulli_(cg.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="exponential_ expects lambda > 0.0"):
        cg.zeros(2).exponential_(0)


def test_multinomial_without_replacement():
    g = cg.Generator().manual_seed(1)
    w = cg.tensor([[0.0, 1.0, 2.0, 0.0, 5.0, 1.0]] * 4)
    s = cg.multinomial(w, 4, generator=g)
    assert s.shape == (4, 4) and s.dtype == cg.int64
    for row in s.tolist():
        assert sorted(row) == [1, 2, 4, 5]  # distinct, never a zero weight
    one = cg.multinomial(w[0].expand(20000, 6), 1, generator=g).numpy().ravel()
    freq = np.bincount(one, minlength=6) / one.size
    np.testing.assert_allclose(freq, np.array([0, 1, 2, 0, 5, 1]) / 9, atol=0.015)
    first2 = cg.multinomial(cg.tensor([1.0, 1.0, 1.0]).expand(9000, 3), 2, generator=g)
    pairs = first2.numpy()
    assert (pairs[:, 0] != pairs[:, 1]).all()
    np.testing.assert_allclose(np.bincount(pairs[:, 0], minlength=3) / 9000, [1 / 3] * 3,
                               atol=0.02)
    all3 = cg.multinomial(cg.tensor([1.0, 0.0, 0.0]), 3)
    assert all3.tolist()[0] == 0 and sorted(all3.tolist()) == [0, 1, 2]


def test_multinomial_with_replacement():
    g = cg.Generator().manual_seed(2)
    for dtype in (cg.float32, cg.float64, cg.float16):
        w = cg.tensor([[0.0, 3.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]], dtype=dtype)
        s = cg.multinomial(w, 20000, replacement=True, generator=g).numpy()
        assert s.shape == (2, 20000)
        np.testing.assert_allclose(np.bincount(s[0], minlength=4) / 20000, [0, 0.75, 0.25, 0],
                                   atol=0.015)
        np.testing.assert_allclose(np.bincount(s[1], minlength=4) / 20000, [0.5, 0, 0, 0.5],
                                   atol=0.015)
    assert cg.multinomial(cg.tensor([0.0, 0.0, 2.0]), 5, True).tolist() == [2] * 5
    assert cg.multinomial(cg.ones(0, 3), 2).shape == (0, 2)


MULTINOMIAL_ERRORS = [
    (([0.5, 0.5], 3), "cannot sample n_sample > prob_dist.size"),
    (([0.5, 0.5], 0), "cannot sample n_sample <= 0 samples"),
    (([0.5, -0.5], 1), "probability tensor contains either `inf`, `nan` or element < 0"),
    (([0.0, 0.0], 1), r"invalid multinomial distribution \(sum of probabilities <= 0\)"),
    (([0.0, 0.0], 2, True), r"sum of probabilities <= 0"),
    (([1.0, float("inf")], 1), "probability tensor contains either `inf`"),
    (([1.0, float("inf")], 2, True), "encountering probability entry = infinity or NaN"),
    (([1.0, -1.0], 2, True), "encountering probability entry < 0"),
    ((1.0, 1), "prob_dist must be 1 or 2 dim"),
]


@pytest.mark.parametrize("args,match", MULTINOMIAL_ERRORS)
def test_multinomial_errors(args, match):
    with pytest.raises(RuntimeError, match=match):
        cg.multinomial(cg.tensor(args[0]), *args[1:])
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match=match):
        torch.multinomial(torch.tensor(args[0]), *args[1:])


def test_multinomial_argument_errors():
    with pytest.raises(RuntimeError, match="only supports floating-point dtypes for input, got: "
                                           "Long"):
        cg.multinomial(cg.tensor([1, 2]), 1)
    with pytest.raises(RuntimeError, match="prob_dist must be 1 or 2 dim"):
        cg.multinomial(cg.ones(2, 2, 2), 1)


# --- threads ------------------------------------------------------------------------------


def test_set_num_threads_before_the_devices_start():
    program = ("import clgraph as cg\n"
               "cg.set_num_threads(1)\n"
               "assert cg.get_num_threads() == 1\n"
               "assert cg.device('cpu').info.compute_units == 1\n"
               "print((cg.ones(5) * 2).sum().item())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCL_MAX")}
    r = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "10.0"


def test_num_threads_after_start_and_errors(monkeypatch):
    monkeypatch.setattr(_threads, "_requested", [])
    cg.ones(1).numpy()  # the devices are up
    assert cg.get_num_threads() == cg.device("cpu").info.compute_units
    cg.set_num_threads(3)
    assert cg.get_num_threads() == 3
    for bad, exc in ((0, "positive integer"), (-1, "positive integer"), (1.5, "expects an int")):
        with pytest.raises(RuntimeError, match=exc):
            cg.set_num_threads(bad)


# --- legacy constructors and attributes ---------------------------------------------------


def test_legacy_constructors():
    x = cg.Tensor(2, 3)
    assert x.shape == (2, 3) and x.dtype == cg.float32 and type(x) is cg.Tensor
    assert cg.Tensor([1, 2]).tolist() == [1.0, 2.0] and cg.Tensor([1, 2]).dtype == cg.float32
    assert cg.Tensor().shape == (0,)
    assert cg.Tensor((2, 3)).tolist() == [2.0, 3.0]  # a tuple is data, a Size is sizes
    assert cg.Tensor(cg.Size([2, 3])).shape == (2, 3)
    assert cg.Tensor(np.array([1.5])).tolist() == [1.5]
    base = cg.tensor([1.0, 2.0])
    alias = cg.Tensor(base)
    alias[0] = 5.0
    assert base.tolist() == [5.0, 2.0]
    assert cg.LongTensor([1.7, 2]).tolist() == [1, 2] and cg.LongTensor(2).dtype == cg.int64
    cases = [(cg.FloatTensor, cg.float32), (cg.DoubleTensor, cg.float64),
             (cg.HalfTensor, cg.float16), (cg.BFloat16Tensor, cg.bfloat16),
             (cg.LongTensor, cg.int64), (cg.IntTensor, cg.int32), (cg.ShortTensor, cg.int16),
             (cg.CharTensor, cg.int8), (cg.ByteTensor, cg.uint8), (cg.BoolTensor, cg.bool)]
    for cls, d in cases:
        t = cls([1, 0])
        assert t.dtype == d and t.float().tolist() == [1.0, 0.0]
        assert isinstance(t, cls) and isinstance(t, cg.Tensor)
        assert cls.dtype == d and t.type() == f"torch.{cls.__name__}"
        assert not isinstance(cg.zeros(1, dtype=cg.float32 if d != cg.float32 else cg.int64),
                              cls)
    assert repr(cg.FloatTensor) == "<class 'torch.FloatTensor'>"
    assert cg.zeros(2).type(cg.LongTensor).dtype == cg.int64
    assert cg.zeros(2).type("torch.IntTensor").dtype == cg.int32
    p = cg.nn.Parameter(cg.zeros(2))
    assert isinstance(p, cg.FloatTensor) and isinstance(p, cg.nn.Parameter)


def test_legacy_constructor_errors():
    with pytest.raises(TypeError, match="type must be tuple of ints,but got float"):
        cg.Tensor(2, 3.0)
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        cg.Tensor(-1)
    with pytest.raises(TypeError, match="dtype"):
        cg.Tensor(2, dtype=cg.int64)
    with pytest.raises(TypeError, match="data must be a sequence"):
        cg.Tensor(2.5)
    with pytest.raises(TypeError, match=r"expected Float \(got Long\)"):
        cg.FloatTensor(cg.tensor([1, 2]))
    with pytest.raises(ValueError, match="invalid type"):
        cg.zeros(1).type("torch.NoSuchTensor")


def test_attributes_and_is_complex():
    x = cg.ones(2)
    assert (x.is_xpu, x.is_sparse, x.is_quantized, x.is_meta, x.is_mps) == (False,) * 5
    assert x.is_complex() is False and cg.is_complex(x) is False
    with pytest.raises(TypeError, match="must be Tensor, not int"):
        cg.is_complex(3)


def test_memory_formats():
    a = np.arange(120.0, dtype=np.float32).reshape(2, 3, 4, 5)
    x = cg.tensor(a)
    assert repr(cg.contiguous_format) == "torch.contiguous_format"
    assert isinstance(cg.channels_last, cg.memory_format)
    y = x.contiguous(memory_format=cg.channels_last)
    assert y.stride() == (60, 1, 15, 3) and not y.is_contiguous()
    assert y.is_contiguous(memory_format=cg.channels_last)
    assert not x.is_contiguous(memory_format=cg.channels_last)
    np.testing.assert_array_equal(y.numpy(), a)
    assert y.contiguous(memory_format=cg.channels_last) is y
    c = y.clone(memory_format=cg.channels_last)
    assert c.stride() == (60, 1, 15, 3) and c._storage is not y._storage
    assert y.contiguous().stride() == (60, 20, 5, 1)
    assert x.contiguous(memory_format=cg.contiguous_format) is x
    assert x.contiguous(memory_format=cg.preserve_format) is x
    assert x.to(memory_format=cg.channels_last).stride() == (60, 1, 15, 3)
    assert cg.empty_like(x, memory_format=cg.channels_last).stride() == (60, 1, 15, 3)
    v = cg.zeros(2, 3, 4, 5, 6).contiguous(memory_format=cg.channels_last_3d)
    assert v.stride() == (360, 1, 90, 18, 3)
    np.testing.assert_array_equal((y * 2 + 1).numpy(), a * 2 + 1)  # ops read the layout
    with pytest.raises(RuntimeError, match="required rank 4 tensor to use channels_last"):
        cg.zeros(2, 3).contiguous(memory_format=cg.channels_last)
    assert not cg.zeros(2, 3).is_contiguous(memory_format=cg.channels_last)
    t = cg.tensor(a, requires_grad=True)
    t.contiguous(memory_format=cg.channels_last).sum().backward()
    assert t.grad.tolist() == np.ones_like(a).tolist()


def test_memory_formats_against_torch():
    torch = pytest.importorskip("torch")
    a = np.zeros((2, 3, 4, 5), dtype=np.float32)
    for fmt in ("channels_last", "contiguous_format"):
        want = torch.tensor(a).contiguous(memory_format=getattr(torch, fmt)).stride()
        assert cg.tensor(a).contiguous(memory_format=getattr(cg, fmt)).stride() == want


# --- accelerator, backends, DataParallel ----------------------------------------------------


class _FakeGPU:
    """A stand-in OpenCL GPU device for the accelerator queries."""

    type = 1 << 2  # cl.device_type.GPU
    name = "Fake GPU"
    max_compute_units = 8


def test_accelerator(monkeypatch):
    real = D.all_devices()
    has_gpu = any(d.type == "gpu" for d in real)
    assert cg.accelerator.is_available() == has_gpu == cg.cuda.is_available()
    assert cg.accelerator.device_count() == cg.cuda.device_count()
    if not has_gpu:
        assert cg.accelerator.current_accelerator() is None
        with pytest.raises(RuntimeError, match="no accelerator"):
            cg.accelerator.current_device_index()
    fake = D.DeviceInfo(len(real), _FakeGPU(), "Fake platform")
    monkeypatch.setattr(D, "_devices", real + [fake])
    monkeypatch.setattr(D, "_DEVICE_OBJECTS", {})
    monkeypatch.setattr(D, "_default", D.device(f"cl:{real[0].index}"))
    acc = cg.accelerator.current_accelerator()
    gpus = [d for d in real + [fake] if d.type == "gpu"]
    assert acc == cg.device(f"cl:{gpus[0].index}") and acc == cg.device("cuda")
    assert cg.accelerator.is_available() and cg.accelerator.device_count() == len(gpus)
    assert cg.accelerator.current_device_index() == 0
    monkeypatch.setattr(D, "_default", D.device(f"cl:{gpus[-1].index}"))
    assert cg.accelerator.current_accelerator() == cg.device(f"cl:{gpus[-1].index}")


def test_accelerator_synchronize_on_this_machine():
    x = cg.ones(3) * 2
    cg.accelerator.synchronize(cg.get_default_device())
    assert x.tolist() == [2.0, 2.0, 2.0]


def test_backends_flags():
    cudnn = clgraph.backends.cudnn
    assert cudnn is cg.backends.cudnn and cudnn.is_available() is False
    assert cudnn.version() is None
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == (
        True, False, False, True)
    cudnn.benchmark = True
    assert cg.backends.cudnn.benchmark is True
    cudnn.benchmark = False
    with cudnn.flags(enabled=False, deterministic=True):
        assert cudnn.enabled is False and cudnn.deterministic is True
    assert cudnn.enabled is True and cudnn.deterministic is False
    assert cg.backends.mps.is_available() is False and cg.backends.mps.is_built() is False
    matmul = cg.backends.cuda.matmul
    before = cg.get_float32_matmul_precision()
    try:
        matmul.allow_tf32 = True
        assert cg.get_float32_matmul_precision() == "high" and matmul.allow_tf32
        matmul.allow_tf32 = False
        assert cg.get_float32_matmul_precision() == "highest" and not matmul.allow_tf32
        cg.set_float32_matmul_precision("medium")
        assert matmul.allow_tf32
    finally:
        cg.set_float32_matmul_precision(before)
    cg.backends.cuda.enable_flash_sdp(False)
    assert cg.backends.cuda.flash_sdp_enabled() is False
    cg.backends.cuda.enable_flash_sdp(True)


def test_data_parallel():
    cg.manual_seed(0)
    model = cg.nn.Sequential(cg.nn.Linear(4, 3), cg.nn.ReLU(), cg.nn.Linear(3, 2))
    dp = cg.nn.parallel.DataParallel(model)
    assert dp.module is model and DataParallel is cg.nn.parallel.DataParallel
    assert dp.device_ids == [cg.get_default_device()] and dp.dim == 0
    x = cg.randn(5, 4)
    np.testing.assert_array_equal(dp(x).detach().numpy(), model(x).detach().numpy())
    keys = list(dp.state_dict())
    assert keys == ["module." + k for k in model.state_dict()]
    dp(x).sum().backward()
    assert model[0].weight.grad is not None
    clone = cg.nn.parallel.DataParallel(
        cg.nn.Sequential(cg.nn.Linear(4, 3), cg.nn.ReLU(), cg.nn.Linear(3, 2)),
        device_ids=[cg.get_default_device()])
    clone.load_state_dict(dp.state_dict())
    np.testing.assert_array_equal(clone(x).detach().numpy(), dp(x).detach().numpy())
    torch = pytest.importorskip("torch")
    tm = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(),
                                                   torch.nn.Linear(3, 2)))
    assert list(tm.state_dict()) == keys
