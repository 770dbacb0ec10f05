"""``load_dataset`` and the dataset catalog."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from merc.config import DataConfig
from merc.data.fetch import fetch_dataset
from merc.data.formats import save_user_dataset
from merc.data.loading import load_dataset, open_dataset
from merc.errors import DataError, MercError
from merc.registry import DATASETS


def test_catalog_lists_named_and_synthetic_datasets() -> None:
    names = DATASETS.list()
    for name in ("meld", "emorynlp", "iemocap-pickle", "meld-pickle", "utterances", "synthetic-small",
                 "synthetic-iemocap"):
        assert name in names


def test_synthetic_preset_gets_dev_split_and_modality_subset() -> None:
    ds = load_dataset(DataConfig(dataset="synthetic-small", modalities="ta", dev_seed=4))
    assert ds.modalities == ("t", "a") and set(ds.splits) == {"train", "dev", "test"}
    assert ds.meta["dev_seed"] == 4 and ds.meta["dev_from"] == "train" and ds.meta["catalog_name"] == "synthetic-small"
    again = load_dataset(DataConfig(dataset="synthetic-small", modalities="ta", dev_seed=4))
    assert again.splits == ds.splits


def test_missing_modality_names_available_ones(tmp_path: Path) -> None:
    ds = DATASETS.create("synthetic-small").with_modalities("ta")
    save_user_dataset(ds, tmp_path / "ta.csv")
    with pytest.raises(DataError, match=r"has no modality v.*available modalities: ta"):
        load_dataset(DataConfig(dataset=str(tmp_path / "ta.csv"), modalities="tv"))
    loaded = load_dataset(DataConfig(dataset=str(tmp_path / "ta.csv"), modalities="t"))
    assert loaded.dims == {"t": ds.dims["t"]}


def test_clean_flag_reaches_validation(tmp_path: Path) -> None:
    ds = DATASETS.create("synthetic-small")
    ds.dialogues[0].features["t"][0, 0] = np.nan
    save_user_dataset(ds, tmp_path / "nan.jsonl")
    with pytest.raises(DataError, match="NaN/inf"):
        load_dataset(DataConfig(dataset=str(tmp_path / "nan.jsonl")))
    cleaned = load_dataset(DataConfig(dataset=str(tmp_path / "nan.jsonl"), clean=True))
    assert cleaned.meta["cleaning"] == ["replaced 1 NaN/inf value(s) in t features by 0"]


def test_unknown_name_and_bad_options() -> None:
    with pytest.raises(DataError, match=r"neither a catalog dataset nor an existing path.*synthetic-small"):
        open_dataset("no-such-dataset")
    with pytest.raises(MercError, match=r"unknown option\(s\) colour"):
        open_dataset("meld", options={"colour": 1})
    with pytest.raises(DataError, match="needs a file"):
        open_dataset("iemocap-pickle")


@pytest.mark.shared_data
def test_meld_by_name_text_only(shared_data: Path) -> None:
    cfg = DataConfig(dataset="meld", path=str(shared_data / "meld"))
    ds = load_dataset(cfg, require_features=False)
    assert ds.meta["dev_from"] == "official" and len(ds.splits["dev"]) == 114 and ds.modalities == ()
    with pytest.raises(DataError, match="has no features"):
        load_dataset(cfg)


@pytest.mark.shared_data
def test_meld_from_fetch_cache(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERC_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="merc data fetch meld"):
        DATASETS.create("meld")
    fetch_dataset("meld", source_dir=shared_data)
    ds = DATASETS.create("meld", labels="meld-3")
    assert ds.name == "meld-3" and ds.num_utterances == 9989 + 1109 + 2610


def test_iemocap_pickle_entry(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = [f"Ses{i}" for i in range(12)]
    speakers = {d: ["M", "F", "M"] for d in ids}
    labels = {d: [4, 5, 0] for d in ids}
    feats = {m: {d: rng.standard_normal((3, k)).astype(np.float32) for d in ids} for m, k in zip("tav", (4, 3, 2))}
    obj = {"trainVid": ids[:10], "testVid": ids[10:], "speaker": speakers, "label": labels, "text": feats["t"],
           "audio": feats["a"], "visual": feats["v"]}
    path = tmp_path / "iemocap.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    roberta = [{d: rng.standard_normal((3, 8)).astype(np.float32) for d in ids} for _ in range(4)]
    text_path = tmp_path / "iemocap_features_roberta.pkl"
    text_path.write_bytes(pickle.dumps((speakers, labels, *roberta, {d: ["a"] * 3 for d in ids}, ids[:10],
                                        ids[10:], []), protocol=2))
    cfg = DataConfig(dataset="iemocap-pickle", path=str(path), modalities="tav",
                     options={"labels": "iemocap-4", "text_path": str(text_path), "roberta": "2"})
    ds = load_dataset(cfg)
    assert ds.name == "iemocap-4" and ds.label_names == ["hap", "ang", "neu", "sad"]
    assert ds["Ses0"].labels.tolist() == [0, -1, 0] and ds.dims == {"t": 8, "a": 3, "v": 2}
    np.testing.assert_array_equal(ds["Ses0"].features["t"], roberta[1]["Ses0"])
    assert len(ds.splits["dev"]) == 1 and ds.meta["dev_seed"] == 0
    with pytest.raises(DataError, match=r"label index 5 is outside 0..2 of meld-3"):
        load_dataset(DataConfig(dataset="meld-pickle", path=str(path), options={"labels": "meld-3"}))
    with pytest.raises(DataError, match=r"looks like IEMOCAP data .*use the iemocap-pickle dataset"):
        load_dataset(DataConfig(dataset="meld-pickle", path=str(path)))
