"""Dev-only tuning of the bench_meld settings (never looks at a test split).

The test split is removed from the dataset before training, so only dev metrics exist; the
settings chosen here are then fixed in ``bench_meld.py`` (``TRAINER`` / ``BACKBONE_OPTIONS``).
Every run appends one JSON line (variant, seed, best dev weighted F1, best epoch, the dev
weighted F1 curve, dev macro and per-class F1, wall time) to ``OUT/tune.jsonl``::

    python benchmarks/tune_meld_dev.py --dataset meld --backbone dialogue_gcn --seeds 0 1 \\
        --variant '{"lr": 3e-4, "class_weights": true}' --variant '{"lr": 1e-3}'

Variants are interleaved within each seed. Every line also records CPU (process) time, the
torch thread count and the load average. Runs start from ``bench_meld.RECIPE`` (the shared
optimisation recipe) and the backbone's ``bench_meld.TRAINER`` entry; a variant overrides them.

Variant keys: trainer keys (``lr``, ``weight_decay``, ``class_weights``, ``max_epochs``,
``patience``, ...), ``batch_size``, ``features`` (``minilm`` or ``minilm+wordllama``) and
``options`` (backbone options) and ``standardize`` (z-score the features with train statistics;
default true).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_meld  # noqa: E402


def without_test(dataset: Any) -> Any:
    from merc.data.schema import DialogueDataset

    splits = {k: (v if k != "test" else []) for k, v in dataset.splits.items()}
    keep = set(splits["train"]) | set(splits["dev"])
    return DialogueDataset(dataset.name, [d for d in dataset.dialogues if d.id in keep], list(dataset.label_names),
                           splits, dataset.source, dict(dataset.meta))


def dev_curve(seed_dir: Path) -> list[float]:
    path = seed_dir / "logs" / "main" / "metrics.csv"
    if not path.is_file():
        return []
    with path.open() as fh:
        return [round(float(r["dev_wf1"]), 2) for r in csv.DictReader(fh) if r.get("dev_wf1")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--data", type=Path, default=bench_meld.shared_data_dir())
    p.add_argument("--dataset", default="meld", choices=["meld", "emorynlp"])
    p.add_argument("--backbone", required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--variant", action="append", default=[], help="JSON object (see module doc); repeatable")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=bench_meld.REPO / "runs" / "bench_meld_tune")
    args = p.parse_args(argv)

    from merc.config import ExperimentConfig
    from merc.training.engine import quiet_lightning, train_run

    quiet_lightning()
    cache: dict[str, Any] = {}
    prepared = []
    for text in args.variant or ["{}"]:
        variant = json.loads(text)
        features = variant.pop("features", "minilm")
        standardize = bool(variant.pop("standardize", True))
        if (features, standardize) not in cache:
            raw = bench_meld.load_features(args.dataset, args.data, None, False, features)
            cache[features, standardize] = without_test(bench_meld.standardize(raw) if standardize else raw)
        dataset = cache[features, standardize]
        options = {**bench_meld.BACKBONE_OPTIONS.get(args.backbone, {}), **variant.pop("options", {})}
        batch_size = variant.pop("batch_size", 32)
        trainer = {"max_epochs": 20, "patience": 5, **bench_meld.RECIPE, **bench_meld.TRAINER.get(args.backbone, {}),
                   **variant, "threads": args.threads, "progress": False, "checkpoint_every": 0}
        raw_cfg = {"data": {"dataset": dataset.name, "modalities": "t", "batch_size": batch_size},
                   "model": {"method": "none", "backbone": args.backbone, "backbone_options": options},
                   "trainer": trainer, "output": {"dir": str(args.out)}}
        prepared.append((text, features, batch_size, options, dataset, ExperimentConfig.from_dict(raw_cfg, source="tune")))
    for seed in args.seeds:  # variants interleaved within each seed (the machine's load drifts)
        for text, features, batch_size, options, dataset, config in prepared:
            start, cpu = time.perf_counter(), time.process_time()
            seed_dir = args.out / "runs" / f"{args.dataset}_{args.backbone}_{hashlib.sha256(text.encode()).hexdigest()[:10]}_{seed}"
            run = train_run(config, seed, dataset, seed_dir)
            record = {"dataset": args.dataset, "backbone": args.backbone, "variant": json.loads(text),
                      "features": features, "batch_size": batch_size, "options": options, "seed": seed,
                      "dev_wf1": round(run.metrics["dev"]["weighted_f1"], 2),
                      "dev_macro_f1": round(run.metrics["dev"]["macro_f1"], 2),
                      "dev_per_class_f1": {k: round(v, 2) for k, v in run.metrics["dev"]["per_class_f1"].items()},
                      "best_epoch": run.best_epoch,
                      "epochs_run": run.epochs_run, "curve": dev_curve(seed_dir),
                      "seconds": round(time.perf_counter() - start, 1),
                      "cpu_seconds": round(time.process_time() - cpu, 1), "threads": args.threads,
                      "load": [round(x, 2) for x in os.getloadavg()], "epoch_seconds": round(run.epoch_seconds, 1)}
            print(json.dumps(record), flush=True)
            args.out.mkdir(parents=True, exist_ok=True)
            with (args.out / "tune.jsonl").open("a") as fh:
                fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
