"""The on-disk kernel cache: damaged files, processes filling it at once, directories that
cannot be written; compiler logs. Each case runs fresh processes on a cache under
tmp_path, doing real ops checked against numpy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from clgraph import diskcache

# random numbers, an elementwise chain into a reduction, a matmul
RUN = textwrap.dedent("""
    import numpy as np
    import clgraph as cg
    x, a, b = cg.randn(64), cg.randn(8, 8), cg.randn(8, 8)
    s = x.exp().sum().item()
    np.testing.assert_allclose(s, np.exp(x.numpy().astype(np.float64)).sum(), rtol=1e-5)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy(), rtol=1e-5, atol=1e-5)
    print("ok")
""")
DAMAGED = "damaged entr"  # in the warning about a damaged cache, the one warning allowed


def _env(cache_dir, **extra) -> dict:
    env = dict(os.environ)
    for k in ("POCL_CACHE_DIR", "CLGRAPH_DEBUG", "PYTHONWARNINGS"):
        env.pop(k, None)
    return dict(env, CLGRAPH_CACHE_DIR=str(cache_dir), **extra)


def _check(r: subprocess.CompletedProcess, warnings: int = 0) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert r.stdout.split()[-1:] == ["ok"], r.stdout
    assert r.stderr.count(DAMAGED) == warnings, r.stderr
    assert r.stderr.count("Warning: ") == warnings, r.stderr  # nor any other
    return r


def run(cache_dir, code: str = RUN, warnings: int = 0, **env) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-c", code], env=_env(cache_dir, **env),
                       capture_output=True, text=True, timeout=300, check=False)
    return _check(r, warnings)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _damage(root: Path, how: str) -> int:
    """Damage the cache's files in place; how many PoCL program directories it touched."""
    rng = np.random.default_rng(0)
    for p in _files(root):
        size = p.stat().st_size
        if how == "truncate":
            os.truncate(p, size // 2)
        elif how == "random":
            with open(p, "r+b") as f:
                f.write(rng.bytes(size))
        elif how == "middle" and p.suffix in (".so", ".bc"):  # headers and sizes intact
            with open(p, "r+b") as f:
                f.seek(size // 2)
                flipped = bytes(b ^ 0xFF for b in f.read(64))
                f.seek(size // 2)
                f.write(flipped)
    return len(list(root.glob("pocl/*/*")))


@pytest.mark.parametrize("how", ["truncate", "random", "middle"])
def test_damaged_cache_is_dropped_once_and_rebuilt(tmp_path, how):
    """Without the check PoCL aborts the process on the second run (SIGABRT: 'still have
    references to IRs')."""
    run(tmp_path)
    if how == "truncate":  # caught even where the manifest is lost
        _assert_cuts_fail(tmp_path)
    assert _damage(tmp_path, how) > 0
    r = run(tmp_path, warnings=1)
    assert str(tmp_path) in r.stderr
    run(tmp_path)


def _assert_cuts_fail(root: Path) -> None:
    found = {".so": 0, ".bc": 0}
    for p in root.glob("pocl/*/*/**/*"):
        if p.suffix in found:
            found[p.suffix] += 1
            data = p.read_bytes()
            assert diskcache._whole(p.name, data), p
            for cut in np.linspace(0, len(data) - 1, 40).astype(int):
                assert not diskcache._whole(p.name, data[:cut]), (p, cut, len(data))
    assert found[".so"] > 0 and found[".bc"] > 0


def test_binaries_are_verified(tmp_path):
    """Drivers other than PoCL load <digest>.clbin with clCreateProgramWithBinary; forced
    here on PoCL."""
    code = "from clgraph.codegen import cache\ncache._pocl = lambda dev: False\n" + RUN
    run(tmp_path, code)
    binaries = list(tmp_path.glob("*.clbin"))
    assert binaries
    for p in binaries:
        os.truncate(p, p.stat().st_size // 2)
    run(tmp_path, code, warnings=1)
    run(tmp_path, code)
    blob = os.urandom(1000)
    packed = diskcache.pack_binary(blob)
    assert diskcache.unpack_binary(packed) == blob
    assert diskcache.unpack_binary(packed[:-1]) is None
    assert diskcache.unpack_binary(packed[:-1] + b"x") is None
    assert diskcache.unpack_binary(b"") is None


def test_two_processes_fill_one_cache(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", RUN], env=_env(tmp_path), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        _check(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    counted = RUN.replace('print("ok")', 'print(cg.codegen.stats["builds"], "ok")')
    assert run(tmp_path, counted).stdout.split()[-2] == "0"  # all from the disk


def test_cache_dir_under_a_file(tmp_path):
    """mkdir fails with ENOTDIR: PoCL 3.0 given that POCL_CACHE_DIR finds no device."""
    (tmp_path / "file").write_text("")
    (tmp_path / "tmp").mkdir()
    run(tmp_path / "file" / "cache", TMPDIR=str(tmp_path / "tmp"))
    assert not list((tmp_path / "tmp").iterdir())  # the private PoCL cache is gone


# Root ignores permission bits: a child running as root gives up the capabilities that
# let it write anywhere (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), keeping its uid
# so that it still reads the interpreter and the checkout.
DROP_PRIVILEGES = textwrap.dedent("""
    import ctypes, os, sys
    if os.geteuid() == 0:
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        class Data(ctypes.Structure):
            _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]
        libc = ctypes.CDLL(None, use_errno=True)
        header, data = Header(0x20080522, 0), (Data * 2)()
        if libc.capget(ctypes.byref(header), data) != 0:
            print("skip: capget failed"); sys.exit()
        for f in ("effective", "permitted", "inheritable"):
            setattr(data[0], f, getattr(data[0], f) & ~0b1110)
        if libc.capset(ctypes.byref(header), data) != 0:
            print("skip: capset failed"); sys.exit()
    try:
        open(os.path.join(os.environ["CLGRAPH_CACHE_DIR"], "probe"), "w")
        print("skip: the cache directory is still writable"); sys.exit()
    except OSError:
        pass
""")


def test_read_only_cache_dir(tmp_path):
    """PoCL 3.0 fails every build in a read-only POCL_CACHE_DIR, even one holding them."""
    if not sys.platform.startswith("linux"):
        pytest.skip("dropping capabilities needs Linux")
    run(tmp_path)
    modes = {p: p.stat().st_mode for p in [tmp_path, *tmp_path.rglob("*")]}
    for p, mode in modes.items():
        p.chmod(mode & ~0o222)
    try:
        r = subprocess.run([sys.executable, "-c", DROP_PRIVILEGES + RUN], env=_env(tmp_path),
                           capture_output=True, text=True, timeout=300, check=False)
        if r.stdout.startswith("skip:"):
            pytest.skip(r.stdout.strip())
        _check(r)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_full_disk(tmp_path):
    """PoCL 3.0 aborts the process when a kernel write finds the disk full ('LLVM ERROR: IO
    failure on output stream')."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("mounting a small tmpfs needs root and unshare")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size=1m tmpfs {mnt} || {{ echo skip; exit 0; }}; "
              f"head -c 1000000 /dev/zero > {mnt}/fill 2>/dev/null; exec \"$0\" -c \"$1\"")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, sys.executable, RUN],
                       env=_env(mnt / "cache"), capture_output=True, text=True, timeout=300,
                       check=False)
    if r.stdout.strip() == "skip":
        pytest.skip("cannot mount a tmpfs here")
    _check(r)


BROKEN = "__kernel void broken(__global float* a) { a[0] = undeclared_name; }"


def test_failed_build_carries_the_compiler_log(tmp_path):
    code = textwrap.dedent(f"""
        import clgraph as cg
        from clgraph.codegen import KernelBuildError, cache
        try:
            cache.build(cg.get_default_device().info, {BROKEN!r}, (), "broken")
        except KernelBuildError as e:
            print(str(e).split("--- compiler log ---")[1])
        print("ok")
    """)
    r = run(tmp_path, code)
    assert "undeclared_name" in r.stdout, r.stdout


# '#warning' makes a successful build write a log, as NVIDIA's driver does for every
# program of several kernels; pyopencl's Program.build would turn it into a CompilerWarning
WARNS = '#warning "a log line"\n__kernel void noisy(__global float* a) { a[0] = 2; }'


def test_successful_build_emits_no_warning(tmp_path):
    code = textwrap.dedent(f"""
        import warnings
        import clgraph as cg
        from clgraph.codegen import cache
        warnings.simplefilter("error")
        cache.build(cg.get_default_device().info, {WARNS!r}, (), "noisy")
    """) + RUN
    run(tmp_path, code)
    code = code[:code.index(RUN)] + "print('ok')\n"
    r = run(tmp_path / "debug", code, CLGRAPH_DEBUG="1")
    assert "compiler log for noisy" in r.stderr and "a log line" in r.stderr, r.stderr


def test_startup_list_with_repeated_programs_does_not_hang(tmp_path):
    """The list of programs a script's previous run built first may name one twice (runs
    sharing it): the warm-up thread loads it once and every build waiting on it wakes."""
    script = tmp_path / "twice.py"
    script.write_text("import clgraph as cg\n"
                      "from clgraph import codegen\n"
                      "x = cg.ones(8)\n"
                      "print(float((x * 2 + 1).exp().sum()), float(x.softmax(0).sum()))\n"
                      "print(codegen.stats['warm_up'] > 0)\n")
    env = dict(os.environ, CLGRAPH_CACHE_DIR=str(tmp_path / "cache"))
    first = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                           text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    (startup,) = (tmp_path / "cache").glob("startup-*.json")
    entries = json.loads(startup.read_text())
    assert len(entries) > 1
    startup.write_text(json.dumps(entries[:1] + entries))  # the first one twice
    again = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                           text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split("\n")[0] == first.stdout.split("\n")[0]
    assert again.stdout.split("\n")[1] == "True"  # the warm-up thread loaded them
    assert "Traceback" not in again.stderr, again.stderr  # and did not die on the repeat


def test_pocl_cache_is_bounded(tmp_path, monkeypatch):
    """Over CLGRAPH_CACHE_MAX_MB, the least recently used PoCL programs (their last_accessed
    stamp) go at start, down to three quarters of the limit; the rest, and their records,
    stay; markers go. A run over a full cache rebuilds what it lost and is right."""
    pocl = tmp_path / "pocl"
    sizes, records = {}, {}
    for i in range(10):
        prog = pocl / "AB" / f"PROGRAM{i}"
        prog.mkdir(parents=True)
        (prog / "program.bc").write_bytes(b"x" * 100_000)
        (prog / "last_accessed").touch()
        os.utime(prog / "last_accessed", (1_000_000 + i, 1_000_000 + i))  # 0 the oldest
        sizes[f"AB/PROGRAM{i}"] = 100_000
        records[f"AB/PROGRAM{i}/program.bc"] = [100_000, 0, 0, "digest"]
    (tmp_path / ("0" * 32 + ".pocl")).touch()
    monkeypatch.setenv("CLGRAPH_CACHE_MAX_MB", str(500_000 / (1 << 20)))  # 5 programs
    kept = diskcache._evict(pocl, sizes, set(), records)
    left = sorted(p.name for p in (pocl / "AB").iterdir())
    assert left == [f"PROGRAM{i}" for i in range(7, 10)]  # 300 kB <= 3/4 of 500 kB
    assert sorted(kept) == [f"AB/PROGRAM{i}/program.bc" for i in range(7, 10)]
    assert not list(tmp_path.glob("*.pocl"))
    monkeypatch.setenv("CLGRAPH_CACHE_MAX_MB", "10")
    assert diskcache._evict(pocl, {"AB/PROGRAM9": 100_000}, set(), kept) is kept


def test_run_with_a_tiny_cache_limit(tmp_path):
    run(tmp_path)
    assert list(tmp_path.glob("pocl/*/*"))
    run(tmp_path, CLGRAPH_CACHE_MAX_MB="0.001")  # everything evicted at start, rebuilt
    run(tmp_path, CLGRAPH_CACHE_MAX_MB="0.001")
