"""Errors users see. Every one is a single line naming the file, the field and the fix.

The CLI catches :class:`MercError` (and a few well-understood OS errors), prints
``error: <message>`` to stderr and exits with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

from pathlib import Path


class MercError(Exception):
    """A user-facing error: bad input, bad configuration, or an unsatisfiable request."""


class DataError(MercError):
    """A data file is malformed, inconsistent or unsupported.

    Args:
        source: the file (or dataset name) the problem is in.
        field: the field, key or column at fault (optional).
        problem: what is wrong.
        fix: what the user can do about it (optional).
    """

    def __init__(self, source: str | Path, problem: str, field: str | None = None, fix: str | None = None) -> None:
        self.source = str(source)
        self.field = field
        self.problem = problem
        self.fix = fix
        where = f"{self.source}" + (f" [{field}]" if field else "")
        message = f"{where}: {problem}" + (f"; {fix}" if fix else "")
        super().__init__(" ".join(message.split()))


class ConfigError(MercError):
    """A configuration value or command-line option is invalid."""


class NumericalError(MercError):
    """Training produced a NaN/inf loss."""
