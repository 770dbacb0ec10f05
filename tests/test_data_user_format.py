"""Our user format (.csv/.jsonl utterance table + .npz features): exact round trips and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from merc.data.formats import read_dataset, read_user_dataset, save_user_dataset
from merc.data.schema import Dialogue, DialogueDataset
from merc.errors import DataError


def rich_dataset(tmp_path: Path) -> DialogueDataset:
    rng = np.random.default_rng(0)
    dialogues = []
    for k, n in enumerate((3, 5, 2, 4)):
        dialogues.append(Dialogue(
            f"conv, {k}", [("Ann", "Bob \"B\"", "Cé")[i % 3] for i in range(n)],
            {"t": rng.standard_normal((n, 6)).astype(np.float32), "a": rng.standard_normal((n, 3)).astype(np.float32)},
            rng.integers(-1, 4, n), [f"line {i}, with \"quotes\"\nand newline" for i in range(n)],
            [f"u{i}" for i in range(n)],
            {"interaction": rng.integers(0, 4, n), "scale": rng.random(n).astype(np.float32), "note": {"k": k}},
            {"a": [rng.standard_normal((int(t), 2)).astype(np.float32) for t in rng.integers(1, 5, n)]},
            {"a": [str(tmp_path / f"clip{k}_{i}.wav") for i in range(n)], "v": ["/abs/video.mp4"] * n}))
    dialogues.append(Dialogue("no labels", ["Ann"],
                              {"t": np.zeros((1, 6), np.float32), "a": np.ones((1, 3), np.float32)},
                              None, None, None, {"interaction": np.array([1]), "scale": np.array([0.5], np.float32)},
                              {"a": [np.zeros((2, 2), np.float32)]}, {"a": [""], "v": [""]}))
    return DialogueDataset("rich", dialogues, ["w", "x", "y", "z"],
                           {"train": ["conv, 2", "conv, 0", "no labels"], "dev": ["conv, 1"], "test": ["conv, 3"]},
                           "memory", {"dev_seed": 3, "note": "kept"})


def assert_same(a: DialogueDataset, b: DialogueDataset) -> None:
    assert a.name == b.name and a.label_names == b.label_names and a.splits == b.splits and a.meta == b.meta
    assert [d.id for d in a.dialogues] == [d.id for d in b.dialogues]
    for x, y in zip(a.dialogues, b.dialogues):
        assert x.speakers == y.speakers and x.utterance_ids == y.utterance_ids and x.texts == y.texts
        assert (x.labels is None) == (y.labels is None)
        if x.labels is not None:
            np.testing.assert_array_equal(x.labels, y.labels)
        assert x.features.keys() == y.features.keys()
        for m in x.features:
            assert y.features[m].dtype == np.float32
            np.testing.assert_array_equal(x.features[m], y.features[m])
        assert x.meta.keys() == y.meta.keys()
        for k, v in x.meta.items():
            if isinstance(v, np.ndarray):
                assert y.meta[k].dtype == v.dtype
                np.testing.assert_array_equal(v, y.meta[k])
            else:
                assert v == y.meta[k]
        assert x.sequences.keys() == y.sequences.keys()
        for m in x.sequences:
            for s, t in zip(x.sequences[m], y.sequences[m]):
                np.testing.assert_array_equal(s, t)
        assert x.media == y.media


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    original = rich_dataset(tmp_path)
    table, npz = save_user_dataset(original, tmp_path / f"conversations{suffix}")
    assert table.is_file() and npz == tmp_path / "conversations.npz" and npz.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    loaded = read_dataset(table)
    assert_same(original, loaded)
    # written again, byte-identical
    save_user_dataset(loaded, tmp_path / f"again{suffix}")
    assert (tmp_path / f"again{suffix}").read_bytes() == table.read_bytes()


def test_round_trip_synthetic_preset(tmp_path: Path) -> None:
    from merc.registry import DATASETS

    original = DATASETS.create("synthetic-small")
    save_user_dataset(original, tmp_path / "synth.csv")
    assert_same(original, read_user_dataset(tmp_path / "synth.csv"))


def test_text_only_csv_without_features(tmp_path: Path) -> None:
    path = tmp_path / "chat.csv"
    path.write_text("dialogue_id,speaker,text,label,split,audio\n"
                    "d1,Ann,hello,joy,train,a/1.wav\n"
                    "d1,Bob,hi,,train,a/2.wav\n"
                    "d2,Ann,bye,anger,test,\n")
    ds = read_dataset(path)
    assert ds.meta["format"] == "utterances" and ds.modalities == ()
    assert ds.label_names == ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]  # known set
    np.testing.assert_array_equal(ds["d1"].labels, [4, -1])
    assert ds["d1"].utterance_ids == ["0", "1"] and ds.splits == {"train": ["d1"], "test": ["d2"]}
    assert ds["d1"].media["a"] == [str(tmp_path / "a/1.wav"), str(tmp_path / "a/2.wav")]
    custom = read_user_dataset(path, labels="joy,anger")
    assert custom.label_names == ["joy", "anger"] and custom["d2"].labels.tolist() == [1]


def test_jsonl_without_split_is_all_train(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    rows = [{"dialogue_id": 7, "speaker": "A", "text": "x", "label": "calm"},
            {"dialogue_id": 7, "speaker": "B", "text": "y", "label": "tense"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = read_dataset(path)
    assert ds.splits == {"train": ["7"]} and ds.label_names == ["calm", "tense"]


@pytest.mark.parametrize("content, pattern", [
    ("dialogue_id,text\nd1,hi\n", r"missing column\(s\) speaker"),
    ("dialogue_id,speaker\nd1,\n", r"empty speaker at line 2"),
    ("dialogue_id,speaker,split\nd1,A,train\nd1,B,test\n", r"several splits"),
    ("dialogue_id,speaker,split\nd1,A,valid\n", r"unknown split 'valid'"),
    ("dialogue_id,speaker\n", r"holds no utterances"),
])
def test_malformed_tables(tmp_path: Path, content: str, pattern: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=pattern) as info:
        read_dataset(path)
    assert "bad.csv" in str(info.value) and "\n" not in str(info.value)


def test_unknown_label_names_file_line_and_valid_labels(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("dialogue_id,speaker,label\nd1,A,joy\nd1,B,glee\n")
    with pytest.raises(DataError, match=r"bad\.csv \[label\]: unknown label 'glee' at line 3; valid labels: joy, sad"):
        read_user_dataset(path, labels=["joy", "sad"])


def test_feature_rows_must_match_table(tmp_path: Path) -> None:
    path = tmp_path / "chat.csv"
    path.write_text("dialogue_id,speaker\nd1,A\nd1,B\n")
    np.savez(tmp_path / "chat.npz", features__t=np.zeros((3, 4), np.float32))
    with pytest.raises(DataError, match=r"chat\.npz \[features__t\]: has 3 feature rows for 2 utterances"):
        read_dataset(path)
    np.savez(tmp_path / "chat.npz", features__t=np.zeros((2, 4, 2), np.float32))
    with pytest.raises(DataError, match=r"shape \(2, 4, 2\)"):
        read_dataset(path)
    (tmp_path / "chat.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        read_dataset(path)


def test_jsonl_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"dialogue_id": "a", "speaker": "x"}\n{not json}\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        read_dataset(path)
    path.write_text('{"dialogue_id": "a"}\n')
    with pytest.raises(DataError, match=r"\[speaker\]: line 1 lacks 'speaker'"):
        read_dataset(path)
