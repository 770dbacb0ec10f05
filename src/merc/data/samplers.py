"""Resumable, process-aware batch sampling of dialogues.

Two properties the training engine needs and torch's default samplers do not give:

* **Resumable shuffling.** The order of epoch ``e`` is a pure function of ``(seed, e)``
  (:class:`EpochShuffleSampler`), so a run resumed from a checkpoint after epoch ``k`` sees
  exactly the batches an uninterrupted run sees in epochs ``k+1, k+2, ...``. Lightning calls
  ``set_epoch`` on ``dataloader.batch_sampler.sampler`` at the start of every epoch.
* **Same effective batch in every process count.** ``batch_size`` is the number of dialogues
  per *optimiser step over all processes*. :class:`ShardedBatchSampler` cuts the epoch's order
  into such global batches and gives each process its contiguous slice of every global batch,
  so training with 1 or ``W`` processes sees the same dialogues per step. Evaluation shards the
  split into ``W`` contiguous parts without padding, so gathering the processes' predictions
  in rank order yields every utterance exactly once, in dataset order.

The process rank and count are read lazily (when iterating), from ``torch.distributed`` when a
process group is initialised, else 0 and 1.
"""

from __future__ import annotations

import math
from typing import Iterator, Sized

import numpy as np
import torch
from torch.utils.data import Sampler

_EPOCH_STRIDE = 1_000_003  # separates the permutation streams of (seed, epoch) pairs


def process_rank_and_count() -> tuple[int, int]:
    """``(rank, world_size)`` of this process (``(0, 1)`` outside ``torch.distributed``)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class EpochShuffleSampler(Sampler[int]):
    """All indices ``0..n-1`` in an order determined by ``(seed, epoch)`` only.

    Args:
        size: number of items ``n``.
        seed: base seed.
        shuffle: ``False`` yields ``0..n-1`` in order.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True) -> None:
        self.size = int(size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` (called by Lightning before every epoch)."""
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """``[n]`` int64 indices of the current epoch."""
        if not self.shuffle:
            return np.arange(self.size, dtype=np.int64)
        generator = torch.Generator().manual_seed(self.seed * _EPOCH_STRIDE + self.epoch)
        return torch.randperm(self.size, generator=generator).numpy()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.size


class ShardedBatchSampler(Sampler[list[int]]):
    """Batches of this process's share of each global batch.

    Training (``pad=True``): the order of ``sampler`` is cut into global batches of
    ``batch_size``; process ``r`` of ``W`` takes the ``r``-th of ``W`` near-equal contiguous
    parts of each. Every process yields the same number of batches (DDP needs that); when a
    final global batch has fewer than ``W`` items, processes without an item of their own
    repeat one (the only duplication, at most ``W - 1`` dialogues per epoch).

    Evaluation (``pad=False``): process ``r`` takes the ``r``-th contiguous shard of the
    split (no duplication) and batches it by ``ceil(batch_size / W)``.

    Args:
        sampler: the item order (:class:`EpochShuffleSampler`); exposed as ``.sampler`` so
            Lightning's per-epoch ``set_epoch`` reaches it.
        batch_size: items per global batch (over all processes).
        pad: training mode (see above).
    """

    def __init__(self, sampler: EpochShuffleSampler, batch_size: int, pad: bool = True) -> None:
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.pad = pad

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = process_rank_and_count()
        order = self.sampler.order()
        if not self.pad:
            shard = np.array_split(order, world)[rank]
            step = math.ceil(self.batch_size / world)
            for start in range(0, len(shard), step):
                yield shard[start:start + step].tolist()
            return
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            if world == 1:
                yield chunk.tolist()
            elif len(chunk) >= world:
                yield np.array_split(chunk, world)[rank].tolist()
            else:
                yield [int(chunk[rank % len(chunk)])]

    def __len__(self) -> int:
        rank, world = process_rank_and_count()
        if not self.pad:
            return math.ceil(len(np.array_split(np.arange(len(self.sampler)), world)[rank])
                             / math.ceil(self.batch_size / world))
        return math.ceil(len(self.sampler) / self.batch_size)


def sharded_batches(items: Sized, batch_size: int, shuffle: bool, seed: int = 0) -> ShardedBatchSampler:
    """The batch sampler :func:`merc.data.collate.make_loader` uses for ``distributed=True``."""
    return ShardedBatchSampler(EpochShuffleSampler(len(items), seed, shuffle), batch_size, pad=shuffle)
