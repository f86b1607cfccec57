"""The peer systems symgrad is measured against: setup, fresh-process runs, small helpers.

Every peer is optional: a workload asks ``have(name)`` and adds a row for the peer only when it
is installed (``pip install -e .[bench]``), with a note naming the ones it skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

from benchmarks._timing import have

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DONE: set[str] = set()


def setup_jax():
    """jax with float64 enabled (the workloads are float64 unless they say otherwise)."""
    import jax

    if "jax" not in _DONE:
        jax.config.update("jax_enable_x64", True)
        _DONE.add("jax")
    return jax


def setup_pytensor():
    """pytensor with a private compile cache, so its compile times do not depend on old runs."""
    if "pytensor" not in _DONE:
        d = tempfile.mkdtemp(prefix="symgrad_bench_pytensor_")
        os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={d}"
        warnings.filterwarnings("ignore", module="pytensor")
        _DONE.add("pytensor")
    import pytensor

    return pytensor


def close(a, b, rtol: float) -> bool:
    """Whether two results (sequences of numbers or arrays) agree to ``rtol``."""
    a = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in as_floats(a)])
    b = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in as_floats(b)])
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=rtol * 1e-3))


def as_floats(out) -> list:
    """Any peer's result (tuples, tensors, device arrays, casadi DM) as numpy arrays."""
    if hasattr(out, "full"):  # casadi DM
        return [np.array(out.full(), dtype=float).ravel()]
    if isinstance(out, (list, tuple)):
        return [np.asarray(o.detach().numpy() if hasattr(o, "detach") else
                           (o.full() if hasattr(o, "full") else o), dtype=float) for o in out]
    return [np.asarray(out, dtype=float)]


def run_child(module: str, func: str, *args, timeout: float = 120.0) -> dict:
    """Run ``benchmarks.<module>.<func>(*args)`` in a fresh interpreter; its last printed line
    is a JSON object, returned here (``{"error": ...}`` when it failed or timed out)."""
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); import json; "
            f"from benchmarks.{module} import {func} as f; "
            f"print(json.dumps(f(*{list(args)!r})))")
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    return json.loads(lines[-1])


__all__ = ["have", "setup_jax", "setup_pytensor", "close", "as_floats", "run_child", "ROOT"]
