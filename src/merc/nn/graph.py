"""Sparse per-dialogue graph builders for the graph backbones (METHODS.md §2).

Every builder works on a padded batch (``mask [B, L]``) and returns one graph that is
block-diagonal over the ``B`` dialogues: nodes of different dialogues are never connected.
Graphs are edge lists (``edge_index [2, E]``, PyG convention: row 0 = source ``j``, row 1 =
target ``i``; a message flows ``j → i``). Nothing is dense over the batch, there is no Python
loop over utterances or dialogues and no cap on dialogue length; the only dense objects are
per-dialogue blocks ``[B, L, L]``. MMGCN's multimodal graph, whose intra-modality part is all
pairs of a dialogue, is also available as exactly such blocks (:class:`BlockAdjacency`, built
by :func:`multimodal_adjacency`): the fast path MMGCN and MM-DFN propagate with, equal to the
edge list's adjacency.

Node numbering follows the library's batch-major order: node ``n`` is the ``n``-th real
utterance of ``x[mask]``. Multimodal graphs stack one such block per modality
(modality-major): node ``k·N + n`` is utterance ``n`` in modality ``k``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from merc.errors import ConfigError

COS_CLIP = 0.99999
"""Cosine similarities are clipped to ``±COS_CLIP`` before ``arccos`` (MMGCN)."""


@dataclass
class Graph:
    """A batch graph.

    Attributes:
        edge_index: ``[2, E]`` long, (source, target) node indices.
        num_nodes: number of nodes ``V``.
        edge_weight: ``[E]`` float edge weights, or None.
        edge_type: ``[E]`` long relation types, or None.
    """

    edge_index: Tensor
    num_nodes: int
    edge_weight: Tensor | None = None
    edge_type: Tensor | None = None

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def sparse_adjacency(self) -> "SparseAdjacency":
        """The weighted adjacency as a :class:`SparseAdjacency` (edges must be unique, which
        all builders here guarantee). Differentiable w.r.t. ``edge_weight``."""
        weight = self.edge_weight if self.edge_weight is not None else \
            torch.ones(self.num_edges, device=self.edge_index.device)
        return SparseAdjacency(self.edge_index, weight, self.num_nodes)


class SparseAdjacency:
    """A weighted sparse adjacency ``A[target, source]`` whose product with dense features
    is differentiable w.r.t. both the features and the edge weights — without the dense
    ``[V, V]`` gradient PyTorch's sparse backward materialises: ``∂L/∂w`` is a sampled
    dense-dense product on the sparsity pattern (``torch.sparse.sampled_addmm``), ``∂L/∂X``
    a product with the transposed CSR matrix.

    Args:
        edge_index: ``[2, E]`` (source, target), unique edges.
        weight: ``[E]`` edge weights.
        num_nodes: ``V``.

    Shapes:
        - ``adjacency @ x``: ``[V, d]`` → ``[V, d]``
    """

    def __init__(self, edge_index: Tensor, weight: Tensor, num_nodes: int) -> None:
        self.source, self.target = edge_index[0], edge_index[1]
        self.weight = weight
        self.num_nodes = num_nodes
        V = num_nodes
        # structure of A (rows = targets) and of Aᵀ (rows = sources), computed once per graph
        self._by_target = torch.argsort(self.target * V + self.source)
        self._by_source = torch.argsort(self.source * V + self.target)
        self._target_ptr = _pointers(self.target, V)
        self._source_ptr = _pointers(self.source, V)
        self._target_cols = self.source[self._by_target]
        self._source_cols = self.target[self._by_source]
        self._structure: Tensor | None = None

    @property
    def structure(self) -> Tensor:
        """``A`` as a constant sparse CSR tensor (built once; what PyG's ``propagate`` is handed)."""
        if self._structure is None:
            self._structure = self.csr()
        return self._structure

    def csr(self, weight: Tensor | None = None, transpose: bool = False) -> Tensor:
        """``A`` (or ``Aᵀ``) as a torch sparse CSR tensor with ``weight`` (default: detached own)."""
        w = (self.weight if weight is None else weight).detach()
        order, ptr, cols = ((self._by_source, self._source_ptr, self._source_cols) if transpose
                            else (self._by_target, self._target_ptr, self._target_cols))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            return torch.sparse_csr_tensor(ptr, cols, w[order], (self.num_nodes, self.num_nodes),
                                           check_invariants=False)

    def to_dense(self) -> Tensor:
        """Dense ``[V, V]`` (for tests and inspection only)."""
        return self.csr().to_dense()

    def __matmul__(self, x: Tensor) -> Tensor:
        return _AdjacencyMatmul.apply(self.weight, x, self)


def _pointers(index: Tensor, size: int) -> Tensor:
    counts = torch.bincount(index, minlength=size)
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


class _AdjacencyMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: Tensor, x: Tensor, adjacency: SparseAdjacency) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(weight, x)
        ctx.adjacency = adjacency
        return adjacency.csr(weight) @ x

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        weight, x = ctx.saved_tensors
        adjacency: SparseAdjacency = ctx.adjacency
        grad_weight = grad_x = None
        if ctx.needs_input_grad[1]:
            grad_x = adjacency.csr(weight, transpose=True) @ grad_out
        if ctx.needs_input_grad[0]:
            # ∂L/∂A_ij = <∂L/∂out_i, x_j> on the sparsity pattern only (sampled dense-dense product)
            sampled = torch.sparse.sampled_addmm(adjacency.structure, grad_out, x.t(), beta=0.0)
            grad_weight = torch.empty_like(weight)
            grad_weight[adjacency._by_target] = sampled.values()
        return grad_weight, grad_x, None


def node_index(mask: Tensor) -> Tensor:
    """``[B, L]`` flat batch-major index of each real utterance (``-1`` at padding)."""
    flat = torch.cumsum(mask.reshape(-1).long(), 0).reshape(mask.shape) - 1
    return torch.where(mask, flat, torch.full_like(flat, -1))


def angular_similarity(cos: Tensor) -> Tensor:
    """MMGCN edge weight ``1 − arccos(clip(cos, ±0.99999)) / π`` (in ``(0, 1)``)."""
    return 1.0 - torch.arccos(cos.clamp(-COS_CLIP, COS_CLIP)) / math.pi


def symmetric_normalize(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:
    """Edge weights of ``D^-1/2 A D^-1/2`` with ``D_ii = Σ_j A_ij`` (degree over targets).

    Args:
        edge_index: ``[2, E]`` (source, target).
        edge_weight: ``[E]`` non-negative weights of ``A``.
        num_nodes: ``V``.

    Shapes:
        - output: ``[E]``
    """
    target = edge_index[1]
    degree = torch.zeros(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device)
    degree = degree.index_add(0, target, edge_weight)
    inv_sqrt = degree.clamp_min(1e-12).pow(-0.5)
    return inv_sqrt[edge_index[0]] * edge_weight * inv_sqrt[target]


def _check_shared_width(features: Sequence[Tensor], caller: str) -> None:
    """Raise :class:`ConfigError` unless there is at least one modality and all share one width."""
    if not features:
        raise ConfigError(f"{caller} needs at least one modality's features")
    dims = {x.shape[-1] for x in features}
    if len(features) > 1 and len(dims) != 1:
        raise ConfigError(f"{caller}: modality features must share one width, got {sorted(dims)}")


def multimodal_graph(features: Sequence[Tensor], mask: Tensor, cross_modal_weight: float = 1.0,
                     normalize: bool = True) -> Graph:
    """MMGCN's multimodal utterance graph (Hu et al., ACL 2021).

    One node per (utterance, modality). Edges:

    - intra-modality: every ordered pair of utterances of the same dialogue, self-loops
      included;
    - cross-modality: the nodes of the same utterance in two different modalities (both
      directions), weight multiplied by ``cross_modal_weight``.

    Edge weight ``A_ij = 1 − arccos(clip(cos(x_i, x_j), ±0.99999)) / π``, then (by default)
    symmetric normalisation ``D^-1/2 A D^-1/2``. Everything is differentiable w.r.t.
    ``features``.

    Args:
        features: one ``[B, L, d]`` tensor per modality (the same ``d`` for all when there is
            more than one modality: cross-modal weights compare the two nodes' features).
        mask: ``[B, L]`` bool, True at real utterances.
        cross_modal_weight: multiplier of cross-modality edge weights (1.0 in the paper).
        normalize: apply ``D^-1/2 A D^-1/2``.

    Shapes:
        - output: :class:`Graph` with ``V = M·N`` nodes (modality-major, batch-major within a
          modality), ``E = M·Σ_b L_b² + M(M−1)·N`` edges and ``edge_weight [E]``.
    """
    _check_shared_width(features, "multimodal_graph")
    M = len(features)
    idx = node_index(mask)  # (B, L)
    N = int(mask.sum())
    pairs = (mask.unsqueeze(2) & mask.unsqueeze(1)).nonzero(as_tuple=True)  # (b, i, j), target i ← source j
    b, i, j = pairs
    target, source = idx[b, i], idx[b, j]
    units = [F.normalize(x, dim=-1) for x in features]  # (B, L, d) each

    sources, targets, weights = [], [], []
    for k, u in enumerate(units):  # loop over modalities (≤ 3), not utterances
        cos = torch.bmm(u, u.transpose(1, 2))  # (B, L, L), per dialogue
        sources.append(source + k * N)
        targets.append(target + k * N)
        weights.append(angular_similarity(cos[b, i, j]))
    flat = [u[mask] for u in units]  # (N, d) each
    nodes = torch.arange(N, device=mask.device)
    for k in range(M):
        for q in range(M):
            if k == q:
                continue
            cos = (flat[k] * flat[q]).sum(-1)  # (N,)
            sources.append(nodes + q * N)
            targets.append(nodes + k * N)
            weights.append(angular_similarity(cos) * cross_modal_weight)
    edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
    edge_weight = torch.cat(weights)
    if normalize:
        edge_weight = symmetric_normalize(edge_index, edge_weight, M * N)
    return Graph(edge_index, M * N, edge_weight=edge_weight)


class BlockAdjacency:
    """MMGCN's normalised multimodal adjacency kept as per-dialogue blocks (never ``[V, V]``).

    The multimodal graph of :func:`multimodal_graph` is block-diagonal over dialogues and,
    inside a dialogue, dense within a modality (all pairs) and diagonal across modalities
    (same utterance). Stored that way, a propagation ``Â x`` is one batched matrix product
    per (modality, dialogue) plus an element-wise cross-modal term — no edge list, no
    sorting, no sparse kernels — and autograd differentiates it w.r.t. the features the
    weights were computed from. The result equals ``multimodal_graph(...)``'s adjacency
    (see :meth:`to_dense`), up to float summation order.

    Args:
        intra: ``[M, B, L, L]`` normalised intra-modality weights ``Â[(k,b,i) ← (k,b,j)]``,
            zero wherever ``i`` or ``j`` is padding.
        cross: ``[M, M, N]`` normalised cross-modality weights ``Â[(k,n) ← (q,n)]`` of the
            ``N`` real utterances, batch-major (zero for ``k = q``).
        index: ``[N]`` flat position ``b·L + i`` of every real utterance, batch-major.

    Shapes:
        - ``adjacency @ x``: ``[M·N, d]`` → ``[M·N, d]`` (nodes modality-major, batch-major
          within a modality, as in :func:`multimodal_graph`)
    """

    def __init__(self, intra: Tensor, cross: Tensor, index: Tensor) -> None:
        self.intra, self.cross, self.index = intra, cross, index
        self.num_modalities = intra.shape[0]
        self.num_utterances = int(index.shape[0])
        self.num_nodes = self.num_modalities * self.num_utterances
        self._structure: Tensor | None = None

    @property
    def structure(self) -> Tensor:
        """An empty ``[V, V]`` sparse CSR tensor: only routes PyG's ``propagate`` to the fused
        ``message_and_aggregate`` path (which multiplies by this adjacency instead)."""
        if self._structure is None:
            V, device = self.num_nodes, self.intra.device
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
                self._structure = torch.sparse_csr_tensor(
                    torch.zeros(V + 1, dtype=torch.long, device=device), torch.zeros(0, dtype=torch.long, device=device),
                    torch.zeros(0, dtype=self.intra.dtype, device=device), (V, V), check_invariants=False)
        return self._structure

    def pad(self, x: Tensor) -> Tensor:
        """``[M·N, d]`` node features → ``[M, B, L, d]`` with zeros at padding."""
        M, B, L = self.intra.shape[:3]
        out = x.new_zeros(M, B * L, x.shape[-1])
        return out.index_copy(1, self.index, x.reshape(M, self.num_utterances, -1)).view(M, B, L, -1)

    def __matmul__(self, x: Tensor) -> Tensor:
        M, B, L = self.intra.shape[:3]
        out = torch.matmul(self.intra, self.pad(x))  # (M, B, L, d): within each modality and dialogue
        out = out.view(M, B * L, -1).index_select(1, self.index)  # (M, N, d)
        if M > 1:  # same utterance, other modalities: out[k] += Σ_{q≠k} cross[k, q] ⊙ x[q]
            # (M·(M−1) element-wise products of [N, d]; the broadcast [M, M, N, d] product
            # and its reduction took twice the CPU time, forward and backward)
            nodes = x.reshape(M, self.num_utterances, -1)
            weights = self.cross.unsqueeze(-1)  # (M, M, N, 1), zero on the diagonal
            out = torch.stack([out[k] + sum(weights[k, q] * nodes[q] for q in range(M) if q != k)
                               for k in range(M)])
        return out.reshape(self.num_nodes, -1)

    def to_dense(self) -> Tensor:
        """Dense ``[V, V]`` (for tests and inspection only)."""
        return self @ torch.eye(self.num_nodes, dtype=self.intra.dtype, device=self.intra.device)


def multimodal_adjacency(features: Sequence[Tensor], mask: Tensor, cross_modal_weight: float = 1.0) -> BlockAdjacency:
    """The normalised adjacency of :func:`multimodal_graph` as a :class:`BlockAdjacency`.

    Same graph, same weights ``1 − arccos(clip(cos, ±0.99999)) / π`` and the same symmetric
    normalisation ``D^-1/2 A D^-1/2``, computed on the per-dialogue ``[B, L, L]`` blocks
    (the fast path the graph backbones use; :func:`multimodal_graph` gives the edge list).

    Args:
        features: one ``[B, L, d]`` tensor per modality (one shared ``d``).
        mask: ``[B, L]`` bool, True at real utterances.
        cross_modal_weight: multiplier of cross-modality edge weights (1.0 in the paper).

    Shapes:
        - output: :class:`BlockAdjacency` over ``V = M·N`` nodes
    """
    _check_shared_width(features, "multimodal_adjacency")
    M = len(features)
    valid = mask.to(features[0].dtype)  # (B, L)
    units = [F.normalize(x, dim=-1) for x in features]  # (B, L, d) each
    # unmasked: padding rows and columns are zeroed by the normalisation below (their D^-1/2 is 0)
    intra = angular_similarity(torch.stack([torch.bmm(u, u.transpose(1, 2)) for u in units]))  # (M, B, L, L)
    index = mask.reshape(-1).nonzero().squeeze(1)  # (N,) flat b·L + i
    flat = [u.flatten(0, 1).index_select(0, index) for u in units]  # (N, d) each
    zero = flat[0].new_zeros(flat[0].shape[0])
    cross = torch.stack([torch.stack([
        zero if k == q else angular_similarity((flat[k] * flat[q]).sum(-1)) * cross_modal_weight
        for q in range(M)]) for k in range(M)])  # (M, M, N): target modality k ← source modality q
    from_real = torch.matmul(intra, valid.unsqueeze(-1)).squeeze(-1)  # (M, B, L): Σ_j over real sources j
    degree = from_real.flatten(1).index_select(1, index) + cross.sum(1)  # (M, N), over incoming edges
    inv_sqrt = degree.clamp_min(1e-12).pow(-0.5)
    padded_inv = inv_sqrt.new_zeros(M, mask.numel()).index_copy(1, index, inv_sqrt).view(M, *mask.shape)
    intra = padded_inv.unsqueeze(-1) * intra * padded_inv.unsqueeze(-2)
    cross = inv_sqrt.unsqueeze(1) * cross * inv_sqrt.unsqueeze(0)
    return BlockAdjacency(intra, cross, index)


#: DialogueGCN relation schemes: ``speaker_pair`` (the paper's ``2·S²``: speaker of the target ×
#: speaker of the source × direction) and ``same_other`` (``2·2``: same speaker or not × direction).
RELATION_SCHEMES = ("speaker_pair", "same_other")


def check_relations(relations: str) -> str:
    """``relations`` if it is one of :data:`RELATION_SCHEMES`, else a ``ValueError``."""
    if relations not in RELATION_SCHEMES:
        raise ValueError(f"relations must be one of {', '.join(RELATION_SCHEMES)}, got '{relations}'")
    return relations


def num_relations(num_speakers: int, relations: str = "speaker_pair") -> int:
    """DialogueGCN's relation count: ``2·S²`` for ``speaker_pair``, 4 for ``same_other``."""
    check_relations(relations)
    return 2 * num_speakers * num_speakers if relations == "speaker_pair" else 4


def window_graph(mask: Tensor, speakers: Tensor, window_past: int = 10, window_future: int = 10,
                 num_speakers: int = 2, relations: str = "speaker_pair") -> Graph:
    """DialogueGCN's windowed relational graph (Ghosal et al., EMNLP 2019).

    Utterance ``i`` receives an edge from every utterance ``j`` of its dialogue with
    ``i − window_past ≤ j ≤ i + window_future`` (self-loop included). A negative window means
    unbounded on that side. The relation type of edge ``j → i`` is::

        edge_type = 2 · (S · speaker_i + speaker_j) + (1 if j > i else 0)

    i.e. (speaker of the target, speaker of the source, source in the future or not): ``2·S²``
    relations; the self-loop counts as "not future". Speaker indices ≥ ``S`` are clipped to
    ``S − 1``. With ``relations="same_other"`` the type is ``2 · [speaker_i ≠ speaker_j] + future``
    (4 relations, independent of the party count; not in the paper).

    Args:
        mask: ``[B, L]`` bool.
        speakers: ``[B, L]`` long party index of each utterance within its dialogue.
        window_past: ``wp`` (10 in the paper).
        window_future: ``wf`` (10 in the paper).
        num_speakers: ``S``.
        relations: ``"speaker_pair"`` (the paper) or ``"same_other"``.

    Shapes:
        - output: :class:`Graph` with ``V = N`` nodes; edges grouped by target in batch-major
          order, sources ascending within a target; ``edge_type [E]``.
    """
    B, L = mask.shape
    device = mask.device
    wp = L - 1 if window_past < 0 else min(window_past, max(L - 1, 0))
    wf = L - 1 if window_future < 0 else min(window_future, max(L - 1, 0))
    lengths = mask.sum(1)  # (B,)
    starts = torch.cumsum(lengths, 0) - lengths  # (B,)
    dialogue = torch.arange(B, device=device).unsqueeze(1).expand(B, L)[mask]  # (N,)
    position = torch.arange(L, device=device).unsqueeze(0).expand(B, L)[mask]  # (N,)
    spk = speakers[mask].clamp(0, num_speakers - 1)  # (N,)
    N = position.shape[0]
    offsets = torch.arange(-wp, wf + 1, device=device)  # (K,)
    neighbour = position.unsqueeze(1) + offsets.unsqueeze(0)  # (N, K)
    valid = (neighbour >= 0) & (neighbour < lengths[dialogue].unsqueeze(1))
    target = torch.arange(N, device=device).unsqueeze(1).expand_as(neighbour)[valid]
    source = (starts[dialogue].unsqueeze(1) + neighbour)[valid]
    future = offsets.unsqueeze(0).expand_as(neighbour)[valid] > 0
    if check_relations(relations) == "speaker_pair":
        edge_type = 2 * (num_speakers * spk[target] + spk[source]) + future.long()
    else:  # same_other
        edge_type = 2 * (spk[target] != spk[source]).long() + future.long()
    return Graph(torch.stack([source, target]), N, edge_type=edge_type)
