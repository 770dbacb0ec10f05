"""DialogueGCN (Ghosal et al., EMNLP 2019): relational graph over a window of utterances."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GraphConv
from torch_geometric.nn.inits import glorot, zeros
from torch_geometric.utils import softmax as edge_softmax

from merc.backbones.base import Backbone, BackboneOutput, flatten_valid, unflatten_valid, valid_index
from merc.errors import ConfigError
from merc.nn.graph import RELATION_SCHEMES, num_relations, window_graph
from merc.nn.sequence import MaskedRNN
from merc.registry import BACKBONES

EDGE_ATTENTION_LAYERS = ("rgcn", "graphconv")
NODAL_SCORES = ("tanh", "bilinear")


class BasisRGCNConv(nn.Module):
    r"""Relational graph convolution with basis decomposition, vectorised over relations.

    Without edge weights, the same layer as ``torch_geometric.nn.RGCNConv(in, out, R,
    num_bases=B)`` (mean aggregation per relation, root weight, bias; identical parameter names
    and shapes, so state dicts are interchangeable). With per-edge weights ``w_ji`` (DialogueGCN's
    edge attention, which the authors passed to PyG 1.x's ``RGCNConv`` as ``edge_norm``) every
    message is scaled by its weight:

    .. math:: h_i = x_i W_{root} + b + \sum_r \frac{1}{|N_r(i)|} \sum_{j \in N_r(i)} w_{ji}\, x_j W_r,
       \qquad W_r = \sum_b a_{rb} V_b

    computed without PyG's loop over relations, whose per-relation ``weight[r]`` slicing makes
    the backward pass write a full ``[R, in, out]`` gradient per relation (DialogueGCN on MELD has
    ``R = 2·9² = 162``: ~10× slower on CPU). Three exact evaluation orders, chosen per call by
    their multiply count and the width of the per-edge tensors they materialise:

    - *weight-first* (few relations and ``out ≤ in``, e.g. IEMOCAP's ``R = 8``): ``x W_r`` for
      every relation in one product ``[N, R·out]``, then one gather/scatter of the scaled
      ``[E, out]`` messages;
    - *relation-first* (few relations, ``out > in``): mean-aggregate ``x`` per (target, relation)
      into ``[N, R·in]`` and multiply once by the stacked ``W_r``;
    - *basis-first* (many relations): ``x V_b`` for all bases once, then one gather/scatter of
      the basis-weighted messages over the edges.

    Shapes:
        - x ``[N, in]``, edge_index ``[2, E]`` (source, target), edge_type ``[E]``, edge_weight
          ``[E]`` or None (all 1) → ``[N, out]``
    """

    def __init__(self, in_channels: int, out_channels: int, num_relations: int, num_bases: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_relations, self.num_bases = num_relations, num_bases
        self.order = "auto"
        """``"auto"`` (the cheapest), ``"weight"``, ``"relation"`` or ``"basis"``: the evaluation order."""
        self.weight = nn.Parameter(torch.empty(num_bases, in_channels, out_channels))  # V_b
        self.comp = nn.Parameter(torch.empty(num_relations, num_bases))  # a_rb
        self.root = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot(self.weight)
        glorot(self.comp)
        glorot(self.root)
        zeros(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        N, R, B, I, O = x.size(0), self.num_relations, self.num_bases, self.in_channels, self.out_channels
        source, target = edge_index
        # 1 / |N_r(i)| for every edge (its target's neighbour count within its relation)
        group = target * R + edge_type
        count = torch.zeros(N * R, dtype=x.dtype, device=x.device)
        count.index_add_(0, group, torch.ones_like(group, dtype=x.dtype))
        # multiply counts; the gather in basis-first costs more per multiply, hence the factor 2
        relation_first = N * R * I <= 2 * (source.numel() * B + N * I * B)
        order = self.order if self.order != "auto" else ("basis" if not relation_first else
                                                          "weight" if O <= I else "relation")
        if order == "weight":
            w = torch.einsum("rb,bio->iro", self.comp, self.weight).reshape(I, R * O)  # [W_1 … W_R]
            scale = 1.0 / count[group] if edge_weight is None else edge_weight / count[group]  # (E,)
            xw = (x @ w).view(N * R, O)  # row n·R + r: x_n W_r
            messages = xw.index_select(0, source * R + edge_type) * scale.unsqueeze(-1)  # (E, O)
            out = torch.zeros(N, O, dtype=x.dtype, device=x.device).index_add_(0, target, messages)
        elif order == "relation":
            w = torch.einsum("rb,bio->rio", self.comp, self.weight).reshape(R * I, O)  # stacked W_r
            messages = x[source] if edge_weight is None else x[source] * edge_weight.unsqueeze(-1)  # (E, I)
            agg = torch.zeros(N * R, I, dtype=x.dtype, device=x.device).index_add_(0, group, messages)
            agg = agg / count.clamp(min=1).unsqueeze(-1)
            out = agg.view(N, R * I) @ w
        else:  # basis-first
            scale = 1.0 / count[group] if edge_weight is None else edge_weight / count[group]  # (E,)
            coef = self.comp[edge_type] * scale.unsqueeze(-1)  # (E, B)
            xv = (x @ self.weight.permute(1, 0, 2).reshape(I, B * O)).view(N, B, O)  # x V_b
            messages = torch.einsum("eb,ebo->eo", coef, xv[source])  # (E, O)
            out = torch.zeros(N, O, dtype=x.dtype, device=x.device).index_add_(0, target, messages)
        return out + x @ self.root + self.bias


def edge_scores(weight: nn.Linear, g: Tensor, padded: Tensor, mask: Tensor, index: Tensor,
                edge_index: Tensor) -> Tensor:
    r"""DialogueGCN's edge-attention scores :math:`g_i^\top W_e g_j` of every edge ``j → i``.

    Two exact evaluations, chosen by size: per dialogue one ``[L, L]`` product
    :math:`(G W_e^\top) G^\top` (a batched matrix product, then one gather of the ``E`` scores)
    when ``B·L² ≤ 16·E`` — never materialising ``[E, F]`` tensors, whose allocation and memory
    traffic dominate for many stacked views — and otherwise the per-edge dot products.

    Shapes:
        - g ``[N, F]`` (real utterances, batch-major); padded ``[B, L, F]`` (the same rows,
          padded); mask ``[B, L]``; index ``[N]`` (:func:`valid_index`); edge_index ``[2, E]``
        - output ``[E]``
    """
    source, target = edge_index
    B, L = mask.shape
    if B * L * L > 16 * source.numel():
        return (weight(g)[target] * g[source]).sum(-1)
    query = unflatten_valid(weight(g), mask, index)  # (B, L, F); padding rows are never gathered
    scores = torch.bmm(query, padded.transpose(1, 2))  # (B, L, L): [b, i, j] = q_bi · g_bj
    return scores.reshape(-1).index_select(0, index[target] * L + index[source] % L)


def nodal_attention(h: Tensor, mask: Tensor, query: nn.Linear, bounded: bool) -> Tensor:
    r"""DialogueGCN's attention of every utterance over all utterances of its dialogue.

    :math:`s_{ij} = (W h_i + b)^\top h_j`, bounded by ``tanh`` when ``bounded`` (the authors'
    ``MatchingAttention(att_type='general2')``), :math:`\beta_{ij} = \mathrm{softmax}_j(s_{ij})`
    over the real utterances ``j``, output :math:`\tilde h_i = \sum_j \beta_{ij} h_j`.

    Shapes:
        - h ``[N, F]`` (real utterances, batch-major), mask ``[B, L]`` → ``[N, F]``
    """
    padded = unflatten_valid(h, mask)  # (B, L, F)
    scores = torch.bmm(query(padded), padded.transpose(1, 2))  # (B, L, L)
    if bounded:
        scores = torch.tanh(scores)
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    return torch.bmm(torch.softmax(scores, dim=-1), padded)[mask]


@BACKBONES.register("dialogue_gcn")
class DialogueGCN(Backbone):
    r"""DialogueGCN: speaker- and position-aware relational graph convolution.

    1. Sequential context encoder: a masked bidirectional GRU over the utterances of each
       dialogue (modalities concatenated at the input): ``g_i`` of width ``2·context_hidden``.
    2. Window graph (:func:`merc.nn.graph.window_graph`): utterance ``i`` receives edges from
       ``j ∈ [i − window_past, i + window_future]`` of its dialogue (self-loop included);
       relation = (speaker_i, speaker_j, j after i or not), ``2·S²`` relations (or, with
       ``relations="same_other"``, (same speaker or not, j after i or not): 4 relations).
    3. Edge attention, softmaxed over each utterance's window:
       :math:`\alpha_{ij} = \mathrm{softmax}_j(g_i^\top W_e g_j)`.
    4. Graph layers (``edge_attention_layer``):

       - ``"rgcn"`` (default, as the authors' ``GraphNetwork``): the edge attention weights the
         relational layer, ``h^(1) = RGCNConv(g, weights α)`` (basis decomposition,
         ``num_bases`` bases, mean over each relation's neighbours), then an unweighted
         ``h^(2) = GraphConv(h^(1))``, with no non-linearity between or after them;
       - ``"graphconv"`` (merc ≤ 2026-12-01): ``h^(1) = ReLU(RGCNConv(g))`` unweighted, then
         ``h^(2) = ReLU(GraphConv(h^(1), weights α))``.
    5. Classifier on ``h_i = [g_i; h^(2)_i]``: optional nodal attention over the utterances
       of the dialogue (:func:`nodal_attention`; ``nodal_scores: tanh`` bounds the scores and
       gives the query a bias, as the authors' code; ``bilinear`` is the paper's unbounded
       :math:`h_i^\top W_\beta h_j`, merc's earlier choice), ``l_i = ReLU(W_l \tilde h_i)``,
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
        nodal_attention: use the nodal attention in the classifier (False, the default of the authors' train scripts; their README run turns it on).
        edge_attention_layer: ``"rgcn"`` (the edge attention weights the relational layer, as
            in the authors' code) or ``"graphconv"`` (it weights the GraphConv layer instead,
            with a ReLU after each graph layer: merc's earlier variant).
        nodal_scores: ``"tanh"`` (authors' code) or ``"bilinear"`` (merc's earlier variant).
        relations: ``"speaker_pair"`` (the paper's ``2·S²`` relations) or ``"same_other"``
            (4 relations: same speaker or not × direction; for scenes with many parties, where
            most speaker-pair relations are rare; not in the paper).

    Shapes:
        - features: m → ``[B, L, d_m]``; mask ``[B, L]``; speakers ``[B, L]``
        - logits ``[N, C]``, modality_logits m → ``[N, C]`` (joint), representation
          ``[N, classifier_hidden]``
    """

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2,
                 context_hidden: int = 100, graph_hidden: int = 100, classifier_hidden: int = 100,
                 window_past: int = 10, window_future: int = 10, num_bases: int = 30, rnn_layers: int = 2,
                 dropout: float = 0.5, nodal_attention: bool = False, edge_attention_layer: str = "rgcn",
                 nodal_scores: str = "tanh", relations: str = "speaker_pair") -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        if relations not in RELATION_SCHEMES:
            raise ConfigError(f"relations must be one of {', '.join(RELATION_SCHEMES)}, got '{relations}'")
        self.relations = relations
        if edge_attention_layer not in EDGE_ATTENTION_LAYERS:
            raise ConfigError(f"edge_attention_layer must be one of {', '.join(EDGE_ATTENTION_LAYERS)}, "
                              f"got '{edge_attention_layer}'")
        self.edge_attention_layer = edge_attention_layer
        if nodal_scores not in NODAL_SCORES:
            raise ConfigError(f"nodal_scores must be one of {', '.join(NODAL_SCORES)}, got '{nodal_scores}'")
        self.nodal_scores = nodal_scores
        if num_bases < 1:
            raise ConfigError(f"num_bases must be ≥ 1, got {num_bases}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.window_past, self.window_future = int(window_past), int(window_future)
        width = 2 * context_hidden
        self.context = MaskedRNN(sum(input_dims.values()), context_hidden, rnn_layers, dropout, "gru")
        self.edge_attention = nn.Linear(width, width, bias=False)  # W_e
        self.rgcn = BasisRGCNConv(width, graph_hidden, num_relations(self.num_speakers, relations), num_bases)
        self.gconv = GraphConv(graph_hidden, graph_hidden)
        joint = width + graph_hidden
        self.nodal = (nn.Linear(joint, joint, bias=nodal_scores == "tanh") if nodal_attention else None)  # W_β
        self.linear = nn.Linear(joint, classifier_hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(classifier_hidden, num_classes)

    def input_projections(self) -> dict[str, nn.Module]:
        """The context GRU's first-layer input projection, one column block per modality
        (:meth:`merc.nn.sequence.MaskedRNN.input_projections`): the GRU reads the modalities
        concatenated, so its input gates are ``Σ_m W_m x_m + b``."""
        return self.context.input_projections(self.input_dims)

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor,
                projected: bool = False) -> BackboneOutput:
        if projected:  # features[m] = W_m x_m (+ b for the first): the GRU's input gates, summed
            padded = self.context(sum(features[m] for m in self.modalities), mask, projected=True)
        else:
            padded = self.context(torch.cat([features[m] for m in self.modalities], dim=-1), mask)  # (B, L, 2·Dc)
        index = valid_index(mask)
        g = flatten_valid(padded, mask, index)  # (N, 2·Dc)
        graph = window_graph(mask, speakers, self.window_past, self.window_future, self.num_speakers,
                             self.relations)
        score = edge_scores(self.edge_attention, g, padded, mask, index, graph.edge_index)  # (E,) g_i^T W_e g_j
        source, target = graph.edge_index
        alpha = edge_softmax(score, target, num_nodes=graph.num_nodes)  # over each target's window
        if self.edge_attention_layer == "rgcn":
            h = self.rgcn(g, graph.edge_index, graph.edge_type, alpha)  # (N, G)
            h = self.gconv(h, graph.edge_index)  # (N, G)
        else:
            h = F.relu(self.rgcn(g, graph.edge_index, graph.edge_type))  # (N, G)
            h = F.relu(self.gconv(h, graph.edge_index, alpha))  # (N, G)
        h = torch.cat([g, h], dim=-1)  # (N, 2·Dc + G)
        if self.nodal is not None:
            h = nodal_attention(h, mask, self.nodal, bounded=self.nodal_scores == "tanh")  # (N, F)
        rep = F.relu(self.linear(h))  # (N, Dh)
        logits = self.output(self.dropout(rep))
        return BackboneOutput(logits, {m: logits for m in self.modalities}, rep,
                              extras={"edge_attention": alpha.detach()})
