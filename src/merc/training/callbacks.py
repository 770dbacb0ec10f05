"""Callbacks of the training engine: keep the best epoch's weights (dev-set selection), check
that a resumed checkpoint belongs to the run being resumed, and stop at a batch boundary on
SIGINT/SIGTERM."""

from __future__ import annotations

import json
from typing import Any

import lightning as L
import torch

from merc import interrupt
from merc.errors import ConfigError


class BestStateTracker(L.Callback):
    """Keeps an in-memory copy of the method's weights at the best value of ``monitor``.

    The copy is part of the callback's state, so it survives checkpoint/resume: a resumed
    run ends with the same selected weights as an uninterrupted one.

    Args:
        monitor: logged metric to maximise (``select_wf1``).
    """

    def __init__(self, monitor: str = "select_wf1") -> None:
        self.monitor = monitor
        self.best_score: float = float("-inf")
        self.best_epoch: int = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_metrics: dict[str, Any] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        if score > self.best_score:
            self.best_score = score
            self.best_epoch = trainer.current_epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in pl_module.method.state_dict().items()}
            self.best_metrics = dict(getattr(pl_module, "last_eval_metrics", {}))

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best_score": self.best_score, "best_epoch": self.best_epoch,
                "best_state": self.best_state, "best_metrics": self.best_metrics}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]
        self.best_state = state_dict["best_state"]
        self.best_metrics = state_dict.get("best_metrics", {})


class RunIdentityCheck(L.Callback):
    """Stamps checkpoints with the run's identity and refuses to resume a different run.

    Args:
        identity: plain JSON-like description of the run (config, seed, data shape); see
            :func:`merc.training.engine.run_identity`.
    """

    def __init__(self, identity: dict[str, Any]) -> None:
        self.identity = json.loads(json.dumps(identity))

    def state_dict(self) -> dict[str, Any]:
        return {"identity_json": json.dumps(self.identity, sort_keys=True)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        stored = json.loads(state_dict.get("identity_json", "null"))
        if stored != self.identity:
            raise ConfigError("the checkpoint to resume belongs to a different config, seed or dataset; "
                              "use another --out or drop --resume to start afresh")


class StopOnSignal(L.Callback):
    """Defers SIGINT/SIGTERM during ``fit`` and raises :class:`merc.interrupt.Interrupted` at the next
    batch boundary, so a checkpoint being written is never cut short (see :mod:`merc.interrupt`)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        interrupt.enter_safe_section()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        interrupt.leave_safe_section()
        interrupt.raise_if_signalled()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        interrupt.leave_safe_section()

    def on_train_batch_end(self, *args: Any) -> None:
        interrupt.raise_if_signalled()

    def on_validation_batch_end(self, *args: Any) -> None:
        interrupt.raise_if_signalled()
