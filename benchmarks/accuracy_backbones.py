"""Accuracy of every graph backbone vs Late Fusion on the context-dependent synthetic preset.

Runs :func:`merc.training.experiment.run_experiment` (method ``none``, bundled backbone
defaults, dev-set model selection) for each backbone over several seeds on
``synthetic-context`` — labels there often depend on conversational context (speaker inertia
0.9, 35% of utterances without own evidence) — and writes a mean ± std table of test weighted
F1 and accuracy to the accuracy section of ``docs/benchmarks.md``::

    python benchmarks/accuracy_backbones.py                       # 5 seeds, all four backbones
    python benchmarks/accuracy_backbones.py --seeds 0 1 --max-epochs 5 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- accuracy_backbones:start -->", "<!-- accuracy_backbones:end -->"
BACKBONES = ("late_fusion", "mmgcn", "dialogue_gcn", "mm_dfn")


def run(backbone: str, seeds: list[int], max_epochs: int, patience: int, lr: float, out: Path, threads: int) -> dict:
    from merc.config import DataConfig, ExperimentConfig, ModelConfig, OutputConfig, TrainerConfig
    from merc.training.experiment import run_experiment

    config = ExperimentConfig(
        data=DataConfig(dataset="synthetic-context", modalities="tav", batch_size=16),
        model=ModelConfig(method="none", backbone=backbone),
        trainer=TrainerConfig(max_epochs=max_epochs, patience=patience, lr=lr, seeds=seeds, progress=False,
                              threads=threads),
        output=OutputConfig(dir=str(out / backbone)))
    start = time.perf_counter()
    result = run_experiment(config, log=lambda msg: print(msg, flush=True))
    test = result.summary["test"]
    return {"backbone": backbone, "wf1": test["weighted_f1"], "acc": test["accuracy"], "macro": test["macro_f1"],
            "seconds": time.perf_counter() - start}


def collect(backbone: str, out: Path) -> dict | None:
    """The row of an experiment already under ``out/<backbone>``: its ``results.json``, or the
    per-seed ``seed_*/metrics.json`` of a run still in progress (None if nothing is there)."""
    path = out / backbone / "results.json"
    if path.exists():
        test = json.loads(path.read_text(encoding="utf-8"))["summary"]["test"]
    else:
        seeds = sorted((out / backbone).glob("seed_*/metrics.json"))
        if not seeds:
            return None
        per_seed = [json.loads(p.read_text(encoding="utf-8"))["test"] for p in seeds]
        test = {key: _stats([m[key] for m in per_seed]) for key in ("weighted_f1", "accuracy", "macro_f1")}
    return {"backbone": backbone, "wf1": test["weighted_f1"], "acc": test["accuracy"], "macro": test["macro_f1"],
            "seconds": float("nan")}


def _stats(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "values": [float(v) for v in arr]}


def markdown(rows: list[dict], command: str, seeds: list[int], max_epochs: int, patience: int, lr: float,
             note: str = "") -> str:
    base = next((r for r in rows if r["backbone"] == "late_fusion"), None)
    lines = [START, "## Backbones: accuracy on the context preset", "",
             f"Command: `{command}`{note}, from the repository root. Machine: {os.cpu_count()} CPU cores, shared "
             "with other processes.", "",
             f"`synthetic-context` (labels depend on conversational context: speaker inertia 0.9, 35% of "
             f"utterances carry no own evidence), modalities tav, method `none`, bundled backbone defaults, "
             f"Adam lr {lr}, at most {max_epochs} epochs, early stopping patience {patience}, model selected "
             f"on dev weighted F1, seeds {' '.join(map(str, seeds))}; test split, mean ± std over seeds.", "",
             "| backbone | seeds | test weighted F1 | test accuracy | test macro F1 | Δ weighted F1 vs Late Fusion "
             "| seeds better than Late Fusion | wall time (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        delta, wins = "–", "–"
        if base is not None and r is not base:
            n = len(r["wf1"]["values"])  # a run in progress has its first n seeds
            diff = np.asarray(r["wf1"]["values"]) - np.asarray(base["wf1"]["values"][:n])
            delta = f"{diff.mean():+.2f} ± {diff.std(ddof=1) if diff.size > 1 else 0.0:.2f}"
            wins = f"{int((diff > 0).sum())}/{diff.size}"
        lines.append(f"| {r['backbone']} | {len(r['wf1']['values'])} | "
                     f"{r['wf1']['mean']:.2f} ± {r['wf1']['std']:.2f} | "
                     f"{r['acc']['mean']:.2f} ± {r['acc']['std']:.2f} | {r['macro']['mean']:.2f} ± "
                     f"{r['macro']['std']:.2f} | {delta} | {wins} | "
                     f"{'–' if np.isnan(r['seconds']) else format(r['seconds'], '.0f')} |")
    lines += ["", "Δ is the per-seed paired difference (same seed, same data) with its std.", "", END]
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
    parser.add_argument("--backbones", nargs="*", default=list(BACKBONES))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "runs" / "accuracy_backbones"))
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    parser.add_argument("--collect", action="store_true",
                        help="do not train: tabulate the experiments already in --out (missing ones are skipped)")
    args = parser.parse_args()
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
