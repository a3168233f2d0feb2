"""cg.save / cg.load: round trips of every dtype, nested containers, state dicts and
optimizer state, map_location, paths and file objects; clgraph's earlier format (header.json
and .npy entries) still loads, and its truncated, corrupted and tampered files (including
pickle payloads, which must never run) raise a clear error. PyTorch's format itself is
tested in test_checkpoint_torch.py."""

from __future__ import annotations

import io
import json
import os
import pathlib
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import clgraph as cg
from clgraph import optim
from conftest import torch_or_skip

DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def roundtrip(obj, **load_kwargs):
    buf = io.BytesIO()
    cg.save(obj, buf)
    buf.seek(0)
    return cg.load(buf, **load_kwargs)


def host_data(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if np.dtype(dtype).kind == "f":
        a = rng.standard_normal(shape).astype(dtype)
        if a.size >= 3:
            a.flat[:3] = [np.nan, np.inf, -0.0]
        return a
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_exactly(dtype):
    for shape in [(3, 5), (), (0, 4), (2, 1, 3)]:
        a = host_data(dtype, shape)
        t = cg.from_numpy(a)
        r = roundtrip(t)
        assert r.dtype == t.dtype and r.shape == t.shape and not r.requires_grad
        np.testing.assert_array_equal(r.numpy(), a)
        assert r.numpy().tobytes() == a.tobytes()  # bit exact: NaN payloads and -0.0


def test_views_requires_grad_and_sharing():
    base = cg.from_numpy(np.arange(12.0).reshape(3, 4))
    w = cg.randn(4, 2, requires_grad=True)
    obj = {"t": base.t(), "slice": base[1:, ::2], "w": w, "again": w}
    r = roundtrip(obj)
    np.testing.assert_array_equal(r["t"].numpy(), base.numpy().T)
    np.testing.assert_array_equal(r["slice"].numpy(), base.numpy()[1:, ::2])
    assert r["w"].requires_grad and r["w"].is_leaf and r["w"] is r["again"]
    np.testing.assert_array_equal(r["w"].detach().numpy(), w.detach().numpy())


def test_nested_structures():
    t = cg.arange(3)
    obj = {
        "none": None, "flags": [True, False], "int": 12345678901234567890, "neg": -3,
        "float": 0.1, "whole": 2.0, "special": (float("nan"), float("inf"), float("-inf")),
        "str": "héllo\n\"json\"", 3: "int key", (1, "a"): "tuple key", 2.5: "float key",
        "od": OrderedDict([("z", t), ("a", [t, (t, {"deep": [[[1]]]})])]),
        "empty": ({}, [], ()), "size": cg.Size([2, 3]), "dtype": cg.float16,
        "device": t.device, "set": {1, "a"}, "bytes": b"\x00\xff", "complex": 1 - 2j,
    }
    r = roundtrip(obj)
    assert r["none"] is None and r["flags"] == [True, False]
    assert r["int"] == 12345678901234567890 and r["neg"] == -3
    assert r["float"] == 0.1 and isinstance(r["whole"], float) and r["whole"] == 2.0
    assert np.isnan(r["special"][0]) and r["special"][1:] == (float("inf"), float("-inf"))
    assert r["str"] == obj["str"] and r[3] == "int key" and r[(1, "a")] == "tuple key"
    assert r[2.5] == "float key"
    assert isinstance(r["od"], OrderedDict) and list(r["od"]) == ["z", "a"]
    z, (t1, (t2, deep)) = r["od"]["z"], r["od"]["a"]
    assert z is t1 is t2 and z.tolist() == [0, 1, 2] and deep == {"deep": [[[1]]]}
    assert r["empty"] == ({}, [], ())
    assert isinstance(r["size"], cg.Size) and r["size"] == (2, 3)
    assert r["dtype"] is cg.float16 and r["device"] == cg.device("cpu")  # saved as PyTorch's
    assert r["set"] == {1, "a"} and r["bytes"] == b"\x00\xff" and r["complex"] == 1 - 2j


def test_save_rejects_unpicklable_objects(tmp_path):
    for bad in [{"f": lambda: 0}, [(x for x in [])]]:
        with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
            cg.save(bad, tmp_path / "x.pt")
        assert not (tmp_path / "x.pt").exists()  # pickled before the file is opened


def test_paths_and_file_objects(tmp_path):
    t = cg.tensor([1.5, 2.5])
    cg.save(t, str(tmp_path / "a.pt"))
    cg.save(t, tmp_path / "b.pt")
    with open(tmp_path / "c.pt", "wb") as fh:
        cg.save(t, fh)
    for name in ["a.pt", "b.pt", "c.pt"]:
        assert cg.load(tmp_path / name).tolist() == [1.5, 2.5]
        assert cg.load(str(tmp_path / name)).tolist() == [1.5, 2.5]
        with open(tmp_path / name, "rb") as fh:
            assert cg.load(fh).tolist() == [1.5, 2.5]
    with pytest.raises(FileNotFoundError):
        cg.load(tmp_path / "missing.pt")


def test_old_format_loads(tmp_path):
    """A file in clgraph's earlier format (header.json + .npy entries), written here with
    json and numpy alone, loads: every dtype, parameters, shared tensors, the node tags."""
    arrays = [host_data(d, (2, 3), seed=i) for i, d in enumerate(DTYPES)]
    bits = np.array([0x3F80, 0x7FC0, 0x8000], dtype=np.uint16)  # bfloat16 1.0, nan, -0.0
    metas = [old_meta(str(a.dtype), a.shape) for a in arrays]
    metas.append(old_meta("bfloat16", bits.shape))
    metas.append(old_meta("float32", (2,), requires_grad=True, parameter=True))
    entries = [npy(a) for a in arrays] + [npy(bits), npy(np.array([1.5, 2.5], np.float32))]
    root = {"dict": [
        ["each", [{"tensor": i} for i in range(len(arrays))]], ["bf16", {"tensor": len(arrays)}],
        ["p", {"tensor": len(arrays) + 1}], ["again", {"tensor": len(arrays) + 1}],
        [{"tuple": [1, "k"]}, {"ordered_dict": [["x", {"float": "nan"}]]}],
        ["size", {"size": [2, 3]}], ["dtype", {"dtype": "float16"}], ["dev", {"device": "cl:0"}],
    ]}
    path = tmp_path / "old.pt"
    path.write_bytes(old_file(metas, entries, root))
    r = cg.load(path)
    for a, t in zip(arrays, r["each"]):
        assert t.dtype == cg.from_numpy(a).dtype and t.numpy().tobytes() == a.tobytes()
    assert r["bf16"].dtype == cg.bfloat16
    np.testing.assert_array_equal(r["bf16"].float().numpy(), [1.0, np.nan, -0.0])
    nn = pytest.importorskip("clgraph.nn")
    assert isinstance(r["p"], nn.Parameter) and r["p"].requires_grad and r["p"] is r["again"]
    assert r["p"].tolist() == [1.5, 2.5]
    od = r[(1, "k")]
    assert isinstance(od, OrderedDict) and np.isnan(od["x"])
    assert isinstance(r["size"], cg.Size) and r["size"] == (2, 3)
    assert r["dtype"] is cg.float16 and isinstance(r["dev"], cg.device)


def test_map_location():
    t = cg.tensor([1.0, 2.0], requires_grad=True)
    dev = t.device
    name = str(dev)
    for m in [None, "cpu", name, dev, {name: name}, {"cl:99": name}]:
        r = roundtrip(t, map_location=m)
        assert r.device == cg.device(m if isinstance(m, str) else name)
        assert r.requires_grad and r.tolist() == [1.0, 2.0]
    seen = []

    def fn(tensor, location):
        seen.append(location)
        return tensor * 2

    assert roundtrip(t, map_location=fn).tolist() == [2.0, 4.0] and seen == ["cpu"]
    assert roundtrip(t, map_location=lambda s, loc: None).tolist() == [1.0, 2.0]
    assert roundtrip(t, map_location=lambda s, loc: name).device == dev
    assert roundtrip(t, weights_only=False).tolist() == [1.0, 2.0]


def test_module_state_dict_and_parameters():
    nn = pytest.importorskip("clgraph.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("clgraph.nn.Linear not available yet")
    cg.manual_seed(0)
    model = nn.Linear(3, 2)
    sd = model.state_dict()
    r = roundtrip(sd)
    assert type(r) is type(sd) and list(r) == list(sd)
    for k in sd:
        np.testing.assert_array_equal(r[k].numpy(), sd[k].numpy())
    p = roundtrip(model.weight)
    assert isinstance(p, nn.Parameter) and p.requires_grad
    other = nn.Linear(3, 2)
    other.load_state_dict(r)
    np.testing.assert_array_equal(other.weight.detach().numpy(),
                                  model.weight.detach().numpy())


@pytest.mark.parametrize("name,kw", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                     ("Adam", {"lr": 0.01, "amsgrad": True}),
                                     ("RMSprop", {"centered": True}), ("Adagrad", {})])
def test_optimizer_state_dict_through_a_file(name, kw, tmp_path):
    rng = np.random.default_rng(0)
    params = [cg.from_numpy(rng.standard_normal(s)).requires_grad_() for s in [(3, 2), (4,)]]
    grads = [[cg.from_numpy(rng.standard_normal(p.shape)) for p in params] for _ in range(5)]
    opt = getattr(optim, name)(params, **kw)

    def steps(o, ps, gs):
        for g in gs:
            for p, gi in zip(ps, g):
                p.grad = gi
            o.step()

    steps(opt, params, grads[:3])
    cg.save({"params": params, "optim": opt.state_dict()}, tmp_path / "ckpt.pt")
    ckpt = cg.load(tmp_path / "ckpt.pt")
    params2 = [p.detach().requires_grad_() for p in ckpt["params"]]
    opt2 = getattr(optim, name)(params2, **kw)
    opt2.load_state_dict(ckpt["optim"])
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    steps(opt, params, grads[3:])
    steps(opt2, params2, grads[3:])
    for a, b in zip(params, params2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


# --- damaged and hostile files -----------------------------------------------------------


class Payload:
    """Unpickling this runs code: it sets an environment variable."""

    def __reduce__(self):
        return (exec, ("import os; os.environ['CLGRAPH_PWNED'] = '1'",))


@pytest.fixture
def payload():
    os.environ.pop("CLGRAPH_PWNED", None)
    data = pickle.dumps(Payload())
    pickle.loads(data)  # the payload is live: unpickling it does run code
    assert os.environ.pop("CLGRAPH_PWNED") == "1"
    yield data
    assert "CLGRAPH_PWNED" not in os.environ, "a pickle payload was executed by cg.load"


def old_meta(dtype, shape, requires_grad=False, parameter=False) -> dict:
    return {"dtype": dtype, "shape": list(shape), "requires_grad": requires_grad,
            "parameter": parameter, "device": "cl:0"}


def old_file(metas, entries, root) -> bytes:
    """An archive in clgraph's earlier format: header.json and tensors/<i>.npy."""
    header = {"format": "clgraph", "version": 1, "tensors": metas, "root": root}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("header.json", json.dumps(header))
        for i, e in enumerate(entries):
            zf.writestr(f"tensors/{i}.npy", e)
    return out.getvalue()


def saved_bytes() -> bytes:
    """{"w": float64 [[0, 1, 2], [3, 4, 5]], "n": 1} in clgraph's earlier format."""
    return old_file([old_meta("float64", (2, 3))], [npy(np.arange(6.0).reshape(2, 3))],
                    {"dict": [["w", {"tensor": 0}], ["n", 1]]})


def new_bytes() -> bytes:
    buf = io.BytesIO()
    cg.save({"w": cg.arange(6.0, dtype=cg.float64).reshape(2, 3), "n": 1}, buf)
    return buf.getvalue()


def rebuild(data: bytes, change) -> bytes:
    """The archive with its entries passed through ``change(dict name -> bytes)``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    change(entries)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, b in entries.items():
            zf.writestr(n, b)
    return out.getvalue()


def edit_header(data: bytes, fn) -> bytes:
    def change(entries):
        h = json.loads(entries["header.json"])
        fn(h)
        entries["header.json"] = json.dumps(h).encode()

    return rebuild(data, change)


def npy(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def load_bytes(data: bytes):
    return cg.load(io.BytesIO(data))


def test_sanity_of_the_damage_helpers():
    assert load_bytes(rebuild(saved_bytes(), lambda e: None))["n"] == 1


@pytest.mark.parametrize("cut", [0.0, 0.3, 0.6, 0.95])
@pytest.mark.parametrize("make", [saved_bytes, new_bytes])
def test_truncated_file(cut, make, tmp_path):
    data = make()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(RuntimeError, match="not a checkpoint|corrupted"):
        cg.load(path)


def test_not_a_zip():
    with pytest.raises(RuntimeError, match="not a checkpoint"):
        load_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))


def test_flipped_data_byte_fails_the_checksum():
    data = bytearray(saved_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("tensors/0.npy")
    # the entry's data starts after its 30-byte local header, name and extra field
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.file_size - 3] ^= 0xFF  # inside the float64 payload
    with pytest.raises(RuntimeError, match="tensors/0.npy.*corrupted.*CRC"):
        load_bytes(bytes(data))


def test_missing_entries():
    data = rebuild(saved_bytes(), lambda e: e.pop("tensors/0.npy"))
    with pytest.raises(RuntimeError, match="missing entry 'tensors/0.npy'"):
        load_bytes(data)
    data = rebuild(saved_bytes(), lambda e: e.pop("header.json"))
    with pytest.raises(RuntimeError, match="no header.json"):
        load_bytes(data)


@pytest.mark.parametrize("edit,message", [
    (lambda h: h["root"]["dict"].append(["x", {"pickle": "gASV..."}]),
     "unknown type 'pickle'"),
    (lambda h: h["root"]["dict"].append(["x", {"tuple": [], "dict": []}]), "exactly one type"),
    (lambda h: h["root"]["dict"].append(["x", {"tensor": 5}]), "references tensor 5"),
    (lambda h: h["root"]["dict"].append(["x", {"tensor": "0"}]), "references tensor '0'"),
    (lambda h: h["root"]["dict"].append([[1], 2]), "unhashable list"),
    (lambda h: h["root"]["dict"].append(["x", {"float": "1e400"}]), "malformed 'float'"),
    (lambda h: h["tensors"][0].update(dtype="complex32"), "malformed description"),
    (lambda h: h["tensors"][0].update(shape=[2, -3]), "malformed description"),
    (lambda h: h["tensors"][0].update(dtype="int64", requires_grad=True), "cannot require"),
    (lambda h: h.update(version=2), "newer clgraph"),
    (lambda h: h.update(format="pytorch"), "does not describe a clgraph file"),
    (lambda h: h.pop("root"), "lacks 'tensors' or 'root'"),
])
def test_tampered_header(edit, message):
    with pytest.raises(RuntimeError, match=message):
        load_bytes(edit_header(saved_bytes(), edit))


@pytest.mark.parametrize("text,message", [
    (b"{not json", "not valid JSON"), (b"\xff\xfe", "not valid JSON"),
    (b'{"format": "clgraph", "version": 1, "tensors": [], "root": NaN}', "not valid JSON"),
    (b'{"format": "clgraph", "version": 1, "tensors": [], "root": ' + b"[" * 100000 +
     b"]" * 100000 + b"}", "nests|not valid JSON"),
    (b'[1, 2]', "does not describe"),
])
def test_bad_header_text(text, message):
    data = rebuild(saved_bytes(), lambda e: e.update({"header.json": text}))
    with pytest.raises(RuntimeError, match=message):
        load_bytes(data)


def test_deep_but_valid_json_nesting_is_refused():
    root = 1
    for _ in range(300):
        root = [root]
    data = edit_header(saved_bytes(), lambda h: h.update(root=root))
    with pytest.raises(RuntimeError, match="nests deeper"):
        load_bytes(data)


@pytest.mark.parametrize("arr,message", [
    (np.arange(6, dtype=np.float32).reshape(2, 3),
     "holds float32 data but the header says float64"),
    (np.arange(6.0).reshape(3, 2), r"has shape \[3, 2\] but the header says \[2, 3\]"),
    (np.zeros(3, dtype=[("a", "<f8")]), "structured or object"),
])
def test_array_disagreeing_with_header(arr, message):
    data = rebuild(saved_bytes(), lambda e: e.update({"tensors/0.npy": npy(arr)}))
    with pytest.raises(RuntimeError, match=message):
        load_bytes(data)


def test_big_endian_array_matching_the_header_loads():
    arr = np.arange(6.0).reshape(2, 3).astype(">f8")
    data = rebuild(saved_bytes(), lambda e: e.update({"tensors/0.npy": npy(arr)}))
    assert load_bytes(data)["w"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_truncated_array_entry():
    def change(entries):
        entries["tensors/0.npy"] = entries["tensors/0.npy"][:-8]

    with pytest.raises(RuntimeError, match="tensors/0.npy"):
        load_bytes(rebuild(saved_bytes(), change))


def test_object_array_with_pickle_payload_is_not_executed(payload):
    arr = np.array([Payload(), 1], dtype=object)
    data = rebuild(saved_bytes(), lambda e: e.update({"tensors/0.npy": npy(arr, True)}))
    with pytest.raises(RuntimeError, match="not a plain numeric array.*[Oo]bject arrays"):
        load_bytes(data)


def test_pytorch_style_pickle_archive_is_not_executed(payload):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL builtins.exec was not an allowed"):
        load_bytes(out.getvalue())
    # next to a valid header, an extra pickle entry is ignored, never unpickled
    data = rebuild(saved_bytes(), lambda e: e.update({"data.pkl": payload}))
    assert load_bytes(data)["n"] == 1


def test_raw_pickle_file_is_not_executed(payload):
    with pytest.raises(RuntimeError, match="not a checkpoint"):
        load_bytes(payload)


def test_torch_save_file_loads(tmp_path):
    torch = torch_or_skip()
    torch.save({"w": torch.ones(2)}, tmp_path / "torch.pt")
    assert cg.load(pathlib.Path(tmp_path / "torch.pt"))["w"].tolist() == [1.0, 1.0]
