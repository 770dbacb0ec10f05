"""``merc train`` / ``merc evaluate`` end to end on the small synthetic preset, and CLI errors."""

from __future__ import annotations

import json

import pytest

from merc.cli import main


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "synthetic-small", "--epochs", "2", "--seeds", "0", "1", "--out", str(out),
                 "--no-progress", "-o", "model.backbone_options.hidden=32"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "weighted F1" in printed and "±" in printed
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["test"]["n_seeds"] == 2
    assert main(["evaluate", str(out / "seed_0"), "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    seed0 = json.loads((out / "seed_0" / "metrics.json").read_text())["test"]
    assert metrics["weighted_f1"] == pytest.approx(seed0["weighted_f1"])
    assert (tmp_path / "ev" / "predictions.csv").read_text().count("\n") == metrics["n"] + 1


@pytest.mark.parametrize("argv", [
    ["train", "--epoch", "2"],                      # misspelled flag (no abbreviations)
    ["train", "--dataset", "synthetic-small", "--modalities", "tx"],
    ["train", "--backbone", "nope", "--dataset", "synthetic-small"],
    ["train", "--method", "nope", "--dataset", "synthetic-small"],
    ["train", "-o", "trainer.lrr=0.1"],
    ["train", "-o", "model.backbone_options.hiddenn=3", "--dataset", "synthetic-small", "--epochs", "1"],
    ["train", "--dataset", "no-such-dataset"],
    ["evaluate", "/nonexistent/model"],
])
def test_bad_invocations_exit_2_with_one_line(argv, tmp_path, capsys):
    argv = argv + (["--out", str(tmp_path / "x")] if argv[0] == "train" else [])
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err, "an error message is printed"
    assert "Traceback" not in err
    assert len(err.splitlines()[-1]) > 10
    assert not (tmp_path / "x" / "results.md").exists()


def test_config_file_unknown_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("trainer:\n  max_epoch: 3\n")
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "max_epoch" in err and "max_epochs" in err


def _exit_code(argv: list[str]) -> int:
    """``main``'s return code, or argparse's exit code for usage errors."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)
