"""More properties over random expression DAGs (tests/strategies.py), in areas that
tests/test_properties.py does not fuzz:

- sg.jacobian of vector- and matrix-valued graphs equals central finite differences, for every
  variable;
- sg.hessian(f, [vars]) of scalar graphs with tensor variables equals central differences of the
  compiled gradient, and sg.hessian(f, v) of one vector variable is one expression of shape
  v.shape + v.shape with the same value;
- sg.parse gives the very node that Python's operators build from the same formula (what
  tests/test_parse.py promises for hand-written texts), with ``name = ...`` parts naming values;
- sg.save / sg.load (symgrad.serialize) round trip: the same nodes, values and names, gradients
  included;
- sg.simplify of gradients keeps their value and never grows their node count;
- the numba and dask backends give what the numpy backend gives on random graphs with tensors
  (skipped cleanly when numba or dask is not installed);
- str(e) of a graph of scalars means what the graph computes: read as Python, with each
  function name bound to its op, it has e's value (precedence and parentheses are right).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import pickle

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad import serialize
from tests.strategies import TENSOR_VARS, dags, point_is_safe, points, scalar_cases, to_scalar

EXACT = 1e-9  # two ways of computing the same value
FEW = settings(max_examples=max(1, settings.default.max_examples // 5))  # each compiles: 60 in CI


def _args(ws, vals):
    return [vals[w] for w in ws]


def _central(fn, ws, vals, w, h=1e-6):
    """Central differences of the compiled ``fn`` (any output shape) in every entry of ``w``:
    an array of shape out.shape + w.shape."""
    base = np.array(vals[w], dtype=float)
    out_shape = np.shape(fn(*_args(ws, vals)))
    out = np.zeros(out_shape + base.shape)
    for idx in np.ndindex(*base.shape):
        step = h * max(1.0, abs(float(base[idx])))
        hi, lo = base.copy(), base.copy()
        hi[idx] += step
        lo[idx] -= step
        up, dn = dict(vals), dict(vals)
        up[w] = hi if base.shape else float(hi)
        dn[w] = lo if base.shape else float(lo)
        diff = np.asarray(fn(*_args(ws, up))) - np.asarray(fn(*_args(ws, dn)))
        out[(...,) + idx] = diff / (2 * step)
    return out


# ------------------------------------------------------------------ jacobian
@FEW
@given(st.data())
def test_jacobian_of_tensor_graphs_equals_central_differences(data):
    e = data.draw(dags(tensor=True, max_ops=8), label="e")
    if e.ndim == 0:  # a vector-valued function of it
        e = e * np.array([1.0, -2.0])
    ws = sg.variables(e)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(e, vals, gap=1e-3))
    note(f"e = {e}")
    jacs = sg.jacobian(e, ws)
    got = sg.compile(jacs, ws)(*_args(ws, vals))
    fn = sg.compile(e, ws)
    scale = 1.0 + float(np.max(np.abs(fn(*_args(ws, vals)))))
    for w, j in zip(ws, got):
        assert np.shape(j) == e.shape + w.shape, (w, np.shape(j))
        want = _central(fn, ws, vals, w)
        np.testing.assert_allclose(j, want, rtol=1e-5, atol=1e-6 * scale, err_msg=f"d/d{w}")


# ------------------------------------------------------------------ hessian
@FEW
@given(st.data())
def test_hessian_equals_central_differences_of_the_gradient(data):
    f, ws, vals = data.draw(scalar_cases(), label="case")
    note(f"f = {f}")
    H = sg.hessian(f, ws)
    grads = sg.grad(f, ws)
    vecs = [w for w in ws if w.ndim == 1]
    one = [sg.hessian(f, v) for v in vecs]  # one expression per vector variable
    flat = [h for row in H for h in row]
    got = sg.compile(flat + one, ws)(*_args(ws, vals))
    k = len(ws)
    gfn = sg.compile(grads, ws)
    gscale = 1.0 + max(float(np.max(np.abs(g))) for g in gfn(*_args(ws, vals)))
    for i, wi in enumerate(ws):
        gi = sg.compile(grads[i], ws)
        for j, wj in enumerate(ws):
            hij = np.asarray(got[i * k + j])
            assert hij.shape == wi.shape + wj.shape
            want = _central(gi, ws, vals, wj)
            np.testing.assert_allclose(hij, want, rtol=1e-4, atol=1e-5 * gscale,
                                       err_msg=f"d2f/d{wi}d{wj}")
    for v, hv in zip(vecs, got[k * k:]):
        assert np.shape(hv) == v.shape + v.shape
        i = ws.index(v)
        np.testing.assert_allclose(hv, got[i * k + i], rtol=EXACT, atol=EXACT * gscale,
                                   err_msg=f"hessian(f, {v})")


# ------------------------------------------------------------------ parse
# Formulas in the parser's syntax, drawn together with the node Python's operators build from
# them. (str(e) is a formula for people, with ⊙, ^T and reshapes left out, so it is not the
# parser's input; the parser promises the node of the text it is given.)
_ENV = {w.attrs["vname"]: w for w in TENSOR_VARS}
_P_UNARY = ("exp", "log", "sqrt", "sigmoid", "tanh", "relu", "softplus", "abs", "sin", "cos",
            "square", "stop_gradient")
_P_BINARY = ("maximum", "minimum", "bce", "pow")
_P_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "/": lambda a, b: a / b, "**": lambda a, b: a ** b, "@": lambda a, b: a @ b}
_P_AXIS = ("sum", "mean", "logsumexp", "softmax", "log_softmax")


_FORMULAS = itertools.count()


@st.composite
def formulas(draw):
    """(text, expression): a random formula over ``TENSOR_VARS`` in the parser's syntax and the
    node Python builds from it (names of ``name = ...`` parts given with ``.named``).

    Like the parser, which builds a formula where its text is used, the expression of a part is
    rebuilt at each use: a name given to a value makes its named twin the node that later
    constructions return (``Expr.named``)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = next(_FORMULAS)

    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    pool = [(n, (lambda w=w: w)) for n, w in _ENV.items()]  # (text, builder)
    lines = []
    for _ in range(int(rng.integers(2, 9))):
        kind = pick(["unary", "binary", "op", "axis", "T", "number", "left_number", "pos", "neg"])
        ta, a = pool[int(rng.integers(len(pool)))] if rng.random() < 0.5 else pool[-1]
        tb, b = pick(pool)
        if kind == "unary":
            f = pick(_P_UNARY)
            text, build = f"{f}({ta})", (lambda f=f, a=a: getattr(sg, f)(a()))
        elif kind == "binary":
            f = pick(_P_BINARY)
            py = sg.functions.power if f == "pow" else getattr(sg, f)
            text, build = f"{f}({ta}, {tb})", (lambda py=py, a=a, b=b: py(a(), b()))
        elif kind == "op":
            o = pick(list(_P_OPS))
            text, build = f"({ta}) {o} ({tb})", (lambda o=o, a=a, b=b: _P_OPS[o](a(), b()))
        elif kind == "axis":
            f = pick(_P_AXIS)
            nd = a().ndim
            ax = pick([None] + list(range(-nd, nd)))
            if f in ("softmax", "log_softmax") and ax is None:
                text, build = f"{f}({ta})", (lambda f=f, a=a: getattr(sg, f)(a()))
            else:
                text = f"{f}({ta}, axis={ax})" if rng.random() < 0.5 else f"{f}({ta}, {ax})"
                text, build = text, (lambda f=f, a=a, ax=ax: getattr(sg, f)(a(), axis=ax))
        elif kind == "T":
            text, build = f"({ta}).T", (lambda a=a: a().T)
        elif kind == "number":
            x = pick([0.5, 2.0, 3.0, 1.0, 0.1, 1e-3, 2.5e5, 1 / 3]) * pick([1, 1, -1])
            text, build = f"({ta}) * {x!r}", (lambda a=a, x=x: a() * x)
        elif kind == "left_number":
            x = pick([2, 3, 0.5, 1e-3, 1.0]) * pick([1, -1])
            o = pick(["+", "-", "*", "/", "**"])
            text, build = f"({x!r}) {o} ({ta})", (lambda a=a, x=x, o=o: _P_OPS[o](x, a()))
        elif kind == "pos":
            text, build = f"+({ta})", a
        else:
            text, build = f"-({ta})", (lambda a=a: -a())
        try:
            build()
        except (sg.ShapeError, ValueError):
            continue
        if rng.random() < 0.3:
            name = f"t{k}_{len(lines)}"  # names of its own: nodes of earlier examples may live
            lines.append(f"{name} = {text}")
            named = build().named(name)
            text, build = name, (lambda named=named: named)
        pool.append((text, build))
    text, build = pool[-1]
    return "; ".join(lines + [text]), build()


def _structure(e, ids: dict) -> int:
    """A number for the graph of ``e`` up to names (``ids`` numbers the structures seen): equal
    for graphs of the same ops, attributes and operands. (A name given to a value makes its
    named twin what later constructions return, while it lives: so which of the equal nodes a
    formula gets depends on what was named before, here by the strategy; the ops do not.)"""
    num: dict[int, int] = {}
    for n in sg.topo_order([e]):
        if n.op.name == "alias":
            num[id(n)] = num[id(n.args[0])]
            continue
        key = (n.op.name, repr(n.op.attrs_key(n.attrs)), tuple(num[id(a)] for a in n.args))
        num[id(n)] = ids.setdefault(key, len(ids))
    return num[id(e)]


def _name(e):
    """The name printing shows for ``e`` (a named variable is an alias node)."""
    return e.attrs["alias"] if e.op.name == "alias" else e.name


@settings(max_examples=max(1, settings.default.max_examples // 2))
@given(formulas())
def test_parse_builds_the_node_python_builds(pair):
    text, e = pair
    note(text)
    got = sg.parse(text, _ENV)
    assert got.shape == e.shape, (str(got), str(e))
    last = text.rpartition(";")[2].strip()
    if f"{last} = " in text:  # the result is a part named here
        assert _name(got) == _name(e) == last, (str(got), str(e))
    ids: dict = {}
    assert _structure(got, ids) == _structure(e, ids), (str(got), str(e))
    if text.count(";") == 0:  # nothing named: the very node
        assert got is e, (str(got), str(e))


# ------------------------------------------------------------------ serialize
_SAVED = itertools.count()


def _round_trip(outs):
    return serialize.from_data(json.loads(json.dumps(serialize.to_data(outs), allow_nan=False)))


@FEW
@given(st.data())
def test_save_load_keeps_nodes_values_and_names(data):
    e = data.draw(dags(tensor=True, value_only=True, max_ops=8), label="e")
    f = to_scalar(e)
    ws = sg.variables(f)
    vals = data.draw(points(ws), label="point")
    inner = [n for n in sg.topo_order([e]) if not n.op.leaf and n is not e and n.name is None]
    # A name makes the named twin the node that later constructions return (Expr.named), and
    # loading rebuilds every node: so names are given before the graphs that use them are
    # built (``e`` is rebuilt once, after ``phi`` is named), and each example has names of its
    # own (the nodes of an earlier one may still live, and their names show in ``e``).
    k = next(_SAVED)
    phi = inner[-1].named(f"phi_saved{k}") if inner else None
    out = _round_trip([e])[0].named(f"out_saved{k}")
    g = to_scalar(out) * (to_scalar(phi) if phi is not None else 1.0)
    try:
        grads = sg.grad(g, ws)
    except sg.NonDifferentiableError:
        grads = []
    outs = [out, g, *grads]
    back = _round_trip(outs)
    assert len(back) == len(outs)
    for b, o in zip(back, outs):
        assert b is o, (str(b), str(o))  # rebuilt through the ops: the very nodes
    for b, o in zip(pickle.loads(pickle.dumps(outs)), outs):  # pickle writes the same data
        assert b is o, (str(b), str(o))
    assert back[0].name == f"out_saved{k}"
    if not point_is_safe(g, vals):
        return
    np.testing.assert_array_equal(np.asarray(sg.evaluate(back[0], vals)),
                                  np.asarray(sg.evaluate(e, vals)))


# ------------------------------------------------------------------ simplify of gradients
@FEW
@given(st.data())
def test_simplify_of_gradients_keeps_value_and_never_grows(data):
    e = data.draw(dags(tensor=data.draw(st.booleans(), label="tensor"), max_ops=8), label="e")
    f = to_scalar(e)
    ws = sg.variables(f)
    grads = sg.grad(f, ws)
    simple = sg.simplify(grads)
    vals = data.draw(points(ws), label="point")
    for g, s in zip(grads, simple):
        assert sg.count_nodes(s) <= sg.count_nodes(g), (str(g), str(s))
        assert s.shape == g.shape
    assume(point_is_safe(f, vals, gap=1e-3))
    for g in grads:
        assume(point_is_safe(g, vals))
    want = sg.evaluate(grads, vals)
    got = sg.evaluate(simple, vals)
    for w, a, b in zip(ws, got, want):
        scale = 1.0 + float(np.max(np.abs(b)))
        np.testing.assert_allclose(a, b, rtol=EXACT, atol=EXACT * scale, err_msg=f"d/d{w}")


# ------------------------------------------------------------------ other backends
def _have(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


def _backend_case(data):
    e = data.draw(dags(tensor=True, value_only=True, max_ops=8), label="e")
    ws = sg.variables(e)
    f = to_scalar(e)
    outs = [e, f, *sg.grad(f, ws)]
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(f, vals))
    note(f"e = {e}")
    return outs, ws, vals


def _close(got, want, rtol):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, (k, g.shape, w.shape)
        scale = 1.0 + float(np.max(np.abs(w), initial=0.0))
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * scale, err_msg=f"output {k}")


@pytest.mark.skipif(not _have("numba"), reason="numba not installed")
@settings(max_examples=max(1, settings.default.max_examples // 8))
@given(st.data())
def test_numba_backend_equals_numpy(data):
    outs, ws, vals = _backend_case(data)
    want = sg.compile(outs, ws)(*_args(ws, vals))
    fn = sg.compile(outs, ws, backend="numba")
    _close(fn(*_args(ws, vals)), want, 1e-9)
    # float32 arrays: the same values to float32's precision. (Not their dtypes: an output that
    # reads a constant array, to_scalar's weights, eye, onehot or a folded broadcast, is float64
    # in numpy and float32 in numba, as symgrad/fused.py documents.)
    f32 = [np.asarray(v, np.float32) if np.ndim(v) else v for v in _args(ws, vals)]
    want32, got32 = sg.compile(outs, ws)(*f32), fn(*f32)
    _close([np.asarray(g, float) for g in got32], [np.asarray(w, float) for w in want32], 2e-3)


@pytest.mark.skipif(not _have("dask") or not _have("array_api_compat"),
                    reason="dask / array-api-compat not installed")
@settings(max_examples=max(1, settings.default.max_examples // 8))
@given(st.data())
def test_dask_backend_equals_numpy(data):
    import dask
    import dask.array as da

    outs, ws, vals = _backend_case(data)
    want = sg.compile(outs, ws)(*_args(ws, vals))
    ins = [da.from_array(v, chunks=max(1, v.shape[0] // 2)) if np.ndim(v) else v
           for v in _args(ws, vals)]
    got = dask.compute(*sg.compile(outs, ws, backend="dask")(*ins), scheduler="sync")
    _close(got, want, 1e-10)


def _op_functions() -> dict:
    """Each op's printed function name -> the op applied to numbers (evaluated by symgrad)."""
    from symgrad.expr import make
    from symgrad.ops.base import REGISTRY

    def apply(op):
        return lambda *a: np.float64(sg.evaluate(make(op, tuple(sg.const(float(x)) for x in a)),
                                                 {}))

    return {op.fn or op.name: apply(op) for op in REGISTRY.values() if not op.leaf}


@given(st.data())
def test_printed_scalar_formula_has_the_graph_value(data):
    e = data.draw(dags(tensor=False, value_only=True), label="e")
    vals = data.draw(points(sg.variables(e)), label="point")
    assume(point_is_safe(e, vals))
    text = str(e)
    note(text)
    env = dict(_op_functions(), **{v.attrs["vname"]: np.float64(vals[v])
                                   for v in sg.variables(e)})
    # a node named elsewhere in the process (names are process-global) prints as its name
    for n in sg.topo_order([e]):
        name = n.name or (n.attrs["alias"] if n.op.name == "alias" else None)
        if name:
            used = {v: vals[v] for v in sg.variables(n)}
            env[name] = np.float64(sg.evaluate(n, used))
    with np.errstate(all="ignore"):
        got = float(eval(text, env))  # noqa: S307  (our own printed formula)
    np.testing.assert_allclose(got, sg.evaluate(e, vals), rtol=1e-7, atol=1e-9, err_msg=text)
