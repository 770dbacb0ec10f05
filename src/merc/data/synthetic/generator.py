"""``generate(config, seed)``: a deterministic synthetic :class:`DialogueDataset`.

Independent random streams are derived from ``seed`` for the conversation structure, the
labels, the evidence assignment, the prototypes/embeddings and each modality's noise, so that
e.g. changing ``audio_dim`` leaves dialogues, labels and the other modalities unchanged.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from merc.data.schema import MODALITIES, Dialogue, DialogueDataset
from merc.data.synthetic.config import INTERACTION_NAMES, MODALITY_BITS, SyntheticConfig
from merc.data.synthetic.conversation import sample_conversations
from merc.data.synthetic.evidence import Planting, assign_evidence, plant_features
from merc.errors import ConfigError


def session_of_dialogues(split: np.ndarray, sessions: int) -> np.ndarray:
    """Session (1-based) of each dialogue: train/dev in order over ``1 … sessions − 1``, test last.

    Shapes:
        - split: ``[D]`` split names; output ``[D]`` int64
    """
    out = np.full(split.size, sessions, dtype=np.int64)
    rest = np.flatnonzero(split != "test")
    out[rest] = 1 + (np.arange(rest.size) * (sessions - 1)) // max(rest.size, 1)
    return out


def generate(config: SyntheticConfig, seed: int = 0) -> DialogueDataset:
    """Generate the dataset described by ``config``; the same ``seed`` gives identical arrays.

    See :func:`generate_with_planting` for the per-utterance ``meta``.
    """
    return generate_with_planting(config, seed)[0]


def generate_with_planting(config: SyntheticConfig, seed: int = 0) -> tuple[DialogueDataset, Planting]:
    """The dataset described by ``config`` and the generator's :class:`Planting` (bases, prototypes).

    Every dialogue's ``meta`` holds per-utterance ``int64`` arrays ``[L]``:

    - ``interaction``: 0 unique, 1 redundant, 2 synergy, 3 context-only (no own evidence);
    - ``evidence_modality``: index into ``"tav"`` of the unique evidence, ``-1`` otherwise;
    - ``evidence_mask``: bit mask of the modalities carrying evidence (t = 1, a = 2, v = 4);
    - ``inherited``: 1 when the label was kept from the same speaker's previous utterance.

    Args:
        config: what to generate.
        seed: non-negative integer seed.

    Returns:
        The planting (for oracles) and a dataset with ``train`` and ``test`` splits (and ``dev`` if ``config.dev_dialogues > 0``);
        ``texts`` are ``None``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synthetic seed must be a non-negative integer, got {seed!r}; pass e.g. seed=0")
    streams = np.random.SeedSequence(int(seed)).spawn(4 + len(MODALITIES))
    structure_rng, label_rng, evidence_rng, prototype_rng = (np.random.default_rng(s) for s in streams[:4])
    noise_rngs = {m: np.random.default_rng(s) for m, s in zip(MODALITIES, streams[4:])}

    # The linear algebra here is small; multi-threaded BLAS only adds start-up cost (10x on a busy machine).
    with threadpool_limits(limits=1, user_api="blas"):
        conv = sample_conversations(config, structure_rng, label_rng)
        evidence = assign_evidence(config, conv.labels, evidence_rng)
        features, planting = plant_features(config, conv, evidence, prototype_rng, noise_rngs)

    names = np.asarray(config.speaker_names or [f"S{i + 1}" for i in range(config.parties)], dtype=object)
    per_utterance = {
        "interaction": evidence.interaction,
        "evidence_modality": evidence.evidence_modality,
        "evidence_mask": evidence.evidence_mask,
        "inherited": conv.inherited.astype(np.int64),
    }
    if config.sessions:
        per_utterance["session"] = np.repeat(session_of_dialogues(conv.split, config.sessions), conv.lengths)
    bounds = np.cumsum(conv.lengths)[:-1]
    width = max(4, len(str(conv.lengths.size - 1)))
    ids = [f"dlg{i:0{width}d}" for i in range(conv.lengths.size)]
    chunks = {
        "speakers": np.split(names[conv.party], bounds),
        "labels": np.split(conv.labels, bounds),
        **{f"x_{m}": np.split(x, bounds) for m, x in features.items()},
        **{f"meta_{k}": np.split(v, bounds) for k, v in per_utterance.items()},
    }
    dialogues = [
        Dialogue(id=ids[i], speakers=chunks["speakers"][i].tolist(),
                 features={m: chunks[f"x_{m}"][i] for m in MODALITIES}, labels=chunks["labels"][i],
                 meta={k: chunks[f"meta_{k}"][i] for k in per_utterance})
        for i in range(conv.lengths.size)
    ]
    splits = {s: [ids[i] for i in np.flatnonzero(conv.split == s)] for s in ("train", "dev", "test")}
    splits = {s: v for s, v in splits.items() if v}
    meta = {
        "generator": "merc.data.synthetic",
        "seed": int(seed),
        "config": config.to_dict(),
        "interaction_codes": dict(enumerate(INTERACTION_NAMES)),
        "evidence_mask_bits": dict(MODALITY_BITS),
        "dev_split": "generated" if "dev" in splits else "absent (the loader carves a seeded share of train)",
        **config.extra,
    }
    dataset = DialogueDataset(config.name, dialogues, list(config.label_names), splits,
                              source=f"synthetic:{config.name} (seed {int(seed)})", meta=meta)
    return dataset, planting
