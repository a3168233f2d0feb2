"""PyTorch's checkpoint format, both ways: cg.save writes what torch.save writes (layout,
data.pkl byte for byte), round trips in clgraph (every dtype, views and shared storages,
containers, Parameters, optimizer and model state), torch.load(weights_only=True) reads
clgraph's files and cg.load reads PyTorch's (state dicts of real models, optimizer state,
whole modules with weights_only=False); weights_only loading refuses code-running pickles
without running them, safe_globals allows a class, and damaged files raise RuntimeError."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import subprocess
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph import optim

nn = cg.nn
DTYPES = [d.name for d in cg.dtypes.ALL]  # every clgraph dtype, bfloat16 included


def save_bytes(obj, save=cg.save) -> bytes:
    buf = io.BytesIO()
    save(obj, buf)
    return buf.getvalue()


def load_bytes(data: bytes, load=cg.load, **kw):
    return load(io.BytesIO(data), **kw)


def roundtrip(obj, **kw):
    return load_bytes(save_bytes(obj), **kw)


def host_values(name: str, shape, seed=0) -> np.ndarray:
    """Values for a dtype (bfloat16: float32 values it holds exactly), with NaN, inf, -0.0."""
    rng = np.random.default_rng(seed)
    if name == "bool":
        return rng.random(shape) < 0.5
    if name in ("float16", "bfloat16", "float32", "float64"):
        a = rng.standard_normal(shape).astype("float32" if name == "bfloat16" else name)
        if name == "bfloat16":
            a = (a.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
        if a.size >= 3:
            a.flat[:3] = [np.nan, np.inf, -0.0]
        return a
    info = np.iinfo(name)
    return rng.integers(info.min, info.max, size=shape, dtype=name, endpoint=True)


def cg_tensor(name: str, values: np.ndarray):
    return cg.tensor(values, dtype=getattr(cg, name))


def cg_values(t) -> np.ndarray:
    """A clgraph tensor's values on the host (bfloat16 as exact float32)."""
    return (t.float() if t.dtype == cg.bfloat16 else t).detach().numpy()


def torch_values(t) -> np.ndarray:
    return (t.float() if str(t.dtype) == "torch.bfloat16" else t).detach().numpy()


def assert_same_bits(a: np.ndarray, b: np.ndarray):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()  # NaN, inf and -0.0 included


def archive_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rezip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, b in entries.items():
            zf.writestr(n, b)
    return out.getvalue()


def with_entry(data: bytes, name: str, value: bytes | None) -> bytes:
    """The archive with one entry replaced (None: removed)."""
    entries = archive_entries(data)
    if value is None:
        del entries[name]
    else:
        entries[name] = value
    return rezip(entries)


# --- the file's layout ---------------------------------------------------------------------


def test_layout_matches_torch_save(tmp_path):
    torch = torch_or_skip()
    cg.save({"w": cg.ones(2, 3), "b": cg.zeros(3, dtype=cg.int64)}, tmp_path / "my_ckpt.pt")
    torch.save({"w": torch.ones(2, 3), "b": torch.zeros(3, dtype=torch.int64)},
               tmp_path / "theirs.pt")
    with zipfile.ZipFile(tmp_path / "my_ckpt.pt") as ours, \
            zipfile.ZipFile(tmp_path / "theirs.pt") as theirs:
        names = ours.namelist()
        assert [n.replace("my_ckpt/", "theirs/") for n in names] == theirs.namelist()
        assert names == ["my_ckpt/data.pkl", "my_ckpt/.format_version",
                         "my_ckpt/.storage_alignment", "my_ckpt/byteorder", "my_ckpt/data/0",
                         "my_ckpt/data/1", "my_ckpt/version", "my_ckpt/.data/serialization_id"]
        for n in (".format_version", ".storage_alignment", "byteorder", "version"):
            assert ours.read("my_ckpt/" + n) == theirs.read("theirs/" + n)
        assert ours.read("my_ckpt/data.pkl") == theirs.read("theirs/data.pkl")
        sid = ours.read("my_ckpt/.data/serialization_id")
        assert len(sid) == 40 and sid.isdigit()
        assert ours.read("my_ckpt/data/0") == np.ones(6, "<f4").tobytes()
        raw = (tmp_path / "my_ckpt.pt").read_bytes()
        for info in ours.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            start = info.header_offset + 30 + len(info.filename) + len(info.extra)
            assert start % 64 == 0, info.filename  # storages aligned as PyTorch's (mmap)
            assert raw[start:start + info.file_size] == ours.read(info.filename)
    assert "archive/data.pkl" in archive_entries(save_bytes(cg.ones(1)))  # a file object


def test_data_pkl_is_torch_s_byte_for_byte():
    torch = torch_or_skip()
    cg.manual_seed(0)
    ours = nn.Linear(3, 2)
    theirs = torch.nn.Linear(3, 2)
    extra = {"list": [1, 2.5, "s", None, (3, True)], "int": 2**70, "nan": float("nan"),
             "bytes": b"\x00\xff", "set": {4}, "complex": 1 - 2j, "dict": {1: "a", (2,): "b"}}
    a = save_bytes({"sd": ours.state_dict(), "p": ours.weight, "dt": cg.float16,
                    "size": cg.Size([2, 3]), **extra})
    b = save_bytes({"sd": theirs.state_dict(), "p": theirs.weight, "dt": torch.float16,
                    "size": torch.Size([2, 3]), **extra}, torch.save)
    assert archive_entries(a)["archive/data.pkl"] == archive_entries(b)["archive/data.pkl"]


# --- clgraph -> clgraph --------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPES)
def test_every_dtype_round_trips_bit_exactly(name):
    for shape in [(3, 5), (), (0, 4), (2, 1, 3)]:
        values = host_values(name, shape)
        t = cg_tensor(name, values)
        r = roundtrip(t)
        assert r.dtype == t.dtype and r.shape == t.shape and not r.requires_grad
        assert_same_bits(cg_values(r), cg_values(t))


def test_views_share_their_storage_in_the_file_and_after_loading():
    base = cg.arange(12.0).reshape(3, 4)
    obj = {"base": base, "t": base.t(), "cols": base[1:, ::2], "row": base[2],
           "b": base.expand(2, 3, 4), "other": cg.ones(2)}
    data = save_bytes(obj)
    assert sorted(n for n in archive_entries(data) if "/data/" in n) == [
        "archive/data/0", "archive/data/1"]  # one storage for the five views of base
    r = load_bytes(data)
    expect = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(r["t"].numpy(), expect.T)
    np.testing.assert_array_equal(r["cols"].numpy(), expect[1:, ::2])
    np.testing.assert_array_equal(r["b"].numpy(), np.broadcast_to(expect, (2, 3, 4)))
    assert r["t"].stride() == (1, 4) and r["cols"].stride() == (4, 2)
    r["base"].add_(100.0)  # they share one storage again
    assert r["row"].tolist() == [108.0, 109.0, 110.0, 111.0]
    assert r["t"][0, 1].item() == 104.0 and r["other"].tolist() == [1.0, 1.0]


def test_same_tensor_saved_twice_loads_as_one_object():
    w = cg.randn(4, 2, requires_grad=True)
    r = roundtrip({"w": w, "again": [w, (w,)]})
    assert r["w"] is r["again"][0] is r["again"][1][0]
    assert r["w"].requires_grad and r["w"].is_leaf
    np.testing.assert_array_equal(r["w"].detach().numpy(), w.detach().numpy())


def test_nested_containers():
    t = cg.arange(3)
    obj = OrderedDict(a=[t, (t, {"deep": [[[1]]], 3: None})], b={(1, "k"): 2.5, "s": "héllo"},
                      c=(cg.Size([2, 3]), cg.float16, cg.bfloat16, True, -2**65),
                      d=set(), e=b"bytes", f=bytearray(b"x"))
    r = roundtrip(obj)
    assert type(r) is OrderedDict and list(r) == list("abcdef")
    t1, (t2, inner) = r["a"]
    assert t1 is t2 and t1.tolist() == [0, 1, 2] and t1.dtype == cg.int64
    assert inner == {"deep": [[[1]]], 3: None} and r["b"] == obj["b"]
    assert isinstance(r["c"][0], cg.Size) and r["c"][0] == (2, 3)
    assert r["c"][1] is cg.float16 and r["c"][2] is cg.bfloat16 and r["c"][3:] == (True, -2**65)
    assert r["d"] == set() and r["e"] == b"bytes" and r["f"] == bytearray(b"x")


def test_parameters_round_trip():
    p = nn.Parameter(cg.randn(3, 2))
    frozen = nn.Parameter(cg.arange(4), requires_grad=False)
    r = roundtrip({"p": p, "frozen": frozen, "p2": p})
    assert isinstance(r["p"], nn.Parameter) and r["p"].requires_grad and r["p"] is r["p2"]
    assert isinstance(r["frozen"], nn.Parameter) and not r["frozen"].requires_grad
    np.testing.assert_array_equal(r["p"].detach().numpy(), p.detach().numpy())
    assert r["frozen"].tolist() == [0, 1, 2, 3]


def small_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(3 * 4 * 4, 5))


def test_model_state_dict_round_trips_with_its_metadata():
    cg.manual_seed(0)
    model = small_model()
    model(cg.randn(4, 2, 4, 4))  # BatchNorm's running statistics move
    model.eval()
    sd = model.state_dict()
    r = roundtrip(sd)
    assert type(r) is OrderedDict and list(r) == list(sd) and r._metadata == sd._metadata
    other = small_model().eval()
    assert not other.load_state_dict(r).missing_keys
    x = cg.randn(2, 2, 4, 4)
    np.testing.assert_array_equal(other(x).detach().numpy(), model(x).detach().numpy())


def adam_steps(opt, params, grads):
    for g in grads:
        for p, gi in zip(params, g):
            p.grad = gi
        opt.step()


def test_adam_state_dict_round_trips_and_training_continues(tmp_path):
    rng = np.random.default_rng(0)
    params = [cg.from_numpy(rng.standard_normal(s).astype(np.float32)).requires_grad_()
              for s in [(3, 2), (4,)]]
    grads = [[cg.from_numpy(rng.standard_normal(p.shape).astype(np.float32)) for p in params]
             for _ in range(5)]
    opt = optim.Adam(params, lr=0.01, amsgrad=True)
    adam_steps(opt, params, grads[:3])
    cg.save({"params": params, "optim": opt.state_dict()}, tmp_path / "ckpt.pt")
    ckpt = cg.load(tmp_path / "ckpt.pt")
    assert set(ckpt["optim"]["state"]) == {0, 1}
    params2 = ckpt["params"]
    opt2 = optim.Adam(params2, lr=0.01, amsgrad=True)
    opt2.load_state_dict(ckpt["optim"])
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    adam_steps(opt, params, grads[3:])
    adam_steps(opt2, params2, grads[3:])
    for a, b in zip(params, params2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_map_location():
    t = cg.tensor([1.0, 2.0], requires_grad=True)
    dev = t.device
    for m in [None, "cpu", dev, {"cpu": str(dev)}, {"cuda:0": "cpu"}]:
        r = roundtrip(t, map_location=m)
        assert r.device == dev and r.requires_grad and r.tolist() == [1.0, 2.0]
    seen = []

    def fn(storage, location):
        seen.append((location, storage.shape))
        return storage * 2

    assert roundtrip({"a": t, "b": t[1:]}, map_location=fn)["b"].tolist() == [4.0]
    assert seen == [("cpu", (2,))]  # once per storage
    with pytest.raises(RuntimeError, match="map_location returned"):
        roundtrip(t, map_location=lambda s, loc: s[:1])


def test_numpy_scalars_need_weights_only_false_as_in_pytorch():
    data = save_bytes({"x": np.float32(0.5)})
    with pytest.raises(pickle.UnpicklingError, match="numpy"):
        load_bytes(data)
    assert load_bytes(data, weights_only=False)["x"] == np.float32(0.5)


# --- whole modules -------------------------------------------------------------------------


def test_whole_clgraph_module_needs_weights_only_false(tmp_path):
    cg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.LSTM(4, 5))
    cg.save(model, tmp_path / "model.pt")
    with pytest.raises(pickle.UnpicklingError,
                       match=r"clgraph\.nn\.container\.Sequential.*weights_only=False"):
        cg.load(tmp_path / "model.pt")
    loaded = cg.load(tmp_path / "model.pt", weights_only=False)
    assert type(loaded) is nn.Sequential and isinstance(loaded[2], nn.LSTM)
    assert isinstance(loaded[0].weight, nn.Parameter) and loaded[0].weight.requires_grad
    x = cg.randn(6, 2, 3)
    out, _ = loaded[2](loaded[1](loaded[0](x)))
    ref, _ = model[2](model[1](model[0](x)))
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    assert loaded.state_dict().keys() == model.state_dict().keys()


def test_torch_pickled_modules_load_as_clgraph_modules(tmp_path):
    torch = torch_or_skip()
    torch.manual_seed(0)
    cases = [(torch.nn.Linear(3, 4), nn.Linear, (2, 3)),
             (torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()), nn.Sequential, (2, 3)),
             (torch.nn.Conv2d(2, 3, 3), nn.Conv2d, (1, 2, 5, 5))]
    for i, (module, cls, shape) in enumerate(cases):
        path = tmp_path / f"m{i}.pt"
        torch.save(module, path)
        with pytest.raises(pickle.UnpicklingError, match=r"GLOBAL torch\.nn\.modules\."):
            cg.load(path)
        loaded = cg.load(path, weights_only=False)
        assert type(loaded) is cls
        x = np.random.default_rng(i).standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(loaded(cg.tensor(x)).detach().numpy(),
                                   module(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                                   atol=1e-6)


# --- clgraph -> PyTorch --------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPES)
def test_torch_loads_every_dtype(name, tmp_path):
    torch = torch_or_skip()
    values = host_values(name, (3, 4), seed=1)
    t = cg_tensor(name, values)
    cg.save({"t": t, "col": t[:, 1], "empty": t[:0]}, tmp_path / "x.pt")
    r = torch.load(tmp_path / "x.pt", weights_only=True)
    assert r["t"].dtype == getattr(torch, name) and r["t"].device.type == "cpu"
    assert_same_bits(torch_values(r["t"]), cg_values(t))
    assert_same_bits(torch_values(r["col"]), cg_values(t)[:, 1])
    assert r["col"].untyped_storage().data_ptr() == r["t"].untyped_storage().data_ptr()
    assert tuple(r["empty"].shape) == (0, 4)


def test_torch_loads_parameters_and_a_model_state_dict(tmp_path):
    torch = torch_or_skip()
    cg.manual_seed(0)
    model = small_model()
    model(cg.randn(4, 2, 4, 4))
    model.eval()
    cg.save({"sd": model.state_dict(), "p": model[0].weight, "g": cg.ones(2, requires_grad=True)},
            tmp_path / "m.pt")
    r = torch.load(tmp_path / "m.pt", weights_only=True)
    assert isinstance(r["p"], torch.nn.Parameter) and r["p"].requires_grad
    assert r["g"].requires_grad and r["g"].is_leaf
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3),
                                 torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(48, 5))
    theirs.load_state_dict(r["sd"])
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(theirs(torch.tensor(x)).detach().numpy(),
                               model(cg.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


# --- PyTorch -> clgraph --------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPES)
def test_every_dtype_from_torch(name, tmp_path):
    torch = torch_or_skip()
    values = host_values(name, (4, 3), seed=2)
    t = torch.tensor(values.astype(np.float32) if name == "bfloat16" else values,
                     dtype=getattr(torch, name))
    torch.save({"t": t, "t_t": t.t(), "rows": t[1::2], "scalar": t[1, 2]}, tmp_path / "x.pt")
    r = cg.load(tmp_path / "x.pt")
    assert r["t"].dtype == getattr(cg, name)
    assert_same_bits(cg_values(r["t"]), torch_values(t))
    # views read back through a copy kernel, which may change a NaN's payload: values
    np.testing.assert_array_equal(cg_values(r["t_t"]), torch_values(t.t()))
    np.testing.assert_array_equal(cg_values(r["rows"]), torch_values(t[1::2]))
    assert r["scalar"].shape == () and r["t_t"].stride() == (1, 3)


def test_torch_views_and_shared_storages(tmp_path):
    torch = torch_or_skip()
    base = torch.arange(12.0).reshape(3, 4)
    torch.save({"base": base, "cols": base[:, 1::2], "expanded": torch.ones(3).expand(2, 3),
                "w": torch.nn.Parameter(torch.ones(2)), "g": torch.zeros(2, requires_grad=True)},
               tmp_path / "v.pt")
    r = cg.load(tmp_path / "v.pt")
    np.testing.assert_array_equal(r["cols"].numpy(), base[:, 1::2].numpy())
    np.testing.assert_array_equal(r["expanded"].numpy(), np.ones((2, 3)))
    assert r["expanded"].stride() == (0, 1)
    r["base"].mul_(2.0)
    assert r["cols"].tolist() == [[2.0, 6.0], [10.0, 14.0], [18.0, 22.0]]
    assert isinstance(r["w"], nn.Parameter) and r["w"].requires_grad
    assert r["g"].requires_grad and not isinstance(r["g"], nn.Parameter)


def test_torch_model_state_dict_loads_into_the_clgraph_model(tmp_path):
    torch = torch_or_skip()
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Conv2d(2, 3, 3, padding=1),
                                 torch.nn.BatchNorm2d(3), torch.nn.LSTM(4, 5, num_layers=2))
    theirs[2](torch.randn(4, 3, 5, 5))  # running statistics and num_batches_tracked move
    theirs.eval()
    torch.save(theirs.state_dict(), tmp_path / "sd.pt")
    ours = nn.Sequential(nn.Linear(4, 3), nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3),
                         nn.LSTM(4, 5, num_layers=2)).eval()
    sd = cg.load(tmp_path / "sd.pt")
    assert type(sd) is OrderedDict and sd._metadata["2"] == {"version": 2}
    result = ours.load_state_dict(sd)
    assert not result.missing_keys and not result.unexpected_keys
    assert ours[2].num_batches_tracked.item() == 1
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in [(2, 4), (2, 2, 5, 5),
                                                                   (2, 3, 5, 5), (6, 2, 4)]]
    for i, x in enumerate(inputs):
        a, b = ours[i](cg.tensor(x)), theirs[i](torch.tensor(x))
        if i == 3:
            a, b = a[0], b[0]
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=f"layer {i}")


def test_torch_adam_state_dict_loads_into_clgraph_adam(tmp_path):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(np.float32) for s in [(3, 2), (4,)]]
    grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in init] for _ in range(5)]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    topt = torch.optim.Adam(theirs, lr=0.01, weight_decay=0.1)
    adam_steps(topt, theirs, [[torch.tensor(g) for g in gs] for gs in grads[:3]])
    torch.save({"params": theirs, "optim": topt.state_dict()}, tmp_path / "opt.pt")
    ckpt = cg.load(tmp_path / "opt.pt")
    ours = ckpt["params"]
    assert all(isinstance(p, nn.Parameter) for p in ours)
    assert ckpt["optim"]["state"][0]["step"].item() == 3.0
    copt = optim.Adam(ours, lr=0.01, weight_decay=0.1)
    copt.load_state_dict(ckpt["optim"])
    adam_steps(topt, theirs, [[torch.tensor(g) for g in gs] for gs in grads[3:]])
    adam_steps(copt, ours, [[cg.tensor(g) for g in gs] for gs in grads[3:]])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_torch_dtypes_clgraph_lacks_are_named(tmp_path):
    torch = torch_or_skip()
    for dtype, name in [(torch.complex32, "complex32"), (torch.uint16, "uint16")]:
        torch.save({"t": torch.zeros(2, dtype=dtype)}, tmp_path / "x.pt")
        with pytest.raises(RuntimeError, match=f"clgraph has no dtype for torch.{name}"):
            cg.load(tmp_path / "x.pt")


def test_torch_bfloat16_values(tmp_path):
    torch = torch_or_skip()
    t = torch.tensor([1.0, 3.14159, -0.0, float("nan"), float("inf"), -2.5e38],
                     dtype=torch.bfloat16)
    torch.save(t, tmp_path / "bf.pt")
    r = cg.load(tmp_path / "bf.pt")
    assert r.dtype == cg.bfloat16
    assert_same_bits(cg_values(r), t.float().numpy())


# --- hostile pickles -----------------------------------------------------------------------


def glob(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def frag(x) -> bytes:
    """The opcodes that push x (pickle.dumps without PROTO and STOP)."""
    return pickle.dumps(x, protocol=2)[2:-1]


def tensor_pickle(numel=6, offset=0, size=(2, 3), stride=(3, 1), storage="FloatStorage",
                  location="cpu", requires_grad=False, key="0") -> bytes:
    """A data.pkl rebuilding one tensor, written opcode by opcode (torch not needed)."""
    pid = b"(" + frag("storage") + glob("torch", storage) + frag(key) + frag(location)
    pid += frag(numel) + b"tQ"
    args = b"(" + pid + frag(offset) + frag(size) + frag(stride) + frag(requires_grad)
    args += glob("collections", "OrderedDict") + b")Rt"
    return b"\x80\x02" + glob("torch._utils", "_rebuild_tensor_v2") + args + b"R."


def torch_zip(pkl: bytes, storages: dict[str, bytes] | None = None, **extra) -> bytes:
    entries = {"archive/data.pkl": pkl, "archive/byteorder": b"little", "archive/version": b"3\n"}
    for key, data in (storages or {}).items():
        entries[f"archive/data/{key}"] = data
    entries.update({f"archive/{k}": v for k, v in extra.items()})
    return rezip(entries)


FLOATS6 = np.arange(6, dtype="<f4").tobytes()


def test_the_hand_written_tensor_pickle_loads():
    r = load_bytes(torch_zip(tensor_pickle(), {"0": FLOATS6}))
    assert r.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    r = load_bytes(torch_zip(tensor_pickle(location="cuda:1"), {"0": FLOATS6}))
    assert r.device == cg.get_default_device()  # saved on a device this machine lacks


class Reduce:
    """Unpickling this calls ``fn(*args)``."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def payloads(marker: str) -> dict[str, bytes]:
    """Pickles that create ``marker`` when unpickled by pickle.loads."""
    shell = f"touch {marker}"
    code = f"open({marker!r}, 'w').close()"
    return {
        "os.system": pickle.dumps(Reduce(os.system, shell), protocol=2),
        "eval": pickle.dumps(Reduce(eval, code), protocol=2),
        "builtins.exec": pickle.dumps(Reduce(exec, code), protocol=2),
        "subprocess": pickle.dumps(Reduce(subprocess.check_call, ["touch", marker]), protocol=2),
        "stack_global": pickle.dumps(Reduce(os.system, shell), protocol=4),
        "protocol_0": pickle.dumps(Reduce(os.system, shell), protocol=0),
        "inst": b"(V" + shell.encode() + b"\nios\nsystem\n.",
        "getattr_chain": (b"\x80\x02" + glob("builtins", "getattr") + b"(" +
                          glob("builtins", "__import__") + frag(("os",)) + b"R" +
                          frag("system") + b"tR" + frag((shell,)) + b"R."),
        "inside_a_state_dict": save_bytes({"x": [Reduce(os.system, shell)], "w": cg.ones(2)}),
    }


class PlainUnpickler(pickle.Unpickler):
    """pickle's own unpickler, storages as None: what weights_only loading must not be."""

    def persistent_load(self, pid):
        return None


@pytest.mark.parametrize("kind", ["os.system", "eval", "builtins.exec", "subprocess",
                                  "stack_global", "protocol_0", "inst", "getattr_chain",
                                  "inside_a_state_dict"])
def test_malicious_pickles_are_refused_and_never_run(kind, tmp_path):
    marker = str(tmp_path / "pwned")
    payload = payloads(marker)[kind]
    if kind == "inside_a_state_dict":
        data = payload
        payload = archive_entries(data)["archive/data.pkl"]
    else:
        data = torch_zip(payload)
    with contextlib.suppress(Exception):  # the payload is live: plain unpickling runs it
        PlainUnpickler(io.BytesIO(payload)).load()
    assert os.path.exists(marker)
    os.remove(marker)
    with pytest.raises(pickle.UnpicklingError, match="weights_only=False"):
        load_bytes(data)
    with pytest.raises(pickle.UnpicklingError):
        load_bytes(data, weights_only=None)  # None means True, as in PyTorch
    assert not os.path.exists(marker)


@pytest.mark.parametrize("opcodes,message", [
    # BUILD on a tensor would reach its slots (storage, shape): refused
    (b"N}(" + frag("_shape") + frag((10**6,)) + b"u\x86b", "Can only build"),
    # SETITEM into a tensor would run its __setitem__: refused
    (frag(0) + frag(5.0) + b"s", "Can only SETITEM"),
])
def test_tensor_state_cannot_be_rewritten(opcodes, message):
    pkl = tensor_pickle()[:-1] + opcodes + b"."
    with pytest.raises(pickle.UnpicklingError, match=message):
        load_bytes(torch_zip(pkl, {"0": FLOATS6}))


def test_reduce_only_calls_allowed_functions():
    # a Size is allowed as a value but a string method is not a global: the only callables
    # are the allowlist's, so REDUCE on anything else (here a str) is refused
    pkl = b"\x80\x02" + frag("abc") + frag(()) + b"R."
    with pytest.raises(pickle.UnpicklingError, match="unrecognized function"):
        load_bytes(torch_zip(pkl))


def test_blocked_modules_stay_blocked_even_when_allowlisted():
    data = torch_zip(pickle.dumps(Reduce(os.getcwd), protocol=2))
    with cg.serialization.safe_globals([os.getcwd]), pytest.raises(pickle.UnpicklingError,
                                                                   match="is blocked"):
        load_bytes(data)


# --- safe_globals --------------------------------------------------------------------------


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class Slotted:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def test_safe_globals_allow_a_custom_class():
    data = save_bytes({"p": Point(1, cg.ones(2)), "s": Slotted(3)})
    name = f"{Point.__module__}.Point"
    with pytest.raises(pickle.UnpicklingError, match=f"GLOBAL {name} was not an allowed") as e:
        load_bytes(data)
    assert "add_safe_globals" in str(e.value) and "weights_only=False" in str(e.value)
    with cg.serialization.safe_globals([Point, Slotted]):
        assert set(cg.serialization.get_safe_globals()) >= {Point, Slotted}
        r = load_bytes(data)
    assert type(r["p"]) is Point and r["p"].x == 1 and r["p"].y.tolist() == [1.0, 1.0]
    assert type(r["s"]) is Slotted and r["s"].value == 3
    assert Point not in cg.serialization.get_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        load_bytes(data)
    try:
        cg.serialization.add_safe_globals([Point, (Slotted, f"{Slotted.__module__}.Slotted")])
        assert load_bytes(data)["s"].value == 3
    finally:
        cg.serialization.clear_safe_globals()
    assert cg.serialization.get_safe_globals() == []
    with pytest.raises(ValueError, match="length 2"):
        cg.serialization.add_safe_globals([(Point,)])


def test_safe_globals_for_a_class_torch_pickled(tmp_path):
    torch = torch_or_skip()
    torch.save({"p": Point(2, torch.zeros(1))}, tmp_path / "p.pt")
    with cg.serialization.safe_globals([Point]):
        r = cg.load(tmp_path / "p.pt")
    assert r["p"].x == 2 and r["p"].y.tolist() == [0.0]


# --- damaged files -------------------------------------------------------------------------


def good_file() -> bytes:
    return save_bytes({"w": cg.arange(6.0).reshape(2, 3), "n": 1})


def test_flipped_storage_byte_fails_the_checksum():
    data = bytearray(good_file())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("archive/data/0")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 5] ^= 0xFF
    with pytest.raises(RuntimeError, match="archive/data/0.*corrupted.*CRC"):
        load_bytes(bytes(data))


@pytest.mark.parametrize("change,message", [
    (lambda e: e.pop("archive/data/0"), "missing entry 'archive/data/0'"),
    (lambda e: e.update({"archive/data/0": FLOATS6[:16]}), "holds 16 bytes but data.pkl says 6"),
    (lambda e: e.update({"archive/data.pkl": e["archive/data.pkl"][:-9]}), "corrupted"),
    (lambda e: e.update({"archive/data.pkl": b"\x80\x02}q\x00(X"}), "corrupted"),
    (lambda e: e.update({"archive/byteorder": b"middle"}), "expected 'little' or 'big'"),
    (lambda e: e.pop("archive/data.pkl"), "no header.json .clgraph. and no"),
])
def test_tampered_archive(change, message):
    entries = archive_entries(good_file())
    change(entries)
    with pytest.raises(RuntimeError, match=message):
        load_bytes(rezip(entries))


@pytest.mark.parametrize("kw,message", [
    ({"numel": 4}, "reaches element 5 of a storage of 4"),
    ({"offset": 1}, "reaches element 6 of a storage of 6"),
    ({"size": (2, -3)}, "malformed geometry"),
    ({"stride": (3,)}, "malformed geometry"),
    ({"storage": "LongStorage", "numel": 3}, "reaches element 5 of a storage of 3"),
    ({"storage": "IntStorage", "requires_grad": True}, "int32 cannot require grad"),
])
def test_tampered_tensor_geometry(kw, message):
    pkl = tensor_pickle(**kw)
    numel = kw.get("numel", 6)
    itemsize = {"LongStorage": 8, "IntStorage": 4}.get(kw.get("storage"), 4)
    with pytest.raises(RuntimeError, match=message):
        load_bytes(torch_zip(pkl, {"0": bytes(numel * itemsize)}))


def test_persistent_id_that_is_not_a_storage():
    pkl = b"\x80\x02" + frag(("storage", "FloatStorage", "0", "cpu", 6)) + b"Q."
    with pytest.raises(RuntimeError, match="unknown persistent id"):
        load_bytes(torch_zip(pkl, {"0": FLOATS6}))
    pkl = b"\x80\x02" + glob("torch._utils", "_rebuild_tensor_v2") + frag(
        ("not a storage", 0, (1,), (1,), False, None)) + b"R."
    with pytest.raises(RuntimeError, match="rebuilt from a str"):
        load_bytes(torch_zip(pkl))


def test_tensor_attributes_from_torch(tmp_path):
    torch = torch_or_skip()
    t = torch.ones(2)
    t.note = "hi"
    p = torch.nn.Parameter(torch.zeros(1))
    p.tag = 3
    torch.save({"t": t, "p": p}, tmp_path / "a.pt")
    r = cg.load(tmp_path / "a.pt")
    assert r["t"].note == "hi" and r["t"].tolist() == [1.0, 1.0]
    assert isinstance(r["p"], nn.Parameter) and r["p"].tag == 3


def test_tensor_attributes_cannot_replace_what_the_class_defines():
    state = {"numpy": "x", "_shape": (10**6,), "shape": (9,), "ok": 1}
    pkl = (b"\x80\x02" + glob("torch._tensor", "_rebuild_from_type_v2") + b"(" +
           glob("torch._utils", "_rebuild_tensor_v2") + glob("torch", "Tensor") +
           tensor_pickle()[2 + len(glob("torch._utils", "_rebuild_tensor_v2")):-2] +
           frag(state) + b"tR.")
    r = load_bytes(torch_zip(pkl, {"0": FLOATS6}))
    assert r.ok == 1 and r.shape == (2, 3) and callable(r.numpy)
    assert r.numpy().tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
