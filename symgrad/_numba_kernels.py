"""The numba source of one loop group, and the on-disk module the kernels load from (for
:mod:`symgrad.fused`).

Each kernel exists in two forms: a serial loop, and a loop over chunks of the first axis run in
parallel (``numba.prange``). Kernel modules are written to a file named by their hash in
:func:`cache_dir` and compiled with numba's ``cache=True``, so another process loads them.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import importlib.util
import math
import os
import stat
import sys
import tempfile
import threading
import warnings
import weakref

from ._loop_groups import Group
from .expr import Expr


def literal(v) -> str | None:
    if isinstance(v, float) and math.isfinite(v):
        return repr(v)
    return None


class Kernel:
    """The numba source of one group's loop, and what the driver passes in and gets out."""

    def __init__(self, name: str, grp: Group, needed: set, gen):
        self.name = name
        self.grp = grp
        self.shape = grp.shape
        r = len(self.shape)
        member_ids = {id(m) for m in grp.members}
        self.inputs: list[Expr] = []  # external operands, in order
        self.outputs = [m for m in grp.members if id(m) in needed]
        local: dict[int, str] = {}
        loads: list[str] = []
        body: list[str] = []

        arg_of: dict[int, str] = {}  # id(external operand) -> its kernel parameter

        def operand(a: Expr, axes: tuple | None = None) -> str:
            """The kernel's name for ``a``; ``axes``: the loop axes that index it (default:
            numpy broadcasting, aligned on the last axes)."""
            if id(a) in member_ids:
                return local[id(a)]
            if axes is None:
                axes = tuple(range(r - a.ndim, r))
            key = (id(a), axes)
            if key in local:
                return local[key]
            if a.op.name == "const" and a.ndim == 0:
                lit = literal(a.attrs["value"])
                if lit is not None:
                    return lit
            nm = arg_of.get(id(a))
            if nm is None:
                nm = arg_of[id(a)] = f"a{len(self.inputs)}"
                self.inputs.append(a)
            if a.ndim:
                idx = ["0" if d == 1 and self.shape[ax] != 1 else f"_i{ax}"
                       for d, ax in zip(a.shape, axes)]
                local[key] = f"x{len(loads)}"
                loads.append(f"x{len(loads)} = {nm}[{', '.join(idx)}]")
            else:
                local[key] = nm
            return local[key]

        for j, m in enumerate(grp.members):
            if m.op.name == "outer":  # a[i] * b[j]
                args = [operand(m.args[0], (0,)), operand(m.args[1], (1,))]
            else:
                args = [operand(a) for a in m.args]
            src = args[0] if m.op.name == "broadcast_to" else m.op.kernel(args, m, gen)
            body.append(f"v{j} = {src}")
            local[id(m)] = f"v{j}"
        full = ", ".join(f"_i{k}" for k in range(r))
        for k, o in enumerate(self.outputs):
            body.append(f"o{k}[{full}] = {local[id(o)]}")
        # sums: a local accumulator when the summed axes are the innermost ones
        self.sums = []
        pre: dict[int, list[str]] = {}
        post: dict[int, list[str]] = {}
        for k, s in enumerate(grp.sums):
            axes, keep = s.attrs["axis"], s.attrs["keepdims"]
            val = local[id(s.args[0])]
            chunked = 0 in axes
            kept = [f"_i{ax}" if ax not in axes else "0" for ax in range(r)
                    if keep or ax not in axes]
            idx = (["_c"] if chunked else []) + kept
            target = f"r{k}[{', '.join(idx)}]"
            p = min(axes)
            inner = tuple(axes) == tuple(range(p, r))
            if inner:  # a float64 local; each entry of r{k} is written once, at the end
                pre.setdefault(p, []).append(f"s{k} = 0.0")
                body.append(f"s{k} += {val}")
                post.setdefault(p, []).append(f"{target} = s{k}")
            else:  # r{k} itself accumulates: the driver gives it float64
                body.append(f"{target} += {val}")
            self.sums.append((s, chunked, inner))
        self.loads = loads
        self.body = body
        self.pre, self.post = pre, post

    def source(self, parallel: bool) -> str:
        r = len(self.shape)
        params = ["_nc"] + [f"_n{k}" for k in range(r)]
        params += [f"a{k}" for k in range(len(self.inputs))]
        params += [f"o{k}" for k in range(len(self.outputs))]
        params += [f"r{k}" for k in range(len(self.sums))]
        fname = self.name + ("_p" if parallel else "_s")
        lines = [f"def {fname}({', '.join(params)}):"]
        loop = "_prange" if parallel else "range"
        lines.append(f"    for _c in {loop}(_nc):")
        lines.append("        _lo = (_c * _n0) // _nc")
        lines.append("        _hi = ((_c + 1) * _n0) // _nc")
        ind = "        "
        for depth in range(r):
            for ln in self.pre.get(depth, []):
                lines.append(ind + ln)
            rng = "range(_lo, _hi)" if depth == 0 else f"range(_n{depth})"
            lines.append(f"{ind}for _i{depth} in {rng}:")
            ind += "    "
        for ln in self.loads + self.body:
            lines.append(ind + ln)
        for depth in reversed(range(r)):
            ind = ind[:-4]
            for ln in self.post.get(depth, []):
                lines.append(ind + ln)
        return "\n".join(lines) + "\n"


# Kernels reassociate (so that their sums vectorise) and contract to FMA; they keep IEEE inf
# and NaN semantics. Their exp is symgrad.fused_math.exp, compiled without fastmath.
HEADER = '''"""symgrad fused kernels (generated; safe to delete)."""
import numba as _nb

import symgrad.fused_math as _m

_prange = _nb.prange
_max, _min, _abs, _float = max, min, abs, float
_FM = {"reassoc", "contract"}
_S = dict(cache=True, nogil=True, error_model="numpy", fastmath=_FM)
_P = dict(cache=True, nogil=True, error_model="numpy", fastmath=_FM, parallel=True)
'''


def cache_dir() -> str:
    """Where generated kernel modules (and numba's cache of them) are kept."""
    d = os.environ.get("SYMGRAD_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        d = os.path.join(base, "symgrad")
    return os.path.join(d, "numba")


@functools.cache
def _fused_math_digest() -> str:
    """A hash of :mod:`symgrad.fused_math`'s source. numba's cache of a kernel module checks
    that module's file only, not the functions it inlines from fused_math: the hash in each
    module's source names a new file (and cache) when fused_math changes."""
    spec = importlib.util.find_spec("symgrad.fused_math")
    with open(spec.origin, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:20]


def load_module(source: str):
    """Import ``source`` from a file named by its hash (written atomically; rewritten where
    the file there holds anything else, say a truncated or edited copy)."""
    source = f"# fused_math {_fused_math_digest()}\n{source}"
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"symgrad_kernels_{digest}"
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    path = None
    for where in (cache_dir, _user_temp_dir, _process_temp_dir):
        try:
            d = where()
            if d is None:
                continue
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, name + ".py")
            if not _holds(path, source):
                fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(source)
                os.replace(tmp, path)
            break
        except OSError:
            path = None
    if path is None:
        raise OSError("backend 'numba': no writable cache directory (set SYMGRAD_CACHE_DIR)")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # (njit compiles on first call: nothing imports it meanwhile)
    _guard_caches(mod)
    _guard_caches(sys.modules.get("symgrad.fused_math"))  # (its exp compiles inside kernels)
    with _LOCK:  # in sys.modules once whole (a thread took a half-run one: no k0_s), and
        # numba reads its cache back by importing the module's name; a thread that made it
        # first wins
        return sys.modules.setdefault(name, mod)


def _user_temp_dir() -> str | None:
    """The current user's folder in the temp dir for kernel modules (where
    :func:`cache_dir` cannot be written), or None where that path is not a folder of this
    user's that only they can write: numba unpickles the cache files it keeps there."""
    try:
        user = str(os.getuid())
    except AttributeError:
        try:
            user = getpass.getuser()
        except Exception:  # (no user name: OSError, or ImportError before Python 3.13)
            return None
    d = os.path.join(tempfile.gettempdir(), f"symgrad-numba-{user}")
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(d)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):  # a symlink, or a file
        return None
    # (no uids on Windows, whose temp dir is the user's own)
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        return None
    return d


_PROCESS_TEMP: list[str] = []
_PROCESS_TEMP_LOCK = threading.Lock()


def _process_temp_dir() -> str:
    """A private folder of this process's own, made once (where :func:`_user_temp_dir` is
    refused)."""
    with _PROCESS_TEMP_LOCK:
        if not _PROCESS_TEMP:
            _PROCESS_TEMP.append(tempfile.mkdtemp(prefix="symgrad-numba-"))
        return _PROCESS_TEMP[0]


def _guard_caches(mod) -> None:
    """Have each ``cache=True`` numba function in ``mod`` take a cache file it cannot read
    back (truncated, garbage) for a miss: it compiles again, and numba writes the file anew.
    (At load time: the calls of a compiled function do not go through numba's cache.)"""
    if mod is None:
        return
    from numba.core.caching import IndexDataCacheFile
    from numba.core.dispatcher import Dispatcher

    for f in list(vars(mod).values()):
        if isinstance(f, Dispatcher):
            cf = getattr(f._cache, "_cache_file", None)
            if type(cf) is IndexDataCacheFile:  # (not done yet)
                cf.__class__ = _safe_cache_file()


@functools.cache
def _safe_cache_file() -> type:
    """numba's IndexDataCacheFile, reading a file it cannot unpickle as no entry (its save
    reads the index too: the damaged file goes, and what it saves next replaces it)."""
    from numba.core.caching import IndexDataCacheFile

    class SafeIndexDataCacheFile(IndexDataCacheFile):
        def _load_index(self):
            try:
                overloads = super()._load_index()
                if isinstance(overloads, dict):
                    return overloads
                err: Exception = TypeError(f"an index of {type(overloads).__name__}")
            except OSError:
                raise
            except Exception as e:  # (unpickling garbage raises about anything)
                err = e
            _discard(self._index_path, err)
            return {}

        def _load_data(self, name):
            try:
                return super()._load_data(name)
            except OSError:
                raise
            except Exception as e:
                _discard(self._data_path(name), e)
                return None  # (load returns it: a miss)

    return SafeIndexDataCacheFile


def _discard(path: str, err: Exception) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
    warnings.warn(f"symgrad: numba's cache file {path} could not be read "
                  f"({type(err).__name__}: {err}); removed it, compiling again",
                  RuntimeWarning, stacklevel=2)


def _holds(path: str, source: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == source
    except (OSError, UnicodeDecodeError):
        return False


# module name -> how many live compiled functions use it. A kernel module stays in sys.modules
# while one does, and leaves it (to be collected) after the last: a constant's value is part
# of the source, so a loop that changes one (a temperature, a weight) made a module per step,
# all kept for good
_USERS: dict[str, int] = {}
_LOCK = threading.RLock()  # (re-entrant: a collection may run _release while hold() has it)


def hold(mod, owner) -> None:
    """Keep ``mod`` (from :func:`load_module`) importable while ``owner`` lives."""
    name = mod.__name__
    with _LOCK:
        _USERS[name] = _USERS.get(name, 0) + 1
        sys.modules.setdefault(name, mod)  # (its last user may have just let it go)
    weakref.finalize(owner, _release, name)


def _release(name: str) -> None:
    with _LOCK:
        left = _USERS.get(name, 0) - 1
        if left > 0:
            _USERS[name] = left
            return
        _USERS.pop(name, None)
        sys.modules.pop(name, None)
