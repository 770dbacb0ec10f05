"""bc-LSTM (Poria et al., ACL 2017): a bidirectional contextual RNN over each dialogue.

"Context-dependent sentiment analysis in user-generated videos" — the baseline every ERC paper
reports. Per modality, the utterance features of a dialogue go through a bidirectional LSTM
(or GRU, ``cell: gru``), then a dense layer with dropout and a classifier; the paper's
*hierarchical* multimodal variant feeds the concatenated per-modality dense outputs to a second
contextual bi-RNN whose dense output is classified jointly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from merc.backbones.base import Backbone, BackboneOutput, flatten_valid, valid_index
from merc.errors import ConfigError
from merc.nn.sequence import MaskedRNN
from merc.registry import BACKBONES

FUSIONS = ("hierarchical", "sum")


class ContextBlock(nn.Module):
    """Dropout → masked bidirectional RNN over the dialogue → dense (tanh) → dropout.

    Shapes:
        - x: ``[B, L, in_dim]``; mask ``[B, L]``
        - output: ``[B, L, dense]``
    """

    def __init__(self, in_dim: int, hidden: int, dense: int, layers: int, dropout: float, cell: str) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.rnn = MaskedRNN(in_dim, hidden, layers, dropout, cell)
        self.dense = nn.Linear(2 * hidden, dense)

    def forward(self, x: Tensor, mask: Tensor, projected: bool = False) -> Tensor:
        """``projected``: ``x`` is already the RNN's first-layer input projection of the
        dropped-out input (:meth:`BcLSTM.input_projections`)."""
        h = self.rnn(x, mask, projected=True) if projected else self.rnn(self.dropout(x), mask)  # (B, L, 2·hidden)
        return self.dropout(torch.tanh(self.dense(h)))  # (B, L, dense)


@BACKBONES.register("bc_lstm")
class BcLSTM(Backbone):
    """bc-LSTM / BiGRU: contextual bi-RNN per modality, then fusion (METHODS.md §2 contract).

    For each modality m: ``z_m = Dense(BiRNN_m(x_m))`` (``[B, L, dense]``), ``logits_m =
    Linear(z_m)``. Joint logits: with ``fusion: hierarchical`` (the paper's multimodal model)
    a second bi-RNN runs over ``[z_t; z_a; z_v]`` and its dense output ``z`` is classified; with
    ``fusion: sum``, or with a single modality, the joint logits are ``Σ_m logits_m`` and
    ``z = [z_t; z_a; z_v]``. The representation is ``z``.

    Args:
        input_dims: modality → feature dimension.
        num_classes: number of classes ``C``.
        num_speakers: maximum parties per dialogue (used only with ``use_speaker``).
        hidden: RNN size per direction (default 150).
        dense: width of the dense layer after each RNN (default 100).
        layers: stacked RNN layers (default 1; 2 gives the "2-layer BiGRU" baseline).
        dropout: dropout on RNN inputs, between RNN layers and after dense layers (default 0.4).
        cell: ``lstm`` (bc-LSTM, default) or ``gru`` (BiGRU).
        fusion: ``hierarchical`` (default) or ``sum``.
        use_speaker: add a learned party embedding to each modality's input (not in the paper;
            default False).

    Shapes:
        - features: modality → ``[B, L, d_m]``; mask ``[B, L]``; speakers ``[B, L]``
        - logits ``[N, C]``, modality_logits m → ``[N, C]``, representation ``[N, dense]``
          (hierarchical with ≥ 2 modalities) or ``[N, M·dense]``
    """

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2, hidden: int = 150,
                 dense: int = 100, layers: int = 1, dropout: float = 0.4, cell: str = "lstm",
                 fusion: str = "hierarchical", use_speaker: bool = False) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        if cell not in ("lstm", "gru"):
            raise ConfigError(f"bc_lstm: cell must be 'lstm' or 'gru', got '{cell}'")
        if fusion not in FUSIONS:
            raise ConfigError(f"bc_lstm: fusion must be one of {', '.join(FUSIONS)}, got '{fusion}'")
        if min(hidden, dense, layers) < 1:
            raise ConfigError(f"bc_lstm: hidden, dense and layers must be ≥ 1, got {hidden}, {dense}, {layers}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"bc_lstm: dropout must be in [0, 1), got {dropout}")
        self.speaker = nn.ModuleDict({m: nn.Embedding(self.num_speakers, d) for m, d in input_dims.items()}) \
            if use_speaker else None
        self.blocks = nn.ModuleDict({m: ContextBlock(d, hidden, dense, layers, dropout, cell)
                                     for m, d in input_dims.items()})
        self.classifiers = nn.ModuleDict({m: nn.Linear(dense, num_classes) for m in input_dims})
        self.hierarchical = fusion == "hierarchical" and len(input_dims) > 1
        if self.hierarchical:
            self.fusion = ContextBlock(dense * len(input_dims), hidden, dense, layers, dropout, cell)
            self.joint = nn.Linear(dense, num_classes)

    def input_projections(self) -> dict[str, nn.Module] | None:
        """Each modality RNN's first-layer input projection, with the block's input dropout as
        ``input_dropout`` (in training) for the caller to apply before it; ``None`` with
        ``use_speaker`` (the party embedding is added before the dropout)."""
        if self.speaker is not None:
            return None
        out = {}
        for m, d in self.input_dims.items():
            proj = self.blocks[m].rnn.input_projections({m: d})[m]
            proj.input_dropout = self.blocks[m].dropout.p if self.training else 0.0
            out[m] = proj
        return out

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor,
                projected: bool = False) -> BackboneOutput:
        index = valid_index(mask)
        spk = speakers.clamp(0, self.num_speakers - 1)
        dense, logits = [], {}
        for m in self.modalities:
            x = features[m] + self.speaker[m](spk) if self.speaker is not None else features[m]
            z = self.blocks[m](x, mask, projected)  # (B, L, dense)
            dense.append(z)
            logits[m] = self.classifiers[m](flatten_valid(z, mask, index))  # (N, C)
        if self.hierarchical:
            z = flatten_valid(self.fusion(torch.cat(dense, dim=-1), mask), mask, index)  # (N, dense)
            return BackboneOutput(self.joint(z), logits, z)
        joint = torch.stack(list(logits.values())).sum(0)
        return BackboneOutput(joint, logits, flatten_valid(torch.cat(dense, dim=-1), mask, index))
