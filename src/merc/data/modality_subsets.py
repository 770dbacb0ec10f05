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
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from merc.backbones.base import unflatten_valid
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
        batch: a padded batch of ``B`` dialogues of length ``L``.
        present: ``[B, M]`` (per dialogue) or ``[B, L, M]`` (per utterance) bool: modality ``j``
            of ``modalities`` is present.
        stand_in: modality → ``[d_m]`` stand-in vector.
        modalities: the order of ``present``'s last axis.

    Frame/token-level inputs (``Batch.sequences``) cannot be replaced: a modality that a model
    reads from them is refused with :class:`~merc.errors.ConfigError`.
    """
    features = dict(batch.features)
    if present.dim() == 2:
        present = present[:, None, :].expand(-1, batch.mask.shape[1], -1)  # (B, L, M)
    present = present.to(batch.mask.device)
    for j, m in enumerate(modalities):
        absent = ~present[..., j] & batch.mask  # (B, L)
        if m in batch.sequences and bool(absent.any()):
            raise _no_stand_in(m)
        x = features[m]  # (B, L, d_m)
        features[m] = torch.where(absent[..., None], stand_in[m].to(x.device, x.dtype), x)
    return batch.with_features(features)


def select_dialogues(batch: Batch, index: Tensor) -> Batch:
    """A batch of the dialogues ``index`` (``[B']`` long, repeats allowed) of ``batch``, with their
    per-utterance extras (meta, sequences, texts, media) gathered to match (batch-major)."""
    flat = torch.full(batch.mask.shape, -1, dtype=torch.long, device=batch.mask.device)
    flat[batch.mask] = torch.arange(batch.num_utterances, device=batch.mask.device)
    mask = batch.mask[index]
    utt = flat[index][mask]  # (N',) original flat index of every real utterance of the selection
    utt_list = utt.tolist()
    meta = {k: v[utt.to(v.device)] if isinstance(v, Tensor) and v.shape[:1] == (batch.num_utterances,) else v
            for k, v in batch.meta.items()}
    return Batch({m: x[index] for m, x in batch.features.items()}, mask, batch.speakers[index], batch.labels[index],
                 [batch.dialogue_ids[i] for i in index.tolist()], meta,
                 {m: (x[utt.to(x.device)], k[utt.to(k.device)]) for m, (x, k) in batch.sequences.items()},
                 None if batch.texts is None else [batch.texts[i] for i in utt_list],
                 {m: [p[i] for i in utt_list] for m, p in batch.media.items()})


def stack_subsets(batch: Batch, stand_in: Mapping[str, Tensor], modalities: Sequence[str]) -> Batch:
    """One batch of ``2^M · B`` dialogues: copy ``k`` of ``batch`` has subset ``k``'s modalities present
    in every utterance (a modality absent from the whole dialogue).

    Copies are stacked along the dialogue axis, so the real utterances of the result flatten
    (batch-major) as ``2^M`` blocks of the original ``N`` utterances, subset 0 first.
    """
    S, B = 2 ** len(modalities), len(batch.dialogue_ids)
    present = subset_masks(len(modalities)).repeat_interleave(B, dim=0)  # (S·B, M)
    stacked = select_dialogues(batch, torch.arange(B).repeat(S))
    return replace_absent(stacked, present, stand_in, modalities)


def _no_stand_in(modality: str) -> ConfigError:
    """The refusal for a modality read from frame-level sequences (no stand-in exists for them)."""
    return ConfigError(f"modality '{modality}' is read from frame-level sequences, which have no stand-in; "
                       "subset evaluation and modality dropout need utterance-level features "
                       "(e.g. DRKF with method_options.input_mode=lite)")


def _refuse_sequences(batch: Batch, modalities: Sequence[str]) -> None:
    """The :func:`replace_absent` refusal, up front, for every modality read from frame-level sequences."""
    for m in modalities:
        if m in batch.sequences and batch.num_utterances:
            raise _no_stand_in(m)


def _subset_encodings(method: torch.nn.Module, batch: Batch, stand_in: Mapping[str, Tensor],
                      modalities: Sequence[str]) -> dict[str, Tensor] | None:
    """``key → [2^M, N, H]``: the method's utterance encoding of every real utterance under every subset
    (``None`` when the method has no :meth:`~merc.methods.base.Method.utterance_encoding`)."""
    encode = getattr(method, "utterance_encoding", None)
    if encode is None:
        return None
    flat = {m: batch.features[m][batch.mask] for m in modalities}  # m → (N, d_m)
    masks = subset_masks(len(modalities))
    parts: list[dict[str, Tensor]] = []
    for k in range(len(masks)):  # one subset at a time: N rows per call, never 2^M · N raw features at once
        feats = {m: x if bool(masks[k, j]) else stand_in[m].to(x.device, x.dtype).expand_as(x)
                 for j, (m, x) in enumerate(flat.items())}
        enc = encode(feats)
        if enc is None:
            return None
        parts.append(enc)
    return {key: torch.stack([p[key] for p in parts]) for key in parts[0]}


@torch.no_grad()
def subset_log_probs(method: torch.nn.Module, batch: Batch, stand_in: Mapping[str, Tensor],
                     modalities: Sequence[str], scope: str = "dialogue", max_utterances: int = 8192,
                     fast: bool = True) -> Tensor:
    """Log-probabilities of every utterance under every modality subset.

    ``scope="dialogue"``: a modality is absent from the whole dialogue (what a recording without
    it gives; the missing-modality report) — ONE forward call over ``2^M · B`` dialogue copies.
    ``scope="utterance"``: only the explained utterance loses it, its context keeps every
    modality (the utterance's own evidence; the interaction explanation). Every (utterance,
    subset) pair is then one copy of its dialogue; copies are batched into forward calls of at
    most ``max_utterances`` real utterances (one call when they fit), each trimmed to its
    longest dialogue.

    With ``fast`` (the default) the all-modalities values come from one plain forward of
    ``batch`` (that copy *is* the unaltered dialogue), and for a method with an
    :meth:`~merc.methods.base.Method.utterance_encoding` every utterance is encoded once per
    subset (``2^M · N`` rows) — a copy reuses the encodings of its unaltered utterances and only
    its context stage runs per copy. ``fast=False`` re-runs the whole method on every copy
    (the reference the tests compare against; same numbers up to float rounding).

    Shapes:
        - output: ``[2^M, N, C]`` (subset ``k`` as in :func:`subset_masks`; ``N`` batch-major)
    """
    if scope not in ("dialogue", "utterance"):
        raise ConfigError(f"subset scope must be 'dialogue' or 'utterance', got '{scope}'")
    was_training = method.training
    method.eval()
    S, N = 2 ** len(modalities), batch.num_utterances
    try:
        if fast:
            _refuse_sequences(batch, modalities)
        encoded = _subset_encodings(method, batch, stand_in, modalities) if fast else None
        if scope == "dialogue":
            if encoded is None:
                logits = method(stack_subsets(batch, stand_in, modalities)).logits  # (S · N, C)
            else:
                mask = batch.mask.repeat(S, 1)  # (S·B, L), copy k = rows k·B … (k+1)·B − 1
                logits = method.forward_encoded({key: unflatten_valid(x.flatten(0, 1), mask) for key, x in encoded.items()},
                                                mask, batch.speakers.repeat(S, 1))
            return torch.log_softmax(logits, dim=-1).reshape(S, N, -1)
        if encoded is None:
            return _utterance_scope_copies(method, batch, stand_in, modalities, max_utterances, skip_full=fast)
        return _utterance_scope_encoded(method, batch, encoded, max_utterances)
    finally:
        method.train(was_training)


def _copy_chunks(batch: Batch, num_subsets: int, max_utterances: int
                 ) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """``(utterance i, subset k, its dialogue b, its position l)`` of consecutive (utterance, subset) copies,
    utterance-major, in chunks of at most ``max_utterances`` real utterances (at least one copy)."""
    N = batch.num_utterances
    b_idx, l_idx = (t.cpu() for t in batch.mask.nonzero(as_tuple=True))  # (N,), batch-major
    pair_i, pair_k = torch.arange(N).repeat_interleave(num_subsets), torch.arange(num_subsets).repeat(N)
    per_copy = batch.lengths.cpu()[b_idx][pair_i]  # real utterances in each copy
    start = 0
    while start < len(pair_i):
        stop = start + max(1, int((torch.cumsum(per_copy[start:], 0) <= max_utterances).sum()))
        i = pair_i[start:stop]
        yield i, pair_k[start:stop], b_idx[i], l_idx[i]
        start = stop


def _utterance_scope_copies(method: torch.nn.Module, batch: Batch, stand_in: Mapping[str, Tensor],
                            modalities: Sequence[str], max_utterances: int, skip_full: bool) -> Tensor:
    """Utterance scope by re-running ``method`` on every (utterance, subset) dialogue copy: ``[2^M, N, C]``."""
    masks = subset_masks(len(modalities))
    S, N = len(masks), batch.num_utterances
    out: Tensor | None = None
    if skip_full:  # the all-modalities copy is the unaltered dialogue
        full = torch.log_softmax(method(batch).logits, dim=-1)
        out = full.new_empty(S, N, full.shape[-1])
        out[S - 1] = full
    for i, k, b, l in _copy_chunks(batch, S - 1 if skip_full else S, max_utterances):
        sub = select_dialogues(batch, b)
        present = torch.ones(len(i), batch.mask.shape[1], len(modalities), dtype=torch.bool)
        present[torch.arange(len(i)), l] = masks[k]
        logits = method(replace_absent(sub, present, stand_in, modalities)).logits  # (Σ lengths, C)
        first = torch.cumsum(sub.lengths, 0) - sub.lengths  # each copy's first utterance
        lp = torch.log_softmax(logits[first + l.to(first.device)], dim=-1)  # (copies, C)
        if out is None:
            out = lp.new_empty(S, N, lp.shape[-1])
        out[k, i] = lp
    assert out is not None
    return out


def _utterance_scope_encoded(method: torch.nn.Module, batch: Batch, encoded: Mapping[str, Tensor],
                             max_utterances: int) -> Tensor:
    """Utterance scope from per-subset utterance encodings (``key → [2^M, N, H]``): each copy is its
    dialogue's original encodings with the altered utterance's row swapped in. ``[2^M, N, C]``."""
    S, N = next(iter(encoded.values())).shape[:2]
    padded = {key: unflatten_valid(x[S - 1], batch.mask) for key, x in encoded.items()}  # the unaltered dialogues
    full = torch.log_softmax(method.forward_encoded(padded, batch.mask, batch.speakers), dim=-1)  # (N, C)
    out = full.new_empty(S, N, full.shape[-1])
    out[S - 1] = full
    device = batch.mask.device
    for i, k, b, l in _copy_chunks(batch, S - 1, max_utterances):
        i, k, b, l = i.to(device), k.to(device), b.to(device), l.to(device)
        mask = batch.mask[b]  # (copies, L)
        width = int(mask.any(0).nonzero().max()) + 1  # trim the padding no copy of this chunk needs
        mask, rows = mask[:, :width], torch.arange(len(i), device=device)
        feats = {}
        for key, x in padded.items():
            copy = x[b, :width]  # (copies, width, H), a fresh tensor
            copy[rows, l] = encoded[key][k, i]
            feats[key] = copy
        logits = method.forward_encoded(feats, mask, batch.speakers[b, :width])  # (Σ lengths, C)
        lengths = mask.sum(1)
        lp = torch.log_softmax(logits[torch.cumsum(lengths, 0) - lengths + l], dim=-1)  # (copies, C)
        out[k, i] = lp
    return out


DROPOUT_UNITS = ("dialogue", "utterance", "both")


def dropout_present(dialogue_ids: Sequence[str], lengths: Sequence[int], num_modalities: int, p: float, seed: int,
                    epoch: int, unit: str = "both") -> Tensor:
    """``[B, L, M]`` bool: which modalities each utterance keeps under modality dropout with rate ``p``.

    ``unit="dialogue"``: each modality of a dialogue is dropped for the whole dialogue with
    probability ``p`` (a recording without video); ``"utterance"``: for each utterance
    separately (its context keeps it: the inputs of the per-utterance interaction explanation);
    ``"both"``: each dialogue is dropped one way or the other with equal odds. All modalities go
    at once with probability ``p^M``, so "no modality" is trained too. The draws depend only on
    ``(seed, epoch, dialogue id)`` — not on the batch a dialogue lands in, its position or its
    padding — so they are batch-order invariant and a resumed run replays them. Padding
    positions are ``True``.
    """
    if unit not in DROPOUT_UNITS:
        raise ConfigError(f"modality dropout unit must be one of {', '.join(DROPOUT_UNITS)}, got '{unit}'")
    L = max(lengths) if len(lengths) else 0
    present = np.ones((len(dialogue_ids), L, num_modalities), dtype=bool)
    for b, (d, n) in enumerate(zip(dialogue_ids, lengths)):  # one small draw per dialogue, not per utterance
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), zlib.crc32(str(d).encode())])
        per_utterance = rng.random() < 0.5 if unit == "both" else unit == "utterance"
        whole, each = rng.random(num_modalities), rng.random((int(n), num_modalities))
        present[b, :n] = (each if per_utterance else whole[None, :]) >= p
    return torch.from_numpy(present)


def apply_modality_dropout(batch: Batch, p: float, stand_in: Mapping[str, Tensor], seed: int, epoch: int,
                           unit: str = "both") -> Batch:
    """``batch`` with modalities dropped (see :func:`dropout_present`); identity for ``p = 0``."""
    if p <= 0:
        return batch
    modalities = list(batch.features)
    present = dropout_present(batch.dialogue_ids, batch.lengths.tolist(), len(modalities), p, seed, epoch, unit)
    return replace_absent(batch, present, stand_in, modalities)


__all__ = ["DROPOUT_UNITS", "STAND_IN_FILE", "apply_modality_dropout", "dropout_present", "load_stand_in", "replace_absent", "resolve_stand_in",
           "save_stand_in", "select_dialogues", "stack_subsets", "subset_log_probs", "subset_masks", "subset_name", "training_means"]
