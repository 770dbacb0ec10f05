"""DialogueGCN's graph layers: where the edge attention enters (authors' ``GraphNetwork``:
the relational layer, then an unweighted GraphConv, no non-linearity) and the older variant."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from merc.config import DataConfig, ExperimentConfig, ModelConfig, resolve_model_options
from merc.errors import ConfigError
from merc.registry import BACKBONES
from merc.training.model_dir import CONFIG, build_from, load_model_dir, save_model_dir

OPTIONS = {"context_hidden": 4, "graph_hidden": 6, "classifier_hidden": 6, "num_bases": 2,
           "window_past": 2, "window_future": 1, "rnn_layers": 1, "dropout": 0.0}


def _record_calls(model: torch.nn.Module) -> dict[str, tuple]:
    calls: dict[str, tuple] = {}
    for name in ("rgcn", "gconv"):
        def hook(module, args, kwargs, output, name=name):  # type: ignore[no-untyped-def]
            calls[name] = (args, kwargs, output)
        getattr(model, name).register_forward_hook(hook, with_kwargs=True)
    return calls


def _run(layer: str) -> tuple[dict[str, tuple], torch.Tensor]:
    torch.manual_seed(0)
    model = BACKBONES.create("dialogue_gcn", input_dims={"t": 5}, num_classes=3, num_speakers=2,
                             edge_attention_layer=layer, **OPTIONS).eval()
    calls = _record_calls(model)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    out = model({"t": torch.randn(2, 6, 5)}, mask, torch.randint(0, 2, (2, 6)))
    return calls, out.extras["edge_attention"]


def _edge_weight(args: tuple, kwargs: dict, position: int) -> torch.Tensor | None:
    return args[position] if len(args) > position else kwargs.get("edge_weight")


def test_default_weights_the_relational_layer_then_plain_graphconv() -> None:
    calls, alpha = _run("rgcn")
    rgcn_args, rgcn_kwargs, rgcn_out = calls["rgcn"]
    gconv_args, gconv_kwargs, _ = calls["gconv"]
    torch.testing.assert_close(_edge_weight(rgcn_args, rgcn_kwargs, 3), alpha)  # α scales RGCN messages
    assert _edge_weight(gconv_args, gconv_kwargs, 2) is None  # GraphConv unweighted
    assert torch.equal(gconv_args[0], rgcn_out)  # no non-linearity in between
    assert bool((rgcn_out < 0).any())


def test_graphconv_variant_keeps_the_earlier_wiring() -> None:
    calls, alpha = _run("graphconv")
    rgcn_args, rgcn_kwargs, rgcn_out = calls["rgcn"]
    gconv_args, gconv_kwargs, _ = calls["gconv"]
    assert _edge_weight(rgcn_args, rgcn_kwargs, 3) is None
    torch.testing.assert_close(_edge_weight(gconv_args, gconv_kwargs, 2), alpha)
    assert torch.equal(gconv_args[0], torch.relu(rgcn_out))


def test_unknown_edge_attention_layer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="edge_attention_layer must be one of rgcn, graphconv"):
        BACKBONES.create("dialogue_gcn", input_dims={"t": 5}, num_classes=3, edge_attention_layer="both")


def test_model_dir_saved_before_the_options_reloads_as_the_earlier_variant(tmp_path: Path) -> None:
    model = resolve_model_options(ModelConfig(method="none", backbone="dialogue_gcn", backbone_options=OPTIONS))
    assert model.backbone_options["edge_attention_layer"] == "rgcn"  # the bundled defaults
    assert model.backbone_options["nodal_scores"] == "tanh"
    architecture = {"input_dims": {"t": 5}, "num_classes": 3, "num_speakers": 2}
    config = ExperimentConfig(data=DataConfig(dataset="test", modalities="t"), model=model)
    assert load_model_dir(save_model_dir(tmp_path / "new", build_from(config, architecture), config, list("abc"), {})
                          ).method.backbone.edge_attention_layer == "rgcn"
    # a directory written until 2026-12-01: the earlier model, its config without the two keys
    earlier = {**model.backbone_options, "edge_attention_layer": "graphconv", "nodal_scores": "bilinear"}
    config = ExperimentConfig(data=config.data, model=ModelConfig("none", "dialogue_gcn", earlier))
    out = save_model_dir(tmp_path / "old", build_from(config, architecture), config, list("abc"), {})
    raw = yaml.safe_load((out / CONFIG).read_text())
    for key in ("edge_attention_layer", "nodal_scores"):
        del raw["experiment"]["model"]["backbone_options"][key]
    (out / CONFIG).write_text(yaml.safe_dump(raw))
    bundle = load_model_dir(out)
    assert (bundle.method.backbone.edge_attention_layer, bundle.method.backbone.nodal_scores) == ("graphconv", "bilinear")
    assert bundle.config.model.backbone_options["edge_attention_layer"] == "graphconv"


def test_tanh_nodal_attention_matches_the_authors_general2_attention() -> None:
    # MatchingAttention(att_type='general2'): α = softmax(tanh((W x_i + b)·M_j) · mask), re-masked
    # and renormalised, pooled over M; written here for one padded batch without vectorisation
    from merc.backbones.dialogue_gcn import nodal_attention

    torch.manual_seed(0)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    h = 3.0 * torch.randn(int(mask.sum()), 5, dtype=torch.float64)
    query = torch.nn.Linear(5, 5).double()
    got = nodal_attention(h, mask, query, bounded=True)
    expected, start = [], 0
    for length in mask.sum(1).tolist():
        M = torch.zeros(4, 5, dtype=torch.float64)
        M[:length] = h[start:start + length]
        m = torch.zeros(4, dtype=torch.float64)
        m[:length] = 1
        for i in range(length):
            alpha = torch.softmax(torch.tanh((query(M[i]) @ (M * m[:, None]).T) * m), dim=0) * m
            expected.append((alpha / alpha.sum()) @ M)
        start += length
    torch.testing.assert_close(got, torch.stack(expected))
    unbounded = nodal_attention(h, mask, query, bounded=False)
    assert not torch.allclose(unbounded, got)
