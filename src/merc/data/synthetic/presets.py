"""Registered synthetic presets: ``synthetic-iemocap``, ``synthetic-small``, ``synthetic-context``,
``synthetic-subspace`` and ``synthetic-subspace-small``.

Each builder takes ``path`` (ignored; catalog builders share that signature), ``seed`` and
keyword overrides of any :class:`SyntheticConfig` field::

    DATASETS.create("synthetic-small", seed=3, inertia=0.9, text_dim=64)
"""

from __future__ import annotations

from typing import Any

from merc.data.schema import DialogueDataset
from merc.data.synthetic.config import SyntheticConfig
from merc.data.synthetic.generator import generate
from merc.registry import DATASETS

# IEMOCAP-6 class order of DATA.md, and its test-split class counts as the prior.
IEMOCAP6 = ("hap", "sad", "neu", "ang", "exc", "fru")
IEMOCAP6_COUNTS = (144.0, 245.0, 384.0, 170.0, 299.0, 381.0)

PRESETS: dict[str, SyntheticConfig] = {
    "synthetic-iemocap": SyntheticConfig(
        name="synthetic-iemocap", label_names=IEMOCAP6, class_prior=IEMOCAP6_COUNTS,
        train_dialogues=120, test_dialogues=31, train_utterances=5810, test_utterances=1623, sessions=5,
        min_length=12, max_length=90, speaker_names=("M", "F"), turn_switch=0.75, inertia=0.6,
        speaker_bias=0.3, speaker_concentration=1.0,
        text_dim=1024, audio_dim=1582, visual_dim=342, evidence_dim=8, nuisance_dim=8,
        unique=0.35, redundant=0.25, synergy=0.25, context_only=0.15, unique_modality_weights=(0.5, 0.3, 0.2),
        synergy_triple=0.1, evidence_scale=5.0, noise_scale=1.0, noise_rank=64, residual_noise=0.05,
        nuisance_scale=2.0, confusable_pairs=((0, 4), (3, 5)), confusability=0.5),
    "synthetic-small": SyntheticConfig(
        name="synthetic-small", label_names=("c0", "c1", "c2", "c3"),
        train_dialogues=32, test_dialogues=8, min_length=6, max_length=20, speaker_names=("A", "B"),
        text_dim=32, audio_dim=24, visual_dim=16, evidence_dim=4, nuisance_dim=4,
        unique=0.4, redundant=0.4, synergy=0.1, context_only=0.1, synergy_triple=0.0,
        evidence_scale=5.0, noise_scale=1.0, noise_rank=8),
    "synthetic-context": SyntheticConfig(
        name="synthetic-context", label_names=IEMOCAP6, class_prior=IEMOCAP6_COUNTS,
        train_dialogues=120, test_dialogues=31, min_length=30, max_length=90, speaker_names=("M", "F"),
        turn_switch=0.75, inertia=0.85, speaker_bias=0.0,
        text_dim=256, audio_dim=128, visual_dim=64, evidence_dim=8, nuisance_dim=8,
        unique=0.3, redundant=0.3, synergy=0.1, context_only=0.3, unique_modality_weights=(0.5, 0.25, 0.25),
        synergy_triple=0.0, evidence_scale=6.0, noise_scale=1.0, noise_rank=64, nuisance_scale=2.0),
    # Kinds in distinct subspaces (planting="subspace"): each kind identifiable from one modality.
    "synthetic-subspace": SyntheticConfig(
        name="synthetic-subspace", label_names=IEMOCAP6, class_prior=IEMOCAP6_COUNTS,
        train_dialogues=120, test_dialogues=31, min_length=12, max_length=60, speaker_names=("M", "F"),
        turn_switch=0.75, inertia=0.6, speaker_bias=0.3, planting="subspace",
        text_dim=256, audio_dim=128, visual_dim=64, evidence_dim=8, nuisance_dim=8,
        unique=0.3, redundant=0.3, synergy=0.25, context_only=0.15, unique_modality_weights=(0.5, 0.3, 0.2),
        synergy_triple=0.0, evidence_scale=5.0, noise_scale=1.0, noise_rank=32, nuisance_scale=2.0),
    "synthetic-subspace-small": SyntheticConfig(
        name="synthetic-subspace-small", label_names=("c0", "c1", "c2", "c3"),
        train_dialogues=40, test_dialogues=10, min_length=8, max_length=20, speaker_names=("A", "B"),
        planting="subspace", text_dim=32, audio_dim=24, visual_dim=24, evidence_dim=4, nuisance_dim=4,
        unique=0.3, redundant=0.3, synergy=0.3, context_only=0.1, synergy_triple=0.0,
        evidence_scale=5.0, noise_scale=1.0, noise_rank=4),
}


def build_preset(name: str, seed: int = 0, **overrides: Any) -> DialogueDataset:
    """Generate preset ``name`` with ``overrides`` applied (unknown fields raise ``ConfigError``)."""
    config = PRESETS[name].replace(**overrides)
    return generate(config, seed)


@DATASETS.register("synthetic-iemocap")
def synthetic_iemocap(path: str | None = None, seed: int = 0, **overrides: Any) -> DialogueDataset:
    """Synthetic data in IEMOCAP's shape: 151 dialogues / 7433 utterances, dims 1024/1582/342, 6 classes.

    Train 120 dialogues / 5810 utterances, test 31 / 1623; no dev split (carved from train by the
    loader). Speakers ``M``/``F``; IEMOCAP-6 label names and test class proportions; planted
    unique/redundant/synergistic/context-only evidence (see ``docs/synthetic.md``).
    """
    return build_preset("synthetic-iemocap", seed, **overrides)


@DATASETS.register("synthetic-small")
def synthetic_small(path: str | None = None, seed: int = 0, **overrides: Any) -> DialogueDataset:
    """Tiny, easy synthetic data for tests: 40 dialogues of 6-20 utterances, dims 32/24/16, 4 classes."""
    return build_preset("synthetic-small", seed, **overrides)


@DATASETS.register("synthetic-context")
def synthetic_context(path: str | None = None, seed: int = 0, **overrides: Any) -> DialogueDataset:
    """Synthetic data whose labels often depend on conversational context (speaker inertia 0.85).

    151 dialogues of 30-90 utterances, dims 256/128/64, IEMOCAP-6 labels; 30% of utterances carry
    no own evidence (their label is the same speaker's nearby label; no speaker bias, so a bag of
    the dialogue does not give it away) — the preset for comparing context-modelling backbones.
    """
    return build_preset("synthetic-context", seed, **overrides)


@DATASETS.register("synthetic-subspace")
def synthetic_subspace(path: str | None = None, seed: int = 0, **overrides: Any) -> DialogueDataset:
    """Synthetic data whose evidence kinds live in distinct subspaces (``planting="subspace"``).

    151 dialogues of 12-60 utterances, dims 256/128/64, IEMOCAP-6 labels; unique evidence in
    modality-private directions, redundant evidence as one shared latent in every modality,
    synergy keys in their own subspace — so a per-modality decomposer can tell the kinds apart.
    """
    return build_preset("synthetic-subspace", seed, **overrides)


@DATASETS.register("synthetic-subspace-small")
def synthetic_subspace_small(path: str | None = None, seed: int = 0, **overrides: Any) -> DialogueDataset:
    """Tiny subspace-planted data for tests: 50 dialogues of 8-20 utterances, dims 32/24/24, 4 classes."""
    return build_preset("synthetic-subspace-small", seed, **overrides)
