"""Reusable layers: sparse per-dialogue graph builders, deep GCN stacks, masked RNN encoders."""

from merc.nn.deep_gcn import AdjacencyGCN2Conv, DeepGCNII
from merc.nn.graph import (BlockAdjacency, Graph, SparseAdjacency, angular_similarity, multimodal_adjacency,
                           multimodal_graph, node_index, num_relations, symmetric_normalize, window_graph)
from merc.nn.sequence import MaskedRNN, PartyRNN

__all__ = ["AdjacencyGCN2Conv", "BlockAdjacency", "DeepGCNII", "Graph", "MaskedRNN", "PartyRNN", "SparseAdjacency",
           "angular_similarity", "multimodal_adjacency", "multimodal_graph", "node_index", "num_relations", "symmetric_normalize",
           "window_graph"]
