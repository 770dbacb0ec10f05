"""Padding, masks and batching of dialogues.

A :class:`Batch` holds ``B`` dialogues padded to the longest length ``L``. Real utterances are
flattened **batch-major** (dialogue 0's utterances, then dialogue 1's, ...) everywhere in the
library: ``x[batch.mask]`` on a ``[B, L, ...]`` tensor gives exactly that order, and
``batch.labels_flat`` is aligned with it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from merc.data.schema import IGNORE_LABEL, Dialogue


@dataclass
class Batch:
    """A padded batch of dialogues.

    Attributes:
        features: modality → ``[B, L, d_m]`` float tensor (zeros at padding).
        mask: ``[B, L]`` bool, True at real utterances.
        speakers: ``[B, L]`` long, the party index of each utterance within its dialogue
            (0 = first speaker to talk, 1 = second, ...); 0 at padding.
        labels: ``[B, L]`` long, ``-1`` at padding and unlabelled utterances.
        dialogue_ids: the ``B`` dialogue ids.
        meta: per-utterance extras flattened batch-major (e.g. ``interaction`` ``[N]``).
        sequences: modality → ``(x [N, T, d], mask [N, T])`` token/frame-level features of the
            real utterances, batch-major, padded to the longest ``T`` (when dialogues carry them).
        texts: the ``N`` transcripts, batch-major (when dialogues carry them).
        media: modality → the ``N`` raw media paths, batch-major (when dialogues carry them;
            DRKF's end-to-end mode reads ``"a"`` wav files).
    """

    features: dict[str, Tensor]
    mask: Tensor
    speakers: Tensor
    labels: Tensor
    dialogue_ids: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    sequences: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    texts: list[str] | None = None
    media: dict[str, list[str]] = field(default_factory=dict)

    @property
    def lengths(self) -> Tensor:
        """``[B]`` number of real utterances per dialogue."""
        return self.mask.sum(dim=1)

    @property
    def labels_flat(self) -> Tensor:
        """``[N]`` labels of real utterances, batch-major."""
        return self.labels[self.mask]

    @property
    def num_utterances(self) -> int:
        return int(self.mask.sum())

    def to(self, device: torch.device | str) -> "Batch":
        return Batch({m: x.to(device) for m, x in self.features.items()}, self.mask.to(device),
                     self.speakers.to(device), self.labels.to(device), self.dialogue_ids, self.meta,
                     {m: (x.to(device), k.to(device)) for m, (x, k) in self.sequences.items()}, self.texts, self.media)

    def with_features(self, features: dict[str, Tensor]) -> "Batch":
        """The same batch with other per-modality features (same ``B``, ``L``)."""
        return Batch(features, self.mask, self.speakers, self.labels, self.dialogue_ids, self.meta,
                     self.sequences, self.texts, self.media)


def party_indices(speakers: Sequence[str]) -> np.ndarray:
    """Map speaker names to party indices in order of first appearance: ``[L]`` int64."""
    order: dict[str, int] = {}
    return np.asarray([order.setdefault(s, len(order)) for s in speakers], dtype=np.int64)


def collate_dialogues(dialogues: Sequence[Dialogue], modalities: Sequence[str] | None = None) -> Batch:
    """Pad ``dialogues`` into one :class:`Batch` (vectorised per dialogue, no per-utterance loop)."""
    mods = list(modalities) if modalities is not None else list(dialogues[0].features)
    B = len(dialogues)
    L = max(len(d) for d in dialogues)
    lengths = [len(d) for d in dialogues]
    mask = torch.zeros(B, L, dtype=torch.bool)
    speakers = torch.zeros(B, L, dtype=torch.long)
    labels = torch.full((B, L), IGNORE_LABEL, dtype=torch.long)
    feats = {m: torch.zeros(B, L, dialogues[0].features[m].shape[1]) for m in mods}
    for b, d in enumerate(dialogues):
        n = lengths[b]
        mask[b, :n] = True
        speakers[b, :n] = torch.from_numpy(party_indices(d.speakers))
        if d.labels is not None:
            labels[b, :n] = torch.from_numpy(d.labels)
        for m in mods:
            feats[m][b, :n] = torch.from_numpy(d.features[m])
    meta: dict[str, Any] = {}
    keys = set(dialogues[0].meta)
    for key in keys:
        values = [d.meta.get(key) for d in dialogues]
        if all(isinstance(v, np.ndarray) and v.shape[:1] == (len(d),) for v, d in zip(values, dialogues)):
            meta[key] = torch.from_numpy(np.concatenate(values))
    sequences = {m: pad_sequences([x for d in dialogues for x in d.sequences[m]])
                 for m in dialogues[0].sequences if all(m in d.sequences for d in dialogues)}
    texts = [t for d in dialogues for t in d.texts] if all(d.texts is not None for d in dialogues) else None
    media = {m: [p for d in dialogues for p in d.media[m]]
             for m in dialogues[0].media if all(m in d.media for d in dialogues)}
    return Batch(feats, mask, speakers, labels, [d.id for d in dialogues], meta, sequences, texts, media)


def pad_sequences(arrays: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """Pad ``[T_i, d]`` arrays to ``([N, T, d], mask [N, T])`` with ``T = max T_i`` (≥ 1)."""
    T = max([a.shape[0] for a in arrays] + [1])
    d = arrays[0].shape[1]
    x = torch.zeros(len(arrays), T, d)
    mask = torch.zeros(len(arrays), T, dtype=torch.bool)
    for i, a in enumerate(arrays):
        x[i, : a.shape[0]] = torch.from_numpy(np.asarray(a, dtype=np.float32))
        mask[i, : a.shape[0]] = True
    return x, mask


class DialogueListDataset(Dataset):
    """A torch ``Dataset`` over a list of dialogues (one item = one dialogue)."""

    def __init__(self, dialogues: Sequence[Dialogue]) -> None:
        self.dialogues = list(dialogues)

    def __len__(self) -> int:
        return len(self.dialogues)

    def __getitem__(self, i: int) -> Dialogue:
        return self.dialogues[i]


def make_loader(dialogues: Sequence[Dialogue], modalities: Sequence[str], batch_size: int, shuffle: bool,
                seed: int = 0, num_workers: int = 0, distributed: bool = False) -> DataLoader:
    """A ``DataLoader`` yielding :class:`Batch` objects.

    Shuffling is seeded per epoch: epoch ``e``'s order depends on ``(seed, e)`` only (Lightning
    calls ``set_epoch``), so a resumed run replays the same batches. With ``distributed=True``
    each process of a ``torch.distributed`` group gets its share of every global batch of
    ``batch_size`` dialogues (shuffled = training loader) or its shard of the split (not
    shuffled = evaluation loader); see :mod:`merc.data.samplers`.
    """
    from merc.data.samplers import EpochShuffleSampler, sharded_batches

    collate = functools.partial(collate_dialogues, modalities=list(modalities))
    data = DialogueListDataset(dialogues)
    if distributed:
        return DataLoader(data, batch_sampler=sharded_batches(data, batch_size, shuffle, seed),
                          num_workers=num_workers, collate_fn=collate)
    sampler = EpochShuffleSampler(len(data), seed) if shuffle else None
    return DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=num_workers, collate_fn=collate)
