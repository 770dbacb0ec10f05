"""``merc predict`` / ``Predictor``: train tiny models on real MELD text and on espeak-ng speech,
save them, and label new conversations with probabilities and explanations."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from merc.cli import main
from merc.config import DataConfig, ExperimentConfig, ModelConfig, TrainerConfig
from merc.data.schema import Dialogue, DialogueDataset
from merc.errors import DataError
from merc.features import FeatureCache, build_extractors, extract_features
from merc.inference import Predictor
from merc.training.engine import train_run

CONVERSATION = [
    ("c1", "Ann", "I can't believe you did that!"),
    ("c1", "Bob", "Sorry... I really didn't mean to."),
    ("c1", "Ann", "Whatever. Just go."),
    ("c2", "Cat", "We won the lottery!!"),
    ("c2", "Dan", "No way! That's amazing!"),
]


def tiny_config(modalities: str, method: str = "none", **method_options) -> ExperimentConfig:
    return ExperimentConfig(data=DataConfig(dataset="test", modalities=modalities, batch_size=4),
                            model=ModelConfig(method=method, backbone="late_fusion",
                                              backbone_options={"hidden": 32}, method_options=method_options),
                            trainer=TrainerConfig(max_epochs=2, patience=0, progress=False))


@pytest.fixture(scope="module")
def meld_model(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DnR over late fusion trained on MiniLM features of a few official MELD dialogues."""
    from merc.data.formats.transcripts import read_meld_csvs

    meld = read_meld_csvs(shared_data / "meld")
    ids = meld.splits["train"][:8] + meld.splits["dev"][:2] + meld.splits["test"][:2]
    root = tmp_path_factory.mktemp("meld")
    tiny = extract_features(meld.subset(ids, name="meld-tiny"), build_extractors({"t": "minilm"}),
                            FeatureCache(root / "cache", progress=False))
    config = tiny_config("t", "dnr", dim=16, divide_max_epochs=1)
    train_run(config, 0, tiny, root / "model")
    return root / "model"


def write_conversation(path: Path, rows=CONVERSATION, extra: dict[str, list[str]] | None = None) -> Path:
    extra = extra or {}
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["dialogue_id", "speaker", "text", *extra])
        for i, row in enumerate(rows):
            writer.writerow([*row, *(v[i] for v in extra.values())])
    return path


def test_merc_predict_csv_rows_probabilities_explanations(meld_model: Path, tmp_path: Path) -> None:
    conv = write_conversation(tmp_path / "new.csv")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(meld_model), str(conv), "--out", str(out), "--no-progress"]) == 0
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(CONVERSATION)
    assert [(r["dialogue_id"], r["speaker"], r["text"]) for r in rows] == list(CONVERSATION)
    prob_cols = [c for c in rows[0] if c.startswith("prob_")]
    assert prob_cols == [f"prob_{c}" for c in ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")]
    for r in rows:
        probs = np.array([float(r[c]) for c in prob_cols])
        assert probs.sum() == pytest.approx(1.0, abs=1e-4) and (probs >= 0).all()
        assert r["label"] == prob_cols[int(probs.argmax())][len("prob_"):]
        explanation = json.loads(r["explanation"])
        assert explanation["kind"] == "components"
        assert set(explanation["kl"]) == {"t:U", "t:R", "t:S"} and explanation["top_component"] in explanation["kl"]
        # one modality: only unique or none is possible; the CSV repeats the pattern as its own column
        assert r["interaction_pattern"] == explanation["interaction"]["pattern"] in ("unique", "none")
        assert set(explanation["kind_kl"]) == {"U", "R", "S"}
        assert set(explanation["shapley_kind"]) == {"U", "R", "S"}  # one modality: no cross terms
        assert set(explanation["shapley_modality"]) == {"t"}
    assert "`interaction_pattern`" in (tmp_path / "pred.dictionary.md").read_text()


def test_merc_predict_json_and_python_api_agree(meld_model: Path, tmp_path: Path) -> None:
    conv = write_conversation(tmp_path / "new.csv")
    out = tmp_path / "pred.json"
    assert main(["predict", str(meld_model), str(conv), "--out", str(out), "--no-progress"]) == 0
    from_cli = json.loads(out.read_text(encoding="utf-8"))
    records = [{"dialogue_id": d, "speaker": s, "text": t} for d, s, t in CONVERSATION]
    predictor = Predictor.from_dir(meld_model, batch_size=1)  # one dialogue per batch: batching must not matter
    from_api = predictor.predict(records)
    assert [r["label"] for r in from_cli] == [r["label"] for r in from_api]
    for a, b in zip(from_cli, from_api):
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-5)


def test_predict_refuses_inputs_the_model_cannot_take(meld_model: Path, tmp_path: Path, capsys) -> None:
    no_text = tmp_path / "no_text.csv"
    no_text.write_text("dialogue_id,speaker\nx,A\n", encoding="utf-8")
    assert main(["predict", str(meld_model), str(no_text), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "no_text.csv" in err and "text" in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()

    predictor = Predictor.from_dir(meld_model)
    wrong = DialogueDataset("byo", [Dialogue("x", ["A", "B"], {"t": np.zeros((2, 10), np.float32)})], ["a"])
    with pytest.raises(DataError, match="10-d but the model expects 384-d"):
        predictor.predict(wrong)
    predictor.records = {}  # a model trained on features merc did not extract
    with pytest.raises(DataError, match="features__t"):
        predictor.predict([{"dialogue_id": "x", "speaker": "A", "text": "hi"}])
    with pytest.raises(DataError, match="not one of the model's classes"):
        Predictor.from_dir(meld_model).predict([{"dialogue_id": "x", "speaker": "A", "text": "hi", "label": "meh"}])


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    root = tmp_path_factory.mktemp("speech")
    phrases = ["hello there", "I am so happy", "this is terrible", "leave me alone", "what a surprise", "fine"]
    for i, phrase in enumerate(phrases):
        subprocess.run(["espeak-ng", "-w", str(root / f"u{i}.wav"), "-p", str(20 + 12 * i), phrase],
                       check=True, capture_output=True)
    return root


def test_audio_speech_goes_through_extraction_and_prediction(speech_dir: Path, tmp_path: Path) -> None:
    wavs = sorted(str(p) for p in speech_dir.glob("u*.wav"))
    texts = ["hello there", "I am so happy", "this is terrible", "leave me alone", "what a surprise", "fine"]
    dialogues = [Dialogue(f"d{i}", ["A", "B"], labels=np.array([i % 2, (i + 1) % 2]),
                          texts=[texts[i % 6], texts[(i + 3) % 6]], media={"a": [wavs[i % 6], wavs[(i + 3) % 6]]})
                 for i in range(6)]
    raw = DialogueDataset("speech", dialogues, ["calm", "excited"],
                          {"train": ["d0", "d1", "d2", "d3"], "dev": ["d4"], "test": ["d5"]})
    data = extract_features(raw, build_extractors({"t": "minilm", "a": "librosa"}), FeatureCache(tmp_path / "c"),
                            progress=False)
    assert data.dims == {"t": 384, "a": 265}
    train_run(tiny_config("ta"), 0, data, tmp_path / "model")

    rel = tmp_path / "audio"
    shutil.copytree(speech_dir, rel)
    conv = write_conversation(tmp_path / "talk.csv", [("n1", "A", "hello there"), ("n1", "B", "what a surprise")],
                              {"audio": ["audio/u0.wav", "audio/u4.wav"]})  # paths relative to the table
    rows = Predictor.from_dir(tmp_path / "model").predict(conv)
    assert len(rows) == 2 and all(r["label"] in ("calm", "excited") for r in rows)
    assert all(sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5) for r in rows)
    assert rows[0]["explanation"]["kind"] is None  # a plain backbone offers no method explanation ...
    inter = rows[0]["explanation"]["interaction"]  # ... but every model gets the modality-interaction one
    assert inter["pattern"] in ("unique", "redundant", "synergy", "none") and set(inter["alone"]) == {"t", "a"}
    assert sum(inter["dividends"].values()) == pytest.approx(inter["gain_nats"], abs=1e-4)

    missing = write_conversation(tmp_path / "text_only.csv", [("n1", "A", "hello there")])
    with pytest.raises(DataError, match="no 'audio' column"):
        Predictor.from_dir(tmp_path / "model").predict(missing)
