"""cg.save / cg.load: tensors and nested containers in a zip file that loading never
executes (no pickle anywhere).

File format (version 1)
-----------------------
A ZIP archive (entries stored uncompressed) holding::

    header.json        UTF-8 JSON, the object tree (below)
    tensors/<i>.npy    entry i of header["tensors"]: the tensor's data in C order,
                       little-endian, written by numpy.lib.format with allow_pickle=False

``header.json`` is ``{"format": "clgraph", "version": 1, "tensors": [meta, ...],
"root": node}`` where each tensor ``meta`` is ``{"dtype": "float32", "shape": [2, 3],
"requires_grad": false, "parameter": false, "device": "cl:0"}`` (``parameter``: an
``nn.Parameter``; ``device``: where it was saved, informative only) and a ``node`` is

- ``null``, ``true``, ``false``, an integer, a string, or a finite float (a JSON number with
  a fraction or exponent): itself;
- a JSON array: a list of nodes;
- a JSON object with exactly one key, its type tag: ``{"tensor": i}``;
  ``{"float": "nan" | "inf" | "-inf"}``; ``{"tuple": [nodes]}``;
  ``{"dict": [[key, value], ...]}`` and ``{"ordered_dict": [[key, value], ...]}`` (keys are
  nodes too, so integer and tuple keys survive); ``{"size": [ints]}`` (a ``cg.Size``);
  ``{"dtype": "float32"}``; ``{"device": "cl:0"}``.

The same tensor object saved twice is stored once and loads as one object (an optimizer's
state and a model's parameters may share). Distinct tensors that are views of one storage
are stored separately. Loading checks everything against the header (entry present, dtype,
shape, no object arrays, known tags) and raises RuntimeError naming the problem.

Imports the tensor layer only; ``nn.Parameter`` is looked up lazily."""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from . import dtypes as dt
from .creation import _from_host
from .device import as_device, default_device
from .device import device as _device
from .tensor import Size, Tensor

FORMAT = "clgraph"
VERSION = 1
HEADER = "header.json"
_MAX_DEPTH = 200  # nesting deeper than this in a header is treated as tampering


def _parameter_class():
    """clgraph.nn.Parameter when the nn package is present (imported on first use)."""
    try:
        from . import nn
    except ImportError:
        return None
    return getattr(nn, "Parameter", None)


def _tensor_entry(i: int) -> str:
    return f"tensors/{i}.npy"


# --- save ----------------------------------------------------------------------------------


class _Encoder:
    def __init__(self):
        self.tensors: list[Tensor] = []
        self.index: dict[int, int] = {}
        self.parameter = _parameter_class()

    def node(self, obj, depth: int = 0):
        if depth > _MAX_DEPTH:
            raise ValueError(f"cg.save: object nesting deeper than {_MAX_DEPTH} levels (a "
                             "reference cycle?)")
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, Tensor):
            return {"tensor": self.tensor(obj)}
        if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
            return int(obj)
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, (float, np.floating)):
            f = float(obj)
            if math.isfinite(f):
                return f
            return {"float": "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")}
        if isinstance(obj, dt.dtype):
            return {"dtype": obj.name}
        if isinstance(obj, _device):
            return {"device": str(obj)}
        if isinstance(obj, Size):
            return {"size": [int(s) for s in obj]}
        if isinstance(obj, list):
            return [self.node(x, depth + 1) for x in obj]
        if isinstance(obj, tuple):  # namedtuples load as plain tuples
            return {"tuple": [self.node(x, depth + 1) for x in obj]}
        if isinstance(obj, dict):  # other dict subclasses load as dict
            tag = "ordered_dict" if isinstance(obj, OrderedDict) else "dict"
            return {tag: [[self.node(k, depth + 1), self.node(v, depth + 1)]
                          for k, v in obj.items()]}
        raise TypeError(f"cg.save cannot store objects of type {type(obj).__name__}; it stores "
                        "tensors, dicts, OrderedDicts, lists, tuples, str, int, float, bool, "
                        "None, dtypes, devices and Sizes")

    def tensor(self, t: Tensor) -> int:
        i = self.index.get(id(t))
        if i is None:
            i = self.index[id(t)] = len(self.tensors)
            self.tensors.append(t)
        return i

    def meta(self, t: Tensor) -> dict:
        return {"dtype": t.dtype.name, "shape": list(t.shape),
                "requires_grad": bool(t.requires_grad),
                "parameter": self.parameter is not None and isinstance(t, self.parameter),
                "device": str(t.device)}


def save(obj: Any, f, pickle_module=None, pickle_protocol=None,
         _use_new_zipfile_serialization=True) -> None:
    """torch.save, in clgraph's own format (see the module docstring): ``f`` is a path (str
    or os.PathLike) or a writable binary file object. Tensors are copied to the host, so this
    waits for their pending kernels."""
    enc = _Encoder()
    root = enc.node(obj)
    header = {"format": FORMAT, "version": VERSION,
              "tensors": [enc.meta(t) for t in enc.tensors], "root": root}
    text = json.dumps(header, allow_nan=False, separators=(",", ":"))
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            _write(fh, text, enc.tensors)
    else:
        _write(f, text, enc.tensors)


def _write(fh, text: str, tensors: list[Tensor]) -> None:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(HEADER, text)
        for i, t in enumerate(tensors):
            arr = dt.to_storage(t.detach()._host(), t.dtype)  # bfloat16: its bits
            arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
            with zf.open(_tensor_entry(i), "w", force_zip64=arr.nbytes > 2**30) as out:
                np.lib.format.write_array(out, arr, allow_pickle=False)


# --- load ----------------------------------------------------------------------------------


class _Decoder:
    def __init__(self, zf: zipfile.ZipFile, where: str, metas: list, map_location):
        self.zf = zf
        self.where = where
        self.metas = metas
        self.map_location = map_location
        self.loaded: dict[int, Tensor] = {}
        self.names = set(zf.namelist())

    def fail(self, msg: str) -> RuntimeError:
        return RuntimeError(f"cg.load: {self.where}: {msg}")

    def node(self, node, depth: int = 0):
        if depth > _MAX_DEPTH:
            raise self.fail(f"header nests deeper than {_MAX_DEPTH} levels")
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.node(x, depth + 1) for x in node]
        if not isinstance(node, dict) or len(node) != 1:
            raise self.fail(f"header has an object with keys {sorted(node)}; expected exactly "
                            "one type tag")
        (tag, value), = node.items()
        if tag == "tensor":
            return self.tensor(value)
        if tag == "tuple" and isinstance(value, list):
            return tuple(self.node(x, depth + 1) for x in value)
        if tag in ("dict", "ordered_dict") and isinstance(value, list):
            out = OrderedDict() if tag == "ordered_dict" else {}
            for item in value:
                if not isinstance(item, list) or len(item) != 2:
                    raise self.fail(f"a {tag} item must be a [key, value] pair, got {item!r:.80}")
                key = self.node(item[0], depth + 1)
                try:
                    out[key] = self.node(item[1], depth + 1)
                except TypeError:
                    raise self.fail(f"unhashable {type(key).__name__} used as a dict key") \
                        from None
            return out
        if tag == "float" and value in ("nan", "inf", "-inf"):
            return float(value)
        if tag == "size" and isinstance(value, list) and all(
                type(v) is int and v >= 0 for v in value):
            return Size(value)
        if tag == "dtype" and isinstance(value, str) and value in _DTYPES:
            return _DTYPES[value]
        if tag == "device" and isinstance(value, str):
            try:
                return as_device(value)
            except (RuntimeError, ValueError, IndexError):  # saved on a device not here
                return default_device()
        if tag in ("tuple", "dict", "ordered_dict", "float", "size", "dtype", "device"):
            raise self.fail(f"malformed {tag!r} node: {value!r:.80}")
        raise self.fail(f"header references an unknown type {tag!r}; this file was not "
                        "written by cg.save or was tampered with")

    def tensor(self, i) -> Tensor:
        if type(i) is not int or not 0 <= i < len(self.metas):
            raise self.fail(f"header references tensor {i!r}, but the file lists "
                            f"{len(self.metas)} tensors")
        t = self.loaded.get(i)
        if t is None:
            t = self.loaded[i] = self.read_tensor(i)
        return t

    def read_tensor(self, i: int) -> Tensor:
        meta = self.metas[i]
        name = _tensor_entry(i)
        dtype, shape = meta["dtype"], tuple(meta["shape"])
        if name not in self.names:
            raise self.fail(f"missing entry {name!r} for tensor {i}")
        try:
            raw = self.zf.read(name)
            arr = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
            raise self.fail(f"entry {name!r} is corrupted: {e}") from None
        except ValueError as e:  # object arrays, bad .npy headers, truncated data
            raise self.fail(f"entry {name!r} is not a plain numeric array: {e}") from None
        if arr.dtype.hasobject or arr.dtype.fields is not None:
            raise self.fail(f"entry {name!r} holds a structured or object array")
        want = _DTYPES[dtype].np
        if arr.dtype.newbyteorder("<") != want.newbyteorder("<"):
            raise self.fail(f"entry {name!r} holds {arr.dtype} data but the header says "
                            f"{dtype}")
        if arr.shape != shape:
            raise self.fail(f"entry {name!r} has shape {list(arr.shape)} but the header says "
                            f"{list(shape)}")
        arr = arr.astype(want, copy=False)
        saved_at = meta.get("device", "")
        t = _from_host(arr, _DTYPES[dtype], self.device_for(saved_at), storage=True)
        if callable(self.map_location) and not isinstance(self.map_location, (str, _device)):
            moved = self.map_location(t, saved_at)
            if isinstance(moved, Tensor):
                t = moved
            elif moved is not None:
                t = t.to(as_device(moved))
        if meta["parameter"]:
            cls = _parameter_class()
            if cls is not None:
                return cls(t, requires_grad=meta["requires_grad"])
        if meta["requires_grad"]:
            t.requires_grad_(True)
        return t

    def device_for(self, saved_at: str):
        m = self.map_location
        if m is None or (callable(m) and not isinstance(m, (str, _device))):
            return default_device()
        if isinstance(m, dict):
            target = m.get(saved_at)
            return as_device(target) if target is not None else default_device()
        return as_device(m)


_DTYPES = {d.name: d for d in dt.ALL}


def _check_header(header, fail: Callable[[str], RuntimeError]) -> list:
    """The tensor metas of a parsed header, after checking its shape and fields."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise fail("header.json does not describe a clgraph file")
    version = header.get("version")
    if type(version) is not int or version < 1:
        raise fail(f"bad format version {version!r}")
    if version > VERSION:
        raise fail(f"written by a newer clgraph (format version {version}); this one reads "
                   f"version {VERSION}")
    metas = header.get("tensors")
    if not isinstance(metas, list) or "root" not in header:
        raise fail("header.json lacks 'tensors' or 'root'")
    for i, m in enumerate(metas):
        ok = (isinstance(m, dict) and m.get("dtype") in _DTYPES
              and isinstance(m.get("shape"), list)
              and all(type(s) is int and s >= 0 for s in m["shape"])
              and isinstance(m.get("requires_grad"), bool)
              and isinstance(m.get("parameter"), bool))
        if not ok:
            raise fail(f"tensor {i} has a malformed description: {m!r:.120}")
        if m["requires_grad"] and not _DTYPES[m["dtype"]].is_floating_point:
            raise fail(f"tensor {i} of dtype {m['dtype']} cannot require grad")
    return metas


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = True,
         mmap=None, **pickle_load_args) -> Any:
    """torch.load for files written by ``cg.save``; ``f`` is a path or a readable, seekable
    binary file object. Nothing in the file is executed, so ``weights_only`` changes
    nothing.

    ``map_location``: None puts tensors on the default device (files are portable); a
    device or string puts them there; a dict maps the saved device string (``"cl:0"``) to a
    target (unlisted ones go to the default device); a callable is called as
    ``fn(tensor, saved_device)`` with the tensor on the default device and returns a
    tensor, a device, or None (keep it)."""
    where = os.fspath(f) if isinstance(f, (str, os.PathLike)) else type(f).__name__

    def fail(msg):
        return RuntimeError(f"cg.load: {where}: {msg}")

    try:
        zf = zipfile.ZipFile(f, "r")
    except zipfile.BadZipFile as e:
        raise fail(f"not a clgraph file (not a zip archive, or truncated: {e})") from None
    except (EOFError, ValueError) as e:
        raise fail(f"not a clgraph file ({e})") from None
    with zf:
        names = zf.namelist()
        if HEADER not in names:
            hint = ""
            if any(n.endswith(".pkl") for n in names):
                hint = ("; it looks like a PyTorch (pickle) checkpoint, which clgraph does not "
                        "load because unpickling can run code")
            raise fail(f"not a clgraph file: the archive has no {HEADER}{hint}")
        try:
            text = zf.read(HEADER).decode("utf-8")
            header = json.loads(text, parse_constant=_reject_constant)
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise fail(f"{HEADER} is corrupted: {e}") from None
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise fail(f"{HEADER} is not valid JSON: {str(e)[:200]}") from None
        metas = _check_header(header, fail)
        dec = _Decoder(zf, where, metas, map_location)
        try:
            return dec.node(header["root"])
        except RecursionError:
            raise fail("header nests too deeply") from None


__all__ = ["load", "save"]
