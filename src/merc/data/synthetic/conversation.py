"""Conversation structure of synthetic data: dialogue lengths, turn-taking and emotion labels.

Everything is computed for all utterances of the dataset at once (flat arrays of length ``N``,
dialogues concatenated in order); per-dialogue quantities are broadcast with ``dlg`` — the
dialogue index of each utterance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from merc.data.synthetic.config import SyntheticConfig


@dataclass
class Conversations:
    """Flat conversation structure of ``N`` utterances in ``D`` dialogues.

    Attributes:
        lengths: ``[D]`` utterances per dialogue.
        split: ``[D]`` split name of each dialogue.
        parties: ``[D]`` number of parties per dialogue.
        dlg: ``[N]`` dialogue index of each utterance.
        party: ``[N]`` party index within its dialogue (names come from the config).
        speaker: ``[N]`` global speaker-instance index (a party of one dialogue).
        labels: ``[N]`` int64 class index.
        inherited: ``[N]`` bool, True when the label was kept from the speaker's previous utterance.
    """

    lengths: np.ndarray
    split: np.ndarray
    parties: np.ndarray
    dlg: np.ndarray
    party: np.ndarray
    speaker: np.ndarray
    labels: np.ndarray
    inherited: np.ndarray

    @property
    def num_speakers(self) -> int:
        """Number of speaker instances (sum of parties over dialogues)."""
        return int(self.parties.sum())


def dialogue_lengths(rng: np.random.Generator, count: int, low: int, high: int, total: int | None) -> np.ndarray:
    """Sample ``count`` lengths uniformly in ``[low, high]``; if ``total`` is set, rescale them to sum to it.

    The rescaled lengths keep their relative spread; the rounding remainder is handed out one
    utterance at a time to random dialogues that still have room.

    Returns:
        ``int64`` array ``[count]`` with every entry in ``[low, high]``.
    """
    lengths = rng.integers(low, high + 1, size=count)
    if total is None or count == 0:
        return lengths.astype(np.int64)
    span = high - low
    extra = (lengths - low).astype(np.float64)
    room = total - count * low
    extra = np.floor(extra * room / extra.sum()) if extra.sum() > 0 else np.zeros(count)
    extra = np.minimum(extra, span).astype(np.int64)
    deficit = room - int(extra.sum())
    while deficit > 0:  # terminates: the config guarantees total ≤ count · high
        open_slots = np.flatnonzero(extra < span)
        pick = rng.choice(open_slots, size=min(deficit, open_slots.size), replace=False)
        extra[pick] += 1
        deficit -= pick.size
    return low + extra


def sample_conversations(config: SyntheticConfig, structure_rng: np.random.Generator,
                         label_rng: np.random.Generator) -> Conversations:
    """Dialogue lengths and splits, who speaks when, and every utterance's emotion label.

    Labels follow per-speaker inertia: with probability ``config.inertia`` a speaker keeps the
    label of their own previous utterance; otherwise a fresh label is drawn from the speaker's
    distribution ``(1 - speaker_bias) · prior + speaker_bias · Dirichlet(concentration · C · prior)``.
    The marginal class distribution therefore stays at the prior.
    """
    split_names, lengths = [], []
    for split in ("train", "dev", "test"):
        count = getattr(config, f"{split}_dialogues")
        lengths.append(dialogue_lengths(structure_rng, count, config.min_length, config.max_length,
                                        getattr(config, f"{split}_utterances")))
        split_names += [split] * count
    lengths_arr = np.concatenate(lengths).astype(np.int64)
    D, N = lengths_arr.size, int(lengths_arr.sum())
    dlg = np.repeat(np.arange(D), lengths_arr)
    starts = np.concatenate([[0], np.cumsum(lengths_arr)[:-1]])
    parties = structure_rng.integers(config.num_speakers, config.parties + 1, size=D)

    # Turn-taking: at each utterance the floor passes to another party with prob. turn_switch.
    n_parties = parties[dlg]
    switch = structure_rng.random(N) < config.turn_switch
    offset = 1 + np.floor(structure_rng.random(N) * np.maximum(n_parties - 1, 1)).astype(np.int64)
    step = np.where(switch, offset, 0)
    step[starts] = structure_rng.integers(0, parties)  # random first speaker
    cum = np.cumsum(step)
    party = (cum - cum[starts][dlg] + step[starts][dlg]) % n_parties
    speaker = party + (np.cumsum(parties) - parties)[dlg]

    labels, inherited = _inertial_labels(config, label_rng, speaker, parties.sum(), N)
    return Conversations(lengths_arr, np.asarray(split_names), parties, dlg, party, speaker, labels, inherited)


def _inertial_labels(config: SyntheticConfig, rng: np.random.Generator, speaker: np.ndarray, num_speakers: int,
                     N: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with per-speaker inertia, vectorised.

    A label is the fresh draw at the speaker's most recent "reset" utterance (one that did not
    keep its previous label). Sorting utterances by (speaker, position) makes every speaker's
    turns contiguous; a running maximum of reset positions then finds that utterance.
    """
    C = config.num_classes
    prior = np.ones(C) if config.class_prior is None else np.asarray(config.class_prior, dtype=np.float64)
    prior = prior / prior.sum()
    own = rng.dirichlet(np.maximum(config.speaker_concentration * C * prior, 1e-3), size=num_speakers)
    dist = (1.0 - config.speaker_bias) * prior + config.speaker_bias * own  # (S, C)
    cdf = np.cumsum(dist, axis=1)[speaker]  # (N, C)
    fresh = np.minimum((rng.random(N)[:, None] > cdf).sum(axis=1), C - 1)
    keep = rng.random(N) < config.inertia

    order = np.argsort(speaker, kind="stable")  # stable: positions stay increasing per speaker
    spk_sorted = speaker[order]
    first_turn = np.concatenate([[True], spk_sorted[1:] != spk_sorted[:-1]])
    reset = first_turn | ~keep[order]
    last_reset = np.maximum.accumulate(np.where(reset, np.arange(N), -1))
    labels = np.empty(N, dtype=np.int64)
    labels[order] = fresh[order][last_reset]
    inherited = np.empty(N, dtype=bool)
    inherited[order] = ~reset
    return labels, inherited
