"""DRKF's objective terms (METHODS.md §3.1): contrastive, reconstruction and consistency losses.

All functions are pure (tensors in, scalar tensor out) so each can be checked against a
hand-computed value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def nt_xent(z1: Tensor, z2: Tensor, temperature: Tensor | float) -> Tensor:
    r"""NT-Xent (SimCLR, Chen et al. 2020) between two views of the same ``B`` samples.

    The ``2B`` L2-normalised vectors :math:`u = [z_1; z_2]` form similarities
    :math:`s_{ij} = u_i^\top u_j / \tau`; self-similarities are excluded and the positive of
    ``i`` is its other view (``i ± B``):

    .. math::
        \mathcal{L} = \frac{1}{2B} \sum_{i=1}^{2B} -\log
        \frac{\exp(s_{i,p(i)})}{\sum_{j \ne i} \exp(s_{ij})}

    Args:
        z1: first view.
        z2: second view (row ``i`` is the positive of ``z1[i]``).
        temperature: τ > 0 (a scalar tensor when learnable).

    Shapes:
        - z1, z2: ``[B, d]`` → scalar.
    """
    B = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2], dim=0), dim=-1)  # (2B, d)
    sim = u @ u.t() / temperature  # (2B, 2B)
    self_mask = torch.eye(2 * B, dtype=torch.bool, device=u.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    positives = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)]).to(u.device)
    return F.cross_entropy(sim, positives)


def info_nce(query: Tensor, key: Tensor, temperature: Tensor | float, symmetric: bool = False) -> Tensor:
    r"""Cross-modal InfoNCE: each ``query[i]`` must pick ``key[i]`` among the ``B`` keys.

    .. math::
        \mathcal{L}_{q \to k} = \frac{1}{B} \sum_i -\log
        \frac{\exp(\hat q_i^\top \hat k_i / \tau)}{\sum_j \exp(\hat q_i^\top \hat k_j / \tau)}

    with L2-normalised :math:`\hat q, \hat k`. DRKF uses audio → text (query = audio); with
    ``symmetric`` the result is :math:`(\mathcal{L}_{q\to k} + \mathcal{L}_{k\to q}) / 2`.

    Args:
        query: e.g. projected audio vectors.
        key: e.g. projected text vectors.
        temperature: τ > 0.
        symmetric: average both directions.

    Shapes:
        - query, key: ``[B, d]`` → scalar.
    """
    logits = F.normalize(query, dim=-1) @ F.normalize(key, dim=-1).t() / temperature  # (B, B)
    target = torch.arange(query.shape[0], device=query.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.t(), target))
    return loss


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    r"""Mean squared error over the valid positions only.

    .. math:: \frac{1}{|V| \, d} \sum_{(i,t) \in V} \lVert \hat H_{it} - H_{it} \rVert^2

    Padding (``mask = False``) contributes nothing, whatever its values.

    Shapes:
        - pred, target: ``[N, T, d]``; mask ``[N, T]`` bool → scalar.
    """
    sq = torch.where(mask.unsqueeze(-1), (pred - target) ** 2, torch.zeros((), device=pred.device))
    count = mask.sum().clamp(min=1) * pred.shape[-1]
    return sq.sum() / count


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over valid positions: ``[N, T, d]`` with mask ``[N, T]`` → ``[N, d]``."""
    summed = torch.where(mask.unsqueeze(-1), x, torch.zeros((), device=x.device)).sum(dim=1)
    return summed / mask.sum(dim=1, keepdim=True).clamp(min=1)


def consistency_kl(logits: Tensor, logits_aug: Tensor) -> Tensor:
    r"""Label-vector consistency :math:`\mathrm{KL}(p \,\|\, q)`, ``p = softmax(logits)``,
    ``q = softmax(logits_aug)``, averaged over the batch (a true KL, ≥ 0).

    Shapes:
        - logits, logits_aug: ``[B, C]`` → scalar.
    """
    return F.kl_div(F.log_softmax(logits_aug, dim=-1), F.log_softmax(logits, dim=-1), log_target=True,
                    reduction="batchmean")


def published_consistency_kl(logits: Tensor, logits_aug: Tensor) -> Tensor:
    r"""The reference's arithmetic: ``F.kl_div(softmax(logits), softmax(logits_aug))``.

    ``kl_div`` expects log-probabilities as its first argument; fed probabilities it computes
    :math:`\mathrm{mean}_{b,c}\, q_{bc} (\log q_{bc} - p_{bc})` (element mean), which is not a
    divergence and can be negative. Kept only to reproduce published numbers.

    Shapes:
        - logits, logits_aug: ``[B, C]`` → scalar.
    """
    p = torch.softmax(logits, dim=-1)
    q = torch.softmax(logits_aug, dim=-1)
    # = F.kl_div(p, q, reduction="mean") in torch ≤ 2.x, written out so it survives that default changing
    return (torch.xlogy(q, q) - q * p).mean()


def label_consistency(text: tuple[Tensor, Tensor], audio: tuple[Tensor, Tensor], mode: str = "proper") -> Tensor:
    """The KL term of DRKF's loss from ``(logits(z), logits(ẑ))`` per modality.

    ``proper``: ``KL_t + KL_a`` (:func:`consistency_kl`). ``published``: the reference computes
    the text term twice (its "audio" term re-uses the text classifier on text vectors) with
    :func:`published_consistency_kl`, so the audio pair is ignored.
    """
    if mode == "proper":
        return consistency_kl(*text) + consistency_kl(*audio)
    if mode == "published":
        return 2.0 * published_consistency_kl(*text)
    raise ValueError(f"unknown kl mode '{mode}'")
