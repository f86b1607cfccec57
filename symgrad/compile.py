"""Code generation: a graph becomes straight-line Python source, exec'd once.

The generated function takes the inputs positionally, binds symbolic sizes from the inputs'
shapes (checking them, and naming the offending input), runs one statement per node in
topological order against an array namespace (numpy unless told otherwise), and returns the
outputs. A graph of scalars also gets a Python ``math`` version, used when every input is a
Python float (it is several times faster than numpy on scalars); other inputs (arrays,
ints, numpy scalars) take the array path, so scalar inputs given arrays broadcast per sample.

The source holds no user text: variables are validated identifiers, and constants are passed
to the generated code as objects, never as their repr.
"""

from __future__ import annotations

import builtins
import keyword
import math
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from . import backends, runtime
from .errors import ShapeError
from .expr import Expr
from .graph import as_list, topo_order, use_counts
from .rewrite import stabilize
from .shapes import fmt_shape

_FREE = ("var", "const", "dimsize")  # leaves whose code is a name, not a statement


class _Gen:
    """Names for one generated function: inputs, constants, sizes and temporaries."""

    def __init__(self, inputs: list[Expr]):
        self.consts: list[Any] = []
        self.const_names: dict[tuple, str] = {}
        self.params: dict[int, str] = {}
        self.dims: dict[str, str] = {}
        used = set()
        for i, v in enumerate(inputs):
            name = v.attrs["vname"]
            p = name if _plain(name) and name not in used else f"_in{i}"
            used.add(p)
            self.params[id(v)] = p

    def var_name(self, n: Expr) -> str:
        return self.params[id(n)]

    def const(self, value) -> str:
        key = (type(value).__name__, id(value) if isinstance(value, np.ndarray) else value)
        name = self.const_names.get(key)
        if name is None:
            name = f"_c{len(self.consts)}"
            self.consts.append(value)
            self.const_names[key] = name
        return name

    def dim(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        name = self.dims.get(d)
        if name is None:
            # an ASCII size name is kept readable; others are numbered, since Python folds
            # identifiers (NFKC: "ℌ" is "H") and two sizes must never share a variable
            name = f"_d_{d}" if d.isascii() else f"_dx{len(self.dims)}"
            self.dims[d] = name
        return name

    def shape(self, shape) -> str:
        if not shape:
            return "()"
        return "(" + ", ".join(self.dim(d) for d in shape) + ",)"


def _plain(name: str) -> bool:
    """Whether a variable's name can be the parameter's name in the generated source."""
    return (name.isascii() and name.isidentifier() and not keyword.iskeyword(name)
            and not name.startswith("_") and not hasattr(builtins, name))


def _resolve_backend(backend):
    if backend is None or backend is np or (isinstance(backend, str) and backend == "numpy"):
        return np
    return backends.namespace(backend)


def _fail(msg_template: str, dims: dict) -> None:
    raise ShapeError(msg_template.format(**dims))


def _check_inputs(outs: list[Expr], inputs, what: str) -> tuple[list[Expr], list[Expr]]:
    ins, _ = as_list(inputs, f"{what}: inputs")
    seen: dict[int, Expr] = {}
    for v in ins:
        if v.op.name != "var":
            raise ValueError(f"{what}: inputs must be variables, got {v}")
        if id(v) in seen:
            raise ValueError(f"{what}: input {v.attrs['vname']} is listed twice")
        seen[id(v)] = v
    order = topo_order(outs)
    names: dict[str, Expr] = {}
    for n in order:
        if n.op.name != "var":
            continue
        nm = n.attrs["vname"]
        if nm in names and names[nm] is not n:
            raise ValueError(f"{what}: two different variables are named {nm} (shapes "
                             f"{fmt_shape(names[nm].shape)} and {fmt_shape(n.shape)})")
        names[nm] = n
        if id(n) not in seen:
            raise ValueError(f"{what}: input {nm} {fmt_shape(n.shape)} is missing")
    return ins, order


def _lines_for(order, gen, uses, outs, math_mode: bool) -> tuple[list[str], dict[int, str]]:
    names: dict[int, str] = {}
    lines: list[str] = []
    out_ids = {id(o) for o in outs}
    remaining = dict(uses)
    k = 0
    for n in order:
        if n.op.name in _FREE:
            names[id(n)] = n.op.code([], n, gen)
            continue
        a = [names[id(x)] for x in n.args]
        src = n.op.math(a, n, gen) if math_mode else n.op.code(a, n, gen)
        name = f"_t{k}"
        k += 1
        lines.append(f"{name} = {src}")
        names[id(n)] = name
        if not math_mode:
            # free big temporaries as soon as their last user has run
            dead = []
            for x in set(n.args):
                if x.op.name in _FREE:
                    continue
                remaining[id(x)] -= n.args.count(x)
                if remaining[id(x)] == 0 and id(x) not in out_ids and x.ndim > 0:
                    dead.append(names[id(x)])
            if dead:
                lines.append("del " + ", ".join(sorted(dead)))
    return lines, names


def _input_checks(ins: list[Expr], gen: _Gen, tensor_graph: bool, checks) -> tuple[list, dict]:
    lines: list[str] = []
    bound: dict[str, str] = {}
    for v in ins:
        p = gen.params[id(v)]
        nm = v.attrs["vname"]
        if not v.shape:
            if tensor_graph:
                lines.append(f"if getattr({p}, 'ndim', 0): _bad_scalar({nm!r}, {p})")
            continue
        decl = fmt_shape(v.shape)
        lines.append(f"{p} = _asarray({p})")
        lines.append(f"_s = {p}.shape")
        lines.append(f"if len(_s) != {len(v.shape)}: _bad_input({nm!r}, _s, {decl!r})")
        for i, d in enumerate(v.shape):
            if isinstance(d, int):
                lines.append(f"if _s[{i}] != {d}: _bad_input({nm!r}, _s, {decl!r})")
            elif d in bound:
                lines.append(f"if _s[{i}] != {gen.dim(d)}: _bad_size({nm!r}, _s, {decl!r}, "
                             f"{d!r}, {gen.dim(d)}, {bound[d]!r})")
            else:
                bound[d] = nm
                lines.append(f"{gen.dim(d)} = _s[{i}]")
    for c in checks:
        a, b = gen.dim(c.a), gen.dim(c.b)
        dims = sorted({d for d in (c.a, c.b) if isinstance(d, str)} |
                      {d for s in c.shapes for d in s if isinstance(d, str)})
        for d in dims:
            if d not in bound:
                raise ValueError(f"compile: size {d} is not fixed by the shape of any input")
        shapes = " and ".join(_fmt_template(s) for s in c.shapes[:2])
        msg = f"{c.op}: shapes {shapes} do not fit"
        bind = ", ".join(f"{d!r}: {gen.dim(d)}" for d in dims)
        lines.append(f"if {a} != {b}: _fail({msg!r}, {{{bind}}})")
    return lines, bound


def _fmt_template(shape) -> str:
    parts = ["{" + d + "}" if isinstance(d, str) else str(d) for d in shape]
    if len(parts) == 1:
        return f"({parts[0]},)"
    return "(" + ", ".join(parts) + ")"


def _bad_input(name, got, decl):
    raise ShapeError(f"input {name}: expected shape {decl}, got {fmt_shape(tuple(got))}")


def _bad_size(name, got, decl, dim, value, first):
    raise ShapeError(f"input {name}: shape {fmt_shape(tuple(got))} does not fit {decl}: size "
                     f"{dim} is {value}, fixed by input {first}")


def _bad_scalar(name, value):
    raise ShapeError(f"input {name}: declared a scalar, got an array of shape "
                     f"{fmt_shape(tuple(np.shape(value)))}; in a graph with vectors or matrices "
                     "scalar inputs must be scalars")


def _diagnose_for(names: list[str]):
    def _diagnose(err: Exception, values: tuple) -> None:
        """Name the input that is not numbers when the generated code fails on it."""
        for name, v in zip(names, values):
            if hasattr(v, "dtype") and hasattr(v, "shape") and not isinstance(v, np.ndarray):
                continue  # another library's array (or a jax tracer): not numpy's to read
            try:
                dtype = np.asarray(v).dtype
            except (TypeError, ValueError) as e:
                raise ValueError(f"input {name}: cannot be read as an array of numbers ({e})") \
                    from err
            if dtype.kind not in "biufc":
                got = (f"an array of dtype {dtype}" if isinstance(v, np.ndarray)
                       else type(v).__name__)
                raise TypeError(f"input {name}: expected numbers, got {got}") from err

    return _diagnose


def compile(outputs, inputs, backend: Any = "numpy") -> Callable:  # noqa: A001
    """A callable computing ``outputs`` from ``inputs`` given positionally.

    Returns one array for one output and a tuple for a list. ``.source`` holds the generated
    Python code. ``backend``: "numpy" (default), "dask", "cupy", "torch" ("torch:cuda"),
    "jax" (jitted), "numba" (fused loops) or an array-API namespace module; see
    :mod:`symgrad.backends` and docs/running-at-scale.md.
    """
    special = backends.compiler(backend)
    if special is not None:  # "numba", "jax": see symgrad.backends
        return special(outputs, inputs)
    outs, single = as_list(outputs, "compile")
    if not outs:
        raise ValueError("compile: no outputs given")
    ins, _ = _check_inputs(outs, inputs, "compile")
    xp = _resolve_backend(backend)
    outs = stabilize(outs)
    order = topo_order(outs)
    uses = use_counts(order)
    for o in outs:
        uses[id(o)] = uses.get(id(o), 0) + 1
    gen = _Gen(ins)
    scalar_graph = all(n.shape == () for n in order) and all(v.shape == () for v in ins)
    checks = [c for n in order for c in n.checks]
    check_lines, _ = _input_checks(ins, gen, not scalar_graph, checks)
    body, names = _lines_for(order, gen, uses, outs, math_mode=False)
    params = ", ".join(gen.params[id(v)] for v in ins)

    def ret(names_):
        vals = []
        for o in outs:
            v = names_[id(o)]
            if o.op.name == "broadcast_to" or (o.op.name == "const" and o.ndim > 0):
                v = f"_rt.materialize(_xp, {v})"
            vals.append(v)
        return f"return {vals[0]}" if single else f"return ({', '.join(vals)},)"

    src = [f"def _build({_closure_params(gen)}):"]
    use_math = scalar_graph and xp is np and all(
        n.op.name in _FREE or n.op.math([""] * len(n.args), n, gen) is not None for n in order)
    arr_name = "_compiled_array" if use_math else "compiled"
    src.append(f"    def {arr_name}({params}):")
    src.append("        try:")  # free unless raised (Python >= 3.11)
    for ln in check_lines + body + [ret(names)]:
        src.append("            " + ln)
    src.append("        except (TypeError, ValueError) as _e:")
    src.append(f"            _diagnose(_e, ({params}{',' if ins else ''}))")
    src.append("            raise")
    if use_math:
        mbody, mnames = _lines_for(order, gen, uses, outs, math_mode=True)
        floats = [gen.params[id(v)] for v in ins]
        src.append(f"    def compiled({params}):")
        if floats:
            cond = " is ".join(["_float"] + [f"{p}.__class__" for p in floats])
            src.append(f"        if {cond}:")
            ind = "            "
        else:
            ind = "        "
        src.append(ind + "try:")
        for ln in mbody + [ret(mnames)]:
            src.append(ind + "    " + ln)
        src.append(ind + "except (ValueError, ArithmeticError):")
        src.append(ind + "    pass")
        src.append(f"        return _compiled_array({params})")
    src.append("    return compiled")
    source = "\n".join(src) + "\n"
    ns: dict[str, Any] = {}
    exec(builtins.compile(source, "<symgrad>", "exec"), ns)  # noqa: S102  (our own generated code, no user text)
    fn = ns["_build"](*_closure_values(gen, xp, ins))
    fn.source = source
    fn.inputs = list(ins)
    fn.outputs = list(outs)
    return fn


def _closure_params(gen: _Gen) -> str:
    fixed = ["_xp", "_m", "_rt", "_max", "_min", "_abs", "_float", "_asarray", "_bad_input",
             "_bad_size", "_bad_scalar", "_fail", "_diagnose"]
    return ", ".join(fixed + [f"_c{i}" for i in range(len(gen.consts))])


def _closure_values(gen: _Gen, xp, ins: list[Expr]) -> list:
    names = [v.attrs["vname"] for v in ins]
    return [xp, math, runtime, max, min, abs, float, xp.asarray, _bad_input, _bad_size,
            _bad_scalar, _fail, _diagnose_for(names)] + \
        [backends.convert_const(xp, c) for c in gen.consts]


# ------------------------------------------------------------------ evaluate
_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_CACHE_SIZE = 64


def _to_python(v):
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return float(v)
    if isinstance(v, (np.floating, np.integer)):
        return float(v)
    return v


def evaluate(exprs, values: dict):
    """The value of an expression (a float or an array), or a list of values for a list.

    ``values`` maps each variable the expressions use to a number or an array; extra entries
    are ignored.
    """
    outs, single = as_list(exprs, "evaluate")
    if not isinstance(values, dict):
        raise TypeError("evaluate: values must be a dict from variables to numbers or arrays")
    for k in values:
        if not isinstance(k, Expr) or k.op.name != "var":
            raise ValueError(f"evaluate: the keys of values must be variables, got {k!r}")
    order = topo_order(outs)
    used = [n for n in order if n.op.name == "var"]
    for v in used:
        if v not in values:
            raise ValueError(f"evaluate: no value given for input {v.attrs['vname']} "
                             f"{fmt_shape(v.shape)}")
    key = tuple(id(o) for o in outs) + (None,) + tuple(id(v) for v in used)
    hit = _CACHE.get(key)
    if hit is None:
        fn = compile(outs, used)
        # a graph that samples gets a fresh compile (fresh generators) each time: its value
        # does not depend on what the cache holds
        if not any(n.op.random for n in order):
            _CACHE[key] = (outs, used, fn)  # the graphs stay alive, so the ids stay valid
            if len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    else:
        fn = hit[2]
        _CACHE.move_to_end(key)
    res = fn(*[values[v] for v in used])
    if single:
        return _to_python(res[0])
    return [_to_python(r) for r in res]
