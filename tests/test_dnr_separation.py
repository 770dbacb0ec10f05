"""Opt-in separation losses of the Divide stage: hand-checked values and gradients, and wiring."""

from __future__ import annotations

import pytest
import torch

from _dnr_helpers import DIMS, NUM_CLASSES, make_batch
from merc.errors import ConfigError
from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.decomposer import Components, Decomposer, DivideHeads
from merc.methods.dnr.divide_stage import DivideModule
from merc.methods.dnr.separation_losses import (SeparationLosses, UniqueAdversary, cross_correlation_loss, hsic_loss,
                                                separation_pairs)
from merc.methods.dnr.correlation import push


def test_cross_correlation_hand_values():
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # columns of x are uncorrelated and centred: ρ(x, x) = I → (1/D)·‖I‖² = 1
    assert cross_correlation_loss(x, x).item() == pytest.approx(1.0, abs=1e-5)
    # a column-permuted copy is just as correlated, while the matching-column push barely sees it
    swapped = x[:, [1, 0]]
    assert cross_correlation_loss(x, swapped).item() == pytest.approx(1.0, abs=1e-5)
    assert push(x, swapped).item() == pytest.approx(0.0, abs=1e-5)
    # one column of y = 2·(column 0 of x) + 1, the other constant: ρ = [[1, 0], [0, 0]] → 1/2
    y = torch.stack([2 * x[:, 0] + 1, torch.ones(4)], dim=1)
    assert cross_correlation_loss(x, y).item() == pytest.approx(0.5, abs=1e-5)


def test_cross_correlation_gradient_matches_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(8, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: cross_correlation_loss(a, y, eps=0.0), (x,))


def test_hsic_identical_high_independent_low():
    torch.manual_seed(0)
    x = torch.randn(200, 4)
    assert hsic_loss(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert hsic_loss(x, x @ torch.linalg.qr(torch.randn(4, 4))[0]).item() == pytest.approx(1.0, abs=1e-4)
    assert hsic_loss(x, torch.randn(200, 4)).item() < 0.1
    # non-linear dependence invisible to correlation: y = x², x symmetric
    assert cross_correlation_loss(x[:, :1], x[:, :1] ** 2).item() < 0.05
    assert hsic_loss(x[:, :1], x[:, :1] ** 2).item() > 0.3


def test_separation_pairs_count():
    comps = {m: Components(*(torch.randn(5, 2) for _ in range(3))) for m in "tav"}
    assert len(separation_pairs(comps)) == 3 * 3 + 6 * 3


def test_adversary_gradient_reversal():
    torch.manual_seed(0)
    feats = {"t": torch.randn(32, 3), "a": torch.randn(32, 2)}
    u_t = feats["a"] @ torch.randn(2, 4)  # u_t is a function of modality a: predictable
    u_t.requires_grad_(True)
    comps = {"t": Components(u_t, torch.zeros(32, 4), torch.zeros(32, 4)),
             "a": Components(torch.randn(32, 4), torch.zeros(32, 4), torch.zeros(32, 4))}
    adv = UniqueAdversary({"t": 3, "a": 2}, 4)
    loss = adv.loss(comps, feats, strength=0.5)
    loss.backward()
    # without reversal: the gradient of the same loss w.r.t. u_t (strength scales and flips it)
    u_plain = u_t.detach().clone().requires_grad_(True)
    comps_plain = dict(comps, t=Components(u_plain, comps["t"].r, comps["t"].s))
    plain = adv.loss(comps_plain, feats, strength=-1.0)  # reverse by −1 = identity
    plain.backward()
    assert torch.allclose(u_t.grad, -0.5 * u_plain.grad, atol=1e-6)
    assert all(p.grad is not None for p in adv.parameters())


def test_config_switches_and_wiring():
    with pytest.raises(ConfigError, match="separation_decorrelation"):
        DnRConfig(separation_decorrelation="full")
    plain = DnRConfig()
    assert not SeparationLosses.enabled(plain)
    dec, heads = Decomposer(DIMS, 4), DivideHeads(list(DIMS), 4, NUM_CLASSES)
    assert DivideModule(dec, heads, plain).separation is None
    cfg = DnRConfig(dim=4, separation_decorrelation="cross_covariance", separation_infonce_weight=0.5,
                    separation_adversary_weight=0.3)
    module = DivideModule(dec, heads, cfg)
    logged: dict = {}
    module.log = lambda name, value, **_: logged.__setitem__(name, value)  # type: ignore[method-assign]
    module.log_dict = lambda d, **_: logged.update(d)  # type: ignore[method-assign]
    batch = make_batch([4, 6])
    loss = module.training_step(batch, 0)
    assert {"divide/sep_decorrelation", "divide/sep_infonce", "divide/sep_adversary"} <= set(logged)
    expected = (logged["divide/divide_ce"] + cfg.lambda_corr * (logged["divide/unco"] + logged["divide/cross"])
                + cfg.lambda_syn * (logged["divide/syn_joint"] + logged["divide/syn_single"] + logged["divide/guard"])
                + logged["divide/sep_decorrelation"] + 0.5 * logged["divide/sep_infonce"]
                + 0.3 * logged["divide/sep_adversary"])
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)
    assert logged["divide_loss"].item() == pytest.approx(loss.item(), rel=1e-6)
    optimised = {id(p) for g in module.configure_optimizers().param_groups for p in g["params"]}
    assert all(id(p) in optimised for p in module.separation.parameters())
