"""``merc backbones`` and listing helpers."""

from __future__ import annotations

import argparse

from merc.cli import add_command


def _list(args: argparse.Namespace) -> int:
    from merc.config import bundled_defaults
    from merc.registry import BACKBONES

    for name, doc in BACKBONES.describe().items():
        print(f"{name:16s} {doc}")
        if args.verbose:
            for key, value in bundled_defaults("backbones", name).items():
                print(f"{'':16s}   {key}: {value}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "backbones", "list registered dialogue backbones and their default options", _list)
    p.add_argument("-v", "--verbose", action="store_true", help="show each backbone's bundled defaults")
