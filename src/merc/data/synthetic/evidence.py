"""Planted label evidence: which modalities carry it (interaction types) and the feature arrays.

Every utterance gets one *key* per modality that carries evidence (a "carrier"); a carrier's
features contain the class prototype of its key, ``μ[key]``:

- unique: one carrier, key = label;
- redundant: all three modalities carry, every key = label;
- synergy: two or three carriers whose keys are uniform at random except that they sum to the
  label modulo ``C`` (``y = (k_t + k_a) mod C``) — every single key (and, with three carriers,
  every pair of keys) is independent of the label; only the combination reveals it;
- context-only: no carrier.

Each modality ``m`` has a private latent space of ``evidence_dim + nuisance_dim`` dimensions
(class block, then label-independent dialogue and speaker offsets) plus ``noise_rank``
distractor directions, embedded in its ``d_m`` feature dimensions by one random orthonormal map:
``x_m = (z_m + noise_scale·ε) W_m + noise_scale · η B_m + residual_noise · ξ`` with standard
Gaussian ``ε`` (latent noise: sets how well evidence can be read), ``η`` (label-free variance in
``noise_rank`` other directions) and ``ξ`` (small isotropic noise on every dimension). Real
features have such a decaying spectrum; isotropic unit noise in 1000+ dimensions instead lets
any model memorise the training set through noise, and nothing cross-modal is ever learned.

Synergy shares the class prototypes with unique/redundant evidence on purpose: a model can learn
to read keys from the first-order (unique/redundant) signal and then learn to combine them;
synergy hidden in a separate random subspace of a 1000-d input is not learnable by SGD at these
sample sizes. That is the default ``shared`` planting; ``planting="subspace"`` instead gives
each kind its own block of the latent (see :func:`plant_features`) so that the kind is
identifiable from a single modality — for judging per-modality explanations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from merc.data.schema import MODALITIES
from merc.data.synthetic.config import REDUNDANT, SYNERGY, UNIQUE, SyntheticConfig
from merc.data.synthetic.conversation import Conversations

NO_KEY = -1


@dataclass
class Evidence:
    """Where each utterance's label evidence lives.

    Attributes:
        interaction: ``[N]`` int64 code (0 unique, 1 redundant, 2 synergy, 3 context-only).
        evidence_modality: ``[N]`` int64 index into ``"tav"`` for unique evidence, else ``-1``.
        keys: ``[N, 3]`` int64 class key planted in each modality (``-1`` = not a carrier).
    """

    interaction: np.ndarray
    evidence_modality: np.ndarray
    keys: np.ndarray

    @property
    def carriers(self) -> np.ndarray:
        """``[N, 3]`` bool, modality carries (part of) the evidence."""
        return self.keys != NO_KEY

    @property
    def evidence_mask(self) -> np.ndarray:
        """``[N]`` int64 bit mask of carrier modalities (t = 1, a = 2, v = 4)."""
        return self.carriers.astype(np.int64) @ np.array([1, 2, 4], dtype=np.int64)


def _categorical(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64) / np.sum(weights))
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1).astype(np.int64)


def assign_evidence(config: SyntheticConfig, labels: np.ndarray, rng: np.random.Generator) -> Evidence:
    """Draw each utterance's interaction type, carrier modalities and keys.

    The type and carrier draws are independent of the label, so neither reveals the class.
    """
    N, C = labels.size, config.num_classes
    rows = np.arange(N)
    interaction = _categorical(rng, np.asarray(config.interaction_shares), N)
    unique_mod = _categorical(rng, np.asarray(config.unique_modality_weights), N)
    triple = rng.random(N) < config.synergy_triple
    dropped = rng.integers(0, 3, size=N)  # modality left out of a synergy pair
    free_keys = rng.integers(0, C, size=(N, 3))

    carriers = np.zeros((N, 3), dtype=bool)
    is_u, is_r, is_s = interaction == UNIQUE, interaction == REDUNDANT, interaction == SYNERGY
    carriers[rows[is_u], unique_mod[is_u]] = True
    carriers[is_r] = True
    carriers[is_s] = True
    pair = is_s & ~triple
    carriers[rows[pair], dropped[pair]] = False

    # Unique/redundant carriers hold the label; synergy carriers hold free keys except the last,
    # which closes the sum: y = Σ_m k_m mod C.
    keys = np.where(carriers, np.where(is_s[:, None], free_keys, labels[:, None]), NO_KEY)
    last = 2 - np.argmax(carriers[:, ::-1], axis=1)
    others = np.where(carriers, keys, 0).sum(axis=1) - keys[rows, last]
    keys[rows[is_s], last[is_s]] = (labels[is_s] - others[is_s]) % C

    evidence_modality = np.where(is_u, unique_mod, -1).astype(np.int64)
    return Evidence(interaction, evidence_modality, keys.astype(np.int64))


def prototypes(rng: np.random.Generator, count: int, dim: int, pairs: tuple[tuple[int, int], ...] = (),
               similarity: float = 0.0) -> np.ndarray:
    """``[count, dim]`` unit vectors: orthonormal when ``dim ≥ count``, random otherwise.

    For each pair ``(i, j)`` in ``pairs``, prototype ``j`` is bent towards ``i`` so that their
    cosine similarity is ``similarity`` (confusable classes such as hap/exc).
    """
    if dim >= count:
        q, _ = np.linalg.qr(rng.standard_normal((dim, count)))
        protos = q.T.copy()
    else:
        protos = rng.standard_normal((count, dim))
        protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    for i, j in pairs:
        other = protos[j] - (protos[j] @ protos[i]) * protos[i]
        other /= max(np.linalg.norm(other), 1e-12)
        protos[j] = similarity * protos[i] + np.sqrt(1.0 - similarity**2) * other
    return protos


def embedding(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    """``[rows, dim]`` random map with orthonormal rows (``rows ≤ dim``)."""
    q, _ = np.linalg.qr(rng.standard_normal((dim, rows)))
    return q.T.astype(np.float32)


@dataclass
class Planting:
    """The generator's own view of where evidence is written (for oracles and tests).

    Attributes:
        bases: per modality ``[latent_dim + rank, d_m]`` orthonormal rows; the first
            ``latent_dim`` rows embed the planted latent ``z_m``.
        protos: per modality ``{"U"|"R"|"S": [C, evidence_dim]}`` scaled prototypes of each kind
            (with ``shared`` planting all three are the one class-prototype array; with
            ``subspace`` R is the same array in every modality, U and S are modality-private).
        offsets: ``{"U"|"R"|"S": column}`` where each kind's block starts in ``z_m`` (all 0 for
            ``shared``; 0, E, 2E for ``subspace``).
        evidence_dim: ``E``, the width of a block.
    """

    bases: dict[str, np.ndarray]
    protos: dict[str, dict[str, np.ndarray]]
    offsets: dict[str, int]
    evidence_dim: int

    def block(self, m: str, x: np.ndarray, kind: str) -> np.ndarray:
        """``[N, E]`` latent coordinates of ``x`` (``[N, d_m]``) in kind ``kind``'s block of modality ``m``."""
        start = self.offsets[kind]
        return x @ self.bases[m][start:start + self.evidence_dim].T


def _draw_protos(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    return config.evidence_scale * prototypes(rng, config.num_classes, config.evidence_dim,
                                              config.confusable_pairs, config.confusability)


def plant_features(config: SyntheticConfig, conv: Conversations, evidence: Evidence,
                   prototype_rng: np.random.Generator, noise_rngs: dict[str, np.random.Generator],
                   ) -> tuple[dict[str, np.ndarray], Planting]:
    """Feature arrays ``{m: float32 [N, d_m]}`` carrying the planted evidence, and the planting.

    With ``config.planting == "shared"`` every kind writes the class prototype of its key into
    the one class block. With ``"subspace"`` the latent holds three class blocks: unique carriers
    write a modality-private prototype of the label into the U block; redundant utterances write
    one shared latent (the label's prototype plus one shared noise draw, identical in every
    modality) into each modality's R block; synergy carriers write their key's prototype
    (modality-private) into the S block. Non-carriers leave every block at zero (plus noise).

    Args:
        config: generator configuration (dims, scales, latent sizes).
        conv: conversation structure and labels.
        evidence: carriers and keys per utterance.
        prototype_rng: draws class prototypes, embeddings and nuisance offsets.
        noise_rngs: one generator per modality for the noise (so changing one modality's
            dimension leaves the others' features unchanged).
    """
    D, S, N = conv.lengths.size, conv.num_speakers, conv.labels.size
    E, latent = config.evidence_dim, config.latent_dim
    subspace = config.planting == "subspace"
    class_protos = _draw_protos(config, prototype_rng)
    nuisance: dict[str, np.ndarray] = {}
    bases: dict[str, np.ndarray] = {}
    for m in MODALITIES:
        d = config.dims[m]
        rank = min(config.noise_rank, d - latent)
        dialogue_offset = config.nuisance_scale * prototype_rng.standard_normal((D, config.nuisance_dim))
        speaker_offset = config.nuisance_scale * prototype_rng.standard_normal((S, config.nuisance_dim))
        bases[m] = embedding(prototype_rng, latent + rank, d)  # rows: latent space, then distractors
        nuisance[m] = dialogue_offset[conv.dlg] + speaker_offset[conv.speaker]  # (N, nuisance_dim)
    if subspace:
        protos = {m: {"U": _draw_protos(config, prototype_rng), "R": class_protos,
                      "S": _draw_protos(config, prototype_rng)} for m in MODALITIES}
        offsets = {"U": 0, "R": E, "S": 2 * E}
        shared_noise = config.noise_scale * prototype_rng.standard_normal((N, E))  # one draw for all modalities
    else:
        protos = {m: {k: class_protos for k in "URS"} for m in MODALITIES}
        offsets = {k: 0 for k in "URS"}
    planting = Planting(bases, protos, offsets, E)

    features: dict[str, np.ndarray] = {}
    for mi, m in enumerate(MODALITIES):
        rng, basis = noise_rngs[m], bases[m]
        rank, d = basis.shape[0] - latent, basis.shape[1]
        evidence_block = np.zeros((N, config.evidence_blocks * E))
        keys = evidence.keys[:, mi]
        for code, kind in ((UNIQUE, "U"), (REDUNDANT, "R"), (SYNERGY, "S")):
            rows = np.flatnonzero((evidence.interaction == code) & (keys != NO_KEY))
            start = offsets[kind]
            evidence_block[rows, start:start + E] = protos[m][kind][keys[rows]]
            if subspace and kind == "R":
                evidence_block[rows, start:start + E] += shared_noise[rows]
        z = np.concatenate([evidence_block, nuisance[m], np.zeros((N, rank))], axis=1).astype(np.float32)
        z += np.float32(config.noise_scale) * rng.standard_normal((N, latent + rank), dtype=np.float32)
        x = z @ basis  # (N, d)
        if config.residual_noise > 0:
            x += np.float32(config.residual_noise) * rng.standard_normal((N, d), dtype=np.float32)
        features[m] = x
    return features, planting
