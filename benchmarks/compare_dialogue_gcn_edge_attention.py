"""DialogueGCN: the authors' wiring (default) vs merc's earlier variant, same seeds, interleaved.

Variants (backbone options over the bundled defaults):

- ``faithful``: the defaults — edge attention in the relational layer, unweighted GraphConv, no
  non-linearity (``edge_attention_layer: rgcn``), tanh-bounded nodal attention
  (``nodal_scores: tanh``), as in conv-emotion's ``DialogueGCN/model.py``;
- ``earlier``: merc until 2026-12-01 (``edge_attention_layer: graphconv``, ``nodal_scores:
  bilinear``);
- ``faithful_no_nodal``: the faithful graph without the nodal attention (``nodal_attention: false``).

For each seed the variants are trained back to back (method ``none``, dev-set selection), on

- ``synthetic-iemocap`` (tav): dev and test weighted F1 are reported (synthetic data);
- MELD text (frozen MiniLM+WordLlama features, z-scored with train statistics, as in
  ``bench_meld.py``) with the **test split removed before training**: dev weighted F1 only.

Each run prints one JSON line (dataset, variant, seed, dev/test weighted F1, selected epoch, wall
and CPU seconds, torch threads, load average before/after) and appends it to ``OUT/runs.jsonl``;
a mean ± std summary per (dataset, variant) is printed at the end::

    python benchmarks/compare_dialogue_gcn_edge_attention.py --seeds 0 1 2
    python benchmarks/compare_dialogue_gcn_edge_attention.py --seeds 0 --datasets synthetic-iemocap
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_meld  # noqa: E402
from tune_meld_dev import without_test  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "faithful": {"nodal_attention": True},  # the authors' wiring with their README run's --nodal-attention
    "earlier": {"edge_attention_layer": "graphconv", "nodal_scores": "bilinear"},
    "faithful_no_nodal": {"nodal_attention": False},  # the default since 2026-12-02
}
#: the synthetic budget of bench_dnr's DialogueGCN rows; MELD: bench_meld's dialogue_gcn settings
TRAINER = {"synthetic-iemocap": {"max_epochs": 20, "patience": 6},
           "meld": {"max_epochs": 25, "patience": 6, **bench_meld.TRAINER.get("dialogue_gcn", {})}}


def load(name: str, data_dir: Path) -> tuple[Any, str]:
    if name == "meld":
        raw = bench_meld.load_features("meld", data_dir, None, False, "minilm+wordllama")
        return without_test(bench_meld.standardize(raw)), "t"
    from merc.config import DataConfig
    from merc.data.loading import load_dataset

    return load_dataset(DataConfig(dataset=name, modalities="tav")), "tav"  # dev carved from train


def run_one(dataset: Any, modalities: str, name: str, variant: str, seed: int, out: Path) -> dict[str, Any]:
    from merc.config import ExperimentConfig
    from merc.training.engine import train_run

    raw_cfg = {"data": {"dataset": dataset.name, "modalities": modalities, "batch_size": 16 if name != "meld" else 32},
               "model": {"method": "none", "backbone": "dialogue_gcn",
                         "backbone_options": VARIANTS[variant]},
               "trainer": {**TRAINER[name], "threads": 1, "progress": False, "checkpoint_every": 0},
               "output": {"dir": str(out)}}
    config = ExperimentConfig.from_dict(raw_cfg, source="compare_dialogue_gcn_edge_attention")
    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    run = train_run(config, seed, dataset, out / "runs" / f"{name}_{variant}_{seed}")
    record = {"dataset": name, "variant": variant, "seed": seed,
              "dev_wf1": round(run.metrics["dev"]["weighted_f1"], 2),
              "test_wf1": round(run.metrics["test"]["weighted_f1"], 2) if "test" in run.metrics else None,
              "best_epoch": run.best_epoch, "wall_s": round(time.perf_counter() - wall, 1),
              "cpu_s": round(time.process_time() - cpu, 1), "threads": 1,
              "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(record), flush=True)
    with (out / "runs.jsonl").open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    return record


def summary(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for name in dict.fromkeys(r["dataset"] for r in records):
        for variant in VARIANTS:
            rows = [r for r in records if r["dataset"] == name and r["variant"] == variant]
            if not rows:
                continue
            parts = [f"{name} {variant}: {len(rows)} seeds"]
            for key in ("dev_wf1", "test_wf1", "best_epoch", "cpu_s"):
                vals = np.array([r[key] for r in rows if r[key] is not None], dtype=float)
                if vals.size:
                    parts.append(f"{key} {vals.mean():.2f} ± {vals.std(ddof=1) if vals.size > 1 else 0.0:.2f}")
            lines.append(", ".join(parts))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--datasets", nargs="+", default=["synthetic-iemocap", "meld"], choices=list(TRAINER))
    p.add_argument("--data", type=Path, default=bench_meld.shared_data_dir())
    p.add_argument("--out", type=Path, default=bench_meld.REPO / "runs" / "compare_dialogue_gcn_edge_attention")
    args = p.parse_args(argv)

    import torch

    from merc.training.engine import quiet_lightning

    torch.set_num_threads(1)
    quiet_lightning()
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in args.datasets:
        dataset, modalities = load(name, args.data)
        for seed in args.seeds:
            for variant in (args.variants if seed % 2 == 0 else args.variants[::-1]):  # interleaved, alternating
                records.append(run_one(dataset, modalities, name, variant, seed, args.out))
    print("\n".join(summary(records)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
