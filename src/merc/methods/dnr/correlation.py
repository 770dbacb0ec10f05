"""Column-wise Pearson correlation and the push/pull objectives of DnR's Divide stage."""

from __future__ import annotations

import torch
from torch import Tensor


def column_correlation(x: Tensor, y: Tensor, eps: float = 1e-6) -> Tensor:
    r"""Pearson correlation of each column of ``x`` with the same column of ``y``.

    .. math::
        \rho_k = \mathrm{clamp}\Big(\frac{\sum_i \bar x_{ik} \bar y_{ik}}
                 {\sqrt{\sum_i \bar x_{ik}^2}\,\sqrt{\sum_i \bar y_{ik}^2} + \epsilon}, -1, 1\Big)

    with :math:`\bar x = x - \mathrm{mean}_i\, x` (centred over the rows).

    Args:
        x: first matrix, rows are the real utterances of a batch.
        y: second matrix, same shape.
        eps: added to the denominator (constant columns get ρ = 0 instead of NaN).

    Shapes:
        - x, y: ``[N, D]``
        - output: ``[D]``
    """
    if x.shape != y.shape:
        raise ValueError(f"column_correlation needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    xc = x - x.mean(dim=0, keepdim=True)
    yc = y - y.mean(dim=0, keepdim=True)
    num = (xc * yc).sum(dim=0)
    den = xc.pow(2).sum(dim=0).sqrt() * yc.pow(2).sum(dim=0).sqrt() + eps
    return (num / den).clamp(-1.0, 1.0)


def push(x: Tensor, y: Tensor, eps: float = 1e-6) -> Tensor:
    """Decorrelation objective ``mean_k |ρ_k|`` (small when ``x`` and ``y`` are decorrelated).

    Shapes:
        - x, y: ``[N, D]``; output: scalar
    """
    return column_correlation(x, y, eps).abs().mean()


def pull(x: Tensor, y: Tensor, eps: float = 1e-6) -> Tensor:
    """Correlation objective ``1 − push(x, y)`` (small when ``x`` and ``y`` are correlated).

    Shapes:
        - x, y: ``[N, D]``; output: scalar
    """
    return 1.0 - push(x, y, eps)


def mean_of(terms: list[Tensor], like: Tensor) -> Tensor:
    """Mean of scalar ``terms`` (zero on ``like``'s device when there are none)."""
    return torch.stack(terms).mean() if terms else like.new_zeros(())
