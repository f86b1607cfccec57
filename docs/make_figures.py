"""Regenerate the pictures in the docs and the README.

    python docs/make_figures.py            # writes docs/img/*.svg
    python docs/make_figures.py --out DIR  # somewhere else

Uses Graphviz's ``dot`` when it is installed (the committed pictures were made with it), else
matplotlib.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symgrad as sg  # noqa: E402
from symgrad.lecture import scalar_mlp  # noqa: E402


def scalar_mlp_picture(out: Path) -> Path:
    """The lecture's MLP: its forward graph and the nodes its four gradients added."""
    m = scalar_mlp()
    C = m["C"].named("C")
    grads = sg.grad(C, [m["u"], m["c"], m["w"], m["b"]])
    return Path(sg.draw([C, *grads], out / "scalar_mlp.svg"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img",
                    help="folder for the pictures (default: docs/img)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in (scalar_mlp_picture(args.out),):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
