"""Typed configuration of the synthetic conversation generator (validated on construction).

Every field has a default, so ``SyntheticConfig(text_dim=64)`` is a complete configuration.
Lists given for tuple fields (e.g. from YAML) are converted to tuples. Invalid values raise
:class:`~merc.errors.ConfigError` naming the field and the fix. See ``docs/synthetic.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from merc.errors import ConfigError

# Codes stored per utterance in ``Dialogue.meta["interaction"]``.
UNIQUE, REDUNDANT, SYNERGY, CONTEXT_ONLY = 0, 1, 2, 3
INTERACTION_NAMES: tuple[str, ...] = ("unique", "redundant", "synergy", "context_only")
# Bits of ``Dialogue.meta["evidence_mask"]`` (modality order "tav").
MODALITY_BITS: dict[str, int] = {"t": 1, "a": 2, "v": 4}
#: values of ``SyntheticConfig.planting``
PLANTINGS: tuple[str, ...] = ("shared", "subspace")


@dataclass
class SyntheticConfig:
    """What the synthetic generator produces. All proportions are probabilities.

    Sizes are per split; a ``*_utterances`` total, when set, is met exactly by adjusting the
    sampled dialogue lengths within ``[min_length, max_length]``.
    """

    name: str = "synthetic"
    """Dataset name recorded in the result."""
    label_names: tuple[str, ...] = ("c0", "c1", "c2", "c3")
    """Class names in index order; their number is the number of classes ``C``."""
    class_prior: tuple[float, ...] | None = None
    """Marginal class distribution (normalised; ``None`` = uniform)."""

    train_dialogues: int = 32
    """Number of train dialogues."""
    dev_dialogues: int = 0
    """Number of dev dialogues (0 = no dev split; the loader then carves one from train)."""
    test_dialogues: int = 8
    """Number of test dialogues."""
    train_utterances: int | None = None
    """Exact total utterances of the train split (``None`` = whatever the lengths sum to)."""
    dev_utterances: int | None = None
    """Exact total utterances of the dev split (``None`` = free)."""
    test_utterances: int | None = None
    """Exact total utterances of the test split (``None`` = free)."""
    sessions: int = 0
    """Recording sessions stored as ``meta["session"]`` (``0``: none). As in IEMOCAP, train and
    dev dialogues are spread in order over sessions ``1 … sessions − 1`` and the test dialogues
    form the last session, so leave-one-session-out protocols can run (``--protocol``)."""
    min_length: int = 6
    """Shortest dialogue (utterances)."""
    max_length: int = 20
    """Longest dialogue (utterances)."""

    num_speakers: int = 2
    """Parties per dialogue (the minimum when ``max_speakers`` is set)."""
    max_speakers: int | None = None
    """If set, each dialogue has a uniform number of parties in ``[num_speakers, max_speakers]``."""
    speaker_names: tuple[str, ...] | None = None
    """Names of parties 0, 1, ... (reused in every dialogue); ``None`` = ``S1, S2, ...``."""
    turn_switch: float = 0.8
    """Probability that the next utterance is by another party (chosen uniformly)."""
    inertia: float = 0.6
    """Probability that a speaker keeps the label of their own previous utterance."""
    speaker_bias: float = 0.3
    """Weight of the speaker's own emotion distribution against ``class_prior`` in fresh labels."""
    speaker_concentration: float = 1.0
    """Dirichlet concentration (per class, times ``C``·prior) of speakers' own distributions;
    smaller = more idiosyncratic speakers."""

    text_dim: int = 32
    """Feature dimension of modality ``t``."""
    audio_dim: int = 24
    """Feature dimension of modality ``a``."""
    visual_dim: int = 16
    """Feature dimension of modality ``v``."""
    evidence_dim: int = 4
    """Latent dimension of the class prototypes (orthonormal when ``evidence_dim ≥ C``)."""
    nuisance_dim: int = 4
    """Latent dimension of label-independent dialogue and speaker offsets."""

    unique: float = 0.3
    """Share of utterances whose evidence lies in exactly one modality."""
    redundant: float = 0.3
    """Share whose (same) evidence lies in all three modalities."""
    synergy: float = 0.2
    """Share whose evidence is split XOR-like over two or three modalities."""
    context_only: float = 0.2
    """Share with no own evidence (label recoverable only from conversational context)."""
    unique_modality_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Relative odds that unique evidence is in ``t``, ``a``, ``v``."""
    synergy_triple: float = 0.25
    """Share of synergy utterances split over all three modalities (the rest: a random pair)."""
    planting: str = "shared"
    """Where the kinds live: ``shared`` (every kind writes the same class prototypes into each
    modality's one class block) or ``subspace`` (unique, redundant and synergy evidence each in
    their own block: modality-private prototypes for unique, one shared latent written into every
    modality for redundant, separate key prototypes for synergy)."""

    evidence_scale: float = 3.0
    """Norm of a planted class prototype (the latent noise has std ``noise_scale`` per dimension)."""
    noise_scale: float = 1.0
    """Std of the Gaussian noise in the planted latent space and in the ``noise_rank`` distractor directions."""
    noise_rank: int = 32
    """Number of further feature directions carrying label-free noise (capped at ``d_m - latent_dim``)."""
    residual_noise: float = 0.05
    """Std of the small isotropic noise added to every feature dimension."""
    nuisance_scale: float = 1.0
    """Std of the dialogue and speaker offsets in the nuisance subspace."""
    confusable_pairs: tuple[tuple[int, int], ...] = ()
    """Class pairs whose prototypes are made similar (e.g. hap/exc)."""
    confusability: float = 0.0
    """Cosine similarity given to the prototypes of each confusable pair, in ``[0, 1)``."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance copied into ``DialogueDataset.meta`` (not used by the generator)."""

    def __post_init__(self) -> None:
        for name in ("label_names", "class_prior", "speaker_names", "unique_modality_weights", "confusable_pairs"):
            value = getattr(self, name)
            _check(value is None or isinstance(value, (list, tuple)), name, f"must be a list, got {value!r}",
                   "give a YAML/Python list")
        try:
            self.label_names = tuple(str(n) for n in self.label_names)
            if self.class_prior is not None:
                self.class_prior = tuple(float(p) for p in self.class_prior)
            if self.speaker_names is not None:
                self.speaker_names = tuple(str(s) for s in self.speaker_names)
            self.unique_modality_weights = tuple(float(w) for w in self.unique_modality_weights)  # type: ignore[assignment]
            self.confusable_pairs = tuple(tuple(int(c) for c in pair) for pair in self.confusable_pairs)  # type: ignore[misc]
        except (TypeError, ValueError) as err:
            raise ConfigError(f"synthetic config has a malformed list value ({err}); give lists of numbers/names") from None
        for name in ("train_dialogues", "dev_dialogues", "test_dialogues", "sessions", "min_length", "max_length", "num_speakers",
                     "text_dim", "audio_dim", "visual_dim", "evidence_dim", "nuisance_dim", "noise_rank"):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool), name, f"must be an integer, got {value!r}",
                   "give a whole number")
        self._validate()

    # -- validation ------------------------------------------------------------------------
    def _validate(self) -> None:
        C = len(self.label_names)
        _check(C >= 2, "label_names", f"needs at least 2 classes, got {C}", "give two or more names")
        _check(len(set(self.label_names)) == C, "label_names", "has duplicate names", "make the names unique")
        if self.class_prior is not None:
            _check(len(self.class_prior) == C, "class_prior", f"has {len(self.class_prior)} entries for {C} classes",
                   "give one weight per label name")
            _check(all(p >= 0 for p in self.class_prior) and sum(self.class_prior) > 0, "class_prior",
                   "must be non-negative with a positive sum", "use counts or probabilities")
        for split in ("train", "test", "dev"):
            n = getattr(self, f"{split}_dialogues")
            _check(isinstance(n, int) and n >= (0 if split == "dev" else 1), f"{split}_dialogues",
                   f"must be an integer ≥ {0 if split == 'dev' else 1}, got {n!r}", "change the count")
        _check(self.sessions == 0 or 2 <= self.sessions <= self.train_dialogues + self.dev_dialogues + 1, "sessions",
               f"must be 0 or between 2 and train_dialogues + dev_dialogues + 1, got {self.sessions}",
               "use 0 (no sessions) or e.g. 5")
        _check(1 <= self.min_length <= self.max_length, "min_length/max_length",
               f"need 1 ≤ min_length ≤ max_length, got {self.min_length}, {self.max_length}", "fix the range")
        for split in ("train", "dev", "test"):
            total = getattr(self, f"{split}_utterances")
            n = getattr(self, f"{split}_dialogues")
            if total is not None:
                _check(n * self.min_length <= total <= n * self.max_length, f"{split}_utterances",
                       f"{total} cannot be split into {n} dialogues of {self.min_length}-{self.max_length} utterances",
                       "change the total, the dialogue count or the length range")
        _check(self.num_speakers >= 1, "num_speakers", f"must be ≥ 1, got {self.num_speakers}", "use 2 or more")
        if self.max_speakers is not None:
            _check(self.max_speakers >= self.num_speakers, "max_speakers",
                   f"must be ≥ num_speakers ({self.num_speakers}), got {self.max_speakers}", "raise it or unset it")
        if self.speaker_names is not None:
            _check(len(self.speaker_names) >= self.parties and len(set(self.speaker_names)) == len(self.speaker_names),
                   "speaker_names", f"needs {self.parties} distinct names, got {list(self.speaker_names)}",
                   "give one distinct name per party")
        for name in ("turn_switch", "inertia", "speaker_bias", "synergy_triple"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, name, f"must be in [0, 1], got {value}", "use a probability")
        _check(self.inertia < 1.0, "inertia", "must be < 1 (labels would never change)", "use e.g. 0.9")
        _check(self.speaker_concentration > 0, "speaker_concentration",
               f"must be > 0, got {self.speaker_concentration}", "use e.g. 1.0")
        for name, value in self.dims.items():
            _check(value >= self.latent_dim, f"{_DIM_FIELDS[name]}",
                   f"is {value} but the planted latent space needs {self.latent_dim} dimensions "
                   f"(evidence_blocks·evidence_dim + nuisance_dim)", "raise the dimension or lower evidence_dim/nuisance_dim")
        _check(self.evidence_dim >= 1, "evidence_dim", f"must be ≥ 1, got {self.evidence_dim}", "use e.g. 8")
        _check(self.nuisance_dim >= 0, "nuisance_dim", f"must be ≥ 0, got {self.nuisance_dim}", "use e.g. 4")
        shares = self.interaction_shares
        _check(all(s >= 0 for s in shares) and abs(sum(shares) - 1.0) < 1e-6,
               "unique/redundant/synergy/context_only",
               f"must be non-negative and sum to 1, got {shares} (sum {sum(shares):.4g})", "rescale the shares")
        _check(len(self.unique_modality_weights) == 3 and all(w >= 0 for w in self.unique_modality_weights)
               and sum(self.unique_modality_weights) > 0, "unique_modality_weights",
               "needs three non-negative weights (t, a, v) with a positive sum", "e.g. [2, 1, 1]")
        _check(self.planting in PLANTINGS, "planting", f"must be one of {', '.join(PLANTINGS)}, got {self.planting!r}",
               "use 'shared' (the default) or 'subspace'")
        _check(self.noise_rank >= 0, "noise_rank", f"must be ≥ 0, got {self.noise_rank}", "use e.g. 32")
        for name in ("evidence_scale", "noise_scale", "nuisance_scale", "residual_noise"):
            value = getattr(self, name)
            _check(value >= 0, name, f"must be ≥ 0, got {value}", "use a non-negative scale")
        _check(self.noise_scale > 0 or self.evidence_scale > 0, "noise_scale", "and evidence_scale are both 0",
               "give features some variance")
        _check(0.0 <= self.confusability < 1.0, "confusability", f"must be in [0, 1), got {self.confusability}",
               "use e.g. 0.5")
        for pair in self.confusable_pairs:
            _check(len(pair) == 2 and all(0 <= c < C for c in pair) and pair[0] != pair[1], "confusable_pairs",
                   f"has invalid pair {list(pair)} for {C} classes", "give pairs of two distinct class indices")
        touched = [c for pair in self.confusable_pairs for c in pair]
        _check(len(touched) == len(set(touched)), "confusable_pairs", "uses a class in more than one pair",
               "make the pairs disjoint")

    # -- derived ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def parties(self) -> int:
        """Largest number of parties in a dialogue."""
        return self.max_speakers if self.max_speakers is not None else self.num_speakers

    @property
    def dims(self) -> dict[str, int]:
        """Modality → feature dimension."""
        return {"t": self.text_dim, "a": self.audio_dim, "v": self.visual_dim}

    @property
    def evidence_blocks(self) -> int:
        """Class blocks per modality: 1 (``shared``) or 3 (``subspace``: unique, redundant, synergy)."""
        return 3 if self.planting == "subspace" else 1

    @property
    def latent_dim(self) -> int:
        """Planted latent dimensions per modality: class block(s) then nuisance block."""
        return self.evidence_blocks * self.evidence_dim + self.nuisance_dim

    @property
    def interaction_shares(self) -> tuple[float, float, float, float]:
        """Shares of (unique, redundant, synergy, context_only)."""
        return (self.unique, self.redundant, self.synergy, self.context_only)

    def replace(self, **overrides: Any) -> "SyntheticConfig":
        """A validated copy with ``overrides``; unknown field names raise ``ConfigError``."""
        unknown = sorted(set(overrides) - set(field_names()))
        if unknown:
            raise ConfigError(f"unknown synthetic option(s) {', '.join(unknown)}; "
                              f"valid options: seed, {', '.join(field_names())}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (tuples as lists), e.g. for ``DialogueDataset.meta``."""
        return _plain(dataclasses.asdict(self))


_DIM_FIELDS = {"t": "text_dim", "a": "audio_dim", "v": "visual_dim"}


def field_names() -> list[str]:
    """Names of all :class:`SyntheticConfig` fields."""
    return [f.name for f in dataclasses.fields(SyntheticConfig)]


def _check(ok: bool, field_name: str, problem: str, fix: str) -> None:
    if not ok:
        raise ConfigError(f"synthetic config field '{field_name}' {problem}; {fix}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
