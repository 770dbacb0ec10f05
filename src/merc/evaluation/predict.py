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


@torch.no_grad()
def predict_dialogues(method: Method, dialogues: Sequence[Dialogue], modalities: Sequence[str],
                      batch_size: int = 32) -> Predictions:
    """Probabilities for every utterance of ``dialogues`` (model put in eval mode)."""
    was_training = method.training
    method.eval()
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for batch in make_loader(dialogues, modalities, batch_size, shuffle=False):
        probs.append(torch.softmax(method(batch).logits, dim=-1).cpu().numpy())
        labels.append(batch.labels_flat.cpu().numpy())
    method.train(was_training)
    dialogue_ids = [d.id for d in dialogues for _ in range(len(d))]
    utterance_ids = [u for d in dialogues for u in (d.utterance_ids or [])]
    return Predictions(np.concatenate(probs), np.concatenate(labels), dialogue_ids, utterance_ids)
