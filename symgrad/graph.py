"""Walking the DAG: topological order, uses, the networkx view.

Passes walk the operand tuples of the nodes directly (one Python loop, no recursion, so a chain
of depth 100,000 is fine); ``to_networkx`` gives the same graph as a networkx DiGraph for users
and for the graph algorithms networkx provides.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Iterable

import networkx as nx

from .expr import Expr


def as_list(exprs, what: str | None = None) -> tuple[list, bool]:
    """(list of Expr, whether a single Expr was given); ``what`` names the caller in errors."""
    if isinstance(exprs, Expr):
        return [exprs], True
    pre = f"{what}: " if what else ""
    if isinstance(exprs, (set, frozenset)):  # a set's order is not the caller's
        raise TypeError(f"{pre}expected an expression or a list of them, got a "
                        f"{type(exprs).__name__}, whose order is arbitrary (use a list)")
    try:
        out = list(exprs)
    except TypeError:
        raise TypeError(f"{pre}expected an expression or a list of them, got "
                        f"{type(exprs).__name__}") from None
    for e in out:
        if not isinstance(e, Expr):
            raise TypeError(f"{pre}expected expressions, got {type(e).__name__}: {e!r:.60}")
    return out, False


def row_sizes(exprs) -> list[int] | None:
    """The lengths of the rows of a list of lists (what ``sg.hessian`` of a list gives), or
    None for anything else."""
    if isinstance(exprs, (list, tuple)) and exprs and all(
            isinstance(r, (list, tuple)) for r in exprs):
        return [len(r) for r in exprs]
    return None


def in_rows(flat, sizes: list[int], kind: type = list):
    """``flat`` cut into rows of ``sizes`` (lists, or tuples with ``kind=tuple``)."""
    out, i = [], 0
    for k in sizes:
        out.append(kind(flat[i:i + k]))
        i += k
    return kind(out)


def topo_order(outputs: Iterable[Expr]) -> list[Expr]:
    """Every node the outputs depend on, operands before users (iterative post-order DFS: one
    loop, no recursion, so a chain of depth 100,000 is fine)."""
    return walk(as_list(outputs, "topo_order")[0])[0]


def walk(outputs: Iterable[Expr]) -> tuple[list[Expr], dict[int, int]]:
    """(topological order, id(node) -> how many operand slots refer to it), in one pass."""
    if not gc.isenabled():
        return _walk(outputs)
    try:  # (disabled inside the try: an interrupt just after it still enables it again)
        gc.disable()  # the stack of a deep graph holds many young objects: see no_gc
        return _walk(outputs)
    finally:
        gc.enable()


def _walk(outputs: Iterable[Expr]) -> tuple[list[Expr], dict[int, int]]:
    if isinstance(outputs, Expr):
        outputs = (outputs,)
    uses: dict[int, int] = {}
    order: list[Expr] = []
    get, emit = uses.get, order.append
    for root in outputs:
        if not isinstance(root, Expr):
            raise TypeError(f"topo_order: expected expressions, got {type(root).__name__}")
        if id(root) in uses:
            continue
        uses[id(root)] = 0
        nodes, its = [root], [iter(root.args)]  # the path from the root, and where each stands
        push, push_it, pop, pop_it = nodes.append, its.append, nodes.pop, its.pop
        while its:
            for a in its[-1]:
                ia = id(a)
                c = get(ia)
                if c is None:
                    uses[ia] = 1
                    args = a.args
                    if args:
                        push(a)
                        push_it(iter(args))
                        break
                    emit(a)  # a leaf: its place in the post-order is here
                else:
                    uses[ia] = c + 1
            else:
                pop_it()
                emit(pop())
    return order, uses


def import_module(name: str):
    """``importlib.import_module(name)``, with the collector on while a module is first
    imported. A library may keep ``gc.isenabled()`` at import: dask's ``disable_gc``
    decorator restores what it read then after each call, so dask imported during one of
    symgrad's pauses (``sg.compile(..., backend="dask")`` first in a process) turned the
    collector off for good at its first slicing."""
    if name in sys.modules or gc.isenabled():
        return importlib.import_module(name)
    gc.enable()
    try:
        return importlib.import_module(name)
    finally:
        gc.disable()


class no_gc:  # noqa: N801  (used like a function: ``with no_gc():``)
    """Pause Python's cyclic garbage collector while a pass builds many objects.

    Graph passes create nodes, tuples and dicts by the thousand and free no cycles; the
    collector's generational scans would otherwise run over the growing graph again and again
    (measured: 3x slower passes at 10^5 nodes). Reference counting still frees everything.
    A class, not a generator-based context manager: entering and leaving cost a few hundred
    nanoseconds, and every derivative and compile pays them several times.
    """

    __slots__ = ("was",)

    def __enter__(self) -> None:
        self.was = gc.isenabled()
        if self.was:
            try:
                gc.disable()
            except BaseException:  # a KeyboardInterrupt landing just after it: __exit__
                gc.enable()  # would not run, and the collector stayed off for good
                raise

    def __exit__(self, *exc) -> None:
        if self.was:
            gc.enable()


def use_counts(order: list[Expr]) -> dict[int, int]:
    """id(node) -> how many operand slots refer to it."""
    uses: dict[int, int] = {}
    for n in order:
        for a in n.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    return uses


def walk_upto(outputs: Iterable[Expr], limit: int) -> list[Expr] | None:
    """The nodes of the outputs' graph (in no particular order) if it has at most ``limit``
    nodes, else None; stops as soon as it has seen more (cheap on a big graph)."""
    seen: set[int] = set()
    stack: list[Expr] = []
    for r in outputs:
        if id(r) not in seen:
            seen.add(id(r))
            stack.append(r)
    out: list[Expr] = []
    while stack:
        n = stack.pop()
        out.append(n)
        if len(seen) > limit:
            return None
        for a in n.args:
            if id(a) not in seen:
                seen.add(id(a))
                stack.append(a)
    if len(seen) > limit:
        return None
    return out


def larger_than(outputs: Iterable[Expr], limit: int) -> set[int]:
    """ids of the nodes (of the outputs' graph) whose own graph has more than ``limit`` nodes.

    A node with such an operand is one too, so only nodes whose operands are all small are
    walked (each at most ``limit`` nodes deep): linear in the graph, not in outputs x nodes.
    """
    big: set[int] = set()
    for n in walk(outputs)[0]:
        for a in n.args:
            if id(a) in big:
                big.add(id(n))
                break
        else:
            if n.args and walk_upto([n], limit) is None:
                big.add(id(n))
    return big


def count_nodes(exprs) -> int:
    """Number of distinct nodes the expressions depend on (the node count of their graph)."""
    outs, _ = as_list(exprs, "count_nodes")
    return len(topo_order(outs))


def variables(exprs) -> list[Expr]:
    """The variables the expressions depend on, in order of first appearance."""
    outs, _ = as_list(exprs, "variables")
    return [n for n in topo_order(outs) if n.op.name == "var"]


def to_networkx(outputs: Iterable[Expr]) -> nx.DiGraph:
    """A networkx DiGraph of the outputs and everything they depend on."""
    g = nx.DiGraph()
    for n in topo_order(as_list(outputs, "to_networkx")[0]):
        g.add_node(n, op=n.op.name, shape=n.shape, name=_display_name(n), args=n.args,
                   attrs=dict(n.attrs))
        for pos, a in enumerate(n.args):
            if g.has_edge(a, n):
                g.edges[a, n]["positions"].append(pos)
            else:
                g.add_edge(a, n, positions=[pos])
    return g


def _display_name(n: Expr) -> str | None:
    if n.op.name == "var":
        return n.attrs["vname"]
    if n.op.name == "alias":
        return n.attrs["alias"]
    return n.name
