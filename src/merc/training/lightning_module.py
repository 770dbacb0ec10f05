"""The one LightningModule: wraps any :class:`~merc.methods.base.Method` for training.

It owns no model logic: the method computes losses; this module logs them, guards against
non-finite losses, runs dev (and, in legacy mode, test) evaluation each epoch and builds the
optimiser from the method's parameter groups.
"""

from __future__ import annotations

from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from torch import Tensor

from merc.data.collate import Batch
from merc.data.modality_subsets import apply_modality_dropout
from merc.errors import NumericalError
from merc.evaluation.metrics import compute_metrics
from merc.methods.base import Method
from merc.training.recipe import Recipe, configure

#: names of the evaluation dataloaders, in the order they are passed to ``Trainer.fit``
EVAL_SPLITS_DEV = ("dev",)
EVAL_SPLITS_LEGACY = ("dev", "test")


class LitMethod(L.LightningModule):
    """Lightning wrapper of a method.

    Args:
        method: the model (everything trained and saved).
        lr: learning rate of the main stage.
        weight_decay: Adam weight decay.
        label_names: class names (for metrics).
        class_weights: ``[C]`` cross-entropy weights, or ``None``.
        eval_splits: names of the validation dataloaders (``("dev",)`` or ``("dev", "test")``).
        selection_split: which of them selects the best epoch (``"dev"``; ``"test"`` only in
            the labelled legacy mode).
        recipe: optimiser and learning-rate schedule (:mod:`merc.training.recipe`; default Adam,
            constant learning rate).
        modality_dropout: probability of replacing each modality of a training dialogue by
            ``stand_in`` (:func:`merc.data.modality_subsets.apply_modality_dropout`).
        stand_in: modality → ``[d_m]`` training mean (needed when ``modality_dropout > 0``).
        seed: the run's seed (the dropout draws depend on seed, epoch and dialogue id).
        modality_dropout_unit: ``dialogue``, ``utterance`` or ``both`` (see ``dropout_present``).
    """

    def __init__(self, method: Method, lr: float, weight_decay: float, label_names: Sequence[str],
                 class_weights: Tensor | None = None, eval_splits: Sequence[str] = EVAL_SPLITS_DEV,
                 selection_split: str = "dev", recipe: Recipe | None = None, modality_dropout: float = 0.0,
                 stand_in: dict[str, Tensor] | None = None, seed: int = 0, modality_dropout_unit: str = "both") -> None:
        super().__init__()
        self.recipe = recipe or Recipe()
        self.modality_dropout, self.stand_in, self.seed = float(modality_dropout), stand_in or {}, int(seed)
        self.modality_dropout_unit = modality_dropout_unit
        self.method = method
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_names = list(label_names)
        self.register_buffer("class_weights", class_weights if class_weights is not None else torch.empty(0),
                             persistent=False)
        self.eval_splits = tuple(eval_splits)
        self.selection_split = selection_split
        self._eval_outputs: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.last_eval_metrics: dict[str, dict[str, Any]] = {}

    # -- Lightning plumbing ---------------------------------------------------------------
    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        return batch.to(device)

    def configure_optimizers(self) -> Any:
        steps = self.trainer.estimated_stepping_batches if self.recipe.scheduled else 1
        return configure(self.method.param_groups(self.lr, self.weight_decay), self.lr, self.recipe, steps,
                         self.trainer.max_epochs)

    # -- training -------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        weights = self.class_weights if self.class_weights.numel() else None
        batch = apply_modality_dropout(batch, self.modality_dropout, self.stand_in, self.seed, self.current_epoch,
                                       self.modality_dropout_unit)
        loss, terms, _ = self.method.training_loss(batch, weights)
        local_finite = bool(torch.isfinite(loss))
        finite = local_finite
        if self.trainer is not None and self.trainer.world_size > 1:  # every process stops together
            finite = self.trainer.strategy.reduce_boolean_decision(local_finite, all=True)
        if not finite:
            bad = [k for k, v in terms.items() if not torch.isfinite(torch.as_tensor(v)).all()]
            culprit = (", ".join(bad) or "total") if not local_finite else "in another process"
            raise NumericalError(
                f"non-finite loss at epoch {self.current_epoch} step {self.global_step} (term(s): {culprit}); "
                "training stopped and the last checkpoint predates this step; lower trainer.lr or check the "
                "input features")
        n = batch.num_utterances
        self.log("train_loss", loss.detach(), on_step=False, on_epoch=True, batch_size=n, prog_bar=True)
        for name, value in terms.items():
            self.log(f"train_{name}", value, on_step=False, on_epoch=True, batch_size=n)
        return self._share_weighted(loss, n)

    def _share_weighted(self, loss: Tensor, n: int) -> Tensor:
        """Under DDP, weight this process's mean loss by its share of the global batch's utterances.

        DDP averages gradients over the ``W`` processes; scaling by ``W · n_r / Σ n`` makes that
        average the gradient of the loss averaged over all utterances of the global batch — what a
        single process computes on the same batch — instead of an average of per-process means.
        """
        if self.trainer is None or self.trainer.world_size <= 1:
            return loss
        total = self.trainer.strategy.reduce(torch.tensor(float(n), device=loss.device), reduce_op="sum")
        return loss * (n * self.trainer.world_size / total.clamp_min(1.0))

    # -- evaluation -----------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._eval_outputs = {}

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        logits = self.method(batch).logits
        self._eval_outputs.setdefault(dataloader_idx, []).append(
            (logits.argmax(-1).cpu().numpy(), batch.labels_flat.cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        metrics: dict[str, dict[str, Any]] = {}
        for idx, split in enumerate(self.eval_splits):  # every process gathers every split, in order
            outputs = self._eval_outputs.get(idx, [])
            empty = np.empty(0, dtype=np.int64)
            pred = np.concatenate([p for p, _ in outputs]) if outputs else empty
            gold = np.concatenate([g for _, g in outputs]) if outputs else empty
            pred, gold = self._gather(pred), self._gather(gold)
            if gold.size == 0:
                continue
            metrics[split] = compute_metrics(gold, pred, self.label_names)
            self.log(f"{split}_wf1", metrics[split]["weighted_f1"], prog_bar=True, sync_dist=False)
            self.log(f"{split}_acc", metrics[split]["accuracy"], sync_dist=False)
        if self.selection_split in metrics:
            self.log("select_wf1", metrics[self.selection_split]["weighted_f1"], sync_dist=False)
        self.last_eval_metrics = metrics

    def _gather(self, values: np.ndarray) -> np.ndarray:
        """Concatenate ``values`` across processes in rank order (DDP) so every rank scores the whole
        split; evaluation loaders shard splits contiguously, so this restores dataset order."""
        if self.trainer is None or self.trainer.world_size <= 1:
            return values
        gathered = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(gathered, values)
        return np.concatenate(gathered)
