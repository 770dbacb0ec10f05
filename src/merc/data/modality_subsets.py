"""Absent modalities: the on-distribution stand-in, subset batches and modality dropout.

A model sees an *absent* modality ``m`` as its **stand-in**: the mean of ``m``'s features over
the real utterances of the training split (``[d_m]``, stored in the model directory as
``stand_in.safetensors``). The same stand-in is what modality-dropout training
(``trainer.modality_dropout``) puts in place of a dropped modality, so a model trained with it
has seen every subset input that the subset evaluation feeds it. Zeros would be off-distribution
for features that are not centred (and for LayerNorm'd encoders any constant is only as good as
its training exposure; the mean is the constant the model has been trained on).

A modality is absent for a whole dialogue, never for a single utterance: this is the practical
situation (a recording without video) and it keeps the subset evaluation one batched call.
Padding positions stay zero in every case.

Subsets of ``M`` modalities are indexed by bit masks ``k = 0 … 2^M − 1``: modality ``j`` (in the
model's modality order) is present in subset ``k`` iff bit ``j`` of ``k`` is set, so ``k = 0`` is
"no modality" and ``k = 2^M − 1`` is "all modalities".
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from merc.data.collate import Batch
from merc.errors import ConfigError, MercError

STAND_IN_FILE = "stand_in.safetensors"
log = logging.getLogger(__name__)


def subset_masks(num_modalities: int) -> Tensor:
    """``[2^M, M]`` bool: row ``k`` marks the modalities present in subset ``k`` (bit ``j`` ↔ modality ``j``)."""
    k = torch.arange(2 ** num_modalities)
    return (k[:, None] >> torch.arange(num_modalities)[None, :]) & 1 == 1


def subset_name(present: Sequence[bool], modalities: Sequence[str]) -> str:
    """``"ta"`` for t and a present; ``"none"`` for the empty subset."""
    return "".join(m for m, p in zip(modalities, present) if p) or "none"


def training_means(dialogues: Sequence, modalities: Sequence[str]) -> dict[str, np.ndarray]:
    """Stand-ins: mean feature vector ``[d_m]`` (float32) of each modality over all utterances of ``dialogues``."""
    if not dialogues:
        raise MercError("no dialogues to compute modality stand-ins from; the train split is empty")
    out = {}
    for m in modalities:
        total = sum(d.features[m].astype(np.float64).sum(0) for d in dialogues)
        count = sum(len(d) for d in dialogues)
        out[m] = (total / max(count, 1)).astype(np.float32)
    return out


def resolve_stand_in(stand_in: Mapping[str, Tensor] | None, dialogues: Sequence,
                     modalities: Sequence[str]) -> tuple[dict[str, Tensor], str]:
    """``(stand_in, where it comes from)``: the model's training means, or — for model directories
    that predate ``stand_in.safetensors`` — the mean of ``dialogues`` (a logged warning)."""
    if stand_in is not None:
        return {m: stand_in[m] for m in modalities}, "training mean"
    log.warning("the model directory has no %s (trained before it existed); absent modalities are replaced by "
                "the mean of the data being explained", STAND_IN_FILE)
    means = training_means(dialogues, modalities)
    return {m: torch.from_numpy(v) for m, v in means.items()}, "mean of the explained data (no stand_in.safetensors)"


def save_stand_in(path: str | Path, stand_in: Mapping[str, np.ndarray | Tensor]) -> None:
    """Write the stand-ins as safetensors (one tensor per modality key)."""
    from safetensors.torch import save_file

    from merc.io_utils import atomic_path

    with atomic_path(Path(path)) as tmp:
        save_file({m: torch.as_tensor(v, dtype=torch.float32).contiguous() for m, v in stand_in.items()}, str(tmp))


def load_stand_in(path: str | Path) -> dict[str, Tensor] | None:
    """The stand-ins in ``path``, or ``None`` if the file does not exist (older model directories)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        return None
    try:
        return dict(load_file(str(p)))
    except (SafetensorError, OSError) as exc:
        raise MercError(f"{p}: corrupted stand-in file ({exc}); retrain or delete it to fall back to data means") from None


def replace_absent(batch: Batch, present: Tensor, stand_in: Mapping[str, Tensor], modalities: Sequence[str]) -> Batch:
    """``batch`` with each absent modality replaced by its stand-in at the real utterances.

    Args:
        batch: a padded batch of ``B`` dialogues.
        present: ``[B, M]`` bool, modality ``j`` of ``modalities`` is present in dialogue ``b``.
        stand_in: modality → ``[d_m]`` stand-in vector.
        modalities: the order of ``present``'s columns.

    Frame/token-level inputs (``Batch.sequences``) cannot be replaced: a modality that a model
    reads from them is refused with :class:`~merc.errors.ConfigError`.
    """
    features = dict(batch.features)
    real = batch.mask[:, :, None]  # (B, L, 1)
    for j, m in enumerate(modalities):
        if m in batch.sequences and not bool(present[:, j].all()):
            raise ConfigError(f"modality '{m}' is read from frame-level sequences, which have no stand-in; "
                              "subset evaluation and modality dropout need utterance-level features "
                              "(e.g. DRKF with method_options.input_mode=lite)")
        x = features[m]  # (B, L, d_m)
        absent = (~present[:, j].to(x.device))[:, None, None] & real  # (B, L, 1)
        features[m] = torch.where(absent, stand_in[m].to(x.device, x.dtype), x)
    return batch.with_features(features)


def stack_subsets(batch: Batch, stand_in: Mapping[str, Tensor], modalities: Sequence[str]) -> Batch:
    """One batch of ``2^M · B`` dialogues: copy ``k`` of ``batch`` has subset ``k``'s modalities present.

    Copies are stacked along the dialogue axis, so the real utterances of the result flatten
    (batch-major) as ``2^M`` blocks of the original ``N`` utterances, subset 0 first.
    """
    S, B = 2 ** len(modalities), len(batch.dialogue_ids)
    present = subset_masks(len(modalities)).repeat_interleave(B, dim=0)  # (S·B, M)

    def tile(x: Tensor) -> Tensor:
        return x.repeat(S, *([1] * (x.dim() - 1)))

    meta = {k: tile(v) if isinstance(v, Tensor) else v for k, v in batch.meta.items()}
    sequences = {m: (tile(x), tile(k)) for m, (x, k) in batch.sequences.items()}
    stacked = Batch({m: tile(x) for m, x in batch.features.items()}, tile(batch.mask), tile(batch.speakers),
                    tile(batch.labels), list(batch.dialogue_ids) * S, meta, sequences,
                    None if batch.texts is None else list(batch.texts) * S,
                    {m: list(p) * S for m, p in batch.media.items()})
    return replace_absent(stacked, present, stand_in, modalities)


@torch.no_grad()
def subset_log_probs(method: torch.nn.Module, batch: Batch, stand_in: Mapping[str, Tensor],
                     modalities: Sequence[str]) -> Tensor:
    """Log-probabilities of every utterance under every modality subset, in ONE forward call.

    Shapes:
        - output: ``[2^M, N, C]`` (subset ``k`` as in :func:`subset_masks`; ``N`` batch-major)
    """
    was_training = method.training
    method.eval()
    try:
        logits = method(stack_subsets(batch, stand_in, modalities)).logits  # (2^M · N, C)
    finally:
        method.train(was_training)
    return torch.log_softmax(logits, dim=-1).reshape(2 ** len(modalities), batch.num_utterances, -1)


def dropout_present(dialogue_ids: Sequence[str], num_modalities: int, p: float, seed: int, epoch: int) -> Tensor:
    """``[B, M]`` bool: which modalities each dialogue keeps under modality dropout with rate ``p``.

    Every modality of every dialogue is dropped independently with probability ``p`` (all of
    them at once with ``p^M``: the "no modality" input is trained too). The draw depends only on
    ``(seed, epoch, dialogue id)`` — not on the batch a dialogue lands in, its position or its
    padding — so it is batch-order invariant and a resumed run replays it.
    """
    draws = [np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), zlib.crc32(str(d).encode())]).random(num_modalities)
             for d in dialogue_ids]  # one small draw per dialogue, not per utterance
    return torch.from_numpy(np.asarray(draws).reshape(len(dialogue_ids), num_modalities) >= p)


def apply_modality_dropout(batch: Batch, p: float, stand_in: Mapping[str, Tensor], seed: int, epoch: int) -> Batch:
    """``batch`` with modalities dropped per dialogue (see :func:`dropout_present`); identity for ``p = 0``."""
    if p <= 0:
        return batch
    modalities = list(batch.features)
    present = dropout_present(batch.dialogue_ids, len(modalities), p, seed, epoch)
    return replace_absent(batch, present, stand_in, modalities)


__all__ = ["STAND_IN_FILE", "apply_modality_dropout", "dropout_present", "load_stand_in", "replace_absent", "resolve_stand_in",
           "save_stand_in", "stack_subsets", "subset_log_probs", "subset_masks", "subset_name", "training_means"]
