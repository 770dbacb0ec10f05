"""The optimisation recipe of the main training stage: optimiser and learning-rate schedule.

``trainer.optimizer`` (``adam`` with L2 weight decay, or ``adamw`` with decoupled weight
decay), ``trainer.schedule`` (``constant``, ``cosine`` or ``linear`` decay after a linear
warm-up of ``trainer.warmup_epochs`` epochs, to ``trainer.min_lr_ratio`` × the peak) — stepped
once per optimiser step through :class:`torch.optim.lr_scheduler.LambdaLR`, so Lightning saves
and restores it with the checkpoint. Gradient clipping is Lightning's ``gradient_clip_val``
(``trainer.gradient_clip``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class Recipe:
    """Optimiser and schedule settings (a view of the trainer config).

    Attributes:
        optimizer: ``adam`` or ``adamw``.
        schedule: ``constant``, ``cosine`` or ``linear`` (decay after warm-up).
        warmup_epochs: linear warm-up length in epochs (fractions allowed; 0: none).
        min_lr_ratio: the decayed learning rate's floor as a fraction of the peak.
    """

    optimizer: str = "adam"
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0

    @property
    def scheduled(self) -> bool:
        """Whether the learning rate changes during training (warm-up or decay)."""
        return self.schedule != "constant" or self.warmup_epochs > 0

    @classmethod
    def from_trainer(cls, trainer: Any) -> "Recipe":
        return cls(trainer.optimizer, trainer.schedule, trainer.warmup_epochs, trainer.min_lr_ratio)


def lr_factor(recipe: Recipe, total_steps: int, steps_per_epoch: float) -> Callable[[int], float]:
    """The multiplier of the peak learning rate at optimiser step ``s`` (0-based).

    Linear warm-up from ``1/warmup`` to 1 over ``warmup_epochs · steps_per_epoch`` steps, then
    ``constant`` (1), ``cosine`` (``floor + (1 − floor)·(1 + cos(π·p))/2``) or ``linear``
    (``1 − (1 − floor)·p``) in the progress ``p ∈ [0, 1]`` over the remaining steps.
    """
    warmup = max(0, int(round(recipe.warmup_epochs * steps_per_epoch)))
    floor = recipe.min_lr_ratio
    decay_steps = max(1, total_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if recipe.schedule == "constant":
            return 1.0
        p = min(1.0, (step - warmup) / decay_steps)
        if recipe.schedule == "cosine":
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
        return 1.0 - (1.0 - floor) * p

    return factor


def configure(param_groups: list[dict[str, Any]], lr: float, recipe: Recipe, total_steps: int,
              max_epochs: int) -> Any:
    """What ``LightningModule.configure_optimizers`` returns for ``recipe``.

    Args:
        param_groups: the method's groups (each with its own ``lr`` and ``weight_decay``).
        lr: default learning rate.
        total_steps: optimiser steps of the whole main stage (``trainer.estimated_stepping_batches``).
        max_epochs: epochs of the main stage (to convert ``warmup_epochs`` to steps).
    """
    import torch  # lazily: merc.config imports this module's choices

    cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    optimizer = cls(param_groups, lr=lr)
    if not recipe.scheduled:
        return optimizer
    total = max(1, int(total_steps))
    factor = lr_factor(recipe, total, total / max(1, max_epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
