"""DRKF input mode 1 on real media: frozen MiniLM token states + librosa frames of espeak-ng
speech with their transcripts, trained through the engine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from merc.data.collate import collate_dialogues
from merc.data.schema import Dialogue, DialogueDataset

CLIPS = [("I am so happy today, this is wonderful", 0), ("That is great news, I love it", 0),
         ("I feel terrible and sad about this", 1), ("Nothing ever works, I am miserable", 1),
         ("What a lovely surprise, thank you", 0), ("Please leave me alone, I am upset", 1),
         ("We won the game, amazing", 0), ("I lost my keys again, awful day", 1)]
SMALL = dict(width=16, layers=1, heads=2, ffn=32, ae_layers=[16, 8], n_blocks=2, ed_pairs=8)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, Path]]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    root = tmp_path_factory.mktemp("speech")
    out = []
    for k, (text, label) in enumerate(CLIPS):
        wav = root / f"u{k}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), "-s", "220" if label == 0 else "130", text], check=True,
                       capture_output=True)
        out.append((text, label, wav))
    return out


def frame_dataset(speech: list[tuple[str, int, Path]]) -> DialogueDataset:
    from merc.registry import EXTRACTORS

    texts = [t for t, _, _ in speech]
    wavs = [str(p) for _, _, p in speech]
    tokens = EXTRACTORS.create("minilm", level="frame").extract(texts)  # [T_i, 384] last hidden states
    frames = EXTRACTORS.create("librosa", level="frame").extract(wavs)  # [T_i, 66] per 10 ms
    dialogues = []
    for k in range(0, len(speech), 2):  # 4 dialogues of 2 utterances
        idx = [k, k + 1]
        dialogues.append(Dialogue(
            f"dlg{k // 2}", ["A", "B"],
            features={"t": np.stack([tokens[i].mean(0) for i in idx]), "a": np.stack([frames[i].mean(0) for i in idx])},
            labels=np.array([speech[i][1] for i in idx]), texts=[texts[i] for i in idx],
            sequences={"t": [tokens[i] for i in idx], "a": [frames[i] for i in idx]},
            media={"a": [wavs[i] for i in idx]}))
    ids = [d.id for d in dialogues]
    return DialogueDataset("espeak", dialogues, ["pos", "neg"], {"train": ids[:2], "dev": ids[2:3], "test": ids[3:]})


def test_mode1_frames_end_to_end_through_engine(speech: list, tmp_path: Path) -> None:
    from merc.config import ExperimentConfig
    from merc.training.engine import train_run
    from merc.training.model_dir import load_model_dir

    ds = frame_dataset(speech)
    seq_t, seq_a = ds.dialogues[0].sequences["t"][0], ds.dialogues[0].sequences["a"][0]
    assert seq_t.shape[1] == 384 and seq_t.shape[0] > 3 and seq_a.shape[1] == ds.dims["a"] and seq_a.shape[0] > 50
    config = ExperimentConfig.from_dict({
        "data": {"modalities": "ta", "batch_size": 2},
        "model": {"method": "drkf", "method_options": {**SMALL, "input_mode": "frames"}},
        "trainer": {"max_epochs": 1, "progress": False, "patience": 0}})
    result = train_run(config, 0, ds, tmp_path / "run")
    assert 0.0 <= result.metrics["test"]["accuracy"] <= 100.0
    bundle = load_model_dir(tmp_path / "run")
    assert bundle.method.input_mode == "frames"
    exp = bundle.method.explain(collate_dialogues(ds.split("test"), ["t", "a"]))
    np.testing.assert_allclose(exp["per_utterance"]["attention"].sum(1), 1.0, atol=1e-5)
