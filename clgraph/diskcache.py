"""Cache files that can never break a run: every file written through a temporary file
renamed into place; program binaries framed with their length and sha256; PoCL's own kernel
cache (POCL_CACHE_DIR, <cache>/pocl) checked once per process before PoCL starts, because
PoCL aborts the process on a truncated program.bc or kernel .so. Damaged entries are
deleted (and so rebuilt) with one RuntimeWarning per process. PoCL's cache is kept under
CLGRAPH_CACHE_MAX_MB (least recently used programs go first). Imports only the standard
library: the device layer calls prepare_pocl_cache() before it lists devices."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

_warn_lock = threading.Lock()
_warned = False  # the damaged-cache warning, given once per process


# --- files: written whole or not at all, read only when intact -----------------------------

_BIN_HEADER = struct.Struct("<8sQ32s")  # magic, length and sha256 of the binary after it
_BIN_MAGIC = b"CLGRAPH1"


def pack_binary(binary: bytes) -> bytes:
    return _BIN_HEADER.pack(_BIN_MAGIC, len(binary), hashlib.sha256(binary).digest()) + binary


def unpack_binary(data: bytes) -> bytes | None:
    """The binary in a .clbin file, or None when the file is truncated or damaged."""
    if len(data) < _BIN_HEADER.size:
        return None
    magic, length, digest = _BIN_HEADER.unpack_from(data)
    binary = data[_BIN_HEADER.size:]
    if magic != _BIN_MAGIC or length != len(binary) or hashlib.sha256(binary).digest() != digest:
        return None
    return binary


def write_atomic(path: Path, data: bytes) -> bool:
    """Write path through a temporary file renamed over it, so that readers see the old file
    or the whole new one. False, leaving nothing behind, when the directory cannot be
    written or the disk is full: a cache that cannot be written only costs rebuilds."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            unlink(tmp)
        return False


def unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _scandir(path) -> list:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


def warn_damaged(root: Path, count: int) -> None:
    """One RuntimeWarning per process, however much damage is found."""
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    warnings.warn(
        f"clgraph's kernel cache {root} held {count} damaged "
        f"{'entry' if count == 1 else 'entries'} (truncated or overwritten files); deleted "
        "and rebuilt", RuntimeWarning, stacklevel=2)


# --- PoCL's cache: checked before PoCL reads it --------------------------------------------

_MANIFEST = "pocl-manifest.json"
_STALE_S = 3600  # a temporary file this old belongs to a process that was killed
# PoCL 3.0 aborts the process when a kernel write hits a full disk ("LLVM ERROR: IO failure
# on output stream"); a program takes 50-150 KB there.
_MIN_FREE = 64 << 20
_pocl_dir: Path | None = None  # the PoCL cache this process checked; recorded at exit
_pocl_private: str | None = None  # a temporary POCL_CACHE_DIR, removed at exit
_pocl_owner = 0  # the process that made it (a forked child must not remove it)
_pocl_shared = True  # what PoCL builds outlives the process (.pocl markers are true)


def prepare_pocl_cache(root: Path | None) -> str | None:
    """The POCL_CACHE_DIR to hand PoCL before it starts: <root>/pocl, its programs that hold
    a damaged file deleted; or, when the cache is disabled or cannot be written, a private
    temporary directory removed at exit (PoCL 3.0 given a directory it cannot create finds no
    device, given a read-only one fails every build). None: PoCL's own default."""
    global _pocl_dir, _pocl_private, _pocl_owner, _pocl_shared
    pocl = root / "pocl" if root is not None else None
    if pocl is not None and _writable(pocl):
        _clean(root)
        if _check_pocl(pocl, drop=True):
            _pocl_dir = pocl
            return str(pocl)
    _pocl_shared = False
    try:
        _pocl_private = tempfile.mkdtemp(prefix="clgraph-pocl-")
    except OSError:
        return None
    _pocl_owner = os.getpid()
    return _pocl_private


def _writable(d: Path) -> bool:
    """Whether files can be made in d (created if missing), with room for kernels. Tried,
    not read from permission bits, which root ignores."""
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=d, prefix="tempfile_clgraph_")
        os.close(fd)
        os.unlink(probe)
        return shutil.disk_usage(d).free >= _MIN_FREE
    except OSError:
        return False


def _stale(entry: os.DirEntry, now: float) -> bool:
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime > _STALE_S
    except OSError:
        return False


# names clgraph gives files in the cache directory, which may hold others' files too
_MARKER = re.compile(r"[0-9a-f]{32}\.pocl")
_OLD_BINARY = re.compile(r"[0-9a-f]{32}\.bin")  # the format before .clbin
_TEMPORARY = re.compile(r"([0-9a-f]{32}|startup-[0-9a-f]{16}|pocl-manifest)\..*\.tmp")


def _clean(root: Path) -> None:
    """Delete the temporary files killed processes left in the cache directory, and binaries
    of the format before .clbin."""
    now = time.time()
    for e in _scandir(root):
        if _OLD_BINARY.fullmatch(e.name) or (_TEMPORARY.fullmatch(e.name) and _stale(e, now)):
            unlink(e.path)


def _pocl_files(pocl: Path):
    """(program directory, path, stat) of each file PoCL loads from its cache (the program's
    bitcode and its kernels' .so, pocl/XX/<hash>/...), paths relative to it; its build.log
    and last_accessed are text it appends to and a time stamp. Deletes on the way the
    temporary files of killed processes, and the empty tempfile_* PoCL 3.0 leaves at the top
    for every process."""
    now = time.time()
    for top in _scandir(pocl):
        if not top.is_dir(follow_symlinks=False):
            if top.name.startswith("tempfile_") and _stale(top, now):
                unlink(top.path)
            continue
        for prog in _scandir(top.path):
            if prog.is_dir(follow_symlinks=False):
                program = f"{top.name}/{prog.name}"
                yield from _files_under(prog.path, program, program, now)


def _files_under(path: str, rel: str, program: str, now: float):
    for e in _scandir(path):
        name = f"{rel}/{e.name}"
        if e.is_dir(follow_symlinks=False):
            yield from _files_under(e.path, name, program, now)
        elif e.name.endswith((".so", ".bc")):
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            yield program, name, st
        elif e.name.endswith(".temp") and _stale(e, now):  # program.bc_XXXXXX.temp
            unlink(e.path)


def _check_pocl(pocl: Path, drop: bool) -> bool:
    """Check PoCL's cache files against the manifest and record the intact new ones. With
    drop (at start, before PoCL runs), delete each program directory that holds a damaged
    file, with the warning; False when one could not be deleted. At exit, damage is left for
    the next start to find."""
    manifest = pocl.parent / _MANIFEST
    old = _read_manifest(manifest)
    if old is None and not drop:
        return True
    records, bad, sizes = {}, set(), {}
    for program, rel, st in _pocl_files(pocl):
        sizes[program] = sizes.get(program, 0) + st.st_size
        if old is None:  # the manifest itself is damaged: nothing on that disk is trusted
            bad.add(program)
            continue
        rec = old.get(rel)
        stat = [st.st_size, st.st_mtime_ns, st.st_ino]
        if rec is not None and rec[:3] == stat:
            records[rel] = rec
            continue
        try:
            data = (pocl / rel).read_bytes()
        except OSError:
            continue
        digest = hashlib.sha256(data).hexdigest()[:32]
        if rec is not None and rec[3] == digest:
            whole = True
        elif rec is not None and rec[2] == st.st_ino:
            whole = False  # changed in place: PoCL only renames whole new files in
        else:
            # new, or replaced by another process's build of the same program (its bitcode
            # differs from build to build)
            whole = _whole(rel, data)
        if whole:
            records[rel] = stat + [digest]
        else:
            bad.add(program)
    ok = True
    if drop and bad:
        for program in bad:
            shutil.rmtree(pocl / program, ignore_errors=True)
            ok = ok and not (pocl / program).exists()
        records = _forget(pocl, records, bad)
        warn_damaged(pocl.parent, len(bad))
    if drop:
        records = _evict(pocl, sizes, bad, records)
    if records != old:
        _save_manifest(manifest, pocl, records)
    return ok


def cache_limit() -> int:
    """Bytes PoCL's kernel cache may hold (CLGRAPH_CACHE_MAX_MB, default 1024)."""
    try:
        return max(0, int(float(os.environ.get("CLGRAPH_CACHE_MAX_MB", "1024")) * (1 << 20)))
    except ValueError:
        return 1 << 30


def _evict(pocl: Path, sizes: dict, bad: set, records: dict) -> dict:
    """At start, when PoCL's programs hold more than cache_limit() bytes: delete the least
    recently used ones (PoCL touches a program's last_accessed file when it loads it) down
    to three quarters of it, so that the cache, and the scan of it each process makes, stay
    bounded. The records left are returned (see _forget)."""
    total = sum(v for p, v in sizes.items() if p not in bad)
    limit = cache_limit()
    if total <= limit:
        return records
    used = []
    for program, size in sizes.items():
        if program in bad:
            continue
        try:
            when = os.stat(pocl / program / "last_accessed").st_mtime
        except OSError:
            when = 0.0
        used.append((when, program, size))
    gone = set()
    for _, program, size in sorted(used):
        if total <= limit * 3 // 4:
            break
        shutil.rmtree(pocl / program, ignore_errors=True)
        if not (pocl / program).exists():
            gone.add(program)
            total -= size
    return _forget(pocl, records, gone) if gone else records


def _forget(pocl: Path, records: dict, programs: set) -> dict:
    """The records left once ``programs`` were deleted; clgraph's markers go too (they would
    count the rebuilds as disk hits)."""
    for e in _scandir(pocl.parent):
        if _MARKER.fullmatch(e.name):
            unlink(e.path)
    return {r: v for r, v in records.items() if "/".join(r.split("/")[:2]) not in programs}


def _read_manifest(path: Path) -> dict | None:
    """The manifest's records: {} when there is none, None when it is damaged. It is the
    sha256 of its JSON, a newline, then the JSON."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    digest, _, body = data.partition(b"\n")
    try:
        if hashlib.sha256(body).hexdigest().encode() != digest:
            raise ValueError
        m = json.loads(body)
        files = m["files"] if m["version"] == 1 else {}
        return {rel: rec for rel, rec in files.items()
                if isinstance(rec, list) and len(rec) == 4 and isinstance(rec[3], str)
                and all(isinstance(v, int) for v in rec[:3])}
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _save_manifest(path: Path, pocl: Path, records: dict) -> None:
    """Write the manifest merged with the one on disk now: the entries other processes
    recorded for files this scan did not see stay while their files exist."""
    merged = dict(records)
    for rel, rec in (_read_manifest(path) or {}).items():
        if rel not in merged and (pocl / rel).exists():
            merged[rel] = rec
    body = json.dumps({"version": 1, "files": merged}).encode()
    write_atomic(path, hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


def _whole(name: str, data: bytes) -> bool:
    """Whether a PoCL cache file is structurally whole: a kernel .so an ELF file whose
    tables and sections lie inside it, program.bc bitcode whose top-level blocks end
    exactly at its end."""
    if name.endswith(".bc"):
        return _bitcode_whole(data)
    return _elf_whole(data) if sys.platform.startswith("linux") else len(data) > 0


def _elf_whole(data: bytes) -> bool:
    """An ELF file whose program and section headers, and what they describe, lie inside it
    (the linker writes the section headers last)."""
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    e = "<" if data[5] == 1 else ">"
    word, size = ("Q", 8) if data[4] == 2 else ("I", 4)  # ELF64 or ELF32
    try:
        phoff, shoff = struct.unpack_from(e + 2 * word, data, 24 + size)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(e + "4H", data, 30 + 3 * size)
        if shnum == 0 or shoff + shnum * shentsize > len(data) \
                or phoff + phnum * phentsize > len(data):
            return False
        for i in range(shnum):  # sh_type, then sh_offset and sh_size
            at = shoff + i * shentsize
            (sh_type,) = struct.unpack_from(e + "I", data, at + 4)
            offset, length = struct.unpack_from(e + 2 * word, data, at + 8 + 2 * size)
            if sh_type != 8 and offset + length > len(data):  # 8: SHT_NOBITS, no bytes in it
                return False
        for i in range(phnum):  # p_offset, p_filesz
            at = phoff + i * phentsize
            (offset,) = struct.unpack_from(e + word, data, at + size)
            (length,) = struct.unpack_from(e + word, data, at + 4 * size)
            if offset + length > len(data):
                return False
    except struct.error:
        return False
    return True


def _bitcode_whole(data: bytes) -> bool:
    """LLVM bitcode (in its wrapper or not) made of top-level blocks, among them the module
    (8) and its string table (23), the last ending at the end of the data."""
    if data[:4] == b"\xde\xc0\x17\x0b":  # wrapper: magic, version, offset, size, cputype
        if len(data) < 20:
            return False
        offset, size = struct.unpack_from("<II", data, 8)
        data = data[offset:offset + size] if offset + size <= len(data) else b""
    if data[:4] != b"BC\xc0\xde" or len(data) % 4:
        return False
    bits, end, pos, blocks = int.from_bytes(data, "little"), len(data) * 8, 32, set()

    def read(n):  # the next n bits, least significant first
        nonlocal pos
        pos += n
        return (bits >> (pos - n)) & ((1 << n) - 1)

    def vbr(n):
        value = shift = 0
        while True:
            chunk = read(n)
            value |= (chunk & ((1 << (n - 1)) - 1)) << shift
            shift += n - 1
            if not chunk >> (n - 1) or shift > 64:
                return value

    while pos < end:
        if read(2) != 1:  # the top level holds only ENTER_SUBBLOCK, abbreviation width 2
            return False
        blocks.add(vbr(8))
        vbr(4)
        pos = (pos + 31) // 32 * 32
        words = read(32)
        pos += words * 32
    return pos == end and {8, 23} <= blocks




def pocl_shared() -> bool:
    """Whether what PoCL builds outlives the process (its cache is <cache>/pocl)."""
    return _pocl_shared


def close_pocl_cache() -> None:
    """At exit, after the queues finished (PoCL compiles kernels into its cache at their
    first launch): record the new intact files; remove a private directory."""
    if _pocl_dir is not None:
        _check_pocl(_pocl_dir, drop=False)
    if _pocl_private is not None and os.getpid() == _pocl_owner:
        shutil.rmtree(_pocl_private, ignore_errors=True)


def pocl_cache_in_use() -> bool:
    return _pocl_dir is not None or _pocl_private is not None
