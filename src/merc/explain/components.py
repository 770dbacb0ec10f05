"""Statistics of DnR's component explanations — plain arrays in, plain arrays out.

Notation: ``N`` utterances (rows aligned with their labels), ``K = 3M`` components named
``"<modality>:<U|R|S>"``, ``C`` classes, ``D`` component width. Labels ``< 0`` are unlabelled
and excluded from every per-class statistic.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import log_softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

#: planted interaction code of the synthetic generator → component kind
INTERACTION_KIND = {0: "U", 1: "R", 2: "S"}


def pairwise_symmetric_kl(components: np.ndarray, tau: float = 1.0) -> np.ndarray:
    """Mean over utterances of ``KL(p_i‖p_j) + KL(p_j‖p_i)`` with ``p_i = softmax(c_i / τ)``.

    Shapes:
        - components: ``[N, K, D]``
        - output: ``[K, K]`` (zero diagonal, symmetric)
    """
    logp = log_softmax(components.astype(np.float64) / tau, axis=-1)  # (N, K, D)
    p = np.exp(logp)
    self_term = (p * logp).sum(-1)  # (N, K)
    cross = np.einsum("nid,njd->nij", p, logp)  # (N, K, K): Σ_d p_i log p_j
    kl = self_term[:, :, None] - cross  # KL(p_i ‖ p_j)
    return (kl + kl.transpose(0, 2, 1)).mean(0)


def per_class_mean(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean of ``values`` over the utterances of each class (NaN for classes without utterances).

    Shapes:
        - values: ``[N, K]``; labels: ``[N]``
        - output: ``[C, K]``
    """
    out = np.full((num_classes, values.shape[1]), np.nan)
    for c in range(num_classes):
        rows = values[labels == c]
        if len(rows):
            out[c] = np.nanmean(rows, axis=0) if np.isfinite(rows).any() else np.nan
    return out


def modality_shares(kl: np.ndarray, component_names: list[str], modalities: list[str]) -> np.ndarray:
    """Share of each utterance's total sensitivity carried by each modality's components.

    Shapes:
        - kl: ``[N, K]``
        - output: ``[N, M]`` (rows sum to 1; uniform where the total is 0)
    """
    per_mod = np.stack([kl[:, [i for i, n in enumerate(component_names) if n.split(":")[0] == m]].sum(1)
                        for m in modalities], axis=1)
    total = per_mod.sum(1, keepdims=True)
    return np.where(total > 0, per_mod / np.where(total > 0, total, 1.0), 1.0 / len(modalities))


def modality_dominance(kl: np.ndarray, labels: np.ndarray, component_names: list[str], modalities: list[str],
                       num_classes: int) -> np.ndarray:
    """Mean modality share of the sensitivity per emotion class.

    Shapes:
        - kl: ``[N, K]``; labels: ``[N]``
        - output: ``[C, M]``
    """
    return per_class_mean(modality_shares(kl, component_names, modalities), labels, num_classes)


def fisher_ratio(x: np.ndarray, labels: np.ndarray) -> float:
    """Between-class over within-class scatter, ``tr(S_B) / tr(S_W)``, over labelled rows.

    ``S_B = Σ_c n_c ‖μ_c − μ‖²``, ``S_W = Σ_i ‖x_i − μ_{y_i}‖²``. NaN with fewer than 2 classes.

    Shapes:
        - x: ``[N, D]``; labels: ``[N]``; output: scalar
    """
    keep = labels >= 0
    x, y = x[keep].astype(np.float64), labels[keep]
    classes = np.unique(y)
    if len(classes) < 2:
        return float("nan")
    mu = x.mean(0)
    between = within = 0.0
    for c in classes:
        xc = x[y == c]
        mc = xc.mean(0)
        between += len(xc) * float(((mc - mu) ** 2).sum())
        within += float(((xc - mc) ** 2).sum())
    return between / within if within > 0 else float("inf")


def probe_accuracy(x: np.ndarray, labels: np.ndarray, folds: int = 3, seed: int = 0) -> float:
    """Cross-validated accuracy of a linear probe (standardised logistic regression) on ``x``.

    Uses stratified ``folds``-fold cross-validation over labelled rows (fewer folds when a
    class is rarer); NaN when fewer than 2 classes or too few rows. The fits run with one BLAS
    thread: their matrices are small (``[N, D]``, ``D`` = 256 for DnR), and a multi-threaded
    BLAS spin-waits on them — with two threads on a busy 2-core machine the nine probes of the
    main job took 250 CPU s instead of 3.4 (and the result no longer depends on the thread count).

    Shapes:
        - x: ``[N, D]``; labels: ``[N]``; output: scalar
    """
    keep = labels >= 0
    x, y = x[keep], labels[keep]
    _, counts = np.unique(y, return_counts=True)
    k = min(folds, int(counts.min())) if len(counts) else 0
    if len(counts) < 2 or k < 2:
        return float("nan")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(probe, x, y, cv=StratifiedKFold(k, shuffle=True, random_state=seed))
    return float(np.mean(scores))


def top_component_kinds(kl: np.ndarray, component_names: list[str]) -> np.ndarray:
    """Kind (``U``/``R``/``S``) of each utterance's most influential component.

    Shapes:
        - kl: ``[N, K]``; output: ``[N]`` strings
    """
    kinds = np.asarray([n.split(":")[1] for n in component_names])
    return kinds[np.argmax(kl, axis=1)]


def kind_sensitivity(kl: np.ndarray, component_names: list[str]) -> np.ndarray:
    """Sensitivity summed over modalities per kind, columns ``U, R, S``.

    Shapes:
        - kl: ``[N, K]``; output: ``[N, 3]``
    """
    kinds = [n.split(":")[1] for n in component_names]
    return np.stack([kl[:, [i for i, k in enumerate(kinds) if k == kind]].sum(1) for kind in "URS"], axis=1)


def interaction_agreement(kl: np.ndarray, component_names: list[str], interaction: np.ndarray,
                          kind_kl: np.ndarray | None = None) -> dict[str, Any]:
    """How often the explanation's top kind matches the planted interaction (0 U, 1 R, 2 S; others skipped).

    Returns ``{"top_component": share, "top_kind_sum": share, "n": count, "chance": 1/3,
    "majority_baseline": share, "planted_shares": {kind: share}, "top_shares": {kind: share},
    "confusion": {planted kind: {top kind: share of that planted kind}}}`` where ``top_component``
    uses the kind of the single most influential component and ``top_kind_sum`` the kind with the
    largest sensitivity summed over modalities. With ``kind_kl`` (``[N, 3]``, the sensitivity to
    removing each kind from every modality at once) it adds ``top_kind_ablation``,
    ``top_kind_ablation_shares`` and ``confusion_kind_ablation``: redundant evidence survives
    the removal of any single copy, so only the kind-wide removal can see it.

    ``chance`` (1/3) is a uniform random guess; ``majority_baseline`` is what always naming the
    most common planted kind scores — the planted kinds are not balanced (on
    ``synthetic-iemocap`` ≈ 40 % of the U/R/S utterances are unique), so an explanation that
    always names U already beats 1/3. Compare with ``majority_baseline`` and read ``confusion``.
    """
    planted = np.asarray([INTERACTION_KIND.get(int(i), "") for i in interaction])
    keep = planted != ""
    if not keep.any():
        empty: dict[str, Any] = {"top_component": float("nan"), "top_kind_sum": float("nan"), "n": 0, "chance": 1 / 3,
                                 "majority_baseline": float("nan"), "planted_shares": {}, "top_shares": {},
                                 "confusion": {}}
        if kind_kl is not None:
            empty.update(top_kind_ablation=float("nan"), top_kind_ablation_shares={}, confusion_kind_ablation={})
        return empty
    kinds = np.asarray(list("URS"))
    top = top_component_kinds(kl, component_names)
    by_kind = kinds[np.argmax(kind_sensitivity(kl, component_names), axis=1)]
    p, t = planted[keep], top[keep]
    planted_shares = {k: float((p == k).mean()) for k in "URS"}
    out = {"top_component": float((t == p).mean()),
           "top_kind_sum": float((by_kind[keep] == p).mean()), "n": int(keep.sum()), "chance": 1 / 3,
           "majority_baseline": max(planted_shares.values()), "planted_shares": planted_shares,
           "top_shares": _shares(t), "confusion": _confusion(p, t)}
    if kind_kl is not None:
        a = kinds[np.argmax(np.asarray(kind_kl), axis=1)][keep]
        out.update(top_kind_ablation=float((a == p).mean()), top_kind_ablation_shares=_shares(a),
                   confusion_kind_ablation=_confusion(p, a))
    return out


def kind_agreement(scores: np.ndarray, kind_names: list[str], interaction: np.ndarray) -> dict[str, Any]:
    """How often the kind with the largest attribution among ``U, R, S`` is the planted one.

    Columns of ``scores`` other than ``U``/``R``/``S`` (e.g. ``X``, DnR's cross terms) are left
    out of the choice; their mean share of the absolute attribution is reported instead.

    Returns ``{"top_kind": share, "n": count, "majority_baseline": share, "planted_shares",
    "top_shares", "confusion", "other_share": {name: mean |φ| share}}``.

    Shapes:
        - scores: ``[N, P]``; interaction: ``[N]``
    """
    planted = np.asarray([INTERACTION_KIND.get(int(i), "") for i in interaction])
    keep = planted != ""
    cols = [kind_names.index(k) for k in "URS"]
    magnitude = np.abs(scores).sum(1, keepdims=True)
    share = np.abs(scores) / np.where(magnitude > 0, magnitude, 1.0)
    other = {k: float(share[keep, i].mean()) if keep.any() else float("nan")
             for i, k in enumerate(kind_names) if k not in "URS"}
    if not keep.any():
        return {"top_kind": float("nan"), "n": 0, "majority_baseline": float("nan"), "planted_shares": {},
                "top_shares": {}, "confusion": {}, "other_share": other}
    top = np.asarray(list("URS"))[np.argmax(scores[:, cols], axis=1)][keep]
    p = planted[keep]
    planted_shares = {k: float((p == k).mean()) for k in "URS"}
    return {"top_kind": float((top == p).mean()), "n": int(keep.sum()),
            "majority_baseline": max(planted_shares.values()), "planted_shares": planted_shares,
            "top_shares": _shares(top), "confusion": _confusion(p, top), "other_share": other}


def _shares(top: np.ndarray) -> dict[str, float]:
    return {k: float((top == k).mean()) for k in "URS"}


def _confusion(planted: np.ndarray, top: np.ndarray) -> dict[str, dict[str, float]]:
    """Row-normalised planted × named kind shares (planted kinds that do not occur are left out)."""
    return {k: _shares(top[planted == k]) for k in "URS" if (planted == k).any()}


MODALITY_BITS = {"t": 1, "a": 2, "v": 4}
"""Bits of the synthetic generator's per-utterance ``evidence_mask`` (which modalities carry evidence)."""


def carrier_agreement(kl: np.ndarray, component_names: list[str], modalities: list[str], interaction: np.ndarray,
                      evidence_mask: np.ndarray) -> dict[str, Any]:
    """For utterances whose evidence is *unique* (one carrier modality), how often the modality
    with the largest summed sensitivity is that carrier.

    Returns ``{"top_modality": share, "n": count, "chance": share}``; ``chance`` is what always
    naming the most common carrier scores. Carriers outside ``modalities`` are skipped.

    Shapes:
        - kl: ``[N, K]``; interaction, evidence_mask: ``[N]``
    """
    return carrier_agreement_of(modality_shares(kl, component_names, modalities), modalities, interaction,
                                evidence_mask)


def carrier_agreement_of(scores: np.ndarray, modalities: list[str], interaction: np.ndarray,
                         evidence_mask: np.ndarray) -> dict[str, Any]:
    """:func:`carrier_agreement` from any per-modality attribution (largest score = named modality).

    Shapes:
        - scores: ``[N, M]``; interaction, evidence_mask: ``[N]``
    """
    bits = np.asarray([MODALITY_BITS.get(m, 0) for m in modalities])
    mask = np.asarray(evidence_mask).astype(np.int64)
    carrier = (mask[:, None] & bits[None, :]) > 0  # (N, M)
    keep = (np.asarray(interaction) == 0) & (carrier.sum(1) == 1)
    if not keep.any():
        return {"top_modality": float("nan"), "n": 0, "chance": float("nan")}
    top = np.argmax(scores, axis=1)[keep]
    truth = np.argmax(carrier[keep], axis=1)
    return {"top_modality": float((top == truth).mean()), "n": int(keep.sum()),
            "chance": float(np.bincount(truth, minlength=len(modalities)).max() / keep.sum())}
