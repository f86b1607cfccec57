"""The ``symgrad`` command line (also ``python -m symgrad``).

    symgrad grad "sigmoid(w*sigmoid(u*x + c) + b)" --wrt u,c,w,b [--latex] [--raw] [--explain]
    symgrad hessian "x**2*y + exp(x*y)" --wrt x,y
    symgrad draw "tanh(w*x + b)" --wrt w,b -o graph.svg
    symgrad eval "x*y + 1" x=2 y=3
    symgrad lecture

Variables are scalars unless declared with ``--vector w:n`` or ``--matrix X:m,n`` (sizes are
numbers or names). Expressions are read by :func:`symgrad.parse.parse`, which never executes
the text; a bad expression gets a one-line error naming the position, and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from typing import Sequence

import numpy as np

from . import functions as F
from .autodiff import _describe, grad, hessian
from .compile import evaluate
from .errors import NonDifferentiableError, ShapeError
from .explain import ACTIVATIONS, _Display, _dname, explain, function_name
from .expr import Expr
from .graph import topo_order, variables
from .ops.leaves import tex_name
from .parse import NUMBERS, ParseError, assigned_in, names_in, nfkc, parse
from .shapes import as_shape, check_identifier, fmt_shape
from .simplify import simplify

LABEL_MIN_CHARS = 12  # a repeated activation longer than this gets a name in the output


class UsageError(ValueError):
    """A bad command-line argument (exit status 2)."""


# ---------------------------------------------------------------------- arguments
def _declare(specs: list[str] | None, kind: str, env: dict[str, Expr]) -> None:
    for spec in specs or []:
        name, sep, sizes = spec.partition(":")
        name = name.strip()
        try:
            check_identifier(name, "name")
            if not sep or not sizes.strip():
                raise ValueError("no sizes given")
            dims = as_shape(tuple(_size(s) for s in sizes.split(",")), "size")
        except ValueError as err:
            raise UsageError(f"--{kind} {spec!r}: {err}; write --{kind} "
                             f"{'w:n' if kind == 'vector' else 'X:m,n'}") from None
        if (kind == "vector") != (len(dims) == 1) or len(dims) > 2:
            raise UsageError(f"--{kind} {spec!r}: a {kind} takes "
                             f"{'one size' if kind == 'vector' else 'two sizes'}")
        if name in env:
            raise UsageError(f"{name} is declared twice")
        env[name] = F.vector(name, dims[0]) if kind == "vector" else F.matrix(name, dims)


def _size(s: str):
    s = s.strip()
    if s.isdecimal():  # (isdigit takes a superscript ², which int refuses)
        return int(s)
    if not s.isidentifier():  # -3, 3.0, ² read as names said "not a valid identifier"
        raise ValueError(f"size {s!r} is not a size (a whole number >= 0, or a name)")
    return s


def _env(args) -> dict[str, Expr]:
    env: dict[str, Expr] = {}
    _declare(args.vector, "vector", env)
    _declare(args.matrix, "matrix", env)
    return env


def _function(args) -> tuple[Expr, dict[str, Expr]]:
    env = _env(args)
    return parse(args.expression, env), env


def _wrt(args, f: Expr, env: dict[str, Expr]) -> list[Expr]:
    found = {nfkc(v.attrs["vname"]): v for v in variables(f)}
    if not args.wrt:
        # and the variables the text has that building folded away (x - x, x*0 + y): their
        # derivatives are zeros that say so, as with --wrt x
        defined = {nfkc(n) for n in assigned_in(args.expression)}
        envn = {nfkc(k): v for k, v in env.items()}
        written = [n for n in map(nfkc, names_in(args.expression)) if n not in defined]
        out = {n: found[n] if n in found else envn[n] if n in envn else F.scalar(n)
               for n in written}
        out.update(found)  # (in the text's order; any other after)
        if not out:
            raise UsageError("the expression has no variables to differentiate with respect to")
        return list(out.values())
    # a value the formula names (``phi = sigmoid(...); ...``) is differentiated with respect
    # to as it is, as sg.grad(f, h) does for an intermediate h
    nodes = topo_order([f])
    named = {nfkc(n.name): n for n in nodes if n.name and not n.op.leaf}
    named.update((nfkc(n.attrs["alias"]), n) for n in nodes if n.op.name == "alias")
    env = {nfkc(k): v for k, v in env.items()}
    written = names_in(args.expression)
    out = []
    for given in args.wrt:  # --wrt a,b --wrt c: all three
        if any(not n.strip() for n in given.split(",")):
            raise UsageError(f"--wrt: an empty name in {given!r} (names are separated by "
                             "single commas)")
    for name in ",".join(args.wrt).split(","):
        name = nfkc(name.strip())  # as the formula's names read (µ is μ)
        v = found.get(name, env.get(name, named.get(name)))
        if v is None and name in written:
            v = F.scalar(name)  # folded away as the formula was built (x*0 + y): df/dx = 0
        if v is None:
            raise UsageError(f"--wrt: {name} is not a variable or a named value of the "
                             "expression")
        if any(v is w for w in out):
            raise UsageError(f"--wrt: {name} is listed twice")
        out.append(v)
    if not out:
        raise UsageError("--wrt: no variables given")
    return out


# ---------------------------------------------------------------------- display
def _tree_counts(outs: list[Expr]) -> dict[int, int]:
    """How often each node occurs when the outputs are written out as trees."""
    total: dict[int, int] = {}
    for o in outs:
        paths: dict[int, int] = {id(o): 1}
        for n in reversed(topo_order([o])):
            k = paths.get(id(n), 0)
            total[id(n)] = total.get(id(n), 0) + k
            if n.name is not None and n is not o:
                continue  # a named node prints as its name
            for a in n.args:
                paths[id(a)] = paths.get(id(a), 0) + k
    return total


def _display(f: Expr, outs: list[Expr], raw: bool = False
             ) -> tuple[_Display, list[tuple[str, str, str, str]]]:
    """Names for long activations that the outputs repeat (``a1 = sigmoid(u*x + c)``), as
    derived or, unless ``raw``, as printed once simplified (sigmoid'(z) is s(z) (1 - s(z)))."""
    disp = _Display()
    counts = _tree_counts(outs)
    printed = None if raw else [str(e) for e in simplify(list(outs))]
    where = []
    k = 0
    # the names the formula gives (variables and named values, ``a1 = tanh(x)``) stay theirs
    taken = {v.attrs["vname"] for v in variables([f])} | \
        {n.name for n in topo_order([f, *outs]) if n.name is not None}
    for n in topo_order([f]):
        if n.op.name not in ACTIVATIONS or n.name is not None:
            continue
        if counts.get(id(n), 0) < 2 and (
                printed is None or sum(t.count(str(n)) for t in printed) < 2):
            continue
        definition = disp.tokenize(n, keep_root=True)
        text = disp.text(definition, True)
        if len(text) <= LABEL_MIN_CHARS:
            continue
        if n is f and function_name(f) not in taken:
            lab = function_name(f)
            tex = tex_name(lab)
        else:
            k += 1
            while f"a{k}" in taken:
                k += 1
            lab, tex = f"a{k}", f"a_{{{k}}}"
        taken.add(lab)
        where.append((lab, text, tex, disp.tex(definition, True)))
        disp.bind(n, lab, tex)
    return disp, where


def _shown(disp: _Display, e: Expr, raw: bool) -> Expr:
    e = disp.tokenize(e)
    return e if raw else simplify(e)


def _print_where(where, latex: bool, out) -> None:
    if not where:
        return
    if latex:
        for _, _, tex, d in where:
            print(f"{tex} = {d}", file=out)
        return
    w = max(len(lab) for lab, *_ in where)
    for i, (lab, d, _, _) in enumerate(where):
        print(f"{'where' if i == 0 else '     '} {lab.ljust(w)} = {d}", file=out)


def _fname(f: Expr) -> tuple[str, str]:
    name = function_name(f)
    return name, tex_name(name)


# ---------------------------------------------------------------------- commands
def _scalar_function(args) -> tuple[Expr, list[Expr]]:
    """The parsed expression, which must be a scalar, and the variables of --wrt."""
    f, env = _function(args)
    ws = _wrt(args, f, env)
    if f.shape != ():
        raise UsageError(f"{args.command}: the expression must be a scalar, it has shape "
                         f"{fmt_shape(f.shape)}; sum it first (sum(...))")
    return f, ws


def cmd_grad(args, out) -> int:
    f, ws = _scalar_function(args)
    if args.explain:
        ex = explain(f, ws, show=False)
        print(ex.latex if args.latex else ex.text, file=out)
        return 0
    gs = grad(f, ws)
    if args.index:
        fn = function_name(f)
        for w, g in zip(ws, gs):
            _print_index(g if args.raw else simplify(g), f"d{fn}_d{_describe(w)}", f, args,
                         out)
        return 0
    disp, where = _display(f, gs, args.raw)
    _print_where(where, args.latex, out)
    fn, ftex = _fname(f)
    for w, g in zip(ws, gs):
        e = _shown(disp, g, args.raw)
        wn = _describe(w)  # a variable's name, or the name of a value of the formula
        if args.latex:
            print(_equation(rf"\frac{{\partial {ftex}}}{{\partial {tex_name(wn)}}}",
                            disp.tex(e), True), file=out)
        else:
            print(_equation(f"d{fn}/d{_dname(wn)}", disp.text(e), False), file=out)
    return 0


def _equation(lhs: str, text: str, latex: bool) -> str:
    """``lhs = text``; a long ``text`` comes as temporaries and a last line (``t1 = ...``,
    ``t2 = ...``, the value), which follow the value under ``where`` (written after the ``=``,
    the first temporary read as the derivative: ``df/dx = t1 = abs(x) + 0.5``)."""
    sep = r" \\ " if latex else "\n"
    *temps, value = text.split(sep)
    if not temps:
        return f"{lhs} = {text}"
    if latex:
        return f"{lhs} = {value}" + r" \\ \text{where } " + sep.join(temps)
    return f"{lhs} = {value}\n  where " + "\n        ".join(temps)


def _print_index(e: Expr, name: str, f: Expr, args, out) -> None:
    """``e`` in index notation (--index), named ``name``, or ``name`` with a suffix where that
    is a name of ``f``'s or ``e``'s (a default name lost which derivative it was)."""
    from .index_notation import index_notation

    taken = {nfkc(n.attrs["vname"]) if n.op.name == "var" else n.name
             for n in topo_order([f]) if n.op.name == "var" or n.name}
    for cand in [name] + [f"{name}_{k}" for k in range(2, 100)]:
        if cand.isidentifier() and cand not in taken:
            try:
                print(index_notation(e, cand, latex=args.latex), file=out)
                return
            except ValueError:  # (a name of the derivative's own)
                continue
    print(index_notation(e, latex=args.latex), file=out)


def cmd_hessian(args, out) -> int:
    f, ws = _scalar_function(args)
    rows = hessian(f, ws)
    if args.index:
        fn = function_name(f)
        for wi, row in zip(ws, rows):
            for wj, h in zip(ws, row):
                _print_index(h if args.raw else simplify(h),
                             f"d2{fn}_d{_describe(wi)}_d{_describe(wj)}", f, args, out)
        return 0
    flat = [h for row in rows for h in row]
    disp, where = _display(f, flat, args.raw)
    _print_where(where, args.latex, out)
    fn, ftex = _fname(f)
    shown = [[_shown(disp, h, args.raw) for h in row] for row in rows]
    if all(w.shape == () for w in ws):
        _print_matrix(shown, disp, ws, fn, ftex, args.latex, out)
        return 0
    for wi, row in zip(ws, shown):
        for wj, h in zip(ws, row):
            a, b = _describe(wi), _describe(wj)
            if args.latex:
                print(_equation(_d2(fn, ftex, a, b, True), disp.tex(h), True), file=out)
            else:
                print(_equation(_d2(fn, ftex, a, b, False), disp.text(h), False) +
                      f"    shape {fmt_shape(h.shape)}", file=out)
    return 0


def _d2(fn: str, ftex: str, a: str, b: str, latex: bool) -> str:
    """The left side of a second derivative: ``d2f/dx dy``, or its LaTeX fraction."""
    if latex:
        return rf"\frac{{\partial^2 {ftex}}}{{\partial {tex_name(a)} \partial {tex_name(b)}}}"
    return f"d2{fn}/d{_dname(a)} d{_dname(b)}"


def _print_matrix(shown, disp, ws, fn, ftex, latex: bool, out) -> None:
    names = [_describe(w) for w in ws]
    cells = [[disp.tex(h) if latex else disp.text(h) for h in row] for row in shown]
    if any((r" \\ " if latex else "\n") in c for row in cells for c in row):
        for a, row in zip(names, cells):  # big entries (with temporaries): one per line
            for b, c in zip(names, row):
                print(_equation(_d2(fn, ftex, a, b, latex), c, latex), file=out)
        return
    if latex:
        body = r" \\ ".join(" & ".join(row) for row in cells)
        wrt = ", ".join(tex_name(n) for n in names)
        print(rf"\nabla^2_{{{wrt}}} {ftex} = \begin{{pmatrix}} {body} \end{{pmatrix}}",
              file=out)
        return
    widths = [max(len(row[j]) for row in cells) for j in range(len(names))]
    print(f"Hessian of {fn} with respect to ({', '.join(names)}):", file=out)
    for row in cells:
        print("  [ " + "   ".join(c.ljust(w) for c, w in zip(row, widths)) + " ]", file=out)


def cmd_draw(args, out) -> int:
    from .draw import draw, to_dot

    f, env = _function(args)
    # a scalar with variables: with its gradient; a constant formula (2*3): its graph alone
    ws = _wrt(args, f, env) if args.wrt or (f.shape == () and variables(f)) else []
    if ws and f.shape != ():
        raise UsageError("draw: --wrt needs a scalar expression")
    exprs = [f] + (grad(f, ws) if ws else [])
    if not args.output:
        print(to_dot(exprs, forward=f, simplified=args.simplified), end="", file=out)
        return 0
    try:
        path = draw(exprs, args.output, forward=f, simplified=args.simplified,
                    engine=args.engine)
    except ImportError as err:
        raise UsageError(str(err)) from None
    except OSError as err:  # a folder that does not exist, no permission, ...
        msg = err.strerror or str(err)  # sg.draw's own says "draw: cannot write ...: why"
        if not msg.startswith("draw: cannot write"):
            msg = f"cannot write {args.output!r}: {msg}"
        raise UsageError(msg.removeprefix("draw: ")) from None
    print(f"wrote {path}", file=out)
    return 0


def _value(spec: str, var: Expr):
    name = var.attrs["vname"]
    try:
        rows = [[float(x) for x in r.split(",")] for r in spec.split(";")]
    except ValueError:
        raise UsageError(f"{name}={spec}: not a number (vectors: 1,2,3; matrices: "
                         "1,2;3,4)") from None
    for r, text in zip(rows, spec.split(";")):
        for x, t in zip(r, text.split(",")):
            # (1e400 reads as inf in Python; in the formula it is an error: so here)
            if math.isinf(x) and "inf" not in t.lower():
                raise UsageError(f"{name}={spec}: {t.strip()} is too large for a float "
                                 "(at most about 1.8e308; write inf for infinity)")
    if var.ndim == 0:
        if len(rows) != 1 or len(rows[0]) != 1:
            raise UsageError(f"{name} is a scalar; declare it with --vector or --matrix")
        return rows[0][0]
    if var.ndim == 1:
        if len(rows) != 1:
            raise UsageError(f"{name} is a vector: write {name}=1,2,3")
        return np.array(rows[0])
    if len({len(r) for r in rows}) != 1:
        raise UsageError(f"{name}={spec}: rows of different lengths")
    return np.array(rows)


def cmd_eval(args, out) -> int:
    f, env = _function(args)
    by_name = {nfkc(v.attrs["vname"]): v for v in variables(f)}
    env = {nfkc(k): v for k, v in env.items()}
    values = {}
    written = names_in(args.expression)
    defined = assigned_in(args.expression)
    for item in args.values:
        name, sep, spec = item.partition("=")
        name = nfkc(name.strip())  # as the formula's names read (µ is μ)
        if not sep or not name:
            raise UsageError(f"{item!r}: write NAME=VALUE")
        if name in defined:  # (its value was dropped without a word)
            raise UsageError(f"{name} is a named value the expression defines, not a "
                             "variable: it takes no value")
        var = by_name.get(name, env.get(name))
        if var is None and name in written:
            continue  # folded away as the formula was built (x - x is 0): its value is unused
        if var is None and name in NUMBERS:
            raise UsageError(f"{name} is a number in an expression, not a variable")
        if var is None:
            raise UsageError(f"{name} is not a variable of the expression")
        if var in values:
            raise UsageError(f"{name} is given twice")
        values[var] = _value(spec, var)
    missing = [n for n, v in by_name.items() if v not in values]
    if missing:
        raise UsageError(f"no value given for {', '.join(missing)} (write {missing[0]}=...)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        res = evaluate(f, values)
    # numpy's warnings (1/0, log(0)) as one line each, without the generated code's file/line
    for msg in dict.fromkeys(str(w.message) for w in caught
                             if issubclass(w.category, RuntimeWarning)):
        print(f"symgrad eval: warning: {msg}", file=sys.stderr)
    for w in caught:  # any other warning as it was
        if not issubclass(w.category, RuntimeWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if isinstance(res, float):
        print(repr(res), file=out)
    else:
        # every entry, each as the shortest text that reads back as the same number (numpy's
        # default printing rounds to 8 digits and cuts arrays of over 1,000 entries)
        print(np.array2string(np.asarray(res), separator=", ", threshold=sys.maxsize,
                              max_line_width=sys.maxsize, formatter={"float_kind": str}),
              file=out)
    return 0


def cmd_lecture(args, out) -> int:
    from .lecture import lecture

    print(lecture(latex=args.latex), file=out)
    return 0


# ---------------------------------------------------------------------- parser
def _add_common(p: argparse.ArgumentParser, wrt: bool = True) -> None:
    p.add_argument("expression", help="the expression, e.g. 'sigmoid(w*x + b)'; "
                   "'phi = ...; ...' names intermediate values")
    p.add_argument("--vector", action="append", metavar="NAME:SIZE",
                   help="declare a vector variable (repeatable), e.g. w:n or w:3")
    p.add_argument("--matrix", action="append", metavar="NAME:ROWS,COLS",
                   help="declare a matrix variable (repeatable), e.g. X:m,n")
    if wrt:
        p.add_argument("--wrt", metavar="NAMES", action="append",
                       help="comma-separated variables, or values the expression names; "
                       "repeatable (default: every variable, in the order they appear in the "
                       "expression written out in full)")


class _Parser(argparse.ArgumentParser):
    """argparse's, with a hint where a formula that starts with '-' was read as an option."""

    def error(self, message: str):
        if "required: expression" in message:
            message += (" (a formula that starts with '-' goes last, after '--': "
                        f"{self.prog} ... -- \"-x*y\")")
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = _Parser(
        prog="symgrad",
        description="Symbolic gradients, Jacobians and Hessians, printed readably. Variables "
                    "are scalars unless declared with --vector/--matrix.",
        epilog="examples:\n  symgrad grad \"sigmoid(w*sigmoid(u*x + c) + b)\" --wrt u,c,w,b\n"
               "  symgrad hessian \"x**2*y + exp(x*y)\" --wrt x,y\n"
               "  symgrad draw \"tanh(w*x + b)\" --wrt w,b -o graph.svg\n"
               "  symgrad eval \"x*y + 1\" x=2 y=3\n  symgrad lecture",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"symgrad {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("grad", help="print the derivatives, simplified")
    _add_common(p)
    p.add_argument("--latex", action="store_true", help="print LaTeX")
    p.add_argument("--raw", action="store_true", help="do not simplify")
    p.add_argument("--explain", action="store_true", help="print the chain-rule steps")
    p.add_argument("--index", action="store_true",
                   help="print in index notation (sums over indices; for matrices)")
    p.set_defaults(func=cmd_grad)

    p = sub.add_parser("hessian", help="print the matrix of second derivatives")
    _add_common(p)
    p.add_argument("--latex", action="store_true", help="print LaTeX")
    p.add_argument("--raw", action="store_true", help="do not simplify")
    p.add_argument("--index", action="store_true",
                   help="print in index notation (sums over indices, δ for the identity: "
                        "Hessians with respect to matrices as a textbook writes them)")
    p.set_defaults(func=cmd_hessian)

    p = sub.add_parser("draw", help="draw the forward and gradient graph")
    _add_common(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="a .svg, .png, .pdf or .dot file (default: DOT text on stdout)")
    p.add_argument("--simplified", action="store_true",
                   help="draw the simplified graph beside the graph as built")
    p.add_argument("--engine", choices=("auto", "graphviz", "matplotlib"), default="auto",
                   help="renderer (default: Graphviz's dot if installed, else matplotlib)")
    p.set_defaults(func=cmd_draw)

    p = sub.add_parser("eval", help="evaluate at given values: symgrad eval 'x*y' x=2 y=3")
    _add_common(p, wrt=False)
    p.add_argument("values", nargs="*", metavar="NAME=VALUE",
                   help="values: 2 (scalar), 1,2,3 (vector), \"1,2;3,4\" (matrix, quoted)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("lecture", help="the backprop lecture's derivations")
    p.add_argument("--latex", action="store_true", help="print the formulas in LaTeX")
    p.set_defaults(func=cmd_lecture)
    for p in sub.choices.values():  # a misused option is reported by its command's parser
        p.set_defaults(command_parser=p)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a bad expression or argument)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # eval's NAME=VALUE items may come after the options
        if args.command == "eval" and all("=" in x and not x.startswith("-") for x in extra):
            args.values = list(args.values) + extra
        else:
            # one after the command gets that command's usage (symgrad eval: error: ...)
            before = extra[0] in argv and argv.index(extra[0]) < argv.index(args.command)
            (parser if before else args.command_parser).error(
                f"unrecognized arguments: {' '.join(extra)}")
    out = sys.stdout
    try:
        return args.func(args, out)
    except BrokenPipeError:  # the reader went away (symgrad lecture | head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ParseError, UsageError, ShapeError, NonDifferentiableError, ValueError, IndexError,
            OverflowError) as err:  # IndexError: take's index at eval; OverflowError: a value
        msg = str(err).replace("\n", " ")
        print(f"symgrad {args.command}: error: {msg}", file=sys.stderr)
        return 2
