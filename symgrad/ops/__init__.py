"""The op table: every op's shape rule, lowering, sympy form, derivative and printing."""

from . import elementwise, gram, leaves, linalg, reduce, special  # noqa: F401,E402  (registration)
from .base import REGISTRY, Op  # noqa: F401
