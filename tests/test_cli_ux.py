"""First-user rough edges (issue 13, items 5-9): help defaults, suggestions, override types, umask,
validation before training, progress lines when the output is not a terminal."""

from __future__ import annotations

import os
import re
import stat
from types import SimpleNamespace

import pytest

from merc.cli import build_parser, main
from merc.config import ExperimentConfig, apply_overrides, resolve_model_options
from merc.errors import ConfigError
from merc.io_utils import atomic_write_text


def _help(*command: str) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    return ""


def test_train_help_shows_the_config_defaults_once(capsys):
    _help("train")
    text = " ".join(capsys.readouterr().out.split())
    text = text[text.index("options:"):]
    assert "(default: None)" not in text
    for flag, value in (("--epochs EPOCHS", "40"), ("--method METHOD", "none"), ("--backbone BACKBONE", "late_fusion"),
                        ("--out DIR", "runs/default"), ("--group-key KEY", "session")):
        option = text[text.index(flag):]
        option = option[:option.index(" --", len(flag))]
        assert f"(default: {value})" in option, option
        assert option.count("(default") == 1, option
    seeds = text[text.index("--seeds SEED"):]
    assert "(default: 0)" in seeds[:seeds.index(" --", 12)]


def test_help_of_every_command_has_no_contradicting_defaults():
    parser = build_parser()
    commands = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)).choices
    for name, command in commands.items():
        formatter = command._get_formatter()
        for action in command._actions:
            if not action.help:
                continue
            text = formatter._expand_help(action)
            assert text.count("(default:") <= 1 and "(default: None)" not in text, (name, text)


@pytest.mark.parametrize("argv, expect", [
    (["train", "--epoch", "3"], "unknown option --epoch; did you mean --epochs?"),
    (["train", "--bakbone", "mmgcn"], "did you mean --backbone?"),
    (["trian"], "did you mean train?"),
    (["evaluate", "x", "--splt", "dev"], "did you mean --split?"),
    (["train", "--selection", "deb"], "did you mean dev?"),
])
def test_misspelled_flag_or_command_is_one_line_with_the_nearest(argv, expect, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert len(err.splitlines()) == 1 and expect in err, err


def test_unknown_backbone_is_refused_before_training_with_a_suggestion(tmp_path, capsys):
    code = main(["train", "--backbone", "mmgnc", "--no-progress", "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 2 and "training" not in captured.out
    assert "unknown backbone 'mmgnc'; did you mean mmgcn?" in captured.err
    code = main(["train", "--method", "drkf", "--backbone", "mmgcn", "--no-progress", "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 2 and "training" not in captured.out and "no backbone" in captured.err


def test_overrides_are_coerced_by_the_declared_option_type():
    raw = apply_overrides({}, ["model.method=dnr", "model.method_options.divide_lr=1e-4",
                               "model.backbone_options.hidden=64", "model.backbone_options.dropout=1e-1"])
    model = resolve_model_options(ExperimentConfig.from_dict(raw).model)
    assert model.method_options["divide_lr"] == pytest.approx(1e-4) and type(model.method_options["divide_lr"]) is float
    assert model.backbone_options["hidden"] == 64 and model.backbone_options["dropout"] == pytest.approx(0.1)
    raw = apply_overrides({}, ["model.backbone_options.hidden=wide"])
    with pytest.raises(ConfigError, match="model.backbone_options.hidden: expected int, got 'wide'"):
        resolve_model_options(ExperimentConfig.from_dict(raw).model)


def test_impossible_override_is_one_line(tmp_path, capsys):
    code = main(["train", "-o", "model.method_options.divide_lr=fast", "--method", "dnr", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "divide_lr: expected float" in err


@pytest.mark.parametrize("umask, mode", [(0o027, 0o640), (0o002, 0o664), (0o022, 0o644)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    import torch
    from safetensors.torch import save_file

    from merc.io_utils import atomic_path

    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_path(tmp_path / "w.safetensors") as tmp:  # safetensors recreates the file 0600
            save_file({"w": torch.zeros(2)}, str(tmp))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == mode


def test_predict_has_a_default_out():
    from merc.commands.predict import default_out

    assert default_out("data/talks.csv", None) == "talks.predictions.csv"
    assert default_out("talks.jsonl", "json") == "talks.predictions.json"
    args = build_parser().parse_args(["predict", "runs/x/seed_0", "talks.csv"])
    assert args.out is None


def test_plain_epoch_lines_when_not_a_terminal(tmp_path, capsys):
    """capsys is not a TTY: one line per epoch with stage, k/N, losses, dev weighted F1, elapsed."""
    code = main(["train", "--dataset", "synthetic-small", "--epochs", "2", "--patience", "0", "--threads", "1",
                 "-o", "model.backbone_options.hidden=8", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if "train epoch" in line]
    assert len(lines) == 2, out
    assert re.fullmatch(r"\[merc\] train epoch 2/2: loss [\d.]+, ce [\d.]+, dev weighted F1 [\d.]+ "
                        r"\(elapsed [\d.]+ s\)", lines[1]), lines[1]
    capsys.readouterr()
    main(["train", "--dataset", "synthetic-small", "--epochs", "1", "--threads", "1", "--no-progress",
          "-o", "model.backbone_options.hidden=8", "--out", str(tmp_path / "q")])
    assert "train epoch" not in capsys.readouterr().out


def test_the_terminal_bar_counts_epochs_from_one():
    from merc.training.progress import StageRichBar

    bar = StageRichBar()
    bar.stage = "refine"
    bar._trainer = SimpleNamespace(max_epochs=3)  # what Lightning attaches
    assert bar._get_train_description(2).strip() == "refine epoch 3/3"


def test_chunk_lines(capsys):
    from merc.progress import chunk_lines

    assert list(chunk_lines(range(40), "explain", 40, lines=4)) == list(range(40))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("[merc] explain: chunk 40/40")
