"""DialogueGCN's vectorised basis RGCN equals PyG's RGCNConv (values, gradients, state dict)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import RGCNConv

from merc.backbones.dialogue_gcn import BasisRGCNConv
from merc.nn.graph import num_relations, window_graph


@pytest.mark.parametrize("order", ["weight", "relation", "basis", "auto"])
def test_basis_rgcn_matches_pyg_rgcnconv(order: str) -> None:
    torch.manual_seed(0)
    mask = torch.ones(4, 9, dtype=torch.bool)
    mask[1, 6:] = False
    mask[3, 2:] = False
    speakers = torch.randint(0, 3, (4, 9))
    graph = window_graph(mask, speakers, 3, 1, 3)
    x = torch.randn(int(mask.sum()), 10, dtype=torch.float64)
    ref = RGCNConv(10, 6, num_relations(3), num_bases=4).double()
    new = BasisRGCNConv(10, 6, num_relations(3), 4).double()
    new.order = order
    assert set(new.state_dict()) == set(ref.state_dict())
    new.load_state_dict(ref.state_dict())  # same names and shapes: checkpoints are interchangeable
    a, b = ref(x, graph.edge_index, graph.edge_type), new(x, graph.edge_index, graph.edge_type)
    assert torch.allclose(a, b, atol=1e-12)
    (a ** 2).sum().backward()
    (b ** 2).sum().backward()
    for p, q in zip(ref.parameters(), new.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-10)


@pytest.mark.parametrize("order", ["weight", "relation", "basis"])
def test_basis_rgcn_isolated_node_gets_root_and_bias_only(order: str) -> None:
    conv = BasisRGCNConv(3, 2, 2, 1)
    conv.order = order
    x = torch.randn(2, 3)
    edge_index = torch.tensor([[0], [1]])  # 0 → 1 only; node 0 receives nothing
    out = conv(x, edge_index, torch.tensor([1]))
    assert torch.allclose(out[0], x[0] @ conv.root + conv.bias)


def _graph_and_features(seed: int = 1):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[2, 4:] = False
    graph = window_graph(mask, torch.randint(0, 2, (3, 7)), 2, 2, 2)
    x = torch.randn(graph.num_nodes, 5, dtype=torch.float64)
    weight = torch.rand(graph.num_edges, dtype=torch.float64)
    return graph, x, weight


@pytest.mark.parametrize("order", ["weight", "relation", "basis"])
def test_weighted_basis_rgcn_matches_hand_computation(order: str) -> None:
    # h_i = x_i W_root + b + Σ_r 1/|N_r(i)| Σ_{j ∈ N_r(i)} w_ji x_j W_r, written edge by edge
    graph, x, weight = _graph_and_features()
    conv = BasisRGCNConv(5, 4, num_relations(2), 3).double()
    conv.order = order
    w_r = torch.einsum("rb,bio->rio", conv.comp, conv.weight)
    source, target = graph.edge_index.tolist()
    types = graph.edge_type.tolist()
    count: dict[tuple[int, int], int] = {}
    for t, r in zip(target, types):
        count[(t, r)] = count.get((t, r), 0) + 1
    expected = x @ conv.root + conv.bias
    for e, (s, t, r) in enumerate(zip(source, target, types)):
        expected[t] = expected[t] + weight[e] / count[(t, r)] * (x[s] @ w_r[r])
    got = conv(x, graph.edge_index, graph.edge_type, weight)
    torch.testing.assert_close(got, expected)
    # the weights are differentiable (DialogueGCN learns them through its edge attention)
    w = weight.clone().requires_grad_(True)
    conv(x, graph.edge_index, graph.edge_type, w).sum().backward()
    assert w.grad is not None and bool((w.grad != 0).any())


@pytest.mark.parametrize("order", ["weight", "relation", "basis"])
def test_unit_edge_weights_still_match_pyg_rgcnconv(order: str) -> None:
    graph, x, _ = _graph_and_features(2)
    ref = RGCNConv(5, 4, num_relations(2), num_bases=3).double()
    new = BasisRGCNConv(5, 4, num_relations(2), 3).double()
    new.order = order
    new.load_state_dict(ref.state_dict())
    ones = torch.ones(graph.num_edges, dtype=torch.float64)
    torch.testing.assert_close(new(x, graph.edge_index, graph.edge_type, ones),
                               ref(x, graph.edge_index, graph.edge_type))


def test_dense_edge_scores_equal_the_per_edge_dot_products() -> None:
    from merc.backbones.base import unflatten_valid, valid_index
    from merc.backbones.dialogue_gcn import edge_scores
    from merc.nn.graph import window_graph

    torch.manual_seed(0)
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([7, 3, 5]).unsqueeze(1)
    speakers = torch.randint(0, 2, (3, 7))
    graph = window_graph(mask, speakers, 2, 1, 2)
    index = valid_index(mask)
    g = torch.randn(int(mask.sum()), 4, dtype=torch.float64, requires_grad=True)
    weight = torch.nn.Linear(4, 4, bias=False).double()
    source, target = graph.edge_index
    expected = torch.stack([g[t] @ weight.weight.T @ g[s] for s, t in zip(source.tolist(), target.tolist())])
    assert 3 * 7 * 7 <= 16 * graph.num_edges  # this graph takes the dense path
    got = edge_scores(weight, g, unflatten_valid(g, mask, index), mask, index, graph.edge_index)
    torch.testing.assert_close(got, expected)
    (grad,) = torch.autograd.grad(got.square().sum(), g)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), g)
    torch.testing.assert_close(grad, expected_grad)
