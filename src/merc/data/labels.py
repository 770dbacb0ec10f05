"""Label sets with the exact index orders of DATA.md, and label-name → index mapping.

Published checkpoints and results only line up when the class indices match, so these orders
are fixed:

=============  ==========================================================================
``iemocap-6``  hap 0, sad 1, neu 2, ang 3, exc 4, fru 5
``iemocap-4``  hap 0 (hap + exc), ang 1, neu 2, sad 3 — DRKF protocol; fru is unlabelled
``meld-7``     neutral 0, surprise 1, fear 2, sadness 3, joy 4, disgust 5, anger 6
``meld-3``     neutral 0, positive 1, negative 2 (sentiment)
``emorynlp-7`` Neutral 0, Joyful 1, Scared 2, Mad 3, Peaceful 4, Powerful 5, Sad 6
``ekman-7``    anger 0, disgust 1, fear 2, joy 3, neutral 4, sadness 5, surprise 6
=============  ==========================================================================

Across label sets (:func:`label_map`): every set maps its classes onto Ekman-7 where a
counterpart exists (:data:`TO_EKMAN`), and two sets are compared in the Ekman classes both
reach. A class without a counterpart (IEMOCAP's ``fru``, EmoryNLP's ``Peaceful`` and
``Powerful``) is *unmappable*: it is reported, never silently merged into another class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from merc.data.schema import IGNORE_LABEL, Dialogue, DialogueDataset
from merc.errors import DataError

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "iemocap-6": ("hap", "sad", "neu", "ang", "exc", "fru"),
    "iemocap-4": ("hap", "ang", "neu", "sad"),
    "meld-7": ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
    "meld-3": ("neutral", "positive", "negative"),
    "emorynlp-7": ("Neutral", "Joyful", "Scared", "Mad", "Peaceful", "Powerful", "Sad"),
    "ekman-7": ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"),  # last: MELD names detect as meld-7
}

#: Each emotion label set's classes → their Ekman-7 counterpart (``None``: no counterpart).
#: IEMOCAP's excited is a high-arousal joy (the IEMOCAP-4 protocol merges it with happy);
#: frustration has no Ekman counterpart. EmoryNLP follows Willcox's feeling wheel, whose
#: Peaceful and Powerful have none either (Scared → fear, Mad → anger, Joyful → joy, Sad → sadness).
TO_EKMAN: dict[str, dict[str, str | None]] = {
    "iemocap-6": {"hap": "joy", "sad": "sadness", "neu": "neutral", "ang": "anger", "exc": "joy", "fru": None},
    "iemocap-4": {"hap": "joy", "ang": "anger", "neu": "neutral", "sad": "sadness"},
    "meld-7": {n: n for n in LABEL_SETS["meld-7"]},
    "emorynlp-7": {"Neutral": "neutral", "Joyful": "joy", "Scared": "fear", "Mad": "anger", "Peaceful": None,
                   "Powerful": None, "Sad": "sadness"},
    "ekman-7": {n: n for n in LABEL_SETS["ekman-7"]},
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


def identify_label_set(names: Sequence[str]) -> str | None:
    """The name of the known label set whose classes are exactly ``names`` (any order, any case)."""
    folded = sorted(n.casefold() for n in names)
    for name in TO_EKMAN:
        if sorted(n.casefold() for n in LABEL_SETS[name]) == folded:
            return name
    return None


@dataclass(frozen=True)
class LabelMap:
    """How a model's classes and a dataset's classes meet in one shared class space.

    Attributes:
        shared: the shared class names, in index order.
        model_to_shared: ``[C_model]`` shared index of each model class (``-1``: unmappable).
        data_to_shared: ``[C_data]`` shared index of each data class (``-1``: unmappable).
        model_labels / data_labels: the two label sets.
        via: how the map was made (``identity``, ``ekman-7`` or a file path).
    """

    shared: tuple[str, ...]
    model_to_shared: np.ndarray
    data_to_shared: np.ndarray
    model_labels: tuple[str, ...]
    data_labels: tuple[str, ...]
    via: str

    @property
    def unmapped_model(self) -> list[str]:
        """Model classes with no counterpart in the data (their probability mass is discarded)."""
        return [n for n, j in zip(self.model_labels, self.model_to_shared) if j < 0]

    @property
    def unmapped_data(self) -> list[str]:
        """Data classes with no counterpart in the model (their utterances are not scored)."""
        return [n for n, j in zip(self.data_labels, self.data_to_shared) if j < 0]

    def shared_probs(self, probs: np.ndarray) -> np.ndarray:
        """``[N, C_model]`` model probabilities → ``[N, K]`` shared-class probabilities.

        A shared class gets the summed probability of the model classes mapped onto it, then
        rows are renormalised over the mappable classes (unmappable mass is discarded)."""
        onehot = np.zeros((len(self.model_labels), len(self.shared)))
        keep = self.model_to_shared >= 0
        onehot[np.flatnonzero(keep), self.model_to_shared[keep]] = 1.0
        out = np.asarray(probs, dtype=np.float64) @ onehot
        return out / np.clip(out.sum(1, keepdims=True), 1e-12, None)

    def shared_gold(self, labels: np.ndarray) -> np.ndarray:
        """``[N]`` data label indices → shared indices (``-1`` for unlabelled or unmappable)."""
        labels = np.asarray(labels, dtype=np.int64)
        return np.where(labels >= 0, self.data_to_shared[np.clip(labels, 0, None)], IGNORE_LABEL)

    def describe(self) -> dict[str, Any]:
        return {"via": self.via, "shared_classes": list(self.shared),
                "model_to_shared": {n: (self.shared[j] if j >= 0 else None)
                                    for n, j in zip(self.model_labels, self.model_to_shared)},
                "data_to_shared": {n: (self.shared[j] if j >= 0 else None)
                                   for n, j in zip(self.data_labels, self.data_to_shared)},
                "unmapped_model_classes": self.unmapped_model, "unmapped_data_classes": self.unmapped_data}


def label_map(model_labels: Sequence[str], data_labels: Sequence[str],
              mapping: dict[str, str | None] | None = None, via: str = "file") -> LabelMap:
    """The :class:`LabelMap` between a model's label set and a dataset's.

    Identical label sets map by identity. With ``mapping`` (model class → data class name or
    ``None``) the shared space is the data's classes. Otherwise both sets must be known label
    sets (:data:`LABEL_SETS`) and meet in the Ekman-7 classes both reach, in Ekman order.

    Raises:
        DataError: unknown label sets without ``mapping``, a mapping naming unknown classes, or
            no class in common.
    """
    model_labels, data_labels = tuple(model_labels), tuple(data_labels)
    if mapping is None and model_labels == data_labels:
        index = np.arange(len(data_labels), dtype=np.int64)
        return LabelMap(data_labels, index, index.copy(), model_labels, data_labels, "identity")
    if mapping is not None:
        unknown = sorted(set(mapping) - set(model_labels))
        bad = sorted({v for v in mapping.values() if v is not None} - set(data_labels))
        if unknown or bad:
            raise DataError(via, f"names unknown classes {', '.join(unknown + bad)}", field="label map",
                            fix=f"keys are model classes ({', '.join(model_labels)}), values data classes "
                                f"({', '.join(data_labels)}) or null")
        shared = data_labels
        to_model = np.array([data_labels.index(mapping[n]) if mapping.get(n) is not None else -1
                             for n in model_labels], dtype=np.int64)
        to_data = np.arange(len(data_labels), dtype=np.int64)
        hit = set(to_model[to_model >= 0].tolist())
        to_data = np.where(np.isin(to_data, list(hit)), to_data, -1)
    else:
        sets = [identify_label_set(model_labels), identify_label_set(data_labels)]
        if None in sets:
            which = "model" if sets[0] is None else "data"
            raise DataError("labels", f"the {which} label set ({', '.join(model_labels if which == 'model' else data_labels)}) "
                            "is not a known one, so no automatic label map exists", field="labels",
                            fix="pass --label-map FILE.json mapping model classes to data classes "
                                f"(known sets: {', '.join(TO_EKMAN)})")
        m_ekman = [TO_EKMAN[sets[0]][_canonical(n, sets[0])] for n in model_labels]
        d_ekman = [TO_EKMAN[sets[1]][_canonical(n, sets[1])] for n in data_labels]
        shared = tuple(e for e in LABEL_SETS["ekman-7"] if e in m_ekman and e in d_ekman)
        to_model = np.array([shared.index(e) if e in shared else -1 for e in m_ekman], dtype=np.int64)
        to_data = np.array([shared.index(e) if e in shared else -1 for e in d_ekman], dtype=np.int64)
        via = "ekman-7"
    if not (to_model >= 0).any() or not (to_data >= 0).any():
        raise DataError(via, "the model's and the data's label sets have no class in common", field="labels",
                        fix=f"model classes: {', '.join(model_labels)}; data classes: {', '.join(data_labels)}")
    return LabelMap(tuple(shared), to_model, to_data, model_labels, data_labels, via)


def _canonical(name: str, set_name: str) -> str:
    """``name`` spelt as in label set ``set_name`` (label sets are matched case-insensitively)."""
    return next(n for n in LABEL_SETS[set_name] if n.casefold() == name.casefold())
