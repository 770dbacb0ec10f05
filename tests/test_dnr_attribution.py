"""On-distribution Shapley attribution of DnR (kinds with the cross terms as their own player)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _dnr_helpers import DIMS, NUM_CLASSES, make_batch
from merc.explain import components as stats
from merc.methods.dnr.attribution import coalition_masks, derangement, exact_shapley, shapley_attributions
from merc.methods.dnr.decomposer import Components
from merc.methods.dnr.refine import ViewSpec, refined_inputs
from merc.registry import METHODS


def test_exact_shapley_hand_values():
    # v(∅)=0, v({0})=1, v({1})=2, v({0,1})=5: φ0 = ½·1 + ½·3 = 2, φ1 = ½·2 + ½·4 = 3
    phi = exact_shapley(torch.tensor([[0.0, 1.0, 2.0, 5.0]]))
    assert torch.allclose(phi, torch.tensor([[2.0, 3.0]], dtype=torch.float64))
    # an additive 3-player game: φ_i = its own contribution; a pure 3-way interaction is shared equally
    masks = coalition_masks(3).double()
    additive = masks @ torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64)
    assert torch.allclose(exact_shapley(additive[None]), torch.tensor([[1.0, -2.0, 4.0]], dtype=torch.float64))
    triple = masks.all(1).double() * 3.0
    assert torch.allclose(exact_shapley(triple[None]), torch.ones(1, 3, dtype=torch.float64))


def test_derangement_has_no_fixed_point():
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 17):
        perm = derangement(n, g)
        assert sorted(perm.tolist()) == list(range(n)) and not (perm == torch.arange(n)).any()


def _components(n: int = 5, d: int = 2) -> dict[str, Components]:
    g = torch.Generator().manual_seed(1)
    return {m: Components(*(torch.randn(n, d, generator=g) for _ in range(3))) for m in "ta"}


def test_donor_replaces_u_without_touching_cross_terms():
    comps, donor = _components(), _components()
    donor = {m: Components(c.u + 10, c.r + 10, c.s + 10) for m, c in comps.items()}
    full = refined_inputs(comps, True)["t"]  # [u, r, s, u_t − u_a, u_t ⊙ u_a]
    no_u = refined_inputs(comps, True, ViewSpec("x", drop=(("t", "U"),)), donor)["t"]
    assert torch.equal(no_u[:, :2], donor["t"].u) and torch.equal(no_u[:, 2:], full[:, 2:])
    no_x = refined_inputs(comps, True, ViewSpec("x", drop=(("t", "X"),)), donor)["t"]
    assert torch.equal(no_x[:, :6], full[:, :6])
    assert torch.allclose(no_x[:, 6:8], donor["t"].u - donor["a"].u)
    assert torch.allclose(no_x[:, 8:], donor["t"].u * donor["a"].u)
    zeroed = refined_inputs(comps, True, ViewSpec("x", drop=(("t", "U"),)))["t"]  # the original measure
    assert torch.equal(zeroed[:, :2], torch.zeros(5, 2)) and torch.equal(zeroed[:, 6:], torch.zeros(5, 4))


@pytest.fixture(scope="module")
def method():
    torch.manual_seed(0)
    m = METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, num_speakers=2, backbone="late_fusion",
                       backbone_options={"hidden": 8, "heads": 2}, dim=4, synergy_dropout=0.0, explain_draws=2)
    return m.eval()


def test_constant_component_gets_zero_on_distribution_but_not_zero_ablation(method, monkeypatch):
    batch = make_batch([4, 6, 5])
    real = method.components

    def constant_s(b):  # s carries no information: the same vector for every utterance
        return {m: Components(c.u, c.r, torch.full_like(c.s, 2.0)) for m, c in real(b).items()}

    monkeypatch.setattr(method, "components", constant_s)
    out = method.explain(batch)["per_utterance"]
    phi = out["shapley_kind"]  # (N, 4): U, R, S, X
    assert phi.shape == (15, 4) and out["shapley_modality"].shape == (15, 3)
    assert np.abs(phi[:, 2]).max() < 1e-5
    assert np.abs(phi[:, [0, 1, 3]]).max() > 1e-3
    names = method.component_names()
    s_cols = [i for i, n in enumerate(names) if n.endswith(":S")]
    assert out["kl"][:, s_cols].max() > 1e-4  # zeroing the constant s moves the prediction (off-distribution)


def test_shapley_is_efficient_and_deterministic(method):
    batch = make_batch([4, 6, 5])
    comps = method.components(batch)
    with torch.no_grad():
        logp = torch.log_softmax(method(batch).logits, -1)
        target = logp.argmax(-1)
        a = shapley_attributions(method, comps, batch, target, draws=1, seed=3)
        b = shapley_attributions(method, comps, batch, target, draws=1, seed=3)
        # efficiency: Σ φ = log p_full(ŷ) − log p_donor(ŷ), the same for both games with one donor
        perm = derangement(15, torch.Generator().manual_seed(3))
        donor = {m: Components(c.u[perm], c.r[perm], c.s[perm]) for m, c in comps.items()}
        base = method.run_views(donor, [ViewSpec("original")], batch)[0].logits
    base_logp = torch.log_softmax(base, -1).gather(1, target[:, None]).squeeze(1)
    gap = logp.gather(1, target[:, None]).squeeze(1) - base_logp
    for key in ("shapley_kind", "shapley_modality"):
        assert torch.equal(a[key], b[key])
        assert torch.allclose(a[key].sum(1), gap, atol=1e-4)


def test_kind_agreement_ignores_cross_column():
    scores = np.array([[1.0, 0.0, 0.0, 9.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 1.0], [5.0, 0.0, 0.0, 0.0]])
    out = stats.kind_agreement(scores, ["U", "R", "S", "X"], np.array([0, 1, 0, 3]))
    assert out["n"] == 3 and out["top_kind"] == pytest.approx(2 / 3)
    assert out["other_share"]["X"] == pytest.approx((0.9 + 0 + 0.25) / 3)


def test_shapley_runs_in_chunked_backbone_calls(method):
    from merc.methods.dnr.attribution import CHUNK

    calls = [0]
    handle = method.backbone.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    batch = make_batch([3, 6, 2])
    comps = method.components(batch)
    with torch.no_grad():
        shapley_attributions(method, comps, batch, torch.zeros(11, dtype=torch.long), draws=2, seed=0)
    handle.remove()
    # kind game: 15 partial coalitions × 2 donors + the full one; modality game: 7 × 2 + 1
    assert calls[0] == -(-31 // CHUNK) + -(-15 // CHUNK)


@pytest.mark.parametrize("backbone", ["late_fusion", "mmgcn"])
def test_projected_views_give_the_padded_path_numbers(backbone, monkeypatch):
    from _dnr_helpers import tiny_backbone_options

    torch.manual_seed(0)
    m = METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, num_speakers=2, backbone=backbone,
                       backbone_options=tiny_backbone_options(backbone), dim=4, explain_draws=2).eval()
    batch = make_batch([4, 6, 2])
    comps = m.components(batch)
    with torch.no_grad():
        target = m(batch).logits.argmax(-1)
        projected = shapley_attributions(m, comps, batch, target, draws=2, seed=1)
        assert m.backbone.input_projections() is not None
        monkeypatch.setattr(m.backbone, "input_projections", lambda: None)  # padded x̃ into the backbone's own layer
        padded = shapley_attributions(m, comps, batch, target, draws=2, seed=1)
    for key in ("shapley_kind", "shapley_modality"):
        torch.testing.assert_close(projected[key], padded[key], atol=1e-5, rtol=1e-5)
        assert projected[key].abs().max() > 1e-3
