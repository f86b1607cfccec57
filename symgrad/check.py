"""``sg.check_grad``: symgrad's first and second derivatives against central finite differences.

Like PyTensor's ``verify_grad`` and JAX's ``check_grads``: the symbolic Jacobian of ``f`` is
compared with central differences of ``f``, and the symbolic second derivatives with central
differences of the symbolic first derivatives (compiled once each).
"""

from __future__ import annotations

import math

import numpy as np

from .autodiff import hessian, jacobian
from .compile import compile
from .expr import Expr, unguard
from .graph import as_list, variables
from .shapes import fmt_shape


def _values(f: Expr, ws: list[Expr], at: dict) -> tuple[list[Expr], dict]:
    if not isinstance(at, dict):
        raise TypeError("check_grad: 'at' must be a dict from variables (or their names) to "
                        "values")
    ins = variables([f])
    for w in ws:
        if all(w is not v for v in ins):
            ins.append(w)
    by_name: dict[str, Expr] = {}
    for v in ins:  # (named here, not by the compile below)
        nm = v.attrs["vname"]
        if nm in by_name:
            raise ValueError(f"check_grad: two different variables are named {nm} (shapes "
                             f"{fmt_shape(by_name[nm].shape)} and {fmt_shape(v.shape)})")
        by_name[nm] = v
    vals: dict[int, object] = {}
    for k, val in at.items():
        k = unguard(k)
        if isinstance(k, str):
            if k not in by_name:
                continue  # like sg.evaluate, values of other variables are ignored
            k = by_name[k]
        if not isinstance(k, Expr) or k.op.name != "var":
            raise ValueError(f"check_grad: the keys of 'at' must be variables, got {k!r}")
        if all(k is not v for v in ins):
            continue
        try:
            kind = np.asarray(val).dtype.kind if not isinstance(val, (str, bytes)) else "S"
            if kind in "SUV" or kind == "O" and any(
                    e is None or isinstance(e, (str, bytes)) for e in np.asarray(val).flat):
                # (np.array("0.3", dtype=float) parses it, and None or [1, None] became nan:
                # evaluate refuses both; Decimals, Fractions and big ints are numbers)
                raise TypeError
            arr = np.array(val, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"check_grad: the value of {k.attrs['vname']} is not a number or "
                             f"an array of numbers: {val!r:.60}") from None
        except OverflowError:
            raise ValueError(f"check_grad: the value of {k.attrs['vname']} holds a number too "
                             "large for a float (at most about 1.8e308)") from None
        if arr.ndim != k.ndim or any(isinstance(d, int) and d != s
                                     for d, s in zip(k.shape, arr.shape)):
            raise ValueError(f"check_grad: the value of {k.attrs['vname']} has shape "
                             f"{fmt_shape(arr.shape)}, the variable {fmt_shape(k.shape)}")
        vals[id(k)] = float(arr) if arr.ndim == 0 else arr
    for v in ins:
        if id(v) not in vals:
            raise ValueError(f"check_grad: no value given for {v.attrs['vname']} "
                             f"{fmt_shape(v.shape)}")
    return ins, vals


def _indices(shape) -> list[tuple]:
    return list(np.ndindex(*shape)) if shape else [()]


def _fmt_idx(idx: tuple) -> str:
    return f"[{', '.join(str(i) for i in idx)}]" if idx else ""


def _entry(fn, args: list, pos: int, idx: tuple, k: int | None):
    """(x, v -> the output (output ``k`` of a list) with entry ``idx`` of argument ``pos`` set
    to ``v``, as a float array), where x is that entry's value."""
    x = args[pos]

    def at(v):
        a = list(args)
        if idx:
            arr = np.array(x, dtype=float)
            arr[idx] = v
            a[pos] = arr
        else:
            a[pos] = v
        with np.errstate(all="ignore"):  # (a step onto a pole or out of the domain is the
            out = fn(*a)  # check's business, not a warning of the user's: sqrt' at 0)
        return np.asarray(out if k is None else out[k], dtype=float)

    return (float(np.asarray(x)[idx]) if idx else float(x)), at


def _fd(fn, args: list, pos: int, idx: tuple, eps: float, k: int | None = None):
    """(central difference of output ``k`` of ``fn`` wrt entry ``idx`` of argument ``pos``,
    the size of its rounding noise: the values' own rounding over the step)."""
    xi, at = _entry(fn, args, pos, idx, k)
    h = eps * max(1.0, abs(xi))
    hi, lo = at(xi + h), at(xi - h)
    noise = _NOISE * np.maximum(np.abs(hi), np.abs(lo)) / h
    return (hi - lo) / (2.0 * h), noise


def _not_smooth(args: list, eps: float, fn, pos: int, idx: tuple, k: int | None,
                out: tuple) -> str:
    """Why the finite differences of entry ``out`` cannot be trusted at this point, or "".

    At a kink (``relu`` at 0) the one-sided differences disagree, whatever the step; where
    the function differentiated jumps (the second derivative of ``abs`` at 0) or its
    derivative does (``v * abs(v)`` at 0), the central difference changes with the step: it
    has not converged, and no step gives the derivative. Either way the point is the problem.
    """
    xi, at = _entry(fn, args, pos, idx, k)
    h = eps * max(1.0, abs(xi))
    mid, hi, lo, hi8, lo8 = (float(at(v)[out]) for v in
                             (xi, xi + h, xi - h, xi + h / 8, xi - h / 8))
    noise = _NOISE * max(abs(mid), abs(hi), abs(lo)) / (h / 8)  # the smaller step's rounding
    right, left = (hi - mid) / h, (mid - lo) / h
    right8, left8 = (hi8 - mid) / (h / 8), (mid - lo8) / (h / 8)
    wide, narrow = (hi - lo) / (2 * h), (hi8 - lo8) / (h / 4)
    if math.isfinite(mid) and not all(map(math.isfinite, (hi, lo, hi8, lo8))):
        return (f"; a step of {h / 8:.3g} or {h:.3g} from this point leaves where f is finite "
                f"(f is nan or infinite there): check with a smaller eps, or at another point")
    if not all(map(math.isfinite, (right, left, right8, left8, narrow))):
        return ""
    gap = abs(right - left)
    if gap > max(noise, 0.1 * max(abs(right), abs(left))) and \
            abs(right8 - right) + abs(left8 - left) < 0.1 * gap:  # a smooth minimum's shrink
        return (f"; the one-sided differences disagree here ({left:.6g} from the left, "
                f"{right:.6g} from the right): not differentiable at this point (a kink?); "
                f"check at another point")
    if abs(narrow - wide) > max(noise, 0.5 * max(abs(wide), abs(narrow))):
        return (f"; the finite difference changes with the step ({wide:.6g} at step {h:.3g}, "
                f"{narrow:.6g} at step {h / 8:.3g}): it has not converged, as where the "
                f"function or its derivative is not smooth; check at another point")
    return ""


_NOISE = np.finfo(float).eps  # a margin over the rounding of the two values (a wider one hid
# a wrong derivative of 1e8 + f; where the rounding is larger, the closer look sees it)


def _agrees_on_a_closer_look(s: float, args: list, eps: float, tol: float, fn, pos: int,
                             idx: tuple, k: int | None, out: tuple) -> bool:
    """Whether the symbolic ``s`` is the derivative after all, where the first difference
    said not: central differences at steps 4h, 2h and h, extrapolated twice (Richardson:
    their h^2 errors cancel: the derivative of x^4 at 0 is 0, not the 4e-12 of the step), the
    gap between the two extrapolations bounding what they leave, within the rounding noise
    the function shows near the point (see _rounding; e^x - 1 - x is 1e-13 at 1e-6, but
    computed from values near 1: the difference's noise is 1e-10, not the 1e-23 its value
    suggests), half a step to either side, the smaller: a jump at the point is no noise.
    Where that fails, the same at steps 16 and 256 times smaller (the step ``eps`` is absolute
    below |x| = 1: sqrt at 2e-6, or a kink 3e-7 away, vary on a smaller scale), where the
    rounding noise is larger: there it must be below tol, and excuses no more. A step that
    does not converge (a kink, a jump at the point) keeps the entry an error."""
    xi, at = _entry(fn, args, pos, idx, k)
    h0 = eps * max(1.0, abs(xi))

    def f(v):
        return float(at(v)[out])

    seen: dict[float, tuple | None] = {}

    def level(h):
        """(|s - r2|, the extrapolations' spread, rounding noise, tol's scale) at step h, or
        None where it cannot tell (each step computed once: h/16 confirms h, then is tried)."""
        if h not in seen:
            seen[h] = _level(h)
        return seen[h]

    def _level(h):
        with np.errstate(all="ignore"):  # (inf - inf out of the domain)
            d1, d2, d4 = ((f(xi + t) - f(xi - t)) / (2.0 * t) for t in (4 * h, 2 * h, h))
            (j1, s1), (j2, s2) = (_rounding(f, xi + side, h, d4) for side in (h / 2, -h / 2))
        r1, r2 = (4.0 * d2 - d1) / 3.0, (4.0 * d4 - d2) / 3.0
        left = abs(r1 - r2)  # (r2's own error is below this gap where the steps converge)
        noise = max(min(j1, j2), s1, s2) / h
        if not all(map(math.isfinite, (d1, r1, r2, noise))):
            return None  # (a step out of the domain: sqrt at 2e-6 and 4h = 4e-6)
        if abs(d2 - d4) > abs(d1 - d2) + noise:  # growing as the step shrinks: no derivative
            return None  # (the second derivative of abs at 0: 1/h; or a kink within 4h)
        return abs(s - r2), 2.0 * left, noise, tol * max(abs(s), abs(r2))

    for h in (h0, h0 / 16.0, h0 / 256.0):
        got = level(h)
        if got is None:
            continue
        gap, spread, noise, scale = got
        if h < h0 and spread + noise > scale:
            continue  # a smaller step's rounding is larger: it may not excuse more than tol
        if gap > spread + noise + scale:  # (1e8 + tanh(x) with tanh' 9 % off passed)
            continue
        if gap > noise + scale:
            # excused by the spread of extrapolations that may not have converged (a pole
            # within 4h, a step as wide as sin's period at 1e6: x**-2 twice off and sin' half
            # passed): a right derivative's gap shrinks at a step 16 times smaller, a wrong
            # one's stays
            nxt = level(h / 16.0)
            if nxt is None or nxt[0] > 0.5 * gap + nxt[1] + nxt[2]:
                continue
        return True
    return False


def _rounding(f, at: float, h: float, slope: float) -> tuple[float, float]:
    """(jitter, step): the rounding ``f`` shows at 8 unevenly spaced points from ``at``.
    jitter: its third divided differences (times 6 spacing^3, Δ³ for even steps), where a
    smooth function's own are nil (evenly spaced, rounding can advance by the same amount
    at each point and hide); step: that of a staircase the values show (a large value
    cancelled: softplus(-z) computed as softplus(z) - z), where they stay put between some
    points: at least the smallest move they make, or, never moving, what ``slope`` covers."""
    ts = [at + h / 256.0 * (j + 0.37 * j * j) for j in range(8)]
    ys = [f(t) for t in ts]
    moves = [abs(ys[j + 1] - ys[j]) for j in range(7)]
    step = 0.0
    if 0.0 in moves:
        step = min(m for m in moves if m) if any(moves) else (ts[-1] - ts[0]) * abs(slope)
    jitter = 0.0
    for j in range(5):
        t4, dd = ts[j:j + 4], ys[j:j + 4]
        for order in range(1, 4):
            dd = [(dd[m + 1] - dd[m]) / (t4[m + order] - t4[m]) for m in range(4 - order)]
        sp = (t4[3] - t4[0]) / 3.0  # (sp**3 raised OverflowError at |x| = 1e120; * is inf)
        jitter = max(jitter, abs(dd[0]) * 6.0 * sp * sp * sp)
    return jitter, step


def _rel(s, n, noise) -> np.ndarray:
    """``|s - n| / max(|s|, |n|)``, where the difference and the values stand out of the
    finite difference's rounding noise (a true zero next to 1e-11 of noise is no error)."""
    s, n = np.asarray(s, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.abs(s - n) / np.maximum(np.maximum(np.abs(s), np.abs(n)), noise)
    # (an infinite noise excuses nothing: a step onto a pole, log at 0, made it inf, and any
    # derivative passed with an error of 0)
    err = np.where((np.abs(s - n) <= noise) & np.isfinite(noise), 0.0, err)
    return np.where(np.isfinite(err), err, np.inf)


def check_grad(f: Expr, wrt, at: dict, *, order: int = 2, eps: float = 1e-6,
               tol: float = 1e-5) -> float:
    """The largest relative error of symgrad's derivatives of ``f`` against finite differences.

    ``wrt`` is a variable or a list of them; ``at`` maps every variable of ``f`` (the variable
    or its name) to a value (other entries are ignored). ``order=2`` (default) checks the first
    derivatives (the Jacobian, ``sg.grad`` for a scalar ``f``) and the second
    (``sg.hessian``), ``order=1`` the first only.
    The error of an entry is ``|s - n| / max(|s|, |n|)`` (symbolic ``s``, numeric ``n``;
    central differences with step ``eps * max(1, |x|)``), a relative error at every scale: a
    derivative of 1e-9 that is twice its true value is an error of 0.5 (the measure
    ``max(1, |s|, |n|)`` let every derivative below ``tol`` pass). A difference within the
    finite differences' own rounding noise counts as none, and an entry above ``tol`` gets a
    closer look (differences at two and four times the step, extrapolated to step 0, against
    the rounding noise the function shows near the point; then at steps 16 and 256 times
    smaller, where that noise must stay below ``tol``) before it counts. Raises
    ``AssertionError`` naming the worst entry when the largest error is above ``tol``.
    """
    if not isinstance(f, Expr):
        raise TypeError(f"check_grad: f must be an expression, got {type(f).__name__}")
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)) or \
            order not in (1, 2):
        raise ValueError(f"check_grad: order must be 1 or 2, got {order!r}")
    for what, val in (("eps", eps), ("tol", tol)):  # eps=0 divided by zero, eps='a' in numpy
        if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, float, np.integer,
                                                                     np.floating)):
            raise TypeError(f"check_grad: {what} must be a number, got {type(val).__name__}")
        if not (math.isfinite(val) and val > 0):
            raise ValueError(f"check_grad: {what} must be a finite number > 0, got {val!r}")
    ws, _ = as_list(wrt, "check_grad")
    ws = [unguard(w) for w in ws]  # (a guarded variable is that variable: see ops.Guard)
    if not ws:
        raise ValueError("check_grad: wrt is empty: no derivatives to check")
    for w in ws:
        if w.op.name != "var":
            raise ValueError(f"check_grad: can only check derivatives with respect to "
                             f"variables, got {w}")
    ins, vals = _values(f, ws, at)
    args = [vals[id(v)] for v in ins]
    pos = {id(v): i for i, v in enumerate(ins)}
    fname = f.name or "f"
    worst: tuple = (0.0, "", None)

    def note(err, s, n, what_of, fd):
        nonlocal worst
        err = np.array(err, dtype=float)
        if err.size == 0:
            return
        for k in zip(*np.nonzero(err > tol)) if err.ndim else [()] if err > tol else []:
            sv = float(np.asarray(s)[k] if np.ndim(s) else s)
            if _agrees_on_a_closer_look(sv, args, eps, tol, *fd, k):
                err[k] = 0.0
        k = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        e = float(err[k]) if err.ndim else float(err)
        if e > worst[0] or not worst[1]:
            sv = np.asarray(s)[k] if np.ndim(s) else s
            nv = np.asarray(n)[k] if np.ndim(n) else n
            worst = (e, f"{what_of(k)} = {float(sv):.10g} (symgrad) vs {float(nv):.10g} "
                        f"(finite differences)", fd + (tuple(k),))

    jac = jacobian(f, ws)
    f_fn = compile(f, ins)
    jac_vals = compile(jac, ins)(*args)
    fdim = f.ndim
    for w, jv in zip(ws, jac_vals):
        wname = w.attrs["vname"]
        for idx in _indices(np.shape(vals[id(w)])):
            num, noise = _fd(f_fn, args, pos[id(w)], idx, eps)
            sym = np.asarray(jv)[(...,) + idx] if idx else np.asarray(jv)
            note(_rel(sym, num, noise), sym, num,
                 lambda k, idx=idx, wname=wname:
                 f"d{fname}{_fmt_idx(k[:fdim])}/d{wname}{_fmt_idx(idx)}",
                 (f_fn, pos[id(w)], idx, None))
    if order == 2:
        j_fn = compile(jac, ins)
        # a scalar f: sg.hessian itself (edge pushing for scalars, symmetric blocks mirrored),
        # which the jacobian of the jacobian would not check
        blocks = hessian(f, ws) if f.shape == () else [jacobian(g, ws) for g in jac]
        for i, wi in enumerate(ws):
            hess = compile(list(blocks[i]), ins)(*args)
            for wj, hv in zip(ws, hess):
                for idx in _indices(np.shape(vals[id(wj)])):
                    num, noise = _fd(j_fn, args, pos[id(wj)], idx, eps, k=i)
                    sym = np.asarray(hv)[(...,) + idx] if idx else np.asarray(hv)
                    names = (fname, wi.attrs["vname"], wj.attrs["vname"])
                    note(_rel(sym, num, noise), sym, num,
                         lambda k, idx=idx, names=names, wi=wi:
                         f"d2{names[0]}{_fmt_idx(k[:fdim])}/d{names[1]}"
                         f"{_fmt_idx(k[fdim:fdim + wi.ndim])} d{names[2]}{_fmt_idx(idx)}",
                         (j_fn, pos[id(wj)], idx, i))
    err, where, fd = worst
    if err > tol:
        hint = _not_smooth(args, eps, *fd)
        raise AssertionError(f"check_grad: {where}: relative error {err:.3g} > tol {tol:g}"
                             f"{hint}")
    return err
