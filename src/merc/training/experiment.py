"""Multi-seed experiments: train every seed, aggregate mean ± std, write the results table.

Output directory layout::

    OUT/
      config.yaml                 the resolved experiment config
      seed_<s>/                   one model directory per seed (see merc.training.model_dir)
      results.md|csv|json         mean ± std over seeds (dev and test), per-class F1
      confusion_test.csv|png      test confusion matrix summed over seeds
"""

from __future__ import annotations

import platform
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from lightning.pytorch.utilities.exceptions import SIGTERMException

from merc.config import ExperimentConfig, resolve_model_options, save_yaml
from merc.data.schema import DialogueDataset
from merc.evaluation.report import aggregate, pm, write_confusion, write_results
from merc.interrupt import Interrupted
from merc.training.checkpoints import resume_checkpoint
from merc.training.distributed import is_global_zero
from merc.training.engine import LEGACY_LABEL, RunResult, build_method, train_run


def describe_model(config: ExperimentConfig) -> str:
    """``dnr + mmgcn``, ``mmgcn`` (method none) or ``drkf`` (no backbone) for log lines."""
    method, backbone = config.model.method, config.model.backbone
    if method == "none":
        return backbone
    if method == "drkf":
        return method
    return f"{method} + {backbone}"


@dataclass
class ExperimentResult:
    """All seeds of one experiment.

    Attributes:
        runs: one :class:`RunResult` per seed.
        summary: split → aggregated metrics (see :func:`merc.evaluation.report.aggregate`).
        out_dir: where everything was written.
        files: the result files written.
    """

    runs: list[RunResult]
    summary: dict[str, dict[str, Any]]
    out_dir: Path
    files: dict[str, Path]

    def headline(self) -> str:
        """``"test weighted F1 63.21 ± 0.84, accuracy ..."`` for logs."""
        split = "test" if "test" in self.summary else "dev"
        agg = self.summary[split]
        return (f"{split}: weighted F1 {pm(agg['weighted_f1'])}, accuracy {pm(agg['accuracy'])}, "
                f"macro F1 {pm(agg['macro_f1'])} over {agg['n_seeds']} seed(s)")


def run_experiment(config: ExperimentConfig, dataset: DialogueDataset | None = None,
                   log: Callable[[str], None] = print) -> ExperimentResult:
    """Train ``config`` for each of ``config.trainer.seeds`` and write the aggregated results."""
    config = replace(config, model=resolve_model_options(config.model))
    if dataset is None:
        from merc.data.loading import load_dataset

        dataset = load_dataset(config.data)
    out = Path(config.output.dir)
    writer = is_global_zero()  # under DDP every process runs this; only one writes
    if not writer:
        log = _silent
    else:
        out.mkdir(parents=True, exist_ok=True)
        save_yaml(config.to_dict(), out / "config.yaml")
    import torch

    with torch.device("meta"):  # option errors (e.g. a backbone given to drkf) before anything trains
        build_method(config, dataset)
    runs: list[RunResult] = []
    for seed in config.trainer.seeds:
        log(f"[merc] seed {seed}: training {describe_model(config)} on {dataset.name} "
            f"({''.join(config.data.modalities)})")
        try:
            run = train_run(config, seed, dataset, out / f"seed_{seed}")
        except (Interrupted, SIGTERMException) as exc:  # say where the resumable checkpoint is
            raise Interrupted(getattr(exc, "signum", signal.SIGTERM), resume_checkpoint(out / f"seed_{seed}")) from None
        test = run.metrics.get("test", run.metrics["dev"])
        log(f"[merc] seed {seed}: best epoch {run.best_epoch}, test weighted F1 {test['weighted_f1']:.2f}, "
            f"accuracy {test['accuracy']:.2f} ({run.seconds:.1f} s)")
        runs.append(run)
    splits = [s for s in ("dev", "test") if all(s in r.metrics for r in runs)]
    summary = {s: aggregate([r.metrics[s] for r in runs], dataset.label_names) for s in splits}
    if not writer:
        return ExperimentResult(runs, summary, out, {})
    legacy = config.trainer.selection == "test-legacy"
    notes = [f"dataset: {dataset.name} ({dataset.source})", f"method: {config.model.method}",
             f"backbone: {config.model.backbone}", f"modalities: {config.data.modalities}",
             f"seeds: {' '.join(map(str, config.trainer.seeds))}",
             f"model selection: {LEGACY_LABEL if legacy else 'best dev weighted F1'}",
             f"dev split: {dataset.meta.get('dev_from', 'official')} (seed {dataset.meta.get('dev_seed', '-')})",
             f"mean epoch time: {np.nanmean([r.epoch_seconds for r in runs]):.2f} s"]
    provenance = _provenance(config, dataset)
    title = f"{config.model.method} / {config.model.backbone} on {dataset.name}" + (" [LEGACY: test-selected]" if legacy else "")
    files = write_results(out, title, summary, dataset.label_names, provenance, notes)
    if "test" in splits:
        confusion = np.sum([np.asarray(r.metrics["test"]["confusion"]) for r in runs], axis=0)
        files["confusion_csv"], files["confusion_png"] = write_confusion(
            out / "confusion_test", confusion, dataset.label_names,
            title=f"test confusion (sum over {len(runs)} seeds)" + (" [LEGACY]" if legacy else ""))
    result = ExperimentResult(runs, summary, out, files)
    if config.output.explain:
        from merc.explain import explain_to_dir

        files["explanations"] = explain_to_dir(runs[0].model_dir, dataset, "test" if "test" in splits else "dev",
                                               out / "explanations")
    return result


def _silent(message: str) -> None:
    """Log sink of non-writing processes."""


def _provenance(config: ExperimentConfig, dataset: DialogueDataset) -> dict[str, Any]:
    import torch

    from merc import __version__

    return {"merc_version": __version__, "torch_version": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "config": config.to_dict(), "dataset": dataset.name,
            "dataset_meta": {k: v for k, v in dataset.meta.items() if isinstance(v, (str, int, float, bool))}}
