"""Saving and loading expressions: JSON holding networkx node-link data; never pickle or eval.

The file is one JSON object::

    {"format": "symgrad", "version": 1, "single": true, "outputs": [7],
     "graph": {"directed": true, "nodes": [...], "edges": [...], ...}}

``graph`` is :func:`networkx.node_link_data` of the DAG. Each node has an integer ``id``, its
op's name (``"op": "tanh"``), its ``shape`` (a list of sizes: ints or size names), its ``name``
(from ``.named``, or null), ``"twin": true`` where the name is the node's own and not what
later constructions of the value return (see :func:`symgrad.expr.rename`), and its
``attrs``; each edge goes from an operand to its user and lists the operand ``positions``.
Attribute values are JSON values, except tuples (``{"tuple": [...]}``), non-finite floats
(``{"float": "nan"}``) and arrays (``{"array": base64 of the little-endian bytes, "dtype":
"<f8", "shape": [2, 3]}``).

:func:`load` trusts nothing in the file: it accepts only the ops of :data:`symgrad.ops.REGISTRY`
and the attribute kinds below, checks arities, acyclicity, identifiers and shapes (each node is
rebuilt through its op, and the shape it gets must be the stored one), and raises ValueError
naming the node otherwise.
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import os
import stat
from typing import Any

import networkx as nx
import numpy as np

from . import functions as F
from .expr import Expr, is_twin, make_unnamed, rename
from .graph import as_list, topo_order
from .ops import REGISTRY
from .shapes import Check, as_dim, as_shape, check_identifier, fmt_shape

FORMAT = "symgrad"
VERSION = 1
_DTYPES = ("<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1")


# ------------------------------------------------------------------ attribute values
def _encode(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else {"float": repr(v)}
    if isinstance(v, tuple):
        return {"tuple": [_encode(x) for x in v]}
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v, dtype=v.dtype.newbyteorder("<"))
        if a.dtype.str not in _DTYPES:  # long double: its size depends on the machine
            raise TypeError(f"save: a constant of dtype {v.dtype} cannot be saved (integers, "
                            "booleans and 16, 32 and 64-bit floats can)")
        return {"array": base64.b64encode(a.tobytes()).decode("ascii"), "dtype": a.dtype.str,
                "shape": list(a.shape)}
    raise TypeError(f"save: cannot store an attribute of type {type(v).__name__}")


def _decode(v: Any, where: str) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, dict):
        if set(v) == {"tuple"} and isinstance(v["tuple"], list):
            return tuple(_decode(x, where) for x in v["tuple"])
        if set(v) == {"float"} and v["float"] in ("nan", "inf", "-inf"):
            return float(v["float"])
        if set(v) == {"array", "dtype", "shape"}:
            return _decode_array(v, where)
    raise ValueError(f"load: {where}: {v!r:.80} is not an attribute value")


def _decode_array(v: dict, where: str) -> np.ndarray:
    dtype, shape = v["dtype"], v["shape"]
    if dtype not in _DTYPES:
        raise ValueError(f"load: {where}: array dtype {dtype!r} is not a numeric dtype")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ValueError(f"load: {where}: array shape {shape!r:.80} is not a list of sizes")
    try:
        raw = base64.b64decode(v["array"], validate=True)
    except (TypeError, ValueError):
        raise ValueError(f"load: {where}: the array data is not base64") from None
    dt = np.dtype(dtype)
    if len(raw) != dt.itemsize * math.prod(shape):
        raise ValueError(f"load: {where}: the array data does not fit shape {tuple(shape)}")
    try:
        a = np.frombuffer(raw, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))
    except ValueError as err:  # an empty array of sizes numpy cannot hold: (0, 2**62)
        raise ValueError(f"load: {where}: array shape {tuple(shape)}: {err}") from None
    a.setflags(write=False)
    return a


# ------------------------------------------------------------------ attribute checks
def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_axes(v, args, what: str) -> None:
    nd = args[0].ndim if args else 0
    if not isinstance(v, tuple) or not all(_int(a) and 0 <= a < nd for a in v):
        raise ValueError(f"{what} {v!r} is not a tuple of axes of an operand with {nd} axes")


def _check_attr(key: str, v, args: tuple) -> None:
    """Raise ValueError unless ``v`` is a valid value of the attribute ``key``."""
    if key in ("vname", "alias", "dim"):
        check_identifier(v, key)
    elif key in ("shape", "dims"):
        if not isinstance(v, tuple) or as_shape(v, key) != v:
            raise ValueError(f"{key} {v!r} is not a tuple of sizes")
    elif key == "n":
        if as_dim(v, key) != v:
            raise ValueError(f"n {v!r} is not a size")
    elif key == "value":
        ok = (isinstance(v, float) or (isinstance(v, np.ndarray) and v.dtype.kind in "biuf"))
        if not ok:
            raise ValueError(f"value {v!r:.80} is not a float or a numeric array")
    elif key == "axis":
        if v is None or _int(v):  # argmax: one axis or None
            if v is not None and not 0 <= v < (args[0].ndim if args else 0):
                raise ValueError(f"axis {v!r} is out of range")
        else:
            _check_axes(v, args, "axis")
            if list(v) != sorted(set(v)):
                raise ValueError(f"axis {v!r} is not sorted and distinct")
    elif key == "axes":
        _check_axes(v, args, "axes")
        if sorted(v) != list(range(len(v))) or len(v) != args[0].ndim:
            raise ValueError(f"axes {v!r} is not a permutation of the operand's axes")
    elif key == "keepdims":
        if not isinstance(v, bool):
            raise ValueError(f"keepdims {v!r} is not a bool")
    elif key == "seed":
        if not _int(v) or v < 0:
            raise ValueError(f"seed {v!r} is not an int >= 0")
    elif key == "kind":
        if v not in ("zero", "disconnected"):
            raise ValueError(f"kind {v!r} is not 'zero' or 'disconnected'")
    elif key == "why":
        if not isinstance(v, str):
            raise ValueError(f"why {v!r:.80} is not a string")
    elif key == "checks":  # a guard's: (size, size, op name, operand shapes) each
        for c in v if isinstance(v, tuple) and v else (None,):
            ok = isinstance(c, tuple) and len(c) == 4 and isinstance(c[2], str) and \
                c[2].isidentifier() and isinstance(c[3], tuple) and c[3]
            if ok:
                try:
                    ok = all(as_dim(d) == d for d in c[:2]) and \
                        all(isinstance(s, tuple) and as_shape(s) == s for s in c[3])
                except (TypeError, ValueError):
                    ok = False
            if not ok:
                raise ValueError(f"checks {v!r:.80} is not a tuple of size checks")
    else:
        raise ValueError(f"unknown attribute {key!r}")


# ------------------------------------------------------------------ save
def to_data(exprs) -> dict:
    """The JSON-ready dict :func:`save` writes (``exprs``: an Expr or a list of them)."""
    outs, single = as_list(exprs, "save")
    order = topo_order(outs)
    ids = {id(n): i for i, n in enumerate(order)}
    g = nx.DiGraph()
    for i, n in enumerate(order):
        g.add_node(i, op=n.op.name, shape=list(n.shape), name=n.name,
                   attrs={k: _encode(v) for k, v in n.attrs.items()})
        if is_twin(n):
            g.nodes[i]["twin"] = True  # named for itself only (see expr.rename)
        for pos, a in enumerate(n.args):
            j = ids[id(a)]
            if g.has_edge(j, i):
                g.edges[j, i]["positions"].append(pos)
            else:
                g.add_edge(j, i, positions=[pos])
    return {"format": FORMAT, "version": VERSION, "single": single,
            "outputs": [ids[id(o)] for o in outs], "graph": _node_link_data(g)}


def save(exprs, path: str | os.PathLike) -> None:
    """Write an expression (or a list of them) to ``path`` as JSON (see the module doc)."""
    data = to_data(exprs)
    _check_path("save", path)
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))  # the C encoder: fast
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


# ------------------------------------------------------------------ load
def from_data(data: Any):
    """The expression (or list) that :func:`to_data` described; validates everything."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("load: not a symgrad file (no \"format\": \"symgrad\")")
    version = data.get("version")
    if not _int(version) or version != VERSION:  # (True == 1 and 1.0 == 1 in Python)
        raise ValueError(f"load: unsupported version {version!r} "
                         f"(this symgrad reads version {VERSION})")
    outputs, single = data.get("outputs"), data.get("single")
    if not isinstance(outputs, list) or not isinstance(single, bool) or (
            single and len(outputs) != 1):
        raise ValueError("load: \"outputs\" must be a list of node ids and \"single\" a bool")
    try:
        g = _node_link_graph(data.get("graph"))
    except (KeyError, TypeError, ValueError, AttributeError, nx.NetworkXError) as err:
        raise ValueError(f"load: the graph is not node-link data ({err})") from None
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        raise ValueError(f"load: node {cycle[0][0]!r} is on a cycle: "
                         + " -> ".join(repr(u) for u, _ in cycle) + f" -> {cycle[0][0]!r}")
    built: dict = {}
    for nid in nx.topological_sort(g):
        built[nid] = _build_node(g, nid, built)
    for o in outputs:
        if not _an_id(o) or o not in built:
            raise ValueError(f"load: output {o!r:.40} is not a node of the graph")
    res = [built[o] for o in outputs]
    return res[0] if single else res


def load(path: str | os.PathLike):
    """Read what :func:`save` wrote: an expression, or a list of them.

    Raises ValueError (naming the node) for an unknown op, a cycle, a wrong number of
    operands, a shape that does not fit or a bad name.
    """
    _check_path("load", path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None  # (open says why: no such file, no permission)
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        # a device or a pipe: /dev/zero was read until memory ran out, a FIFO waited forever
        raise ValueError(f"load: {os.fspath(path)!r} is not a file")
    with open(path, encoding="utf-8") as fh:
        try:
            data = json.load(fh, parse_constant=_no_constant)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"load: {os.fspath(path)!r} is not JSON ({err})") from None
        except RecursionError:
            raise ValueError(f"load: {os.fspath(path)!r} is nested too deeply to be a symgrad "
                             "file") from None
    return from_data(data)


def _check_path(what: str, path) -> None:
    """A file name; not an int, which open() would take as a file descriptor (and close)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: path must be a file name (a str or a path), got "
                        f"{type(path).__name__}")


def _no_constant(name: str):
    raise ValueError(f"load: {name} is not valid JSON")


def _build_node(g: nx.DiGraph, nid, built: dict) -> Expr:
    d = g.nodes[nid]
    opname = d.get("op")
    where = f"node {nid!r} ({opname})" if isinstance(opname, str) else f"node {nid!r}"
    if not d:  # networkx made it for an edge's end: the nodes list has no such id
        raise ValueError(f"load: {where}: an edge refers to it, but it is not in the nodes")
    if not isinstance(opname, str) or opname not in REGISTRY:
        raise ValueError(f"load: {where}: unknown op {opname!r:.40}")
    op = REGISTRY[opname]
    slots: dict[int, Expr] = {}
    for src, _, ed in g.in_edges(nid, data=True):
        pos = ed.get("positions")
        if not isinstance(pos, list) or not pos or not all(_int(p) for p in pos):
            raise ValueError(f"load: {where}: edge from {src!r} has no list of positions")
        for p in pos:
            if p in slots:
                raise ValueError(f"load: {where}: two operands in position {p}")
            slots[p] = built[src]
    if sorted(slots) != list(range(len(slots))):
        raise ValueError(f"load: {where}: operand positions {sorted(slots)} have a gap")
    args = tuple(slots[i] for i in range(len(slots)))
    if op.nargs is not None and len(args) != op.nargs:
        raise ValueError(f"load: {where}: {opname} takes {op.nargs} operands, got {len(args)}")
    raw = d.get("attrs", {})
    if not isinstance(raw, dict):
        raise ValueError(f"load: {where}: attrs is not an object")
    # exactly the op's attributes: an extra one made another node that printed the same (a
    # second variable x), a missing one a KeyError when the node was printed or evaluated
    for k in raw:
        if k not in op.attr_names:
            raise ValueError(f"load: {where}: {opname} has no attribute {k!r:.40}")
    for k in op.attr_names:
        if k not in raw:
            raise ValueError(f"load: {where}: {opname} needs the attribute {k!r}")
    if "axis" in raw and opname != "argmax":
        axis = _decode(raw["axis"], f"{where}, attribute 'axis'")
        if not isinstance(axis, tuple):
            raise ValueError(f"load: {where}: the axis of {opname} must be a tuple of axes, "
                             f"got {axis!r:.40}")
        if not axis and opname not in ("sum", "logsumexp"):  # both over no axis: the operand
            raise ValueError(f"load: {where}: the axis of {opname} names no axis")
    attrs = {}
    for k, v in raw.items():
        v = _decode(v, f"{where}, attribute {k!r:.40}")
        try:
            _check_attr(k, v, args)
        except ValueError as err:
            raise ValueError(f"load: {where}: {err}") from None
        attrs[k] = tuple(Check(*c) for c in v) if k == "checks" else v
    shape = d.get("shape")
    try:
        if not isinstance(shape, list):
            raise ValueError(f"shape {shape!r:.60} is not a list of sizes")
        stored = as_shape(shape, "shape")
        # (a constant as sg.const makes it: an integer or bool array read as float64, where
        # numpy computed exp of an int8 one in float16 and negated no bool one)
        n = F.const(attrs["value"]) if opname == "const" else \
            make_unnamed(op, args, attrs)  # (an unnamed node saved next to its named twin)
        if opname == "take":
            F.take(*args)  # sg.take's checks of a constant index (an integer, in range)
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise ValueError(f"load: {where}: {err}") from None
    if n.shape != stored:
        raise ValueError(f"load: {where}: the stored shape {fmt_shape(stored)} is not the "
                         f"shape {fmt_shape(n.shape)} that {opname} gives")
    name, twin = d.get("name"), d.get("twin", False)
    if not isinstance(twin, bool):
        raise ValueError(f"load: {where}: \"twin\" must be true or false")
    if name is not None:
        try:
            # a twin (simplify's result named like its output) names itself only: as .named,
            # reading it back made every later x**2 print as its name
            n = rename(n, name) if twin else n.named(name)
        except ValueError as err:
            raise ValueError(f"load: {where}: bad name: {err}") from None
    return n


# ------------------------------------------------------------------ networkx versions
# networkx 3.4 renamed node_link_data's and node_link_graph's ``link`` keyword ``edges``. (A
# fallback on TypeError hid the TypeErrors of bad data behind "unexpected keyword 'link'".)
_EDGES_KW = "edges" if "edges" in inspect.signature(nx.node_link_graph).parameters else "link"


def _node_link_data(g: nx.DiGraph) -> dict:
    return nx.node_link_data(g, **{_EDGES_KW: "edges"})


def _an_id(v) -> bool:
    """A node id: an int (not a bool, which equals 0 or 1) or a string."""
    return isinstance(v, str) or _int(v)


def _node_link_graph(data) -> nx.DiGraph:
    if not isinstance(data, dict) or data.get("directed") is not True or data.get("multigraph"):
        raise ValueError("a directed, simple graph is expected")
    # networkx keeps the last of two nodes with one id (and True is the id 1): check first
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list) or not all(isinstance(d, dict) for d in nodes):
        raise ValueError("\"nodes\" must be a list of objects")
    if not isinstance(edges, list) or not all(isinstance(e, dict) for e in edges):
        raise ValueError("\"edges\" must be a list of objects")
    seen = set()
    for d in nodes:
        nid = d.get("id")
        if not _an_id(nid):
            raise ValueError(f"node id {nid!r:.40} is not an int or a string")
        if nid in seen:
            raise ValueError(f"two nodes have the id {nid!r:.40}")
        seen.add(nid)
    g = nx.node_link_graph(data, directed=True, multigraph=False, **{_EDGES_KW: "edges"})
    for nid in g.nodes:
        if isinstance(nid, (list, dict, float)) or nid is None:
            raise ValueError(f"node id {nid!r:.40} is not an int or a string")
    return g
