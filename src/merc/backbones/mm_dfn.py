"""MM-DFN (Hu et al., ICASSP 2022): multimodal dynamic fusion network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from merc.backbones.base import Backbone, BackboneOutput
from merc.backbones.mmgcn import ModalityEncoder, check_graph_options, graph_fusion
from merc.errors import ConfigError
from merc.nn.deep_gcn import DeepGCNII
from merc.nn.sequence import PartyRNN
from merc.registry import BACKBONES

DEFAULT_SPEAKER_WEIGHTS = {"t": 1.0, "a": 3.0, "v": 0.0}
"""Per-modality weight of the speaker-level context (the authors' released setting "3-0-1")."""


@BACKBONES.register("mm_dfn")
class MMDFN(Backbone):
    """MM-DFN: graph-based dynamic fusion with gated memory across layers (Hu et al., ICASSP 2022).

    1. Modality encoders: ``Linear`` per modality; a bi-GRU over the dialogue for the
       ``context_modalities`` (text); plus a speaker-level bi-GRU (:class:`PartyRNN`, shared
       by all modalities) over each party's own utterances, added with a per-modality weight
       (``speaker_weights``).
    2. The MMGCN multimodal graph on the encoded features (intra-modality all pairs per
       dialogue, cross-modality same-utterance edges, angular weights, normalised).
    3. Graph-based dynamic fusion: a GCNII stack in which every layer first updates an LSTM
       memory carried across layers and adds its input back
       (:class:`~merc.nn.deep_gcn.DeepGCNII` with ``memory=True``); ``memory=False`` gives the
       MMGCN-style ablation.
    4. Per modality ``z_m = [encoded_m; fused_m]``, ``logits_m = Linear(ReLU(Dropout(z_m)))``,
       joint = ``Σ_m logits_m`` (one linear classifier on the concatenation, as in the paper).

    Works with one modality too (the graph then has intra-modality edges only).

    Args:
        input_dims: modality → feature dimension.
        num_classes: number of classes ``C``.
        num_speakers: maximum parties per dialogue.
        hidden: encoder width (paper code 200).
        graph_hidden: fusion width (100).
        layers: GDF layers (16).
        alpha: initial-residual strength α (0.2).
        lamda: identity-mapping strength λ (0.5).
        dropout: dropout (0.4).
        memory: gated memory across layers (the "dynamic" in MM-DFN; True).
        context_modalities: modalities with a bi-GRU context encoder ("t").
        rnn: context RNN cell, ``"gru"`` (paper) or ``"lstm"``.
        rnn_layers: layers of the context and speaker-level RNNs (2).
        speaker_weights: modality → weight of the speaker-level context
            (default ``{t: 1, a: 3, v: 0}``; all zero disables it).
        cross_modal_weight: multiplier of cross-modality edge weights (1.0).

    Shapes:
        - features: m → ``[B, L, d_m]``; mask ``[B, L]``; speakers ``[B, L]``
        - logits ``[N, C]``, modality_logits m → ``[N, C]``,
          representation ``[N, M·(hidden + graph_hidden)]``
    """

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2, hidden: int = 200,
                 graph_hidden: int = 100, layers: int = 16, alpha: float = 0.2, lamda: float = 0.5,
                 dropout: float = 0.4, memory: bool = True, context_modalities: str = "t", rnn: str = "gru",
                 rnn_layers: int = 2, speaker_weights: dict[str, float] | None = None,
                 cross_modal_weight: float = 1.0) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        check_graph_options(layers, alpha, lamda, dropout)
        weights = dict(DEFAULT_SPEAKER_WEIGHTS if speaker_weights is None else speaker_weights)
        if not isinstance(weights, dict) or set(weights) - set("tav"):
            raise ConfigError(f"speaker_weights must map modalities t/a/v to numbers, got {speaker_weights!r}")
        self.speaker_weights = {m: float(weights.get(m, 0.0)) for m in input_dims}
        self.encoder = ModalityEncoder(input_dims, hidden, context_modalities, rnn, rnn_layers, dropout)
        uses_party = any(w != 0.0 for w in self.speaker_weights.values())
        if uses_party and hidden % 2:
            raise ConfigError(f"hidden must be even when speaker-level context is used, got {hidden}")
        self.party = PartyRNN(hidden, hidden // 2, rnn_layers, dropout) if uses_party else None
        self.gcn = DeepGCNII(hidden, graph_hidden, layers, alpha, lamda, dropout, memory=memory)
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({m: nn.Linear(hidden + graph_hidden, num_classes) for m in input_dims})
        self.cross_modal_weight = cross_modal_weight

    def input_projections(self) -> dict[str, nn.Linear]:
        return dict(self.encoder.proj.items())

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor,
                projected: bool = False) -> BackboneOutput:
        first, encoded = self.encoder.encode(features, mask, projected_input=projected)  # m → (B, L, H)
        if self.party is not None:
            # one speaker-level GRU call for all weighted modalities, stacked along the batch
            mods = [m for m in encoded if self.speaker_weights[m] != 0.0]
            k = len(mods)
            party = self.party(torch.cat([first[m] for m in mods]), mask.repeat(k, 1), speakers.repeat(k, 1))
            for m, p in zip(mods, party.chunk(k)):
                encoded[m] = encoded[m] + self.speaker_weights[m] * p
        fused = graph_fusion(encoded, mask, self.gcn, self.cross_modal_weight)  # m → (N, H + G)
        logits = {m: self.classifiers[m](F.relu(self.dropout(z))) for m, z in fused.items()}
        joint = torch.stack(list(logits.values())).sum(0)
        return BackboneOutput(joint, logits, torch.cat(list(fused.values()), dim=-1))
