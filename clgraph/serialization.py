"""cg.save / cg.load in PyTorch's checkpoint format, both ways: PyTorch loads clgraph's files
and clgraph loads PyTorch's; clgraph's own earlier format still loads.

PyTorch's format (what torch.save writes; cg.save writes it)
------------------------------------------------------------
A ZIP archive (entries stored uncompressed, each storage's bytes aligned to 64 in the file)
whose entries all sit in one folder, ``<archive>/`` (the file's name without its extension,
or ``archive`` for a file object)::

    data.pkl               the object, pickled (protocol 2) by clgraph._pickle.Pickler:
                           each storage is a persistent id ('storage', torch.FloatStorage,
                           key, 'cpu', numel)
    .format_version        "1"
    .storage_alignment     "64"
    byteorder              "little"
    data/<key>             a storage's elements, raw little-endian bytes (bfloat16: its bits)
    version                "3"
    .data/serialization_id a random 40-digit id

Tensors viewing one storage share it in the file and again once loaded; the same tensor saved
twice loads as one object. Loading with ``weights_only=True`` (the default) never runs code
from the file: see clgraph._pickle.WeightsOnlyUnpickler, and ``add_safe_globals`` /
``safe_globals`` to allow more classes.

clgraph's earlier format (version 1, read only)
------------------------------------------------
A ZIP archive holding ``header.json`` and ``tensors/<i>.npy``. ``header.json`` is
``{"format": "clgraph", "version": 1, "tensors": [meta, ...], "root": node}`` where each
tensor ``meta`` is ``{"dtype": "float32", "shape": [2, 3], "requires_grad": false,
"parameter": false, "device": "cl:0"}`` and a ``node`` is

- ``null``, ``true``, ``false``, an integer, a string, or a finite float: itself;
- a JSON array: a list of nodes;
- a JSON object with exactly one key, its type tag: ``{"tensor": i}``;
  ``{"float": "nan" | "inf" | "-inf"}``; ``{"tuple": [nodes]}``;
  ``{"dict": [[key, value], ...]}`` and ``{"ordered_dict": [[key, value], ...]}``;
  ``{"size": [ints]}``; ``{"dtype": "float32"}``; ``{"device": "cl:0"}``.

``tensors/<i>.npy`` is tensor i's data in C order (numpy.lib.format, no pickle). Loading checks
everything against the header and raises RuntimeError naming the problem.

Imports the tensor layer and clgraph._pickle."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import secrets
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import _pickle
from . import dtypes as dt
from .creation import _from_host
from .device import as_device, default_device
from .device import device as _device
from .tensor import Size, Tensor

FORMAT = "clgraph"
VERSION = 1
HEADER = "header.json"
_MAX_DEPTH = 200  # nesting deeper than this in a header is treated as tampering
_ALIGNMENT = 64  # storages start at multiples of this in the file (torch.load's mmap=True)


def _tensor_entry(i: int) -> str:
    return f"tensors/{i}.npy"


# --- allowlist for weights_only loading ----------------------------------------------------

_safe_globals: dict[Any, str] = {}  # object -> the name a checkpoint gives it


def _global_name(entry) -> tuple[Any, str]:
    if isinstance(entry, tuple):
        if len(entry) != 2:
            raise ValueError("Expected tuple of length 2 (global, str of callable full path), "
                             f"but got tuple of length: {len(entry)}")
        if type(entry[1]) is not str:
            raise TypeError("Expected second item in tuple to be str of callable full path, "
                            f"but got: {type(entry[1])}")
        return entry
    return entry, f"{entry.__module__}.{entry.__qualname__}"


def add_safe_globals(safe_globals: Iterable) -> None:
    """torch.serialization.add_safe_globals: allow these classes and functions when loading
    with ``weights_only=True``. An entry is the object, named by its ``__module__`` and
    ``__qualname__``, or ``(object, "module.name")`` for the name a file gives it."""
    for entry in safe_globals:
        obj, name = _global_name(entry)
        _safe_globals[obj] = name


def get_safe_globals() -> list:
    """torch.serialization.get_safe_globals: what ``add_safe_globals`` allowed."""
    return list(_safe_globals)


def clear_safe_globals() -> None:
    """torch.serialization.clear_safe_globals."""
    _safe_globals.clear()


@contextlib.contextmanager
def safe_globals(safe_globals: Iterable):
    """torch.serialization.safe_globals: ``add_safe_globals`` inside a ``with`` block only."""
    entries = [_global_name(e) for e in safe_globals]
    added = [obj for obj, _ in entries if obj not in _safe_globals]
    for obj, name in entries:
        _safe_globals.setdefault(obj, name)
    try:
        yield
    finally:
        for obj in added:
            _safe_globals.pop(obj, None)


# --- save ----------------------------------------------------------------------------------


def save(obj: Any, f, pickle_module=None, pickle_protocol: int = 2,
         _use_new_zipfile_serialization: bool = True,
         _disable_byteorder_record: bool = False) -> None:
    """torch.save, in PyTorch's zip format (see the module docstring): ``f`` is a path (str
    or os.PathLike) or a writable binary file object. Tensors are copied to the host, so this
    waits for their pending kernels; each is saved as on PyTorch's CPU ("cpu" location)."""
    storages = _pickle.Storages()
    buf = io.BytesIO()
    _pickle.Pickler(buf, storages, protocol=pickle_protocol).dump(obj)
    if isinstance(f, (str, os.PathLike)):
        name = os.path.basename(os.fspath(f))
        archive = name.rsplit(".", 1)[0] if "." in name else name
        with open(f, "wb") as fh:
            _write(fh, archive or "archive", buf.getvalue(), storages)
    else:
        _write(f, "archive", buf.getvalue(), storages)


def _aligned_info(zf: zipfile.ZipFile, name: str, zip64: bool) -> zipfile.ZipInfo:
    """An entry whose data starts at a multiple of _ALIGNMENT: padding in an extra field
    ("FB", as PyTorch's writer names it) after the 30-byte local header and the name."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    start = zf.fp.tell() + 30 + len(name.encode("utf-8")) + (20 if zip64 else 0)
    pad = -start % _ALIGNMENT
    if pad:
        pad += _ALIGNMENT if pad < 4 else 0
        info.extra = b"FB" + struct.pack("<H", pad - 4) + b"Z" * (pad - 4)
    return info


def _write(fh, archive: str, pkl: bytes, storages: _pickle.Storages) -> None:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
        def record(name: str, data) -> None:
            nbytes = memoryview(data).nbytes
            zip64 = nbytes > 2**31
            info = _aligned_info(zf, f"{archive}/{name}", zip64)
            with zf.open(info, "w", force_zip64=zip64) as out:
                out.write(data)

        record("data.pkl", pkl)
        record(".format_version", b"1")
        record(".storage_alignment", str(_ALIGNMENT).encode())
        record("byteorder", b"little")
        for ref in storages:
            record(f"data/{ref.key}", memoryview(ref.data()).cast("B"))
        record("version", b"3\n")
        record(".data/serialization_id", f"{secrets.randbelow(10**40):040d}".encode())


# --- load ----------------------------------------------------------------------------------


def _target_device(map_location, saved_at: str):
    """Where map_location sends a tensor saved at ``saved_at`` ("cpu", "cuda:0", "cl:0")."""
    m = map_location
    if m is None or (callable(m) and not isinstance(m, (str, _device))):
        return default_device()
    if isinstance(m, dict):
        target = m.get(saved_at)
        return as_device(target) if target is not None else default_device()
    return as_device(m)


def _place(map_location, host: np.ndarray, d: dt.dtype, saved_at: str) -> Tensor:
    """Host storage elements as a tensor where map_location says; a callable is called as
    ``fn(tensor, saved_at)`` and returns a tensor, a device or None (keep it)."""
    t = _from_host(host, d, _target_device(map_location, saved_at), storage=True)
    if callable(map_location) and not isinstance(map_location, (str, _device, dict)):
        moved = map_location(t, saved_at)
        if isinstance(moved, Tensor):
            if moved.shape != t.shape or moved.dtype is not d:
                raise RuntimeError(f"cg.load: map_location returned a {moved.dtype} tensor of "
                                   f"shape {list(moved.shape)} for a {d} storage of shape "
                                   f"{list(t.shape)}")
            t = moved
        elif moved is not None:
            t = t.to(as_device(moved))
    return t


# --- clgraph's earlier format -------------------------------------------------------------


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
        t = _place(self.map_location, arr, _DTYPES[dtype], meta.get("device", ""))
        if meta["parameter"]:
            cls = _pickle.parameter_class()
            if cls is not None:
                return cls(t, requires_grad=meta["requires_grad"])
        if meta["requires_grad"]:
            t.requires_grad_(True)
        return t


_DTYPES = {d.name: d for d in dt.ALL + dt.COMPLEX}


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




def _open_zip(f, fail: Callable[[str], RuntimeError]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(f, "r")
    except zipfile.BadZipFile as e:
        raise fail(f"not a checkpoint (not a zip archive, or truncated: {e})") from None
    except (EOFError, ValueError) as e:
        raise fail(f"not a checkpoint ({e})") from None


def _read(zf: zipfile.ZipFile, name: str, fail: Callable[[str], RuntimeError]) -> bytes:
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise fail(f"entry {name!r} is corrupted: {e}") from None


def _archive_of(names: list[str]) -> str | None:
    """The folder holding PyTorch's data.pkl (``archive/``), or None."""
    for n in names:
        if n.endswith("/data.pkl") and n.count("/") == 1:
            return n[: -len("data.pkl")]
    return None


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = True,
         mmap=None, **pickle_load_args) -> Any:
    """torch.load for files written by torch.save or cg.save (and by earlier clgraphs); ``f``
    is a path or a readable, seekable binary file object.

    ``weights_only`` (True unless False is given, as in PyTorch since 2.6): the file's pickle
    may only rebuild tensors, Parameters, containers, numbers, strings, Sizes, dtypes,
    devices and what ``add_safe_globals`` allows; anything else raises pickle.UnpicklingError
    and nothing from the file runs. ``weights_only=False`` unpickles anything (whole
    modules): only for trusted files. Names under ``torch.`` load as clgraph's.

    ``map_location``: None puts tensors on the default device (files are portable); a
    device or string puts them there; a dict maps the saved location ("cpu", "cuda:0") to a
    target (unlisted ones go to the default device); a callable is called as
    ``fn(storage, location)`` with each storage as a 1-D tensor on the default device and
    returns a tensor like it, a device, or None (keep it)."""
    where = os.fspath(f) if isinstance(f, (str, os.PathLike)) else type(f).__name__

    def fail(msg):
        return RuntimeError(f"cg.load: {where}: {msg}")

    with _open_zip(f, fail) as zf:
        names = zf.namelist()
        if HEADER in names:
            return _load_clgraph(zf, where, map_location, fail)
        archive = _archive_of(names)
        if archive is None:
            raise fail(f"not a checkpoint: the archive has no {HEADER} (clgraph) and no "
                       "<archive>/data.pkl (PyTorch)")
        return _load_torch(zf, archive, map_location, weights_only is not False, where, fail)


def _storage_reader(zf, archive: str, map_location, fail) -> Callable:
    """storage_for(key, dtype, location, numel) for the unpicklers: each data/<key> entry
    read and checked once."""
    names = set(zf.namelist())
    order = archive + "byteorder"
    byteorder = _read(zf, order, fail).decode("ascii", "replace") if order in names else "little"
    if byteorder not in ("little", "big"):
        raise fail(f"entry {order!r} says {byteorder!r:.40}; expected 'little' or 'big'")
    loaded: dict[str, _pickle.LoadedStorage] = {}

    def storage_for(key: str, d: dt.dtype, location: str, numel: int):
        s = loaded.get(key)
        if s is not None:
            return s
        name = f"{archive}data/{key}"
        if name not in names:
            raise _pickle.CheckpointError(f"missing entry {name!r} for storage {key!r:.40}")
        size = zf.getinfo(name).file_size
        if size != numel * d.itemsize:
            raise _pickle.CheckpointError(
                f"entry {name!r} holds {size} bytes but data.pkl says {numel} elements of {d} "
                f"({numel * d.itemsize} bytes)")

        def place(host, d2):
            return _place(map_location, host, d2, location)

        s = loaded[key] = _pickle.LoadedStorage(_read(zf, name, fail), d, place,
                                                big_endian=byteorder == "big")
        return s

    return storage_for


# what a damaged or hostile pickle raises while weights_only loading reads it
_MALFORMED = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
              AttributeError, struct.error, OverflowError, RecursionError, UnicodeError)


def _load_torch(zf, archive: str, map_location, weights_only: bool, where: str, fail):
    pkl = archive + "data.pkl"
    data = _read(zf, pkl, fail)
    storage_for = _storage_reader(zf, archive, map_location, fail)
    if weights_only:
        user = {name: obj for obj, name in _safe_globals.items()}
        unpickler = _pickle.WeightsOnlyUnpickler(io.BytesIO(data), storage_for, user)
        malformed = _MALFORMED
    else:
        unpickler = _pickle.FullUnpickler(io.BytesIO(data), storage_for)
        malformed = (pickle.UnpicklingError, EOFError)
    try:
        return unpickler.load()
    except _pickle.Refused as e:
        raise _pickle.Refused(
            f"Weights only load failed for {where}: {e} Loading with weights_only=False would "
            "likely succeed, but it can run arbitrary code from the file: do it only if you "
            "trust its source.") from None
    except _pickle.CheckpointError as e:
        raise fail(f"{pkl}: {e}") from None
    except malformed as e:
        raise fail(f"{pkl} is corrupted or not a checkpoint's pickle: {type(e).__name__}: "
                   f"{e}") from e


def _load_clgraph(zf, where: str, map_location, fail):
    """A file in clgraph's earlier format (header.json and .npy entries)."""
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


__all__ = ["add_safe_globals", "clear_safe_globals", "get_safe_globals", "load",
           "safe_globals", "save"]
