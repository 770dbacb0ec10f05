"""DnR over every registered backbone (and modality subsets): trains a couple of steps and explains."""

from __future__ import annotations

import pytest
import torch
from _dnr_helpers import DIMS, NUM_CLASSES, make_dialogues, tiny_backbone_options

from merc.data.collate import make_loader
from merc.registry import BACKBONES, METHODS


# -- every backbone, every modality subset ------------------------------------------------------

@pytest.mark.parametrize("backbone", BACKBONES.list())
@pytest.mark.parametrize("mods", ["tav", "ta"])
def test_every_backbone_trains_and_explains(backbone: str, mods: str) -> None:
    dims = {m: DIMS[m] for m in mods}
    torch.manual_seed(0)
    method = METHODS.create("dnr", input_dims=dims, num_classes=NUM_CLASSES, num_speakers=2, backbone=backbone,
                            backbone_options=tiny_backbone_options(backbone), dim=4)
    dl = make_loader(make_dialogues([3, 7, 2, 5], dims), list(dims), 2, shuffle=True, seed=0)
    method.freeze_decomposer()  # the Divide stage itself is tested in test_dnr_method.py
    opt = torch.optim.Adam(method.param_groups(1e-3, 0.0))
    method.train()
    before = [p.clone() for p in method.backbone.parameters()]
    for step, batch in enumerate(dl):
        loss, terms, out = method.training_loss(batch)
        assert torch.isfinite(loss) and out.logits.shape == (batch.num_utterances, NUM_CLASSES)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 1:
            break
    assert any(not torch.equal(a, b) for a, b in zip(before, method.backbone.parameters()))
    ex = method.explain(batch)
    per = ex["per_utterance"]
    K = 3 * len(mods)
    assert per["kl"].shape == (batch.num_utterances, K) and (per["kl"] >= 0).all()
    assert len(ex["info"]["component_names"]) == K
