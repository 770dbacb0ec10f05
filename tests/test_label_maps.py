"""Label maps across datasets: IEMOCAP-6/4, MELD-7, EmoryNLP-7, Ekman-7; cross-label-set evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from merc.data.labels import LABEL_SETS, TO_EKMAN, identify_label_set, label_map, remap_labels
from merc.errors import DataError


def test_every_known_set_maps_onto_ekman():
    for name, table in TO_EKMAN.items():
        assert set(table) == set(LABEL_SETS[name])
        assert {v for v in table.values() if v} <= set(LABEL_SETS["ekman-7"])
    assert identify_label_set(["Joy", "anger", "neutral", "sadness", "fear", "disgust", "surprise"]) == "meld-7"
    assert identify_label_set(["a", "b"]) is None


def test_meld_and_ekman_are_a_permutation():
    m = label_map(LABEL_SETS["meld-7"], LABEL_SETS["ekman-7"])
    assert m.unmapped_model == [] and m.unmapped_data == []
    probs = np.eye(7)
    shared = m.shared_probs(probs)
    assert [m.shared[k] for k in shared.argmax(1)] == list(LABEL_SETS["meld-7"])


def test_unmappable_classes_are_reported_not_merged():
    m = label_map(LABEL_SETS["emorynlp-7"], LABEL_SETS["iemocap-6"])
    assert m.unmapped_model == ["Scared", "Peaceful", "Powerful"]  # IEMOCAP-6 has no fear
    assert m.unmapped_data == ["fru"]
    assert set(m.shared) == {"anger", "joy", "neutral", "sadness"}  # fear: IEMOCAP-6 has none
    gold = m.shared_gold(np.array([0, 4, 5, -1]))  # hap, exc, fru, unlabelled
    assert gold.tolist() == [m.shared.index("joy"), m.shared.index("joy"), -1, -1]
    # a model putting mass on Peaceful: it is discarded and the rest renormalised
    probs = np.array([[0.1, 0.2, 0.0, 0.0, 0.6, 0.0, 0.1]])  # Neutral, Joyful, ..., Peaceful, ..., Sad
    shared = m.shared_probs(probs)
    assert shared.sum() == pytest.approx(1.0)
    assert shared[0, m.shared.index("joy")] == pytest.approx(0.5)


def test_iemocap6_to_4_matches_the_drkf_protocol():
    m = label_map(LABEL_SETS["iemocap-6"], LABEL_SETS["iemocap-4"])
    probs = np.eye(6)[:5]  # hap, sad, neu, ang, exc
    names = [m.shared[k] for k in m.shared_probs(probs).argmax(1)]
    assert names == ["joy", "sadness", "neutral", "anger", "joy"]


def test_unknown_sets_and_bad_maps_are_one_line_errors():
    with pytest.raises(DataError, match="--label-map"):
        label_map(["x", "y"], LABEL_SETS["meld-7"])
    with pytest.raises(DataError, match="unknown classes"):
        label_map(["x", "y"], ["p", "q"], {"x": "nope"})
    with pytest.raises(DataError, match="no class in common"):
        label_map(["x", "y"], ["p", "q"], {"x": None})
    custom = label_map(["x", "y", "z"], ["p", "q"], {"x": "q", "y": "q", "z": None})
    assert custom.shared == ("p", "q") and custom.unmapped_data == ["p"] and custom.unmapped_model == ["z"]


def _relabelled(dataset, set_name: str, table: list[int], path: Path) -> Path:
    from merc.data.formats.user_format import save_user_dataset

    save_user_dataset(remap_labels(dataset, np.array(table), LABEL_SETS[set_name]), path)
    return path


def test_evaluate_across_label_sets(tmp_path, capsys):
    from merc.cli import main
    from merc.config import DataConfig
    from merc.data.loading import load_dataset

    small = load_dataset(DataConfig(dataset="synthetic-small"))  # classes c0..c3
    train_file = _relabelled(small, "iemocap-4", [0, 1, 2, 3], tmp_path / "iemocap4.csv")  # hap ang neu sad
    assert main(["train", "--dataset", str(train_file), "--epochs", "2", "--seeds", "0", "--out",
                 str(tmp_path / "run"), "--no-progress", "-o", "model.backbone_options.hidden=16"]) == 0
    model = tmp_path / "run" / "seed_0"
    test_f1 = json.loads((model / "metrics.json").read_text())["test"]["weighted_f1"]
    capsys.readouterr()

    # the same utterances labelled in MELD-7 (hap→joy 4, ang→anger 6, neu→neutral 0, sad→sadness 3):
    # mapped automatically, every class has a counterpart, so the score is unchanged
    meld = _relabelled(small, "meld-7", [4, 6, 0, 3], tmp_path / "meld.csv")
    assert main(["evaluate", str(model), str(meld), "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["weighted_f1"] == pytest.approx(test_f1)
    assert metrics["label_map"]["via"] == "ekman-7"
    assert metrics["unscored"] == {"surprise": 0, "fear": 0, "disgust": 0}  # reported, none in this data
    assert "label map (ekman-7)" in capsys.readouterr().out

    # EmoryNLP-7 with c3 labelled Peaceful: those utterances are reported as not scored
    emory = _relabelled(small, "emorynlp-7", [1, 3, 0, 4], tmp_path / "emory.csv")
    assert main(["evaluate", str(model), str(emory), "--out", str(tmp_path / "ev2")]) == 0
    metrics = json.loads((tmp_path / "ev2" / "metrics.json").read_text())
    n_c3 = int(small.class_counts("test")[3])
    assert metrics["unscored"] == {"Scared": 0, "Peaceful": n_c3, "Powerful": 0} and n_c3 > 0
    assert metrics["n"] == int(small.class_counts("test").sum()) - n_c3
    assert "Peaceful" in capsys.readouterr().out

    # an explicit file map, and a broken one is a one-line error naming the file
    good = tmp_path / "map.json"
    good.write_text(json.dumps({"hap": "Joyful", "ang": "Mad", "neu": "Neutral", "sad": None}))
    assert main(["evaluate", str(model), str(emory), "--label-map", str(good), "--out", str(tmp_path / "ev3")]) == 0
    assert json.loads((tmp_path / "ev3" / "metrics.json").read_text())["label_map"]["unmapped_model_classes"] == ["sad"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["evaluate", str(model), str(emory), "--label-map", str(bad), "--out", str(tmp_path / "ev4")]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "Traceback" not in err
    assert not (tmp_path / "ev4").exists()
