"""Explanation statistics (hand-checked) and the components report's files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from merc.explain import REPORTERS, merge_explanations
from merc.explain.components import (fisher_ratio, interaction_agreement, modality_dominance, modality_shares,
                                     pairwise_symmetric_kl, per_class_mean, probe_accuracy, top_component_kinds)

NAMES = ["t:U", "t:R", "t:S", "a:U", "a:R", "a:S"]


def test_pairwise_symmetric_kl_hand_value() -> None:
    c = np.zeros((1, 2, 2))
    c[0, 1] = [np.log(3.0), 0.0]  # softmax → (3/4, 1/4) vs uniform (1/2, 1/2)
    p, q = np.array([0.5, 0.5]), np.array([0.75, 0.25])
    expected = (p * np.log(p / q)).sum() + (q * np.log(q / p)).sum()
    got = pairwise_symmetric_kl(c, tau=1.0)
    assert got[0, 1] == pytest.approx(expected) and got[1, 0] == pytest.approx(expected)
    assert got[0, 0] == pytest.approx(0.0, abs=1e-12)
    # τ → larger makes distributions flatter and the divergence smaller
    assert pairwise_symmetric_kl(c, tau=4.0)[0, 1] < expected


def test_per_class_mean_and_dominance() -> None:
    kl = np.array([[1, 0, 0, 3, 0, 0], [0, 2, 0, 0, 0, 2], [5, 0, 0, 0, 0, 0], [9, 9, 9, 9, 9, 9]], float)
    labels = np.array([0, 0, 1, -1])
    means = per_class_mean(kl, labels, 3)
    np.testing.assert_allclose(means[0], [0.5, 1, 0, 1.5, 0, 1])
    np.testing.assert_allclose(means[1], kl[2])
    assert np.isnan(means[2]).all()  # no utterance of class 2; the unlabelled row is ignored
    shares = modality_shares(kl, NAMES, ["t", "a"])
    np.testing.assert_allclose(shares[:3], [[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    dom = modality_dominance(kl, labels, NAMES, ["t", "a"], 3)
    np.testing.assert_allclose(dom[0], [0.375, 0.625])
    np.testing.assert_allclose(dom[1], [1.0, 0.0])


def test_fisher_ratio_and_probe() -> None:
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    y = np.array([0, 0, 1, 1])
    # μ = 6, μ0 = 1, μ1 = 11: S_B = 2·25 + 2·25 = 100, S_W = 4 · 1 = 4
    assert fisher_ratio(x, y) == pytest.approx(25.0)
    assert np.isnan(fisher_ratio(x, np.zeros(4, int)))
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    separable = rng.normal(size=(90, 4)) + 5 * np.eye(3, 4)[labels]
    assert probe_accuracy(separable, labels) > 0.9
    assert probe_accuracy(rng.normal(size=(90, 4)), labels) < 0.6


def test_interaction_agreement() -> None:
    kl = np.array([[5, 0, 0, 0, 0, 0],  # top t:U, planted unique → match
                   [0, 0, 0, 0, 5, 0],  # top a:R, planted synergy → miss
                   [0, 0, 1, 0, 0, 3],  # top a:S, planted synergy → match
                   [1, 0, 0, 0, 0, 0]], float)  # planted "none" → skipped
    assert list(top_component_kinds(kl, NAMES)) == ["U", "R", "S", "U"]
    got = interaction_agreement(kl, NAMES, np.array([0, 2, 2, 3]))
    assert got["n"] == 3 and got["top_component"] == pytest.approx(2 / 3)
    assert got["majority_baseline"] == pytest.approx(2 / 3)  # two of the three kept are synergy
    assert got["planted_shares"] == pytest.approx({"U": 1 / 3, "R": 0.0, "S": 2 / 3})
    assert got["top_shares"] == pytest.approx({"U": 1 / 3, "R": 1 / 3, "S": 1 / 3})
    assert got["confusion"]["S"] == pytest.approx({"U": 0.0, "R": 0.5, "S": 0.5})
    assert "R" not in got["confusion"]
    assert "top_kind_ablation" not in got
    # kind-wide removals: the second utterance's synergy shows only when S leaves every modality
    kind_kl = np.array([[4, 1, 0], [0, 1, 6], [1, 0, 2], [9, 9, 9]], float)
    got = interaction_agreement(kl, NAMES, np.array([0, 2, 2, 3]), kind_kl)
    assert got["top_kind_ablation"] == pytest.approx(1.0)
    assert got["top_kind_ablation_shares"] == pytest.approx({"U": 1 / 3, "R": 0.0, "S": 2 / 3})
    assert got["confusion_kind_ablation"]["S"] == pytest.approx({"U": 0.0, "R": 0.0, "S": 1.0})
    assert got["top_component"] == pytest.approx(2 / 3)  # the single-component figures are unchanged


def fake_explanation(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    labels[0] = -1
    probs = rng.dirichlet(np.ones(3), n)
    return {"per_utterance": {
        "dialogue_id": np.asarray([f"d{i // 4}" for i in range(n)], dtype=object), "position": np.arange(n) % 4,
        "label": labels, "probs": probs, "kl": rng.random((n, 6)),
        "gold_drop": np.where(labels[:, None] >= 0, rng.normal(size=(n, 6)), np.nan),
        "components": rng.normal(size=(n, 6, 5)) + labels[:, None, None], "meta:interaction": np.arange(n) % 4},
        "info": {"component_names": NAMES, "modalities": ["t", "a"], "explain_tau": 1.0}}


def test_merge_keeps_order() -> None:
    a, b = fake_explanation(8, 0), fake_explanation(4, 1)
    merged = merge_explanations([a, b])["per_utterance"]
    np.testing.assert_array_equal(merged["kl"], np.concatenate([a["per_utterance"]["kl"], b["per_utterance"]["kl"]]))
    assert merged["dialogue_id"].shape == (12,)


def test_components_report_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ex = fake_explanation(36)
    summary = REPORTERS["components"](ex, ["joy", "sad", "neu"], tmp_path)
    expected = {"per_utterance.csv", "per_class_sensitivity.csv", "per_class_gold_drop.csv", "pairwise_kl.csv",
                "modality_dominance.csv", "component_quality.csv", "summary.json", "sensitivity_by_class.png",
                "gold_drop_by_class.png", "pairwise_kl.png", "modality_dominance.png", "sensitivity.png",
                "fisher_ratio.png", "probe_accuracy.png"}
    assert expected <= {p.name for p in tmp_path.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    rows = (tmp_path / "per_utterance.csv").read_text().splitlines()
    assert len(rows) == 37 and rows[0].startswith("dialogue_id,position,label,predicted")
    assert rows[1].split(",")[2] == ""  # unlabelled utterance
    assert [r.split(",")[2] for r in rows[2:5]] == ["sad", "neu", "joy"]  # label = index % 3
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["component_names"] == NAMES and on_disk["num_labelled"] == 35
    assert len(on_disk["per_class_kl"]) == 3 and on_disk["interaction_agreement"]["n"] == 27
    assert summary["figures"]
    assert (tmp_path / "sensitivity_by_class.png").read_bytes()[:4] == b"\x89PNG"


def test_carrier_agreement() -> None:
    from merc.explain.components import carrier_agreement

    kl = np.array([[5, 0, 0, 0, 0, 0],   # top modality t; unique, carrier t → match
                   [0, 0, 0, 1, 2, 0],   # top a; unique, carrier t → miss
                   [0, 0, 0, 3, 0, 0],   # top a; unique, carrier a → match
                   [9, 0, 0, 0, 0, 0],   # synergy → skipped
                   [9, 0, 0, 0, 0, 0]], float)  # "unique" with two carriers → skipped
    got = carrier_agreement(kl, NAMES, ["t", "a"], np.array([0, 0, 0, 2, 0]), np.array([1, 1, 2, 3, 3]))
    assert got["n"] == 3 and got["top_modality"] == pytest.approx(2 / 3)
    assert got["chance"] == pytest.approx(2 / 3)  # t carries two of the three
    # a carrier outside the explained modalities (visual, bit 4) is skipped
    assert carrier_agreement(kl, NAMES, ["t", "a"], np.zeros(5), np.full(5, 4))["n"] == 0
