"""``sympy``, imported on first use.

Importing sympy takes about 0.3 s and adds some 35,000 objects that every full pass of
Python's garbage collector then scans (about 10 ms each on the benchmark machine), yet
deriving and compiling never need it: only the sympy forms of ops (``sg.to_sympy``,
``sg.simplify``) do.
"""

from __future__ import annotations

from typing import Any


class _LazyModule:
    """A stand-in for a module: the first attribute read imports it; each name read is kept."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        from .graph import import_module  # (with the collector on: see there)

        value = getattr(import_module(self._name), attr)
        setattr(self, attr, value)
        return value

    def __repr__(self) -> str:
        return f"<lazily imported module {self._name!r}>"


sympy: Any = _LazyModule("sympy")
