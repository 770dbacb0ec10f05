"""The training engine: selection, determinism, model directories, baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from merc.config import DataConfig, ExperimentConfig
from merc.data.loading import load_dataset
from merc.evaluation.metrics import majority_baseline
from merc.evaluation.predict import predict_dialogues
from merc.training.engine import train_run
from merc.training.experiment import run_experiment
from merc.training.model_dir import load_model_dir


@pytest.fixture(scope="module")
def small():
    return load_dataset(DataConfig(dataset="synthetic-small"))


def _config(tmp: Path, **trainer) -> ExperimentConfig:
    raw = {"data": {"dataset": "synthetic-small", "batch_size": 8},
           "model": {"backbone": "late_fusion", "backbone_options": {"hidden": 64}},
           "trainer": {"max_epochs": 15, "patience": 0, "progress": False, **trainer},
           "output": {"dir": str(tmp)}}
    return ExperimentConfig.from_dict(raw)


def test_late_fusion_beats_majority_and_reloads(small, tmp_path):
    run = train_run(_config(tmp_path), 0, small, tmp_path / "m")
    y_train = np.concatenate([d.labels for d in small.split("train")])
    y_test = np.concatenate([d.labels for d in small.split("test")])
    majority = majority_baseline(y_train, y_test, small.label_names)
    assert run.metrics["test"]["weighted_f1"] > majority["weighted_f1"] + 25.0
    assert run.metrics["test"]["accuracy"] > majority["accuracy"] + 15.0

    bundle = load_model_dir(tmp_path / "m")
    again = predict_dialogues(bundle.method, small.split("test"), bundle.modalities)
    from merc.evaluation.metrics import compute_metrics

    assert compute_metrics(again.labels, again.predicted, small.label_names)["weighted_f1"] == pytest.approx(
        run.metrics["test"]["weighted_f1"])
    assert json.loads((tmp_path / "m" / "labels.json").read_text()) == small.label_names
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_same_seed_same_metrics(small, tmp_path):
    a = train_run(_config(tmp_path, max_epochs=3), 7, small, tmp_path / "a")
    b = train_run(_config(tmp_path, max_epochs=3), 7, small, tmp_path / "b")
    assert a.metrics["test"] == b.metrics["test"]
    assert a.metrics["dev"] == b.metrics["dev"]
    wa = load_model_dir(tmp_path / "a").method.state_dict()
    wb = load_model_dir(tmp_path / "b").method.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_selection_uses_dev_and_legacy_is_labelled(small, tmp_path):
    dev = run_experiment(_config(tmp_path / "dev", max_epochs=3, seeds=[0, 1]), small, log=lambda _: None)
    assert "best dev" in (tmp_path / "dev" / "results.md").read_text()
    summary = json.loads((tmp_path / "dev" / "results.json").read_text())["summary"]
    assert summary["test"]["n_seeds"] == 2 and summary["test"]["weighted_f1"]["std"] >= 0
    assert (tmp_path / "dev" / "confusion_test.png").is_file()
    assert len(dev.runs) == 2

    run_experiment(_config(tmp_path / "legacy", max_epochs=3, selection="test-legacy"), small, log=lambda _: None)
    for name in ("results.md", "results.json", "results.csv"):
        text = (tmp_path / "legacy" / name).read_text()
        assert "LEGACY" in text.upper() or name == "results.csv"
    metrics = json.loads((tmp_path / "legacy" / "seed_0" / "metrics.json").read_text())
    assert "test-legacy" in metrics["selection"]


def test_modality_subset(small, tmp_path):
    cfg = _config(tmp_path, max_epochs=2)
    cfg.data.modalities = "ta"
    run = train_run(cfg, 0, small.with_modalities("ta"), tmp_path / "ta")
    assert load_model_dir(run.model_dir).modalities == ["t", "a"]


def test_class_weight_power_softens_the_inverse_frequency_weights(small):
    from merc.config import TrainerConfig
    from merc.errors import ConfigError
    from merc.training.engine import class_weights_for

    counts = small.class_counts("train").astype(np.float64)
    full, root = class_weights_for(small).numpy(), class_weights_for(small, 0.5).numpy()
    np.testing.assert_allclose(full, counts.sum() / (len(counts) * counts), rtol=1e-5)
    np.testing.assert_allclose(root, np.sqrt(full), rtol=1e-5)
    rare, common = counts.argmin(), counts.argmax()
    assert 1.0 < root[rare] < full[rare] and full[common] < root[common] < 1.0
    with pytest.raises(ConfigError, match="class_weight_power"):
        TrainerConfig(class_weight_power=0.0)
