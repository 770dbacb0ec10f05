"""MELD and EmoryNLP transcript CSVs: real-data counts, text repair, malformed files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from merc.data.formats import read_dataset, read_emorynlp_csvs, read_meld_csvs
from merc.data.formats.transcripts import EMORYNLP_COLUMNS, MELD_COLUMNS
from merc.errors import DataError

MELD_TEST_COUNTS = {"neutral": 1256, "joy": 402, "anger": 345, "surprise": 281, "sadness": 208, "disgust": 68,
                    "fear": 50}


@pytest.mark.shared_data
def test_meld_official_splits_and_counts(shared_data: Path) -> None:
    start = time.perf_counter()
    ds = read_meld_csvs(shared_data / "meld")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"reading MELD took {elapsed:.2f}s"
    utterances = {s: sum(len(d) for d in ds.split(s)) for s in ("train", "dev", "test")}
    assert utterances == {"train": 9989, "dev": 1109, "test": 2610}
    # DATA.md counts 1039 train dialogues (ids 0..1038); the CSV has no rows for dialogue 60.
    assert {s: len(ids) for s, ids in ds.splits.items()} == {"train": 1038, "dev": 114, "test": 280}
    assert "train_dia60" not in ds.splits["train"] and "train_dia1038" in ds.splits["train"]
    assert ds.label_names == ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
    assert dict(zip(ds.label_names, ds.class_counts("test").tolist())) == MELD_TEST_COUNTS
    assert ds.modalities == () and ds.dialogues[0].texts[0].startswith("also I was the point person")
    first = ds["train_dia1"]
    assert first.utterance_ids == ["0", "1", "2", "3", "4", "5", "8"]  # gaps kept, order by id
    assert first.meta["sentiment"].shape == (7,)


@pytest.mark.shared_data
def test_meld_sentiment_labels(shared_data: Path) -> None:
    ds = read_dataset(shared_data / "meld", labels="meld-3")
    assert ds.label_names == ["neutral", "positive", "negative"]
    assert ds.class_counts("test").tolist() == [1256, 521, 833]


@pytest.mark.shared_data
def test_emorynlp_scenes_and_speakers(shared_data: Path) -> None:
    ds = read_emorynlp_csvs(shared_data / "emorynlp")
    assert {s: len(ids) for s, ids in ds.splits.items()} == {"train": 659, "dev": 89, "test": 79}
    assert {s: sum(len(d) for d in ds.split(s)) for s in ds.splits} == {"train": 7551, "dev": 954, "test": 984}
    assert ds.label_names == ["Neutral", "Joyful", "Scared", "Mad", "Peaceful", "Powerful", "Sad"]
    assert ds["train_s1e2c1"].speakers[0] == "Monica Geller"
    assert any(" & " in s for d in ds.dialogues for s in d.speakers)  # multi-speaker lines joined
    assert ds.class_counts("test").tolist() == [288, 217, 116, 86, 111, 96, 70]


def _write_meld(folder: Path, rows: list[list[str]], columns: tuple[str, ...] = MELD_COLUMNS,
                encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    import csv
    import io

    for split in ("train", "test"):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(rows)
        (folder / f"{split}_sent_emo.csv").write_bytes(buffer.getvalue().encode(encoding))
    return folder


ROWS = [["it\x92s fine", "Joey", "joy", "positive", "0", "1"],
        ["You mustâ€™ve had", "Ross", "neutral", "neutral", "0", "0"],
        ["Hi", "Rachel", "anger", "negative", "3", "0"]]


def test_meld_mojibake_repaired_and_rows_ordered(tmp_path: Path) -> None:
    ds = read_meld_csvs(_write_meld(tmp_path / "m", ROWS))
    d0 = ds["train_dia0"]
    assert d0.texts == ["You must’ve had", "it’s fine"] and d0.speakers == ["Ross", "Joey"]
    np.testing.assert_array_equal(d0.labels, [0, 4])
    assert ds.splits == {"train": ["train_dia0", "train_dia3"], "test": ["test_dia0", "test_dia3"]}


def test_meld_cp1252_file_falls_back(tmp_path: Path) -> None:
    rows = [["café ’ok’", "Joey", "joy", "positive", "0", "0"]]
    ds = read_meld_csvs(_write_meld(tmp_path / "m", rows, encoding="cp1252"))
    assert ds["train_dia0"].texts == ["café ’ok’"]


@pytest.mark.parametrize("rows, columns, pattern", [
    ([["x", "Joey", "happy", "positive", "0", "0"]], MELD_COLUMNS,
     r"train_sent_emo\.csv \[Emotion\]: unknown label 'happy' at line 2; valid labels: neutral, surprise"),
    ([["x", "Joey", "joy", "positive", "zero", "0"]], MELD_COLUMNS,
     r"\[Dialogue_ID\]: 'zero' at line 2 is not an integer"),
    ([["x", "joy", "positive", "0", "0"]], tuple(c for c in MELD_COLUMNS if c != "Speaker"),
     r"missing column\(s\) Speaker"),
    ([["x", "", "joy", "positive", "0", "0"]], MELD_COLUMNS, r"empty Speaker at line 2"),
    ([["x", "Joey", "joy", "positive", "0", "0"], ["y", "Joey", "joy", "positive", "0", "0"]], MELD_COLUMNS,
     r"repeats an utterance id"),
])
def test_malformed_meld(tmp_path: Path, rows, columns, pattern) -> None:
    with pytest.raises(DataError, match=pattern) as info:
        read_meld_csvs(_write_meld(tmp_path / "m", rows, columns))
    assert "\n" not in str(info.value)


def test_missing_meld_folder_points_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="merc data fetch meld"):
        read_meld_csvs(tmp_path / "nothing")


def test_emorynlp_speaker_list_is_not_evaluated(tmp_path: Path) -> None:
    folder = tmp_path / "e"
    folder.mkdir()
    header = ",".join(EMORYNLP_COLUMNS)
    good = "Hi,\"['Monica Geller', 'Ross Geller']\",Joyful,1,1,1,2\n"
    (folder / "emorynlp_test_final.csv").write_text(header + "\n" + good)
    (folder / "emorynlp_train_final.csv").write_text(header + "\n" + good)
    ds = read_dataset(folder)
    assert ds["train_s1e2c1"].speakers == ["Monica Geller & Ross Geller"]
    evil = "Hi,\"[__import__('os').system('touch x')]\",Joyful,1,1,1,2\n"
    (folder / "emorynlp_train_final.csv").write_text(header + "\n" + evil)
    with pytest.raises(DataError, match=r"\[Speaker\]: cannot parse speaker list"):
        read_emorynlp_csvs(folder)


@pytest.mark.shared_data
def test_single_csv_path_reads_its_folder(shared_data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "meld"
    shutil.copytree(shared_data / "meld", copy)
    ds = read_dataset(copy / "test_sent_emo.csv")
    assert ds.meta["format"] == "meld-csv" and len(ds.splits["test"]) == 280
