"""The method contract: what the training engine trains, saves, reloads and explains.

A *method* owns everything that is trained and saved as one model directory. ``none`` is a
plain backbone; ``dnr`` wraps a backbone with a Divide decomposer and the Refine objective;
``drkf`` is a self-contained utterance-level model. The engine (``merc.training``) only
talks to this interface:

- ``forward(batch)`` → :class:`MethodOutput` (prediction; no loss);
- ``training_loss(batch)`` → ``(loss, terms, output)`` for one optimisation step;
- ``pre_fit(context)`` → extra stages run before the main training (DnR's Divide);
- ``param_groups(lr, weight_decay)`` → optimiser parameter groups (by module, never by
  parameter position);
- ``explain(batch)`` → per-utterance explanation arrays (optional);
- ``utterance_encoding(features)`` / ``forward_encoded(encoded, mask, speakers)`` → the
  forward split into a context-free per-utterance stage and the rest (optional; lets the
  per-utterance subset explanation re-encode only the utterance it alters).

Constructor convention::

    Method(input_dims: dict[str, int], num_classes: int, num_speakers: int,
           backbone: str, backbone_options: dict, **method_options)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from merc.data.collate import Batch


@dataclass
class MethodOutput:
    """Prediction of a method over the ``N`` real utterances of a batch (batch-major).

    Attributes:
        logits: ``[N, C]``.
        representation: ``[N, d]`` utterance representation, if the method has one.
        extras: anything else worth keeping (per-modality logits, attention, ...).
    """

    logits: Tensor
    representation: Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitContext:
    """What :meth:`Method.pre_fit` gets to run its own stages.

    Attributes:
        train_loader: loader over the training dialogues (yields :class:`Batch`).
        dev_loader: loader over the dev dialogues, or ``None``.
        trainer_factory: builds a configured ``lightning.Trainer`` for a stage:
            ``trainer_factory(stage_name, max_epochs, callbacks)``.
        seed: the run's seed.
        log: callable printing a progress line.
    """

    train_loader: Any
    dev_loader: Any
    trainer_factory: Callable[..., Any]
    seed: int
    log: Callable[[str], None] = print


class Method(nn.Module):
    """Base class for trainable methods; subclasses register with ``METHODS``."""

    #: what ``merc explain`` offers for this method ("components", "modality_attention", ...)
    explanation_kind: str | None = None
    #: dataclass declaring the ``**options`` the method takes (types coerce ``-o`` overrides)
    options_class: type | None = None

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2) -> None:
        super().__init__()
        self.input_dims = dict(input_dims)
        self.modalities = list(input_dims)
        self.num_classes = num_classes
        self.num_speakers = num_speakers

    def forward(self, batch: Batch) -> MethodOutput:
        raise NotImplementedError

    def training_loss(self, batch: Batch,
                      class_weights: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor], MethodOutput]:
        """Loss of one training step: ``(total, {term: value}, output)``; terms are detached scalars."""
        out = self(batch)
        ce = nn.functional.cross_entropy(out.logits, batch.labels_flat, weight=class_weights, ignore_index=-1)
        return ce, {"ce": ce.detach()}, out

    def pre_fit(self, context: FitContext) -> None:
        """Run stages before the main training (default: none)."""

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups for the main stage (default: all trainable parameters)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr,
                 "weight_decay": weight_decay}]

    def explain(self, batch: Batch) -> dict[str, Any]:
        """Per-utterance explanation arrays for ``batch`` (methods without one raise)."""
        raise NotImplementedError(f"{type(self).__name__} offers no explanation")

    def utterance_encoding(self, features: dict[str, Tensor]) -> dict[str, Tensor] | None:
        """The context-free first stage of :meth:`forward`, or ``None`` when the method has no such split.

        Row ``i`` of every output depends on row ``i`` of ``features`` only (never on the
        dialogue, the position, the speaker or other utterances), and
        ``forward_encoded(padded encodings, batch.mask, batch.speakers)`` equals
        ``forward(batch).logits``. :func:`~merc.data.modality_subsets.subset_log_probs` then
        encodes each altered utterance once instead of re-running the whole method on every
        dialogue copy.

        Shapes:
            - features: modality → ``[N, d_m]`` (any rows; batch-major for a batch)
            - output: key → ``[N, H_k]``
        """
        return None

    def forward_encoded(self, encoded: dict[str, Tensor], mask: Tensor, speakers: Tensor) -> Tensor:
        """Logits from padded :meth:`utterance_encoding` outputs (only for methods that return one).

        Shapes:
            - encoded: key → ``[B, L, H_k]`` (zeros at padding); mask, speakers: ``[B, L]``
            - output: ``[N, C]`` logits of the real utterances, batch-major
        """
        raise NotImplementedError(f"{type(self).__name__} has no utterance encoding")

    @torch.no_grad()
    def predict_proba(self, batch: Batch) -> Tensor:
        """``[N, C]`` class probabilities."""
        return torch.softmax(self(batch).logits, dim=-1)
