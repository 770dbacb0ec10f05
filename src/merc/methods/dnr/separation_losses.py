"""Opt-in Divide losses that actually separate u, r and s (beyond the paper; plain ``dnr`` is faithful).

DnR's ``push`` decorrelates only *matching* columns (column k of u with column k of r), so a
column-permuted copy of r costs almost nothing, and nothing stops u from holding what other
modalities also see. These terms, switched on by ``model.method_options`` (all off by default),
are *added* to the Divide loss:

- ``separation_decorrelation: cross_covariance`` — every column against every column:
  ``(1/D)·‖ρ(x, y)‖_F²`` with ``ρ`` the ``D×D`` Pearson cross-correlation matrix; or ``hsic`` —
  normalised HSIC with Gaussian kernels (kernel CKA), which also sees non-linear dependence.
  Applied to ``(u_m, r_m), (u_m, s_m), (r_m, s_m)`` within each modality and to
  ``(u_m, r_p), (s_m, u_p), (s_m, r_p)`` across modalities.
- ``separation_infonce_weight`` — an InfoNCE pulling ``r_m`` toward ``r_p`` of the *same*
  utterance against the other utterances of the batch (all modality pairs).
- ``separation_adversary_weight`` — per modality an adversary predicts the batch-standardised
  ``u_m`` from the other modalities' raw features; ``u_m`` passes a gradient-reversal layer,
  so the decomposer learns to remove from ``u_m`` whatever the other modalities can predict.
"""

from __future__ import annotations

from itertools import combinations, permutations

import torch
from torch import Tensor, nn

from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.correlation import mean_of
from merc.methods.dnr.decomposer import Components, reverse_gradient
from merc.methods.dnr.losses import info_nce

DECORRELATIONS = ("none", "cross_covariance", "hsic")


def _standardise(x: Tensor, eps: float = 1e-6) -> Tensor:
    xc = x - x.mean(0, keepdim=True)
    return xc / (xc.pow(2).mean(0, keepdim=True).sqrt() + eps)


def cross_correlation_loss(x: Tensor, y: Tensor, eps: float = 1e-6) -> Tensor:
    r"""Full cross-correlation penalty :math:`\frac1D \sum_{j,k} \rho_{jk}^2`.

    :math:`\rho_{jk}` is the Pearson correlation of column ``j`` of ``x`` with column ``k`` of
    ``y`` over the rows. It is 1 for ``y`` any column permutation of ``x`` (``D`` columns each
    fully correlated with one other), about ``D/N`` for independent ``x``, ``y``.

    Shapes:
        - x: ``[N, D]``; y: ``[N, D']``; output: scalar
    """
    n = x.shape[0]
    rho = _standardise(x, eps).T @ _standardise(y, eps) / n  # (D, D')
    return rho.pow(2).sum() / x.shape[1]


def _gaussian_gram(x: Tensor) -> Tensor:
    d2 = torch.cdist(x, x).pow(2)
    off = d2[~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)]
    bandwidth = off.detach().median().clamp(min=1e-6)  # median heuristic (σ² = median squared distance / 2)
    return torch.exp(-d2 / bandwidth)


def hsic_loss(x: Tensor, y: Tensor, max_rows: int = 512) -> Tensor:
    r"""Normalised HSIC (kernel CKA) with Gaussian kernels: :math:`\frac{\mathrm{tr}(\tilde K \tilde L)}
    {\|\tilde K\|_F \|\tilde L\|_F}`, :math:`\tilde K = HKH` the centred Gram matrix.

    In ``[0, 1]``; 1 when ``y`` is ``x`` up to rotation/permutation, near 0 for independent
    ``x``, ``y``. Only the first ``max_rows`` rows are used (the cost is quadratic in ``N``).

    Shapes:
        - x: ``[N, D]``; y: ``[N, D']``; output: scalar
    """
    x, y = x[:max_rows], y[:max_rows]
    n = x.shape[0]
    h = torch.eye(n, device=x.device, dtype=x.dtype) - 1.0 / n
    k, l = h @ _gaussian_gram(x) @ h, h @ _gaussian_gram(y) @ h
    return (k * l).sum() / (k.norm() * l.norm() + 1e-12)


def separation_pairs(components: dict[str, Components]) -> list[tuple[Tensor, Tensor]]:
    """The component pairs to make independent: within each modality ``(u, r), (u, s), (r, s)``;
    across modalities ``(u_m, r_p), (s_m, u_p), (s_m, r_p)`` for every ordered pair ``m ≠ p``."""
    pairs = [(a, b) for c in components.values() for a, b in ((c.u, c.r), (c.u, c.s), (c.r, c.s))]
    for m, p in permutations(components, 2):
        cm, cp = components[m], components[p]
        pairs += [(cm.u, cp.r), (cm.s, cp.u), (cm.s, cp.r)]
    return pairs


class UniqueAdversary(nn.Module):
    """Per modality ``m``: ``LayerNorm → Linear(Σ_{p≠m} d_p, D) → ReLU → Linear(D, D)`` on the other
    modalities' raw features, predicting the batch-standardised ``u_m``.

    Shapes:
        - features: modality → ``[N, d_m]``; output of :meth:`loss`: scalar
    """

    def __init__(self, input_dims: dict[str, int], dim: int) -> None:
        super().__init__()
        self.modalities = list(input_dims)
        self.nets = nn.ModuleDict({
            m: nn.Sequential(nn.LayerNorm(sum(d for p, d in input_dims.items() if p != m)),
                             nn.Linear(sum(d for p, d in input_dims.items() if p != m), dim), nn.ReLU(),
                             nn.Linear(dim, dim))
            for m in self.modalities if len(self.modalities) > 1})

    def loss(self, components: dict[str, Components], features: dict[str, Tensor], strength: float) -> Tensor:
        """Mean over modalities of ``MSE(adversary_m(x_{−m}), standardise(GRL(u_m)))``.

        The adversary descends it; through the gradient reversal (``strength``) the decomposer
        ascends it, i.e. makes ``u_m`` unpredictable from the other modalities.
        """
        terms = []
        for m, net in self.nets.items():
            others = torch.cat([features[p].detach() for p in self.modalities if p != m], dim=-1)
            target = _standardise(reverse_gradient(components[m].u, strength))
            terms.append((net(others) - target).pow(2).mean())
        return mean_of(terms, next(iter(components.values())).u)


class SeparationLosses(nn.Module):
    """The opt-in separation terms of one Divide step (see the module docstring).

    Args:
        input_dims: modality → raw feature dimension (for the adversary).
        config: DnR options (``separation_*`` fields).
    """

    def __init__(self, input_dims: dict[str, int], config: DnRConfig) -> None:
        super().__init__()
        self.config = config
        self.adversary = UniqueAdversary(input_dims, config.dim) if config.separation_adversary_weight > 0 else None

    @staticmethod
    def enabled(config: DnRConfig) -> bool:
        """Whether any separation term is switched on."""
        return (config.separation_decorrelation != "none" or config.separation_infonce_weight > 0
                or config.separation_adversary_weight > 0)

    def forward(self, components: dict[str, Components], features: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted sum of the switched-on terms and the terms themselves (detached).

        Shapes:
            - components: modality → ``[N, D]`` parts; features: modality → ``[N, d_m]``
            - output: scalar, {term: scalar}
        """
        c = self.config
        like = next(iter(components.values())).u
        total, terms = like.new_zeros(()), {}
        if c.separation_decorrelation != "none":
            fn = cross_correlation_loss if c.separation_decorrelation == "cross_covariance" else hsic_loss
            dec = mean_of([fn(a, b) for a, b in separation_pairs(components)], like)
            total, terms["sep_decorrelation"] = total + c.separation_decorrelation_weight * dec, dec
        if c.separation_infonce_weight > 0:
            pulls = [info_nce(components[m].r, components[p].r, c.separation_tau)
                     for m, p in combinations(components, 2)]
            nce = mean_of(pulls, like)
            total, terms["sep_infonce"] = total + c.separation_infonce_weight * nce, nce
        if self.adversary is not None:
            adv = self.adversary.loss(components, features, c.separation_grl)
            total, terms["sep_adversary"] = total + c.separation_adversary_weight * adv, adv
        return total, {k: v.detach() for k, v in terms.items()}
