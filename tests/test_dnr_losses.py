"""DnR losses against hand-computed values; the synergy adversary's gradient directions."""

from __future__ import annotations

import math

import pytest
import torch

from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.correlation import column_correlation, pull, push
from merc.methods.dnr.decomposer import Components, Decomposer, DivideHeads, reverse_gradient
from merc.methods.dnr.divide_losses import (decorrelation_loss, divide_loss, published_synergy_hinge,
                                            redundancy_pull_loss, single_synergy_loss, synergy_guard_loss)
from merc.methods.dnr.losses import info_nce

A = torch.tensor([[1.0], [0.0], [-1.0]])  # centred
B = torch.tensor([[1.0], [-2.0], [1.0]])  # centred, orthogonal to A → ρ(A, B) = 0


def test_column_correlation_hand_value() -> None:
    x = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    y = torch.tensor([[1.0, 3.0], [2.0, 2.0], [4.0, 1.0]])
    rho = column_correlation(x, y, eps=0.0)
    # column 0: xc = (-1, 0, 1), yc = (-4/3, -1/3, 5/3): ρ = 3 / (√2 · √42 / 3) = 9 / √84
    assert rho[0].item() == pytest.approx(9 / math.sqrt(84), abs=1e-6)
    assert rho[1].item() == pytest.approx(-1.0, abs=1e-6)
    assert push(x, y, eps=0.0).item() == pytest.approx((9 / math.sqrt(84) + 1) / 2, abs=1e-6)
    assert pull(x, y, eps=0.0).item() == pytest.approx(1 - (9 / math.sqrt(84) + 1) / 2, abs=1e-6)


def test_correlation_eps_and_clamp() -> None:
    const = torch.ones(4, 3)
    assert torch.equal(column_correlation(const, torch.randn(4, 3)), torch.zeros(3))  # no NaN
    x = torch.randn(5, 2)
    assert column_correlation(x, x).abs().max() <= 1.0
    # eps = 1e-6 enters the denominator: ρ(A, A) = 2 / (2 + 1e-6)
    assert column_correlation(A, A)[0].item() == pytest.approx(2 / (2 + 1e-6), rel=1e-7)


def comps(u: torch.Tensor, r: torch.Tensor, s: torch.Tensor) -> Components:
    return Components(u.clone(), r.clone(), s.clone())


def test_decorrelation_loss_one_ninth() -> None:
    # per modality: push(u,r) = 0, push(u,s) = 1, push(r,s) = 0 → Σ = 3 over 9 terms
    parts = {m: comps(A, B, A) for m in "tav"}
    assert decorrelation_loss(parts).item() == pytest.approx(3 / 9, abs=1e-5)
    parts["v"] = comps(A, A, A)  # v now contributes 3
    assert decorrelation_loss(parts).item() == pytest.approx(5 / 9, abs=1e-5)


def test_redundancy_pull_one_third() -> None:
    parts = {"t": comps(A, B, A), "a": comps(A, B, A), "v": comps(A, A, A)}
    # pull(r_t, r_a) = 0, pull(r_a, r_v) = 1, pull(r_v, r_t) = 1
    assert redundancy_pull_loss(parts).item() == pytest.approx(2 / 3, abs=1e-5)
    assert redundancy_pull_loss({"t": comps(A, B, A)}).item() == 0.0  # one modality: nothing to pull


def test_synergy_guard_one_twelfth() -> None:
    # s_m = A, u_m' = A (push 1), r_m' = B (push 0): 6 ones out of 12 terms
    parts = {m: comps(A, B, A) for m in "tav"}
    assert synergy_guard_loss(parts).item() == pytest.approx(6 / 12, abs=1e-5)
    parts["t"] = comps(B, B, B)
    # ones: s_t=B vs r_a=B and r_v=B (2); s_a=A vs u_v=A and s_v=A vs u_a=A (2); s_a, s_v vs u_t, r_t = B: 0
    assert synergy_guard_loss(parts).item() == pytest.approx(4 / 12, abs=1e-5)


def test_published_hinge_arithmetic() -> None:
    joint = torch.tensor(1.0)
    assert published_synergy_hinge(joint, torch.tensor(1.1)).item() == pytest.approx(1.2)  # 1 + relu(0.3 − 0.1)
    assert published_synergy_hinge(joint, torch.tensor(0.5)).item() == pytest.approx(1.3)  # clamp(−0.5) = 0
    assert published_synergy_hinge(joint, torch.tensor(5.0)).item() == pytest.approx(1.0)  # clamp(4) = 3 → relu < 0
    assert published_synergy_hinge(joint, torch.tensor(1.0), margin=0.5, cap=3.0).item() == pytest.approx(1.5)


def test_published_hinge_rewards_worse_single_heads() -> None:
    single = torch.tensor(1.1, requires_grad=True)
    published_synergy_hinge(torch.tensor(1.0), single).backward()
    assert single.grad.item() == pytest.approx(-1.0)  # minimising it *raises* L_single: the published flaw


def _synergy_setup(seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    dec = Decomposer({"t": 5, "a": 4}, dim=8)
    heads = DivideHeads(["t", "a"], 8, 3, dropout=0.0)
    x = {"t": torch.randn(12, 5), "a": torch.randn(12, 4)}
    y = torch.randint(0, 3, (12,))
    return dec, heads, x, y


def _grads(dec, heads, x, y, strength):  # type: ignore[no-untyped-def]
    dec.zero_grad()
    heads.zero_grad()
    single_synergy_loss(dec(x), heads, y, strength).backward()
    return ({n: p.grad.clone() for n, p in dec.named_parameters() if p.grad is not None},
            {n: p.grad.clone() for n, p in heads.synergy_single.named_parameters()})


def test_synergy_adversary_gradient_directions() -> None:
    dec, heads, x, y = _synergy_setup()
    dec_rev, head_rev = _grads(dec, heads, x, y, 0.5)
    dec_plain, head_plain = _grads(dec, heads, x, y, None)
    # single heads: the ordinary gradient of L_single (they learn to predict y from s_m)
    for name in head_plain:
        torch.testing.assert_close(head_rev[name], head_plain[name])
    # the branch producing s (s head and the shared LayerNorm): reversed and scaled by grl_strength
    assert any(".synergy." in n for n in dec_plain) and any(".norm." in n for n in dec_plain)
    for name in dec_plain:
        torch.testing.assert_close(dec_rev[name], -0.5 * dec_plain[name])
    # u/r heads do not feed L_single
    assert not any(".unique." in n or ".redundant." in n for n in dec_rev)


def test_synergy_adversary_steps_move_losses_the_right_way() -> None:
    dec, heads, x, y = _synergy_setup(1)
    before = single_synergy_loss(dec(x), heads, y, None).item()
    _grads(dec, heads, x, y, 0.5)
    with torch.no_grad():  # step the single heads only
        for p in heads.synergy_single.parameters():
            p -= 0.05 * p.grad
    assert single_synergy_loss(dec(x), heads, y, None).item() < before
    mid = single_synergy_loss(dec(x), heads, y, None).item()
    _grads(dec, heads, x, y, 0.5)
    with torch.no_grad():  # step the s branch only: the reversed gradient *raises* L_single
        for branch in dec.branches.values():
            for p in branch.synergy.parameters():
                p -= 0.05 * p.grad
    assert single_synergy_loss(dec(x), heads, y, None).item() > mid


def test_reverse_gradient_is_identity_forward() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    out = reverse_gradient(x, 0.25)
    assert torch.equal(out, x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3, 2), -0.25))


@pytest.mark.parametrize("mode", ["corrected", "published"])
def test_divide_loss_total_is_weighted_sum(mode: str) -> None:
    dec, heads, x, y = _synergy_setup(2)
    cfg = DnRConfig(dim=8, synergy_mode=mode, lambda_corr=2.0, lambda_syn=0.25)
    total, t = divide_loss(dec(x), heads, y, cfg)
    syn = t["syn_joint"] + t["guard"] + (t["syn_single"] if mode == "corrected" else
                                         published_synergy_hinge(t["syn_joint"], t["syn_single"]) - t["syn_joint"])
    expected = t["divide_ce"] + 2.0 * (t["unco"] + t["cross"]) + 0.25 * syn
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert t["divide_loss"].item() == pytest.approx(total.item())


def test_divide_loss_ignores_unlabelled_rows() -> None:
    dec, heads, x, y = _synergy_setup(3)
    cfg = DnRConfig(dim=8)
    y2 = y.clone()
    y2[:4] = -1
    _, t_all = divide_loss(dec(x), heads, y, cfg)
    _, t_part = divide_loss(dec(x), heads, y2, cfg)
    assert torch.isfinite(t_part["divide_loss"])
    assert t_part["divide_ce"].item() != pytest.approx(t_all["divide_ce"].item())
    assert t_part["unco"].item() == pytest.approx(t_all["unco"].item())  # correlations use every real utterance
    _, t_none = divide_loss(dec(x), heads, torch.full_like(y, -1), cfg)
    assert t_none["divide_ce"].item() == 0.0


def test_info_nce_hand_value() -> None:
    z = torch.eye(2)
    assert info_nce(z, z, tau=1.0).item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # τ scales the logits: τ = 0.5 → log(1 + e^-2)
    assert info_nce(z, z, tau=0.5).item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    # symmetric in its arguments and invariant to row norms
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    assert info_nce(a, b).item() == pytest.approx(info_nce(b, a).item(), abs=1e-6)
    assert info_nce(3 * a, b).item() == pytest.approx(info_nce(a, b).item(), abs=1e-5)
