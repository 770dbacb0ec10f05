"""The Refine stage's memo of the frozen decomposer's parts: same numbers, changed features recomputed."""

from __future__ import annotations

import dataclasses

import torch
from _dnr_helpers import DIMS, NUM_CLASSES, make_batch, make_dialogues, tiny_backbone_options

from merc.data.collate import collate_dialogues

from merc.methods.dnr.divide_stage import flat_features
from merc.registry import METHODS


def _method(cache: bool = True, backbone: str = "mmgcn"):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    method = METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, backbone=backbone,
                            backbone_options={**tiny_backbone_options(backbone), "dropout": 0.0}, dim=4,
                            view_fraction=1.0, cache_components=cache)
    method.freeze_decomposer()
    method.train()
    return method


def _step(method, batch):  # type: ignore[no-untyped-def]
    method.zero_grad()
    torch.manual_seed(3)
    loss, _, _ = method.training_loss(batch)
    loss.backward()
    return loss.item(), {k: p.grad.clone() for k, p in method.named_parameters() if p.grad is not None}


def _direct(method, batch):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return method.decomposer(flat_features(batch, method.modalities))


def test_a_cached_step_equals_an_uncached_one() -> None:
    batch = make_batch([3, 5, 2])
    cached, plain = _method(cache=True), _method(cache=False)
    first = _step(cached, batch)
    assert len(cached.component_cache) == 3  # one entry per training dialogue
    calls = []
    cached.decomposer.register_forward_hook(lambda *args: calls.append(1))
    second = _step(cached, batch)
    assert not calls  # served from the cache: the decomposer did not run
    reference = _step(plain, batch)
    assert len(plain.component_cache) == 0
    for loss, grads in (first, second):
        assert loss == reference[0]
        assert grads.keys() == reference[1].keys() and grads
        for k in grads:
            torch.testing.assert_close(grads[k], reference[1][k], rtol=0, atol=0)


def test_changed_features_or_another_dialogue_under_the_same_id_are_recomputed() -> None:
    method = _method()
    batch = make_batch([3, 5, 2])
    method.components(batch)
    # modality dropout replaces dialogue d1's audio by a stand-in: a miss, recomputed exactly
    dropped = dataclasses.replace(batch, features={**batch.features, "a": batch.features["a"].clone()})
    dropped.features["a"][1] = 0.5
    got, want = method.components(dropped), _direct(method, dropped)
    for m in DIMS:
        torch.testing.assert_close(got[m].u, want[m].u, rtol=0, atol=0)
        torch.testing.assert_close(got[m].s, want[m].s, rtol=0, atol=0)
    # another dataset whose first dialogue is also called d0 (other length and features)
    other = make_batch([4, 5, 2])
    got, want = method.components(other), _direct(method, other)
    torch.testing.assert_close(got["t"].r, want["t"].r, rtol=0, atol=0)
    # cached dialogues in another grouping and order are served in the new batch's row order
    dialogues = make_dialogues([3, 5, 2])
    method.components(collate_dialogues(dialogues, list(DIMS)))  # store the 3-utterance d0 again
    calls = []
    hook = method.decomposer.register_forward_hook(lambda *args: calls.append(1))
    regrouped = collate_dialogues([dialogues[2], dialogues[0]], list(DIMS))
    got = method.components(regrouped)
    hook.remove()
    assert not calls
    want = _direct(method, regrouped)
    torch.testing.assert_close(got["v"].u, want["v"].u)


def test_eval_mode_reads_but_never_fills_and_the_cache_is_not_saved() -> None:
    method = _method()
    batch = make_batch([3, 5, 2])
    method.eval()
    method.components(batch)
    assert len(method.component_cache) == 0  # evaluation and prediction never grow it
    method.train()
    method.components(batch)
    assert len(method.component_cache) == 3
    assert not any("cache" in k for k in method.state_dict())
    method.load_state_dict(method.state_dict())  # new decomposer weights: forget everything
    assert len(method.component_cache) == 0


def test_no_cache_before_divide_has_frozen_the_decomposer() -> None:
    torch.manual_seed(0)
    method = METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, backbone="late_fusion",
                            backbone_options=tiny_backbone_options("late_fusion"), dim=4)
    method.train()
    method.components(make_batch([3, 2]))
    assert len(method.component_cache) == 0
