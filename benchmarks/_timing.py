"""Timing helpers shared by the benchmarks: medians of round-robin repeats, ratio tables.

Every system of one table is timed in the same rounds (round-robin), so a noisy moment on the
shared machine hits all of them alike; the figures are medians over rounds.
"""

from __future__ import annotations

import gc
import importlib.util
import statistics
import time
from typing import Callable


def calibrate(fn: Callable[[], object], min_time: float) -> int:
    """Loop count such that one sample of ``fn`` lasts at least ``min_time`` seconds."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= 1 << 24:
            return n
        n = max(n * 2, int(n * min_time / max(dt, 1e-9) * 1.2))


def bench(fns: dict[str, Callable[[], object]], repeats: int = 7, min_time: float = 0.1,
          warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    loops = {k: calibrate(f, min_time) for k, f in fns.items()}
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            n = loops[k]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            samples[k].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) for k, v in samples.items()}


class GCTimer:
    """Seconds Python's cyclic garbage collector ran while the context was open."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._t0 = 0.0

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t0

    def __enter__(self) -> GCTimer:
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._cb)


def time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_of(fn: Callable[[], object], repeats: int = 5) -> float:
    return statistics.median(time_once(fn) for _ in range(repeats))


def fmt_time(sec: float) -> str:
    if sec < 1e-6:
        return f"{sec * 1e9:.3g} ns"
    if sec < 1e-3:
        return f"{sec * 1e6:.3g} µs"
    if sec < 1:
        return f"{sec * 1e3:.3g} ms"
    return f"{sec:.3g} s"


def fmt_ratio(r: float) -> str:
    return f"{r:.2f}x"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def have(module: str) -> bool:
    """Whether an optional peer (jax, torch, pytensor, casadi, ...) is installed."""
    return importlib.util.find_spec(module) is not None


def skipped(peers: list[str]) -> str:
    missing = [p for p in peers if not have(p)]
    if not missing:
        return ""
    return f"_Not installed, so not measured: {', '.join(missing)} (`pip install -e .[bench]`)._"
