"""``merc explain``: explanations of a trained model on a dataset split (tables, JSON and figures)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from merc.cli import add_command


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from merc.commands.evaluate import check_compatible
    from merc.data.loading import load_dataset
    from merc.errors import ConfigError, MercError
    from merc.explain import write_explanations
    from merc.training.model_dir import load_model_dir

    bundle = load_model_dir(args.model_dir)
    if getattr(bundle.method, "explanation_kind", None) is None:
        raise ConfigError(f"{args.model_dir}: method '{bundle.config.model.method}' offers no explanation; "
                          "train with a method that does, e.g. --method dnr")
    data_cfg = bundle.config.data
    if args.data and (args.data != data_cfg.dataset or args.data_path or args.format):
        same = args.data == data_cfg.dataset
        data_cfg = replace(data_cfg, dataset=args.data, path=args.data_path or (data_cfg.path if same else None),
                           format=args.format, options=data_cfg.options if same else {})
    dataset = load_dataset(data_cfg)
    check_compatible(bundle, dataset)
    dialogues = dataset.split(args.split)
    if not dialogues:
        raise MercError(f"{data_cfg.dataset}: split '{args.split}' is empty; choose another with --split")
    out = Path(args.out) if args.out else Path(args.model_dir) / f"explain_{args.split}"
    summary = write_explanations(bundle.method, dialogues, bundle.modalities, bundle.label_names, out, args.batch_size)
    print(f"{bundle.method.explanation_kind} explanation of {summary.get('num_utterances', '?')} utterances "
          f"({data_cfg.dataset}, split {args.split})")
    for line in truth_lines(summary):
        print(f"  {line}")
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    print(f"written to {out}: {', '.join(files)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "explain", "explain a trained model's predictions (DnR components, DRKF attention)", _run,
                    description="Run the explanation of MODEL_DIR's method over a split of DATA (default: the "
                                "data it was trained on) and write CSV/JSON tables and PNG figures. "
                                "See docs/explanations.md for every file.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model directory written by 'merc train' (seed_<s>/)")
    p.add_argument("data", metavar="DATA", nargs="?", help="catalog name or data file (default: training data)")
    p.add_argument("--data-path", dest="data_path", help="local files for a catalog dataset")
    p.add_argument("--format", help="force the data file format")
    p.add_argument("--split", default="test", choices=("train", "dev", "test"), help="split to explain")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=16, help="dialogues per batch")
    p.add_argument("--out", metavar="DIR", help="output directory (default MODEL_DIR/explain_<split>)")


def truth_lines(summary: dict[str, Any]) -> list[str]:
    """How the explanation compares with the planted truth (synthetic data; empty otherwise)."""
    lines = []
    agreement = summary.get("interaction_agreement") or {}
    if agreement.get("n"):
        lines.append(f"top component type matches the planted interaction for {100 * agreement['top_component']:.1f}% "
                     f"of {agreement['n']} utterances (uniform chance 33.3%; always naming the most common "
                     f"planted kind: {100 * agreement.get('majority_baseline', 1 / 3):.1f}%)")
        if "top_kind_ablation" in agreement:
            lines.append("removing each kind from every modality: the most harmful kind matches for "
                         f"{100 * agreement['top_kind_ablation']:.1f}%")
    shapley = summary.get("interaction_agreement_shapley") or {}
    if shapley.get("n"):
        cross = shapley.get("other_share", {}).get("X")
        lines.append(f"on-distribution Shapley over kinds (attribution 'shapley'): the top kind matches for "
                     f"{100 * shapley['top_kind']:.1f}% (zero-ablation measure above: attribution 'zero')"
                     + (f"; cross terms hold {100 * cross:.1f}% of |attribution|" if cross is not None else ""))
    carrier = summary.get("carrier_agreement") or {}
    if carrier.get("n"):
        lines.append(f"unique evidence: the most influential modality is the planted one for "
                     f"{100 * carrier['top_modality']:.1f}% of {carrier['n']} utterances "
                     f"(always naming the most common: {100 * carrier['chance']:.1f}%)")
    carrier = summary.get("carrier_agreement_shapley") or {}
    if carrier.get("n"):
        lines.append(f"unique evidence, Shapley over modalities: the planted carrier is named for "
                     f"{100 * carrier['top_modality']:.1f}%")
    return lines
