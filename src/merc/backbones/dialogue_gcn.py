"""DialogueGCN (Ghosal et al., EMNLP 2019): relational graph over a window of utterances."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GraphConv, RGCNConv
from torch_geometric.utils import softmax as edge_softmax

from merc.backbones.base import Backbone, BackboneOutput, unflatten_valid
from merc.errors import ConfigError
from merc.nn.graph import num_relations, window_graph
from merc.nn.sequence import MaskedRNN
from merc.registry import BACKBONES


@BACKBONES.register("dialogue_gcn")
class DialogueGCN(Backbone):
    r"""DialogueGCN: speaker- and position-aware relational graph convolution.

    1. Sequential context encoder: a masked bidirectional GRU over the utterances of each
       dialogue (modalities concatenated at the input): ``g_i`` of width ``2·context_hidden``.
    2. Window graph (:func:`merc.nn.graph.window_graph`): utterance ``i`` receives edges from
       ``j ∈ [i − window_past, i + window_future]`` of its dialogue (self-loop included);
       relation = (speaker_i, speaker_j, j after i or not), ``2·S²`` relations.
    3. Edge attention, softmaxed over each utterance's window:
       :math:`\alpha_{ij} = \mathrm{softmax}_j(g_i^\top W_e g_j)`.
    4. ``h^(1) = ReLU(RGCNConv(g))`` (basis decomposition, ``num_bases`` bases, mean over each
       relation's neighbours), then ``h^(2) = ReLU(GraphConv(h^(1), weights α))``.
    5. Classifier on ``h_i = [g_i; h^(2)_i]``: optional nodal attention over the utterances
       of the dialogue (:math:`\beta_i = \mathrm{softmax}(h_i^\top W_\beta H)`,
       :math:`\tilde h_i = \beta_i H`), ``l_i = ReLU(W_l \tilde h_i)``,
       ``logits = W_{smax} Dropout(l_i)``.

    The model fuses modalities early, so ``modality_logits`` holds the joint logits under
    every modality key. No dialogue-length cap.

    Args:
        input_dims: modality → feature dimension.
        num_classes: number of classes ``C``.
        num_speakers: maximum parties per dialogue ``S``.
        context_hidden: GRU size per direction (paper 100).
        graph_hidden: width of both graph layers (100).
        classifier_hidden: width of ``l_i`` (100).
        window_past: past window ``wp`` (paper 10; negative = whole past).
        window_future: future window ``wf`` (paper 10; negative = whole future).
        num_bases: RGCN basis matrices (30).
        rnn_layers: GRU layers (2 in the authors' code).
        dropout: dropout (0.5).
        nodal_attention: use the nodal attention in the classifier (True).

    Shapes:
        - features: m → ``[B, L, d_m]``; mask ``[B, L]``; speakers ``[B, L]``
        - logits ``[N, C]``, modality_logits m → ``[N, C]`` (joint), representation
          ``[N, classifier_hidden]``
    """

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2,
                 context_hidden: int = 100, graph_hidden: int = 100, classifier_hidden: int = 100,
                 window_past: int = 10, window_future: int = 10, num_bases: int = 30, rnn_layers: int = 2,
                 dropout: float = 0.5, nodal_attention: bool = True) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        if num_bases < 1:
            raise ConfigError(f"num_bases must be ≥ 1, got {num_bases}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.window_past, self.window_future = int(window_past), int(window_future)
        width = 2 * context_hidden
        self.context = MaskedRNN(sum(input_dims.values()), context_hidden, rnn_layers, dropout, "gru")
        self.edge_attention = nn.Linear(width, width, bias=False)  # W_e
        self.rgcn = RGCNConv(width, graph_hidden, num_relations(self.num_speakers), num_bases=num_bases)
        self.gconv = GraphConv(graph_hidden, graph_hidden)
        joint = width + graph_hidden
        self.nodal = nn.Linear(joint, joint, bias=False) if nodal_attention else None  # W_β
        self.linear = nn.Linear(joint, classifier_hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(classifier_hidden, num_classes)

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor) -> BackboneOutput:
        x = torch.cat([features[m] for m in self.modalities], dim=-1)  # (B, L, Σd)
        g = self.context(x, mask)[mask]  # (N, 2·Dc)
        graph = window_graph(mask, speakers, self.window_past, self.window_future, self.num_speakers)
        source, target = graph.edge_index
        score = (self.edge_attention(g)[target] * g[source]).sum(-1)  # (E,) g_i^T W_e g_j
        alpha = edge_softmax(score, target, num_nodes=graph.num_nodes)  # over each target's window
        h = F.relu(self.rgcn(g, graph.edge_index, graph.edge_type))  # (N, G)
        h = F.relu(self.gconv(h, graph.edge_index, alpha))  # (N, G)
        h = torch.cat([g, h], dim=-1)  # (N, 2·Dc + G)
        if self.nodal is not None:
            padded = unflatten_valid(h, mask)  # (B, L, F)
            scores = torch.bmm(self.nodal(padded), padded.transpose(1, 2))  # (B, L, L)
            scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
            h = torch.bmm(torch.softmax(scores, dim=-1), padded)[mask]  # (N, F)
        rep = F.relu(self.linear(h))  # (N, Dh)
        logits = self.output(self.dropout(rep))
        return BackboneOutput(logits, {m: logits for m in self.modalities}, rep,
                              extras={"edge_attention": alpha.detach()})
