"""DnR on ``synthetic-iemocap``: accuracy vs the raw backbone, cost per epoch, explanation truth.

For every registered backbone (bundled defaults):

1. **Accuracy** — ``--method none`` vs ``--method dnr`` trained by the library's engine
   (``train_run``: dev-set selection on weighted F1, then test once) over ``--seeds``;
   test weighted F1 mean ± std.
2. **Cost** — CPU seconds of one training step (forward + loss + backward + Adam step) over
   the same collated train batches, raw backbone vs DnR stage 2, interleaved and repeated,
   in one process with one torch thread (CPU time, so other load on a shared machine does not
   distort the ratio). Variants: DnR defaults (views stacked into one backbone call),
   ``view_fraction=0.25``, ``batch_views=false`` (one call per view, the reference's cost
   model) and ``divide_only``. The Divide stage is reported separately (CPU seconds per epoch).
3. **Explanation truth** — for the trained DnR models, the share of test utterances whose
   most influential component (largest KL when zeroed) has the type (U/R/S) of the evidence
   the generator planted (``meta["interaction"]``: 0 unique, 1 redundant, 2 synergy; 3 none
   is skipped). Chance is 1/3.

Results are printed and written to the "DnR" section of ``docs/results_synthetic.md``::

    python benchmarks/bench_dnr.py                       # 5 seeds, all backbones (hours on CPU)
    python benchmarks/bench_dnr.py --seeds 1 2 --epochs 3 --divide-epochs 5 --backbones late_fusion
    python benchmarks/bench_dnr.py --cost-only
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "results_synthetic.md"
START, END = "<!-- bench_dnr:start -->", "<!-- bench_dnr:end -->"
COST_VARIANTS = {"dnr": {}, "dnr view_fraction=0.25": {"view_fraction": 0.25},
                 "dnr view_fraction=0.125": {"view_fraction": 0.125},
                 "dnr batch_views=false": {"batch_views": False}, "dnr divide_only": {"divide_only": True}}


def step_cpu_seconds(method: Any, batches: list, repeats: int) -> list[float]:
    """CPU seconds of each training step, ``repeats`` passes over ``batches``."""
    opt = torch.optim.Adam(method.param_groups(1e-4, 1e-8))
    method.train()
    times = []
    for _ in range(repeats):
        for batch in batches:
            start = time.process_time()
            loss, _, _ = method.training_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.process_time() - start)
    return times


def measure_cost(backbone: str, dataset: Any, num_batches: int, repeats: int) -> dict[str, Any]:
    """Per-step CPU time of the raw backbone and of DnR variants (same batches, interleaved)."""
    from merc.config import ModelConfig, resolve_model_options
    from merc.data.collate import make_loader
    from merc.methods.dnr.divide_stage import DivideModule
    from merc.registry import METHODS

    mods = list(dataset.dims)
    loader = make_loader(dataset.split("train"), mods, 16, shuffle=True, seed=0)
    batches = [b for _, b in zip(range(num_batches), loader)]
    arch = {"input_dims": dict(dataset.dims), "num_classes": dataset.num_classes,
            "num_speakers": dataset.max_parties()}
    resolved = resolve_model_options(ModelConfig(method="dnr", backbone=backbone))
    torch.manual_seed(0)
    methods = {"none": METHODS.create("none", backbone=backbone, backbone_options=resolved.backbone_options, **arch)}
    for name, extra in COST_VARIANTS.items():
        m = METHODS.create("dnr", backbone=backbone, backbone_options=resolved.backbone_options, **arch,
                           **{**resolved.method_options, **extra})
        m.freeze_decomposer()
        methods[name] = m
    for m in methods.values():  # warm-up (allocator, lazy init)
        step_cpu_seconds(m, batches[:1], 1)
    samples: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(repeats):  # interleave so slow phases of the machine hit every variant alike
        for name, m in methods.items():
            samples[name] += step_cpu_seconds(m, batches, 1)
    per_step = {k: float(np.median(v)) for k, v in samples.items()}
    dnr = methods["dnr"]
    module = DivideModule(dnr.decomposer, dnr.divide_heads, dnr.config)
    dnr.decomposer.requires_grad_(True)
    dnr.divide_heads.requires_grad_(True)
    opt = module.configure_optimizers()
    start = time.process_time()
    for batch in batches:
        loss = module.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    divide_step = (time.process_time() - start) / len(batches)
    return {"per_step_cpu_s": per_step, "ratio": {k: v / per_step["none"] for k, v in per_step.items()},
            "divide_step_cpu_s": divide_step, "divide_ratio": divide_step / per_step["none"],
            "batches": len(batches), "repeats": repeats}


def run_accuracy(backbone: str, dataset: Any, seed: int, epochs: int, divide_epochs: int, patience: int,
                 out: Path, divide_lr: float | None = None, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train none and dnr for one seed; append test weighted F1, epoch time and DnR's
    explanation-vs-truth agreement to ``result`` (created if absent) and return it."""
    from merc.config import DataConfig, ExperimentConfig, ModelConfig, OutputConfig, TrainerConfig
    from merc.data.collate import make_loader
    from merc.explain import collect_explanations
    from merc.explain.components import interaction_agreement
    from merc.training.engine import train_run
    from merc.training.model_dir import load_model_dir

    if result is None:
        result = {}
    for key in ("none", "dnr", "agreement", "agreement_kind_sum", "seeds"):
        result.setdefault(key, [])
    result.setdefault("epoch_seconds", {"none": [], "dnr": []})
    for method in ("none", "dnr"):
        options: dict[str, Any] = {"divide_max_epochs": divide_epochs} if method == "dnr" else {}
        if method == "dnr" and divide_lr is not None:
            options["divide_lr"] = divide_lr
        config = ExperimentConfig(
            data=DataConfig(dataset="synthetic-iemocap"),
            model=ModelConfig(method=method, backbone=backbone, method_options=options),
            trainer=TrainerConfig(max_epochs=epochs, patience=patience, seeds=[seed], progress=False),
            output=OutputConfig(dir=str(out)))
        run = train_run(config, seed, dataset, out / f"{backbone}_{method}_seed{seed}")
        result[method].append(run.metrics["test"]["weighted_f1"])  # already in percent
        result["epoch_seconds"][method].append(run.epoch_seconds)
        print(f"  {backbone} {method} seed {seed}: test wF1 {result[method][-1]:.2f} "
              f"({run.epochs_run} epochs, {run.seconds:.0f} s)", flush=True)
    model = load_model_dir(run.model_dir).method
    ex = collect_explanations(model, make_loader(dataset.split("test"), list(dataset.dims), 16, shuffle=False))
    per = ex["per_utterance"]
    agree = interaction_agreement(per["kl"], ex["info"]["component_names"], per["meta:interaction"])
    result["agreement"].append(100 * agree["top_component"])
    result["agreement_kind_sum"].append(100 * agree["top_kind_sum"])
    result["seeds"].append(seed)
    return result


def _extend(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Append the per-seed entries of ``more`` to ``into``, skipping seeds ``into`` already has."""
    fresh = [i for i, seed in enumerate(more.get("seeds", [])) if seed not in set(into.get("seeds", []))]

    def add(dst: dict[str, Any], src: dict[str, Any]) -> None:
        for key, value in src.items():
            if isinstance(value, dict):
                add(dst.setdefault(key, {}), value)
            else:
                dst.setdefault(key, []).extend(value[i] for i in fresh if i < len(value))

    add(into, more)


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}" if values else "–"


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    command = args.command or f"python benchmarks/bench_dnr.py {' '.join(sys.argv[1:])}"
    lines = [START, "## DnR", "",
             f"Measured with `{command}` on "
             f"{platform.machine()} CPU, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; dataset "
             "`synthetic-iemocap` (seed 0: 151 dialogues / 7433 utterances, dims 1024/1582/342, 6 classes), "
             "bundled backbone and DnR defaults unless stated.", ""]
    acc = {b: r["accuracy"] for b, r in results.items() if "accuracy" in r}
    if acc:
        lines += ["### Accuracy: backbone alone vs backbone + DnR (test weighted F1, mean ± std over seeds)", "",
                  f"Budget: main stage at most {args.epochs} epochs (early-stopping patience {args.patience}), "
                  f"Divide at most {args.divide_epochs} epochs"
                  + (f" at divide_lr {args.divide_lr:g}" if args.divide_lr else "") + "; selection on dev weighted F1.", "",
                  "| backbone | seeds | alone | + DnR | Δ | top component type = planted type (%) | by kind sum (%) |",
                  "|---|---|---|---|---|---|---|"]
        for b, r in acc.items():
            delta = np.mean(r["dnr"]) - np.mean(r["none"]) if r["dnr"] and r["none"] else float("nan")
            seeds = " ".join(map(str, r.get("seeds", [])))
            lines.append(f"| {b} | {seeds} | {_ms(r['none'])} | {_ms(r['dnr'])} | {delta:+.2f} | {_ms(r['agreement'])} | "
                         f"{_ms(r['agreement_kind_sum'])} |")
        lines += ["", "Chance for the explanation agreement is 33.3% (utterances whose evidence type is "
                  "'none' are skipped).", ""]
    cost = {b: r["cost"] for b, r in results.items() if "cost" in r}
    if cost:
        any_cost = next(iter(cost.values()))
        lines += ["### Cost of DnR per training epoch, relative to the raw backbone", "",
                  f"CPU seconds per training step (median over {any_cost['repeats']} interleaved passes over "
                  f"{any_cost['batches']} batches of 16 dialogues, one torch thread); an epoch is the same number "
                  "of steps for every variant, so the ratio is the per-epoch cost ratio.", "",
                  "| backbone | raw step (CPU s) | DnR (defaults, views stacked) | view_fraction=0.25 | "
                  "view_fraction=0.125 | batch_views=false (reference-like) | divide_only | Divide stage step |",
                  "|---|---|---|---|---|---|---|---|"]
        for b, c in cost.items():
            r = c["ratio"]
            lines.append(f"| {b} | {c['per_step_cpu_s']['none']:.3f} | {r['dnr']:.2f}× | "
                         f"{r['dnr view_fraction=0.25']:.2f}× | {r['dnr view_fraction=0.125']:.2f}× | "
                         f"{r['dnr batch_views=false']:.2f}× | "
                         f"{r['dnr divide_only']:.2f}× | {c['divide_ratio']:.2f}× |")
        lines.append("")
    if args.note:
        lines += [args.note, ""]
    lines += [END]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    from merc.io_utils import atomic_write_text

    current = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else "# Results on synthetic data\n\n"
    if START in current and END in current:
        head, rest = current.split(START, 1)
        current = head + text.rstrip("\n") + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text
    atomic_write_text(DOCS, current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=None, help="default: every registered backbone")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--divide-epochs", type=int, default=200)
    parser.add_argument("--divide-lr", type=float, default=None, help="override DnR's divide_lr (short budgets)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="only render: merge raw results written by earlier --json runs and update the docs")
    parser.add_argument("--command", default=None, help="command line to cite in the docs (with --merge)")
    parser.add_argument("--note", default=None, help="free text appended to the docs section")
    parser.add_argument("--cost-batches", type=int, default=3)
    parser.add_argument("--cost-repeats", type=int, default=3)
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--out", default="runs/bench_dnr", help="model directories of the accuracy runs")
    parser.add_argument("--json", default=None, help="also write raw results here")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/results_synthetic.md")
    args = parser.parse_args(argv)
    if args.merge:
        merged: dict[str, Any] = {}
        for path in args.merge:
            for b, r in json.loads(Path(path).read_text()).items():
                for key, value in r.items():
                    if key == "accuracy" and "accuracy" in merged.get(b, {}):
                        _extend(merged[b]["accuracy"], value)
                    else:
                        merged.setdefault(b, {})[key] = value
        text = render(merged, args)
        if not args.no_write:
            write_section(text)
        print(text)
        return 0
    torch.set_num_threads(1)
    from merc.config import DataConfig
    from merc.data.loading import load_dataset
    from merc.registry import BACKBONES

    dataset = load_dataset(DataConfig(dataset="synthetic-iemocap"))
    backbones = args.backbones or [b for b in BACKBONES.list() if not b.startswith("test")]
    results: dict[str, Any] = {b: {} for b in backbones}

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        if not args.no_write:
            write_section(render(results, args))

    if not args.skip_cost:
        for b in backbones:
            results[b]["cost"] = measure_cost(b, dataset, args.cost_batches, args.cost_repeats)
            print(b, "cost ratios:", {k: round(v, 2) for k, v in results[b]["cost"]["ratio"].items()}, flush=True)
            save()
    if not args.cost_only:
        for seed in args.seeds:  # seed-major: an interrupted run still has whole seeds for every backbone
            for b in backbones:
                results[b]["accuracy"] = run_accuracy(b, dataset, seed, args.epochs, args.divide_epochs, args.patience,
                                                      Path(args.out), args.divide_lr, results[b].get("accuracy"))
                save()
    print(render(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
