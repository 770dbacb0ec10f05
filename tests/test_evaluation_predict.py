"""predict_dialogues: length-sorted batching returns the same predictions in the given order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from merc.data.synthetic import build_preset
from merc.evaluation.predict import predict_dialogues
from merc.methods.plain import PlainMethod


@pytest.mark.parametrize("backbone", ["mmgcn", "dialogue_gcn"])
def test_sorted_batching_gives_the_same_predictions_in_order(backbone):
    dataset = build_preset("synthetic-small", seed=0)
    dialogues = dataset.split("test") + dataset.split("train")[:9]
    dims = {m: dialogues[0].features[m].shape[1] for m in "tav"}
    torch.manual_seed(0)
    method = PlainMethod(dims, dataset.num_classes, 2, backbone=backbone).train()
    plain = predict_dialogues(method, dialogues, "tav", batch_size=3, sort_by_length=False)
    fast = predict_dialogues(method, dialogues, "tav", batch_size=32)
    assert method.training  # mode restored
    assert np.allclose(plain.probs, fast.probs, atol=1e-6)
    assert np.array_equal(plain.labels, fast.labels)
    assert fast.dialogue_ids == [d.id for d in dialogues for _ in range(len(d))]
    assert np.array_equal(fast.labels, np.concatenate([d.labels for d in dialogues]))
