"""DRKF mode 2 ("lite") trains through the engine on synthetic-small to well above the majority class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from merc.config import ExperimentConfig
from merc.data.loading import load_dataset
from merc.evaluation.metrics import majority_baseline
from merc.training.engine import train_run


@pytest.fixture()
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_lite_beats_majority_through_engine(tmp_path: Path, one_thread: None) -> None:
    config = ExperimentConfig.from_dict({
        "data": {"dataset": "synthetic-small", "modalities": "tav", "batch_size": 8},  # v is ignored by DRKF
        "model": {"method": "drkf", "method_options": {"width": 64, "ffn": 128, "layers": 1}},
        "trainer": {"max_epochs": 8, "patience": 0, "progress": False, "threads": 1}})
    dataset = load_dataset(config.data)
    result = train_run(config, 0, dataset, tmp_path / "run")
    y_train = np.concatenate([d.labels for d in dataset.split("train")])
    y_test = np.concatenate([d.labels for d in dataset.split("test")])
    majority = majority_baseline(y_train, y_test, dataset.label_names)["accuracy"]
    assert result.metrics["test"]["accuracy"] > majority + 10.0, (result.metrics["test"]["accuracy"], majority)
    assert (tmp_path / "run" / "model.safetensors").is_file()
