"""The fine-tuned classifier: a Hugging Face encoder, a pooling, a linear head; and its
LightningModule (AdamW, linear warm-up and decay, dev weighted F1 for selection)."""

from __future__ import annotations

from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from torch import nn

from merc.evaluation.metrics import compute_metrics

POOLINGS = ("mean", "cls", "target")


class ContextClassifier(nn.Module):
    """Encoder → pooled utterance vector → class logits.

    Args:
        encoder: a ``transformers`` encoder (``AutoModel``) returning ``last_hidden_state``.
        num_classes: ``C``.
        pooling: ``mean`` over all tokens, ``cls`` (the first token) or ``target`` (mean over
            the target utterance's tokens, segment B).
        dropout: on the pooled vector, before the head.

    Shapes:
        input_ids, attention_mask, token_type_ids: ``(B, T)`` → logits ``(B, C)``;
        :meth:`embed` gives the pooled ``(B, d)``.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, pooling: str = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got '{pooling}'")
        self.encoder = encoder
        self.pooling = pooling
        self.dim = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.dim, num_classes)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state  # (B, T, d)
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask if self.pooling == "mean" else attention_mask * token_type_ids  # (B, T)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, d)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask, token_type_ids)))  # (B, C)


class LitContextClassifier(L.LightningModule):
    """Trains a :class:`ContextClassifier` with cross-entropy; logs dev ``select_wf1``.

    Args:
        model: the classifier (``self.method``, the name :class:`~merc.training.callbacks.BestStateTracker` copies).
        label_names: class names in index order.
        lr: peak learning rate of the encoder; the head gets ``head_lr``.
        weight_decay: AdamW weight decay (not on biases and LayerNorm weights).
        warmup: fraction of the optimisation steps spent warming up linearly, then linear decay to 0.
        class_weights: ``[C]`` cross-entropy class weights (None: unweighted).
    """

    def __init__(self, model: ContextClassifier, label_names: Sequence[str], lr: float = 3e-5, head_lr: float = 1e-3,
                 weight_decay: float = 0.01, warmup: float = 0.1, class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.method = model
        self.label_names = list(label_names)
        self.lr, self.head_lr, self.weight_decay, self.warmup = lr, head_lr, weight_decay, warmup
        self._preds: list[np.ndarray] = []
        self._golds: list[np.ndarray] = []
        self.last_eval_metrics: dict[str, Any] = {}

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.method(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self._logits(batch).float(), batch["labels"], weight=self.class_weights,
                                           ignore_index=-1)
        self.log("train_loss", loss, prog_bar=True, batch_size=int(batch["labels"].shape[0]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._preds.append(self._logits(batch).argmax(-1).cpu().numpy())
        self._golds.append(batch["labels"].cpu().numpy())

    def on_validation_epoch_end(self) -> None:
        if not self._preds:
            return
        metrics = compute_metrics(np.concatenate(self._golds), np.concatenate(self._preds), self.label_names)
        self._preds, self._golds = [], []
        self.last_eval_metrics = {"dev": metrics}
        self.log("select_wf1", metrics["weighted_f1"], prog_bar=True)

    def configure_optimizers(self) -> Any:
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, p in self.method.named_parameters():
            if p.requires_grad:
                groups.setdefault((name.startswith("head."), any(k in name for k in no_decay)), []).append(p)
        optimizer = torch.optim.AdamW([{"params": ps, "lr": self.head_lr if head else self.lr,
                                        "weight_decay": 0.0 if nd else self.weight_decay}
                                       for (head, nd), ps in groups.items()])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = max(1, int(self.warmup * total))

        def factor(step: int) -> float:
            return (step + 1) / warm if step < warm else max(0.0, (total - step) / max(1, total - warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
