"""Context-aware encoder inputs: each utterance with its speaker-tagged dialogue history.

As in EmoBERTa (Kim & Vossen, 2021) and CoMPM (Lee & Lee, 2022), the target utterance is
encoded together with the dialogue before it, every utterance prefixed by its speaker::

    [CLS] Ross: Hi. Monica: How was it? ... [SEP] Ross: We got the apartment! [SEP]
          '----------- past k utterances -----------'  '----- the target -----'

The past goes in segment A (token type 0) and the target in segment B (token type 1). When the
input is longer than ``max_length`` the *oldest* context tokens are dropped first (truncation
from the left), then the end of the target, so the target and its nearest context survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from merc.data.schema import Dialogue


@dataclass
class ContextInputs:
    """Token ids of every (dialogue, utterance) sample, unpadded.

    Attributes:
        ids: per sample, the full token id list (special tokens included).
        segments: per sample, the index where segment B (the target) starts.
        labels: ``[N]`` int64 class index (``-1`` = unlabelled).
    """

    ids: list[list[int]]
    segments: list[int]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def tagged(dialogue: Dialogue) -> list[str]:
    """``"speaker: text"`` for each utterance of ``dialogue``."""
    texts = dialogue.texts or [""] * len(dialogue)
    return [f"{s}: {t}" for s, t in zip(dialogue.speakers, texts)]


def build_inputs(dialogues: Sequence[Dialogue], tokenizer: Any, context: int = 8, max_length: int = 128) -> ContextInputs:
    """Tokenise every utterance once, then assemble each target with up to ``context`` past
    utterances of its dialogue, truncated from the left to ``max_length`` tokens."""
    if max_length < 8:
        raise ValueError("max_length must be at least 8 tokens")
    lines = [line for d in dialogues for line in tagged(d)]
    pieces = tokenizer(lines, add_special_tokens=False, truncation=False)["input_ids"] if lines else []
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    ids: list[list[int]] = []
    segments: list[int] = []
    start = 0
    for d in dialogues:
        own = pieces[start:start + len(d)]
        start += len(d)
        for j in range(len(d)):
            target = own[j][: max_length - 3]
            budget = max_length - 3 - len(target)
            past = [tok for piece in own[max(0, j - context):j] for tok in piece]
            # keep the most recent ``budget`` tokens (all of them when they fit: a negative start
            # would slice from the end and drop context that fits)
            past = past[max(0, len(past) - budget):] if budget > 0 else []
            ids.append([cls, *past, sep, *target, sep])
            segments.append(len(past) + 2)
    labels = np.concatenate([d.labels if d.labels is not None else np.full(len(d), -1) for d in dialogues]) \
        if dialogues else np.zeros(0, np.int64)
    return ContextInputs(ids, segments, labels.astype(np.int64))


def collate(inputs: ContextInputs, index: Sequence[int], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad the samples ``index`` to their longest: ``input_ids``, ``attention_mask``,
    ``token_type_ids`` ``(B, T)`` and ``labels`` ``(B,)``."""
    rows = [inputs.ids[i] for i in index]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    lengths = torch.tensor([len(r) for r in rows])
    for b, r in enumerate(rows):
        input_ids[b, : len(r)] = torch.tensor(r)
    positions = torch.arange(width)[None, :]  # (1, T)
    attention = (positions < lengths[:, None]).long()
    segment = torch.tensor([inputs.segments[i] for i in index])[:, None]
    token_type = ((positions >= segment) & attention.bool()).long()
    return {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": token_type,
            "labels": torch.as_tensor(inputs.labels[list(index)])}


class ContextDataset(torch.utils.data.Dataset):
    """Indexable view of :class:`ContextInputs` for a ``DataLoader`` (yields sample indices)."""

    def __init__(self, inputs: ContextInputs) -> None:
        self.inputs = inputs

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> int:
        return i


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int = 0, epoch: int = 0,
                     pool: int = 50) -> list[list[int]]:
    """Shuffled batches of similar-length samples (length bucketing).

    The samples are shuffled, cut into pools of ``pool`` batches, each pool sorted by length and
    cut into batches; the batch order is shuffled again. Every sample appears exactly once per
    epoch, the batches stay random in composition across pools, and padding (wasted tokens) drops
    to nearly nothing. ``pool=1`` gives plain shuffled batches.
    """
    if batch_size < 1 or pool < 1:
        raise ValueError("batch_size and pool must be at least 1")
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    span = batch_size * pool
    batches: list[list[int]] = []
    for start in range(0, len(perm), span):
        chunk = perm[start:start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """A ``batch_sampler`` yielding :func:`bucketed_batches`, reshuffled every epoch."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, pool: int = 50) -> None:
        self.lengths, self.batch_size, self.seed, self.pool = list(lengths), batch_size, seed, pool
        self.epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size * self.pool)
        return full * self.pool + -(-rest // self.batch_size)  # only the last pool may hold a short batch

    def __iter__(self):  # noqa: ANN204 - Iterator[list[int]]
        batches = bucketed_batches(self.lengths, self.batch_size, self.seed, self.epoch, self.pool)
        self.epoch += 1
        return iter(batches)


def make_loader(inputs: ContextInputs, batch_size: int, shuffle: bool, seed: int = 0,
                pad_id: int = 0, bucket: int = 50) -> torch.utils.data.DataLoader:
    """Batches of padded samples.

    Training batches (``shuffle``) are length-bucketed over pools of ``bucket`` batches
    (:func:`bucketed_batches`; ``bucket=1``: plain shuffling). Evaluation batches are
    length-sorted (less padding) and carry ``order`` so predictions can be put back in dataset order.
    """
    if shuffle:
        if bucket > 1:
            sampler = BucketBatchSampler([len(x) for x in inputs.ids], batch_size, seed, bucket)
            return torch.utils.data.DataLoader(ContextDataset(inputs), batch_sampler=sampler,
                                               collate_fn=lambda idx: collate(inputs, idx, pad_id))
        generator = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(ContextDataset(inputs), batch_size=batch_size, shuffle=True,
                                           generator=generator, collate_fn=lambda idx: collate(inputs, idx, pad_id))
    order = np.argsort([len(x) for x in inputs.ids], kind="stable")
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]

    def sorted_collate(batch: list[list[int]]) -> dict[str, torch.Tensor]:
        out = collate(inputs, batch[0], pad_id)
        out["order"] = torch.as_tensor(batch[0])
        return out

    return torch.utils.data.DataLoader(batches, batch_size=1, shuffle=False, collate_fn=sorted_collate)
