"""Validation of a loaded :class:`~merc.data.schema.DialogueDataset`.

Every reader's output goes through :func:`validate_dataset` before training. It refuses, with
a one-line :class:`~merc.errors.DataError` naming the dataset, the dialogue/field and the fix:

- an empty dataset, an empty dialogue, duplicate dialogue ids;
- missing or blank speakers;
- per-utterance fields (labels, texts, utterance ids, features, sequences, media, meta arrays)
  whose length differs from the number of speakers;
- features that are not 2-D, a modality missing from some dialogues, or a feature dimension
  that differs between dialogues;
- labels outside ``[-1, num_classes)``;
- split lists naming unknown dialogues or a dialogue in two splits;
- NaN/inf features — unless ``clean=True``, which replaces them by 0 and reports what changed;
- a dataset without any features — unless ``require_features=False`` (transcript datasets
  such as ``meld`` before ``merc features`` has added features).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from merc.data.schema import MODALITIES, Dialogue, DialogueDataset
from merc.errors import DataError


@dataclass
class ValidationReport:
    """What validation saw and (with ``clean=True``) changed.

    Attributes:
        dialogues: number of dialogues.
        utterances: number of utterances.
        dims: modality → feature dimension.
        changes: one human-readable line per repair (empty when nothing changed).
        cleaned: modality → number of NaN/inf values replaced by 0.
    """

    dialogues: int = 0
    utterances: int = 0
    dims: dict[str, int] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    cleaned: dict[str, int] = field(default_factory=dict)


def validate_dataset(dataset: DialogueDataset, clean: bool = False, require_features: bool = True) -> ValidationReport:
    """Check ``dataset`` in place (see module docs); with ``clean=True`` repair NaN/inf features.

    Args:
        dataset: the dataset to check.
        clean: replace non-finite feature values by 0 instead of refusing them.
        require_features: refuse a dataset without any feature modality.

    Returns:
        A :class:`ValidationReport`.
    """
    source = dataset.source or dataset.name
    if not dataset.dialogues:
        raise DataError(source, "holds no dialogues", fix="check the file or the split lists")
    report = ValidationReport(dialogues=len(dataset.dialogues))
    ids = [d.id for d in dataset.dialogues]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(source, f"dialogue id '{dup}' occurs twice", field="dialogue_id",
                        fix="make dialogue ids unique")
    modalities = set(dataset.dialogues[0].features)
    dims: dict[str, int] = {}
    for d in dataset.dialogues:
        _check_dialogue(d, source, dataset.num_classes)
        if set(d.features) != modalities:
            odd = sorted(set(d.features) ^ modalities)
            raise DataError(source, f"dialogue '{d.id}' differs in modalities ({', '.join(odd)}) from the others",
                            field="features", fix="give every dialogue the same modalities")
        for m, x in d.features.items():
            if dims.setdefault(m, x.shape[1]) != x.shape[1]:
                raise DataError(source, f"dialogue '{d.id}' has {m} features of dim {x.shape[1]}, others {dims[m]}",
                                field=f"features[{m}]", fix="use one extractor (one dimension) per modality")
        report.utterances += len(d)
    if require_features and not modalities:
        raise DataError(source, "has no features (transcripts only)", field="features",
                        fix="extract features first (merc features) or use a dataset with feature files")
    _check_finite(dataset, source, clean, report)
    _check_splits(dataset, source)
    report.dims = {m: dims[m] for m in MODALITIES if m in dims}
    return report


def _check_dialogue(d: Dialogue, source: str, num_classes: int) -> None:
    L = len(d)
    where = f"dialogue '{d.id}'"
    if L == 0:
        raise DataError(source, f"{where} is empty", field="speakers", fix="remove empty dialogues")
    if any(not s.strip() for s in d.speakers):
        raise DataError(source, f"{where} has a blank speaker", field="speakers", fix="name every utterance's speaker")

    def same_length(name: str, n: int) -> None:
        if n != L:
            raise DataError(source, f"{where} has {n} {name} for {L} utterances", field=name,
                            fix=f"give every utterance exactly one entry in {name}")

    if d.labels is not None:
        same_length("labels", d.labels.shape[0] if d.labels.ndim == 1 else -1)
        if d.labels.size and (d.labels.min() < -1 or d.labels.max() >= num_classes):
            bad = int(d.labels.max() if d.labels.max() >= num_classes else d.labels.min())
            raise DataError(source, f"{where} has label {bad} outside 0..{num_classes - 1}", field="labels",
                            fix="use class indices of the label set (or -1 for unlabelled)")
    if d.texts is not None:
        same_length("texts", len(d.texts))
    same_length("utterance_ids", len(d.utterance_ids or []))
    for m, x in d.features.items():
        if x.ndim != 2 or x.shape[1] == 0:
            raise DataError(source, f"{where} has {m} features of shape {tuple(x.shape)}", field=f"features[{m}]",
                            fix="store one non-empty feature vector per utterance: [utterances, dim ≥ 1]")
        same_length(f"features[{m}]", x.shape[0])
    for m, seqs in d.sequences.items():
        same_length(f"sequences[{m}]", len(seqs))
    for m, paths in d.media.items():
        same_length(f"media[{m}]", len(paths))
    for key, value in d.meta.items():
        if isinstance(value, np.ndarray) and value.ndim >= 1:
            same_length(f"meta[{key}]", value.shape[0])


def _check_finite(dataset: DialogueDataset, source: str, clean: bool, report: ValidationReport) -> None:
    for d in dataset.dialogues:
        for m, x in d.features.items():
            bad = ~np.isfinite(x)
            count = int(bad.sum())
            if not count:
                continue
            if not clean:
                raise DataError(source, f"dialogue '{d.id}' has {count} NaN/inf value(s) in {m} features",
                                field=f"features[{m}]",
                                fix="fix the features or opt in to data.clean=true (replaces them by 0)")
            d.features[m] = np.where(bad, np.float32(0.0), x)
            report.cleaned[m] = report.cleaned.get(m, 0) + count
    for m, count in report.cleaned.items():
        report.changes.append(f"replaced {count} NaN/inf value(s) in {m} features by 0")


def _check_splits(dataset: DialogueDataset, source: str) -> None:
    if not isinstance(dataset.splits, dict) or not all(
            isinstance(ids, (list, tuple)) and all(isinstance(i, str) for i in ids) for ids in dataset.splits.values()):
        raise DataError(source, "splits must map split names to lists of dialogue ids", field="splits",
                        fix="e.g. {'train': ['d1', ...], 'test': [...]}")
    known = {d.id for d in dataset.dialogues}
    owner: dict[str, str] = {}
    for split, ids in dataset.splits.items():
        for i in ids:
            if i not in known:
                raise DataError(source, f"split '{split}' names unknown dialogue '{i}'", field="splits",
                                fix="list only dialogues present in the data")
            if i in owner and owner[i] != split:
                raise DataError(source, f"dialogue '{i}' is in both '{owner[i]}' and '{split}'", field="splits",
                                fix="put each dialogue in one split")
            owner[i] = split
