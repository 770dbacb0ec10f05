"""ORL — optimized representation learning (METHODS.md §3.1): projection heads, the
residual-autoencoder augmentation cascade and the learnable temperature."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """``Linear(d, d) → ReLU → Linear(d, d)``: the contrastive view ``z`` of a pooled vector.

    Shapes:
        - input ``[B, d]`` → ``[B, d]``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _mlp(widths: Sequence[int], activation: type[nn.Module]) -> nn.Sequential:
    """``Linear`` layers through ``widths`` with ``activation`` between them (linear output)."""
    layers: list[nn.Module] = []
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(w_in, w_out))
        if i < len(widths) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class ResidualAugmenter(nn.Module):
    r"""The "progressive augmentation" of DRKF: a cascade of residual autoencoders applied to
    every position independently.

    With :math:`x_1 = H`, :math:`o_0 = 0`:

    .. math::
        x_k = x_{k-1} + o_{k-1}, \quad o_k = \mathrm{Dec}_k(\mathrm{Enc}_k(x_k)), \quad
        \hat H = \mathrm{Transition}\big(H + \textstyle\sum_{k=1}^{K} o_k\big)

    ``Enc_k``: ``d → 256 → 128 → 64`` with LeakyReLU between layers and a linear output (the
    reference, ``models/subnets/auto_encoder.py``, deletes the last layer's activation);
    ``Dec_k``: ``64 → 128 → 256 → d`` with ReLU between layers and a linear output (so residuals
    can be negative); ``Transition = Linear → ReLU → Linear``. The reference builds it without
    dropout or batch norm (``dropout=0, use_bn=False``), as here. Being position-wise, padded positions
    never influence valid ones.

    Args:
        dim: feature width ``d``.
        hidden: encoder widths (default ``[256, 128, 64]``; the decoder mirrors them).
        n_blocks: number of autoencoder blocks ``K`` (default 5).

    Shapes:
        - input ``H`` ``[..., d]`` → ``Ĥ`` ``[..., d]``.
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (256, 128, 64), n_blocks: int = 5) -> None:
        super().__init__()
        widths = [dim, *hidden]
        self.encoders = nn.ModuleList(_mlp(widths, nn.LeakyReLU) for _ in range(n_blocks))
        self.decoders = nn.ModuleList(_mlp(widths[::-1], nn.ReLU) for _ in range(n_blocks))
        self.transition = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, h: Tensor) -> Tensor:
        x = h
        out = torch.zeros_like(h)
        for encoder, decoder in zip(self.encoders, self.decoders):
            x = x + out  # x_k = x_{k-1} + o_{k-1}
            out = decoder(encoder(x))  # o_k
        return self.transition(x + out)  # x_K + o_K = H + Σ o_k


class LearnableTemperature(nn.Module):
    """τ = sigmoid(θ) with learnable θ (θ₀ = 1.0 → τ₀ ≈ 0.731), shared by the contrastive terms."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(float(init)))

    def forward(self) -> Tensor:
        return torch.sigmoid(self.theta)

