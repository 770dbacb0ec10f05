"""Divide: the per-modality decomposer (u, r, s) and the heads used only while pretraining it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor, nn

COMPONENT_KINDS = ("U", "R", "S")


@dataclass
class Components:
    """The three parts of one modality's features.

    Attributes:
        u: ``[N, D]`` unique (modality-specific) component.
        r: ``[N, D]`` redundant (shared-across-modalities) component.
        s: ``[N, D]`` synergy component.
    """

    u: Tensor
    r: Tensor
    s: Tensor

    def get(self, kind: str) -> Tensor:
        return {"U": self.u, "R": self.r, "S": self.s}[kind]


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``−strength`` (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, strength: float) -> Tensor:  # type: ignore[override]
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return -ctx.strength * grad, None


def reverse_gradient(x: Tensor, strength: float) -> Tensor:
    """``x`` unchanged going forward; gradient ``−strength · g`` coming back.

    Shapes:
        - x: any; output: same
    """
    return GradientReversal.apply(x, strength)


class ModalityBranch(nn.Module):
    """``LayerNorm(d_m)`` followed by three parallel ``Linear(d_m, D)`` heads producing u, r, s.

    Args:
        in_dim: feature dimension ``d_m`` of the modality.
        dim: component width ``D``.

    Shapes:
        - input: ``[..., d_m]``
        - output: :class:`Components` of ``[..., D]``
    """

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.unique = nn.Linear(in_dim, dim)
        self.redundant = nn.Linear(in_dim, dim)
        self.synergy = nn.Linear(in_dim, dim)

    def forward(self, x: Tensor) -> Components:
        h = self.norm(x)
        return Components(self.unique(h), self.redundant(h), self.synergy(h))


class Decomposer(nn.Module):
    """DnR's Divide network: one :class:`ModalityBranch` per modality (METHODS.md §1.1).

    Args:
        input_dims: modality → feature dimension.
        dim: component width ``D`` (default 256).

    Shapes:
        - features: modality → ``[N, d_m]`` (real utterances, batch-major)
        - output: modality → :class:`Components` of ``[N, D]``
    """

    def __init__(self, input_dims: dict[str, int], dim: int = 256) -> None:
        super().__init__()
        self.dim = dim
        self.modalities = list(input_dims)
        self.branches = nn.ModuleDict({m: ModalityBranch(d, dim) for m, d in input_dims.items()})

    def forward(self, features: dict[str, Tensor]) -> dict[str, Components]:
        return {m: self.branches[m](features[m]) for m in self.modalities}

    def synergy_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the s heads (trained with the synergy learning-rate multiplier)."""
        for branch in self.branches.values():
            yield from branch.synergy.parameters()

    def other_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the norms and the u/r heads."""
        for branch in self.branches.values():
            for module in (branch.norm, branch.unique, branch.redundant):
                yield from module.parameters()


class DivideHeads(nn.Module):
    """Heads used only while pretraining the decomposer.

    - ``classifier``: ``Linear(D, C)`` on ``Σ_m (u_m + r_m + s_m)``;
    - ``synergy_joint``: ``Linear(M·D, D) → ReLU → Dropout → Linear(D, C)`` on ``[s_t; s_a; s_v]``;
    - ``synergy_single[m]``: ``Linear(D, D/2) → ReLU → Linear(D/2, C)`` on ``s_m``.

    Args:
        modalities: the modalities present.
        dim: component width ``D``.
        num_classes: ``C``.
        dropout: dropout of the joint synergy head (default 0.1).

    Shapes:
        - components: modality → :class:`Components` of ``[N, D]``
        - outputs: ``[N, C]`` logits
    """

    def __init__(self, modalities: list[str], dim: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.classifier = nn.Linear(dim, num_classes)
        self.synergy_joint = nn.Sequential(nn.Linear(len(modalities) * dim, dim), nn.ReLU(), nn.Dropout(dropout),
                                           nn.Linear(dim, num_classes))
        half = max(1, dim // 2)
        self.synergy_single = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(dim, half), nn.ReLU(), nn.Linear(half, num_classes)) for m in modalities})

    def classify(self, components: dict[str, Components]) -> Tensor:
        total = torch.stack([c.u + c.r + c.s for c in components.values()]).sum(0)  # (N, D)
        return self.classifier(total)

    def joint_synergy(self, components: dict[str, Components]) -> Tensor:
        return self.synergy_joint(torch.cat([components[m].s for m in self.modalities], dim=-1))

    def synergy_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.synergy_joint.parameters()
        yield from self.synergy_single.parameters()
