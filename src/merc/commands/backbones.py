"""``merc backbones``: list registered dialogue backbones."""

from __future__ import annotations

import argparse

from merc.cli import add_command


def _list(args: argparse.Namespace) -> int:
    from merc.commands._listing import print_registry
    from merc.registry import BACKBONES

    return print_registry(BACKBONES, "backbones", args.verbose)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "backbones", "list registered dialogue backbones and their default options", _list)
    p.add_argument("-v", "--verbose", action="store_true", help="show each backbone's bundled defaults")
