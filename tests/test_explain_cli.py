"""End to end: ``merc train --method dnr`` (both stages, one model directory) then ``merc explain``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from merc.cli import main

TINY = ["-o", "model.backbone_options.hidden=16", "--no-progress", "--epochs", "1", "--seeds", "0"]
TINY_DNR = [*TINY, "-o", "model.method_options.dim=16", "-o", "model.method_options.divide_max_epochs=2"]


@pytest.fixture(scope="module")
def dnr_run(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("dnr") / "run"
    assert main(["train", "--dataset", "synthetic-small", "--method", "dnr", "--backbone", "late_fusion",
                 "--out", str(out), "--explain", *TINY_DNR]) == 0
    assert (out / "explanations" / "summary.json").is_file()  # merc train --explain
    return out / "seed_0"


def test_model_dir_holds_decomposer_and_backbone(dnr_run) -> None:  # type: ignore[no-untyped-def]
    from safetensors.numpy import load_file

    state = load_file(str(dnr_run / "model.safetensors"))
    assert any(k.startswith("decomposer.branches.t.") for k in state)
    assert any(k.startswith("backbone.") for k in state)
    assert bool(state["divided"])  # the Divide stage ran and the reloaded decomposer stays frozen
    from merc.training.model_dir import load_model_dir

    method = load_model_dir(dnr_run).method
    assert not any(p.requires_grad for p in method.decomposer.parameters())


def test_explain_writes_tables_and_figures(dnr_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ex"
    assert main(["explain", str(dnr_run), "--split", "test", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "planted interaction" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["component_names"]) == 9
    assert np.asarray(summary["pairwise_kl"]).shape == (9, 9)
    assert 0.0 <= summary["interaction_agreement"]["top_component"] <= 1.0
    assert 0.0 <= summary["interaction_agreement"]["top_kind_ablation"] <= 1.0
    assert 0.0 <= summary["carrier_agreement"]["top_modality"] <= 1.0 and "planted one" in printed
    assert np.asarray(summary["per_class_kind_kl"]).shape[1] == 3
    assert "kind_kl[R]" in (out / "per_utterance.csv").read_text().splitlines()[0]
    table = (out / "per_utterance.csv").read_text()
    assert ",unique" in table and ",redundant" in table  # planted kinds by name, not integer codes
    assert "`per_utterance.csv`" in (out / "data_dictionary.md").read_text()
    assert (out / "interactions" / "pattern_confusion.png").is_file()  # every method gets the interactions
    # both attributions compared with the planted truth: zero-ablation and on-distribution Shapley
    assert "on-distribution Shapley" in printed and "Shapley over modalities" in printed
    assert 0.0 <= summary["interaction_agreement_shapley"]["top_kind"] <= 1.0
    assert summary["shapley_kind_names"] == ["U", "R", "S", "X"]
    assert "shapley[X]" in (out / "per_utterance.csv").read_text().splitlines()[0]
    assert (out / "per_class_kind_sensitivity.csv").is_file()
    for name in ("per_utterance.csv", "sensitivity_by_class.png", "modality_dominance.png", "pairwise_kl.png"):
        assert (out / name).is_file()
    n = summary["num_utterances"]
    assert (out / "per_utterance.csv").read_text().count("\n") == n + 1


def test_explain_plain_backbone_gets_the_interaction_explanation(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "plain"
    assert main(["train", "--dataset", "synthetic-small", "--method", "none", "--out", str(run), *TINY]) == 0
    capsys.readouterr()
    out = tmp_path / "ex"
    assert main(["explain", str(run / "seed_0"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "modality-interaction explanation" in printed and "matches the planted kind" in printed
    assert "weighted F1 by available modalities: tav" in printed
    assert not (out / "summary.json").exists()  # no method explanation for a plain backbone
    header = (out / "interactions" / "per_utterance.csv").read_text().splitlines()[0].split(",")
    assert {"pattern", "planted_kind", "v[none]", "dividend[tav]", "shapley[t]"} <= set(header)
    assert "`per_utterance.csv`" in (out / "interactions" / "data_dictionary.md").read_text()
    assert "`missing_modality.csv`" in (out / "data_dictionary.md").read_text()
    for name in ("pattern_confusion.png", "pattern_by_class.png", "mean_dividends.png"):
        assert (out / "interactions" / name).is_file()
    assert len((out / "missing_modality.csv").read_text().splitlines()) == 1 + 8
    ev = tmp_path / "ev"
    assert main(["evaluate", str(run / "seed_0"), "--missing-modality", "--out", str(ev)]) == 0
    assert "weighted F1 by available modalities" in capsys.readouterr().out
    assert (ev / "missing_modality.png").is_file()
    dictionary = (ev / "data_dictionary.md").read_text()
    assert "`predictions.csv`" in dictionary and "`missing_modality.csv`" in dictionary


def test_explain_bad_model_dir(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["explain", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error:")

