"""Micro-benchmark of DialogueGCN's relational convolution: PyG RGCNConv vs both evaluation orders of
``merc.backbones.dialogue_gcn.BasisRGCNConv`` (forward + backward, one thread).

Run: ``python benchmarks/bench_rgcn.py`` (from the repository root); see docs/benchmarks.md.
"""

from __future__ import annotations

import time

import torch
from torch_geometric.nn import RGCNConv

from merc.backbones.dialogue_gcn import BasisRGCNConv
from merc.nn.graph import num_relations, window_graph


def bench(nd: int, L: int, S: int, I: int = 200, O: int = 100, B: int = 30) -> None:
    """Time one layer on `nd` dialogues of `L` utterances among `S` speakers (window 10/10)."""
    mask = torch.ones(nd, L, dtype=torch.bool)
    speakers = torch.randint(0, S, (nd, L))
    g = window_graph(mask, speakers, 10, 10, S)
    R = num_relations(S)
    x = torch.randn(int(mask.sum()), I, requires_grad=True)
    res = {}
    for name in ["pyg", "relation", "basis", "auto"]:
        m = RGCNConv(I, O, R, num_bases=B) if name == "pyg" else BasisRGCNConv(I, O, R, B)
        if name != "pyg":
            m.order = name
        for _ in range(2):
            m(x, g.edge_index, g.edge_type).sum().backward()
        t, n = time.perf_counter(), 5
        for _ in range(n):
            m(x, g.edge_index, g.edge_type).sum().backward()
        res[name] = (time.perf_counter() - t) / n * 1000
    print(f"dialogues={nd} len={L} speakers={S} R={R} E={g.edge_index.shape[1]}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in res.items()))


if __name__ == "__main__":
    torch.set_num_threads(1)
    bench(16, 49, 2)  # IEMOCAP-like
    bench(16, 10, 9)  # MELD-like
    bench(16, 10, 4)
    bench(1, 1000, 2)
