"""Accuracy of every graph backbone vs Late Fusion on the context-dependent synthetic preset.

Runs :func:`merc.training.experiment.run_experiment` (method ``none``, bundled backbone
defaults, dev-set model selection) for each backbone over several seeds on
``synthetic-context`` — labels there often depend on conversational context (per-speaker
emotion inertia; 30% of utterances carry no evidence of their own) — and writes a mean ± std
table of test weighted F1 and accuracy, plus the test accuracy on the context-only utterances,
to the accuracy section of ``docs/benchmarks.md``::

    python benchmarks/accuracy_backbones.py                       # 5 seeds, all four backbones
    python benchmarks/accuracy_backbones.py --seeds 0 1 --max-epochs 5 --no-write
    python benchmarks/accuracy_backbones.py --backbones mmgcn mmgcn:speaker_context=true

A backbone is given as ``name`` (bundled defaults) or ``name:key=value,key=value`` (options
overriding the defaults, values parsed as YAML); every row uses the same trainer settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- accuracy_backbones:start -->", "<!-- accuracy_backbones:end -->"
BACKBONES = ("late_fusion", "mmgcn", "dialogue_gcn", "mm_dfn")
DATASET = "synthetic-context"
CONTEXT_ONLY = 3  # interaction code of utterances without own evidence (merc.data.synthetic.config)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"mmgcn:speaker_context=true"`` → ``("mmgcn", {"speaker_context": True})``."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"bad backbone option '{item}' in '{spec}': use key=value")
        options[key.strip()] = yaml.safe_load(value)
    return name, options


def run_dir(spec: str) -> str:
    return spec.replace(":", "__").replace("=", "-").replace(",", "_")


def run(spec: str, seeds: list[int], max_epochs: int, patience: int, lr: float, out: Path, threads: int) -> dict:
    from merc.config import DataConfig, ExperimentConfig, ModelConfig, OutputConfig, TrainerConfig
    from merc.training.experiment import run_experiment

    name, options = parse_spec(spec)
    config = ExperimentConfig(
        data=DataConfig(dataset=DATASET, modalities="tav", batch_size=16),
        model=ModelConfig(method="none", backbone=name, backbone_options=options),
        trainer=TrainerConfig(max_epochs=max_epochs, patience=patience, lr=lr, seeds=seeds, progress=False,
                              threads=threads),
        output=OutputConfig(dir=str(out / run_dir(spec))))
    start = time.perf_counter()
    run_experiment(config, log=lambda msg: print(msg, flush=True))
    row = collect(spec, out)
    row["seconds"] = time.perf_counter() - start
    return row


def context_accuracy(seed_dirs: list[Path]) -> list[float]:
    """Test accuracy (%) on the context-only utterances of each seed's saved model."""
    from merc.config import DataConfig
    from merc.data.loading import load_dataset
    from merc.evaluation.predict import predict_dialogues
    from merc.training.model_dir import load_model_dir

    test = load_dataset(DataConfig(dataset=DATASET, modalities="tav")).split("test")
    interaction = np.concatenate([d.meta["interaction"] for d in test])
    values = []
    for path in seed_dirs:
        bundle = load_model_dir(path)
        preds = predict_dialogues(bundle.method, test, bundle.modalities)
        hit = (preds.predicted == preds.labels)[interaction == CONTEXT_ONLY]
        values.append(100.0 * float(hit.mean()))
    return values


def collect(spec: str, out: Path) -> dict | None:
    """The row of the experiment under ``out/<spec>`` from its per-seed model directories (a run
    still in progress contributes its finished seeds; None if nothing is there)."""
    seed_dirs = sorted((p.parent for p in (out / run_dir(spec)).glob("seed_*/metrics.json")
                        if (p.parent / "info.json").exists()), key=lambda p: int(p.name.split("_")[1]))
    if not seed_dirs:
        return None
    metrics = [json.loads((p / "metrics.json").read_text(encoding="utf-8")) for p in seed_dirs]
    return {"backbone": spec, "seeds": [int(m.get("seed", p.name.split("_")[1])) for m, p in zip(metrics, seed_dirs)],
            **{key: _stats([m["test"][metric] for m in metrics])
               for key, metric in (("wf1", "weighted_f1"), ("acc", "accuracy"), ("macro", "macro_f1"))},
            "context": _stats(context_accuracy(seed_dirs)),
            "best_epoch": _stats([m.get("best_epoch", -1) + 1 for m in metrics]),
            "epochs_run": _stats([m.get("epochs_run", 0) for m in metrics]),
            "seconds": float("nan")}


def _stats(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "values": [float(v) for v in arr]}


def _pm(stat: dict, digits: int = 2) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def preset_summary() -> str:
    from merc.data.synthetic.presets import PRESETS

    c = PRESETS[DATASET]
    return (f"`{DATASET}` (labels depend on conversational context: a speaker keeps their previous emotion with "
            f"probability {c.inertia}, no speaker bias; {c.context_only:.0%} of utterances carry no evidence of "
            f"their own — their label can only be read from the same speaker's nearby utterances; "
            f"{c.train_dialogues}/{c.test_dialogues} train/test dialogues of {c.min_length}-{c.max_length} "
            f"utterances, dev carved from train)")


def markdown(rows: list[dict], command: str, seeds: list[int], max_epochs: int, patience: int, lr: float,
             note: str = "") -> str:
    base = next((r for r in rows if r["backbone"] == "late_fusion"), None)
    lines = [START, "## Backbones: accuracy on the context preset", "",
             f"Command: `{command}`{note}, from the repository root. Machine: {os.cpu_count()} CPU cores, shared "
             "with other processes; one torch thread per run.", "",
             f"{preset_summary()}, modalities tav, method `none`, bundled backbone defaults unless the row names "
             f"options; the same trainer settings for every row: Adam lr {lr}, batches of 16 dialogues, at most "
             f"{max_epochs} epochs, early stopping patience {patience}, model selected on dev weighted F1, seeds "
             f"{' '.join(map(str, seeds))}; test split, mean ± std over seeds.", "",
             "| backbone | seeds | test weighted F1 | test accuracy | test macro F1 | accuracy on context-only "
             "utterances | Δ weighted F1 vs Late Fusion | seeds better than Late Fusion | selected epoch "
             "| wall time (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        delta, wins = "–", "–"
        if base is not None and r is not base:
            by_seed = dict(zip(base["seeds"], base["wf1"]["values"]))
            pairs = [(v, by_seed[s]) for s, v in zip(r["seeds"], r["wf1"]["values"]) if s in by_seed]
            if pairs:
                diff = np.asarray([a - b for a, b in pairs])
                delta = f"{diff.mean():+.2f} ± {diff.std(ddof=1) if diff.size > 1 else 0.0:.2f}"
                wins = f"{int((diff > 0).sum())}/{diff.size}"
        label = r["backbone"].replace(":", " (") + (")" if ":" in r["backbone"] else "")
        lines.append(f"| {label} | {len(r['seeds'])} | {_pm(r['wf1'])} | {_pm(r['acc'])} | {_pm(r['macro'])} | "
                     f"{_pm(r['context'], 1)} | {delta} | {wins} | {_pm(r['best_epoch'], 1)} | "
                     f"{'–' if np.isnan(r['seconds']) else format(r['seconds'], '.0f')} |")
    lines += ["", "Δ is the per-seed paired difference (same seed, same data) with its std. Context-only "
              "utterances are the test utterances whose features carry no label evidence: a model that ignores "
              "the conversation can do no better there than the majority class (~24%). Selected epoch: "
              "the (1-based) epoch chosen on dev.", "", END]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    from merc.io_utils import atomic_write_text

    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    atomic_write_text(DOCS, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="*", default=list(BACKBONES),
                        help="backbones as name or name:key=value,... (default: the four backbones, bundled defaults)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=15)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "runs" / "accuracy_backbones"))
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    parser.add_argument("--collect", action="store_true",
                        help="do not train: tabulate the experiments already in --out (missing ones are skipped)")
    args = parser.parse_args()
    for spec in args.backbones:
        parse_spec(spec)  # fail on a malformed spec before hours of training
    if args.collect:
        rows = [r for r in (collect(b, Path(args.out)) for b in args.backbones) if r is not None]
    else:
        rows = [run(b, args.seeds, args.max_epochs, args.patience, args.lr, Path(args.out), args.threads)
                for b in args.backbones]
    argv = [a for a in sys.argv[1:] if a not in ("--collect", "--no-write")]
    command = "python " + " ".join(["benchmarks/accuracy_backbones.py", *argv])
    note = " (table collected from its result files with `--collect`)" if args.collect else ""
    section = markdown(rows, command, args.seeds, args.max_epochs, args.patience, args.lr, note)
    print(section)
    if not args.no_write:
        write_docs(section)
        print(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
