"""``merc methods``: list registered methods."""

from __future__ import annotations

import argparse

from merc.cli import add_command


def _list(args: argparse.Namespace) -> int:
    from merc.config import bundled_defaults
    from merc.registry import METHODS

    for name, doc in METHODS.describe().items():
        print(f"{name:16s} {doc}")
        if args.verbose:
            for key, value in bundled_defaults("methods", name).items():
                print(f"{'':16s}   {key}: {value}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "methods", "list registered methods (none, dnr, drkf) and their default options", _list)
    p.add_argument("-v", "--verbose", action="store_true", help="show each method's bundled defaults")
