"""Refine: the refined per-modality inputs x̃_m and the contrastive views (METHODS.md §1.2).

``x̃_m = [u_m, r_m, s_m, u_m − u_p, u_m ⊙ u_p for each other present modality p]`` — 7D with
three modalities, 5D with two, 3D with one or with ``cross_features: false``. Cross terms only
ever use modalities that are present (the reference leaks excluded ones; we do not).

Views are stacked along the batch dimension so the backbone runs **once** per step: with ``V``
views, the backbone sees ``V·B`` dialogues and returns ``V·N`` rows, view ``v`` at rows
``v·N … (v+1)·N − 1`` (batch-major inside each view). When the backbone's first op is a
per-modality ``Linear`` (:meth:`~merc.backbones.base.Backbone.input_projections`), the views
are built after that layer (:func:`project_views`) and x̃ is never materialised per view.
Training steps use an unbiased random share of the Refine terms (:func:`sample_terms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from merc.backbones.base import valid_index
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
                mask: Tensor, donor: dict[str, Components] | None = None) -> dict[str, Tensor]:
    """Padded backbone inputs x̃ of all ``views`` stacked along the batch dimension (``donor``: see
    :func:`refined_inputs`).

    Shapes:
        - components: modality → ``[N, D]`` parts; mask: ``[B, L]``
        - output: modality → ``[V·B, L, D']``
    """
    per_view = [refined_inputs(components, cross_features, v, donor) for v in views]
    return {m: pad_views(torch.stack([x[m] for x in per_view]), mask) for m in components}


def project_views(components: dict[str, Components], views: list[ViewSpec], cross_features: bool,
                  layers: dict[str, nn.Linear]) -> dict[str, Tensor]:
    """The backbone's first-layer outputs ``layers[m](x̃_m)`` of every view, from one projection
    of the original x̃ (the layer is linear, so views combine its blocks).

    - original: ``P_m = W_m x̃_m + b_m``, computed once (its gradient is shared by all views);
    - masked view keeping ``K``: ``P_m`` for ``m ∈ K``, ``b_m`` for the others (x̃ zeroed);
    - augmented view σ: ``P_m + σ·ε_m W_{m,r}ᵀ`` with ``W_{m,r}`` the columns of the r block —
      the noise is drawn in the same order as :func:`refined_inputs` draws it, so both paths
      give the same numbers under the same seed;
    - any other view (component drops): its x̃ projected row by row (never padded).

    A layer with an attribute ``input_dropout = p > 0`` (a backbone whose first op is dropout
    then a linear map, e.g. bc-LSTM in training) reads ``dropout(x̃)`` with **one** dropout mask
    per step, shared by every view (the materialised path draws one mask per view), so that
    views still differ only by their masking and noise.

    Shapes:
        - components: modality → ``[N, D]`` parts; layers: modality → ``Linear(D', H_m)``
        - output: modality → ``[V, N, H_m]``
    """
    mods = list(components)
    refined = refined_inputs(components, cross_features)
    # a layer with ``input_dropout`` p > 0 reads dropout(x̃): one mask per step, shared by all views
    keep = {m: torch.empty_like(x).bernoulli_(1 - p).div_(1 - p) for m, x in refined.items()
            if (p := float(getattr(layers[m], "input_dropout", 0.0))) > 0}

    def dropped(m: str, x: Tensor) -> Tensor:
        return x * keep[m] if m in keep else x

    base = {m: layers[m](dropped(m, x)) for m, x in refined.items()}  # m → (N, H)
    out: dict[str, list[Tensor]] = {m: [] for m in mods}
    for view in views:
        if view.drop or (view.keep is not None and view.sigma > 0):
            x = refined_inputs(components, cross_features, view)
            for m in mods:
                out[m].append(layers[m](dropped(m, x[m])))
            continue
        for m in mods:
            layer, D = layers[m], components[m].r.shape[-1]
            if view.keep is not None and m not in view.keep:
                bias = layer.bias if layer.bias is not None else base[m].new_zeros(base[m].shape[-1])
                out[m].append(bias.expand_as(base[m]))
            elif view.sigma > 0:
                noise = torch.randn_like(components[m].r)  # (N, D)
                if m in keep:
                    noise = noise * keep[m][:, D:2 * D]
                out[m].append(base[m] + view.sigma * noise @ layer.weight[:, D:2 * D].T)
            else:
                out[m].append(base[m])
    return {m: torch.stack(x) for m, x in out.items()}


def pad_views(flat: Tensor, mask: Tensor) -> Tensor:
    """``[V, N, H]`` rows of ``V`` views → padded ``[V·B, L, H]`` (batch-major inside each view, zeros at padding)."""
    V, (B, L) = flat.shape[0], mask.shape
    padded = flat.new_zeros(V, B * L, flat.shape[-1]).index_copy(1, valid_index(mask), flat)
    return padded.reshape(V * B, L, -1)


def split_views(x: Tensor, num_views: int) -> list[Tensor]:
    """``[V·N, ...]`` backbone rows → ``V`` tensors of ``[N, ...]`` (inverse of the stacking)."""
    return list(x.reshape(num_views, x.shape[0] // num_views, *x.shape[1:]).unbind(0))


@dataclass(frozen=True)
class RefineTerm:
    """``weight · InfoNCE(z_first, z_second)``; a view name or ``original``."""

    first: str
    second: str
    weight: float


def refine_terms(views: list[ViewSpec]) -> list[RefineTerm]:
    """The terms of L_ref = ½ Σ_m Σ_σ InfoNCE(z_mask_m, z_aug_σ) + Σ InfoNCE(z_aug_σi, z_aug_σi+1).

    Without augmented views the masked views are contrasted with the original view instead."""
    masked = [v.name for v in views if v.name.startswith("mask:")]
    augmented = [v.name for v in views if v.name.startswith("aug:")]
    anchors = augmented or [ORIGINAL.name]
    return ([RefineTerm(zm, za, 0.5) for zm in masked for za in anchors]
            + [RefineTerm(a, b, 1.0) for a, b in zip(augmented, augmented[1:])])


def sample_terms(views: list[ViewSpec], terms: list[RefineTerm], fraction: float,
                 generator: torch.Generator | None = None) -> tuple[list[ViewSpec], list[RefineTerm]]:
    """An unbiased random share of the Refine terms and the views they need (Horvitz–Thompson).

    With ``V`` contrastive views and ``fraction < 1``, a step draws views with probability
    ``g = min(1, fraction·V / n)`` and then a uniform ``n``-subset of them,
    ``n = min(V, max(2, ⌈fraction·V⌉))``, so on average ``fraction·V`` views per step. A term
    whose ``k`` non-original views are all drawn is kept with weight ``w / π_k`` where
    ``π_k = g·C(V−k, n−k) / C(V, n)`` is its inclusion probability; the sampled loss is then
    an unbiased estimate of the full L_ref. Drawn views no kept term uses are not returned
    (not computed). ``fraction = 1`` returns everything unweighted.
    """
    V = len(views)
    if fraction >= 1.0 or V == 0:
        return list(views), list(terms)
    n = min(V, max(2, math.ceil(fraction * V - 1e-9)))
    gate = min(1.0, fraction * V / n)
    if gate < 1.0 and float(torch.rand((), generator=generator)) >= gate:
        return [], []
    drawn = {views[i].name for i in torch.randperm(V, generator=generator)[:n].tolist()}
    kept = []
    for term in terms:
        needed = {term.first, term.second} - {ORIGINAL.name}
        if needed <= drawn:
            inclusion = gate * math.comb(V - len(needed), n - len(needed)) / math.comb(V, n)
            kept.append(RefineTerm(term.first, term.second, term.weight / inclusion))
    used = {name for t in kept for name in (t.first, t.second)}
    return [v for v in views if v.name in used], kept
