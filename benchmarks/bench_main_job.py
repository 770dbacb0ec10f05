"""Budget of the README main job (DnR over MMGCN on ``synthetic-iemocap``, seeds 1 2 3), chosen on dev.

For every candidate budget (Divide epochs / learning rate, main-stage epochs and patience,
``view_fraction``) and every seed, the main job's experiment (``merc train --config main``
without the explanations) is trained by the library's engine with one torch thread; the
script records dev and test weighted F1, the selected epoch, the Divide epochs and the CPU
seconds (``resource.getrusage``) and wall seconds of each seed, with the load average.
Candidates are interleaved (seed-major), so a slow phase of a shared machine hits all of them.

The budget is chosen on **dev** only: the candidate with the best mean dev weighted F1 among
those whose CPU time fits ``--cpu-budget`` seconds per seed (test weighted F1 is reported,
never used). Results go to the "Main job budget" section of ``docs/results_synthetic.md``::

    python benchmarks/bench_main_job.py                       # all candidates, seeds 1 2 3
    python benchmarks/bench_main_job.py --candidates fast --seeds 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "results_synthetic.md"
START, END = "<!-- bench_main_job:start -->", "<!-- bench_main_job:end -->"

#: name → (method options, trainer options)
CANDIDATES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # the previous main job: Divide ≤ 200 epochs at 1e-4, all views, 40 epochs, patience 10 (≈ 8 min per seed)
    "reference": ({"view_fraction": 1.0, "divide_max_epochs": 200, "divide_lr": 1e-4}, {"max_epochs": 40, "patience": 10}),
    "fast": ({"divide_max_epochs": 20, "divide_lr": 1e-3}, {"max_epochs": 12, "patience": 4}),
    "fast, all views": ({"divide_max_epochs": 20, "divide_lr": 1e-3, "view_fraction": 1.0},
                        {"max_epochs": 12, "patience": 4}),
}


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_candidate(name: str, seed: int, dataset: Any, out: Path) -> dict[str, Any]:
    """Train the main job's experiment for one seed under candidate ``name``."""
    from merc.config import ExperimentConfig, load_experiment_yaml
    from merc.training.engine import train_run

    method_opts, trainer_opts = CANDIDATES[name]
    config = ExperimentConfig.from_dict(*load_experiment_yaml("main"))
    model = dataclasses.replace(config.model, method_options={**config.model.method_options, **method_opts})
    trainer = dataclasses.replace(config.trainer, seeds=[seed], progress=False, threads=1, **trainer_opts)
    config = dataclasses.replace(config, model=model, trainer=trainer,
                                 output=dataclasses.replace(config.output, explain=False))
    load = os.getloadavg()[0]
    cpu, wall = cpu_seconds(), time.perf_counter()
    run = train_run(config, seed, dataset, out / f"{name}_seed{seed}")
    return {"dev": run.metrics["dev"]["weighted_f1"], "test": run.metrics["test"]["weighted_f1"],
            "best_epoch": run.best_epoch, "epochs_run": run.epochs_run,
            "cpu_s": cpu_seconds() - cpu, "wall_s": time.perf_counter() - wall,
            "load": [load, os.getloadavg()[0]]}


def chosen(results: dict[str, list[dict[str, Any]]], cpu_budget: float) -> str | None:
    """Best mean dev weighted F1 among the candidates whose mean CPU seconds per seed fit the budget."""
    fitting = {k: np.mean([r["dev"] for r in v]) for k, v in results.items()
               if v and np.mean([r["cpu_s"] for r in v]) <= cpu_budget}
    return max(fitting, key=fitting.get) if fitting else None


def render(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    def ms(xs: list[float]) -> str:
        return f"{np.mean(xs):.2f} ± {np.std(xs):.2f}"

    pick = chosen(results, args.cpu_budget)
    lines = [START, "## Main job budget (chosen on dev)", "",
             f"Measured with `python benchmarks/bench_main_job.py {' '.join(sys.argv[1:])}` on {platform.machine()} "
             f"({os.cpu_count()} cores, shared with other processes), torch {torch.__version__}, one torch thread, "
             f"{time.strftime('%Y-%m-%d')}: the main job's experiment (DnR over MMGCN, synthetic-iemocap, bundled "
             "defaults) without the explanations; seeds run one after the other, candidates interleaved. "
             f"Rule: best mean dev weighted F1 among the candidates within {args.cpu_budget:g} CPU s per seed "
             "(test is reported, never used to choose).", "",
             "| candidate | method options | trainer options | seeds | dev wF1 | test wF1 | "
             "selected / run epochs | CPU s per seed | wall s per seed | load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, runs in results.items():
        if not runs:
            continue
        m, t = CANDIDATES[name]
        lines.append(
            f"| {'**' + name + '**' if name == pick else name} | {m or '–'} | {t or '–'} | {len(runs)} | "
            f"{ms([r['dev'] for r in runs])} | {ms([r['test'] for r in runs])} | "
            f"{np.mean([r['best_epoch'] + 1 for r in runs]):.1f} / {np.mean([r['epochs_run'] for r in runs]):.1f} | "
            f"{np.mean([r['cpu_s'] for r in runs]):.0f} | {np.mean([r['wall_s'] for r in runs]):.0f} | "
            f"{min(r['load'][0] for r in runs):.1f}–{max(r['load'][1] for r in runs):.1f} |")
    lines += ["", f"Chosen: **{pick}**." if pick else "No candidate fits the CPU budget.", "", END]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", nargs="+", default=["fast", "fast, all views"], choices=list(CANDIDATES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--cpu-budget", type=float, default=55.0,
                        help="CPU seconds per seed a candidate may use (the 3-minute job keeps ~5 s per seed for "
                             "the explanations)")
    parser.add_argument("--out", default="runs/bench_main_job")
    parser.add_argument("--json", default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from merc.config import DataConfig
    from merc.data.loading import load_dataset

    dataset = load_dataset(DataConfig(dataset="synthetic-iemocap"))
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in args.candidates}
    for seed in args.seeds:
        for name in args.candidates:
            results[name].append(run_candidate(name, seed, dataset, Path(args.out)))
            print(f"{name} seed {seed}: {results[name][-1]}", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
    text = render(results, args)
    if not args.no_write:
        from bench_dnr import write_section  # same directory

        write_section(text, DOCS, START, END)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
