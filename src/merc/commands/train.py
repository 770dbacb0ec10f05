"""``merc train``: train (and evaluate) a method over one or more seeds."""

from __future__ import annotations

import argparse
from typing import Any

from merc.cli import add_command

# flag dest → (config section, key)
_FLAG_KEYS: dict[str, tuple[str, str]] = {
    "dataset": ("data", "dataset"), "data_path": ("data", "path"), "format": ("data", "format"),
    "modalities": ("data", "modalities"), "batch_size": ("data", "batch_size"), "dev_seed": ("data", "dev_seed"),
    "clean": ("data", "clean"), "protocol": ("data", "protocol"), "group_key": ("data", "group_key"),
    "method": ("model", "method"), "backbone": ("model", "backbone"),
    "epochs": ("trainer", "max_epochs"), "lr": ("trainer", "lr"), "patience": ("trainer", "patience"),
    "seeds": ("trainer", "seeds"), "class_weights": ("trainer", "class_weights"),
    "selection": ("trainer", "selection"), "devices": ("trainer", "devices"), "num_nodes": ("trainer", "num_nodes"),
    "strategy": ("trainer", "strategy"), "accelerator": ("trainer", "accelerator"), "threads": ("trainer", "threads"),
    "out": ("output", "dir"), "explain": ("output", "explain"),
    "resume": ("trainer", "resume"), "checkpoint_every": ("trainer", "checkpoint_every"),
    "modality_dropout": ("trainer", "modality_dropout"),
}


def add_experiment_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``sweep``: a YAML config plus explicit overrides."""
    p.add_argument("--config", metavar="YAML", help="experiment config: a YAML file (sections data, model, trainer, output) or the name "
                        "of a bundled experiment, e.g. 'main' (the README's main job); the defaults shown below "
                        "apply to what neither the config nor a flag sets")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", help="catalog name (see 'merc datasets') or path to a data file")
    g.add_argument("--data-path", dest="data_path", metavar="PATH", help="local files for a catalog dataset")
    g.add_argument("--format", help="force the data file format instead of auto-detection")
    g.add_argument("--modalities", help="subset of t (text), a (audio), v (visual), e.g. 'ta'")
    g.add_argument("--batch-size", dest="batch_size", type=int, help="dialogues per batch")
    g.add_argument("--dev-seed", dest="dev_seed", type=int, help="seed of the dev carve-out when no official dev split")
    g.add_argument("--protocol", choices=("split", "leave-one-group-out", "iemocap4-loso"),
                   help="evaluation protocol: the dataset's split, leave-one-group-out folds "
                        "(see --group-key), or DRKF's IEMOCAP-4 leave-one-session-out")
    g.add_argument("--group-key", dest="group_key", metavar="KEY",
                   help="dialogue meta key of the groups for leave-one-group-out")
    g.add_argument("--clean", action="store_const", const=True, help="replace NaN/inf features by 0 (reported)")
    g = p.add_argument_group("model")
    g.add_argument("--method", help="none, dnr or drkf (see 'merc methods')")
    g.add_argument("--backbone", help="dialogue backbone (see 'merc backbones')")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, help="maximum epochs of the main stage")
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--patience", type=int, help="early-stopping patience in epochs (0: off)")
    g.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="one run per seed; results give mean ± std")
    g.add_argument("--class-weights", dest="class_weights", action="store_const", const=True,
                   help="inverse-frequency class weights in the cross-entropy")
    g.add_argument("--selection", choices=("dev", "test-legacy"),
                   help="epoch selection: dev or test-legacy (best TEST epoch; labelled, not comparable)")
    g.add_argument("--devices", type=int, help="processes/devices per machine (DDP when > 1)")
    g.add_argument("--num-nodes", dest="num_nodes", type=int, help="machines (multi-node DDP)")
    g.add_argument("--strategy", help="Lightning strategy: auto, ddp, ddp_spawn, ...")
    g.add_argument("--accelerator", help="cpu, gpu, auto")
    g.add_argument("--threads", type=int, help="torch intra-op threads (0: torch default)")
    g.add_argument("--resume", action="store_const", const=True,
                   help="continue an interrupted run in --out from its last checkpoint; finished seeds are kept")
    g.add_argument("--checkpoint-every", dest="checkpoint_every", type=int, metavar="EPOCHS",
                   help="write the resumable checkpoint every this many epochs (0: never)")
    g.add_argument("--modality-dropout", dest="modality_dropout", type=float, metavar="P",
                   help="replace each modality of a training dialogue by its training mean with probability P "
                        "(missing-modality robustness; on-distribution subset explanations; default 0)")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="output directory")
    g.add_argument("--explain", action="store_const", const=True,
                   help="also write explanations and plots for the test split")
    p.add_argument("-o", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value by dotted key, e.g. -o model.backbone_options.hidden=128 "
                        "(repeatable; applied last)")
    p.add_argument("--no-progress", dest="no_progress", action="store_true",
                   help="hide progress bars (and the per-epoch lines printed when output is not a terminal)")
    _show_config_defaults(p)


def _show_config_defaults(p: argparse.ArgumentParser) -> None:
    """Append ``(default: X)`` with the value the config uses to each flag that maps to a config key
    (the flags themselves default to None so that only explicit flags override a --config file)."""
    from merc.config import ExperimentConfig

    defaults = ExperimentConfig().to_dict()
    for action in p._actions:
        if action.dest not in _FLAG_KEYS or action.nargs == 0:
            continue
        section, key = _FLAG_KEYS[action.dest]
        value = defaults[section][key]
        if value is None:
            continue
        shown = " ".join(map(str, value)) if isinstance(value, list) else value
        action.help = f"{action.help} (default: {shown})"


def config_from_args(args: argparse.Namespace) -> Any:
    """Defaults < ``--config`` YAML < explicit flags < ``-o`` overrides; validated."""
    from merc.config import ExperimentConfig, apply_overrides, load_experiment_yaml

    raw: dict[str, Any] = {}
    source = "command line"
    if args.config:
        raw, source = load_experiment_yaml(args.config)
    for dest, (section, key) in _FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is not None:
            raw.setdefault(section, {})[key] = value
    if args.no_progress:
        raw.setdefault("trainer", {})["progress"] = False
    apply_overrides(raw, args.overrides)
    return ExperimentConfig.from_dict(raw, source=source)


def _run(args: argparse.Namespace) -> int:
    from merc.training.experiment import run_experiment

    config = config_from_args(args)
    if config.data.protocol != "split":
        return _run_protocol(config)
    result = run_experiment(config)
    if not result.files:  # a non-writing process of a multi-process run
        return 0
    print()
    print(result.files["md"].read_text(encoding="utf-8"))
    print(f"[merc] {result.headline()}")
    print(f"[merc] results: {result.files['md']}, {result.files['csv']}, {result.files['json']}")
    return 0


def _run_protocol(config: Any) -> int:
    """Cross-validation protocols: every fold × seed, then the per-fold and mean ± std table."""
    from pathlib import Path

    from merc.data.loading import load_dataset
    from merc.evaluation.protocols import iemocap4_leave_one_session_out, run_leave_one_group_out
    from merc.training.distributed import is_global_zero

    dataset = load_dataset(config.data)
    out = Path(config.output.dir)
    if config.data.protocol == "iemocap4-loso":
        result = iemocap4_leave_one_session_out(config, dataset, out)
    else:
        result = run_leave_one_group_out(config, dataset, out, group_key=config.data.group_key)
    if is_global_zero():
        print()
        print(result.markdown(f"{config.data.protocol} ({dataset.name})"))
        print(f"[merc] protocol results: {out / 'protocol.md'}, {out / 'protocol.json'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", "train a method on a dataset over one or more seeds and report mean ± std", _run,
                    description="Train a method (none, dnr, drkf) with a backbone on a dataset. Selects the epoch "
                                "with the best dev weighted F1, evaluates the test split once, writes one model "
                                "directory per seed and a results table (Markdown, CSV, JSON).")
    add_experiment_options(p)
