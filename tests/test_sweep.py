"""``merc sweep``: grid × seeds in parallel worker processes, resumable, mean ± std table; Optuna."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from merc.cli import main

EXPERIMENT = {"data": {"dataset": "synthetic-small", "batch_size": 8},
              "model": {"backbone": "late_fusion", "backbone_options": {"hidden": 16}},
              "trainer": {"max_epochs": 2, "patience": 0}}


def _sweep_file(tmp: Path, **keys) -> Path:
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump({"experiment": EXPERIMENT, "out": str(tmp / "out"), **keys}))
    return path


def test_grid_sweep_parallel_resumable_table(tmp_path, capsys):
    cfg = _sweep_file(tmp_path, grid={"trainer.lr": [0.001, 0.003]}, seeds=[0, 1], jobs=2)
    assert main(["sweep", str(cfg)]) == 0
    out = tmp_path / "out"
    table = json.loads((out / "sweep.json").read_text())
    assert len(table["rows"]) == 2 and all(r["n_seeds"] == 2 for r in table["rows"])
    row = table["rows"][0]
    seed_dirs = sorted((out / row["id"]).glob("seed_*"))
    assert [d.name for d in seed_dirs] == ["seed_0", "seed_1"]
    test_f1 = [json.loads((d / "metrics.json").read_text())["test"]["weighted_f1"] for d in seed_dirs]
    assert row["test"]["weighted_f1"]["mean"] == pytest.approx(np.mean(test_f1))
    assert row["test"]["weighted_f1"]["std"] == pytest.approx(np.std(test_f1, ddof=1))
    md = (out / "sweep.md").read_text()
    assert "±" in md and "trainer.lr" in md and "Best on dev.weighted_f1" in md
    capsys.readouterr()

    # resumable: finished runs are kept; a run that never completed is trained again
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("model.safetensors")}
    lost = out / row["id"] / "seed_1" / "info.json"
    lost.unlink()
    assert main(["sweep", str(cfg), "--jobs", "1"]) == 0  # the one remaining run trains in this process
    log = capsys.readouterr().out
    assert log.count("kept (already finished)") == 3 and log.count(": done") == 1
    changed = [p for p, t in mtimes.items() if p.stat().st_mtime_ns != t]
    assert changed == [out / row["id"] / "seed_1" / "model.safetensors"]
    again = json.loads((out / "sweep.json").read_text())["rows"]
    assert again[0]["test"] == row["test"], "retraining with the same seed reproduces the run"


@pytest.mark.parametrize("keys,expect", [
    ({"gird": {"trainer.lr": [0.1]}}, "unknown sweep key"),
    ({"grid": {"trainer.lr": 0.1}}, "non-empty lists"),
    ({"grid": {"trainer.lrr": [0.1]}}, "lrr"),
    ({"metric": "test.weighted_f1"}, "dev split"),
    ({"search": "random"}, "grid' or 'optuna"),
    ({"search": "optuna"}, "search space"),
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, capsys, keys, expect):
    assert main(["sweep", str(_sweep_file(tmp_path, **keys))]) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_optuna_search_continues_where_it_stopped(tmp_path, capsys):
    pytest.importorskip("optuna")
    space = {"trainer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
             "model.backbone_options.hidden": {"choices": [8, 16]}}
    cfg = _sweep_file(tmp_path, search="optuna", params=space, trials=2, seeds=[0], jobs=1)
    assert main(["sweep", str(cfg)]) == 0
    rows = json.loads((tmp_path / "out" / "sweep.json").read_text())["rows"]
    assert len(rows) == 2 and all(r["n_seeds"] == 1 and "dev" in r for r in rows)
    assert all(1e-4 <= r["values"]["trainer.lr"] <= 1e-2 for r in rows)
    capsys.readouterr()
    assert main(["sweep", str(cfg), "-o", "trials=3"]) == 0
    assert capsys.readouterr().out.count(": done") == 1, "only the new trial trains"
    data = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert len(data["rows"]) == 3 and data["best"] in {r["id"] for r in data["rows"]}
