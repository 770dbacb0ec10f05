"""Graph builders on hand-built tiny dialogues: exact edges, relation types, windows, weights."""

from __future__ import annotations

import math

import pytest
import torch

from merc.errors import ConfigError
from merc.nn.graph import (COS_CLIP, Graph, angular_similarity, multimodal_adjacency, multimodal_graph, node_index,
                           num_relations, symmetric_normalize, window_graph)

SELF = 1.0 - math.acos(COS_CLIP) / math.pi  # weight of a node with itself (cos clipped to 0.99999)
OPPOSITE = 1.0 - math.acos(-COS_CLIP) / math.pi


def edges(graph: Graph, values: torch.Tensor | None = None) -> list[tuple]:
    src, tgt = graph.edge_index.tolist()
    if values is None:
        return list(zip(src, tgt))
    return list(zip(src, tgt, values.tolist()))


def padded_mask(*lengths: int) -> torch.Tensor:
    L = max(lengths)
    return torch.arange(L).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


# ----------------------------------------------------------------------------- window graph

def test_window_graph_four_utterances_two_speakers():
    mask = padded_mask(4)
    speakers = torch.tensor([[0, 1, 0, 1]])
    g = window_graph(mask, speakers, window_past=1, window_future=1, num_speakers=2)
    # type = 2·(S·speaker_target + speaker_source) + (source after target)
    expected = [(0, 0, 0), (1, 0, 3),
                (0, 1, 4), (1, 1, 6), (2, 1, 5),
                (1, 2, 2), (2, 2, 0), (3, 2, 3),
                (2, 3, 4), (3, 3, 6)]
    assert edges(g, g.edge_type) == expected
    assert g.num_nodes == 4 and g.edge_weight is None


def test_window_graph_same_other_relations():
    mask = padded_mask(4)
    speakers = torch.tensor([[0, 3, 0, 5]])  # parties beyond S: same/other needs no clipping
    g = window_graph(mask, speakers, window_past=1, window_future=1, num_speakers=2, relations="same_other")
    # type = 2·[speaker_target ≠ speaker_source] + (source after target)
    expected = [(0, 0, 0), (1, 0, 3),
                (0, 1, 2), (1, 1, 0), (2, 1, 3),
                (1, 2, 2), (2, 2, 0), (3, 2, 3),
                (2, 3, 2), (3, 3, 0)]
    assert edges(g, g.edge_type) == expected
    assert num_relations(9, "same_other") == 4 and num_relations(9) == 162
    with pytest.raises(ValueError, match="relations must be one of"):
        window_graph(mask, speakers, relations="pairs")


def test_dialogue_gcn_same_other_relations_has_four_relation_weights():
    from merc.backbones.dialogue_gcn import DialogueGCN
    from merc.errors import ConfigError

    model = DialogueGCN({"t": 6}, 3, num_speakers=9, relations="same_other", num_bases=2)
    assert tuple(model.rgcn.comp.shape) == (4, 2)
    mask = padded_mask(5, 5)
    out = model({"t": torch.randn(2, 5, 6)}, mask, torch.tensor([[0, 8, 0, 7, 1], [2, 2, 2, 2, 2]]))
    assert out.logits.shape == (10, 3) and torch.isfinite(out.logits).all()
    with pytest.raises(ConfigError, match="relations must be one of"):
        DialogueGCN({"t": 6}, 3, relations="pairs")


def test_window_graph_batch_of_two_is_block_diagonal():
    mask = padded_mask(4, 2)
    speakers = torch.tensor([[0, 1, 0, 1], [1, 0, 0, 0]])  # padding speaker values are ignored
    g = window_graph(mask, speakers, window_past=1, window_future=1, num_speakers=2)
    second = [e for e in edges(g, g.edge_type) if e[1] >= 4]
    assert second == [(4, 4, 6), (5, 4, 5), (4, 5, 2), (5, 5, 0)]
    assert all((s < 4) == (t < 4) for s, t in edges(g))  # no edge crosses dialogues
    assert g.num_nodes == 6 and g.num_edges == 14


def test_window_graph_window_sizes():
    mask = padded_mask(4)
    speakers = torch.zeros(1, 4, dtype=torch.long)
    only_self = window_graph(mask, speakers, 0, 0)
    assert edges(only_self) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    past_only = window_graph(mask, speakers, 2, 0)
    assert sorted(edges(past_only)) == sorted([(0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (1, 3), (2, 3), (3, 3)])
    unbounded = window_graph(mask, speakers, -1, -1)
    assert unbounded.num_edges == 16
    assert set(window_graph(mask, speakers, 10, 10).edge_type.tolist()) == {0, 1}  # one speaker: past / future


def test_window_graph_long_dialogue_has_no_length_cap():
    L = 1000
    g = window_graph(padded_mask(L), torch.randint(0, 3, (1, L)), 10, 10, num_speakers=3)
    assert g.num_edges == L * 21 - 2 * sum(range(1, 11))
    assert int(g.edge_type.max()) < num_relations(3) == 18
    assert int((g.edge_index[0] - g.edge_index[1]).abs().max()) == 10


def test_window_graph_clips_speakers_beyond_num_speakers():
    g = window_graph(padded_mask(2), torch.tensor([[0, 5]]), 1, 1, num_speakers=2)
    assert int(g.edge_type.max()) < num_relations(2)


# ------------------------------------------------------------------------- multimodal graph

def test_node_index_batch_major():
    assert node_index(padded_mask(3, 1, 2)).tolist() == [[0, 1, 2], [3, -1, -1], [4, 5, -1]]


def test_multimodal_graph_edges_and_weights_unnormalised():
    mask = padded_mask(3)
    a = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    b = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]])
    g = multimodal_graph([a, b], mask, normalize=False)
    got = {(s, t): w for s, t, w in edges(g, g.edge_weight)}
    assert g.num_nodes == 6 and g.num_edges == 9 + 9 + 6 == len(got)
    expected = {
        # modality a (nodes 0-2): all ordered pairs incl. self-loops
        (0, 0): SELF, (1, 1): SELF, (2, 2): SELF, (0, 1): 0.5, (1, 0): 0.5,
        (0, 2): 0.75, (2, 0): 0.75, (1, 2): 0.75, (2, 1): 0.75,
        # modality b (nodes 3-5)
        (3, 3): SELF, (4, 4): SELF, (5, 5): SELF, (3, 4): OPPOSITE, (4, 3): OPPOSITE,
        (3, 5): 0.5, (5, 3): 0.5, (4, 5): 0.5, (5, 4): 0.5,
        # cross-modality: the same utterance's two nodes, both directions
        (0, 3): SELF, (3, 0): SELF, (1, 4): 0.5, (4, 1): 0.5, (2, 5): 0.75, (5, 2): 0.75,
    }
    assert got.keys() == expected.keys()
    for key, w in expected.items():
        assert got[key] == pytest.approx(w, abs=1e-5), key


def test_multimodal_graph_cross_modal_weight_and_single_modality():
    mask = padded_mask(3)
    x = torch.randn(1, 3, 4)
    g = multimodal_graph([x, x], mask, cross_modal_weight=0.5, normalize=False)
    cross = [w for s, t, w in edges(g, g.edge_weight) if (s < 3) != (t < 3)]
    assert cross == pytest.approx([0.5 * SELF] * 6, abs=1e-5)
    single = multimodal_graph([x], mask, normalize=False)
    assert single.num_edges == 9 and single.num_nodes == 3


def test_multimodal_graph_batch_is_block_diagonal():
    mask = padded_mask(3, 2)
    feats = [torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4)]
    g = multimodal_graph(feats, mask)
    N = 5
    assert g.num_nodes == 3 * N
    assert g.num_edges == 3 * (9 + 4) + 3 * 2 * N
    utterance = torch.arange(3 * N) % N
    dialogue = (utterance >= 3).long()
    src, tgt = g.edge_index
    assert torch.equal(dialogue[src], dialogue[tgt])
    cross = (src // N) != (tgt // N)
    assert torch.equal(utterance[src][cross], utterance[tgt][cross])
    assert len(set(edges(g))) == g.num_edges  # no duplicate edges


def test_multimodal_graph_symmetric_normalisation_matches_dense():
    mask = padded_mask(3, 2)
    feats = [torch.randn(2, 3, 4), torch.randn(2, 3, 4)]
    raw = multimodal_graph(feats, mask, normalize=False)
    norm = multimodal_graph(feats, mask)
    V = raw.num_nodes
    A = torch.zeros(V, V)
    A[raw.edge_index[1], raw.edge_index[0]] = raw.edge_weight
    d = A.sum(1).pow(-0.5)
    expected = d[:, None] * A * d[None, :]
    assert torch.allclose(norm.sparse_adjacency().to_dense(), expected, atol=1e-6)
    assert torch.allclose(expected, expected.T, atol=1e-6)


def test_multimodal_graph_is_differentiable_wrt_features():
    mask = padded_mask(3, 2)
    feats = [torch.randn(2, 3, 4, requires_grad=True) for _ in range(2)]
    g = multimodal_graph(feats, mask)
    (g.edge_weight * torch.arange(g.num_edges, dtype=torch.float)).sum().backward()
    for x in feats:
        assert torch.isfinite(x.grad).all() and x.grad[mask].abs().sum() > 0
        assert x.grad[~mask].abs().sum() == 0  # padding never influences the graph


def test_multimodal_graph_handles_zero_vectors_and_rejects_mixed_widths():
    mask = padded_mask(2)
    g = multimodal_graph([torch.zeros(1, 2, 3)], mask)
    assert torch.isfinite(g.edge_weight).all()
    with pytest.raises(ConfigError):
        multimodal_graph([torch.randn(1, 2, 3), torch.randn(1, 2, 4)], mask)


@pytest.mark.parametrize("modalities, cross_modal_weight", [(1, 1.0), (2, 1.0), (3, 1.0), (3, 0.5)])
def test_block_adjacency_equals_the_edge_list_graph(modalities, cross_modal_weight):
    torch.manual_seed(modalities)
    mask = padded_mask(5, 3, 1, 4)
    base = [torch.randn(4, 5, 6) for _ in range(modalities)]
    # garbage at padding must not matter
    feats = [torch.where(mask.unsqueeze(-1), x, torch.full_like(x, 7.0)).requires_grad_() for x in base]
    block = multimodal_adjacency(feats, mask, cross_modal_weight)
    edges_ = multimodal_graph(feats, mask, cross_modal_weight).sparse_adjacency()
    assert block.num_nodes == edges_.num_nodes == modalities * 13
    assert torch.allclose(block.to_dense(), edges_.to_dense(), atol=1e-6)
    x = torch.randn(block.num_nodes, 3, requires_grad=True)
    upstream = torch.randn(block.num_nodes, 3)
    got = torch.autograd.grad(block @ x, [x, *feats], upstream)
    want = torch.autograd.grad(edges_ @ x, [x, *feats], upstream)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-5)
    for g in got[1:]:
        assert g[~mask].abs().sum() == 0  # padding never influences the graph


def test_block_adjacency_rejects_mixed_widths():
    with pytest.raises(ConfigError):
        multimodal_adjacency([torch.randn(1, 2, 3), torch.randn(1, 2, 4)], padded_mask(2))


def test_angular_similarity_and_normalize_helpers():
    cos = torch.tensor([1.0, 0.0, -1.0])
    assert angular_similarity(cos).tolist() == pytest.approx([SELF, 0.5, OPPOSITE], abs=1e-5)
    ei = torch.tensor([[0, 1, 1], [1, 0, 1]])
    w = symmetric_normalize(ei, torch.tensor([1.0, 1.0, 1.0]), 2)
    # degrees: node 1 receives 1 + 1 = 2, node 0 receives 1
    assert w.tolist() == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(2), 0.5])


def test_sparse_adjacency_matches_edges_and_passes_gradients():
    ei = torch.tensor([[0, 1, 2, 0, 2], [0, 0, 1, 2, 2]])
    w = torch.rand(5, requires_grad=True)
    adj = Graph(ei, 3, edge_weight=w).sparse_adjacency()
    dense = torch.zeros(3, 3)
    dense[ei[1], ei[0]] = w.detach()
    assert torch.allclose(adj.to_dense(), dense)
    (adj @ torch.ones(3, 2)).sum().backward()
    assert torch.allclose(w.grad, torch.full((5,), 2.0))


def test_sparse_adjacency_gradients_match_dense_on_an_asymmetric_graph():
    torch.manual_seed(0)
    g = window_graph(padded_mask(6, 4), torch.randint(0, 2, (2, 6)), window_past=2, window_future=0)
    w = torch.rand(g.num_edges, requires_grad=True)
    x = torch.randn(g.num_nodes, 3, requires_grad=True)
    out = Graph(g.edge_index, g.num_nodes, edge_weight=w).sparse_adjacency() @ x
    dense = torch.zeros(g.num_nodes, g.num_nodes).index_put((g.edge_index[1], g.edge_index[0]), w)
    reference = dense @ x
    upstream = torch.randn_like(out)
    got = torch.autograd.grad(out, [w, x], upstream)
    want = torch.autograd.grad(reference, [w, x], upstream)
    assert torch.allclose(out, reference, atol=1e-6)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-5)
