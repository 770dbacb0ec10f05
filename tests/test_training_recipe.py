"""The optimisation recipe: warm-up + decay schedule, AdamW, and that training really follows it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from merc.config import DataConfig, ExperimentConfig, TrainerConfig
from merc.data.loading import load_dataset
from merc.errors import ConfigError
from merc.training.recipe import Recipe, lr_factor


def test_warmup_then_cosine_to_the_floor():
    f = lr_factor(Recipe(schedule="cosine", warmup_epochs=2, min_lr_ratio=0.1), total_steps=100, steps_per_epoch=10)
    assert f(0) == pytest.approx(1 / 20) and f(19) == pytest.approx(1.0)
    assert f(20) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(100) == pytest.approx(0.1)
    values = [f(s) for s in range(20, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone decay after warm-up
    linear = lr_factor(Recipe(schedule="linear"), 10, 1)
    assert [round(linear(s), 2) for s in (0, 5, 10)] == [1.0, 0.5, 0.0]
    assert lr_factor(Recipe(), 10, 1)(7) == 1.0


@pytest.mark.parametrize("bad", [{"optimizer": "sgd"}, {"schedule": "step"}, {"warmup_epochs": -1},
                                 {"warmup_epochs": 40}, {"min_lr_ratio": 1.5}])
def test_bad_recipe_options_are_config_errors(bad):
    with pytest.raises(ConfigError, match="trainer."):
        TrainerConfig(**bad)


def test_training_follows_the_schedule(tmp_path: Path, monkeypatch):
    from merc.training.engine import train_run

    data = load_dataset(DataConfig(dataset="synthetic-small"))
    raw = {"data": {"dataset": "synthetic-small", "batch_size": 8},
           "model": {"backbone": "bc_lstm", "backbone_options": {"hidden": 16, "dense": 16}},
           "trainer": {"max_epochs": 4, "patience": 0, "progress": False, "checkpoint_every": 0, "lr": 1e-2,
                       "optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine", "warmup_epochs": 1},
           "output": {"dir": str(tmp_path)}}
    seen: list[float] = []

    import lightning as L

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # type: ignore[no-untyped-def]
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])
            assert type(trainer.optimizers[0]).__name__ == "AdamW"

    from merc.training import engine

    original = engine.make_trainer_factory

    def with_spy(config, out):  # type: ignore[no-untyped-def]
        factory = original(config, out)
        return lambda stage, max_epochs, callbacks=(), **kw: factory(stage, max_epochs, [*callbacks, Spy()], **kw)

    monkeypatch.setattr(engine, "make_trainer_factory", with_spy)
    run = train_run(ExperimentConfig.from_dict(raw), 0, data, tmp_path / "m")
    per_epoch = len(seen) // 4
    assert seen[0] < 0.01 * 0.5 and max(seen) == pytest.approx(1e-2, rel=0.05)  # warm-up reaches the peak
    assert seen.index(max(seen)) == pytest.approx(per_epoch - 1, abs=1)  # after one epoch
    assert seen[-1] < 0.2 * 1e-2  # decayed towards 0 by the end
    assert run.metrics["dev"]["weighted_f1"] > 0


def test_bundled_real_data_recipe_matches_the_benchmark(monkeypatch):
    from merc.config import load_experiment_yaml

    raw, _ = load_experiment_yaml("real-data")
    config = ExperimentConfig.from_dict(raw)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_meld

    for key, value in bench_meld.RECIPE.items():
        assert getattr(config.trainer, key) == value, key
    assert config.data.batch_size == 32 and config.model.backbone == "late_fusion"  # model comes from flags
