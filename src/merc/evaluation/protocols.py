"""Evaluation protocols beyond a single train/dev/test split.

Leave-one-group-out (LOGO) cross-validation, e.g. DRKF's IEMOCAP protocol: leave-one-session-out
over the 5 sessions on IEMOCAP-4 (hap+exc merged, ang, neu, sad; fru unlabelled). Each fold
tests on one group; a seeded share of the *remaining* dialogues is the validation split used for
model selection, so nothing is ever selected on the test fold (the reference code does). UA,
WA and weighted F1 are reported per fold and as mean ± std over folds.

A dialogue's group comes from ``meta[group_key]`` (a scalar, or a per-utterance array whose
first entry is used) or, failing that, from an IEMOCAP-style id (``Ses01F_impro01`` → ``1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from merc.data.schema import Dialogue, DialogueDataset
from merc.errors import DataError
from merc.io_utils import atomic_write_json, atomic_write_text

SESSION_ID = re.compile(r"^Ses0*(\d+)", re.IGNORECASE)
PROTOCOL_METRICS = ("ua", "wa", "weighted_f1")


@dataclass
class Fold:
    """One fold: ``test_group`` is held out; ``dev_ids`` come from the other groups only."""

    name: str
    test_group: str
    train_ids: list[str]
    dev_ids: list[str]
    test_ids: list[str]


@dataclass
class ProtocolResult:
    """Per-run, per-fold and overall metrics of a leave-one-group-out experiment.

    Attributes:
        runs: one entry per (fold, seed): ``{"fold", "group", "seed", "ua", "wa", "weighted_f1", ...}``.
        per_fold: fold name → metric → mean over seeds.
        summary: metric → ``{"mean", "std"}`` over folds (std with ddof=1; 0 for one fold).
    """

    runs: list[dict[str, Any]]
    per_fold: dict[str, dict[str, float]]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)

    def markdown(self, title: str = "Leave-one-group-out") -> str:
        """Per-fold table and the mean ± std row."""
        head = "| fold | " + " | ".join(m.upper() if m != "weighted_f1" else "weighted F1" for m in PROTOCOL_METRICS)
        lines = [f"## {title}", "", head + " |", "|---" * (len(PROTOCOL_METRICS) + 1) + "|"]
        for fold, values in self.per_fold.items():
            lines.append(f"| {fold} | " + " | ".join(f"{values[m]:.2f}" for m in PROTOCOL_METRICS) + " |")
        lines.append("| **mean ± std** | " + " | ".join(
            f"{self.summary[m]['mean']:.2f} ± {self.summary[m]['std']:.2f}" for m in PROTOCOL_METRICS) + " |")
        return "\n".join(lines) + "\n"


def group_of(dialogue: Dialogue, group_key: str = "session") -> str:
    """The group (e.g. IEMOCAP session) of ``dialogue``; raises naming the fix when it has none."""
    value = dialogue.meta.get(group_key)
    if value is not None:
        arr = np.asarray(value)
        return str(arr.reshape(-1)[0] if arr.ndim else arr.item())
    match = SESSION_ID.match(dialogue.id)
    if match:
        return match.group(1)
    raise DataError(dialogue.id, f"dialogue has no '{group_key}' group", field=f"meta.{group_key}",
                    fix=f"add meta['{group_key}'] to every dialogue or use ids like 'Ses01F_impro01'")


def leave_one_group_out(dataset: DialogueDataset, group_key: str = "session", dev_fraction: float = 0.1,
                        seed: int = 0) -> list[Fold]:
    """One fold per group: test = that group; dev = a seeded ``dev_fraction`` of the rest; train = the rest.

    Args:
        dataset: all dialogues (existing splits are ignored).
        group_key: meta key holding the group (falls back to IEMOCAP-style ids).
        dev_fraction: share of the non-test dialogues used for validation (at least one dialogue).
        seed: seed of the dev carve-out (the same in every fold for a given group set).
    """
    groups: dict[str, list[str]] = {}
    for d in dataset.dialogues:
        groups.setdefault(group_of(d, group_key), []).append(d.id)
    if len(groups) < 2:
        raise DataError(dataset.source or dataset.name, f"found {len(groups)} '{group_key}' group(s)",
                        field=f"meta.{group_key}", fix="leave-one-group-out needs at least two groups")
    order = sorted(groups, key=lambda g: (len(g), g))
    folds = []
    for g in order:
        rest = [i for h in order if h != g for i in groups[h]]
        rng = np.random.default_rng(seed)
        shuffled = [rest[k] for k in rng.permutation(len(rest))]
        n_dev = max(1, int(round(dev_fraction * len(rest))))
        dev = set(shuffled[:n_dev])
        folds.append(Fold(f"{group_key}{g}", g, [i for i in rest if i not in dev], [i for i in rest if i in dev],
                          list(groups[g])))
    return folds


def fold_dataset(dataset: DialogueDataset, fold: Fold) -> DialogueDataset:
    """``dataset`` with its splits replaced by the fold's train/dev/test."""
    out = dataset.subset(fold.train_ids + fold.dev_ids + fold.test_ids, name=f"{dataset.name}-{fold.name}")
    out.splits = {"train": list(fold.train_ids), "dev": list(fold.dev_ids), "test": list(fold.test_ids)}
    out.meta = {**dataset.meta, "fold": fold.name, "test_group": fold.test_group}
    return out


def summarise(runs: Sequence[dict[str, Any]]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per-fold means over seeds, then mean ± std (ddof=1) over folds."""
    per_fold: dict[str, dict[str, float]] = {}
    for fold in dict.fromkeys(r["fold"] for r in runs):
        rows = [r for r in runs if r["fold"] == fold]
        per_fold[fold] = {m: float(np.mean([r[m] for r in rows])) for m in PROTOCOL_METRICS}
    summary = {}
    for m in PROTOCOL_METRICS:
        values = np.array([v[m] for v in per_fold.values()])
        summary[m] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return per_fold, summary


TrainFn = Callable[[Any, int, DialogueDataset, Path], Any]


def run_leave_one_group_out(config: Any, dataset: DialogueDataset, out_dir: str | Path, group_key: str = "session",
                            seeds: Sequence[int] | None = None, train_fn: TrainFn | None = None,
                            dev_fraction: float | None = None) -> ProtocolResult:
    """Train and test every fold × seed with the engine; write ``protocol.md`` and ``protocol.json``.

    Args:
        config: an :class:`~merc.config.ExperimentConfig` (its ``data.dev_fraction``/``dev_seed``
            set the validation carve-out unless ``dev_fraction`` is given).
        dataset: the whole labelled dataset.
        out_dir: one sub-directory per fold and seed holds a model directory.
        group_key: meta key of the group.
        seeds: default ``config.trainer.seeds``.
        train_fn: ``(config, seed, fold_dataset, out_dir) → RunResult`` (default: the engine's
            :func:`~merc.training.engine.train_run`); its ``metrics["test"]`` must hold ``ua``, ``wa``
            and ``weighted_f1``.
    """
    if train_fn is None:
        from merc.training.engine import train_run as train_fn  # type: ignore[no-redef]
    out = Path(out_dir)
    seeds = list(seeds if seeds is not None else config.trainer.seeds)
    frac = dev_fraction if dev_fraction is not None else config.data.dev_fraction
    runs = []
    for fold in leave_one_group_out(dataset, group_key, frac, config.data.dev_seed):
        data = fold_dataset(dataset, fold)
        for seed in seeds:
            result = train_fn(config, seed, data, out / fold.name / f"seed{seed}")
            test = result.metrics["test"]
            runs.append({"fold": fold.name, "group": fold.test_group, "seed": seed,
                         **{m: float(test[m]) for m in PROTOCOL_METRICS}, "accuracy": float(test["accuracy"])})
    per_fold, summary = summarise(runs)
    result = ProtocolResult(runs, per_fold, summary)
    atomic_write_json(out / "protocol.json", {"group_key": group_key, "seeds": seeds, "dev_fraction": frac,
                                              "selection": "validation split inside each training fold",
                                              "runs": runs, "per_fold": per_fold, "summary": summary})
    atomic_write_text(out / "protocol.md", result.markdown(f"Leave-one-{group_key}-out ({dataset.name})"))
    return result


def iemocap4_leave_one_session_out(config: Any, dataset: DialogueDataset, out_dir: str | Path,
                                   **kwargs: Any) -> ProtocolResult:
    """DRKF's IEMOCAP protocol: IEMOCAP-6 labels → IEMOCAP-4, then leave-one-session-out."""
    from merc.data.labels import LABEL_SETS, to_iemocap4

    if list(dataset.label_names) == list(LABEL_SETS["iemocap-6"]):
        dataset = to_iemocap4(dataset)
    elif list(dataset.label_names) != list(LABEL_SETS["iemocap-4"]):
        raise DataError(dataset.source or dataset.name, "the IEMOCAP-4 protocol needs IEMOCAP-6 or -4 labels",
                        field="labels", fix=f"the dataset has labels {', '.join(dataset.label_names)}")
    return run_leave_one_group_out(config, dataset, out_dir, group_key="session", **kwargs)


__all__ = ["Fold", "ProtocolResult", "group_of", "leave_one_group_out", "fold_dataset", "summarise",
           "run_leave_one_group_out", "iemocap4_leave_one_session_out"]
