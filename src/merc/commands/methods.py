"""``merc methods``: list registered methods."""

from __future__ import annotations

import argparse

from merc.cli import add_command


def _list(args: argparse.Namespace) -> int:
    from merc.commands._listing import print_registry
    from merc.registry import METHODS

    return print_registry(METHODS, "methods", args.verbose)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "methods", "list registered methods (none, dnr, drkf) and their default options", _list)
    p.add_argument("-v", "--verbose", action="store_true", help="show each method's bundled defaults")
