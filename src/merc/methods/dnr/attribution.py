"""On-distribution Shapley attribution of DnR's prediction to its kinds and modalities.

The original measure (``kl``/``kind_kl`` of :meth:`DnRMethod.explain`) *zeroes* a component
and, for ``U``, every cross term built from it: removing ``t:U`` removes 9 of the 21 blocks of
the refined input while ``t:R`` removes 1, and zero is off-distribution for LayerNorm'd
components. This module instead

- treats the cross terms ``u_m − u_p, u_m ⊙ u_p`` as a player of their own, ``X``;
- replaces an absent player by the *same player of another utterance* of the batch (a donor
  drawn by a random derangement; averaged over ``draws`` donors) — an on-distribution
  (interventional/marginal) baseline: a component whose value never changes, or that the
  backbone ignores, gets exactly 0;
- shares the change of the predicted class's log-probability exactly among the players by the
  Shapley value over all ``2^P`` coalitions (16 for U, R, S, X; 8 for three modalities).

Two games are played per utterance: over the kinds (``U``, ``R``, ``S`` and ``X`` across all
modalities at once) and over the modalities (all of a modality's parts; other modalities'
cross terms are then built from the donor's ``u_m``).
"""

from __future__ import annotations

from math import factorial
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor

from merc.methods.dnr.decomposer import Components
from merc.methods.dnr.refine import ORIGINAL, ViewSpec, pad_views, refined_inputs, stack_views

if TYPE_CHECKING:  # pragma: no cover
    from merc.data.collate import Batch
    from merc.methods.dnr.method import DnRMethod

#: views per backbone call (bounds memory: each view is a copy of the batch)
CHUNK = 16


def coalition_masks(num_players: int) -> Tensor:
    """``[2^P, P]`` bool: row ``s`` holds player ``i`` iff bit ``i`` of ``s`` is set."""
    s = torch.arange(2 ** num_players)[:, None]
    return (s >> torch.arange(num_players)[None, :]) & 1 == 1


def shapley_matrix(num_players: int) -> Tensor:
    """``[2^P, P]`` weights ``W`` with ``φ = v @ W`` the exact Shapley values of game ``v`` (``[..., 2^P]``).

    ``W[S, i] = w(|S| − 1)`` if ``i ∈ S`` else ``−w(|S|)``, ``w(k) = k! (P − k − 1)! / P!``.
    """
    P = num_players
    masks = coalition_masks(P)
    size = masks.sum(1, keepdim=True)  # (2^P, 1)
    w = torch.tensor([factorial(k) * factorial(P - k - 1) / factorial(P) for k in range(P)] + [0.0],
                     dtype=torch.float64)
    return torch.where(masks, w[(size - 1).clamp(min=0)], -w[size.clamp(max=P - 1)] * (size < P))


def exact_shapley(values: Tensor) -> Tensor:
    """Shapley values from a game's values over all coalitions (order of :func:`coalition_masks`).

    Shapes:
        - values: ``[N, 2^P]``; output: ``[N, P]`` (rows sum to ``v(all) − v(∅)``)
    """
    P = int(values.shape[1]).bit_length() - 1
    return values.double() @ shapley_matrix(P).to(values.device)


def derangement(n: int, generator: torch.Generator) -> Tensor:
    """``[n]`` random permutation without fixed points (``n ≥ 2``; the identity for ``n = 1``)."""
    order = torch.randperm(n, generator=generator)
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(-1)
    return perm


def _donor(components: dict[str, Components], perm: Tensor) -> dict[str, Components]:
    perm = perm.to(next(iter(components.values())).u.device)
    return {m: Components(c.u[perm], c.r[perm], c.s[perm]) for m, c in components.items()}


def _log_probs(method: "DnRMethod", inputs: list[tuple[dict[str, Components], ViewSpec, dict[str, Components] | None]],
               batch: "Batch") -> list[Tensor]:
    """Log-probabilities ``[N, C]`` of the backbone on each ``(components, view, donor)``, CHUNK per call.

    A backbone with :meth:`~merc.backbones.base.Backbone.input_projections` gets each view's
    real rows through its first layer and only the projections padded (as in
    :meth:`DnRMethod.run_views`): the wide padded x̃ of every view is never built."""
    out: list[Tensor] = []
    cross = method.config.cross_features
    layers = method.backbone.input_projections()
    for start in range(0, len(inputs), CHUNK):
        chunk = inputs[start:start + CHUNK]
        mask, speakers = batch.mask.repeat(len(chunk), 1), batch.speakers.repeat(len(chunk), 1)
        if layers is not None:
            rows = [refined_inputs(c, cross, v, d) for c, v, d in chunk]  # m → (N, D') per view
            feats = {m: pad_views(torch.stack([layers[m](x[m]) for x in rows]), batch.mask) for m in method.modalities}
            logits = method.backbone(feats, mask, speakers, projected=True).logits
        else:
            stacked = [stack_views(c, [v], cross, batch.mask, d) for c, v, d in chunk]
            feats = {m: torch.cat([f[m] for f in stacked]) for m in method.modalities}
            logits = method.backbone(feats, mask, speakers).logits
        out += list(torch.log_softmax(logits, dim=-1).reshape(len(chunk), -1, logits.shape[-1]).unbind(0))
    return out


def _game(method: "DnRMethod", components: dict[str, Components], batch: "Batch", target: Tensor,
          num_players: int, coalition_input: Callable[[Tensor, dict[str, Components]], tuple],
          donors: list[dict[str, Components]]) -> Tensor:
    """``[N, 2^P]`` value ``log p(target)`` of every coalition, averaged over the donors."""
    masks = coalition_masks(num_players)
    full = len(masks) - 1
    inputs = [coalition_input(masks[s], d) for d in donors for s in range(full)]
    logp = _log_probs(method, inputs + [(components, ORIGINAL, None)], batch)
    picked = torch.stack([lp.gather(1, target[:, None]).squeeze(1) for lp in logp], dim=1)  # (N, D·full + 1)
    partial = picked[:, :-1].reshape(-1, len(donors), full).mean(1)  # (N, full)
    return torch.cat([partial, picked[:, -1:]], dim=1)


def shapley_attributions(method: "DnRMethod", components: dict[str, Components], batch: "Batch", target: Tensor,
                         draws: int, seed: int) -> dict[str, Tensor]:
    """Exact Shapley values of ``log p(target)`` over the kinds and over the modalities.

    Args:
        method: a DnR method in eval mode.
        components: the decomposer's parts of ``batch``'s real utterances.
        batch: the batch (mask and speakers are used).
        target: ``[N]`` class whose log-probability is shared out (the full model's prediction).
        draws: donors per utterance (the value of a coalition is averaged over them).
        seed: seed of the donor draws (the same batch gives the same attribution).

    Returns:
        ``{"shapley_kind": [N, P_k], "shapley_modality": [N, M]}`` with kinds ``U, R, S`` (and
        ``X``, the cross terms, when they exist).
    """
    mods = list(method.modalities)
    n = int(target.shape[0])
    generator = torch.Generator().manual_seed(seed)
    donors = [_donor(components, derangement(n, generator)) for _ in range(max(1, draws))]
    kinds = kind_players(method.config.cross_features, len(mods))

    def kind_input(present: Tensor, donor: dict[str, Components]) -> tuple:
        absent = [k for k, keep in zip(kinds, present.tolist()) if not keep]
        return components, ViewSpec("shapley", drop=tuple((m, k) for m in mods for k in absent)), donor

    def modality_input(present: Tensor, donor: dict[str, Components]) -> tuple:
        hybrid = {m: components[m] if keep else donor[m] for m, keep in zip(mods, present.tolist())}
        return hybrid, ORIGINAL, None

    kind_values = _game(method, components, batch, target, len(kinds), kind_input, donors)
    modality_values = _game(method, components, batch, target, len(mods), modality_input, donors)
    return {"shapley_kind": exact_shapley(kind_values).float(),
            "shapley_modality": exact_shapley(modality_values).float()}


def kind_players(cross_features: bool, num_modalities: int) -> list[str]:
    """Players of the kind game: ``U, R, S`` plus ``X`` (the cross terms) when they exist
    (``cross_features`` on and at least two modalities)."""
    return ["U", "R", "S", "X"] if cross_features and num_modalities > 1 else ["U", "R", "S"]
