"""MMGCN (Hu et al., ACL 2021): multimodal fusion via a deep GCNII over a multimodal graph."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from merc.backbones.base import Backbone, BackboneOutput, flatten_valid, unflatten_valid, valid_index
from merc.errors import ConfigError
from merc.nn.deep_gcn import DeepGCNII
from merc.nn.graph import multimodal_adjacency
from merc.nn.sequence import MaskedRNN
from merc.registry import BACKBONES


class ModalityEncoder(nn.Module):
    """MMGCN's modality encoder: ``Linear(d_m, hidden)`` per modality, followed by a masked
    2-layer bidirectional RNN for the modalities in ``context_modalities`` (text in the paper;
    audio and visual stay utterance-local).

    Args:
        input_dims: modality → feature width.
        hidden: output width (even when a context RNN is used: ``hidden/2`` per direction).
        context_modalities: modalities encoded with the RNN, e.g. ``"t"``.
        rnn: ``"lstm"`` or ``"gru"``.
        rnn_layers: stacked RNN layers.
        dropout: dropout between stacked RNN layers.

    Shapes:
        - features: m → ``[B, L, d_m]``; mask ``[B, L]``
        - output: m → ``[B, L, hidden]``
    """

    def __init__(self, input_dims: dict[str, int], hidden: int, context_modalities: str = "t", rnn: str = "lstm",
                 rnn_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        if set(context_modalities) - set("tav"):
            raise ConfigError(f"context_modalities must be a subset of 'tav', got '{context_modalities}'")
        if rnn not in ("lstm", "gru"):
            raise ConfigError(f"rnn must be 'lstm' or 'gru', got '{rnn}'")
        contextual = [m for m in input_dims if m in context_modalities]
        if contextual and hidden % 2:
            raise ConfigError(f"hidden must be even when a bidirectional context RNN is used, got {hidden}")
        self.proj = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in input_dims.items()})
        self.context = nn.ModuleDict({m: MaskedRNN(hidden, hidden // 2, rnn_layers, dropout, rnn) for m in contextual})

    def encode(self, features: dict[str, Tensor], mask: Tensor, context_input: Tensor | None = None,
               projected_input: bool = False) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``(projected, encoded)``: the per-modality ``Linear`` outputs and the final encodings.

        ``context_input`` (``[B, L, hidden]``, e.g. a speaker embedding) is added to the input
        of the context RNNs only. With ``projected_input`` the features are already the
        ``Linear`` outputs (``[B, L, hidden]``)."""
        if projected_input:
            projected = dict(features)
        else:  # project real utterances only (padding can be half of a batch), then re-pad for the RNNs
            index = valid_index(mask)  # (N,)
            projected = {m: unflatten_valid(proj(flatten_valid(features[m], mask, index)), mask, index)
                         for m, proj in self.proj.items()}  # (B, L, H)
        encoded = {m: self.context[m](h if context_input is None else h + context_input, mask) if m in self.context
                   else h for m, h in projected.items()}
        return projected, encoded

    def forward(self, features: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
        return self.encode(features, mask)[1]


def check_graph_options(layers: int, alpha: float, lamda: float, dropout: float) -> None:
    """Validate the GCNII options shared by MMGCN and MM-DFN."""
    if layers < 1:
        raise ConfigError(f"layers must be ≥ 1, got {layers}")
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}")
    if lamda <= 0:
        raise ConfigError(f"lamda must be > 0, got {lamda}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")


def graph_fusion(encoded: dict[str, Tensor], mask: Tensor, gcn: DeepGCNII, cross_modal_weight: float
                 ) -> dict[str, Tensor]:
    """Build the multimodal graph on the encoded features, run the deep GCN and return, per
    modality, ``[encoded; graph output]`` for the ``N`` real utterances (batch-major)."""
    mods = list(encoded)
    adjacency = multimodal_adjacency([encoded[m] for m in mods], mask, cross_modal_weight)  # per-dialogue blocks
    padded = torch.stack([encoded[m] for m in mods])  # (M, B, L, H)
    nodes = padded.flatten(1, 2).index_select(1, adjacency.index).flatten(0, 1)  # (M·N, H), modality-major
    out = gcn(nodes, adjacency)  # (M·N, G)
    N = adjacency.num_utterances
    return {m: torch.cat([nodes[k * N:(k + 1) * N], out[k * N:(k + 1) * N]], dim=-1) for k, m in enumerate(mods)}


@BACKBONES.register("mmgcn")
class MMGCN(Backbone):
    """MMGCN: deep GCNII over a multimodal utterance graph (Hu et al., ACL 2021).

    1. Modality encoders (:class:`ModalityEncoder`): ``Linear`` per modality, a bi-LSTM over
       the dialogue for text; an optional learned speaker embedding is added to every
       modality's encoding. As in the paper the embedding is added *after* the bi-LSTM, so
       the only sequential encoder never sees who is speaking; ``speaker_context=True`` (not
       in the paper) also adds it to the bi-LSTM's input, which lets the model follow each
       speaker's own earlier utterances (docs/benchmarks.md shows the difference on
       ``synthetic-context``).
    2. Graph (:func:`merc.nn.graph.multimodal_graph`, computed as per-dialogue blocks by
       :func:`~merc.nn.graph.multimodal_adjacency`): one node per (utterance, modality),
       intra-modality edges between all utterance pairs of a dialogue, cross-modality edges
       between one utterance's nodes; weights ``1 − arccos(cos)/π`` of the encoded features,
       symmetrically normalised.
    3. :class:`~merc.nn.deep_gcn.DeepGCNII` (``layers`` GCNII layers, α, λ).
    4. Per modality ``z_m = [encoded_m; gcn_m]``; ``logits_m = Linear(ReLU(Dropout(z_m)))``;
       joint logits ``Σ_m logits_m`` (equal to one linear classifier on ``[z_t; z_a; z_v]``).

    Args:
        input_dims: modality → feature dimension.
        num_classes: number of classes ``C``.
        num_speakers: maximum parties per dialogue.
        hidden: encoder width (paper 200).
        graph_hidden: GCNII width (paper 100).
        layers: GCNII layers (paper 4).
        alpha: initial-residual strength α (paper 0.1).
        lamda: identity-mapping strength λ (paper 0.5).
        dropout: dropout (paper 0.4).
        use_speaker: add a learned speaker embedding to the encoded features (paper: yes).
        context_modalities: modalities given a bi-RNN context encoder (paper "t").
        rnn: ``"lstm"`` (paper) or ``"gru"``.
        rnn_layers: context RNN layers (2).
        cross_modal_weight: multiplier of cross-modality edge weights (1.0).
        speaker_context: also add the speaker embedding to the context RNN's input (not in
            the paper; False). Needs ``use_speaker``.

    Shapes:
        - features: m → ``[B, L, d_m]``; mask ``[B, L]``; speakers ``[B, L]``
        - logits ``[N, C]``, modality_logits m → ``[N, C]``,
          representation ``[N, M·(hidden + graph_hidden)]``
    """

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2, hidden: int = 200,
                 graph_hidden: int = 100, layers: int = 4, alpha: float = 0.1, lamda: float = 0.5,
                 dropout: float = 0.4, use_speaker: bool = True, context_modalities: str = "t", rnn: str = "lstm",
                 rnn_layers: int = 2, cross_modal_weight: float = 1.0, speaker_context: bool = False) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        check_graph_options(layers, alpha, lamda, dropout)
        if speaker_context and not use_speaker:
            raise ConfigError("speaker_context=True needs use_speaker=True (it feeds the speaker embedding to the "
                              "context RNN)")
        self.speaker_context = bool(speaker_context)
        self.encoder = ModalityEncoder(input_dims, hidden, context_modalities, rnn, rnn_layers, dropout)
        self.speaker = nn.Embedding(self.num_speakers, hidden) if use_speaker else None
        self.gcn = DeepGCNII(hidden, graph_hidden, layers, alpha, lamda, dropout)
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({m: nn.Linear(hidden + graph_hidden, num_classes) for m in input_dims})
        self.cross_modal_weight = cross_modal_weight

    def input_projections(self) -> dict[str, nn.Linear]:
        return dict(self.encoder.proj.items())

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor,
                projected: bool = False) -> BackboneOutput:
        spk = self.speaker(speakers.clamp(0, self.num_speakers - 1)) if self.speaker is not None else None  # (B, L, H)
        encoded = self.encoder.encode(features, mask, spk if self.speaker_context else None,
                                      projected)[1]  # m → (B, L, H)
        if spk is not None:
            encoded = {m: h + spk for m, h in encoded.items()}
        fused = graph_fusion(encoded, mask, self.gcn, self.cross_modal_weight)  # m → (N, H + G)
        logits = {m: self.classifiers[m](F.relu(self.dropout(z))) for m, z in fused.items()}
        joint = torch.stack(list(logits.values())).sum(0)
        return BackboneOutput(joint, logits, torch.cat(list(fused.values()), dim=-1))
