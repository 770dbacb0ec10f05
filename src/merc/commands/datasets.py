"""``merc datasets``: list the dataset catalog; ``merc datasets inspect NAME_OR_PATH``: describe one."""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

from merc.cli import add_command
from merc.errors import ConfigError


def _list(args: argparse.Namespace) -> int:
    from merc.data.catalog import describe_dataset
    from merc.data.formats import FORMATS
    from merc.registry import DATASETS

    entries = {}
    for name, doc in DATASETS.describe().items():
        info = describe_dataset(name)
        entries[name] = {"summary": doc, "labels": info.labels, "splits": info.splits, "formats": info.formats,
                         "features": info.features}
    if args.json:
        print(json.dumps({"datasets": entries, "formats": {k: f.description for k, f in FORMATS.items()}}, indent=2))
        return 0
    for name, entry in entries.items():
        print(f"{name}\n    {entry['summary']}")
        for key in ("labels", "splits", "formats", "features"):
            print(f"    {key + ':':10s}{entry[key]}")
    print("\nfile formats (data.dataset=PATH, data.format=NAME):")
    for key, fmt in FORMATS.items():
        print(f"    {key:14s}{fmt.description}")
    return 0


def _options(items: list[str]) -> dict[str, Any]:
    options = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--option '{item}' must look like key=value")
        key, value = item.split("=", 1)
        options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return options


def summarize(dataset: Any, report: Any) -> dict[str, Any]:
    """Counts per split and class, dims, speakers — the content of ``merc datasets inspect``."""
    splits = {}
    for split, ids in dataset.splits.items():
        dialogues = dataset.split(split)
        counts = dataset.class_counts(split)
        splits[split] = {"dialogues": len(ids), "utterances": sum(len(d) for d in dialogues),
                         "classes": {n: int(c) for n, c in zip(dataset.label_names, counts)}}
    return {"name": dataset.name, "source": dataset.source, "dialogues": len(dataset.dialogues),
            "utterances": dataset.num_utterances, "label_names": list(dataset.label_names),
            "modalities": "".join(dataset.modalities), "dims": dataset.dims,
            "speakers": len(dataset.speaker_names()), "max_parties": dataset.max_parties(),
            "has_text": all(d.texts is not None for d in dataset.dialogues), "splits": splits,
            "dev_from": dataset.meta.get("dev_from"), "dev_seed": dataset.meta.get("dev_seed"),
            "cleaning": list(report.changes)}


def _inspect(args: argparse.Namespace) -> int:
    from merc.data.loading import open_dataset
    from merc.data.splits import ensure_dev_split
    from merc.data.validate import validate_dataset

    dataset = open_dataset(args.dataset, args.path, args.format, _options(args.option))
    report = validate_dataset(dataset, clean=args.clean, require_features=False)
    if len(dataset.splits.get("train", [])) >= 2:  # show the dev split training would use
        dataset = ensure_dev_split(dataset, args.dev_fraction, args.dev_seed)
    info = summarize(dataset, report)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}  ({info['source']})")
    print(f"  dialogues {info['dialogues']}, utterances {info['utterances']}, speakers {info['speakers']}, "
          f"max parties per dialogue {info['max_parties']}")
    dims = ", ".join(f"{m}={d}" for m, d in info["dims"].items()) or "none (transcripts only)"
    print(f"  features: {dims}; text: {'yes' if info['has_text'] else 'no'}")
    dev = f" (dev: {info['dev_from']}" + (f", seed {info['dev_seed']})" if info["dev_seed"] is not None else ")")
    print(f"  labels: {', '.join(info['label_names'])}{dev}")
    width = max(6, *(len(n) for n in info["label_names"]))
    header = f"  {'split':6s} {'dial.':>6s} {'utt.':>6s}  " + " ".join(f"{n:>{width}s}" for n in info["label_names"])
    print(header)
    for split, s in info["splits"].items():
        counts = " ".join(f"{c:>{width}d}" for c in s["classes"].values())
        print(f"  {split:6s} {s['dialogues']:>6d} {s['utterances']:>6d}  {counts}")
    for change in info["cleaning"]:
        print(f"  cleaned: {change}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "inspect":
        return _inspect(args)
    return _list(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "datasets", "list the dataset catalog, or inspect one dataset", _run,
                    description="List named datasets (label sets, splits, formats) or inspect one: "
                    "`merc datasets inspect NAME_OR_PATH` prints counts per split and class, feature dims "
                    "and speakers.")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    actions.add_parser("list", help="list the catalog (the default)", description="List the dataset catalog.",
                       formatter_class=p.formatter_class).add_argument(
        "--json", action="store_true", help="print JSON instead of text")
    q = actions.add_parser("inspect", help="counts per split and class, dims, speakers of one dataset",
                           description="Load a catalog dataset or a data file/folder and describe it.",
                           formatter_class=p.formatter_class)
    q.add_argument("dataset", metavar="NAME_OR_PATH", help="catalog name (merc datasets) or a file/folder")
    q.add_argument("--path", default=None, help="file/folder for catalog entries that read local files")
    q.add_argument("--format", default=None, help="force a file format (paths only; see docs/formats.md)")
    q.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="builder/reader option, e.g. labels=meld-3 (repeatable)")
    q.add_argument("--clean", action="store_true", help="replace NaN/inf features by 0 (reported) instead of failing")
    q.add_argument("--dev-fraction", type=float, default=0.1, help="dev share carved from train when no dev split")
    q.add_argument("--dev-seed", type=int, default=0, help="seed of that carve-out")
    q.add_argument("--json", action="store_true", help="print JSON instead of text")
