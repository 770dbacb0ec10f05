"""The one in-memory schema every loader produces and every model consumes.

A :class:`DialogueDataset` is a list of :class:`Dialogue` objects plus the label set, the
split assignment and provenance. Every file format is parsed into this in ``merc.data.io``;
nothing downstream knows where the data came from.

Conventions:

- modality keys are ``"t"`` (text), ``"a"`` (audio), ``"v"`` (visual); order ``MODALITIES``;
- features are ``float32`` arrays ``[L, d_m]`` per dialogue of length ``L``;
- labels are ``int64`` ``[L]`` with ``-1`` for "no label" (e.g. prediction inputs);
- speakers are the raw speaker names (strings), one per utterance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from merc.errors import DataError

MODALITIES: tuple[str, ...] = ("t", "a", "v")
MODALITY_NAMES = {"t": "text", "a": "audio", "v": "visual"}
SPLITS: tuple[str, ...] = ("train", "dev", "test")
IGNORE_LABEL = -1


@dataclass
class Dialogue:
    """One conversation.

    Attributes:
        id: dialogue identifier, unique within its dataset.
        speakers: speaker name of each utterance, length ``L``.
        features: modality key → ``float32`` array ``[L, d_m]``.
        labels: ``int64`` array ``[L]`` (``-1`` = unlabelled) or ``None``.
        texts: the transcript of each utterance, or ``None``.
        utterance_ids: identifier of each utterance (defaults to ``"0".."L-1"``).
        meta: per-utterance extras, each an array of length ``L`` (e.g. the synthetic
            generator's planted ``interaction`` type) or dialogue-level scalars.
        sequences: modality → list of ``L`` token/frame-level arrays ``[T_i, d_m]`` (optional;
            DRKF's frame-level input mode).
        media: modality → list of ``L`` raw media paths (e.g. ``"a"`` → wav files; optional).
    """

    id: str
    speakers: list[str]
    features: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None
    texts: list[str] | None = None
    utterance_ids: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    sequences: dict[str, list[np.ndarray]] = field(default_factory=dict)
    media: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = str(self.id)
        self.speakers = [str(s) for s in self.speakers]
        if self.utterance_ids is None:
            self.utterance_ids = [str(i) for i in range(len(self.speakers))]
        else:
            self.utterance_ids = [str(u) for u in self.utterance_ids]
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
        self.features = {m: np.asarray(x, dtype=np.float32) for m, x in self.features.items()}

    def __len__(self) -> int:
        return len(self.speakers)


@dataclass
class DialogueDataset:
    """A labelled collection of dialogues with its split assignment.

    Attributes:
        name: dataset name (catalog name or file stem).
        dialogues: all dialogues of all splits.
        label_names: class names in index order (exact orders from DATA.md).
        splits: split name (``train``/``dev``/``test``) → dialogue ids.
        source: where it was loaded from (file or generator description).
        meta: provenance, e.g. ``{"dev_seed": 0, "dev_from": "train"}``.
    """

    name: str
    dialogues: list[Dialogue]
    label_names: list[str]
    splits: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {d.id: i for i, d in enumerate(self.dialogues)}

    # -- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dialogues)

    def __iter__(self) -> Iterator[Dialogue]:
        return iter(self.dialogues)

    def __getitem__(self, dialogue_id: str) -> Dialogue:
        return self.dialogues[self._index[dialogue_id]]

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities present in every dialogue, in canonical order."""
        if not self.dialogues:
            return ()
        present = set(self.dialogues[0].features)
        for d in self.dialogues[1:]:
            present &= set(d.features)
        return tuple(m for m in MODALITIES if m in present)

    @property
    def dims(self) -> dict[str, int]:
        """Modality → feature dimension."""
        if not self.dialogues:
            return {}
        first = self.dialogues[0]
        return {m: int(first.features[m].shape[1]) for m in self.modalities}

    @property
    def num_utterances(self) -> int:
        return sum(len(d) for d in self.dialogues)

    def split(self, name: str) -> list[Dialogue]:
        """The dialogues of split ``name`` in their recorded order."""
        if name not in self.splits:
            raise DataError(self.source or self.name, f"has no '{name}' split", field="splits",
                            fix=f"available splits: {', '.join(self.splits) or 'none'}")
        return [self[i] for i in self.splits[name]]

    def subset(self, dialogue_ids: Iterable[str], name: str | None = None) -> "DialogueDataset":
        """A new dataset holding only ``dialogue_ids`` (splits restricted accordingly)."""
        keep = list(dict.fromkeys(dialogue_ids))
        keep_set = set(keep)
        splits = {s: [i for i in ids if i in keep_set] for s, ids in self.splits.items()}
        return DialogueDataset(name or self.name, [self[i] for i in keep], list(self.label_names),
                               splits, self.source, dict(self.meta))

    def with_modalities(self, modalities: Iterable[str]) -> "DialogueDataset":
        """A shallow copy keeping only ``modalities`` (in canonical order)."""
        wanted = [m for m in MODALITIES if m in set(modalities)]
        missing = [m for m in wanted if m not in self.modalities]
        if missing:
            raise DataError(self.source or self.name, f"has no modality {', '.join(missing)}",
                            field="features", fix=f"choose from: {''.join(self.modalities)}")
        dialogues = [Dialogue(d.id, d.speakers, {m: d.features[m] for m in wanted}, d.labels, d.texts,
                              d.utterance_ids, d.meta, {m: s for m, s in d.sequences.items() if m in wanted},
                              {m: p for m, p in d.media.items() if m in wanted})
                     for d in self.dialogues]
        return DialogueDataset(self.name, dialogues, list(self.label_names), dict(self.splits), self.source,
                               dict(self.meta))

    def class_counts(self, split: str | None = None) -> np.ndarray:
        """Per-class utterance counts ``[C]`` over one split or the whole dataset."""
        dialogues = self.split(split) if split else self.dialogues
        counts = np.zeros(self.num_classes, dtype=np.int64)
        for d in dialogues:
            if d.labels is not None:
                lab = d.labels[d.labels >= 0]
                counts += np.bincount(lab, minlength=self.num_classes)[: self.num_classes]
        return counts

    def speaker_names(self) -> list[str]:
        """All distinct speaker names, sorted."""
        return sorted({s for d in self.dialogues for s in d.speakers})

    def max_parties(self) -> int:
        """Largest number of distinct speakers in any one dialogue (≥ 1)."""
        return max([len(set(d.speakers)) for d in self.dialogues] + [1])
