"""Refine: the refined per-modality inputs x̃_m and the contrastive views (METHODS.md §1.2).

``x̃_m = [u_m, r_m, s_m, u_m − u_p, u_m ⊙ u_p for each other present modality p]`` — 7D with
three modalities, 5D with two, 3D with one or with ``cross_features: false``. Cross terms only
ever use modalities that are present (the reference leaks excluded ones; we do not).

Views are stacked along the batch dimension so the backbone runs **once** per step: with ``V``
views, the backbone sees ``V·B`` dialogues and returns ``V·N`` rows, view ``v`` at rows
``v·N … (v+1)·N − 1`` (batch-major inside each view).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from merc.backbones.base import dialogue_index
from merc.methods.dnr.decomposer import Components


def refined_dim(dim: int, num_modalities: int, cross_features: bool) -> int:
    """Width of x̃_m: ``3D`` plus ``2D`` per other present modality when cross terms are on."""
    return dim * (3 + (2 * (num_modalities - 1) if cross_features else 0))


@dataclass(frozen=True)
class ViewSpec:
    """How one view is derived from the components.

    Attributes:
        name: e.g. ``original``, ``mask:t``, ``aug:0.2``, ``drop:a:U``.
        keep: modalities whose x̃ is kept (others zeroed); ``None`` keeps all.
        sigma: noise scale added to every r_m (0: none).
        drop: ``(modality, kind)`` components set to zero; dropping ``U`` also zeroes every
            cross term built from that u.
    """

    name: str
    keep: tuple[str, ...] | None = None
    sigma: float = 0.0
    drop: tuple[tuple[str, str], ...] = field(default_factory=tuple)


ORIGINAL = ViewSpec("original")


def refined_inputs(components: dict[str, Components], cross_features: bool,
                   view: ViewSpec = ORIGINAL, donor: dict[str, Components] | None = None) -> dict[str, Tensor]:
    """x̃_m for every present modality under ``view``.

    Args:
        components: modality → :class:`Components` (real utterances, batch-major).
        cross_features: append the cross terms.
        view: which parts to keep, perturb or drop; kind ``X`` in ``view.drop`` names the cross
            terms appended to ``x̃_m``.
        donor: without it dropped parts are zeroed and dropping ``U`` also zeroes every cross
            term built from that u (the original measure). With it (same shapes, e.g. the
            components of other utterances) dropped parts are *replaced* by the donor's, and
            ``U`` and ``X`` are separate: ``(m, "U")`` replaces ``u_m`` only, ``(m, "X")`` the
            cross terms of ``x̃_m`` (by the donor's own cross terms).

    Shapes:
        - components: modality → ``[N, D]`` parts
        - output: modality → ``[N, D']`` with ``D' = refined_dim(D, M, cross_features)``
    """
    dropped = set(view.drop)
    mods = list(components)

    def part(m: str, kind: str) -> Tensor:
        own = components[m].get(kind)
        if (m, kind) not in dropped:
            return own
        return torch.zeros_like(own) if donor is None else donor[m].get(kind)

    parts: dict[str, list[Tensor]] = {}
    for m in mods:
        r = part(m, "R")
        if view.sigma > 0:
            r = r + view.sigma * torch.randn_like(r)
        parts[m] = [part(m, "U"), r, part(m, "S")]
    if cross_features:
        for m in mods:
            source = donor if donor is not None and (m, "X") in dropped else components
            for p in mods:
                if p == m:
                    continue
                diff, prod = source[m].u - source[p].u, source[m].u * source[p].u
                if donor is None and {(m, "U"), (p, "U"), (m, "X")} & dropped:
                    diff, prod = torch.zeros_like(diff), torch.zeros_like(prod)
                parts[m] += [diff, prod]
    out = {m: torch.cat(parts[m], dim=-1) for m in mods}
    if view.keep is not None:
        out = {m: x if m in view.keep else torch.zeros_like(x) for m, x in out.items()}
    return out


def contrastive_views(modalities: list[str], masked_views: bool, augment: bool,
                      sigmas: list[float]) -> list[ViewSpec]:
    """The non-original views of one training step: masked per modality, then augmented per σ."""
    views = [ViewSpec(f"mask:{m}", keep=(m,)) for m in modalities] if masked_views else []
    if augment:
        views += [ViewSpec(f"aug:{s:g}", sigma=s) for s in sigmas]
    return views


def component_drop_views(modalities: list[str]) -> list[ViewSpec]:
    """One view per component ``(m, kind)`` with that component zeroed (explanations)."""
    return [ViewSpec(f"drop:{m}:{k}", drop=((m, k),)) for m in modalities for k in ("U", "R", "S")]


def kind_drop_views(modalities: list[str]) -> list[ViewSpec]:
    """One view per kind ``U``, ``R``, ``S`` with that kind zeroed in *every* modality (explanations).

    Redundant evidence survives the removal of any one copy, so single-component sensitivity
    understates R by construction; removing a kind everywhere at once measures what the
    prediction owes to that kind of information.
    """
    return [ViewSpec(f"drop:*:{k}", drop=tuple((m, k) for m in modalities)) for k in ("U", "R", "S")]


def stack_views(components: dict[str, Components], views: list[ViewSpec], cross_features: bool,
                mask: Tensor, speakers: Tensor,
                donor: dict[str, Components] | None = None) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """Padded backbone inputs of all ``views`` stacked along the batch dimension (``donor``: see
    :func:`refined_inputs`).

    Shapes:
        - components: modality → ``[N, D]`` parts; mask, speakers: ``[B, L]``
        - output: features modality → ``[V·B, L, D']``, mask ``[V·B, L]``, speakers ``[V·B, L]``
    """
    per_view = [refined_inputs(components, cross_features, v, donor) for v in views]
    V, (B, L) = len(views), mask.shape
    features = {}
    for m in components:
        flat = torch.stack([x[m] for x in per_view])  # (V, N, D')
        padded = flat.new_zeros(V, B, L, flat.shape[-1])
        padded[:, mask] = flat  # (V, B, L, D'), batch-major inside each view
        features[m] = padded.reshape(V * B, L, -1)
    return features, mask.repeat(V, 1), speakers.repeat(V, 1)


def split_views(x: Tensor, num_views: int) -> list[Tensor]:
    """``[V·N, ...]`` backbone rows → ``V`` tensors of ``[N, ...]`` (inverse of the stacking)."""
    return list(x.reshape(num_views, x.shape[0] // num_views, *x.shape[1:]).unbind(0))


def select_dialogues(components: dict[str, Components], mask: Tensor, speakers: Tensor,
                     keep: Tensor) -> tuple[dict[str, Components], Tensor, Tensor]:
    """The components, mask and speakers of the dialogues ``keep`` (sorted indices), batch-major.

    Shapes:
        - components: modality → ``[N, D]`` parts; mask, speakers: ``[B, L]``; keep: ``[k]``
        - output: modality → ``[N_k, D]`` parts, mask ``[k, L_k]``, speakers ``[k, L_k]`` with
          ``L_k`` the longest kept dialogue
    """
    rows = torch.isin(dialogue_index(mask), keep)  # (N,)
    sub_mask = mask[keep]
    length = int(sub_mask.sum(1).max()) if len(keep) else 0
    parts = {m: Components(c.u[rows], c.r[rows], c.s[rows]) for m, c in components.items()}
    return parts, sub_mask[:, :length], speakers[keep][:, :length]


def pad_length(x: Tensor, length: int) -> Tensor:
    """Right-pad dimension 1 of ``x`` (``[B, L, ...]``) with zeros/False to ``length``."""
    if x.shape[1] == length:
        return x
    pad = x.new_zeros((x.shape[0], length - x.shape[1], *x.shape[2:]))
    return torch.cat([x, pad], dim=1)
