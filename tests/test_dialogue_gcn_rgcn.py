"""DialogueGCN's vectorised basis RGCN equals PyG's RGCNConv (values, gradients, state dict)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import RGCNConv

from merc.backbones.dialogue_gcn import BasisRGCNConv
from merc.nn.graph import num_relations, window_graph


@pytest.mark.parametrize("order", ["relation", "basis", "auto"])
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


@pytest.mark.parametrize("order", ["relation", "basis"])
def test_basis_rgcn_isolated_node_gets_root_and_bias_only(order: str) -> None:
    conv = BasisRGCNConv(3, 2, 2, 1)
    conv.order = order
    x = torch.randn(2, 3)
    edge_index = torch.tensor([[0], [1]])  # 0 → 1 only; node 0 receives nothing
    out = conv(x, edge_index, torch.tensor([1]))
    assert torch.allclose(out[0], x[0] @ conv.root + conv.bias)
