"""The backbone contract (METHODS.md §2) — the one place it is defined.

A backbone is a dialogue-level model. It receives per-modality padded features and returns,
for the ``N`` real utterances of the batch flattened **batch-major**:

- ``logits``: joint logits ``[N, C]``;
- ``modality_logits``: modality → ``[N, C]`` (for backbones that classify per modality; a
  backbone that fuses early may return the joint logits under each key or an empty dict);
- ``representation``: an utterance representation ``[N, d]`` (used by DnR's Refine stage
  for its contrastive objective and by explanations' linear probes).

Backbones must honour ``mask`` (padding never influences real utterances) and must work for
any non-empty subset of modalities given in ``input_dims``. They know nothing of DnR or DRKF:
plug-in methods wrap them, never the other way round.

Constructor convention (checked by :func:`merc.registry.check_kwargs`)::

    Backbone(input_dims: dict[str, int], num_classes: int, num_speakers: int = 2, **hparams)

``num_speakers`` is the largest number of parties in one dialogue (speaker indices in
``Batch.speakers`` are per-dialogue party indices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from merc.errors import ConfigError


@dataclass
class BackboneOutput:
    """What every backbone returns (shapes over the ``N`` real utterances, batch-major).

    Attributes:
        logits: ``[N, C]`` joint logits.
        modality_logits: modality → ``[N, C]``.
        representation: ``[N, d]`` utterance representation.
        extras: backbone-specific tensors (e.g. attention weights) for analysis.
    """

    logits: Tensor
    modality_logits: dict[str, Tensor]
    representation: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)


class Backbone(nn.Module):
    """Base class for dialogue backbones.

    Args:
        input_dims: modality → feature dimension, for the modalities the model uses.
        num_classes: number of emotion classes ``C``.
        num_speakers: maximum number of parties in a dialogue.

    Shapes:
        - features: modality → ``[B, L, d_m]``
        - mask: ``[B, L]`` bool
        - speakers: ``[B, L]`` long
        - output: :class:`BackboneOutput`
    """

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2) -> None:
        super().__init__()
        if not input_dims:
            raise ConfigError("a backbone needs at least one modality in input_dims")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be ≥ 2, got {num_classes}")
        self.input_dims = dict(input_dims)
        self.modalities = list(input_dims)
        self.num_classes = num_classes
        self.num_speakers = max(1, int(num_speakers))

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor) -> BackboneOutput:
        raise NotImplementedError

    def input_projections(self) -> dict[str, nn.Linear] | None:
        """The per-modality ``Linear`` applied first, row by row, to ``features[m]`` (and nothing
        else reads ``features[m]``), or ``None`` (the default) when the first op is not such a layer.

        A backbone that returns them also accepts ``forward(features, mask, speakers,
        projected=True)`` with ``features[m]`` already mapped by its layer (``[B, L, out_m]``):
        a method whose views differ linearly in the inputs (DnR's Refine) then computes the
        first layer once per step and combines it for every view. Padding rows are never read.
        """
        return None


def valid_index(mask: Tensor) -> Tensor:
    """``[N]`` flat position ``b·L + i`` of every real utterance of ``mask [B, L]``, batch-major."""
    return mask.reshape(-1).nonzero().squeeze(1)


def flatten_valid(x: Tensor, mask: Tensor, index: Tensor | None = None) -> Tensor:
    """``[B, L, ...]`` → ``[N, ...]`` keeping real positions, batch-major.

    Gathers with ``index_select`` (pass :func:`valid_index` of ``mask`` to reuse it), whose
    backward is a cheap ``index_add`` rather than boolean indexing's ``index_put``."""
    return x.flatten(0, 1).index_select(0, valid_index(mask) if index is None else index)


def unflatten_valid(x: Tensor, mask: Tensor, index: Tensor | None = None) -> Tensor:
    """``[N, ...]`` → ``[B, L, ...]`` with zeros at padding (inverse of :func:`flatten_valid`)."""
    index = valid_index(mask) if index is None else index
    return x.new_zeros(mask.numel(), *x.shape[1:]).index_copy(0, index, x).view(*mask.shape, *x.shape[1:])


def dialogue_index(mask: Tensor) -> Tensor:
    """``[N]`` index of the dialogue each real utterance belongs to (batch-major)."""
    B, L = mask.shape
    return torch.arange(B, device=mask.device).unsqueeze(1).expand(B, L)[mask]


def position_index(mask: Tensor) -> Tensor:
    """``[N]`` position of each real utterance within its dialogue."""
    B, L = mask.shape
    return torch.arange(L, device=mask.device).unsqueeze(0).expand(B, L)[mask]
