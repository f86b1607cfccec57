"""``symgrad lecture``: the backprop lecture's derivations, computed and checked by symgrad.

Everything printed is computed when it is printed: the gradients are derived and simplified,
compared with the lecture's formulas (symbolically with sympy, and numerically against
finite differences), and the node counts are counted.
"""

from __future__ import annotations

import numpy as np
import sympy

from . import functions as F
from .autodiff import grad, hessian
from .check import check_grad
from .explain import explain
from .expr import Expr
from .graph import count_nodes, topo_order
from .printing import latex as to_latex
from .shapes import fmt_shape
from .simplify import simplify
from .sympy_bridge import to_sympy


def _fd_error(err: float) -> str:
    """check_grad's largest error, read as what it is: 0 means every difference was within
    the finite differences' own rounding noise, not an exact match."""
    if err == 0:
        return "every difference within their rounding noise"
    return f"largest relative error {err:.0e}"


def scalar_mlp() -> dict:
    """The lecture's single-hidden-unit MLP: variables, named nodes and the loss ``C``."""
    x, y, u, c, w, b = F.scalars("x y u c w b")
    phi = F.sigmoid(u * x + c).named("phi")
    mu = F.sigmoid(w * phi + b).named("mu")
    C = F.bce(mu, y)
    return dict(x=x, y=y, u=u, c=c, w=w, b=b, phi=phi, mu=mu, C=C)


def vector_mlp(d="d", l="l") -> dict:  # noqa: E741  (the lecture's name for the width)
    """The lecture's vector MLP: x in R^d, U in R^(l x d), c, w in R^l, b and y scalars."""
    x = F.vector("x", d)
    U = F.matrix("U", (l, d))
    c, w = F.vector("c", l), F.vector("w", l)
    b, y = F.scalars("b y")
    phi = F.sigmoid(U @ x + c).named("phi")
    mu = F.sigmoid(w @ phi + b).named("mu")
    C = F.bce(mu, y)
    return dict(x=x, U=U, c=c, w=w, b=b, y=y, phi=phi, mu=mu, C=C)


def _same(a: Expr, b: Expr) -> bool:
    """Whether sympy proves a - b = 0 (named nodes as symbols: both are written in them)."""
    d = to_sympy(a, keep_names=True) - to_sympy(b, keep_names=True)
    return sympy.expand(d) == 0


class _Out:
    def __init__(self, latex: bool):
        self.latex = latex
        self.lines: list[str] = []

    def __call__(self, s: str = "") -> None:
        self.lines.append(s)

    def f(self, e: Expr) -> str:
        return to_latex(e) if self.latex else str(e)

    def dc(self, name: str) -> str:
        """dC/d(name), in LaTeX or text."""
        return rf"\frac{{\partial C}}{{\partial {name}}}" if self.latex else f"dC/d{name}"

    def heading(self, s: str) -> None:
        self.lines += ["", s, "-" * len(s)]


def _indent(text: str, n: int = 4) -> list[str]:
    return [" " * n + line if line else "" for line in text.split("\n")]


def lecture(latex: bool = False) -> str:
    """The lecture's derivations as text (formulas in LaTeX with ``latex=True``)."""
    out = _Out(latex)
    out('The backprop lecture ("MLPs and Backprop"), derived by symgrad')
    out("=" * 63)
    _scalar_section(out)
    _graph_section(out)
    _vector_section(out)
    return "\n".join(out.lines)


def _scalar_section(out: _Out) -> None:
    m = scalar_mlp()
    u, c, w, b, x, y, phi, mu, C = (m[k] for k in "u c w b x y phi mu C".split())
    out.heading("1. One hidden unit")
    out("  import symgrad as sg")
    out('  x, y, u, c, w, b = sg.scalars("x y u c w b")')
    out('  phi = sg.sigmoid(u*x + c).named("phi")      # the hidden unit')
    out('  mu = sg.sigmoid(w*phi + b).named("mu")      # the output')
    out("  C = sg.bce(mu, y)                           # the cross-entropy loss")
    out(f"  # C = {out.f(C)}")
    out()
    gs = grad(C, [u, c, w, b])
    lecture_forms = {  # the lecture's formulas, written in the same named nodes
        "u": ((mu - y) * w * phi * (1 - phi) * x, "(mu - y) w phi (1 - phi) x"),
        "c": ((mu - y) * w * phi * (1 - phi), "(mu - y) w phi (1 - phi)"),
        "w": ((mu - y) * phi, "(mu - y) phi"),
        "b": (mu - y, "mu - y"),
    }
    at = {"x": 0.5, "y": 1.0, "u": 0.7, "c": -0.3, "w": 1.3, "b": 0.2}
    err = check_grad(C, [u, c, w, b], at, order=1)
    rows = []
    for v, g in zip((u, c, w, b), gs):
        name = v.attrs["vname"]
        s = simplify(g)
        form, shown = lecture_forms[name]
        ok = "equal" if _same(s, form) else "DIFFERENT"
        rows.append((f"{out.dc(name)} = {out.f(s)}", shown, ok))
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    out(f"  {'sg.simplify(sg.grad(C, v))'.ljust(w1)}   {'the lecture'.ljust(w2)}   same?")
    for a, bb, ok in rows:
        out(f"  {a.ljust(w1)}   {bb.ljust(w2)}   {ok}")
    out()
    out("  same?: sympy proves symgrad's formula minus the lecture's is 0 (in mu and phi);")
    out(f"  all four also agree with central finite differences of C ({_fd_error(err)}).")
    out("  What the names hide: dC/db fully expanded in x, y, u, c, w, b (sg.to_sympy):")
    full = to_sympy(simplify(gs[3]))
    out(f"    {out.dc('b')} = {sympy.latex(full) if out.latex else full}")
    out.heading("2. How symgrad got dC/du: the chain rule, step by step")
    out("  sg.explain(sg.grad(C, u)).latex holds:" if out.latex else
        "  sg.explain(sg.grad(C, u)) prints:")
    out()
    ex = explain(grad(C, u), name="C", show=False)
    out.lines += _indent(ex.latex if out.latex else ex.text)


def _graph_section(out: _Out) -> None:
    m = scalar_mlp()
    u, c, w, b, C = (m[k] for k in "u c w b C".split())
    gs = grad(C, [u, c, w, b])
    out.heading("3. Gradients are graphs too")
    nf, nall = count_nodes(C), count_nodes([C] + gs)
    out(f"  the forward graph of C:                 {nf} nodes")
    out(f"  C and its four gradients, one graph:    {nall} nodes: the gradient pass added "
        f"{nall - nf}")
    delta = gs[3]  # dC/db = mu - y
    shared = all(any(n is delta for n in topo_order([g])) for g in gs)
    if shared:
        d = f"${out.f(delta)}$" if out.latex else out.f(delta)  # (a formula inside prose)
        out(f"  {d} is one node, shared by all four gradients (\"but we already "
            "computed that!\")")
    H = hessian(C, [u, c, w, b])
    flat = [h for row in H for h in row]
    nh = count_nodes([C] + gs + flat)
    out(f"  ... and the 4 x 4 Hessian as well:      {nh} nodes")
    out("  the picture of C with its gradients (docs/img/scalar_mlp.svg):")
    out("    sg.draw([C, *sg.grad(C, [u, c, w, b])], \"scalar_mlp.svg\")")
    out("  forward nodes and the nodes the gradient pass added are drawn in two styles.")


def _vector_section(out: _Out) -> None:
    m = vector_mlp()
    U, c, w, b, phi, mu, C = (m[k] for k in "U c w b phi mu C".split())
    out.heading("4. The vector MLP")
    out("  x in R^d, U in R^(l x d), c and w in R^l, b and y scalars (d and l stay symbolic):")
    defs = [rf"\phi = {out.f(phi)}", rf"\mu = {out.f(mu)}"] if out.latex else \
        [f"phi = {out.f(phi)}", f"mu  = {out.f(mu)}"]
    wd = max(len(d) for d in defs)
    out(f"  {defs[0].ljust(wd)}   shape {fmt_shape(phi.shape)}")
    out(f"  {defs[1].ljust(wd)}   shape {fmt_shape(mu.shape)}")
    out(r"  C   = \operatorname{bce}\left(\mu, y\right)" if out.latex else "  C   = bce(mu, y)")
    out()
    names = {"U": "(1)", "c": "(2)", "w": "   ", "b": "   "}
    gs = grad(C, [U, c, w, b])
    rows = []
    for v, g in zip((U, c, w, b), gs):
        s = simplify(g)
        rows.append((names[v.attrs["vname"]], f"{out.dc(v.attrs['vname'])} = {out.f(s)}",
                     f"shape {fmt_shape(s.shape)}"))
    wd = max(len(r[1]) for r in rows)
    for tag, line, shape in rows:
        out(f"  {tag} {line.ljust(wd)}   {shape}")
    out()
    out("  the lecture: (1) dC/dU = (mu - y) (w ⊙ phi ⊙ (1 - phi)) x^T,"
        "  (2) dC/dc = (mu - y) (w ⊙ phi ⊙ (1 - phi))")
    rng = np.random.default_rng(0)
    d, l = 3, 4  # noqa: E741
    at = {"x": rng.normal(size=d), "U": rng.normal(size=(l, d)), "c": rng.normal(size=l),
          "w": rng.normal(size=l), "b": 0.1, "y": 1.0}
    small = vector_mlp(d, l)
    err = check_grad(small["C"], [small[k] for k in "U c w b".split()], at, order=1)
    out(f"  checked against central finite differences at d = {d}, l = {l} "
        f"({_fd_error(err)}).")
    out()
    out("  Backprop, step by step: sg.explain(C, [U, c]) prints the delta recursion"
        + (" (its .latex:)" if out.latex else ""))
    out()
    ex = explain(C, [U, c], name="C", show=False)
    out.lines += _indent(ex.latex if out.latex else ex.text)
