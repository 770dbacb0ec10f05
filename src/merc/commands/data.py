"""``merc data fetch meld|emorynlp [--from DIR] [--to DIR]``: fetch and verify public transcripts."""

from __future__ import annotations

import argparse
import sys

from merc.cli import add_command


def _fetch(args: argparse.Namespace) -> int:
    from merc.data.fetch import REMOTE_DATASETS, fetch_dataset

    target = fetch_dataset(args.name, dest_root=args.to, source_dir=args.source, force=args.force,
                           timeout=args.timeout)
    spec = REMOTE_DATASETS[args.name]
    how = f"copied from {args.source}" if args.source else f"downloaded from {spec.url}"
    print(f"{args.name}: {len(spec.files)} files verified (sha256) in {target} ({how}; licence {spec.licence})")
    print(f"use it with: merc datasets inspect {args.name} --path {target}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) != "fetch":
        args.parser.print_usage(sys.stderr)
        print("error: choose an action, e.g. `merc data fetch meld`", file=sys.stderr)
        return 2
    return _fetch(args)


def register(sub: argparse._SubParsersAction) -> None:
    from merc.data.fetch import REMOTE_DATASETS

    p = add_command(sub, "data", "fetch public dataset transcripts (MELD, EmoryNLP)", _run,
                    description="Manage named datasets' files. `merc data fetch NAME` downloads the public "
                    "transcripts and verifies their SHA-256 checksums.")
    p.set_defaults(parser=p)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    f = actions.add_parser("fetch", help="download (or copy with --from) and verify a dataset's files",
                           description="Download a dataset's public files, or copy them from a local folder "
                           "with --from, and verify every SHA-256 checksum. Files land in "
                           "<root>/<name>/ where root is --to, else $MERC_DATA_DIR, else ~/.cache/merc/datasets. "
                           "On any failure nothing is kept.")
    f.add_argument("name", choices=sorted(REMOTE_DATASETS), help="dataset to fetch")
    f.add_argument("--from", dest="source", default=None, metavar="DIR",
                   help="copy from this local folder (or its <name> sub-folder) instead of downloading")
    f.add_argument("--to", default=None, metavar="DIR",
                   help="cache root (default: $MERC_DATA_DIR or ~/.cache/merc/datasets); files go to DIR/<name>")
    f.add_argument("--force", action="store_true", help="fetch again even if valid files are present")
    f.add_argument("--timeout", type=float, default=60.0, help="seconds per download")
