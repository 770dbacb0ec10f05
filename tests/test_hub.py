"""Hugging Face style model directories (save_pretrained / from_pretrained, model card,
feature spec) and the bundled ready model ``meld-text`` behind ``merc.pipeline``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import merc
from merc.cli import main
from merc.config import DataConfig, ExperimentConfig, ModelConfig, TrainerConfig
from merc.data.formats.user_format import save_user_dataset
from merc.data.loading import load_dataset
from merc.data.schema import Dialogue, DialogueDataset
from merc.errors import DataError, MercError
from merc.hub import load_pretrained
from merc.inference import Predictor
from merc.training.engine import train_run

MELD_LABELS = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DialogueDataset]:
    """A merc train model directory (config.yaml + labels.json + ...) on synthetic features."""
    config = ExperimentConfig(data=DataConfig(dataset="synthetic-small", modalities="ta", batch_size=8),
                              model=ModelConfig(backbone="late_fusion", backbone_options={"hidden": 16}),
                              trainer=TrainerConfig(max_epochs=1, patience=0, progress=False))
    data = load_dataset(config.data)
    out = tmp_path_factory.mktemp("synthetic") / "seed_0"
    train_run(config, 0, data, out)
    return out, data.subset(data.splits["test"], name="synthetic-test")


def probabilities(rows: list[dict]) -> np.ndarray:
    return np.array([list(r["probabilities"].values()) for r in rows])


def test_save_pretrained_round_trip_gives_identical_predictions(synthetic_model, tmp_path: Path) -> None:
    model_dir, test = synthetic_model
    legacy = Predictor.from_dir(model_dir)
    before = legacy.predict(test)
    hf_dir = legacy.save_pretrained(tmp_path / "hf", card={"dataset": "synthetic-small", "licence": "Apache-2.0"})
    assert sorted(p.name for p in hf_dir.iterdir()) == ["README.md", "config.json", "model.safetensors", "stand_in.safetensors"]
    config = json.loads((hf_dir / "config.json").read_text())
    assert config["model_type"] == "merc" and config["labels"] == legacy.label_names
    assert config["architecture"]["input_dims"] == legacy.input_dims

    loaded = Predictor.from_pretrained(hf_dir)
    after = loaded.predict(test)
    assert [r["label"] for r in after] == [r["label"] for r in before]
    np.testing.assert_array_equal(probabilities(after), probabilities(before))
    # a re-save of a loaded model keeps its card facts; the old layout still loads through from_pretrained
    loaded.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text())["card"]["licence"] == "Apache-2.0"
    np.testing.assert_array_equal(probabilities(Predictor.from_pretrained(model_dir).predict(test)), probabilities(before))

    card = (hf_dir / "README.md").read_text()
    for section in ("## Labels", "## Training data", "## Metrics (%)", "## Feature spec", "licence of the data: Apache-2.0"):
        assert section in card


def test_pretrained_directory_errors_are_one_line(synthetic_model, tmp_path: Path) -> None:
    model_dir, _ = synthetic_model
    hf_dir = Predictor.from_dir(model_dir).save_pretrained(tmp_path / "hf")
    (hf_dir / "model.safetensors").unlink()
    with pytest.raises(MercError, match="incomplete model directory") as exc:
        load_pretrained(hf_dir)
    assert "\n" not in str(exc.value)
    with pytest.raises(MercError, match="meld-text"):
        load_pretrained(tmp_path / "nowhere")
    with pytest.raises(MercError, match="Hugging Face Hub"):  # a repo id while HF_HUB_OFFLINE=1
        load_pretrained("someone/not-cached-merc-model")


class FakeHub:
    """Stands in for ``huggingface_hub.HfApi`` + ``snapshot_download``: keeps what was uploaded."""

    def __init__(self, root: Path, fail: Exception | None = None) -> None:
        self.root, self.fail, self.calls = root, fail, []

    def api(self, token: str | None = None) -> "FakeHub":
        self.calls.append(("token", token))
        return self

    def create_repo(self, repo_id: str, private: bool = False, exist_ok: bool = False) -> None:
        self.calls.append(("create_repo", repo_id, private, exist_ok))
        if self.fail is not None:
            raise self.fail

    def upload_folder(self, repo_id: str, folder_path: str, commit_message: str) -> object:
        import shutil

        self.calls.append(("upload_folder", repo_id, commit_message))
        shutil.copytree(folder_path, self.root / repo_id)
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    def snapshot_download(self, repo_id: str, revision: str | None = None) -> str:
        self.calls.append(("snapshot_download", repo_id, revision))
        if not (self.root / repo_id).is_dir():
            raise FileNotFoundError(repo_id)
        return str(self.root / repo_id)


def test_push_to_hub_uploads_a_model_directory_that_loads_back(synthetic_model, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    model_dir, test = synthetic_model
    hub = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    predictor = Predictor.from_dir(model_dir)
    url = predictor.push_to_hub("someone/merc-synthetic", private=True, token="hf_x",
                                card={"dataset": "synthetic-small", "licence": "Apache-2.0"})
    assert url == "https://huggingface.co/someone/merc-synthetic/commit/abc"
    assert hub.calls[:3] == [("token", "hf_x"), ("create_repo", "someone/merc-synthetic", True, True),
                             ("upload_folder", "someone/merc-synthetic", "Upload merc model")]
    uploaded = tmp_path / "hub" / "someone" / "merc-synthetic"
    assert {"README.md", "config.json", "model.safetensors"} <= {p.name for p in uploaded.iterdir()}
    assert "licence of the data: Apache-2.0" in (uploaded / "README.md").read_text()
    loaded = Predictor.from_pretrained("someone/merc-synthetic", revision="main")
    assert hub.calls[-1] == ("snapshot_download", "someone/merc-synthetic", "main")
    np.testing.assert_array_equal(probabilities(loaded.predict(test)), probabilities(predictor.predict(test)))


def test_push_to_hub_failures_are_one_line(synthetic_model, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    model_dir, _ = synthetic_model
    predictor = Predictor.from_dir(model_dir)
    hub = FakeHub(tmp_path / "hub", fail=OSError("401 Client Error: Unauthorized for url\nmore detail"))
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api)
    with pytest.raises(MercError, match=r"cannot upload to 'someone/repo' \(OSError: 401 Client Error.*huggingface-cli login") as exc:
        predictor.push_to_hub("someone/repo")
    assert "\n" not in str(exc.value)
    with pytest.raises(MercError, match="not a Hub repository id"):
        predictor.push_to_hub("just-a-name")
    assert not (tmp_path / "hub").exists()


def test_bundled_model_card_and_config() -> None:
    bundle = load_pretrained("meld-text")
    assert bundle.label_names == MELD_LABELS and bundle.architecture["input_dims"] == {"t": 384}
    root = bundle.path
    config = json.loads((root / "config.json").read_text())
    spec = config["feature_spec"]["t"]
    assert spec["name"] == "minilm" and spec["dim"] == 384 and spec["settings"]["pooling"] == "model"
    assert config["card"]["licence"] == "GPL-3.0" and len(config["card"]["seeds"]) >= 3
    card = (root / "README.md").read_text()
    assert "GPL-3.0" in card and "python -m merc.hub.build meld-text" in card and " ± " in card
    assert (root / "model.safetensors").stat().st_size < 5_000_000


def test_pipeline_returns_every_class_score_per_utterance() -> None:
    classify = merc.pipeline("emotion", model="meld-text")
    conversation = [("Ann", "We got the apartment!"), ("Bob", "No way! I'm so happy for you."),
                    ("Ann", "The landlord just called. Someone else got it."), ("Bob", "That is outrageous!")]
    rows = classify(conversation)
    assert len(rows) == len(conversation)
    assert [(r["speaker"], r["text"]) for r in rows] == conversation
    for r in rows:
        assert list(r["scores"]) == MELD_LABELS
        assert sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == max(r["scores"], key=r["scores"].get) and r["score"] == r["scores"][r["label"]]
    # plain strings (alternating speakers) and dicts give the same shape
    assert len(classify(["Hi.", "Hello!", "Bye."])) == 3
    with pytest.raises(merc.ConfigError, match="emotion"):
        merc.pipeline("sentiment")


def test_merc_predict_with_the_ready_model(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # without --out the predictions are also written to the current directory
    conv = tmp_path / "conv.csv"
    conv.write_text("dialogue_id,speaker,text\nc1,Ann,I passed the exam!\nc1,Bob,Congratulations!\n", encoding="utf-8")
    assert main(["predict", "--model", "meld-text", str(conv), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len([line for line in printed if line.startswith("c1\t")]) == 2
    assert (tmp_path / "conv.predictions.csv").is_file()
    out = tmp_path / "pred.json"
    assert main(["predict", "--model", "meld-text", str(conv), "--out", str(out), "--no-progress"]) == 0
    rows = json.loads(out.read_text())
    assert [r["speaker"] for r in rows] == ["Ann", "Bob"]
    assert main(["predict", "--model", "meld-text", "extra-dir", str(conv)]) == 2
    assert "not both" in capsys.readouterr().err


def test_features_that_do_not_match_the_spec_are_a_one_line_error(tmp_path: Path, capsys) -> None:
    predictor = Predictor.from_pretrained("meld-text")
    record = json.loads(json.dumps(predictor.records["t"]))
    record["settings"]["pooling"] = "mean"  # same encoder and size, different pooling
    dialogue = Dialogue("x", ["A", "B"], {"t": np.zeros((2, 384), np.float32)}, texts=["hi", "yo"])
    data = DialogueDataset("byo", [dialogue], MELD_LABELS, {"test": ["x"]}, meta={"extractors": {"t": record}})
    with pytest.raises(DataError, match="feature spec: pooling 'mean'") as exc:
        predictor.predict(data)
    assert "\n" not in str(exc.value)
    table, _ = save_user_dataset(data, tmp_path / "byo.csv")
    assert main(["predict", "--model", "meld-text", str(table), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "byo.csv" in err and "features__t" in err and "minilm" in err
    # matching records and record-less (bring-your-own) features of the right size are accepted
    data.meta["extractors"]["t"] = predictor.records["t"]
    assert len(predictor.predict(data)) == 2
    data.meta.clear()
    assert len(predictor.predict(data)) == 2
