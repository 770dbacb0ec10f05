"""Multi-process training helpers: which process am I, and is the requested strategy usable.

``merc`` trains with Lightning's ``ddp`` strategy: either Lightning re-launches the command
once per extra local process, or an external launcher (``torchrun``, SLURM) starts every
process. In both cases every process runs the whole command; only the global-zero process
writes files (model directories, results tables, checkpoints).
"""

from __future__ import annotations

import os

import torch

from merc.config import TrainerConfig
from merc.errors import ConfigError

# Strategies that run fit() in child processes and would lose the engine's in-memory state
# (best-epoch weights) when the children exit.
_UNSUPPORTED = ("spawn", "fork", "notebook")


def global_rank() -> int:
    """Rank of this process among all training processes (0 when not distributed).

    Uses the initialised process group when there is one, else the launcher's environment
    (``RANK`` from torchrun/SLURM-style launchers; ``NODE_RANK``/``LOCAL_RANK`` from
    Lightning's own re-launch), before the group exists.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0")) or 0)
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    return 0 if node == 0 and local == 0 else max(1, node + local)


def is_global_zero() -> bool:
    """Whether this process is the one that writes files."""
    return global_rank() == 0


def planned_world_size(trainer: TrainerConfig) -> int:
    """Number of training processes the config asks for (devices × nodes for DDP strategies)."""
    return max(1, trainer.devices) * max(1, trainer.num_nodes) if "ddp" in resolve_strategy(trainer) else 1


def resolve_strategy(trainer: TrainerConfig) -> str:
    """The Lightning strategy to use (``auto`` with several devices → ``ddp``).

    Raises:
        ConfigError: for strategies the engine cannot run correctly, naming what to use.
    """
    if any(word in trainer.strategy for word in _UNSUPPORTED):
        raise ConfigError(f"trainer.strategy '{trainer.strategy}' is not supported (its worker processes drop "
                          "the best-epoch weights); use --strategy ddp (or launch with torchrun)")
    if trainer.devices < 1 or trainer.num_nodes < 1:
        raise ConfigError(f"trainer.devices and trainer.num_nodes must be ≥ 1, got {trainer.devices} and "
                          f"{trainer.num_nodes}")
    if (trainer.devices > 1 or trainer.num_nodes > 1) and trainer.strategy == "auto":
        return "ddp"
    return trainer.strategy
