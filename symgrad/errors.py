"""The errors symgrad raises (see the contract's error table)."""

from __future__ import annotations


class ShapeError(ValueError):
    """Shapes that do not fit an operation; the message names the op and the shapes."""


class NonDifferentiableError(TypeError):
    """A derivative was asked through a value that has none (argmax, an index, ...)."""
