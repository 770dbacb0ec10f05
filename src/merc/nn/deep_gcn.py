"""Deep GCNII stack shared by MMGCN and MM-DFN, built on PyG's :class:`GCN2Conv`."""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCN2Conv

from merc.nn.graph import BlockAdjacency, SparseAdjacency

Adjacency = Union[SparseAdjacency, BlockAdjacency]
"""A pre-normalised weighted adjacency supporting ``adjacency @ x`` and ``.structure``."""


class AdjacencyGCN2Conv(GCN2Conv):
    """PyG's :class:`GCN2Conv` propagating with a pre-normalised adjacency: a
    :class:`~merc.nn.graph.SparseAdjacency` (edge list; differentiable w.r.t. its edge weights
    without a dense backward) or a :class:`~merc.nn.graph.BlockAdjacency` (MMGCN's
    multimodal graph as per-dialogue blocks, the fast path).

    Shapes:
        - x, x_0: ``[V, channels]``; adjacency: ``[V, V]``; output ``[V, channels]``
    """

    def forward(self, x: Tensor, x_0: Tensor, adjacency: Adjacency) -> Tensor:  # type: ignore[override]
        self._adjacency = adjacency
        try:
            # the structure-only CSR tensor routes PyG's propagate to message_and_aggregate
            return super().forward(x, x_0, adjacency.structure)
        finally:
            self._adjacency = None

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        return self._adjacency @ x


class DeepGCNII(nn.Module):
    r"""A stack of GCNII layers (Chen et al., ICML 2020) with initial residual and identity
    mapping, as used by MMGCN (Hu et al., ACL 2021); with ``memory=True`` it becomes MM-DFN's
    graph-based dynamic fusion (Hu et al., ICASSP 2022).

    .. math::
        H^{(0)} = \mathrm{ReLU}(W_{in} X), \qquad
        H^{(l)} = \mathrm{ReLU}\Big(\big((1-\alpha)\hat P H^{(l-1)} + \alpha H^{(0)}\big)
                  \big((1-\beta_l) I + \beta_l W^{(l)}\big)\Big), \quad
        \beta_l = \log(\lambda / l + 1)

    with the "variant" form (separate weights for the propagated and the initial term,
    PyG ``shared_weights=False``). ``\hat P`` is given as a pre-normalised weighted adjacency.

    With ``memory=True`` every layer first passes its input through an LSTM cell whose state
    (hidden and cell memory) is carried from layer to layer, then convolves, then adds the
    layer input back (MM-DFN's gated memory across layers)::

        q = H^{(l-1)};  (H', C^{(l)}) = LSTMCell(q, (H'^{(l-1)}, C^{(l-1)}))
        H^{(l)} = Dropout(GCNII_l(H', H^{(0)})) + q

    Args:
        in_dim: input node feature width.
        hidden: width of every layer.
        layers: number of GCNII layers.
        alpha: initial-residual strength ``α``.
        lamda: identity-mapping strength ``λ`` (PyG ``theta``).
        dropout: dropout on the input, on ``H^{(0)}`` and after every layer.
        memory: enable the gated memory across layers.

    Shapes:
        - x: ``[V, in_dim]``
        - adjacency: ``[V, V]`` :class:`~merc.nn.graph.SparseAdjacency` or
          :class:`~merc.nn.graph.BlockAdjacency`, already normalised
        - output: ``[V, hidden]``
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, alpha: float = 0.1, lamda: float = 0.5,
                 dropout: float = 0.0, memory: bool = False) -> None:
        super().__init__()
        self.input = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(
            AdjacencyGCN2Conv(hidden, alpha=alpha, theta=lamda, layer=l + 1, shared_weights=False, cached=False,
                     add_self_loops=False, normalize=False)
            for l in range(layers))
        self.cell = nn.LSTMCell(hidden, hidden) if memory else None
        self.dropout = dropout

    def forward(self, x: Tensor, adjacency: Adjacency) -> Tensor:
        x = F.dropout(x, self.dropout, self.training)
        h0 = F.relu(self.input(x))  # (V, H)
        h = F.dropout(h0, self.dropout, self.training)
        state = (torch.zeros_like(h), torch.zeros_like(h)) if self.cell is not None else None
        for conv in self.convs:
            q = h
            if self.cell is not None:
                state = self.cell(q, state)
                h = state[0]
            h = F.relu(conv(h, h0, adjacency))
            h = F.dropout(h, self.dropout, self.training)
            if self.cell is not None:
                h = h + q
        return h
