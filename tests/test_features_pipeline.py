"""``extract_features`` and ``merc features``: raw conversations → user-format datasets."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from merc.cli import main
from merc.commands.features import parse_extractor_options
from merc.data.formats.user_format import read_user_dataset
from merc.data.schema import Dialogue, DialogueDataset
from merc.errors import ConfigError, DataError
from merc.features import build_extractors, extract_features


def test_build_extractors_checks_modalities() -> None:
    ext = build_extractors({"t": "wordllama", "a": {"name": "librosa", "options": {"n_mfcc": 13}}})
    assert ext["a"].dim == 4 * (2 * 13 + 26) + 1
    assert ext["a"].spec == {"name": "librosa", "options": {"n_mfcc": 13}}
    with pytest.raises(ConfigError, match="reads audio, not text"):
        build_extractors({"t": "librosa"})
    with pytest.raises(ConfigError, match="modality"):
        build_extractors({"x": "minilm"})


def test_missing_raw_inputs_name_the_field() -> None:
    ds = DialogueDataset("nodata", [Dialogue("d", ["A"], texts=["hi"])], ["x"], source="talk.csv")
    with pytest.raises(DataError, match=r"talk.csv \[audio\].*no audio"):
        extract_features(ds, build_extractors({"a": "librosa"}), use_cache=False, progress=False)


def test_extractor_option_parsing() -> None:
    assert parse_extractor_options(["t.model=all-mpnet-base-v2", "audio.n_mfcc=13"]) == {
        "t": {"model": "all-mpnet-base-v2"}, "a": {"n_mfcc": 13}}
    with pytest.raises(ConfigError, match="t.KEY=VALUE"):
        parse_extractor_options(["model=x"])


def test_merc_features_writes_user_format_with_cache(tmp_path: Path, capsys) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    for i, phrase in enumerate(["hello there", "go away"]):
        subprocess.run(["espeak-ng", "-w", str(tmp_path / f"u{i}.wav"), phrase], check=True, capture_output=True)
    table = tmp_path / "talk.csv"
    table.write_text("dialogue_id,speaker,text,audio,label,split\n"
                     "d1,A,hello there,u0.wav,joy,train\nd1,B,go away,u1.wav,anger,train\n", encoding="utf-8")
    out = tmp_path / "out" / "talk_features.csv"
    args = ["features", str(table), "--text", "minilm", "--audio", "librosa", "--audio-level", "frame",
            "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    assert "0 chunk(s) reused, 2 extracted" in capsys.readouterr().out
    data = read_user_dataset(out)
    assert data.dims == {"t": 384, "a": 66}
    assert [s.shape[1] for s in data.dialogues[0].sequences["a"]] == [66, 66]
    assert data.meta["extractors"]["a"]["level"] == "frame" and data.meta["extractors"]["t"]["name"] == "minilm"
    assert data.dialogues[0].texts == ["hello there", "go away"]
    assert main(args) == 0
    assert "2 chunk(s) reused, 0 extracted" in capsys.readouterr().out
    np.testing.assert_array_equal(read_user_dataset(out).dialogues[0].features["a"], data.dialogues[0].features["a"])


def test_merc_features_errors_are_one_line(tmp_path: Path, capsys) -> None:
    table = tmp_path / "talk.csv"
    table.write_text("dialogue_id,speaker,text\nd1,A,hello\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    assert main(["features", str(table), "--audio", "librosa", "--out", str(out), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "audio" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["features", str(table), "--out", str(out)]) == 2
    assert "choose at least one extractor" in capsys.readouterr().err
