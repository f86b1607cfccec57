"""Run every benchmark and print one markdown report: ``python -m benchmarks`` or
``python benchmarks/run.py`` (``--quick`` for a smoke run, ``--only w1,w3`` to choose).

Each workload module ``benchmarks/wN_*.py`` (and ``scale.py``) has ``main(quick) -> str``. A
module that sets ``DEFAULT = False`` (``instructions.py``: minutes under valgrind) runs only when
``--only`` names it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def workloads() -> list[str]:
    import benchmarks

    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)]
    return sorted(n for n in names if not n.startswith("_") and n not in ("run",))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--only", default="", help="comma-separated prefixes, e.g. w1,w3")
    a = ap.parse_args(argv)
    only = [s for s in a.only.split(",") if s]
    for name in workloads():
        if only and not any(name.startswith(p) for p in only):
            continue
        mod = importlib.import_module(f"benchmarks.{name}")
        if not hasattr(mod, "main") or (not only and not getattr(mod, "DEFAULT", True)):
            continue
        print(mod.main(quick=a.quick), flush=True)
        print()


if __name__ == "__main__":
    main()
