"""DnR's sampled views (the default ``view_fraction``) against all views, for every backbone.

Issue 14 asks that the sampled default be no worse than computing every contrastive view each
step beyond seed noise. For every seed the Divide stage is pretrained once
(:func:`bench_dnr.pretrain_divide`) and every backbone's two DnR runs reuse that frozen
decomposer, so the only difference between the variants is the Refine stage's view sampling.
The variants are trained one after the other inside each (seed, backbone), interleaved, with
one torch thread; each run records test and dev weighted F1 (the epoch is chosen on dev), the
selected epoch and the CPU seconds of its training. Budget: the README main job's (Divide
≤ 20 epochs at lr 1e-3, ≤ 12 Refine epochs, patience 4)::

    python benchmarks/compare_view_sampling.py --seeds 1 2 3 4 5 --json runs/view_sampling.json

Prints a Markdown table (mean ± std over seeds) and, unless ``--no-write``, puts it in the
"Sampled vs all views" section of docs/benchmarks.md.
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
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dnr import machine_state, pretrain_divide, synthetic_iemocap, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- view_sampling:start -->", "<!-- view_sampling:end -->"
VARIANTS = {"sampled (default)": {}, "all views": {"view_fraction": 1.0}}


def run_one(backbone: str, dataset: Any, seed: int, options: dict[str, Any], args: argparse.Namespace,
            out: Path) -> dict[str, Any]:
    """Train one DnR model; its dev/test weighted F1, selected epoch and CPU seconds."""
    from merc.config import DataConfig, ExperimentConfig, ModelConfig, OutputConfig, TrainerConfig
    from merc.training.engine import train_run

    config = ExperimentConfig(
        data=DataConfig(dataset="synthetic-iemocap"),
        model=ModelConfig(method="dnr", backbone=backbone, method_options=options),
        trainer=TrainerConfig(max_epochs=args.epochs, patience=args.patience, lr=args.lr, seeds=[seed],
                              progress=False),
        output=OutputConfig(dir=str(out)))
    cpu = time.process_time()
    run = train_run(config, seed, dataset, out)
    return {"test": run.metrics["test"]["weighted_f1"], "dev": run.metrics.get("dev", {}).get("weighted_f1"),
            "best_epoch": run.best_epoch, "epochs_run": run.epochs_run, "cpu_s": time.process_time() - cpu}


def render(results: dict[str, Any], command: str) -> str:
    def ms(xs: list[float]) -> str:
        return f"{np.mean(xs):.2f} ± {np.std(xs):.2f}" if xs else "–"

    lines = [START, "## Sampled vs all views (DnR Refine)", "",
             f"Measured with `{command}`; one torch thread; machine state per run in the JSON. Test weighted F1 "
             "(epoch chosen on dev weighted F1), mean ± std over seeds "
             f"{', '.join(map(str, results['seeds']))}; CPU seconds of the Refine training per run.", "",
             "| backbone | " + " | ".join(f"{v} test wF1 | {v} dev wF1 | {v} CPU s" for v in VARIANTS) + " |",
             "|---|" + "---|" * (3 * len(VARIANTS))]
    for b, per in results["backbones"].items():
        cells = []
        for v in VARIANTS:
            runs = per.get(v, [])
            cells += [ms([r["test"] for r in runs]), ms([r["dev"] for r in runs if r["dev"] is not None]),
                      f"{np.mean([r['cpu_s'] for r in runs]):.0f}" if runs else "–"]
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    lines += ["", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="+", default=None, help="default: every registered backbone")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--divide-epochs", type=int, default=20)
    parser.add_argument("--divide-lr", type=float, default=1e-3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", default="runs/view_sampling")
    parser.add_argument("--json", default=None, help="write raw results here (rewritten after every run)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = "python benchmarks/compare_view_sampling.py " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(1)
    from merc.registry import BACKBONES

    dataset = synthetic_iemocap()
    backbones = args.backbones or [b for b in BACKBONES.list() if not b.startswith("test")]
    results: dict[str, Any] = {"seeds": [], "backbones": {b: {} for b in backbones}, "machine": []}
    out = Path(args.out)
    for seed in args.seeds:
        source = out / f"divide_seed{seed}"
        pretrain_divide(dataset, seed, {"divide_max_epochs": args.divide_epochs, "divide_lr": args.divide_lr}, source)
        for b in backbones:
            for name, extra in VARIANTS.items():
                options = {"divide_max_epochs": args.divide_epochs, "divide_lr": args.divide_lr,
                           "decomposer_from": str(source), **extra}
                before = machine_state()
                r = run_one(b, dataset, seed, options, args, out / f"{b}_{'all' if extra else 'sampled'}_seed{seed}")
                r.update(seed=seed, machine={"before": before, "after": machine_state()})
                results["backbones"][b].setdefault(name, []).append(r)
                print(f"{b} {name} seed {seed}: test {r['test']:.2f} dev {r['dev']} epoch {r['best_epoch']} "
                      f"cpu {r['cpu_s']:.0f}s load {os.getloadavg()[0]:.1f}", flush=True)
                if args.json:
                    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                    Path(args.json).write_text(json.dumps(results, indent=2))
        results["seeds"].append(seed)
    text = render(results, command)
    if not args.no_write:
        write_section(text, DOCS, START, END)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
