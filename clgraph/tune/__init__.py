"""Auto-tuning: the fastest correct parameters of a kernel family, per device and shape class.

A tunable kernel family (a ``Tunable``: ops/linalg.py declares the GEMM) says which
parameter sets are valid on a device for a shape class (tile sizes, work-group shape,
double buffering), how to build and launch one on a test problem of that class, and how
to check its result. The first time a device meets a shape class, ``params`` runs a
bounded search: candidates are built and run in the family's order (its default first),
each result is checked against a reference computed on the host, with the operands
surrounded by NaN guards so that a candidate reading out of bounds fails its check, and
the fastest candidate that passed wins. Results are kept in memory and on disk
(``tuning.json`` beside the kernel cache), keyed by device, driver version, family and
class, so later processes tune nothing.

CLGRAPH_TUNE: 0 uses the families' defaults; 1 searches for about CLGRAPH_TUNE_BUDGET
seconds (default 2) per family and class; 2 tries every candidate. Unset: 1 on GPUs, 0
on CPU devices (where the GPU kernels only run under CLGRAPH_KERNELS=gpu, for testing).
``python -m clgraph.tune`` tunes the common classes of a device ahead of time.
Imports the device layer and the kernel cache's disk helpers; never sees Tensor."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import diskcache, runtime
from ..device import DeviceInfo, all_devices, cache_root, default_device, device

_FILE = "tuning.json"


@dataclass(frozen=True)
class Tunable:
    """A kernel family the tuner can search.

    ``candidates(info, cls)``: valid parameter dicts on this device, the default first;
    ``setup(info, cls)``: a test problem of the class (buffers, the host reference);
    ``launcher(info, cls, params, problem)``: builds the candidate and returns a function
    that enqueues one run (raises when the candidate does not build or cannot run);
    ``check(info, problem)``: whether the last run's result matches the reference and
    left the guards intact; ``classes(info)``: the common classes ``python -m
    clgraph.tune`` tunes ahead of time."""

    name: str
    candidates: Callable[[DeviceInfo, str], list]
    setup: Callable[[DeviceInfo, str], Any]
    launcher: Callable[[DeviceInfo, str, dict, Any], Callable[[], None]]
    check: Callable[[DeviceInfo, Any], bool]
    classes: Callable[[DeviceInfo], list] = field(default=lambda info: [])


@dataclass
class Result:
    """What a search found: the winner, its time per run, and what was tried."""

    params: dict
    seconds: float | None
    tried: int = 0
    rejected: list = field(default_factory=list)  # (params, why)
    searched: bool = True


_memory: dict = {}  # (device key, family, class) -> Result
_disk: dict | None = None


def level(info: DeviceInfo) -> int:
    """How hard to search on this device (CLGRAPH_TUNE, see the module's docstring)."""
    v = os.environ.get("CLGRAPH_TUNE")
    if v is None or v == "":
        return 0 if info.type == "cpu" else 1
    if v not in ("0", "1", "2"):
        raise ValueError(f"CLGRAPH_TUNE must be 0, 1 or 2, got {v!r}")
    return int(v)


def budget() -> float:
    return float(os.environ.get("CLGRAPH_TUNE_BUDGET", "2"))


def device_key(info: DeviceInfo) -> str:
    d = info.cl_device
    return f"{info.name}|{d.driver_version.strip()}|{info.platform}"


def _path():
    root = cache_root()
    return None if root is None else root / _FILE


def _load_disk() -> dict:
    global _disk
    if _disk is None:
        _disk = {}
        path = _path()
        if path is not None and path.exists():
            try:
                _disk = json.loads(path.read_text())
            except (OSError, ValueError):
                _disk = {}  # a damaged file only costs a search
    return _disk


def _save(key: str, res: Result) -> None:
    disk = _load_disk()
    disk[key] = {"params": res.params, "seconds": res.seconds, "tried": res.tried,
                 "rejected": len(res.rejected)}
    path = _path()
    if path is not None:
        # merge with what other processes wrote meanwhile
        try:
            on_disk = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            on_disk = {}
        on_disk.update({key: disk[key]})
        diskcache.write_atomic(path, json.dumps(on_disk, indent=1, sort_keys=True).encode())


def params(fam: Tunable, info: DeviceInfo, cls: str) -> dict:
    """The parameters to use for ``fam`` on ``info`` for shape class ``cls``: a kept
    result, else (tuning on) the result of a search now, else the family's default."""
    mkey = (info.index, fam.name, cls)
    res = _memory.get(mkey)
    if res is not None:
        return res.params
    key = f"{device_key(info)}|{fam.name}|{cls}"
    lvl = level(info)
    kept = _load_disk().get(key) if lvl > 0 else None
    if kept is not None:
        res = Result(dict(kept["params"]), kept.get("seconds"), kept.get("tried", 0),
                     searched=False)
    elif lvl > 0:
        res = search(fam, info, cls, exhaustive=lvl == 2)
        _save(key, res)
    else:
        res = Result(fam.candidates(info, cls)[0], None, 0, searched=False)
    _memory[mkey] = res
    return res.params


def search(fam: Tunable, info: DeviceInfo, cls: str, exhaustive: bool = False,
           seconds: float | None = None, progress: Callable | None = None) -> Result:
    """Time ``fam``'s candidates for ``cls`` on ``info`` (within ``seconds``, CLGRAPH_TUNE_BUDGET
    by default, unless ``exhaustive``) and return the fastest that passed its check. The
    default (the first candidate) is always tried."""
    cands = fam.candidates(info, cls)
    problem = fam.setup(info, cls)
    deadline = time.perf_counter() + (budget() if seconds is None else seconds)
    best: Result | None = None
    rejected: list = []
    tried = 0
    for n, cand in enumerate(cands):
        if n and not exhaustive and time.perf_counter() > deadline:
            break
        tried += 1
        if progress is not None:
            progress(n, len(cands))
        t, why = _trial(fam, info, cls, cand, problem)
        if why is not None:
            rejected.append((cand, why))
        elif best is None or t < best.seconds:
            best = Result(dict(cand), t)
    if best is None:
        warnings.warn(f"clgraph.tune: no candidate of {fam.name} passed its check for {cls} on "
                      f"{info.name}; using the default", RuntimeWarning, stacklevel=3)
        best = Result(dict(cands[0]), None)
    best.tried, best.rejected = tried, rejected
    return best


def _trial(fam, info, cls, cand, problem) -> tuple[float | None, str | None]:
    """(seconds per run, None) for a candidate that builds and passes its check, else
    (None, why not)."""
    try:
        go = fam.launcher(info, cls, cand, problem)
        go()
        runtime.finish(info)
    except Exception as e:  # noqa: BLE001  a candidate that fails to build or launch
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if not fam.check(info, problem):
        return None, "wrong result"
    reps, elapsed = 0, 0.0
    start = time.perf_counter()
    while reps < 3 or (elapsed < 0.02 and reps < 50):
        go()
        runtime.finish(info)
        reps += 1
        elapsed = time.perf_counter() - start
    return elapsed / reps, None


def results(info: DeviceInfo | None = None) -> list[dict]:
    """What is known (kept on disk or searched in this process), one dict per (device,
    family, class): its parameters and time per run."""
    out = {}
    for key, v in _load_disk().items():
        dev, drv, _, fam, cls = key.split("|")
        out[key] = {"device": dev, "driver": drv, "family": fam, "class": cls,
                    "params": v["params"], "seconds": v.get("seconds"), "source": "disk"}
    for (index, fam, cls), res in _memory.items():
        dinfo = all_devices()[index]
        key = f"{device_key(dinfo)}|{fam}|{cls}"
        out[key] = {"device": dinfo.name, "driver": dinfo.cl_device.driver_version.strip(),
                    "family": fam, "class": cls, "params": res.params,
                    "seconds": res.seconds,
                    "source": "searched" if res.searched else out.get(key, {}).get(
                        "source", "default")}
    rows = list(out.values())
    if info is not None:
        rows = [r for r in rows if r["device"] == info.name]
    return rows


FAMILIES: dict[str, Tunable] = {}


def register(fam: Tunable) -> Tunable:
    FAMILIES[fam.name] = fam
    return fam


def _bar(label: str):
    def show(n, total):
        width = 30
        done = int(width * (n + 1) / max(total, 1))
        sys.stderr.write(f"\r{label:<40} [{'#' * done}{'.' * (width - done)}] "
                         f"{n + 1}/{total}")
        sys.stderr.flush()

    return show


def main(argv=None) -> int:
    """``python -m clgraph.tune [--device cl:N] [--exhaustive] [--seconds S]``: tune the
    common classes of every family (registered when clgraph is imported) on a device and
    keep the results."""
    ap = argparse.ArgumentParser(prog="python -m clgraph.tune")
    ap.add_argument("--device", default=None)
    ap.add_argument("--exhaustive", action="store_true")
    ap.add_argument("--seconds", type=float, default=None,
                    help="search budget per class (default CLGRAPH_TUNE_BUDGET or 2)")
    ap.add_argument("--only", action="append", default=None, metavar="PREFIX",
                    help="tune only the classes starting with PREFIX (repeatable), e.g. "
                         "float16:4096")
    args = ap.parse_args(argv)
    info = device(args.device).info if args.device else default_device().info
    print(f"tuning on {info.name} ({device_key(info)})")
    for fam in FAMILIES.values():
        for cls in fam.classes(info):
            if args.only and not any(cls.startswith(o) for o in args.only):
                continue
            res = search(fam, info, cls, args.exhaustive, args.seconds,
                         _bar(f"{fam.name} {cls}"))
            key = f"{device_key(info)}|{fam.name}|{cls}"
            _save(key, res)
            _memory[(info.index, fam.name, cls)] = res
            t = "-" if res.seconds is None else f"{res.seconds * 1e3:.3f} ms"
            sys.stderr.write("\r" + " " * 100 + "\r")  # the progress bar's line
            print(f"{fam.name} {cls:<28} {t:>12}  {res.params}  ({res.tried} tried, "
                  f"{len(res.rejected)} rejected)", flush=True)
    return 0

