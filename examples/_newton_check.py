"""The end of the Newton examples: did the iteration converge, and to the reference's answer?"""

from __future__ import annotations

import numpy as np


def converged(history: list, w: np.ndarray, w_ref: np.ndarray, how: str, gtol: float,
              max_iter: int, rtol: float) -> bool:
    """Prints whether the last gradient norm is below ``gtol`` and ``w`` is within ``rtol``
    (relative to its largest entry) of ``w_ref``, found by ``how``; returns whether both hold."""
    iterations, _, gnorm = history[-1]
    ok = gnorm < gtol
    if not ok:
        print(f"FAIL: no convergence to |grad| < {gtol:g} in {max_iter} iterations")
    err = float(np.max(np.abs(w - w_ref)) / np.max(np.abs(w_ref)))
    print(f"converged in {iterations} iterations; max relative difference to {how}: {err:.2e}")
    if err > rtol:
        print("FAIL: the Newton solution differs from the reference")
        ok = False
    return ok
