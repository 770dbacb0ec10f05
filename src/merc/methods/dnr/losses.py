"""Refine-stage contrastive loss."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def info_nce(z1: Tensor, z2: Tensor, tau: float = 0.7) -> Tensor:
    r"""Symmetric InfoNCE between two views of the same ``N`` utterances.

    .. math::
        S = \frac{\hat z_1 \hat z_2^\top}{\tau},\quad
        \mathcal{L} = \tfrac12\big(\mathrm{CE}(S, I) + \mathrm{CE}(S^\top, I)\big)

    with :math:`\hat z` the L2-normalised rows; row ``i`` of one view is the positive of row
    ``i`` of the other, all other rows are negatives.

    Args:
        z1: representations of the first view.
        z2: representations of the second view (same row order).
        tau: temperature.

    Shapes:
        - z1, z2: ``[N, d]``
        - output: scalar
    """
    if z1.shape != z2.shape:
        raise ValueError(f"info_nce needs equal shapes, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    sim = F.normalize(z1, dim=-1) @ F.normalize(z2, dim=-1).T / tau  # (N, N)
    target = torch.arange(sim.shape[0], device=sim.device)
    return 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))
