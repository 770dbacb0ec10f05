"""The generator's own rule for reading planted evidence back — the ceiling of any explanation.

Given the :class:`~merc.data.synthetic.evidence.Planting` (embeddings and prototypes, which only
the generator knows), each modality's latent block is read by a matched filter: for block ``b``
of modality ``m`` with latent estimate ``z`` (``x_m`` projected on the block's embedding rows),

``log LR_mb = log (1/C) Σ_k exp((⟨z, μ_k⟩ − ‖μ_k‖²/2) / σ_b²)``

is the log-likelihood ratio of "a prototype of some class was planted here" against "only noise"
(Gaussian noise of variance ``σ_b²``: ``noise_scale²``, twice that for the shared redundant
latent of the ``subspace`` planting). The rule then names the kind:

- ``shared`` planting (one class block): carriers are the modalities with ``log LR > 0``; none →
  context-only; one → unique (that modality); three with one common key → redundant; otherwise
  synergy (two carriers, or three with differing keys);
- ``subspace`` planting: kind scores ``U = max_m log LR_mU``, ``R = Σ_m log LR_mR`` (one latent in
  every modality), ``S`` = the sum of the two largest ``log LR_mS`` (at least two carriers);
  the largest positive score names the kind, none positive → context-only; unique evidence is
  placed in the modality with the largest ``log LR_mU``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from merc.data.schema import MODALITIES
from merc.data.synthetic.config import CONTEXT_ONLY, REDUNDANT, SYNERGY, UNIQUE, SyntheticConfig
from merc.data.synthetic.evidence import Planting


def block_evidence(config: SyntheticConfig, planting: Planting, features: dict[str, np.ndarray],
                   kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood ratio and best key of kind ``kind``'s block in every modality.

    Shapes:
        - features: modality → ``[N, d_m]``
        - output: ``[N, 3]`` log LR, ``[N, 3]`` int64 key (modality order ``tav``)
    """
    var = config.noise_scale ** 2 * (2.0 if config.planting == "subspace" and kind == "R" else 1.0)
    llr, keys = [], []
    for m in MODALITIES:
        protos = planting.protos[m][kind]  # (C, E)
        scores = (planting.block(m, features[m], kind) @ protos.T - 0.5 * (protos ** 2).sum(1)) / max(var, 1e-12)
        llr.append(logsumexp(scores, axis=1) - np.log(len(protos)))
        keys.append(scores.argmax(1))
    return np.stack(llr, 1), np.stack(keys, 1).astype(np.int64)


def rule_kinds(config: SyntheticConfig, planting: Planting,
               features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The rule's interaction code (0 U, 1 R, 2 S, 3 context-only) and unique carrier (``-1``: none).

    Shapes:
        - features: modality → ``[N, d_m]``; output: ``[N]`` int64, ``[N]`` int64
    """
    if config.planting == "subspace":
        llr_u, _ = block_evidence(config, planting, features, "U")
        llr_r, _ = block_evidence(config, planting, features, "R")
        llr_s, _ = block_evidence(config, planting, features, "S")
        scores = np.stack([llr_u.max(1), llr_r.sum(1), np.sort(llr_s, 1)[:, -2:].sum(1)], 1)  # (N, 3)
        kind = np.where(scores.max(1) > 0, scores.argmax(1), CONTEXT_ONLY)
        carrier = np.where(kind == UNIQUE, llr_u.argmax(1), -1)
        return kind.astype(np.int64), carrier.astype(np.int64)
    llr, keys = block_evidence(config, planting, features, "U")  # the one class block
    carriers = llr > 0
    count = carriers.sum(1)
    same_key = (keys == keys[:, :1]).all(1)
    kind = np.select([count == 0, count == 1, (count == 3) & same_key], [CONTEXT_ONLY, UNIQUE, REDUNDANT], SYNERGY)
    carrier = np.where(kind == UNIQUE, carriers.argmax(1), -1)
    return kind.astype(np.int64), carrier.astype(np.int64)
