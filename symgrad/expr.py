"""Expressions: immutable, hash-consed nodes of a computation DAG.

Every :class:`Expr` is one node: an op (from :mod:`symgrad.ops`), its operands in order, its
attributes and its shape. Building the same op on the same operands twice returns the same node
(hash-consing), so shared subexpressions are shared from the start. ``e.graph`` is a networkx view
of everything ``e`` depends on, built on demand and cached.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from .shapes import check_identifier, fmt_shape

if TYPE_CHECKING:  # pragma: no cover
    from .ops.base import Op

# (op.tag, id(arg)..., [attrs key]) -> weak reference to the node. A live node holds its operands,
# so the ids in the key of a live node belong to live objects; an entry whose node has died is a
# miss (and is overwritten), whatever object now has those ids. Dead entries are swept in bulk
# when the table has doubled since the last sweep: no per-node callback, amortised O(1) per node.
# Keys hold numbers and strings only, so the garbage collector stops tracking them after their
# first collection (fewer long-lived objects for its full collections to walk).
_TABLE: dict[tuple, weakref.ref] = {}
_ref = weakref.ref
_sweep_at = 4096
# key -> weak reference to the node a named twin replaced in _TABLE (see _named): when the
# twin dies while that node lives, constructions return that node again, not a third one
_SHADOWED: dict[tuple, weakref.ref] = {}
# taken only where an entry is dead (replacing it, sweeping): of two threads that both find
# an entry dead, the second must see the first's node, or each keeps a node of its own
_LOCK = threading.RLock()


def _sweep() -> None:
    global _sweep_at
    with _LOCK:
        # a snapshot: another thread may add entries meanwhile (building graphs in threads
        # raised "dictionary changed size during iteration" here). Even list() of the items can
        # be cut short, where a garbage collection it triggers runs finalizers that switch
        # threads: then it is taken again
        while True:
            try:
                items = list(_TABLE.items())
                break
            except RuntimeError:
                continue
        dead = [(k, r) for k, r in items if r() is None]
        for k, r in dead:
            if _TABLE.get(k) is r and _revive(k) is None:  # not replaced by a live node since
                _TABLE.pop(k, None)
        for k in [k for k, r in list(_SHADOWED.items()) if r() is None]:
            _SHADOWED.pop(k, None)
        _sweep_at = max(4096, 2 * len(_TABLE))


def _revive(key: tuple) -> Expr | None:
    """The live node a dead named twin had replaced under ``key``, put back (under _LOCK)."""
    r = _SHADOWED.get(key)
    if r is None:
        return None
    e = r()
    if e is None:
        _SHADOWED.pop(key, None)
        return None
    _TABLE[key] = r
    return e


def _lookup(key: tuple) -> Expr | None:
    r = _TABLE.get(key)
    return None if r is None else r()


def _store(key: tuple, e: Expr) -> None:
    _TABLE[key] = _ref(e)
    if len(_TABLE) > _sweep_at:
        _sweep()


def attrs_key(attrs: dict | None) -> tuple:
    if not attrs:
        return ()
    return tuple(sorted(attrs.items()))


class _Fields:
    """A node's fields, set where it is made (make, new_node); its class is then Expr,
    whose ``__setattr__`` refuses them: a node is shared by every construction of its value."""

    # _origin: set on the results of grad/jacobian/hessian only (see autodiff.origin)
    __slots__ = ("op", "args", "attrs", "shape", "_name", "checks", "_graph", "_origin",
                 "__weakref__")


_CACHES = frozenset(("_graph", "_origin"))  # (computed once when asked for: assignable)


class Expr(_Fields):
    """A node of a symgrad graph. Build with the functions of :mod:`symgrad`, not directly."""

    __slots__ = ()

    def __setattr__(self, key: str, value) -> None:
        if key in _CACHES:
            object.__setattr__(self, key, value)
            return
        _refuse_assignment(key)

    def __delattr__(self, key: str) -> None:
        _refuse_assignment(key)

    __array_ufunc__ = None  # numpy arrays defer to our operators: ``arr * x`` builds a node
    __array_priority__ = 1000

    def __array_function__(self, func, types, args, kwargs):
        """numpy's functions (``np.sum(e)``, ``np.dot(w, e)``) build the symgrad node; the
        others raise a TypeError that names them (see :mod:`symgrad.numpy_functions`)."""
        from .numpy_functions import array_function

        return array_function(func, args, kwargs)

    op: Op
    args: tuple
    attrs: dict
    shape: tuple
    name: str | None
    checks: tuple

    # ---------------------------------------------------------------- structure
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def graph(self) -> nx.DiGraph:
        """A networkx DiGraph of every node this expression depends on (cached).

        Nodes are the Expr objects, with data ``op`` (the op's name), ``shape``, ``name``,
        ``args`` (the operands in order) and ``attrs``; an edge goes from each operand to its user
        and lists the operand ``positions``.

        The graph is frozen (``networkx.freeze``): it is cached on a node that every equal
        construction shares, so an edit would change the graph (and node count) of expressions
        built later. Its node and edge data are shared the same way (freezing does not stop
        an edit of them): ``e.graph.copy()`` is a graph of one's own to edit.
        """
        g = self._graph
        if g is None:
            from .graph import to_networkx

            g = self._graph = nx.freeze(to_networkx([self]))
        return g

    @property
    def name(self) -> str | None:
        """The name printing shows for this value (given with :meth:`named`), or None."""
        return self._name

    def named(self, name: str) -> Expr:
        """An expression equal to this one that printing shows as ``name`` wherever it is used
        (``str(e.named("phi") * 2)`` is ``2*phi``); printed on its own, it shows its
        definition.

        Later constructions of the same op on the same operands return the named node, so the
        name also appears in derivatives that reuse this value.
        """
        check_identifier(name, "named: name")
        return _named(self, name)

    def __repr__(self) -> str:
        from .printing import to_str

        return f"Expr({to_str(self)!r}, shape={fmt_shape(self.shape)})"

    def __str__(self) -> str:
        from .printing import to_str

        return to_str(self)

    def _repr_latex_(self) -> str:
        from .printing import to_latex

        return "$" + to_latex(self) + "$"

    def _repr_svg_(self) -> str | None:
        """The graph as SVG for Jupyter when Graphviz is installed, else None (see sg.draw)."""
        from .draw import svg_or_none

        return svg_or_none(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "the truth value of a symgrad expression is undefined; compare nodes with "
            "'is' or '==' (node identity), or evaluate the expression first")

    __hash__ = object.__hash__

    # A symbolic value has no number to give; Python's conversions would otherwise fail with
    # a message that does not say why. (numpy's object arrays of expressions stay possible:
    # ``np.array([x, y])`` holds the nodes, and ``np.sum`` of it adds them.)
    def __float__(self) -> float:
        raise TypeError(_no_value(self, "a float"))

    def __int__(self) -> int:
        raise TypeError(_no_value(self, "an int"))

    def __complex__(self) -> complex:
        raise TypeError(_no_value(self, "a complex number"))

    def __index__(self) -> int:
        raise TypeError(_no_value(self, "an index"))

    # ---------------------------------------------------------------- copying and pickling
    # A node is immutable and stands for its value by identity (hash-consing: building the
    # same op on the same operands returns this very node, and a variable is its name). A copy
    # would be a second node for the same value, and a deep copy a graph of new variables that
    # sg.grad(copy, x) finds independent of x. So copying returns the node itself, and
    # pickling writes the graph by value (sg.save's data) and rebuilds it through the
    # constructors: in this process the same nodes, in another one equal nodes on variables
    # of the same names.
    def __copy__(self) -> Expr:
        return self

    def __deepcopy__(self, memo: dict) -> Expr:
        return self

    def __reduce__(self) -> tuple:
        from .serialize import from_data, to_data

        return from_data, (to_data(self),)

    # ---------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Expr:
        return _f.add(self, other)

    def __radd__(self, other: Any) -> Expr:
        return _f.add(other, self)

    def __sub__(self, other: Any) -> Expr:
        return _f.sub(self, other)

    def __rsub__(self, other: Any) -> Expr:
        return _f.sub(other, self)

    def __mul__(self, other: Any) -> Expr:
        return _f.mul(self, other)

    def __rmul__(self, other: Any) -> Expr:
        return _f.mul(other, self)

    def __truediv__(self, other: Any) -> Expr:
        return _f.div(self, other)

    def __rtruediv__(self, other: Any) -> Expr:
        return _f.div(other, self)

    def __pow__(self, other: Any) -> Expr:
        return _f.power(self, other)

    def __rpow__(self, other: Any) -> Expr:
        return _f.power(other, self)

    def __neg__(self) -> Expr:
        return _f.neg(self)

    def __pos__(self) -> Expr:
        return self

    def __abs__(self) -> Expr:
        return _f.abs(self)

    def __matmul__(self, other: Any) -> Expr:
        return _f.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Expr:
        return _f.matmul(other, self)

    @property
    def T(self) -> Expr:
        """The transpose (numpy's ``.T``: all axes reversed)."""
        return _f.transpose(self)

    # numpy's methods of the same names (the symgrad functions they call say more)
    def sum(self, axis=None, keepdims: bool = False) -> Expr:
        return _f.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Expr:
        return _f.mean(self, axis=axis, keepdims=keepdims)

    def dot(self, other: Any) -> Expr:
        return _f.dot(self, other)

    def transpose(self, *axes) -> Expr:
        """numpy's ``a.transpose()``, ``a.transpose(1, 0, 2)`` or ``a.transpose((1, 0, 2))``."""
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return _f.transpose(self, axes or None)

    def reshape(self, *shape) -> Expr:
        """numpy's ``a.reshape(3, 2)`` or ``a.reshape((3, 2))``; one size may be -1."""
        if len(shape) == 1 and not isinstance(shape[0], (int, str, np.integer)):
            shape = shape[0]
        return _f.reshape(self, shape)


def _refuse_assignment(key: str) -> None:
    if key not in _Fields.__slots__ and key not in ("name", "__class__"):
        raise AttributeError(f"'Expr' object has no attribute {key!r}")
    # nodes are shared (hash-consing): renaming or reshaping one in place changed every later
    # build of it (x.shape = (2,) made every sg.scalar("x") a vector)
    how = {"name": "use e = e.named(...)", "shape": "use sg.reshape(e, shape)"}.get(
        key, "build a new expression")
    raise AttributeError(f"an expression's {key} cannot be assigned (nodes are shared by "
                         f"every construction of the same value); {how}")


class Attrs(dict):
    """A node's attributes: a dict that refuses changes. Nodes are shared (``sg.scalar("x")``
    twice is one node) and found again by their attributes, so changing one in place would
    change every expression that uses the node."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise TypeError("a node's attributes cannot be changed (nodes are shared): build a new "
                        "node, e.g. sg.scalar('q') for another name")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):  # (pickle would otherwise fill an empty one item by item)
        return (Attrs, (dict(self),))


_new = object.__new__
# a build-time rule's answer "no rewrite, and no later rule either": constants whose value
# does not fold (inf - inf is nan, which the rule a - a = 0 made 0)
AS_BUILT: Any = object()
_NO_ATTRS: dict = Attrs()  # the attrs of every node without attributes (shared)


def new_node(op: Op, args: tuple, attrs: dict, shape: tuple, checks: tuple = (),
             name: str | None = None) -> Expr:
    if attrs.__class__ is not Attrs:
        attrs = Attrs(attrs) if attrs else _NO_ATTRS
    e = object.__new__(_Fields)
    e.op = op
    e.args = args
    e.attrs = attrs
    e.shape = shape
    e._name = name
    e.checks = checks
    e._graph = None
    e.__class__ = Expr
    return e


def node_key(op: Op, args: tuple, attrs: dict | None) -> tuple:
    if attrs:
        return (op.tag, *map(id, args), op.attrs_key(attrs))
    return (op.tag, *map(id, args))


def make(op: Op, args: tuple, attrs: dict | None = None) -> Expr:
    """The node ``op(*args, **attrs)``: an existing equal node, a rewritten one, or a new one."""
    # the key spelt out for one and two operands: (tag, *map(id, args)) builds a list and a
    # map iterator first, three times the cost (a few hundred ns on every node built)
    if attrs:
        key = (op.tag, *map(id, args), op.attrs_key(attrs))
    elif len(args) == 2:
        key = (op.tag, id(args[0]), id(args[1]))
    elif len(args) == 1:
        key = (op.tag, id(args[0]))
    else:
        key = (op.tag, *map(id, args))
    r = _TABLE.get(key)
    if r is not None:
        hit = r()
        if hit is not None:
            return hit
    if not attrs:
        attrs = _NO_ATTRS
    elif attrs.__class__ is not Attrs:
        attrs = Attrs(attrs)  # (the caller's dict stays the caller's)
    k = op.same_shape_nargs
    if k and k == len(args) and (k == 1 or args[0].shape == args[1].shape):
        shape, checks = args[0].shape, ()  # Op.infer's common case, without the call
    else:
        shape, checks = op.infer(args, attrs)
    # a node carries every check of its graph (most graphs have none: spelt out for one and
    # two operands, as the key above, since this runs for every node built)
    n = len(args)
    if (args[0].checks or args[1].checks) if n == 2 else \
            (args[0].checks if n == 1 else n > 2 and any(a.checks for a in args)):
        # (a guard's own first: f's checks on a derivative name the op the user wrote)
        checks = _graph_checks(checks, args, own_first=op.name == "guard")
        for b in args:
            if b.op.name == "guard":  # built on the guarded value, guarded on top
                return _on_guarded(op, args, attrs, checks)
    for rule in (op.rules if shape else op.scalar_rules):
        r = rule(args, attrs, shape)
        if r is not None:
            if r is AS_BUILT:
                break
            if checks and r.checks is not checks:
                return keep_checks(r, checks)
            return r
    e = _new(_Fields)  # new_node, inlined: this is the hottest path of every pass
    e.op = op
    e.args = args
    e.attrs = attrs
    e.shape = shape
    e._name = None
    e.checks = checks
    e._graph = None
    e.__class__ = Expr
    w = _ref(e)
    prev = _TABLE.setdefault(key, w)  # one C call: of two threads making this node, one wins
    if prev is not w:
        hit = prev()
        if hit is not None:
            return hit  # another thread made it first: one node per value, as hash-consing says
        with _LOCK:  # a dead entry: replaced once, by one thread
            cur = _TABLE.get(key)
            hit = None if cur is None else cur()
            if hit is None:
                hit = _revive(key) if _SHADOWED else None
            if hit is not None:
                return hit
            _TABLE[key] = w
    if len(_TABLE) > _sweep_at:
        _sweep()
    return e


def _graph_checks(own: tuple, args: tuple, own_first: bool = False) -> tuple:
    """The checks of a node's graph, in the order they are met evaluating it: its operands'
    (in order, each listed once), then its own (``own_first``: its own, then its operands')."""
    out = ()
    if own_first:
        out, own = tuple(dict.fromkeys(own)), ()
    for a in args:
        c = a.checks
        if not c or c is out:
            continue
        if not out or (len(c) > len(out) and c[:len(out)] == out):
            out = c  # shared, not copied (lists grow by appending: often one is the other's start)
        elif out[:len(c)] != c:
            have = as_check_set(out)
            extra = tuple(x for x in c if x not in have)
            if extra:
                out = out + extra
    if own:
        have = as_check_set(out)
        extra = tuple(x for x in dict.fromkeys(own) if x not in have)
        if extra:
            out = out + extra
    return out


def _on_guarded(op, args: tuple, attrs, checks: tuple) -> Expr:
    """``op`` of operands some of which are guards: built on the values they guard, so that
    every rule sees them (log of a guarded sigmoid is still the stable form, 0 + x still x),
    and guarded once, on top. A guard is thus never an operand: at most one per expression."""
    bare = tuple(map(unguard, args))
    # (the guards' checks, the ops the user wrote, ahead of those a rewrite of the op built
    # on their values may keep: sum(0*a + b) named the broadcast 0*a + b became, not the add)
    return keep_checks(make(op, bare, None if attrs is _NO_ATTRS else attrs), checks,
                       first=True)


# a list of checks -> the same as a set, for the few long lists a graph of many symbolic sizes
# shares among its nodes (one membership test per check, not a scan of the list)
_SETS: dict[int, tuple] = {}


def as_check_set(checks: tuple):
    if len(checks) < 8:
        return checks
    hit = _SETS.get(id(checks))
    if hit is not None and hit[0] is checks:
        return hit[1]
    if len(_SETS) >= 256:
        try:
            _SETS.pop(next(iter(_SETS)), None)  # the oldest
        except (RuntimeError, StopIteration):  # (another thread changed it meanwhile)
            pass
    s = frozenset(checks)
    _SETS[id(checks)] = (checks, s)  # holds the tuple: its id stays its own
    return s


def unguard(e):
    """The value a guard holds (see ops.Guard), for an expression given where a value or a
    variable is meant (``wrt``, inputs, keys of values); anything else as it is."""
    return e.args[0] if isinstance(e, Expr) and e.op.name == "guard" else e


def checks_of(outputs) -> tuple:
    """Every size check the graphs of ``outputs`` leave for call time, once each."""
    return _graph_checks((), tuple(outputs))


def keep_checks(r: Expr, checks: tuple, first: bool = False) -> Expr:
    """``r``, wrapped in a guard holding those of ``checks`` its graph lacks (see ops.Guard).

    Used where a rewrite replaces a graph by ``r``: build-time rules here, and passes (grad,
    simplify) for their results. A call whose sizes do not fit then still fails. ``first``:
    where ``r`` is a guard already, ``checks`` (in their order) go before its own."""
    have = as_check_set(r.checks)
    missing = tuple(c for c in checks if c not in have) if have else checks
    if not missing:
        return r
    from .ops import REGISTRY

    if r.op.name == "guard":  # one guard holds them all
        if not first:
            return make(r.op, r.args, {"checks": r.attrs["checks"] + missing})
        own = as_check_set(r.attrs["checks"])
        ahead = tuple(c for c in checks if c in own or c in missing)
        rest = tuple(c for c in r.attrs["checks"] if c not in as_check_set(ahead))
        return make(r.op, r.args, {"checks": ahead + rest})
    return make(REGISTRY["guard"], (r,), {"checks": missing})


def _named(e: Expr, name: str, canonical: bool = True) -> Expr:
    """``e`` under ``name``; with ``canonical`` the named node is what later constructions of
    the value return (``e.named``), else it is a twin that leaves them be (see rename)."""
    from .ops import leaves

    if e.op.name == "guard" and e.args[0].name != name:
        # the value takes the name too: what is built on a guarded value is built on the value
        # (see _on_guarded), and shows its name there
        e = make(e.op, (_named(e.args[0], name),), e.attrs)

    if e.op.leaf:
        # a leaf keeps its identity: an alias node carries the name
        return make(leaves.ALIAS, (e,), {"alias": name})
    if e.op is leaves.ALIAS:
        # a leaf shown under another name: the leaf under this name (a named twin of the alias
        # would become what later x.named(old name) returns, printing the new name)
        return make(leaves.ALIAS, e.args, {"alias": name})
    if e.name == name:
        return e
    base = node_key(e.op, e.args, e.attrs)
    key = base + ("__name__", name)
    with _LOCK:  # two threads naming one value get one named node (as make gives one node)
        hit = _lookup(key)
        if hit is not None:
            if canonical:
                _store(base, hit)
            return hit
        n = new_node(e.op, e.args, e.attrs, e.shape, e.checks, name)
        _store(key, n)
        if not canonical:
            return n
        old = _TABLE.get(base)
        first = None if old is None else old()
        if first is not None and first.name is None and base not in _SHADOWED:
            _SHADOWED[base] = old  # the unnamed node of this value, back when its twins die
        _store(base, n)  # the named node becomes the canonical one for this value
    return n


def rename(e: Expr, name: str) -> Expr:
    """``e`` under ``name``, for a pass that gives its result an output's name (simplify): the
    value keeps what later constructions of it return. simplify of ``(h*h/h).named("out")`` is
    h's value named out, and made every later sin(h) read sin(out), and of
    ``exp(2 log(x)).named("out")`` x**2 named out, every later x**2 read out."""
    if e.op.name == "guard":
        return make(e.op, (rename(e.args[0], name),), e.attrs)
    if e.op.leaf or e.op.name == "alias":
        return e.named(name)  # (an alias node: the leaf keeps its own name)
    check_identifier(name, "name")
    return _named(e, name, canonical=False)


def make_unnamed(op: Op, args: tuple, attrs: dict | None = None) -> Expr:
    """``make``, but never a named twin: the value as it was built before any naming.

    After ``h = s.named("h")``, building ``s``'s op on its operands returns ``h``; a graph
    that holds both ``s`` and ``h`` (``s * h``) is loaded back (sg.load) with ``s`` unnamed,
    not as ``h * h``. That is ``s`` itself while it lives, else a new unnamed node."""
    n = make(op, args, attrs)
    if n.name is None or n.op.leaf:
        return n
    key = node_key(op, args, attrs)
    if node_key(n.op, n.args, n.attrs) != key:
        return n  # a rule's result that happens to be named: what the value is
    with _LOCK:
        r = _SHADOWED.get(key)
        e = None if r is None else r()
    if e is not None:
        return e
    return new_node(n.op, n.args, n.attrs, n.shape, n.checks)


def is_twin(e: Expr) -> bool:
    """Whether ``e`` is a named node that later constructions of its value do not return (a
    twin made by :func:`rename`, or a ``.named`` node another name has since replaced)."""
    if e.name is None or e.op.leaf or e.op.name == "alias":
        return False
    return _lookup(node_key(e.op, e.args, e.attrs)) is not e


def canonical(e: Expr) -> Expr:
    """The node that constructing ``e``'s op on ``e``'s operands returns now (a named twin)."""
    if e.op.leaf:
        return e
    hit = _lookup(node_key(e.op, e.args, e.attrs))
    return e if hit is None else hit


from . import functions as _f  # noqa: E402  (operators call the public functions)


def _no_value(e: Expr, what: str) -> str:
    from .printing import to_str

    text = to_str(e)
    if len(text) > 60:
        text = text[:57] + "..."
    return (f"cannot convert the symbolic expression {text} (shape {fmt_shape(e.shape)}) to "
            f"{what}: it has no value until evaluated; use sg.evaluate(expr, values) or "
            "sg.compile(expr, inputs)")
