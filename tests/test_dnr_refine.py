"""Refine: refined-input widths, cross terms without leaks, views, one backbone call per step, ablations."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from _dnr_helpers import DIMS, NUM_CLASSES, make_batch

from merc.methods.dnr.decomposer import Components
from merc.methods.dnr.refine import (ORIGINAL, ViewSpec, component_drop_views, contrastive_views, project_views,
                                     refine_terms, refined_dim, refined_inputs, sample_terms, split_views,
                                     stack_views)
from merc.backbones.base import Backbone
from merc.registry import METHODS


def parts(mods: str, n: int = 4, d: int = 3, seed: int = 0) -> dict[str, Components]:
    g = torch.Generator().manual_seed(seed)
    return {m: Components(*(torch.randn(n, d, generator=g) for _ in range(3))) for m in mods}


@pytest.mark.parametrize("mods,cross,width", [("tav", True, 7), ("ta", True, 5), ("t", True, 3), ("tav", False, 3)])
def test_refined_width(mods: str, cross: bool, width: int) -> None:
    x = refined_inputs(parts(mods), cross)
    assert refined_dim(3, len(mods), cross) == 3 * width
    assert all(v.shape == (4, 3 * width) for v in x.values())


def test_refined_layout_tav() -> None:
    c = parts("tav")
    x = refined_inputs(c, True)["t"]
    t, a, v = c["t"], c["a"], c["v"]
    expected = torch.cat([t.u, t.r, t.s, t.u - a.u, t.u * a.u, t.u - v.u, t.u * v.u], dim=-1)
    torch.testing.assert_close(x, expected)


def test_cross_terms_never_use_an_absent_modality() -> None:
    full = parts("tav")
    subset = {m: full[m] for m in "ta"}
    x = refined_inputs(subset, True)
    t, a = full["t"], full["a"]
    torch.testing.assert_close(x["t"], torch.cat([t.u, t.r, t.s, t.u - a.u, t.u * a.u], dim=-1))
    # changing the absent modality's parts cannot change anything
    full["v"] = Components(full["v"].u * 100, full["v"].r, full["v"].s)
    torch.testing.assert_close(refined_inputs({m: full[m] for m in "ta"}, True)["t"], x["t"])


def test_masked_view_keeps_only_its_modality() -> None:
    c = parts("tav")
    full = refined_inputs(c, True)
    masked = refined_inputs(c, True, ViewSpec("mask:a", keep=("a",)))
    torch.testing.assert_close(masked["a"], full["a"])
    assert masked["t"].abs().sum() == 0 and masked["v"].abs().sum() == 0


def test_augmented_view_perturbs_only_r() -> None:
    c = parts("tav", n=2000, d=3)
    full = refined_inputs(c, True)
    torch.manual_seed(0)
    aug = refined_inputs(c, True, ViewSpec("aug:0.2", sigma=0.2))
    D = 3
    for m in "tav":
        delta = aug[m] - full[m]
        assert delta[:, :D].abs().max() == 0  # u untouched
        assert delta[:, 2 * D:].abs().max() == 0  # s and cross terms untouched
        assert delta[:, D:2 * D].std().item() == pytest.approx(0.2, rel=0.05)  # r + σ·ε


def test_dropping_u_zeroes_its_cross_terms_everywhere() -> None:
    c = parts("tav")
    x = refined_inputs(c, True, ViewSpec("drop:a:U", drop=(("a", "U"),)))
    D = 3
    assert x["a"][:, :D].abs().sum() == 0 and x["a"][:, 3 * D:].abs().sum() == 0
    assert x["t"][:, 3 * D:5 * D].abs().sum() == 0  # t's cross terms with a
    torch.testing.assert_close(x["t"][:, 5 * D:], refined_inputs(c, True)["t"][:, 5 * D:])  # with v: kept
    r = refined_inputs(c, True, ViewSpec("drop:t:R", drop=(("t", "R"),)))
    assert r["t"][:, D:2 * D].abs().sum() == 0
    torch.testing.assert_close(r["a"], refined_inputs(c, True)["a"])


def test_view_lists() -> None:
    assert [v.name for v in contrastive_views(["t", "a"], True, True, [0.2, 0.1])] == \
        ["mask:t", "mask:a", "aug:0.2", "aug:0.1"]
    assert [v.name for v in contrastive_views(["t", "a"], False, True, [0.2, 0.1])] == ["aug:0.2", "aug:0.1"]
    assert [v.name for v in contrastive_views(["t", "a"], True, False, [0.2])] == ["mask:t", "mask:a"]
    assert len(component_drop_views(["t", "a", "v"])) == 9


def test_stack_and_split_views_round_trip() -> None:
    batch = make_batch([2, 5, 3], marker=True)
    n = batch.num_utterances
    c = {m: Components(*(batch.features[m][batch.mask][:, :1].repeat(1, 2) for _ in range(3))) for m in DIMS}
    views = [ORIGINAL, ViewSpec("mask:t", keep=("t",)), ViewSpec("drop:a:S", drop=(("a", "S"),))]
    feats = stack_views(c, views, True, batch.mask)
    mask = batch.mask.repeat(3, 1)
    assert feats["t"].shape[0] == 3 * batch.mask.shape[0] and mask.shape == feats["t"].shape[:2]
    rows = split_views(feats["t"][mask], 3)
    for v, view in enumerate(views):
        torch.testing.assert_close(rows[v], refined_inputs(c, True, view)["t"])
    assert n == rows[0].shape[0]


def count_backbone_calls(method) -> list[int]:  # type: ignore[no-untyped-def]
    calls = [0]
    method.backbone.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def build(**options):  # type: ignore[no-untyped-def]
    options.setdefault("view_fraction", 1.0)  # every view each step unless a test samples them
    torch.manual_seed(0)
    return METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, num_speakers=2, backbone="late_fusion",
                          backbone_options={"hidden": 8, "heads": 2}, dim=4, **options)


def test_one_backbone_call_per_training_step() -> None:
    method = build(explain_draws=0)  # the Shapley attribution's calls: test_dnr_attribution.py
    calls = count_backbone_calls(method)
    batch = make_batch([3, 6, 2])
    loss, terms, out = method.training_loss(batch)
    assert calls[0] == 1
    assert set(terms) == {"ce", "refine"}
    assert out.logits.shape == (11, NUM_CLASSES)
    loss.backward()
    assert calls[0] == 1
    method.explain(batch)
    assert calls[0] == 2  # explanations also run all 10 views in one call


def test_separate_view_calls_match_reference_cost_model() -> None:
    method = build(batch_views=False)
    calls = count_backbone_calls(method)
    method.training_loss(make_batch([3, 6, 2]))
    assert calls[0] == 6  # original + 3 masked + 2 augmented, as the reference does


def test_stacked_and_separate_views_give_the_same_prediction() -> None:
    batch = make_batch([3, 6, 2])
    a, b = build().eval(), build(batch_views=False).eval()
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(batch).logits, b(batch).logits)
    ea, eb = a.explain(batch)["per_utterance"], b.explain(batch)["per_utterance"]
    torch.testing.assert_close(torch.as_tensor(ea["kl"]), torch.as_tensor(eb["kl"]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("options,terms,views", [
    ({"divide_only": True}, {"ce"}, []),
    ({"masked_views": False}, {"ce", "refine"}, ["aug:0.2", "aug:0.1"]),
    ({"augment": False}, {"ce", "refine"}, ["mask:t", "mask:a", "mask:v"]),
    ({"masked_views": False, "augment": False}, {"ce"}, []),
    ({"cross_features": False}, {"ce", "refine"}, ["mask:t", "mask:a", "mask:v", "aug:0.2", "aug:0.1"]),
])
def test_ablation_switches(options: dict, terms: set, views: list) -> None:
    method = build(**options)
    assert [v.name for v in method.views] == views
    width = 3 * 4 if options.get("cross_features") is False else 7 * 4
    assert method.backbone.input_dims == {m: width for m in DIMS}
    _, got, _ = method.training_loss(make_batch([4, 2]))
    assert set(got) == terms


def test_refine_loss_formula() -> None:
    method = build()
    torch.manual_seed(1)
    z = {k: torch.randn(7, 5) for k in ["original", "mask:t", "mask:a", "mask:v", "aug:0.2", "aug:0.1"]}
    from merc.methods.dnr.losses import info_nce

    expected = 0.5 * sum(info_nce(z[m], z[a], 0.7) for m in ["mask:t", "mask:a", "mask:v"]
                         for a in ["aug:0.2", "aug:0.1"]) + info_nce(z["aug:0.2"], z["aug:0.1"], 0.7)
    got = method.refine_loss(z)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    no_aug = method.refine_loss(z, refine_terms([ViewSpec("mask:t"), ViewSpec("mask:a")]))
    assert no_aug.item() == pytest.approx(0.5 * (info_nce(z["mask:t"], z["original"], 0.7)
                                                 + info_nce(z["mask:a"], z["original"], 0.7)).item(), rel=1e-6)


def test_training_loss_weights_refine_term() -> None:
    method = build(refine_weight=0.1).eval()  # eval: no dropout, but views still use noise
    torch.manual_seed(3)
    loss, terms, _ = method.training_loss(make_batch([5, 3]))
    assert loss.item() == pytest.approx((terms["ce"] + 0.1 * terms["refine"]).item(), rel=1e-5)


def test_projected_views_equal_the_projection_of_each_view() -> None:
    c = parts("tav", n=6, d=3)
    torch.manual_seed(0)
    layers = {m: torch.nn.Linear(21, 5) for m in "tav"}
    views = [ORIGINAL, *contrastive_views(list("tav"), True, True, [0.2, 0.1]), *component_drop_views(list("tav"))]
    torch.manual_seed(7)
    got = project_views(c, views, True, layers)
    torch.manual_seed(7)  # same noise draws in the same order
    for v, view in enumerate(views):
        x = refined_inputs(c, True, view)
        for m in "tav":
            torch.testing.assert_close(got[m][v], layers[m](x[m]))


def test_projected_views_share_one_input_dropout_mask() -> None:
    c = parts("tav", n=6, d=3)
    torch.manual_seed(0)
    layers = {m: torch.nn.Linear(21, 5) for m in "tav"}
    for layer in layers.values():
        layer.input_dropout = 0.5  # e.g. bc-LSTM's dropout before its RNN
    views = [ORIGINAL, *contrastive_views(list("tav"), True, True, [0.2, 0.1]), *component_drop_views(list("tav"))]
    torch.manual_seed(7)
    got = project_views(c, views, True, layers)
    torch.manual_seed(7)  # the masks are drawn first, then the views' noise in the same order
    full = refined_inputs(c, True)
    keep = {m: torch.empty_like(full[m]).bernoulli_(0.5) * 2 for m in "tav"}
    assert all(0 < k.count_nonzero() < k.numel() for k in keep.values())
    for v, view in enumerate(views):
        x = refined_inputs(c, True, view)
        for m in "tav":
            kept = view.keep is None or m in view.keep
            expected = layers[m](x[m] * keep[m]) if kept or view.drop else layers[m].bias.expand(6, 5)
            torch.testing.assert_close(got[m][v], expected)


@pytest.mark.parametrize("fraction", [0.2, 0.4, 0.7])
def test_sampled_terms_are_an_unbiased_estimate_of_the_full_refine_loss(fraction: float) -> None:
    method = build()
    torch.manual_seed(1)
    z = {k: torch.randn(9, 5) for k in ["original", *(v.name for v in method.views)]}
    full = method.refine_loss(z).item()
    value = {(t.first, t.second): method.refine_loss(z, [dataclasses.replace(t, weight=1.0)]).item()
             for t in method.terms}  # z is fixed: each term's InfoNCE once
    g = torch.Generator().manual_seed(0)
    draws = 4000
    total, views = 0.0, 0
    for _ in range(draws):
        sampled, terms = sample_terms(method.views, method.terms, fraction, g)
        total += sum(t.weight * value[t.first, t.second] for t in terms)
        views += len(sampled)
    assert total / draws == pytest.approx(full, rel=0.05)
    assert method.refine_loss(z, terms).item() == pytest.approx(sum(t.weight * value[t.first, t.second]
                                                                    for t in terms), rel=1e-5)
    assert views / draws <= fraction * len(method.views) + 1e-9  # at most the budgeted views on average


def test_sampling_without_augmentation_is_unbiased_too() -> None:
    method = build(augment=False)  # terms contrast the masked views with the original view
    torch.manual_seed(2)
    z = {k: torch.randn(9, 5) for k in ["original", "mask:t", "mask:a", "mask:v"]}
    value = {t.first: method.refine_loss(z, [dataclasses.replace(t, weight=1.0)]).item() for t in method.terms}
    g = torch.Generator().manual_seed(1)
    mean = sum(sum(t.weight * value[t.first] for t in sample_terms(method.views, method.terms, 0.34, g)[1])
               for _ in range(3000)) / 3000
    assert mean == pytest.approx(method.refine_loss(z).item(), rel=0.05)


def test_full_view_fraction_uses_every_view_and_term() -> None:
    method = build()
    views, terms = sample_terms(method.views, method.terms, 1.0)
    assert views == method.views and terms == method.terms


def grads_of_one_step(backbone: str, **options) -> tuple[float, dict[str, torch.Tensor]]:  # type: ignore[no-untyped-def]
    from _dnr_helpers import tiny_backbone_options

    options.setdefault("view_fraction", 1.0)
    torch.manual_seed(0)
    method = METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, num_speakers=2, backbone=backbone,
                            backbone_options={**tiny_backbone_options(backbone), "dropout": 0.0}, dim=4, **options)
    method.freeze_decomposer()
    method.train()
    torch.manual_seed(5)
    loss, _, _ = method.training_loss(make_batch([3, 5, 2]))
    loss.backward()
    return loss.item(), {k: p.grad.clone() for k, p in method.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("backbone", ["late_fusion", "mmgcn", "dialogue_gcn"])
def test_chunked_and_unchunked_steps_give_the_same_gradients(backbone: str) -> None:
    loss, grads = grads_of_one_step(backbone)
    for chunk in (1, 2):
        chunk_loss, chunk_grads = grads_of_one_step(backbone, view_chunk=chunk)
        assert chunk_loss == pytest.approx(loss, rel=1e-5)
        assert grads.keys() == chunk_grads.keys() and grads
        for k in grads:
            torch.testing.assert_close(chunk_grads[k], grads[k], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("backbone", ["late_fusion", "mmgcn", "mm_dfn", "dialogue_gcn", "bc_lstm"])
def test_projected_and_materialised_views_give_the_same_step(backbone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from merc.registry import BACKBONES

    cls = BACKBONES.get(backbone)
    assert cls.input_projections is not Backbone.input_projections  # the fast path exists
    loss, grads = grads_of_one_step(backbone)
    monkeypatch.setattr(cls, "input_projections", lambda self: None)  # padded x̃ per view instead
    slow_loss, slow_grads = grads_of_one_step(backbone)
    assert slow_loss == pytest.approx(loss, rel=1e-5)
    for k in grads:
        torch.testing.assert_close(slow_grads[k], grads[k], atol=1e-6, rtol=1e-4)
