"""``merc datasets`` and ``merc data fetch`` end to end through ``merc.cli.main``."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from merc.cli import main
from merc.data import fetch
from merc.data.formats import save_user_dataset
from merc.registry import DATASETS


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_datasets_lists_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["datasets"], capsys)
    assert code == 0
    assert "meld" in out and "meld-7" in out and "official train/dev/test" in out and "synthetic-small" in out
    assert "tuple-pickle" in out and "utterances" in out
    code, out, _ = run(["datasets", "--json"], capsys)
    listing = json.loads(out)
    assert code == 0 and listing["datasets"]["emorynlp"]["labels"] == "emorynlp-7"
    assert "dict-pickle" in listing["formats"]


@pytest.mark.shared_data
def test_inspect_meld_counts(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["datasets", "inspect", "meld", "--path", str(shared_data / "meld")], capsys)
    assert code == 0
    assert "utterances 13708" in out and "none (transcripts only)" in out
    test_row = next(line for line in out.splitlines() if line.strip().startswith("test"))
    assert test_row.split()[1:] == ["280", "2610", "1256", "281", "50", "208", "402", "68", "345"]
    code, out, _ = run(["datasets", "inspect", "meld", "--path", str(shared_data / "meld"), "--json",
                        "--option", "labels=meld-3"], capsys)
    info = json.loads(out)
    assert info["splits"]["dev"]["utterances"] == 1109 and info["splits"]["test"]["classes"]["positive"] == 521


def test_inspect_synthetic_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["datasets", "inspect", "synthetic-small", "--json", "--dev-seed", "3"], capsys)
    info = json.loads(out)
    assert code == 0 and info["dims"] == {"t": 32, "a": 24, "v": 16} and info["dev_seed"] == 3
    assert set(info["splits"]) == {"train", "dev", "test"} and info["speakers"] == 2


def _bad_pickle(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=4)


def _dict(**override: object) -> dict:
    ids = ["a", "b"]
    base = {"trainVid": ["a"], "testVid": ["b"], "speaker": {d: ["M", "F"] for d in ids},
            "label": {d: [0, 1] for d in ids}, "text": {d: np.zeros((2, 3), np.float32) for d in ids}}
    base.update(override)
    return base


def _malformed(tmp_path: Path, kind: str) -> Path:
    """One malformed input per kind; returns its path."""
    if kind == "mismatched dims":
        path, data = tmp_path / "x.pkl", _bad_pickle(_dict(text={"a": np.zeros((2, 3)), "b": np.zeros((2, 4))}))
    elif kind == "ragged arrays":
        ragged = {"a": [np.zeros(3), np.zeros(2)], "b": np.zeros((2, 3))}
        path, data = tmp_path / "x.pkl", _bad_pickle(_dict(text=ragged))
    elif kind == "wrong types":
        path, data = tmp_path / "x.pkl", _bad_pickle(_dict(label={"a": ["hap", "sad"], "b": [0, 1]}))
    elif kind == "empty dialogue":
        path, data = tmp_path / "x.pkl", _bad_pickle(_dict(speaker={"a": [], "b": ["M", "F"]}))
    elif kind == "disallowed global":
        path, data = tmp_path / "x.pkl", b"cos\nsystem\n(S'true'\ntR."
    elif kind == "truncated pickle":
        path, data = tmp_path / "x.pkl", _bad_pickle(_dict())[:60]
    elif kind == "unknown label":
        path, data = tmp_path / "x.csv", b"dialogue_id,speaker,label\nd,A,joy\nd,B,glee\n"
    elif kind == "missing column":
        path, data = tmp_path / "x.csv", b"dialogue_id,text\nd,hi\n"
    elif kind == "NaN features":
        ds = DATASETS.create("synthetic-small")
        ds.dialogues[2].features["a"][0, 0] = np.nan
        return save_user_dataset(ds, tmp_path / "x.csv")[0]
    else:  # pragma: no cover
        raise AssertionError(kind)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind, message", [
    ("mismatched dims", "features of dim 4, others 3"), ("ragged arrays", "ragged feature vectors"),
    ("wrong types", "labels must be integers"), ("empty dialogue", "is empty"),
    ("disallowed global", "refusing global"), ("truncated pickle", "truncated or corrupted"),
    ("unknown label", "unknown label 'glee' at line 3; valid labels: neutral"),
    ("missing column", "missing column(s) speaker"),
    ("NaN features", "NaN/inf value(s) in a features"),
])
def test_malformed_inputs_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str,
                                               message: str) -> None:
    path = _malformed(tmp_path, kind)
    extra = ["--option", "labels=meld-7"] if kind == "unknown label" else []  # a known label order
    code, out, err = run(["datasets", "inspect", str(path), *extra], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err and path.name in err


def test_inspect_clean_reports_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _malformed(tmp_path, "NaN features")
    code, out, _ = run(["datasets", "inspect", str(path), "--clean"], capsys)
    assert code == 0 and "cleaned: replaced 1 NaN/inf value(s) in a features by 0" in out


@pytest.mark.shared_data
def test_fetch_from_local_copy_verifies(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "fetch", "meld", "--from", str(shared_data / "meld"), "--to", str(tmp_path)], capsys)
    assert code == 0 and "3 files verified" in out
    target = tmp_path / "meld"
    assert sorted(p.name for p in target.iterdir()) == sorted(fetch.REMOTE_DATASETS["meld"].files)
    for name, digest in fetch.REMOTE_DATASETS["meld"].files.items():
        assert fetch.sha256_of(target / name) == digest
    code, out, _ = run(["data", "fetch", "emorynlp", "--from", str(shared_data), "--to", str(tmp_path)], capsys)
    assert code == 0 and (tmp_path / "emorynlp" / "emorynlp_dev_final.csv").is_file()


@pytest.mark.shared_data
def test_corrupted_copy_fails_and_leaves_nothing(shared_data: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "src"
    shutil.copytree(shared_data / "meld", source)
    with open(source / "test_sent_emo.csv", "ab") as fh:
        fh.write(b"tampered\n")
    dest = tmp_path / "dest"
    code, out, err = run(["data", "fetch", "meld", "--from", str(source), "--to", str(dest)], capsys)
    assert code == 2 and "checksum mismatch" in err and "test_sent_emo.csv" in err and err.count("\n") == 1
    assert not (dest / "meld").exists() and (not dest.exists() or not any(dest.iterdir()))


@pytest.mark.shared_data
def test_download_path_with_file_urls(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    spec = fetch.REMOTE_DATASETS["emorynlp"]
    monkeypatch.setitem(fetch.REMOTE_DATASETS, "emorynlp",
                        fetch.RemoteDataset("emorynlp", (shared_data / "emorynlp").as_uri(), spec.files, spec.licence))
    monkeypatch.setenv("MERC_DATA_DIR", str(tmp_path))
    code, out, _ = run(["data", "fetch", "emorynlp"], capsys)
    assert code == 0 and "downloaded from file://" in out
    assert (tmp_path / "emorynlp" / "emorynlp_test_final.csv").is_file()
    broken = fetch.RemoteDataset("emorynlp", (tmp_path / "nowhere").as_uri(), spec.files, spec.licence)
    monkeypatch.setitem(fetch.REMOTE_DATASETS, "emorynlp", broken)
    code, _, err = run(["data", "fetch", "emorynlp", "--to", str(tmp_path / "other"), "--force"], capsys)
    assert code == 2 and "download failed" in err and not (tmp_path / "other" / "emorynlp").exists()


def test_fetch_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["data", "fetch", "iemocap"])
    assert info.value.code == 2
    code, _, err = run(["data", "fetch", "meld", "--from", str(tmp_path), "--to", str(tmp_path / "d")], capsys)
    assert code == 2 and "lacks train_sent_emo.csv" in err
    assert run(["data"], capsys)[0] == 2
