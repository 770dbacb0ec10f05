"""The encoder-side gradient of L_syn in both synergy modes, against a hand computation.

Reference (DnR-WACV2026, code/new_divide_decomp.py, ``SynergyModule.forward``): every s_m goes
through the gradient-reversal layer (GRL, strength α) before its single head, the single CEs
are averaged into L_single, and the published mode uses L_single only inside the hinge
L_joint + ReLU(m − clamp(L_single − L_joint, 0, 3)).

With M modalities, g_J = ∂L_joint/∂s_m, g_m = ∂CE(single_m(s_m), y)/∂s_m and g_G = ∂L_guard/∂s_m
(plain derivatives, no GRL), the chain rule gives for the encoder side ∂L_syn/∂s_m:

- corrected: g_J − (α/M)·g_m + g_G   (s_m is pushed to *hide* single-modality evidence);
- published, hinge active (0 < gap < m): 2·g_J + (α/M)·g_m + g_G (the hinge's −1 times the
  GRL's −α: s_m is pushed to become *more* single-modality predictive);
- published, hinge inert (gap ≥ m): g_J + g_G (L_single gets no gradient).
"""

from __future__ import annotations

import math

import pytest
import torch

from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.decomposer import Components, DivideHeads
from merc.methods.dnr.divide_losses import labelled_cross_entropy, synergy_guard_loss, synergy_loss

MODALITIES = ("t", "a", "v")
N, D, C = 10, 6, 3
ALPHA = 0.5


def _setup(joint_bias: float) -> tuple[dict[str, Components], DivideHeads, torch.Tensor]:
    """Components with leaf s_m, small random heads; all labels are class 0 and the joint head's
    last bias favours class 0 by ``joint_bias``, which sets L_joint and hence the hinge's gap."""
    torch.manual_seed(0)
    heads = DivideHeads(list(MODALITIES), D, C, dropout=0.0).double()
    with torch.no_grad():
        for p in heads.parameters():
            p.mul_(0.3)
        last = heads.synergy_joint[-1]
        last.bias.copy_(torch.tensor([joint_bias, 0.0, 0.0], dtype=torch.float64))
    comps = {m: Components(torch.randn(N, D, dtype=torch.float64), torch.randn(N, D, dtype=torch.float64),
                           torch.randn(N, D, dtype=torch.float64, requires_grad=True)) for m in MODALITIES}
    return comps, heads, torch.zeros(N, dtype=torch.long)


def _hand_parts(comps: dict[str, Components], heads: DivideHeads, y: torch.Tensor):  # type: ignore[no-untyped-def]
    s = [comps[m].s for m in MODALITIES]
    joint = labelled_cross_entropy(heads.joint_synergy(comps), y)
    singles = [labelled_cross_entropy(heads.synergy_single[m](comps[m].s), y) for m in MODALITIES]
    g_joint = torch.autograd.grad(joint, s)
    g_single = [torch.autograd.grad(ce, comps[m].s)[0] for ce, m in zip(singles, MODALITIES)]
    g_guard = torch.autograd.grad(synergy_guard_loss(comps), s)
    gap = (sum(singles) / len(singles) - joint).item()
    return g_joint, g_single, g_guard, gap


def _encoder_grad(comps: dict[str, Components], heads: DivideHeads, y: torch.Tensor, mode: str):  # type: ignore[no-untyped-def]
    syn, _ = synergy_loss(comps, heads, y, DnRConfig(synergy_mode=mode, grl_strength=ALPHA))
    return torch.autograd.grad(syn, [comps[m].s for m in MODALITIES])


def _joint_bias_for_gap(gap: float) -> float:
    """Bias b with CE = log(1 + 2e^{−b}) = ln 3 − gap (single heads sit near ln 3)."""
    return -math.log((math.exp(math.log(3) - gap) - 1) / 2)


@pytest.mark.parametrize("mode", ["corrected", "published"])
def test_encoder_gradient_matches_hand_computation_hinge_active(mode: str) -> None:
    comps, heads, y = _setup(_joint_bias_for_gap(0.15))
    g_joint, g_single, g_guard, gap = _hand_parts(comps, heads, y)
    assert 0.05 < gap < 0.25  # the published hinge is active: 0 < gap < margin 0.3
    got = _encoder_grad(comps, heads, y, mode)
    M = len(MODALITIES)
    for i in range(M):
        if mode == "corrected":
            expected = g_joint[i] - ALPHA / M * g_single[i] + g_guard[i]
        else:
            expected = 2 * g_joint[i] + ALPHA / M * g_single[i] + g_guard[i]
        torch.testing.assert_close(got[i], expected)
        # the sign of the single-head path on the encoder: along +g_m (published: a descent step
        # makes s_m *more* single-predictive) or −g_m (corrected: less predictive)
        single_part = got[i] - (2 if mode == "published" else 1) * g_joint[i] - g_guard[i]
        sign = torch.sign((single_part * g_single[i]).sum()).item()
        assert sign == (1.0 if mode == "published" else -1.0)


def test_published_encoder_gradient_when_hinge_inert() -> None:
    comps, heads, y = _setup(4.0)  # joint head already good: gap > margin
    g_joint, _, g_guard, gap = _hand_parts(comps, heads, y)
    assert gap > 0.3
    got = _encoder_grad(comps, heads, y, "published")
    for i in range(len(MODALITIES)):
        torch.testing.assert_close(got[i], g_joint[i] + g_guard[i])


@pytest.mark.parametrize("mode,sign", [("corrected", 1.0), ("published", -1.0)])
def test_single_heads_gradient_sign(mode: str, sign: float) -> None:
    # the single heads themselves see no GRL: they descend L_single (corrected) or, while the
    # hinge is active, ascend it (published: the heads are trained to get worse)
    comps, heads, y = _setup(_joint_bias_for_gap(0.15))
    params = list(heads.synergy_single.parameters())
    singles = sum(labelled_cross_entropy(heads.synergy_single[m](comps[m].s), y) for m in MODALITIES)
    plain = torch.autograd.grad(singles / len(MODALITIES), params)
    syn, _ = synergy_loss(comps, heads, y, DnRConfig(synergy_mode=mode, grl_strength=ALPHA))
    got = torch.autograd.grad(syn, params)
    for g, p in zip(got, plain):
        torch.testing.assert_close(g, sign * p)
