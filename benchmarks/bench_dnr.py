"""DnR on ``synthetic-iemocap``: accuracy vs the raw backbone, cost per epoch, explanation truth.

For every registered backbone (bundled defaults):

1. **Accuracy** — ``--method none`` vs ``--method dnr`` trained by the library's engine
   (``train_run``: dev-set selection on weighted F1, then test once) over ``--seeds``;
   test weighted F1 mean ± std. Divide does not depend on the backbone: for every seed it is
   pretrained once (``divide_seed<S>/``) and every backbone's DnR run reuses that frozen
   decomposer through the ``decomposer_from`` option (``--divide-per-backbone`` to retrain it).
2. **Cost** — CPU seconds of one training step (forward + loss + backward + Adam step) over
   the same collated train batches, raw backbone vs DnR stage 2, interleaved and repeated,
   in one process with one torch thread; CPU time (so other load on a shared machine does not
   distort the ratio) and wall time, with the thread count and the load average before and
   after. Variants (``--cost-variants``): DnR defaults (``view_fraction=0.2``, cached
   components), ``cache_components=false``, all views (``view_fraction=1``) and
   ``divide_only``; the mean over the passes is the per-epoch cost, so the cache's filling pass
   counts once in ``--cost-repeats``. The Divide stage is reported separately.
3. **Explanation truth** — for the trained DnR models, the share of test utterances whose
   most influential component (largest KL when zeroed) has the type (U/R/S) of the evidence
   the generator planted (``meta["interaction"]``: 0 unique, 1 redundant, 2 synergy; 3 none
   is skipped). Chance is 1/3.

Peak memory on IEMOCAP shapes is ``bench_dnr_memory.py``. Results are printed and written to
the "DnR" section of ``docs/results_synthetic.md``::

    python benchmarks/bench_dnr.py                       # 5 seeds, all backbones (hours on CPU)
    python benchmarks/bench_dnr.py --seeds 1 2 --epochs 3 --divide-epochs 5 --backbones late_fusion
    python benchmarks/bench_dnr.py --cost-only
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
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
#: DnR variants of the cost table (the first is the bundled defaults)
COST_VARIANTS = {"dnr": {}, "dnr cache_components=false": {"cache_components": False},
                 "dnr view_fraction=1": {"view_fraction": 1.0}, "dnr divide_only=true": {"divide_only": True}}


def step_seconds(method: Any, batches: list, repeats: int) -> tuple[list[float], list[float]]:
    """``(cpu, wall)`` seconds of each training step, ``repeats`` passes over ``batches``."""
    opt = torch.optim.Adam(method.param_groups(1e-4, 1e-8))
    method.train()
    cpu, wall = [], []
    for _ in range(repeats):
        for batch in batches:
            start, start_wall = time.process_time(), time.perf_counter()
            loss, _, _ = method.training_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            cpu.append(time.process_time() - start)
            wall.append(time.perf_counter() - start_wall)
    return cpu, wall


def machine_state() -> dict[str, Any]:
    """Torch threads and the 1/5/15-minute load averages (the machine may be shared)."""
    return {"threads": torch.get_num_threads(), "load": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count()}


def divide_epoch(method: Any, batches: Any) -> None:
    """One Divide-stage pass (forward + loss + backward + Adam) of DnR ``method`` over ``batches``."""
    from merc.methods.dnr.divide_stage import DivideModule

    module = DivideModule(method.decomposer, method.divide_heads, method.config)
    opt = module.configure_optimizers()
    for batch in batches:
        loss = module.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()


def parse_variants(specs: list[str]) -> dict[str, dict[str, Any]]:
    """``["defaults", "view_fraction=1", "divide_only=true,view_chunk=1"]`` → cost variants."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if spec == "defaults":
            out["dnr"] = {}
            continue
        pairs = [item.split("=", 1) for item in spec.split(",")]
        out["dnr " + spec.replace(",", " ")] = {k: yaml.safe_load(v) for k, v in pairs}
    return out


def measure_cost(backbone: str, dataset: Any, num_batches: int, repeats: int,
                 variants: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per-step CPU time of the raw backbone and of DnR variants (same batches, interleaved)."""
    from merc.config import ModelConfig, resolve_model_options
    from merc.data.collate import make_loader
    from merc.registry import METHODS

    mods = list(dataset.dims)
    loader = make_loader(dataset.split("train"), mods, 16, shuffle=True, seed=0)
    batches = [b for _, b in zip(range(num_batches), loader)]
    arch = {"input_dims": dict(dataset.dims), "num_classes": dataset.num_classes,
            "num_speakers": dataset.max_parties()}
    resolved = resolve_model_options(ModelConfig(method="dnr", backbone=backbone))
    torch.manual_seed(0)
    methods = {"none": METHODS.create("none", backbone=backbone, backbone_options=resolved.backbone_options, **arch)}
    for name, extra in (variants or COST_VARIANTS).items():
        m = METHODS.create("dnr", backbone=backbone, backbone_options=resolved.backbone_options, **arch,
                           **{**resolved.method_options, **extra})
        m.freeze_decomposer()
        methods[name] = m
    for m in methods.values():  # warm-up (allocator, lazy init)
        step_seconds(m, batches[:1], 1)
    before = machine_state()
    samples: dict[str, list[float]] = {k: [] for k in methods}
    walls: dict[str, list[float]] = {k: [] for k in methods}
    for r in range(repeats):  # interleave so slow phases of the machine hit every variant alike
        for name, m in methods.items():
            torch.manual_seed(r)  # every variant draws its views from the same seeds
            cpu, wall = step_seconds(m, batches, 1)
            samples[name] += cpu
            walls[name] += wall
    # sampled views make steps uneven: the mean over the passes is the per-epoch cost
    per_step = {k: float(np.mean(v)) for k, v in samples.items()}
    per_step_wall = {k: float(np.mean(v)) for k, v in walls.items()}
    dnr = next(m for k, m in methods.items() if k != "none")
    dnr.decomposer.requires_grad_(True)
    dnr.divide_heads.requires_grad_(True)
    start = time.process_time()
    divide_epoch(dnr, batches)
    divide_step = (time.process_time() - start) / len(batches)
    return {"per_step_cpu_s": per_step, "ratio": {k: v / per_step["none"] for k, v in per_step.items()},
            "per_step_wall_s": per_step_wall,
            "wall_ratio": {k: v / per_step_wall["none"] for k, v in per_step_wall.items()},
            "divide_step_cpu_s": divide_step, "divide_ratio": divide_step / per_step["none"],
            "batches": len(batches), "repeats": repeats, "machine": {"before": before, "after": machine_state()}}


def pretrain_divide(dataset: Any, seed: int, options: dict[str, Any], out: Path) -> dict[str, Any]:
    """Run DnR's Divide stage once for ``seed`` (as ``merc train`` would) and save a DnR model
    directory at ``out`` whose frozen decomposer every backbone can reuse (``decomposer_from``).

    The backbone stored with it (``late_fusion``, untrained) is never used. Returns the Divide
    summary (epochs, final loss, plateau flag, seconds).
    """
    import lightning as L

    from merc.config import DataConfig, ExperimentConfig, ModelConfig, OutputConfig, TrainerConfig, resolve_model_options
    from merc.data.collate import make_loader
    from merc.methods.dnr.divide_stage import run_divide
    from merc.training.engine import build_method, make_trainer_factory
    from merc.training.model_dir import save_model_dir

    start = time.perf_counter()
    config = ExperimentConfig(
        data=DataConfig(dataset="synthetic-iemocap"),
        model=ModelConfig(method="dnr", backbone="late_fusion", method_options=dict(options)),
        trainer=TrainerConfig(seeds=[seed], progress=False), output=OutputConfig(dir=str(out)))
    config = dataclasses.replace(config, model=resolve_model_options(config.model))
    L.seed_everything(seed, workers=True, verbose=False)
    method = build_method(config, dataset)
    loader = make_loader(dataset.split("train"), list(method.modalities), config.data.batch_size, shuffle=True,
                         seed=seed, distributed=True)
    summary = run_divide(method.decomposer, method.divide_heads, method.config, loader,
                         make_trainer_factory(config, out), print)
    method.freeze_decomposer()
    summary["seconds"] = time.perf_counter() - start
    save_model_dir(out, method, config, dataset.label_names, {"divide": summary}, {"seed": seed, "stage": "divide only"})
    return summary


def run_accuracy(backbone: str, dataset: Any, seed: int, epochs: int, divide_epochs: int, patience: int,
                 out: Path, divide_lr: float | None = None, result: dict[str, Any] | None = None,
                 decomposer_from: Path | None = None, dnr_options: dict[str, Any] | None = None,
                 lr: float = 1e-3) -> dict[str, Any]:
    """Train none and dnr for one seed; append test weighted F1, epoch time and DnR's
    explanation-vs-truth agreement to ``result`` (created if absent) and return it.

    With ``decomposer_from`` DnR reuses that model directory's frozen decomposer (no Divide);
    ``dnr_options`` are extra DnR options (e.g. ``view_fraction``) for this backbone."""
    from merc.config import DataConfig, ExperimentConfig, ModelConfig, OutputConfig, TrainerConfig
    from merc.training.engine import train_run

    if result is None:
        result = {}
    for key in ("none", "dnr", "agreement", "agreement_kind_sum", "seeds"):
        result.setdefault(key, [])
    result.setdefault("epoch_seconds", {"none": [], "dnr": []})
    for method in ("none", "dnr"):
        options: dict[str, Any] = {"divide_max_epochs": divide_epochs} if method == "dnr" else {}
        if method == "dnr" and divide_lr is not None:
            options["divide_lr"] = divide_lr
        if method == "dnr":
            options.update(dnr_options or {})
            if decomposer_from is not None:
                options["decomposer_from"] = str(decomposer_from)
        config = ExperimentConfig(
            data=DataConfig(dataset="synthetic-iemocap"),
            model=ModelConfig(method=method, backbone=backbone, method_options=options),
            trainer=TrainerConfig(max_epochs=epochs, patience=patience, lr=lr, seeds=[seed], progress=False),
            output=OutputConfig(dir=str(out)))
        run = train_run(config, seed, dataset, out / f"{backbone}_{method}_seed{seed}")
        result[method].append(run.metrics["test"]["weighted_f1"])  # already in percent
        result["epoch_seconds"][method].append(run.epoch_seconds)
        result.setdefault("best_epoch", {"none": [], "dnr": []})[method].append(run.best_epoch)
        result.setdefault("epochs_run", {"none": [], "dnr": []})[method].append(run.epochs_run)
        print(f"  {backbone} {method} seed {seed}: test wF1 {result[method][-1]:.2f} "
              f"({run.epochs_run} epochs, {run.seconds:.0f} s)", flush=True)
    record_agreement(result, explanation_agreement(run.model_dir, dataset))
    result["seeds"].append(seed)
    return result


def explanation_agreement(model_dir: Path, dataset: Any) -> dict[str, Any]:
    """Explain DnR model ``model_dir`` on the test split; agreement of its top kinds with the planted ones."""
    from merc.data.collate import make_loader
    from merc.explain import collect_explanations
    from merc.explain.components import carrier_agreement, interaction_agreement
    from merc.training.model_dir import load_model_dir

    model = load_model_dir(model_dir).method
    ex = collect_explanations(model, make_loader(dataset.split("test"), list(dataset.dims), 16, shuffle=False))
    per, names = ex["per_utterance"], ex["info"]["component_names"]
    agree = interaction_agreement(per["kl"], names, per["meta:interaction"], per.get("kind_kl"))
    carrier = carrier_agreement(per["kl"], names, ex["info"]["modalities"], per["meta:interaction"],
                                per["meta:evidence_mask"])
    return {**agree, "carrier_top_modality": carrier["top_modality"], "carrier_chance": carrier["chance"]}


AGREEMENT_KEYS = ("agreement", "agreement_kind_sum", "agreement_kind_ablation", "carrier", "carrier_chance",
                  "agreement_top_shares",
                  "agreement_ablation_shares", "agreement_confusion", "agreement_ablation_confusion")


def record_agreement(result: dict[str, Any], agree: dict[str, Any]) -> None:
    """Append one run's agreement figures (in %) to the per-seed lists of ``result``."""
    pct = {k: 100 * v for k, v in agree.get("top_shares", {}).items()}
    values = {"agreement": 100 * agree["top_component"], "agreement_kind_sum": 100 * agree["top_kind_sum"],
              "agreement_kind_ablation": 100 * agree.get("top_kind_ablation", float("nan")),
              "carrier": 100 * agree.get("carrier_top_modality", float("nan")),
              "carrier_chance": 100 * agree.get("carrier_chance", float("nan")),
              "agreement_top_shares": pct,
              "agreement_ablation_shares": {k: 100 * v for k, v in agree.get("top_kind_ablation_shares", {}).items()},
              "agreement_confusion": agree.get("confusion", {}),
              "agreement_ablation_confusion": agree.get("confusion_kind_ablation", {})}
    for key in AGREEMENT_KEYS:
        result.setdefault(key, []).append(values[key])


@functools.cache
def synthetic_iemocap() -> Any:
    """The benchmark's dataset, generated once per process (training, explanations and the report share it)."""
    from merc.config import DataConfig
    from merc.data.loading import load_dataset

    return load_dataset(DataConfig(dataset="synthetic-iemocap"))


def reexplain(results: dict[str, Any], run_dirs: list[str]) -> None:
    """Recompute every DnR run's explanation agreement from its saved model directory
    (``<run dir>/<backbone>_dnr_seed<S>``), e.g. after the explanation statistics changed."""
    dataset = synthetic_iemocap()
    for b, r in results.items():
        acc = r.get("accuracy") if not b.startswith("_") else None
        if not acc:
            continue
        fresh: dict[str, Any] = {}
        for seed in acc["seeds"]:
            found = [Path(d) / f"{b}_dnr_seed{seed}" for d in run_dirs if (Path(d) / f"{b}_dnr_seed{seed}").is_dir()]
            if not found:
                raise SystemExit(f"--reexplain: no model directory {b}_dnr_seed{seed} under {', '.join(run_dirs)}")
            record_agreement(fresh, explanation_agreement(found[0], dataset))
            print(f"  re-explained {found[0]}", flush=True)
        acc.update(fresh)


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


def planted_kind_shares() -> dict[str, float]:
    """Shares of the planted U/R/S kinds among the test utterances that have one (context-only skipped)."""
    test = synthetic_iemocap().split("test")
    inter = np.concatenate([d.meta["interaction"] for d in test])
    inter = inter[inter < 3]
    return {k: float(np.mean(inter == i)) for i, k in enumerate("URS")}


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}" if values else "–"


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    command = args.command or f"python benchmarks/bench_dnr.py {' '.join(sys.argv[1:])}"
    lines = [START, "## DnR", "",
             f"Measured with `{command}` on "
             f"{platform.machine()} CPU, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; dataset "
             "`synthetic-iemocap` (seed 0: 151 dialogues / 7433 utterances, dims 1024/1582/342, 6 classes), "
             "bundled backbone and DnR defaults unless stated.", ""]
    acc = {b: r["accuracy"] for b, r in results.items() if not b.startswith("_") and "accuracy" in r}
    if acc:
        fractions = dict(args.view_fraction or {})
        shared = not getattr(args, "divide_per_backbone", False)
        lines += ["### Accuracy: backbone alone vs backbone + DnR (test weighted F1, mean ± std over seeds)", "",
                  f"Budget: main stage at most {args.epochs} epochs (early-stopping patience {args.patience}) at the "
                  f"trainer defaults (Adam lr {args.lr:g}, batches of 16 dialogues), the same for alone and + DnR; "
                  f"Divide at most {args.divide_epochs} epochs"
                  + (f" at divide_lr {args.divide_lr:g}" if args.divide_lr else " at the reference divide_lr 1e-4")
                  + (" (relative plateau stop: patience 10, min_delta 1 %)")
                  + (", pretrained once per seed and reused by all four backbones (`decomposer_from`)" if shared else "")
                  + "; selection on dev weighted F1.", "",
                  "| backbone | seeds | alone | + DnR | Δ | best epoch alone / DnR | epoch wall time DnR ÷ alone "
                  "| top component type = planted type (%) | by kind sum (%) | kind-wide removal (%) "
                  "| unique evidence: top modality = carrier (%) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for b, r in acc.items():
            delta = np.mean(r["dnr"]) - np.mean(r["none"]) if r["dnr"] and r["none"] else float("nan")
            seeds = " ".join(map(str, r.get("seeds", [])))
            name = b + (f" (DnR with view_fraction={fractions[b]:g})" if b in fractions else "")
            best = r.get("best_epoch", {})
            best_txt = (f"{np.mean(best['none']):.1f} / {np.mean(best['dnr']):.1f}"
                        if best.get("none") and best.get("dnr") else "–")
            es = r.get("epoch_seconds", {})
            ratio = (f"{np.mean(es['dnr']) / np.mean(es['none']):.1f}×" if es.get("none") and es.get("dnr") else "–")
            lines.append(f"| {name} | {seeds} | {_ms(r['none'])} | {_ms(r['dnr'])} | {delta:+.2f} | {best_txt} | {ratio} | "
                         f"{_ms(r['agreement'])} | {_ms(r['agreement_kind_sum'])} | "
                         f"{_ms([v for v in r.get('agreement_kind_ablation', []) if np.isfinite(v)])} | "
                         f"{_ms([v for v in r.get('carrier', []) if np.isfinite(v)])} |")
        baseline = planted_kind_shares()
        tops = [t for r in acc.values() for t in r.get("agreement_top_shares", []) if t]
        ablation = [t for r in acc.values() for t in r.get("agreement_ablation_shares", []) if t]
        confusion = [c for r in acc.values() for c in r.get("agreement_ablation_confusion", []) if c]
        lines += ["", "Explanation agreement: uniform chance is 33.3% (utterances whose evidence type is 'none' are "
                  "skipped), but the planted kinds are unbalanced — on the test split "
                  + ", ".join(f"{k} {100 * v:.1f}%" for k, v in baseline.items())
                  + f" — so always naming U scores **{100 * max(baseline.values()):.1f}%**; compare with that."
                  + (" Share of utterances whose top component is U / R / S, mean over all DnR runs: "
                     + " / ".join(f"{np.mean([t[k] for t in tops]):.1f}%" for k in "URS") + "." if tops else "")
                  + (" With kind-wide removal (each kind zeroed in every modality at once; the 'kind-wide removal' column) the "
                     "most harmful kind is U / R / S for "
                     + " / ".join(f"{np.mean([t[k] for t in ablation]):.1f}%" for k in "URS")
                     + " of the utterances; planted R as named by it, mean over runs: "
                     + " / ".join(f"{k} {np.mean([c['R'][k] for c in confusion if 'R' in c]) * 100:.1f}%"
                                  for k in "URS") + "." if ablation and confusion else ""),
                  "", "Last column: among test utterances whose label evidence is planted in one modality only, "
                  "how often the modality with the largest summed sensitivity (its three components) is that "
                  "modality; always naming the most common carrier scores "
                  + (f"{np.mean([v for r in acc.values() for v in r.get('carrier_chance', []) if np.isfinite(v)]):.1f}%."
                     if any(r.get("carrier_chance") for r in acc.values()) else "–."),
                  "", "Epoch wall time is measured on the shared machine during the runs "
                  "(noisy; the CPU-time cost table below is the controlled measurement).", ""]
        divide = results.get("_divide", {})
        if divide:
            parts = [f"seed {s}: {int(d['epochs'])} epochs ({'plateau' if d.get('plateau') else 'bound'}), "
                     f"loss {d['divide_loss']:.3f}, {d['seconds']:.0f} s" for s, d in sorted(divide.items())]
            lines += ["Divide (shared): " + "; ".join(parts) + ".", ""]
    cost = {b: r["cost"] for b, r in results.items() if not b.startswith("_") and "cost" in r}
    if cost:
        any_cost = next(iter(cost.values()))
        variants = list(dict.fromkeys(k for c in cost.values() for k in c["ratio"] if k != "none"))
        lines += ["### Cost of DnR per training epoch, relative to the raw backbone", "",
                  f"Seconds per training step (forward + loss + backward + Adam step; mean over {any_cost['repeats']} "
                  f"interleaved passes over the same {any_cost['batches']} batches of 16 dialogues, each pass seeded "
                  "alike so every variant draws the same views; one torch thread). An epoch is the same number of "
                  "steps for every variant, so the ratio is the per-epoch cost ratio. Each cell: **CPU-time ratio** "
                  "(wall-time ratio, inflated or deflated by other processes on a shared machine). `dnr` is the "
                  "bundled defaults.", "",
                  "| backbone | raw step CPU s (wall s) | " + " | ".join(v.removeprefix("dnr ") for v in variants)
                  + " | Divide stage step (CPU) | threads, load before → after |",
                  "|---|---|" + "---|" * len(variants) + "---|---|"]
        for b, c in cost.items():
            r, w = c["ratio"], c.get("wall_ratio", {})
            cells = [("–" if v not in r else f"**{r[v]:.2f}×** ({w[v]:.2f}×)" if v in w else f"**{r[v]:.2f}×**")
                     for v in variants]
            m = c.get("machine", {})
            state = (f"{m['before']['threads']}, {'/'.join(map(str, m['before']['load']))} → "
                     f"{'/'.join(map(str, m['after']['load']))}" if m else "–")
            wall = f" ({c['per_step_wall_s']['none']:.3f})" if "per_step_wall_s" in c else ""
            lines.append(f"| {b} | {c['per_step_cpu_s']['none']:.3f}{wall} | " + " | ".join(cells)
                         + f" | {c['divide_ratio']:.2f}× | {state} |")
        lines.append("")
    if args.note:
        lines += [args.note, ""]
    lines += [END]
    return "\n".join(lines) + "\n"


def write_section(text: str, doc: Path = DOCS, start: str = START, end: str = END) -> None:
    """Replace the ``start … end`` block of ``doc`` with ``text`` (appended when absent)."""
    from merc.io_utils import atomic_write_text

    current = doc.read_text(encoding="utf-8") if doc.is_file() else "# Results on synthetic data\n\n"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        current = head + text.rstrip("\n") + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text
    atomic_write_text(doc, current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=None, help="default: every registered backbone")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--divide-epochs", type=int, default=200)
    parser.add_argument("--divide-lr", type=float, default=None, help="override DnR's divide_lr (short budgets)")
    parser.add_argument("--lr", type=float, default=1e-3, help="main-stage learning rate (alone and + DnR)")
    parser.add_argument("--view-fraction", nargs="+", default=None, metavar="BACKBONE=F",
                        help="DnR view_fraction for some backbones, e.g. mm_dfn=0.125 (labelled in the table)")
    parser.add_argument("--divide-per-backbone", action="store_true",
                        help="run Divide inside every backbone's DnR run instead of once per seed")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="only render: merge raw results written by earlier --json runs and update the docs")
    parser.add_argument("--reexplain", nargs="+", default=None, metavar="RUN_DIR",
                        help="with --merge: recompute the explanation agreement from the saved DnR model "
                             "directories under these --out folders")
    parser.add_argument("--command", default=None, help="command line to cite in the docs (with --merge)")
    parser.add_argument("--note", default=None, help="free text appended to the docs section")
    parser.add_argument("--cost-batches", type=int, default=6)
    parser.add_argument("--cost-repeats", type=int, default=5)
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--cost-variants", nargs="+", default=None, metavar="SPEC",
                        help="DnR variants of the cost table: 'defaults' or KEY=VALUE[,KEY=VALUE] option sets "
                             "(default: defaults, cache_components=false, view_fraction=1, divide_only=true)")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--out", default="runs/bench_dnr", help="model directories of the accuracy runs")
    parser.add_argument("--json", default=None, help="also write raw results here")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/results_synthetic.md")
    args = parser.parse_args(argv)
    args.view_fraction = {k: float(v) for k, v in (item.split("=", 1) for item in (args.view_fraction or []))}
    if args.merge:
        merged: dict[str, Any] = {}
        for path in args.merge:
            for b, r in json.loads(Path(path).read_text()).items():
                if b == "_divide":
                    merged.setdefault(b, {}).update(r)
                    continue
                for key, value in r.items():
                    if key == "accuracy" and "accuracy" in merged.get(b, {}):
                        _extend(merged[b]["accuracy"], value)
                    else:
                        merged.setdefault(b, {})[key] = value
        if args.reexplain:
            reexplain(merged, args.reexplain)
            if args.json:
                Path(args.json).write_text(json.dumps(merged, indent=2))
        text = render(merged, args)
        if not args.no_write:
            write_section(text)
        print(text)
        return 0
    torch.set_num_threads(1)
    from merc.registry import BACKBONES

    dataset = synthetic_iemocap()
    backbones = args.backbones or [b for b in BACKBONES.list() if not b.startswith("test")]
    results: dict[str, Any] = {b: {} for b in backbones}

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        if not args.no_write:
            write_section(render(results, args))

    if not args.skip_cost:
        for b in backbones:
            variants = parse_variants(args.cost_variants) if args.cost_variants else None
            results[b]["cost"] = measure_cost(b, dataset, args.cost_batches, args.cost_repeats, variants)
            print(b, "cost ratios:", {k: round(v, 2) for k, v in results[b]["cost"]["ratio"].items()}, flush=True)
            save()
    if not args.cost_only:
        for seed in args.seeds:  # seed-major: an interrupted run still has whole seeds for every backbone
            source = None
            if not args.divide_per_backbone:
                source = Path(args.out) / f"divide_seed{seed}"
                options: dict[str, Any] = {"divide_max_epochs": args.divide_epochs}
                if args.divide_lr is not None:
                    options["divide_lr"] = args.divide_lr
                results.setdefault("_divide", {})[str(seed)] = pretrain_divide(dataset, seed, options, source)
                print(f"  divide seed {seed}: {results['_divide'][str(seed)]}", flush=True)
            for b in backbones:
                extra = {"view_fraction": args.view_fraction[b]} if b in args.view_fraction else {}
                results[b]["accuracy"] = run_accuracy(b, dataset, seed, args.epochs, args.divide_epochs, args.patience,
                                                      Path(args.out), args.divide_lr, results[b].get("accuracy"),
                                                      source, extra, args.lr)
                save()
    print(render(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
