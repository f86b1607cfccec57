"""The fused CPU backend, ``sg.compile(..., backend="numba")``.

numpy evaluates an elementwise chain one node at a time, each a pass over memory with a
temporary array. Here the graph's elementwise nodes are gathered into groups of one loop shape
(with the sums over them), and each group becomes one numba loop: every element goes through the
whole chain in registers, sums accumulate as they go, and only the values that other nodes need
are written out. Matrix products, reshapes and the other ops stay numpy calls in a plain Python
driver, which also checks the input shapes as ``sg.compile`` does.

Each kernel exists in two forms: a serial loop, and a loop over chunks of the first axis run in
parallel (``numba.prange``) for large arrays. Kernels are written to a file in a cache
directory (``$SYMGRAD_CACHE_DIR/numba``, by default ``~/.cache/symgrad/numba``) and compiled
with ``cache=True``, so another process loads them instead of compiling again.

dtypes: results have the numpy backend's dtype. Once per call, the driver works out the dtype
``_dt`` of every array the kernels write: ``np.result_type`` of the inputs the graph uses that
carry a dtype (arrays, numpy scalars, 0-d arrays; Python numbers are weak), float64 unless that
is float32 (integer and bool inputs give float64, never an integer buffer that truncates;
numba has no float16, so float16 inputs are converted to that dtype first). Array
inputs reach the kernels as they are (numba compiles each kernel once per argument types), the
kernels compute in float64 and round each stored value to ``_dt``; sums accumulate in float64
and are cast to ``_dt`` at the end. Scalar nodes computed from scalars alone are Python numbers
(``math``), as in the numpy backend, so that they do not promote a float32 batch; where Python
math raises, a driver with numpy forms throughout runs instead. One dtype per call, from the
inputs alone: an output computed from float32 inputs alone is float64 when another input of the
graph is float64, and a float64 constant array read in a loop does not promote the loop's values
(numpy would give float32, and float64).

A graph of scalars called with arrays for some inputs (one value per sample) runs as one loop
over the broadcast samples, each output in the dtype of the inputs it depends on (same rule;
float32 and float64 arrays go in as they are, others as float64); called with Python numbers, it
runs the numpy backend's ``math`` code.

The loop groups are planned in :mod:`symgrad._loop_groups`, their kernels written and loaded by
:mod:`symgrad._numba_kernels`; this module compiles a graph with them and writes the driver.
"""

from __future__ import annotations

import builtins
import math
from typing import Any, Callable

import numpy as np

from . import runtime
from ._emit import hosted_code, number_nodes, returned, scalar_math_nodes
from ._loop_groups import Group, LoopPlan
from ._numba_kernels import HEADER, Kernel, hold, literal, load_module
from ._per_sample import samples_shape
from .backends import _require
from .compile import (
    _FREE,
    _check_inputs,
    _closure_params,
    _closure_values,
    _diagnose_for,
    _Gen,
    _input_checks,
    strong_scalar_lines,
)
from .compile import compile as _compile_numpy
from .expr import Expr, checks_of
from .graph import as_list, topo_order
from .rewrite import stabilize

PARALLEL_MIN = 1 << 18  # elements in a loop from which its parallel form is used (below, a
# thread launch costs more than it saves, and much more on a busy machine)


# ------------------------------------------------------------------ driver
def _units(order: list[Expr], groups: dict[int, Group], fused: set) -> list:
    """Nodes and fused groups in an order where each comes after everything it uses
    (deterministic, so that the same graph gives the same kernel source in every process)."""
    pos = {id(n): i for i, n in enumerate(order)}
    unit_of: dict[int, int] = {}  # id(node) -> unit key (position of the unit's first node)
    for gid in fused:
        grp = groups[gid]
        key = min(pos[id(n)] for n in grp.members + grp.sums)
        for n in grp.members + grp.sums:
            unit_of[id(n)] = key
    deps: dict[int, set] = {}
    what: dict[int, Any] = {}
    for n in order:
        u = unit_of.get(id(n), pos[id(n)])
        what.setdefault(u, n)
        d = deps.setdefault(u, set())
        for a in n.args:
            ua = unit_of.get(id(a), pos[id(a)])
            if ua != u:
                d.add(ua)
    group_at = {unit_of[id(groups[g].members[0])]: groups[g] for g in fused}
    units: list = []
    done: set = set()
    for start in sorted(deps):
        if start in done:
            continue
        done.add(start)
        stack = [(start, iter(sorted(deps[start])))]
        while stack:
            u, it = stack[-1]
            for v in it:
                if v not in done:
                    done.add(v)
                    stack.append((v, iter(sorted(deps[v]))))
                    break
            else:
                stack.pop()
                units.append(group_at.get(u, what[u]))
    return units


def compile_fused(outputs, inputs) -> Callable:
    """Like ``sg.compile``, with the elementwise chains fused into numba loops."""
    _require("numba", "numba")
    import numba

    outs, single = as_list(outputs, "compile")
    if not outs:
        raise ValueError("compile: no outputs given")
    ins, _ = _check_inputs(outs, inputs, "compile")
    outs = stabilize(outs)
    order = topo_order(outs)
    if all(n.ndim == 0 for n in order):
        return _compile_scalar_graph(outs, ins, single, order)
    plan = LoopPlan(order)
    groups = plan.groups(order)
    out_ids = {id(o) for o in outs}
    # a group is worth a loop when it does more than one numpy call would
    fused = {gid for gid, g in groups.items() if len(g.members) + len(g.sums) > 1
             and sum(m.op.name != "broadcast_to" for m in g.members) + len(g.sums) > 1}
    member_gid = {id(m): gid for gid, g in groups.items() if gid in fused for m in g.members}
    sum_gid = {id(s): gid for gid, g in groups.items() if gid in fused for s in g.sums}
    needed: set = set()  # members whose values leave the loop
    for n in order:
        for a in n.args:
            if id(a) in member_gid and member_gid.get(id(n), sum_gid.get(id(n))) != \
                    member_gid[id(a)]:
                needed.add(id(a))
    needed |= {i for i in out_ids if i in member_gid}
    gen = _Gen(ins)
    checks = checks_of(outs)
    check_lines, _ = _input_checks(ins, gen, True, checks, order=order, numpy_in=True)
    used = {id(n) for n in order if n.op.name == "var"}
    units = _units(order, groups, fused)
    kernels = [Kernel(f"k{j}", u, needed, gen)
               for j, u in enumerate(u for u in units if isinstance(u, Group))]
    # scalar nodes computed from scalars alone, as Python numbers where they have a math form
    # (as the numpy backend does): weak scalars, so they do not promote a float32 batch
    gen.numbers = number_nodes(order, {})
    mathed = scalar_math_nodes(order, gen, {})
    body = _driver_lines(units, kernels, outs, single, gen, mathed)
    ksrc = HEADER + "".join(
        "\n\n" + k.source(False) + f"{k.name}_s = _nb.njit(**_S)({k.name}_s)\n\n"
        + k.source(True) + f"{k.name}_p = _nb.njit(**_P)({k.name}_p)\n" for k in kernels)
    mod = load_module(ksrc) if kernels else None
    params = ", ".join(gen.params[id(v)] for v in ins)
    head = check_lines + (_dtype_lines(ins, used, gen) if kernels else [])
    src = []
    if mathed:  # Python math raised where numpy gives inf or nan: numpy forms throughout
        plain = _driver_lines(units, kernels, outs, single, gen, set(), gen.numbers)
        src += [f"    def compiled_numpy({params}):"]
        src += ["        " + ln for ln in head + plain]
        body = ["try:"] + ["    " + ln for ln in body] + \
            ["except (ValueError, ArithmeticError):", f"    return compiled_numpy({params})"]
        body = strong_scalar_lines(ins, gen, {id(n) for n in order},
                                   f"compiled_numpy({params})") + body
    kparams = "".join(f", _k{i}s, _k{i}p" for i in range(len(kernels)))
    helpers = "_np, _hx, _wk, _nch, _rdt, _sdt, _f32, _f64, _f16, _TypingError"
    src = [f"def _build({_closure_params(gen)}, {helpers}{kparams}):"] \
        + src + [f"    def compiled({params}):", "        try:"]
    src += ["            " + ln for ln in head + body]
    # numpy's own errors (argmax of an empty axis, an input that is not numbers) named as
    # the numpy backend names them
    values = f"({params}{',' if ins else ''})"
    src += ["        except (TypeError, ValueError, _TypingError) as _e:",
            f"            _diagnose(_e, {values})", "            raise"]
    src.append("    return compiled")
    source = "\n".join(src) + "\n"
    ns: dict[str, Any] = {}
    exec(builtins.compile(source, "<symgrad-fused>", "exec"), ns)  # noqa: S102  (generated)
    kfns = []
    for k in kernels:
        kfns += [getattr(mod, f"{k.name}_s"), getattr(mod, f"{k.name}_p")]
    nch = 4 * max(1, numba.config.NUMBA_NUM_THREADS)
    # (numba's typing error for an array it cannot type, such as one of dtype object)
    typing_error = numba.core.errors.TypingError
    # numba has no float16: a float16 constant array goes in as float32 (exactly; numpy's
    # promotions with float32 and float64 data are the same), where numba raised
    values = [c.astype(np.float32) if isinstance(c, np.ndarray) and c.dtype == _F16 else c
              for c in _closure_values(gen, np, ins)]
    fn = ns["_build"](*values, np, np, runtime.Weak(np), nch, np.result_type, _with_scalars,
                      _F32, _F64, _F16, typing_error, *kfns)
    if mod is not None:
        hold(mod, fn)
    fn.source = source
    fn.kernel_source = ksrc
    fn.kernels = [getattr(mod, f"{k.name}_s") for k in kernels] + \
        [getattr(mod, f"{k.name}_p") for k in kernels]
    fn.inputs = list(ins)
    fn.outputs = list(outs)
    if any(not v.shape for v in ins):
        return _with_samples(fn, ins, order, single)
    return fn


def _with_samples(fn: Callable, ins: list, order: list, single: bool) -> Callable:
    """``fn``, whose scalar inputs may also be given arrays of samples: those calls go to a
    batched version of the graph, fused in its turn (see symgrad._per_sample)."""
    from ._per_sample import PerSample, runner

    per_sample = runner(ins, {id(n) for n in order}, single, lambda: compiled, "numba", np)
    diagnose = _diagnose_for(ins)

    def compiled(*args):
        try:
            return fn(*args)
        except PerSample:
            return per_sample(*args)
        except (TypeError, ValueError) as err:  # name the input that is not numbers
            diagnose(err, args)
            raise

    for attr in ("source", "kernel_source", "kernels", "inputs", "outputs"):
        setattr(compiled, attr, getattr(fn, attr))
    return compiled


def _driver_lines(units: list, kernels: list[Kernel], outs: list[Expr], single: bool, gen,
                  mathed: set, hosted: set = frozenset()) -> list[str]:
    """The driver's statements after the input checks: kernel calls and numpy calls in order,
    then the return; the nodes in ``mathed`` in their Python ``math`` form, those in
    ``hosted`` computed by numpy as Python numbers (symgrad._emit.hosted_code)."""
    names: dict[int, str] = {}
    body: list[str] = []
    tmp = 0
    ks = iter(kernels)
    for u in units:
        if isinstance(u, Group):
            k = next(ks)
            body += _call_lines(k, int(k.name[1:]), names, gen)
            continue
        n = u
        if n.op.name in _FREE:
            names[id(n)] = n.op.code([], n, gen)
            continue
        a = [names[id(x)] for x in n.args]
        names[id(n)] = f"_t{tmp}"
        if id(n) in mathed:
            src = n.op.math(a, n, gen)
        elif id(n) in hosted:
            src = hosted_code(n, a, gen)
        else:
            src = n.op.code(a, n, gen)
        body.append(f"_t{tmp} = {src}")
        tmp += 1
    consts = {id(o) for o in outs if o.op.name == "const" and o.ndim > 0}
    vals = returned(outs, names, consts)
    return body + [f"return {vals[0]}" if single else f"return ({', '.join(vals)},)"]


def _call_lines(k: Kernel, i: int, names: dict, gen) -> list[str]:
    """The driver's call of one kernel: its buffers (outputs in the call's dtype ``_dt``),
    the call, and its sums made final (partial sums added up, cast to ``_dt``)."""
    dims = [gen.dim(d) for d in k.shape]
    size = " * ".join(dims)
    shape = gen.shape(k.shape)
    # the partial sums of a chunked loop: in _dt in the serial form (one chunk, whose entries
    # are the final sums), in float64 in the parallel form (partials added up afterwards)
    partials = any(chunked and inner for _, chunked, inner in k.sums)
    lines = [f"if {size} >= {PARALLEL_MIN}:",
             f"    _nc = _min(_nch, {dims[0]})",
             f"    _k = _k{i}p"] + (["    _ad = _f64"] if partials else []) + [
             "else:",
             "    _nc = 1",
             f"    _k = _k{i}s"] + (["    _ad = _dt"] if partials else [])
    args = ["_nc"] + dims
    for a in k.inputs:
        nm = names[id(a)]
        args.append(nm if a.ndim else f"_float({nm})")
    for j, o in enumerate(k.outputs):
        nm = f"_f{i}o{j}"
        lines.append(f"{nm} = _np.empty({shape}, _dt)")
        names[id(o)] = nm
        args.append(nm)
    finals = []
    for j, (s, chunked, inner) in enumerate(k.sums):
        nm = f"_f{i}r{j}"
        cast = f"if _dt is not _f64: {nm} = {nm}.astype(_dt)"
        if chunked and inner:  # (the parallel form may have one chunk, of one row)
            lines.append(f"{nm} = _np.zeros((_nc,) + {gen.shape(s.shape)}, _ad)")
            finals += [f"{nm} = {nm}[0] if _nc == 1 else {nm}.sum(0)",
                       f"if _ad is not _dt: {nm} = {nm}.astype(_dt)"]
        elif chunked:
            lines.append(f"{nm} = _np.zeros((_nc,) + {gen.shape(s.shape)})")
            finals += [f"{nm} = {nm}[0] if _nc == 1 else {nm}.sum(0)", cast]
        elif inner:
            lines.append(f"{nm} = _np.zeros({gen.shape(s.shape)}, _dt)")
        else:
            lines.append(f"{nm} = _np.zeros({gen.shape(s.shape)})")
            finals.append(cast)
        names[id(s)] = nm
        args.append(nm)
    lines.append(f"_k({', '.join(args)})")
    return lines + finals


def _dtype_lines(ins: list[Expr], used: set, gen) -> list[str]:
    """``_dt = ...``: the dtype of the arrays a call's kernels write, computed once per call.

    numpy's promotion of the used inputs that carry a dtype (arrays, numpy scalars, 0-d
    arrays; Python numbers are weak and do not count), as the numpy backend's results have;
    float64 unless that is float32 (integer and bool inputs give float64, never an integer
    buffer that would truncate; numba has no float16 or long double arithmetic).
    """
    arrays = [gen.params[id(v)] for v in ins if v.shape and id(v) in used]
    scalars = [gen.params[id(v)] for v in ins if not v.shape and id(v) in used]
    scalar_names = [v.attrs["vname"] for v in ins if not v.shape and id(v) in used]
    if not arrays and not scalars:
        # outputs that use the inputs' shapes only (an identity, zeros): the dtype of the
        # arrays given, as the numpy backend lends it (float32 data gave float64 here)
        given = [gen.params[id(v)] for v in ins if v.shape]
        if not given:
            return ["_dt = _f64"]
        return [f"_dt = _rdt(*[_a for _a in ({', '.join(given)},) "
                "if getattr(_a, 'dtype', None) is not None] or [_f64])",
                "if _dt is not _f32 and _dt is not _f64: _dt = _f32 if _dt == _f32 else _f64"]
    if not arrays:
        lines = [f"_dt = _sdt(None, {', '.join(scalars)})"]
    elif len(arrays) > 8:
        lines = [f"_dt = _rdt({', '.join(arrays)})"]
    else:  # the arrays' dtypes are mostly one: compare them (cheaper than result_type)
        lines = [f"_dt = {arrays[0]}.dtype"]
        if len(arrays) > 1:
            differ = " or ".join(f"{p}.dtype is not _dt" for p in arrays[1:])
            lines.append(f"if {differ}: _dt = _rdt({', '.join(arrays)})")
    lines += [f"if {p}.__class__ is not _float: _dt = _sdt(_dt, {p})" for p in scalars]
    # float32 or float64, each as the one dtype object (an unpickled array has its own)
    lines.append("if _dt is not _f32 and _dt is not _f64: _dt = _f32 if _dt == _f32 else _f64")
    # numba has no float16: such inputs go in as _dt (as ints and bools are read as float64)
    return lines + [f"if {p}.dtype.char == 'e': {p} = {p}.astype(_dt)" for p in arrays] + \
        [f"if getattr({p}, 'dtype', None) == _f16: {p} = _float({p})" for p in scalars] + \
        [f"if {p}.__class__ is str or {p}.__class__ is bytes: _scalar_in({n!r}, {p})"
         for p, n in zip(scalars, scalar_names)]  # (the kernels read "0.5" as a number)


def _with_scalars(dt, *values):
    """``dt`` (or None) promoted by the values that have a dtype of their own (numpy scalars,
    0-d arrays); Python numbers and anything else (reported where it is used) leave it."""
    typed = [v for v in values if hasattr(v, "dtype")]
    if dt is not None:
        typed.append(dt)
    return np.result_type(*typed) if typed else _F64


_F32, _F64, _F16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)


def _loop_dtype(dt) -> np.dtype:
    """The dtype a loop stores for values of dtype ``dt``: float32 stays, all else float64."""
    return _F32 if dt == _F32 else _F64


# ------------------------------------------------------------------ all-scalar graphs
def _compile_scalar_graph(outs: list[Expr], ins: list[Expr], single: bool,
                          order: list[Expr]) -> Callable:
    """A graph of scalars, called with arrays for some inputs (one value per sample): one loop
    over the broadcast samples computes every node; with Python numbers only, the numpy
    backend's ``math`` code runs. A node without a loop form keeps the numpy backend."""
    fn_np = _compile_numpy(outs[0] if single else outs, ins)
    def loopable(n: Expr) -> bool:
        if n.op.leaf:
            return n.op.name in ("var", "const")
        return n.op.name in ("alias", "guard") or (n.op.elementwise and n.op.kernel(
            ["x"] * len(n.args), n, None) is not None)

    if not all(loopable(n) for n in order):
        fn_np.kernels = []
        return fn_np
    used = {id(n) for n in order}
    idx = [i for i, v in enumerate(ins) if id(v) in used]
    # which of those inputs each output depends on: its shape is their broadcast, as in numpy
    deps = []
    for o in outs:
        mine = {id(n) for n in topo_order([o])}
        deps.append([j for j, i in enumerate(idx) if id(ins[i]) in mine])
    kernels: dict[tuple, tuple] = {}
    made: list = []

    def kernel_for(mask: tuple) -> tuple:
        names: dict[int, str] = {}
        for j, i in enumerate(idx):
            names[id(ins[i])] = f"x{j}" if mask[j] else f"a{j}"
        lines = [f"x{j} = a{j}[_i]" for j in range(len(idx)) if mask[j]]
        k = 0
        for n in order:
            if n.op.name == "const":
                v = float(n.attrs["value"])
                lit = literal(v)
                names[id(n)] = lit if lit is not None else f"float({str(v)!r})"  # inf, nan
            elif not n.op.leaf:
                a = [names[id(x)] for x in n.args]
                src = a[0] if n.op.name == "alias" else n.op.kernel(a, n, None)
                lines.append(f"v{k} = {src}")
                names[id(n)] = f"v{k}"
                k += 1
        lines += [f"o{j}[_i] = {names[id(o)]}" for j, o in enumerate(outs)]
        params = ", ".join(["_n"] + [f"a{j}" for j in range(len(idx))]
                           + [f"o{j}" for j in range(len(outs))])
        src = HEADER
        for tag, loop, opts in (("s", "range", "_S"), ("p", "_prange", "_P")):
            src += (f"\n\ndef k_{tag}({params}):\n    for _i in {loop}(_n):\n"
                    + "".join(f"        {ln}\n" for ln in lines)
                    + f"k_{tag} = _nb.njit(**{opts})(k_{tag})\n")
        mod = load_module(src)
        hold(mod, per_sample)
        made.extend([mod.k_s, mod.k_p])
        return mod.k_s, mod.k_p

    def per_sample(*args):
        if len(args) != len(ins):
            return fn_np(*args)  # the numpy function's own error
        sel = [args[i] for i in idx]
        mask = tuple(getattr(a, "ndim", 0) > 0 for a in sel)
        if not any(mask) or not all(_loopable_value(a, m) for a, m in zip(sel, mask)):
            # the numpy version reads (or refuses, naming the input) everything else: complex
            # samples became 0 in the loop, a mask was dropped, strings were parsed
            return fn_np(*args)
        shape = samples_shape([ins[i].attrs["vname"] for i in idx], sel)
        ks = kernels.get(mask)
        if ks is None:
            ks = kernels[mask] = kernel_for(mask)
        size = math.prod(shape)
        vals = [np.asarray(a) if m else a for a, m in zip(sel, mask)]
        # float32 and float64 arrays go in as they are (no copy unless broadcast), others as
        # float64; each output in the dtype numpy gives it (_out_dtype)
        flat = [_flat(a, shape) if m else float(a) for a, m in zip(vals, mask)]
        res = [np.empty(size, _out_dtype([vals[j] for j in d])) for d in deps]
        (ks[1] if size >= PARALLEL_MIN else ks[0])(size, *flat, *res)
        res = [_shrink(r.reshape(shape), np.broadcast_shapes(*(np.shape(sel[j]) for j in d)))
               for r, d in zip(res, deps)]
        # an output of Python numbers alone is a Python float, as the numpy version gives it
        res = [float(r) if all(sel[j].__class__ in (float, int) for j in d) else r
               for r, d in zip(res, deps)]
        return res[0] if single else tuple(res)

    # Python floats in: straight to the numpy backend's math code, with one check
    ps = ", ".join(f"_p{i}" for i in range(len(ins)))
    cond = " is ".join(["_float"] + [f"_p{i}.__class__" for i in idx])
    src = (f"def compiled({ps}):\n    if {cond}:\n        return _fn_np({ps})\n"
           f"    return _per_sample({ps})\n") if idx else \
        f"def compiled({ps}):\n    return _fn_np({ps})\n"
    ns = {"_float": float, "_fn_np": fn_np, "_per_sample": per_sample}
    exec(builtins.compile(src, "<symgrad-fused>", "exec"), ns)  # noqa: S102  (generated)
    compiled = ns["compiled"]
    compiled.source = fn_np.source
    compiled.inputs = list(ins)
    compiled.outputs = list(outs)
    compiled.kernels = made
    return compiled


_LOOP_NUMBERS = (float, int, np.float64, np.float32)


def _loopable_value(a, is_array: bool) -> bool:
    """Whether a value for a scalar input goes into a per-sample loop as it is: a float32 or
    float64 numpy array of samples, or a plain number."""
    if is_array:
        return a.__class__ is np.ndarray and (a.dtype == _F64 or a.dtype == _F32)
    return a.__class__ in _LOOP_NUMBERS


def _out_dtype(values: list) -> np.dtype:
    """The dtype of a per-sample output computed from ``values``: numpy's promotion of those
    that carry a dtype (Python numbers are weak), float64 unless that is float32."""
    return _loop_dtype(_with_scalars(None, *values))


def _flat(a: np.ndarray, shape: tuple) -> np.ndarray:
    """``a`` broadcast to ``shape``, as a contiguous 1-d array for a per-sample loop: float32
    and float64 keep their dtype (no copy when nothing is broadcast), others become float64."""
    return np.ascontiguousarray(np.broadcast_to(a, shape), dtype=_loop_dtype(a.dtype)).reshape(-1)


def _shrink(full: np.ndarray, shape: tuple):
    """``full`` (every sample) cut down to ``shape``, the broadcast shape of the inputs one
    output depends on (its values repeat along the other axes)."""
    if full.shape == shape:
        return full
    pad = (1,) * (full.ndim - len(shape)) + tuple(shape)
    cut = full[tuple(slice(None) if p == f else slice(0, 1) for p, f in zip(pad, full.shape))]
    return cut.reshape(shape).copy() if shape else cut.reshape(())[()]
