"""backend="numba": a damaged numba cache file is a cache miss, and the fallback kernel folder
(where $SYMGRAD_CACHE_DIR cannot be written) is private to the user."""

from __future__ import annotations

import getpass
import glob
import math
import os
import random
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

pytest.importorskip("numba")

from symgrad import _numba_kernels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# three kernels (one per constant) and what they give
SCRIPT = """
import numpy as np, symgrad as sg
v = sg.vector("v", 3)
hits = 0
for c in (1.5, 2.5, 3.5):
    fn = sg.compile(sg.sum(sg.exp(v * c)), [v], backend="numba")
    print(repr(float(fn(np.arange(3.0)))))
    hits += sum(sum(k.stats.cache_hits.values()) for k in fn.kernels)
print("hits", hits)
"""
EXPECTED = [sum(math.exp(i * c) for i in range(3)) for c in (1.5, 2.5, 3.5)]


def _run(tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYMGRAD_CACHE_DIR": str(tmp_path / "sg"),
           "NUMBA_CACHE_DIR": str(tmp_path / "nb")}
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)


def _values(r: subprocess.CompletedProcess) -> tuple[list[str], int]:
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.split()
    return lines[:3], int(lines[-1])


def test_damaged_cache_files_are_a_miss(tmp_path: Path) -> None:
    vals, _ = _values(_run(tmp_path))
    assert [float(v) for v in vals] == pytest.approx(EXPECTED, rel=1e-14)
    kernels = sorted(glob.glob(str(tmp_path / "nb/**/symgrad_kernels_*.nbi"), recursive=True))
    math_index = glob.glob(str(tmp_path / "nb/**/fused_math.exp-*.nbi"), recursive=True)
    assert len(kernels) == 3 and len(math_index) == 1
    data = Path(kernels[2][:-len(".nbi")] + ".1.nbc")
    damaged = {  # a truncated index, one of random bytes, a truncated data file, and the
        # index of fused_math.exp (read where a kernel compiles again)
        Path(kernels[0]): Path(kernels[0]).read_bytes()[:20],
        Path(kernels[1]): random.Random(0).randbytes(512),
        data: data.read_bytes()[:100],
        Path(math_index[0]): Path(math_index[0]).read_bytes()[:20],
    }
    for p, b in damaged.items():
        p.write_bytes(b)

    r = _run(tmp_path)
    again, _ = _values(r)
    assert again == vals
    for p in damaged:  # each named in a warning
        assert str(p) in r.stderr
    # the damaged files were written again: the next process loads every kernel from them
    after, hits = _values(_run(tmp_path))
    assert after == vals and hits == 3


def _unwritable_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """$SYMGRAD_CACHE_DIR under a plain file (not writable, even for root), and the temp
    folder in ``tmp_path``; returns that temp folder."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "file" / "cache"))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(temp))
    # the fixed folder the fallback used to be, made first (world-writable) by someone else
    (temp / "symgrad-numba").mkdir()
    os.chmod(temp / "symgrad-numba", 0o777)
    return temp


def _load_folder() -> Path:
    """The folder load_module puts a (new, trivial) module in."""
    source = f"X = {uuid.uuid4().int}\n"
    mod = _numba_kernels.load_module(source)
    try:
        assert mod.X == int(source.split()[-1])
        return Path(mod.__file__).parent
    finally:
        sys.modules.pop(mod.__name__, None)


def _assert_private(d: Path) -> None:
    st = os.lstat(d)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
    assert stat.S_IMODE(st.st_mode) & 0o077 == 0


def _user() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else getpass.getuser()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_fallback_folder_is_per_user_and_private(monkeypatch, tmp_path) -> None:
    temp = _unwritable_cache(monkeypatch, tmp_path)
    d = _load_folder()
    assert d == temp / f"symgrad-numba-{_user()}"
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    _assert_private(d)
    assert _load_folder() == d  # and used again


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
@pytest.mark.parametrize("kind", ["world-writable", "group-writable", "other owner", "symlink"])
def test_unsafe_fallback_folder_is_not_used(monkeypatch, tmp_path, kind: str) -> None:
    temp = _unwritable_cache(monkeypatch, tmp_path)
    shared = temp / f"symgrad-numba-{_user()}"
    if kind == "symlink":
        target = tmp_path / "elsewhere"
        target.mkdir(mode=0o700)
        shared.symlink_to(target)
    else:
        shared.mkdir()
        os.chmod(shared, {"world-writable": 0o777, "group-writable": 0o770}.get(kind, 0o700))
        if kind == "other owner":
            if os.geteuid() != 0:
                pytest.skip("giving a folder to another user needs root")
            os.chown(shared, os.getuid() + 4242, -1)
    d = _load_folder()
    assert d not in (shared, temp / "symgrad-numba")
    assert not d.resolve().is_relative_to(shared.resolve())
    _assert_private(d)
