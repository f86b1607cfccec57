"""Run the code in the docs, so that the docs cannot drift from the code.

In every ``docs/**/*.md`` and ``README.md``:

- each fenced ```` ```python ```` block runs, in the file's order, in one namespace per file;
- an ```` ```output ```` block right after a python block must equal what that block printed;
- in a ```` ```console ```` block, each ``$ symgrad ...`` line is run as a fresh
  ``python -m symgrad ...`` process and the lines after it must equal its output.

Blocks marked anything else (```` ```text ````, ```` ```bash ````, ...) are not run. A page whose
examples need an optional dependency says so in a comment, ``<!-- needs: draw -->`` (a
renderer: Graphviz's dot or matplotlib); the test skips that page when it is missing.
``python -m tests.docs_blocks --update [FILE...]`` rewrites the expected outputs from what the
code prints now (review the diff before committing it).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass
class Block:
    lang: str
    start: int  # line index of the opening fence
    end: int  # line index of the closing fence
    code: str


def doc_files() -> list[Path]:
    files = sorted((ROOT / "docs").rglob("*.md"))
    if (ROOT / "README.md").exists():
        files.append(ROOT / "README.md")
    return files


def needs(text: str) -> set[str]:
    """The optional dependencies a page declares with ``<!-- needs: a, b -->``."""
    found = re.findall(r"<!--\s*needs:\s*([\w, ]+?)\s*-->", text)
    return {n.strip() for group in found for n in group.split(",") if n.strip()}


def blocks(text: str) -> list[Block]:
    lines = text.split("\n")
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"unclosed code fence at line {i + 1}")
        out.append(Block(m.group(1).lower(), i, j, "\n".join(lines[i + 1:j])))
        i = j + 1
    return out


def _norm(s: str) -> str:
    return "\n".join(line.rstrip() for line in s.strip("\n").split("\n"))


@dataclass
class Result:
    block: Block  # the block whose content is compared (output or console)
    expected: str
    actual: str


def _run_python(code: str, ns: dict, where: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, where, "exec"), ns)  # noqa: S102  (the docs' own examples)
    return buf.getvalue()


def _run_console(block: Block, workdir: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    outs = []
    for line in block.code.split("\n"):
        if not line.startswith("$ "):
            continue
        argv = shlex.split(line[2:])
        if argv[0] != "symgrad":
            raise ValueError(f"console blocks may only run symgrad, not {argv[0]!r}")
        res = subprocess.run([sys.executable, "-m", "symgrad", *argv[1:]], cwd=workdir, env=env,
                             capture_output=True, text=True, timeout=300)
        outs.append(line + "\n" + res.stdout + res.stderr)
    return "".join(outs)


def run_file(path: Path, workdir: Path) -> list[Result]:
    """Run a file's blocks in ``workdir``; returns the comparisons (expected vs actual)."""
    text = path.read_text()
    bs = blocks(text)
    ns: dict = {"__name__": "__docs__"}
    results = []
    old = os.getcwd()
    os.chdir(workdir)
    try:
        for k, b in enumerate(bs):
            if b.lang == "python":
                where = f"{path.name}:{b.start + 2}"
                printed = _run_python(b.code, ns, where)
                nxt = bs[k + 1] if k + 1 < len(bs) else None
                if nxt is not None and nxt.lang == "output" and _adjacent(text, b, nxt):
                    results.append(Result(nxt, _norm(nxt.code), _norm(printed)))
            elif b.lang == "output" and not (k and bs[k - 1].lang == "python"
                                             and _adjacent(text, bs[k - 1], b)):
                raise ValueError(f"{path.name}:{b.start + 1}: an output block must follow a "
                                 "python block")
            elif b.lang == "console":
                results.append(Result(b, _norm(b.code), _norm(_run_console(b, workdir))))
    finally:
        os.chdir(old)
    return results


def _adjacent(text: str, a: Block, b: Block) -> bool:
    """Whether only blank lines separate block ``a`` from block ``b``."""
    return all(not ln.strip() for ln in text.split("\n")[a.end + 1:b.start])


def update(path: Path, workdir: Path) -> int:
    """Rewrite the expected outputs of ``path`` from the code; returns how many changed."""
    results = run_file(path, workdir)
    lines = path.read_text().split("\n")
    changed = 0
    for r in sorted(results, key=lambda r: -r.block.start):
        if r.expected != r.actual:
            lines[r.block.start + 1:r.block.end] = r.actual.split("\n")
            changed += 1
    path.write_text("\n".join(lines))
    return changed


def main(argv: list[str]) -> int:
    import tempfile

    if not argv or argv[0] != "--update":
        print(__doc__)
        return 2
    files = [Path(a).resolve() for a in argv[1:]] or doc_files()
    for f in files:
        with tempfile.TemporaryDirectory() as tmp:
            n = update(f, Path(tmp))
        print(f"{f.relative_to(ROOT)}: {n} output block(s) rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
