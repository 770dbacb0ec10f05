"""Contract tests over every registered backbone (shapes, gradients, padding, order, subsets)."""

from __future__ import annotations

import pytest
import torch

from merc.backbones.base import Backbone
from merc.config import bundled_defaults
from merc.registry import BACKBONES

DIMS = {"t": 12, "a": 10, "v": 6}
C = 5
# Small widths keep the tests fast; every other option comes from the bundled defaults.
SMALL: dict[str, dict] = {
    "late_fusion": {"hidden": 16, "heads": 2},
    "mmgcn": {"hidden": 16, "graph_hidden": 16, "layers": 2},
    "mm_dfn": {"hidden": 16, "graph_hidden": 16, "layers": 2, "rnn_layers": 1},
    "dialogue_gcn": {"context_hidden": 8, "graph_hidden": 16, "classifier_hidden": 16, "num_bases": 4,
                     "window_past": 2, "window_future": 2},
    "bc_lstm": {"hidden": 8, "dense": 8},
}
SPEAKER_AWARE = {"late_fusion", "mmgcn", "mm_dfn", "dialogue_gcn"}
NAMES = BACKBONES.list()


def make(name: str, modalities: str = "tav", seed: int = 0, **extra) -> Backbone:
    torch.manual_seed(seed)
    options = {**bundled_defaults("backbones", name), **SMALL.get(name, {}), **extra}
    return BACKBONES.create(name, input_dims={m: DIMS[m] for m in modalities}, num_classes=C, num_speakers=2,
                            **options)


def dialogue(length: int, seed: int, modalities: str = "tav") -> tuple[dict, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(length, DIMS[m], generator=g) for m in modalities}
    speakers = torch.randint(0, 2, (length,), generator=g)
    speakers[0] = 0
    return feats, speakers


def batch(dialogues: list[tuple[dict, torch.Tensor]]) -> tuple[dict, torch.Tensor, torch.Tensor]:
    L = max(s.shape[0] for _, s in dialogues)
    B = len(dialogues)
    mods = list(dialogues[0][0])
    mask = torch.zeros(B, L, dtype=torch.bool)
    speakers = torch.zeros(B, L, dtype=torch.long)
    feats = {m: torch.zeros(B, L, dialogues[0][0][m].shape[1]) for m in mods}
    for b, (f, s) in enumerate(dialogues):
        n = s.shape[0]
        mask[b, :n] = True
        speakers[b, :n] = s
        for m in mods:
            feats[m][b, :n] = f[m]
    return feats, mask, speakers


def test_every_graph_backbone_is_registered():
    assert {"late_fusion", "mmgcn", "dialogue_gcn", "mm_dfn", "bc_lstm"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_bundled_defaults_build(name):
    model = BACKBONES.create(name, input_dims=dict(DIMS), num_classes=C, num_speakers=2,
                             **bundled_defaults("backbones", name))
    assert isinstance(model, Backbone)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_gradients_and_finiteness(name):
    model = make(name)
    feats, mask, speakers = batch([dialogue(7, 1), dialogue(4, 2), dialogue(6, 3)])
    out = model(feats, mask, speakers)
    N = int(mask.sum())
    assert out.logits.shape == (N, C)
    assert set(out.modality_logits) == set(DIMS)
    assert all(v.shape == (N, C) for v in out.modality_logits.values())
    assert out.representation.shape[0] == N and out.representation.dim() == 2
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.representation).all()
    labels = torch.randint(0, C, (N,), generator=torch.Generator().manual_seed(0))
    loss = torch.nn.functional.cross_entropy(out.logits, labels)
    loss = loss + sum(torch.nn.functional.cross_entropy(v, labels) for v in out.modality_logits.values())
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} received no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name):
    model = make(name).eval()
    short = dialogue(5, 11)
    alone = model(*batch([short]))
    with_longer = model(*batch([short, dialogue(9, 12)]))
    assert torch.allclose(alone.logits, with_longer.logits[:5], atol=1e-5)
    assert torch.allclose(alone.representation, with_longer.representation[:5], atol=1e-5)
    for m, v in alone.modality_logits.items():
        assert torch.allclose(v, with_longer.modality_logits[m][:5], atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_batch_order_invariance(name):
    model = make(name).eval()
    d = [dialogue(6, 21), dialogue(3, 22), dialogue(8, 23)]
    out = model(*batch(d)).logits
    permuted = model(*batch([d[2], d[0], d[1]])).logits
    rows = torch.split(out, [6, 3, 8])
    assert torch.allclose(permuted, torch.cat([rows[2], rows[0], rows[1]]), atol=1e-5)


@pytest.mark.parametrize("modalities", ["t", "a", "ta", "tav"])
@pytest.mark.parametrize("name", NAMES)
def test_modality_subsets(name, modalities):
    model = make(name, modalities)
    feats, mask, speakers = batch([dialogue(5, 31, modalities), dialogue(3, 32, modalities)])
    out = model(feats, mask, speakers)
    assert out.logits.shape == (8, C)
    assert set(out.modality_logits) <= set(modalities)
    assert torch.isfinite(out.logits).all()
    out.logits.sum().backward()


@pytest.mark.parametrize("name", sorted(SPEAKER_AWARE & set(NAMES)))
def test_speaker_information_is_used(name):
    model = make(name).eval()
    feats, _ = dialogue(8, 41)
    # a different partition of the utterances into parties (not a mere relabelling, to which
    # party-level encoders are rightly invariant)
    one = model(*batch([(feats, torch.zeros(8, dtype=torch.long))])).logits
    other = model(*batch([(feats, torch.arange(8) % 2)])).logits
    assert not torch.allclose(one, other, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_thousand_utterance_dialogue_trains_a_step(name):
    model = make(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    feats, mask, speakers = batch([dialogue(1000, 51)])
    out = model(feats, mask, speakers)
    loss = torch.nn.functional.cross_entropy(out.logits, torch.randint(0, C, (1000,)))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", NAMES)
def test_eval_fast_paths_match_the_reference_computation(name, monkeypatch):
    """Inference shortcuts (padded RNNs, per-dialogue graph blocks) give the same outputs."""
    from merc.nn.graph import multimodal_graph
    from merc.nn.sequence import run_packed

    model = make(name).eval()
    inputs = batch([dialogue(7, 71), dialogue(3, 72), dialogue(5, 73)])
    fast = model(*inputs)

    def edge_list_adjacency(features, mask, cross_modal_weight=1.0):
        adjacency = multimodal_graph(features, mask, cross_modal_weight).sparse_adjacency()
        adjacency.index = mask.reshape(-1).nonzero().squeeze(1)
        adjacency.num_utterances = int(mask.sum())
        return adjacency

    monkeypatch.setattr("merc.nn.sequence.run_padded", run_packed)
    monkeypatch.setattr("merc.backbones.mmgcn.multimodal_adjacency", edge_list_adjacency)
    slow = model(*inputs)
    assert torch.allclose(fast.logits, slow.logits, atol=1e-5)
    assert torch.allclose(fast.representation, slow.representation, atol=1e-5)


def test_mmgcn_speaker_context_feeds_speakers_to_the_context_rnn():
    from merc.errors import ConfigError

    feats, mask, speakers = batch([dialogue(8, 81)])
    plain, aware = make("mmgcn").eval(), make("mmgcn", speaker_context=True).eval()
    assert torch.allclose(plain(feats, mask, speakers).logits, make("mmgcn").eval()(feats, mask, speakers).logits)
    assert not torch.allclose(plain(feats, mask, speakers).logits, aware(feats, mask, speakers).logits, atol=1e-6)
    # only the bi-LSTM's input changes: same parameters
    assert [n for n, _ in plain.named_parameters()] == [n for n, _ in aware.named_parameters()]
    with pytest.raises(ConfigError):
        make("mmgcn", speaker_context=True, use_speaker=False)


def test_mm_dfn_memory_switch_changes_the_model():
    with_memory = make("mm_dfn")
    without = make("mm_dfn", memory=False)
    assert sum(p.numel() for p in with_memory.parameters()) > sum(p.numel() for p in without.parameters())


def test_dialogue_gcn_edge_attention_sums_to_one_per_window():
    model = make("dialogue_gcn").eval()
    feats, mask, speakers = batch([dialogue(6, 61), dialogue(4, 62)])
    alpha = model(feats, mask, speakers).extras["edge_attention"]
    from merc.nn.graph import window_graph

    graph = window_graph(mask, speakers, 2, 2, 2)
    sums = torch.zeros(graph.num_nodes).index_add(0, graph.edge_index[1], alpha)
    assert torch.allclose(sums, torch.ones(graph.num_nodes), atol=1e-6)


@pytest.mark.parametrize("name, bad", [("mmgcn", {"layers": 0}), ("mmgcn", {"rnn": "cnn"}),
                                       ("mm_dfn", {"speaker_weights": {"x": 1.0}}),
                                       ("mm_dfn", {"context_modalities": "tz"}),
                                       ("dialogue_gcn", {"num_bases": 0}),
                                       ("bc_lstm", {"cell": "rnn"}), ("bc_lstm", {"fusion": "concat"}),
                                       ("bc_lstm", {"dense": 0})])
def test_bad_options_raise_config_errors(name, bad):
    from merc.errors import ConfigError

    with pytest.raises(ConfigError):
        make(name, **bad)


def test_bc_lstm_fusion_and_cells():
    feats, mask, speakers = batch([dialogue(6, 91), dialogue(4, 92)])
    hier = make("bc_lstm").eval()
    out = hier(feats, mask, speakers)
    # hierarchical: the joint head reads a second contextual RNN, not the sum of modality logits
    assert out.representation.shape == (10, 8)
    assert not torch.allclose(out.logits, sum(out.modality_logits.values()), atol=1e-6)
    summed = make("bc_lstm", fusion="sum").eval()(feats, mask, speakers)
    assert torch.allclose(summed.logits, sum(summed.modality_logits.values()), atol=1e-6)
    assert summed.representation.shape == (10, 24)
    # one modality: the joint logits are that modality's (the unimodal bc-LSTM)
    text = make("bc_lstm", modalities="t").eval()
    single = text({"t": feats["t"]}, mask, speakers)
    assert torch.allclose(single.logits, single.modality_logits["t"])
    gru = make("bc_lstm", cell="gru", layers=2)
    assert isinstance(gru.blocks["t"].rnn.rnn, torch.nn.GRU) and gru.blocks["t"].rnn.rnn.num_layers == 2
