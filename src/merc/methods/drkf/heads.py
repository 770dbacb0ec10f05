"""DRKF's heads: emotion classification (EC) and emotion discrimination (ED) over
cross-utterance pairs (METHODS.md §3.2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EmotionClassifier(nn.Module):
    """EC: ``Linear(d, C)`` on the fused CLS vector.

    Shapes:
        - input ``[B, d]`` → logits ``[B, C]``.
    """

    def __init__(self, width: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(width, num_classes)

    def forward(self, h: Tensor) -> Tensor:
        return self.linear(self.dropout(h))


class EmotionDiscriminator(nn.Module):
    """ED: 2-way classifier of the fused vector of a pair ``(H_a^i, H_t^j)``: same emotion or not.

    Shapes:
        - input ``[P, d]`` → logits ``[P, 2]`` (class 1 = ``y_i == y_j``).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, 2)

    def forward(self, h: Tensor) -> Tensor:
        return self.linear(h)


def sample_pairs(labels: Tensor, max_pairs: int, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """Ordered pairs ``(i, j)``, ``i ≠ j``, of labelled utterances and whether they share a label.

    When the ``n(n-1)`` ordered pairs fit in ``max_pairs`` all are returned; otherwise
    ``max_pairs`` are drawn uniformly (with replacement) from them: ``i`` uniform, ``j = i + k``
    (mod ``n``) with ``k`` uniform in ``1..n-1``.

    Args:
        labels: ``[N]`` labels, ``-1`` = unlabelled (never paired).
        max_pairs: bound on the number of pairs.
        generator: optional random generator (default: torch's global one).

    Returns:
        ``(i [P], j [P], same [P] long)`` with indices into ``labels``.
    """
    valid = torch.nonzero(labels >= 0).squeeze(1)
    n = valid.numel()
    empty = labels.new_zeros(0)
    if n < 2 or max_pairs <= 0:
        return empty, empty, empty
    if n * (n - 1) <= max_pairs:
        a = torch.arange(n, device=labels.device)
        ii, jj = torch.meshgrid(a, a, indexing="ij")
        keep = ii != jj
        i, j = ii[keep], jj[keep]
    else:
        i = torch.randint(0, n, (max_pairs,), generator=generator).to(labels.device)
        j = (i + torch.randint(1, n, (max_pairs,), generator=generator).to(labels.device)) % n
    i, j = valid[i], valid[j]
    return i, j, (labels[i] == labels[j]).long()
