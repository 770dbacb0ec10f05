"""Batch-major alignment: components, labels and every loss / explanation statistic stay aligned
when a batch holds several dialogues of different lengths (the reference mixes time-major and
batch-major orders). Every utterance carries a marker k (its batch-major index) in column 0 of
each modality and the label k % C."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _dnr_helpers import DIMS, NUM_CLASSES, identity_decomposer, make_dialogues
from torch.nn import functional as F

from merc.data.collate import collate_dialogues
from merc.explain import merge_explanations
from merc.explain.components_report import summarize_components
from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.divide_losses import divide_loss
from merc.methods.dnr.divide_stage import flat_features
from merc.methods.dnr.refine import ORIGINAL, contrastive_views, sample_terms
from merc.registry import METHODS

LENGTHS = [2, 5, 3, 1, 4]
N = sum(LENGTHS)
MARKER = np.arange(N)
GOLD = MARKER % NUM_CLASSES


def probe_method(backbone: str = "test_probe", **options):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    opts = {"hidden": 8, "heads": 2} if backbone == "late_fusion" else {}
    method = METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, num_speakers=2, backbone=backbone,
                            backbone_options=opts, dim=4, synergy_dropout=0.0, **options)
    identity_decomposer(method)
    return method.eval()


@pytest.fixture(scope="module")
def dialogues():  # type: ignore[no-untyped-def]
    return make_dialogues(LENGTHS, marker=True)


@pytest.fixture(scope="module")
def batch(dialogues):  # type: ignore[no-untyped-def]
    return collate_dialogues(dialogues, list(DIMS))


def test_time_major_order_would_differ(batch) -> None:  # type: ignore[no-untyped-def]
    time_major = batch.features["t"].transpose(0, 1)[batch.mask.T][:, 0]
    assert not torch.equal(time_major, torch.as_tensor(MARKER, dtype=torch.float32))  # the test can fail


def test_components_and_labels_aligned(batch) -> None:  # type: ignore[no-untyped-def]
    method = probe_method()
    comps = method.components(batch)
    for m in DIMS:
        for part in (comps[m].u, comps[m].r, comps[m].s):
            assert torch.equal(part[:, 0], torch.as_tensor(MARKER, dtype=torch.float32))
    assert torch.equal(batch.labels_flat, torch.as_tensor(GOLD))


def test_divide_loss_matches_concatenated_dialogues(dialogues, batch) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    method = METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, backbone="test_probe", dim=4,
                            synergy_dropout=0.0)
    cfg = method.config
    concat = {m: torch.as_tensor(np.concatenate([d.features[m] for d in dialogues])) for m in DIMS}
    labels = torch.as_tensor(np.concatenate([d.labels for d in dialogues]))
    for m in DIMS:
        assert torch.equal(flat_features(batch, list(DIMS))[m], concat[m])
    from merc.methods.dnr.divide_stage import DivideModule

    module = DivideModule(method.decomposer, method.divide_heads, cfg)
    got = module.training_step(batch, 0)
    expected, _ = divide_loss(method.decomposer(concat), method.divide_heads, labels, cfg)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    shuffled, _ = divide_loss(method.decomposer(concat), method.divide_heads, labels.roll(1),
                              DnRConfig(dim=4, synergy_dropout=0.0))
    assert shuffled.item() != pytest.approx(expected.item(), rel=1e-6)


def test_every_view_row_is_the_right_utterance(batch) -> None:  # type: ignore[no-untyped-def]
    method = probe_method()
    views = [ORIGINAL, *contrastive_views(list(DIMS), True, True, [0.2, 0.1])]
    outs = method.run_views(method.components(batch), views, batch)
    width = 7 * 4
    for view, out in zip(views, outs):
        for j, m in enumerate(DIMS):
            col = out.representation[:, j * width]  # u_m[:, 0] of modality m
            if view.keep is None or m in view.keep:
                assert torch.equal(col, torch.as_tensor(MARKER, dtype=torch.float32)), view.name
            else:
                assert col.abs().sum() == 0


def test_refine_ce_uses_aligned_labels(batch) -> None:  # type: ignore[no-untyped-def]
    method = probe_method()
    torch.manual_seed(0)
    _, terms, out = method.training_loss(batch)
    assert torch.equal(out.representation[:, 0], torch.as_tensor(MARKER, dtype=torch.float32))
    expected = F.cross_entropy(out.logits, torch.as_tensor(GOLD))
    assert terms["ce"].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("backbone", ["test_probe", "late_fusion"])
def test_explanation_rows_match_single_dialogue_runs(dialogues, batch, backbone: str) -> None:  # type: ignore[no-untyped-def]
    method = probe_method(backbone)
    ex = method.explain(batch)["per_utterance"]
    assert np.array_equal(ex["label"], GOLD)
    assert np.array_equal(ex["meta:interaction"], MARKER % 4)
    assert np.array_equal(ex["components"][:, 0, 0], MARKER)  # t:U column 0
    assert list(ex["dialogue_id"]) == [d.id for d in dialogues for _ in range(len(d))]
    assert np.array_equal(ex["position"], np.concatenate([np.arange(n) for n in LENGTHS]))
    start = 0
    for d in dialogues:  # each dialogue alone gives exactly its rows of the batched run
        alone = method.explain(collate_dialogues([d], list(DIMS)))["per_utterance"]
        rows = slice(start, start + len(d))
        np.testing.assert_allclose(alone["kl"], ex["kl"][rows], atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(alone["probs"], ex["probs"][rows], atol=1e-6)
        start += len(d)


def test_explanation_statistics_use_aligned_labels(dialogues) -> None:  # type: ignore[no-untyped-def]
    method = probe_method()
    parts = [method.explain(collate_dialogues(dialogues[:2], list(DIMS))),
             method.explain(collate_dialogues(dialogues[2:], list(DIMS)))]
    ex = merge_explanations(parts)
    per = ex["per_utterance"]
    assert np.array_equal(per["components"][:, 0, 0], MARKER)  # merge keeps batch-major order
    s = summarize_components(ex, ["c0", "c1", "c2"], probe_folds=2)
    for c in range(NUM_CLASSES):
        rows = GOLD == c  # labels from the markers, not from the explanation
        np.testing.assert_allclose(s["per_class_kl"][c], per["kl"][rows].mean(0), rtol=1e-6)
        np.testing.assert_allclose(s["per_class_gold_drop"][c], per["gold_drop"][rows].mean(0), rtol=1e-6)
        assert s["class_counts"][c] == rows.sum()
    # gold drop uses the gold class of the same row
    p_gold = per["probs"][np.arange(N), GOLD]
    assert np.all(per["gold_drop"] <= p_gold[:, None] + 1e-6)
    # Fisher ratio of the marker column, by hand
    x = MARKER.astype(float)
    between = sum((GOLD == c).sum() * (x[GOLD == c].mean() - x.mean()) ** 2 for c in range(NUM_CLASSES))
    within = sum(((x[GOLD == c] - x[GOLD == c].mean()) ** 2).sum() for c in range(NUM_CLASSES))
    from merc.explain.components import fisher_ratio

    assert fisher_ratio(per["components"][:, 0, :1], per["label"]) == pytest.approx(between / within)


def test_sampled_views_cover_every_utterance(batch) -> None:  # type: ignore[no-untyped-def]
    method = probe_method(view_fraction=0.4)  # 2 of the 5 contrastive views per step
    calls = [0]
    method.backbone.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    seen = set()
    for seed in range(6):
        torch.manual_seed(seed)
        _, terms, out = method.training_loss(batch)
        assert out.logits.shape[0] == N and torch.isfinite(terms["refine"])
        views, _ = sample_terms(method.views, method.terms, 0.4, torch.Generator().manual_seed(seed))
        seen |= {v.name for v in views}
        assert len(views) in (0, 2)
    assert calls[0] == 6  # still one backbone call per step
    assert len(seen) > 2
