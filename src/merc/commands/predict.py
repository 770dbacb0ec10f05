"""``merc predict``: label new conversations with a trained model, with explanations."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from merc.cli import add_command


def _run(args: argparse.Namespace) -> int:
    from merc.inference import Predictor, write_predictions

    model, conversations = _model_and_input(args)
    predictor = Predictor.from_pretrained(model, batch_size=args.batch_size, cache_dir=args.cache_dir,
                                          progress=not args.no_progress)
    out = args.out or default_out(conversations, args.format)
    rows = predictor.predict(conversations)
    path = write_predictions(rows, out, args.format)
    if not args.out:  # a quick look without opening the file
        for r in rows:
            print(f"{r['dialogue_id']}\t{r['speaker']}\t{r['label']}\t{r['confidence']:.3f}\t{r['text']}")
    counts = Counter(r["label"] for r in rows)
    dialogues = len({r["dialogue_id"] for r in rows})
    summary = ", ".join(f"{label} {n}" for label, n in counts.most_common())
    print(f"[merc] {len(rows)} utterances in {dialogues} dialogue(s): {summary}")
    labelled = [r for r in rows if "true_label" in r]
    if labelled:
        acc = sum(r["true_label"] == r["label"] for r in labelled) / len(labelled)
        print(f"[merc] accuracy on the {len(labelled)} labelled utterances: {100 * acc:.2f}")
    if path is not None:
        print(f"[merc] wrote {path}")
    return 0


def default_out(conversations: str, fmt: str | None) -> str:
    """``talks.csv`` → ``talks.predictions.csv`` (``.json`` for ``--format json``) in the current directory."""
    return f"{Path(conversations).stem}.predictions.{fmt or 'csv'}"


def _model_and_input(args: argparse.Namespace) -> tuple[str, str]:
    """``MODEL_DIR CONVERSATIONS`` or ``--model NAME CONVERSATIONS``."""
    from merc.errors import ConfigError

    if args.model:
        if args.conversations is not None:
            raise ConfigError("give the model either as MODEL_DIR or with --model, not both")
        if args.model_dir is None:
            raise ConfigError("missing CONVERSATIONS: merc predict --model NAME CONVERSATIONS")
        return args.model, args.model_dir
    if args.model_dir is None or args.conversations is None:
        raise ConfigError("give MODEL_DIR and CONVERSATIONS, or --model NAME CONVERSATIONS (e.g. --model meld-text)")
    return args.model_dir, args.conversations


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "predict", "predict emotions (with explanations) for new conversations", _run,
                    description="Label every utterance of CONVERSATIONS (a .csv or .jsonl table with columns "
                                "dialogue_id, speaker, text and optional audio/video paths) with the model in "
                                "MODEL_DIR (or the ready model --model meld-text). Features are extracted with the extractors the model was trained with. "
                                "Output: one row per utterance with label, probabilities and the explanation the "
                                "model's method offers (see docs/predict.md).")
    p.add_argument("model_dir", metavar="MODEL_DIR", nargs="?",
                   help="a model directory written by merc train or save_pretrained (e.g. runs/x/seed_0); "
                        "omit it with --model")
    p.add_argument("conversations", metavar="CONVERSATIONS", nargs="?", help="utterance table (.csv or .jsonl)")
    p.add_argument("--model", metavar="NAME", help="a bundled ready model (meld-text), a model directory or, "
                                                   "online, a Hugging Face Hub repository id")
    p.add_argument("--out", metavar="FILE", help="where to write the predictions (default: "
                   "<CONVERSATIONS stem>.predictions.csv, or .json with --format json, in the current directory)")
    p.add_argument("--format", choices=("csv", "json"), help="output format (default: from --out's suffix, else csv)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=16, help="dialogues per forward pass")
    p.add_argument("--cache-dir", dest="cache_dir", metavar="DIR", help="cache extracted features here (default: none)")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="hide progress bars")
