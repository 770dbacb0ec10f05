"""Stage 1 of DnR: pretrain the decomposer with the Divide loss, stop on a plateau, freeze it.

The stage is a small LightningModule trained by a Trainer the engine builds
(``FitContext.trainer_factory``), so it shares the run's device, precision and logging.
"""

from __future__ import annotations

from typing import Any, Callable

import lightning as L
import torch
from torch import Tensor

from merc.data.collate import Batch
from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.decomposer import Decomposer, DivideHeads
from merc.methods.dnr.divide_losses import divide_loss
from merc.methods.dnr.separation_losses import SeparationLosses

MONITOR = "divide_loss"


def flat_features(batch: Batch, modalities: list[str]) -> dict[str, Tensor]:
    """Modality → ``[N, d_m]`` features of the real utterances, batch-major (``labels_flat`` order)."""
    return {m: batch.features[m][batch.mask] for m in modalities}


class DivideModule(L.LightningModule):
    """Trains a :class:`Decomposer` and its :class:`DivideHeads` on the Divide loss.

    Optimiser: Adam with two groups chosen by module — the synergy modules (s heads of the
    decomposer, joint and single synergy heads) at ``divide_lr · synergy_lr_mult`` and
    everything else at ``divide_lr``; gradient-norm clipping at ``divide_clip``.

    Args:
        decomposer: the network to pretrain.
        heads: the pretraining heads.
        config: DnR options.
    """

    def __init__(self, decomposer: Decomposer, heads: DivideHeads, config: DnRConfig) -> None:
        super().__init__()
        self.decomposer = decomposer
        self.heads = heads
        self.config = config
        self.separation = None
        if SeparationLosses.enabled(config):
            dims = {m: b.unique.in_features for m, b in decomposer.branches.items()}
            self.separation = SeparationLosses(dims, config)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        features = flat_features(batch, self.decomposer.modalities)
        components = self.decomposer(features)
        loss, terms = divide_loss(components, self.heads, batch.labels_flat, self.config)
        if self.separation is not None:  # opt-in terms (separation_losses.py)
            extra, extra_terms = self.separation(components, features)
            loss = loss + extra
            terms[MONITOR] = loss.detach()
            terms.update(extra_terms)
        n = batch.num_utterances
        self.log(MONITOR, terms.pop(MONITOR), on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log_dict({f"divide/{k}": v for k, v in terms.items()}, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        c = self.config
        groups = [
            {"params": [*self.decomposer.other_parameters(), *self.heads.classifier.parameters(),
                        *(self.separation.parameters() if self.separation is not None else ())],
             "lr": c.divide_lr},
            {"params": [*self.decomposer.synergy_parameters(), *self.heads.synergy_parameters()],
             "lr": c.divide_lr * c.synergy_lr_mult},
        ]
        return torch.optim.Adam(groups, weight_decay=c.divide_weight_decay)

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: Any = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        # The Divide stage has its own clip value, independent of the main stage's.
        if self.config.divide_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.config.divide_clip,
                                gradient_clip_algorithm="norm")

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return batch.to(device) if isinstance(batch, Batch) else super().transfer_batch_to_device(
            batch, device, dataloader_idx)


class RelativePlateau(L.Callback):
    """Stop training when the epoch-mean ``monitor`` (lower is better) has not fallen below
    ``best · (1 − min_delta)`` for ``patience`` consecutive epochs.

    The threshold is relative because the Divide loss is a sum of terms whose scale depends on
    the λ weights, the number of classes and modalities (≈ 6–8 on ``synthetic-iemocap`` with the
    defaults): an absolute ``min_delta`` of 1e-3 there means "any decrease at all".
    """

    def __init__(self, monitor: str, patience: int, min_delta: float) -> None:
        self.monitor, self.patience, self.min_delta = monitor, max(1, patience), min_delta
        self.best = float("inf")
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        current = float(value)
        if current < self.best - self.min_delta * abs(self.best) or self.best == float("inf"):
            self.best, self.wait = current, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = trainer.current_epoch
            trainer.should_stop = True


def default_trainer_factory(stage: str, max_epochs: int, callbacks: Any = (), **overrides: Any) -> L.Trainer:
    """A quiet CPU Trainer, for running the Divide stage outside the training engine."""
    kwargs: dict[str, Any] = dict(max_epochs=max_epochs, callbacks=list(callbacks), accelerator="cpu", devices=1,
                                  logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                  enable_model_summary=False, num_sanity_val_steps=0)
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def run_divide(decomposer: Decomposer, heads: DivideHeads, config: DnRConfig, train_loader: Any,
               trainer_factory: Callable[..., L.Trainer] = default_trainer_factory,
               log: Callable[[str], None] = print) -> dict[str, float]:
    """Pretrain ``decomposer`` (and ``heads``) until the Divide loss plateaus or the epoch bound.

    Returns a summary ``{"epochs": ..., "divide_loss": ...}``. Freezing is the caller's job.
    """
    if config.divide_max_epochs == 0:
        log("dnr: divide_max_epochs = 0, Divide skipped (decomposer left at its initial weights)")
        return {"epochs": 0.0, "divide_loss": float("nan")}
    module = DivideModule(decomposer, heads, config)
    stopper = RelativePlateau(MONITOR, config.divide_patience, config.divide_min_delta)
    trainer = trainer_factory("divide", config.divide_max_epochs, [stopper])
    trainer.fit(module, train_dataloaders=train_loader)
    final = trainer.callback_metrics.get(MONITOR)
    summary = {"epochs": float(trainer.current_epoch), "divide_loss": float(final) if final is not None else float("nan"),
               "plateau": float(stopper.stopped_epoch is not None)}
    why = "plateau" if stopper.stopped_epoch is not None else "epoch bound"
    log(f"dnr: Divide stopped after {int(summary['epochs'])} epoch(s) ({why}), divide loss {summary['divide_loss']:.4f}")
    return summary
