"""Late Fusion: one masked Transformer context encoder per modality, logits summed."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from merc.backbones.base import Backbone, BackboneOutput
from merc.registry import BACKBONES


@BACKBONES.register("late_fusion")
class LateFusion(Backbone):
    """Per-modality context encoders whose class logits are summed (METHODS.md §2).

    For each modality m: ``h_m = TransformerEncoder(Linear(d_m, hidden)(x_m) + speaker_emb)``
    with a key-padding mask, ``logits_m = Linear(hidden, C)(h_m)``; joint logits
    ``Σ_m logits_m``. The representation is ``[h_t; h_a; h_v]``.

    Args:
        input_dims: modality → feature dimension.
        num_classes: number of classes ``C``.
        num_speakers: maximum parties per dialogue.
        hidden: width of each modality encoder (default 256).
        layers: Transformer encoder layers per modality (default 1).
        heads: attention heads (default 4).
        dropout: dropout in encoders and before classifiers (default 0.3).
        use_speaker: add a learned party embedding to each utterance (default True).

    Shapes:
        - features: modality → ``[B, L, d_m]``; mask ``[B, L]``; speakers ``[B, L]``
        - logits ``[N, C]``, modality_logits m → ``[N, C]``, representation ``[N, M·hidden]``
    """

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2, hidden: int = 256,
                 layers: int = 1, heads: int = 4, dropout: float = 0.3, use_speaker: bool = True) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        self.proj = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in input_dims.items()})
        self.speaker = nn.Embedding(self.num_speakers, hidden) if use_speaker else None
        self.encoders = nn.ModuleDict({
            m: nn.TransformerEncoder(
                nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout, batch_first=True),
                layers, enable_nested_tensor=False)
            for m in input_dims})
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({m: nn.Linear(hidden, num_classes) for m in input_dims})

    def input_projections(self) -> dict[str, nn.Linear]:
        return dict(self.proj.items())

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor,
                projected: bool = False) -> BackboneOutput:
        spk = self.speaker(speakers.clamp(max=self.num_speakers - 1)) if self.speaker is not None else 0.0
        hiddens, logits = [], {}
        for m in self.modalities:
            h = (features[m] if projected else self.proj[m](features[m])) + spk  # (B, L, H)
            h = self.encoders[m](h, src_key_padding_mask=~mask)  # (B, L, H)
            h = h[mask]  # (N, H), batch-major
            hiddens.append(h)
            logits[m] = self.classifiers[m](self.dropout(h))  # (N, C)
        joint = torch.stack(list(logits.values())).sum(0)
        return BackboneOutput(joint, logits, torch.cat(hiddens, dim=-1))
