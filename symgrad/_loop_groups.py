"""Which elementwise nodes of a graph run in one loop (for :mod:`symgrad.fused`).

Nodes of one loop shape are gathered into groups, with the sums over them, greedily and without
creating a cycle between a group and what it reads; each group becomes one numba kernel.
"""

from __future__ import annotations

from .expr import Expr


def fusible(n: Expr) -> bool:
    if n.ndim == 0:
        return False
    if n.op.name == "broadcast_to":
        return True
    if n.op.name == "outer":  # a[:, None] * b[None, :] for vectors: elementwise in the loop
        return n.ndim == 2 and n.args[0].ndim == 1 and n.args[1].ndim == 1
    return n.op.elementwise and n.op.kernel(["x"] * len(n.args), n, None) is not None


class Group:
    """Elementwise nodes of one loop shape, and the sums over them, computed in one loop."""

    def __init__(self, gid: int, shape: tuple):
        self.gid = gid
        self.shape = shape
        self.members: list[Expr] = []
        self.sums: list[Expr] = []


class LoopPlan:
    """Which nodes go into which group.

    Groups are merged greedily (a union-find over group ids). A group runs as one unit: all of
    its inputs before its loop, all of its outputs and sums after it. So a node may join a set
    of groups only if no path leads from one of them, through anything outside them (another
    group, a product, a sum), back into one of them or into the node: that would be a cycle.
    Paths are followed over groups: ``deps[g]`` holds the groups that group g reads from, each
    marked ``"m"`` (it reads one of their members directly) or ``"x"`` (through a sum or other
    nodes); ``front[node]`` holds the groups a node outside every group reads from.
    """

    def __init__(self, order: list[Expr]):
        self.parent: dict[int, int] = {}
        self.shape: dict[int, tuple] = {}
        self.deps: dict[int, set] = {}
        self.group_of: dict[int, int] = {}  # id(member) -> group id
        self.sum_of: dict[int, int] = {}  # id(sum node) -> id of the group it is computed in
        self.front: dict[int, frozenset] = {}  # id(other node) -> group ids it depends on
        for n in order:
            self._place(n)

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def _new(self, shape) -> int:
        g = len(self.parent)
        self.parent[g] = g
        self.shape[g] = shape
        self.deps[g] = set()
        return g

    def _member_group(self, n: Expr) -> int | None:
        g = self.group_of.get(id(n))
        return None if g is None else self.find(g)

    def _reads(self, a: Expr) -> list[tuple[int, str]]:
        """The groups that reading ``a`` depends on, with how."""
        g = self.group_of.get(id(a))
        if g is not None:
            return [(g, "m")]
        g = self.sum_of.get(id(a))
        if g is not None:
            return [(g, "x")]
        return [(h, "x") for h in self.front.get(id(a), ())]

    def _place(self, n: Expr) -> None:
        if n.op.name == "sum" and n.args[0].ndim > 0:
            g = self._member_group(n.args[0])
            if g is not None:  # accumulated in g's loop, ready after it
                self.sum_of[id(n)] = g
                return
        if fusible(n):
            g = self._join(n)
            self.group_of[id(n)] = g
            for a in n.args:
                self.deps[g].update(self._reads(a))
            return
        front = set()
        for a in n.args:
            front.update(h for h, _ in self._reads(a))
        self.front[id(n)] = frozenset(front)

    def _join(self, n: Expr) -> int:
        cands: list[int] = []
        for a in n.args:
            g = self._member_group(a)
            if g is not None and self.shape[g] == n.shape and g not in cands:
                cands.append(g)
        chosen: list[int] = []
        for g in cands:
            if self._mergeable(n, chosen + [g]):
                chosen.append(g)
        if not chosen:
            return self._new(n.shape)
        root = chosen[0]
        for g in chosen[1:]:
            self.parent[g] = root
            self.deps[root] |= self.deps.pop(g)
        return root

    def _reaches(self, starts, targets: set) -> bool:
        """Whether a group in ``starts`` is, or depends on, one of ``targets``."""
        stack = [self.find(g) for g in starts]
        seen: set = set()
        while stack:
            g = stack.pop()
            if g in targets:
                return True
            if g in seen:
                continue
            seen.add(g)
            stack.extend(self.find(h) for h, _ in self.deps[g])
        return False

    def _mergeable(self, n: Expr, groups: list[int]) -> bool:
        """Whether ``n`` and ``groups`` can run as one loop without a cycle."""
        gs = set(groups)
        edges = [rd for a in n.args for rd in self._reads(a)]
        if len(groups) > 1:
            edges += [e for g in groups for e in self.deps[g]]
        for h, how in edges:
            h = self.find(h)
            if h in gs:
                if how != "m":  # a sum of the loop itself, or a path back into it
                    return False
                continue
            if self._reaches([h], gs):
                return False
        return True

    def groups(self, order: list[Expr]) -> dict[int, Group]:
        out: dict[int, Group] = {}
        for n in order:
            if id(n) in self.sum_of:
                root = self.find(self.sum_of[id(n)])
            elif id(n) in self.group_of:
                root = self.find(self.group_of[id(n)])
            else:
                continue
            grp = out.setdefault(root, Group(root, self.shape[root]))
            (grp.sums if id(n) in self.sum_of else grp.members).append(n)
        return out
