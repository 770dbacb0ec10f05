"""Dataset validation, cleaning, dev splits and label sets."""

from __future__ import annotations

import numpy as np
import pytest

from merc.data.labels import LABEL_SETS, encode_labels, to_iemocap4
from merc.data.schema import Dialogue, DialogueDataset
from merc.data.splits import ensure_dev_split
from merc.data.validate import validate_dataset
from merc.errors import DataError


def toy(n_dialogues: int = 10, dims: dict[str, int] | None = None, seed: int = 0) -> DialogueDataset:
    rng = np.random.default_rng(seed)
    dims = {"t": 4, "a": 3} if dims is None else dims
    dialogues = [Dialogue(f"d{i}", ["A", "B", "A"], {m: rng.standard_normal((3, d)) for m, d in dims.items()},
                          rng.integers(0, 3, 3), ["x", "y", "z"]) for i in range(n_dialogues)]
    ids = [d.id for d in dialogues]
    return DialogueDataset("toy", dialogues, ["a", "b", "c"], {"train": ids[:-2], "test": ids[-2:]}, "toy.pkl")


def test_valid_dataset_report() -> None:
    report = validate_dataset(toy())
    assert report.dialogues == 10 and report.utterances == 30 and report.dims == {"t": 4, "a": 3}
    assert report.changes == []


def _broken(mutate) -> DialogueDataset:  # noqa: ANN001
    ds = toy()
    mutate(ds)
    return ds


@pytest.mark.parametrize("mutate, pattern", [
    (lambda ds: ds.dialogues[3].features.__setitem__("t", np.zeros((3, 5), np.float32)), r"dim 5, others 4"),
    (lambda ds: ds.dialogues[3].features.__setitem__("t", np.zeros((2, 4), np.float32)), r"2 features\[t\] for 3"),
    (lambda ds: ds.dialogues[3].features.pop("a"), r"differs in modalities \(a\)"),
    (lambda ds: setattr(ds.dialogues[2], "labels", np.array([0, 3, 1])), r"label 3 outside 0..2"),
    (lambda ds: setattr(ds.dialogues[2], "labels", np.array([0, -2, 1])), r"label -2 outside"),
    (lambda ds: setattr(ds.dialogues[2], "labels", np.array([0, 1])), r"2 labels for 3 utterances"),
    (lambda ds: setattr(ds.dialogues[2], "texts", ["x"]), r"1 texts for 3"),
    (lambda ds: setattr(ds.dialogues[2], "speakers", ["A", " ", "B"]), r"blank speaker"),
    (lambda ds: ds.dialogues[1].meta.__setitem__("k", np.zeros(4)), r"meta\[k\]"),
    (lambda ds: ds.splits["test"].append("ghost"), r"unknown dialogue 'ghost'"),
    (lambda ds: ds.splits["test"].append("d0"), r"'d0' is in both 'train' and 'test'"),
])
def test_inconsistencies_are_one_line_errors(mutate, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern) as info:
        validate_dataset(_broken(mutate))
    assert str(info.value).startswith("toy.pkl") and "\n" not in str(info.value)


def test_empty_dialogue_and_empty_dataset_refused() -> None:
    ds = toy()
    ds.dialogues[0] = Dialogue("d0", [], {"t": np.zeros((0, 4)), "a": np.zeros((0, 3))}, np.zeros(0), [])
    with pytest.raises(DataError, match="'d0' is empty"):
        validate_dataset(ds)
    with pytest.raises(DataError, match="holds no dialogues"):
        validate_dataset(DialogueDataset("e", [], ["a"], {}, "e.csv"))


def test_nan_refused_unless_cleaning_opted_in() -> None:
    ds = toy()
    ds.dialogues[4].features["a"][1, 2] = np.nan
    ds.dialogues[5].features["a"][0, 0] = np.inf
    with pytest.raises(DataError, match=r"1 NaN/inf value\(s\) in a features.*data.clean=true"):
        validate_dataset(ds)
    report = validate_dataset(ds, clean=True)
    assert report.cleaned == {"a": 2} and report.changes == ["replaced 2 NaN/inf value(s) in a features by 0"]
    assert np.isfinite(ds.dialogues[4].features["a"]).all() and ds.dialogues[4].features["a"][1, 2] == 0
    assert validate_dataset(ds).changes == []


def test_features_required_unless_transcripts_allowed() -> None:
    ds = toy(dims={})
    with pytest.raises(DataError, match="has no features"):
        validate_dataset(ds)
    assert validate_dataset(ds, require_features=False).dims == {}


def test_dev_split_carved_with_recorded_seed() -> None:
    ds = toy(n_dialogues=22)
    a, b, c = ensure_dev_split(ds, 0.1, seed=5), ensure_dev_split(ds, 0.1, seed=5), ensure_dev_split(ds, 0.1, seed=6)
    assert a.splits == b.splits and a.splits["dev"] != c.splits["dev"]
    assert len(a.splits["dev"]) == 2 and len(a.splits["train"]) == 18 and a.splits["test"] == ds.splits["test"]
    assert set(a.splits["dev"]).isdisjoint(a.splits["train"])
    assert a.meta == {"dev_from": "train", "dev_fraction": 0.1, "dev_seed": 5}
    assert "dev" not in ds.splits  # the input is untouched
    official = ensure_dev_split(a, 0.5, seed=0)
    assert official.splits == a.splits
    with pytest.raises(DataError, match="at least 2 train dialogues"):
        ensure_dev_split(toy(n_dialogues=3).subset(["d0", "d2"]))


def test_label_orders_match_data_md() -> None:
    assert LABEL_SETS["iemocap-6"] == ("hap", "sad", "neu", "ang", "exc", "fru")
    assert LABEL_SETS["meld-7"] == ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
    assert LABEL_SETS["meld-3"] == ("neutral", "positive", "negative")
    assert LABEL_SETS["emorynlp-7"] == ("Neutral", "Joyful", "Scared", "Mad", "Peaceful", "Powerful", "Sad")
    np.testing.assert_array_equal(encode_labels(["joy", "Anger", "neutral"], LABEL_SETS["meld-7"], "f", "Emotion"),
                                  [4, 6, 0])
    with pytest.raises(DataError, match=r"f \[Emotion\]: unknown label 'happy' at line 12; valid labels: neutral"):
        encode_labels(["joy", "happy"], LABEL_SETS["meld-7"], "f", "Emotion", lines=[11, 12])


def test_iemocap4_merges_hap_exc_and_drops_fru() -> None:
    ds = DialogueDataset("i", [Dialogue("x", ["M"] * 6, {}, np.arange(6))], list(LABEL_SETS["iemocap-6"]),
                         {"train": ["x"]})
    four = to_iemocap4(ds)
    assert four.label_names == ["hap", "ang", "neu", "sad"]
    assert four["x"].labels.tolist() == [0, 3, 2, 1, 0, -1]
    with pytest.raises(DataError, match="needs IEMOCAP-6"):
        to_iemocap4(four)
