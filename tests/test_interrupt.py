"""SIGTERM/SIGINT during ``merc train`` (issue 13, item 4): a real child process is signalled
mid-epoch; it stops at the next batch, keeps the last checkpoint, prints one line naming it and
the exact ``--resume`` command, and exits 143/130 — then that command finishes the run."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = ["train", "--dataset", "synthetic-small", "--epochs", "4", "--patience", "0", "--batch-size", "8",
        "--threads", "1", "--no-progress", "-o", "model.backbone_options.hidden=8"]

# The real CLI in a child process; when epoch 2 starts (epoch 1's checkpoint is on disk) it writes
# a marker and works on until a signal is pending — like a long epoch — then reaches a batch end.
_DRIVER = """
import sys, time
from pathlib import Path
from merc import interrupt
from merc.training.lightning_module import LitMethod
marker = Path(sys.argv[1])
def on_train_epoch_start(self):
    if self.current_epoch == 2 and not marker.exists():
        marker.write_text("2")
        while interrupt.pending() is None:
            time.sleep(0.05)
LitMethod.on_train_epoch_start = on_train_epoch_start
from merc.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_until_marker(argv: list[str], marker: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(marker), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.monotonic() + 150
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("child did not reach epoch 2 in time")
        time.sleep(0.1)
    return proc


def _check_stopped(err: str, name: str, out: Path) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    checkpoint = out / "seed_0" / "checkpoints" / "last.ckpt"
    assert lines[0].startswith(f"error: interrupted by {name}: last checkpoint {checkpoint}; resume with: merc train ")
    assert checkpoint.is_file()
    assert not (out / "seed_0" / "info.json").exists() and not (out / "results.md").exists()
    return lines[0]


def test_sigterm_in_a_real_process_stops_keeps_the_checkpoint_and_the_resume_command_finishes(tmp_path):
    out = tmp_path / "run"
    proc = _run_until_marker([*ARGS, "--out", str(out)], tmp_path / "marker")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    line = _check_stopped(err, "SIGTERM", out)
    resume = shlex.split(line.split("resume with: ", 1)[1])
    assert resume[0] == "merc" and resume[-1] == "--resume"
    from merc.cli import main

    assert main(resume[1:]) == 0
    assert (out / "seed_0" / "info.json").is_file() and (out / "results.md").is_file()


def test_sigint_exits_130_with_the_same_line(tmp_path, monkeypatch, capsys):
    """In-process (cheaper): the process signals itself when epoch 2 starts."""
    from merc.cli import main
    from merc.training.lightning_module import LitMethod

    def on_train_epoch_start(self):  # type: ignore[no-untyped-def]
        if self.current_epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(LitMethod, "on_train_epoch_start", on_train_epoch_start, raising=False)
    out = tmp_path / "run"
    previous = signal.getsignal(signal.SIGINT)
    assert main([*ARGS, "--out", str(out)]) == 130
    assert signal.getsignal(signal.SIGINT) is previous, "main() restores the handlers it replaced"
    from merc.interrupt import pending

    assert pending() is None, "the signal was acted on: a later run in this process is not stopped"
    _check_stopped(capsys.readouterr().err, "SIGINT", out)


def test_the_message_outside_training():
    from merc.cli import interrupted_line
    from merc.interrupt import Interrupted

    assert "run the same command again" in interrupted_line(Interrupted(signal.SIGTERM), ["sweep", "s.yaml"])
    line = interrupted_line(Interrupted(signal.SIGINT), ["train", "--out", "r"])
    assert "no checkpoint of the current seed yet" in line and line.endswith("merc train --out r --resume")
    assert Interrupted(signal.SIGINT).exit_code == 130 and Interrupted(signal.SIGTERM).exit_code == 143
