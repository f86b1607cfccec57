"""Walking the DAG: topological order, uses, the networkx view.

Passes walk the operand tuples of the nodes directly (one Python loop, no recursion, so a chain
of depth 100,000 is fine); ``to_networkx`` gives the same graph as a networkx DiGraph for users
and for the graph algorithms networkx provides.
"""

from __future__ import annotations

from typing import Iterable

import networkx as nx

from .expr import Expr


def as_list(exprs, what: str | None = None) -> tuple[list, bool]:
    """(list of Expr, whether a single Expr was given); ``what`` names the caller in errors."""
    if isinstance(exprs, Expr):
        return [exprs], True
    pre = f"{what}: " if what else ""
    try:
        out = list(exprs)
    except TypeError:
        raise TypeError(f"{pre}expected an expression or a list of them, got "
                        f"{type(exprs).__name__}") from None
    for e in out:
        if not isinstance(e, Expr):
            raise TypeError(f"{pre}expected expressions, got {type(e).__name__}: {e!r:.60}")
    return out, False


def topo_order(outputs: Iterable[Expr]) -> list[Expr]:
    """Every node the outputs depend on, operands before users (iterative post-order DFS)."""
    if isinstance(outputs, Expr):
        outputs = (outputs,)
    order: list[Expr] = []
    seen: set[int] = set()
    for root in outputs:
        if not isinstance(root, Expr):
            raise TypeError(f"topo_order: expected expressions, got {type(root).__name__}")
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, iter(root.args))]
        while stack:
            node, it = stack[-1]
            for a in it:
                if id(a) not in seen:
                    seen.add(id(a))
                    stack.append((a, iter(a.args)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def use_counts(order: list[Expr]) -> dict[int, int]:
    """id(node) -> how many operand slots refer to it."""
    uses: dict[int, int] = {}
    for n in order:
        for a in n.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    return uses


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
