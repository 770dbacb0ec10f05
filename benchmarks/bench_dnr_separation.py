"""Do DnR's components agree with the planted kind on ``synthetic-subspace``? Faithful vs separated.

Variants (interleaved per seed, same data, same budget):

- ``dnr`` — faithful DnR (reference Divide losses);
- ``dnr+sep`` — the opt-in separation losses of ``merc.methods.dnr.separation_losses``:
  full cross-correlation decorrelation, InfoNCE pulling r_m toward r_p, and the GRL adversary
  making u_m unpredictable from the other modalities.

For each trained model the test split is explained and the agreement with the planted kind
(over utterances with evidence) is reported for both attributions: the original zero-ablation
measures (top single component; top kind removed everywhere) and the on-distribution Shapley
over kinds; plus the unique-evidence carrier agreement, the test weighted F1 and the
always-majority answer::

    python benchmarks/bench_dnr_separation.py --seeds 1 2 3           # writes docs/dnr.md's section
    python benchmarks/bench_dnr_separation.py --seeds 1 --epochs 3 --divide-epochs 5 --no-write
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "dnr.md"
START, END = "<!-- bench_dnr_separation:start -->", "<!-- bench_dnr_separation:end -->"
SEPARATED = {"separation_decorrelation": "cross_covariance", "separation_infonce_weight": 1.0,
             "separation_adversary_weight": 1.0}
VARIANTS = {"dnr": {}, "dnr+sep": SEPARATED}


def run(variant: str, seed: int, args: argparse.Namespace, dataset: Any, out: Path) -> dict[str, float]:
    from merc.config import DataConfig, ExperimentConfig, ModelConfig, OutputConfig, TrainerConfig
    from merc.data.collate import make_loader
    from merc.explain import collect_explanations
    from merc.explain.components_report import summarize_components
    from merc.training.engine import train_run
    from merc.training.model_dir import load_model_dir

    options = {"divide_max_epochs": args.divide_epochs, **VARIANTS[variant]}
    config = ExperimentConfig(
        data=DataConfig(dataset=args.dataset),
        model=ModelConfig(method="dnr", backbone=args.backbone, method_options=options),
        trainer=TrainerConfig(max_epochs=args.epochs, patience=args.patience, seeds=[seed], progress=False),
        output=OutputConfig(dir=str(out)))
    cpu, wall = time.process_time(), time.perf_counter()
    result = train_run(config, seed, dataset, out / f"{variant}_seed{seed}")
    method = load_model_dir(result.model_dir).method
    loader = make_loader(dataset.split("test"), list(dataset.dims), 16, shuffle=False)
    summary = summarize_components(collect_explanations(method, loader), dataset.label_names, probe_folds=2)
    zero, shap = summary["interaction_agreement"], summary["interaction_agreement_shapley"]
    return {"wf1": result.metrics["test"]["weighted_f1"] / 100, "majority": zero["majority_baseline"],
            "zero_component": zero["top_component"], "zero_kind": zero["top_kind_ablation"],
            "shapley_kind": shap["top_kind"], "cross_share": shap["other_share"].get("X", float("nan")),
            "carrier_zero": summary["carrier_agreement"]["top_modality"],
            "carrier_shapley": summary["carrier_agreement_shapley"]["top_modality"],
            "cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}


def ms(values: list[float], scale: float = 100.0) -> str:
    a = scale * np.asarray(values)
    return f"{a.mean():.1f} ± {a.std():.1f}" if len(a) > 1 else f"{a.mean():.1f}"


def render(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    """Print the table and (unless ``--no-write``) write it to docs/dnr.md."""
    seeds = args.seeds[:max(len(rows) for rows in results.values())]
    load = os.getloadavg()
    flags = f" --epochs {args.epochs} --patience {args.patience} --divide-epochs {args.divide_epochs}"
    lines = [START, "", f"Measured with `python benchmarks/bench_dnr_separation.py --seeds {' '.join(map(str, seeds))}{flags}` "
             f"({args.backbone} on `{args.dataset}`, main stage ≤ {args.epochs} epochs, patience {args.patience}, "
             f"Divide ≤ {args.divide_epochs} epochs; 1 torch thread; load average at the end "
             f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}). Agreement with the planted kind on the test "
             "utterances with evidence, %, mean ± std over seeds:", "",
             "| variant | always-majority | zero-ablation: top component | zero-ablation: top kind (kind-wide) "
             "| on-distribution Shapley: top kind | cross terms' share of \\|φ\\| | unique carrier (zero / Shapley) "
             "| test wF1 | CPU s / wall s per run |", "|---|---|---|---|---|---|---|---|---|"]
    for variant, rows in results.items():
        if not rows:
            continue
        col = {k: [r[k] for r in rows] for k in rows[0]}
        lines.append(f"| `{variant}` | {ms(col['majority'])} | {ms(col['zero_component'])} | {ms(col['zero_kind'])} | "
                     f"{ms(col['shapley_kind'])} | {ms(col['cross_share'])} | {ms(col['carrier_zero'])} / "
                     f"{ms(col['carrier_shapley'])} | {ms(col['wf1'])} | {np.mean(col['cpu_s']):.0f} / "
                     f"{np.mean(col['wall_s']):.0f} |")
    lines += ["", f"`dnr+sep` = `{', '.join(f'{k}={v}' for k, v in SEPARATED.items())}`.", "", END]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        doc = DOCS.read_text()
        doc = (doc[:doc.index(START)] + text + doc[doc.index(END) + len(END):]) if START in doc \
            else doc.rstrip("\n") + "\n\n" + text + "\n"
        DOCS.write_text(doc)


def main() -> int:
    import torch

    from merc.data.loading import load_dataset
    from merc.config import DataConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic-subspace")
    parser.add_argument("--backbone", default="mmgcn")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--divide-epochs", dest="divide_epochs", type=int, default=100)
    parser.add_argument("--out", default="runs/bench_dnr_separation")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(DataConfig(dataset=args.dataset))
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for seed in args.seeds:  # variants interleaved per seed
        for variant in VARIANTS:
            results[variant].append(run(variant, seed, args, dataset, Path(args.out)))
            print(variant, seed, {k: round(v, 3) for k, v in results[variant][-1].items()}, flush=True)
            render(results, args)  # after every run, so an interrupted benchmark keeps what it measured
    return 0


if __name__ == "__main__":
    sys.exit(main())
