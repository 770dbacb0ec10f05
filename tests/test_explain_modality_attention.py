"""The ``modality_attention`` report of DRKF explanations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from merc.errors import MercError
from merc.explain import REPORTERS, merge_explanations
from merc.explain.modality_attention import summarize_modality_attention, write_modality_attention_report


def explanation() -> dict:
    attention = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.8, 0.1]])
    per = {"dialogue_id": np.array(["d0", "d0", "d1", "d1"], dtype=object), "position": np.array([0, 1, 0, 1]),
           "label": np.array([0, 1, 0, -1]), "probs": np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5]]),
           "attention": attention, "attention_layers": np.stack([attention, attention], axis=1),
           "dominant": np.array(["a", "t", "a", "t"])}
    half = lambda sl: {"per_utterance": {k: v[sl] for k, v in per.items()}, "info": {"parts": ["a", "t", "special"]}}  # noqa: E731
    return merge_explanations([half(slice(0, 2)), half(slice(2, 4))])


def test_summary_values() -> None:
    s = summarize_modality_attention(explanation(), ["x", "y"])
    np.testing.assert_allclose(s["mean_attention"], [0.35, 0.55, 0.1])
    np.testing.assert_allclose(s["per_class_attention"], [[0.55, 0.35, 0.1], [0.2, 0.7, 0.1]])
    assert s["audio_dominant_share"] == pytest.approx(0.5)
    np.testing.assert_allclose(s["audio_dominant_share_per_class"], [1.0, 0.0])
    assert s["accuracy"] == pytest.approx(2 / 3)  # row 2 wrong; unlabelled row ignored
    assert s["per_layer_attention"].shape == (2, 3)


def test_report_files(tmp_path: Path) -> None:
    assert REPORTERS["modality_attention"] is write_modality_attention_report
    write_modality_attention_report(explanation(), ["x", "y"], tmp_path, plots=True)
    rows = list(csv.DictReader((tmp_path / "modality_attention.csv").open()))
    assert len(rows) == 4 and rows[1]["dominant"] == "t" and rows[3]["label"] == "" and rows[2]["predicted"] == "y"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["parts"] == ["a", "t", "special"]
    assert (tmp_path / "modality_attention.png").stat().st_size > 0


def test_incomplete_explanation_is_refused() -> None:
    with pytest.raises(MercError, match="attention"):
        summarize_modality_attention({"per_utterance": {"label": np.zeros(1)}, "info": {}}, ["x"])
