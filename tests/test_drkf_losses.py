"""DRKF loss terms against hand-computed values on tiny tensors, and the published arithmetic."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from merc.methods.drkf.heads import sample_pairs
from merc.methods.drkf.losses import (consistency_kl, info_nce, label_consistency, masked_mean, masked_mse, nt_xent,
                                      published_consistency_kl)
from merc.methods.drkf.orl import LearnableTemperature, ResidualAugmenter

E = torch.eye(2)


def test_nt_xent_hand_value() -> None:
    # u = [e1, e2, e1, e2]; each row: positive sim 1, two negatives sim 0, self excluded
    expected = math.log((2 + math.e) / math.e)
    assert nt_xent(E, E.clone(), 1.0).item() == pytest.approx(expected, abs=1e-6)
    # temperature 0.5 doubles every similarity
    expected_half = math.log((2 + math.e ** 2) / math.e ** 2)
    assert nt_xent(E, E.clone(), torch.tensor(0.5)).item() == pytest.approx(expected_half, abs=1e-6)


def test_nt_xent_is_scale_invariant_and_masks_self() -> None:
    z1 = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    z2 = torch.tensor([[0.5, 0.0], [0.0, 7.0]])
    assert nt_xent(z1, z2, 1.0).item() == pytest.approx(nt_xent(E, E, 1.0).item(), abs=1e-6)


def test_info_nce_hand_value_and_symmetric() -> None:
    q = E
    k = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # logits / tau=0.5: [[2, 2], [0, 0]] → both rows -log(1/2)
    assert info_nce(q, k, 0.5).item() == pytest.approx(math.log(2), abs=1e-6)
    # transposed logits [[2, 0], [2, 0]]: row 0 -log(e²/(e²+1)), row 1 -log(1/(e²+1))
    back = 0.5 * (-math.log(math.e ** 2 / (math.e ** 2 + 1)) - math.log(1 / (math.e ** 2 + 1)))
    assert info_nce(q, k, 0.5, symmetric=True).item() == pytest.approx(0.5 * (math.log(2) + back), abs=1e-6)


def test_masked_mse_ignores_padding() -> None:
    pred = torch.tensor([[[1.0], [2.0], [100.0]]])
    target = torch.zeros(1, 3, 1)
    mask = torch.tensor([[True, True, False]])
    assert masked_mse(pred, target, mask).item() == pytest.approx(2.5)
    pred_nan_pad = pred.clone()
    pred_nan_pad[0, 2] = float("nan")
    assert masked_mse(pred_nan_pad, target, mask).item() == pytest.approx(2.5)
    assert masked_mean(pred, mask).tolist() == [[1.5]]


def test_proper_kl_hand_value() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = [.25, .75]
    logits_aug = torch.zeros(1, 2)  # q = [.5, .5]
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert consistency_kl(logits, logits_aug).item() == pytest.approx(expected, abs=1e-6)
    assert consistency_kl(logits, logits).item() == pytest.approx(0.0, abs=1e-7)


def test_published_kl_reproduces_reference_arithmetic() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])
    logits_aug = torch.zeros(1, 2)
    # F.kl_div(p, q) with p fed as if it were log-probs: mean_c q_c (log q_c - p_c)
    expected = (0.5 * (math.log(0.5) - 0.25) + 0.5 * (math.log(0.5) - 0.75)) / 2
    assert published_consistency_kl(logits, logits_aug).item() == pytest.approx(expected, abs=1e-6)
    assert expected < 0  # not a divergence: it can be negative
    ref = F.kl_div(torch.softmax(logits, -1), torch.softmax(logits_aug, -1), reduction="sum") / logits.numel()
    assert published_consistency_kl(logits, logits_aug).item() == pytest.approx(ref.item())
    # the reference counts the text term twice and never looks at audio
    audio = (torch.randn(1, 2), torch.randn(1, 2))
    assert label_consistency((logits, logits_aug), audio, "published").item() == pytest.approx(2 * expected, abs=1e-6)
    proper = label_consistency((logits, logits_aug), audio, "proper")
    assert proper.item() == pytest.approx((consistency_kl(logits, logits_aug) + consistency_kl(*audio)).item())


def test_residual_cascade_matches_formula() -> None:
    torch.manual_seed(0)
    aug = ResidualAugmenter(6, [5, 4, 3], n_blocks=3)
    h = torch.randn(2, 4, 6)
    x, outs = h, []
    o = torch.zeros_like(h)
    for enc, dec in zip(aug.encoders, aug.decoders):
        x = x + o
        o = dec(enc(x))
        outs.append(o)
    expected = aug.transition(h + sum(outs))
    torch.testing.assert_close(aug(h), expected)
    # encoder: LeakyReLU between layers, linear latent (the reference deletes the last activation)
    assert isinstance(aug.encoders[0][-1], torch.nn.Linear)
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in aug.encoders[0]) == 2
    assert isinstance(aug.decoders[0][-1], torch.nn.Linear)  # linear output: residuals can be negative
    assert [m.out_features for m in aug.encoders[0] if isinstance(m, torch.nn.Linear)] == [5, 4, 3]


def test_learnable_temperature_init() -> None:
    tau = LearnableTemperature(1.0)
    assert tau().item() == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert tau.theta.requires_grad


def test_sample_pairs_bounded_and_correct() -> None:
    labels = torch.tensor([0, 1, 0, -1, 2, 1])
    i, j, same = sample_pairs(labels, 1000)  # all 5·4 ordered pairs of labelled utterances
    assert len(i) == 20 and bool((i != j).all()) and not bool(((i == 3) | (j == 3)).any())
    assert torch.equal(same, (labels[i] == labels[j]).long())
    g = torch.Generator().manual_seed(0)
    i, j, same = sample_pairs(labels, 7, generator=g)
    assert len(i) == 7 and bool((i != j).all()) and not bool(((i == 3) | (j == 3)).any())
    empty = sample_pairs(torch.tensor([2, -1]), 10)
    assert all(t.numel() == 0 for t in empty)
