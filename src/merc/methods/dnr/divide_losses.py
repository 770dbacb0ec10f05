"""Divide-stage losses (METHODS.md §1.1), computed over the real utterances of a batch only.

All inputs are components of the ``N`` real utterances flattened batch-major, with labels in
the same order (``Batch.labels_flat``; ``-1`` = unlabelled, ignored by cross-entropy).

With all three modalities the averages below are exactly the specification's factors:
L_unco = (1/9)·Σ (9 terms), L_cross = (1/3)·Σ (3 pairs), L_guard = (1/12)·Σ (12 terms). With a
modality subset the same averages run over the terms that exist.
"""

from __future__ import annotations

from itertools import combinations, permutations

from torch import Tensor
from torch.nn import functional as F

from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.correlation import mean_of, pull, push
from merc.methods.dnr.decomposer import Components, DivideHeads, reverse_gradient


def labelled_cross_entropy(logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy over labelled rows (``label ≥ 0``); 0 when no row is labelled.

    Shapes:
        - logits: ``[N, C]``; labels: ``[N]``; output: scalar
    """
    if not bool((labels >= 0).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, weight=weight, ignore_index=-1)


def decorrelation_loss(components: dict[str, Components], eps: float = 1e-6) -> Tensor:
    """L_unco = mean over m of push(u,r), push(u,s), push(r,s)  (= 1/9 Σ with three modalities)."""
    terms = [push(a, b, eps) for c in components.values() for a, b in ((c.u, c.r), (c.u, c.s), (c.r, c.s))]
    return mean_of(terms, next(iter(components.values())).u)


def redundancy_pull_loss(components: dict[str, Components], eps: float = 1e-6) -> Tensor:
    """L_cross = mean over modality pairs of pull(r_m, r_m')  (= 1/3 Σ with three modalities; 0 with one)."""
    terms = [pull(components[m].r, components[p].r, eps) for m, p in combinations(components, 2)]
    return mean_of(terms, next(iter(components.values())).r)


def synergy_guard_loss(components: dict[str, Components], eps: float = 1e-6) -> Tensor:
    """L_guard = mean over m ≠ m' of push(s_m, u_m') and push(s_m, r_m')  (= 1/12 Σ with three modalities)."""
    terms = [push(components[m].s, other, eps) for m, p in permutations(components, 2)
             for other in (components[p].u, components[p].r)]
    return mean_of(terms, next(iter(components.values())).s)


def single_synergy_loss(components: dict[str, Components], heads: DivideHeads, labels: Tensor,
                        grl_strength: float | None) -> Tensor:
    """L_single = mean over m of CE(single_m(s_m), y).

    With ``grl_strength`` set, ``s_m`` passes a gradient-reversal layer first: the single heads
    still descend L_single (they learn to predict y from s_m) while the branch producing s_m
    ascends it, scaled by ``grl_strength`` (it learns to hide single-modality label evidence).

    Shapes:
        - components: modality → ``[N, D]`` parts; labels ``[N]``; output: scalar
    """
    terms = []
    for m, c in components.items():
        s = reverse_gradient(c.s, grl_strength) if grl_strength is not None else c.s
        terms.append(labelled_cross_entropy(heads.synergy_single[m](s), labels))
    return mean_of(terms, labels.float())


def published_synergy_hinge(joint: Tensor, single: Tensor, margin: float = 0.3, cap: float = 3.0) -> Tensor:
    """The reference's synergy loss: ``L_joint + ReLU(margin − clamp(L_single − L_joint, 0, cap))``.

    Kept only to reproduce published numbers. In the reference (and in ``synergy_mode:
    published``) ``single`` is computed on gradient-reversed s_m, so while the hinge is active
    (``0 < L_single − L_joint < margin``) the single heads are trained to get *worse* and the
    s branches to make s_m *more* single-modality predictive; outside that band L_single gets
    no gradient at all.
    """
    return joint + F.relu(margin - (single - joint).clamp(0.0, cap))


def synergy_loss(components: dict[str, Components], heads: DivideHeads, labels: Tensor,
                 config: DnRConfig) -> tuple[Tensor, dict[str, Tensor]]:
    """L_syn in the configured ``synergy_mode`` and its parts (L_joint, L_single, L_guard).

    Both modes pass each s_m through the gradient-reversal layer (strength ``grl_strength``)
    before its single head, as the reference does; they differ only in how L_single enters:
    ``corrected`` adds it (``L_joint + L_single + L_guard``), ``published`` puts it inside the
    reference's hinge (:func:`published_synergy_hinge`) — METHODS.md §1.1.

    Shapes:
        - components: modality → ``[N, D]`` parts; labels ``[N]``
        - output: scalar loss, {"syn_joint", "syn_single", "guard": scalar}
    """
    joint = labelled_cross_entropy(heads.joint_synergy(components), labels)
    single = single_synergy_loss(components, heads, labels, config.grl_strength)
    guard = synergy_guard_loss(components, config.corr_eps)
    if config.synergy_mode == "corrected":
        syn = joint + single + guard
    else:
        syn = published_synergy_hinge(joint, single, config.published_margin, config.published_cap) + guard
    return syn, {"syn_joint": joint, "syn_single": single, "guard": guard}


def divide_loss(components: dict[str, Components], heads: DivideHeads, labels: Tensor,
                config: DnRConfig) -> tuple[Tensor, dict[str, Tensor]]:
    """Total Divide loss ``CE + λ_corr·(L_unco + L_cross) + λ_syn·L_syn`` and its detached terms.

    Args:
        components: modality → :class:`Components` of the real utterances (batch-major).
        heads: the pretraining heads.
        labels: labels aligned with the components (``-1`` ignored).
        config: DnR options (weights, ε, synergy mode).

    Shapes:
        - components: modality → ``[N, D]`` parts; labels: ``[N]``
        - output: scalar loss, {term: scalar}
    """
    eps = config.corr_eps
    ce = labelled_cross_entropy(heads.classify(components), labels)
    unco = decorrelation_loss(components, eps)
    cross = redundancy_pull_loss(components, eps)
    syn, syn_terms = synergy_loss(components, heads, labels, config)
    total = ce + config.lambda_corr * (unco + cross) + config.lambda_syn * syn
    terms = {"divide_ce": ce, "unco": unco, "cross": cross, **syn_terms, "divide_loss": total}
    return total, {k: v.detach() for k, v in terms.items()}


__all__ = ["decorrelation_loss", "divide_loss", "labelled_cross_entropy", "published_synergy_hinge",
           "redundancy_pull_loss", "single_synergy_loss", "synergy_guard_loss", "synergy_loss"]
