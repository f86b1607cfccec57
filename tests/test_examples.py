"""Every example runs, checks itself and exits 0 (each exits non-zero on a mismatch)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SLOW = {"distributed_gradient.py"}  # needs dask and minutes: run by hand (see its docstring)


def _examples():
    return sorted(p.name for p in EXAMPLES.glob("*.py")
                  if not p.name.startswith("_") and p.name not in SLOW)


@pytest.mark.parametrize("name", _examples())
def test_example_runs_and_checks_itself(name):
    env = dict(os.environ, PYTHONWARNINGS="error::RuntimeWarning")
    r = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True,
                       timeout=300, env=env, cwd=EXAMPLES.parent)
    assert r.returncode == 0, f"{name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "OK" in r.stdout
