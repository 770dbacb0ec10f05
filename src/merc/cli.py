"""``merc`` command line: thin — parse, build a config, call the library.

Each sub-command lives in ``merc/commands/<name>.py`` and exposes
``register(subparsers) -> None`` which adds its parser (via :func:`add_command`) and sets
``func``. Errors a user can fix (:class:`merc.errors.MercError`) print one line and exit 2;
``--debug`` shows the traceback instead. A misspelled command or option is a one-line error
suggesting the nearest valid one. SIGINT/SIGTERM stop at a safe point and exit 130/143
(:mod:`merc.interrupt`).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import shlex
import signal
import sys
from typing import Callable, Sequence

from merc.interrupt import Interrupted

# Order shown in ``merc --help``.
COMMANDS: tuple[str, ...] = ("train", "evaluate", "explain", "predict", "datasets", "data", "features",
                             "finetune", "backbones", "methods", "sweep", "serve")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` only for real defaults: not for ``None`` (options whose default comes
    from the config; their help states it), not for on/off flags, not twice."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, []) or action.nargs == 0 or "(default:" in text:
            return text
        return super()._get_help_string(action) or text


class _Parser(argparse.ArgumentParser):
    """argparse with prefix-abbreviation disabled, so a misspelled flag is always an error, and
    one-line errors that suggest the nearest valid choice."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            valid = re.findall(r"'([^']*)'", choice.group(2))
            message += suggestion(choice.group(1), valid)
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def unknown_options(self, extras: list[str]) -> None:
        """Exit with a one-line error about the first unrecognised argument, suggesting the nearest option."""
        flags = [x for x in extras if x.startswith("-")]
        if not flags:
            self.error(f"unexpected argument '{extras[0]}'")
        word = flags[0].split("=", 1)[0]
        options = [s for a in self._actions for s in a.option_strings]
        self.error(f"unknown option {word}{suggestion(word, options)}")


def suggestion(word: str, valid: Sequence[str]) -> str:
    """``"; did you mean X?"`` for the closest of ``valid`` (difflib), else ``""``."""
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


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


def innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> "_Parser":
    """The (sub-)sub-command parser that ``args`` were parsed by (``merc data fetch`` → fetch's)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(args, action.dest, None)
            if name in action.choices:
                return innermost(action.choices[name], args)
    return parser  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``merc`` console script; returns the exit code."""
    from merc.errors import MercError
    from merc.interrupt import install_handlers

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        innermost(parser, args).unknown_options(extras)
    debug = args.debug or os.environ.get("MERC_DEBUG") == "1"
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    install_handlers()
    try:
        code = args.func(args)
    except Interrupted as exc:
        print(interrupted_line(exc, argv), file=sys.stderr, flush=True)
        return exc.exit_code
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
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
    return int(code or 0)


def interrupted_line(exc: Interrupted, argv: Sequence[str]) -> str:
    """The one line printed when a signal stopped a command: where to resume from, and how."""
    command = shlex.join(["merc", *argv])
    if argv and argv[0] == "train":
        resume = command if "--resume" in argv else f"{command} --resume"
        where = (f"last checkpoint {exc.checkpoint}" if exc.checkpoint is not None
                 else "no checkpoint of the current seed yet (finished seeds are kept)")
        return f"error: {exc}: {where}; resume with: {resume}"
    if argv and argv[0] == "sweep":
        return f"error: {exc}; finished runs are kept; run the same command again to continue: {command}"
    return f"error: {exc}; no half-written output was left (files are written atomically)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
