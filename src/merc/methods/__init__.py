"""Trainable methods (``--method``): ``none`` (plain backbone), ``dnr``, ``drkf``.

Importing this package registers the built-in methods with :data:`merc.registry.METHODS`.
"""

from merc.methods import plain  # noqa: F401  (registers "none")
from merc.methods import dnr  # noqa: F401  (registers "dnr")
from merc.methods import drkf  # noqa: F401  (registers "drkf")
from merc.methods.base import FitContext, Method, MethodOutput

__all__ = ["FitContext", "Method", "MethodOutput"]
