"""Numerical guard: a NaN loss stops training with one line naming epoch, step and loss term,
exits 2, writes no results, and keeps the last good checkpoint (which loads)."""

from __future__ import annotations

import torch

from merc.cli import main
from merc.methods.plain import PlainMethod
from merc.training.checkpoints import load_checkpoint

ARGS = ["train", "--dataset", "synthetic-small", "--epochs", "4", "--patience", "0", "--batch-size", "8",
        "--threads", "1", "--no-progress", "-o", "model.backbone_options.hidden=16"]
STEPS_PER_EPOCH = 4  # synthetic-small: 29 train dialogues after the dev carve-out, 8 per batch


def _inject_nan_at(monkeypatch, bad_step: int) -> None:
    original = PlainMethod.training_loss
    calls = {"n": 0}

    def training_loss(self, batch, class_weights=None):
        loss, terms, out = original(self, batch, class_weights)
        step, calls["n"] = calls["n"], calls["n"] + 1
        if step == bad_step:
            poisoned = loss * float("nan")
            return poisoned, {"ce": poisoned.detach(), "aux": torch.tensor(0.5)}, out
        return loss, terms, out

    monkeypatch.setattr(PlainMethod, "training_loss", training_loss)


def test_nan_loss_stops_with_step_and_term_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    bad_step = STEPS_PER_EPOCH + 2  # epoch 1, third batch
    _inject_nan_at(monkeypatch, bad_step)
    assert main(ARGS + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: non-finite loss")
    assert f"epoch 1 step {bad_step}" in err[0] and "(term(s): ce)" in err[0] and "aux" not in err[0]
    ckpt = load_checkpoint(tmp_path / "seed_0" / "checkpoints" / "last.ckpt")  # weights_only=True
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == STEPS_PER_EPOCH, "last checkpoint predates the bad step"
    weights = ckpt["state_dict"]
    assert weights and all(torch.isfinite(v).all() for v in weights.values())
    assert not (tmp_path / "seed_0" / "info.json").exists()
    assert not (tmp_path / "results.md").exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    from merc.errors import NumericalError

    _inject_nan_at(monkeypatch, 0)
    try:
        main(["--debug"] + ARGS + ["--out", str(tmp_path)])
    except NumericalError as exc:
        assert "step 0" in str(exc)
    else:
        raise AssertionError("--debug re-raises the error")
