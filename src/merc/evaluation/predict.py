"""Run a trained method over dialogues and collect batch-major predictions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from merc.data.collate import make_loader
from merc.data.schema import Dialogue
from merc.methods.base import Method


@dataclass
class Predictions:
    """Predictions over ``N`` utterances, batch-major in the order of the given dialogues.

    Attributes:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` gold labels (``-1`` where unknown).
        dialogue_ids: ``[N]`` dialogue id of each utterance.
        utterance_ids: ``[N]`` utterance id of each utterance.
    """

    probs: np.ndarray
    labels: np.ndarray
    dialogue_ids: list[str]
    utterance_ids: list[str]

    @property
    def predicted(self) -> np.ndarray:
        """``[N]`` argmax class."""
        return self.probs.argmax(axis=1)


@torch.inference_mode()
def predict_dialogues(method: Method, dialogues: Sequence[Dialogue], modalities: Sequence[str],
                      batch_size: int = 32, sort_by_length: bool = True) -> Predictions:
    """Probabilities for every utterance of ``dialogues`` (model put in eval mode).

    With ``sort_by_length`` (default) dialogues are batched in order of length, so that a
    batch holds dialogues of similar length and little padding (less work for the recurrent
    encoders and the per-dialogue graph blocks); results come back in the given order and do
    not depend on the batching (backbones are padding- and batch-order invariant).
    """
    was_training = method.training
    method.eval()
    order = (sorted(range(len(dialogues)), key=lambda i: len(dialogues[i])) if sort_by_length
             else list(range(len(dialogues))))
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    try:
        for batch in make_loader([dialogues[i] for i in order], modalities, batch_size, shuffle=False):
            probs.append(torch.softmax(method(batch).logits, dim=-1).cpu().numpy())
            labels.append(batch.labels_flat.cpu().numpy())
    finally:
        method.train(was_training)
    probs_sorted, labels_sorted = np.concatenate(probs), np.concatenate(labels)
    # utterance positions of each dialogue in the sorted output, put back in the given order
    lengths = np.asarray([len(dialogues[i]) for i in order], dtype=np.int64)
    starts = np.zeros(len(order), dtype=np.int64)
    starts[np.asarray(order, dtype=np.int64)] = np.cumsum(lengths) - lengths
    take = np.concatenate([np.arange(starts[i], starts[i] + len(d)) for i, d in enumerate(dialogues)]) \
        if dialogues else np.zeros(0, dtype=np.int64)
    dialogue_ids = [d.id for d in dialogues for _ in range(len(d))]
    utterance_ids = [u for d in dialogues for u in (d.utterance_ids or [])]
    return Predictions(probs_sorted[take], labels_sorted[take], dialogue_ids, utterance_ids)
