"""``merc`` command line: thin — parse, build a config, call the library.

Each sub-command lives in ``merc/commands/<name>.py`` and exposes
``register(subparsers) -> None`` which adds its parser (via :func:`add_command`) and sets
``func``. Errors a user can fix (:class:`merc.errors.MercError`) print one line and exit 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

# Order shown in ``merc --help``.
COMMANDS: tuple[str, ...] = ("train", "evaluate", "explain", "predict", "datasets", "data", "features", "finetune",
                             "backbones", "methods", "sweep")


class _Parser(argparse.ArgumentParser):
    """argparse with prefix-abbreviation disabled, so a misspelled flag is always an error."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def add_command(subparsers: argparse._SubParsersAction, name: str, help: str,
                func: Callable[[argparse.Namespace], int | None], description: str | None = None) -> argparse.ArgumentParser:
    """Add sub-command ``name`` running ``func(args)``; returns its parser for adding options."""
    parser = subparsers.add_parser(name, help=help, description=description or help)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from merc import __version__

    parser = _Parser(prog="merc", description="Multimodal emotion recognition in conversation: "
                     "train, evaluate, explain and predict with DnR, DRKF and dialogue backbones.")
    parser.add_argument("--version", action="version", version=f"merc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"merc.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"merc.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``merc`` console script; returns the exit code."""
    from merc.errors import MercError

    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("MERC_DEBUG") == "1"
    try:
        code = args.func(args)
    except MercError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `merc datasets | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        if debug:
            raise
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}; check the path", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
