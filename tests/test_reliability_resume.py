"""Resume after failure: SIGKILL mid-run + ``--resume`` ends with the uninterrupted run's metrics;
checkpoints are atomic, load with ``weights_only=True`` and are refused for another run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from merc.cli import main
from merc.training.checkpoints import AtomicCheckpointIO, load_checkpoint

ARGS = ["train", "--dataset", "synthetic-small", "--epochs", "5", "--patience", "3", "--batch-size", "8",
        "--threads", "1", "--no-progress", "-o", "model.backbone_options.hidden=32"]

# Runs the real CLI in a child process; when epoch PAUSE_EPOCH starts (the previous epoch's
# checkpoint is written), the child announces it in a marker file and sleeps until it is killed.
_DRIVER = """
import sys, time
from pathlib import Path
from merc.training.lightning_module import LitMethod
marker, pause_epoch = Path(sys.argv[1]), int(sys.argv[2])
def on_train_epoch_start(self):
    if self.current_epoch == pause_epoch:
        marker.write_text(str(self.current_epoch))
        time.sleep(600)
LitMethod.on_train_epoch_start = on_train_epoch_start
from merc.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _child(argv: list[str], marker: Path, pause_epoch: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    return subprocess.Popen([sys.executable, "-c", _DRIVER, str(marker), str(pause_epoch), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("child did not reach the pause point in time")
        time.sleep(0.1)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "seed_0" / "metrics.json").read_text())


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, capsys):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _child(ARGS + ["--out", str(killed)], tmp_path / "paused", pause_epoch=3)
    try:
        _wait_for(tmp_path / "paused", proc)
        ckpt = killed / "seed_0" / "checkpoints" / "last.ckpt"
        assert ckpt.is_file()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # plain data only
    assert state["epoch"] == 2 and "RNGState" in state["callbacks"]
    assert not (killed / "seed_0" / "info.json").exists() and not (killed / "results.md").exists()

    assert main(ARGS + ["--out", str(killed), "--resume"]) == 0
    assert main(ARGS + ["--out", str(clean)]) == 0
    resumed, uninterrupted = _metrics(killed), _metrics(clean)
    for split in ("dev", "test"):
        assert resumed[split] == uninterrupted[split]
    assert (resumed["best_epoch"], resumed["epochs_run"]) == (uninterrupted["best_epoch"], uninterrupted["epochs_run"])
    info = json.loads((killed / "seed_0" / "info.json").read_text())
    assert info["resumed_from"].endswith("last.ckpt")
    assert not (killed / "seed_0" / "checkpoints").exists(), "checkpoints are removed once the run is complete"

    # a finished seed is not retrained: --resume returns it as is
    before = (killed / "seed_0" / "model.safetensors").stat().st_mtime_ns
    assert main(ARGS + ["--out", str(killed), "--resume"]) == 0
    assert (killed / "seed_0" / "model.safetensors").stat().st_mtime_ns == before
    capsys.readouterr()
    # ... and a finished run of another config is refused instead of silently reused
    assert main(ARGS + ["--out", str(killed), "--resume", "--lr", "0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert "different config" in err and len(err.splitlines()) == 1


def _checkpointed_run(out: Path, epochs: int = 2) -> Path:
    """A run whose seed directory still holds its checkpoint (the final save is skipped)."""
    import merc.training.engine as engine

    original = engine.save_model_dir
    engine.save_model_dir = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash before the model dir"))
    try:
        with pytest.raises(RuntimeError):
            main(ARGS[:4] + [str(epochs)] + ARGS[5:] + ["--out", str(out)])
    finally:
        engine.save_model_dir = original
    return out / "seed_0" / "checkpoints" / "last.ckpt"


def test_damaged_or_foreign_checkpoint_is_a_one_line_error(tmp_path, capsys):
    ckpt = _checkpointed_run(tmp_path / "run")
    assert load_checkpoint(ckpt)["epoch"] == 1
    capsys.readouterr()
    # another config must not resume this checkpoint
    assert main(ARGS + ["--out", str(tmp_path / "run"), "--resume", "-o", "trainer.weight_decay=0.1"]) == 2
    assert "different config" in capsys.readouterr().err
    # a truncated checkpoint is named, not trusted
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert main(ARGS + ["--out", str(tmp_path / "run"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "last.ckpt" in err and "unreadable checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "results.md").exists()


def test_checkpoint_with_code_is_refused(tmp_path):
    evil = tmp_path / "evil.ckpt"
    torch.save({"epoch": 0, "payload": os.system}, evil)  # a pickled global: needs code to load
    with pytest.raises(Exception, match="unreadable checkpoint"):
        load_checkpoint(evil)


def test_atomic_checkpoint_write_never_leaves_a_torn_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, target)

    def torn_save(obj, path):  # writes half a file, then the process "dies"
        Path(path).write_bytes(b"\x80\x02partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, target)
    assert io.load_checkpoint(target)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "no temporary file is left behind"
