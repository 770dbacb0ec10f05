"""Training checkpoints that survive a crash and load without executing code.

* :class:`AtomicCheckpointIO` writes every Lightning checkpoint to a temporary file and renames
  it over the target, so ``last.ckpt`` is always either the previous or the new complete
  checkpoint — never a torn one — and loads checkpoints with ``torch.load(weights_only=True)``
  only (plain tensors, containers, numbers and strings; no pickled code).
* :class:`RNGStateCallback` stores the torch / numpy / Python random states in the checkpoint
  (as plain tensors and lists), so a resumed run draws the same dropout masks as an
  uninterrupted one.
* :func:`checkpoint_callback` keeps ``CHECKPOINT_DIR/last.ckpt`` up to date every
  ``trainer.checkpoint_every`` epochs; :func:`resume_checkpoint` finds it again.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from merc.errors import MercError
from merc.io_utils import atomic_path, check_regular_file

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO: atomic writes, ``weights_only=True`` reads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: str | Path, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a damaged one is a one-line error."""
    p = Path(path)
    if not p.exists():
        raise MercError(f"{p}: checkpoint not found; run without --resume to start afresh")
    check_regular_file(p)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/... for damaged files
        raise MercError(f"{p}: unreadable checkpoint ({type(exc).__name__}); delete it and run without "
                        "--resume to start afresh") from None


class RNGStateCallback(L.Callback):
    """Saves and restores the global random number generators with each checkpoint."""

    @property
    def state_key(self) -> str:
        return "RNGState"

    def state_dict(self) -> dict[str, Any]:
        _, keys, pos, has_gauss, cached = np.random.get_state()
        version, py_state, gauss_next = random.getstate()
        return {"torch": torch.get_rng_state(),
                "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                          "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
                "python": {"version": int(version), "state": [int(v) for v in py_state], "gauss_next": gauss_next}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        n = state_dict["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
        p = state_dict["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def checkpoint_callback(out_dir: str | Path, every_n_epochs: int) -> L.pytorch.callbacks.ModelCheckpoint:
    """A ``ModelCheckpoint`` keeping only ``out_dir/checkpoints/last.ckpt``."""
    return L.pytorch.callbacks.ModelCheckpoint(dirpath=str(Path(out_dir) / CHECKPOINT_DIR), filename="last",
                                               save_last=False, save_top_k=1, monitor=None,
                                               every_n_epochs=every_n_epochs, enable_version_counter=False)


def resume_checkpoint(out_dir: str | Path) -> Path | None:
    """``out_dir/checkpoints/last.ckpt`` if a previous run left one, else ``None``."""
    path = Path(out_dir) / CHECKPOINT_DIR / LAST
    return path if path.is_file() else None


def remove_checkpoints(out_dir: str | Path) -> None:
    """Delete the checkpoint directory (after a run finished, or before a fresh one)."""
    shutil.rmtree(Path(out_dir) / CHECKPOINT_DIR, ignore_errors=True)
