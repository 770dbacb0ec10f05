"""Model-agnostic modality-interaction explanation: Harsanyi dividends over modality subsets.

For every utterance, the *value* of a subset ``S`` of the model's ``M`` modalities is the
log-probability of the class predicted with all modalities, when only ``S`` is present in that
utterance (the others replaced by their training-mean stand-in, see
:mod:`merc.data.modality_subsets`; the context keeps every modality, so the value measures the
utterance's own evidence, not what context models read from its neighbours):
``v(S) = log P_S(ŷ)``. The ``2^M`` values of a batch's utterances come from batched forward
calls over dialogue copies (one call when they fit). They are decomposed exactly by the Möbius
transform (Harsanyi dividends)::

    d(S) = Σ_{T ⊆ S} (−1)^{|S|−|T|} v(T),      v(S) = Σ_{T ⊆ S} d(T)

so the **gain** ``g = v(all) − v(∅) = Σ_{S ≠ ∅} d(S)`` splits into main effects ``d({m})`` and
interactions ``d(S)``, ``|S| ≥ 2``. Shapley values ``φ_m = Σ_{S ∋ m} d(S) / |S|`` are derived.

Why a short exact implementation rather than ``shapiq``: with ``M ≤ 3`` players the transform
is a fixed ``8 × 8`` matrix product, exact and vectorised over utterances; ``shapiq`` would add
numba, galois and pandas to the install for the same ten lines (the tests check the transform
against hand-computed dividends and brute-force Shapley values instead).

**Pattern** of an utterance (``alone_m = d({m}) / g``, the share of the gain ``m`` recovers by itself):

- ``none``: ``g < min_gain`` — the modalities do not explain the prediction;
- ``redundant`` (modalities = those with ``alone_m ≥ sufficient``, at least two): any one
  suffices; the main effects over-count the gain (sub-additive, negative interactions);
- ``unique`` (the one modality with ``alone_m ≥ sufficient``);
- ``synergy``: no modality suffices alone and the interactions carry at least
  ``super_additive · g`` (super-additive); modalities = the smallest subset recovering
  ``sufficient · g``;
- otherwise (several modalities add up, none sufficient, no synergy) ``unique`` with the largest
  main effect.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from merc.data.modality_subsets import subset_log_probs, subset_masks, subset_name

PATTERNS = ("unique", "redundant", "synergy", "none")
#: planted interaction code of the synthetic generator → its kind name
PLANTED_KINDS = ("unique", "redundant", "synergy", "context_only")
PLANTED_BITS = {"t": 1, "a": 2, "v": 4}
#: thresholds of :func:`name_patterns` (fixed a priori, not tuned on any split)
DEFAULT_RULES = {"min_gain": 0.25, "sufficient": 0.5, "super_additive": 0.5}


def mobius_matrix(num_modalities: int) -> np.ndarray:
    """``[2^M, 2^M]`` matrix ``A`` with ``d = A v``: ``A[S, T] = (−1)^{|S|−|T|}`` for ``T ⊆ S``, else 0."""
    k = np.arange(2 ** num_modalities)
    pop = np.asarray([bin(i).count("1") for i in k])
    subset = (k[None, :] & k[:, None]) == k[None, :]  # (S, T): T ⊆ S
    return np.where(subset, (-1.0) ** (pop[:, None] - pop[None, :]), 0.0)


def dividends(values: np.ndarray) -> np.ndarray:
    """Harsanyi dividends of set functions given by their values on all subsets.

    Shapes:
        - values: ``[..., 2^M]`` (subset order of :func:`~merc.data.modality_subsets.subset_masks`)
        - output: ``[..., 2^M]`` (``d(∅) = v(∅)``)
    """
    values = np.asarray(values, dtype=np.float64)
    M = int(np.log2(values.shape[-1]))
    return values @ mobius_matrix(M).T


def shapley_values(divs: np.ndarray) -> np.ndarray:
    """Shapley values from dividends: ``φ_m = Σ_{S ∋ m} d(S) / |S|``.

    Shapes:
        - divs: ``[..., 2^M]``; output: ``[..., M]``
    """
    M = int(np.log2(divs.shape[-1]))
    member = subset_masks(M).numpy().astype(np.float64)  # (2^M, M)
    size = np.maximum(member.sum(1, keepdims=True), 1.0)
    return np.asarray(divs) @ (member / size)


def name_patterns(values: np.ndarray, modalities: Sequence[str], min_gain: float = DEFAULT_RULES["min_gain"],
                  sufficient: float = DEFAULT_RULES["sufficient"],
                  super_additive: float = DEFAULT_RULES["super_additive"]) -> dict[str, np.ndarray]:
    """Each utterance's evidence pattern and the numbers behind it (rules in the module docstring).

    Args:
        values: ``[N, 2^M]`` subset values ``v(S)`` (log-probabilities of the predicted class).
        modalities: the model's modality order.
        min_gain: smallest gain ``v(all) − v(∅)`` (nats) that counts as modality evidence.
        sufficient: share of the gain a subset must recover on its own to be sufficient.
        super_additive: share of the gain the interactions must carry for synergy.

    Returns ``{"pattern": [N] str, "modalities": [N] str, "gain": [N], "dividends": [N, 2^M],
    "shapley": [N, M], "alone": [N, M], "interaction": [N]}`` (``interaction`` = gain − Σ main effects).
    """
    v = np.asarray(values, dtype=np.float64)
    N, K = v.shape
    M = len(modalities)
    if K != 2 ** M:
        raise ValueError(f"values have {K} subsets, expected 2^{M}")
    d = dividends(v)
    members = subset_masks(M).numpy()  # (K, M)
    sizes = members.sum(1)
    gain = v[:, -1] - v[:, 0]
    safe = np.where(np.abs(gain) > 1e-12, gain, 1.0)[:, None]
    singles = [1 << j for j in range(M)]
    main = d[:, singles]  # (N, M)
    alone = main / safe
    interaction = gain - main.sum(1)
    recovered = (v - v[:, :1]) / safe  # (N, K): share of the gain each subset recovers alone
    suff = alone >= sufficient  # (N, M)
    n_suff = suff.sum(1)
    names = np.asarray([subset_name(row, modalities) for row in members], dtype=object)
    # synergy subset: the smallest subset of ≥ 2 modalities recovering ``sufficient`` (then the best one);
    # the full set always qualifies when the interactions carry at least half of the gain
    qualifies = (sizes >= 2)[None, :] & (recovered >= sufficient)
    best_multi = np.where(qualifies, -1e6 * sizes[None, :] + np.clip(recovered, -1e5, 1e5), -np.inf).argmax(1)
    top = main.argmax(1)
    pattern = np.full(N, "unique", dtype=object)
    mods = np.asarray(modalities, dtype=object)[top]
    redundant = n_suff >= 2
    pattern[redundant] = "redundant"
    mods[redundant] = [subset_name(row, modalities) for row in suff[redundant]]
    single = n_suff == 1
    mods[single] = np.asarray(modalities, dtype=object)[suff[single].argmax(1)]
    synergy = (n_suff == 0) & (interaction >= super_additive * gain) & (M >= 2)
    pattern[synergy] = "synergy"
    mods[synergy] = names[best_multi[synergy]]
    weak = gain < min_gain
    pattern[weak], mods[weak] = "none", ""
    return {"pattern": pattern.astype(str), "modalities": mods.astype(str), "gain": gain, "dividends": d,
            "shapley": shapley_values(d), "alone": alone, "interaction": interaction}


def explain_sentence(pattern: str, modalities: str, gain: float, alone: Sequence[float], interaction: float,
                     model_modalities: Sequence[str]) -> str:
    """A one-line human reading of one utterance's numbers."""
    shares = ", ".join(f"{m} alone {100 * a:.0f}%" for m, a in zip(model_modalities, alone))
    head = {"unique": f"unique to {modalities}", "redundant": f"redundant over {modalities} (any one suffices)",
            "synergy": f"synergy of {modalities} (only together)", "none": "no modality evidence"}[pattern]
    return f"{head}: gain {gain:.2f} nats; {shares}; interactions {interaction:+.2f} nats"


@torch.no_grad()
def collect_interactions(method: torch.nn.Module, loader: Iterable[Any], stand_in: Mapping[str, torch.Tensor],
                         modalities: Sequence[str], scope: str = "utterance",
                         dialogue_scope_too: bool = False) -> dict[str, Any]:
    """Subset values of every utterance of ``loader`` (batched forward calls, see
    :func:`~merc.data.modality_subsets.subset_log_probs` for ``scope``).

    Returns ``{"log_probs": [N, 2^M, C], "values": [N, 2^M], "predicted": [N], "label": [N],
    "dialogue_id": [N], "position": [N], "meta:<key>": [N] ...}`` in batch-major order; with
    ``dialogue_scope_too`` also ``"dialogue_log_probs"`` (modalities absent from whole dialogues).
    """
    parts: dict[str, list[np.ndarray]] = {}
    for batch in loader:
        lp = subset_log_probs(method, batch, stand_in, modalities, scope).permute(1, 0, 2).cpu().numpy()  # (N, 2^M, C)
        pred = lp[:, -1].argmax(1)
        lengths = batch.lengths.tolist()
        row = {"log_probs": lp, "values": np.take_along_axis(lp, pred[:, None, None], 2)[..., 0], "predicted": pred,
               "label": batch.labels_flat.cpu().numpy(),
               "dialogue_id": np.repeat(np.asarray(batch.dialogue_ids, dtype=object), lengths),
               "position": np.concatenate([np.arange(n) for n in lengths])}
        if dialogue_scope_too:
            row["dialogue_log_probs"] = lp if scope == "dialogue" else (
                subset_log_probs(method, batch, stand_in, modalities, "dialogue").permute(1, 0, 2).cpu().numpy())
        for key, value in batch.meta.items():
            if isinstance(value, torch.Tensor) and value.shape[:1] == batch.labels_flat.shape:
                row[f"meta:{key}"] = value.cpu().numpy()
        for k, v in row.items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def planted_truth(collected: Mapping[str, Any], modalities: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(kind [N] str, carriers [N] str)`` from the synthetic meta, or ``None`` when the data plants none.

    Carriers are written in the model's modality order (carriers outside it are dropped).
    """
    if "meta:interaction" not in collected:
        return None
    code = np.asarray(collected["meta:interaction"]).astype(np.int64)
    kind = np.asarray([PLANTED_KINDS[c] if 0 <= c < len(PLANTED_KINDS) else "" for c in code])
    mask = np.asarray(collected.get("meta:evidence_mask", np.zeros(len(code)))).astype(np.int64)
    carriers = np.asarray(["".join(m for m in modalities if b & PLANTED_BITS.get(m, 0)) for b in mask])
    return kind, carriers


def agreement(pattern: np.ndarray, named: np.ndarray, shapley: np.ndarray, kind: np.ndarray, carriers: np.ndarray,
              modalities: Sequence[str], correct: np.ndarray | None = None) -> dict[str, Any]:
    """How the named patterns compare with the planted kinds.

    Returns ``kind_agreement`` (share of utterances with planted unique/redundant/synergy
    evidence whose pattern is that kind), ``majority_baseline`` (always naming the most common
    planted kind), ``kind_agreement_correct`` (the same over correctly predicted utterances),
    ``carrier_top_shapley`` (planted-unique utterances whose largest Shapley value is the
    carrier), ``carrier_named`` (named ``unique`` with the carrier), ``modalities_match``
    (pattern and modality set both right), ``n``/``n_unique`` and ``confusion``
    (planted kind → named pattern → count, context-only included); with ``correct`` also
    ``model_accuracy_by_kind`` (how often the model is right per planted kind: an explanation can
    only follow evidence the model uses) and ``confusion_correct``.
    """
    has = np.isin(kind, PLANTED_KINDS[:3])
    uniq = (kind == "unique") & (np.char.str_len(carriers.astype(str)) == 1)
    top = np.asarray(modalities)[np.argmax(shapley, axis=1)] if len(modalities) else np.full(len(kind), "")
    shares = {k: float((kind[has] == k).mean()) if has.any() else float("nan") for k in PLANTED_KINDS[:3]}

    def share(x: np.ndarray, keep: np.ndarray) -> float:
        return float(x[keep].mean()) if keep.any() else float("nan")

    hit = pattern == kind
    out = {"n": int(has.sum()), "kind_agreement": share(hit, has),
           "majority_baseline": max(shares.values()) if has.any() else float("nan"), "planted_shares": shares,
           "named_shares": {p: share(pattern == p, has) for p in PATTERNS},
           "modalities_match": share(hit & (named == carriers), has),
           "n_unique": int(uniq.sum()), "carrier_top_shapley": share(top == carriers, uniq),
           "carrier_named": share((pattern == "unique") & (named == carriers), uniq),
           "confusion": {k: {p: int(((kind == k) & (pattern == p)).sum()) for p in PATTERNS}
                         for k in PLANTED_KINDS if (kind == k).any()}}
    if correct is not None:
        out["kind_agreement_correct"] = share(hit, has & correct)
        out["n_correct"] = int((has & correct).sum())
        out["model_accuracy_by_kind"] = {k: share(correct, kind == k) for k in PLANTED_KINDS if (kind == k).any()}
        out["confusion_correct"] = {k: {p: int(((kind == k) & correct & (pattern == p)).sum()) for p in PATTERNS}
                                    for k in PLANTED_KINDS if ((kind == k) & correct).any()}
    return out


__all__ = ["DEFAULT_RULES", "PATTERNS", "PLANTED_KINDS", "agreement", "collect_interactions", "dividends", "explain_sentence",
           "mobius_matrix", "name_patterns", "planted_truth", "shapley_values"]
