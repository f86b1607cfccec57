"""``sg.explain``: the chain-rule steps that produce a gradient, the way a lecture writes them.

The trace re-derives the gradient by reverse mode over the forward graph, with every op's own
derivative rule (``vjp``), but stops at the values a person would name: the function, the
variables, every named node's argument (its pre-activation, ``mu_pre`` for ``mu =
sigmoid(mu_pre)``), and every value used more than once. For each of those it prints

    delta_v = <the sum over v's users of their local derivative rules>   [the ops passed]
            = <that, with the deltas filled in and simplified>

where ``delta_v`` is the derivative of the function with respect to ``v`` (in the same layout as
``v``). For the lecture's vector MLP these lines are the backprop delta recursion. When the
function depends on a scalar variable along one chain of scalars, the chain rule is also written
as a product of local derivatives, ``dC/dw = dC/dmu * dmu/d(mu_pre) * d(mu_pre)/dw``.

The gradient pass itself differentiates numerically stable forms (``bce(sigmoid(z), y)`` as
``softplus(z) - y*z``); the trace follows the expression as written, so its steps are the
textbook ones; both give the same gradient.
"""

from __future__ import annotations

import io
import itertools
import re
import sys
from dataclasses import dataclass, field
from typing import IO

from . import functions as F
from .autodiff import fit_cotangent, jacobian, origin
from .errors import NonDifferentiableError
from .expr import Expr, make, new_node, unguard
from .graph import _display_name, as_list, count_nodes, topo_order
from .ops.leaves import tex_name
from .printing import latex, to_latex, to_str
from .rewrite import rebuild
from .shapes import check_identifier, fmt_shape
from .simplify import simplify

# ops whose (first) operand is a "pre-activation" worth a name of its own
ACTIVATIONS = {"sigmoid", "tanh", "relu", "softplus", "exp", "log", "sqrt", "sin", "cos", "abs",
               "softmax", "log_softmax", "logsumexp"}
_ADDITIVE = {"add", "sub", "neg", "tanh_deriv", "bce"}  # need parentheses in a product

_TOKEN = re.compile(r"sgtok(\d+)x")
_TEX_TOKEN = re.compile(r"\\mathrm\{sgtok(\d+)x\}")


_TOKENS = itertools.count()


class _Display:
    """Prints expressions with chosen nodes shown under chosen labels (text and LaTeX).

    Each labelled node is replaced by a placeholder variable (a token) before printing, and the
    token by the label after, so the user's graph is never renamed.
    """

    def __init__(self) -> None:
        self.labels: dict[int, tuple[str, str]] = {}  # token number -> (text, tex)
        self.node_tok: dict[int, Expr] = {}
        self.alive: list[Expr] = []
        # ids of the named nodes whose names the derivation defines (those of f's graph); a
        # name given elsewhere (names are global: a derivative may hold a node named in
        # another cell) shows its formula, where it read as a name never defined here
        self.named_ok: set[int] | None = None

    def token(self, text: str, tex: str, shape: tuple) -> Expr:
        # numbered across explanations: a value built on one explanation's tokens (and named
        # there, as phi) is never what another explanation builds on its own
        k = next(_TOKENS)
        self.labels[k] = (text, tex)
        tok = F.tensor(f"sgtok{k}x", shape)
        self.alive.append(tok)  # tokens are looked up by id: keep them from being collected
        return tok

    def bind(self, n: Expr, text: str, tex: str) -> None:
        self.node_tok[id(n)] = self.token(text, tex, n.shape)

    def tokenize(self, e: Expr, keep_root: bool = False) -> Expr:
        """``e`` with every labelled node replaced by its token (the root kept if asked)."""
        new: dict[int, Expr] = {}
        ok = self.named_ok
        for n in topo_order([e]):
            tok = self.node_tok.get(id(n))
            if tok is not None and not (keep_root and n is e):
                new[id(n)] = tok
                continue
            args = tuple(new[id(a)] for a in n.args)
            m = n
            if ok is not None and n.name is not None and n.args and id(n) not in ok:
                # shown by its formula: an unnamed copy, for printing only (outside the
                # hash-consing table, where the named node is the value's own)
                m = new_node(n.op, args, n.attrs, n.shape, n.checks)
            elif any(x is not y for x, y in zip(args, n.args)):
                m = make(n.op, args, n.attrs)
                if n.name is not None and m.op is n.op and m.name is None and n is not e:
                    m = m.named(n.name)
            new[id(n)] = m
        return new[id(e)]

    def text(self, e: Expr, definition: bool = False) -> str:
        if e.name is not None and not definition:
            return e.name
        return _TOKEN.sub(lambda m: self.labels[int(m.group(1))][0], to_str(e))

    def tex(self, e: Expr, definition: bool = False) -> str:
        if e.name is not None and not definition:
            return tex_name(e.name)
        s = _TEX_TOKEN.sub(lambda m: self.labels[int(m.group(1))][1], latex(e))
        return _TOKEN.sub(lambda m: self.labels[int(m.group(1))][1], s)

    def both(self, e: Expr) -> tuple[str, str]:
        """Text and LaTeX of ``e`` (already tokenized)."""
        return self.text(e), self.tex(e)


@dataclass
class Step:
    """One line of the trace: ``lhs = formula`` (in earlier deltas) ``= value`` (filled in)."""

    lhs: str
    formula: str
    value: str | None
    ops: list[str]
    tex_lhs: str
    tex_formula: str
    tex_value: str | None
    expr: Expr | None = None  # the value as an expression of the forward graph


@dataclass
class Explanation:
    """The trace of a derivation; ``str()`` is the text, ``.latex`` the LaTeX (aligned)."""

    title: str
    forward: list[tuple[str, str, str, str]]  # (label, definition, tex label, tex definition)
    steps: list[Step]
    chains: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    delta_note: str = ""

    @property
    def text(self) -> str:
        out = [self.title, "", "forward:"]
        w = max((len(lab) for lab, *_ in self.forward), default=0)
        out += [f"  {lab.ljust(w)} = {d}" for lab, d, _, _ in self.forward]
        out += ["", f"backward ({self.delta_note}):" if self.delta_note else "backward:"]
        w = max((len(s.lhs) for s in self.steps), default=0)
        for s in self.steps:
            tag = f"    [{', '.join(s.ops)}]" if s.ops else ""
            out.append(f"  {s.lhs.ljust(w)} = {_indent(s.formula, w + 5)}{tag}")
            if s.value is not None:
                out.append(f"  {' ' * w} = {_indent(s.value, w + 5)}")
        for lhs, names, factors, _, _, _ in self.chains:
            pad = " " * len(lhs)
            out += ["", "chain rule:", f"  {lhs} = {names}"]
            if factors:
                out.append(f"  {pad} = {factors}")
        return "\n".join(out)

    @property
    def latex(self) -> str:
        rows = [rf"{lab} &= {d}" for _, _, lab, d in self.forward]
        for s in self.steps:
            tag = rf" && \text{{{', '.join(s.ops)}}}" if s.ops else ""
            rows.append(rf"{s.tex_lhs} &= {s.tex_formula}{tag}")
            if s.tex_value is not None:
                rows.append(rf"&= {s.tex_value}")
        for _, _, _, lhs, names, factors in self.chains:
            rows.append(rf"{lhs} &= {names}")
            if factors:
                rows.append(rf"&= {factors}")
        body = " \\\\\n".join(rows)
        return "\\begin{aligned}\n" + body + "\n\\end{aligned}"

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<symgrad explanation: {self.title} ({len(self.steps)} steps)>"

    def _repr_latex_(self) -> str:
        return "$$" + self.latex + "$$"


def _indent(s: str, n: int) -> str:
    return s.replace("\n", "\n" + " " * n)


def _dname(label: str) -> str:
    """``phi`` stays ``phi`` in ``dC/dphi``; ``mu_pre`` becomes ``d(mu_pre)``."""
    return f"({label})" if "_" in label or not label.isidentifier() else label


def _targets(g, wrt) -> tuple[Expr, list[Expr]]:
    if wrt is not None:
        if not isinstance(g, Expr):
            raise TypeError(f"explain: f must be an expression, got {type(g).__name__}")
        ws, _ = as_list(wrt, "explain")
        if not ws:
            raise ValueError("explain: no variables given to differentiate with respect to")
        return g, [unguard(w) for w in ws]
    gs, _ = as_list(g, "explain")
    if not gs:
        raise ValueError("explain: no gradients given")
    f = None
    ws = []
    for e in gs:
        o = origin(e)
        if o is None or o[0] == "hessian":
            raise ValueError("explain: this expression was not returned by sg.grad (it may have "
                             "been simplified or rebuilt since); call sg.explain(f, wrt) instead")
        if f is not None and o[1] is not f:
            raise ValueError("explain: the gradients given are of different functions")
        f = o[1]
        ws.append(o[2])
    return f, ws


def function_name(f: Expr) -> str:
    """What a derivation calls the function ``f``: its name, else ``f``, or the first of F, L,
    g, h that no variable or named value of ``f`` already is (with a variable named f,
    ``df/dx = (1 - f**2)*f`` read two different values as f)."""
    if f.name:
        return f.name
    if f.op.name == "alias":  # a variable shown by another name (x.named("L"))
        return f.attrs["alias"]
    taken = {_display_name(n) for n in topo_order([f]) if n.op.leaf or n.name}
    for name in ("f", "F", "L", "g", "h"):
        if name not in taken:
            return name
    k = 1
    while f"f{k}" in taken:
        k += 1
    return f"f{k}"


def explain(g, wrt=None, *, name: str | None = None, show: bool = True,
            file: IO[str] | None = None) -> Explanation:
    """The chain-rule steps that produce a gradient, in text and LaTeX.

    ``sg.explain(sg.grad(C, w))`` (or a list of gradients of one function), or
    ``sg.explain(C, wrt)`` for a scalar ``C`` and a variable or a list of them. Prints the text
    (to ``file``, default stdout) unless ``show=False``, and returns an :class:`Explanation`
    (``.text``, ``.latex``, ``.steps``; Jupyter renders its LaTeX). ``name`` is what the function
    is called in the trace (default: its name given with ``.named``, else ``f``).
    """
    if file is not None and (not callable(getattr(file, "write", None)) or
                             isinstance(file, (io.RawIOBase, io.BufferedIOBase)) or
                             "b" in str(getattr(file, "mode", ""))):
        # (a path, 'out.txt', failed as "'str' object has no attribute 'write'", after the work)
        raise TypeError(f"explain: file must be a text stream (sys.stdout, open(path, 'w')), "
                        f"got {type(file).__name__} {file!r:.60}")
    f, ws = _targets(g, wrt)
    if f.shape != ():
        raise ValueError(f"explain: the function must be a scalar (shape ()), got shape "
                         f"{fmt_shape(f.shape)}")
    for w in ws:
        if not isinstance(w, Expr):
            raise TypeError(f"explain: cannot differentiate with respect to {w!r}")
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"explain: name must be a string, got {type(name).__name__}")
        check_identifier(name, "explain: name")
        used = {_display_name(n) for n in topo_order([f]) if n is not f}
        if name in used:
            raise ValueError(f"explain: name {name!r} is a variable or named value of the "
                             "function already; give another")
    try:
        ex = _Trace(f, ws, name or function_name(f)).run()
    except NonDifferentiableError:
        jacobian(f, ws)  # raises sg.grad's own message: the op, the variable and the path
        raise
    if show:
        print(ex.text, file=file if file is not None else sys.stdout)
    return ex


SIMPLIFY_MAX_NODES = 30  # a filled-in delta up to this size is simplified as a whole


def _fill(formula: Expr, values: dict[int, Expr]) -> Expr:
    """``formula`` with its delta tokens replaced by their values, simplified.

    Small results are simplified as a whole (so that, e.g., the bce and sigmoid factors
    cancel). Big ones (deep chains) are simplified step by step: the formula with the deltas
    as symbols, then the values filled in, so the work stays linear in the depth (sympy's
    cancel would multiply the chain's factors out).
    """
    def sub(e):
        return rebuild([e], lambda m: values.get(id(m)) if m.op.leaf else None)[0]

    whole = sub(formula)
    if count_nodes(whole) <= SIMPLIFY_MAX_NODES:
        return simplify(whole)
    return sub(simplify(formula))


class _Trace:
    def __init__(self, f: Expr, ws: list[Expr], fname: str):
        self.f, self.ws, self.fname = f, ws, fname
        self.order = topo_order([f])
        self.disp = _Display()
        wset = {id(w) for w in ws}
        self.dep: set[int] = set()
        for n in self.order:
            if id(n) in wset or any(id(a) in self.dep for a in n.args):
                self.dep.add(id(n))

    # ------------------------------------------------------------------ labels
    def label_nodes(self) -> None:
        """Labels for the function, named nodes, pre-activations and shared values."""
        users: dict[int, set[int]] = {}
        for n in self.order:
            if id(n) in self.dep:
                for a in n.args:
                    if id(a) in self.dep:
                        users.setdefault(id(a), set()).add(id(n))
        taken = {_display_name(n) for n in self.order if _display_name(n)} | {self.fname}
        self.taken = taken
        self.label: dict[int, tuple[str, str]] = {id(self.f): (self.fname, tex_name(self.fname)
                                                              if self.fname.isidentifier()
                                                              else self.fname)}
        self.kept: set[int] = {id(self.f)} | {id(w) for w in self.ws}
        pre: dict[int, str] = {}
        for n in self.order:
            if n.op.name in ACTIVATIONS and n.args and not n.args[0].op.leaf:
                a = n.args[0]
                if a.name is None and id(a) not in pre:
                    pre[id(a)] = f"{n.name}_pre" if n.name else ""
        k = 0
        # (the function's own name is taken first: an inner value of that name gets another,
        # where both read "L", tanh's 1 - L**2 and sigmoid's L*(1 - L))
        named: dict[str, int] = {self.fname: id(self.f)}
        for n in self.order:
            lab = _display_name(n)
            if lab is not None and n is not self.f:
                if named.setdefault(lab, id(n)) != id(n):
                    # a second value under this name (names are global: one given elsewhere)
                    # gets one of its own, where both read "phi" in the derivation
                    j = 2
                    while f"{lab}_{j}" in taken:
                        j += 1
                    lab = f"{lab}_{j}"
                    taken.add(lab)
                    self.disp.bind(n, lab, tex_name(lab))
                self.label[id(n)] = (lab, tex_name(lab))
                continue
            if n.op.leaf or n is self.f:
                continue
            shared = len(users.get(id(n), ())) > 1
            if id(n) in pre or shared:
                text = pre.get(id(n)) or ""
                # (its delta's name too: a value named delta_phi_pre read as two values)
                if not text or text in taken or f"delta_{text}" in taken:
                    k += 1
                    while f"z{k}" in taken or f"delta_z{k}" in taken:
                        k += 1
                    text, tex = f"z{k}", f"z_{{{k}}}"
                else:
                    tex = tex_name(text)
                taken.add(text)
                self.label[id(n)] = (text, tex)
                self.disp.bind(n, text, tex)
                if id(n) in self.dep:
                    self.kept.add(id(n))
        in_graph = {id(n) for n in self.order}
        for w in self.ws:  # an unnamed intermediate value asked for: a name of its own
            if id(w) in self.label or w.op.leaf:
                continue
            if id(w) in in_graph:
                k += 1
                while f"z{k}" in taken:
                    k += 1
                text, tex = f"z{k}", f"z_{{{k}}}"
                taken.add(text)
                self.disp.bind(w, text, tex)
                self.label[id(w)] = (text, tex)
            else:  # not a value of f (its derivative is 0): called by its formula
                self.label[id(w)] = (to_str(w), rf"\left({to_latex(w)}\right)")
        if id(self.f) not in self.disp.node_tok and self.f.name is None:
            self.disp.bind(self.f, *self.label[id(self.f)])
        self.disp.named_ok = {id(n) for n in self.order if n.name is not None}

    def forward_lines(self) -> list[tuple[str, str, str, str]]:
        out = []
        for n in self.order:
            if n.op.leaf or n.op.name == "alias" or id(n) not in self.label:
                continue
            d = self.disp.tokenize(n, keep_root=True)
            lab, tex = self.label[id(n)]
            out.append((lab, self.disp.text(d, True), tex, self.disp.tex(d, True)))
        if not out:  # f is a variable or a constant (a name for one): f = x, not an empty list
            base = self.f.args[0] if self.f.op.name == "alias" else self.f
            d = self.disp.tokenize(base, keep_root=True)
            lab, tex = self.label[id(self.f)]
            out.append((lab, self.disp.text(d, True), tex, self.disp.tex(d, True)))
        return out

    # ------------------------------------------------------------------ deltas
    def delta_names(self, n: Expr) -> tuple[str, str]:
        lab, tex = self.label[id(n)]
        if n is self.f:  # f asked for as a variable of itself (df/df is 1): its own name
            lab = _display_name(n) or lab
            tex = tex_name(lab) if lab.isidentifier() else lab
        if any(n is w for w in self.ws):
            return (f"d{self.fname}/d{_dname(lab)}",
                    rf"\frac{{\partial {self.label[id(self.f)][1]}}}{{\partial {tex}}}")
        if f"delta_{lab}" in self.taken:  # a value of the user's has that name: d<f>_d<lab>
            alt, j = f"d{self.fname}_d{lab}", 2
            while alt in self.taken:
                alt, j = f"d{self.fname}_d{lab}_{j}", j + 1
            return alt, rf"\delta_{{{tex}}}'"
        return f"delta_{lab}", rf"\delta_{{{tex}}}"

    def run(self) -> Explanation:
        self.label_nodes()
        f = self.f
        adj: dict[int, Expr] = {id(f): F.const(1.0)}
        ops: dict[int, list[str]] = {}
        token_real: dict[int, Expr] = {}  # id(delta token) -> its value
        token_shown: dict[int, Expr] = {}  # id(delta token) -> its value as shown
        steps: list[Step] = []
        values: dict[int, Expr] = {}

        def emit(n: Expr) -> Expr:
            formula = adj.get(id(n))
            if formula is None:
                formula = F.zeros(n.shape)
            # the value in the real graph (for checks), and as shown: labelled nodes as tokens,
            # each earlier delta replaced by its simplified value, then simplified
            real = rebuild([formula], lambda m: token_real.get(id(m)) if m.op.leaf else None)[0]
            shown_formula = self.disp.tokenize(formula)
            shown = _fill(shown_formula, token_shown)
            values[id(n)] = shown
            text, tex = self.delta_names(n)
            ft, fx = self.disp.both(shown_formula)
            vt, vx = self.disp.both(shown)
            same = vt == ft
            steps.append(Step(text, ft, None if same else vt, ops.get(id(n), []), tex, fx,
                              None if same else vx, real))
            tok = self.disp.token(text, tex, n.shape)
            token_real[id(tok)] = real
            token_shown[id(tok)] = shown
            return tok

        for n in reversed(self.order):
            if id(n) not in self.dep or n.op.leaf or id(n) not in adj:
                continue
            if id(n) in self.kept and n is not f:
                ct = emit(n)
                passing = [n.op.name]
            else:
                ct = adj[id(n)]
                passing = ops.get(id(n), []) + [n.op.name]
            if n.op.name == "guard":  # (it computes nothing: not a step of the chain rule)
                passing = passing[:-1]
            wants = [id(a) in self.dep for a in n.args]
            cts = n.op.vjp(n, ct, 0, wants)
            for a, want, c in zip(n.args, wants, cts):
                if c is None or not want:
                    continue
                if isinstance(c, tuple):
                    a, c = c
                if c.shape != a.shape:  # sizes checked equal at call time, as sg.grad does
                    c = fit_cotangent(c, 0, a)
                prev = adj.get(id(a))
                adj[id(a)] = c if prev is None else F.add(prev, c)
                seen = ops.setdefault(id(a), [])
                seen += [o for o in passing if o not in seen]
        for w in self.ws:
            if id(w) not in self.label:
                lab = _display_name(w) or to_str(w)  # a constant's own text, as sg.grad says
                self.label[id(w)] = (lab, tex_name(lab) if lab.isidentifier() else lab)
            if id(w) in self.dep and (w.op.leaf or w is f):  # (df/df is 1)
                emit(w)
            elif id(w) not in self.dep:
                text, tex = self.delta_names(w)
                steps.append(Step(text, "0", None, [], tex, "0", None, F.zeros(w.shape)))
        wnames = ", ".join((_display_name(w) or self.label[id(w)][0]) if w is f
                           else self.label[id(w)][0] for w in self.ws)
        title = f"d{self.fname}/d{wnames if wnames.isidentifier() else f'({wnames})'}" \
            if len(self.ws) == 1 else \
            f"the gradient of {self.fname} with respect to {wnames}"
        ex = Explanation(f"{title}, by the chain rule (reverse mode):", self.forward_lines(),
                         steps)
        if any(s.lhs.startswith("delta_") for s in steps):
            ex.delta_note = f"delta_v = d{self.fname}/dv"
        for w in self.ws:
            chain = self.chain(w, values.get(id(w)))
            if chain is not None:
                ex.chains.append(chain)
        return ex

    # ------------------------------------------------------------------ chain rule
    def chain(self, w: Expr, value: Expr | None):
        """``df/dw`` as a product of local derivatives, when one chain of scalars leads to w."""
        if value is None or id(w) not in self.dep:
            return None
        path = [self.f]
        n = self.f
        while n is not w:
            nxt = {id(a): a for a in n.args if id(a) in self.dep}
            if len(nxt) != 1:
                return None
            n = next(iter(nxt.values()))
            path.append(n)
        if any(p.shape != () for p in path):
            return None
        stops = [p for p in path if id(p) in self.label]
        if len(stops) < 3:  # df/dw = df/dw: nothing to show
            return None
        names_t, names_x, facs_t, facs_x = [], [], [], []
        for upper, lower in zip(stops, stops[1:]):
            (ut, ux), (lt, lx) = self.label[id(upper)], self.label[id(lower)]
            names_t.append(f"d{_dname(ut)}/d{_dname(lt)}")
            names_x.append(rf"\frac{{\partial {ux}}}{{\partial {lx}}}")
            fac = self.local(path, upper, lower)
            t, x = self.disp.both(self.disp.tokenize(fac))
            if fac.op.name in _ADDITIVE or t.startswith("-"):
                t, x = f"({t})", rf"\left({x}\right)"
            facs_t.append(t)
            facs_x.append(x)
        lhs_t, lhs_x = self.delta_names(w)
        rt, rx = self.disp.both(value)
        product_t = " * ".join(facs_t)
        factors_t = f"{product_t}\n{' ' * (len(lhs_t) + 3)}= {rt}" if product_t != rt else rt
        factors_x = _juxtaposed(facs_x) + (f" = {rx}" if product_t != rt else "")
        return (lhs_t, " * ".join(names_t), factors_t, lhs_x, " ".join(names_x), factors_x)

    def local(self, path: list[Expr], upper: Expr, lower: Expr) -> Expr:
        """d upper / d lower along the path (scalars): the vjp rules with a seed of 1."""
        i, j = path.index(upper), path.index(lower)
        ct: Expr = F.const(1.0)
        for n, a in zip(path[i:j], path[i + 1:j + 1]):
            wants = [x is a for x in n.args]
            total = None
            for want, c in zip(wants, n.op.vjp(n, ct, 0, wants)):
                if want and c is not None:
                    c = c[1] if isinstance(c, tuple) else c
                    total = c if total is None else F.add(total, c)
            ct = total if total is not None else F.const(0.0)
        return ct


def _juxtaposed(factors: list[str]) -> str:
    """LaTeX factors side by side, with a \\cdot before one that starts with a number (2 2 q
    would read 22 q)."""
    out = factors[0] if factors else ""
    for f in factors[1:]:
        number = f[:1].isdigit() or f[:1] in ".-" or (f.startswith(r"\frac{") and f[6:7].isdigit())
        out += (r" \cdot " if number else " ") + f  # (2 \frac{1}{7} reads as 2 1/7)
    return out
