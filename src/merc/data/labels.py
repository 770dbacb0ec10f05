"""Label sets with the exact index orders of DATA.md, and label-name → index mapping.

Published checkpoints and results only line up when the class indices match, so these orders
are fixed:

=============  ==========================================================================
``iemocap-6``  hap 0, sad 1, neu 2, ang 3, exc 4, fru 5
``iemocap-4``  hap 0 (hap + exc), ang 1, neu 2, sad 3 — DRKF protocol; fru is unlabelled
``meld-7``     neutral 0, surprise 1, fear 2, sadness 3, joy 4, disgust 5, anger 6
``meld-3``     neutral 0, positive 1, negative 2 (sentiment)
``emorynlp-7`` Neutral 0, Joyful 1, Scared 2, Mad 3, Peaceful 4, Powerful 5, Sad 6
=============  ==========================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from merc.data.schema import IGNORE_LABEL, Dialogue, DialogueDataset
from merc.errors import DataError

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "iemocap-6": ("hap", "sad", "neu", "ang", "exc", "fru"),
    "iemocap-4": ("hap", "ang", "neu", "sad"),
    "meld-7": ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
    "meld-3": ("neutral", "positive", "negative"),
    "emorynlp-7": ("Neutral", "Joyful", "Scared", "Mad", "Peaceful", "Powerful", "Sad"),
}

# IEMOCAP-6 index → IEMOCAP-4 index (hap+exc merged; fru dropped to "unlabelled").
IEMOCAP4_FROM_6: np.ndarray = np.array([0, 3, 2, 1, 0, IGNORE_LABEL], dtype=np.int64)


def label_set(name: str) -> list[str]:
    """The class names of label set ``name`` in index order."""
    if name not in LABEL_SETS:
        raise DataError("labels", f"unknown label set '{name}'", fix=f"choose from: {', '.join(LABEL_SETS)}")
    return list(LABEL_SETS[name])


def encode_labels(names: Sequence[str], valid: Sequence[str], source: str | Path, field: str,
                  lines: Sequence[int] | None = None, allow_blank: bool = False) -> np.ndarray:
    """Map label names to indices of ``valid`` (exact match, then case-insensitive).

    Args:
        names: one label name per utterance.
        valid: the label set in index order.
        source: file the names come from (for the error message).
        field: column/key holding the names.
        lines: the file line of each name (for the error message); positions when None.
        allow_blank: map empty names to ``-1`` (unlabelled) instead of refusing them.

    Returns:
        ``int64`` array ``[len(names)]``.
    """
    lookup = {n: i for i, n in enumerate(valid)}
    folded = {n.casefold(): i for i, n in enumerate(valid)}
    if allow_blank:
        lookup[""] = IGNORE_LABEL
    if len(names) == 0:
        return np.empty(0, dtype=np.int64)
    distinct, first, inverse = np.unique(np.asarray([str(n) for n in names], dtype=str), return_index=True,
                                         return_inverse=True)
    table = np.empty(len(distinct), dtype=np.int64)
    for j, name in enumerate(distinct):  # one lookup per distinct name
        key = str(name).strip()
        index = lookup.get(key, folded.get(key.casefold()))
        if index is None:
            where = f"line {lines[int(first[j])]}" if lines is not None else f"position {int(first[j])}"
            raise DataError(source, f"unknown label '{name}' at {where}", field=field,
                            fix=f"valid labels: {', '.join(valid)}")
        table[j] = index
    return table[inverse.reshape(-1)]


def check_label_range(labels: np.ndarray, num_classes: int, source: str | Path, field: str,
                      label_set_name: str | None = None) -> None:
    """Refuse label indices outside ``[-1, num_classes)``."""
    if labels.size == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < IGNORE_LABEL or hi >= num_classes:
        bad = hi if hi >= num_classes else lo
        which = f" of {label_set_name}" if label_set_name else ""
        raise DataError(source, f"label index {bad} is outside 0..{num_classes - 1}{which}", field=field,
                        fix="check the label set (format option labels=...) or the file")


def remap_labels(dataset: DialogueDataset, mapping: np.ndarray, label_names: Iterable[str],
                 name: str | None = None) -> DialogueDataset:
    """A copy of ``dataset`` with labels mapped through ``mapping`` (old index → new index or -1).

    Example: ``remap_labels(iemocap6, IEMOCAP4_FROM_6, LABEL_SETS["iemocap-4"])``.
    """
    table = np.asarray(mapping, dtype=np.int64)
    dialogues = []
    for d in dataset.dialogues:
        labels = None
        if d.labels is not None:
            labels = np.where(d.labels >= 0, table[np.clip(d.labels, 0, None)], IGNORE_LABEL)
        dialogues.append(Dialogue(d.id, d.speakers, d.features, labels, d.texts, d.utterance_ids, d.meta,
                                  d.sequences, d.media))
    return DialogueDataset(name or dataset.name, dialogues, list(label_names), dict(dataset.splits),
                           dataset.source, dict(dataset.meta))


def to_iemocap4(dataset: DialogueDataset) -> DialogueDataset:
    """IEMOCAP-6 → IEMOCAP-4 (DRKF protocol: hap+exc, ang, neu, sad; fru becomes unlabelled)."""
    if list(dataset.label_names) != list(LABEL_SETS["iemocap-6"]):
        raise DataError(dataset.source or dataset.name, "IEMOCAP-4 needs IEMOCAP-6 labels", field="labels",
                        fix=f"the dataset has labels {', '.join(dataset.label_names)}")
    out = remap_labels(dataset, IEMOCAP4_FROM_6, LABEL_SETS["iemocap-4"])
    out.meta["label_set"] = "iemocap-4"
    return out
