"""Shared fixtures-as-functions of the DnR / explanation tests (tiny data, probe backbones)."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import Tensor, nn

from merc.backbones.base import Backbone, BackboneOutput
from merc.data.collate import collate_dialogues
from merc.data.schema import Dialogue
from merc.registry import BACKBONES

DIMS = {"t": 6, "a": 5, "v": 4}
NUM_CLASSES = 3


def make_dialogues(lengths: list[int], dims: dict[str, int] = DIMS, seed: int = 0,
                   marker: bool = False) -> list[Dialogue]:
    """Dialogues of the given lengths; with ``marker`` every modality's column 0 holds the
    utterance's batch-major index k and its label is ``k % NUM_CLASSES``."""
    rng = np.random.default_rng(seed)
    out, k = [], 0
    for i, n in enumerate(lengths):
        idx = np.arange(k, k + n)
        k += n
        labels = idx % NUM_CLASSES if marker else rng.integers(0, NUM_CLASSES, n)
        feats = {}
        for m, d in dims.items():
            x = rng.normal(size=(n, d)).astype(np.float32) + labels[:, None].astype(np.float32)
            if marker:
                x[:, 0] = idx
            feats[m] = x
        out.append(Dialogue(id=f"d{i}", speakers=["A" if j % 2 == 0 else "B" for j in range(n)], features=feats,
                            labels=labels.astype(np.int64), meta={"interaction": (idx % 4).astype(np.int64)}))
    return out


def make_batch(lengths: list[int], dims: dict[str, int] = DIMS, marker: bool = False):  # type: ignore[no-untyped-def]
    return collate_dialogues(make_dialogues(lengths, dims, marker=marker), list(dims))


def tiny_backbone_options(name: str) -> dict:
    """Small widths for whichever backbone ``name`` is (options it accepts only)."""
    params = inspect.signature(BACKBONES.get(name).__init__).parameters
    wanted = {"hidden": 16, "graph_hidden": 16, "context_hidden": 16, "classifier_hidden": 16, "layers": 2,
              "heads": 2, "num_bases": 4, "rnn_layers": 1, "window_past": 2, "window_future": 2}
    return {k: v for k, v in wanted.items() if k in params}


class ProbeBackbone(Backbone):
    """Transparent backbone for alignment tests: per utterance, the representation is the
    concatenation of its (modality-ordered) inputs and the logits a fixed linear map of it."""

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        total = sum(input_dims.values())
        self.head = nn.Linear(total, num_classes)

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor) -> BackboneOutput:
        rep = torch.cat([features[m][mask] for m in self.modalities], dim=-1)  # (N, ΣD)
        logits = self.head(rep)
        return BackboneOutput(logits, {m: logits for m in self.modalities}, rep)


if "test_probe" not in BACKBONES._entries:  # registered once per session
    BACKBONES.register("test_probe")(ProbeBackbone)


def identity_decomposer(method, dim_index: int = 0) -> None:  # type: ignore[no-untyped-def]
    """Make every branch copy input column 0 into column ``dim_index`` of u, r and s (marker tests)."""
    with torch.no_grad():
        for branch in method.decomposer.branches.values():
            branch.norm = nn.Identity()
            for head in (branch.unique, branch.redundant, branch.synergy):
                head.weight.zero_()
                head.bias.zero_()
                head.weight[dim_index, 0] = 1.0
