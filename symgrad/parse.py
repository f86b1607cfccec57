"""A safe parser for expression text (the command line's input): ``sg.parse("sigmoid(w*x + b)")``.

The text is read with Python's :mod:`ast` and walked node by node against a whitelist: numbers,
names, ``+ - * / ** @``, unary ``-``/``+``, ``.T``, calls of symgrad's functions by name (with an
``axis=`` keyword where the function has one), and ``name = expression`` statements that name
an intermediate value (``phi = sigmoid(u*x + c); mu = sigmoid(w*phi + b); bce(mu, y)``).
Nothing else is accepted, and nothing is ever executed: the text is never given to ``eval``,
``exec``, ``compile`` or ``sympy.sympify``; the walk builds symgrad nodes directly. A bad text
raises :class:`ParseError` naming the position (1-based line and column).
"""

from __future__ import annotations

import ast
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

from . import functions as F
from .expr import Expr, rename

MAX_CHARS = 10_000  # longer text is refused before Python's parser sees it
MAX_DEPTH = 500  # nesting depth of the syntax tree
_MAX_BITS = 1 << 16  # an integer power or product beyond this many bits: refused, not computed
_NOT_EXACT = object()
# names that are numbers (unless ``variables`` or an assignment gives them another meaning):
# str() prints an infinite or undefined constant so
NUMBERS = {"inf": math.inf, "nan": math.nan}
MAX_BRACKETS = 200  # brackets open at once (calls' included): Python's tokenizer refuses more


class ParseError(ValueError):
    """A text that is not a symgrad expression; ``str()`` is one line naming the position."""

    def __init__(self, message: str, text: str = "", line: int = 1, col: int = 1):
        self.message, self.text, self.line, self.col = message, text, line, col
        multi = "\n" in text
        where = f"line {line}, column {col}" if multi else f"column {col}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class _Fn:
    fn: Callable
    nargs: tuple  # allowed numbers of positional operands
    axis: bool = False  # takes axis= (as a keyword or the second positional)


def _unary(f: Callable) -> _Fn:
    return _Fn(f, (1,))


def _binary(f: Callable) -> _Fn:
    return _Fn(f, (2,))


def _axis(f: Callable) -> _Fn:
    return _Fn(f, (1,), axis=True)


FUNCTIONS: dict[str, _Fn] = {
    **{n: _unary(getattr(F, n)) for n in (
        "exp", "log", "sqrt", "sigmoid", "tanh", "relu", "softplus", "abs", "sin", "cos",
        "square", "stop_gradient", "transpose", "diag", "diagonal", "step", "floor")},
    **{n: _binary(getattr(F, n)) for n in (
        "maximum", "minimum", "bce", "dot", "outer", "matmul", "take")},
    "pow": _binary(F.power),
    **{n: _axis(getattr(F, n)) for n in (
        "sum", "mean", "logsumexp", "softmax", "log_softmax", "argmax")},
}

_BINOPS: dict[type, Callable] = {
    ast.Add: F.add, ast.Sub: F.sub, ast.Mult: F.mul, ast.Div: F.div, ast.Pow: F.power,
    ast.MatMult: F.matmul,
}
_OP_TEXT = {ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>",
            ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.Not: "not", ast.Invert: "~"}
_TEMPORARY = re.compile(r"t[0-9]+")  # the names printing gives shared parts

_WHAT = {  # how refused syntax is called in messages
    "Lambda": "a lambda", "ListComp": "a comprehension", "SetComp": "a comprehension",
    "DictComp": "a comprehension", "GeneratorExp": "a comprehension", "Subscript": "indexing",
    "Compare": "a comparison", "BoolOp": "'and'/'or'", "IfExp": "'if ... else'",
    "Starred": "'*' unpacking", "JoinedStr": "an f-string", "NamedExpr": "':='",
    "List": "a list", "Tuple": "a tuple", "Dict": "a dict", "Set": "a set", "Await": "'await'",
    "Yield": "'yield'", "YieldFrom": "'yield'", "Slice": "a slice",
}


@dataclass(frozen=True)
class _At:
    """A position inside a node (e.g. the '.' of an attribute)."""

    lineno: int
    col_offset: int


def _char_col(text: str, line: int, byte_col: int) -> int:
    """1-based character column of an ast position (ast gives UTF-8 byte offsets)."""
    lines = text.split("\n")
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    return len(src.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore")) + 1


def _lead(text: str) -> tuple[int, int]:
    """(lines, columns) that strip() cuts off the front of ``text``: positions in the stripped
    text are these many lines further down, and on its first line these many columns right."""
    lead = text[:len(text) - len(text.lstrip())]
    return lead.count("\n"), len(lead) - (lead.rfind("\n") + 1)


class _Parser:
    def __init__(self, text: str, variables: dict[str, Expr]):
        self.text = text
        self.lines_cut, self.cols_cut = _lead(text)
        # Python reads identifiers in NFKC form (the micro sign µ is the Greek μ, the ligature
        # ﬁ is fi): the names given are looked up as the text's names read
        self.env: dict[str, Expr] = {}
        for k, v in variables.items():
            key = nfkc(k) if isinstance(k, str) else k
            if key in self.env and self.env[key] is not v:
                raise ValueError(f"parse: the names {k!r} and another read the same in a "
                                 f"formula ({key!r}); give one of them another name")
            self.env[key] = v
        self.assigned: set[str] = set()
        self.ints: dict[int, int] = {}  # ids of the nodes of integer value -> the value

    def error(self, node: ast.AST | _At | None, message: str) -> ParseError:
        if node is None or not hasattr(node, "lineno"):
            return ParseError(message, self.text)
        line = node.lineno
        col = _char_col(self.text.strip(), line, node.col_offset)
        if line == 1:
            col += self.cols_cut
        return ParseError(message, self.text, line + self.lines_cut, col)

    # ------------------------------------------------------------------ statements
    def program(self, tree: ast.Module) -> Expr:
        if not tree.body:
            raise ParseError("empty expression", self.text)
        result = None
        for st in tree.body:
            if isinstance(st, ast.Expr):
                if st is not tree.body[-1]:
                    raise self.error(st, "only the last part may be a bare expression; name "
                                     "the others ('phi = ...')")
                result = self.expr(st.value)
            elif isinstance(st, ast.Assign):
                result = self.assign(st)
            else:
                kind = type(st).__name__.lower()
                raise self.error(st, f"statement '{kind}' is not allowed; write 'name = "
                                 "expression' or an expression")
        return result

    def assign(self, st: ast.Assign) -> Expr:
        if len(st.targets) != 1 or not isinstance(st.targets[0], ast.Name):
            raise self.error(st, "only 'name = expression' assignments are allowed")
        name = st.targets[0].id
        self.check_name(st.targets[0], name)
        if name in self.env:
            what = "assigned" if name in self.assigned else "a variable"
            raise self.error(st.targets[0], f"'{name}' is already {what}")
        value = self.expr(st.value)
        if name in self.env:  # x = x + 1: the right side made x a variable
            raise self.error(st.targets[0], f"'{name}' is used in its own definition")
        if _TEMPORARY.fullmatch(name):
            # the printer's own temporaries (str(e) binds shared parts to t1, t2, ...): they name
            # the parsed graph's nodes only, else every later tanh(x*y) would print as t1
            e = rename(value, name)
        else:
            e = value.named(name)  # (what later constructions return: derivatives read mu - y)
        self.env[name] = e
        self.assigned.add(name)
        return e

    def check_name(self, node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            raise self.error(node, f"names starting with '_' are not allowed ('{name}')")
        if name in FUNCTIONS:
            raise self.error(node, f"'{name}' is a function: call it as {name}(...)")

    # ------------------------------------------------------------------ expressions
    def expr(self, root: ast.AST) -> Expr:
        """Build the expression bottom-up with an explicit stack (no recursion)."""
        done: dict[int, object] = {}
        stack: list[tuple[ast.AST, int, bool]] = [(root, 0, False)]
        while stack:
            node, depth, expanded = stack.pop()
            if depth > MAX_DEPTH:
                raise self.error(node, f"expression nested too deeply (more than {MAX_DEPTH} "
                                 "levels)")
            if expanded:
                done[id(node)] = self.build(node, done)
                continue
            stack.append((node, depth, True))
            for child in self.children(node):
                # a left operand that is itself a binary operation continues a flat chain
                # (x0 + x1 + ... is nested to the left by Python's grammar): no deeper
                chained = isinstance(node, ast.BinOp) and child is node.left and \
                    isinstance(child, ast.BinOp)
                stack.append((child, depth if chained else depth + 1, False))
        return self.operand(root, done)  # (an integer too large for a float: refused)

    def children(self, node: ast.AST) -> list[ast.AST]:
        """The operand nodes to build first; refuses everything outside the whitelist."""
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                hint = "; write ** for a power (x**2)" if isinstance(node.op, ast.BitXor) else ""
                raise self.error(node, f"operator {_OP_TEXT.get(type(node.op), '?')} is not "
                                 f"allowed{hint}")
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self.error(node, f"operator {_OP_TEXT.get(type(node.op), '?')} is not "
                                 "allowed")
            return [node.operand]
        if isinstance(node, (ast.Constant, ast.Name)):
            return []
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                at = _At(node.lineno, max(node.end_col_offset - len(node.attr) - 1, 0))
                raise self.error(at, f"attribute access is not allowed ('.{node.attr}'); "
                                 "only '.T' (transpose) is")
            return [node.value]
        if isinstance(node, ast.Call):
            return self.call_operands(node)
        what = _WHAT.get(type(node).__name__, f"'{type(node).__name__}'")
        raise self.error(node, f"{what} is not allowed in an expression")

    def call_operands(self, node: ast.Call) -> list[ast.AST]:
        if not isinstance(node.func, ast.Name):
            raise self.error(node, "only symgrad's functions can be called, by name "
                             "(e.g. exp(x))")
        name = node.func.id
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise self.error(node.func, f"unknown function '{name}'; known: "
                             f"{', '.join(sorted(FUNCTIONS))}")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.error(a, "'*' unpacking is not allowed")
        npos = len(node.args)
        axis_pos = spec.axis and npos == spec.nargs[0] + 1
        if npos not in spec.nargs and not axis_pos:
            want = " or ".join(str(k) for k in spec.nargs)
            raise self.error(node, f"{name} takes {want} operand{'s' if want != '1' else ''}, "
                             f"got {npos}")
        for i, kw in enumerate(node.keywords):
            if kw.arg != "axis" or not spec.axis:
                shown = "**" if kw.arg is None else kw.arg
                raise self.error(kw.value, f"{name} takes no keyword '{shown}'")
            if axis_pos or i:  # sum(X, 0, axis=1) or sum(X, axis=0, axis=1): which one?
                raise self.error(kw.value, f"{name}: axis given twice")
            self.axis_value(kw.value, name)
        if axis_pos:
            self.axis_value(node.args[-1], name)
            return list(node.args[:-1])
        return list(node.args)

    def axis_value(self, node: ast.AST, fname: str):
        """An axis: an int, a negative int, a tuple of them, or None."""
        def one(n):
            neg = isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub)
            c = n.operand if neg else n
            if isinstance(c, ast.Constant) and type(c.value) is int and abs(c.value) < 64:
                return -c.value if neg else c.value
            raise self.error(n, f"{fname}: axis must be a small integer, a tuple of them, "
                             "or None")

        if isinstance(node, ast.Constant) and node.value is None:
            return None
        if isinstance(node, ast.Tuple):
            if len(node.elts) > 64:
                raise self.error(node, f"{fname}: too many axes")
            return tuple(one(n) for n in node.elts)
        return one(node)

    def build(self, node: ast.AST, done: dict[int, object]) -> Expr:
        try:
            return self._build(node, done)
        except ParseError:
            raise
        except (ValueError, TypeError, ArithmeticError) as err:  # shapes, names, sizes
            raise self.error(node, str(err)) from err

    def _build(self, node: ast.AST, done: dict[int, object]) -> Expr | None:
        """The node's expression; None for an integer too large for a float, which
        arithmetic on integers may still bring back (``10**400 / 10**399``, as Python
        computes it: see _exact)."""
        if isinstance(node, ast.Constant):
            v = node.value
            if type(v) not in (int, float):
                raise self.error(node, f"{type(v).__name__} constants are not allowed "
                                 f"({v!r:.20}); only numbers")
            if type(v) is int:
                return self._integer(node, v)
            if not math.isfinite(v):
                raise self.error(node, "number too large")
            return F.const(v)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            folded = self._exact(node)
            if folded is not _NOT_EXACT:
                return folded
            return _BINOPS[type(node.op)](self.operand(node.left, done),
                                          self.operand(node.right, done))
        if isinstance(node, ast.UnaryOp):
            if id(node.operand) in self.ints:
                v = self.ints[id(node.operand)]
                return self._integer(node, -v if isinstance(node.op, ast.USub) else v)
            x = self.operand(node.operand, done)
            return F.neg(x) if isinstance(node.op, ast.USub) else x
        if isinstance(node, ast.Attribute):
            return F.transpose(self.operand(node.value, done))
        assert isinstance(node, ast.Call)
        spec = FUNCTIONS[node.func.id]  # type: ignore[union-attr]
        args = [self.operand(a, done) for a in node.args if id(a) in done]
        kwargs = {}
        if spec.axis:
            axis_node = next((kw.value for kw in node.keywords), None)
            if len(node.args) == 2:
                axis_node = node.args[1]
            if axis_node is not None:
                kwargs["axis"] = self.axis_value(axis_node, node.func.id)  # type: ignore
        return spec.fn(*args, **kwargs)

    def operand(self, node: ast.AST, done: dict[int, object]) -> Expr:
        e = done[id(node)]
        if e is None:  # an integer too large for a float, used as a number
            raise self.error(node, "number too large")
        return e  # type: ignore[return-value]

    def _integer(self, node: ast.AST, v: int) -> Expr | None:
        """An integer's constant, its exact value kept for arithmetic on integers."""
        self.ints[id(node)] = v
        try:
            return F.const(float(v))
        except OverflowError:
            return None

    def _exact(self, node: ast.BinOp):
        """``a op b`` of two integers as Python computes it, exactly (an integer, or a
        correctly rounded float for ``/`` and negative powers), where numpy's floats would
        overflow to inf (``10**400 / 10**399 * x`` gave nan); _NOT_EXACT otherwise."""
        a, b = self.ints.get(id(node.left)), self.ints.get(id(node.right))
        if a is None or b is None:
            return _NOT_EXACT
        op = type(node.op)
        if op is ast.Div or op is ast.Pow and b < 0:
            if a == 0 and (b <= 0 if op is ast.Pow else True) or op is ast.Div and b == 0:
                return _NOT_EXACT  # (1/0: inf, as numpy divides)
            try:
                r = a / b if op is ast.Div else a ** b
            except OverflowError:
                raise self.error(node, "number too large") from None
            return F.const(r)
        if op is ast.Pow and abs(a) > 1 and b * math.log2(abs(a)) > _MAX_BITS or \
                op is ast.Mult and a.bit_length() + b.bit_length() - 1 > _MAX_BITS + 1:
            # (refused, not computed; a product has at least its factors' bits less one, and
            # 2**65536, of 65,537 bits, is allowed as a power and as a product alike)
            raise self.error(node, "number too large")
        r = a + b if op is ast.Add else a - b if op is ast.Sub else a * b if op is ast.Mult \
            else a ** b
        return self._integer(node, r)

    def name(self, node: ast.Name) -> Expr:
        name = node.id
        hit = self.env.get(name)
        if hit is not None:
            return hit
        if name in NUMBERS:  # as str() prints them
            return F.const(NUMBERS[name])
        self.check_name(node, name)
        e = F.scalar(name)
        self.env[name] = e
        return e


def parse(text: str, variables: dict[str, Expr] | None = None) -> Expr:
    """The expression that ``text`` describes, built without executing anything.

    ``variables`` maps names to declared variables (e.g. ``{"w": sg.vector("w", "n")}``); other
    names become scalar variables. ``name = expression`` parts, separated by ``;`` or new
    lines, name intermediate values (shown by that name in printing, and, as ``.named``
    does, returned by later constructions of the value: derivatives read them); names of the
    form ``t1``, ``t2``, ... (the temporaries ``str(e)`` writes) name the parsed nodes only,
    so parsing a printed text leaves how other expressions print unchanged. The last part is
    the result. ``inf`` and ``nan`` are the numbers (as ``str`` prints them), unless
    ``variables`` or an assignment names them. Raises :class:`ParseError` (a ``ValueError``)
    naming the position of the problem.
    A text has at most 10,000 characters. Brackets, a call's included (``exp(exp(x))``), nest
    at most 200 deep, as many as Python's own parser allows; other nesting (unary minus, ``**``
    chains, calls) at most 500 levels deep. A flat sum or product of many terms is not nested,
    but Python's parser refuses one of about 3,000 terms, and may refuse a text that nests
    near both limits at once.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse: expected a string, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ParseError(f"expression too long ({len(text)} characters; at most {MAX_CHARS})",
                         text)
    if variables is not None and not isinstance(variables, dict):
        raise TypeError(f"parse: variables must be a dict from names to expressions, got "
                        f"{type(variables).__name__}")
    variables = dict(variables or {})
    for k, v in variables.items():
        if not isinstance(v, Expr):
            raise TypeError(f"parse: variables[{k!r}] is not an expression")
    body = text.strip()
    lines_cut, cols_cut = _lead(text)
    try:
        tree = ast.parse(body, mode="exec")
    except SyntaxError as err:
        msg = err.msg
        long = _too_many_digits(text) if "integer string conversion" in msg else None
        if long is not None:  # (Python's own limit of 4,300 digits, at column 1)
            before = text[:long]
            raise ParseError("number too large", text, before.count("\n") + 1,
                             long - before.rfind("\n")) from None
        if "nested parentheses" in msg:
            msg = (f"expression nested too deeply (Python's parser allows at most "
                   f"{MAX_BRACKETS} brackets open at once)")
        line = err.lineno or 1
        col = (err.offset or 1) + (cols_cut if line == 1 else 0)
        raise ParseError(f"syntax error: {msg}", text, line + lines_cut, col) from None
    except (RecursionError, MemoryError):
        raise ParseError("expression too long or nested too deeply", text) from None
    return _Parser(text, variables).program(tree)


_INTEGER = re.compile(r"(?<![\w.])\d[\d_]*(?![\w.])")  # an integer literal, not in a name or float


def _too_many_digits(text: str) -> int | None:
    """Where the first integer literal of more digits than Python converts starts, or None."""
    for m in _INTEGER.finditer(text):
        if len(m.group().replace("_", "")) > 4300:
            return m.start()
    return None


def nfkc(name: str) -> str:
    """``name`` as Python reads an identifier (NFKC: µ is μ, ﬁ is fi)."""
    return unicodedata.normalize("NFKC", name)


def assigned_in(text: str) -> set[str]:
    """The names ``text`` defines (``h = ...``): named values, not variables."""
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except (SyntaxError, RecursionError, MemoryError):
        return set()
    return {t.id for st in ast.walk(tree) if isinstance(st, ast.Assign)
            for t in st.targets if isinstance(t, ast.Name)}


def names_in(text: str) -> list[str]:
    """The names ``text`` uses, in the order they first appear (variables and named values,
    before anything is built): a variable that building folds away (``x - x`` is 0) is still
    one the text has."""
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except (SyntaxError, RecursionError, MemoryError):
        return []
    found = sorted((n.lineno, n.col_offset, n.id) for n in ast.walk(tree)
                   if isinstance(n, ast.Name) and n.id not in FUNCTIONS
                   and n.id not in NUMBERS)
    return list(dict.fromkeys(name for _, _, name in found))
