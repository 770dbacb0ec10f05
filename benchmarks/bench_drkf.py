"""DRKF accuracy benchmark: mode 2 ("lite", utterance-level features) over several seeds.

Trains ``--method drkf`` with the library's engine (dev-set selection on weighted F1, early
stopping) on a catalog dataset — by default ``synthetic-iemocap`` with text + audio — and writes
the section ``## DRKF`` of ``docs/results_synthetic.md`` (other sections are left untouched).

Usage::

    python benchmarks/bench_drkf.py                        # 5 seeds on synthetic-iemocap
    python benchmarks/bench_drkf.py --seeds 0 --epochs 2 --no-docs   # smoke run
    python benchmarks/bench_drkf.py -o model.method_options.kl_mode=published
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from merc.config import ExperimentConfig, apply_overrides, resolve_model_options
from merc.data.loading import load_dataset
from merc.evaluation.metrics import majority_baseline
from merc.io_utils import atomic_write_text
from merc.training.experiment import run_experiment

REPO = Path(__file__).resolve().parents[1]
METRICS = (("weighted_f1", "weighted F1"), ("accuracy", "accuracy (WA)"), ("ua", "UA"), ("macro_f1", "macro F1"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="synthetic-iemocap")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=16, help="dialogues per batch")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    p.add_argument("--out", default=str(REPO / "runs" / "bench_drkf"))
    p.add_argument("--docs", default=str(REPO / "docs" / "results_synthetic.md"))
    p.add_argument("--no-docs", action="store_true", help="do not touch the docs file")
    p.add_argument("-o", "--override", action="append", default=[], help="section.key=value config override")
    return p.parse_args()


def build_config(args: argparse.Namespace) -> ExperimentConfig:
    raw: dict[str, Any] = {
        "data": {"dataset": args.dataset, "modalities": "ta", "batch_size": args.batch_size},
        "model": {"method": "drkf", "method_options": {"input_mode": "lite"}},
        "trainer": {"max_epochs": args.epochs, "patience": args.patience, "seeds": args.seeds, "progress": False,
                    "threads": args.threads},
        "output": {"dir": args.out},
    }
    return ExperimentConfig.from_dict(apply_overrides(raw, args.override), "bench_drkf")


def stats(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.2f} ± {arr.std(ddof=1) if arr.size > 1 else 0.0:.2f}"


def section(args: argparse.Namespace, config: ExperimentConfig, result: Any, baseline: dict[str, Any],
            seconds: float, command: str) -> str:
    runs = result.runs
    opts = resolve_model_options(config.model).method_options
    lines = [
        "## DRKF", "",
        f"DRKF input mode 2 (`lite`, utterance-level features as length-1 sequences), text + audio, "
        f"utterance-level (no dialogue context) on `{args.dataset}`; {len(runs)} seeds "
        f"({' '.join(map(str, config.trainer.seeds))}), model selected on dev weighted F1 "
        f"(dev carved from train, seed {config.data.dev_seed}), test evaluated once.", "",
        f"Command: `{command}`  ", f"Wall time: {seconds / 60:.1f} min total on this machine "
        f"(load average {os.getloadavg()[0]:.0f} on {os.cpu_count()} CPU cores at the end), "
        f"mean epoch {np.nanmean([r.epoch_seconds for r in runs]):.1f} s.", "",
        "| | " + " | ".join(name for _, name in METRICS) + " |",
        "|---" * (len(METRICS) + 1) + "|",
        "| DRKF (lite) | " + " | ".join(stats([r.metrics["test"][k] for r in runs]) for k, _ in METRICS) + " |",
        "| majority class | " + " | ".join(f"{baseline[k]:.2f}" for k, _ in METRICS) + " |", "",
        "Per seed (test weighted F1 / accuracy, best epoch): "
        + "; ".join(f"seed {r.seed}: {r.metrics['test']['weighted_f1']:.2f} / {r.metrics['test']['accuracy']:.2f}, "
                    f"epoch {r.best_epoch}" for r in runs) + ".", "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in opts.items() if k in (
            "width", "layers", "heads", "ffn", "n_blocks", "ed_pairs", "kl_mode", "faithful", "lite_chunks",
            "w_ce", "w_ed", "w_contrastive", "w_recon", "w_kl")) + f"; max_epochs={config.trainer.max_epochs}, "
        f"patience={config.trainer.patience}, lr={config.trainer.lr}, batch {config.data.batch_size} dialogues.", "",
        "`synthetic-iemocap` plants 15 % context-only utterances and part of the evidence in the visual "
        "modality; an utterance-level text + audio model cannot use either.", "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace (or append) the ``## DRKF`` section of ``path``, leaving other sections alone."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Results on synthetic data\n\n"
    pattern = re.compile(r"^## DRKF\b.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    atomic_write_text(path, new)


def main() -> None:
    args = parse_args()
    config = build_config(args)
    dataset = load_dataset(config.data)
    start = time.perf_counter()
    result = run_experiment(config, dataset)
    seconds = time.perf_counter() - start
    train_y = np.concatenate([d.labels for d in dataset.split("train")])
    test_y = np.concatenate([d.labels for d in dataset.split("test")])
    baseline = majority_baseline(train_y, test_y, dataset.label_names)
    command = "python benchmarks/bench_drkf.py " + " ".join(
        [f"--dataset {args.dataset}", "--seeds " + " ".join(map(str, args.seeds)), f"--epochs {args.epochs}",
         f"--patience {args.patience}", f"--threads {args.threads}"] + [f"-o {o}" for o in args.override])
    text = section(args, config, result, baseline, seconds, command)
    print(text)
    if not args.no_docs:
        write_section(Path(args.docs), text)
        print(f"[bench_drkf] wrote section DRKF of {args.docs}")


if __name__ == "__main__":
    main()
