"""Lightning progress output of the training engine (see :mod:`merc.progress`): a rich/tqdm bar
labelled ``<stage> epoch k/N`` (1-based) in a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.utilities.imports import _RICH_AVAILABLE

from merc.progress import emit, interactive


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class _StageLabel:
    """Mixin: the train bar reads ``<stage> epoch k/N`` with 1-based k."""

    stage = "train"

    def _get_train_description(self, current_epoch: int) -> str:  # rich
        return f"{self.stage} epoch {current_epoch + 1}/{self.trainer.max_epochs}"  # type: ignore[attr-defined]

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:  # tqdm
        super().on_train_epoch_start(trainer, *args)  # type: ignore[misc]
        if isinstance(self, TQDMProgressBar):
            self.train_progress_bar.set_description(f"{self.stage} epoch {trainer.current_epoch + 1}/"
                                                    f"{trainer.max_epochs}")


class StageRichBar(_StageLabel, RichProgressBar):
    """Lightning's rich bar with the stage name and a 1-based epoch count."""


class StageTQDMBar(_StageLabel, TQDMProgressBar):
    """Lightning's tqdm bar with the stage name and a 1-based epoch count."""


class EpochLines(L.Callback):
    """One plain line per training epoch: stage, epoch k/N, losses, dev weighted F1, elapsed time."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._start = time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {k: _number(v) for k, v in trainer.callback_metrics.items()}
        parts = []
        for key, value in metrics.items():
            if value is None or "loss" not in key and not key.startswith("train_"):
                continue
            parts.append(f"{key.removeprefix('train_')} {value:.4f}")
        if metrics.get("dev_wf1") is not None:
            parts.append(f"dev weighted F1 {metrics['dev_wf1']:.2f}")
        detail = ", ".join(parts) or "done"
        emit(f"[merc] {self.stage} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {detail} "
              f"(elapsed {time.perf_counter() - self._start:.1f} s)")


def progress_callbacks(stage: str, enabled: bool) -> tuple[list[L.Callback], bool]:
    """Callbacks for a Trainer of ``stage`` and whether to enable Lightning's bar."""
    if not enabled:
        return [], False
    if not interactive():
        return [EpochLines(stage)], False
    bar = StageRichBar() if _RICH_AVAILABLE else StageTQDMBar()
    bar.stage = stage
    return [bar], True
